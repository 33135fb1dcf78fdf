/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Oblivious HTTP against its published examples, byte for byte:
 *  - RFC 9458 Appendix A (key configuration, the request with the given ephemeral key, the
 *    response with the given response nonce, and every intermediate value printed there);
 *  - draft-ietf-ohai-chunked-ohttp (-08 and the WG's current markdown) Appendix A, a chunked
 *    exchange: its request chunks at the HPKE level and its chunked response through our sender
 *    and receiver, with the three chunk nonces.
 * Then key configuration parse errors, request/response tampering, and the chunked receiver under
 * many split patterns and every kind of stream damage: tampering, truncation, reordering, dropping,
 * a chunk after the final one, oversized and non-minimal length prefixes, empty chunks.
 */
#include "testutil.h"

#include <sodium.h>
#include <stdlib.h>

#include "openseed/ct.h"
#include "openseed/hkdf.h"
#include "openseed/hpke.h"
#include "openseed/ohttp.h"

/* RFC 9458 Appendix A */
#define A_SKR "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a"
#define A_PKR "31e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e798155"
#define A_KEYCONFIG                                                                                \
    "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003"
#define A_REQUEST                                                                                  \
    "00034745540568747470730b6578616d706c652e636f6d012f" /* GET https://example.com/ */
#define A_SKE "bc51d5e930bda26589890ac7032f70ad12e4ecb37abb1b65b1256c9c48999c73"
#define A_PKE "4b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b472"
#define A_INFO "6d6573736167652f626874747020726571756573740001002000010001"
#define A_ENC_REQUEST                                                                              \
    "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b4726374e469135906" \
    "992e1268c594d2a10c695d858c40a026e7965e7d86b83dd440b2c0185204b4d63525"
#define A_RESPONSE "0140c8" /* 200 */
#define A_SECRET "62d87a6ba569ee81014c2641f52bea36"
#define A_RESPONSE_NONCE "c789e7151fcba46158ca84b04464910d"
#define A_SALT A_PKE A_RESPONSE_NONCE
#define A_PRK "979aaeae066cf211ab407b31ae49767f344e1501e475c84e8aff547cc5a683db"
#define A_AEAD_KEY "5d0172a080e428b16d298c4ea0db620d"
#define A_AEAD_NONCE "f6bf1aeb88d6df87007fa263"
#define A_ENC_RESPONSE "c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd"

/* draft-ietf-ohai-chunked-ohttp, Appendix A ("Example") */
#define C_SKR "1c190d72acdbe4dbc69e680503bb781a932c70a12c8f3754434c67d8640d8698"
#define C_KEYCONFIG                                                                                \
    "010020668eb21aace159803974a4c67f08b4152d29bed10735fd08f98ccdd6fe09570800080001000100010003"
#define C_SKE "b26d565f3f875ed480d1abced3d665159650c99174fd0b124ac4bda0c64ae324"
#define C_PKE "8811eb457e100811c40a0aa71340a1b81d804bb986f736f2f566a7199761a032"
#define C_INFO "6d6573736167652f6268747470206368756e6b656420726571756573740001002000010001"
#define C_REQ_CHUNK1 "1c2ad24942d4d692563012f2980c8fef437a336b9b2fc938ef77a5834f"
#define C_REQ_CHUNK2 "1d2e33d8fd25577afe31bd1c79d094f76b6250ae6549b473ecd950501311"
#define C_REQ_FINAL "001c6c1395d0ef7c1022297966307b8a7f"
#define C_SECRET "1d4484834ae36102a6ac42a5523454d9"
#define C_RESPONSE_NONCE "bcce7f4cb921309ba5d62edf1769ef09"
#define C_PRK "3967884b5f7b4bce4a5320a3e3f79fdc97389f7deba1c1e11c5ea62278187786"
#define C_AEAD_KEY "8209f78f2a1610d80c7125009b00aff0"
#define C_AEAD_NONCE "fead854635d2d5527d64f546"
#define C_RES_CHUNK1 "1179bf1cc87fa0e2c02de4546945aa3d1e48"
#define C_RES_CHUNK2 "12b348b5bd4c594c16b6170b07b475845d1f32"
#define C_RES_FINAL "00ed9d8a796617a5b27265f4d73247f639"
static const char *const c_chunk_nonces[] = {"fead854635d2d5527d64f546", "fead854635d2d5527d64f547",
                                             "fead854635d2d5527d64f544"};

#define MAXC OS_OHTTP_CHUNK_DEFAULT

/* Decodes hex of any length into a fresh buffer the caller frees. */
static uint8_t *unhex_alloc(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    assert_int_equal(os_hex_decode(out, cap, len, hex, strlen(hex)), OS_OK);
    return out;
}

/* ---- RFC 9458 Appendix A ---- */

static void test_rfc9458_key_config(void **state)
{
    static const os_ohttp_symalg algs[] = {{0x0001, 0x0001}, {0x0001, 0x0003}};
    uint8_t skR[32], pkR[32], buf[64], one[OS_OHTTP_KEYCONFIG_LEN];
    size_t n, len;
    os_ohttp_keyconfig kc;
    uint8_t *want = unhex_alloc(A_KEYCONFIG, &len);
    (void)state;
    tu_unhex(skR, 32, A_SKR);
    assert_int_equal(os_hpke_public_key(pkR, skR), OS_OK);
    tu_assert_hex(pkR, 32, A_PKR);
    assert_int_equal(os_ohttp_keyconfig_encode(buf, sizeof(buf), &n, 1, pkR, algs, 2), OS_OK);
    tu_assert_hex(buf, n, A_KEYCONFIG);
    assert_int_equal(os_ohttp_keyconfig_parse(&kc, want, len), OS_OK);
    assert_int_equal(kc.key_id, 1);
    tu_assert_hex(kc.pk, 32, A_PKR);
    /* the default encoding lists only our pair */
    assert_int_equal(os_ohttp_keyconfig_encode(one, sizeof(one), &n, 1, pkR, NULL, 0), OS_OK);
    assert_int_equal(n, OS_OHTTP_KEYCONFIG_LEN);
    tu_assert_hex(one, n,
                  "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e798155"
                  "000400010001");
    assert_int_equal(os_ohttp_keyconfig_encode(one, sizeof(one) - 1, &n, 1, pkR, NULL, 0),
                     OS_ERR_TOOBIG);
    /* advertising only ChaCha20-Poly1305, which we cannot serve, is refused */
    assert_int_equal(os_ohttp_keyconfig_encode(buf, sizeof(buf), &n, 1, pkR, algs + 1, 1),
                     OS_ERR_INVALID);
    free(want);
}

static void test_rfc9458_request(void **state)
{
    uint8_t skE[32], pkE[32], pkR[32], req[128], out[128];
    size_t n, req_len;
    os_ohttp_keyconfig kc;
    os_ohttp_ctx client;
    uint8_t *kcb = unhex_alloc(A_KEYCONFIG, &n);
    (void)state;
    assert_int_equal(os_ohttp_keyconfig_parse(&kc, kcb, n), OS_OK);
    free(kcb);
    tu_unhex(skE, 32, A_SKE);
    tu_unhex(pkE, 32, A_PKE);
    assert_int_equal(os_hpke_public_key(pkR, skE), OS_OK);
    tu_assert_hex(pkR, 32, A_PKE); /* the printed ephemeral public key belongs to skE */
    tu_unhex(req, 25, A_REQUEST);
    assert_int_equal(
        os_ohttp_request_encap_with(&client, out, sizeof(out), &n, &kc, req, 25, skE, pkE), OS_OK);
    assert_int_equal(n, 25 + OS_OHTTP_REQUEST_OVERHEAD); /* "Content-Length: 78" */
    tu_assert_hex(out, n, A_ENC_REQUEST);
    tu_assert_hex(client.enc, 32, A_PKE);

    /* The context's key schedule is the one the printed info gives. */
    {
        os_hpke_ctx check;
        uint8_t info[29], enc[32];
        tu_unhex(info, sizeof(info), A_INFO);
        assert_int_equal(
            os_hpke_setup_base_s_with(&check, enc, kc.pk, info, sizeof(info), skE, pkE), OS_OK);
        assert_memory_equal(check.key, client.hpke.key, OS_HPKE_NK);
        assert_memory_equal(check.base_nonce, client.hpke.base_nonce, OS_HPKE_NN);
        os_hpke_ctx_clear(&check);
    }

    /* the client reads the RFC's response */
    req_len = strlen(A_ENC_RESPONSE) / 2;
    tu_unhex(req, req_len, A_ENC_RESPONSE);
    assert_int_equal(os_ohttp_response_decap(&client, out, sizeof(out), &n, req, req_len), OS_OK);
    tu_assert_hex(out, n, A_RESPONSE);
    os_ohttp_ctx_clear(&client);
}

static void test_rfc9458_gateway(void **state)
{
    uint8_t skR[32], pkR[32], res_nonce[16], pt[64], out[64], secret[16], salt[48], prk[32],
        key[16], nonce[12], resp[3];
    size_t n, req_len;
    uint8_t key_id;
    os_ohttp_ctx gw;
    uint8_t *req = unhex_alloc(A_ENC_REQUEST, &req_len);
    (void)state;
    tu_unhex(skR, 32, A_SKR);
    tu_unhex(pkR, 32, A_PKR);
    assert_int_equal(os_ohttp_request_key_id(&key_id, req, req_len), OS_OK);
    assert_int_equal(key_id, 1);
    assert_int_equal(os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 1, skR, pkR, req, req_len),
                     OS_OK);
    tu_assert_hex(pt, n, A_REQUEST);

    /* the intermediate values of the response derivation, as printed */
    assert_int_equal(os_hpke_export(&gw.hpke, secret, sizeof(secret),
                                    (const uint8_t *)OS_OHTTP_LABEL_RESPONSE,
                                    strlen(OS_OHTTP_LABEL_RESPONSE)),
                     OS_OK);
    tu_assert_hex(secret, sizeof(secret), A_SECRET);
    tu_unhex(res_nonce, 16, A_RESPONSE_NONCE);
    memcpy(salt, gw.enc, 32);
    memcpy(salt + 32, res_nonce, 16);
    tu_assert_hex(salt, sizeof(salt), A_SALT);
    assert_int_equal(os_hkdf_sha256_extract(prk, salt, sizeof(salt), secret, sizeof(secret)),
                     OS_OK);
    tu_assert_hex(prk, sizeof(prk), A_PRK);
    assert_int_equal(os_hkdf_sha256_expand(key, 16, prk, (const uint8_t *)"key", 3), OS_OK);
    assert_int_equal(os_hkdf_sha256_expand(nonce, 12, prk, (const uint8_t *)"nonce", 5), OS_OK);
    tu_assert_hex(key, 16, A_AEAD_KEY);
    tu_assert_hex(nonce, 12, A_AEAD_NONCE);

    tu_unhex(resp, 3, A_RESPONSE);
    assert_int_equal(
        os_ohttp_response_encap_with_nonce(&gw, out, sizeof(out), &n, resp, 3, res_nonce), OS_OK);
    assert_int_equal(n, 3 + OS_OHTTP_RESPONSE_OVERHEAD);
    tu_assert_hex(out, n, A_ENC_RESPONSE);
    /* a second response from the same context would reuse its keys: refused */
    assert_int_equal(
        os_ohttp_response_encap_with_nonce(&gw, out, sizeof(out), &n, resp, 3, res_nonce),
        OS_ERR_INVALID);
    {
        os_ohttp_chunk_sender s;
        assert_int_equal(os_ohttp_chunk_sender_init(&s, res_nonce, &gw), OS_ERR_INVALID);
        os_ohttp_chunk_sender_clear(&s);
    }
    os_ohttp_ctx_clear(&gw);
    free(req);
}

