/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The built-in echo upstream (src/seller/echo.h) on real loopback sockets, driven through
 * libcommon's HTTP client and SSE parser the way the seller's adapters will drive it: the exact
 * OpenAI and Anthropic JSON shapes field by field, streams that concatenate to the non-stream
 * answer with the usage chunk and [DONE] last, Anthropic's event order, exact token counts that
 * stay within os_estimate_request, max-token cuts, every injected failure, API keys (and that the
 * key is never logged), a client that disconnects mid-stream, tokens-per-second pacing, two
 * servers in one process, and the seeded failure rate (exactly the requests the formula picks).
 * Shapes follow OpenAI's and Anthropic's API references (chat completions, chunk objects,
 * embeddings; Messages API streaming events).
 */
#include "testutil.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "openseed/base64.h"
#include "openseed/http_client.h"
#include "openseed/keccak.h"
#include "openseed/money.h"
#include "openseed/rng.h"
#include "openseed/sse.h"

#include "echo.h"
#include "echo_internal.h"

#define MAX_EVENTS 512

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- a server and a client ---- */

typedef struct fix {
    sl_echo *e;
    uint16_t port;
    os_http_client *c;
} fix;

static void fix_start(fix *f, const sl_echo_config *cfg, const os_logger *lg)
{
    assert_int_equal(sl_echo_new(&f->e, cfg, lg), OS_OK);
    assert_int_equal(sl_echo_start(f->e), OS_OK);
    f->port = sl_echo_port(f->e);
    assert_true(f->port != 0);
    assert_int_equal(os_http_client_new(&f->c, NULL), OS_OK);
}

static void fix_stop(fix *f)
{
    os_http_client_free(f->c);
    sl_echo_free(f->e);
}

/* Collected SSE events, fed in 7-byte pieces so events straddle reads. */
typedef struct coll {
    os_sse_parser *p;
    char *type[MAX_EVENTS];
    char *data[MAX_EVENTS];
    size_t n;
    uint64_t t_first;   /* ms of the first body byte */
    size_t abort_after; /* stop the transfer once this many events arrived (0 = never) */
    os_buf raw;
} coll;

static os_err on_event(void *ctx, const os_sse_event *ev)
{
    coll *c = ctx;
    if (c->n == MAX_EVENTS)
        return OS_ERR_TOOBIG;
    c->type[c->n] = strdup(ev->type);
    c->data[c->n] = strndup(ev->data, ev->data_len);
    c->n++;
    return OS_OK;
}

static int on_body(void *ud, const os_http_client_res *res, const uint8_t *data, size_t len)
{
    coll *c = ud;
    (void)res;
    if (c->t_first == 0 && len > 0)
        c->t_first = now_ms();
    if (os_buf_append(&c->raw, data, len) != OS_OK)
        return 1;
    for (size_t off = 0; off < len; off += 7) {
        size_t k = len - off < 7 ? len - off : 7;
        if (os_sse_feed(c->p, data + off, k) != OS_OK)
            return 1;
    }
    return c->abort_after && c->n >= c->abort_after ? 1 : 0;
}

static void coll_init(coll *c)
{
    memset(c, 0, sizeof(*c));
    os_buf_init(&c->raw, 16u << 20);
    assert_int_equal(os_sse_parser_new(&c->p, 0, 0, on_event, c), OS_OK);
}

static void coll_free(coll *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->type[i]);
        free(c->data[i]);
    }
    os_sse_parser_free(c->p);
    os_buf_free(&c->raw);
}

static json_t *ev_json(const coll *c, size_t i)
{
    json_error_t je;
    json_t *v = json_loads(c->data[i], 0, &je);
    if (v == NULL)
        fail_msg("event %zu is not JSON: %s", i, c->data[i]);
    return v;
}

/* POSTs body (JSON text) to path with optional headers; returns os_http_client_do's result. */
static os_err do_req(fix *f, os_http_client_res *res, const char *method, const char *path,
                     const char *body, const os_http_header *h, size_t nh, coll *stream)
{
    char url[256];
    os_http_header hs[8];
    size_t n = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)f->port, path);
    if (body != NULL)
        hs[n++] = (os_http_header){"Content-Type", "application/json"};
    for (size_t i = 0; i < nh && n < 8; i++)
        hs[n++] = h[i];
    os_http_client_req rq = {
        .method = method,
        .url = url,
        .headers = hs,
        .n_headers = n,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .on_body = stream ? on_body : NULL,
        .on_body_ud = stream,
    };
    os_http_client_res_init(res);
    return os_http_client_do(f->c, res, NULL, &rq);
}

/* A non-stream request whose answer must be JSON; returns it with *status set. */
static json_t *post_json(fix *f, const char *path, const char *body, const os_http_header *h,
                         size_t nh, long *status)
{
    os_http_client_res res;
    json_error_t je;
    assert_int_equal(do_req(f, &res, "POST", path, body, h, nh, NULL), OS_OK);
    *status = res.status;
    json_t *v = json_loadb((const char *)res.body.data, res.body.len, 0, &je);
    if (v == NULL)
        fail_msg("not JSON (status %ld): %.*s", res.status, (int)res.body.len,
                 (const char *)res.body.data);
    os_http_client_res_free(&res);
    return v;
}

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        fail_msg("field %s is not a string", k);
    return json_string_value(v);
}

static json_int_t jint(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fail_msg("field %s is not an integer", k);
    return json_integer_value(v);
}

static void assert_keys(const json_t *o, size_t n)
{
    assert_true(json_is_object(o));
    assert_int_equal(json_object_size(o), n);
}

static uint64_t estimate_in(const char *api, const char *body)
{
    os_estimate est;
    os_pricing pr = {1, 1, 1};
    json_t *v = json_loads(body, 0, NULL);
    assert_non_null(v);
    assert_int_equal(os_estimate_request(&est, api, v, &pr, 100000), OS_OK);
    json_decref(v);
    return est.input_tokens;
}

/* ---- token rules ---- */

