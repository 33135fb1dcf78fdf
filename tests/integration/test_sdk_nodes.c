/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SDK's nodes (registry_node.h, seller_node.h, buyer_node.h, devchain.h) in one process,
 * through the public headers only: a devchain; two registries; two sellers on the built-in echo
 * upstream with offerings from the Offering builder, the dearer one announcing to both
 * registries, the cheaper to the first; a buyer whose wallet is a funded devchain account. A paid
 * OpenAI chat request through the buyer with libcurl goes to the cheaper seller, a pinned one to
 * the other; each seller's stats then show exactly the buyer's X-OpenSeed-Cost as earned, and
 * after os_seller_node_settle its USDC balance on chain is exactly what it settled. Around that:
 * configurations each node must refuse with OS_ERR_INVALID (no data_dir, no rpc, no wallet, bad
 * upstream_api, bad echo failure, bad addresses), the devchain refusing a missing anvil, and
 * the lifecycle's edges (stop twice, start after stop, free without start, free(NULL)).
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include <inttypes.h>
#include <strings.h>

#include <curl/curl.h>

#include "registry_client.h"

#include "openseed/buyer_node.h"
#include "openseed/ct.h"
#include "openseed/devchain.h"
#include "openseed/init.h"
#include "openseed/money.h"
#include "openseed/offering.h"
#include "openseed/registry_node.h"
#include "openseed/secp.h"
#include "openseed/seller_node.h"
#include "openseed/u256.h"

#define ETH (UINT64_C(1000000000000000000))
#define USDC (UINT64_C(1000000))
#define WAIT_MS 20000L

static struct {
    os_logger log;
    os_devchain *dc;
    char dir[128];
    char rpc[64];
    uint64_t chain_id;
    uint8_t escrow[20], usdc[20];
    os_registry_node *reg[2];
    char reg_url[2][64];
    os_seller_node *sel[2]; /* 0: dearer, both registries; 1: cheaper, registry 0 */
    uint8_t sel_addr[2][20];
    char sel_hex[2][OS_ADDRESS_STR_LEN];
    os_buyer_node *buyer;
    uint8_t wallet[20];
    char buyer_url[64];
} fx;

/* ---- HTTP with libcurl ---- */

typedef struct reply {
    long status;
    char body[64 * 1024];
    size_t len;
    char cost[32], peer[64];
} reply;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    reply *r = ud;
    size_t len = size * n;
    if (r->len + len < sizeof(r->body)) {
        memcpy(r->body + r->len, p, len);
        r->len += len;
        r->body[r->len] = '\0';
    }
    return len;
}

