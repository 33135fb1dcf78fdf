/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server of http.h, started for real on 127.0.0.1 port 0 and driven with libcurl: routes
 * (exact, prefix, HEAD), query and header access, the OpenAI error shape of 404/405/400/413/429,
 * body caps with Content-Length and with chunked uploads, rate-limit headers, per-address and total
 * connection limits, keep-alive reuse, concurrent clients, the graceful stop (a request in flight
 * completes, new connections are refused, a kept-alive client gets 503), two servers in one
 * process, bad configurations, and the metrics the server reports.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "openseed/http.h"
#include "openseed/metrics.h"

/* ---- the application under test ---- */

typedef struct app {
    atomic_int slow_entered;
    atomic_int slow_done;
    unsigned slow_ms;
} app;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}

static void h_echo(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "method", os_http_req_method(req), "path",
        os_http_req_path(req), "rest", or_null(os_http_req_path_rest(req)), "q",
        or_null(os_http_req_query(req, "a")), "h", or_null(os_http_req_header(req, "x-test")),
        "client", os_http_req_client(req), "missing", or_null(os_http_req_query(req, "nope")));
    if (os_http_res_json(res, 200, o) != OS_OK)
        os_http_res_error(res, 500, "server_error", NULL, "json");
}

/* /uint?n=…: os_http_req_query_uint over [5, 1000] with default 42, as {"rc":…, "n":…}. */
static void h_uint(void *ctx, const os_http_request *req, os_http_response *res)
{
    uint64_t n = 7;
    os_err rc = os_http_req_query_uint(req, "n", 5, 1000, 42, &n);
    (void)ctx;
    if (os_http_res_json(res, 200, json_pack("{s:i, s:I}", "rc", (int)rc, "n", (json_int_t)n)) !=
        OS_OK)
        os_http_res_error(res, 500, "server_error", NULL, "json");
}

static void h_json(void *ctx, const os_http_request *req, os_http_response *res)
{
    json_t *v;
    (void)ctx;
    if (os_http_req_json(&v, req, res, 4) != OS_OK)
        return;
    json_t *o = json_pack("{s:b, s:O}", "ok", 1, "got", v);
    json_decref(v);
    if (os_http_res_json(res, 200, o) != OS_OK)
        os_http_res_status(res, 599);
}

static void h_upload(void *ctx, const os_http_request *req, os_http_response *res)
{
    size_t len;
    const char *b = os_http_req_body(req, &len);
    char out[64];
    (void)ctx;
    /* the body is NUL-terminated one past its length */
    snprintf(out, sizeof(out), "%zu %d", len, b[len] == '\0');
    os_http_res_status(res, 200);
    /* no cmocka asserts here: this runs on a server thread */
    if (os_http_res_body(res, "text/plain", out, strlen(out)) != OS_OK)
        os_http_res_status(res, 599);
}

static void h_slow(void *ctx, const os_http_request *req, os_http_response *res)
{
    app *a = ctx;
    (void)req;
    atomic_store(&a->slow_entered, 1);
    sleep_ms(a->slow_ms);
    os_http_res_status(res, 200);
    if (os_http_res_body(res, "text/plain", "done", 4) != OS_OK)
        os_http_res_status(res, 599);
    atomic_store(&a->slow_done, 1);
}

static void h_health(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    (void)req;
    os_http_res_status(res, 200);
    if (os_http_res_body(res, "text/plain", "ok", 2) != OS_OK)
        os_http_res_status(res, 599);
}

/* Exercises the response builders' refusals; reports them in headers. */
static void h_headers(void *ctx, const os_http_request *req, os_http_response *res)
{
    char report[64];
    (void)ctx;
    (void)req;
    os_err inj = os_http_res_header(res, "X-Evil", "a\r\nSet-Cookie: x=1");
    os_err badname = os_http_res_header(res, "Bad Name", "v");
    os_err clen = os_http_res_header(res, "Content-Length", "5");
    os_err ok = os_http_res_header(res, "X-Good", "yes");
    os_err ctype = os_http_res_header(res, "Content-Type", "text/x-first");
    snprintf(report, sizeof(report), "%d %d %d %d %d", inj, badname, clen, ok, ctype);
    os_http_res_status(res, 201);
    /* the last content type set wins */
    if (os_http_res_body(res, "text/x-last", report, strlen(report)) != OS_OK)
        os_http_res_status(res, 599);
}

static void h_nothing(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    (void)req;
    (void)res; /* sets no status: the server answers 500 */
}