/* ---- key configuration parsing ---- */

static void test_key_config_negatives(void **state)
{
    uint8_t buf[64];
    size_t len;
    os_ohttp_keyconfig kc;
    uint8_t *good = unhex_alloc(A_KEYCONFIG, &len);
    (void)state;
    /* every truncation, and one byte too many */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(os_ohttp_keyconfig_parse(&kc, good, cut), OS_ERR_INVALID);
    memcpy(buf, good, len);
    buf[len] = 0;
    assert_int_equal(os_ohttp_keyconfig_parse(&kc, buf, len + 1), OS_ERR_INVALID);
    /* algorithm list length: zero, not a multiple of 4, longer or shorter than what follows */
    static const uint16_t bad_lens[] = {0, 2, 7, 9, 12, 4};
    for (size_t i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
        memcpy(buf, good, len);
        buf[35] = (uint8_t)(bad_lens[i] >> 8);
        buf[36] = (uint8_t)bad_lens[i];
        assert_int_equal(os_ohttp_keyconfig_parse(&kc, buf, len), OS_ERR_INVALID);
    }
    /* another KEM (P-256, 0x0010) */
    memcpy(buf, good, len);
    buf[2] = 0x10;
    assert_int_equal(os_ohttp_keyconfig_parse(&kc, buf, len), OS_ERR_UNSUPPORTED);
    /* our KDF/AEAD pair absent: only HKDF-SHA256/ChaCha20 and HKDF-SHA384/AES-128-GCM */
    memcpy(buf, good, len);
    buf[40] = 0x03; /* first pair's AEAD -> ChaCha20-Poly1305 */
    assert_int_equal(os_ohttp_keyconfig_parse(&kc, buf, len), OS_ERR_UNSUPPORTED);
    memcpy(buf, good, len);
    buf[38] = 0x02; /* first pair's KDF -> HKDF-SHA384 */
    assert_int_equal(os_ohttp_keyconfig_parse(&kc, buf, len), OS_ERR_UNSUPPORTED);
    /* our pair second in the list is fine */
    memcpy(buf, good, len);
    buf[40] = 0x03;
    buf[44] = 0x01;
    assert_int_equal(os_ohttp_keyconfig_parse(&kc, buf, len), OS_OK);
    assert_int_equal(os_ohttp_keyconfig_parse(&kc, NULL, 0), OS_ERR_INVALID);
    free(good);
}

