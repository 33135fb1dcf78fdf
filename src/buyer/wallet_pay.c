/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wallet's payment path (wallet.h): budgets, the seller slot that makes concurrent first
 * requests share one open, room in the deposit (top-ups), the voucher for each request
 * (committed = the seller's last reported consumed + the estimates in flight on the channel;
 * cumulative = committed + estimate; nonce = last + 1), the adoption of 402 invoices, and the
 * booking of a finished request.
 *
 * A voucher is made in three steps so the channel's lock is held only for arithmetic: under the
 * lock its amount and nonce are reserved (topping the channel up first when the deposit left would
 * fall below topup_below, the lock released meanwhile); then, unlocked, it is signed, its
 * credential proved, and it is written to buyer.db (one durable transaction); only then is it
 * handed out. A failure after the reservation gives the reservation back (its nonce is simply
 * never used: sellers need nonces to grow, not to be consecutive).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/money.h"

#include "wallet_internal.h"

static const char *const outcomes[] = {"ok", "upstream_error", "seller_error", "cancelled",
                                       "failed"};

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

/* Human USDC for refusal messages. */
typedef struct usdc_txt {
    char s[OS_USDC_LEN];
} usdc_txt;

static usdc_txt usdc(uint64_t v)
{
    usdc_txt t;
    if (os_usdc_format(t.s, sizeof(t.s), v) != OS_OK)
        snprintf(t.s, sizeof(t.s), "?");
    return t;
}

/* Sets the refusal and its line; returns the os_err that goes with the kind. */
__attribute__((format(printf, 5, 6))) static os_err
refuse(by_refusal *kind, char *why, size_t whycap, by_refusal k, const char *fmt, ...)
{
    va_list ap;
    *kind = k;
    va_start(ap, fmt);
    vsnprintf(why, whycap, fmt, ap);
    va_end(ap);
    switch (k) {
    case BY_REFUSE_BUDGET:
        return OS_ERR_RANGE;
    case BY_REFUSE_CHAIN:
        return OS_ERR_NETWORK;
    default:
        return OS_ERR_INVALID;
    }
}

/* ---- the day's budget --------------------------------------------------------------------- */

/* Starts a new day's count at midnight UTC. w->mu held. */
void by_w_day_roll_locked(by_wallet *w)
{
    uint64_t today = by_w_today();
    if (today != w->day) {
        w->day = today;
        w->day_spent = 0;
    }
}

/* Reserves estimate against budget_day (spent today + in flight + estimate). */
static os_err day_reserve(by_wallet *w, by_refusal *kind, char *why, size_t whycap,
                          uint64_t estimate)
{
    uint64_t need, spent, flight;
    os_err e = OS_OK;

    pthread_mutex_lock(&w->mu);
    by_w_day_roll_locked(w);
    spent = w->day_spent;
    flight = w->inflight_all;
    need = sat_add(sat_add(spent, flight), estimate);
    if (w->cfg.budget_day != 0 && need > w->cfg.budget_day) {
        pthread_mutex_unlock(&w->mu);
        return refuse(kind, why, whycap, BY_REFUSE_BUDGET,
                      "budget_day: %s USDC spent and %s USDC in flight today plus this request's "
                      "%s USDC exceed the daily cap of %s USDC by %s USDC",
                      usdc(spent).s, usdc(flight).s, usdc(estimate).s, usdc(w->cfg.budget_day).s,
                      usdc(need - w->cfg.budget_day).s);
    }
    if (os_money_add(&w->inflight_all, w->inflight_all, estimate) != OS_OK)
        e = refuse(kind, why, whycap, BY_REFUSE_BUDGET, "amount out of range");
    pthread_mutex_unlock(&w->mu);
    return e;
}

static void day_release(by_wallet *w, uint64_t estimate)
{
    pthread_mutex_lock(&w->mu);
    w->inflight_all = sat_sub(w->inflight_all, estimate);
    pthread_mutex_unlock(&w->mu);
}

/* ---- the seller's channel ----------------------------------------------------------------- */

/*
 * The open, verified channel to seller: waits while another request opens or re-reads it, opens
 * one when there is none (or the last was closed), re-reads one loaded from buyer.db and not yet
 * checked, resolves one left "opening". A request that waited for an attempt that failed gets
 * that failure rather than trying again at once.
 */
