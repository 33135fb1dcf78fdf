/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HPKE base mode (RFC 9180) for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM: the KEM,
 * the key schedule with its "HPKE-v1" labelled derivations, Seal/Open with sequence-number nonces
 * and secret export. Section numbers in comments refer to RFC 9180.
 */
#include "openseed/hpke.h"

#include <limits.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <string.h>

#include "openseed/ct.h"
#include "openseed/hkdf.h"

/* suite_id for the KEM's own derivations (§4.1) and for the rest of HPKE (§5.1). */
static const uint8_t kem_suite[] = {'K', 'E', 'M', OS_HPKE_KEM_ID >> 8, OS_HPKE_KEM_ID & 0xff};
static const uint8_t hpke_suite[] = {'H',
                                     'P',
                                     'K',
                                     'E',
                                     OS_HPKE_KEM_ID >> 8,
                                     OS_HPKE_KEM_ID & 0xff,
                                     OS_HPKE_KDF_ID >> 8,
                                     OS_HPKE_KDF_ID & 0xff,
                                     OS_HPKE_AEAD_ID >> 8,
                                     OS_HPKE_AEAD_ID & 0xff};
static const char version_label[] = "HPKE-v1";

#define MODE_BASE 0x00

/* LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm) (§4). */
static os_err labeled_extract(uint8_t prk[OS_HPKE_NH], const uint8_t *suite, size_t suite_len,
                              const uint8_t *salt, size_t salt_len, const char *label,
                              const uint8_t *ikm, size_t ikm_len)
{
    const os_hkdf_part parts[] = {
        {version_label, sizeof(version_label) - 1},
        {suite, suite_len},
        {label, strlen(label)},
        {ikm, ikm_len},
    };
    return os_hkdf_sha256_extractv(prk, salt, salt_len, parts, sizeof(parts) / sizeof(parts[0]));
}

/*
 * LabeledExpand(prk, label, info, L) =
 *   Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L) (§4).
 */
static os_err labeled_expand(uint8_t *out, size_t out_len, const uint8_t prk[OS_HPKE_NH],
                             const uint8_t *suite, size_t suite_len, const char *label,
                             const uint8_t *info, size_t info_len)
{
    uint8_t l2[2];
    if (out_len > 0xffff)
        return OS_ERR_RANGE;
    l2[0] = (uint8_t)(out_len >> 8);
    l2[1] = (uint8_t)out_len;
    const os_hkdf_part parts[] = {
        {l2, sizeof(l2)},   {version_label, sizeof(version_label) - 1},
        {suite, suite_len}, {label, strlen(label)},
        {info, info_len},
    };
    return os_hkdf_sha256_expandv(out, out_len, prk, parts, sizeof(parts) / sizeof(parts[0]));
}

/* X25519, refusing the all-zero output a small-order peer key produces (§7.1.4). */
static os_err dh(uint8_t out[32], const uint8_t sk[32], const uint8_t pk[32])
{
    if (crypto_scalarmult(out, sk, pk) != 0 || os_ct_is_zero(out, 32)) {
        os_wipe(out, 32);
        return OS_ERR_CRYPTO;
    }
    return OS_OK;
}

/* ExtractAndExpand(dh, kem_context) with kem_context = enc || pkRm (§4.1). */
static os_err extract_and_expand(uint8_t shared_secret[OS_HPKE_NSECRET], const uint8_t dh_out[32],
                                 const uint8_t enc[OS_HPKE_NENC], const uint8_t pkR[OS_HPKE_NPK])
{
    uint8_t eae_prk[OS_HPKE_NH];
    uint8_t kem_context[OS_HPKE_NENC + OS_HPKE_NPK];
    os_err err;

    memcpy(kem_context, enc, OS_HPKE_NENC);
    memcpy(kem_context + OS_HPKE_NENC, pkR, OS_HPKE_NPK);
    err = labeled_extract(eae_prk, kem_suite, sizeof(kem_suite), NULL, 0, "eae_prk", dh_out, 32);
    if (err == OS_OK)
        err = labeled_expand(shared_secret, OS_HPKE_NSECRET, eae_prk, kem_suite, sizeof(kem_suite),
                             "shared_secret", kem_context, sizeof(kem_context));
    os_wipe(eae_prk, sizeof(eae_prk));
    return err;
}

