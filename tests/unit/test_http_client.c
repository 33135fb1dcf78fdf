/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP client of http_client.h against real servers on 127.0.0.1 port 0: libcommon's own
 * os_http_server for well-formed answers (methods, headers, bodies, status codes, caps, JSON,
 * keep-alive, threads), and a scripted raw-socket server for what a well-behaved server never does
 * (chunked streams in pieces, a body cut short, no answer at all, a trickle, a flood of headers, an
 * endless stream to cancel). Every error path is also checked for leaked secrets.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "openseed/http.h"
#include "openseed/http_client.h"
#include "openseed/json.h"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the well-behaved server: os_http_server ---- */

static void h_echo(void *ctx, const os_http_request *req, os_http_response *res)
{
    size_t len;
    const char *body = os_http_req_body(req, &len);
    const char *xt = os_http_req_header(req, "x-test");
    const char *ua = os_http_req_header(req, "user-agent");
    const char *ct = os_http_req_header(req, "content-type");
    (void)ctx;
    json_t *o = json_pack("{s:s, s:s%, s:s, s:s, s:s}", "method", os_http_req_method(req), "body",
                          body, len, "x_test", xt != NULL ? xt : "", "ua", ua != NULL ? ua : "",
                          "ct", ct != NULL ? ct : "");
    if (os_http_res_header(res, "X-Reply", "Yes-Indeed") != OS_OK ||
        os_http_res_json(res, 200, o) != OS_OK)
        os_http_res_status(res, 500);
}

static void h_status(void *ctx, const os_http_request *req, os_http_response *res)
{
    unsigned long st = strtoul(os_http_req_path_rest(req), NULL, 10);
    (void)ctx;
    os_http_res_error(res, (unsigned)st, "test_error", NULL, "status %lu", st);
}

static void h_big(void *ctx, const os_http_request *req, os_http_response *res)
{
    static const char filler[100000]; /* zeros */
    (void)ctx;
    (void)req;
    os_http_res_status(res, 200);
    if (os_http_res_body(res, "application/octet-stream", filler, sizeof(filler)) != OS_OK)
        os_http_res_status(res, 500);
}

static void h_html(void *ctx, const os_http_request *req, os_http_response *res)
{
    static const char page[] = "<html>bad gateway</html>";
    (void)ctx;
    (void)req;
    os_http_res_status(res, 502);
    if (os_http_res_body(res, "text/html", page, sizeof(page) - 1) != OS_OK)
        os_http_res_status(res, 500);
}

static void h_deep(void *ctx, const os_http_request *req, os_http_response *res)
{
    static const char deep[] = "[[[[[[[[1]]]]]]]]";
    (void)ctx;
    (void)req;
    os_http_res_status(res, 200);
    if (os_http_res_body(res, "application/json", deep, sizeof(deep) - 1) != OS_OK)
        os_http_res_status(res, 500);
}

static void h_empty(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    (void)req;
    os_http_res_status(res, 204);
}

static const os_http_route ROUTES[] = {
    {"GET", "/echo", h_echo, 1},       {"POST", "/echo", h_echo, 1},
    {"PUT", "/echo", h_echo, 1},       {"DELETE", "/echo", h_echo, 1},
    {"GET", "/status/*", h_status, 1}, {"GET", "/big", h_big, 1},
    {"GET", "/html", h_html, 1},       {"GET", "/deep", h_deep, 1},
    {"GET", "/empty", h_empty, 1},
};
#define N_ROUTES (sizeof(ROUTES) / sizeof(ROUTES[0]))

typedef struct fixture {
    os_http_server *srv;
    char base[64];
} fixture;

static void srv_start(fixture *f)
{
    os_http_config cfg = {.listen = "127.0.0.1:0", .threads = 4, .drain_timeout_ms = 500};
    memset(f, 0, sizeof(*f));
    assert_int_equal(os_http_server_new(&f->srv, &cfg, ROUTES, N_ROUTES, NULL), OS_OK);
    assert_int_equal(os_http_server_start(f->srv), OS_OK);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", os_http_server_port(f->srv));
}

/* ---- the misbehaving server: a raw socket and a script ---- */

typedef struct raw_srv raw_srv;
typedef void (*script_fn)(raw_srv *s, int fd);

struct raw_srv {
    int lfd;
    uint16_t port;
    pthread_t th;
    atomic_int stop;
    script_fn script;
    atomic_int latch;      /* set by the client side */
    atomic_int sent_final; /* set by the script when the body is complete */
    atomic_int conns;
    char base[64];
};

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

