/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's wallet (wallet.h): its lifetime (buyer.db opened and every stored channel loaded,
 * keys checked against the row they came from), the channel list and the per-seller slots, and the
 * JSON views. The payment path is wallet_pay.c, the moves on chain wallet_chain.c, buyer.db
 * bdb.c; wallet_internal.h has what they share and the lock order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "openseed/eip712.h"
#include "openseed/hex.h"
#include "openseed/json.h"
#include "openseed/money.h"
#include "openseed/secp.h"

#include "wallet_internal.h"

#define CHANS_INITIAL 16

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return os_money_add(&r, a, b) == OS_OK ? r : UINT64_MAX;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

uint64_t by_w_today(void)
{
    time_t t = time(NULL);
    return t > 0 ? (uint64_t)t / 86400u : 0;
}

int64_t by_w_mono_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void by_w_log(const by_wallet *w, os_log_level lvl, const char *msg, const uint8_t id[32],
              const char *key, const char *val)
{
    os_log_event ev;
    char cid[OS_HEX_LEN(32)];
    if (!os_log_begin(&ev, w->log, lvl, msg))
        return;
    if (id != NULL && os_hex_encode(cid, sizeof(cid), id, 32, 1) == OS_OK)
        os_log_kv(&ev, "channel", "%s", cid);
    if (key != NULL)
        os_log_kv(&ev, key, "%s", val != NULL ? val : "");
    os_log_end(&ev);
}

/* ---- channels and slots ------------------------------------------------------------------- */

os_err by_w_chan_new(by_chan **out, const by_bdb_channel *row, os_cred_secret *cred)
{
    uint8_t addr[20], commit[32];
    by_chan *ch;
    os_err e = OS_OK;

    *out = NULL;
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        os_cred_secret_free(cred);
        return OS_ERR_NOMEM;
    }
    if (pthread_mutex_init(&ch->mu, NULL) != 0) {
        free(ch);
        os_cred_secret_free(cred);
        return OS_ERR_NOMEM;
    }
    if (pthread_cond_init(&ch->cv, NULL) != 0) {
        pthread_mutex_destroy(&ch->mu);
        free(ch);
        os_cred_secret_free(cred);
        return OS_ERR_NOMEM;
    }
    memcpy(ch->id, row->id, 32);
    memcpy(ch->seller, row->seller, 20);
    memcpy(ch->signer, row->signer, 20);
    memcpy(ch->commitment, row->commitment, 32);
    ch->created_at = row->created_at;
    ch->state = row->state;
    ch->deposit = row->deposit;
    ch->consumed = row->consumed;
    ch->authorized = row->authorized;
    ch->nonce = row->nonce;
    ch->close_at = row->close_at;
    ch->has_opened_tx = row->has_opened_tx;
    memcpy(ch->opened_tx, row->opened_tx, 32);
    ch->cred = cred;

    ch->key = sodium_malloc(32);
    if (ch->key == NULL)
        e = OS_ERR_NOMEM;
    if (e == OS_OK) {
        memcpy(ch->key, row->signer_key, 32);
        /* a row whose key is not the signer the chain knows would sign vouchers nobody takes */
        if (os_secp_address(addr, ch->key) != OS_OK || memcmp(addr, row->signer, 20) != 0)
            e = OS_ERR_INVALID;
        else if (sodium_mprotect_readonly(ch->key) != 0)
            e = OS_ERR_INTERNAL;
    }
    if (e == OS_OK && ch->cred == NULL)
        e = os_cred_secret_import(&ch->cred, row->cred_secret);
    if (e == OS_OK) {
        os_cred_commit(commit, ch->cred);
        if (memcmp(commit, row->commitment, 32) != 0)
            e = OS_ERR_INVALID;
    }
    if (e != OS_OK) {
        by_w_chan_free(ch);
        return e;
    }
    *out = ch;
    return OS_OK;
}

void by_w_chan_wipe(by_chan *ch)
{
    if (ch->key != NULL)
        sodium_free(ch->key); /* wipes, read-only or not */
    ch->key = NULL;
    os_cred_secret_free(ch->cred);
    ch->cred = NULL;
}

void by_w_chan_free(by_chan *ch)
{
    if (ch == NULL)
        return;
    by_w_chan_wipe(ch);
    pthread_cond_destroy(&ch->cv);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
}

