/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the buyer's Anthropic <-> OpenAI translation (src/buyer/translate.h) of
 * bodies it did not write. Three inputs reach it: a client's Anthropic Messages request (parsed
 * and pre-checked as the gateway does, then by_anthropic_request_to_openai and the estimate the
 * relay computes on the result), a seller's OpenAI chat completion (the body of a whole-response
 * plaintext; by_openai_response_to_anthropic), and a seller's OpenAI SSE stream (split into events
 * by the relay's os_sse parser, each event's data fed to by_astream_feed until one is refused,
 * then by_astream_finish as the relay's stream_finish does). The first byte picks the input, the
 * second the client's model name and the token counts. Results must have the promised shape: an
 * object, complete SSE events, a finished stream that says so.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/buf.h"
#include "openseed/infer.h"
#include "openseed/init.h"
#include "openseed/json.h"
#include "openseed/money.h"
#include "openseed/sse.h"

#include "translate.h"

#define MAX_INPUT (1u << 20)
#define CLIENT_JSON_DEPTH 64       /* the gateway's JSON_DEPTH */
#define RELAY_SCRATCH (4u << 20)   /* relay.c's scratch buffer cap */
#define RELAY_SSE_MAX (256u << 10) /* relay.c's os_sse_parser_new caps */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 300 bytes: over the translator's 256-byte cap on names. */
#define LONG_MODEL                                                                                 \
    "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm" \
    "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm" \
    "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm" \
    "mmmmmmmmmmmm"
static const char *const models[4] = {"claude-sonnet-4", NULL, "", LONG_MODEL};
static const os_pricing pricing = {100000, 300000, 50000};

/* Complete SSE events, or nothing. */
static void check_sse(const os_buf *b)
{
    if (b->len > 0 && (b->len < 2 || b->data[b->len - 1] != '\n' || b->data[b->len - 2] != '\n'))
        abort();
}

/* gateway.c's client_route for /v1/messages, then relay.c's translation and estimate. */
static void request(const char *s, size_t n)
{
    char err[160];
    json_t *body = NULL, *inner = NULL;
    os_estimate est;
    os_err rc;

    err[0] = '\0';
    if (os_json_parse(&body, s, n, n, CLIENT_JSON_DEPTH, NULL, 0) != OS_OK)
        return;
    if (!json_is_object(body) || !json_is_integer(json_object_get(body, "max_tokens")) ||
        !json_is_array(json_object_get(body, "messages")))
        goto out;
    rc = by_anthropic_request_to_openai(&inner, body, err, sizeof(err));
    if (memchr(err, '\0', sizeof(err)) == NULL)
        abort();
    if (rc != OS_OK) {
        if (inner != NULL || (rc != OS_ERR_INVALID && rc != OS_ERR_UNSUPPORTED &&
                              rc != OS_ERR_NOMEM && rc != OS_ERR_TOOBIG))
            abort();
        goto out;
    }
    if (!json_is_object(inner) || !json_is_array(json_object_get(inner, "messages")))
        abort();
    (void)os_estimate_request(&est, "openai.chat", inner, &pricing, 4096);
out:
    json_decref(inner);
    json_decref(body);
}

/* relay.c: a 200 whole response's body (one level inside the plaintext, so 63 deep). */
static void response(const char *s, size_t n, const char *model)
{
    json_t *completion = NULL, *answer = NULL;

    if (os_json_parse(&completion, s, n, OS_INFER_MAX_RESPONSE, OS_INFER_JSON_DEPTH - 1, NULL,
                      0) != OS_OK)
        return;
    if (by_openai_response_to_anthropic(&answer, completion, model) == OS_OK) {
        const char *type = json_string_value(json_object_get(answer, "type"));
        if (!json_is_object(answer) || type == NULL || strcmp(type, "message") != 0 ||
            !json_is_array(json_object_get(answer, "content")))
            abort();
    } else if (answer != NULL) {
        abort();
    }
    json_decref(answer);
    json_decref(completion);
}

typedef struct stream_ctx {
    by_astream *t;
    os_buf scratch;
} stream_ctx;

/* relay.c's sse_data_cb while translating. */
static os_err on_sse(void *ctx, const os_sse_event *ev)
{
    stream_ctx *c = ctx;

    c->scratch.len = 0;
    if (by_astream_feed(c->t, &c->scratch, ev->data, ev->data_len) != OS_OK)
        return OS_ERR_INVALID;
    check_sse(&c->scratch);
    return OS_OK;
}

static void stream(const char *s, size_t n, uint8_t sel)
{
    stream_ctx c;
    os_sse_parser *p = NULL;
    os_infer_usage u = {1000, 100, 50};

    memset(&c, 0, sizeof(c));
    os_buf_init(&c.scratch, RELAY_SCRATCH);
    if (by_astream_new(&c.t, models[sel & 3], (sel & 4) ? UINT64_MAX : 12) != OS_OK ||
        os_sse_parser_new(&p, RELAY_SSE_MAX, RELAY_SSE_MAX, on_sse, &c) != OS_OK)
        goto out;
    (void)os_sse_feed(p, s, n);
    /* stream_finish: the closing events unless the translator already ended */
    if (!by_astream_done(c.t)) {
        c.scratch.len = 0;
        if (by_astream_finish(c.t, &c.scratch, (sel & 8) ? &u : NULL) == OS_OK) {
            check_sse(&c.scratch);
            if (!by_astream_done(c.t))
                abort();
        }
    }
out:
    os_sse_parser_free(p);
    by_astream_free(c.t);
    os_buf_free(&c.scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s;
    size_t n;

    if (size < 2 || size > MAX_INPUT)
        return 0;
    if (os_init() != OS_OK) /* ids come from libsodium's randombytes */
        abort();
    s = (const char *)data + 2;
    n = size - 2;
    switch (data[0] % 3) {
    case 0:
        request(s, n);
        break;
    case 1:
        response(s, n, models[data[1] & 3]);
        break;
    default:
        stream(s, n, data[1]);
        break;
    }
    return 0;
}
