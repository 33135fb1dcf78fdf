/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The identity credential over libsodium 1.0.18's ristretto255: Pedersen commitment, nullifier,
 * Okamoto-Schnorr proof with a Fiat-Shamir transcript, and the header codec. libsodium 1.0.18 lacks
 * a canonical-scalar check and accepts the identity as a valid point, so both checks live here; its
 * scalar multiplications report an identity result as failure, which the verifier must tell apart
 * from a bad input because a zero s1 or s2 is a legal (if absurdly unlikely) response.
 */
#include "openseed/credential.h"

#include <sodium.h>
#include <string.h>

#include "openseed/base64.h"

#define NULLIFIER_TAG "OpenSeed-v1 nullifier"
#define TRANSCRIPT_TAG "OpenSeed-v1 credential"
#define PRECOMPUTE_TRIES 8

_Static_assert(OS_BASE64_LEN(OS_CRED_WIRE_LEN) == OS_CRED_HEADER_LEN + 1, "header length");
_Static_assert(OS_CRED_PROOF_LEN == OS_CRED_POINT_LEN + 2 * OS_CRED_SCALAR_LEN, "proof layout");
_Static_assert(OS_CRED_WIRE_LEN ==
                   OS_CRED_COMMITMENT_LEN + OS_CRED_NULLIFIER_LEN + OS_CRED_PROOF_LEN,
               "wire layout");

struct os_cred_secret {
    uint8_t x[OS_CRED_SCALAR_LEN];
    uint8_t r[OS_CRED_SCALAR_LEN];
    uint8_t commitment[OS_CRED_COMMITMENT_LEN];
};

/* ristretto255_from_hash(SHA-512("OpenSeed-v1 pedersen H")); test_credential re-derives it. */
static const uint8_t pedersen_h[OS_CRED_POINT_LEN] = {
    0x5c, 0x52, 0xbb, 0x42, 0x5a, 0x21, 0x0e, 0x1b, 0xbb, 0xf3, 0xea, 0x26, 0xdd, 0x28, 0xb5, 0x65,
    0x3e, 0xa4, 0x92, 0xae, 0x8a, 0x5c, 0x42, 0x48, 0x59, 0xb0, 0x83, 0x59, 0xc2, 0xbc, 0x0e, 0x0c,
};

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
static const uint8_t group_order[OS_CRED_SCALAR_LEN] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

int os_cred_scalar_is_canonical(const uint8_t s[OS_CRED_SCALAR_LEN])
{
    unsigned int borrow = 0;

    /* s < L exactly when computing s - L borrows out of the top byte. */
    for (size_t i = 0; i < OS_CRED_SCALAR_LEN; i++)
        borrow = (((unsigned int)s[i] - group_order[i] - borrow) >> 8) & 1u;
    return (int)borrow;
}

static int scalar_ok_nonzero(const uint8_t s[OS_CRED_SCALAR_LEN])
{
    return os_cred_scalar_is_canonical(s) & !sodium_is_zero(s, OS_CRED_SCALAR_LEN);
}

os_err os_cred_point_check(const uint8_t p[OS_CRED_POINT_LEN])
{
    /* The identity's only canonical encoding is all zeros. */
    if (sodium_is_zero(p, OS_CRED_POINT_LEN))
        return OS_ERR_INVALID;
    if (crypto_core_ristretto255_is_valid_point(p) != 1)
        return OS_ERR_INVALID;
    return OS_OK;
}

void os_cred_generator_h(uint8_t h[OS_CRED_POINT_LEN])
{
    memcpy(h, pedersen_h, OS_CRED_POINT_LEN);
}

/*
 * q = n*p (p NULL: the base point) for a valid p, giving the identity encoding rather than an error
 * when the product is the identity. Pre-filling q tells "identity result" (libsodium writes zeros
 * and returns -1) from "p did not decode" (q untouched).
 */
static int mul(uint8_t q[OS_CRED_POINT_LEN], const uint8_t n[OS_CRED_SCALAR_LEN], const uint8_t *p)
{
    int rc;

    memset(q, 0xff, OS_CRED_POINT_LEN);
    rc = p == NULL ? crypto_scalarmult_ristretto255_base(q, n)
                   : crypto_scalarmult_ristretto255(q, n, p);
    if (rc == 0 || sodium_is_zero(q, OS_CRED_POINT_LEN))
        return 0;
    return -1;
}

