/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Ethereum JSON-RPC client itself: the os_chain object, one POST per request on a pooled curl
 * handle with retries and backoff (in http_post only, so everything above it sees one answer or
 * one error), and the JSON-RPC 2.0 envelope: the answer is collected into a capped buffer, parsed
 * by os_json_parse_flags (depth and duplicate keys checked before jansson builds anything),
 * matched to its request, and a node's error object is mapped to the client's error kinds and
 * revert reasons. The typed calls built on it are in chain_calls.c, the signer in chain_signer.c.
 */
#include "openseed/chain.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/hex.h"
#include "openseed/json.h"

#include "chain_internal.h"

#define POOL_MAX 8 /* idle curl handles kept for connection reuse */
#define URL_MAX 2048

struct os_chain {
    os_chain_config cfg; /* cfg.url points at url below */
    char *url;
    struct curl_slist *headers; /* shared read-only by all handles */
    pthread_mutex_t mu;         /* guards idle, n_idle and next_id */
    CURL *idle[POOL_MAX];
    size_t n_idle;
    uint64_t next_id;
};

/* ---- configuration ----------------------------------------------------------------------- */

void os_chain_config_default(os_chain_config *cfg, const char *url)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->url = url;
    cfg->connect_timeout_ms = 5000;
    cfg->request_timeout_ms = 30000;
    cfg->max_retries = 3;
    cfg->retry_base_ms = 250;
    cfg->retry_max_ms = 4000;
    cfg->max_response = 16u * 1024 * 1024;
    cfg->max_json_depth = 32;
}

os_err os_chain_new(os_chain **out, const os_chain_config *cfg)
{
    os_chain *ch;
    size_t n;

    *out = NULL;
    if (cfg == NULL || cfg->url == NULL)
        return OS_ERR_INVALID;
    n = strnlen(cfg->url, URL_MAX + 1);
    if (n > URL_MAX ||
        (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0))
        return OS_ERR_INVALID;
    if (cfg->connect_timeout_ms <= 0 || cfg->request_timeout_ms <= 0 || cfg->retry_base_ms < 0 ||
        cfg->retry_max_ms < cfg->retry_base_ms || cfg->max_retries > 20 || cfg->max_response < 64 ||
        cfg->max_json_depth < 4 || cfg->max_json_depth > 1024 ||
        (cfg->n_custom_errors > 0 && cfg->custom_errors == NULL))
        return OS_ERR_INVALID;
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return OS_ERR_NOMEM;
    ch->url = malloc(n + 1);
    if (ch->url == NULL) {
        free(ch);
        return OS_ERR_NOMEM;
    }
    memcpy(ch->url, cfg->url, n + 1);
    ch->cfg = *cfg;
    ch->cfg.url = ch->url;
    ch->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (ch->headers != NULL) {
        struct curl_slist *h = curl_slist_append(ch->headers, "Accept: application/json");
        if (h == NULL) {
            curl_slist_free_all(ch->headers);
            ch->headers = NULL;
        }
    }
    if (ch->headers == NULL || pthread_mutex_init(&ch->mu, NULL) != 0) {
        curl_slist_free_all(ch->headers);
        free(ch->url);
        free(ch);
        return OS_ERR_NOMEM;
    }
    ch->next_id = 1;
    *out = ch;
    return OS_OK;
}

void os_chain_free(os_chain *ch)
{
    if (ch == NULL)
        return;
    for (size_t i = 0; i < ch->n_idle; i++)
        curl_easy_cleanup(ch->idle[i]);
    curl_slist_free_all(ch->headers);
    pthread_mutex_destroy(&ch->mu);
    free(ch->url);
    free(ch);
}

/* ---- errors ------------------------------------------------------------------------------ */

void os_chain_err_reset(os_chain_error *e)
{
    e->kind = OS_CHAIN_FAIL_NONE;
    e->attempts = 0;
    e->http_status = 0;
    e->rpc_code = 0;
    e->message[0] = '\0';
    e->revert_len = 0;
    memset(&e->revert, 0, sizeof(e->revert));
}

