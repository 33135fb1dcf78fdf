/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's channel cache (chans.h): a hash map of the channels that pay this seller, each
 * entry with its own mutex, so the payment decision of PROTOCOL.md §7 is made from memory and one
 * durable ledger write, never from a chain call. Only a channel's first voucher (or the first
 * since a restart) reads the chain, through a bounded number of lookup slots; ids the chain does
 * not know are remembered in a small direct-mapped negative cache. A background thread re-checks
 * the channels loaded from seller.db, re-reads every channel each refresh period, follows the
 * escrow's events from the last block it saw, and settles. Chain state is merged monotonically
 * (deposit, claimed, lastNonce and closeAt only grow, closed only turns on), so reads and events
 * arriving in any order converge. Lock order: map lock, then an entry's lock, then the ledger's;
 * the settle lock is taken before any entry lock and no entry lock is held across a chain call.
 */
#include "chans.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "openseed/ct.h"
#include "openseed/eip712.h"
#include "openseed/hex.h"
#include "openseed/money.h"

#define DEFAULT_REFRESH_MS UINT64_C(15000)
#define DEFAULT_THRESHOLD UINT64_C(1000000)
#define DEFAULT_SETTLE_INTERVAL_MS UINT64_C(3600000)
#define DEFAULT_MAX_LOOKUPS 4u
#define DEFAULT_UNKNOWN_TTL_MS UINT64_C(10000)
#define DEFAULT_MAX_TIMEOUT_S 300u
#define NEG_SLOTS 1024u /* unknown-id cache entries (direct-mapped: a collision evicts) */
#define INITIAL_BUCKETS 64u
#define LOG_RANGE_MAX UINT64_C(2000) /* blocks per eth_getLogs (re-reads cover a longer gap) */
#define RETRY_MIN_MS UINT64_C(1000)  /* least wait before an automatic claim is retried */
#define RETRY_REFRESHES 4u           /* ... otherwise this many refresh periods */
#define ID_HEX OS_HEX_LEN(32)

typedef struct chan {
    uint8_t id[32];
    pthread_mutex_t mu;
    /* under mu */
    os_channel_state st; /* merged chain state */
    bool verified;       /* read from the chain since this process started */
    bool dead;           /* a claim can no longer succeed (grace over, closed) */
    bool has_voucher;
    uint64_t nonce, cumulative; /* the latest accepted voucher */
    uint64_t consumed;          /* as the ledger has it */
    uint64_t reserved;          /* sum of the estimates of requests in flight */
    uint64_t in_flight;
    uint64_t read_mono;   /* when the chain was last read (monotonic ms); 0 never */
    uint64_t settle_mono; /* last claim attempt, or when the entry was made */
    uint64_t retry_mono;  /* no automatic claim before this */
    struct chan *next;    /* bucket chain, under the map lock */
} chan;

typedef struct neg_slot {
    uint8_t id[32];
    uint64_t until; /* monotonic ms; 0 empty */
    bool other_seller;
} neg_slot;

struct sl_chans {
    sl_chans_config cfg; /* defaults filled in */
    uint8_t domain[32];  /* the vouchers' EIP-712 domain separator */
    unsigned char hkey[crypto_shorthash_KEYBYTES];

    pthread_rwlock_t map_mu;
    chan **buckets;
    size_t nbuckets;
    chan **all; /* every entry, in insertion order; entries live until sl_chans_free */
    size_t n, cap;

    pthread_mutex_t neg_mu;
    neg_slot *neg;
    atomic_uint lookups;

    pthread_mutex_t settle_mu; /* one claim at a time: a voucher is never claimed twice at once */

    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    bool running, wake;
    atomic_bool stop;
    pthread_t thread;
    bool have_block; /* background thread only */
    uint64_t last_block;

    atomic_uint_fast64_t settlements_ok, settlements_failed, chain_errors;
};

