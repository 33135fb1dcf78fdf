/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HKDF-SHA256 (RFC 5869) over libsodium's incremental HMAC-SHA256. Parts are streamed into the
 * HMAC state rather than concatenated, so no call allocates or copies its inputs.
 */
#include "openseed/hkdf.h"

#include <sodium.h>
#include <string.h>

/* libsodium declares the HMAC key nonnull even when its length is 0. */
static const unsigned char empty_key[1];

static int parts_ok(const os_hkdf_part *parts, size_t n)
{
    if (n > 0 && parts == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].data == NULL && parts[i].len != 0)
            return 0;
    return 1;
}

static int hmac_update(crypto_auth_hmacsha256_state *st, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    return crypto_auth_hmacsha256_update(st, data, (unsigned long long)len);
}

os_err os_hkdf_sha256_extractv(uint8_t prk[OS_HKDF_SHA256_LEN], const uint8_t *salt,
                               size_t salt_len, const os_hkdf_part *ikm, size_t n_parts)
{
    crypto_auth_hmacsha256_state st;
    int rc = 0;

    if (prk == NULL || (salt == NULL && salt_len != 0) || !parts_ok(ikm, n_parts))
        return OS_ERR_INVALID;
    /* An HMAC key shorter than the block is zero-padded, so "no salt" and HashLen zeros agree. */
    rc |= crypto_auth_hmacsha256_init(&st, salt_len ? salt : empty_key, salt_len);
    for (size_t i = 0; i < n_parts; i++)
        rc |= hmac_update(&st, ikm[i].data, ikm[i].len);
    rc |= crypto_auth_hmacsha256_final(&st, prk);
    sodium_memzero(&st, sizeof(st));
    if (rc != 0) {
        sodium_memzero(prk, OS_HKDF_SHA256_LEN);
        return OS_ERR_INTERNAL;
    }
    return OS_OK;
}

os_err os_hkdf_sha256_extract(uint8_t prk[OS_HKDF_SHA256_LEN], const uint8_t *salt, size_t salt_len,
                              const uint8_t *ikm, size_t ikm_len)
{
    const os_hkdf_part part = {ikm, ikm_len};
    return os_hkdf_sha256_extractv(prk, salt, salt_len, &part, 1);
}

os_err os_hkdf_sha256_expandv(uint8_t *okm, size_t okm_len, const uint8_t prk[OS_HKDF_SHA256_LEN],
                              const os_hkdf_part *info, size_t n_parts)
{
    crypto_auth_hmacsha256_state keyed, st;
    uint8_t t[OS_HKDF_SHA256_LEN];
    size_t done = 0;
    int rc = 0;

    if (okm_len > OS_HKDF_SHA256_MAX_OKM)
        return OS_ERR_RANGE;
    if ((okm == NULL && okm_len != 0) || prk == NULL || !parts_ok(info, n_parts))
        return OS_ERR_INVALID;
    if (okm_len == 0)
        return OS_OK;
    /* Keying once up front is what lets okm alias prk: prk is never read again. */
    rc |= crypto_auth_hmacsha256_init(&keyed, prk, OS_HKDF_SHA256_LEN);
    for (unsigned i = 1; done < okm_len; i++) {
        uint8_t ctr = (uint8_t)i;
        size_t n = okm_len - done < sizeof(t) ? okm_len - done : sizeof(t);

        st = keyed;
        if (i > 1)
            rc |= hmac_update(&st, t, sizeof(t));
        for (size_t j = 0; j < n_parts; j++)
            rc |= hmac_update(&st, info[j].data, info[j].len);
        rc |= hmac_update(&st, &ctr, 1);
        rc |= crypto_auth_hmacsha256_final(&st, t);
        memcpy(okm + done, t, n);
        done += n;
    }
    sodium_memzero(&keyed, sizeof(keyed));
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(t, sizeof(t));
    if (rc != 0) {
        sodium_memzero(okm, okm_len);
        return OS_ERR_INTERNAL;
    }
    return OS_OK;
}

os_err os_hkdf_sha256_expand(uint8_t *okm, size_t okm_len, const uint8_t prk[OS_HKDF_SHA256_LEN],
                             const uint8_t *info, size_t info_len)
{
    const os_hkdf_part part = {info, info_len};
    return os_hkdf_sha256_expandv(okm, okm_len, prk, &part, 1);
}