static void test_token_rules(void **state)
{
    (void)state;
    const char *s = "echo: hi  there ";
    assert_int_equal(sl_echo_tokens(s, strlen(s)), 3);
    assert_int_equal(sl_echo_cut(s, strlen(s), 1), 5);         /* "echo:" */
    assert_int_equal(sl_echo_cut(s, strlen(s), 2), 8);         /* "echo: hi" */
    assert_int_equal(sl_echo_cut(s, strlen(s), 3), strlen(s)); /* trailing space kept */
    assert_int_equal(sl_echo_tokens("", 0), 0);
    assert_int_equal(sl_echo_tokens(" \n\t", 3), 0);
    assert_int_equal(sl_echo_tokens("\xc3\xa9t\xc3\xa9 caf\xc3\xa9", 11), 2);
    assert_int_equal(sl_echo_token_end(s, strlen(s), 8), strlen(s));
    sl_echo_fail fl;
    assert_int_equal(sl_echo_fail_parse(&fl, "drop-mid-stream"), OS_OK);
    assert_int_equal(fl, SL_ECHO_FAIL_DROP);
    assert_int_equal(sl_echo_fail_parse(&fl, "slow-first-token"), OS_OK);
    assert_int_equal(fl, SL_ECHO_FAIL_SLOW_FIRST);
    assert_int_equal(sl_echo_fail_parse(&fl, "501"), OS_ERR_INVALID);
    assert_int_equal(sl_echo_fail_parse(&fl, NULL), OS_ERR_INVALID);
}

/* ---- OpenAI chat ---- */

static const char CHAT[] =
    "{\"model\":\"m1\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello big\"},"
    "{\"type\":\"text\",\"text\":\" world\"}]}]%s}";

static char *chat_body(const char *extra)
{
    char *b = malloc(4096);
    assert_non_null(b);
    snprintf(b, 4096, CHAT, extra);
    return b;
}

static void test_chat_json(void **state)
{
    (void)state;
    fix f;
    long st;
    fix_start(&f, NULL, NULL);
    char *body = chat_body("");
    json_t *v = post_json(&f, "/v1/chat/completions", body, NULL, 0, &st);
    assert_int_equal(st, 200);
    assert_keys(v, 6);
    assert_true(strncmp(jstr(v, "id"), "chatcmpl-", 9) == 0);
    assert_string_equal(jstr(v, "object"), "chat.completion");
    assert_true(jint(v, "created") > 1600000000);
    assert_string_equal(jstr(v, "model"), "m1");
    json_t *ch = json_object_get(v, "choices");
    assert_int_equal(json_array_size(ch), 1);
    json_t *c0 = json_array_get(ch, 0);
    assert_keys(c0, 4);
    assert_int_equal(jint(c0, "index"), 0);
    assert_true(json_is_null(json_object_get(c0, "logprobs")));
    assert_string_equal(jstr(c0, "finish_reason"), "stop");
    json_t *msg = json_object_get(c0, "message");
    assert_keys(msg, 2);
    assert_string_equal(jstr(msg, "role"), "assistant");
    assert_string_equal(jstr(msg, "content"), "echo: hello big world");
    json_t *u = json_object_get(v, "usage");
    assert_keys(u, 3);
    /* prompt: 3 + (4 + 2 "be brief") + (4 + 2 "hello big" + 1 " world"); completion: 4 */
    assert_int_equal(jint(u, "prompt_tokens"), 16);
    assert_int_equal(jint(u, "completion_tokens"), 4);
    assert_int_equal(jint(u, "total_tokens"), 20);
    assert_true((uint64_t)jint(u, "prompt_tokens") <= estimate_in("openai.chat", body));
    json_decref(v);
    free(body);

    /* n = 2: two identical choices, completion tokens doubled */
    body = chat_body(",\"n\":2,\"max_tokens\":3");
    v = post_json(&f, "/v1/chat/completions", body, NULL, 0, &st);
    assert_int_equal(st, 200);
    ch = json_object_get(v, "choices");
    assert_int_equal(json_array_size(ch), 2);
    for (size_t i = 0; i < 2; i++) {
        c0 = json_array_get(ch, i);
        assert_int_equal(jint(c0, "index"), (json_int_t)i);
        assert_string_equal(jstr(c0, "finish_reason"), "length");
        assert_string_equal(jstr(json_object_get(c0, "message"), "content"), "echo: hello big");
    }
    assert_int_equal(jint(json_object_get(v, "usage"), "completion_tokens"), 6);
    json_decref(v);
    free(body);

    /* bad requests */
    v = post_json(&f, "/v1/chat/completions", "{\"messages\":[]}", NULL, 0, &st);
    assert_int_equal(st, 400);
    assert_string_equal(jstr(json_object_get(v, "error"), "type"), "invalid_request_error");
    json_decref(v);
    v = post_json(&f, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", NULL,
                  0, &st);
    assert_int_equal(st, 400);
    json_decref(v);
    fix_stop(&f);
}

