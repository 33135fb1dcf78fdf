/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's wallet (src/buyer/wallet.c, wallet_chain.c, bdb.c) on a real anvil chain with the
 * committed TestUSDC and OpenSeedChannels (grace 60 s), over real buyer.db files in a temp dir.
 * The payer is anvil account 1 (account 3 for openWithAuthorization), funded with minted USDC;
 * sellers are random addresses, one or more per test, so tests share the chain without sharing
 * channels. Every voucher is checked as the seller would (src/seller/chans.c): the signature
 * recovers the channel's on-chain signer, the metadataHash is the request's, the credential's C
 * is the on-chain commitment and its proof verifies over (channel, mh); tampered copies must
 * fail. Covered: first pay opens (approve + open, and openWithAuthorization with no approve),
 * concurrent first pays share one open, committed = consumed + in flight + estimate across
 * finished, failed and in-flight requests, 402 invoices adopted or refused (above what was ever
 * authorised, another payee, a larger estimate, a channel cap), top-ups (deposit grows on chain,
 * stops at budget_channel), budgets (request, day with in-flight, channel), restart with
 * recovery (nonce and consumed back; an "opening" row dropped when its open never went out and
 * completed when it did), close + withdraw after the grace, JSON views without secrets, the
 * wallet address absent from PAYMENT-SIGNATURE and the credential, and buyer.db's mode.
 */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "devchain.h"
#include "openseed/base64.h"
#include "openseed/credential.h"
#include "openseed/log.h"
#include "openseed/money.h"
#include "openseed/secp.h"
#include "openseed/x402.h"

#include "bdb.h"
#include "wallet.h"

#define CHAIN_ID 8453
#define GRACE 60
#define WHY 512
#define DEPOSIT UINT64_C(1000000)

static struct {
    devchain d;
    os_chain_signer *payer, *payer2;
    uint8_t payer_a[20], payer2_a[20];
    char dir[64];
    os_logger log;
} fx;

static int setup(void **state)
{
    char why[WHY];
    (void)state;
    if (os_init() != OS_OK)
        return -1;
    os_logger_init(&fx.log, "wallet-test", OS_LOG_WARN);
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/os-wallet-XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    if (devchain_start(&fx.d, CHAIN_ID, GRACE, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &fx.payer, 1, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &fx.payer2, 3, why, sizeof(why)) != 0) {
        fprintf(stderr, "FAIL: set-up: %s\n", why);
        return -1;
    }
    os_chain_signer_address(fx.payer, fx.payer_a);
    os_chain_signer_address(fx.payer2, fx.payer2_a);
    if (devchain_mint(&fx.d, fx.payer_a, UINT64_C(1000000000), why, sizeof(why)) != 0 ||
        devchain_mint(&fx.d, fx.payer2_a, UINT64_C(1000000000), why, sizeof(why)) != 0) {
        fprintf(stderr, "FAIL: set-up: %s\n", why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    os_chain_signer_free(fx.payer);
    os_chain_signer_free(fx.payer2);
    devchain_stop(&fx.d);
    if (fx.dir[0] != '\0')
        tu_rmdir_flat(fx.dir);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static void db_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", fx.dir, name);
}

static void default_cfg(by_wallet_config *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    c->chain = fx.d.ch;
    c->payer = fx.payer;
    c->db_path = path;
    c->chain_id = CHAIN_ID;
    memcpy(c->escrow, fx.d.escrow, 20);
    memcpy(c->usdc, fx.d.usdc, 20);
    c->deposit = DEPOSIT;
    c->log = &fx.log;
}

static by_wallet *wallet_at(const by_wallet_config *c)
{
    by_wallet *w = NULL;
    os_err e = by_wallet_new(&w, c);
    if (e != OS_OK)
        fail_msg("by_wallet_new: %s", os_strerror(e));
    return w;
}

/* A wallet on a fresh buyer.db called name, default configuration. */
static by_wallet *wallet_named(const char *name)
{
    char path[256];
    by_wallet_config c;
    db_path(path, sizeof(path), name);
    default_cfg(&c, path);
    return wallet_at(&c);
}

static void rand_bytes(uint8_t *p, size_t n)
{
    randombytes_buf(p, n);
}

/* Pays and asserts success; mh gets a fresh random metadata hash. */
static void pay_ok(by_wallet *w, by_payment *p, const uint8_t seller[20], uint64_t est,
                   uint8_t mh[32])
{
    char why[WHY] = "";
    by_refusal kind = BY_REFUSE_BUDGET;
    os_err e;
    rand_bytes(mh, 32);
    e = by_wallet_pay(w, p, &kind, why, sizeof(why), seller, "svc", "openai.chat", est, mh);
    if (e != OS_OK)
        fail_msg("by_wallet_pay(%" PRIu64 "): %s kind=%d: %s", est, os_strerror(e), (int)kind, why);
    assert_int_equal(kind, BY_REFUSE_NONE);
}

/* Pays expecting a refusal of kind k whose reason contains needle. */
static void pay_refused(by_wallet *w, const uint8_t seller[20], uint64_t est, by_refusal k,
                        const char *needle)
{
    char why[WHY] = "";
    by_refusal kind = BY_REFUSE_NONE;
    by_payment p;
    uint8_t mh[32];
    rand_bytes(mh, 32);
    assert_int_not_equal(
        by_wallet_pay(w, &p, &kind, why, sizeof(why), seller, "svc", "openai.chat", est, mh),
        OS_OK);
    if (kind != k || strstr(why, needle) == NULL)
        fail_msg("expected refusal %d with \"%s\", got %d: %s", (int)k, needle, (int)kind, why);
    assert_null(p.payment);
}

static os_channel_state chain_state(const uint8_t id[32])
{
    os_channel_state st;
    os_chain_error err;
    os_err e = os_escrow_get_channel(fx.d.ch, &st, &err, fx.d.escrow, id);
    if (e != OS_OK)
        fail_msg("getChannel: %s (%s)", os_strerror(e), err.message);
    return st;
}

static os_infer_final final_of(uint64_t cost, uint64_t consumed)
{
    os_infer_final f;
    memset(&f, 0, sizeof(f));
    f.status = 200;
    f.usage.input_tokens = 10;
    f.usage.output_tokens = 5;
    f.cost = cost;
    f.cumulative_consumed = consumed;
    return f;
}

/*
 * Checks p as the seller would: PAYMENT-SIGNATURE decodes to a voucher for p's channel, amount,
 * nonce and mh, signed by the channel's on-chain signer; the credential carries the on-chain
 * commitment and proves it over (channel, mh). Tampered copies fail, so the check can fail.
 */
static void check_payment(const by_payment *p, const uint8_t mh[32])
{
    os_voucher v, bad;
    os_x402_requirement acc;
    os_channel_state st;
    uint8_t c[32], nf[32], proof[96], other[32];
    char err[OS_X402_ERR_LEN];

    assert_non_null(p->payment);
    if (os_x402_payment_decode(&v, &acc, p->payment, err, sizeof(err)) != OS_OK)
        fail_msg("PAYMENT-SIGNATURE does not decode: %s", err);
    assert_memory_equal(v.channel_id, p->channel_id, 32);
    assert_true(v.cumulative_amount == p->cumulative);
    assert_true(v.nonce == p->nonce);
    assert_memory_equal(v.metadata_hash, mh, 32);
    assert_true(acc.chain_id == CHAIN_ID);
    assert_memory_equal(acc.pay_to, p->seller, 20);
    assert_memory_equal(acc.escrow, fx.d.escrow, 20);
    assert_memory_equal(acc.asset, fx.d.usdc, 20);
    assert_true(acc.max_timeout_s == 300);

    st = chain_state(p->channel_id);
    assert_memory_equal(st.seller, p->seller, 20);
    assert_int_equal(os_voucher_verify(&v, st.signer, CHAIN_ID, fx.d.escrow), OS_OK);
    assert_true(v.cumulative_amount <= st.deposit);
    bad = v;
    bad.cumulative_amount++;
    assert_int_not_equal(os_voucher_verify(&bad, st.signer, CHAIN_ID, fx.d.escrow), OS_OK);

    assert_int_equal(strlen(p->credential), OS_CRED_HEADER_LEN);
    assert_int_equal(os_cred_header_decode(c, nf, proof, p->credential, strlen(p->credential)),
                     OS_OK);
    assert_memory_equal(c, st.commitment, 32);
    assert_int_equal(os_cred_verify(st.commitment, nf, proof, p->channel_id, mh), OS_OK);
    memcpy(other, mh, 32);
    other[0] ^= 1;
    assert_int_not_equal(os_cred_verify(st.commitment, nf, proof, p->channel_id, other), OS_OK);
}

/* The channels view entry of channel id (borrowed from root), or NULL. */
static json_t *view_chan(json_t *root, const uint8_t id[32])
{
    char hex[OS_HEX_LEN(32)];
    size_t i;
    json_t *c;
    assert_int_equal(os_hex_encode(hex, sizeof(hex), id, 32, 1), OS_OK);
    json_array_foreach(json_object_get(root, "channels"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "channel_id")), hex) == 0)
            return c;
    }
    return NULL;
}

