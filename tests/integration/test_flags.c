/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs the real binaries from OPENSEED_BUILD_DIR (openseed-registry, -seller, -buyer and openseed)
 * with posix_spawn, capturing stdout and stderr through pipes, in a fresh mkdtemp directory that is
 * removed afterwards. Covers each daemon's --help (every key of PROTOCOL.md §1 listed), --version,
 * --check-config on a good file and on a bad one (every error, with file:line), a flag overriding a
 * file value (seen through --print-config, which also hides the rpc URL), unknown flags, the honest
 * "not built yet" exit, secret-file modes, and the CLI's keygen (0600 file, address checked against
 * libcommon and a published vector, no overwrite) and address (refuses group/other-readable files).
 */
#define _GNU_SOURCE 1 /* nftw's FTW_DEPTH / FTW_PHYS */
#include "testutil.h"

#include "run_prog.h"

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

#include "openseed/ct.h"
#include "openseed/secp.h"

static char tmp[256];

/* web3.js documentation's privateKeyToAccount example, re-derived with ethers 6.17:
 *   node -e 'console.log(new (require("ethers").Wallet)("0x4c08…2318").address)' */
static const char vector_key[] =
    "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
static const char vector_addr[] = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";


static void show(const char *what, const result *r)
{
    print_message("--- %s: status %d\n--- stdout:\n%s--- stderr:\n%s", what, r->status, r->out,
                  r->err);
}

#define assert_has(hay, needle)                                                                    \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("missing \"%s\" in:\n%s", (needle), (hay));                                   \
    } while (0)

