/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One client request carried to a seller and back (PROTOCOL.md §5-§7, §9).
 *
 * The request runs on its own thread (a relay job) while the HTTP handler waits for the outcome
 * of the first byte: an error (the handler answers it in the client API's shape, with its status),
 * a whole answer (the handler sends it), or the first stream event (the handler turns its reply
 * into a stream and hands it to the job, which writes every later event as it is decrypted). So a
 * status code can still say what went wrong until the answer starts, and failover is possible
 * until then.
 *
 * Per attempt: candidates from the directory (ranked, filtered by price caps, or the pinned seller
 * only; under the weighted policy one drawn by score^2 is moved to the front, the rest keep their
 * ranked order), the body in the seller's API (an Anthropic request is translated to OpenAI chat
 * when the seller offers only that), the shared estimate with the seller's prices, the sealed
 * envelope, the voucher and credential from the wallet (budgets checked there), the POST. A 402 is
 * reconciled once (the wallet checks the seller's figure) and retried on the same seller. A
 * seller that fails before the answer starts (transport error, timeout, a refusal, the upstream's
 * 5xx or 429) is reported to the directory and the next candidate is tried, up to max_attempts.
 * Once the answer has started nothing is retried: a failure ends the stream with an error event.
 *
 * Nothing of the client's HTTP request is forwarded: only the JSON body travels, sealed.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openseed/hex.h"
#include "openseed/infer.h"
#include "openseed/money.h"
#include "openseed/record.h"
#include "openseed/secp.h"
#include "openseed/sse.h"

#include "translate.h"

#define MAX_CANDIDATES 16

enum { ST_RUNNING = 0, ST_STREAMING, ST_ANSWERED, ST_FAILED };

typedef struct relay {
    by_buyer *b;
    by_client_api capi;
    json_t *body; /* the client's body (a reference) */
    char service[OS_INFER_SERVICE_MAX];
    bool stream, include_usage;
    by_price_cap cap;
    bool pinned;
    uint8_t pin[20];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;  /* handler + job */
    int state; /* ST_* */
    /* ST_FAILED / ST_ANSWERED */
    unsigned status;
    char err_type[64], err_code[64], err_msg[256];
    json_t *answer;
    char peer_hex[OS_ADDRESS_STR_LEN];
    os_infer_final final;
    bool has_final;
    /* streaming */
    os_buf pending; /* events produced before the handler handed over the stream */
    os_http_stream *st;
    bool st_given, client_gone;
    uint64_t events_out;
    atomic_int abort;

    /* the attempt in progress */
    bool translating;
    bool last_timeout; /* the last seller failure was a timeout (504 rather than 502) */
    bool last_chain;   /* the last failure was the chain's silence (503 chain_unavailable) */
    by_astream *astream;
    os_sse_parser *sse;
    os_buf scratch;
} relay;

static void relay_unref(relay *r)
{
    bool last;

    pthread_mutex_lock(&r->mu);
    last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (!last)
        return;
    json_decref(r->body);
    json_decref(r->answer);
    os_buf_free(&r->pending);
    os_buf_free(&r->scratch);
    by_astream_free(r->astream);
    os_sse_parser_free(r->sse);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* Ends the wait of the handler with an error (before the answer started). */
__attribute__((format(printf, 5, 6))) static void fail(relay *r, unsigned status, const char *type,
                                                       const char *code, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&r->mu);
    r->status = status;
    snprintf(r->err_type, sizeof(r->err_type), "%s", type);
    snprintf(r->err_code, sizeof(r->err_code), "%s", code != NULL ? code : "");
    va_start(ap, fmt);
    vsnprintf(r->err_msg, sizeof(r->err_msg), fmt, ap);
    va_end(ap);
    r->state = ST_FAILED;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ---- writing to the client ---- */

/* Sends bytes to the client: buffered until the handler hands over the stream (the first call
 * asks for it). Non-OS_OK once the client is gone. */
static os_err client_write(relay *r, const void *data, size_t len)
{
    os_err rc;

    pthread_mutex_lock(&r->mu);
    if (!r->st_given) {
        if (os_buf_append(&r->pending, data, len) != OS_OK) {
            pthread_mutex_unlock(&r->mu);
            return OS_ERR_NOMEM;
        }
        if (r->state == ST_RUNNING) {
            r->state = ST_STREAMING;
            pthread_cond_broadcast(&r->cv);
        }
        while (!r->st_given && !r->client_gone)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->client_gone) {
            pthread_mutex_unlock(&r->mu);
            return OS_ERR_IO;
        }
        pthread_mutex_unlock(&r->mu);
        /* Outside the lock: a write may wait for the client to read, and the handler takes the
         * lock once more (relay_unref) on the server thread that will send those bytes. Only
         * this thread writes, so the order holds. */
        rc = os_http_stream_write(r->st, r->pending.data, r->pending.len);
        r->pending.len = 0;
    } else {
        pthread_mutex_unlock(&r->mu);
        rc = os_http_stream_write(r->st, data, len);
    }
    if (rc == OS_OK)
        r->events_out++;
    else
        r->client_gone = true;
    return rc;
}

/* OpenAI: the seller always asks its upstream for usage; a client that did not gets no usage
 * chunk (choices [] and a usage object), as from OpenAI itself. */
static bool unwanted_usage_chunk(const relay *r, const char *data)
{
    json_t *j;
    bool drop;

    if (r->include_usage || strstr(data, "\"usage\"") == NULL)
        return false;
    j = json_loads(data, 0, NULL);
    drop = j != NULL && json_is_array(json_object_get(j, "choices")) &&
           json_array_size(json_object_get(j, "choices")) == 0 &&
           json_is_object(json_object_get(j, "usage"));
    json_decref(j);
    return drop;
}

/* One upstream event's data, in the client's API. */
static os_err sse_data_cb(void *ctx, const os_sse_event *ev)
{
    relay *r = ctx;

    if (r->translating) {
        r->scratch.len = 0;
        if (by_astream_feed(r->astream, &r->scratch, ev->data, ev->data_len) != OS_OK)
            return OS_ERR_INVALID;
        return r->scratch.len > 0 ? client_write(r, r->scratch.data, r->scratch.len) : OS_OK;
    }
    if (unwanted_usage_chunk(r, ev->data))
        return OS_OK;
    r->scratch.len = 0;
    if (os_sse_write(&r->scratch, strcmp(ev->type, "message") == 0 ? NULL : ev->type, NULL,
                     ev->data, ev->data_len) != OS_OK)
        return OS_ERR_NOMEM;
    return client_write(r, r->scratch.data, r->scratch.len);
}

static int on_event(void *ud, const char *event, size_t len)
{
    relay *r = ud;
    return os_sse_feed(r->sse, event, len) == OS_OK ? 0 : 1;
}

/* ---- one attempt ---- */

typedef enum attempt_result {
    AT_DONE = 0,  /* answered (or failed after the answer started): stop */
    AT_NEXT,      /* this seller failed before the answer: try the next */
    AT_STOP,      /* a refusal that another seller would repeat (budget, bad request): stop */
} attempt_result;

static const char *wire_api(const relay *r, const os_offering *o)
{
    switch (r->capi) {
    case BY_CLIENT_OPENAI_EMBEDDINGS:
        return "openai.embeddings";
    case BY_CLIENT_ANTHROPIC_MESSAGES:
        return (o->apis & OS_API_ANTHROPIC_MESSAGES) != 0 ? "anthropic.messages" : "openai.chat";
    default:
        return "openai.chat";
    }
}

/* Closes a stream that started with an error event in the client's API. */
static void stream_error(relay *r, const char *message)
{
    os_buf e;
    os_buf_init(&e, 256);
    if (by_stream_error_event(&e, r->capi == BY_CLIENT_ANTHROPIC_MESSAGES, "api_error", message) ==
        OS_OK)
        (void)client_write(r, e.data, e.len);
    os_buf_free(&e);
}

/* The end of a started stream: the translator's closing events when translating. */
static void stream_finish(relay *r, const os_infer_final *f)
{
    if (r->translating && !by_astream_done(r->astream)) {
        r->scratch.len = 0;
        if (by_astream_finish(r->astream, &r->scratch, f != NULL ? &f->usage : NULL) == OS_OK &&
            r->scratch.len > 0)
            (void)client_write(r, r->scratch.data, r->scratch.len);
    }
}

static void set_answer(relay *r, const by_peer *p, const os_infer_result *res, json_t *answer)
{
    pthread_mutex_lock(&r->mu);
    r->status = res->final.status >= 200 && res->final.status < 600
                    ? (unsigned)res->final.status
                    : 502;
    json_decref(r->answer);
    r->answer = answer;
    r->final = res->final;
    r->has_final = true;
    os_eip55_format(r->peer_hex, p->node);
    r->state = ST_ANSWERED;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void observe(relay *r, const by_peer *p, bool ok, const os_infer_result *res,
                    int64_t t0)
{
    by_observation o = {.ok = ok};
    if (ok && res != NULL) {
        o.ttft_ms = res->ttft_ms;
        o.tokens = res->final.usage.output_tokens;
        o.total_ms = (uint64_t)(by_mono_ms() - t0);
    }
    by_peers_observe(r->b->peers, p->node, &o);
}

static attempt_result attempt(relay *r, const by_peer *p, char *last, size_t lastcap)
{
    by_buyer *b = r->b;
    const os_offering *o = &p->record.offerings[p->offering];
    const char *api = wire_api(r, o);
    json_t *inner = NULL;
    os_infer_call *call = NULL;
    os_infer_result res;
    os_http_client_error herr = {0};
    by_payment pay;
    by_refusal kind = BY_REFUSE_NONE;
    os_estimate est;
    uint8_t mh[32];
    char url[OS_RECORD_ENDPOINT_MAX + 16], why[256] = "", err[160] = "";
    int64_t t0 = by_mono_ms();
    attempt_result ar = AT_NEXT;
    bool paid = false;
    os_err rc;

    memset(&res, 0, sizeof(res));
    memset(&pay, 0, sizeof(pay));
    pthread_mutex_lock(&r->mu);
    os_eip55_format(r->peer_hex, p->node);
    pthread_mutex_unlock(&r->mu);
    r->translating = r->capi == BY_CLIENT_ANTHROPIC_MESSAGES && strcmp(api, "openai.chat") == 0;
    if (r->translating) {
        if ((rc = by_anthropic_request_to_openai(&inner, r->body, err, sizeof(err))) != OS_OK) {
            fail(r, 400, "invalid_request_error", NULL, "%s", err);
            return AT_STOP;
        }
    } else if ((inner = json_deep_copy(r->body)) == NULL) {
        fail(r, 500, "api_error", NULL, "out of memory");
        return AT_STOP;
    }
    rc = os_estimate_request(&est, api, inner, &o->pricing, o->max_output_tokens);
    if (rc == OS_ERR_RANGE) { /* above this seller's output cap: another may take it */
        snprintf(last, lastcap, "max_tokens is above what the seller allows (%" PRIu64 ")",
                 o->max_output_tokens);
        json_decref(inner);
        return AT_NEXT;
    }
    if (rc != OS_OK) {
        fail(r, 400, "invalid_request_error", NULL,
             rc == OS_ERR_UNSUPPORTED
                 ? "only text is supported: images, audio, files and server tools are refused"
                 : "the request is not valid for this API (messages, max_tokens, n, input)");
        json_decref(inner);
        return AT_STOP;
    }
    snprintf(url, sizeof(url), "%s%s", p->endpoint, OS_INFER_PATH);
    by_astream_free(r->astream);
    r->astream = NULL;
    if (r->translating &&
        by_astream_new(&r->astream, json_string_value(json_object_get(r->body, "model")),
                       est.input_tokens) != OS_OK) {
        json_decref(inner);
        fail(r, 500, "api_error", NULL, "out of memory");
        return AT_STOP;
    }

    for (int round = 0; round < 2; round++) {
        os_infer_call_free(call);
        call = NULL;
        if (os_infer_call_new(&call, &p->kc, api, r->service, inner) != OS_OK) {
            fail(r, 413, "invalid_request_error", "request_too_large",
                 "the request is too large to send");
            ar = AT_STOP;
            goto out;
        }
        os_infer_call_metadata_hash(call, mh);
        rc = round == 0 ? by_wallet_pay(b->wallet, &pay, &kind, why, sizeof(why), p->node,
                                        r->service, api, est.total, mh)
                        : by_wallet_repay(b->wallet, &pay, &kind, why, sizeof(why),
                                          &res.requirement, mh);
        if (round == 0 && rc == OS_OK)
            paid = true;
        os_infer_result_free(&res);
        if (rc != OS_OK) {
            if (kind == BY_REFUSE_BUDGET) {
                fail(r, 402, "insufficient_quota", "budget_exhausted", "%s", why);
                ar = AT_STOP;
            } else {
                snprintf(last, lastcap, "%s", why);
                r->last_chain = kind == BY_REFUSE_CHAIN_DOWN;
                r->last_timeout = false;
            }
            goto out;
        }
        os_sse_parser_free(r->sse);
        r->sse = NULL;
        if (os_sse_parser_new(&r->sse, 256 * 1024, 256 * 1024, sse_data_cb, r) != OS_OK) {
            fail(r, 500, "api_error", NULL, "out of memory");
            ar = AT_STOP;
            goto out;
        }
        rc = os_infer_call_send(call, &res, r->stream ? b->http : b->http_whole, &herr, url,
                                pay.payment, pay.credential, on_event, r, &r->abort);
        if (rc == OS_OK && res.http_status == 402 && res.has_requirement && round == 0)
            continue; /* reconcile once */
        break;
    }

    if (r->client_gone) { /* the client left before the answer started */
        by_wallet_done(b->wallet, &pay, rc == OS_OK ? &res.final : NULL, "cancelled",
                       (uint64_t)(by_mono_ms() - t0), res.ttft_ms);
        paid = false;
        ar = AT_DONE;
        goto out;
    }
    if (r->events_out > 0) { /* the answer started: no failover whatever happens */
        bool ok = rc == OS_OK && res.http_status == 200 && !res.final.has_error;
        if (ok)
            stream_finish(r, &res.final);
        else if (!r->client_gone)
            stream_error(r, res.final.has_error ? res.final.error_message
                                                : "the seller's answer broke off");
        by_wallet_done(b->wallet, &pay, rc == OS_OK ? &res.final : NULL,
                       ok ? "ok" : (r->client_gone ? "cancelled" : "seller_error"),
                       (uint64_t)(by_mono_ms() - t0), res.ttft_ms);
        paid = false;
        observe(r, p, rc == OS_OK || r->client_gone, &res, t0); /* a client leaving is not the
                                                                   seller's failure */
        ar = AT_DONE;
        goto out;
    }
    if (rc == OS_OK && res.http_status == 200) {
        long st = res.final.status;
        bool upstream_failed = st >= 500 || st == 429;
        by_wallet_done(b->wallet, &pay, &res.final, st < 400 ? "ok" : "upstream_error",
                       (uint64_t)(by_mono_ms() - t0), res.ttft_ms);
        paid = false;
        observe(r, p, !upstream_failed, &res, t0);
        if (upstream_failed) {
            snprintf(last, lastcap, "the seller's model failed (HTTP %ld)", st);
            ar = AT_NEXT;
            goto out;
        }
        json_t *answer = NULL;
        if (res.body != NULL && st < 400 && r->translating) {
            rc = by_openai_response_to_anthropic(
                &answer, res.body, json_string_value(json_object_get(r->body, "model")));
        } else if (r->translating) { /* an OpenAI-shaped error for an Anthropic client */
            const char *m = json_string_value(
                json_object_get(json_object_get(res.body, "error"), "message"));
            answer = by_anthropic_error(by_anthropic_error_type((unsigned)st),
                                        m != NULL ? m : "the model refused the request");
        } else {
            answer = json_incref(res.body);
        }
        if (answer == NULL) {
            answer = r->capi == BY_CLIENT_ANTHROPIC_MESSAGES
                         ? by_anthropic_error("api_error", "the seller's answer was empty")
                         : by_openai_error("api_error", NULL, "the seller's answer was empty");
        }
        set_answer(r, p, &res, answer);
        ar = AT_DONE;
        goto out;
    }
    /* the seller refused or failed before answering */
    by_wallet_done(b->wallet, &pay, NULL, "seller_error", (uint64_t)(by_mono_ms() - t0), 0);
    paid = false;
    /* a payment refusal left after the reconciliation is about our channel, not the seller's
     * health: it does not cool the seller down */
    if (rc != OS_OK || res.http_status != 402)
        observe(r, p, false, NULL, t0);
    r->last_timeout = rc != OS_OK && herr.kind == OS_HTTP_FAIL_TIMEOUT;
    /* the seller could not read our new channel from its chain */
    r->last_chain =
        rc == OS_OK && res.http_status == 503 && strcmp(res.error_code, "chain_unavailable") == 0;
    if (rc != OS_OK)
        snprintf(last, lastcap, "the seller could not be reached or answered badly (%.160s)",
                 herr.message[0] != '\0' ? herr.message : os_strerror(rc));
    else
        snprintf(last, lastcap, "the seller refused (HTTP %ld%s%s)", res.http_status,
                 res.error_code[0] != '\0' ? ", " : "", res.error_code);
    ar = AT_NEXT;
out:
    if (paid)
        by_wallet_done(b->wallet, &pay, NULL, "failed", (uint64_t)(by_mono_ms() - t0), 0);
    os_infer_result_free(&res);
    os_infer_call_free(call);
    json_decref(inner);
    return ar;
}

static unsigned api_bits(const relay *r)
{
    switch (r->capi) {
    case BY_CLIENT_OPENAI_EMBEDDINGS:
        return OS_API_OPENAI_EMBEDDINGS;
    case BY_CLIENT_ANTHROPIC_MESSAGES:
        return OS_API_ANTHROPIC_MESSAGES | OS_API_OPENAI_CHAT;
    default:
        return OS_API_OPENAI_CHAT;
    }
}

/* Moves the drawn candidate k to the front; the others keep their ranked order behind it, so
 * failover still goes down the ranking. A candidate is large (its whole record): when no
 * scratch copy can be had the ranking stays as it is, which is the best policy's order. */
static void route_weighted(by_peer *c, size_t n, size_t k)
{
    by_peer *tmp;

    if (k == 0 || k >= n || (tmp = malloc(sizeof(*tmp))) == NULL)
        return;
    *tmp = c[k];
    memmove(&c[1], &c[0], k * sizeof(*c));
    c[0] = *tmp;
    free(tmp);
}

static void *relay_main(void *arg)
{
    relay *r = arg;
    by_buyer *b = r->b;
    by_peer *cands = NULL;
    size_t n = 0, tried = 0;
    char last[256] = "no seller offers this model";
    os_err rc;

    rc = by_peers_candidates(b->peers, &cands, &n, r->service, api_bits(r), &r->cap,
                             r->pinned ? r->pin : NULL, MAX_CANDIDATES);
    if (rc != OS_OK) {
        fail(r, 503, "api_error", "registry_unavailable",
             "no registry could be reached and no sellers are cached");
        goto out;
    }
    if (n == 0) {
        if (r->pinned)
            fail(r, 404, "invalid_request_error", "model_not_found",
                 "the pinned seller does not offer %s within the price caps", r->service);
        else
            fail(r, 404, "invalid_request_error", "model_not_found",
                 "no seller offers %s within the price caps", r->service);
        goto out;
    }
    if (!r->pinned && b->opt.route == BY_ROUTE_WEIGHTED && n >= 2)
        route_weighted(cands, n, by_peers_pick_weighted(cands, n, by_route_draw(b)));
    for (size_t i = 0; i < n && tried < b->opt.max_attempts; i++, tried++) {
        attempt_result ar = attempt(r, &cands[i], last, sizeof(last));
        if (ar != AT_NEXT)
            goto out;
        if (r->pinned)
            break;
        os_metric_inc(b->m_failovers, 0);
    }
    if (r->last_chain) /* not the sellers' fault: say what to wait for */
        fail(r, 503, "api_error", "chain_unavailable",
             "the chain cannot be reached to open or read a payment channel%s: %s",
             r->pinned ? " with the pinned seller" : "", last);
    else if (r->pinned)
        fail(r, r->last_timeout ? 504 : 502, "api_error", "seller_unavailable",
             "the pinned seller failed: %s", last);
    else
        fail(r, r->last_timeout ? 504 : 502, "api_error", "sellers_unavailable",
             "%zu seller(s) tried, all failed: %s", tried, last);
out:
    free(cands);
    pthread_mutex_lock(&r->mu);
    if (r->st_given && r->st != NULL) {
        os_http_stream_close(r->st, !r->client_gone);
        r->st = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    relay_unref(r);
    return NULL;
}

/* ---- the handler's side ---- */

static void add_header(os_http_response *res, const char *name, const char *value)
{
    if (os_http_res_header(res, name, value) != OS_OK)
        return; /* informational headers only */
}

static void answer_headers(os_http_response *res, const relay *r)
{
    char v[32];

    add_header(res, "X-OpenSeed-Peer", r->peer_hex);
    if (!r->has_final)
        return;
    snprintf(v, sizeof(v), "%" PRIu64, r->final.cost);
    add_header(res, "X-OpenSeed-Cost", v);
    snprintf(v, sizeof(v), "%" PRIu64, r->final.usage.input_tokens);
    add_header(res, "X-OpenSeed-Input-Tokens", v);
    snprintf(v, sizeof(v), "%" PRIu64, r->final.usage.output_tokens);
    add_header(res, "X-OpenSeed-Output-Tokens", v);
}

/* "in,out" in USDC per million tokens; tightens the configured caps. False when malformed. */
static bool parse_max_price(by_price_cap *cap, const char *v)
{
    char a[32], bbuf[32];
    const char *comma = strchr(v, ',');
    uint64_t in, out;

    if (comma == NULL || (size_t)(comma - v) >= sizeof(a) || strlen(comma + 1) >= sizeof(bbuf))
        return false;
    memcpy(a, v, (size_t)(comma - v));
    a[comma - v] = '\0';
    snprintf(bbuf, sizeof(bbuf), "%s", comma + 1);
    if (os_usdc_parse(&in, a) != OS_OK || os_usdc_parse(&out, bbuf) != OS_OK)
        return false;
    if (cap->max_input == 0 || in < cap->max_input)
        cap->max_input = in;
    if (cap->max_output == 0 || out < cap->max_output)
        cap->max_output = out;
    return true;
}

void by_relay(by_buyer *b, const os_http_request *req, os_http_response *res, by_client_api api,
              json_t *body)
{
    const char *model = json_string_value(json_object_get(body, "model"));
    const char *pin = os_http_req_header(req, "X-OpenSeed-Peer");
    const char *maxp = os_http_req_header(req, "X-OpenSeed-Max-Price");
    pthread_condattr_t ca;
    pthread_t th;
    relay *r;
    int state;

    if (model == NULL || model[0] == '\0' || strlen(model) >= OS_INFER_SERVICE_MAX) {
        by_client_error(res, api, 400, "invalid_request_error", "invalid_model",
                        "\"model\" must name a service (see GET /v1/models)");
        return;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        by_client_error(res, api, 500, "api_error", NULL, "out of memory");
        return;
    }
    r->b = b;
    r->capi = api;
    r->body = json_incref(body);
    snprintf(r->service, sizeof(r->service), "%s", model);
    r->stream = api != BY_CLIENT_OPENAI_EMBEDDINGS && json_is_true(json_object_get(body, "stream"));
    r->include_usage =
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    r->cap.max_input = b->opt.max_input_price;
    r->cap.max_output = b->opt.max_output_price;
    r->refs = 2;
    os_buf_init(&r->pending, 4u << 20);
    os_buf_init(&r->scratch, 4u << 20);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (maxp != NULL && !parse_max_price(&r->cap, maxp)) {
        by_client_error(res, api, 400, "invalid_request_error", "invalid_max_price",
                        "X-OpenSeed-Max-Price must be \"IN,OUT\" in USDC per million tokens");
        r->refs = 1;
        relay_unref(r);
        return;
    }
    if (pin != NULL) {
        if (os_eip55_parse(r->pin, pin) != OS_OK) {
            by_client_error(res, api, 400, "invalid_request_error", "invalid_peer",
                            "X-OpenSeed-Peer must be a seller's node address (0x + 40 hex)");
            r->refs = 1;
            relay_unref(r);
            return;
        }
        r->pinned = true;
    }
    if (pthread_create(&th, NULL, relay_main, r) != 0) {
        by_client_error(res, api, 503, "api_error", NULL, "the gateway is overloaded; retry");
        r->refs = 1;
        relay_unref(r);
        return;
    }
    pthread_detach(th);

    pthread_mutex_lock(&r->mu);
    while (r->state == ST_RUNNING)
        pthread_cond_wait(&r->cv, &r->mu);
    state = r->state;
    pthread_mutex_unlock(&r->mu);

    if (state == ST_FAILED) {
        by_client_error(res, api, r->status, r->err_type, r->err_code[0] ? r->err_code : NULL,
                        "%s", r->err_msg);
        os_metric_inc(b->m_requests, 2);
    } else if (state == ST_ANSWERED) {
        answer_headers(res, r);
        if (os_http_res_json(res, r->status, json_incref(r->answer)) != OS_OK)
            by_client_error(res, api, 500, "api_error", NULL, "out of memory");
        os_metric_inc(b->m_requests, r->status < 400 ? 0 : 1);
        os_metric_add(b->m_spent, 0, r->final.cost);
    } else { /* ST_STREAMING: hand the reply over to the job */
        os_http_stream *st = NULL;
        add_header(res, "Cache-Control", "no-cache");
        pthread_mutex_lock(&r->mu);
        add_header(res, "X-OpenSeed-Peer", r->peer_hex);
        if (os_http_res_stream(res, &st, 200, "text/event-stream") != OS_OK) {
            r->client_gone = true;
            by_client_error(res, api, 503, "api_error", NULL, "too many streams; retry");
        } else {
            r->st = st;
            r->st_given = true;
        }
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        os_metric_inc(b->m_requests, 0);
    }
    relay_unref(r);
}
