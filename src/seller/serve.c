/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's public routes and its request pipeline (PROTOCOL.md §5-§7).
 *
 * POST /v1/infer, cheapest refusals first and nothing of the upstream touched until the voucher
 * is on disk:
 *   1. an upstream slot (503 when upstream_concurrency requests are in flight);
 *   2. shape: a non-empty message/ohttp-req body (the server caps it at max_request: 413);
 *   3. PAYMENT-SIGNATURE parsed; its channel made ready from the cache (or read once from the
 *      chain the first time); then the credential: commitment equal to the channel's, nullifier
 *      not seen before, proof valid for this channel and this body's metadataHash (401);
 *   4. decryption (400), the plaintext {api, service, body} (400), the offering (400), the
 *      estimate (400);
 *   5. the payment decision and the durable voucher write (sl_chans_pay: 401/402), or, with no
 *      usable voucher, a 402 whose PAYMENT-REQUIRED invoice carries the estimate;
 *   6. the answer: a 200 whose body is produced by a job on its own thread, calling the upstream
 *      and encrypting as it goes: one chunked-OHTTP chunk per upstream SSE event, or one whole
 *      OHTTP response; the final chunk (or the whole response) says what was charged.
 * Every answer after step 5 is a 200 with an encrypted body: upstream failures travel inside it,
 * so an observer learns nothing about the request from the status.
 *
 * Jobs: a watchdog thread polls each job's stream every 100 ms and sets the job's abort flag when
 * the client has gone, which cancels the upstream call (it checks the flag at least once a second;
 * a stream that is being written to notices at its next write). A job always books its request
 * (sl_chans_finish) before it ends, whatever happened.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "openseed/credential.h"
#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/infer.h"
#include "openseed/json.h"
#include "openseed/keccak.h"
#include "openseed/money.h"
#include "openseed/ohttp.h"
#include "openseed/secp.h"
#include "openseed/x402.h"

struct sl_job {
    sl_seller *s;
    sl_job *next;
    sl_ticket ticket;
    os_ohttp_ctx octx;
    os_ohttp_chunk_sender sender;
    bool sender_ready;
    json_t *root; /* the parsed plaintext; inner.body points into it */
    os_infer_inner inner;
    const os_offering *offering;
    os_estimate est;
    bool stream;
    os_http_stream *st;
    atomic_int abort;
    int64_t t0_ms, first_ms;
    bool write_failed;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- nullifiers ---- */

static size_t nf_hash(const uint8_t nf[32])
{
    uint64_t h;
    memcpy(&h, nf, sizeof(h)); /* the nullifier is a hash output: its bytes are uniform */
    return (size_t)(h & (2 * SL_NULLIFIERS - 1));
}

/* The slot holding nf, or the empty slot where it would go. */
static size_t nf_find(const sl_nullifiers *n, const uint8_t nf[32], bool *found)
{
    size_t i = nf_hash(nf);
    for (;;) {
        uint32_t v = n->slots[i];
        if (v == 0) {
            *found = false;
            return i;
        }
        if (memcmp(n->ring[v - 1], nf, 32) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & (2 * SL_NULLIFIERS - 1);
    }
}

/* Removes the slot i of an open-addressing table (backward-shift deletion, no tombstones). */
static void nf_remove_slot(sl_nullifiers *n, size_t i)
{
    const size_t mask = 2 * SL_NULLIFIERS - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (n->slots[j] == 0)
            break;
        size_t home = nf_hash(n->ring[n->slots[j] - 1]);
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            n->slots[i] = n->slots[j];
            i = j;
        }
    }
    n->slots[i] = 0;
}

/* Remembers nf; false when it was already there (a replay). */
static bool nf_insert(sl_nullifiers *n, const uint8_t nf[32])
{
    bool found;
    size_t i;

    pthread_mutex_lock(&n->mu);
    nf_find(n, nf, &found);
    if (found) {
        pthread_mutex_unlock(&n->mu);
        return false;
    }
    if (n->count == SL_NULLIFIERS) { /* forget the oldest */
        size_t old = nf_find(n, n->ring[n->next], &found);
        if (found)
            nf_remove_slot(n, old);
        n->count--;
    }
    memcpy(n->ring[n->next], nf, 32);
    i = nf_find(n, nf, &found);
    n->slots[i] = (uint32_t)n->next + 1;
    n->next = (n->next + 1) % SL_NULLIFIERS;
    n->count++;
    pthread_mutex_unlock(&n->mu);
    return true;
}

