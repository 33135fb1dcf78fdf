/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server of http.h over libmicrohttpd: an epoll thread pool fed by our own accept thread
 * (see accept_loop for why), a route table, capped bodies, per-source token buckets
 * (ratelimit.h), OpenAI-shaped errors, optional metrics, and a stop that drains requests in
 * flight. The request accessors and response builders a handler uses are in http_message.c.
 *
 * Memory: each TCP connection gets one `conn` (MHD's connection-notify callback allocates it and
 * frees it when the socket closes); every request on that connection reuses it, with its body and
 * response buffers, so a kept-alive client costs no allocation of ours per request. The response
 * body is handed to MHD as MHD_RESPMEM_PERSISTENT: MHD has finished sending it before the request
 * completes, and the buffer is only rewritten by the next request on the same connection, which
 * MHD never starts before that. Buffers that grew past KEEP_MAX are released after the request so
 * an idle connection does not hold a big one.
 *
 * Request life: the first access-handler call (headers in) picks the route, applies the rate
 * limit and the Content-Length cap and may answer at once (MHD then skips the body and closes);
 * later calls append the body; the last call runs the route's handler and queues its response.
 * MHD's request-completed callback ends the request (metrics, in-flight count). A streamed
 * response (http_stream.c) is an MHD callback response; the connection is suspended while its
 * producer has nothing to send, so the stop cuts streams still running after the drain: MHD must
 * not be stopped with a connection suspended.
 *
 * TLS: libmicrohttpd's own (GnuTLS), with the certificate chosen per handshake by tls_pick_cert
 * rather than fixed at start, so os_http_server_reload_tls can swap it while serving; the pairs
 * and their references are http_tls.c's.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "openseed/config.h"
#include "openseed/ratelimit.h"

#define DEFAULT_THREADS 2u
#define DEFAULT_MAX_CONN 1024u
#define DEFAULT_PER_IP 64u
#define DEFAULT_TIMEOUT_S 30u
#define DEFAULT_MAX_BODY ((size_t)64 << 10)
#define DEFAULT_MAX_HEADER ((size_t)16 << 10)
#define DEFAULT_DRAIN_MS 5000u
#define DEFAULT_MAX_STREAMS 256u
#define DEFAULT_STREAM_BUF ((size_t)64 << 10)
/* After the drain, cut streams get this long to close before MHD is stopped. */
#define CUT_WAIT_MS 1000u
#define MAX_THREADS 256u
/* A chunked body past the cap is discarded up to this much (or max_body) more, then cut off. */
#define DRAIN_MIN ((size_t)1 << 20)
/* Buffers larger than this are freed when a request ends instead of kept for the next. */
#define KEEP_MAX ((size_t)16 << 10)
#define ADDR_TEXT 64
#define LISTEN_BACKLOG 1024
/* TLS 1.2 and 1.3 only, GnuTLS's default suites within them (checked with GnuTLS 3.7.9). */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_PATH_MAX 4096

static const char FALLBACK_500[] =
    "{\"error\":{\"message\":\"internal server error\",\"type\":\"server_error\",\"code\":null}}";

typedef struct conn {
    struct os_http_server *srv;
    os_http_tls_pair *tls;  /* the pair this connection's handshake picked; a reference */
    char client[ADDR_TEXT]; /* os_http_req_client */
    char rl_key[ADDR_TEXT]; /* rate-limit key: the address, or an IPv6 /64 */
    /* per request */
    bool active;    /* counted in in_flight */
    bool responded; /* a response is queued */
    bool too_big;
    bool limited; /* rl holds this request's rate-limit outcome */
    const os_http_route *route;
    size_t route_prefix; /* bytes of path matched by a prefix route */
    uint64_t t0_ns;
    size_t drained;
    unsigned status;
    os_ratelimit_result rl;
    char *body;
    size_t body_len, body_cap;
    os_http_request req;
    os_http_response res;
} conn;

typedef struct route_info {
    size_t len; /* of the path, without a trailing '*' */
    bool prefix;
} route_info;