os_err by_w_chan_add(by_wallet *w, by_chan *ch)
{
    os_err e = OS_OK;
    pthread_mutex_lock(&w->mu);
    if (w->n_chans == w->cap_chans) {
        size_t cap = w->cap_chans != 0 ? w->cap_chans * 2 : CHANS_INITIAL;
        by_chan **a = cap <= SIZE_MAX / sizeof(*a) ? realloc(w->chans, cap * sizeof(*a)) : NULL;
        if (a == NULL)
            e = OS_ERR_NOMEM;
        else {
            w->chans = a;
            w->cap_chans = cap;
        }
    }
    if (e == OS_OK)
        w->chans[w->n_chans++] = ch;
    pthread_mutex_unlock(&w->mu);
    return e;
}

by_slot *by_w_slot_get(by_wallet *w, const uint8_t seller[20])
{
    by_slot *s = NULL;

    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n_slots; i++)
        if (memcmp(w->slots[i]->seller, seller, 20) == 0) {
            s = w->slots[i];
            goto out;
        }
    if (w->n_slots == w->cap_slots) {
        size_t cap = w->cap_slots != 0 ? w->cap_slots * 2 : CHANS_INITIAL;
        by_slot **a = cap <= SIZE_MAX / sizeof(*a) ? realloc(w->slots, cap * sizeof(*a)) : NULL;
        if (a == NULL)
            goto out;
        w->slots = a;
        w->cap_slots = cap;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        s = NULL;
        goto out;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        s = NULL;
        goto out;
    }
    memcpy(s->seller, seller, 20);
    w->slots[w->n_slots++] = s;
out:
    pthread_mutex_unlock(&w->mu);
    return s;
}

by_chan **by_w_snapshot(by_wallet *w, size_t *n)
{
    by_chan **a = NULL;
    pthread_mutex_lock(&w->mu);
    *n = w->n_chans;
    if (*n > 0) {
        a = malloc(*n * sizeof(*a));
        if (a != NULL)
            memcpy(a, w->chans, *n * sizeof(*a));
    }
    pthread_mutex_unlock(&w->mu);
    return a;
}

by_chan *by_w_chan_find(by_wallet *w, const uint8_t id[32])
{
    by_chan *r = NULL;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n_chans && r == NULL; i++)
        if (memcmp(w->chans[i]->id, id, 32) == 0)
            r = w->chans[i];
    pthread_mutex_unlock(&w->mu);
    return r;
}

/* Rank of a channel for being its seller's current one at start: open or opening first, then a
 * closing one (which refuses requests rather than opening a second channel); newest wins. */
static int cur_rank(const by_chan *ch)
{
    if (ch->dropped)
        return 0;
    switch (ch->state) {
    case BY_CHAN_OPEN:
    case BY_CHAN_OPENING:
        return 2;
    case BY_CHAN_CLOSING:
        return 1;
    default:
        return 0;
    }
}

/* ---- lifetime ----------------------------------------------------------------------------- */

static os_err load(by_wallet *w)
{
    by_bdb_channel *rows = NULL;
    size_t n = 0;
    os_err e;

    if ((e = by_bdb_channel_list(w->db, &rows, &n)) != OS_OK)
        return e;
    for (size_t i = 0; i < n && e == OS_OK; i++) {
        by_chan *ch = NULL;
        by_slot *s;
        os_err ce = by_w_chan_new(&ch, &rows[i], NULL);
        if (ce == OS_ERR_INVALID) {
            by_w_log(w, OS_LOG_ERROR, "a stored channel's keys do not match it; not used",
                     rows[i].id, NULL, NULL);
            continue;
        }
        if (ce != OS_OK) {
            e = ce;
            break;
        }
        if ((e = by_w_chan_add(w, ch)) != OS_OK) {
            by_w_chan_free(ch);
            break;
        }
        if ((s = by_w_slot_get(w, ch->seller)) == NULL) {
            e = OS_ERR_NOMEM;
            break;
        }
        /* rows come oldest first: a later one of the same rank replaces the current */
        if (cur_rank(ch) > 0 && (s->cur == NULL || cur_rank(ch) >= cur_rank(s->cur)))
            s->cur = ch;
    }
    by_bdb_channels_free(rows);
    return e;
}

