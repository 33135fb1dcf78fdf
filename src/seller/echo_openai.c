/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The echo server's OpenAI side: POST /v1/chat/completions (a JSON body, or chat.completion.chunk
 * SSE events ending in data: [DONE], with the usage chunk of stream_options.include_usage),
 * POST /v1/embeddings (deterministic vectors, float or base64) and GET /v1/models, in OpenAI's
 * shapes and with the token counts echo.h defines.
 */
#include "echo_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/base64.h"
#include "openseed/json.h"
#include "openseed/keccak.h"

#define MAX_DEPTH 64
#define MAX_MESSAGES 4096
#define MAX_CHOICES 128
#define MAX_ITEMS 2048
#define MAX_DIMS 16
#define DEFAULT_DIMS 8

/* What a chat request asks for, once checked. */
typedef struct chat_req {
    const char *model;
    bool stream, include_usage;
    uint64_t cap; /* completion tokens per choice */
    uint64_t n;
    const char *tool; /* the function to call, NULL for a text answer */
} chat_req;

/* What the answer is, for every choice. */
typedef struct chat_ans {
    os_buf text; /* the answer text (cut), or the tool call's arguments */
    bool tool;
    const char *finish;
    uint64_t prompt, completion; /* completion counts one choice */
} chat_ans;

static void bad(os_http_response *res, const char *msg)
{
    os_http_res_error(res, 400, "invalid_request_error", NULL, "%s", msg);
}

/* The function a request's tools and tool_choice select, or NULL for a text answer. */
static const char *pick_tool(const json_t *body)
{
    const json_t *tools = json_object_get(body, "tools");
    const json_t *choice = json_object_get(body, "tool_choice");
    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return NULL;
    if (json_is_string(choice) && strcmp(json_string_value(choice), "none") == 0)
        return NULL;
    const json_t *named = json_object_get(json_object_get(choice, "function"), "name");
    if (json_is_string(named))
        return json_string_value(named);
    const json_t *name =
        json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name");
    return json_is_string(name) ? json_string_value(name) : NULL;
}

static bool parse_chat(chat_req *r, const json_t *body, os_http_response *res, const sl_echo *e)
{
    char err[OS_JSON_ERR_LEN];
    const json_t *msgs, *m, *so = NULL;
    uint64_t mt, mct;
    size_t i;

    memset(r, 0, sizeof(*r));
    if (os_json_get_array(&msgs, body, "messages", MAX_MESSAGES, err, sizeof(err)) != OS_OK ||
        os_json_opt_str(&r->model, body, "model", 256, err, sizeof(err)) != OS_OK ||
        os_json_opt_bool(&r->stream, body, "stream", false, err, sizeof(err)) != OS_OK ||
        os_json_opt_object(&so, body, "stream_options", err, sizeof(err)) != OS_OK ||
        (so != NULL && os_json_opt_bool(&r->include_usage, so, "include_usage", false, err,
                                        sizeof(err)) != OS_OK) ||
        os_json_opt_u64(&mt, body, "max_tokens", UINT64_MAX, err, sizeof(err)) != OS_OK ||
        os_json_opt_u64(&mct, body, "max_completion_tokens", UINT64_MAX, err, sizeof(err)) !=
            OS_OK ||
        os_json_opt_u64(&r->n, body, "n", 1, err, sizeof(err)) != OS_OK) {
        bad(res, err);
        return false;
    }
    if (json_array_size(msgs) == 0) {
        bad(res, "messages: must not be empty");
        return false;
    }
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m)) {
            bad(res, "messages: each message must be an object");
            return false;
        }
    }
    if (mt == 0 || mct == 0) {
        bad(res, "max_tokens: must be at least 1");
        return false;
    }
    if (r->n == 0 || r->n > MAX_CHOICES) {
        bad(res, "n: must be 1..128");
        return false;
    }
    r->cap = mt < mct ? mt : mct;
    if (r->model == NULL)
        r->model = sl_echo_model(e);
    r->tool = pick_tool(body);
    return true;
}

