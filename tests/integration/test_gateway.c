/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer gateway end to end, with real parts only: anvil with the committed escrow and
 * TestUSDC, a registry core, two seller cores on the built-in echo upstream (A sells all three
 * APIs; B, cheaper, only OpenAI chat and embeddings), and the buyer core, all on loopback in this
 * process, with plain HTTP clients in front of the gateway as an OpenAI or Anthropic client would
 * be:
 *   - /v1/models, OpenAI chat whole and streamed (with and without include_usage), embeddings,
 *     Anthropic messages native (pinned to A) and translated (pinned to B), response headers;
 *   - routing: price caps from X-OpenSeed-Max-Price, pinning (and an unknown pin), failover when
 *     a seller is stopped, the registry stopped with a warm cache;
 *   - payment: channels opened on chain on first use, the ledger and spend views, a budget cap;
 *   - the management API the dashboard polls: ledger pages and filters, the spend series, the
 *     peers' offerings and prices, and the 400s for malformed arguments;
 *   - a client that leaves mid-stream cancels the upstream;
 *   - malformed client requests in each API's error shape, the Host guard;
 *   - the wallet address never appears in the bytes sent to a seller or a registry (recorded by
 *     a TCP proxy in front of each).
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "registry_client.h"
#include "test_buyer.h"
#include "wire_proxy.h"

#include "openseed/base64.h"
#include "openseed/init.h"
#include "openseed/keyfile.h"

#include "buyer.h"
#include "registry.h"
#include "seller.h"

#define CHAIN 31337
#define WHY 512

/* What the two sellers sell (prices in USDC per million tokens). */
#define A_OFFERING                                                                                 \
    "echo model=echo-1 apis=openai.chat,openai.embeddings,anthropic.messages "                     \
    "input=0.5 output=1.5 max_output=1024"
#define B_OFFERING                                                                                 \
    "echo model=echo-1 apis=openai.chat,openai.embeddings input=0.4 output=1.2 max_output=1024"

static struct {
    devchain d;
    char dir[128];
    rg_registry *rg;
    wire_proxy reg_proxy, a_proxy;
    char reg_url[64];
    sl_seller *a, *b;
    uint8_t a_addr[20], b_addr[20];
    char a_hex[OS_ADDRESS_STR_LEN], b_hex[OS_ADDRESS_STR_LEN];
    by_buyer *buyer;
    char base[64];
    uint8_t wallet[20];
    os_http_client *http;
    os_logger log;
    char buyer_dir[192], reg_via_proxy[64];
} fx;

/* ---- a plain client ---- */

typedef struct reply {
    long status;
    char body[256 * 1024];
    size_t len;
    char peer[64], cost[32];
    int stop_after; /* stop reading after this many body pieces (a client that leaves) */
    int pieces;
} reply;

static int collect(void *ud, const os_http_client_res *res, const uint8_t *data, size_t len)
{
    reply *r = ud;
    (void)res;
    if (r->len + len < sizeof(r->body)) {
        memcpy(r->body + r->len, data, len);
        r->len += len;
        r->body[r->len] = '\0';
    }
    r->pieces++;
    return r->stop_after > 0 && r->pieces >= r->stop_after;
}

static void call_ex(reply *r, const char *method, const char *path, const char *body,
                    const char *h1, const char *v1, const char *host)
{
    char url[256];
    os_http_header h[4];
    size_t nh = 0;
    os_http_client_req req;
    os_http_client_res res;
    int stop = r->stop_after;

    memset(r, 0, sizeof(*r));
    r->stop_after = stop;
    snprintf(url, sizeof(url), "%s%s", fx.base, path);
    h[nh++] = (os_http_header){"Content-Type", "application/json"};
    if (h1 != NULL)
        h[nh++] = (os_http_header){h1, v1};
    if (host != NULL)
        h[nh++] = (os_http_header){"Host", host};
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = h;
    req.n_headers = nh;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    req.on_body = collect;
    req.on_body_ud = r;
    os_http_client_res_init(&res);
    if (os_http_client_do(fx.http, &res, NULL, &req) != OS_OK && r->stop_after == 0)
        res.status = res.status != 0 ? res.status : -1; /* a transport failure */
    r->status = res.status;
    if (getenv("TEST_DEBUG") != NULL)
        fprintf(stderr, "%s %s -> %ld peer=%s %.300s\n", method, path, r->status,
                os_http_client_res_header(&res, "X-OpenSeed-Peer") ? os_http_client_res_header(&res, "X-OpenSeed-Peer") : "-",
                r->body);
    const char *p = os_http_client_res_header(&res, "X-OpenSeed-Peer");
    snprintf(r->peer, sizeof(r->peer), "%s", p != NULL ? p : "");
    p = os_http_client_res_header(&res, "X-OpenSeed-Cost");
    snprintf(r->cost, sizeof(r->cost), "%s", p != NULL ? p : "");
    os_http_client_res_free(&res);
}

static void post(reply *r, const char *path, const char *body, const char *h1, const char *v1)
{
    call_ex(r, "POST", path, body, h1, v1, NULL);
}

static json_t *body_json(const reply *r)
{
    return json_loadb(r->body, r->len, 0, NULL);
}

/* The "data:" payloads of an SSE body, concatenated text of OpenAI content deltas. */
static void openai_stream_text(const reply *r, char *out, size_t cap, bool *done, int *usage_chunks)
{
    const char *p = r->body;
    size_t n = 0;
    *done = false;
    *usage_chunks = 0;
    out[0] = '\0';
    while ((p = strstr(p, "data: ")) != NULL) {
        const char *e = strchr(p, '\n');
        size_t len = e != NULL ? (size_t)(e - p - 6) : strlen(p + 6);
        if (len == 6 && strncmp(p + 6, "[DONE]", 6) == 0) {
            *done = true;
        } else {
            json_t *j = json_loadb(p + 6, len, 0, NULL);
            json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
            const char *c = json_string_value(json_object_get(json_object_get(ch, "delta"), "content"));
            if (c != NULL && n + strlen(c) < cap) {
                memcpy(out + n, c, strlen(c) + 1);
                n += strlen(c);
            }
            if (json_is_object(json_object_get(j, "usage")) &&
                json_array_size(json_object_get(j, "choices")) == 0)
                (*usage_chunks)++;
            json_decref(j);
        }
        p += 6;
    }
}

/* ---- fixture ---- */

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

static int start_seller(sl_seller **s, uint8_t addr[20], int key_idx, const char *name,
                        const char *offering, const char *listen, const char *endpoint)
{
    char path[256], why[WHY];
    uint8_t key[32];
    sl_options so;
    os_offering off;
    const char *regs[1] = {fx.reg_url};

    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/%s/node.key", fx.dir, name);
    devchain_key(key, key_idx);
    if (os_keyfile_write_secp(path, key, why, sizeof(why)) != OS_OK)
        return -1;
    os_wipe(key, sizeof(key));
    devchain_address(addr, key_idx);
    if (sl_offering_parse(&off, offering, why, sizeof(why)) != OS_OK)
        return -1;
    sl_options_default(&so);
    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    so.listen = listen;
    so.admin_listen = NULL;
    so.data_dir = path;
    so.endpoint = endpoint;
    so.registries = regs;
    so.n_registries = 1;
    so.rpc = fx.d.anvil.url;
    so.chain_id = CHAIN;
    memcpy(so.escrow, fx.d.escrow, 20);
    memcpy(so.usdc, fx.d.usdc, 20);
    so.upstream = "builtin:echo";
    so.offerings = &off;
    so.n_offerings = 1;
    so.channel_refresh_ms = 500;
    sl_echo_config ec = {.tokens_per_s = 200};
    so.echo = &ec;
    if (sl_seller_new_opts(s, &so, &fx.log) != OS_OK || sl_seller_start(*s) != OS_OK)
        return -1;
    return 0;
}

