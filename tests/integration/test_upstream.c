/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's upstream adapters (src/seller/upstream.h) on real loopback sockets, against two
 * peers: the built-in echo upstream (echo.h: OpenAI chat and embeddings and Anthropic messages in
 * their exact wire formats, with exact token counts, an API key and injected failures), and a raw
 * TCP server written here that replays canned HTTP/1.1 answers byte for byte, cut into TCP writes
 * at every awkward place for an SSE reader (inside "data:", inside JSON and UTF-8, between CR and
 * LF, several events per write, comment lines, one byte at a time), and records the request it got
 * so the exact headers and body the adapter sends are checked. Expected events are written out by
 * hand from the SSE rules (WHATWG HTML 9.2.6) and the providers' stream formats (OpenAI chat
 * completion chunks with [DONE]; Anthropic's message_start ... message_stop).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "openseed/log.h"
#include "openseed/record.h"

#include "echo.h"
#include "upstream.h"

#define MAX_EVENTS 256
#define ECHO_KEY "sk-echo-secret-0123456789"
#define WRONG_KEY "sk-wrong-key-9876543210"
#define RAW_KEY "sk-raw-key-abcdef"

static os_logger quiet;

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

static int setup(void **state)
{
    os_logger_init(&quiet, "test", OS_LOG_ERROR);
    return tu_init(state);
}

/* ---- what a call hands on ---- */

typedef struct sink {
    char *ev[MAX_EVENTS];
    size_t len[MAX_EVENTS];
    uint64_t t[MAX_EVENTS];
    size_t n;
    int starts;
    long start_status;
    size_t events_before_start;
    bool malformed;      /* an event that was not exactly one NUL-terminated SSE event */
    size_t refuse_after; /* refuse the event after this many (0 = never) */
    bool refuse_start;
} sink;

static os_err sink_start(void *ud, long status)
{
    sink *s = ud;
    s->starts++;
    s->start_status = status;
    s->events_before_start = s->n;
    return s->refuse_start ? OS_ERR_IO : OS_OK;
}

static os_err sink_event(void *ud, const char *ev, size_t len)
{
    sink *s = ud;
    if (s->refuse_after != 0 && s->n >= s->refuse_after)
        return OS_ERR_IO;
    if (s->n == MAX_EVENTS)
        return OS_ERR_TOOBIG;
    /* one whole event: ends in its blank line, holds no other, NUL after it */
    if (len < 3 || ev[len] != '\0' || strlen(ev) != len || strcmp(ev + len - 2, "\n\n") != 0 ||
        strstr(ev, "\n\n") != ev + len - 2)
        s->malformed = true;
    s->ev[s->n] = strndup(ev, len);
    s->len[s->n] = len;
    s->t[s->n] = now_ms();
    s->n++;
    return OS_OK;
}

static void sink_free(sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ev[i]);
    memset(s, 0, sizeof(*s));
}

/* The JSON data of event i ("data: {...}\n\n", one data line); NULL for [DONE]. Owned. */
static json_t *ev_json(const sink *s, size_t i, const char **type_out)
{
    static char type[64];
    const char *p = s->ev[i];
    type[0] = '\0';
    if (strncmp(p, "event: ", 7) == 0) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true((size_t)(nl - p - 7) < sizeof(type));
        memcpy(type, p + 7, (size_t)(nl - p - 7));
        type[nl - p - 7] = '\0';
        p = nl + 1;
    }
    if (type_out != NULL)
        *type_out = type;
    assert_memory_equal(p, "data: ", 6);
    p += 6;
    if (strcmp(p, "[DONE]\n\n") == 0)
        return NULL;
    json_error_t je;
    json_t *v = json_loadb(p, strlen(p) - 2, 0, &je);
    assert_non_null(v);
    return v;
}

/* The concatenated content deltas (or tool argument deltas) of an OpenAI stream. */
static char *openai_text(const sink *s, bool tool)
{
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = 0; i < s->n; i++) {
        json_t *v = ev_json(s, i, NULL);
        if (v == NULL)
            continue;
        json_t *d = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "delta");
        json_t *t = tool ? json_object_get(
                               json_object_get(json_array_get(json_object_get(d, "tool_calls"), 0),
                                               "function"),
                               "arguments")
                         : json_object_get(d, "content");
        if (json_is_string(t)) {
            size_t k = json_string_length(t);
            assert_true(n + k < cap);
            memcpy(out + n, json_string_value(t), k);
            n += k;
        }
        json_decref(v);
    }
    return out;
}

/* ---- an upstream against a port ---- */

typedef struct upcfg {
    sl_upstream_kind kind;
    const char *key;
    const char *suffix; /* appended to http://127.0.0.1:PORT */
    long first_byte_ms, idle_ms;
    size_t max_event;
} upcfg;

static sl_upstream *up_new(uint16_t port, const upcfg *uc)
{
    char base[128];
    sl_upstream *u = NULL;
    snprintf(base, sizeof(base), "http://127.0.0.1:%u%s", (unsigned)port,
             uc->suffix ? uc->suffix : "");
    sl_upstream_config cfg = {
        .base_url = base,
        .kind = uc->kind,
        .api_key = uc->key,
        .first_byte_timeout_ms = uc->first_byte_ms,
        .idle_timeout_ms = uc->idle_ms,
        .timeout_ms = 20000,
        .max_event = uc->max_event,
        .log = &quiet,
    };
    assert_int_equal(sl_upstream_new(&u, &cfg), OS_OK);
    return u;
}

static sl_echo *echo_start(const sl_echo_config *ec)
{
    sl_echo *e = NULL;
    assert_int_equal(sl_echo_new(&e, ec, &quiet), OS_OK);
    assert_int_equal(sl_echo_start(e), OS_OK);
    assert_true(sl_echo_port(e) != 0);
    return e;
}

static json_t *jload(const char *s)
{
    json_error_t je;
    json_t *v = json_loads(s, 0, &je);
    if (v == NULL)
        fail_msg("bad test JSON: %s", je.text);
    return v;
}

/* One call; the body is JSON text. Returns sl_upstream_call's status. */
static os_err do_call(sl_upstream *u, sl_upstream_result *res, const char *api, const char *model,
                      const char *body, uint64_t cap, bool stream, sink *s, const atomic_int *abort)
{
    json_t *b = jload(body);
    sl_upstream_req req = {
        .api = api,
        .model = model,
        .body = b,
        .max_tokens = cap,
        .stream = stream,
        .on_start = s ? sink_start : NULL,
        .on_event = s ? sink_event : NULL,
        .ud = s,
        .abort = abort,
    };
    char *before = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    os_err rc = sl_upstream_call(u, res, &req);
    char *after = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(before, after); /* the buyer's body is not modified */
    free(before);
    free(after);
    json_decref(b);
    return rc;
}

static const char *jstr(const json_t *v, const char *path0, const char *path1)
{
    const json_t *x = json_object_get(v, path0);
    if (path1 != NULL)
        x = json_object_get(x, path1);
    assert_true(json_is_string(x));
    return json_string_value(x);
}

/* ---- against echo ---- */

#define CHAT_HELLO                                                                                 \
    "{\"model\":\"buyer-model\",\"messages\":[{\"role\":\"system\",\"content\":\"You are "         \
    "terse.\"},{\"role\":\"user\",\"content\":\"hello big world\"}],\"max_tokens\":50}"
/* echo.h: prompt = 3 + (4 + 3) + (4 + 3) = 17; answer "echo: hello big world" = 4 tokens */

