/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's view of the sellers (peers.h): the object, its caches and the public API. One cache
 * slot per service (at most BY_PEERS_MAX_SERVICES, least recently used evicted) and one for the
 * model list, each fresh for the TTL of the config's clock (clock_ms drives both the TTL and the
 * cooldowns). One thread refreshes a slot at a time (through peers_fetch.c); others meanwhile use
 * the stale copy, or wait when there is none. A failed refresh keeps the last good copy, logs at
 * warn and is not retried for another TTL, so a dead registry costs one timeout per TTL rather than
 * one per request. Candidates are a cached listing filtered by API, price caps and cooldown and
 * ranked by peers_rank.c's adjusted score; verified copies are immutable and reference-counted
 * under the one mutex, shared by every listing that holds them.
 */
#include "peers.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "openseed/http_client.h"

#include "peers_internal.h"

#define DEFAULT_TTL_MS 10000
#define DEFAULT_TIMEOUT_MS 5000L
#define MAX_REGISTRIES 64
#define MAX_BASE_LEN 1024

/* ------------------------------------------------------------------ small helpers */

static int64_t mono_ms(void *ud)
{
    struct timespec ts;
    (void)ud;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool by_peers_service_ok_(const char *s)
{
    return os_record_name_ok(s, strlen(s));
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

/* ------------------------------------------------------------------ verified copies */

void by_peers_unref_locked_(by_peer_ref *pr)
{
    if (pr != NULL && --pr->refs == 0) {
        sodium_memzero(pr, sizeof(*pr));
        free(pr);
    }
}

void by_peers_unref_(by_peers *p, by_peer_ref *pr)
{
    if (pr == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    by_peers_unref_locked_(pr);
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------------ cache slots (under mu) */

typedef enum slot_next {
    SLOT_USE,   /* the slot holds an answer to use (fresh, or stale while refresh is not due) */
    SLOT_FETCH, /* the caller must refresh it, then call slot_end */
    SLOT_NONE,  /* nothing cached and the refresh this call waited for failed */
} slot_next;

static slot_next slot_begin(by_peers *p, by_cache_slot *s)
{
    int64_t now = by_peers_now_ms_(p);

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

static void slot_end(by_peers *p, by_cache_slot *s, bool ok, const char *what, const char *name)
{
    int64_t now = by_peers_now_ms_(p);

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

static void svc_free_entries(by_listing_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        by_peers_unref_locked_(e[i].pr);
    free(e);
}

static by_svc_listing *svc_get(by_peers *p, const char *name)
{
    size_t victim = SIZE_MAX;
    by_svc_listing *c;

    for (size_t i = 0; i < p->n_svcs; i++)
        if (strcmp(p->svcs[i]->name, name) == 0)
            return p->svcs[i];
    if (p->n_svcs == BY_PEERS_MAX_SERVICES) {
        for (size_t i = 0; i < p->n_svcs; i++) {
            const by_cache_slot *s = &p->svcs[i]->s;
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

/* Makes c's listing usable (fetching when due); mu held on entry and exit. OS_OK when c->e
 * may be read. */
static os_err ensure_listing(by_peers *p, by_svc_listing *c)
{
    by_listing_entry *e = NULL;
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
    rc = by_peers_fetch_listing_(p, c->name, &e, &n);
    pthread_mutex_lock(&p->mu);
    if (rc == OS_OK) {
        int64_t now = by_peers_now_ms_(p);
        svc_free_entries(c->e, c->n);
        c->e = e;
        c->n = n;
        for (size_t i = 0; i < n; i++) {
            by_peer_node *ne = by_peers_node_get_(p, e[i].pr->v.record.node, now);
            if (ne != NULL) {
                by_peers_node_take_(ne, e[i].pr, now);
                by_peers_node_set_view_(ne, &e[i]);
            }
        }
    }
    slot_end(p, &c->s, rc == OS_OK, "peers", c->name);
    if (rc != OS_OK && c->s.valid)
        return OS_OK;
    return rc;
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
    if (by_peers_nodes_init_(p) != OS_OK)
        goto fail;

    memset(&hc, 0, sizeof(hc));
    hc.timeout_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    hc.connect_timeout_ms = hc.timeout_ms < DEFAULT_TIMEOUT_MS ? hc.timeout_ms : DEFAULT_TIMEOUT_MS;
    hc.pool_size = 4;
    hc.json_max_depth = 32;
    hc.ca_file = cfg->ca_file;
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
    by_peers_nodes_free_(p);
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
    by_peers_nodes_free_(p);
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
    const by_peer_ref *pr;
    size_t offering;
    double score;
    int64_t cool_until; /* > 0: cooling down until then (a last resort) */
} cand;

/* Sellers not cooling down first, by score; then the cooling ones, soonest back first. */
static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if ((x->cool_until > 0) != (y->cool_until > 0))
        return x->cool_until > 0 ? 1 : -1;
    if (x->cool_until != y->cool_until)
        return x->cool_until < y->cool_until ? -1 : 1;
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
    by_svc_listing *c;
    by_peer_ref *pr = NULL;
    by_listing_entry view = {0};
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
    if (pr == NULL && (rc = by_peers_pin_lookup_(p, pin, &pr, &view)) != OS_OK)
        return rc;
    if (pr == NULL || !pick_offering(&pr->v.record, service, api_bits, NULL, &one.offering)) {
        by_peers_unref_(p, pr);
        return OS_OK;
    }
    one.pr = pr;
    pthread_mutex_lock(&p->mu);
    one.score = by_peers_node_score_(by_peers_node_find_(p, pin), view.score);
    pthread_mutex_unlock(&p->mu);
    if ((*out = calloc(1, sizeof(**out))) == NULL) {
        by_peers_unref_(p, pr);
        return OS_ERR_NOMEM;
    }
    fill_peer(*out, &one);
    *n = 1;
    by_peers_unref_(p, pr);
    return OS_OK;
}

os_err by_peers_candidates(by_peers *p, by_peer **out, size_t *n, const char *service,
                           unsigned api_bits, const by_price_cap *cap, const uint8_t *pin,
                           size_t max)
{
    by_svc_listing *c;
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
    if (!by_peers_service_ok_(service) || api_bits == 0 || max == 0)
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
    now = by_peers_now_ms_(p);
    size_t warm = 0;
    for (size_t i = 0; i < c->n; i++) {
        const by_listing_entry *le = &c->e[i];
        const by_peer_node *ne = by_peers_node_find_(p, le->pr->v.record.node);
        bool cooling = ne != NULL && ne->cooling && now < ne->cooldown_until;
        size_t off;
        if (!pick_offering(&le->pr->v.record, service, api_bits, cap, &off))
            continue;
        cs[nc++] = (cand){.pr = le->pr,
                          .offering = off,
                          .score = by_peers_node_score_(ne, le->score),
                          .cool_until = cooling ? ne->cooldown_until : 0};
        warm += !cooling;
    }
    if (nc > 1)
        qsort(cs, nc, sizeof(*cs), cand_cmp);
    /* Cooling sellers are skipped while another can take the request; when every one is cooling
     * down (one blip of a lone seller's model), they are still tried, soonest back first, rather
     * than answering that nobody sells the model. */
    if (warm > 0)
        nc = warm;
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

/* ------------------------------------------------------------------ models */

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
        rc = by_peers_fetch_models_(p, &fresh);
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
