/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's announcer (announce.h). One thread runs a small state machine per registry
 * (announce; then heartbeat at the interval that registry asked for), each with its own timer
 * and its own backoff, and sleeps on a condition variable until the earliest timer, a record
 * change or the stop. Requests go out one at a time through one HTTP client; the stop sets the
 * client's abort flag, so it never waits for a slow or silent registry. The node key lives in
 * sodium_malloc memory (locked, guarded, read-only between uses) and is never logged. After each
 * message the thread publishes what the admin API shows of that registry (reg_pub) under the
 * mutex; a registry URL's user info appears neither there nor in the logs.
 */
#include "announce.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "openseed/hex.h"
#include "openseed/http_client.h"
#include "openseed/json.h"
#include "openseed/secp.h"

#define DEFAULT_MIN_BACKOFF_MS 1000u
#define DEFAULT_MAX_BACKOFF_MS 60000u
#define DEFAULT_TIMEOUT_MS 10000L
#define CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_INTERVAL_MS 30000u   /* when an answer does not say */
#define MAX_INTERVAL_S 86400u        /* a registry cannot put us to sleep for longer */
#define MAX_BACKOFF_CAP_MS 86400000u /* a configured max_backoff above this is refused */
#define MAX_REGISTRIES 64
#define MAX_URL_LEN 1024
_Static_assert(SL_REGISTRY_URL_MAX > MAX_URL_LEN, "a status holds any registry URL");
#define MAX_REPLY_BYTES (64 * 1024)
#define REPLY_DEPTH 8
#define STALE_RETRIES 3             /* immediate retries after a 409 before backing off */
#define MAX_SEQ_JUMP_MS 86400000ull /* how far ahead of our clock a 409 may move the seq */
#define MAX_RETRY_AFTER_S 86400u
#define CODE_MAX 32

typedef enum outcome {
    OUT_OK,      /* accepted */
    OUT_LOST,    /* heartbeat 404: the registry forgot us */
    OUT_STALE,   /* 409: our seq is not above the last it accepted */
    OUT_RETRY,   /* transport error, 5xx, 429, 408 (and 404 on announce): back off */
    OUT_CONFIG,  /* any other refusal: something is misconfigured; retry at the max backoff */
    OUT_ABORTED, /* the stop cut the request short */
} outcome;

/* What the admin API shows of a registry (sl_registry_status); under the announcer's mu. */
typedef struct reg_pub {
    bool registered;
    int64_t last_ok_s, last_attempt_s;
    const char *last_op;
    uint64_t failures;
    uint64_t interval_ms;
    uint64_t due_ms; /* monotonic */
    char last_error[SL_REGISTRY_ERROR_MAX];
} reg_pub;

/* Per-registry state; only the announcer thread touches it, but for pub (under mu). */
typedef struct reg {
    char *base; /* without trailing '/' and user info: for logs and the status */
    char *announce_url, *heartbeat_url;
    bool announced;     /* it holds the current record: heartbeat next */
    bool registered;    /* its last answer accepted our message */
    const char *reason; /* the info message for the next accepted announce */
    bool lost;          /* a heartbeat was answered 404 since the last accepted announce */
    uint64_t due_ms;    /* monotonic */
    uint64_t backoff_ms;
    uint64_t interval_ms;
    unsigned failures; /* in a row */
    unsigned stale;    /* 409s in a row */
    long cfg_status;   /* the configuration problem last logged at error (0: none) */
    char cfg_code[CODE_MAX];
    reg_pub pub;
} reg;

struct sl_announcer {
    const os_logger *log;
    uint8_t *priv; /* sodium_malloc; read-only between uses */
    uint8_t node[OS_ADDRESS_LEN];
    char node_hex[OS_ADDRESS_STR_LEN];
    uint64_t chain_id;
    sl_load_cb load;
    void *load_ud;
    uint64_t min_backoff_ms, max_backoff_ms;
    os_http_client *http;
    reg *regs;
    size_t n_regs;

    /* The thread's own. */
    os_record *work;   /* the record as last copied from rec, signed with fresh seq/timestamp */
    uint64_t work_gen; /* rec_gen work was copied at */
    uint64_t last_seq;

    bool sync_ready;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Under mu. */
    os_record *rec;
    uint64_t rec_gen;
    bool started, stopping, joined;
    pthread_t thread;
    sl_announcer_stats stats;

