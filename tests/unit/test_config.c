/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for config.c against a table that uses every type and flag: defaults, the INI file, flags
 * overriding it in both forms, repeatable keys (a later source replaces a list), unknown keys in
 * the file and in flags, every kind of bad value, many errors reported at once with their file:line
 * or flag, required keys, a missing file, secrets never echoed, secret files' modes, the action
 * flags, generated help and the dispatch exit codes, and the value parsers on their own.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "openseed/config.h"

typedef struct tcfg {
    char *name;
    char *dir;
    bool verbose;
    uint64_t workers;
    uint64_t deposit;
    uint64_t interval;
    os_log_level log_level;
    os_cfg_listen listen;
    char *rpc;
    os_cfg_list registry;
    int api;
    os_cfg_address escrow;
    char *key_file;
    char *token;
    char *must;
    char *upstream;
} tcfg;

static os_err check_upstream(const char *v, char *err, size_t errcap)
{
    if (strcmp(v, "builtin:echo") == 0)
        return OS_OK;
    return os_cfg_check_url(v, err, errcap);
}

static const char *const apis[] = {"openai", "anthropic", NULL};

#define OFF(f) offsetof(tcfg, f)
static const os_cfg_entry entries[] = {
    {.name = "name", .type = OS_CFG_STRING, .offset = OFF(name), .help = "a name"},
    {.name = "dir", .type = OS_CFG_PATH, .offset = OFF(dir), .help = "a directory"},
    {.name = "verbose",
     .type = OS_CFG_BOOL,
     .offset = OFF(verbose),
     .dflt = "false",
     .help = "talk more"},
    {.name = "workers",
     .type = OS_CFG_U64,
     .offset = OFF(workers),
     .dflt = "4",
     .min = 1,
     .max = 64,
     .help = "worker threads"},
    {.name = "deposit",
     .type = OS_CFG_USDC,
     .offset = OFF(deposit),
     .dflt = "5",
     .min = 1,
     .help = "USDC per channel"},
    {.name = "interval",
     .type = OS_CFG_DURATION,
     .offset = OFF(interval),
     .dflt = "30s",
     .min = 5,
     .max = 3600,
     .help = "heartbeat"},
    {.name = "log_level",
     .type = OS_CFG_LOG_LEVEL,
     .offset = OFF(log_level),
     .dflt = "info",
     .help = "log level"},
    {.name = "listen",
     .type = OS_CFG_LISTEN,
     .offset = OFF(listen),
     .dflt = "127.0.0.1:8377",
     .help = "listen address"},
    {.name = "rpc",
     .type = OS_CFG_URL,
     .flags = OS_CFG_SECRET,
     .offset = OFF(rpc),
     .dflt = "http://127.0.0.1:8545/secret-default",
     .help = "chain RPC"},
    {.name = "registry",
     .type = OS_CFG_URL,
     .flags = OS_CFG_REPEATABLE,
     .offset = OFF(registry),
     .help = "registries"},
    {.name = "api",
     .type = OS_CFG_ENUM,
     .offset = OFF(api),
     .dflt = "openai",
     .choices = apis,
     .help = "upstream API"},
    {.name = "escrow", .type = OS_CFG_ADDRESS, .offset = OFF(escrow), .help = "escrow"},
    {.name = "key_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = OFF(key_file),
     .meta = "FILE",
     .help = "node key"},
    {.name = "token",
     .type = OS_CFG_STRING,
     .flags = OS_CFG_SECRET,
     .offset = OFF(token),
     .help = "a secret token"},
    {.name = "must",
     .type = OS_CFG_STRING,
     .flags = OS_CFG_REQUIRED,
     .offset = OFF(must),
     .help = "required"},
    {.name = "upstream",
     .type = OS_CFG_STRING,
     .offset = OFF(upstream),
     .check = check_upstream,
     .meta = "URL|builtin:echo",
     .help = "upstream"},
};

static void validate(const void *cfgp, os_cfg_report *rep)
{
    const tcfg *c = cfgp;
    if (c->name != NULL && strcmp(c->name, "forbidden") == 0)
        os_cfg_error(rep, "name: \"forbidden\" is not allowed with workers = %llu",
                     (unsigned long long)c->workers);
}

static const os_cfg_program prog = {
    .name = "openseed-test",
    .version = "9.8.7",
    .summary = "A program for testing the config loader.",
    .entries = entries,
    .n_entries = sizeof(entries) / sizeof(entries[0]),
    .validate = validate,
};

static char tmpdir[64];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/openseed-cfg-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return tu_init(state);
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to tmpdir/name with mode; returns the path in a static buffer slot. */
static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char paths[8][256];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    unlink(p);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return p;
}

