/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SDK's two example programs (examples/embedded_seller.c, examples/list_peers.c), run as the
 * real binaries of the build against a network this test embeds through the same SDK: an
 * os_devchain (anvil with the committed escrow and TestUSDC) and an os_registry_node in this
 * process. embedded_seller is started with the chain's addresses and a price; list_peers must
 * show it, verified, with exactly that price (its --json parsed back, its table read); an
 * in-process os_buyer_node with a funded wallet then pays the example seller for one chat
 * request, so the embedded seller is shown to really serve and charge; SIGTERM stops it with
 * exit 0 and a stats line holding that charge. Asked for another escrow or chain, list_peers
 * lists nobody and counts the record it refused. --seconds stops the seller on its own. The
 * failures an operator meets first are checked too: a bad price or service (exit 1 with the
 * builder's own message), a missing or malformed flag (exit 2), no registry answering (exit 1
 * with a message).
 */
#define _GNU_SOURCE 1 /* nftw's FTW_DEPTH / FTW_PHYS */
#include "testutil.h"

#include "run_prog.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "openseed/buyer_node.h"
#include "openseed/devchain.h"
#include "openseed/hex.h"
#include "openseed/http_client.h"
#include "openseed/init.h"
#include "openseed/log.h"
#include "openseed/money.h"
#include "openseed/offering.h"
#include "openseed/registry_node.h"
#include "openseed/secp.h"

/* What the example seller sells: prices in USDC per million tokens as given on its command line,
 * and the same in micro-USDC as the record must carry them (cached defaults to input). */
#define SERVICE "sdk-echo"
#define IN_USDC "0.25"
#define OUT_USDC "0.75"
#define IN_MICRO "250000"
#define OUT_MICRO "750000"

static struct {
    char dir[128];
    os_logger lg;
    os_devchain *chain;
    os_registry_node *reg;
    char reg_url[128];
    char rpc[128];
    char chain_id[24];
    char escrow[OS_ADDRESS_STR_LEN], usdc[OS_ADDRESS_STR_LEN];
    pid_t seller; /* a running example seller; seller_kill ends it if a test failed first */
} fx;

/* ---- files and processes ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The whole file as a string ("" when it cannot be read); the caller frees it. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *s = NULL;
    size_t len = 0;

    if (f != NULL) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            char *g = realloc(s, len + n + 1);
            assert_non_null(g);
            s = g;
            memcpy(s + len, chunk, n);
            len += n;
        }
        fclose(f);
    }
    if (s == NULL)
        s = calloc(1, 1);
    assert_non_null(s);
    s[len] = '\0';
    return s;
}

/* Starts BUILD_DIR/examples/embedded_seller with args (NULL-terminated), stdout and stderr into
 * the two files, in the background; its pid goes to fx.seller. */
static void seller_spawn(const char *const *args, const char *out_path, const char *err_path)
{
    char path[1200];
    char *argv[48];
    int argc = 0, rc;
    posix_spawn_file_actions_t fa;

    snprintf(path, sizeof(path), "%s/examples/embedded_seller", build_dir);
    argv[argc++] = path;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(argc < 47);
        argv[argc++] = (char *)args[i];
    }
    argv[argc] = NULL;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    /* the registry's and the chain's sockets must not live on in the child */
    assert_int_equal(posix_spawn_file_actions_addclosefrom_np(&fa, 3), 0);
    rc = posix_spawn(&fx.seller, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot run %s: %s", path, strerror(rc));
}

/* Waits up to timeout_ms for fx.seller to exit; its exit status, -1 when a signal killed it.
 * Kills it and fails the test when it does not exit in time. */
