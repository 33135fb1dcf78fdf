/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ethereum JSON-RPC over libcurl, and nonce-managed sending from one key. Each request is one
 * POST on a pooled curl handle; the answer is collected into a capped buffer, depth-checked before
 * jansson sees it, and validated field by field into plain C structs, so nothing that leaves this
 * file points into JSON. Retries and backoff live in http_post only; everything above it sees one
 * answer or one error. The signer (nonces, sending) is in chain_signer.c.
 */
#include "openseed/chain.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/hex.h"
#include "openseed/keccak.h"
#include "openseed/secp.h"
#include "openseed/tx.h"

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

/* ---- quantities -------------------------------------------------------------------------- */

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Checks "0x" + 1..max_digits hex digits without leading zeros; *digits points past "0x". */
static os_err quantity_digits(const char **digits, size_t *n, const char *s, size_t max_digits)
{
    if (s == NULL || s[0] != '0' || s[1] != 'x')
        return OS_ERR_INVALID;
    s += 2;
    *n = strnlen(s, max_digits + 1);
    if (*n == 0 || (s[0] == '0' && *n > 1))
        return OS_ERR_INVALID;
    for (size_t i = 0; i < *n; i++)
        if (nibble(s[i]) < 0)
            return OS_ERR_INVALID;
    if (*n > max_digits)
        return OS_ERR_RANGE;
    *digits = s;
    return OS_OK;
}

os_err os_chain_quantity_u64(uint64_t *v, const char *s)
{
    const char *d;
    size_t n;
    os_err err;

    *v = 0;
    err = quantity_digits(&d, &n, s, 16);
    if (err != OS_OK)
        return err;
    for (size_t i = 0; i < n; i++)
        *v = *v << 4 | (uint64_t)nibble(d[i]);
    return OS_OK;
}

os_err os_chain_quantity_u256(os_u256 *v, const char *s)
{
    const char *d;
    size_t n;
    os_err err;

    memset(v->be, 0, 32);
    err = quantity_digits(&d, &n, s, 64);
    if (err != OS_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        size_t pos = n - 1 - i; /* nibble index from the least significant end */
        int x = nibble(d[i]);
        v->be[31 - pos / 2] |= (uint8_t)(pos % 2 ? x << 4 : x);
    }
    return OS_OK;
}

void os_chain_quantity_format(char out[OS_CHAIN_QUANTITY_LEN], uint64_t v)
{
    snprintf(out, OS_CHAIN_QUANTITY_LEN, "0x%" PRIx64, v);
}

static void quantity_format_u256(char out[67], const os_u256 *v)
{
    static const char digits[] = "0123456789abcdef";
    size_t i = 0, o = 2;

    out[0] = '0';
    out[1] = 'x';
    while (i < 31 && v->be[i] == 0)
        i++;
    if (v->be[i] >> 4)
        out[o++] = digits[v->be[i] >> 4];
    out[o++] = digits[v->be[i] & 15];
    for (i++; i < 32; i++) {
        out[o++] = digits[v->be[i] >> 4];
        out[o++] = digits[v->be[i] & 15];
    }
    out[o] = '\0';
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

static void sleep_ms(long ms)
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

static long long monotonic_ms(void)
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
            sleep_ms(backoff_ms(ch, attempt - 1));
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

/* Refuses nesting deeper than max before the parser, which has no such bound of its own, runs. */
static bool depth_ok(const uint8_t *p, size_t n, unsigned max)
{
    unsigned depth = 0;
    bool in_str = false, esc = false;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return false;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* A JSON string's value, or NULL when j is not a string or hides a NUL inside. */
static const char *jstr(const json_t *j)
{
    const char *s = json_string_value(j);

    return s != NULL && strlen(s) == json_string_length(j) ? s : NULL;
}

/* Appends the bytes of a "0x" hex string: OS_ERR_INVALID if malformed, OS_ERR_TOOBIG past the
 * buffer's cap. On error out is unchanged. */
static os_err hex_data(os_buf *out, const json_t *v)
{
    const char *s = jstr(v);
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
    if (os_hex_decode(out->data + out->len, n / 2, &got, s + 2, n) != OS_OK)
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
        has_data = hex_data(&rd, data) == OS_OK;
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

/* One JSON-RPC exchange: params is stolen; *result is a new reference on OS_OK. */
static os_err rpc(os_chain *ch, json_t **result, os_chain_error *e, const char *method,
                  json_t *params)
{
    json_t *req, *resp = NULL, *jv, *id, *res, *er;
    json_error_t jerr;
    char *body = NULL;
    uint64_t req_id;
    os_buf buf;
    os_err err;

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

    err = OS_ERR_NETWORK;
    if (!depth_ok(buf.data, buf.len, ch->cfg.max_json_depth)) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: response nested deeper than %u", method,
                         ch->cfg.max_json_depth);
        goto out;
    }
    resp = json_loadb((const char *)(buf.data ? buf.data : (const uint8_t *)""), buf.len,
                      JSON_REJECT_DUPLICATES, &jerr);
    if (resp == NULL || !json_is_object(resp)) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: response is not a JSON object", method);
        goto out;
    }
    jv = json_object_get(resp, "jsonrpc");
    id = json_object_get(resp, "id");
    res = json_object_get(resp, "result");
    er = json_object_get(resp, "error");
    if (!json_is_string(jv) || strcmp(json_string_value(jv), "2.0") != 0 || !json_is_integer(id) ||
        (uint64_t)json_integer_value(id) != (req_id & INT32_MAX) || (res == NULL) == (er == NULL)) {
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
    return rpc(ch, result, err, method, params);
}

/* ---- field validation -------------------------------------------------------------------- */

static os_err bad_field(os_chain_error *e, const char *method, const char *field)
{
    os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: missing or malformed %s", method, field);
    return OS_ERR_NETWORK;
}

/* Maps hex_data's result to the client's return codes. */
static os_err data_field(os_chain_error *e, const char *method, os_err err, const os_buf *out)
{
    if (err == OS_ERR_TOOBIG) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: result larger than the %zu-byte buffer",
                         method, out->max);
        return OS_ERR_TOOBIG;
    }
    return err == OS_OK ? OS_OK : bad_field(e, method, "result");
}

