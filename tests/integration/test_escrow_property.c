/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A seeded random walk over the escrow on a real anvil, checked against a model kept in C. Three
 * buyers, two sellers and two strangers (anvil accounts 1-7) open channels (approve + open, or
 * openWithAuthorization relayed by a stranger), top up, issue vouchers, claim, close with and
 * without a voucher, request close and withdraw, while the clock jumps; about half of the calls
 * are invalid on purpose (wrong caller, stale or foreign voucher, high-s, grace over or not yet
 * over, closed or unknown channel, zero amount, missing allowance, expired or tampered
 * authorization, existing id). The model predicts each call's outcome in the contract's own order
 * of checks: a valid call must succeed with the predicted events, an invalid one must revert with
 * exactly the predicted custom error (decoded from the gas estimate), and one in four of those is
 * then sent anyway with a fixed gas limit and must be mined with status 0 and change nothing.
 *
 * After every step: each account's USDC balance equals the model's; the escrow holds exactly the
 * sum over open channels of deposit - claimed; getChannel and lastNonce agree with the model for
 * every channel; each seller holds exactly the sum of what its channels paid out, no channel paid
 * more than min(highest voucher its signer issued, deposit), each buyer holds what it was minted
 * minus its deposits plus its refunds, strangers hold nothing, and no USDC appeared or vanished.
 * At the end the event log alone must rebuild every channel.
 *
 * Environment: OPENSEED_PROPERTY_SEED (default: from the clock), OPENSEED_PROPERTY_STEPS (150).
 * The seed is printed at the start and in every failure message.
 */
#include "testutil.h"

#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include "devchain.h"
#include "openseed/keccak.h"
#include "openseed/secp.h"

#define CHAIN_ID 8453
#define GRACE 600
#define WINDOW 30 /* seconds a step may take on chain; closeAt never falls within it */
#define N_ACCT 7  /* 0-2 buyers, 3-4 sellers, 5-6 strangers = anvil accounts 1-7 */
#define N_BUYERS 3
#define MAX_CH 256
#define MINT 1000000000ULL /* 1000 USDC per buyer */
#define FIXED_GAS 500000
#define WHY 512

enum { EXPECT_OK = -1 };
enum { VK_GOOD, VK_WRONG, VK_HIGH_S };
enum { A_OPEN, A_OPEN_AUTH, A_TOP_UP, A_CLAIM, A_CLOSE, A_REQUEST, A_WITHDRAW, A_TIME, A__N };
static const char *const action_names[A__N] = {"open",  "openWithAuth", "topUp",    "claim",
                                               "close", "requestClose", "withdraw", "time"};

typedef struct pvoucher {
    os_voucher v;
    int kind;
} pvoucher;

typedef struct mchan {
    uint8_t id[32], salt[32], commitment[32];
    uint8_t signer_priv[32], signer[20];
    int payer, seller;
    uint64_t deposit, claimed, close_at, last_nonce;
    bool closed;
    uint64_t issued_cum, issued_nonce; /* the highest voucher the signer gave out */
    pvoucher latest, prev;
    bool has_latest, has_prev;
} mchan;

typedef struct account {
    os_chain_signer *s;
    uint8_t addr[20];
    uint64_t bal, allowance, minted;
} account;

static struct {
    devchain d;
    account a[N_ACCT];
    mchan ch[MAX_CH];
    size_t n_ch;
    uint64_t escrow_bal, now, seed, rng;
    int step;
    char what[160];
    unsigned ok[A__N], bad[A__N], mined_reverts;
} P;

#define FAILP(...)                                                                                 \
    do {                                                                                           \
        char m_[768];                                                                              \
        snprintf(m_, sizeof(m_), __VA_ARGS__);                                                     \
        fail_msg("seed %" PRIu64 " step %d (%s): %s", P.seed, P.step, P.what, m_);                 \
    } while (0)

/* ---- randomness (splitmix64: small, seedable) -------------------------------------------- */

