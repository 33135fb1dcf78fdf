/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The general HTTP client of http_client.h over libcurl's easy interface: request checks (URL
 * scheme, method and header syntax) before anything is sent, a mutex-guarded pool of idle easy
 * handles whose connection caches give keep-alive, response headers and body gathered under caps
 * (or the body streamed to a callback), cancellation through the body callback or an atomic flag
 * polled from curl's progress callback, and libcurl's outcome mapped to an os_err and a failure
 * kind with a message built only from parts of the request that hold no secrets.
 */
#include "openseed/http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openseed/ct.h"
#include "openseed/json.h"

#define URL_MAX 8192
#define METHOD_MAX 16
#define REQ_HEADERS_MAX 64
#define REQ_HEADER_LINE_MAX 16384
#define ORIGIN_MAX 160
#define UA_MAX 256
#define CA_PATH_MAX 4096

struct os_http_client {
    os_http_client_config cfg;
    char ua[UA_MAX];
    char *ca_file;      /* NULL: the system's store */
    pthread_mutex_t mu; /* guards idle and n_idle */
    CURL *idle[OS_HTTP_CLIENT_POOL_MAX];
    size_t n_idle;
};

/* ---- client ------------------------------------------------------------------------------ */

/* A ca_file curl could not use would fail every https request with a vague error: say it now. */
static os_err check_ca_file(const char *path)
{
    X509 *x;
    FILE *f;

    if (path[0] == '\0' || strlen(path) >= CA_PATH_MAX)
        return OS_ERR_INVALID;
    f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? OS_ERR_NOTFOUND : OS_ERR_IO;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        return OS_ERR_INVALID;
    X509_free(x);
    return OS_OK;
}

os_err os_http_client_new(os_http_client **out, const os_http_client_config *cfg)
{
    os_http_client_config c = {0};
    os_http_client *cl;

    *out = NULL;
    if (cfg != NULL)
        c = *cfg;
    if (c.connect_timeout_ms < 0 || c.low_speed_bytes < 0 || c.low_speed_time_s < 0 ||
        (c.timeout_ms < 0 && c.timeout_ms != OS_HTTP_NO_TIMEOUT) || c.max_redirects < 0 ||
        c.max_redirects > 20 || c.pool_size > OS_HTTP_CLIENT_POOL_MAX || c.json_max_depth < 0 ||
        c.json_max_depth > 1024)
        return OS_ERR_INVALID;
    if (c.connect_timeout_ms == 0)
        c.connect_timeout_ms = 5000;
    if (c.timeout_ms == 0)
        c.timeout_ms = 30000;
    if (c.max_body == 0)
        c.max_body = 16u * 1024 * 1024;
    if (c.max_headers == 0)
        c.max_headers = 64;
    if (c.max_header_bytes == 0)
        c.max_header_bytes = 32u * 1024;
    if (c.json_max_depth == 0)
        c.json_max_depth = 64;
    if (c.ca_file != NULL) {
        os_err rc = check_ca_file(c.ca_file);
        if (rc != OS_OK)
            return rc;
    }
    cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return OS_ERR_NOMEM;
    if (c.ca_file != NULL && (cl->ca_file = strdup(c.ca_file)) == NULL) {
        free(cl);
        return OS_ERR_NOMEM;
    }
    c.ca_file = cl->ca_file;
    if (c.user_agent == NULL)
        snprintf(cl->ua, sizeof(cl->ua), "openseed/%s", OPENSEED_VERSION);
    else if (strlen(c.user_agent) >= sizeof(cl->ua) || strpbrk(c.user_agent, "\r\n") != NULL) {
        free(cl->ca_file);
        free(cl);
        return OS_ERR_INVALID;
    } else
        snprintf(cl->ua, sizeof(cl->ua), "%s", c.user_agent);
    c.user_agent = cl->ua;
    cl->cfg = c;
    if (pthread_mutex_init(&cl->mu, NULL) != 0) {
        free(cl->ca_file);
        free(cl);
        return OS_ERR_NOMEM;
    }
    *out = cl;
    return OS_OK;
}