static int seller_wait(long timeout_ms)
{
    int st;
    for (int64_t end = now_ms() + timeout_ms; now_ms() < end; sleep_ms(20)) {
        pid_t p = waitpid(fx.seller, &st, WNOHANG);
        if (p == fx.seller) {
            fx.seller = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        assert_int_equal(p, 0);
    }
    kill(fx.seller, SIGKILL);
    waitpid(fx.seller, NULL, 0);
    fx.seller = 0;
    fail_msg("embedded_seller did not exit within %ld ms", timeout_ms);
    return -1;
}

/*
 * Waits for embedded_seller's "serving on http://127.0.0.1:PORT as 0xNODE" line in out_path
 * (60 s: the sanitizer build is slow to start); *port and node (0x + 40 hex) from it.
 */
static void seller_wait_serving(const char *out_path, const char *err_path, unsigned *port,
                                char node[OS_ADDRESS_STR_LEN])
{
    static const char tag[] = "serving on http://127.0.0.1:";

    for (int64_t end = now_ms() + 60000; now_ms() < end; sleep_ms(50)) {
        char *out = slurp(out_path), *p = strstr(out, tag), *e;
        if (p != NULL && strchr(p, '\n') != NULL) {
            unsigned long v = strtoul(p + sizeof(tag) - 1, &e, 10);
            assert_true(v > 0 && v < 65536);
            assert_memory_equal(e, " as 0x", 6);
            memcpy(node, e + 4, OS_ADDRESS_STR_LEN - 1);
            node[OS_ADDRESS_STR_LEN - 1] = '\0';
            assert_int_equal(e[4 + OS_ADDRESS_STR_LEN - 1], '\n');
            uint8_t raw[20];
            assert_int_equal(os_eip55_parse(raw, node), OS_OK); /* checksummed, or all one case */
            *port = (unsigned)v;
            free(out);
            return;
        }
        free(out);
        if (waitpid(fx.seller, NULL, WNOHANG) == fx.seller) {
            char *err = slurp(err_path);
            fx.seller = 0;
            fail_msg("embedded_seller exited before serving:\n%s", err);
        }
    }
    fail_msg("embedded_seller did not say it serves within 60 s (see %s)", err_path);
}

/* ---- fixture: a chain and a registry, embedded ---- */

static int setup(void **state)
{
    const char *bd = getenv("OPENSEED_BUILD_DIR");
    os_devchain_config dc = {0};
    os_registry_node_config rc;
    uint8_t escrow[20], usdc[20];
    char data[192];

    (void)state;
    if (bd == NULL || os_init() != OS_OK)
        return -1;
    snprintf(build_dir, sizeof(build_dir), "%s", bd);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/openseed-sdk-examples-XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    /* warnings and errors only: this test's output is the examples' */
    os_logger_init(&fx.lg, "test", OS_LOG_WARN);
    dc.log = &fx.lg;
    if (os_devchain_start(&fx.chain, &dc) != OS_OK)
        return -1;
    os_devchain_escrow(fx.chain, escrow);
    os_devchain_usdc(fx.chain, usdc);
    os_eip55_format(fx.escrow, escrow);
    os_eip55_format(fx.usdc, usdc);
    snprintf(fx.rpc, sizeof(fx.rpc), "%s", os_devchain_rpc(fx.chain));
    snprintf(fx.chain_id, sizeof(fx.chain_id), "%" PRIu64, os_devchain_chain_id(fx.chain));

    snprintf(data, sizeof(data), "%s/registry", fx.dir);
    os_registry_node_config_init(&rc);
    rc.data_dir = data;
    rc.chain_id = os_devchain_chain_id(fx.chain);
    rc.escrow = escrow;
    rc.log = &fx.lg;
    if (os_registry_node_new(&fx.reg, &rc) != OS_OK || os_registry_node_start(fx.reg) != OS_OK ||
        os_registry_node_url(fx.reg, fx.reg_url, sizeof(fx.reg_url)) != OS_OK)
        return -1;
    return 0;
}

/* After each test: a seller a failed assertion left running is killed, so no later test (and no
 * later run) meets it. */
static int seller_kill(void **state)
{
    (void)state;
    if (fx.seller > 0) {
        kill(fx.seller, SIGKILL);
        waitpid(fx.seller, NULL, 0);
        fx.seller = 0;
    }
    return 0;
}

static int teardown(void **state)
{
    seller_kill(state);
    os_registry_node_free(fx.reg);
    os_devchain_free(fx.chain);
    if (fx.dir[0] != '\0')
        nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- list_peers --json, read back ---- */

/* The peer with this node in list_peers' --json document, or NULL. Borrowed from doc. */
static json_t *json_peer(json_t *doc, const char *node)
{
    size_t i;
    json_t *p;

    json_array_foreach(json_object_get(doc, "peers"), i, p)
    {
        const char *n = json_string_value(json_object_get(p, "node"));
        if (n != NULL && strcmp(n, node) == 0)
            return p;
    }
    return NULL;
}

/*
 * Runs list_peers --json for SERVICE until it lists the seller `node` (30 s at most) and checks
 * the row: the endpoint it serves on, one offering with exactly the prices it was given, and the
 * registry it came from, which must be up.
 */
static void expect_listed(const char *node, unsigned port)
{
    const char *args[] = {"--registry", fx.reg_url,  "--chain-id", fx.chain_id, "--escrow",
                          fx.escrow,    "--service", SERVICE,      "--json",    NULL};
    char endpoint[64];
    json_t *doc = NULL, *peer = NULL;

    for (int64_t end = now_ms() + 30000; peer == NULL; sleep_ms(300)) {
        if (now_ms() > end)
            fail_msg("list_peers did not list %s within 30 s", node);
        result r = run("examples/list_peers", args);
        if (r.status != 0)
            fail_msg("list_peers exit %d: %s", r.status, r.err);
        json_error_t je;
        json_decref(doc);
        doc = json_loads(r.out, 0, &je);
        if (doc == NULL)
            fail_msg("list_peers --json is not JSON (%s):\n%s", je.text, r.out);
        result_free(&r);
        peer = json_peer(doc, node);
    }

    json_t *regs = json_object_get(doc, "registries");
    assert_int_equal(json_array_size(regs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(regs, 0), "url")),
                        fx.reg_url);
    assert_true(json_is_true(json_object_get(json_array_get(regs, 0), "up")));
    assert_int_equal(json_integer_value(json_object_get(doc, "rejected")), 0);

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", port);
    assert_string_equal(json_string_value(json_object_get(peer, "endpoint")), endpoint);
    assert_string_equal(json_string_value(json_object_get(peer, "registry")), fx.reg_url);
    json_t *offs = json_object_get(peer, "offerings");
    assert_int_equal(json_array_size(offs), 1);
    json_t *o = json_array_get(offs, 0);
    json_t *pricing = json_object_get(o, "pricing");
    assert_string_equal(json_string_value(json_object_get(pricing, "input")), IN_MICRO);
    assert_string_equal(json_string_value(json_object_get(pricing, "output")), OUT_MICRO);
    assert_string_equal(json_string_value(json_object_get(pricing, "cached")), IN_MICRO);
    assert_string_equal(json_string_value(json_object_get(o, "model")), "echo-1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "services"), 0)),
                        SERVICE);
    json_decref(doc);
}

/*
 * What list_peers must leave out: asked for another escrow, or for another chain, it lists no
 * seller and counts the record it refused (the registry serves it all the same).
 */
static void expect_rejected(void)
{
    static const char other_escrow[] = "0x00000000000000000000000000000000000000e5";
    const char *by_escrow[] = {"--registry", fx.reg_url,   "--chain-id", fx.chain_id,
                               "--escrow",   other_escrow, "--json",     NULL};
    const char *by_chain[] = {"--registry", fx.reg_url, "--chain-id", "8453", "--json", NULL};
    const char *const *cases[] = {by_escrow, by_chain};

    for (size_t i = 0; i < 2; i++) {
        result r = run("examples/list_peers", cases[i]);
        json_t *doc = json_loads(r.out, 0, NULL);
        if (r.status != 0 || doc == NULL)
            fail_msg("list_peers case %zu: exit %d:\n%s%s", i, r.status, r.out, r.err);
        if (json_array_size(json_object_get(doc, "peers")) != 0 ||
            json_integer_value(json_object_get(doc, "rejected")) != 1)
            fail_msg("list_peers case %zu should list nobody and reject 1:\n%s", i, r.out);
        json_decref(doc);
        result_free(&r);
    }
}

/* list_peers' table: the registry line and the seller's row with its prices in USDC. */
static void expect_table(const char *node, unsigned port)
{
    const char *args[] = {"--registry", fx.reg_url, "--chain-id", fx.chain_id, NULL};
    char endpoint[64], up[192];
    result r = run("examples/list_peers", args);

    assert_int_equal(r.status, 0);
    snprintf(up, sizeof(up), "registry %s: up", fx.reg_url);
    assert_non_null(strstr(r.out, up));
    const char *row = strstr(r.out, node);
    if (row == NULL)
        fail_msg("no row for %s:\n%s", node, r.out);
    char line[512];
    size_t n = strcspn(row, "\n");
    assert_true(n < sizeof(line));
    memcpy(line, row, n);
    line[n] = '\0';
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", port);
    if (strstr(line, endpoint) == NULL || strstr(line, " " SERVICE " ") == NULL ||
        strstr(line, " " IN_USDC " ") == NULL || strstr(line, " " OUT_USDC " ") == NULL)
        fail_msg("the row for %s lacks its endpoint, service or prices:\n%s", node, line);
    assert_non_null(strstr(r.out, "0 records rejected"));
    result_free(&r);
}

/* ---- a paying buyer, embedded ---- */

typedef struct paid {
    uint64_t cost, prompt_tokens, completion_tokens;
    char peer[64];
    char text[128];
} paid;

/* One chat request through an in-process buyer node with a freshly funded wallet. */
static void buy_one(paid *out)
{
    os_buyer_node_config c;
    os_buyer_node *b = NULL;
    uint8_t priv[32], addr[20];
    const char *regs[] = {fx.reg_url};
    char data[192], url[128];
    os_http_client *http = NULL;
    os_http_client_config hc = {.timeout_ms = 60000};
    os_http_client_res res;
    os_http_client_error herr;
    static const char body[] = "{\"model\":\"" SERVICE "\",\"max_tokens\":16,"
                               "\"messages\":[{\"role\":\"user\",\"content\":\"hello sdk\"}]}";
    os_http_header hdr[] = {{"Content-Type", "application/json"}};

    assert_int_equal(
        os_devchain_account(fx.chain, priv, addr, UINT64_C(1000000000000000000), 10 * OS_USDC_UNIT),
        OS_OK);
    snprintf(data, sizeof(data), "%s/buyer", fx.dir);
    os_buyer_node_config_init(&c);
    c.data_dir = data;
    c.registries = regs;
    c.n_registries = 1;
    c.rpc = fx.rpc;
    c.chain_id = os_devchain_chain_id(fx.chain);
    os_devchain_escrow(fx.chain, c.escrow);
    os_devchain_usdc(fx.chain, c.usdc);
    c.wallet_priv = priv;
    c.deposit = OS_USDC_UNIT;
    c.log = &fx.lg;
    assert_int_equal(os_buyer_node_new(&b, &c), OS_OK);
    sodium_memzero(priv, sizeof(priv)); /* the node keeps its own copy */
    assert_int_equal(os_buyer_node_start(b), OS_OK);

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/chat/completions",
             (unsigned)os_buyer_node_port(b));
    assert_int_equal(os_http_client_new(&http, &hc), OS_OK);
    os_http_client_res_init(&res);
    os_http_client_req req = {.method = "POST",
                              .url = url,
                              .headers = hdr,
                              .n_headers = 1,
                              .body = body,
                              .body_len = sizeof(body) - 1};
    assert_int_equal(os_http_client_do(http, &res, &herr, &req), OS_OK);
    if (res.status != 200)
        fail_msg("buyer answered %ld: %.*s", res.status, (int)res.body.len,
                 (const char *)res.body.data);

    const char *peer = os_http_client_res_header(&res, "X-OpenSeed-Peer");
    const char *cost = os_http_client_res_header(&res, "X-OpenSeed-Cost");
    assert_non_null(peer);
    assert_non_null(cost);
    snprintf(out->peer, sizeof(out->peer), "%s", peer);
    assert_int_equal(os_money_parse_units(&out->cost, cost), OS_OK);
    json_t *j = json_loadb((const char *)res.body.data, res.body.len, 0, NULL);
    assert_non_null(j);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_non_null(json_string_value(json_object_get(msg, "content")));
    snprintf(out->text, sizeof(out->text), "%s",
             json_string_value(json_object_get(msg, "content")));
    json_t *usage = json_object_get(j, "usage");
    out->prompt_tokens = (uint64_t)json_integer_value(json_object_get(usage, "prompt_tokens"));
    out->completion_tokens =
        (uint64_t)json_integer_value(json_object_get(usage, "completion_tokens"));
    json_decref(j);
    os_http_client_res_free(&res);
    os_http_client_free(http);
    os_buyer_node_free(b);
}

