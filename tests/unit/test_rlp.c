/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RLP known answers and strictness. The positive vectors are the examples of the Ethereum wiki's
 * RLP page (https://ethereum.org/en/developers/docs/data-structures-and-encoding/rlp/): "dog",
 * ["cat","dog"], "", [], 0, the byte 0x00, 15, 1024, the set-theoretical representation of three
 * and the 56-byte "Lorem ipsum" string that first needs the long form. The 32-byte integer and
 * 1024-byte string come from go-ethereum's rlp/encode_test.go. The negative cases are the
 * non-canonical forms go-ethereum's decoder refuses (rlp/decode_test.go: ErrCanonSize,
 * ErrCanonInt, "non-canonical size information", ErrValueTooLarge, trailing data).
 */
#include "testutil.h"

#include <stdlib.h>

#include "openseed/rlp.h"

static const char lorem[] = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";

static void test_strings(void **state)
{
    os_buf b;
    uint8_t zero = 0, fifteen = 15;
    (void)state;
    os_buf_init(&b, 4096);

    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)"dog", 3), OS_OK);
    tu_assert_hex(b.data, b.len, "83646f67");
    os_buf_reset(&b);
    assert_int_equal(os_rlp_put_bytes(&b, NULL, 0), OS_OK);
    tu_assert_hex(b.data, b.len, "80");
    os_buf_reset(&b);
    assert_int_equal(os_rlp_put_bytes(&b, &zero, 1), OS_OK);
    tu_assert_hex(b.data, b.len, "00");
    os_buf_reset(&b);
    assert_int_equal(os_rlp_put_bytes(&b, &fifteen, 1), OS_OK);
    tu_assert_hex(b.data, b.len, "0f");
    os_buf_reset(&b);
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)"\x80", 1), OS_OK);
    tu_assert_hex(b.data, b.len, "8180");
    os_buf_reset(&b);
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)lorem, strlen(lorem)), OS_OK);
    assert_int_equal(b.len, 2 + 56);
    tu_assert_hex(b.data, 2, "b838");
    assert_memory_equal(b.data + 2, lorem, 56);
    os_buf_reset(&b);
    /* 55 bytes is the last short form */
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)lorem, 55), OS_OK);
    tu_assert_hex(b.data, 1, "b7");
    assert_int_equal(b.len, 56);
    os_buf_free(&b);
}

static void test_long_string_two_byte_length(void **state)
{
    uint8_t s[1024];
    os_buf b;
    (void)state;
    memset(s, 'a', sizeof(s));
    os_buf_init(&b, 4096);
    assert_int_equal(os_rlp_put_bytes(&b, s, sizeof(s)), OS_OK);
    assert_int_equal(b.len, 3 + 1024);
    tu_assert_hex(b.data, 3, "b90400");
    os_buf_free(&b);
}

static void test_integers(void **state)
{
    static const struct {
        uint64_t v;
        const char *enc;
    } v[] = {
        {0, "80"},
        {1, "01"},
        {15, "0f"},
        {127, "7f"},
        {128, "8180"},
        {1024, "820400"},
        {0xffffff, "83ffffff"},
        {UINT64_C(0xffffffffffffffff), "88ffffffffffffffff"},
    };
    os_buf b;
    (void)state;
    os_buf_init(&b, 64);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        os_rlp_item it;
        uint64_t back;
        os_buf_reset(&b);
        assert_int_equal(os_rlp_put_u64(&b, v[i].v), OS_OK);
        tu_assert_hex(b.data, b.len, v[i].enc);
        assert_int_equal(os_rlp_decode(&it, b.data, b.len, 1), OS_OK);
        assert_int_equal(os_rlp_item_u64(&back, &it), OS_OK);
        assert_true(back == v[i].v);
    }
    os_buf_free(&b);
}