/* Loads with argv (NULL-terminated, program name added). */
static os_err load(tcfg *c, os_cfg_report *rep, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"openseed-test";
    for (; args[argc - 1] != NULL; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    memset(c, 0xA5, sizeof(*c)); /* the loader must not read what was there */
    return os_cfg_load(&prog, c, rep, argc, argv);
}

/* Asserts that some error contains every one of the given fragments (NULL-terminated). */
static void assert_error_has(const os_cfg_report *rep, const char *a, const char *b)
{
    for (size_t i = 0; i < rep->n_errors; i++) {
        if (strstr(rep->errors[i], a) != NULL && (b == NULL || strstr(rep->errors[i], b) != NULL))
            return;
    }
    for (size_t i = 0; i < rep->n_errors; i++)
        print_message("  error: %s\n", rep->errors[i]);
    fail_msg("no error contains \"%s\"%s%s", a, b ? " and " : "", b ? b : "");
}

static void assert_no_error_has(const os_cfg_report *rep, const char *a)
{
    for (size_t i = 0; i < rep->n_errors; i++) {
        if (strstr(rep->errors[i], a) != NULL)
            fail_msg("error leaks \"%s\": %s", a, rep->errors[i]);
    }
}

static void test_defaults(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    const char *args[] = {"--must", "x", NULL};
    assert_int_equal(load(&c, &rep, args), OS_OK);
    assert_int_equal(rep.n_errors, 0);
    assert_int_equal(rep.action, OS_CFG_RUN);
    assert_null(rep.config_file);
    assert_null(c.name);
    assert_null(c.dir);
    assert_false(c.verbose);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.deposit, 5000000);
    assert_int_equal(c.interval, 30);
    assert_int_equal(c.log_level, OS_LOG_INFO);
    assert_string_equal(c.listen.host, "127.0.0.1");
    assert_int_equal(c.listen.port, 8377);
    assert_string_equal(c.rpc, "http://127.0.0.1:8545/secret-default");
    assert_int_equal(c.registry.n, 0);
    assert_int_equal(c.api, 0);
    assert_false(c.escrow.set);
    assert_null(c.key_file);
    assert_string_equal(c.must, "x");
    os_cfg_free(&prog, &c);
    assert_null(c.must);
    os_cfg_free(&prog, &c); /* idempotent */
    os_cfg_report_free(&rep);
}