static const os_http_route ROUTES[] = {
    {"GET", "/echo", h_echo, 0},       {"POST", "/json", h_json, 0},
    {"POST", "/upload", h_upload, 0},  {"GET", "/v1/peers/*", h_echo, 0},
    {"GET", "/only-get", h_health, 0}, {"DELETE", "/only-get", h_health, 0},
    {"GET", "/slow", h_slow, 0},       {"GET", "/healthz", h_health, 1},
    {"GET", "/headers", h_headers, 0}, {"GET", "/nothing", h_nothing, 0},
    {"GET", "/uint", h_uint, 0},
};
#define N_ROUTES (sizeof(ROUTES) / sizeof(ROUTES[0]))

typedef struct fixture {
    os_http_server *srv;
    app app;
    os_metrics *metrics;
    char base[64];
} fixture;

static void start(fixture *f, os_http_config *cfg)
{
    memset(f, 0, sizeof(*f));
    f->app.slow_ms = 600;
    if (cfg->listen == NULL)
        cfg->listen = "127.0.0.1:0";
    assert_int_equal(os_http_server_new(&f->srv, cfg, ROUTES, N_ROUTES, &f->app), OS_OK);
    assert_int_equal(os_http_server_port(f->srv), 0);
    assert_int_equal(os_http_server_start(f->srv), OS_OK);
    assert_true(os_http_server_port(f->srv) != 0);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", os_http_server_port(f->srv));
}

static void finish(fixture *f)
{
    os_http_server_free(f->srv);
    os_metrics_free(f->metrics);
}

/* ---- a small curl client ---- */

typedef struct reply {
    CURLcode rc;
    long status;
    char body[16384];
    size_t len;
    char headers[4096];
    size_t hlen;
    long connects;
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    size_t k = sz * n, room = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    size_t k = sz * n, room = sizeof(r->headers) - 1 - r->hlen;
    memcpy(r->headers + r->hlen, p, k < room ? k : room);
    r->hlen += k < room ? k : room;
    r->headers[r->hlen] = '\0';
    return k;
}

typedef struct upload {
    size_t left;
} upload;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    upload *u = ud;
    size_t k = sz * n < u->left ? sz * n : u->left;
    memset(buf, 'x', k);
    u->left -= k;
    return k;
}

/* One request on handle h (NULL: a fresh handle). body NULL: GET; chunked: body of that size. */
static void request_to(CURL *h, reply *r, const char *method, const char *url, const char *body,
                       size_t chunked, const char *const *hdrs, long timeout_ms)
{
    CURL *own = NULL;
    struct curl_slist *sl = NULL;
    upload up = {chunked};

    memset(r, 0, sizeof(*r));
    if (h == NULL)
        h = own = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 0L);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    if (chunked > 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
        sl = curl_slist_append(sl, "Transfer-Encoding: chunked");
    } else if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
        sl = curl_slist_append(sl, hdrs[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(sl);
    if (own != NULL)
        curl_easy_cleanup(own);
}

static void request(CURL *h, reply *r, const char *method, const char *url, const char *body,
                    size_t chunked, const char *const *hdrs)
{
    request_to(h, r, method, url, body, chunked, hdrs, 5000L);
}

static void get(reply *r, const fixture *f, const char *path)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", f->base, path);
    request(NULL, r, "GET", url, NULL, 0, NULL);
}

/* The value of response header name (case-insensitive), or NULL; copied into out. */
static const char *header(const reply *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; *line != '\0';) {
        const char *end = strstr(line, "\r\n");
        if (end == NULL)
            break;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t k = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
            memcpy(out, v, k);
            out[k] = '\0';
            return out;
        }
        line = end + 2;
    }
    return NULL;
}

static void assert_header(const reply *r, const char *name, const char *want)
{
    char buf[256];
    const char *got = header(r, name, buf, sizeof(buf));
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("header %s: got %s, want %s\n%s", name, got ? got : "(none)", want, r->headers);
}

/* The reply is the OpenAI error shape with this status, type and code (NULL: JSON null). */
static void assert_error(const reply *r, long status, const char *type, const char *code)
{
    json_error_t jerr;
    json_t *v;

    assert_int_equal(r->rc, CURLE_OK);
    if (r->status != status)
        fail_msg("status %ld, want %ld: %s", r->status, status, r->body);
    assert_header(r, "Content-Type", "application/json");
    v = json_loads(r->body, 0, &jerr);
    assert_non_null(v);
    assert_int_equal(json_object_size(v), 1);
    json_t *e = json_object_get(v, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 3);
    assert_true(json_is_string(json_object_get(e, "message")));
    assert_string_equal(json_string_value(json_object_get(e, "type")), type);
    if (code == NULL)
        assert_true(json_is_null(json_object_get(e, "code")));
    else
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    json_decref(v);
}

