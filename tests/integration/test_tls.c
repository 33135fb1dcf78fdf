/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Native TLS between real processes (netfix.h): a registry and a seller serve HTTPS with
 * certificates from a test CA made here (tlsutil.h); the seller announces to the registry over
 * HTTPS and the buyer finds it and pays for a chat completion over HTTPS, both trusting that CA
 * through ca_file. Then:
 * - a client with the system's CAs is refused by both (certificates are verified by default), and
 *   a buyer started without ca_file cannot reach the registry, says why in its log, and answers
 *   its client with an error instead of an answer;
 * - SIGHUP makes the registry serve a certificate from a second CA (new connections: a client
 *   trusting only the first CA is refused, one trusting the second is served) without a restart;
 * - a SIGHUP with a key that does not match is refused and the working certificate stays;
 * - the daemons refuse to start with tls_cert but no tls_key, or a key file others can read.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "netfix.h"
#include "tlsutil.h"

#define CHAIN 31337
#define OFFER "echo model=echo-1 apis=openai.chat input=0.5 output=1.5"

static netfix fx;
static int failed;
static char ca1[256], ca2[256], reg_crt[256], reg_key[256], sel_crt[256], sel_key[256];
static char reg2_crt[256], reg2_key[256], bad_key[256];

static void make_certs(void)
{
    tlsu_cert c1 = tlsu_make("OpenSeed test CA 1", 1, NULL, true, false, NULL, 30);
    tlsu_cert c2 = tlsu_make("OpenSeed test CA 2", 2, NULL, true, false, NULL, 30);
    tlsu_cert r = tlsu_make("registry.test", 0x10, "IP:127.0.0.1,DNS:localhost", false, false,
                            &c1, 30);
    tlsu_cert s = tlsu_make("seller.test", 0x20, "IP:127.0.0.1,DNS:localhost", false, false, &c1,
                            30);
    tlsu_cert r2 = tlsu_make("registry.test", 0x30, "IP:127.0.0.1,DNS:localhost", false, false,
                             &c2, 30);

#define P(buf, name) snprintf(buf, sizeof(buf), "%s/%s", fx.dir, name)
    P(ca1, "ca1.pem");
    P(ca2, "ca2.pem");
    P(reg_crt, "reg.crt");
    P(reg_key, "reg.key");
    P(sel_crt, "sel.crt");
    P(sel_key, "sel.key");
    P(reg2_crt, "reg2.crt");
    P(reg2_key, "reg2.key");
    P(bad_key, "bad.key");
#undef P
    tlsu_write_certs(ca1, &c1.crt, 1);
    tlsu_write_certs(ca2, &c2.crt, 1);
    tlsu_write_certs(reg_crt, &r.crt, 1);
    tlsu_write_key(reg_key, r.key, 0600, NULL);
    tlsu_write_certs(sel_crt, &s.crt, 1);
    tlsu_write_key(sel_key, s.key, 0600, NULL);
    tlsu_write_certs(reg2_crt, &r2.crt, 1);
    tlsu_write_key(reg2_key, r2.key, 0600, NULL);
    tlsu_write_key(bad_key, s.key, 0600, NULL); /* a real key, but not reg2's */
    tlsu_free(&c1);
    tlsu_free(&c2);
    tlsu_free(&r);
    tlsu_free(&s);
    tlsu_free(&r2);
}

/* A fresh client trusting ca (NULL: the system's store). */
static os_http_client *client(const char *ca)
{
    os_http_client *c = NULL;
    os_http_client_config cc = {.ca_file = ca, .timeout_ms = 10000, .connect_timeout_ms = 5000};
    assert_int_equal(os_http_client_new(&c, &cc), OS_OK);
    return c;
}

/* GET url with a new client trusting ca: the HTTP status, or -1 with the failure kind in *kind. */
static long get_status(const char *ca, const char *url, os_http_fail *kind)
{
    os_http_client *c = client(ca);
    os_http_client_res res;
    os_http_client_error err = {0};
    os_http_client_req req = {.url = url};
    long st;

    os_http_client_res_init(&res);
    st = os_http_client_do(c, &res, &err, &req) == OS_OK ? res.status : -1;
    *kind = err.kind;
    os_http_client_res_free(&res);
    os_http_client_free(c);
    return st;
}

