/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Native TLS in the HTTP server (tls_cert_file/tls_key_file, os_http_server_reload_tls) and the
 * client's ca_file, on a real server on 127.0.0.1 with certificates made at test time (tlsutil.h):
 * a CA, an ECDSA and an RSA server certificate it signs for 127.0.0.1 and localhost, one behind an
 * intermediate, one for another host, a self-signed one and an expired one. Covered: HTTPS GET,
 * POST and a streamed response through our client trusting the CA, and a client leaving in the
 * middle of a stream (the producer's writes fail); refusals by the system's
 * store, for the wrong host and for a self-signed server, with OS_HTTP_FAIL_TLS and a message that
 * keeps the URL's path and query out; reload (new handshakes get the new certificate, seen through
 * curl's CERTINFO; a kept-alive connection and a running stream carry on; a broken, mismatched,
 * group-readable or missing key file leaves the old certificate served), reloads racing
 * handshakes on other threads; start-up refusals (mode 0644, cert without key, garbage PEM,
 * encrypted key, mismatch, unsorted chain, symlinked key) with their reasons in the log; TLS 1.0
 * and 1.1 refused with a protocol_version alert, 1.2 and 1.3 spoken (curl limited to each);
 * plain HTTP to the TLS port; limits, rate limiting, metrics and the graceful stop over TLS; the
 * client's ca_file checks.
 */
#include "tlsutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <time.h>

#include <curl/curl.h>

#include "openseed/http.h"
#include "openseed/http_client.h"
#include "openseed/log.h"
#include "openseed/metrics.h"

#define STREAM_CHUNKS 60
#define PATH_LEN 160

/* ---- fixture: certificates and files, made once ---- */

typedef struct fixture {
    char dir[64];
    char ca[PATH_LEN];
    char a_crt[PATH_LEN], a_key[PATH_LEN]; /* ECDSA, CA-signed, 127.0.0.1 + localhost */
    char b_crt[PATH_LEN], b_key[PATH_LEN]; /* RSA, likewise */
    char i_crt[PATH_LEN], i_key[PATH_LEN]; /* behind an intermediate: leaf then intermediate */
    char i_bad[PATH_LEN];                  /* the same two, intermediate first */
    char self_crt[PATH_LEN], self_key[PATH_LEN];
    char wrong_crt[PATH_LEN], wrong_key[PATH_LEN]; /* CA-signed for example.com only */
    char old_crt[PATH_LEN], old_key[PATH_LEN];     /* CA-signed, expired */
    char live_crt[PATH_LEN], live_key[PATH_LEN];   /* what the server under test is given */
    char scratch[PATH_LEN];
    char *a_pem, *b_pem;
    FILE *logf;
    os_logger lg;
} fixture;

static fixture F;

static void fpath(char out[PATH_LEN], const char *name)
{
    int n = snprintf(out, PATH_LEN, "%s/%s", F.dir, name);
    assert_true(n > 0 && n < PATH_LEN);
}

static void copy_file(const char *to, const char *from, mode_t mode)
{
    char buf[16384];
    FILE *in = fopen(from, "rb");
    size_t n;

    assert_non_null(in);
    n = fread(buf, 1, sizeof(buf) - 1, in);
    assert_true(n > 0 && n < sizeof(buf) - 1);
    fclose(in);
    buf[n] = '\0';
    tlsu_write_text(to, buf, mode);
}

/* Points the live files at a pair (the key with the given mode). */
static void set_live(const char *crt, const char *key, mode_t key_mode)
{
    copy_file(F.live_crt, crt, 0644);
    copy_file(F.live_key, key, key_mode);
}

