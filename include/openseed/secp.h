/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secp256k1 as Ethereum uses it, over libsecp256k1: key generation, RFC 6979 recoverable ECDSA
 * signatures in the 65-byte r||s||v form (v = 27 or 28), public-key recovery, address derivation
 * (last 20 bytes of keccak256 of the 64-byte uncompressed public key) and EIP-55 checksummed text.
 * Verification and recovery refuse high-s signatures (EIP-2), as the escrow contract does.
 *
 * Private keys are 32-byte big-endian scalars owned by the caller; keep long-lived ones in
 * sodium_malloc'd memory. Nothing here keeps a copy of a private key.
 */
#ifndef OPENSEED_SECP_H
#define OPENSEED_SECP_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

#define OS_SECP_PRIVKEY_LEN 32
#define OS_SECP_PUBKEY_LEN 64 /* uncompressed X||Y, without the 0x04 tag */
#define OS_SECP_SIG_LEN 65    /* r || s || v, v in {27, 28} */
#define OS_ADDRESS_LEN 20
#define OS_ADDRESS_STR_LEN 43 /* "0x" + 40 hex + NUL */

/* Fills priv with a fresh valid private key from the system CSPRNG. */
OS_WUR os_err os_secp_keygen(uint8_t priv[OS_SECP_PRIVKEY_LEN]);

/* OS_OK when priv is a valid private key (non-zero, below the group order). */
OS_WUR os_err os_secp_privkey_check(const uint8_t priv[OS_SECP_PRIVKEY_LEN]);

/* Derives the uncompressed public key X||Y of priv. */
OS_WUR os_err os_secp_pubkey(uint8_t pub[OS_SECP_PUBKEY_LEN],
                             const uint8_t priv[OS_SECP_PRIVKEY_LEN]);

/* The Ethereum address of a public key: keccak256(pub)[12..32). */
void os_secp_pubkey_address(uint8_t addr[OS_ADDRESS_LEN], const uint8_t pub[OS_SECP_PUBKEY_LEN]);

/* The Ethereum address of priv. */
OS_WUR os_err os_secp_address(uint8_t addr[OS_ADDRESS_LEN], const uint8_t priv[OS_SECP_PRIVKEY_LEN]);

/*
 * Signs a 32-byte digest with RFC 6979 deterministic nonces; always low-s.
 * sig receives r || s || v with v = 27 + recovery id.
 */
OS_WUR os_err os_secp_sign(uint8_t sig[OS_SECP_SIG_LEN], const uint8_t priv[OS_SECP_PRIVKEY_LEN],
                           const uint8_t digest[32]);

/*
 * Recovers the public key that produced sig over digest. Accepts v in {27, 28} (and {0, 1});
 * OS_ERR_CRYPTO for high-s, r or s zero or out of range, or no recoverable key.
 */
OS_WUR os_err os_secp_recover_pubkey(uint8_t pub[OS_SECP_PUBKEY_LEN], const uint8_t digest[32],
                                     const uint8_t sig[OS_SECP_SIG_LEN]);

/* As os_secp_recover_pubkey, giving the signer's address. */
OS_WUR os_err os_secp_recover(uint8_t addr[OS_ADDRESS_LEN], const uint8_t digest[32],
                              const uint8_t sig[OS_SECP_SIG_LEN]);

/*
 * OS_OK when sig over digest recovers to expected (compared in constant time), OS_ERR_CRYPTO
 * otherwise, including for high-s signatures.
 */
OS_WUR os_err os_secp_verify(const uint8_t expected[OS_ADDRESS_LEN], const uint8_t digest[32],
                             const uint8_t sig[OS_SECP_SIG_LEN]);

/* Writes the EIP-55 mixed-case checksummed form "0x…" of addr, NUL-terminated. */
void os_eip55_format(char out[OS_ADDRESS_STR_LEN], const uint8_t addr[OS_ADDRESS_LEN]);

/*
 * Parses "0x" + 40 hex digits. All-lower and all-upper digits are accepted unchecked; mixed case
 * must carry a correct EIP-55 checksum. OS_ERR_INVALID otherwise.
 */
OS_WUR os_err os_eip55_parse(uint8_t addr[OS_ADDRESS_LEN], const char *text);

#endif