static int setup(void **state)
{
    char why[NF_WHY] = "";
    (void)state;

    if (nf_setup(&fx, "tls", CHAIN, why, sizeof(why)) != 0) {
        fprintf(stderr, "setup: %s\n", why);
        return -1;
    }
    make_certs();
    /* the fixture's own client must trust the test CA to ask the registry over HTTPS */
    os_http_client_free(fx.http);
    fx.http = client(ca1);
    fx.reg_tls = fx.sel_tls = true;
    const char *reg_args[] = {"--tls-cert", reg_crt, "--tls-key", reg_key, NULL};
    const char *sel_args[] = {"--tls-cert", sel_crt, "--tls-key", sel_key, "--ca-file", ca1, NULL};
    const char *buy_args[] = {"--ca-file", ca1, NULL};
    if (nf_registry(&fx, reg_args, why, sizeof(why)) != 0 ||
        nf_seller(&fx, 0, OFFER, NULL, sel_args, why, sizeof(why)) != 0) {
        fprintf(stderr, "setup: %s\n", why);
        nf_teardown(&fx, 1);
        return -1;
    }
    if (nf_wait_listed(&fx, "echo", 1, 30000) != 0) {
        fprintf(stderr, "setup: the seller was not listed over HTTPS\n");
        nf_teardown(&fx, 1);
        return -1;
    }
    if (nf_buyer(&fx, buy_args, why, sizeof(why)) != 0) {
        fprintf(stderr, "setup: %s\n", why);
        nf_teardown(&fx, 1);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nf_teardown(&fx, failed);
    return 0;
}

/* A failed test keeps the folder (logs, keys) for a look: failed is set while one runs and
 * stays set when it does not reach its end. */
#define CHECK(...)                                                                                 \
    do {                                                                                           \
        int failed_before = failed;                                                                \
        failed = 1;                                                                                \
        __VA_ARGS__;                                                                               \
        failed = failed_before;                                                                    \
    } while (0)

static void test_paid_over_https(void **state)
{
    nf_res r = {0};
    char url[256];
    os_http_fail kind;
    (void)state;

    CHECK({
        assert_true(strncmp(fx.reg.url, "https://", 8) == 0);
        assert_true(strncmp(fx.sel[0].url, "https://", 8) == 0);
        /* the buyer found the seller through the HTTPS registry and paid it over HTTPS */
        nf_post(&fx, &r, "/v1/chat/completions",
                "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"over tls\"}]}");
        if (r.status != 200)
            fail_msg("chat over https: %ld %.*s", r.status, (int)r.len, r.body);
        assert_non_null(strstr(r.body, "echo: over tls"));
        assert_true(strcasecmp(r.peer, fx.sel_hex[0]) == 0);
        nf_res_free(&r);

        /* the system's CAs do not know the test CA: refused, on both daemons */
        snprintf(url, sizeof(url), "%s/healthz", fx.reg.url);
        assert_int_equal(get_status(NULL, url, &kind), -1);
        assert_int_equal(kind, OS_HTTP_FAIL_TLS);
        assert_int_equal(get_status(ca1, url, &kind), 200);
        snprintf(url, sizeof(url), "%s/healthz", fx.sel[0].url);
        assert_int_equal(get_status(NULL, url, &kind), -1);
        assert_int_equal(kind, OS_HTTP_FAIL_TLS);
        assert_int_equal(get_status(ca1, url, &kind), 200);
        /* plain HTTP to the HTTPS port gets no answer */
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/healthz", (unsigned)fx.reg.port);
        assert_int_equal(get_status(NULL, url, &kind), -1);
    });
}

/* Whether the log at path holds text. */
static bool log_has(const char *path, const char *text)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    bool found = false;

    if (fp == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), fp) != NULL)
        found = strstr(line, text) != NULL;
    fclose(fp);
    return found;
}

/* Sets the buyer's flags to its own with --ca-file ca, or without it (ca NULL). */
static void buyer_ca_flag(const char *ca)
{
    size_t n = 0;

    for (size_t i = 0; fx.buyer.argv[i] != NULL; i++) {
        if (strcmp(fx.buyer.argv[i], "--ca-file") == 0 && fx.buyer.argv[i + 1] != NULL) {
            i++;
            continue;
        }
        fx.buyer.argv[n++] = fx.buyer.argv[i];
    }
    if (ca != NULL) {
        assert_true(n + 2 <= NF_MAX_ARGS);
        fx.buyer.argv[n++] = "--ca-file";
        fx.buyer.argv[n++] = ca;
    }
    fx.buyer.argv[n] = NULL;
}

/* Restarts the buyer (same data, same flags) with --ca-file ca, or without it (ca NULL). */
static void restart_buyer(const char *ca)
{
    char why[NF_WHY] = "";

    if (fx.buyer.p.pid > 0)
        assert_int_equal(nf_kill(&fx.buyer, SIGTERM), 0);
    buyer_ca_flag(ca);
    if (nf_restart(&fx, &fx.buyer, why, sizeof(why)) != 0)
        fail_msg("buyer restart: %s", why);
}

