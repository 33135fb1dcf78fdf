/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streamed responses of http.h (os_http_res_stream), on a real server on 127.0.0.1 driven with
 * libcurl: bytes reach the client while the producer is still writing (a latch proves it),
 * chunked framing, a 10 MiB body to a throttled client (the producer is held back, the body is
 * intact), a client that disconnects (the producer sees it, while writing and while idle), a
 * producer that fails (the client gets a truncated response, no terminating chunk), many
 * concurrent streams on two server threads, the max_streams cap, a replaced stream, and the
 * graceful stop (a stream that ends within the drain completes; one that does not is cut).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "openseed/http.h"

#define MAX_JOBS 64
#define BIG_LEN ((size_t)10 << 20)

typedef enum { P_INCR, P_BIG, P_FOREVER, P_IDLE, P_FAIL, P_SMALL, P_GATE, P_SLOW } pmode;

typedef struct app app;

typedef struct job {
    app *a;
    os_http_stream *st;
    pmode mode;
    pthread_t t;
} job;

struct app {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job jobs[MAX_JOBS];
    int n_jobs;
    /* shared with the client side */
    atomic_size_t written;    /* bytes the producer has buffered */
    atomic_size_t received;   /* bytes the client has received (single-client tests) */
    atomic_bool first_seen;   /* latch: the client got its first bytes */
    atomic_bool latch_ok;     /* the producer saw the latch before writing its second half */
    atomic_size_t lag_at_end; /* written - received when the producer finished (big) */
    atomic_int cancelled;     /* producers that saw cancellation */
    atomic_llong cancel_ns;   /* when the last one saw it */
    atomic_bool gate;         /* P_GATE producers wait for it */
    atomic_int finished;      /* producers done */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static unsigned char big_byte(size_t i)
{
    return (unsigned char)(i * 7u + i / 65536u);
}

static void saw_cancel(app *a)
{
    atomic_store(&a->cancel_ns, (long long)now_ns());
    atomic_fetch_add(&a->cancelled, 1);
}

/* Writes "c000\n".."c{n-1}\n"; false when the stream was cancelled. */
static bool write_chunks(app *a, os_http_stream *st, int from, int to, unsigned delay_ms)
{
    char c[16];
    for (int i = from; i < to; i++) {
        int n = snprintf(c, sizeof(c), "c%03d\n", i);
        if (os_http_stream_write(st, c, (size_t)n) != OS_OK)
            return false;
        atomic_fetch_add(&a->written, (size_t)n);
        if (delay_ms)
            sleep_ms(delay_ms);
    }
    return true;
}

static void *producer(void *arg)
{
    job *j = arg;
    app *a = j->a;
    bool ok = true;
    uint64_t t0;

    switch (j->mode) {
    case P_INCR:
        /* half, then wait (bounded) for the client to have seen bytes, then the rest */
        ok = write_chunks(a, j->st, 0, 50, 1);
        t0 = now_ns();
        while (ok && !atomic_load(&a->first_seen) && now_ns() - t0 < 5000000000ull)
            sleep_ms(1);
        atomic_store(&a->latch_ok, atomic_load(&a->first_seen));
        ok = ok && write_chunks(a, j->st, 50, 100, 1);
        break;
    case P_BIG: {
        static unsigned char piece[65536];
        for (size_t off = 0; ok && off < BIG_LEN; off += sizeof(piece)) {
            for (size_t i = 0; i < sizeof(piece); i++)
                piece[i] = big_byte(off + i);
            ok = os_http_stream_write(j->st, piece, sizeof(piece)) == OS_OK;
            atomic_fetch_add(&a->written, sizeof(piece));
        }
        atomic_store(&a->lag_at_end, atomic_load(&a->written) - atomic_load(&a->received));
        break;
    }
    case P_FOREVER:
    case P_SLOW:
        for (int i = 0; ok && i < 100000; i++)
            ok = write_chunks(a, j->st, i % 1000, i % 1000 + 1, j->mode == P_SLOW ? 20 : 2);
        break;
    case P_IDLE:
        ok = write_chunks(a, j->st, 0, 1, 0);
        t0 = now_ns();
        while (ok && !os_http_stream_cancelled(j->st) && now_ns() - t0 < 10000000000ull)
            sleep_ms(5);
        ok = !os_http_stream_cancelled(j->st);
        break;
    case P_FAIL:
        ok = write_chunks(a, j->st, 0, 10, 0);
        os_http_stream_close(j->st, false);
        atomic_fetch_add(&a->finished, 1);
        return NULL;
    case P_SMALL:
        ok = write_chunks(a, j->st, 0, 20, 1);
        break;
    case P_GATE:
        while (!atomic_load(&a->gate))
            sleep_ms(2);
        ok = write_chunks(a, j->st, 0, 3, 0);
        break;
    }
    if (!ok)
        saw_cancel(a);
    os_http_stream_close(j->st, ok);
    atomic_fetch_add(&a->finished, 1);
    return NULL;
}

static void start_stream(app *a, os_http_response *res, pmode mode)
{
    os_http_stream *st;
    os_err err = os_http_res_stream(res, &st, 200, "text/plain");
    if (err == OS_ERR_TOOBIG) {
        os_http_res_error(res, 503, "server_error", NULL, "too many streams");
        return;
    }
    if (err != OS_OK) {
        os_http_res_error(res, 500, "server_error", NULL, "stream");
        return;
    }
    if (os_http_res_header(res, "X-Stream", "yes") != OS_OK) {
        os_http_res_error(res, 500, "server_error", NULL, "header");
        os_http_stream_close(st, false);
        return;
    }
    pthread_mutex_lock(&a->mu);
    if (a->n_jobs == MAX_JOBS) {
        pthread_mutex_unlock(&a->mu);
        os_http_stream_close(st, false);
        return;
    }
    job *j = &a->jobs[a->n_jobs++];
    j->a = a;
    j->st = st;
    j->mode = mode;
    if (pthread_create(&j->t, NULL, producer, j) != 0) {
        a->n_jobs--;
        os_http_stream_close(st, false);
    }
    pthread_mutex_unlock(&a->mu);
}

#define HANDLER(name, mode)                                                                        \
    static void name(void *ctx, const os_http_request *req, os_http_response *res)                 \
    {                                                                                              \
        (void)req;                                                                                 \
        start_stream(ctx, res, mode);                                                              \
    }
HANDLER(h_incr, P_INCR)
HANDLER(h_big, P_BIG)
HANDLER(h_forever, P_FOREVER)
HANDLER(h_idle, P_IDLE)
HANDLER(h_fail, P_FAIL)
HANDLER(h_small, P_SMALL)
HANDLER(h_gate, P_GATE)
HANDLER(h_slow, P_SLOW)

/* A stream replaced by an error body: the producer's handle is closed at once (its writes would
 * fail) and the client gets the body. */
static void h_replaced(void *ctx, const os_http_request *req, os_http_response *res)
{
    os_http_stream *st;
    app *a = ctx;
    (void)req;
    if (os_http_res_stream(res, &st, 200, "text/plain") != OS_OK)
        return;
    os_http_res_error(res, 502, "server_error", NULL, "upstream failed");
    if (os_http_stream_write(st, "x", 1) == OS_ERR_IO && os_http_stream_cancelled(st))
        saw_cancel(a);
    os_http_stream_close(st, false);
}

static const os_http_route ROUTES[] = {
    {"GET", "/incr", h_incr, 0},   {"GET", "/big", h_big, 0},   {"GET", "/forever", h_forever, 0},
    {"GET", "/idle", h_idle, 0},   {"GET", "/fail", h_fail, 0}, {"GET", "/small", h_small, 0},
    {"GET", "/gate", h_gate, 0},   {"GET", "/slow", h_slow, 0}, {"GET", "/replaced", h_replaced, 0},
};

typedef struct fixture {
    app a;
    os_http_server *s;
    char base[64];
} fixture;

static void start(fixture *f, unsigned max_streams, unsigned drain_ms)
{
    os_http_config cfg = {.listen = "127.0.0.1:0", .threads = 2, .drain_timeout_ms = drain_ms,
                          .max_streams = max_streams, .timeout_s = 10};
    memset(&f->a, 0, sizeof(f->a));
    pthread_mutex_init(&f->a.mu, NULL);
    pthread_cond_init(&f->a.cv, NULL);
    assert_int_equal(
        os_http_server_new(&f->s, &cfg, ROUTES, sizeof(ROUTES) / sizeof(ROUTES[0]), &f->a),
        OS_OK);
    assert_int_equal(os_http_server_start(f->s), OS_OK);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", (unsigned)os_http_server_port(f->s));
}

static void finish(fixture *f)
{
    os_http_server_stop(f->s);
    for (int i = 0; i < f->a.n_jobs; i++)
        pthread_join(f->a.jobs[i].t, NULL);
    os_http_server_free(f->s);
    pthread_cond_destroy(&f->a.cv);
    pthread_mutex_destroy(&f->a.mu);
}

/* ---- the client ---- */

typedef struct client {
    app *a;
    char url[128];
    char body[4096];
    size_t len;     /* bytes received */
    size_t abort_at; /* abort the transfer after this many bytes; 0 never */
    bool check_big; /* verify big_byte() and count only */
    bool bad_byte;
    bool chunked;
    bool x_stream;
    long status;
    CURLcode rc;
    uint64_t abort_ns;
    bool throttle;
} client;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    client *c = ud;
    size_t len = sz * n;
    if (c->a != NULL) {
        atomic_store(&c->a->first_seen, true);
        atomic_fetch_add(&c->a->received, len);
    }
    if (c->check_big) {
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] != big_byte(c->len + i))
                c->bad_byte = true;
    } else {
        size_t room = sizeof(c->body) - 1 - c->len;
        memcpy(c->body + c->len, p, len < room ? len : room);
        c->body[c->len + (len < room ? len : room)] = '\0';
    }
    c->len += len;
    if (c->abort_at != 0 && c->len >= c->abort_at) {
        c->abort_ns = now_ns();
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    client *c = ud;
    if (sz * n >= 26 && strncasecmp(p, "Transfer-Encoding: chunked", 26) == 0)
        c->chunked = true;
    if (sz * n >= 13 && strncasecmp(p, "X-Stream: yes", 13) == 0)
        c->x_stream = true;
    return sz * n;
}

