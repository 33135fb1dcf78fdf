/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Known answers for Keccak-256. "" and "abc" are the widely published Ethereum values; the others
 * were computed with ethers 6.17 keccak256 (an independent implementation), e.g.
 *   node -e 'console.log(require("ethers").keccak256(new Uint8Array(136).fill(0x61)))'
 * The 135/136/137-byte inputs sit on the 136-byte rate boundary, where padding bugs live.
 */
#include "testutil.h"

#include "openseed/keccak.h"

static void check(const void *data, size_t len, const char *want)
{
    uint8_t out[32];
    os_keccak256(out, data, len);
    tu_assert_hex(out, sizeof(out), want);
}

static void test_empty_and_abc(void **state)
{
    (void)state;
    check("", 0, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    check("abc", 3, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
}

static void test_rate_boundary(void **state)
{
    static const struct {
        size_t n;
        const char *digest;
    } v[] = {
        {135, "34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446"},
        {136, "a6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e"},
        {137, "d869f639c7046b4929fc92a4d988a8b22c55fbadb802c0c66ebcd484f1915f39"},
        {200, "96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d"},
        {272, "cf7fcd4f705ee749930d19ca84561a9bf62516bd90a471545fa2f49fdc7e63c8"},
    };
    uint8_t buf[272];
    (void)state;
    memset(buf, 'a', sizeof(buf));
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        check(buf, v[i].n, v[i].digest);
}

/* Feeding the same 1000 bytes in every split, including unaligned ones, gives the same digest. */
static void test_incremental_splits(void **state)
{
    static const char want[] = "aca79e4146e30eb1c733f6d6060d72471c36ea4e01ebf45d7f4916249c2bbd82";
    uint8_t buf[1000], out[32];
    (void)state;
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)i;
    check(buf, sizeof(buf), want);
    for (size_t step = 1; step <= 137; step += 17) {
        os_keccak_ctx ctx;
        os_keccak256_init(&ctx);
        /* an odd first piece leaves later pieces misaligned with the lanes */
        os_keccak256_update(&ctx, buf, 3);
        for (size_t off = 3; off < sizeof(buf); off += step) {
            size_t n = sizeof(buf) - off < step ? sizeof(buf) - off : step;
            os_keccak256_update(&ctx, buf + off, n);
        }
        os_keccak256_final(&ctx, out);
        tu_assert_hex(out, sizeof(out), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_abc),
        cmocka_unit_test(test_rate_boundary),
        cmocka_unit_test(test_incremental_splits),
    };
    return cmocka_run_group_tests_name("keccak", tests, tu_init, NULL);
}
