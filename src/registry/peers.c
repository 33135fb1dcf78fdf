/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's in-memory index: every known seller by node id (a keyed-hash table, so chosen
 * addresses cannot pile into one bucket), and the ranked listings GET /v1/peers serves from. A
 * listing ("view") exists per (service, capability) filter, each side possibly "any", and holds
 * the active sellers that match it, sorted by score, with the prices they match at. The
 * background pass rebuilds every view from scratch (rg_views_rebuild: reputations, price
 * normalisation per view, sort) and swaps it in; between passes, an announce or a seller coming
 * back is inserted into the current views at once (rg_views_insert), scored against the view's
 * existing price range, so a buyer sees it without waiting for the next pass.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "openseed/hex.h"
#include "openseed/secp.h"

#include "internal.h"

#define EMPTY UINT32_MAX

static uint64_t keyed_hash(const uint8_t key[16], const void *p, size_t n)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;

    (void)crypto_shorthash(out, p, n, key);
    memcpy(&h, out, sizeof(h));
    return h;
}

/* ------------------------------------------------------------------ the peer table */

rg_peer *rg_peer_find(rg_registry *rg, const uint8_t node[20])
{
    if (rg->n_slots == 0)
        return NULL;
    size_t mask = rg->n_slots - 1;
    for (size_t i = keyed_hash(rg->hash_key, node, 20) & mask;; i = (i + 1) & mask) {
        uint32_t ix = rg->slots[i];
        if (ix == EMPTY)
            return NULL;
        if (memcmp(rg->peers[ix]->node, node, 20) == 0)
            return rg->peers[ix];
    }
}

static void slot_put(uint32_t *slots, size_t n_slots, const uint8_t key[16], const uint8_t node[20],
                     uint32_t ix)
{
    size_t mask = n_slots - 1, i = keyed_hash(key, node, 20) & mask;
    while (slots[i] != EMPTY)
        i = (i + 1) & mask;
    slots[i] = ix;
}

static os_err grow(rg_registry *rg)
{
    if (rg->n_peers == rg->cap_peers) {
        size_t cap = rg->cap_peers ? rg->cap_peers * 2 : 64;
        rg_peer **np = realloc(rg->peers, cap * sizeof(*np));
        if (np == NULL)
            return OS_ERR_NOMEM;
        rg->peers = np;
        rg->cap_peers = cap;
    }
    /* Keep the table at most half full. */
    if ((rg->n_peers + 1) * 2 > rg->n_slots) {
        size_t ns = rg->n_slots ? rg->n_slots * 2 : 128;
        uint32_t *s = malloc(ns * sizeof(*s));
        if (s == NULL)
            return OS_ERR_NOMEM;
        for (size_t i = 0; i < ns; i++)
            s[i] = EMPTY;
        for (size_t i = 0; i < rg->n_peers; i++)
            slot_put(s, ns, rg->hash_key, rg->peers[i]->node, (uint32_t)i);
        free(rg->slots);
        rg->slots = s;
        rg->n_slots = ns;
    }
    return OS_OK;
}

os_err rg_peer_add(rg_registry *rg, rg_peer **out, const uint8_t node[20])
{
    rg_peer *p;
    os_err rc;

    if (rg->n_peers >= UINT32_MAX - 1)
        return OS_ERR_TOOBIG;
    if ((rc = grow(rg)) != OS_OK)
        return rc;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return OS_ERR_NOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return OS_ERR_NOMEM;
    }
    memcpy(p->node, node, 20);
    os_eip55_format(p->node_hex, node);
    p->rep = 0.5;
    atomic_init(&p->active, 0);
    p->idx = (uint32_t)rg->n_peers;
    rg->peers[rg->n_peers++] = p;
    slot_put(rg->slots, rg->n_slots, rg->hash_key, node, p->idx);
    *out = p;
    return OS_OK;
}

