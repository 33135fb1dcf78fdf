/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON-RPC client against a scripted HTTP server on loopback (a thread in this process that
 * answers each connection with the next scripted status and body), so retry, cap and validation
 * rules can be checked exactly: which answers are retried and how often, which are refused, and
 * how JSON-RPC errors and reverts are reported. Quantities follow the Ethereum JSON-RPC
 * specification's encoding rules
 * (https://ethereum.org/en/developers/docs/apis/json-rpc/#hex-encoding: "0x41", "0x400", "0x0"
 * valid; "0x", "0x0400", "ff" invalid). The real node is exercised by
 * tests/integration/test_chain.c.
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

#include "openseed/chain.h"

/* ---- scripted server --------------------------------------------------------------------- */

typedef struct step {
    int status;       /* HTTP status */
    const char *body; /* "%ID%" is replaced by the request's id */
    int hang_ms;      /* sleep before answering */
} step;

typedef struct server {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    const step *script;
    size_t n_steps;
    atomic_int served;
    char methods[16][48]; /* the method of each request, in order */
} server;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies the JSON string value following "key": in req into out. */
static void find_str(char *out, size_t cap, const char *req, const char *key)
{
    const char *p = strstr(req, key);
    size_t i = 0;
    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen(key);
    while (*p == '"' || *p == ':')
        p++;
    while (*p && *p != '"' && *p != ',' && *p != '}' && i + 1 < cap)
        out[i++] = *p++;
    out[i] = '\0';
}

static void serve_one(server *s, int c, size_t idx)
{
    char req[65536], id[32], *hdr_end, *resp;
    size_t got = 0, need = 0, blen;
    const step *st;
    static const step exhausted = {500, "script exhausted", 0};

    for (;;) {
        ssize_t r = read(c, req + got, sizeof(req) - 1 - got);
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = '\0';
        hdr_end = strstr(req, "\r\n\r\n");
        if (hdr_end != NULL) {
            char *cl = strstr(req, "Content-Length:");
            need = (size_t)(hdr_end - req) + 4 + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            if (got >= need)
                break;
        }
        if (got == sizeof(req) - 1)
            return;
    }
    find_str(id, sizeof(id), hdr_end, "\"id\"");
    if (idx < 16)
        find_str(s->methods[idx], sizeof(s->methods[idx]), hdr_end, "\"method\"");
    st = idx < s->n_steps ? &s->script[idx] : &exhausted;
    if (st->hang_ms > 0)
        usleep((useconds_t)st->hang_ms * 1000);
    blen = strlen(st->body) + 64;
    resp = malloc(blen + 256);
    assert_non_null(resp);
    {
        /* substitute the id */
        char body[70000];
        const char *tag = strstr(st->body, "%ID%");
        if (tag != NULL)
            snprintf(body, sizeof(body), "%.*s%s%s", (int)(tag - st->body), st->body, id, tag + 4);
        else
            snprintf(body, sizeof(body), "%s", st->body);
        int n =
            snprintf(resp, blen + 256,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     st->status, strlen(body), body);
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = write(c, resp + off, (size_t)(n - off));
            if (w <= 0)
                break;
            off += w;
        }
    }
    free(resp);
}

static void *server_main(void *arg)
{
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int c;
        if (poll(&p, 1, 20) <= 0)
            continue;
        c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(s, c, (size_t)atomic_fetch_add(&s->served, 1));
        close(c);
    }
    return NULL;
}

