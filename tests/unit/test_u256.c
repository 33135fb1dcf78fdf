/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uint256 helpers: the extremes (0 and 2^256-1 = 1157920892…39935, the EVM's maximum uint256 as
 * printed by every Solidity toolchain), one past them, non-canonical decimal text, and the 64/128
 * bit boundaries a wei balance crosses (anvil's 10000 ETH is 10^22 wei, above 2^64).
 */
#include "testutil.h"

#include "openseed/u256.h"

static void test_bounds_and_text(void **state)
{
    static const char max[] =
        "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    os_u256 a, b, c;
    uint64_t u;
    unsigned __int128 w;
    char dec[OS_U256_DEC_LEN];
    (void)state;

    assert_int_equal(os_u256_parse_dec(&a, max), OS_OK);
    for (int i = 0; i < 32; i++)
        assert_int_equal(a.be[i], 0xff);
    assert_int_equal(os_u256_format_dec(dec, sizeof(dec), &a), OS_OK);
    assert_string_equal(dec, max);
    assert_int_equal(os_u256_format_dec(dec, 78, &a), OS_ERR_TOOBIG);
    assert_int_equal(
        os_u256_parse_dec(
            &a, "115792089237316195423570985008687907853269984665640564039457584007913129639936"),
        OS_ERR_RANGE);
    assert_int_equal(os_u256_parse_dec(&a, "007"), OS_ERR_INVALID);
    assert_int_equal(os_u256_parse_dec(&a, "-1"), OS_ERR_INVALID);
    assert_int_equal(os_u256_parse_dec(&a, ""), OS_ERR_INVALID);
    assert_int_equal(os_u256_parse_dec(&a, "0"), OS_OK);
    assert_int_equal(os_u256_format_dec(dec, sizeof(dec), &a), OS_OK);
    assert_string_equal(dec, "0");

    /* 10000 ETH in wei, anvil's starting balance, needs more than 64 bits */
    assert_int_equal(os_u256_parse_dec(&a, "10000000000000000000000"), OS_OK);
    assert_int_equal(os_u256_to_u64(&u, &a), OS_ERR_RANGE);
    assert_int_equal(os_u256_to_u128(&w, &a), OS_OK);
    assert_true(w == (unsigned __int128)10000 * 1000000000000000000ULL);
    os_u256_from_u128(&b, w);
    assert_int_equal(os_u256_cmp(&a, &b), 0);
    os_u256_from_u64(&b, UINT64_MAX);
    assert_int_equal(os_u256_to_u64(&u, &b), OS_OK);
    assert_true(u == UINT64_MAX);
    assert_int_equal(os_u256_cmp(&a, &b), 1);
    assert_int_equal(os_u256_cmp(&b, &a), -1);
    assert_int_equal(os_u256_add(&c, &b, &b), OS_OK); /* 2^65 - 2 */
    assert_int_equal(os_u256_format_dec(dec, sizeof(dec), &c), OS_OK);
    assert_string_equal(dec, "36893488147419103230");
    assert_int_equal(os_u256_sub(&c, &c, &b), OS_OK);
    assert_int_equal(os_u256_cmp(&c, &b), 0);
    assert_int_equal(os_u256_sub(&c, &b, &a), OS_ERR_RANGE);
    assert_int_equal(os_u256_parse_dec(&a, max), OS_OK);
    os_u256_from_u64(&b, 1);
    assert_int_equal(os_u256_add(&c, &a, &b), OS_ERR_RANGE);
    memset(a.be, 0, 32);
    a.be[15] = 1; /* 2^128 */
    assert_int_equal(os_u256_to_u128(&w, &a), OS_ERR_RANGE);
}

static void test_add_carries_across_bytes(void **state)
{
    os_u256 a, b, c;
    char dec[OS_U256_DEC_LEN];
    (void)state;
    assert_int_equal(os_u256_parse_dec(&a, "340282366920938463463374607431768211455"),
                     OS_OK); /* 2^128-1 */
    os_u256_from_u64(&b, 1);
    assert_int_equal(os_u256_add(&c, &a, &b), OS_OK);
    assert_int_equal(os_u256_format_dec(dec, sizeof(dec), &c), OS_OK);
    assert_string_equal(dec, "340282366920938463463374607431768211456");
    assert_int_equal(c.be[15], 1);
    assert_int_equal(os_u256_sub(&c, &c, &b), OS_OK);
    assert_int_equal(os_u256_cmp(&c, &a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_and_text),
        cmocka_unit_test(test_add_carries_across_bytes),
    };
    return cmocka_run_group_tests_name("u256", tests, tu_init, NULL);
}