/* ---- request and response damage ---- */

typedef struct pair {
    uint8_t skR[32], pkR[32];
    os_ohttp_keyconfig kc;
} pair;

static void make_pair(pair *p, uint8_t key_id)
{
    assert_int_equal(os_hpke_keypair(p->skR, p->pkR), OS_OK);
    p->kc.key_id = key_id;
    memcpy(p->kc.pk, p->pkR, 32);
}

static void test_request_response_negatives(void **state)
{
    static const char msg[] = "{\"api\":\"openai.chat\",\"service\":\"llama3.1-8b\",\"body\":{}}";
    uint8_t req[256], bad[256], pt[256], res[256];
    size_t req_len, res_len, n;
    pair p, other;
    os_ohttp_ctx cl, gw;
    (void)state;
    make_pair(&p, 7);
    make_pair(&other, 7);
    assert_int_equal(os_ohttp_request_encap(&cl, req, sizeof(req), &req_len, &p.kc,
                                            (const uint8_t *)msg, sizeof(msg)),
                     OS_OK);
    assert_int_equal(req_len, sizeof(msg) + OS_OHTTP_REQUEST_OVERHEAD);
    assert_int_equal(
        os_ohttp_request_encap(&gw, req, req_len - 1, &n, &p.kc, (const uint8_t *)msg, sizeof(msg)),
        OS_ERR_TOOBIG);

    /* wrong key id, another suite in the header, too short, wrong private key */
    assert_int_equal(os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 8, p.skR, p.pkR, req, req_len),
                     OS_ERR_NOTFOUND);
    memcpy(bad, req, req_len);
    bad[6] = 0x03; /* AEAD ChaCha20-Poly1305 */
    assert_int_equal(os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 7, p.skR, p.pkR, bad, req_len),
                     OS_ERR_UNSUPPORTED);
    memcpy(bad, req, req_len);
    bad[2] = 0x21;
    assert_int_equal(os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 7, p.skR, p.pkR, bad, req_len),
                     OS_ERR_UNSUPPORTED);
    assert_int_equal(os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 7, p.skR, p.pkR, req,
                                            OS_OHTTP_REQUEST_OVERHEAD - 1),
                     OS_ERR_INVALID);
    assert_int_equal(os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 7, p.skR, p.pkR, req, 3),
                     OS_ERR_INVALID);
    assert_int_equal(os_ohttp_request_key_id(bad, req, OS_OHTTP_REQUEST_OVERHEAD - 1),
                     OS_ERR_INVALID);
    assert_int_equal(
        os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 7, other.skR, other.pkR, req, req_len),
        OS_ERR_CRYPTO);
    /* any flipped bit in enc or ciphertext */
    for (size_t i = OS_OHTTP_HDR_LEN; i < req_len; i++) {
        memcpy(bad, req, req_len);
        bad[i] ^= (uint8_t)(0x80 >> (i % 8));
        os_err err = os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 7, p.skR, p.pkR, bad, req_len);
        assert_int_equal(err, OS_ERR_CRYPTO);
        assert_true(os_ct_is_zero(&gw, sizeof(gw))); /* a failed decap leaves nothing behind */
    }

    /* the genuine request, then the response both ways */
    assert_int_equal(os_ohttp_request_decap(&gw, pt, sizeof(pt), &n, 7, p.skR, p.pkR, req, req_len),
                     OS_OK);
    assert_int_equal(n, sizeof(msg));
    assert_memory_equal(pt, msg, n);
    assert_int_equal(os_ohttp_response_decap(&gw, pt, sizeof(pt), &n, req, req_len),
                     OS_ERR_INVALID); /* the gateway does not read responses */
    assert_int_equal(
        os_ohttp_response_encap(&gw, res, sizeof(res), &res_len, (const uint8_t *)"ok", 2), OS_OK);
    assert_int_equal(res_len, 2 + OS_OHTTP_RESPONSE_OVERHEAD);
    for (size_t i = 0; i < res_len; i++) {
        memcpy(bad, res, res_len);
        bad[i] ^= 1;
        assert_int_equal(os_ohttp_response_decap(&cl, pt, sizeof(pt), &n, bad, res_len),
                         OS_ERR_CRYPTO);
    }
    assert_int_equal(os_ohttp_response_decap(&cl, pt, sizeof(pt), &n, res, res_len - 1),
                     OS_ERR_CRYPTO);
    assert_int_equal(
        os_ohttp_response_decap(&cl, pt, sizeof(pt), &n, res, OS_OHTTP_RESPONSE_OVERHEAD - 1),
        OS_ERR_INVALID);
    assert_int_equal(os_ohttp_response_decap(&cl, pt, sizeof(pt), &n, res, res_len), OS_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(pt, "ok", 2);
    /* a whole response cannot be read as a chunked one: the labels differ */
    {
        os_ohttp_chunk_receiver *r;
        os_ohttp_chunk_status st;
        size_t used;
        uint8_t big[MAXC];
        memcpy(bad, res, OS_OHTTP_NONCE_LEN);
        bad[OS_OHTTP_NONCE_LEN] = 0x00;
        memcpy(bad + OS_OHTTP_NONCE_LEN + 1, res + OS_OHTTP_NONCE_LEN,
               res_len - OS_OHTTP_NONCE_LEN);
        assert_int_equal(os_ohttp_chunk_receiver_new(&r, &cl, 0), OS_OK);
        assert_int_equal(
            os_ohttp_chunk_receiver_feed(r, &st, big, sizeof(big), &n, &used, bad, res_len + 1, 1),
            OS_ERR_CRYPTO);
        os_ohttp_chunk_receiver_free(r);
    }
    os_ohttp_ctx_clear(&cl);
    os_ohttp_ctx_clear(&gw);
    os_ohttp_ctx_clear(&gw);
    os_ohttp_ctx_clear(NULL);
}

