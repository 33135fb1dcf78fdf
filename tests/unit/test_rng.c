/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Known answers for os_rng (include/openseed/rng.h). Sources:
 * - splitmix64 from seed 1234567: 6457827717110365317, 3203168211198807973, 9817491932198370423,
 *   4593380528125082431, 16408922859458223821 (Rosetta Code, "Pseudo-random numbers/Splitmix64");
 *   from seed 0: 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f, 0xf88bb8a8724c81ec
 *   (Vigna's splitmix64.c run from 0, as published in several ports' tests).
 * - xoshiro256** from the state {1, 2, 3, 4}: the ten outputs of rand_xoshiro's `reference` test
 *   (rust-random/rngs, "produced with the reference implementation").
 * - Seeded sequences and bounded draws for seed 42: computed with an independent Python
 *   transcription of the reference C (which reproduces both published vectors above); its bounded
 *   draw is plain rejection (accept x when x*n mod 2^64 >= 2^64 mod n, answer x*n >> 64), the
 *   same distribution as Lemire's early-out form that rng.c uses.
 * The statistical checks use fixed seeds, so they are deterministic: they catch a broken
 * transcription or a biased bound, not bad luck.
 */
#include "testutil.h"

#include <math.h>

#include "openseed/rng.h"

static void test_splitmix_seeding(void **state)
{
    static const uint64_t rosetta[5] = {6457827717110365317ull, 3203168211198807973ull,
                                        9817491932198370423ull, 4593380528125082431ull,
                                        16408922859458223821ull};
    static const uint64_t from0[4] = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull,
                                      0x06c45d188009454full, 0xf88bb8a8724c81ecull};
    os_rng r;
    (void)state;

    /* the state is the first four splitmix64 outputs of the seed */
    os_rng_seed(&r, 1234567);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r.s[i], rosetta[i]);
    os_rng_seed(&r, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r.s[i], from0[i]);
    /* mix(seed, i) is the (i+1)-th splitmix64 output: a stateless view of the same stream */
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(os_rng_mix(1234567, i), rosetta[i]);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(os_rng_mix(0, i), from0[i]);
}

static void test_xoshiro_reference(void **state)
{
    static const uint64_t want[10] = {11520ull,
                                      0ull,
                                      1509978240ull,
                                      1215971899390074240ull,
                                      1216172134540287360ull,
                                      607988272756665600ull,
                                      16172922978634559625ull,
                                      8476171486693032832ull,
                                      10595114339597558777ull,
                                      2904607092377533576ull};
    os_rng r = {{1, 2, 3, 4}};
    (void)state;

    for (int i = 0; i < 10; i++)
        assert_int_equal(os_rng_next(&r), want[i]);
}

static void test_seeded_stream(void **state)
{
    static const uint64_t want42[6] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
                                       0xae17533239e499a1ull, 0xecb8ad4703b360a1ull,
                                       0xfde6dc7fe2ec5e64ull, 0xc50da53101795238ull};
    static const uint64_t want0[3] = {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull,
                                      0x1a5f849d4933e6e0ull};
    os_rng r, again;
    (void)state;

    os_rng_seed(&r, 42);
    for (int i = 0; i < 6; i++)
        assert_int_equal(os_rng_next(&r), want42[i]);
    os_rng_seed(&r, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(os_rng_next(&r), want0[i]);
    /* unit() is the top 53 bits of the next output */
    os_rng_seed(&r, 42);
    assert_true(os_rng_unit(&r) == (double)(want42[0] >> 11) * 0x1.0p-53);
    assert_true(fabs(os_rng_unit(&r) - 0.3789802506626686) < 1e-15);
    /* the same seed replays, a neighbouring seed does not */
    os_rng_seed(&r, 7);
    os_rng_seed(&again, 7);
    for (int i = 0; i < 100; i++)
        assert_int_equal(os_rng_next(&r), os_rng_next(&again));
    os_rng_seed(&again, 8);
    assert_true(os_rng_next(&r) != os_rng_next(&again));
}

static void test_below_known(void **state)
{
    static const uint64_t six[8] = {0, 2, 4, 5, 5, 4, 4, 5};
    /* n = 3 * 2^62: 2^64 mod n = 2^62, so a quarter of the outputs are rejected; the 5th output
     * of seed 42 is one of them, so the 5th draw below uses the 6th output */
    static const uint64_t big[8] = {1160249073301919056ull,  5243213769723407326ull,
                                    9408440071686419256ull,  12793180581886593144ull,
                                    9950984181700650565ull,  11759916168988360805ull,
                                    10533658763019258718ull, 8070671566725696813ull};
    os_rng r;
    (void)state;

    os_rng_seed(&r, 42);
    for (int i = 0; i < 8; i++)
        assert_int_equal(os_rng_below(&r, 6), six[i]);
    os_rng_seed(&r, 42);
    for (int i = 0; i < 8; i++)
        assert_int_equal(os_rng_below(&r, 3ull << 62), big[i]);
}

