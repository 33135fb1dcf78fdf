/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hex encoding as the protocol writes it: "0x"-prefixed lower-case on output; on input an optional
 * "0x"/"0X" prefix and either case. Decoding is strict: odd lengths and stray characters are
 * errors.
 */
#ifndef OPENSEED_HEX_H
#define OPENSEED_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

/* Characters os_hex_encode needs for in_len bytes with the "0x" prefix, including the NUL. */
#define OS_HEX_LEN(in_len) (2 + 2 * (size_t)(in_len) + 1)

/*
 * Writes "0x" (when prefix is non-zero) and the lower-case hex of in[0..in_len) to out,
 * NUL-terminated. OS_ERR_TOOBIG when out_cap is too small (out is then an empty string).
 */
OS_WUR os_err os_hex_encode(char *out, size_t out_cap, const void *in, size_t in_len, int prefix);

/*
 * Decodes in[0..in_len) (optional 0x prefix) into out. *out_len receives the byte count.
 * OS_ERR_INVALID for odd length or a non-hex character; OS_ERR_TOOBIG when out_cap is too small.
 */
OS_WUR os_err os_hex_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in,
                            size_t in_len);

/* Decodes a NUL-terminated string holding exactly out_len bytes (e.g. a bytes32 or address). */
OS_WUR os_err os_hex_decode_exact(uint8_t *out, size_t out_len, const char *in);

/*
 * The value 0..15 of one hex digit (either case), or -1 for any other character (NUL included),
 * for parsers of hex that is not whole bytes, like JSON-RPC quantities.
 */
int os_hex_digit(char c);

#endif
