/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's Anthropic <-> OpenAI translation (src/buyer/translate.h): requests (system prompts,
 * multi-turn, tool_use / tool_result round trips, tools and each tool_choice, stop sequences,
 * streams asking for usage, what is dropped and what is refused), whole answers (text, tool calls,
 * every finish_reason, usage), and the stream translator fed realistic chat.completion.chunk
 * sequences, each Anthropic event parsed back and compared field by field. Shapes follow OpenAI's
 * API reference (chat completion and chunk objects, "Streaming" with include_usage) and Anthropic's
 * (Messages API, "Streaming Messages" event flow, "Errors").
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "openseed/sse.h"

#include "translate.h"

#define MAX_EV 128

/* ---- helpers --------------------------------------------------------------------------------- */

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    if (v == NULL)
        fail_msg("bad JSON in the test (%s): %s", je.text, text);
    return v;
}

static void assert_json(const json_t *got, const char *want_text)
{
    json_t *want = J(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("JSON differs\n  got:  %s\n  want: %s", g ? g : "(null)", want_text);
    }
    json_decref(want);
}

static json_t *req_ok(const char *body)
{
    char err[256] = "";
    json_t *in = J(body), *out = (json_t *)1;
    os_err rc = by_anthropic_request_to_openai(&out, in, err, sizeof(err));
    if (rc != OS_OK)
        fail_msg("refused (%s): %s", os_strerror(rc), err);
    assert_non_null(out);
    json_decref(in);
    return out;
}

static void req_check(const char *body, const char *want)
{
    json_t *out = req_ok(body);
    assert_json(out, want);
    json_decref(out);
}

static void req_refused(const char *body, os_err want, const char *reason)
{
    char err[256] = "";
    json_t *in = J(body), *out = (json_t *)1;
    os_err rc = by_anthropic_request_to_openai(&out, in, err, sizeof(err));
    if (rc != want)
        fail_msg("got %s, want %s (reason \"%s\") for %s", os_strerror(rc), os_strerror(want), err,
                 body);
    assert_null(out);
    if (strstr(err, reason) == NULL)
        fail_msg("reason \"%s\" does not mention \"%s\" for %s", err, reason, body);
    json_decref(in);
}

static bool is_id(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s == NULL || strncmp(s, prefix, n) != 0 || strlen(s) != n + 24)
        return false;
    for (const char *p = s + n; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return false;
    return true;
}

/* Events written by a translator, parsed back with the SSE parser. */
typedef struct evs {
    char *type[MAX_EV];
    json_t *data[MAX_EV];
    size_t n;
} evs;

static os_err on_ev(void *ctx, const os_sse_event *ev)
{
    evs *e = ctx;
    json_error_t je;
    if (e->n == MAX_EV)
        return OS_ERR_TOOBIG;
    e->data[e->n] = json_loadb(ev->data, ev->data_len, 0, &je);
    if (e->data[e->n] == NULL)
        fail_msg("event data is not JSON: %s", ev->data);
    e->type[e->n] = strdup(ev->type);
    e->n++;
    return OS_OK;
}

static void evs_parse(evs *e, const os_buf *b)
{
    os_sse_parser *p;
    memset(e, 0, sizeof(*e));
    assert_int_equal(os_sse_parser_new(&p, 0, 0, on_ev, e), OS_OK);
    assert_int_equal(os_sse_feed(p, b->data, b->len), OS_OK);
    assert_false(os_sse_pending(p));
    os_sse_parser_free(p);
    /* Anthropic's events: the event name is always the data's type */
    for (size_t i = 0; i < e->n; i++)
        assert_string_equal(e->type[i], json_string_value(json_object_get(e->data[i], "type")));
}

static void evs_free(evs *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->type[i]);
        json_decref(e->data[i]);
    }
    e->n = 0;
}

/* Asserts the events' types, a space-separated list. */
static void evs_types(const evs *e, const char *want)
{
    char got[4096] = "";
    size_t off = 0;
    for (size_t i = 0; i < e->n; i++)
        off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", i ? " " : "", e->type[i]);
    assert_string_equal(got, want);
}

/* message_start: its random id checked and replaced by "X" before comparing. */
static void assert_start(const evs *e, size_t i, const char *model, uint64_t in)
{
    char want[512];
    json_t *msg = json_object_get(e->data[i], "message");
    assert_true(is_id(json_string_value(json_object_get(msg, "id")), "msg_"));
    assert_int_equal(json_object_set_new(msg, "id", json_string("X")), 0);
    snprintf(want, sizeof(want),
             "{\"type\":\"message_start\",\"message\":{\"id\":\"X\",\"type\":\"message\","
             "\"role\":\"assistant\",\"content\":[],\"model\":\"%s\",\"stop_reason\":null,"
             "\"stop_sequence\":null,\"usage\":{\"input_tokens\":%llu,\"output_tokens\":1}}}",
             model, (unsigned long long)in);
    assert_json(e->data[i], want);
}

static void feed(by_astream *t, os_buf *out, const char *data)
{
    os_err rc = by_astream_feed(t, out, data, strlen(data));
    if (rc != OS_OK)
        fail_msg("feed refused (%s): %s", os_strerror(rc), data);
}

/* A chunk around the given choices/usage text, as OpenAI writes them. */
static char *chunk(const char *choices, const char *usage)
{
    char *s = malloc(4096);
    assert_non_null(s);
    snprintf(s, 4096,
             "{\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,"
             "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":%s%s%s}",
             choices, usage ? ",\"usage\":" : "", usage ? usage : "");
    return s;
}

static void feed_choice(by_astream *t, os_buf *out, const char *delta, const char *finish)
{
    char c[2048];
    snprintf(c, sizeof(c), "[{\"index\":0,\"delta\":%s,\"logprobs\":null,\"finish_reason\":%s}]",
             delta, finish);
    char *s = chunk(c, "null");
    feed(t, out, s);
    free(s);
}