static uint64_t rnd(void)
{
    uint64_t z = (P.rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static bool chance(unsigned pct)
{
    return below(100) < pct;
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

static void rnd_key(uint8_t priv[32], uint8_t addr[20])
{
    do
        rnd_bytes(priv, 32);
    while (os_secp_privkey_check(priv) != OS_OK);
    if (os_secp_address(addr, priv) != OS_OK)
        FAILP("address of a fresh key");
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    char *end;
    unsigned long long v;
    if (s == NULL || *s == '\0')
        return dflt;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0')
        fail_msg("%s=%s is not a number", name, s);
    return v;
}

/* ---- chain plumbing ---------------------------------------------------------------------- */

static int setup(void **state)
{
    char why[WHY];
    (void)state;
    if (os_init() != OS_OK)
        return -1;
    if (devchain_start(&P.d, CHAIN_ID, GRACE, why, sizeof(why)) != 0) {
        fprintf(stderr, "FAIL: set-up: %s\n", why);
        return -1;
    }
    for (int i = 0; i < N_ACCT; i++) {
        if (devchain_signer(&P.d, &P.a[i].s, i + 1, why, sizeof(why)) != 0) {
            fprintf(stderr, "FAIL: set-up: %s\n", why);
            return -1;
        }
        os_chain_signer_address(P.a[i].s, P.a[i].addr);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_ACCT; i++)
        os_chain_signer_free(P.a[i].s);
    devchain_stop(&P.d);
    return 0;
}

/*
 * Sends data from account `who`. expect EXPECT_OK: must succeed; *rc (may be NULL) gets the
 * receipt. Otherwise: must revert with custom error `expect`; one time in four it is then mined
 * anyway.
 */
static void run(int who, const uint8_t to[20], const os_buf *data, int expect,
                os_chain_receipt **rc)
{
    os_chain_error err;
    os_chain_receipt *r = NULL;
    os_err e;
    if (rc != NULL)
        *rc = NULL;
    if (expect == EXPECT_OK) {
        e = devchain_send(&P.d, P.a[who].s, rc, &err, to, data, 0);
        if (e != OS_OK)
            FAILP("expected success, got %s: %s", os_strerror(e), err.message);
        return;
    }
    e = devchain_send(&P.d, P.a[who].s, NULL, &err, to, data, 0);
    if (e != OS_ERR_INVALID || !os_escrow_is_error(&err, (os_escrow_error)expect))
        FAILP("expected %s, got %s: %s", os_escrow_errors()[expect], os_strerror(e), err.message);
    if (chance(25)) {
        e = devchain_send(&P.d, P.a[who].s, &r, &err, to, data, FIXED_GAS);
        if (e != OS_ERR_INVALID || err.kind != OS_CHAIN_FAIL_RECEIPT || r == NULL || r->status)
            FAILP("fixed-gas send of a reverting call: %s: %s", os_strerror(e), err.message);
        os_chain_receipt_free(r);
        P.mined_reverts++;
    }
}

/* The one event of `kind` in rc. */
static os_escrow_event the_event(const os_chain_receipt *rc, os_escrow_event_kind kind)
{
    os_escrow_event ev, found;
    int n = 0;
    memset(&found, 0, sizeof(found));
    for (size_t i = 0; i < rc->n_logs; i++) {
        os_err e = os_escrow_decode_event(&ev, &rc->logs[i], P.d.escrow);
        if (e == OS_ERR_NOTFOUND)
            continue;
        if (e != OS_OK)
            FAILP("undecodable escrow log: %s", os_strerror(e));
        if (ev.kind == kind) {
            found = ev;
            n++;
        }
    }
    if (n != 1)
        FAILP("%d events of kind %d in the receipt", n, (int)kind);
    return found;
}

static void approve(int who, uint64_t amount)
{
    os_buf d;
    os_buf_init(&d, 256);
    if (os_erc20_encode_approve(&d, P.d.escrow, amount) != OS_OK)
        FAILP("encode approve");
    run(who, P.d.usdc, &d, EXPECT_OK, NULL);
    os_buf_free(&d);
    P.a[who].allowance = amount;
}

/* Moves the clock past any closeAt that a step could straddle, then notes the time. */
static void settle_time(void)
{
    char why[WHY];
    for (;;) {
        bool straddle = false;
        if (devchain_time(&P.d, &P.now, why, sizeof(why)) != 0)
            FAILP("%s", why);
        for (size_t i = 0; i < P.n_ch; i++) {
            const mchan *c = &P.ch[i];
            if (!c->closed && c->close_at > P.now && c->close_at <= P.now + WINDOW)
                straddle = true;
        }
        if (!straddle)
            return;
        if (devchain_advance(&P.d, WINDOW + 1, why, sizeof(why)) != 0)
            FAILP("%s", why);
    }
}

/* ---- the model's predictions, in the contract's order of checks --------------------------- */

static bool grace_over(const mchan *c)
{
    return c->close_at != 0 && c->close_at <= P.now;
}

static mchan *find_channel(const uint8_t id[32])
{
    for (size_t i = 0; i < P.n_ch; i++)
        if (memcmp(P.ch[i].id, id, 32) == 0)
            return &P.ch[i];
    return NULL;
}

/* transferFrom(payer, escrow, amount) as OpenZeppelin's ERC20 checks it. */
static int predict_pull(int payer, uint64_t amount)
{
    if (P.a[payer].allowance < amount)
        return OS_ESCROW_E_ERC20_INSUFFICIENT_ALLOWANCE;
    if (P.a[payer].bal < amount)
        return OS_ESCROW_E_ERC20_INSUFFICIENT_BALANCE;
    return EXPECT_OK;
}

/* claim (is_close false) or close of c by caller with voucher v (NULL: the empty close). *paid
 * receives what it pays the seller. */
static int predict_redeem(const mchan *c, int caller, const pvoucher *v, bool is_close,
                          uint64_t *paid)
{
    uint64_t cap;
    *paid = 0;
    if (c == NULL)
        return OS_ESCROW_E_CHANNEL_NOT_FOUND;
    if (c->closed)
        return OS_ESCROW_E_CHANNEL_IS_CLOSED;
    if (caller != c->seller)
        return OS_ESCROW_E_NOT_SELLER;
    if (grace_over(c))
        return OS_ESCROW_E_GRACE_PERIOD_OVER;
    if (v == NULL)
        return EXPECT_OK;
    if (v->kind == VK_HIGH_S)
        return OS_ESCROW_E_INVALID_SIGNATURE;
    if (v->kind == VK_WRONG)
        return OS_ESCROW_E_WRONG_SIGNER;
    if (v->v.nonce < c->last_nonce)
        return OS_ESCROW_E_STALE_NONCE;
    cap = v->v.cumulative_amount < c->deposit ? v->v.cumulative_amount : c->deposit;
    *paid = cap > c->claimed ? cap - c->claimed : 0;
    if (!is_close && *paid == 0)
        return OS_ESCROW_E_NOTHING_TO_CLAIM;
    return EXPECT_OK;
}

/* topUp, requestClose and withdraw share the first checks. */
static int predict_payer_call(const mchan *c, int caller)
{
    if (c == NULL)
        return OS_ESCROW_E_CHANNEL_NOT_FOUND;
    if (c->closed)
        return OS_ESCROW_E_CHANNEL_IS_CLOSED;
    if (caller != c->payer)
        return OS_ESCROW_E_NOT_PAYER;
    return EXPECT_OK;
}

/* ---- choosing what to act on --------------------------------------------------------------- */

/* A channel to act on: mostly open ones, sometimes any, now and then one nobody opened (NULL,
 * with its id in unknown). */
static mchan *pick_channel(uint8_t unknown[32])
{
    size_t open_idx[MAX_CH], n_open = 0;
    for (size_t i = 0; i < P.n_ch; i++)
        if (!P.ch[i].closed)
            open_idx[n_open++] = i;
    if (P.n_ch == 0 || chance(5)) {
        rnd_bytes(unknown, 32);
        return NULL;
    }
    if (n_open > 0 && chance(85))
        return &P.ch[open_idx[below(n_open)]];
    return &P.ch[below(P.n_ch)];
}

/* The right account with probability pct, else any other. */
static int pick_caller(int right, unsigned pct)
{
    int other;
    if (right >= 0 && chance(pct))
        return right;
    do
        other = (int)below(N_ACCT);
    while (other == right);
    return other;
}

static const uint8_t *id_of(const mchan *c, const uint8_t unknown[32])
{
    return c != NULL ? c->id : unknown;
}

/* The signer issues its next voucher: a higher nonce, a cumulative amount that may pass the
 * deposit (the contract then pays up to the deposit). */
static void issue_voucher(mchan *c)
{
    if (c->has_latest) {
        c->prev = c->latest;
        c->has_prev = true;
    }
    memset(&c->latest, 0, sizeof(c->latest));
    c->issued_nonce += 1 + below(3);
    c->issued_cum += below(c->deposit / 3 + 2);
    memcpy(c->latest.v.channel_id, c->id, 32);
    c->latest.v.cumulative_amount = c->issued_cum;
    c->latest.v.nonce = c->issued_nonce;
    rnd_bytes(c->latest.v.metadata_hash, 32);
    c->latest.kind = VK_GOOD;
    if (os_voucher_sign_ds(&c->latest.v, c->signer_priv, P.d.escrow_domain) != OS_OK)
        FAILP("sign voucher");
    c->has_latest = true;
}

/* A voucher for the claim/close of c: the latest (often a new one), an older one, one signed by
 * a stranger's key, or the latest's high-s twin. For an unknown channel, a well-signed one. */
static void pick_voucher(pvoucher *out, mchan *c, const uint8_t unknown[32])
{
    static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                  0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
    uint8_t priv[32], addr[20];
    unsigned r = (unsigned)below(100);
    if (c == NULL) {
        memset(out, 0, sizeof(*out));
        memcpy(out->v.channel_id, unknown, 32);
        out->v.cumulative_amount = 1000;
        rnd_key(priv, addr);
        if (os_voucher_sign_ds(&out->v, priv, P.d.escrow_domain) != OS_OK)
            FAILP("sign voucher");
        return;
    }
    if (!c->has_latest || r < 55)
        issue_voucher(c);
    if (r >= 70 && r < 80 && c->has_prev) {
        *out = c->prev;
        return;
    }
    *out = c->latest;
    if (r >= 80 && r < 90) {
        rnd_key(priv, addr);
        if (os_voucher_sign_ds(&out->v, priv, P.d.escrow_domain) != OS_OK)
            FAILP("sign voucher");
        out->kind = VK_WRONG;
    } else if (r >= 90) {
        int borrow = 0;
        for (int i = 31; i >= 0; i--) {
            int d = n[i] - out->v.sig[32 + i] - borrow;
            borrow = d < 0;
            out->v.sig[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
        }
        out->v.sig[64] ^= 27 ^ 28;
        out->kind = VK_HIGH_S;
    }
}

/* ---- actions ----------------------------------------------------------------------------- */

static void book_open(int payer, const os_escrow_open_args *o, const uint8_t id[32],
                      const uint8_t signer_priv[32], const os_chain_receipt *rc)
{
    mchan *c;
    os_escrow_event ev = the_event(rc, OS_ESCROW_EV_OPENED);
    if (P.n_ch == MAX_CH)
        FAILP("too many channels");
    c = &P.ch[P.n_ch++];
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, 32);
    memcpy(c->salt, o->salt, 32);
    memcpy(c->commitment, o->commitment, 32);
    memcpy(c->signer, o->signer, 20);
    memcpy(c->signer_priv, signer_priv, 32);
    c->payer = payer;
    c->seller = memcmp(o->seller, P.a[3].addr, 20) == 0 ? 3 : 4;
    if (memcmp(o->seller, P.a[c->seller].addr, 20) != 0)
        FAILP("opened with a seller that is no seller");
    c->deposit = o->amount;
    P.a[payer].bal -= o->amount;
    P.escrow_bal += o->amount;
    if (memcmp(ev.channel_id, id, 32) != 0 || memcmp(ev.payer, P.a[payer].addr, 20) != 0 ||
        ev.deposit != o->amount || memcmp(ev.signer, o->signer, 20) != 0)
        FAILP("ChannelOpened does not match the call");
}

/* Parameters for a new channel by buyer b; now and then a salt it already used with that
 * seller (ChannelExists), a zero seller or a zero amount. */
static void new_open_args(os_escrow_open_args *o, uint8_t signer_priv[32], int b, bool mischief)
{
    int seller = 3 + (int)below(2);
    memset(o, 0, sizeof(*o));
    memcpy(o->seller, P.a[seller].addr, 20);
    rnd_key(signer_priv, o->signer);
    rnd_bytes(o->commitment, 32);
    rnd_bytes(o->salt, 32);
    o->amount = 1 + below(5000000);
    if (!mischief)
        return;
    switch (below(3)) {
    case 0:
        for (size_t i = 0; i < P.n_ch; i++)
            if (P.ch[i].payer == b) {
                memcpy(o->salt, P.ch[i].salt, 32);
                memcpy(o->seller, P.a[P.ch[i].seller].addr, 20);
                break;
            }
        break;
    case 1:
        memset(o->seller, 0, 20);
        break;
    default:
        o->amount = 0;
    }
}

static int predict_create(int payer, const os_escrow_open_args *o, uint8_t id[32])
{
    os_escrow_channel_id(id, CHAIN_ID, P.d.escrow, P.a[payer].addr, o->seller, o->salt);
    if (os_ct_is_zero(o->seller, 20) || os_ct_is_zero(o->signer, 20))
        return OS_ESCROW_E_ZERO_ADDRESS;
    if (o->amount == 0)
        return OS_ESCROW_E_ZERO_AMOUNT;
    if (find_channel(id) != NULL)
        return OS_ESCROW_E_CHANNEL_EXISTS;
    return EXPECT_OK;
}

static void act_open(void)
{
    int b = (int)below(N_BUYERS), expect;
    os_escrow_open_args o;
    uint8_t signer_priv[32], id[32];
    os_chain_receipt *rc;
    os_buf d;
    new_open_args(&o, signer_priv, b, chance(15));
    /* usually the exact allowance; sometimes one short, sometimes whatever is left */
    if (chance(85))
        approve(b, o.amount);
    else if (chance(50) && o.amount > 0)
        approve(b, o.amount - 1);
    snprintf(P.what, sizeof(P.what), "open by buyer %d of %" PRIu64, b, o.amount);
    expect = predict_create(b, &o, id);
    if (expect == EXPECT_OK)
        expect = predict_pull(b, o.amount);
    os_buf_init(&d, 2048);
    if (os_escrow_encode_open(&d, &o) != OS_OK)
        FAILP("encode open");
    run(b, P.d.escrow, &d, expect, &rc);
    os_buf_free(&d);
    if (expect != EXPECT_OK) {
        P.bad[A_OPEN]++;
        return;
    }
    P.a[b].allowance -= o.amount;
    book_open(b, &o, id, signer_priv, rc);
    os_chain_receipt_free(rc);
    P.ok[A_OPEN]++;
}

static void act_open_auth(void)
{
    int b = (int)below(N_BUYERS), relayer = 5 + (int)below(2), expect;
    os_escrow_open_args o, sent;
    os_escrow_open_auth auth;
    uint8_t signer_priv[32], payer_priv[32], id[32];
    uint64_t after = 0, before = P.now + 3600;
    os_chain_receipt *rc;
    unsigned r = (unsigned)below(100);
    os_buf d;
    new_open_args(&o, signer_priv, b, r < 10);
    if (r >= 10 && r < 20)
        before = P.now; /* expired: the block's time is at least this */
    else if (r >= 20 && r < 25)
        after = P.now + 10 * WINDOW; /* not yet valid */
    devchain_key(payer_priv, b + 1);
    if (os_escrow_sign_open_auth(&auth, NULL, &o, payer_priv, CHAIN_ID, P.d.escrow, P.d.usdc_domain,
                                 after, before) != OS_OK)
        FAILP("sign the authorization");
    os_wipe(payer_priv, 32);
    sent = o;
    if (r >= 25 && r < 35) /* the relayer swaps in its own signer: the nonce no longer matches */
        memcpy(sent.signer, P.a[relayer].addr, 20);
    snprintf(P.what, sizeof(P.what), "openWithAuthorization for buyer %d of %" PRIu64 " by %d", b,
             o.amount, relayer);
    expect = predict_create(b, &sent, id);
    if (expect == EXPECT_OK && P.now + WINDOW <= after)
        expect = OS_ESCROW_E_AUTH_NOT_YET_VALID;
    else if (expect == EXPECT_OK && P.now >= before)
        expect = OS_ESCROW_E_AUTH_EXPIRED;
    else if (expect == EXPECT_OK && memcmp(sent.signer, o.signer, 20) != 0)
        expect = OS_ESCROW_E_INVALID_SIGNER;
    else if (expect == EXPECT_OK && P.a[b].bal < o.amount)
        expect = OS_ESCROW_E_ERC20_INSUFFICIENT_BALANCE;
    os_buf_init(&d, 2048);
    if (os_escrow_encode_open_with_auth(&d, &sent, &auth) != OS_OK)
        FAILP("encode openWithAuthorization");
    run(relayer, P.d.escrow, &d, expect, &rc);
    os_buf_free(&d);
    if (expect != EXPECT_OK) {
        P.bad[A_OPEN_AUTH]++;
        return;
    }
    book_open(b, &o, id, signer_priv, rc);
    os_chain_receipt_free(rc);
    P.ok[A_OPEN_AUTH]++;
}

static void act_top_up(void)
{
    uint8_t unknown[32];
    mchan *c = pick_channel(unknown);
    int caller = pick_caller(c ? c->payer : -1, 80), expect;
    uint64_t amount = chance(8) ? 0 : 1 + below(2000000);
    os_chain_receipt *rc;
    os_buf d;
    if (caller < N_BUYERS && chance(85))
        approve(caller, amount);
    snprintf(P.what, sizeof(P.what), "topUp of %" PRIu64 " by %d", amount, caller);
    expect = predict_payer_call(c, caller);
    if (expect == EXPECT_OK && c->close_at != 0)
        expect = OS_ESCROW_E_CLOSE_ALREADY_REQUESTED;
    if (expect == EXPECT_OK && amount == 0)
        expect = OS_ESCROW_E_ZERO_AMOUNT;
    if (expect == EXPECT_OK)
        expect = predict_pull(caller, amount);
    os_buf_init(&d, 256);
    if (os_escrow_encode_top_up(&d, id_of(c, unknown), amount) != OS_OK)
        FAILP("encode topUp");
    run(caller, P.d.escrow, &d, expect, &rc);
    os_buf_free(&d);
    if (expect != EXPECT_OK) {
        P.bad[A_TOP_UP]++;
        return;
    }
    c->deposit += amount;
    P.a[caller].allowance -= amount;
    P.a[caller].bal -= amount;
    P.escrow_bal += amount;
    {
        os_escrow_event ev = the_event(rc, OS_ESCROW_EV_TOPPED_UP);
        if (ev.amount != amount || ev.deposit != c->deposit)
            FAILP("ToppedUp %" PRIu64 "/%" PRIu64, ev.amount, ev.deposit);
    }
    os_chain_receipt_free(rc);
    P.ok[A_TOP_UP]++;
}

/* claim, or close (with a voucher, without one, or with an empty signature and a non-zero field).
 */
static void act_redeem(bool is_close)
{
    uint8_t unknown[32];
    mchan *c = pick_channel(unknown);
    int caller = pick_caller(c ? c->seller : -1, 80), expect, a = is_close ? A_CLOSE : A_CLAIM;
    bool empty = is_close && chance(30), forgot = empty && chance(25);
    uint64_t paid;
    pvoucher v;
    os_chain_receipt *rc;
    os_buf d;
    pick_voucher(&v, c, unknown);
    snprintf(P.what, sizeof(P.what), "%s by %d, voucher %" PRIu64 "/n%" PRIu64 " kind %d%s",
             is_close ? "close" : "claim", caller, v.v.cumulative_amount, v.v.nonce, v.kind,
             empty ? (forgot ? " (signature forgotten)" : " (empty)") : "");
    expect = predict_redeem(c, caller, empty ? NULL : &v, is_close, &paid);
    if (forgot && expect == EXPECT_OK)
        expect = OS_ESCROW_E_INVALID_SIGNATURE;
    os_buf_init(&d, 2048);
    if (forgot) {
        os_abi_value args[5];
        uint8_t zero[32] = {0};
        args[0] = os_abi_bytes32(id_of(c, unknown));
        args[1] = os_abi_uint64(1 + below(1000));
        args[2] = os_abi_uint64(0);
        args[3] = os_abi_bytes32(zero);
        args[4] = os_abi_bytes(NULL, 0);
        if (os_abi_encode_call(&d, "close(bytes32,uint256,uint64,bytes32,bytes)", args, 5) != OS_OK)
            FAILP("encode close");
    } else if (empty) {
        if (os_escrow_encode_close_empty(&d, id_of(c, unknown)) != OS_OK)
            FAILP("encode close");
    } else if ((is_close ? os_escrow_encode_close(&d, &v.v) : os_escrow_encode_claim(&d, &v.v)) !=
               OS_OK) {
        FAILP("encode claim/close");
    }
    run(caller, P.d.escrow, &d, expect, &rc);
    os_buf_free(&d);
    if (expect != EXPECT_OK) {
        P.bad[a]++;
        return;
    }
    if (!empty)
        c->last_nonce = v.v.nonce;
    c->claimed += paid;
    P.a[c->seller].bal += paid;
    P.escrow_bal -= paid;
    if (paid > 0) {
        os_escrow_event ev = the_event(rc, OS_ESCROW_EV_CLAIMED);
        if (ev.amount != paid || ev.claimed != c->claimed || ev.nonce != v.v.nonce)
            FAILP("Claimed %" PRIu64 "/%" PRIu64 ", model %" PRIu64 "/%" PRIu64, ev.amount,
                  ev.claimed, paid, c->claimed);
    }
    if (is_close) {
        uint64_t refund = c->deposit - c->claimed;
        os_escrow_event ev = the_event(rc, OS_ESCROW_EV_CLOSED);
        if (ev.claimed != c->claimed || ev.refund != refund)
            FAILP("Closed %" PRIu64 "/%" PRIu64, ev.claimed, ev.refund);
        c->closed = true;
        P.a[c->payer].bal += refund;
        P.escrow_bal -= refund;
    }
    os_chain_receipt_free(rc);
    P.ok[a]++;
}

static void act_request_close(void)
{
    char why[WHY];
    uint8_t unknown[32];
    mchan *c = pick_channel(unknown);
    int caller = pick_caller(c ? c->payer : -1, 80), expect;
    uint64_t t;
    os_chain_receipt *rc;
    os_escrow_event ev;
    os_buf d;
    snprintf(P.what, sizeof(P.what), "requestClose by %d", caller);
    expect = predict_payer_call(c, caller);
    if (expect == EXPECT_OK && c->close_at != 0)
        expect = OS_ESCROW_E_CLOSE_ALREADY_REQUESTED;
    os_buf_init(&d, 256);
    if (os_escrow_encode_request_close(&d, id_of(c, unknown)) != OS_OK)
        FAILP("encode requestClose");
    run(caller, P.d.escrow, &d, expect, &rc);
    os_buf_free(&d);
    if (expect != EXPECT_OK) {
        P.bad[A_REQUEST]++;
        return;
    }
    ev = the_event(rc, OS_ESCROW_EV_CLOSE_REQUESTED);
    if (devchain_block_time(&P.d, &t, rc->block_number, why, sizeof(why)) != 0)
        FAILP("%s", why);
    if (ev.close_at != t + GRACE)
        FAILP("closeAt %" PRIu64 ", block time %" PRIu64, ev.close_at, t);
    c->close_at = ev.close_at;
    os_chain_receipt_free(rc);
    P.ok[A_REQUEST]++;
}

static void act_withdraw(void)
{
    uint8_t unknown[32];
    mchan *c = pick_channel(unknown);
    int caller = pick_caller(c ? c->payer : -1, 85), expect;
    uint64_t refund;
    os_chain_receipt *rc;
    os_escrow_event ev;
    os_buf d;
    snprintf(P.what, sizeof(P.what), "withdraw by %d", caller);
    expect = predict_payer_call(c, caller);
    if (expect == EXPECT_OK && c->close_at == 0)
        expect = OS_ESCROW_E_CLOSE_NOT_REQUESTED;
    else if (expect == EXPECT_OK && !grace_over(c))
        expect = OS_ESCROW_E_GRACE_PERIOD_NOT_OVER;
    os_buf_init(&d, 256);
    if (os_escrow_encode_withdraw(&d, id_of(c, unknown)) != OS_OK)
        FAILP("encode withdraw");
    run(caller, P.d.escrow, &d, expect, &rc);
    os_buf_free(&d);
    if (expect != EXPECT_OK) {
        P.bad[A_WITHDRAW]++;
        return;
    }
    refund = c->deposit - c->claimed;
    ev = the_event(rc, OS_ESCROW_EV_WITHDRAWN);
    if (ev.claimed != c->claimed || ev.refund != refund)
        FAILP("Withdrawn %" PRIu64 "/%" PRIu64, ev.claimed, ev.refund);
    c->closed = true;
    P.a[c->payer].bal += refund;
    P.escrow_bal -= refund;
    os_chain_receipt_free(rc);
    P.ok[A_WITHDRAW]++;
}

static void act_time(void)
{
    char why[WHY];
    uint64_t dt;
    switch (below(3)) {
    case 0:
        dt = 1 + below(60);
        break;
    case 1:
        dt = GRACE / 3;
        break;
    default:
        dt = GRACE + 1 + below(200);
    }
    snprintf(P.what, sizeof(P.what), "time +%" PRIu64 " s", dt);
    if (devchain_advance(&P.d, dt, why, sizeof(why)) != 0)
        FAILP("%s", why);
    P.ok[A_TIME]++;
}

/* ---- checks ------------------------------------------------------------------------------ */

static void check_all(void)
{
    uint64_t seller_paid[N_ACCT] = {0}, buyer_out[N_ACCT] = {0}, open_sum = 0, total = 0, bal;
    os_channel_state st;
    os_chain_error err;
    for (size_t i = 0; i < P.n_ch; i++) {
        const mchan *c = &P.ch[i];
        os_err e = os_escrow_get_channel(P.d.ch, &st, &err, P.d.escrow, c->id);
        if (e != OS_OK)
            FAILP("getChannel %zu: %s (%s)", i, os_strerror(e), err.message);
        if (st.deposit != c->deposit || st.claimed != c->claimed || st.close_at != c->close_at ||
            st.closed != c->closed || st.last_nonce != c->last_nonce ||
            memcmp(st.payer, P.a[c->payer].addr, 20) != 0 ||
            memcmp(st.seller, P.a[c->seller].addr, 20) != 0 ||
            memcmp(st.signer, c->signer, 20) != 0 || memcmp(st.commitment, c->commitment, 32) != 0)
            FAILP("channel %zu: chain deposit %" PRIu64 " claimed %" PRIu64 " closeAt %" PRIu64
                  " closed %d nonce %" PRIu64 "; model %" PRIu64 " %" PRIu64 " %" PRIu64
                  " %d %" PRIu64,
                  i, st.deposit, st.claimed, st.close_at, st.closed, st.last_nonce, c->deposit,
                  c->claimed, c->close_at, c->closed, c->last_nonce);
        /* entitlements, from the chain's own numbers */
        if (st.claimed > st.deposit || st.claimed > c->issued_cum)
            FAILP("channel %zu paid %" PRIu64 " of deposit %" PRIu64 ", vouchers up to %" PRIu64, i,
                  st.claimed, st.deposit, c->issued_cum);
        seller_paid[c->seller] += st.claimed;
        buyer_out[c->payer] += st.closed ? st.claimed : st.deposit;
        if (!st.closed)
            open_sum += st.deposit - st.claimed;
    }
    bal = devchain_balance(&P.d, P.d.escrow);
    if (bal != P.escrow_bal || bal != open_sum)
        FAILP("escrow holds %" PRIu64 ", model %" PRIu64 ", open channels %" PRIu64, bal,
              P.escrow_bal, open_sum);
    total += bal;
    for (int i = 0; i < N_ACCT; i++) {
        uint64_t want_chain = i < N_BUYERS ? P.a[i].minted - buyer_out[i] : seller_paid[i];
        bal = devchain_balance(&P.d, P.a[i].addr);
        if (bal != P.a[i].bal || bal != want_chain)
            FAILP("account %d holds %" PRIu64 ", model %" PRIu64 ", entitled to %" PRIu64, i, bal,
                  P.a[i].bal, want_chain);
        total += bal;
    }
    if (total != N_BUYERS * MINT)
        FAILP("USDC total %" PRIu64 " != minted %llu", total, N_BUYERS * MINT);
}

/* The event log alone must give every channel's deposit, claimed, closeAt and closed. */
static void check_log_rebuild(void)
{
    os_chain_filter f;
    os_chain_log *logs;
    os_chain_error err;
    os_escrow_event ev;
    size_t n;
    snprintf(P.what, sizeof(P.what), "rebuild from the event log");
    memset(&f, 0, sizeof(f));
    f.has_address = true;
    memcpy(f.address, P.d.escrow, 20);
    f.from_block = P.d.deploy_block;
    f.to_latest = true;
    if (os_chain_get_logs(P.d.ch, &logs, &n, &err, &f) != OS_OK)
        FAILP("getLogs: %s", err.message);
    for (size_t i = 0; i < P.n_ch; i++) {
        const mchan *c = &P.ch[i];
        uint64_t deposit = 0, claimed = 0, close_at = 0, paid = 0;
        bool closed = false;
        for (size_t k = 0; k < n; k++) {
            if (os_escrow_decode_event(&ev, &logs[k], P.d.escrow) != OS_OK)
                FAILP("log %zu does not decode", k);
            if (memcmp(ev.channel_id, c->id, 32) != 0)
                continue;
            switch (ev.kind) {
            case OS_ESCROW_EV_OPENED:
            case OS_ESCROW_EV_TOPPED_UP:
                deposit = ev.deposit;
                break;
            case OS_ESCROW_EV_CLAIMED:
                claimed = ev.claimed;
                paid += ev.amount;
                break;
            case OS_ESCROW_EV_CLOSE_REQUESTED:
                close_at = ev.close_at;
                break;
            case OS_ESCROW_EV_CLOSED:
            case OS_ESCROW_EV_WITHDRAWN:
                closed = true;
            }
        }
        if (deposit != c->deposit || claimed != c->claimed || paid != c->claimed ||
            close_at != c->close_at || closed != c->closed)
            FAILP("channel %zu rebuilt from logs differs from the model", i);
    }
    os_chain_logs_free(logs, n);
}

static void test_escrow_random_walk(void **state)
{
    char why[WHY];
    uint64_t steps = env_u64("OPENSEED_PROPERTY_STEPS", 150);
    unsigned fails = 0, oks = 0;
    struct timespec t0, t1;
    (void)state;
    P.seed = env_u64("OPENSEED_PROPERTY_SEED", (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    P.rng = P.seed;
    print_message("escrow property: seed %" PRIu64 " (OPENSEED_PROPERTY_SEED), %" PRIu64 " steps\n",
                  P.seed, steps);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(P.what, sizeof(P.what), "minting");
    for (int i = 0; i < N_BUYERS; i++) {
        if (devchain_mint(&P.d, P.a[i].addr, MINT, why, sizeof(why)) != 0)
            FAILP("%s", why);
        P.a[i].bal = P.a[i].minted = MINT;
    }
    check_all();
    for (P.step = 1; P.step <= (int)steps; P.step++) {
        unsigned r = (unsigned)below(100);
        settle_time();
        if (r < 13)
            act_open();
        else if (r < 20)
            act_open_auth();
        else if (r < 30)
            act_top_up();
        else if (r < 55)
            act_redeem(false);
        else if (r < 63)
            act_redeem(true);
        else if (r < 74)
            act_request_close();
        else if (r < 87)
            act_withdraw();
        else
            act_time();
        check_all();
    }
    P.step = (int)steps;
    check_log_rebuild();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int a = 0; a < A__N; a++) {
        print_message("  %-13s ok %3u  reverted %3u\n", action_names[a], P.ok[a], P.bad[a]);
        oks += P.ok[a];
        fails += P.bad[a];
    }
    print_message("  %zu channels, %u reverts also mined with status 0, %.1f s, seed %" PRIu64 "\n",
                  P.n_ch, P.mined_reverts,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                  P.seed);
    /* a walk that never succeeded or never failed explored nothing */
    if (steps >= 50 && (oks == 0 || fails == 0 || P.ok[A_OPEN] + P.ok[A_OPEN_AUTH] == 0))
        FAILP("degenerate walk: %u successes, %u reverts", oks, fails);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escrow_random_walk),
    };
    return cmocka_run_group_tests_name("escrow property (anvil)", tests, setup, teardown);
}