static json_t *parse(const reply *r)
{
    json_error_t jerr;
    json_t *v = json_loads(r->body, 0, &jerr);
    if (v == NULL)
        fail_msg("not JSON: %s", r->body);
    return v;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    assert_non_null(s);
    return s;
}

/* ---- tests ---- */

static void test_get_query_headers(void **state)
{
    fixture f;
    os_http_config cfg = {0};
    reply r;
    char url[256];
    static const char *const hdrs[] = {"X-Test: v1 v2", NULL};
    (void)state;

    start(&f, &cfg);
    snprintf(url, sizeof(url), "%s/echo?a=hello%%20w%%C3%%B6rld&b=2", f.base);
    request(NULL, &r, "GET", url, NULL, 0, hdrs);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json");
    /* nothing that names the server software */
    assert_null(header(&r, "Server", url, sizeof(url)));
    assert_null(header(&r, "X-RateLimit-Limit", url, sizeof(url)));
    json_t *v = parse(&r);
    assert_string_equal(jstr(v, "method"), "GET");
    assert_string_equal(jstr(v, "path"), "/echo");
    assert_string_equal(jstr(v, "rest"), "");
    assert_string_equal(jstr(v, "q"), "hello w\xc3\xb6rld");
    assert_string_equal(jstr(v, "h"), "v1 v2");
    assert_string_equal(jstr(v, "client"), "127.0.0.1");
    assert_string_equal(jstr(v, "missing"), "(null)");
    json_decref(v);
    /* compact JSON, dumped once */
    assert_null(strstr(r.body, ": "));

    /* HEAD is served by the GET route, without a body */
    snprintf(url, sizeof(url), "%s/echo", f.base);
    request(NULL, &r, "HEAD", url, NULL, 0, NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);

    /* headers beyond the per-connection memory cap (16 KiB) are refused by MHD itself */
    char *hbuf = malloc(20010);
    assert_non_null(hbuf);
    memcpy(hbuf, "X-Big: ", 7);
    memset(hbuf + 7, 'b', 20000);
    hbuf[20007] = '\0';
    const char *big_hdrs[] = {hbuf, NULL};
    request(NULL, &r, "GET", url, NULL, 0, big_hdrs);
    free(hbuf);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 431);
    finish(&f);
}

/* os_http_req_query_uint: the strict decimal syntax and the bounds, through a real request. */
static void test_query_uint(void **state)
{
    static const struct {
        const char *q;
        int rc;
        json_int_t n;
    } cases[] = {
        {"", OS_OK, 42},           {"?n=5", OS_OK, 5},          {"?n=1000", OS_OK, 1000},
        {"?n=77", OS_OK, 77},      {"?n=4", OS_ERR_INVALID, 42}, {"?n=1001", OS_ERR_INVALID, 42},
        {"?n=", OS_ERR_INVALID, 42}, {"?n=%2B7", OS_ERR_INVALID, 42},
        {"?n=-7", OS_ERR_INVALID, 42}, {"?n=%207", OS_ERR_INVALID, 42},
        {"?n=07", OS_ERR_INVALID, 42}, {"?n=7e1", OS_ERR_INVALID, 42},
        {"?n=0x10", OS_ERR_INVALID, 42}, {"?n=18446744073709551616", OS_ERR_INVALID, 42},
        {"?m=9", OS_OK, 42},
    };
    fixture f;
    os_http_config cfg = {0};
    reply r;
    char url[256];
    (void)state;

    start(&f, &cfg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(url, sizeof(url), "%s/uint%s", f.base, cases[i].q);
        request(NULL, &r, "GET", url, NULL, 0, NULL);
        assert_int_equal(r.status, 200);
        json_t *v = parse(&r);
        if (json_integer_value(json_object_get(v, "rc")) != cases[i].rc ||
            json_integer_value(json_object_get(v, "n")) != cases[i].n)
            fail_msg("%s: %s", cases[i].q, r.body);
        json_decref(v);
    }
    finish(&f);
}