static void test_openai_chat_whole(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){0});
    sl_upstream *u = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream_result res;

    assert_int_equal(sl_upstream_apis(u), OS_API_OPENAI_CHAT | OS_API_OPENAI_EMBEDDINGS);
    assert_int_equal(do_call(u, &res, "openai.chat", "echo-1", CHAT_HELLO, 50, false, NULL, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_int_equal(res.status, 200);
    assert_non_null(res.body);
    assert_string_equal(jstr(res.body, "object", NULL), "chat.completion");
    assert_string_equal(jstr(res.body, "model", NULL), "echo-1"); /* forced, not buyer-model */
    json_t *ch = json_array_get(json_object_get(res.body, "choices"), 0);
    assert_string_equal(jstr(ch, "message", "content"), "echo: hello big world");
    assert_string_equal(jstr(ch, "finish_reason", NULL), "stop");
    assert_true(res.usage_reported);
    assert_true(res.input_reported);
    assert_int_equal(res.usage.input_tokens, 17);
    assert_int_equal(res.usage.cached_tokens, 0);
    assert_int_equal(res.usage.output_tokens, 4);
    assert_int_equal(res.events, 0);
    json_decref(res.body);
    sl_upstream_free(u);
    sl_echo_free(e);
}

static void test_openai_chat_stream(void **state)
{
    (void)state;
    /* paced so the events can be seen to arrive one by one rather than all at the end */
    sl_echo *e = echo_start(&(sl_echo_config){.tokens_per_s = 20});
    sl_upstream *u = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream_result res;
    sink s = {0};

    uint64_t t0 = now_ms();
    assert_int_equal(do_call(u, &res, "openai.chat", "echo-1", CHAT_HELLO, 50, true, &s, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_int_equal(res.status, 200);
    assert_null(res.body);
    assert_true(res.ttft_ms <= s.t[0] - t0); /* measured up to the first event */
    assert_false(s.malformed);
    assert_int_equal(s.starts, 1);
    assert_int_equal(s.start_status, 200);
    assert_int_equal(s.events_before_start, 0);
    /* role chunk, 4 token chunks, finish chunk, usage chunk, [DONE] */
    assert_int_equal(s.n, 8);
    assert_int_equal(res.events, 8);
    assert_string_equal(s.ev[7], "data: [DONE]\n\n");
    for (size_t i = 0; i < 7; i++) {
        assert_memory_equal(s.ev[i], "data: {", 7); /* no "event:" line for OpenAI */
        json_t *v = ev_json(&s, i, NULL);
        assert_string_equal(jstr(v, "object", NULL), "chat.completion.chunk");
        assert_string_equal(jstr(v, "model", NULL), "echo-1");
        json_decref(v);
    }
    char *text = openai_text(&s, false);
    assert_string_equal(text, "echo: hello big world");
    free(text);
    /* tokens 1..4 at 20/s: the last came about 150 ms after the first */
    assert_true(s.t[4] - s.t[1] >= 100);
    json_t *last = ev_json(&s, 6, NULL);
    assert_int_equal(json_array_size(json_object_get(last, "choices")), 0);
    json_decref(last);
    assert_true(res.usage_reported);
    assert_int_equal(res.usage.input_tokens, 17);
    assert_int_equal(res.usage.output_tokens, 4);
    sink_free(&s);
    sl_upstream_free(u);
    sl_echo_free(e);
}

#define CHAT_TOOLS                                                                                 \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris\"}],\"tools\":[{\"type\":"   \
    "\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]}"

static void test_openai_tool_call(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){0});
    sl_upstream *u = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream_result res;
    sink s = {0};
    const char *args = "{\"input\":\"weather in Paris\"}"; /* echo.h: 3 tokens */

    assert_int_equal(do_call(u, &res, "openai.chat", "echo-1", CHAT_TOOLS, 64, false, NULL, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    json_t *ch = json_array_get(json_object_get(res.body, "choices"), 0);
    assert_string_equal(jstr(ch, "finish_reason", NULL), "tool_calls");
    json_t *tc = json_array_get(json_object_get(json_object_get(ch, "message"), "tool_calls"), 0);
    assert_string_equal(jstr(tc, "function", "name"), "get_weather");
    assert_string_equal(jstr(tc, "function", "arguments"), args);
    assert_int_equal(res.usage.output_tokens, 3);
    assert_int_equal(res.usage.input_tokens, 3 + 4 + 3);
    json_decref(res.body);

    assert_int_equal(do_call(u, &res, "openai.chat", "echo-1", CHAT_TOOLS, 64, true, &s, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_false(s.malformed);
    char *got = openai_text(&s, true);
    assert_string_equal(got, args);
    free(got);
    assert_int_equal(res.usage.output_tokens, 3);
    sink_free(&s);
    sl_upstream_free(u);
    sl_echo_free(e);
}

static void test_openai_embeddings(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){0});
    sl_upstream *u = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream_result res;

    assert_int_equal(do_call(u, &res, "openai.embeddings", "embed-9",
                             "{\"model\":\"x\",\"input\":[\"one two\",\"three\"]}", 0, false, NULL,
                             NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_string_equal(jstr(res.body, "model", NULL), "embed-9");
    assert_int_equal(json_array_size(json_object_get(res.body, "data")), 2);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(res.body, "data"), 0), "embedding")),
                     8);
    assert_true(res.usage_reported);
    assert_int_equal(res.usage.input_tokens, 3);
    assert_int_equal(res.usage.output_tokens, 0);
    json_decref(res.body);
    /* embeddings never stream */
    assert_int_equal(
        do_call(u, &res, "openai.embeddings", "embed-9", "{\"input\":\"a\"}", 0, true, NULL, NULL),
        OS_ERR_INVALID);
    sl_upstream_free(u);
    sl_echo_free(e);
}

#define MSG_HELLO                                                                                  \
    "{\"model\":\"buyer\",\"system\":\"Be brief.\",\"max_tokens\":64,\"messages\":[{\"role\":"     \
    "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello big world\"}]}]}"
/* echo.h: prompt = 3 + 2 (system) + (4 + 3) = 12 */

static void test_anthropic_whole(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){0});
    sl_upstream *u = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_ANTHROPIC});
    sl_upstream_result res;

    assert_int_equal(sl_upstream_apis(u), OS_API_ANTHROPIC_MESSAGES);
    assert_int_equal(
        do_call(u, &res, "anthropic.messages", "claude-echo", MSG_HELLO, 64, false, NULL, NULL),
        OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_string_equal(jstr(res.body, "type", NULL), "message");
    assert_string_equal(jstr(res.body, "model", NULL), "claude-echo");
    assert_string_equal(jstr(res.body, "stop_reason", NULL), "end_turn");
    json_t *block = json_array_get(json_object_get(res.body, "content"), 0);
    assert_string_equal(jstr(block, "text", NULL), "echo: hello big world");
    assert_true(res.usage_reported);
    assert_true(res.input_reported);
    assert_int_equal(res.usage.input_tokens, 12);
    assert_int_equal(res.usage.output_tokens, 4);
    json_decref(res.body);
    /* an OpenAI API on an Anthropic upstream */
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 5, false, NULL, NULL),
                     OS_ERR_UNSUPPORTED);
    assert_true(res.error[0] != '\0');
    sl_upstream_free(u);
    sl_echo_free(e);
}