static bool nf_seen(sl_nullifiers *n, const uint8_t nf[32])
{
    bool found;
    pthread_mutex_lock(&n->mu);
    nf_find(n, nf, &found);
    pthread_mutex_unlock(&n->mu);
    return found;
}

/* ---- metrics ---- */

static const char *const outcomes[] = {"ok", "upstream_error", "broken", "cancelled", "failed",
                                       NULL};
static const char *const classes[] = {"input", "cached", "output", NULL};
static const char *const refusals[] = {"busy",    "bad_request", "credential", "payment",
                                       "envelope", "offering",   "chain",      "internal",
                                       NULL};
enum { R_BUSY, R_BAD, R_CRED, R_PAY, R_ENV, R_OFFER, R_CHAIN, R_INTERNAL };

os_err sl_serve_init(sl_seller *s)
{
    static const double lat[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300};
    os_err rc;

    s->nullifiers.ring = calloc(SL_NULLIFIERS, 32);
    s->nullifiers.slots = calloc(2 * SL_NULLIFIERS, sizeof(uint32_t));
    if (s->nullifiers.ring == NULL || s->nullifiers.slots == NULL)
        return OS_ERR_NOMEM;
    pthread_mutex_init(&s->nullifiers.mu, NULL);
    if ((rc = os_metrics_new(&s->metrics)) != OS_OK)
        return rc;
    if ((rc = os_metrics_counter(s->metrics, &s->m_requests, "openseed_seller_requests_total",
                                 "paid requests answered, by outcome", "outcome", outcomes)) !=
            OS_OK ||
        (rc = os_metrics_counter(s->metrics, &s->m_refusals, "openseed_seller_refusals_total",
                                 "requests refused before any upstream work, by reason", "reason",
                                 refusals)) != OS_OK ||
        (rc = os_metrics_counter(s->metrics, &s->m_tokens, "openseed_seller_tokens_total",
                                 "tokens charged, by class", "class", classes)) != OS_OK ||
        (rc = os_metrics_counter(s->metrics, &s->m_revenue,
                                 "openseed_seller_revenue_micro_usdc_total",
                                 "micro-USDC charged for finished requests", NULL, NULL)) != OS_OK ||
        (rc = os_metrics_histogram(s->metrics, &s->m_upstream_s,
                                   "openseed_seller_upstream_seconds",
                                   "upstream call duration (paid requests)", NULL, NULL, lat,
                                   sizeof(lat) / sizeof(lat[0]))) != OS_OK ||
        (rc = os_metrics_histogram(s->metrics, &s->m_ttft_s, "openseed_seller_ttft_seconds",
                                   "time to the upstream's first event or answer", NULL, NULL, lat,
                                   sizeof(lat) / sizeof(lat[0]))) != OS_OK ||
        (rc = os_metrics_gauge(s->metrics, &s->m_streams, "openseed_seller_active_streams",
                               "answers being produced", NULL, NULL)) != OS_OK)
        return rc;
    return OS_OK;
}

void sl_serve_fini(sl_seller *s)
{
    if (s->nullifiers.ring != NULL)
        pthread_mutex_destroy(&s->nullifiers.mu);
    free(s->nullifiers.ring);
    free(s->nullifiers.slots);
    s->nullifiers.ring = NULL;
    s->nullifiers.slots = NULL;
    os_metrics_free(s->metrics);
    s->metrics = NULL;
}

/* ---- small routes ---- */

static void h_info(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    os_err rc = OS_ERR_NOTFOUND;
    (void)req;

    pthread_mutex_lock(&s->info_mu);
    if (s->info_body != NULL)
        rc = os_http_res_body(res, "application/json", s->info_body, strlen(s->info_body));
    pthread_mutex_unlock(&s->info_mu);
    if (rc == OS_OK)
        os_http_res_status(res, 200);
    else
        os_http_res_error(res, 503, "server_error", "not_ready", "the seller is starting");
}