os_err os_hpke_public_key(uint8_t pk[OS_HPKE_NPK], const uint8_t sk[OS_HPKE_NSK])
{
    if (pk == NULL || sk == NULL)
        return OS_ERR_INVALID;
    if (crypto_scalarmult_base(pk, sk) != 0)
        return OS_ERR_CRYPTO;
    return OS_OK;
}

os_err os_hpke_keypair(uint8_t sk[OS_HPKE_NSK], uint8_t pk[OS_HPKE_NPK])
{
    os_err err;
    if (sk == NULL || pk == NULL)
        return OS_ERR_INVALID;
    randombytes_buf(sk, OS_HPKE_NSK);
    err = os_hpke_public_key(pk, sk);
    if (err != OS_OK)
        os_wipe(sk, OS_HPKE_NSK);
    return err;
}

os_err os_hpke_derive_keypair(uint8_t sk[OS_HPKE_NSK], uint8_t pk[OS_HPKE_NPK], const uint8_t *ikm,
                              size_t ikm_len)
{
    uint8_t dkp_prk[OS_HPKE_NH];
    os_err err;

    if (sk == NULL || pk == NULL || ikm == NULL || ikm_len < OS_HPKE_NSK)
        return OS_ERR_INVALID;
    if (ikm_len > OS_HPKE_MAX_INFO)
        return OS_ERR_TOOBIG;
    /* §7.1.3: for X25519 the expanded bytes are the private key as they are; no rejection loop. */
    err = labeled_extract(dkp_prk, kem_suite, sizeof(kem_suite), NULL, 0, "dkp_prk", ikm, ikm_len);
    if (err == OS_OK)
        err = labeled_expand(sk, OS_HPKE_NSK, dkp_prk, kem_suite, sizeof(kem_suite), "sk", NULL, 0);
    if (err == OS_OK)
        err = os_hpke_public_key(pk, sk);
    os_wipe(dkp_prk, sizeof(dkp_prk));
    if (err != OS_OK)
        os_wipe(sk, OS_HPKE_NSK);
    return err;
}

os_err os_hpke_encap(uint8_t shared_secret[OS_HPKE_NSECRET], uint8_t enc[OS_HPKE_NENC],
                     const uint8_t pkR[OS_HPKE_NPK], const uint8_t skE[OS_HPKE_NSK],
                     const uint8_t pkE[OS_HPKE_NPK])
{
    uint8_t z[32];
    os_err err;

    if (shared_secret == NULL || enc == NULL || pkR == NULL || skE == NULL || pkE == NULL)
        return OS_ERR_INVALID;
    err = dh(z, skE, pkR);
    if (err == OS_OK) {
        memmove(enc, pkE, OS_HPKE_NENC);
        err = extract_and_expand(shared_secret, z, enc, pkR);
    }
    os_wipe(z, sizeof(z));
    if (err != OS_OK)
        os_wipe(shared_secret, OS_HPKE_NSECRET);
    return err;
}

os_err os_hpke_decap(uint8_t shared_secret[OS_HPKE_NSECRET], const uint8_t enc[OS_HPKE_NENC],
                     const uint8_t skR[OS_HPKE_NSK], const uint8_t pkR[OS_HPKE_NPK])
{
    uint8_t z[32];
    os_err err;

    if (shared_secret == NULL || enc == NULL || skR == NULL || pkR == NULL)
        return OS_ERR_INVALID;
    err = dh(z, skR, enc);
    if (err == OS_OK)
        err = extract_and_expand(shared_secret, z, enc, pkR);
    os_wipe(z, sizeof(z));
    if (err != OS_OK)
        os_wipe(shared_secret, OS_HPKE_NSECRET);
    return err;
}

