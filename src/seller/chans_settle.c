/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Settlement for the channel cache (chans.c): choosing when a channel is worth claiming (its
 * claimable amount reaches the threshold, the settle interval passed with something unclaimed, or
 * the payer asked to close), redeeming the best stored voucher on the escrow, and recording every
 * attempt with its transaction hash and gas in seller.db. The background thread runs the automatic
 * pass; sl_chans_settle claims on demand. One claim at a time, under the settle lock, so a voucher
 * is never sent twice at once; a failed claim waits a few refresh periods before it is retried.
 */
#include "chans_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/ct.h"
#include "openseed/escrow.h"
#include "openseed/money.h"

#define RETRY_MIN_MS UINT64_C(1000) /* least wait before an automatic claim is retried */
#define RETRY_REFRESHES 4u          /* ... otherwise this many refresh periods */

/* A row as sl_ledger_settlements_json shows it. */
static json_t *settlement_json(const sl_settlement *s)
{
    char id[SL_CHANS_ID_HEX], tx[SL_CHANS_ID_HEX], cum[OS_MONEY_UNITS_LEN], amt[OS_MONEY_UNITS_LEN],
        gp[OS_MONEY_UNITS_LEN];
    id_hex(id, s->channel_id);
    id_hex(tx, s->tx_hash);
    if (os_money_format_units(cum, sizeof(cum), s->cumulative) != OS_OK ||
        os_money_format_units(amt, sizeof(amt), s->amount) != OS_OK ||
        os_money_format_units(gp, sizeof(gp), s->gas_price_wei) != OS_OK)
        return NULL;
    return json_pack(
        "{s:s, s:I, s:s, s:s, s:s?, s:I, s:s, s:s, s:s?, s:I}", "channel_id", id, "nonce",
        (json_int_t)(s->nonce > INT64_MAX ? INT64_MAX : s->nonce), "cumulative", cum, "amount", amt,
        "tx_hash", os_ct_is_zero(s->tx_hash, 32) ? NULL : tx, "gas_used",
        (json_int_t)(s->gas_used > INT64_MAX ? INT64_MAX : s->gas_used), "gas_price_wei", gp,
        "status", s->status, "error", s->error, "at", (json_int_t)(s->at_ms / 1000));
}

/* The Claimed event of channel id in a receipt. */
static bool receipt_claimed(const sl_chans *c, os_escrow_event *out, const os_chain_receipt *rc,
                            const uint8_t id[32])
{
    for (size_t i = 0; i < rc->n_logs; i++) {
        if (os_escrow_decode_event(out, &rc->logs[i], c->cfg.escrow) == OS_OK &&
            out->kind == OS_ESCROW_EV_CLAIMED && memcmp(out->channel_id, id, 32) == 0)
            return true;
    }
    return false;
}

static void log_claim(const sl_chans *c, const sl_settlement *s, bool ok)
{
    os_log_event ev;
    char tx[SL_CHANS_ID_HEX];
    if (!log_begin_chan(&ev, c, ok ? OS_LOG_INFO : OS_LOG_WARN, ok ? "claimed" : "claim failed",
                        s->channel_id))
        return;
    os_log_kv(&ev, "nonce", "%" PRIu64, s->nonce);
    os_log_kv(&ev, "cumulative", "%" PRIu64, s->cumulative);
    os_log_kv(&ev, "amount", "%" PRIu64, s->amount);
    os_log_kv(&ev, "status", "%s", s->status);
    if (!os_ct_is_zero(s->tx_hash, 32)) {
        id_hex(tx, s->tx_hash);
        os_log_kv(&ev, "tx", "%s", tx);
    }
    if (s->error != NULL)
        os_log_kv(&ev, "error", "%s", s->error);
    os_log_end(&ev);
}

