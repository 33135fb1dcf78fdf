/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the upstream adapter's two halves share: upstream.c owns the transport (the HTTP client,
 * the watchdog that keeps the first-byte and idle limits, one call from request to outcome);
 * upstream_wire.c knows the APIs' wire formats (the body sent, where usage sits in a whole answer
 * and in each SSE event, which deltas count as output, the end-of-stream markers, and which error
 * bodies are fit to hand back). The wire half holds no state of its own: it reads and writes the
 * tally a call keeps.
 */
#ifndef OPENSEED_SELLER_UPSTREAM_INTERNAL_H
#define OPENSEED_SELLER_UPSTREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/buf.h"
#include "openseed/err.h"

#include "upstream.h"

#define SL_UPSTREAM_ANSWER_DEPTH 128 /* nesting cap of an upstream's JSON answer or event */

/* The wire format one call speaks, from sl_upstream_req.api. */
typedef enum sl_upstream_wire {
    SL_UPSTREAM_WIRE_CHAT,       /* openai.chat */
    SL_UPSTREAM_WIRE_EMBEDDINGS, /* openai.embeddings */
    SL_UPSTREAM_WIRE_MESSAGES,   /* anthropic.messages */
} sl_upstream_wire;

/* What an answer has told us so far: usage as reported, output deltas counted, and whether the
 * stream's end marker arrived. Zeroed at the start of a call. */
typedef struct sl_upstream_tally {
    bool done; /* the stream's end marker ([DONE] / message_stop) arrived */
    bool in_seen, out_seen;
    uint64_t in, cached, out;
    uint64_t start_out; /* Anthropic message_start's output count, a floor */
    uint64_t counted;   /* output deltas seen */
} sl_upstream_tally;

/* The body to send upstream: the buyer's (req->body, not modified) with model, output cap and
 * stream settings forced. *out is compact JSON owned by the caller (free()); NULL on error. */
OS_WUR os_err sl_upstream_body_(char **out, size_t *len, const sl_upstream_req *req,
                                sl_upstream_wire api);

/* Takes usage, output deltas and the end marker from one stream event's data (borrowed). Data
 * that is not JSON is left alone: it is handed on as it came. */
void sl_upstream_event_(sl_upstream_tally *t, sl_upstream_wire api, const char *data, size_t len);

/* Takes usage from a whole (non-stream) answer (borrowed). */
void sl_upstream_answer_usage_(sl_upstream_tally *t, sl_upstream_wire api, const json_t *answer);

/* Fills res->usage, usage_reported and input_reported from what the answer reported, else (for a
 * stream) from the counted deltas. */
void sl_upstream_settle_usage_(sl_upstream_result *res, const sl_upstream_tally *t, bool stream);

/* b's bytes as a JSON object (new reference, owned by the caller); NULL when b is empty, not
 * JSON, nested too deep or not an object. */
json_t *sl_upstream_parse_object_(const os_buf *b);

/* Whether b holds the key (key_len bytes, borrowed; NULL = no key) anywhere. */
bool sl_upstream_holds_key_(const char *key, size_t key_len, const os_buf *b);

/* The body to hand back for a non-2xx answer (new reference, owned by the caller; NULL only when
 * out of memory): the upstream's JSON object when it is whole (cut false), parses, and cannot show
 * the key, else a generic {"error":{"message":…,"type":…}}; always generic for 401 and 403. */
json_t *sl_upstream_error_body_(long status, const os_buf *body, bool cut, const char *key,
                                size_t key_len);

/* A short token from an error answer (error.type, borrowed from body), fit to show; "" if none. */
const char *sl_upstream_error_type_(const json_t *body);

#endif