os_err rg_peer_set_record(rg_peer *p, const char *canon, size_t canon_len, const uint8_t sig[65],
                          const os_record *rec)
{
    static const char head[] = "{\"record\":";
    static const char mid[] = ",\"signature\":\"";
    char sig_hex[OS_HEX_LEN(65)];
    size_t n, hl = sizeof(head) - 1, ml = sizeof(mid) - 1;
    char *prefix;
    rg_offer *offers;

    if (os_hex_encode(sig_hex, sizeof(sig_hex), sig, 65, 1) != OS_OK)
        return OS_ERR_INTERNAL;
    n = hl + canon_len + ml + strlen(sig_hex) + 1;
    if ((prefix = malloc(n + 1)) == NULL)
        return OS_ERR_NOMEM;
    if ((offers = calloc(rec->n_offerings, sizeof(*offers))) == NULL) {
        free(prefix);
        return OS_ERR_NOMEM;
    }
    memcpy(prefix, head, hl);
    memcpy(prefix + hl, canon, canon_len);
    memcpy(prefix + hl + canon_len, mid, ml);
    memcpy(prefix + hl + canon_len + ml, sig_hex, strlen(sig_hex));
    prefix[n - 1] = '"';
    prefix[n] = '\0';
    for (size_t i = 0; i < rec->n_offerings; i++) {
        const os_offering *o = &rec->offerings[i];
        memcpy(offers[i].capability, o->capability, sizeof(offers[i].capability));
        offers[i].n_services = o->n_services;
        memcpy(offers[i].services, o->services, sizeof(offers[i].services));
        offers[i].input = o->pricing.input;
        offers[i].output = o->pricing.output;
    }
    free(p->prefix);
    free(p->offers);
    p->prefix = prefix;
    p->prefix_len = n;
    p->offers = offers;
    p->n_offers = rec->n_offerings;
    return OS_OK;
}

size_t rg_live_render(char *out, const char *endpoint, const os_heartbeat *hb)
{
    json_t *ep = json_string(endpoint);
    json_t *hbj = hb != NULL ? os_heartbeat_to_json(hb) : json_null();
    char *eps = NULL, *hbs = NULL;
    size_t n = 0;
    int w;

    if (ep == NULL || hbj == NULL)
        goto done;
    eps = json_dumps(ep, JSON_COMPACT | JSON_ENCODE_ANY);
    hbs = json_dumps(hbj, JSON_COMPACT | JSON_ENCODE_ANY);
    if (eps == NULL || hbs == NULL)
        goto done;
    w = snprintf(out, RG_LIVE_MAX, "\"endpoint\":%s,\"heartbeat\":%s", eps, hbs);
    if (w > 0 && (size_t)w < RG_LIVE_MAX)
        n = (size_t)w;
done:
    free(eps);
    free(hbs);
    json_decref(ep);
    json_decref(hbj);
    return n;
}

void rg_peers_free(rg_registry *rg)
{
    for (size_t i = 0; i < rg->n_peers; i++) {
        rg_peer *p = rg->peers[i];
        pthread_mutex_destroy(&p->mu);
        free(p->prefix);
        free(p->offers);
        free(p);
    }
    free(rg->peers);
    free(rg->slots);
    rg->peers = NULL;
    rg->slots = NULL;
    rg->n_peers = rg->cap_peers = rg->n_slots = 0;
}

/* ------------------------------------------------------------------ views */

size_t rg_view_key(char out[RG_KEY_MAX], const char *service, const char *capability)
{
    size_t ls = service != NULL ? strlen(service) : 0;
    size_t lc = capability != NULL ? strlen(capability) : 0;

    if (ls >= OS_RECORD_NAME_MAX || lc >= OS_RECORD_NAME_MAX)
        return 0;
    /* Length-prefixed, so no pair of names can spell another pair's key. */
    out[0] = (char)ls;
    if (ls > 0)
        memcpy(out + 1, service, ls);
    if (lc > 0)
        memcpy(out + 1 + ls, capability, lc);
    return 1 + ls + lc;
}

int rg_entry_cmp(double sa, const uint8_t na[20], double sb, const uint8_t nb[20])
{
    if (sa > sb)
        return -1;
    if (sa < sb)
        return 1;
    return memcmp(na, nb, 20);
}

static int entry_qsort_cmp(const void *a, const void *b)
{
    const rg_entry *x = a, *y = b;
    return rg_entry_cmp(x->score, x->peer->node, y->score, y->peer->node);
}

static uint64_t view_hash(const char *key, size_t len)
{
    /* FNV-1a: keys are bounded in number by max_peers' records and probed linearly. */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h;
}

