/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's channel cache (src/seller/chans.c) on a real anvil chain with the committed
 * TestUSDC and OpenSeedChannels (grace 900 s), over a real seller.db (ledger.c) in a temp dir.
 * The seller is anvil account 2, whose signer sends the claims; the payer is account 1 and each
 * channel gets a fresh voucher key. Covered: lookups (unknown ids and their negative cache, other
 * sellers' channels, the bounded lookup slots and a chain that does not answer), the payment
 * decision with every refusal in PROTOCOL §7's order and its status, code and invoice (signature
 * by another key, high-s, another chain id or escrow, stale nonce, metadata mismatch, above the
 * deposit, below consumed + in flight + estimate) each leaving seller.db untouched, in-flight
 * reservations, booking (a cost above the estimate cut), settlement on demand with USDC balances
 * and the settlement row checked, automatic settlement by threshold, a payer's close request
 * noticed and claimed inside the grace, restarts (channels unverified until re-read; a channel
 * closed while the seller was down is refused), and paying through a chain outage.
 */
#include "testutil.h"

#include <pthread.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include "devchain.h"
#include "openseed/keccak.h"
#include "openseed/log.h"
#include "openseed/money.h"
#include "openseed/secp.h"

#include "chans.h"
#include "ledger.h"

#define CHAIN_ID 8453
#define GRACE 900
#define WHY 512
#define TTL_MS 1500
#define BIG UINT64_C(1000000000000)

static struct {
    devchain d;
    os_chain_signer *payer, *seller;
    uint8_t payer_a[20], seller_a[20], other_seller[20];
    char dir[64];
    uint64_t salts, hashes;
    os_logger log;
    struct seller_fx {
        char path[128];
        sl_ledger *l;
        sl_chans *c;
        sl_chans_config cfg;
    } s; /* the test's seller, here so a failed test's is still cleaned up */
} fx;