/* ---- requests -------------------------------------------------------------------------------- */

static void test_request_text(void **state)
{
    (void)state;
    /* system string, multi-turn, text blocks joined, sampling carried, top_k and metadata dropped
     */
    json_t *out = req_ok(
        "{\"model\":\"claude-x\",\"max_tokens\":256,\"system\":\"You are terse.\","
        "\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"metadata\":{\"user_id\":\"u-secret-7\"},"
        "\"stop_sequences\":[\"END\",\"\\n\\nHuman:\"],\"messages\":["
        "{\"role\":\"user\",\"content\":\"Hi\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hello\"},"
        "{\"type\":\"text\",\"text\":\" there\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"How \","
        "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"are "
        "you?\"}]}]}");
    assert_json(out, "{\"model\":\"claude-x\",\"messages\":["
                     "{\"role\":\"system\",\"content\":\"You are terse.\"},"
                     "{\"role\":\"user\",\"content\":\"Hi\"},"
                     "{\"role\":\"assistant\",\"content\":\"Hello there\"},"
                     "{\"role\":\"user\",\"content\":\"How are you?\"}],"
                     "\"max_tokens\":256,\"temperature\":0.5,\"top_p\":0.9,"
                     "\"stop\":[\"END\",\"\\n\\nHuman:\"]}");
    char *s = json_dumps(out, JSON_COMPACT);
    assert_null(strstr(s, "u-secret-7"));
    free(s);
    json_decref(out);
    /* integer temperature stays an integer; an empty stop list is left out */
    req_check("{\"model\":\"m\",\"max_tokens\":1,\"temperature\":1,\"stop_sequences\":[],"
              "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"max_tokens\":1,\"temperature\":1}");
}

static void test_request_system_blocks(void **state)
{
    (void)state;
    req_check("{\"model\":\"m\",\"max_tokens\":10,\"system\":[{\"type\":\"text\",\"text\":\"Be \"},"
              "{\"type\":\"text\",\"text\":\"kind.\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
              "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},"
              "{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":10}");
    /* an empty system prompt adds no message */
    req_check("{\"model\":\"m\",\"max_tokens\":10,\"system\":\"\","
              "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"max_tokens\":10}");
    req_refused("{\"model\":\"m\",\"max_tokens\":10,\"system\":7,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                OS_ERR_INVALID, "system");
    req_refused(
        "{\"model\":\"m\",\"max_tokens\":10,\"system\":[{\"type\":\"tool_use\",\"id\":\"a\","
        "\"name\":\"b\",\"input\":{}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        OS_ERR_INVALID, "system[0]: only text blocks");
}

static const char TOOLS[] =
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather of a city\","
    "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"required\":[\"city\"]}},"
    "{\"name\":\"get_time\",\"input_schema\":{\"type\":\"object\",\"properties\":{}},"
    "\"cache_control\":{\"type\":\"ephemeral\"}}]";

static const char TOOLS_OUT[] =
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"description\":\"Weather of a city\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":"
    "\"object\","
    "\"properties\":{}}}}]";

static void test_request_tool_round_trip(void **state)
{
    char body[4096], want[4096];
    (void)state;
    snprintf(
        body, sizeof(body),
        "{\"model\":\"m\",\"max_tokens\":100,%s,\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather and time in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\","
        "\"signature\":\"sig\"},{\"type\":\"text\",\"text\":\"Let me check.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\","
        "\"input\":{\"city\":\"Paris\"}},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_01B\",\"name\":\"get_time\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01A\","
        "\"content\":\"15C\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01B\","
        "\"content\":[{\"type\":\"text\",\"text\":\"12:\"},{\"type\":\"text\",\"text\":\"00\"}],"
        "\"is_error\":false},{\"type\":\"text\",\"text\":\"Thanks\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_01C\","
        "\"name\":\"get_time\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01C\"}]}"
        "]}",
        TOOLS);
    snprintf(want, sizeof(want),
             "{\"model\":\"m\",\"messages\":["
             "{\"role\":\"user\",\"content\":\"Weather and time in Paris?\"},"
             "{\"role\":\"assistant\",\"content\":\"Let me check.\",\"tool_calls\":["
             "{\"id\":\"toolu_01A\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
             "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
             "{\"id\":\"toolu_01B\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
             "\"arguments\":\"{}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"toolu_01A\",\"content\":\"15C\"},"
             "{\"role\":\"tool\",\"tool_call_id\":\"toolu_01B\",\"content\":\"12:00\"},"
             "{\"role\":\"user\",\"content\":\"Thanks\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
             "{\"id\":\"toolu_01C\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
             "\"arguments\":\"{}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"toolu_01C\",\"content\":\"\"}],"
             "\"max_tokens\":100,%s}",
             TOOLS_OUT);
    req_check(body, want);
}

static void test_request_tool_choice(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"type\":\"auto\"}", "\"tool_choice\":\"auto\""},
        {"{\"type\":\"any\"}", "\"tool_choice\":\"required\""},
        {"{\"type\":\"none\"}", "\"tool_choice\":\"none\""},
        {"{\"type\":\"tool\",\"name\":\"get_time\"}",
         "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}"},
        {"{\"type\":\"auto\",\"disable_parallel_tool_use\":true}",
         "\"tool_choice\":\"auto\",\"parallel_tool_calls\":false"},
        {"{\"type\":\"any\",\"disable_parallel_tool_use\":false}", "\"tool_choice\":\"required\""},
    };
    char body[4096], want[4096];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"model\":\"m\",\"max_tokens\":5,%s,\"tool_choice\":%s,"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 TOOLS, cases[i].in);
        snprintf(want, sizeof(want),
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                 "\"max_tokens\":5,%s,%s}",
                 TOOLS_OUT, cases[i].out);
        req_check(body, want);
    }
    /* no tools: no tool_choice (OpenAI refuses one without tools) */
    req_check("{\"model\":\"m\",\"max_tokens\":5,\"tools\":[],\"tool_choice\":{\"type\":\"any\"},"
              "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"max_tokens\":5}");
    snprintf(body, sizeof(body),
             "{\"model\":\"m\",\"max_tokens\":5,%s,\"tool_choice\":{\"type\":\"sometimes\"},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
             TOOLS);
    req_refused(body, OS_ERR_INVALID, "tool_choice");
    snprintf(body, sizeof(body),
             "{\"model\":\"m\",\"max_tokens\":5,%s,\"tool_choice\":{\"type\":\"tool\"},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
             TOOLS);
    req_refused(body, OS_ERR_INVALID, "tool_choice: missing field \"name\"");
    snprintf(body, sizeof(body),
             "{\"model\":\"m\",\"max_tokens\":5,%s,\"tool_choice\":\"auto\","
             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
             TOOLS);
    req_refused(body, OS_ERR_INVALID, "tool_choice");
}

