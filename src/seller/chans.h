/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's channels: an in-memory cache of every payment channel that pays this seller,
 * backed by seller.db (ledger.h) and by the escrow contract, the payment decision of PROTOCOL.md §7
 * made against it without touching the chain, and settlement.
 *
 * - Learning: the first voucher naming an unknown channel makes one getChannel read on the chain
 *   (a bounded number at once; an id the chain does not know is remembered as unknown for a short
 *   while so it cannot be used to hammer the node). The state is stored in the ledger.
 * - Refreshing: a background thread re-reads every channel's state every refresh interval and
 *   follows the escrow's CloseRequested / Closed / Withdrawn / ToppedUp / Claimed events for this
 *   seller's channels (eth_getLogs from the last block seen), so a close request is noticed within
 *   a poll and claimed before the grace period ends.
 * - Restart: channels loaded from the ledger are unverified until re-read from the chain; a
 *   voucher on an unverified channel triggers that read first (as for an unknown one). A closed,
 *   withdrawn or closing channel is refused, never served for free.
 * - Paying: sl_chans_pay checks a voucher under the channel's lock and, when it is good, stores it
 *   durably (sl_ledger_accept) and reserves the request's estimate until sl_chans_finish books the
 *   actual cost. Concurrent requests on one channel each need their own voucher whose cumulative
 *   covers consumed + the estimates of the requests still in flight + its own estimate.
 * - Settling: automatically when a channel's claimable amount (see sl_ledger_settle_candidate)
 *   minus what is already claimed reaches the threshold, when the settle interval passes with
 *   something unclaimed, at once when the payer asked to close, and on demand (sl_chans_settle).
 *   Each attempt is recorded with its transaction hash and gas (sl_ledger_settlement_add).
 *
 * Thread safety: every function may be called from any thread. The core never calls exit().
 */
#ifndef OPENSEED_SELLER_CHANS_H
#define OPENSEED_SELLER_CHANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/chain.h"
#include "openseed/err.h"
#include "openseed/escrow.h"
#include "openseed/infer.h"
#include "openseed/log.h"
#include "openseed/x402.h"

#include "ledger.h"

typedef struct sl_chans sl_chans;

typedef struct sl_chans_config {
    os_chain *chain;          /* borrowed; reads */
    os_chain_signer *signer;  /* borrowed; the node key, for claims */
    sl_ledger *ledger;        /* borrowed */
    const os_logger *log;     /* borrowed; NULL = default */
    uint64_t chain_id;
    uint8_t escrow[20];
    uint8_t asset[20];        /* the USDC token (for invoices) */
    uint8_t seller[20];       /* this seller's node address (payTo) */
    uint64_t refresh_ms;      /* channel state re-read and event poll period; 0 = 15000 */
    uint64_t settle_threshold; /* micro-USDC claimable before an automatic claim; 0 = 1 USDC */
    uint64_t settle_interval_ms; /* claim whatever is claimable this often; 0 = 1 h */
    unsigned max_lookups;     /* concurrent first-time chain reads; 0 = 4 (more: OS_ERR_TOOBIG) */
    uint64_t unknown_ttl_ms;  /* how long an id the chain does not know stays refused; 0 = 10 s */
    uint32_t max_timeout_s;   /* maxTimeoutSeconds in invoices; 0 = 300 */
} sl_chans_config;

/* Loads every stored channel (all unverified). Needs an open ledger. */
OS_WUR os_err sl_chans_new(sl_chans **out, const sl_chans_config *cfg);
/* Starts the background thread (refresh, events, restart re-checks, automatic settlement). */
OS_WUR os_err sl_chans_start(sl_chans *c);
/* Stops and joins the background thread; a claim in progress finishes first. Idempotent. */
void sl_chans_stop(sl_chans *c);
/* Stops if needed and frees. NULL-safe. */
void sl_chans_free(sl_chans *c);

/* A copy of what the credential check and an invoice need about one channel. */
typedef struct sl_chan_view {
    uint8_t id[32];
    uint8_t signer[20];
    uint8_t commitment[32];
    uint64_t deposit;
} sl_chan_view;

/*
 * Makes channel id ready to pay with and copies what the credential check needs: known on chain
 * (read now if unknown or unverified since start), paying this seller, not closed and no close
 * requested. Errors, with a one-line reason in why (safe to send to the buyer):
 *   OS_ERR_NOTFOUND  no such channel on this escrow
 *   OS_ERR_INVALID   the channel pays another seller, is closed, or is closing
 *   OS_ERR_TOOBIG    too many first-time lookups at once (answer 503)
 *   OS_ERR_NETWORK   the chain could not be read (answer 503)
 *   OS_ERR_IO        a new channel's row could not be stored in the ledger (answer 503)
 */