static void h_healthz(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    sl_chans_stats cs = {0};
    sl_announcer_stats as = {0};
    char addr[OS_ADDRESS_STR_LEN];
    (void)req;

    if (s->chans != NULL)
        sl_chans_get_stats(s->chans, &cs);
    if (s->announcer != NULL)
        sl_announcer_get_stats(s->announcer, &as);
    os_eip55_format(addr, s->node);
    json_t *v = json_pack("{s:s,s:s,s:{s:I,s:I},s:{s:I,s:I,s:I},s:{s:I,s:I}}", "status", "ok",
                          "node", addr, "registries", "configured", (json_int_t)s->n_registries,
                          "registered", (json_int_t)as.registered, "channels", "known",
                          (json_int_t)cs.channels, "unverified", (json_int_t)cs.unverified,
                          "in_flight", (json_int_t)cs.in_flight, "upstream", "busy",
                          (json_int_t)atomic_load(&s->busy), "capacity",
                          (json_int_t)s->opt.upstream_concurrency);
    if (v == NULL || os_http_res_json(res, 200, v) != OS_OK)
        os_http_res_error(res, 500, "server_error", NULL, "out of memory");
}

static void h_metrics(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    char *text = NULL;
    size_t len = 0;
    (void)req;

    if (os_metrics_render(s->metrics, &text, &len) != OS_OK ||
        os_http_res_body(res, OS_METRICS_CONTENT_TYPE, text, len) != OS_OK) {
        os_http_res_error(res, 500, "server_error", NULL, "cannot render metrics");
    } else {
        os_http_res_status(res, 200);
    }
    free(text);
}

/* ---- refusals ---- */