    atomic_int abort; /* set once by the stop; read by the HTTP client mid-request */
};

/* A registry's answer. */
typedef struct reply {
    long status;
    json_t *body; /* a JSON object, or NULL */
    uint64_t retry_after_ms;
    char why[OS_HTTP_ERR_MSG_LEN]; /* why no answer came; safe to log */
} reply;

/* ------------------------------------------------------------------ time, seq */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds since the epoch keep the seq increasing across restarts without storage; the
 * +1 keeps it strictly increasing when the clock stands still or steps back. */
static uint64_t next_seq(sl_announcer *a)
{
    uint64_t now = wall_ms();
    a->last_seq = now > a->last_seq ? now : a->last_seq + 1;
    return a->last_seq;
}

/* Equal jitter: somewhere in [b/2, b], so registries restarted together are not hit in step,
 * and the bound b still holds. */
static uint64_t jittered(uint64_t b)
{
    uint64_t half = b / 2;
    uint64_t span = b - half;
    if (span == 0)
        return b;
    if (span > UINT32_MAX - 1)
        span = UINT32_MAX - 1;
    return half + randombytes_uniform((uint32_t)span + 1);
}

/* ------------------------------------------------------------------ set-up */

static os_err url_join(char **out, const char *base, const char *path)
{
    size_t n = strlen(base) + strlen(path) + 1;
    char *s = malloc(n);
    if (s == NULL)
        return OS_ERR_NOMEM;
    snprintf(s, n, "%s%s", base, path);
    *out = s;
    return OS_OK;
}

static os_err reg_init(reg *r, const char *url)
{
    char shown[SL_REGISTRY_URL_MAX];
    char *full;
    size_t n, scheme;
    os_err rc;

    if (url == NULL)
        return OS_ERR_INVALID;
    n = strnlen(url, MAX_URL_LEN + 1);
    if (n > MAX_URL_LEN)
        return OS_ERR_TOOBIG;
    if (strncmp(url, "http://", 7) == 0)
        scheme = 7;
    else if (strncmp(url, "https://", 8) == 0)
        scheme = 8;
    else
        return OS_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        /* printable ASCII only: the URL is logged and handed to curl as is */
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return OS_ERR_INVALID;
    }
    while (n > scheme && url[n - 1] == '/')
        n--;
    if (n == scheme)
        return OS_ERR_INVALID;
    if ((full = strndup(url, n)) == NULL)
        return OS_ERR_NOMEM;
    /* the user info (credentials for a proxy or the registry) goes to curl, nowhere else */
    if ((rc = url_join(&r->announce_url, full, "/v1/announce")) != OS_OK ||
        (rc = url_join(&r->heartbeat_url, full, "/v1/heartbeat")) != OS_OK ||
        (rc = os_url_without_userinfo(shown, sizeof(shown), full)) != OS_OK) {
        free(full);
        return rc;
    }
    free(full);
    if ((r->base = strdup(shown)) == NULL)
        return OS_ERR_NOMEM;
    r->reason = "registered";
    r->interval_ms = DEFAULT_INTERVAL_MS;
    r->pub.interval_ms = DEFAULT_INTERVAL_MS;
    return OS_OK;
}

static void reg_free(reg *r)
{
    free(r->base);
    free(r->announce_url);
    free(r->heartbeat_url);
}

/* The record must be ours, for the heartbeat's chain, and one the registry can accept (the
 * seq and timestamp are ours to fill in later). */
static os_err check_record(const sl_announcer *a, const os_record *record)
{
    os_record *tmp;
    json_t *j;

    if (record == NULL || memcmp(record->node, a->node, OS_ADDRESS_LEN) != 0 ||
        record->chain_id != a->chain_id)
        return OS_ERR_INVALID;
    if ((tmp = malloc(sizeof(*tmp))) == NULL)
        return OS_ERR_NOMEM;
    memcpy(tmp, record, sizeof(*tmp));
    tmp->seq = wall_ms();
    tmp->timestamp = tmp->seq / 1000;
    j = os_record_to_json(tmp);
    free(tmp);
    if (j == NULL)
        return OS_ERR_INVALID;
    json_decref(j);
    return OS_OK;
}

