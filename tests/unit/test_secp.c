/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Known answers and refusals for the secp256k1 module. Sources:
 *  - go-ethereum crypto/crypto_test.go: key 289c2857…2032 has address 970e8128…f791.
 *  - SEC 2 / every secp256k1 library: private key 1 gives the generator G, whose Ethereum address
 *    is the widely published 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf.
 *  - EIP-55 "Test Cases": the all-caps, all-lower and normal (mixed-case) groups.
 * Signature malleability: for a valid (r, s, v) the twin (r, n - s, v ^ 1) recovers the same key;
 * EIP-2 and the escrow contract refuse it, and so must we.
 */
#include "testutil.h"

#include "openseed/secp.h"

/* The group order n, big-endian. */
static const char order_hex[] = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

static void test_geth_vector(void **state)
{
    uint8_t priv[32], addr[20], pub[64], addr2[20];
    (void)state;
    tu_unhex(priv, 32, "289c2857d4598e37fb9647507e47a309d6133539bf21a8b9cb6df88fd5232032");
    assert_int_equal(os_secp_privkey_check(priv), OS_OK);
    assert_int_equal(os_secp_address(addr, priv), OS_OK);
    tu_assert_hex(addr, 20, "970e8128ab834e8eac17ab8e3812f010678cf791");
    assert_int_equal(os_secp_pubkey(pub, priv), OS_OK);
    os_secp_pubkey_address(addr2, pub);
    tu_assert_hex(addr2, 20, "970e8128ab834e8eac17ab8e3812f010678cf791");
}

