/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Oblivious HTTP (RFC 9458) request and response encapsulation, key configurations, and chunked
 * responses after draft-ietf-ohai-chunked-ohttp: a sealing side and an incremental receiving side
 * that takes the stream in any split. The byte layouts are documented in ohttp.h.
 */
#include "openseed/ohttp.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/ct.h"
#include "openseed/hkdf.h"

#define ID_HI(x) (uint8_t)((x) >> 8)
#define ID_LO(x) (uint8_t)((x)&0xff)

static const uint8_t final_aad[] = {'f', 'i', 'n', 'a', 'l'};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* ---- key configuration (RFC 9458 §3.1) ---- */

os_err os_ohttp_keyconfig_encode(uint8_t *out, size_t out_cap, size_t *out_len, uint8_t key_id,
                                 const uint8_t pk[OS_HPKE_NPK], const os_ohttp_symalg *algs,
                                 size_t n_algs)
{
    static const os_ohttp_symalg ours = {OS_HPKE_KDF_ID, OS_HPKE_AEAD_ID};
    size_t len, p;
    int have_ours = 0;

    if (out == NULL || out_len == NULL || pk == NULL || (algs == NULL && n_algs != 0))
        return OS_ERR_INVALID;
    if (algs == NULL) {
        algs = &ours;
        n_algs = 1;
    }
    if (n_algs > 65532 / 4)
        return OS_ERR_TOOBIG;
    for (size_t i = 0; i < n_algs; i++)
        if (algs[i].kdf_id == OS_HPKE_KDF_ID && algs[i].aead_id == OS_HPKE_AEAD_ID)
            have_ours = 1;
    if (!have_ours)
        return OS_ERR_INVALID;
    len = 1 + 2 + OS_HPKE_NPK + 2 + 4 * n_algs;
    if (out_cap < len)
        return OS_ERR_TOOBIG;
    out[0] = key_id;
    put16(out + 1, OS_HPKE_KEM_ID);
    memcpy(out + 3, pk, OS_HPKE_NPK);
    put16(out + 3 + OS_HPKE_NPK, (uint16_t)(4 * n_algs));
    p = 5 + OS_HPKE_NPK;
    for (size_t i = 0; i < n_algs; i++, p += 4) {
        put16(out + p, algs[i].kdf_id);
        put16(out + p + 2, algs[i].aead_id);
    }
    *out_len = len;
    return OS_OK;
}

os_err os_ohttp_keyconfig_parse(os_ohttp_keyconfig *kc, const uint8_t *in, size_t in_len)
{
    size_t sym_len;
    int have_ours = 0;

    if (kc == NULL || (in == NULL && in_len != 0))
        return OS_ERR_INVALID;
    if (in_len < 3)
        return OS_ERR_INVALID;
    /* Npk depends on the KEM, so nothing past an unknown kem_id can be checked. */
    if (get16(in + 1) != OS_HPKE_KEM_ID)
        return OS_ERR_UNSUPPORTED;
    if (in_len < 5 + OS_HPKE_NPK)
        return OS_ERR_INVALID;
    sym_len = get16(in + 3 + OS_HPKE_NPK);
    if (sym_len < 4 || sym_len % 4 != 0 || in_len != 5 + OS_HPKE_NPK + sym_len)
        return OS_ERR_INVALID;
    for (size_t p = 5 + OS_HPKE_NPK; p < in_len; p += 4)
        if (get16(in + p) == OS_HPKE_KDF_ID && get16(in + p + 2) == OS_HPKE_AEAD_ID)
            have_ours = 1;
    if (!have_ours)
        return OS_ERR_UNSUPPORTED;
    kc->key_id = in[0];
    memcpy(kc->pk, in + 3, OS_HPKE_NPK);
    return OS_OK;
}

/* ---- requests (RFC 9458 §4.3) ---- */

#define REQ_LABEL_LEN (sizeof(OS_OHTTP_LABEL_REQUEST) - 1)

static void build_hdr(uint8_t hdr[OS_OHTTP_HDR_LEN], uint8_t key_id)
{
    hdr[0] = key_id;
    put16(hdr + 1, OS_HPKE_KEM_ID);
    put16(hdr + 3, OS_HPKE_KDF_ID);
    put16(hdr + 5, OS_HPKE_AEAD_ID);
}