/* Reads up to the end of the request headers (requests here carry no body worth reading). */
static void read_request(int fd)
{
    char buf[8192];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0)
            return;
        ssize_t k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (k <= 0)
            return;
        len += (size_t)k;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            return;
    }
}

/* Waits until the server is stopped or the client goes away. */
static void wait_gone(raw_srv *s, int fd)
{
    char b[256];
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0 && recv(fd, b, sizeof(b), 0) <= 0)
            return;
    }
}

static void *raw_main(void *arg)
{
    raw_srv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->conns, 1);
        read_request(fd);
        s->script(s, fd);
        close(fd);
    }
    return NULL;
}

static void raw_start(raw_srv *s, script_fn fn)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    memset(s, 0, sizeof(*s));
    s->script = fn;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%u", s->port);
    assert_int_equal(pthread_create(&s->th, NULL, raw_main, s), 0);
}

static void raw_stop(raw_srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
}

#define CHUNKED_HEAD                                                                               \
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

/* Two SSE events in two chunks; the second only after the client saw the first. */
static void s_pieces(raw_srv *s, int fd)
{
    if (send_str(fd, CHUNKED_HEAD "b\r\ndata: one\n\n\r\n") != 0)
        return;
    for (int i = 0; i < 500 && !atomic_load(&s->latch); i++)
        sleep_ms(10);
    atomic_store(&s->sent_final, 1);
    (void)send_str(fd, "b\r\ndata: two\n\n\r\n0\r\n\r\n");
    wait_gone(s, fd);
}

static void s_truncated(raw_srv *s, int fd)
{
    (void)s;
    (void)send_str(fd, CHUNKED_HEAD "5\r\nhello\r\n"); /* then close: no last chunk */
}

static void s_short_length(raw_srv *s, int fd)
{
    (void)s;
    (void)send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
}

static void s_never(raw_srv *s, int fd)
{
    wait_gone(s, fd);
}

static void s_endless(raw_srv *s, int fd)
{
    if (send_str(fd, CHUNKED_HEAD) != 0)
        return;
    while (!atomic_load(&s->stop)) {
        if (send_str(fd, "7\r\ndata: x\r\n") != 0)
            return;
        sleep_ms(20);
    }
}

static void s_trickle(raw_srv *s, int fd)
{
    if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n") != 0)
        return;
    while (!atomic_load(&s->stop)) {
        if (send_str(fd, "x") != 0)
            return;
        sleep_ms(300);
    }
}

static void s_status_close(raw_srv *s, int fd)
{
    (void)s;
    (void)send_str(fd, "HTTP/1.1 200 OK\r\n");
}

static void s_big_chunked(raw_srv *s, int fd)
{
    char chunk[4096 + 16];
    int n = snprintf(chunk, sizeof(chunk), "1000\r\n");
    (void)s;
    memset(chunk + n, 'a', 4096);
    memcpy(chunk + n + 4096, "\r\n", 2);
    if (send_str(fd, CHUNKED_HEAD) != 0)
        return;
    for (int i = 0; i < 256; i++) /* 1 MiB */
        if (send_all(fd, chunk, (size_t)n + 4096 + 2) != 0)
            return;
    (void)send_str(fd, "0\r\n\r\n");
}

static void s_header_flood(raw_srv *s, int fd)
{
    char line[64];
    (void)s;
    if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n") != 0)
        return;
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof(line), "X-H%d: v\r\n", i);
        if (send_str(fd, line) != 0)
            return;
    }
    (void)send_str(fd, "\r\n");
}

static void s_folded(raw_srv *s, int fd)
{
    (void)s;
    (void)send_str(fd, "HTTP/1.1 200 OK\r\nX-A: one\r\n  two\r\nContent-Length: 0\r\n\r\n");
}

/* ---- helpers ---- */

static os_http_client *client(const os_http_client_config *cfg)
{
    os_http_client *c;
    assert_int_equal(os_http_client_new(&c, cfg), OS_OK);
    return c;
}

static os_err get(os_http_client *c, os_http_client_res *res, os_http_client_error *e,
                  const char *base, const char *path)
{
    char url[256];
    os_http_client_req req = {.url = url};
    snprintf(url, sizeof(url), "%s%s", base, path);
    return os_http_client_do(c, res, e, &req);
}