/* ---- chunked: the draft's example ---- */

typedef struct chunked_fixture {
    os_ohttp_ctx cl, gw;
} chunked_fixture;

/* Both ends of the draft's exchange (its request uses the chunked-request info string). */
static void draft_contexts(chunked_fixture *f)
{
    uint8_t skR[32], pkR[32], skE[32], pkE[32], info[37], kc[64];
    size_t n;
    tu_unhex(skR, 32, C_SKR);
    tu_unhex(skE, 32, C_SKE);
    tu_unhex(pkE, 32, C_PKE);
    tu_unhex(info, sizeof(info), C_INFO);
    assert_int_equal(os_hpke_public_key(pkR, skR), OS_OK);
    static const os_ohttp_symalg algs[] = {{1, 1}, {1, 3}};
    assert_int_equal(os_ohttp_keyconfig_encode(kc, sizeof(kc), &n, 1, pkR, algs, 2), OS_OK);
    tu_assert_hex(kc, n, C_KEYCONFIG);
    memset(f, 0, sizeof(*f));
    assert_int_equal(
        os_hpke_setup_base_s_with(&f->cl.hpke, f->cl.enc, pkR, info, sizeof(info), skE, pkE),
        OS_OK);
    tu_assert_hex(f->cl.enc, 32, C_PKE);
    assert_int_equal(os_hpke_setup_base_r(&f->gw.hpke, pkE, skR, pkR, info, sizeof(info)), OS_OK);
    memcpy(f->gw.enc, pkE, 32);
}

static void test_draft_request_chunks(void **state)
{
    static const char *const chunks[] = {"00034745540568747470730b", "6578616d706c652e636f6d012f",
                                         ""};
    static const char *const sealed[] = {C_REQ_CHUNK1, C_REQ_CHUNK2, C_REQ_FINAL};
    chunked_fixture f;
    uint8_t pt[32], ct[64], back[32];
    size_t pt_len, n, m;
    (void)state;
    draft_contexts(&f);
    for (int i = 0; i < 3; i++) {
        int final = i == 2;
        const uint8_t *aad = final ? (const uint8_t *)"final" : NULL;
        size_t aad_len = final ? 5 : 0;
        assert_int_equal(os_hex_decode(pt, sizeof(pt), &pt_len, chunks[i], strlen(chunks[i])),
                         OS_OK);
        ct[0] = final ? 0 : (uint8_t)(pt_len + OS_HPKE_NT); /* one-byte varints here */
        assert_int_equal(
            os_hpke_seal(&f.cl.hpke, ct + 1, sizeof(ct) - 1, &n, aad, aad_len, pt, pt_len), OS_OK);
        tu_assert_hex(ct, n + 1, sealed[i]);
        assert_int_equal(os_hpke_open(&f.gw.hpke, back, sizeof(back), &m, aad, aad_len, ct + 1, n),
                         OS_OK);
        assert_int_equal(m, pt_len);
        assert_memory_equal(back, pt, m);
    }
    os_ohttp_ctx_clear(&f.cl);
    os_ohttp_ctx_clear(&f.gw);
}