/* info = label || 0x00 || hdr */
static void build_info(uint8_t info[REQ_LABEL_LEN + 1 + OS_OHTTP_HDR_LEN],
                       const uint8_t hdr[OS_OHTTP_HDR_LEN])
{
    memcpy(info, OS_OHTTP_LABEL_REQUEST, REQ_LABEL_LEN);
    info[REQ_LABEL_LEN] = 0x00;
    memcpy(info + REQ_LABEL_LEN + 1, hdr, OS_OHTTP_HDR_LEN);
}

os_err os_ohttp_request_encap_with(os_ohttp_ctx *ctx, uint8_t *out, size_t out_cap, size_t *out_len,
                                   const os_ohttp_keyconfig *kc, const uint8_t *pt, size_t pt_len,
                                   const uint8_t skE[OS_HPKE_NSK], const uint8_t pkE[OS_HPKE_NPK])
{
    uint8_t info[REQ_LABEL_LEN + 1 + OS_OHTTP_HDR_LEN];
    size_t ct_len;
    os_err err;

    if (ctx == NULL)
        return OS_ERR_INVALID;
    memset(ctx, 0, sizeof(*ctx));
    if (out == NULL || out_len == NULL || kc == NULL || skE == NULL || pkE == NULL ||
        (pt == NULL && pt_len != 0))
        return OS_ERR_INVALID;
    if (pt_len > OS_HPKE_MAX_MSG)
        return OS_ERR_TOOBIG;
    if (out_cap < pt_len + OS_OHTTP_REQUEST_OVERHEAD)
        return OS_ERR_TOOBIG;
    build_hdr(out, kc->key_id);
    build_info(info, out);
    err = os_hpke_setup_base_s_with(&ctx->hpke, ctx->enc, kc->pk, info, sizeof(info), skE, pkE);
    if (err != OS_OK)
        return err;
    memcpy(out + OS_OHTTP_HDR_LEN, ctx->enc, OS_HPKE_NENC);
    err = os_hpke_seal(&ctx->hpke, out + OS_OHTTP_HDR_LEN + OS_HPKE_NENC,
                       out_cap - OS_OHTTP_HDR_LEN - OS_HPKE_NENC, &ct_len, NULL, 0, pt, pt_len);
    if (err != OS_OK) {
        os_ohttp_ctx_clear(ctx);
        return err;
    }
    *out_len = OS_OHTTP_HDR_LEN + OS_HPKE_NENC + ct_len;
    return OS_OK;
}

os_err os_ohttp_request_encap(os_ohttp_ctx *ctx, uint8_t *out, size_t out_cap, size_t *out_len,
                              const os_ohttp_keyconfig *kc, const uint8_t *pt, size_t pt_len)
{
    uint8_t skE[OS_HPKE_NSK], pkE[OS_HPKE_NPK];
    os_err err;

    if (ctx == NULL)
        return OS_ERR_INVALID;
    memset(ctx, 0, sizeof(*ctx));
    err = os_hpke_keypair(skE, pkE);
    if (err == OS_OK)
        err = os_ohttp_request_encap_with(ctx, out, out_cap, out_len, kc, pt, pt_len, skE, pkE);
    os_wipe(skE, sizeof(skE));
    return err;
}

os_err os_ohttp_request_key_id(uint8_t *key_id, const uint8_t *req, size_t req_len)
{
    if (key_id == NULL || req == NULL)
        return OS_ERR_INVALID;
    if (req_len < OS_OHTTP_REQUEST_OVERHEAD)
        return OS_ERR_INVALID;
    *key_id = req[0];
    return OS_OK;
}