struct os_http_server {
    unsigned threads, max_conn, per_ip, timeout_s, drain_ms;
    size_t max_body, max_header, drain_max;
    const os_logger *log;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char listen[OS_CFG_LISTEN_STR_LEN]; /* as configured, for logs */
    const os_http_route *routes;
    size_t n_routes;
    route_info *ri;
    void *ctx;
    struct MHD_Daemon *d;
    int listen_fd;
    pthread_t acceptor;
    uint16_t port;
    os_ratelimit *rl;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long in_flight;
    atomic_bool stopping;
    atomic_bool started_ok; /* MHD log lines before this are start-up errors worth a warning */
    os_metric *m_requests, *m_duration, *m_in_flight, *m_limited;
    http_streams streams;
    os_http_tls *tls; /* the certificate and key (http_tls.c); NULL without TLS */
};

/* ---- small helpers ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void trim_buffer(char **buf, size_t *cap)
{
    if (*cap > KEEP_MAX) {
        free(*buf);
        *buf = NULL;
        *cap = 0;
    }
}

/* ---- listen address ---- */

/*
 * cfg->listen as http.h has it: the config module's parser and bind rules (so a configuration that
 * loads is one the server binds), plus "" and "*" for every IPv4 address, which a program may pass
 * although a config file spells it 0.0.0.0.
 */
static os_err parse_listen(os_http_server *s, const char *listen)
{
    char any[OS_CFG_LISTEN_STR_LEN + 8], err[128] = "missing or too long";
    const char *text = listen;
    os_cfg_listen l;
    os_err rc = OS_ERR_INVALID;

    if (listen != NULL && strlen(listen) < sizeof(s->listen)) {
        if (listen[0] == ':' || (listen[0] == '*' && listen[1] == ':')) {
            /* cannot truncate: any has room for listen and the 7 bytes of "0.0.0.0" */
            snprintf(any, sizeof(any), "0.0.0.0%s", strchr(listen, ':'));
            text = any;
        }
        rc = os_cfg_parse_listen(&l, text, err, sizeof(err));
        if (rc == OS_OK)
            rc = os_cfg_listen_sockaddr(&s->addr, &s->addr_len, &l, err, sizeof(err));
    }
    if (rc != OS_OK) {
        os_log_error(s->log, "bad listen address (want HOST:PORT or [IPv6]:PORT): %s", err);
        return OS_ERR_INVALID;
    }
    snprintf(s->listen, sizeof(s->listen), "%s", listen);
    return OS_OK;
}

/* The client's address as text, and its rate-limit key (an IPv6 address keyed by its /64). */
static void format_client(conn *c, const struct sockaddr *sa)
{
    snprintf(c->client, sizeof(c->client), "unknown");
    snprintf(c->rl_key, sizeof(c->rl_key), "unknown");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        if (inet_ntop(AF_INET, &a4->sin_addr, c->client, sizeof(c->client)) != NULL)
            snprintf(c->rl_key, sizeof(c->rl_key), "%s", c->client);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
            /* a dual-stack socket: key and show the IPv4 client as itself */
            if (inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], c->client, sizeof(c->client)) !=
                NULL)
                snprintf(c->rl_key, sizeof(c->rl_key), "%s", c->client);
            return;
        }
        struct in6_addr net = a6->sin6_addr;
        char tmp[INET6_ADDRSTRLEN];
        memset(&net.s6_addr[8], 0, 8);
        if (inet_ntop(AF_INET6, &a6->sin6_addr, c->client, sizeof(c->client)) != NULL &&
            inet_ntop(AF_INET6, &net, tmp, sizeof(tmp)) != NULL)
            snprintf(c->rl_key, sizeof(c->rl_key), "%s/64", tmp);
    }
}

/* ---- TLS ---- */

/*
 * GnuTLS's certificate callback (MHD_OPTION_HTTPS_CERT_CALLBACK), on the connection's server
 * thread during its handshake: the current pair, with a reference for the connection. GnuTLS
 * neither copies nor frees what it gets here. libmicrohttpd 0.9.75 makes the session's pointer
 * its connection (its PSK callback relies on that too); the check below makes sure.
 */
static int tls_pick_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **pcert, unsigned int *pcert_length,
                         gnutls_privkey_t *pkey)
{
    struct MHD_Connection *mc = gnutls_session_get_ptr(session);
    const union MHD_ConnectionInfo *ci;
    conn *c;

    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    if (mc == NULL)
        return -1;
    ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session != (void *)session)
        return -1;
    ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci == NULL || (c = ci->socket_context) == NULL)
        return -1; /* its allocation failed: fail the handshake, the connection closes */
    /* a second handshake on one session replaces the selection GnuTLS holds */
    return os_http_tls_take(c->srv->tls, &c->tls, pcert, pcert_length, pkey) == OS_OK ? 0 : -1;
}