static os_err field_u64(uint64_t *v, os_chain_error *e, const char *method, const json_t *j,
                        const char *field)
{
    os_err err = os_chain_quantity_u64(v, jstr(j));

    if (err == OS_ERR_RANGE) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: %s does not fit in 64 bits", method,
                         field);
        return err;
    }
    return err == OS_OK ? OS_OK : bad_field(e, method, field);
}

/* Exactly len bytes of "0x" hex. */
static os_err field_bytes(uint8_t *out, size_t len, os_chain_error *e, const char *method,
                          const json_t *j, const char *field)
{
    const char *s = jstr(j);

    if (s == NULL || s[0] != '0' || s[1] != 'x' || os_hex_decode_exact(out, len, s) != OS_OK)
        return bad_field(e, method, field);
    return OS_OK;
}

/* An address or JSON null. */
static os_err field_addr_opt(bool *has, uint8_t out[20], os_chain_error *e, const char *method,
                             const json_t *j, const char *field)
{
    *has = false;
    if (j == NULL || json_is_null(j))
        return OS_OK;
    *has = true;
    return field_bytes(out, 20, e, method, j, field);
}

/* Simple calls whose result is one quantity. */
static os_err call_u64(os_chain *ch, uint64_t *v, os_chain_error *e, const char *method,
                       json_t *params)
{
    json_t *res;
    os_err err = rpc(ch, &res, e, method, params);

    if (err != OS_OK)
        return err;
    err = field_u64(v, e, method, res, "result");
    json_decref(res);
    return err;
}

static json_t *addr_json(const uint8_t addr[20])
{
    char s[OS_HEX_LEN(20)];

    if (os_hex_encode(s, sizeof(s), addr, 20, 1) != OS_OK)
        return NULL;
    return json_string(s);
}

static json_t *bytes_json(const uint8_t *p, size_t n)
{
    size_t cap = OS_HEX_LEN(n);
    char *s = malloc(cap);
    json_t *j = NULL;

    if (s != NULL && os_hex_encode(s, cap, p, n, 1) == OS_OK)
        j = json_stringn(s, cap - 1);
    free(s);
    return j;
}

static json_t *hash_json(const uint8_t h[32])
{
    return bytes_json(h, 32);
}

/* [x, tag]; x stolen. */
static json_t *params2(json_t *x, const char *tag)
{
    json_t *a = json_array();

    if (a == NULL || json_array_append_new(a, x) != 0 ||
        (tag != NULL && json_array_append_new(a, json_string(tag)) != 0)) {
        if (a == NULL)
            json_decref(x);
        json_decref(a);
        return NULL;
    }
    return a;
}