static void server_start(server *s, const step *script, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    memset(s, 0, sizeof(*s));
    s->script = script;
    s->n_steps = n;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static int server_stop(server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
    return atomic_load(&s->served);
}

/* A client for the server with fast retries. */
static os_chain *client(const server *s, unsigned retries, size_t cap)
{
    char url[64];
    os_chain_config cfg;
    os_chain *ch;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/rpc", s->port);
    os_chain_config_default(&cfg, url);
    cfg.max_retries = retries;
    cfg.retry_base_ms = 10;
    cfg.retry_max_ms = 40;
    cfg.request_timeout_ms = 2000;
    if (cap)
        cfg.max_response = cap;
    assert_int_equal(os_chain_new(&ch, &cfg), OS_OK);
    return ch;
}

#define OK_RESULT(r) "{\"jsonrpc\":\"2.0\",\"id\":%ID%,\"result\":" r "}"

/* ---- tests ------------------------------------------------------------------------------- */

static void test_quantities(void **state)
{
    static const struct {
        const char *s;
        os_err want;
        uint64_t v;
    } v[] = {
        {"0x0", OS_OK, 0},
        {"0x41", OS_OK, 65},
        {"0x400", OS_OK, 1024},
        {"0xffffffffffffffff", OS_OK, UINT64_MAX},
        {"0xABC", OS_OK, 0xabc},
        {"0x", OS_ERR_INVALID, 0},
        {"0x0400", OS_ERR_INVALID, 0},
        {"0x00", OS_ERR_INVALID, 0},
        {"ff", OS_ERR_INVALID, 0},
        {"0X10", OS_ERR_INVALID, 0},
        {"0x1g", OS_ERR_INVALID, 0},
        {"0x-1", OS_ERR_INVALID, 0},
        {"", OS_ERR_INVALID, 0},
        {"0x10000000000000000", OS_ERR_RANGE, 0},
    };
    char out[OS_CHAIN_QUANTITY_LEN];
    os_u256 big;
    uint64_t x;
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        os_err e = os_chain_quantity_u64(&x, v[i].s);
        if (e != v[i].want || (e == OS_OK && x != v[i].v))
            fail_msg("%s: err %d value %llu", v[i].s, e, (unsigned long long)x);
    }
    assert_int_equal(os_chain_quantity_u64(&x, NULL), OS_ERR_INVALID);
    assert_int_equal(os_chain_quantity_u256(&big, "0x21e19e0c9bab2400000"), OS_OK); /* 10000 ETH */
    tu_assert_hex(big.be, 32, "00000000000000000000000000000000000000000000021e19e0c9bab2400000");
    assert_int_equal(
        os_chain_quantity_u256(
            &big, "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
        OS_OK);
    assert_int_equal(big.be[0], 0xff);
    assert_int_equal(
        os_chain_quantity_u256(
            &big, "0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
        OS_ERR_RANGE);
    assert_int_equal(os_chain_quantity_u256(&big, "0x01"), OS_ERR_INVALID);
    os_chain_quantity_format(out, 0);
    assert_string_equal(out, "0x0");
    os_chain_quantity_format(out, UINT64_MAX);
    assert_string_equal(out, "0xffffffffffffffff");
}

static void test_config_checks(void **state)
{
    os_chain_config cfg;
    os_chain *ch = (os_chain *)1;
    (void)state;
    os_chain_config_default(&cfg, "ftp://127.0.0.1/");
    assert_int_equal(os_chain_new(&ch, &cfg), OS_ERR_INVALID);
    assert_null(ch);
    os_chain_config_default(&cfg, "http://127.0.0.1:1/");
    cfg.request_timeout_ms = 0;
    assert_int_equal(os_chain_new(&ch, &cfg), OS_ERR_INVALID);
    os_chain_config_default(&cfg, "http://127.0.0.1:1/");
    cfg.n_custom_errors = 1;
    assert_int_equal(os_chain_new(&ch, &cfg), OS_ERR_INVALID);
    os_chain_config_default(&cfg, "https://127.0.0.1:1/");
    assert_int_equal(os_chain_new(&ch, &cfg), OS_OK);
    os_chain_free(ch);
    os_chain_free(NULL);
}

static void test_retries_5xx_and_429(void **state)
{
    static const step script[] = {
        {503, "busy", 0},
        {429, "slow down", 0},
        {200, OK_RESULT("\"0x2105\""), 0},
    };
    server s;
    os_chain *ch;
    os_chain_error err;
    uint64_t id = 0;
    (void)state;
    server_start(&s, script, 3);
    ch = client(&s, 3, 0);
    assert_int_equal(os_chain_chain_id(ch, &id, &err), OS_OK);
    assert_int_equal(id, 8453);
    assert_int_equal(err.attempts, 3);
    os_chain_free(ch);
    assert_int_equal(server_stop(&s), 3);
    assert_string_equal(s.methods[0], "eth_chainId");
}

static void test_retries_bounded(void **state)
{
    static const step script[] = {
        {502, "", 0}, {502, "", 0}, {502, "", 0}, {200, OK_RESULT("\"0x1\""), 0}};
    server s;
    os_chain *ch;
    os_chain_error err;
    uint64_t n;
    (void)state;
    server_start(&s, script, 4);
    ch = client(&s, 2, 0);
    assert_int_equal(os_chain_block_number(ch, &n, &err), OS_ERR_NETWORK);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_HTTP);
    assert_int_equal(err.http_status, 502);
    assert_int_equal(err.attempts, 3);
    os_chain_free(ch);
    assert_int_equal(server_stop(&s), 3); /* the fourth answer was never asked for */
}

static void test_no_retry_on_4xx_or_rpc_error(void **state)
{
    static const step script[] = {
        {400, "bad request", 0},
        {200,
         "{\"jsonrpc\":\"2.0\",\"id\":%ID%,\"error\":{\"code\":-32003,\"message\":\"nonce too "
         "low\"}}",
         0},
    };
    server s;
    os_chain *ch;
    os_chain_error err;
    uint64_t n;
    uint8_t addr[20] = {1};
    (void)state;
    server_start(&s, script, 2);
    ch = client(&s, 3, 0);
    assert_int_equal(os_chain_block_number(ch, &n, &err), OS_ERR_NETWORK);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_HTTP);
    assert_int_equal(err.attempts, 1);
    assert_int_equal(os_chain_nonce(ch, &n, &err, addr), OS_ERR_INVALID);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RPC);
    assert_int_equal(err.rpc_code, -32003);
    assert_string_equal(err.message, "eth_getTransactionCount: nonce too low (code -32003)");
    os_chain_free(ch);
    assert_int_equal(server_stop(&s), 2);
    assert_string_equal(s.methods[1], "eth_getTransactionCount");
}

