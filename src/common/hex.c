/* SPDX-License-Identifier: Apache-2.0 */
/* Hex encoding and strict decoding for hashes, addresses and byte strings on the wire. */
#include "openseed/hex.h"

#include <string.h>

int os_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

os_err os_hex_encode(char *out, size_t out_cap, const void *in, size_t in_len, int prefix)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = in;
    size_t need = (prefix ? 2 : 0) + 2 * in_len + 1;

    if (out_cap == 0 || in_len > (SIZE_MAX - 3) / 2)
        return OS_ERR_TOOBIG;
    if (out_cap < need) {
        out[0] = '\0';
        return OS_ERR_TOOBIG;
    }
    if (prefix) {
        *out++ = '0';
        *out++ = 'x';
    }
    for (size_t i = 0; i < in_len; i++) {
        *out++ = digits[p[i] >> 4];
        *out++ = digits[p[i] & 15];
    }
    *out = '\0';
    return OS_OK;
}

os_err os_hex_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in, size_t in_len)
{
    *out_len = 0;
    if (in_len >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
        in += 2;
        in_len -= 2;
    }
    if (in_len % 2 != 0)
        return OS_ERR_INVALID;
    if (in_len / 2 > out_cap)
        return OS_ERR_TOOBIG;
    for (size_t i = 0; i < in_len; i += 2) {
        int hi = os_hex_digit(in[i]), lo = os_hex_digit(in[i + 1]);
        if (hi < 0 || lo < 0)
            return OS_ERR_INVALID;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = in_len / 2;
    return OS_OK;
}

os_err os_hex_decode_exact(uint8_t *out, size_t out_len, const char *in)
{
    size_t got;
    os_err err;

    if (in == NULL)
        return OS_ERR_INVALID;
    err = os_hex_decode(out, out_len, &got, in, strlen(in));
    if (err != OS_OK)
        return err;
    return got == out_len ? OS_OK : OS_ERR_INVALID;
}