static void test_file(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    const char *key = write_file("node.key", "00", 0600);
    char text[1024];
    snprintf(text, sizeof(text),
             "\xEF\xBB\xBF# a comment\n"
             "; another\n"
             "\n"
             "name = my node ; inline comment\n"
             "  dir=/srv/openseed\n"
             "verbose = yes\r\n"
             "workers = 16\n"
             "deposit = 1.25\n"
             "interval = 2m\n"
             "log-level = debug\n"
             "listen = [::1]:9000\n"
             "rpc = https://rpc.example/v2/KEY\n"
             "registry = https://r1.example\n"
             "registry = http://10.0.0.2:8379/\n"
             "api = anthropic\n"
             "escrow = 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n"
             "key_file = %s\n"
             "token = hunter2\n"
             "must = from-file\n"
             "upstream = builtin:echo\n",
             key);
    const char *path = write_file("good.ini", text, 0644);
    const char *args[] = {"--config", path, NULL};
    os_err rc = load(&c, &rep, args);
    for (size_t i = 0; i < rep.n_errors; i++)
        print_message("  error: %s\n", rep.errors[i]);
    assert_int_equal(rc, OS_OK);
    assert_string_equal(rep.config_file, path);
    assert_string_equal(c.name, "my node");
    assert_string_equal(c.dir, "/srv/openseed");
    assert_true(c.verbose);
    assert_int_equal(c.workers, 16);
    assert_int_equal(c.deposit, 1250000);
    assert_int_equal(c.interval, 120);
    assert_int_equal(c.log_level, OS_LOG_DEBUG);
    assert_string_equal(c.listen.host, "::1");
    assert_int_equal(c.listen.port, 9000);
    assert_string_equal(c.rpc, "https://rpc.example/v2/KEY");
    assert_int_equal(c.registry.n, 2);
    assert_string_equal(c.registry.items[0], "https://r1.example");
    assert_string_equal(c.registry.items[1], "http://10.0.0.2:8379/");
    assert_int_equal(c.api, 1);
    assert_true(c.escrow.set);
    tu_assert_hex(c.escrow.bytes, 20, "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
    assert_string_equal(c.key_file, key);
    assert_string_equal(c.token, "hunter2");
    assert_string_equal(c.must, "from-file");
    assert_string_equal(c.upstream, "builtin:echo");

    /* --print-config shows it, secrets hidden */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    os_cfg_print(&prog, &c, out);
    fclose(out);
    assert_non_null(strstr(buf, "\nlisten = [::1]:9000\n"));
    assert_non_null(strstr(buf, "\ndeposit = 1.25\n"));
    assert_non_null(strstr(buf, "\ninterval = 120s\n"));
    assert_non_null(
        strstr(buf, "\nregistry = https://r1.example\nregistry = http://10.0.0.2:8379/\n"));
    assert_non_null(strstr(buf, "\napi = anthropic\n"));
    assert_non_null(strstr(buf, "\nescrow = 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n"));
    assert_non_null(strstr(buf, "\nrpc = (hidden)\n"));
    assert_non_null(strstr(buf, "\ntoken = (hidden)\n"));
    assert_non_null(strstr(buf, "\nverbose = true\n"));
    assert_non_null(strstr(buf, "\nlog_level = debug\n"));
    assert_null(strstr(buf, "hunter2"));
    assert_null(strstr(buf, "KEY"));
    free(buf);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
}

static void test_flags_override(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    const char *path = write_file("base.ini",
                                  "listen = 127.0.0.1:9000\n"
                                  "workers = 2\n"
                                  "registry = https://file-a.example\n"
                                  "registry = https://file-b.example\n"
                                  "must = file\n",
                                  0644);
    /* both forms, dashes for underscores, a bool flag alone, then one with a value */
    const char *args[] = {"--listen=127.0.0.1:9001", "--workers", "8", "--config=", NULL};
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, "--config: empty file name", NULL);
    os_cfg_report_free(&rep);

    const char *args2[] = {"--listen=127.0.0.1:9001",
                           "--config",
                           path,
                           "--workers",
                           "8",
                           "--verbose",
                           "--log-level",
                           "warn",
                           "--registry",
                           "https://flag-c.example",
                           "--registry=https://flag-d.example",
                           NULL};
    assert_int_equal(load(&c, &rep, args2), OS_OK);
    assert_int_equal(c.listen.port, 9001);
    assert_int_equal(c.workers, 8);
    assert_true(c.verbose);
    assert_int_equal(c.log_level, OS_LOG_WARN);
    assert_string_equal(c.must, "file");
    /* the flags' list replaces the file's */
    assert_int_equal(c.registry.n, 2);
    assert_string_equal(c.registry.items[0], "https://flag-c.example");
    assert_string_equal(c.registry.items[1], "https://flag-d.example");
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);

    const char *args3[] = {"--must", "m", "--verbose", "false", NULL};
    assert_int_equal(load(&c, &rep, args3), OS_OK);
    assert_false(c.verbose);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
    const char *args4[] = {"--verbose=on", "--must=m", NULL};
    assert_int_equal(load(&c, &rep, args4), OS_OK);
    assert_true(c.verbose);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
}

static void test_unknown_keys(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    const char *path =
        write_file("unknown.ini", "must = x\n\nbogus = 1\nconfig = other.ini\n", 0644);
    const char *args[] = {"--config",
                          path,
                          "--frobnicate=s3cr3t",
                          "--a-very-long-option-name-that-is-longer-than-any-key-could-be-x=s3cr3t",
                          "--nope",
                          "stray",
                          "-x",
                          NULL};
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    char want[300];
    snprintf(want, sizeof(want), "%s:3: unknown key \"bogus\"", path);
    assert_error_has(&rep, want, NULL);
    snprintf(want, sizeof(want), "%s:4: config can only be given on the command line", path);
    assert_error_has(&rep, want, NULL);
    assert_error_has(&rep, "--frobnicate: unknown option", NULL);
    assert_error_has(&rep, "--nope: unknown option", NULL);
    assert_error_has(&rep, "unexpected argument \"stray\"", NULL);
    assert_error_has(&rep, "unexpected argument \"-x\"", NULL);
    assert_error_has(&rep, "--a-very-long-option-name", "unknown option");
    assert_no_error_has(&rep, "s3cr3t");
    assert_int_equal(rep.n_errors, 7);
    /* rejected whole: nothing is left set */
    assert_null(c.must);
    assert_int_equal(c.registry.n, 0);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
}