static bool both_listed(void)
{
    char url[160];
    json_t *j = NULL;
    long st = 0;
    bool ok;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/peers?service=echo",
             (unsigned)rg_registry_port(fx.rg));
    ok = os_http_client_json(fx.http, &st, &j, NULL, "GET", url, NULL, NULL, 0) == OS_OK &&
         json_array_size(json_object_get(j, "peers")) == 2;
    json_decref(j);
    return ok;
}

/* A buyer on wallet account 1 in dir, reaching the registry through its proxy. */
static int start_buyer(by_buyer **out, const char *dir, uint64_t budget_request,
                       const char *api_key)
{
    uint8_t wkey[32];
    by_options bo;
    const char *regs[1] = {fx.reg_via_proxy};
    int rc = 0;

    devchain_key(wkey, 1);
    by_options_default(&bo);
    bo.listen = "127.0.0.1:0";
    bo.data_dir = dir;
    bo.registries = regs;
    bo.n_registries = 1;
    bo.rpc = fx.d.anvil.url;
    bo.chain_id = CHAIN;
    memcpy(bo.escrow, fx.d.escrow, 20);
    memcpy(bo.usdc, fx.d.usdc, 20);
    bo.wallet_priv = wkey;
    bo.deposit = 2 * 1000000;
    bo.peers_ttl_ms = 500;
    bo.budget_request = budget_request;
    bo.api_key = api_key;
    if (by_buyer_new_opts(out, &bo, &fx.log) != OS_OK || by_buyer_start(*out) != OS_OK)
        rc = -1;
    os_wipe(wkey, sizeof(wkey));
    return rc;
}

static int setup(void **state)
{
    char why[WHY] = "", path[256], a_listen[32], a_endpoint[64];
    rg_options ro;
    uint16_t a_port;
    (void)state;

    if (os_init() != OS_OK)
        return -1;
    os_logger_init(&fx.log, "gateway-test",
                   getenv("TEST_DEBUG") != NULL ? OS_LOG_DEBUG : OS_LOG_WARN);
    if (os_http_client_new(&fx.http, &(os_http_client_config){.timeout_ms = 60000}) != OS_OK)
        return -1;
    if (devchain_start(&fx.d, CHAIN, 900, why, sizeof(why)) != 0) {
        fprintf(stderr, "devchain: %s\n", why);
        return -1;
    }
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/openseed-gateway-XXXXXX");
    if (rc_tmpdir(fx.dir) != 0)
        return -1;

    rg_options_default(&ro);
    snprintf(path, sizeof(path), "%s/registry.db", fx.dir);
    ro.listen = "127.0.0.1:0";
    ro.db_path = path;
    ro.chain_id = CHAIN;
    ro.heartbeat_interval_ms = 1000;
    ro.rescore_interval_ms = 200;
    ro.rate_per_s = 0;
    if (rg_registry_new_opts(&fx.rg, &ro, &fx.log) != OS_OK || rg_registry_start(fx.rg) != OS_OK)
        return -1;
    snprintf(fx.reg_url, sizeof(fx.reg_url), "http://127.0.0.1:%u",
             (unsigned)rg_registry_port(fx.rg));

    /* Seller A sits behind a recording proxy (its published endpoint is the proxy). */
    a_port = free_port();
    snprintf(a_listen, sizeof(a_listen), "127.0.0.1:%u", (unsigned)a_port);
    if (wp_start(&fx.a_proxy, a_port) != 0 || wp_start(&fx.reg_proxy, rg_registry_port(fx.rg)) != 0)
        return -1;
    snprintf(a_endpoint, sizeof(a_endpoint), "http://127.0.0.1:%u", (unsigned)fx.a_proxy.port);
    if (start_seller(&fx.a, fx.a_addr, 2, "a", A_OFFERING, a_listen, a_endpoint) != 0 ||
        start_seller(&fx.b, fx.b_addr, 3, "b", B_OFFERING, "127.0.0.1:0", NULL) != 0)
        return -1;
    os_eip55_format(fx.a_hex, fx.a_addr);
    os_eip55_format(fx.b_hex, fx.b_addr);
    for (int i = 0; i < 100 && !both_listed(); i++)
        rc_sleep_ms(100);
    if (!both_listed())
        return -1;
    rc_sleep_ms(600); /* a full rescore (200 ms) ranks by price; a newcomer's first is provisional */

    /* The buyer: wallet = anvil account 1, funded; its registry is reached through the proxy. */
    devchain_address(fx.wallet, 1);
    if (devchain_mint(&fx.d, fx.wallet, 100 * 1000000ull, why, sizeof(why)) != 0)
        return -1;
    snprintf(fx.reg_via_proxy, sizeof(fx.reg_via_proxy), "http://127.0.0.1:%u",
             (unsigned)fx.reg_proxy.port);
    snprintf(fx.buyer_dir, sizeof(fx.buyer_dir), "%s/buyer", fx.dir);
    if (start_buyer(&fx.buyer, fx.buyer_dir, 0, NULL) != 0)
        return -1;
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", (unsigned)by_buyer_port(fx.buyer));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    by_buyer_free(fx.buyer);
    sl_seller_free(fx.a);
    sl_seller_free(fx.b);
    rg_registry_free(fx.rg);
    wp_stop(&fx.a_proxy);
    wp_stop(&fx.reg_proxy);
    devchain_stop(&fx.d);
    os_http_client_free(fx.http);
    rc_rmtree(fx.dir);
    return 0;
}

/* ---- tests ---- */

static reply R; /* large: static */

static void test_models(void **state)
{
    (void)state;
    call_ex(&R, "GET", "/v1/models", NULL, NULL, NULL, NULL);
    assert_int_equal(R.status, 200);
    json_t *j = body_json(&R);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id")),
        "echo");
    json_decref(j);
}

static void test_openai_chat(void **state)
{
    char text[4096];
    bool done;
    int usage;
    (void)state;

    post(&R, "/v1/chat/completions",
         "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"hello gateway\"}]}",
         NULL, NULL);
    assert_int_equal(R.status, 200);
    json_t *j = body_json(&R);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(json_object_get(j, "choices"), 0),
                                            "message"),
                            "content")),
                        "echo: hello gateway");
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    json_decref(j);
    assert_string_equal(R.peer, fx.b_hex); /* the cheaper seller ranks first */
    assert_true(R.cost[0] != '\0' && strcmp(R.cost, "0") != 0);

    post(&R, "/v1/chat/completions",
         "{\"model\":\"echo\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
         "\"one two three\"}]}",
         NULL, NULL);
    assert_int_equal(R.status, 200);
    openai_stream_text(&R, text, sizeof(text), &done, &usage);
    assert_string_equal(text, "echo: one two three");
    assert_true(done);
    assert_int_equal(usage, 0); /* not asked for */

    post(&R, "/v1/chat/completions",
         "{\"model\":\"echo\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
         "\"messages\":[{\"role\":\"user\",\"content\":\"count me\"}]}",
         NULL, NULL);
    assert_int_equal(R.status, 200);
    openai_stream_text(&R, text, sizeof(text), &done, &usage);
    assert_string_equal(text, "echo: count me");
    assert_int_equal(usage, 1);
}

/* Many clients at once, as a busy local gateway sees them: more open connections than a per-address
 * limit would allow (all come from 127.0.0.1), and concurrent paid requests on one channel, whose
 * vouchers reach the seller in any order: every one is answered. */
