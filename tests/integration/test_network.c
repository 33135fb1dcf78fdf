/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The three daemons as real processes on loopback, started from their binaries with flags only:
 * anvil with the committed contracts, openseed-registry, two openseed-seller on the built-in echo
 * upstream, and openseed-buyer on a funded wallet. A client talks to the buyer as an OpenAI or
 * Anthropic client would: a whole and a streamed chat completion and an Anthropic message are
 * answered and paid; the seller that answered is then killed with SIGKILL and the next request is
 * answered by the other one (failover between processes); finally SIGTERM stops every daemon
 * cleanly (exit 0).
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "registry_client.h"
#include "test_buyer.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "openseed/init.h"
#include "openseed/keyfile.h"

#define CHAIN 31337
#define WHY 512

static struct {
    devchain d;
    char dir[128], bin_dir[1024];
    rc_proc reg, sel[2], buyer;
    char reg_url[64], buyer_url[64];
    char sel_hex[2][OS_ADDRESS_STR_LEN];
    os_http_client *http;
} fx;

static uint16_t free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int start(rc_proc *p, const char *name, const char *logname, const char *const *args,
                 char *why, size_t n)
{
    char bin[1200], log[256];
    snprintf(bin, sizeof(bin), "%s/openseed-%s", fx.bin_dir, name);
    snprintf(log, sizeof(log), "%s/%s.log", fx.dir, logname);
    return rc_proc_start(p, bin, args, log, why, n);
}

static int key_file(char *path, size_t cap, const char *name, int idx, char *why, size_t n)
{
    uint8_t key[32];
    os_err rc;
    snprintf(path, cap, "%s/%s", fx.dir, name);
    devchain_key(key, idx);
    rc = os_keyfile_write_secp(path, key, why, n);
    os_wipe(key, sizeof(key));
    return rc == OS_OK ? 0 : -1;
}

static int listed(void)
{
    char url[160];
    json_t *j = NULL;
    long st = 0;
    int n = -1;
    snprintf(url, sizeof(url), "%s/v1/peers?service=echo", fx.reg_url);
    if (os_http_client_json(fx.http, &st, &j, NULL, "GET", url, NULL, NULL, 0) == OS_OK)
        n = (int)json_array_size(json_object_get(j, "peers"));
    json_decref(j);
    return n;
}