static int group_setup(void **state)
{
    tlsu_cert ca, in, a, b, i, self, wrong, old;

    if (tu_init(state) != 0)
        return -1;
    snprintf(F.dir, sizeof(F.dir), "/tmp/os_tls_XXXXXX");
    if (mkdtemp(F.dir) == NULL)
        return -1;
    fpath(F.ca, "ca.pem");
    fpath(F.a_crt, "a.pem");
    fpath(F.a_key, "a.key");
    fpath(F.b_crt, "b.pem");
    fpath(F.b_key, "b.key");
    fpath(F.i_crt, "i.pem");
    fpath(F.i_key, "i.key");
    fpath(F.i_bad, "i_unsorted.pem");
    fpath(F.self_crt, "self.pem");
    fpath(F.self_key, "self.key");
    fpath(F.wrong_crt, "wrong.pem");
    fpath(F.wrong_key, "wrong.key");
    fpath(F.old_crt, "old.pem");
    fpath(F.old_key, "old.key");
    fpath(F.live_crt, "live.pem");
    fpath(F.live_key, "live.key");
    fpath(F.scratch, "scratch");

    const char *san = "IP:127.0.0.1,DNS:localhost";
    ca = tlsu_make("OpenSeed test CA", 1, NULL, true, false, NULL, 30);
    in = tlsu_make("OpenSeed test intermediate", 2, NULL, true, false, &ca, 30);
    a = tlsu_make("a.test", 0x0a, san, false, false, &ca, 30);
    b = tlsu_make("b.test", 0x0b, san, false, true, &ca, 30);
    i = tlsu_make("i.test", 0x1e, san, false, false, &in, 30);
    self = tlsu_make("self.test", 0x5e, "IP:127.0.0.1", false, false, NULL, 30);
    wrong = tlsu_make("wrong.test", 0x77, "DNS:example.com", false, false, &ca, 30);
    old = tlsu_make("old.test", 0x01d, san, false, false, &ca, -2);

    tlsu_write_certs(F.ca, &ca.crt, 1);
    tlsu_write_certs(F.a_crt, &a.crt, 1);
    tlsu_write_key(F.a_key, a.key, 0600, NULL);
    tlsu_write_certs(F.b_crt, &b.crt, 1);
    tlsu_write_key(F.b_key, b.key, 0600, NULL);
    X509 *chain[2] = {i.crt, in.crt}, *unsorted[2] = {in.crt, i.crt};
    tlsu_write_certs(F.i_crt, chain, 2);
    tlsu_write_certs(F.i_bad, unsorted, 2);
    tlsu_write_key(F.i_key, i.key, 0600, NULL);
    tlsu_write_certs(F.self_crt, &self.crt, 1);
    tlsu_write_key(F.self_key, self.key, 0600, NULL);
    tlsu_write_certs(F.wrong_crt, &wrong.crt, 1);
    tlsu_write_key(F.wrong_key, wrong.key, 0600, NULL);
    tlsu_write_certs(F.old_crt, &old.crt, 1);
    tlsu_write_key(F.old_key, old.key, 0600, NULL);
    F.a_pem = tlsu_pem(a.crt);
    F.b_pem = tlsu_pem(b.crt);

    tlsu_free(&ca);
    tlsu_free(&in);
    tlsu_free(&a);
    tlsu_free(&b);
    tlsu_free(&i);
    tlsu_free(&self);
    tlsu_free(&wrong);
    tlsu_free(&old);

    F.logf = tmpfile();
    if (F.logf == NULL)
        return -1;
    os_logger_init(&F.lg, "test", OS_LOG_INFO);
    F.lg.out = F.logf;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(F.a_pem);
    free(F.b_pem);
    if (F.logf != NULL)
        fclose(F.logf);
    tu_rmdir_flat(F.dir);
    return 0;
}

/* True when the log written since the last call holds needle; empties the log. */
static bool log_has(const char *needle)
{
    static char text[65536];
    size_t n;
    bool found;

    fflush(F.logf);
    rewind(F.logf);
    n = fread(text, 1, sizeof(text) - 1, F.logf);
    text[n] = '\0';
    found = strstr(text, needle) != NULL;
    if (!found)
        print_message("log so far:\n%s\n(looked for \"%s\")\n", text, needle);
    rewind(F.logf);
    assert_int_equal(ftruncate(fileno(F.logf), 0), 0);
    return found;
}

/* ---- the application under test ---- */

typedef struct app {
    pthread_t producers[8];
    atomic_int n_producers;
    atomic_int chunks_written;
    int last_written; /* chunks_written when the producers were last joined */
    atomic_int slow_entered;
} app;

static app A;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void h_hello(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    (void)req;
    os_http_res_status(res, 200);
    if (os_http_res_body(res, "text/plain", "hello", 5) != OS_OK)
        os_http_res_status(res, 599);
}

static void h_echo(void *ctx, const os_http_request *req, os_http_response *res)
{
    size_t len;
    const char *b = os_http_req_body(req, &len);
    (void)ctx;
    os_http_res_status(res, 200);
    if (os_http_res_body(res, "application/octet-stream", b, len) != OS_OK)
        os_http_res_status(res, 599);
}

static void h_slow(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    (void)req;
    atomic_store(&A.slow_entered, 1);
    sleep_ms(400);
    os_http_res_status(res, 200);
    if (os_http_res_body(res, "text/plain", "done", 4) != OS_OK)
        os_http_res_status(res, 599);
}

static void *producer(void *arg)
{
    os_http_stream *st = arg;
    char c[32];
    bool ok = true;

    for (int i = 0; ok && i < STREAM_CHUNKS; i++) {
        int n = snprintf(c, sizeof(c), "chunk-%03d\n", i);
        ok = os_http_stream_write(st, c, (size_t)n) == OS_OK;
        if (ok)
            atomic_fetch_add(&A.chunks_written, 1);
        sleep_ms(10);
    }
    os_http_stream_close(st, ok);
    return NULL;
}

static void h_stream(void *ctx, const os_http_request *req, os_http_response *res)
{
    os_http_stream *st;
    int slot;
    (void)ctx;
    (void)req;
    if (os_http_res_stream(res, &st, 200, "text/plain") != OS_OK) {
        os_http_res_error(res, 503, "server_error", NULL, "no stream");
        return;
    }
    slot = atomic_fetch_add(&A.n_producers, 1);
    if (slot >= 8 || pthread_create(&A.producers[slot], NULL, producer, st) != 0) {
        atomic_fetch_sub(&A.n_producers, 1);
        os_http_stream_close(st, false);
    }
}

