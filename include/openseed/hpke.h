/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HPKE (RFC 9180), base mode only, for the one suite OpenSeed uses: DHKEM(X25519, HKDF-SHA256)
 * 0x0020, HKDF-SHA256 0x0001, AES-128-GCM 0x0001. X25519 comes from libsodium, AES-128-GCM from
 * OpenSSL 3 EVP, HKDF from hkdf.h. It carries the encrypted request envelope (ohttp.h).
 *
 * Memory and cost: contexts are plain structs the caller places anywhere (stack, request struct).
 * Setup allocates one OpenSSL cipher context, keyed once; after that Seal, Open and Export allocate
 * nothing. Private keys are always caller-owned inputs; the library copies none of them. A context
 * holds its AEAD key, base nonce and exporter secret until os_hpke_ctx_clear() wipes them, so clear
 * every context that setup succeeded on (clear is also safe on a zeroed or failed context). Do not
 * copy a live context: the copy would share the cipher context.
 *
 * The expensive step is X25519 (NOTES.md: ~64 µs keygen, ~94 µs DH). A sender can move keygen off
 * the hot path by drawing ephemeral keys from os_hpke_keypair() ahead of time and handing them to
 * os_hpke_setup_base_s_with(); the receiver takes its own public key as an input so decapsulation
 * is one DH and no base-point multiplication. Measured here once (one core, -O2, quiet moment; a
 * guide, not a promise): keypair 34 µs; setup_base_s_with 50 µs, setup_base_s 88 µs, setup_base_r
 * 48 µs (each one DH plus ~10 µs of key schedule and cipher setup); Seal or Open of 4 KiB 1.3 µs;
 * Export 1.1 µs.
 */
#ifndef OPENSEED_HPKE_H
#define OPENSEED_HPKE_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

/* Suite identifiers (RFC 9180 §7). */
#define OS_HPKE_KEM_ID 0x0020  /* DHKEM(X25519, HKDF-SHA256) */
#define OS_HPKE_KDF_ID 0x0001  /* HKDF-SHA256 */
#define OS_HPKE_AEAD_ID 0x0001 /* AES-128-GCM */

/* Sizes for the suite, in bytes (RFC 9180 §7.1, §7.2, §7.3). */
#define OS_HPKE_NSK 32     /* private key */
#define OS_HPKE_NPK 32     /* public key */
#define OS_HPKE_NENC 32    /* encapsulated key (enc) */
#define OS_HPKE_NSECRET 32 /* KEM shared secret */
#define OS_HPKE_NH 32      /* KDF output */
#define OS_HPKE_NK 16      /* AEAD key */
#define OS_HPKE_NN 12      /* AEAD nonce */
#define OS_HPKE_NT 16      /* AEAD tag: a ciphertext is the plaintext length plus this */

/* Caps on inputs this module accepts (RFC 9180 §7.2.1 asks for at least 64 bytes of each). */
#define OS_HPKE_MAX_INFO 65535     /* info, exporter_context and aad */
#define OS_HPKE_MAX_MSG (1u << 30) /* one plaintext; OpenSSL takes int lengths */
#define OS_HPKE_MAX_EXPORT (255 * OS_HPKE_NH)

struct evp_cipher_ctx_st; /* OpenSSL's EVP_CIPHER_CTX, kept out of this header */

/*
 * AES-128-GCM keyed once for many messages, each with its own nonce. HPKE contexts use it, and so
 * does ohttp.c for response keys derived outside HPKE. Either seals or opens, fixed at init.
 */
typedef struct os_hpke_aead {
    struct evp_cipher_ctx_st *evp;
    int encrypt;
} os_hpke_aead;

/* Sender (S) or receiver (R) context. Fields are public for tests; callers use the functions. */
typedef struct os_hpke_ctx {
    uint8_t key[OS_HPKE_NK];
    uint8_t base_nonce[OS_HPKE_NN];
    uint8_t exporter_secret[OS_HPKE_NH];
    uint64_t seq; /* sequence number of the next Seal/Open */
    os_hpke_aead aead;
    int is_sender;
} os_hpke_ctx;

/* Writes a fresh random X25519 key pair. The caller owns sk: keep it safe, wipe it after. */
OS_WUR os_err os_hpke_keypair(uint8_t sk[OS_HPKE_NSK], uint8_t pk[OS_HPKE_NPK]);

/*
 * DeriveKeyPair(ikm) (RFC 9180 §7.1.3): a deterministic key pair from at least Nsk bytes of input
 * keying material. OS_ERR_INVALID when ikm_len < OS_HPKE_NSK; OS_ERR_TOOBIG above OS_HPKE_MAX_INFO.
 */
OS_WUR os_err os_hpke_derive_keypair(uint8_t sk[OS_HPKE_NSK], uint8_t pk[OS_HPKE_NPK],
                                     const uint8_t *ikm, size_t ikm_len);

/* The X25519 public key of sk (one base-point multiplication), e.g. for a key loaded from disk. */
OS_WUR os_err os_hpke_public_key(uint8_t pk[OS_HPKE_NPK], const uint8_t sk[OS_HPKE_NSK]);