/* Keeps messages to one printable ASCII line whatever a node put in them. */
static void sanitise(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

void os_chain_err_set(os_chain_error *e, os_chain_fail kind, const char *fmt, ...)
{
    va_list ap;

    e->kind = kind;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    sanitise(e->message);
}

/* ---- HTTP -------------------------------------------------------------------------------- */

typedef struct sink {
    os_buf *b;
    os_err err;
} sink;

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    os_err err = os_buf_append(s->b, p, n);

    if (err != OS_OK) {
        s->err = err;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return n;
}

static CURL *handle_get(os_chain *ch)
{
    CURL *h = NULL;

    pthread_mutex_lock(&ch->mu);
    if (ch->n_idle > 0)
        h = ch->idle[--ch->n_idle];
    pthread_mutex_unlock(&ch->mu);
    if (h != NULL)
        curl_easy_reset(h); /* keeps the connection and DNS caches */
    else
        h = curl_easy_init();
    return h;
}

static void handle_put(os_chain *ch, CURL *h)
{
    pthread_mutex_lock(&ch->mu);
    if (ch->n_idle < POOL_MAX) {
        ch->idle[ch->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&ch->mu);
    if (h != NULL)
        curl_easy_cleanup(h);
}

void os_chain_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static long backoff_ms(const os_chain *ch, unsigned attempt)
{
    long d = ch->cfg.retry_base_ms;

    for (unsigned i = 0; i < attempt && d < ch->cfg.retry_max_ms; i++)
        d *= 2;
    if (d > ch->cfg.retry_max_ms)
        d = ch->cfg.retry_max_ms;
    /* "equal jitter": half fixed, half random, so many clients do not retry in lockstep */
    if (d >= 2)
        d = d / 2 + (long)randombytes_uniform((uint32_t)(d / 2 + 1));
    return d;
}

long long os_chain_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static os_err set_options(os_chain *ch, CURL *h, sink *s, char *errbuf, const char *body,
                          size_t body_len)
{
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, ch->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM-based DNS timeouts */
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_HTTPHEADER, ch->headers);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, body);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SET(CURLOPT_CONNECTTIMEOUT_MS, ch->cfg.connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, ch->cfg.request_timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ch->cfg.max_response);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, s);
    SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    return rc == CURLE_OK ? OS_OK : OS_ERR_INTERNAL;
}

/* POSTs body, retrying transport failures, 5xx and 429; resp holds a 200 answer's body. */
static os_err http_post(os_chain *ch, os_buf *resp, os_chain_error *e, const char *method,
                        const char *body, size_t body_len)
{
    os_err last = OS_ERR_NETWORK;

    for (unsigned attempt = 0; attempt <= ch->cfg.max_retries; attempt++) {
        char errbuf[CURL_ERROR_SIZE];
        sink s = {.b = resp, .err = OS_OK};
        long status = 0;
        CURLcode rc;
        CURL *h;

        if (attempt > 0)
            os_chain_sleep_ms(backoff_ms(ch, attempt - 1));
        os_buf_reset(resp);
        h = handle_get(ch);
        if (h == NULL)
            return OS_ERR_NOMEM;
        errbuf[0] = '\0';
        if (set_options(ch, h, &s, errbuf, body, body_len) != OS_OK) {
            curl_easy_cleanup(h);
            os_chain_err_set(e, OS_CHAIN_FAIL_TRANSPORT, "%s: cannot configure curl", method);
            return OS_ERR_INTERNAL;
        }
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        handle_put(ch, h);
        e->attempts = attempt + 1;
        e->http_status = status;

        if (s.err != OS_OK || rc == CURLE_FILESIZE_EXCEEDED) {
            os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: response larger than %zu bytes",
                             method, ch->cfg.max_response);
            return s.err == OS_ERR_NOMEM ? OS_ERR_NOMEM : OS_ERR_TOOBIG;
        }
        if (rc != CURLE_OK) {
            os_chain_err_set(e, OS_CHAIN_FAIL_TRANSPORT, "%s: %s (attempt %u)", method,
                             errbuf[0] ? errbuf : curl_easy_strerror(rc), attempt + 1);
            last = rc == CURLE_OPERATION_TIMEDOUT ? OS_ERR_TIMEOUT : OS_ERR_NETWORK;
            continue;
        }
        if (status == 200)
            return OS_OK;
        os_chain_err_set(e, OS_CHAIN_FAIL_HTTP, "%s: HTTP status %ld (attempt %u)", method, status,
                         attempt + 1);
        last = OS_ERR_NETWORK;
        if (status != 429 && status < 500)
            return last;
    }
    return last;
}

