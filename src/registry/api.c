/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's write side of the HTTP API (PROTOCOL.md §4): announce and heartbeat, plus health,
 * metrics and the route table (listings are in listing.c, feedback in feedback.c). Every write is
 * checked in the same order: shape of the JSON (size, depth, fields, types), signature, clock,
 * then replay (seq) under the lock. Signatures are verified before any lock is taken, so a flood
 * of bad signatures costs CPU but never blocks the readers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/json.h"

#include "internal.h"

static const char *const reject_names[] = {"json",    "field",       "signature", "stale",
                                           "clock",   "unknown",     "chain",     "full",
                                           "channel", "unavailable", "internal",  NULL};
static const char *const route_names[] = {"announce", "heartbeat", "peers", "peer",
                                          "services", "feedback",  NULL};

int64_t rg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A signed timestamp (seconds) must be within max_clock_skew_ms of now. */
static bool clock_ok(const rg_registry *rg, uint64_t ts, int64_t now_ms)
{
    int64_t d = (int64_t)ts * 1000 - now_ms; /* ts <= INT64_MAX / 1000 is checked by the caller */
    if (d < 0)
        d = -d;
    return ts <= (uint64_t)(INT64_MAX / 1000) && (uint64_t)d <= rg->opt.max_clock_skew_ms;
}

bool rg_body_json(rg_registry *rg, json_t **out, const os_http_request *req, os_http_response *res)
{
    if (os_http_req_json(out, req, res, RG_JSON_DEPTH) != OS_OK) {
        os_metric_inc(rg->m_rejects, REJ_JSON);
        return false;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        REJECT(rg, res, REJ_JSON, 400, T_INVALID, "invalid_json", "the body must be a JSON object");
        return false;
    }
    return true;
}

static uint64_t interval_s(const rg_registry *rg)
{
    uint64_t s = rg->opt.heartbeat_interval_ms / 1000;
    return s ? s : 1;
}

/* ------------------------------------------------------------------ announce */

/* Stores and lists an authenticated record. The seq is claimed under the peer's lock before the
 * write, so a heartbeat racing with the announce cannot slip a lower seq in behind it. */
static void announce_commit(rg_registry *rg, os_http_response *res, const os_record *rec,
                            const char *canon, size_t canon_len, const uint8_t sig[65],
                            const char *live, size_t live_len, int64_t now)
{
    rg_peer *p;
    os_err rc;

    pthread_mutex_lock(&rg->wmu);
    p = rg_peer_find(rg, rec->node);
    if (p != NULL) {
        pthread_mutex_lock(&p->mu);
        if (rec->seq <= p->seq) {
            uint64_t last = p->seq;
            pthread_mutex_unlock(&p->mu);
            pthread_mutex_unlock(&rg->wmu);
            REJECT(rg, res, REJ_STALE, 409, T_INVALID, "stale_seq",
                   "seq %" PRIu64 " is not above the last accepted (%" PRIu64 ")", rec->seq, last);
            return;
        }
        p->seq = rec->seq;
        pthread_mutex_unlock(&p->mu);
    } else if (rg->n_peers >= rg->opt.max_peers) {
        pthread_mutex_unlock(&rg->wmu);
        REJECT(rg, res, REJ_FULL, 503, T_SERVER, "registry_full",
               "this registry holds its maximum number of sellers");
        return;
    }

    pthread_mutex_lock(&rg->db_mu);
    rc = rg_store_put_record(rg, rec->node, canon, canon_len, sig, rec->seq, now);
    pthread_mutex_unlock(&rg->db_mu);
    if (rc != OS_OK) {
        pthread_mutex_unlock(&rg->wmu);
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "the record could not be stored");
        return;
    }

    pthread_rwlock_wrlock(&rg->lock);
    if (p == NULL) {
        if ((rc = rg_peer_add(rg, &p, rec->node)) == OS_OK) {
            p->stats.first_seen_ms = now;
            p->stats.updated_ms = now;
        }
    }
    if (rc == OS_OK)
        rc = rg_peer_set_record(p, canon, canon_len, sig, rec);
    if (rc == OS_OK) {
        pthread_mutex_lock(&p->mu);
        p->seq = rec->seq;
        p->last_seen_ms = now;
        p->has_hb = false;
        memcpy(p->live, live, live_len);
        p->live_len = live_len;
        p->dirty = true;
        atomic_store(&p->active, 1);
        pthread_mutex_unlock(&p->mu);
        if (rg_views_insert(rg, p) != OS_OK)
            os_log_warn(rg->log, "cannot list an announced seller now; the next pass will");
    }
    pthread_rwlock_unlock(&rg->lock);
    pthread_mutex_unlock(&rg->wmu);
    if (rc != OS_OK) {
        /* Stored but not in memory: the next start lists it. */
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "out of memory");
        return;
    }

    json_t *reply = json_pack("{s:s,s:I,s:I}", "node_id", p->node_hex, "heartbeat_interval",
                              (json_int_t)interval_s(rg), "expires_at",
                              (json_int_t)((now + rg->window_ms) / 1000));
    if (reply == NULL || os_http_res_json(res, 200, reply) != OS_OK)
        os_http_res_error(res, 500, T_SERVER, NULL, "out of memory");
    os_log_event ev;
    if (os_log_begin(&ev, rg->log, OS_LOG_DEBUG, "seller announced")) {
        os_log_kv(&ev, "node", "%s", p->node_hex);
        os_log_kv(&ev, "seq", "%" PRIu64, rec->seq);
        os_log_end(&ev);
    }
}