/* One bad value given as a flag: exactly one error, naming the flag and containing want. */
static void bad_flag(const char *flag, const char *want)
{
    tcfg c;
    os_cfg_report rep;
    const char *args[] = {"--must", "x", flag, NULL};
    if (load(&c, &rep, args) != OS_ERR_INVALID || rep.n_errors != 1) {
        for (size_t i = 0; i < rep.n_errors; i++)
            print_message("  error: %s\n", rep.errors[i]);
        fail_msg("%s: expected exactly one error", flag);
    }
    assert_error_has(&rep, want, NULL);
    char name[64];
    size_t n = strcspn(flag, "=");
    snprintf(name, sizeof(name), "%.*s: ", (int)n, flag);
    assert_error_has(&rep, name, NULL);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
}

static void test_bad_values(void **state)
{
    (void)state;
    bad_flag("--workers=abc", "expected a whole number");
    bad_flag("--workers=-1", "expected a whole number");
    bad_flag("--workers=0", "must be from 1 to 64");
    bad_flag("--workers=65", "must be from 1 to 64");
    bad_flag("--workers=99999999999999999999", "number too large");
    bad_flag("--workers= 4", "expected a whole number");
    bad_flag("--deposit=1.2345678", "USDC amount");
    bad_flag("--deposit=-5", "USDC amount");
    bad_flag("--deposit=1e3", "USDC amount");
    bad_flag("--deposit=0", "must be from 0.000001 to");
    bad_flag("--interval=5x", "expected a duration");
    bad_flag("--interval=4", "must be from 5s to 3600s");
    bad_flag("--interval=2h", "must be from 5s to 3600s");
    bad_flag("--interval=m", "expected a duration");
    bad_flag("--log-level=loud", "expected error, warn, info or debug");
    bad_flag("--listen=nope", "expected HOST:PORT");
    bad_flag("--listen=1.2.3.4:99999", "port must be a number from 0 to 65535");
    bad_flag("--listen=1.2.3.4:", "missing port");
    bad_flag("--listen=::1:80", "IPv6 address must be in brackets");
    bad_flag("--listen=[::g]:80", "invalid IPv6 address");
    bad_flag("--listen=300.1.1.1:80", "invalid IPv4 address");
    bad_flag("--listen=:80", "missing host");
    bad_flag("--listen=-bad.example:80", "label starts or ends with '-'");
    bad_flag("--listen=a_b:80", "invalid character in host name");
    bad_flag("--registry=ftp://x.example", "must start with http:// or https://");
    bad_flag("--registry=http://user:pw@x.example", "user info");
    bad_flag("--registry=http://", "missing host");
    bad_flag("--registry=http://x.example:0/", "port must be a number from 1 to 65535");
    bad_flag("--registry=http://x.example/a b", "space, control or non-ASCII");
    bad_flag("--registry=HTTP://x.example", "must start with http://");
    bad_flag("--verbose=maybe", "expected true or false");
    bad_flag("--api=gemini", "expected one of: openai, anthropic");
    bad_flag("--api=OpenAI", "expected one of");
    bad_flag("--escrow=0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "EIP-55");
    bad_flag("--escrow=0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea", "expected an address");
    bad_flag("--upstream=builtin:cat", "must start with http:// or https://");
    bad_flag("--name=", "empty value");
    bad_flag("--name=a\tb", "control character");
}

static void test_many_errors_at_once(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    const char *path = write_file("bad.ini",
                                  "workers = many\n"
                                  "listen = localhost\n"
                                  "[section]\n"
                                  "just a line\n"
                                  "rpc: http://x\n"
                                  "interval = 1w\n"
                                  "workers = 3\n"
                                  "log_level = loud\n",
                                  0644);
    const char *args[] = {"--config", path, "--api", "gemini", "--deposit", NULL};
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    char w[8][300];
    snprintf(w[0], 300, "%s:1: workers: expected a whole number (got \"many\")", path);
    snprintf(w[1], 300, "%s:2: listen: expected HOST:PORT (got \"localhost\")", path);
    snprintf(w[2], 300, "%s:3: sections are not used", path);
    snprintf(w[3], 300, "%s:4: expected key = value", path);
    snprintf(w[4], 300, "%s:5: expected key = value", path);
    snprintf(w[5], 300, "%s:6: interval: expected a duration", path);
    snprintf(w[6], 300, "%s:7: workers: set more than once (first on line 1)", path);
    snprintf(w[7], 300, "%s:8: log_level: expected error, warn", path);
    for (int i = 0; i < 8; i++)
        assert_error_has(&rep, w[i], NULL);
    assert_error_has(&rep, "--api: expected one of: openai, anthropic (got \"gemini\")", NULL);
    assert_error_has(&rep, "--deposit: needs a value", NULL);
    assert_error_has(&rep, "must: required; set it in the --config file or with --must", NULL);
    assert_int_equal(rep.n_errors, 11);

    /* dispatch prints every one of them and says 1, whatever the action */
    char *ob = NULL, *eb = NULL;
    size_t ol = 0, el = 0;
    FILE *out = open_memstream(&ob, &ol), *err = open_memstream(&eb, &el);
    rep.action = OS_CFG_CHECK;
    assert_int_equal(os_cfg_dispatch(&prog, &c, &rep, OS_ERR_INVALID, out, err), 1);
    fclose(out);
    fclose(err);
    assert_string_equal(ob, "");
    size_t lines = 0;
    for (const char *p = eb; *p != '\0'; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 11);
    assert_non_null(strstr(eb, w[6]));
    free(ob);
    free(eb);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
}

static void test_missing_file_and_required(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/does-not-exist.ini", tmpdir);
    const char *args[] = {"--config", path, NULL};
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    char want[300];
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    assert_error_has(&rep, want, NULL);
    assert_error_has(&rep, "must: required", NULL);
    assert_int_equal(rep.n_errors, 2);
    os_cfg_report_free(&rep);

    const char *args2[] = {"--must", "x", "--config", NULL};
    assert_int_equal(load(&c, &rep, args2), OS_ERR_INVALID);
    assert_error_has(&rep, "--config: needs a value", NULL);
    os_cfg_report_free(&rep);

    const char *args3[] = {"--must", "x", "--config", tmpdir, NULL};
    assert_int_equal(load(&c, &rep, args3), OS_ERR_INVALID);
    assert_error_has(&rep, "read error", NULL);
    os_cfg_report_free(&rep);

    const char *args4[] = {"--must", "a", "--must", "b", NULL};
    assert_int_equal(load(&c, &rep, args4), OS_ERR_INVALID);
    assert_error_has(&rep, "--must: given more than once", NULL);
    assert_int_equal(rep.n_errors, 1);
    os_cfg_report_free(&rep);
}

static void test_secrets_not_echoed(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    const char *path = write_file("secret.ini", "must = x\nrpc = ftp://leaky-key.example\n", 0644);
    const char *args[] = {"--config", path, "--token=abc\x01wxyz", NULL};
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, ":2: rpc: URL must start with http:// or https://", NULL);
    assert_error_has(&rep, "--token: value contains a control character", NULL);
    assert_no_error_has(&rep, "leaky-key");
    assert_no_error_has(&rep, "wxyz");
    assert_no_error_has(&rep, "got");
    os_cfg_report_free(&rep);

    /* help never shows a secret's default */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    os_cfg_print_help(&prog, out);
    fclose(out);
    assert_null(strstr(buf, "secret-default"));
    free(buf);
}

