/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HPKE against RFC 9180 Appendix A.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM), base
 * mode A.1.1, end to end: DeriveKeyPair for both parties, Encap/Decap, every key-schedule value,
 * the six listed encryptions (sequence numbers 0, 1, 2, 4, 255, 256) and the three exports. The
 * values are those of the RFC's test-vectors.json (as copied in Go's
 * src/crypto/internal/hpke/testdata/rfc9180-vectors.json; exports as printed in RFC 9180 A.1.1.2).
 * Then the negative cases: tampered ciphertext or tag, wrong aad, wrong key, wrong sequence number,
 * small-order peer keys, role misuse and the sequence-number limit.
 */
#include "testutil.h"

#include <sodium.h>
#include <stdlib.h>

#include "openseed/ct.h"
#include "openseed/hkdf.h"
#include "openseed/hpke.h"

#define IKM_E "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234"
#define PK_EM "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"
#define SK_EM "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736"
#define IKM_R "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037"
#define PK_RM "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"
#define SK_RM "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"
#define INFO "4f6465206f6e2061204772656369616e2055726e" /* "Ode on a Grecian Urn" */
#define SHARED_SECRET "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc"
#define KEY_SCHEDULE_CONTEXT                                                                       \
    "00725611c9d98c07c03f60095cd32d400d8347d45ed67097bbad50fc56da742d07cb6cffde367bb0565ba28bb02c" \
    "90744a20f5ef37f30523526106f637abb05449"
#define SECRET "12fff91991e93b48de37e7daddb52981084bd8aa64289c3788471d9a9712f397"
#define KEY "4531685d41d65f03dc48f6b8302c05b0"
#define BASE_NONCE "56d890e5accaaf011cff4b7d"
#define EXPORTER_SECRET "45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8"
#define PT "Beauty is truth, truth beauty"

static const struct {
    uint64_t seq;
    const char *aad;
    const char *nonce;
    const char *ct;
} encryptions[] = {
    {0, "Count-0", "56d890e5accaaf011cff4b7d",
     "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"},
    {1, "Count-1", "56d890e5accaaf011cff4b7c",
     "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84"},
    {2, "Count-2", "56d890e5accaaf011cff4b7f",
     "498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb72516491588d96a19ad4a683518973dcc180"},
    {4, "Count-4", "56d890e5accaaf011cff4b79",
     "583bd32bc67a5994bb8ceaca813d369bca7b2a42408cddef5e22f880b631215a09fc0012bc69fccaa251c0246d"},
    {255, "Count-255", "56d890e5accaaf011cff4b82",
     "7175db9717964058640a3a11fb9007941a5d1757fda1a6935c805c21af32505bf106deefec4a49ac38d71c9e0a"},
    {256, "Count-256", "56d890e5accaaf011cff4a7d",
     "957f9800542b0b8891badb026d79cc54597cb2d225b54c00c5238c25d05c30e3fbeda97d2e0e1aba483a2df9f2"},
};
#define N_ENC (sizeof(encryptions) / sizeof(encryptions[0]))

static const struct {
    const char *context_hex;
    const char *value;
} exports[] = {
    {"", "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee"},
    {"00", "2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5"},
    {"54657374436f6e74657874", "e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931"},
};

#define CT_LEN (sizeof(PT) - 1 + OS_HPKE_NT)

/* Both contexts of A.1.1 built from the vector's keys. */
typedef struct fixture {
    uint8_t skE[32], pkE[32], skR[32], pkR[32], info[20];
    os_hpke_ctx s, r;
} fixture;

static void setup_pair(fixture *f)
{
    uint8_t enc[32];
    tu_unhex(f->skE, 32, SK_EM);
    tu_unhex(f->pkE, 32, PK_EM);
    tu_unhex(f->skR, 32, SK_RM);
    tu_unhex(f->pkR, 32, PK_RM);
    tu_unhex(f->info, sizeof(f->info), INFO);
    assert_int_equal(
        os_hpke_setup_base_s_with(&f->s, enc, f->pkR, f->info, sizeof(f->info), f->skE, f->pkE),
        OS_OK);
    tu_assert_hex(enc, sizeof(enc), PK_EM);
    assert_int_equal(os_hpke_setup_base_r(&f->r, enc, f->skR, f->pkR, f->info, sizeof(f->info)),
                     OS_OK);
}