/* Fills ans from the request; OS_ERR_NOMEM or OS_ERR_TOOBIG on failure. */
static os_err answer_chat(chat_ans *a, const chat_req *r, const json_t *body)
{
    const json_t *msgs = json_object_get(body, "messages"), *m;
    os_buf user;
    size_t i;
    os_err rc;

    a->prompt = 3;
    json_array_foreach(msgs, i, m) a->prompt +=
        4 + sl_echo_content_tokens(json_object_get(m, "content"));
    os_buf_init(&user, SL_ECHO_PLAN_MAX);
    os_buf_init(&a->text, SL_ECHO_PLAN_MAX);
    rc = sl_echo_last_user_text(&user, msgs);
    if (rc == OS_OK && r->tool != NULL) {
        char *args = NULL;
        json_t *o = json_pack("{s:s%}", "input", user.len ? (const char *)user.data : "", user.len);
        if (o != NULL)
            args = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (args == NULL) {
            rc = OS_ERR_NOMEM;
        } else {
            uint64_t t = sl_echo_tokens(args, strlen(args));
            if (t <= r->cap) {
                a->tool = true;
                a->completion = t;
                a->finish = "tool_calls";
                rc = os_buf_append(&a->text, args, strlen(args));
            }
            free(args);
        }
    }
    if (rc == OS_OK && !a->tool) {
        rc = os_buf_append(&a->text, "echo: ", 6);
        if (rc == OS_OK)
            rc = os_buf_append(&a->text, user.data, user.len);
        if (rc == OS_OK) {
            size_t cut = sl_echo_cut((const char *)a->text.data, a->text.len, r->cap);
            a->finish = cut < a->text.len ? "length" : "stop";
            a->text.len = cut;
            a->completion = sl_echo_tokens((const char *)a->text.data, cut);
        }
    }
    os_buf_free(&user);
    return rc;
}

static json_t *usage_json(const chat_ans *a, const chat_req *r)
{
    json_int_t c = (json_int_t)(a->completion * r->n);
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)a->prompt, "completion_tokens",
                     c, "total_tokens", (json_int_t)a->prompt + c);
}

static json_t *tool_call(sl_echo *e, const chat_req *r, const char *args, size_t len)
{
    char id[SL_ECHO_ID_LEN];
    sl_echo_new_id(e, id, sizeof(id), "call_");
    return json_pack("{s:s, s:s, s:{s:s, s:s%}}", "id", id, "type", "function", "function", "name",
                     r->tool, "arguments", args, len);
}

static os_err plan_whole(sl_echo *e, sl_echo_plan *p, const chat_req *r, const chat_ans *a)
{
    char id[SL_ECHO_ID_LEN];
    const char *text = a->text.len ? (const char *)a->text.data : "";
    json_t *choices = json_array();
    sl_echo_new_id(e, id, sizeof(id), "chatcmpl-");
    for (uint64_t i = 0; choices != NULL && i < r->n; i++) {
        json_t *msg =
            a->tool ? json_pack("{s:s, s:n, s:[o]}", "role", "assistant", "content", "tool_calls",
                                tool_call(e, r, text, a->text.len))
                    : json_pack("{s:s, s:s%}", "role", "assistant", "content", text, a->text.len);
        if (json_array_append_new(choices, json_pack("{s:I, s:o, s:n, s:s}", "index", (json_int_t)i,
                                                     "message", msg, "logprobs", "finish_reason",
                                                     a->finish)) != 0) {
            json_decref(choices);
            return OS_ERR_NOMEM;
        }
    }
    return sl_echo_plan_json(p, json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", id, "object",
                                          "chat.completion", "created", (json_int_t)time(NULL),
                                          "model", r->model, "choices", choices, "usage",
                                          usage_json(a, r)));
}

/* One chat.completion.chunk event; takes choices. */
static os_err chunk(sl_echo_plan *p, const char *id, json_int_t created, const chat_req *r,
                    json_t *choices, json_t *usage, bool paced)
{
    json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", id, "object", "chat.completion.chunk",
                          "created", created, "model", r->model, "choices", choices);
    if (c != NULL && r->include_usage &&
        json_object_set_new(c, "usage", usage != NULL ? usage : json_null()) != 0) {
        json_decref(c);
        return OS_ERR_NOMEM;
    }
    if (c == NULL || !r->include_usage)
        json_decref(usage);
    return sl_echo_plan_event(p, NULL, c, paced);
}

static json_t *one_choice(uint64_t i, json_t *delta, const char *finish)
{
    return json_pack("[{s:I, s:o, s:n, s:s?}]", "index", (json_int_t)i, "delta", delta, "logprobs",
                     "finish_reason", finish);
}