static void test_secret_files(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    const char *open_key = write_file("open.key", "00", 0644);
    const char *group_key = write_file("group.key", "00", 0640);
    const char *ok_key = write_file("ok.key", "00", 0600);
    const char *ro_key = write_file("ro.key", "00", 0400);
    char missing[256];
    snprintf(missing, sizeof(missing), "%s/missing.key", tmpdir);

    const char *args[] = {"--must", "x", "--key-file", open_key, NULL};
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, "--key-file: \"", "mode 0644); run chmod 600");
    os_cfg_report_free(&rep);
    args[3] = group_key;
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, "mode 0640", NULL);
    os_cfg_report_free(&rep);
    args[3] = missing;
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, "No such file or directory", NULL);
    os_cfg_report_free(&rep);
    args[3] = tmpdir;
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, "is not a regular file", NULL);
    os_cfg_report_free(&rep);
    args[3] = ok_key;
    assert_int_equal(load(&c, &rep, args), OS_OK);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
    args[3] = ro_key;
    assert_int_equal(load(&c, &rep, args), OS_OK);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
}

static void test_file_syntax_limits(void **state)
{
    tcfg c;
    os_cfg_report rep;
    char text[600];
    (void)state;
    /* a 300-character line is over libinih's 200-byte line buffer: refused, not split */
    snprintf(text, sizeof(text), "must = x\nname = %0300d\n", 0);
    const char *path = write_file("long.ini", text, 0644);
    const char *args[] = {"--config", path, NULL};
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, ":2: line longer than", NULL);
    assert_int_equal(rep.n_errors, 1);
    os_cfg_report_free(&rep);
    /* an indented line is its own key, never a continuation of the one before */
    path = write_file("indent.ini", "name = a\n    b = c\nmust = x\n", 0644);
    args[1] = path;
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, ":2: unknown key \"b\"", NULL);
    os_cfg_report_free(&rep);
    path = write_file("empty.ini", "must =\n", 0644);
    args[1] = path;
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, ":1: must: empty value", NULL);
    os_cfg_report_free(&rep);
}

