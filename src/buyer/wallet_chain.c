/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wallet's moves on chain (wallet.h): opening a channel (row committed as "opening" with its
 * fresh keys before any transaction, then approve + open or one openWithAuthorization, and the
 * channel used only after the receipt), topping up, and reading channels back after a restart
 * (an "opening" row is completed when the chain has the channel, dropped when it does not and the
 * payer has nothing pending). Every function here is called without a slot, channel or wallet
 * mutex held (wallet_internal.h), since each waits for the chain.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/money.h"
#include "openseed/secp.h"

#include "wallet_internal.h"

/* A failure after which the transaction may still be mined: the node was not heard from. */
static bool ambiguous(os_err e, const os_chain_error *err)
{
    return e == OS_ERR_TIMEOUT || err->kind == OS_CHAIN_FAIL_TRANSPORT ||
           err->kind == OS_CHAIN_FAIL_HTTP || err->kind == OS_CHAIN_FAIL_RESPONSE;
}

/* The event of kind for id in a receipt, if any. */
static bool receipt_event(const by_wallet *w, const os_chain_receipt *rc, os_escrow_event_kind kind,
                          const uint8_t id[32], os_escrow_event *out)
{
    for (size_t i = 0; rc != NULL && i < rc->n_logs; i++)
        if (os_escrow_decode_event(out, &rc->logs[i], w->cfg.escrow) == OS_OK &&
            out->kind == kind && memcmp(out->channel_id, id, 32) == 0)
            return true;
    return false;
}

/* Whether the payer has transactions the node holds but has not mined. */
static os_err payer_pending(by_wallet *w, bool *pending)
{
    os_chain_error err;
    uint64_t pend = 0, latest = 0;
    char hex[OS_HEX_LEN(20)];
    json_t *res = NULL;
    os_err e;

    if (os_hex_encode(hex, sizeof(hex), w->payer, 20, 1) != OS_OK)
        return OS_ERR_INTERNAL;
    e = os_chain_nonce(w->cfg.chain, &pend, &err, w->payer);
    if (e == OS_OK)
        e = os_chain_rpc(w->cfg.chain, &res, &err, "eth_getTransactionCount",
                         json_pack("[ss]", hex, "latest"));
    if (e == OS_OK)
        e = os_chain_quantity_u64(&latest, json_string_value(res));
    json_decref(res);
    if (e == OS_OK)
        *pending = pend > latest;
    return e;
}

/* ---- opening ------------------------------------------------------------------------------ */

/* Sends the funding of o: one openWithAuthorization, or approve + open. *approve_failed tells
 * that nothing reached the escrow. */
static os_err fund_open(by_wallet *w, os_chain_receipt **rc, os_chain_error *err,
                        bool *approve_failed, const os_escrow_open_args *o)
{
    os_escrow_open_auth a;
    os_err e;

    *approve_failed = false;
    pthread_mutex_lock(&w->fund_mu);
    if (w->cfg.open_with_authorization && w->payer_key != NULL) {
        /* no allowance involved: the authorization names this channel alone */
        uint64_t now = (uint64_t)time(NULL);
        e = os_escrow_sign_open_auth(&a, NULL, o, w->payer_key, w->cfg.chain_id, w->cfg.escrow,
                                     w->token_domain, 0, now + BY_OPEN_AUTH_VALID_S);
        pthread_mutex_unlock(&w->fund_mu);
        if (e != OS_OK) {
            os_chain_err_reset(err);
            os_chain_err_set(err, OS_CHAIN_FAIL_NONE, "cannot sign the open authorization");
            *approve_failed = true;
        } else {
            e = os_escrow_open_with_auth(w->cfg.payer, rc, err, w->cfg.escrow, o, &a);
        }
        os_wipe(&a, sizeof(a));
        return e;
    }
    e = os_erc20_approve(w->cfg.payer, NULL, err, w->cfg.usdc, w->cfg.escrow, o->amount);
    if (e != OS_OK)
        *approve_failed = true;
    else
        e = os_escrow_open(w->cfg.payer, rc, err, w->cfg.escrow, o);
    pthread_mutex_unlock(&w->fund_mu);
    return e;
}

