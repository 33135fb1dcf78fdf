/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upstream adapter's knowledge of OpenAI's and Anthropic's wire formats (upstream_internal.h),
 * apart from the transport in upstream.c: the body sent (the buyer's, with model, output cap and
 * stream settings forced and OpenAI streams asked for usage), where usage sits in a whole answer
 * and in stream events (OpenAI's final usage chunk; Anthropic's message_start and message_delta),
 * which deltas count as output when a stream breaks before usage came, the end markers ([DONE],
 * message_stop), and which error bodies may be handed back: none that could show the seller's key.
 */
#include "upstream_internal.h"

#include <stdio.h>
#include <string.h>

#include "openseed/json.h"

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- the request ----------------------------------------------------------------------------- */

static int set_int(json_t *o, const char *k, uint64_t v)
{
    return json_object_set_new(o, k, json_integer((json_int_t)v));
}

os_err sl_upstream_body_(char **out, size_t *len, const sl_upstream_req *req, sl_upstream_wire api)
{
    json_t *b = json_deep_copy(req->body);
    int bad = b == NULL;

    *out = NULL;
    bad = bad || json_object_set_new(b, "model", json_string(req->model)) != 0;
    if (!bad && api != SL_UPSTREAM_WIRE_EMBEDDINGS) {
        bad = set_int(b, "max_tokens", req->max_tokens) != 0;
        if (!bad && api == SL_UPSTREAM_WIRE_CHAT) {
            const json_t *mct = json_object_get(b, "max_completion_tokens");
            if (mct != NULL && !json_is_null(mct))
                bad = set_int(b, "max_completion_tokens", req->max_tokens) != 0;
        }
        /* the caller's flag decides how we read the answer, so the upstream must agree */
        if (!bad && (req->stream || json_object_get(b, "stream") != NULL))
            bad = json_object_set_new(b, "stream", json_boolean(req->stream)) != 0;
        if (!bad && api == SL_UPSTREAM_WIRE_CHAT && req->stream) {
            json_t *so = json_object_get(b, "stream_options");
            if (!json_is_object(so)) {
                so = json_object();
                bad = json_object_set_new(b, "stream_options", so) != 0;
            }
            bad = bad || json_object_set_new(so, "include_usage", json_true()) != 0;
        }
    }
    if (!bad)
        *out = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (*out == NULL)
        return OS_ERR_NOMEM;
    *len = strlen(*out);
    return OS_OK;
}

/* ---- reading answers ------------------------------------------------------------------------- */

/* A non-negative JSON integer field. */
static bool get_count(const json_t *o, const char *k, uint64_t *v)
{
    const json_t *x = json_object_get(o, k);
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return false;
    *v = (uint64_t)json_integer_value(x);
    return true;
}

static bool nonempty_str(const json_t *x)
{
    return json_is_string(x) && json_string_length(x) > 0;
}

/* Whether one choice's delta carries output (text, refusal, reasoning or tool arguments). */
static bool delta_has_output(const json_t *delta)
{
    const json_t *calls = json_object_get(delta, "tool_calls"), *tc;
    size_t i;

    if (nonempty_str(json_object_get(delta, "content")) ||
        nonempty_str(json_object_get(delta, "refusal")) ||
        nonempty_str(json_object_get(delta, "reasoning_content")) ||
        nonempty_str(json_object_get(delta, "reasoning")))
        return true;
    json_array_foreach(calls, i, tc)
    {
        if (nonempty_str(json_object_get(json_object_get(tc, "function"), "arguments")))
            return true;
    }
    return false;
}

/* Anthropic's input count: input_tokens plus the cache reads and writes (all of them prompt). */
static bool anthropic_input(const json_t *usage, uint64_t *in, uint64_t *cached)
{
    uint64_t base, cr = 0, cw = 0;
    if (!get_count(usage, "input_tokens", &base))
        return false;
    (void)get_count(usage, "cache_read_input_tokens", &cr);
    (void)get_count(usage, "cache_creation_input_tokens", &cw);
    *in = sat_add(sat_add(base, cr), cw);
    *cached = cr;
    return true;
}

/* OpenAI's usage object into the tally. */
static void openai_usage(sl_upstream_tally *t, sl_upstream_wire api, const json_t *usage)
{
    uint64_t v;
    if (get_count(usage, "prompt_tokens", &v)) {
        t->in = v;
        t->in_seen = true;
        t->cached = 0;
        if (get_count(json_object_get(usage, "prompt_tokens_details"), "cached_tokens", &v))
            t->cached = v;
    }
    if (get_count(usage, "completion_tokens", &v)) {
        t->out = v;
        t->out_seen = true;
    } else if (t->in_seen && api == SL_UPSTREAM_WIRE_EMBEDDINGS) {
        t->out = 0;
        t->out_seen = true;
    }
}