#define CONC_THREADS 24
#define CONC_EACH 5
#define CONC_CONNS 96

static void *conc_worker(void *arg)
{
    int *ok = arg;
    reply *r = malloc(sizeof(*r));
    if (r == NULL)
        return NULL;
    for (int i = 0; i < CONC_EACH; i++) {
        memset(r, 0, sizeof(*r));
        post(r, "/v1/chat/completions",
             "{\"model\":\"echo\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"all at once\"}]}",
             NULL, NULL);
        if (r->status == 200 && strstr(r->body, "echo: all at once") != NULL)
            (*ok)++;
        else
            fprintf(stderr, "concurrent request: %ld %.300s\n", r->status, r->body);
    }
    free(r);
    return NULL;
}

static void test_many_clients(void **state)
{
    int fds[CONC_CONNS], oks[CONC_THREADS] = {0}, total = 0;
    pthread_t t[CONC_THREADS];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(by_buyer_port(fx.buyer))};
    char req[128], buf[512];
    (void)state;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
             (unsigned)by_buyer_port(fx.buyer));
    for (int i = 0; i < CONC_CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
    }
    for (int i = 0; i < CONC_CONNS; i++) { /* all open at once, then each asks */
        struct timeval tv = {.tv_sec = 10};
        ssize_t n;
        assert_int_equal(setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        assert_int_equal(send(fds[i], req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
        n = recv(fds[i], buf, sizeof(buf) - 1, 0);
        if (n < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0)
            fail_msg("connection %d of %d: no 200 (%zd bytes)", i + 1, CONC_CONNS, n);
    }
    for (int i = 0; i < CONC_CONNS; i++)
        close(fds[i]);

    for (int i = 0; i < CONC_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, conc_worker, &oks[i]), 0);
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(t[i], NULL);
        total += oks[i];
    }
    assert_int_equal(total, CONC_THREADS * CONC_EACH);
}

static void test_embeddings(void **state)
{
    (void)state;
    post(&R, "/v1/embeddings", "{\"model\":\"echo\",\"input\":[\"a\",\"b c\"]}", NULL, NULL);
    assert_int_equal(R.status, 200);
    json_t *j = body_json(&R);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 2);
    json_decref(j);
}

static void test_anthropic_native_and_translated(void **state)
{
    static const char msg[] = "{\"model\":\"echo\",\"max_tokens\":64,\"messages\":[{\"role\":"
                              "\"user\",\"content\":\"bonjour\"}]}";
    static const char msg_stream[] = "{\"model\":\"echo\",\"max_tokens\":64,\"stream\":true,"
                                     "\"messages\":[{\"role\":\"user\",\"content\":\"bonjour\"}]}";
    (void)state;

    for (int i = 0; i < 2; i++) { /* A: native; B: translated from OpenAI chat */
        const char *pin = i == 0 ? fx.a_hex : fx.b_hex;
        post(&R, "/v1/messages", msg, "X-OpenSeed-Peer", pin);
        assert_int_equal(R.status, 200);
        assert_string_equal(R.peer, pin);
        json_t *j = body_json(&R);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "message");
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(j, "content"), 0), "text")),
                            "echo: bonjour");
        assert_string_equal(json_string_value(json_object_get(j, "stop_reason")), "end_turn");
        json_decref(j);

        post(&R, "/v1/messages", msg_stream, "X-OpenSeed-Peer", pin);
        assert_int_equal(R.status, 200);
        const char *order[] = {"event: message_start", "event: content_block_start",
                               "event: content_block_delta", "event: content_block_stop",
                               "event: message_delta", "event: message_stop"};
        const char *p = R.body;
        for (size_t k = 0; k < 6; k++) {
            p = strstr(p, order[k]);
            if (p == NULL)
                fail_msg("%s: %s missing or out of order in:\n%s", i == 0 ? "native" : "translated",
                         order[k], R.body);
        }
    }
}

static void test_pin_and_price_caps(void **state)
{
    static const char chat[] =
        "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"caps\"}]}";
    (void)state;

    post(&R, "/v1/chat/completions", chat, "X-OpenSeed-Peer", fx.a_hex);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.peer, fx.a_hex);
    post(&R, "/v1/chat/completions", chat, "X-OpenSeed-Peer",
         "0x0000000000000000000000000000000000000001");
    assert_int_equal(R.status, 404);
    post(&R, "/v1/chat/completions", chat, "X-OpenSeed-Peer", "not-an-address");
    assert_int_equal(R.status, 400);
    /* A's input price is 0.5, B's 0.4: a cap of 0.45 leaves B; 0.1 leaves none */
    post(&R, "/v1/chat/completions", chat, "X-OpenSeed-Max-Price", "0.45,10");
    assert_int_equal(R.status, 200);
    assert_string_equal(R.peer, fx.b_hex);
    post(&R, "/v1/chat/completions", chat, "X-OpenSeed-Max-Price", "0.1,0.1");
    assert_int_equal(R.status, 404);
    json_t *j = body_json(&R);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "error"), "code")), "model_not_found");
    json_decref(j);
    post(&R, "/v1/chat/completions", chat, "X-OpenSeed-Max-Price", "cheap");
    assert_int_equal(R.status, 400);
}

static void test_client_errors(void **state)
{
    (void)state;
    post(&R, "/v1/chat/completions", "{not json", NULL, NULL);
    assert_int_equal(R.status, 400);
    json_t *j = body_json(&R);
    assert_non_null(json_object_get(json_object_get(j, "error"), "message"));
    json_decref(j);

    post(&R, "/v1/messages", "{\"model\":\"echo\",\"messages\":[]}", NULL, NULL);
    assert_int_equal(R.status, 400);
    j = body_json(&R);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "error"), "type")),
        "invalid_request_error");
    json_decref(j);

    post(&R, "/v1/chat/completions", "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\","
                                     "\"content\":\"x\"}]}",
         NULL, NULL);
    assert_int_equal(R.status, 404);

    /* DNS rebinding: a page on evil.example reaching 127.0.0.1 carries its own Host */
    call_ex(&R, "POST", "/v1/chat/completions", "{}", NULL, NULL, "evil.example");
    assert_int_equal(R.status, 403);
    call_ex(&R, "GET", "/v1/models", NULL, NULL, NULL, "localhost:8377");
    assert_int_equal(R.status, 200);
}

static void test_ledger_and_channels(void **state)
{
    (void)state;
    call_ex(&R, "GET", "/openseed/v1/channels", NULL, NULL, NULL, NULL);
    assert_int_equal(R.status, 200);
    json_t *j = body_json(&R);
    json_t *arr = json_object_get(j, "channels");
    assert_true(json_array_size(arr) == 2); /* one per seller used */
    for (size_t i = 0; i < json_array_size(arr); i++) {
        uint8_t id[32];
        os_channel_state cs;
        os_chain_error err;
        const char *hex = json_string_value(json_object_get(json_array_get(arr, i), "channel_id"));
        assert_int_equal(os_hex_decode_exact(id, 32, hex), OS_OK);
        assert_int_equal(os_escrow_get_channel(fx.d.ch, &cs, &err, fx.d.escrow, id), OS_OK);
        assert_memory_equal(cs.payer, fx.wallet, 20);
        assert_true(cs.deposit >= 2000000);
    }
    json_decref(j);
    call_ex(&R, "GET", "/openseed/v1/ledger", NULL, NULL, NULL, NULL);
    assert_int_equal(R.status, 200);
    j = body_json(&R);
    assert_true(json_array_size(json_object_get(j, "requests")) >= 5);
    json_decref(j);
    call_ex(&R, "GET", "/openseed/v1/spend", NULL, NULL, NULL, NULL);
    assert_int_equal(R.status, 200);
    call_ex(&R, "GET", "/openseed/v1/peers", NULL, NULL, NULL, NULL);
    assert_int_equal(R.status, 200);
}

