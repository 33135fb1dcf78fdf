/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What this buyer observed of each seller, and the ranking and cooldowns it drives (peers.h gives
 * the formulas): a hash table of nodes keyed with a random SipHash key (node ids are cheap to
 * grind), capped at MAX_NODES entries (the least recently touched quarter is dropped), each entry
 * holding the node's newest verified copy, the registry's last view of it and the counts observed
 * since start; the weighted routing policy's pick (a pure function of the ranked candidates and a
 * draw); and the management view of it all as JSON (with each seller's signed offerings and
 * prices). Every table function runs under the object's mutex.
 */
#include "peers.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "openseed/json.h"
#include "openseed/money.h"
#include "openseed/record.h"
#include "openseed/secp.h"

#include "peers_internal.h"

#define MAX_NODES 65536
#define MIN_BUCKETS 256
#define COOLDOWN_BASE_MS 5000u
#define COOLDOWN_MAX_MS 300000u
#define LATENCY_REF_MS 2000.0
#define MAX_TTFT_MS 86400000u /* one observation cannot swamp the average */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ------------------------------------------------------------------ scores */

double by_peers_adjust_score(double registry_score, uint64_t ok, uint64_t fail, double avg_ttft_ms)
{
    double s = registry_score * ((double)ok + 1.0) / ((double)ok + (double)fail + 2.0);
    if (avg_ttft_ms >= 0.0)
        s *= LATENCY_REF_MS / (LATENCY_REF_MS + avg_ttft_ms);
    return s;
}

static double route_weight(double score)
{
    /* NaN fails the comparison too: a score that is not a positive number earns no traffic */
    if (!(score > 0.0) || isinf(score))
        return 0.0;
    return score * score;
}

size_t by_peers_pick_weighted(const by_peer *c, size_t n, double u)
{
    double total = 0.0, acc = 0.0, target;
    size_t last = 0;

    if (c == NULL || n <= 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        total += route_weight(c[i].score);
    if (!(total > 0.0) || isinf(total))
        return 0;
    if (!(u > 0.0)) /* NaN and negatives too */
        u = 0.0;
    target = u * total;
    for (size_t i = 0; i < n; i++) {
        double w = route_weight(c[i].score);
        if (w == 0.0)
            continue;
        acc += w;
        last = i;
        if (target < acc)
            return i;
    }
    return last; /* u >= 1, or rounding left the target at the very top */
}

uint64_t by_peers_cooldown_ms(uint64_t consecutive)
{
    uint64_t ms = COOLDOWN_BASE_MS;
    for (uint64_t i = 1; i < consecutive && ms < COOLDOWN_MAX_MS; i++)
        ms *= 2;
    return ms < COOLDOWN_MAX_MS ? ms : COOLDOWN_MAX_MS;
}

static double ent_avg_ttft(const by_peer_node *e)
{
    return e != NULL && e->ttft_n > 0 ? (double)e->ttft_sum / (double)e->ttft_n : -1.0;
}

double by_peers_node_score_(const by_peer_node *e, double registry_score)
{
    return by_peers_adjust_score(registry_score, e != NULL ? e->ok : 0, e != NULL ? e->fail : 0,
                                 ent_avg_ttft(e));
}

/* ------------------------------------------------------------------ nodes (under mu) */

static size_t node_bucket(const by_peers *p, const uint8_t node[20], size_t n_buckets)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;

    crypto_shorthash(h, node, 20, p->hash_key);
    for (size_t i = 0; i < sizeof(h); i++)
        v = v << 8 | h[i];
    return (size_t)(v % n_buckets);
}

by_peer_node *by_peers_node_find_(const by_peers *p, const uint8_t node[20])
{
    by_peer_node *e = p->buckets[node_bucket(p, node, p->n_buckets)];
    while (e != NULL && memcmp(e->node, node, 20) != 0)
        e = e->next;
    return e;
}

static void node_grow(by_peers *p)
{
    size_t nb = p->n_buckets * 2;
    by_peer_node **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < p->n_buckets; i++) {
        by_peer_node *e = p->buckets[i], *next;
        for (; e != NULL; e = next) {
            size_t k = node_bucket(p, e->node, nb);
            next = e->next;
            e->next = b[k];
            b[k] = e;
        }
    }
    free(p->buckets);
    p->buckets = b;
    p->n_buckets = nb;
}

typedef struct aged {
    int64_t touched;
    by_peer_node *e;
} aged;

static int aged_cmp(const void *a, const void *b)
{
    int64_t x = ((const aged *)a)->touched, y = ((const aged *)b)->touched;
    return x < y ? -1 : x > y;
}

static void node_remove(by_peers *p, by_peer_node *victim)
{
    by_peer_node **pp = &p->buckets[node_bucket(p, victim->node, p->n_buckets)];
    while (*pp != NULL && *pp != victim)
        pp = &(*pp)->next;
    if (*pp == NULL)
        return;
    *pp = victim->next;
    by_peers_unref_locked_(victim->last);
    free(victim);
    p->n_nodes--;
}