OS_WUR os_err sl_chans_lookup(sl_chans *c, sl_chan_view *out, const uint8_t id[32], char *why,
                              size_t whycap);

/* A request that was paid for: give it back to sl_chans_finish exactly once. */
typedef struct sl_ticket {
    uint8_t channel_id[32];
    uint64_t request_id;
    uint64_t estimate;
    uint64_t cumulative; /* the voucher's */
} sl_ticket;

/* Why sl_chans_pay refused: an HTTP status (401 or 402; 503 or 500 when the ledger write failed),
 * an x402 error code and a message, and for 402 the invoice (req) to send back as
 * PAYMENT-REQUIRED. */
typedef struct sl_refusal {
    unsigned status;
    char code[OS_X402_ERROR_MAX];
    char message[192];
    os_x402_requirement req;
} sl_refusal;

/* How far below the latest accepted nonce a late voucher may be. */
#define SL_LATE_NONCE_WINDOW 4096

/*
 * The payment check of PROTOCOL.md §7 for one request whose estimate is `estimate`, in this order:
 * the channel is usable (as sl_chans_lookup, from the cache), the signature is low-s and recovers
 * the channel's signer (401 "invalid_signature"), nonce above the last accepted (402
 * "stale_nonce"), metadataHash equals metadata_hash (401 "metadata_mismatch"), cumulative within
 * the deposit (402 "exceeds_deposit"), cumulative >= consumed + in-flight estimates + estimate
 * (402 "insufficient_amount"). Then the voucher is stored (sl_ledger_accept) before this returns.
 * A late voucher (a buyer's concurrent requests arrive in any order) is taken too: a nonce below
 * the latest accepted but above the chain's lastNonce, at most SL_LATE_NONCE_WINDOW below it,
 * never used before, whose request the latest voucher covers (consumed + in flight + estimate <=
 * the latest cumulative); it is stored (sl_ledger_accept_late) without becoming the latest.
 * OS_OK: *t is the ticket. OS_ERR_CRYPTO / OS_ERR_RANGE...: refused, *r says how to answer.
 * The ledger write failed, nothing was accepted: OS_ERR_TIMEOUT (the database stayed locked by
 * another process past the busy timeout) or OS_ERR_IO (disk full, I/O error), *r = 503
 * "storage_unavailable"; any other failure is OS_ERR_IO with *r = 500 "internal_error".
 */
OS_WUR os_err sl_chans_pay(sl_chans *c, sl_ticket *t, sl_refusal *r, const os_voucher *v,
                           const uint8_t metadata_hash[32], uint64_t estimate, const char *api,
                           const char *service);

/* Books how a paid request ended (cost <= the ticket's estimate is the caller's promise; a larger
 * cost is cut to the estimate and logged) and releases its reservation. *consumed_after gets the
 * channel's consumed after it. */
OS_WUR os_err sl_chans_finish(sl_chans *c, uint64_t *consumed_after, const sl_ticket *t,
                              const sl_request_end *e);

/*
 * The 402 invoice for a request that carried no usable voucher: amount = estimate, and when
 * channel_id is non-NULL and known, its consumed (including in-flight estimates), authorized and
 * nonce. metadata_hash may be NULL.
 */
void sl_chans_invoice(sl_chans *c, os_x402_requirement *out, const uint8_t *channel_id,
                      uint64_t estimate, const uint8_t *metadata_hash);

/*
 * Settles now: one channel (channel_id non-NULL) or every channel with something claimable. Waits
 * for each claim's receipt. *report (may be NULL) gets {"settlements":[…the rows added…]}.
 * OS_OK even when individual claims fail (their rows say why); OS_ERR_NOTFOUND for an unknown
 * channel.
 */
OS_WUR os_err sl_chans_settle(sl_chans *c, json_t **report, const uint8_t *channel_id);

/* Gauges for /metrics and /healthz. */
typedef struct sl_chans_stats {
    uint64_t channels;       /* known */
    uint64_t unverified;     /* loaded, not yet re-read since start */
    uint64_t in_flight;      /* paid requests not finished */
    uint64_t consumed;       /* sum over channels */
    uint64_t claimed;        /* sum over channels, on chain */
    uint64_t settlements_ok; /* confirmed claims since start */
    uint64_t settlements_failed;
    uint64_t chain_errors; /* failed chain reads since start */
} sl_chans_stats;
void sl_chans_get_stats(sl_chans *c, sl_chans_stats *out);

#endif
