/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unsigned 256-bit integers as the EVM, the ABI and RLP carry them: 32 bytes big-endian, with
 * conversions to and from uint64 and unsigned __int128 that refuse to truncate, checked add and
 * subtract, and strict decimal text. Enough for wei balances and token amounts; no multiply.
 */
#ifndef OPENSEED_U256_H
#define OPENSEED_U256_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

/* An unsigned 256-bit integer, 32 bytes big-endian, as the ABI and RLP carry it. */
typedef struct os_u256 {
    uint8_t be[32];
} os_u256;

#define OS_U256_DEC_LEN 79 /* 78 digits of 2^256-1 and the NUL */

void os_u256_from_u64(os_u256 *out, uint64_t v);
void os_u256_from_u128(os_u256 *out, unsigned __int128 v);
/* OS_ERR_RANGE when v does not fit; *out is then 0. */
OS_WUR os_err os_u256_to_u64(uint64_t *out, const os_u256 *v);
OS_WUR os_err os_u256_to_u128(unsigned __int128 *out, const os_u256 *v);
/* -1, 0 or 1 as a is below, equal to or above b. */
int os_u256_cmp(const os_u256 *a, const os_u256 *b);
/* out = a + b, or OS_ERR_RANGE on overflow (out may alias a or b). */
OS_WUR os_err os_u256_add(os_u256 *out, const os_u256 *a, const os_u256 *b);
/* out = a - b, or OS_ERR_RANGE when b > a. */
OS_WUR os_err os_u256_sub(os_u256 *out, const os_u256 *a, const os_u256 *b);
/* Writes v in decimal, NUL-terminated. OS_ERR_TOOBIG when cap is too small. */
OS_WUR os_err os_u256_format_dec(char *out, size_t cap, const os_u256 *v);
/* Parses a decimal string: digits only, no sign, no leading zeros (but "0"), at most 2^256-1. */
OS_WUR os_err os_u256_parse_dec(os_u256 *out, const char *s);

#endif
