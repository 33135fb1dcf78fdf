/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The encrypted /v1/infer exchange of infer.h. First the plaintexts: the request {"api","service",
 * "body"} and the closing fields, pinned to exact texts, with their refusals. Then the buyer's call
 * against a real os_http_server on 127.0.0.1 acting as a minimal seller gateway with its own HPKE
 * key pair: it decapsulates each request with os_ohttp_request_decap, checks that keccak256 of the
 * body it received is the call's metadataHash, records the headers that arrived, and answers as the
 * test asks: a whole message/ohttp-res; a chunked message/ohttp-chunked-res stream written by a
 * producer thread through os_http_res_stream (one event of 200 KiB, above the draft's 16 KiB
 * default, and chunks written in two pieces so they straddle reads); a 402 with PAYMENT-REQUIRED;
 * one whose PAYMENT-REQUIRED does not decode; a 400 OpenAI error; a 502 that is not JSON; a 200
 * that is not OHTTP; a whole response with a flipped bit; a stream with a flipped byte in its
 * middle chunk (OS_ERR_CRYPTO after the first event); a stream whose final chunk is not a closing
 * object (OS_ERR_INVALID); streams cut before the final chunk, cleanly and abruptly
 * (OS_ERR_NETWORK); an endless stream that on_event stops (the producer sees the client leave).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "openseed/base64.h"
#include "openseed/ct.h"
#include "openseed/hpke.h"
#include "openseed/http.h"
#include "openseed/infer.h"
#include "openseed/json.h"
#include "openseed/keccak.h"
#include "openseed/x402.h"

#define KEY_ID 7
#define BIG_EVENT_LEN (200u * 1024)
#define N_EVENTS 5
#define MAX_JOBS 16

/* ------------------------------------------------------------------ plaintexts */

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (v == NULL)
        fail_msg("bad test JSON: %s", je.text);
    return v;
}

static void test_inner_build_exact(void **state)
{
    json_t *body = parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    json_t *root;
    char *text;
    (void)state;

    root = os_infer_inner_build("openai.chat", "llama3.1-8b", body);
    assert_non_null(root);
    text = json_dumps(root, JSON_COMPACT);
    assert_string_equal(text, "{\"api\":\"openai.chat\",\"service\":\"llama3.1-8b\",\"body\":{"
                              "\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}"
                              "]}}");
    free(text);
    /* body is shared, not consumed: it outlives the plaintext */
    assert_ptr_equal(json_object_get(root, "body"), body);
    json_decref(root);
    assert_string_equal(json_string_value(json_object_get(body, "model")), "m");

    assert_null(os_infer_inner_build("openai.completions", "s", body));
    assert_null(os_infer_inner_build("openai.chat", "", body));
    assert_null(os_infer_inner_build("openai.chat", "a b", body));
    assert_null(os_infer_inner_build(NULL, "s", body));
    json_decref(body);
    body = parse("[1]");
    assert_null(os_infer_inner_build("openai.chat", "s", body));
    assert_null(os_infer_inner_build("openai.chat", "s", NULL));
    json_decref(body);
}

static void test_inner_parse(void **state)
{
    os_infer_inner in;
    char err[OS_JSON_ERR_LEN];
    json_t *root;
    (void)state;

    root = parse("{\"api\":\"anthropic.messages\",\"service\":\"claude:x/y_1.2-3\",\"body\":{}}");
    memset(&in, 0x55, sizeof(in));
    assert_int_equal(os_infer_inner_parse(&in, root, err, sizeof(err)), OS_OK);
    assert_string_equal(in.api, "anthropic.messages");
    assert_string_equal(in.service, "claude:x/y_1.2-3");
    assert_ptr_equal(in.body, json_object_get(root, "body"));
    json_decref(root);

    /* the longest service name, 63 bytes */
    root =
        parse("{\"api\":\"openai.embeddings\",\"service\":"
              "\"123456789012345678901234567890123456789012345678901234567890123\",\"body\":{}}");
    assert_int_equal(os_infer_inner_parse(&in, root, err, sizeof(err)), OS_OK);
    assert_int_equal(strlen(in.service), 63);
    json_decref(root);

    static const char *const bad[] = {
        "{\"api\":\"openai.chat\",\"service\":\"s\",\"body\":{},\"extra\":1}",
        "{\"api\":\"openai.chat\",\"service\":\"s\"}",
        "{\"api\":\"openai.chat\",\"body\":{}}",
        "{\"service\":\"s\",\"body\":{}}",
        "{\"api\":\"openai.completions\",\"service\":\"s\",\"body\":{}}",
        "{\"api\":\"OpenAI.chat\",\"service\":\"s\",\"body\":{}}",
        "{\"api\":7,\"service\":\"s\",\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":\"\",\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":"
        "\"1234567890123456789012345678901234567890123456789012345678901234\",\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":\"a b\",\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":\"a\\tb\",\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":\"a\\u0001\",\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":\"caf\\u00e9\",\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":\"a\\u007f\",\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":7,\"body\":{}}",
        "{\"api\":\"openai.chat\",\"service\":\"s\",\"body\":[]}",
        "{\"api\":\"openai.chat\",\"service\":\"s\",\"body\":\"{}\"}",
        "{\"api\":\"openai.chat\",\"service\":\"s\",\"body\":null}",
        "[\"openai.chat\",\"s\",{}]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        root = parse(bad[i]);
        memset(&in, 0x55, sizeof(in));
        err[0] = '\0';
        if (os_infer_inner_parse(&in, root, err, sizeof(err)) != OS_ERR_INVALID)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
        assert_int_equal((unsigned char)in.api[0], 0x55); /* untouched */
        json_decref(root);
    }

    /* an embedded NUL in the service (jansson holds it with the length) */
    root = json_pack("{s:s, s:s%, s:{}}", "api", "openai.chat", "service", "ab\0cd", (size_t)5,
                     "body");
    assert_non_null(root);
    assert_int_equal(os_infer_inner_parse(&in, root, err, sizeof(err)), OS_ERR_INVALID);
    json_decref(root);
    root =
        json_pack("{s:s%, s:s, s:{}}", "api", "openai.chat\0x", (size_t)13, "service", "s", "body");
    assert_non_null(root);
    assert_int_equal(os_infer_inner_parse(&in, root, err, sizeof(err)), OS_ERR_INVALID);
    json_decref(root);
}