static const os_http_route ROUTES[] = {
    {"GET", "/hello", h_hello, 0},
    {"POST", "/echo", h_echo, 0},
    {"GET", "/slow", h_slow, 0},
    {"GET", "/stream", h_stream, 0},
};
#define N_ROUTES (sizeof(ROUTES) / sizeof(ROUTES[0]))

static void join_producers(void)
{
    int n = atomic_load(&A.n_producers);
    for (int i = 0; i < n; i++)
        pthread_join(A.producers[i], NULL);
    atomic_store(&A.n_producers, 0);
    A.last_written = atomic_exchange(&A.chunks_written, 0);
}

/* join_producers, for a test that needs A.last_written: exactly one producer ran. */
static void join_producers_counting(void)
{
    assert_int_equal(atomic_load(&A.n_producers), 1);
    join_producers();
}

static const char *expected_stream(void)
{
    static char text[STREAM_CHUNKS * 12 + 1];
    size_t n = 0;
    for (int i = 0; i < STREAM_CHUNKS; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "chunk-%03d\n", i);
    return text;
}

/* A TLS server on 127.0.0.1 over the live files; cfg may add settings. */
static os_http_server *start_tls(os_http_config *cfg)
{
    os_http_config c = {0};
    os_http_server *s;

    if (cfg != NULL)
        c = *cfg;
    c.listen = "127.0.0.1:0";
    c.log = &F.lg;
    c.tls_cert_file = F.live_crt;
    c.tls_key_file = F.live_key;
    assert_int_equal(os_http_server_new(&s, &c, ROUTES, N_ROUTES, NULL), OS_OK);
    assert_true(os_http_server_is_tls(s));
    assert_int_equal(os_http_server_start(s), OS_OK);
    assert_true(os_http_server_port(s) != 0);
    return s;
}

static void url(char *out, size_t cap, const char *scheme, const os_http_server *s,
                const char *path)
{
    snprintf(out, cap, "%s://127.0.0.1:%u%s", scheme, (unsigned)os_http_server_port(s), path);
}

static os_http_client *client(const char *ca_file, unsigned pool)
{
    os_http_client_config cc = {.timeout_ms = 10000, .ca_file = ca_file, .pool_size = pool};
    os_http_client *c;
    assert_int_equal(os_http_client_new(&c, &cc), OS_OK);
    return c;
}

static os_err do_req(os_http_client *c, os_http_client_res *res, os_http_client_error *e,
                     const char *method, const char *u, const void *body, size_t len)
{
    os_http_client_req req = {.method = method, .url = u, .body = body, .body_len = len};
    return os_http_client_do(c, res, e, &req);
}

/* ---- raw libcurl with CERTINFO: which certificate did the server present? ---- */

static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    return size * nmemb;
}

/*
 * GET u on h trusting the CA. Returns the status; *leaf (may be NULL) gets the PEM of the
 * certificate the server presented when this request opened a new connection, "" otherwise;
 * *connects the new connections it opened.
 */
static long raw_get(CURL *h, const char *u, char *leaf, size_t leaf_cap, long *connects)
{
    struct curl_certinfo *ci = NULL;
    long status = 0;
    CURLcode rc;

    if (leaf != NULL)
        leaf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_CAINFO, F.ca);
    curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK)
        return -(long)rc;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, connects);
    if (leaf != NULL && *connects > 0 && curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) == CURLE_OK &&
        ci != NULL && ci->num_of_certs > 0) {
        for (struct curl_slist *l = ci->certinfo[0]; l != NULL; l = l->next)
            if (strncmp(l->data, "Cert:", 5) == 0)
                snprintf(leaf, leaf_cap, "%s", l->data + 5);
    }
    return status;
}

/* The certificate a new connection to s is given. */
static void presented(const os_http_server *s, char *leaf, size_t cap)
{
    char u[128];
    long connects = 0;
    CURL *h = curl_easy_init();
    assert_non_null(h);
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(raw_get(h, u, leaf, cap, &connects), 200);
    assert_int_equal(connects, 1);
    curl_easy_cleanup(h);
}

/* ---- tests ---- */

static void test_https_get_post_stream(void **state)
{
    os_http_client_res res;
    os_http_client_error e;
    char u[128], body[20000];
    (void)state;

    set_live(F.a_crt, F.a_key, 0600);
    os_http_server *s = start_tls(NULL);
    assert_true(log_has("https server listening on 127.0.0.1:0"));
    os_http_client *c = client(F.ca, 1);
    os_http_client_res_init(&res);

    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body.len, 5);
    assert_memory_equal(res.body.data, "hello", 5);
    assert_int_equal(res.num_connects, 1);

    for (size_t k = 0; k < sizeof(body); k++)
        body[k] = (char)('a' + k * 7 % 26);
    url(u, sizeof(u), "https", s, "/echo");
    assert_int_equal(do_req(c, &res, &e, "POST", u, body, sizeof(body)), OS_OK);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body.len, sizeof(body));
    assert_memory_equal(res.body.data, body, sizeof(body));
    assert_int_equal(res.num_connects, 0); /* kept alive over TLS */

    url(u, sizeof(u), "https", s, "/stream");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body.len, strlen(expected_stream()));
    assert_memory_equal(res.body.data, expected_stream(), res.body.len);
    assert_string_equal(os_http_client_res_header(&res, "Transfer-Encoding"), "chunked");

    /* a chain: the leaf, then the intermediate; the client trusts the root only */
    os_http_server_free(s);
    join_producers();
    set_live(F.i_crt, F.i_key, 0600);
    s = start_tls(NULL);
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 200);

    os_http_client_res_free(&res);
    os_http_client_free(c);
    os_http_server_free(s);
}

