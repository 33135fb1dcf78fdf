/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Anthropic Messages <-> OpenAI chat completions, for a buyer whose client speaks Anthropic while
 * the chosen seller only offers openai.chat (PROTOCOL.md §9), and the error bodies of both APIs.
 * Pure functions over jansson values: no I/O, no global state.
 *
 * Request (Anthropic -> OpenAI): system (string or text blocks) becomes a leading system message;
 * user/assistant messages with string or block content become OpenAI messages (text blocks joined;
 * tool_use blocks become assistant tool_calls with JSON-encoded arguments; tool_result blocks
 * become role "tool" messages carrying tool_call_id); tools ({name, description, input_schema})
 * become function tools; tool_choice auto/any/tool/none maps to auto/required/{function}/none;
 * max_tokens, temperature, top_p, stop_sequences (-> stop), stream and metadata.user_id (dropped:
 * nothing identifying leaves) are carried; stream adds stream_options.include_usage. top_k and
 * other fields OpenAI has no equivalent for are dropped. Images and documents are refused
 * (OS_ERR_UNSUPPORTED), as sellers refuse them anyway.
 *
 * Response (OpenAI -> Anthropic): {id:"msg_…", type:"message", role:"assistant", model, content:
 * [text block][tool_use blocks…], stop_reason (stop -> end_turn, length -> max_tokens,
 * tool_calls -> tool_use, content_filter -> refusal), stop_sequence:null, usage:{input_tokens,
 * output_tokens}}.
 *
 * Streams: a stateful translator fed each OpenAI chunk's data (JSON text, or "[DONE]") that writes
 * the Anthropic event sequence as SSE text: message_start (usage.input_tokens from the hint),
 * content_block_start / content_block_delta (text_delta, input_json_delta for tool calls) /
 * content_block_stop per block, then message_delta {stop_reason, usage.output_tokens} and
 * message_stop once the stream ends.
 */
#ifndef OPENSEED_BUYER_TRANSLATE_H
#define OPENSEED_BUYER_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/buf.h"
#include "openseed/err.h"
#include "openseed/infer.h"

/* An Anthropic Messages request body as an OpenAI chat request body (new reference in *out).
 * OS_ERR_INVALID (malformed, with a reason) or OS_ERR_UNSUPPORTED (images, documents, server
 * tools). */
OS_WUR os_err by_anthropic_request_to_openai(json_t **out, const json_t *body, char *err,
                                             size_t errcap);

/* A non-streamed OpenAI chat completion as an Anthropic message; model is the name the client
 * asked for. OS_ERR_INVALID when the completion is malformed. */
OS_WUR os_err by_openai_response_to_anthropic(json_t **out, const json_t *completion,
                                              const char *model);

typedef struct by_astream by_astream;

/* A stream translator; model is the client's model name, input_tokens the estimate shown in
 * message_start until the real count arrives (it is corrected in message_delta's usage). */
OS_WUR os_err by_astream_new(by_astream **out, const char *model, uint64_t input_tokens);
/* Feeds one OpenAI SSE event's data; appends the Anthropic events it completes to out (SSE text,
 * "event: X\ndata: {...}\n\n"). OS_ERR_INVALID for a malformed chunk. */
OS_WUR os_err by_astream_feed(by_astream *t, os_buf *out, const char *data, size_t len);
/* Ends the stream: closes an open block and writes message_delta (stop_reason, and usage from u
 * when non-NULL) and message_stop, unless the stream already ended. */
OS_WUR os_err by_astream_finish(by_astream *t, os_buf *out, const os_infer_usage *u);
/* True once message_stop was written. */
bool by_astream_done(const by_astream *t);
void by_astream_free(by_astream *t);

/* ---- error bodies in each API's shape ---- */

/* {"error":{"message","type","param":null,"code"}} (OpenAI). code may be NULL. */
json_t *by_openai_error(const char *type, const char *code, const char *message);
/* {"type":"error","error":{"type","message"}} (Anthropic). */
json_t *by_anthropic_error(const char *type, const char *message);
/* The Anthropic error type for an HTTP status: 400 invalid_request_error, 401
 * authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 413
 * request_too_large, 429 rate_limit_error, 529 overloaded_error, other 5xx api_error. */
const char *by_anthropic_error_type(unsigned status);
/* The SSE error event of a stream that failed mid-way: OpenAI "data: {error…}\n\n", Anthropic
 * "event: error\ndata: {…}\n\n". Appended to out. */
OS_WUR os_err by_stream_error_event(os_buf *out, bool anthropic, const char *type,
                                    const char *message);

#endif
