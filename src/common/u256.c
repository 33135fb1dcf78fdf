/* SPDX-License-Identifier: Apache-2.0 */
/* 256-bit unsigned arithmetic on 32-byte big-endian values, byte at a time: simple over fast, as
 * nothing here is on a hot path. */
#include "openseed/u256.h"

#include <stdbool.h>
#include <string.h>

void os_u256_from_u64(os_u256 *out, uint64_t v)
{
    memset(out->be, 0, 32);
    for (int i = 31; i >= 24; i--) {
        out->be[i] = (uint8_t)v;
        v >>= 8;
    }
}

void os_u256_from_u128(os_u256 *out, unsigned __int128 v)
{
    memset(out->be, 0, 32);
    for (int i = 31; i >= 16; i--) {
        out->be[i] = (uint8_t)v;
        v >>= 8;
    }
}

static bool zero_prefix(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

os_err os_u256_to_u64(uint64_t *out, const os_u256 *v)
{
    *out = 0;
    if (!zero_prefix(v->be, 24))
        return OS_ERR_RANGE;
    for (int i = 24; i < 32; i++)
        *out = *out << 8 | v->be[i];
    return OS_OK;
}

os_err os_u256_to_u128(unsigned __int128 *out, const os_u256 *v)
{
    *out = 0;
    if (!zero_prefix(v->be, 16))
        return OS_ERR_RANGE;
    for (int i = 16; i < 32; i++)
        *out = *out << 8 | v->be[i];
    return OS_OK;
}

int os_u256_cmp(const os_u256 *a, const os_u256 *b)
{
    int c = memcmp(a->be, b->be, 32);
    return (c > 0) - (c < 0);
}

os_err os_u256_add(os_u256 *out, const os_u256 *a, const os_u256 *b)
{
    os_u256 r;
    unsigned carry = 0;

    for (int i = 31; i >= 0; i--) {
        unsigned s = (unsigned)a->be[i] + b->be[i] + carry;
        r.be[i] = (uint8_t)s;
        carry = s >> 8;
    }
    if (carry)
        return OS_ERR_RANGE;
    *out = r;
    return OS_OK;
}

os_err os_u256_sub(os_u256 *out, const os_u256 *a, const os_u256 *b)
{
    os_u256 r;
    int borrow = 0;

    if (os_u256_cmp(a, b) < 0)
        return OS_ERR_RANGE;
    for (int i = 31; i >= 0; i--) {
        int d = (int)a->be[i] - b->be[i] - borrow;
        borrow = d < 0;
        r.be[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    *out = r;
    return OS_OK;
}

os_err os_u256_format_dec(char *out, size_t cap, const os_u256 *v)
{
    uint8_t t[32];
    char rev[OS_U256_DEC_LEN];
    size_t n = 0;

    if (cap == 0)
        return OS_ERR_TOOBIG;
    memcpy(t, v->be, 32);
    do {
        unsigned rem = 0;
        for (int i = 0; i < 32; i++) {
            unsigned cur = rem << 8 | t[i];
            t[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
        }
        rev[n++] = (char)('0' + rem);
    } while (!zero_prefix(t, 32));
    if (n + 1 > cap) {
        out[0] = '\0';
        return OS_ERR_TOOBIG;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    out[n] = '\0';
    return OS_OK;
}

os_err os_u256_parse_dec(os_u256 *out, const char *s)
{
    os_u256 r;
    size_t n;

    memset(out->be, 0, 32);
    if (s == NULL)
        return OS_ERR_INVALID;
    n = strlen(s);
    if (n == 0 || (s[0] == '0' && n > 1))
        return OS_ERR_INVALID;
    if (n > OS_U256_DEC_LEN - 1)
        return OS_ERR_RANGE;
    memset(r.be, 0, 32);
    for (size_t k = 0; k < n; k++) {
        unsigned carry;
        if (s[k] < '0' || s[k] > '9')
            return OS_ERR_INVALID;
        carry = (unsigned)(s[k] - '0');
        for (int i = 31; i >= 0; i--) {
            unsigned cur = r.be[i] * 10u + carry;
            r.be[i] = (uint8_t)cur;
            carry = cur >> 8;
        }
        if (carry)
            return OS_ERR_RANGE;
    }
    *out = r;
    return OS_OK;
}