/* Whether the chain's view of a channel is the one we made. */
static bool chain_matches(const by_wallet *w, const by_chan *ch, const os_channel_state *st)
{
    return memcmp(st->payer, w->payer, 20) == 0 && memcmp(st->seller, ch->seller, 20) == 0 &&
           memcmp(st->signer, ch->signer, 20) == 0 &&
           memcmp(st->commitment, ch->commitment, 32) == 0;
}

static by_chan_state state_of(const os_channel_state *st)
{
    return st->closed ? BY_CHAN_CLOSED : st->close_at != 0 ? BY_CHAN_CLOSING : BY_CHAN_OPEN;
}

/* Records that ch is open on chain with deposit (and what else the chain says), in buyer.db and
 * in memory. */
static os_err complete_open(by_wallet *w, by_chan *ch, const os_channel_state *st, uint64_t deposit,
                            const uint8_t *tx)
{
    by_chan_state s = st != NULL ? state_of(st) : BY_CHAN_OPEN;
    uint64_t close_at = st != NULL ? st->close_at : 0;
    os_err e = by_bdb_channel_opened(w->db, ch->id, deposit, tx);

    if (e == OS_OK && s != BY_CHAN_OPEN)
        e = by_bdb_channel_set(w->db, ch->id, s, deposit, close_at,
                               st != NULL ? st->last_nonce : 0);
    if (e != OS_OK)
        by_w_log(w, OS_LOG_ERROR, "cannot record an opened channel; recovery will complete it",
                 ch->id, "error", os_strerror(e));
    pthread_mutex_lock(&ch->mu);
    ch->state = s;
    ch->deposit = deposit;
    ch->close_at = close_at;
    ch->verified = true;
    if (st != NULL && st->last_nonce > ch->nonce)
        ch->nonce = st->last_nonce;
    if (tx != NULL) {
        ch->has_opened_tx = true;
        memcpy(ch->opened_tx, tx, 32);
    }
    pthread_mutex_unlock(&ch->mu);
    return e;
}

/* Deletes the row of a channel that was never opened and wipes its keys. */
static void drop(by_wallet *w, by_chan *ch)
{
    os_err e = by_bdb_channel_drop(w->db, ch->id);
    if (e != OS_OK)
        by_w_log(w, OS_LOG_ERROR, "cannot delete a channel that never opened", ch->id, "error",
                 os_strerror(e));
    pthread_mutex_lock(&ch->mu);
    ch->dropped = true;
    ch->state = BY_CHAN_CLOSED;
    pthread_mutex_unlock(&ch->mu);
    by_w_chan_wipe(ch);
}

