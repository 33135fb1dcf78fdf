/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The echo server's core: the HTTP server and its routes, admission (API key, injected failures
 * and the seeded draw that spreads them over a share of requests), the token rules every usage
 * count follows, and the producers. A handler renders its whole answer up front as a plan;
 * whatever has to wait (latency, pacing, a slow first token) or stream is
 * written by a producer thread of its own, so no server thread ever sleeps. Producers are joinable
 * and kept in a list: finished ones are reaped when the next starts, the rest at sl_echo_stop.
 */
#include "echo_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/ct.h"
#include "openseed/rng.h"
#include "openseed/sse.h"

#define DEFAULT_LISTEN "127.0.0.1:0"
#define DEFAULT_MODEL "echo-1"
#define MAX_KEY_LEN 1024
#define MAX_MODEL_LEN 256
#define WAIT_SLICE_MS 20u
#define PPM 1000000u

typedef struct echo_job echo_job;

struct sl_echo {
    const os_logger *log;
    os_http_server *srv;
    char *model;
    char *key; /* NULL when no key is required; wiped on free */
    size_t key_len;
    unsigned latency_ms, tokens_per_s, slow_ms, retry_after_s, drop_after;
    atomic_int fail;   /* sl_echo_fail; sl_echo_set_fail may change it while serving */
    uint32_t fail_ppm; /* 1..999999: a share of inference requests; else every request */
    uint64_t fail_seed;
    atomic_bool stopping;
    atomic_uint_fast64_t requests, cancellations, next_id;
    /* numbers the inference requests for the failure rate */
    atomic_uint_fast64_t inferences;
    pthread_mutex_t mu; /* jobs */
    echo_job *jobs;
};

struct echo_job {
    sl_echo *e;
    os_http_stream *st;
    sl_echo_plan plan;
    unsigned delay_ms; /* before the first byte */
    bool drop;
    atomic_bool done;
    pthread_t thread;
    echo_job *next;
};

/* ---- tokens ---- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t sl_echo_token_end(const char *s, size_t len, size_t off)
{
    size_t i = off, rest;
    while (i < len && is_ws(s[i]))
        i++;
    while (i < len && !is_ws(s[i]))
        i++;
    /* whitespace at the very end belongs to the last token */
    for (rest = i; rest < len && is_ws(s[rest]); rest++) {
    }
    return rest == len ? len : i;
}

uint64_t sl_echo_tokens(const char *s, size_t len)
{
    uint64_t n = 0;
    size_t off = 0;
    while (off < len) {
        size_t end = sl_echo_token_end(s, len, off);
        bool word = false;
        for (size_t i = off; i < end; i++)
            word = word || !is_ws(s[i]);
        if (!word) /* only whitespace: no token */
            break;
        n++;
        off = end;
    }
    return n;
}

size_t sl_echo_cut(const char *s, size_t len, uint64_t max)
{
    size_t off = 0;
    for (uint64_t k = 0; k < max && off < len; k++)
        off = sl_echo_token_end(s, len, off);
    return off;
}

uint64_t sl_echo_content_tokens(const json_t *content)
{
    if (json_is_string(content))
        return sl_echo_tokens(json_string_value(content), json_string_length(content));
    uint64_t n = 0;
    size_t i;
    const json_t *part;
    if (json_is_array(content)) {
        json_array_foreach(content, i, part)
        {
            const json_t *text = json_object_get(part, "text");
            if (json_is_string(json_object_get(part, "type")) &&
                strcmp(json_string_value(json_object_get(part, "type")), "text") == 0 &&
                json_is_string(text))
                n += sl_echo_tokens(json_string_value(text), json_string_length(text));
        }
    }
    return n;
}

os_err sl_echo_content_text(os_buf *out, const json_t *content)
{
    if (json_is_string(content))
        return os_buf_append(out, json_string_value(content), json_string_length(content));
    size_t i;
    const json_t *part;
    if (json_is_array(content)) {
        json_array_foreach(content, i, part)
        {
            const json_t *type = json_object_get(part, "type");
            const json_t *text = json_object_get(part, "text");
            if (json_is_string(type) && strcmp(json_string_value(type), "text") == 0 &&
                json_is_string(text)) {
                os_err rc = os_buf_append(out, json_string_value(text), json_string_length(text));
                if (rc != OS_OK)
                    return rc;
            }
        }
    }
    return OS_OK;
}