static void test_request_stream(void **state)
{
    (void)state;
    req_check("{\"model\":\"m\",\"max_tokens\":5,\"stream\":true,"
              "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"max_tokens\":5,\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    req_check("{\"model\":\"m\",\"max_tokens\":5,\"stream\":false,"
              "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
              "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
              "\"max_tokens\":5}");
    req_refused("{\"model\":\"m\",\"max_tokens\":5,\"stream\":\"yes\","
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                OS_ERR_INVALID, "stream");
}

static void test_request_unsupported(void **state)
{
    (void)state;
    req_refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
                "{\"type\":\"text\",\"text\":\"what is this?\"},{\"type\":\"image\",\"source\":"
                "{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}}]}]}",
                OS_ERR_UNSUPPORTED, "messages[0].content[1]: image and document");
    req_refused(
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"document\",\"source\":{\"type\":\"text\",\"media_type\":\"text/plain\","
        "\"data\":\"x\"}}]}]}",
        OS_ERR_UNSUPPORTED, "messages[0].content[0]: image and document");
    /* an image inside a tool result */
    req_refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
                "{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":\"image\","
                "\"source\":{\"type\":\"url\",\"url\":\"https://x/y.png\"}}]}]}]}",
                OS_ERR_UNSUPPORTED, "messages[0].content[0].content[0]: image");
    /* a server tool */
    req_refused("{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"type\":\"web_search_20250305\","
                "\"name\":\"web_search\",\"max_uses\":5}],"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                OS_ERR_UNSUPPORTED, "tools[0]: server tools");
    req_refused("{\"model\":\"m\",\"max_tokens\":5,\"mcp_servers\":[{\"type\":\"url\","
                "\"url\":\"https://mcp.example\",\"name\":\"x\"}],"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                OS_ERR_UNSUPPORTED, "mcp_servers");
    req_refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
                "{\"type\":\"search_result\",\"source\":\"s\",\"title\":\"t\",\"content\":[]}]}]}",
                OS_ERR_UNSUPPORTED, "messages[0].content[0]: this content block type");
}