static void test_anthropic_stream(void **state)
{
    (void)state;
    static const char *const want[] = {
        "message_start",       "content_block_start", "ping",
        "content_block_delta", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop",  "message_delta",
        "message_stop"};
    sl_echo *e = echo_start(&(sl_echo_config){.tokens_per_s = 50});
    sl_upstream *u = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_ANTHROPIC});
    sl_upstream_result res;
    sink s = {0};
    char text[128] = "";

    assert_int_equal(
        do_call(u, &res, "anthropic.messages", "claude-echo", MSG_HELLO, 64, true, &s, NULL),
        OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_false(s.malformed);
    assert_int_equal(s.starts, 1);
    assert_int_equal(s.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < s.n; i++) {
        const char *type;
        json_t *v = ev_json(&s, i, &type);
        assert_non_null(v);
        assert_string_equal(type, want[i]);
        assert_string_equal(jstr(v, "type", NULL), want[i]); /* data's type matches the event */
        if (strcmp(type, "content_block_delta") == 0) {
            const char *t = jstr(v, "delta", "text");
            assert_true(strlen(text) + strlen(t) < sizeof(text));
            strncat(text, t, sizeof(text) - strlen(text) - 1);
        }
        json_decref(v);
    }
    assert_string_equal(text, "echo: hello big world");
    assert_true(res.usage_reported);
    assert_true(res.input_reported);
    assert_int_equal(res.usage.input_tokens, 12);
    assert_int_equal(res.usage.output_tokens, 4);
    sink_free(&s);
    sl_upstream_free(u);
    sl_echo_free(e);
}

static void test_forced_cap(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){0});
    sl_upstream *oa = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream *an = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_ANTHROPIC});
    sl_upstream_result res;
    sink s = {0};

    /* no max_tokens in the buyer's body: the forced cap (2) cuts "echo: hello big world" */
    assert_int_equal(do_call(oa, &res, "openai.chat", "echo-1",
                             "{\"messages\":[{\"role\":\"user\",\"content\":\"hello big world\"}]}",
                             2, false, NULL, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    json_t *ch = json_array_get(json_object_get(res.body, "choices"), 0);
    assert_string_equal(jstr(ch, "message", "content"), "echo: hello");
    assert_string_equal(jstr(ch, "finish_reason", NULL), "length");
    assert_int_equal(res.usage.output_tokens, 2);
    json_decref(res.body);

    /* the buyer's own max_completion_tokens (1) is overwritten too: echo takes the smaller of
     * the two, so an untouched 1 would cut at one token */
    assert_int_equal(do_call(oa, &res, "openai.chat", "echo-1",
                             "{\"messages\":[{\"role\":\"user\",\"content\":\"hello big world\"}],"
                             "\"max_completion_tokens\":1,\"max_tokens\":1}",
                             3, true, &s, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    char *text = openai_text(&s, false);
    assert_string_equal(text, "echo: hello big");
    free(text);
    json_t *fin = ev_json(&s, s.n - 3, NULL);
    assert_string_equal(
        jstr(json_array_get(json_object_get(fin, "choices"), 0), "finish_reason", NULL), "length");
    json_decref(fin);
    assert_int_equal(res.usage.output_tokens, 3);
    sink_free(&s);

    /* Anthropic: the buyer's 64 becomes 2 */
    assert_int_equal(
        do_call(an, &res, "anthropic.messages", "claude-echo", MSG_HELLO, 2, false, NULL, NULL),
        OS_OK);
    assert_string_equal(jstr(res.body, "stop_reason", NULL), "max_tokens");
    assert_string_equal(jstr(json_array_get(json_object_get(res.body, "content"), 0), "text", NULL),
                        "echo: hello");
    assert_int_equal(res.usage.output_tokens, 2);
    json_decref(res.body);
    /* a chat call needs a cap */
    assert_int_equal(do_call(oa, &res, "openai.chat", "echo-1", CHAT_HELLO, 0, false, NULL, NULL),
                     OS_ERR_INVALID);
    sl_upstream_free(an);
    sl_upstream_free(oa);
    sl_echo_free(e);
}

static void test_ollama_kind(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){0});
    /* Ollama's OpenAI-compatible base is usually given with its /v1: accepted and dropped */
    sl_upstream *u =
        up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OLLAMA, .suffix = "/v1/"});
    sl_upstream_result res;
    sink s = {0};

    assert_int_equal(sl_upstream_apis(u), OS_API_OPENAI_CHAT | OS_API_OPENAI_EMBEDDINGS);
    assert_int_equal(do_call(u, &res, "openai.chat", "llama3.1:8b", CHAT_HELLO, 50, true, &s, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    char *text = openai_text(&s, false);
    assert_string_equal(text, "echo: hello big world");
    free(text);
    assert_int_equal(res.usage.input_tokens, 17);
    sink_free(&s);
    assert_int_equal(do_call(u, &res, "openai.embeddings", "nomic-embed-text",
                             "{\"input\":\"a b c\"}", 0, false, NULL, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_string_equal(jstr(res.body, "model", NULL), "nomic-embed-text");
    assert_int_equal(res.usage.input_tokens, 3);
    json_decref(res.body);
    assert_int_equal(do_call(u, &res, "anthropic.messages", "m", MSG_HELLO, 5, false, NULL, NULL),
                     OS_ERR_UNSUPPORTED);
    sl_upstream_free(u);
    sl_echo_free(e);
}

static void assert_no_key(const sl_upstream_result *res)
{
    assert_null(strstr(res->error, ECHO_KEY));
    assert_null(strstr(res->error, WRONG_KEY));
    assert_null(strstr(res->error, "sk-"));
    if (res->body != NULL) {
        char *d = json_dumps(res->body, JSON_COMPACT);
        assert_non_null(d);
        assert_null(strstr(d, ECHO_KEY));
        assert_null(strstr(d, WRONG_KEY));
        free(d);
    }
}

static void test_api_key(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){.api_key = ECHO_KEY});
    uint16_t port = sl_echo_port(e);
    sl_upstream_kind kinds[] = {SL_UPSTREAM_KIND_OPENAI, SL_UPSTREAM_KIND_ANTHROPIC};
    sl_upstream_result res;

    for (size_t k = 0; k < 2; k++) {
        bool an = kinds[k] == SL_UPSTREAM_KIND_ANTHROPIC;
        const char *api = an ? "anthropic.messages" : "openai.chat";
        const char *body = an ? MSG_HELLO : CHAT_HELLO;
        sl_upstream *good = up_new(port, &(upcfg){.kind = kinds[k], .key = ECHO_KEY});
        sl_upstream *bad = up_new(port, &(upcfg){.kind = kinds[k], .key = WRONG_KEY});
        sl_upstream *none = up_new(port, &(upcfg){.kind = kinds[k]});

        assert_int_equal(do_call(good, &res, api, "m", body, 20, false, NULL, NULL), OS_OK);
        assert_int_equal(res.outcome, SL_UPSTREAM_OK);
        json_decref(res.body);

        assert_int_equal(do_call(bad, &res, api, "m", body, 20, false, NULL, NULL), OS_OK);
        assert_int_equal(res.outcome, SL_UPSTREAM_HTTP_ERROR);
        assert_int_equal(res.status, 401);
        assert_non_null(res.body);
        assert_non_null(json_object_get(res.body, "error"));
        assert_false(res.usage_reported);
        assert_no_key(&res);
        json_decref(res.body);

        sink s = {0};
        assert_int_equal(do_call(bad, &res, api, "m", body, 20, true, &s, NULL), OS_OK);
        assert_int_equal(res.outcome, SL_UPSTREAM_HTTP_ERROR);
        assert_int_equal(res.status, 401);
        assert_int_equal(s.n, 0); /* an error answer is no event */
        assert_int_equal(s.starts, 0);
        assert_no_key(&res);
        json_decref(res.body);

        assert_int_equal(do_call(none, &res, api, "m", body, 20, false, NULL, NULL), OS_OK);
        assert_int_equal(res.status, 401);
        json_decref(res.body);
        sl_upstream_free(none);
        sl_upstream_free(bad);
        sl_upstream_free(good);
    }
    sl_echo_free(e);
}

static void test_injected_500_429(void **state)
{
    (void)state;
    sl_echo *e500 = echo_start(&(sl_echo_config){.fail = SL_ECHO_FAIL_500});
    sl_echo *e429 = echo_start(&(sl_echo_config){.fail = SL_ECHO_FAIL_429, .retry_after_s = 7});
    sl_upstream *u500 = up_new(sl_echo_port(e500), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream *u429 = up_new(sl_echo_port(e429), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream *a429 = up_new(sl_echo_port(e429), &(upcfg){.kind = SL_UPSTREAM_KIND_ANTHROPIC});
    sl_upstream_result res;
    sink s = {0};

    assert_int_equal(do_call(u500, &res, "openai.chat", "m", CHAT_HELLO, 9, false, NULL, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_HTTP_ERROR);
    assert_int_equal(res.status, 500);
    assert_string_equal(jstr(res.body, "error", "type"), "server_error");
    assert_non_null(strstr(res.error, "500"));
    assert_int_equal(res.retry_after_s, 0);
    json_decref(res.body);

    assert_int_equal(do_call(u429, &res, "openai.chat", "m", CHAT_HELLO, 9, true, &s, NULL), OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_HTTP_ERROR);
    assert_int_equal(res.status, 429);
    assert_int_equal(res.retry_after_s, 7);
    assert_int_equal(s.n, 0);
    json_decref(res.body);

    assert_int_equal(
        do_call(a429, &res, "anthropic.messages", "m", MSG_HELLO, 9, false, NULL, NULL), OS_OK);
    assert_int_equal(res.status, 429);
    assert_int_equal(res.retry_after_s, 7);
    assert_string_equal(jstr(res.body, "type", NULL), "error"); /* Anthropic's shape, kept */
    assert_string_equal(jstr(res.body, "error", "type"), "rate_limit_error");
    json_decref(res.body);
    sl_upstream_free(a429);
    sl_upstream_free(u429);
    sl_upstream_free(u500);
    sl_echo_free(e429);
    sl_echo_free(e500);
}

#define CHAT_LONG                                                                                  \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"a b c d e f g h i j k l m n o p q r s t u v " \
    "w x y z\"}],\"max_tokens\":100}"

static void test_drop_mid_stream(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){.fail = SL_ECHO_FAIL_DROP, .drop_after = 3});
    sl_upstream *oa = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream *an = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_ANTHROPIC});
    sl_upstream_result res;
    sink s = {0};

    assert_int_equal(do_call(oa, &res, "openai.chat", "m", CHAT_LONG, 100, true, &s, NULL), OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_BROKEN);
    assert_int_equal(res.status, 200);
    assert_int_equal(s.n, 4); /* the role chunk and three tokens */
    assert_int_equal(res.events, 4);
    assert_false(res.usage_reported);
    assert_false(res.input_reported);
    assert_int_equal(res.usage.output_tokens, 3); /* counted */
    assert_true(res.error[0] != '\0');
    sink_free(&s);

    assert_int_equal(do_call(an, &res, "anthropic.messages", "m", MSG_HELLO, 64, true, &s, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_BROKEN);
    /* message_start, content_block_start, ping, three deltas */
    assert_int_equal(s.n, 6);
    assert_false(res.usage_reported);
    assert_true(res.input_reported); /* message_start said so */
    assert_int_equal(res.usage.input_tokens, 12);
    assert_int_equal(res.usage.output_tokens, 3);
    sink_free(&s);

    /* a whole answer cut in half */
    assert_int_equal(do_call(oa, &res, "openai.chat", "m", CHAT_LONG, 100, false, NULL, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_BROKEN);
    assert_null(res.body);
    sl_upstream_free(an);
    sl_upstream_free(oa);
    sl_echo_free(e);
}

static void test_slow_first_token(void **state)
{
    (void)state;
    sl_echo *e =
        echo_start(&(sl_echo_config){.fail = SL_ECHO_FAIL_SLOW_FIRST, .slow_first_token_ms = 4000});
    sl_upstream *fast =
        up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI, .first_byte_ms = 300});
    sl_upstream_result res;
    sink s = {0};

    uint64_t t0 = now_ms();
    assert_int_equal(do_call(fast, &res, "openai.chat", "m", CHAT_HELLO, 9, true, &s, NULL), OS_OK);
    uint64_t took = now_ms() - t0;
    assert_int_equal(res.outcome, SL_UPSTREAM_UNREACHABLE);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.starts, 0);
    assert_true(took >= 300);
    assert_true(took < 2500); /* the deadline, not the 4 s the upstream took */
    assert_non_null(strstr(res.error, "300 ms"));

    /* a whole answer arrives only when it is done: the first-byte limit does not cut it */
    assert_int_equal(do_call(fast, &res, "openai.chat", "m", CHAT_HELLO, 9, false, NULL, NULL),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    json_decref(res.body);
    sl_upstream_free(fast);
    sl_echo_free(e);
}