static void test_draft_response(void **state)
{
    chunked_fixture f;
    os_ohttp_chunk_sender s;
    os_ohttp_chunk_receiver *r;
    os_ohttp_chunk_status st;
    uint8_t nonce[16], secret[16], salt[48], prk[32], key[16], aead_nonce[12], out[64], wire[128],
        pt[MAXC];
    size_t n, len = 0, used, off;
    (void)state;
    draft_contexts(&f);

    /* intermediate values */
    assert_int_equal(os_hpke_export(&f.gw.hpke, secret, 16,
                                    (const uint8_t *)OS_OHTTP_LABEL_CHUNKED_RESPONSE,
                                    strlen(OS_OHTTP_LABEL_CHUNKED_RESPONSE)),
                     OS_OK);
    tu_assert_hex(secret, 16, C_SECRET);
    tu_unhex(nonce, 16, C_RESPONSE_NONCE);
    memcpy(salt, f.gw.enc, 32);
    memcpy(salt + 32, nonce, 16);
    assert_int_equal(os_hkdf_sha256_extract(prk, salt, sizeof(salt), secret, 16), OS_OK);
    tu_assert_hex(prk, 32, C_PRK);
    assert_int_equal(os_hkdf_sha256_expand(key, 16, prk, (const uint8_t *)"key", 3), OS_OK);
    assert_int_equal(os_hkdf_sha256_expand(aead_nonce, 12, prk, (const uint8_t *)"nonce", 5),
                     OS_OK);
    tu_assert_hex(key, 16, C_AEAD_KEY);
    tu_assert_hex(aead_nonce, 12, C_AEAD_NONCE);

    /* the gateway's chunks */
    assert_int_equal(os_ohttp_chunk_sender_init_with_nonce(&s, &f.gw, nonce), OS_OK);
    memcpy(wire, nonce, 16);
    len = 16;
    assert_int_equal(os_ohttp_chunk_seal(&s, out, sizeof(out), &n, (const uint8_t *)"\x01", 1),
                     OS_OK);
    tu_assert_hex(out, n, C_RES_CHUNK1);
    memcpy(wire + len, out, n), len += n;
    assert_int_equal(os_ohttp_chunk_seal(&s, out, sizeof(out), &n, (const uint8_t *)"\x40\xc8", 2),
                     OS_OK);
    tu_assert_hex(out, n, C_RES_CHUNK2);
    memcpy(wire + len, out, n), len += n;
    assert_int_equal(os_ohttp_chunk_seal_final(&s, out, sizeof(out), &n, NULL, 0), OS_OK);
    tu_assert_hex(out, n, C_RES_FINAL);
    memcpy(wire + len, out, n), len += n;
    tu_assert_hex(wire, len, C_RESPONSE_NONCE C_RES_CHUNK1 C_RES_CHUNK2 C_RES_FINAL);
    /* nothing after the final chunk */
    assert_int_equal(os_ohttp_chunk_seal(&s, out, sizeof(out), &n, (const uint8_t *)"x", 1),
                     OS_ERR_INVALID);
    assert_int_equal(os_ohttp_chunk_seal_final(&s, out, sizeof(out), &n, NULL, 0), OS_ERR_INVALID);
    os_ohttp_chunk_sender_clear(&s);

    /* the printed chunk nonces open the chunks with the printed key */
    {
        os_hpke_aead a;
        const size_t at[] = {16, 16 + 18, 16 + 18 + 19};
        const size_t ct_len[] = {17, 18, 16};
        assert_int_equal(os_hpke_aead_init(&a, key, 0), OS_OK);
        for (int i = 0; i < 3; i++) {
            uint8_t cn[12];
            tu_unhex(cn, 12, c_chunk_nonces[i]);
            assert_int_equal(os_hpke_aead_open(&a, out, sizeof(out), &n, cn,
                                               i == 2 ? (const uint8_t *)"final" : NULL,
                                               i == 2 ? 5 : 0, wire + at[i] + 1, ct_len[i]),
                             OS_OK);
            assert_int_equal(n, ct_len[i] - 16);
        }
        os_hpke_aead_clear(&a);
    }

    /* the client reads it, whole and byte by byte */
    assert_int_equal(os_ohttp_chunk_receiver_new(&r, &f.cl, 0), OS_OK);
    assert_int_equal(os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used, wire, len, 1),
                     OS_OK);
    assert_int_equal(st, OS_OHTTP_CHUNK_AVAILABLE);
    tu_assert_hex(pt, n, "01");
    off = used;
    assert_int_equal(
        os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used, wire + off, len - off, 1),
        OS_OK);
    assert_int_equal(st, OS_OHTTP_CHUNK_AVAILABLE);
    tu_assert_hex(pt, n, "40c8");
    off += used;
    assert_int_equal(
        os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used, wire + off, len - off, 1),
        OS_OK);
    assert_int_equal(st, OS_OHTTP_CHUNK_DONE);
    assert_int_equal(n, 0);
    assert_int_equal(off + used, len);
    /* DONE is sticky for empty calls; data after it is an error */
    assert_int_equal(os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used, NULL, 0, 1),
                     OS_OK);
    assert_int_equal(st, OS_OHTTP_CHUNK_DONE);
    assert_int_equal(os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used, wire, 1, 1),
                     OS_ERR_INVALID);
    os_ohttp_chunk_receiver_free(r);

    assert_int_equal(os_ohttp_chunk_receiver_new(&r, &f.cl, 0), OS_OK);
    {
        int chunks = 0, done = 0;
        for (size_t i = 0; i < len; i++) {
            assert_false(done);
            assert_int_equal(os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used,
                                                          wire + i, 1, i + 1 == len),
                             OS_OK);
            assert_int_equal(used, 1);
            chunks += st == OS_OHTTP_CHUNK_AVAILABLE;
            done = st == OS_OHTTP_CHUNK_DONE;
        }
        assert_int_equal(chunks, 2);
        assert_true(done);
    }
    os_ohttp_chunk_receiver_free(r);
    os_ohttp_ctx_clear(&f.cl);
    os_ohttp_ctx_clear(&f.gw);
}

/* ---- chunked: round trips and damage, on a fresh random exchange ---- */

typedef struct chunk_stream {
    uint8_t *bytes;
    size_t len;
    size_t n_chunks;    /* non-final */
    size_t at[400];     /* offset of each chunk's length prefix; at[n_chunks] is the final's */
    size_t pt_len[401]; /* plaintext length of each chunk, final last */
    uint8_t *plain;     /* all plaintext, in order */
    size_t plain_len;
    os_ohttp_ctx cl;
} chunk_stream;