static void assert_str_field(json_t *o, const char *key, const char *want)
{
    const char *got = json_string_value(json_object_get(o, key));
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", key, got != NULL ? got : "(none)", want);
}

static uint64_t payer_nonce(os_chain_signer *s)
{
    uint8_t a[20];
    uint64_t n = 0;
    os_chain_error err;
    os_chain_signer_address(s, a);
    assert_int_equal(os_chain_nonce(fx.d.ch, &n, &err, a), OS_OK);
    return n;
}

/* ERC-20 allowance(owner, spender) by eth_call (selector 0xdd62ed3e). */
static uint64_t allowance(const uint8_t owner[20], const uint8_t spender[20])
{
    uint8_t data[4 + 64] = {0xdd, 0x62, 0xed, 0x3e};
    os_chain_msg msg;
    os_chain_error err;
    os_buf out;
    uint64_t v = 0;
    memcpy(data + 4 + 12, owner, 20);
    memcpy(data + 36 + 12, spender, 20);
    memset(&msg, 0, sizeof(msg));
    msg.has_to = true;
    memcpy(msg.to, fx.d.usdc, 20);
    msg.data = data;
    msg.data_len = sizeof(data);
    os_buf_init(&out, 64);
    assert_int_equal(os_chain_call(fx.d.ch, &out, &err, &msg, NULL), OS_OK);
    assert_int_equal(out.len, 32);
    for (size_t i = 24; i < 32; i++)
        v = (v << 8) | out.data[i];
    os_buf_free(&out);
    return v;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* First pay: approve + open with the configured deposit, payer/seller/signer/commitment on chain
 * as the wallet made them, the voucher and credential verify; the next pay reuses the channel. */
static void test_first_pay_opens(void **state)
{
    by_wallet *w = wallet_named("first.db");
    by_payment p, q;
    os_channel_state st;
    os_infer_final f;
    uint8_t seller[20], mh[32];
    uint64_t bal0, bal1;
    json_t *v, *c;
    (void)state;

    rand_bytes(seller, 20);
    bal0 = devchain_balance(&fx.d, fx.payer_a);
    pay_ok(w, &p, seller, 1234, mh);
    bal1 = devchain_balance(&fx.d, fx.payer_a);
    assert_true(bal0 - bal1 == DEPOSIT);
    assert_true(p.nonce == 1);
    assert_true(p.cumulative == 1234);
    assert_true(p.estimate == 1234);
    assert_true(p.request_id != 0);
    assert_memory_equal(p.seller, seller, 20);
    st = chain_state(p.channel_id);
    assert_memory_equal(st.payer, fx.payer_a, 20);
    assert_memory_equal(st.seller, seller, 20);
    assert_true(st.deposit == DEPOSIT);
    assert_false(st.closed);
    assert_true(st.close_at == 0);
    check_payment(&p, mh);

    v = by_wallet_channels_json(w);
    assert_non_null(v);
    c = view_chan(v, p.channel_id);
    assert_non_null(c);
    assert_str_field(c, "state", "open");
    assert_str_field(c, "deposit", "1000000");
    assert_str_field(c, "authorized", "1234");
    assert_str_field(c, "remaining", "998766");
    assert_true(json_integer_value(json_object_get(c, "nonce")) == 1);
    assert_true(strncmp(json_string_value(json_object_get(c, "opened_tx")), "0x", 2) == 0);
    json_decref(v);

    f = final_of(1000, 1000);
    by_wallet_done(w, &p, &f, "ok", 12, 3);
    assert_null(p.payment);
    pay_ok(w, &q, seller, 500, mh);
    assert_memory_equal(q.channel_id, p.channel_id, 32);
    assert_true(q.nonce == 2);
    assert_true(q.cumulative == 1500);
    check_payment(&q, mh);
    by_wallet_done(w, &q, NULL, "failed", 1, 0);
    assert_true(devchain_balance(&fx.d, fx.payer_a) == bal1); /* no second open */
    by_wallet_free(w);
}

/* openWithAuthorization: one transaction from the payer, no allowance ever given. */
static void test_open_with_authorization(void **state)
{
    char path[256];
    by_wallet_config cfg;
    by_wallet *w;
    by_payment p;
    os_channel_state st;
    uint8_t seller[20], mh[32], key[32];
    uint64_t n0;
    (void)state;

    db_path(path, sizeof(path), "auth.db");
    default_cfg(&cfg, path);
    cfg.payer = fx.payer2;
    cfg.open_with_authorization = true;
    w = wallet_at(&cfg);
    devchain_key(key, 1); /* not payer2's */
    assert_int_equal(by_wallet_set_payer_key(w, key), OS_ERR_INVALID);
    devchain_key(key, 3);
    assert_int_equal(by_wallet_set_payer_key(w, key), OS_OK);
    sodium_memzero(key, sizeof(key));

    rand_bytes(seller, 20);
    n0 = payer_nonce(fx.payer2);
    pay_ok(w, &p, seller, 777, mh);
    assert_true(payer_nonce(fx.payer2) == n0 + 1); /* one transaction */
    assert_true(allowance(fx.payer2_a, fx.d.escrow) == 0);
    st = chain_state(p.channel_id);
    assert_memory_equal(st.payer, fx.payer2_a, 20);
    assert_memory_equal(st.seller, seller, 20);
    assert_true(st.deposit == DEPOSIT);
    check_payment(&p, mh);
    by_wallet_done(w, &p, NULL, "cancelled", 0, 0);
    by_wallet_free(w);
}

typedef struct racer {
    pthread_barrier_t *bar;
    by_wallet *w;
    const uint8_t *seller;
    by_payment p;
    uint8_t mh[32];
    os_err rc;
    char why[WHY];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    by_refusal kind;
    rand_bytes(r->mh, 32);
    pthread_barrier_wait(r->bar);
    r->rc = by_wallet_pay(r->w, &r->p, &kind, r->why, sizeof(r->why), r->seller, "svc",
                          "openai.chat", 100, r->mh);
    return NULL;
}

/* Four first pays at once for one seller: one open (approve + open = two transactions), one
 * channel, four distinct nonces. */
static void test_concurrent_first_pays(void **state)
{
    by_wallet *w = wallet_named("race.db");
    pthread_barrier_t bar;
    pthread_t th[4];
    racer r[4];
    uint8_t seller[20];
    uint64_t n0, seen = 0, maxcum = 0;
    json_t *v;
    (void)state;

    rand_bytes(seller, 20);
    n0 = payer_nonce(fx.payer);
    assert_int_equal(pthread_barrier_init(&bar, NULL, 4), 0);
    for (int i = 0; i < 4; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].bar = &bar;
        r[i].w = w;
        r[i].seller = seller;
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < 4; i++) {
        if (r[i].rc != OS_OK)
            fail_msg("racer %d: %s: %s", i, os_strerror(r[i].rc), r[i].why);
        assert_memory_equal(r[i].p.channel_id, r[0].p.channel_id, 32);
        assert_true(r[i].p.nonce >= 1 && r[i].p.nonce <= 4);
        seen |= UINT64_C(1) << r[i].p.nonce;
        if (r[i].p.cumulative > maxcum)
            maxcum = r[i].p.cumulative;
        check_payment(&r[i].p, r[i].mh);
    }
    assert_true(seen == 0x1e);  /* nonces 1, 2, 3, 4 */
    assert_true(maxcum == 400); /* the last covers all four in flight */
    assert_true(payer_nonce(fx.payer) == n0 + 2);
    v = by_wallet_channels_json(w);
    assert_int_equal(json_array_size(json_object_get(v, "channels")), 1);
    assert_str_field(view_chan(v, r[0].p.channel_id), "in_flight", "400");
    json_decref(v);
    for (int i = 0; i < 4; i++)
        by_wallet_done(w, &r[i].p, NULL, "failed", 0, 0);
    v = by_wallet_channels_json(w);
    assert_str_field(view_chan(v, r[0].p.channel_id), "in_flight", "0");
    json_decref(v);
    by_wallet_free(w);
}

