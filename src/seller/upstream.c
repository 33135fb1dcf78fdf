/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's upstream adapters (upstream.h), the transport half: one POST to the model server
 * with only our own headers and the body upstream_wire.c builds, the answer read back either whole
 * or as SSE events handed on one by one (upstream_wire.c takes usage and end markers from them),
 * and the call's outcome. Time limits curl cannot express (a first-byte deadline and an idle limit,
 * both in milliseconds) are kept by one watchdog thread per upstream that trips a call's abort
 * flag; the caller's own abort flag is relayed the same way. The API key lives in sodium_malloc'd
 * memory as the ready header value and is kept out of every message, log line and error body we
 * hand back.
 */
#include "upstream_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "openseed/buf.h"
#include "openseed/ct.h"
#include "openseed/record.h"
#include "openseed/sse.h"

#define BASE_MAX 2048
#define KEY_MAX 1024
#define MODEL_MAX 256
#define URL_MAX (BASE_MAX + 32)
#define WATCH_TICK_MS 100      /* how often a caller's abort flag is looked at */
#define RETRY_AFTER_MAX 86400u /* a day; longer hints are clamped */
#define ANTHROPIC_VERSION "2023-06-01"

#define DEFAULT_CONNECT_MS 5000L
#define DEFAULT_FIRST_BYTE_MS 60000L
#define DEFAULT_IDLE_MS 60000L
#define DEFAULT_TIMEOUT_MS 600000L
#define DEFAULT_MAX_RESPONSE ((size_t)16 << 20)
#define DEFAULT_MAX_EVENT ((size_t)256 << 10)
#define DEFAULT_POOL 8u

enum { WHY_NONE = 0, WHY_USER, WHY_FIRST_BYTE, WHY_IDLE };

/* One running call as the watchdog sees it; lives on the caller's stack while it is listed. */
typedef struct watch {
    atomic_int abort;       /* the flag the HTTP client polls */
    const atomic_int *user; /* the caller's flag, or NULL */
    uint64_t t0;
    bool timed;                /* a stream: first-byte and idle limits apply */
    atomic_bool got;           /* body bytes arrived */
    atomic_uint_fast64_t last; /* when they last did (ms) */
    atomic_int why;            /* WHY_* that tripped abort */
    struct watch *prev, *next;
} watch;

struct sl_upstream {
    char base[BASE_MAX + 1]; /* without a trailing "/" or "/v1" */
    sl_upstream_kind kind;
    char *auth;      /* sodium_malloc'd header value ("Bearer KEY" or KEY); NULL = no key */
    const char *key; /* the key inside auth */
    size_t key_len;
    long first_byte_ms, idle_ms, timeout_ms;
    size_t max_response, max_event;
    const os_logger *log;
    os_http_client *http;
    pthread_mutex_t mu; /* guards calls and stopping */
    pthread_cond_t cv;
    bool stopping;
    watch *calls;
    pthread_t wd;
    bool wd_running;
};

/* Everything one call keeps while the answer arrives. */
typedef struct call {
    sl_upstream *u;
    const sl_upstream_req *req;
    sl_upstream_result *res;
    sl_upstream_wire api;
    bool stream;
    uint64_t t0;
    watch w;
    bool started; /* body bytes arrived (on_start has run for a 2xx stream) */
    bool ok2xx;
    bool cancelled; /* on_start/on_event refused, or the caller's abort flag was seen */
    bool toobig;
    const char *why; /* our own reason for stopping the transfer */
    os_buf body;     /* a non-stream answer, or any error answer */
    os_sse_parser *sse;
    os_buf ev; /* the event being handed on */
    sl_upstream_tally tally;
} call;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the watchdog ---------------------------------------------------------------------------- */

static void trip(watch *w, int why)
{
    int none = WHY_NONE;
    (void)atomic_compare_exchange_strong(&w->why, &none, why);
    atomic_store(&w->abort, 1);
}