/* out = a*G + b*H. */
static os_err combine(uint8_t out[OS_CRED_POINT_LEN], const uint8_t a[OS_CRED_SCALAR_LEN],
                      const uint8_t b[OS_CRED_SCALAR_LEN])
{
    uint8_t ag[OS_CRED_POINT_LEN], bh[OS_CRED_POINT_LEN];
    os_err err = OS_ERR_INTERNAL;

    if (mul(ag, a, NULL) != 0 || mul(bh, b, pedersen_h) != 0)
        goto done;
    if (crypto_core_ristretto255_add(out, ag, bh) != 0)
        goto done;
    err = OS_OK;
done:
    /* a*G alone would link or leak what the commitment hides. */
    sodium_memzero(ag, sizeof(ag));
    sodium_memzero(bh, sizeof(bh));
    return err;
}

/* Absorbs item(b) = u32be(len) || b, so no two field sequences hash the same bytes. */
static int absorb(crypto_hash_sha512_state *st, const void *p, size_t len)
{
    uint8_t be[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};

    return crypto_hash_sha512_update(st, be, sizeof(be)) | crypto_hash_sha512_update(st, p, len);
}

static os_err challenge(uint8_t c[OS_CRED_SCALAR_LEN],
                        const uint8_t commitment[OS_CRED_COMMITMENT_LEN],
                        const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                        const uint8_t a[OS_CRED_POINT_LEN],
                        const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                        const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN])
{
    crypto_hash_sha512_state st;
    uint8_t digest[crypto_hash_sha512_BYTES];
    int rc;

    rc = crypto_hash_sha512_init(&st);
    rc |= absorb(&st, TRANSCRIPT_TAG, sizeof(TRANSCRIPT_TAG) - 1);
    rc |= absorb(&st, commitment, OS_CRED_COMMITMENT_LEN);
    rc |= absorb(&st, nullifier, OS_CRED_NULLIFIER_LEN);
    rc |= absorb(&st, a, OS_CRED_POINT_LEN);
    rc |= absorb(&st, channel_id, OS_CRED_CHANNEL_ID_LEN);
    rc |= absorb(&st, metadata_hash, OS_CRED_METADATA_HASH_LEN);
    rc |= crypto_hash_sha512_final(&st, digest);
    if (rc != 0)
        return OS_ERR_INTERNAL;
    crypto_core_ristretto255_scalar_reduce(c, digest);
    return OS_OK;
}

/* Computes the commitment and seals s read-only; frees s on failure. */
static os_err secret_finish(os_cred_secret **out, os_cred_secret *s)
{
    os_err err;

    err = combine(s->commitment, s->x, s->r);
    /* x*G = -r*H cannot happen by chance; an imported secret doing it is not an identity. */
    if (err == OS_OK && sodium_is_zero(s->commitment, OS_CRED_COMMITMENT_LEN))
        err = OS_ERR_INVALID;
    if (err == OS_OK && sodium_mprotect_readonly(s) != 0)
        err = OS_ERR_INTERNAL;
    if (err != OS_OK) {
        sodium_free(s);
        return err;
    }
    *out = s;
    return OS_OK;
}

os_err os_cred_keygen(os_cred_secret **out)
{
    os_cred_secret *s;

    *out = NULL;
    s = sodium_malloc(sizeof(*s));
    if (s == NULL)
        return OS_ERR_NOMEM;
    /* libsodium draws these canonical and non-zero. */
    crypto_core_ristretto255_scalar_random(s->x);
    crypto_core_ristretto255_scalar_random(s->r);
    return secret_finish(out, s);
}

os_err os_cred_secret_import(os_cred_secret **out, const uint8_t in[OS_CRED_SECRET_LEN])
{
    os_cred_secret *s;

    *out = NULL;
    if (!scalar_ok_nonzero(in) || !scalar_ok_nonzero(in + OS_CRED_SCALAR_LEN))
        return OS_ERR_INVALID;
    s = sodium_malloc(sizeof(*s));
    if (s == NULL)
        return OS_ERR_NOMEM;
    memcpy(s->x, in, OS_CRED_SCALAR_LEN);
    memcpy(s->r, in + OS_CRED_SCALAR_LEN, OS_CRED_SCALAR_LEN);
    return secret_finish(out, s);
}

void os_cred_secret_export(uint8_t out[OS_CRED_SECRET_LEN], const os_cred_secret *s)
{
    memcpy(out, s->x, OS_CRED_SCALAR_LEN);
    memcpy(out + OS_CRED_SCALAR_LEN, s->r, OS_CRED_SCALAR_LEN);
}