static void test_revert_decoded(void **state)
{
    /* anvil's answer to eth_call on a contract doing revert("nope") */
    static const step script[] = {
        {200,
         "{\"jsonrpc\":\"2.0\",\"id\":%ID%,\"error\":{\"code\":3,\"message\":\"execution reverted: "
         "nope\","
         "\"data\":"
         "\"0x08c379a0000000000000000000000000000000000000000000000000000000000000002000000000"
         "000000000000000000000000000000000000000000000000000000046e6f70650000000000000000000000000"
         "0"
         "000000000000000000000000000000\"}}",
         0},
        /* a custom error ChannelClosed(bytes32,uint64) the client's table knows */
        {200,
         "{\"jsonrpc\":\"2.0\",\"id\":%ID%,\"error\":{\"code\":3,\"message\":\"execution "
         "reverted\","
         "\"data\":"
         "\"0xd2b1fb5801010101010101010101010101010101010101010101010101010101010101010000000000"
         "000000000000000000000000000000000000000000000000000063\"}}",
         0},
        /* an old-style node: reason in the message, no data */
        {200,
         "{\"jsonrpc\":\"2.0\",\"id\":%ID%,\"error\":{\"code\":-32000,\"message\":\"execution "
         "reverted\"}}",
         0},
        {200, OK_RESULT("\"0x00000000000000000000000000000000000000000000000000000000000000ff\""),
         0},
        {200, OK_RESULT("\"0x00000000000000000000000000000000000000000000000000000000000000ff\""),
         0},
        {200, OK_RESULT("\"0x0\""), 0}, /* not even bytes */
    };
    static const char *const custom[] = {"ChannelClosed(bytes32,uint64)"};
    char url[64];
    server s;
    os_chain *ch;
    os_chain_config cfg;
    os_chain_error err;
    os_chain_msg msg = {.has_to = true};
    os_buf out;
    (void)state;
    server_start(&s, script, 6);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    os_chain_config_default(&cfg, url);
    cfg.custom_errors = custom;
    cfg.n_custom_errors = 1;
    assert_int_equal(os_chain_new(&ch, &cfg), OS_OK);
    os_buf_init(&out, 1024);

    assert_int_equal(os_chain_call(ch, &out, &err, &msg, NULL), OS_ERR_INVALID);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_REVERT);
    assert_int_equal(err.revert.kind, OS_ABI_REVERT_ERROR);
    assert_string_equal(err.revert.message, "nope");
    assert_string_equal(err.message, "eth_call: execution reverted: nope");
    assert_int_equal(err.revert_len, 100);
    assert_int_equal(err.attempts, 1);

    assert_int_equal(os_chain_call(ch, &out, &err, &msg, "latest"), OS_ERR_INVALID);
    assert_int_equal(err.revert.kind, OS_ABI_REVERT_CUSTOM);
    assert_string_equal(
        err.message,
        "eth_call: execution reverted: "
        "ChannelClosed(0x0101010101010101010101010101010101010101010101010101010101010101, 99)");

    assert_int_equal(os_chain_call(ch, &out, &err, &msg, "pending"), OS_ERR_INVALID);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_REVERT);
    assert_int_equal(err.revert.kind, OS_ABI_REVERT_EMPTY);

    assert_int_equal(os_chain_call(ch, &out, &err, &msg, "0x10"), OS_OK);
    assert_int_equal(out.len, 32);
    assert_int_equal(out.data[31], 0xff);
    assert_int_equal(os_chain_call(ch, &out, &err, &msg, "0x010"), OS_ERR_INVALID); /* bad tag */
    /* 32 bytes of return data do not fit a 40-byte buffer already holding 32 */
    os_buf_free(&out);
    os_buf_init(&out, 40);
    assert_int_equal(os_buf_append_zeros(&out, 32), OS_OK);
    assert_int_equal(os_chain_call(ch, &out, &err, &msg, NULL), OS_ERR_TOOBIG);
    assert_int_equal(out.len, 32);
    assert_int_equal(os_chain_call(ch, &out, &err, &msg, NULL), OS_ERR_NETWORK);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RESPONSE);
    os_buf_free(&out);
    os_chain_free(ch);
    assert_int_equal(server_stop(&s), 6);
}

