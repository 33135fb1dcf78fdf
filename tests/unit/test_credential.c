/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for the identity credential: the pinned generator H, a full known-answer vector computed by
 * an independent implementation (@noble/curves 1.2.0 RistrettoPoint and @noble/hashes sha512 from
 * tools/node_modules; the script is summarised at test_kat_noble), round trips over many random
 * secrets, and every rejection PROTOCOL §6 asks for: moved transcripts, wrong commitments, identity
 * and malformed points (RFC 9496 Appendix A.2 invalid encodings), non-canonical scalars, bit flips
 * and bad header lengths.
 */
#include "testutil.h"

#include <sodium.h>
#include <time.h>

#include "openseed/credential.h"
#include "openseed/ct.h"

#define H_HEX "5c52bb425a210e1bbbf3ea26dd28b5653ea492ae8a5c424859b08359c2bc0e0c"
#define L_HEX "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"

/*
 * Known answer from @noble/curves 1.2.0 (not libsodium). Inputs: each scalar is
 * (little-endian SHA-512("kat <name>")[0..32)) mod L, channelId and metadataHash are
 * SHA-512("kat channel"/"kat metadata")[0..32), voucher nonce 42. The script computed
 *   C = x*BASE + r*H, N = sha512(item("OpenSeed-v1 nullifier")||item(x)||item(channelId)
 *   ||item(u64be 42))[0..32), A = k1*BASE + k2*H, c = le(sha512(item("OpenSeed-v1 credential")
 *   ||item(C)||item(N)||item(A)||item(channelId)||item(metadataHash))) mod L,
 *   s1 = k1 + c*x, s2 = k2 + c*r, with item(b) = u32be(len b)||b,
 * checked s1*BASE + s2*H == A + c*C itself, and printed base64(C||N||A||s1||s2).
 */
static const struct {
    const char *x, *r, *k1, *k2, *channel_id, *metadata_hash, *commitment, *nullifier, *a, *s1, *s2,
        *header;
    uint64_t voucher_nonce;
} kat = {
    .x = "077e26c8faba822d7523caaf5c01f8fa5dc52d5b793d71bcc4fca35e4e05ac0c",
    .r = "12a1b9e0a01c5775bf2bb43310007a1a96303c42f860d250e7c9abd4fc234b0d",
    .k1 = "8b08ab00ac0e48300388558153763ffed88d362d6545b4649264065f13ff800a",
    .k2 = "7b2e64609655e932298ab86cd92cc99f7d43cb0d0f1d742adf0bb2c2ff407b08",
    .channel_id = "039990e13504dc3b160caff094ef40c96340e83e8e2e183e8dcbb31215d0f012",
    .metadata_hash = "ab9b473f7481a891a79d3f28780bb8e6292624389dab7ce0086fbb7797294c38",
    .commitment = "285b1be176b0c7f282d475ece9ec10bfbf94a72b28ee3b8786de688ecaf15425",
    .nullifier = "00d45be51138742d3b5f71e29f81133790ffd1b9e132a92eaa5fc83c68a57e8e",
    .a = "9e5779b744339c712fad3b1e26271907216849c1928c70831a37be07a1943b19",
    .s1 = "a4bf27ee86535ed9aef85c735111fdee24c5937b4452613a460c210cfb1bd401",
    .s2 = "d6a00904d136526cee9b3e32420a9c79bfa5b6a07cc36f1d98ce2843401c4c06",
    .header = "KFsb4Xawx/KC1HXs6ewQv7+Upyso7juHht5ojsrxVCUA1FvlETh0LTtfceKfgRM3kP/RueEyqS6qX8g8"
              "aKV+jp5XebdEM5xxL607HiYnGQchaEnBkoxwgxo3vgehlDsZpL8n7oZTXtmu+FxzURH97iTFk3tEUmE6"
              "RgwhDPsb1AHWoAkE0TZSbO6bPjJCCpx5v6W2oHzDbx2YzihDQBxMBg==",
    .voucher_nonce = 42,
};

/* One proven request: what a buyer sends and the context a seller checks it against. */
typedef struct {
    uint8_t c[OS_CRED_COMMITMENT_LEN];
    uint8_t n[OS_CRED_NULLIFIER_LEN];
    uint8_t proof[OS_CRED_PROOF_LEN];
    uint8_t channel[OS_CRED_CHANNEL_ID_LEN];
    uint8_t md[OS_CRED_METADATA_HASH_LEN];
} req;