/* ---- tests ---- */

/*
 * The whole life of the example seller: it prints the builder's offering JSON and its serving
 * line, list_peers lists it verified with its prices, a buyer pays it for one request, and
 * SIGTERM ends it with exit 0 and stats that hold exactly that charge.
 */
static void test_seller_serves_and_is_listed(void **state)
{
    char data[192], out_path[192], err_path[192], node[OS_ADDRESS_STR_LEN];
    unsigned port = 0;
    paid p;

    (void)state;
    snprintf(data, sizeof(data), "%s/seller", fx.dir);
    snprintf(out_path, sizeof(out_path), "%s/seller.out", fx.dir);
    snprintf(err_path, sizeof(err_path), "%s/seller.err", fx.dir);
    const char *args[] = {
        "--registry",     fx.reg_url, "--rpc",   fx.rpc,   "--chain-id",    fx.chain_id,
        "--escrow",       fx.escrow,  "--usdc",  fx.usdc,  "--data-dir",    data,
        "--service",      SERVICE,    "--model", "echo-1", "--input-price", IN_USDC,
        "--output-price", OUT_USDC,   NULL};
    seller_spawn(args, out_path, err_path);
    seller_wait_serving(out_path, err_path, &port, node);

    /* The offering it printed is the builder's JSON of the same flags, exactly. */
    {
        os_offering_builder b;
        os_offering o;
        char *out = slurp(out_path), *start = strstr(out, "offering:\n"), *end;
        json_error_t je;

        assert_non_null(start);
        end = strstr(start, "\nserving on ");
        assert_non_null(end);
        *end = '\0';
        json_t *printed = json_loads(start + strlen("offering:\n"), 0, &je);
        if (printed == NULL)
            fail_msg("the printed offering is not JSON (%s):\n%s", je.text, start);
        os_offering_builder_init(&b);
        assert_int_equal(os_offering_service(&b, SERVICE), OS_OK);
        assert_int_equal(os_offering_model(&b, "echo-1"), OS_OK);
        assert_int_equal(os_offering_api(&b, "openai.chat"), OS_OK);
        assert_int_equal(os_offering_api(&b, "openai.embeddings"), OS_OK);
        assert_int_equal(os_offering_api(&b, "anthropic.messages"), OS_OK);
        assert_int_equal(os_offering_price_usdc(&b, IN_USDC, OUT_USDC, NULL), OS_OK);
        assert_int_equal(os_offering_build(&b, &o), OS_OK);
        json_t *want = os_offering_to_json(&o);
        assert_non_null(want);
        assert_true(json_equal(printed, want));
        json_decref(printed);
        json_decref(want);
        free(out);
    }

    expect_listed(node, port);
    expect_table(node, port);
    expect_rejected();

    buy_one(&p);
    assert_string_equal(p.peer, node);
    /*
     * The echo model's documented counts (src/seller/echo.h): prompt = 3 + (4 + 2 tokens of
     * "hello sdk") = 9, completion = the 3 tokens of "echo: hello sdk". Charged at 0.25 and
     * 0.75 USDC per million: ceil(9 * 250000 / 1e6) + ceil(3 * 750000 / 1e6) = 3 + 3 = 6.
     */
    assert_string_equal(p.text, "echo: hello sdk");
    assert_int_equal(p.prompt_tokens, 9);
    assert_int_equal(p.completion_tokens, 3);
    assert_int_equal(p.cost, 6);

    assert_int_equal(kill(fx.seller, SIGTERM), 0);
    int status = seller_wait(30000);
    char *out = slurp(out_path);
    if (status != 0) {
        char *err = slurp(err_path);
        fail_msg("embedded_seller exit %d after SIGTERM:\n%s\n%s", status, out, err);
    }
    assert_non_null(strstr(out, "stopping (SIGTERM)"));
    /* nothing claimed yet (1 USDC threshold, hourly interval): all of it is unclaimed */
    char want[160];
    snprintf(want, sizeof(want),
             "stats: requests=1 errors=0 earned=%" PRIu64 " settled=0 unclaimed=%" PRIu64
             " channels=1 (micro-USDC)\n",
             p.cost, p.cost);
    if (strstr(out, want) == NULL)
        fail_msg("no \"%s\" in:\n%s", want, out);
    free(out);
}