static void assert_no_secret(const os_http_client_error *e)
{
    if (strstr(e->message, "SECRET") != NULL || strstr(e->message, "hunter2") != NULL)
        fail_msg("secret in error message: %s", e->message);
}

static uint16_t refused_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd); /* bound but never listening: connections are refused */
    return ntohs(a.sin_port);
}

/* ---- tests: normal responses ---- */

static void test_get_post_headers_body(void **state)
{
    fixture f;
    os_http_client_res res;
    os_http_client_error e;
    char url[128];
    json_t *j;
    (void)state;
    srv_start(&f);
    os_http_client *c = client(NULL);
    os_http_client_res_init(&res);

    /* GET: status, case-insensitive header lookup, default user agent */
    assert_int_equal(get(c, &res, &e, f.base, "/echo"), OS_OK);
    assert_int_equal(res.status, 200);
    assert_int_equal(e.kind, OS_HTTP_FAIL_NONE);
    assert_string_equal(os_http_client_res_header(&res, "x-reply"), "Yes-Indeed");
    assert_string_equal(os_http_client_res_header(&res, "X-REPLY"), "Yes-Indeed");
    assert_null(os_http_client_res_header(&res, "X-Absent"));
    assert_true(os_http_client_res_header_count(&res) >= 2);
    const char *hn, *hv;
    assert_int_equal(os_http_client_res_header_at(&res, 0, &hn, &hv), OS_OK);
    assert_int_equal(os_http_client_res_header_at(&res, 1000, &hn, &hv), OS_ERR_RANGE);
    assert_int_equal(os_json_parse(&j, (const char *)res.body.data, res.body.len, 4096, 4, NULL, 0),
                     OS_OK);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "ua")), "openseed/" OPENSEED_VERSION);
    json_decref(j);

    /* POST with headers and a body holding a NUL */
    static const char body[] = "bin\0ary";
    os_http_header hs[] = {{"X-Test", "hello"}, {"Content-Type", "text/plain"}};
    snprintf(url, sizeof(url), "%s/echo", f.base);
    os_http_client_req req = {.method = "POST",
                              .url = url,
                              .headers = hs,
                              .n_headers = 2,
                              .body = body,
                              .body_len = sizeof(body) - 1};
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_OK);
    assert_int_equal(res.status, 200);
    /* the echoed body holds \u0000 */
    assert_int_equal(os_json_parse_flags(&j, (const char *)res.body.data, res.body.len, 4096, 4,
                                         OS_JSON_ALLOW_NUL, NULL, 0),
                     OS_OK);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(j, "x_test")), "hello");
    assert_string_equal(json_string_value(json_object_get(j, "ct")), "text/plain");
    assert_int_equal(json_string_length(json_object_get(j, "body")), sizeof(body) - 1);
    assert_memory_equal(json_string_value(json_object_get(j, "body")), body, sizeof(body) - 1);
    json_decref(j);

    /* PUT and DELETE; a body without Content-Type is declared octet-stream */
    req.method = "PUT";
    req.n_headers = 0;
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_OK);
    assert_int_equal(os_json_parse_flags(&j, (const char *)res.body.data, res.body.len, 4096, 4,
                                         OS_JSON_ALLOW_NUL, NULL, 0),
                     OS_OK);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "PUT");
    assert_string_equal(json_string_value(json_object_get(j, "ct")), "application/octet-stream");
    json_decref(j);
    req.method = "DELETE";
    req.body = NULL;
    req.body_len = 0;
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_OK);
    assert_int_equal(os_json_parse(&j, (const char *)res.body.data, res.body.len, 4096, 4, NULL, 0),
                     OS_OK);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "DELETE");
    json_decref(j);

    /* HEAD: status and headers, no body */
    req.method = "HEAD";
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_OK);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body.len, 0);

    /* a user agent of the caller's */
    os_http_client_config cfg = {.user_agent = "tester/1"};
    os_http_client *c2 = client(&cfg);
    assert_int_equal(get(c2, &res, &e, f.base, "/echo"), OS_OK);
    assert_non_null(strstr((const char *)res.body.data, "tester/1"));

    os_http_client_res_free(&res);
    os_http_client_free(c2);
    os_http_client_free(c);
    os_http_server_free(f.srv);
}

