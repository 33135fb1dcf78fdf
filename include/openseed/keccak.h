/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keccak-256 as Ethereum uses it: the original Keccak padding (0x01), not FIPS 202 SHA3-256 (0x06).
 * Neither OpenSSL 3.0 nor libsodium 1.0.18 has it, so this is the one primitive we write ourselves.
 */
#ifndef OPENSEED_KECCAK_H
#define OPENSEED_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#define OS_KECCAK256_LEN 32
#define OS_KECCAK256_RATE 136 /* bytes absorbed per permutation */

/* Incremental state; plain data, no resources to free. */
typedef struct os_keccak_ctx {
    uint64_t state[25];
    size_t pos; /* bytes absorbed into the current block */
} os_keccak_ctx;

void os_keccak256_init(os_keccak_ctx *ctx);
void os_keccak256_update(os_keccak_ctx *ctx, const void *data, size_t len);
/* Writes the digest and wipes ctx; init again before reuse. */
void os_keccak256_final(os_keccak_ctx *ctx, uint8_t out[OS_KECCAK256_LEN]);

/* One-shot digest of data[0..len). */
void os_keccak256(uint8_t out[OS_KECCAK256_LEN], const void *data, size_t len);

#endif