static void test_response_cap_and_depth(void **state)
{
    static char big[8192];
    static char deep[2048];
    step script[2] = {{200, NULL, 0}, {200, NULL, 0}};
    server s;
    os_chain *ch;
    os_chain_error err;
    json_t *res;
    uint64_t n;
    size_t k;
    (void)state;
    /* a valid answer whose result string is 6000 bytes, against a 4096-byte cap */
    k = (size_t)snprintf(big, sizeof(big), "{\"jsonrpc\":\"2.0\",\"id\":%%ID%%,\"result\":\"0x");
    memset(big + k, 'a', 6000);
    snprintf(big + k + 6000, sizeof(big) - k - 6000, "\"}");
    script[0].body = big;
    /* a result nested 40 deep, against the default 32 */
    k = (size_t)snprintf(deep, sizeof(deep), "{\"jsonrpc\":\"2.0\",\"id\":%%ID%%,\"result\":");
    for (int i = 0; i < 40; i++)
        deep[k++] = '[';
    for (int i = 0; i < 40; i++)
        deep[k++] = ']';
    snprintf(deep + k, sizeof(deep) - k, "}");
    script[1].body = deep;
    server_start(&s, script, 2);
    ch = client(&s, 3, 4096);
    assert_int_equal(os_chain_block_number(ch, &n, &err), OS_ERR_TOOBIG);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RESPONSE);
    assert_int_equal(err.attempts, 1); /* not retried */
    assert_int_equal(os_chain_rpc(ch, &res, &err, "debug_deep", NULL), OS_ERR_NETWORK);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RESPONSE);
    os_chain_free(ch);
    assert_int_equal(server_stop(&s), 2);
}