/* A small receive buffer, so the kernel does not absorb the body for a slow client. */
static int small_rcvbuf(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    int sz = 32 << 10;
    (void)ud;
    (void)purpose;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    return CURL_SOCKOPT_OK;
}

static void fetch(client *c)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (c->throttle) {
        curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, small_rcvbuf);
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 16384L);
        curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)(8 << 20));
    }
    c->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    curl_easy_cleanup(h);
}

static void *fetch_thread(void *arg)
{
    fetch(arg);
    return NULL;
}

static void client_init(client *c, fixture *f, const char *path, app *a)
{
    memset(c, 0, sizeof(*c));
    c->a = a;
    snprintf(c->url, sizeof(c->url), "%s%s", f->base, path);
}

static bool wait_for(atomic_int *v, int want, unsigned ms)
{
    uint64_t t0 = now_ns();
    while (atomic_load(v) < want) {
        if (now_ns() - t0 > (uint64_t)ms * 1000000u)
            return false;
        sleep_ms(2);
    }
    return true;
}

static void wait_jobs(app *a, int want)
{
    for (int tries = 0; tries < 1000; tries++) {
        pthread_mutex_lock(&a->mu);
        int n = a->n_jobs;
        pthread_mutex_unlock(&a->mu);
        if (n >= want)
            return;
        sleep_ms(5);
    }
    fail_msg("the handlers did not run");
}