void os_http_client_free(os_http_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_idle; i++)
        curl_easy_cleanup(c->idle[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->ca_file);
    free(c);
}

static CURL *handle_get(os_http_client *c)
{
    CURL *h = NULL;

    if (c->cfg.pool_size > 0) {
        pthread_mutex_lock(&c->mu);
        if (c->n_idle > 0)
            h = c->idle[--c->n_idle];
        pthread_mutex_unlock(&c->mu);
    }
    if (h != NULL)
        curl_easy_reset(h); /* options go; the connection and DNS caches stay */
    else
        h = curl_easy_init();
    return h;
}

static void handle_put(os_http_client *c, CURL *h)
{
    if (c->cfg.pool_size > 0) {
        pthread_mutex_lock(&c->mu);
        if (c->n_idle < c->cfg.pool_size) {
            c->idle[c->n_idle++] = h;
            h = NULL;
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (h != NULL)
        curl_easy_cleanup(h);
}

/* ---- response ---------------------------------------------------------------------------- */

void os_http_client_res_init(os_http_client_res *res)
{
    memset(res, 0, sizeof(*res));
    os_buf_init(&res->body, 0);
    os_buf_init(&res->hdr, 0);
}

void os_http_client_res_free(os_http_client_res *res)
{
    if (res == NULL)
        return;
    os_buf_free(&res->body);
    os_buf_free(&res->hdr);
    res->n_headers = 0;
    res->status = 0;
}

size_t os_http_client_res_header_count(const os_http_client_res *res)
{
    return res->n_headers;
}

os_err os_http_client_res_header_at(const os_http_client_res *res, size_t i, const char **name,
                                    const char **value)
{
    const char *p = (const char *)res->hdr.data;

    if (i >= res->n_headers)
        return OS_ERR_RANGE;
    for (size_t k = 0; k < i; k++) {
        p += strlen(p) + 1;
        p += strlen(p) + 1;
    }
    *name = p;
    *value = p + strlen(p) + 1;
    return OS_OK;
}

const char *os_http_client_res_header(const os_http_client_res *res, const char *name)
{
    const char *p = (const char *)res->hdr.data;

    for (size_t k = 0; k < res->n_headers; k++) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

/* ---- errors ------------------------------------------------------------------------------ */

static void err_set(os_http_client_error *e, os_http_fail kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_set(os_http_client_error *e, os_http_fail kind, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL)
        return;
    e->kind = kind;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    for (char *s = e->message; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

static void err_reset(os_http_client_error *e)
{
    if (e == NULL)
        return;
    e->kind = OS_HTTP_FAIL_NONE;
    e->status = 0;
    e->message[0] = '\0';
}

/*
 * Checks the URL with curl's own parser (so what we check is what curl will fetch) and writes
 * "scheme://host:port" into origin: the only part of it an error message may show.
 */
static os_err check_url(char *origin, size_t origin_len, const char *url)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL, *port = NULL;
    os_err err = OS_ERR_INVALID;

    snprintf(origin, origin_len, "(bad URL)");
    if (url == NULL || strnlen(url, URL_MAX + 1) > URL_MAX)
        return OS_ERR_INVALID;
    for (const char *p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return OS_ERR_INVALID;
    u = curl_url();
    if (u == NULL)
        return OS_ERR_NOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0)) {
        snprintf(origin, origin_len, "%s://%.100s:%s", scheme, host, port);
        err = OS_OK;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return err;
}

static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int is_token(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (n >= max || !is_tchar((unsigned char)s[n]))
            return 0;
    return n > 0;
}

static int check_method(const char *m)
{
    size_t n = 0;

    for (; m[n] != '\0'; n++)
        if (n >= METHOD_MAX || m[n] < 'A' || m[n] > 'Z')
            return 0;
    return n > 0;
}

/* Wipes every header line (they may hold API keys) before freeing the list. */
static void slist_free_wiped(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p != NULL; p = p->next)
        os_wipe(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static int has_header(const os_http_header *hs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(hs[i].name, name) == 0)
            return 1;
    return 0;
}

/* Builds curl's header list; OS_ERR_INVALID names no header value in any message. */
static os_err build_headers(struct curl_slist **out, const os_http_client_req *req)
{
    struct curl_slist *l = NULL, *t;
    char *line;
    os_err err = OS_OK;

    *out = NULL;
    if (req->n_headers > REQ_HEADERS_MAX || (req->n_headers > 0 && req->headers == NULL))
        return OS_ERR_INVALID;
    line = malloc(REQ_HEADER_LINE_MAX);
    if (line == NULL)
        return OS_ERR_NOMEM;
    for (size_t i = 0; i < req->n_headers && err == OS_OK; i++) {
        const os_http_header *h = &req->headers[i];
        int n;

        if (h->name == NULL || h->value == NULL || !is_token(h->name, 256) ||
            strcasecmp(h->name, "Content-Length") == 0 ||
            strcasecmp(h->name, "Transfer-Encoding") == 0) {
            err = OS_ERR_INVALID;
            break;
        }
        for (const char *v = h->value; *v != '\0'; v++)
            if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
                err = OS_ERR_INVALID;
        if (err != OS_OK)
            break;
        /* curl sends "Name;" as an empty header; "Name:" would remove it */
        if (h->value[0] == '\0')
            n = snprintf(line, REQ_HEADER_LINE_MAX, "%s;", h->name);
        else
            n = snprintf(line, REQ_HEADER_LINE_MAX, "%s: %s", h->name, h->value);
        if (n < 0 || n >= REQ_HEADER_LINE_MAX) {
            err = OS_ERR_INVALID;
            break;
        }
        t = curl_slist_append(l, line);
        os_wipe(line, (size_t)n);
        if (t == NULL)
            err = OS_ERR_NOMEM;
        else
            l = t;
    }
    free(line);
    if (err == OS_OK && req->body_len > 0 &&
        !has_header(req->headers, req->n_headers, "Content-Type")) {
        /* curl would otherwise claim application/x-www-form-urlencoded */
        t = curl_slist_append(l, "Content-Type: application/octet-stream");
        err = t == NULL ? OS_ERR_NOMEM : OS_OK;
        l = t != NULL ? t : l;
    }
    if (err == OS_OK && !has_header(req->headers, req->n_headers, "Expect")) {
        /* no 100-continue round trip: our bodies are small and the servers ours */
        t = curl_slist_append(l, "Expect:");
        err = t == NULL ? OS_ERR_NOMEM : OS_OK;
        l = t != NULL ? t : l;
    }
    if (err != OS_OK) {
        slist_free_wiped(l);
        return err;
    }
    *out = l;
    return OS_OK;
}

/* ---- transfer ---------------------------------------------------------------------------- */

typedef struct xfer {
    os_http_client_res *res;
    const os_http_client_req *req;
    CURL *h;
    size_t max_body;
    size_t got;
    char errbuf[CURL_ERROR_SIZE]; /* curl's reason for a failure (CURLOPT_ERRORBUFFER) */
    int stopped;                  /* the body callback or the abort flag stopped it */
    int bad;                      /* a malformed header line */
    int head_done;                /* the blank line ending the last response's headers arrived */
    os_err sink_err;
    os_http_fail sink_kind;
} xfer;

static int aborted(const xfer *x)
{
    return x->req->abort != NULL && atomic_load(x->req->abort) != 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    os_http_client_res *res = x->res;
    size_t n = size * nmemb, nl, vs, ve;
    os_err err;

    if (aborted(x)) {
        x->stopped = 1;
        return 0;
    }
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response (after 1xx or a redirect): only the last one's headers count */
        os_buf_reset(&res->hdr);
        res->n_headers = 0;
        x->head_done = 0;
        return n;
    }
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (n == 0) {
        x->head_done = 1; /* the blank line ending the headers */
        return size * nmemb;
    }
    if (p[0] == ' ' || p[0] == '\t') {
        x->bad = 1; /* obsolete line folding: refused, as RFC 9112 §5.2 allows */
        return 0;
    }
    for (nl = 0; nl < n && p[nl] != ':'; nl++)
        if (!is_tchar((unsigned char)p[nl])) {
            x->bad = 1;
            return 0;
        }
    if (nl == 0 || nl == n) {
        x->bad = 1;
        return 0;
    }
    for (vs = nl + 1; vs < n && (p[vs] == ' ' || p[vs] == '\t'); vs++)
        ;
    for (ve = n; ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'); ve--)
        ;
    if (memchr(p + vs, '\0', ve - vs) != NULL) {
        x->bad = 1;
        return 0;
    }
    if (res->n_headers >= res->max_headers) {
        x->sink_err = OS_ERR_TOOBIG;
        return 0;
    }
    err = os_buf_reserve(&res->hdr, nl + (ve - vs) + 2);
    /* none of these can fail after the reserve */
    if (err == OS_OK)
        err = os_buf_append(&res->hdr, p, nl);
    if (err == OS_OK)
        err = os_buf_append_byte(&res->hdr, 0);
    if (err == OS_OK)
        err = os_buf_append(&res->hdr, p + vs, ve - vs);
    if (err == OS_OK)
        err = os_buf_append_byte(&res->hdr, 0);
    if (err == OS_OK)
        res->n_headers++;
    if (err != OS_OK) {
        x->sink_err = err;
        return 0;
    }
    return size * nmemb;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;

    if (aborted(x)) {
        x->stopped = 1;
        return 0;
    }
    if (n > x->max_body - x->got) {
        x->sink_err = OS_ERR_TOOBIG;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    x->got += n;
    if (x->res->status == 0)
        (void)curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->res->status);
    if (x->req->on_body != NULL) {
        if (x->req->on_body(x->req->on_body_ud, x->res, (const uint8_t *)p, n) != 0) {
            x->stopped = 1;
            return 0;
        }
        return n;
    }
    x->sink_err = os_buf_append(&x->res->body, p, n);
    return x->sink_err == OS_OK ? n : 0;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer *x = ud;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (aborted(x)) {
        x->stopped = 1;
        return 1;
    }
    return 0;
}

static long eff_timeout(long t)
{
    return t == OS_HTTP_NO_TIMEOUT ? 0 : t; /* curl: 0 = no timeout */
}

static os_err set_options(os_http_client *c, CURL *h, xfer *x, struct curl_slist *hl,
                          const char *method)
{
    const os_http_client_req *req = x->req;
    const char *body = req->body != NULL ? req->body : "";
    long timeout = req->timeout_ms != 0 ? req->timeout_ms : c->cfg.timeout_ms;
    int with_body = req->body_len > 0 || strcmp(method, "POST") == 0 ||
                    strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM-based DNS timeouts */
    SET(CURLOPT_FOLLOWLOCATION, c->cfg.max_redirects > 0 ? 1L : 0L);
    SET(CURLOPT_MAXREDIRS, c->cfg.max_redirects);
    SET(CURLOPT_HTTPHEADER, hl);
    SET(CURLOPT_USERAGENT, c->cfg.user_agent);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, eff_timeout(timeout));
    if (c->cfg.low_speed_bytes > 0 && c->cfg.low_speed_time_s > 0) {
        SET(CURLOPT_LOW_SPEED_LIMIT, c->cfg.low_speed_bytes);
        SET(CURLOPT_LOW_SPEED_TIME, c->cfg.low_speed_time_s);
    }
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    /* curl's defaults already verify; set them anyway so that no reused handle or later change
     * can leave them off */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->ca_file != NULL)
        SET(CURLOPT_CAINFO, c->ca_file);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    if (c->cfg.pool_size == 0)
        SET(CURLOPT_FORBID_REUSE, 1L);
    if (x->max_body != SIZE_MAX)
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body); /* early, on Content-Length */
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, x);
    if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (with_body) {
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
        SET(CURLOPT_POSTFIELDS, body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SET
    return rc == CURLE_OK ? OS_OK : OS_ERR_INTERNAL;
}

static os_http_fail classify(CURLcode rc, os_err *err)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        *err = OS_ERR_NETWORK;
        return OS_HTTP_FAIL_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        *err = OS_ERR_TIMEOUT;
        return OS_HTTP_FAIL_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        *err = OS_ERR_NETWORK;
        return OS_HTTP_FAIL_TLS;
    case CURLE_FILESIZE_EXCEEDED:
        *err = OS_ERR_TOOBIG;
        return OS_HTTP_FAIL_TOOBIG;
    case CURLE_ABORTED_BY_CALLBACK:
        *err = OS_ERR_NETWORK;
        return OS_HTTP_FAIL_ABORTED;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        *err = OS_ERR_INVALID;
        return OS_HTTP_FAIL_INVALID;
    case CURLE_OUT_OF_MEMORY:
        *err = OS_ERR_NOMEM;
        return OS_HTTP_FAIL_INTERNAL;
    default:
        /* partial body, nothing received, send/recv errors, bad framing, redirect loops */
        *err = OS_ERR_NETWORK;
        return OS_HTTP_FAIL_PROTOCOL;
    }
}