static const char FINAL_TEXT[] =
    "{\"status\":200,\"usage\":{\"input_tokens\":11,\"cached_tokens\":3,\"output_tokens\":7},"
    "\"cost\":\"1234\",\"cumulative_consumed\":\"5000\"}";
static const char FINAL_ERR_TEXT[] =
    "{\"status\":200,\"usage\":{\"input_tokens\":11,\"cached_tokens\":0,\"output_tokens\":2},"
    "\"cost\":\"18446744073709551615\",\"cumulative_consumed\":\"0\",\"error\":{\"type\":"
    "\"upstream_error\",\"message\":\"upstream closed the stream\"}}";

static void sample_final(os_infer_final *f)
{
    memset(f, 0, sizeof(*f));
    f->status = 200;
    f->usage.input_tokens = 11;
    f->usage.cached_tokens = 3;
    f->usage.output_tokens = 7;
    f->cost = 1234;
    f->cumulative_consumed = 5000;
}

static void test_final_round_trip(void **state)
{
    os_infer_final f, back;
    char err[OS_JSON_ERR_LEN];
    json_t *j;
    char *text;
    (void)state;

    sample_final(&f);
    j = os_infer_final_to_json(&f);
    assert_non_null(j);
    text = json_dumps(j, JSON_COMPACT);
    assert_string_equal(text, FINAL_TEXT);
    free(text);
    memset(&back, 0x55, sizeof(back));
    assert_int_equal(os_infer_final_parse(&back, j, err, sizeof(err)), OS_OK);
    assert_int_equal(back.status, 200);
    assert_int_equal(back.usage.input_tokens, 11);
    assert_int_equal(back.usage.cached_tokens, 3);
    assert_int_equal(back.usage.output_tokens, 7);
    assert_int_equal(back.cost, 1234);
    assert_int_equal(back.cumulative_consumed, 5000);
    assert_false(back.has_error);
    /* other keys (the whole response's body) are the caller's to check */
    assert_int_equal(json_object_set_new(j, "body", json_object()), 0);
    assert_int_equal(os_infer_final_parse(&back, j, err, sizeof(err)), OS_OK);
    json_decref(j);

    /* with an error, an upstream status and the largest cost */
    f.usage.cached_tokens = 0;
    f.usage.output_tokens = 2;
    f.cost = UINT64_MAX;
    f.cumulative_consumed = 0;
    f.has_error = true;
    snprintf(f.error_type, sizeof(f.error_type), "upstream_error");
    snprintf(f.error_message, sizeof(f.error_message), "upstream closed the stream");
    j = os_infer_final_to_json(&f);
    assert_non_null(j);
    text = json_dumps(j, JSON_COMPACT);
    assert_string_equal(text, FINAL_ERR_TEXT);
    free(text);
    assert_int_equal(os_infer_final_parse(&back, j, err, sizeof(err)), OS_OK);
    assert_true(back.has_error);
    assert_string_equal(back.error_type, "upstream_error");
    assert_string_equal(back.error_message, "upstream closed the stream");
    assert_int_equal(back.cost, UINT64_MAX);
    json_decref(j);

    /* to_json refuses what parse would */
    sample_final(&f);
    f.status = 0;
    assert_null(os_infer_final_to_json(&f));
    f.status = 600;
    assert_null(os_infer_final_to_json(&f));
    sample_final(&f);
    f.usage.cached_tokens = 12;
    assert_null(os_infer_final_to_json(&f));
    sample_final(&f);
    f.usage.output_tokens = (uint64_t)INT64_MAX + 1;
    assert_null(os_infer_final_to_json(&f));
    sample_final(&f);
    f.has_error = true;
    memset(f.error_message, 'x', sizeof(f.error_message)); /* not terminated */
    assert_null(os_infer_final_to_json(&f));
    assert_null(os_infer_final_to_json(NULL));
}

/* FINAL_TEXT with one substitution must be refused. */
static void refuse_final(const char *base, const char *from, const char *to)
{
    const char *at = strstr(base, from);
    char text[1024], err[OS_JSON_ERR_LEN] = "";
    os_infer_final f;
    json_t *j;

    assert_non_null(at);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    j = parse(text);
    memset(&f, 0x55, sizeof(f));
    if (os_infer_final_parse(&f, j, err, sizeof(err)) != OS_ERR_INVALID)
        fail_msg("accepted: %s", text);
    assert_true(err[0] != '\0');
    assert_int_equal(f.cost, 0x5555555555555555ull); /* untouched */
    json_decref(j);
}