/* Trips w when a limit has passed; returns when w next needs a look (UINT64_MAX: never). */
static uint64_t watch_check(const sl_upstream *u, watch *w, uint64_t now)
{
    uint64_t deadline;

    if (atomic_load(&w->abort))
        return UINT64_MAX;
    if (w->user != NULL && atomic_load(w->user) != 0) {
        trip(w, WHY_USER);
        return UINT64_MAX;
    }
    if (!w->timed) {
        /* A whole answer arrives only once it is generated: only the call's own total timeout
         * bounds it, or a long answer would be cut (and not charged) however healthy. */
        deadline = UINT64_MAX;
    } else if (atomic_load(&w->got)) {
        deadline = atomic_load(&w->last) + (uint64_t)u->idle_ms;
        if (now >= deadline) {
            trip(w, WHY_IDLE);
            return UINT64_MAX;
        }
    } else {
        deadline = w->t0 + (uint64_t)u->first_byte_ms;
        if (now >= deadline) {
            trip(w, WHY_FIRST_BYTE);
            return UINT64_MAX;
        }
        /* a first byte arriving now starts the idle clock, which may run out sooner */
        if (deadline > now + (uint64_t)u->idle_ms)
            deadline = now + (uint64_t)u->idle_ms;
    }
    if (w->user != NULL && deadline > now + WATCH_TICK_MS)
        deadline = now + WATCH_TICK_MS;
    return deadline;
}

static void *watchdog(void *arg)
{
    sl_upstream *u = arg;

    pthread_mutex_lock(&u->mu);
    while (!u->stopping) {
        uint64_t now = now_ms(), next = UINT64_MAX;
        for (watch *w = u->calls; w != NULL; w = w->next) {
            uint64_t d = watch_check(u, w, now);
            next = d < next ? d : next;
        }
        if (next == UINT64_MAX) {
            pthread_cond_wait(&u->cv, &u->mu);
        } else {
            /* the condvar runs on CLOCK_MONOTONIC, the clock now_ms reads */
            struct timespec ts = {(time_t)(next / 1000u), (long)(next % 1000u) * 1000000L};
            (void)pthread_cond_timedwait(&u->cv, &u->mu, &ts);
        }
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

static void watch_add(sl_upstream *u, watch *w)
{
    pthread_mutex_lock(&u->mu);
    w->prev = NULL;
    w->next = u->calls;
    if (u->calls != NULL)
        u->calls->prev = w;
    u->calls = w;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

static void watch_remove(sl_upstream *u, watch *w)
{
    pthread_mutex_lock(&u->mu);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        u->calls = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&u->mu);
}

/* ---- set-up ---------------------------------------------------------------------------------- */

/* Copies the base URL into u->base without trailing "/" and one trailing "/v1". */
static os_err set_base(sl_upstream *u, const char *url)
{
    size_t n, skip;

    if (url == NULL)
        return OS_ERR_INVALID;
    n = strnlen(url, BASE_MAX + 1);
    if (n > BASE_MAX)
        return OS_ERR_INVALID;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return OS_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)url[i];
        /* visible ASCII only; a query or fragment would end up in front of our paths */
        if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#')
            return OS_ERR_INVALID;
    }
    while (n > skip && url[n - 1] == '/')
        n--;
    if (n >= skip + 3 && memcmp(url + n - 3, "/v1", 3) == 0)
        n -= 3;
    while (n > skip && url[n - 1] == '/')
        n--;
    if (n == skip || url[skip] == '/')
        return OS_ERR_INVALID; /* no host */
    memcpy(u->base, url, n);
    u->base[n] = '\0';
    return OS_OK;
}

/* Builds the key's header value in guarded memory: "Bearer KEY" (OpenAI, Ollama) or KEY. */
static os_err set_key(sl_upstream *u, const char *key)
{
    const char *prefix = u->kind == SL_UPSTREAM_KIND_ANTHROPIC ? "" : "Bearer ";
    size_t pn = strlen(prefix), kn;

    if (key == NULL || key[0] == '\0')
        return OS_OK;
    kn = strnlen(key, KEY_MAX + 1);
    if (kn > KEY_MAX)
        return OS_ERR_INVALID;
    for (size_t i = 0; i < kn; i++)
        if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
            return OS_ERR_INVALID; /* a header value must not carry CR, LF or controls */
    u->auth = sodium_malloc(pn + kn + 1);
    if (u->auth == NULL)
        return OS_ERR_NOMEM;
    memcpy(u->auth, prefix, pn);
    memcpy(u->auth + pn, key, kn);
    u->auth[pn + kn] = '\0';
    u->key = u->auth + pn;
    u->key_len = kn;
    (void)sodium_mprotect_readonly(u->auth);
    return OS_OK;
}

