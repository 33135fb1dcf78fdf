/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base64, standard alphabet with padding (RFC 4648 §4), as x402 headers and our envelopes use it.
 * Decoding is strict: no whitespace, no missing padding, no characters outside the alphabet.
 */
#ifndef OPENSEED_BASE64_H
#define OPENSEED_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

/* Characters os_base64_encode writes for in_len bytes, including the NUL. */
#define OS_BASE64_LEN(in_len) ((((size_t)(in_len) + 2) / 3) * 4 + 1)

/* Encodes in[0..in_len) into out (NUL-terminated). OS_ERR_TOOBIG when out_cap is too small. */
OS_WUR os_err os_base64_encode(char *out, size_t out_cap, const void *in, size_t in_len);

/*
 * Decodes in[0..in_len) into out; *out_len receives the byte count.
 * OS_ERR_INVALID for malformed input, OS_ERR_TOOBIG when out_cap is too small.
 */
OS_WUR os_err os_base64_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in,
                               size_t in_len);

/* Allocating encode; the caller frees the result with free(). NULL on allocation failure. */
char *os_base64_encode_alloc(const void *in, size_t in_len);

/*
 * Allocating decode of at most max_out bytes; the caller frees *out with free().
 * The buffer is NUL-terminated one past *out_len so a decoded JSON text can be parsed in place.
 */
OS_WUR os_err os_base64_decode_alloc(uint8_t **out, size_t *out_len, const char *in, size_t in_len,
                                     size_t max_out);

#endif
