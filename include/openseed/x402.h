/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The x402 v2 payment headers of the seller's /v1/infer (PROTOCOL.md §7, scheme
 * "openseed-channel"), shared by the seller (which reads PAYMENT-SIGNATURE and writes
 * PAYMENT-REQUIRED and PAYMENT-RESPONSE) and the buyer (the other way round). Each header value is
 * base64 (strict, standard, padded) of compact JSON. Decoders are strict: the header value is
 * capped (OS_X402_HEADER_MAX), the JSON depth is capped, unknown fields are refused at every level,
 * types and ranges are checked (amounts are canonical decimal strings, hashes 0x + 64 lower-case
 * hex, addresses EIP-55 or all-lower/upper), and error messages name the field without echoing it.
 */
#ifndef OPENSEED_X402_H
#define OPENSEED_X402_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/escrow.h"

#define OS_X402_VERSION 2
#define OS_X402_SCHEME "openseed-channel"
#define OS_X402_HDR_REQUIRED "PAYMENT-REQUIRED"
#define OS_X402_HDR_SIGNATURE "PAYMENT-SIGNATURE"
#define OS_X402_HDR_RESPONSE "PAYMENT-RESPONSE"
/* Largest header value a decoder accepts (base64 characters, NUL excluded). */
#define OS_X402_HEADER_MAX 4096
#define OS_X402_ERR_LEN 160
#define OS_X402_ERROR_MAX 64     /* the "error" code of PAYMENT-REQUIRED, NUL included */
#define OS_X402_RESOURCE_MAX 256 /* resource.url, NUL included */
#define OS_X402_JSON_DEPTH 8     /* nesting cap of a decoded value (ours is 4 deep) */
#define OS_X402_MAX_ACCEPTS 16   /* entries of "accepts" a decoder looks through */

/*
 * One "accepts" entry: what the seller asks for this request. The channel fields (extra.channelId,
 * consumed, authorized, nonce) are present only when the request named a channel the seller knows
 * (has_channel); escrow, name and version are always present in extra. extra.reserved is optional
 * and only goes with the channel fields (has_reserved needs has_channel): the part of consumed that
 * is the estimates of requests the seller still has in flight, so consumed - reserved is what it
 * has booked; reserved <= consumed.
 */
typedef struct os_x402_requirement {
    uint64_t chain_id;      /* network "eip155:<chain_id>" */
    uint64_t amount;        /* micro-USDC this request adds (the estimate) */
    uint8_t asset[20];      /* the USDC token */
    uint8_t pay_to[20];     /* the seller's node address */
    uint32_t max_timeout_s; /* maxTimeoutSeconds */
    uint8_t escrow[20];     /* extra.escrow; extra.name/version are "OpenSeedChannels"/"1" */
    bool has_channel;
    uint8_t channel_id[32];
    uint64_t consumed; /* extra.consumed: what the next voucher builds on (see docs/protocol.md) */
    uint64_t authorized; /* extra.authorized: the latest accepted cumulative amount */
    uint64_t nonce;      /* extra.nonce: the latest accepted voucher nonce */
    bool has_reserved;
    uint64_t reserved; /* extra.reserved: the in-flight estimates counted in consumed */
    bool has_metadata_hash;
    uint8_t metadata_hash[32]; /* extra.metadataHash: keccak256 of the request body refused */
} os_x402_requirement;

/*
 * PAYMENT-REQUIRED: {"x402Version":2,"error":code,"resource":{"url":resource},"accepts":[r]}, the
 * entry {"scheme":"openseed-channel","network":"eip155:<id>","amount":"…","asset":"0x…",
 * "payTo":"0x…","maxTimeoutSeconds":n,"extra":{"escrow":"0x…"[,"channelId":"0x…","consumed":"…",
 * "authorized":"…","nonce":n[,"reserved":"…"]][,"metadataHash":"0x…"],"name":"OpenSeedChannels",
 * "version":"1"}} in that key order. *out is malloc'd base64 text (caller frees). error is a short
 * snake_case code ([a-z0-9_]{1,63}: "payment_required", "insufficient_amount", "stale_nonce",
 * ...); resource 1..255 bytes of printable ASCII without spaces. OS_ERR_INVALID for values the
 * decoder would refuse (chain_id 0, nonce above INT64_MAX, has_reserved without has_channel,
 * reserved above consumed, a bad code or resource); OS_ERR_NOMEM.
 */
OS_WUR os_err os_x402_required_encode(char **out, const char *error, const char *resource,
                                      const os_x402_requirement *r);
/*
 * Parses a PAYMENT-REQUIRED value: the first "openseed-channel" entry of accepts goes to *r
 * (entries of other schemes are skipped after checking they are objects with a string "scheme"; at
 * most OS_X402_MAX_ACCEPTS entries), the error code to error[error_cap] (may be NULL with error_cap
 * 0). err gets a reason on failure. OS_ERR_INVALID for anything malformed (also a code longer than
 * error_cap); OS_ERR_NOTFOUND when no entry has our scheme. *r and error are written only on
 * success.
 */
OS_WUR os_err os_x402_required_decode(os_x402_requirement *r, char *error, size_t error_cap,
                                      const char *value, char *err, size_t errcap);

/*
 * PAYMENT-SIGNATURE: {"x402Version":2,"accepted":{…accepted as an accepts entry…},"payload":{
 * "channelId":"0x…","cumulativeAmount":"…","nonce":n,"metadataHash":"0x…","signature":"0x…"}},
 * the signature 65 bytes r||s||v as 0x + 130 lower-case hex digits. accepted's channel fields and
 * metadataHash are written when its has_ flags say so (a buyer echoing a 402); a buyer that has
 * seen no 402 fills accepted from the seller's record (chain, asset, pay_to, escrow) and its own
 * estimate, with both flags false. *out is malloc'd (caller frees). OS_ERR_INVALID for a nonce
 * above INT64_MAX (JSON integers here are int64), chain_id 0, or a reserved the decoder would
 * refuse (as for PAYMENT-REQUIRED).
 */
OS_WUR os_err os_x402_payment_encode(char **out, const os_x402_requirement *accepted,
                                     const os_voucher *v);
/* Parses PAYMENT-SIGNATURE into the voucher (channel id, amount, nonce, metadata hash, 65-byte
 * signature; nothing is verified here) and, when accepted is non-NULL, the accepted entry, whose
 * scheme must be ours. OS_ERR_INVALID for anything malformed; outputs written only on success. */
OS_WUR os_err os_x402_payment_decode(os_voucher *v, os_x402_requirement *accepted,
                                     const char *value, char *err, size_t errcap);

/* PAYMENT-RESPONSE: {"success":true,"network":"eip155:<id>","amount":"<charged>",
 * "payer":"0x<channelId>"}. amount is what this request cost (decimal micro-USDC). The decoder
 * takes success false too, and writes its outputs only on success. */
OS_WUR os_err os_x402_response_encode(char **out, uint64_t chain_id, uint64_t amount,
                                      const uint8_t channel_id[32]);
OS_WUR os_err os_x402_response_decode(bool *success, uint64_t *chain_id, uint64_t *amount,
                                      uint8_t channel_id[32], const char *value, char *err,
                                      size_t errcap);

#endif