static void h_announce(void *ctx, const os_http_request *req, os_http_response *res)
{
    static const char *const keys[] = {"record", "signature", NULL};
    rg_registry *rg = ctx;
    json_t *body = NULL;
    const json_t *record;
    uint8_t sig[65];
    os_record *rec = NULL;
    char *canon = NULL, *live = NULL;
    size_t canon_len = 0, live_len;
    char err[OS_RECORD_ERR_LEN];
    int64_t now;
    os_err rc;

    os_metric_inc(rg->m_requests, RG_R_ANNOUNCE);
    if (!rg_body_json(rg, &body, req, res))
        return;
    if (os_json_check_keys(body, keys, err, sizeof(err)) != OS_OK ||
        os_json_get_object(&record, body, "record", err, sizeof(err)) != OS_OK ||
        os_json_get_hex(sig, sizeof(sig), body, "signature", err, sizeof(err)) != OS_OK) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_field", "%s", err);
        goto out;
    }
    if ((rec = malloc(sizeof(*rec))) == NULL || (live = malloc(RG_LIVE_MAX)) == NULL) {
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "out of memory");
        goto out;
    }
    rc = os_record_verify(rec, record, sig, err, sizeof(err));
    if (rc == OS_ERR_CRYPTO) {
        REJECT(rg, res, REJ_SIGNATURE, 401, T_AUTH, "invalid_signature", "%s", err);
        goto out;
    }
    if (rc != OS_OK) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_record", "%s", err);
        goto out;
    }
    if (rec->chain_id != rg->opt.chain_id) {
        REJECT(rg, res, REJ_CHAIN, 400, T_INVALID, "wrong_chain",
               "the record is for chain %" PRIu64 "; this registry serves chain %" PRIu64,
               rec->chain_id, rg->opt.chain_id);
        goto out;
    }
    if (rg->opt.has_escrow && memcmp(rec->escrow, rg->opt.escrow, 20) != 0) {
        REJECT(rg, res, REJ_CHAIN, 400, T_INVALID, "wrong_escrow",
               "the record names another escrow contract than this registry's");
        goto out;
    }
    now = rg_now_ms();
    if (!clock_ok(rg, rec->timestamp, now)) {
        REJECT(rg, res, REJ_CLOCK, 400, T_INVALID, "clock_skew",
               "timestamp is more than %" PRIu64 " s away from the registry's clock",
               rg->opt.max_clock_skew_ms / 1000);
        goto out;
    }
    if (os_json_dump_canonical(record, &canon, &canon_len) != OS_OK ||
        (live_len = rg_live_render(live, rec->endpoint, NULL)) == 0) {
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "out of memory");
        goto out;
    }
    announce_commit(rg, res, rec, canon, canon_len, sig, live, live_len, now);
