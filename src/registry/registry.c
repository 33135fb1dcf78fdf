/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's lifecycle and its background thread. rg_registry_new opens the store and loads
 * the index; start runs the HTTP server and the background thread; stop drains requests, writes
 * what is pending and closes the store. The background thread does three things on its own
 * clocks: the liveness sweep (a seller silent for liveness_intervals heartbeat intervals leaves
 * the listings at once), the batched heartbeat flush (one transaction for every seller whose
 * liveness or evidence changed), and the rescore (reputations, price normalisation and sorted
 * listings rebuilt off to the side and swapped in).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include <sodium.h>

#include "openseed/config.h"
#include "openseed/escrow.h"

#include "internal.h"

#define FLUSH_CHUNK 2048 /* rows per transaction */

void rg_options_default(rg_options *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "0.0.0.0:8379";
    o->db_path = "registry.db";
    o->chain_id = 8453;
    o->heartbeat_interval_ms = 30000;
    o->liveness_intervals = 3;
    o->max_clock_skew_ms = 60000;
    o->rescore_interval_ms = 5000;
    o->flush_interval_ms = 10000; /* last_seen need not be durable to the second: liveness is 90 s */
    o->max_peers = 50000;
    o->http_threads = 4;
    o->rate_per_s = 50;
    o->rate_burst = 100;
    o->drain_timeout_ms = 5000;
    o->chain_timeout_ms = 5000;
    o->max_chain_lookups = 2;
}