static void test_status_codes(void **state)
{
    fixture f;
    os_http_client_res res;
    os_http_client_error e;
    static const char *const paths[] = {"/status/404", "/status/429", "/status/500",
                                        "/status/503", "/nowhere",    "/empty"};
    static const long want[] = {404, 429, 500, 503, 404, 204};
    (void)state;
    srv_start(&f);
    os_http_client *c = client(NULL);
    os_http_client_res_init(&res);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        /* a non-2xx answer is a response, not a failure */
        assert_int_equal(get(c, &res, &e, f.base, paths[i]), OS_OK);
        assert_int_equal(res.status, want[i]);
        assert_int_equal(e.status, want[i]);
    }
    assert_int_equal(res.body.len, 0);
    os_http_client_res_free(&res);
    os_http_client_free(c);
    os_http_server_free(f.srv);
}

static void test_body_cap(void **state)
{
    fixture f;
    raw_srv r;
    os_http_client_res res;
    os_http_client_error e;
    char url[128];
    (void)state;
    srv_start(&f);
    raw_start(&r, s_big_chunked);
    os_http_client_config cfg = {.max_body = 10000};
    os_http_client *c = client(&cfg);
    os_http_client_res_init(&res);

    /* Content-Length 100000 over a 10000 cap: refused as soon as the headers arrive */
    assert_int_equal(get(c, &res, &e, f.base, "/big"), OS_ERR_TOOBIG);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TOOBIG);
    assert_true(res.body.len <= 10000);

    /* chunked, no length: cut off at the cap while the body streams in */
    assert_int_equal(get(c, &res, &e, r.base, "/"), OS_ERR_TOOBIG);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TOOBIG);
    assert_int_equal(e.status, 200);
    assert_true(res.body.len <= 10000);

    /* a per-request cap overrides the client's */
    snprintf(url, sizeof(url), "%s/big", f.base);
    os_http_client_req req = {.url = url, .max_body = 100000};
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_OK);
    assert_int_equal(res.body.len, 100000);
    req.max_body = 99999;
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_TOOBIG);

    os_http_client_res_free(&res);
    os_http_client_free(c);
    raw_stop(&r);
    os_http_server_free(f.srv);
}

static void test_header_caps(void **state)
{
    raw_srv r;
    os_http_client_res res;
    os_http_client_error e;
    (void)state;
    os_http_client_res_init(&res);

    raw_start(&r, s_header_flood);
    os_http_client *c = client(NULL); /* 64 headers at most */
    assert_int_equal(get(c, &res, &e, r.base, "/"), OS_ERR_TOOBIG);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TOOBIG);
    os_http_client_free(c);
    os_http_client_config cfg = {.max_headers = 200, .max_header_bytes = 200};
    c = client(&cfg); /* 100 x "X-Hn" + "v" is more than 200 bytes */
    assert_int_equal(get(c, &res, &e, r.base, "/"), OS_ERR_TOOBIG);
    os_http_client_free(c);
    cfg.max_header_bytes = 0;
    c = client(&cfg);
    assert_int_equal(get(c, &res, &e, r.base, "/"), OS_OK);
    assert_string_equal(os_http_client_res_header(&res, "x-h99"), "v");
    os_http_client_free(c);
    raw_stop(&r);

    /* obsolete line folding is refused */
    raw_start(&r, s_folded);
    c = client(NULL);
    assert_int_equal(get(c, &res, &e, r.base, "/"), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_PROTOCOL);
    os_http_client_free(c);
    raw_stop(&r);
    os_http_client_res_free(&res);
}

/* ---- tests: failures ---- */

static void test_timeouts(void **state)
{
    raw_srv r;
    os_http_client_res res;
    os_http_client_error e;
    long long t0;
    (void)state;
    os_http_client_res_init(&res);

    /* total timeout: a server that never answers */
    raw_start(&r, s_never);
    os_http_client_config cfg = {.timeout_ms = 300};
    os_http_client *c = client(&cfg);
    t0 = now_ms();
    assert_int_equal(get(c, &res, &e, r.base, "/"), OS_ERR_TIMEOUT);
    assert_true(now_ms() - t0 < 3000);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TIMEOUT);
    assert_int_equal(e.status, 0);
    os_http_client_free(c);
    raw_stop(&r);

    /* low-speed: 1 byte every 300 ms is under 100 B/s for 1 s, with no total timeout */
    raw_start(&r, s_trickle);
    os_http_client_config cfg2 = {
        .timeout_ms = OS_HTTP_NO_TIMEOUT, .low_speed_bytes = 100, .low_speed_time_s = 1};
    c = client(&cfg2);
    t0 = now_ms();
    assert_int_equal(get(c, &res, &e, r.base, "/"), OS_ERR_TIMEOUT);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TIMEOUT);
    assert_int_equal(e.status, 200);
    os_http_client_free(c);
    raw_stop(&r);

    /* a per-request timeout overrides the client's */
    raw_start(&r, s_never);
    c = client(NULL);
    char url[128];
    snprintf(url, sizeof(url), "%s/", r.base);
    os_http_client_req req = {.url = url, .timeout_ms = 200};
    t0 = now_ms();
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_TIMEOUT);
    assert_true(now_ms() - t0 < 3000);
    os_http_client_free(c);
    raw_stop(&r);
    os_http_client_res_free(&res);
}

