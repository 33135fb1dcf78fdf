/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The encrypted inference exchange of the seller's POST /v1/infer (PROTOCOL.md §5, docs/protocol.md
 * §10.11), both ends: the plaintexts inside the OHTTP envelope, which the seller and the buyer both
 * build and parse, and the buyer-side client call that seals a request, sends it with its payment
 * and credential headers, and opens the answer (a whole message/ohttp-res or a chunked
 * message/ohttp-chunked-res stream), or reads the 402 invoice or the seller's error.
 *
 * Plaintexts (compact JSON unless said otherwise):
 * - request:  {"api":"openai.chat"|"openai.embeddings"|"anthropic.messages","service":S,"body":{…}}
 * - whole response: {"status":N,"body":<the upstream's JSON answer>,"usage":U,"cost":"…",
 *   "cumulative_consumed":"…"} (plus "error" as in the final chunk, when set); status is the
 *   upstream's HTTP status (an upstream 4xx/5xx is carried here, encrypted, with cost "0"); body
 *   may be any JSON value.
 * - stream: each non-final chunk is one upstream SSE event as text ("event: t\ndata: d\n\n" or
 *   "data: d\n\n"); the final chunk is {"status":N,"usage":U,"cost":"…","cumulative_consumed":"…"}
 *   plus "error":{"type","message"} when the upstream stream broke off, and "body" (the upstream's
 *   error answer) when the upstream refused before any event; the client puts it in res->body.
 * - U = {"input_tokens":n,"cached_tokens":n,"output_tokens":n} (JSON integers).
 */
#ifndef OPENSEED_INFER_H
#define OPENSEED_INFER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/http_client.h"
#include "openseed/ohttp.h"
#include "openseed/x402.h"

#define OS_INFER_PATH "/v1/infer"
#define OS_INFER_API_MAX 32     /* "anthropic.messages" and NUL, with room */
#define OS_INFER_SERVICE_MAX 64 /* as OS_RECORD_NAME_MAX */
#define OS_INFER_ERR_TYPE_MAX 64
#define OS_INFER_ERR_MSG_MAX 256
#define OS_INFER_JSON_DEPTH 64              /* nesting cap of every plaintext */
#define OS_INFER_MAX_REQUEST (1u << 20)     /* plaintext request cap (1 MiB) */
#define OS_INFER_MAX_RESPONSE (16u << 20)   /* whole-response plaintext cap (16 MiB) */
#define OS_INFER_MAX_CHUNK (256u << 10)     /* one stream chunk's plaintext (docs §10.3) */
#define OS_INFER_MAX_ERROR_BODY (64u << 10) /* bytes of a non-200 body the client reads */
#define OS_INFER_HDR_CREDENTIAL "OpenSeed-Credential"

typedef struct os_infer_usage {
    uint64_t input_tokens; /* all prompt tokens, cached ones included */
    uint64_t cached_tokens;
    uint64_t output_tokens;
} os_infer_usage;

/* What closes an answer: the whole response's fields besides "body", or the final chunk. */
typedef struct os_infer_final {
    long status; /* the upstream's HTTP status */
    os_infer_usage usage;
    uint64_t cost;                /* micro-USDC this request was charged */
    uint64_t cumulative_consumed; /* the channel's consumed after it */
    bool has_error;               /* the stream broke off; usage/cost cover what was produced */
    char error_type[OS_INFER_ERR_TYPE_MAX];
    char error_message[OS_INFER_ERR_MSG_MAX];
} os_infer_final;

/* The parsed request plaintext. body is borrowed from the parsed root. */
typedef struct os_infer_inner {
    char api[OS_INFER_API_MAX];
    char service[OS_INFER_SERVICE_MAX];
    json_t *body;
} os_infer_inner;

/* Builds the request plaintext {"api","service","body"} in that key order (a new reference; body
 * is shared by reference, not consumed or copied). NULL when api, service or body would not pass
 * os_infer_inner_parse, or on allocation failure. */
json_t *os_infer_inner_build(const char *api, const char *service, const json_t *body);
/* Checks a parsed request plaintext: exactly the three keys, api one of the three names, service
 * 1..63 bytes of printable ASCII without spaces (0x21-0x7e), body an object. OS_ERR_INVALID with a
 * reason naming the field; *out is written only on success, out->body borrowing from root. */
OS_WUR os_err os_infer_inner_parse(os_infer_inner *out, const json_t *root, char *err,
                                   size_t errcap);

/* The final/whole-response fields as JSON (a new object, keys status, usage, cost,
 * cumulative_consumed, then error when has_error); NULL on allocation failure or for values
 * os_infer_final_parse would refuse. */
json_t *os_infer_final_to_json(const os_infer_final *f);
/* Reads them back from an object (other keys, like "body", are ignored: the caller checks the key
 * set of the whole object). Strict: status a JSON integer 100..599; usage exactly its three keys,
 * JSON integers, cached_tokens <= input_tokens; cost and cumulative_consumed canonical decimal
 * strings; error, when present, exactly {"type","message"} strings within their buffers.
 * OS_ERR_INVALID naming the field; *f written only on success. */
OS_WUR os_err os_infer_final_parse(os_infer_final *f, const json_t *obj, char *err, size_t errcap);