static void test_chat_tools(void **state)
{
    (void)state;
    fix f;
    long st;
    fix_start(&f, NULL, NULL);
    const char *body =
        "{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"Paris today\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"parameters\":{\"type\":\"object\"}}},{\"type\":\"function\",\"function\":"
        "{\"name\":\"other\"}}]}";
    json_t *v = post_json(&f, "/v1/chat/completions", body, NULL, 0, &st);
    assert_int_equal(st, 200);
    json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(jstr(c0, "finish_reason"), "tool_calls");
    json_t *msg = json_object_get(c0, "message");
    assert_keys(msg, 3);
    assert_true(json_is_null(json_object_get(msg, "content")));
    json_t *tc = json_array_get(json_object_get(msg, "tool_calls"), 0);
    assert_int_equal(json_array_size(json_object_get(msg, "tool_calls")), 1);
    assert_keys(tc, 3);
    assert_true(strncmp(jstr(tc, "id"), "call_", 5) == 0);
    assert_string_equal(jstr(tc, "type"), "function");
    json_t *fn = json_object_get(tc, "function");
    assert_keys(fn, 2);
    assert_string_equal(jstr(fn, "name"), "get_weather");
    assert_string_equal(jstr(fn, "arguments"), "{\"input\":\"Paris today\"}");
    json_t *u = json_object_get(v, "usage");
    assert_int_equal(jint(u, "prompt_tokens"), 3 + 4 + 2);
    assert_int_equal(jint(u, "completion_tokens"), 2); /* {"input":"Paris | today"} */
    assert_true((uint64_t)jint(u, "prompt_tokens") <= estimate_in("openai.chat", body));
    json_decref(v);

    /* tool_choice names a function; "none" gives text */
    v = post_json(&f, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                  "\"function\",\"function\":{\"name\":\"a\"}}],\"tool_choice\":{\"type\":"
                  "\"function\",\"function\":{\"name\":\"b\"}}}",
                  NULL, 0, &st);
    msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    assert_string_equal(
        jstr(json_object_get(json_array_get(json_object_get(msg, "tool_calls"), 0), "function"),
             "name"),
        "b");
    json_decref(v);
    v = post_json(&f, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                  "\"function\",\"function\":{\"name\":\"a\"}}],\"tool_choice\":\"none\"}",
                  NULL, 0, &st);
    c0 = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(jstr(json_object_get(c0, "message"), "content"), "echo: x");
    assert_string_equal(jstr(c0, "finish_reason"), "stop");
    json_decref(v);
    /* arguments that do not fit max_tokens: the cut text instead */
    v = post_json(&f, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}],\"max_tokens\":2,"
                  "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}}]}",
                  NULL, 0, &st);
    c0 = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(jstr(json_object_get(c0, "message"), "content"), "echo: a");
    assert_string_equal(jstr(c0, "finish_reason"), "length");
    json_decref(v);
    fix_stop(&f);
}

/* Streams body to path and collects the events; returns the client's result. */
static os_err stream(fix *f, coll *c, const char *path, const char *body, const os_http_header *h,
                     size_t nh, long *status)
{
    os_http_client_res res;
    os_err rc = do_req(f, &res, "POST", path, body, h, nh, c);
    *status = res.status;
    if (rc == OS_OK)
        assert_string_equal(os_http_client_res_header(&res, "Content-Type"), "text/event-stream");
    os_http_client_res_free(&res);
    return rc;
}

static void test_chat_stream(void **state)
{
    (void)state;
    fix f;
    long st;
    coll c;
    fix_start(&f, NULL, NULL);
    char *body = chat_body(",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    coll_init(&c);
    assert_int_equal(stream(&f, &c, "/v1/chat/completions", body, NULL, 0, &st), OS_OK);
    assert_int_equal(st, 200);
    /* role chunk, 4 content chunks, finish chunk, usage chunk, [DONE] */
    assert_int_equal(c.n, 8);
    assert_string_equal(c.data[7], "[DONE]");
    char text[256] = "";
    char id[64] = "";
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(c.type[i], "message");
        json_t *v = ev_json(&c, i);
        assert_keys(v, 6);
        if (i == 0)
            snprintf(id, sizeof(id), "%s", jstr(v, "id"));
        assert_string_equal(jstr(v, "id"), id);
        assert_string_equal(jstr(v, "object"), "chat.completion.chunk");
        assert_string_equal(jstr(v, "model"), "m1");
        jint(v, "created");
        json_t *ch = json_object_get(v, "choices");
        if (i == 6) {
            assert_int_equal(json_array_size(ch), 0);
            json_t *u = json_object_get(v, "usage");
            assert_int_equal(jint(u, "prompt_tokens"), 16);
            assert_int_equal(jint(u, "completion_tokens"), 4);
            assert_int_equal(jint(u, "total_tokens"), 20);
            json_decref(v);
            continue;
        }
        assert_true(json_is_null(json_object_get(v, "usage")));
        json_t *c0 = json_array_get(ch, 0);
        assert_keys(c0, 4);
        assert_int_equal(jint(c0, "index"), 0);
        json_t *d = json_object_get(c0, "delta");
        if (i == 0) {
            assert_keys(d, 2);
            assert_string_equal(jstr(d, "role"), "assistant");
            assert_string_equal(jstr(d, "content"), "");
        } else if (i == 5) {
            assert_keys(d, 0);
            assert_string_equal(jstr(c0, "finish_reason"), "stop");
        } else {
            assert_keys(d, 1);
            assert_true(json_is_null(json_object_get(c0, "finish_reason")));
            strncat(text, jstr(d, "content"), sizeof(text) - strlen(text) - 1);
        }
        json_decref(v);
    }
    assert_string_equal(text, "echo: hello big world");
    coll_free(&c);
    free(body);

    /* without include_usage: no usage key at all, no usage chunk; max_completion_tokens cuts */
    body = chat_body(",\"stream\":true,\"max_completion_tokens\":2");
    coll_init(&c);
    assert_int_equal(stream(&f, &c, "/v1/chat/completions", body, NULL, 0, &st), OS_OK);
    assert_int_equal(c.n, 5);
    text[0] = '\0';
    for (size_t i = 0; i < 4; i++) {
        json_t *v = ev_json(&c, i);
        assert_null(json_object_get(v, "usage"));
        json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
        const json_t *ct = json_object_get(json_object_get(c0, "delta"), "content");
        if (i > 0 && json_is_string(ct))
            strncat(text, json_string_value(ct), sizeof(text) - strlen(text) - 1);
        if (i == 3)
            assert_string_equal(jstr(c0, "finish_reason"), "length");
        json_decref(v);
    }
    assert_string_equal(text, "echo: hello");
    assert_string_equal(c.data[4], "[DONE]");
    coll_free(&c);
    free(body);

    /* a streamed tool call: id and name first, then argument pieces */
    coll_init(&c);
    assert_int_equal(stream(&f, &c, "/v1/chat/completions",
                            "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
                            "\"Paris today\"}],\"tools\":[{\"type\":\"function\",\"function\":"
                            "{\"name\":\"get_weather\"}}]}",
                            NULL, 0, &st),
                     OS_OK);
    assert_int_equal(c.n, 5); /* first, 2 argument pieces, finish, [DONE] */
    json_t *v = ev_json(&c, 0);
    json_t *d = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta");
    assert_string_equal(jstr(d, "role"), "assistant");
    assert_true(json_is_null(json_object_get(d, "content")));
    json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
    assert_int_equal(jint(tc, "index"), 0);
    assert_true(strncmp(jstr(tc, "id"), "call_", 5) == 0);
    assert_string_equal(jstr(tc, "type"), "function");
    assert_string_equal(jstr(json_object_get(tc, "function"), "name"), "get_weather");
    assert_string_equal(jstr(json_object_get(tc, "function"), "arguments"), "");
    json_decref(v);
    text[0] = '\0';
    for (size_t i = 1; i < 3; i++) {
        v = ev_json(&c, i);
        d = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta");
        tc = json_array_get(json_object_get(d, "tool_calls"), 0);
        assert_keys(tc, 2);
        strncat(text, jstr(json_object_get(tc, "function"), "arguments"),
                sizeof(text) - strlen(text) - 1);
        json_decref(v);
    }
    assert_string_equal(text, "{\"input\":\"Paris today\"}");
    v = ev_json(&c, 3);
    assert_string_equal(jstr(json_array_get(json_object_get(v, "choices"), 0), "finish_reason"),
                        "tool_calls");
    json_decref(v);
    coll_free(&c);
    fix_stop(&f);
}

