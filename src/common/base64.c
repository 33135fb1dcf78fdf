/* SPDX-License-Identifier: Apache-2.0 */
/* Standard padded base64 over libsodium's constant-time codec, with strict decoding. */
#include "openseed/base64.h"

#include <sodium.h>
#include <stdlib.h>

os_err os_base64_encode(char *out, size_t out_cap, const void *in, size_t in_len)
{
    if (in_len > (SIZE_MAX / 4) * 3 - 3 || out_cap < OS_BASE64_LEN(in_len))
        return OS_ERR_TOOBIG;
    sodium_bin2base64(out, out_cap, in, in_len, sodium_base64_VARIANT_ORIGINAL);
    return OS_OK;
}

/*
 * libsodium 1.0.18's decoder reads every byte from 0x80 up as '/', so one value would have many
 * texts (a header could be rewritten without changing its bytes); only RFC 4648's alphabet and '='
 * may pass. libsodium then checks where the padding stands.
 */
static int alphabet_only(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/' || ch == '='))
            return 0;
    }
    return 1;
}

os_err os_base64_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in, size_t in_len)
{
    const char *end = NULL;

    *out_len = 0;
    if (in_len % 4 != 0 || !alphabet_only(in, in_len))
        return OS_ERR_INVALID;
    if (in_len / 4 * 3 > out_cap + 2)
        return OS_ERR_TOOBIG;
    if (sodium_base642bin(out, out_cap, in, in_len, NULL, out_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        *out_len = 0;
        /* libsodium fails the same way for "too small" and "bad input": tell them apart. */
        return in_len / 4 * 3 > out_cap ? OS_ERR_TOOBIG : OS_ERR_INVALID;
    }
    if (end != in + in_len) {
        *out_len = 0;
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

char *os_base64_encode_alloc(const void *in, size_t in_len)
{
    char *out;

    if (in_len > (SIZE_MAX / 4) * 3 - 3)
        return NULL;
    out = malloc(OS_BASE64_LEN(in_len));
    if (out != NULL && os_base64_encode(out, OS_BASE64_LEN(in_len), in, in_len) != OS_OK) {
        free(out);
        return NULL;
    }
    return out;
}

os_err os_base64_decode_alloc(uint8_t **out, size_t *out_len, const char *in, size_t in_len,
                              size_t max_out)
{
    size_t cap = in_len / 4 * 3;
    os_err err;

    *out = NULL;
    *out_len = 0;
    if (in_len % 4 != 0)
        return OS_ERR_INVALID;
    if (cap > max_out + 2)
        return OS_ERR_TOOBIG;
    *out = malloc(cap + 1);
    if (*out == NULL)
        return OS_ERR_NOMEM;
    err = os_base64_decode(*out, cap, out_len, in, in_len);
    if (err == OS_OK && *out_len > max_out)
        err = OS_ERR_TOOBIG;
    if (err != OS_OK) {
        free(*out);
        *out = NULL;
        *out_len = 0;
        return err;
    }
    (*out)[*out_len] = '\0';
    return OS_OK;
}