/* os_http_client_do, also giving the origin for messages built by the caller. */
static os_err do_request(os_http_client *c, os_http_client_res *res, os_http_client_error *e,
                         char *origin, size_t origin_len, const os_http_client_req *req)
{
    const char *method = req->method != NULL ? req->method : "GET";
    struct curl_slist *hl = NULL;
    xfer x = {0};
    CURLcode rc;
    CURL *h;
    os_err err;
    os_http_fail kind;

    os_http_client_res_free(res);
    res->num_connects = 0;
    err_reset(e);
    snprintf(origin, origin_len, "(bad URL)");
    if (!check_method(method)) {
        err_set(e, OS_HTTP_FAIL_INVALID, "bad HTTP method");
        return OS_ERR_INVALID;
    }
    if (req->timeout_ms < 0 && req->timeout_ms != OS_HTTP_NO_TIMEOUT) {
        err_set(e, OS_HTTP_FAIL_INVALID, "%s: bad timeout", method);
        return OS_ERR_INVALID;
    }
    err = check_url(origin, origin_len, req->url);
    if (err != OS_OK) {
        err_set(e, err == OS_ERR_NOMEM ? OS_HTTP_FAIL_INTERNAL : OS_HTTP_FAIL_INVALID,
                "%s: bad or unsupported URL (http and https only)", method);
        return err;
    }
    if ((req->body == NULL && req->body_len > 0) ||
        (strcmp(method, "HEAD") == 0 && req->body_len > 0)) {
        err_set(e, OS_HTTP_FAIL_INVALID, "%s %s: bad body", method, origin);
        return OS_ERR_INVALID;
    }
    err = build_headers(&hl, req);
    if (err != OS_OK) {
        /* which header is not said: its value could be a key */
        err_set(e, err == OS_ERR_NOMEM ? OS_HTTP_FAIL_INTERNAL : OS_HTTP_FAIL_INVALID,
                "%s %s: bad request header", method, origin);
        return err;
    }
    x.res = res;
    x.req = req;
    x.max_body = req->max_body != 0 ? req->max_body : c->cfg.max_body;
    res->max_headers = c->cfg.max_headers;
    res->max_header_bytes = c->cfg.max_header_bytes;
    os_buf_init(&res->body, x.max_body);
    /* each header costs its bytes plus two NULs, which the cap should not count */
    os_buf_init(&res->hdr, c->cfg.max_header_bytes + 2 * c->cfg.max_headers);
    if (aborted(&x)) {
        slist_free_wiped(hl);
        err_set(e, OS_HTTP_FAIL_ABORTED, "%s %s: aborted", method, origin);
        return OS_ERR_NETWORK;
    }
    h = handle_get(c);
    if (h == NULL) {
        slist_free_wiped(hl);
        err_set(e, OS_HTTP_FAIL_INTERNAL, "%s %s: out of memory", method, origin);
        return OS_ERR_NOMEM;
    }
    x.h = h;
    if (set_options(c, h, &x, hl, method) != OS_OK) {
        curl_easy_cleanup(h);
        slist_free_wiped(hl);
        err_set(e, OS_HTTP_FAIL_INTERNAL, "%s %s: cannot configure curl", method, origin);
        return OS_ERR_INTERNAL;
    }
    rc = curl_easy_perform(h);
    /* x.errbuf dies with this call; a pooled handle must not keep writing there */
    (void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    {
        long st = 0, nc = 0;
        (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        (void)curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nc);
        if (st != 0)
            res->status = st;
        res->num_connects = nc;
    }
    if (e != NULL)
        e->status = res->status;
    if (rc == CURLE_OK && !x.head_done) {
        /* curl takes a close in the middle of the headers for their end: we do not */
        handle_put(c, h);
        slist_free_wiped(hl);
        err_set(e, OS_HTTP_FAIL_PROTOCOL, "%s %s: response headers cut short", method, origin);
        return OS_ERR_NETWORK;
    }
    if (rc == CURLE_OK) {
        handle_put(c, h);
        slist_free_wiped(hl);
        return OS_OK;
    }
    if (x.sink_err == OS_ERR_TOOBIG || rc == CURLE_FILESIZE_EXCEEDED) {
        err = OS_ERR_TOOBIG;
        kind = OS_HTTP_FAIL_TOOBIG;
        err_set(e, kind, "%s %s: response larger than its cap", method, origin);
    } else if (x.sink_err == OS_ERR_NOMEM) {
        err = OS_ERR_NOMEM;
        kind = OS_HTTP_FAIL_INTERNAL;
        err_set(e, kind, "%s %s: out of memory", method, origin);
    } else if (x.stopped || rc == CURLE_ABORTED_BY_CALLBACK) {
        err = OS_ERR_NETWORK;
        kind = OS_HTTP_FAIL_ABORTED;
        err_set(e, kind, "%s %s: aborted", method, origin);
    } else if (x.bad) {
        err = OS_ERR_NETWORK;
        kind = OS_HTTP_FAIL_PROTOCOL;
        err_set(e, kind, "%s %s: malformed response header", method, origin);
    } else {
        kind = classify(rc, &err);
        if (kind == OS_HTTP_FAIL_TLS) {
            long vr = 0;
            /* For TLS failures curl's error buffer holds the TLS library's text, the host name
             * or the CA file's path: nothing secret, and more precise than its static text. */
            (void)curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &vr);
            if (x.errbuf[0] == '\0')
                snprintf(x.errbuf, sizeof(x.errbuf), "%s%s%s", curl_easy_strerror(rc),
                         vr != 0 ? ": " : "", vr != 0 ? X509_verify_cert_error_string(vr) : "");
            err_set(e, kind, "%s %s: %s: %s", method, origin,
                    rc == CURLE_PEER_FAILED_VERIFICATION ? "certificate verify failed"
                                                         : "TLS failed",
                    x.errbuf);
        } else {
            err_set(e, kind, "%s %s: %s", method, origin, curl_easy_strerror(rc));
        }
    }
    handle_put(c, h); /* curl has closed the failed connection; the handle is still good */
    slist_free_wiped(hl);
    return err;
}