os_err os_ohttp_request_decap(os_ohttp_ctx *ctx, uint8_t *pt, size_t pt_cap, size_t *pt_len,
                              uint8_t key_id, const uint8_t skR[OS_HPKE_NSK],
                              const uint8_t pkR[OS_HPKE_NPK], const uint8_t *req, size_t req_len)
{
    uint8_t info[REQ_LABEL_LEN + 1 + OS_OHTTP_HDR_LEN];
    const uint8_t *enc = req + OS_OHTTP_HDR_LEN;
    os_err err;

    if (ctx == NULL)
        return OS_ERR_INVALID;
    memset(ctx, 0, sizeof(*ctx));
    if (pt_len == NULL || skR == NULL || pkR == NULL || req == NULL)
        return OS_ERR_INVALID;
    if (req_len < OS_OHTTP_HDR_LEN)
        return OS_ERR_INVALID;
    if (get16(req + 1) != OS_HPKE_KEM_ID || get16(req + 3) != OS_HPKE_KDF_ID ||
        get16(req + 5) != OS_HPKE_AEAD_ID)
        return OS_ERR_UNSUPPORTED;
    if (req[0] != key_id)
        return OS_ERR_NOTFOUND;
    if (req_len < OS_OHTTP_REQUEST_OVERHEAD)
        return OS_ERR_INVALID;
    build_info(info, req);
    err = os_hpke_setup_base_r(&ctx->hpke, enc, skR, pkR, info, sizeof(info));
    if (err != OS_OK)
        return err;
    memcpy(ctx->enc, enc, OS_HPKE_NENC);
    err =
        os_hpke_open(&ctx->hpke, pt, pt_cap, pt_len, NULL, 0, req + OS_OHTTP_HDR_LEN + OS_HPKE_NENC,
                     req_len - OS_OHTTP_HDR_LEN - OS_HPKE_NENC);
    if (err != OS_OK)
        os_ohttp_ctx_clear(ctx);
    return err;
}

void os_ohttp_ctx_clear(os_ohttp_ctx *ctx)
{
    if (ctx == NULL)
        return;
    os_hpke_ctx_clear(&ctx->hpke);
    os_wipe(ctx, sizeof(*ctx));
}

/* ---- responses (RFC 9458 §4.4; the draft's chunked variant differs only in the label) ---- */

/* aead_key and aead_nonce from the exported secret, enc and the response nonce. */
static os_err keys_from_secret(uint8_t key[OS_HPKE_NK], uint8_t nonce[OS_HPKE_NN],
                               const uint8_t secret[OS_OHTTP_NONCE_LEN],
                               const uint8_t enc[OS_HPKE_NENC],
                               const uint8_t response_nonce[OS_OHTTP_NONCE_LEN])
{
    uint8_t salt[OS_HPKE_NENC + OS_OHTTP_NONCE_LEN], prk[OS_HKDF_SHA256_LEN];
    os_err err;

    memcpy(salt, enc, OS_HPKE_NENC);
    memcpy(salt + OS_HPKE_NENC, response_nonce, OS_OHTTP_NONCE_LEN);
    err = os_hkdf_sha256_extract(prk, salt, sizeof(salt), secret, OS_OHTTP_NONCE_LEN);
    if (err == OS_OK)
        err = os_hkdf_sha256_expand(key, OS_HPKE_NK, prk, (const uint8_t *)"key", 3);
    if (err == OS_OK)
        err = os_hkdf_sha256_expand(nonce, OS_HPKE_NN, prk, (const uint8_t *)"nonce", 5);
    os_wipe(prk, sizeof(prk));
    return err;
}

/* secret = context.Export(label, max(Nn, Nk)) */
static os_err export_secret(uint8_t secret[OS_OHTTP_NONCE_LEN], const os_ohttp_ctx *ctx,
                            const char *label)
{
    return os_hpke_export(&ctx->hpke, secret, OS_OHTTP_NONCE_LEN, (const uint8_t *)label,
                          strlen(label));
}

/* Keys an AEAD for a response on ctx; encrypt on the gateway, decrypt on the client. */
static os_err response_aead(os_hpke_aead *aead, uint8_t nonce[OS_HPKE_NN], const os_ohttp_ctx *ctx,
                            const char *label, const uint8_t response_nonce[OS_OHTTP_NONCE_LEN],
                            int encrypt)
{
    uint8_t secret[OS_OHTTP_NONCE_LEN], key[OS_HPKE_NK];
    os_err err;

    err = export_secret(secret, ctx, label);
    if (err == OS_OK)
        err = keys_from_secret(key, nonce, secret, ctx->enc, response_nonce);
    if (err == OS_OK)
        err = os_hpke_aead_init(aead, key, encrypt);
    os_wipe(secret, sizeof(secret));
    os_wipe(key, sizeof(key));
    return err;
}

