/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's Anthropic <-> OpenAI translation (src/buyer/translate.h) against the real built-in
 * upstream (src/seller/echo.h) on loopback: the same Anthropic conversation is sent natively to
 * echo's POST /v1/messages and, translated, to its POST /v1/chat/completions; the OpenAI answer is
 * translated back and must match the native one: for streams the event types in order (ping
 * aside), every block's type and tool name, the concatenated text and tool-input JSON, the stop
 * reason and output tokens; for whole answers the message itself, ids aside. Echo's answers are
 * deterministic functions of the request (echo.h), so any difference is the translator's.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "openseed/http_client.h"
#include "openseed/sse.h"

#include "echo.h"
#include "translate.h"

#define MAX_EVENTS 256

typedef struct fix {
    sl_echo *e;
    uint16_t port;
    os_http_client *c;
} fix;

static int setup(void **state)
{
    fix *f = calloc(1, sizeof(*f));
    if (f == NULL || sl_echo_new(&f->e, &(sl_echo_config){.model = "echo-1"}, NULL) != OS_OK ||
        sl_echo_start(f->e) != OS_OK || os_http_client_new(&f->c, NULL) != OS_OK) {
        if (f != NULL) {
            sl_echo_free(f->e);
            free(f);
        }
        return -1;
    }
    f->port = sl_echo_port(f->e);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    os_http_client_free(f->c);
    sl_echo_free(f->e);
    free(f);
    return 0;
}

/* ---- SSE collection -------------------------------------------------------------------------- */

typedef struct coll {
    os_sse_parser *p;
    char *type[MAX_EVENTS];
    char *data[MAX_EVENTS];
    size_t len[MAX_EVENTS];
    size_t n;
} coll;

static os_err on_event(void *ctx, const os_sse_event *ev)
{
    coll *c = ctx;
    if (c->n == MAX_EVENTS)
        return OS_ERR_TOOBIG;
    c->type[c->n] = strdup(ev->type);
    c->data[c->n] = malloc(ev->data_len + 1);
    if (c->type[c->n] == NULL || c->data[c->n] == NULL)
        return OS_ERR_NOMEM;
    memcpy(c->data[c->n], ev->data, ev->data_len + 1);
    c->len[c->n] = ev->data_len;
    c->n++;
    return OS_OK;
}

static void coll_init(coll *c)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(os_sse_parser_new(&c->p, 0, 0, on_event, c), OS_OK);
}

static void coll_free(coll *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->type[i]);
        free(c->data[i]);
    }
    os_sse_parser_free(c->p);
    memset(c, 0, sizeof(*c));
}

/* Fed in 5-byte pieces so that events straddle reads. */
static void coll_feed(coll *c, const uint8_t *data, size_t len)
{
    for (size_t off = 0; off < len; off += 5)
        assert_int_equal(os_sse_feed(c->p, data + off, len - off < 5 ? len - off : 5), OS_OK);
}

static int on_body(void *ud, const os_http_client_res *res, const uint8_t *data, size_t len)
{
    (void)res;
    coll_feed(ud, data, len);
    return 0;
}

/* POSTs body to path; a stream goes to c, a whole answer is returned parsed. */
static json_t *post(fix *f, const char *path, const char *body, coll *c)
{
    char url[128];
    os_http_header h[] = {{"Content-Type", "application/json"},
                          {"anthropic-version", "2023-06-01"}};
    os_http_client_res res;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)f->port, path);
    os_http_client_req rq = {
        .method = "POST",
        .url = url,
        .headers = h,
        .n_headers = 2,
        .body = body,
        .body_len = strlen(body),
        .on_body = c != NULL ? on_body : NULL,
        .on_body_ud = c,
    };
    os_http_client_res_init(&res);
    assert_int_equal(os_http_client_do(f->c, &res, NULL, &rq), OS_OK);
    if (res.status != 200)
        fail_msg("%s answered %ld: %.*s", path, res.status, (int)res.body.len,
                 (const char *)res.body.data);
    json_t *v = NULL;
    if (c == NULL) {
        json_error_t je;
        v = json_loadb((const char *)res.body.data, res.body.len, 0, &je);
        if (v == NULL)
            fail_msg("%s: not JSON: %s", path, je.text);
    } else {
        const char *ct = os_http_client_res_header(&res, "Content-Type");
        assert_non_null(ct);
        assert_non_null(strstr(ct, "text/event-stream"));
    }
    os_http_client_res_free(&res);
    return v;
}

