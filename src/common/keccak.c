/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keccak-f[1600] and the Keccak-256 sponge (rate 1088 bits, capacity 512, pad10*1 with domain byte
 * 0x01). Lanes are little-endian 64-bit words; this file assumes nothing about host byte order.
 */
#include "openseed/keccak.h"

#include <sodium.h>
#include <string.h>

static const uint64_t round_constants[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotation offsets and the pi lane permutation, in the order of the rho-pi walk. */
static const unsigned rho[24] = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                 27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
static const unsigned pi[24] = {10, 7,  11, 17, 18, 3, 5,  16, 8,  21, 24, 4,
                                15, 23, 19, 13, 12, 2, 20, 14, 22, 9,  6,  1};

static inline uint64_t rotl64(uint64_t x, unsigned n)
{
    return (x << n) | (x >> (64 - n));
}

static void keccak_f1600(uint64_t s[25])
{
    uint64_t c[5], t;

    for (int round = 0; round < 24; round++) {
        /* theta */
        for (int x = 0; x < 5; x++)
            c[x] = s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20];
        for (int x = 0; x < 5; x++) {
            t = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);
            for (int y = 0; y < 25; y += 5)
                s[y + x] ^= t;
        }
        /* rho and pi */
        t = s[1];
        for (int i = 0; i < 24; i++) {
            uint64_t next = s[pi[i]];
            s[pi[i]] = rotl64(t, rho[i]);
            t = next;
        }
        /* chi */
        for (int y = 0; y < 25; y += 5) {
            for (int x = 0; x < 5; x++)
                c[x] = s[y + x];
            for (int x = 0; x < 5; x++)
                s[y + x] = c[x] ^ (~c[(x + 1) % 5] & c[(x + 2) % 5]);
        }
        /* iota */
        s[0] ^= round_constants[round];
    }
}

/* XOR one byte into the state at byte offset pos (little-endian lanes). */
static inline void xor_byte(uint64_t s[25], size_t pos, uint8_t b)
{
    s[pos / 8] ^= (uint64_t)b << (8 * (pos % 8));
}

void os_keccak256_init(os_keccak_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
}

void os_keccak256_update(os_keccak_ctx *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;

    /* Whole lanes at a time when aligned to a lane boundary: the common case for long inputs. */
    while (len > 0) {
        if (ctx->pos % 8 == 0 && len >= 8) {
            uint64_t lane = 0;
            for (int i = 7; i >= 0; i--)
                lane = (lane << 8) | p[i];
            ctx->state[ctx->pos / 8] ^= lane;
            ctx->pos += 8;
            p += 8;
            len -= 8;
        } else {
            xor_byte(ctx->state, ctx->pos++, *p++);
            len--;
        }
        if (ctx->pos == OS_KECCAK256_RATE) {
            keccak_f1600(ctx->state);
            ctx->pos = 0;
        }
    }
}

void os_keccak256_final(os_keccak_ctx *ctx, uint8_t out[OS_KECCAK256_LEN])
{
    xor_byte(ctx->state, ctx->pos, 0x01);
    xor_byte(ctx->state, OS_KECCAK256_RATE - 1, 0x80);
    keccak_f1600(ctx->state);
    for (size_t i = 0; i < OS_KECCAK256_LEN; i++)
        out[i] = (uint8_t)(ctx->state[i / 8] >> (8 * (i % 8)));
    /* Callers hash secrets (nullifier inputs), so the state is wiped, not just dropped. */
    sodium_memzero(ctx, sizeof(*ctx));
}

void os_keccak256(uint8_t out[OS_KECCAK256_LEN], const void *data, size_t len)
{
    os_keccak_ctx ctx;
    os_keccak256_init(&ctx);
    os_keccak256_update(&ctx, data, len);
    os_keccak256_final(&ctx, out);
}
