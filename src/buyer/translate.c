/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Translation between Anthropic's Messages API and OpenAI's chat completions (translate.h), for an
 * Anthropic client served by a seller that only speaks openai.chat: the request going out, the
 * whole answer coming back, and the error bodies of both APIs (translate_stream.c turns a stream's
 * chunks into Anthropic's events). Each input is checked before anything is built from it, so bad
 * input is an error with a reason and never a half-translated body. No I/O, no global state: ids
 * come from libsodium's randombytes.
 */
#include "translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "openseed/json.h"

#include "translate_internal.h"

/* Bounds on what a request may hold (its body is already capped in bytes by the gateway). */
#define MAX_MESSAGES 100000
#define MAX_BLOCKS 10000
#define MAX_TOOLS 1024
#define MAX_STOP 64

#define ID_RAND_LEN 24

/* ---- small helpers --------------------------------------------------------------------------- */

void by_translate_new_id_(char out[BY_TR_ID_MAX], const char *prefix)
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    for (size_t i = 0; i < ID_RAND_LEN; i++)
        out[n + i] = b62[randombytes_uniform(62)];
    out[n + ID_RAND_LEN] = '\0';
}

static bool streq(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* A JSON string of s with bytes that are not valid UTF-8 turned to '?' (a reason cut short
 * mid-character must still make an error body); NULL s is "". NULL on no memory. */
static json_t *clean_string(const char *s)
{
    char *d;
    json_t *v;

    if (s == NULL)
        return json_string("");
    if ((d = os_utf8_sanitize(s)) == NULL)
        return NULL;
    v = json_string(d);
    free(d);
    return v;
}

/* ---- request: Anthropic -> OpenAI ------------------------------------------------------------ */

typedef enum blk_kind { BLK_TEXT, BLK_TOOL_USE, BLK_TOOL_RESULT, BLK_THINKING } blk_kind;

static os_err nomem(char *err, size_t errcap)
{
    return os_errf(err, errcap, OS_ERR_NOMEM, "out of memory");
}

/* Classifies a content block; refuses blocks that cannot be carried. */
static os_err block_kind(blk_kind *out, const json_t *b, const char *where, char *err,
                         size_t errcap)
{
    const json_t *type = json_object_get(b, "type");
    const char *t;

    if (!json_is_object(b))
        return os_errf(err, errcap, OS_ERR_INVALID, "%s: must be a JSON object", where);
    if (!json_is_string(type))
        return os_errf(err, errcap, OS_ERR_INVALID, "%s: field \"type\" must be a string", where);
    t = json_string_value(type);
    if (strcmp(t, "text") == 0)
        *out = BLK_TEXT;
    else if (strcmp(t, "tool_use") == 0)
        *out = BLK_TOOL_USE;
    else if (strcmp(t, "tool_result") == 0)
        *out = BLK_TOOL_RESULT;
    else if (strcmp(t, "thinking") == 0 || strcmp(t, "redacted_thinking") == 0)
        *out = BLK_THINKING;
    else if (strcmp(t, "image") == 0 || strcmp(t, "document") == 0)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "%s: image and document blocks are not supported by this seller", where);
    else
        /* Anthropic keeps adding block types (server tool results, search results, ...): valid
         * requests that an OpenAI seller cannot carry. */
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "%s: this content block type is not supported by this seller", where);
    return OS_OK;
}

/* Appends a text block's text to buf. */
static os_err add_text(os_buf *buf, const json_t *b, const char *where, char *err, size_t errcap)
{
    const json_t *text = json_object_get(b, "text");
    if (!json_is_string(text))
        return os_errf(err, errcap, OS_ERR_INVALID, "%s: field \"text\" must be a string", where);
    os_err rc = os_buf_append(buf, json_string_value(text), json_string_length(text));
    return rc == OS_OK ? OS_OK : os_errf(err, errcap, rc, "%s: text too large", where);
}

static json_t *buf_string(const os_buf *b)
{
    return json_stringn(b->len ? (const char *)b->data : "", b->len);
}