__attribute__((format(printf, 6, 7))) static void refuse(sl_seller *s, os_http_response *res,
                                                          int reason, unsigned status,
                                                          const char *code, const char *fmt, ...)
{
    const char *type = status == 401   ? "authentication_error"
                       : status == 402 ? "payment_required"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    char msg[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    os_metric_inc(s->m_refusals, (size_t)reason);
    os_http_res_error(res, status, type, code, "%s", msg);
}

static void retry_after(sl_seller *s, os_http_response *res)
{
    if (os_http_res_header(res, "Retry-After", "1") != OS_OK)
        os_log_debug(s->log, "cannot set Retry-After");
}

/* A 402 with its PAYMENT-REQUIRED invoice. */
static void refuse_402(sl_seller *s, os_http_response *res, const os_x402_requirement *req,
                       const char *code, const char *message)
{
    char *hdr = NULL;

    if (os_x402_required_encode(&hdr, code, OS_INFER_PATH, req) != OS_OK ||
        os_http_res_header(res, OS_X402_HDR_REQUIRED, hdr) != OS_OK) {
        free(hdr);
        refuse(s, res, R_INTERNAL, 500, "internal_error", "cannot write the invoice");
        return;
    }
    free(hdr);
    refuse(s, res, R_PAY, 402, code, "%s", message);
}

/* ---- the answer, on a job thread ---- */

static os_err write_chunk(sl_job *j, const uint8_t *pt, size_t len, bool final)
{
    size_t cap = len + OS_OHTTP_CHUNK_OVERHEAD, n = 0;
    uint8_t *buf = malloc(cap);
    os_err rc;

    if (buf == NULL)
        return OS_ERR_NOMEM;
    rc = final ? os_ohttp_chunk_seal_final(&j->sender, buf, cap, &n, pt, len)
               : os_ohttp_chunk_seal(&j->sender, buf, cap, &n, pt, len);
    if (rc == OS_OK && (rc = os_http_stream_write(j->st, buf, n)) != OS_OK)
        j->write_failed = true;
    free(buf);
    return rc;
}

static os_err on_start(void *ud, long status)
{
    sl_job *j = ud;
    (void)status;
    return atomic_load(&j->abort) ? OS_ERR_IO : OS_OK;
}

static os_err on_event(void *ud, const char *event, size_t len)
{
    sl_job *j = ud;

    if (j->first_ms == 0)
        j->first_ms = mono_ms();
    if (atomic_load(&j->abort))
        return OS_ERR_IO;
    return write_chunk(j, (const uint8_t *)event, len, false);
}

/* Ends the answer. The handle is taken under jobs_mu, which the watchdog holds while it looks at
 * j->st, so it never polls a stream that is being closed. */
static void close_stream(sl_job *j, bool ok)
{
    os_http_stream *st;

    pthread_mutex_lock(&j->s->jobs_mu);
    st = j->st;
    j->st = NULL;
    pthread_mutex_unlock(&j->s->jobs_mu);
    os_http_stream_close(st, ok);
}

/* What the request is charged, from what the upstream produced. */
static void charge(sl_job *j, const sl_upstream_result *r, sl_request_end *e)
{
    os_infer_usage u = r->usage;
    bool produced = r->outcome == SL_UPSTREAM_OK || r->events > 0;

    memset(e, 0, sizeof(*e));
    e->upstream_status = r->status;
    switch (r->outcome) {
    case SL_UPSTREAM_OK:
        e->outcome = "ok";
        break;
    case SL_UPSTREAM_BROKEN:
        e->outcome = "broken";
        break;
    case SL_UPSTREAM_CANCELLED:
        e->outcome = "cancelled";
        break;
    default:
        e->outcome = "upstream_error";
        break;
    }
    if (!produced)
        return; /* no token reached the buyer: no charge */
    /* Input the upstream did not report (a stream cut before its usage) is charged at the bound
     * the buyer authorised: the prompt was processed either way. */
    if (!r->usage_reported && !r->input_reported) {
        u.input_tokens = j->est.input_tokens;
        u.cached_tokens = 0;
    }
    if (u.input_tokens > j->est.input_tokens)
        u.input_tokens = j->est.input_tokens;
    if (u.cached_tokens > u.input_tokens)
        u.cached_tokens = u.input_tokens;
    if (u.output_tokens > j->est.output_tokens)
        u.output_tokens = j->est.output_tokens;
    e->usage = u;
    if (os_cost_actual(&e->cost, &j->offering->pricing, u.input_tokens, u.cached_tokens,
                       u.output_tokens) != OS_OK ||
        e->cost > j->est.total)
        e->cost = j->est.total;
}

/* The upstream's error as a JSON body for the buyer (an error shape even when it sent none). */
static json_t *error_body(const sl_upstream_result *r)
{
    if (r->body != NULL)
        return json_incref(r->body);
    return json_pack("{s:{s:s,s:s}}", "error", "message",
                     r->error[0] != '\0' ? r->error : "the upstream did not answer", "type",
                     "upstream_error");
}

static void finish_job(sl_job *j, const sl_upstream_result *r)
{
    sl_seller *s = j->s;
    sl_request_end e;
    os_infer_final f;
    uint64_t consumed = 0;
    json_t *out = NULL;
    char *text = NULL;
    int64_t now = mono_ms();
    bool ok_close = true;

    charge(j, r, &e);
    e.latency_ms = (uint64_t)(now - j->t0_ms);
    e.ttft_ms = j->first_ms != 0 ? (uint64_t)(j->first_ms - j->t0_ms) : 0;
    if (sl_chans_finish(s->chans, &consumed, &j->ticket, &e) != OS_OK)
        os_log_error(s->log, "cannot book a finished request (request_id=%" PRIu64 ")",
                     j->ticket.request_id);

    os_metric_inc(s->m_requests, (size_t)os_metric_label_index(s->m_requests, e.outcome));
    os_metric_add(s->m_revenue, 0, e.cost);
    os_metric_add(s->m_tokens, 0, e.usage.input_tokens - e.usage.cached_tokens);
    os_metric_add(s->m_tokens, 1, e.usage.cached_tokens);
    os_metric_add(s->m_tokens, 2, e.usage.output_tokens);
    os_metric_observe(s->m_upstream_s, 0, (double)e.latency_ms / 1000.0);
    if (e.ttft_ms != 0)
        os_metric_observe(s->m_ttft_s, 0, (double)e.ttft_ms / 1000.0);

    if (j->write_failed || r->outcome == SL_UPSTREAM_CANCELLED) {
        close_stream(j, false); /* the buyer is gone: nothing more to say */
        return;
    }
    memset(&f, 0, sizeof(f));
    /* Nothing came back (the headers may have, the answer did not): a gateway error. */
    f.status = r->outcome == SL_UPSTREAM_UNREACHABLE || r->status == 0 ? 502 : r->status;
    f.usage = e.usage;
    f.cost = e.cost;
    f.cumulative_consumed = consumed;
    if (r->outcome == SL_UPSTREAM_BROKEN || r->outcome == SL_UPSTREAM_UNREACHABLE) {
        f.has_error = true;
        snprintf(f.error_type, sizeof(f.error_type), "upstream_error");
        snprintf(f.error_message, sizeof(f.error_message), "%s",
                 r->error[0] != '\0' ? r->error : "the upstream stream broke off");
    }
    out = os_infer_final_to_json(&f);
    if (out != NULL && (!j->stream || r->events == 0) && r->outcome != SL_UPSTREAM_OK)
        json_object_set_new(out, "body", error_body(r)); /* the upstream's own error */
    else if (out != NULL && !j->stream && r->body != NULL)
        json_object_set(out, "body", r->body);
    if (out != NULL)
        text = json_dumps(out, JSON_COMPACT);
    if (text == NULL) {
        ok_close = false;
    } else if (j->stream) {
        ok_close = write_chunk(j, (const uint8_t *)text, strlen(text), true) == OS_OK;
    } else {
        size_t len = strlen(text), cap = len + OS_OHTTP_RESPONSE_OVERHEAD, n = 0;
        uint8_t *buf = malloc(cap);
        ok_close = buf != NULL &&
                   os_ohttp_response_encap(&j->octx, buf, cap, &n, (const uint8_t *)text, len) ==
                       OS_OK &&
                   os_http_stream_write(j->st, buf, n) == OS_OK;
        free(buf);
    }
    close_stream(j, ok_close);
    free(text);
    json_decref(out);
}

static void job_free(sl_job *j)
{
    if (j == NULL)
        return;
    os_ohttp_chunk_sender_clear(&j->sender);
    os_ohttp_ctx_clear(&j->octx);
    json_decref(j->root);
    free(j);
}

static void *job_main(void *arg)
{
    sl_job *j = arg;
    sl_seller *s = j->s;
    sl_upstream_result r;
    os_err rc = OS_OK;
    bool anthropic = strcmp(j->inner.api, "anthropic.messages") == 0;
    sl_upstream *up = anthropic ? s->up_anthropic : s->up_openai;

    memset(&r, 0, sizeof(r));
    if (j->stream) {
        uint8_t nonce[OS_OHTTP_NONCE_LEN];
        rc = os_ohttp_chunk_sender_init(&j->sender, nonce, &j->octx);
        if (rc == OS_OK) {
            j->sender_ready = true;
            if (os_http_stream_write(j->st, nonce, sizeof(nonce)) != OS_OK)
                j->write_failed = true;
        }
    }
    if (rc != OS_OK || j->write_failed) {
        r.outcome = SL_UPSTREAM_CANCELLED;
    } else {
        sl_upstream_req ur = {
            .api = j->inner.api,
            .model = j->offering->model,
            .body = j->inner.body,
            .max_tokens = j->est.max_tokens,
            .stream = j->stream,
            .on_start = on_start,
            .on_event = on_event,
            .ud = j,
            .abort = &j->abort,
        };
        if (up == NULL || sl_upstream_call(up, &r, &ur) != OS_OK) {
            json_decref(r.body);
            memset(&r, 0, sizeof(r));
            r.outcome = SL_UPSTREAM_UNREACHABLE;
            snprintf(r.error, sizeof(r.error), "the upstream cannot take this request");
        }
    }
    if (j->first_ms == 0 && r.outcome == SL_UPSTREAM_OK)
        j->first_ms = mono_ms();
    finish_job(j, &r);
    json_decref(r.body);

    pthread_mutex_lock(&s->jobs_mu);
    for (sl_job **p = &s->jobs; *p != NULL; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    s->n_jobs--;
    pthread_cond_broadcast(&s->jobs_cv);
    pthread_mutex_unlock(&s->jobs_mu);
    os_metric_gauge_add(s->m_streams, 0, -1);
    atomic_fetch_sub(&s->busy, 1);
    job_free(j);
    return NULL;
}

static void *watchdog_main(void *arg)
{
    sl_seller *s = arg;

    pthread_mutex_lock(&s->jobs_mu);
    while (s->watchdog_running) {
        struct timespec ts;
        for (sl_job *j = s->jobs; j != NULL; j = j->next)
            if (j->st != NULL && os_http_stream_cancelled(j->st))
                atomic_store(&j->abort, 1);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->jobs_cv, &s->jobs_mu, &ts);
    }
    pthread_mutex_unlock(&s->jobs_mu);
    return NULL;
}

os_err sl_jobs_start(sl_seller *s)
{
    pthread_mutex_lock(&s->jobs_mu);
    s->stopping = false;
    if (!s->watchdog_running) {
        s->watchdog_running = true;
        if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
            s->watchdog_running = false;
            pthread_mutex_unlock(&s->jobs_mu);
            return OS_ERR_INTERNAL;
        }
    }
    pthread_mutex_unlock(&s->jobs_mu);
    return OS_OK;
}