static void test_verification_failures(void **state)
{
    os_http_client_res res;
    os_http_client_error e;
    char u[160];
    (void)state;

    set_live(F.a_crt, F.a_key, 0600);
    os_http_server *s = start_tls(NULL);
    os_http_client_res_init(&res);

    /* the system's store does not know our CA */
    os_http_client *sys = client(NULL, 0);
    url(u, sizeof(u), "https", s, "/hello?token=s3cret");
    assert_int_equal(do_req(sys, &res, &e, "GET", u, NULL, 0), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TLS);
    assert_int_equal(res.status, 0);
    print_message("%s\n", e.message);
    if (strstr(e.message, "certificate verify failed: ") == NULL)
        fail_msg("message: %s", e.message);
    /* the message names the origin, never the path or the query */
    assert_non_null(strstr(e.message, "127.0.0.1"));
    assert_null(strstr(e.message, "s3cret"));
    assert_null(strstr(e.message, "/hello"));
    os_http_client_free(sys);

    os_http_client *c = client(F.ca, 0);
    /* a certificate our CA signed, but for another host */
    os_http_server_free(s);
    set_live(F.wrong_crt, F.wrong_key, 0600);
    s = start_tls(NULL);
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TLS);
    print_message("%s\n", e.message);
    if (strstr(e.message, "certificate verify failed: ") == NULL)
        fail_msg("message: %s", e.message);

    /* self-signed */
    os_http_server_free(s);
    set_live(F.self_crt, F.self_key, 0600);
    s = start_tls(NULL);
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TLS);

    /* expired: served (with a warning at start), refused by the client */
    os_http_server_free(s);
    assert_true(log_has("stopped"));
    set_live(F.old_crt, F.old_key, 0600);
    s = start_tls(NULL);
    assert_true(log_has("has expired"));
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TLS);

    /* https to a plain server is a TLS failure too */
    os_http_server_free(s);
    os_http_config pc = {.listen = "127.0.0.1:0", .log = &F.lg};
    assert_int_equal(os_http_server_new(&s, &pc, ROUTES, N_ROUTES, NULL), OS_OK);
    assert_false(os_http_server_is_tls(s));
    assert_int_equal(os_http_server_reload_tls(s), OS_ERR_UNSUPPORTED);
    assert_int_equal(os_http_server_start(s), OS_OK);
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_TLS);
    url(u, sizeof(u), "http", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 200);

    os_http_client_res_free(&res);
    os_http_client_free(c);
    os_http_server_free(s);
}

static int stop_at_first(void *ud, const os_http_client_res *res, const uint8_t *data, size_t len)
{
    (void)res;
    (void)data;
    (void)len;
    atomic_store((atomic_int *)ud, 1);
    return 1;
}

/* A client that leaves in the middle of a stream: the producer's writes fail soon after, over
 * TLS as over plain HTTP, and the server goes on serving. */
static void test_stream_client_gone(void **state)
{
    os_http_client_res res;
    os_http_client_error e;
    atomic_int got = 0;
    char u[128];
    (void)state;

    set_live(F.a_crt, F.a_key, 0600);
    os_http_server *s = start_tls(NULL);
    os_http_client *c = client(F.ca, 0);
    os_http_client_res_init(&res);
    url(u, sizeof(u), "https", s, "/stream");
    os_http_client_req req = {.url = u, .on_body = stop_at_first, .on_body_ud = &got};
    assert_int_equal(os_http_client_do(c, &res, &e, &req), OS_ERR_NETWORK);
    assert_int_equal(e.kind, OS_HTTP_FAIL_ABORTED);
    assert_int_equal(atomic_load(&got), 1);
    join_producers_counting();
    print_message("chunks written before the writes failed: %d of %d\n", A.last_written,
                  STREAM_CHUNKS);
    assert_true(A.last_written < STREAM_CHUNKS);
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 200);
    os_http_client_res_free(&res);
    os_http_client_free(c);
    os_http_server_free(s);
}

typedef struct stream_call {
    os_http_client *c;
    char url[128];
    os_err rc;
    long status;
    bool body_ok;
} stream_call;

