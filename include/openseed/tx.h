/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIP-1559 (type 2) Ethereum transactions, the only kind OpenSeed sends: the signing hash
 * keccak256(0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gasLimit, to, value,
 * data, accessList])), the signed raw form 0x02 || rlp([…, yParity, r, s]) that
 * eth_sendRawTransaction takes, and its hash. Access lists are always empty. Fees and gas are
 * uint64 (2^64 wei is 18 ether per unit of gas, far above any real fee); value is a uint256.
 */
#ifndef OPENSEED_TX_H
#define OPENSEED_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/u256.h"
#include "openseed/buf.h"
#include "openseed/err.h"

#define OS_TX_TYPE_EIP1559 0x02
#define OS_TX_MAX_DATA (1024 * 1024) /* calldata or init code we will sign: 1 MiB */
#define OS_TX_MAX_RAW (OS_TX_MAX_DATA + 1024)

typedef struct os_tx {
    uint64_t chain_id;
    uint64_t nonce;
    uint64_t max_priority_fee_per_gas; /* wei */
    uint64_t max_fee_per_gas;          /* wei */
    uint64_t gas_limit;
    bool has_to; /* false: contract creation */
    uint8_t to[20];
    os_u256 value;       /* wei */
    const uint8_t *data; /* borrowed; NULL when data_len is 0 */
    size_t data_len;
} os_tx;

/* The signature in the form a type-2 transaction carries it. */
typedef struct os_tx_sig {
    uint8_t y_parity; /* 0 or 1 */
    uint8_t r[32];
    uint8_t s[32];
} os_tx_sig;

/* The digest the sender signs. OS_ERR_TOOBIG when data exceeds OS_TX_MAX_DATA. */
OS_WUR os_err os_tx_signing_hash(uint8_t hash[32], const os_tx *tx);

/* Appends the signed raw transaction for tx and sig to raw. */
OS_WUR os_err os_tx_encode_signed(os_buf *raw, const os_tx *tx, const os_tx_sig *sig);

/*
 * Signs tx with priv (RFC 6979, low-s) and appends the raw transaction to raw; hash receives the
 * transaction hash keccak256(raw). priv stays the caller's; no copy outlives the call.
 * OS_ERR_INVALID when the tip exceeds the fee cap (every node would refuse it).
 */
OS_WUR os_err os_tx_sign(os_buf *raw, uint8_t hash[32], const os_tx *tx, const uint8_t priv[32]);

/*
 * Parses a signed type-2 raw transaction strictly (canonical RLP, no trailing bytes, empty access
 * list, yParity 0/1, low-s) and recovers its sender. tx->data points into raw. Any of sig, from
 * and hash may be NULL. OS_ERR_UNSUPPORTED for other types or a non-empty access list,
 * OS_ERR_INVALID for malformed input, OS_ERR_CRYPTO when no sender can be recovered.
 */
OS_WUR os_err os_tx_decode(os_tx *tx, os_tx_sig *sig, uint8_t from[20], uint8_t hash[32],
                           const uint8_t *raw, size_t raw_len);

/* The address a contract created by sender with nonce gets: keccak256(rlp([sender, nonce]))[12..].
 */
OS_WUR os_err os_tx_create_address(uint8_t addr[20], const uint8_t sender[20], uint64_t nonce);

#endif
