/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's view of the sellers (peers.h). Listings are walked page by page from the first
 * registry, in configuration order, that answers with at least one usable seller for the service
 * (a registry that is down, refuses, answers malformed JSON or lists nobody usable passes the
 * question to the next; when every one that answered listed nobody, the answer is an empty list).
 * Scores from different registries are not comparable, so a listing is never a merge. The model
 * list, on the contrary, is the union of every answering registry's GET /v1/services, so a service
 * that only the second registry knows is still offered (and its listing then comes from there).
 *
 * Caching: one slot per service (at most MAX_SERVICES, least recently used evicted) and one for the
 * model list, each fresh for the TTL of the config's clock (clock_ms drives both the TTL and the
 * cooldowns). One thread refreshes a slot at a time; others meanwhile use the stale copy, or wait
 * when there is none. A failed refresh keeps the last good copy, logs at warn and is not retried
 * for another TTL, so a dead registry costs one timeout per TTL rather than one per request.
 *
 * Verification is the expensive part (one ecrecover per record and per changed heartbeat), so each
 * node remembers its newest verified copy: a record served again with the same body hash and
 * signature, and the same heartbeat, is taken without another signature check. Verified copies are
 * immutable and reference-counted (under the one mutex), shared by every listing that holds them.
 * Per node the observed stats live in a hash table keyed with a random SipHash key (node ids are
 * cheap to grind), capped at MAX_NODES entries (the least recently touched quarter is dropped).
 */
#include "peers.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "openseed/http_client.h"
#include "openseed/json.h"
#include "openseed/secp.h"

#include "peers_internal.h"

#define DEFAULT_TTL_MS 10000
#define DEFAULT_TIMEOUT_MS 5000L
#define MAX_REGISTRIES 64
#define MAX_BASE_LEN 1024
#define MAX_URL_LEN 2048
#define MAX_CURSOR_LEN 256
#define PAGE_LIMIT 100      /* the registry's own maximum */
#define MAX_PAGE_ITEMS 1000 /* a page longer than this is malformed */
#define MAX_LISTING 1000    /* peers kept per service */
#define MAX_PAGES 32
#define MAX_SERVICES 256 /* listings cached */
#define MAX_MODELS 10000
#define MAX_NODES 65536
#define MIN_BUCKETS 256
#define COOLDOWN_BASE_MS 5000u
#define COOLDOWN_MAX_MS 300000u
#define LATENCY_REF_MS 2000.0
#define MAX_TTFT_MS 86400000u /* one observation cannot swamp the average */

/* A verified peer; immutable once published, freed with its last reference. */
typedef struct prec {
    unsigned refs;
    by_peer_parsed v;
} prec;

/* One seller of a cached listing, with the registry's score for that listing. */
typedef struct lentry {
    prec *pr;
    double score, reputation;
    uint64_t last_seen;
    uint32_t active, capacity;
} lentry;

/* Freshness of one cached answer; every field under mu. */
typedef struct cslot {
    bool valid, refreshing;
    int64_t fetched_ms, retry_ms, used_ms;
    unsigned waiters;
} cslot;

typedef struct svc_cache {
    cslot s;
    char name[OS_RECORD_NAME_MAX];
    lentry *e;
    size_t n;
} svc_cache;

typedef struct node_ent {
    struct node_ent *next;
    uint8_t node[20];
    prec *last; /* newest verified copy (listing or lookup), or NULL */
    int64_t last_ms;
    bool notfound; /* a lookup found no registry that knows it, at notfound_ms */
    int64_t notfound_ms;
    bool has_reg; /* the registry's view, as last served */
    double reg_score, reputation;
    uint64_t last_seen;
    uint32_t active, capacity;
    uint64_t ok, fail, consec;
    uint64_t ttft_sum, ttft_n, tokens, total_ms;
    bool cooling;
    int64_t cooldown_until;
    int64_t touched;
} node_ent;

struct by_peers {
    char **regs; /* base URLs without a trailing '/' */
    size_t n_regs;
    uint64_t chain_id;
    uint8_t escrow[20];
    int64_t ttl_ms;
    const os_logger *log;
    int64_t (*clock_ms)(void *ud);
    void *clock_ud;
    os_http_client *http;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Under mu. */
    node_ent **buckets;
    size_t n_buckets, n_nodes;
    svc_cache *svcs[MAX_SERVICES];
    size_t n_svcs;
    cslot models_slot;
    json_t *models;
};

/* ------------------------------------------------------------------ small helpers */

static int64_t mono_ms(void *ud)
{
    struct timespec ts;
    (void)ud;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const by_peers *p)
{
    return p->clock_ms(p->clock_ud);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A service name as the registry takes it: [A-Za-z0-9._:/-]{1,63}. */
static bool service_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= OS_RECORD_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-'))
            return false;
    }
    return true;
}

/* Appends s to out[*len..cap) percent-encoded (everything but RFC 3986 unreserved). */
static bool pct_append(char *out, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (*len + (plain ? 1 : 3) >= cap)
            return false;
        if (plain) {
            out[(*len)++] = (char)c;
        } else {
            out[(*len)++] = '%';
            out[(*len)++] = hex[c >> 4];
            out[(*len)++] = hex[c & 15];
        }
    }
    out[*len] = '\0';
    return true;
}

static bool raw_append(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n >= cap)
        return false;
    memcpy(out + *len, s, n + 1);
    *len += n;
    return true;
}

