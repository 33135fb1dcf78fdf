/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server every daemon uses, over libmicrohttpd: a route table, bounded requests (body,
 * header and connection limits, timeouts), per-source rate limiting with X-RateLimit-* headers and
 * 429s, OpenAI-shaped error bodies, and a graceful stop that drains requests in flight.
 *
 * A handler runs on one of the server's threads with the whole request (body already read and
 * capped) and fills a response; it never blocks on another request. One server object per listener;
 * several servers may run in one process.
 *
 * Behaviour the routes can rely on:
 * - HEAD is served by the GET route of the same path (MHD drops the body).
 * - A Content-Length over max_body is answered 413 before any of the body is read; a chunked body
 *   that grows past it is discarded as it arrives (up to max(max_body, 1 MiB) more bytes, after
 *   which the connection is closed without a reply) and answered 413 once it ends.
 * - Rate limiting (rate_per_s > 0) applies to every request except routes with no_rate_limit,
 *   unknown paths included, before the body is read. The key is the client address; an IPv6 client
 *   is keyed by its /64, which is what one subscriber usually holds. Every limited response carries
 *   X-RateLimit-Limit (the burst), X-RateLimit-Remaining (whole requests left now) and
 *   X-RateLimit-Reset (seconds until the bucket is full again); a refusal is a 429 with type
 *   "rate_limit_error" and Retry-After (seconds until the next request would be allowed).
 * - During os_http_server_stop, a new request on a kept-alive connection gets 503 and
 *   "Connection: close"; requests already started finish normally.
 * - Malformed HTTP, oversized headers and bad chunk framing are answered by libmicrohttpd itself
 *   (400/431 with its own short HTML body): they never reach the route table.
 * - With TLS (tls_cert_file), all of the above is the same inside the TLS connection; a client
 *   that speaks plain HTTP to it fails the handshake and is disconnected without an answer.
 */
#ifndef OPENSEED_HTTP_H
#define OPENSEED_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/log.h"
#include "openseed/metrics.h"

typedef struct os_http_server os_http_server;
typedef struct os_http_request os_http_request;   /* read-only view, valid during the handler */
typedef struct os_http_response os_http_response; /* filled by the handler */

/* A handler: ctx is the server's context pointer. It must set a status (default 500 if not). */
typedef void (*os_http_handler)(void *ctx, const os_http_request *req, os_http_response *res);

/*
 * A route. path is matched exactly, or as a prefix when it ends in '*' (e.g. "/v1/peers/ *" without
 * the space): the rest is given by os_http_req_path_rest(). The first matching route wins; a path
 * that matches with another method gets 405, no match 404 (both OpenAI-shaped).
 */
typedef struct os_http_route {
    const char *method; /* "GET", "POST", ... */
    const char *path;
    os_http_handler fn;
    int no_rate_limit; /* non-zero: exempt (e.g. /healthz, /metrics) */
} os_http_route;

typedef struct os_http_config {
    const char *listen;          /* "HOST:PORT" (IPv4 or [IPv6]); port 0 picks a free port */
    unsigned threads;            /* worker threads (MHD thread pool); 0 = 2 */
    unsigned max_connections;    /* 0 = 1024 */
    unsigned per_ip_connections; /* 0 = 64 */
    unsigned timeout_s;          /* idle connection timeout; 0 = 30 */
    size_t max_body;             /* request body cap; 0 = 64 KiB; over it: 413 */
    size_t max_header;           /* per-connection header memory; 0 = 16 KiB */
    uint32_t rate_per_s;         /* per source address; 0 = no rate limit */
    uint32_t rate_burst;         /* bucket size; 0 = rate_per_s */
    unsigned drain_timeout_ms;   /* os_http_server_stop waits this long for requests in flight; 0 = 5000 */
    const os_logger *log;        /* NULL = default logger */
    /* Additions (zero keeps the defaults): */
    size_t rate_capacity; /* sources the limiter tracks at once (LRU); 0 = 65536 */
    /*
     * Optional registry the server reports into (it must outlive the server): counter
     * <prefix>_requests_total{class="1xx".."5xx"}, histogram <prefix>_request_duration_seconds
     * (headers received to response sent), gauge <prefix>_requests_in_flight and counter
     * <prefix>_rate_limited_total. Two servers sharing a registry need different prefixes.
     */
    os_metrics *metrics;
    const char *metrics_prefix; /* NULL = "openseed_http" */
    /* Streamed responses (os_http_res_stream): at most max_streams at once (0 = 256), each
     * buffering at most stream_buffer bytes the client has not taken yet (0 = 64 KiB). */
    unsigned max_streams;
    size_t stream_buffer;
    /*
     * Native TLS: PEM paths of the certificate (the leaf first, then any intermediates, at most 16)
     * and of its unencrypted private key (RSA, ECDSA or Ed25519; PKCS#8 or the traditional
     * format). Both or neither (OS_ERR_INVALID from _new otherwise); with them the server speaks
     * only HTTPS, TLS 1.2 and 1.3. The files are read by os_http_server_start and
     * os_http_server_reload_tls, never kept open. The key file is read as the daemons' other key
     * files are (keyfile.h): a regular file, not a symbolic link, no group or other permission
     * bits. Copied by _new.
     */
    const char *tls_cert_file;
    const char *tls_key_file;
} os_http_config;