os_err rg_options_from_config(rg_options *o, const rg_config *cfg, char *db_buf, size_t db_cap,
                              char *listen_buf, size_t listen_cap)
{
    int n;

    if (listen_cap < OS_CFG_LISTEN_STR_LEN || cfg->node.data_dir == NULL)
        return OS_ERR_INVALID;
    n = snprintf(db_buf, db_cap, "%s/registry.db", cfg->node.data_dir);
    if (n < 0 || (size_t)n >= db_cap)
        return OS_ERR_TOOBIG;
    os_cfg_listen_format(listen_buf, &cfg->node.listen);
    o->listen = listen_buf;
    o->db_path = db_buf;
    o->chain_id = cfg->node.chain_id;
    o->has_escrow = cfg->node.escrow.set;
    if (o->has_escrow)
        memcpy(o->escrow, cfg->node.escrow.bytes, 20);
    o->rpc = cfg->node.rpc;
    o->tls_cert_file = cfg->node.tls_cert;
    o->tls_key_file = cfg->node.tls_key;
    /* The table bounds every value below; zero keeps the default. */
    if (cfg->heartbeat_interval > 0)
        o->heartbeat_interval_ms = cfg->heartbeat_interval * 1000;
    if (cfg->liveness_intervals > 0)
        o->liveness_intervals = (unsigned)cfg->liveness_intervals;
    if (cfg->clock_skew > 0)
        o->max_clock_skew_ms = cfg->clock_skew * 1000;
    if (cfg->rescore_interval > 0)
        o->rescore_interval_ms = cfg->rescore_interval * 1000;
    o->rate_per_s = (uint32_t)(cfg->rate_limit > UINT32_MAX ? UINT32_MAX : cfg->rate_limit);
    o->rate_burst = (uint32_t)(cfg->rate_burst > UINT32_MAX ? UINT32_MAX : cfg->rate_burst);
    if (cfg->max_peers > 0)
        o->max_peers = (size_t)cfg->max_peers;
    if (cfg->threads > 0)
        o->http_threads = (unsigned)cfg->threads;
    if (cfg->max_connections > 0)
        o->max_connections = (unsigned)cfg->max_connections;
    if (cfg->max_connections_per_ip > 0)
        o->per_ip_connections = (unsigned)cfg->max_connections_per_ip;
    if (cfg->idle_timeout > 0)
        o->timeout_s = (unsigned)cfg->idle_timeout;
    return OS_OK;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ background */

static void sweep(rg_registry *rg, int64_t now)
{
    pthread_rwlock_rdlock(&rg->lock);
    for (size_t i = 0; i < rg->n_peers; i++) {
        rg_peer *p = rg->peers[i];
        bool gone = false;
        pthread_mutex_lock(&p->mu);
        if (atomic_load(&p->active) && now - p->last_seen_ms > rg->window_ms) {
            atomic_store(&p->active, 0);
            gone = true;
        }
        pthread_mutex_unlock(&p->mu);
        if (gone) {
            os_log_event ev;
            if (os_log_begin(&ev, rg->log, OS_LOG_INFO, "seller delisted: no heartbeat")) {
                os_log_kv(&ev, "node", "%s", p->node_hex);
                os_log_end(&ev);
            }
        }
    }
    pthread_rwlock_unlock(&rg->lock);
}

static void row_of(rg_live_row *r, const rg_peer *p)
{
    memcpy(r->node, p->node, 20);
    r->seq = p->seq;
    r->last_seen_ms = p->last_seen_ms;
    r->load_active = p->load_active;
    r->load_capacity = p->load_capacity;
    r->has_hb = p->has_hb;
    if (p->has_hb) {
        memcpy(r->hb_endpoint, p->hb_endpoint, sizeof(r->hb_endpoint));
        r->hb_seq = p->hb_seq;
        r->hb_ts = p->hb_ts;
        memcpy(r->hb_sig, p->hb_sig, 65);
    }
    r->stats = p->stats;
}

/* Writes every dirty seller, FLUSH_CHUNK per transaction. On a failed write the rows are marked
 * dirty again and retried on the next flush. */
static void flush(rg_registry *rg)
{
    rg_live_row *rows = malloc(FLUSH_CHUNK * sizeof(*rows));
    size_t next = 0;

    if (rows == NULL) {
        os_log_error(rg->log, "out of memory flushing heartbeats");
        return;
    }
    for (;;) {
        size_t n = 0;
        pthread_rwlock_rdlock(&rg->lock);
        for (; next < rg->n_peers && n < FLUSH_CHUNK; next++) {
            rg_peer *p = rg->peers[next];
            pthread_mutex_lock(&p->mu);
            if (p->dirty) {
                row_of(&rows[n++], p);
                p->dirty = false;
            }
            pthread_mutex_unlock(&p->mu);
        }
        bool done = next >= rg->n_peers;
        pthread_rwlock_unlock(&rg->lock);
        if (n > 0) {
            pthread_mutex_lock(&rg->db_mu);
            os_err rc = rg->db != NULL ? rg_store_flush(rg, rows, n) : OS_ERR_IO;
            pthread_mutex_unlock(&rg->db_mu);
            if (rc == OS_OK) {
                os_metric_add(rg->m_flush, 0, n);
            } else {
                pthread_rwlock_rdlock(&rg->lock);
                for (size_t i = 0; i < n; i++) {
                    rg_peer *p = rg_peer_find(rg, rows[i].node);
                    if (p == NULL)
                        continue;
                    pthread_mutex_lock(&p->mu);
                    p->dirty = true;
                    pthread_mutex_unlock(&p->mu);
                }
                pthread_rwlock_unlock(&rg->lock);
                break;
            }
        }
        if (done)
            break;
    }
    free(rows);
}

static void rescore(rg_registry *rg)
{
    int64_t t0 = mono_ms();
    os_err rc;

    pthread_mutex_lock(&rg->wmu);
    rc = rg_views_rebuild(rg, rg_now_ms());
    pthread_mutex_unlock(&rg->wmu);
    if (rc != OS_OK)
        os_log_error(rg->log, "cannot rebuild the listings: %s", os_strerror(rc));
    os_metric_observe(rg->m_rescore_ms, 0, (double)(mono_ms() - t0) / 1000.0);
}

static uint64_t sweep_period(const rg_registry *rg)
{
    uint64_t p = rg->opt.heartbeat_interval_ms / 4;
    if (p > 1000)
        p = 1000;
    return p < 50 ? 50 : p;
}

static void *bg_main(void *arg)
{
    rg_registry *rg = arg;
    int64_t now = mono_ms();
    int64_t next_sweep = now + (int64_t)sweep_period(rg);
    int64_t next_rescore = now + (int64_t)rg->opt.rescore_interval_ms;
    int64_t next_flush = now + (int64_t)rg->opt.flush_interval_ms;

    /* The rescore takes a CPU for tens of milliseconds with 10,000 sellers; at a lower priority it
     * runs in the request threads' gaps instead of halving a small machine's capacity while it
     * lasts (the heartbeat p99 in bench/README.md). Linux niceness is per thread; best effort. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);

    pthread_mutex_lock(&rg->bg_mu);
    while (!rg->bg_stop) {
        int64_t wake = next_sweep;
        if (next_rescore < wake)
            wake = next_rescore;
        if (next_flush < wake)
            wake = next_flush;
        if (mono_ms() < wake) {
            struct timespec ts = {.tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000};
            pthread_cond_timedwait(&rg->bg_cv, &rg->bg_mu, &ts);
            continue; /* re-check the stop flag and the clock */
        }
        pthread_mutex_unlock(&rg->bg_mu);
        now = mono_ms();
        if (now >= next_sweep) {
            sweep(rg, rg_now_ms());
            next_sweep = now + (int64_t)sweep_period(rg);
        }
        if (now >= next_rescore) {
            rescore(rg);
            next_rescore = mono_ms() + (int64_t)rg->opt.rescore_interval_ms;
        }
        if (now >= next_flush) {
            flush(rg);
            next_flush = mono_ms() + (int64_t)rg->opt.flush_interval_ms;
        }
        pthread_mutex_lock(&rg->bg_mu);
    }
    pthread_mutex_unlock(&rg->bg_mu);
    return NULL;
}