static void *stream_thread(void *arg)
{
    stream_call *sc = arg;
    os_http_client_res res;
    os_http_client_error e;

    os_http_client_res_init(&res);
    sc->rc = do_req(sc->c, &res, &e, "GET", sc->url, NULL, 0);
    sc->status = res.status;
    sc->body_ok = res.body.len == strlen(expected_stream()) &&
                  memcmp(res.body.data, expected_stream(), res.body.len) == 0;
    os_http_client_res_free(&res);
    return NULL;
}

static void test_reload(void **state)
{
    static char leaf[8192];
    char u[128];
    long connects = -1;
    stream_call sc = {0};
    pthread_t th;
    (void)state;

    set_live(F.a_crt, F.a_key, 0600);
    os_http_server *s = start_tls(NULL);
    assert_true(log_has("TLS certificate for 127.0.0.1:0 loaded: sha256="));
    url(u, sizeof(u), "https", s, "/hello");

    /* a kept-alive connection, opened with certificate a */
    CURL *keep = curl_easy_init();
    assert_non_null(keep);
    assert_int_equal(raw_get(keep, u, leaf, sizeof(leaf), &connects), 200);
    assert_int_equal(connects, 1);
    assert_string_equal(leaf, F.a_pem);

    /* and a stream that runs across the reload */
    sc.c = client(F.ca, 0);
    url(sc.url, sizeof(sc.url), "https", s, "/stream");
    assert_int_equal(pthread_create(&th, NULL, stream_thread, &sc), 0);
    while (atomic_load(&A.chunks_written) < 5)
        sleep_ms(5);

    /* swap in b (RSA) */
    set_live(F.b_crt, F.b_key, 0600);
    assert_int_equal(os_http_server_reload_tls(s), OS_OK);
    assert_true(log_has("TLS certificate for 127.0.0.1:0 reloaded: sha256="));
    presented(s, leaf, sizeof(leaf));
    assert_string_equal(leaf, F.b_pem);
    /* the old connection is untouched: same connection, still served */
    assert_int_equal(raw_get(keep, u, NULL, 0, &connects), 200);
    assert_int_equal(connects, 0);
    pthread_join(th, NULL);
    assert_int_equal(sc.rc, OS_OK);
    assert_int_equal(sc.status, 200);
    assert_true(sc.body_ok);
    assert_true(atomic_load(&A.chunks_written) == STREAM_CHUNKS);
    os_http_client_free(sc.c);
    join_producers();

    /* broken reloads keep b */
    copy_file(F.live_crt, F.a_crt, 0644);
    tlsu_write_text(F.live_key,
                    "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
                    "-----END PRIVATE KEY-----\n",
                    0600);
    assert_int_equal(os_http_server_reload_tls(s), OS_ERR_INVALID);
    assert_true(log_has("still serving the previous certificate"));
    presented(s, leaf, sizeof(leaf));
    assert_string_equal(leaf, F.b_pem);

    set_live(F.a_crt, F.a_key, 0644); /* a good pair, but the key is group/world-readable */
    assert_int_equal(os_http_server_reload_tls(s), OS_ERR_INVALID);
    assert_true(log_has("accessible by group or others"));
    presented(s, leaf, sizeof(leaf));
    assert_string_equal(leaf, F.b_pem);

    set_live(F.a_crt, F.b_key, 0600); /* b's key with a's certificate */
    assert_int_equal(os_http_server_reload_tls(s), OS_ERR_INVALID);
    assert_true(log_has("does not match the certificate"));
    presented(s, leaf, sizeof(leaf));
    assert_string_equal(leaf, F.b_pem);

    set_live(F.a_crt, F.a_key, 0600);
    assert_int_equal(unlink(F.live_key), 0);
    assert_int_equal(os_http_server_reload_tls(s), OS_ERR_NOTFOUND);
    assert_true(log_has("still serving the previous certificate"));
    presented(s, leaf, sizeof(leaf));
    assert_string_equal(leaf, F.b_pem);

    /* and a good one again */
    set_live(F.a_crt, F.a_key, 0600);
    assert_int_equal(os_http_server_reload_tls(s), OS_OK);
    presented(s, leaf, sizeof(leaf));
    assert_string_equal(leaf, F.a_pem);
    assert_int_equal(raw_get(keep, u, NULL, 0, &connects), 200);
    assert_int_equal(connects, 0);

    /* a restart reads the files again */
    os_http_server_stop(s);
    set_live(F.b_crt, F.b_key, 0600);
    assert_int_equal(os_http_server_start(s), OS_OK);
    presented(s, leaf, sizeof(leaf));
    assert_string_equal(leaf, F.b_pem);

    curl_easy_cleanup(keep);
    os_http_server_free(s);
}

typedef struct hammer {
    const os_http_server *s;
    atomic_bool *stop;
    int ok, bad, a_seen, b_seen;
} hammer;

static void *hammer_thread(void *arg)
{
    static _Thread_local char leaf[8192];
    hammer *hm = arg;
    char u[128];
    long connects;

    url(u, sizeof(u), "https", hm->s, "/hello");
    while (!atomic_load(hm->stop)) {
        CURL *h = curl_easy_init();
        if (h == NULL) {
            hm->bad++;
            continue;
        }
        long st = raw_get(h, u, leaf, sizeof(leaf), &connects);
        if (st == 200 && strcmp(leaf, F.a_pem) == 0)
            hm->a_seen++;
        else if (st == 200 && strcmp(leaf, F.b_pem) == 0)
            hm->b_seen++;
        else
            hm->bad++;
        hm->ok += st == 200;
        curl_easy_cleanup(h);
    }
    return NULL;
}