static void test_request_invalid(void **state)
{
    static const struct {
        const char *body, *reason;
    } cases[] = {
        {"[]", "JSON object"},
        {"{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens"},
        {"{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "max_tokens"},
        {"{\"model\":\"m\",\"max_tokens\":-1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "max_tokens"},
        {"{\"model\":\"m\",\"max_tokens\":2.5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
         "}",
         "max_tokens"},
        {"{\"model\":\"m\",\"max_tokens\":5}", "messages"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}", "messages"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[\"hi\"]}", "messages[0]: must be"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]"
         "}",
         "messages[0]: field \"role\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"content\":\"x\"}]}",
         "messages[0]: field \"role\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":3}]}",
         "messages[0]: field \"content\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{}]}]}",
         "messages[0].content[0]: field \"type\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
         "\"type\":"
         "\"text\",\"text\":5}]}]}",
         "messages[0].content[0]: field \"text\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
         "{\"role\":\"user\",\"content\":[{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"b\","
         "\"input\":{}}]}]}",
         "messages[1].content[0]: tool_use blocks belong"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{"
         "\"type\":\"tool_result\",\"tool_use_id\":\"a\",\"content\":\"r\"}]}]}",
         "messages[0].content[0]: tool_result blocks belong"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{"
         "\"type\":\"tool_use\",\"name\":\"b\",\"input\":{}}]}]}",
         "messages[0].content[0]: missing field \"id\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{"
         "\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"b\",\"input\":\"{}\"}]}]}",
         "messages[0].content[0]: field \"input\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
         "\"type\":\"tool_result\",\"content\":\"r\"}]}]}",
         "messages[0].content[0]: missing field \"tool_use_id\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
         "\"type\":\"tool_result\",\"tool_use_id\":\"a\",\"content\":5}]}]}",
         "messages[0].content[0].content"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":{},\"messages\":[{\"role\":\"user\","
         "\"content\":\"x\"}]}",
         "tools"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"name\":\"t\"}],\"messages\":[{\"role\":"
         "\"user\",\"content\":\"x\"}]}",
         "tools[0]: field \"input_schema\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"input_schema\":{}}],\"messages\":[{"
         "\"role\":\"user\",\"content\":\"x\"}]}",
         "tools[0]: missing field \"name\""},
        {"{\"model\":\"m\",\"max_tokens\":5,\"temperature\":\"hot\",\"messages\":[{\"role\":"
         "\"user\",\"content\":\"x\"}]}",
         "temperature"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"top_p\":[],\"messages\":[{\"role\":\"user\","
         "\"content\":\"x\"}]}",
         "top_p"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"stop_sequences\":[\"a\",1],\"messages\":[{\"role\":"
         "\"user\",\"content\":\"x\"}]}",
         "stop_sequences[1]"},
        {"{\"model\":\"m\",\"max_tokens\":5,\"stop_sequences\":\"a\",\"messages\":[{\"role\":"
         "\"user\",\"content\":\"x\"}]}",
         "stop_sequences"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        req_refused(cases[i].body, OS_ERR_INVALID, cases[i].reason);
    /* bad arguments */
    char err[64];
    json_t *in = J("{}");
    assert_int_equal(by_anthropic_request_to_openai(NULL, in, err, sizeof(err)), OS_ERR_INVALID);
    json_t *out = (json_t *)1;
    assert_int_equal(by_anthropic_request_to_openai(&out, NULL, NULL, 0), OS_ERR_INVALID);
    assert_null(out);
    json_decref(in);
}

/* ---- whole responses ------------------------------------------------------------------------- */

static json_t *resp_ok(const char *completion, const char *model)
{
    json_t *in = J(completion), *out = (json_t *)1;
    assert_int_equal(by_openai_response_to_anthropic(&out, in, model), OS_OK);
    json_decref(in);
    assert_true(is_id(json_string_value(json_object_get(out, "id")), "msg_"));
    return out;
}

static void test_response_text(void **state)
{
    (void)state;
    json_t *out = resp_ok(
        "{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion\",\"created\":1677652288,"
        "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{"
        "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello there, how may I "
        "assist you today?\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21,"
        "\"prompt_tokens_details\":{\"cached_tokens\":0}}}",
        "claude-x");
    /* Anthropic's key order: id, type, role, model, content, stop_reason, stop_sequence, usage */
    char *s = json_dumps(out, JSON_COMPACT);
    const char *rest = strstr(s, "\",\"type\"");
    assert_non_null(rest);
    assert_string_equal(rest, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                              "\"claude-x\",\"content\":[{\"type\":\"text\",\"text\":\"Hello "
                              "there, how may I assist you today?\"}],\"stop_reason\":"
                              "\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,"
                              "\"output_tokens\":12}}");
    assert_int_equal(strncmp(s, "{\"id\":\"msg_", 11), 0);
    /* a fresh id every time */
    json_t *again = resp_ok("{\"choices\":[{\"message\":{\"content\":\"x\"}}]}", "m");
    assert_string_not_equal(json_string_value(json_object_get(out, "id")),
                            json_string_value(json_object_get(again, "id")));
    /* no usage: zeros; no model given: the completion's */
    assert_json(json_object_get(again, "usage"), "{\"input_tokens\":0,\"output_tokens\":0}");
    json_decref(again);
    again = resp_ok("{\"model\":\"gpt-x\",\"choices\":[{\"message\":{\"content\":\"\"},"
                    "\"finish_reason\":\"stop\"}]}",
                    NULL);
    assert_string_equal(json_string_value(json_object_get(again, "model")), "gpt-x");
    assert_json(json_object_get(again, "content"), "[]");
    json_decref(again);
    free(s);
    json_decref(out);
}

static void test_response_tools(void **state)
{
    (void)state;
    json_t *out = resp_ok(
        "{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"g\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Checking.\","
        "\"tool_calls\":[{\"id\":\"call_abc123\",\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\", \\\"days\\\": 2}\"}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
        "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":80,"
        "\"completion_tokens\":25,\"total_tokens\":105}}",
        "claude-x");
    json_t *content = json_object_get(out, "content");
    assert_int_equal(json_array_size(content), 3);
    /* the second call had no id: one is made up */
    json_t *gen = json_array_get(content, 2);
    assert_true(is_id(json_string_value(json_object_get(gen, "id")), "toolu_"));
    assert_int_equal(json_object_set_new(gen, "id", json_string("X")), 0);
    json_object_del(out, "id");
    assert_json(out, "{\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
                     "\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
                     "{\"type\":\"tool_use\",\"id\":\"call_abc123\",\"name\":\"get_weather\","
                     "\"input\":{\"city\":\"Paris\",\"days\":2}},"
                     "{\"type\":\"tool_use\",\"id\":\"X\",\"name\":\"get_time\",\"input\":{}}],"
                     "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
                     "\"usage\":{\"input_tokens\":80,\"output_tokens\":25}}");
    json_decref(out);
    /* a server that says "stop" after tool calls still gives tool_use; content null: no text */
    out = resp_ok("{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
                  "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                  "\"finish_reason\":\"stop\"}]}",
                  "m");
    assert_string_equal(json_string_value(json_object_get(out, "stop_reason")), "tool_use");
    assert_json(json_object_get(out, "content"),
                "[{\"type\":\"tool_use\",\"id\":\"c1\",\"name\":\"f\",\"input\":{}}]");
    json_decref(out);
}

static void test_response_finish_reasons(void **state)
{
    static const struct {
        const char *finish, *stop;
    } cases[] = {
        {"\"stop\"", "end_turn"},          {"\"length\"", "max_tokens"},
        {"\"tool_calls\"", "tool_use"},    {"\"function_call\"", "tool_use"},
        {"\"content_filter\"", "refusal"}, {"null", "end_turn"},
    };
    char body[512];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                 "\"a\"},\"finish_reason\":%s}],\"usage\":{\"prompt_tokens\":1,"
                 "\"completion_tokens\":1}}",
                 cases[i].finish);
        json_t *out = resp_ok(body, "m");
        assert_string_equal(json_string_value(json_object_get(out, "stop_reason")), cases[i].stop);
        json_decref(out);
    }
    /* a refusal (structured outputs) is what the model said */
    json_t *out = resp_ok("{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I can't.\"},"
                          "\"finish_reason\":\"stop\"}]}",
                          "m");
    assert_json(json_object_get(out, "content"), "[{\"type\":\"text\",\"text\":\"I can't.\"}]");
    json_decref(out);
}