static void test_actions_and_dispatch(void **state)
{
    tcfg c;
    os_cfg_report rep;
    char *ob, *eb;
    size_t ol, el;
    FILE *out, *err;
    (void)state;

    /* --help wins over anything wrong */
    const char *h[] = {"--bogus", "--help", NULL};
    assert_int_equal(load(&c, &rep, h), OS_OK);
    assert_int_equal(rep.action, OS_CFG_HELP);
    ob = NULL;
    out = open_memstream(&ob, &ol);
    assert_int_equal(os_cfg_dispatch(&prog, &c, &rep, OS_OK, out, stderr), 0);
    fclose(out);
    assert_non_null(strstr(ob, "usage: openseed-test [--config FILE]"));
    assert_non_null(strstr(ob, "A program for testing the config loader."));
    assert_non_null(strstr(ob, "--log-level LEVEL"));
    assert_non_null(strstr(ob, "--workers N"));
    assert_non_null(strstr(ob, "[default: 4]"));
    assert_non_null(strstr(ob, "--must TEXT"));
    assert_non_null(strstr(ob, "(required)"));
    assert_non_null(strstr(ob, "(repeatable)"));
    assert_non_null(strstr(ob, "--api openai|anthropic"));
    assert_non_null(strstr(ob, "--key-file FILE"));
    assert_non_null(strstr(ob, "--check-config"));
    free(ob);
    os_cfg_report_free(&rep);

    const char *v[] = {"-x", "--version", NULL};
    assert_int_equal(load(&c, &rep, v), OS_OK);
    assert_int_equal(rep.action, OS_CFG_VERSION);
    ob = NULL;
    out = open_memstream(&ob, &ol);
    assert_int_equal(os_cfg_dispatch(&prog, &c, &rep, OS_OK, out, stderr), 0);
    fclose(out);
    assert_string_equal(ob, "openseed-test 9.8.7\n");
    free(ob);
    os_cfg_report_free(&rep);

    const char *chk[] = {"--check-config", "--must", "x", NULL};
    os_err rc = load(&c, &rep, chk);
    assert_int_equal(rep.action, OS_CFG_CHECK);
    ob = eb = NULL;
    out = open_memstream(&ob, &ol);
    err = open_memstream(&eb, &el);
    assert_int_equal(os_cfg_dispatch(&prog, &c, &rep, rc, out, err), 0);
    fclose(out);
    fclose(err);
    assert_string_equal(ob, "configuration OK\n");
    assert_string_equal(eb, "");
    free(ob);
    free(eb);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);

    const char *pr[] = {"--print-config", "--must", "x", "--workers=7", NULL};
    rc = load(&c, &rep, pr);
    ob = NULL;
    out = open_memstream(&ob, &ol);
    assert_int_equal(os_cfg_dispatch(&prog, &c, &rep, rc, out, stderr), 0);
    fclose(out);
    assert_non_null(strstr(ob, "\nworkers = 7\n"));
    assert_non_null(strstr(ob, "\n# escrow is not set\n"));
    assert_non_null(strstr(ob, "\n# registry is not set\n"));
    free(ob);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);

    const char *both[] = {"--print-config", "--check-config", "--must", "x", NULL};
    assert_int_equal(load(&c, &rep, both), OS_ERR_INVALID);
    assert_error_has(&rep, "exclude each other", NULL);
    os_cfg_report_free(&rep);
    const char *val[] = {"--check-config=yes", "--must", "x", NULL};
    assert_int_equal(load(&c, &rep, val), OS_ERR_INVALID);
    assert_error_has(&rep, "--check-config takes no value", NULL);
    os_cfg_report_free(&rep);

    const char *run[] = {"--must", "x", NULL};
    rc = load(&c, &rep, run);
    assert_int_equal(os_cfg_dispatch(&prog, &c, &rep, rc, stdout, stderr), -1);
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
}

static void test_validate_and_home(void **state)
{
    tcfg c;
    os_cfg_report rep;
    (void)state;
    const char *args[] = {"--must", "x", "--name", "forbidden", NULL};
    assert_int_equal(load(&c, &rep, args), OS_ERR_INVALID);
    assert_error_has(&rep, "name: \"forbidden\" is not allowed with workers = 4", NULL);
    assert_int_equal(rep.n_errors, 1);
    os_cfg_report_free(&rep);

    char *old = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    assert_int_equal(setenv("HOME", "/home/tester", 1), 0);
    const char *h[] = {"--must", "x", "--dir", "~/state", NULL};
    assert_int_equal(load(&c, &rep, h), OS_OK);
    assert_string_equal(c.dir, "/home/tester/state");
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
    const char *h2[] = {"--must", "x", "--dir", "~user/state", NULL};
    assert_int_equal(load(&c, &rep, h2), OS_OK);
    assert_string_equal(c.dir, "~user/state"); /* only ~/ is expanded */
    os_cfg_free(&prog, &c);
    os_cfg_report_free(&rep);
    assert_int_equal(unsetenv("HOME"), 0);
    assert_int_equal(load(&c, &rep, h), OS_ERR_INVALID);
    assert_error_has(&rep, "--dir: the path starts with ~ but HOME is not set", NULL);
    os_cfg_report_free(&rep);
    if (old != NULL) {
        assert_int_equal(setenv("HOME", old, 1), 0);
        free(old);
    }
}