#define assert_lacks(hay, needle)                                                                  \
    do {                                                                                           \
        if (strstr((hay), (needle)) != NULL)                                                       \
            fail_msg("unexpected \"%s\" in:\n%s", (needle), (hay));                                \
    } while (0)

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* Writes tmp/name with mode and returns its path (static slot). */
static const char *put_file(const char *name, const char *text, mode_t mode)
{
    static char paths[16][512];
    static int slot;
    char *p = paths[slot++ % 16];
    snprintf(p, 512, "%s/%s", tmp, name);
    unlink(p);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return p;
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
    snprintf(tmp, sizeof(tmp), "/tmp/openseed-flags-XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return -1;
    /* the buyer's data_dir default is ~/.openseed: make ~ ours */
    if (setenv("HOME", tmp, 1) != 0)
        return -1;
    return tu_init(state);
}

static int teardown(void **state)
{
    (void)state;
    if (tmp[0] == '\0')
        return 0;
    return nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char escrow[] = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/* A complete, valid configuration file for each daemon. */
static const char *good_config(const char *daemon)
{
    char text[2048];
    char name[64];
    const char *key =
        put_file(strcmp(daemon, "seller") == 0 ? "node.key" : "wallet.key",
                 "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n", 0600);
    if (strcmp(daemon, "registry") == 0) {
        snprintf(text, sizeof(text),
                 "# registry\nlisten = 127.0.0.1:9000\ndata_dir = %s/reg\nlog_level = debug\n"
                 "chain_id = 31337\nheartbeat_interval = 1m\n",
                 tmp);
    } else if (strcmp(daemon, "seller") == 0) {
        snprintf(text, sizeof(text),
                 "listen = 127.0.0.1:9000\n"
                 "registry = http://127.0.0.1:8379\n"
                 "registry = https://registry2.example\n"
                 "rpc = http://127.0.0.1:1/v2/SECRETAPIKEY\n"
                 "escrow = %s\n"
                 "endpoint = https://seller.example:8378\n"
                 "upstream = builtin:echo\n"
                 "upstream_api = anthropic\n"
                 "echo_tokens_per_s = 50\n"
                 "echo_fail = drop-mid-stream\n"
                 "data_dir = %s/sel\n"
                 "node_key = %s\n",
                 escrow, tmp, key);
    } else {
        snprintf(text, sizeof(text),
                 "listen = 127.0.0.1:9000\n"
                 "registry = http://127.0.0.1:8379\n"
                 "rpc = http://127.0.0.1:1/SECRETAPIKEY\n"
                 "escrow = %s\n"
                 "wallet_key = %s\n"
                 "data_dir = %s/buy\n"
                 "deposit = 1.25\n",
                 escrow, key, tmp);
    }
    snprintf(name, sizeof(name), "%s.ini", daemon);
    return put_file(name, text, 0644);
}

static const char *const daemons[] = {"registry", "seller", "buyer"};

static void test_help(void **state)
{
    static const char *const common[] = {"--listen HOST:PORT",
                                         "--data-dir DIR",
                                         "--log-level",
                                         "--registry URL",
                                         "--rpc URL",
                                         "--chain-id N",
                                         "--escrow 0xADDRESS",
                                         "--usdc 0xADDRESS",
                                         "--config FILE",
                                         "--check-config",
                                         "--print-config",
                                         "--version",
                                         "--help"};
    static const char *const seller[] = {"--endpoint URL",
                                         "--upstream URL|builtin:echo",
                                         "--upstream-api openai|anthropic",
                                         "--upstream-key-file FILE",
                                         "--admin-listen HOST:PORT",
                                         "--admin-token-file FILE",
                                         "--node-key FILE",
                                         "[default: 0.0.0.0:8378]",
                                         "[default: 127.0.0.1:8380]"};
    static const char *const buyer[] = {"--wallet-key FILE",          "--deposit USDC",
                                        "--max-input-price USDC",     "--max-output-price USDC",
                                        "--api-key-file FILE",        "[default: 127.0.0.1:8377]",
                                        "--wallet-password-file FILE"};
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        char prog[64], usage[128];
        snprintf(prog, sizeof(prog), "openseed-%s", daemons[d]);
        const char *args[] = {"--help", NULL};
        result r = run(prog, args);
        if (r.status != 0)
            show(prog, &r);
        assert_int_equal(r.status, 0);
        assert_string_equal(r.err, "");
        snprintf(usage, sizeof(usage), "usage: %s [--config FILE]", prog);
        assert_has(r.out, usage);
        for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
            assert_has(r.out, common[i]);
        assert_has(r.out, "[default: 8453]");
        if (d == 0) {
            assert_has(r.out, "[default: 0.0.0.0:8379]");
            assert_has(r.out, "--heartbeat-interval DURATION");
        }
        for (size_t i = 0; d == 1 && i < sizeof(seller) / sizeof(seller[0]); i++)
            assert_has(r.out, seller[i]);
        for (size_t i = 0; d == 2 && i < sizeof(buyer) / sizeof(buyer[0]); i++)
            assert_has(r.out, buyer[i]);
        result_free(&r);

        /* -h is the same, and wins over a bad flag */
        const char *args2[] = {"--bogus", "-h", NULL};
        r = run(prog, args2);
        assert_int_equal(r.status, 0);
        assert_has(r.out, usage);
        result_free(&r);
    }
}

static void test_version(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        char prog[64], want[96];
        snprintf(prog, sizeof(prog), "openseed-%s", daemons[d]);
        snprintf(want, sizeof(want), "%s %s\n", prog, OPENSEED_VERSION);
        const char *args[] = {"--version", NULL};
        result r = run(prog, args);
        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, want);
        assert_string_equal(r.err, "");
        result_free(&r);
    }
    assert_string_equal(OPENSEED_VERSION, "0.1.0");
}

static void test_check_good(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        char prog[64];
        snprintf(prog, sizeof(prog), "openseed-%s", daemons[d]);
        const char *args[] = {"--config", good_config(daemons[d]), "--check-config", NULL};
        result r = run(prog, args);
        if (r.status != 0)
            show(prog, &r);
        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, "configuration OK\n");
        assert_string_equal(r.err, "");
        result_free(&r);
    }
}