/* --seconds: it stops by itself, exit 0, with the stats of a seller nobody paid. */
static void test_seller_seconds(void **state)
{
    char data[192], out_path[192], err_path[192], node[OS_ADDRESS_STR_LEN];
    unsigned port = 0;

    (void)state;
    snprintf(data, sizeof(data), "%s/seller-timed", fx.dir);
    snprintf(out_path, sizeof(out_path), "%s/timed.out", fx.dir);
    snprintf(err_path, sizeof(err_path), "%s/timed.err", fx.dir);
    const char *args[] = {"--registry", fx.reg_url, "--rpc",     fx.rpc,   "--chain-id",
                          fx.chain_id,  "--escrow", fx.escrow,   "--usdc", fx.usdc,
                          "--data-dir", data,       "--seconds", "2",      NULL};
    seller_spawn(args, out_path, err_path);
    seller_wait_serving(out_path, err_path, &port, node);
    int status = seller_wait(30000);
    char *out = slurp(out_path);
    if (status != 0)
        fail_msg("embedded_seller --seconds 2: exit %d:\n%s", status, out);
    assert_non_null(strstr(out, "stopping (time is up)"));
    assert_non_null(strstr(out, "stats: requests=0 errors=0 earned=0 settled=0 unclaimed=0 "
                                "channels=0 (micro-USDC)\n"));
    free(out);
}

