/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The escrow's channel lifecycle on a real anvil (chain id 8453), driven only through the chain
 * client and the escrow bindings: the committed TestUSDC and OpenSeedChannels artifacts are
 * deployed (grace 900 s), and one full channel life runs (approve + open, claims with growing
 * vouchers, requestClose, a late claim inside the grace, an early withdraw refused, the withdraw
 * after the grace) with the USDC balances of payer, seller and contract checked to the micro-USDC
 * after every step, and getChannel and the event log checked against them. Then:
 * openWithAuthorization signed in C and relayed by a third account (and its replay, front-running
 * and expiry refused), topUp, the seller's close with a final voucher and without one, reverts
 * decoded by name (stranger's claim, wrong signer, high-s, stale nonce, replay, grace over, closed
 * channel, a revert mined with status 0), and cross-contract replay against a second deployment.
 */
#include "testutil.h"

#include "devchain.h"
#include "openseed/keccak.h"
#include "openseed/secp.h"

#define CHAIN_ID 8453
#define GRACE 900
#define WHY 512

static struct {
    devchain d;
    os_chain_signer *payer, *seller, *relayer, *stranger;
    uint8_t payer_a[20], seller_a[20], relayer_a[20], stranger_a[20];
    uint8_t escrow2[20];
    uint64_t salts;
} fx;