rg_view *rg_viewset_find(const rg_viewset *vs, const char *key, size_t key_len)
{
    if (vs == NULL || vs->n_slots == 0)
        return NULL;
    size_t mask = vs->n_slots - 1;
    for (size_t i = view_hash(key, key_len) & mask;; i = (i + 1) & mask) {
        uint32_t ix = vs->slots[i];
        if (ix == EMPTY)
            return NULL;
        rg_view *v = &vs->views[ix];
        if (v->key_len == key_len && memcmp(v->key, key, key_len) == 0)
            return v;
    }
}

static os_err viewset_rehash(rg_viewset *vs, size_t ns)
{
    uint32_t *s = malloc(ns * sizeof(*s));
    if (s == NULL)
        return OS_ERR_NOMEM;
    for (size_t i = 0; i < ns; i++)
        s[i] = EMPTY;
    for (size_t j = 0; j < vs->n; j++) {
        size_t i = view_hash(vs->views[j].key, vs->views[j].key_len) & (ns - 1);
        while (s[i] != EMPTY)
            i = (i + 1) & (ns - 1);
        s[i] = (uint32_t)j;
    }
    free(vs->slots);
    vs->slots = s;
    vs->n_slots = ns;
    return OS_OK;
}

static os_err viewset_get(rg_viewset *vs, rg_view **out, const char *key, size_t key_len)
{
    rg_view *v = rg_viewset_find(vs, key, key_len);
    os_err rc;

    if (v != NULL) {
        *out = v;
        return OS_OK;
    }
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 16;
        rg_view *nv = realloc(vs->views, cap * sizeof(*nv));
        if (nv == NULL)
            return OS_ERR_NOMEM;
        vs->views = nv;
        vs->cap = cap;
    }
    v = &vs->views[vs->n++];
    memset(v, 0, sizeof(*v));
    memcpy(v->key, key, key_len);
    v->key_len = key_len;
    if (vs->n * 2 > vs->n_slots) {
        if ((rc = viewset_rehash(vs, vs->n_slots ? vs->n_slots * 2 : 32)) != OS_OK) {
            vs->n--;
            return rc;
        }
    } else {
        size_t i = view_hash(key, key_len) & (vs->n_slots - 1);
        while (vs->slots[i] != EMPTY)
            i = (i + 1) & (vs->n_slots - 1);
        vs->slots[i] = (uint32_t)(vs->n - 1);
    }
    *out = v;
    return OS_OK;
}

void rg_viewset_free(rg_viewset *vs)
{
    if (vs == NULL)
        return;
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->views[i].e);
        free(vs->views[i].pairs);
    }
    free(vs->views);
    free(vs->slots);
    free(vs);
}

static os_err view_reserve(rg_view *v, size_t entries, size_t pairs)
{
    if (v->n + entries > v->cap) {
        size_t cap = v->cap ? v->cap : 8;
        while (cap < v->n + entries)
            cap *= 2;
        rg_entry *e = realloc(v->e, cap * sizeof(*e));
        if (e == NULL)
            return OS_ERR_NOMEM;
        v->e = e;
        v->cap = cap;
    }
    if (v->np + pairs > v->pcap) {
        size_t cap = v->pcap ? v->pcap : 8;
        while (cap < v->np + pairs)
            cap *= 2;
        if (cap > UINT32_MAX)
            return OS_ERR_TOOBIG;
        rg_pair *p = realloc(v->pairs, cap * sizeof(*p));
        if (p == NULL)
            return OS_ERR_NOMEM;
        v->pairs = p;
        v->pcap = cap;
    }
    return OS_OK;
}

/* The keys one offering is listed under: (any, any), (any, cap), (s, any), (s, cap) per service. */
typedef struct offer_keys {
    char key[2 + 2 * OS_RECORD_MAX_SERVICES][RG_KEY_MAX];
    size_t len[2 + 2 * OS_RECORD_MAX_SERVICES];
    size_t n;
} offer_keys;

static void keys_of(offer_keys *k, const rg_offer *o)
{
    k->n = 0;
    k->len[k->n] = rg_view_key(k->key[k->n], NULL, NULL);
    k->n++;
    k->len[k->n] = rg_view_key(k->key[k->n], NULL, o->capability);
    k->n++;
    for (size_t s = 0; s < o->n_services; s++) {
        size_t l;
        if ((l = rg_view_key(k->key[k->n], o->services[s], NULL)) != 0)
            k->len[k->n++] = l;
        if ((l = rg_view_key(k->key[k->n], o->services[s], o->capability)) != 0)
            k->len[k->n++] = l;
    }
}