static bool base_ok(const char *s)
{
    size_t n = strlen(s), scheme;
    if (n == 0 || n >= MAX_BASE_LEN)
        return false;
    if (strncmp(s, "http://", 7) == 0)
        scheme = 7;
    else if (strncmp(s, "https://", 8) == 0)
        scheme = 8;
    else
        return false;
    while (n > scheme && s[n - 1] == '/')
        n--;
    if (n == scheme) /* no host */
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* ------------------------------------------------------------------ scores */

double by_peers_adjust_score(double registry_score, uint64_t ok, uint64_t fail, double avg_ttft_ms)
{
    double s = registry_score * ((double)ok + 1.0) / ((double)ok + (double)fail + 2.0);
    if (avg_ttft_ms >= 0.0)
        s *= LATENCY_REF_MS / (LATENCY_REF_MS + avg_ttft_ms);
    return s;
}

uint64_t by_peers_cooldown_ms(uint64_t consecutive)
{
    uint64_t ms = COOLDOWN_BASE_MS;
    for (uint64_t i = 1; i < consecutive && ms < COOLDOWN_MAX_MS; i++)
        ms *= 2;
    return ms < COOLDOWN_MAX_MS ? ms : COOLDOWN_MAX_MS;
}

static double ent_avg_ttft(const node_ent *e)
{
    return e != NULL && e->ttft_n > 0 ? (double)e->ttft_sum / (double)e->ttft_n : -1.0;
}

static double ent_adjust(const node_ent *e, double registry_score)
{
    return by_peers_adjust_score(registry_score, e != NULL ? e->ok : 0, e != NULL ? e->fail : 0,
                                 ent_avg_ttft(e));
}

/* ------------------------------------------------------------------ checking one peer */

static os_err unit_number(double *out, const json_t *obj, const char *key, char *err, size_t errcap)
{
    const json_t *v = json_object_get(obj, key);
    double d;

    if (v == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "peer: field \"%s\" is required", key);
    if (!json_is_number(v))
        return os_errf(err, errcap, OS_ERR_INVALID, "peer: field \"%s\" must be a number", key);
    d = json_number_value(v);
    if (!isfinite(d) || d < 0.0 || d > 1.0)
        return os_errf(err, errcap, OS_ERR_INVALID, "peer: field \"%s\" must be between 0 and 1",
                       key);
    *out = d;
    return OS_OK;
}

static bool hb_same(const os_heartbeat *a, const os_heartbeat *b)
{
    return memcmp(a->node, b->node, 20) == 0 && strcmp(a->endpoint, b->endpoint) == 0 &&
           a->seq == b->seq && a->timestamp == b->timestamp && memcmp(a->sig, b->sig, 65) == 0;
}

/* Takes the heartbeat's endpoint when the heartbeat is the node's, newer than the record and
 * signed; anything else leaves the record's endpoint and marks the heartbeat rejected. */
static void take_heartbeat(by_peer_parsed *out, const json_t *hbj, uint64_t chain_id,
                           const by_peer_parsed *known)
{
    os_heartbeat hb;

    if (os_heartbeat_parse(&hb, hbj, NULL, 0) != OS_OK ||
        memcmp(hb.node, out->record.node, 20) != 0 || hb.seq <= out->record.seq) {
        out->hb_rejected = true;
        return;
    }
    hb.active = hb.capacity = 0;
    if (!(known != NULL && known->hb_used && hb_same(&known->hb, &hb)) &&
        os_heartbeat_verify(&hb, chain_id) != OS_OK) {
        out->hb_rejected = true;
        return;
    }
    out->hb = hb;
    out->hb_used = true;
    memcpy(out->endpoint, hb.endpoint, sizeof(out->endpoint));
}

os_err by_peers_parse_peer(by_peer_parsed *out, const json_t *peer, uint64_t chain_id,
                           const uint8_t escrow[20], const by_peer_parsed *known, char *err,
                           size_t errcap)
{
    static const char W[] = "peer: ";
    const json_t *rec, *load, *hbj;
    uint64_t active, capacity;
    os_err rc;

    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output");
    memset(out, 0, sizeof(*out));
    if (peer == NULL || escrow == NULL || !json_is_object(peer))
        return os_errf(err, errcap, OS_ERR_INVALID, "peer: must be a JSON object");
    if ((rc = os_json_at_object(&rec, peer, "record", W, err, errcap)) != OS_OK ||
        (rc = os_json_at_hex(out->sig, 65, peer, "signature", W, err, errcap)) != OS_OK ||
        (rc = unit_number(&out->reputation, peer, "reputation", err, errcap)) != OS_OK ||
        (rc = unit_number(&out->score, peer, "score", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&out->last_seen, peer, "last_seen", 0, UINT64_MAX, W, err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_object(&load, peer, "load", W, err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&active, load, "active", 0, UINT32_MAX, "peer: load: ", err,
                             errcap)) != OS_OK ||
        (rc = os_json_at_u64(&capacity, load, "capacity", 0, UINT32_MAX, "peer: load: ", err,
                             errcap)) != OS_OK)
        goto fail;
    out->load_active = (uint32_t)active;
    out->load_capacity = (uint32_t)capacity;
    hbj = json_object_get(peer, "heartbeat");
    if (hbj != NULL && !json_is_null(hbj) && !json_is_object(hbj)) {
        rc = os_errf(err, errcap, OS_ERR_INVALID, "peer: field \"heartbeat\" must be an object");
        goto fail;
    }

    if ((rc = os_record_body_hash(out->body_hash, rec)) != OS_OK) {
        rc = os_errf(err, errcap, rc == OS_ERR_NOMEM ? rc : OS_ERR_INVALID,
                     "peer: the record cannot be hashed");
        goto fail;
    }
    if (known != NULL && memcmp(known->body_hash, out->body_hash, 32) == 0 &&
        memcmp(known->sig, out->sig, 65) == 0) {
        out->record = known->record; /* the very bytes already verified */
    } else if ((rc = os_record_verify(&out->record, rec, out->sig, err, errcap)) != OS_OK) {
        goto fail;
    }
    if (out->record.chain_id != chain_id) {
        rc = os_errf(err, errcap, OS_ERR_UNSUPPORTED, "the record is for chain %" PRIu64,
                     out->record.chain_id);
        goto fail;
    }
    if (memcmp(out->record.escrow, escrow, 20) != 0) {
        rc = os_errf(err, errcap, OS_ERR_UNSUPPORTED, "the record names another escrow");
        goto fail;
    }
    if (os_ohttp_keyconfig_parse(&out->kc, out->record.ohttp_keys, out->record.ohttp_keys_len) !=
        OS_OK) {
        rc = os_errf(err, errcap, OS_ERR_INVALID, "the record's ohttp_keys are not usable");
        goto fail;
    }
    memcpy(out->endpoint, out->record.endpoint, sizeof(out->endpoint));
    if (json_is_object(hbj))
        take_heartbeat(out, hbj, chain_id, known);
    return OS_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

/* Same signed content: a listing may then share the earlier copy. */
static bool verified_same(const by_peer_parsed *a, const by_peer_parsed *b)
{
    return memcmp(a->body_hash, b->body_hash, 32) == 0 && memcmp(a->sig, b->sig, 65) == 0 &&
           a->hb_used == b->hb_used && a->hb_rejected == b->hb_rejected &&
           (!a->hb_used || hb_same(&a->hb, &b->hb));
}

/* ------------------------------------------------------------------ nodes (under mu) */

static void prec_unref_locked(prec *pr)
{
    if (pr != NULL && --pr->refs == 0) {
        sodium_memzero(pr, sizeof(*pr));
        free(pr);
    }
}

static void prec_unref(by_peers *p, prec *pr)
{
    if (pr == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    prec_unref_locked(pr);
    pthread_mutex_unlock(&p->mu);
}

static size_t node_bucket(const by_peers *p, const uint8_t node[20], size_t n_buckets)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;

    crypto_shorthash(h, node, 20, p->hash_key);
    for (size_t i = 0; i < sizeof(h); i++)
        v = v << 8 | h[i];
    return (size_t)(v % n_buckets);
}

static node_ent *node_find(const by_peers *p, const uint8_t node[20])
{
    node_ent *e = p->buckets[node_bucket(p, node, p->n_buckets)];
    while (e != NULL && memcmp(e->node, node, 20) != 0)
        e = e->next;
    return e;
}

static void node_grow(by_peers *p)
{
    size_t nb = p->n_buckets * 2;
    node_ent **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < p->n_buckets; i++) {
        node_ent *e = p->buckets[i], *next;
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
    node_ent *e;
} aged;

static int aged_cmp(const void *a, const void *b)
{
    int64_t x = ((const aged *)a)->touched, y = ((const aged *)b)->touched;
    return x < y ? -1 : x > y;
}

static void node_remove(by_peers *p, node_ent *victim)
{
    node_ent **pp = &p->buckets[node_bucket(p, victim->node, p->n_buckets)];
    while (*pp != NULL && *pp != victim)
        pp = &(*pp)->next;
    if (*pp == NULL)
        return;
    *pp = victim->next;
    prec_unref_locked(victim->last);
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
        for (node_ent *e = p->buckets[i]; e != NULL; e = e->next)
            a[n++] = (aged){e->touched, e};
    qsort(a, n, sizeof(*a), aged_cmp);
    for (size_t i = 0; i < n / 4 + 1 && i < n; i++)
        node_remove(p, a[i].e);
    free(a);
    os_log_info(p->log, "peer table full: dropped the least recently seen sellers");
}

static node_ent *node_get(by_peers *p, const uint8_t node[20], int64_t now)
{
    node_ent *e = node_find(p, node);
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

static void node_take(node_ent *e, prec *pr, int64_t now)
{
    if (e->last != pr) {
        prec_unref_locked(e->last);
        pr->refs++;
        e->last = pr;
    }
    e->last_ms = now;
    e->notfound = false;
}

static void node_set_registry_view(node_ent *e, const lentry *le)
{
    e->has_reg = true;
    e->reg_score = le->score;
    e->reputation = le->reputation;
    e->last_seen = le->last_seen;
    e->active = le->active;
    e->capacity = le->capacity;
}

/* A reference to node's newest verified copy, or NULL. */
static prec *known_get(by_peers *p, const uint8_t node[20])
{
    prec *pr = NULL;
    pthread_mutex_lock(&p->mu);
    node_ent *e = node_find(p, node);
    if (e != NULL && e->last != NULL) {
        pr = e->last;
        pr->refs++;
    }
    pthread_mutex_unlock(&p->mu);
    return pr;
}

/* ------------------------------------------------------------------ cache slots (under mu) */

typedef enum slot_next {
    SLOT_USE,   /* the slot holds an answer to use (fresh, or stale while refresh is not due) */
    SLOT_FETCH, /* the caller must refresh it, then call slot_end */
    SLOT_NONE,  /* nothing cached and the refresh this call waited for failed */
} slot_next;

static slot_next slot_begin(by_peers *p, cslot *s)
{
    int64_t now = now_ms(p);

    s->used_ms = now;
    if (s->valid && now - s->fetched_ms < p->ttl_ms)
        return SLOT_USE;
    if (s->refreshing) {
        if (s->valid)
            return SLOT_USE;
        s->waiters++;
        while (s->refreshing)
            pthread_cond_wait(&p->cv, &p->mu);
        s->waiters--;
        return s->valid ? SLOT_USE : SLOT_NONE;
    }
    if (s->valid && now < s->retry_ms)
        return SLOT_USE;
    s->refreshing = true;
    return SLOT_FETCH;
}

static void slot_end(by_peers *p, cslot *s, bool ok, const char *what, const char *name)
{
    int64_t now = now_ms(p);

    s->refreshing = false;
    if (ok) {
        s->valid = true;
        s->fetched_ms = now;
    } else {
        s->retry_ms = now + p->ttl_ms;
        os_log_event ev;
        if (os_log_begin(&ev, p->log, OS_LOG_WARN,
                         s->valid ? "no registry answered: serving the last good copy"
                                  : "no registry answered and nothing is cached")) {
            os_log_kv(&ev, "what", "%s", what);
            if (name != NULL)
                os_log_kv(&ev, "service", "%s", name);
            if (s->valid)
                os_log_kv(&ev, "age_ms", "%" PRId64, now - s->fetched_ms);
            os_log_end(&ev);
        }
    }
    pthread_cond_broadcast(&p->cv);
}

static void svc_free_entries(lentry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        prec_unref_locked(e[i].pr);
    free(e);
}

static svc_cache *svc_get(by_peers *p, const char *name)
{
    size_t victim = SIZE_MAX;
    svc_cache *c;

    for (size_t i = 0; i < p->n_svcs; i++)
        if (strcmp(p->svcs[i]->name, name) == 0)
            return p->svcs[i];
    if (p->n_svcs == MAX_SERVICES) {
        for (size_t i = 0; i < p->n_svcs; i++) {
            const cslot *s = &p->svcs[i]->s;
            if (s->refreshing || s->waiters > 0)
                continue;
            if (victim == SIZE_MAX || s->used_ms < p->svcs[victim]->s.used_ms)
                victim = i;
        }
        if (victim == SIZE_MAX)
            return NULL;
        c = p->svcs[victim];
        svc_free_entries(c->e, c->n);
        free(c);
        p->svcs[victim] = p->svcs[--p->n_svcs];
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    memcpy(c->name, name, strlen(name) + 1);
    p->svcs[p->n_svcs++] = c;
    return c;
}

/* ------------------------------------------------------------------ talking to registries */

static void log_registry(by_peers *p, size_t ri, const char *msg, const char *what, long status,
                         const char *why)
{
    os_log_event ev;
    if (os_log_begin(&ev, p->log, OS_LOG_WARN, msg)) {
        os_log_kv(&ev, "registry", "%zu", ri);
        os_log_kv(&ev, "request", "%s", what);
        if (status > 0)
            os_log_kv(&ev, "status", "%ld", status);
        if (why != NULL)
            os_log_kv(&ev, "error", "%s", why);
        os_log_end(&ev);
    }
}

/* GET url from registry ri: OS_OK with a 200 and a JSON object in *body, else an error (logged,
 * but for a 404 when quiet_404: an unknown node is an answer, not a fault). */
static os_err registry_get(by_peers *p, size_t ri, const char *url, const char *what,
                           bool quiet_404, long *status, json_t **body)
{
    os_http_client_error e;
    os_err rc;

    *body = NULL;
    *status = 0;
    rc = os_http_client_json(p->http, status, body, &e, "GET", url, NULL, NULL, 0);
    if (rc != OS_OK) {
        log_registry(p, ri, "registry request failed", what, e.status, e.message);
        return rc == OS_ERR_NOMEM ? rc : OS_ERR_NETWORK;
    }
    if (*status != 200 || !json_is_object(*body)) {
        if (*status != 404 || !quiet_404)
            log_registry(p, ri, "registry refused", what, *status,
                         *status == 200 ? "the answer is not a JSON object" : NULL);
        json_decref(*body);
        *body = NULL;
        return OS_ERR_NETWORK;
    }
    return OS_OK;
}

/* Every page of registry ri's listing for service, appended to acc (at most MAX_LISTING). */
static os_err fetch_pages(by_peers *p, size_t ri, const char *service, json_t *acc)
{
    char url[MAX_URL_LEN], why[OS_JSON_ERR_LEN];
    char *cursor = NULL;
    json_t *body = NULL;
    bool truncated = false, done = false;
    long status;
    os_err rc = OS_OK;

    for (size_t page = 0; page < MAX_PAGES && !done; page++) {
        const json_t *peers;
        const char *next;
        size_t len;
        int w =
            snprintf(url, sizeof(url), "%s/v1/peers?limit=%d&service=", p->regs[ri], PAGE_LIMIT);
        if (w < 0 || (size_t)w >= sizeof(url))
            goto toolong;
        len = (size_t)w;
        if (!pct_append(url, sizeof(url), &len, service) ||
            (cursor != NULL && (!raw_append(url, sizeof(url), &len, "&cursor=") ||
                                !pct_append(url, sizeof(url), &len, cursor))))
            goto toolong;
        if ((rc = registry_get(p, ri, url, "peers", false, &status, &body)) != OS_OK)
            break;
        if (os_json_get_array(&peers, body, "peers", MAX_PAGE_ITEMS, why, sizeof(why)) != OS_OK ||
            os_json_opt_str(&next, body, "next_cursor", MAX_CURSOR_LEN, why, sizeof(why)) !=
                OS_OK) {
            log_registry(p, ri, "registry answered a malformed listing", "peers", 200, why);
            rc = OS_ERR_NETWORK;
            break;
        }
        for (size_t i = 0; i < json_array_size(peers); i++) {
            if (json_array_size(acc) >= MAX_LISTING) {
                truncated = true;
                break;
            }
            if (json_array_append(acc, json_array_get(peers, i)) != 0) {
                rc = OS_ERR_NOMEM;
                break;
            }
        }
        if (rc != OS_OK)
            break;
        if (truncated || next == NULL || next[0] == '\0' ||
            (cursor != NULL && strcmp(cursor, next) == 0)) {
            done = true;
        } else {
            free(cursor);
            if ((cursor = strdup(next)) == NULL) {
                rc = OS_ERR_NOMEM;
                break;
            }
        }
        json_decref(body);
        body = NULL;
    }
    if (rc == OS_OK && !done)
        truncated = true;
    if (rc == OS_OK && truncated) {
        os_log_event ev;
        if (os_log_begin(&ev, p->log, OS_LOG_INFO, "listing truncated")) {
            os_log_kv(&ev, "registry", "%zu", ri);
            os_log_kv(&ev, "service", "%s", service);
            os_log_kv(&ev, "kept", "%zu", json_array_size(acc));
            os_log_end(&ev);
        }
    }
    json_decref(body);
    free(cursor);
    return rc;
toolong:
    free(cursor);
    json_decref(body);
    log_registry(p, ri, "registry URL too long", "peers", 0, NULL);
    return OS_ERR_NETWORK;
}

static int lentry_node_cmp(const void *a, const void *b)
{
    return memcmp(((const lentry *)a)->pr->v.record.node, ((const lentry *)b)->pr->v.record.node,
                  20);
}

/* Checks each served peer (reusing earlier verifications) into a listing; unusable ones dropped. */
static os_err build_listing(by_peers *p, size_t ri, const json_t *peers, lentry **out,
                            size_t *n_out)
{
    size_t n = json_array_size(peers), k = 0, malformed = 0, forged = 0, foreign = 0, hb_bad = 0;
    lentry *e = calloc(n > 0 ? n : 1, sizeof(*e));
    prec *scratch = NULL;
    char why[OS_RECORD_ERR_LEN];
    os_err rc = OS_OK;

    *out = NULL;
    *n_out = 0;
    if (e == NULL)
        return OS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *peer = json_array_get(peers, i);
        const json_t *rec = json_object_get(peer, "record");
        uint8_t node[20];
        prec *known;

        if (!json_is_object(rec) ||
            os_json_at_address(node, rec, "node_id", "", NULL, 0) != OS_OK) {
            malformed++;
            continue;
        }
        if (scratch == NULL && (scratch = calloc(1, sizeof(*scratch))) == NULL) {
            rc = OS_ERR_NOMEM;
            break;
        }
        known = known_get(p, node);
        os_err prc = by_peers_parse_peer(&scratch->v, peer, p->chain_id, p->escrow,
                                         known != NULL ? &known->v : NULL, why, sizeof(why));
        if (prc != OS_OK) {
            prec_unref(p, known);
            if (prc == OS_ERR_NOMEM) {
                rc = prc;
                break;
            }
            if (prc == OS_ERR_CRYPTO)
                forged++;
            else if (prc == OS_ERR_UNSUPPORTED)
                foreign++;
            else
                malformed++;
            os_log_event ev;
            if (os_log_begin(&ev, p->log, OS_LOG_DEBUG, "peer dropped")) {
                char hex[OS_ADDRESS_STR_LEN];
                os_eip55_format(hex, node);
                os_log_kv(&ev, "node", "%s", hex);
                os_log_kv(&ev, "reason", "%s", why);
                os_log_end(&ev);
            }
            continue;
        }
        if (scratch->v.hb_rejected)
            hb_bad++;
        e[k] = (lentry){.score = scratch->v.score,
                        .reputation = scratch->v.reputation,
                        .last_seen = scratch->v.last_seen,
                        .active = scratch->v.load_active,
                        .capacity = scratch->v.load_capacity};
        if (known != NULL && verified_same(&known->v, &scratch->v)) {
            e[k].pr = known;
        } else {
            prec_unref(p, known);
            scratch->refs = 1;
            e[k].pr = scratch;
            scratch = NULL;
        }
        k++;
    }
    if (scratch != NULL) {
        sodium_memzero(scratch, sizeof(*scratch));
        free(scratch);
    }
    if (k > 1) { /* a registry that lists a node twice: keep one */
        size_t w = 1;
        qsort(e, k, sizeof(*e), lentry_node_cmp);
        for (size_t i = 1; i < k; i++) {
            if (lentry_node_cmp(&e[w - 1], &e[i]) == 0)
                prec_unref(p, e[i].pr);
            else
                e[w++] = e[i];
        }
        k = w;
    }
    if (malformed + forged + foreign + hb_bad > 0) {
        os_log_event ev;
        if (os_log_begin(&ev, p->log, forged + hb_bad > 0 ? OS_LOG_WARN : OS_LOG_INFO,
                         "registry served unusable records")) {
            os_log_kv(&ev, "registry", "%zu", ri);
            os_log_kv(&ev, "forged", "%zu", forged);
            os_log_kv(&ev, "other_chain_or_escrow", "%zu", foreign);
            os_log_kv(&ev, "malformed", "%zu", malformed);
            os_log_kv(&ev, "bad_heartbeats", "%zu", hb_bad);
            os_log_end(&ev);
        }
    }
    if (rc != OS_OK) {
        for (size_t i = 0; i < k; i++)
            prec_unref(p, e[i].pr);
        free(e);
        return rc;
    }
    *out = e;
    *n_out = k;
    return OS_OK;
}

/* The listing from the first registry that lists anyone usable (see the file comment). */
static os_err fetch_listing(by_peers *p, const char *service, lentry **out, size_t *n_out)
{
    bool answered = false;
    os_err rc = OS_ERR_NETWORK;

    *out = NULL;
    *n_out = 0;
    for (size_t ri = 0; ri < p->n_regs; ri++) {
        json_t *acc = json_array();
        lentry *e = NULL;
        size_t n = 0;

        if (acc == NULL)
            return OS_ERR_NOMEM;
        rc = fetch_pages(p, ri, service, acc);
        if (rc == OS_OK)
            rc = build_listing(p, ri, acc, &e, &n);
        json_decref(acc);
        if (rc == OS_ERR_NOMEM)
            return rc;
        if (rc != OS_OK)
            continue;
        answered = true;
        if (n > 0) {
            *out = e;
            *n_out = n;
            return OS_OK;
        }
        free(e);
    }
    return answered ? OS_OK : OS_ERR_NETWORK;
}

/* Makes c's listing usable (fetching when due); mu held on entry and exit. OS_OK when c->e
 * may be read. */
static os_err ensure_listing(by_peers *p, svc_cache *c)
{
    lentry *e = NULL;
    size_t n = 0;
    os_err rc;

    switch (slot_begin(p, &c->s)) {
    case SLOT_USE:
        return OS_OK;
    case SLOT_NONE:
        return OS_ERR_NETWORK;
    case SLOT_FETCH:
        break;
    }
    pthread_mutex_unlock(&p->mu);
    rc = fetch_listing(p, c->name, &e, &n);
    pthread_mutex_lock(&p->mu);
    if (rc == OS_OK) {
        int64_t now = now_ms(p);
        svc_free_entries(c->e, c->n);
        c->e = e;
        c->n = n;
        for (size_t i = 0; i < n; i++) {
            node_ent *ne = node_get(p, e[i].pr->v.record.node, now);
            if (ne != NULL) {
                node_take(ne, e[i].pr, now);
                node_set_registry_view(ne, &e[i]);
            }
        }
    }
    slot_end(p, &c->s, rc == OS_OK, "peers", c->name);
    if (rc != OS_OK && c->s.valid)
        return OS_OK;
    return rc;
}

/* GET /v1/peers/{node} on each registry until one knows it. *out NULL: none does. */
static os_err pin_lookup(by_peers *p, const uint8_t node[20], prec **out, lentry *view)
{
    char hex[OS_ADDRESS_STR_LEN], url[MAX_URL_LEN], why[OS_RECORD_ERR_LEN];
    bool answered = false;
    prec *known = NULL, *pr = NULL;
    int64_t now;

    *out = NULL;
    pthread_mutex_lock(&p->mu);
    now = now_ms(p);
    node_ent *ne = node_find(p, node);
    if (ne != NULL && ne->last != NULL && now - ne->last_ms < p->ttl_ms) {
        *out = ne->last;
        ne->last->refs++;
        *view = (lentry){.score = ne->reg_score};
        pthread_mutex_unlock(&p->mu);
        return OS_OK;
    }
    if (ne != NULL && ne->notfound && now - ne->notfound_ms < p->ttl_ms) {
        pthread_mutex_unlock(&p->mu);
        return OS_OK;
    }
    if (ne != NULL && ne->last != NULL) {
        known = ne->last;
        known->refs++;
    }
    pthread_mutex_unlock(&p->mu);

    os_eip55_format(hex, node);
    for (size_t ri = 0; ri < p->n_regs && pr == NULL; ri++) {
        json_t *body;
        long status;
        int w = snprintf(url, sizeof(url), "%s/v1/peers/%s", p->regs[ri], hex);
        if (w < 0 || (size_t)w >= sizeof(url))
            continue;
        if (registry_get(p, ri, url, "peer", true, &status, &body) != OS_OK) {
            answered = answered || status == 404;
            continue;
        }
        answered = true;
        if ((pr = calloc(1, sizeof(*pr))) == NULL) {
            json_decref(body);
            prec_unref(p, known);
            return OS_ERR_NOMEM;
        }
        if (by_peers_parse_peer(&pr->v, body, p->chain_id, p->escrow,
                                known != NULL ? &known->v : NULL, why, sizeof(why)) != OS_OK ||
            (memcmp(pr->v.record.node, node, 20) != 0 &&
             os_errf(why, sizeof(why), OS_ERR_INVALID, "the answer is another node's") != OS_OK)) {
            log_registry(p, ri, "registry served an unusable peer", "peer", 200, why);
            free(pr);
            pr = NULL;
        }
        json_decref(body);
    }

    pthread_mutex_lock(&p->mu);
    now = now_ms(p);
    ne = node_get(p, node, now);
    if (pr != NULL) {
        pr->refs = 1;
        *view = (lentry){.score = pr->v.score,
                         .reputation = pr->v.reputation,
                         .last_seen = pr->v.last_seen,
                         .active = pr->v.load_active,
                         .capacity = pr->v.load_capacity};
        if (ne != NULL) {
            node_take(ne, pr, now);
            node_set_registry_view(ne, view);
        }
        *out = pr;
    } else if (answered && ne != NULL) {
        ne->notfound = true;
        ne->notfound_ms = now;
    } else if (!answered && known != NULL) {
        /* every registry is down: the last copy seen is better than nothing */
        *out = known;
        known->refs++;
        *view = (lentry){.score = ne != NULL ? ne->reg_score : known->v.score};
    }
    prec_unref_locked(known);
    pthread_mutex_unlock(&p->mu);
    return answered || *out != NULL ? OS_OK : OS_ERR_NETWORK;
}

/* ------------------------------------------------------------------ lifecycle */

os_err by_peers_new(by_peers **out, const by_peers_config *cfg)
{
    os_http_client_config hc;
    by_peers *p;
    os_err rc = OS_ERR_NOMEM;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (cfg == NULL || cfg->registries == NULL || cfg->n_registries == 0 ||
        cfg->n_registries > MAX_REGISTRIES || cfg->request_timeout_ms < 0)
        return OS_ERR_INVALID;
    for (size_t i = 0; i < cfg->n_registries; i++)
        if (cfg->registries[i] == NULL || !base_ok(cfg->registries[i]))
            return OS_ERR_INVALID;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return OS_ERR_NOMEM;
    p->chain_id = cfg->chain_id;
    memcpy(p->escrow, cfg->escrow, 20);
    p->ttl_ms = cfg->ttl_ms == 0
                    ? DEFAULT_TTL_MS
                    : (cfg->ttl_ms > INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)cfg->ttl_ms);
    p->log = cfg->log;
    p->clock_ms = cfg->clock_ms != NULL ? cfg->clock_ms : mono_ms;
    p->clock_ud = cfg->clock_ud;
    randombytes_buf(p->hash_key, sizeof(p->hash_key));
    if ((p->regs = calloc(cfg->n_registries, sizeof(*p->regs))) == NULL)
        goto fail;
    for (size_t i = 0; i < cfg->n_registries; i++) {
        size_t n = strlen(cfg->registries[i]);
        while (n > 0 && cfg->registries[i][n - 1] == '/')
            n--;
        if ((p->regs[i] = strndup(cfg->registries[i], n)) == NULL)
            goto fail;
        p->n_regs++;
    }
    if ((p->buckets = calloc(MIN_BUCKETS, sizeof(*p->buckets))) == NULL)
        goto fail;
    p->n_buckets = MIN_BUCKETS;

    memset(&hc, 0, sizeof(hc));
    hc.timeout_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    hc.connect_timeout_ms = hc.timeout_ms < DEFAULT_TIMEOUT_MS ? hc.timeout_ms : DEFAULT_TIMEOUT_MS;
    hc.pool_size = 4;
    hc.json_max_depth = 32;
    if ((rc = os_http_client_new(&p->http, &hc)) != OS_OK)
        goto fail;
    rc = OS_ERR_INTERNAL;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        goto fail;
    }
    *out = p;
    return OS_OK;
fail:
    os_http_client_free(p->http);
    for (size_t i = 0; i < p->n_regs; i++)
        free(p->regs[i]);
    free(p->regs);
    free(p->buckets);
    free(p);
    return rc;
}

void by_peers_free(by_peers *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_svcs; i++) {
        svc_free_entries(p->svcs[i]->e, p->svcs[i]->n);
        free(p->svcs[i]);
    }
    for (size_t i = 0; i < p->n_buckets; i++) {
        node_ent *e = p->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            prec_unref_locked(e->last);
            free(e);
        }
    }
    free(p->buckets);
    json_decref(p->models);
    os_http_client_free(p->http);
    for (size_t i = 0; i < p->n_regs; i++)
        free(p->regs[i]);
    free(p->regs);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ------------------------------------------------------------------ candidates */

/* The cheapest offering of r (blended as the registry ranks: (3 × input + output) / 4) that lists
 * service and one of api_bits within cap (NULL: no cap). */
static bool pick_offering(const os_record *r, const char *service, unsigned api_bits,
                          const by_price_cap *cap, size_t *idx)
{
    bool found = false;
    __uint128_t best = 0;

    for (size_t i = 0; i < r->n_offerings; i++) {
        const os_offering *o = &r->offerings[i];
        bool listed = false;
        if ((o->apis & api_bits) == 0)
            continue;
        for (size_t j = 0; j < o->n_services && !listed; j++)
            listed = strcmp(o->services[j], service) == 0;
        if (!listed)
            continue;
        if (cap != NULL && ((cap->max_input != 0 && o->pricing.input > cap->max_input) ||
                            (cap->max_output != 0 && o->pricing.output > cap->max_output)))
            continue;
        __uint128_t price = (__uint128_t)o->pricing.input * 3 + o->pricing.output;
        if (!found || price < best) {
            found = true;
            best = price;
            *idx = i;
        }
    }
    return found;
}

typedef struct cand {
    const prec *pr;
    size_t offering;
    double score;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return memcmp(x->pr->v.record.node, y->pr->v.record.node, 20);
}

static void fill_peer(by_peer *out, const cand *c)
{
    memcpy(out->node, c->pr->v.record.node, 20);
    memcpy(out->endpoint, c->pr->v.endpoint, sizeof(out->endpoint));
    out->record = c->pr->v.record;
    out->offering = c->offering;
    out->kc = c->pr->v.kc;
    out->score = c->score;
}

/* The pinned seller, whatever its cooldown and caps. */
static os_err candidates_pinned(by_peers *p, by_peer **out, size_t *n, const char *service,
                                unsigned api_bits, const uint8_t pin[20])
{
    svc_cache *c;
    prec *pr = NULL;
    lentry view = {0};
    os_err rc;
    cand one;

    pthread_mutex_lock(&p->mu);
    if ((c = svc_get(p, service)) == NULL) {
        pthread_mutex_unlock(&p->mu);
        return OS_ERR_NOMEM;
    }
    (void)ensure_listing(p, c); /* a failure falls through to the lookup */
    for (size_t i = 0; c->s.valid && i < c->n; i++) {
        if (memcmp(c->e[i].pr->v.record.node, pin, 20) == 0) {
            pr = c->e[i].pr;
            pr->refs++;
            view = c->e[i];
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (pr == NULL && (rc = pin_lookup(p, pin, &pr, &view)) != OS_OK)
        return rc;
    if (pr == NULL || !pick_offering(&pr->v.record, service, api_bits, NULL, &one.offering)) {
        prec_unref(p, pr);
        return OS_OK;
    }
    one.pr = pr;
    pthread_mutex_lock(&p->mu);
    one.score = ent_adjust(node_find(p, pin), view.score);
    pthread_mutex_unlock(&p->mu);
    if ((*out = calloc(1, sizeof(**out))) == NULL) {
        prec_unref(p, pr);
        return OS_ERR_NOMEM;
    }
    fill_peer(*out, &one);
    *n = 1;
    prec_unref(p, pr);
    return OS_OK;
}

os_err by_peers_candidates(by_peers *p, by_peer **out, size_t *n, const char *service,
                           unsigned api_bits, const by_price_cap *cap, const uint8_t *pin,
                           size_t max)
{
    svc_cache *c;
    cand *cs = NULL;
    size_t nc = 0;
    int64_t now;
    os_err rc;

    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (p == NULL || out == NULL || n == NULL || service == NULL)
        return OS_ERR_INVALID;
    if (!service_ok(service) || api_bits == 0 || max == 0)
        return OS_OK; /* no seller can list such a service */
    if (pin != NULL)
        return candidates_pinned(p, out, n, service, api_bits, pin);

    pthread_mutex_lock(&p->mu);
    if ((c = svc_get(p, service)) == NULL) {
        rc = OS_ERR_NOMEM;
        goto unlock;
    }
    if ((rc = ensure_listing(p, c)) != OS_OK)
        goto unlock;
    if (c->n > 0 && (cs = calloc(c->n, sizeof(*cs))) == NULL) {
        rc = OS_ERR_NOMEM;
        goto unlock;
    }
    now = now_ms(p);
    for (size_t i = 0; i < c->n; i++) {
        const lentry *le = &c->e[i];
        const node_ent *ne = node_find(p, le->pr->v.record.node);
        size_t off;
        if (ne != NULL && ne->cooling && now < ne->cooldown_until)
            continue;
        if (!pick_offering(&le->pr->v.record, service, api_bits, cap, &off))
            continue;
        cs[nc++] = (cand){.pr = le->pr, .offering = off, .score = ent_adjust(ne, le->score)};
    }
    if (nc > 1)
        qsort(cs, nc, sizeof(*cs), cand_cmp);
    if (nc > max)
        nc = max;
    if (nc > 0) {
        if ((*out = calloc(nc, sizeof(**out))) == NULL) {
            rc = OS_ERR_NOMEM;
            goto unlock;
        }
        for (size_t i = 0; i < nc; i++)
            fill_peer(&(*out)[i], &cs[i]);
        *n = nc;
    }
unlock:
    pthread_mutex_unlock(&p->mu);
    free(cs);
    return rc;
}

/* ------------------------------------------------------------------ observations */

void by_peers_observe(by_peers *p, const uint8_t node[20], const by_observation *o)
{
    node_ent *e;
    int64_t now;

    if (p == NULL || node == NULL || o == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    now = now_ms(p);
    if ((e = node_get(p, node, now)) == NULL) {
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

/* ------------------------------------------------------------------ models */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *models_json(const json_t *names)
{
    size_t n = json_object_size(names), k = 0;
    const char **keys = calloc(n > 0 ? n : 1, sizeof(*keys));
    json_t *root = json_object(), *data = NULL;
    const char *key;
    json_t *v;

    if (keys == NULL || root == NULL || !os_json_put(root, "object", json_string("list")) ||
        (data = os_json_child(root, "data", json_array())) == NULL)
        goto fail;
    json_object_foreach((json_t *)names, key, v)
    {
        (void)v;
        keys[k++] = key;
    }
    if (k > 1)
        qsort(keys, k, sizeof(*keys), str_cmp);
    for (size_t i = 0; i < k; i++) {
        json_t *m = json_object();
        if (json_array_append_new(data, m) != 0 || !os_json_put(m, "id", json_string(keys[i])) ||
            !os_json_put(m, "object", json_string("model")) ||
            !os_json_put(m, "created", json_integer(0)) ||
            !os_json_put(m, "owned_by", json_string("openseed")))
            goto fail;
    }
    free(keys);
    return root;
fail:
    free(keys);
    json_decref(root);
    return NULL;
}

/* The union of every answering registry's services. */
static os_err fetch_models(by_peers *p, json_t **out)
{
    json_t *names = json_object();
    bool answered = false;
    char url[MAX_URL_LEN], why[OS_JSON_ERR_LEN];

    *out = NULL;
    if (names == NULL)
        return OS_ERR_NOMEM;
    for (size_t ri = 0; ri < p->n_regs; ri++) {
        const json_t *arr;
        json_t *body;
        long status;
        int w = snprintf(url, sizeof(url), "%s/v1/services", p->regs[ri]);
        if (w < 0 || (size_t)w >= sizeof(url) ||
            registry_get(p, ri, url, "services", false, &status, &body) != OS_OK)
            continue;
        if (os_json_get_array(&arr, body, "services", MAX_MODELS, why, sizeof(why)) != OS_OK) {
            log_registry(p, ri, "registry answered a malformed service list", "services", 200, why);
            json_decref(body);
            continue;
        }
        answered = true;
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const json_t *s = json_array_get(arr, i);
            const char *name;
            uint64_t peers;
            if (!json_is_object(s) || os_json_get_str(&name, s, "service", 63, NULL, 0) != OS_OK ||
                !service_ok(name) || os_json_opt_u64(&peers, s, "peers", 1, NULL, 0) != OS_OK ||
                peers == 0 || json_object_size(names) >= MAX_MODELS)
                continue;
            if (json_object_set_new(names, name, json_true()) != 0) {
                json_decref(body);
                json_decref(names);
                return OS_ERR_NOMEM;
            }
        }
        json_decref(body);
    }
    if (!answered) {
        json_decref(names);
        return OS_ERR_NETWORK;
    }
    *out = models_json(names);
    json_decref(names);
    return *out != NULL ? OS_OK : OS_ERR_NOMEM;
}

os_err by_peers_models(by_peers *p, json_t **out)
{
    json_t *fresh = NULL;
    os_err rc = OS_OK;

    if (out != NULL)
        *out = NULL;
    if (p == NULL || out == NULL)
        return OS_ERR_INVALID;
    pthread_mutex_lock(&p->mu);
    switch (slot_begin(p, &p->models_slot)) {
    case SLOT_USE:
        break;
    case SLOT_NONE:
        rc = OS_ERR_NETWORK;
        break;
    case SLOT_FETCH:
        pthread_mutex_unlock(&p->mu);
        rc = fetch_models(p, &fresh);
        pthread_mutex_lock(&p->mu);
        if (rc == OS_OK) {
            json_decref(p->models);
            p->models = fresh;
        }
        slot_end(p, &p->models_slot, rc == OS_OK, "models", NULL);
        if (p->models_slot.valid)
            rc = OS_OK; /* the last good copy */
        break;
    }
    if (rc == OS_OK && (*out = json_deep_copy(p->models)) == NULL)
        rc = OS_ERR_NOMEM;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ------------------------------------------------------------------ management view */

typedef struct ranked {
    node_ent *e;
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

static json_t *node_json(const node_ent *e, double score, int64_t now)
{
    json_t *o = json_object(), *obs, *load, *svcs;
    double avg = ent_avg_ttft(e);
    double tps = e->total_ms > 0 ? (double)e->tokens * 1000.0 / (double)e->total_ms : 0.0;
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
         os_json_put(obs, "successes", os_json_u64(e->ok < INT64_MAX ? e->ok : INT64_MAX)) &&
         os_json_put(obs, "failures", os_json_u64(e->fail < INT64_MAX ? e->fail : INT64_MAX)) &&
         os_json_put(obs, "consecutive_failures",
                     os_json_u64(e->consec < INT64_MAX ? e->consec : INT64_MAX)) &&
         os_json_put(obs, "avg_ttft_ms", real_or_null(avg >= 0.0, avg)) &&
         os_json_put(obs, "tokens_per_s", real_or_null(e->total_ms > 0, tps)) &&
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
    now = now_ms(p);
    if (p->n_nodes > 0 && (r = calloc(p->n_nodes, sizeof(*r))) == NULL)
        goto done;
    for (size_t i = 0; i < p->n_buckets; i++)
        for (node_ent *e = p->buckets[i]; e != NULL; e = e->next)
            if (e->last != NULL || e->ok + e->fail > 0) /* seen, not just looked up in vain */
                r[n++] = (ranked){e, e->has_reg ? ent_adjust(e, e->reg_score) : -1.0};
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