/* The gateway keys a response only once per request, whatever its form. */
static os_err gateway_claim(os_ohttp_ctx *ctx)
{
    if (ctx == NULL || ctx->hpke.is_sender || ctx->hpke.aead.evp == NULL || ctx->responded)
        return OS_ERR_INVALID;
    ctx->responded = 1;
    return OS_OK;
}

os_err os_ohttp_response_encap_with_nonce(os_ohttp_ctx *ctx, uint8_t *out, size_t out_cap,
                                          size_t *out_len, const uint8_t *pt, size_t pt_len,
                                          const uint8_t nonce[OS_OHTTP_NONCE_LEN])
{
    os_hpke_aead aead;
    uint8_t aead_nonce[OS_HPKE_NN];
    size_t ct_len;
    os_err err;

    if (out == NULL || out_len == NULL || nonce == NULL || (pt == NULL && pt_len != 0))
        return OS_ERR_INVALID;
    if (pt_len > OS_HPKE_MAX_MSG || out_cap < pt_len + OS_OHTTP_RESPONSE_OVERHEAD)
        return OS_ERR_TOOBIG;
    err = gateway_claim(ctx);
    if (err != OS_OK)
        return err;
    err = response_aead(&aead, aead_nonce, ctx, OS_OHTTP_LABEL_RESPONSE, nonce, 1);
    if (err != OS_OK)
        return err;
    memmove(out, nonce, OS_OHTTP_NONCE_LEN);
    err = os_hpke_aead_seal(&aead, out + OS_OHTTP_NONCE_LEN, out_cap - OS_OHTTP_NONCE_LEN, &ct_len,
                            aead_nonce, NULL, 0, pt, pt_len);
    os_hpke_aead_clear(&aead);
    os_wipe(aead_nonce, sizeof(aead_nonce));
    if (err != OS_OK)
        return err;
    *out_len = OS_OHTTP_NONCE_LEN + ct_len;
    return OS_OK;
}

os_err os_ohttp_response_encap(os_ohttp_ctx *ctx, uint8_t *out, size_t out_cap, size_t *out_len,
                               const uint8_t *pt, size_t pt_len)
{
    uint8_t nonce[OS_OHTTP_NONCE_LEN];
    randombytes_buf(nonce, sizeof(nonce));
    return os_ohttp_response_encap_with_nonce(ctx, out, out_cap, out_len, pt, pt_len, nonce);
}

os_err os_ohttp_response_decap(os_ohttp_ctx *ctx, uint8_t *pt, size_t pt_cap, size_t *pt_len,
                               const uint8_t *res, size_t res_len)
{
    os_hpke_aead aead;
    uint8_t aead_nonce[OS_HPKE_NN];
    os_err err;

    if (ctx == NULL || !ctx->hpke.is_sender || ctx->hpke.aead.evp == NULL || pt_len == NULL ||
        res == NULL)
        return OS_ERR_INVALID;
    if (res_len < OS_OHTTP_RESPONSE_OVERHEAD)
        return OS_ERR_INVALID;
    err = response_aead(&aead, aead_nonce, ctx, OS_OHTTP_LABEL_RESPONSE, res, 0);
    if (err != OS_OK)
        return err;
    err = os_hpke_aead_open(&aead, pt, pt_cap, pt_len, aead_nonce, NULL, 0,
                            res + OS_OHTTP_NONCE_LEN, res_len - OS_OHTTP_NONCE_LEN);
    os_hpke_aead_clear(&aead);
    os_wipe(aead_nonce, sizeof(aead_nonce));
    return err;
}

/* ---- chunked responses ---- */

/* The draft allows 256^Nn chunks; a 64-bit counter stops one short of wrapping instead. */
#define COUNTER_LIMIT UINT64_MAX

static void chunk_nonce(uint8_t out[OS_HPKE_NN], const uint8_t base[OS_HPKE_NN], uint64_t counter)
{
    memcpy(out, base, OS_HPKE_NN);
    for (int i = 0; i < 8; i++)
        out[OS_HPKE_NN - 1 - i] ^= (uint8_t)(counter >> (8 * i));
}