static os_err slot_channel(by_wallet *w, by_chan **out, by_refusal *kind, char *why, size_t whycap,
                           const uint8_t seller[20])
{
    char reason[BY_WHY_MAX];
    by_slot *s = by_w_slot_get(w, seller);
    bool waited = false;

    *out = NULL;
    if (s == NULL) {
        snprintf(why, whycap, "out of memory");
        return OS_ERR_NOMEM;
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        by_chan *c, *nc = NULL;
        by_chan_state st = BY_CHAN_CLOSED;
        bool verified = false;
        os_err e;

        while (s->busy) {
            waited = true;
            pthread_cond_wait(&s->cv, &s->mu);
        }
        c = s->cur;
        if (c != NULL) {
            pthread_mutex_lock(&c->mu);
            st = c->dropped ? BY_CHAN_CLOSED : c->state;
            verified = c->verified;
            pthread_mutex_unlock(&c->mu);
            if (st == BY_CHAN_CLOSED)
                c = NULL;
        }
        if (c != NULL && st == BY_CHAN_OPEN && verified) {
            pthread_mutex_unlock(&s->mu);
            *out = c;
            return OS_OK;
        }
        if (c != NULL && st == BY_CHAN_CLOSING) {
            pthread_mutex_unlock(&s->mu);
            return refuse(kind, why, whycap, BY_REFUSE_CHANNEL,
                          "the channel to this seller is closing");
        }
        if (waited && s->gen != 0 && s->fail_gen == s->gen) {
            by_refusal k = s->last_kind;
            snprintf(reason, sizeof(reason), "%s", s->last_why);
            pthread_mutex_unlock(&s->mu);
            return refuse(kind, why, whycap, k, "%s", reason);
        }
        s->busy = true;
        pthread_mutex_unlock(&s->mu);

        reason[0] = '\0';
        if (c != NULL && st == BY_CHAN_OPEN)
            e = by_w_verify(w, c, reason, sizeof(reason));
        else if (c != NULL && st == BY_CHAN_OPENING)
            e = by_w_resolve(w, c, reason, sizeof(reason));
        else
            e = by_w_open(w, &nc, seller, 0, reason, sizeof(reason));

        pthread_mutex_lock(&s->mu);
        s->busy = false;
        s->gen++;
        if (nc != NULL)
            s->cur = nc;
        if (e != OS_OK) {
            /* the chain calls fail with these when the node was not heard from (transport,
             * HTTP, a garbled answer, no receipt in time); a refusal by the node is INVALID */
            by_refusal k =
                e == OS_ERR_NETWORK || e == OS_ERR_TIMEOUT ? BY_REFUSE_CHAIN_DOWN : BY_REFUSE_CHAIN;
            s->fail_gen = s->gen;
            s->last_kind = k;
            snprintf(s->last_why, sizeof(s->last_why), "%s", reason);
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return refuse(kind, why, whycap, k, "%s", reason);
        }
        pthread_cond_broadcast(&s->cv);
        waited = false;
    }
}

/* ---- room in the deposit ------------------------------------------------------------------ */

typedef enum room_result { ROOM_FITS, ROOM_AGAIN, ROOM_REFUSED } room_result;

/*
 * With ch->mu held: whether a voucher for cum fits the deposit, topping the channel up first when
 * the deposit left would fall below topup_below (by `deposit`, at least what cum needs, within
 * budget_channel). ROOM_AGAIN: the lock was released (a top-up ran, or we waited for another's),
 * so the caller recomputes cum and asks again. *topup_failed keeps one failed top-up from being
 * retried in the same call; a voucher that still fits then goes ahead without it.
 */