static void test_refused(void **state)
{
    os_http_client_res res;
    os_http_client_error e;
    char base[64];
    (void)state;
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", refused_port());
    os_http_client *c = client(NULL);
    os_http_client_res_init(&res);
    assert_int_equal(get(c, &res, &e, base, "/x"), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_CONNECT);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(e.message, "127.0.0.1"));
    os_http_client_res_free(&res);
    os_http_client_free(c);
}

static void test_truncated_and_broken(void **state)
{
    raw_srv r;
    os_http_client_res res;
    os_http_client_error e;
    static const script_fn scripts[] = {s_truncated, s_short_length, s_status_close};
    (void)state;
    os_http_client_res_init(&res);
    os_http_client *c = client(NULL);
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        raw_start(&r, scripts[i]);
        if (get(c, &res, &e, r.base, "/") != OS_ERR_NETWORK || e.kind != OS_HTTP_FAIL_PROTOCOL)
            fail_msg("script %zu: kind %d: %s", i, (int)e.kind, e.message);
        raw_stop(&r);
    }
    /* what did arrive of the truncated chunked body is kept, but the call failed */
    raw_start(&r, s_truncated);
    assert_int_equal(get(c, &res, &e, r.base, "/"), OS_ERR_NETWORK);
    assert_int_equal(res.status, 200);
    assert_true(res.body.len <= 5);
    raw_stop(&r);
    os_http_client_res_free(&res);
    os_http_client_free(c);
}

static void test_bad_requests(void **state)
{
    os_http_client_res res;
    os_http_client_error e;
    os_http_client *c = client(NULL);
    os_http_client_req req = {0};
    (void)state;
    os_http_client_res_init(&res);
    static const char *const bad_urls[] = {"ftp://127.0.0.1/x", "file:///etc/passwd",
                                           "127.0.0.1:80/x",    "http://a b/",
                                           "http://x/\r\n",     "gopher://h/"};
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        req.url = bad_urls[i];
        assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_INVALID);
        assert_int_equal(e.kind, OS_HTTP_FAIL_INVALID);
    }
    req.url = NULL;
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_INVALID);
    req.url = "http://127.0.0.1:1/";
    req.method = "get";
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_INVALID);
    req.method = "GET /x HTTP/1.1\r\n";
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_INVALID);
    req.method = "HEAD";
    req.body = "x";
    req.body_len = 1;
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_INVALID);
    req.method = "POST";
    req.body = NULL;
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_INVALID);
    req.body_len = 0;
    static const os_http_header bad_h[][1] = {
        {{"X-Key", "SECRET-a\r\nInjected: yes"}},
        {{"Bad Name", "v"}},
        {{"", "v"}},
        {{"Content-Length", "5"}},
        {{"X-Key", "SECRET\x01"}},
    };
    for (size_t i = 0; i < sizeof(bad_h) / sizeof(bad_h[0]); i++) {
        req.headers = bad_h[i];
        req.n_headers = 1;
        assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_INVALID);
        assert_int_equal(e.kind, OS_HTTP_FAIL_INVALID);
        assert_no_secret(&e);
    }
    req.headers = NULL;
    req.n_headers = 0;
    req.timeout_ms = -5;
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_INVALID);
    os_http_client_free(c);

    /* bad configurations */
    os_http_client *x = NULL;
    os_http_client_config cfg = {.connect_timeout_ms = -1};
    assert_int_equal(os_http_client_new(&x, &cfg), OS_ERR_INVALID);
    cfg = (os_http_client_config){.timeout_ms = -7};
    assert_int_equal(os_http_client_new(&x, &cfg), OS_ERR_INVALID);
    cfg = (os_http_client_config){.pool_size = 100000};
    assert_int_equal(os_http_client_new(&x, &cfg), OS_ERR_INVALID);
    cfg = (os_http_client_config){.user_agent = "a\r\nb"};
    assert_int_equal(os_http_client_new(&x, &cfg), OS_ERR_INVALID);
    assert_null(x);
    os_http_client_free(NULL);
    os_http_client_res_free(NULL);
    os_http_client_res_free(&res);
}