/* A string, or an array of text blocks concatenated (system prompts, tool results). */
static os_err text_content(json_t **out, const json_t *c, bool empty_ok, const char *where,
                           char *err, size_t errcap)
{
    char w[192];
    const json_t *b;
    blk_kind k;
    size_t i;
    os_buf buf;
    os_err rc = OS_OK;

    if ((c == NULL || json_is_null(c)) && empty_ok) {
        *out = json_string("");
        return *out != NULL ? OS_OK : nomem(err, errcap);
    }
    if (json_is_string(c)) {
        *out = json_stringn(json_string_value(c), json_string_length(c));
        return *out != NULL ? OS_OK : nomem(err, errcap);
    }
    if (!json_is_array(c) || json_array_size(c) > MAX_BLOCKS)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%s: must be a string or an array of at most %d text blocks", where,
                       MAX_BLOCKS);
    os_buf_init(&buf, BY_TR_MAX_TEXT);
    json_array_foreach(c, i, b)
    {
        snprintf(w, sizeof(w), "%s[%zu]", where, i);
        rc = block_kind(&k, b, w, err, errcap);
        if (rc == OS_OK && k != BLK_TEXT)
            rc = os_errf(err, errcap, OS_ERR_INVALID, "%s: only text blocks are allowed here", w);
        if (rc == OS_OK)
            rc = add_text(&buf, b, w, err, errcap);
        if (rc != OS_OK)
            break;
    }
    if (rc == OS_OK && (*out = buf_string(&buf)) == NULL)
        rc = nomem(err, errcap);
    os_buf_free(&buf);
    return rc;
}

/* Appends {"role", "content"} (content taken) to msgs. */
static os_err push_msg(json_t *msgs, const char *role, json_t *content, char *err, size_t errcap)
{
    json_t *m = json_object();
    if (m == NULL || json_array_append_new(msgs, m) != 0) {
        json_decref(content);
        return nomem(err, errcap);
    }
    if (!os_json_put(m, "role", json_string(role)) || !os_json_put(m, "content", content))
        return nomem(err, errcap);
    return OS_OK;
}

/* A tool_use block as an OpenAI tool call. */
static os_err tool_call(json_t *calls, const json_t *b, const char *where, char *err, size_t errcap)
{
    const char *id, *name;
    const json_t *input = json_object_get(b, "input");
    char reason[OS_JSON_ERR_LEN];
    os_err rc;

    if ((rc = os_json_get_str(&id, b, "id", BY_TR_MAX_NAME, reason, sizeof(reason))) != OS_OK ||
        (rc = os_json_get_str(&name, b, "name", BY_TR_MAX_NAME, reason, sizeof(reason))) != OS_OK)
        return os_errf(err, errcap, rc == OS_ERR_NOMEM ? rc : OS_ERR_INVALID, "%s: %s", where,
                       reason);
    if (!json_is_object(input))
        return os_errf(err, errcap, OS_ERR_INVALID, "%s: field \"input\" must be an object", where);
    char *args = json_dumps(input, JSON_COMPACT);
    if (args == NULL)
        return nomem(err, errcap);
    json_t *c = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function",
                          "name", name, "arguments", args);
    free(args);
    if (c == NULL || json_array_append_new(calls, c) != 0)
        return nomem(err, errcap);
    return OS_OK;
}

/* A tool_result block as a role "tool" message. */
static os_err tool_result(json_t *msgs, const json_t *b, const char *where, char *err,
                          size_t errcap)
{
    const char *id;
    char reason[OS_JSON_ERR_LEN], w[160];
    json_t *content;
    os_err rc;

    if ((rc = os_json_get_str(&id, b, "tool_use_id", BY_TR_MAX_NAME, reason, sizeof(reason))) !=
        OS_OK)
        return os_errf(err, errcap, rc == OS_ERR_NOMEM ? rc : OS_ERR_INVALID, "%s: %s", where,
                       reason);
    snprintf(w, sizeof(w), "%s.content", where);
    /* is_error has no OpenAI counterpart; the content itself says what went wrong. */
    if ((rc = text_content(&content, json_object_get(b, "content"), true, w, err, errcap)) != OS_OK)
        return rc;
    json_t *m =
        json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id", id, "content", content);
    if (m == NULL || json_array_append_new(msgs, m) != 0)
        return nomem(err, errcap);
    return OS_OK;
}

/* One Anthropic message as one or more OpenAI messages appended to msgs. Tool results become
 * "tool" messages, placed before the user's text because OpenAI wants them right after the
 * assistant message that made the calls (Anthropic puts them first in the user turn too). */