static uint32_t rng_state = 0x12345678u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Builds an exchange and a chunked response whose non-final chunk sizes are sizes[]. */
static void make_stream(chunk_stream *s, const size_t *sizes, size_t n, size_t final_len)
{
    pair p;
    os_ohttp_ctx gw;
    os_ohttp_chunk_sender snd;
    uint8_t req[128], pt[64], nonce[16];
    size_t req_len, m, total = 16, cap;

    memset(s, 0, sizeof(*s));
    assert_true(n < 400);
    make_pair(&p, 3);
    assert_int_equal(
        os_ohttp_request_encap(&s->cl, req, sizeof(req), &req_len, &p.kc, (const uint8_t *)"{}", 2),
        OS_OK);
    assert_int_equal(os_ohttp_request_decap(&gw, pt, sizeof(pt), &m, 3, p.skR, p.pkR, req, req_len),
                     OS_OK);
    for (size_t i = 0; i < n; i++)
        total += sizes[i];
    total += final_len;
    cap = total + (n + 1) * OS_OHTTP_CHUNK_OVERHEAD;
    s->bytes = malloc(cap);
    s->plain = malloc(total + 1);
    assert_non_null(s->bytes);
    assert_non_null(s->plain);
    randombytes_buf(s->plain, total);
    assert_int_equal(os_ohttp_chunk_sender_init(&snd, nonce, &gw), OS_OK);
    memcpy(s->bytes, nonce, 16);
    s->len = 16;
    for (size_t i = 0; i <= n; i++) {
        size_t k = i < n ? sizes[i] : final_len;
        s->at[i] = s->len;
        s->pt_len[i] = k;
        if (i < n)
            assert_int_equal(os_ohttp_chunk_seal(&snd, s->bytes + s->len, cap - s->len, &m,
                                                 s->plain + s->plain_len, k),
                             OS_OK);
        else
            assert_int_equal(os_ohttp_chunk_seal_final(&snd, s->bytes + s->len, cap - s->len, &m,
                                                       s->plain + s->plain_len, k),
                             OS_OK);
        s->len += m;
        s->plain_len += k;
    }
    s->n_chunks = n;
    os_ohttp_chunk_sender_clear(&snd);
    os_ohttp_ctx_clear(&gw);
}

static void free_stream(chunk_stream *s)
{
    free(s->bytes);
    free(s->plain);
    os_ohttp_ctx_clear(&s->cl);
}

/*
 * Feeds data[0..len) to a fresh receiver in pieces of the sizes split() picks (0 means all at
 * once). Returns the first error, or OS_OK with *done set when DONE came; collects the plaintext
 * in got and the number of chunks delivered.
 */
static os_err feed_all(const os_ohttp_ctx *cl, const uint8_t *data, size_t len, size_t max_chunk,
                       size_t (*split)(size_t remaining), uint8_t *got, size_t *got_len,
                       size_t *chunks, int *done)
{
    os_ohttp_chunk_receiver *r;
    os_ohttp_chunk_status st = OS_OHTTP_CHUNK_NEED_MORE;
    uint8_t *pt = malloc(max_chunk ? max_chunk : MAXC);
    size_t off = 0, n, used;
    os_err err = OS_OK;

    assert_non_null(pt);
    *got_len = 0;
    *chunks = 0;
    *done = 0;
    assert_int_equal(os_ohttp_chunk_receiver_new(&r, cl, max_chunk), OS_OK);
    do {
        size_t piece = split ? split(len - off) : len - off;
        if (piece > len - off)
            piece = len - off;
        size_t end = off + piece;
        int eof = end == len;
        /* within one piece, keep calling while chunks come out */
        do {
            err = os_ohttp_chunk_receiver_feed(r, &st, pt, max_chunk ? max_chunk : MAXC, &n, &used,
                                               data + off, end - off, eof);
            if (err != OS_OK)
                goto out;
            off += used;
            if (st != OS_OHTTP_CHUNK_NEED_MORE) {
                memcpy(got + *got_len, pt, n);
                *got_len += n;
            }
            if (st == OS_OHTTP_CHUNK_AVAILABLE)
                (*chunks)++;
        } while (st == OS_OHTTP_CHUNK_AVAILABLE);
        assert_true(st == OS_OHTTP_CHUNK_DONE || off == end);
    } while (st != OS_OHTTP_CHUNK_DONE && off < len);
    *done = st == OS_OHTTP_CHUNK_DONE;
out:
    os_ohttp_chunk_receiver_free(r);
    free(pt);
    return err;
}

static size_t split_one(size_t remaining)
{
    (void)remaining;
    return 1;
}

static size_t split_random(size_t remaining)
{
    size_t k = rnd() % 3 == 0 ? rnd() % 40000 : rnd() % 300;
    k = k == 0 ? 1 : k;
    return k < remaining ? k : remaining;
}

static void expect_round_trip(chunk_stream *s, size_t (*split)(size_t))
{
    uint8_t *got = malloc(s->plain_len + 1);
    size_t got_len, chunks;
    int done;
    assert_non_null(got);
    assert_int_equal(feed_all(&s->cl, s->bytes, s->len, 0, split, got, &got_len, &chunks, &done),
                     OS_OK);
    assert_true(done);
    assert_int_equal(chunks, s->n_chunks);
    assert_int_equal(got_len, s->plain_len);
    assert_memory_equal(got, s->plain, got_len);
    free(got);
}

static void test_chunked_round_trip(void **state)
{
    /* 47/48 and 16367/16368 put ct at the 1/2- and 2/4-byte varint boundaries */
    size_t sizes[120] = {1, 47, 48, 16367, 16368, MAXC, 2, 1};
    size_t n = 8;
    chunk_stream s;
    (void)state;
    while (n < 120)
        sizes[n++] = rnd() % 5 == 0 ? 1 + rnd() % MAXC : 1 + rnd() % 200;
    make_stream(&s, sizes, n, 77);
    expect_round_trip(&s, NULL);
    expect_round_trip(&s, split_one);
    for (int i = 0; i < 5; i++)
        expect_round_trip(&s, split_random);
    free_stream(&s);

    /* no non-final chunks at all, and an empty final chunk */
    make_stream(&s, NULL, 0, 0);
    expect_round_trip(&s, NULL);
    expect_round_trip(&s, split_one);
    free_stream(&s);
    /* a final chunk of the full cap */
    make_stream(&s, sizes, 3, MAXC);
    expect_round_trip(&s, split_one);
    expect_round_trip(&s, split_random);
    free_stream(&s);
}

/* The error feeding data gives, in one piece and byte by byte (which must agree). */
static os_err feed_err(const chunk_stream *s, const uint8_t *data, size_t len, size_t max_chunk)
{
    uint8_t *got = malloc(s->plain_len + MAXC + 1);
    size_t got_len, chunks;
    int done;
    os_err whole, bytes;
    assert_non_null(got);
    whole = feed_all(&s->cl, data, len, max_chunk, NULL, got, &got_len, &chunks, &done);
    if (whole == OS_OK)
        assert_true(done);
    bytes = feed_all(&s->cl, data, len, max_chunk, split_one, got, &got_len, &chunks, &done);
    assert_int_equal(whole, bytes);
    free(got);
    return whole;
}