/* ---- tests ---- */

static void test_incremental(void **state)
{
    fixture f;
    client c;
    char want[600];
    size_t n = 0;
    (void)state;
    start(&f, 0, 0);
    client_init(&c, &f, "/incr", &f.a);
    fetch(&c);
    assert_int_equal(c.rc, CURLE_OK);
    assert_int_equal(c.status, 200);
    assert_true(c.chunked);
    assert_true(c.x_stream);
    /* the producer waited for the client's first bytes before writing its second half */
    assert_true(atomic_load(&f.a.latch_ok));
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, "c%03d\n", i);
    assert_int_equal(c.len, n);
    assert_string_equal(c.body, want);
    finish(&f);
}

static void test_big_slow_client(void **state)
{
    fixture f;
    client c;
    (void)state;
    start(&f, 0, 0);
    client_init(&c, &f, "/big", &f.a);
    c.check_big = true;
    c.throttle = true;
    fetch(&c);
    assert_int_equal(c.rc, CURLE_OK);
    assert_int_equal(c.len, BIG_LEN);
    assert_false(c.bad_byte);
    /* backpressure: when the producer wrote its last byte, most of the body had already been
     * taken by the client; what was not is bounded by the stream buffer (64 KiB), MHD's buffer
     * and the sockets' (the server's send buffer autotunes up to tcp_wmem's 4 MiB: about 3.8 MiB
     * measured here), where an unbounded buffer would let the producer run ~10 MiB ahead */
    size_t lag = atomic_load(&f.a.lag_at_end);
    assert_true(lag < BIG_LEN / 2);
    assert_int_equal(atomic_load(&f.a.cancelled), 0);
    finish(&f);
}

