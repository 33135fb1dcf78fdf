/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's money: one payment channel per seller on the escrow contract, opened on first use,
 * topped up, closed on command; the voucher for every request; budgets; and buyer.db, the ledger
 * that survives restarts (SQLite, WAL, synchronous=FULL, file mode 0600).
 *
 * Channels. The first request for a seller opens a channel with the configured deposit, from the
 * wallet (approve + open, or openWithAuthorization in one transaction), with a fresh channel
 * signer key and a fresh credential secret; the channel row (including those two secrets) is
 * committed to buyer.db before the open transaction is sent, so a crash cannot lose a funded
 * channel, and the channel is used only once its open is confirmed. Concurrent first requests for
 * one seller wait for the one open. When the deposit left (deposit - committed) is below
 * topup_below, the channel is topped up by `deposit` (within budget_channel) before the voucher.
 * After a restart every stored channel is re-read from the chain (closed or closing ones are not
 * used again; one whose open never confirmed is looked up and completed or dropped).
 *
 * Vouchers (PROTOCOL.md §7): cumulative = committed + estimate, where committed = the seller's
 * last reported consumed + the estimates of this channel's requests still in flight; nonce = last
 * + 1; the credential proves the channel's commitment with a fresh nullifier for that nonce.
 * Every voucher is recorded before it is handed out. On a 402 the seller's invoice is adopted
 * only if its consumed does not exceed what this buyer ever authorised on the channel (the
 * highest cumulative signed), and the re-signed amount stays within the caps.
 *
 * Budgets (0 = none): budget_request caps one request's estimate; budget_day caps what requests
 * may commit per UTC day (costs of finished requests + estimates in flight); budget_channel caps
 * the total deposited into one channel. Refusals say which cap and by how much.
 *
 * The wallet address never leaves for a seller: vouchers are signed by the channel signer and
 * only the escrow contract links the channel to the payer.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef OPENSEED_BUYER_WALLET_H
#define OPENSEED_BUYER_WALLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/chain.h"
#include "openseed/credential.h"
#include "openseed/err.h"
#include "openseed/infer.h"
#include "openseed/log.h"
#include "openseed/x402.h"

#include "bdb.h"

typedef struct by_wallet by_wallet;

typedef struct by_wallet_config {
    os_chain *chain;         /* borrowed */
    os_chain_signer *payer;  /* borrowed: the wallet, pays deposits and gas */
    const char *db_path;     /* buyer.db; created 0600 */
    uint64_t chain_id;
    uint8_t escrow[20];
    uint8_t usdc[20];
    uint64_t deposit;         /* micro-USDC per new channel and per top-up */
    uint64_t topup_below;     /* top up when deposit - committed < this; 0 = deposit / 4 */
    uint64_t budget_request;  /* micro-USDC; 0 = no cap */
    uint64_t budget_day;
    uint64_t budget_channel;
    bool open_with_authorization; /* one transaction (EIP-3009) instead of approve + open */
    const os_logger *log;     /* borrowed; NULL = default */
} by_wallet_config;

/* Opens buyer.db and loads the stored channels (not yet re-read from the chain). */
OS_WUR os_err by_wallet_new(by_wallet **out, const by_wallet_config *cfg);
/* Re-reads every stored channel from the chain (at start); completes or drops unconfirmed opens. */
OS_WUR os_err by_wallet_recover(by_wallet *w);
void by_wallet_free(by_wallet *w);
/* Gives the wallet the payer's private key (copied into guarded memory), which signs the EIP-3009
 * authorization of openWithAuthorization; without it channels open with approve + open. Call
 * before the first by_wallet_pay. OS_ERR_INVALID when priv is not cfg->payer's key. */
OS_WUR os_err by_wallet_set_payer_key(by_wallet *w, const uint8_t priv[32]);

/* One request's payment. Fill with by_wallet_pay; end with by_wallet_done exactly once. */
typedef struct by_payment {
    uint8_t channel_id[32];
    uint8_t seller[20];
    uint64_t estimate;
    uint64_t cumulative; /* the voucher's */
    uint64_t nonce;
    uint64_t request_id; /* the ledger row */
    char *payment;       /* PAYMENT-SIGNATURE value, malloc'd */
    char credential[OS_CRED_HEADER_LEN + 1];
} by_payment;

/* Why a payment was refused. */
typedef enum by_refusal {
    BY_REFUSE_NONE = 0,
    BY_REFUSE_BUDGET,     /* a budget cap (402 to the client) */
    BY_REFUSE_CHAIN,      /* the channel could not be opened or topped up (502) */
    BY_REFUSE_CHAIN_DOWN, /* the same, the chain's node not answering (503 chain_unavailable) */
    BY_REFUSE_CHANNEL,    /* the channel is closing or closed (try another seller) */
    BY_REFUSE_SELLER,     /* a 402 invoice this buyer will not accept (try another seller) */
} by_refusal;