void sl_jobs_stop(sl_seller *s)
{
    pthread_t w;
    bool joined;

    pthread_mutex_lock(&s->jobs_mu);
    s->stopping = true;
    /* The HTTP server has drained or cut every stream by now, so jobs are ending; abort the
     * upstream calls of any that are not, and wait for each to book its request. */
    for (sl_job *j = s->jobs; j != NULL; j = j->next)
        atomic_store(&j->abort, 1);
    while (s->n_jobs > 0)
        pthread_cond_wait(&s->jobs_cv, &s->jobs_mu);
    joined = s->watchdog_running;
    s->watchdog_running = false;
    w = s->watchdog;
    pthread_cond_broadcast(&s->jobs_cv);
    pthread_mutex_unlock(&s->jobs_mu);
    if (joined)
        pthread_join(w, NULL);
}

/* ---- POST /v1/infer ---- */

static const os_offering *find_offering(const sl_seller *s, const char *service, unsigned api,
                                        bool *service_known)
{
    *service_known = false;
    for (size_t i = 0; i < s->n_offerings; i++)
        for (size_t k = 0; k < s->offerings[i].n_services; k++)
            if (strcmp(s->offerings[i].services[k], service) == 0) {
                *service_known = true;
                if ((s->offerings[i].apis & api) != 0)
                    return &s->offerings[i];
            }
    return NULL;
}