static void announcer_destroy(sl_announcer *a)
{
    if (a->sync_ready) {
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
    }
    for (size_t i = 0; a->regs != NULL && i < a->n_regs; i++)
        reg_free(&a->regs[i]);
    free(a->regs);
    os_http_client_free(a->http);
    free(a->rec);
    free(a->work);
    sodium_free(a->priv); /* makes it writable again and wipes it */
    free(a);
}

os_err sl_announcer_new(sl_announcer **out, const sl_announcer_config *cfg)
{
    sl_announcer *a;
    os_http_client_config hc = {0};
    pthread_condattr_t ca;
    long timeout;
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (cfg == NULL || cfg->record == NULL || cfg->node_priv == NULL ||
        (cfg->n_registries > 0 && cfg->registries == NULL) || cfg->n_registries > MAX_REGISTRIES ||
        cfg->chain_id == 0 || cfg->request_timeout_ms < 0)
        return OS_ERR_INVALID;
    timeout = cfg->request_timeout_ms != 0 ? cfg->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return OS_ERR_NOMEM;
    a->log = cfg->log;
    a->chain_id = cfg->chain_id;
    a->load = cfg->load;
    a->load_ud = cfg->load_ud;
    a->min_backoff_ms = cfg->min_backoff_ms != 0 ? cfg->min_backoff_ms : DEFAULT_MIN_BACKOFF_MS;
    a->max_backoff_ms = cfg->max_backoff_ms != 0 ? cfg->max_backoff_ms : DEFAULT_MAX_BACKOFF_MS;
    atomic_init(&a->abort, 0);
    rc = OS_ERR_INVALID;
    if (a->min_backoff_ms > a->max_backoff_ms || a->max_backoff_ms > MAX_BACKOFF_CAP_MS)
        goto fail;

    rc = OS_ERR_NOMEM;
    if ((a->priv = sodium_malloc(OS_SECP_PRIVKEY_LEN)) == NULL)
        goto fail;
    memcpy(a->priv, cfg->node_priv, OS_SECP_PRIVKEY_LEN);
    if ((rc = os_secp_address(a->node, a->priv)) != OS_OK)
        goto fail;
    if (sodium_mprotect_readonly(a->priv) != 0) {
        rc = OS_ERR_INTERNAL;
        goto fail;
    }
    os_eip55_format(a->node_hex, a->node);
    if ((rc = check_record(a, cfg->record)) != OS_OK)
        goto fail;
    rc = OS_ERR_NOMEM;
    if ((a->rec = malloc(sizeof(*a->rec))) == NULL || (a->work = malloc(sizeof(*a->work))) == NULL)
        goto fail;
    memcpy(a->rec, cfg->record, sizeof(*a->rec));
    a->rec_gen = 1; /* work_gen 0: the thread copies it first */

    if (cfg->n_registries > 0 && (a->regs = calloc(cfg->n_registries, sizeof(*a->regs))) == NULL)
        goto fail;
    a->n_regs = cfg->n_registries;
    for (size_t i = 0; i < a->n_regs; i++)
        if ((rc = reg_init(&a->regs[i], cfg->registries[i])) != OS_OK)
            goto fail;

    hc.connect_timeout_ms = timeout < CONNECT_TIMEOUT_MS ? timeout : CONNECT_TIMEOUT_MS;
    hc.timeout_ms = timeout;
    hc.max_body = MAX_REPLY_BYTES;
    hc.pool_size = 1; /* one thread, one request at a time: one handle and its connections */
    hc.json_max_depth = REPLY_DEPTH;
    hc.ca_file = cfg->ca_file;
    if ((rc = os_http_client_new(&a->http, &hc)) != OS_OK)
        goto fail;

    rc = OS_ERR_INTERNAL;
    if (pthread_condattr_init(&ca) != 0)
        goto fail;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&a->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        goto fail;
    }
    pthread_condattr_destroy(&ca);
    if (pthread_mutex_init(&a->mu, NULL) != 0) {
        pthread_cond_destroy(&a->cv);
        goto fail;
    }
    a->sync_ready = true;
    a->stats.registries = a->n_regs;
    *out = a;
    return OS_OK;
fail:
    announcer_destroy(a);
    return rc;
}

/* ------------------------------------------------------------------ one request */

static void reply_free(reply *rp)
{
    json_decref(rp->body);
    rp->body = NULL;
}