static void test_generator(void **state)
{
    uint8_t priv[32] = {0}, pub[64], addr[20];
    char text[OS_ADDRESS_STR_LEN];
    (void)state;
    priv[31] = 1;
    assert_int_equal(os_secp_pubkey(pub, priv), OS_OK);
    tu_assert_hex(pub, 64,
                  "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
                  "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8");
    assert_int_equal(os_secp_address(addr, priv), OS_OK);
    os_eip55_format(text, addr);
    assert_string_equal(text, "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
}

static void test_eip55_vectors(void **state)
{
    static const char *const v[] = {
        /* all caps */
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        /* all lower */
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        /* normal */
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t addr[20], want[20];
        char text[OS_ADDRESS_STR_LEN];
        assert_int_equal(os_eip55_parse(addr, v[i]), OS_OK);
        assert_int_equal(os_hex_decode_exact(want, 20, v[i]), OS_OK);
        assert_memory_equal(addr, want, 20);
        os_eip55_format(text, addr);
        assert_string_equal(text, v[i]);
    }
}

static void test_eip55_refusals(void **state)
{
    uint8_t addr[20];
    char buf[64];
    (void)state;
    /* the checksum decides: one letter's case flipped is refused, everywhere in the string */
    static const char good[] = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    for (size_t i = 2; i < sizeof(good) - 1; i++) {
        char c = good[i];
        if (!((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            continue;
        snprintf(buf, sizeof(buf), "%s", good);
        buf[i] = (char)(c ^ 0x20);
        assert_int_equal(os_eip55_parse(addr, buf), OS_ERR_INVALID);
    }
    /* single-case forms are accepted unchecked */
    assert_int_equal(os_eip55_parse(addr, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"), OS_OK);
    assert_int_equal(os_eip55_parse(addr, "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"), OS_OK);
    /* shape */
    assert_int_equal(os_eip55_parse(addr, "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
                     OS_ERR_INVALID);
    assert_int_equal(os_eip55_parse(addr, "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
                     OS_ERR_INVALID);
    assert_int_equal(os_eip55_parse(addr, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe"),
                     OS_ERR_INVALID);
    assert_int_equal(os_eip55_parse(addr, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed0"),
                     OS_ERR_INVALID);
    assert_int_equal(os_eip55_parse(addr, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg"),
                     OS_ERR_INVALID);
    assert_int_equal(os_eip55_parse(addr, "0x"), OS_ERR_INVALID);
    assert_int_equal(os_eip55_parse(addr, ""), OS_ERR_INVALID);
    assert_int_equal(os_eip55_parse(addr, NULL), OS_ERR_INVALID);
}

static void test_privkey_range(void **state)
{
    uint8_t k[32];
    (void)state;
    memset(k, 0, 32);
    assert_int_equal(os_secp_privkey_check(k), OS_ERR_INVALID);
    tu_unhex(k, 32, order_hex);
    assert_int_equal(os_secp_privkey_check(k), OS_ERR_INVALID); /* n */
    k[31] = 0x40;
    assert_int_equal(os_secp_privkey_check(k), OS_OK); /* n - 1 */
    memset(k, 0xff, 32);
    assert_int_equal(os_secp_privkey_check(k), OS_ERR_INVALID);
    uint8_t pub[64], sig[65], d[32] = {0};
    assert_int_equal(os_secp_pubkey(pub, k), OS_ERR_INVALID);
    assert_int_equal(os_secp_sign(sig, k, d), OS_ERR_INVALID);
}

static void test_keygen(void **state)
{
    uint8_t keys[16][32], addr[20];
    (void)state;
    for (int i = 0; i < 16; i++) {
        assert_int_equal(os_secp_keygen(keys[i]), OS_OK);
        assert_int_equal(os_secp_privkey_check(keys[i]), OS_OK);
        assert_int_equal(os_secp_address(addr, keys[i]), OS_OK);
        for (int j = 0; j < i; j++)
            assert_memory_not_equal(keys[i], keys[j], 32);
    }
}

/* Signs 32 digests with fresh keys; each must recover, verify, be low-s and carry v 27/28. */
static void test_sign_recover(void **state)
{
    uint8_t priv[32], addr[20], got[20], digest[32], sig[65], pub[64], pub2[64], half[32];
    (void)state;
    tu_unhex(half, 32, "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
    for (int i = 0; i < 32; i++) {
        assert_int_equal(os_secp_keygen(priv), OS_OK);
        assert_int_equal(os_secp_address(addr, priv), OS_OK);
        assert_int_equal(os_secp_pubkey(pub, priv), OS_OK);
        for (int j = 0; j < 32; j++)
            digest[j] = (uint8_t)(i * 31 + j);
        assert_int_equal(os_secp_sign(sig, priv, digest), OS_OK);
        assert_true(sig[64] == 27 || sig[64] == 28);
        assert_true(memcmp(sig + 32, half, 32) <= 0);
        assert_int_equal(os_secp_recover(got, digest, sig), OS_OK);
        assert_memory_equal(got, addr, 20);
        assert_int_equal(os_secp_recover_pubkey(pub2, digest, sig), OS_OK);
        assert_memory_equal(pub, pub2, 64);
        assert_int_equal(os_secp_verify(addr, digest, sig), OS_OK);
        /* v as 0/1 means the same */
        sig[64] -= 27;
        assert_int_equal(os_secp_verify(addr, digest, sig), OS_OK);
        sig[64] += 27;
        /* another digest or another signer fails */
        digest[0] ^= 1;
        assert_int_equal(os_secp_verify(addr, digest, sig), OS_ERR_CRYPTO);
        digest[0] ^= 1;
        addr[19] ^= 1;
        assert_int_equal(os_secp_verify(addr, digest, sig), OS_ERR_CRYPTO);
    }
}

/* out = n - s (s < n), big-endian. */
static void order_minus(uint8_t out[32], const uint8_t s[32])
{
    uint8_t n[32];
    int borrow = 0;
    tu_unhex(n, 32, order_hex);
    for (int i = 31; i >= 0; i--) {
        int d = n[i] - s[i] - borrow;
        borrow = d < 0;
        out[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

static void test_high_s_refused(void **state)
{
    uint8_t priv[32], digest[32], sig[65], twin[65], addr[20], got[20];
    (void)state;
    tu_unhex(priv, 32, "289c2857d4598e37fb9647507e47a309d6133539bf21a8b9cb6df88fd5232032");
    memset(digest, 0x42, 32);
    assert_int_equal(os_secp_sign(sig, priv, digest), OS_OK);
    assert_int_equal(os_secp_address(addr, priv), OS_OK);
    memcpy(twin, sig, 32);
    order_minus(twin + 32, sig + 32);
    twin[64] = sig[64] == 27 ? 28 : 27;
    assert_int_equal(os_secp_recover(got, digest, twin), OS_ERR_CRYPTO);
    assert_int_equal(os_secp_verify(addr, digest, twin), OS_ERR_CRYPTO);
    /* the twin is otherwise a genuine signature: with v left unflipped it is still refused */
    twin[64] = sig[64];
    assert_int_equal(os_secp_recover(got, digest, twin), OS_ERR_CRYPTO);
}

static void test_malformed_sigs(void **state)
{
    uint8_t priv[32], digest[32], sig[65], bad[65], got[20], pub[64];
    static const uint8_t bad_v[] = {2, 3, 26, 29, 30, 35, 36, 255};
    (void)state;
    tu_unhex(priv, 32, "289c2857d4598e37fb9647507e47a309d6133539bf21a8b9cb6df88fd5232032");
    memset(digest, 0x17, 32);
    assert_int_equal(os_secp_sign(sig, priv, digest), OS_OK);
    for (size_t i = 0; i < sizeof(bad_v); i++) {
        memcpy(bad, sig, 65);
        bad[64] = bad_v[i];
        assert_int_equal(os_secp_recover(got, digest, bad), OS_ERR_CRYPTO);
    }
    /* r = 0 */
    memcpy(bad, sig, 65);
    memset(bad, 0, 32);
    assert_int_equal(os_secp_recover(got, digest, bad), OS_ERR_CRYPTO);
    /* s = 0 */
    memcpy(bad, sig, 65);
    memset(bad + 32, 0, 32);
    assert_int_equal(os_secp_recover_pubkey(pub, digest, bad), OS_ERR_CRYPTO);
    /* s = n and s = 2^256 - 1 */
    memcpy(bad, sig, 65);
    tu_unhex(bad + 32, 32, order_hex);
    assert_int_equal(os_secp_recover(got, digest, bad), OS_ERR_CRYPTO);
    memset(bad + 32, 0xff, 32);
    assert_int_equal(os_secp_recover(got, digest, bad), OS_ERR_CRYPTO);
    /* r = n */
    memcpy(bad, sig, 65);
    tu_unhex(bad, 32, order_hex);
    assert_int_equal(os_secp_recover(got, digest, bad), OS_ERR_CRYPTO);
    /* r = 5 is below n but no curve point has x = 5: no key to recover */
    memcpy(bad, sig, 65);
    memset(bad, 0, 32);
    bad[31] = 5;
    assert_int_equal(os_secp_recover(got, digest, bad), OS_ERR_CRYPTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geth_vector),    cmocka_unit_test(test_generator),
        cmocka_unit_test(test_eip55_vectors),  cmocka_unit_test(test_eip55_refusals),
        cmocka_unit_test(test_privkey_range),  cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_sign_recover),   cmocka_unit_test(test_high_s_refused),
        cmocka_unit_test(test_malformed_sigs),
    };
    return cmocka_run_group_tests_name("secp", tests, tu_init, NULL);
}