/* Step 3: the credential for channel view v and this body. True when it holds. */
static bool check_credential(sl_seller *s, os_http_response *res, const char *cred,
                             const sl_chan_view *view, const uint8_t mh[32])
{
    uint8_t c[OS_CRED_COMMITMENT_LEN], nf[OS_CRED_NULLIFIER_LEN], proof[OS_CRED_PROOF_LEN];

    if (cred == NULL) {
        refuse(s, res, R_CRED, 401, "credential_required",
               "a paid request needs the OpenSeed-Credential header");
        return false;
    }
    if (os_cred_header_decode(c, nf, proof, cred, strlen(cred)) != OS_OK) {
        refuse(s, res, R_CRED, 401, "invalid_credential",
               "the OpenSeed-Credential header is malformed");
        return false;
    }
    if (!os_ct_eq(c, view->commitment, sizeof(c))) {
        refuse(s, res, R_CRED, 401, "credential_mismatch",
               "the credential's commitment is not the one registered with the channel");
        return false;
    }
    if (nf_seen(&s->nullifiers, nf)) {
        refuse(s, res, R_CRED, 401, "nullifier_reused", "this credential was already used");
        return false;
    }
    if (os_cred_verify(c, nf, proof, view->id, mh) != OS_OK) {
        refuse(s, res, R_CRED, 401, "invalid_credential",
               "the credential does not prove the channel's identity for this request");
        return false;
    }
    if (!nf_insert(&s->nullifiers, nf)) { /* a concurrent twin got there first */
        refuse(s, res, R_CRED, 401, "nullifier_reused", "this credential was already used");
        return false;
    }
    return true;
}

static void estimate_refusal(sl_seller *s, os_http_response *res, os_err rc,
                             const os_offering *o)
{
    char msg[160];

    if (rc == OS_ERR_RANGE)
        snprintf(msg, sizeof(msg),
                 "max_tokens is above this offering's limit of %" PRIu64 " (or the request is "
                 "too large to price)",
                 o->max_output_tokens);
    else if (rc == OS_ERR_UNSUPPORTED)
        snprintf(msg, sizeof(msg),
                 "only text is sold: images, audio, files, documents and server tools are "
                 "refused");
    else
        snprintf(msg, sizeof(msg),
                 "the request body is not a valid request for this API (messages, max_tokens, "
                 "n, input)");
    refuse(s, res, R_OFFER, 400, "invalid_request", "%s", msg);
}

/* Everything a request carries through the handler. */
typedef struct infer_req {
    uint8_t mh[32];
    bool has_payment, channel_ok;
    os_voucher v;
    sl_chan_view view;
    char pay_code[OS_X402_ERROR_MAX];
    char pay_why[192];
    uint8_t *pt;
    os_ohttp_ctx octx;
    json_t *root;
    os_infer_inner inner;
    const os_offering *offering;
    os_estimate est;
} infer_req;