/* Retry-After in delta-seconds (the registry's form); an HTTP date is ignored. */
static uint64_t parse_retry_after(const char *v)
{
    uint64_t s = 0;
    if (v == NULL || *v == '\0')
        return 0;
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9')
            return 0;
        s = s * 10 + (uint64_t)(*v - '0');
        if (s > MAX_RETRY_AFTER_S)
            return (uint64_t)MAX_RETRY_AFTER_S * 1000u;
    }
    return s * 1000u;
}

/* POSTs body as JSON; OS_OK when an answer came, whatever its status. */
static os_err post_json(sl_announcer *a, reply *rp, const char *url, const json_t *body)
{
    static const os_http_header hs[] = {{"Content-Type", "application/json"},
                                        {"Accept", "application/json"}};
    os_http_client_req req = {0};
    os_http_client_res res;
    os_http_client_error e;
    char *text;
    os_err rc;

    memset(rp, 0, sizeof(*rp));
    if ((text = json_dumps(body, JSON_COMPACT)) == NULL) {
        snprintf(rp->why, sizeof(rp->why), "cannot encode the message");
        return OS_ERR_NOMEM;
    }
    req.method = "POST";
    req.url = url;
    req.headers = hs;
    req.n_headers = sizeof(hs) / sizeof(hs[0]);
    req.body = text;
    req.body_len = strlen(text);
    req.abort = &a->abort;
    os_http_client_res_init(&res);
    rc = os_http_client_do(a->http, &res, &e, &req);
    rp->status = res.status;
    if (rc != OS_OK) {
        snprintf(rp->why, sizeof(rp->why), "%s", e.message);
    } else {
        /* Only the fields we read matter; a body that is not JSON (a proxy's HTML page) is
         * judged by its status alone. */
        if (res.body.len > 0 && os_json_parse(&rp->body, (const char *)res.body.data, res.body.len,
                                              MAX_REPLY_BYTES, REPLY_DEPTH, NULL, 0) != OS_OK)
            rp->body = NULL;
        if (rp->body != NULL && !json_is_object(rp->body))
            reply_free(rp);
        rp->retry_after_ms = parse_retry_after(os_http_client_res_header(&res, "Retry-After"));
    }
    os_http_client_res_free(&res);
    free(text);
    return rc;
}

/* The OpenAI-shaped error's code and message, or NULL. Both point into rp. */
static void reply_error(const reply *rp, const char **code, const char **msg)
{
    const json_t *e = rp->body != NULL ? json_object_get(rp->body, "error") : NULL;
    const json_t *c = json_is_object(e) ? json_object_get(e, "code") : NULL;
    const json_t *m = json_is_object(e) ? json_object_get(e, "message") : NULL;
    *code = json_is_string(c) ? json_string_value(c) : NULL;
    *msg = json_is_string(m) ? json_string_value(m) : NULL;
}

static os_err send_announce(sl_announcer *a, const reg *r, reply *rp)
{
    uint8_t sig[OS_SECP_SIG_LEN];
    char sig_hex[OS_HEX_LEN(OS_SECP_SIG_LEN)];
    json_t *rec, *body;
    os_err rc;

    memset(rp, 0, sizeof(*rp));
    a->work->seq = next_seq(a);
    a->work->timestamp = wall_ms() / 1000;
    if ((rec = os_record_to_json(a->work)) == NULL) {
        snprintf(rp->why, sizeof(rp->why), "cannot build the record");
        return OS_ERR_NOMEM;
    }
    if ((rc = os_record_sign(sig, rec, a->priv)) != OS_OK ||
        (rc = os_hex_encode(sig_hex, sizeof(sig_hex), sig, sizeof(sig), 1)) != OS_OK) {
        json_decref(rec);
        snprintf(rp->why, sizeof(rp->why), "cannot sign the record: %s", os_strerror(rc));
        return rc;
    }
    if ((body = json_pack("{s:o,s:s}", "record", rec, "signature", sig_hex)) == NULL) {
        snprintf(rp->why, sizeof(rp->why), "cannot build the announcement");
        return OS_ERR_NOMEM;
    }
    rc = post_json(a, rp, r->announce_url, body);
    json_decref(body);
    return rc;
}