os_err sl_upstream_new(sl_upstream **out, const sl_upstream_config *cfg)
{
    sl_upstream *u;
    pthread_condattr_t ca;
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (cfg == NULL || cfg->kind > SL_UPSTREAM_KIND_OLLAMA || cfg->connect_timeout_ms < 0 ||
        cfg->first_byte_timeout_ms < 0 || cfg->idle_timeout_ms < 0 || cfg->timeout_ms < 0 ||
        cfg->pool_size > OS_HTTP_CLIENT_POOL_MAX)
        return OS_ERR_INVALID;
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return OS_ERR_NOMEM;
    u->kind = cfg->kind;
    u->log = cfg->log;
    u->first_byte_ms =
        cfg->first_byte_timeout_ms ? cfg->first_byte_timeout_ms : DEFAULT_FIRST_BYTE_MS;
    u->idle_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : DEFAULT_IDLE_MS;
    u->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    u->max_response = cfg->max_response ? cfg->max_response : DEFAULT_MAX_RESPONSE;
    u->max_event = cfg->max_event ? cfg->max_event : DEFAULT_MAX_EVENT;
    if (pthread_mutex_init(&u->mu, NULL) != 0) {
        free(u);
        return OS_ERR_NOMEM;
    }
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&u->mu);
        free(u);
        return OS_ERR_NOMEM;
    }
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&u->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&u->mu);
        free(u);
        return OS_ERR_NOMEM;
    }
    pthread_condattr_destroy(&ca);

    rc = set_base(u, cfg->base_url);
    if (rc == OS_OK)
        rc = set_key(u, cfg->api_key);
    if (rc == OS_OK) {
        os_http_client_config hc = {
            .connect_timeout_ms =
                cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS,
            .timeout_ms = u->timeout_ms,
            .pool_size = cfg->pool_size ? cfg->pool_size : DEFAULT_POOL,
            .user_agent = "openseed-seller/" OPENSEED_VERSION,
        };
        rc = os_http_client_new(&u->http, &hc);
    }
    if (rc == OS_OK) {
        if (pthread_create(&u->wd, NULL, watchdog, u) != 0)
            rc = OS_ERR_NOMEM;
        else
            u->wd_running = true;
    }
    if (rc != OS_OK) {
        sl_upstream_free(u);
        return rc;
    }
    *out = u;
    return OS_OK;
}

void sl_upstream_free(sl_upstream *u)
{
    if (u == NULL)
        return;
    if (u->wd_running) {
        pthread_mutex_lock(&u->mu);
        u->stopping = true;
        pthread_cond_signal(&u->cv);
        pthread_mutex_unlock(&u->mu);
        pthread_join(u->wd, NULL);
    }
    os_http_client_free(u->http);
    if (u->auth != NULL)
        sodium_free(u->auth); /* zeroes it before releasing */
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

unsigned sl_upstream_apis(const sl_upstream *u)
{
    if (u == NULL)
        return 0;
    if (u->kind == SL_UPSTREAM_KIND_ANTHROPIC)
        return OS_API_ANTHROPIC_MESSAGES;
    return OS_API_OPENAI_CHAT | OS_API_OPENAI_EMBEDDINGS;
}

/* ---- reading answers ------------------------------------------------------------------------- */

static os_err on_sse(void *ctx, const os_sse_event *e)
{
    call *c = ctx;
    const char *type = strcmp(e->type, "message") == 0 ? NULL : e->type;
    os_err rc;

    if (c->tally.done)
        return OS_OK; /* nothing follows the end marker */
    sl_upstream_event_(&c->tally, c->api, e->data, e->data_len);
    os_buf_reset(&c->ev);
    rc = os_sse_write(&c->ev, type, NULL, e->data, e->data_len);
    if (rc == OS_OK)
        rc = os_buf_append_byte(&c->ev, 0); /* handed on as a C string too */
    if (rc != OS_OK) {
        c->why = "an event too large to hand on";
        return rc;
    }
    if (c->res->events == 0)
        c->res->ttft_ms = now_ms() - c->t0;
    if (c->req->on_event != NULL &&
        c->req->on_event(c->req->ud, (const char *)c->ev.data, c->ev.len - 1) != OS_OK) {
        c->cancelled = true;
        return OS_ERR_NETWORK;
    }
    c->res->events++;
    return OS_OK;
}

static int on_body(void *ud, const os_http_client_res *hres, const uint8_t *data, size_t len)
{
    call *c = ud;
    os_err rc;

    if (c->req->abort != NULL && atomic_load(c->req->abort) != 0) {
        c->cancelled = true;
        return 1;
    }
    if (len == 0)
        return 0;
    atomic_store(&c->w.last, now_ms());
    atomic_store(&c->w.got, true);
    if (!c->started) {
        c->started = true;
        c->ok2xx = hres->status >= 200 && hres->status <= 299;
        if (!c->stream || !c->ok2xx)
            c->res->ttft_ms = now_ms() - c->t0;
        if (c->stream && c->ok2xx && c->req->on_start != NULL &&
            c->req->on_start(c->req->ud, hres->status) != OS_OK) {
            c->cancelled = true;
            return 1;
        }
    }
    if (!c->stream || !c->ok2xx) {
        if (os_buf_append(&c->body, data, len) != OS_OK) {
            c->toobig = true;
            c->why = "an answer larger than its cap";
            return 1;
        }
        return 0;
    }
    rc = os_sse_feed(c->sse, data, len);
    if (rc != OS_OK) {
        if (!c->cancelled && c->why == NULL)
            c->why = rc == OS_ERR_TOOBIG ? "an event larger than its cap" : "a bad event";
        return 1;
    }
    return 0;
}

/* ---- outcomes -------------------------------------------------------------------------------- */

static void set_error(sl_upstream_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(sl_upstream_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
}

/* The seconds form of Retry-After, clamped; 0 for anything else. */
static uint64_t retry_after(const os_http_client_res *hres)
{
    const char *s = os_http_client_res_header(hres, "Retry-After");
    uint64_t v = 0;

    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return 0; /* an HTTP-date: not worth a clock comparison here */
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > RETRY_AFTER_MAX)
            v = RETRY_AFTER_MAX;
    }
    return v;
}