static os_cred_secret *new_secret(void)
{
    os_cred_secret *s = NULL;
    assert_int_equal(os_cred_keygen(&s), OS_OK);
    assert_non_null(s);
    return s;
}

static void make_req(req *q, const os_cred_secret *s, uint64_t voucher_nonce)
{
    randombytes_buf(q->channel, sizeof(q->channel));
    randombytes_buf(q->md, sizeof(q->md));
    os_cred_commit(q->c, s);
    assert_int_equal(os_cred_nullifier(q->n, s, q->channel, voucher_nonce), OS_OK);
    assert_int_equal(os_cred_prove(q->proof, s, q->n, q->channel, q->md), OS_OK);
    assert_int_equal(os_cred_verify(q->c, q->n, q->proof, q->channel, q->md), OS_OK);
}

static os_err verify_req(const req *q)
{
    return os_cred_verify(q->c, q->n, q->proof, q->channel, q->md);
}

/* H re-derived the way PROTOCOL §2 states it, against the pinned constant and the library's. */
static void test_generator_h(void **state)
{
    static const char label[] = "OpenSeed-v1 pedersen H";
    uint8_t digest[crypto_hash_sha512_BYTES], h[32], lib[32], g[32], one[32] = {1};
    (void)state;

    assert_int_equal(crypto_hash_sha512(digest, (const uint8_t *)label, sizeof(label) - 1), 0);
    assert_int_equal(crypto_core_ristretto255_from_hash(h, digest), 0);
    tu_assert_hex(h, sizeof(h), H_HEX);
    os_cred_generator_h(lib);
    tu_assert_hex(lib, sizeof(lib), H_HEX);
    assert_int_equal(os_cred_point_check(h), OS_OK);
    /* H is not G (RFC 9496 A.1 gives G's encoding e2f2ae0a...) */
    assert_int_equal(crypto_scalarmult_ristretto255_base(g, one), 0);
    tu_assert_hex(g, sizeof(g), "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76");
    assert_false(os_ct_eq(g, h, sizeof(h)));
}

/* Every byte of the noble vector reproduced: commitment, nullifier, proof, header, verification. */
static void test_kat_noble(void **state)
{
    uint8_t sec[OS_CRED_SECRET_LEN], exported[OS_CRED_SECRET_LEN], channel[32], md[32];
    uint8_t c[32], n[32], proof[OS_CRED_PROOF_LEN], want_proof[OS_CRED_PROOF_LEN];
    uint8_t dc[32], dn[32], dproof[OS_CRED_PROOF_LEN];
    char header[OS_CRED_HEADER_LEN + 1];
    os_cred_nonce nonce;
    os_cred_secret *s = NULL;
    (void)state;

    tu_unhex(sec, 32, kat.x);
    tu_unhex(sec + 32, 32, kat.r);
    tu_unhex(channel, 32, kat.channel_id);
    tu_unhex(md, 32, kat.metadata_hash);
    tu_unhex(want_proof, 32, kat.a);
    tu_unhex(want_proof + 32, 32, kat.s1);
    tu_unhex(want_proof + 64, 32, kat.s2);
    assert_int_equal(os_cred_secret_import(&s, sec), OS_OK);
    os_cred_secret_export(exported, s);
    assert_memory_equal(exported, sec, sizeof(sec));

    os_cred_commit(c, s);
    tu_assert_hex(c, 32, kat.commitment);
    assert_int_equal(os_cred_nullifier(n, s, channel, kat.voucher_nonce), OS_OK);
    tu_assert_hex(n, 32, kat.nullifier);

    /* The nonce struct is caller-visible, so the vector's k1, k2 and A can be injected. */
    memset(&nonce, 0, sizeof(nonce));
    tu_unhex(nonce.k1, 32, kat.k1);
    tu_unhex(nonce.k2, 32, kat.k2);
    tu_unhex(nonce.a, 32, kat.a);
    nonce.ready = 1;
    assert_int_equal(os_cred_prove_with(proof, &nonce, s, n, channel, md), OS_OK);
    assert_memory_equal(proof, want_proof, sizeof(proof));
    assert_true(os_ct_is_zero(&nonce, sizeof(nonce)));
    assert_int_equal(os_cred_verify(c, n, proof, channel, md), OS_OK);

    tu_unhex(nonce.k1, 32, kat.k1);
    tu_unhex(nonce.k2, 32, kat.k2);
    tu_unhex(nonce.a, 32, kat.a);
    nonce.ready = 1;
    assert_int_equal(
        os_cred_header_make(header, sizeof(header), &nonce, s, channel, kat.voucher_nonce, md),
        OS_OK);
    assert_string_equal(header, kat.header);
    assert_int_equal(strlen(header), OS_CRED_HEADER_LEN);

    assert_int_equal(os_cred_header_decode(dc, dn, dproof, kat.header, strlen(kat.header)), OS_OK);
    assert_memory_equal(dc, c, 32);
    assert_memory_equal(dn, n, 32);
    assert_memory_equal(dproof, want_proof, sizeof(dproof));
    assert_int_equal(os_cred_verify(dc, dn, dproof, channel, md), OS_OK);
    os_cred_secret_free(s);
    os_wipe(sec, sizeof(sec));
}