static void test_final_refusals(void **state)
{
    const char *B = FINAL_TEXT, *E = FINAL_ERR_TEXT;
    char big[300];
    (void)state;

    refuse_final(B, "\"status\":200", "\"status\":\"200\"");
    refuse_final(B, "\"status\":200", "\"status\":99");
    refuse_final(B, "\"status\":200", "\"status\":600");
    refuse_final(B, "\"status\":200", "\"status\":200.0");
    refuse_final(B, "\"status\":200,", "");
    refuse_final(B, "\"input_tokens\":11", "\"input_tokens\":\"11\"");
    refuse_final(B, "\"input_tokens\":11", "\"input_tokens\":-11");
    refuse_final(B, "\"input_tokens\":11,", "");
    refuse_final(B, "\"output_tokens\":7", "\"output_tokens\":7,\"total_tokens\":18");
    refuse_final(B, "\"cached_tokens\":3", "\"cached_tokens\":12"); /* more than the input */
    refuse_final(B, "{\"input_tokens\":11,\"cached_tokens\":3,\"output_tokens\":7}", "[]");
    refuse_final(B, "\"cost\":\"1234\"", "\"cost\":1234");
    refuse_final(B, "\"cost\":\"1234\"", "\"cost\":\"01234\"");
    refuse_final(B, "\"cost\":\"1234\"", "\"cost\":\"1.5\"");
    refuse_final(B, "\"cost\":\"1234\"", "\"cost\":\"-1\"");
    refuse_final(B, ",\"cumulative_consumed\":\"5000\"", "");
    refuse_final(B, "\"5000\"", "\"5e3\"");
    refuse_final(E, "\"type\":\"upstream_error\",", "");
    refuse_final(E, "\"message\":\"upstream closed the stream\"",
                 "\"message\":\"m\",\"code\":\"x\"");
    refuse_final(E, "\"message\":\"upstream closed the stream\"", "\"message\":7");
    refuse_final(E, "{\"type\":\"upstream_error\",\"message\":\"upstream closed the stream\"}",
                 "\"upstream_error\"");
    /* 64 bytes of type and 256 of message are one too many for their buffers */
    snprintf(big, sizeof(big), "\"%0*d\"", OS_INFER_ERR_TYPE_MAX, 0);
    refuse_final(E, "\"upstream_error\"", big);
    snprintf(big, sizeof(big), "\"%0*d\"", OS_INFER_ERR_MSG_MAX, 0);
    refuse_final(E, "\"upstream closed the stream\"", big);
    /* and one fewer fits */
    {
        os_infer_final f;
        char text[1024], err[OS_JSON_ERR_LEN];
        const char *at = strstr(E, "\"upstream closed the stream\"");
        snprintf(big, sizeof(big), "\"%0*d\"", OS_INFER_ERR_MSG_MAX - 1, 0);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - E), E, big,
                 at + strlen("\"upstream closed the stream\""));
        json_t *j = parse(text);
        assert_int_equal(os_infer_final_parse(&f, j, err, sizeof(err)), OS_OK);
        assert_int_equal(strlen(f.error_message), OS_INFER_ERR_MSG_MAX - 1);
        json_decref(j);
    }
}

/* ------------------------------------------------------------------ the gateway */

typedef enum {
    G_WHOLE,
    G_WHOLE_TAMPER,
    G_402,
    G_402_BAD,
    G_400,
    G_502_HTML,
    G_WRONG_TYPE,
    /* streams, answered by a producer thread, from here on */
    G_STREAM,
    G_BAD_FINAL,
    G_TAMPER,
    G_CUT,
    G_CUT_ABRUPT,
    G_FOREVER,
} gmode;

typedef struct gw gw;

typedef struct job {
    gw *g;
    os_http_stream *st;
    os_ohttp_ctx ctx;
    gmode mode;
    pthread_t t;
} job;

struct gw {
    uint8_t sk[OS_HPKE_NSK], pk[OS_HPKE_NPK];
    os_ohttp_keyconfig kc;
    atomic_int mode;
    uint8_t expect_hash[32];
    pthread_mutex_t mu;
    /* what the last request brought */
    int requests;
    bool hash_ok, decap_ok, inner_ok;
    bool has_payment, has_credential;
    char payment[OS_X402_HEADER_MAX + 1];
    char credential[512];
    char content_type[64], accept[128];
    char api[OS_INFER_API_MAX], service[OS_INFER_SERVICE_MAX];
    char *inner_body; /* compact dump */
    /* producers */
    job jobs[MAX_JOBS];
    int n_jobs;
    atomic_int cancelled;
    atomic_int producers_done;
    atomic_int broken; /* a check on the server side failed (cmocka asserts only on main) */
};

/* Server-side checks: cmocka's asserts must not run on the server's threads. */
#define GW_CHECK(g, cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            atomic_fetch_add(&(g)->broken, 1);                                                     \
    } while (0)

static const uint8_t CHANNEL[32] = {0xc4, 0x01, 0x02, 0x03};