/* A non-2xx answer: its JSON body kept (unless it could show the key), else a generic one. */
static void http_error(call *c, long status, const os_http_client_res *hres)
{
    sl_upstream_result *res = c->res;
    const char *t;

    res->outcome = SL_UPSTREAM_HTTP_ERROR;
    if (status == 429 || status == 503)
        res->retry_after_s = retry_after(hres);
    res->body = sl_upstream_error_body_(status, &c->body, c->toobig, c->u->key, c->u->key_len);
    t = sl_upstream_error_type_(res->body);
    set_error(res, "upstream answered HTTP %ld%s%s%s", status, *t ? " (" : "", t, *t ? ")" : "");
}

/* A complete 2xx non-stream answer: its JSON and usage. */
static void whole_answer(call *c)
{
    sl_upstream_result *res = c->res;
    json_t *v = sl_upstream_parse_object_(&c->body);

    if (v == NULL) {
        res->outcome = SL_UPSTREAM_BROKEN;
        set_error(res, "upstream answered with something that is not a JSON object");
        return;
    }
    if (sl_upstream_holds_key_(c->u->key, c->u->key_len, &c->body)) {
        json_decref(v);
        res->outcome = SL_UPSTREAM_BROKEN;
        set_error(res, "upstream answer withheld: it held the seller's API key");
        return;
    }
    sl_upstream_answer_usage_(&c->tally, c->api, v);
    res->body = v;
    res->outcome = SL_UPSTREAM_OK;
}