os_err by_wallet_new(by_wallet **out, const by_wallet_config *cfg)
{
    char err[256];
    by_wallet *w;
    os_err e;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (cfg == NULL || cfg->chain == NULL || cfg->payer == NULL || cfg->db_path == NULL ||
        cfg->chain_id == 0 || cfg->deposit == 0)
        return OS_ERR_INVALID;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return OS_ERR_NOMEM;
    w->cfg = *cfg;
    w->cfg.db_path = NULL; /* borrowed for this call only */
    w->log = cfg->log;
    if (w->cfg.topup_below == 0)
        w->cfg.topup_below = w->cfg.deposit / 4;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return OS_ERR_NOMEM;
    }
    if (pthread_mutex_init(&w->fund_mu, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return OS_ERR_NOMEM;
    }
    os_chain_signer_address(cfg->payer, w->payer);
    os_eip712_channels_domain(w->domain, cfg->chain_id, cfg->escrow);
    os_token_domain(w->token_domain, OS_USDC_EIP712_NAME, OS_USDC_EIP712_VERSION, cfg->chain_id,
                    cfg->usdc);
    /* a proof nonce costs two scalar multiplications: made off the request path */
    if ((e = os_cred_pool_new(&w->nonces, BY_NONCE_POOL)) != OS_OK) {
        by_wallet_free(w);
        return e;
    }
    e = by_bdb_open(&w->db, cfg->db_path, err, sizeof(err));
    if (e != OS_OK) {
        os_log_error(w->log, "cannot open buyer.db: %s", err);
        by_wallet_free(w);
        return e;
    }
    if ((e = load(w)) != OS_OK) {
        os_log_error(w->log, "cannot load the channels from buyer.db: %s", os_strerror(e));
        by_wallet_free(w);
        return e;
    }
    w->day = by_w_today();
    {
        uint64_t cut = 0;
        if ((e = by_bdb_requests_interrupt(w->db, &cut, w->day)) != OS_OK) {
            os_log_error(w->log, "cannot finish the requests of an earlier run: %s",
                         os_strerror(e));
            by_wallet_free(w);
            return e;
        }
        if (cut > 0)
            os_log_warn(w->log, "%" PRIu64 " requests of an earlier run were cut by its end;"
                        " booked as interrupted", cut);
    }
    if ((e = by_bdb_day_spent(w->db, &w->day_spent, w->day)) != OS_OK) {
        by_wallet_free(w);
        return e;
    }
    *out = w;
    return OS_OK;
}

os_err by_wallet_set_payer_key(by_wallet *w, const uint8_t priv[32])
{
    uint8_t addr[20];
    uint8_t *k;

    if (w == NULL || priv == NULL)
        return OS_ERR_INVALID;
    if (os_secp_address(addr, priv) != OS_OK || memcmp(addr, w->payer, 20) != 0)
        return OS_ERR_INVALID; /* not the key of the payer that sends the transactions */
    if ((k = sodium_malloc(32)) == NULL)
        return OS_ERR_NOMEM;
    memcpy(k, priv, 32);
    if (sodium_mprotect_readonly(k) != 0) {
        sodium_free(k);
        return OS_ERR_INTERNAL;
    }
    pthread_mutex_lock(&w->fund_mu);
    if (w->payer_key != NULL)
        sodium_free(w->payer_key);
    w->payer_key = k;
    pthread_mutex_unlock(&w->fund_mu);
    return OS_OK;
}

void by_wallet_free(by_wallet *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n_chans; i++)
        by_w_chan_free(w->chans[i]);
    free(w->chans);
    for (size_t i = 0; i < w->n_slots; i++) {
        pthread_cond_destroy(&w->slots[i]->cv);
        pthread_mutex_destroy(&w->slots[i]->mu);
        free(w->slots[i]);
    }
    free(w->slots);
    if (w->payer_key != NULL)
        sodium_free(w->payer_key);
    os_cred_pool_free(w->nonces);
    by_bdb_close(w->db);
    pthread_mutex_destroy(&w->fund_mu);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- views -------------------------------------------------------------------------------- */

