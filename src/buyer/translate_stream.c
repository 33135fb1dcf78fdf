/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stream half of translate.h: a translator fed the data of each OpenAI chat.completion.chunk
 * event that writes Anthropic's exact event sequence (message_start, content_block_start /
 * _delta / _stop per block, message_delta, message_stop), and the SSE error event of a stream that
 * failed mid-way. A chunk is checked whole before any of it is applied, and a write that fails
 * half-way rolls the output back to the last whole event and stops the translator, so a client
 * never sees a torn or out-of-order sequence.
 */
#include "translate.h"

#include <stdlib.h>
#include <string.h>

#include "openseed/json.h"
#include "openseed/sse.h"

#include "translate_internal.h"

#define CHUNK_MAX_BYTES (1u << 20)
#define MAX_PENDING_ARGS (1u << 20) /* arguments held back until a tool call's name arrives */

/* One OpenAI tool call of the stream. Its block starts once its name is known; arguments that
 * come before that wait in pending. */
typedef struct tool_slot {
    json_int_t oa_index; /* OpenAI's tool_calls[].index */
    int block;           /* the Anthropic block index, -1 before it started */
    bool closed;
    char *id;   /* OpenAI's id, NULL until given */
    char *name; /* NULL until given */
    os_buf pending;
} tool_slot;

struct by_astream {
    char *model;
    uint64_t input_hint;
    char id[BY_TR_ID_MAX];
    bool started, ended;
    os_err failed; /* a write or state failure: the stream cannot go on */
    int open;      /* the open block's index, -1 when none */
    bool open_text;
    int next;       /* the next block index */
    tool_slot *cur; /* the tool call being received */
    tool_slot tools[BY_TR_MAX_TOOL_CALLS];
    size_t ntools;
    bool had_tool;
    by_tr_finish fin;
    bool has_usage;
    uint64_t prompt, completion;
};

/* Writes one event whose data is v's compact JSON (v taken). */
static os_err emit(os_buf *out, const char *type, json_t *v)
{
    if (v == NULL)
        return OS_ERR_NOMEM;
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (s == NULL)
        return OS_ERR_NOMEM;
    os_err rc = os_sse_write(out, type, NULL, s, strlen(s));
    free(s);
    return rc;
}

static os_err emit_start(by_astream *t, os_buf *out)
{
    /* output_tokens 1 in message_start, as the API reports it */
    os_err rc = emit(out, "message_start",
                     json_pack("{s:s, s:{s:s, s:s, s:s, s:[], s:s, s:n, s:n, s:{s:o, s:I}}}",
                               "type", "message_start", "message", "id", t->id, "type", "message",
                               "role", "assistant", "content", "model", t->model, "stop_reason",
                               "stop_sequence", "usage", "input_tokens",
                               os_json_u64(t->has_usage ? t->prompt : t->input_hint),
                               "output_tokens", (json_int_t)1));
    if (rc == OS_OK)
        t->started = true;
    return rc;
}

static os_err close_block(by_astream *t, os_buf *out)
{
    if (t->open < 0)
        return OS_OK;
    os_err rc = emit(out, "content_block_stop",
                     json_pack("{s:s, s:i}", "type", "content_block_stop", "index", t->open));
    if (rc != OS_OK)
        return rc;
    for (size_t i = 0; !t->open_text && i < t->ntools; i++)
        if (t->tools[i].block == t->open)
            t->tools[i].closed = true;
    t->open = -1;
    return OS_OK;
}

/* Opens a block (closing the open one); block is taken. */
static os_err open_block(by_astream *t, os_buf *out, json_t *block, bool text)
{
    os_err rc = close_block(t, out);
    if (rc != OS_OK) {
        json_decref(block);
        return rc;
    }
    rc = emit(out, "content_block_start",
              json_pack("{s:s, s:i, s:o}", "type", "content_block_start", "index", t->next,
                        "content_block", block));
    if (rc != OS_OK)
        return rc;
    t->open = t->next++;
    t->open_text = text;
    return OS_OK;
}

static os_err emit_delta(by_astream *t, os_buf *out, bool text, const char *s, size_t len)
{
    return emit(out, "content_block_delta",
                json_pack("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta", "index",
                          t->open, "delta", "type", text ? "text_delta" : "input_json_delta",
                          text ? "text" : "partial_json", s, len));
}

static os_err feed_text(by_astream *t, os_buf *out, const char *s, size_t len)
{
    os_err rc = OS_OK;
    if (len == 0)
        return OS_OK;
    if (t->open < 0 || !t->open_text)
        rc = open_block(t, out, json_pack("{s:s, s:s}", "type", "text", "text", ""), true);
    return rc == OS_OK ? emit_delta(t, out, true, s, len) : rc;
}

static tool_slot *find_tool(by_astream *t, json_int_t idx)
{
    for (size_t i = 0; i < t->ntools; i++)
        if (t->tools[i].oa_index == idx)
            return &t->tools[i];
    return NULL;
}