/* ---- the management API (docs/buyer-api.md) ---- */

/* GET path; asserts the status and returns the parsed body (the caller's). */
static json_t *get_json(const char *path, long status)
{
    call_ex(&R, "GET", path, NULL, NULL, NULL, NULL);
    if (R.status != status)
        fail_msg("GET %s: %ld, not %ld: %.300s", path, R.status, status, R.body);
    json_t *j = body_json(&R);
    if (j == NULL)
        fail_msg("GET %s: not JSON (%zu bytes)", path, R.len);
    return j;
}

/* GET path must be a 400 whose error code is `code`. */
static void expect_400(const char *path, const char *code)
{
    json_t *j = get_json(path, 400);
    const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    if (got == NULL || strcmp(got, code) != 0)
        fail_msg("GET %s: code %s, not %s", path, got != NULL ? got : "(none)", code);
    json_decref(j);
}

static uint64_t money(const json_t *v)
{
    uint64_t x = 0;
    assert_int_equal(os_money_parse_json(&x, v), OS_OK);
    return x;
}

static json_int_t jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not a JSON integer", key);
    return json_integer_value(v);
}

/* The whole ledger in one page (the fixture makes far fewer than 1000 requests). */
static json_t *ledger_all(void)
{
    json_t *j = get_json("/openseed/v1/ledger?limit=1000", 200);
    json_t *rq = json_object_get(j, "requests");
    assert_true(jint(j, "total") == (json_int_t)json_array_size(rq));
    assert_true(json_array_size(rq) < 1000);
    return j;
}

static bool row_matches(const json_t *row, const char *seller, const char *service,
                        const char *outcome, const char *api)
{
    return (seller == NULL ||
            strcasecmp(json_string_value(json_object_get(row, "seller")), seller) == 0) &&
           (service == NULL ||
            strcmp(json_string_value(json_object_get(row, "service")), service) == 0) &&
           (outcome == NULL ||
            strcmp(json_string_value(json_object_get(row, "outcome")), outcome) == 0) &&
           (api == NULL || strcmp(json_string_value(json_object_get(row, "api")), api) == 0);
}

/* limit/offset pages walk every request exactly once, newest first, each with the same total;
 * rows carry finished_at; the vouchers stay the newest `limit`, unfiltered. */
static void test_ledger_paging(void **state)
{
    json_t *all = ledger_all(), *rows = json_object_get(all, "requests"), *j, *row;
    size_t n = json_array_size(rows), seen = 0, i;
    char path[160];
    (void)state;

    assert_true(n >= 20); /* earlier tests made many requests: several pages */
    assert_int_equal(jint(all, "limit"), 1000);
    assert_int_equal(jint(all, "offset"), 0);
    json_array_foreach(rows, i, row)
    {
        const json_t *fin = json_object_get(row, "finished_at");
        if (i > 0)
            assert_true(jint(row, "id") < jint(json_array_get(rows, i - 1), "id"));
        if (strcmp(json_string_value(json_object_get(row, "outcome")), "in_flight") == 0) {
            assert_true(json_is_null(fin));
        } else {
            assert_true(json_is_integer(fin));
            assert_true(json_integer_value(fin) >= jint(row, "at"));
        }
    }
    /* the default page is 100 */
    j = get_json("/openseed/v1/ledger", 200);
    assert_int_equal(jint(j, "limit"), 100);
    assert_int_equal(jint(j, "offset"), 0);
    assert_int_equal(jint(j, "total"), (json_int_t)n);
    assert_int_equal(json_array_size(json_object_get(j, "requests")), n < 100 ? n : 100);
    json_decref(j);

    for (size_t off = 0; off < n + 7; off += 7) {
        snprintf(path, sizeof(path), "/openseed/v1/ledger?limit=7&offset=%zu", off);
        j = get_json(path, 200);
        json_t *page = json_object_get(j, "requests");
        assert_int_equal(jint(j, "total"), (json_int_t)n);
        assert_int_equal(jint(j, "limit"), 7);
        assert_int_equal(jint(j, "offset"), (json_int_t)off);
        assert_int_equal(json_array_size(page), off >= n ? 0 : n - off < 7 ? n - off : 7);
        assert_true(json_array_size(json_object_get(j, "vouchers")) == 7);
        json_array_foreach(page, i, row)
        {
            /* the same row as in the one big page, at the same place */
            assert_true(json_equal(row, json_array_get(rows, off + i)));
            seen++;
        }
        json_decref(j);
    }
    assert_int_equal(seen, n);
    /* an offset past the end: an empty page, the same total */
    j = get_json("/openseed/v1/ledger?offset=1000000000", 200);
    assert_int_equal(json_array_size(json_object_get(j, "requests")), 0);
    assert_int_equal(jint(j, "total"), (json_int_t)n);
    json_decref(j);
    json_decref(all);
}

/* Each filter (and two together) gives exactly the rows of the full ledger that match it. */
static void test_ledger_filters(void **state)
{
    json_t *all = ledger_all(), *rows = json_object_get(all, "requests");
    char lower[OS_ADDRESS_STR_LEN], upper[OS_ADDRESS_STR_LEN];
    /* query: the fixed part of the query string; seller: appended as seller=…, and matched */
    struct {
        const char *query;
        const char *seller, *service, *outcome, *api;
        bool proper; /* a strict, non-empty subset of the ledger */
    } cases[] = {
        {"", fx.a_hex, NULL, NULL, NULL, true},
        {"", fx.b_hex, NULL, NULL, NULL, true},
        {"", lower, NULL, NULL, NULL, true},
        {"", upper, NULL, NULL, NULL, true},
        {"service=echo", NULL, "echo", NULL, NULL, false},
        {"service=nothing-sold", NULL, "nothing-sold", NULL, NULL, false},
        {"outcome=ok", NULL, NULL, "ok", NULL, false},
        {"api=anthropic.messages", NULL, NULL, NULL, "anthropic.messages", true},
        {"api=openai.embeddings", NULL, NULL, NULL, "openai.embeddings", true},
        {"api=openai.chat", fx.a_hex, NULL, NULL, "openai.chat", true},
        {"service=&seller=", NULL, NULL, NULL, NULL, false}, /* empty: no filter */
    };
    char q[256], path[320];
    size_t i;
    json_t *row;
    (void)state;

    /* the same address all lower case and all upper case (no checksum to check) */
    snprintf(lower, sizeof(lower), "%s", fx.a_hex);
    snprintf(upper, sizeof(upper), "%s", fx.a_hex);
    for (size_t k = 2; lower[k] != '\0'; k++) {
        lower[k] = (char)(lower[k] >= 'A' && lower[k] <= 'F' ? lower[k] + 32 : lower[k]);
        upper[k] = (char)(upper[k] >= 'a' && upper[k] <= 'f' ? upper[k] - 32 : upper[k]);
    }
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t want = 0, got_i = 0;
        snprintf(q, sizeof(q), "%s%s%s", cases[c].query, cases[c].seller != NULL ? "&seller=" : "",
                 cases[c].seller != NULL ? cases[c].seller : "");
        snprintf(path, sizeof(path), "/openseed/v1/ledger?limit=1000&%s", q);
        json_t *j = get_json(path, 200), *page = json_object_get(j, "requests");
        json_array_foreach(rows, i, row)
        {
            if (!row_matches(row, cases[c].seller, cases[c].service, cases[c].outcome,
                             cases[c].api))
                continue;
            want++;
            /* in order: the next row of the filtered page is this one */
            if (!json_equal(json_array_get(page, got_i++), row))
                fail_msg("%s: row %zu differs from the ledger's", q, got_i - 1);
        }
        if (jint(j, "total") != (json_int_t)want || json_array_size(page) != want)
            fail_msg("%s: total %lld, %zu rows; want %zu", q, (long long)jint(j, "total"),
                     json_array_size(page), want);
        if (cases[c].proper && (want == 0 || want >= json_array_size(rows)))
            fail_msg("%s: %zu of %zu rows: the filter is not tested", q, want,
                     json_array_size(rows));
        json_decref(j);
    }
    /* a filtered page with paging: the second row of seller A's requests */
    snprintf(path, sizeof(path), "/openseed/v1/ledger?seller=%s&limit=1&offset=1", fx.a_hex);
    json_t *j = get_json(path, 200);
    size_t k = 0;
    json_array_foreach(rows, i, row)
    {
        if (row_matches(row, fx.a_hex, NULL, NULL, NULL) && k++ == 1) {
            assert_true(json_equal(json_array_get(json_object_get(j, "requests"), 0), row));
            break;
        }
    }
    assert_int_equal(k, 2);
    assert_int_equal(json_array_size(json_object_get(j, "requests")), 1);
    json_decref(j);
    json_decref(all);
}