/* Drops the least recently touched quarter: their stats are lost, nothing else refers to them. */
static void node_evict(by_peers *p)
{
    aged *a = malloc(p->n_nodes * sizeof(*a));
    size_t n = 0;

    if (a == NULL)
        return;
    for (size_t i = 0; i < p->n_buckets; i++)
        for (by_peer_node *e = p->buckets[i]; e != NULL; e = e->next)
            a[n++] = (aged){e->touched, e};
    qsort(a, n, sizeof(*a), aged_cmp);
    for (size_t i = 0; i < n / 4 + 1 && i < n; i++)
        node_remove(p, a[i].e);
    free(a);
    os_log_info(p->log, "peer table full: dropped the least recently seen sellers");
}

by_peer_node *by_peers_node_get_(by_peers *p, const uint8_t node[20], int64_t now)
{
    by_peer_node *e = by_peers_node_find_(p, node);
    size_t k;

    if (e != NULL) {
        e->touched = now;
        return e;
    }
    if (p->n_nodes >= MAX_NODES)
        node_evict(p);
    if (p->n_nodes >= p->n_buckets && p->n_buckets < MAX_NODES)
        node_grow(p);
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    memcpy(e->node, node, 20);
    e->touched = now;
    k = node_bucket(p, node, p->n_buckets);
    e->next = p->buckets[k];
    p->buckets[k] = e;
    p->n_nodes++;
    return e;
}

void by_peers_node_take_(by_peer_node *e, by_peer_ref *pr, int64_t now)
{
    if (e->last != pr) {
        by_peers_unref_locked_(e->last);
        pr->refs++;
        e->last = pr;
    }
    e->last_ms = now;
    e->notfound = false;
}

void by_peers_node_set_view_(by_peer_node *e, const by_listing_entry *le)
{
    e->has_reg = true;
    e->reg_score = le->score;
    e->reputation = le->reputation;
    e->last_seen = le->last_seen;
    e->active = le->active;
    e->capacity = le->capacity;
}

os_err by_peers_nodes_init_(by_peers *p)
{
    if ((p->buckets = calloc(MIN_BUCKETS, sizeof(*p->buckets))) == NULL)
        return OS_ERR_NOMEM;
    p->n_buckets = MIN_BUCKETS;
    return OS_OK;
}

void by_peers_nodes_free_(by_peers *p)
{
    for (size_t i = 0; i < p->n_buckets; i++) {
        by_peer_node *e = p->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            by_peers_unref_locked_(e->last);
            free(e);
        }
    }
    free(p->buckets);
    p->buckets = NULL;
    p->n_buckets = p->n_nodes = 0;
}

/* ------------------------------------------------------------------ observations */