/* committed = consumed + in flight; finals raise consumed, failures release; a final above
 * anything authorised is ignored. */
static void test_committed_arithmetic(void **state)
{
    by_wallet *w = wallet_named("commit.db");
    by_payment a, b, c, d, e;
    os_infer_final f;
    uint8_t seller[20], mh[32];
    json_t *v, *ch;
    (void)state;

    rand_bytes(seller, 20);
    pay_ok(w, &a, seller, 100, mh);
    assert_true(a.cumulative == 100 && a.nonce == 1);
    pay_ok(w, &b, seller, 200, mh);
    assert_true(b.cumulative == 300 && b.nonce == 2);
    f = final_of(80, 80);
    by_wallet_done(w, &a, &f, "ok", 5, 1);
    pay_ok(w, &c, seller, 50, mh);
    assert_true(c.cumulative == 80 + 200 + 50 && c.nonce == 3);
    by_wallet_done(w, &b, NULL, "seller_error", 5, 0); /* released, consumed unknown */
    pay_ok(w, &d, seller, 10, mh);
    assert_true(d.cumulative == 80 + 50 + 10 && d.nonce == 4);
    check_payment(&d, mh);

    v = by_wallet_channels_json(w);
    ch = view_chan(v, d.channel_id);
    assert_str_field(ch, "consumed", "80");
    assert_str_field(ch, "authorized", "330");
    assert_str_field(ch, "in_flight", "60");
    assert_true(json_integer_value(json_object_get(ch, "nonce")) == 4);
    json_decref(v);

    f = final_of(50, 130);
    by_wallet_done(w, &c, &f, "ok", 5, 1);
    f = final_of(10, 140);
    by_wallet_done(w, &d, &f, "ok", 5, 1);
    pay_ok(w, &e, seller, 5, mh);
    assert_true(e.cumulative == 145 && e.nonce == 5);
    f = final_of(5, 999999); /* above the 330 ever authorised: not believed */
    by_wallet_done(w, &e, &f, "ok", 5, 1);
    v = by_wallet_channels_json(w);
    assert_str_field(view_chan(v, e.channel_id), "consumed", "140");
    json_decref(v);
    by_wallet_free(w);
}