static room_result room_locked(by_wallet *w, by_chan *ch, os_err *err, by_refusal *kind, char *why,
                               size_t whycap, uint64_t cum, bool *topup_failed)
{
    uint64_t dep = ch->deposit, cap = w->cfg.budget_channel, room, amount, after, newdep = 0;
    bool fits = cum <= dep;
    os_err e;

    if (fits && dep - cum >= w->cfg.topup_below)
        return ROOM_FITS;
    if (ch->topping) {
        if (fits)
            return ROOM_FITS;
        pthread_cond_wait(&ch->cv, &ch->mu);
        return ROOM_AGAIN;
    }
    room = cap == 0 ? UINT64_MAX : sat_sub(cap, dep);
    amount = w->cfg.deposit;
    if (!fits && cum - dep > amount)
        amount = cum - dep;
    if (amount > room)
        amount = room;
    /* a voucher that fits does not wait for a top-up that just failed (say, an empty wallet) */
    if (fits && (*topup_failed || amount == 0 || by_w_mono_ms() < ch->topup_after_ms))
        return ROOM_FITS;
    if (!fits && *topup_failed) {
        char reason[BY_WHY_MAX];
        snprintf(reason, sizeof(reason), "%s", why); /* the top-up's own reason */
        *err = refuse(kind, why, whycap, BY_REFUSE_CHAIN, "%s", reason);
        return ROOM_REFUSED;
    }
    if (!fits && (os_money_add(&after, dep, amount) == OS_OK && after < cum)) {
        *err = refuse(kind, why, whycap, BY_REFUSE_BUDGET,
                      "budget_channel: this request needs %s USDC in the channel, above the "
                      "per-channel cap of %s USDC by %s USDC",
                      usdc(cum).s, usdc(cap).s, usdc(sat_sub(cum, cap)).s);
        return ROOM_REFUSED;
    }
    ch->topping = true;
    pthread_mutex_unlock(&ch->mu);
    e = by_w_topup(w, ch, amount, &newdep, why, whycap);
    pthread_mutex_lock(&ch->mu);
    ch->topping = false;
    if (e == OS_OK) {
        if (newdep > ch->deposit)
            ch->deposit = newdep;
        ch->topup_after_ms = 0;
    } else {
        *topup_failed = true;
        ch->topup_after_ms = by_w_mono_ms() + BY_TOPUP_BACKOFF_MS;
    }
    pthread_cond_broadcast(&ch->cv);
    return ROOM_AGAIN;
}

/* ---- vouchers ----------------------------------------------------------------------------- */

/* Signs the voucher bv describes with ch's key, proves the credential, writes it to buyer.db and
 * only then fills p (its previous payment freed). No lock held. */
static os_err sign_and_store(by_wallet *w, by_chan *ch, by_payment *p, char *why, size_t whycap,
                             const os_x402_requirement *accepted, by_bdb_voucher *bv)
{
    char cred[OS_CRED_HEADER_LEN + 1];
    char *pay = NULL;
    uint64_t rid = 0;
    os_voucher v;
    os_cred_nonce nn;
    bool pooled;
    os_err e;

    memset(&v, 0, sizeof(v));
    memcpy(v.channel_id, bv->channel_id, 32);
    v.cumulative_amount = bv->cumulative;
    v.nonce = bv->nonce;
    memcpy(v.metadata_hash, bv->metadata_hash, 32);
    e = os_voucher_sign_ds(&v, ch->key, w->domain);
    if (e == OS_OK) {
        pooled = os_cred_pool_take(w->nonces, &nn); /* empty: made on the spot */
        e = os_cred_header_make(cred, sizeof(cred), pooled ? &nn : NULL, ch->cred, ch->id,
                                bv->nonce, bv->metadata_hash);
        os_cred_nonce_wipe(&nn);
    }
    if (e == OS_OK)
        e = os_x402_payment_encode(&pay, accepted, &v);
    if (e != OS_OK) {
        by_w_log(w, OS_LOG_ERROR, "cannot sign a voucher", ch->id, "error", os_strerror(e));
        snprintf(why, whycap, "internal error: cannot sign the payment");
        return e;
    }
    /* recorded before it is handed out: a voucher the seller holds is a voucher we know of */
    e = by_bdb_voucher_add(w->db, &rid, bv);
    if (e != OS_OK) {
        free(pay);
        by_w_log(w, OS_LOG_ERROR, "cannot record a voucher", ch->id, "error", os_strerror(e));
        snprintf(why, whycap, "internal error: cannot record the voucher");
        return OS_ERR_IO;
    }
    pthread_mutex_lock(&ch->mu);
    if (bv->cumulative > ch->authorized)
        ch->authorized = bv->cumulative;
    pthread_mutex_unlock(&ch->mu);
    free(p->payment);
    p->payment = pay;
    memcpy(p->credential, cred, sizeof(cred));
    p->cumulative = bv->cumulative;
    p->nonce = bv->nonce;
    p->request_id = rid;
    return OS_OK;
}