static void test_client_disconnects(void **state)
{
    fixture f;
    client c;
    (void)state;
    start(&f, 0, 0);
    /* while the producer writes */
    client_init(&c, &f, "/forever", &f.a);
    c.abort_at = 200;
    fetch(&c);
    assert_int_equal(c.rc, CURLE_WRITE_ERROR);
    assert_true(wait_for(&f.a.cancelled, 1, 5000));
    assert_true((uint64_t)atomic_load(&f.a.cancel_ns) - c.abort_ns < 3000000000ull);
    /* while the producer is idle, polling os_http_stream_cancelled */
    client_init(&c, &f, "/idle", &f.a);
    c.abort_at = 1;
    fetch(&c);
    assert_int_equal(c.rc, CURLE_WRITE_ERROR);
    assert_true(wait_for(&f.a.cancelled, 2, 5000));
    assert_true((uint64_t)atomic_load(&f.a.cancel_ns) - c.abort_ns < 3000000000ull);
    assert_true(wait_for(&f.a.finished, 2, 5000));
    finish(&f);
}

static void test_producer_fails(void **state)
{
    fixture f;
    client c;
    char want[64];
    size_t n = 0;
    (void)state;
    start(&f, 0, 0);
    client_init(&c, &f, "/fail", &f.a);
    uint64_t t0 = now_ns();
    fetch(&c);
    /* at once, not at the idle timeout (10 s here) */
    assert_true(now_ns() - t0 < 3000000000ull);
    /* everything written arrives, then the connection closes without the zero-size chunk */
    assert_true(c.rc == CURLE_PARTIAL_FILE || c.rc == CURLE_RECV_ERROR);
    assert_int_equal(c.status, 200);
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, "c%03d\n", i);
    assert_string_equal(c.body, want);
    /* a stream replaced by a body: the body is sent and the producer's write fails */
    client_init(&c, &f, "/replaced", &f.a);
    fetch(&c);
    assert_int_equal(c.rc, CURLE_OK);
    assert_int_equal(c.status, 502);
    assert_non_null(strstr(c.body, "upstream failed"));
    assert_int_equal(atomic_load(&f.a.cancelled), 1);
    finish(&f);
}