static os_x402_requirement invoice_for(const by_payment *p, uint64_t consumed, uint64_t authorized,
                                       uint64_t nonce, const uint8_t mh[32])
{
    os_x402_requirement r;
    memset(&r, 0, sizeof(r));
    r.chain_id = CHAIN_ID;
    r.amount = p->estimate;
    memcpy(r.asset, fx.d.usdc, 20);
    memcpy(r.pay_to, p->seller, 20);
    r.max_timeout_s = 300;
    memcpy(r.escrow, fx.d.escrow, 20);
    r.has_channel = true;
    memcpy(r.channel_id, p->channel_id, 32);
    r.consumed = consumed;
    r.authorized = authorized;
    r.nonce = nonce;
    r.has_metadata_hash = true;
    memcpy(r.metadata_hash, mh, 32);
    return r;
}

static void repay_refused(by_wallet *w, by_payment *p, const os_x402_requirement *r, by_refusal k,
                          const char *needle)
{
    char why[WHY] = "";
    by_refusal kind = BY_REFUSE_NONE;
    uint8_t mh[32];
    uint64_t nonce = p->nonce, cum = p->cumulative;
    rand_bytes(mh, 32);
    assert_int_not_equal(by_wallet_repay(w, p, &kind, why, sizeof(why), r, mh), OS_OK);
    if (kind != k || strstr(why, needle) == NULL)
        fail_msg("expected refusal %d with \"%s\", got %d: %s", (int)k, needle, (int)kind, why);
    assert_true(p->nonce == nonce && p->cumulative == cum); /* p untouched */
    assert_non_null(p->payment);
}

/* 402: an invoice within what was authorised is adopted (and booked as spent); one above it, for
 * another payee, with a larger estimate, or needing more than budget_channel is refused. */
static void test_repay(void **state)
{
    char path[256], why[WHY];
    by_wallet_config cfg;
    by_wallet *w = wallet_named("repay.db"), *w2;
    by_payment a, b, x, y;
    os_x402_requirement r;
    by_refusal kind;
    uint8_t seller[20], mh[32], mh2[32];
    json_t *v;
    (void)state;

    rand_bytes(seller, 20);
    pay_ok(w, &a, seller, 1000, mh);
    by_wallet_done(w, &a, NULL, "failed", 0, 0); /* the seller may have charged: unknown */
    pay_ok(w, &b, seller, 300, mh);
    assert_true(b.cumulative == 300 && b.nonce == 2);

    r = invoice_for(&b, 700, 1000, 2, mh);
    rand_bytes(mh2, 32);
    assert_int_equal(by_wallet_repay(w, &b, &kind, why, sizeof(why), &r, mh2), OS_OK);
    assert_int_equal(kind, BY_REFUSE_NONE);
    assert_true(b.cumulative == 700 + 300);
    assert_true(b.nonce == 3);
    check_payment(&b, mh2);
    v = by_wallet_channels_json(w);
    assert_str_field(view_chan(v, b.channel_id), "consumed", "700");
    json_decref(v);
    v = by_wallet_spend_json(w);
    assert_str_field(json_object_get(v, "today"), "spent", "700");
    json_decref(v);

    r = invoice_for(&b, 1001, 1001, 3, mh2);
    repay_refused(w, &b, &r, BY_REFUSE_SELLER, "ever authorised");
    r = invoice_for(&b, 700, 1000, 3, mh2);
    r.pay_to[0] ^= 1;
    repay_refused(w, &b, &r, BY_REFUSE_SELLER, "payee");
    r = invoice_for(&b, 700, 1000, 3, mh2);
    r.amount = 301;
    repay_refused(w, &b, &r, BY_REFUSE_SELLER, "estimate");
    r = invoice_for(&b, 700, 1000, 3, mh2);
    r.has_channel = false;
    repay_refused(w, &b, &r, BY_REFUSE_SELLER, "channel");
    by_wallet_done(w, &b, NULL, "failed", 0, 0);
    by_wallet_free(w);

    /* a cap: adopting the invoice would need more than budget_channel */
    db_path(path, sizeof(path), "repay-cap.db");
    default_cfg(&cfg, path);
    cfg.deposit = 10000;
    cfg.budget_channel = 10000;
    w2 = wallet_at(&cfg);
    pay_ok(w2, &x, seller, 9000, mh);
    by_wallet_done(w2, &x, NULL, "failed", 0, 0);
    pay_ok(w2, &y, seller, 2000, mh);
    assert_true(y.cumulative == 2000);
    r = invoice_for(&y, 9000, 9000, 2, mh);
    repay_refused(w2, &y, &r, BY_REFUSE_BUDGET, "budget_channel");
    by_wallet_done(w2, &y, NULL, "failed", 0, 0);
    by_wallet_free(w2);
}

