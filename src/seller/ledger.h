/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seller.db: the seller's durable accounting (SQLite, WAL, synchronous=FULL, because these rows are
 * money). Per channel: its on-chain state as last read, the latest accepted voucher (cumulative,
 * nonce, metadata hash, signature), and consumed (the sum of the cost of finished requests). Every
 * accepted voucher is kept (a settlement may need an earlier one, see sl_ledger_settle_candidate),
 * one row per request (tokens by class, cost, latency, outcome), and one row per settlement
 * attempt (transaction hash, amount, gas).
 *
 * Invariants the functions keep: a voucher is stored before its request row exists and both in one
 * committed transaction (sl_ledger_accept returns only after the commit is on disk); a channel's
 * latest nonce only grows; consumed only grows, by exactly the cost of each finished request, once.
 * A request left "pending" by a crash is finished as "interrupted" with cost 0 when the ledger is
 * next opened (the buyer saw no final chunk, so it was told no cost).
 *
 * One sl_ledger is a writer connection guarded by its own mutex and, for the admin API's views,
 * a read-only connection guarded by another: any thread may call any function, and a view never
 * waits for a write to finish. Times are Unix milliseconds.
 */
#ifndef OPENSEED_SELLER_LEDGER_H
#define OPENSEED_SELLER_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/escrow.h"
#include "openseed/infer.h"

typedef struct sl_ledger sl_ledger;

/* A channel as stored. */
typedef struct sl_channel {
    uint8_t id[32];
    os_channel_state chain; /* as last read from the chain (block, last_nonce included) */
    int64_t checked_ms;     /* when chain was read; 0 = never */
    bool has_voucher;
    os_voucher voucher; /* the latest accepted voucher (highest nonce) */
    uint64_t consumed;  /* sum of the cost of the channel's finished requests */
    uint64_t requests;  /* finished requests */
    int64_t first_seen_ms;
} sl_channel;

/* Opens (creating and migrating) the database at path and finishes requests a crash left pending
 * (outcome "interrupted", cost 0). err gets SQLite's reason on failure. */
OS_WUR os_err sl_ledger_open(sl_ledger **out, const char *path, char *err, size_t errcap);
/* Closes (checkpointing the WAL). NULL-safe. */
void sl_ledger_close(sl_ledger *l);
/* seller.db's schema migrations (migration i brings user_version i to i + 1), *n of them: static
 * and never freed. For the upgrade tests, which build every earlier schema from them. */
const char *const *sl_ledger_migrations(size_t *n);

/* One channel; OS_ERR_NOTFOUND when it was never stored. */
OS_WUR os_err sl_ledger_channel_get(sl_ledger *l, sl_channel *out, const uint8_t id[32]);
/* Every stored channel, in first-seen order; *out is malloc'd (free()), *n its length. */
OS_WUR os_err sl_ledger_channel_list(sl_ledger *l, sl_channel **out, size_t *n);
/* Creates the channel if needed and stores its on-chain state (other columns untouched). */
OS_WUR os_err sl_ledger_channel_put_chain(sl_ledger *l, const uint8_t id[32],
                                          const os_channel_state *st, int64_t checked_ms);

/*
 * Accepts a voucher for one request, durably: in one transaction, refuses (OS_ERR_EXISTS) a nonce
 * not above the channel's latest, stores the voucher as the channel's latest and in the voucher
 * history with the request's estimate, and inserts the request row (pending, api, service,
 * estimate, started now); commits. OS_ERR_NOTFOUND when the channel was never stored. *request_id
 * identifies the request for sl_ledger_finish.
 */
OS_WUR os_err sl_ledger_accept(sl_ledger *l, uint64_t *request_id, const os_voucher *v,
                               const char *api, const char *service, uint64_t estimate);

/*
 * As sl_ledger_accept for a voucher that arrived after a later one (concurrent requests on one
 * channel reach the seller in any order): its nonce must be below the channel's latest
 * (OS_ERR_EXISTS otherwise) and never used before on the channel (OS_ERR_EXISTS: the schema's
 * UNIQUE (channel_id, nonce)). It is stored in the voucher history with its request row; the
 * channel's latest voucher stays as it is.
 */
OS_WUR os_err sl_ledger_accept_late(sl_ledger *l, uint64_t *request_id, const os_voucher *v,
                                    const char *api, const char *service, uint64_t estimate);

/* How a request ended. */
typedef struct sl_request_end {
    os_infer_usage usage;
    uint64_t cost;       /* micro-USDC; 0 for a failure before any token */
    uint64_t latency_ms; /* accepted to last byte */
    uint64_t ttft_ms;    /* accepted to first upstream byte; 0 if none */
    long upstream_status;
    const char *outcome; /* "ok", "upstream_error", "cancelled", "interrupted", "failed" */
} sl_request_end;

/*
 * Finishes a pending request: stores e, adds e->cost to the channel's consumed (overflow-checked:
 * OS_ERR_RANGE, nothing changed) and, when consumed_after is non-NULL, writes the new total there.
 * OS_ERR_NOTFOUND for an unknown id, OS_ERR_EXISTS when it is already finished.
 */
