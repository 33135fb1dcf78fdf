/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Known answers for HKDF-SHA256: RFC 5869 Appendix A, test cases 1-3 (A.1 basic, A.2 long inputs,
 * A.3 zero-length salt and info), plus the vectored calls agreeing with the one-buffer ones, the
 * L <= 255*HashLen limit and output aliasing the PRK.
 */
#include "testutil.h"

#include "openseed/hkdf.h"

static void fill_seq(uint8_t *buf, size_t n, uint8_t first)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(first + i);
}

static void check_case(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                       const uint8_t *info, size_t info_len, size_t L, const char *prk_hex,
                       const char *okm_hex)
{
    uint8_t prk[OS_HKDF_SHA256_LEN], okm[128];
    assert_true(L <= sizeof(okm));
    assert_int_equal(os_hkdf_sha256_extract(prk, salt, salt_len, ikm, ikm_len), OS_OK);
    tu_assert_hex(prk, sizeof(prk), prk_hex);
    assert_int_equal(os_hkdf_sha256_expand(okm, L, prk, info, info_len), OS_OK);
    tu_assert_hex(okm, L, okm_hex);
}

/* RFC 5869 A.1: Hash = SHA-256, IKM = 22 x 0x0b, salt = 0x00..0x0c, info = 0xf0..0xf9, L = 42. */
static void test_rfc5869_case1(void **state)
{
    uint8_t ikm[22], salt[13], info[10];
    (void)state;
    memset(ikm, 0x0b, sizeof(ikm));
    fill_seq(salt, sizeof(salt), 0x00);
    fill_seq(info, sizeof(info), 0xf0);
    check_case(ikm, sizeof(ikm), salt, sizeof(salt), info, sizeof(info), 42,
               "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
               "34007208d5b887185865");
}

/* RFC 5869 A.2: IKM = 0x00..0x4f, salt = 0x60..0xaf, info = 0xb0..0xff (80 bytes each), L = 82. */
static const char case2_prk[] = "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244";
static const char case2_okm[] = "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
                                "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
                                "cc30c58179ec3e87c14c01d5c1f3434f1d87";

static void test_rfc5869_case2(void **state)
{
    uint8_t ikm[80], salt[80], info[80];
    (void)state;
    fill_seq(ikm, sizeof(ikm), 0x00);
    fill_seq(salt, sizeof(salt), 0x60);
    fill_seq(info, sizeof(info), 0xb0);
    check_case(ikm, sizeof(ikm), salt, sizeof(salt), info, sizeof(info), 82, case2_prk, case2_okm);
}

/* RFC 5869 A.3: IKM = 22 x 0x0b, salt and info empty, L = 42. */
static void test_rfc5869_case3(void **state)
{
    uint8_t ikm[22], zeros[OS_HKDF_SHA256_LEN] = {0}, prk[OS_HKDF_SHA256_LEN];
    (void)state;
    memset(ikm, 0x0b, sizeof(ikm));
    check_case(ikm, sizeof(ikm), NULL, 0, NULL, 0, 42,
               "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
               "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
               "9d201395faa4b61a96c8");
    /* "if not provided, [salt] is set to a string of HashLen zeros" */
    assert_int_equal(os_hkdf_sha256_extract(prk, zeros, sizeof(zeros), ikm, sizeof(ikm)), OS_OK);
    tu_assert_hex(prk, sizeof(prk),
                  "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
}

/* Case 2 again with ikm and info split into uneven parts, including empty ones. */
static void test_vectored_parts(void **state)
{
    uint8_t ikm[80], salt[80], info[80], prk[OS_HKDF_SHA256_LEN], okm[82];
    (void)state;
    fill_seq(ikm, sizeof(ikm), 0x00);
    fill_seq(salt, sizeof(salt), 0x60);
    fill_seq(info, sizeof(info), 0xb0);
    const os_hkdf_part ikm_parts[] = {{ikm, 1}, {NULL, 0}, {ikm + 1, 63}, {ikm + 64, 16}};
    const os_hkdf_part info_parts[] = {{info, 33}, {info + 33, 0}, {info + 33, 47}};
    assert_int_equal(os_hkdf_sha256_extractv(prk, salt, sizeof(salt), ikm_parts, 4), OS_OK);
    tu_assert_hex(prk, sizeof(prk), case2_prk);
    assert_int_equal(os_hkdf_sha256_expandv(okm, sizeof(okm), prk, info_parts, 3), OS_OK);
    tu_assert_hex(okm, sizeof(okm), case2_okm);
}

/* L is capped at 255 * HashLen; the last allowed length still matches a prefix-consistent stream.
 */
static void test_expand_limits(void **state)
{
    static uint8_t big[OS_HKDF_SHA256_MAX_OKM + 1], small[64];
    uint8_t prk[OS_HKDF_SHA256_LEN];
    (void)state;
    memset(prk, 0x42, sizeof(prk));
    assert_int_equal(os_hkdf_sha256_expand(big, OS_HKDF_SHA256_MAX_OKM + 1, prk, NULL, 0),
                     OS_ERR_RANGE);
    assert_int_equal(os_hkdf_sha256_expand(big, OS_HKDF_SHA256_MAX_OKM, prk, NULL, 0), OS_OK);
    assert_int_equal(os_hkdf_sha256_expand(small, sizeof(small), prk, NULL, 0), OS_OK);
    assert_memory_equal(big, small, sizeof(small)); /* shorter output is a prefix of longer */
    assert_int_equal(os_hkdf_sha256_expand(small, 0, prk, NULL, 0), OS_OK);
    assert_int_equal(os_hkdf_sha256_expand(NULL, 1, prk, NULL, 0), OS_ERR_INVALID);
    assert_int_equal(os_hkdf_sha256_expand(small, 1, prk, NULL, 5), OS_ERR_INVALID);
    assert_int_equal(os_hkdf_sha256_extract(prk, NULL, 3, NULL, 0), OS_ERR_INVALID);
}

/* Expanding into the PRK's own buffer gives the same bytes as into a separate one. */
static void test_expand_in_place(void **state)
{
    uint8_t ikm[22], salt[13], info[10], buf[42];
    (void)state;
    memset(ikm, 0x0b, sizeof(ikm));
    fill_seq(salt, sizeof(salt), 0x00);
    fill_seq(info, sizeof(info), 0xf0);
    assert_int_equal(os_hkdf_sha256_extract(buf, salt, sizeof(salt), ikm, sizeof(ikm)), OS_OK);
    assert_int_equal(os_hkdf_sha256_expand(buf, sizeof(buf), buf, info, sizeof(info)), OS_OK);
    tu_assert_hex(buf, sizeof(buf),
                  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                  "34007208d5b887185865");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5869_case1), cmocka_unit_test(test_rfc5869_case2),
        cmocka_unit_test(test_rfc5869_case3), cmocka_unit_test(test_vectored_parts),
        cmocka_unit_test(test_expand_limits), cmocka_unit_test(test_expand_in_place),
    };
    return cmocka_run_group_tests_name("hkdf", tests, tu_init, NULL);
}
