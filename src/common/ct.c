/* SPDX-License-Identifier: Apache-2.0 */
/* Constant-time compares and wiping over libsodium. */
#include "openseed/ct.h"

#include <sodium.h>
#include <string.h>

int os_ct_eq(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

int os_ct_is_zero(const void *p, size_t len)
{
    return sodium_is_zero(p, len) == 1;
}

int os_ct_streq(const char *a, const char *b)
{
    unsigned char ha[crypto_hash_sha256_BYTES], hb[crypto_hash_sha256_BYTES];
    int eq;

    if (a == NULL || b == NULL)
        return 0;
    crypto_hash_sha256(ha, (const unsigned char *)a, strlen(a));
    crypto_hash_sha256(hb, (const unsigned char *)b, strlen(b));
    eq = sodium_memcmp(ha, hb, sizeof(ha)) == 0;
    sodium_memzero(ha, sizeof(ha));
    sodium_memzero(hb, sizeof(hb));
    return eq;
}

void os_wipe(void *p, size_t len)
{
    if (p != NULL)
        sodium_memzero(p, len);
}