/* The events a stream carries, in order; index 2 is the big one. */
static char *event_text(size_t i)
{
    static const char *const small[] = {
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "event: ping\ndata: {}\n\n",
        NULL,
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
        "data: [DONE]\n\n",
    };
    char *s;
    if (i == 2) {
        s = malloc(BIG_EVENT_LEN + 1);
        if (s == NULL)
            return NULL;
        memcpy(s, "data: \"", 7);
        for (size_t k = 7; k < BIG_EVENT_LEN - 3; k++)
            s[k] = (char)('a' + k % 26);
        memcpy(s + BIG_EVENT_LEN - 3, "\"\n\n", 4);
        return s;
    }
    return strdup(small[i % N_EVENTS]);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Writes a sealed chunk in two pieces with a pause between, so it straddles the client's reads. */
static bool write_split(os_http_stream *st, const uint8_t *p, size_t n)
{
    size_t half = n / 2;
    if (os_http_stream_write(st, p, half) != OS_OK)
        return false;
    sleep_ms(1);
    return os_http_stream_write(st, p + half, n - half) == OS_OK;
}

static void *producer(void *arg)
{
    job *j = arg;
    os_ohttp_chunk_sender s;
    uint8_t nonce[OS_OHTTP_NONCE_LEN];
    size_t cap = BIG_EVENT_LEN + OS_OHTTP_CHUNK_OVERHEAD, n;
    uint8_t *out = malloc(cap);
    bool ok = out != NULL && os_ohttp_chunk_sender_init(&s, nonce, &j->ctx) == OS_OK &&
              os_http_stream_write(j->st, nonce, sizeof(nonce)) == OS_OK;
    size_t n_events = j->mode == G_FOREVER ? 100000 : N_EVENTS;

    for (size_t i = 0; ok && i < n_events; i++) {
        if (j->mode == G_FOREVER && i % N_EVENTS == 2)
            continue; /* small events only */
        char *ev = event_text(i);
        ok = ev != NULL &&
             os_ohttp_chunk_seal(&s, out, cap, &n, (const uint8_t *)ev, strlen(ev)) == OS_OK;
        free(ev);
        if (ok && j->mode == G_TAMPER && i == 1)
            out[n / 2] ^= 0x01; /* the middle of the second chunk's ciphertext */
        ok = ok && write_split(j->st, out, n);
        if (j->mode == G_FOREVER)
            sleep_ms(2);
    }
    if (!ok && os_http_stream_cancelled(j->st))
        atomic_fetch_add(&j->g->cancelled, 1);
    if (ok && (j->mode == G_STREAM || j->mode == G_TAMPER || j->mode == G_BAD_FINAL)) {
        os_infer_final f;
        sample_final(&f);
        json_t *fj = os_infer_final_to_json(&f);
        if (j->mode == G_BAD_FINAL && fj != NULL)
            json_object_del(fj, "cost");
        char *text = fj != NULL ? json_dumps(fj, JSON_COMPACT) : NULL;
        ok = text != NULL &&
             os_ohttp_chunk_seal_final(&s, out, cap, &n, (const uint8_t *)text, strlen(text)) ==
                 OS_OK &&
             write_split(j->st, out, n);
        free(text);
        json_decref(fj);
    }
    /* a client that gives up (tampered, stopped) may leave before the producer is done */
    GW_CHECK(j->g, ok || j->mode == G_FOREVER || j->mode == G_TAMPER);
    os_ohttp_chunk_sender_clear(&s);
    os_ohttp_ctx_clear(&j->ctx);
    free(out);
    os_http_stream_close(j->st, ok && j->mode != G_CUT_ABRUPT);
    atomic_fetch_add(&j->g->producers_done, 1);
    return NULL;
}

static void copy_header(char *out, size_t cap, bool *has, const os_http_request *req,
                        const char *name)
{
    const char *v = os_http_req_header(req, name);
    if (has != NULL)
        *has = v != NULL;
    snprintf(out, cap, "%s", v != NULL ? v : "");
}

static void answer_whole(gw *g, os_ohttp_ctx *ctx, os_http_response *res, bool tamper)
{
    os_infer_final f;
    json_t *j, *body;
    char *text = NULL, *receipt = NULL;
    uint8_t *out = NULL;
    size_t n = 0, cap = 0;
    bool ok;

    sample_final(&f);
    j = os_infer_final_to_json(&f);
    body = json_loads("{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"role\":\"assistant\","
                      "\"content\":\"Hello\"}}]}",
                      0, NULL);
    ok = j != NULL && body != NULL && json_object_set_new(j, "body", body) == 0 &&
         (text = json_dumps(j, JSON_COMPACT)) != NULL &&
         (out = malloc(cap = strlen(text) + OS_OHTTP_RESPONSE_OVERHEAD)) != NULL &&
         os_ohttp_response_encap(ctx, out, cap, &n, (const uint8_t *)text, strlen(text)) == OS_OK &&
         os_x402_response_encode(&receipt, 8453, 1234, CHANNEL) == OS_OK &&
         os_http_res_header(res, OS_X402_HDR_RESPONSE, receipt) == OS_OK;
    if (ok && tamper)
        out[n - 1] ^= 0x80;
    ok = ok && os_http_res_body(res, OS_OHTTP_MEDIA_RESPONSE, out, n) == OS_OK;
    GW_CHECK(g, ok);
    os_http_res_status(res, ok ? 200 : 500);
    json_decref(j);
    free(receipt);
    free(out);
    free(text);
}

static void sample_requirement(os_x402_requirement *r)
{
    memset(r, 0, sizeof(*r));
    r->chain_id = 8453;
    r->amount = 1290;
    memset(r->asset, 0x11, 20);
    memset(r->pay_to, 0x22, 20);
    r->max_timeout_s = 60;
    memset(r->escrow, 0x33, 20);
    r->has_channel = true;
    memcpy(r->channel_id, CHANNEL, 32);
    r->consumed = 48210;
    r->authorized = 49000;
    r->nonce = 42;
}

static void h_infer(void *ctx, const os_http_request *req, os_http_response *res)
{
    gw *g = ctx;
    gmode mode = (gmode)atomic_load(&g->mode);
    size_t len, pt_len = 0;
    const char *body = os_http_req_body(req, &len);
    uint8_t hash[32];
    uint8_t *pt = malloc(len + 1);
    os_ohttp_ctx octx;
    json_t *root = NULL;
    os_infer_inner in;

    if (pt == NULL) {
        GW_CHECK(g, false);
        os_http_res_error(res, 500, "server_error", NULL, "out of memory");
        return;
    }
    os_keccak256(hash, body, len);
    pthread_mutex_lock(&g->mu);
    g->requests++;
    g->hash_ok = os_ct_eq(hash, g->expect_hash, 32);
    copy_header(g->payment, sizeof(g->payment), &g->has_payment, req, OS_X402_HDR_SIGNATURE);
    copy_header(g->credential, sizeof(g->credential), &g->has_credential, req,
                OS_INFER_HDR_CREDENTIAL);
    copy_header(g->content_type, sizeof(g->content_type), NULL, req, "Content-Type");
    copy_header(g->accept, sizeof(g->accept), NULL, req, "Accept");
    g->decap_ok = os_ohttp_request_decap(&octx, pt, len, &pt_len, KEY_ID, g->sk, g->pk,
                                         (const uint8_t *)body, len) == OS_OK;
    g->inner_ok = g->decap_ok &&
                  os_json_parse(&root, (const char *)pt, pt_len, pt_len, OS_INFER_JSON_DEPTH, NULL,
                                0) == OS_OK &&
                  os_infer_inner_parse(&in, root, NULL, 0) == OS_OK;
    free(g->inner_body);
    g->inner_body = NULL;
    if (g->inner_ok) {
        memcpy(g->api, in.api, sizeof(in.api));
        memcpy(g->service, in.service, sizeof(in.service));
        g->inner_body = json_dumps(in.body, JSON_COMPACT);
    }
    json_decref(root);
    os_wipe(pt, len);
    free(pt);
    pthread_mutex_unlock(&g->mu);
    if (!g->decap_ok) {
        os_http_res_error(res, 400, "invalid_request_error", "bad_envelope", "cannot decrypt");
        return;
    }

    switch (mode) {
    case G_WHOLE:
    case G_WHOLE_TAMPER:
        answer_whole(g, &octx, res, mode == G_WHOLE_TAMPER);
        break;
    case G_402: {
        os_x402_requirement r;
        char *v = NULL;
        sample_requirement(&r);
        os_http_res_error(res, 402, "invalid_request_error", "insufficient_amount",
                          "the voucher does not cover the estimate");
        GW_CHECK(g,
                 os_x402_required_encode(&v, "insufficient_amount", OS_INFER_PATH, &r) == OS_OK &&
                     os_http_res_header(res, OS_X402_HDR_REQUIRED, v) == OS_OK);
        free(v);
        break;
    }
    case G_402_BAD:
        os_http_res_error(res, 402, "invalid_request_error", "payment_required", "pay");
        GW_CHECK(g, os_http_res_header(res, OS_X402_HDR_REQUIRED, "bm90IGpzb24=") == OS_OK);
        break;
    case G_400:
        os_http_res_error(res, 400, "invalid_request_error", "unknown_service", "no such service");
        break;
    case G_502_HTML:
        GW_CHECK(g, os_http_res_body(res, "text/html", "<html>bad gateway</html>", 24) == OS_OK);
        os_http_res_status(res, 502);
        break;
    case G_WRONG_TYPE:
        GW_CHECK(g, os_http_res_json(res, 200, json_pack("{s:[]}", "choices")) == OS_OK);
        break;
    default: {
        os_http_stream *st;
        char *receipt = NULL;
        bool ok = os_http_res_stream(res, &st, 200, OS_OHTTP_MEDIA_CHUNKED_RESPONSE) == OS_OK;
        if (!ok)
            break;
        ok = os_x402_response_encode(&receipt, 8453, 1234, CHANNEL) == OS_OK &&
             os_http_res_header(res, OS_X402_HDR_RESPONSE, receipt) == OS_OK;
        free(receipt);
        pthread_mutex_lock(&g->mu);
        ok = ok && g->n_jobs < MAX_JOBS;
        if (ok) {
            job *j = &g->jobs[g->n_jobs];
            j->g = g;
            j->st = st;
            j->ctx = octx; /* the producer owns the context now */
            j->mode = mode;
            ok = pthread_create(&j->t, NULL, producer, j) == 0;
            if (ok)
                g->n_jobs++;
        }
        pthread_mutex_unlock(&g->mu);
        GW_CHECK(g, ok);
        if (ok)
            return;
        os_http_stream_close(st, false);
        break;
    }
    }
    os_ohttp_ctx_clear(&octx);
}

static const os_http_route ROUTES[] = {{"POST", OS_INFER_PATH, h_infer, 0}};

typedef struct fixture {
    gw g;
    os_http_server *s;
    os_http_client *http;
    char url[96];
} fixture;

static int setup(void **state)
{
    fixture *f = os_init() == OS_OK ? calloc(1, sizeof(*f)) : NULL;
    uint8_t kc[OS_OHTTP_KEYCONFIG_LEN];
    size_t kc_len;
    os_http_config cfg = {
        .listen = "127.0.0.1:0", .threads = 2, .timeout_s = 10, .drain_timeout_ms = 2000};

    if (f == NULL || os_hpke_keypair(f->g.sk, f->g.pk) != OS_OK ||
        os_ohttp_keyconfig_encode(kc, sizeof(kc), &kc_len, KEY_ID, f->g.pk, NULL, 0) != OS_OK ||
        os_ohttp_keyconfig_parse(&f->g.kc, kc, kc_len) != OS_OK)
        return -1;
    pthread_mutex_init(&f->g.mu, NULL);
    if (os_http_server_new(&f->s, &cfg, ROUTES, 1, &f->g) != OS_OK ||
        os_http_server_start(f->s) != OS_OK || os_http_client_new(&f->http, NULL) != OS_OK)
        return -1;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u%s", (unsigned)os_http_server_port(f->s),
             OS_INFER_PATH);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    os_http_client_free(f->http);
    os_http_server_stop(f->s);
    for (int i = 0; i < f->g.n_jobs; i++)
        pthread_join(f->g.jobs[i].t, NULL);
    os_http_server_free(f->s);
    pthread_mutex_destroy(&f->g.mu);
    free(f->g.inner_body);
    os_wipe(f->g.sk, sizeof(f->g.sk));
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ the client */

typedef struct collector {
    char *events[64];
    size_t n;
    size_t stop_after; /* 0: never */
    bool nul_ok;       /* each event had a NUL after it */
} collector;

static int on_event(void *ud, const char *event, size_t len)
{
    collector *c = ud;
    if (c->n < 64) {
        c->events[c->n] = malloc(len + 1);
        assert_non_null(c->events[c->n]);
        memcpy(c->events[c->n], event, len);
        c->events[c->n][len] = '\0';
        c->n++;
    }
    c->nul_ok = (c->n == 1 || c->nul_ok) && event[len] == '\0';
    return c->stop_after != 0 && c->n >= c->stop_after;
}

static void collector_free(collector *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->events[i]);
    c->n = 0;
}