static void test_check_bad(void **state)
{
    (void)state;
    const char *bad = put_file("bad.ini",
                               "listen = 0.0.0.0\n"
                               "chain_id = eight\n"
                               "; a comment\n"
                               "bogus_key = 1\n"
                               "log_level = chatty\n"
                               "registry = ftp://registry.example\n"
                               "escrow = 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\n"
                               "[section]\n",
                               0644);
    static const char *const want[] = {
        ":1: listen: expected HOST:PORT",
        ":2: chain_id: expected a whole number",
        ":4: unknown key \"bogus_key\"",
        ":5: log_level: expected error, warn, info or debug",
        ":6: registry: URL must start with http:// or https://",
        ":7: escrow: expected an address",
        ":8: sections are not used",
    };
    for (size_t d = 0; d < 3; d++) {
        char prog[64], line[600];
        snprintf(prog, sizeof(prog), "openseed-%s", daemons[d]);
        const char *args[] = {"--check-config", "--config", bad, "--chain-id=9x", NULL};
        result r = run(prog, args);
        assert_int_equal(r.status, 1);
        assert_string_equal(r.out, "");
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
            snprintf(line, sizeof(line), "%s%s", bad, want[i]);
            assert_has(r.err, line);
        }
        assert_has(r.err, "--chain-id: expected a whole number (got \"9x\")");
        /* the seller and buyer also miss their required keys: every error is listed, one a line */
        size_t lines = count_lines(r.err);
        if (d == 0)
            assert_int_equal(lines, 8);
        if (d == 1) {
            assert_has(r.err, "endpoint: required");
            assert_has(r.err, "upstream: required");
            assert_has(r.err, "rpc: required");
            assert_int_equal(lines, 11); /* registry and escrow were given, though badly */
        }
        if (d == 2) {
            assert_has(r.err, "wallet_key: required");
            assert_int_equal(lines, 10);
        }
        result_free(&r);
    }

    /* a file that does not exist */
    char missing[512];
    snprintf(missing, sizeof(missing), "%s/nope.ini", tmp);
    const char *args[] = {"--config", missing, "--check-config", NULL};
    result r = run("openseed-registry", args);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "nope.ini: cannot open: No such file or directory");
    result_free(&r);
}

static void test_flag_overrides_file(void **state)
{
    (void)state;
    const char *reg = good_config("registry");
    const char *args[] = {"--config",       reg, "--listen", "127.0.0.1:9001", "--chain-id=8453",
                          "--print-config", NULL};
    result r = run("openseed-registry", args);
    if (r.status != 0)
        show("registry", &r);
    assert_int_equal(r.status, 0);
    assert_has(r.out, "\nlisten = 127.0.0.1:9001\n");
    assert_lacks(r.out, "9000");
    assert_has(r.out, "\nchain_id = 8453\n");
    assert_has(r.out, "\nheartbeat_interval = 60s\n"); /* from the file */
    assert_has(r.out, "\nlog_level = debug\n");
    result_free(&r);

    /* the seller's rpc URL may carry an API key: never printed */
    const char *sel = good_config("seller");
    const char *args2[] = {"--config", sel, "--upstream-api", "openai", "--print-config", NULL};
    r = run("openseed-seller", args2);
    if (r.status != 0)
        show("seller", &r);
    assert_int_equal(r.status, 0);
    assert_has(r.out, "\nrpc = (hidden)\n");
    assert_lacks(r.out, "SECRETAPIKEY");
    assert_has(r.out, "\nupstream_api = openai\n");
    assert_has(r.out, "\nregistry = http://127.0.0.1:8379\nregistry = https://registry2.example\n");
    assert_has(r.out, "\nadmin_listen = 127.0.0.1:8380\n");
    result_free(&r);

    /* flags replace the file's list of registries; ~ is the caller's HOME */
    const char *buy = good_config("buyer");
    const char *args3[] = {"--print-config",
                           "--config",
                           buy,
                           "--registry",
                           "https://a.example",
                           "--registry=https://b.example",
                           "--data-dir",
                           "~/.openseed",
                           NULL};
    r = run("openseed-buyer", args3);
    if (r.status != 0)
        show("buyer", &r);
    assert_int_equal(r.status, 0);
    assert_has(r.out, "\nregistry = https://a.example\nregistry = https://b.example\n");
    assert_lacks(r.out, "8379");
    assert_has(r.out, "\ndeposit = 1.25\n");
    assert_has(r.out, "\nmax_input_price = 10\n");
    char want[600];
    snprintf(want, sizeof(want), "\ndata_dir = %s/.openseed\n", tmp);
    assert_has(r.out, want);
    result_free(&r);
}

