/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xoshiro256** and splitmix64, transcribed from the authors' public-domain reference code
 * (https://prng.di.unimi.it/xoshiro256starstar.c, https://prng.di.unimi.it/splitmix64.c), and a
 * bias-free bounded draw (D. Lemire, "Fast Random Integer Generation in an Interval", ACM TOMACS
 * 2019). Deterministic and for simulations only; rng.h says why it must never make a secret.
 */
#include "openseed/rng.h"

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ull

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix_final(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void os_rng_seed(os_rng *r, uint64_t seed)
{
    /* splitmix64 is a bijection of its counter, so four consecutive outputs are never all zero:
     * xoshiro's one forbidden state cannot occur. */
    for (int i = 0; i < 4; i++) {
        seed += GOLDEN_GAMMA;
        r->s[i] = splitmix_final(seed);
    }
}

uint64_t os_rng_next(os_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t os_rng_below(os_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    __uint128_t m = (__uint128_t)os_rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        /* 2^64 mod n: the low words below it belong to the short last interval */
        uint64_t t = (0 - n) % n;
        while (lo < t) {
            m = (__uint128_t)os_rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double os_rng_unit(os_rng *r)
{
    return (double)(os_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t os_rng_mix(uint64_t seed, uint64_t index)
{
    return splitmix_final(seed + (index + 1) * GOLDEN_GAMMA);
}