os_err sl_echo_last_user_text(os_buf *out, const json_t *messages)
{
    const json_t *last = NULL, *m;
    size_t i;
    json_array_foreach(messages, i, m)
    {
        const json_t *role = json_object_get(m, "role");
        if (json_is_string(role) && strcmp(json_string_value(role), "user") == 0)
            last = m;
    }
    return last != NULL ? sl_echo_content_text(out, json_object_get(last, "content")) : OS_OK;
}

/* ---- plans ---- */

void sl_echo_plan_init(sl_echo_plan *p, bool sse)
{
    memset(p, 0, sizeof(*p));
    os_buf_init(&p->bytes, SL_ECHO_PLAN_MAX);
    p->sse = sse;
}

void sl_echo_plan_free(sl_echo_plan *p)
{
    if (p == NULL)
        return;
    os_buf_free(&p->bytes);
    free(p->ends);
    free(p->paced);
    p->ends = NULL;
    p->paced = NULL;
    p->n = p->cap = 0;
}

static os_err plan_mark(sl_echo_plan *p, bool paced)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        size_t *ends = realloc(p->ends, cap * sizeof(*ends));
        if (ends == NULL)
            return OS_ERR_NOMEM;
        p->ends = ends;
        bool *pc = realloc(p->paced, cap * sizeof(*pc));
        if (pc == NULL)
            return OS_ERR_NOMEM;
        p->paced = pc;
        p->cap = cap;
    }
    p->ends[p->n] = p->bytes.len;
    p->paced[p->n] = paced;
    p->n++;
    return OS_OK;
}

static int dump_cb(const char *buf, size_t len, void *ud)
{
    return os_buf_append(ud, buf, len) == OS_OK ? 0 : -1;
}

static os_err dump_compact(os_buf *out, json_t *v)
{
    if (v == NULL)
        return OS_ERR_NOMEM;
    int rc = json_dump_callback(v, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    return rc == 0 ? OS_OK : OS_ERR_NOMEM;
}

os_err sl_echo_plan_event(sl_echo_plan *p, const char *type, json_t *v, bool paced)
{
    os_buf data;
    os_buf_init(&data, SL_ECHO_PLAN_MAX);
    os_err rc = dump_compact(&data, v);
    if (rc == OS_OK)
        rc = os_sse_write(&p->bytes, type, NULL, data.data, data.len);
    os_buf_free(&data);
    return rc == OS_OK ? plan_mark(p, paced) : rc;
}

os_err sl_echo_plan_raw(sl_echo_plan *p, const char *text)
{
    os_err rc = os_sse_write(&p->bytes, NULL, NULL, text, strlen(text));
    return rc == OS_OK ? plan_mark(p, false) : rc;
}

os_err sl_echo_plan_json(sl_echo_plan *p, json_t *v)
{
    os_err rc = dump_compact(&p->bytes, v);
    return rc == OS_OK ? plan_mark(p, false) : rc;
}

/* ---- errors and admission ---- */

void sl_echo_error(os_http_response *res, sl_echo_api api, unsigned status, const char *type,
                   const char *msg)
{
    if (api == SL_ECHO_OPENAI) {
        os_http_res_error(res, status, type, NULL, "%s", msg);
        return;
    }
    json_t *v =
        json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type, "message", msg);
    if (v == NULL || os_http_res_json(res, status, v) != OS_OK)
        os_http_res_status(res, 500);
}

void sl_echo_set_fail(sl_echo *e, sl_echo_fail fail)
{
    atomic_store(&e->fail, (int)fail);
}

os_err sl_echo_fail_parse(sl_echo_fail *out, const char *s)
{
    static const char *const names[] = {"none", "500", "429", "drop-mid-stream",
                                        "slow-first-token"};
    for (size_t i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (sl_echo_fail)i;
            return OS_OK;
        }
    }
    return OS_ERR_INVALID;
}