static const char REQ_BODY[] =
    "{\"model\":\"llama3.1:8b\",\"stream\":true,\"messages\":[{\"role\":\"user\","
    "\"content\":\"Say hello\"}],\"max_tokens\":16}";

typedef struct sent {
    char *payment;
    char credential[OS_BASE64_LEN(160)];
} sent;

/* Makes a call for f's gateway, with (realistic) payment and credential headers built over its
 * metadataHash, and sends it in mode. */
static os_err run(fixture *f, gmode mode, os_infer_result *res, os_http_client_error *herr,
                  collector *col, bool with_headers, sent *out)
{
    os_infer_call *c;
    json_t *body = parse(REQ_BODY);
    os_x402_requirement acc;
    os_voucher v;
    uint8_t cred[160];
    os_err rc;

    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.chat", "llama3.1-8b", body), OS_OK);
    json_decref(body);
    memset(out, 0, sizeof(*out));
    os_infer_call_metadata_hash(c, f->g.expect_hash);
    if (with_headers) {
        sample_requirement(&acc);
        acc.has_channel = false;
        memset(&v, 0, sizeof(v));
        memcpy(v.channel_id, CHANNEL, 32);
        v.cumulative_amount = 50790;
        v.nonce = 43;
        os_infer_call_metadata_hash(c, v.metadata_hash);
        memset(v.sig, 0x5a, sizeof(v.sig));
        assert_int_equal(os_x402_payment_encode(&out->payment, &acc, &v), OS_OK);
        for (size_t i = 0; i < sizeof(cred); i++)
            cred[i] = (uint8_t)(i * 31 + 7);
        assert_int_equal(
            os_base64_encode(out->credential, sizeof(out->credential), cred, sizeof(cred)), OS_OK);
    }
    atomic_store(&f->g.mode, (int)mode);
    int done_before = atomic_load(&f->g.producers_done);
    rc = os_infer_call_send(c, res, f->http, herr, f->url, with_headers ? out->payment : NULL,
                            with_headers ? out->credential : NULL, col != NULL ? on_event : NULL,
                            col, NULL);
    /* a call answers once */
    os_infer_result again;
    assert_int_equal(
        os_infer_call_send(c, &again, f->http, NULL, f->url, NULL, NULL, NULL, NULL, NULL),
        OS_ERR_INVALID);
    os_infer_call_free(c);
    /* a stream's producer finishes on its own (the client may have left first): wait for it, so
     * its checks are in and the next test starts clean */
    if (mode >= G_STREAM)
        for (int i = 0; i < 1000 && atomic_load(&f->g.producers_done) == done_before; i++)
            sleep_ms(10);
    assert_int_equal(atomic_load(&f->g.broken), 0);
    return rc;
}