/* Adds offering o of peer p to view v during a rebuild (p's entries are the view's last). */
static os_err rebuild_add(rg_view *v, rg_peer *p, double rep, const rg_offer *o)
{
    uint64_t price = rg_rank_blend(o->input, o->output);
    os_err rc;

    if ((rc = view_reserve(v, 1, 1)) != OS_OK)
        return rc;
    if (v->n == 0 || v->e[v->n - 1].peer != p) {
        rg_entry *e = &v->e[v->n++];
        e->peer = p;
        e->rep = rep;
        e->score = 0;
        e->price = price;
        e->pairs_off = (uint32_t)v->np;
        e->pairs_n = 0;
    }
    rg_entry *e = &v->e[v->n - 1];
    if (price < e->price)
        e->price = price;
    v->pairs[v->np].input = o->input;
    v->pairs[v->np].output = o->output;
    v->np++;
    e->pairs_n++;
    return OS_OK;
}

static void view_finish(rg_view *v)
{
    uint64_t lo = UINT64_MAX, hi = 0;

    for (size_t i = 0; i < v->n; i++) {
        if (v->e[i].price < lo)
            lo = v->e[i].price;
        if (v->e[i].price > hi)
            hi = v->e[i].price;
    }
    v->lo = v->n ? lo : 0;
    v->hi = v->n ? hi : 0;
    for (size_t i = 0; i < v->n; i++)
        v->e[i].score =
            rg_rank_score(v->e[i].rep, rg_rank_price_score(v->e[i].price, v->lo, v->hi));
    qsort(v->e, v->n, sizeof(*v->e), entry_qsort_cmp);
}

static rg_viewset *viewset_new(uint64_t epoch)
{
    rg_viewset *vs = calloc(1, sizeof(*vs));
    if (vs == NULL)
        return NULL;
    vs->epoch = epoch;
    if (viewset_rehash(vs, 32) != OS_OK) {
        free(vs);
        return NULL;
    }
    return vs;
}

os_err rg_views_rebuild(rg_registry *rg, int64_t now_ms)
{
    size_t n = rg->n_peers; /* stable: we hold wmu */
    double *reps = malloc((n ? n : 1) * sizeof(*reps));
    bool *act = malloc((n ? n : 1) * sizeof(*act));
    rg_viewset *vs = viewset_new(rg->next_epoch);
    offer_keys *ks = malloc(sizeof(*ks));
    size_t n_active = 0;
    os_err rc = OS_ERR_NOMEM;

    if (reps == NULL || act == NULL || vs == NULL || ks == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        rg_peer *p = rg->peers[i];
        rg_rank_stats st;

        pthread_mutex_lock(&p->mu);
        st = p->stats;
        act[i] = atomic_load(&p->active) != 0;
        pthread_mutex_unlock(&p->mu);
        reps[i] = rg_rank_reputation(&st, &rg->rank, now_ms, NULL);
        if (!act[i])
            continue;
        n_active++;
        for (size_t j = 0; j < p->n_offers; j++) {
            keys_of(ks, &p->offers[j]);
            for (size_t k = 0; k < ks->n; k++) {
                rg_view *v;
                if ((rc = viewset_get(vs, &v, ks->key[k], ks->len[k])) != OS_OK ||
                    (rc = rebuild_add(v, p, reps[i], &p->offers[j])) != OS_OK)
                    goto fail;
            }
        }
    }
    for (size_t i = 0; i < vs->n; i++)
        view_finish(&vs->views[i]);

    pthread_rwlock_wrlock(&rg->lock);
    for (size_t i = 0; i < n; i++) {
        rg->peers[i]->rep = reps[i];
        rg->peers[i]->in_views = act[i];
    }
    {
        char any[RG_KEY_MAX];
        size_t any_len = rg_view_key(any, NULL, NULL);
        const rg_view *all = rg_viewset_find(vs, any, any_len);
        for (size_t i = 0; all != NULL && i < all->n; i++)
            all->e[i].peer->score = all->e[i].score;
    }
    rg_viewset_free(rg->prev);
    rg->prev = rg->cur;
    rg->cur = vs;
    rg->next_epoch++;
    pthread_rwlock_unlock(&rg->lock);
    os_metric_set(rg->m_peers, 0, (int64_t)n);
    os_metric_set(rg->m_active, 0, (int64_t)n_active);
    free(reps);
    free(act);
    free(ks);
    return OS_OK;
fail:
    free(reps);
    free(act);
    free(ks);
    rg_viewset_free(vs);
    return rc;
}