static bool key_ok(const sl_echo *e, const os_http_request *req, sl_echo_api api)
{
    if (e->key == NULL)
        return true;
    const char *got;
    if (api == SL_ECHO_ANTHROPIC) {
        got = os_http_req_header(req, "x-api-key");
    } else {
        got = os_http_req_header(req, "Authorization");
        if (got != NULL && strncmp(got, "Bearer ", 7) == 0)
            got += 7;
        else
            got = NULL;
    }
    return got != NULL && os_ct_streq(got, e->key);
}

/* Whether the configured failure applies to this request (echo.h, "Failure rate"). */
static bool drawn(sl_echo *e, bool infer)
{
    bool rate = e->fail_ppm > 0 && e->fail_ppm < PPM;
    if (!infer)
        return !rate;
    /* numbered whatever decides its fate, so X-Echo-Fail on one request shifts no other's */
    uint64_t n = atomic_fetch_add(&e->inferences, 1);
    return !rate || os_rng_mix(e->fail_seed, n) % PPM < e->fail_ppm;
}

bool sl_echo_admit(sl_echo *e, const os_http_request *req, os_http_response *res, sl_echo_api api,
                   bool infer, sl_echo_fail *fail)
{
    atomic_fetch_add(&e->requests, 1);
    if (!key_ok(e, req, api)) {
        if (api == SL_ECHO_OPENAI)
            os_http_res_error(res, 401, "invalid_request_error", "invalid_api_key",
                              "Incorrect API key provided.");
        else
            sl_echo_error(res, api, 401, "authentication_error", "invalid x-api-key");
        return false;
    }
    *fail = drawn(e, infer) ? (sl_echo_fail)atomic_load(&e->fail) : SL_ECHO_FAIL_NONE;
    const char *h = os_http_req_header(req, "X-Echo-Fail");
    if (h != NULL && sl_echo_fail_parse(fail, h) != OS_OK) {
        sl_echo_error(res, api, 400, "invalid_request_error", "unknown X-Echo-Fail value");
        return false;
    }
    if (*fail == SL_ECHO_FAIL_500) {
        sl_echo_error(res, api, 500, api == SL_ECHO_OPENAI ? "server_error" : "api_error",
                      "echo: injected server error");
        return false;
    }
    if (*fail == SL_ECHO_FAIL_429) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%u", e->retry_after_s);
        if (api == SL_ECHO_OPENAI)
            os_http_res_error(res, 429, "requests", "rate_limit_exceeded",
                              "echo: injected rate limit");
        else
            sl_echo_error(res, api, 429, "rate_limit_error", "echo: injected rate limit");
        if (os_http_res_header(res, "Retry-After", ra) != OS_OK)
            os_http_res_status(res, 500);
        return false;
    }
    return true;
}

const char *sl_echo_model(const sl_echo *e)
{
    return e->model;
}

void sl_echo_new_id(sl_echo *e, char *out, size_t cap, const char *prefix)
{
    uint64_t n = atomic_fetch_add(&e->next_id, 1);
    snprintf(out, cap, "%secho%016" PRIx64, prefix, n);
}

/* ---- producers ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Waits until the monotonic time `until`; false when the client left or the server is stopping. */
static bool wait_until(echo_job *j, uint64_t until)
{
    for (;;) {
        if (atomic_load(&j->e->stopping) || os_http_stream_cancelled(j->st))
            return false;
        uint64_t t = now_ms();
        if (t >= until)
            return true;
        sleep_ms(until - t < WAIT_SLICE_MS ? (unsigned)(until - t) : WAIT_SLICE_MS);
    }
}

/* Where drop-mid-stream cuts: after drop_after token deltas, and never after the last piece. */
static size_t drop_point(const echo_job *j)
{
    const sl_echo_plan *p = &j->plan;
    size_t cut = p->n - 1, seen = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->paced[i] && ++seen == j->e->drop_after) {
            cut = i + 1;
            break;
        }
    }
    return cut < p->n - 1 ? cut : p->n - 1;
}