static void test_below_bounds(void **state)
{
    os_rng r, copy;
    (void)state;

    os_rng_seed(&r, 99);
    assert_int_equal(os_rng_below(&r, 0), 0); /* total: no division by zero */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(os_rng_below(&r, 1), 0);
    for (int i = 0; i < 1000; i++)
        assert_true(os_rng_below(&r, 2) < 2);
    for (int i = 0; i < 1000; i++)
        assert_true(os_rng_below(&r, UINT64_MAX) < UINT64_MAX);
    for (int i = 0; i < 1000; i++)
        assert_true(os_rng_below(&r, (1ull << 63) + 1) <= (1ull << 63));
    /* a power of two is never rejected: the draw is the output's top bits, one output each */
    for (int k = 1; k < 64; k++) {
        copy = r;
        assert_int_equal(os_rng_below(&r, 1ull << k), os_rng_next(&copy) >> (64 - k));
        assert_memory_equal(r.s, copy.s, sizeof(r.s));
    }
    /* unit() stays in [0, 1) */
    for (int i = 0; i < 100000; i++) {
        double u = os_rng_unit(&r);
        assert_true(u >= 0.0 && u < 1.0);
    }
}

/* Pearson's chi-square of counts against a uniform expectation. */
static double chi2(const uint64_t *count, size_t k, uint64_t total)
{
    double e = (double)total / (double)k, x = 0.0;
    for (size_t i = 0; i < k; i++)
        x += ((double)count[i] - e) * ((double)count[i] - e) / e;
    return x;
}

static void test_uniformity(void **state)
{
    enum { N = 200000 };
    uint64_t c10[10] = {0}, c16[16] = {0}, c3[3] = {0};
    os_rng r;
    double sum = 0.0;
    (void)state;

    os_rng_seed(&r, 20240601);
    for (int i = 0; i < N; i++)
        c10[os_rng_below(&r, 10)]++;
    /* 9 degrees of freedom: 21.67 is the 1% critical value */
    assert_true(chi2(c10, 10, N) < 21.67);
    for (int i = 0; i < N; i++) {
        double u = os_rng_unit(&r);
        sum += u;
        c16[(size_t)(u * 16.0)]++;
    }
    assert_true(fabs(sum / N - 0.5) < 0.005);
    /* 15 degrees of freedom: 30.58 is the 1% critical value */
    assert_true(chi2(c16, 16, N) < 30.58);
    /* n = 3 * 2^62 in thirds: a modulo draw would put half the mass in the first third */
    for (int i = 0; i < N; i++)
        c3[os_rng_below(&r, 3ull << 62) >> 62]++;
    assert_true(chi2(c3, 3, N) < 9.21); /* 2 degrees of freedom, 1% */
}

static void test_mix_distinct(void **state)
{
    enum { K = 4096 };
    static uint64_t v[K];
    (void)state;

    for (uint64_t i = 0; i < K; i++) {
        v[i] = os_rng_mix(5, i);
        for (uint64_t j = 0; j < i; j++)
            assert_true(v[j] != v[i]);
    }
    /* different seeds give different streams, the same seed the same one */
    assert_true(os_rng_mix(5, 0) != os_rng_mix(6, 0));
    assert_int_equal(os_rng_mix(5, 17), v[17]);
    /* mix(seed, i) = mix(seed + gamma, i - 1): the index is a position in one stream */
    assert_int_equal(os_rng_mix(5 + 0x9e3779b97f4a7c15ull, 16), v[17]);
    /* a share of 30% by mix() % 10^6 < 300000, as the echo server draws its failures */
    unsigned hits = 0;
    for (uint64_t i = 0; i < K; i++)
        hits += os_rng_mix(5, i) % 1000000 < 300000;
    assert_true(hits > K * 27 / 100 && hits < K * 33 / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splitmix_seeding), cmocka_unit_test(test_xoshiro_reference),
        cmocka_unit_test(test_seeded_stream),    cmocka_unit_test(test_below_known),
        cmocka_unit_test(test_below_bounds),     cmocka_unit_test(test_uniformity),
        cmocka_unit_test(test_mix_distinct),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