/* KeySchedule(mode_base, shared_secret, info, psk = "", psk_id = "") (§5.1). */
static os_err key_schedule(os_hpke_ctx *ctx, const uint8_t shared_secret[OS_HPKE_NSECRET],
                           const uint8_t *info, size_t info_len, int is_sender)
{
    uint8_t ksc[1 + 2 * OS_HPKE_NH]; /* mode || psk_id_hash || info_hash */
    uint8_t secret[OS_HPKE_NH];
    os_err err;

    ksc[0] = MODE_BASE;
    err = labeled_extract(ksc + 1, hpke_suite, sizeof(hpke_suite), NULL, 0, "psk_id_hash", NULL, 0);
    if (err == OS_OK)
        err = labeled_extract(ksc + 1 + OS_HPKE_NH, hpke_suite, sizeof(hpke_suite), NULL, 0,
                              "info_hash", info, info_len);
    if (err == OS_OK)
        err = labeled_extract(secret, hpke_suite, sizeof(hpke_suite), shared_secret,
                              OS_HPKE_NSECRET, "secret", NULL, 0);
    if (err == OS_OK)
        err = labeled_expand(ctx->key, OS_HPKE_NK, secret, hpke_suite, sizeof(hpke_suite), "key",
                             ksc, sizeof(ksc));
    if (err == OS_OK)
        err = labeled_expand(ctx->base_nonce, OS_HPKE_NN, secret, hpke_suite, sizeof(hpke_suite),
                             "base_nonce", ksc, sizeof(ksc));
    if (err == OS_OK)
        err = labeled_expand(ctx->exporter_secret, OS_HPKE_NH, secret, hpke_suite,
                             sizeof(hpke_suite), "exp", ksc, sizeof(ksc));
    if (err == OS_OK)
        err = os_hpke_aead_init(&ctx->aead, ctx->key, is_sender);
    os_wipe(secret, sizeof(secret));
    ctx->seq = 0;
    ctx->is_sender = is_sender;
    if (err != OS_OK)
        os_hpke_ctx_clear(ctx);
    return err;
}

os_err os_hpke_setup_base_s_with(os_hpke_ctx *ctx, uint8_t enc[OS_HPKE_NENC],
                                 const uint8_t pkR[OS_HPKE_NPK], const uint8_t *info,
                                 size_t info_len, const uint8_t skE[OS_HPKE_NSK],
                                 const uint8_t pkE[OS_HPKE_NPK])
{
    uint8_t ss[OS_HPKE_NSECRET];
    os_err err;

    if (ctx == NULL)
        return OS_ERR_INVALID;
    memset(ctx, 0, sizeof(*ctx));
    if (enc == NULL || pkR == NULL || skE == NULL || pkE == NULL || (info == NULL && info_len))
        return OS_ERR_INVALID;
    if (info_len > OS_HPKE_MAX_INFO)
        return OS_ERR_TOOBIG;
    err = os_hpke_encap(ss, enc, pkR, skE, pkE);
    if (err == OS_OK)
        err = key_schedule(ctx, ss, info, info_len, 1);
    os_wipe(ss, sizeof(ss));
    return err;
}

os_err os_hpke_setup_base_s(os_hpke_ctx *ctx, uint8_t enc[OS_HPKE_NENC],
                            const uint8_t pkR[OS_HPKE_NPK], const uint8_t *info, size_t info_len)
{
    uint8_t skE[OS_HPKE_NSK], pkE[OS_HPKE_NPK];
    os_err err;

    if (ctx == NULL)
        return OS_ERR_INVALID;
    memset(ctx, 0, sizeof(*ctx));
    err = os_hpke_keypair(skE, pkE);
    if (err == OS_OK)
        err = os_hpke_setup_base_s_with(ctx, enc, pkR, info, info_len, skE, pkE);
    os_wipe(skE, sizeof(skE));
    return err;
}

os_err os_hpke_setup_base_r(os_hpke_ctx *ctx, const uint8_t enc[OS_HPKE_NENC],
                            const uint8_t skR[OS_HPKE_NSK], const uint8_t pkR[OS_HPKE_NPK],
                            const uint8_t *info, size_t info_len)
{
    uint8_t ss[OS_HPKE_NSECRET];
    os_err err;

    if (ctx == NULL)
        return OS_ERR_INVALID;
    memset(ctx, 0, sizeof(*ctx));
    if (enc == NULL || skR == NULL || pkR == NULL || (info == NULL && info_len))
        return OS_ERR_INVALID;
    if (info_len > OS_HPKE_MAX_INFO)
        return OS_ERR_TOOBIG;
    err = os_hpke_decap(ss, enc, skR, pkR);
    if (err == OS_OK)
        err = key_schedule(ctx, ss, info, info_len, 0);
    os_wipe(ss, sizeof(ss));
    return err;
}