static void test_management_bad_args(void **state)
{
    char path[320], bad[OS_ADDRESS_STR_LEN], long_s[200];
    (void)state;

    expect_400("/openseed/v1/ledger?limit=0", "invalid_limit");
    expect_400("/openseed/v1/ledger?limit=1001", "invalid_limit");
    expect_400("/openseed/v1/ledger?limit=", "invalid_limit");
    expect_400("/openseed/v1/ledger?limit=ten", "invalid_limit");
    expect_400("/openseed/v1/ledger?limit=-5", "invalid_limit");
    expect_400("/openseed/v1/ledger?limit=1e2", "invalid_limit");
    expect_400("/openseed/v1/ledger?limit=%2B5", "invalid_limit"); /* "+5" */
    expect_400("/openseed/v1/ledger?limit=99999999999999999999999", "invalid_limit");
    expect_400("/openseed/v1/ledger?offset=-1", "invalid_offset");
    expect_400("/openseed/v1/ledger?offset=1000000001", "invalid_offset");
    expect_400("/openseed/v1/ledger?offset=0x10", "invalid_offset");
    expect_400("/openseed/v1/ledger?seller=0x12", "invalid_seller");
    expect_400("/openseed/v1/ledger?seller=alice", "invalid_seller");
    /* mixed case with one letter's case flipped: a wrong EIP-55 checksum */
    snprintf(bad, sizeof(bad), "%s", fx.a_hex);
    for (size_t k = 2; bad[k] != '\0'; k++)
        if ((bad[k] >= 'a' && bad[k] <= 'f') || (bad[k] >= 'A' && bad[k] <= 'F')) {
            bad[k] ^= 0x20;
            break;
        }
    snprintf(path, sizeof(path), "/openseed/v1/ledger?seller=%s", bad);
    expect_400(path, "invalid_seller");
    memset(long_s, 's', 129);
    long_s[129] = '\0';
    snprintf(path, sizeof(path), "/openseed/v1/ledger?service=%s", long_s);
    expect_400(path, "invalid_filter");
    snprintf(path, sizeof(path), "/openseed/v1/ledger?outcome=%s", long_s);
    expect_400(path, "invalid_filter");
    snprintf(path, sizeof(path), "/openseed/v1/ledger?api=%s", long_s);
    expect_400(path, "invalid_filter");
    /* the bounds themselves are fine */
    long_s[128] = '\0';
    snprintf(path, sizeof(path), "/openseed/v1/ledger?limit=1&offset=1000000000&api=%s", long_s);
    json_decref(get_json(path, 200));
    json_decref(get_json("/openseed/v1/ledger?limit=1000&offset=0", 200));

    expect_400("/openseed/v1/spend/series?step=0", "invalid_step");
    expect_400("/openseed/v1/spend/series?step=2592001", "invalid_step");
    expect_400("/openseed/v1/spend/series?step=1m", "invalid_step");
    expect_400("/openseed/v1/spend/series?step=", "invalid_step");
    expect_400("/openseed/v1/spend/series?points=0", "invalid_points");
    expect_400("/openseed/v1/spend/series?points=1001", "invalid_points");
    expect_400("/openseed/v1/spend/series?points=-1", "invalid_points");
    json_decref(get_json("/openseed/v1/spend/series?step=2592000&points=1000", 200));
    json_decref(get_json("/openseed/v1/spend/series?step=1&points=1", 200));

    /* the management API keeps its guards */
    call_ex(&R, "GET", "/openseed/v1/spend/series", NULL, NULL, NULL, "evil.example");
    assert_int_equal(R.status, 403);
    call_ex(&R, "GET", "/openseed/v1/ledger?limit=5", NULL, "Origin", "https://evil.example", NULL);
    assert_int_equal(R.status, 403);
}

/* Checks the shape and alignment of one series answer asked at a time in [t0, t1]. */
static void series_shape(const json_t *j, uint64_t step, size_t points, time_t t0, time_t t1)
{
    const json_t *pts = json_object_get(j, "points");
    json_int_t from = jint(j, "from"), to = jint(j, "to");

    assert_int_equal(jint(j, "step"), (json_int_t)step);
    assert_int_equal(json_array_size(pts), points);
    assert_true(from % (json_int_t)step == 0);
    assert_true(to == from + (json_int_t)(points * step));
    /* the last bucket holds now */
    assert_true(to - (json_int_t)step <= (json_int_t)t1);
    assert_true(to > (json_int_t)t0);
    for (size_t i = 0; i < points; i++) {
        const json_t *p = json_array_get(pts, i);
        assert_int_equal(jint(p, "t"), from + (json_int_t)(i * step));
        (void)money(json_object_get(p, "spent"));
        assert_true(jint(p, "requests") >= 0);
        assert_true(jint(p, "input_tokens") >= 0);
        assert_true(jint(p, "output_tokens") >= 0);
    }
}

/* The spend series: aligned buckets, all present, and each bucket holds exactly the finished
 * requests of the ledger that ended in it; per_service carries the same tokens. */