static void test_secrets_not_in_errors(void **state)
{
    raw_srv r;
    os_http_client_res res;
    os_http_client_error e;
    char url[256];
    static const os_http_header hs[] = {{"Authorization", "Bearer SECRET-header-1"},
                                        {"x-api-key", "hunter2"}};
    (void)state;
    os_http_client_res_init(&res);
    os_http_client_config cfg = {.timeout_ms = 200};
    os_http_client *c = client(&cfg);
    os_http_client_req req = {
        .method = "POST", .url = url, .headers = hs, .n_headers = 2, .body = "{}", .body_len = 2};

    /* refused */
    snprintf(url, sizeof(url), "http://user:SECRET-pw@127.0.0.1:%u/v1/SECRET-path?key=SECRET-q",
             refused_port());
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_NETWORK);
    assert_no_secret(&e);
    assert_null(strstr(e.message, "user"));
    assert_non_null(strstr(e.message, "POST http://127.0.0.1:"));

    /* timed out, truncated, too big */
    static const script_fn scripts[] = {s_never, s_truncated, s_big_chunked};
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        raw_start(&r, scripts[i]);
        snprintf(url, sizeof(url), "http://user:SECRET-pw@127.0.0.1:%u/SECRET?api_key=SECRET-q",
                 r.port);
        req.max_body = i == 2 ? 1000 : 0;
        assert_int_not_equal(os_http_client_do(c, &res, &e, &req), OS_OK);
        assert_true(e.message[0] != '\0');
        assert_no_secret(&e);
        raw_stop(&r);
    }
    os_http_client_res_free(&res);
    os_http_client_free(c);
}

/* ---- tests: streaming ---- */

typedef struct stream_rec {
    raw_srv *srv;
    int pieces;
    int first_before_final; /* the first piece came before the server finished the body */
    long status_seen;
    int stop_after;
    char got[256];
    size_t len;
} stream_rec;

static int on_piece(void *ud, const os_http_client_res *res, const uint8_t *data, size_t len)
{
    stream_rec *s = ud;
    if (s->pieces == 0) {
        s->first_before_final = !atomic_load(&s->srv->sent_final);
        s->status_seen = res->status;
        atomic_store(&s->srv->latch, 1);
    }
    s->pieces++;
    size_t room = sizeof(s->got) - 1 - s->len;
    size_t k = len < room ? len : room;
    memcpy(s->got + s->len, data, k);
    s->len += k;
    s->got[s->len] = '\0';
    return s->stop_after > 0 && s->pieces >= s->stop_after;
}

static void test_stream_pieces(void **state)
{
    raw_srv r;
    os_http_client_res res;
    os_http_client_error e;
    char url[128];
    stream_rec rec = {0};
    (void)state;
    raw_start(&r, s_pieces);
    rec.srv = &r;
    snprintf(url, sizeof(url), "%s/stream", r.base);
    os_http_client *c = client(NULL);
    os_http_client_res_init(&res);
    os_http_client_req req = {.url = url, .on_body = on_piece, .on_body_ud = &rec};
    if (os_http_client_do(c, &res, &e, &req) != OS_OK)
        fail_msg("stream: %s", e.message);
    assert_true(rec.first_before_final);
    assert_int_equal(rec.status_seen, 200);
    assert_true(rec.pieces >= 2);
    assert_string_equal(rec.got, "data: one\n\ndata: two\n\n");
    assert_int_equal(res.body.len, 0); /* streamed, not collected */
    assert_string_equal(os_http_client_res_header(&res, "content-type"), "text/event-stream");
    os_http_client_res_free(&res);
    os_http_client_free(c);
    raw_stop(&r);
}