static void test_response_invalid(void **state)
{
    static const char *const cases[] = {
        "[]",
        "{}",
        "{\"choices\":[]}",
        "{\"choices\":[{\"finish_reason\":\"stop\"}]}",
        "{\"choices\":[{\"message\":\"hi\"}]}",
        "{\"choices\":[{\"message\":{\"content\":5}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"},\"finish_reason\":5}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":{}}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"f\","
        "\"arguments\":\"{bad\"}}]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"f\","
        "\"arguments\":\"[1]\"}}]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":7,\"function\":{\"name\":\"f\"}}]}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":-1}}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"completion_tokens\":\"3\"}}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":7}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *in = J(cases[i]), *out = (json_t *)1;
        if (by_openai_response_to_anthropic(&out, in, "m") != OS_ERR_INVALID)
            fail_msg("accepted: %s", cases[i]);
        assert_null(out);
        json_decref(in);
    }
}

/* ---- streams --------------------------------------------------------------------------------- */

/* A realistic stream (OpenAI's chunk objects with include_usage): the role chunk, text, a tool
 * call split over several chunks, a second tool call, the finish chunk, the usage chunk with
 * choices [], [DONE]. */
static void test_stream_text_and_tools(void **state)
{
    by_astream *t;
    os_buf out;
    evs e;
    size_t mark;
    (void)state;

    os_buf_init(&out, 1u << 20);
    assert_int_equal(by_astream_new(&t, "claude-x", 40), OS_OK);
    feed_choice(t, &out, "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", "null");
    /* the role chunk gives message_start only: no empty text block */
    evs_parse(&e, &out);
    evs_types(&e, "message_start");
    evs_free(&e);
    feed_choice(t, &out, "{\"content\":\"Let me \"}", "null");
    feed_choice(t, &out, "{\"content\":\"check.\"}", "null");
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":0,\"id\":\"call_abc\",\"type\":\"function\","
                "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}",
                "null");
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"ci\"}}]}",
                "null");
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
                "\"ty\\\":\\\"Paris\\\"}\"}}]}",
                "null");
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":1,\"id\":\"call_def\",\"type\":\"function\","
                "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]}",
                "null");
    feed_choice(t, &out, "{}", "\"tool_calls\"");
    mark = out.len;
    char *u = chunk("[]", "{\"prompt_tokens\":42,\"completion_tokens\":17,\"total_tokens\":59}");
    feed(t, &out, u);
    free(u);
    assert_int_equal(out.len, mark); /* usage alone writes nothing yet */
    assert_false(by_astream_done(t));
    feed(t, &out, "[DONE]");
    assert_true(by_astream_done(t));

    evs_parse(&e, &out);
    evs_types(&e, "message_start content_block_start content_block_delta content_block_delta "
                  "content_block_stop content_block_start content_block_delta content_block_delta "
                  "content_block_stop content_block_start content_block_delta content_block_stop "
                  "message_delta message_stop");
    assert_start(&e, 0, "claude-x", 40);
    static const char *const want[] = {
        NULL,
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
        "\"text\":\"\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"Let me \"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"check.\"}}",
        "{\"type\":\"content_block_stop\",\"index\":0}",
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"call_abc\",\"name\":\"get_weather\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"ci\"}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"ty\\\":\\\"Paris\\\"}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":1}",
        "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"call_def\",\"name\":\"get_time\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":2}",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
        "\"stop_sequence\":null},\"usage\":{\"input_tokens\":42,\"output_tokens\":17}}",
        "{\"type\":\"message_stop\"}",
    };
    for (size_t i = 1; i < e.n; i++)
        assert_json(e.data[i], want[i]);
    evs_free(&e);
    /* the exact bytes of the last event */
    const char *tail = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    assert_true(out.len > strlen(tail));
    assert_memory_equal(out.data + out.len - strlen(tail), tail, strlen(tail));

    /* after the end: more data and finish() write nothing */
    mark = out.len;
    feed(t, &out, "[DONE]");
    feed_choice(t, &out, "{\"content\":\"late\"}", "null");
    os_infer_usage usage = {1, 0, 1};
    assert_int_equal(by_astream_finish(t, &out, &usage), OS_OK);
    assert_int_equal(out.len, mark);
    by_astream_free(t);
    os_buf_free(&out);
}

/* finish() when [DONE] never came: with the billed usage, without it, and before any chunk. */
static void test_stream_finish_without_done(void **state)
{
    by_astream *t;
    os_buf out;
    evs e;
    (void)state;

    os_buf_init(&out, 1u << 20);
    assert_int_equal(by_astream_new(&t, "claude-x", 10), OS_OK);
    feed_choice(t, &out, "{\"role\":\"assistant\",\"content\":\"Hi\"}", "null");
    feed_choice(t, &out, "{\"content\":\" there\"}", "null");
    feed_choice(t, &out, "{}", "\"length\"");
    assert_false(by_astream_done(t));
    os_infer_usage u = {.input_tokens = 12, .cached_tokens = 0, .output_tokens = 2};
    assert_int_equal(by_astream_finish(t, &out, &u), OS_OK);
    assert_true(by_astream_done(t));
    evs_parse(&e, &out);
    evs_types(&e, "message_start content_block_start content_block_delta content_block_delta "
                  "content_block_stop message_delta message_stop");
    assert_start(&e, 0, "claude-x", 10);
    assert_json(e.data[2], "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                           "\"text_delta\",\"text\":\"Hi\"}}");
    assert_json(e.data[5], "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\","
                           "\"stop_sequence\":null},\"usage\":{\"input_tokens\":12,"
                           "\"output_tokens\":2}}");
    evs_free(&e);
    by_astream_free(t);

    /* cut before the finish chunk, no usage known: the open block is closed, end_turn, 0 */
    os_buf_reset(&out);
    assert_int_equal(by_astream_new(&t, "m", 3), OS_OK);
    feed_choice(t, &out, "{\"role\":\"assistant\",\"content\":\"Hi\"}", "null");
    assert_int_equal(by_astream_finish(t, &out, NULL), OS_OK);
    evs_parse(&e, &out);
    evs_types(&e, "message_start content_block_start content_block_delta content_block_stop "
                  "message_delta message_stop");
    assert_json(e.data[4], "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
                           "\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}");
    evs_free(&e);
    assert_int_equal(by_astream_finish(t, &out, NULL), OS_OK); /* once only */
    evs_parse(&e, &out);
    assert_int_equal(e.n, 6);
    evs_free(&e);
    by_astream_free(t);

    /* nothing ever arrived: still a well-formed message */
    os_buf_reset(&out);
    assert_int_equal(by_astream_new(&t, "m", 7), OS_OK);
    assert_int_equal(by_astream_finish(t, &out, NULL), OS_OK);
    evs_parse(&e, &out);
    evs_types(&e, "message_start message_delta message_stop");
    assert_start(&e, 0, "m", 7);
    evs_free(&e);
    by_astream_free(t);
    by_astream_free(NULL);
    assert_false(by_astream_done(NULL));
    os_buf_free(&out);
}