static os_err convert_message(json_t *msgs, const json_t *m, size_t mi, char *err, size_t errcap)
{
    char where[64], w[128];
    const json_t *content, *b;
    const char *role;
    bool user, any_text = false, any_result = false;
    json_t *calls = NULL;
    blk_kind k;
    os_buf text;
    size_t i;
    os_err rc = OS_OK;

    snprintf(where, sizeof(where), "messages[%zu]", mi);
    if (!json_is_object(m))
        return os_errf(err, errcap, OS_ERR_INVALID, "%s: must be a JSON object", where);
    role = json_string_value(json_object_get(m, "role"));
    if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%s: field \"role\" must be \"user\" or \"assistant\"", where);
    user = role[0] == 'u';
    content = json_object_get(m, "content");
    if (json_is_string(content)) {
        json_t *s = json_stringn(json_string_value(content), json_string_length(content));
        return push_msg(msgs, role, s, err, errcap);
    }
    if (!json_is_array(content) || json_array_size(content) > MAX_BLOCKS)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%s: field \"content\" must be a string or an array of at most %d blocks",
                       where, MAX_BLOCKS);
    os_buf_init(&text, BY_TR_MAX_TEXT);
    if (!user && (calls = json_array()) == NULL)
        return nomem(err, errcap);
    json_array_foreach(content, i, b)
    {
        snprintf(w, sizeof(w), "%s.content[%zu]", where, i);
        if ((rc = block_kind(&k, b, w, err, errcap)) != OS_OK)
            break;
        if (k == BLK_TEXT) {
            rc = add_text(&text, b, w, err, errcap);
            any_text = true;
        } else if (k == BLK_TOOL_USE) {
            rc = user ? os_errf(err, errcap, OS_ERR_INVALID,
                                "%s: tool_use blocks belong in assistant messages", w)
                      : tool_call(calls, b, w, err, errcap);
        } else if (k == BLK_TOOL_RESULT) {
            rc = !user ? os_errf(err, errcap, OS_ERR_INVALID,
                                 "%s: tool_result blocks belong in user messages", w)
                       : tool_result(msgs, b, w, err, errcap);
            any_result = true;
        }
        /* thinking blocks of earlier turns have no OpenAI form and are left out */
        if (rc != OS_OK)
            break;
    }
    if (rc == OS_OK && user && (any_text || !any_result))
        rc = push_msg(msgs, "user", buf_string(&text), err, errcap);
    if (rc == OS_OK && !user) {
        bool has_calls = json_array_size(calls) > 0;
        /* OpenAI: content may be null only when the message makes tool calls */
        json_t *c = any_text || !has_calls ? buf_string(&text) : json_null();
        rc = push_msg(msgs, "assistant", c, err, errcap);
        if (rc == OS_OK && has_calls &&
            !os_json_put(json_array_get(msgs, json_array_size(msgs) - 1), "tool_calls",
                         json_incref(calls)))
            rc = nomem(err, errcap);
    }
    json_decref(calls);
    os_buf_free(&text);
    return rc;
}