static const char *outcome_name(sl_upstream_outcome o)
{
    switch (o) {
    case SL_UPSTREAM_OK:
        return "ok";
    case SL_UPSTREAM_HTTP_ERROR:
        return "http_error";
    case SL_UPSTREAM_UNREACHABLE:
        return "unreachable";
    case SL_UPSTREAM_BROKEN:
        return "broken";
    case SL_UPSTREAM_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

static void classify(call *c, os_err rc, const os_http_client_res *hres,
                     const os_http_client_error *herr)
{
    sl_upstream_result *res = c->res;
    sl_upstream *u = c->u;
    int why = atomic_load(&c->w.why);
    long status = hres->status;

    res->status = status;
    if (c->cancelled || why == WHY_USER) {
        res->outcome = SL_UPSTREAM_CANCELLED;
        set_error(res, "cancelled after %" PRIu64 " events", res->events);
    } else if (status != 0 && (status < 200 || status > 299)) {
        http_error(c, status, hres);
    } else if (!c->started) {
        if (rc == OS_OK) {
            res->outcome = SL_UPSTREAM_BROKEN;
            set_error(res, "upstream answered HTTP %ld with an empty body", status);
        } else {
            res->outcome = SL_UPSTREAM_UNREACHABLE;
            if (why == WHY_FIRST_BYTE)
                set_error(res, "upstream sent nothing within %ld ms", u->first_byte_ms);
            else
                set_error(res, "upstream unreachable: %s", herr->message);
        }
    } else if (!c->stream) {
        if (rc == OS_OK) {
            whole_answer(c);
        } else {
            res->outcome = SL_UPSTREAM_BROKEN;
            if (why == WHY_IDLE)
                set_error(res, "upstream answer stalled for %ld ms", u->idle_ms);
            else if (c->why != NULL)
                set_error(res, "upstream sent %s", c->why);
            else
                set_error(res, "upstream answer cut short: %s", herr->message);
        }
    } else if (rc == OS_OK && c->tally.done) {
        res->outcome = SL_UPSTREAM_OK;
    } else {
        res->outcome = SL_UPSTREAM_BROKEN;
        if (why == WHY_IDLE)
            set_error(res, "upstream stream silent for %ld ms after %" PRIu64 " events", u->idle_ms,
                      res->events);
        else if (c->why != NULL)
            set_error(res, "upstream sent %s after %" PRIu64 " events", c->why, res->events);
        else if (rc == OS_OK)
            set_error(res, "upstream stream ended without its end marker after %" PRIu64 " events",
                      res->events);
        else
            set_error(res, "upstream stream broke off after %" PRIu64 " events: %s", res->events,
                      herr->message);
    }
    if (res->outcome != SL_UPSTREAM_HTTP_ERROR)
        sl_upstream_settle_usage_(res, &c->tally, c->stream);
}

static void log_call(const call *c, uint64_t ms)
{
    const sl_upstream_result *res = c->res;
    os_log_level lvl = res->outcome == SL_UPSTREAM_OK || res->outcome == SL_UPSTREAM_CANCELLED
                           ? OS_LOG_DEBUG
                           : OS_LOG_INFO;
    os_log_event ev;

    if (!os_log_begin(&ev, c->u->log, lvl, "upstream call"))
        return;
    os_log_kv(&ev, "api", "%s", c->req->api);
    os_log_kv(&ev, "stream", "%s", c->stream ? "true" : "false");
    os_log_kv(&ev, "outcome", "%s", outcome_name(res->outcome));
    os_log_kv(&ev, "status", "%ld", res->status);
    os_log_kv(&ev, "events", "%" PRIu64, res->events);
    os_log_kv(&ev, "ms", "%" PRIu64, ms);
    if (res->outcome != SL_UPSTREAM_OK)
        os_log_kv(&ev, "error", "%s", res->error); /* built to be safe to log */
    os_log_end(&ev);
}

/* ---- one call -------------------------------------------------------------------------------- */

static os_err check_req(const sl_upstream *u, const sl_upstream_req *req, sl_upstream_wire *api,
                        sl_upstream_result *res)
{
    unsigned bit = os_api_from_name(req->api);

    if (bit == 0) {
        set_error(res, "unknown API");
        return OS_ERR_INVALID;
    }
    if ((sl_upstream_apis(u) & bit) == 0) {
        set_error(res, "this upstream does not speak %s", req->api);
        return OS_ERR_UNSUPPORTED;
    }
    *api = bit == OS_API_OPENAI_CHAT         ? SL_UPSTREAM_WIRE_CHAT
           : bit == OS_API_OPENAI_EMBEDDINGS ? SL_UPSTREAM_WIRE_EMBEDDINGS
                                             : SL_UPSTREAM_WIRE_MESSAGES;
    if (req->model == NULL || req->model[0] == '\0' || strlen(req->model) > MODEL_MAX ||
        !json_is_object(req->body)) {
        set_error(res, "bad upstream request (model or body)");
        return OS_ERR_INVALID;
    }
    if (*api == SL_UPSTREAM_WIRE_EMBEDDINGS
            ? req->stream
            : (req->max_tokens == 0 || req->max_tokens > INT64_MAX)) {
        set_error(res, "bad upstream request (stream or output cap)");
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

static const char *api_path(sl_upstream_wire api)
{
    switch (api) {
    case SL_UPSTREAM_WIRE_CHAT:
        return "/v1/chat/completions";
    case SL_UPSTREAM_WIRE_EMBEDDINGS:
        return "/v1/embeddings";
    case SL_UPSTREAM_WIRE_MESSAGES:
        return "/v1/messages";
    }
    return "";
}

os_err sl_upstream_call(sl_upstream *u, sl_upstream_result *res, const sl_upstream_req *req)
{
    os_http_header hs[6];
    size_t nh = 0;
    os_http_client_req hr = {0};
    os_http_client_res hres;
    os_http_client_error herr = {0};
    char url[URL_MAX];
    char *body = NULL;
    size_t body_len = 0;
    call c;
    os_err rc;

    if (res == NULL)
        return OS_ERR_INVALID;
    memset(res, 0, sizeof(*res));
    res->outcome = SL_UPSTREAM_UNREACHABLE; /* until it has been tried */
    if (u == NULL || req == NULL) {
        set_error(res, "bad argument");
        return OS_ERR_INVALID;
    }
    memset(&c, 0, sizeof(c));
    rc = check_req(u, req, &c.api, res);
    if (rc != OS_OK)
        return rc;
    c.u = u;
    c.req = req;
    c.res = res;
    c.stream = req->stream;
    rc = sl_upstream_body_(&body, &body_len, req, c.api);
    if (rc != OS_OK) {
        set_error(res, "out of memory");
        return rc;
    }
    snprintf(url, sizeof(url), "%s%s", u->base, api_path(c.api));
    os_buf_init(&c.body, u->max_response);
    /* os_sse_write can turn a one-byte line into "data: \n": room for the worst case */
    os_buf_init(&c.ev, u->max_event > (SIZE_MAX - 256) / 8 ? SIZE_MAX : u->max_event * 8 + 256);
    if (c.stream) {
        rc = os_sse_parser_new(&c.sse, u->max_event, u->max_event, on_sse, &c);
        if (rc != OS_OK) {
            os_wipe(body, body_len);
            free(body);
            set_error(res, "out of memory");
            return rc;
        }
    }

    hs[nh++] = (os_http_header){"Content-Type", "application/json"};
    hs[nh++] = (os_http_header){"Accept", c.stream ? "text/event-stream" : "application/json"};
    if (c.api == SL_UPSTREAM_WIRE_MESSAGES) {
        if (u->auth != NULL)
            hs[nh++] = (os_http_header){"x-api-key", u->auth};
        hs[nh++] = (os_http_header){"anthropic-version", ANTHROPIC_VERSION};
    } else if (u->auth != NULL) {
        hs[nh++] = (os_http_header){"Authorization", u->auth};
    }
    hr.method = "POST";
    hr.url = url;
    hr.headers = hs;
    hr.n_headers = nh;
    hr.body = body;
    hr.body_len = body_len;
    hr.timeout_ms = u->timeout_ms;
    hr.max_body = SIZE_MAX; /* our own caps apply, in on_body */
    hr.on_body = on_body;
    hr.on_body_ud = &c;
    hr.abort = &c.w.abort;

    if (req->abort != NULL && atomic_load(req->abort) != 0) {
        /* cancelled before it started: nothing is sent */
        os_sse_parser_free(c.sse);
        os_wipe(body, body_len);
        free(body);
        res->outcome = SL_UPSTREAM_CANCELLED;
        set_error(res, "cancelled before the call");
        return OS_OK;
    }
    c.t0 = now_ms();
    atomic_init(&c.w.abort, 0);
    atomic_init(&c.w.got, false);
    atomic_init(&c.w.last, 0);
    atomic_init(&c.w.why, WHY_NONE);
    c.w.user = req->abort;
    c.w.t0 = c.t0;
    c.w.timed = c.stream;
    watch_add(u, &c.w);
    os_http_client_res_init(&hres);
    rc = os_http_client_do(u->http, &hres, &herr, &hr);
    watch_remove(u, &c.w);
    classify(&c, rc, &hres, &herr);
    log_call(&c, now_ms() - c.t0);

    os_http_client_res_free(&hres);
    os_sse_parser_free(c.sse);
    os_buf_free(&c.ev);
    os_buf_free(&c.body);
    os_wipe(body, body_len); /* the buyer's request: private */
    free(body);
    return OS_OK;
}