/* ---- request life ---- */

static const char *const STATUS_CLASSES[] = {"1xx", "2xx", "3xx", "4xx", "5xx", NULL};

static void begin_request(os_http_server *s, conn *c)
{
    c->active = true;
    c->responded = false;
    c->too_big = false;
    c->limited = false;
    c->route = NULL;
    c->route_prefix = 0;
    c->drained = 0;
    c->status = 0;
    c->body_len = 0;
    c->t0_ns = now_ns();
    os_http_res_reset(&c->res);
    pthread_mutex_lock(&s->mu);
    s->in_flight++;
    pthread_mutex_unlock(&s->mu);
    os_metric_gauge_add(s->m_in_flight, 0, 1);
}

static void end_request(os_http_server *s, conn *c)
{
    if (!c->active)
        return;
    c->active = false;
    if (c->responded && c->status >= 100 && c->status < 600) {
        os_metric_inc(s->m_requests, c->status / 100 - 1);
        os_metric_observe(s->m_duration, 0, (double)(now_ns() - c->t0_ns) / 1e9);
    }
    os_metric_gauge_add(s->m_in_flight, 0, -1);
    trim_buffer(&c->body, &c->body_cap);
    trim_buffer(&c->res.body, &c->res.body_cap);
    trim_buffer(&c->res.arena, &c->res.arena_cap);
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    if (s->in_flight == 0)
        pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void add_header_u32(struct MHD_Response *r, const char *name, uint32_t v)
{
    char num[16];
    snprintf(num, sizeof(num), "%" PRIu32, v);
    (void)MHD_add_response_header(r, name, num);
}

/* Queues c->res on the connection. */
static enum MHD_Result respond(os_http_server *s, conn *c, struct MHD_Connection *mc)
{
    os_http_response *res = &c->res;
    struct MHD_Response *r;
    enum MHD_Result ret;
    unsigned status = res->status;
    os_http_stream *st = res->stream;
    const char *ctype = res->ctype >= 0 ? res->arena + res->ctype : NULL;

    res->stream = NULL; /* its server reference passes to the MHD response, or is dropped */
    if (res->failed || status < 100 || status > 599) {
        os_http_stream_abandon(st);
        if (!res->failed && status != 0)
            os_log_warn(s->log, "handler set an invalid HTTP status %u", status);
        status = 500;
        ctype = "application/json";
        r = MHD_create_response_from_buffer(sizeof(FALLBACK_500) - 1, (void *)FALLBACK_500,
                                            MHD_RESPMEM_PERSISTENT);
    } else if (st != NULL) {
        r = os_http_stream_response(st, mc);
    } else {
        r = MHD_create_response_from_buffer(res->body_len, res->body_len ? res->body : NULL,
                                            MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL)
        return MHD_NO;
    if (!res->failed) {
        for (unsigned i = 0; i < res->n_h; i++)
            (void)MHD_add_response_header(r, res->arena + res->h[i].name,
                                          res->arena + res->h[i].value);
    }
    if (ctype != NULL)
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (c->limited) {
        add_header_u32(r, "X-RateLimit-Limit", c->rl.limit);
        add_header_u32(r, "X-RateLimit-Remaining", c->rl.remaining);
        add_header_u32(r, "X-RateLimit-Reset", c->rl.reset_s);
        if (!c->rl.allowed)
            add_header_u32(r, MHD_HTTP_HEADER_RETRY_AFTER, c->rl.retry_after_s);
    }
    if (atomic_load_explicit(&s->stopping, memory_order_relaxed))
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    c->responded = true;
    c->status = status;
    return ret;
}

static bool method_is(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* Picks the route; on a path match with other methods only, fills allow[] for a 405. */
static const os_http_route *find_route(os_http_server *s, conn *c, const char *url,
                                       const char *method, char *allow, size_t allow_cap,
                                       bool *path_matched)
{
    size_t url_len = strlen(url), allow_len = 0;

    *path_matched = false;
    allow[0] = '\0';
    for (size_t i = 0; i < s->n_routes; i++) {
        const os_http_route *rt = &s->routes[i];
        const route_info *ri = &s->ri[i];
        bool match = ri->prefix ? url_len >= ri->len && memcmp(url, rt->path, ri->len) == 0
                                : url_len == ri->len && memcmp(url, rt->path, ri->len) == 0;
        if (!match)
            continue;
        if (method_is(rt->method, method)) {
            c->route_prefix = ri->prefix ? ri->len : url_len;
            return rt;
        }
        *path_matched = true;
        if (strstr(allow, rt->method) == NULL) {
            int n = snprintf(allow + allow_len, allow_cap - allow_len, "%s%s",
                             allow_len ? ", " : "", rt->method);
            if (n > 0 && (size_t)n < allow_cap - allow_len)
                allow_len += (size_t)n;
        }
    }
    return NULL;
}

static bool parse_content_length(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    if (v == NULL || *v == '\0')
        return false;
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9')
            return false;
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return true;
}

/* The first call of a request: route, rate limit, Content-Length; may answer at once. */
static enum MHD_Result on_headers(os_http_server *s, conn *c, struct MHD_Connection *mc,
                                  const char *url, const char *method)
{
    char allow[128];
    bool path_matched;
    uint64_t clen;

    if (atomic_load_explicit(&s->stopping, memory_order_relaxed)) {
        os_http_res_error(&c->res, 503, "server_error", NULL, "server is shutting down");
        return respond(s, c, mc);
    }
    c->route = find_route(s, c, url, method, allow, sizeof(allow), &path_matched);
    if (s->rl != NULL && (c->route == NULL || !c->route->no_rate_limit)) {
        uint64_t ms = now_ns() / 1000000u;
        if (os_ratelimit_take(s->rl, &c->rl, c->rl_key, ms) == OS_OK) {
            c->limited = true;
            if (!c->rl.allowed) {
                os_metric_inc(s->m_limited, 0);
                os_http_res_error(&c->res, 429, "rate_limit_error", "rate_limit_exceeded",
                                  "too many requests; retry after %" PRIu32 " s",
                                  c->rl.retry_after_s);
                return respond(s, c, mc);
            }
        }
    }
    if (c->route == NULL) {
        if (path_matched) {
            os_http_res_error(&c->res, 405, "invalid_request_error", "method_not_allowed",
                              "method not allowed on this path (see the Allow header)");
            if (os_http_res_header(&c->res, "Allow", allow) != OS_OK)
                c->res.failed = true;
        } else {
            os_http_res_error(&c->res, 404, "invalid_request_error", "not_found",
                              "no such endpoint");
        }
        return respond(s, c, mc);
    }
    if (parse_content_length(
            MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH),
            &clen)) {
        if (clen > s->max_body) {
            os_http_res_error(&c->res, 413, "invalid_request_error", "request_too_large",
                              "request body larger than %zu bytes", s->max_body);
            return respond(s, c, mc);
        }
        /* size the buffer once; a failure here just means growing later */
        (void)os_http_grow(&c->body, &c->body_cap, (size_t)clen + 1, s->max_body + 1);
    }
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    os_http_server *s = cls;
    conn *c = *con_cls;

    (void)version;
    if (c == NULL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci == NULL || ci->socket_context == NULL)
            return MHD_NO; /* its allocation failed: drop the connection */
        c = ci->socket_context;
        *con_cls = c;
        begin_request(s, c);
        return on_headers(s, c, mc, url, method);
    }

    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!c->too_big && n > s->max_body - c->body_len)
            c->too_big = true;
        if (c->too_big) {
            c->drained += n;
            return c->drained > s->drain_max ? MHD_NO : MHD_YES;
        }
        if (os_http_grow(&c->body, &c->body_cap, c->body_len + n + 1, s->max_body + 1) != OS_OK)
            return MHD_NO;
        memcpy(c->body + c->body_len, upload_data, n);
        c->body_len += n;
        return MHD_YES;
    }

    if (c->responded)
        return MHD_YES;
    if (c->too_big) {
        os_http_res_error(&c->res, 413, "invalid_request_error", "request_too_large",
                          "request body larger than %zu bytes", s->max_body);
        return respond(s, c, mc);
    }
    if (c->body != NULL)
        c->body[c->body_len] = '\0';
    c->req.max_body = s->max_body;
    c->req.mc = mc;
    c->req.method = method;
    c->req.path = url;
    c->req.rest = url + c->route_prefix;
    c->req.body = c->body_len > 0 ? c->body : "";
    c->req.body_len = c->body_len;
    c->req.client = c->client;
    c->route->fn(s->ctx, &c->req, &c->res);
    if (c->res.status == 0 && !c->res.failed)
        os_log_warn(s->log, "handler for %s %s set no status", c->route->method, c->route->path);
    return respond(s, c, mc);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn *c = *con_cls;
    (void)mc;
    (void)toe;
    if (c == NULL)
        return;
    *con_cls = NULL;
    end_request(cls, c);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    os_http_server *s = cls;
    conn *c;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            return;
        os_http_res_reset(&c->res);
        c->srv = s;
        c->res.streams = &s->streams;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        format_client(c, ci != NULL ? ci->client_addr : NULL);
        *socket_context = c;
        return;
    }
    c = *socket_context;
    if (c == NULL)
        return;
    *socket_context = NULL;
    end_request(s, c); /* normally done already by on_completed */
    /* the connection is closed: its TLS session has no handshake left to use the pair in */
    os_http_tls_release(s->tls, c->tls);
    os_http_res_reset(&c->res);
    free(c->body);
    free(c->res.body);
    free(c->res.arena);
    free(c);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    os_http_server *s = cls;
    os_log_level lvl = atomic_load(&s->started_ok) ? OS_LOG_DEBUG : OS_LOG_WARN;
    char line[256];
    size_t n;

    if (!os_log_enabled(s->log, lvl))
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    os_log(s->log, lvl, "libmicrohttpd: %s", line);
}