static void test_concurrent(void **state)
{
    enum { N = 24 };
    fixture f;
    client *c = calloc(N, sizeof(*c));
    pthread_t t[N];
    char want[200];
    size_t n = 0;
    (void)state;
    assert_non_null(c);
    start(&f, 0, 0);
    for (int i = 0; i < N; i++) {
        client_init(&c[i], &f, "/small", NULL);
        assert_int_equal(pthread_create(&t[i], NULL, fetch_thread, &c[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, "c%03d\n", i);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].rc, CURLE_OK);
        assert_string_equal(c[i].body, want);
    }
    finish(&f);
    free(c);
}

static void test_max_streams(void **state)
{
    fixture f;
    client c[3];
    pthread_t t[2];
    (void)state;
    start(&f, 2, 0);
    for (int i = 0; i < 2; i++) {
        client_init(&c[i], &f, "/gate", NULL);
        assert_int_equal(pthread_create(&t[i], NULL, fetch_thread, &c[i]), 0);
    }
    /* both streams are open (their producers wait at the gate): a third is refused */
    wait_jobs(&f.a, 2);
    client_init(&c[2], &f, "/gate", NULL);
    fetch(&c[2]);
    assert_int_equal(c[2].status, 503);
    atomic_store(&f.a.gate, true);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].rc, CURLE_OK);
        assert_string_equal(c[i].body, "c000\nc001\nc002\n");
    }
    /* the slots are free again once the streams ended (MHD may release the last one just after
     * the client has its last byte) */
    for (int tries = 0; tries < 50; tries++) {
        client_init(&c[2], &f, "/gate", NULL);
        fetch(&c[2]);
        if (c[2].status != 503)
            break;
        sleep_ms(10);
    }
    assert_int_equal(c[2].status, 200);
    finish(&f);
}

static void test_stop_during_stream(void **state)
{
    fixture f;
    client done, cut;
    pthread_t t1, t2;
    uint64_t t0;
    (void)state;
    start(&f, 0, 600);
    /* one stream ends within the drain (20 chunks x ~1 ms), one never would */
    client_init(&done, &f, "/small", NULL);
    client_init(&cut, &f, "/slow", NULL);
    assert_int_equal(pthread_create(&t1, NULL, fetch_thread, &cut), 0);
    sleep_ms(100);
    assert_int_equal(pthread_create(&t2, NULL, fetch_thread, &done), 0);
    wait_jobs(&f.a, 2);
    t0 = now_ns();
    os_http_server_stop(f.s);
    /* the drain (600 ms) plus the cut, well under the cut's own 1 s bound */
    assert_true(now_ns() - t0 < 1800000000ull);
    assert_true(now_ns() - t0 >= 500000000ull);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(done.rc, CURLE_OK);
    assert_int_equal(done.len, 20 * 5);
    assert_true(cut.rc == CURLE_PARTIAL_FILE || cut.rc == CURLE_RECV_ERROR);
    assert_true(cut.len > 0);
    assert_true(wait_for(&f.a.cancelled, 1, 5000));
    /* and the server starts again */
    assert_int_equal(os_http_server_start(f.s), OS_OK);
    snprintf(f.base, sizeof(f.base), "http://127.0.0.1:%u", (unsigned)os_http_server_port(f.s));
    client_init(&done, &f, "/small", NULL);
    fetch(&done);
    assert_int_equal(done.rc, CURLE_OK);
    assert_int_equal(done.len, 20 * 5);
    finish(&f);
}

static void test_bad_args(void **state)
{
    os_http_stream *st = (os_http_stream *)1;
    (void)state;
    assert_int_equal(os_http_res_stream(NULL, &st, 200, NULL), OS_ERR_INVALID);
    assert_null(st);
    assert_int_equal(os_http_stream_write(NULL, "x", 1), OS_ERR_INVALID);
    assert_true(os_http_stream_cancelled(NULL));
    os_http_stream_close(NULL, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incremental),        cmocka_unit_test(test_big_slow_client),
        cmocka_unit_test(test_client_disconnects), cmocka_unit_test(test_producer_fails),
        cmocka_unit_test(test_concurrent),         cmocka_unit_test(test_max_streams),
        cmocka_unit_test(test_stop_during_stream), cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