/* One element of delta.tool_calls (already checked). */
static os_err feed_tool(by_astream *t, os_buf *out, const json_t *tc)
{
    const json_t *jidx = json_object_get(tc, "index"), *id = json_object_get(tc, "id");
    const json_t *fn = json_object_get(tc, "function");
    const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
    tool_slot *s;
    os_err rc;

    if (json_is_integer(jidx))
        s = find_tool(t, json_integer_value(jidx));
    else /* no index (some servers): a call with an id is a new one, else the current one */
        s = json_string_length(id) > 0 ? NULL : t->cur;
    if (s == NULL) {
        if (t->ntools == BY_TR_MAX_TOOL_CALLS)
            return OS_ERR_TOOBIG;
        s = &t->tools[t->ntools++];
        s->oa_index = json_is_integer(jidx) ? json_integer_value(jidx) : -(json_int_t)t->ntools;
        s->block = -1;
        os_buf_init(&s->pending, MAX_PENDING_ARGS);
    }
    if (s->closed) /* Anthropic blocks cannot be reopened: OpenAI does not interleave calls */
        return OS_ERR_INVALID;
    t->cur = s;
    if (s->block < 0) {
        if (json_string_length(id) > 0 && s->id == NULL &&
            (s->id = strdup(json_string_value(id))) == NULL)
            return OS_ERR_NOMEM;
        if (json_string_length(name) > 0 && s->name == NULL &&
            (s->name = strdup(json_string_value(name))) == NULL)
            return OS_ERR_NOMEM;
    }
    if (s->block < 0 && json_string_length(args) > 0 &&
        (rc = os_buf_append(&s->pending, json_string_value(args), json_string_length(args))) !=
            OS_OK)
        return rc;
    if (s->block < 0 && s->name != NULL) {
        char tid[BY_TR_ID_MAX];
        if (s->id == NULL)
            by_translate_new_id_(tid, "toolu_");
        rc = open_block(t, out,
                        json_pack("{s:s, s:s, s:s, s:{}}", "type", "tool_use", "id",
                                  s->id ? s->id : tid, "name", s->name, "input"),
                        false);
        if (rc != OS_OK)
            return rc;
        s->block = t->open;
        t->had_tool = true;
        if (s->pending.len > 0) {
            rc = emit_delta(t, out, false, (const char *)s->pending.data, s->pending.len);
            os_buf_free(&s->pending);
        }
        return rc;
    }
    if (s->block >= 0 && json_string_length(args) > 0)
        return emit_delta(t, out, false, json_string_value(args), json_string_length(args));
    return OS_OK;
}

static bool opt_string(const json_t *o, const char *k, size_t max)
{
    const json_t *v = json_object_get(o, k);
    return v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) <= max);
}

/* Checks every field the translator reads, so that applying a chunk cannot stop half-way over
 * bad input. */
static bool chunk_ok(const json_t *c)
{
    const json_t *choices = json_object_get(c, "choices"), *ch, *u = json_object_get(c, "usage");
    bool has = false;
    uint64_t a, b;
    size_t i, j;

    if (!json_is_object(c) || json_object_get(c, "error") != NULL ||
        (choices != NULL && !json_is_array(choices)) || !by_translate_read_usage_(u, &has, &a, &b))
        return false;
    json_array_foreach(choices, i, ch)
    {
        const json_t *d = json_object_get(ch, "delta"), *tcs = json_object_get(d, "tool_calls");
        const json_t *idx = json_object_get(ch, "index"), *tc;
        if (!json_is_object(ch) || (idx != NULL && !json_is_integer(idx)) ||
            !opt_string(ch, "finish_reason", 64) ||
            (d != NULL && !json_is_null(d) && !json_is_object(d)) ||
            !opt_string(d, "content", BY_TR_MAX_TEXT) ||
            !opt_string(d, "refusal", BY_TR_MAX_TEXT) ||
            (tcs != NULL && !json_is_null(tcs) && !json_is_array(tcs)))
            return false;
        json_array_foreach(tcs, j, tc)
        {
            const json_t *fn = json_object_get(tc, "function");
            const json_t *ti = json_object_get(tc, "index");
            if (!json_is_object(tc) || (ti != NULL && !json_is_integer(ti)) ||
                !opt_string(tc, "id", BY_TR_MAX_NAME) ||
                (fn != NULL && !json_is_null(fn) && !json_is_object(fn)) ||
                !opt_string(fn, "name", BY_TR_MAX_NAME) ||
                !opt_string(fn, "arguments", BY_TR_MAX_TEXT))
                return false;
        }
    }
    return true;
}