/* ---- server life ---- */

static os_err register_metrics(os_http_server *s, os_metrics *m, const char *prefix)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    char name[128];
    os_err err;

    if (prefix == NULL)
        prefix = "openseed_http";
    if (strlen(prefix) > 64)
        return OS_ERR_INVALID;
    snprintf(name, sizeof(name), "%s_requests_total", prefix);
    err = os_metrics_counter(m, &s->m_requests, name, "HTTP responses sent, by status class",
                             "class", STATUS_CLASSES);
    if (err != OS_OK)
        return err;
    snprintf(name, sizeof(name), "%s_request_duration_seconds", prefix);
    err = os_metrics_histogram(m, &s->m_duration, name,
                               "Time from request headers received to response sent", NULL, NULL,
                               bounds, sizeof(bounds) / sizeof(bounds[0]));
    if (err != OS_OK)
        return err;
    snprintf(name, sizeof(name), "%s_requests_in_flight", prefix);
    err = os_metrics_gauge(m, &s->m_in_flight, name, "Requests being received or answered", NULL,
                           NULL);
    if (err != OS_OK)
        return err;
    snprintf(name, sizeof(name), "%s_rate_limited_total", prefix);
    return os_metrics_counter(m, &s->m_limited, name, "Requests refused with 429", NULL, NULL);
}