/* Reloads race handshakes on the server's threads: every handshake gets a whole pair, a or b,
 * and no pair is freed under a connection (ASan would say). */
static void test_reload_races_handshakes(void **state)
{
    atomic_bool stop = false;
    hammer hm[3];
    pthread_t th[3];
    (void)state;

    set_live(F.a_crt, F.a_key, 0600);
    os_http_config cfg = {.threads = 2};
    os_http_server *s = start_tls(&cfg);
    for (int i = 0; i < 3; i++) {
        hm[i] = (hammer){.s = s, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &hm[i]), 0);
    }
    for (int r = 0; r < 20; r++) {
        if (r % 2 == 0)
            set_live(F.b_crt, F.b_key, 0600);
        else
            set_live(F.a_crt, F.a_key, 0600);
        assert_int_equal(os_http_server_reload_tls(s), OS_OK);
        sleep_ms(40);
    }
    atomic_store(&stop, true);
    int ok = 0, a = 0, b = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(hm[i].bad, 0);
        ok += hm[i].ok;
        a += hm[i].a_seen;
        b += hm[i].b_seen;
    }
    print_message("handshakes during reloads: %d (a %d, b %d)\n", ok, a, b);
    assert_true(ok >= 10);
    assert_true(a > 0 && b > 0);
    os_http_server_free(s);
}

/* Start fails with err, logs needle, and leaves nothing listening. */
static void start_fails(const char *crt, const char *key, os_err err, const char *needle)
{
    os_http_config c = {.listen = "127.0.0.1:0", .log = &F.lg};
    os_http_server *s;

    c.tls_cert_file = crt;
    c.tls_key_file = key;
    assert_int_equal(os_http_server_new(&s, &c, ROUTES, N_ROUTES, NULL), OS_OK);
    assert_int_equal(os_http_server_start(s), err);
    assert_int_equal(os_http_server_port(s), 0);
    assert_true(log_has(needle));
    os_http_server_free(s);
}

static void test_start_refusals(void **state)
{
    os_http_config c = {.listen = "127.0.0.1:0", .log = &F.lg};
    os_http_server *s = NULL;
    char longpath[5000];
    (void)state;

    /* both or neither */
    c.tls_cert_file = F.a_crt;
    assert_int_equal(os_http_server_new(&s, &c, ROUTES, N_ROUTES, NULL), OS_ERR_INVALID);
    assert_null(s);
    c.tls_cert_file = NULL;
    c.tls_key_file = F.a_key;
    assert_int_equal(os_http_server_new(&s, &c, ROUTES, N_ROUTES, NULL), OS_ERR_INVALID);
    c.tls_cert_file = "";
    assert_int_equal(os_http_server_new(&s, &c, ROUTES, N_ROUTES, NULL), OS_ERR_INVALID);
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    c.tls_cert_file = longpath;
    assert_int_equal(os_http_server_new(&s, &c, ROUTES, N_ROUTES, NULL), OS_ERR_INVALID);
    assert_int_equal(os_http_server_reload_tls(NULL), OS_ERR_INVALID);
    assert_false(os_http_server_is_tls(NULL));

    /* a key file others may read */
    set_live(F.a_crt, F.a_key, 0644);
    start_fails(F.live_crt, F.live_key, OS_ERR_INVALID, "accessible by group or others");
    set_live(F.a_crt, F.a_key, 0640);
    start_fails(F.live_crt, F.live_key, OS_ERR_INVALID, "accessible by group or others");
    /* a symbolic link to a good key file */
    assert_int_equal(symlink(F.a_key, F.scratch), 0);
    start_fails(F.a_crt, F.scratch, OS_ERR_INVALID, "symbolic link");
    assert_int_equal(unlink(F.scratch), 0);
    /* garbage where PEM belongs */
    tlsu_write_text(F.scratch, "this is not PEM\n", 0600);
    start_fails(F.scratch, F.a_key, OS_ERR_INVALID, "does not hold PEM certificates");
    start_fails(F.a_crt, F.scratch, OS_ERR_INVALID, "does not hold an unencrypted PEM private key");
    /* a certificate file given as the key, and the key as the certificate */
    start_fails(F.a_key, F.a_key, OS_ERR_INVALID, "does not hold PEM certificates");
    copy_file(F.scratch, F.a_crt, 0600);
    start_fails(F.a_crt, F.scratch, OS_ERR_INVALID, "does not hold an unencrypted PEM private key");
    /* an encrypted key */
    tlsu_cert k = {tlsu_key(false), NULL};
    tlsu_write_key(F.scratch, k.key, 0600, "passphrase");
    tlsu_free(&k);
    start_fails(F.a_crt, F.scratch, OS_ERR_INVALID, "does not hold an unencrypted PEM private key");
    /* the key of another certificate */
    start_fails(F.a_crt, F.b_key, OS_ERR_INVALID, "does not match the certificate");
    /* the chain in the wrong order */
    start_fails(F.i_bad, F.i_key, OS_ERR_INVALID, "does not hold PEM certificates");
    /* missing files */
    assert_int_equal(unlink(F.scratch), 0);
    start_fails(F.scratch, F.a_key, OS_ERR_NOTFOUND, "cannot open certificate file");
    start_fails(F.a_crt, F.scratch, OS_ERR_NOTFOUND, "cannot open");
    /* a directory as the certificate */
    start_fails(F.dir, F.a_key, OS_ERR_INVALID, "not a regular file");
}