os_err by_w_open(by_wallet *w, by_chan **out, const uint8_t seller[20], uint64_t amount,
                 char *why, size_t whycap)
{
    by_bdb_channel *row;
    os_cred_secret *cred = NULL;
    os_escrow_open_args o;
    os_chain_receipt *rc = NULL;
    os_chain_error err;
    os_escrow_event ev;
    os_channel_state st;
    by_chan *ch = NULL;
    bool approve_failed;
    os_err e;

    *out = NULL;
    if (amount == 0)
        amount = w->cfg.deposit;
    if (w->cfg.budget_channel != 0 && amount > w->cfg.budget_channel)
        amount = w->cfg.budget_channel;
    row = sodium_malloc(sizeof(*row));
    if (row == NULL) {
        snprintf(why, whycap, "out of memory");
        return OS_ERR_NOMEM;
    }
    memset(row, 0, sizeof(*row));
    memcpy(row->seller, seller, 20);
    randombytes_buf(row->salt, sizeof(row->salt));
    e = os_secp_keygen(row->signer_key);
    if (e == OS_OK)
        e = os_secp_address(row->signer, row->signer_key);
    if (e == OS_OK)
        e = os_cred_keygen(&cred);
    if (e == OS_OK) {
        os_cred_secret_export(row->cred_secret, cred);
        os_cred_commit(row->commitment, cred);
        os_escrow_channel_id(row->id, w->cfg.chain_id, w->cfg.escrow, w->payer, seller, row->salt);
        row->state = BY_CHAN_OPENING;
        row->created_at = (int64_t)time(NULL);
        e = by_w_chan_new(&ch, row, cred); /* takes cred */
        cred = NULL;
    }
    if (e != OS_OK) {
        os_cred_secret_free(cred);
        sodium_free(row);
        snprintf(why, whycap, "cannot make the channel keys");
        return e;
    }
    /* the keys are on disk before any money moves, so no crash can strand a funded channel */
    e = by_bdb_channel_insert(w->db, row);
    memset(&o, 0, sizeof(o));
    memcpy(o.seller, seller, 20);
    memcpy(o.signer, row->signer, 20);
    memcpy(o.commitment, row->commitment, 32);
    memcpy(o.salt, row->salt, 32);
    o.amount = amount;
    sodium_free(row);
    if (e != OS_OK) {
        by_w_log(w, OS_LOG_ERROR, "cannot record a new channel", ch->id, "error", os_strerror(e));
        by_w_chan_free(ch); /* not in the wallet's list */
        snprintf(why, whycap, "cannot record the new channel in buyer.db");
        return OS_ERR_IO;
    }
    if ((e = by_w_chan_add(w, ch)) != OS_OK) {
        drop(w, ch);
        by_w_chan_free(ch);
        snprintf(why, whycap, "out of memory");
        return e;
    }

    os_chain_err_reset(&err);
    e = fund_open(w, &rc, &err, &approve_failed, &o);
    if (e == OS_OK) {
        uint64_t deposit = amount;
        if (receipt_event(w, rc, OS_ESCROW_EV_OPENED, ch->id, &ev))
            deposit = ev.deposit;
        (void)complete_open(w, ch, NULL, deposit, rc->tx_hash);
        os_chain_receipt_free(rc);
        {
            os_log_event lev;
            char cid[OS_HEX_LEN(32)], sel[OS_ADDRESS_STR_LEN];
            if (os_log_begin(&lev, w->log, OS_LOG_INFO, "channel opened")) {
                if (os_hex_encode(cid, sizeof(cid), ch->id, 32, 1) == OS_OK)
                    os_log_kv(&lev, "channel", "%s", cid);
                os_eip55_format(sel, seller);
                os_log_kv(&lev, "seller", "%s", sel);
                os_log_kv(&lev, "deposit", "%" PRIu64, deposit);
                os_log_kv(&lev, "with_authorization", "%s",
                          w->cfg.open_with_authorization && w->payer_key != NULL ? "true"
                                                                                 : "false");
                os_log_end(&lev);
            }
        }
        *out = ch;
        return OS_OK;
    }
    os_chain_receipt_free(rc);
    snprintf(why, whycap, "cannot open a channel: %s", err.message);
    by_w_log(w, OS_LOG_WARN, "channel open failed", ch->id, "error", err.message);
    if (approve_failed || !ambiguous(e, &err)) {
        drop(w, ch); /* refused or reverted: nothing happened on chain */
        return e;
    }
    /* the node may have the open: ask the chain now, else leave the row for by_w_resolve */
    if (os_escrow_get_channel(w->cfg.chain, &st, &err, w->cfg.escrow, ch->id) == OS_OK &&
        chain_matches(w, ch, &st)) {
        (void)complete_open(w, ch, &st, st.deposit, NULL);
        *out = ch;
        return OS_OK;
    }
    *out = ch; /* still "opening" */
    return e;
}