/* Creates a server (not yet listening). routes[] and ctx must outlive it. Free with _free.
 * cfg->listen is parsed and copied here: HOST is an IPv4 literal, a bracketed IPv6 literal,
 * "localhost", or "" / "*" for every IPv4 address (OS_ERR_INVALID otherwise; no DNS).
 * OS_ERR_EXISTS when cfg->metrics already holds metrics of the same prefix. */
OS_WUR os_err os_http_server_new(os_http_server **out, const os_http_config *cfg,
                                 const os_http_route *routes, size_t n_routes, void *ctx);
/* Binds and starts serving. OS_ERR_IO if the address cannot be bound. A stopped server may be
 * started again (port 0 then picks a new port). A TLS server first loads its certificate and key
 * (each start reads the files again); when they do not load it does not start and returns
 * os_http_server_reload_tls's error, with the reason logged. */
OS_WUR os_err os_http_server_start(os_http_server *s);
/*
 * Re-reads a TLS server's certificate and key files (an operator's SIGHUP after renewing them).
 * On success, handshakes from then on present the new certificate; connections already open keep
 * the one they started with and are not disturbed. On failure nothing changes (the previous
 * certificate goes on being served) and the reason is logged: OS_ERR_NOTFOUND or OS_ERR_IO for a
 * missing or unreadable file, OS_ERR_INVALID for a key file that others may read or that is not a
 * regular file, a file that is not PEM, an encrypted key, or a key that is not the certificate's,
 * OS_ERR_TOOBIG for an oversized file or chain, OS_ERR_NOMEM. OS_ERR_UNSUPPORTED on a server
 * without TLS. Safe from any thread while the server runs (not concurrently with _free); called
 * before the first start it loads the files too (start reads them again).
 */
OS_WUR os_err os_http_server_reload_tls(os_http_server *s);
/* True when the server was configured with a certificate and key (it speaks HTTPS only). */
bool os_http_server_is_tls(const os_http_server *s);
/* The bound port (useful after listening on port 0); 0 before start. */
uint16_t os_http_server_port(const os_http_server *s);
/* Stops accepting, waits for requests in flight (bounded by drain_timeout_ms), then closes. Idempotent. */
void os_http_server_stop(os_http_server *s);
/* Stops if needed and frees. NULL-safe. */
void os_http_server_free(os_http_server *s);

/* Request accessors; returned pointers live as long as the request. */
const char *os_http_req_method(const os_http_request *r);
const char *os_http_req_path(const os_http_request *r);
/* For prefix routes: the part of the path after the prefix ("" if none). */
const char *os_http_req_path_rest(const os_http_request *r);
/* A query-string argument, URL-decoded; NULL when absent. */
const char *os_http_req_query(const os_http_request *r, const char *key);
/* A query argument as a whole number in [lo, hi], in os_money_parse_units' strict decimal syntax
 * (digits only: no sign, space, exponent or leading zero); *out = dflt when the argument is absent.
 * OS_ERR_INVALID when it is malformed or out of range (*out is then dflt). */
OS_WUR os_err os_http_req_query_uint(const os_http_request *r, const char *key, uint64_t lo,
                                     uint64_t hi, uint64_t dflt, uint64_t *out);
/* A request header, case-insensitive name; NULL when absent. */
const char *os_http_req_header(const os_http_request *r, const char *name);
/* The body (NUL-terminated one past len for convenience) and its length; "" and 0 when none. */
const char *os_http_req_body(const os_http_request *r, size_t *len);
/* The peer's address as text ("127.0.0.1", "::1"), used as the rate-limit key. */
const char *os_http_req_client(const os_http_request *r);