/* Redeems v on ch and records the attempt. Settle lock held, no entry lock. */
static void claim(sl_chans *c, sl_chan_entry *ch, const os_voucher *v, uint64_t claimed_before,
                  json_t *rows)
{
    os_chain_receipt *rc = NULL;
    os_chain_error err;
    os_escrow_event ev;
    sl_settlement s;
    os_err e;
    uint64_t now;
    char msg[OS_CHAIN_MSG_LEN + 32];

    os_chain_err_reset(&err);
    memset(&s, 0, sizeof(s));
    memcpy(s.channel_id, ch->id, 32);
    s.nonce = v->nonce;
    s.cumulative = v->cumulative_amount;
    e = os_escrow_claim(c->cfg.signer, &rc, &err, c->cfg.escrow, v);
    if (rc != NULL) {
        memcpy(s.tx_hash, rc->tx_hash, 32);
        s.gas_used = rc->gas_used;
        s.gas_price_wei = rc->effective_gas_price;
    }
    now = mono_ms();
    if (e == OS_OK) {
        os_channel_state snap;
        s.status = "confirmed";
        if (receipt_claimed(c, &ev, rc, ch->id)) {
            s.amount = ev.amount;
            pthread_mutex_lock(&ch->mu);
            ch->st.claimed = u64_max(ch->st.claimed, ev.claimed);
            ch->st.last_nonce = u64_max(ch->st.last_nonce, v->nonce);
            ch->st.block = u64_max(ch->st.block, rc->block_number);
            ch->settle_mono = now;
            ch->retry_mono = 0;
            snap = ch->st;
            pthread_mutex_unlock(&ch->mu);
            sl_chans_store_(c, ch->id, 0, &snap);
        } else {
            /* no event to read: the claimed total tells what was paid */
            pthread_mutex_lock(&ch->mu);
            ch->settle_mono = now;
            ch->retry_mono = 0;
            pthread_mutex_unlock(&ch->mu);
            if (sl_chans_refresh_one_(c, ch) == OS_OK) {
                pthread_mutex_lock(&ch->mu);
                s.amount = ch->st.claimed > claimed_before ? ch->st.claimed - claimed_before : 0;
                pthread_mutex_unlock(&ch->mu);
            }
        }
        atomic_fetch_add(&c->settlements_ok, 1);
    } else {
        bool revert = err.kind == OS_CHAIN_FAIL_REVERT || err.kind == OS_CHAIN_FAIL_RECEIPT;
        s.status = revert ? "reverted" : "failed";
        if (err.kind == OS_CHAIN_FAIL_REVERT && err.revert.message[0] != '\0')
            snprintf(msg, sizeof(msg), "%s", err.revert.message);
        else if (err.message[0] != '\0')
            snprintf(msg, sizeof(msg), "%s", err.message);
        else
            snprintf(msg, sizeof(msg), "%s", os_strerror(e));
        s.error = msg;
        pthread_mutex_lock(&ch->mu);
        if (os_escrow_is_error(&err, OS_ESCROW_E_GRACE_PERIOD_OVER) ||
            os_escrow_is_error(&err, OS_ESCROW_E_CHANNEL_IS_CLOSED))
            ch->dead = true;
        ch->settle_mono = now;
        ch->retry_mono = now + u64_max(RETRY_MIN_MS, c->cfg.refresh_ms * RETRY_REFRESHES);
        pthread_mutex_unlock(&ch->mu);
        atomic_fetch_add(&c->settlements_failed, 1);
        (void)sl_chans_refresh_one_(c, ch);
    }
    s.at_ms = wall_ms();
    if (sl_ledger_settlement_add(c->cfg.ledger, &s) != OS_OK)
        log_chan(c, OS_LOG_ERROR, "cannot record a settlement", ch->id, "status", s.status);
    if (rows != NULL) {
        json_t *row = settlement_json(&s);
        if (row != NULL && json_array_append_new(rows, row) != 0)
            log_chan(c, OS_LOG_WARN, "cannot report a settlement", ch->id, NULL, NULL);
    }
    log_claim(c, &s, e == OS_OK);
    os_chain_receipt_free(rc);
}

/* Claims on ch when there is something to claim and (force, a close request, the threshold, or
 * the interval) says so. Settle lock held. */
