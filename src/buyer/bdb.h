/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buyer.db, the buyer's books under wallet.c: its channels (with the two per-channel secrets,
 * the channel signer key and the credential secret), every voucher it signed, one row per paid
 * request, every deposit (open and top-up), the consumed amounts learnt from sellers' 402
 * invoices, and running totals per UTC day and per seller. SQLite with WAL and synchronous=FULL:
 * a function that returned OS_OK has its rows on disk. The file is created with mode 0600, and an
 * existing file that group or others may read is refused, since it holds keys. Rows are deleted
 * only for a channel whose open never reached the chain, with secure_delete on so its keys do not
 * linger in free pages.
 *
 * Thread safety: one connection behind the handle's mutex; every function may be called from any
 * thread.
 */
#ifndef OPENSEED_BUYER_BDB_H
#define OPENSEED_BUYER_BDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/infer.h"

typedef struct by_bdb by_bdb;

typedef enum by_chan_state {
    BY_CHAN_OPENING = 0, /* row committed, open not (yet) confirmed */
    BY_CHAN_OPEN,
    BY_CHAN_CLOSING, /* requestClose seen: no new vouchers */
    BY_CHAN_CLOSED,  /* withdrawn or closed by the seller */
} by_chan_state;

/* "opening", "open", "closing", "closed". */
const char *by_chan_state_name(by_chan_state s);

/* One channel row. signer_key and cred_secret are secrets: rows holding them live in
 * sodium_malloc'd memory (by_bdb_channel_list) or on the caller's stack, wiped after use. */
typedef struct by_bdb_channel {
    uint8_t id[32];
    uint8_t seller[20];
    uint8_t salt[32];
    uint8_t signer[20]; /* the channel signer's address */
    uint8_t signer_key[32];
    uint8_t cred_secret[64]; /* x || r (os_cred_secret_export) */
    uint8_t commitment[32];
    by_chan_state state;
    uint64_t deposit;    /* on chain, as last known */
    uint64_t consumed;   /* the seller's consumed, as last reported */
    uint64_t authorized; /* highest cumulative amount signed */
    uint64_t nonce;      /* last voucher nonce signed */
    uint64_t close_at;
    bool has_opened_tx;
    uint8_t opened_tx[32];
    int64_t created_at; /* Unix seconds */
} by_bdb_channel;

/* Opens (creating 0600, migrating) buyer.db at path. OS_ERR_INVALID (with a reason in err) for a
 * file that is not a regular file or that group or others can access. *out: by_bdb_close. */
OS_WUR os_err by_bdb_open(by_bdb **out, const char *path, char *err, size_t errcap);
void by_bdb_close(by_bdb *b);
/* buyer.db's schema migrations (migration i brings user_version i to i + 1), *n of them: static
 * and never freed. For the upgrade tests, which build every earlier schema from them. */
const char *const *by_bdb_migrations(size_t *n);

/* Inserts a new channel row (normally state opening, before its open transaction is sent). */
OS_WUR os_err by_bdb_channel_insert(by_bdb *b, const by_bdb_channel *c);
/* Every channel row, oldest first, into a sodium_allocarray'd array (*rows NULL when *n is 0),
 * released with by_bdb_channels_free, which wipes it. */
OS_WUR os_err by_bdb_channel_list(by_bdb *b, by_bdb_channel **rows, size_t *n);
void by_bdb_channels_free(by_bdb_channel *rows);
/* Deletes a channel that never opened (no voucher or request refers to it). */
OS_WUR os_err by_bdb_channel_drop(by_bdb *b, const uint8_t id[32]);
/* Marks an opening channel open with its confirmed deposit and records the deposit; tx may be
 * NULL when the open transaction is not known (completed by recovery). */
OS_WUR os_err by_bdb_channel_opened(by_bdb *b, const uint8_t id[32], uint64_t deposit,
                                    const uint8_t *tx);
/* Stores state, deposit and close_at as read from the chain; nonce becomes at least nonce_floor. */
OS_WUR os_err by_bdb_channel_set(by_bdb *b, const uint8_t id[32], by_chan_state st,
                                 uint64_t deposit, uint64_t close_at, uint64_t nonce_floor);
/* Records a confirmed top-up of amount, after which the deposit is `deposit`. tx may be NULL. */
OS_WUR os_err by_bdb_topup(by_bdb *b, const uint8_t id[32], uint64_t amount, uint64_t deposit,
                           const uint8_t *tx);

/* One signed voucher, written with what it goes with, in one transaction. */
typedef struct by_bdb_voucher {
    uint8_t channel_id[32];
    uint64_t nonce;
    uint64_t cumulative;
    uint8_t metadata_hash[32];
    /* the request it pays: an existing row (request_id != 0, a re-signed voucher), or a new one
     * from seller/service/api/estimate (request_id 0) */
    uint64_t request_id;
    uint8_t seller[20];
    const char *service;
    const char *api;
    uint64_t estimate;
} by_bdb_voucher;

