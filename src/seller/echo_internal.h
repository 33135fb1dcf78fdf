/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the echo server's parts share: echo.c owns the server, admission (key, injected failures),
 * the token rules and the producer threads that pace answers out; echo_openai.c and
 * echo_anthropic.c turn a request into a plan, the answer's bytes cut into pieces, and hand it
 * over.
 */
#ifndef OPENSEED_SELLER_ECHO_INTERNAL_H
#define OPENSEED_SELLER_ECHO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "openseed/buf.h"
#include "openseed/http.h"

#include "echo.h"

typedef enum sl_echo_api { SL_ECHO_OPENAI, SL_ECHO_ANTHROPIC } sl_echo_api;

/* Caps that keep a plan bounded whatever the request. */
#define SL_ECHO_PLAN_MAX ((size_t)64 << 20)
#define SL_ECHO_ID_LEN 48

/* An answer as the pieces it is written in: an SSE event each, or one JSON body. */
typedef struct sl_echo_plan {
    os_buf bytes; /* every piece back to back */
    size_t *ends; /* piece i is bytes[ends[i-1] .. ends[i]) */
    bool *paced;  /* piece i is a token delta: it waits for the token clock */
    size_t n, cap;
    bool sse; /* text/event-stream; else one application/json piece */
} sl_echo_plan;

void sl_echo_plan_init(sl_echo_plan *p, bool sse);
void sl_echo_plan_free(sl_echo_plan *p);
/* Appends an SSE event (type NULL: none) whose data is v's compact JSON; takes v's reference. */
OS_WUR os_err sl_echo_plan_event(sl_echo_plan *p, const char *type, json_t *v, bool paced);
/* Appends the raw SSE event "data: TEXT". */
OS_WUR os_err sl_echo_plan_raw(sl_echo_plan *p, const char *text);
/* Makes v's compact JSON the plan's one piece; takes v's reference. */
OS_WUR os_err sl_echo_plan_json(sl_echo_plan *p, json_t *v);

/*
 * Checks the key and applies injected 500/429 for a model route; false when it answered. infer:
 * an inference route (chat, embeddings, messages), numbered and drawn for the failure rate. On
 * true, *fail is the request's failure mode (none, drop or slow-first) and the request was
 * counted.
 */
bool sl_echo_admit(sl_echo *e, const os_http_request *req, os_http_response *res, sl_echo_api api,
                   bool infer, sl_echo_fail *fail);
/* An error in the API's shape (OpenAI's {"error":{...}}, Anthropic's {"type":"error",...}). */
void sl_echo_error(os_http_response *res, sl_echo_api api, unsigned status, const char *type,
                   const char *msg);
/* Sends the plan (taking it over): directly, or through a producer thread when it is a stream or
 * must wait. */
void sl_echo_send(sl_echo *e, os_http_response *res, sl_echo_plan *plan, sl_echo_fail fail);

/* The configured model name, for requests that name none. */
const char *sl_echo_model(const sl_echo *e);
/* A fresh id: prefix + a per-server counter. */
void sl_echo_new_id(sl_echo *e, char *out, size_t cap, const char *prefix);

/* Token rules (echo.h). End of the token that starts at off (off < len). */
size_t sl_echo_token_end(const char *s, size_t len, size_t off);
/* Tokens in s[0..len). */
uint64_t sl_echo_tokens(const char *s, size_t len);
/* Byte length of the first max tokens of s (len when s has no more). */
size_t sl_echo_cut(const char *s, size_t len, uint64_t max);
/* The tokens of a message content: a string, or the "text" of its parts of type "text". */
uint64_t sl_echo_content_tokens(const json_t *content);
/* Appends a content's text (string, or its text parts concatenated) to out. */
OS_WUR os_err sl_echo_content_text(os_buf *out, const json_t *content);
/* The text of the last message with role "user" ("" when none) into out. */
OS_WUR os_err sl_echo_last_user_text(os_buf *out, const json_t *messages);

/* Route handlers. */
void sl_echo_openai_chat(void *ctx, const os_http_request *req, os_http_response *res);
void sl_echo_openai_embeddings(void *ctx, const os_http_request *req, os_http_response *res);
void sl_echo_openai_models(void *ctx, const os_http_request *req, os_http_response *res);
void sl_echo_anthropic_messages(void *ctx, const os_http_request *req, os_http_response *res);

#endif