static void test_unknown_flag(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++) {
        char prog[64];
        snprintf(prog, sizeof(prog), "openseed-%s", daemons[d]);
        const char *args[] = {"--check-config", "--frobnicate", "1", NULL};
        result r = run(prog, args);
        assert_int_equal(r.status, 1);
        assert_string_equal(r.out, "");
        assert_has(r.err, "--frobnicate: unknown option (see --help)");
        assert_has(r.err, "unexpected argument \"1\"");
        result_free(&r);
    }
}

static void test_run_is_honest(void **state)
{
    (void)state;
    /* The registry, the seller and the buyer serve (their runs are tested in test_registry,
     * test_seller_crash and test_gateway); with no chain to reach, the buyer says so and exits 1
     * without the RPC URL's key. */
    {
        const char *args[] = {"--config", good_config("buyer"), NULL};
        result r = run("openseed-buyer", args);
        assert_int_equal(r.status, 1);
        assert_string_equal(r.out, "");
        assert_has(r.err, "level=info component=buyer msg=\"configuration loaded\"");
        assert_has(r.err, "listen=127.0.0.1:9000");
        assert_has(r.err, "msg=\"cannot reach the chain");
        assert_lacks(r.err, "SECRETAPIKEY");
        result_free(&r);
    }
    /* A seller whose chain cannot be reached says so and exits 1, without the RPC URL's key. */
    {
        const char *args[] = {"--config", good_config("seller"), NULL};
        result r = run("openseed-seller", args);
        assert_int_equal(r.status, 1);
        assert_string_equal(r.out, "");
        assert_has(r.err, "level=info component=seller msg=\"configuration loaded\"");
        assert_has(r.err, "msg=\"cannot reach the chain");
        assert_lacks(r.err, "SECRETAPIKEY");
        result_free(&r);
    }
}

static void test_secret_files_and_exposure(void **state)
{
    (void)state;
    const char *sel = good_config("seller");
    const char *open_key = put_file("open.key", vector_key, 0644);
    const char *args[] = {"--config", sel, "--node-key", open_key, "--check-config", NULL};
    result r = run("openseed-seller", args);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "--node-key: ");
    assert_has(r.err, "accessible by group or others (mode 0644)");
    result_free(&r);

    /* the admin API off loopback needs a token; the buyer's gateway needs an API key */
    const char *args2[] = {"--config",       sel, "--admin-listen", "0.0.0.0:8380",
                           "--check-config", NULL};
    r = run("openseed-seller", args2);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "admin_listen: 0.0.0.0 is not a loopback address, so admin_token_file is "
                      "required");
    result_free(&r);
    const char *buy = good_config("buyer");
    const char *args3[] = {"--config", buy, "--listen", "[::]:8377", "--check-config", NULL};
    r = run("openseed-buyer", args3);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "listen: :: is not a loopback address, so api_key_file is required");
    result_free(&r);
    const char *tok = put_file("api.key", "k", 0600);
    const char *args4[] = {"--config",       buy, "--listen",       "[::]:8377",
                           "--api-key-file", tok, "--check-config", NULL};
    r = run("openseed-buyer", args4);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "configuration OK\n");
    result_free(&r);
}

/* The buyer's wallet as a v3 keystore: vector_key encrypted by ethers 6.17 with scrypt n = 1024
 * (tests/unit/test_keyfile.c's ethers_ks, where the command that made it is given). */