/* Writes v: the request row when new (*request_id receives its id), the voucher row, and the
 * channel's nonce and authorized raised to v's (never lowered: writes may arrive out of order). */
OS_WUR os_err by_bdb_voucher_add(by_bdb *b, uint64_t *request_id, const by_bdb_voucher *v);

/* A 402 invoice adopted: the channel's consumed becomes at least `consumed`, and `amount` (the
 * part no closing fields had reported) is booked as spent by seller on UTC day `day`. */
OS_WUR os_err by_bdb_adjust(by_bdb *b, const uint8_t channel_id[32], const uint8_t seller[20],
                            uint64_t amount, uint64_t consumed, uint64_t day);

/* How a request ended. */
typedef struct by_bdb_request_end {
    uint64_t request_id;
    uint8_t channel_id[32];
    uint8_t seller[20];
    const char *outcome;
    uint64_t cost;
    os_infer_usage usage;
    uint64_t latency_ms;
    uint64_t ttft_ms;
    bool has_consumed; /* the closing fields' cumulative_consumed, to raise the channel's to */
    uint64_t consumed;
    uint64_t unseen; /* with has_consumed: a charge the buyer never saw, booked as an adjustment */
    uint64_t day; /* the UTC day the cost is booked on */
} by_bdb_request_end;

OS_WUR os_err by_bdb_request_finish(by_bdb *b, const by_bdb_request_end *e);

/* At start-up: every request a previous run left unfinished (it died with them in flight) is
 * finished as "interrupted" at cost 0 and counted on UTC day `day`; *n says how many. What the
 * seller charged for them reaches the channel's consumed through the next 402 invoice. */
OS_WUR os_err by_bdb_requests_interrupt(by_bdb *b, uint64_t *n, uint64_t day);

/* What was spent on UTC day `day` (costs and adjustments booked on it). */
OS_WUR os_err by_bdb_day_spent(by_bdb *b, uint64_t *spent, uint64_t day);

/* {"requests":[…],"vouchers":[…]} newest first, at most limit of each (wallet.h's shape). NULL on
 * failure. */
json_t *by_bdb_ledger_json(by_bdb *b, unsigned limit);

#define BY_LEDGER_LIMIT_MAX 1000u
#define BY_LEDGER_OFFSET_MAX 1000000000u
#define BY_LEDGER_FILTER_MAX 128 /* bytes of a service, outcome or api filter */

/* Which requests a ledger page shows. NULL strings (and has_seller false) match every request;
 * the strings are borrowed for the call. */
typedef struct by_ledger_query {
    unsigned limit;  /* 1..BY_LEDGER_LIMIT_MAX (clamped) */
    uint64_t offset; /* 0..BY_LEDGER_OFFSET_MAX (clamped) */
    bool has_seller;
    uint8_t seller[20];
    const char *service, *outcome, *api; /* exact matches */
} by_ledger_query;

/* One page of the ledger, read in one transaction: {"requests":[…] matching q, newest first, after
 * skipping q->offset of them, at most q->limit; "total": how many match q; "limit"; "offset";
 * "vouchers":[…] the newest q->limit, unfiltered}. NULL on failure. */
json_t *by_bdb_ledger_query_json(by_bdb *b, const by_ledger_query *q);

#define BY_SERIES_STEP_MAX 2592000u /* 30 days */
#define BY_SERIES_POINTS_MAX 1000u

/* Finished requests (cost, count, input and output tokens) in `points` buckets of `step` seconds,
 * each bucket [t, t + step) with t % step == 0 and the last one holding `now`; a request counts in
 * the bucket of its finish time (its start time when that is unknown). Every bucket is present:
 * {"step","from","to","points":[{t, spent, requests, input_tokens, output_tokens}]} oldest first,
 * a new object (the caller's). OS_ERR_INVALID for step or points out of range. */
OS_WUR os_err by_bdb_series(by_bdb *b, json_t **out, int64_t now, uint64_t step, unsigned points);

/* Totals: spent (all costs and adjustments), deposited (opens and top-ups), finished requests,
 * and per_seller [{seller, spent, requests}] (a new array). */
OS_WUR os_err by_bdb_totals(by_bdb *b, uint64_t *spent, uint64_t *deposited, uint64_t *requests,
                            json_t **per_seller);
/* Finished requests' costs, counts and tokens per UTC day since since_day (Unix day number),
 * newest first, as per_day [{day "YYYY-MM-DD", spent, requests, input_tokens, output_tokens}], and
 * per service, as per_service [{service, spent, requests, input_tokens, output_tokens}] by name
 * (two new arrays, the caller's). */
OS_WUR os_err by_bdb_breakdown(by_bdb *b, json_t **per_day, json_t **per_service,
                               uint64_t since_day);

#endif