/* ComputeNonce(seq) = base_nonce XOR I2OSP(seq, Nn) (§5.2). */
static void compute_nonce(uint8_t nonce[OS_HPKE_NN], const os_hpke_ctx *ctx)
{
    memcpy(nonce, ctx->base_nonce, OS_HPKE_NN);
    for (int i = 0; i < 8; i++)
        nonce[OS_HPKE_NN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

/*
 * §5.2 refuses a message once seq reaches 2^(8*Nn) - 1. Our counter is 64 bits, so the same rule
 * applies at 2^64 - 1: unreachable in practice, but a wrapped counter would reuse a nonce.
 */
#define SEQ_LIMIT UINT64_MAX

os_err os_hpke_seal(os_hpke_ctx *ctx, uint8_t *ct, size_t ct_cap, size_t *ct_len,
                    const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len)
{
    uint8_t nonce[OS_HPKE_NN];
    os_err err;

    if (ctx == NULL || !ctx->is_sender || ctx->aead.evp == NULL)
        return OS_ERR_INVALID;
    if (ctx->seq >= SEQ_LIMIT)
        return OS_ERR_RANGE;
    compute_nonce(nonce, ctx);
    err = os_hpke_aead_seal(&ctx->aead, ct, ct_cap, ct_len, nonce, aad, aad_len, pt, pt_len);
    if (err == OS_OK)
        ctx->seq++;
    return err;
}

os_err os_hpke_open(os_hpke_ctx *ctx, uint8_t *pt, size_t pt_cap, size_t *pt_len,
                    const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len)
{
    uint8_t nonce[OS_HPKE_NN];
    os_err err;

    if (ctx == NULL || ctx->is_sender || ctx->aead.evp == NULL)
        return OS_ERR_INVALID;
    if (ctx->seq >= SEQ_LIMIT)
        return OS_ERR_RANGE;
    compute_nonce(nonce, ctx);
    err = os_hpke_aead_open(&ctx->aead, pt, pt_cap, pt_len, nonce, aad, aad_len, ct, ct_len);
    if (err == OS_OK)
        ctx->seq++;
    return err;
}

os_err os_hpke_export(const os_hpke_ctx *ctx, uint8_t *out, size_t out_len,
                      const uint8_t *exporter_context, size_t exporter_context_len)
{
    if (ctx == NULL || ctx->aead.evp == NULL || (out == NULL && out_len) ||
        (exporter_context == NULL && exporter_context_len))
        return OS_ERR_INVALID;
    if (out_len > OS_HPKE_MAX_EXPORT)
        return OS_ERR_RANGE;
    if (exporter_context_len > OS_HPKE_MAX_INFO)
        return OS_ERR_TOOBIG;
    return labeled_expand(out, out_len, ctx->exporter_secret, hpke_suite, sizeof(hpke_suite), "sec",
                          exporter_context, exporter_context_len);
}

void os_hpke_ctx_clear(os_hpke_ctx *ctx)
{
    if (ctx == NULL)
        return;
    os_hpke_aead_clear(&ctx->aead);
    os_wipe(ctx, sizeof(*ctx));
}

/* ---- AES-128-GCM over EVP, keyed once and re-nonced per message ---- */

os_err os_hpke_aead_init(os_hpke_aead *a, const uint8_t key[OS_HPKE_NK], int encrypt)
{
    EVP_CIPHER_CTX *c;

    if (a == NULL)
        return OS_ERR_INVALID;
    a->evp = NULL;
    a->encrypt = 0;
    if (key == NULL)
        return OS_ERR_INVALID;
    c = EVP_CIPHER_CTX_new();
    if (c == NULL)
        return OS_ERR_NOMEM;
    /* GCM's default IV length is 12 = Nn; the nonce is set per message. */
    if (EVP_CipherInit_ex(c, EVP_aes_128_gcm(), NULL, key, NULL, encrypt ? 1 : 0) != 1) {
        EVP_CIPHER_CTX_free(c);
        return OS_ERR_INTERNAL;
    }
    a->evp = c;
    a->encrypt = encrypt ? 1 : 0;
    return OS_OK;
}

void os_hpke_aead_clear(os_hpke_aead *a)
{
    if (a == NULL)
        return;
    EVP_CIPHER_CTX_free(a->evp); /* cleanses the key schedule; NULL-safe */
    a->evp = NULL;
    a->encrypt = 0;
}

static os_err aead_begin(os_hpke_aead *a, const uint8_t nonce[OS_HPKE_NN], const uint8_t *aad,
                         size_t aad_len)
{
    int outl;
    if (EVP_CipherInit_ex(a->evp, NULL, NULL, NULL, nonce, -1) != 1)
        return OS_ERR_INTERNAL;
    if (aad_len > 0 && EVP_CipherUpdate(a->evp, NULL, &outl, aad, (int)aad_len) != 1)
        return OS_ERR_INTERNAL;
    return OS_OK;
}

os_err os_hpke_aead_seal(os_hpke_aead *a, uint8_t *ct, size_t ct_cap, size_t *ct_len,
                         const uint8_t nonce[OS_HPKE_NN], const uint8_t *aad, size_t aad_len,
                         const uint8_t *pt, size_t pt_len)
{
    int n1 = 0, n2 = 0;
    os_err err;

    if (a == NULL || a->evp == NULL || !a->encrypt || ct == NULL || ct_len == NULL ||
        nonce == NULL || (aad == NULL && aad_len) || (pt == NULL && pt_len))
        return OS_ERR_INVALID;
    if (aad_len > OS_HPKE_MAX_INFO || pt_len > OS_HPKE_MAX_MSG || ct_cap < pt_len + OS_HPKE_NT)
        return OS_ERR_TOOBIG;
    err = aead_begin(a, nonce, aad, aad_len);
    if (err != OS_OK)
        return err;
    if (pt_len > 0 && EVP_CipherUpdate(a->evp, ct, &n1, pt, (int)pt_len) != 1)
        return OS_ERR_INTERNAL;
    if (EVP_CipherFinal_ex(a->evp, ct + n1, &n2) != 1 || (size_t)n1 + (size_t)n2 != pt_len)
        return OS_ERR_INTERNAL;
    if (EVP_CIPHER_CTX_ctrl(a->evp, EVP_CTRL_AEAD_GET_TAG, OS_HPKE_NT, ct + pt_len) != 1)
        return OS_ERR_INTERNAL;
    *ct_len = pt_len + OS_HPKE_NT;
    return OS_OK;
}

os_err os_hpke_aead_open(os_hpke_aead *a, uint8_t *pt, size_t pt_cap, size_t *pt_len,
                         const uint8_t nonce[OS_HPKE_NN], const uint8_t *aad, size_t aad_len,
                         const uint8_t *ct, size_t ct_len)
{
    uint8_t tag[OS_HPKE_NT], empty[1];
    uint8_t *out;
    size_t n;
    int n1 = 0, n2 = 0;
    os_err err;

    if (a == NULL || a->evp == NULL || a->encrypt || pt_len == NULL || nonce == NULL ||
        (aad == NULL && aad_len) || (ct == NULL && ct_len))
        return OS_ERR_INVALID;
    if (ct_len < OS_HPKE_NT)
        return OS_ERR_CRYPTO; /* cannot even hold a tag */
    n = ct_len - OS_HPKE_NT;
    if (aad_len > OS_HPKE_MAX_INFO || n > OS_HPKE_MAX_MSG || pt_cap < n)
        return OS_ERR_TOOBIG;
    if (pt == NULL && n)
        return OS_ERR_INVALID;
    out = pt != NULL ? pt : empty;   /* EVP wants somewhere to point even for no output */
    memcpy(tag, ct + n, OS_HPKE_NT); /* before pt, which may alias ct, is written */
    err = aead_begin(a, nonce, aad, aad_len);
    if (err != OS_OK)
        return err;
    if (n > 0 && EVP_CipherUpdate(a->evp, out, &n1, ct, (int)n) != 1)
        err = OS_ERR_INTERNAL;
    else if (EVP_CIPHER_CTX_ctrl(a->evp, EVP_CTRL_AEAD_SET_TAG, OS_HPKE_NT, tag) != 1)
        err = OS_ERR_INTERNAL;
    else if (EVP_CipherFinal_ex(a->evp, out + n1, &n2) != 1)
        err = OS_ERR_CRYPTO;
    else if ((size_t)n1 + (size_t)n2 != n)
        err = OS_ERR_INTERNAL;
    if (err != OS_OK) {
        os_wipe(out, n);
        return err;
    }
    *pt_len = n;
    return OS_OK;
}