/* Steps 3-4. False when res holds the refusal. */
static bool admit(sl_seller *s, const os_http_request *req, os_http_response *res, infer_req *q,
                  const char *body, size_t len)
{
    const char *pay = os_http_req_header(req, OS_X402_HDR_SIGNATURE);
    char err[OS_X402_ERR_LEN];
    uint8_t key_id = 0;
    size_t pt_len = 0;
    bool known;
    os_err rc;

    os_keccak256(q->mh, body, len);
    if (pay != NULL) {
        if (os_x402_payment_decode(&q->v, NULL, pay, err, sizeof(err)) != OS_OK) {
            refuse(s, res, R_BAD, 400, "invalid_payment", "PAYMENT-SIGNATURE: %s", err);
            return false;
        }
        q->has_payment = true;
        rc = sl_chans_lookup(s->chans, &q->view, q->v.channel_id, q->pay_why,
                             sizeof(q->pay_why));
        if (rc == OS_ERR_TOOBIG || rc == OS_ERR_NETWORK || rc == OS_ERR_NOMEM) {
            retry_after(s, res);
            refuse(s, res, R_CHAIN, 503, "chain_unavailable",
                   "the channel cannot be checked on chain right now; retry");
            return false;
        }
        if (rc == OS_OK) {
            q->channel_ok = true;
            if (!check_credential(s, res, os_http_req_header(req, OS_CRED_HEADER_NAME), &q->view,
                                  q->mh))
                return false;
        } else {
            snprintf(q->pay_code, sizeof(q->pay_code), "%s",
                     rc == OS_ERR_NOTFOUND ? "unknown_channel" : "channel_unusable");
        }
    }

    if (os_ohttp_request_key_id(&key_id, (const uint8_t *)body, len) != OS_OK) {
        refuse(s, res, R_ENV, 400, "invalid_envelope",
               "the body is not an OHTTP request (message/ohttp-req)");
        return false;
    }
    if (key_id != s->key_id) {
        refuse(s, res, R_ENV, 400, "unknown_key",
               "the request is sealed to a key this seller does not hold; fetch /v1/info");
        return false;
    }
    if ((q->pt = malloc(len)) == NULL) {
        refuse(s, res, R_INTERNAL, 500, "internal_error", "out of memory");
        return false;
    }
    if (os_ohttp_request_decap(&q->octx, q->pt, len, &pt_len, s->key_id, s->sec->gateway_sk,
                               s->gateway_pk, (const uint8_t *)body, len) != OS_OK) {
        refuse(s, res, R_ENV, 400, "invalid_envelope",
               "the request does not decrypt (wrong key, or altered in transit)");
        return false;
    }
    if (pt_len > OS_INFER_MAX_REQUEST) {
        refuse(s, res, R_BAD, 413, "request_too_large",
               "the decrypted request is over %u bytes", (unsigned)OS_INFER_MAX_REQUEST);
        return false;
    }
    if (os_json_parse(&q->root, (const char *)q->pt, pt_len, OS_INFER_MAX_REQUEST,
                      OS_INFER_JSON_DEPTH, err, sizeof(err)) != OS_OK) {
        refuse(s, res, R_BAD, 400, "invalid_json", "the decrypted request is not valid JSON: %s",
               err);
        return false;
    }
    if (os_infer_inner_parse(&q->inner, q->root, err, sizeof(err)) != OS_OK) {
        refuse(s, res, R_BAD, 400, "invalid_request", "%s", err);
        return false;
    }
    q->offering = find_offering(s, q->inner.service, os_api_from_name(q->inner.api), &known);
    if (q->offering == NULL) {
        if (known)
            refuse(s, res, R_OFFER, 400, "unsupported_api",
                   "this seller does not offer %s for service %s", q->inner.api,
                   q->inner.service);
        else
            refuse(s, res, R_OFFER, 400, "unknown_service",
                   "this seller does not offer service %s", q->inner.service);
        return false;
    }
    if ((rc = os_estimate_request(&q->est, q->inner.api, q->inner.body, &q->offering->pricing,
                                  q->offering->max_output_tokens)) != OS_OK) {
        estimate_refusal(s, res, rc, q->offering);
        return false;
    }
    return true;
}