/* Removes every entry of p from the views of vs (its pairs stay as garbage until the rebuild). */
static void views_remove(rg_viewset *vs, const rg_peer *p)
{
    for (size_t i = 0; i < vs->n; i++) {
        rg_view *v = &vs->views[i];
        size_t w = 0;
        for (size_t r = 0; r < v->n; r++)
            if (v->e[r].peer != p)
                v->e[w++] = v->e[r];
        v->n = w;
    }
}

os_err rg_views_insert(rg_registry *rg, rg_peer *p)
{
    rg_viewset *vs = rg->cur;
    offer_keys *ks;
    os_err rc = OS_OK;

    if (p->in_views)
        views_remove(vs, p);
    p->in_views = false;
    if (!atomic_load(&p->active))
        return OS_OK;
    if ((ks = malloc(sizeof(*ks))) == NULL)
        return OS_ERR_NOMEM;
    /* Each view p belongs in gets one entry: the cheapest matching offering's price and every
     * matching offering's prices as pairs. Collected per view in one walk over the offerings. */
    for (size_t j = 0; j < p->n_offers && rc == OS_OK; j++) {
        keys_of(ks, &p->offers[j]);
        for (size_t k = 0; k < ks->n && rc == OS_OK; k++) {
            rg_view *v;
            bool seen = false;
            /* Skip a key an earlier offering already handled: that pass took every offering. */
            for (size_t jj = 0; jj < j && !seen; jj++) {
                offer_keys prev_keys;
                keys_of(&prev_keys, &p->offers[jj]);
                for (size_t kk = 0; kk < prev_keys.n && !seen; kk++)
                    seen = prev_keys.len[kk] == ks->len[k] &&
                           memcmp(prev_keys.key[kk], ks->key[k], ks->len[k]) == 0;
            }
            if (seen)
                continue;
            if ((rc = viewset_get(vs, &v, ks->key[k], ks->len[k])) != OS_OK ||
                (rc = view_reserve(v, 1, p->n_offers)) != OS_OK)
                break;
            rg_entry e = {
                .rep = p->rep, .peer = p, .price = UINT64_MAX, .pairs_off = (uint32_t)v->np};
            for (size_t jj = j; jj < p->n_offers; jj++) {
                offer_keys other;
                bool match = false;
                keys_of(&other, &p->offers[jj]);
                for (size_t kk = 0; kk < other.n && !match; kk++)
                    match = other.len[kk] == ks->len[k] &&
                            memcmp(other.key[kk], ks->key[k], ks->len[k]) == 0;
                if (!match)
                    continue;
                uint64_t b = rg_rank_blend(p->offers[jj].input, p->offers[jj].output);
                if (b < e.price)
                    e.price = b;
                v->pairs[v->np].input = p->offers[jj].input;
                v->pairs[v->np].output = p->offers[jj].output;
                v->np++;
                e.pairs_n++;
            }
            if (v->n == 0) {
                v->lo = v->hi = e.price;
            }
            e.score = rg_rank_score(e.rep, rg_rank_price_score(e.price, v->lo, v->hi));
            /* First position whose entry sorts after e. */
            size_t lo = 0, hi = v->n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (rg_entry_cmp(v->e[mid].score, v->e[mid].peer->node, e.score, p->node) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (ks->len[k] == 1) /* the unfiltered listing */
                p->score = e.score;
            memmove(&v->e[lo + 1], &v->e[lo], (v->n - lo) * sizeof(*v->e));
            v->e[lo] = e;
            v->n++;
        }
    }
    free(ks);
    if (rc == OS_OK)
        p->in_views = true;
    else
        views_remove(vs, p); /* no half-listed seller */
    return rc;
}