static void test_cancel_by_client(void **state)
{
    (void)state;
    sl_echo *e = echo_start(&(sl_echo_config){.tokens_per_s = 10});
    sl_upstream *u = up_new(sl_echo_port(e), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream_result res;
    sink s = {.refuse_after = 2};

    uint64_t t0 = now_ms();
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_LONG, 100, true, &s, NULL), OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_CANCELLED);
    assert_int_equal(s.n, 2);
    assert_int_equal(res.events, 2);
    /* the full answer takes 2.7 s at 10 tokens/s; the third event comes at ~0.1 s */
    assert_true(now_ms() - t0 < 1000);
    for (int i = 0; i < 150 && sl_echo_cancellations(e) == 0; i++)
        sleep_ms(20);
    assert_int_equal(sl_echo_cancellations(e), 1);
    sink_free(&s);

    /* on_start refusing also cancels, before any event */
    s.refuse_start = true;
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_LONG, 100, true, &s, NULL), OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_CANCELLED);
    assert_int_equal(s.starts, 1);
    assert_int_equal(s.n, 0);
    for (int i = 0; i < 150 && sl_echo_cancellations(e) < 2; i++)
        sleep_ms(20);
    assert_int_equal(sl_echo_cancellations(e), 2);
    sink_free(&s);
    sl_upstream_free(u);
    sl_echo_free(e);
}

typedef struct setter {
    atomic_int *flag;
    unsigned after_ms;
} setter;

static void *set_later(void *arg)
{
    setter *st = arg;
    sleep_ms(st->after_ms);
    atomic_store(st->flag, 1);
    return NULL;
}