static void teardown_pair(fixture *f)
{
    os_hpke_ctx_clear(&f->s);
    os_hpke_ctx_clear(&f->r);
}

static void test_a1_derive_keypair(void **state)
{
    uint8_t ikm[32], sk[32], pk[32];
    (void)state;
    tu_unhex(ikm, sizeof(ikm), IKM_E);
    assert_int_equal(os_hpke_derive_keypair(sk, pk, ikm, sizeof(ikm)), OS_OK);
    tu_assert_hex(sk, sizeof(sk), SK_EM);
    tu_assert_hex(pk, sizeof(pk), PK_EM);
    tu_unhex(ikm, sizeof(ikm), IKM_R);
    assert_int_equal(os_hpke_derive_keypair(sk, pk, ikm, sizeof(ikm)), OS_OK);
    tu_assert_hex(sk, sizeof(sk), SK_RM);
    tu_assert_hex(pk, sizeof(pk), PK_RM);
    assert_int_equal(os_hpke_public_key(pk, sk), OS_OK);
    tu_assert_hex(pk, sizeof(pk), PK_RM);
    /* fewer than Nsk bytes of ikm cannot carry Nsk bytes of entropy */
    assert_int_equal(os_hpke_derive_keypair(sk, pk, ikm, 31), OS_ERR_INVALID);
}

static void test_a1_encap_decap(void **state)
{
    uint8_t skE[32], pkE[32], skR[32], pkR[32], ss[32], enc[32];
    (void)state;
    tu_unhex(skE, 32, SK_EM);
    tu_unhex(pkE, 32, PK_EM);
    tu_unhex(skR, 32, SK_RM);
    tu_unhex(pkR, 32, PK_RM);
    assert_int_equal(os_hpke_encap(ss, enc, pkR, skE, pkE), OS_OK);
    tu_assert_hex(ss, sizeof(ss), SHARED_SECRET);
    tu_assert_hex(enc, sizeof(enc), PK_EM);
    memset(ss, 0, sizeof(ss));
    assert_int_equal(os_hpke_decap(ss, enc, skR, pkR), OS_OK);
    tu_assert_hex(ss, sizeof(ss), SHARED_SECRET);
}

/*
 * The key schedule re-derived here with plain HKDF and hand-built labels (RFC 9180 §4, §5.1), so
 * the vector's intermediate values check our reading of the labelling independently of hpke.c.
 */