static void test_uint256(void **state)
{
    uint8_t be[32], back[32], zero[32] = {0};
    os_buf b;
    os_rlp_item it;
    (void)state;
    /* go-ethereum encode_test.go: big.Int
     * 0x100102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F */
    tu_unhex(be, 32, "100102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    os_buf_init(&b, 64);
    assert_int_equal(os_rlp_put_uint(&b, be, 32), OS_OK);
    tu_assert_hex(b.data, b.len,
                  "a0100102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    assert_int_equal(os_rlp_decode(&it, b.data, b.len, 1), OS_OK);
    assert_int_equal(os_rlp_item_u256(back, &it), OS_OK);
    assert_memory_equal(back, be, 32);
    os_buf_reset(&b);
    assert_int_equal(os_rlp_put_uint(&b, zero, 32), OS_OK);
    tu_assert_hex(b.data, b.len, "80");
    os_buf_reset(&b);
    zero[31] = 0x42;
    assert_int_equal(os_rlp_put_uint(&b, zero, 32), OS_OK);
    tu_assert_hex(b.data, b.len, "42");
    os_buf_free(&b);
}

static void test_lists(void **state)
{
    os_buf b;
    size_t m0, m1, m2, m3;
    (void)state;
    os_buf_init(&b, 4096);

    os_rlp_list_begin(&b, &m0);
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)"cat", 3), OS_OK);
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)"dog", 3), OS_OK);
    assert_int_equal(os_rlp_list_end(&b, m0), OS_OK);
    tu_assert_hex(b.data, b.len, "c88363617483646f67");

    os_buf_reset(&b);
    os_rlp_list_begin(&b, &m0);
    assert_int_equal(os_rlp_list_end(&b, m0), OS_OK);
    tu_assert_hex(b.data, b.len, "c0");

    /* [ [], [[]], [ [], [[]] ] ] */
    os_buf_reset(&b);
    os_rlp_list_begin(&b, &m0);
    os_rlp_list_begin(&b, &m1);
    assert_int_equal(os_rlp_list_end(&b, m1), OS_OK);
    os_rlp_list_begin(&b, &m1);
    os_rlp_list_begin(&b, &m2);
    assert_int_equal(os_rlp_list_end(&b, m2), OS_OK);
    assert_int_equal(os_rlp_list_end(&b, m1), OS_OK);
    os_rlp_list_begin(&b, &m1);
    os_rlp_list_begin(&b, &m2);
    assert_int_equal(os_rlp_list_end(&b, m2), OS_OK);
    os_rlp_list_begin(&b, &m2);
    os_rlp_list_begin(&b, &m3);
    assert_int_equal(os_rlp_list_end(&b, m3), OS_OK);
    assert_int_equal(os_rlp_list_end(&b, m2), OS_OK);
    assert_int_equal(os_rlp_list_end(&b, m1), OS_OK);
    assert_int_equal(os_rlp_list_end(&b, m0), OS_OK);
    tu_assert_hex(b.data, b.len, "c7c0c1c0c3c0c1c0");

    /* a list whose payload needs the long form: ["Lorem…"] = f8 3a b8 38 … */
    os_buf_reset(&b);
    os_rlp_list_begin(&b, &m0);
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)lorem, 56), OS_OK);
    assert_int_equal(os_rlp_list_end(&b, m0), OS_OK);
    assert_int_equal(b.len, 60);
    tu_assert_hex(b.data, 4, "f83ab838");
    os_buf_free(&b);
}