static void *produce(void *arg)
{
    echo_job *j = arg;
    sl_echo *e = j->e;
    const sl_echo_plan *p = &j->plan;
    bool ok = wait_until(j, now_ms() + j->delay_ms);
    size_t cut = j->drop ? drop_point(j) : p->n;
    uint64_t t0 = 0, k = 0;

    for (size_t i = 0; ok && i < cut; i++) {
        if (p->paced[i]) {
            if (k == 0)
                t0 = now_ms();
            else if (e->tokens_per_s > 0)
                ok = wait_until(j, t0 + k * 1000u / e->tokens_per_s);
            k++;
        }
        size_t from = i ? p->ends[i - 1] : 0;
        ok = ok && os_http_stream_write(j->st, p->bytes.data + from, p->ends[i] - from) == OS_OK;
    }
    if (ok && j->drop && p->n == 1) /* one JSON body: send half of it */
        ok = os_http_stream_write(j->st, p->bytes.data, p->bytes.len / 2) == OS_OK;
    if (!ok && !atomic_load(&e->stopping) && os_http_stream_cancelled(j->st)) {
        atomic_fetch_add(&e->cancellations, 1);
        os_log_info(e->log, "echo: client went away mid-answer; producer stopped");
    }
    os_http_stream_close(j->st, ok && !j->drop);
    atomic_store(&j->done, true);
    return NULL;
}

static void job_free(echo_job *j)
{
    sl_echo_plan_free(&j->plan);
    free(j);
}