static void settle_one(sl_chans *c, sl_chan_entry *ch, bool force, json_t *rows)
{
    os_channel_state st;
    os_voucher v;
    uint64_t earned, pay, claimable, now = mono_ms(), settle_mono, retry_mono, latest;
    bool skip;
    os_err e;

    pthread_mutex_lock(&ch->mu);
    st = ch->st;
    skip = !ch->verified || ch->dead || st.closed || memcmp(st.seller, c->cfg.seller, 20) != 0;
    settle_mono = ch->settle_mono;
    retry_mono = ch->retry_mono;
    latest = ch->has_voucher ? ch->cumulative : 0;
    pthread_mutex_unlock(&ch->mu);
    if (skip || c->cfg.signer == NULL)
        return;
    /* The candidate search reads the channel's vouchers under the ledger's lock, which paid
     * requests wait for: on the automatic pass, search only when a claim may be due (the latest
     * voucher already authorises a threshold's worth, the channel is closing, or the interval is
     * over), not every refresh period. */
    if (!force) {
        uint64_t most = latest < st.deposit ? latest : st.deposit;
        if (now < retry_mono)
            return;
        if (st.close_at == 0 && now - settle_mono < c->cfg.settle_interval_ms &&
            (most <= st.claimed || most - st.claimed < c->cfg.settle_threshold))
            return;
    }
    e = sl_ledger_settle_candidate(c->cfg.ledger, &v, &earned, ch->id, st.last_nonce, st.claimed);
    if (e == OS_ERR_NOTFOUND)
        return;
    if (e != OS_OK) {
        log_chan(c, OS_LOG_WARN, "cannot read the settlement candidate", ch->id, "error",
                 os_strerror(e));
        return;
    }
    pay = v.cumulative_amount < st.deposit ? v.cumulative_amount : st.deposit;
    if (pay <= st.claimed)
        return;
    claimable = pay - st.claimed;
    if (!force) {
        if (now < retry_mono)
            return;
        if (st.close_at == 0 && claimable < c->cfg.settle_threshold &&
            now - settle_mono < c->cfg.settle_interval_ms)
            return;
    }
    claim(c, ch, &v, st.claimed, rows);
}

void sl_chans_settle_pass_(sl_chans *c)
{
    sl_chan_entry **list;
    size_t n = sl_chans_snapshot_(c, &list);
    pthread_mutex_lock(&c->settle_mu);
    for (size_t i = 0; i < n && !stopping(c); i++)
        settle_one(c, list[i], false, NULL);
    pthread_mutex_unlock(&c->settle_mu);
    free(list);
}

os_err sl_chans_settle(sl_chans *c, json_t **report, const uint8_t *channel_id)
{
    json_t *rows;
    sl_chan_entry **list = NULL, *one = NULL;
    size_t n;

    if (report != NULL)
        *report = NULL;
    if (c == NULL)
        return OS_ERR_INVALID;
    if (channel_id != NULL) {
        one = sl_chans_find_(c, channel_id);
        if (one == NULL)
            return OS_ERR_NOTFOUND;
        list = &one;
        n = 1;
    } else {
        n = sl_chans_snapshot_(c, &list);
    }
    rows = json_array();
    if (rows == NULL) {
        if (list != &one)
            free(list);
        return OS_ERR_NOMEM;
    }
    pthread_mutex_lock(&c->settle_mu);
    for (size_t i = 0; i < n; i++) {
        bool closed;
        pthread_mutex_lock(&list[i]->mu);
        closed = list[i]->st.closed || list[i]->dead;
        pthread_mutex_unlock(&list[i]->mu);
        if (closed)
            continue;
        /* claim against the freshest state the chain gives */
        (void)sl_chans_refresh_one_(c, list[i]);
        settle_one(c, list[i], true, rows);
    }
    pthread_mutex_unlock(&c->settle_mu);
    if (list != &one)
        free(list);
    if (report != NULL) {
        *report = json_pack("{s:o}", "settlements", rows);
        if (*report == NULL)
            return OS_ERR_NOMEM;
    } else {
        json_decref(rows);
    }
    return OS_OK;
}