/* ---- embeddings and models ---- */

static double comp(const uint8_t h[32], size_t k)
{
    return (int16_t)(((unsigned)h[2 * k] << 8) | h[2 * k + 1]) / 32768.0;
}

static void test_embeddings(void **state)
{
    (void)state;
    fix f;
    long st;
    uint8_t h[32];
    fix_start(&f, NULL, NULL);
    const char *body = "{\"model\":\"emb\",\"input\":[\"a b\",\"c\"]}";
    json_t *v = post_json(&f, "/v1/embeddings", body, NULL, 0, &st);
    assert_int_equal(st, 200);
    assert_keys(v, 4);
    assert_string_equal(jstr(v, "object"), "list");
    assert_string_equal(jstr(v, "model"), "emb");
    json_t *data = json_object_get(v, "data");
    assert_int_equal(json_array_size(data), 2);
    const char *in[2] = {"a b", "c"};
    for (size_t i = 0; i < 2; i++) {
        json_t *it = json_array_get(data, i);
        assert_keys(it, 3);
        assert_string_equal(jstr(it, "object"), "embedding");
        assert_int_equal(jint(it, "index"), (json_int_t)i);
        json_t *vec = json_object_get(it, "embedding");
        assert_int_equal(json_array_size(vec), 8);
        os_keccak256(h, in[i], strlen(in[i]));
        for (size_t k = 0; k < 8; k++)
            assert_true(json_real_value(json_array_get(vec, k)) == comp(h, k));
    }
    json_t *u = json_object_get(v, "usage");
    assert_keys(u, 2);
    assert_int_equal(jint(u, "prompt_tokens"), 3);
    assert_int_equal(jint(u, "total_tokens"), 3);
    assert_true(3 <= estimate_in("openai.embeddings", body));
    json_decref(v);

    /* base64 float32 little-endian, dimensions 4, one token-id array */
    v = post_json(&f, "/v1/embeddings",
                  "{\"input\":[1,2,3],\"encoding_format\":\"base64\",\"dimensions\":4}", NULL, 0,
                  &st);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(v, "model"), "echo-1");
    assert_int_equal(jint(json_object_get(v, "usage"), "prompt_tokens"), 3);
    const char *b64 = jstr(json_array_get(json_object_get(v, "data"), 0), "embedding");
    uint8_t raw[16];
    size_t rl;
    assert_int_equal(os_base64_decode(raw, sizeof(raw), &rl, b64, strlen(b64)), OS_OK);
    assert_int_equal(rl, 16);
    os_keccak256(h, "[1,2,3]", 7);
    for (size_t k = 0; k < 4; k++) {
        uint32_t u32 = (uint32_t)raw[4 * k] | (uint32_t)raw[4 * k + 1] << 8 |
                       (uint32_t)raw[4 * k + 2] << 16 | (uint32_t)raw[4 * k + 3] << 24;
        float fl;
        memcpy(&fl, &u32, 4);
        assert_true((double)fl == comp(h, k));
    }
    json_decref(v);

    v = post_json(&f, "/v1/embeddings", "{\"input\":[]}", NULL, 0, &st);
    assert_int_equal(st, 400);
    json_decref(v);
    v = post_json(&f, "/v1/embeddings", "{\"input\":\"x\",\"dimensions\":17}", NULL, 0, &st);
    assert_int_equal(st, 400);
    json_decref(v);

    /* models and healthz */
    os_http_client_res res;
    json_error_t je;
    assert_int_equal(do_req(&f, &res, "GET", "/v1/models", NULL, NULL, 0, NULL), OS_OK);
    assert_int_equal(res.status, 200);
    v = json_loadb((const char *)res.body.data, res.body.len, 0, &je);
    assert_non_null(v);
    assert_string_equal(jstr(v, "object"), "list");
    json_t *m = json_array_get(json_object_get(v, "data"), 0);
    assert_string_equal(jstr(m, "id"), "echo-1");
    assert_string_equal(jstr(m, "object"), "model");
    assert_string_equal(jstr(m, "owned_by"), "openseed");
    json_decref(v);
    os_http_client_res_free(&res);
    assert_int_equal(do_req(&f, &res, "GET", "/healthz", NULL, NULL, 0, NULL), OS_OK);
    assert_int_equal(res.status, 200);
    os_http_client_res_free(&res);
    fix_stop(&f);
}

/* ---- Anthropic ---- */

static const char MSG[] =
    "{\"model\":\"claude-x\",\"max_tokens\":%d,\"system\":\"be nice\",%s\"messages\":["
    "{\"role\":\"user\",\"content\":\"hi there\"},{\"role\":\"assistant\",\"content\":"
    "[{\"type\":\"text\",\"text\":\"ok\"}]},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
    "\"text\":\"tell me more\"}]}]}";

static char *msg_body(int max, const char *extra)
{
    char *b = malloc(4096);
    assert_non_null(b);
    snprintf(b, 4096, MSG, max, extra);
    return b;
}