static int setup(void **state)
{
    char why[WHY] = "", escrow[OS_ADDRESS_STR_LEN], usdc[OS_ADDRESS_STR_LEN], chain[16];
    char regdir[192], wallet[256];
    const char *bd = getenv("OPENSEED_BUILD_DIR");
    (void)state;

    if (os_init() != OS_OK || bd == NULL)
        return -1;
    snprintf(fx.bin_dir, sizeof(fx.bin_dir), "%s", bd);
    if (os_http_client_new(&fx.http, &(os_http_client_config){.timeout_ms = 60000}) != OS_OK)
        return -1;
    if (devchain_start(&fx.d, CHAIN, 900, why, sizeof(why)) != 0) {
        fprintf(stderr, "devchain: %s\n", why);
        return -1;
    }
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/openseed-network-XXXXXX");
    if (rc_tmpdir(fx.dir) != 0)
        return -1;
    os_eip55_format(escrow, fx.d.escrow);
    os_eip55_format(usdc, fx.d.usdc);
    snprintf(chain, sizeof(chain), "%d", CHAIN);

    snprintf(regdir, sizeof(regdir), "%s/reg", fx.dir);
    const char *reg_args[] = {"--listen", "127.0.0.1:0", "--data-dir", regdir, "--chain-id",
                              chain, "--heartbeat-interval", "1s", "--rescore-interval", "1s",
                              "--rate-limit", "0", NULL};
    if (start(&fx.reg, "registry", "registry", reg_args, why, sizeof(why)) != 0) {
        fprintf(stderr, "registry: %s\n", why);
        return -1;
    }
    snprintf(fx.reg_url, sizeof(fx.reg_url), "http://127.0.0.1:%d", fx.reg.port);

    static const char *const offers[2] = {
        "echo model=echo-1 apis=openai.chat,openai.embeddings,anthropic.messages input=0.5 "
        "output=1.5",
        "echo model=echo-1 apis=openai.chat,openai.embeddings,anthropic.messages input=0.4 "
        "output=1.2"};
    for (int i = 0; i < 2; i++) {
        char data[192], key[256], listen[32], endpoint[64], name[16];
        uint8_t addr[20];
        uint16_t port = free_port();
        snprintf(name, sizeof(name), "s%d.key", i);
        if (key_file(key, sizeof(key), name, 2 + i, why, sizeof(why)) != 0)
            return -1;
        devchain_address(addr, 2 + i);
        os_eip55_format(fx.sel_hex[i], addr);
        snprintf(data, sizeof(data), "%s/seller%d", fx.dir, i);
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
        snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", (unsigned)port);
        const char *args[] = {"--listen", listen, "--admin-listen", "127.0.0.1:0", "--data-dir",
                              data, "--node-key", key, "--rpc", fx.d.anvil.url, "--chain-id",
                              chain, "--escrow", escrow, "--usdc", usdc, "--upstream",
                              "builtin:echo", "--endpoint", endpoint, "--registry", fx.reg_url,
                              "--offering", offers[i], "--channel-refresh", "1s", NULL};
        char logname[16];
        snprintf(logname, sizeof(logname), "seller%d", i);
        if (start(&fx.sel[i], "seller", logname, args, why, sizeof(why)) != 0) {
            fprintf(stderr, "seller %d: %s\n", i, why);
            return -1;
        }
    }
    for (int i = 0; i < 100 && listed() != 2; i++)
        rc_sleep_ms(100);
    if (listed() != 2)
        return -1;
    rc_sleep_ms(1200); /* a full rescore ranks by price */

    uint8_t waddr[20];
    devchain_address(waddr, 1);
    if (devchain_mint(&fx.d, waddr, 50 * 1000000ull, why, sizeof(why)) != 0 ||
        key_file(wallet, sizeof(wallet), "wallet.key", 1, why, sizeof(why)) != 0)
        return -1;
    char bdata[192];
    snprintf(bdata, sizeof(bdata), "%s/buyer", fx.dir);
    const char *bargs[] = {"--listen", "127.0.0.1:0", "--data-dir", bdata, "--registry",
                           fx.reg_url, "--rpc", fx.d.anvil.url, "--chain-id", chain, "--escrow",
                           escrow, "--usdc", usdc, "--wallet-key", wallet, "--deposit", "2",
                           "--peers-ttl", "1s", NULL};
    if (start(&fx.buyer, "buyer", "buyer", bargs, why, sizeof(why)) != 0) {
        fprintf(stderr, "buyer: %s\n", why);
        return -1;
    }
    snprintf(fx.buyer_url, sizeof(fx.buyer_url), "http://127.0.0.1:%d", fx.buyer.port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (fx.buyer.pid > 0)
        rc_proc_stop(&fx.buyer, SIGKILL, 1000);
    for (int i = 0; i < 2; i++)
        if (fx.sel[i].pid > 0)
            rc_proc_stop(&fx.sel[i], SIGKILL, 1000);
    if (fx.reg.pid > 0)
        rc_proc_stop(&fx.reg, SIGKILL, 1000);
    devchain_stop(&fx.d);
    os_http_client_free(fx.http);
    rc_rmtree(fx.dir);
    return 0;
}

/* POST to the buyer; *peer gets X-OpenSeed-Peer. The body is returned NUL-terminated (free()). */
static char *post(long *status, char peer[64], const char *path, const char *body)
{
    char url[160];
    os_http_header h = {"Content-Type", "application/json"};
    os_http_client_req req;
    os_http_client_res res;
    char *out;

    snprintf(url, sizeof(url), "%s%s", fx.buyer_url, path);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = &h;
    req.n_headers = 1;
    req.body = body;
    req.body_len = strlen(body);
    os_http_client_res_init(&res);
    if (os_http_client_do(fx.http, &res, NULL, &req) != OS_OK)
        res.status = -1;
    *status = res.status;
    const char *p = os_http_client_res_header(&res, "X-OpenSeed-Peer");
    snprintf(peer, 64, "%s", p != NULL ? p : "");
    out = malloc(res.body.len + 1);
    if (out != NULL) {
        memcpy(out, res.body.data, res.body.len);
        out[res.body.len] = '\0';
    }
    os_http_client_res_free(&res);
    return out;
}

static void test_paid_calls_between_processes(void **state)
{
    long st;
    char peer[64], *b;
    (void)state;

    b = post(&st, peer, "/v1/chat/completions",
             "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"over the wire\"}]}");
    assert_int_equal(st, 200);
    assert_non_null(strstr(b, "\"content\":\"echo: over the wire\""));
    assert_string_equal(peer, fx.sel_hex[1]); /* the cheaper one */
    free(b);

    b = post(&st, peer, "/v1/chat/completions",
             "{\"model\":\"echo\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"streamed\"}]}");
    assert_int_equal(st, 200);
    assert_non_null(strstr(b, "\"content\":\" streamed\""));
    assert_non_null(strstr(b, "data: [DONE]"));
    free(b);

    b = post(&st, peer, "/v1/messages",
             "{\"model\":\"echo\",\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"bonjour\"}]}");
    assert_int_equal(st, 200);
    assert_non_null(strstr(b, "\"text\":\"echo: bonjour\""));
    free(b);
}

static void test_failover_after_kill9(void **state)
{
    long st;
    char peer[64], *b;
    (void)state;

    assert_int_equal(kill(fx.sel[1].pid, SIGKILL), 0);
    assert_int_equal(waitpid(fx.sel[1].pid, NULL, 0), fx.sel[1].pid);
    fx.sel[1].pid = 0;
    b = post(&st, peer, "/v1/chat/completions",
             "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"still here\"}]}");
    assert_int_equal(st, 200);
    assert_non_null(strstr(b, "echo: still here"));
    assert_string_equal(peer, fx.sel_hex[0]);
    free(b);
}

static void test_sigterm_stops_cleanly(void **state)
{
    (void)state;
    assert_int_equal(rc_proc_stop(&fx.buyer, SIGTERM, 15000), 0);
    assert_int_equal(rc_proc_stop(&fx.sel[0], SIGTERM, 15000), 0);
    assert_int_equal(rc_proc_stop(&fx.reg, SIGTERM, 15000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paid_calls_between_processes),
        cmocka_unit_test(test_failover_after_kill9),
        cmocka_unit_test(test_sigterm_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