/* ---- time, ids ---------------------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void id_hex(char out[ID_HEX], const uint8_t id[32])
{
    if (os_hex_encode(out, ID_HEX, id, 32, 1) != OS_OK)
        out[0] = '\0';
}

static uint64_t id_hash(const sl_chans *c, const uint8_t id[32])
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v = 0;
    crypto_shorthash(h, id, 32, c->hkey);
    for (size_t i = 0; i < sizeof(h); i++)
        v = (v << 8) | h[i];
    return v;
}

static uint64_t u64_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static void log_chan(const sl_chans *c, os_log_level lvl, const char *msg, const uint8_t id[32],
                     const char *k, const char *v)
{
    os_log_event ev;
    char hex[ID_HEX];
    if (!os_log_begin(&ev, c->cfg.log, lvl, msg))
        return;
    id_hex(hex, id);
    os_log_kv(&ev, "channel", "%s", hex);
    if (k != NULL)
        os_log_kv(&ev, k, "%s", v != NULL ? v : "");
    os_log_end(&ev);
}

/* ---- the map ------------------------------------------------------------------------------ */

static chan *find_locked(const sl_chans *c, const uint8_t id[32])
{
    chan *ch = c->buckets[id_hash(c, id) & (c->nbuckets - 1)];
    while (ch != NULL && memcmp(ch->id, id, 32) != 0)
        ch = ch->next;
    return ch;
}

static chan *find(sl_chans *c, const uint8_t id[32])
{
    chan *ch;
    pthread_rwlock_rdlock(&c->map_mu);
    ch = find_locked(c, id);
    pthread_rwlock_unlock(&c->map_mu);
    return ch;
}