os_err by_w_resolve(by_wallet *w, by_chan *ch, char *why, size_t whycap)
{
    os_channel_state st;
    os_chain_error err;
    bool pending = false;
    os_err e;

    os_chain_err_reset(&err);
    e = os_escrow_get_channel(w->cfg.chain, &st, &err, w->cfg.escrow, ch->id);
    if (e == OS_OK) {
        if (!chain_matches(w, ch, &st)) {
            /* an id we computed but a channel we did not make: our keys are worthless for it */
            by_w_log(w, OS_LOG_ERROR, "an opening channel's id holds another channel; dropped",
                     ch->id, NULL, NULL);
            drop(w, ch);
            return OS_OK;
        }
        by_w_log(w, OS_LOG_INFO, "completed a channel opened before a restart", ch->id, NULL, NULL);
        return complete_open(w, ch, &st, st.deposit, NULL);
    }
    if (e != OS_ERR_NOTFOUND) {
        snprintf(why, whycap, "cannot read the channel from the chain: %s", err.message);
        return OS_ERR_NETWORK;
    }
    if ((e = payer_pending(w, &pending)) != OS_OK) {
        snprintf(why, whycap, "cannot read the wallet's pending transactions");
        return OS_ERR_NETWORK;
    }
    if (pending) {
        snprintf(why, whycap, "an earlier channel open may still be pending; retry shortly");
        by_w_log(w, OS_LOG_WARN, "opening channel not on chain but transactions are pending",
                 ch->id, NULL, NULL);
        return OS_ERR_TIMEOUT;
    }
    by_w_log(w, OS_LOG_INFO, "dropped a channel whose open never reached the chain", ch->id, NULL,
             NULL);
    drop(w, ch);
    return OS_OK;
}

os_err by_w_verify(by_wallet *w, by_chan *ch, char *why, size_t whycap)
{
    os_channel_state st;
    os_chain_error err;
    by_chan_state s;
    os_err e;

    os_chain_err_reset(&err);
    e = os_escrow_get_channel(w->cfg.chain, &st, &err, w->cfg.escrow, ch->id);
    if (e == OS_ERR_NOTFOUND) {
        memset(&st, 0, sizeof(st));
        st.closed = true; /* gone (a reset devnet): never pay into it */
        by_w_log(w, OS_LOG_ERROR, "a stored channel is not on chain; marked closed", ch->id, NULL,
                 NULL);
    } else if (e != OS_OK) {
        snprintf(why, whycap, "cannot read the channel from the chain: %s", err.message);
        return OS_ERR_NETWORK;
    } else if (!chain_matches(w, ch, &st)) {
        by_w_log(w, OS_LOG_ERROR, "a stored channel differs on chain; marked closed", ch->id, NULL,
                 NULL);
        st.closed = true;
    }
    s = state_of(&st);
    pthread_mutex_lock(&ch->mu);
    ch->state = s;
    ch->deposit = st.deposit;
    ch->close_at = st.close_at;
    if (st.last_nonce > ch->nonce)
        ch->nonce = st.last_nonce;
    ch->verified = true;
    pthread_mutex_unlock(&ch->mu);
    e = by_bdb_channel_set(w->db, ch->id, s, st.deposit, st.close_at, st.last_nonce);
    if (e != OS_OK) {
        by_w_log(w, OS_LOG_ERROR, "cannot store a channel's chain state", ch->id, "error",
                 os_strerror(e));
        snprintf(why, whycap, "cannot store the channel's state in buyer.db");
    }
    return e;
}

/* ---- topping up --------------------------------------------------------------------------- */