static void test_messages_json(void **state)
{
    (void)state;
    fix f;
    long st;
    fix_start(&f, NULL, NULL);
    char *body = msg_body(100, "");
    json_t *v = post_json(&f, "/v1/messages", body, NULL, 0, &st);
    assert_int_equal(st, 200);
    assert_keys(v, 8);
    assert_true(strncmp(jstr(v, "id"), "msg_", 4) == 0);
    assert_string_equal(jstr(v, "type"), "message");
    assert_string_equal(jstr(v, "role"), "assistant");
    assert_string_equal(jstr(v, "model"), "claude-x");
    assert_string_equal(jstr(v, "stop_reason"), "end_turn");
    assert_true(json_is_null(json_object_get(v, "stop_sequence")));
    json_t *ct = json_object_get(v, "content");
    assert_int_equal(json_array_size(ct), 1);
    json_t *b0 = json_array_get(ct, 0);
    assert_keys(b0, 2);
    assert_string_equal(jstr(b0, "type"), "text");
    assert_string_equal(jstr(b0, "text"), "echo: tell me more");
    json_t *u = json_object_get(v, "usage");
    assert_keys(u, 2);
    /* 3 + 2 (system) + (4 + 2) + (4 + 1) + (4 + 3) */
    assert_int_equal(jint(u, "input_tokens"), 23);
    assert_int_equal(jint(u, "output_tokens"), 4);
    assert_true((uint64_t)jint(u, "input_tokens") <= estimate_in("anthropic.messages", body));
    json_decref(v);
    free(body);

    body = msg_body(2, "");
    v = post_json(&f, "/v1/messages", body, NULL, 0, &st);
    assert_string_equal(jstr(v, "stop_reason"), "max_tokens");
    assert_string_equal(jstr(json_array_get(json_object_get(v, "content"), 0), "text"),
                        "echo: tell");
    assert_int_equal(jint(json_object_get(v, "usage"), "output_tokens"), 2);
    json_decref(v);
    free(body);

    body =
        msg_body(100, "\"tools\":[{\"name\":\"lookup\",\"input_schema\":{\"type\":\"object\"}}],");
    v = post_json(&f, "/v1/messages", body, NULL, 0, &st);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(v, "stop_reason"), "tool_use");
    b0 = json_array_get(json_object_get(v, "content"), 0);
    assert_keys(b0, 4);
    assert_string_equal(jstr(b0, "type"), "tool_use");
    assert_true(strncmp(jstr(b0, "id"), "toolu_", 6) == 0);
    assert_string_equal(jstr(b0, "name"), "lookup");
    json_t *inp = json_object_get(b0, "input");
    assert_keys(inp, 1);
    assert_string_equal(jstr(inp, "input"), "tell me more");
    assert_int_equal(jint(json_object_get(v, "usage"), "output_tokens"), 3);
    json_decref(v);
    free(body);

    /* max_tokens is required; errors in Anthropic's shape */
    v = post_json(&f, "/v1/messages",
                  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, 0,
                  &st);
    assert_int_equal(st, 400);
    assert_keys(v, 2);
    assert_string_equal(jstr(v, "type"), "error");
    json_t *er = json_object_get(v, "error");
    assert_keys(er, 2);
    assert_string_equal(jstr(er, "type"), "invalid_request_error");
    assert_string_equal(jstr(er, "message"), "max_tokens: Field required");
    json_decref(v);
    v = post_json(&f, "/v1/messages", "not json", NULL, 0, &st);
    assert_int_equal(st, 400);
    assert_string_equal(jstr(json_object_get(v, "error"), "type"), "invalid_request_error");
    json_decref(v);
    fix_stop(&f);
}

static void check_anthropic_order(const coll *c, size_t deltas)
{
    static const char *const head[] = {"message_start", "content_block_start", "ping"};
    static const char *const tail[] = {"content_block_stop", "message_delta", "message_stop"};
    assert_int_equal(c->n, 6 + deltas);
    for (size_t i = 0; i < c->n; i++) {
        const char *want = i < 3            ? head[i]
                           : i < 3 + deltas ? "content_block_delta"
                                            : tail[i - 3 - deltas];
        assert_string_equal(c->type[i], want);
        json_t *v = ev_json(c, i);
        assert_string_equal(jstr(v, "type"), want);
        json_decref(v);
    }
}