os_err os_http_client_do(os_http_client *c, os_http_client_res *res, os_http_client_error *err,
                         const os_http_client_req *req)
{
    char origin[ORIGIN_MAX];

    if (c == NULL || res == NULL || req == NULL) {
        err_set(err, OS_HTTP_FAIL_INVALID, "bad argument");
        return OS_ERR_INVALID;
    }
    return do_request(c, res, err, origin, sizeof(origin), req);
}

/* ---- JSON -------------------------------------------------------------------------------- */

os_err os_http_client_json(os_http_client *c, long *status, json_t **json_out,
                           os_http_client_error *e, const char *method, const char *url,
                           const json_t *json_body, const os_http_header *headers, size_t n_headers)
{
    os_http_header hs[REQ_HEADERS_MAX + 2];
    os_http_client_req req = {0};
    os_http_client_res res;
    char origin[ORIGIN_MAX];
    char jerr[OS_JSON_ERR_LEN];
    char *body = NULL;
    size_t n = 0;
    os_err err;

    *status = 0;
    *json_out = NULL;
    err_reset(e);
    if (c == NULL || n_headers > REQ_HEADERS_MAX || (n_headers > 0 && headers == NULL)) {
        err_set(e, OS_HTTP_FAIL_INVALID, "bad argument");
        return OS_ERR_INVALID;
    }
    for (size_t i = 0; i < n_headers; i++) {
        if (headers[i].name == NULL) {
            err_set(e, OS_HTTP_FAIL_INVALID, "bad request header");
            return OS_ERR_INVALID;
        }
        hs[n++] = headers[i];
    }
    if (json_body != NULL) {
        body = json_dumps(json_body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (body == NULL) {
            err_set(e, OS_HTTP_FAIL_INVALID, "request body cannot be encoded");
            return OS_ERR_INVALID;
        }
        if (!has_header(headers, n_headers, "Content-Type"))
            hs[n++] = (os_http_header){"Content-Type", "application/json"};
    }
    if (!has_header(headers, n_headers, "Accept"))
        hs[n++] = (os_http_header){"Accept", "application/json"};
    req.method = method;
    req.url = url;
    req.headers = hs;
    req.n_headers = n;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    os_http_client_res_init(&res);
    err = do_request(c, &res, e, origin, sizeof(origin), &req);
    *status = res.status;
    if (err == OS_OK && res.body.len > 0) {
        err = os_json_parse(json_out, (const char *)res.body.data, res.body.len, c->cfg.max_body,
                            c->cfg.json_max_depth, jerr, sizeof(jerr));
        if (err != OS_OK) {
            /* os_json_parse's reasons never quote the input */
            err_set(e, err == OS_ERR_NOMEM ? OS_HTTP_FAIL_INTERNAL : OS_HTTP_FAIL_PROTOCOL,
                    "%s %s: HTTP %ld response is not acceptable JSON: %s",
                    method != NULL ? method : "GET", origin, res.status, jerr);
            err = err == OS_ERR_NOMEM ? OS_ERR_NOMEM : OS_ERR_NETWORK;
        }
    }
    os_http_client_res_free(&res);
    if (body != NULL) {
        os_wipe(body, strlen(body));
        free(body);
    }
    return err;
}

os_err os_url_without_userinfo(char *out, size_t cap, const char *url)
{
    const char *auth, *end, *at = NULL;
    int n;

    if (out == NULL || cap == 0)
        return OS_ERR_INVALID;
    out[0] = '\0';
    if (url == NULL)
        return OS_ERR_INVALID;
    auth = strstr(url, "://");
    auth = auth != NULL ? auth + 3 : url;
    end = auth + strcspn(auth, "/?#");
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p; /* the last one: an unencoded '@' in a password does not leak the rest */
    n = at != NULL ? snprintf(out, cap, "%.*s%s", (int)(auth - url), url, at + 1)
                   : snprintf(out, cap, "%s", url);
    return n < 0 || (size_t)n >= cap ? OS_ERR_TOOBIG : OS_OK;
}
