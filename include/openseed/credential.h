/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's identity credential (PROTOCOL §2, §6): a Pedersen commitment C = x*G + r*H in
 * ristretto255 to the buyer's identity secret (x, r), a per-voucher nullifier, and a
 * non-interactive Okamoto-Schnorr proof of knowledge of (x, r) bound to one request, carried in the
 * `OpenSeed-Credential` header. The buyer keeps (x, r) in locked memory and precomputes proof
 * nonces off the hot path; the seller decodes the header, checks C against the channel's on-chain
 * commitment and the nullifier against its cache, and only then verifies the proof.
 *
 * Encodings, all fixed length (scalars are 32-byte little-endian, points 32-byte ristretto255):
 *   H          = ristretto255_from_hash(SHA-512("OpenSeed-v1 pedersen H"))
 *              = 5c52bb425a210e1bbbf3ea26dd28b5653ea492ae8a5c424859b08359c2bc0e0c
 *   C          = x*G + r*H; on chain it is the bytes32 holding these 32 bytes
 *   item(b)    = u32be(len(b)) || b
 *   nullifier  = SHA-512(item("OpenSeed-v1 nullifier") || item(x) || item(channelId)
 *                        || item(u64be(voucher nonce)))[0..32)
 *   A          = k1*G + k2*H for fresh random non-zero scalars k1, k2
 *   c          = scalar_reduce(SHA-512(item("OpenSeed-v1 credential") || item(C) || item(nullifier)
 *                                      || item(A) || item(channelId) || item(metadataHash)))
 *   s1 = k1 + c*x, s2 = k2 + c*r (mod L)
 *   proof      = A || s1 || s2                                   (96 bytes)
 *   header     = base64(C || nullifier || A || s1 || s2)         (160 bytes, 216 characters)
 * Verification rejects non-canonical or identity C and A, s1 or s2 not below L, and accepts only
 * when s1*G + s2*H == A + c*C. The nullifier is bound by the transcript, not proven to derive from
 * x: it stops replay of a header, which the seller enforces with its cache.
 */
#ifndef OPENSEED_CREDENTIAL_H
#define OPENSEED_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

#define OS_CRED_HEADER_NAME "OpenSeed-Credential"
#define OS_CRED_SCALAR_LEN 32
#define OS_CRED_POINT_LEN 32
#define OS_CRED_COMMITMENT_LEN 32
#define OS_CRED_NULLIFIER_LEN 32
#define OS_CRED_CHANNEL_ID_LEN 32
#define OS_CRED_METADATA_HASH_LEN 32
#define OS_CRED_SECRET_LEN 64  /* exported secret: x || r */
#define OS_CRED_PROOF_LEN 96   /* A || s1 || s2 */
#define OS_CRED_WIRE_LEN 160   /* C || nullifier || proof */
#define OS_CRED_HEADER_LEN 216 /* base64 characters of the wire bytes, without the NUL */

/* The identity secret (x, r) and its cached commitment C, in sodium_malloc'd read-only memory. */
typedef struct os_cred_secret os_cred_secret;

/*
 * A one-time proof nonce: k1, k2 and A = k1*G + k2*H, made ahead of time by os_cred_precompute so a
 * proof costs only a hash and scalar arithmetic. Caller-owned (a pool may live in sodium_malloc'd
 * memory); os_cred_prove_with consumes and wipes it. Using one nonce for two proofs reveals the
 * secret, which is why consumption clears `ready` and the prover refuses a nonce that is not ready.
 */
typedef struct os_cred_nonce {
    uint8_t k1[OS_CRED_SCALAR_LEN];
    uint8_t k2[OS_CRED_SCALAR_LEN];
    uint8_t a[OS_CRED_POINT_LEN];
    int ready;
} os_cred_nonce;

/*
 * Creates a fresh identity secret with random non-zero x and r from the system CSPRNG and computes
 * its commitment. *out is owned by the caller and released with os_cred_secret_free.
 */
OS_WUR os_err os_cred_keygen(os_cred_secret **out);

/*
 * Loads a secret exported by os_cred_secret_export (x || r). OS_ERR_INVALID when x or r is zero or
 * not below the group order. The caller keeps and wipes `in`; *out is released with
 * os_cred_secret_free.
 */
OS_WUR os_err os_cred_secret_import(os_cred_secret **out, const uint8_t in[OS_CRED_SECRET_LEN]);

/* Writes x || r for storage in a 0600 file or keystore; the caller wipes out when done. */
void os_cred_secret_export(uint8_t out[OS_CRED_SECRET_LEN], const os_cred_secret *s);

/* Wipes and frees a secret. NULL-safe. */
void os_cred_secret_free(os_cred_secret *s);

/* Writes the commitment C = x*G + r*H (the channel's on-chain bytes32). Cached: no group work. */
void os_cred_commit(uint8_t commitment[OS_CRED_COMMITMENT_LEN], const os_cred_secret *s);

/* Writes the nullifier for one voucher (see the layout above). Deterministic in its inputs. */
OS_WUR os_err os_cred_nullifier(uint8_t out[OS_CRED_NULLIFIER_LEN], const os_cred_secret *s,
                                const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                                uint64_t voucher_nonce);