static void test_post_json(void **state)
{
    fixture f;
    os_http_config cfg = {0};
    reply r;
    char url[256];
    (void)state;

    start(&f, &cfg);
    snprintf(url, sizeof(url), "%s/json", f.base);
    request(NULL, &r, "POST", url, "{\"a\":[1,{\"b\":null}]}", 0, NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true,\"got\":{\"a\":[1,{\"b\":null}]}}");

    /* malformed: 400, and the reason does not echo the input */
    request(NULL, &r, "POST", url, "{\"SECRET-TOKEN\" 1}", 0, NULL);
    assert_error(&r, 400, "invalid_request_error", NULL);
    assert_non_null(strstr(r.body, "invalid JSON at line 1"));
    assert_null(strstr(r.body, "SECRET"));
    /* deeper than 4 levels */
    request(NULL, &r, "POST", url, "[[[[[1]]]]]", 0, NULL);
    assert_error(&r, 400, "invalid_request_error", NULL);
    assert_non_null(strstr(r.body, "deeper than 4"));
    /* exactly 4 levels is fine */
    request(NULL, &r, "POST", url, "[[[[1]]]]", 0, NULL);
    assert_int_equal(r.status, 200);
    /* empty body, duplicate keys, a bare scalar */
    request(NULL, &r, "POST", url, "", 0, NULL);
    assert_error(&r, 400, "invalid_request_error", NULL);
    request(NULL, &r, "POST", url, "{\"a\":1,\"a\":2}", 0, NULL);
    assert_error(&r, 400, "invalid_request_error", NULL);
    request(NULL, &r, "POST", url, "42", 0, NULL);
    assert_error(&r, 400, "invalid_request_error", NULL);
    finish(&f);
}

static void test_prefix_routes(void **state)
{
    fixture f;
    os_http_config cfg = {0};
    reply r;
    (void)state;

    start(&f, &cfg);
    get(&r, &f, "/v1/peers/0xAbC?a=1");
    assert_int_equal(r.status, 200);
    json_t *v = parse(&r);
    assert_string_equal(jstr(v, "rest"), "0xAbC");
    assert_string_equal(jstr(v, "path"), "/v1/peers/0xAbC");
    assert_string_equal(jstr(v, "q"), "1");
    json_decref(v);
    get(&r, &f, "/v1/peers/");
    assert_int_equal(r.status, 200);
    v = parse(&r);
    assert_string_equal(jstr(v, "rest"), "");
    json_decref(v);
    get(&r, &f, "/v1/peers");
    assert_error(&r, 404, "invalid_request_error", "not_found");
    get(&r, &f, "/echo/more");
    assert_error(&r, 404, "invalid_request_error", "not_found");
    finish(&f);
}

static void test_404_405(void **state)
{
    fixture f;
    os_http_config cfg = {0};
    reply r;
    char url[256];
    (void)state;

    start(&f, &cfg);
    get(&r, &f, "/nope");
    assert_error(&r, 404, "invalid_request_error", "not_found");
    assert_string_equal(r.body, "{\"error\":{\"message\":\"no such endpoint\",\"type\":"
                                "\"invalid_request_error\",\"code\":\"not_found\"}}");
    snprintf(url, sizeof(url), "%s/only-get", f.base);
    request(NULL, &r, "POST", url, "{}", 0, NULL);
    assert_error(&r, 405, "invalid_request_error", "method_not_allowed");
    assert_header(&r, "Allow", "GET, DELETE");
    request(NULL, &r, "DELETE", url, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    finish(&f);
}

static void test_response_builders(void **state)
{
    fixture f;
    os_http_config cfg = {0};
    reply r;
    char buf[64];
    (void)state;

    start(&f, &cfg);
    get(&r, &f, "/headers");
    assert_int_equal(r.status, 201);
    /* CR/LF injection, a bad name and Content-Length are refused; the rest is applied */
    snprintf(buf, sizeof(buf), "%d %d %d %d %d", OS_ERR_INVALID, OS_ERR_INVALID, OS_ERR_INVALID,
             OS_OK, OS_OK);
    assert_string_equal(r.body, buf);
    assert_header(&r, "X-Good", "yes");
    assert_header(&r, "Content-Type", "text/x-last");
    assert_null(header(&r, "Set-Cookie", buf, sizeof(buf)));
    assert_null(header(&r, "X-Evil", buf, sizeof(buf)));

    get(&r, &f, "/nothing");
    assert_error(&r, 500, "server_error", NULL);
    finish(&f);
}

static void test_body_cap(void **state)
{
    fixture f;
    os_http_config cfg = {.max_body = 1024};
    reply r;
    char url[256];
    char *big = malloc(200001);
    static const char *const no_expect[] = {"Expect:", NULL};
    static const char *const expect[] = {"Expect: 100-continue", NULL};
    (void)state;

    assert_non_null(big);
    start(&f, &cfg);
    snprintf(url, sizeof(url), "%s/upload", f.base);

    memset(big, 'x', 1024);
    big[1024] = '\0';
    request(NULL, &r, "POST", url, big, 0, no_expect);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "1024 1"); /* exactly the cap is fine */

    big[1024] = 'x';
    big[1025] = '\0';
    request(NULL, &r, "POST", url, big, 0, no_expect);
    assert_error(&r, 413, "invalid_request_error", "request_too_large");

    /* a large declared body is refused before it is sent: curl waits for 100 Continue */
    memset(big, 'x', 200000);
    big[200000] = '\0';
    request(NULL, &r, "POST", url, big, 0, expect);
    assert_error(&r, 413, "invalid_request_error", "request_too_large");

    /* chunked: no length up front; counted as it arrives */
    request(NULL, &r, "POST", url, NULL, 1000, no_expect);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "1000 1");
    request(NULL, &r, "POST", url, NULL, 5000, no_expect);
    assert_error(&r, 413, "invalid_request_error", "request_too_large");
    request(NULL, &r, "POST", url, NULL, 5000, expect);
    assert_error(&r, 413, "invalid_request_error", "request_too_large");
    /* far past the cap (and the 1 MiB drain allowance): cut off without a reply */
    request(NULL, &r, "POST", url, NULL, (size_t)4 << 20, no_expect);
    assert_true(r.rc != CURLE_OK || r.status == 413);

    /* the server is still healthy */
    request(NULL, &r, "POST", url, "{}", 0, NULL);
    assert_string_equal(r.body, "2 1");
    free(big);
    finish(&f);
}