/* The next nonce of a locked channel, above `floor` too; 0 when none is left (x402 nonces are
 * at most INT64_MAX). */
static uint64_t next_nonce_locked(by_chan *ch, uint64_t floor)
{
    uint64_t last = ch->nonce > floor ? ch->nonce : floor;
    if (last >= (uint64_t)INT64_MAX)
        return 0;
    ch->nonce = last + 1;
    return ch->nonce;
}

static void out_defaults(by_refusal **kind, by_refusal *dk, char **why, size_t *whycap, char *dwhy,
                         size_t dcap)
{
    if (*kind == NULL)
        *kind = dk;
    **kind = BY_REFUSE_NONE;
    if (*why == NULL || *whycap == 0) {
        *why = dwhy;
        *whycap = dcap;
    }
    (*why)[0] = '\0';
}

os_err by_wallet_pay(by_wallet *w, by_payment *p, by_refusal *kind, char *why, size_t whycap,
                     const uint8_t seller[20], const char *service, const char *api,
                     uint64_t estimate, const uint8_t mh[32])
{
    char dwhy[BY_WHY_MAX];
    by_refusal dk;
    os_x402_requirement acc;
    by_bdb_voucher bv;
    by_chan *ch = NULL;
    bool topup_failed = false;
    uint64_t cum = 0, nonce;
    os_err e = OS_OK;

    out_defaults(&kind, &dk, &why, &whycap, dwhy, sizeof(dwhy));
    if (w == NULL || p == NULL || seller == NULL || service == NULL || api == NULL || mh == NULL) {
        snprintf(why, whycap, "internal error");
        return OS_ERR_INVALID;
    }
    memset(p, 0, sizeof(*p));
    if (w->cfg.budget_request != 0 && estimate > w->cfg.budget_request)
        return refuse(kind, why, whycap, BY_REFUSE_BUDGET,
                      "budget_request: this request's estimate of %s USDC exceeds the "
                      "per-request cap of %s USDC by %s USDC",
                      usdc(estimate).s, usdc(w->cfg.budget_request).s,
                      usdc(estimate - w->cfg.budget_request).s);
    if (w->cfg.budget_channel != 0 && estimate > w->cfg.budget_channel) /* before any open */
        return refuse(kind, why, whycap, BY_REFUSE_BUDGET,
                      "budget_channel: this request's estimate of %s USDC exceeds the "
                      "per-channel cap of %s USDC by %s USDC",
                      usdc(estimate).s, usdc(w->cfg.budget_channel).s,
                      usdc(estimate - w->cfg.budget_channel).s);
    if ((e = day_reserve(w, kind, why, whycap, estimate)) != OS_OK)
        return e;
    if ((e = slot_channel(w, &ch, kind, why, whycap, seller)) != OS_OK) {
        day_release(w, estimate);
        return e;
    }

    pthread_mutex_lock(&ch->mu);
    for (;;) {
        room_result r;
        if (ch->dropped || ch->state != BY_CHAN_OPEN) {
            e = refuse(kind, why, whycap, BY_REFUSE_CHANNEL,
                       "the channel to this seller is closing or closed");
            break;
        }
        if (os_money_add(&cum, ch->consumed, ch->inflight) != OS_OK ||
            os_money_add(&cum, cum, estimate) != OS_OK) {
            e = refuse(kind, why, whycap, BY_REFUSE_BUDGET, "amount out of range");
            break;
        }
        r = room_locked(w, ch, &e, kind, why, whycap, cum, &topup_failed);
        if (r == ROOM_FITS)
            break;
        if (r == ROOM_REFUSED)
            break;
    }
    if (e == OS_OK && (nonce = next_nonce_locked(ch, 0)) == 0)
        e = refuse(kind, why, whycap, BY_REFUSE_CHANNEL, "the channel has no nonces left");
    if (e != OS_OK) {
        pthread_mutex_unlock(&ch->mu);
        day_release(w, estimate);
        return e;
    }
    ch->inflight += estimate; /* cum above did not overflow */
    ch->n_inflight++;
    pthread_mutex_unlock(&ch->mu);

    memset(&acc, 0, sizeof(acc));
    acc.chain_id = w->cfg.chain_id;
    acc.amount = estimate;
    memcpy(acc.asset, w->cfg.usdc, 20);
    memcpy(acc.pay_to, seller, 20);
    acc.max_timeout_s = BY_MAX_TIMEOUT_S;
    memcpy(acc.escrow, w->cfg.escrow, 20);

    memset(&bv, 0, sizeof(bv));
    memcpy(bv.channel_id, ch->id, 32);
    bv.nonce = nonce;
    bv.cumulative = cum;
    memcpy(bv.metadata_hash, mh, 32);
    memcpy(bv.seller, seller, 20);
    bv.service = service;
    bv.api = api;
    bv.estimate = estimate;
    e = sign_and_store(w, ch, p, why, whycap, &acc, &bv);
    if (e != OS_OK) {
        pthread_mutex_lock(&ch->mu);
        ch->inflight = sat_sub(ch->inflight, estimate);
        if (ch->n_inflight > 0)
            ch->n_inflight--;
        pthread_mutex_unlock(&ch->mu);
        day_release(w, estimate);
        memset(p, 0, sizeof(*p));
        return e;
    }
    memcpy(p->channel_id, ch->id, 32);
    memcpy(p->seller, seller, 20);
    p->estimate = estimate;
    return OS_OK;
}

