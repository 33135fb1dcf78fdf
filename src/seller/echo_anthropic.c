/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The echo server's Anthropic side: POST /v1/messages, a message object or the Messages API's
 * event sequence (message_start, content_block_start, ping, content_block_delta...,
 * content_block_stop, message_delta, message_stop, each as "event: X" + data holding the same
 * "type"), with text or a tool_use block, and Anthropic's error shape. Token counts follow echo.h.
 */
#include "echo_internal.h"

#include <stdlib.h>
#include <string.h>

#include "openseed/json.h"

#define MAX_DEPTH 64
#define MAX_MESSAGES 4096

typedef struct msg_req {
    const char *model;
    bool stream;
    uint64_t cap;
    const char *tool;
} msg_req;

typedef struct msg_ans {
    os_buf text;   /* the answer text (cut), or the tool input's JSON text */
    json_t *input; /* the tool input object, when a tool is called */
    const char *stop;
    uint64_t prompt, completion;
} msg_ans;

static void bad(os_http_response *res, const char *msg)
{
    sl_echo_error(res, SL_ECHO_ANTHROPIC, 400, "invalid_request_error", msg);
}

static const char *pick_tool(const json_t *body)
{
    const json_t *tools = json_object_get(body, "tools");
    const json_t *choice = json_object_get(body, "tool_choice");
    const json_t *type = json_object_get(choice, "type");
    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return NULL;
    if (json_is_string(type) && strcmp(json_string_value(type), "none") == 0)
        return NULL;
    const json_t *name = json_object_get(choice, "name");
    if (json_is_string(type) && strcmp(json_string_value(type), "tool") == 0 &&
        json_is_string(name))
        return json_string_value(name);
    name = json_object_get(json_array_get(tools, 0), "name");
    return json_is_string(name) ? json_string_value(name) : NULL;
}

static bool parse_msg(msg_req *r, const json_t *body, os_http_response *res, const sl_echo *e)
{
    char err[OS_JSON_ERR_LEN];
    const json_t *msgs, *m;
    size_t i;
    os_err rc;

    memset(r, 0, sizeof(*r));
    rc = os_json_get_u64(&r->cap, body, "max_tokens", err, sizeof(err));
    if (rc == OS_ERR_NOTFOUND) {
        bad(res, "max_tokens: Field required");
        return false;
    }
    if (rc != OS_OK ||
        os_json_get_array(&msgs, body, "messages", MAX_MESSAGES, err, sizeof(err)) != OS_OK ||
        os_json_opt_str(&r->model, body, "model", 256, err, sizeof(err)) != OS_OK ||
        os_json_opt_bool(&r->stream, body, "stream", false, err, sizeof(err)) != OS_OK) {
        bad(res, err);
        return false;
    }
    if (r->cap == 0) {
        bad(res, "max_tokens: must be at least 1");
        return false;
    }
    if (json_array_size(msgs) == 0) {
        bad(res, "messages: at least one message is required");
        return false;
    }
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m)) {
            bad(res, "messages: each message must be an object");
            return false;
        }
    }
    if (r->model == NULL)
        r->model = sl_echo_model(e);
    r->tool = pick_tool(body);
    return true;
}

static os_err answer_msg(msg_ans *a, const msg_req *r, const json_t *body)
{
    const json_t *msgs = json_object_get(body, "messages"), *m;
    os_buf user;
    size_t i;
    os_err rc;

    a->prompt = 3 + sl_echo_content_tokens(json_object_get(body, "system"));
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
        if (args == NULL) {
            rc = OS_ERR_NOMEM;
            json_decref(o);
        } else {
            uint64_t t = sl_echo_tokens(args, strlen(args));
            if (t <= r->cap) {
                a->input = o;
                a->completion = t;
                a->stop = "tool_use";
                rc = os_buf_append(&a->text, args, strlen(args));
            } else {
                json_decref(o);
            }
            free(args);
        }
    }
    if (rc == OS_OK && a->input == NULL) {
        rc = os_buf_append(&a->text, "echo: ", 6);
        if (rc == OS_OK)
            rc = os_buf_append(&a->text, user.data, user.len);
        if (rc == OS_OK) {
            size_t cut = sl_echo_cut((const char *)a->text.data, a->text.len, r->cap);
            a->stop = cut < a->text.len ? "max_tokens" : "end_turn";
            a->text.len = cut;
            a->completion = sl_echo_tokens((const char *)a->text.data, cut);
        }
    }
    os_buf_free(&user);
    return rc;
}

static os_err plan_whole(sl_echo *e, sl_echo_plan *p, const msg_req *r, const msg_ans *a)
{
    char id[SL_ECHO_ID_LEN], tid[SL_ECHO_ID_LEN];
    json_t *block;
    sl_echo_new_id(e, id, sizeof(id), "msg_");
    if (a->input != NULL) {
        sl_echo_new_id(e, tid, sizeof(tid), "toolu_");
        block = json_pack("{s:s, s:s, s:s, s:O}", "type", "tool_use", "id", tid, "name", r->tool,
                          "input", a->input);
    } else {
        block = json_pack("{s:s, s:s%}", "type", "text", "text",
                          a->text.len ? (const char *)a->text.data : "", a->text.len);
    }
    return sl_echo_plan_json(
        p, json_pack("{s:s, s:s, s:s, s:s, s:[o], s:s, s:n, s:{s:I, s:I}}", "id", id, "type",
                     "message", "role", "assistant", "model", r->model, "content", block,
                     "stop_reason", a->stop, "stop_sequence", "usage", "input_tokens",
                     (json_int_t)a->prompt, "output_tokens", (json_int_t)a->completion));
}