static void test_decode_roundtrip(void **state)
{
    uint8_t in[9];
    os_rlp_item top, it;
    os_rlp_iter iter;
    size_t n;
    (void)state;

    tu_unhex(in, 9, "c88363617483646f67");
    assert_int_equal(os_rlp_decode(&top, in, 9, 1), OS_OK);
    assert_true(top.is_list);
    assert_int_equal(os_rlp_list_count(&n, &top), OS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(os_rlp_iter_init(&iter, &top), OS_OK);
    assert_int_equal(os_rlp_iter_next(&iter, &it), OS_OK);
    assert_false(it.is_list);
    assert_int_equal(it.len, 3);
    assert_memory_equal(it.data, "cat", 3);
    assert_int_equal(os_rlp_iter_next(&iter, &it), OS_OK);
    assert_memory_equal(it.data, "dog", 3);
    assert_int_equal(os_rlp_iter_next(&iter, &it), OS_ERR_NOTFOUND);
    /* a string is not a list */
    assert_int_equal(os_rlp_decode(&top, in + 1, 4, 1), OS_OK);
    assert_int_equal(os_rlp_iter_init(&iter, &top), OS_ERR_INVALID);
}

static void test_depth_bound(void **state)
{
    uint8_t in[8];
    os_rlp_item top;
    (void)state;
    tu_unhex(in, 8, "c7c0c1c0c3c0c1c0"); /* nested 4 deep */
    assert_int_equal(os_rlp_decode(&top, in, 8, 4), OS_OK);
    assert_int_equal(os_rlp_decode(&top, in, 8, 3), OS_ERR_RANGE);
    assert_int_equal(os_rlp_decode(&top, in, 1, 0), OS_ERR_INVALID); /* c7 truncated */
    tu_unhex(in, 1, "c0");
    assert_int_equal(os_rlp_decode(&top, in, 1, 0), OS_ERR_RANGE);
    assert_int_equal(os_rlp_decode(&top, in, 1, 1), OS_OK);
}

static void test_decode_rejects(void **state)
{
    static const char *const bad[] = {
        "",                   /* nothing */
        "8105",               /* single byte < 0x80 wrapped in a header */
        "8100",               /* same, for zero */
        "b800",               /* long form, zero length with leading zero */
        "b80100",             /* long form for a one-byte payload */
        "b83700",             /* long form for a 55-byte payload (and truncated) */
        "b90038",             /* length with a leading zero byte */
        "f800",               /* long list form for an empty payload */
        "f83a",               /* long list form, payload missing */
        "83646f",             /* truncated string */
        "c88363617483646f",   /* truncated list element */
        "c4836361748364",     /* element overruns its list */
        "c0c0",               /* trailing data */
        "8300000000",         /* trailing data after a string */
        "bfffffffffffffffff", /* 2^64-1 byte length */
        "c28105",             /* a non-canonical element inside a list */
    };
    uint8_t in[64];
    size_t n;
    os_rlp_item top;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(os_hex_decode(in, sizeof(in), &n, bad[i], strlen(bad[i])), OS_OK);
        if (os_rlp_decode(&top, in, n, OS_RLP_MAX_DEPTH) != OS_ERR_INVALID)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_integer_rejects(void **state)
{
    uint8_t in[40], be[32];
    uint64_t v;
    os_rlp_item it;
    (void)state;
    tu_unhex(in, 3, "820001"); /* leading zero byte */
    assert_int_equal(os_rlp_decode(&it, in, 3, 0), OS_OK);
    assert_int_equal(os_rlp_item_u64(&v, &it), OS_ERR_INVALID);
    assert_int_equal(os_rlp_item_u256(be, &it), OS_ERR_INVALID);
    tu_unhex(in, 1, "00"); /* zero must be the empty string */
    assert_int_equal(os_rlp_decode(&it, in, 1, 0), OS_OK);
    assert_int_equal(os_rlp_item_u64(&v, &it), OS_ERR_INVALID);
    tu_unhex(in, 10, "89010000000000000000"); /* 2^64 */
    assert_int_equal(os_rlp_decode(&it, in, 10, 0), OS_OK);
    assert_int_equal(os_rlp_item_u64(&v, &it), OS_ERR_RANGE);
    assert_int_equal(os_rlp_item_u256(be, &it), OS_OK);
    tu_assert_hex(be + 23, 9, "010000000000000000");
    memset(in, 1, sizeof(in));
    in[0] = 0xa1; /* 33-byte integer */
    assert_int_equal(os_rlp_decode(&it, in, 34, 0), OS_OK);
    assert_int_equal(os_rlp_item_u256(be, &it), OS_ERR_RANGE);
    tu_unhex(in, 1, "c0");
    assert_int_equal(os_rlp_decode(&it, in, 1, 1), OS_OK);
    assert_int_equal(os_rlp_item_u64(&v, &it), OS_ERR_INVALID);
}

static void test_cap(void **state)
{
    os_buf b;
    size_t m;
    (void)state;
    os_buf_init(&b, 3);
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)"dog", 3), OS_ERR_TOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)"do", 2), OS_OK);
    os_buf_free(&b);
    os_buf_init(&b, 3);
    os_rlp_list_begin(&b, &m);
    assert_int_equal(os_rlp_put_bytes(&b, (const uint8_t *)"do", 2), OS_OK);
    assert_int_equal(os_rlp_list_end(&b, m), OS_ERR_TOOBIG); /* header does not fit */
    os_buf_free(&b);
    os_buf_free(NULL);
}