/* ------------------------------------------------------------------ lifecycle */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* Creates the database's directory (one level, mode 0700) if it does not exist. */
static os_err ensure_dir(const char *db_path)
{
    char dir[4096];
    const char *slash = strrchr(db_path, '/');
    size_t n;

    if (slash == NULL || slash == db_path)
        return OS_OK;
    n = (size_t)(slash - db_path);
    if (n >= sizeof(dir))
        return OS_ERR_TOOBIG;
    memcpy(dir, db_path, n);
    dir[n] = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return OS_ERR_IO;
    return OS_OK;
}

static os_err check_options(const rg_options *o)
{
    if (o->listen == NULL || o->db_path == NULL || o->heartbeat_interval_ms < 100 ||
        o->heartbeat_interval_ms > UINT64_C(86400000) || o->liveness_intervals < 1 ||
        o->liveness_intervals > 1000 || o->rescore_interval_ms < 50 || o->flush_interval_ms < 50 ||
        o->max_peers < 1 || o->max_peers > UINT32_MAX / 2 ||
        o->max_clock_skew_ms > UINT64_C(86400000))
        return OS_ERR_INVALID;
    return OS_OK;
}

os_err rg_registry_new_opts(rg_registry **out, const rg_options *opt, const os_logger *log)
{
    rg_registry *rg;
    pthread_condattr_t ca;
    os_err rc;

    *out = NULL;
    if (opt == NULL || (rc = check_options(opt)) != OS_OK)
        return OS_ERR_INVALID;
    if ((rg = calloc(1, sizeof(*rg))) == NULL)
        return OS_ERR_NOMEM;
    rg->opt = *opt;
    rg->listen = strdup(opt->listen);
    rg->db_path = strdup(opt->db_path);
    rg->rpc = dup_or_null(opt->rpc);
    if (rg->listen == NULL || rg->db_path == NULL || (opt->rpc != NULL && rg->rpc == NULL)) {
        free(rg->listen);
        free(rg->db_path);
        free(rg->rpc);
        free(rg);
        return OS_ERR_NOMEM;
    }
    rg->opt.listen = rg->listen;
    rg->opt.db_path = rg->db_path;
    rg->opt.rpc = rg->rpc;
    if (rg->opt.http_threads == 0)
        rg->opt.http_threads = 4;
    if (rg->opt.max_chain_lookups == 0)
        rg->opt.max_chain_lookups = 2;
    if (rg->opt.rate_per_s > 0 && rg->opt.rate_burst == 0)
        rg->opt.rate_burst = rg->opt.rate_per_s * 2;
    if (log == NULL) {
        os_logger_init(&rg->default_log, "registry", OS_LOG_INFO);
        log = &rg->default_log;
    }
    rg->log = log;
    pthread_mutex_init(&rg->db_mu, NULL);
    pthread_mutex_init(&rg->wmu, NULL);
    pthread_rwlock_init(&rg->lock, NULL);
    pthread_mutex_init(&rg->bg_mu, NULL);
    pthread_mutex_init(&rg->chan_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rg->bg_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&rg->chain_inflight, 0);
    randombytes_buf(rg->hash_key, sizeof(rg->hash_key));
    rg_rank_params_default(&rg->rank, (double)rg->opt.heartbeat_interval_ms);
    rg->window_ms = (int64_t)rg->opt.liveness_intervals * (int64_t)rg->opt.heartbeat_interval_ms;
    rg->next_epoch = 1;
    rg->stopped = false;

    if ((rc = rg_api_metrics_init(rg)) != OS_OK)
        goto fail;
    if ((rc = ensure_dir(rg->db_path)) != OS_OK) {
        os_log_error(rg->log, "cannot create the database directory");
        goto fail;
    }
    if ((rc = rg_store_open(rg)) != OS_OK || (rc = rg_store_load(rg)) != OS_OK)
        goto fail;
    pthread_mutex_lock(&rg->wmu);
    rc = rg_views_rebuild(rg, rg_now_ms());
    pthread_mutex_unlock(&rg->wmu);
    if (rc != OS_OK)
        goto fail;

    if (rg->rpc != NULL && rg->opt.has_escrow) {
        os_chain_config cc;
        os_chain_config_default(&cc, rg->rpc);
        cc.chain_id = rg->opt.chain_id;
        cc.connect_timeout_ms = 2000;
        cc.request_timeout_ms = rg->opt.chain_timeout_ms ? (long)rg->opt.chain_timeout_ms : 5000;
        cc.max_retries = 1;
        cc.max_response = 64 * 1024;
        os_escrow_chain_config(&cc);
        if ((rc = os_chain_new(&rg->chain, &cc)) != OS_OK) {
            os_log_error(rg->log, "cannot set up the chain client for feedback");
            goto fail;
        }
    }

    rg_api_routes(rg);
    os_http_config hc = {.listen = rg->listen,
                         .threads = rg->opt.http_threads,
                         .max_connections = rg->opt.max_connections,
                         .per_ip_connections = rg->opt.per_ip_connections,
                         .timeout_s = rg->opt.timeout_s,
                         .max_body = OS_RECORD_MAX_BYTES,
                         .rate_per_s = rg->opt.rate_per_s,
                         .rate_burst = rg->opt.rate_burst,
                         .drain_timeout_ms = rg->opt.drain_timeout_ms,
                         .tls_cert_file = opt->tls_cert_file,
                         .tls_key_file = opt->tls_key_file,
                         .log = rg->log};
    if ((rc = os_http_server_new(&rg->http, &hc, rg->routes, rg->n_routes, rg)) != OS_OK)
        goto fail;

    {
        os_log_event ev;
        if (os_log_begin(&ev, rg->log, OS_LOG_INFO, "registry loaded")) {
            os_log_kv(&ev, "peers", "%zu", rg->n_peers);
            os_log_kv(&ev, "db", "%s", rg->db_path);
            os_log_kv(&ev, "feedback", "%s", rg->chain != NULL ? "on" : "off");
            os_log_end(&ev);
        }
    }
    *out = rg;
    return OS_OK;
fail:
    rg_registry_free(rg);
    return rc;
}