static void test_plain_http_to_tls_port(void **state)
{
    os_http_client_res res;
    os_http_client_error e;
    char u[128], buf[4096];
    size_t got = 0;
    (void)state;

    set_live(F.a_crt, F.a_key, 0600);
    os_http_server *s = start_tls(NULL);
    os_http_client *c = client(F.ca, 0);
    os_http_client_res_init(&res);

    url(u, sizeof(u), "http", s, "/hello");
    assert_int_not_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_not_equal(e.kind, OS_HTTP_FAIL_NONE);
    assert_int_equal(res.status, 0);

    /* by hand: the server closes the connection without an HTTP answer, and promptly */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(os_http_server_port(s))};
    struct timeval tv = {5, 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *req = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0) {
            /* EOF or a reset, not the 5 s timeout */
            assert_true(n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK));
            break;
        }
        got += (size_t)n;
        if (got == sizeof(buf) - 1)
            break;
    }
    buf[got] = '\0';
    close(fd);
    assert_true(got < 64); /* at most a TLS alert */
    assert_true(got == 0 || strncmp(buf, "HTTP/", 5) != 0);

    /* and the server goes on serving */
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 200);

    os_http_client_res_free(&res);
    os_http_client_free(c);
    os_http_server_free(s);
}

/* GET /hello with the TLS versions curl (OpenSSL) may offer limited to [minv, maxv]
 * (CURL_SSLVERSION_*): curl's result, its reason in errbuf. */
static CURLcode versioned_get(const os_http_server *s, long minv, long maxv,
                              char errbuf[CURL_ERROR_SIZE])
{
    CURL *h = curl_easy_init();
    long status = 0;
    char u[128];
    CURLcode rc;

    assert_non_null(h);
    errbuf[0] = '\0';
    url(u, sizeof(u), "https", s, "/hello");
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_CAINFO, F.ca);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, minv | maxv);
    /* OpenSSL 3 offers TLS 1.0 and 1.1 only at security level 0 */
    if (minv < CURL_SSLVERSION_TLSv1_2)
        curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, "DEFAULT@SECLEVEL=0");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (rc == CURLE_OK && status != 200)
        fail_msg("status %ld", status);
    return rc;
}

/* The server ended the handshake on the client's versions: with a protocol_version alert, or
 * (libmicrohttpd 0.9.75 sends no alert) by closing the connection, which OpenSSL reports as
 * SSL_ERROR_SYSCALL. A client that could not offer the versions at all would fail otherwise
 * ("no protocols available"), and the same client offering up to TLS 1.3 gets through (see the
 * test). */
static void refused_version(const os_http_server *s, long minv, long maxv)
{
    char errbuf[CURL_ERROR_SIZE];
    assert_int_equal(versioned_get(s, minv, maxv, errbuf), CURLE_SSL_CONNECT_ERROR);
    if (strstr(errbuf, "alert protocol version") == NULL &&
        strstr(errbuf, "SSL_ERROR_SYSCALL") == NULL)
        fail_msg("curl: %s", errbuf);
}

static void test_tls_versions(void **state)
{
    char errbuf[CURL_ERROR_SIZE];
    (void)state;

    set_live(F.a_crt, F.a_key, 0600);
    os_http_server *s = start_tls(NULL);
    refused_version(s, CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_1);
    refused_version(s, CURL_SSLVERSION_TLSv1_1, CURL_SSLVERSION_MAX_TLSv1_1);
    /* the control: the same client (security level 0) allowed TLS 1.2 or 1.3 as well */
    assert_int_equal(versioned_get(s, CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_2, errbuf),
                     CURLE_OK);
    assert_int_equal(versioned_get(s, CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_3, errbuf),
                     CURLE_OK);
    assert_int_equal(versioned_get(s, CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2, errbuf),
                     CURLE_OK);
    assert_int_equal(versioned_get(s, CURL_SSLVERSION_TLSv1_3, CURL_SSLVERSION_MAX_TLSv1_3, errbuf),
                     CURLE_OK);
    /* RSA too, over both versions */
    os_http_server_free(s);
    set_live(F.b_crt, F.b_key, 0600);
    s = start_tls(NULL);
    assert_int_equal(versioned_get(s, CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2, errbuf),
                     CURLE_OK);
    assert_int_equal(versioned_get(s, CURL_SSLVERSION_TLSv1_3, CURL_SSLVERSION_MAX_TLSv1_3, errbuf),
                     CURLE_OK);
    refused_version(s, CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_1);
    os_http_server_free(s);
}