static void test_cancel_by_flag(void **state)
{
    (void)state;
    sl_echo *slow = echo_start(&(sl_echo_config){.tokens_per_s = 5});
    sl_echo *late =
        echo_start(&(sl_echo_config){.fail = SL_ECHO_FAIL_SLOW_FIRST, .slow_first_token_ms = 5000});
    sl_upstream *u1 = up_new(sl_echo_port(slow), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream *u2 = up_new(sl_echo_port(late), &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    sl_upstream_result res;
    atomic_int flag;
    pthread_t th;
    sink s = {0};

    /* mid-stream */
    atomic_init(&flag, 0);
    setter st = {&flag, 500};
    assert_int_equal(pthread_create(&th, NULL, set_later, &st), 0);
    uint64_t t0 = now_ms();
    assert_int_equal(do_call(u1, &res, "openai.chat", "m", CHAT_LONG, 100, true, &s, &flag), OS_OK);
    uint64_t took = now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(res.outcome, SL_UPSTREAM_CANCELLED);
    assert_true(s.n >= 2 && s.n < 20);
    assert_true(took < 2500); /* the whole answer needs 5 s */
    sink_free(&s);

    /* before the first byte: only the watchdog can see the flag */
    atomic_store(&flag, 0);
    st.after_ms = 200;
    assert_int_equal(pthread_create(&th, NULL, set_later, &st), 0);
    t0 = now_ms();
    assert_int_equal(do_call(u2, &res, "openai.chat", "m", CHAT_LONG, 100, true, &s, &flag), OS_OK);
    took = now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(res.outcome, SL_UPSTREAM_CANCELLED);
    assert_int_equal(s.n, 0);
    assert_true(took < 2000);

    /* a flag already set: nothing is sent */
    uint64_t before = sl_echo_requests(slow);
    assert_int_equal(do_call(u1, &res, "openai.chat", "m", CHAT_LONG, 100, false, NULL, &flag),
                     OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_CANCELLED);
    assert_int_equal(sl_echo_requests(slow), before);
    sl_upstream_free(u2);
    sl_upstream_free(u1);
    sl_echo_free(late);
    sl_echo_free(slow);
}

static uint16_t dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_unreachable(void **state)
{
    (void)state;
    sl_upstream *u =
        up_new(dead_port(),
               &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI, .key = RAW_KEY, .suffix = "/secret-path"});
    sl_upstream_result res;
    sink s = {0};

    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, true, &s, NULL), OS_OK);
    assert_int_equal(res.outcome, SL_UPSTREAM_UNREACHABLE);
    assert_int_equal(res.status, 0);
    assert_null(res.body);
    assert_int_equal(s.starts, 0);
    assert_true(res.error[0] != '\0');
    assert_non_null(strstr(res.error, "127.0.0.1")); /* the origin is fine to show */
    assert_null(strstr(res.error, "secret-path"));
    assert_null(strstr(res.error, "/v1"));
    assert_null(strstr(res.error, RAW_KEY));
    sl_upstream_free(u);
}

static void test_config_and_requests(void **state)
{
    (void)state;
    sl_upstream *u = NULL;
    sl_upstream_result res;
    static const char *const bad_urls[] = {"ftp://h/",      "http://",     "https:///x",
                                           "http://h/?q=1", "http://h/#f", "http://h /",
                                           "h:80",          NULL};

    assert_int_equal(sl_upstream_new(&u, NULL), OS_ERR_INVALID);
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++)
        assert_int_equal(sl_upstream_new(&u, &(sl_upstream_config){.base_url = bad_urls[i]}),
                         OS_ERR_INVALID);
    assert_int_equal(sl_upstream_new(&u, &(sl_upstream_config){.base_url = "http://h",
                                                               .api_key = "sk-a\r\nX-Evil: 1"}),
                     OS_ERR_INVALID);
    assert_int_equal(sl_upstream_new(&u, &(sl_upstream_config){.base_url = "http://h", .kind = 7}),
                     OS_ERR_INVALID);
    assert_int_equal(
        sl_upstream_new(&u, &(sl_upstream_config){.base_url = "http://h", .idle_timeout_ms = -5}),
        OS_ERR_INVALID);
    assert_null(u);
    sl_upstream_free(NULL);
    assert_int_equal(sl_upstream_apis(NULL), 0);

    assert_int_equal(sl_upstream_new(&u, &(sl_upstream_config){.base_url = "HTTPS://example.com/",
                                                               .api_key = "k"}),
                     OS_OK);
    assert_int_equal(do_call(u, &res, "openai.images", "m", CHAT_HELLO, 5, false, NULL, NULL),
                     OS_ERR_INVALID);
    assert_true(res.error[0] != '\0');
    assert_int_equal(do_call(u, &res, "openai.chat", "", CHAT_HELLO, 5, false, NULL, NULL),
                     OS_ERR_INVALID);
    assert_int_equal(do_call(u, &res, "openai.chat", "m", "[1,2]", 5, false, NULL, NULL),
                     OS_ERR_INVALID);
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, (uint64_t)INT64_MAX + 1,
                             false, NULL, NULL),
                     OS_ERR_INVALID);
    assert_int_equal(sl_upstream_call(u, NULL, NULL), OS_ERR_INVALID);
    assert_int_equal(sl_upstream_call(u, &res, NULL), OS_ERR_INVALID);
    sl_upstream_free(u);
}

/* ---- a raw HTTP/1.1 server ---- */

typedef struct piece {
    const char *data;
    size_t len; /* 0: strlen(data) */
    unsigned sleep_ms;
} piece;

typedef struct raw_srv {
    int lfd;
    uint16_t port;
    pthread_t th;
    /* the answer */
    const char *head;    /* status line and headers, without the blank line */
    bool chunked;        /* else Connection: close framing */
    const piece *pieces; /* each one write (one chunk when chunked) */
    size_t n_pieces;
    unsigned gap_ms; /* between pieces without their own sleep_ms */
    unsigned end_ms; /* before ending the body */
    bool no_end;     /* chunked: close without the last chunk */
    /* what came */
    char req[1 << 16];
    size_t req_len;
    size_t head_len; /* request head bytes, blank line included */
} raw_srv;

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client left: fine for cancellation tests */
        c += w;
        n -= (size_t)w;
    }
}

/* Reads one request (head and Content-Length body) into s->req. */
static void read_request(raw_srv *s, int fd)
{
    size_t need = 0;
    for (;;) {
        ssize_t r = recv(fd, s->req + s->req_len, sizeof(s->req) - 1 - s->req_len, 0);
        if (r <= 0)
            return;
        s->req_len += (size_t)r;
        s->req[s->req_len] = '\0';
        if (s->head_len == 0) {
            char *end = strstr(s->req, "\r\n\r\n");
            if (end == NULL)
                continue;
            s->head_len = (size_t)(end - s->req) + 4;
            for (char *l = s->req; l < end; l = strstr(l, "\r\n") + 2)
                if (strncasecmp(l, "Content-Length:", 15) == 0)
                    need = strtoul(l + 15, NULL, 10);
        }
        if (s->req_len >= s->head_len + need)
            return;
    }
}

static void *raw_serve(void *arg)
{
    raw_srv *s = arg;
    int one = 1;
    int fd = accept(s->lfd, NULL, NULL);
    char line[64];

    if (fd < 0)
        return NULL;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    read_request(s, fd);
    write_all(fd, s->head, strlen(s->head));
    write_all(
        fd, s->chunked ? "\r\nTransfer-Encoding: chunked\r\n\r\n" : "\r\nConnection: close\r\n\r\n",
        s->chunked ? 32 : 23);
    for (size_t i = 0; i < s->n_pieces; i++) {
        const piece *p = &s->pieces[i];
        size_t n = p->len ? p->len : strlen(p->data);
        sleep_ms(p->sleep_ms ? p->sleep_ms : s->gap_ms);
        if (s->chunked) {
            /* size line, data and CRLF in one write, so the piece is one TCP segment */
            char *buf = malloc(n + 32);
            int k = snprintf(line, sizeof(line), "%zx\r\n", n);
            memcpy(buf, line, (size_t)k);
            memcpy(buf + k, p->data, n);
            memcpy(buf + (size_t)k + n, "\r\n", 2);
            write_all(fd, buf, (size_t)k + n + 2);
            free(buf);
        } else {
            write_all(fd, p->data, n);
        }
    }
    sleep_ms(s->end_ms);
    if (s->chunked && !s->no_end)
        write_all(fd, "0\r\n\r\n", 5);
    sleep_ms(20);
    close(fd);
    return NULL;
}