/*
 * Gets the channel to seller (opening or topping it up as needed: this may take a transaction's
 * time) and signs the voucher for a request of `estimate` micro-USDC whose envelope hashes to mh.
 * service and api are recorded in the ledger. On refusal *why gets one line for the client and
 * *kind says which.
 */
OS_WUR os_err by_wallet_pay(by_wallet *w, by_payment *p, by_refusal *kind, char *why,
                            size_t whycap, const uint8_t seller[20], const char *service,
                            const char *api, uint64_t estimate, const uint8_t mh[32]);

/* After the seller answered 402 with invoice req: checks and adopts it and re-signs p (new nonce,
 * new credential) for the same request (estimate, mh). Refusals as by_wallet_pay. */
OS_WUR os_err by_wallet_repay(by_wallet *w, by_payment *p, by_refusal *kind, char *why,
                              size_t whycap, const os_x402_requirement *req,
                              const uint8_t mh[32]);

/* How a paid request ended. f: the closing fields when they arrived (consumed and cost are taken
 * from them), NULL when they did not (the reservation is released; the next 402 tells the rest).
 * outcome: "ok", "upstream_error", "seller_error", "cancelled", "failed". Frees p->payment. */
void by_wallet_done(by_wallet *w, by_payment *p, const os_infer_final *f, const char *outcome,
                    uint64_t latency_ms, uint64_t ttft_ms);

/*
 * Management: opens a channel to seller now, as the first pay would (fresh keys, row committed
 * first, through the seller's slot so it cannot race a pay), with amount micro-USDC (0 = the
 * configured deposit; above budget_channel: OS_ERR_RANGE). channel_id gets the new channel's id,
 * or with OS_ERR_EXISTS the id of the open channel this seller already has. A channel that is
 * closing is replaced for new requests. Waits for the transaction; chain failures as
 * by_wallet_pay's (the reason in *why).
 */
OS_WUR os_err by_wallet_open(by_wallet *w, uint8_t channel_id[32], const uint8_t seller[20],
                             uint64_t amount, char *why, size_t whycap);
/* Management: adds amount (> 0) micro-USDC to an open channel (approve + topUp), within
 * budget_channel (OS_ERR_RANGE). OS_ERR_NOTFOUND for an unknown channel, OS_ERR_INVALID for one
 * not open. Waits for the transaction. */
OS_WUR os_err by_wallet_topup(by_wallet *w, const uint8_t channel_id[32], uint64_t amount,
                              char *why, size_t whycap);
/* Management: payer's requestClose on a channel, and withdraw after the grace. */
OS_WUR os_err by_wallet_close(by_wallet *w, const uint8_t channel_id[32], char *why,
                              size_t whycap);
OS_WUR os_err by_wallet_withdraw(by_wallet *w, const uint8_t channel_id[32], char *why,
                                 size_t whycap);

/* {"channels":[{channel_id, seller, deposit, consumed, authorized, nonce, state, opened_tx,
 * remaining}]}: amounts as decimal strings, no secrets. */
json_t *by_wallet_channels_json(by_wallet *w);
/* {"requests":[{id, seller, channel_id, service, api, estimate, cost, input_tokens,
 * cached_tokens, output_tokens, latency_ms, ttft_ms, outcome, at, finished_at}],"vouchers":[{
 * channel_id, nonce, cumulative, at}],"total","limit","offset"} newest first, at most limit of
 * each. */
json_t *by_wallet_ledger_json(by_wallet *w, unsigned limit);
/* The same for one page of the requests that match q (bdb.h: by_bdb_ledger_query_json). The
 * caller owns the result; NULL on failure. */
json_t *by_wallet_ledger_query_json(by_wallet *w, const by_ledger_query *q);
/* {"today":{"spent","in_flight","budget"},"total":{"spent","deposited","requests"},
 * "per_seller":[{seller, spent, requests}],"per_day":[{day "YYYY-MM-DD", spent, requests,
 * input_tokens, output_tokens}] (the last 30 UTC days with finished requests, newest first),
 * "per_service":[{service, spent, requests, input_tokens, output_tokens}]}: per_day and
 * per_service sum the finished requests' costs (adjustments learnt from invoices are in total and
 * per_seller only). */
json_t *by_wallet_spend_json(by_wallet *w);
/* Spending over time up to now: `points` buckets of `step` seconds (bdb.h: by_bdb_series). The
 * caller owns the result; NULL on failure or for arguments out of range. */
json_t *by_wallet_spend_series_json(by_wallet *w, uint64_t step, unsigned points);

#endif