out:
    free(canon);
    free(live);
    free(rec);
    json_decref(body);
}

/* ------------------------------------------------------------------ heartbeat */

/* Lists p again if the last pass dropped it (it had gone quiet). */
static void relist(rg_registry *rg, rg_peer *p)
{
    pthread_mutex_lock(&rg->wmu);
    pthread_rwlock_wrlock(&rg->lock);
    if (!p->in_views && atomic_load(&p->active) && rg_views_insert(rg, p) != OS_OK)
        os_log_warn(rg->log, "cannot list a returning seller now; the next pass will");
    pthread_rwlock_unlock(&rg->lock);
    pthread_mutex_unlock(&rg->wmu);
}

static void h_heartbeat(void *ctx, const os_http_request *req, os_http_response *res)
{
    rg_registry *rg = ctx;
    json_t *body = NULL;
    os_heartbeat hb;
    char err[OS_RECORD_ERR_LEN];
    char *live = NULL;
    size_t live_len;
    rg_peer *p;
    bool need_list;
    int64_t now;
    uint64_t last;

    os_metric_inc(rg->m_requests, RG_R_HEARTBEAT);
    if (!rg_body_json(rg, &body, req, res))
        return;
    if (os_heartbeat_parse(&hb, body, err, sizeof(err)) != OS_OK) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_heartbeat", "%s", err);
        goto out;
    }
    now = rg_now_ms();
    if (!clock_ok(rg, hb.timestamp, now)) {
        REJECT(rg, res, REJ_CLOCK, 400, T_INVALID, "clock_skew",
               "timestamp is more than %" PRIu64 " s away from the registry's clock",
               rg->opt.max_clock_skew_ms / 1000);
        goto out;
    }
    if (os_heartbeat_verify(&hb, rg->opt.chain_id) != OS_OK) {
        REJECT(rg, res, REJ_SIGNATURE, 401, T_AUTH, "invalid_signature",
               "signature is not a valid low-s signature of the heartbeat by node");
        goto out;
    }
    if ((live = malloc(RG_LIVE_MAX)) == NULL ||
        (live_len = rg_live_render(live, hb.endpoint, &hb)) == 0) {
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "out of memory");
        goto out;
    }

    pthread_rwlock_rdlock(&rg->lock);
    if ((p = rg_peer_find(rg, hb.node)) == NULL) {
        pthread_rwlock_unlock(&rg->lock);
        REJECT(rg, res, REJ_UNKNOWN, 404, T_INVALID, "unknown_node",
               "no record for this node: announce first");
        goto out;
    }
    pthread_mutex_lock(&p->mu);
    if (hb.seq <= p->seq) {
        last = p->seq;
        pthread_mutex_unlock(&p->mu);
        pthread_rwlock_unlock(&rg->lock);
        REJECT(rg, res, REJ_STALE, 409, T_INVALID, "stale_seq",
               "seq %" PRIu64 " is not above the last accepted (%" PRIu64 ")", hb.seq, last);
        goto out;
    }
    p->seq = hb.seq;
    p->last_seen_ms = now;
    p->load_active = hb.active;
    p->load_capacity = hb.capacity;
    p->has_hb = true;
    memcpy(p->hb_endpoint, hb.endpoint, sizeof(p->hb_endpoint));
    p->hb_seq = hb.seq;
    p->hb_ts = hb.timestamp;
    memcpy(p->hb_sig, hb.sig, 65);
    memcpy(p->live, live, live_len);
    p->live_len = live_len;
    rg_rank_heartbeat(&p->stats, &rg->rank, now);
    p->dirty = true;
    atomic_store(&p->active, 1);
    pthread_mutex_unlock(&p->mu);
    need_list = !p->in_views;
    pthread_rwlock_unlock(&rg->lock);
    if (need_list)
        relist(rg, p);

    json_t *reply = json_pack("{s:I,s:I}", "heartbeat_interval", (json_int_t)interval_s(rg),
                              "expires_at", (json_int_t)((now + rg->window_ms) / 1000));
    if (reply == NULL || os_http_res_json(res, 200, reply) != OS_OK)
        os_http_res_error(res, 500, T_SERVER, NULL, "out of memory");