static os_err nomem(os_chain_error *e, const char *method)
{
    os_chain_err_set(e, OS_CHAIN_FAIL_NONE, "%s: out of memory", method);
    return OS_ERR_NOMEM;
}

/* ---- plain calls ------------------------------------------------------------------------- */

os_err os_chain_chain_id(os_chain *ch, uint64_t *id, os_chain_error *err)
{
    ENTRY(err);
    return call_u64(ch, id, err, "eth_chainId", NULL);
}

os_err os_chain_block_number(os_chain *ch, uint64_t *n, os_chain_error *err)
{
    ENTRY(err);
    return call_u64(ch, n, err, "eth_blockNumber", NULL);
}

os_err os_chain_nonce(os_chain *ch, uint64_t *nonce, os_chain_error *err, const uint8_t addr[20])
{
    json_t *p;

    ENTRY(err);
    p = params2(addr_json(addr), "pending");
    if (p == NULL)
        return nomem(err, "eth_getTransactionCount");
    return call_u64(ch, nonce, err, "eth_getTransactionCount", p);
}

os_err os_chain_balance(os_chain *ch, os_u256 *wei, os_chain_error *err, const uint8_t addr[20])
{
    json_t *p, *res;
    os_err rc;

    ENTRY(err);
    p = params2(addr_json(addr), "latest");
    if (p == NULL)
        return nomem(err, "eth_getBalance");
    rc = rpc(ch, &res, err, "eth_getBalance", p);
    if (rc != OS_OK)
        return rc;
    rc = os_chain_quantity_u256(wei, jstr(res));
    json_decref(res);
    return rc == OS_OK ? OS_OK : bad_field(err, "eth_getBalance", "result");
}

os_err os_chain_code(os_chain *ch, os_buf *code, os_chain_error *err, const uint8_t addr[20])
{
    json_t *p, *res;
    size_t mark = code->len;
    os_err rc;

    ENTRY(err);
    p = params2(addr_json(addr), "latest");
    if (p == NULL)
        return nomem(err, "eth_getCode");
    rc = rpc(ch, &res, err, "eth_getCode", p);
    if (rc != OS_OK)
        return rc;
    rc = data_field(err, "eth_getCode", hex_data(code, res), code);
    if (rc != OS_OK)
        code->len = mark;
    json_decref(res);
    return rc;
}

os_err os_chain_suggest_fees(os_chain *ch, os_chain_fees *fees, os_chain_error *err)
{
    json_t *p, *res;
    const json_t *base;
    size_t n;
    os_err rc;

    ENTRY(err);
    memset(fees, 0, sizeof(*fees));
    /* one block of history: baseFeePerGas holds its base fee and the next block's */
    p = json_pack("[s,s,[]]", "0x1", "latest");
    if (p == NULL)
        return nomem(err, "eth_feeHistory");
    rc = rpc(ch, &res, err, "eth_feeHistory", p);
    if (rc != OS_OK)
        return rc;
    base = json_object_get(res, "baseFeePerGas");
    n = json_array_size(base);
    if (n == 0 || n > 2)
        rc = bad_field(err, "eth_feeHistory", "baseFeePerGas");
    else
        rc = field_u64(&fees->base_fee, err, "eth_feeHistory", json_array_get(base, n - 1),
                       "baseFeePerGas");
    json_decref(res);
    if (rc != OS_OK)
        return rc;
    rc = call_u64(ch, &fees->tip, err, "eth_maxPriorityFeePerGas", NULL);
    if (rc != OS_OK)
        return rc;
    if (fees->base_fee > (UINT64_MAX - fees->tip) / 2) {
        os_chain_err_set(err, OS_CHAIN_FAIL_RESPONSE, "fees: base fee %" PRIu64 " too large",
                         fees->base_fee);
        return OS_ERR_RANGE;
    }
    fees->max_fee = 2 * fees->base_fee + fees->tip;
    return OS_OK;
}

