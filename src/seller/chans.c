/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's channel cache (chans.h): a hash map of the channels that pay this seller, each
 * entry with its own mutex, so the payment decision of PROTOCOL.md §7 is made from memory and one
 * durable ledger write, never from a chain call. Only a channel's first voucher (or the first
 * since a restart) reads the chain, through a bounded number of lookup slots; ids the chain does
 * not know are remembered in a small direct-mapped negative cache. This file holds the map, that
 * cache, lookup, paying, invoices and the cache's lifetime; chans_refresh.c keeps the entries in
 * step with the chain from a background thread and chans_settle.c claims (chans_internal.h has
 * what they share, and the lock order).
 */
#include "chans_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/eip712.h"
#include "openseed/money.h"

#define DEFAULT_REFRESH_MS UINT64_C(15000)
#define DEFAULT_THRESHOLD UINT64_C(1000000)
#define DEFAULT_SETTLE_INTERVAL_MS UINT64_C(3600000)
#define DEFAULT_MAX_LOOKUPS 4u
#define DEFAULT_UNKNOWN_TTL_MS UINT64_C(10000)
#define DEFAULT_MAX_TIMEOUT_S 300u
#define NEG_SLOTS 1024u /* unknown-id cache entries (direct-mapped: a collision evicts) */
#define INITIAL_BUCKETS 64u

typedef struct sl_chans_neg_slot {
    uint8_t id[32];
    uint64_t until; /* monotonic ms; 0 empty */
    bool other_seller;
} neg_slot;

static uint64_t id_hash(const sl_chans *c, const uint8_t id[32])
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v = 0;
    crypto_shorthash(h, id, 32, c->hkey);
    for (size_t i = 0; i < sizeof(h); i++)
        v = (v << 8) | h[i];
    return v;
}

/* ---- the map ------------------------------------------------------------------------------ */

static sl_chan_entry *find_locked(const sl_chans *c, const uint8_t id[32])
{
    sl_chan_entry *ch = c->buckets[id_hash(c, id) & (c->nbuckets - 1)];
    while (ch != NULL && memcmp(ch->id, id, 32) != 0)
        ch = ch->next;
    return ch;
}

sl_chan_entry *sl_chans_find_(sl_chans *c, const uint8_t id[32])
{
    sl_chan_entry *ch;
    pthread_rwlock_rdlock(&c->map_mu);
    ch = find_locked(c, id);
    pthread_rwlock_unlock(&c->map_mu);
    return ch;
}

/* Grows the buckets when the chains get long; a failed allocation only keeps them long. */
static void maybe_grow(sl_chans *c)
{
    size_t nb = c->nbuckets * 2;
    sl_chan_entry **b;
    if (c->n < c->nbuckets * 2 || nb > SIZE_MAX / sizeof(*b))
        return;
    b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        sl_chan_entry *ch = c->all[i];
        size_t k = id_hash(c, ch->id) & (nb - 1);
        ch->next = b[k];
        b[k] = ch;
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* The entry for id, made (unverified, empty) if there is none. NULL on allocation failure. */
static sl_chan_entry *get_or_add(sl_chans *c, const uint8_t id[32])
{
    sl_chan_entry *ch;
    size_t k;

    pthread_rwlock_wrlock(&c->map_mu);
    ch = find_locked(c, id);
    if (ch != NULL)
        goto out;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        sl_chan_entry **a = cap <= SIZE_MAX / sizeof(*a) ? realloc(c->all, cap * sizeof(*a)) : NULL;
        if (a == NULL)
            goto out;
        c->all = a;
        c->cap = cap;
    }
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        goto out;
    if (pthread_mutex_init(&ch->mu, NULL) != 0) {
        free(ch);
        ch = NULL;
        goto out;
    }
    memcpy(ch->id, id, 32);
    ch->settle_mono = mono_ms();
    k = id_hash(c, id) & (c->nbuckets - 1);
    ch->next = c->buckets[k];
    c->buckets[k] = ch;
    c->all[c->n++] = ch;
    maybe_grow(c);
out:
    pthread_rwlock_unlock(&c->map_mu);
    return ch;
}

