/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The answer to a paid request, produced on its own thread (a "job") once the voucher is on disk:
 * the upstream call, each upstream SSE event sealed as one chunked-OHTTP chunk and written as it
 * arrives (or one whole OHTTP response), the charge from what the upstream produced, the booking
 * (sl_chans_finish, always, whatever happened) and the closing fields. A watchdog thread polls
 * every job's stream every 100 ms and sets the job's abort flag when the buyer has gone, which
 * cancels the upstream call (a job that is writing notices at its next write).
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/ct.h"
#include "openseed/infer.h"
#include "openseed/money.h"
#include "openseed/ohttp.h"
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

/* ---- the job ---- */

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
        j->first_ms = sl_mono_ms();
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
    /* Something was produced when the answer completed, or a stream that broke off delivered
     * output tokens or the upstream reported usage: events that carried neither (junk that is
     * not the API's JSON, a role-only chunk) are not a product, whatever reached the buyer. */
    bool produced = r->outcome == SL_UPSTREAM_OK ||
                    (r->events > 0 && (r->usage.output_tokens > 0 || r->input_reported));

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

/* Our own description of an upstream failure, as buyers may read it, into buf. The transport's
 * part of it ("…: POST http://host:port/…: Timeout was reached") names the upstream's URL, which is
 * the operator's business: it is cut at the ": " before the URL (the seller's log has it all). */
static const char *public_error(const sl_upstream_result *r, const char *fallback, char *buf,
                                size_t cap)
{
    const char *url, *cut = NULL;
    if (r->error[0] == '\0')
        return fallback;
    if ((url = strstr(r->error, "://")) == NULL)
        return r->error;
    for (const char *p = r->error; p + 1 < url; p++)
        if (p[0] == ':' && p[1] == ' ')
            cut = p;
    if (cut == NULL || cut == r->error)
        return fallback;
    snprintf(buf, cap, "%.*s", (int)(cut - r->error), r->error);
    return buf;
}

/* The upstream's error as a JSON body for the buyer (an error shape even when it sent none). */
static json_t *error_body(const sl_upstream_result *r)
{
    char buf[sizeof(r->error)];
    if (r->body != NULL)
        return json_incref(r->body);
    return json_pack("{s:{s:s,s:s}}", "error", "message",
                     public_error(r, "the upstream did not answer", buf, sizeof(buf)), "type",
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
    int64_t now = sl_mono_ms();
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
    /* Nothing came back (the headers may have, the answer did not), or nothing usable: a 2xx
     * whose whole answer is not JSON or was cut, a stream that ended or broke before any event.
     * A gateway error, so the buyer never passes it on as a success. */
    f.status = r->outcome == SL_UPSTREAM_UNREACHABLE || r->status == 0 ||
                       (r->outcome == SL_UPSTREAM_BROKEN && r->events == 0)
                   ? 502
                   : r->status;
    f.usage = e.usage;
    f.cost = e.cost;
    f.cumulative_consumed = consumed;
    if (r->outcome == SL_UPSTREAM_BROKEN || r->outcome == SL_UPSTREAM_UNREACHABLE) {
        f.has_error = true;
        snprintf(f.error_type, sizeof(f.error_type), "upstream_error");
        char buf[sizeof(r->error)];
        snprintf(f.error_message, sizeof(f.error_message), "%s",
                 public_error(r, "the upstream stream broke off", buf, sizeof(buf)));
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
        j->first_ms = sl_mono_ms();
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

/* ---- starting a job ---- */

os_err sl_answer_start(sl_seller *s, os_http_response *res, sl_answer_args *a)
{
    sl_job *j = calloc(1, sizeof(*j));
    char *hdr = NULL;
    pthread_t th;
    pthread_attr_t attr;
    os_err rc = OS_ERR_NOMEM;

    if (j == NULL)
        goto unbook;
    j->s = s;
    j->ticket = *a->ticket;
    j->octx = *a->octx;
    memset(a->octx, 0, sizeof(*a->octx));
    j->root = a->root;
    a->root = NULL;
    j->inner = *a->inner;
    j->offering = a->offering;
    j->est = *a->est;
    j->stream = strcmp(j->inner.api, "openai.embeddings") != 0 &&
                json_is_true(json_object_get(j->inner.body, "stream"));
    j->t0_ms = sl_mono_ms();
    if ((rc = os_x402_response_encode(&hdr, s->opt.chain_id, j->est.total,
                                      j->ticket.channel_id)) != OS_OK ||
        (rc = os_http_res_header(res, OS_X402_HDR_RESPONSE, hdr)) != OS_OK ||
        (rc = os_http_res_stream(res, &j->st, 200,
                                 j->stream ? OS_OHTTP_MEDIA_CHUNKED_RESPONSE
                                           : OS_OHTTP_MEDIA_RESPONSE)) != OS_OK)
        goto unbook;
    free(hdr);
    pthread_mutex_lock(&s->jobs_mu);
    j->next = s->jobs;
    s->jobs = j;
    s->n_jobs++;
    pthread_mutex_unlock(&s->jobs_mu);
    os_metric_gauge_add(s->m_streams, 0, 1);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, job_main, j) != 0)
        job_main(j); /* here instead: slower for this buyer, but answered and booked */
    pthread_attr_destroy(&attr);
    return OS_OK;

unbook:
    free(hdr);
    if (j != NULL && j->st != NULL)
        os_http_stream_close(j->st, false);
    {
        sl_request_end e = {.outcome = "failed"};
        uint64_t consumed;
        if (sl_chans_finish(s->chans, &consumed, a->ticket, &e) != OS_OK)
            os_log_error(s->log, "cannot book a failed request");
    }
    if (j != NULL) {
        j->st = NULL;
        job_free(j);
    }
    os_ohttp_ctx_clear(a->octx);
    json_decref(a->root);
    a->root = NULL;
    return rc;
}