void sl_upstream_event_(sl_upstream_tally *t, sl_upstream_wire api, const char *data, size_t len)
{
    char jerr[OS_JSON_ERR_LEN];
    json_t *v = NULL;
    const json_t *x;
    size_t i;

    if (api != SL_UPSTREAM_WIRE_MESSAGES && len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        t->done = true;
        return;
    }
    if (os_json_parse(&v, data, len, len, SL_UPSTREAM_ANSWER_DEPTH, jerr, sizeof(jerr)) != OS_OK)
        return; /* not ours to judge: handed on as it came */
    if (api != SL_UPSTREAM_WIRE_MESSAGES) {
        if (json_is_object(json_object_get(v, "usage")))
            openai_usage(t, api, json_object_get(v, "usage"));
        json_array_foreach(json_object_get(v, "choices"), i, x)
        {
            if (delta_has_output(json_object_get(x, "delta")))
                t->counted++;
        }
    } else {
        const char *type = json_string_value(json_object_get(v, "type"));
        const json_t *usage;
        uint64_t n;
        if (type == NULL) {
        } else if (strcmp(type, "message_start") == 0) {
            usage = json_object_get(json_object_get(v, "message"), "usage");
            if (anthropic_input(usage, &t->in, &t->cached))
                t->in_seen = true;
            if (get_count(usage, "output_tokens", &n))
                t->start_out = n;
        } else if (strcmp(type, "content_block_delta") == 0) {
            t->counted++;
        } else if (strcmp(type, "message_delta") == 0) {
            usage = json_object_get(v, "usage");
            if (get_count(usage, "output_tokens", &n)) {
                t->out = n;
                t->out_seen = true;
            }
            /* newer API versions repeat the (final) input counts here */
            if (anthropic_input(usage, &t->in, &t->cached))
                t->in_seen = true;
        } else if (strcmp(type, "message_stop") == 0) {
            t->done = true;
        }
    }
    json_decref(v);
}

void sl_upstream_answer_usage_(sl_upstream_tally *t, sl_upstream_wire api, const json_t *answer)
{
    const json_t *usage = json_object_get(answer, "usage");

    if (api == SL_UPSTREAM_WIRE_MESSAGES) {
        if (anthropic_input(usage, &t->in, &t->cached))
            t->in_seen = true;
        if (get_count(usage, "output_tokens", &t->out))
            t->out_seen = true;
    } else if (json_is_object(usage)) {
        openai_usage(t, api, usage);
    }
}

void sl_upstream_settle_usage_(sl_upstream_result *res, const sl_upstream_tally *t, bool stream)
{
    res->input_reported = t->in_seen;
    res->usage_reported = t->in_seen && t->out_seen;
    if (t->in_seen) {
        res->usage.input_tokens = t->in;
        res->usage.cached_tokens = t->cached < t->in ? t->cached : t->in;
    }
    if (t->out_seen) {
        res->usage.output_tokens = t->out;
    } else if (stream) {
        /* message_start's output count is a floor the deltas normally pass */
        res->usage.output_tokens = t->counted > t->start_out ? t->counted : t->start_out;
    }
}

json_t *sl_upstream_parse_object_(const os_buf *b)
{
    char jerr[OS_JSON_ERR_LEN];
    json_t *v = NULL;

    if (b->len == 0 ||
        os_json_parse(&v, (const char *)b->data, b->len, b->len, SL_UPSTREAM_ANSWER_DEPTH, jerr,
                      sizeof(jerr)) != OS_OK ||
        !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* ---- error answers --------------------------------------------------------------------------- */

bool sl_upstream_holds_key_(const char *key, size_t key_len, const os_buf *b)
{
    const uint8_t *p = b->data, *end = b->data + b->len, *hit;

    if (key == NULL || b->len < key_len)
        return false;
    /* memmem is a GNU extension; error bodies are small, a first-byte scan is enough */
    while ((size_t)(end - p) >= key_len &&
           (hit = memchr(p, key[0], (size_t)(end - p) - key_len + 1)) != NULL) {
        if (memcmp(hit, key, key_len) == 0)
            return true;
        p = hit + 1;
    }
    return false;
}

static json_t *generic_error(const char *message, const char *type)
{
    return json_pack("{s:{s:s, s:s}}", "error", "message", message, "type", type);
}

json_t *sl_upstream_error_body_(long status, const os_buf *body, bool cut, const char *key,
                                size_t key_len)
{
    char msg[128];
    json_t *v;

    if (status == 401 || status == 403) {
        /* providers echo (part of) a rejected key in these answers; the buyer needs none of it */
        snprintf(msg, sizeof(msg), "the upstream refused the seller's credentials (HTTP %ld)",
                 status);
        return generic_error(msg, "upstream_auth_error");
    }
    if (sl_upstream_holds_key_(key, key_len, body)) {
        snprintf(msg, sizeof(msg), "the upstream's error answer was withheld (HTTP %ld)", status);
        return generic_error(msg, "upstream_error");
    }
    if (!cut && (v = sl_upstream_parse_object_(body)) != NULL)
        return v;
    snprintf(msg, sizeof(msg), "the upstream answered HTTP %ld", status);
    return generic_error(msg, "upstream_error");
}

const char *sl_upstream_error_type_(const json_t *body)
{
    const json_t *t = json_object_get(json_object_get(body, "error"), "type");
    const char *s = json_string_value(t);
    size_t n;

    if (s == NULL || (n = json_string_length(t)) == 0 || n > 64)
        return "";
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || s[i] == '-' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return "";
    return s;
}
