/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token buckets keyed by client address, for ratelimit.h. Entries live in preallocated arrays, one
 * per stripe; each stripe is a chained hash table (indices, not pointers) threaded on an LRU list,
 * under its own mutex. Nothing is allocated after creation, so a flood of new sources costs a
 * bounded amount of memory and time: a miss on a full stripe recycles its least recently used
 * entry. Keys are hashed with SipHash under a random key so a client cannot choose addresses that
 * pile into one chain.
 */
#include "openseed/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define DEFAULT_CAPACITY 65536u
/* Above this many entries the table is split so threads rarely wait on one another. */
#define STRIPE_THRESHOLD 16384u
#define N_STRIPES 16u
/* Thousandths of a token: the unit buckets are kept in. */
#define MILLI 1000u
#define NIL UINT32_MAX

typedef struct entry {
    uint64_t level;   /* thousandths of a token */
    uint64_t last_ms; /* when level was last brought up to date */
    uint32_t chain;   /* next entry in the same hash bucket */
    uint32_t prev;    /* LRU neighbours: prev is more recently used */
    uint32_t next;
    uint32_t bucket;
    uint8_t key_len;
    char key[OS_RATELIMIT_KEY_MAX];
} entry;

typedef struct stripe {
    pthread_mutex_t mu;
    entry *e;
    uint32_t *heads; /* bucket -> first entry */
    uint32_t mask;   /* buckets - 1 */
    uint32_t cap;
    uint32_t used;
    uint32_t mru; /* most recently used */
    uint32_t lru; /* least recently used: the next victim */
} stripe;

struct os_ratelimit {
    uint64_t rate; /* thousandths of a token per millisecond == tokens per second */
    uint64_t full; /* burst in thousandths */
    uint32_t burst;
    size_t capacity;
    unsigned n_stripes;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    stripe s[N_STRIPES];
};

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n && p < (UINT32_C(1) << 31))
        p <<= 1;
    return p;
}

os_err os_ratelimit_new(os_ratelimit **out, uint32_t rate_per_s, uint32_t burst, size_t capacity)
{
    os_ratelimit *rl;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (rate_per_s == 0 || burst == 0)
        return OS_ERR_INVALID;
    if (capacity == 0)
        capacity = DEFAULT_CAPACITY;
    if (capacity > (size_t)1 << 28)
        return OS_ERR_RANGE;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return OS_ERR_NOMEM;
    rl->rate = rate_per_s;
    rl->burst = burst;
    rl->full = (uint64_t)burst * MILLI;
    rl->capacity = capacity;
    rl->n_stripes = capacity >= STRIPE_THRESHOLD ? N_STRIPES : 1;
    randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
    for (unsigned i = 0; i < rl->n_stripes; i++) {
        stripe *st = &rl->s[i];
        uint32_t cap = (uint32_t)(capacity / rl->n_stripes + (i < capacity % rl->n_stripes));
        uint32_t nb = pow2_at_least(cap * 2u);

        st->cap = cap;
        st->mask = nb - 1;
        st->mru = st->lru = NIL;
        st->e = malloc((size_t)cap * sizeof(entry));
        st->heads = malloc((size_t)nb * sizeof(uint32_t));
        if (st->e == NULL || st->heads == NULL || pthread_mutex_init(&st->mu, NULL) != 0) {
            free(st->e);
            free(st->heads);
            st->e = NULL;
            st->heads = NULL;
            rl->n_stripes = i;
            os_ratelimit_free(rl);
            return OS_ERR_NOMEM;
        }
        memset(st->heads, 0xff, (size_t)nb * sizeof(uint32_t));
    }
    *out = rl;
    return OS_OK;
}

void os_ratelimit_free(os_ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (unsigned i = 0; i < rl->n_stripes; i++) {
        pthread_mutex_destroy(&rl->s[i].mu);
        free(rl->s[i].e);
        free(rl->s[i].heads);
    }
    free(rl);
}

static void lru_unlink(stripe *st, uint32_t i)
{
    entry *e = &st->e[i];
    if (e->prev != NIL)
        st->e[e->prev].next = e->next;
    else
        st->mru = e->next;
    if (e->next != NIL)
        st->e[e->next].prev = e->prev;
    else
        st->lru = e->prev;
}

static void lru_push_front(stripe *st, uint32_t i)
{
    entry *e = &st->e[i];
    e->prev = NIL;
    e->next = st->mru;
    if (st->mru != NIL)
        st->e[st->mru].prev = i;
    st->mru = i;
    if (st->lru == NIL)
        st->lru = i;
}