void os_cred_secret_free(os_cred_secret *s)
{
    /* sodium_free makes the pages writable again, wipes and unlocks them. */
    if (s != NULL)
        sodium_free(s);
}

void os_cred_commit(uint8_t commitment[OS_CRED_COMMITMENT_LEN], const os_cred_secret *s)
{
    memcpy(commitment, s->commitment, OS_CRED_COMMITMENT_LEN);
}

os_err os_cred_nullifier(uint8_t out[OS_CRED_NULLIFIER_LEN], const os_cred_secret *s,
                         const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN], uint64_t voucher_nonce)
{
    crypto_hash_sha512_state st;
    uint8_t digest[crypto_hash_sha512_BYTES], be[8];
    int rc;

    for (size_t i = 0; i < sizeof(be); i++)
        be[i] = (uint8_t)(voucher_nonce >> (56 - 8 * i));
    rc = crypto_hash_sha512_init(&st);
    rc |= absorb(&st, NULLIFIER_TAG, sizeof(NULLIFIER_TAG) - 1);
    rc |= absorb(&st, s->x, OS_CRED_SCALAR_LEN);
    rc |= absorb(&st, channel_id, OS_CRED_CHANNEL_ID_LEN);
    rc |= absorb(&st, be, sizeof(be));
    rc |= crypto_hash_sha512_final(&st, digest);
    if (rc == 0)
        memcpy(out, digest, OS_CRED_NULLIFIER_LEN);
    /* The state has absorbed x; the digest's other half is a free function of x. */
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(digest, sizeof(digest));
    return rc == 0 ? OS_OK : OS_ERR_INTERNAL;
}

os_err os_cred_precompute(os_cred_nonce *n)
{
    os_err err = OS_ERR_INTERNAL;

    /* A = identity would be refused by the verifier; redraw (probability about 2^-252). */
    for (int i = 0; i < PRECOMPUTE_TRIES; i++) {
        crypto_core_ristretto255_scalar_random(n->k1);
        crypto_core_ristretto255_scalar_random(n->k2);
        err = combine(n->a, n->k1, n->k2);
        if (err != OS_OK)
            break;
        if (!sodium_is_zero(n->a, OS_CRED_POINT_LEN)) {
            n->ready = 1;
            return OS_OK;
        }
        err = OS_ERR_INTERNAL;
    }
    os_cred_nonce_wipe(n);
    return err;
}

void os_cred_nonce_wipe(os_cred_nonce *n)
{
    if (n != NULL)
        sodium_memzero(n, sizeof(*n));
}

os_err os_cred_prove_with(uint8_t proof[OS_CRED_PROOF_LEN], os_cred_nonce *n,
                          const os_cred_secret *s, const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                          const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                          const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN])
{
    uint8_t c[OS_CRED_SCALAR_LEN], t[OS_CRED_SCALAR_LEN];
    uint8_t *a = proof, *s1 = proof + OS_CRED_POINT_LEN, *s2 = s1 + OS_CRED_SCALAR_LEN;
    os_err err = OS_ERR_INVALID;

    if (n->ready != 1 || !scalar_ok_nonzero(n->k1) || !scalar_ok_nonzero(n->k2) ||
        sodium_is_zero(n->a, OS_CRED_POINT_LEN))
        goto done;
    err = challenge(c, s->commitment, nullifier, n->a, channel_id, metadata_hash);
    if (err != OS_OK)
        goto done;
    memcpy(a, n->a, OS_CRED_POINT_LEN);
    crypto_core_ristretto255_scalar_mul(t, c, s->x);
    crypto_core_ristretto255_scalar_add(s1, n->k1, t);
    crypto_core_ristretto255_scalar_mul(t, c, s->r);
    crypto_core_ristretto255_scalar_add(s2, n->k2, t);
done:
    sodium_memzero(t, sizeof(t));
    os_cred_nonce_wipe(n);
    return err;
}

os_err os_cred_prove(uint8_t proof[OS_CRED_PROOF_LEN], const os_cred_secret *s,
                     const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                     const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                     const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN])
{
    os_cred_nonce n;
    os_err err;

    err = os_cred_precompute(&n);
    if (err != OS_OK)
        return err;
    return os_cred_prove_with(proof, &n, s, nullifier, channel_id, metadata_hash);
}