static void test_wallet_keystore(void **state)
{
    static const char ks_text[] =
        "{\"address\":\"2c7536e3605d9c16a7a3d7b1898e529396a65c23\","
        "\"id\":\"62c80498-8516-4e72-984d-95b4f286fc15\",\"version\":3,\"Crypto\":{"
        "\"cipher\":\"aes-128-ctr\",\"cipherparams\":{\"iv\":\"3908cd1d339b631d8a162d28da1713ca\"},"
        "\"ciphertext\":\"4afcbd7d05590df42c9f9c6e4f3b769feed062f6125e28ca0c7c05ad6457292b\","
        "\"kdf\":\"scrypt\",\"kdfparams\":{\"salt\":"
        "\"5d04f71fcdc13b1b68ba1eb3f652b4aeb07b76dbc9fc1b4f8b410505a7cc1560\",\"n\":1024,"
        "\"dklen\":32,\"p\":1,\"r\":8},\"mac\":"
        "\"19518ac60d5b55c9671963a16b3efaab0e8520a888d19299b726ae002b3d3940\"}}\n";
    (void)state;
    const char *buy = good_config("buyer");
    const char *ks = put_file("wallet.json", ks_text, 0600);
    const char *pw = put_file("wallet.pass", "openseed-ethers-6\n", 0600);
    const char *bad_pw = put_file("wrong.pass", "hunter2-wrong\n", 0600);
    const char *open_pw = put_file("open.pass", "openseed-ethers-6\n", 0644);
    result r;

    /* --check-config takes the key and judges the password file's mode */
    const char *a1[] = {"--config", buy, "--wallet-key", ks, "--wallet-password-file", pw,
                        "--check-config", NULL};
    r = run("openseed-buyer", a1);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "configuration OK\n");
    result_free(&r);
    const char *a2[] = {"--config", buy, "--wallet-key", ks, "--wallet-password-file", open_pw,
                        "--check-config", NULL};
    r = run("openseed-buyer", a2);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "--wallet-password-file: ");
    assert_has(r.err, "accessible by group or others (mode 0644)");
    result_free(&r);

    /* with the password the wallet opens and the buyer gets as far as the (absent) chain */
    const char *a3[] = {"--config", buy, "--wallet-key", ks, "--wallet-password-file", pw, NULL};
    r = run("openseed-buyer", a3);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "msg=\"cannot reach the chain");
    assert_lacks(r.err, "wallet_key:");
    assert_lacks(r.err, "openseed-ethers-6");
    result_free(&r);
    /* without it, or with the wrong one, it says why and stops there */
    const char *a4[] = {"--config", buy, "--wallet-key", ks, NULL};
    r = run("openseed-buyer", a4);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "is a keystore: give its password with wallet_password_file");
    assert_lacks(r.err, "cannot reach the chain");
    result_free(&r);
    const char *a5[] = {"--config", buy, "--wallet-key", ks, "--wallet-password-file", bad_pw,
                        NULL};
    r = run("openseed-buyer", a5);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "wrong password or corrupted keystore");
    assert_lacks(r.err, "hunter2");
    assert_lacks(r.err, "cannot reach the chain");
    result_free(&r);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 256);
    assert_non_null(f);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 255, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_cli_keygen(void **state)
{
    (void)state;
    char out[600];
    struct stat sb;
    snprintf(out, sizeof(out), "%s/fresh.key", tmp);
    const char *args[] = {"keygen", "--out", out, NULL};
    result r = run("openseed", args);
    if (r.status != 0)
        show("keygen", &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(strlen(r.out), 43);
    assert_true(strncmp(r.out, "0x", 2) == 0 && r.out[42] == '\n');
    assert_int_equal(stat(out, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0600);

    /* the file holds 0x + 64 hex + newline, and the printed address is that key's */
    char *text = read_text(out);
    assert_int_equal(strlen(text), 67);
    assert_int_equal(text[66], '\n');
    text[66] = '\0';
    uint8_t priv[32], addr[20];
    char shown[OS_ADDRESS_STR_LEN];
    assert_int_equal(os_hex_decode_exact(priv, 32, text), OS_OK);
    assert_int_equal(os_secp_address(addr, priv), OS_OK);
    os_eip55_format(shown, addr);
    assert_memory_equal(r.out, shown, 42);

    /* `address` agrees */
    const char *args2[] = {"address", "--key", out, NULL};
    result a = run("openseed", args2);
    assert_int_equal(a.status, 0);
    assert_string_equal(a.out, r.out);
    result_free(&a);

    /* never overwrites: the file keeps its key */
    result again = run("openseed", args);
    assert_int_equal(again.status, 1);
    assert_string_equal(again.out, "");
    assert_has(again.err, "already exists; refusing to overwrite it");
    char *text2 = read_text(out);
    text2[66] = '\0';
    assert_string_equal(text2, text);
    result_free(&again);

    /* nor writes through a planted symlink */
    char link[600];
    snprintf(link, sizeof(link), "%s/link.key", tmp);
    assert_int_equal(symlink("/nonexistent-target-for-openseed-test", link), 0);
    const char *args3[] = {"keygen", "--out", link, NULL};
    again = run("openseed", args3);
    assert_int_equal(again.status, 1);
    assert_has(again.err, "refusing to overwrite");
    result_free(&again);

    const char *args4[] = {"keygen", NULL};
    again = run("openseed", args4);
    assert_int_equal(again.status, 1);
    assert_has(again.err, "--out: required");
    result_free(&again);

    os_wipe(priv, sizeof(priv));
    free(text);
    free(text2);
    result_free(&r);
}

static void test_cli_address(void **state)
{
    (void)state;
    char line[128];
    const char *k = put_file(
        "vector.key", "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n", 0600);
    const char *args[] = {"address", "--key", k, NULL};
    result r = run("openseed", args);
    assert_int_equal(r.status, 0);
    snprintf(line, sizeof(line), "%s\n", vector_addr);
    assert_string_equal(r.out, line);
    result_free(&r);

    /* 0400 is fine; 0644 and 0640 are refused */
    assert_int_equal(chmod(k, 0400), 0);
    r = run("openseed", args);
    assert_int_equal(r.status, 0);
    result_free(&r);
    static const mode_t bad_modes[] = {0644, 0640, 0604, 0660};
    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        assert_int_equal(chmod(k, bad_modes[i]), 0);
        r = run("openseed", args);
        assert_int_not_equal(r.status, 0);
        assert_string_equal(r.out, "");
        char m[32];
        snprintf(m, sizeof(m), "(mode %04o)", (unsigned)bad_modes[i]);
        assert_has(r.err, m);
        result_free(&r);
    }

    /* not a key */
    const char *junk = put_file("junk.key", "0x1234\n", 0600);
    const char *args2[] = {"address", "--key", junk, NULL};
    r = run("openseed", args2);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "does not hold a secp256k1 private key");
    result_free(&r);
    const char *zero = put_file(
        "zero.key", "0x0000000000000000000000000000000000000000000000000000000000000000\n", 0600);
    args2[2] = zero;
    r = run("openseed", args2);
    assert_int_equal(r.status, 1);
    result_free(&r);
}