/* A stream's stop_reason for each finish_reason. */
static void test_stream_finish_reasons(void **state)
{
    static const struct {
        const char *finish, *stop;
    } cases[] = {
        {"\"stop\"", "end_turn"},          {"\"length\"", "max_tokens"},
        {"\"content_filter\"", "refusal"}, {"\"tool_calls\"", "tool_use"},
        {"\"something_new\"", "end_turn"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        by_astream *t;
        os_buf out;
        evs e;
        os_buf_init(&out, 1u << 16);
        assert_int_equal(by_astream_new(&t, "m", 1), OS_OK);
        feed_choice(t, &out, "{\"content\":\"a\"}", cases[i].finish);
        feed(t, &out, "[DONE]");
        evs_parse(&e, &out);
        assert_int_equal(e.n, 6);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(e.data[4], "delta"), "stop_reason")),
            cases[i].stop);
        evs_free(&e);
        by_astream_free(t);
        os_buf_free(&out);
    }
}

/* Tool calls as other servers send them: the name after the arguments, no id, no index, the
 * usage on every chunk, and several choices. */
static void test_stream_variants(void **state)
{
    by_astream *t;
    os_buf out;
    evs e;
    (void)state;

    os_buf_init(&out, 1u << 20);
    assert_int_equal(by_astream_new(&t, "m", 99), OS_OK);
    /* usage on the first chunk (vLLM's continuous usage stats): message_start shows it */
    char *c =
        chunk("[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null},"
              "{\"index\":1,\"delta\":{\"content\":\"other choice\"},\"finish_reason\":null}]",
              "{\"prompt_tokens\":31,\"completion_tokens\":0}");
    feed(t, &out, c);
    free(c);
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\"\"}}]}",
                "null");
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\","
                "\"arguments\":\":1}\"}}]}",
                "null");
    feed_choice(t, &out, "{\"tool_calls\":[{\"id\":\"call_x\",\"function\":{\"name\":\"g\"}}]}",
                "null");
    feed_choice(t, &out, "{\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}", "null");
    feed_choice(t, &out, "{}", "\"stop\"");
    feed(t, &out, "[DONE]");
    evs_parse(&e, &out);
    evs_types(&e, "message_start content_block_start content_block_delta content_block_stop "
                  "content_block_start content_block_delta content_block_stop message_delta "
                  "message_stop");
    assert_start(&e, 0, "m", 31);
    json_t *blk = json_object_get(e.data[1], "content_block");
    assert_true(is_id(json_string_value(json_object_get(blk, "id")), "toolu_"));
    assert_string_equal(json_string_value(json_object_get(blk, "name")), "f");
    /* the arguments held back until the name came go out in one delta */
    assert_json(e.data[2], "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                           "\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}");
    assert_json(e.data[4], "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{"
                           "\"type\":\"tool_use\",\"id\":\"call_x\",\"name\":\"g\",\"input\":{}}}");
    assert_json(e.data[5], "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                           "\"input_json_delta\",\"partial_json\":\"{}\"}}");
    /* "stop" after tool calls is tool_use; the last usage seen is the count */
    assert_json(e.data[7], "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
                           "\"stop_sequence\":null},\"usage\":{\"input_tokens\":31,"
                           "\"output_tokens\":0}}");
    evs_free(&e);
    by_astream_free(t);

    /* text after a tool call opens a new text block */
    os_buf_reset(&out);
    assert_int_equal(by_astream_new(&t, "m", 1), OS_OK);
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\","
                "\"arguments\":\"{}\"}}]}",
                "null");
    feed_choice(t, &out, "{\"content\":\"done\"}", "null");
    assert_int_equal(by_astream_finish(t, &out, NULL), OS_OK);
    evs_parse(&e, &out);
    evs_types(&e, "message_start content_block_start content_block_delta content_block_stop "
                  "content_block_start content_block_delta content_block_stop message_delta "
                  "message_stop");
    assert_json(e.data[4], "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{"
                           "\"type\":\"text\",\"text\":\"\"}}");
    evs_free(&e);
    by_astream_free(t);
    os_buf_free(&out);
}