static int setup(void **state)
{
    char why[WHY];
    (void)state;
    if (os_init() != OS_OK)
        return -1;
    if (devchain_start(&fx.d, CHAIN_ID, GRACE, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &fx.payer, 1, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &fx.seller, 2, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &fx.relayer, 3, why, sizeof(why)) != 0 ||
        devchain_signer(&fx.d, &fx.stranger, 4, why, sizeof(why)) != 0 ||
        devchain_deploy_escrow(&fx.d, fx.escrow2, NULL, fx.d.usdc, GRACE, why, sizeof(why)) != 0) {
        fprintf(stderr, "FAIL: set-up: %s\n", why);
        return -1;
    }
    os_chain_signer_address(fx.payer, fx.payer_a);
    os_chain_signer_address(fx.seller, fx.seller_a);
    os_chain_signer_address(fx.relayer, fx.relayer_a);
    os_chain_signer_address(fx.stranger, fx.stranger_a);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    os_chain_signer_free(fx.payer);
    os_chain_signer_free(fx.seller);
    os_chain_signer_free(fx.relayer);
    os_chain_signer_free(fx.stranger);
    devchain_stop(&fx.d);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* OK(call, what): call must succeed; it may pass &err_, which the macro declares, for the
 * details printed on failure. DEV(call) likewise for devchain helpers writing why_. */
#define OK(call, what)                                                                             \
    do {                                                                                           \
        os_chain_error err_;                                                                       \
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

static void new_salt(uint8_t salt[32])
{
    uint8_t seed[8];
    uint64_t n = ++fx.salts;
    for (int i = 0; i < 8; i++)
        seed[i] = (uint8_t)(n >> (8 * i));
    os_keccak256(salt, seed, sizeof(seed));
}

static void new_key(uint8_t priv[32], uint8_t addr[20])
{
    assert_int_equal(os_secp_keygen(priv), OS_OK);
    assert_int_equal(os_secp_address(addr, priv), OS_OK);
}

/* The USDC balances of payer, seller and escrow after `step`; relayer and stranger never hold any.
 */
static void expect_usdc(const char *step, const uint8_t escrow[20], uint64_t payer, uint64_t seller,
                        uint64_t contract)
{
    uint64_t p = devchain_balance(&fx.d, fx.payer_a), s = devchain_balance(&fx.d, fx.seller_a);
    uint64_t c = devchain_balance(&fx.d, escrow), r = devchain_balance(&fx.d, fx.relayer_a);
    uint64_t x = devchain_balance(&fx.d, fx.stranger_a);
    if (p != payer || s != seller || c != contract || r != 0 || x != 0)
        fail_msg("after %s: payer %llu (want %llu), seller %llu (want %llu), escrow %llu (want "
                 "%llu), relayer %llu, stranger %llu (want 0)",
                 step, (unsigned long long)p, (unsigned long long)payer, (unsigned long long)s,
                 (unsigned long long)seller, (unsigned long long)c, (unsigned long long)contract,
                 (unsigned long long)r, (unsigned long long)x);
}

static void expect_channel(const char *step, const uint8_t escrow[20], const uint8_t id[32],
                           uint64_t deposit, uint64_t claimed, uint64_t close_at, bool closed,
                           uint64_t last_nonce)
{
    os_channel_state st;
    os_chain_error err;
    os_err e = os_escrow_get_channel(fx.d.ch, &st, &err, escrow, id);
    if (e != OS_OK)
        fail_msg("after %s: getChannel: %s (%s)", step, os_strerror(e), err.message);
    if (st.deposit != deposit || st.claimed != claimed || st.close_at != close_at ||
        st.closed != closed || st.last_nonce != last_nonce)
        fail_msg("after %s: channel deposit %llu/%llu claimed %llu/%llu closeAt %llu/%llu closed "
                 "%d/%d lastNonce %llu/%llu (got/want)",
                 step, (unsigned long long)st.deposit, (unsigned long long)deposit,
                 (unsigned long long)st.claimed, (unsigned long long)claimed,
                 (unsigned long long)st.close_at, (unsigned long long)close_at, st.closed, closed,
                 (unsigned long long)st.last_nonce, (unsigned long long)last_nonce);
    assert_memory_equal(st.payer, fx.payer_a, 20);
    assert_memory_equal(st.seller, fx.seller_a, 20);
}

/* A call that must revert with custom error `which`; msg, when given, is the whole decoded text. */
static void expect_revert(os_err e, const os_chain_error *err, os_escrow_error which,
                          const char *msg)
{
    if (e != OS_ERR_INVALID || err->kind != OS_CHAIN_FAIL_REVERT)
        fail_msg("expected %s, got %s (%s)", os_escrow_errors()[which], os_strerror(e),
                 err->message);
    if (!os_escrow_is_error(err, which))
        fail_msg("expected %s, got \"%s\"", os_escrow_errors()[which], err->revert.message);
    assert_int_equal(err->revert.kind, OS_ABI_REVERT_CUSTOM);
    assert_int_equal(err->revert.custom_index, which);
    if (msg != NULL)
        assert_string_equal(err->revert.message, msg);
}

/* The one event of `kind` that rc holds from escrow; fails if there is not exactly one. */
static void receipt_event(os_escrow_event *out, const os_chain_receipt *rc,
                          const uint8_t escrow[20], os_escrow_event_kind kind)
{
    int found = 0;
    for (size_t i = 0; i < rc->n_logs; i++) {
        os_escrow_event ev;
        os_err e = os_escrow_decode_event(&ev, &rc->logs[i], escrow);
        if (e == OS_ERR_NOTFOUND)
            continue; /* the token's Transfer and Approval */
        assert_int_equal(e, OS_OK);
        if (ev.kind == kind) {
            *out = ev;
            found++;
        }
    }
    if (found != 1)
        fail_msg("receipt holds %d events of kind %d", found, (int)kind);
}

static void make_voucher(os_voucher *v, const uint8_t id[32], uint64_t cum, uint64_t nonce,
                         const uint8_t priv[32], const uint8_t escrow[20])
{
    uint8_t seed[16];
    memset(v, 0, sizeof(*v));
    memcpy(v->channel_id, id, 32);
    v->cumulative_amount = cum;
    v->nonce = nonce;
    for (int i = 0; i < 8; i++) {
        seed[i] = (uint8_t)(cum >> (8 * i));
        seed[8 + i] = (uint8_t)(nonce >> (8 * i));
    }
    os_keccak256(v->metadata_hash, seed, sizeof(seed));
    assert_int_equal(os_voucher_sign(v, priv, CHAIN_ID, escrow), OS_OK);
}

/* approve + open by the payer on escrow; returns the id, checked against the local one. */
static void open_channel(uint8_t id[32], const uint8_t escrow[20], const uint8_t signer[20],
                         uint64_t amount)
{
    os_escrow_open_args o;
    os_chain_receipt *rc;
    os_escrow_event ev;
    memset(&o, 0, sizeof(o));
    memcpy(o.seller, fx.seller_a, 20);
    memcpy(o.signer, signer, 20);
    memset(o.commitment, 0xc0, 32);
    o.amount = amount;
    new_salt(o.salt);
    os_escrow_channel_id(id, CHAIN_ID, escrow, fx.payer_a, fx.seller_a, o.salt);
    OK(os_erc20_approve(fx.payer, NULL, &err_, fx.d.usdc, escrow, amount), "approve");
    OK(os_escrow_open(fx.payer, &rc, &err_, escrow, &o), "open");
    receipt_event(&ev, rc, escrow, OS_ESCROW_EV_OPENED);
    assert_memory_equal(ev.channel_id, id, 32);
    assert_memory_equal(ev.payer, fx.payer_a, 20);
    assert_memory_equal(ev.seller, fx.seller_a, 20);
    assert_memory_equal(ev.signer, signer, 20);
    assert_memory_equal(ev.commitment, o.commitment, 32);
    assert_int_equal(ev.deposit, amount);
    os_chain_receipt_free(rc);
}

/* A claim by the seller that must pay `paid` and bring the total to `total`. */
static void claim_ok(const uint8_t escrow[20], const os_voucher *v, uint64_t paid, uint64_t total)
{
    os_chain_receipt *rc;
    os_escrow_event ev;
    OK(os_escrow_claim(fx.seller, &rc, &err_, escrow, v), "claim");
    receipt_event(&ev, rc, escrow, OS_ESCROW_EV_CLAIMED);
    assert_memory_equal(ev.channel_id, v->channel_id, 32);
    assert_int_equal(ev.cumulative_amount, v->cumulative_amount);
    assert_int_equal(ev.nonce, v->nonce);
    assert_memory_equal(ev.metadata_hash, v->metadata_hash, 32);
    assert_int_equal(ev.amount, paid);
    assert_int_equal(ev.claimed, total);
    os_chain_receipt_free(rc);
}

/* ---- one full channel life --------------------------------------------------------------- */

static void test_full_channel_life(void **state)
{
    const uint8_t *esc = fx.d.escrow;
    uint8_t id[32], signer_priv[32], signer[20], onchain[32], local[32];
    uint64_t p, s = devchain_balance(&fx.d, fx.seller_a), c = 0, t_req, close_at;
    os_voucher v[5];
    os_chain_receipt *rc;
    os_chain_error err;
    os_escrow_event ev;
    os_chain_filter f;
    os_chain_log *logs;
    size_t n;
    os_err e;
    (void)state;
    new_key(signer_priv, signer);
    p = devchain_balance(&fx.d, fx.payer_a);
    c = devchain_balance(&fx.d, esc);

    DEV(devchain_mint(&fx.d, fx.payer_a, 10000000, why_, WHY));
    p += 10000000;
    expect_usdc("mint", esc, p, s, c);

    /* approve + open: 4 USDC */
    open_channel(id, esc, signer, 4000000);
    p -= 4000000;
    c += 4000000;
    expect_usdc("open", esc, p, s, c);
    expect_channel("open", esc, id, 4000000, 0, 0, false, 0);

    /* our digest is the contract's, for several vouchers */
    make_voucher(&v[0], id, 100000, 1, signer_priv, esc);
    make_voucher(&v[1], id, 350000, 2, signer_priv, esc);
    make_voucher(&v[2], id, 1000000, 5, signer_priv, esc);
    make_voucher(&v[3], id, 1500000, 6, signer_priv, esc);
    make_voucher(&v[4], id, 1700000, 7, signer_priv, esc);
    for (int i = 0; i < 5; i++) {
        DEV(devchain_hash_spending_auth(&fx.d, onchain, esc, &v[i], why_, WHY));
        os_voucher_digest(local, &v[i], CHAIN_ID, esc);
        assert_memory_equal(onchain, local, 32);
        assert_int_equal(os_voucher_verify(&v[i], signer, CHAIN_ID, esc), OS_OK);
    }

    /* claims with increasing vouchers: each pays the difference */
    claim_ok(esc, &v[0], 100000, 100000);
    s += 100000;
    c -= 100000;
    expect_usdc("claim 1", esc, p, s, c);
    expect_channel("claim 1", esc, id, 4000000, 100000, 0, false, 1);
    claim_ok(esc, &v[1], 250000, 350000);
    s += 250000;
    c -= 250000;
    expect_usdc("claim 2", esc, p, s, c);
    expect_channel("claim 2", esc, id, 4000000, 350000, 0, false, 2);
    claim_ok(esc, &v[2], 650000, 1000000);
    s += 650000;
    c -= 650000;
    expect_usdc("claim 3", esc, p, s, c);
    expect_channel("claim 3", esc, id, 4000000, 1000000, 0, false, 5);

    /* the payer asks to close: closeAt = the block's time + grace */
    OK(os_escrow_request_close(fx.payer, &rc, &err_, esc, id), "requestClose");
    receipt_event(&ev, rc, esc, OS_ESCROW_EV_CLOSE_REQUESTED);
    DEV(devchain_block_time(&fx.d, &t_req, rc->block_number, why_, WHY));
    close_at = t_req + GRACE;
    assert_int_equal(ev.close_at, close_at);
    os_chain_receipt_free(rc);
    expect_usdc("requestClose", esc, p, s, c);
    expect_channel("requestClose", esc, id, 4000000, 1000000, close_at, false, 5);

    /* 600 s later, inside the grace: the seller's late claim still pays */
    DEV(devchain_advance(&fx.d, 600, why_, WHY));
    claim_ok(esc, &v[3], 500000, 1500000);
    s += 500000;
    c -= 500000;
    expect_usdc("late claim", esc, p, s, c);
    expect_channel("late claim", esc, id, 4000000, 1500000, close_at, false, 6);

    /* the payer cannot withdraw yet */
    e = os_escrow_withdraw(fx.payer, NULL, &err, esc, id);
    {
        char want[64];
        snprintf(want, sizeof(want), "GracePeriodNotOver(%llu)", (unsigned long long)close_at);
        expect_revert(e, &err, OS_ESCROW_E_GRACE_PERIOD_NOT_OVER, want);
    }
    expect_usdc("early withdraw", esc, p, s, c);

    /* past the grace: the seller is too late, the payer takes the rest */
    DEV(devchain_advance(&fx.d, 400, why_, WHY));
    e = os_escrow_claim(fx.seller, NULL, &err, esc, &v[4]);
    expect_revert(e, &err, OS_ESCROW_E_GRACE_PERIOD_OVER, NULL);
    expect_usdc("claim after grace", esc, p, s, c);
    OK(os_escrow_withdraw(fx.payer, &rc, &err_, esc, id), "withdraw");
    receipt_event(&ev, rc, esc, OS_ESCROW_EV_WITHDRAWN);
    assert_int_equal(ev.claimed, 1500000);
    assert_int_equal(ev.refund, 2500000);
    os_chain_receipt_free(rc);
    p += 2500000;
    c -= 2500000;
    expect_usdc("withdraw", esc, p, s, c);
    expect_channel("withdraw", esc, id, 4000000, 1500000, close_at, true, 6);

    /* closed for good */
    e = os_escrow_withdraw(fx.payer, NULL, &err, esc, id);
    expect_revert(e, &err, OS_ESCROW_E_CHANNEL_IS_CLOSED, NULL);
    e = os_escrow_claim(fx.seller, NULL, &err, esc, &v[4]);
    expect_revert(e, &err, OS_ESCROW_E_CHANNEL_IS_CLOSED, NULL);
    expect_usdc("after close", esc, p, s, c);

    /* the event log alone rebuilds the same channel and the same money */
    memset(&f, 0, sizeof(f));
    f.has_address = true;
    memcpy(f.address, esc, 20);
    f.n_topics = 2;
    f.topics[0].any = true;
    memcpy(f.topics[1].value, id, 32);
    f.from_block = fx.d.deploy_block;
    f.to_latest = true;
    OK(os_chain_get_logs(fx.d.ch, &logs, &n, &err_, &f), "getLogs");
    {
        static const os_escrow_event_kind want[] = {
            OS_ESCROW_EV_OPENED,    OS_ESCROW_EV_CLAIMED,         OS_ESCROW_EV_CLAIMED,
            OS_ESCROW_EV_CLAIMED,   OS_ESCROW_EV_CLOSE_REQUESTED, OS_ESCROW_EV_CLAIMED,
            OS_ESCROW_EV_WITHDRAWN,
        };
        uint64_t deposit = 0, claimed = 0, paid = 0, refund = 0, at = 0, last_nonce = 0;
        bool closed = false;
        assert_int_equal(n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(os_escrow_decode_event(&ev, &logs[i], esc), OS_OK);
            assert_int_equal(ev.kind, want[i]);
            assert_memory_equal(ev.channel_id, id, 32);
            switch (ev.kind) {
            case OS_ESCROW_EV_OPENED:
                deposit = ev.deposit;
                break;
            case OS_ESCROW_EV_CLAIMED:
                paid += ev.amount;
                claimed = ev.claimed;
                last_nonce = ev.nonce;
                break;
            case OS_ESCROW_EV_CLOSE_REQUESTED:
                at = ev.close_at;
                break;
            default:
                assert_int_equal(ev.claimed, claimed);
                refund = ev.refund;
                closed = true;
            }
        }
        os_chain_logs_free(logs, n);
        assert_int_equal(deposit, 4000000);
        assert_int_equal(claimed, 1500000);
        assert_int_equal(paid, claimed); /* the seller got exactly the sum of the Claimed amounts */
        assert_int_equal(refund, deposit - claimed);
        assert_int_equal(at, close_at);
        assert_true(closed);
        expect_channel("log rebuild", esc, id, deposit, claimed, at, closed, last_nonce);
    }
}

/* ---- openWithAuthorization, topUp, the seller's close ------------------------------------ */

static void test_open_with_authorization(void **state)
{
    const uint8_t *esc = fx.d.escrow;
    uint8_t payer_priv[32], signer_priv[32], signer[20], id[32], id2[32];
    uint64_t p, s, c, now, payer_nonce, payer_nonce2;
    os_escrow_open_args o, bad;
    os_escrow_open_auth auth, expired;
    os_chain_receipt *rc;
    os_chain_error err;
    os_escrow_event ev;
    os_voucher v;
    os_err e;
    (void)state;
    devchain_key(payer_priv, 1);
    new_key(signer_priv, signer);
    DEV(devchain_mint(&fx.d, fx.payer_a, 3000000, why_, WHY));
    p = devchain_balance(&fx.d, fx.payer_a);
    s = devchain_balance(&fx.d, fx.seller_a);
    c = devchain_balance(&fx.d, esc);
    DEV(devchain_time(&fx.d, &now, why_, WHY));

    memset(&o, 0, sizeof(o));
    memcpy(o.seller, fx.seller_a, 20);
    memcpy(o.signer, signer, 20);
    memset(o.commitment, 0x3c, 32);
    o.amount = 2000000;
    new_salt(o.salt);
    assert_int_equal(os_escrow_sign_open_auth(&auth, id, &o, payer_priv, CHAIN_ID, esc,
                                              fx.d.usdc_domain, 0, now + 3600),
                     OS_OK);
    os_escrow_channel_id(id2, CHAIN_ID, esc, fx.payer_a, fx.seller_a, o.salt);
    assert_memory_equal(id, id2, 32);

    /* front-running: the same authorization with the relayer's own signer or seller is refused
     * by the token (the nonce binds the channel) */
    bad = o;
    memcpy(bad.signer, fx.relayer_a, 20);
    e = os_escrow_open_with_auth(fx.relayer, NULL, &err, esc, &bad, &auth);
    expect_revert(e, &err, OS_ESCROW_E_INVALID_SIGNER, NULL);
    bad = o;
    memcpy(bad.seller, fx.relayer_a, 20);
    e = os_escrow_open_with_auth(fx.relayer, NULL, &err, esc, &bad, &auth);
    expect_revert(e, &err, OS_ESCROW_E_INVALID_SIGNER, NULL);
    bad = o;
    bad.amount = 2000001;
    e = os_escrow_open_with_auth(fx.relayer, NULL, &err, esc, &bad, &auth);
    expect_revert(e, &err, OS_ESCROW_E_INVALID_SIGNER, NULL);
    /* an expired authorization */
    assert_int_equal(os_escrow_sign_open_auth(&expired, NULL, &o, payer_priv, CHAIN_ID, esc,
                                              fx.d.usdc_domain, 0, now - 1),
                     OS_OK);
    e = os_escrow_open_with_auth(fx.relayer, NULL, &err, esc, &o, &expired);
    {
        char want[64];
        snprintf(want, sizeof(want), "AuthorizationExpired(%llu)", (unsigned long long)(now - 1));
        expect_revert(e, &err, OS_ESCROW_E_AUTH_EXPIRED, want);
    }
    expect_usdc("refused relays", esc, p, s, c);

    /* relayed by account 3 in one transaction; the payer sends nothing */
    OK(os_chain_nonce(fx.d.ch, &payer_nonce, &err_, fx.payer_a), "nonce");
    OK(os_escrow_open_with_auth(fx.relayer, &rc, &err_, esc, &o, &auth), "openWithAuthorization");
    assert_memory_equal(rc->from, fx.relayer_a, 20);
    receipt_event(&ev, rc, esc, OS_ESCROW_EV_OPENED);
    assert_memory_equal(ev.channel_id, id, 32);
    assert_memory_equal(ev.payer, fx.payer_a, 20);
    assert_memory_equal(ev.signer, signer, 20);
    assert_int_equal(ev.deposit, 2000000);
    os_chain_receipt_free(rc);
    OK(os_chain_nonce(fx.d.ch, &payer_nonce2, &err_, fx.payer_a), "nonce");
    assert_int_equal(payer_nonce2, payer_nonce);
    p -= 2000000;
    c += 2000000;
    expect_usdc("openWithAuthorization", esc, p, s, c);
    expect_channel("openWithAuthorization", esc, id, 2000000, 0, 0, false, 0);

    /* its replay: the channel exists */
    e = os_escrow_open_with_auth(fx.relayer, NULL, &err, esc, &o, &auth);
    expect_revert(e, &err, OS_ESCROW_E_CHANNEL_EXISTS, NULL);

    /* topUp: the payer only */
    e = os_escrow_top_up(fx.stranger, NULL, &err, esc, id, 500000);
    expect_revert(e, &err, OS_ESCROW_E_NOT_PAYER, NULL);
    OK(os_erc20_approve(fx.payer, NULL, &err_, fx.d.usdc, esc, 500000), "approve");
    OK(os_escrow_top_up(fx.payer, &rc, &err_, esc, id, 500000), "topUp");
    receipt_event(&ev, rc, esc, OS_ESCROW_EV_TOPPED_UP);
    assert_int_equal(ev.amount, 500000);
    assert_int_equal(ev.deposit, 2500000);
    os_chain_receipt_free(rc);
    p -= 500000;
    c += 500000;
    expect_usdc("topUp", esc, p, s, c);
    expect_channel("topUp", esc, id, 2500000, 0, 0, false, 0);

    /* the seller closes with a final voucher: paid, the rest refunded, in one transaction */
    make_voucher(&v, id, 1234567, 9, signer_priv, esc);
    OK(os_escrow_close(fx.seller, &rc, &err_, esc, id, &v), "close");
    receipt_event(&ev, rc, esc, OS_ESCROW_EV_CLAIMED);
    assert_int_equal(ev.amount, 1234567);
    receipt_event(&ev, rc, esc, OS_ESCROW_EV_CLOSED);
    assert_int_equal(ev.claimed, 1234567);
    assert_int_equal(ev.refund, 2500000 - 1234567);
    os_chain_receipt_free(rc);
    s += 1234567;
    p += 2500000 - 1234567;
    c -= 2500000;
    expect_usdc("close", esc, p, s, c);
    expect_channel("close", esc, id, 2500000, 1234567, 0, true, 9);
}

static void test_close_without_voucher(void **state)
{
    const uint8_t *esc = fx.d.escrow;
    uint8_t signer_priv[32], signer[20], id[32], zero[32];
    uint64_t p, s, c;
    os_chain_receipt *rc;
    os_chain_error err;
    os_escrow_event ev;
    os_voucher v;
    os_abi_value a[5];
    os_buf data;
    os_err e;
    (void)state;
    new_key(signer_priv, signer);
    DEV(devchain_mint(&fx.d, fx.payer_a, 1000000, why_, WHY));
    p = devchain_balance(&fx.d, fx.payer_a);
    s = devchain_balance(&fx.d, fx.seller_a);
    c = devchain_balance(&fx.d, esc);
    open_channel(id, esc, signer, 1000000);
    p -= 1000000;
    c += 1000000;
    make_voucher(&v, id, 300000, 1, signer_priv, esc);
    claim_ok(esc, &v, 300000, 300000);
    s += 300000;
    c -= 300000;
    expect_usdc("claim", esc, p, s, c);

    /* an empty signature with a non-zero field is a forgotten signature: refused */
    os_buf_init(&data, 1024);
    a[0] = os_abi_bytes32(id);
    a[1] = os_abi_uint64(1);
    a[2] = os_abi_uint64(0);
    memset(zero, 0, sizeof(zero));
    a[3] = os_abi_bytes32(zero); /* only the amount is non-zero */
    a[4] = os_abi_bytes(NULL, 0);
    assert_int_equal(os_abi_encode_call(&data, "close(bytes32,uint256,uint64,bytes32,bytes)", a, 5),
                     OS_OK);
    e = os_escrow_send(fx.seller, NULL, &err, esc, &data, 0);
    expect_revert(e, &err, OS_ESCROW_E_INVALID_SIGNATURE, "InvalidSignature()");
    os_buf_free(&data);
    /* the payer cannot close in the seller's place */
    e = os_escrow_close(fx.payer, NULL, &err, esc, id, NULL);
    expect_revert(e, &err, OS_ESCROW_E_NOT_SELLER, NULL);

    OK(os_escrow_close(fx.seller, &rc, &err_, esc, id, NULL), "close without voucher");
    receipt_event(&ev, rc, esc, OS_ESCROW_EV_CLOSED);
    assert_int_equal(ev.claimed, 300000);
    assert_int_equal(ev.refund, 700000);
    for (size_t i = 0; i < rc->n_logs; i++) { /* no Claimed: nothing was redeemed */
        os_escrow_event x;
        if (os_escrow_decode_event(&x, &rc->logs[i], esc) == OS_OK)
            assert_int_not_equal(x.kind, OS_ESCROW_EV_CLAIMED);
    }
    os_chain_receipt_free(rc);
    p += 700000;
    c -= 700000;
    expect_usdc("close without voucher", esc, p, s, c);
    expect_channel("close without voucher", esc, id, 1000000, 300000, 0, true, 1);
}

/* ---- reverts, decoded -------------------------------------------------------------------- */

static void test_reverts_decoded(void **state)
{
    const uint8_t *esc = fx.d.escrow;
    uint8_t signer_priv[32], signer[20], wrong_priv[32], wrong[20], id[32], unknown[32];
    char want[128], addr[OS_ADDRESS_STR_LEN];
    uint64_t p, s, c;
    os_chain_receipt *rc;
    os_chain_error err;
    os_channel_state st;
    os_voucher v5, v3, bad;
    os_buf data;
    os_err e;
    (void)state;
    new_key(signer_priv, signer);
    new_key(wrong_priv, wrong);
    DEV(devchain_mint(&fx.d, fx.payer_a, 1000000, why_, WHY));
    p = devchain_balance(&fx.d, fx.payer_a);
    s = devchain_balance(&fx.d, fx.seller_a);
    c = devchain_balance(&fx.d, esc);
    open_channel(id, esc, signer, 1000000);
    p -= 1000000;
    c += 1000000;
    make_voucher(&v5, id, 400000, 5, signer_priv, esc);
    make_voucher(&v3, id, 500000, 3, signer_priv, esc);

    /* a stranger cannot claim the seller's voucher */
    e = os_escrow_claim(fx.stranger, NULL, &err, esc, &v5);
    os_eip55_format(addr, fx.stranger_a);
    snprintf(want, sizeof(want), "NotSeller(%s)", addr);
    expect_revert(e, &err, OS_ESCROW_E_NOT_SELLER, want);
    assert_string_equal(err.message, "eth_estimateGas: execution reverted: NotSeller(0x15d34AAf5"
                                     "4267DB7D7c367839AAf71A00a2C6A65)");
    /* a voucher signed by another key: the contract names the key it recovered */
    make_voucher(&bad, id, 400000, 5, wrong_priv, esc);
    e = os_escrow_claim(fx.seller, NULL, &err, esc, &bad);
    os_eip55_format(addr, wrong);
    snprintf(want, sizeof(want), "WrongSigner(%s)", addr);
    expect_revert(e, &err, OS_ESCROW_E_WRONG_SIGNER, want);
    /* a tampered amount recovers some other address */
    bad = v5;
    bad.cumulative_amount = 900000;
    e = os_escrow_claim(fx.seller, NULL, &err, esc, &bad);
    expect_revert(e, &err, OS_ESCROW_E_WRONG_SIGNER, NULL);
    /* the high-s twin, which ecrecover alone would accept */
    bad = v5;
    {
        static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
                                      0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b,
                                      0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
        int borrow = 0;
        for (int i = 31; i >= 0; i--) {
            int d = n[i] - bad.sig[32 + i] - borrow;
            borrow = d < 0;
            bad.sig[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
        }
        bad.sig[64] ^= 27 ^ 28;
    }
    e = os_escrow_claim(fx.seller, NULL, &err, esc, &bad);
    expect_revert(e, &err, OS_ESCROW_E_INVALID_SIGNATURE, "InvalidSignature()");
    expect_usdc("refused claims", esc, p, s, c);

    /* nonce 5, then nonce 3 is stale even for a larger amount; replaying 5 pays nothing */
    claim_ok(esc, &v5, 400000, 400000);
    s += 400000;
    c -= 400000;
    e = os_escrow_claim(fx.seller, NULL, &err, esc, &v3);
    expect_revert(e, &err, OS_ESCROW_E_STALE_NONCE, "StaleNonce(3, 5)");
    e = os_escrow_claim(fx.seller, NULL, &err, esc, &v5);
    expect_revert(e, &err, OS_ESCROW_E_NOTHING_TO_CLAIM, "NothingToClaim()");
    /* the payer's side: only the payer, and only after requestClose */
    e = os_escrow_request_close(fx.seller, NULL, &err, esc, id);
    expect_revert(e, &err, OS_ESCROW_E_NOT_PAYER, NULL);
    e = os_escrow_withdraw(fx.payer, NULL, &err, esc, id);
    expect_revert(e, &err, OS_ESCROW_E_CLOSE_NOT_REQUESTED, "CloseNotRequested()");
    e = os_escrow_top_up(fx.payer, NULL, &err, esc, id, 0);
    expect_revert(e, &err, OS_ESCROW_E_ZERO_AMOUNT, "ZeroAmount()");
    /* topUp beyond the allowance: OpenZeppelin's ERC-20 error, decoded through the same table */
    e = os_escrow_top_up(fx.payer, NULL, &err, esc, id, 1);
    expect_revert(e, &err, OS_ESCROW_E_ERC20_INSUFFICIENT_ALLOWANCE, NULL);
    /* an id nobody opened */
    memset(unknown, 0x42, 32);
    e = os_escrow_withdraw(fx.payer, NULL, &err, esc, unknown);
    expect_revert(e, &err, OS_ESCROW_E_CHANNEL_NOT_FOUND,
                  "ChannelNotFound(0x4242424242424242424242424242424242424242424242424242424242"
                  "424242)");
    assert_int_equal(os_escrow_get_channel(fx.d.ch, &st, &err, esc, unknown), OS_ERR_NOTFOUND);
    /* getChannel of an address without code is an error, not an empty channel */
    assert_int_equal(os_escrow_get_channel(fx.d.ch, &st, &err, fx.stranger_a, id), OS_ERR_INVALID);
    expect_usdc("refused calls", esc, p, s, c);

    /* sent anyway with a fixed gas limit: mined with status 0, and nothing moves */
    os_buf_init(&data, 1024);
    assert_int_equal(os_escrow_encode_claim(&data, &v5), OS_OK);
    e = os_escrow_send(fx.stranger, &rc, &err, esc, &data, 300000);
    assert_int_equal(e, OS_ERR_INVALID);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RECEIPT);
    assert_non_null(rc);
    assert_false(rc->status);
    assert_int_equal(rc->n_logs, 0);
    os_chain_receipt_free(rc);
    os_buf_free(&data);
    expect_usdc("mined revert", esc, p, s, c);
    expect_channel("mined revert", esc, id, 1000000, 400000, 0, false, 5);
}

/* ---- cross-contract replay --------------------------------------------------------------- */

static void test_cross_contract_replay(void **state)
{
    uint8_t signer_priv[32], signer[20], id1[32], id2[32], h1[32], h2[32];
    uint64_t p, s, c1, c2;
    os_chain_error err;
    os_voucher v1, v_for_2, replay;
    os_err e;
    (void)state;
    new_key(signer_priv, signer);
    DEV(devchain_mint(&fx.d, fx.payer_a, 2000000, why_, WHY));
    p = devchain_balance(&fx.d, fx.payer_a);
    s = devchain_balance(&fx.d, fx.seller_a);
    c1 = devchain_balance(&fx.d, fx.d.escrow);
    c2 = devchain_balance(&fx.d, fx.escrow2);
    /* the same payer, seller and signer open a channel on each deployment */
    open_channel(id1, fx.d.escrow, signer, 1000000);
    open_channel(id2, fx.escrow2, signer, 1000000);
    p -= 2000000;
    c1 += 1000000;
    c2 += 1000000;
    assert_memory_not_equal(id1, id2, 32); /* the escrow's address is part of the id */

    make_voucher(&v1, id1, 600000, 1, signer_priv, fx.d.escrow);
    /* the first escrow's voucher names a channel the second does not have */
    e = os_escrow_claim(fx.seller, NULL, &err, fx.escrow2, &v1);
    expect_revert(e, &err, OS_ESCROW_E_CHANNEL_NOT_FOUND, NULL);
    /* pointed at the second channel, the first domain's signature recovers someone else */
    replay = v1;
    memcpy(replay.channel_id, id2, 32);
    assert_int_equal(os_voucher_sign(&replay, signer_priv, CHAIN_ID, fx.d.escrow), OS_OK);
    e = os_escrow_claim(fx.seller, NULL, &err, fx.escrow2, &replay);
    expect_revert(e, &err, OS_ESCROW_E_WRONG_SIGNER, NULL);
    DEV(devchain_hash_spending_auth(&fx.d, h1, fx.d.escrow, &replay, why_, WHY));
    DEV(devchain_hash_spending_auth(&fx.d, h2, fx.escrow2, &replay, why_, WHY));
    assert_memory_not_equal(h1, h2, 32);
    expect_usdc("replays", fx.d.escrow, p, s, c1);
    assert_int_equal(devchain_balance(&fx.d, fx.escrow2), c2);

    /* each escrow pays its own voucher */
    claim_ok(fx.d.escrow, &v1, 600000, 600000);
    make_voucher(&v_for_2, id2, 600000, 1, signer_priv, fx.escrow2);
    claim_ok(fx.escrow2, &v_for_2, 600000, 600000);
    s += 1200000;
    c1 -= 600000;
    c2 -= 600000;
    expect_usdc("own claims", fx.d.escrow, p, s, c1);
    assert_int_equal(devchain_balance(&fx.d, fx.escrow2), c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_channel_life),
        cmocka_unit_test(test_open_with_authorization),
        cmocka_unit_test(test_close_without_voucher),
        cmocka_unit_test(test_reverts_decoded),
        cmocka_unit_test(test_cross_contract_replay),
    };
    return cmocka_run_group_tests_name("escrow life (anvil)", tests, setup, teardown);
}