static void chain_unlink(stripe *st, uint32_t i)
{
    uint32_t *link = &st->heads[st->e[i].bucket];
    while (*link != NIL && *link != i)
        link = &st->e[*link].chain;
    if (*link == i)
        *link = st->e[i].chain;
}

/* The entry for key, created (recycling the LRU victim when full) if absent; most recent now. */
static uint32_t lookup(const os_ratelimit *rl, stripe *st, uint32_t bucket, const char *key,
                       size_t key_len, uint64_t now_ms)
{
    uint32_t i;

    for (i = st->heads[bucket]; i != NIL; i = st->e[i].chain) {
        const entry *e = &st->e[i];
        if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            break;
    }
    if (i != NIL) {
        if (st->mru != i) {
            lru_unlink(st, i);
            lru_push_front(st, i);
        }
        return i;
    }
    if (st->used < st->cap) {
        i = st->used++;
    } else {
        i = st->lru;
        chain_unlink(st, i);
        lru_unlink(st, i);
    }
    entry *e = &st->e[i];
    e->level = rl->full;
    e->last_ms = now_ms;
    e->bucket = bucket;
    e->key_len = (uint8_t)key_len;
    memcpy(e->key, key, key_len);
    e->chain = st->heads[bucket];
    st->heads[bucket] = i;
    lru_push_front(st, i);
    return i;
}

static void refill(const os_ratelimit *rl, entry *e, uint64_t now_ms)
{
    if (now_ms <= e->last_ms)
        return; /* same millisecond, or a clock that stepped back: nothing earned */
    uint64_t elapsed = now_ms - e->last_ms;
    uint64_t need = rl->full - e->level;
    e->last_ms = now_ms;
    /* Compare before multiplying: a long idle time times the rate could overflow. */
    if (elapsed >= (need + rl->rate - 1) / rl->rate)
        e->level = rl->full;
    else
        e->level += elapsed * rl->rate;
}

/* Milliseconds, rounded up, until level reaches target at rl->rate per millisecond. */
static uint64_t ms_until(const os_ratelimit *rl, uint64_t level, uint64_t target)
{
    return level >= target ? 0 : (target - level + rl->rate - 1) / rl->rate;
}

static uint32_t ms_to_s_ceil(uint64_t ms)
{
    uint64_t s = (ms + 999) / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

os_err os_ratelimit_take(os_ratelimit *rl, os_ratelimit_result *out, const char *key,
                         uint64_t now_ms)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t hv;
    size_t key_len;

    if (rl == NULL || out == NULL || key == NULL)
        return OS_ERR_INVALID;
    key_len = strnlen(key, OS_RATELIMIT_KEY_MAX + 1);
    if (key_len == 0)
        return OS_ERR_INVALID;
    if (key_len > OS_RATELIMIT_KEY_MAX)
        return OS_ERR_TOOBIG;
    crypto_shorthash(h, (const unsigned char *)key, key_len, rl->hash_key);
    memcpy(&hv, h, sizeof(hv));
    stripe *st = &rl->s[(hv >> 59) % rl->n_stripes];

    pthread_mutex_lock(&st->mu);
    uint32_t i = lookup(rl, st, (uint32_t)hv & st->mask, key, key_len, now_ms);
    entry *e = &st->e[i];
    refill(rl, e, now_ms);
    out->allowed = e->level >= MILLI;
    if (out->allowed)
        e->level -= MILLI;
    out->limit = rl->burst;
    out->remaining = (uint32_t)(e->level / MILLI);
    out->reset_s = ms_to_s_ceil(ms_until(rl, e->level, rl->full));
    out->retry_after_s = 0;
    if (!out->allowed) {
        uint32_t r = ms_to_s_ceil(ms_until(rl, e->level, MILLI));
        out->retry_after_s = r == 0 ? 1 : r;
    }
    pthread_mutex_unlock(&st->mu);
    return OS_OK;
}

size_t os_ratelimit_size(os_ratelimit *rl)
{
    size_t n = 0;
    if (rl == NULL)
        return 0;
    for (unsigned i = 0; i < rl->n_stripes; i++) {
        pthread_mutex_lock(&rl->s[i].mu);
        n += rl->s[i].used;
        pthread_mutex_unlock(&rl->s[i].mu);
    }
    return n;
}

size_t os_ratelimit_capacity(const os_ratelimit *rl)
{
    return rl == NULL ? 0 : rl->capacity;
}