static void h_infer(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    size_t len = 0;
    const char *body = os_http_req_body(req, &len);
    const char *ct = os_http_req_header(req, "Content-Type");
    infer_req q;
    sl_ticket t;
    sl_refusal ref;
    sl_job *j = NULL;
    char *hdr = NULL;
    pthread_t th;
    pthread_attr_t attr;
    os_err rc;

    memset(&q, 0, sizeof(q));
    if (atomic_fetch_add(&s->busy, 1) >= s->opt.upstream_concurrency) {
        atomic_fetch_sub(&s->busy, 1);
        retry_after(s, res);
        refuse(s, res, R_BUSY, 503, "seller_busy",
               "the seller is serving as many requests as it can; retry shortly");
        return;
    }
    if (len == 0 || ct == NULL || strncasecmp(ct, OS_OHTTP_MEDIA_REQUEST,
                                              strlen(OS_OHTTP_MEDIA_REQUEST)) != 0) {
        refuse(s, res, R_BAD, 400, "invalid_envelope",
               "POST an OHTTP request with Content-Type message/ohttp-req");
        goto out;
    }
    if (!admit(s, req, res, &q, body, len))
        goto out;

    if (!q.channel_ok) { /* step 5 without a usable voucher: the invoice */
        os_x402_requirement inv;
        sl_chans_invoice(s->chans, &inv, q.has_payment ? q.v.channel_id : NULL, q.est.total,
                         q.mh);
        refuse_402(s, res, &inv, q.pay_code[0] != '\0' ? q.pay_code : "payment_required",
                   q.pay_code[0] != '\0' ? q.pay_why
                                         : "this request needs a PAYMENT-SIGNATURE voucher");
        goto out;
    }
    rc = sl_chans_pay(s->chans, &t, &ref, &q.v, q.mh, q.est.total, q.inner.api,
                      q.inner.service);
    if (rc != OS_OK) {
        if (ref.status == 402)
            refuse_402(s, res, &ref.req, ref.code, ref.message);
        else if (ref.status == 401 || ref.status == 400)
            refuse(s, res, R_PAY, ref.status, ref.code, "%s", ref.message);
        else
            refuse(s, res, R_INTERNAL, 500, "internal_error",
                   "the payment could not be recorded; nothing was charged");
        goto out;
    }

    /* Step 6: paid and on disk. From here the request is booked whatever happens. */
    if ((j = calloc(1, sizeof(*j))) == NULL)
        goto unbook;
    j->s = s;
    j->ticket = t;
    j->octx = q.octx;
    memset(&q.octx, 0, sizeof(q.octx));
    j->root = q.root;
    q.root = NULL;
    j->inner = q.inner;
    j->offering = q.offering;
    j->est = q.est;
    j->stream = strcmp(j->inner.api, "openai.embeddings") != 0 &&
                json_is_true(json_object_get(j->inner.body, "stream"));
    j->t0_ms = mono_ms();
    if (os_x402_response_encode(&hdr, s->opt.chain_id, q.est.total, t.channel_id) != OS_OK ||
        os_http_res_header(res, OS_X402_HDR_RESPONSE, hdr) != OS_OK)
        goto unbook;
    if (os_http_res_stream(res, &j->st, 200,
                           j->stream ? OS_OHTTP_MEDIA_CHUNKED_RESPONSE : OS_OHTTP_MEDIA_RESPONSE) !=
        OS_OK)
        goto unbook;
    pthread_mutex_lock(&s->jobs_mu);
    j->next = s->jobs;
    s->jobs = j;
    s->n_jobs++;
    pthread_mutex_unlock(&s->jobs_mu);
    os_metric_gauge_add(s->m_streams, 0, 1);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &attr, job_main, j) == 0 ? OS_OK : OS_ERR_INTERNAL;
    pthread_attr_destroy(&attr);
    if (rc != OS_OK) {
        /* Run it here instead: slower for this client, but the request is answered and booked. */
        job_main(j);
    }
    free(hdr);
    os_wipe(q.pt, len);
    free(q.pt);
    return; /* the slot is the job's now */

unbook:
    if (j != NULL && j->st != NULL) {
        os_http_stream_close(j->st, false);
        j->st = NULL;
    }
    {
        sl_request_end e = {.outcome = "failed"};
        uint64_t consumed;
        if (sl_chans_finish(s->chans, &consumed, &t, &e) != OS_OK)
            os_log_error(s->log, "cannot book a failed request");
    }
    job_free(j);
    refuse(s, res, R_INTERNAL, 503, "internal_error",
           "the seller cannot answer right now; nothing was charged");
out:
    free(hdr);
    if (q.pt != NULL) {
        os_wipe(q.pt, len);
        free(q.pt);
    }
    os_ohttp_ctx_clear(&q.octx);
    json_decref(q.root);
    atomic_fetch_sub(&s->busy, 1);
}

const os_http_route sl_public_routes[] = {
    {"POST", OS_INFER_PATH, h_infer, 0},
    {"GET", "/v1/info", h_info, 0},
    {"GET", "/healthz", h_healthz, 1},
    {"GET", "/metrics", h_metrics, 1},
};
const size_t sl_n_public_routes = sizeof(sl_public_routes) / sizeof(sl_public_routes[0]);