out:
    free(live);
    json_decref(body);
}

/* ------------------------------------------------------------------ health, metrics */

static void h_healthz(void *ctx, const os_http_request *req, os_http_response *res)
{
    rg_registry *rg = ctx;
    size_t n, active = 0;
    (void)req;

    pthread_rwlock_rdlock(&rg->lock);
    n = rg->n_peers;
    for (size_t i = 0; i < n; i++)
        active += atomic_load(&rg->peers[i]->active) != 0;
    pthread_rwlock_unlock(&rg->lock);
    json_t *reply = json_pack("{s:s,s:I,s:I}", "status", "ok", "peers", (json_int_t)n, "active",
                              (json_int_t)active);
    if (reply == NULL || os_http_res_json(res, 200, reply) != OS_OK)
        os_http_res_error(res, 500, T_SERVER, NULL, "out of memory");
}

static void h_metrics(void *ctx, const os_http_request *req, os_http_response *res)
{
    rg_registry *rg = ctx;
    char *text = NULL;
    size_t len = 0;
    (void)req;

    if (os_metrics_render(rg->metrics, &text, &len) != OS_OK ||
        os_http_res_body(res, OS_METRICS_CONTENT_TYPE, text, len) != OS_OK) {
        os_http_res_error(res, 500, T_SERVER, NULL, "out of memory");
    } else {
        os_http_res_status(res, 200);
    }
    free(text);
}

os_err rg_api_metrics_init(rg_registry *rg)
{
    static const double rescore_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    os_err rc;

    if ((rc = os_metrics_new(&rg->metrics)) != OS_OK)
        return rc;
    if ((rc = os_metrics_counter(rg->metrics, &rg->m_requests, "openseed_registry_requests_total",
                                 "API requests by route", "route", route_names)) != OS_OK ||
        (rc = os_metrics_counter(rg->metrics, &rg->m_rejects, "openseed_registry_rejected_total",
                                 "requests refused, by reason", "reason", reject_names)) != OS_OK ||
        (rc = os_metrics_gauge(rg->metrics, &rg->m_peers, "openseed_registry_peers",
                               "sellers known", NULL, NULL)) != OS_OK ||
        (rc = os_metrics_gauge(rg->metrics, &rg->m_active, "openseed_registry_active_peers",
                               "sellers listed (heartbeating) at the last pass", NULL, NULL)) !=
            OS_OK ||
        (rc = os_metrics_counter(
             rg->metrics, &rg->m_flush, "openseed_registry_persisted_heartbeats_total",
             "seller rows written by the batched heartbeat flush", NULL, NULL)) != OS_OK ||
        (rc = os_metrics_histogram(
             rg->metrics, &rg->m_rescore_ms, "openseed_registry_rescore_seconds",
             "time to recompute reputations and rebuild the listings", NULL, NULL, rescore_bounds,
             sizeof(rescore_bounds) / sizeof(rescore_bounds[0]))) != OS_OK)
        return rc;
    return OS_OK;
}

void rg_api_routes(rg_registry *rg)
{
    const os_http_route routes[] = {
        {"POST", "/v1/announce", h_announce, 0},   {"POST", "/v1/heartbeat", h_heartbeat, 0},
        {"GET", "/v1/peers", rg_h_peers, 0},       {"GET", "/v1/peers/*", rg_h_peer, 0},
        {"GET", "/v1/services", rg_h_services, 0}, {"POST", "/v1/feedback", rg_h_feedback, 0},
        {"GET", "/healthz", h_healthz, 1},         {"GET", "/metrics", h_metrics, 1},
    };
    rg->n_routes = sizeof(routes) / sizeof(routes[0]);
    memcpy(rg->routes, routes, sizeof(routes));
}
