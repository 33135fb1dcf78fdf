/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The encrypted inference exchange of POST /v1/infer (PROTOCOL.md §5): the JSON plaintexts inside
 * the OHTTP envelope, which both daemons build and check, and the buyer's side of one call. The
 * call seals the request once (its keccak256 is the voucher's and the credential's metadataHash),
 * POSTs it with nothing but the media types and the payment and credential headers, and reads the
 * answer as it arrives: a chunked stream is opened chunk by chunk and each event handed on at once,
 * a whole response, a 402 invoice or a seller error is collected under a cap. Every plaintext is
 * parsed with the same depth cap and exact key sets; errors name fields, never their values.
 */
#include "openseed/infer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "openseed/buf.h"
#include "openseed/ct.h"
#include "openseed/json.h"
#include "openseed/keccak.h"
#include "openseed/money.h"
#include "openseed/record.h"

#define TMP_ERR_LEN OS_JSON_ERR_LEN
#define STATUS_MIN 100
#define STATUS_MAX 599
#define ACCEPT_BOTH OS_OHTTP_MEDIA_RESPONSE ", " OS_OHTTP_MEDIA_CHUNKED_RESPONSE

static const char *const inner_keys[] = {"api", "service", "body", NULL};
static const char *const usage_keys[] = {"input_tokens", "cached_tokens", "output_tokens", NULL};
static const char *const final_error_keys[] = {"type", "message", NULL};
/* What may stand beside the final fields: the whole response adds "body". */
static const char *const whole_keys[] = {"status", "body", "usage", "cost", "cumulative_consumed",
                                         "error",  NULL};
/* A stream's final chunk may carry "body" too: the upstream's error when it failed before any
 * event (the stream had already started, so its status cannot change). */
static const char *const chunk_final_keys[] = {"status", "usage", "cost", "cumulative_consumed",
                                               "error",  "body", NULL};

/* ------------------------------------------------------------------ field checks */

/* A string field copied into out[cap]; longer than cap - 1 bytes is refused. */
static os_err get_copy(char *out, size_t cap, const json_t *obj, const char *key, const char *where,
                       char *err, size_t errcap)
{
    const char *s;
    os_err rc = os_json_at_str(&s, obj, key, cap - 1, where, err, errcap);

    if (rc != OS_OK)
        return rc;
    memcpy(out, s, strlen(s) + 1);
    return OS_OK;
}