static void test_messages_stream(void **state)
{
    (void)state;
    fix f;
    long st;
    coll c;
    fix_start(&f, NULL, NULL);
    char *body = msg_body(100, "\"stream\":true,");
    coll_init(&c);
    assert_int_equal(stream(&f, &c, "/v1/messages", body, NULL, 0, &st), OS_OK);
    assert_int_equal(st, 200);
    check_anthropic_order(&c, 4);
    json_t *v = ev_json(&c, 0);
    json_t *m = json_object_get(v, "message");
    assert_keys(m, 8);
    assert_true(strncmp(jstr(m, "id"), "msg_", 4) == 0);
    assert_string_equal(jstr(m, "type"), "message");
    assert_string_equal(jstr(m, "role"), "assistant");
    assert_string_equal(jstr(m, "model"), "claude-x");
    assert_int_equal(json_array_size(json_object_get(m, "content")), 0);
    assert_true(json_is_null(json_object_get(m, "stop_reason")));
    assert_int_equal(jint(json_object_get(m, "usage"), "input_tokens"), 23);
    json_decref(v);
    v = ev_json(&c, 1);
    assert_int_equal(jint(v, "index"), 0);
    json_t *cb = json_object_get(v, "content_block");
    assert_keys(cb, 2);
    assert_string_equal(jstr(cb, "type"), "text");
    assert_string_equal(jstr(cb, "text"), "");
    json_decref(v);
    char text[256] = "";
    for (size_t i = 3; i < 7; i++) {
        v = ev_json(&c, i);
        assert_int_equal(jint(v, "index"), 0);
        json_t *d = json_object_get(v, "delta");
        assert_keys(d, 2);
        assert_string_equal(jstr(d, "type"), "text_delta");
        strncat(text, jstr(d, "text"), sizeof(text) - strlen(text) - 1);
        json_decref(v);
    }
    assert_string_equal(text, "echo: tell me more");
    v = ev_json(&c, 7);
    assert_int_equal(jint(v, "index"), 0);
    json_decref(v);
    v = ev_json(&c, 8);
    assert_string_equal(jstr(json_object_get(v, "delta"), "stop_reason"), "end_turn");
    assert_true(json_is_null(json_object_get(json_object_get(v, "delta"), "stop_sequence")));
    assert_int_equal(jint(json_object_get(v, "usage"), "output_tokens"), 4);
    json_decref(v);
    coll_free(&c);
    free(body);

    /* tool_use stream: input_json_delta pieces make the input object */
    body = msg_body(100, "\"stream\":true,\"tools\":[{\"name\":\"lookup\"}],");
    coll_init(&c);
    assert_int_equal(stream(&f, &c, "/v1/messages", body, NULL, 0, &st), OS_OK);
    check_anthropic_order(&c, 3);
    v = ev_json(&c, 1);
    cb = json_object_get(v, "content_block");
    assert_keys(cb, 4);
    assert_string_equal(jstr(cb, "type"), "tool_use");
    assert_string_equal(jstr(cb, "name"), "lookup");
    assert_keys(json_object_get(cb, "input"), 0);
    json_decref(v);
    text[0] = '\0';
    for (size_t i = 3; i < 6; i++) {
        v = ev_json(&c, i);
        json_t *d = json_object_get(v, "delta");
        assert_string_equal(jstr(d, "type"), "input_json_delta");
        strncat(text, jstr(d, "partial_json"), sizeof(text) - strlen(text) - 1);
        json_decref(v);
    }
    assert_string_equal(text, "{\"input\":\"tell me more\"}");
    v = ev_json(&c, 7);
    assert_string_equal(jstr(json_object_get(v, "delta"), "stop_reason"), "tool_use");
    assert_int_equal(jint(json_object_get(v, "usage"), "output_tokens"), 3);
    json_decref(v);
    coll_free(&c);
    free(body);

    /* max_tokens cut in a stream */
    body = msg_body(1, "\"stream\":true,");
    coll_init(&c);
    assert_int_equal(stream(&f, &c, "/v1/messages", body, NULL, 0, &st), OS_OK);
    check_anthropic_order(&c, 1);
    v = ev_json(&c, 5);
    assert_string_equal(jstr(json_object_get(v, "delta"), "stop_reason"), "max_tokens");
    assert_int_equal(jint(json_object_get(v, "usage"), "output_tokens"), 1);
    json_decref(v);
    coll_free(&c);
    free(body);
    fix_stop(&f);
}

/* ---- failures, keys, cancellation, pacing ---- */

static void test_inject_errors(void **state)
{
    (void)state;
    fix f;
    long st;
    os_http_client_res res;
    fix_start(&f, NULL, NULL);
    char *body = chat_body("");
    os_http_header h500 = {"X-Echo-Fail", "500"}, h429 = {"X-Echo-Fail", "429"};
    json_t *v = post_json(&f, "/v1/chat/completions", body, &h500, 1, &st);
    assert_int_equal(st, 500);
    json_t *er = json_object_get(v, "error");
    assert_keys(er, 3);
    assert_string_equal(jstr(er, "type"), "server_error");
    json_decref(v);

    assert_int_equal(do_req(&f, &res, "POST", "/v1/chat/completions", body, &h429, 1, NULL), OS_OK);
    assert_int_equal(res.status, 429);
    assert_string_equal(os_http_client_res_header(&res, "Retry-After"), "1");
    v = json_loadb((const char *)res.body.data, res.body.len, 0, NULL);
    assert_string_equal(jstr(json_object_get(v, "error"), "code"), "rate_limit_exceeded");
    json_decref(v);
    os_http_client_res_free(&res);
    free(body);

    body = msg_body(10, "");
    assert_int_equal(do_req(&f, &res, "POST", "/v1/messages", body, &h429, 1, NULL), OS_OK);
    assert_int_equal(res.status, 429);
    assert_string_equal(os_http_client_res_header(&res, "Retry-After"), "1");
    v = json_loadb((const char *)res.body.data, res.body.len, 0, NULL);
    assert_string_equal(jstr(v, "type"), "error");
    assert_string_equal(jstr(json_object_get(v, "error"), "type"), "rate_limit_error");
    json_decref(v);
    os_http_client_res_free(&res);
    v = post_json(&f, "/v1/messages", body, &h500, 1, &st);
    assert_int_equal(st, 500);
    assert_string_equal(jstr(json_object_get(v, "error"), "type"), "api_error");
    json_decref(v);
    os_http_header bad = {"X-Echo-Fail", "boom"};
    v = post_json(&f, "/v1/messages", body, &bad, 1, &st);
    assert_int_equal(st, 400);
    json_decref(v);
    free(body);
    fix_stop(&f);

    /* a configured failure applies to every request; "none" lifts it for one */
    sl_echo_config cfg = {.fail = SL_ECHO_FAIL_429, .retry_after_s = 7};
    fix_start(&f, &cfg, NULL);
    body = chat_body("");
    assert_int_equal(do_req(&f, &res, "POST", "/v1/chat/completions", body, NULL, 0, NULL), OS_OK);
    assert_int_equal(res.status, 429);
    assert_string_equal(os_http_client_res_header(&res, "Retry-After"), "7");
    os_http_client_res_free(&res);
    os_http_header none = {"X-Echo-Fail", "none"};
    v = post_json(&f, "/v1/chat/completions", body, &none, 1, &st);
    assert_int_equal(st, 200);
    json_decref(v);
    free(body);
    assert_int_equal(sl_echo_requests(f.e), 2);
    fix_stop(&f);
}

