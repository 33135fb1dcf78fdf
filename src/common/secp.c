/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secp256k1 for Ethereum over libsecp256k1: one context, created and randomised once under
 * pthread_once and then only read (libsecp256k1 allows concurrent use of a const context), signing
 * with RFC 6979 nonces, recovery that refuses malleable (high-s) signatures, addresses and EIP-55.
 * Every private-key temporary is wiped before return.
 */
#include "openseed/secp.h"

#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <sodium.h>
#include <string.h>

#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/keccak.h"

static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static secp256k1_context *ctx_shared; /* written once in ctx_init, read-only afterwards */

static void ctx_init(void)
{
    unsigned char seed[32];
    secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);

    if (c == NULL)
        return;
    /* Blinding protects signing against side channels; a context that cannot be blinded is unused.
     */
    randombytes_buf(seed, sizeof(seed));
    if (!secp256k1_context_randomize(c, seed)) {
        secp256k1_context_destroy(c);
        sodium_memzero(seed, sizeof(seed));
        return;
    }
    sodium_memzero(seed, sizeof(seed));
    ctx_shared = c;
}

static const secp256k1_context *ctx_get(void)
{
    if (pthread_once(&ctx_once, ctx_init) != 0)
        return NULL;
    return ctx_shared;
}

os_err os_secp_keygen(uint8_t priv[OS_SECP_PRIVKEY_LEN])
{
    const secp256k1_context *ctx = ctx_get();

    if (ctx == NULL)
        return OS_ERR_INTERNAL;
    /* A uniform 32-byte string is out of range with probability ~2^-128; loop is bounded anyway. */
    for (int tries = 0; tries < 64; tries++) {
        randombytes_buf(priv, OS_SECP_PRIVKEY_LEN);
        if (secp256k1_ec_seckey_verify(ctx, priv))
            return OS_OK;
    }
    sodium_memzero(priv, OS_SECP_PRIVKEY_LEN);
    return OS_ERR_INTERNAL;
}

os_err os_secp_privkey_check(const uint8_t priv[OS_SECP_PRIVKEY_LEN])
{
    const secp256k1_context *ctx = ctx_get();

    if (ctx == NULL)
        return OS_ERR_INTERNAL;
    return secp256k1_ec_seckey_verify(ctx, priv) ? OS_OK : OS_ERR_INVALID;
}

/* Serialises a parsed public key as X||Y without the 0x04 tag. */
static os_err pubkey_out(const secp256k1_context *ctx, uint8_t pub[OS_SECP_PUBKEY_LEN],
                         const secp256k1_pubkey *pk)
{
    unsigned char buf[65];
    size_t len = sizeof(buf);

    if (!secp256k1_ec_pubkey_serialize(ctx, buf, &len, pk, SECP256K1_EC_UNCOMPRESSED) ||
        len != sizeof(buf) || buf[0] != 0x04)
        return OS_ERR_INTERNAL;
    memcpy(pub, buf + 1, OS_SECP_PUBKEY_LEN);
    return OS_OK;
}

os_err os_secp_pubkey(uint8_t pub[OS_SECP_PUBKEY_LEN], const uint8_t priv[OS_SECP_PRIVKEY_LEN])
{
    const secp256k1_context *ctx = ctx_get();
    secp256k1_pubkey pk;

    if (ctx == NULL)
        return OS_ERR_INTERNAL;
    if (!secp256k1_ec_pubkey_create(ctx, &pk, priv))
        return OS_ERR_INVALID;
    return pubkey_out(ctx, pub, &pk);
}

void os_secp_pubkey_address(uint8_t addr[OS_ADDRESS_LEN], const uint8_t pub[OS_SECP_PUBKEY_LEN])
{
    uint8_t h[32];

    os_keccak256(h, pub, OS_SECP_PUBKEY_LEN);
    memcpy(addr, h + 12, OS_ADDRESS_LEN);
}

os_err os_secp_address(uint8_t addr[OS_ADDRESS_LEN], const uint8_t priv[OS_SECP_PRIVKEY_LEN])
{
    uint8_t pub[OS_SECP_PUBKEY_LEN];
    os_err err = os_secp_pubkey(pub, priv);

    if (err != OS_OK)
        return err;
    os_secp_pubkey_address(addr, pub);
    return OS_OK;
}

os_err os_secp_sign(uint8_t sig[OS_SECP_SIG_LEN], const uint8_t priv[OS_SECP_PRIVKEY_LEN],
                    const uint8_t digest[32])
{
    const secp256k1_context *ctx = ctx_get();
    secp256k1_ecdsa_recoverable_signature rs;
    int recid = -1;

    if (ctx == NULL)
        return OS_ERR_INTERNAL;
    /* NULL nonce function = RFC 6979 (HMAC-SHA256); libsecp256k1 always emits low-s. */
    if (!secp256k1_ecdsa_sign_recoverable(ctx, &rs, digest, priv, NULL, NULL)) {
        sodium_memzero(&rs, sizeof(rs));
        return OS_ERR_INVALID;
    }
    if (!secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, sig, &recid, &rs) ||
        recid < 0 || recid > 1) {
        /* recid 2/3 (r >= n - p) has probability ~2^-127; treat it as a failure, not a signature */
        sodium_memzero(&rs, sizeof(rs));
        sodium_memzero(sig, OS_SECP_SIG_LEN);
        return OS_ERR_INTERNAL;
    }
    sig[64] = (uint8_t)(27 + recid);
    sodium_memzero(&rs, sizeof(rs));
    return OS_OK;
}