static os_err send_heartbeat(sl_announcer *a, const reg *r, reply *rp)
{
    os_heartbeat hb;
    uint32_t active = 0, capacity = 0;
    json_t *body;
    os_err rc;

    memset(rp, 0, sizeof(*rp));
    memset(&hb, 0, sizeof(hb));
    memcpy(hb.node, a->work->node, sizeof(hb.node));
    memcpy(hb.endpoint, a->work->endpoint, sizeof(hb.endpoint));
    if (a->load != NULL)
        a->load(a->load_ud, &active, &capacity);
    hb.active = active;
    hb.capacity = capacity != 0 ? capacity : 1; /* the registry refuses a capacity of 0 */
    hb.seq = next_seq(a);
    hb.timestamp = wall_ms() / 1000;
    if ((rc = os_heartbeat_sign(&hb, a->priv, a->chain_id)) != OS_OK) {
        snprintf(rp->why, sizeof(rp->why), "cannot sign the heartbeat: %s", os_strerror(rc));
        return rc;
    }
    if ((body = os_heartbeat_to_json(&hb)) == NULL) {
        snprintf(rp->why, sizeof(rp->why), "cannot build the heartbeat");
        return OS_ERR_NOMEM;
    }
    rc = post_json(a, rp, r->heartbeat_url, body);
    json_decref(body);
    return rc;
}

static outcome classify(const sl_announcer *a, bool announcing, os_err rc, const reply *rp)
{
    long s = rp->status;

    if (atomic_load(&a->abort) != 0)
        return OUT_ABORTED;
    if (rc != OS_OK)
        return OUT_RETRY;
    if (s >= 200 && s < 300)
        return OUT_OK;
    if (s == 404 && !announcing)
        return OUT_LOST;
    if (s == 409)
        return OUT_STALE;
    if (s == 404 || s == 408 || s == 429 || s >= 500)
        return OUT_RETRY;
    return OUT_CONFIG;
}

/* ------------------------------------------------------------------ outcomes */

/* The registry's interval (seconds), bounded; def when it does not say. */
static uint64_t reply_interval_ms(const reply *rp, uint64_t def)
{
    uint64_t s;
    if (rp->body == NULL || os_json_get_u64(&s, rp->body, "heartbeat_interval", NULL, 0) != OS_OK ||
        s == 0)
        return def;
    return (s > MAX_INTERVAL_S ? MAX_INTERVAL_S : s) * 1000u;
}

/* A 409 names the last seq the registry accepted ("... (N)"): jump past it rather than creep up
 * one message at a time. The jump is bounded so a confused registry cannot push our seq (which
 * every registry sees) far into the future. */
static void seq_catch_up(sl_announcer *a, const reg *r, const char *msg)
{
    const char *open, *p;
    uint64_t v = 0;

    if (msg == NULL || (open = strrchr(msg, '(')) == NULL)
        return;
    for (p = open + 1; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == open + 1 || *p != ')' || v <= a->last_seq)
        return;
    if (v > INT64_MAX - 1 || v > wall_ms() + MAX_SEQ_JUMP_MS) {
        os_log_event ev;
        if (os_log_begin(&ev, a->log, OS_LOG_WARN,
                         "registry claims a seq far ahead; not following")) {
            os_log_kv(&ev, "registry", "%s", r->base);
            os_log_kv(&ev, "their_seq", "%" PRIu64, v);
            os_log_end(&ev);
        }
        return;
    }
    a->last_seq = v;
}

/* How many bytes of s, at most max, end on a character boundary (s is UTF-8: the registry's
 * message passed jansson's check, our own texts are ASCII). */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--; /* s[max] continues a character that started before: drop that character */
    return max;
}

static void log_failure(sl_announcer *a, const reg *r, os_log_level level, const char *msg,
                        bool announcing, const reply *rp, uint64_t retry_ms)
{
    os_log_event ev;
    const char *code, *emsg;

    if (!os_log_begin(&ev, a->log, level, msg))
        return;
    reply_error(rp, &code, &emsg);
    os_log_kv(&ev, "registry", "%s", r->base);
    os_log_kv(&ev, "node", "%s", a->node_hex);
    os_log_kv(&ev, "op", "%s", announcing ? "announce" : "heartbeat");
    if (rp->status != 0)
        os_log_kv(&ev, "status", "%ld", rp->status);
    if (code != NULL)
        os_log_kv(&ev, "code", "%.*s", CODE_MAX - 1, code);
    if (emsg != NULL)
        os_log_kv(&ev, "error", "%.*s", (int)utf8_cut(emsg, 200), emsg);
    else if (rp->why[0] != '\0')
        os_log_kv(&ev, "error", "%s", rp->why);
    if (r->failures > 0)
        os_log_kv(&ev, "failures", "%u", r->failures);
    os_log_kv(&ev, "retry_in_ms", "%" PRIu64, retry_ms);
    os_log_end(&ev);
}

