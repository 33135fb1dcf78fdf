/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP client the seller (to the registry and its upstream model server) and the buyer (to the
 * registry and to sellers) use, over libcurl: one request at a time per call, http and https only,
 * bounded in time (connect, total and low-speed timeouts) and in size (body, header count and
 * header bytes), with the body either collected into a capped buffer or handed to a callback as it
 * arrives (SSE from upstreams, chunked OHTTP from sellers). A streaming transfer can be stopped by
 * its callback, or from another thread through an abort flag, within about a second.
 *
 * Keep-alive: with pool_size > 0 a client keeps up to that many idle curl handles (each with its
 * connection cache) behind a mutex, so a later request to the same origin reuses the connection.
 * Any number of threads may share one client. A caller that wants one connection per thread
 * instead (no lock, a predictable connection per worker) creates one client per thread with
 * pool_size 1.
 *
 * Retries are the caller's business: this client makes exactly one attempt and reports why it
 * failed (a POST to a seller must not be replayed blindly). A non-2xx status is not an error here.
 *
 * Redirects are off by default. Turned on, curl drops Authorization and Cookie on a move to another
 * host but sends every other caller header along, so do not follow redirects on requests that carry
 * keys in custom headers (x-api-key). The low-speed limit is the client's for every request: give
 * streams their own client when they need a different one.
 *
 * TLS: https URLs always verify the server: its certificate must chain to a trusted CA (the
 * system's store, or the client's ca_file instead) and name the URL's host. Nothing turns that
 * off. TLS 1.2 is the oldest version spoken. A failed verification is OS_HTTP_FAIL_TLS with
 * "certificate verify failed: " and libcurl's reason.
 *
 * Secrets: error messages name the method, scheme, host and port, and libcurl's text for the
 * failure (for TLS failures, its error buffer: static text from the TLS library, the host name, or
 * the ca_file path); never the URL's user info, path or query, and never a header value (the
 * seller sends upstream API keys in headers). The header lines built for libcurl are wiped after
 * use.
 */
#ifndef OPENSEED_HTTP_CLIENT_H
#define OPENSEED_HTTP_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/buf.h"
#include "openseed/err.h"

typedef struct os_http_client os_http_client;

/* A timeout value meaning "no limit" (for long streams bounded by the low-speed limit instead). */
#define OS_HTTP_NO_TIMEOUT (-1L)

/* The most idle handles a client keeps (os_http_client_config.pool_size). */
#define OS_HTTP_CLIENT_POOL_MAX 64

/* Every field 0 takes the default written after it. */
typedef struct os_http_client_config {
    long connect_timeout_ms; /* 0 = 5000 */
    long timeout_ms;         /* whole request; 0 = 30000; OS_HTTP_NO_TIMEOUT = none */
    long low_speed_bytes;    /* abort when fewer than this many bytes/s arrive ... */
    long low_speed_time_s;   /* ... for this many seconds; either 0 = no low-speed limit */
    size_t max_body;         /* response body cap, also for streams; 0 = 16 MiB */
    size_t max_headers;      /* response header count cap; 0 = 64 */
    size_t max_header_bytes; /* response header bytes cap (names + values); 0 = 32 KiB */
    long max_redirects;      /* 0 = redirects are not followed (a 3xx is returned as is) */
    unsigned pool_size;      /* idle handles kept for keep-alive, at most
                                OS_HTTP_CLIENT_POOL_MAX; 0 = a new connection per request,
                                closed after it */
    int json_max_depth;      /* os_http_client_json's nesting cap; 0 = 64 */
    const char *user_agent;  /* NULL = "openseed/VERSION"; copied */
    const char *ca_file;     /* PEM file of the CAs https servers must chain to, instead of the
                                system's store (a private CA, a self-signed seller); NULL = the
                                system's store. The path is copied and checked here; libcurl
                                reads the file when it connects (and may cache it for a while:
                                after replacing it, make a new client) */
} os_http_client_config;

/* A request or response header. */
typedef struct os_http_header {
    const char *name;
    const char *value;
} os_http_header;

typedef struct os_http_client_res os_http_client_res;

/*
 * Streaming body callback: called with each piece of the body as it arrives, res's status and
 * headers already complete. Return 0 to go on, non-zero to stop the transfer (the request then
 * fails with kind OS_HTTP_FAIL_ABORTED). Runs on the calling thread, inside os_http_client_do.
 */
typedef int (*os_http_body_cb)(void *ud, const os_http_client_res *res, const uint8_t *data,
                               size_t len);

typedef struct os_http_client_req {
    const char *method;            /* an upper-case token ("GET", "POST", ...); NULL = "GET" */
    const char *url;               /* http:// or https:// only */
    const os_http_header *headers; /* names are HTTP tokens; values without CR, LF or NUL */
    size_t n_headers;
    const void *body; /* sent as is with its Content-Length; NULL with body_len 0: no body */
    size_t body_len;
    long timeout_ms;         /* 0 = the client's; OS_HTTP_NO_TIMEOUT = none */
    size_t max_body;         /* 0 = the client's; SIZE_MAX = no cap (streams) */
    os_http_body_cb on_body; /* non-NULL: stream the body to it instead of collecting it */
    void *on_body_ud;
    /* Optional: another thread sets *abort non-zero to cancel the request (checked at least
     * once a second while it runs, and before it starts). */
    const atomic_int *abort;
} os_http_client_req;