static os_err end_stream(by_astream *t, os_buf *out, const os_infer_usage *u)
{
    json_t *usage;
    os_err rc = OS_OK;

    if (!t->started)
        rc = emit_start(t, out);
    if (rc == OS_OK)
        rc = close_block(t, out);
    if (rc != OS_OK)
        return rc;
    if (u != NULL || t->has_usage)
        usage = json_pack("{s:o, s:o}", "input_tokens",
                          os_json_u64(u != NULL ? u->input_tokens : t->prompt), "output_tokens",
                          os_json_u64(u != NULL ? u->output_tokens : t->completion));
    else
        usage = json_pack("{s:i}", "output_tokens", 0);
    rc = emit(out, "message_delta",
              json_pack("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta", "delta", "stop_reason",
                        by_translate_stop_reason_(t->fin, t->had_tool), "stop_sequence", "usage",
                        usage));
    if (rc == OS_OK)
        rc = emit(out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    if (rc == OS_OK)
        t->ended = true;
    return rc;
}

static os_err apply_chunk(by_astream *t, os_buf *out, const json_t *c)
{
    const json_t *choices = json_object_get(c, "choices"), *ch;
    os_err rc = OS_OK;
    size_t i, j;

    /* usage first: a server that reports it on every chunk gives message_start the real count */
    (void)by_translate_read_usage_(json_object_get(c, "usage"), &t->has_usage, &t->prompt,
                                   &t->completion);
    if (!t->started && (rc = emit_start(t, out)) != OS_OK)
        return rc;
    json_array_foreach(choices, i, ch)
    {
        const json_t *idx = json_object_get(ch, "index"), *d = json_object_get(ch, "delta");
        const json_t *text = json_object_get(d, "content"), *tc;
        const char *fin = json_string_value(json_object_get(ch, "finish_reason"));
        if (idx != NULL && json_integer_value(idx) != 0)
            continue; /* Anthropic has one answer: n > 1 choices beyond the first are dropped */
        if (json_string_length(text) == 0)
            text = json_object_get(d, "refusal");
        if ((rc = feed_text(t, out, json_string_value(text), json_string_length(text))) != OS_OK)
            return rc;
        json_array_foreach(json_object_get(d, "tool_calls"), j, tc)
        {
            if ((rc = feed_tool(t, out, tc)) != OS_OK)
                return rc;
        }
        if (fin != NULL) {
            t->fin = by_translate_finish_parse_(fin);
            if (t->fin == BY_TR_FIN_NONE)
                t->fin = BY_TR_FIN_STOP;
            if ((rc = close_block(t, out)) != OS_OK)
                return rc;
        }
    }
    return OS_OK;
}

/* After a failed step part of its events went out of the state machine: keep out event-aligned
 * (cut back to mark) and refuse what follows. */
static os_err settle(by_astream *t, os_buf *out, size_t mark, os_err rc)
{
    if (rc != OS_OK) {
        out->len = mark;
        t->failed = rc;
    }
    return rc;
}

os_err by_astream_new(by_astream **out, const char *model, uint64_t input_tokens)
{
    by_astream *t;
    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return OS_ERR_NOMEM;
    if ((t->model = strdup(model != NULL ? model : "")) == NULL) {
        free(t);
        return OS_ERR_NOMEM;
    }
    t->input_hint = input_tokens;
    t->open = -1;
    by_translate_new_id_(t->id, "msg_");
    *out = t;
    return OS_OK;
}

os_err by_astream_feed(by_astream *t, os_buf *out, const char *data, size_t len)
{
    json_t *c = NULL;
    size_t mark;
    os_err rc;

    if (t == NULL || out == NULL || (data == NULL && len > 0))
        return OS_ERR_INVALID;
    if (t->failed != OS_OK)
        return t->failed;
    if (t->ended)
        return OS_OK; /* nothing follows message_stop */
    mark = out->len;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        rc = end_stream(t, out, NULL);
    } else {
        if (os_json_parse(&c, data, len, CHUNK_MAX_BYTES, BY_TR_MAX_DEPTH, NULL, 0) != OS_OK ||
            !chunk_ok(c)) {
            json_decref(c);
            return OS_ERR_INVALID; /* the stream is as it was: the caller decides */
        }
        rc = apply_chunk(t, out, c);
        json_decref(c);
    }
    return settle(t, out, mark, rc);
}

os_err by_astream_finish(by_astream *t, os_buf *out, const os_infer_usage *u)
{
    if (t == NULL || out == NULL)
        return OS_ERR_INVALID;
    if (t->ended)
        return OS_OK;
    if (t->failed != OS_OK)
        return t->failed;
    size_t mark = out->len;
    return settle(t, out, mark, end_stream(t, out, u));
}

bool by_astream_done(const by_astream *t)
{
    return t != NULL && t->ended;
}

void by_astream_free(by_astream *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->ntools; i++) {
        free(t->tools[i].id);
        free(t->tools[i].name);
        os_buf_free(&t->tools[i].pending);
    }
    free(t->model);
    free(t);
}

/* ---- error events ---------------------------------------------------------------------------- */

os_err by_stream_error_event(os_buf *out, bool anthropic, const char *type, const char *message)
{
    if (out == NULL)
        return OS_ERR_INVALID;
    return emit(out, anthropic ? "error" : NULL,
                anthropic ? by_anthropic_error(type, message)
                          : by_openai_error(type, NULL, message));
}
