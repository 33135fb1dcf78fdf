/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real `openseed` binary, run with posix_spawn in a fresh temporary directory: `keys new`,
 * `show`, `import` and `export` round trips between raw key files and v3 keystores (0600 modes, a
 * wrong password refused with a message and exit 1, an existing file never overwritten, nothing
 * secret printed), `registry status` and `peers` against an in-process registry core with an
 * announced seller (its signature checked by the CLI), `--json` output parsed back, and bad
 * command lines answered with exit 2 and the usage line.
 */
#define _GNU_SOURCE 1 /* nftw's FTW_DEPTH / FTW_PHYS */
#include "testutil.h"

#include <pwd.h>
#include <sys/stat.h>

#include "run_prog.h"
#include "registry_client.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "openseed/ct.h"
#include "openseed/init.h"
#include "openseed/secp.h"
#include "registry.h"

#define CHAIN 8453

static char tmp[256];

/* web3.js documentation's privateKeyToAccount example (as test_flags.c). */
static const char vector_key[] =
    "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
static const char vector_addr[] = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";


static size_t count_newlines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* Runs openseed with args; on an unexpected status shows its output. */
static result os_run(int want, const char *const *args)
{
    result r = run("openseed", args);
    if (r.status != want)
        fail_msg("openseed %s ...: exit %d, wanted %d\nstdout: %s\nstderr: %s", args[0], r.status,
                 want, r.out, r.err);
    return r;
}

static const char *path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmp, name);
    return buf;
}

static void put(const char *name, const char *text, mode_t mode)
{
    char p[512];
    FILE *f = fopen(path_of(p, sizeof(p), name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(p, mode), 0);
}

static mode_t mode_of(const char *name)
{
    char p[512];
    struct stat st;
    assert_int_equal(stat(path_of(p, sizeof(p), name), &st), 0);
    return st.st_mode & 0777;
}

static char *slurp(const char *name)
{
    char p[512];
    FILE *f = fopen(path_of(p, sizeof(p), name), "r");
    char *buf = calloc(1, 65536);
    assert_non_null(f);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The last line of s without its newline, into out. */
static void line1(char *out, size_t cap, const char *s)
{
    size_t n = strcspn(s, "\n");
    snprintf(out, cap, "%.*s", (int)n, s);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    const char *b = getenv("OPENSEED_BUILD_DIR");
    tmp[0] = '\0';
    if (b == NULL || b[0] == '\0') {
        fprintf(stderr, "OPENSEED_BUILD_DIR is not set\n");
        return -1;
    }
    snprintf(build_dir, sizeof(build_dir), "%s", b);
    snprintf(tmp, sizeof(tmp), "/tmp/openseed-cli-XXXXXX");
    if (mkdtemp(tmp) == NULL || chdir(tmp) != 0)
        return -1;
    umask(022); /* the CLI must make 0600 files itself, whatever the umask allows */
    return tu_init(state);
}

static int teardown(void **state)
{
    (void)state;
    if (tmp[0] == '\0')
        return 0;
    return nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------ keys */

static void test_keys_new_show(void **state)
{
    char p[512], addr[64], shown[64];
    (void)state;

    result r = os_run(
        0, (const char *const[]){"keys", "new", "--out", path_of(p, sizeof(p), "a.key"), NULL});
    line1(addr, sizeof(addr), r.out);
    assert_int_equal(strlen(addr), 42);
    assert_int_equal(mode_of("a.key"), 0600);
    result_free(&r);
    r = os_run(0, (const char *const[]){"keys", "show", "--key", p, NULL});
    line1(shown, sizeof(shown), r.out);
    assert_string_equal(shown, addr);
    result_free(&r);
    /* the key is never printed */
    char *k = slurp("a.key");
    r = os_run(0, (const char *const[]){"keys", "show", "--key", p, "--json", NULL});
    assert_null(strstr(r.out, k + 2));
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "address")), addr);
    json_decref(j);
    result_free(&r);
    free(k);

    /* an existing file is never replaced */
    char *before = slurp("a.key");
    r = os_run(1, (const char *const[]){"keys", "new", "--out", p, NULL});
    assert_non_null(strstr(r.err, "exists"));
    assert_int_equal(count_newlines(r.err), 1);
    result_free(&r);
    char *after = slurp("a.key");
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* a key file others can read is refused */
    put("open.key", vector_key, 0644);
    r = os_run(
        2, (const char *const[]){"keys", "show", "--key", path_of(p, sizeof(p), "open.key"), NULL});
    assert_non_null(strstr(r.err, "0644"));
    result_free(&r);
    put("v.key", vector_key, 0600);
    r = os_run(
        0, (const char *const[]){"keys", "show", "--key", path_of(p, sizeof(p), "v.key"), NULL});
    line1(shown, sizeof(shown), r.out);
    assert_string_equal(shown, vector_addr);
    result_free(&r);
}