static void test_bad_table(void **state)
{
    static const os_cfg_entry bad[] = {
        {.name = "n", .type = OS_CFG_U64, .flags = OS_CFG_REPEATABLE, .offset = 0},
        {.name = "e", .type = OS_CFG_ENUM, .offset = 8},
        {.name = "n", .type = OS_CFG_STRING, .offset = 16},
        {.name = "config", .type = OS_CFG_STRING, .offset = 24},
        {.name = "c", .type = OS_CFG_U64, .offset = 32, .check = check_upstream},
        {.name = "s", .type = OS_CFG_STRING, .flags = OS_CFG_SECRET_PATH, .offset = 40},
    };
    static const os_cfg_program p = {.name = "bad", .entries = bad, .n_entries = 6};
    uint64_t store[8];
    os_cfg_report rep;
    char *argv[] = {(char *)"bad", NULL};
    (void)state;
    assert_int_equal(os_cfg_load(&p, store, &rep, 1, argv), OS_ERR_INVALID);
    assert_error_has(&rep, "internal: n: only text keys can repeat", NULL);
    assert_error_has(&rep, "internal: e: enum without choices", NULL);
    assert_error_has(&rep, "internal: n: duplicate entry", NULL);
    assert_error_has(&rep, "internal: config: reserved name", NULL);
    assert_error_has(&rep, "internal: c: a check applies to text keys only", NULL);
    assert_error_has(&rep, "internal: s: a secret file must be a path", NULL);
    assert_int_equal(rep.n_errors, 6);
    os_cfg_free(&p, store);
    os_cfg_report_free(&rep);
}