static void test_stream_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "{",
        "[1]",
        "\"x\"",
        "{\"choices\":{}}",
        "{\"choices\":[1]}",
        "{\"choices\":[{\"index\":\"0\",\"delta\":{}}]}",
        "{\"choices\":[{\"delta\":\"x\"}]}",
        "{\"choices\":[{\"delta\":{\"content\":5}}]}",
        "{\"choices\":[{\"delta\":{},\"finish_reason\":7}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":{}}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":\"0\"}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":1}}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":{}}}]}}"
        "]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":-3}}",
        "{\"error\":{\"message\":\"upstream broke\",\"type\":\"server_error\"}}",
        "[DONE] ",
    };
    by_astream *t;
    os_buf out;
    evs e;
    (void)state;

    os_buf_init(&out, 1u << 20);
    assert_int_equal(by_astream_new(&t, "m", 1), OS_OK);
    feed_choice(t, &out, "{\"content\":\"a\"}", "null");
    size_t mark = out.len;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (by_astream_feed(t, &out, bad[i], strlen(bad[i])) != OS_ERR_INVALID)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(out.len, mark);
    }
    /* a refused chunk leaves the stream as it was */
    feed_choice(t, &out, "{\"content\":\"b\"}", "\"stop\"");
    feed(t, &out, "[DONE]");
    evs_parse(&e, &out);
    evs_types(&e, "message_start content_block_start content_block_delta content_block_delta "
                  "content_block_stop message_delta message_stop");
    evs_free(&e);
    by_astream_free(t);

    /* interleaved tool calls cannot be written as Anthropic blocks: refused, and the stream
     * stays refused */
    os_buf_reset(&out);
    assert_int_equal(by_astream_new(&t, "m", 1), OS_OK);
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\"}}]}",
                "null");
    feed_choice(t, &out,
                "{\"tool_calls\":[{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"g\"}}]}",
                "null");
    mark = out.len;
    const char *late = "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                       "\"function\":{\"arguments\":\"{}\"}}]}}]}";
    assert_int_equal(by_astream_feed(t, &out, late, strlen(late)), OS_ERR_INVALID);
    assert_int_equal(out.len, mark);
    assert_int_equal(by_astream_feed(t, &out, "[DONE]", 6), OS_ERR_INVALID);
    assert_int_equal(by_astream_finish(t, &out, NULL), OS_ERR_INVALID);
    assert_false(by_astream_done(t));
    by_astream_free(t);

    /* an output buffer that is too small: TOOBIG, nothing half-written */
    os_buf small;
    os_buf_init(&small, 300);
    assert_int_equal(by_astream_new(&t, "m", 1), OS_OK);
    assert_int_equal(by_astream_feed(t, &small, "[DONE]", 6), OS_ERR_TOOBIG);
    assert_int_equal(small.len, 0);
    by_astream_free(t);
    os_buf_free(&small);

    assert_int_equal(by_astream_new(NULL, "m", 1), OS_ERR_INVALID);
    assert_int_equal(by_astream_feed(NULL, &out, "[DONE]", 6), OS_ERR_INVALID);
    assert_int_equal(by_astream_finish(NULL, &out, NULL), OS_ERR_INVALID);
    os_buf_free(&out);
}

/* ---- the round trip through an echo-style seller --------------------------------------------- */

/* The end of the echo token starting at off: whitespace, then a word (src/seller/echo.h). */
static size_t token_end(const char *s, size_t len, size_t off)
{
    size_t i = off;
    while (i < len && strchr(" \t\r\n\v\f", s[i]) != NULL)
        i++;
    while (i < len && strchr(" \t\r\n\v\f", s[i]) == NULL)
        i++;
    size_t j = i;
    while (j < len && strchr(" \t\r\n\v\f", s[j]) != NULL)
        j++;
    return j == len ? len : i; /* trailing whitespace belongs to the last token */
}

/* Answers a translated OpenAI request the way the echo upstream does ("echo: " + the last user
 * message, one token per chunk, or a call of the first tool with {"input": that text}), feeds the
 * chunks to a translator and returns its output parsed. */
static void echo_round_trip(evs *e, const json_t *oreq, const char *model)
{
    const json_t *msgs = json_object_get(oreq, "messages"), *m, *last = NULL;
    const json_t *tools = json_object_get(oreq, "tools");
    char text[1024], d[2048];
    size_t i, n = 0;
    by_astream *t;
    os_buf out;

    json_array_foreach(msgs, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "role")), "user") == 0)
            last = m;
    }
    assert_non_null(last);
    const char *user = json_string_value(json_object_get(last, "content"));
    assert_non_null(user);
    const char *tool = json_string_value(
        json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name"));
    if (tool != NULL) {
        json_t *a = json_pack("{s:s}", "input", user);
        char *s = json_dumps(a, JSON_COMPACT);
        snprintf(text, sizeof(text), "%s", s);
        free(s);
        json_decref(a);
    } else {
        snprintf(text, sizeof(text), "echo: %s", user);
    }

    os_buf_init(&out, 1u << 20);
    assert_int_equal(by_astream_new(&t, model, 5), OS_OK);
    if (tool != NULL)
        snprintf(d, sizeof(d),
                 "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
                 "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"%s\","
                 "\"arguments\":\"\"}}]}",
                 tool);
    else
        snprintf(d, sizeof(d), "{\"role\":\"assistant\",\"content\":\"\"}");
    feed_choice(t, &out, d, "null");
    for (size_t off = 0, len = strlen(text); off < len; n++) {
        size_t end = token_end(text, len, off);
        json_t *s = json_stringn(text + off, end - off);
        char *q = json_dumps(s, JSON_ENCODE_ANY);
        if (tool != NULL)
            snprintf(d, sizeof(d),
                     "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":%s}}]}", q);
        else
            snprintf(d, sizeof(d), "{\"content\":%s}", q);
        free(q);
        json_decref(s);
        feed_choice(t, &out, d, "null");
        off = end;
    }
    feed_choice(t, &out, "{}", tool ? "\"tool_calls\"" : "\"stop\"");
    snprintf(d, sizeof(d), "{\"prompt_tokens\":20,\"completion_tokens\":%zu}", n);
    char *c = chunk("[]", d);
    feed(t, &out, c);
    free(c);
    feed(t, &out, "[DONE]");
    assert_true(by_astream_done(t));
    evs_parse(e, &out);
    by_astream_free(t);
    os_buf_free(&out);
}

/* Concatenates the deltas' text (or partial_json). */
static void deltas(const evs *e, char *out, size_t cap, size_t *count)
{
    size_t off = 0;
    *count = 0;
    out[0] = '\0';
    for (size_t i = 0; i < e->n; i++) {
        const json_t *d = json_object_get(e->data[i], "delta");
        const char *s = json_string_value(json_object_get(d, "text"));
        if (s == NULL)
            s = json_string_value(json_object_get(d, "partial_json"));
        if (strcmp(e->type[i], "content_block_delta") == 0 && s != NULL) {
            off += (size_t)snprintf(out + off, cap - off, "%s", s);
            (*count)++;
        }
    }
}