os_err rg_registry_new(rg_registry **out, const rg_config *cfg, const os_logger *log)
{
    rg_options o;
    char db[4096], listen[OS_CFG_LISTEN_STR_LEN];
    os_err rc;

    *out = NULL;
    rg_options_default(&o);
    if ((rc = rg_options_from_config(&o, cfg, db, sizeof(db), listen, sizeof(listen))) != OS_OK)
        return rc;
    return rg_registry_new_opts(out, &o, log);
}

os_err rg_registry_start(rg_registry *rg)
{
    os_err rc;

    if (rg == NULL || rg->started || rg->stopped)
        return OS_ERR_INVALID;
    rg->bg_stop = false;
    if (pthread_create(&rg->bg, NULL, bg_main, rg) != 0)
        return OS_ERR_NOMEM;
    rg->bg_running = true;
    if ((rc = os_http_server_start(rg->http)) != OS_OK) {
        rg_registry_stop(rg);
        return rc;
    }
    rg->started = true;
    {
        os_log_event ev;
        if (os_log_begin(&ev, rg->log, OS_LOG_INFO, "registry listening")) {
            os_log_kv(&ev, "listen", "%s", rg->listen);
            os_log_kv(&ev, "port", "%u", (unsigned)os_http_server_port(rg->http));
            os_log_end(&ev);
        }
    }
    return OS_OK;
}