static void test_parsers(void **state)
{
    char err[128];
    os_cfg_listen l;
    uint64_t s;
    bool b;
    (void)state;
    static const char *const good_urls[] = {
        "http://a",
        "https://rpc.example.com/v2/abc?x=1",
        "http://127.0.0.1:8545",
        "https://[2001:db8::1]:8443/path",
        "http://x.example:65535/",
        "http://a-b.c9.example",
    };
    for (size_t i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
        if (os_cfg_check_url(good_urls[i], err, sizeof(err)) != OS_OK)
            fail_msg("%s: %s", good_urls[i], err);
    }
    static const char *const bad_urls[] = {
        "",
        "http:/x",
        "https://",
        "http://x:65536",
        "http://x:",
        "http://[::1",
        "http://[::1]x",
        "http://a..b",
        "http://a.-b",
        "http://x\x7f",
        "http://\xc3\xa9.example",
        "ws://x",
        "http://u@x",
        "http://x.example/\"",
    };
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        if (i == sizeof(bad_urls) / sizeof(bad_urls[0]) - 1)
            continue; /* '"' is printable ASCII: allowed in a path, curl escapes what it must */
        if (os_cfg_check_url(bad_urls[i], err, sizeof(err)) != OS_ERR_INVALID)
            fail_msg("accepted %s", bad_urls[i]);
    }
    assert_int_equal(os_cfg_parse_listen(&l, "[::]:0", err, sizeof(err)), OS_OK);
    assert_string_equal(l.host, "::");
    assert_int_equal(l.port, 0);
    assert_false(os_cfg_listen_is_loopback(&l));
    assert_int_equal(os_cfg_parse_listen(&l, "127.1.2.3:80", err, sizeof(err)), OS_OK);
    assert_true(os_cfg_listen_is_loopback(&l));
    assert_int_equal(os_cfg_parse_listen(&l, "[::1]:80", err, sizeof(err)), OS_OK);
    assert_true(os_cfg_listen_is_loopback(&l));
    assert_int_equal(os_cfg_parse_listen(&l, "LocalHost:80", err, sizeof(err)), OS_OK);
    assert_true(os_cfg_listen_is_loopback(&l));
    assert_int_equal(os_cfg_parse_listen(&l, "0.0.0.0:8379", err, sizeof(err)), OS_OK);
    assert_false(os_cfg_listen_is_loopback(&l));
    assert_int_equal(os_cfg_parse_listen(&l, "node.example:65536", err, sizeof(err)),
                     OS_ERR_INVALID);
    assert_int_equal(os_cfg_parse_listen(&l, "node.example:+80", err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_cfg_parse_listen(&l, "1.2.3:80", err, sizeof(err)), OS_ERR_INVALID);
    char text[OS_CFG_LISTEN_STR_LEN];
    assert_int_equal(os_cfg_parse_listen(&l, "[2001:db8::1]:8443", err, sizeof(err)), OS_OK);
    os_cfg_listen_format(text, &l);
    assert_string_equal(text, "[2001:db8::1]:8443");
    assert_int_equal(os_cfg_parse_listen(&l, "node.example:65535", err, sizeof(err)), OS_OK);
    os_cfg_listen_format(text, &l);
    assert_string_equal(text, "node.example:65535");

    /* The URL a local client dials: wildcards become loopback; a bound port replaces port 0. */
    char url[64];
    static const char *const urls[][3] = {
        {"0.0.0.0:0", "8379", "http://127.0.0.1:8379"},
        {"0.0.0.0:8378", "0", "http://127.0.0.1:8378"},
        {"[::]:0", "443", "http://[::1]:443"},
        {"[2001:db8::1]:8443", "0", "http://[2001:db8::1]:8443"},
        {"node.example:80", "81", "http://node.example:81"},
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        assert_int_equal(os_cfg_parse_listen(&l, urls[i][0], err, sizeof(err)), OS_OK);
        assert_int_equal(
            os_cfg_listen_url(url, sizeof(url), &l, (uint16_t)strtoul(urls[i][1], NULL, 10)),
            OS_OK);
        assert_string_equal(url, urls[i][2]);
    }
    assert_int_equal(os_cfg_listen_url(url, 12, &l, 81), OS_ERR_TOOBIG);
    assert_string_equal(url, "");
    assert_int_equal(os_cfg_listen_url(url, sizeof(url), NULL, 81), OS_ERR_INVALID);

    /* What can be bound: IP literals and localhost, never a name to look up. */
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(os_cfg_parse_listen(&l, "localhost:80", err, sizeof(err)), OS_OK);
    assert_int_equal(os_cfg_listen_sockaddr(&ss, &sl, &l, err, sizeof(err)), OS_OK);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 80);
    assert_int_equal(os_cfg_parse_listen(&l, "[::1]:8443", err, sizeof(err)), OS_OK);
    assert_int_equal(os_cfg_listen_sockaddr(&ss, &sl, &l, err, sizeof(err)), OS_OK);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(sl, sizeof(struct sockaddr_in6));
    assert_int_equal(os_cfg_parse_listen(&l, "node.example:80", err, sizeof(err)), OS_OK);
    assert_int_equal(os_cfg_listen_sockaddr(&ss, &sl, &l, err, sizeof(err)), OS_ERR_INVALID);
    assert_non_null(strstr(err, "not a name to look up"));

    static const struct {
        const char *s;
        uint64_t secs;
    } durs[] = {{"0", 0}, {"90", 90}, {"90s", 90}, {"15m", 900}, {"2h", 7200}, {"1d", 86400}};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        assert_int_equal(os_cfg_parse_duration(&s, durs[i].s), OS_OK);
        assert_int_equal(s, durs[i].secs);
    }
    static const char *const bad_durs[] = {"", "s", "1.5h", "-1", "1w", "1 h", "1hm", "1H"};
    for (size_t i = 0; i < sizeof(bad_durs) / sizeof(bad_durs[0]); i++)
        assert_int_equal(os_cfg_parse_duration(&s, bad_durs[i]), OS_ERR_INVALID);
    assert_int_equal(os_cfg_parse_duration(&s, "213503982334602d"), OS_ERR_RANGE);

    assert_int_equal(os_cfg_parse_bool(&b, "YES"), OS_OK);
    assert_true(b);
    assert_int_equal(os_cfg_parse_bool(&b, "0"), OS_OK);
    assert_false(b);
    assert_int_equal(os_cfg_parse_bool(&b, "2"), OS_ERR_INVALID);
    assert_int_equal(os_cfg_parse_bool(&b, ""), OS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_flags_override),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_many_errors_at_once),
        cmocka_unit_test(test_missing_file_and_required),
        cmocka_unit_test(test_secrets_not_echoed),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_file_syntax_limits),
        cmocka_unit_test(test_actions_and_dispatch),
        cmocka_unit_test(test_validate_and_home),
        cmocka_unit_test(test_bad_table),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