/* keys new --owner: the key goes to a service user with mode 0600, or is not left at all. As
 * root (the test suite runs as root on CI) it is handed to "nobody"; otherwise the chown is
 * refused and the file removed. An unknown user never leaves a file. */
static void test_keys_owner(void **state)
{
    char p[512];
    struct stat sb;
    struct passwd *nobody = getpwnam("nobody");
    (void)state;

    assert_non_null(nobody);
    path_of(p, sizeof(p), "svc.key");
    if (geteuid() == 0) {
        result r = os_run(0, (const char *const[]){"keys", "new", "--out", p, "--owner", "nobody",
                                                    NULL});
        result_free(&r);
        assert_int_equal(stat(p, &sb), 0);
        assert_int_equal(sb.st_uid, nobody->pw_uid);
        assert_int_equal(sb.st_gid, nobody->pw_gid);
        assert_int_equal(sb.st_mode & 07777, 0600);
    } else {
        result r = os_run(1, (const char *const[]){"keys", "new", "--out", p, "--owner", "nobody",
                                                    NULL});
        assert_non_null(strstr(r.err, "only root can"));
        result_free(&r);
        assert_int_equal(stat(p, &sb), -1);
    }
    path_of(p, sizeof(p), "ghost.key");
    result r = os_run(1, (const char *const[]){"keys", "new", "--out", p, "--owner",
                                                "no-such-user-openseed", NULL});
    assert_non_null(strstr(r.err, "no user no-such-user-openseed"));
    result_free(&r);
    assert_int_equal(stat(p, &sb), -1);
}

static void test_keys_keystore_round_trip(void **state)
{
    char p[512], ks[512], raw[512], pw[512], bad[512], addr[64];
    (void)state;

    put("pw", "correct horse\n", 0600);
    put("bad", "wrong horse\n", 0600);
    put("src.key", vector_key, 0600);
    path_of(pw, sizeof(pw), "pw");
    path_of(bad, sizeof(bad), "bad");

    /* raw -> keystore (export) -> raw (import): the same key comes back */
    result r =
        os_run(0, (const char *const[]){"keys", "export", "--key", path_of(p, sizeof(p), "src.key"),
                                        "--out", path_of(ks, sizeof(ks), "k.json"), "--keystore",
                                        "--password-file", pw, "--scrypt-log2n", "10", NULL});
    line1(addr, sizeof(addr), r.out);
    assert_string_equal(addr, vector_addr);
    result_free(&r);
    assert_int_equal(mode_of("k.json"), 0600);
    char *json = slurp("k.json");
    assert_null(strstr(json, vector_key + 2)); /* encrypted */
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
    json_decref(j);
    free(json);

    r = os_run(0, (const char *const[]){"keys", "show", "--key", ks, "--password-file", pw, NULL});
    line1(addr, sizeof(addr), r.out);
    assert_string_equal(addr, vector_addr);
    result_free(&r);

    r = os_run(0, (const char *const[]){"keys", "import", "--from", ks, "--out",
                                        path_of(raw, sizeof(raw), "back.key"), "--password-file",
                                        pw, "--json", NULL});
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "address")), vector_addr);
    assert_string_equal(json_string_value(json_object_get(j, "format")), "raw");
    json_decref(j);
    result_free(&r);
    char *back = slurp("back.key");
    assert_string_equal(back,
                        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n");
    free(back);
    assert_int_equal(mode_of("back.key"), 0600);

    /* raw -> keystore with import --keystore, under another password */
    put("pw2", "second\n", 0600);
    r = os_run(0, (const char *const[]){"keys", "import", "--from", raw, "--out",
                                        path_of(p, sizeof(p), "k2.json"), "--keystore",
                                        "--password-file", path_of(bad, sizeof(bad), "pw2"),
                                        "--scrypt-log2n", "10", NULL});
    result_free(&r);
    r = os_run(0, (const char *const[]){"keys", "show", "--key", p, "--password-file", bad, NULL});
    line1(addr, sizeof(addr), r.out);
    assert_string_equal(addr, vector_addr);
    result_free(&r);

    /* keys new --keystore */
    r = os_run(0, (const char *const[]){"keys", "new", "--out", path_of(p, sizeof(p), "n.json"),
                                        "--keystore", "--password-file", pw, "--scrypt-log2n", "10",
                                        NULL});
    result_free(&r);
    assert_int_equal(mode_of("n.json"), 0600);

    /* a wrong password: exit 1, one line, the password not echoed */
    path_of(bad, sizeof(bad), "bad");
    r = os_run(1, (const char *const[]){"keys", "show", "--key", ks, "--password-file", bad, NULL});
    assert_non_null(strstr(r.err, "wrong password"));
    assert_null(strstr(r.err, "horse"));
    assert_int_equal(count_newlines(r.err), 1);
    assert_string_equal(r.out, "");
    result_free(&r);
    r = os_run(1,
               (const char *const[]){"keys", "import", "--from", ks, "--out",
                                     path_of(p, sizeof(p), "x.key"), "--password-file", bad, NULL});
    result_free(&r);
    assert_int_equal(access(p, F_OK), -1); /* nothing written */
    /* a keystore without a password */
    r = os_run(1, (const char *const[]){"keys", "show", "--key", ks, NULL});
    assert_non_null(strstr(r.err, "--password-file"));
    result_free(&r);
    /* a password file others can read */
    put("pw-open", "correct horse\n", 0644);
    r = os_run(2, (const char *const[]){"keys", "show", "--key", ks, "--password-file",
                                        path_of(p, sizeof(p), "pw-open"), NULL});
    result_free(&r);
    /* export onto an existing file */
    r = os_run(1, (const char *const[]){"keys", "export", "--key", raw, "--out", ks, "--keystore",
                                        "--password-file", pw, "--scrypt-log2n", "10", NULL});
    assert_non_null(strstr(r.err, "exists"));
    result_free(&r);
    /* --keystore without a password file is a usage error */
    r = os_run(2, (const char *const[]){"keys", "new", "--out", path_of(p, sizeof(p), "y.json"),
                                        "--keystore", NULL});
    assert_non_null(strstr(r.err, "usage:"));
    result_free(&r);
    assert_int_equal(access(p, F_OK), -1);
}