static void test_rate_limit(void **state)
{
    fixture f;
    os_http_config cfg = {.rate_per_s = 1, .rate_burst = 3};
    reply r;
    char buf[32];
    (void)state;

    start(&f, &cfg);
    for (int i = 0; i < 3; i++) {
        get(&r, &f, "/echo");
        assert_int_equal(r.status, 200);
        assert_header(&r, "X-RateLimit-Limit", "3");
        snprintf(buf, sizeof(buf), "%d", 2 - i);
        assert_header(&r, "X-RateLimit-Remaining", buf);
        assert_null(header(&r, "Retry-After", buf, sizeof(buf)));
    }
    get(&r, &f, "/echo");
    assert_error(&r, 429, "rate_limit_error", "rate_limit_exceeded");
    assert_header(&r, "X-RateLimit-Limit", "3");
    assert_header(&r, "X-RateLimit-Remaining", "0");
    assert_header(&r, "Retry-After", "1");
    /* three tokens short at one per second (less a few ms of refill): 3 s to full */
    assert_header(&r, "X-RateLimit-Reset", "3");
    /* unknown paths count too; exempt routes neither count nor carry the headers */
    get(&r, &f, "/nope");
    assert_int_equal(r.status, 429);
    get(&r, &f, "/healthz");
    assert_int_equal(r.status, 200);
    assert_null(header(&r, "X-RateLimit-Limit", buf, sizeof(buf)));
    /* a second later one more request is allowed */
    sleep_ms(1050);
    get(&r, &f, "/echo");
    assert_int_equal(r.status, 200);
    assert_header(&r, "X-RateLimit-Remaining", "0");
    finish(&f);
}