/* Fills n with a fresh one-time nonce (two scalar multiplications, ~170 µs). */
OS_WUR os_err os_cred_precompute(os_cred_nonce *n);

/* Wipes a nonce without using it. NULL-safe. */
void os_cred_nonce_wipe(os_cred_nonce *n);

/*
 * A pool of nonces made ahead of time by a background thread, so a prover's hot path costs a hash
 * and scalar arithmetic instead of two scalar multiplications (~90 µs on the bench machine). The
 * nonces live in sodium_malloc'd memory; each is handed out once and wiped from the pool. Thread
 * safe. The thread sleeps while the pool is full and refills it once it falls to half.
 */
typedef struct os_cred_pool os_cred_pool;

/* Starts a pool of cap nonces (1..4096), filling in the background. Free with os_cred_pool_free. */
OS_WUR os_err os_cred_pool_new(os_cred_pool **out, size_t cap);
/* Moves a ready nonce into *n and returns true; false (n untouched) when the pool is empty, in
 * which case the caller makes one on the spot (os_cred_header_make with a NULL nonce). */
bool os_cred_pool_take(os_cred_pool *p, os_cred_nonce *n);
/* Nonces ready now (for tests and metrics). */
size_t os_cred_pool_ready(os_cred_pool *p);
/* Stops the thread, wipes and frees. NULL-safe. */
void os_cred_pool_free(os_cred_pool *p);

/*
 * Writes proof = A || s1 || s2 for s's commitment over (nullifier, channel_id, metadata_hash),
 * consuming n: it is wiped on every return. OS_ERR_INVALID when n is not ready or does not hold a
 * valid nonce. No group work: one SHA-512 and scalar arithmetic.
 */
OS_WUR os_err os_cred_prove_with(uint8_t proof[OS_CRED_PROOF_LEN], os_cred_nonce *n,
                                 const os_cred_secret *s,
                                 const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                                 const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                                 const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN]);

/* As os_cred_prove_with with a nonce made on the spot. */
OS_WUR os_err os_cred_prove(uint8_t proof[OS_CRED_PROOF_LEN], const os_cred_secret *s,
                            const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                            const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                            const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN]);

/*
 * Verifies proof for commitment over (nullifier, channel_id, metadata_hash): one fixed-base and two
 * variable-base scalar multiplications, after the cheap encoding checks. OS_OK when it holds;
 * OS_ERR_INVALID for a malformed C, A, s1 or s2 (bad encoding, identity, scalar not below L);
 * OS_ERR_CRYPTO when well-formed but the equation fails.
 */
OS_WUR os_err os_cred_verify(const uint8_t commitment[OS_CRED_COMMITMENT_LEN],
                             const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                             const uint8_t proof[OS_CRED_PROOF_LEN],
                             const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                             const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN]);

/*
 * Writes the header value base64(C || nullifier || proof), NUL-terminated. OS_ERR_TOOBIG when
 * out_cap < OS_CRED_HEADER_LEN + 1.
 */
OS_WUR os_err os_cred_header_encode(char *out, size_t out_cap,
                                    const uint8_t commitment[OS_CRED_COMMITMENT_LEN],
                                    const uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                                    const uint8_t proof[OS_CRED_PROOF_LEN]);

/*
 * Splits a header value of exactly OS_CRED_HEADER_LEN strict base64 characters (no whitespace; trim
 * the HTTP field first). OS_ERR_INVALID for any other length or bad base64. Checks only the shape:
 * compare C with the channel's commitment and look up the nullifier, then call os_cred_verify.
 */
OS_WUR os_err os_cred_header_decode(uint8_t commitment[OS_CRED_COMMITMENT_LEN],
                                    uint8_t nullifier[OS_CRED_NULLIFIER_LEN],
                                    uint8_t proof[OS_CRED_PROOF_LEN], const char *in,
                                    size_t in_len);

/*
 * The buyer's whole step: nullifier for (channel_id, voucher_nonce), proof bound to metadata_hash,
 * header text into out (NUL-terminated, out_cap >= OS_CRED_HEADER_LEN + 1). Consumes n when it is
 * non-NULL; with n NULL a nonce is made on the spot.
 */
OS_WUR os_err os_cred_header_make(char *out, size_t out_cap, os_cred_nonce *n,
                                  const os_cred_secret *s,
                                  const uint8_t channel_id[OS_CRED_CHANNEL_ID_LEN],
                                  uint64_t voucher_nonce,
                                  const uint8_t metadata_hash[OS_CRED_METADATA_HASH_LEN]);

/*
 * OS_OK when p is a canonical ristretto255 encoding of a point other than the identity (check an
 * on-chain commitment with this before caching it); OS_ERR_INVALID otherwise.
 */
OS_WUR os_err os_cred_point_check(const uint8_t p[OS_CRED_POINT_LEN]);

/*
 * 1 when the little-endian scalar s is below the group order
 * L = 2^252 + 27742317777372353535851937790883648493 (zero included), else 0. Constant time.
 */
int os_cred_scalar_is_canonical(const uint8_t s[OS_CRED_SCALAR_LEN]);

/* Writes the second generator H (the constant above). */
void os_cred_generator_h(uint8_t h[OS_CRED_POINT_LEN]);

#endif