/* ---- JSON-RPC ---------------------------------------------------------------------------- */

const char *os_chain_json_str(const json_t *j)
{
    const char *s = json_string_value(j);

    return s != NULL && strlen(s) == json_string_length(j) ? s : NULL;
}

os_err os_chain_hex_data(os_buf *out, const json_t *v)
{
    const char *s = os_chain_json_str(v);
    size_t n, got;
    os_err err;

    if (s == NULL || s[0] != '0' || s[1] != 'x')
        return OS_ERR_INVALID;
    n = json_string_length(v) - 2;
    if (n % 2 != 0)
        return OS_ERR_INVALID;
    if (n == 0)
        return OS_OK;
    err = os_buf_reserve(out, n / 2);
    if (err != OS_OK)
        return err;
    /* the count check refuses "0x0x…", whose inner prefix os_hex_decode would skip */
    if (os_hex_decode(out->data + out->len, n / 2, &got, s + 2, n) != OS_OK || got != n / 2)
        return OS_ERR_INVALID;
    out->len += got;
    return OS_OK;
}

static void rpc_error(os_chain *ch, os_chain_error *e, const char *method, const json_t *eo)
{
    const json_t *code = json_object_get(eo, "code"), *msg = json_object_get(eo, "message");
    const json_t *data = json_object_get(eo, "data");
    const char *text = json_string_value(msg);
    os_buf rd;
    bool has_data = false;

    e->rpc_code = json_is_integer(code) ? (long long)json_integer_value(code) : 0;
    if (text == NULL)
        text = "(no message)";
    /* revert data is a hex string in "data" (geth, anvil, reth) or nested one level (others) */
    if (json_is_object(data))
        data = json_object_get(data, "data");
    os_buf_init(&rd, OS_CHAIN_REVERT_MAX);
    if (json_is_string(data))
        has_data = os_chain_hex_data(&rd, data) == OS_OK;
    if (e->rpc_code == 3 || has_data || strncmp(text, "execution reverted", 18) == 0) {
        if (has_data) {
            memcpy(e->revert_data, rd.data ? rd.data : (const uint8_t *)"", rd.len);
            e->revert_len = rd.len;
            if (os_abi_decode_revert(&e->revert, rd.data, rd.len, ch->cfg.custom_errors,
                                     ch->cfg.n_custom_errors) != OS_OK) {
                /* the revert message already says the data is malformed */
            }
            os_chain_err_set(e, OS_CHAIN_FAIL_REVERT, "%s: execution reverted: %s", method,
                             e->revert.message);
        } else {
            e->revert.kind = OS_ABI_REVERT_EMPTY;
            snprintf(e->revert.message, sizeof(e->revert.message), "%s", text);
            sanitise(e->revert.message);
            os_chain_err_set(e, OS_CHAIN_FAIL_REVERT, "%s: %s", method, text);
        }
    } else {
        os_chain_err_set(e, OS_CHAIN_FAIL_RPC, "%s: %s (code %lld)", method, text, e->rpc_code);
    }
    os_buf_free(&rd);
}