/* Top-ups: when the deposit left falls below topup_below the channel grows on chain by
 * `deposit`, never past budget_channel; a voucher that cannot fit then is refused. Without a
 * cap, a request larger than the deposit tops up by what it needs. */
static void test_topup(void **state)
{
    char path[256];
    by_wallet_config cfg;
    by_wallet *w;
    by_payment a, b, c, d, e;
    uint8_t seller[20], mh[32];
    uint64_t bal0;
    json_t *v;
    (void)state;

    db_path(path, sizeof(path), "topup.db");
    default_cfg(&cfg, path);
    cfg.deposit = 10000;
    cfg.topup_below = 3000;
    cfg.budget_channel = 20000;
    w = wallet_at(&cfg);
    rand_bytes(seller, 20);
    bal0 = devchain_balance(&fx.d, fx.payer_a);
    pay_ok(w, &a, seller, 4000, mh);
    assert_true(chain_state(a.channel_id).deposit == 10000);
    pay_ok(w, &b, seller, 4000, mh); /* 8000 committed: 2000 left < 3000 */
    assert_true(b.cumulative == 8000);
    assert_true(chain_state(a.channel_id).deposit == 20000);
    check_payment(&b, mh);
    pay_ok(w, &c, seller, 9000, mh); /* 17000: 3000 left, not below */
    assert_true(c.cumulative == 17000);
    pay_ok(w, &d, seller, 2000, mh); /* 19000: below, but the cap is reached */
    assert_true(d.cumulative == 19000);
    assert_true(chain_state(a.channel_id).deposit == 20000);
    pay_refused(w, seller, 2000, BY_REFUSE_BUDGET, "budget_channel");
    assert_true(chain_state(a.channel_id).deposit == 20000);
    assert_true(bal0 - devchain_balance(&fx.d, fx.payer_a) == 20000);
    v = by_wallet_channels_json(w);
    assert_str_field(view_chan(v, a.channel_id), "deposit", "20000");
    json_decref(v);
    v = by_wallet_spend_json(w);
    assert_str_field(json_object_get(v, "total"), "deposited", "20000");
    json_decref(v);
    by_wallet_done(w, &a, NULL, "failed", 0, 0);
    by_wallet_done(w, &b, NULL, "failed", 0, 0);
    by_wallet_done(w, &c, NULL, "failed", 0, 0);
    by_wallet_done(w, &d, NULL, "failed", 0, 0);
    by_wallet_free(w);

    db_path(path, sizeof(path), "topup-big.db");
    default_cfg(&cfg, path);
    cfg.deposit = 1000;
    w = wallet_at(&cfg);
    rand_bytes(seller, 20);
    pay_ok(w, &e, seller, 1500, mh);
    assert_true(e.cumulative == 1500);
    assert_true(chain_state(e.channel_id).deposit == 2000);
    check_payment(&e, mh);
    by_wallet_done(w, &e, NULL, "failed", 0, 0);
    by_wallet_free(w);
}

/* Budgets: per request, per day counting requests in flight, per channel, each refused as
 * BY_REFUSE_BUDGET naming the cap. */
static void test_budgets(void **state)
{
    char path[256];
    by_wallet_config cfg;
    by_wallet *w;
    by_payment p[6];
    os_infer_final f;
    uint8_t seller[20], mh[32];
    json_t *v;
    (void)state;

    db_path(path, sizeof(path), "budget.db");
    default_cfg(&cfg, path);
    cfg.deposit = 100000;
    cfg.budget_request = 1000;
    cfg.budget_day = 5000;
    cfg.budget_channel = 50000;
    w = wallet_at(&cfg);
    rand_bytes(seller, 20);
    pay_refused(w, seller, 1001, BY_REFUSE_BUDGET, "budget_request");
    pay_refused(w, seller, 1001, BY_REFUSE_BUDGET, "by 0.000001 USDC");
    v = by_wallet_channels_json(w);
    assert_int_equal(json_array_size(json_object_get(v, "channels")), 0); /* nothing opened */
    json_decref(v);
    for (int i = 0; i < 5; i++)
        pay_ok(w, &p[i], seller, 1000, mh); /* 5000 in flight: exactly the cap */
    assert_true(chain_state(p[0].channel_id).deposit == 50000); /* opened within the cap */
    pay_refused(w, seller, 1, BY_REFUSE_BUDGET, "budget_day");
    f = final_of(400, 400);
    by_wallet_done(w, &p[0], &f, "ok", 1, 1); /* 400 spent + 4000 in flight */
    pay_ok(w, &p[5], seller, 600, mh);
    pay_refused(w, seller, 1, BY_REFUSE_BUDGET, "budget_day");
    v = by_wallet_spend_json(w);
    assert_str_field(json_object_get(v, "today"), "spent", "400");
    assert_str_field(json_object_get(v, "today"), "in_flight", "4600");
    assert_str_field(json_object_get(v, "today"), "budget", "5000");
    json_decref(v);
    for (int i = 1; i < 6; i++)
        by_wallet_done(w, &p[i], NULL, "failed", 0, 0);
    by_wallet_free(w);

    db_path(path, sizeof(path), "budget-chan.db");
    default_cfg(&cfg, path);
    cfg.deposit = 3000;
    cfg.budget_channel = 3000;
    w = wallet_at(&cfg);
    pay_refused(w, seller, 3001, BY_REFUSE_BUDGET, "budget_channel");
    v = by_wallet_channels_json(w);
    assert_int_equal(json_array_size(json_object_get(v, "channels")), 0); /* refused before */
    json_decref(v);
    by_wallet_free(w);
}

/* Chain failures: an open that reverts (a wallet without USDC) is BY_REFUSE_CHAIN and leaves no
 * channel behind; a failed top-up lets a voucher that still fits through and refuses one that
 * does not. */