static void test_malformed_answers(void **state)
{
    static const step script[] = {
        {200, "{\"jsonrpc\":\"2.0\",\"id\":999999,\"result\":\"0x1\"}", 0}, /* another id */
        {200, "{\"id\":%ID%,\"result\":\"0x1\"}", 0},                       /* no jsonrpc */
        {200,
         "{\"jsonrpc\":\"2.0\",\"id\":%ID%,\"result\":\"0x1\",\"error\":{\"code\":1,\"message\":"
         "\"x\"}}",
         0},
        {200, "{\"jsonrpc\":\"2.0\",\"id\":%ID%,\"result\":\"0x1\",\"result\":\"0x2\"}",
         0},                             /* duplicate */
        {200, OK_RESULT("\"0x01\""), 0}, /* leading zero */
        {200, OK_RESULT("1"), 0},        /* a number, not a quantity */
        {200, "not json", 0},
        {200, OK_RESULT("\"0x10000000000000000\""), 0}, /* 2^64 */
        {200, "{\"jsonrpc\":\"2.0\",\"id\":%ID%,\"error\":\"oops\"}", 0},
    };
    server s;
    os_chain *ch;
    os_chain_error err;
    uint64_t n;
    (void)state;
    server_start(&s, script, 9);
    ch = client(&s, 0, 0);
    for (int i = 0; i < 9; i++) {
        os_err e = os_chain_block_number(ch, &n, &err);
        os_err want = i == 7 ? OS_ERR_RANGE : OS_ERR_NETWORK;
        if (e != want || err.kind != OS_CHAIN_FAIL_RESPONSE)
            fail_msg("answer %d: err %d kind %d (%s)", i, e, err.kind, err.message);
    }
    os_chain_free(ch);
    assert_int_equal(server_stop(&s), 9);
}

static void test_timeout(void **state)
{
    static const step script[] = {{200, OK_RESULT("\"0x1\""), 1500}};
    server s;
    os_chain *ch;
    os_chain_config cfg;
    os_chain_error err;
    char url[64];
    uint64_t n;
    long long t0;
    (void)state;
    server_start(&s, script, 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    os_chain_config_default(&cfg, url);
    cfg.request_timeout_ms = 300;
    cfg.max_retries = 0;
    assert_int_equal(os_chain_new(&ch, &cfg), OS_OK);
    t0 = now_ms();
    assert_int_equal(os_chain_block_number(ch, &n, &err), OS_ERR_TIMEOUT);
    assert_true(now_ms() - t0 < 1200);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_TRANSPORT);
    os_chain_free(ch);
    server_stop(&s);
}

static void test_dead_port(void **state)
{
    server s;
    os_chain *ch;
    os_chain_error err;
    uint64_t n;
    long long t0, dt;
    (void)state;
    /* take a free port, then close it: nothing listens there */
    server_start(&s, NULL, 0);
    server_stop(&s);
    ch = client(&s, 3, 0);
    t0 = now_ms();
    assert_int_equal(os_chain_block_number(ch, &n, &err), OS_ERR_NETWORK);
    dt = now_ms() - t0;
    assert_int_equal(err.kind, OS_CHAIN_FAIL_TRANSPORT);
    assert_int_equal(err.attempts, 4);
    /* three backoffs of at least 5, 10 and 20 ms (half of 10/20/40), and not much more */
    assert_true(dt >= 35);
    assert_true(dt < 2000);
    assert_null(strstr(err.message, "/rpc")); /* the URL (which may hold a key) stays out */
    os_chain_free(ch);
}