/*
 * KEM Encap with a given ephemeral key pair: shared_secret and enc (= pkE). pkE must be the public
 * key of skE (not re-checked: that would cost the base-point multiplication this saves).
 * OS_ERR_CRYPTO when the DH result is all zero (pkR of small order).
 */
OS_WUR os_err os_hpke_encap(uint8_t shared_secret[OS_HPKE_NSECRET], uint8_t enc[OS_HPKE_NENC],
                            const uint8_t pkR[OS_HPKE_NPK], const uint8_t skE[OS_HPKE_NSK],
                            const uint8_t pkE[OS_HPKE_NPK]);

/* KEM Decap: shared_secret from enc and the recipient's skR and pkR. OS_ERR_CRYPTO as above. */
OS_WUR os_err os_hpke_decap(uint8_t shared_secret[OS_HPKE_NSECRET], const uint8_t enc[OS_HPKE_NENC],
                            const uint8_t skR[OS_HPKE_NSK], const uint8_t pkR[OS_HPKE_NPK]);

/*
 * SetupBaseS with a caller-supplied ephemeral key pair (skE, pkE): initialises ctx as a sender and
 * writes enc. Any previous content of ctx is overwritten without being freed: clear it first. On
 * failure ctx is left cleared.
 */
OS_WUR os_err os_hpke_setup_base_s_with(os_hpke_ctx *ctx, uint8_t enc[OS_HPKE_NENC],
                                        const uint8_t pkR[OS_HPKE_NPK], const uint8_t *info,
                                        size_t info_len, const uint8_t skE[OS_HPKE_NSK],
                                        const uint8_t pkE[OS_HPKE_NPK]);

/* SetupBaseS with a fresh random ephemeral key pair, wiped before return. */
OS_WUR os_err os_hpke_setup_base_s(os_hpke_ctx *ctx, uint8_t enc[OS_HPKE_NENC],
                                   const uint8_t pkR[OS_HPKE_NPK], const uint8_t *info,
                                   size_t info_len);

/* SetupBaseR: initialises ctx as a receiver from enc, the recipient's key pair and info. */
OS_WUR os_err os_hpke_setup_base_r(os_hpke_ctx *ctx, const uint8_t enc[OS_HPKE_NENC],
                                   const uint8_t skR[OS_HPKE_NSK], const uint8_t pkR[OS_HPKE_NPK],
                                   const uint8_t *info, size_t info_len);

/*
 * ContextS.Seal: encrypts pt with nonce base_nonce XOR seq and the given aad, writes
 * pt_len + OS_HPKE_NT bytes to ct and advances seq. ct may equal pt (in place) but must not
 * otherwise overlap it. OS_ERR_TOOBIG when ct_cap is short or an input exceeds its cap;
 * OS_ERR_RANGE when the sequence number is exhausted; OS_ERR_INVALID on a receiver context.
 */
OS_WUR os_err os_hpke_seal(os_hpke_ctx *ctx, uint8_t *ct, size_t ct_cap, size_t *ct_len,
                           const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len);

/*
 * ContextR.Open: the inverse of Seal; ct_len - OS_HPKE_NT bytes of plaintext. OS_ERR_CRYPTO when
 * authentication fails; then whatever was written to pt is wiped and seq does not move, so a forged
 * message cannot desynchronise the stream. pt may equal ct.
 */
OS_WUR os_err os_hpke_open(os_hpke_ctx *ctx, uint8_t *pt, size_t pt_cap, size_t *pt_len,
                           const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len);

/* Context.Export (secret export, RFC 9180 §5.3) of out_len <= OS_HPKE_MAX_EXPORT bytes. */
OS_WUR os_err os_hpke_export(const os_hpke_ctx *ctx, uint8_t *out, size_t out_len,
                             const uint8_t *exporter_context, size_t exporter_context_len);

/* Wipes the keys in ctx and frees its cipher context. NULL-safe; ctx may be reused by a setup. */
void os_hpke_ctx_clear(os_hpke_ctx *ctx);

/* Keys a for AES-128-GCM sealing (encrypt != 0) or opening. On failure a is left cleared. */
OS_WUR os_err os_hpke_aead_init(os_hpke_aead *a, const uint8_t key[OS_HPKE_NK], int encrypt);

/* One AES-128-GCM seal with an explicit nonce; same buffer rules and errors as os_hpke_seal. */
OS_WUR os_err os_hpke_aead_seal(os_hpke_aead *a, uint8_t *ct, size_t ct_cap, size_t *ct_len,
                                const uint8_t nonce[OS_HPKE_NN], const uint8_t *aad, size_t aad_len,
                                const uint8_t *pt, size_t pt_len);

/* One AES-128-GCM open; OS_ERR_CRYPTO (and pt wiped) when the tag does not verify. */
OS_WUR os_err os_hpke_aead_open(os_hpke_aead *a, uint8_t *pt, size_t pt_cap, size_t *pt_len,
                                const uint8_t nonce[OS_HPKE_NN], const uint8_t *aad, size_t aad_len,
                                const uint8_t *ct, size_t ct_len);

/* Frees the cipher context (OpenSSL cleanses its key schedule). NULL-safe. */
void os_hpke_aead_clear(os_hpke_aead *a);

#endif