static int setup(void **state)
{
    char why[WHY];
    (void)state;
    if (os_init() != OS_OK)
        return -1;
    os_logger_init(&fx.log, "chans-test", OS_LOG_INFO);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/os-chans-XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    if (devchain_start(&fx.d, CHAIN_ID, GRACE, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &fx.payer, 1, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &fx.seller, 2, why, sizeof(why)) != 0) {
        fprintf(stderr, "FAIL: set-up: %s\n", why);
        return -1;
    }
    os_chain_signer_address(fx.payer, fx.payer_a);
    os_chain_signer_address(fx.seller, fx.seller_a);
    devchain_address(fx.other_seller, 5);
    if (devchain_mint(&fx.d, fx.payer_a, 1000000000, why, sizeof(why)) != 0) {
        fprintf(stderr, "FAIL: set-up: %s\n", why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    os_chain_signer_free(fx.payer);
    os_chain_signer_free(fx.seller);
    devchain_stop(&fx.d);
    if (fx.dir[0] != '\0')
        tu_rmdir_flat(fx.dir);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

#define OK(call, what)                                                                             \
    do {                                                                                           \
        os_chain_error err_;                                                                       \
        os_chain_err_reset(&err_);                                                                 \
        os_err e_ = (call);                                                                        \
        if (e_ != OS_OK)                                                                           \
            fail_msg("%s: %s (%s)", what, os_strerror(e_), err_.message);                          \
    } while (0)

#define DEV(call)                                                                                  \
    do {                                                                                           \
        char why_[WHY];                                                                            \
        if ((call) != 0)                                                                           \
            fail_msg("%s", why_);                                                                  \
    } while (0)

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void new_salt(uint8_t salt[32])
{
    uint8_t seed[9] = {'c'};
    uint64_t n = ++fx.salts;
    for (int i = 0; i < 8; i++)
        seed[1 + i] = (uint8_t)(n >> (8 * i));
    os_keccak256(salt, seed, sizeof(seed));
}

/* A distinct request body hash. */
static void new_hash(uint8_t h[32])
{
    uint8_t seed[9] = {'h'};
    uint64_t n = ++fx.hashes;
    for (int i = 0; i < 8; i++)
        seed[1 + i] = (uint8_t)(n >> (8 * i));
    os_keccak256(h, seed, sizeof(seed));
}

/* A channel with its voucher key. */
typedef struct chan_fx {
    uint8_t id[32];
    uint8_t priv[32], signer[20];
    uint8_t commitment[32];
    uint64_t deposit;
} chan_fx;

/* approve + open by the payer for seller (NULL: ours) with salt (NULL: a new one). */
static void open_channel(chan_fx *c, uint64_t deposit, const uint8_t *seller, const uint8_t *salt)
{
    os_escrow_open_args o;
    memset(c, 0, sizeof(*c));
    assert_int_equal(os_secp_keygen(c->priv), OS_OK);
    assert_int_equal(os_secp_address(c->signer, c->priv), OS_OK);
    memset(&o, 0, sizeof(o));
    memcpy(o.seller, seller != NULL ? seller : fx.seller_a, 20);
    memcpy(o.signer, c->signer, 20);
    new_hash(o.commitment);
    memcpy(c->commitment, o.commitment, 32);
    o.amount = deposit;
    if (salt != NULL)
        memcpy(o.salt, salt, 32);
    else
        new_salt(o.salt);
    os_escrow_channel_id(c->id, CHAIN_ID, fx.d.escrow, fx.payer_a, o.seller, o.salt);
    c->deposit = deposit;
    OK(os_erc20_approve(fx.payer, NULL, &err_, fx.d.usdc, fx.d.escrow, deposit), "approve");
    OK(os_escrow_open(fx.payer, NULL, &err_, fx.d.escrow, &o), "open");
}

/* A voucher on c signed with its key in the escrow's domain, for body hash mh. */
static void voucher(os_voucher *v, const chan_fx *c, uint64_t cum, uint64_t nonce,
                    const uint8_t mh[32])
{
    memset(v, 0, sizeof(*v));
    memcpy(v->channel_id, c->id, 32);
    v->cumulative_amount = cum;
    v->nonce = nonce;
    memcpy(v->metadata_hash, mh, 32);
    assert_int_equal(os_voucher_sign(v, c->priv, CHAIN_ID, fx.d.escrow), OS_OK);
}

static os_channel_state chain_state(const uint8_t id[32])
{
    os_channel_state st;
    OK(os_escrow_get_channel(fx.d.ch, &st, &err_, fx.d.escrow, id), "getChannel");
    return st;
}

/* A seller: its ledger and its channel cache. */
typedef struct seller_fx seller_fx;

static void base_config(sl_chans_config *cfg, sl_ledger *l)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->chain = fx.d.ch;
    cfg->signer = fx.seller;
    cfg->ledger = l;
    cfg->log = &fx.log;
    cfg->chain_id = CHAIN_ID;
    memcpy(cfg->escrow, fx.d.escrow, 20);
    memcpy(cfg->asset, fx.d.usdc, 20);
    memcpy(cfg->seller, fx.seller_a, 20);
    cfg->refresh_ms = 60000;
    cfg->settle_threshold = BIG;
    cfg->settle_interval_ms = BIG;
    cfg->unknown_ttl_ms = TTL_MS;
    cfg->max_timeout_s = 60;
}

static void ledger_open(seller_fx *s, const char *name)
{
    char err[256];
    snprintf(s->path, sizeof(s->path), "%s/%s.db", fx.dir, name);
    if (sl_ledger_open(&s->l, s->path, err, sizeof(err)) != OS_OK)
        fail_msg("sl_ledger_open: %s", err);
}

/* Opens the ledger (unless open) and a cache over it with base_config, adjusted by tweak. */
static void seller_start(seller_fx *s, const char *name, void (*tweak)(sl_chans_config *),
                         bool start)
{
    if (s->l == NULL)
        ledger_open(s, name);
    base_config(&s->cfg, s->l);
    if (tweak != NULL)
        tweak(&s->cfg);
    assert_int_equal(sl_chans_new(&s->c, &s->cfg), OS_OK);
    if (start)
        assert_int_equal(sl_chans_start(s->c), OS_OK);
}

static void seller_restart(seller_fx *s)
{
    sl_chans_free(s->c);
    s->c = NULL;
}

static void seller_end(seller_fx *s)
{
    char p[160];
    sl_chans_free(s->c);
    sl_ledger_close(s->l);
    unlink(s->path);
    snprintf(p, sizeof(p), "%s-wal", s->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", s->path);
    unlink(p);
    memset(s, 0, sizeof(*s));
}

/* Per-test teardown: a test that failed half-way left its seller running. */
static int seller_cleanup(void **state)
{
    (void)state;
    if (fx.s.c != NULL || fx.s.l != NULL)
        seller_end(&fx.s);
    return 0;
}

static void lookup_ok(sl_chans *c, const chan_fx *ch)
{
    sl_chan_view view;
    char why[128];
    os_err e = sl_chans_lookup(c, &view, ch->id, why, sizeof(why));
    if (e != OS_OK)
        fail_msg("lookup: %s (%s)", os_strerror(e), why);
    assert_memory_equal(view.id, ch->id, 32);
    assert_memory_equal(view.signer, ch->signer, 20);
    assert_memory_equal(view.commitment, ch->commitment, 32);
    assert_int_equal(view.deposit, ch->deposit);
}

/* Pays with v (body hash mh) for estimate; must succeed. */
static sl_ticket pay_ok(sl_chans *c, const os_voucher *v, const uint8_t mh[32], uint64_t estimate)
{
    sl_ticket t;
    sl_refusal r;
    os_err e = sl_chans_pay(c, &t, &r, v, mh, estimate, "openai.chat", "echo-1");
    if (e != OS_OK)
        fail_msg("pay refused: %s %u %s: %s", os_strerror(e), r.status, r.code, r.message);
    assert_memory_equal(t.channel_id, v->channel_id, 32);
    assert_int_equal(t.estimate, estimate);
    assert_int_equal(t.cumulative, v->cumulative_amount);
    return t;
}

static void pay_refused(sl_chans *c, const os_voucher *v, const uint8_t mh[32], uint64_t estimate,
                        unsigned status, const char *code, sl_refusal *out)
{
    sl_ticket t;
    sl_refusal r;
    os_err e = sl_chans_pay(c, &t, &r, v, mh, estimate, "openai.chat", "echo-1");
    if (e == OS_OK || e == OS_ERR_IO)
        fail_msg("pay: want %u %s, got %s", status, code, os_strerror(e));
    if (r.status != status || strcmp(r.code, code) != 0)
        fail_msg("pay: want %u %s, got %u %s (%s)", status, code, r.status, r.code, r.message);
    assert_true(r.message[0] != '\0');
    /* every refusal carries an invoice for this request */
    assert_int_equal(r.req.chain_id, CHAIN_ID);
    assert_int_equal(r.req.amount, estimate);
    assert_memory_equal(r.req.asset, fx.d.usdc, 20);
    assert_memory_equal(r.req.pay_to, fx.seller_a, 20);
    assert_memory_equal(r.req.escrow, fx.d.escrow, 20);
    assert_int_equal(r.req.max_timeout_s, 60);
    assert_true(r.req.has_metadata_hash);
    assert_memory_equal(r.req.metadata_hash, mh, 32);
    if (out != NULL)
        *out = r;
}

static uint64_t finish(sl_chans *c, const sl_ticket *t, uint64_t cost)
{
    sl_request_end e;
    uint64_t after = 0;
    memset(&e, 0, sizeof(e));
    e.cost = cost;
    e.usage.input_tokens = 10;
    e.usage.output_tokens = 5;
    e.latency_ms = 3;
    e.upstream_status = 200;
    e.outcome = "ok";
    assert_int_equal(sl_chans_finish(c, &after, t, &e), OS_OK);
    return after;
}

/* Number of rows of a ledger JSON view's array. */
static size_t view_len(json_t *v, const char *key)
{
    size_t n;
    assert_non_null(v);
    assert_true(json_is_array(json_object_get(v, key)));
    n = json_array_size(json_object_get(v, key));
    json_decref(v);
    return n;
}

static size_t voucher_count(sl_ledger *l, const uint8_t id[32])
{
    return view_len(sl_ledger_vouchers_json(l, id, 1000), "vouchers");
}

/* The stored channel must be exactly `want` in what a payment may change. */
static void expect_ledger(sl_ledger *l, const sl_channel *want, size_t vouchers)
{
    sl_channel got;
    assert_int_equal(sl_ledger_channel_get(l, &got, want->id), OS_OK);
    assert_int_equal(got.has_voucher, want->has_voucher);
    assert_int_equal(got.voucher.nonce, want->voucher.nonce);
    assert_int_equal(got.voucher.cumulative_amount, want->voucher.cumulative_amount);
    assert_memory_equal(got.voucher.metadata_hash, want->voucher.metadata_hash, 32);
    assert_memory_equal(got.voucher.sig, want->voucher.sig, 65);
    assert_int_equal(got.consumed, want->consumed);
    assert_int_equal(got.requests, want->requests);
    assert_int_equal(voucher_count(l, want->id), vouchers);
}

static sl_chans_stats stats(sl_chans *c)
{
    sl_chans_stats s;
    sl_chans_get_stats(c, &s);
    return s;
}

/* Polls cond (an expression) every 50 ms for up to ms milliseconds. */
#define WAIT_FOR(cond, ms, what)                                                                   \
    do {                                                                                           \
        long long until_ = now_ms() + (ms);                                                        \
        while (!(cond)) {                                                                          \
            if (now_ms() > until_)                                                                 \
                fail_msg("timed out waiting for %s", what);                                        \
            sleep_ms(50);                                                                          \
        }                                                                                          \
    } while (0)

/* ---- lookups ----------------------------------------------------------------------------- */

static void test_lookup_unknown(void **state)
{
    seller_fx *s = &fx.s;
    sl_chan_view view;
    char why[128];
    uint8_t salt[32], id[32], never[32];
    chan_fx ch;
    long long first;
    (void)state;
    seller_start(s, "unknown", NULL, false);

    /* an id nobody opened */
    new_hash(never);
    assert_int_equal(sl_chans_lookup(s->c, &view, never, why, sizeof(why)), OS_ERR_NOTFOUND);
    assert_true(strstr(why, "no such channel") != NULL);

    /* an id that will exist: refused, and still refused within the TTL after it is opened,
     * because the answer is remembered rather than read again */
    new_salt(salt);
    os_escrow_channel_id(id, CHAIN_ID, fx.d.escrow, fx.payer_a, fx.seller_a, salt);
    first = now_ms();
    assert_int_equal(sl_chans_lookup(s->c, &view, id, why, sizeof(why)), OS_ERR_NOTFOUND);
    open_channel(&ch, 1000000, NULL, salt);
    assert_memory_equal(ch.id, id, 32);
    if (now_ms() - first < TTL_MS - 200)
        assert_int_equal(sl_chans_lookup(s->c, &view, id, why, sizeof(why)), OS_ERR_NOTFOUND);
    else
        print_message("(opening took longer than the TTL; the cached refusal was not checked)\n");
    assert_int_equal(stats(s->c).channels, 0);
    /* after the TTL it is read again, found, stored and usable */
    while (now_ms() - first <= TTL_MS + 50)
        sleep_ms(50);
    lookup_ok(s->c, &ch);
    assert_int_equal(stats(s->c).channels, 1);
    assert_int_equal(stats(s->c).unverified, 0);
    {
        sl_channel row;
        assert_int_equal(sl_ledger_channel_get(s->l, &row, id), OS_OK);
        assert_memory_equal(row.chain.seller, fx.seller_a, 20);
        assert_memory_equal(row.chain.signer, ch.signer, 20);
        assert_int_equal(row.chain.deposit, 1000000);
        assert_false(row.has_voucher);
    }
    /* a second lookup is served from the cache */
    lookup_ok(s->c, &ch);
    seller_end(s);
}

static void test_lookup_other_seller(void **state)
{
    seller_fx *s = &fx.s;
    sl_chan_view view;
    char why[128];
    chan_fx ch;
    sl_channel row;
    (void)state;
    seller_start(s, "other", NULL, false);
    open_channel(&ch, 500000, fx.other_seller, NULL);
    assert_int_equal(sl_chans_lookup(s->c, &view, ch.id, why, sizeof(why)), OS_ERR_INVALID);
    assert_true(strstr(why, "another seller") != NULL);
    assert_int_equal(sl_chans_lookup(s->c, &view, ch.id, why, sizeof(why)), OS_ERR_INVALID);
    /* never stored as ours, never payable */
    assert_int_equal(stats(s->c).channels, 0);
    assert_int_equal(sl_ledger_channel_get(s->l, &row, ch.id), OS_ERR_NOTFOUND);
    {
        os_voucher v;
        uint8_t mh[32];
        new_hash(mh);
        voucher(&v, &ch, 1000, 1, mh);
        pay_refused(s->c, &v, mh, 1000, 402, "unknown_channel", NULL);
    }
    seller_end(s);
}

/* A node that accepts connections (the kernel's backlog does) and never answers. */
typedef struct lookup_job {
    sl_chans *c;
    uint8_t id[32];
    os_err e;
    char why[128];
} lookup_job;

static void *lookup_thread(void *arg)
{
    lookup_job *j = arg;
    sl_chan_view view;
    j->e = sl_chans_lookup(j->c, &view, j->id, j->why, sizeof(j->why));
    return NULL;
}

static void test_lookup_slots_and_dead_node(void **state)
{
    seller_fx *s = &fx.s;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    os_chain_config ccfg;
    os_chain *dead = NULL;
    char url[64], why[128];
    lookup_job j;
    pthread_t th;
    sl_chan_view view;
    uint8_t other[32];
    int fd;
    (void)state;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    os_chain_config_default(&ccfg, url);
    ccfg.request_timeout_ms = 1500;
    ccfg.max_retries = 0;
    assert_int_equal(os_chain_new(&dead, &ccfg), OS_OK);

    ledger_open(s, "dead");
    base_config(&s->cfg, s->l);
    s->cfg.chain = dead;
    s->cfg.max_lookups = 1;
    assert_int_equal(sl_chans_new(&s->c, &s->cfg), OS_OK);

    memset(&j, 0, sizeof(j));
    j.c = s->c;
    new_hash(j.id);
    new_hash(other);
    assert_int_equal(pthread_create(&th, NULL, lookup_thread, &j), 0);
    sleep_ms(400);
    /* the one slot is taken by a read that hangs: answer 503 at once */
    assert_int_equal(sl_chans_lookup(s->c, &view, other, why, sizeof(why)), OS_ERR_TOOBIG);
    pthread_join(th, NULL);
    assert_int_equal(j.e, OS_ERR_NETWORK);
    assert_true(j.why[0] != '\0');
    assert_true(stats(s->c).chain_errors >= 1);
    /* a failed read is not remembered as "unknown": the next lookup tries again */
    assert_int_equal(sl_chans_lookup(s->c, &view, j.id, why, sizeof(why)), OS_ERR_NETWORK);

    seller_end(s);
    os_chain_free(dead);
    close(fd);
}

/* ---- paying ------------------------------------------------------------------------------ */

static void test_pay_and_finish(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    os_voucher v;
    uint8_t mh[32];
    sl_ticket t;
    sl_channel row;
    os_x402_requirement inv;
    (void)state;
    seller_start(s, "pay", NULL, false);
    open_channel(&ch, 10000000, NULL, NULL);
    lookup_ok(s->c, &ch);

    new_hash(mh);
    voucher(&v, &ch, 1000, 1, mh);
    t = pay_ok(s->c, &v, mh, 1000);
    /* stored before pay returned */
    assert_int_equal(sl_ledger_channel_get(s->l, &row, ch.id), OS_OK);
    assert_true(row.has_voucher);
    assert_int_equal(row.voucher.nonce, 1);
    assert_int_equal(row.voucher.cumulative_amount, 1000);
    assert_memory_equal(row.voucher.sig, v.sig, 65);
    assert_int_equal(voucher_count(s->l, ch.id), 1);
    assert_int_equal(stats(s->c).in_flight, 1);
    /* the invoice counts the reservation in consumed */
    sl_chans_invoice(s->c, &inv, ch.id, 77, NULL);
    assert_true(inv.has_channel);
    assert_false(inv.has_metadata_hash);
    assert_int_equal(inv.amount, 77);
    assert_int_equal(inv.consumed, 1000);
    assert_int_equal(inv.authorized, 1000);
    assert_int_equal(inv.nonce, 1);

    assert_int_equal(finish(s->c, &t, 400), 400);
    assert_int_equal(sl_ledger_channel_get(s->l, &row, ch.id), OS_OK);
    assert_int_equal(row.consumed, 400);
    assert_int_equal(row.requests, 1);
    assert_int_equal(stats(s->c).in_flight, 0);
    assert_int_equal(stats(s->c).consumed, 400);
    sl_chans_invoice(s->c, &inv, ch.id, 500, mh);
    assert_true(inv.has_metadata_hash);
    assert_int_equal(inv.consumed, 400);
    assert_int_equal(inv.authorized, 1000);
    assert_int_equal(inv.nonce, 1);

    /* the credit left by the first request: 400 + 500 is enough even below the last 1000 */
    new_hash(mh);
    voucher(&v, &ch, 900, 2, mh);
    t = pay_ok(s->c, &v, mh, 500);
    /* a cost above the estimate is cut to it */
    assert_int_equal(finish(s->c, &t, 650), 900);
    assert_int_equal(sl_ledger_channel_get(s->l, &row, ch.id), OS_OK);
    assert_int_equal(row.consumed, 900);
    /* finishing the same ticket again books nothing and releases nothing */
    {
        sl_request_end e;
        uint64_t after = 0;
        memset(&e, 0, sizeof(e));
        e.cost = 1;
        e.outcome = "ok";
        assert_int_equal(sl_chans_finish(s->c, &after, &t, &e), OS_ERR_EXISTS);
        assert_int_equal(after, 900);
    }
    assert_int_equal(stats(s->c).in_flight, 0);
    /* an invoice for a channel it does not know has no channel part */
    {
        uint8_t nothing[32];
        new_hash(nothing);
        sl_chans_invoice(s->c, &inv, nothing, 5, NULL);
        assert_false(inv.has_channel);
        assert_int_equal(inv.amount, 5);
        assert_memory_equal(inv.pay_to, fx.seller_a, 20);
    }
    seller_end(s);
}

/* secp256k1's group order n: s -> n - s keeps the signature valid for plain ECDSA. */
static void make_high_s(os_voucher *v)
{
    static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                  0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = (int)n[i] - (int)v->sig[32 + i] - borrow;
        borrow = d < 0;
        v->sig[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    v->sig[64] = v->sig[64] == 27 ? 28 : 27;
}

static void test_pay_refusals(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch, stranger;
    os_voucher v, good;
    uint8_t mh[32], other_mh[32], other_escrow[20];
    sl_channel before;
    sl_refusal r;
    sl_ticket t;
    (void)state;
    seller_start(s, "refuse", NULL, false);
    open_channel(&ch, 5000, NULL, NULL);
    lookup_ok(s->c, &ch);
    new_hash(mh);
    voucher(&v, &ch, 1000, 1, mh);
    t = pay_ok(s->c, &v, mh, 1000);
    assert_int_equal(finish(s->c, &t, 1000), 1000);
    assert_int_equal(sl_ledger_channel_get(s->l, &before, ch.id), OS_OK);

    /* the voucher that would pass: consumed 1000 + estimate 500 */
    new_hash(mh);
    new_hash(other_mh);
    voucher(&good, &ch, 1500, 2, mh);
    assert_int_equal(os_voucher_verify(&good, ch.signer, CHAIN_ID, fx.d.escrow), OS_OK);

    /* signed by another key */
    assert_int_equal(os_secp_keygen(stranger.priv), OS_OK);
    v = good;
    assert_int_equal(os_voucher_sign(&v, stranger.priv, CHAIN_ID, fx.d.escrow), OS_OK);
    pay_refused(s->c, &v, mh, 500, 401, "invalid_signature", NULL);
    expect_ledger(s->l, &before, 1);

    /* the same signature in its high-s form: recovers the signer, still refused */
    v = good;
    make_high_s(&v);
    assert_int_equal(memcmp(v.sig, good.sig, 32), 0);
    assert_int_not_equal(memcmp(v.sig + 32, good.sig + 32, 32), 0);
    assert_int_not_equal(v.sig[64], good.sig[64]);
    pay_refused(s->c, &v, mh, 500, 401, "invalid_signature", NULL);
    expect_ledger(s->l, &before, 1);

    /* signed for another chain, and for another escrow */
    v = good;
    assert_int_equal(os_voucher_sign(&v, ch.priv, 1, fx.d.escrow), OS_OK);
    pay_refused(s->c, &v, mh, 500, 401, "invalid_signature", NULL);
    memset(other_escrow, 0x42, 20);
    v = good;
    assert_int_equal(os_voucher_sign(&v, ch.priv, CHAIN_ID, other_escrow), OS_OK);
    pay_refused(s->c, &v, mh, 500, 401, "invalid_signature", NULL);
    expect_ledger(s->l, &before, 1);

    /* an altered field breaks the signature */
    v = good;
    v.cumulative_amount = 1501;
    pay_refused(s->c, &v, mh, 500, 401, "invalid_signature", NULL);

    /* a nonce equal to the last accepted, and below it */
    voucher(&v, &ch, 1500, 1, mh);
    pay_refused(s->c, &v, mh, 500, 402, "stale_nonce", &r);
    assert_true(r.req.has_channel);
    assert_int_equal(r.req.nonce, 1);
    voucher(&v, &ch, 1500, 0, mh);
    pay_refused(s->c, &v, mh, 500, 402, "stale_nonce", NULL);
    expect_ledger(s->l, &before, 1);

    /* signed over another body */
    pay_refused(s->c, &good, other_mh, 500, 401, "metadata_mismatch", NULL);
    expect_ledger(s->l, &before, 1);

    /* above the deposit (5000) */
    voucher(&v, &ch, 5001, 2, mh);
    pay_refused(s->c, &v, mh, 500, 402, "exceeds_deposit", NULL);
    expect_ledger(s->l, &before, 1);

    /* one short of consumed + estimate: the invoice tells the buyer what to sign */
    voucher(&v, &ch, 1499, 2, mh);
    pay_refused(s->c, &v, mh, 500, 402, "insufficient_amount", &r);
    assert_true(r.req.has_channel);
    assert_memory_equal(r.req.channel_id, ch.id, 32);
    assert_int_equal(r.req.consumed, 1000);
    assert_int_equal(r.req.authorized, 1000);
    assert_int_equal(r.req.nonce, 1);
    assert_int_equal(r.req.amount, 500);
    expect_ledger(s->l, &before, 1);
    /* an estimate whose sum overflows can never be covered */
    pay_refused(s->c, &good, mh, UINT64_MAX - 10, 402, "insufficient_amount", NULL);

    /* the order of the checks: signature before nonce, nonce before body, body before amounts */
    assert_int_equal(os_secp_keygen(stranger.priv), OS_OK);
    v = good;
    v.nonce = 1;
    assert_int_equal(os_voucher_sign(&v, stranger.priv, CHAIN_ID, fx.d.escrow), OS_OK);
    pay_refused(s->c, &v, mh, 500, 401, "invalid_signature", NULL);
    voucher(&v, &ch, 1500, 1, mh);
    pay_refused(s->c, &v, other_mh, 500, 402, "stale_nonce", NULL);
    voucher(&v, &ch, 9999, 2, mh);
    pay_refused(s->c, &v, other_mh, 500, 401, "metadata_mismatch", NULL);
    voucher(&v, &ch, 9999, 2, mh);
    pay_refused(s->c, &v, mh, 9000, 402, "exceeds_deposit", NULL);
    expect_ledger(s->l, &before, 1);
    assert_int_equal(stats(s->c).in_flight, 0);

    /* after all that the good voucher still pays */
    t = pay_ok(s->c, &good, mh, 500);
    assert_int_equal(voucher_count(s->l, ch.id), 2);
    assert_int_equal(finish(s->c, &t, 100), 1100);
    seller_end(s);
}

static void test_in_flight(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    os_voucher v;
    uint8_t mh1[32], mh2[32], mh3[32];
    sl_ticket a, b, c3;
    sl_refusal r;
    os_x402_requirement inv;
    (void)state;
    seller_start(s, "inflight", NULL, false);
    open_channel(&ch, 1000000, NULL, NULL);
    lookup_ok(s->c, &ch);

    new_hash(mh1);
    voucher(&v, &ch, 300, 1, mh1);
    a = pay_ok(s->c, &v, mh1, 300);
    /* a second request while the first is in flight must cover both estimates */
    new_hash(mh2);
    voucher(&v, &ch, 499, 2, mh2);
    pay_refused(s->c, &v, mh2, 200, 402, "insufficient_amount", &r);
    assert_int_equal(r.req.consumed, 300);
    assert_int_equal(r.req.authorized, 300);
    assert_int_equal(r.req.nonce, 1);
    voucher(&v, &ch, 500, 2, mh2);
    b = pay_ok(s->c, &v, mh2, 200);
    assert_int_equal(stats(s->c).in_flight, 2);
    sl_chans_invoice(s->c, &inv, ch.id, 1, NULL);
    assert_int_equal(inv.consumed, 500);
    /* a third on top of both */
    new_hash(mh3);
    voucher(&v, &ch, 599, 3, mh3);
    pay_refused(s->c, &v, mh3, 100, 402, "insufficient_amount", NULL);
    voucher(&v, &ch, 600, 3, mh3);
    c3 = pay_ok(s->c, &v, mh3, 100);
    assert_int_equal(stats(s->c).in_flight, 3);

    /* finishing in any order releases each reservation and books each cost */
    assert_int_equal(finish(s->c, &b, 150), 150);
    sl_chans_invoice(s->c, &inv, ch.id, 1, NULL);
    assert_int_equal(inv.consumed, 150 + 300 + 100);
    assert_int_equal(finish(s->c, &a, 100), 250);
    assert_int_equal(finish(s->c, &c3, 0), 250);
    assert_int_equal(stats(s->c).in_flight, 0);
    sl_chans_invoice(s->c, &inv, ch.id, 1, NULL);
    assert_int_equal(inv.consumed, 250);
    assert_int_equal(inv.authorized, 600);
    assert_int_equal(inv.nonce, 3);
    seller_end(s);
}

/* A buyer's concurrent requests reach the seller in any order: a voucher that arrives after a
 * later one is taken once, when the later voucher covers its request. */
static void test_out_of_order(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    os_voucher v;
    uint8_t mh_a[32], mh_b[32], mh[32];
    sl_ticket ta, tb, tf;
    sl_refusal r;
    os_x402_requirement inv;
    (void)state;
    seller_start(s, "order", NULL, false);
    open_channel(&ch, 1000000, NULL, NULL);
    lookup_ok(s->c, &ch);

    /* the buyer signed A (nonce 1, 0 + 300) then B (nonce 2, 300 + 200); B arrives first */
    new_hash(mh_a);
    new_hash(mh_b);
    voucher(&v, &ch, 500, 2, mh_b);
    tb = pay_ok(s->c, &v, mh_b, 200);
    voucher(&v, &ch, 300, 1, mh_a);
    ta = pay_ok(s->c, &v, mh_a, 300);
    assert_int_equal(stats(s->c).in_flight, 2);
    /* the latest voucher is still B's */
    sl_chans_invoice(s->c, &inv, ch.id, 1, NULL);
    assert_int_equal(inv.nonce, 2);
    assert_int_equal(inv.authorized, 500);
    assert_int_equal(inv.consumed, 500);
    /* both are booked, in any order; then A again, covered this time: a nonce is used once */
    assert_int_equal(finish(s->c, &ta, 100), 100);
    assert_int_equal(finish(s->c, &tb, 150), 250);
    pay_refused(s->c, &v, mh_a, 1, 402, "stale_nonce", NULL);

    /* a much later nonce, then late ones: too far below it, or not covered by it */
    new_hash(mh);
    voucher(&v, &ch, 600, 5000, mh);
    tf = pay_ok(s->c, &v, mh, 100);
    new_hash(mh);
    voucher(&v, &ch, 601, 3, mh);
    pay_refused(s->c, &v, mh, 1, 402, "stale_nonce", NULL);
    voucher(&v, &ch, 601, 4999, mh);
    pay_refused(s->c, &v, mh, 400, 402, "insufficient_amount", &r); /* 250 + 100 + 400 > 600 */
    assert_int_equal(r.req.nonce, 5000);
    assert_int_equal(voucher_count(s->l, ch.id), 3);
    /* covered, it is taken */
    tb = pay_ok(s->c, &v, mh, 250); /* 250 + 100 + 250 = 600 */
    assert_int_equal(voucher_count(s->l, ch.id), 4);
    assert_int_equal(finish(s->c, &tf, 50), 300);
    assert_int_equal(finish(s->c, &tb, 10), 310);
    assert_int_equal(stats(s->c).in_flight, 0);
    seller_end(s);
}

/* ---- settling ---------------------------------------------------------------------------- */

/* Pays and finishes n requests on ch (nonces from *nonce), each estimate est and cost cost(i). */
static uint64_t serve(sl_chans *c, const chan_fx *ch, uint64_t *consumed, uint64_t *nonce, int n,
                      uint64_t est, uint64_t base_cost)
{
    uint64_t last_cum = 0;
    for (int i = 0; i < n; i++) {
        os_voucher v;
        uint8_t mh[32];
        sl_ticket t;
        uint64_t cost = base_cost + (uint64_t)(i % 3) * 100;
        if (cost > est)
            cost = est;
        new_hash(mh);
        last_cum = *consumed + est;
        voucher(&v, ch, last_cum, ++*nonce, mh);
        t = pay_ok(c, &v, mh, est);
        *consumed = finish(c, &t, cost);
    }
    return last_cum;
}

static void test_settle_on_demand(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    uint64_t consumed = 0, nonce = 0, last_cum, bal0, bal1, amount;
    json_t *report, *rows, *row;
    os_channel_state st;
    (void)state;
    seller_start(s, "settle", NULL, false);
    open_channel(&ch, 10000000, NULL, NULL);
    lookup_ok(s->c, &ch);
    last_cum = serve(s->c, &ch, &consumed, &nonce, 20, 10000, 7000);
    assert_int_equal(consumed, 20 * 7000 + 7 * 100 + 6 * 200);

    bal0 = devchain_balance(&fx.d, fx.seller_a);
    assert_int_equal(sl_chans_settle(s->c, &report, ch.id), OS_OK);
    bal1 = devchain_balance(&fx.d, fx.seller_a);
    rows = json_object_get(report, "settlements");
    assert_int_equal(json_array_size(rows), 1);
    row = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(row, "status")), "confirmed");
    assert_non_null(json_string_value(json_object_get(row, "tx_hash")));
    assert_true(json_integer_value(json_object_get(row, "gas_used")) > 21000);
    assert_int_equal(
        os_money_parse_units(&amount, json_string_value(json_object_get(row, "amount"))), OS_OK);
    /* the seller got exactly what the row says, which is the chain's claimed */
    assert_int_equal(bal1 - bal0, amount);
    st = chain_state(ch.id);
    assert_int_equal(st.claimed, amount);
    assert_int_equal(st.last_nonce, nonce);
    /* earned plus at most the last voucher's slack: here exactly the last voucher */
    assert_true(amount >= consumed);
    assert_true(amount <= last_cum);
    assert_int_equal(amount, last_cum);
    json_decref(report);

    /* the ledger's row */
    {
        json_t *view = sl_ledger_settlements_json(s->l, 10);
        json_t *r0 = json_array_get(json_object_get(view, "settlements"), 0);
        uint64_t gp = 0;
        assert_int_equal(json_array_size(json_object_get(view, "settlements")), 1);
        assert_string_equal(json_string_value(json_object_get(r0, "status")), "confirmed");
        assert_non_null(json_string_value(json_object_get(r0, "tx_hash")));
        assert_true(json_integer_value(json_object_get(r0, "gas_used")) > 21000);
        assert_int_equal(
            os_money_parse_units(&gp, json_string_value(json_object_get(r0, "gas_price_wei"))),
            OS_OK);
        assert_true(gp > 0);
        json_decref(view);
    }
    assert_int_equal(stats(s->c).settlements_ok, 1);
    assert_int_equal(stats(s->c).claimed, amount);

    /* nothing more to claim: no attempt, no row */
    assert_int_equal(sl_chans_settle(s->c, &report, NULL), OS_OK);
    assert_int_equal(json_array_size(json_object_get(report, "settlements")), 0);
    json_decref(report);
    assert_int_equal(view_len(sl_ledger_settlements_json(s->l, 10), "settlements"), 1);

    /* more requests, then settle everything */
    last_cum = serve(s->c, &ch, &consumed, &nonce, 3, 5000, 5000);
    bal0 = bal1;
    assert_int_equal(sl_chans_settle(s->c, NULL, NULL), OS_OK);
    bal1 = devchain_balance(&fx.d, fx.seller_a);
    st = chain_state(ch.id);
    assert_int_equal(st.claimed, last_cum);
    assert_int_equal(bal1 - bal0, last_cum - amount);
    {
        uint8_t nothing[32];
        new_hash(nothing);
        assert_int_equal(sl_chans_settle(s->c, NULL, nothing), OS_ERR_NOTFOUND);
    }
    seller_end(s);
}

static void auto_tweak(sl_chans_config *cfg)
{
    cfg->refresh_ms = 200;
    cfg->settle_threshold = 5000;
}

static void test_settle_by_threshold(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    uint64_t consumed = 0, nonce = 0, bal0;
    (void)state;
    seller_start(s, "auto", auto_tweak, true);
    open_channel(&ch, 1000000, NULL, NULL);
    lookup_ok(s->c, &ch);
    bal0 = devchain_balance(&fx.d, fx.seller_a);
    /* below the threshold: several refresh periods pass without a claim */
    serve(s->c, &ch, &consumed, &nonce, 1, 3000, 3000);
    sleep_ms(1000);
    assert_int_equal(chain_state(ch.id).claimed, 0);
    assert_int_equal(stats(s->c).settlements_ok, 0);
    /* at it: claimed without anyone asking */
    serve(s->c, &ch, &consumed, &nonce, 1, 3000, 3000);
    assert_int_equal(consumed, 6000);
    WAIT_FOR(chain_state(ch.id).claimed == 6000, 10000, "the automatic claim");
    WAIT_FOR(stats(s->c).settlements_ok == 1, 5000, "the settlement to be counted");
    assert_int_equal(devchain_balance(&fx.d, fx.seller_a) - bal0, 6000);
    WAIT_FOR(view_len(sl_ledger_settlements_json(s->l, 10), "settlements") == 1, 5000,
             "the settlement row");
    seller_end(s);
}

static void close_tweak(sl_chans_config *cfg)
{
    cfg->refresh_ms = 200;
}

static void test_close_request_claimed(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    uint64_t consumed = 0, nonce = 0, last_cum, t_req, now;
    os_voucher v;
    uint8_t mh[32];
    sl_ticket pending;
    sl_chan_view view;
    char why[128];
    sl_channel before;
    os_chain_receipt *rc;
    os_channel_state st;
    (void)state;
    seller_start(s, "close", close_tweak, true);
    open_channel(&ch, 1000000, NULL, NULL);
    lookup_ok(s->c, &ch);
    serve(s->c, &ch, &consumed, &nonce, 2, 2000, 2000);
    /* one request still running when the payer asks to close */
    new_hash(mh);
    last_cum = consumed + 3000;
    voucher(&v, &ch, last_cum, ++nonce, mh);
    pending = pay_ok(s->c, &v, mh, 3000);

    OK(os_escrow_request_close(fx.payer, &rc, &err_, fx.d.escrow, ch.id), "requestClose");
    DEV(devchain_block_time(&fx.d, &t_req, rc->block_number, why_, WHY));
    os_chain_receipt_free(rc);

    /* noticed and claimed (threshold and interval are far off) before the grace ends */
    WAIT_FOR(chain_state(ch.id).claimed == 4000, 10000, "the claim after requestClose");
    DEV(devchain_time(&fx.d, &now, why_, WHY));
    assert_true(now < t_req + GRACE);
    /* closing: no new lookups or payments */
    assert_int_equal(sl_chans_lookup(s->c, &view, ch.id, why, sizeof(why)), OS_ERR_INVALID);
    assert_true(strstr(why, "closing") != NULL);
    assert_int_equal(sl_ledger_channel_get(s->l, &before, ch.id), OS_OK);
    new_hash(mh);
    voucher(&v, &ch, last_cum + 1000, nonce + 1, mh);
    pay_refused(s->c, &v, mh, 1000, 402, "channel_closed", NULL);
    expect_ledger(s->l, &before, 3);
    /* the request that was running ends; what it earned is claimed too */
    consumed = finish(s->c, &pending, 2500);
    assert_int_equal(consumed, 6500);
    WAIT_FOR(chain_state(ch.id).claimed == last_cum, 10000, "the second claim while closing");
    st = chain_state(ch.id);
    assert_int_equal(st.last_nonce, nonce);
    assert_true(st.close_at != 0);
    /* the chain shows the claim as soon as it is mined; its row follows the receipt */
    WAIT_FOR(view_len(sl_ledger_settlements_json(s->l, 10), "settlements") == 2, 5000,
             "the second settlement row");
    seller_end(s);
}

/* ---- restarts ---------------------------------------------------------------------------- */

static void verify_tweak(sl_chans_config *cfg)
{
    cfg->refresh_ms = 200;
}

static void test_restart(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    uint64_t consumed = 0, nonce = 0;
    os_voucher v;
    uint8_t mh[32];
    sl_ticket t;
    os_x402_requirement inv;
    (void)state;
    seller_start(s, "restart", NULL, false);
    open_channel(&ch, 1000000, NULL, NULL);
    lookup_ok(s->c, &ch);
    serve(s->c, &ch, &consumed, &nonce, 2, 1000, 600);
    seller_restart(s);

    /* loaded from seller.db, not trusted until re-read */
    seller_start(s, "restart", NULL, false);
    assert_int_equal(stats(s->c).channels, 1);
    assert_int_equal(stats(s->c).unverified, 1);
    assert_int_equal(stats(s->c).consumed, consumed);
    sl_chans_invoice(s->c, &inv, ch.id, 1000, NULL);
    assert_true(inv.has_channel);
    assert_int_equal(inv.consumed, consumed);
    assert_int_equal(inv.nonce, 2);
    new_hash(mh);
    voucher(&v, &ch, consumed + 1000, nonce + 1, mh);
    pay_refused(s->c, &v, mh, 1000, 402, "unknown_channel", NULL);
    lookup_ok(s->c, &ch);
    assert_int_equal(stats(s->c).unverified, 0);
    /* the nonce history survived the restart */
    {
        os_voucher old;
        voucher(&old, &ch, consumed + 1000, nonce, mh);
        pay_refused(s->c, &old, mh, 1000, 402, "stale_nonce", NULL);
    }
    t = pay_ok(s->c, &v, mh, 1000);
    consumed = finish(s->c, &t, 1000);
    nonce++;
    seller_restart(s);

    /* the background thread re-reads loaded channels by itself */
    seller_start(s, "restart", verify_tweak, false);
    assert_int_equal(stats(s->c).unverified, 1);
    assert_int_equal(sl_chans_start(s->c), OS_OK);
    WAIT_FOR(stats(s->c).unverified == 0, 5000, "the background re-verification");
    new_hash(mh);
    voucher(&v, &ch, consumed + 500, nonce + 1, mh);
    t = pay_ok(s->c, &v, mh, 500);
    finish(s->c, &t, 500);
    seller_end(s);
}

static void test_closed_while_down(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    uint64_t consumed = 0, nonce = 0;
    os_voucher v;
    uint8_t mh[32];
    sl_chan_view view;
    char why[128];
    sl_channel before, row;
    (void)state;
    seller_start(s, "down", NULL, false);
    open_channel(&ch, 1000000, NULL, NULL);
    lookup_ok(s->c, &ch);
    serve(s->c, &ch, &consumed, &nonce, 2, 1000, 1000);
    seller_restart(s);

    /* while the seller is down the payer closes and takes everything back */
    OK(os_escrow_request_close(fx.payer, NULL, &err_, fx.d.escrow, ch.id), "requestClose");
    DEV(devchain_advance(&fx.d, GRACE + 1, why_, WHY));
    OK(os_escrow_withdraw(fx.payer, NULL, &err_, fx.d.escrow, ch.id), "withdraw");
    assert_true(chain_state(ch.id).closed);

    seller_start(s, "down", NULL, false);
    assert_int_equal(sl_ledger_channel_get(s->l, &before, ch.id), OS_OK);
    assert_false(before.chain.closed);
    new_hash(mh);
    voucher(&v, &ch, consumed + 1000, nonce + 1, mh);
    /* refused before and after the re-read, never served */
    pay_refused(s->c, &v, mh, 1000, 402, "unknown_channel", NULL);
    assert_int_equal(sl_chans_lookup(s->c, &view, ch.id, why, sizeof(why)), OS_ERR_INVALID);
    assert_true(strstr(why, "closed") != NULL);
    pay_refused(s->c, &v, mh, 1000, 402, "channel_closed", NULL);
    expect_ledger(s->l, &before, 2);
    /* the re-read is stored */
    assert_int_equal(sl_ledger_channel_get(s->l, &row, ch.id), OS_OK);
    assert_true(row.chain.closed);
    /* and nothing is claimed on it */
    assert_int_equal(sl_chans_settle(s->c, NULL, NULL), OS_OK);
    assert_int_equal(view_len(sl_ledger_settlements_json(s->l, 10), "settlements"), 0);
    seller_end(s);
}

/* ---- last: the chain goes away ----------------------------------------------------------- */

static void test_chain_outage(void **state)
{
    seller_fx *s = &fx.s;
    chan_fx ch;
    uint64_t consumed = 0, nonce = 0, errors;
    long long t0;
    (void)state;
    seller_start(s, "outage", close_tweak, true);
    open_channel(&ch, 1000000, NULL, NULL);
    lookup_ok(s->c, &ch);
    serve(s->c, &ch, &consumed, &nonce, 1, 1000, 500);
    errors = stats(s->c).chain_errors;

    anvil_stop(&fx.d.anvil);
    /* verified channels keep paying from the cache while the background reads fail */
    WAIT_FOR(stats(s->c).chain_errors > errors, 15000, "a failed chain read");
    lookup_ok(s->c, &ch);
    serve(s->c, &ch, &consumed, &nonce, 3, 1000, 500);
    assert_int_equal(consumed, 500 * 4 + 100 + 200);
    assert_int_equal(stats(s->c).unverified, 0);
    t0 = now_ms();
    sl_chans_stop(s->c);
    assert_true(now_ms() - t0 < 10000);
    seller_end(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_lookup_unknown, seller_cleanup),
        cmocka_unit_test_teardown(test_lookup_other_seller, seller_cleanup),
        cmocka_unit_test_teardown(test_lookup_slots_and_dead_node, seller_cleanup),
        cmocka_unit_test_teardown(test_pay_and_finish, seller_cleanup),
        cmocka_unit_test_teardown(test_pay_refusals, seller_cleanup),
        cmocka_unit_test_teardown(test_in_flight, seller_cleanup),
        cmocka_unit_test_teardown(test_out_of_order, seller_cleanup),
        cmocka_unit_test_teardown(test_settle_on_demand, seller_cleanup),
        cmocka_unit_test_teardown(test_settle_by_threshold, seller_cleanup),
        cmocka_unit_test_teardown(test_close_request_claimed, seller_cleanup),
        cmocka_unit_test_teardown(test_restart, seller_cleanup),
        cmocka_unit_test_teardown(test_closed_while_down, seller_cleanup),
        cmocka_unit_test_teardown(test_chain_outage, seller_cleanup), /* stops anvil: keep last */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
