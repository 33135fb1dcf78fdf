/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the HTTP module (http_server.c, http_message.c), never installed or included by
 * programs: the request view and response buffers a handler sees, which the server fills and
 * sends and the accessors and builders read and write. The two functions below are external only
 * because they cross those files, hence their os_ names; nothing outside the module may call them.
 */
#ifndef OPENSEED_HTTP_INTERNAL_H
#define OPENSEED_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "openseed/http.h"

struct MHD_Connection;
struct MHD_Response;

/* The server's live streams (http_stream.c): the max_streams cap, and the list the stop cuts. */
typedef struct http_streams {
    pthread_mutex_t mu;
    os_http_stream *head;
    unsigned n, max;
    size_t buf_cap;
} http_streams;

#define HTTP_MAX_RES_HEADERS 32

typedef struct http_res_header {
    uint32_t name; /* offsets into the arena */
    uint32_t value;
} http_res_header;

/* Its buffers are reused by every request on one connection; the server frees them. */
struct os_http_response {
    unsigned status;
    bool failed; /* a builder ran out of memory: the server sends a plain 500 */
    char *body;
    size_t body_len, body_cap;
    char *arena; /* NUL-terminated header names and values */
    size_t arena_len, arena_cap;
    http_res_header h[HTTP_MAX_RES_HEADERS];
    unsigned n_h;
    int64_t ctype; /* arena offset of the Content-Type value, -1 for none */
    os_http_stream *stream; /* set by os_http_res_stream; holds the server's reference */
    http_streams *streams;  /* the server's, set once per connection */
};

/* Filled by the server just before the handler runs; every pointer is borrowed. */
struct os_http_request {
    struct MHD_Connection *mc; /* for the query and header lookups */
    const char *method;
    const char *path;
    const char *rest;
    const char *body; /* NUL-terminated one past body_len */
    size_t body_len;
    size_t max_body; /* the server's cap, for os_http_req_json's error */
    const char *client;
};

/* Grows *buf to hold at least need bytes (doubling), never past max: OS_ERR_TOOBIG past it,
 * OS_ERR_NOMEM when realloc fails (*buf is then unchanged). */
os_err os_http_grow(char **buf, size_t *cap, size_t need, size_t max);

/* Empties res for the next request, keeping its buffers (and dropping a stream never sent). */
void os_http_res_reset(os_http_response *res);

/* ---- http_stream.c ---- */

OS_WUR os_err os_http_streams_init(http_streams *ss, unsigned max, size_t buf_cap);
void os_http_streams_destroy(http_streams *ss);
/* Cancels every live stream (the end of the stop's drain) and resumes any suspended one, so that
 * none stays suspended when MHD is stopped. */
void os_http_streams_cut(http_streams *ss);
/* A new stream holding two references (producer and server). OS_ERR_TOOBIG at max. */
OS_WUR os_err os_http_stream_new(http_streams *ss, os_http_stream **out);
/* Drops the server's reference to a stream that will not be sent, cancelling it. */
void os_http_stream_abandon(os_http_stream *st);
/* The MHD response that sends st on mc; it takes over the server's reference (also when this
 * fails and returns NULL). */
struct MHD_Response *os_http_stream_response(os_http_stream *st, struct MHD_Connection *mc);

/* ---- a TLS server's certificate and key (http_tls.c) ---- */

typedef struct os_http_tls os_http_tls;           /* the two paths and the current pair */
typedef struct os_http_tls_pair os_http_tls_pair; /* a loaded pair, refcounted */

/* A store for these PEM files (paths copied); nothing is loaded yet. */
OS_WUR os_err os_http_tls_new(os_http_tls **out, const char *cert_path, const char *key_path);
/* Drops the store's reference to its pair (freed once no connection holds it). NULL-safe. */
void os_http_tls_free(os_http_tls *t);
/* Loads both files and makes them the pair new handshakes get, logging the outcome for listen
 * (an expired or not yet valid certificate is served with a warning). On failure the pair in use
 * stays: OS_ERR_NOTFOUND/IO (a file missing or unreadable), INVALID (a key others can read or a
 * symlink, not PEM, an encrypted key, a key not the certificate's, an unsorted chain), TOOBIG. */
OS_WUR os_err os_http_tls_install(os_http_tls *t, const os_logger *log, const char *listen,
                                  bool reload);
/* For a handshake: a reference to the current pair replaces *held (whose reference is dropped)
 * and its chain and key are given to GnuTLS. OS_ERR_NOTFOUND before any pair was loaded. */
OS_WUR os_err os_http_tls_take(os_http_tls *t, os_http_tls_pair **held, gnutls_pcert_st **pcert,
                               unsigned *n, gnutls_privkey_t *key);
/* Drops a connection's reference (p may be NULL). */
void os_http_tls_release(os_http_tls *t, os_http_tls_pair *p);

#endif