static void test_bad_arguments(void **state)
{
    const char *const *const cases[] = {
        (const char *const[]){NULL},
        (const char *const[]){"frobnicate", NULL},
        (const char *const[]){"keys", NULL},
        (const char *const[]){"keys", "bogus", NULL},
        (const char *const[]){"keys", "new", NULL},
        (const char *const[]){"keys", "new", "--out", "x", "--nope", NULL},
        (const char *const[]){"keys", "new", "--out", "x", "--scrypt-log2n", "40", NULL},
        (const char *const[]){"peers", "--registry", "ftp://x", NULL},
        (const char *const[]){"registry", NULL},
        (const char *const[]){"registry", "explode", NULL},
        (const char *const[]){"channels", "close", NULL},
        (const char *const[]){"channels", "close", "0x12", NULL},
        (const char *const[]){"seller", "status", NULL},
        (const char *const[]){"seller", "dance", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result r = os_run(2, cases[i]);
        assert_non_null(strstr(r.err, "usage"));
        assert_string_equal(r.out, "");
        result_free(&r);
    }
    /* --help on each command: exit 0, usage on stdout */
    const char *const *const helps[] = {
        (const char *const[]){"--help", NULL},
        (const char *const[]){"keys", "--help", NULL},
        (const char *const[]){"keys", "new", "--help", NULL},
        (const char *const[]){"keys", "show", "--help", NULL},
        (const char *const[]){"keys", "import", "--help", NULL},
        (const char *const[]){"keys", "export", "--help", NULL},
        (const char *const[]){"peers", "--help", NULL},
        (const char *const[]){"registry", "status", "--help", NULL},
        (const char *const[]){"channels", "--help", NULL},
        (const char *const[]){"channels", "list", "--help", NULL},
        (const char *const[]){"ledger", "--help", NULL},
        (const char *const[]){"spend", "--help", NULL},
        (const char *const[]){"seller", "--help", NULL},
        (const char *const[]){"seller", "settle", "--help", NULL},
    };
    for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
        result r = os_run(0, helps[i]);
        assert_non_null(strstr(r.out, "usage"));
        result_free(&r);
    }
    /* a daemon that is not there: exit 1 and one line */
    result r = os_run(
        1, (const char *const[]){"registry", "status", "--registry", "http://127.0.0.1:1", NULL});
    assert_int_equal(count_newlines(r.err), 1);
    result_free(&r);
    r = os_run(1, (const char *const[]){"channels", "list", "--buyer", "http://127.0.0.1:1", NULL});
    assert_int_equal(count_newlines(r.err), 1);
    result_free(&r);
}