os_err by_w_topup(by_wallet *w, by_chan *ch, uint64_t amount, uint64_t *deposit, char *why,
                  size_t whycap)
{
    os_chain_receipt *rc = NULL;
    os_chain_error err;
    os_escrow_event ev;
    uint64_t before, after;
    os_err e;

    pthread_mutex_lock(&ch->mu);
    before = ch->deposit;
    pthread_mutex_unlock(&ch->mu);
    os_chain_err_reset(&err);
    pthread_mutex_lock(&w->fund_mu);
    e = os_erc20_approve(w->cfg.payer, NULL, &err, w->cfg.usdc, w->cfg.escrow, amount);
    if (e == OS_OK)
        e = os_escrow_top_up(w->cfg.payer, &rc, &err, w->cfg.escrow, ch->id, amount);
    pthread_mutex_unlock(&w->fund_mu);
    if (e != OS_OK) {
        os_chain_receipt_free(rc);
        snprintf(why, whycap, "cannot top the channel up: %s", err.message);
        by_w_log(w, OS_LOG_WARN, "top-up failed", ch->id, "error", err.message);
        return e;
    }
    if (receipt_event(w, rc, OS_ESCROW_EV_TOPPED_UP, ch->id, &ev))
        after = ev.deposit;
    else if (os_money_add(&after, before, amount) != OS_OK)
        after = before;
    e = by_bdb_topup(w->db, ch->id, amount, after, rc->tx_hash);
    os_chain_receipt_free(rc);
    if (e != OS_OK)
        by_w_log(w, OS_LOG_ERROR, "cannot record a top-up", ch->id, "error", os_strerror(e));
    {
        os_log_event lev;
        char cid[OS_HEX_LEN(32)];
        if (os_log_begin(&lev, w->log, OS_LOG_INFO, "channel topped up")) {
            if (os_hex_encode(cid, sizeof(cid), ch->id, 32, 1) == OS_OK)
                os_log_kv(&lev, "channel", "%s", cid);
            os_log_kv(&lev, "amount", "%" PRIu64, amount);
            os_log_kv(&lev, "deposit", "%" PRIu64, after);
            os_log_end(&lev);
        }
    }
    *deposit = after;
    return OS_OK; /* on chain: the money is in, whatever buyer.db said */
}

/* ---- recovery, close, withdraw ------------------------------------------------------------ */

/* Waits for the slot to be free and marks it busy. */
static void slot_enter(by_slot *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->busy)
        pthread_cond_wait(&s->cv, &s->mu);
    s->busy = true;
    pthread_mutex_unlock(&s->mu);
}

