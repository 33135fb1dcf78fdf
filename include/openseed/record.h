/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The signed messages sellers and buyers send the registry (PROTOCOL.md §3–4): the seller record,
 * heartbeats and feedback. Parsing validates every field before use (types, ranges, lengths, unknown
 * fields refused); signing and verification use the EIP-712 types of the protocol in the "OpenSeed"
 * domain. The seller signs with os_record_sign / os_heartbeat_sign; the registry verifies.
 */
#ifndef OPENSEED_RECORD_H
#define OPENSEED_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/money.h"

#define OS_RECORD_MAX_BYTES (64 * 1024) /* serialized record, as the registry's body cap */
#define OS_RECORD_ENDPOINT_MAX 512       /* bytes of an endpoint URL, including the NUL */
#define OS_RECORD_NAME_MAX 64            /* bytes of a service or capability name, incl. NUL */
#define OS_RECORD_MODEL_MAX 128
#define OS_RECORD_MAX_OFFERINGS 16
#define OS_RECORD_MAX_SERVICES 8 /* per offering */
#define OS_RECORD_OHTTP_KEYS_MAX 256
#define OS_RECORD_ERR_LEN 192

/* APIs an offering can speak (bit mask). */
enum {
    OS_API_OPENAI_CHAT = 1u << 0,       /* "openai.chat" */
    OS_API_OPENAI_EMBEDDINGS = 1u << 1, /* "openai.embeddings" */
    OS_API_ANTHROPIC_MESSAGES = 1u << 2 /* "anthropic.messages" */
};

typedef struct os_offering {
    char capability[OS_RECORD_NAME_MAX]; /* "inference", "agent" or "tool" */
    char services[OS_RECORD_MAX_SERVICES][OS_RECORD_NAME_MAX];
    size_t n_services;
    char model[OS_RECORD_MODEL_MAX];
    unsigned apis;      /* OS_API_* bits, at least one */
    os_pricing pricing; /* micro-USDC per million tokens */
    uint64_t max_output_tokens;
} os_offering;

/* A validated seller record (PROTOCOL.md §3). */
typedef struct os_record {
    uint8_t node[20];
    char endpoint[OS_RECORD_ENDPOINT_MAX]; /* http:// or https:// URL */
    uint64_t seq, timestamp, chain_id;
    uint8_t escrow[20], asset[20];
    uint8_t ohttp_keys[OS_RECORD_OHTTP_KEYS_MAX]; /* decoded RFC 9458 key config */
    size_t ohttp_keys_len;
    os_offering offerings[OS_RECORD_MAX_OFFERINGS];
    size_t n_offerings;
} os_record;

/*
 * Parses and validates a record object (the JSON of §3, without "signature"). Every failure, a
 * missing field included, is OS_ERR_INVALID with the field named in err; out is zeroed then.
 */
OS_WUR os_err os_record_parse(os_record *out, const json_t *record, char *err, size_t errcap);

/* Builds the record JSON from r (the seller's side). Caller owns the result; NULL on failure. */
json_t *os_record_to_json(const os_record *r);

/* keccak256 of the record serialised with sorted keys and no whitespace, "signature" removed. */
OS_WUR os_err os_record_body_hash(uint8_t out[32], const json_t *record);

/*
 * The EIP-712 SellerRecord digest of a record in the OpenSeed domain of its chain_id. parsed is
 * os_record_parse's result for record, or NULL to have it parsed here.
 */
OS_WUR os_err os_record_digest(uint8_t out[32], const json_t *record, const os_record *parsed);

/*
 * Signs the record with the node key. OS_ERR_INVALID when the record does not parse or the key's
 * address is not the record's node_id.
 */
OS_WUR os_err os_record_sign(uint8_t sig[65], const json_t *record, const uint8_t priv[32]);

/*
 * Parses the record into out and checks that sig is a low-s signature by out->node over the
 * record's digest. OS_ERR_INVALID for a malformed record, OS_ERR_CRYPTO for a bad signature.
 */
OS_WUR os_err os_record_verify(os_record *out, const json_t *record, const uint8_t sig[65],
                               char *err, size_t errcap);

/* A heartbeat (PROTOCOL.md §4): Heartbeat(address node,string endpoint,uint64 seq,uint64 timestamp). */
typedef struct os_heartbeat {
    uint8_t node[20];
    char endpoint[OS_RECORD_ENDPOINT_MAX];
    uint64_t seq, timestamp;
    uint32_t active, capacity; /* load; not signed */
    uint8_t sig[65];
} os_heartbeat;