os_err os_secp_recover_pubkey(uint8_t pub[OS_SECP_PUBKEY_LEN], const uint8_t digest[32],
                              const uint8_t sig[OS_SECP_SIG_LEN])
{
    const secp256k1_context *ctx = ctx_get();
    secp256k1_ecdsa_recoverable_signature rs;
    secp256k1_ecdsa_signature plain;
    secp256k1_pubkey pk;
    int recid;

    if (ctx == NULL)
        return OS_ERR_INTERNAL;
    if (sig[64] == 27 || sig[64] == 28)
        recid = sig[64] - 27;
    else if (sig[64] == 0 || sig[64] == 1)
        recid = sig[64];
    else
        return OS_ERR_CRYPTO;
    /* parse_compact refuses r or s >= n but not zero; recovery would fail on zero, say so early */
    if (os_ct_is_zero(sig, 32) || os_ct_is_zero(sig + 32, 32))
        return OS_ERR_CRYPTO;
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &rs, sig, recid))
        return OS_ERR_CRYPTO;
    /* normalize returns 1 when s was above n/2: the malleable twin EIP-2 forbids */
    if (!secp256k1_ecdsa_recoverable_signature_convert(ctx, &plain, &rs))
        return OS_ERR_CRYPTO;
    if (secp256k1_ecdsa_signature_normalize(ctx, NULL, &plain))
        return OS_ERR_CRYPTO;
    if (!secp256k1_ecdsa_recover(ctx, &pk, &rs, digest))
        return OS_ERR_CRYPTO;
    return pubkey_out(ctx, pub, &pk);
}

os_err os_secp_recover(uint8_t addr[OS_ADDRESS_LEN], const uint8_t digest[32],
                       const uint8_t sig[OS_SECP_SIG_LEN])
{
    uint8_t pub[OS_SECP_PUBKEY_LEN];
    os_err err = os_secp_recover_pubkey(pub, digest, sig);

    if (err != OS_OK)
        return err;
    os_secp_pubkey_address(addr, pub);
    return OS_OK;
}

os_err os_secp_verify(const uint8_t expected[OS_ADDRESS_LEN], const uint8_t digest[32],
                      const uint8_t sig[OS_SECP_SIG_LEN])
{
    uint8_t got[OS_ADDRESS_LEN];

    if (os_secp_recover(got, digest, sig) != OS_OK)
        return OS_ERR_CRYPTO;
    return os_ct_eq(got, expected, OS_ADDRESS_LEN) ? OS_OK : OS_ERR_CRYPTO;
}

/* The keccak256 of the lower-case hex digits (no 0x) decides which letters are upper case. */
static void eip55_hash(uint8_t h[32], const char lower[40])
{
    os_keccak256(h, lower, 40);
}

static int eip55_upper(const uint8_t h[32], size_t i)
{
    uint8_t nibble = (i % 2 == 0) ? (uint8_t)(h[i / 2] >> 4) : (uint8_t)(h[i / 2] & 0x0f);
    return nibble >= 8;
}

void os_eip55_format(char out[OS_ADDRESS_STR_LEN], const uint8_t addr[OS_ADDRESS_LEN])
{
    static const char digits[] = "0123456789abcdef";
    char lower[40];
    uint8_t h[32];

    for (size_t i = 0; i < OS_ADDRESS_LEN; i++) {
        lower[2 * i] = digits[addr[i] >> 4];
        lower[2 * i + 1] = digits[addr[i] & 0x0f];
    }
    eip55_hash(h, lower);
    out[0] = '0';
    out[1] = 'x';
    for (size_t i = 0; i < 40; i++) {
        char c = lower[i];
        if (c >= 'a' && eip55_upper(h, i))
            c = (char)(c - 'a' + 'A');
        out[2 + i] = c;
    }
    out[42] = '\0';
}

os_err os_eip55_parse(uint8_t addr[OS_ADDRESS_LEN], const char *text)
{
    char lower[40];
    uint8_t h[32], tmp[OS_ADDRESS_LEN];
    int has_lower = 0, has_upper = 0;

    /* the decoder also takes "0X"; an address is written with "0x" only */
    if (text == NULL || text[0] != '0' || text[1] != 'x' ||
        os_hex_decode_exact(tmp, sizeof(tmp), text) != OS_OK)
        return OS_ERR_INVALID;
    for (size_t i = 0; i < 40; i++) {
        char c = text[2 + i];
        if (c >= 'a' && c <= 'f')
            has_lower = 1;
        else if (c >= 'A' && c <= 'F')
            has_upper = 1;
        lower[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    if (has_lower && has_upper) {
        eip55_hash(h, lower);
        for (size_t i = 0; i < 40; i++) {
            char c = text[2 + i];
            if (c >= '0' && c <= '9')
                continue;
            if ((c >= 'A' && c <= 'F') != eip55_upper(h, i))
                return OS_ERR_INVALID;
        }
    }
    memcpy(addr, tmp, OS_ADDRESS_LEN);
    return OS_OK;
}