static void test_spend_series(void **state)
{
    json_t *all = ledger_all(), *rows = json_object_get(all, "requests"), *j, *row;
    uint64_t steps[] = {7, 60, 3600};
    size_t i;
    (void)state;

    /* defaults: 60 points of 60 s */
    time_t t0 = time(NULL);
    j = get_json("/openseed/v1/spend/series", 200);
    series_shape(j, 60, 60, t0, time(NULL));
    json_decref(j);

    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        uint64_t step = steps[s], total_spent = 0, total_n = 0, want_spent = 0;
        size_t points = 1000;
        char path[128];
        snprintf(path, sizeof(path), "/openseed/v1/spend/series?step=%llu&points=%zu",
                 (unsigned long long)step, points);
        t0 = time(NULL);
        j = get_json(path, 200);
        series_shape(j, step, points, t0, time(NULL));
        json_int_t from = jint(j, "from"), to = jint(j, "to");
        json_t *pts = json_object_get(j, "points");
        uint64_t *sp = calloc(points, sizeof(*sp)), *n = calloc(points, sizeof(*n));
        uint64_t *in = calloc(points, sizeof(*in)), *out = calloc(points, sizeof(*out));
        size_t zero = 0;
        assert_true(sp != NULL && n != NULL && in != NULL && out != NULL);
        json_array_foreach(rows, i, row)
        {
            const json_t *fin = json_object_get(row, "finished_at");
            json_int_t t = json_is_integer(fin) ? json_integer_value(fin) : jint(row, "at");
            if (strcmp(json_string_value(json_object_get(row, "outcome")), "in_flight") == 0 ||
                t < from || t >= to)
                continue;
            size_t b = (size_t)((t - from) / (json_int_t)step);
            sp[b] += money(json_object_get(row, "cost"));
            n[b]++;
            in[b] += (uint64_t)jint(row, "input_tokens");
            out[b] += (uint64_t)jint(row, "output_tokens");
            want_spent += money(json_object_get(row, "cost"));
        }
        for (size_t k = 0; k < points; k++) {
            const json_t *p = json_array_get(pts, k);
            if (money(json_object_get(p, "spent")) != sp[k] ||
                (uint64_t)jint(p, "requests") != n[k] ||
                (uint64_t)jint(p, "input_tokens") != in[k] ||
                (uint64_t)jint(p, "output_tokens") != out[k])
                fail_msg("step %llu, bucket %zu (t=%lld): not the ledger's sums",
                         (unsigned long long)step, k, (long long)jint(p, "t"));
            total_spent += sp[k];
            total_n += n[k];
            zero += n[k] == 0;
        }
        /* everything the tests bought so far is in range, and cost something */
        assert_true(want_spent > 0);
        assert_true(total_spent == want_spent);
        assert_true(total_n == json_array_size(rows));
        assert_true(zero > 0); /* zero-filled buckets are there too */
        free(sp);
        free(n);
        free(in);
        free(out);
        json_decref(j);
    }

    /* per_service: the tokens of the finished requests of each service */
    j = get_json("/openseed/v1/spend", 200);
    json_t *svc;
    bool echo = false;
    json_array_foreach(json_object_get(j, "per_service"), i, svc)
    {
        const char *name = json_string_value(json_object_get(svc, "service"));
        uint64_t win = 0, wout = 0, wn = 0, wspent = 0;
        size_t k;
        json_array_foreach(rows, k, row)
        {
            if (strcmp(json_string_value(json_object_get(row, "service")), name) != 0 ||
                strcmp(json_string_value(json_object_get(row, "outcome")), "in_flight") == 0)
                continue;
            win += (uint64_t)jint(row, "input_tokens");
            wout += (uint64_t)jint(row, "output_tokens");
            wspent += money(json_object_get(row, "cost"));
            wn++;
        }
        assert_true((uint64_t)jint(svc, "input_tokens") == win);
        assert_true((uint64_t)jint(svc, "output_tokens") == wout);
        assert_true((uint64_t)jint(svc, "requests") == wn);
        assert_true(money(json_object_get(svc, "spent")) == wspent);
        if (strcmp(name, "echo") == 0)
            echo = win > 0 && wout > 0;
    }
    assert_true(echo);
    json_decref(j);
    json_decref(all);
}

/* /openseed/v1/peers: each seller's offerings with the prices it was configured with, and the
 * success rate from the observed counts. */
static void test_peers_offerings(void **state)
{
    struct {
        const char *hex, *spec, *input, *output;
        size_t n_apis;
    } want[] = {
        /* A_OFFERING / B_OFFERING: USDC per million tokens, in micro-USDC */
        {fx.a_hex, A_OFFERING, "500000", "1500000", 3},
        {fx.b_hex, B_OFFERING, "400000", "1200000", 2},
    };
    json_t *j = get_json("/openseed/v1/peers", 200), *peer;
    size_t i, found = 0;
    char why[WHY];
    (void)state;

    json_array_foreach(json_object_get(j, "peers"), i, peer)
    {
        const json_t *obs = json_object_get(peer, "observed"), *rate;
        json_int_t ok = jint(obs, "successes"), fail = jint(obs, "failures");

        rate = json_object_get(peer, "success_rate");
        if (ok + fail == 0) {
            assert_true(json_is_null(rate));
        } else {
            assert_true(json_is_real(rate));
            double r = (double)ok / (double)(ok + fail);
            assert_true(json_real_value(rate) > r - 1e-9 && json_real_value(rate) < r + 1e-9);
        }
        for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
            os_offering off;
            if (strcmp(json_string_value(json_object_get(peer, "node")), want[w].hex) != 0)
                continue;
            found++;
            assert_int_equal(sl_offering_parse(&off, want[w].spec, why, sizeof(why)), OS_OK);
            json_t *offs = json_object_get(peer, "offerings"), *o = json_array_get(offs, 0);
            assert_int_equal(json_array_size(offs), 1);
            assert_string_equal(json_string_value(json_object_get(o, "model")), "echo-1");
            assert_int_equal(json_array_size(json_object_get(o, "services")), 1);
            assert_string_equal(
                json_string_value(json_array_get(json_object_get(o, "services"), 0)), "echo");
            assert_int_equal(json_array_size(json_object_get(o, "apis")), want[w].n_apis);
            assert_string_equal(json_string_value(json_array_get(json_object_get(o, "apis"), 0)),
                                "openai.chat");
            assert_string_equal(json_string_value(json_object_get(o, "input_price")),
                                want[w].input);
            assert_string_equal(json_string_value(json_object_get(o, "output_price")),
                                want[w].output);
            /* no cached= configured: the cached price is the input price */
            assert_string_equal(json_string_value(json_object_get(o, "cached_price")),
                                want[w].input);
            assert_true(money(json_object_get(o, "input_price")) == off.pricing.input);
            assert_true(money(json_object_get(o, "output_price")) == off.pricing.output);
            assert_int_equal(jint(o, "max_output_tokens"), 1024);
            /* both were used successfully by now */
            assert_true(ok > 0);
        }
    }
    assert_int_equal(found, 2);
    json_decref(j);
}