/* Builds a stream from s's nonce and the listed chunks (by index; n_chunks = the final one). */
static size_t assemble(uint8_t *out, const chunk_stream *s, const size_t *order, size_t k)
{
    size_t len = 16;
    memcpy(out, s->bytes, 16);
    for (size_t i = 0; i < k; i++) {
        size_t c = order[i];
        size_t end = c < s->n_chunks ? s->at[c + 1] : s->len;
        memcpy(out + len, s->bytes + s->at[c], end - s->at[c]);
        len += end - s->at[c];
    }
    return len;
}

static void test_chunked_damage(void **state)
{
    static const size_t sizes[] = {5, 300, 20, 64};
    chunk_stream s;
    uint8_t *buf;
    size_t len, fin;
    (void)state;
    make_stream(&s, sizes, 4, 9);
    fin = s.n_chunks;
    buf = malloc(2 * s.len + 64);
    assert_non_null(buf);
    assert_int_equal(feed_err(&s, s.bytes, s.len, 0), OS_OK);

    /* every bit-flip position after the nonce fails; in the nonce too (other keys) */
    for (size_t i = 0; i < s.len; i++) {
        memcpy(buf, s.bytes, s.len);
        buf[i] ^= 0x04;
        os_err err = feed_err(&s, buf, s.len, 0);
        assert_true(err == OS_ERR_CRYPTO || err == OS_ERR_INVALID || err == OS_ERR_TOOBIG);
    }
    /* every truncation fails: before the final chunk as truncation, inside it as a bad tag */
    for (size_t cut = 0; cut < s.len; cut++) {
        os_err err = feed_err(&s, s.bytes, cut, 0);
        if (cut <= s.at[fin])
            assert_int_equal(err, OS_ERR_INVALID);
        else
            assert_int_equal(err, OS_ERR_CRYPTO);
    }
    /* the stream without its final chunk */
    assert_int_equal(feed_err(&s, s.bytes, s.at[fin], 0), OS_ERR_INVALID);
    {
        const size_t reordered[] = {0, 2, 1, 3, 4}, dropped[] = {0, 1, 3, 4},
                     repeated[] = {0, 0, 1, 2, 3, 4}, early_final[] = {0, 1, 4},
                     after_final[] = {0, 1, 2, 3, 4, 3};
        len = assemble(buf, &s, reordered, 5);
        assert_int_equal(feed_err(&s, buf, len, 0), OS_ERR_CRYPTO);
        len = assemble(buf, &s, dropped, 4);
        assert_int_equal(feed_err(&s, buf, len, 0), OS_ERR_CRYPTO);
        len = assemble(buf, &s, repeated, 6);
        assert_int_equal(feed_err(&s, buf, len, 0), OS_ERR_CRYPTO);
        len = assemble(buf, &s, early_final, 3);
        assert_int_equal(feed_err(&s, buf, len, 0), OS_ERR_CRYPTO);
        len = assemble(buf, &s, after_final, 6);
        assert_int_equal(feed_err(&s, buf, len, 0), OS_ERR_CRYPTO);
    }
    /* a non-final chunk presented as the final one (its length prefix replaced by 0x00) */
    for (size_t c = 0; c < fin; c++) {
        size_t pre = (size_t)1 << (s.bytes[s.at[c]] >> 6), ct = s.at[c + 1] - s.at[c] - pre;
        len = s.at[c];
        memcpy(buf, s.bytes, len);
        buf[len++] = 0x00;
        memcpy(buf + len, s.bytes + s.at[c] + pre, ct);
        len += ct;
        assert_int_equal(feed_err(&s, buf, len, 0), OS_ERR_CRYPTO);
    }
    /* the final chunk presented as a non-final one */
    len = s.at[fin];
    memcpy(buf, s.bytes, len);
    buf[len++] = (uint8_t)(s.len - s.at[fin] - 1);
    memcpy(buf + len, s.bytes + s.at[fin] + 1, s.len - s.at[fin] - 1);
    len += s.len - s.at[fin] - 1;
    assert_int_equal(feed_err(&s, buf, len, 0), OS_ERR_CRYPTO);

    /* length prefixes beyond the cap: one past it, and the largest 8-byte varint */
    len = s.at[0];
    memcpy(buf, s.bytes, len);
    buf[len++] = 0x80; /* 4-byte varint of MAXC + 17 */
    buf[len++] = 0x00;
    buf[len++] = (uint8_t)((MAXC + 17) >> 8);
    buf[len++] = (uint8_t)(MAXC + 17);
    assert_int_equal(feed_err(&s, buf, len, 0), OS_ERR_TOOBIG);
    len = s.at[0];
    memset(buf + len, 0xff, 8);
    assert_int_equal(feed_err(&s, buf, len + 8, 0), OS_ERR_TOOBIG);
    /* a receiver configured for small chunks refuses the 300-byte one, and a long final chunk */
    assert_int_equal(feed_err(&s, s.bytes, s.len, 100), OS_ERR_TOOBIG);
    {
        static const size_t one[] = {5};
        chunk_stream t;
        make_stream(&t, one, 1, 200);
        assert_int_equal(feed_err(&t, t.bytes, t.len, 100), OS_ERR_TOOBIG);
        assert_int_equal(feed_err(&t, t.bytes, t.len, 200), OS_OK);
        free_stream(&t);
    }
    /* non-final lengths that cannot hold data: 1..16 */
    for (uint8_t v = 1; v <= 16; v++) {
        len = s.at[0];
        memcpy(buf, s.bytes, len);
        buf[len++] = v;
        memset(buf + len, 0, v);
        assert_int_equal(feed_err(&s, buf, len + v, 0), OS_ERR_CRYPTO);
    }

    /* the same chunks with every length written in a longer form (the draft allows it) */
    len = 16;
    memcpy(buf, s.bytes, 16);
    for (size_t c = 0; c <= fin; c++) {
        size_t end = c < fin ? s.at[c + 1] : s.len;
        size_t pre = (size_t)1 << (s.bytes[s.at[c]] >> 6), ct = end - s.at[c] - pre;
        uint64_t v = c < fin ? ct : 0;
        if (c % 2 == 0) {
            buf[len++] = 0xc0; /* 8 bytes */
            for (int i = 6; i >= 0; i--)
                buf[len++] = (uint8_t)(v >> (8 * i));
        } else {
            buf[len++] = (uint8_t)(0x40 | (v >> 8)); /* 2 bytes */
            buf[len++] = (uint8_t)v;
        }
        memcpy(buf + len, s.bytes + s.at[c] + pre, ct);
        len += ct;
    }
    assert_int_equal(feed_err(&s, buf, len, 0), OS_OK);
    free(buf);
    free_stream(&s);
}