/* C = x*G + r*H recomputed here with libsodium directly; equal (x, r) give equal C. */
static void test_commit_deterministic(void **state)
{
    uint8_t sec[OS_CRED_SECRET_LEN], h[32], xg[32], rh[32], want[32], c1[32], c2[32], c3[32];
    os_cred_secret *a = NULL, *b = NULL, *d = NULL;
    (void)state;

    tu_unhex(h, 32, H_HEX);
    for (int i = 0; i < 16; i++) {
        crypto_core_ristretto255_scalar_random(sec);
        crypto_core_ristretto255_scalar_random(sec + 32);
        assert_int_equal(crypto_scalarmult_ristretto255_base(xg, sec), 0);
        assert_int_equal(crypto_scalarmult_ristretto255(rh, sec + 32, h), 0);
        assert_int_equal(crypto_core_ristretto255_add(want, xg, rh), 0);

        assert_int_equal(os_cred_secret_import(&a, sec), OS_OK);
        assert_int_equal(os_cred_secret_import(&b, sec), OS_OK);
        os_cred_commit(c1, a);
        os_cred_commit(c2, b);
        assert_memory_equal(c1, want, 32);
        assert_memory_equal(c2, want, 32);
        assert_int_equal(os_cred_point_check(c1), OS_OK);

        /* same x, other r: the blinding changes C */
        crypto_core_ristretto255_scalar_random(sec + 32);
        assert_int_equal(os_cred_secret_import(&d, sec), OS_OK);
        os_cred_commit(c3, d);
        assert_memory_not_equal(c3, c1, 32);
        os_cred_secret_free(a);
        os_cred_secret_free(b);
        os_cred_secret_free(d);
    }
    os_cred_secret_free(NULL);
    os_wipe(sec, sizeof(sec));
}