static void test_buyer_verifies_by_default(void **state)
{
    char log[256];
    nf_res r = {0};
    (void)state;

    CHECK({
        /* the same buyer without ca_file: the system's CAs, which do not know the test CA */
        restart_buyer(NULL);
        nf_post(&fx, &r, "/v1/chat/completions",
                "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
        if (r.status == 200)
            fail_msg("a buyer that cannot verify the registry answered: %.*s", (int)r.len,
                     r.body);
        assert_true(r.status >= 500);
        nf_res_free(&r);
        snprintf(log, sizeof(log), "%s/buyer.log", fx.dir);
        assert_true(log_has(log, "certificate verify failed"));

        /* a ca_file the buyer cannot read: it does not start, and says why */
        assert_int_equal(nf_kill(&fx.buyer, SIGTERM), 0);
        buyer_ca_flag("/nonexistent/openseed-ca.pem");
        {
            char why[NF_WHY] = "";
            assert_int_not_equal(nf_restart(&fx, &fx.buyer, why, sizeof(why)), 0);
        }
        assert_true(log_has(log, "with ca_file /nonexistent/openseed-ca.pem"));

        /* and back to one that trusts the test CA */
        restart_buyer(ca1);
        nf_post(&fx, &r, "/v1/chat/completions",
                "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"again\"}]}");
        assert_int_equal(r.status, 200);
        nf_res_free(&r);
    });
}

/* Copies file from onto to (same mode 0600), for swapping the registry's certificate in place. */
static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out;
    char buf[8192];
    size_t n;

    assert_non_null(in);
    out = tlsu_create(to, 0600);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Polls until a new connection trusting ca gets want (a status, or -1), up to 10 s. */
static long await_status(const char *ca, const char *url, long want)
{
    os_http_fail kind;
    long st = 0;
    for (int i = 0; i < 100; i++) {
        if ((st = get_status(ca, url, &kind)) == want)
            break;
        rc_sleep_ms(100);
    }
    return st;
}

static void test_sighup_swaps_certificate(void **state)
{
    char url[256];
    os_http_fail kind;
    (void)state;

    CHECK({
        snprintf(url, sizeof(url), "%s/healthz", fx.reg.url);
        assert_int_equal(get_status(ca1, url, &kind), 200);
        assert_int_equal(get_status(ca2, url, &kind), -1);

        /* a key that is not the new certificate's: the reload is refused, the old pair stays */
        copy_file(reg2_crt, reg_crt);
        copy_file(bad_key, reg_key);
        assert_int_equal(kill(fx.reg.p.pid, SIGHUP), 0);
        rc_sleep_ms(1000);
        assert_int_equal(get_status(ca1, url, &kind), 200);
        assert_int_equal(get_status(ca2, url, &kind), -1);

        /* the matching pair: new connections get the certificate of the second CA */
        copy_file(reg2_key, reg_key);
        assert_int_equal(kill(fx.reg.p.pid, SIGHUP), 0);
        assert_int_equal(await_status(ca2, url, 200), 200);
        assert_int_equal(get_status(ca1, url, &kind), -1);
        assert_int_equal(kind, OS_HTTP_FAIL_TLS);
        assert_true(fx.reg.p.pid > 0 && kill(fx.reg.p.pid, 0) == 0); /* no restart */
    });
}

/* Runs the registry binary with args and returns its exit status (it must not start). */
static int registry_exit(const char *const *args)
{
    char bin[1200], log[256], why[NF_WHY];
    rc_proc p;
    snprintf(bin, sizeof(bin), "%s/openseed-registry", fx.bin_dir);
    snprintf(log, sizeof(log), "%s/refused.log", fx.dir);
    if (rc_proc_start_wait(&p, bin, args, log, 5000, why, sizeof(why)) == 0) {
        rc_proc_stop(&p, SIGKILL, 1000);
        return 0;
    }
    return 1;
}

static void test_refused_configs(void **state)
{
    char dir[256], open_key[256];
    (void)state;

    CHECK({
        snprintf(dir, sizeof(dir), "%s/refused", fx.dir);
        snprintf(open_key, sizeof(open_key), "%s/open.key", fx.dir);
        copy_file(reg2_key, open_key);
        assert_int_equal(chmod(open_key, 0644), 0);
        const char *no_key[] = {"--listen", "127.0.0.1:0", "--data-dir", dir, "--tls-cert",
                                reg2_crt, NULL};
        const char *readable_key[] = {"--listen", "127.0.0.1:0", "--data-dir", dir,
                                      "--tls-cert", reg2_crt, "--tls-key", open_key, NULL};
        assert_int_equal(registry_exit(no_key), 1);
        assert_int_equal(registry_exit(readable_key), 1);
    });
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paid_over_https),
        cmocka_unit_test(test_buyer_verifies_by_default),
        cmocka_unit_test(test_sighup_swaps_certificate),
        cmocka_unit_test(test_refused_configs),
    };
    if (os_init() != OS_OK)
        return 1;
    return cmocka_run_group_tests(tests, setup, teardown);
}
