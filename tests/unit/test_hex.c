/* SPDX-License-Identifier: Apache-2.0 */
/* Hex encoding and strict decoding. */
#include "testutil.h"

static void test_digit(void **state)
{
    /* the boundaries of each range and the characters just outside them */
    static const char bad[] = {'/', ':', '@', 'G', '`', 'g', 'x', 'X', ' ', '\0'};
    int accepted = 0;
    (void)state;
    assert_int_equal(os_hex_digit('0'), 0);
    assert_int_equal(os_hex_digit('9'), 9);
    assert_int_equal(os_hex_digit('a'), 10);
    assert_int_equal(os_hex_digit('f'), 15);
    assert_int_equal(os_hex_digit('A'), 10);
    assert_int_equal(os_hex_digit('F'), 15);
    assert_int_equal(os_hex_digit('c'), os_hex_digit('C'));
    for (size_t i = 0; i < sizeof(bad); i++)
        assert_int_equal(os_hex_digit(bad[i]), -1);
    /* high-bit bytes, e.g. '0' | 0x80, whatever the signedness of char */
    assert_int_equal(os_hex_digit((char)0xb0), -1);
    assert_int_equal(os_hex_digit((char)0xff), -1);
    /* exactly 0-9, a-f and A-F among all 256 byte values */
    for (int c = 0; c < 256; c++)
        accepted += os_hex_digit((char)c) >= 0;
    assert_int_equal(accepted, 22);
}

static void test_encode(void **state)
{
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
    char out[OS_HEX_LEN(4)];
    (void)state;
    assert_int_equal(os_hex_encode(out, sizeof(out), in, 4, 1), OS_OK);
    assert_string_equal(out, "0x0001abff");
    assert_int_equal(os_hex_encode(out, sizeof(out), in, 4, 0), OS_OK);
    assert_string_equal(out, "0001abff");
    assert_int_equal(os_hex_encode(out, sizeof(out), in, 0, 1), OS_OK);
    assert_string_equal(out, "0x");
    /* one byte short of room for the NUL */
    assert_int_equal(os_hex_encode(out, OS_HEX_LEN(4) - 1, in, 4, 1), OS_ERR_TOOBIG);
    assert_string_equal(out, "");
}

static void test_decode(void **state)
{
    uint8_t out[8];
    size_t n;
    (void)state;
    assert_int_equal(os_hex_decode(out, sizeof(out), &n, "0xDEadBEef", 10), OS_OK);
    assert_int_equal(n, 4);
    tu_assert_hex(out, n, "deadbeef");
    assert_int_equal(os_hex_decode(out, sizeof(out), &n, "deadbeef", 8), OS_OK);
    assert_int_equal(n, 4);
    assert_int_equal(os_hex_decode(out, sizeof(out), &n, "0x", 2), OS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(os_hex_decode(out, sizeof(out), &n, "abc", 3), OS_ERR_INVALID);
    assert_int_equal(os_hex_decode(out, sizeof(out), &n, "zz", 2), OS_ERR_INVALID);
    assert_int_equal(os_hex_decode(out, sizeof(out), &n, "0x0g", 4), OS_ERR_INVALID);
    assert_int_equal(os_hex_decode(out, sizeof(out), &n, " 00", 3), OS_ERR_INVALID);
    assert_int_equal(os_hex_decode(out, 2, &n, "000000", 6), OS_ERR_TOOBIG);
}

static void test_decode_exact(void **state)
{
    uint8_t out[4];
    (void)state;
    assert_int_equal(os_hex_decode_exact(out, 4, "0x01020304"), OS_OK);
    tu_assert_hex(out, 4, "01020304");
    assert_int_equal(os_hex_decode_exact(out, 4, "0x010203"), OS_ERR_INVALID);
    assert_int_equal(os_hex_decode_exact(out, 4, "0x0102030405"), OS_ERR_TOOBIG);
    assert_int_equal(os_hex_decode_exact(out, 4, NULL), OS_ERR_INVALID);
}

static void test_roundtrip(void **state)
{
    uint8_t in[256], back[256];
    char text[OS_HEX_LEN(256)];
    size_t n;
    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(255 - i);
    assert_int_equal(os_hex_encode(text, sizeof(text), in, sizeof(in), 1), OS_OK);
    assert_int_equal(os_hex_decode(back, sizeof(back), &n, text, strlen(text)), OS_OK);
    assert_int_equal(n, sizeof(in));
    assert_memory_equal(in, back, sizeof(in));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digit),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_exact),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests_name("hex", tests, tu_init, NULL);
}