static int raw_connect(uint16_t port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void test_connection_limits(void **state)
{
    fixture f;
    os_http_config cfg = {.per_ip_connections = 2};
    reply r;
    int fds[2];
    (void)state;

    /* per address: a third connection from 127.0.0.1 is closed at once */
    start(&f, &cfg);
    fds[0] = raw_connect(os_http_server_port(f.srv));
    fds[1] = raw_connect(os_http_server_port(f.srv));
    sleep_ms(200);
    get(&r, &f, "/healthz");
    assert_true(r.rc != CURLE_OK);
    close(fds[0]);
    close(fds[1]);
    sleep_ms(200);
    get(&r, &f, "/healthz");
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    finish(&f);

    /* in total: at the limit, new connections wait (or are dropped) until one closes */
    os_http_config cfg2 = {.max_connections = 2, .threads = 1};
    start(&f, &cfg2);
    fds[0] = raw_connect(os_http_server_port(f.srv));
    fds[1] = raw_connect(os_http_server_port(f.srv));
    sleep_ms(200);
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", f.base);
    request_to(NULL, &r, "GET", url, NULL, 0, NULL, 500L);
    assert_true(r.rc != CURLE_OK);
    close(fds[0]);
    close(fds[1]);
    sleep_ms(200);
    get(&r, &f, "/healthz");
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    finish(&f);
}

/* An idle connection is closed after timeout_s. */
static void test_idle_timeout(void **state)
{
    fixture f;
    os_http_config cfg = {.timeout_s = 1};
    struct timespec t0, t1;
    char b;
    (void)state;

    start(&f, &cfg);
    int fd = raw_connect(os_http_server_port(f.srv));
    struct timeval tv = {5, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(recv(fd, &b, 1, 0), 0); /* orderly close by the server */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited > 0.5 && waited < 4.0);
    close(fd);
    finish(&f);
}

static void test_keep_alive(void **state)
{
    fixture f;
    os_http_config cfg = {0};
    reply r;
    char url[256], url2[256];
    CURL *h;
    (void)state;

    start(&f, &cfg);
    h = curl_easy_init();
    snprintf(url, sizeof(url), "%s/echo?a=1", f.base);
    snprintf(url2, sizeof(url2), "%s/upload", f.base);
    request(h, &r, "GET", url, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 1);
    for (int i = 0; i < 5; i++) {
        request(h, &r, "GET", url, NULL, 0, NULL);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.connects, 0); /* reused */
        request(h, &r, "POST", url2, "abc", 0, NULL);
        assert_string_equal(r.body, "3 1");
        assert_int_equal(r.connects, 0);
    }
    /* an error reply on a request without a body keeps the connection too */
    snprintf(url, sizeof(url), "%s/nope", f.base);
    request(h, &r, "GET", url, NULL, 0, NULL);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.connects, 0);
    curl_easy_cleanup(h);
    finish(&f);
}

typedef struct client_arg {
    const fixture *f;
    int ok;
    int reused;
} client_arg;

static void *client_thread(void *p)
{
    client_arg *a = p;
    char url[256], want[32];
    reply *r = malloc(sizeof(*r));
    CURL *h = curl_easy_init();
    for (int i = 0; i < 200; i++) {
        snprintf(url, sizeof(url), "%s/echo?a=%d", a->f->base, i);
        snprintf(want, sizeof(want), "\"q\":\"%d\"", i);
        request(h, r, "GET", url, NULL, 0, NULL);
        if (r->rc == CURLE_OK && r->status == 200 && strstr(r->body, want) != NULL)
            a->ok++;
        if (r->connects == 0)
            a->reused++;
    }
    curl_easy_cleanup(h);
    free(r);
    return NULL;
}

static void test_concurrent_clients_and_metrics(void **state)
{
    fixture f;
    os_http_config cfg = {.threads = 4};
    os_metrics *m;
    pthread_t th[8];
    client_arg args[8];
    reply r;
    char *text;
    (void)state;

    assert_int_equal(os_metrics_new(&m), OS_OK);
    cfg.metrics = m;
    start(&f, &cfg);
    f.metrics = m;
    for (int i = 0; i < 8; i++) {
        args[i] = (client_arg){&f, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, client_thread, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].ok, 200);
        assert_int_equal(args[i].reused, 199);
    }
    get(&r, &f, "/nope");
    assert_int_equal(r.status, 404);
    get(&r, &f, "/nothing");
    assert_int_equal(r.status, 500);
    /* metrics are recorded when a request completes, just after the client has its reply */
    sleep_ms(50);
    assert_int_equal(os_metrics_render(m, &text, NULL), OS_OK);
    if (strstr(text, "openseed_http_requests_total{class=\"2xx\"} 1600\n") == NULL ||
        strstr(text, "openseed_http_requests_total{class=\"4xx\"} 1\n") == NULL ||
        strstr(text, "openseed_http_requests_total{class=\"5xx\"} 1\n") == NULL ||
        strstr(text, "openseed_http_request_duration_seconds_count 1602\n") == NULL ||
        strstr(text, "openseed_http_requests_in_flight 0\n") == NULL ||
        strstr(text, "openseed_http_rate_limited_total 0\n") == NULL)
        fail_msg("metrics:\n%s", text);
    free(text);

    /* a second server on the same registry needs its own prefix */
    os_http_server *s2;
    os_http_config c2 = {.listen = "127.0.0.1:0", .metrics = m};
    assert_int_equal(os_http_server_new(&s2, &c2, ROUTES, N_ROUTES, NULL), OS_ERR_EXISTS);
    c2.metrics_prefix = "admin_http";
    assert_int_equal(os_http_server_new(&s2, &c2, ROUTES, N_ROUTES, NULL), OS_OK);
    os_http_server_free(s2);
    finish(&f);
}