static os_err convert_tools(json_t *req, const json_t *body, char *err, size_t errcap)
{
    const json_t *tools = json_object_get(body, "tools"), *t, *choice;
    char w[64], reason[OS_JSON_ERR_LEN];
    json_t *out;
    size_t i;
    os_err rc;

    if (tools == NULL || json_is_null(tools))
        return OS_OK;
    if (!json_is_array(tools) || json_array_size(tools) > MAX_TOOLS)
        return os_errf(err, errcap, OS_ERR_INVALID, "tools: must be an array of at most %d tools",
                       MAX_TOOLS);
    if (json_array_size(tools) == 0)
        return OS_OK;
    if ((out = os_json_child(req, "tools", json_array())) == NULL)
        return nomem(err, errcap);
    json_array_foreach(tools, i, t)
    {
        const char *name, *desc = NULL;
        const json_t *schema = json_object_get(t, "input_schema"),
                     *type = json_object_get(t, "type");
        snprintf(w, sizeof(w), "tools[%zu]", i);
        if (!json_is_object(t))
            return os_errf(err, errcap, OS_ERR_INVALID, "%s: must be a JSON object", w);
        if (type != NULL && !json_is_null(type) && !streq(type, "custom"))
            return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                           "%s: server tools and Anthropic-defined tools are not supported by "
                           "this seller",
                           w);
        if ((rc = os_json_get_str(&name, t, "name", BY_TR_MAX_NAME, reason, sizeof(reason))) !=
                OS_OK ||
            (rc = os_json_opt_str(&desc, t, "description", BY_TR_MAX_TEXT, reason,
                                  sizeof(reason))) != OS_OK)
            return os_errf(err, errcap, OS_ERR_INVALID, "%s: %s", w, reason);
        if (!json_is_object(schema))
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "%s: field \"input_schema\" must be an object", w);
        json_t *fn, *tool = json_object();
        if (tool == NULL || json_array_append_new(out, tool) != 0)
            return nomem(err, errcap);
        if (!os_json_put(tool, "type", json_string("function")) ||
            (fn = os_json_child(tool, "function", json_object())) == NULL ||
            !os_json_put(fn, "name", json_string(name)) ||
            (desc != NULL && !os_json_put(fn, "description", json_string(desc))) ||
            !os_json_put(fn, "parameters", json_deep_copy(schema)))
            return nomem(err, errcap);
    }

    choice = json_object_get(body, "tool_choice");
    if (choice == NULL || json_is_null(choice))
        return OS_OK;
    const json_t *ct = json_object_get(choice, "type"), *dp;
    json_t *v;
    if (!json_is_object(choice) || !json_is_string(ct))
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "tool_choice: must be an object with a string field \"type\"");
    if (streq(ct, "auto")) {
        v = json_string("auto");
    } else if (streq(ct, "any")) {
        v = json_string("required");
    } else if (streq(ct, "none")) {
        v = json_string("none");
    } else if (streq(ct, "tool")) {
        const char *name;
        if (os_json_get_str(&name, choice, "name", BY_TR_MAX_NAME, reason, sizeof(reason)) != OS_OK)
            return os_errf(err, errcap, OS_ERR_INVALID, "tool_choice: %s", reason);
        v = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", name);
    } else {
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "tool_choice: type must be auto, any, tool or none");
    }
    if (!os_json_put(req, "tool_choice", v))
        return nomem(err, errcap);
    dp = json_object_get(choice, "disable_parallel_tool_use");
    if (dp != NULL && !json_is_null(dp) && !json_is_boolean(dp))
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "tool_choice: field \"disable_parallel_tool_use\" must be a boolean");
    if (json_is_true(dp) && !os_json_put(req, "parallel_tool_calls", json_false()))
        return nomem(err, errcap);
    return OS_OK;
}

/* A number field copied as is (integer or real), when present. */
static os_err copy_number(json_t *req, const json_t *body, const char *key, char *err,
                          size_t errcap)
{
    const json_t *v = json_object_get(body, key);
    if (v == NULL || json_is_null(v))
        return OS_OK;
    if (!json_is_number(v))
        return os_errf(err, errcap, OS_ERR_INVALID, "field \"%s\" must be a number", key);
    return os_json_put(req, key, json_deep_copy(v)) ? OS_OK : nomem(err, errcap);
}

static os_err convert_request(json_t *req, const json_t *body, char *err, size_t errcap)
{
    char reason[OS_JSON_ERR_LEN];
    const char *model;
    const json_t *msgs, *m, *sys, *stop, *mcp;
    json_t *out;
    uint64_t max_tokens;
    bool stream;
    size_t i;
    os_err rc;

    if (!json_is_object(body))
        return os_errf(err, errcap, OS_ERR_INVALID, "the request body must be a JSON object");
    if ((rc = os_json_get_str(&model, body, "model", BY_TR_MAX_NAME, reason, sizeof(reason))) !=
            OS_OK ||
        (rc = os_json_get_u64(&max_tokens, body, "max_tokens", reason, sizeof(reason))) != OS_OK ||
        (rc = os_json_get_array(&msgs, body, "messages", MAX_MESSAGES, reason, sizeof(reason))) !=
            OS_OK ||
        (rc = os_json_opt_bool(&stream, body, "stream", false, reason, sizeof(reason))) != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID, "%s", reason);
    if (max_tokens == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "field \"max_tokens\" must be at least 1");
    if (json_array_size(msgs) == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "field \"messages\" must not be empty");
    mcp = json_object_get(body, "mcp_servers");
    if (json_is_array(mcp) && json_array_size(mcp) > 0)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "mcp_servers are not supported by this seller");

    if (!os_json_put(req, "model", json_string(model)) ||
        (out = os_json_child(req, "messages", json_array())) == NULL)
        return nomem(err, errcap);
    sys = json_object_get(body, "system");
    if (sys != NULL && !json_is_null(sys)) {
        json_t *s;
        if ((rc = text_content(&s, sys, false, "system", err, errcap)) != OS_OK)
            return rc;
        if (json_string_length(s) == 0)
            json_decref(s);
        else if ((rc = push_msg(out, "system", s, err, errcap)) != OS_OK)
            return rc;
    }
    json_array_foreach(msgs, i, m)
    {
        if ((rc = convert_message(out, m, i, err, errcap)) != OS_OK)
            return rc;
    }

    if (!os_json_put(req, "max_tokens", os_json_u64(max_tokens)))
        return nomem(err, errcap);
    if ((rc = copy_number(req, body, "temperature", err, errcap)) != OS_OK ||
        (rc = copy_number(req, body, "top_p", err, errcap)) != OS_OK)
        return rc;
    stop = json_object_get(body, "stop_sequences");
    if (stop != NULL && !json_is_null(stop)) {
        const json_t *s;
        if (!json_is_array(stop) || json_array_size(stop) > MAX_STOP)
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "field \"stop_sequences\" must be an array of at most %d strings",
                           MAX_STOP);
        json_array_foreach(stop, i, s)
        {
            if (!json_is_string(s))
                return os_errf(err, errcap, OS_ERR_INVALID, "stop_sequences[%zu]: must be a string",
                               i);
        }
        if (json_array_size(stop) > 0 && !os_json_put(req, "stop", json_deep_copy(stop)))
            return nomem(err, errcap);
    }
    if (stream && (!os_json_put(req, "stream", json_true()) ||
                   !os_json_put(req, "stream_options", json_pack("{s:b}", "include_usage", 1))))
        return nomem(err, errcap);
    /* metadata.user_id, top_k, thinking, service_tier and the like are left behind. */
    return convert_tools(req, body, err, errcap);
}