size_t sl_chans_snapshot_(sl_chans *c, sl_chan_entry ***out)
{
    size_t n;
    *out = NULL;
    pthread_rwlock_rdlock(&c->map_mu);
    n = c->n;
    if (n > 0) {
        *out = malloc(n * sizeof(**out));
        if (*out != NULL)
            memcpy(*out, c->all, n * sizeof(**out));
        else
            n = 0;
    }
    pthread_rwlock_unlock(&c->map_mu);
    return n;
}

/* ---- the unknown-id cache ----------------------------------------------------------------- */

static neg_slot *neg_slot_of(sl_chans *c, const uint8_t id[32])
{
    return &c->neg[id_hash(c, id) % NEG_SLOTS];
}

/* 0: not cached; 1: unknown on chain; 2: another seller's. */
static int neg_check(sl_chans *c, const uint8_t id[32])
{
    int r = 0;
    pthread_mutex_lock(&c->neg_mu);
    neg_slot *s = neg_slot_of(c, id);
    if (s->until != 0 && memcmp(s->id, id, 32) == 0) {
        if (mono_ms() < s->until)
            r = s->other_seller ? 2 : 1;
        else
            s->until = 0;
    }
    pthread_mutex_unlock(&c->neg_mu);
    return r;
}

static void neg_put(sl_chans *c, const uint8_t id[32], bool other_seller)
{
    pthread_mutex_lock(&c->neg_mu);
    neg_slot *s = neg_slot_of(c, id);
    memcpy(s->id, id, 32);
    s->until = mono_ms() + c->cfg.unknown_ttl_ms;
    s->other_seller = other_seller;
    pthread_mutex_unlock(&c->neg_mu);
}

/* ---- lookup ------------------------------------------------------------------------------- */

/* Whether the (locked) entry may be paid on; why gets the reason when not. */
static os_err usable(const sl_chans *c, const sl_chan_entry *ch, char *why, size_t whycap,
                     const char **code)
{
    const char *msg = NULL, *cd = NULL;
    if (memcmp(ch->st.seller, c->cfg.seller, 20) != 0) {
        msg = "the channel pays another seller";
        cd = "invalid_channel";
    } else if (ch->st.closed) {
        msg = "the channel is closed";
        cd = "channel_closed";
    } else if (ch->st.close_at != 0) {
        msg = "the channel is closing";
        cd = "channel_closed";
    }
    if (code != NULL)
        *code = cd;
    if (msg == NULL)
        return OS_OK;
    snprintf(why, whycap, "%s", msg);
    return OS_ERR_INVALID;
}

/* usable, and when it is, what the credential check needs. Entry locked. */
static os_err view_if_usable(const sl_chans *c, sl_chan_view *out, const sl_chan_entry *ch,
                             char *why, size_t whycap)
{
    os_err e = usable(c, ch, why, whycap, NULL);
    if (e != OS_OK)
        return e;
    memcpy(out->id, ch->id, 32);
    memcpy(out->signer, ch->st.signer, 20);
    memcpy(out->commitment, ch->st.commitment, 32);
    out->deposit = ch->st.deposit;
    return OS_OK;
}