/* Joins finished producers (all of them when `all`). */
static void reap(sl_echo *e, bool all)
{
    pthread_mutex_lock(&e->mu);
    echo_job **pp = &e->jobs;
    while (*pp != NULL) {
        echo_job *j = *pp;
        if (all || atomic_load(&j->done)) {
            *pp = j->next;
            pthread_join(j->thread, NULL);
            job_free(j);
        } else {
            pp = &j->next;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

void sl_echo_send(sl_echo *e, os_http_response *res, sl_echo_plan *plan, sl_echo_fail fail)
{
    unsigned delay = e->latency_ms + (fail == SL_ECHO_FAIL_SLOW_FIRST ? e->slow_ms : 0);
    bool drop = fail == SL_ECHO_FAIL_DROP;
    const char *ct = plan->sse ? "text/event-stream" : "application/json";

    if (plan->n == 0) {
        sl_echo_plan_free(plan);
        os_http_res_status(res, 500);
        return;
    }
    if (!plan->sse && delay == 0 && !drop) {
        if (os_http_res_body(res, ct, plan->bytes.data, plan->bytes.len) == OS_OK)
            os_http_res_status(res, 200);
        sl_echo_plan_free(plan);
        return;
    }
    reap(e, false);
    echo_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        sl_echo_plan_free(plan);
        os_http_res_status(res, 500);
        return;
    }
    j->e = e;
    j->plan = *plan;
    memset(plan, 0, sizeof(*plan));
    j->delay_ms = delay;
    j->drop = drop;
    atomic_init(&j->done, false);
    os_err rc = os_http_res_stream(res, &j->st, 200, ct);
    if (rc != OS_OK) {
        job_free(j);
        os_http_res_error(res, rc == OS_ERR_TOOBIG ? 503 : 500, "server_error", NULL,
                          "echo: cannot stream now");
        return;
    }
    pthread_mutex_lock(&e->mu);
    if (pthread_create(&j->thread, NULL, produce, j) != 0) {
        pthread_mutex_unlock(&e->mu);
        os_http_res_error(res, 500, "server_error", NULL, "echo: cannot start a producer");
        os_http_stream_close(j->st, false);
        job_free(j);
        return;
    }
    j->next = e->jobs;
    e->jobs = j;
    pthread_mutex_unlock(&e->mu);
}

/* ---- the server ---- */

static void healthz(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    (void)req;
    json_t *v = json_pack("{s:s}", "status", "ok");
    if (v == NULL || os_http_res_json(res, 200, v) != OS_OK)
        os_http_res_status(res, 500);
}

static const os_http_route routes[] = {
    {"POST", "/v1/chat/completions", sl_echo_openai_chat, 0},
    {"POST", "/v1/embeddings", sl_echo_openai_embeddings, 0},
    {"POST", "/v1/messages", sl_echo_anthropic_messages, 0},
    {"GET", "/v1/models", sl_echo_openai_models, 0},
    {"GET", "/healthz", healthz, 1},
};

static char *dup_str(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return NULL;
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

os_err sl_echo_new(sl_echo **out, const sl_echo_config *cfg, const os_logger *log)
{
    static const sl_echo_config zero;
    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (cfg == NULL)
        cfg = &zero;
    if (cfg->fail > SL_ECHO_FAIL_SLOW_FIRST)
        return OS_ERR_INVALID;
    sl_echo *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return OS_ERR_NOMEM;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        free(e);
        return OS_ERR_NOMEM;
    }
    e->log = log;
    e->latency_ms = cfg->latency_ms;
    e->tokens_per_s = cfg->tokens_per_s;
    atomic_store(&e->fail, (int)cfg->fail);
    e->fail_ppm = cfg->fail_ppm;
    e->fail_seed = cfg->fail_seed;
    e->slow_ms = cfg->slow_first_token_ms ? cfg->slow_first_token_ms : 1000;
    e->retry_after_s = cfg->retry_after_s ? cfg->retry_after_s : 1;
    e->drop_after = cfg->drop_after ? cfg->drop_after : 3;
    atomic_init(&e->stopping, false);
    atomic_init(&e->requests, 0);
    atomic_init(&e->cancellations, 0);
    atomic_init(&e->inferences, 0);
    atomic_init(&e->next_id, 1);

    os_err rc = OS_ERR_INVALID;
    e->model =
        dup_str(cfg->model != NULL && cfg->model[0] ? cfg->model : DEFAULT_MODEL, MAX_MODEL_LEN);
    if (e->model == NULL)
        goto fail;
    if (cfg->api_key != NULL && cfg->api_key[0] != '\0') {
        e->key = dup_str(cfg->api_key, MAX_KEY_LEN);
        if (e->key == NULL)
            goto fail;
        e->key_len = strlen(e->key);
    }
    os_http_config hc = {
        .listen = cfg->listen != NULL ? cfg->listen : DEFAULT_LISTEN,
        .threads = cfg->threads,
        .max_body = cfg->max_body ? cfg->max_body : ((size_t)1 << 20),
        .drain_timeout_ms = 2000,
        .log = log,
        /* its one client is a seller (or a benchmark) on loopback, with up to
         * upstream_concurrency connections: no per-address cap below the total */
        .max_connections = 1024,
        .per_ip_connections = 1024,
    };
    rc = os_http_server_new(&e->srv, &hc, routes, sizeof(routes) / sizeof(routes[0]), e);
    if (rc != OS_OK)
        goto fail;
    *out = e;
    return OS_OK;
fail:
    sl_echo_free(e);
    return rc;
}

os_err sl_echo_start(sl_echo *e)
{
    if (e == NULL)
        return OS_ERR_INVALID;
    atomic_store(&e->stopping, false);
    os_err rc = os_http_server_start(e->srv);
    if (rc == OS_OK)
        os_log_info(e->log, "echo upstream listening on port %u", (unsigned)sl_echo_port(e));
    return rc;
}

uint16_t sl_echo_port(const sl_echo *e)
{
    return e != NULL && e->srv != NULL ? os_http_server_port(e->srv) : 0;
}

void sl_echo_stop(sl_echo *e)
{
    if (e == NULL)
        return;
    /* Producers notice `stopping` within a wait slice and cut their streams, so the drain is short.
     */
    atomic_store(&e->stopping, true);
    if (e->srv != NULL)
        os_http_server_stop(e->srv);
    reap(e, true);
}

void sl_echo_free(sl_echo *e)
{
    if (e == NULL)
        return;
    sl_echo_stop(e);
    os_http_server_free(e->srv);
    if (e->key != NULL) {
        os_wipe(e->key, e->key_len);
        free(e->key);
    }
    free(e->model);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

uint64_t sl_echo_requests(const sl_echo *e)
{
    return e != NULL ? atomic_load(&((sl_echo *)e)->requests) : 0;
}

uint64_t sl_echo_inferences(const sl_echo *e)
{
    return e != NULL ? atomic_load(&((sl_echo *)e)->inferences) : 0;
}

uint64_t sl_echo_cancellations(const sl_echo *e)
{
    return e != NULL ? atomic_load(&((sl_echo *)e)->cancellations) : 0;
}