os_err os_http_server_new(os_http_server **out, const os_http_config *cfg,
                          const os_http_route *routes, size_t n_routes, void *ctx)
{
    os_http_server *s;
    pthread_condattr_t ca;
    os_err err;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (cfg == NULL || (routes == NULL && n_routes > 0))
        return OS_ERR_INVALID;
    for (size_t i = 0; i < n_routes; i++)
        if (routes[i].method == NULL || routes[i].path == NULL || routes[i].path[0] != '/' ||
            routes[i].fn == NULL)
            return OS_ERR_INVALID;
    if (cfg->threads > MAX_THREADS)
        return OS_ERR_RANGE;
    if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL) ||
        (cfg->tls_cert_file != NULL &&
         (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0' ||
          strlen(cfg->tls_cert_file) >= TLS_PATH_MAX || strlen(cfg->tls_key_file) >= TLS_PATH_MAX)))
        return OS_ERR_INVALID;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return OS_ERR_NOMEM;
    s->threads = cfg->threads ? cfg->threads : DEFAULT_THREADS;
    s->max_conn = cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONN;
    s->per_ip = cfg->per_ip_connections ? cfg->per_ip_connections : DEFAULT_PER_IP;
    s->timeout_s = cfg->timeout_s ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
    s->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    s->max_header = cfg->max_header ? cfg->max_header : DEFAULT_MAX_HEADER;
    s->drain_ms = cfg->drain_timeout_ms ? cfg->drain_timeout_ms : DEFAULT_DRAIN_MS;
    s->drain_max = s->max_body > DRAIN_MIN ? s->max_body : DRAIN_MIN;
    s->log = cfg->log;
    s->listen_fd = -1;
    s->routes = routes;
    s->n_routes = n_routes;
    s->ctx = ctx;
    atomic_init(&s->stopping, false);
    atomic_init(&s->started_ok, false);
    if (s->max_body > SIZE_MAX / 4) {
        free(s);
        return OS_ERR_RANGE;
    }
    err = parse_listen(s, cfg->listen);
    if (err != OS_OK) {
        free(s);
        return err;
    }
    s->ri = calloc(n_routes ? n_routes : 1, sizeof(*s->ri));
    if (s->ri == NULL) {
        free(s);
        return OS_ERR_NOMEM;
    }
    for (size_t i = 0; i < n_routes; i++) {
        size_t len = strlen(routes[i].path);
        s->ri[i].prefix = routes[i].path[len - 1] == '*';
        s->ri[i].len = s->ri[i].prefix ? len - 1 : len;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->ri);
        free(s);
        return OS_ERR_NOMEM;
    }
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&s->cv, &ca) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s->ri);
        free(s);
        return OS_ERR_NOMEM;
    }
    pthread_condattr_destroy(&ca);
    if (os_http_streams_init(&s->streams, cfg->max_streams ? cfg->max_streams : DEFAULT_MAX_STREAMS,
                             cfg->stream_buffer ? cfg->stream_buffer : DEFAULT_STREAM_BUF) !=
        OS_OK) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s->ri);
        free(s);
        return OS_ERR_NOMEM;
    }
    if (cfg->tls_cert_file != NULL &&
        (err = os_http_tls_new(&s->tls, cfg->tls_cert_file, cfg->tls_key_file)) != OS_OK) {
        os_http_server_free(s);
        return err;
    }
    if (cfg->rate_per_s > 0) {
        err = os_ratelimit_new(&s->rl, cfg->rate_per_s,
                               cfg->rate_burst ? cfg->rate_burst : cfg->rate_per_s,
                               cfg->rate_capacity);
        if (err != OS_OK) {
            os_http_server_free(s);
            return err;
        }
    }
    if (cfg->metrics != NULL) {
        err = register_metrics(s, cfg->metrics, cfg->metrics_prefix);
        if (err != OS_OK) {
            os_http_server_free(s);
            return err;
        }
    }
    *out = s;
    return OS_OK;
}