/* Re-encodes a decoded tree; for a strict decoder this must give back the input exactly. */
static void reencode(os_buf *b, const os_rlp_item *it)
{
    if (!it->is_list) {
        assert_int_equal(os_rlp_put_bytes(b, it->data, it->len), OS_OK);
    } else {
        os_rlp_iter iter;
        os_rlp_item child;
        size_t mark;
        os_rlp_list_begin(b, &mark);
        assert_int_equal(os_rlp_iter_init(&iter, it), OS_OK);
        while (os_rlp_iter_next(&iter, &child) == OS_OK)
            reencode(b, &child);
        assert_int_equal(os_rlp_list_end(b, mark), OS_OK);
    }
}

/* Mutated encodings: the decoder never reads out of bounds (the sanitizer build checks), and
 * whatever it accepts is canonical, i.e. re-encodes to the same bytes. */
static void test_mutations_roundtrip(void **state)
{
    static const char *const seeds[] = {
        "c7c0c1c0c3c0c1c0",
        "c88363617483646f67",
        "f83ab8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e73656374657475722061"
        "64"
        "6970697369636967656c6974",
        "02f87482210507843b9aca0084b2d05e008252089470997970c51812dc3a010c7d01b50e0d17dc79c8880de0b6"
        "b3a764000080c080a0f43c1d09952c42b6e539fd7839dbab9cf86964e6cab88014c2597daf31dea867a07154fe"
        "c019213232976509991e65f78c88145eee22b39e8aaf418ac22c3d403d",
    };
    uint8_t base[256], in[256];
    uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64, fixed seed: reproducible */
    size_t n, accepted = 0;
    os_buf b;
    (void)state;
    os_buf_init(&b, 4096);
    for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
        assert_int_equal(os_hex_decode(base, sizeof(base), &n, seeds[k], strlen(seeds[k])), OS_OK);
        for (int round = 0; round < 5000; round++) {
            size_t len = n;
            os_rlp_item top;
            memcpy(in, base, n);
            for (int m = 0; m < 1 + round % 3; m++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                switch (x % 4) {
                case 0:
                    in[(x >> 8) % len] ^= (uint8_t)(1u << ((x >> 40) % 8));
                    break;
                case 1:
                    in[(x >> 8) % len] = (uint8_t)(x >> 32);
                    break;
                case 2:
                    len = len > 1 + (x >> 8) % 8 ? len - 1 - (x >> 8) % 8 : 1;
                    break;
                default:
                    in[(x >> 8) % len] = (uint8_t)(0x80 + (x >> 32) % 0x80); /* headers */
                    break;
                }
            }
            if (os_rlp_decode(&top, in, len, OS_RLP_MAX_DEPTH) != OS_OK)
                continue;
            accepted++;
            os_buf_reset(&b);
            reencode(&b, &top);
            assert_int_equal(b.len, len);
            assert_memory_equal(b.data, in, len);
        }
    }
    assert_true(accepted > 100); /* the property was exercised, not vacuous */
    os_buf_free(&b);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_long_string_two_byte_length),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_uint256),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_decode_roundtrip),
        cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_integer_rejects),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_mutations_roundtrip),
    };
    /* clang-format on */
    return cmocka_run_group_tests_name("rlp", tests, tu_init, NULL);
}
