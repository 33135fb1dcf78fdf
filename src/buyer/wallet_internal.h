/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What wallet.c (lifetime, views), wallet_pay.c (vouchers, budgets, invoices) and wallet_chain.c
 * (opening, topping up, re-reading, closing channels on chain) share: the wallet and channel
 * structures and the lock order.
 *
 * Lock order (outer first): fund_mu (held across approve + open/topUp transactions, so two
 * funding moves never overwrite each other's allowance) -> a seller slot's mu -> a channel's mu ->
 * the wallet's mu (channel and slot lists, the day's counters) -> buyer.db's own mutex. No
 * transaction is sent and no chain read made while a slot's, a channel's or the wallet's mutex is
 * held: a slot is marked busy instead (one open or re-read per seller at a time, the others wait
 * on its condition variable), and a channel is marked `topping` during its top-up.
 *
 * Channels are never freed before the wallet: a channel whose open never happened is marked
 * dropped (its row deleted and its secrets wiped), so pointers taken from a snapshot stay valid.
 */
#ifndef OPENSEED_BUYER_WALLET_INTERNAL_H
#define OPENSEED_BUYER_WALLET_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "openseed/credential.h"
#include "openseed/escrow.h"

#include "bdb.h"
#include "wallet.h"

#define BY_MAX_TIMEOUT_S 300u     /* maxTimeoutSeconds in PAYMENT-SIGNATURE's accepted */
#define BY_OPEN_AUTH_VALID_S 3600 /* EIP-3009 authorization lifetime for openWithAuthorization */
#define BY_WHY_MAX 192
#define BY_NONCE_POOL 64 /* credential proof nonces kept ready (a burst of 64 requests) */
#define BY_TOPUP_BACKOFF_MS 30000 /* no new top-up attempt this soon after one failed */

typedef struct by_chan {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a top-up finished */
    /* fixed once loaded (secrets wiped when dropped, under the seller slot's busy flag) */
    uint8_t id[32];
    uint8_t seller[20];
    uint8_t signer[20];
    uint8_t commitment[32];
    uint8_t *key;         /* channel signer key: sodium_malloc'd, read-only */
    os_cred_secret *cred; /* identity secret (sodium memory) */
    int64_t created_at;
    /* under mu */
    by_chan_state state;
    bool dropped;           /* the open never happened: row deleted, secrets wiped */
    bool verified;          /* state re-read from the chain since load (or opened by us) */
    bool topping;           /* a top-up transaction is under way */
    int64_t topup_after_ms; /* after a failed top-up, none before this (monotonic) */
    uint64_t deposit;
    uint64_t consumed;   /* the seller's, as last reported */
    uint64_t inflight;   /* estimates of this channel's requests in flight */
    uint64_t authorized; /* highest cumulative signed */
    uint64_t nonce;      /* last nonce signed */
    uint64_t close_at;
    uint64_t n_inflight;
    bool has_opened_tx;
    uint8_t opened_tx[32];
} by_chan;

typedef struct by_slot {
    uint8_t seller[20];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool busy;         /* an open, a resolution or a re-read of this seller's channel runs */
    uint64_t gen;      /* busy periods finished */
    uint64_t fail_gen; /* the last one that failed */
    char last_why[BY_WHY_MAX];
    by_refusal last_kind; /* its kind: BY_REFUSE_CHAIN or BY_REFUSE_CHAIN_DOWN */
    by_chan *cur;         /* the channel new requests use; NULL: none yet */
} by_slot;

struct by_wallet {
    by_wallet_config cfg;
    const os_logger *log;
    by_bdb *db;
    uint8_t payer[20];
    uint8_t domain[32];       /* the escrow's EIP-712 domain (vouchers) */
    uint8_t token_domain[32]; /* USDC's (EIP-3009) */
    uint8_t *payer_key;       /* optional, sodium_malloc'd: signs openWithAuthorization */
    os_cred_pool *nonces;     /* credential proof nonces made ahead of the requests */
    pthread_mutex_t fund_mu;
    pthread_mutex_t mu;
    by_chan **chans;
    size_t n_chans, cap_chans;
    by_slot **slots;
    size_t n_slots, cap_slots;
    uint64_t day;          /* UTC day of day_spent */
    uint64_t day_spent;    /* costs and adjustments booked today */
    uint64_t inflight_all; /* estimates of every request in flight */
};

/* ---- wallet.c, wallet_pay.c ---- */

/* A new channel from a row (secrets copied into guarded memory; cred taken when non-NULL, else
 * imported from row->cred_secret). OS_ERR_INVALID when the keys do not match the row's signer
 * and commitment. */
OS_WUR os_err by_w_chan_new(by_chan **out, const by_bdb_channel *row, os_cred_secret *cred);
/* Destroys a channel that never made it into the wallet's list. NULL-safe. */
void by_w_chan_free(by_chan *ch);
/* Wipes a channel's secrets (a dropped channel). Caller holds the slot busy. */
void by_w_chan_wipe(by_chan *ch);
/* Adds ch to the wallet's list. */
OS_WUR os_err by_w_chan_add(by_wallet *w, by_chan *ch);
/* The slot of seller, made if missing; NULL on allocation failure. */
by_slot *by_w_slot_get(by_wallet *w, const uint8_t seller[20]);
/* The channel with id, or NULL. */
by_chan *by_w_chan_find(by_wallet *w, const uint8_t id[32]);
/* Starts a new day's count at midnight UTC. w->mu held. */
void by_w_day_roll_locked(by_wallet *w);
/* A copy of the channel list (caller frees the array, not the channels). */
by_chan **by_w_snapshot(by_wallet *w, size_t *n);
/* UTC day number now. */
uint64_t by_w_today(void);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t by_w_mono_ms(void);
/* Logs msg with the channel's id (and a key=value when key is non-NULL). */
void by_w_log(const by_wallet *w, os_log_level lvl, const char *msg, const uint8_t id[32],
              const char *key, const char *val);

/* ---- wallet_chain.c ---- */

/* Opens a channel to seller with a fresh signer key and credential (row committed as opening
 * first), funded with amount (0 = cfg.deposit, cut to budget_channel). OS_OK: *out is the open channel, added to the wallet. On failure *out is non-NULL only
 * when the open may still have happened (the row stays opening, for by_w_resolve). */
OS_WUR os_err by_w_open(by_wallet *w, by_chan **out, const uint8_t seller[20], uint64_t amount,
                        char *why, size_t whycap);
/* Tops ch up by amount; *deposit gets the new total. No lock held by the caller. */
OS_WUR os_err by_w_topup(by_wallet *w, by_chan *ch, uint64_t amount, uint64_t *deposit, char *why,
                         size_t whycap);
/* Looks an opening channel up on chain: completes it (open, closing or closed as the chain says)
 * or drops it. OS_ERR_TIMEOUT when it is not on chain but the payer has transactions pending. */
OS_WUR os_err by_w_resolve(by_wallet *w, by_chan *ch, char *why, size_t whycap);
/* Re-reads an open or closing channel from the chain and stores what it says. */
OS_WUR os_err by_w_verify(by_wallet *w, by_chan *ch, char *why, size_t whycap);

#endif