static void assert_request_arrived(fixture *f, const sent *s, bool with_headers)
{
    pthread_mutex_lock(&f->g.mu);
    assert_true(f->g.hash_ok);
    assert_true(f->g.decap_ok);
    assert_true(f->g.inner_ok);
    assert_string_equal(f->g.api, "openai.chat");
    assert_string_equal(f->g.service, "llama3.1-8b");
    assert_string_equal(f->g.inner_body, REQ_BODY);
    assert_string_equal(f->g.content_type, OS_OHTTP_MEDIA_REQUEST);
    assert_string_equal(f->g.accept, OS_OHTTP_MEDIA_RESPONSE ", " OS_OHTTP_MEDIA_CHUNKED_RESPONSE);
    assert_int_equal(f->g.has_payment, with_headers);
    assert_int_equal(f->g.has_credential, with_headers);
    if (with_headers) {
        assert_string_equal(f->g.payment, s->payment);
        assert_string_equal(f->g.credential, s->credential);
    }
    pthread_mutex_unlock(&f->g.mu);
}

static void test_call_envelope(void **state)
{
    fixture *f = *state;
    os_infer_call *c;
    json_t *body = parse(REQ_BODY);
    const uint8_t *env;
    size_t len, pt_len;
    uint8_t hash[32], mh[32], pt[512];
    os_ohttp_ctx octx;
    char want[512];

    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.chat", "llama3.1-8b", body), OS_OK);
    env = os_infer_call_envelope(c, &len);
    snprintf(want, sizeof(want),
             "{\"api\":\"openai.chat\",\"service\":\"llama3.1-8b\",\"body\":%s}", REQ_BODY);
    assert_int_equal(len, strlen(want) + OS_OHTTP_REQUEST_OVERHEAD);
    assert_int_equal(env[0], KEY_ID);
    os_keccak256(hash, env, len);
    os_infer_call_metadata_hash(c, mh);
    assert_memory_equal(hash, mh, 32);
    assert_int_equal(
        os_ohttp_request_decap(&octx, pt, sizeof(pt), &pt_len, KEY_ID, f->g.sk, f->g.pk, env, len),
        OS_OK);
    assert_int_equal(pt_len, strlen(want));
    assert_memory_equal(pt, want, pt_len);
    os_ohttp_ctx_clear(&octx);
    os_infer_call_free(c);
    os_infer_call_free(NULL);

    /* two calls for the same request differ (fresh ephemeral key), so do their hashes */
    os_infer_call *c2;
    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.chat", "s", body), OS_OK);
    assert_int_equal(os_infer_call_new(&c2, &f->g.kc, "openai.chat", "s", body), OS_OK);
    uint8_t h2[32];
    os_infer_call_metadata_hash(c, mh);
    os_infer_call_metadata_hash(c2, h2);
    assert_memory_not_equal(mh, h2, 32);
    os_infer_call_free(c);
    os_infer_call_free(c2);

    /* refusals */
    c = (os_infer_call *)1;
    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.responses", "s", body),
                     OS_ERR_INVALID);
    assert_null(c);
    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.chat", "", body), OS_ERR_INVALID);
    assert_int_equal(os_infer_call_new(&c, NULL, "openai.chat", "s", body), OS_ERR_INVALID);
    json_decref(body);
    body = parse("[]");
    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.chat", "s", body), OS_ERR_INVALID);
    json_decref(body);
    /* a plaintext one byte over the cap, and one at it */
    for (int over = 0; over < 2; over++) {
        size_t fixed = strlen("{\"api\":\"openai.chat\",\"service\":\"s\",\"body\":{\"p\":\"\"}}");
        size_t n = OS_INFER_MAX_REQUEST - fixed + (size_t)over;
        char *big = malloc(n + 1);
        assert_non_null(big);
        memset(big, 'x', n);
        big[n] = '\0';
        body = json_pack("{s:s}", "p", big);
        free(big);
        assert_non_null(body);
        os_err rc = os_infer_call_new(&c, &f->g.kc, "openai.chat", "s", body);
        assert_int_equal(rc, over ? OS_ERR_TOOBIG : OS_OK);
        if (!over) {
            os_infer_call_envelope(c, &len);
            assert_int_equal(len, OS_INFER_MAX_REQUEST + OS_OHTTP_REQUEST_OVERHEAD);
            os_infer_call_free(c);
        }
        json_decref(body);
    }
}