/* Binds and listens on s->addr; the descriptor, or -1 with errno set. */
static int open_listener(const os_http_server *s)
{
    int one = 1;
    bool v6 = s->addr.ss_family == AF_INET6;
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return -1;
    /* SO_REUSEADDR allows a restart over TIME_WAIT; never SO_REUSEPORT, which would let two
     * servers share a port without an error */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
        bind(fd, (const struct sockaddr *)&s->addr, s->addr_len) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/*
 * The accept loop. libmicrohttpd 0.9.75 can abort the process when MHD_quiesce_daemon races a
 * pool worker that is removing the listening socket from its own epoll set (both sides treat
 * ENOENT as fatal), so MHD is started without a listening socket and this thread hands it each
 * accepted connection; stopping then needs no help from MHD: shut the socket down, join, close.
 */
static void *accept_loop(void *arg)
{
    os_http_server *s = arg;
    struct pollfd pfd = {.fd = s->listen_fd, .events = POLLIN};

    while (!atomic_load_explicit(&s->stopping, memory_order_relaxed)) {
        /* the timeout is only a backstop: shutdown() wakes the poll at once */
        if (poll(&pfd, 1, 500) <= 0)
            continue;
        for (;;) {
            struct sockaddr_storage peer;
            socklen_t plen = sizeof(peer);
            /* MHD makes the socket non-blocking and (with TURBO) close-on-exec */
            int fd = accept(s->listen_fd, (struct sockaddr *)&peer, &plen);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    /* out of descriptors: leave the backlog alone for a moment */
                    os_log_warn(s->log, "accept: %s", strerror(errno));
                    struct timespec ts = {0, 50 * 1000000L};
                    nanosleep(&ts, NULL);
                }
                break; /* EAGAIN, or EINVAL once the socket is shut down */
            }
            /* MHD applies the connection limits here and closes fd itself on refusal */
            (void)MHD_add_connection(s->d, fd, (struct sockaddr *)&peer, plen);
        }
    }
    return NULL;
}