/* QUIC variable-length integer (RFC 9000 §16), shortest form. */
static size_t varint_len(uint64_t v)
{
    return v < (1u << 6) ? 1 : v < (1u << 14) ? 2 : v < (1ul << 30) ? 4 : 8;
}

static void varint_put(uint8_t *out, uint64_t v, size_t len)
{
    static const uint8_t prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(v >> (8 * (len - 1 - i)));
    out[0] |= prefix[len];
}

os_err os_ohttp_chunk_sender_init_with_nonce(os_ohttp_chunk_sender *s, os_ohttp_ctx *ctx,
                                             const uint8_t nonce[OS_OHTTP_NONCE_LEN])
{
    os_err err;

    if (s == NULL)
        return OS_ERR_INVALID;
    memset(s, 0, sizeof(*s));
    if (nonce == NULL)
        return OS_ERR_INVALID;
    err = gateway_claim(ctx);
    if (err == OS_OK)
        err = response_aead(&s->aead, s->nonce, ctx, OS_OHTTP_LABEL_CHUNKED_RESPONSE, nonce, 1);
    if (err != OS_OK)
        os_ohttp_chunk_sender_clear(s);
    return err;
}

os_err os_ohttp_chunk_sender_init(os_ohttp_chunk_sender *s, uint8_t nonce[OS_OHTTP_NONCE_LEN],
                                  os_ohttp_ctx *ctx)
{
    if (s == NULL)
        return OS_ERR_INVALID;
    memset(s, 0, sizeof(*s));
    if (nonce == NULL)
        return OS_ERR_INVALID;
    randombytes_buf(nonce, OS_OHTTP_NONCE_LEN);
    return os_ohttp_chunk_sender_init_with_nonce(s, ctx, nonce);
}

static os_err seal_chunk(os_ohttp_chunk_sender *s, uint8_t *out, size_t out_cap, size_t *out_len,
                         const uint8_t *pt, size_t pt_len, int final)
{
    uint8_t nonce[OS_HPKE_NN];
    size_t ct_len, vlen;
    os_err err;

    if (s == NULL || s->aead.evp == NULL || s->finished || out == NULL || out_len == NULL ||
        (pt == NULL && pt_len != 0) || (!final && pt_len == 0))
        return OS_ERR_INVALID;
    if (pt_len > OS_OHTTP_CHUNK_LIMIT)
        return OS_ERR_TOOBIG;
    if (s->counter >= COUNTER_LIMIT)
        return OS_ERR_RANGE;
    ct_len = pt_len + OS_HPKE_NT;
    vlen = final ? 1 : varint_len(ct_len);
    if (out_cap < vlen + ct_len)
        return OS_ERR_TOOBIG;
    varint_put(out, final ? 0 : ct_len, vlen);
    chunk_nonce(nonce, s->nonce, s->counter);
    err = os_hpke_aead_seal(&s->aead, out + vlen, out_cap - vlen, &ct_len, nonce,
                            final ? final_aad : NULL, final ? sizeof(final_aad) : 0, pt, pt_len);
    if (err != OS_OK)
        return err;
    s->counter++;
    if (final)
        s->finished = 1;
    *out_len = vlen + ct_len;
    return OS_OK;
}

os_err os_ohttp_chunk_seal(os_ohttp_chunk_sender *s, uint8_t *out, size_t out_cap, size_t *out_len,
                           const uint8_t *pt, size_t pt_len)
{
    return seal_chunk(s, out, out_cap, out_len, pt, pt_len, 0);
}

os_err os_ohttp_chunk_seal_final(os_ohttp_chunk_sender *s, uint8_t *out, size_t out_cap,
                                 size_t *out_len, const uint8_t *pt, size_t pt_len)
{
    return seal_chunk(s, out, out_cap, out_len, pt, pt_len, 1);
}

void os_ohttp_chunk_sender_clear(os_ohttp_chunk_sender *s)
{
    if (s == NULL)
        return;
    os_hpke_aead_clear(&s->aead);
    os_wipe(s, sizeof(*s));
}

enum rstate { R_NONCE, R_LEN, R_BODY, R_FINAL, R_DONE, R_FAILED };