os_err os_chain_exchange(os_chain *ch, json_t **result, os_chain_error *e, const char *method,
                         json_t *params)
{
    json_t *req, *resp = NULL, *jv, *id, *res, *er;
    char *body = NULL;
    uint64_t req_id;
    os_buf buf;
    os_err err, perr;

    *result = NULL;
    if (params == NULL)
        params = json_array();
    pthread_mutex_lock(&ch->mu);
    req_id = ch->next_id++;
    pthread_mutex_unlock(&ch->mu);
    /* the params member goes in first so that it is owned by req, or freed, on every path */
    req = json_object();
    if (req == NULL || params == NULL || json_object_set_new(req, "params", params) != 0 ||
        json_object_set_new(req, "jsonrpc", json_string("2.0")) != 0 ||
        json_object_set_new(req, "id", json_integer((json_int_t)(req_id & INT32_MAX))) != 0 ||
        json_object_set_new(req, "method", json_string(method)) != 0) {
        if (req == NULL)
            json_decref(params);
        json_decref(req);
        os_chain_err_set(e, OS_CHAIN_FAIL_NONE, "%s: out of memory", method);
        return OS_ERR_NOMEM;
    }
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (body == NULL) {
        os_chain_err_set(e, OS_CHAIN_FAIL_NONE, "%s: out of memory", method);
        return OS_ERR_NOMEM;
    }
    os_buf_init(&buf, ch->cfg.max_response);
    err = http_post(ch, &buf, e, method, body, strlen(body));
    free(body);
    if (err != OS_OK)
        goto out;

    /* buf is already capped at max_response, so the parser's size limit never trips and its
     * OS_ERR_TOOBIG means too deep. Nodes write a custom error's raw arguments into its message,
     * \u0000 included. The typed calls read every string through os_chain_json_str, which
     * refuses one hiding a NUL; a message is shown up to its first NUL. */
    perr = os_json_parse_flags(&resp, (const char *)(buf.data ? buf.data : (const uint8_t *)""),
                               buf.len, ch->cfg.max_response, (int)ch->cfg.max_json_depth,
                               OS_JSON_ALLOW_NUL, NULL, 0);
    err = OS_ERR_NETWORK;
    if (perr == OS_ERR_TOOBIG) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: response nested deeper than %u", method,
                         ch->cfg.max_json_depth);
        goto out;
    }
    if (perr != OS_OK || !json_is_object(resp)) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: response is not a JSON object", method);
        goto out;
    }
    jv = json_object_get(resp, "jsonrpc");
    id = json_object_get(resp, "id");
    res = json_object_get(resp, "result");
    er = json_object_get(resp, "error");
    if (os_chain_json_str(jv) == NULL || strcmp(json_string_value(jv), "2.0") != 0 ||
        !json_is_integer(id) || (uint64_t)json_integer_value(id) != (req_id & INT32_MAX) ||
        (res == NULL) == (er == NULL)) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: not a JSON-RPC 2.0 answer to this request",
                         method);
        goto out;
    }
    if (er != NULL) {
        if (!json_is_object(er) || !json_is_integer(json_object_get(er, "code")) ||
            !json_is_string(json_object_get(er, "message"))) {
            os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: malformed JSON-RPC error", method);
            goto out;
        }
        rpc_error(ch, e, method, er);
        err = OS_ERR_INVALID;
        goto out;
    }
    *result = json_incref(res);
    err = OS_OK;
out:
    json_decref(resp);
    os_buf_free(&buf);
    return err;
}

os_err os_chain_rpc(os_chain *ch, json_t **result, os_chain_error *err, const char *method,
                    json_t *params)
{
    os_chain_error scratch;

    if (err == NULL)
        err = &scratch;
    os_chain_err_reset(err);
    if (ch == NULL || result == NULL || method == NULL) {
        json_decref(params);
        return OS_ERR_INVALID;
    }
    return os_chain_exchange(ch, result, err, method, params);
}

uint64_t os_chain_configured_chain_id(const os_chain *ch)
{
    return ch->cfg.chain_id;
}