/*
 * A response. Fill it with os_http_client_res_init, read status, body and num_connects directly
 * and headers through the accessors, release with os_http_client_res_free. The other fields are
 * private.
 */
struct os_http_client_res {
    long status;       /* 0 when no response line arrived */
    os_buf body;       /* collected body (unused when streaming); owned */
    long num_connects; /* new connections this request opened (0: it reused one) */
    /* private */
    os_buf hdr; /* "name\0value\0" pairs */
    size_t n_headers;
    size_t max_headers;
    size_t max_header_bytes;
};

void os_http_client_res_init(os_http_client_res *res);
/* Frees the body and headers; res may be reused after os_http_client_res_init. NULL-safe. */
void os_http_client_res_free(os_http_client_res *res);
/* The first header named `name` (case-insensitive), or NULL. Points into res. */
const char *os_http_client_res_header(const os_http_client_res *res, const char *name);
/* The number of headers, and the i-th in arrival order (OS_ERR_RANGE past the end). */
size_t os_http_client_res_header_count(const os_http_client_res *res);
OS_WUR os_err os_http_client_res_header_at(const os_http_client_res *res, size_t i,
                                           const char **name, const char **value);

typedef enum os_http_fail {
    OS_HTTP_FAIL_NONE = 0,
    OS_HTTP_FAIL_INVALID,  /* a bad request argument (URL, method, header); nothing was sent */
    OS_HTTP_FAIL_CONNECT,  /* name resolution or TCP connect failed */
    OS_HTTP_FAIL_TIMEOUT,  /* connect, total or low-speed timeout */
    OS_HTTP_FAIL_TLS,      /* handshake or certificate verification */
    OS_HTTP_FAIL_TOOBIG,   /* body or headers over their caps */
    OS_HTTP_FAIL_ABORTED,  /* the body callback said stop, or the abort flag was set */
    OS_HTTP_FAIL_PROTOCOL, /* malformed, truncated or missing response; bad JSON in _json */
    OS_HTTP_FAIL_INTERNAL  /* out of memory or a libcurl setup failure */
} os_http_fail;

#define OS_HTTP_ERR_MSG_LEN 256

typedef struct os_http_client_error {
    os_http_fail kind;
    long status;                       /* the HTTP status if a response line arrived, else 0 */
    char message[OS_HTTP_ERR_MSG_LEN]; /* one printable line, safe to log (see above) */
} os_http_client_error;

/*
 * Creates a client; cfg NULL takes every default. Needs os_init(). OS_ERR_INVALID for negative
 * or absurd settings, and for a ca_file that is empty, too long a path, or holds no PEM
 * certificate; OS_ERR_NOTFOUND when ca_file does not exist, OS_ERR_IO when it cannot be read.
 * Free with os_http_client_free after every request on it has returned.
 */
OS_WUR os_err os_http_client_new(os_http_client **out, const os_http_client_config *cfg);
/* Closes the pooled connections and frees. NULL-safe. */
void os_http_client_free(os_http_client *c);

/*
 * Performs one request. res must have been initialised; it is reset first, and on return holds
 * whatever arrived (status, headers, partial body) even on failure. err may be NULL.
 * Returns OS_OK when a complete response arrived, whatever its status. Otherwise:
 *   OS_ERR_INVALID  bad argument (kind INVALID)
 *   OS_ERR_NETWORK  CONNECT, TLS, PROTOCOL or ABORTED
 *   OS_ERR_TIMEOUT  TIMEOUT
 *   OS_ERR_TOOBIG   TOOBIG
 *   OS_ERR_NOMEM / OS_ERR_INTERNAL  (kind INTERNAL)
 */
OS_WUR os_err os_http_client_do(os_http_client *c, os_http_client_res *res,
                                os_http_client_error *err, const os_http_client_req *req);

/*
 * JSON convenience: sends json_body (NULL = no body) compactly with Content-Type and Accept
 * application/json (unless headers set them), then parses the answer with os_json_parse under the
 * client's body cap and depth cap. *status gets the HTTP status (0 if none). *json_out, owned by
 * the caller (json_decref), is the parsed body, or NULL when the body was empty. OS_OK for any
 * status whose body is empty or JSON; a non-empty body that is not JSON (an HTML 502 from a proxy,
 * say) is OS_ERR_NETWORK with kind PROTOCOL and the status kept. Other errors as os_http_client_do.
 */
OS_WUR os_err os_http_client_json(os_http_client *c, long *status, json_t **json_out,
                                  os_http_client_error *err, const char *method, const char *url,
                                  const json_t *json_body, const os_http_header *headers,
                                  size_t n_headers);

/*
 * url without its user info ("https://user:pw@host/x" -> "https://host/x"), for logs and status
 * pages: everything up to the last '@' of the authority goes, so an unencoded '@' in a password
 * leaks nothing. Into out (cap bytes, always NUL-terminated); OS_ERR_TOOBIG when it does not fit
 * (out holds a cut copy), OS_ERR_INVALID for NULL arguments.
 */
OS_WUR os_err os_url_without_userinfo(char *out, size_t cap, const char *url);

#endif