os_err sl_chans_lookup(sl_chans *c, sl_chan_view *out, const uint8_t id[32], char *why,
                       size_t whycap)
{
    char dummy[8];
    os_channel_state st;
    sl_chan_entry *ch;
    bool fresh = false;
    os_err e;
    int t;

    if (why == NULL || whycap == 0) {
        why = dummy;
        whycap = sizeof(dummy);
    }
    why[0] = '\0';
    if (c == NULL || out == NULL || id == NULL) {
        snprintf(why, whycap, "internal error");
        return OS_ERR_INVALID;
    }
    memset(out, 0, sizeof(*out));

    ch = sl_chans_find_(c, id);
    if (ch != NULL) {
        pthread_mutex_lock(&ch->mu);
        if (ch->verified) {
            e = view_if_usable(c, out, ch, why, whycap);
            pthread_mutex_unlock(&ch->mu);
            return e;
        }
        pthread_mutex_unlock(&ch->mu);
    } else {
        switch (neg_check(c, id)) {
        case 1:
            snprintf(why, whycap, "no such channel on this escrow");
            return OS_ERR_NOTFOUND;
        case 2:
            snprintf(why, whycap, "the channel pays another seller");
            return OS_ERR_INVALID;
        default:
            break;
        }
    }

    /* unknown, or stored but not re-read since start: one chain read, in a bounded slot */
    if (atomic_fetch_add(&c->lookups, 1) >= c->cfg.max_lookups) {
        atomic_fetch_sub(&c->lookups, 1);
        snprintf(why, whycap, "too many channel lookups at once; retry shortly");
        return OS_ERR_TOOBIG;
    }
    e = sl_chans_read_(c, &st, id);
    atomic_fetch_sub(&c->lookups, 1);
    if (e == OS_ERR_NOTFOUND) {
        neg_put(c, id, false);
        snprintf(why, whycap, "no such channel on this escrow");
        return OS_ERR_NOTFOUND;
    }
    if (e != OS_OK) {
        snprintf(why, whycap, "the chain could not be read; retry shortly");
        return OS_ERR_NETWORK;
    }
    if (ch == NULL && memcmp(st.seller, c->cfg.seller, 20) != 0) {
        neg_put(c, id, true);
        snprintf(why, whycap, "the channel pays another seller");
        return OS_ERR_INVALID;
    }
    if (ch == NULL) {
        /* the row must exist before a voucher can be accepted on it */
        if (sl_ledger_channel_put_chain(c->cfg.ledger, id, &st, wall_ms()) != OS_OK) {
            log_chan(c, OS_LOG_ERROR, "cannot store a new channel", id, NULL, NULL);
            snprintf(why, whycap, "internal error");
            return OS_ERR_IO;
        }
        ch = get_or_add(c, id);
        if (ch == NULL) {
            snprintf(why, whycap, "internal error");
            return OS_ERR_NOMEM;
        }
        log_chan(c, OS_LOG_INFO, "new channel", id, NULL, NULL);
        fresh = true;
    }
    pthread_mutex_lock(&ch->mu);
    t = sl_chans_merge_(ch, &st, true);
    st = ch->st;
    e = view_if_usable(c, out, ch, why, whycap);
    pthread_mutex_unlock(&ch->mu);
    if (!fresh || t != 0) /* a new row was just stored with this state */
        sl_chans_store_(c, id, t, &st);
    return e;
}

/* ---- paying ------------------------------------------------------------------------------- */

/* The nonce a new voucher must exceed (with a voucher accepted) or reach (without): the latest
 * accepted, and never below what the chain already redeemed. Entry locked. */
static uint64_t last_nonce(const sl_chan_entry *ch)
{
    return ch->has_voucher ? u64_max(ch->nonce, ch->st.last_nonce) : ch->st.last_nonce;
}

static void invoice_base(const sl_chans *c, os_x402_requirement *out, uint64_t estimate,
                         const uint8_t *metadata_hash)
{
    memset(out, 0, sizeof(*out));
    out->chain_id = c->cfg.chain_id;
    out->amount = estimate;
    memcpy(out->asset, c->cfg.asset, 20);
    memcpy(out->pay_to, c->cfg.seller, 20);
    out->max_timeout_s = c->cfg.max_timeout_s;
    memcpy(out->escrow, c->cfg.escrow, 20);
    if (metadata_hash != NULL) {
        out->has_metadata_hash = true;
        memcpy(out->metadata_hash, metadata_hash, 32);
    }
}

/* The channel part of an invoice, from a locked entry. consumed is what the next voucher builds on
 * (booked + the estimates in flight); reserved says how much of it is in flight, so a buyer with no
 * request of its own in flight here (one restarted after a crash) adopts only what is booked, not
 * the estimate of a request of its past life that this seller has yet to book. */
static void invoice_channel(os_x402_requirement *out, const sl_chan_entry *ch)
{
    out->has_channel = true;
    memcpy(out->channel_id, ch->id, 32);
    if (os_money_add(&out->consumed, ch->consumed, ch->reserved) != OS_OK)
        out->consumed = UINT64_MAX;
    out->has_reserved = true;
    out->reserved = out->consumed - ch->consumed; /* ch->reserved, or less when capped above */
    out->authorized = ch->has_voucher ? ch->cumulative : 0;
    out->nonce = last_nonce(ch);
}