/* ------------------------------------------------------------------ registry */

static void test_registry_and_peers(void **state)
{
    char dir[64] = "/tmp/openseed-cli-reg-XXXXXX", db[128], base[64];
    rg_registry *rg = NULL;
    rg_options o;
    os_logger log;
    rc_seller s;
    (void)state;

    assert_int_equal(rc_tmpdir(dir), 0);
    snprintf(db, sizeof(db), "%s/registry.db", dir);
    rg_options_default(&o);
    o.listen = "127.0.0.1:0";
    o.db_path = db;
    o.chain_id = CHAIN;
    o.rescore_interval_ms = 100;
    o.rate_per_s = 0;
    o.drain_timeout_ms = 1000;
    os_logger_init(&log, "registry", OS_LOG_ERROR);
    assert_int_equal(rg_registry_new_opts(&rg, &o, &log), OS_OK);
    assert_int_equal(rg_registry_start(rg), OS_OK);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)rg_registry_port(rg));

    result r = os_run(0, (const char *const[]){"registry", "status", "--registry", base, NULL});
    assert_non_null(strstr(r.out, "ok"));
    result_free(&r);
    r = os_run(0, (const char *const[]){"registry", "status", "--registry", base, "--json", NULL});
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    assert_int_equal(json_integer_value(json_object_get(j, "peers")), 0);
    json_decref(j);
    result_free(&r);

    /* announce one seller: 1.5 USDC in, 6 USDC out per million tokens */
    rc_offer off = {.service = "llama-3-8b", .input = 1500000, .output = 6000000};
    assert_int_equal(rc_seller_init(&s, 7), 0);
    json_t *rec = rc_record(&s, "http://seller-7.example:8378", rc_next_seq(&s),
                            (uint64_t)(rc_now_ms() / 1000), CHAIN, NULL, &off, 1);
    assert_non_null(rec);
    char *body = rc_announce_body(rec, &s);
    rc_resp resp;
    assert_int_equal(rc_call(&resp, base, "POST", "/v1/announce", body), 0);
    assert_int_equal(resp.status, 200);
    rc_resp_free(&resp);
    free(body);
    json_decref(rec);
    body = rc_heartbeat_body(&s, &s, "http://seller-7.example:8378", rc_next_seq(&s),
                             (uint64_t)(rc_now_ms() / 1000), CHAIN, 1, 4);
    assert_int_equal(rc_call(&resp, base, "POST", "/v1/heartbeat", body), 0);
    assert_int_equal(resp.status, 200);
    rc_resp_free(&resp);
    free(body);

    /* wait for the listing to be rebuilt */
    size_t n = 0;
    for (int i = 0; i < 200 && n == 0; i++) {
        rc_sleep_ms(50);
        r = os_run(0, (const char *const[]){"peers", "--registry", base, "--json", NULL});
        j = json_loads(r.out, 0, NULL);
        assert_non_null(j);
        n = json_array_size(json_object_get(j, "peers"));
        if (n == 0)
            json_decref(j);
        result_free(&r);
    }
    assert_int_equal(n, 1);
    json_t *p = json_array_get(json_object_get(j, "peers"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "node")), s.hex);
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")),
                        "http://seller-7.example:8378");
    json_t *of = json_array_get(json_object_get(p, "offerings"), 0);
    assert_string_equal(json_string_value(json_object_get(of, "input_usdc_per_mtok")), "1.5");
    assert_string_equal(json_string_value(json_object_get(of, "output_usdc_per_mtok")), "6");
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 0);
    json_decref(j);

    /* human form names the node, endpoint and prices */
    r = os_run(0,
               (const char *const[]){"peers", "--registry", base, "--service", "llama-3-8b", NULL});
    assert_non_null(strstr(r.out, s.hex));
    assert_non_null(strstr(r.out, "seller-7.example"));
    assert_non_null(strstr(r.out, "1.5 in / 6 out"));
    result_free(&r);
    /* another service: none */
    r = os_run(0, (const char *const[]){"peers", "--registry", base, "--service", "other", "--json",
                                        NULL});
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_decref(j);
    result_free(&r);

    rg_registry_free(rg);
    rc_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_new_show),
        cmocka_unit_test(test_keys_owner),
        cmocka_unit_test(test_keys_keystore_round_trip),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_registry_and_peers),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
