/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What chain.c shares with chain_signer.c and nobody else: filling an os_chain_error, and the
 * idiom every public entry point uses to accept a NULL error pointer.
 */
#ifndef OPENSEED_CHAIN_INTERNAL_H
#define OPENSEED_CHAIN_INTERNAL_H

#include "openseed/chain.h"

/* Empties e. */
void os_chain_err_reset(os_chain_error *e);

/* Sets e's kind and message (printf-style, cut to one printable ASCII line). */
__attribute__((format(printf, 3, 4))) void os_chain_err_set(os_chain_error *e, os_chain_fail kind,
                                                            const char *fmt, ...);

/* Lets e be NULL (details then go to a scratch copy) and starts it empty. */
#define ENTRY(e)                                                                                   \
    os_chain_error scratch_;                                                                       \
    if ((e) == NULL)                                                                               \
        (e) = &scratch_;                                                                           \
    os_chain_err_reset(e)

#endif
