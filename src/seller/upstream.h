/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's upstream adapters: one call to the model server behind the seller, in the wire
 * format of its API, for one buyer request that already passed the payment check.
 *
 * - APIs: "openai.chat" (POST {base}/v1/chat/completions), "openai.embeddings" (POST
 *   {base}/v1/embeddings) for upstream kinds openai and ollama (Ollama's OpenAI-compatible /v1),
 *   and "anthropic.messages" (POST {base}/v1/messages, anthropic-version 2023-06-01) for kind
 *   anthropic. base is the configured URL without a trailing "/v1" (one is accepted and dropped).
 *   A request for an API the upstream kind does not speak is OS_ERR_UNSUPPORTED.
 * - The body sent is the buyer's body with "model" replaced by the offering's model and the output
 *   cap forced: max_tokens (and for OpenAI max_completion_tokens when the buyer used it) set to the
 *   cap the estimate assumed. Streams ask for usage (OpenAI: stream_options.include_usage).
 * - Nothing of the buyer's HTTP request reaches the upstream: the headers are only Content-Type,
 *   Accept, the API key (Authorization: Bearer, or x-api-key + anthropic-version) and User-Agent.
 *   The key never appears in errors, logs or results.
 * - Streams: the SSE body is parsed as it arrives (events split across reads, several in one read)
 *   and each event handed to on_event as soon as it is complete, re-serialised with os_sse_write
 *   (event type + data). Usage is taken from the events (OpenAI: the final chunk's usage; Anthropic:
 *   message_start and message_delta); output tokens are also counted as content/tool deltas, the
 *   count used when the stream ends before the upstream reported usage.
 */
#ifndef OPENSEED_SELLER_UPSTREAM_H
#define OPENSEED_SELLER_UPSTREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/http_client.h"
#include "openseed/infer.h"
#include "openseed/log.h"

typedef struct sl_upstream sl_upstream;

typedef enum sl_upstream_kind {
    SL_UPSTREAM_KIND_OPENAI = 0,
    SL_UPSTREAM_KIND_ANTHROPIC = 1,
    SL_UPSTREAM_KIND_OLLAMA = 2,
} sl_upstream_kind;

typedef struct sl_upstream_config {
    const char *base_url;     /* http(s)://host[:port][/prefix]; copied */
    sl_upstream_kind kind;
    const char *api_key;      /* NULL or "" = none; copied into memory wiped on free */
    long connect_timeout_ms;  /* 0 = 5000 */
    long first_byte_timeout_ms; /* a stream's first byte must arrive within this; 0 = 60000 */
    long idle_timeout_ms;     /* a stream silent this long is cut; 0 = 60000 */
    /* (a whole, non-streamed answer is bounded by timeout_ms alone: it arrives only when done) */
    long timeout_ms;          /* a whole call; 0 = 600000 */
    size_t max_response;      /* cap on a non-streamed answer; 0 = 16 MiB */
    size_t max_event;         /* cap on one SSE event; 0 = 256 KiB (the chunk cap) */
    unsigned pool_size;       /* idle keep-alive connections, at most OS_HTTP_CLIENT_POOL_MAX;
                                 0 = 8 */
    const os_logger *log;     /* borrowed; NULL = default */
} sl_upstream_config;

OS_WUR os_err sl_upstream_new(sl_upstream **out, const sl_upstream_config *cfg);
void sl_upstream_free(sl_upstream *u);
/* The APIs (OS_API_* bits of record.h) this upstream kind speaks. */
unsigned sl_upstream_apis(const sl_upstream *u);

/* Called once the upstream answered 2xx to a streamed request, before the first event. Non-OS_OK
 * aborts the call. */
typedef os_err (*sl_upstream_start_cb)(void *ud, long status);
/* Called per complete SSE event (text as os_sse_write writes it). Non-OS_OK aborts the call
 * (the client went away): the transfer is cut at once, which cancels the upstream's work. */
typedef os_err (*sl_upstream_event_cb)(void *ud, const char *event, size_t len);

typedef struct sl_upstream_req {
    const char *api;      /* "openai.chat", "openai.embeddings", "anthropic.messages" */
    const char *model;    /* the offering's model, written into the body */
    const json_t *body;   /* the buyer's body (not modified) */
    uint64_t max_tokens;  /* the output cap to force (0 for embeddings) */
    bool stream;          /* body.stream is true */
    sl_upstream_start_cb on_start;
    sl_upstream_event_cb on_event;
    void *ud;
    const atomic_int *abort; /* optional: set to cancel from another thread */
} sl_upstream_req;

typedef enum sl_upstream_outcome {
    SL_UPSTREAM_OK = 0,        /* 2xx and a complete answer */
    SL_UPSTREAM_HTTP_ERROR,    /* a non-2xx answer (status and body in the result) */
    SL_UPSTREAM_UNREACHABLE,   /* nothing came back: connect failure, timeout before headers */
    SL_UPSTREAM_BROKEN,        /* a stream started and then broke off (or a bad answer) */
    SL_UPSTREAM_CANCELLED,     /* on_event/on_start refused or abort was set */
} sl_upstream_outcome;

typedef struct sl_upstream_result {
    sl_upstream_outcome outcome;
    long status;           /* the upstream's HTTP status, 0 when none */
    json_t *body;          /* non-stream answers and error answers: the upstream's JSON, owned;
                              a non-JSON error body becomes {"error":{"message":…,"type":…}} */
    os_infer_usage usage;  /* as reported, or counted (see usage_reported) */
    bool usage_reported;   /* the upstream reported usage itself */
    bool input_reported;   /* the input count is the upstream's (Anthropic message_start) */
    uint64_t events;       /* stream events forwarded */
    uint64_t ttft_ms;      /* call start to the first event / the answer */
    uint64_t retry_after_s; /* from a 429/503's Retry-After, 0 if none */
    char error[256];       /* one line, safe to log and to show (no key, no URL path) */
} sl_upstream_result;

/* One call. res is filled in every case (free res->body with json_decref). OS_OK whenever the
 * call ran, whatever the outcome; OS_ERR_UNSUPPORTED for an API this upstream does not speak,
 * OS_ERR_INVALID for a bad request, OS_ERR_NOMEM. */
OS_WUR os_err sl_upstream_call(sl_upstream *u, sl_upstream_result *res, const sl_upstream_req *req);

#endif