static os_err plan_stream(sl_echo *e, sl_echo_plan *p, const chat_req *r, const chat_ans *a)
{
    char id[SL_ECHO_ID_LEN];
    json_int_t created = (json_int_t)time(NULL);
    const char *text = (const char *)a->text.data;
    os_err rc = OS_OK;

    sl_echo_new_id(e, id, sizeof(id), "chatcmpl-");
    for (uint64_t i = 0; rc == OS_OK && i < r->n; i++) {
        json_t *delta;
        if (a->tool) {
            /* the first tool-call delta carries id, type and name, with empty arguments */
            char cid[SL_ECHO_ID_LEN];
            sl_echo_new_id(e, cid, sizeof(cid), "call_");
            delta = json_pack("{s:s, s:n, s:[{s:I, s:s, s:s, s:{s:s, s:s}}]}", "role", "assistant",
                              "content", "tool_calls", "index", (json_int_t)0, "id", cid, "type",
                              "function", "function", "name", r->tool, "arguments", "");
        } else {
            delta = json_pack("{s:s, s:s}", "role", "assistant", "content", "");
        }
        rc = chunk(p, id, created, r, one_choice(i, delta, NULL), NULL, false);
    }
    for (size_t off = 0; rc == OS_OK && off < a->text.len;) {
        size_t end = sl_echo_token_end(text, a->text.len, off);
        for (uint64_t i = 0; rc == OS_OK && i < r->n; i++) {
            json_t *delta =
                a->tool ? json_pack("{s:[{s:I, s:{s:s%}}]}", "tool_calls", "index", (json_int_t)0,
                                    "function", "arguments", text + off, end - off)
                        : json_pack("{s:s%}", "content", text + off, end - off);
            rc = chunk(p, id, created, r, one_choice(i, delta, NULL), NULL, i == 0);
        }
        off = end;
    }
    for (uint64_t i = 0; rc == OS_OK && i < r->n; i++)
        rc = chunk(p, id, created, r, one_choice(i, json_object(), a->finish), NULL, false);
    if (rc == OS_OK && r->include_usage)
        rc = chunk(p, id, created, r, json_array(), usage_json(a, r), false);
    return rc == OS_OK ? sl_echo_plan_raw(p, "[DONE]") : rc;
}

void sl_echo_openai_chat(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_echo *e = ctx;
    sl_echo_fail fail;
    json_t *body = NULL;
    chat_req r;
    chat_ans a;
    sl_echo_plan p;

    if (!sl_echo_admit(e, req, res, SL_ECHO_OPENAI, true, &fail) ||
        os_http_req_json(&body, req, res, MAX_DEPTH) != OS_OK)
        return;
    if (!parse_chat(&r, body, res, e)) {
        json_decref(body);
        return;
    }
    memset(&a, 0, sizeof(a));
    sl_echo_plan_init(&p, r.stream);
    os_err rc = answer_chat(&a, &r, body);
    if (rc == OS_OK)
        rc = r.stream ? plan_stream(e, &p, &r, &a) : plan_whole(e, &p, &r, &a);
    if (rc == OS_OK)
        sl_echo_send(e, res, &p, fail);
    else
        os_http_res_error(res, rc == OS_ERR_TOOBIG ? 413 : 500, "server_error", NULL,
                          "echo: cannot build the answer");
    sl_echo_plan_free(&p);
    os_buf_free(&a.text);
    json_decref(body);
}

/* ---- embeddings ---- */

static bool item_ok(const json_t *v)
{
    size_t i;
    const json_t *x;
    if (json_is_string(v) || json_is_integer(v))
        return true;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    json_array_foreach(v, i, x)
    {
        if (!json_is_integer(x))
            return false;
    }
    return true;
}

static uint64_t item_tokens(const json_t *v)
{
    if (json_is_string(v))
        return sl_echo_tokens(json_string_value(v), json_string_length(v));
    return json_is_array(v) ? json_array_size(v) : 1;
}