typedef struct slow_arg {
    const fixture *f;
    reply r;
} slow_arg;

static void *slow_client(void *p)
{
    slow_arg *a = p;
    get(&a->r, a->f, "/slow");
    return NULL;
}

static void *stopper(void *p)
{
    os_http_server_stop(p);
    return NULL;
}

static void test_graceful_stop(void **state)
{
    fixture f;
    os_http_config cfg = {0};
    slow_arg sa;
    pthread_t tc, ts;
    reply r;
    (void)state;

    start(&f, &cfg);
    f.app.slow_ms = 800;
    sa.f = &f;
    assert_int_equal(pthread_create(&tc, NULL, slow_client, &sa), 0);
    while (!atomic_load(&f.app.slow_entered))
        sleep_ms(5);
    assert_int_equal(pthread_create(&ts, NULL, stopper, f.srv), 0);
    sleep_ms(150);

    /* while the slow request drains, new connections are refused */
    get(&r, &f, "/healthz");
    assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
    assert_false(atomic_load(&f.app.slow_done));

    pthread_join(ts, NULL);
    /* stop returned only after the request in flight was answered */
    assert_true(atomic_load(&f.app.slow_done));
    pthread_join(tc, NULL);
    assert_int_equal(sa.r.rc, CURLE_OK);
    assert_int_equal(sa.r.status, 200);
    assert_string_equal(sa.r.body, "done");
    assert_int_equal(os_http_server_port(f.srv), 0);
    os_http_server_stop(f.srv); /* idempotent */

    /* and it can be started again */
    assert_int_equal(os_http_server_start(f.srv), OS_OK);
    snprintf(f.base, sizeof(f.base), "http://127.0.0.1:%u", os_http_server_port(f.srv));
    get(&r, &f, "/healthz");
    assert_int_equal(r.status, 200);
    finish(&f);
}

static void send_all(int fd, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/*
 * A request whose body is still arriving is in flight without occupying a server thread, so the
 * drain can be watched deterministically: a kept-alive client is told 503 and "Connection:
 * close", and the half-sent request still completes once its body arrives.
 */
static void test_stop_drains_upload(void **state)
{
    fixture f;
    os_http_config cfg = {0};
    pthread_t ts;
    reply r;
    char url[256], resp[2048];
    size_t got = 0;
    ssize_t n;
    CURL *kept;
    int fd;
    (void)state;

    start(&f, &cfg);
    kept = curl_easy_init();
    snprintf(url, sizeof(url), "%s/echo", f.base);
    request(kept, &r, "GET", url, NULL, 0, NULL);
    assert_int_equal(r.status, 200);

    fd = raw_connect(os_http_server_port(f.srv));
    send_all(fd, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345");
    sleep_ms(100);
    assert_int_equal(pthread_create(&ts, NULL, stopper, f.srv), 0);
    sleep_ms(100);

    get(&r, &f, "/healthz");
    assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
    request(kept, &r, "GET", url, NULL, 0, NULL);
    assert_error(&r, 503, "server_error", NULL);
    assert_int_equal(r.connects, 0);
    assert_header(&r, "Connection", "close");

    send_all(fd, "67890");
    while (got < sizeof(resp) - 1 && (n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0)) > 0)
        got += (size_t)n;
    resp[got] = '\0';
    close(fd);
    pthread_join(ts, NULL);
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || strstr(resp, "\r\n\r\n10 1") == NULL)
        fail_msg("reply to the half-sent request:\n%s", resp);
    curl_easy_cleanup(kept);
    finish(&f);
}

static void test_two_servers(void **state)
{
    fixture a, b;
    os_http_config ca = {0}, cb = {.threads = 1};
    reply r;
    (void)state;

    start(&a, &ca);
    start(&b, &cb);
    assert_true(os_http_server_port(a.srv) != os_http_server_port(b.srv));
    get(&r, &a, "/healthz");
    assert_int_equal(r.status, 200);
    get(&r, &b, "/healthz");
    assert_int_equal(r.status, 200);
    /* a port in use cannot be bound twice */
    os_http_server *dup;
    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", os_http_server_port(a.srv));
    os_http_config cd = {.listen = listen};
    assert_int_equal(os_http_server_new(&dup, &cd, ROUTES, N_ROUTES, NULL), OS_OK);
    assert_int_equal(os_http_server_start(dup), OS_ERR_IO);
    assert_int_equal(os_http_server_port(dup), 0);
    os_http_server_free(dup);
    finish(&a);
    get(&r, &b, "/healthz");
    assert_int_equal(r.status, 200);
    finish(&b);
}