static void test_client_leaves_mid_stream(void **state)
{
    char body[4096];
    size_t n = 0;
    sl_echo *e = sl_seller_echo(fx.a);
    uint64_t before = sl_echo_cancellations(e);
    (void)state;

    n += (size_t)snprintf(body + n, sizeof(body) - n,
                          "{\"model\":\"echo\",\"stream\":true,\"max_tokens\":1000,\"messages\":"
                          "[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, " w");
    snprintf(body + n, sizeof(body) - n, "\"}]}");
    R.stop_after = 3;
    post(&R, "/v1/chat/completions", body, "X-OpenSeed-Peer", fx.a_hex);
    R.stop_after = 0;
    for (int i = 0; i < 50 && sl_echo_cancellations(e) == before; i++)
        rc_sleep_ms(100);
    assert_true(sl_echo_cancellations(e) == before + 1);
}

/* Decodes every PAYMENT-SIGNATURE header the proxy saw and counts those that mention needle (hex
 * text, any case); *total gets how many headers there were. */
static size_t payment_headers_with(wire_proxy *p, const char *needle, size_t *total)
{
    static const char name[] = "PAYMENT-SIGNATURE: ";
    size_t hits = 0, i = 0;

    *total = 0;
    pthread_mutex_lock(&p->mu);
    while (i + sizeof(name) < p->seen_len) {
        const unsigned char *at = memmem(p->seen + i, p->seen_len - i, name, sizeof(name) - 1);
        if (at == NULL)
            break;
        const unsigned char *v = at + sizeof(name) - 1;
        const unsigned char *end = memchr(v, '\r', p->seen_len - (size_t)(v - p->seen));
        if (end == NULL)
            break;
        uint8_t *dec = NULL;
        size_t dlen = 0;
        if (os_base64_decode_alloc(&dec, &dlen, (const char *)v, (size_t)(end - v), 8192) ==
            OS_OK) {
            (*total)++;
            for (size_t k = 0; k + strlen(needle) <= dlen; k++)
                if (strncasecmp((const char *)dec + k, needle, strlen(needle)) == 0) {
                    hits++;
                    break;
                }
            free(dec);
        }
        i = (size_t)(end - p->seen);
    }
    pthread_mutex_unlock(&p->mu);
    return hits;
}

static void test_wallet_never_on_the_wire(void **state)
{
    char wallet[41], seller[41];
    size_t total = 0;
    (void)state;

    assert_true(wp_bytes(&fx.a_proxy) > 1000);  /* the buyer did talk to A through it */
    assert_true(wp_bytes(&fx.reg_proxy) > 100); /* and to the registry */
    assert_int_equal(os_hex_encode(wallet, sizeof(wallet), fx.wallet, 20, 0), OS_OK);
    assert_int_equal(os_hex_encode(seller, sizeof(seller), fx.a_addr, 20, 0), OS_OK);
    /* raw bytes, hex text in any case (EIP-55 included) */
    assert_false(wp_seen(&fx.a_proxy, wallet, 40, true));
    assert_false(wp_seen(&fx.a_proxy, fx.wallet, 20, false));
    assert_false(wp_seen(&fx.reg_proxy, wallet, 40, true));
    assert_false(wp_seen(&fx.reg_proxy, fx.wallet, 20, false));
    /* inside the base64 payment headers: the seller's address is there (payTo), proving the
     * search sees into them; the wallet's is not */
    assert_true(payment_headers_with(&fx.a_proxy, seller, &total) > 0);
    assert_true(total > 0);
    assert_int_equal(payment_headers_with(&fx.a_proxy, wallet, &total), 0);
}

static void test_mid_stream_failure(void **state)
{
    sl_echo *e = sl_seller_echo(fx.a);
    (void)state;

    sl_echo_set_fail(e, SL_ECHO_FAIL_DROP); /* the upstream stops after 3 tokens */
    post(&R, "/v1/chat/completions",
         "{\"model\":\"echo\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
         "\"a b c d e f g\"}]}",
         "X-OpenSeed-Peer", fx.a_hex);
    sl_echo_set_fail(e, SL_ECHO_FAIL_NONE);
    assert_int_equal(R.status, 200);
    assert_non_null(strstr(R.body, "\"content\":\"echo:\""));
    assert_non_null(strstr(R.body, "\"error\""));
    assert_null(strstr(R.body, "[DONE]")); /* never a clean end */

    sl_echo_set_fail(e, SL_ECHO_FAIL_DROP);
    post(&R, "/v1/messages",
         "{\"model\":\"echo\",\"max_tokens\":64,\"stream\":true,\"messages\":[{\"role\":"
         "\"user\",\"content\":\"a b c d e f g\"}]}",
         "X-OpenSeed-Peer", fx.a_hex);
    sl_echo_set_fail(e, SL_ECHO_FAIL_NONE);
    assert_int_equal(R.status, 200);
    assert_non_null(strstr(R.body, "event: error"));
    assert_null(strstr(R.body, "event: message_stop"));
}

static void test_budget(void **state)
{
    by_buyer *tight = NULL;
    char dir[256], base[64];
    (void)state;

    snprintf(dir, sizeof(dir), "%s/buyer-budget", fx.dir);
    assert_int_equal(start_buyer(&tight, dir, 1, NULL), 0); /* 1 micro-USDC per request */
    snprintf(base, sizeof(base), "%s", fx.base);
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", (unsigned)by_buyer_port(tight));
    post(&R, "/v1/chat/completions",
         "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"too dear\"}]}",
         NULL, NULL);
    snprintf(fx.base, sizeof(fx.base), "%s", base);
    by_buyer_free(tight);
    assert_int_equal(R.status, 402);
    json_t *j = body_json(&R);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "error"), "code")), "budget_exhausted");
    json_decref(j);
}

/* The buyer forgets what its channels consumed (buyer.db edited while it is down): the sellers'
 * 402 invoices put it right, within what it had authorised. */
static void test_api_key_and_body_cap(void **state)
{
    by_buyer *locked = NULL;
    char dir[256], base[64];
    static const char chat[] =
        "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"key\"}]}";
    (void)state;

    snprintf(dir, sizeof(dir), "%s/buyer-key", fx.dir);
    assert_int_equal(start_buyer(&locked, dir, 0, "sk-local-secret"), 0);
    snprintf(base, sizeof(base), "%s", fx.base);
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", (unsigned)by_buyer_port(locked));
    post(&R, "/v1/chat/completions", chat, NULL, NULL);
    assert_int_equal(R.status, 401);
    post(&R, "/v1/chat/completions", chat, "Authorization", "Bearer sk-wrong");
    assert_int_equal(R.status, 401);
    post(&R, "/v1/models", NULL, "Authorization", "Bearer sk-local-secret"); /* wrong method */
    assert_int_equal(R.status, 405);
    post(&R, "/v1/chat/completions", chat, "Authorization", "Bearer sk-local-secret");
    assert_int_equal(R.status, 200);
    post(&R, "/v1/messages",
         "{\"model\":\"echo\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
         "\"content\":\"key\"}]}",
         "x-api-key", "sk-local-secret");
    assert_int_equal(R.status, 200);
    snprintf(fx.base, sizeof(fx.base), "%s", base);
    by_buyer_free(locked);

    /* over the 8 MiB default body cap: 413 before anything is read or relayed */
    size_t big = (8u << 20) + 4096;
    char *body = malloc(big + 1);
    assert_non_null(body);
    memset(body, 'x', big);
    body[big] = '\0';
    post(&R, "/v1/chat/completions", body, NULL, NULL);
    free(body);
    assert_int_equal(R.status, 413);
}