os_err by_wallet_repay(by_wallet *w, by_payment *p, by_refusal *kind, char *why, size_t whycap,
                       const os_x402_requirement *req, const uint8_t mh[32])
{
    char dwhy[BY_WHY_MAX];
    by_refusal dk;
    os_x402_requirement acc;
    by_bdb_voucher bv;
    by_chan *ch;
    bool topup_failed = false, over = false;
    uint64_t others, learnt, delta = 0, cum = 0, nonce = 0, day = 0, spent = 0, flight = 0;
    uint64_t consumed_now;
    os_err e = OS_OK;

    out_defaults(&kind, &dk, &why, &whycap, dwhy, sizeof(dwhy));
    if (w == NULL || p == NULL || req == NULL || mh == NULL || p->request_id == 0) {
        snprintf(why, whycap, "internal error");
        return OS_ERR_INVALID;
    }
    if ((ch = by_w_chan_find(w, p->channel_id)) == NULL) {
        snprintf(why, whycap, "internal error: unknown channel");
        return OS_ERR_INVALID;
    }
    if (req->chain_id != w->cfg.chain_id || memcmp(req->escrow, w->cfg.escrow, 20) != 0 ||
        memcmp(req->asset, w->cfg.usdc, 20) != 0 || memcmp(req->pay_to, p->seller, 20) != 0)
        return refuse(kind, why, whycap, BY_REFUSE_SELLER,
                      "the seller's invoice names another chain, escrow, token or payee");
    if (!req->has_channel || memcmp(req->channel_id, p->channel_id, 32) != 0)
        return refuse(kind, why, whycap, BY_REFUSE_SELLER,
                      "the seller's invoice is not for this buyer's channel");
    if (req->amount > p->estimate)
        return refuse(kind, why, whycap, BY_REFUSE_SELLER,
                      "the seller's estimate of %s USDC is above this buyer's %s USDC",
                      usdc(req->amount).s, usdc(p->estimate).s);

    pthread_mutex_lock(&ch->mu);
    if (ch->dropped || ch->state != BY_CHAN_OPEN) {
        pthread_mutex_unlock(&ch->mu);
        return refuse(kind, why, whycap, BY_REFUSE_CHANNEL,
                      "the channel to this seller is closing or closed");
    }
    /* the seller cannot have consumed more than some voucher of ours let it */
    if (req->consumed > ch->authorized) {
        uint64_t a = ch->authorized;
        pthread_mutex_unlock(&ch->mu);
        return refuse(kind, why, whycap, BY_REFUSE_SELLER,
                      "the seller's invoice claims %s USDC consumed, above the %s USDC this "
                      "buyer ever authorised on the channel",
                      usdc(req->consumed).s, usdc(a).s);
    }
    /* The invoice's consumed counts the estimates of the requests the seller has in flight,
     * which are among ours: what remains beyond them is consumed we had not been told of (a
     * lower bound, as some of ours may not have reached the seller yet). But the seller's may
     * also hold a request of this buyer's past life (killed with it in flight, restarted) that
     * it has yet to book: its estimate is not consumed. extra.reserved says how much of consumed
     * is in flight, so consumed - reserved is what the seller has booked; with nothing else of
     * ours in flight (others == 0) that is exact, and the orphan's real cost reaches us once
     * booked (the next invoice, or the closing fields in by_wallet_done). With others in flight,
     * booked may hold costs of ours whose closing fields are still to come (adopting them now
     * would count them twice), so the smaller of the two is taken: never above the old bound.
     * The voucher's floor below still covers the invoice's whole consumed. */
    others = sat_sub(ch->inflight, p->estimate);
    learnt = sat_sub(req->consumed, others);
    if (req->has_reserved && req->consumed - req->reserved < learnt)
        learnt = req->consumed - req->reserved; /* the decoder checked reserved <= consumed */
    if (learnt > ch->consumed) {
        delta = learnt - ch->consumed;
        ch->consumed = learnt;
    }
    consumed_now = ch->consumed;
    pthread_mutex_unlock(&ch->mu);

    pthread_mutex_lock(&w->mu);
    by_w_day_roll_locked(w);
    w->day_spent = sat_add(w->day_spent, delta);
    day = w->day;
    spent = w->day_spent;
    flight = w->inflight_all;
    over = w->cfg.budget_day != 0 && sat_add(spent, flight) > w->cfg.budget_day;
    pthread_mutex_unlock(&w->mu);
    if (delta > 0) {
        by_w_log(w, OS_LOG_INFO, "adopted consumed from a seller's invoice", ch->id, NULL, NULL);
        if ((e = by_bdb_adjust(w->db, ch->id, p->seller, delta, consumed_now, day)) != OS_OK)
            by_w_log(w, OS_LOG_ERROR, "cannot record an invoice's consumed", ch->id, "error",
                     os_strerror(e));
    }
    if (over)
        return refuse(kind, why, whycap, BY_REFUSE_BUDGET,
                      "budget_day: the seller's invoice shows %s USDC more spent; %s USDC spent "
                      "and %s USDC in flight today exceed the daily cap of %s USDC by %s USDC",
                      usdc(delta).s, usdc(spent).s, usdc(flight).s, usdc(w->cfg.budget_day).s,
                      usdc(sat_sub(sat_add(spent, flight), w->cfg.budget_day)).s);

    e = OS_OK;
    pthread_mutex_lock(&ch->mu);
    for (;;) {
        room_result r;
        uint64_t inv;
        if (ch->dropped || ch->state != BY_CHAN_OPEN) {
            e = refuse(kind, why, whycap, BY_REFUSE_CHANNEL,
                       "the channel to this seller is closing or closed");
            break;
        }
        /* our committed (this request still in flight) and never below the invoice's view */
        if (os_money_add(&cum, ch->consumed, ch->inflight) != OS_OK ||
            os_money_add(&inv, req->consumed, p->estimate) != OS_OK) {
            e = refuse(kind, why, whycap, BY_REFUSE_SELLER, "amount out of range");
            break;
        }
        if (inv > cum)
            cum = inv;
        r = room_locked(w, ch, &e, kind, why, whycap, cum, &topup_failed);
        if (r == ROOM_FITS || r == ROOM_REFUSED)
            break;
    }
    if (e == OS_OK && (nonce = next_nonce_locked(ch, req->nonce)) == 0)
        e = refuse(kind, why, whycap, BY_REFUSE_CHANNEL, "the channel has no nonces left");
    pthread_mutex_unlock(&ch->mu);
    if (e != OS_OK)
        return e;

    /* echo the invoice, but for the envelope this voucher pays (a re-sealed request has a new
     * metadataHash; the invoice's was the refused one's) */
    acc = *req;
    acc.has_metadata_hash = true;
    memcpy(acc.metadata_hash, mh, 32);
    memset(&bv, 0, sizeof(bv));
    memcpy(bv.channel_id, ch->id, 32);
    bv.nonce = nonce;
    bv.cumulative = cum;
    memcpy(bv.metadata_hash, mh, 32);
    bv.request_id = p->request_id;
    memcpy(bv.seller, p->seller, 20);
    return sign_and_store(w, ch, p, why, whycap, &acc, &bv);
}