os_err os_cred_verify(const uint8_t commitment[OS_CRED_COMMITMENT_LEN],
                      const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                      const uint8_t proof[OS_CRED_PROOF_LEN],
                      const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                      const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN])
{
    const uint8_t *a = proof, *s1 = proof + OS_CRED_POINT_LEN, *s2 = s1 + OS_CRED_SCALAR_LEN;
    uint8_t c[OS_CRED_SCALAR_LEN];
    uint8_t lhs[OS_CRED_POINT_LEN], rhs[OS_CRED_POINT_LEN], t[OS_CRED_POINT_LEN];
    os_err err;

    /* Cheapest first: byte checks, then point decoding, then the three multiplications. */
    if (!os_cred_scalar_is_canonical(s1) || !os_cred_scalar_is_canonical(s2))
        return OS_ERR_INVALID;
    if (os_cred_point_check(commitment) != OS_OK || os_cred_point_check(a) != OS_OK)
        return OS_ERR_INVALID;
    err = challenge(c, commitment, nullifier, a, channel_id, metadata_hash);
    if (err != OS_OK)
        return err;
    /* s1*G + s2*H == A + c*C */
    if (mul(lhs, s1, NULL) != 0 || mul(t, s2, pedersen_h) != 0 ||
        crypto_core_ristretto255_add(lhs, lhs, t) != 0)
        return OS_ERR_INTERNAL;
    if (mul(t, c, commitment) != 0 || crypto_core_ristretto255_add(rhs, a, t) != 0)
        return OS_ERR_INTERNAL;
    /* Ristretto encodings are canonical, so equal points have equal bytes. */
    return sodium_memcmp(lhs, rhs, OS_CRED_POINT_LEN) == 0 ? OS_OK : OS_ERR_CRYPTO;
}

os_err os_cred_header_encode(char *out, size_t out_cap,
                             const uint8_t commitment[OS_CRED_COMMITMENT_LEN],
                             const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                             const uint8_t proof[OS_CRED_PROOF_LEN])
{
    uint8_t wire[OS_CRED_WIRE_LEN];

    if (out_cap < OS_CRED_HEADER_LEN + 1) {
        if (out_cap > 0)
            out[0] = '\0';
        return OS_ERR_TOOBIG;
    }
    memcpy(wire, commitment, OS_CRED_COMMITMENT_LEN);
    memcpy(wire + OS_CRED_COMMITMENT_LEN, nullifier, OS_CRED_NULLIFIER_LEN);
    memcpy(wire + OS_CRED_COMMITMENT_LEN + OS_CRED_NULLIFIER_LEN, proof, OS_CRED_PROOF_LEN);
    return os_base64_encode(out, out_cap, wire, sizeof(wire));
}

os_err os_cred_header_decode(uint8_t commitment[OS_CRED_COMMITMENT_LEN],
                             uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                             uint8_t proof[OS_CRED_PROOF_LEN], const char *in, size_t in_len)
{
    uint8_t wire[OS_CRED_WIRE_LEN];
    size_t len = 0;

    if (in == NULL || in_len != OS_CRED_HEADER_LEN)
        return OS_ERR_INVALID;
    /* os_base64_decode is strict (alphabet, padding), so one wire value has one header text. */
    if (os_base64_decode(wire, sizeof(wire), &len, in, in_len) != OS_OK || len != sizeof(wire))
        return OS_ERR_INVALID;
    memcpy(commitment, wire, OS_CRED_COMMITMENT_LEN);
    memcpy(nullifier, wire + OS_CRED_COMMITMENT_LEN, OS_CRED_NULLIFIER_LEN);
    memcpy(proof, wire + OS_CRED_COMMITMENT_LEN + OS_CRED_NULLIFIER_LEN, OS_CRED_PROOF_LEN);
    return OS_OK;
}

os_err os_cred_header_make(char *out, size_t out_cap, os_cred_nonce *n, const os_cred_secret *s,
                           const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN], uint64_t voucher_nonce,
                           const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN])
{
    uint8_t nullifier[OS_CRED_NULLIFIER_LEN], proof[OS_CRED_PROOF_LEN];
    os_err err;

    if (out_cap > 0)
        out[0] = '\0';
    if (out_cap < OS_CRED_HEADER_LEN + 1) {
        os_cred_nonce_wipe(n);
        return OS_ERR_TOOBIG;
    }
    err = os_cred_nullifier(nullifier, s, channel_id, voucher_nonce);
    if (err != OS_OK) {
        os_cred_nonce_wipe(n);
        return err;
    }
    err = n != NULL ? os_cred_prove_with(proof, n, s, nullifier, channel_id, metadata_hash)
                    : os_cred_prove(proof, s, nullifier, channel_id, metadata_hash);
    if (err != OS_OK)
        return err;
    return os_cred_header_encode(out, out_cap, s->commitment, nullifier, proof);
}