static void test_drop_and_slow(void **state)
{
    (void)state;
    fix f;
    long st;
    coll c;
    sl_echo_config cfg = {.slow_first_token_ms = 300, .drop_after = 2};
    fix_start(&f, &cfg, NULL);
    os_http_header drop = {"X-Echo-Fail", "drop-mid-stream"};
    os_http_header slow = {"X-Echo-Fail", "slow-first-token"};

    char *body = chat_body(",\"stream\":true");
    coll_init(&c);
    assert_int_not_equal(stream(&f, &c, "/v1/chat/completions", body, &drop, 1, &st), OS_OK);
    assert_int_equal(st, 200);
    assert_int_equal(c.n, 3); /* role chunk and 2 content chunks, then the cut */
    for (size_t i = 0; i < c.n; i++)
        assert_string_not_equal(c.data[i], "[DONE]");
    coll_free(&c);

    /* the dropped non-stream answer is a truncated JSON body */
    os_http_client_res res;
    char *plain = chat_body("");
    assert_int_not_equal(do_req(&f, &res, "POST", "/v1/chat/completions", plain, &drop, 1, NULL),
                         OS_OK);
    os_http_client_res_free(&res);
    free(plain);

    char *mb = msg_body(100, "\"stream\":true,");
    coll_init(&c);
    assert_int_not_equal(stream(&f, &c, "/v1/messages", mb, &drop, 1, &st), OS_OK);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.type[4], "content_block_delta");
    coll_free(&c);
    free(mb);

    coll_init(&c);
    uint64_t t0 = now_ms();
    assert_int_equal(stream(&f, &c, "/v1/chat/completions", body, &slow, 1, &st), OS_OK);
    assert_true(c.t_first - t0 >= 300);
    assert_string_equal(c.data[c.n - 1], "[DONE]");
    coll_free(&c);
    free(body);
    fix_stop(&f);

    /* configured latency delays non-stream answers too */
    sl_echo_config lat = {.latency_ms = 200};
    fix_start(&f, &lat, NULL);
    body = chat_body("");
    t0 = now_ms();
    json_t *v = post_json(&f, "/v1/chat/completions", body, NULL, 0, &st);
    assert_true(now_ms() - t0 >= 200);
    assert_int_equal(st, 200);
    assert_string_equal(
        jstr(json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message"),
             "content"),
        "echo: hello big world");
    json_decref(v);
    free(body);
    fix_stop(&f);
}

static void test_api_key(void **state)
{
    (void)state;
    fix f;
    long st;
    os_logger lg;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *mem = open_memstream(&logbuf, &loglen);
    assert_non_null(mem);
    os_logger_init(&lg, "echo", OS_LOG_DEBUG);
    lg.out = mem;
    sl_echo_config cfg = {.api_key = "sk-secret-echo-key"};
    fix_start(&f, &cfg, &lg);
    char *body = chat_body("");
    os_http_header ok = {"Authorization", "Bearer sk-secret-echo-key"};
    os_http_header wrong = {"Authorization", "Bearer sk-secret-echo-kez"};
    os_http_header xk = {"x-api-key", "sk-secret-echo-key"};

    json_t *v = post_json(&f, "/v1/chat/completions", body, NULL, 0, &st);
    assert_int_equal(st, 401);
    json_t *er = json_object_get(v, "error");
    assert_string_equal(jstr(er, "type"), "invalid_request_error");
    assert_string_equal(jstr(er, "code"), "invalid_api_key");
    json_decref(v);
    v = post_json(&f, "/v1/chat/completions", body, &wrong, 1, &st);
    assert_int_equal(st, 401);
    json_decref(v);
    v = post_json(&f, "/v1/chat/completions", body, &xk, 1, &st); /* not the OpenAI header */
    assert_int_equal(st, 401);
    json_decref(v);
    v = post_json(&f, "/v1/chat/completions", body, &ok, 1, &st);
    assert_int_equal(st, 200);
    json_decref(v);
    v = post_json(&f, "/v1/embeddings", "{\"input\":\"x\"}", &ok, 1, &st);
    assert_int_equal(st, 200);
    json_decref(v);
    free(body);

    body = msg_body(10, "");
    v = post_json(&f, "/v1/messages", body, &ok, 1, &st); /* Bearer is not Anthropic's header */
    assert_int_equal(st, 401);
    assert_keys(v, 2);
    assert_string_equal(jstr(v, "type"), "error");
    assert_string_equal(jstr(json_object_get(v, "error"), "type"), "authentication_error");
    json_decref(v);
    v = post_json(&f, "/v1/messages", body, &xk, 1, &st);
    assert_int_equal(st, 200);
    json_decref(v);
    free(body);
    fix_stop(&f);
    fclose(mem);
    assert_true(loglen > 0);
    assert_null(strstr(logbuf, "sk-secret"));
    free(logbuf);
}

static void test_disconnect(void **state)
{
    (void)state;
    fix f;
    long st;
    coll c;
    sl_echo_config cfg = {.tokens_per_s = 20};
    fix_start(&f, &cfg, NULL);
    char words[1024] = "";
    for (int i = 0; i < 60; i++)
        strncat(words, " w", sizeof(words) - strlen(words) - 1);
    char body[1200];
    snprintf(body, sizeof(body),
             "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", words);
    coll_init(&c);
    c.abort_after = 3;
    assert_int_not_equal(stream(&f, &c, "/v1/chat/completions", body, NULL, 0, &st), OS_OK);
    coll_free(&c);
    uint64_t t0 = now_ms();
    while (sl_echo_cancellations(f.e) == 0 && now_ms() - t0 < 5000)
        sleep_ms(10);
    assert_int_equal(sl_echo_cancellations(f.e), 1);
    fix_stop(&f);
}

static void test_pacing(void **state)
{
    (void)state;
    fix f;
    long st;
    coll c;
    sl_echo_config cfg = {.tokens_per_s = 100};
    fix_start(&f, &cfg, NULL);
    /* "echo:" + 19 words = 20 tokens: 19 intervals of 10 ms */
    const char *body = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"a b c d e f g h i j k l m n o p q r s\"}]}";
    coll_init(&c);
    uint64_t t0 = now_ms();
    assert_int_equal(stream(&f, &c, "/v1/chat/completions", body, NULL, 0, &st), OS_OK);
    uint64_t dt = now_ms() - t0;
    assert_int_equal(c.n, 1 + 20 + 1 + 1);
    assert_true(dt >= 185);
    coll_free(&c);
    fix_stop(&f);
}