static void test_cli_misc(void **state)
{
    (void)state;
    const char *v[] = {"--version", NULL};
    result r = run("openseed", v);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "openseed " OPENSEED_VERSION "\n");
    result_free(&r);
    const char *h[] = {"--help", NULL};
    r = run("openseed", h);
    assert_int_equal(r.status, 0);
    assert_has(r.out, "usage: openseed COMMAND");
    assert_has(r.out, "keygen --out FILE");
    assert_has(r.out, "address --key FILE");
    result_free(&r);
    const char *kh[] = {"keygen", "--help", NULL};
    r = run("openseed", kh);
    assert_int_equal(r.status, 0);
    assert_has(r.out, "usage: openseed keygen --out FILE");
    result_free(&r);
    const char *u[] = {"frobnicate", NULL};
    r = run("openseed", u);
    assert_int_equal(r.status, 2);
    assert_has(r.err, "openseed: unknown command \"frobnicate\"");
    result_free(&r);
    const char *none[] = {NULL};
    r = run("openseed", none);
    assert_int_equal(r.status, 2);
    assert_has(r.err, "usage: openseed COMMAND");
    result_free(&r);
    const char *bad[] = {"address", "--key", "x", "--extra", NULL};
    r = run("openseed", bad);
    assert_int_equal(r.status, 1);
    assert_has(r.err, "--extra: unknown option");
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_check_good),
        cmocka_unit_test(test_check_bad),
        cmocka_unit_test(test_flag_overrides_file),
        cmocka_unit_test(test_unknown_flag),
        cmocka_unit_test(test_run_is_honest),
        cmocka_unit_test(test_secret_files_and_exposure),
        cmocka_unit_test(test_wallet_keystore),
        cmocka_unit_test(test_cli_keygen),
        cmocka_unit_test(test_cli_address),
        cmocka_unit_test(test_cli_misc),
    };
    return cmocka_run_group_tests_name("flags", tests, setup, teardown);
}