/* Ends a busy period; ch becomes the slot's channel when the slot has no usable one. */
static void slot_leave(by_slot *s, by_chan *ch)
{
    pthread_mutex_lock(&s->mu);
    s->busy = false;
    s->gen++;
    if (ch != NULL) {
        bool take = s->cur == NULL;
        if (!take) {
            pthread_mutex_lock(&s->cur->mu);
            take = s->cur->dropped || s->cur->state == BY_CHAN_CLOSED;
            pthread_mutex_unlock(&s->cur->mu);
        }
        if (take) {
            pthread_mutex_lock(&ch->mu);
            take = !ch->dropped && ch->state != BY_CHAN_CLOSED;
            pthread_mutex_unlock(&ch->mu);
        }
        if (take)
            s->cur = ch;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

os_err by_wallet_recover(by_wallet *w)
{
    char why[BY_WHY_MAX];
    by_chan **list;
    size_t n;
    os_err first = OS_OK;

    if (w == NULL)
        return OS_ERR_INVALID;
    list = by_w_snapshot(w, &n);
    if (list == NULL && n > 0)
        return OS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        by_chan *ch = list[i];
        by_slot *s = by_w_slot_get(w, ch->seller);
        by_chan_state st;
        bool skip;
        os_err e = OS_OK;

        if (s == NULL) {
            first = first != OS_OK ? first : OS_ERR_NOMEM;
            continue;
        }
        slot_enter(s);
        pthread_mutex_lock(&ch->mu);
        st = ch->state;
        skip = ch->dropped || st == BY_CHAN_CLOSED;
        pthread_mutex_unlock(&ch->mu);
        why[0] = '\0';
        if (!skip)
            e = st == BY_CHAN_OPENING ? by_w_resolve(w, ch, why, sizeof(why))
                                      : by_w_verify(w, ch, why, sizeof(why));
        slot_leave(s, ch);
        if (e != OS_OK) {
            by_w_log(w, OS_LOG_WARN, "channel not re-read from the chain", ch->id, "error", why);
            if (first == OS_OK)
                first = e;
        }
    }
    free(list);
    return first;
}

os_err by_wallet_close(by_wallet *w, const uint8_t channel_id[32], char *why, size_t whycap)
{
    char dummy[8];
    os_chain_receipt *rc = NULL;
    os_chain_error err;
    os_escrow_event ev;
    by_chan *ch;
    by_chan_state st;
    uint64_t close_at = 0;
    os_err e;

    if (why == NULL || whycap == 0) {
        why = dummy;
        whycap = sizeof(dummy);
    }
    why[0] = '\0';
    if (w == NULL || channel_id == NULL) {
        snprintf(why, whycap, "internal error");
        return OS_ERR_INVALID;
    }
    if ((ch = by_w_chan_find(w, channel_id)) == NULL) {
        snprintf(why, whycap, "no such channel");
        return OS_ERR_NOTFOUND;
    }
    pthread_mutex_lock(&ch->mu);
    st = ch->dropped ? BY_CHAN_CLOSED : ch->state;
    pthread_mutex_unlock(&ch->mu);
    if (st != BY_CHAN_OPEN) {
        snprintf(why, whycap, "the channel is %s", ch->dropped ? "gone" : by_chan_state_name(st));
        return OS_ERR_INVALID;
    }
    os_chain_err_reset(&err);
    e = os_escrow_request_close(w->cfg.payer, &rc, &err, w->cfg.escrow, ch->id);
    if (e != OS_OK) {
        os_chain_receipt_free(rc);
        snprintf(why, whycap, "requestClose failed: %s", err.message);
        return e;
    }
    if (receipt_event(w, rc, OS_ESCROW_EV_CLOSE_REQUESTED, ch->id, &ev))
        close_at = ev.close_at;
    os_chain_receipt_free(rc);
    if (close_at == 0) {
        os_channel_state cs;
        if (os_escrow_get_channel(w->cfg.chain, &cs, &err, w->cfg.escrow, ch->id) == OS_OK)
            close_at = cs.close_at;
    }
    pthread_mutex_lock(&ch->mu);
    if (ch->state == BY_CHAN_OPEN)
        ch->state = BY_CHAN_CLOSING;
    ch->close_at = close_at;
    st = ch->state;
    {
        uint64_t dep = ch->deposit;
        pthread_mutex_unlock(&ch->mu);
        e = by_bdb_channel_set(w->db, ch->id, st, dep, close_at, 0);
    }
    if (e != OS_OK)
        by_w_log(w, OS_LOG_ERROR, "cannot record a close request", ch->id, "error", os_strerror(e));
    by_w_log(w, OS_LOG_INFO, "channel close requested", ch->id, NULL, NULL);
    return OS_OK;
}

os_err by_wallet_withdraw(by_wallet *w, const uint8_t channel_id[32], char *why, size_t whycap)
{
    char dummy[8];
    os_chain_receipt *rc = NULL;
    os_channel_state cs;
    os_chain_error err;
    by_chan *ch;
    os_err e;

    if (why == NULL || whycap == 0) {
        why = dummy;
        whycap = sizeof(dummy);
    }
    why[0] = '\0';
    if (w == NULL || channel_id == NULL) {
        snprintf(why, whycap, "internal error");
        return OS_ERR_INVALID;
    }
    if ((ch = by_w_chan_find(w, channel_id)) != NULL) {
        bool gone;
        pthread_mutex_lock(&ch->mu);
        gone = ch->dropped || ch->state == BY_CHAN_OPENING; /* not on chain (yet) */
        pthread_mutex_unlock(&ch->mu);
        if (gone)
            ch = NULL;
    }
    if (ch == NULL) {
        snprintf(why, whycap, "no such channel");
        return OS_ERR_NOTFOUND;
    }
    os_chain_err_reset(&err);
    e = os_escrow_get_channel(w->cfg.chain, &cs, &err, w->cfg.escrow, ch->id);
    if (e != OS_OK) {
        snprintf(why, whycap, "cannot read the channel from the chain: %s", err.message);
        return e == OS_ERR_NOTFOUND ? OS_ERR_NOTFOUND : OS_ERR_NETWORK;
    }
    if (!cs.closed) {
        if (cs.close_at == 0) {
            snprintf(why, whycap, "no close was requested on this channel");
            return OS_ERR_INVALID;
        }
        e = os_escrow_withdraw(w->cfg.payer, &rc, &err, w->cfg.escrow, ch->id);
        os_chain_receipt_free(rc);
        if (e != OS_OK) {
            snprintf(why, whycap, "withdraw failed: %s", err.message);
            return e;
        }
        cs.closed = true;
    } else {
        snprintf(why, whycap, "the channel was already closed");
    }
    pthread_mutex_lock(&ch->mu);
    ch->state = BY_CHAN_CLOSED;
    ch->close_at = cs.close_at;
    pthread_mutex_unlock(&ch->mu);
    e = by_bdb_channel_set(w->db, ch->id, BY_CHAN_CLOSED, cs.deposit, cs.close_at, cs.last_nonce);
    if (e != OS_OK)
        by_w_log(w, OS_LOG_ERROR, "cannot record a withdrawal", ch->id, "error", os_strerror(e));
    by_w_log(w, OS_LOG_INFO, "channel withdrawn", ch->id, NULL, NULL);
    return OS_OK;
}

/* ---- opening and topping up on command ---------------------------------------------------- */

/* Ends by_wallet_open's busy period: a new channel replaces the slot's when that one is not
 * usable any more (closing or gone), and a failure is told to the pays that waited, as the pay
 * path's own opens do. */
static void slot_leave_open(by_slot *s, by_chan *nc, os_err e, const char *why)
{
    pthread_mutex_lock(&s->mu);
    s->busy = false;
    s->gen++;
    if (nc != NULL) {
        bool take = s->cur == NULL;
        if (!take) {
            pthread_mutex_lock(&s->cur->mu);
            take = s->cur->dropped || s->cur->state != BY_CHAN_OPEN;
            pthread_mutex_unlock(&s->cur->mu);
        }
        if (take)
            s->cur = nc;
    }
    if (e != OS_OK) {
        s->fail_gen = s->gen;
        s->last_kind =
            e == OS_ERR_NETWORK || e == OS_ERR_TIMEOUT ? BY_REFUSE_CHAIN_DOWN : BY_REFUSE_CHAIN;
        snprintf(s->last_why, sizeof(s->last_why), "%s", why);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

os_err by_wallet_open(by_wallet *w, uint8_t channel_id[32], const uint8_t seller[20],
                      uint64_t amount, char *why, size_t whycap)
{
    char dummy[8], reason[BY_WHY_MAX] = "";
    by_slot *s;
    by_chan *c, *nc = NULL;
    by_chan_state st = BY_CHAN_CLOSED;
    bool verified = false;
    os_err e = OS_OK;

    if (why == NULL || whycap == 0) {
        why = dummy;
        whycap = sizeof(dummy);
    }
    why[0] = '\0';
    if (w == NULL || channel_id == NULL || seller == NULL) {
        snprintf(why, whycap, "internal error");
        return OS_ERR_INVALID;
    }
    if (w->cfg.budget_channel != 0 && amount > w->cfg.budget_channel) {
        snprintf(why, whycap, "budget_channel: the amount is above the per-channel cap");
        return OS_ERR_RANGE;
    }
    if ((s = by_w_slot_get(w, seller)) == NULL) {
        snprintf(why, whycap, "out of memory");
        return OS_ERR_NOMEM;
    }
    /* the pay path's slot: a pay for this seller waits for this open and then uses it */
    slot_enter(s);
    pthread_mutex_lock(&s->mu);
    c = s->cur;
    pthread_mutex_unlock(&s->mu);
    if (c != NULL) {
        pthread_mutex_lock(&c->mu);
        st = c->dropped ? BY_CHAN_CLOSED : c->state;
        verified = c->verified;
        pthread_mutex_unlock(&c->mu);
        /* one loaded from buyer.db is believed only once the chain confirmed it */
        if (st == BY_CHAN_OPENING)
            e = by_w_resolve(w, c, reason, sizeof(reason));
        else if (st == BY_CHAN_OPEN && !verified)
            e = by_w_verify(w, c, reason, sizeof(reason));
        if (e == OS_OK) {
            pthread_mutex_lock(&c->mu);
            st = c->dropped ? BY_CHAN_CLOSED : c->state;
            pthread_mutex_unlock(&c->mu);
        }
        if (e == OS_OK && st == BY_CHAN_OPEN) {
            memcpy(channel_id, c->id, 32);
            snprintf(why, whycap, "a channel to this seller is already open");
            slot_leave_open(s, NULL, OS_OK, "");
            return OS_ERR_EXISTS;
        }
    }
    if (e == OS_OK)
        e = by_w_open(w, &nc, seller, amount, reason, sizeof(reason));
    if (e == OS_OK)
        memcpy(channel_id, nc->id, 32);
    slot_leave_open(s, nc, e, reason);
    if (e != OS_OK)
        snprintf(why, whycap, "%s", reason);
    return e;
}

os_err by_wallet_topup(by_wallet *w, const uint8_t channel_id[32], uint64_t amount, char *why,
                       size_t whycap)
{
    char dummy[8];
    by_chan *ch;
    uint64_t dep, after, newdep = 0;
    os_err e;

    if (why == NULL || whycap == 0) {
        why = dummy;
        whycap = sizeof(dummy);
    }
    why[0] = '\0';
    if (w == NULL || channel_id == NULL || amount == 0) {
        snprintf(why, whycap, amount == 0 ? "the amount must be above zero" : "internal error");
        return OS_ERR_INVALID;
    }
    if ((ch = by_w_chan_find(w, channel_id)) == NULL) {
        snprintf(why, whycap, "no such channel");
        return OS_ERR_NOTFOUND;
    }
    pthread_mutex_lock(&ch->mu);
    /* one top-up per channel at a time, shared with the pay path's automatic ones */
    while (ch->topping)
        pthread_cond_wait(&ch->cv, &ch->mu);
    if (ch->dropped || ch->state != BY_CHAN_OPEN) {
        by_chan_state st = ch->state;
        bool gone = ch->dropped;
        pthread_mutex_unlock(&ch->mu);
        snprintf(why, whycap, "the channel is %s", gone ? "gone" : by_chan_state_name(st));
        return OS_ERR_INVALID;
    }
    dep = ch->deposit;
    if (os_money_add(&after, dep, amount) != OS_OK ||
        (w->cfg.budget_channel != 0 && after > w->cfg.budget_channel)) {
        pthread_mutex_unlock(&ch->mu);
        snprintf(why, whycap,
                 "budget_channel: a deposit of %" PRIu64 " + %" PRIu64
                 " micro-USDC is above the per-channel cap of %" PRIu64,
                 dep, amount, w->cfg.budget_channel);
        return OS_ERR_RANGE;
    }
    ch->topping = true;
    pthread_mutex_unlock(&ch->mu);
    e = by_w_topup(w, ch, amount, &newdep, why, whycap);
    pthread_mutex_lock(&ch->mu);
    ch->topping = false;
    if (e == OS_OK && newdep > ch->deposit)
        ch->deposit = newdep;
    if (e == OS_OK)
        ch->topup_after_ms = 0;
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    return e;
}