/* ---- what an Anthropic stream says ----------------------------------------------------------- */

typedef struct view {
    char types[4096];  /* event types in order, ping left out */
    char blocks[1024]; /* each block's type (and tool name) */
    char text[4096];   /* text_delta texts concatenated */
    char json[4096];   /* input_json_delta partial_json concatenated */
    char stop[32];
    char model[64];
    json_int_t output_tokens;
    json_int_t final_input; /* message_delta usage.input_tokens, -1 when absent */
} view;

static void cat(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(dst);
    int k = snprintf(dst + n, cap - n, "%s", s);
    assert_true(k >= 0 && (size_t)k < cap - n);
}

static void view_of(view *v, const coll *c)
{
    memset(v, 0, sizeof(*v));
    v->final_input = -1;
    for (size_t i = 0; i < c->n; i++) {
        json_error_t je;
        json_t *d = json_loadb(c->data[i], c->len[i], 0, &je);
        if (d == NULL)
            fail_msg("event %zu (%s) is not JSON: %s", i, c->type[i], c->data[i]);
        /* Anthropic: the event name is the data's type */
        assert_string_equal(c->type[i], json_string_value(json_object_get(d, "type")));
        if (strcmp(c->type[i], "ping") == 0) {
            json_decref(d);
            continue;
        }
        cat(v->types, sizeof(v->types), c->type[i]);
        cat(v->types, sizeof(v->types), " ");
        if (strcmp(c->type[i], "message_start") == 0) {
            const json_t *m = json_object_get(d, "message");
            snprintf(v->model, sizeof(v->model), "%s",
                     json_string_value(json_object_get(m, "model")));
            assert_true(json_is_null(json_object_get(m, "stop_reason")));
            assert_int_equal(json_array_size(json_object_get(m, "content")), 0);
        } else if (strcmp(c->type[i], "content_block_start") == 0) {
            const json_t *b = json_object_get(d, "content_block");
            cat(v->blocks, sizeof(v->blocks), json_string_value(json_object_get(b, "type")));
            if (json_object_get(b, "name") != NULL) {
                cat(v->blocks, sizeof(v->blocks), ":");
                cat(v->blocks, sizeof(v->blocks), json_string_value(json_object_get(b, "name")));
            }
            cat(v->blocks, sizeof(v->blocks), " ");
        } else if (strcmp(c->type[i], "content_block_delta") == 0) {
            const json_t *dl = json_object_get(d, "delta");
            const char *t = json_string_value(json_object_get(dl, "type"));
            if (strcmp(t, "text_delta") == 0)
                cat(v->text, sizeof(v->text), json_string_value(json_object_get(dl, "text")));
            else
                cat(v->json, sizeof(v->json),
                    json_string_value(json_object_get(dl, "partial_json")));
        } else if (strcmp(c->type[i], "message_delta") == 0) {
            const json_t *u = json_object_get(d, "usage"), *in = json_object_get(u, "input_tokens");
            snprintf(
                v->stop, sizeof(v->stop), "%s",
                json_string_value(json_object_get(json_object_get(d, "delta"), "stop_reason")));
            assert_true(
                json_is_null(json_object_get(json_object_get(d, "delta"), "stop_sequence")));
            v->output_tokens = json_integer_value(json_object_get(u, "output_tokens"));
            if (json_is_integer(in))
                v->final_input = json_integer_value(in);
        }
        json_decref(d);
    }
}

/* ---- the comparison -------------------------------------------------------------------------- */