__attribute__((format(printf, 4, 5))) static void refuse(sl_refusal *r, unsigned status,
                                                         const char *code, const char *fmt, ...)
{
    va_list ap;
    r->status = status;
    snprintf(r->code, sizeof(r->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
}

os_err sl_chans_pay(sl_chans *c, sl_ticket *t, sl_refusal *r, const os_voucher *v,
                    const uint8_t metadata_hash[32], uint64_t estimate, const char *api,
                    const char *service)
{
    char why[128];
    const char *code = NULL;
    uint64_t need, rid = 0, last, covered;
    sl_chan_entry *ch;
    bool late = false;
    os_err e;

    if (c == NULL || t == NULL || r == NULL || v == NULL || metadata_hash == NULL)
        return OS_ERR_INTERNAL;
    memset(t, 0, sizeof(*t));
    memset(r, 0, sizeof(*r));
    invoice_base(c, &r->req, estimate, metadata_hash);

    ch = sl_chans_find_(c, v->channel_id);
    if (ch == NULL) {
        refuse(r, 402, "unknown_channel", "the channel is not known to this seller");
        return OS_ERR_NOTFOUND;
    }
    pthread_mutex_lock(&ch->mu);
    invoice_channel(&r->req, ch);
    if (!ch->verified) {
        refuse(r, 402, "unknown_channel", "the channel has not been checked on chain yet");
        e = OS_ERR_NOTFOUND;
        goto out;
    }
    if (usable(c, ch, why, sizeof(why), &code) != OS_OK) {
        refuse(r, 402, code, "%s", why);
        e = OS_ERR_INVALID;
        goto out;
    }
    /* 1. the channel's signer, low-s (os_voucher_verify_ds refuses high-s and odd v) */
    if (os_voucher_verify_ds(v, ch->st.signer, c->domain) != OS_OK) {
        refuse(r, 401, "invalid_signature", "the voucher is not signed by the channel's signer");
        e = OS_ERR_CRYPTO;
        goto out;
    }
    /* 2. a nonce above the last accepted; or, since a buyer's concurrent requests reach us in
     * any order, a late one: below the latest, above what the chain has claimed, not older than
     * SL_LATE_NONCE_WINDOW, and used once (the ledger's unique key; the nullifier cache first) */
    last = last_nonce(ch);
    if (ch->has_voucher ? v->nonce <= last : v->nonce < last) {
        late = ch->has_voucher && v->nonce < ch->nonce && v->nonce > ch->st.last_nonce &&
               ch->nonce - v->nonce <= SL_LATE_NONCE_WINDOW;
        if (!late) {
            refuse(r, 402, "stale_nonce", "the voucher nonce must be above %" PRIu64, last);
            e = OS_ERR_EXISTS;
            goto out;
        }
    }
    /* 3. this request's body */
    if (memcmp(v->metadata_hash, metadata_hash, 32) != 0) {
        refuse(r, 401, "metadata_mismatch", "the voucher's metadataHash is not this request's");
        e = OS_ERR_CRYPTO;
        goto out;
    }
    /* 4. never more than the deposit can pay */
    if (v->cumulative_amount > ch->st.deposit) {
        refuse(r, 402, "exceeds_deposit",
               "the voucher's cumulative amount is above the deposit (%" PRIu64 ")",
               ch->st.deposit);
        e = OS_ERR_RANGE;
        goto out;
    }
    /* 5. covers what was consumed, what is in flight, and this request: a late voucher's request
     * must be covered by the latest voucher, which was signed with it in flight */
    covered = late ? ch->cumulative : v->cumulative_amount;
    if (os_money_add(&need, ch->consumed, ch->reserved) != OS_OK ||
        os_money_add(&need, need, estimate) != OS_OK || covered < need) {
        refuse(r, 402, "insufficient_amount",
               "the voucher must cover consumed + in flight + this request's estimate");
        e = OS_ERR_RANGE;
        goto out;
    }
    e = late ? sl_ledger_accept_late(c->cfg.ledger, &rid, v, api, service, estimate)
             : sl_ledger_accept(c->cfg.ledger, &rid, v, api, service, estimate);
    if (e == OS_ERR_EXISTS && late) {
        refuse(r, 402, "stale_nonce", "the voucher nonce was used already");
        goto out;
    }
    if (e == OS_ERR_EXISTS) {
        /* the ledger holds a newer voucher than this entry: never accept below it */
        log_chan(c, OS_LOG_WARN, "ledger refused a voucher nonce the cache allowed", ch->id, NULL,
                 NULL);
        refuse(r, 402, "stale_nonce", "the voucher nonce is not above the last accepted");
        goto out;
    }
    if (e != OS_OK) {
        log_chan(c, OS_LOG_ERROR, "cannot store an accepted voucher", ch->id, "error",
                 os_strerror(e));
        memset(r, 0, sizeof(*r));
        if (e == OS_ERR_TIMEOUT || e == OS_ERR_IO) {
            /* the database is locked by another process (busy timeout) or cannot be written
             * (disk full, I/O error): a condition that passes, so a retry may succeed */
            refuse(r, 503, "storage_unavailable",
                   "the seller cannot record the payment right now; nothing was charged; retry");
        } else {
            e = OS_ERR_IO;
            refuse(r, 500, "internal_error",
                   "the payment could not be recorded; nothing was charged");
        }
        goto out;
    }
    if (!late) {
        ch->has_voucher = true;
        ch->nonce = v->nonce;
        ch->cumulative = v->cumulative_amount;
    }
    ch->reserved += estimate; /* need above did not overflow */
    ch->in_flight++;
    memcpy(t->channel_id, ch->id, 32);
    t->request_id = rid;
    t->estimate = estimate;
    t->cumulative = v->cumulative_amount;
out:
    pthread_mutex_unlock(&ch->mu);
    return e;
}

os_err sl_chans_finish(sl_chans *c, uint64_t *consumed_after, const sl_ticket *t,
                       const sl_request_end *e)
{
    sl_request_end end;
    uint64_t after = 0;
    sl_chan_entry *ch;
    os_err le;

    if (c == NULL || t == NULL || e == NULL)
        return OS_ERR_INVALID;
    ch = sl_chans_find_(c, t->channel_id);
    if (ch == NULL)
        return OS_ERR_NOTFOUND;
    end = *e;
    if (end.cost > t->estimate) {
        os_log_event ev;
        if (log_begin_chan(&ev, c, OS_LOG_WARN, "request cost above its estimate; cut",
                           t->channel_id)) {
            os_log_kv(&ev, "request", "%" PRIu64, t->request_id);
            os_log_kv(&ev, "cost", "%" PRIu64, end.cost);
            os_log_kv(&ev, "estimate", "%" PRIu64, t->estimate);
            os_log_end(&ev);
        }
        end.cost = t->estimate;
    }
    pthread_mutex_lock(&ch->mu);
    le = sl_ledger_finish(c->cfg.ledger, &after, t->request_id, &end);
    if (le == OS_OK)
        ch->consumed = u64_max(ch->consumed, after);
    /* a ticket finished twice, or one we never issued, holds no reservation */
    if (le != OS_ERR_EXISTS && le != OS_ERR_NOTFOUND) {
        ch->reserved = ch->reserved >= t->estimate ? ch->reserved - t->estimate : 0;
        if (ch->in_flight > 0)
            ch->in_flight--;
    }
    if (consumed_after != NULL)
        *consumed_after = ch->consumed;
    pthread_mutex_unlock(&ch->mu);
    if (le != OS_OK)
        log_chan(c, OS_LOG_ERROR, "cannot book a finished request", t->channel_id, "error",
                 os_strerror(le));
    return le;
}

void sl_chans_invoice(sl_chans *c, os_x402_requirement *out, const uint8_t *channel_id,
                      uint64_t estimate, const uint8_t *metadata_hash)
{
    sl_chan_entry *ch;
    if (c == NULL || out == NULL)
        return;
    invoice_base(c, out, estimate, metadata_hash);
    if (channel_id == NULL || (ch = sl_chans_find_(c, channel_id)) == NULL)
        return;
    pthread_mutex_lock(&ch->mu);
    invoice_channel(out, ch);
    pthread_mutex_unlock(&ch->mu);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void chan_free(sl_chan_entry *ch)
{
    pthread_mutex_destroy(&ch->mu);
    free(ch);
}

os_err sl_chans_new(sl_chans **out, const sl_chans_config *cfg)
{
    sl_chans *c;
    sl_channel *rows = NULL;
    pthread_condattr_t ca;
    size_t n = 0;
    os_err e;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    *out = NULL;
    if (cfg == NULL || cfg->chain == NULL || cfg->ledger == NULL || cfg->chain_id == 0)
        return OS_ERR_INVALID;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return OS_ERR_NOMEM;
    c->cfg = *cfg;
    if (c->cfg.refresh_ms == 0)
        c->cfg.refresh_ms = DEFAULT_REFRESH_MS;
    if (c->cfg.settle_threshold == 0)
        c->cfg.settle_threshold = DEFAULT_THRESHOLD;
    if (c->cfg.settle_interval_ms == 0)
        c->cfg.settle_interval_ms = DEFAULT_SETTLE_INTERVAL_MS;
    if (c->cfg.max_lookups == 0)
        c->cfg.max_lookups = DEFAULT_MAX_LOOKUPS;
    if (c->cfg.unknown_ttl_ms == 0)
        c->cfg.unknown_ttl_ms = DEFAULT_UNKNOWN_TTL_MS;
    if (c->cfg.max_timeout_s == 0)
        c->cfg.max_timeout_s = DEFAULT_MAX_TIMEOUT_S;
    os_eip712_channels_domain(c->domain, c->cfg.chain_id, c->cfg.escrow);
    crypto_shorthash_keygen(c->hkey);

    c->buckets = calloc(INITIAL_BUCKETS, sizeof(*c->buckets));
    c->nbuckets = INITIAL_BUCKETS;
    c->neg = calloc(NEG_SLOTS, sizeof(*c->neg));
    if (c->buckets == NULL || c->neg == NULL || pthread_condattr_init(&ca) != 0)
        goto nomem;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&c->bg_cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        goto nomem;
    }
    pthread_condattr_destroy(&ca);
    pthread_rwlock_init(&c->map_mu, NULL);
    pthread_mutex_init(&c->neg_mu, NULL);
    pthread_mutex_init(&c->settle_mu, NULL);
    pthread_mutex_init(&c->bg_mu, NULL);
    atomic_init(&c->lookups, 0);
    atomic_init(&c->stop, false);
    atomic_init(&c->settlements_ok, 0);
    atomic_init(&c->settlements_failed, 0);
    atomic_init(&c->chain_errors, 0);

    e = sl_ledger_channel_list(c->cfg.ledger, &rows, &n);
    if (e != OS_OK) {
        sl_chans_free(c);
        return e;
    }
    for (size_t i = 0; i < n; i++) {
        sl_chan_entry *ch = get_or_add(c, rows[i].id);
        if (ch == NULL) {
            free(rows);
            sl_chans_free(c);
            return OS_ERR_NOMEM;
        }
        ch->st = rows[i].chain;
        ch->has_voucher = rows[i].has_voucher;
        ch->nonce = rows[i].voucher.nonce;
        ch->cumulative = rows[i].voucher.cumulative_amount;
        ch->consumed = rows[i].consumed;
    }
    free(rows);
    if (c->cfg.signer == NULL)
        os_log_warn(c->cfg.log, "no signer: channels will not be settled");
    *out = c;
    return OS_OK;

nomem: /* before the locks exist, so not sl_chans_free */
    free(c->buckets);
    free(c->neg);
    free(c);
    return OS_ERR_NOMEM;
}

void sl_chans_free(sl_chans *c)
{
    if (c == NULL)
        return;
    sl_chans_stop(c);
    for (size_t i = 0; i < c->n; i++)
        chan_free(c->all[i]);
    free(c->all);
    free(c->buckets);
    free(c->neg);
    pthread_rwlock_destroy(&c->map_mu);
    pthread_mutex_destroy(&c->neg_mu);
    pthread_mutex_destroy(&c->settle_mu);
    pthread_mutex_destroy(&c->bg_mu);
    pthread_cond_destroy(&c->bg_cv);
    sodium_memzero(c->hkey, sizeof(c->hkey));
    free(c);
}

void sl_chans_get_stats(sl_chans *c, sl_chans_stats *out)
{
    sl_chan_entry **list;
    size_t n;
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return;
    n = sl_chans_snapshot_(c, &list);
    out->channels = n;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&list[i]->mu);
        if (!list[i]->verified)
            out->unverified++;
        out->in_flight += list[i]->in_flight;
        if (os_money_add(&out->consumed, out->consumed, list[i]->consumed) != OS_OK)
            out->consumed = UINT64_MAX;
        if (os_money_add(&out->claimed, out->claimed, list[i]->st.claimed) != OS_OK)
            out->claimed = UINT64_MAX;
        pthread_mutex_unlock(&list[i]->mu);
    }
    free(list);
    out->settlements_ok = atomic_load(&c->settlements_ok);
    out->settlements_failed = atomic_load(&c->settlements_failed);
    out->chain_errors = atomic_load(&c->chain_errors);
}
