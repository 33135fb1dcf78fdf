/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the chain client's files (chain.c: transport and JSON-RPC envelope; chain_calls.c: the typed
 * calls; chain_signer.c: nonces and sending) share and nobody else may use: the idiom every public entry point uses to accept a NULL error pointer, and the
 * raw exchange and result helpers the typed calls are built on. They are external only because
 * they cross files, hence their os_ names.
 */
#ifndef OPENSEED_CHAIN_INTERNAL_H
#define OPENSEED_CHAIN_INTERNAL_H

#include "openseed/chain.h"

/* Lets e be NULL (details then go to a scratch copy) and starts it empty. */
#define ENTRY(e)                                                                                   \
    os_chain_error scratch_;                                                                       \
    if ((e) == NULL)                                                                               \
        (e) = &scratch_;                                                                           \
    os_chain_err_reset(e)

/*
 * One JSON-RPC exchange, as os_chain_rpc but with e already reset and never NULL: params is stolen
 * (NULL sends []); *result is a new reference on OS_OK. A node's error object gives
 * OS_ERR_INVALID with e filled in (OS_CHAIN_FAIL_RPC or _REVERT); a malformed answer
 * OS_ERR_NETWORK with OS_CHAIN_FAIL_RESPONSE.
 */
OS_WUR os_err os_chain_exchange(os_chain *ch, json_t **result, os_chain_error *e,
                                const char *method, json_t *params);

/* A JSON string's value (borrowed from j), or NULL when j is not a string or hides a NUL inside. */
const char *os_chain_json_str(const json_t *j);

/*
 * Appends the bytes of a "0x" hex JSON string to out: OS_ERR_INVALID if malformed, OS_ERR_TOOBIG
 * past out's cap, OS_ERR_NOMEM. On error out is unchanged.
 */
OS_WUR os_err os_chain_hex_data(os_buf *out, const json_t *v);

/* Sleeps ms milliseconds, resuming after signals. */
void os_chain_sleep_ms(long ms);

/* Milliseconds on the monotonic clock, for deadlines. */
long long os_chain_now_ms(void);

#endif