os_err by_anthropic_request_to_openai(json_t **out, const json_t *body, char *err, size_t errcap)
{
    json_t *req;
    os_err rc;

    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output");
    *out = NULL;
    if ((req = json_object()) == NULL)
        return nomem(err, errcap);
    if ((rc = convert_request(req, body, err, errcap)) != OS_OK) {
        json_decref(req);
        return rc;
    }
    *out = req;
    return OS_OK;
}

/* ---- response: OpenAI -> Anthropic ----------------------------------------------------------- */

by_tr_finish by_translate_finish_parse_(const char *s)
{
    if (s == NULL)
        return BY_TR_FIN_NONE;
    if (strcmp(s, "stop") == 0)
        return BY_TR_FIN_STOP;
    if (strcmp(s, "length") == 0)
        return BY_TR_FIN_LENGTH;
    if (strcmp(s, "tool_calls") == 0 || strcmp(s, "function_call") == 0)
        return BY_TR_FIN_TOOLS;
    if (strcmp(s, "content_filter") == 0)
        return BY_TR_FIN_FILTER;
    return BY_TR_FIN_NONE;
}

/* Some servers answer tool calls with "stop"; Anthropic clients look for tool_use. */
const char *by_translate_stop_reason_(by_tr_finish f, bool had_tool)
{
    switch (f) {
    case BY_TR_FIN_LENGTH:
        return "max_tokens";
    case BY_TR_FIN_TOOLS:
        return "tool_use";
    case BY_TR_FIN_FILTER:
        return "refusal";
    default:
        return had_tool ? "tool_use" : "end_turn";
    }
}

/* usage.prompt_tokens / completion_tokens when present (a missing usage leaves *has false). */
bool by_translate_read_usage_(const json_t *usage, bool *has, uint64_t *in, uint64_t *outp)
{
    uint64_t p, c;
    if (usage == NULL || json_is_null(usage))
        return true;
    if (!json_is_object(usage) ||
        os_json_opt_u64(&p, usage, "prompt_tokens", 0, NULL, 0) != OS_OK ||
        os_json_opt_u64(&c, usage, "completion_tokens", 0, NULL, 0) != OS_OK)
        return false;
    *has = true;
    *in = p;
    *outp = c;
    return true;
}