static void test_reverse_consistency(void **state)
{
    char text[1024];
    size_t k;
    evs e;
    (void)state;

    /* the last user turn in blocks: its text must reach the seller whole */
    json_t *oreq =
        req_ok("{\"model\":\"claude-x\",\"max_tokens\":100,\"stream\":true,"
               "\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\"}],\"messages\":["
               "{\"role\":\"user\",\"content\":\"first question\"},"
               "{\"role\":\"assistant\",\"content\":\"first answer\"},"
               "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"how are\"},"
               "{\"type\":\"text\",\"text\":\" you  today? \"}]}]}");
    assert_true(json_is_true(json_object_get(oreq, "stream")));
    echo_round_trip(&e, oreq, "claude-x");
    deltas(&e, text, sizeof(text), &k);
    assert_string_equal(text, "echo: how are you  today? ");
    assert_int_equal(k, 5);
    evs_types(&e, "message_start content_block_start content_block_delta content_block_delta "
                  "content_block_delta content_block_delta content_block_delta content_block_stop "
                  "message_delta message_stop");
    assert_json(e.data[e.n - 2], "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                 "\"end_turn\",\"stop_sequence\":null},\"usage\":{"
                                 "\"input_tokens\":20,\"output_tokens\":5}}");
    evs_free(&e);
    json_decref(oreq);

    /* with tools: the first tool is called with the user's text, streamed as input_json_delta */
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"model\":\"claude-x\",\"max_tokens\":100,\"stream\":true,%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris\"}]}",
             TOOLS);
    oreq = req_ok(body);
    echo_round_trip(&e, oreq, "claude-x");
    deltas(&e, text, sizeof(text), &k);
    assert_string_equal(text, "{\"input\":\"weather in Paris\"}");
    evs_types(&e, "message_start content_block_start content_block_delta content_block_delta "
                  "content_block_delta content_block_stop message_delta message_stop");
    assert_json(e.data[1], "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{"
                           "\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"get_weather\","
                           "\"input\":{}}}");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e.data[e.n - 2], "delta"),
                                                          "stop_reason")),
                        "tool_use");
    evs_free(&e);
    json_decref(oreq);
}

/* ---- error bodies ---------------------------------------------------------------------------- */

static void assert_dump(json_t *v, const char *want)
{
    assert_non_null(v);
    char *s = json_dumps(v, JSON_COMPACT);
    assert_string_equal(s, want);
    free(s);
    json_decref(v);
}

static void test_errors(void **state)
{
    (void)state;
    /* OpenAI's shape, keys in its order */
    assert_dump(by_openai_error("invalid_request_error", "model_not_found", "No such model"),
                "{\"error\":{\"message\":\"No such model\",\"type\":\"invalid_request_error\","
                "\"param\":null,\"code\":\"model_not_found\"}}");
    assert_dump(by_openai_error("server_error", NULL, "boom"),
                "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,"
                "\"code\":null}}");
    /* a reason cut mid-character still makes a body */
    assert_dump(by_openai_error("x", NULL, "caf\xc3"),
                "{\"error\":{\"message\":\"caf?\",\"type\":\"x\",\"param\":null,\"code\":null}}");
    /* Anthropic's shape */
    assert_dump(by_anthropic_error("overloaded_error", "Overloaded"),
                "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                "\"Overloaded\"}}");
    assert_dump(by_anthropic_error("api_error", "bad \xff byte \xe2\x82\xac"),
                "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                "\"bad ? byte \xe2\x82\xac\"}}");

    static const struct {
        unsigned status;
        const char *type;
    } map[] = {
        {400, "invalid_request_error"},
        {401, "authentication_error"},
        {402, "billing_error"},
        {403, "permission_error"},
        {404, "not_found_error"},
        {413, "request_too_large"},
        {429, "rate_limit_error"},
        {529, "overloaded_error"},
        {500, "api_error"},
        {502, "api_error"},
        {503, "api_error"},
        {504, "api_error"},
        {422, "invalid_request_error"},
        {200, "api_error"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        assert_string_equal(by_anthropic_error_type(map[i].status), map[i].type);

    os_buf b;
    os_buf_init(&b, 4096);
    assert_int_equal(by_stream_error_event(&b, false, "server_error", "upstream failed"), OS_OK);
    const char *oa = "data: {\"error\":{\"message\":\"upstream failed\",\"type\":\"server_error\","
                     "\"param\":null,\"code\":null}}\n\n";
    assert_int_equal(b.len, strlen(oa));
    assert_memory_equal(b.data, oa, b.len);
    os_buf_reset(&b);
    assert_int_equal(by_stream_error_event(&b, true, "overloaded_error", "Overloaded"), OS_OK);
    const char *an = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                     "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    assert_int_equal(b.len, strlen(an));
    assert_memory_equal(b.data, an, b.len);
    assert_int_equal(by_stream_error_event(NULL, true, "a", "b"), OS_ERR_INVALID);
    os_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_text),
        cmocka_unit_test(test_request_system_blocks),
        cmocka_unit_test(test_request_tool_round_trip),
        cmocka_unit_test(test_request_tool_choice),
        cmocka_unit_test(test_request_stream),
        cmocka_unit_test(test_request_unsupported),
        cmocka_unit_test(test_request_invalid),
        cmocka_unit_test(test_response_text),
        cmocka_unit_test(test_response_tools),
        cmocka_unit_test(test_response_finish_reasons),
        cmocka_unit_test(test_response_invalid),
        cmocka_unit_test(test_stream_text_and_tools),
        cmocka_unit_test(test_stream_finish_without_done),
        cmocka_unit_test(test_stream_finish_reasons),
        cmocka_unit_test(test_stream_variants),
        cmocka_unit_test(test_stream_invalid),
        cmocka_unit_test(test_reverse_consistency),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