static void test_fees_and_receipt(void **state)
{
    static const step script[] = {
        {200,
         OK_RESULT("{\"oldestBlock\":\"0x5\",\"baseFeePerGas\":[\"0x3b9aca00\",\"0x3b9aca08\"],"
                   "\"gasUsedRatio\":[0.5],\"reward\":[]}"),
         0},
        {200, OK_RESULT("\"0x5f5e100\""), 0},
        /* a receipt with one log, then the head three blocks later */
        {200,
         OK_RESULT(
             "{\"transactionHash\":"
             "\"0x1111111111111111111111111111111111111111111111111111111111111111\","
             "\"blockHash\":\"0x2222222222222222222222222222222222222222222222222222222222222222\","
             "\"blockNumber\":\"0x10\",\"gasUsed\":\"0x5208\",\"effectiveGasPrice\":\"0x3b9aca00\","
             "\"status\":\"0x1\",\"from\":\"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\","
             "\"to\":null,\"contractAddress\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\","
             "\"type\":\"0x2\",\"l1Fee\":\"0x1\",\"logs\":[{\"address\":"
             "\"0x5fbdb2315678afecb367f032d93f642f64180aa3\","
             "\"topics\":[\"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef\"],"
             "\"data\":\"0x2a\",\"blockNumber\":\"0x10\",\"transactionHash\":"
             "\"0x1111111111111111111111111111111111111111111111111111111111111111\",\"logIndex\":"
             "\"0x0\","
             "\"removed\":false}]}"),
         0},
        {200, OK_RESULT("\"0x12\""), 0},
        {200, OK_RESULT("null"), 0},
        /* a log whose topic is 31 bytes */
        {200,
         OK_RESULT("[{\"address\":\"0x5fbdb2315678afecb367f032d93f642f64180aa3\",\"topics\":"
                   "[\"0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3\"],"
                   "\"data\":\"0x\","
                   "\"blockNumber\":\"0x10\",\"transactionHash\":"
                   "\"0x1111111111111111111111111111111111111111111111111111111111111111\","
                   "\"logIndex\":\"0x0\"}]"),
         0},
    };
    server s;
    os_chain *ch;
    os_chain_error err;
    os_chain_fees fees;
    os_chain_receipt *rc;
    os_chain_filter f = {.to_latest = true};
    os_chain_log *logs;
    size_t n;
    uint8_t h[32];
    (void)state;
    memset(h, 0x11, 32);
    server_start(&s, script, 6);
    ch = client(&s, 0, 0);
    assert_int_equal(os_chain_suggest_fees(ch, &fees, &err), OS_OK);
    assert_int_equal(fees.base_fee, 1000000008); /* the next block's, the last entry */
    assert_int_equal(fees.tip, 100000000);
    assert_int_equal(fees.max_fee, 2 * 1000000008 + 100000000);
    assert_int_equal(os_chain_receipt_get(ch, &rc, &err, h), OS_OK);
    assert_true(rc->status);
    assert_int_equal(rc->gas_used, 21000);
    assert_int_equal(rc->confirmations, 3);
    assert_false(rc->has_to);
    assert_true(rc->has_contract);
    tu_assert_hex(rc->contract_address, 20, "5fbdb2315678afecb367f032d93f642f64180aa3");
    assert_int_equal(rc->n_logs, 1);
    assert_int_equal(rc->logs[0].n_topics, 1);
    assert_int_equal(rc->logs[0].data_len, 1);
    assert_int_equal(rc->logs[0].data[0], 0x2a);
    os_chain_receipt_free(rc);
    assert_int_equal(os_chain_receipt_get(ch, &rc, &err, h), OS_ERR_NOTFOUND);
    assert_null(rc);
    assert_int_equal(os_chain_get_logs(ch, &logs, &n, &err, &f), OS_ERR_NETWORK);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RESPONSE);
    assert_null(logs);
    os_chain_free(ch);
    assert_int_equal(server_stop(&s), 6);
    assert_string_equal(s.methods[0], "eth_feeHistory");
    assert_string_equal(s.methods[1], "eth_maxPriorityFeePerGas");
    assert_string_equal(s.methods[3], "eth_blockNumber");
    assert_string_equal(s.methods[5], "eth_getLogs");
}

static void test_send_raw_hash_checked(void **state)
{
    /* the node must report keccak256(raw); 0x01 hashes to 5fe7f977… */
    static const step script[] = {
        {200, OK_RESULT("\"0x5fe7f977e71dba2ea1a68e21057beebb9be2ac30c6410aa38d4f3fbe41dcffd2\""),
         0},
        {200, OK_RESULT("\"0x5fe7f977e71dba2ea1a68e21057beebb9be2ac30c6410aa38d4f3fbe41dcffd3\""),
         0},
    };
    server s;
    os_chain *ch;
    os_chain_error err;
    uint8_t raw[1] = {1}, h[32];
    (void)state;
    server_start(&s, script, 2);
    ch = client(&s, 0, 0);
    assert_int_equal(os_chain_send_raw(ch, h, &err, raw, 1), OS_OK);
    assert_int_equal(os_chain_send_raw(ch, h, &err, raw, 1), OS_ERR_NETWORK);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RESPONSE);
    os_chain_free(ch);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_config_checks),
        cmocka_unit_test(test_retries_5xx_and_429),
        cmocka_unit_test(test_retries_bounded),
        cmocka_unit_test(test_no_retry_on_4xx_or_rpc_error),
        cmocka_unit_test(test_revert_decoded),
        cmocka_unit_test(test_response_cap_and_depth),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_dead_port),
        cmocka_unit_test(test_fees_and_receipt),
        cmocka_unit_test(test_send_raw_hash_checked),
    };
    return cmocka_run_group_tests_name("chain", tests, tu_init, NULL);
}