uint16_t rg_registry_port(const rg_registry *rg)
{
    return rg != NULL && rg->http != NULL ? os_http_server_port(rg->http) : 0;
}

void rg_registry_stop(rg_registry *rg)
{
    if (rg == NULL || rg->stopped)
        return;
    rg->stopped = true;
    if (rg->http != NULL)
        os_http_server_stop(rg->http); /* drains requests in flight */
    if (rg->bg_running) {
        pthread_mutex_lock(&rg->bg_mu);
        rg->bg_stop = true;
        pthread_cond_signal(&rg->bg_cv);
        pthread_mutex_unlock(&rg->bg_mu);
        pthread_join(rg->bg, NULL);
        rg->bg_running = false;
    }
    if (rg->db != NULL) {
        flush(rg);
        pthread_mutex_lock(&rg->db_mu);
        rg_store_close(rg);
        pthread_mutex_unlock(&rg->db_mu);
        os_log_info(rg->log, "registry stopped; database closed");
    }
}

os_err rg_registry_reload_tls(rg_registry *rg)
{
    if (rg == NULL || rg->http == NULL || !os_http_server_is_tls(rg->http))
        return OS_OK;
    return os_http_server_reload_tls(rg->http);
}

void rg_registry_free(rg_registry *rg)
{
    if (rg == NULL)
        return;
    rg_registry_stop(rg);
    os_http_server_free(rg->http);
    os_chain_free(rg->chain);
    rg_viewset_free(rg->cur);
    rg_viewset_free(rg->prev);
    rg_peers_free(rg);
    os_metrics_free(rg->metrics);
    pthread_cond_destroy(&rg->bg_cv);
    pthread_mutex_destroy(&rg->chan_mu);
    pthread_mutex_destroy(&rg->bg_mu);
    pthread_rwlock_destroy(&rg->lock);
    pthread_mutex_destroy(&rg->wmu);
    pthread_mutex_destroy(&rg->db_mu);
    free(rg->listen);
    free(rg->db_path);
    free(rg->rpc);
    free(rg);
}