/* A service name: 1..OS_INFER_SERVICE_MAX-1 bytes of printable ASCII without spaces. */
static int service_ok(const char *s, size_t n)
{
    if (n == 0 || n >= OS_INFER_SERVICE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ plaintexts */

json_t *os_infer_inner_build(const char *api, const char *service, const json_t *body)
{
    json_t *root;

    if (api == NULL || service == NULL || !json_is_object(body) || os_api_from_name(api) == 0 ||
        !service_ok(service, strlen(service)))
        return NULL;
    root = json_object();
    if (root == NULL || json_object_set_new(root, "api", json_string(api)) != 0 ||
        json_object_set_new(root, "service", json_string(service)) != 0 ||
        /* jansson takes a mutable pointer to count the reference; body is not modified */
        json_object_set(root, "body", (json_t *)body) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

os_err os_infer_inner_parse(os_infer_inner *out, const json_t *root, char *err, size_t errcap)
{
    const json_t *api, *service, *body;
    os_err rc;

    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "bad arguments");
    if ((rc = os_json_check_object(root, inner_keys, "", err, errcap)) != OS_OK)
        return rc;
    api = json_object_get(root, "api");
    service = json_object_get(root, "service");
    body = json_object_get(root, "body");
    if (!json_is_string(api) || strlen(json_string_value(api)) != json_string_length(api) ||
        os_api_from_name(json_string_value(api)) == 0)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"api\" must be \"openai.chat\", \"openai.embeddings\" or "
                       "\"anthropic.messages\"");
    /* service_ok reads json_string_length bytes, so an embedded NUL is refused too */
    if (!json_is_string(service) ||
        !service_ok(json_string_value(service), json_string_length(service)))
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"service\" must be 1 to %d bytes of printable ASCII without spaces",
                       OS_INFER_SERVICE_MAX - 1);
    if ((rc = os_json_at_object(&body, root, "body", "", err, errcap)) != OS_OK)
        return rc;
    memcpy(out->api, json_string_value(api), json_string_length(api) + 1);
    memcpy(out->service, json_string_value(service), json_string_length(service) + 1);
    out->body = (json_t *)body;
    return OS_OK;
}

static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

json_t *os_infer_final_to_json(const os_infer_final *f)
{
    json_t *obj, *usage = NULL, *e = NULL;
    int ok;

    /* Never write what os_infer_final_parse would refuse. */
    if (f == NULL || f->status < STATUS_MIN || f->status > STATUS_MAX ||
        f->usage.cached_tokens > f->usage.input_tokens ||
        (f->has_error && (!terminated(f->error_type, sizeof(f->error_type)) ||
                          !terminated(f->error_message, sizeof(f->error_message)))))
        return NULL;
    obj = json_object();
    ok = obj != NULL && os_json_put(obj, "status", json_integer(f->status)) &&
         (usage = os_json_child(obj, "usage", json_object())) != NULL &&
         os_json_put(usage, "input_tokens", os_json_u64(f->usage.input_tokens)) &&
         os_json_put(usage, "cached_tokens", os_json_u64(f->usage.cached_tokens)) &&
         os_json_put(usage, "output_tokens", os_json_u64(f->usage.output_tokens)) &&
         os_json_put(obj, "cost", os_money_to_json(f->cost)) &&
         os_json_put(obj, "cumulative_consumed", os_money_to_json(f->cumulative_consumed));
    if (ok && f->has_error)
        ok = (e = os_json_child(obj, "error", json_object())) != NULL &&
             os_json_put(e, "type", json_string(f->error_type)) &&
             os_json_put(e, "message", json_string(f->error_message));
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

os_err os_infer_final_parse(os_infer_final *f, const json_t *obj, char *err, size_t errcap)
{
    char tmp[TMP_ERR_LEN];
    os_infer_final x;
    const json_t *usage, *e;
    uint64_t status;
    os_err rc;

    if (f == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "bad arguments");
    if (!json_is_object(obj))
        return os_errf(err, errcap, OS_ERR_INVALID, "must be a JSON object");
    memset(&x, 0, sizeof(x));
    if ((rc = os_json_at_u64(&status, obj, "status", STATUS_MIN, STATUS_MAX, "", err, errcap)) !=
        OS_OK)
        return rc;
    x.status = (long)status;
    if ((rc = os_json_at_object(&usage, obj, "usage", "", err, errcap)) != OS_OK ||
        (rc = os_json_check_object(usage, usage_keys, "usage: ", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&x.usage.input_tokens, usage, "input_tokens", 0, UINT64_MAX,
                             "usage: ", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&x.usage.cached_tokens, usage, "cached_tokens", 0, UINT64_MAX,
                             "usage: ", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&x.usage.output_tokens, usage, "output_tokens", 0, UINT64_MAX,
                             "usage: ", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64_str(&x.cost, obj, "cost", "", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64_str(&x.cumulative_consumed, obj, "cumulative_consumed", "", err,
                                 errcap)) != OS_OK ||
        (rc = os_json_err_at(os_json_opt_object(&e, obj, "error", tmp, sizeof(tmp)), "", tmp, err,
                             errcap)) != OS_OK)
        return rc;
    if (x.usage.cached_tokens > x.usage.input_tokens)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "usage: cached_tokens must not exceed input_tokens");
    if (e != NULL) {
        x.has_error = true;
        if ((rc = os_json_check_object(e, final_error_keys, "error: ", err, errcap)) != OS_OK ||
            (rc = get_copy(x.error_type, sizeof(x.error_type), e, "type", "error: ", err,
                           errcap)) != OS_OK ||
            (rc = get_copy(x.error_message, sizeof(x.error_message), e, "message", "error: ", err,
                           errcap)) != OS_OK)
            return rc;
    }
    *f = x;
    return OS_OK;
}

/* ------------------------------------------------------------------ the call */

struct os_infer_call {
    os_ohttp_ctx ctx; /* the request's HPKE context: the response keys come from it */
    uint8_t *envelope;
    size_t envelope_len;
    uint8_t metadata_hash[32];
    int sent;
};

os_err os_infer_call_new(os_infer_call **out, const os_ohttp_keyconfig *kc, const char *api,
                         const char *service, const json_t *body)
{
    os_infer_call *c;
    json_t *root;
    char *text;
    size_t len;
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (kc == NULL || api == NULL || service == NULL || !json_is_object(body) ||
        os_api_from_name(api) == 0 || !service_ok(service, strlen(service)))
        return OS_ERR_INVALID;
    root = os_infer_inner_build(api, service, body);
    if (root == NULL)
        return OS_ERR_NOMEM;
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (text == NULL)
        return OS_ERR_NOMEM; /* or a string that is not UTF-8, which jansson cannot hold */
    len = strlen(text);
    if (len > OS_INFER_MAX_REQUEST) {
        rc = OS_ERR_TOOBIG;
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->envelope = malloc(len + OS_OHTTP_REQUEST_OVERHEAD)) == NULL) {
        free(c);
        rc = OS_ERR_NOMEM;
        goto out;
    }
    rc = os_ohttp_request_encap(&c->ctx, c->envelope, len + OS_OHTTP_REQUEST_OVERHEAD,
                                &c->envelope_len, kc, (const uint8_t *)text, len);
    if (rc != OS_OK) {
        os_infer_call_free(c);
        goto out;
    }
    os_keccak256(c->metadata_hash, c->envelope, c->envelope_len);
    *out = c;
out:
    /* the request in the clear is the buyer's prompt */
    os_wipe(text, len);
    free(text);
    return rc;
}

void os_infer_call_free(os_infer_call *c)
{
    if (c == NULL)
        return;
    os_ohttp_ctx_clear(&c->ctx);
    free(c->envelope);
    os_wipe(c, sizeof(*c));
    free(c);
}

const uint8_t *os_infer_call_envelope(const os_infer_call *c, size_t *len)
{
    if (len != NULL)
        *len = c != NULL ? c->envelope_len : 0;
    return c != NULL ? c->envelope : NULL;
}

void os_infer_call_metadata_hash(const os_infer_call *c, uint8_t out[32])
{
    memcpy(out, c->metadata_hash, 32);
}

void os_infer_result_free(os_infer_result *res)
{
    if (res == NULL)
        return;
    json_decref(res->body);
    res->body = NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef enum { RX_UNKNOWN = 0, RX_WHOLE, RX_CHUNKED, RX_ERROR, RX_BAD_TYPE } rx_mode;

/* The state of one answer as it arrives, shared with the body callback. */
typedef struct rx {
    os_infer_call *c;
    os_infer_result *res;
    rx_mode mode;
    os_buf body; /* RX_WHOLE: the ohttp-res; RX_ERROR: the start of the error body */
    os_ohttp_chunk_receiver *receiver;
    uint8_t *pt; /* one chunk's plaintext, OS_INFER_MAX_CHUNK + 1 (a NUL after it) */
    size_t pt_hwm; /* bytes of pt ever written (the wipe covers these, not all 256 KiB) */
    os_err fail; /* why the callback stopped the transfer, if it did */
    const char *why;
    bool stopped;
    bool have_final;
    uint64_t t0;
    os_infer_event_cb on_event;
    void *ud;
} rx;

/* Whether the Content-Type's media type (before any parameters) is want, case-insensitively. */
static bool media_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (ct == NULL || strncasecmp(ct, want, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static os_err rx_fail(rx *x, os_err rc, const char *why)
{
    if (x->fail == OS_OK) {
        x->fail = rc;
        x->why = why;
    }
    return rc;
}

/* Picks how to read the body once the status and headers are in. */
static os_err rx_start(rx *x, const os_http_client_res *hres)
{
    const char *ct = os_http_client_res_header(hres, "Content-Type");
    os_err rc;

    if (hres->status != 200) {
        x->mode = RX_ERROR;
        os_buf_init(&x->body, OS_INFER_MAX_ERROR_BODY);
        return OS_OK;
    }
    if (media_is(ct, OS_OHTTP_MEDIA_RESPONSE)) {
        x->mode = RX_WHOLE;
        os_buf_init(&x->body, OS_INFER_MAX_RESPONSE + OS_OHTTP_RESPONSE_OVERHEAD);
        return OS_OK;
    }
    if (!media_is(ct, OS_OHTTP_MEDIA_CHUNKED_RESPONSE)) {
        x->mode = RX_BAD_TYPE;
        return rx_fail(x, OS_ERR_NETWORK, "a 200 answer that is not an OHTTP response");
    }
    x->mode = RX_CHUNKED;
    x->res->streamed = true;
    x->pt = malloc(OS_INFER_MAX_CHUNK + 1);
    if (x->pt == NULL)
        return rx_fail(x, OS_ERR_NOMEM, "out of memory");
    rc = os_ohttp_chunk_receiver_new(&x->receiver, &x->c->ctx, OS_INFER_MAX_CHUNK);
    if (rc != OS_OK)
        return rx_fail(x, rc, "cannot key the chunk receiver");
    return OS_OK;
}

static os_err rx_final(rx *x, const uint8_t *pt, size_t len, const char *const keys[]);

/* Feeds stream bytes (end: the transfer is over) and hands each opened chunk on. */
static os_err rx_feed(rx *x, const uint8_t *data, size_t len, int end)
{
    os_ohttp_chunk_status st;
    size_t pt_len, used;
    os_err rc;

    for (;;) {
        rc = os_ohttp_chunk_receiver_feed(x->receiver, &st, x->pt, OS_INFER_MAX_CHUNK, &pt_len,
                                          &used, data, len, end);
        if (rc == OS_OK && pt_len + 1 > x->pt_hwm) /* a failed open wipes what it wrote */
            x->pt_hwm = pt_len + 1;
        if (rc == OS_ERR_CRYPTO)
            return rx_fail(x, rc, "a response chunk failed to authenticate");
        if (rc == OS_ERR_INVALID && end)
            return rx_fail(x, OS_ERR_NETWORK, "the stream ended before its final chunk");
        if (rc == OS_ERR_TOOBIG)
            return rx_fail(x, OS_ERR_NETWORK, "a response chunk over the size cap");
        if (rc != OS_OK)
            return rx_fail(x, rc, "the chunk stream is malformed");
        data += used;
        len -= used;
        if (st == OS_OHTTP_CHUNK_NEED_MORE)
            return OS_OK;
        if (st == OS_OHTTP_CHUNK_DONE)
            return rx_final(x, x->pt, pt_len, chunk_final_keys);
        x->pt[pt_len] = '\0';
        if (x->res->events == 0)
            x->res->ttft_ms = now_ms() - x->t0;
        x->res->events++;
        if (x->on_event != NULL && x->on_event(x->ud, (const char *)x->pt, pt_len) != 0) {
            x->stopped = true;
            return OS_ERR_NETWORK;
        }
    }
}

static int on_body(void *ud, const os_http_client_res *hres, const uint8_t *data, size_t len)
{
    rx *x = ud;

    if (x->mode == RX_UNKNOWN && rx_start(x, hres) != OS_OK)
        return 1;
    switch (x->mode) {
    case RX_CHUNKED:
        return rx_feed(x, data, len, 0) != OS_OK;
    case RX_WHOLE:
        if (os_buf_append(&x->body, data, len) != OS_OK) {
            rx_fail(x, OS_ERR_TOOBIG, "the response is over the size cap");
            return 1;
        }
        return 0;
    case RX_ERROR:
        /* Only the start of an error body is read; the rest is let through unread. */
        if (x->body.len < x->body.max) {
            size_t room = x->body.max - x->body.len;
            if (os_buf_append(&x->body, data, len < room ? len : room) != OS_OK) {
                rx_fail(x, OS_ERR_NOMEM, "out of memory");
                return 1;
            }
        }
        return 0;
    default:
        return 1;
    }
}

/* Reads the closing fields (and for a whole response the body) from a decrypted plaintext. */
static os_err rx_final(rx *x, const uint8_t *pt, size_t len, const char *const keys[])
{
    char tmp[TMP_ERR_LEN];
    json_t *root;
    os_err rc =
        os_json_parse(&root, (const char *)pt, len, len, OS_INFER_JSON_DEPTH, tmp, sizeof(tmp));

    if (rc != OS_OK)
        return rx_fail(x, rc == OS_ERR_NOMEM ? rc : OS_ERR_INVALID,
                       "the closing plaintext is not JSON");
    if (os_json_check_object(root, keys, "", NULL, 0) != OS_OK ||
        os_infer_final_parse(&x->res->final, root, NULL, 0) != OS_OK) {
        json_decref(root);
        return rx_fail(x, OS_ERR_INVALID, "the closing plaintext is malformed");
    }
    {
        json_t *body = json_object_get(root, "body");
        if (body == NULL && keys == whole_keys) {
            json_decref(root);
            return rx_fail(x, OS_ERR_INVALID, "the response has no body");
        }
        if (body != NULL)
            x->res->body = json_incref(body);
    }
    json_decref(root);
    x->have_final = true;
    return OS_OK;
}

static os_err rx_whole(rx *x)
{
    size_t cap = x->body.len, pt_len = 0;
    uint8_t *pt;
    os_err rc;

    if (cap < OS_OHTTP_RESPONSE_OVERHEAD)
        return rx_fail(x, OS_ERR_CRYPTO, "the response is too short to be an OHTTP response");
    pt = malloc(cap);
    if (pt == NULL)
        return rx_fail(x, OS_ERR_NOMEM, "out of memory");
    rc = os_ohttp_response_decap(&x->c->ctx, pt, cap, &pt_len, x->body.data, x->body.len);
    if (rc != OS_OK)
        rc = rx_fail(x, OS_ERR_CRYPTO, "the response failed to decrypt");
    else
        rc = rx_final(x, pt, pt_len, whole_keys);
    os_wipe(pt, cap);
    free(pt);
    return rc;
}

/* Copies a JSON string field of obj into out[cap], cut at cap - 1 bytes; "" otherwise. */
static void copy_str(char *out, size_t cap, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* The seller's OpenAI-shaped error body, when it is one; anything else leaves the fields empty. */
static void rx_error_body(rx *x)
{
    json_t *root = NULL;
    const json_t *e;

    if (x->body.len == 0 || os_json_parse(&root, (const char *)x->body.data, x->body.len,
                                          x->body.len, OS_X402_JSON_DEPTH, NULL, 0) != OS_OK)
        return;
    e = json_object_get(root, "error");
    if (json_is_object(e)) {
        copy_str(x->res->error_type, sizeof(x->res->error_type), e, "type");
        copy_str(x->res->error_code, sizeof(x->res->error_code), e, "code");
        copy_str(x->res->error_message, sizeof(x->res->error_message), e, "message");
    }
    json_decref(root);
}

static void set_herr(os_http_client_error *herr, os_http_fail kind, long status, const char *why)
{
    if (herr == NULL)
        return;
    herr->kind = kind;
    herr->status = status;
    snprintf(herr->message, sizeof(herr->message), "POST %s: %s", OS_INFER_PATH, why);
}

os_err os_infer_call_send(os_infer_call *c, os_infer_result *res, os_http_client *http,
                          os_http_client_error *herr, const char *url, const char *payment,
                          const char *credential, os_infer_event_cb on_event, void *ud,
                          const atomic_int *abort)
{
    os_http_header hdrs[4] = {{"Content-Type", OS_OHTTP_MEDIA_REQUEST}, {"Accept", ACCEPT_BOTH}};
    size_t n_hdrs = 2;
    os_http_client_res hres;
    os_http_client_req req;
    rx x;
    os_err rc;

    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (herr != NULL)
        memset(herr, 0, sizeof(*herr));
    if (c == NULL || res == NULL || http == NULL || url == NULL || c->sent)
        return OS_ERR_INVALID;
    /* One context answers one response: a resend would need a new envelope and hash anyway. */
    c->sent = 1;
    /* An empty value is no value (curl would drop or blank the header anyway). */
    if (payment != NULL && payment[0] != '\0')
        hdrs[n_hdrs++] = (os_http_header){OS_X402_HDR_SIGNATURE, payment};
    if (credential != NULL && credential[0] != '\0')
        hdrs[n_hdrs++] = (os_http_header){OS_INFER_HDR_CREDENTIAL, credential};

    memset(&x, 0, sizeof(x));
    x.c = c;
    x.res = res;
    x.on_event = on_event;
    x.ud = ud;
    os_buf_init(&x.body, 0);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = hdrs;
    req.n_headers = n_hdrs;
    req.body = c->envelope;
    req.body_len = c->envelope_len;
    req.max_body = SIZE_MAX; /* capped per kind of answer in on_body */
    req.on_body = on_body;
    req.on_body_ud = &x;
    req.abort = abort;

    os_http_client_res_init(&hres);
    x.t0 = now_ms();
    rc = os_http_client_do(http, &hres, herr, &req);
    res->http_status = hres.status;
    if (x.mode == RX_UNKNOWN && rc == OS_OK && rx_start(&x, &hres) != OS_OK)
        rc = x.fail;
    if (x.fail != OS_OK) {
        rc = x.fail;
        goto out;
    }
    if (x.stopped) {
        res->stopped = true;
        x.why = "stopped by the event callback";
        rc = OS_ERR_NETWORK;
        goto out;
    }
    if (rc != OS_OK)
        goto out;

    if (x.mode == RX_CHUNKED) {
        rc = rx_feed(&x, NULL, 0, 1);
        if (rc == OS_OK && !x.have_final)
            rc = rx_fail(&x, OS_ERR_NETWORK, "the stream ended before its final chunk");
        if (rc == OS_OK && res->events == 0)
            res->ttft_ms = now_ms() - x.t0;
    } else {
        res->ttft_ms = now_ms() - x.t0;
        if (x.mode == RX_WHOLE)
            rc = rx_whole(&x);
    }
    if (rc != OS_OK)
        goto out;

    if (hres.status == 200) {
        const char *pr = os_http_client_res_header(&hres, OS_X402_HDR_RESPONSE);
        uint8_t id[32];
        uint64_t chain, amount;
        bool ok;
        /* A malformed receipt does not spoil a good answer: it just is not one. */
        if (pr != NULL && os_x402_response_decode(&ok, &chain, &amount, id, pr, NULL, 0) == OS_OK &&
            ok) {
            res->paid = true;
            res->paid_amount = amount;
        }
    } else {
        if (hres.status == 402) {
            const char *pr = os_http_client_res_header(&hres, OS_X402_HDR_REQUIRED);
            res->has_requirement =
                pr != NULL &&
                os_x402_required_decode(&res->requirement, res->payment_error,
                                        sizeof(res->payment_error), pr, NULL, 0) == OS_OK;
        }
        rx_error_body(&x);
    }
out:
    if (rc != OS_OK) {
        if (x.why != NULL)
            set_herr(herr, x.stopped ? OS_HTTP_FAIL_ABORTED : OS_HTTP_FAIL_PROTOCOL, hres.status,
                     x.why);
        os_infer_result_free(res);
    }
    os_ohttp_chunk_receiver_free(x.receiver);
    if (x.pt != NULL) {
        os_wipe(x.pt, x.pt_hwm);
        free(x.pt);
    }
    os_buf_free(&x.body);
    os_http_client_res_free(&hres);
    os_ohttp_ctx_clear(&c->ctx);
    return rc;
}