static void test_ipv6(void **state)
{
    os_http_server *s;
    os_http_config cfg = {.listen = "[::1]:0"};
    reply r;
    char url[64];
    app a = {0};
    (void)state;

    assert_int_equal(os_http_server_new(&s, &cfg, ROUTES, N_ROUTES, &a), OS_OK);
    if (os_http_server_start(s) != OS_OK) {
        os_http_server_free(s);
        skip(); /* no IPv6 loopback here */
    }
    snprintf(url, sizeof(url), "http://[::1]:%u/echo", os_http_server_port(s));
    request(NULL, &r, "GET", url, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    json_t *v = parse(&r);
    assert_string_equal(jstr(v, "client"), "::1");
    json_decref(v);
    os_http_server_free(s);
}

static void test_bad_config(void **state)
{
    static const char *const bad[] = {"",
                                      "nope",
                                      "127.0.0.1",
                                      ":",
                                      "1.2.3.4:99999",
                                      "1.2.3.4:-1",
                                      "1.2.3:80",
                                      "::1:80",
                                      "[::1]80",
                                      "[::1]:",
                                      "[nothost]:80",
                                      "127.0.0.1:80x",
                                      "host.example:80",
                                      "[::1]:123456"};
    static const char *const good[] = {"0.0.0.0:8379", ":0", "*:0", "localhost:0", "[::]:0"};
    os_http_server *s = (os_http_server *)1;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        os_http_config cfg = {.listen = bad[i]};
        if (os_http_server_new(&s, &cfg, ROUTES, N_ROUTES, NULL) != OS_ERR_INVALID)
            fail_msg("accepted listen address \"%s\"", bad[i]);
        assert_null(s);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        os_http_config cfg = {.listen = good[i]};
        assert_int_equal(os_http_server_new(&s, &cfg, ROUTES, N_ROUTES, NULL), OS_OK);
        os_http_server_free(s);
    }
    os_http_config cfg = {.listen = "127.0.0.1:0"};
    assert_int_equal(os_http_server_new(&s, NULL, ROUTES, N_ROUTES, NULL), OS_ERR_INVALID);
    static const os_http_route no_slash[] = {{"GET", "x", h_health, 0}};
    static const os_http_route no_fn[] = {{"GET", "/x", NULL, 0}};
    assert_int_equal(os_http_server_new(&s, &cfg, no_slash, 1, NULL), OS_ERR_INVALID);
    assert_int_equal(os_http_server_new(&s, &cfg, no_fn, 1, NULL), OS_ERR_INVALID);
    cfg.threads = 100000;
    assert_int_equal(os_http_server_new(&s, &cfg, ROUTES, N_ROUTES, NULL), OS_ERR_RANGE);
    /* no routes at all: everything is 404 */
    fixture f;
    os_http_config c0 = {0};
    memset(&f, 0, sizeof(f));
    c0.listen = "127.0.0.1:0";
    assert_int_equal(os_http_server_new(&f.srv, &c0, NULL, 0, NULL), OS_OK);
    assert_int_equal(os_http_server_start(f.srv), OS_OK);
    assert_int_equal(os_http_server_start(f.srv), OS_ERR_INVALID); /* already running */
    snprintf(f.base, sizeof(f.base), "http://127.0.0.1:%u", os_http_server_port(f.srv));
    reply r;
    get(&r, &f, "/");
    assert_error(&r, 404, "invalid_request_error", "not_found");
    finish(&f);
    os_http_server_free(NULL);
    os_http_server_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_query_headers),
        cmocka_unit_test(test_query_uint),
        cmocka_unit_test(test_post_json),
        cmocka_unit_test(test_prefix_routes),
        cmocka_unit_test(test_404_405),
        cmocka_unit_test(test_response_builders),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_connection_limits),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_concurrent_clients_and_metrics),
        cmocka_unit_test(test_graceful_stop),
        cmocka_unit_test(test_stop_drains_upload),
        cmocka_unit_test(test_two_servers),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