/* Sends an Anthropic streaming request both ways and compares; returns the translated view. */
static void compare_stream(fix *f, const char *body, const char *want_stop, view *out_view)
{
    coll native, oa, tr;
    view vn, vt;
    json_t *areq = json_loads(body, 0, NULL), *oreq = NULL;
    char err[256];
    assert_non_null(areq);
    const char *model = json_string_value(json_object_get(areq, "model"));

    coll_init(&native);
    json_decref(post(f, "/v1/messages", body, &native));
    view_of(&vn, &native);

    assert_int_equal(by_anthropic_request_to_openai(&oreq, areq, err, sizeof(err)), OS_OK);
    char *otext = json_dumps(oreq, JSON_COMPACT);
    coll_init(&oa);
    json_decref(post(f, "/v1/chat/completions", otext, &oa));
    assert_true(oa.n >= 3);
    assert_string_equal(oa.data[oa.n - 1], "[DONE]");

    /* the buyer's path: each OpenAI event's data through the translator */
    by_astream *t;
    os_buf buf;
    os_buf_init(&buf, 1u << 20);
    assert_int_equal(by_astream_new(&t, model, 50), OS_OK);
    for (size_t i = 0; i < oa.n; i++) {
        assert_false(by_astream_done(t));
        assert_int_equal(by_astream_feed(t, &buf, oa.data[i], oa.len[i]), OS_OK);
    }
    assert_true(by_astream_done(t));
    coll_init(&tr);
    coll_feed(&tr, buf.data, buf.len);
    assert_false(os_sse_pending(tr.p));
    view_of(&vt, &tr);

    assert_string_equal(vt.types, vn.types);
    assert_string_equal(vt.blocks, vn.blocks);
    assert_string_equal(vt.text, vn.text);
    assert_string_equal(vt.json, vn.json);
    assert_string_equal(vt.stop, vn.stop);
    assert_string_equal(vt.stop, want_stop);
    assert_string_equal(vt.model, vn.model);
    assert_int_equal(vt.output_tokens, vn.output_tokens);
    /* the real prompt count from the usage chunk */
    json_t *last = json_loads(oa.data[oa.n - 2], 0, NULL);
    const json_t *usage = json_object_get(last, "usage");
    assert_true(json_is_integer(json_object_get(usage, "prompt_tokens")));
    assert_int_equal(vt.final_input, json_integer_value(json_object_get(usage, "prompt_tokens")));
    json_decref(last);
    if (out_view != NULL)
        *out_view = vt;

    by_astream_free(t);
    os_buf_free(&buf);
    free(otext);
    coll_free(&native);
    coll_free(&oa);
    coll_free(&tr);
    json_decref(oreq);
    json_decref(areq);
}

/* The same request without streaming: the translated answer is the native one, ids aside. */
static void compare_whole(fix *f, const char *stream_body)
{
    json_t *areq = json_loads(stream_body, 0, NULL), *oreq = NULL, *mine = NULL;
    char err[256];
    assert_non_null(areq);
    assert_int_equal(json_object_set_new(areq, "stream", json_false()), 0);
    char *atext = json_dumps(areq, JSON_COMPACT);
    json_t *native = post(f, "/v1/messages", atext, NULL);

    assert_int_equal(by_anthropic_request_to_openai(&oreq, areq, err, sizeof(err)), OS_OK);
    assert_null(json_object_get(oreq, "stream_options"));
    char *otext = json_dumps(oreq, JSON_COMPACT);
    json_t *completion = post(f, "/v1/chat/completions", otext, NULL);
    assert_int_equal(by_openai_response_to_anthropic(
                         &mine, completion, json_string_value(json_object_get(areq, "model"))),
                     OS_OK);

    /* ids differ by construction; everything else must not, input_tokens aside (OpenAI counts
     * the system prompt as a message) */
    const json_t *b;
    size_t i;
    json_t *both[2] = {native, mine};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(strncmp(json_string_value(json_object_get(both[k], "id")), "msg_", 4), 0);
        json_object_del(both[k], "id");
        json_object_del(json_object_get(both[k], "usage"), "input_tokens");
        json_array_foreach(json_object_get(both[k], "content"), i, b)
        {
            if (json_object_get(b, "id") != NULL)
                assert_int_equal(json_object_set_new((json_t *)b, "id", json_string("X")), 0);
        }
    }
    if (!json_equal(native, mine)) {
        char *n = json_dumps(native, JSON_COMPACT), *m = json_dumps(mine, JSON_COMPACT);
        fail_msg("answers differ\n  native:     %s\n  translated: %s", n, m);
    }
    json_decref(native);
    json_decref(mine);
    json_decref(completion);
    json_decref(oreq);
    json_decref(areq);
    free(atext);
    free(otext);
}

static const char TOOLS[] =
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather of a city\","
    "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}},"
    "{\"name\":\"get_time\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]";

