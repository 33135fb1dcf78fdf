/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small deterministic pseudo-random generator for simulations, routing draws and injected test
 * failures: the same seed gives the same sequence on every machine, so a run can be replayed.
 * It is xoshiro256** (Blackman and Vigna, https://prng.di.unimi.it/) with its state filled from
 * splitmix64 of the seed, as the authors recommend, plus os_rng_mix, a stateless "n-th draw under a
 * seed" for callers that count events instead of keeping a generator.
 *
 * NOT for keys, nonces, tokens or anything an attacker must not predict: anyone who sees a few
 * outputs can compute the rest. Secrets come from libsodium's randombytes.
 *
 * An os_rng is plain data with no locking: one thread at a time (callers that share one hold their
 * own mutex). Every function is total: no input makes it fail or abort.
 */
#ifndef OPENSEED_RNG_H
#define OPENSEED_RNG_H

#include <stdint.h>

typedef struct os_rng {
    uint64_t s[4]; /* xoshiro256** state; never all zero after os_rng_seed */
} os_rng;

/* Fills r's state with the first four splitmix64 outputs from seed (any seed, 0 included). */
void os_rng_seed(os_rng *r, uint64_t seed);

/* The next 64 bits of xoshiro256**; advances r. */
uint64_t os_rng_next(os_rng *r);

/* A uniform draw in [0, n), without modulo bias (Lemire's multiply-and-reject); n = 0 gives 0.
 * Consumes one output, rarely more. */
uint64_t os_rng_below(os_rng *r, uint64_t n);

/* A uniform double in [0, 1): the top 53 bits of one output times 2^-53. */
double os_rng_unit(os_rng *r);

/* The splitmix64 finaliser of seed + (index + 1) * 0x9e3779b97f4a7c15: the (index+1)-th output of
 * splitmix64 started at seed, so "the index-th event under seed" needs no shared state. */
uint64_t os_rng_mix(uint64_t seed, uint64_t index);

#endif