/* A price the builder refuses: exit 1, the builder's own message, nothing started. */
static void test_seller_bad_offering(void **state)
{
    char data[192];
    os_offering_builder b;

    (void)state;
    snprintf(data, sizeof(data), "%s/seller-bad", fx.dir);
    os_offering_builder_init(&b);
    assert_int_not_equal(os_offering_price_usdc(&b, "abc", OUT_USDC, NULL), OS_OK);
    assert_true(b.error[0] != '\0');

    const char *args[] = {"--registry",
                          fx.reg_url,
                          "--rpc",
                          fx.rpc,
                          "--chain-id",
                          fx.chain_id,
                          "--escrow",
                          fx.escrow,
                          "--usdc",
                          fx.usdc,
                          "--data-dir",
                          data,
                          "--input-price",
                          "abc",
                          "--output-price",
                          OUT_USDC,
                          "--seconds",
                          "3",
                          NULL};
    result r = run("examples/embedded_seller", args);
    assert_int_equal(r.status, 1);
    if (strstr(r.err, b.error) == NULL)
        fail_msg("no builder message \"%s\" in:\n%s", b.error, r.err);
    assert_null(strstr(r.out, "serving on"));
    result_free(&r);
    /* nothing was made: the data directory is the node's, and no node was created */
    struct stat sb;
    assert_int_not_equal(stat(data, &sb), 0);

    /* a service name the record cannot carry: the builder says so too */
    os_offering_builder_init(&b);
    assert_int_not_equal(os_offering_service(&b, "no spaces"), OS_OK);
    const char *args2[] = {"--registry", fx.reg_url, "--rpc",     fx.rpc,      "--chain-id",
                           fx.chain_id,  "--escrow", fx.escrow,   "--usdc",    fx.usdc,
                           "--data-dir", data,       "--service", "no spaces", "--seconds",
                           "3",          NULL};
    r = run("examples/embedded_seller", args2);
    assert_int_equal(r.status, 1);
    if (strstr(r.err, b.error) == NULL)
        fail_msg("no builder message \"%s\" in:\n%s", b.error, r.err);
    result_free(&r);
}