static void test_call_whole(void **state)
{
    fixture *f = *state;
    os_infer_result res;
    os_http_client_error herr;
    collector col = {0};
    sent s;

    assert_int_equal(run(f, G_WHOLE, &res, &herr, &col, true, &s), OS_OK);
    assert_request_arrived(f, &s, true);
    assert_int_equal(res.http_status, 200);
    assert_false(res.streamed);
    assert_int_equal(res.events, 0);
    assert_int_equal(col.n, 0);
    assert_int_equal(res.final.status, 200);
    assert_int_equal(res.final.usage.input_tokens, 11);
    assert_int_equal(res.final.usage.cached_tokens, 3);
    assert_int_equal(res.final.usage.output_tokens, 7);
    assert_int_equal(res.final.cost, 1234);
    assert_int_equal(res.final.cumulative_consumed, 5000);
    assert_non_null(res.body);
    json_t *want = parse("{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"role\":\"assistant\","
                         "\"content\":\"Hello\"}}]}");
    assert_true(json_equal(res.body, want));
    json_decref(want);
    assert_true(res.paid);
    assert_int_equal(res.paid_amount, 1234);
    assert_false(res.has_requirement);
    assert_string_equal(res.error_type, "");
    assert_true(res.ttft_ms < 10000);
    os_infer_result_free(&res);
    assert_null(res.body);
    os_infer_result_free(&res); /* twice is fine */
    os_infer_result_free(NULL);
    free(s.payment);

    /* without payment and credential, neither header is sent */
    assert_int_equal(run(f, G_WHOLE, &res, &herr, NULL, false, &s), OS_OK);
    assert_request_arrived(f, &s, false);
    assert_int_equal(res.http_status, 200);
    os_infer_result_free(&res);
}

static void test_call_stream(void **state)
{
    fixture *f = *state;
    os_infer_result res;
    os_http_client_error herr;
    collector col = {0};
    sent s;

    assert_int_equal(run(f, G_STREAM, &res, &herr, &col, true, &s), OS_OK);
    assert_request_arrived(f, &s, true);
    assert_int_equal(res.http_status, 200);
    assert_true(res.streamed);
    assert_int_equal(res.events, N_EVENTS);
    assert_int_equal(col.n, N_EVENTS);
    for (size_t i = 0; i < N_EVENTS; i++) {
        char *want = event_text(i);
        if (strcmp(col.events[i], want) != 0)
            fail_msg("event %zu differs (%zu vs %zu bytes)", i, strlen(col.events[i]),
                     strlen(want));
        free(want);
    }
    assert_true(col.nul_ok);
    assert_int_equal(res.final.status, 200);
    assert_int_equal(res.final.cost, 1234);
    assert_int_equal(res.final.cumulative_consumed, 5000);
    assert_int_equal(res.final.usage.output_tokens, 7);
    assert_null(res.body);
    assert_true(res.paid);
    assert_int_equal(res.paid_amount, 1234);
    assert_false(res.stopped);
    collector_free(&col);
    os_infer_result_free(&res);
    free(s.payment);

    /* a final chunk that authenticates but is not a closing object */
    assert_int_equal(run(f, G_BAD_FINAL, &res, &herr, &col, false, &s), OS_ERR_INVALID);
    assert_int_equal(col.n, N_EVENTS);
    assert_int_equal(res.final.status, 0);
    assert_non_null(strstr(herr.message, "closing"));
    collector_free(&col);
    os_infer_result_free(&res);

    /* no callback: the stream is still read and checked */
    assert_int_equal(run(f, G_STREAM, &res, &herr, NULL, false, &s), OS_OK);
    assert_int_equal(res.events, N_EVENTS);
    assert_int_equal(res.final.cost, 1234);
    os_infer_result_free(&res);
}

static void test_call_402(void **state)
{
    fixture *f = *state;
    os_infer_result res;
    os_http_client_error herr;
    os_x402_requirement want;
    sent s;

    assert_int_equal(run(f, G_402, &res, &herr, NULL, true, &s), OS_OK);
    assert_request_arrived(f, &s, true);
    assert_int_equal(res.http_status, 402);
    assert_true(res.has_requirement);
    sample_requirement(&want);
    assert_int_equal(res.requirement.chain_id, 8453);
    assert_int_equal(res.requirement.amount, 1290);
    assert_true(res.requirement.has_channel);
    assert_memory_equal(res.requirement.channel_id, want.channel_id, 32);
    assert_int_equal(res.requirement.consumed, 48210);
    assert_int_equal(res.requirement.authorized, 49000);
    assert_int_equal(res.requirement.nonce, 42);
    assert_memory_equal(res.requirement.escrow, want.escrow, 20);
    assert_false(res.requirement.has_metadata_hash);
    assert_string_equal(res.payment_error, "insufficient_amount");
    assert_string_equal(res.error_type, "invalid_request_error");
    assert_string_equal(res.error_code, "insufficient_amount");
    assert_string_equal(res.error_message, "the voucher does not cover the estimate");
    assert_false(res.paid);
    assert_null(res.body);
    os_infer_result_free(&res);
    free(s.payment);

    /* an invoice that does not decode is no invoice; the error body still reads */
    assert_int_equal(run(f, G_402_BAD, &res, &herr, NULL, false, &s), OS_OK);
    assert_int_equal(res.http_status, 402);
    assert_false(res.has_requirement);
    assert_string_equal(res.payment_error, "");
    assert_string_equal(res.error_code, "payment_required");
    os_infer_result_free(&res);
}