/* Grows the buckets when the chains get long; a failed allocation only keeps them long. */
static void maybe_grow(sl_chans *c)
{
    size_t nb = c->nbuckets * 2;
    chan **b;
    if (c->n < c->nbuckets * 2 || nb > SIZE_MAX / sizeof(*b))
        return;
    b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        chan *ch = c->all[i];
        size_t k = id_hash(c, ch->id) & (nb - 1);
        ch->next = b[k];
        b[k] = ch;
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* The entry for id, made (unverified, empty) if there is none. NULL on allocation failure. */
static chan *get_or_add(sl_chans *c, const uint8_t id[32])
{
    chan *ch;
    size_t k;

    pthread_rwlock_wrlock(&c->map_mu);
    ch = find_locked(c, id);
    if (ch != NULL)
        goto out;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        chan **a = cap <= SIZE_MAX / sizeof(*a) ? realloc(c->all, cap * sizeof(*a)) : NULL;
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

/* A copy of the entry list (entries are never freed before sl_chans_free); *out is malloc'd. */
static size_t snapshot(sl_chans *c, chan ***out)
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

/* ---- chain state -------------------------------------------------------------------------- */

/* Merges a read or an event into the entry (locked). Returns 1 when the channel just became
 * closing, 2 when it just closed, else 0. */
static int merge_state(chan *ch, const os_channel_state *st)
{
    bool was_closing = ch->st.close_at != 0, was_closed = ch->st.closed;

    /* fixed at open on chain: whatever was stored before, the chain's word wins */
    memcpy(ch->st.payer, st->payer, 20);
    memcpy(ch->st.seller, st->seller, 20);
    memcpy(ch->st.signer, st->signer, 20);
    memcpy(ch->st.commitment, st->commitment, 32);
    ch->st.deposit = u64_max(ch->st.deposit, st->deposit);
    ch->st.claimed = u64_max(ch->st.claimed, st->claimed);
    ch->st.last_nonce = u64_max(ch->st.last_nonce, st->last_nonce);
    if (ch->st.close_at == 0)
        ch->st.close_at = st->close_at;
    ch->st.closed = ch->st.closed || st->closed;
    ch->st.block = u64_max(ch->st.block, st->block);
    if (ch->st.closed && !was_closed)
        return 2;
    if (ch->st.close_at != 0 && !was_closing)
        return 1;
    return 0;
}

static void note_transition(sl_chans *c, const uint8_t id[32], int t)
{
    if (t == 1)
        log_chan(c, OS_LOG_INFO, "channel closing: the payer asked to close", id, NULL, NULL);
    else if (t == 2)
        log_chan(c, OS_LOG_INFO, "channel closed on chain", id, NULL, NULL);
}

static void store_state(sl_chans *c, const uint8_t id[32], const os_channel_state *st)
{
    if (sl_ledger_channel_put_chain(c->cfg.ledger, id, st, wall_ms()) != OS_OK)
        log_chan(c, OS_LOG_WARN, "cannot store the channel's chain state", id, NULL, NULL);
}

/* Reads id from the escrow. Counts failures other than "unknown". */
static os_err chain_read(sl_chans *c, os_channel_state *st, const uint8_t id[32])
{
    os_chain_error err;
    os_err e;
    os_chain_err_reset(&err);
    e = os_escrow_get_channel(c->cfg.chain, st, &err, c->cfg.escrow, id);
    if (e != OS_OK && e != OS_ERR_NOTFOUND) {
        atomic_fetch_add(&c->chain_errors, 1);
        log_chan(c, OS_LOG_WARN, "cannot read the channel from the chain", id, "error",
                 err.message);
    }
    return e;
}

/* Re-reads an entry's channel and stores the merged state (background and settle paths). */
static os_err refresh_one(sl_chans *c, chan *ch)
{
    os_channel_state st, snap;
    int t;
    os_err e = chain_read(c, &st, ch->id);
    if (e != OS_OK)
        return e;
    pthread_mutex_lock(&ch->mu);
    t = merge_state(ch, &st);
    ch->verified = true;
    ch->read_mono = mono_ms();
    snap = ch->st;
    pthread_mutex_unlock(&ch->mu);
    note_transition(c, ch->id, t);
    store_state(c, ch->id, &snap);
    return OS_OK;
}

/* Whether the (locked) entry may be paid on; why gets the reason when not. */
static os_err usable(const sl_chans *c, const chan *ch, char *why, size_t whycap, const char **code)
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

static void fill_view(sl_chan_view *out, const chan *ch)
{
    memcpy(out->id, ch->id, 32);
    memcpy(out->signer, ch->st.signer, 20);
    memcpy(out->commitment, ch->st.commitment, 32);
    out->deposit = ch->st.deposit;
}

/* ---- lookup ------------------------------------------------------------------------------- */

os_err sl_chans_lookup(sl_chans *c, sl_chan_view *out, const uint8_t id[32], char *why,
                       size_t whycap)
{
    char dummy[8];
    os_channel_state st;
    chan *ch;
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

    ch = find(c, id);
    if (ch != NULL) {
        pthread_mutex_lock(&ch->mu);
        if (ch->verified) {
            e = usable(c, ch, why, whycap, NULL);
            if (e == OS_OK)
                fill_view(out, ch);
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
    e = chain_read(c, &st, id);
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
    t = merge_state(ch, &st);
    ch->verified = true;
    ch->read_mono = mono_ms();
    st = ch->st;
    e = usable(c, ch, why, whycap, NULL);
    if (e == OS_OK)
        fill_view(out, ch);
    pthread_mutex_unlock(&ch->mu);
    note_transition(c, id, t);
    if (!fresh || t != 0)
        store_state(c, id, &st);
    return e;
}

/* ---- paying ------------------------------------------------------------------------------- */

/* The nonce a new voucher must exceed (with a voucher accepted) or reach (without): the latest
 * accepted, and never below what the chain already redeemed. Entry locked. */
static uint64_t last_nonce(const chan *ch)
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

/* The channel part of an invoice, from a locked entry. */
static void invoice_channel(os_x402_requirement *out, const chan *ch)
{
    out->has_channel = true;
    memcpy(out->channel_id, ch->id, 32);
    if (os_money_add(&out->consumed, ch->consumed, ch->reserved) != OS_OK)
        out->consumed = UINT64_MAX;
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
    uint64_t need, rid = 0, last;
    chan *ch;
    os_err e;

    if (c == NULL || t == NULL || r == NULL || v == NULL || metadata_hash == NULL)
        return OS_ERR_INTERNAL;
    memset(t, 0, sizeof(*t));
    memset(r, 0, sizeof(*r));
    invoice_base(c, &r->req, estimate, metadata_hash);

    ch = find(c, v->channel_id);
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
    /* 2. a nonce above the last accepted */
    last = last_nonce(ch);
    if (ch->has_voucher ? v->nonce <= last : v->nonce < last) {
        refuse(r, 402, "stale_nonce", "the voucher nonce must be above %" PRIu64, last);
        e = OS_ERR_EXISTS;
        goto out;
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
    /* 5. covers what was consumed, what is in flight, and this request */
    if (os_money_add(&need, ch->consumed, ch->reserved) != OS_OK ||
        os_money_add(&need, need, estimate) != OS_OK || v->cumulative_amount < need) {
        refuse(r, 402, "insufficient_amount",
               "the voucher must cover consumed + in flight + this request's estimate");
        e = OS_ERR_RANGE;
        goto out;
    }
    e = sl_ledger_accept(c->cfg.ledger, &rid, v, api, service, estimate);
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
        e = OS_ERR_IO;
        goto out;
    }
    ch->has_voucher = true;
    ch->nonce = v->nonce;
    ch->cumulative = v->cumulative_amount;
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
    chan *ch;
    os_err le;

    if (c == NULL || t == NULL || e == NULL)
        return OS_ERR_INVALID;
    ch = find(c, t->channel_id);
    if (ch == NULL)
        return OS_ERR_NOTFOUND;
    end = *e;
    if (end.cost > t->estimate) {
        os_log_event ev;
        if (os_log_begin(&ev, c->cfg.log, OS_LOG_WARN, "request cost above its estimate; cut")) {
            char hex[ID_HEX];
            id_hex(hex, t->channel_id);
            os_log_kv(&ev, "channel", "%s", hex);
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
    chan *ch;
    if (c == NULL || out == NULL)
        return;
    invoice_base(c, out, estimate, metadata_hash);
    if (channel_id == NULL || (ch = find(c, channel_id)) == NULL)
        return;
    pthread_mutex_lock(&ch->mu);
    invoice_channel(out, ch);
    pthread_mutex_unlock(&ch->mu);
}

/* ---- settling ----------------------------------------------------------------------------- */

/* A row as sl_ledger_settlements_json shows it. */
static json_t *settlement_json(const sl_settlement *s)
{
    char id[ID_HEX], tx[ID_HEX], cum[OS_MONEY_UNITS_LEN], amt[OS_MONEY_UNITS_LEN],
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

/* Redeems v on ch and records the attempt. Settle lock held, no entry lock. */
static void claim(sl_chans *c, chan *ch, const os_voucher *v, uint64_t claimed_before, json_t *rows)
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
            store_state(c, ch->id, &snap);
        } else {
            /* no event to read: the claimed total tells what was paid */
            pthread_mutex_lock(&ch->mu);
            ch->settle_mono = now;
            ch->retry_mono = 0;
            pthread_mutex_unlock(&ch->mu);
            if (refresh_one(c, ch) == OS_OK) {
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
        (void)refresh_one(c, ch);
    }
    s.at_ms = wall_ms();
    if (sl_ledger_settlement_add(c->cfg.ledger, &s) != OS_OK)
        log_chan(c, OS_LOG_ERROR, "cannot record a settlement", ch->id, "status", s.status);
    if (rows != NULL) {
        json_t *row = settlement_json(&s);
        if (row != NULL && json_array_append_new(rows, row) != 0)
            log_chan(c, OS_LOG_WARN, "cannot report a settlement", ch->id, NULL, NULL);
    }
    {
        os_log_event lev;
        if (os_log_begin(&lev, c->cfg.log, e == OS_OK ? OS_LOG_INFO : OS_LOG_WARN,
                         e == OS_OK ? "claimed" : "claim failed")) {
            char hex[ID_HEX], tx[ID_HEX];
            id_hex(hex, ch->id);
            id_hex(tx, s.tx_hash);
            os_log_kv(&lev, "channel", "%s", hex);
            os_log_kv(&lev, "nonce", "%" PRIu64, s.nonce);
            os_log_kv(&lev, "cumulative", "%" PRIu64, s.cumulative);
            os_log_kv(&lev, "amount", "%" PRIu64, s.amount);
            os_log_kv(&lev, "status", "%s", s.status);
            if (!os_ct_is_zero(s.tx_hash, 32))
                os_log_kv(&lev, "tx", "%s", tx);
            if (s.error != NULL)
                os_log_kv(&lev, "error", "%s", s.error);
            os_log_end(&lev);
        }
    }
    os_chain_receipt_free(rc);
}

/* Claims on ch when there is something to claim and (force, a close request, the threshold, or
 * the interval) says so. Settle lock held. */
static void settle_one(sl_chans *c, chan *ch, bool force, json_t *rows)
{
    os_channel_state st;
    os_voucher v;
    uint64_t earned, pay, claimable, now = mono_ms(), settle_mono, retry_mono;
    bool skip;
    os_err e;

    pthread_mutex_lock(&ch->mu);
    st = ch->st;
    skip = !ch->verified || ch->dead || st.closed || memcmp(st.seller, c->cfg.seller, 20) != 0;
    settle_mono = ch->settle_mono;
    retry_mono = ch->retry_mono;
    pthread_mutex_unlock(&ch->mu);
    if (skip || c->cfg.signer == NULL)
        return;
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

os_err sl_chans_settle(sl_chans *c, json_t **report, const uint8_t *channel_id)
{
    json_t *rows;
    chan **list = NULL, *one = NULL;
    size_t n;

    if (report != NULL)
        *report = NULL;
    if (c == NULL)
        return OS_ERR_INVALID;
    if (channel_id != NULL) {
        one = find(c, channel_id);
        if (one == NULL)
            return OS_ERR_NOTFOUND;
        list = &one;
        n = 1;
    } else {
        n = snapshot(c, &list);
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
        (void)refresh_one(c, list[i]); /* claim against the freshest state the chain gives */
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

/* ---- the background thread ---------------------------------------------------------------- */

static bool stopping(sl_chans *c)
{
    return atomic_load(&c->stop);
}

/* Applies one escrow event to the channel it names, if it is ours. */
static void apply_event(sl_chans *c, const os_escrow_event *ev)
{
    os_channel_state st, snap;
    chan *ch;
    int t;

    if (ev->removed || ev->kind == OS_ESCROW_EV_OPENED)
        return;
    ch = find(c, ev->channel_id);
    if (ch == NULL)
        return;
    pthread_mutex_lock(&ch->mu);
    st = ch->st;
    switch (ev->kind) {
    case OS_ESCROW_EV_TOPPED_UP:
        st.deposit = ev->deposit;
        break;
    case OS_ESCROW_EV_CLAIMED:
        st.claimed = ev->claimed;
        st.last_nonce = ev->nonce;
        break;
    case OS_ESCROW_EV_CLOSE_REQUESTED:
        st.close_at = ev->close_at;
        break;
    case OS_ESCROW_EV_CLOSED:
    case OS_ESCROW_EV_WITHDRAWN:
        st.claimed = ev->claimed;
        st.closed = true;
        break;
    default:
        break;
    }
    st.block = ev->block_number;
    t = merge_state(ch, &st);
    snap = ch->st;
    pthread_mutex_unlock(&ch->mu);
    note_transition(c, ch->id, t);
    store_state(c, ch->id, &snap);
}

/* Reads the escrow's logs since the last block seen. The first call only notes the head: what
 * happened before is covered by the state re-reads. */
static void poll_events(sl_chans *c)
{
    os_chain_error err;
    os_chain_filter f;
    os_chain_log *logs = NULL;
    size_t n = 0;
    uint64_t head;
    os_err e;

    os_chain_err_reset(&err);
    if (os_chain_block_number(c->cfg.chain, &head, &err) != OS_OK) {
        atomic_fetch_add(&c->chain_errors, 1);
        os_log_warn(c->cfg.log, "cannot read the block number: %s", err.message);
        return;
    }
    if (!c->have_block) {
        c->have_block = true;
        c->last_block = head;
        return;
    }
    if (head <= c->last_block)
        return;
    memset(&f, 0, sizeof(f));
    f.has_address = true;
    memcpy(f.address, c->cfg.escrow, 20);
    f.from_block = c->last_block + 1;
    if (head - c->last_block > LOG_RANGE_MAX)
        f.from_block = head - LOG_RANGE_MAX + 1;
    f.to_block = head;
    e = os_chain_get_logs(c->cfg.chain, &logs, &n, &err, &f);
    if (e != OS_OK) {
        atomic_fetch_add(&c->chain_errors, 1);
        os_log_warn(c->cfg.log, "cannot read the escrow's events: %s", err.message);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        os_escrow_event ev;
        if (os_escrow_decode_event(&ev, &logs[i], c->cfg.escrow) == OS_OK)
            apply_event(c, &ev);
    }
    os_chain_logs_free(logs, n);
    c->last_block = head;
}

/* Re-reads channels: only the unverified ones (all = false), or every open one not read within
 * half a refresh period. */
static void reread(sl_chans *c, bool all)
{
    chan **list;
    size_t n = snapshot(c, &list);
    uint64_t half = c->cfg.refresh_ms / 2;
    for (size_t i = 0; i < n && !stopping(c); i++) {
        bool want;
        pthread_mutex_lock(&list[i]->mu);
        if (!all)
            want = !list[i]->verified;
        else
            want = !list[i]->st.closed &&
                   (list[i]->read_mono == 0 || mono_ms() - list[i]->read_mono >= half);
        pthread_mutex_unlock(&list[i]->mu);
        if (want)
            (void)refresh_one(c, list[i]);
    }
    free(list);
}

static void settle_pass(sl_chans *c)
{
    chan **list;
    size_t n = snapshot(c, &list);
    pthread_mutex_lock(&c->settle_mu);
    for (size_t i = 0; i < n && !stopping(c); i++)
        settle_one(c, list[i], false, NULL);
    pthread_mutex_unlock(&c->settle_mu);
    free(list);
}

static void *bg_main(void *arg)
{
    sl_chans *c = arg;
    uint64_t next_refresh = 0;

    while (!stopping(c)) {
        struct timespec ts;
        uint64_t now, wait_ms;

        reread(c, false);
        now = mono_ms();
        if (now >= next_refresh && !stopping(c)) {
            poll_events(c); /* the head first: what happens after it is seen next time */
            reread(c, true);
            next_refresh = now + c->cfg.refresh_ms;
        }
        if (!stopping(c))
            settle_pass(c);

        now = mono_ms();
        wait_ms = next_refresh > now ? next_refresh - now : 0;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->bg_mu);
        while (!c->wake && !stopping(c)) {
            if (pthread_cond_timedwait(&c->bg_cv, &c->bg_mu, &ts) == ETIMEDOUT)
                break;
        }
        c->wake = false;
        pthread_mutex_unlock(&c->bg_mu);
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void chan_free(chan *ch)
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
    if (c->buckets == NULL || c->neg == NULL) {
        free(c->buckets);
        free(c->neg);
        free(c);
        return OS_ERR_NOMEM;
    }
    if (pthread_condattr_init(&ca) != 0) {
        free(c->buckets);
        free(c->neg);
        free(c);
        return OS_ERR_NOMEM;
    }
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&c->bg_cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        free(c->buckets);
        free(c->neg);
        free(c);
        return OS_ERR_NOMEM;
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
        chan *ch = get_or_add(c, rows[i].id);
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
}

os_err sl_chans_start(sl_chans *c)
{
    if (c == NULL)
        return OS_ERR_INVALID;
    pthread_mutex_lock(&c->bg_mu);
    if (c->running) {
        pthread_mutex_unlock(&c->bg_mu);
        return OS_OK;
    }
    atomic_store(&c->stop, false);
    c->wake = false;
    if (pthread_create(&c->thread, NULL, bg_main, c) != 0) {
        pthread_mutex_unlock(&c->bg_mu);
        return OS_ERR_NOMEM;
    }
    c->running = true;
    pthread_mutex_unlock(&c->bg_mu);
    return OS_OK;
}

void sl_chans_stop(sl_chans *c)
{
    pthread_t th;
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->bg_mu);
    if (!c->running) {
        pthread_mutex_unlock(&c->bg_mu);
        return;
    }
    atomic_store(&c->stop, true);
    pthread_cond_broadcast(&c->bg_cv);
    th = c->thread;
    c->running = false;
    pthread_mutex_unlock(&c->bg_mu);
    pthread_join(th, NULL);
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
    chan **list;
    size_t n;
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return;
    n = snapshot(c, &list);
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