static void test_stream_callback_stops(void **state)
{
    raw_srv r;
    os_http_client_res res;
    os_http_client_error e;
    char url[128];
    stream_rec rec = {0};
    (void)state;
    raw_start(&r, s_endless);
    rec.srv = &r;
    rec.stop_after = 3;
    snprintf(url, sizeof(url), "%s/", r.base);
    os_http_client_config cfg = {.timeout_ms = OS_HTTP_NO_TIMEOUT};
    os_http_client *c = client(&cfg);
    os_http_client_res_init(&res);
    os_http_client_req req = {.url = url, .on_body = on_piece, .on_body_ud = &rec};
    long long t0 = now_ms();
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_NETWORK);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(e.kind, OS_HTTP_FAIL_ABORTED);
    assert_int_equal(rec.pieces, 3);
    os_http_client_res_free(&res);
    os_http_client_free(c);
    raw_stop(&r);
}

typedef struct aborter {
    atomic_int *flag;
    unsigned after_ms;
} aborter;

static void *abort_later(void *arg)
{
    aborter *a = arg;
    sleep_ms(a->after_ms);
    atomic_store(a->flag, 1);
    return NULL;
}

static void test_abort_flag(void **state)
{
    raw_srv r;
    os_http_client_res res;
    os_http_client_error e;
    char url[128];
    stream_rec rec = {0};
    atomic_int flag = 0;
    pthread_t th;
    (void)state;
    os_http_client_res_init(&res);
    os_http_client_config cfg = {.timeout_ms = OS_HTTP_NO_TIMEOUT};
    os_http_client *c = client(&cfg);

    /* an endless stream, cancelled from another thread */
    raw_start(&r, s_endless);
    rec.srv = &r;
    snprintf(url, sizeof(url), "%s/", r.base);
    os_http_client_req req = {.url = url, .on_body = on_piece, .on_body_ud = &rec, .abort = &flag};
    aborter a = {&flag, 300};
    assert_int_equal(pthread_create(&th, NULL, abort_later, &a), 0);
    long long t0 = now_ms();
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_NETWORK);
    long long dt = now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(e.kind, OS_HTTP_FAIL_ABORTED);
    assert_true(dt >= 250 && dt < 2500);
    assert_true(rec.pieces > 0);
    raw_stop(&r);

    /* a silent server: only the progress callback can notice the flag */
    raw_start(&r, s_never);
    snprintf(url, sizeof(url), "%s/", r.base);
    atomic_store(&flag, 0);
    req.on_body = NULL;
    assert_int_equal(pthread_create(&th, NULL, abort_later, &a), 0);
    t0 = now_ms();
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_NETWORK);
    dt = now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(e.kind, OS_HTTP_FAIL_ABORTED);
    assert_true(dt < 2500);

    /* already set: nothing is sent */
    int before = atomic_load(&r.conns);
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_ABORTED);
    sleep_ms(100);
    assert_int_equal(atomic_load(&r.conns), before);
    raw_stop(&r);
    os_http_client_res_free(&res);
    os_http_client_free(c);
}

/* ---- tests: keep-alive and threads ---- */

static void test_keepalive(void **state)
{
    fixture f;
    os_http_client_res res;
    os_http_client_error e;
    (void)state;
    srv_start(&f);
    os_http_client_res_init(&res);

    os_http_client_config cfg = {.pool_size = 1};
    os_http_client *c = client(&cfg);
    assert_int_equal(get(c, &res, &e, f.base, "/echo"), OS_OK);
    assert_int_equal(res.num_connects, 1);
    assert_int_equal(get(c, &res, &e, f.base, "/echo"), OS_OK);
    assert_int_equal(res.num_connects, 0); /* reused */
    assert_int_equal(get(c, &res, &e, f.base, "/status/404"), OS_OK);
    assert_int_equal(res.num_connects, 0);
    os_http_client_free(c);

    /* pool_size 0: a new connection every time */
    c = client(NULL);
    assert_int_equal(get(c, &res, &e, f.base, "/echo"), OS_OK);
    assert_int_equal(res.num_connects, 1);
    assert_int_equal(get(c, &res, &e, f.base, "/echo"), OS_OK);
    assert_int_equal(res.num_connects, 1);
    os_http_client_free(c);
    os_http_client_res_free(&res);
    os_http_server_free(f.srv);
}

#define N_THREADS 4
#define N_PER_THREAD 25