static void raw_start(raw_srv *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, raw_serve, s), 0);
}

static void raw_join(raw_srv *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* The request's header value for name (case-insensitive), copied into out; false if absent. */
static bool req_header(const raw_srv *s, const char *name, char *out, size_t cap)
{
    const char *l = strstr(s->req, "\r\n") + 2, *end = s->req + s->head_len - 2;
    size_t n = strlen(name);
    while (l < end) {
        const char *e = strstr(l, "\r\n");
        if ((size_t)(e - l) > n && strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            return true;
        }
        l = e + 2;
    }
    return false;
}

/* Asserts the request's header names are exactly `want` (lower case, any order). */
static void assert_header_names(const raw_srv *s, const char *const *want, size_t n_want)
{
    const char *l = strstr(s->req, "\r\n") + 2, *end = s->req + s->head_len - 2;
    size_t seen = 0;
    while (l < end) {
        const char *e = strstr(l, "\r\n"), *colon = memchr(l, ':', (size_t)(e - l));
        char name[64];
        bool found = false;
        assert_non_null(colon);
        assert_true((size_t)(colon - l) < sizeof(name));
        for (size_t i = 0; i < (size_t)(colon - l); i++)
            name[i] = (char)tolower((unsigned char)l[i]);
        name[colon - l] = '\0';
        for (size_t i = 0; i < n_want; i++)
            found = found || strcmp(name, want[i]) == 0;
        if (!found)
            fail_msg("unexpected request header %s", name);
        seen++;
        l = e + 2;
    }
    assert_int_equal(seen, n_want);
}

static json_t *req_body(const raw_srv *s)
{
    json_error_t je;
    json_t *v = json_loadb(s->req + s->head_len, s->req_len - s->head_len, 0, &je);
    assert_non_null(v);
    return v;
}

/* The OpenAI stream: the pieces are TCP writes cut at the places an SSE reader gets wrong. */
#define OAI_E1                                                                                     \
    "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{"    \
    "\"role\":\"assistant\",\"content\":\"\"}}]}"
#define OAI_E2 "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}"
#define OAI_E3                                                                                     \
    "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\xc3\xa9\"}}]}"
#define OAI_E4                                                                                     \
    "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"            \
    "\"function\":{\"arguments\":\"{}\"}}]}}]}"
#define OAI_E5 "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"
#define OAI_E6                                                                                     \
    "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,"       \
    "\"total_tokens\":14,\"prompt_tokens_details\":{\"cached_tokens\":4}}}"

static const piece oai_pieces[] = {
    {": ping\n\n", 0, 0},                                 /* a comment-only block: no event */
    {"da", 0, 0},                                         /* inside "data:" */
    {"ta: " OAI_E1 "\n", 0, 0},                           /* between the two LFs */
    {"\ndata: {\"id\":\"c1\",\"choices\":[{\"ind", 0, 0}, /* inside the JSON */
    {"ex\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: " OAI_E3 "\n\n", 0, 0}, /* two in one */
    {": keep-alive\ndata: " OAI_E4 "\r", 0, 0},                                  /* CR | LF */
    {"\n\r\ndata: " OAI_E5 "\r\n\r\ndata:", 0, 0},
    {" " OAI_E6 "\n\ndata: [DO", 0, 0},
    {"NE]\n\n", 0, 0},
};

static const char *const oai_events[] = {
    "data: " OAI_E1 "\n\n", "data: " OAI_E2 "\n\n", "data: " OAI_E3 "\n\n", "data: " OAI_E4 "\n\n",
    "data: " OAI_E5 "\n\n", "data: " OAI_E6 "\n\n", "data: [DONE]\n\n"};

#define AN_E1                                                                                      \
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"     \
    "\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,\"stop_sequence\":null,"    \
    "\"usage\":{\"input_tokens\":20,\"cache_read_input_tokens\":5,"                                \
    "\"cache_creation_input_tokens\":2,\"output_tokens\":1}}}"
#define AN_E2                                                                                      \
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","          \
    "\"text\":\"\"}}"
#define AN_E3 "{\"type\": \"ping\"}"
#define AN_E4                                                                                      \
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"   \
    "\"Hi\"}}"
#define AN_E5                                                                                      \
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"   \
    "\" th\xc3\xa9re\"}}"
#define AN_E6 "{\"type\":\"content_block_stop\",\"index\":0}"
#define AN_E7                                                                                      \
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}," \
    "\"usage\":{\"output_tokens\":2}}"
#define AN_E8 "{\"type\":\"message_stop\"}"

/* CRLF line endings throughout, as some proxies send them */
static const piece an_pieces[] = {
    {"ev", 0, 0},
    {"ent: message_start\r", 0, 0},
    {"\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"mes", 0, 0},
    {"sage\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"stop_reason\":null,"
     "\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"cache_read_input_tokens\":5,"
     "\"cache_creation_input_tokens\":2,\"output_tokens\":1}}}\r\n\r",
     0, 0},
    {"\nevent: content_block_start\r\ndata: " AN_E2 "\r\n\r\nevent: ping\r\ndata: " AN_E3
     "\r\n\r\n: comment\r\nevent: content_block_delta\r\ndata: " AN_E4 "\r\n\r\n",
     0, 0},
    {"event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
     "{\"type\":\"text_delta\",\"text\":\" th\xc3",
     0, 0}, /* inside a UTF-8 character */
    {"\xa9re\"}}\r\n", 0, 0},
    {"\r\nevent: content_block_stop\r\ndata: " AN_E6 "\r\n\r\nevent: message_delta\r\n", 0, 0},
    {"data: " AN_E7 "\r\n\r\nevent: message_stop\r\ndata: " AN_E8 "\r\n\r\n", 0, 0},
};

static const char *const an_events[] = {"event: message_start\ndata: " AN_E1 "\n\n",
                                        "event: content_block_start\ndata: " AN_E2 "\n\n",
                                        "event: ping\ndata: " AN_E3 "\n\n",
                                        "event: content_block_delta\ndata: " AN_E4 "\n\n",
                                        "event: content_block_delta\ndata: " AN_E5 "\n\n",
                                        "event: content_block_stop\ndata: " AN_E6 "\n\n",
                                        "event: message_delta\ndata: " AN_E7 "\n\n",
                                        "event: message_stop\ndata: " AN_E8 "\n\n"};

/* The pieces joined, then cut into one-byte pieces. */
static piece *bytewise(const piece *src, size_t n, size_t *out_n, char **joined)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(src[i].data);
    char *j = malloc(total + 1);
    piece *p = calloc(total, sizeof(*p));
    assert_non_null(j);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        size_t m = strlen(src[i].data);
        memcpy(j + k, src[i].data, m);
        k += m;
    }
    for (size_t i = 0; i < total; i++)
        p[i] = (piece){j + i, 1, 0};
    j[total] = '\0';
    *out_n = total;
    *joined = j;
    return p;
}