static os_err plan_stream(sl_echo *e, sl_echo_plan *p, const msg_req *r, const msg_ans *a)
{
    char id[SL_ECHO_ID_LEN], tid[SL_ECHO_ID_LEN];
    const char *text = (const char *)a->text.data;
    json_t *block;
    os_err rc;

    sl_echo_new_id(e, id, sizeof(id), "msg_");
    /* As the API does, message_start reports one output token already. */
    rc = sl_echo_plan_event(p, "message_start",
                            json_pack("{s:s, s:{s:s, s:s, s:s, s:[], s:s, s:n, s:n, s:{s:I, s:I}}}",
                                      "type", "message_start", "message", "id", id, "type",
                                      "message", "role", "assistant", "content", "model", r->model,
                                      "stop_reason", "stop_sequence", "usage", "input_tokens",
                                      (json_int_t)a->prompt, "output_tokens", (json_int_t)1),
                            false);
    if (a->input != NULL) {
        sl_echo_new_id(e, tid, sizeof(tid), "toolu_");
        block = json_pack("{s:s, s:s, s:s, s:{}}", "type", "tool_use", "id", tid, "name", r->tool,
                          "input");
    } else {
        block = json_pack("{s:s, s:s}", "type", "text", "text", "");
    }
    if (rc == OS_OK)
        rc = sl_echo_plan_event(p, "content_block_start",
                                json_pack("{s:s, s:I, s:o}", "type", "content_block_start", "index",
                                          (json_int_t)0, "content_block", block),
                                false);
    else
        json_decref(block);
    if (rc == OS_OK)
        rc = sl_echo_plan_event(p, "ping", json_pack("{s:s}", "type", "ping"), false);
    for (size_t off = 0; rc == OS_OK && off < a->text.len;) {
        size_t end = sl_echo_token_end(text, a->text.len, off);
        json_t *delta = a->input != NULL ? json_pack("{s:s, s:s%}", "type", "input_json_delta",
                                                     "partial_json", text + off, end - off)
                                         : json_pack("{s:s, s:s%}", "type", "text_delta", "text",
                                                     text + off, end - off);
        rc = sl_echo_plan_event(p, "content_block_delta",
                                json_pack("{s:s, s:I, s:o}", "type", "content_block_delta", "index",
                                          (json_int_t)0, "delta", delta),
                                true);
        off = end;
    }
    if (rc == OS_OK)
        rc = sl_echo_plan_event(
            p, "content_block_stop",
            json_pack("{s:s, s:I}", "type", "content_block_stop", "index", (json_int_t)0), false);
    if (rc == OS_OK)
        rc = sl_echo_plan_event(p, "message_delta",
                                json_pack("{s:s, s:{s:s, s:n}, s:{s:I}}", "type", "message_delta",
                                          "delta", "stop_reason", a->stop, "stop_sequence", "usage",
                                          "output_tokens", (json_int_t)a->completion),
                                false);
    if (rc == OS_OK)
        rc = sl_echo_plan_event(p, "message_stop", json_pack("{s:s}", "type", "message_stop"),
                                false);
    return rc;
}

void sl_echo_anthropic_messages(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_echo *e = ctx;
    sl_echo_fail fail;
    json_t *body = NULL;
    char err[OS_JSON_ERR_LEN];
    size_t len;
    msg_req r;
    msg_ans a;
    sl_echo_plan p;

    if (!sl_echo_admit(e, req, res, SL_ECHO_ANTHROPIC, true, &fail))
        return;
    /* Parse here rather than with os_http_req_json so a bad body gets Anthropic's error shape. */
    const char *raw = os_http_req_body(req, &len);
    if (os_json_parse(&body, raw, len, len, MAX_DEPTH, err, sizeof(err)) != OS_OK ||
        !json_is_object(body)) {
        json_decref(body);
        bad(res, "the request body is not a JSON object");
        return;
    }
    if (!parse_msg(&r, body, res, e)) {
        json_decref(body);
        return;
    }
    memset(&a, 0, sizeof(a));
    sl_echo_plan_init(&p, r.stream);
    os_err rc = answer_msg(&a, &r, body);
    if (rc == OS_OK)
        rc = r.stream ? plan_stream(e, &p, &r, &a) : plan_whole(e, &p, &r, &a);
    if (rc == OS_OK)
        sl_echo_send(e, res, &p, fail);
    else
        sl_echo_error(res, SL_ECHO_ANTHROPIC, 500, "api_error", "echo: cannot build the answer");
    sl_echo_plan_free(&p);
    os_buf_free(&a.text);
    json_decref(a.input);
    json_decref(body);
}