/* Usage errors: exit 2 and a message naming what is wrong, for both examples. */
static void test_usage_errors(void **state)
{
    static const struct {
        const char *prog;
        const char *args[16];
        const char *says;
    } cases[] = {
        {"examples/embedded_seller",
         {"--registry", "http://127.0.0.1:1", "--chain-id", "31337", "--escrow",
          "0x0000000000000000000000000000000000000001", "--usdc",
          "0x0000000000000000000000000000000000000002", "--data-dir", "/nonexistent", NULL},
         "--rpc is required"},
        {"examples/embedded_seller",
         {"--registry", "http://127.0.0.1:1", "--rpc", "http://127.0.0.1:1", "--chain-id", "31337",
          "--escrow", "0x01", "--usdc", "0x0000000000000000000000000000000000000002", "--data-dir",
          "/nonexistent", NULL},
         "--escrow"},
        {"examples/embedded_seller",
         {"--registry", "http://127.0.0.1:1", "--rpc", "http://127.0.0.1:1", "--chain-id", "31337",
          "--escrow", "0x0000000000000000000000000000000000000001", "--usdc",
          "0x0000000000000000000000000000000000000002", "--data-dir", "/nonexistent", "--upstream",
          "http://127.0.0.1:1", NULL},
         "--upstream-api"},
        /* the EIP-55 example address of the EIP with its last letter's case flipped */
        {"examples/embedded_seller",
         {"--registry", "http://127.0.0.1:1", "--rpc", "http://127.0.0.1:1", "--chain-id", "31337",
          "--escrow", "0x0000000000000000000000000000000000000001", "--usdc",
          "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "--data-dir", "/nonexistent", NULL},
         "--usdc"},
        {"examples/embedded_seller", {"--bogus", NULL}, "--bogus"},
        {"examples/list_peers",
         {"--registry", "http://127.0.0.1:1", NULL},
         "--chain-id is required"},
        {"examples/list_peers",
         {"--registry", "http://127.0.0.1:1", "--chain-id", "31337", "--max-input", "-1", NULL},
         "--max-input"},
        {"examples/list_peers", {"--chain-id", "31337", NULL}, "--registry is required"},
        {"examples/list_peers",
         {"--registry", "http://127.0.0.1:1", "--chain-id", "31337", "--service", "a b", NULL},
         "--service"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result r = run(cases[i].prog, cases[i].args);
        if (r.status != 2 || strstr(r.err, cases[i].says) == NULL ||
            strstr(r.err, "usage:") == NULL)
            fail_msg("case %zu (%s): exit %d, stderr:\n%s", i, cases[i].prog, r.status, r.err);
        result_free(&r);
    }
}

/* No registry answers: exit 1 with a message naming it, in both output modes. */
static void test_list_peers_no_registry(void **state)
{
    char url[64], port[8];

    (void)state;
    snprintf(port, sizeof(port), "%u", (unsigned)tu_free_port());
    snprintf(url, sizeof(url), "http://127.0.0.1:%s", port);
    for (int json = 0; json < 2; json++) {
        const char *args[] = {"--registry",           url, "--chain-id", fx.chain_id,
                              json ? "--json" : NULL, NULL};
        result r = run("examples/list_peers", args);
        if (r.status != 1 || strstr(r.err, "no registry answers") == NULL ||
            strstr(r.err, url) == NULL)
            fail_msg("list_peers against a dead registry: exit %d, stderr:\n%s", r.status, r.err);
        assert_null(strstr(r.out, "verified sellers"));
        result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_list_peers_no_registry),
        cmocka_unit_test(test_seller_bad_offering),
        cmocka_unit_test_teardown(test_seller_serves_and_is_listed, seller_kill),
        cmocka_unit_test_teardown(test_seller_seconds, seller_kill),
    };
    return cmocka_run_group_tests_name("sdk_examples", tests, setup, teardown);
}