static void assert_events(const sink *s, const char *const *want, size_t n)
{
    assert_false(s->malformed);
    assert_int_equal(s->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(s->ev[i], want[i]);
}

#define RAW_CHAT                                                                                   \
    "{\"model\":\"buyer-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"            \
    "\"max_tokens\":4000,\"max_completion_tokens\":3000,\"temperature\":0.5,\"user\":\"u-1\","     \
    "\"stream\":true,\"stream_options\":{\"include_obfuscation\":false}}"

static void run_openai_raw(const piece *pieces, size_t n, unsigned gap_ms, bool chunked)
{
    static const char *const names[] = {"host",   "user-agent",    "content-type",
                                        "accept", "authorization", "content-length"};
    raw_srv srv = {.head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream",
                   .chunked = chunked,
                   .pieces = pieces,
                   .n_pieces = n,
                   .gap_ms = gap_ms};
    sl_upstream_result res;
    sink s = {0};
    char v[256];

    raw_start(&srv);
    sl_upstream *u = up_new(
        srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI, .key = RAW_KEY, .suffix = "/proxy/v1"});
    assert_int_equal(do_call(u, &res, "openai.chat", "gpt-forced", RAW_CHAT, 256, true, &s, NULL),
                     OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_events(&s, oai_events, sizeof(oai_events) / sizeof(oai_events[0]));
    assert_int_equal(res.events, sizeof(oai_events) / sizeof(oai_events[0]));
    assert_true(res.usage_reported);
    assert_int_equal(res.usage.input_tokens, 11);
    assert_int_equal(res.usage.cached_tokens, 4);
    assert_int_equal(res.usage.output_tokens, 3);

    /* exactly what went out */
    assert_memory_equal(srv.req, "POST /proxy/v1/chat/completions HTTP/1.1\r\n", 42);
    assert_header_names(&srv, names, sizeof(names) / sizeof(names[0]));
    assert_true(req_header(&srv, "Authorization", v, sizeof(v)));
    assert_string_equal(v, "Bearer " RAW_KEY);
    assert_true(req_header(&srv, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    assert_true(req_header(&srv, "Accept", v, sizeof(v)));
    assert_string_equal(v, "text/event-stream");
    assert_true(req_header(&srv, "User-Agent", v, sizeof(v)));
    assert_memory_equal(v, "openseed-seller/", 16);
    assert_false(req_header(&srv, "X-Echo-Fail", v, sizeof(v)));
    json_t *b = req_body(&srv);
    json_t *want = jload("{\"model\":\"gpt-forced\",\"messages\":[{\"role\":\"user\",\"content\":"
                         "\"hi\"}],\"max_tokens\":256,\"max_completion_tokens\":256,"
                         "\"temperature\":0.5,\"user\":\"u-1\",\"stream\":true,\"stream_options\":"
                         "{\"include_obfuscation\":false,\"include_usage\":true}}");
    assert_true(json_equal(b, want));
    json_decref(want);
    json_decref(b);
    sink_free(&s);
    sl_upstream_free(u);
}

static void test_raw_openai_split(void **state)
{
    (void)state;
    size_t n = sizeof(oai_pieces) / sizeof(oai_pieces[0]);
    run_openai_raw(oai_pieces, n, 15, true);
    run_openai_raw(oai_pieces, n, 15, false); /* Connection: close framing */
    char *joined;
    piece *bytes = bytewise(oai_pieces, n, &n, &joined);
    run_openai_raw(bytes, n, 1, true);
    free(bytes);
    free(joined);
}

#define RAW_MSG                                                                                    \
    "{\"model\":\"claude-buyer\",\"max_tokens\":9000,\"messages\":[{\"role\":\"user\","            \
    "\"content\":\"hi\"}],\"metadata\":{\"user_id\":\"b-7\"},\"stream\":true}"

static void run_anthropic_raw(const piece *pieces, size_t n, unsigned gap_ms)
{
    static const char *const names[] = {"host",      "user-agent",        "content-type",  "accept",
                                        "x-api-key", "anthropic-version", "content-length"};
    raw_srv srv = {.head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8",
                   .chunked = true,
                   .pieces = pieces,
                   .n_pieces = n,
                   .gap_ms = gap_ms};
    sl_upstream_result res;
    sink s = {0};
    char v[256];

    raw_start(&srv);
    sl_upstream *u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_ANTHROPIC, .key = RAW_KEY});
    assert_int_equal(
        do_call(u, &res, "anthropic.messages", "claude-forced", RAW_MSG, 512, true, &s, NULL),
        OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_events(&s, an_events, sizeof(an_events) / sizeof(an_events[0]));
    assert_true(res.usage_reported);
    assert_true(res.input_reported);
    assert_int_equal(res.usage.input_tokens, 27); /* 20 + 5 cache reads + 2 cache writes */
    assert_int_equal(res.usage.cached_tokens, 5);
    assert_int_equal(res.usage.output_tokens, 2);

    assert_memory_equal(srv.req, "POST /v1/messages HTTP/1.1\r\n", 28);
    assert_header_names(&srv, names, sizeof(names) / sizeof(names[0]));
    assert_true(req_header(&srv, "x-api-key", v, sizeof(v)));
    assert_string_equal(v, RAW_KEY);
    assert_true(req_header(&srv, "anthropic-version", v, sizeof(v)));
    assert_string_equal(v, "2023-06-01");
    assert_true(req_header(&srv, "Accept", v, sizeof(v)));
    assert_string_equal(v, "text/event-stream");
    json_t *b = req_body(&srv);
    json_t *want = jload("{\"model\":\"claude-forced\",\"max_tokens\":512,\"messages\":[{\"role\":"
                         "\"user\",\"content\":\"hi\"}],\"metadata\":{\"user_id\":\"b-7\"},"
                         "\"stream\":true}");
    assert_true(json_equal(b, want));
    json_decref(want);
    json_decref(b);
    sink_free(&s);
    sl_upstream_free(u);
}

static void test_raw_anthropic_split(void **state)
{
    (void)state;
    size_t n = sizeof(an_pieces) / sizeof(an_pieces[0]);
    run_anthropic_raw(an_pieces, n, 15);
    char *joined;
    piece *bytes = bytewise(an_pieces, n, &n, &joined);
    run_anthropic_raw(bytes, n, 1);
    free(bytes);
    free(joined);
}

/* Non-stream requests: headers and body, and error answers. */
static void test_raw_whole_and_errors(void **state)
{
    (void)state;
    static const char *const names[] = {"host",   "user-agent",    "content-type",
                                        "accept", "authorization", "content-length"};
    static const piece ok_body[] = {
        {"{\"object\":\"list\",\"data\":[],\"model\":\"e\",\"usage\":{\"prompt_tokens\":5,"
         "\"total_tokens\":5}}",
         0, 0}};
    static const piece leak[] = {{"{\"error\":{\"message\":\"Incorrect API key provided: " RAW_KEY
                                  ".\",\"type\":\"invalid_request_error\"}}",
                                  0, 0}};
    static const piece html[] = {{"<html>bad gateway</html>", 0, 0}};
    sl_upstream_result res;
    char v[256];

    /* embeddings: no cap, no stream fields */
    raw_srv srv = {.head = "HTTP/1.1 200 OK\r\nContent-Type: application/json",
                   .chunked = true,
                   .pieces = ok_body,
                   .n_pieces = 1};
    raw_start(&srv);
    sl_upstream *u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI, .key = RAW_KEY});
    assert_int_equal(do_call(u, &res, "openai.embeddings", "emb-forced",
                             "{\"model\":\"x\",\"input\":\"hi\",\"dimensions\":4}", 0, false, NULL,
                             NULL),
                     OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_int_equal(res.usage.input_tokens, 5);
    assert_memory_equal(srv.req, "POST /v1/embeddings HTTP/1.1\r\n", 30);
    assert_header_names(&srv, names, sizeof(names) / sizeof(names[0]));
    assert_true(req_header(&srv, "Accept", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    json_t *b = req_body(&srv);
    json_t *want = jload("{\"model\":\"emb-forced\",\"input\":\"hi\",\"dimensions\":4}");
    assert_true(json_equal(b, want));
    json_decref(want);
    json_decref(b);
    json_decref(res.body);

    /* a 400 whose message quotes the key: the body is replaced, the key goes nowhere */
    srv = (raw_srv){.head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json",
                    .chunked = true,
                    .pieces = leak,
                    .n_pieces = 1};
    raw_start(&srv);
    sl_upstream_free(u);
    u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI, .key = RAW_KEY});
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, false, NULL, NULL), OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_HTTP_ERROR);
    assert_int_equal(res.status, 400);
    char *d = json_dumps(res.body, JSON_COMPACT);
    assert_null(strstr(d, RAW_KEY));
    assert_null(strstr(d, "abcdef"));
    assert_null(strstr(res.error, RAW_KEY));
    free(d);
    json_decref(res.body);

    /* a 401 quoting a masked key, as OpenAI's does: replaced whatever it holds */
    static const piece masked[] = {
        {"{\"error\":{\"message\":\"Incorrect API key provided: sk-raw***cdef.\",\"type\":"
         "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
         0, 0}};
    srv = (raw_srv){.head = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json",
                    .chunked = true,
                    .pieces = masked,
                    .n_pieces = 1};
    raw_start(&srv);
    sl_upstream_free(u);
    u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI, .key = RAW_KEY});
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, false, NULL, NULL), OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_HTTP_ERROR);
    assert_int_equal(res.status, 401);
    assert_string_equal(jstr(res.body, "error", "type"), "upstream_auth_error");
    d = json_dumps(res.body, JSON_COMPACT);
    assert_null(strstr(d, "cdef"));
    free(d);
    json_decref(res.body);

    /* a non-JSON 503 with Retry-After: a generic body in OpenAI's error shape */
    srv = (raw_srv){.head = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n"
                            "Retry-After: 30",
                    .chunked = false,
                    .pieces = html,
                    .n_pieces = 1};
    raw_start(&srv);
    sl_upstream_free(u);
    u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, false, NULL, NULL), OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_HTTP_ERROR);
    assert_int_equal(res.status, 503);
    assert_int_equal(res.retry_after_s, 30);
    assert_string_equal(jstr(res.body, "error", "type"), "upstream_error");
    assert_true(json_is_string(json_object_get(json_object_get(res.body, "error"), "message")));
    json_decref(res.body);

    /* Retry-After as an HTTP-date: not the seconds form, so 0 */
    srv = (raw_srv){.head = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n"
                            "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT",
                    .chunked = false,
                    .pieces = html,
                    .n_pieces = 1};
    raw_start(&srv);
    sl_upstream_free(u);
    u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, false, NULL, NULL), OS_OK);
    raw_join(&srv);
    assert_int_equal(res.status, 429);
    assert_int_equal(res.retry_after_s, 0);
    json_decref(res.body);

    /* a 200 that is not JSON */
    srv = (raw_srv){.head = "HTTP/1.1 200 OK\r\nContent-Type: text/html",
                    .chunked = false,
                    .pieces = html,
                    .n_pieces = 1};
    raw_start(&srv);
    sl_upstream_free(u);
    u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, false, NULL, NULL), OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_BROKEN);
    assert_null(res.body);
    sl_upstream_free(u);
}