/* Copies the value of header line p (name: value\r\n) into dst when its name is name. */
static void header_value(char *dst, size_t cap, const char *name, const char *p, size_t len)
{
    size_t nl = strlen(name), v, e;
    if (len <= nl + 1 || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
        return;
    for (v = nl + 1; v < len && p[v] == ' '; v++)
        ;
    for (e = len; e > v && (p[e - 1] == '\r' || p[e - 1] == '\n' || p[e - 1] == ' '); e--)
        ;
    snprintf(dst, cap, "%.*s", (int)(e - v), p + v);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    reply *r = ud;
    header_value(r->cost, sizeof(r->cost), "X-OpenSeed-Cost", p, size * n);
    header_value(r->peer, sizeof(r->peer), "X-OpenSeed-Peer", p, size * n);
    return size * n;
}

/* GET (body NULL) or POST url; pin (may be NULL) goes in X-OpenSeed-Peer. */
static void http(reply *r, const char *url, const char *body, const char *pin)
{
    struct curl_slist *h = NULL;
    char pin_h[128];
    CURL *c = curl_easy_init();

    memset(r, 0, sizeof(*r));
    r->status = -1;
    assert_non_null(c);
    h = curl_slist_append(h, "Content-Type: application/json");
    if (pin != NULL) {
        snprintf(pin_h, sizeof(pin_h), "X-OpenSeed-Peer: %s", pin);
        h = curl_slist_append(h, pin_h);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
}

/* How many sellers registry i lists for service echo; -1 when it cannot be asked. */
static int listed(int i)
{
    static reply r;
    char url[128];
    json_t *j;
    int n = -1;

    snprintf(url, sizeof(url), "%s/v1/peers?service=echo", fx.reg_url[i]);
    http(&r, url, NULL, NULL);
    if (r.status != 200 || (j = json_loadb(r.body, r.len, 0, NULL)) == NULL)
        return -1;
    n = (int)json_array_size(json_object_get(j, "peers"));
    json_decref(j);
    return n;
}

/* ---- the nodes ---- */

/* An echo offering at input/output USDC per million tokens, built with the Offering builder. */
static void offering(os_offering *o, const char *in, const char *out)
{
    os_offering_builder b;
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_service(&b, "echo"), OS_OK);
    assert_int_equal(os_offering_model(&b, "echo-1"), OS_OK);
    assert_int_equal(os_offering_api(&b, "openai.chat"), OS_OK);
    assert_int_equal(os_offering_price_usdc(&b, in, out, NULL), OS_OK);
    assert_int_equal(os_offering_max_output(&b, 1024), OS_OK);
    assert_int_equal(os_offering_build(&b, o), OS_OK);
}

static void registry_config(os_registry_node_config *c, char *dir, size_t cap, int i)
{
    os_registry_node_config_init(c);
    snprintf(dir, cap, "%s/reg%d", fx.dir, i);
    c->data_dir = dir;
    c->chain_id = fx.chain_id;
    c->escrow = fx.escrow;
    c->rpc = fx.rpc;
    c->heartbeat_interval_ms = 1000;
    c->rescore_interval_ms = 200;
    c->log = &fx.log;
}

static void seller_config(os_seller_node_config *c, char *dir, size_t cap, int i)
{
    os_seller_node_config_init(c);
    snprintf(dir, cap, "%s/seller%d", fx.dir, i);
    c->data_dir = dir;
    c->rpc = fx.rpc;
    c->chain_id = fx.chain_id;
    memcpy(c->escrow, fx.escrow, 20);
    memcpy(c->usdc, fx.usdc, 20);
    c->log = &fx.log;
}

static void buyer_config(os_buyer_node_config *c, char *dir, size_t cap, const uint8_t *priv,
                         const char *const *regs, size_t n_regs)
{
    os_buyer_node_config_init(c);
    snprintf(dir, cap, "%s/buyer", fx.dir);
    c->data_dir = dir;
    c->registries = regs;
    c->n_registries = n_regs;
    c->rpc = fx.rpc;
    c->chain_id = fx.chain_id;
    memcpy(c->escrow, fx.escrow, 20);
    memcpy(c->usdc, fx.usdc, 20);
    c->wallet_priv = priv;
    c->log = &fx.log;
}

static int setup(void **state)
{
    os_devchain_config dc;
    (void)state;

    if (os_init() != OS_OK)
        return -1;
    os_logger_init(&fx.log, "sdk-nodes-test",
                   getenv("TEST_DEBUG") != NULL ? OS_LOG_DEBUG : OS_LOG_WARN);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/openseed-sdk-nodes-XXXXXX");
    if (rc_tmpdir(fx.dir) != 0)
        return -1;
    memset(&dc, 0, sizeof(dc));
    dc.log = &fx.log;
    if (os_devchain_start(&fx.dc, &dc) != OS_OK) {
        fprintf(stderr, "os_devchain_start failed (see the log above)\n");
        return -1;
    }
    snprintf(fx.rpc, sizeof(fx.rpc), "%s", os_devchain_rpc(fx.dc));
    fx.chain_id = os_devchain_chain_id(fx.dc);
    os_devchain_escrow(fx.dc, fx.escrow);
    os_devchain_usdc(fx.dc, fx.usdc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    os_buyer_node_free(fx.buyer);
    for (int i = 0; i < 2; i++) {
        os_seller_node_free(fx.sel[i]);
        os_registry_node_free(fx.reg[i]);
    }
    os_devchain_free(fx.dc);
    if (fx.dir[0] != '\0')
        rc_rmtree(fx.dir);
    return 0;
}

/* ---- tests ---- */

static void test_devchain(void **state)
{
    uint8_t priv[32], addr[20], none[20] = {0};
    uint64_t bal = 1, eth = 0;
    os_u256 wei;
    os_devchain_config c;
    os_devchain *d = (os_devchain *)1;
    (void)state;

    assert_int_equal(fx.chain_id, 31337); /* the default */
    assert_memory_not_equal(fx.escrow, none, 20);
    assert_memory_not_equal(fx.usdc, none, 20);
    assert_memory_not_equal(fx.escrow, fx.usdc, 20);
    assert_int_equal(strncmp(fx.rpc, "http://127.0.0.1:", 17), 0);
    assert_non_null(os_devchain_chain(fx.dc));

    /* a fresh account holds exactly what it was funded with */
    assert_int_equal(os_devchain_account(fx.dc, priv, addr, 2 * ETH, 1234567), OS_OK);
    {
        uint8_t derived[20];
        assert_int_equal(os_secp_address(derived, priv), OS_OK);
        assert_memory_equal(derived, addr, 20);
    }
    os_wipe(priv, sizeof(priv));
    assert_int_equal(os_devchain_usdc_balance(fx.dc, &bal, addr), OS_OK);
    assert_int_equal(bal, 1234567);
    assert_int_equal(os_chain_balance(os_devchain_chain(fx.dc), &wei, NULL, addr), OS_OK);
    assert_int_equal(os_u256_to_u64(&eth, &wei), OS_OK);
    assert_int_equal(eth, 2 * ETH);
    /* fund adds USDC (a mint) and sets ether */
    assert_int_equal(os_devchain_fund(fx.dc, addr, ETH, 1), OS_OK);
    assert_int_equal(os_devchain_usdc_balance(fx.dc, &bal, addr), OS_OK);
    assert_int_equal(bal, 1234568);
    assert_int_equal(os_chain_balance(os_devchain_chain(fx.dc), &wei, NULL, addr), OS_OK);
    assert_int_equal(os_u256_to_u64(&eth, &wei), OS_OK);
    assert_int_equal(eth, ETH);

    /* a configured anvil that is not there is not replaced by another */
    memset(&c, 0, sizeof(c));
    c.anvil = "/nonexistent/anvil";
    c.log = &fx.log;
    assert_int_equal(os_devchain_start(&d, &c), OS_ERR_NOTFOUND);
    assert_null(d);
    memset(&c, 0, sizeof(c));
    c.contracts = "/nonexistent";
    c.log = &fx.log;
    d = (os_devchain *)1;
    assert_int_equal(os_devchain_start(&d, &c), OS_ERR_NOTFOUND);
    assert_null(d);
    os_devchain_free(NULL);
}

static void test_invalid_configs(void **state)
{
    char dir[192];
    uint8_t key[32];
    const char *regs[1] = {"http://127.0.0.1:1"};
    os_registry_node_config rc;
    os_seller_node_config sc;
    os_buyer_node_config bc;
    os_registry_node *r = (os_registry_node *)1;
    os_seller_node *s = (os_seller_node *)1;
    os_buyer_node *b = (os_buyer_node *)1;
    os_offering off;
    (void)state;

    /* a valid key, so only the field under test is wrong */
    assert_int_equal(os_secp_keygen(key), OS_OK);

    assert_int_equal(os_registry_node_new(&r, NULL), OS_ERR_INVALID);
    assert_null(r);
    registry_config(&rc, dir, sizeof(dir), 9);
    rc.data_dir = NULL;
    assert_int_equal(os_registry_node_new(&r, &rc), OS_ERR_INVALID);
    registry_config(&rc, dir, sizeof(dir), 9);
    rc.listen = "127.0.0.1:notaport";
    assert_int_equal(os_registry_node_new(&r, &rc), OS_ERR_INVALID);
    registry_config(&rc, dir, sizeof(dir), 9);
    rc.chain_id = 0;
    assert_int_equal(os_registry_node_new(&r, &rc), OS_ERR_INVALID);
    registry_config(&rc, dir, sizeof(dir), 9);
    rc.rpc = "ftp://127.0.0.1:1";
    assert_int_equal(os_registry_node_new(&r, &rc), OS_ERR_INVALID);
    registry_config(&rc, dir, sizeof(dir), 9);
    rc.heartbeat_interval_ms = 10; /* below the core's 100 ms */
    assert_int_equal(os_registry_node_new(&r, &rc), OS_ERR_INVALID);
    assert_null(r);

    assert_int_equal(os_seller_node_new(&s, NULL), OS_ERR_INVALID);
    assert_null(s);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.data_dir = NULL;
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.rpc = NULL;
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.upstream_api = "gemini";
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.echo.fail = "sometimes";
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.echo.fail = "500";
    sc.echo.fail_ppm = 1000001;
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    memset(sc.escrow, 0, 20);
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.upstream = "not a url";
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.upstream = "http://127.0.0.1:1"; /* a real upstream needs offerings */
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.admin_listen = "0.0.0.0:0"; /* its token is generated: loopback only */
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.n_registries = 1; /* registries NULL */
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    /* an anthropic upstream cannot serve an openai.chat offering */
    offering(&off, "0.1", "0.2");
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.upstream = "http://127.0.0.1:1";
    sc.upstream_api = "anthropic";
    sc.offerings = &off;
    sc.n_offerings = 1;
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    /* an offering the record would refuse */
    off.n_services = 0;
    seller_config(&sc, dir, sizeof(dir), 9);
    sc.offerings = &off;
    sc.n_offerings = 1;
    assert_int_equal(os_seller_node_new(&s, &sc), OS_ERR_INVALID);
    assert_null(s);

    assert_int_equal(os_buyer_node_new(&b, NULL), OS_ERR_INVALID);
    assert_null(b);
    buyer_config(&bc, dir, sizeof(dir), key, regs, 1);
    bc.data_dir = NULL;
    assert_int_equal(os_buyer_node_new(&b, &bc), OS_ERR_INVALID);
    buyer_config(&bc, dir, sizeof(dir), key, regs, 1);
    bc.rpc = NULL;
    assert_int_equal(os_buyer_node_new(&b, &bc), OS_ERR_INVALID);
    buyer_config(&bc, dir, sizeof(dir), NULL, regs, 1);
    assert_int_equal(os_buyer_node_new(&b, &bc), OS_ERR_INVALID);
    {
        uint8_t zero[32] = {0};
        buyer_config(&bc, dir, sizeof(dir), zero, regs, 1);
        assert_int_equal(os_buyer_node_new(&b, &bc), OS_ERR_INVALID);
    }
    buyer_config(&bc, dir, sizeof(dir), key, regs, 0);
    assert_int_equal(os_buyer_node_new(&b, &bc), OS_ERR_INVALID);
    buyer_config(&bc, dir, sizeof(dir), key, regs, 1);
    bc.listen = "0.0.0.0:0"; /* off loopback without an api_key */
    assert_int_equal(os_buyer_node_new(&b, &bc), OS_ERR_INVALID);
    buyer_config(&bc, dir, sizeof(dir), key, regs, 1);
    bc.route = (os_route)7;
    assert_int_equal(os_buyer_node_new(&b, &bc), OS_ERR_INVALID);
    assert_null(b);
    os_wipe(key, sizeof(key));

    /* nothing above made a data directory */
    snprintf(dir, sizeof(dir), "%s/seller9", fx.dir);
    assert_int_not_equal(access(dir, F_OK), 0);
}

static void test_lifecycle_edges(void **state)
{
    char dir[192], url[64];
    uint8_t key[32];
    const char *regs[1] = {"http://127.0.0.1:1"};
    os_registry_node_config rc;
    os_seller_node_config sc;
    os_buyer_node_config bc;
    os_registry_node *r = NULL;
    os_seller_node *s = NULL;
    os_buyer_node *b = NULL;
    os_seller_stats st;
    uint64_t claimed = 1;
    (void)state;

    os_registry_node_free(NULL);
    os_seller_node_free(NULL);
    os_buyer_node_free(NULL);
    os_registry_node_stop(NULL);
    os_seller_node_stop(NULL);
    os_buyer_node_stop(NULL);

    /* made and freed without a start: data_dir made 0700 */
    registry_config(&rc, dir, sizeof(dir), 8);
    assert_int_equal(os_registry_node_new(&r, &rc), OS_OK);
    {
        struct stat sb;
        assert_int_equal(stat(dir, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0700);
    }
    assert_int_equal(os_registry_node_port(r), 0);
    assert_int_equal(os_registry_node_url(r, url, sizeof(url)), OS_ERR_INVALID);
    os_registry_node_free(r);

    /* start, the URL, stop twice, no restart */
    registry_config(&rc, dir, sizeof(dir), 8);
    rc.listen = "0.0.0.0:0";
    assert_int_equal(os_registry_node_new(&r, &rc), OS_OK);
    assert_int_equal(os_registry_node_start(r), OS_OK);
    assert_int_equal(os_registry_node_start(r), OS_OK); /* already running */
    assert_int_not_equal(os_registry_node_port(r), 0);
    assert_int_equal(os_registry_node_url(r, url, 8), OS_ERR_TOOBIG);
    assert_int_equal(os_registry_node_url(r, url, sizeof(url)), OS_OK);
    {
        char want[64];
        snprintf(want, sizeof(want), "http://127.0.0.1:%u", (unsigned)os_registry_node_port(r));
        assert_string_equal(url, want); /* a wildcard listen is dialled on loopback */
    }
    os_registry_node_stop(r);
    os_registry_node_stop(r);
    assert_int_equal(os_registry_node_start(r), OS_ERR_INVALID);
    os_registry_node_free(r);

    /* a seller: its defaults (echo upstream, echo offering), settle needs a start */
    seller_config(&sc, dir, sizeof(dir), 8);
    assert_int_equal(os_seller_node_new(&s, &sc), OS_OK);
    assert_int_equal(os_seller_node_port(s), 0);
    assert_int_equal(os_seller_node_stats(s, &st), OS_OK);
    assert_int_equal(st.requests + st.earned + st.channels, 0);
    assert_int_equal(os_seller_node_settle(s, &claimed), OS_ERR_INVALID);
    assert_int_equal(claimed, 0);
    os_seller_node_stop(s); /* before start */
    assert_int_equal(os_seller_node_start(s), OS_ERR_INVALID);
    os_seller_node_free(s);
    seller_config(&sc, dir, sizeof(dir), 8);
    assert_int_equal(os_seller_node_new(&s, &sc), OS_OK);
    os_seller_node_free(s); /* never started */

    /* a buyer made and freed, and one stopped twice */
    assert_int_equal(os_secp_keygen(key), OS_OK);
    buyer_config(&bc, dir, sizeof(dir), key, regs, 1);
    assert_int_equal(os_buyer_node_new(&b, &bc), OS_OK);
    assert_int_equal(os_buyer_node_port(b), 0);
    os_buyer_node_free(b);
    assert_int_equal(os_buyer_node_new(&b, &bc), OS_OK);
    os_wipe(key, sizeof(key));
    os_buyer_node_stop(b);
    os_buyer_node_stop(b);
    assert_int_equal(os_buyer_node_start(b), OS_ERR_INVALID);
    os_buyer_node_free(b);
}

static void start_network(void)
{
    static char rdir[2][192], sdir[2][192], bdir[192];
    static const char *regs_both[2], *regs_first[1], *buyer_regs[1];
    os_registry_node_config rc;
    os_seller_node_config sc;
    os_buyer_node_config bc;
    os_offering off[2];
    uint8_t key[32];

    for (int i = 0; i < 2; i++) {
        registry_config(&rc, rdir[i], sizeof(rdir[i]), i);
        assert_int_equal(os_registry_node_new(&fx.reg[i], &rc), OS_OK);
        assert_int_equal(os_registry_node_start(fx.reg[i]), OS_OK);
        assert_int_equal(os_registry_node_url(fx.reg[i], fx.reg_url[i], sizeof(fx.reg_url[i])),
                         OS_OK);
    }
    regs_both[0] = fx.reg_url[0];
    regs_both[1] = fx.reg_url[1];
    regs_first[0] = fx.reg_url[0];

    offering(&off[0], "0.5", "1.5");
    offering(&off[1], "0.4", "1.2");
    for (int i = 0; i < 2; i++) {
        seller_config(&sc, sdir[i], sizeof(sdir[i]), i);
        sc.registries = i == 0 ? regs_both : regs_first;
        sc.n_registries = i == 0 ? 2 : 1;
        sc.offerings = &off[i];
        sc.n_offerings = 1;
        sc.admin_listen = i == 0 ? "127.0.0.1:0" : NULL;
        assert_int_equal(os_seller_node_new(&fx.sel[i], &sc), OS_OK);
        os_seller_node_address(fx.sel[i], fx.sel_addr[i]);
        os_eip55_format(fx.sel_hex[i], fx.sel_addr[i]);
        /* a fresh node key: ether for its claims, no USDC */
        assert_int_equal(os_devchain_fund(fx.dc, fx.sel_addr[i], ETH, 0), OS_OK);
        assert_int_equal(os_seller_node_start(fx.sel[i]), OS_OK);
        assert_int_not_equal(os_seller_node_port(fx.sel[i]), 0);
    }
    assert_int_not_equal(os_seller_node_admin_port(fx.sel[0]), 0);
    assert_int_equal(os_seller_node_admin_port(fx.sel[1]), 0);

    /* the dearer seller is on both registries, the cheaper on the first only */
    for (long t = 0; t < WAIT_MS && (listed(0) != 2 || listed(1) != 1); t += 100)
        rc_sleep_ms(100);
    assert_int_equal(listed(0), 2);
    assert_int_equal(listed(1), 1);
    /* a full rescore (200 ms) ranks by price; a newcomer's first is provisional */
    rc_sleep_ms(600);

    assert_int_equal(os_devchain_account(fx.dc, key, fx.wallet, ETH, 20 * USDC), OS_OK);
    buyer_regs[0] = fx.reg_url[0];
    buyer_config(&bc, bdir, sizeof(bdir), key, buyer_regs, 1);
    bc.deposit = 2 * USDC;
    bc.peers_ttl_ms = 500;
    assert_int_equal(os_buyer_node_new(&fx.buyer, &bc), OS_OK);
    os_wipe(key, sizeof(key));
    assert_int_equal(os_buyer_node_start(fx.buyer), OS_OK);
    snprintf(fx.buyer_url, sizeof(fx.buyer_url), "http://127.0.0.1:%u",
             (unsigned)os_buyer_node_port(fx.buyer));
}

/* One paid chat request; its cost from X-OpenSeed-Cost, and who answered. */
static uint64_t chat(const char *text, const char *pin, char *peer, size_t peer_cap)
{
    static reply r;
    char url[128], body[256], want[128];
    uint64_t cost = 0;

    snprintf(url, sizeof(url), "%s/v1/chat/completions", fx.buyer_url);
    snprintf(body, sizeof(body),
             "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", text);
    http(&r, url, body, pin);
    if (r.status != 200)
        fprintf(stderr, "chat: %ld %.400s\n", r.status, r.body);
    assert_int_equal(r.status, 200);
    snprintf(want, sizeof(want), "echo: %s", text);
    assert_non_null(strstr(r.body, want));
    assert_int_equal(os_money_parse_units(&cost, r.cost), OS_OK);
    assert_true(cost > 0);
    snprintf(peer, peer_cap, "%s", r.peer);
    return cost;
}

/* The seller's stats once it has booked `requests` requests. */
static void stats_after(int i, uint64_t requests, os_seller_stats *st)
{
    for (long t = 0; t < WAIT_MS; t += 50) {
        assert_int_equal(os_seller_node_stats(fx.sel[i], st), OS_OK);
        if (st->requests >= requests)
            return;
        rc_sleep_ms(50);
    }
    fail_msg("seller %d booked %" PRIu64 " requests, not %" PRIu64, i, st->requests, requests);
}

static void test_paid_request_and_settle(void **state)
{
    char peer[64];
    uint64_t cost[2], claimed, bal;
    os_seller_stats st;
    (void)state;

    start_network();

    /* the cheaper seller answers; the other when pinned */
    cost[1] = chat("hello sdk", NULL, peer, sizeof(peer));
    assert_true(strcasecmp(peer, fx.sel_hex[1]) == 0);
    cost[0] = chat("pinned", fx.sel_hex[0], peer, sizeof(peer));
    assert_true(strcasecmp(peer, fx.sel_hex[0]) == 0);

    for (int i = 0; i < 2; i++) {
        stats_after(i, 1, &st);
        assert_int_equal(st.requests, 1);
        assert_int_equal(st.errors, 0);
        assert_int_equal(st.earned, cost[i]); /* exactly what the buyer was charged */
        assert_int_equal(st.settled, 0);
        assert_int_equal(st.unclaimed, cost[i]);
        assert_int_equal(st.channels, 1);

        assert_int_equal(os_seller_node_settle(fx.sel[i], &claimed), OS_OK);
        /* a claim redeems the last voucher: what was earned plus at most the last request's
         * unspent estimate (PROTOCOL.md §7) */
        assert_true(claimed >= cost[i]);
        assert_int_equal(os_seller_node_stats(fx.sel[i], &st), OS_OK);
        assert_int_equal(st.settled, claimed);
        assert_int_equal(st.unclaimed, 0);
        assert_int_equal(os_devchain_usdc_balance(fx.dc, &bal, fx.sel_addr[i]), OS_OK);
        assert_int_equal(bal, st.settled);
        /* nothing left to claim */
        assert_int_equal(os_seller_node_settle(fx.sel[i], &claimed), OS_OK);
        assert_int_equal(claimed, 0);
    }
    /* the buyer opened one channel per seller with the configured deposit */
    assert_int_equal(os_devchain_usdc_balance(fx.dc, &bal, fx.wallet), OS_OK);
    assert_int_equal(bal, 20 * USDC - 2 * 2 * USDC);

    /* the lifecycle's end: stop twice, no restart; stats and settle still read the books */
    os_buyer_node_stop(fx.buyer);
    os_buyer_node_stop(fx.buyer);
    assert_int_equal(os_buyer_node_port(fx.buyer), 0);
    for (int i = 0; i < 2; i++) {
        os_seller_node_stop(fx.sel[i]);
        os_seller_node_stop(fx.sel[i]);
        assert_int_equal(os_seller_node_start(fx.sel[i]), OS_ERR_INVALID);
        assert_int_equal(os_seller_node_stats(fx.sel[i], &st), OS_OK);
        assert_int_equal(st.earned, cost[i]);
        assert_int_equal(os_seller_node_settle(fx.sel[i], &claimed), OS_OK);
        assert_int_equal(claimed, 0);
        os_registry_node_stop(fx.reg[i]);
        os_registry_node_stop(fx.reg[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_devchain),
        cmocka_unit_test(test_invalid_configs),
        cmocka_unit_test(test_lifecycle_edges),
        cmocka_unit_test(test_paid_request_and_settle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
