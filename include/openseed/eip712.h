/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIP-712 typed structured data hashing, in two forms. A general engine over jansson takes the
 * eth_signTypedData_v4 document ({types, primaryType, domain, message}) for wallets, tools and
 * tests; fixed-struct helpers hash the protocol's own messages (SellerRecord, Heartbeat,
 * SpendingAuth and their domains) without JSON on the hot path, with type hashes computed once.
 * Also the EIP-191 personal_sign hash and the EIP-2098 compact signature form.
 *
 * Every function writes into caller-owned buffers and keeps no reference to its inputs.
 */
#ifndef OPENSEED_EIP712_H
#define OPENSEED_EIP712_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"

/* Limits of the JSON engine, so hostile documents cost bounded stack and time. */
#define OS_EIP712_MAX_DEPTH 32    /* nesting of structs and arrays, the primary struct being 1 */
#define OS_EIP712_MAX_TYPES 256   /* struct types in one document */
#define OS_EIP712_MAX_FIELDS 256  /* fields in one struct type */
#define OS_EIP712_MAX_NAME 256    /* bytes in a type name, field name or field type string */
#define OS_EIP712_MAX_ARRAY 65536 /* the n of a fixed-size array type T[n] */

/*
 * An EIP712Domain. The present fields are encoded in the standard order name, version, chainId,
 * verifyingContract, salt; name/version NULL and has_* zero mean absent.
 */
typedef struct os_eip712_domain {
    const char *name;
    const char *version;
    uint64_t chain_id;
    int has_chain_id;
    uint8_t verifying_contract[20];
    int has_verifying_contract;
    uint8_t salt[32];
    int has_salt;
} os_eip712_domain;

/* hashStruct(EIP712Domain) of d, typed by exactly the fields d has. */
void os_eip712_domain_separator(uint8_t out[32], const os_eip712_domain *d);

/* keccak256(0x19 0x01 || domain_separator || struct_hash): the digest a wallet signs. */
void os_eip712_digest(uint8_t out[32], const uint8_t domain_separator[32],
                      const uint8_t struct_hash[32]);

/*
 * hashStruct(primary_type, data) under the struct definitions in types (an object mapping each
 * type name to an array of {"name","type"} objects, as in eth_signTypedData_v4). Every type in
 * types is validated, used or not. Values: string (JSON string), bytes and bytesN (0x hex;
 * bytesN exactly N bytes), address (0x + 40 hex, EIP-55 checked when mixed case), bool (JSON
 * boolean), uintN/intN (JSON integer, or a string "123", "-123", "0xff", "-0xff"), structs (JSON
 * objects; every field required, extra members ignored), T[] and T[n] (JSON arrays).
 * OS_ERR_INVALID for unknown types, missing fields and malformed values, OS_ERR_RANGE for an
 * integer outside its type's range, OS_ERR_TOOBIG past the OS_EIP712_MAX_* limits,
 * OS_ERR_NOMEM when allocation fails.
 */
OS_WUR os_err os_eip712_hash_struct(uint8_t out[32], const json_t *types, const char *primary_type,
                                    const json_t *data);

/*
 * The signing digest of an eth_signTypedData_v4 object {types, primaryType, domain, message}.
 * types must define EIP712Domain, which types the domain. primaryType may not be EIP712Domain.
 * Errors as os_eip712_hash_struct.
 */
OS_WUR os_err os_eip712_hash_typed_data(uint8_t digest[32], const json_t *typed_data);

/* Domain of the protocol's off-chain messages: name "OpenSeed", version "1", chainId. */
void os_eip712_openseed_domain(uint8_t out[32], uint64_t chain_id);

/* Domain of channel vouchers: name "OpenSeedChannels", version "1", chainId, the escrow. */
void os_eip712_channels_domain(uint8_t out[32], uint64_t chain_id, const uint8_t escrow[20]);

/*
 * hashStruct(SpendingAuth(bytes32 channelId,uint256 cumulativeAmount,uint64 nonce,
 *                         bytes32 metadataHash)).
 */
void os_eip712_spending_auth_hash(uint8_t out[32], const uint8_t channel_id[32],
                                  uint64_t cumulative_amount, uint64_t nonce,
                                  const uint8_t metadata_hash[32]);

/*
 * hashStruct(SellerRecord(address node,string endpoint,uint64 seq,uint64 timestamp,
 *                         bytes32 bodyHash)). endpoint is NUL-terminated UTF-8.
 */
void os_eip712_seller_record_hash(uint8_t out[32], const uint8_t node[20], const char *endpoint,
                                  uint64_t seq, uint64_t timestamp, const uint8_t body_hash[32]);

/* hashStruct(Heartbeat(address node,string endpoint,uint64 seq,uint64 timestamp)). */
void os_eip712_heartbeat_hash(uint8_t out[32], const uint8_t node[20], const char *endpoint,
                              uint64_t seq, uint64_t timestamp);

/* EIP-191 personal_sign: keccak256("\x19Ethereum Signed Message:\n" || decimal len || msg). */
void os_eip191_hash(uint8_t out[32], const void *msg, size_t len);

/*
 * EIP-2098: r || yParityAndS from a 65-byte r || s || v (v in {27, 28} or {0, 1}). sig must be
 * low-s, as os_secp_sign produces, or the parity bit would collide with s.
 */
void os_eip2098_compact(uint8_t out[64], const uint8_t sig[65]);

/*
 * The 65-byte r || s || v (v = 27 + parity) of a compact signature. OS_ERR_INVALID when r is
 * zero or not below the group order, or s is zero or above half the order.
 */
OS_WUR os_err os_eip2098_expand(uint8_t sig[65], const uint8_t compact[64]);

#endif