void by_peers_observe(by_peers *p, const uint8_t node[20], const by_observation *o)
{
    by_peer_node *e;
    int64_t now;

    if (p == NULL || node == NULL || o == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    now = by_peers_now_ms_(p);
    if ((e = by_peers_node_get_(p, node, now)) == NULL) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    if (o->ok) {
        e->ok = sat_add(e->ok, 1);
        e->consec = 0;
        e->cooling = false;
        e->ttft_sum = sat_add(e->ttft_sum, o->ttft_ms < MAX_TTFT_MS ? o->ttft_ms : MAX_TTFT_MS);
        e->ttft_n = sat_add(e->ttft_n, 1);
        e->tokens = sat_add(e->tokens, o->tokens);
        e->total_ms = sat_add(e->total_ms, o->total_ms);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    e->fail = sat_add(e->fail, 1);
    e->consec = sat_add(e->consec, 1);
    uint64_t ms = by_peers_cooldown_ms(e->consec);
    e->cooling = true;
    e->cooldown_until = now + (int64_t)ms;
    uint64_t consec = e->consec;
    pthread_mutex_unlock(&p->mu);

    os_log_event ev;
    if (os_log_begin(&ev, p->log, OS_LOG_INFO, "seller failed: cooling down")) {
        char hex[OS_ADDRESS_STR_LEN];
        os_eip55_format(hex, node);
        os_log_kv(&ev, "node", "%s", hex);
        os_log_kv(&ev, "consecutive_failures", "%" PRIu64, consec);
        os_log_kv(&ev, "cooldown_ms", "%" PRIu64, ms);
        os_log_end(&ev);
    }
}

/* ------------------------------------------------------------------ management view */

typedef struct ranked {
    by_peer_node *e;
    double score; /* adjusted; -1 without a registry score */
} ranked;

static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return memcmp(x->e->node, y->e->node, 20);
}

static json_t *real_or_null(bool has, double v)
{
    return has ? json_real(v) : json_null();
}

static json_t *count_json(uint64_t n)
{
    return os_json_u64(n < INT64_MAX ? n : INT64_MAX);
}

/* {services, model, apis, input_price, output_price, cached_price, max_output_tokens} of one
 * offering of the seller's record; prices in micro-USDC per million tokens, as signed. */
static json_t *offering_json(const os_offering *of)
{
    json_t *o = json_object(), *svcs, *apis;
    bool ok;

    if (o == NULL)
        return NULL;
    ok = (svcs = os_json_child(o, "services", json_array())) != NULL &&
         os_json_put(o, "model", json_string(of->model)) &&
         (apis = os_json_child(o, "apis", json_array())) != NULL &&
         os_json_put(o, "input_price", os_money_to_json(of->pricing.input)) &&
         os_json_put(o, "output_price", os_money_to_json(of->pricing.output)) &&
         os_json_put(o, "cached_price", os_money_to_json(of->pricing.cached)) &&
         os_json_put(o, "max_output_tokens", count_json(of->max_output_tokens));
    for (size_t j = 0; ok && j < of->n_services && j < OS_RECORD_MAX_SERVICES; j++)
        ok = json_array_append_new(svcs, json_string(of->services[j])) == 0;
    for (unsigned bit = 1; ok && bit != 0 && bit <= of->apis; bit <<= 1)
        if ((of->apis & bit) != 0 && os_api_name(bit) != NULL)
            ok = json_array_append_new(apis, json_string(os_api_name(bit))) == 0;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *node_json(const by_peer_node *e, double score, int64_t now)
{
    json_t *o = json_object(), *obs, *load, *svcs, *offs;
    double avg = ent_avg_ttft(e);
    double tps = e->total_ms > 0 ? (double)e->tokens * 1000.0 / (double)e->total_ms : 0.0;
    bool seen = e->ok > 0 || e->fail > 0;
    double rate = seen ? (double)e->ok / ((double)e->ok + (double)e->fail) : 0.0;
    bool ok;

    if (o == NULL)
        return NULL;
    ok = os_json_put(o, "node", os_json_address(e->node)) &&
         os_json_put(o, "endpoint",
                     e->last != NULL ? json_string(e->last->v.endpoint) : json_null()) &&
         (svcs = os_json_child(o, "services", json_array())) != NULL &&
         os_json_put(o, "registry_score", real_or_null(e->has_reg, e->reg_score)) &&
         os_json_put(o, "reputation", real_or_null(e->has_reg, e->reputation)) &&
         os_json_put(o, "last_seen", e->has_reg ? os_json_u64(e->last_seen) : json_null()) &&
         os_json_put(o, "score", real_or_null(e->has_reg, score)) &&
         (obs = os_json_child(o, "observed", json_object())) != NULL &&
         os_json_put(obs, "successes", count_json(e->ok)) &&
         os_json_put(obs, "failures", count_json(e->fail)) &&
         os_json_put(obs, "consecutive_failures", count_json(e->consec)) &&
         os_json_put(obs, "avg_ttft_ms", real_or_null(avg >= 0.0, avg)) &&
         os_json_put(obs, "tokens_per_s", real_or_null(e->total_ms > 0, tps)) &&
         os_json_put(o, "success_rate", real_or_null(seen, rate)) &&
         (offs = os_json_child(o, "offerings", json_array())) != NULL &&
         os_json_put(o, "cooldown_ms",
                     os_json_u64(e->cooling && now < e->cooldown_until
                                     ? (uint64_t)(e->cooldown_until - now)
                                     : 0));
    if (ok && e->has_reg) {
        ok = (load = os_json_child(o, "load", json_object())) != NULL &&
             os_json_put(load, "active", os_json_u64(e->active)) &&
             os_json_put(load, "capacity", os_json_u64(e->capacity));
    } else if (ok) {
        ok = os_json_put(o, "load", json_null());
    }
    for (size_t i = 0; ok && e->last != NULL && i < e->last->v.record.n_offerings; i++) {
        const os_offering *of = &e->last->v.record.offerings[i];
        for (size_t j = 0; ok && j < of->n_services; j++)
            ok = json_array_append_new(svcs, json_string(of->services[j])) == 0;
        ok = ok && json_array_append_new(offs, offering_json(of)) == 0;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *by_peers_json(by_peers *p)
{
    json_t *root = NULL, *arr;
    ranked *r = NULL;
    size_t n = 0;
    int64_t now;

    if (p == NULL)
        return NULL;
    pthread_mutex_lock(&p->mu);
    now = by_peers_now_ms_(p);
    if (p->n_nodes > 0 && (r = calloc(p->n_nodes, sizeof(*r))) == NULL)
        goto done;
    for (size_t i = 0; i < p->n_buckets; i++)
        for (by_peer_node *e = p->buckets[i]; e != NULL; e = e->next)
            if (e->last != NULL || e->ok + e->fail > 0) /* seen, not just looked up in vain */
                r[n++] = (ranked){e, e->has_reg ? by_peers_node_score_(e, e->reg_score) : -1.0};
    if (n > 1)
        qsort(r, n, sizeof(*r), ranked_cmp);
    if ((root = json_object()) == NULL ||
        (arr = os_json_child(root, "peers", json_array())) == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, node_json(r[i].e, r[i].score, now)) != 0)
            goto fail;
    goto done;
fail:
    json_decref(root);
    root = NULL;
done:
    pthread_mutex_unlock(&p->mu);
    free(r);
    return root;
}