static long get_status(fix *f, const char *path)
{
    os_http_client_res res;
    assert_int_equal(do_req(f, &res, "GET", path, NULL, NULL, 0, NULL), OS_OK);
    long st = res.status;
    os_http_client_res_free(&res);
    return st;
}

/* The failure rate (echo.h, "Failure rate"): with 500 injected at 300000 ppm under a seed,
 * inference request n fails iff os_rng_mix(seed, n) % 10^6 < 300000, recomputed here for each of
 * 200 requests spread over the three inference routes; /v1/models is not numbered; X-Echo-Fail
 * decides its own request and keeps its number; fail_ppm 0 and 10^6 mean every request. */
static void test_fail_rate(void **state)
{
    (void)state;
    enum { N = 200 };
    const uint64_t seed = 0x5eed0fa11u;
    fix f;
    long st;
    unsigned failed = 0;
    os_http_header none = {"X-Echo-Fail", "none"}, h500 = {"X-Echo-Fail", "500"};
    sl_echo_config cfg = {.fail = SL_ECHO_FAIL_500, .fail_ppm = 300000, .fail_seed = seed};
    char *chat = chat_body(""), *msg = msg_body(10, "");
    bool overrode_fail = false, overrode_ok = false;

    fix_start(&f, &cfg, NULL);
    for (uint64_t n = 0; n < N; n++) {
        bool want_fail = os_rng_mix(seed, n) % 1000000 < 300000;
        const os_http_header *h = NULL;
        bool fails = want_fail;
        /* once each way, the header overrides the draw for its own request */
        if (want_fail && !overrode_fail && n > 10) {
            h = &none;
            fails = false;
            overrode_fail = true;
        } else if (!want_fail && !overrode_ok && n > 10) {
            h = &h500;
            fails = true;
            overrode_ok = true;
        }
        const char *path = n % 3 == 0   ? "/v1/chat/completions"
                           : n % 3 == 1 ? "/v1/messages"
                                        : "/v1/embeddings";
        const char *body = n % 3 == 0 ? chat : n % 3 == 1 ? msg : "{\"input\":\"x\"}";
        json_t *v = post_json(&f, path, body, h, h != NULL ? 1 : 0, &st);
        if (st != (fails ? 500 : 200))
            fail_msg("request %" PRIu64 " on %s: status %ld, want %d", n, path, st,
                     fails ? 500 : 200);
        json_decref(v);
        failed += want_fail;
        if (n % 50 == 25) /* not an inference: neither numbered nor drawn */
            assert_int_equal(get_status(&f, "/v1/models"), 200);
    }
    assert_true(overrode_fail && overrode_ok);
    assert_int_equal(sl_echo_inferences(f.e), N);
    assert_int_equal(sl_echo_requests(f.e), N + 4);
    /* about 30%: the draw is fixed by the seed, this says the formula is not degenerate */
    assert_true(failed >= 45 && failed <= 75);
    /* the same seed on a fresh server fails the same requests */
    fix_stop(&f);
    fix_start(&f, &cfg, NULL);
    for (uint64_t n = 0; n < 20; n++) {
        json_t *v = post_json(&f, "/v1/chat/completions", chat, NULL, 0, &st);
        assert_int_equal(st, os_rng_mix(seed, n) % 1000000 < 300000 ? 500 : 200);
        json_decref(v);
    }
    fix_stop(&f);

    /* 0 and 10^6 ppm: every request, as without a rate; a rate without a failure: none */
    const uint32_t every[2] = {0, 1000000};
    for (int i = 0; i < 2; i++) {
        cfg.fail_ppm = every[i];
        fix_start(&f, &cfg, NULL);
        for (int k = 0; k < 5; k++) {
            json_t *v = post_json(&f, "/v1/chat/completions", chat, NULL, 0, &st);
            assert_int_equal(st, 500);
            json_decref(v);
        }
        assert_int_equal(get_status(&f, "/v1/models"), 500); /* models too, as before */
        fix_stop(&f);
    }
    cfg.fail = SL_ECHO_FAIL_NONE;
    cfg.fail_ppm = 999999;
    fix_start(&f, &cfg, NULL);
    for (int k = 0; k < 5; k++) {
        json_t *v = post_json(&f, "/v1/chat/completions", chat, NULL, 0, &st);
        assert_int_equal(st, 200);
        json_decref(v);
    }
    fix_stop(&f);
    free(chat);
    free(msg);
}

static void test_two_servers_and_stop(void **state)
{
    (void)state;
    fix a, b;
    long st;
    sl_echo_config ca = {.model = "alpha"}, cb = {.model = "beta", .tokens_per_s = 5};
    fix_start(&a, &ca, NULL);
    fix_start(&b, &cb, NULL);
    assert_int_not_equal(a.port, b.port);
    json_t *v = post_json(&a, "/v1/chat/completions",
                          "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, 0, &st);
    assert_string_equal(jstr(v, "model"), "alpha");
    json_decref(v);
    v = post_json(&b, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, 0, &st);
    assert_string_equal(jstr(v, "model"), "beta");
    json_decref(v);
    fix_stop(&a);
    /* stop, then start again on a new port */
    sl_echo_stop(b.e);
    assert_int_equal(sl_echo_start(b.e), OS_OK);
    b.port = sl_echo_port(b.e);
    v = post_json(&b, "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"y\"}]}", NULL, 0, &st);
    assert_int_equal(st, 200);
    json_decref(v);
    fix_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_rules),          cmocka_unit_test(test_chat_json),
        cmocka_unit_test(test_chat_tools),           cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_embeddings),           cmocka_unit_test(test_messages_json),
        cmocka_unit_test(test_messages_stream),      cmocka_unit_test(test_inject_errors),
        cmocka_unit_test(test_drop_and_slow),        cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_disconnect),           cmocka_unit_test(test_pacing),
        cmocka_unit_test(test_two_servers_and_stop), cmocka_unit_test(test_fail_rate),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