static void on_ok(sl_announcer *a, reg *r, bool announcing, const reply *rp, uint64_t started)
{
    bool recovered = r->failures > 0 || r->stale > 0;
    os_log_event ev;

    r->interval_ms = reply_interval_ms(rp, announcing ? DEFAULT_INTERVAL_MS : r->interval_ms);
    r->due_ms = started + r->interval_ms; /* fixed rate: the request's own time is not added */
    r->backoff_ms = 0;
    r->failures = 0;
    r->stale = 0;
    r->registered = true;
    pthread_mutex_lock(&a->mu);
    if (announcing) {
        a->stats.announces_ok++;
        if (r->lost)
            a->stats.reannounces++;
    } else {
        a->stats.heartbeats_ok++;
    }
    pthread_mutex_unlock(&a->mu);
    if (announcing) {
        const char *node_id = NULL;
        if (rp->body != NULL)
            (void)json_unpack(rp->body, "{s:s}", "node_id", &node_id);
        if (os_log_begin(&ev, a->log, OS_LOG_INFO, r->reason)) {
            os_log_kv(&ev, "registry", "%s", r->base);
            os_log_kv(&ev, "node", "%s", a->node_hex);
            if (node_id != NULL && strcasecmp(node_id, a->node_hex) != 0)
                os_log_kv(&ev, "registry_node_id", "%.64s", node_id);
            os_log_kv(&ev, "seq", "%" PRIu64, a->work->seq);
            os_log_kv(&ev, "heartbeat_interval_s", "%" PRIu64, r->interval_ms / 1000);
            os_log_end(&ev);
        }
        r->announced = true;
        r->lost = false;
        r->reason = "record updated";
        r->cfg_status = 0;
        r->cfg_code[0] = '\0';
    } else if (recovered && os_log_begin(&ev, a->log, OS_LOG_INFO, "heartbeats accepted again")) {
        os_log_kv(&ev, "registry", "%s", r->base);
        os_log_kv(&ev, "node", "%s", a->node_hex);
        os_log_end(&ev);
    }
}

static void count_failure(sl_announcer *a, bool announcing)
{
    pthread_mutex_lock(&a->mu);
    if (announcing)
        a->stats.announces_failed++;
    else
        a->stats.heartbeats_failed++;
    pthread_mutex_unlock(&a->mu);
}

static void back_off(sl_announcer *a, reg *r, bool announcing, const reply *rp, uint64_t now)
{
    uint64_t delay;

    r->failures++;
    if (r->backoff_ms == 0)
        r->backoff_ms = a->min_backoff_ms;
    else
        r->backoff_ms =
            r->backoff_ms > a->max_backoff_ms / 2 ? a->max_backoff_ms : r->backoff_ms * 2;
    delay = jittered(r->backoff_ms);
    if (rp->retry_after_ms > delay) /* the registry's word, within our own bound */
        delay = rp->retry_after_ms < a->max_backoff_ms ? rp->retry_after_ms : a->max_backoff_ms;
    r->due_ms = now + delay;
    log_failure(a, r, OS_LOG_WARN, announcing ? "announce failed" : "heartbeat failed", announcing,
                rp, delay);
}

static void on_config(sl_announcer *a, reg *r, bool announcing, const reply *rp, uint64_t now)
{
    const char *code, *emsg;
    uint64_t delay;

    reply_error(rp, &code, &emsg);
    (void)emsg;
    r->failures++;
    r->backoff_ms = a->max_backoff_ms;
    delay = jittered(r->backoff_ms);
    r->due_ms = now + delay;
    /* Heartbeats refused for their content (clock, signature) start over with an announce. */
    r->announced = false;
    if (r->cfg_status != rp->status || strcmp(r->cfg_code, code != NULL ? code : "") != 0) {
        r->cfg_status = rp->status;
        snprintf(r->cfg_code, sizeof(r->cfg_code), "%s", code != NULL ? code : "");
        log_failure(a, r, OS_LOG_ERROR,
                    announcing ? "registry refuses the announcement; check the configuration"
                               : "registry refuses the heartbeat; check the configuration",
                    announcing, rp, delay);
    } else {
        log_failure(a, r, OS_LOG_DEBUG, "registry still refuses", announcing, rp, delay);
    }
}