static void test_402_reconciliation(void **state)
{
    char path[256];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int adjustments = -1;
    (void)state;

    by_buyer_free(fx.buyer);
    fx.buyer = NULL;
    snprintf(path, sizeof(path), "%s/buyer.db", fx.buyer_dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE channels SET consumed = 0", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_true(sqlite3_changes(db) >= 1);
    /* and a buyer.db of schema version 1 (before the spend series' index): reopening migrates */
    assert_int_equal(sqlite3_exec(db, "DROP INDEX requests_by_end; PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(start_buyer(&fx.buyer, fx.buyer_dir, 0, NULL), 0);
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", (unsigned)by_buyer_port(fx.buyer));
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT user_version FROM pragma_user_version),"
                                        " (SELECT count(*) FROM sqlite_master"
                                        "  WHERE type = 'index' AND name = 'requests_by_end')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    st = NULL;
    sqlite3_close(db);

    post(&R, "/v1/chat/completions",
         "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"reconcile\"}]}",
         "X-OpenSeed-Peer", fx.a_hex);
    assert_int_equal(R.status, 200);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM adjustments", -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        adjustments = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(adjustments >= 1); /* the seller's consumed was adopted */
}

static void test_registry_down_warm_cache(void **state)
{
    static const char chat[] =
        "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"cached\"}]}";
    (void)state;

    rg_registry_stop(fx.rg);
    rc_sleep_ms(700); /* past the listing's TTL */
    post(&R, "/v1/chat/completions", chat, NULL, NULL);
    assert_int_equal(R.status, 200);
}

/* POST /openseed/v1/channels (409 with the id when B already has one) and …/{id}/topup: the
 * deposit on chain grows by exactly the amount; spend shows the requests per service. */
static void test_open_topup_spend(void **state)
{
    char body[128], path[160], id[67] = "";
    uint8_t cid[32];
    os_channel_state before, after;
    os_chain_error err;
    json_t *j;
    bool echo = false;
    (void)state;

    snprintf(body, sizeof(body), "{\"seller\":\"%s\"}", fx.b_hex);
    post(&R, "/openseed/v1/channels", body, NULL, NULL);
    assert_true(R.status == 200 || R.status == 409);
    j = body_json(&R);
    assert_non_null(j);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "channel_id")));
    if (R.status == 200)
        assert_string_equal(json_string_value(json_object_get(j, "seller")), fx.b_hex);
    json_decref(j);
    assert_int_equal(os_hex_decode_exact(cid, 32, id), OS_OK);
    /* opened (or found) once: asking again is a 409 with the same id */
    post(&R, "/openseed/v1/channels", body, NULL, NULL);
    assert_int_equal(R.status, 409);
    j = body_json(&R);
    assert_string_equal(json_string_value(json_object_get(j, "channel_id")), id);
    json_decref(j);
    /* bad bodies */
    post(&R, "/openseed/v1/channels", "{\"seller\":\"0x12\"}", NULL, NULL);
    assert_int_equal(R.status, 400);
    snprintf(body, sizeof(body), "{\"seller\":\"%s\",\"amount\":1}", fx.b_hex);
    post(&R, "/openseed/v1/channels", body, NULL, NULL);
    assert_int_equal(R.status, 400); /* amounts are strings */

    assert_int_equal(os_escrow_get_channel(fx.d.ch, &before, &err, fx.d.escrow, cid), OS_OK);
    snprintf(path, sizeof(path), "/openseed/v1/channels/%s/topup", id);
    post(&R, path, "{\"amount\":\"0\"}", NULL, NULL);
    assert_int_equal(R.status, 400);
    post(&R, path, "{}", NULL, NULL);
    assert_int_equal(R.status, 400);
    post(&R, path, "{\"amount\":\"1000000\"}", NULL, NULL);
    assert_int_equal(R.status, 200);
    assert_int_equal(os_escrow_get_channel(fx.d.ch, &after, &err, fx.d.escrow, cid), OS_OK);
    assert_true(after.deposit == before.deposit + 1000000);
    j = body_json(&R);
    assert_string_equal(json_string_value(json_object_get(j, "channel_id")), id);
    {
        uint64_t dep = 0;
        assert_int_equal(os_money_parse_json(&dep, json_object_get(j, "deposit")), OS_OK);
        assert_true(dep == after.deposit);
    }
    json_decref(j);
    snprintf(path, sizeof(path), "/openseed/v1/channels/0x%064d/topup", 7);
    post(&R, path, "{\"amount\":\"1000000\"}", NULL, NULL);
    assert_int_equal(R.status, 404);

    call_ex(&R, "GET", "/openseed/v1/spend", NULL, NULL, NULL, NULL);
    assert_int_equal(R.status, 200);
    j = body_json(&R);
    {
        json_t *per = json_object_get(j, "per_service"), *e;
        size_t i;
        json_array_foreach(per, i, e)
        {
            if (strcmp(json_string_value(json_object_get(e, "service")), "echo") == 0) {
                echo = true;
                assert_true(json_integer_value(json_object_get(e, "requests")) >= 1);
            }
        }
        assert_true(json_array_size(json_object_get(j, "per_day")) >= 1);
        assert_non_null(json_object_get(j, "per_seller"));
    }
    json_decref(j);
    assert_true(echo);
}

static void test_failover(void **state)
{
    static const char chat[] =
        "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"fail over\"}]}";
    (void)state;

    sl_seller_stop(fx.b); /* B ranks first; it is gone now */
    post(&R, "/v1/chat/completions", chat, NULL, NULL);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.peer, fx.a_hex);
    /* pinned to the dead seller: a clear error, no failover */
    post(&R, "/v1/chat/completions", chat, "X-OpenSeed-Peer", fx.b_hex);
    assert_true(R.status == 502 || R.status == 503);
}

static void test_close_and_withdraw(void **state)
{
    static const char chat[] =
        "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"again\"}]}";
    char path[160], why[WHY], id[67] = "";
    (void)state;

    call_ex(&R, "GET", "/openseed/v1/channels", NULL, NULL, NULL, NULL);
    json_t *j = body_json(&R), *arr = json_object_get(j, "channels");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *c = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(c, "seller")), fx.a_hex) == 0 &&
            strcmp(json_string_value(json_object_get(c, "state")), "open") == 0)
            snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(c, "channel_id")));
    }
    json_decref(j);
    assert_int_equal(strlen(id), 66);

    snprintf(path, sizeof(path), "/openseed/v1/channels/%s/withdraw", id);
    post(&R, path, NULL, NULL, NULL);
    assert_int_equal(R.status, 409); /* no close requested yet */
    snprintf(path, sizeof(path), "/openseed/v1/channels/%s/close", id);
    post(&R, path, NULL, NULL, NULL);
    assert_int_equal(R.status, 200);
    /* a closing channel is not used: A was the only seller left, so nothing can serve now */
    post(&R, "/v1/chat/completions", chat, NULL, NULL);
    assert_true(R.status >= 500);
    /* after the grace period the deposit's remainder comes back and a new channel serves */
    assert_int_equal(devchain_advance(&fx.d, 901, why, sizeof(why)), 0);
    snprintf(path, sizeof(path), "/openseed/v1/channels/%s/withdraw", id);
    post(&R, path, NULL, NULL, NULL);
    assert_int_equal(R.status, 200);
    /* a new channel on command (rather than on first use), with its own deposit */
    char body[160];
    snprintf(body, sizeof(body), "{\"seller\":\"%s\",\"amount\":\"1500000\"}", fx.a_hex);
    post(&R, "/openseed/v1/channels", body, NULL, NULL);
    assert_int_equal(R.status, 200);
    j = body_json(&R);
    const char *nid = json_string_value(json_object_get(j, "channel_id"));
    assert_non_null(nid);
    assert_string_not_equal(nid, id);
    uint8_t nb[32];
    os_channel_state cs;
    os_chain_error cerr;
    assert_int_equal(os_hex_decode_exact(nb, 32, nid), OS_OK);
    assert_int_equal(os_escrow_get_channel(fx.d.ch, &cs, &cerr, fx.d.escrow, nb), OS_OK);
    assert_true(cs.deposit == 1500000);
    assert_memory_equal(cs.seller, fx.a_addr, 20);
    json_decref(j);
    post(&R, "/v1/chat/completions", chat, NULL, NULL);
    assert_int_equal(R.status, 200);
    post(&R, "/openseed/v1/channels/0x12/close", NULL, NULL, NULL);
    assert_int_equal(R.status, 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_openai_chat),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_anthropic_native_and_translated),
        cmocka_unit_test(test_pin_and_price_caps),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_ledger_and_channels),
        cmocka_unit_test(test_ledger_paging),
        cmocka_unit_test(test_ledger_filters),
        cmocka_unit_test(test_management_bad_args),
        cmocka_unit_test(test_spend_series),
        cmocka_unit_test(test_peers_offerings),
        cmocka_unit_test(test_client_leaves_mid_stream),
        cmocka_unit_test(test_wallet_never_on_the_wire),
        cmocka_unit_test(test_mid_stream_failure),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_api_key_and_body_cap),
        cmocka_unit_test(test_402_reconciliation),
        cmocka_unit_test(test_registry_down_warm_cache),
        cmocka_unit_test(test_open_topup_spend),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_close_and_withdraw),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