/* ---- the buyer's side of one call ---- */

typedef struct os_infer_call os_infer_call;

/*
 * Seals the request plaintext for the seller whose key configuration is kc. The envelope (the
 * POST body) and its metadataHash (keccak256 of the envelope) are then available for signing the
 * voucher and the credential. The plaintext is os_infer_inner_build's, written compactly (jansson
 * JSON_COMPACT, keys in insertion order) and wiped after sealing. *out is owned by the caller
 * (os_infer_call_free). OS_ERR_INVALID for a NULL kc, an unknown api, a bad service or a body that
 * is not an object; OS_ERR_TOOBIG when the plaintext is over OS_INFER_MAX_REQUEST; OS_ERR_NOMEM.
 */
OS_WUR os_err os_infer_call_new(os_infer_call **out, const os_ohttp_keyconfig *kc, const char *api,
                                const char *service, const json_t *body);
/* Wipes the HPKE context and frees. NULL-safe. */
void os_infer_call_free(os_infer_call *c);
/* The envelope (message/ohttp-req bytes, owned by c) and its length. */
const uint8_t *os_infer_call_envelope(const os_infer_call *c, size_t *len);
/* keccak256 of the envelope: the voucher's and the credential's metadataHash. */
void os_infer_call_metadata_hash(const os_infer_call *c, uint8_t out[32]);

/* Called with each decrypted stream event (the upstream's SSE text, len bytes, with a NUL after
 * them for convenience; valid during the call only). Non-zero stops the call. */
typedef int (*os_infer_event_cb)(void *ud, const char *event, size_t len);

typedef struct os_infer_result {
    long http_status; /* the seller's status; 0 if none arrived */
    bool streamed;    /* the answer was message/ohttp-chunked-res */
    /* 200: the closing fields, and for a whole response the upstream's body (owned, or NULL) */
    os_infer_final final;
    json_t *body;
    uint64_t events;  /* stream events delivered (the one that stopped the call included) */
    bool stopped;     /* on_event returned non-zero (the call then fails OS_ERR_NETWORK) */
    uint64_t ttft_ms; /* from sending to the first event (streams) or the answer */
    bool paid;        /* PAYMENT-RESPONSE arrived and said success */
    uint64_t paid_amount;
    /* 402: the invoice */
    bool has_requirement;
    os_x402_requirement requirement;
    char payment_error[OS_X402_ERROR_MAX];
    /* any non-200: the seller's OpenAI-shaped error (empty strings when absent) */
    char error_type[OS_INFER_ERR_TYPE_MAX];
    char error_code[OS_INFER_ERR_TYPE_MAX];
    char error_message[OS_INFER_ERR_MSG_MAX];
} os_infer_result;

/* Releases res->body. NULL-safe; res may be reused afterwards. */
void os_infer_result_free(os_infer_result *res);

/*
 * POSTs the envelope to url (the seller's endpoint + OS_INFER_PATH) with the PAYMENT-SIGNATURE
 * (payment, may be NULL or "") and OpenSeed-Credential (credential, likewise) headers, and reads
 * the answer into res (zeroed first). The only other headers are Content-Type message/ohttp-req and
 * Accept of both response media types (plus what the http client adds: its User-Agent, Host,
 * Content-Length). Streams are decrypted as they arrive and each event handed to on_event (may be
 * NULL) on the calling thread. Answers:
 *   200 message/ohttp-res          decrypted; res->final and res->body (up to
 *                                  OS_INFER_MAX_RESPONSE bytes of plaintext, else OS_ERR_TOOBIG)
 *   200 message/ohttp-chunked-res  res->streamed; events to on_event, the final chunk to res->final
 *   200 with PAYMENT-RESPONSE      res->paid and res->paid_amount when it decodes and says success
 *   402                            res->has_requirement when PAYMENT-REQUIRED decodes (with
 *                                  res->payment_error), and the error body as below
 *   any other status               the OpenAI error body into res->error_* (the first
 *                                  OS_INFER_MAX_ERROR_BODY bytes; not JSON: fields left empty)
 * Returns OS_OK when a complete answer arrived, whatever its status (check res->http_status);
 * OS_ERR_CRYPTO when the answer does not decrypt or a chunk does not authenticate (tampered,
 * reordered, dropped); OS_ERR_NETWORK when the transfer failed, a 200 is not an OHTTP response,
 * the stream ended without its final chunk, a chunk is over OS_INFER_MAX_CHUNK, the abort flag was
 * set, or on_event stopped it (res->stopped); OS_ERR_TIMEOUT / OS_ERR_TOOBIG as the http client
 * says; OS_ERR_INVALID for a malformed closing plaintext or bad arguments. herr (may be NULL) says
 * why for every failure after the request went out. On failure res->body is NULL, events already
 * delivered stay delivered. A call is sent at most once (its HPKE context answers one response; a
 * second send is OS_ERR_INVALID), and the context is wiped when the answer is read.
 */
OS_WUR os_err os_infer_call_send(os_infer_call *c, os_infer_result *res, os_http_client *http,
                                 os_http_client_error *herr, const char *url, const char *payment,
                                 const char *credential, os_infer_event_cb on_event, void *ud,
                                 const atomic_int *abort);

#endif