static json_t *item_vector(const json_t *v, uint64_t dims, bool b64)
{
    uint8_t h[32];
    if (json_is_string(v)) {
        os_keccak256(h, json_string_value(v), json_string_length(v));
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s == NULL)
            return NULL;
        os_keccak256(h, s, strlen(s));
        free(s);
    }
    if (b64) {
        uint8_t raw[MAX_DIMS * 4];
        for (uint64_t k = 0; k < dims; k++) {
            float f = (float)((int16_t)(((unsigned)h[2 * k] << 8) | h[2 * k + 1]) / 32768.0);
            uint32_t u;
            memcpy(&u, &f, 4);
            for (int b = 0; b < 4; b++)
                raw[4 * k + (uint64_t)b] = (uint8_t)(u >> (8 * b));
        }
        char *s = os_base64_encode_alloc(raw, (size_t)dims * 4);
        json_t *out = s != NULL ? json_string(s) : NULL;
        free(s);
        return out;
    }
    json_t *arr = json_array();
    for (uint64_t k = 0; arr != NULL && k < dims; k++) {
        double d = (int16_t)(((unsigned)h[2 * k] << 8) | h[2 * k + 1]) / 32768.0;
        if (json_array_append_new(arr, json_real(d)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

void sl_echo_openai_embeddings(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_echo *e = ctx;
    sl_echo_fail fail;
    json_t *body = NULL, *items = NULL, *data = NULL;
    const char *model = NULL, *fmt = NULL;
    char err[OS_JSON_ERR_LEN];
    uint64_t dims, tokens = 0;
    const json_t *input, *x;
    sl_echo_plan p;
    size_t i;

    if (!sl_echo_admit(e, req, res, SL_ECHO_OPENAI, true, &fail) ||
        os_http_req_json(&body, req, res, MAX_DEPTH) != OS_OK)
        return;
    input = json_object_get(body, "input");
    if (os_json_opt_str(&model, body, "model", 256, err, sizeof(err)) != OS_OK ||
        os_json_opt_str(&fmt, body, "encoding_format", 16, err, sizeof(err)) != OS_OK ||
        os_json_opt_u64(&dims, body, "dimensions", DEFAULT_DIMS, err, sizeof(err)) != OS_OK) {
        bad(res, err);
        goto out;
    }
    if (dims == 0 || dims > MAX_DIMS ||
        (fmt != NULL && strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0)) {
        bad(res, "dimensions must be 1..16 and encoding_format float or base64");
        goto out;
    }
    /* input: a string or token array alone, or a non-empty array of those */
    if (json_is_string(input) || (json_is_array(input) && json_array_size(input) > 0 &&
                                  json_is_integer(json_array_get(input, 0)))) {
        items = json_pack("[O]", input);
    } else if (json_is_array(input) && json_array_size(input) > 0 &&
               json_array_size(input) <= MAX_ITEMS) {
        items = json_incref((json_t *)input);
    } else {
        bad(res, "input: a string, or a non-empty array of strings or token arrays");
        goto out;
    }
    data = json_array();
    json_array_foreach(items, i, x)
    {
        if (!item_ok(x) || (json_is_integer(x) && json_is_array(input) &&
                            !json_is_integer(json_array_get(input, 0)))) {
            bad(res, "input: a string, or a non-empty array of strings or token arrays");
            goto out;
        }
    }
    if (json_is_array(input) && json_is_integer(json_array_get(input, 0))) {
        tokens = json_array_size(input); /* one token-id array */
    } else {
        json_array_foreach(items, i, x) tokens += item_tokens(x);
    }
    json_array_foreach(items, i, x)
    {
        json_t *vec = item_vector(x, dims, fmt != NULL && strcmp(fmt, "base64") == 0);
        if (data == NULL || vec == NULL ||
            json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index",
                                                  (json_int_t)i, "embedding", vec)) != 0) {
            os_http_res_error(res, 500, "server_error", NULL, "echo: out of memory");
            goto out;
        }
    }
    sl_echo_plan_init(&p, false);
    if (sl_echo_plan_json(&p, json_pack("{s:s, s:O, s:s, s:{s:I, s:I}}", "object", "list", "data",
                                        data, "model", model ? model : sl_echo_model(e), "usage",
                                        "prompt_tokens", (json_int_t)tokens, "total_tokens",
                                        (json_int_t)tokens)) == OS_OK)
        sl_echo_send(e, res, &p, fail);
    else
        os_http_res_error(res, 500, "server_error", NULL, "echo: out of memory");
    sl_echo_plan_free(&p);
out:
    json_decref(data);
    json_decref(items);
    json_decref(body);
}

void sl_echo_openai_models(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_echo *e = ctx;
    sl_echo_fail fail;
    if (!sl_echo_admit(e, req, res, SL_ECHO_OPENAI, false, &fail))
        return;
    json_t *v = json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id",
                          sl_echo_model(e), "object", "model", "created", (json_int_t)0, "owned_by",
                          "openseed");
    if (v == NULL || os_http_res_json(res, 200, v) != OS_OK)
        os_http_res_status(res, 500);
}