struct os_ohttp_chunk_receiver {
    os_hpke_aead aead;
    uint8_t secret[OS_OHTTP_NONCE_LEN]; /* until the response nonce arrives */
    uint8_t enc[OS_HPKE_NENC];
    uint8_t response_nonce[OS_OHTTP_NONCE_LEN];
    uint8_t nonce[OS_HPKE_NN];
    uint8_t vbuf[8];
    uint64_t counter;
    size_t have;      /* bytes of the current field collected so far */
    size_t need;      /* bytes the current varint or chunk needs */
    size_t max_chunk; /* plaintext cap of one chunk */
    size_t buf_cap;   /* max_chunk + Nt: the most ciphertext ever buffered */
    size_t buf_hwm;   /* bytes of buf ever written: all that free needs to wipe */
    enum rstate state;
    os_err failure;
    uint8_t *buf;
};

os_err os_ohttp_chunk_receiver_new(os_ohttp_chunk_receiver **out, const os_ohttp_ctx *ctx,
                                   size_t max_chunk)
{
    os_ohttp_chunk_receiver *r;
    os_err err;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (ctx == NULL || !ctx->hpke.is_sender || ctx->hpke.aead.evp == NULL)
        return OS_ERR_INVALID;
    if (max_chunk == 0)
        max_chunk = OS_OHTTP_CHUNK_DEFAULT;
    if (max_chunk > OS_OHTTP_CHUNK_LIMIT)
        return OS_ERR_TOOBIG;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return OS_ERR_NOMEM;
    r->max_chunk = max_chunk;
    r->buf_cap = max_chunk + OS_HPKE_NT;
    r->buf = malloc(r->buf_cap);
    if (r->buf == NULL) {
        free(r);
        return OS_ERR_NOMEM;
    }
    err = export_secret(r->secret, ctx, OS_OHTTP_LABEL_CHUNKED_RESPONSE);
    if (err != OS_OK) {
        os_ohttp_chunk_receiver_free(r);
        return err;
    }
    memcpy(r->enc, ctx->enc, OS_HPKE_NENC);
    r->state = R_NONCE;
    *out = r;
    return OS_OK;
}

void os_ohttp_chunk_receiver_free(os_ohttp_chunk_receiver *r)
{
    if (r == NULL)
        return;
    os_hpke_aead_clear(&r->aead);
    if (r->buf != NULL) {
        /* only what was written: wiping all buf_cap (256 KiB for the buyer) would make every
         * page of it resident for each request */
        os_wipe(r->buf, r->buf_hwm);
        free(r->buf);
    }
    os_wipe(r, sizeof(*r));
    free(r);
}