/* An empty non-final chunk with a genuine tag, built from the draft's keys, is still refused. */
static void test_chunked_empty_chunk(void **state)
{
    chunked_fixture f;
    os_hpke_aead a;
    os_ohttp_chunk_receiver *r;
    os_ohttp_chunk_status st;
    uint8_t key[16], nonce[12], wire[64], pt[MAXC];
    size_t n, used;
    (void)state;
    draft_contexts(&f);
    tu_unhex(key, 16, C_AEAD_KEY);
    tu_unhex(nonce, 12, C_AEAD_NONCE);
    tu_unhex(wire, 16, C_RESPONSE_NONCE);
    assert_int_equal(os_hpke_aead_init(&a, key, 1), OS_OK);
    wire[16] = 0x10;
    assert_int_equal(os_hpke_aead_seal(&a, wire + 17, 32, &n, nonce, NULL, 0, NULL, 0), OS_OK);
    assert_int_equal(os_ohttp_chunk_receiver_new(&r, &f.cl, 0), OS_OK);
    assert_int_equal(os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used, wire, 33, 0),
                     OS_ERR_CRYPTO);
    /* a failed receiver stays failed */
    assert_int_equal(os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used, NULL, 0, 1),
                     OS_ERR_CRYPTO);
    os_ohttp_chunk_receiver_free(r);
    /* the same empty plaintext as the final chunk is fine */
    wire[16] = 0x00;
    assert_int_equal(
        os_hpke_aead_seal(&a, wire + 17, 32, &n, nonce, (const uint8_t *)"final", 5, NULL, 0),
        OS_OK);
    assert_int_equal(os_ohttp_chunk_receiver_new(&r, &f.cl, 0), OS_OK);
    assert_int_equal(os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt), &n, &used, wire, 33, 1),
                     OS_OK);
    assert_int_equal(st, OS_OHTTP_CHUNK_DONE);
    assert_int_equal(n, 0);
    /* misuse: an output buffer smaller than the configured chunk cap */
    os_ohttp_chunk_receiver_free(r);
    assert_int_equal(os_ohttp_chunk_receiver_new(&r, &f.cl, 0), OS_OK);
    assert_int_equal(
        os_ohttp_chunk_receiver_feed(r, &st, pt, sizeof(pt) - 1, &n, &used, wire, 33, 1),
        OS_ERR_INVALID);
    os_ohttp_chunk_receiver_free(r);
    os_ohttp_chunk_receiver_free(NULL);
    assert_int_equal(os_ohttp_chunk_receiver_new(&r, &f.gw, 0), OS_ERR_INVALID); /* wrong side */
    assert_int_equal(os_ohttp_chunk_receiver_new(&r, &f.cl, OS_OHTTP_CHUNK_LIMIT + 1),
                     OS_ERR_TOOBIG);
    os_hpke_aead_clear(&a);
    os_ohttp_ctx_clear(&f.cl);
    os_ohttp_ctx_clear(&f.gw);
}

static void test_chunk_sender_rules(void **state)
{
    chunked_fixture f;
    os_ohttp_chunk_sender s;
    uint8_t nonce[16], out[MAXC + OS_OHTTP_CHUNK_OVERHEAD], big[MAXC];
    size_t n;
    (void)state;
    draft_contexts(&f);
    assert_int_equal(os_ohttp_chunk_sender_init(&s, nonce, &f.cl), OS_ERR_INVALID); /* client */
    assert_int_equal(os_ohttp_chunk_sender_init(&s, nonce, &f.gw), OS_OK);
    assert_int_equal(os_ohttp_chunk_seal(&s, out, sizeof(out), &n, NULL, 0), OS_ERR_INVALID);
    assert_int_equal(os_ohttp_chunk_seal(&s, out, 17, &n, (const uint8_t *)"ab", 2), OS_ERR_TOOBIG);
    memset(big, 'z', MAXC);
    assert_int_equal(os_ohttp_chunk_seal(&s, out, sizeof(out), &n, big, MAXC), OS_OK);
    assert_int_equal(n, 4 + MAXC + 16); /* 16400 needs the 4-byte varint */
    assert_int_equal(out[0], 0x80);
    s.counter = UINT64_MAX;
    assert_int_equal(os_ohttp_chunk_seal(&s, out, sizeof(out), &n, (const uint8_t *)"a", 1),
                     OS_ERR_RANGE);
    os_ohttp_chunk_sender_clear(&s);
    assert_true(os_ct_is_zero(&s, sizeof(s)));
    os_ohttp_chunk_sender_clear(NULL);
    os_ohttp_ctx_clear(&f.cl);
    os_ohttp_ctx_clear(&f.gw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc9458_key_config),
        cmocka_unit_test(test_rfc9458_request),
        cmocka_unit_test(test_rfc9458_gateway),
        cmocka_unit_test(test_key_config_negatives),
        cmocka_unit_test(test_request_response_negatives),
        cmocka_unit_test(test_draft_request_chunks),
        cmocka_unit_test(test_draft_response),
        cmocka_unit_test(test_chunked_round_trip),
        cmocka_unit_test(test_chunked_damage),
        cmocka_unit_test(test_chunked_empty_chunk),
        cmocka_unit_test(test_chunk_sender_rules),
    };
    return cmocka_run_group_tests_name("ohttp", tests, tu_init, NULL);
}