static void test_text_conversation(void **state)
{
    fix *f = *state;
    view v;
    const char *body =
        "{\"model\":\"claude-x\",\"max_tokens\":200,\"stream\":true,\"system\":[{\"type\":\"text\","
        "\"text\":\"Be "
        "brief.\"}],\"temperature\":0.2,\"top_k\":5,\"metadata\":{\"user_id\":\"u1\"},"
        "\"stop_sequences\":[\"\\n\\nHuman:\"],\"messages\":["
        "{\"role\":\"user\",\"content\":\"What is the capital of France?\"},"
        "{\"role\":\"assistant\",\"content\":\"Paris.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"And of \"},"
        "{\"type\":\"text\",\"text\":\"Italy, caf\\u00e9 \\u2603?\"}]}]}";
    compare_stream(f, body, "end_turn", &v);
    assert_string_equal(v.text, "echo: And of Italy, caf\xc3\xa9 \xe2\x98\x83?");
    assert_string_equal(v.blocks, "text ");
    compare_whole(f, body);
}

static void test_max_tokens_cut(void **state)
{
    fix *f = *state;
    view v;
    const char *body = "{\"model\":\"claude-x\",\"max_tokens\":3,\"stream\":true,\"messages\":["
                       "{\"role\":\"user\",\"content\":\"one two three four five\"}]}";
    compare_stream(f, body, "max_tokens", &v);
    assert_string_equal(v.text, "echo: one two");
    assert_int_equal(v.output_tokens, 3);
    compare_whole(f, body);
}

static void test_tool_call(void **state)
{
    fix *f = *state;
    char body[2048];
    view v;
    snprintf(body, sizeof(body),
             "{\"model\":\"claude-x\",\"max_tokens\":200,\"stream\":true,%s,"
             "\"tool_choice\":{\"type\":\"auto\"},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris please\"}]}",
             TOOLS);
    compare_stream(f, body, "tool_use", &v);
    assert_string_equal(v.blocks, "tool_use:get_weather ");
    assert_string_equal(v.json, "{\"input\":\"weather in Paris please\"}");
    compare_whole(f, body);

    /* a named tool */
    snprintf(body, sizeof(body),
             "{\"model\":\"claude-x\",\"max_tokens\":200,\"stream\":true,%s,"
             "\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_time\"},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"time?\"}]}",
             TOOLS);
    compare_stream(f, body, "tool_use", &v);
    assert_string_equal(v.blocks, "tool_use:get_time ");
    compare_whole(f, body);

    /* tool_choice none: a text answer */
    snprintf(body, sizeof(body),
             "{\"model\":\"claude-x\",\"max_tokens\":200,\"stream\":true,%s,"
             "\"tool_choice\":{\"type\":\"none\"},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"no tools\"}]}",
             TOOLS);
    compare_stream(f, body, "end_turn", &v);
    assert_string_equal(v.blocks, "text ");
    compare_whole(f, body);
}

/* A conversation that went through a tool call and its result: the history translates into
 * assistant tool_calls and tool messages that the OpenAI side accepts, and the answer follows the
 * user's last text as natively. */
static void test_tool_history(void **state)
{
    fix *f = *state;
    char body[4096];
    view v;
    snprintf(
        body, sizeof(body),
        "{\"model\":\"claude-x\",\"max_tokens\":200,\"stream\":true,%s,"
        "\"tool_choice\":{\"type\":\"none\"},\"messages\":["
        "{\"role\":\"user\",\"content\":\"weather in Paris\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\","
        "\"input\":{\"city\":\"Paris\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01\","
        "\"content\":[{\"type\":\"text\",\"text\":\"15C, cloudy\"}]},"
        "{\"type\":\"text\",\"text\":\"thanks, summarise\"}]}]}",
        TOOLS);
    compare_stream(f, body, "end_turn", &v);
    assert_string_equal(v.text, "echo: thanks, summarise");
    compare_whole(f, body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_conversation),
        cmocka_unit_test(test_max_tokens_cut),
        cmocka_unit_test(test_tool_call),
        cmocka_unit_test(test_tool_history),
    };
    if (os_init() != OS_OK)
        return 1;
    return cmocka_run_group_tests(tests, setup, teardown);
}