/* An OpenAI tool call's arguments (JSON text, "" meaning none) as the tool_use input object. */
static json_t *parse_args(const char *args, size_t len)
{
    json_t *v = NULL;
    if (len == 0)
        return json_object();
    if (os_json_parse(&v, args, len, BY_TR_MAX_TEXT, BY_TR_MAX_DEPTH, NULL, 0) != OS_OK)
        return NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static os_err response_content(json_t *content, const json_t *msg, bool *had_tool)
{
    const json_t *text = json_object_get(msg, "content");
    const json_t *refusal = json_object_get(msg, "refusal");
    const json_t *calls = json_object_get(msg, "tool_calls"), *c;
    size_t i;

    if (text != NULL && !json_is_null(text) && !json_is_string(text))
        return OS_ERR_INVALID;
    if (json_string_length(text) == 0 && json_is_string(refusal))
        text = refusal; /* a refusal is what the model said instead */
    if (json_string_length(text) > 0 &&
        json_array_append_new(content,
                              json_pack("{s:s, s:s%}", "type", "text", "text",
                                        json_string_value(text), json_string_length(text))) != 0)
        return OS_ERR_NOMEM;
    if (calls == NULL || json_is_null(calls))
        return OS_OK;
    if (!json_is_array(calls) || json_array_size(calls) > BY_TR_MAX_TOOL_CALLS)
        return OS_ERR_INVALID;
    json_array_foreach(calls, i, c)
    {
        const json_t *fn = json_object_get(c, "function"), *id = json_object_get(c, "id");
        const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        char tid[BY_TR_ID_MAX];
        if (!json_is_object(c) || !json_is_string(name) || json_string_length(name) == 0 ||
            json_string_length(name) > BY_TR_MAX_NAME || (args != NULL && !json_is_string(args)) ||
            (id != NULL && !json_is_null(id) &&
             (!json_is_string(id) || json_string_length(id) > BY_TR_MAX_NAME)))
            return OS_ERR_INVALID;
        json_t *input = parse_args(json_string_value(args), json_string_length(args));
        if (input == NULL)
            return OS_ERR_INVALID;
        if (json_string_length(id) == 0)
            by_translate_new_id_(tid, "toolu_");
        if (json_array_append_new(content,
                                  json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id",
                                            json_string_length(id) ? json_string_value(id) : tid,
                                            "name", json_string_value(name), "input", input)) != 0)
            return OS_ERR_NOMEM;
        *had_tool = true;
    }
    return OS_OK;
}

os_err by_openai_response_to_anthropic(json_t **out, const json_t *completion, const char *model)
{
    const json_t *choices, *choice, *msg, *fin;
    bool had_tool = false, has_usage = false;
    uint64_t in = 0, outp = 0;
    char id[BY_TR_ID_MAX];
    json_t *r, *content;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    choices = json_object_get(completion, "choices");
    choice = json_array_get(choices, 0);
    msg = json_object_get(choice, "message");
    fin = json_object_get(choice, "finish_reason");
    if (!json_is_object(completion) || !json_is_object(msg) ||
        (fin != NULL && !json_is_null(fin) && !json_is_string(fin)) ||
        !by_translate_read_usage_(json_object_get(completion, "usage"), &has_usage, &in, &outp))
        return OS_ERR_INVALID;
    if (model == NULL)
        model = json_string_value(json_object_get(completion, "model"));
    if ((content = json_array()) == NULL)
        return OS_ERR_NOMEM;
    os_err rc = response_content(content, msg, &had_tool);
    if (rc != OS_OK) {
        json_decref(content);
        return rc;
    }
    by_translate_new_id_(id, "msg_");
    r = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:{s:o, s:o}}", "id", id, "type", "message", "role",
        "assistant", "model", model ? model : "", "content", content, "stop_reason",
        by_translate_stop_reason_(by_translate_finish_parse_(json_string_value(fin)), had_tool),
        "stop_sequence", "usage", "input_tokens", os_json_u64(in), "output_tokens",
        os_json_u64(outp));
    if (r == NULL)
        return OS_ERR_NOMEM;
    *out = r;
    return OS_OK;
}

/* ---- error bodies ---------------------------------------------------------------------------- */

json_t *by_openai_error(const char *type, const char *code, const char *message)
{
    json_t *e, *root = json_object();
    if (root == NULL)
        return NULL;
    if ((e = os_json_child(root, "error", json_object())) == NULL ||
        !os_json_put(e, "message", clean_string(message)) ||
        !os_json_put(e, "type", clean_string(type)) || !os_json_put(e, "param", json_null()) ||
        !os_json_put(e, "code", code != NULL ? clean_string(code) : json_null())) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *by_anthropic_error(const char *type, const char *message)
{
    json_t *e, *root = json_object();
    if (root == NULL)
        return NULL;
    if (!os_json_put(root, "type", json_string("error")) ||
        (e = os_json_child(root, "error", json_object())) == NULL ||
        !os_json_put(e, "type", clean_string(type)) ||
        !os_json_put(e, "message", clean_string(message))) {
        json_decref(root);
        return NULL;
    }
    return root;
}

const char *by_anthropic_error_type(unsigned status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 529:
        return "overloaded_error";
    default:
        /* other 4xx are the client's request; everything else is the API's fault */
        return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}