static void test_call_errors(void **state)
{
    fixture *f = *state;
    os_infer_result res;
    os_http_client_error herr;
    sent s;

    assert_int_equal(run(f, G_400, &res, &herr, NULL, false, &s), OS_OK);
    assert_int_equal(res.http_status, 400);
    assert_false(res.has_requirement);
    assert_string_equal(res.error_type, "invalid_request_error");
    assert_string_equal(res.error_code, "unknown_service");
    assert_string_equal(res.error_message, "no such service");
    assert_null(res.body);
    os_infer_result_free(&res);

    /* a body that is not JSON leaves the fields empty */
    assert_int_equal(run(f, G_502_HTML, &res, &herr, NULL, false, &s), OS_OK);
    assert_int_equal(res.http_status, 502);
    assert_string_equal(res.error_type, "");
    assert_string_equal(res.error_code, "");
    assert_string_equal(res.error_message, "");
    os_infer_result_free(&res);

    /* a 200 that is not an OHTTP response */
    assert_int_equal(run(f, G_WRONG_TYPE, &res, &herr, NULL, false, &s), OS_ERR_NETWORK);
    assert_int_equal(res.http_status, 200);
    assert_true(herr.message[0] != '\0');
    os_infer_result_free(&res);

    /* a whole response with a flipped bit */
    assert_int_equal(run(f, G_WHOLE_TAMPER, &res, &herr, NULL, false, &s), OS_ERR_CRYPTO);
    assert_null(res.body);
    assert_non_null(strstr(herr.message, "decrypt"));
    os_infer_result_free(&res);
}

static void test_call_stream_tampered(void **state)
{
    fixture *f = *state;
    os_infer_result res;
    os_http_client_error herr;
    collector col = {0};
    sent s;
    char *first = event_text(0);

    assert_int_equal(run(f, G_TAMPER, &res, &herr, &col, false, &s), OS_ERR_CRYPTO);
    assert_true(res.streamed);
    assert_int_equal(res.events, 1); /* the first chunk, then the flipped one stops it */
    assert_int_equal(col.n, 1);
    assert_string_equal(col.events[0], first);
    assert_non_null(strstr(herr.message, "authenticate"));
    free(first);
    collector_free(&col);
    os_infer_result_free(&res);
}

static void test_call_stream_cut(void **state)
{
    fixture *f = *state;
    os_infer_result res;
    os_http_client_error herr;
    collector col = {0};
    sent s;

    /* the body ends properly but without the final chunk */
    assert_int_equal(run(f, G_CUT, &res, &herr, &col, false, &s), OS_ERR_NETWORK);
    assert_int_equal(res.events, N_EVENTS);
    assert_int_equal(col.n, N_EVENTS);
    assert_non_null(strstr(herr.message, "final chunk"));
    assert_int_equal(res.final.status, 0);
    collector_free(&col);
    os_infer_result_free(&res);

    /* the connection drops without the terminating HTTP chunk either */
    assert_int_equal(run(f, G_CUT_ABRUPT, &res, &herr, &col, false, &s), OS_ERR_NETWORK);
    assert_int_equal(col.n, N_EVENTS);
    collector_free(&col);
    os_infer_result_free(&res);
}

static void test_call_stream_stopped(void **state)
{
    fixture *f = *state;
    os_infer_result res;
    os_http_client_error herr;
    collector col = {0};
    sent s;
    int before = atomic_load(&f->g.cancelled);

    col.stop_after = 3;
    assert_int_equal(run(f, G_FOREVER, &res, &herr, &col, false, &s), OS_ERR_NETWORK);
    assert_true(res.stopped);
    assert_int_equal(herr.kind, OS_HTTP_FAIL_ABORTED);
    assert_non_null(strstr(herr.message, "callback"));
    assert_int_equal(res.events, 3);
    assert_int_equal(col.n, 3);
    assert_string_equal(col.events[2],
                        "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n");
    /* the gateway's producer learns that the client left, and stops */
    for (int i = 0; i < 1000 && atomic_load(&f->g.cancelled) == before; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&f->g.cancelled), before + 1);
    collector_free(&col);
    os_infer_result_free(&res);
}

static void test_call_abort_and_args(void **state)
{
    fixture *f = *state;
    os_infer_result res;
    os_http_client_error herr;
    os_infer_call *c;
    json_t *body = parse(REQ_BODY);
    atomic_int stop = 1;

    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.chat", "s", body), OS_OK);
    assert_int_equal(
        os_infer_call_send(c, &res, f->http, &herr, f->url, NULL, NULL, NULL, NULL, &stop),
        OS_ERR_NETWORK);
    assert_int_equal(herr.kind, OS_HTTP_FAIL_ABORTED);
    os_infer_call_free(c);

    /* a header value with a line break never goes out */
    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.chat", "s", body), OS_OK);
    assert_int_equal(os_infer_call_send(c, &res, f->http, &herr, f->url, "a\r\nX-Evil: 1", NULL,
                                        NULL, NULL, NULL),
                     OS_ERR_INVALID);
    os_infer_call_free(c);

    assert_int_equal(os_infer_call_new(&c, &f->g.kc, "openai.chat", "s", body), OS_OK);
    assert_int_equal(
        os_infer_call_send(c, NULL, f->http, &herr, f->url, NULL, NULL, NULL, NULL, NULL),
        OS_ERR_INVALID);
    os_infer_call_free(c);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_inner_build_exact),
        cmocka_unit_test(test_inner_parse),
        cmocka_unit_test(test_final_round_trip),
        cmocka_unit_test(test_final_refusals),
    };
    const struct CMUnitTest calls[] = {
        cmocka_unit_test(test_call_envelope),       cmocka_unit_test(test_call_whole),
        cmocka_unit_test(test_call_stream),         cmocka_unit_test(test_call_402),
        cmocka_unit_test(test_call_errors),         cmocka_unit_test(test_call_stream_tampered),
        cmocka_unit_test(test_call_stream_cut),     cmocka_unit_test(test_call_stream_stopped),
        cmocka_unit_test(test_call_abort_and_args),
    };
    int failed = cmocka_run_group_tests_name("plaintexts", plain, tu_init, NULL);
    failed += cmocka_run_group_tests_name("calls", calls, setup, teardown);
    return failed;
}
