/* SPDX-License-Identifier: Apache-2.0 */
/* Process start-up for libcommon: call os_init() once before any other os_ function. */
#ifndef OPENSEED_INIT_H
#define OPENSEED_INIT_H

#include "openseed/err.h"

/*
 * Initialises the libraries libcommon stands on (libsodium's RNG and CPU dispatch, libcurl's global
 * state). Idempotent and thread-safe; OS_ERR_INTERNAL if a library cannot start.
 */
OS_WUR os_err os_init(void);

#endif