void by_wallet_done(by_wallet *w, by_payment *p, const os_infer_final *f, const char *outcome,
                    uint64_t latency_ms, uint64_t ttft_ms)
{
    by_bdb_request_end end;
    by_chan *ch;
    uint64_t cost = 0, unseen = 0;
    const char *oc = "failed";
    os_err e;

    if (w == NULL || p == NULL)
        return;
    free(p->payment);
    p->payment = NULL;
    if (p->request_id == 0)
        return; /* never paid, or already done */
    for (size_t i = 0; outcome != NULL && i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
        if (strcmp(outcome, outcomes[i]) == 0)
            oc = outcomes[i];
    memset(&end, 0, sizeof(end));
    if (f != NULL) {
        cost = f->cost;
        if (cost > p->estimate) {
            /* the seller caps a charge at the voucher's increment; a larger one is not ours */
            by_w_log(w, OS_LOG_WARN, "seller reported a cost above the estimate; cut",
                     p->channel_id, NULL, NULL);
            cost = p->estimate;
        }
        end.usage = f->usage;
    }
    ch = by_w_chan_find(w, p->channel_id);
    if (ch != NULL) {
        pthread_mutex_lock(&ch->mu);
        ch->inflight = sat_sub(ch->inflight, p->estimate);
        if (ch->n_inflight > 0)
            ch->n_inflight--;
        if (f != NULL) {
            if (f->cumulative_consumed <= ch->authorized) {
                /* The seller's consumed after this request, beyond ours plus its cost, is what it
                 * booked that we never saw: the request of a past life of this buyer (killed
                 * with it in flight) that it booked after its 402 told us only what was booked
                 * then, or one whose closing fields we lost. With nothing else of ours in flight
                 * here it is exact, and it is booked as spent like a 402's adoption. With others
                 * in flight it may hold their costs, which their own closing fields book: skip
                 * it then (a later request, or a 402, brings what is left). */
                if (ch->n_inflight == 0 && f->cumulative_consumed > sat_add(ch->consumed, cost))
                    unseen = f->cumulative_consumed - sat_add(ch->consumed, cost);
                if (f->cumulative_consumed > ch->consumed)
                    ch->consumed = f->cumulative_consumed;
                end.has_consumed = true;
                end.consumed = f->cumulative_consumed;
                end.unseen = unseen; /* booked with the request, in one transaction */
            } else {
                pthread_mutex_unlock(&ch->mu);
                by_w_log(w, OS_LOG_WARN,
                         "seller reported consumed above anything authorised; ignored",
                         p->channel_id, NULL, NULL);
                pthread_mutex_lock(&ch->mu);
            }
        }
        pthread_mutex_unlock(&ch->mu);
    }
    pthread_mutex_lock(&w->mu);
    w->inflight_all = sat_sub(w->inflight_all, p->estimate);
    by_w_day_roll_locked(w);
    w->day_spent = sat_add(sat_add(w->day_spent, cost), unseen);
    end.day = w->day;
    pthread_mutex_unlock(&w->mu);

    end.request_id = p->request_id;
    memcpy(end.channel_id, p->channel_id, 32);
    memcpy(end.seller, p->seller, 20);
    end.outcome = oc;
    end.cost = cost;
    end.latency_ms = latency_ms;
    end.ttft_ms = ttft_ms;
    if ((e = by_bdb_request_finish(w->db, &end)) != OS_OK)
        by_w_log(w, OS_LOG_ERROR, "cannot record a finished request", p->channel_id, "error",
                 os_strerror(e));
    else if (unseen > 0)
        by_w_log(w, OS_LOG_INFO, "adopted consumed from a seller's closing fields", p->channel_id,
                 NULL, NULL);
    p->request_id = 0;
}