typedef struct worker {
    os_http_client *c;
    const char *base;
    int id;
    int ok;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    os_http_client_res res;
    os_http_client_error e;
    char url[128], body[64];
    os_http_client_res_init(&res);
    snprintf(url, sizeof(url), "%s/echo", w->base);
    for (int i = 0; i < N_PER_THREAD; i++) {
        json_t *j = NULL;
        int n = snprintf(body, sizeof(body), "thread %d request %d", w->id, i);
        os_http_client_req req = {
            .method = "POST", .url = url, .body = body, .body_len = (size_t)n};
        if (os_http_client_do(w->c, &res, &e, &req) != OS_OK || res.status != 200 ||
            os_json_parse(&j, (const char *)res.body.data, res.body.len, 4096, 4, NULL, 0) != OS_OK)
            continue;
        const char *got = json_string_value(json_object_get(j, "body"));
        if (got != NULL && strcmp(got, body) == 0)
            w->ok++;
        json_decref(j);
    }
    os_http_client_res_free(&res);
    return NULL;
}

static void test_threads(void **state)
{
    fixture f;
    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    (void)state;
    srv_start(&f);
    os_http_client_config cfg = {.pool_size = 2};
    os_http_client *c = client(&cfg);
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){c, f.base, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, N_PER_THREAD);
    }
    os_http_client_free(c);
    os_http_server_free(f.srv);
}

/* ---- tests: JSON ---- */

static void test_json(void **state)
{
    fixture f;
    os_http_client_error e;
    char url[128];
    long status;
    json_t *out, *in = json_pack("{s:s, s:i}", "hello", "world", "n", 7);
    (void)state;
    srv_start(&f);
    os_http_client_config cfg = {.json_max_depth = 4};
    os_http_client *c = client(&cfg);

    snprintf(url, sizeof(url), "%s/echo", f.base);
    assert_int_equal(os_http_client_json(c, &status, &out, &e, "POST", url, in, NULL, 0), OS_OK);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(out, "body")),
                        "{\"hello\":\"world\",\"n\":7}");
    assert_string_equal(json_string_value(json_object_get(out, "ct")), "application/json");
    json_decref(out);

    /* caller headers pass through; theirs win */
    os_http_header hs[] = {{"X-Test", "t1"}, {"content-type", "application/vnd.x+json"}};
    assert_int_equal(os_http_client_json(c, &status, &out, &e, "POST", url, in, hs, 2), OS_OK);
    assert_string_equal(json_string_value(json_object_get(out, "x_test")), "t1");
    assert_string_equal(json_string_value(json_object_get(out, "ct")), "application/vnd.x+json");
    json_decref(out);

    /* an error status with a JSON body is a response */
    snprintf(url, sizeof(url), "%s/status/404", f.base);
    assert_int_equal(os_http_client_json(c, &status, &out, &e, "GET", url, NULL, NULL, 0), OS_OK);
    assert_int_equal(status, 404);
    assert_non_null(json_object_get(out, "error"));
    json_decref(out);

    /* an empty body: no JSON, no error */
    snprintf(url, sizeof(url), "%s/empty", f.base);
    assert_int_equal(os_http_client_json(c, &status, &out, &e, "GET", url, NULL, NULL, 0), OS_OK);
    assert_int_equal(status, 204);
    assert_null(out);

    /* HTML from a proxy: a protocol failure that keeps the status */
    snprintf(url, sizeof(url), "%s/html", f.base);
    assert_int_equal(os_http_client_json(c, &status, &out, &e, "GET", url, NULL, NULL, 0),
                     OS_ERR_NETWORK);
    assert_int_equal(status, 502);
    assert_int_equal(e.status, 502);
    assert_int_equal(e.kind, OS_HTTP_FAIL_PROTOCOL);
    assert_null(out);
    assert_null(strstr(e.message, "html"));

    /* nesting past the depth cap */
    snprintf(url, sizeof(url), "%s/deep", f.base);
    assert_int_equal(os_http_client_json(c, &status, &out, &e, "GET", url, NULL, NULL, 0),
                     OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_PROTOCOL);
    assert_null(out);

    /* transport failures come through */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", refused_port());
    assert_int_equal(os_http_client_json(c, &status, &out, &e, "GET", url, NULL, NULL, 0),
                     OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_CONNECT);
    assert_int_equal(status, 0);

    json_decref(in);
    os_http_client_free(c);
    os_http_server_free(f.srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_post_headers_body),
        cmocka_unit_test(test_status_codes),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_header_caps),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_truncated_and_broken),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_secrets_not_in_errors),
        cmocka_unit_test(test_stream_pieces),
        cmocka_unit_test(test_stream_callback_stops),
        cmocka_unit_test(test_abort_flag),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