static void test_secret_import_rejects(void **state)
{
    static const char *bad[] = {
        "0000000000000000000000000000000000000000000000000000000000000000", /* zero */
        L_HEX,                                                              /* L */
        "eed3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", /* L + 1 */
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* 2^255 - 1 */
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", /* 2^256 - 1 */
    };
    uint8_t sec[OS_CRED_SECRET_LEN], good[32];
    os_cred_secret *s, *keep;
    (void)state;

    crypto_core_ristretto255_scalar_random(good);
    memcpy(sec, good, 32);
    memcpy(sec + 32, good, 32);
    assert_int_equal(os_cred_secret_import(&keep, sec), OS_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tu_unhex(sec, 32, bad[i]);
        memcpy(sec + 32, good, 32);
        s = keep; /* a failed import must leave NULL behind, not a stale pointer */
        assert_int_equal(os_cred_secret_import(&s, sec), OS_ERR_INVALID);
        assert_null(s);
        memcpy(sec, good, 32);
        tu_unhex(sec + 32, 32, bad[i]);
        s = keep;
        assert_int_equal(os_cred_secret_import(&s, sec), OS_ERR_INVALID);
        assert_null(s);
    }
    os_cred_secret_free(keep);
    /* L - 1 is the largest valid secret scalar */
    tu_unhex(sec, 32, "ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    memcpy(sec + 32, good, 32);
    assert_int_equal(os_cred_secret_import(&s, sec), OS_OK);
    os_cred_secret_free(s);
}

/* Keygen, prove and verify for many random secrets, through every path a buyer can take. */
static void test_roundtrip_many(void **state)
{
    (void)state;
    for (int i = 0; i < 64; i++) {
        os_cred_secret *s = new_secret();
        uint8_t c[32], dc[32], dn[32], dproof[OS_CRED_PROOF_LEN];
        char header[OS_CRED_HEADER_LEN + 1];
        os_cred_nonce nonce;
        req q;
        uint64_t vn = (uint64_t)i * 0x0123456789abcdefULL;

        make_req(&q, s, vn);
        assert_int_equal(verify_req(&q), OS_OK);

        /* precomputed nonce: A = k1*G + k2*H, non-identity, consumed by the proof */
        assert_int_equal(os_cred_precompute(&nonce), OS_OK);
        assert_int_equal(nonce.ready, 1);
        assert_int_equal(os_cred_point_check(nonce.a), OS_OK);
        assert_int_equal(
            os_cred_header_make(header, sizeof(header), &nonce, s, q.channel, vn, q.md), OS_OK);
        assert_int_equal(nonce.ready, 0);
        assert_int_equal(os_cred_header_decode(dc, dn, dproof, header, strlen(header)), OS_OK);
        os_cred_commit(c, s);
        assert_memory_equal(dc, c, 32);
        assert_memory_equal(dn, q.n, 32);
        assert_int_equal(os_cred_verify(dc, dn, dproof, q.channel, q.md), OS_OK);

        /* no nonce given: one is made on the spot; fresh randomness gives a different proof */
        assert_int_equal(os_cred_header_make(header, sizeof(header), NULL, s, q.channel, vn, q.md),
                         OS_OK);
        assert_int_equal(os_cred_header_decode(dc, dn, dproof, header, strlen(header)), OS_OK);
        assert_int_equal(os_cred_verify(dc, dn, dproof, q.channel, q.md), OS_OK);
        assert_memory_not_equal(dproof, q.proof, OS_CRED_PROOF_LEN);
        os_cred_secret_free(s);
    }
}

/* A valid proof moved to any other transcript or commitment fails the equation. */
static void test_transcript_binding(void **state)
{
    os_cred_secret *s = new_secret(), *other = new_secret();
    req q, m;
    (void)state;

    make_req(&q, s, 7);

    m = q; /* another channel */
    m.channel[31] ^= 1;
    assert_int_equal(verify_req(&m), OS_ERR_CRYPTO);
    m = q; /* another metadataHash */
    m.md[0] ^= 0x80;
    assert_int_equal(verify_req(&m), OS_ERR_CRYPTO);
    m = q; /* another voucher's nullifier */
    assert_int_equal(os_cred_nullifier(m.n, s, q.channel, 8), OS_OK);
    assert_int_equal(verify_req(&m), OS_ERR_CRYPTO);
    m = q; /* another secret's commitment (a different channel's C) */
    os_cred_commit(m.c, other);
    assert_int_equal(verify_req(&m), OS_ERR_CRYPTO);
    m = q; /* another secret's proof for the same request */
    assert_int_equal(os_cred_prove(m.proof, other, q.n, q.channel, q.md), OS_OK);
    assert_int_equal(verify_req(&m), OS_ERR_CRYPTO);
    m = q; /* C and nullifier swapped into each other's slots */
    memcpy(m.c, q.n, 32);
    memcpy(m.n, q.c, 32);
    assert_int_not_equal(verify_req(&m), OS_OK);
    m = q; /* a neighbouring point as C: C + G */
    {
        uint8_t one[32] = {1}, g[32];
        assert_int_equal(crypto_scalarmult_ristretto255_base(g, one), 0);
        assert_int_equal(crypto_core_ristretto255_add(m.c, q.c, g), 0);
        assert_int_equal(verify_req(&m), OS_ERR_CRYPTO);
    }
    assert_int_equal(verify_req(&q), OS_OK);
    os_cred_secret_free(s);
    os_cred_secret_free(other);
}

/* RFC 9496 Appendix A.2 "bad encodings", one or more from each class, and the identity. */
static const char *const bad_points[] = {
    /* identity: valid for libsodium, refused by us */
    "0000000000000000000000000000000000000000000000000000000000000000",
    /* non-canonical field encodings */
    "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    /* negative field elements */
    "0100000000000000000000000000000000000000000000000000000000000000",
    "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ed57ffd8c914fb201471d1c3d245ce3c746fcbe63a3679d51b6a516ebebe0e20",
    /* non-square x^2 */
    "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
    "4eac077a713c57b4f4397629a4145982c661f48044dd3f96427d40b147d9742f",
    /* negative xy value */
    "3eb858e78f5a7254d8c9731174a94f76755fd3941c0ac93735c07ba14579630e",
    "a45fdc55c76448c049a1ab33f17023edfb2be3581e9c7aade8a6125215e04220",
    /* s = -1 (p - 1), which causes y = 0 */
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

static void test_bad_points(void **state)
{
    os_cred_secret *s = new_secret();
    req q, m;
    (void)state;

    make_req(&q, s, 1);
    for (size_t i = 0; i < sizeof(bad_points) / sizeof(bad_points[0]); i++) {
        uint8_t p[32];
        tu_unhex(p, 32, bad_points[i]);
        assert_int_equal(os_cred_point_check(p), OS_ERR_INVALID);
        m = q; /* as C */
        memcpy(m.c, p, 32);
        assert_int_equal(verify_req(&m), OS_ERR_INVALID);
        m = q; /* as A */
        memcpy(m.proof, p, 32);
        assert_int_equal(verify_req(&m), OS_ERR_INVALID);
    }
    /* libsodium alone takes the identity, which is why we check it ourselves */
    {
        uint8_t zero[32] = {0};
        assert_int_equal(crypto_core_ristretto255_is_valid_point(zero), 1);
    }
    os_cred_secret_free(s);
}

/* s1 or s2 replaced by s + L (same residue) or 0xff..ff: refused before any group work. */
static void test_noncanonical_scalars(void **state)
{
    os_cred_secret *s = new_secret();
    uint8_t l[32];
    req q, m;
    (void)state;

    tu_unhex(l, 32, L_HEX);
    make_req(&q, s, 3);
    for (int which = 0; which < 2; which++) {
        uint8_t *sc;
        unsigned int carry = 0;

        m = q;
        sc = m.proof + 32 + 32 * which;
        /* s < L < 2^253, so s + L fits in 32 bytes and reduces to the same scalar */
        for (int i = 0; i < 32; i++) {
            carry += (unsigned int)sc[i] + l[i];
            sc[i] = (uint8_t)carry;
            carry >>= 8;
        }
        assert_int_equal(carry, 0);
        assert_int_equal(verify_req(&m), OS_ERR_INVALID);

        m = q;
        memset(m.proof + 32 + 32 * which, 0xff, 32);
        assert_int_equal(verify_req(&m), OS_ERR_INVALID);

        /* zero is canonical: well-formed, the equation just fails (and libsodium's -1 for an
         * identity product does not turn into a bogus error) */
        m = q;
        memset(m.proof + 32 + 32 * which, 0, 32);
        assert_int_equal(verify_req(&m), OS_ERR_CRYPTO);
    }
    assert_int_equal(verify_req(&q), OS_OK);
    os_cred_secret_free(s);
}

static void test_scalar_is_canonical(void **state)
{
    static const struct {
        const char *hex;
        int ok;
    } v[] = {
        {"0000000000000000000000000000000000000000000000000000000000000000", 1}, /* 0 */
        {"0100000000000000000000000000000000000000000000000000000000000000", 1}, /* 1 */
        {"ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", 1}, /* L - 1 */
        {"edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", 0}, /* L */
        {"eed3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", 0}, /* L + 1 */
        {"0000000000000000000000000000000000000000000000000000000000000010", 1}, /* 2^252 */
        {"ffffffffffffffffffffffffffffffff00000000000000000000000000000010", 0}, /* > L, low */
        {"edd3f55c1a631258d69cf7a2def9de1300000000000000000000000000000010", 1}, /* L - 2^128 */
        {"edd3f55c1a631258d69cf7a2def9de1401000000000000000000000000000010", 0}, /* L + 2^128 */
        {"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0f", 1}, /* 2^252 - 1 */
        {"0000000000000000000000000000000000000000000000000000000000000011", 0}, /* 2^252+2^248 */
        {"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", 0}, /* 2^255 - 1 */
        {"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 0}, /* 2^256 - 1 */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t s[32];
        tu_unhex(s, 32, v[i].hex);
        if (os_cred_scalar_is_canonical(s) != v[i].ok)
            fail_msg("scalar %s: want %d", v[i].hex, v[i].ok);
    }
    /* against libsodium's own reduction: canonical exactly when reduce(s || 0^32) == s */
    for (int i = 0; i < 3000; i++) {
        uint8_t s[32], wide[64] = {0}, red[32];
        randombytes_buf(s, sizeof(s));
        if (i % 3 == 0) {
            /* L with one low byte replaced: about half land below L, half above */
            tu_unhex(s, 32, L_HEX);
            s[randombytes_uniform(16)] = (uint8_t)randombytes_uniform(256);
        } else if (i % 3 == 1) {
            s[31] &= 0x1f;
        }
        memcpy(wide, s, 32);
        crypto_core_ristretto255_scalar_reduce(red, wide);
        assert_int_equal(os_cred_scalar_is_canonical(s), memcmp(red, s, 32) == 0);
    }
}

/* Every single-bit flip of the 160 wire bytes, and of the 216 header characters, is refused. */
static void test_bit_flips(void **state)
{
    os_cred_secret *s = new_secret();
    uint8_t channel[32], md[32], c[32], n[32], proof[OS_CRED_PROOF_LEN];
    uint8_t wire[OS_CRED_WIRE_LEN];
    char header[OS_CRED_HEADER_LEN + 1];
    (void)state;

    randombytes_buf(channel, sizeof(channel));
    randombytes_buf(md, sizeof(md));
    assert_int_equal(os_cred_header_make(header, sizeof(header), NULL, s, channel, 99, md), OS_OK);
    assert_int_equal(os_cred_header_decode(c, n, proof, header, OS_CRED_HEADER_LEN), OS_OK);
    memcpy(wire, c, 32);
    memcpy(wire + 32, n, 32);
    memcpy(wire + 64, proof, OS_CRED_PROOF_LEN);
    assert_int_equal(os_cred_verify(c, n, proof, channel, md), OS_OK);

    for (size_t bit = 0; bit < 8 * sizeof(wire); bit++) {
        uint8_t w[OS_CRED_WIRE_LEN];
        char text[OS_CRED_HEADER_LEN + 1];
        memcpy(w, wire, sizeof(w));
        w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(os_cred_header_encode(text, sizeof(text), w, w + 32, w + 64), OS_OK);
        assert_int_equal(os_cred_header_decode(c, n, proof, text, OS_CRED_HEADER_LEN), OS_OK);
        if (os_cred_verify(c, n, proof, channel, md) == OS_OK)
            fail_msg("wire bit %zu flipped still verifies", bit);
    }
    for (size_t bit = 0; bit < 8 * OS_CRED_HEADER_LEN; bit++) {
        char text[OS_CRED_HEADER_LEN + 1];
        memcpy(text, header, sizeof(text));
        text[bit / 8] ^= (char)(1u << (bit % 8));
        if (os_cred_header_decode(c, n, proof, text, OS_CRED_HEADER_LEN) == OS_OK &&
            os_cred_verify(c, n, proof, channel, md) == OS_OK)
            fail_msg("header bit %zu flipped still verifies", bit);
    }
    os_cred_secret_free(s);
}

static void test_header_lengths(void **state)
{
    char buf[512], small[OS_CRED_HEADER_LEN];
    uint8_t c[32], n[32], proof[OS_CRED_PROOF_LEN], z[OS_CRED_WIRE_LEN] = {0};
    size_t len = strlen(kat.header);
    (void)state;

    assert_int_equal(len, OS_CRED_HEADER_LEN);
    /* truncated: by one, by a quantum, empty */
    assert_int_equal(os_cred_header_decode(c, n, proof, kat.header, len - 1), OS_ERR_INVALID);
    assert_int_equal(os_cred_header_decode(c, n, proof, kat.header, len - 4), OS_ERR_INVALID);
    assert_int_equal(os_cred_header_decode(c, n, proof, kat.header, 0), OS_ERR_INVALID);
    assert_int_equal(os_cred_header_decode(c, n, proof, NULL, len), OS_ERR_INVALID);
    /* overlong: one more quantum, trailing whitespace */
    snprintf(buf, sizeof(buf), "%sAAAA", kat.header);
    assert_int_equal(os_cred_header_decode(c, n, proof, buf, strlen(buf)), OS_ERR_INVALID);
    snprintf(buf, sizeof(buf), "%s\r\n", kat.header);
    assert_int_equal(os_cred_header_decode(c, n, proof, buf, strlen(buf)), OS_ERR_INVALID);
    /* right length, wrong content: padding moved, whitespace inside, url-safe alphabet */
    memcpy(buf, kat.header, len + 1);
    buf[len - 2] = 'A';
    assert_int_equal(os_cred_header_decode(c, n, proof, buf, len), OS_ERR_INVALID);
    memcpy(buf, kat.header, len + 1);
    buf[100] = ' ';
    assert_int_equal(os_cred_header_decode(c, n, proof, buf, len), OS_ERR_INVALID);
    memcpy(buf, kat.header, len + 1);
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '+')
            buf[i] = '-';
    assert_int_equal(os_cred_header_decode(c, n, proof, buf, len), OS_ERR_INVALID);
    /* non-ASCII bytes: libsodium 1.0.18 decodes each of 0x80..0xff as '/', we refuse them */
    for (unsigned int v = 0x80; v <= 0xff; v++) {
        memcpy(buf, kat.header, len + 1);
        buf[8] = (char)v; /* kat.header[8] is a letter; [9] is '/' */
        assert_int_equal(os_cred_header_decode(c, n, proof, buf, len), OS_ERR_INVALID);
        memcpy(buf, kat.header, len + 1);
        assert_int_equal(buf[9], '/');
        buf[9] = (char)v;
        assert_int_equal(os_cred_header_decode(c, n, proof, buf, len), OS_ERR_INVALID);
    }
    /* 216 characters holding 162 bytes (no padding) */
    memset(buf, 'A', OS_CRED_HEADER_LEN);
    buf[OS_CRED_HEADER_LEN] = '\0';
    assert_int_equal(os_cred_header_decode(c, n, proof, buf, OS_CRED_HEADER_LEN), OS_ERR_INVALID);
    /* the untouched vector decodes */
    assert_int_equal(os_cred_header_decode(c, n, proof, kat.header, len), OS_OK);

    /* encode needs room for the NUL */
    assert_int_equal(os_cred_header_encode(small, sizeof(small), z, z + 32, z + 64), OS_ERR_TOOBIG);
    assert_int_equal(small[0], '\0');
    assert_int_equal(os_cred_header_encode(buf, OS_CRED_HEADER_LEN + 1, z, z + 32, z + 64), OS_OK);
    assert_int_equal(strlen(buf), OS_CRED_HEADER_LEN);
}

static void test_nullifier(void **state)
{
    os_cred_secret *s = new_secret(), *other = new_secret();
    uint8_t ch1[32], ch2[32], a[32], b[32];
    static const uint64_t nonces[] = {0, 1, 2, 255, 256, 1ULL << 32, 1ULL << 56, UINT64_MAX};
    (void)state;

    randombytes_buf(ch1, sizeof(ch1));
    memcpy(ch2, ch1, sizeof(ch2));
    ch2[0] ^= 1;
    /* stable for equal inputs */
    assert_int_equal(os_cred_nullifier(a, s, ch1, 5), OS_OK);
    assert_int_equal(os_cred_nullifier(b, s, ch1, 5), OS_OK);
    assert_memory_equal(a, b, 32);
    /* differs by channel and by secret */
    assert_int_equal(os_cred_nullifier(b, s, ch2, 5), OS_OK);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(os_cred_nullifier(b, other, ch1, 5), OS_OK);
    assert_memory_not_equal(a, b, 32);
    /* pairwise distinct across nonces, including ones that differ only in byte order */
    for (size_t i = 0; i < sizeof(nonces) / sizeof(nonces[0]); i++) {
        assert_int_equal(os_cred_nullifier(a, s, ch1, nonces[i]), OS_OK);
        for (size_t j = i + 1; j < sizeof(nonces) / sizeof(nonces[0]); j++) {
            assert_int_equal(os_cred_nullifier(b, s, ch1, nonces[j]), OS_OK);
            assert_memory_not_equal(a, b, 32);
        }
    }
    os_cred_secret_free(s);
    os_cred_secret_free(other);
}

/* A nonce is single-use: a consumed, blank or tampered nonce is refused, and always wiped. */
/* Waits up to 10 s for the pool to hold want nonces. */
static bool pool_fills(os_cred_pool *p, size_t want)
{
    for (int i = 0; i < 1000; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        if (os_cred_pool_ready(p) >= want)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_nonce_pool(void **state)
{
    enum { CAP = 8 };
    os_cred_secret *s = new_secret();
    os_cred_pool *p = NULL;
    os_cred_nonce n[CAP], extra;
    uint8_t proof[OS_CRED_PROOF_LEN];
    req q;
    (void)state;

    assert_int_equal(os_cred_pool_new(&p, 0), OS_ERR_INVALID);
    assert_int_equal(os_cred_pool_new(&p, 4097), OS_ERR_INVALID);
    assert_null(p);
    assert_false(os_cred_pool_take(NULL, &extra));
    os_cred_pool_free(NULL);

    make_req(&q, s, 12);
    assert_int_equal(os_cred_pool_new(&p, CAP), OS_OK);
    assert_true(pool_fills(p, CAP));
    for (int i = 0; i < CAP; i++) {
        assert_true(os_cred_pool_take(p, &n[i]));
        assert_true(n[i].ready);
        for (int j = 0; j < i; j++) /* never the same nonce twice */
            assert_memory_not_equal(n[i].a, n[j].a, OS_CRED_POINT_LEN);
    }
    /* each proves, once */
    for (int i = 0; i < CAP; i++) {
        assert_int_equal(os_cred_prove_with(proof, &n[i], s, q.n, q.channel, q.md), OS_OK);
        assert_int_equal(os_cred_verify(q.c, q.n, proof, q.channel, q.md), OS_OK);
    }
    /* drained to half or below, it fills up again */
    assert_true(pool_fills(p, CAP));
    os_cred_pool_free(p);
    os_cred_secret_free(s);
}

static void test_nonce_single_use(void **state)
{
    os_cred_secret *s = new_secret();
    uint8_t h[32], k1g[32], k2h[32], want[32], proof[OS_CRED_PROOF_LEN];
    char header[OS_CRED_HEADER_LEN + 1];
    os_cred_nonce nonce, copy;
    req q;
    (void)state;

    make_req(&q, s, 11);
    tu_unhex(h, 32, H_HEX);
    assert_int_equal(os_cred_precompute(&nonce), OS_OK);
    /* A really is k1*G + k2*H */
    assert_int_equal(crypto_scalarmult_ristretto255_base(k1g, nonce.k1), 0);
    assert_int_equal(crypto_scalarmult_ristretto255(k2h, nonce.k2, h), 0);
    assert_int_equal(crypto_core_ristretto255_add(want, k1g, k2h), 0);
    assert_memory_equal(nonce.a, want, 32);

    copy = nonce;
    assert_int_equal(os_cred_prove_with(proof, &nonce, s, q.n, q.channel, q.md), OS_OK);
    assert_int_equal(os_cred_verify(q.c, q.n, proof, q.channel, q.md), OS_OK);
    assert_true(os_ct_is_zero(&nonce, sizeof(nonce)));
    /* second use of the consumed struct */
    assert_int_equal(os_cred_prove_with(proof, &nonce, s, q.n, q.channel, q.md), OS_ERR_INVALID);
    /* ready flag clear */
    nonce = copy;
    nonce.ready = 0;
    assert_int_equal(os_cred_prove_with(proof, &nonce, s, q.n, q.channel, q.md), OS_ERR_INVALID);
    assert_true(os_ct_is_zero(&nonce, sizeof(nonce)));
    /* zero or non-canonical k */
    nonce = copy;
    memset(nonce.k1, 0, 32);
    assert_int_equal(os_cred_prove_with(proof, &nonce, s, q.n, q.channel, q.md), OS_ERR_INVALID);
    nonce = copy;
    memset(nonce.k2, 0xff, 32);
    assert_int_equal(os_cred_prove_with(proof, &nonce, s, q.n, q.channel, q.md), OS_ERR_INVALID);
    assert_true(os_ct_is_zero(&nonce, sizeof(nonce)));
    /* header_make consumes the nonce even when the output buffer is too small */
    nonce = copy;
    assert_int_equal(
        os_cred_header_make(header, OS_CRED_HEADER_LEN, &nonce, s, q.channel, 11, q.md),
        OS_ERR_TOOBIG);
    assert_true(os_ct_is_zero(&nonce, sizeof(nonce)));
    os_cred_nonce_wipe(NULL);
    os_wipe(&copy, sizeof(copy));
    os_cred_secret_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generator_h),
        cmocka_unit_test(test_kat_noble),
        cmocka_unit_test(test_commit_deterministic),
        cmocka_unit_test(test_secret_import_rejects),
        cmocka_unit_test(test_roundtrip_many),
        cmocka_unit_test(test_transcript_binding),
        cmocka_unit_test(test_bad_points),
        cmocka_unit_test(test_noncanonical_scalars),
        cmocka_unit_test(test_scalar_is_canonical),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_header_lengths),
        cmocka_unit_test(test_nullifier),
        cmocka_unit_test(test_nonce_single_use),
        cmocka_unit_test(test_nonce_pool),
    };
    return cmocka_run_group_tests_name("credential", tests, tu_init, NULL);
}