/* Response builders. Each copies what it is given; the last status/body set wins. data must not
 * point into the response itself. When a builder fails for lack of memory, the reply becomes a
 * plain 500 unless a later builder succeeds. os_http_res_header refuses (OS_ERR_INVALID) a name
 * that is not an HTTP token, a value holding CR, LF or another control character, and
 * Content-Length or Transfer-Encoding (the server frames the body); "Content-Type" sets the
 * content type; at most 32 headers and 64 KiB of them (OS_ERR_TOOBIG). */
void os_http_res_status(os_http_response *res, unsigned status);
OS_WUR os_err os_http_res_header(os_http_response *res, const char *name, const char *value);
OS_WUR os_err os_http_res_body(os_http_response *res, const char *content_type, const void *data,
                               size_t len);
/* Sets status and a compact JSON body; takes the reference to v (json_decref'd by the server). */
OS_WUR os_err os_http_res_json(os_http_response *res, unsigned status, json_t *v);
/*
 * Sets status and the OpenAI error shape {"error":{"message","type","code"}}. type e.g.
 * "invalid_request_error"; code may be NULL. The message must not contain secrets.
 */
void os_http_res_error(os_http_response *res, unsigned status, const char *type, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Parses a JSON request body with the body's size and a depth limit; on failure sets a 400 (or 413)
 * OpenAI-shaped error on res and returns non-OS_OK. On success the caller owns *out.
 */
OS_WUR os_err os_http_req_json(json_t **out, const os_http_request *req, os_http_response *res,
                               int max_depth);

/*
 * Streamed responses. A handler that cannot have its whole body when it returns (a proxied
 * upstream that streams) makes its reply a stream: the status, headers and content type go out
 * when the handler returns, then the body is sent with chunked transfer encoding as a producer,
 * usually another thread, writes it. The connection does not hold a server thread while it waits
 * for the producer (it is suspended in libmicrohttpd), so streams never starve other requests; the
 * cost of a stream is its buffer, hence max_streams and stream_buffer in os_http_config.
 *
 * Backpressure: os_http_stream_write blocks while the stream's buffer is full, that is while the
 * client reads more slowly than the producer writes. A client that stops reading altogether is cut
 * off by the server's idle timeout (timeout_s), which wakes the writer with an error.
 *
 * Client gone: when the connection ends before the stream does (the client disconnected, the
 * server cut the stream at the end of os_http_server_stop's drain, or a later builder replaced the
 * stream by a body), writes fail with OS_ERR_IO and os_http_stream_cancelled turns true: the
 * producer should then cancel its upstream work and close. While no data flows, libmicrohttpd does
 * not watch the socket; os_http_stream_cancelled looks at it itself, so a producer waiting on
 * slow upstream work learns of a departed client by calling it now and then.
 *
 * End: os_http_stream_close(st, true) ends the body properly (the terminating zero-size chunk) once
 * the buffered bytes are sent; os_http_stream_close(st, false) sends what is buffered, then closes
 * the connection without the terminating chunk, so the client sees a truncated response. A stream
 * counts as a request in flight until it ends: os_http_server_stop waits for it up to
 * drain_timeout_ms and then cuts it.
 */
typedef struct os_http_stream os_http_stream;

/*
 * Makes res a streamed response with this status and content type (NULL for none); headers set
 * with os_http_res_header before or after still apply. On success *out is the producer's handle:
 * it may be used from any thread, and the producer must call os_http_stream_close exactly once,
 * whatever happens (also when the handler then fails to hand it to a thread; a stream that is never
 * closed holds its slot and its request in flight until the server stops). A later
 * os_http_res_body/json/error replaces the stream (its writes then fail). OS_ERR_TOOBIG when
 * max_streams streams are open (answer 503), OS_ERR_INVALID for a bad status or content type.
 */
OS_WUR os_err os_http_res_stream(os_http_response *res, os_http_stream **out, unsigned status,
                                 const char *content_type);
/* Appends data to the body, blocking while the stream's buffer is full. OS_OK once all of data is
 * buffered; OS_ERR_IO when the stream was cancelled (some of data may have been sent);
 * OS_ERR_INVALID after close. */
OS_WUR os_err os_http_stream_write(os_http_stream *st, const void *data, size_t len);
/* True once the client is gone or the stream was cut; never turns false again. */
bool os_http_stream_cancelled(os_http_stream *st);
/* Ends the body (ok: complete; !ok: truncated, see above) and gives up the producer's handle: st
 * must not be used afterwards. NULL-safe. */
void os_http_stream_close(os_http_stream *st, bool ok);

#endif