/*
 * Parses {node, endpoint, seq, timestamp, load:{active, capacity}, signature} (exactly those keys;
 * capacity >= 1). Failures as os_record_parse.
 */
OS_WUR os_err os_heartbeat_parse(os_heartbeat *out, const json_t *body, char *err, size_t errcap);
/*
 * Fills hb->sig with the node key's signature in the OpenSeed domain of chain_id. OS_ERR_INVALID
 * when the key is not hb->node's or a field is out of range.
 */
OS_WUR os_err os_heartbeat_sign(os_heartbeat *hb, const uint8_t priv[32], uint64_t chain_id);
/* OS_OK when hb->sig is a low-s signature by hb->node; OS_ERR_CRYPTO otherwise. */
OS_WUR os_err os_heartbeat_verify(const os_heartbeat *hb, uint64_t chain_id);
/* The wire JSON of hb (with signature). Caller owns the result. */
json_t *os_heartbeat_to_json(const os_heartbeat *hb);
/* The EIP-712 digest hb->sig signs: Heartbeat in the OpenSeed domain of chain_id. */
OS_WUR os_err os_heartbeat_digest(uint8_t out[32], const os_heartbeat *hb, uint64_t chain_id);

/*
 * Feedback (PROTOCOL.md §4) from a buyer's channel signer, bound to a paid interaction by a voucher:
 * EIP-712 Feedback(address node,string outcome,uint64 latencyMs,uint64 ttftMs,bytes32 channelId,
 * uint256 cumulativeAmount,uint64 nonce,bytes32 metadataHash) in the OpenSeed domain. The same key
 * signs the embedded SpendingAuth voucher in the channels domain; the registry checks both recover
 * to one address and that the channel (on chain) pays `node` with that signer.
 */
#define OS_FEEDBACK_OUTCOME_MAX 16 /* "success", "error", "timeout", "refused" */
typedef struct os_feedback {
    uint8_t node[20];
    char outcome[OS_FEEDBACK_OUTCOME_MAX];
    uint64_t latency_ms, ttft_ms;
    uint8_t channel_id[32];
    uint64_t cumulative_amount, nonce;
    uint8_t metadata_hash[32];
    uint8_t voucher_sig[65]; /* SpendingAuth signature (channels domain) */
    uint8_t sig[65];         /* Feedback signature (OpenSeed domain) */
} os_feedback;

/* Bound on latency_ms and ttft_ms (a day), so one report cannot swamp an average. */
#define OS_FEEDBACK_MAX_MS 86400000

/*
 * Parses {node, outcome, latency_ms, ttft_ms, voucher:{channelId, cumulativeAmount, nonce,
 * metadataHash, signature}, signature} (exactly those keys; cumulativeAmount a decimal string,
 * nonce and the times JSON integers). Failures as os_record_parse.
 */
OS_WUR os_err os_feedback_parse(os_feedback *out, const json_t *body, char *err, size_t errcap);
/*
 * Signs both the voucher (if voucher_sig is all zero) and the feedback with the channel signer's
 * key. A voucher already signed by another key is OS_ERR_CRYPTO (the pair could never verify).
 */
OS_WUR os_err os_feedback_sign(os_feedback *fb, const uint8_t priv[32], uint64_t chain_id,
                               const uint8_t escrow[20]);
/*
 * Checks both signatures and that they recover to the same address, written to signer.
 * OS_ERR_CRYPTO when either fails or they differ.
 */
OS_WUR os_err os_feedback_verify(uint8_t signer[20], const os_feedback *fb, uint64_t chain_id,
                                 const uint8_t escrow[20]);
json_t *os_feedback_to_json(const os_feedback *fb);
/* The Feedback digest in the OpenSeed domain (fb->sig signs it); OS_ERR_INVALID for bad outcome. */
OS_WUR os_err os_feedback_digest(uint8_t out[32], const os_feedback *fb, uint64_t chain_id);
/* The SpendingAuth digest of the feedback's voucher in the channels domain (fb->voucher_sig). */
OS_WUR os_err os_feedback_voucher_digest(uint8_t out[32], const os_feedback *fb, uint64_t chain_id,
                                         const uint8_t escrow[20]);

/* True when s[0..n) is a service name: 1 to 63 of [A-Za-z0-9._:/-] (registry, seller, buyer). */
bool os_record_name_ok(const char *s, size_t n);

/* "openai.chat" etc. <-> OS_API_* bit; 0 / NULL for unknown. */
unsigned os_api_from_name(const char *name);
const char *os_api_name(unsigned api_bit);

#endif