/* Why a message failed, for the status: one printable line of at most cap - 1 bytes. */
static void error_text(char *out, size_t cap, const reply *rp)
{
    char full[OS_HTTP_ERR_MSG_LEN + SL_REGISTRY_ERROR_MAX + 64];
    const char *code, *msg;
    size_t n;

    reply_error(rp, &code, &msg);
    if (rp->status != 0)
        snprintf(full, sizeof(full), "HTTP %ld%s%.*s%s%s", rp->status, code != NULL ? " " : "",
                 CODE_MAX - 1, code != NULL ? code : "", msg != NULL ? ": " : "",
                 msg != NULL ? msg : "");
    else
        snprintf(full, sizeof(full), "%s", rp->why[0] != '\0' ? rp->why : "no answer");
    n = utf8_cut(full, cap - 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)full[i] < 0x20 || full[i] == 0x7f ? ' ' : full[i];
    out[n] = '\0';
}

/* Publishes r's state after a message (ok: accepted) for sl_announcer_registries. */
static void publish(sl_announcer *a, reg *r, bool announcing, bool ok, const reply *rp)
{
    char why[SL_REGISTRY_ERROR_MAX] = "";
    int64_t now_s = (int64_t)(wall_ms() / 1000u);

    if (!ok)
        error_text(why, sizeof(why), rp);
    pthread_mutex_lock(&a->mu);
    r->pub.registered = r->registered;
    r->pub.last_attempt_s = now_s;
    r->pub.last_op = announcing ? "announce" : "heartbeat";
    if (ok) {
        r->pub.last_ok_s = now_s;
        r->pub.failures = 0;
    } else if (r->pub.failures < UINT64_MAX) {
        r->pub.failures++;
    }
    memcpy(r->pub.last_error, why, sizeof(why));
    r->pub.interval_ms = r->interval_ms;
    r->pub.due_ms = r->due_ms;
    pthread_mutex_unlock(&a->mu);
}

/* One message to r and what follows from the answer. */
static void step(sl_announcer *a, reg *r)
{
    bool announcing = !r->announced;
    uint64_t started = mono_ms(), now;
    const char *code, *emsg;
    reply rp;
    os_err rc;
    outcome o;

    rc = announcing ? send_announce(a, r, &rp) : send_heartbeat(a, r, &rp);
    o = classify(a, announcing, rc, &rp);
    now = mono_ms();
    if (o != OUT_OK && o != OUT_ABORTED) {
        r->registered = false;
        count_failure(a, announcing);
    }
    switch (o) {
    case OUT_OK:
        on_ok(a, r, announcing, &rp, started);
        break;
    case OUT_LOST:
        r->announced = false;
        r->lost = true;
        r->reason = "re-registered";
        r->backoff_ms = 0;
        r->failures = 0;
        r->due_ms = now;
        log_failure(a, r, OS_LOG_WARN, "registry does not know the seller; announcing again",
                    announcing, &rp, 0);
        break;
    case OUT_STALE:
        reply_error(&rp, &code, &emsg);
        seq_catch_up(a, r, emsg);
        if (++r->stale <= STALE_RETRIES) {
            r->due_ms = now;
            log_failure(a, r, OS_LOG_DEBUG, "stale seq; retrying with a higher one", announcing,
                        &rp, 0);
        } else {
            r->stale = 0;
            back_off(a, r, announcing, &rp, now);
        }
        break;
    case OUT_RETRY:
        back_off(a, r, announcing, &rp, now);
        break;
    case OUT_CONFIG:
        on_config(a, r, announcing, &rp, now);
        break;
    case OUT_ABORTED:
        break;
    }
    if (o != OUT_ABORTED)
        publish(a, r, announcing, o == OUT_OK, &rp);
    reply_free(&rp);

    size_t n = 0;
    for (size_t i = 0; i < a->n_regs; i++)
        n += a->regs[i].registered;
    pthread_mutex_lock(&a->mu);
    a->stats.registered = n;
    pthread_mutex_unlock(&a->mu);
}

/* ------------------------------------------------------------------ the thread */

/* Takes a record set since the last look (mu held): every registry that holds the old one gets
 * the new one at once, unless it is backing off (then at its next attempt). */