os_err os_http_server_start(os_http_server *s)
{
    unsigned flags;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);

    if (s == NULL || s->d != NULL)
        return OS_ERR_INVALID;
    if (s->tls != NULL) {
        os_err rc = os_http_tls_install(s->tls, s->log, s->listen, false);
        if (rc != OS_OK)
            return rc;
    }
    atomic_store(&s->stopping, false);
    atomic_store(&s->started_ok, false);
    s->listen_fd = open_listener(s);
    if (s->listen_fd < 0) {
        os_log_error(s->log, "cannot listen on %s: %s", s->listen, strerror(errno));
        return OS_ERR_IO;
    }
    if (getsockname(s->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
        return OS_ERR_IO;
    }
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);

    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)s->max_conn, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)s->per_ip, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)s->timeout_s, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)s->max_header, NULL},
        /* MHD warns about a pool of one; leave the option out instead */
        {s->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)s->threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    /* ITC lets MHD_add_connection wake a worker; TURBO tries reads and writes before polling,
     * which saves system calls per keep-alive request. */
    flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
            MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME;
    /* the logger goes first so that MHD reports problems with the other options through it */
    if (s->tls != NULL)
        s->d =
            MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, on_access, s,
                             MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_HTTPS_PRIORITIES,
                             TLS_PRIORITIES, MHD_OPTION_HTTPS_CERT_CALLBACK, tls_pick_cert,
                             MHD_OPTION_ARRAY, opts, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                             MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    else
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER,
                                on_mhd_log, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_NOTIFY_COMPLETED,
                                on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                                MHD_OPTION_END);
    if (s->d == NULL) {
        os_log_error(s->log, "cannot start the HTTP server on %s", s->listen);
        close(s->listen_fd);
        s->listen_fd = -1;
        s->port = 0;
        return OS_ERR_IO;
    }
    atomic_store(&s->started_ok, true);
    if (pthread_create(&s->acceptor, NULL, accept_loop, s) != 0) {
        MHD_stop_daemon(s->d);
        s->d = NULL;
        close(s->listen_fd);
        s->listen_fd = -1;
        s->port = 0;
        return OS_ERR_NOMEM;
    }
    if (s->tls != NULL)
        os_log_info(s->log, "https server listening on %s (port %u, %u threads, TLS 1.2 and 1.3)",
                    s->listen, (unsigned)s->port, s->threads);
    else
        os_log_info(s->log, "http server listening on %s (port %u, %u threads)", s->listen,
                    (unsigned)s->port, s->threads);
    return OS_OK;
}

os_err os_http_server_reload_tls(os_http_server *s)
{
    if (s == NULL)
        return OS_ERR_INVALID;
    if (s->tls == NULL)
        return OS_ERR_UNSUPPORTED;
    return os_http_tls_install(s->tls, s->log, s->listen, true);
}

bool os_http_server_is_tls(const os_http_server *s)
{
    return s != NULL && s->tls != NULL;
}

uint16_t os_http_server_port(const os_http_server *s)
{
    return s != NULL && s->d != NULL ? s->port : 0;
}

/* Waits up to ms for the requests in flight to end; how many are left. */
static unsigned long wait_drained(os_http_server *s, unsigned ms)
{
    struct timespec deadline;
    unsigned long left;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT)
            break;
    left = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    return left;
}

void os_http_server_stop(os_http_server *s)
{
    unsigned long left;

    if (s == NULL || s->d == NULL)
        return;
    /* Stop accepting: shutting the listening socket down wakes the accept thread and resets
     * connections still in the backlog; once it is closed, new connections are refused. */
    atomic_store(&s->stopping, true);
    (void)shutdown(s->listen_fd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->listen_fd);
    s->listen_fd = -1;

    left = wait_drained(s, s->drain_ms);
    if (left > 0) {
        os_log_warn(s->log, "http server on %s stopping with %lu requests still in flight",
                    s->listen, left);
        /* MHD must not be stopped with a suspended connection: cut the streams (which resumes
         * them) and give them a moment to close */
        os_http_streams_cut(&s->streams);
        (void)wait_drained(s, CUT_WAIT_MS);
    }

    /* closes the remaining (idle or overdue) connections and joins the workers */
    MHD_stop_daemon(s->d);
    s->d = NULL;
    s->port = 0;
    os_log_info(s->log, "http server on %s stopped", s->listen);
}

void os_http_server_free(os_http_server *s)
{
    if (s == NULL)
        return;
    os_http_server_stop(s);
    /* every connection has closed and dropped its reference: this frees the pair */
    os_http_tls_free(s->tls);
    os_ratelimit_free(s->rl);
    os_http_streams_destroy(&s->streams);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->ri);
    free(s);
}