static os_err fail(os_ohttp_chunk_receiver *r, os_err err)
{
    r->state = R_FAILED;
    r->failure = err;
    os_hpke_aead_clear(&r->aead);
    return err;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Opens chunk ct[0..n) at the current counter into pt. */
static os_err open_chunk(os_ohttp_chunk_receiver *r, uint8_t *pt, size_t pt_cap, size_t *pt_len,
                         const uint8_t *ct, size_t n, int final)
{
    uint8_t nonce[OS_HPKE_NN];
    if (r->counter >= COUNTER_LIMIT)
        return OS_ERR_RANGE;
    chunk_nonce(nonce, r->nonce, r->counter);
    os_err err = os_hpke_aead_open(&r->aead, pt, pt_cap, pt_len, nonce, final ? final_aad : NULL,
                                   final ? sizeof(final_aad) : 0, ct, n);
    if (err == OS_OK)
        r->counter++;
    return err;
}

os_err os_ohttp_chunk_receiver_feed(os_ohttp_chunk_receiver *r, os_ohttp_chunk_status *status,
                                    uint8_t *pt, size_t pt_cap, size_t *pt_len, size_t *consumed,
                                    const uint8_t *in, size_t in_len, int end_of_stream)
{
    size_t off = 0, take;
    os_err err;

    if (r == NULL || status == NULL || pt == NULL || pt_len == NULL || consumed == NULL ||
        (in == NULL && in_len != 0) || pt_cap < r->max_chunk)
        return OS_ERR_INVALID;
    *status = OS_OHTTP_CHUNK_NEED_MORE;
    *pt_len = 0;
    *consumed = 0;
    if (r->state == R_FAILED)
        return r->failure;
    if (r->state == R_DONE) {
        if (in_len != 0)
            return fail(r, OS_ERR_INVALID); /* nothing may follow the final chunk */
        *status = OS_OHTTP_CHUNK_DONE;
        return OS_OK;
    }
    if (in == NULL)
        in = final_aad; /* never read (in_len is 0); spares every memcpy a NULL source */

    for (;;) {
        switch (r->state) {
        case R_NONCE:
            take = min_size(OS_OHTTP_NONCE_LEN - r->have, in_len - off);
            memcpy(r->response_nonce + r->have, in + off, take);
            r->have += take;
            off += take;
            if (r->have < OS_OHTTP_NONCE_LEN)
                goto need_more;
            {
                uint8_t key[OS_HPKE_NK];
                err = keys_from_secret(key, r->nonce, r->secret, r->enc, r->response_nonce);
                if (err == OS_OK)
                    err = os_hpke_aead_init(&r->aead, key, 0);
                os_wipe(key, sizeof(key));
                os_wipe(r->secret, sizeof(r->secret));
                if (err != OS_OK)
                    return fail(r, err);
            }
            r->have = 0;
            r->state = R_LEN;
            break;

        case R_LEN:
            if (off == in_len)
                goto need_more;
            if (r->have == 0)
                r->need = (size_t)1 << (in[off] >> 6);
            take = min_size(r->need - r->have, in_len - off);
            memcpy(r->vbuf + r->have, in + off, take);
            r->have += take;
            off += take;
            if (r->have < r->need)
                goto need_more;
            {
                uint64_t v = r->vbuf[0] & 0x3f;
                for (size_t i = 1; i < r->need; i++)
                    v = (v << 8) | r->vbuf[i];
                r->have = 0;
                if (v == 0) {
                    r->state = R_FINAL;
                    break;
                }
                /* a non-final chunk with no data counts as a decryption error (the draft) */
                if (v <= OS_HPKE_NT)
                    return fail(r, OS_ERR_CRYPTO);
                if (v > r->buf_cap)
                    return fail(r, OS_ERR_TOOBIG);
                r->need = (size_t)v;
                r->state = R_BODY;
            }
            break;

        case R_BODY: {
            const uint8_t *src;
            if (r->have == 0 && in_len - off >= r->need) {
                src = in + off; /* the whole chunk is in this input: open it where it lies */
                off += r->need;
            } else {
                take = min_size(r->need - r->have, in_len - off);
                memcpy(r->buf + r->have, in + off, take);
                r->have += take;
                if (r->have > r->buf_hwm)
                    r->buf_hwm = r->have;
                off += take;
                if (r->have < r->need)
                    goto need_more;
                src = r->buf;
            }
            err = open_chunk(r, pt, pt_cap, pt_len, src, r->need, 0);
            if (err != OS_OK)
                return fail(r, err);
            r->have = 0;
            r->state = R_LEN;
            *status = OS_OHTTP_CHUNK_AVAILABLE;
            *consumed = off;
            return OS_OK;
        }

        case R_FINAL: {
            const uint8_t *src;
            size_t n;
            /* The final chunk runs to the end of the stream, so it is only whole at the end. */
            if (in_len - off > r->buf_cap - r->have)
                return fail(r, OS_ERR_TOOBIG);
            if (!end_of_stream || r->have > 0) {
                memcpy(r->buf + r->have, in + off, in_len - off);
                r->have += in_len - off;
                if (r->have > r->buf_hwm)
                    r->buf_hwm = r->have;
                off = in_len;
                if (!end_of_stream)
                    goto need_more;
                src = r->buf;
                n = r->have;
            } else {
                src = in + off;
                n = in_len - off;
                off = in_len;
            }
            err = open_chunk(r, pt, pt_cap, pt_len, src, n, 1);
            if (err != OS_OK)
                return fail(r, err);
            r->state = R_DONE;
            *status = OS_OHTTP_CHUNK_DONE;
            *consumed = off;
            return OS_OK;
        }

        default:
            return fail(r, OS_ERR_INTERNAL);
        }
    }

need_more:
    *consumed = off;
    if (end_of_stream)
        return fail(r, OS_ERR_INVALID); /* ended before the final chunk: truncated */
    return OS_OK;
}