static void test_chain_failures(void **state)
{
    char path[256], why[WHY], err[256];
    by_wallet_config cfg;
    by_wallet *w;
    by_payment a;
    os_chain_signer *poor = NULL, *thin = NULL;
    uint8_t thin_a[20], seller[20], mh[32];
    by_bdb *db = NULL;
    by_bdb_channel *rows = NULL;
    size_t n = 9;
    json_t *v;
    (void)state;

    if (devchain_signer(&fx.d, &poor, 5, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &thin, 4, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    rand_bytes(seller, 20);

    db_path(path, sizeof(path), "poor.db");
    default_cfg(&cfg, path);
    cfg.payer = poor; /* no USDC at all */
    w = wallet_at(&cfg);
    pay_refused(w, seller, 10, BY_REFUSE_CHAIN, "cannot open a channel");
    v = by_wallet_channels_json(w);
    assert_int_equal(json_array_size(json_object_get(v, "channels")), 0);
    json_decref(v);
    by_wallet_free(w);
    assert_int_equal(by_bdb_open(&db, path, err, sizeof(err)), OS_OK);
    assert_int_equal(by_bdb_channel_list(db, &rows, &n), OS_OK);
    assert_int_equal(n, 0); /* the "opening" row was deleted */
    by_bdb_channels_free(rows);
    by_bdb_close(db);

    os_chain_signer_address(thin, thin_a);
    if (devchain_mint(&fx.d, thin_a, 1500, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    db_path(path, sizeof(path), "thin.db");
    default_cfg(&cfg, path);
    cfg.payer = thin;
    cfg.deposit = 1000;
    cfg.topup_below = 500;
    w = wallet_at(&cfg);
    pay_ok(w, &a, seller, 600, mh); /* 400 left: the top-up of 1000 fails (500 in the wallet) */
    assert_true(a.cumulative == 600);
    assert_true(chain_state(a.channel_id).deposit == 1000);
    check_payment(&a, mh);
    pay_refused(w, seller, 500, BY_REFUSE_CHAIN, "top the channel up");
    by_wallet_done(w, &a, NULL, "failed", 0, 0);
    by_wallet_free(w);
    os_chain_signer_free(poor);
    os_chain_signer_free(thin);
}

/* Restart: the channel, its nonce and consumed come back from buyer.db; after recovery a voucher
 * has the next nonce and is still signed by the on-chain signer. */
static void test_restart(void **state)
{
    char path[256];
    by_wallet_config cfg;
    by_wallet *w;
    by_payment a, b, c;
    os_infer_final f;
    uint8_t seller[20], mh[32];
    json_t *v, *ch;
    (void)state;

    db_path(path, sizeof(path), "restart.db");
    default_cfg(&cfg, path);
    w = wallet_at(&cfg);
    rand_bytes(seller, 20);
    pay_ok(w, &a, seller, 100, mh);
    f = final_of(100, 100);
    by_wallet_done(w, &a, &f, "ok", 1, 1);
    pay_ok(w, &b, seller, 200, mh); /* in flight when the buyer stops */
    free(b.payment);
    by_wallet_free(w);

    w = wallet_at(&cfg);
    v = by_wallet_channels_json(w);
    ch = view_chan(v, a.channel_id);
    assert_non_null(ch);
    assert_str_field(ch, "consumed", "100");
    assert_str_field(ch, "authorized", "300");
    assert_str_field(ch, "state", "open");
    assert_true(json_integer_value(json_object_get(ch, "nonce")) == 2);
    json_decref(v);
    assert_int_equal(by_wallet_recover(w), OS_OK);
    pay_ok(w, &c, seller, 50, mh);
    assert_memory_equal(c.channel_id, a.channel_id, 32);
    assert_true(c.nonce == 3);
    assert_true(c.cumulative == 150);
    check_payment(&c, mh);
    v = by_wallet_ledger_json(w, 10);
    assert_int_equal(json_array_size(json_object_get(v, "requests")), 3);
    /* the request the first run left in flight was finished by the restart */
    assert_str_field(json_array_get(json_object_get(v, "requests"), 1), "outcome", "interrupted");
    assert_str_field(json_array_get(json_object_get(v, "requests"), 2), "outcome", "ok");
    assert_int_equal(json_array_size(json_object_get(v, "vouchers")), 3);
    json_decref(v);
    by_wallet_done(w, &c, NULL, "failed", 0, 0);
    by_wallet_free(w);
}

/* A channel row as by_w_open commits it before any transaction. */
static void opening_row(by_bdb_channel *row, const uint8_t seller[20])
{
    os_cred_secret *cred = NULL;
    memset(row, 0, sizeof(*row));
    memcpy(row->seller, seller, 20);
    rand_bytes(row->salt, 32);
    assert_int_equal(os_secp_keygen(row->signer_key), OS_OK);
    assert_int_equal(os_secp_address(row->signer, row->signer_key), OS_OK);
    assert_int_equal(os_cred_keygen(&cred), OS_OK);
    os_cred_secret_export(row->cred_secret, cred);
    os_cred_commit(row->commitment, cred);
    os_cred_secret_free(cred);
    os_escrow_channel_id(row->id, CHAIN_ID, fx.d.escrow, fx.payer_a, seller, row->salt);
    row->state = BY_CHAN_OPENING;
    row->created_at = (int64_t)time(NULL);
}

/* Recovery of "opening" rows: one whose open never went out is dropped (a new channel is opened
 * for its seller later), one whose open went through is completed and used. */
static void test_recover_opening(void **state)
{
    char path[256], err[256];
    by_wallet_config cfg;
    by_bdb *db = NULL;
    by_bdb_channel r1, r2;
    os_escrow_open_args o;
    os_chain_error cerr;
    by_wallet *w;
    by_payment p, q;
    uint8_t s1[20], s2[20], mh[32];
    json_t *v, *ch;
    (void)state;

    db_path(path, sizeof(path), "recover.db");
    rand_bytes(s1, 20);
    rand_bytes(s2, 20);
    opening_row(&r1, s1);
    opening_row(&r2, s2);
    assert_int_equal(by_bdb_open(&db, path, err, sizeof(err)), OS_OK);
    assert_int_equal(by_bdb_channel_insert(db, &r1), OS_OK);
    assert_int_equal(by_bdb_channel_insert(db, &r2), OS_OK);
    by_bdb_close(db);
    /* the crash came after r2's open was sent */
    memset(&o, 0, sizeof(o));
    memcpy(o.seller, s2, 20);
    memcpy(o.signer, r2.signer, 20);
    memcpy(o.commitment, r2.commitment, 32);
    memcpy(o.salt, r2.salt, 32);
    o.amount = 5000;
    if (os_erc20_approve(fx.payer, NULL, &cerr, fx.d.usdc, fx.d.escrow, 5000) != OS_OK ||
        os_escrow_open(fx.payer, NULL, &cerr, fx.d.escrow, &o) != OS_OK)
        fail_msg("open: %s", cerr.message);

    default_cfg(&cfg, path);
    w = wallet_at(&cfg);
    v = by_wallet_channels_json(w);
    assert_int_equal(json_array_size(json_object_get(v, "channels")), 2);
    assert_str_field(view_chan(v, r1.id), "state", "opening");
    json_decref(v);
    assert_int_equal(by_wallet_recover(w), OS_OK);
    v = by_wallet_channels_json(w);
    assert_int_equal(json_array_size(json_object_get(v, "channels")), 1);
    assert_null(view_chan(v, r1.id));
    ch = view_chan(v, r2.id);
    assert_non_null(ch);
    assert_str_field(ch, "state", "open");
    assert_str_field(ch, "deposit", "5000");
    json_decref(v);

    pay_ok(w, &p, s2, 10, mh);
    assert_memory_equal(p.channel_id, r2.id, 32);
    assert_true(p.nonce == 1);
    check_payment(&p, mh);
    pay_ok(w, &q, s1, 10, mh);
    assert_memory_not_equal(q.channel_id, r1.id, 32);
    check_payment(&q, mh);
    by_wallet_done(w, &p, NULL, "failed", 0, 0);
    by_wallet_done(w, &q, NULL, "failed", 0, 0);
    by_wallet_free(w);

    /* the dropped row is gone from buyer.db too */
    {
        by_bdb_channel *rows = NULL;
        size_t n = 0;
        bool found1 = false, found2 = false;
        assert_int_equal(by_bdb_open(&db, path, err, sizeof(err)), OS_OK);
        assert_int_equal(by_bdb_channel_list(db, &rows, &n), OS_OK);
        for (size_t i = 0; i < n; i++) {
            found1 |= memcmp(rows[i].id, r1.id, 32) == 0;
            found2 |= memcmp(rows[i].id, r2.id, 32) == 0 && rows[i].state == BY_CHAN_OPEN;
        }
        by_bdb_channels_free(rows);
        by_bdb_close(db);
        assert_false(found1);
        assert_true(found2);
    }
    sodium_memzero(&r1, sizeof(r1));
    sodium_memzero(&r2, sizeof(r2));
}

/* Close: requestClose on chain, the channel refuses new requests; withdraw is refused before the
 * grace and refunds the deposit after it; the next request opens a new channel. */
static void test_close_withdraw(void **state)
{
    by_wallet *w = wallet_named("close.db");
    by_payment p, q;
    os_infer_final f;
    os_channel_state st;
    uint8_t seller[20], mh[32], unknown[32];
    char why[WHY];
    uint64_t bal0;
    json_t *v;
    (void)state;

    rand_bytes(seller, 20);
    pay_ok(w, &p, seller, 100, mh);
    f = final_of(60, 60);
    by_wallet_done(w, &p, &f, "ok", 1, 1);
    assert_int_equal(by_wallet_close(w, p.channel_id, why, sizeof(why)), OS_OK);
    st = chain_state(p.channel_id);
    assert_true(st.close_at != 0);
    assert_false(st.closed);
    v = by_wallet_channels_json(w);
    assert_str_field(view_chan(v, p.channel_id), "state", "closing");
    json_decref(v);
    assert_int_not_equal(by_wallet_close(w, p.channel_id, why, sizeof(why)), OS_OK);
    pay_refused(w, seller, 10, BY_REFUSE_CHANNEL, "closing");
    assert_int_not_equal(by_wallet_withdraw(w, p.channel_id, why, sizeof(why)), OS_OK);
    if (strstr(why, "GracePeriodNotOver") == NULL)
        fail_msg("early withdraw: %s", why);

    bal0 = devchain_balance(&fx.d, fx.payer_a);
    if (devchain_advance(&fx.d, GRACE + 1, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    assert_int_equal(by_wallet_withdraw(w, p.channel_id, why, sizeof(why)), OS_OK);
    st = chain_state(p.channel_id);
    assert_true(st.closed);
    assert_true(devchain_balance(&fx.d, fx.payer_a) - bal0 == DEPOSIT); /* nothing claimed */
    v = by_wallet_channels_json(w);
    assert_str_field(view_chan(v, p.channel_id), "state", "closed");
    json_decref(v);

    pay_ok(w, &q, seller, 10, mh); /* a new channel for this seller */
    assert_memory_not_equal(q.channel_id, p.channel_id, 32);
    check_payment(&q, mh);
    by_wallet_done(w, &q, NULL, "failed", 0, 0);
    rand_bytes(unknown, 32);
    assert_int_equal(by_wallet_withdraw(w, unknown, why, sizeof(why)), OS_ERR_NOTFOUND);
    assert_int_equal(by_wallet_close(w, unknown, why, sizeof(why)), OS_ERR_NOTFOUND);
    by_wallet_free(w);
}

/* Appends the hex of p[0..n) (no prefix) to out. */
static void hex_of(char *out, size_t cap, const uint8_t *p, size_t n)
{
    assert_int_equal(os_hex_encode(out, cap, p, n, 0), OS_OK);
}

/* The JSON views hold what they should and no secret: neither a channel signer key nor a
 * credential secret appears in their text. */
static void test_views_no_secrets(void **state)
{
    char path[256], err[256], hex[OS_HEX_LEN(64)];
    by_wallet_config cfg;
    by_wallet *w;
    by_payment a, b;
    os_infer_final f;
    uint8_t s1[20], s2[20], mh[32];
    char *t1, *t2, *t3, *all;
    by_bdb *db = NULL;
    by_bdb_channel *rows = NULL;
    size_t n = 0, len;
    json_t *v;
    (void)state;

    db_path(path, sizeof(path), "views.db");
    default_cfg(&cfg, path);
    w = wallet_at(&cfg);
    rand_bytes(s1, 20);
    rand_bytes(s2, 20);
    pay_ok(w, &a, s1, 300, mh);
    pay_ok(w, &b, s2, 400, mh);
    f = final_of(250, 250);
    by_wallet_done(w, &a, &f, "ok", 40, 7);

    v = by_wallet_ledger_json(w, 10);
    assert_int_equal(json_array_size(json_object_get(v, "requests")), 2);
    /* newest first */
    assert_str_field(json_array_get(json_object_get(v, "requests"), 0), "outcome", "in_flight");
    assert_str_field(json_array_get(json_object_get(v, "requests"), 1), "cost", "250");
    assert_str_field(json_array_get(json_object_get(v, "requests"), 1), "estimate", "300");
    assert_str_field(json_array_get(json_object_get(v, "requests"), 1), "service", "svc");
    assert_true(json_integer_value(json_object_get(
                    json_array_get(json_object_get(v, "requests"), 1), "ttft_ms")) == 7);
    t1 = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    v = by_wallet_spend_json(w);
    assert_str_field(json_object_get(v, "total"), "spent", "250");
    assert_str_field(json_object_get(v, "total"), "deposited", "2000000");
    assert_true(json_integer_value(json_object_get(json_object_get(v, "total"), "requests")) == 1);
    assert_int_equal(json_array_size(json_object_get(v, "per_seller")), 1);
    assert_str_field(json_object_get(v, "today"), "in_flight", "400");
    t2 = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    v = by_wallet_channels_json(w);
    assert_int_equal(json_array_size(json_object_get(v, "channels")), 2);
    t3 = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    by_wallet_done(w, &b, NULL, "failed", 0, 0);
    by_wallet_free(w);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_non_null(t3);
    len = strlen(t1) + strlen(t2) + strlen(t3) + 1;
    all = malloc(len);
    assert_non_null(all);
    snprintf(all, len, "%s%s%s", t1, t2, t3);
    free(t1);
    free(t2);
    free(t3);

    assert_int_equal(by_bdb_open(&db, path, err, sizeof(err)), OS_OK);
    assert_int_equal(by_bdb_channel_list(db, &rows, &n), OS_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        hex_of(hex, sizeof(hex), rows[i].id, 32); /* control: the id is shown */
        assert_non_null(strstr(all, hex));
        hex_of(hex, sizeof(hex), rows[i].signer_key, 32);
        assert_null(strstr(all, hex));
        hex_of(hex, sizeof(hex), rows[i].cred_secret, 64);
        assert_null(strstr(all, hex));
        hex_of(hex, sizeof(hex), rows[i].cred_secret, 32);
        assert_null(strstr(all, hex));
    }
    by_bdb_channels_free(rows);
    by_bdb_close(db);
    free(all);
}

/* Whether needle[0..m) occurs in hay[0..n). */
static bool has_bytes(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

/* Lower-cases s in place. */
static void lower(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* The payer's address is nowhere in what a seller receives: not in PAYMENT-SIGNATURE (decoded),
 * not in the credential (decoded), while the channel id is (control). */
static void test_no_wallet_address(void **state)
{
    by_wallet *w = wallet_named("privacy.db");
    by_payment p;
    uint8_t seller[20], mh[32], *dec = NULL;
    char payer_hex[OS_HEX_LEN(20)], id_hex[OS_HEX_LEN(32)], *text, *hdr;
    size_t n = 0;
    (void)state;

    rand_bytes(seller, 20);
    pay_ok(w, &p, seller, 42, mh);
    hex_of(payer_hex, sizeof(payer_hex), fx.payer_a, 20);
    hex_of(id_hex, sizeof(id_hex), p.channel_id, 32);

    assert_int_equal(os_base64_decode_alloc(&dec, &n, p.payment, strlen(p.payment), 8192), OS_OK);
    text = (char *)dec;
    lower(text);
    assert_non_null(strstr(text, id_hex));
    assert_null(strstr(text, payer_hex));
    assert_false(has_bytes(dec, n, fx.payer_a, 20));
    free(dec);
    hdr = strdup(p.payment);
    assert_non_null(hdr);
    lower(hdr);
    assert_null(strstr(hdr, payer_hex));
    free(hdr);

    assert_int_equal(os_base64_decode_alloc(&dec, &n, p.credential, strlen(p.credential), 256),
                     OS_OK);
    assert_int_equal(n, OS_CRED_WIRE_LEN);
    assert_false(has_bytes(dec, n, fx.payer_a, 20));
    free(dec);
    by_wallet_done(w, &p, NULL, "failed", 0, 0);
    by_wallet_free(w);
}

/* buyer.db is created 0600; an existing one readable by others is refused. */
static void test_db_mode(void **state)
{
    char path[256];
    by_wallet_config cfg;
    by_wallet *w = NULL;
    struct stat sb;
    int fd;
    (void)state;

    db_path(path, sizeof(path), "open.db");
    fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(path, 0644), 0);
    default_cfg(&cfg, path);
    assert_int_equal(by_wallet_new(&w, &cfg), OS_ERR_INVALID);
    assert_null(w);

    db_path(path, sizeof(path), "fresh.db");
    default_cfg(&cfg, path);
    w = wallet_at(&cfg);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    by_wallet_free(w);
    cfg.deposit = 0;
    assert_int_equal(by_wallet_new(&w, &cfg), OS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_mode),
        cmocka_unit_test(test_first_pay_opens),
        cmocka_unit_test(test_open_with_authorization),
        cmocka_unit_test(test_concurrent_first_pays),
        cmocka_unit_test(test_committed_arithmetic),
        cmocka_unit_test(test_repay),
        cmocka_unit_test(test_topup),
        cmocka_unit_test(test_budgets),
        cmocka_unit_test(test_chain_failures),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_recover_opening),
        cmocka_unit_test(test_views_no_secrets),
        cmocka_unit_test(test_no_wallet_address),
        cmocka_unit_test(test_close_withdraw),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