/* Streams that end badly: no [DONE] before a clean close, a silent upstream, an oversized event. */
static void test_raw_broken_streams(void **state)
{
    (void)state;
    static const piece no_done[] = {{"data: " OAI_E1 "\n\n", 0, 0},
                                    {"data: " OAI_E2 "\n\n", 0, 0},
                                    {"data: " OAI_E3 "\n\n", 0, 0}};
    static const piece stall[] = {{"data: " OAI_E1 "\n\n", 0, 0},
                                  {"data: " OAI_E2 "\n\n", 0, 0},
                                  {"data: " OAI_E2 "\n\n", 0, 2500}};
    static const piece big[] = {{"data: " OAI_E2 "\n\n", 0, 0},
                                {"data: {\"pad\":\"0123456789012345678901234567890123456789"
                                 "0123456789012345678901234567890123456789\"}\n\n",
                                 0, 0}};
    static const piece trailing[] = {{"data: " OAI_E2 "\n\ndata: [DONE]\n\n", 0, 0},
                                     {"data: " OAI_E3 "\n\n", 0, 0}};
    sl_upstream_result res;
    sink s = {0};

    raw_srv srv = {.head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream",
                   .pieces = no_done,
                   .n_pieces = 3,
                   .gap_ms = 5};
    raw_start(&srv);
    sl_upstream *u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, true, &s, NULL), OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_BROKEN);
    assert_int_equal(s.n, 3);
    assert_false(res.usage_reported);
    assert_int_equal(res.usage.output_tokens, 2); /* "Hel" and "lo éé"; the role chunk is empty */
    assert_non_null(strstr(res.error, "end marker"));
    sink_free(&s);
    sl_upstream_free(u);

    srv = (raw_srv){.head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream",
                    .chunked = true,
                    .pieces = stall,
                    .n_pieces = 3,
                    .gap_ms = 5};
    raw_start(&srv);
    u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI, .idle_ms = 300});
    uint64_t t0 = now_ms();
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, true, &s, NULL), OS_OK);
    uint64_t took = now_ms() - t0;
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_BROKEN);
    assert_int_equal(s.n, 2);
    assert_int_equal(res.usage.output_tokens, 1);
    assert_true(took < 2300); /* cut before the upstream spoke again */
    assert_non_null(strstr(res.error, "silent"));
    sink_free(&s);
    sl_upstream_free(u);

    /* nothing after [DONE] is handed on */
    srv = (raw_srv){.head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream",
                    .chunked = true,
                    .pieces = trailing,
                    .n_pieces = 2,
                    .gap_ms = 5};
    raw_start(&srv);
    u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI});
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, true, &s, NULL), OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.ev[1], "data: [DONE]\n\n");
    sink_free(&s);
    sl_upstream_free(u);

    srv = (raw_srv){.head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream",
                    .chunked = true,
                    .pieces = big,
                    .n_pieces = 2,
                    .gap_ms = 5};
    raw_start(&srv);
    u = up_new(srv.port, &(upcfg){.kind = SL_UPSTREAM_KIND_OPENAI, .max_event = 80});
    assert_int_equal(do_call(u, &res, "openai.chat", "m", CHAT_HELLO, 9, true, &s, NULL), OS_OK);
    raw_join(&srv);
    assert_int_equal(res.outcome, SL_UPSTREAM_BROKEN);
    assert_int_equal(s.n, 1);
    assert_non_null(strstr(res.error, "cap"));
    sink_free(&s);
    sl_upstream_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_and_requests),  cmocka_unit_test(test_openai_chat_whole),
        cmocka_unit_test(test_openai_chat_stream),   cmocka_unit_test(test_openai_tool_call),
        cmocka_unit_test(test_openai_embeddings),    cmocka_unit_test(test_anthropic_whole),
        cmocka_unit_test(test_anthropic_stream),     cmocka_unit_test(test_forced_cap),
        cmocka_unit_test(test_ollama_kind),          cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_injected_500_429),     cmocka_unit_test(test_drop_mid_stream),
        cmocka_unit_test(test_slow_first_token),     cmocka_unit_test(test_cancel_by_client),
        cmocka_unit_test(test_cancel_by_flag),       cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_raw_openai_split),     cmocka_unit_test(test_raw_anthropic_split),
        cmocka_unit_test(test_raw_whole_and_errors), cmocka_unit_test(test_raw_broken_streams),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