static void take_record(sl_announcer *a, uint64_t now)
{
    memcpy(a->work, a->rec, sizeof(*a->work));
    if (a->work_gen != 0) {
        for (size_t i = 0; i < a->n_regs; i++) {
            reg *r = &a->regs[i];
            if (!r->announced)
                continue;
            r->announced = false;
            if (r->backoff_ms == 0)
                r->due_ms = r->pub.due_ms = now; /* mu is held */
        }
    }
    a->work_gen = a->rec_gen;
}

static void wait_until(sl_announcer *a, uint64_t due_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(due_ms / 1000u),
                          .tv_nsec = (long)(due_ms % 1000u) * 1000000L};
    (void)pthread_cond_timedwait(&a->cv, &a->mu, &ts);
}

static void *run(void *arg)
{
    sl_announcer *a = arg;

    pthread_mutex_lock(&a->mu);
    while (!a->stopping) {
        uint64_t now = mono_ms();
        reg *next = NULL;

        if (a->work_gen != a->rec_gen)
            take_record(a, now);
        for (size_t i = 0; i < a->n_regs; i++)
            if (next == NULL || a->regs[i].due_ms < next->due_ms)
                next = &a->regs[i];
        if (next == NULL) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        if (next->due_ms > now) {
            wait_until(a, next->due_ms);
            continue;
        }
        pthread_mutex_unlock(&a->mu);
        step(a, next);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ------------------------------------------------------------------ public */

os_err sl_announcer_start(sl_announcer *a)
{
    os_err rc = OS_OK;

    if (a == NULL)
        return OS_ERR_INVALID;
    pthread_mutex_lock(&a->mu);
    if (a->started || a->stopping)
        rc = OS_ERR_INVALID;
    else if (pthread_create(&a->thread, NULL, run, a) != 0)
        rc = OS_ERR_NOMEM;
    else
        a->started = true;
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void sl_announcer_stop(sl_announcer *a)
{
    bool join;

    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    atomic_store(&a->abort, 1);
    join = a->started && !a->joined;
    if (join)
        a->joined = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (join)
        pthread_join(a->thread, NULL);
}

void sl_announcer_free(sl_announcer *a)
{
    if (a == NULL)
        return;
    sl_announcer_stop(a);
    announcer_destroy(a);
}

os_err sl_announcer_set_record(sl_announcer *a, const os_record *record)
{
    os_err rc;

    if (a == NULL || record == NULL)
        return OS_ERR_INVALID;
    if ((rc = check_record(a, record)) != OS_OK)
        return rc;
    pthread_mutex_lock(&a->mu);
    memcpy(a->rec, record, sizeof(*a->rec));
    a->rec_gen++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return OS_OK;
}

os_err sl_announcer_registries(sl_announcer *a, sl_registry_status **out, size_t *n)
{
    sl_registry_status *v = NULL;
    uint64_t now;

    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (a == NULL || out == NULL || n == NULL)
        return OS_ERR_INVALID;
    if (a->n_regs == 0)
        return OS_OK;
    if ((v = calloc(a->n_regs, sizeof(*v))) == NULL)
        return OS_ERR_NOMEM;
    pthread_mutex_lock(&a->mu);
    now = mono_ms();
    for (size_t i = 0; i < a->n_regs; i++) {
        const reg *r = &a->regs[i];
        const reg_pub *p = &r->pub;
        snprintf(v[i].url, sizeof(v[i].url), "%s", r->base); /* fixed since sl_announcer_new */
        v[i].registered = p->registered;
        v[i].last_ok_at = p->last_ok_s;
        v[i].last_attempt_at = p->last_attempt_s;
        v[i].last_op = p->last_op;
        v[i].failures = p->failures;
        memcpy(v[i].last_error, p->last_error, sizeof(v[i].last_error));
        v[i].heartbeat_interval_s = p->interval_ms / 1000u;
        v[i].next_in_s = p->due_ms > now ? (p->due_ms - now + 999u) / 1000u : 0;
    }
    pthread_mutex_unlock(&a->mu);
    *out = v;
    *n = a->n_regs;
    return OS_OK;
}

void sl_announcer_get_stats(sl_announcer *a, sl_announcer_stats *out)
{
    if (out == NULL)
        return;
    if (a == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    pthread_mutex_lock(&a->mu);
    *out = a->stats;
    pthread_mutex_unlock(&a->mu);
}