static json_t *msg_json(const os_chain_msg *m)
{
    char q[67];
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    quantity_format_u256(q, &m->value);
    if ((m->has_from && json_object_set_new(o, "from", addr_json(m->from)) != 0) ||
        (m->has_to && json_object_set_new(o, "to", addr_json(m->to)) != 0) ||
        json_object_set_new(o, "value", json_string(q)) != 0 ||
        json_object_set_new(o, "data", bytes_json(m->data, m->data_len)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

os_err os_chain_estimate_gas(os_chain *ch, uint64_t *gas, os_chain_error *err,
                             const os_chain_msg *msg)
{
    json_t *p;

    ENTRY(err);
    if (msg->data_len > OS_TX_MAX_DATA || (msg->data_len > 0 && msg->data == NULL))
        return OS_ERR_INVALID;
    p = params2(msg_json(msg), NULL);
    if (p == NULL)
        return nomem(err, "eth_estimateGas");
    return call_u64(ch, gas, err, "eth_estimateGas", p);
}

static bool block_tag_ok(const char *b)
{
    uint64_t n;
    static const char *const tags[] = {"latest", "pending", "safe", "finalized", "earliest"};

    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        if (strcmp(b, tags[i]) == 0)
            return true;
    return os_chain_quantity_u64(&n, b) == OS_OK;
}

os_err os_chain_call(os_chain *ch, os_buf *out, os_chain_error *err, const os_chain_msg *msg,
                     const char *block)
{
    json_t *p, *res;
    size_t mark = out->len;
    os_err rc;

    ENTRY(err);
    if (block == NULL)
        block = "latest";
    if (!block_tag_ok(block) || msg->data_len > OS_TX_MAX_DATA ||
        (msg->data_len > 0 && msg->data == NULL))
        return OS_ERR_INVALID;
    p = params2(msg_json(msg), block);
    if (p == NULL)
        return nomem(err, "eth_call");
    rc = rpc(ch, &res, err, "eth_call", p);
    if (rc != OS_OK)
        return rc;
    rc = data_field(err, "eth_call", hex_data(out, res), out);
    if (rc != OS_OK)
        out->len = mark;
    json_decref(res);
    return rc;
}

os_err os_chain_send_raw(os_chain *ch, uint8_t hash[32], os_chain_error *err, const uint8_t *raw,
                         size_t raw_len)
{
    json_t *p, *res;
    uint8_t want[32];
    os_err rc;

    ENTRY(err);
    if (raw == NULL || raw_len == 0 || raw_len > OS_TX_MAX_RAW)
        return OS_ERR_INVALID;
    p = params2(bytes_json(raw, raw_len), NULL);
    if (p == NULL)
        return nomem(err, "eth_sendRawTransaction");
    rc = rpc(ch, &res, err, "eth_sendRawTransaction", p);
    if (rc != OS_OK)
        return rc;
    rc = field_bytes(hash, 32, err, "eth_sendRawTransaction", res, "result");
    json_decref(res);
    if (rc != OS_OK)
        return rc;
    os_keccak256(want, raw, raw_len);
    if (memcmp(want, hash, 32) != 0) {
        os_chain_err_set(err, OS_CHAIN_FAIL_RESPONSE,
                         "eth_sendRawTransaction: node reports another hash");
        return OS_ERR_NETWORK;
    }
    return OS_OK;
}

/* ---- receipts and logs ------------------------------------------------------------------- */

void os_chain_logs_free(os_chain_log *logs, size_t n)
{
    if (logs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(logs[i].data);
    free(logs);
}

void os_chain_receipt_free(os_chain_receipt *rc)
{
    if (rc == NULL)
        return;
    os_chain_logs_free(rc->logs, rc->n_logs);
    free(rc);
}

static os_err parse_log(os_chain_log *l, os_chain_error *e, const char *method, const json_t *o)
{
    const json_t *topics = json_object_get(o, "topics"), *data = json_object_get(o, "data");
    const json_t *removed = json_object_get(o, "removed");
    const char *s;
    size_t n;
    os_err err;

    if (!json_is_object(o))
        return bad_field(e, method, "log");
    if ((err = field_bytes(l->address, 20, e, method, json_object_get(o, "address"),
                           "log address")) != OS_OK ||
        (err = field_u64(&l->block_number, e, method, json_object_get(o, "blockNumber"),
                         "log blockNumber")) != OS_OK ||
        (err = field_bytes(l->tx_hash, 32, e, method, json_object_get(o, "transactionHash"),
                           "log transactionHash")) != OS_OK ||
        (err = field_u64(&l->log_index, e, method, json_object_get(o, "logIndex"),
                         "log logIndex")) != OS_OK)
        return err;
    if (!json_is_array(topics) || json_array_size(topics) > 4)
        return bad_field(e, method, "log topics");
    l->n_topics = json_array_size(topics);
    for (size_t i = 0; i < l->n_topics; i++)
        if ((err = field_bytes(l->topics[i], 32, e, method, json_array_get(topics, i),
                               "log topic")) != OS_OK)
            return err;
    if (removed != NULL && !json_is_boolean(removed))
        return bad_field(e, method, "log removed");
    l->removed = json_is_true(removed);
    s = jstr(data);
    if (s == NULL || s[0] != '0' || s[1] != 'x')
        return bad_field(e, method, "log data");
    n = json_string_length(data) - 2;
    if (n % 2 != 0)
        return bad_field(e, method, "log data");
    l->data_len = n / 2;
    if (l->data_len > 0) {
        l->data = malloc(l->data_len);
        if (l->data == NULL)
            return nomem(e, method);
        if (os_hex_decode(l->data, l->data_len, &n, s + 2, 2 * l->data_len) != OS_OK)
            return bad_field(e, method, "log data");
    }
    return OS_OK;
}

static os_err parse_logs(os_chain_log **out, size_t *n_out, os_chain_error *e, const char *method,
                         const json_t *arr)
{
    os_chain_log *logs;
    size_t n = json_array_size(arr);
    os_err err;

    *out = NULL;
    *n_out = 0;
    if (!json_is_array(arr))
        return bad_field(e, method, "logs");
    if (n > OS_CHAIN_MAX_LOGS) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: more than %d logs", method,
                         OS_CHAIN_MAX_LOGS);
        return OS_ERR_TOOBIG;
    }
    if (n == 0)
        return OS_OK;
    logs = calloc(n, sizeof(*logs));
    if (logs == NULL)
        return nomem(e, method);
    for (size_t i = 0; i < n; i++) {
        err = parse_log(&logs[i], e, method, json_array_get(arr, i));
        if (err != OS_OK) {
            os_chain_logs_free(logs, i + 1);
            return err;
        }
    }
    *out = logs;
    *n_out = n;
    return OS_OK;
}

static os_err parse_receipt(os_chain_receipt *r, os_chain_error *e, const json_t *o)
{
    static const char m[] = "eth_getTransactionReceipt";
    const json_t *price = json_object_get(o, "effectiveGasPrice");
    uint64_t status;
    os_err err;

    if ((err = field_bytes(r->tx_hash, 32, e, m, json_object_get(o, "transactionHash"),
                           "transactionHash")) != OS_OK ||
        (err = field_bytes(r->block_hash, 32, e, m, json_object_get(o, "blockHash"),
                           "blockHash")) != OS_OK ||
        (err = field_u64(&r->block_number, e, m, json_object_get(o, "blockNumber"),
                         "blockNumber")) != OS_OK ||
        (err = field_u64(&r->gas_used, e, m, json_object_get(o, "gasUsed"), "gasUsed")) != OS_OK ||
        (err = field_u64(&status, e, m, json_object_get(o, "status"), "status")) != OS_OK ||
        (err = field_bytes(r->from, 20, e, m, json_object_get(o, "from"), "from")) != OS_OK ||
        (err = field_addr_opt(&r->has_to, r->to, e, m, json_object_get(o, "to"), "to")) != OS_OK ||
        (err = field_addr_opt(&r->has_contract, r->contract_address, e, m,
                              json_object_get(o, "contractAddress"), "contractAddress")) != OS_OK)
        return err;
    if (status > 1)
        return bad_field(e, m, "status");
    r->status = status == 1;
    if (price != NULL &&
        (err = field_u64(&r->effective_gas_price, e, m, price, "effectiveGasPrice")) != OS_OK)
        return err;
    return parse_logs(&r->logs, &r->n_logs, e, m, json_object_get(o, "logs"));
}

os_err os_chain_receipt_get(os_chain *ch, os_chain_receipt **rc, os_chain_error *err,
                            const uint8_t hash[32])
{
    static const char m[] = "eth_getTransactionReceipt";
    os_chain_receipt *r;
    json_t *p, *res;
    uint64_t head;
    os_err e;

    ENTRY(err);
    *rc = NULL;
    p = params2(hash_json(hash), NULL);
    if (p == NULL)
        return nomem(err, m);
    e = rpc(ch, &res, err, m, p);
    if (e != OS_OK)
        return e;
    if (json_is_null(res)) {
        json_decref(res);
        os_chain_err_set(err, OS_CHAIN_FAIL_NONE, "%s: not mined yet", m);
        return OS_ERR_NOTFOUND;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        json_decref(res);
        return nomem(err, m);
    }
    e = json_is_object(res) ? parse_receipt(r, err, res) : bad_field(err, m, "result");
    json_decref(res);
    if (e == OS_OK && memcmp(r->tx_hash, hash, 32) != 0)
        e = bad_field(err, m, "transactionHash (another transaction)");
    if (e == OS_OK)
        e = call_u64(ch, &head, err, "eth_blockNumber", NULL);
    if (e != OS_OK) {
        os_chain_receipt_free(r);
        return e;
    }
    /* a node behind the one that served the receipt (load balancers) can report an older head */
    r->confirmations = head >= r->block_number ? head - r->block_number + 1 : 0;
    *rc = r;
    return OS_OK;
}

os_err os_chain_wait_receipt(os_chain *ch, os_chain_receipt **rc, os_chain_error *err,
                             const uint8_t hash[32], uint64_t confirmations, long timeout_ms,
                             long poll_ms)
{
    long long deadline;
    os_err e;

    ENTRY(err);
    *rc = NULL;
    if (timeout_ms <= 0 || poll_ms <= 0)
        return OS_ERR_INVALID;
    if (confirmations == 0)
        confirmations = 1;
    deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        long long left;
        e = os_chain_receipt_get(ch, rc, err, hash);
        if (e == OS_OK) {
            if ((*rc)->confirmations >= confirmations)
                return OS_OK;
            os_chain_receipt_free(*rc);
            *rc = NULL;
        } else if (e != OS_ERR_NOTFOUND && e != OS_ERR_NETWORK && e != OS_ERR_TIMEOUT) {
            return e;
        } else if (e == OS_ERR_NETWORK && err->kind == OS_CHAIN_FAIL_RESPONSE) {
            return e; /* a misbehaving node will not get better by asking again */
        }
        left = deadline - monotonic_ms();
        if (left <= 0)
            break;
        sleep_ms(left < poll_ms ? (long)left : poll_ms);
    }
    os_chain_err_set(err, OS_CHAIN_FAIL_NONE,
                     "no receipt with %" PRIu64 " confirmation(s) within %ld ms", confirmations,
                     timeout_ms);
    return OS_ERR_TIMEOUT;
}

os_err os_chain_get_logs(os_chain *ch, os_chain_log **logs, size_t *n, os_chain_error *err,
                         const os_chain_filter *f)
{
    static const char m[] = "eth_getLogs";
    char q[OS_CHAIN_QUANTITY_LEN];
    json_t *o, *topics, *res;
    os_err e;

    ENTRY(err);
    *logs = NULL;
    *n = 0;
    if (f->n_topics > 4 || (!f->to_latest && f->to_block < f->from_block))
        return OS_ERR_INVALID;
    o = json_object();
    topics = json_array();
    if (o == NULL || topics == NULL) {
        json_decref(o);
        json_decref(topics);
        return nomem(err, m);
    }
    for (size_t i = 0; i < f->n_topics; i++)
        if (json_array_append_new(topics, f->topics[i].any ? json_null()
                                                           : hash_json(f->topics[i].value)) != 0)
            goto oom;
    if (json_object_set_new(o, "topics", topics) != 0) {
        topics = NULL;
        goto oom;
    }
    topics = NULL;
    os_chain_quantity_format(q, f->from_block);
    if (json_object_set_new(o, "fromBlock", json_string(q)) != 0)
        goto oom;
    os_chain_quantity_format(q, f->to_block);
    if (json_object_set_new(o, "toBlock", json_string(f->to_latest ? "latest" : q)) != 0)
        goto oom;
    if (f->has_address && json_object_set_new(o, "address", addr_json(f->address)) != 0)
        goto oom;
    o = params2(o, NULL);
    if (o == NULL)
        return nomem(err, m);
    e = rpc(ch, &res, err, m, o);
    if (e != OS_OK)
        return e;
    e = parse_logs(logs, n, err, m, res);
    json_decref(res);
    return e;
oom:
    json_decref(topics);
    json_decref(o);
    return nomem(err, m);
}

os_err os_chain_tx_known(os_chain *ch, bool *known, os_chain_error *err, const uint8_t hash[32])
{
    static const char m[] = "eth_getTransactionByHash";
    json_t *p, *res;
    os_err e;

    ENTRY(err);
    *known = false;
    p = params2(hash_json(hash), NULL);
    if (p == NULL)
        return nomem(err, m);
    e = rpc(ch, &res, err, m, p);
    if (e != OS_OK)
        return e;
    if (json_is_object(res))
        *known = true;
    else if (!json_is_null(res))
        e = bad_field(err, m, "result");
    json_decref(res);
    return e;
}

uint64_t os_chain_configured_chain_id(const os_chain *ch)
{
    return ch->cfg.chain_id;
}