typedef struct slow_call {
    os_http_client *c;
    char url[128];
    os_err rc;
    long status;
    char body[16];
} slow_call;

static void *slow_thread(void *arg)
{
    slow_call *sc = arg;
    os_http_client_res res;
    os_http_client_error e;

    os_http_client_res_init(&res);
    sc->rc = do_req(sc->c, &res, &e, "GET", sc->url, NULL, 0);
    sc->status = res.status;
    snprintf(sc->body, sizeof(sc->body), "%.*s", (int)res.body.len, (const char *)res.body.data);
    os_http_client_res_free(&res);
    return NULL;
}

static void test_limits_metrics_drain(void **state)
{
    os_http_client_res res;
    os_http_client_error e;
    os_metrics *m;
    char u[128], big[2000], *text = NULL;
    slow_call sc = {0};
    pthread_t th;
    (void)state;

    memset(big, 'x', sizeof(big));
    assert_int_equal(os_metrics_new(&m), OS_OK);
    set_live(F.a_crt, F.a_key, 0600);
    os_http_config cfg = {.max_body = 1024, .rate_per_s = 1, .rate_burst = 3, .metrics = m};
    os_http_server *s = start_tls(&cfg);
    os_http_client *c = client(F.ca, 1);
    os_http_client_res_init(&res);

    url(u, sizeof(u), "https", s, "/echo");
    assert_int_equal(do_req(c, &res, &e, "POST", u, big, sizeof(big)), OS_OK);
    assert_int_equal(res.status, 413);
    url(u, sizeof(u), "https", s, "/nope");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 404);
    url(u, sizeof(u), "https", s, "/hello");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 200);
    assert_string_equal(os_http_client_res_header(&res, "X-RateLimit-Limit"), "3");
    assert_int_equal(do_req(c, &res, &e, "GET", u, NULL, 0), OS_OK);
    assert_int_equal(res.status, 429);
    assert_non_null(os_http_client_res_header(&res, "Retry-After"));
    sleep_ms(50);
    assert_int_equal(os_metrics_render(m, &text, NULL), OS_OK);
    if (strstr(text, "openseed_http_requests_total{class=\"2xx\"} 1\n") == NULL ||
        strstr(text, "openseed_http_requests_total{class=\"4xx\"} 3\n") == NULL ||
        strstr(text, "openseed_http_rate_limited_total 1\n") == NULL ||
        strstr(text, "openseed_http_requests_in_flight 0\n") == NULL)
        fail_msg("metrics:\n%s", text);
    free(text);
    os_http_server_free(s);
    os_metrics_free(m);

    /* the graceful stop drains a request in flight over TLS */
    s = start_tls(NULL);
    sc.c = c;
    url(sc.url, sizeof(sc.url), "https", s, "/slow");
    atomic_store(&A.slow_entered, 0);
    assert_int_equal(pthread_create(&th, NULL, slow_thread, &sc), 0);
    while (!atomic_load(&A.slow_entered))
        sleep_ms(5);
    os_http_server_stop(s);
    pthread_join(th, NULL);
    assert_int_equal(sc.rc, OS_OK);
    assert_int_equal(sc.status, 200);
    assert_string_equal(sc.body, "done");

    os_http_client_res_free(&res);
    os_http_client_free(c);
    os_http_server_free(s);
}

static void test_client_ca_file(void **state)
{
    os_http_client_config cc = {0};
    os_http_client *c = NULL;
    (void)state;

    cc.ca_file = "";
    assert_int_equal(os_http_client_new(&c, &cc), OS_ERR_INVALID);
    assert_null(c);
    cc.ca_file = F.scratch;
    (void)unlink(F.scratch);
    assert_int_equal(os_http_client_new(&c, &cc), OS_ERR_NOTFOUND);
    tlsu_write_text(F.scratch, "not a certificate\n", 0644);
    assert_int_equal(os_http_client_new(&c, &cc), OS_ERR_INVALID);
    cc.ca_file = F.a_key; /* a key, no certificate */
    assert_int_equal(os_http_client_new(&c, &cc), OS_ERR_INVALID);
    cc.ca_file = F.dir;
    assert_int_not_equal(os_http_client_new(&c, &cc), OS_OK);
    cc.ca_file = F.ca;
    assert_int_equal(os_http_client_new(&c, &cc), OS_OK);
    os_http_client_free(c);
    (void)unlink(F.scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_get_post_stream),   cmocka_unit_test(test_stream_client_gone),
        cmocka_unit_test(test_verification_failures),   cmocka_unit_test(test_reload),
        cmocka_unit_test(test_reload_races_handshakes), cmocka_unit_test(test_start_refusals),
        cmocka_unit_test(test_plain_http_to_tls_port),  cmocka_unit_test(test_tls_versions),
        cmocka_unit_test(test_limits_metrics_drain),    cmocka_unit_test(test_client_ca_file),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