json_t *by_wallet_channels_json(by_wallet *w)
{
    json_t *root, *arr;
    by_chan **list;
    size_t n;
    bool ok = true;

    if (w == NULL)
        return NULL;
    root = json_object();
    arr = os_json_child(root, "channels", json_array());
    if (root == NULL || arr == NULL) {
        json_decref(root);
        return NULL;
    }
    list = by_w_snapshot(w, &n);
    if (list == NULL && n > 0) {
        json_decref(root);
        return NULL;
    }
    for (size_t i = 0; i < n && ok; i++) {
        by_chan *ch = list[i];
        uint64_t dep, cons, auth, nonce, flight, close_at;
        by_chan_state st;
        bool dropped, has_tx;
        uint8_t tx[32];
        json_t *o;

        /* the public numbers only (id, seller and tx never change once set) */
        pthread_mutex_lock(&ch->mu);
        dropped = ch->dropped;
        st = ch->state;
        dep = ch->deposit;
        cons = ch->consumed;
        auth = ch->authorized;
        nonce = ch->nonce;
        flight = ch->inflight;
        close_at = ch->close_at;
        has_tx = ch->has_opened_tx;
        memcpy(tx, ch->opened_tx, 32);
        pthread_mutex_unlock(&ch->mu);
        if (dropped)
            continue;
        o = json_object();
        ok = o != NULL && json_array_append_new(arr, o) == 0 &&
             os_json_put(o, "channel_id", os_json_hex(ch->id, 32)) &&
             os_json_put(o, "seller", os_json_address(ch->seller)) &&
             os_json_put(o, "deposit", os_money_to_json(dep)) &&
             os_json_put(o, "consumed", os_money_to_json(cons)) &&
             os_json_put(o, "authorized", os_money_to_json(auth)) &&
             os_json_put(o, "nonce", os_json_u64(nonce)) &&
             os_json_put(o, "state", json_string(by_chan_state_name(st))) &&
             os_json_put(o, "opened_tx", has_tx ? os_json_hex(tx, 32) : json_null()) &&
             os_json_put(o, "remaining", os_money_to_json(sat_sub(dep, sat_add(cons, flight)))) &&
             os_json_put(o, "in_flight", os_money_to_json(flight)) &&
             os_json_put(o, "close_at", os_json_u64(close_at));
    }
    free(list);
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *by_wallet_ledger_json(by_wallet *w, unsigned limit)
{
    return w != NULL ? by_bdb_ledger_json(w->db, limit) : NULL;
}

json_t *by_wallet_ledger_query_json(by_wallet *w, const by_ledger_query *q)
{
    return w != NULL ? by_bdb_ledger_query_json(w->db, q) : NULL;
}

json_t *by_wallet_spend_series_json(by_wallet *w, uint64_t step, unsigned points)
{
    time_t now = time(NULL);
    json_t *v = NULL;

    if (w == NULL || now < 0 || by_bdb_series(w->db, &v, (int64_t)now, step, points) != OS_OK)
        return NULL;
    return v;
}

json_t *by_wallet_spend_json(by_wallet *w)
{
    uint64_t spent, deposited, requests, today, flight, day0 = by_w_today();
    json_t *root, *per = NULL, *days = NULL, *svcs = NULL, *t, *tot;

    if (w == NULL)
        return NULL;
    if (by_bdb_totals(w->db, &spent, &deposited, &requests, &per) != OS_OK)
        return NULL;
    /* the last 30 UTC days, today included */
    if (by_bdb_breakdown(w->db, &days, &svcs, day0 >= 29 ? day0 - 29 : 0) != OS_OK) {
        json_decref(per);
        return NULL;
    }
    pthread_mutex_lock(&w->mu);
    by_w_day_roll_locked(w);
    today = w->day_spent;
    flight = w->inflight_all;
    pthread_mutex_unlock(&w->mu);
    root = json_object();
    if (root == NULL) {
        json_decref(per);
        json_decref(days);
        json_decref(svcs);
        return NULL;
    }
    t = os_json_child(root, "today", json_object());
    if (t == NULL || !os_json_put(t, "spent", os_money_to_json(today)) ||
        !os_json_put(t, "in_flight", os_money_to_json(flight)) ||
        !os_json_put(t, "budget", os_money_to_json(w->cfg.budget_day)) ||
        (tot = os_json_child(root, "total", json_object())) == NULL ||
        !os_json_put(tot, "spent", os_money_to_json(spent)) ||
        !os_json_put(tot, "deposited", os_money_to_json(deposited)) ||
        !os_json_put(tot, "requests", os_json_u64(requests))) {
        json_decref(per);
        json_decref(days);
        json_decref(svcs);
        json_decref(root);
        return NULL;
    }
    /* os_json_put takes its value whether or not it succeeds */
    if (!os_json_put(root, "per_seller", per)) {
        json_decref(days);
        json_decref(svcs);
        json_decref(root);
        return NULL;
    }
    if (!os_json_put(root, "per_day", days)) {
        json_decref(svcs);
        json_decref(root);
        return NULL;
    }
    if (!os_json_put(root, "per_service", svcs)) {
        json_decref(root);
        return NULL;
    }
    return root;
}
