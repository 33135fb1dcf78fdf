/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The built-in test upstream (`--upstream builtin:echo`): a small model server on loopback that
 * speaks OpenAI's chat completions and embeddings and Anthropic's Messages API in their exact wire
 * formats, streaming and not, so demos run without a model and the seller's upstream adapters are
 * tested against real bytes. Answers are deterministic functions of the request; latency, pacing,
 * failures and an API key are configurable, so tests can exercise every path the seller takes
 * against a real upstream. It is the only fake in the system.
 *
 * Usage: sl_echo_new(&e, &(sl_echo_config){.model = "echo-1"}, log); sl_echo_start(e); point an
 * OpenAI client at http://127.0.0.1:<sl_echo_port(e)>/v1 (or an Anthropic client at the same
 * origin); add header `X-Echo-Fail: 500|429|drop-mid-stream|slow-first-token|none` to inject a
 * failure into one request; sl_echo_free(e) stops it.
 *
 * Failure rate. With `fail` set and fail_ppm in 1..999999, only some inference requests fail:
 * the server numbers the inference requests (chat, embeddings, messages) that pass the key check
 * n = 0, 1, 2, … as they arrive, and request n gets `fail` iff
 * os_rng_mix(fail_seed, n) % 1000000 < fail_ppm (rng.h), the others are answered normally; so a
 * run is reproducible from the seed and the order of arrival. fail_ppm 0 (or >= 1000000) means
 * every request, as before. X-Echo-Fail still decides for its own request (which keeps its
 * number). /v1/models is not drawn: with a rate it fails only when X-Echo-Fail says so.
 *
 * Tokens (what every usage field counts). A token is one whitespace-separated word together with
 * the whitespace in front of it; whitespace at the very end of a text belongs to the last token
 * (whitespace is ASCII space, tab, CR, LF, VT, FF, so a token never splits a UTF-8 character).
 * "echo: hi  there " is the three tokens "echo:", " hi", "  there ".
 * - Answer text: "echo: " + the text of the last user message (string content, or its "text"
 *   parts/blocks concatenated). completion/output tokens = its tokens, cut to the request's cap
 *   (OpenAI: min of max_tokens and max_completion_tokens; Anthropic: max_tokens); a cut answer is
 *   the first cap tokens and ends with finish_reason "length" / stop_reason "max_tokens". A stream
 *   sends one token per content delta, so the deltas concatenate to the non-stream text.
 * - Tool call (when tools are offered and tool_choice is not "none"): the first tool (or the one
 *   tool_choice names) is called with arguments {"input":"<last user text>"} (compact JSON);
 *   completion tokens = the tokens of that JSON text, streamed token by token as argument deltas.
 *   If that does not fit the cap, the answer is the cut text instead (JSON is never cut).
 * - Prompt tokens: 3 + sum over messages of (4 + tokens of each text part) (+ the tokens of the
 *   Anthropic system text). Tokens never outnumber bytes, so this is <= os_estimate_request's
 *   input_tokens for the same body (64 + sum of (J(m) + 16) + ...): actual <= estimate.
 * - Embeddings: prompt tokens = per input item, the tokens of a string, 1 for an integer, the
 * length of a token-id array. Each vector has `dimensions` (default 8, at most 16) components:
 * component k = int16 big-endian at bytes 2k..2k+1 of keccak256(item) / 32768, item being a
 * string's UTF-8 bytes or the compact JSON of anything else. encoding_format "base64" gives
 * little-endian float32. n > 1 (OpenAI) repeats the same choice n times and multiplies completion
 * tokens by n.
 */
#ifndef OPENSEED_SELLER_ECHO_H
#define OPENSEED_SELLER_ECHO_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"

typedef struct sl_echo sl_echo;

/* Injected failures; the X-Echo-Fail request header overrides the configured one per request. */
typedef enum sl_echo_fail {
    SL_ECHO_FAIL_NONE = 0,   /* "none" */
    SL_ECHO_FAIL_500,        /* "500": a 500 in the API's error shape */
    SL_ECHO_FAIL_429,        /* "429": a rate-limit error with Retry-After */
    SL_ECHO_FAIL_DROP,       /* "drop-mid-stream": the body is cut (no [DONE] / message_stop) */
    SL_ECHO_FAIL_SLOW_FIRST, /* "slow-first-token": slow_first_token_ms more before the first byte
                              */
} sl_echo_fail;

typedef struct sl_echo_config {
    const char *listen;    /* NULL = "127.0.0.1:0" (a free port) */
    const char *model;     /* NULL = "echo-1": /v1/models, and answers to requests naming none */
    const char *api_key;   /* NULL or "": none required; else checked (Bearer / x-api-key) */
    unsigned latency_ms;   /* before the first byte of every successful answer */
    unsigned tokens_per_s; /* streaming pace of content deltas; 0 = as fast as possible */
    sl_echo_fail fail;     /* injected into every request unless X-Echo-Fail says otherwise */
    uint32_t fail_ppm;     /* with fail set: the share of inference requests that get it, in
                              millionths (see "Failure rate"); 0 or >= 1000000 = every request */
    uint64_t fail_seed;    /* which requests those are: a function of this seed and n */
    unsigned slow_first_token_ms; /* the extra delay of slow-first-token; 0 = 1000 */
    unsigned retry_after_s;       /* Retry-After of the injected 429; 0 = 1 */
    unsigned drop_after;          /* drop-mid-stream: token deltas sent before the cut; 0 = 3 */
    unsigned threads;             /* HTTP server threads; 0 = 2 */
    size_t max_body;              /* request body cap; 0 = 1 MiB */
} sl_echo_config;

/* Parses "none", "500", "429", "drop-mid-stream", "slow-first-token". OS_ERR_INVALID otherwise. */
OS_WUR os_err sl_echo_fail_parse(sl_echo_fail *out, const char *s);

/*
 * Creates a server (not yet listening). cfg's strings are copied (the key into memory wiped on
 * free); log (NULL = default logger) must outlive the server. The key is never logged.
 * OS_ERR_INVALID for a bad listen address or settings; free with sl_echo_free.
 */
OS_WUR os_err sl_echo_new(sl_echo **out, const sl_echo_config *cfg, const os_logger *log);
/* Binds and serves. OS_ERR_IO when the address cannot be bound. Restartable after sl_echo_stop. */
OS_WUR os_err sl_echo_start(sl_echo *e);
/* The bound port; 0 before start. */
uint16_t sl_echo_port(const sl_echo *e);
/* Cuts streams in progress (truncated), stops the server, joins every producer. Idempotent. */
void sl_echo_stop(sl_echo *e);
/* Stops if needed and frees. NULL-safe. */
void sl_echo_free(sl_echo *e);

/* Changes the failure injected into every later request (tests switch modes between calls); the
 * configured fail_ppm and fail_seed still apply to it. */
void sl_echo_set_fail(sl_echo *e, sl_echo_fail fail);

/* Requests on the /v1 routes (chat, embeddings, messages, models), errors included. */
uint64_t sl_echo_requests(const sl_echo *e);
/* Inference requests that passed the key check: the next one is numbered this (Failure rate). */
uint64_t sl_echo_inferences(const sl_echo *e);
/* Streamed answers whose producer stopped because the client went away before the end. */
uint64_t sl_echo_cancellations(const sl_echo *e);

#endif