static void labeled_extract(uint8_t prk[32], const uint8_t *salt, size_t salt_len,
                            const char *label, const uint8_t *ikm, size_t ikm_len)
{
    uint8_t buf[128];
    static const uint8_t suite[] = {'H', 'P', 'K', 'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x01};
    size_t n = 0;
    memcpy(buf, "HPKE-v1", 7), n += 7;
    memcpy(buf + n, suite, sizeof(suite)), n += sizeof(suite);
    memcpy(buf + n, label, strlen(label)), n += strlen(label);
    assert_true(n + ikm_len <= sizeof(buf));
    if (ikm_len)
        memcpy(buf + n, ikm, ikm_len), n += ikm_len;
    assert_int_equal(os_hkdf_sha256_extract(prk, salt, salt_len, buf, n), OS_OK);
}

static void labeled_expand(uint8_t *out, size_t L, const uint8_t prk[32], const char *label,
                           const uint8_t *info, size_t info_len)
{
    uint8_t buf[160];
    static const uint8_t suite[] = {'H', 'P', 'K', 'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x01};
    size_t n = 0;
    buf[n++] = (uint8_t)(L >> 8);
    buf[n++] = (uint8_t)L;
    memcpy(buf + n, "HPKE-v1", 7), n += 7;
    memcpy(buf + n, suite, sizeof(suite)), n += sizeof(suite);
    memcpy(buf + n, label, strlen(label)), n += strlen(label);
    assert_true(n + info_len <= sizeof(buf));
    memcpy(buf + n, info, info_len), n += info_len;
    assert_int_equal(os_hkdf_sha256_expand(out, L, prk, buf, n), OS_OK);
}

static void test_a1_key_schedule(void **state)
{
    fixture f;
    uint8_t ss[32], ksc[65], secret[32], key[16], nonce[12], exp[32];
    (void)state;
    setup_pair(&f);
    tu_unhex(ss, sizeof(ss), SHARED_SECRET);
    ksc[0] = 0x00;
    labeled_extract(ksc + 1, NULL, 0, "psk_id_hash", NULL, 0);
    labeled_extract(ksc + 33, NULL, 0, "info_hash", f.info, sizeof(f.info));
    tu_assert_hex(ksc, sizeof(ksc), KEY_SCHEDULE_CONTEXT);
    labeled_extract(secret, ss, sizeof(ss), "secret", NULL, 0);
    tu_assert_hex(secret, sizeof(secret), SECRET);
    labeled_expand(key, sizeof(key), secret, "key", ksc, sizeof(ksc));
    labeled_expand(nonce, sizeof(nonce), secret, "base_nonce", ksc, sizeof(ksc));
    labeled_expand(exp, sizeof(exp), secret, "exp", ksc, sizeof(ksc));
    tu_assert_hex(key, sizeof(key), KEY);
    tu_assert_hex(nonce, sizeof(nonce), BASE_NONCE);
    tu_assert_hex(exp, sizeof(exp), EXPORTER_SECRET);
    /* and what the library's two contexts hold */
    tu_assert_hex(f.s.key, OS_HPKE_NK, KEY);
    tu_assert_hex(f.s.base_nonce, OS_HPKE_NN, BASE_NONCE);
    tu_assert_hex(f.s.exporter_secret, OS_HPKE_NH, EXPORTER_SECRET);
    tu_assert_hex(f.r.key, OS_HPKE_NK, KEY);
    tu_assert_hex(f.r.base_nonce, OS_HPKE_NN, BASE_NONCE);
    tu_assert_hex(f.r.exporter_secret, OS_HPKE_NH, EXPORTER_SECRET);
    assert_int_equal(f.s.seq, 0);
    teardown_pair(&f);
}

/* Each listed encryption, sealing and opening at its sequence number. */
static void test_a1_encryptions(void **state)
{
    fixture f;
    uint8_t ct[CT_LEN], pt[64], nonce[12], key[16];
    size_t n;
    os_hpke_aead raw;
    (void)state;
    setup_pair(&f);
    tu_unhex(key, sizeof(key), KEY);
    assert_int_equal(os_hpke_aead_init(&raw, key, 1), OS_OK);
    for (size_t i = 0; i < N_ENC; i++) {
        const char *aad = encryptions[i].aad;
        f.s.seq = encryptions[i].seq;
        assert_int_equal(os_hpke_seal(&f.s, ct, sizeof(ct), &n, (const uint8_t *)aad, strlen(aad),
                                      (const uint8_t *)PT, strlen(PT)),
                         OS_OK);
        assert_int_equal(n, CT_LEN);
        tu_assert_hex(ct, n, encryptions[i].ct);
        assert_int_equal(f.s.seq, encryptions[i].seq + 1);
        /* the vector's nonce, used directly with the key, gives the same ciphertext */
        tu_unhex(nonce, sizeof(nonce), encryptions[i].nonce);
        assert_int_equal(os_hpke_aead_seal(&raw, ct, sizeof(ct), &n, nonce, (const uint8_t *)aad,
                                           strlen(aad), (const uint8_t *)PT, strlen(PT)),
                         OS_OK);
        tu_assert_hex(ct, n, encryptions[i].ct);

        f.r.seq = encryptions[i].seq;
        assert_int_equal(
            os_hpke_open(&f.r, pt, sizeof(pt), &n, (const uint8_t *)aad, strlen(aad), ct, CT_LEN),
            OS_OK);
        assert_int_equal(n, strlen(PT));
        assert_memory_equal(pt, PT, n);
        assert_int_equal(f.r.seq, encryptions[i].seq + 1);
    }
    os_hpke_aead_clear(&raw);
    teardown_pair(&f);
}

/* The same encryptions reached by sealing 257 messages in order from a fresh context. */
static void test_a1_sequential(void **state)
{
    fixture f;
    uint8_t ct[CT_LEN], pt[64];
    char aad[16];
    size_t n, next = 0;
    (void)state;
    setup_pair(&f);
    for (uint64_t seq = 0; seq <= 256; seq++) {
        int len = snprintf(aad, sizeof(aad), "Count-%llu", (unsigned long long)seq);
        assert_int_equal(os_hpke_seal(&f.s, ct, sizeof(ct), &n, (const uint8_t *)aad, (size_t)len,
                                      (const uint8_t *)PT, strlen(PT)),
                         OS_OK);
        assert_int_equal(os_hpke_open(&f.r, pt, sizeof(pt), &n, (const uint8_t *)aad, (size_t)len,
                                      ct, sizeof(ct)),
                         OS_OK);
        assert_memory_equal(pt, PT, strlen(PT));
        if (next < N_ENC && encryptions[next].seq == seq)
            tu_assert_hex(ct, sizeof(ct), encryptions[next++].ct);
    }
    assert_int_equal(next, N_ENC);
    teardown_pair(&f);
}

static void test_a1_exports(void **state)
{
    fixture f;
    uint8_t ctx[16], out[32];
    size_t ctx_len;
    (void)state;
    setup_pair(&f);
    for (size_t i = 0; i < sizeof(exports) / sizeof(exports[0]); i++) {
        assert_int_equal(os_hex_decode(ctx, sizeof(ctx), &ctx_len, exports[i].context_hex,
                                       strlen(exports[i].context_hex)),
                         OS_OK);
        assert_int_equal(os_hpke_export(&f.s, out, sizeof(out), ctx, ctx_len), OS_OK);
        tu_assert_hex(out, sizeof(out), exports[i].value);
        assert_int_equal(os_hpke_export(&f.r, out, sizeof(out), ctx, ctx_len), OS_OK);
        tu_assert_hex(out, sizeof(out), exports[i].value);
    }
    assert_int_equal(os_hpke_export(&f.s, out, OS_HPKE_MAX_EXPORT + 1, NULL, 0), OS_ERR_RANGE);
    teardown_pair(&f);
}

static void expect_open_fails(os_hpke_ctx *r, const char *aad, const uint8_t *ct, size_t ct_len)
{
    uint8_t pt[64];
    size_t n = 12345;
    uint64_t seq = r->seq;
    memset(pt, 0xaa, sizeof(pt));
    assert_int_equal(
        os_hpke_open(r, pt, sizeof(pt), &n, (const uint8_t *)aad, strlen(aad), ct, ct_len),
        OS_ERR_CRYPTO);
    assert_int_equal(r->seq, seq); /* a failed open does not move the sequence */
    assert_int_equal(n, 12345);
    if (ct_len >= OS_HPKE_NT)
        assert_true(os_ct_is_zero(pt, ct_len - OS_HPKE_NT)); /* no unauthenticated plaintext left */
}

static void test_open_negatives(void **state)
{
    fixture f;
    uint8_t ct[CT_LEN], bad[CT_LEN], pt[64], ikm[32], skX[32], pkX[32], enc[32];
    size_t n;
    os_hpke_ctx wrong;
    (void)state;
    setup_pair(&f);
    tu_unhex(ct, sizeof(ct), encryptions[0].ct);

    /* every single-bit flip, in the body and in the tag */
    for (size_t i = 0; i < sizeof(ct); i++) {
        memcpy(bad, ct, sizeof(ct));
        bad[i] ^= (uint8_t)(1u << (i % 8));
        expect_open_fails(&f.r, "Count-0", bad, sizeof(bad));
    }
    expect_open_fails(&f.r, "Count-0", ct, sizeof(ct) - 1); /* truncated tag */
    expect_open_fails(&f.r, "Count-0", ct, OS_HPKE_NT - 1); /* shorter than a tag */
    expect_open_fails(&f.r, "Count-1", ct, sizeof(ct));     /* wrong aad */
    expect_open_fails(&f.r, "", ct, sizeof(ct));            /* missing aad */
    f.r.seq = 1;                                            /* wrong sequence number */
    expect_open_fails(&f.r, "Count-0", ct, sizeof(ct));
    f.r.seq = 0;

    /* wrong key: a different recipient decapsulates the same enc to another secret */
    memset(ikm, 0x5a, sizeof(ikm));
    assert_int_equal(os_hpke_derive_keypair(skX, pkX, ikm, sizeof(ikm)), OS_OK);
    tu_unhex(enc, sizeof(enc), PK_EM);
    assert_int_equal(os_hpke_setup_base_r(&wrong, enc, skX, pkX, f.info, sizeof(f.info)), OS_OK);
    expect_open_fails(&wrong, "Count-0", ct, sizeof(ct));
    os_hpke_ctx_clear(&wrong);
    /* right key, wrong info */
    assert_int_equal(os_hpke_setup_base_r(&wrong, enc, f.skR, f.pkR, f.info, 5), OS_OK);
    expect_open_fails(&wrong, "Count-0", ct, sizeof(ct));
    os_hpke_ctx_clear(&wrong);

    /* after all that, the genuine message still opens at seq 0 */
    assert_int_equal(
        os_hpke_open(&f.r, pt, sizeof(pt), &n, (const uint8_t *)"Count-0", 7, ct, sizeof(ct)),
        OS_OK);
    assert_memory_equal(pt, PT, strlen(PT));
    /* a short output buffer is refused before anything is written */
    f.r.seq = 0;
    assert_int_equal(
        os_hpke_open(&f.r, pt, strlen(PT) - 1, &n, (const uint8_t *)"Count-0", 7, ct, sizeof(ct)),
        OS_ERR_TOOBIG);
    teardown_pair(&f);
}

/* Small-order public keys give an all-zero DH output, which must be refused (RFC 9180 §7.1.4). */
static void test_small_order_keys(void **state)
{
    uint8_t zero[32] = {0}, one[32] = {1}, skR[32], pkR[32], ss[32], enc[32], info[1] = {0};
    os_hpke_ctx ctx;
    (void)state;
    tu_unhex(skR, 32, SK_RM);
    tu_unhex(pkR, 32, PK_RM);
    assert_int_equal(os_hpke_decap(ss, zero, skR, pkR), OS_ERR_CRYPTO);
    assert_true(os_ct_is_zero(ss, sizeof(ss)));
    assert_int_equal(os_hpke_decap(ss, one, skR, pkR), OS_ERR_CRYPTO);
    assert_int_equal(os_hpke_setup_base_r(&ctx, zero, skR, pkR, info, 1), OS_ERR_CRYPTO);
    os_hpke_ctx_clear(&ctx);
    assert_int_equal(os_hpke_setup_base_s(&ctx, enc, one, info, 1), OS_ERR_CRYPTO);
    os_hpke_ctx_clear(&ctx);
}

static void test_roles_and_limits(void **state)
{
    fixture f;
    uint8_t ct[CT_LEN], pt[64];
    size_t n;
    (void)state;
    setup_pair(&f);
    /* a sender does not open and a receiver does not seal */
    assert_int_equal(
        os_hpke_seal(&f.r, ct, sizeof(ct), &n, NULL, 0, (const uint8_t *)PT, strlen(PT)),
        OS_ERR_INVALID);
    assert_int_equal(os_hpke_open(&f.s, pt, sizeof(pt), &n, NULL, 0, ct, sizeof(ct)),
                     OS_ERR_INVALID);
    /* output too small */
    assert_int_equal(
        os_hpke_seal(&f.s, ct, sizeof(ct) - 1, &n, NULL, 0, (const uint8_t *)PT, strlen(PT)),
        OS_ERR_TOOBIG);
    assert_int_equal(f.s.seq, 0);
    /* the last sequence number is never used: the one before it is, then Seal refuses */
    f.s.seq = UINT64_MAX - 1;
    assert_int_equal(
        os_hpke_seal(&f.s, ct, sizeof(ct), &n, NULL, 0, (const uint8_t *)PT, strlen(PT)), OS_OK);
    assert_int_equal(f.s.seq, UINT64_MAX);
    assert_int_equal(
        os_hpke_seal(&f.s, ct, sizeof(ct), &n, NULL, 0, (const uint8_t *)PT, strlen(PT)),
        OS_ERR_RANGE);
    f.r.seq = UINT64_MAX;
    assert_int_equal(os_hpke_open(&f.r, pt, sizeof(pt), &n, NULL, 0, ct, sizeof(ct)), OS_ERR_RANGE);
    f.r.seq = UINT64_MAX - 1;
    assert_int_equal(os_hpke_open(&f.r, pt, sizeof(pt), &n, NULL, 0, ct, sizeof(ct)), OS_OK);
    assert_memory_equal(pt, PT, strlen(PT));
    teardown_pair(&f);
    /* a cleared context is inert and clearing twice is fine */
    assert_int_equal(os_hpke_seal(&f.s, ct, sizeof(ct), &n, NULL, 0, NULL, 0), OS_ERR_INVALID);
    assert_int_equal(os_hpke_export(&f.s, ct, 16, NULL, 0), OS_ERR_INVALID);
    assert_true(os_ct_is_zero(&f.s, sizeof(f.s)));
    os_hpke_ctx_clear(&f.s);
    os_hpke_ctx_clear(NULL);
}

/* Random keys, random ephemerals: messages of many sizes round-trip, in place too. */
static void test_random_round_trip(void **state)
{
    uint8_t skR[32], pkR[32], enc[32], enc2[32], *buf, *copy;
    const uint8_t info[] = "openseed test";
    os_hpke_ctx s, r, s2;
    size_t n;
    (void)state;
    buf = malloc(70000);
    copy = malloc(70000);
    assert_non_null(buf);
    assert_non_null(copy);
    assert_int_equal(os_hpke_keypair(skR, pkR), OS_OK);
    assert_int_equal(os_hpke_setup_base_s(&s, enc, pkR, info, sizeof(info)), OS_OK);
    assert_int_equal(os_hpke_setup_base_s(&s2, enc2, pkR, info, sizeof(info)), OS_OK);
    assert_memory_not_equal(enc, enc2, sizeof(enc)); /* a fresh ephemeral each time */
    assert_int_equal(os_hpke_setup_base_r(&r, enc, skR, pkR, info, sizeof(info)), OS_OK);
    for (size_t len = 0; len < 70000 - OS_HPKE_NT; len = len * 3 + 1) {
        randombytes_buf(copy, len);
        memcpy(buf, copy, len);
        assert_int_equal(os_hpke_seal(&s, buf, 70000, &n, NULL, 0, buf, len), OS_OK);
        assert_int_equal(n, len + OS_HPKE_NT);
        assert_int_equal(os_hpke_open(&r, buf, 70000, &n, NULL, 0, buf, n), OS_OK);
        assert_int_equal(n, len);
        assert_memory_equal(buf, copy, len);
    }
    os_hpke_ctx_clear(&s);
    os_hpke_ctx_clear(&s2);
    os_hpke_ctx_clear(&r);
    free(buf);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a1_derive_keypair), cmocka_unit_test(test_a1_encap_decap),
        cmocka_unit_test(test_a1_key_schedule),   cmocka_unit_test(test_a1_encryptions),
        cmocka_unit_test(test_a1_sequential),     cmocka_unit_test(test_a1_exports),
        cmocka_unit_test(test_open_negatives),    cmocka_unit_test(test_small_order_keys),
        cmocka_unit_test(test_roles_and_limits),  cmocka_unit_test(test_random_round_trip),
    };
    return cmocka_run_group_tests_name("hpke", tests, tu_init, NULL);
}