OS_WUR os_err sl_ledger_finish(sl_ledger *l, uint64_t *consumed_after, uint64_t request_id,
                               const sl_request_end *e);

/*
 * The voucher a settlement should claim on channel id: among the accepted vouchers whose request
 * has finished, with nonce >= min_nonce and cumulative above claimed, the one with the highest
 * cumulative amount that does not exceed the channel's consumed plus the slack of the last
 * charged request (the finished one with the highest nonce and a cost above 0: its estimate minus
 * its cost). In the honest flow that request's voucher is exactly consumed + its slack, so it is
 * the one claimed; an earlier, larger voucher (a request authorised high that then cost little)
 * never lets the seller take more than it earned plus that last, unavoidable slack, and the
 * voucher of a request that cost nothing (an upstream failure, a crash) never lets it take that
 * request's estimate. OS_ERR_NOTFOUND when there is none.
 * *earned gets the channel's consumed.
 */
OS_WUR os_err sl_ledger_settle_candidate(sl_ledger *l, os_voucher *out, uint64_t *earned,
                                         const uint8_t id[32], uint64_t min_nonce,
                                         uint64_t claimed);

/* One settlement attempt. */
typedef struct sl_settlement {
    uint8_t channel_id[32];
    uint64_t nonce, cumulative; /* the voucher redeemed */
    uint64_t amount;            /* micro-USDC the claim paid (0 when it failed) */
    uint8_t tx_hash[32];        /* zero when nothing was sent */
    uint64_t gas_used;
    uint64_t gas_price_wei; /* effective gas price */
    const char *status;     /* "confirmed", "reverted", "failed" */
    const char *error;      /* NULL, or a one-line reason (no secrets) */
    int64_t at_ms;
} sl_settlement;

OS_WUR os_err sl_ledger_settlement_add(sl_ledger *l, const sl_settlement *s);

/* ---- the admin API's views (new JSON values; NULL on failure) ---- */

/* {"channels":[{channel_id, payer, signer, deposit, claimed, close_at, closed, consumed, credit,
 * requests, latest_voucher:{cumulative, nonce, metadata_hash, signature}|null, checked_at}]};
 * amounts as decimal strings; credit = latest cumulative - consumed (0 when below). */
json_t *sl_ledger_channels_json(sl_ledger *l);
/* {"vouchers":[{channel_id, nonce, cumulative, metadata_hash, signature, estimate, accepted_at}]}
 * newest first, at most limit (1..1000), of one channel when channel_id is non-NULL. */
json_t *sl_ledger_vouchers_json(sl_ledger *l, const uint8_t *channel_id, unsigned limit);
/* {"requests":[{id, channel_id, api, service, outcome, input_tokens, cached_tokens,
 * output_tokens, cost, estimate, latency_ms, ttft_ms, upstream_status, started_at}]} newest first. */
json_t *sl_ledger_requests_json(sl_ledger *l, const uint8_t *channel_id, unsigned limit);
/* {"consumed","claimed","unclaimed","requests","input_tokens","cached_tokens","output_tokens",
 * "settlements","gas_wei","by_outcome":{outcome:count}} over every channel. */
json_t *sl_ledger_revenue_json(sl_ledger *l);
/* {"settlements":[{channel_id, nonce, cumulative, amount, tx_hash, gas_used, gas_price_wei,
 * status, error, at}]} newest first. */
json_t *sl_ledger_settlements_json(sl_ledger *l, unsigned limit);

/* The bounds of sl_ledger_series_json's arguments (the admin API answers 400 outside them). */
#define SL_SERIES_STEP_MAX 2592000u /* seconds: 30 days */
#define SL_SERIES_POINTS_MAX 1000u

/*
 * Revenue over time, in points buckets of step seconds aligned on multiples of step (Unix time),
 * the last one holding now_s: {"step", "from" (the first bucket's start), "to" (the last bucket's
 * end), "points":[{t, revenue, requests, input_tokens, output_tokens}]}, every bucket present,
 * oldest first. A finished request counts in the bucket of its finish time, whatever its outcome.
 * NULL also for step outside 1..SL_SERIES_STEP_MAX, points outside 1..SL_SERIES_POINTS_MAX or
 * now_s < 0.
 */
json_t *sl_ledger_series_json(sl_ledger *l, int64_t now_s, uint64_t step, unsigned points);

/* Successful requests per service that the latency percentiles cover (the newest ones). */
#define SL_LATENCY_WINDOW 1000u

/*
 * Per service (sorted by name, bytewise): {"models":[{service, requests, errors, input_tokens,
 * cached_tokens, output_tokens, revenue, latency_ms:{p50,p95,max}|null, ttft_ms:{p50,p95}|null,
 * latency_window}]}. The totals cover every finished request (errors: an outcome other than
 * "ok"); the percentiles (nearest rank) the newest SL_LATENCY_WINDOW requests finished "ok",
 * latency_window saying how many there were (null objects when none).
 */
json_t *sl_ledger_models_json(sl_ledger *l);

#endif
