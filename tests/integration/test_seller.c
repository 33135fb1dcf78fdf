/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller end to end, with real parts only: anvil with the committed escrow and TestUSDC, a
 * registry core, the seller core (in this process, on loopback ports) selling the built-in echo
 * upstream, and a buyer-side client built from libcommon (test_buyer.h) that opens a real channel
 * and pays with real vouchers and credentials over real HTTP:
 *   - the signed record at /v1/info and the seller listed by the registry;
 *   - paid calls: OpenAI chat (whole and streamed, with tool calls), embeddings, Anthropic
 *     messages (whole and streamed), the cost in the final chunk equal to the priced usage and
 *     within the voucher, consumed growing by exactly that;
 *   - the 402 invoice for a request without a voucher, and the recovery of a stale buyer;
 *   - every bad input of the issue, each with its status and code, each leaving seller.db as it
 *     was and costing the buyer nothing;
 *   - the upstream's failure modes (500, 429, a stream cut mid-way, a slow first token past the
 *     seller's timeout) and a buyer that leaves mid-stream (the upstream is cancelled, the tokens
 *     produced are charged);
 *   - settlement from the admin API: the seller's USDC balance rises by exactly what was claimed,
 *     which is the consumed total plus at most the last voucher's slack.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "registry_client.h"
#include "test_buyer.h"

#include <sqlite3.h>

#include "openseed/init.h"
#include "openseed/keyfile.h"

#include "registry.h"
#include "seller.h"

#define CHAIN 31337
#define WHY 512
#define DEPOSIT 5000000 /* 5 USDC */

static struct {
    devchain d;
    char dir[128];
    rg_registry *rg;
    char reg_url[64];
    sl_seller *s;
    char base[64];
    char admin[64];
    char token[128];
    uint8_t seller_a[20];
    tbuyer b;
    os_logger log;
} fx;

/* ---- helpers ---- */

static json_t *chat(const char *text, bool stream)
{
    return json_pack("{s:s,s:[{s:s,s:s}],s:b,s:i}", "model", "echo-1", "messages", "role", "user",
                     "content", text, "stream", stream, "max_tokens", 64);
}

/* GET/POST on the admin API with the token; the parsed JSON (caller decrefs) or NULL. */
static json_t *admin(const char *method, const char *path, const json_t *body, long *status)
{
    char url[256], auth[160];
    os_http_header h = {"Authorization", auth};
    json_t *out = NULL;
    long st = 0;
    os_http_client_error herr;

    snprintf(url, sizeof(url), "%s%s", fx.admin, path);
    snprintf(auth, sizeof(auth), "Bearer %s", fx.token);
    if (os_http_client_json(fx.b.http, &st, &out, &herr, method, url, body, &h, 1) != OS_OK) {
        if (getenv("TEST_DEBUG") != NULL)
            fprintf(stderr, "admin %s %s: %s\n", method, path, herr.message);
        json_decref(out);
        out = NULL;
    }
    if (status != NULL)
        *status = st;
    if (st != 200 && getenv("TEST_DEBUG") != NULL)
        fprintf(stderr, "admin %s %s: %ld\n", method, path, st);
    return out;
}

/* The seller's view of the buyer's channel: consumed, latest nonce, vouchers stored. */
typedef struct snap {
    uint64_t consumed, nonce, vouchers, requests;
} snap;

static snap take_snap(void)
{
    snap s = {0};
    char path[256], hex[67];
    long st;
    json_t *c, *v;

    assert_int_equal(os_hex_encode(hex, sizeof(hex), fx.b.channel_id, 32, 1), OS_OK);
    c = admin("GET", "/admin/v1/channels", NULL, &st);
    json_t *arr = json_object_get(c, "channels");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *ch = json_array_get(arr, i);
        if (strcmp(json_string_value(json_object_get(ch, "channel_id")), hex) != 0)
            continue;
        assert_int_equal(os_money_parse_json(&s.consumed, json_object_get(ch, "consumed")), OS_OK);
        json_t *lv = json_object_get(ch, "latest_voucher");
        if (json_is_object(lv))
            s.nonce = (uint64_t)json_integer_value(json_object_get(lv, "nonce"));
    }
    json_decref(c);
    snprintf(path, sizeof(path), "/admin/v1/vouchers?channel=%s&limit=1000", hex);
    v = admin("GET", path, NULL, &st);
    s.vouchers = json_array_size(json_object_get(v, "vouchers"));
    json_decref(v);
    snprintf(path, sizeof(path), "/admin/v1/requests?channel=%s&limit=1000", hex);
    v = admin("GET", path, NULL, &st);
    s.requests = json_array_size(json_object_get(v, "requests"));
    json_decref(v);
    return s;
}

static void assert_snap_equal(snap a, snap b)
{
    assert_true(a.consumed == b.consumed);
    assert_true(a.nonce == b.nonce);
    assert_true(a.vouchers == b.vouchers);
    assert_true(a.requests == b.requests);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    char why[WHY] = "", path[256];
    uint8_t key[32];
    rg_options ro;
    sl_options so;
    sl_echo_config ec = {.tokens_per_s = 200, .slow_first_token_ms = 4000};
    (void)state;

    if (os_init() != OS_OK)
        return -1;
    os_logger_init(&fx.log, "seller-test", OS_LOG_WARN);
    if (devchain_start(&fx.d, CHAIN, 900, why, sizeof(why)) != 0) {
        fprintf(stderr, "devchain: %s\n", why);
        return -1;
    }
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/openseed-seller-XXXXXX");
    if (rc_tmpdir(fx.dir) != 0)
        return -1;

    rg_options_default(&ro);
    snprintf(path, sizeof(path), "%s/registry.db", fx.dir);
    ro.listen = "127.0.0.1:0";
    ro.db_path = path;
    ro.chain_id = CHAIN;
    ro.heartbeat_interval_ms = 1000;
    ro.rate_per_s = 0;
    if (rg_registry_new_opts(&fx.rg, &ro, &fx.log) != OS_OK || rg_registry_start(fx.rg) != OS_OK)
        return -1;
    snprintf(fx.reg_url, sizeof(fx.reg_url), "http://127.0.0.1:%u",
             (unsigned)rg_registry_port(fx.rg));

    /* The seller's node key is anvil account 2, which has ETH for its claims. */
    snprintf(path, sizeof(path), "%s/seller", fx.dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/seller/node.key", fx.dir);
    devchain_key(key, 2);
    if (os_keyfile_write_secp(path, key, why, sizeof(why)) != OS_OK)
        return -1;
    os_wipe(key, sizeof(key));
    devchain_address(fx.seller_a, 2);

    sl_options_default(&so);
    snprintf(path, sizeof(path), "%s/seller", fx.dir);
    const char *regs[1] = {fx.reg_url};
    so.listen = "127.0.0.1:0";
    so.admin_listen = "127.0.0.1:0";
    so.data_dir = path;
    so.registries = regs;
    so.n_registries = 1;
    so.rpc = fx.d.anvil.url;
    so.chain_id = CHAIN;
    memcpy(so.escrow, fx.d.escrow, 20);
    memcpy(so.usdc, fx.d.usdc, 20);
    so.upstream = "builtin:echo";
    so.echo = &ec;
    so.upstream_first_byte_timeout_ms = 1500;
    so.channel_refresh_ms = 500;
    so.settle_threshold = 1000 * OS_USDC_UNIT; /* only on demand in this test */
    so.max_request = 64 * 1024;
    if (sl_seller_new_opts(&fx.s, &so, &fx.log) != OS_OK || sl_seller_start(fx.s) != OS_OK)
        return -1;
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", (unsigned)sl_seller_port(fx.s));
    snprintf(fx.admin, sizeof(fx.admin), "http://127.0.0.1:%u",
             (unsigned)sl_seller_admin_port(fx.s));
    snprintf(path, sizeof(path), "%s/seller/admin.token", fx.dir);
    if (os_keyfile_read_text(fx.token, sizeof(fx.token), NULL, path, why, sizeof(why)) != OS_OK)
        return -1;

    if (tb_init(&fx.b, fx.base, CHAIN, fx.d.escrow, why, sizeof(why)) != 0 ||
        tb_open(&fx.b, &fx.d, 1, fx.seller_a, DEPOSIT, why, sizeof(why)) != 0) {
        fprintf(stderr, "buyer: %s\n", why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tb_free(&fx.b);
    sl_seller_free(fx.s);
    rg_registry_free(fx.rg);
    devchain_stop(&fx.d);
    rc_rmtree(fx.dir);
    return 0;
}

/* ---- tests ---- */

static void test_record_and_registry(void **state)
{
    char url[160];
    json_t *peers = NULL;
    long st = 0;
    bool listed = false;
    (void)state;

    assert_memory_equal(fx.b.rec.node, fx.seller_a, 20);
    assert_memory_equal(fx.b.rec.escrow, fx.d.escrow, 20);
    assert_true(fx.b.rec.n_offerings == 1);
    assert_string_equal(fx.b.rec.offerings[0].services[0], "echo");
    snprintf(url, sizeof(url), "%s/v1/peers?service=echo", fx.reg_url);
    for (int i = 0; i < 100 && !listed; i++) {
        json_decref(peers);
        peers = NULL;
        assert_int_equal(
            os_http_client_json(fx.b.http, &st, &peers, NULL, "GET", url, NULL, NULL, 0), OS_OK);
        listed = json_array_size(json_object_get(peers, "peers")) == 1;
        if (!listed)
            rc_sleep_ms(100);
    }
    assert_true(listed);
    json_t *p = json_array_get(json_object_get(peers, "peers"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")), fx.base);
    json_decref(peers);
}

static void test_one_seller_per_data_dir(void **state)
{
    sl_options so;
    sl_seller *twin = NULL;
    char path[256];
    (void)state;

    sl_options_default(&so);
    snprintf(path, sizeof(path), "%s/seller", fx.dir);
    so.listen = "127.0.0.1:0";
    so.data_dir = path;
    so.rpc = fx.d.anvil.url;
    so.chain_id = CHAIN;
    memcpy(so.escrow, fx.d.escrow, 20);
    memcpy(so.usdc, fx.d.usdc, 20);
    so.upstream = "builtin:echo";
    assert_int_equal(sl_seller_new_opts(&twin, &so, &fx.log), OS_ERR_EXISTS);
    assert_null(twin);
}

static void test_paid_chat(void **state)
{
    static tb_out out;
    json_t *body = chat("hello paid world", false);
    snap before = take_snap(), after;
    uint64_t want;
    (void)state;

    tb_call(&fx.b, &out, "openai.chat", "echo", body);
    assert_int_equal(out.rc, OS_OK);
    assert_int_equal(out.res.http_status, 200);
    assert_false(out.res.streamed);
    assert_int_equal(out.res.final.status, 200);
    assert_true(out.res.paid);
    const char *content = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(out.res.body, "choices"), 0), "message"),
        "content"));
    assert_non_null(content);
    assert_string_equal(content, "echo: hello paid world");
    /* echo's usage: output = 4 tokens; the cost is exactly the priced usage, within the voucher */
    assert_int_equal(out.res.final.usage.output_tokens, 4);
    assert_int_equal(os_cost_actual(&want, &fx.b.rec.offerings[0].pricing,
                                    out.res.final.usage.input_tokens,
                                    out.res.final.usage.cached_tokens,
                                    out.res.final.usage.output_tokens),
                     OS_OK);
    assert_true(out.res.final.cost == want);
    assert_true(want > 0 && want <= out.estimate);
    after = take_snap();
    assert_true(after.consumed == before.consumed + want);
    assert_true(out.res.final.cumulative_consumed == after.consumed);
    assert_true(after.nonce == fx.b.nonce);
    assert_true(after.vouchers == before.vouchers + 1);
    os_infer_result_free(&out.res);
    json_decref(body);
}

static void test_stream_chat(void **state)
{
    static tb_out out;
    json_t *body = chat("one two three four five", true);
    snap before = take_snap(), after;
    (void)state;

    tb_call(&fx.b, &out, "openai.chat", "echo", body);
    assert_int_equal(out.rc, OS_OK);
    assert_int_equal(out.res.http_status, 200);
    assert_true(out.res.streamed);
    assert_int_equal(out.res.final.status, 200);
    /* one event per token delta: "echo:" " one" … " five" = 6, plus role/finish/usage/[DONE] */
    assert_true(out.res.events >= 6);
    assert_non_null(strstr(out.events, "\"content\":\" five\""));
    assert_non_null(strstr(out.events, "data: [DONE]"));
    assert_int_equal(out.res.final.usage.output_tokens, 6);
    after = take_snap();
    assert_true(after.consumed == before.consumed + out.res.final.cost);
    assert_true(out.res.final.cost > 0 && out.res.final.cost <= out.estimate);
    os_infer_result_free(&out.res);
    json_decref(body);
}

static void test_anthropic_and_embeddings(void **state)
{
    static tb_out out;
    json_t *msg = json_pack("{s:s,s:i,s:[{s:s,s:s}]}", "model", "echo-1", "max_tokens", 32,
                            "messages", "role", "user", "content", "bonjour le monde");
    json_t *emb = json_pack("{s:s,s:[s,s]}", "model", "echo-1", "input", "alpha", "beta gamma");
    (void)state;

    tb_call(&fx.b, &out, "anthropic.messages", "echo", msg);
    assert_int_equal(out.rc, OS_OK);
    assert_int_equal(out.res.final.status, 200);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(out.res.body, "content"), 0), "text")),
        "echo: bonjour le monde");
    os_infer_result_free(&out.res);

    json_object_set_new(msg, "stream", json_true());
    tb_call(&fx.b, &out, "anthropic.messages", "echo", msg);
    assert_int_equal(out.rc, OS_OK);
    assert_true(out.res.streamed);
    assert_non_null(strstr(out.events, "event: message_start"));
    assert_non_null(strstr(out.events, "event: message_stop"));
    assert_int_equal(out.res.final.usage.output_tokens, 4);
    os_infer_result_free(&out.res);

    tb_call(&fx.b, &out, "openai.embeddings", "echo", emb);
    assert_int_equal(out.rc, OS_OK);
    assert_int_equal(out.res.final.status, 200);
    assert_int_equal(json_array_size(json_object_get(out.res.body, "data")), 2);
    assert_int_equal(out.res.final.usage.output_tokens, 0);
    assert_int_equal(out.res.final.usage.input_tokens, 3);
    os_infer_result_free(&out.res);
    json_decref(msg);
    json_decref(emb);
}

/* A sealed request for the refusal tests: envelope bytes and their metadata hash. */
typedef struct sealed {
    os_infer_call *c;
    const uint8_t *env;
    size_t len;
    uint8_t mh[32];
    uint64_t estimate;
} sealed;

static void seal(sealed *q, const json_t *body)
{
    os_estimate est;
    const os_offering *o = tb_offering(&fx.b, "echo");
    assert_int_equal(os_infer_call_new(&q->c, &fx.b.kc, "openai.chat", "echo", body), OS_OK);
    q->env = os_infer_call_envelope(q->c, &q->len);
    os_infer_call_metadata_hash(q->c, q->mh);
    assert_int_equal(
        os_estimate_request(&est, "openai.chat", body, &o->pricing, o->max_output_tokens), OS_OK);
    q->estimate = est.total;
}

/* Sends raw with a voucher (cum, nonce) over mh and a credential; expects status and code. */
static void expect(const void *env, size_t len, const uint8_t mh[32], uint64_t cum, uint64_t nonce,
                   bool with_cred, long want_status, const char *want_code)
{
    char *pay = NULL, cred[OS_CRED_HEADER_LEN + 1], code[64];
    long st = 0;
    assert_int_equal(tb_sign(&fx.b, &pay, with_cred ? cred : NULL, mh, cum, nonce), 0);
    assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, env, len, pay,
                            with_cred ? cred : NULL, NULL),
                     0);
    if (st != want_status || strcmp(code, want_code) != 0)
        fail_msg("got %ld %s, want %ld %s", st, code, want_status, want_code);
    free(pay);
}

static void test_402_invoice(void **state)
{
    sealed q;
    json_t *body = chat("price me", false);
    os_x402_requirement r;
    char code[64];
    long st = 0;
    snap before = take_snap();
    (void)state;

    seal(&q, body);
    assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), &r, q.env, q.len, NULL, NULL, NULL), 0);
    assert_int_equal(st, 402);
    assert_string_equal(code, "payment_required");
    assert_true(r.chain_id == CHAIN);
    assert_true(r.amount == q.estimate);
    assert_memory_equal(r.pay_to, fx.seller_a, 20);
    assert_memory_equal(r.escrow, fx.d.escrow, 20);
    assert_false(r.has_channel);
    /* underpaid: the invoice says what the channel has consumed, so a stale buyer recovers */
    {
        char *pay = NULL, cred[OS_CRED_HEADER_LEN + 1];
        uint64_t nonce = ++fx.b.nonce;
        assert_int_equal(tb_sign(&fx.b, &pay, cred, q.mh, 1, nonce), 0);
        assert_int_equal(
            tb_raw(&fx.b, &st, code, sizeof(code), &r, q.env, q.len, pay, cred, NULL), 0);
        free(pay);
        assert_int_equal(st, 402);
        assert_string_equal(code, "insufficient_amount");
        assert_true(r.has_channel);
        assert_memory_equal(r.channel_id, fx.b.channel_id, 32);
        assert_true(r.consumed == before.consumed);
        assert_true(r.nonce == before.nonce);
        assert_true(r.amount == q.estimate);
    }
    assert_snap_equal(before, take_snap());
    os_infer_call_free(q.c);
    json_decref(body);
}

static void test_bad_input(void **state)
{
    sealed q;
    json_t *body = chat("bad inputs cost nothing", false);
    snap before;
    uint64_t bal_seller = devchain_balance(&fx.d, fx.seller_a);
    uint64_t cum, n;
    char *pay = NULL, cred[OS_CRED_HEADER_LEN + 1], code[64];
    long st;
    (void)state;

    seal(&q, body);
    before = take_snap();
    cum = before.consumed + q.estimate;
    n = fx.b.nonce + 10;

    /* no credential with a voucher */
    expect(q.env, q.len, q.mh, cum, n++, false, 401, "credential_required");
    /* a credential of another identity */
    {
        os_cred_secret *mine = fx.b.cred, *other = NULL;
        assert_int_equal(os_cred_keygen(&other), OS_OK);
        fx.b.cred = other;
        expect(q.env, q.len, q.mh, cum, n++, true, 401, "credential_mismatch");
        fx.b.cred = mine;
        os_cred_secret_free(other);
    }
    /* a credential proved for another request (moved) */
    {
        uint8_t other_mh[32];
        memset(other_mh, 7, 32);
        assert_int_equal(tb_sign(&fx.b, &pay, cred, other_mh, cum, n++), 0);
        free(pay);
        char *pay2 = NULL;
        assert_int_equal(tb_sign(&fx.b, &pay2, NULL, q.mh, cum, n++), 0);
        assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, pay2, cred,
                                NULL),
                         0);
        free(pay2);
        assert_int_equal(st, 401);
        assert_string_equal(code, "invalid_credential");
    }
    /* a malformed credential and payment header */
    {
        assert_int_equal(tb_sign(&fx.b, &pay, NULL, q.mh, cum, n++), 0);
        assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, pay,
                                "bm90IGEgY3JlZGVudGlhbA==", NULL),
                         0);
        assert_int_equal(st, 401);
        assert_string_equal(code, "invalid_credential");
        free(pay);
        assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len,
                                "eyJ4NDAyVmVyc2lvbiI6Mn0=", NULL, NULL),
                         0);
        assert_int_equal(st, 400);
        assert_string_equal(code, "invalid_payment");
    }
    /* a bad envelope: garbage, a wrong content type, a tampered ciphertext (signed as sent) */
    {
        uint8_t junk[200], mh[32];
        memset(junk, 0x41, sizeof(junk));
        /* the key id is the first byte; the seller's is derived from its random key, so junk must
         * not share it by chance (1 in 256) */
        junk[0] = (uint8_t)(fx.b.kc.key_id + 1);
        os_keccak256(mh, junk, sizeof(junk));
        expect(junk, sizeof(junk), mh, cum, n++, true, 400, "unknown_key");
        assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, NULL, NULL,
                                "application/json"),
                         0);
        assert_int_equal(st, 400);
        uint8_t *t = malloc(q.len);
        memcpy(t, q.env, q.len);
        t[q.len - 5] ^= 1;
        os_keccak256(mh, t, q.len);
        expect(t, q.len, mh, cum, n++, true, 400, "invalid_envelope");
        free(t);
    }
    /* the voucher: signed by another key, high-s, for another chain or contract, metadata hash
     * of another body, nonce not increasing, amount below the need, above the deposit */
    {
        uint8_t mine[32];
        memcpy(mine, fx.b.signer_priv, 32);
        assert_int_equal(os_secp_keygen(fx.b.signer_priv), OS_OK);
        expect(q.env, q.len, q.mh, cum, n++, true, 401, "invalid_signature");
        memcpy(fx.b.signer_priv, mine, 32);

        uint64_t chain = fx.b.chain_id;
        fx.b.chain_id = 1;
        expect(q.env, q.len, q.mh, cum, n++, true, 401, "invalid_signature");
        fx.b.chain_id = chain;
        uint8_t esc[20];
        memcpy(esc, fx.b.escrow, 20);
        fx.b.escrow[19] ^= 1;
        expect(q.env, q.len, q.mh, cum, n++, true, 401, "invalid_signature");
        memcpy(fx.b.escrow, esc, 20);
    }
    {
        /* high-s: s' = n - s, v flipped, same signer */
        static const uint8_t order[32] = {
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
            0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
        os_voucher v;
        os_x402_requirement acc;
        memset(&v, 0, sizeof(v));
        memcpy(v.channel_id, fx.b.channel_id, 32);
        v.cumulative_amount = cum;
        uint64_t hn = n++;
        v.nonce = hn;
        memcpy(v.metadata_hash, q.mh, 32);
        assert_int_equal(os_voucher_sign(&v, fx.b.signer_priv, CHAIN, fx.d.escrow), OS_OK);
        int borrow = 0;
        for (int i = 31; i >= 0; i--) {
            int d = order[i] - v.sig[32 + i] - borrow;
            borrow = d < 0;
            v.sig[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
        }
        v.sig[64] = v.sig[64] == 27 ? 28 : 27;
        memset(&acc, 0, sizeof(acc));
        acc.chain_id = CHAIN;
        memcpy(acc.asset, fx.d.usdc, 20);
        memcpy(acc.pay_to, fx.seller_a, 20);
        memcpy(acc.escrow, fx.d.escrow, 20);
        assert_int_equal(os_x402_payment_encode(&pay, &acc, &v), OS_OK);
        assert_int_equal(os_cred_header_make(cred, sizeof(cred), NULL, fx.b.cred, fx.b.channel_id,
                                             hn, q.mh),
                         OS_OK);
        assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, pay, cred,
                                NULL),
                         0);
        free(pay);
        assert_int_equal(st, 401);
        assert_string_equal(code, "invalid_signature");
    }
    {
        /* the voucher names another body's metadata hash, the credential this one's */
        uint8_t other[32];
        char *p2 = NULL;
        memset(other, 9, 32);
        uint64_t mn = n++;
        assert_int_equal(tb_sign(&fx.b, &p2, NULL, other, cum, mn), 0);
        assert_int_equal(os_cred_header_make(cred, sizeof(cred), NULL, fx.b.cred, fx.b.channel_id,
                                             mn, q.mh),
                         OS_OK);
        assert_int_equal(
            tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, p2, cred, NULL), 0);
        free(p2);
        assert_int_equal(st, 401);
        assert_string_equal(code, "metadata_mismatch");
    }
    /* a replayed nonce: with its own credential the nullifier cache refuses it (above: a replay is
     * a nullifier reuse); with a fresh nullifier the nonce rule does */
    expect(q.env, q.len, q.mh, cum, before.nonce, true, 401, "nullifier_reused");
    {
        assert_int_equal(tb_sign(&fx.b, &pay, NULL, q.mh, cum, before.nonce), 0);
        assert_int_equal(tb_cred_random_nf(&fx.b, cred, q.mh), 0);
        assert_int_equal(
            tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, pay, cred, NULL), 0);
        free(pay);
        assert_int_equal(st, 402);
        assert_string_equal(code, "stale_nonce");
    }
    expect(q.env, q.len, q.mh, cum - 1, n++, true, 402, "insufficient_amount");
    expect(q.env, q.len, q.mh, DEPOSIT + 1, n++, true, 402, "exceeds_deposit");
    /* the same credential twice: the nullifier is refused the second time */
    {
        assert_int_equal(tb_sign(&fx.b, &pay, cred, q.mh, 1, n++), 0);
        assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, pay, cred,
                                NULL),
                         0);
        assert_int_equal(st, 402); /* underpaid, but the credential was good and is now spent */
        assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, pay, cred,
                                NULL),
                         0);
        free(pay);
        assert_int_equal(st, 401);
        assert_string_equal(code, "nullifier_reused");
    }
    /* an unknown channel and a channel that pays another seller */
    {
        uint8_t id[32];
        memcpy(id, fx.b.channel_id, 32);
        fx.b.channel_id[0] ^= 0xff;
        expect(q.env, q.len, q.mh, cum, n++, true, 402, "unknown_channel");
        memcpy(fx.b.channel_id, id, 32);

        tbuyer other;
        char why[WHY] = "";
        uint8_t stranger[20];
        devchain_address(stranger, 5);
        assert_int_equal(tb_init(&other, fx.base, CHAIN, fx.d.escrow, why, sizeof(why)), 0);
        assert_int_equal(tb_open(&other, &fx.d, 3, stranger, 1000000, why, sizeof(why)), 0);
        assert_int_equal(tb_sign(&other, &pay, cred, q.mh, cum, 1), 0);
        assert_int_equal(tb_raw(&fx.b, &st, code, sizeof(code), NULL, q.env, q.len, pay, cred,
                                NULL),
                         0);
        free(pay);
        tb_free(&other);
        assert_int_equal(st, 402);
        assert_string_equal(code, "channel_unusable");
    }
    /* the inner request: not JSON, not our shape, an unknown service, max_tokens over the cap */
    {
        os_infer_call *c = NULL;
        const uint8_t *env;
        size_t len;
        uint8_t mh[32];
        json_t *big = chat("x", false), *other_svc;
        json_object_set_new(big, "max_tokens", json_integer(1000000));
        assert_int_equal(os_infer_call_new(&c, &fx.b.kc, "openai.chat", "echo", big), OS_OK);
        env = os_infer_call_envelope(c, &len);
        os_infer_call_metadata_hash(c, mh);
        expect(env, len, mh, cum, n++, true, 400, "invalid_request");
        os_infer_call_free(c);
        other_svc = chat("x", false);
        assert_int_equal(os_infer_call_new(&c, &fx.b.kc, "openai.chat", "nope", other_svc), OS_OK);
        env = os_infer_call_envelope(c, &len);
        os_infer_call_metadata_hash(c, mh);
        expect(env, len, mh, cum, n++, true, 400, "unknown_service");
        os_infer_call_free(c);
        json_decref(big);
        json_decref(other_svc);

        /* raw plaintexts sealed by hand: not JSON; an object with an extra key */
        static const char *const bad[] = {"{not json", "{\"api\":\"openai.chat\",\"service\":"
                                                       "\"echo\",\"body\":{},\"x\":1}"};
        for (size_t i = 0; i < 2; i++) {
            os_ohttp_ctx ctx;
            uint8_t out[512];
            size_t ol = 0;
            memset(&ctx, 0, sizeof(ctx));
            assert_int_equal(os_ohttp_request_encap(&ctx, out, sizeof(out), &ol, &fx.b.kc,
                                                    (const uint8_t *)bad[i], strlen(bad[i])),
                             OS_OK);
            os_keccak256(mh, out, ol);
            expect(out, ol, mh, cum, n++, true, 400, i == 0 ? "invalid_json" : "invalid_request");
            os_ohttp_ctx_clear(&ctx);
        }
    }
    /* oversized: over the seller's max_request (64 KiB here) */
    {
        size_t len = 70 * 1024;
        uint8_t *big = calloc(1, len), mh[32];
        os_keccak256(mh, big, len);
        expect(big, len, mh, cum, n++, true, 413, "request_too_large");
        free(big);
    }
    assert_snap_equal(before, take_snap());
    assert_true(devchain_balance(&fx.d, fx.seller_a) == bal_seller);
    fx.b.nonce = n; /* nullifiers of the nonces used above are spent: a buyer moves past them */
    os_infer_call_free(q.c);
    json_decref(body);
}

static void test_upstream_failures(void **state)
{
    static tb_out out;
    json_t *body = chat("failing upstream", false), *sbody = chat("a b c d e f g h", true);
    sl_echo *e = sl_seller_echo(fx.s);
    snap before;
    (void)state;

    assert_non_null(e);
    /* 500 and 429 before any token: the error travels encrypted, nothing is charged */
    for (int i = 0; i < 2; i++) {
        before = take_snap();
        sl_echo_set_fail(e, i == 0 ? SL_ECHO_FAIL_500 : SL_ECHO_FAIL_429);
        tb_call(&fx.b, &out, "openai.chat", "echo", i == 0 ? body : sbody);
        assert_int_equal(out.rc, OS_OK);
        assert_int_equal(out.res.http_status, 200);
        assert_int_equal(out.res.final.status, i == 0 ? 500 : 429);
        assert_true(out.res.final.cost == 0);
        snap after = take_snap();
        assert_true(after.consumed == before.consumed);
        assert_true(after.requests == before.requests + 1);
        os_infer_result_free(&out.res);
    }
    /* a stream whose first token comes after the seller's first-byte timeout: 502 inside, no
     * charge (a whole answer is bounded only by upstream_timeout: it arrives when done) */
    before = take_snap();
    sl_echo_set_fail(e, SL_ECHO_FAIL_SLOW_FIRST);
    tb_call(&fx.b, &out, "openai.chat", "echo", sbody);
    assert_int_equal(out.rc, OS_OK);
    assert_int_equal(out.res.final.status, 502);
    assert_true(out.res.final.cost == 0);
    assert_true(take_snap().consumed == before.consumed);
    os_infer_result_free(&out.res);
    /* a stream cut after 3 token deltas: charged for what was produced, error in the final */
    before = take_snap();
    sl_echo_set_fail(e, SL_ECHO_FAIL_DROP);
    tb_call(&fx.b, &out, "openai.chat", "echo", sbody);
    assert_int_equal(out.rc, OS_OK);
    assert_true(out.res.final.has_error);
    assert_int_equal(out.res.final.usage.output_tokens, 3);
    assert_true(out.res.final.cost > 0 && out.res.final.cost < out.estimate);
    assert_true(take_snap().consumed == before.consumed + out.res.final.cost);
    os_infer_result_free(&out.res);
    sl_echo_set_fail(e, SL_ECHO_FAIL_NONE);
    json_decref(body);
    json_decref(sbody);
}

static void test_client_leaves_mid_stream(void **state)
{
    static tb_out out;
    char words[4096] = "";
    json_t *body;
    sl_echo *e = sl_seller_echo(fx.s);
    uint64_t cancels = sl_echo_cancellations(e);
    snap before = take_snap(), after;
    (void)state;

    for (int i = 0; i < 400; i++)
        memcpy(words + 2 * i, " w", 3);
    body = json_pack("{s:s,s:[{s:s,s:s}],s:b,s:i}", "model", "echo-1", "messages", "role", "user",
                     "content", words, "stream", 1, "max_tokens", 1000);
    out.stop_after = 5;
    tb_call(&fx.b, &out, "openai.chat", "echo", body);
    out.stop_after = 0;
    if (out.rc == OS_OK) /* we hung up, so the call cannot complete */
        fail_msg("the call completed: status %ld, %llu events", out.res.http_status,
                 (unsigned long long)out.res.events);
    for (int i = 0; i < 50 && sl_echo_cancellations(e) == cancels; i++)
        rc_sleep_ms(100);
    assert_true(sl_echo_cancellations(e) == cancels + 1);
    for (int i = 0; i < 50; i++) { /* the job books the request as it ends */
        after = take_snap();
        if (after.requests == before.requests + 1 && after.consumed > before.consumed)
            break;
        rc_sleep_ms(100);
    }
    assert_true(after.consumed > before.consumed);
    /* fewer than 1000 tokens were produced: far below the estimate */
    assert_true(after.consumed - before.consumed < out.estimate / 2);
    os_infer_result_free(&out.res);

    /* the buyer did not see the final chunk: its next voucher is short, and the 402 says by how
     * much; signing for the seller's figure then works */
    json_t *small = chat("after leaving", false);
    tb_call(&fx.b, &out, "openai.chat", "echo", small);
    if (out.res.http_status != 402)
        fail_msg("want 402, got %ld (rc %d)", out.res.http_status, out.rc);
    assert_true(out.res.has_requirement);
    assert_true(out.res.requirement.consumed == after.consumed);
    fx.b.consumed = out.res.requirement.consumed;
    os_infer_result_free(&out.res);
    tb_call(&fx.b, &out, "openai.chat", "echo", small);
    assert_int_equal(out.rc, OS_OK);
    assert_int_equal(out.res.final.status, 200);
    os_infer_result_free(&out.res);
    json_decref(small);
    json_decref(body);
}

static void test_settlement(void **state)
{
    static tb_out out;
    json_t *body = chat("settle me please", false), *rep, *arr, *ch;
    uint64_t bal0 = devchain_balance(&fx.d, fx.seller_a), paid = 0, consumed;
    uint64_t last_estimate = 0, last_cost = 0;
    os_channel_state cs;
    os_chain_error err;
    long st = 0;
    char hex[67], req[128];
    (void)state;

    for (int i = 0; i < 10; i++) {
        tb_call(&fx.b, &out, "openai.chat", "echo", body);
        if (out.rc != OS_OK || out.res.final.status != 200)
            fail_msg("call %d: rc %d, HTTP %ld, %s: %s", i, out.rc, out.res.http_status,
                     out.res.error_code, out.res.error_message);
        last_estimate = out.estimate;
        last_cost = out.res.final.cost;
        os_infer_result_free(&out.res);
    }
    consumed = take_snap().consumed;
    assert_int_equal(os_hex_encode(hex, sizeof(hex), fx.b.channel_id, 32, 1), OS_OK);
    snprintf(req, sizeof(req), "{\"channel_id\":\"%s\"}", hex);
    json_t *rb = json_loads(req, 0, NULL);
    rep = admin("POST", "/admin/v1/settle", rb, &st);
    json_decref(rb);
    assert_int_equal(st, 200);
    arr = json_object_get(rep, "settlements");
    assert_true(json_array_size(arr) >= 1);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        uint64_t a = 0;
        ch = json_array_get(arr, i);
        assert_string_equal(json_string_value(json_object_get(ch, "status")), "confirmed");
        assert_int_equal(os_money_parse_json(&a, json_object_get(ch, "amount")), OS_OK);
        assert_true(strlen(json_string_value(json_object_get(ch, "tx_hash"))) == 66);
        assert_true(json_integer_value(json_object_get(ch, "gas_used")) > 0);
        paid += a;
    }
    json_decref(rep);
    /* the USDC moved is exactly what the claims paid, which is what the chain says is claimed */
    assert_true(devchain_balance(&fx.d, fx.seller_a) == bal0 + paid);
    assert_int_equal(os_escrow_get_channel(fx.d.ch, &cs, &err, fx.d.escrow, fx.b.channel_id),
                     OS_OK);
    assert_true(cs.claimed == paid);
    /* exactly what was consumed plus the last request's slack (its estimate minus its cost):
     * the last voucher, the only one above consumed that may be redeemed */
    if (paid != consumed + (last_estimate - last_cost))
        fail_msg("claimed %llu, consumed %llu, last slack %llu", (unsigned long long)paid,
                 (unsigned long long)consumed, (unsigned long long)(last_estimate - last_cost));
    json_decref(body);
}

/* A request that cost nothing (the upstream failed) leaves a voucher above consumed; settling
 * again must not redeem it: the buyer was told it cost 0. */
static void test_no_claim_for_failed_request(void **state)
{
    static tb_out out;
    json_t *body = chat("this one fails", false), *rep, *rb;
    os_channel_state before, after;
    os_chain_error err;
    char hex[67], req[128];
    long st = 0;
    (void)state;

    assert_int_equal(os_escrow_get_channel(fx.d.ch, &before, &err, fx.d.escrow, fx.b.channel_id),
                     OS_OK);
    sl_echo_set_fail(sl_seller_echo(fx.s), SL_ECHO_FAIL_500);
    tb_call(&fx.b, &out, "openai.chat", "echo", body);
    sl_echo_set_fail(sl_seller_echo(fx.s), SL_ECHO_FAIL_NONE);
    assert_int_equal(out.res.final.status, 500);
    assert_true(out.res.final.cost == 0);
    os_infer_result_free(&out.res);
    assert_int_equal(os_hex_encode(hex, sizeof(hex), fx.b.channel_id, 32, 1), OS_OK);
    snprintf(req, sizeof(req), "{\"channel_id\":\"%s\"}", hex);
    rb = json_loads(req, 0, NULL);
    rep = admin("POST", "/admin/v1/settle", rb, &st);
    json_decref(rb);
    assert_int_equal(st, 200);
    json_t *arr = json_object_get(rep, "settlements");
    for (size_t i = 0; i < json_array_size(arr); i++)
        assert_string_not_equal(
            json_string_value(json_object_get(json_array_get(arr, i), "status")), "confirmed");
    json_decref(rep);
    assert_int_equal(os_escrow_get_channel(fx.d.ch, &after, &err, fx.d.escrow, fx.b.channel_id),
                     OS_OK);
    assert_true(after.claimed == before.claimed);
    json_decref(body);
}

static void test_health_metrics_admin_auth(void **state)
{
    char url[160];
    os_http_client_res res;
    os_http_client_req req;
    json_t *h = NULL;
    long st = 0;
    (void)state;

    snprintf(url, sizeof(url), "%s/healthz", fx.base);
    assert_int_equal(os_http_client_json(fx.b.http, &st, &h, NULL, "GET", url, NULL, NULL, 0),
                     OS_OK);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
    assert_true(json_integer_value(json_object_get(json_object_get(h, "channels"), "known")) >= 1);
    assert_true(json_integer_value(json_object_get(json_object_get(h, "registries"),
                                                   "registered")) == 1);
    json_decref(h);

    /* metrics count what the earlier tests did */
    snprintf(url, sizeof(url), "%s/metrics", fx.base);
    memset(&req, 0, sizeof(req));
    req.url = url;
    os_http_client_res_init(&res);
    assert_int_equal(os_http_client_do(fx.b.http, &res, NULL, &req), OS_OK);
    assert_int_equal(res.status, 200);
    assert_int_equal(os_buf_append(&res.body, "", 1), OS_OK);
    const char *text = (const char *)res.body.data;
    assert_non_null(strstr(text, "openseed_seller_requests_total{outcome=\"ok\"} "));
    assert_null(strstr(text, "openseed_seller_requests_total{outcome=\"ok\"} 0\n"));
    assert_null(strstr(text, "openseed_seller_revenue_micro_usdc_total 0\n"));
    assert_non_null(strstr(text, "openseed_seller_refusals_total{reason=\"credential\"}"));
    assert_non_null(strstr(text, "openseed_seller_upstream_seconds_bucket"));
    assert_non_null(strstr(text, "openseed_seller_active_streams 0"));
    os_http_client_res_free(&res);

    /* the admin API wants its token */
    char saved[128];
    snprintf(saved, sizeof(saved), "%s", fx.token);
    snprintf(fx.token, sizeof(fx.token), "not-the-token");
    h = admin("GET", "/admin/v1/revenue", NULL, &st);
    assert_int_equal(st, 401);
    json_decref(h);
    snprintf(fx.token, sizeof(fx.token), "%s", saved);
    h = admin("GET", "/admin/v1/revenue", NULL, &st);
    assert_int_equal(st, 200);
    assert_non_null(json_object_get(h, "consumed"));
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_and_registry),
        cmocka_unit_test(test_one_seller_per_data_dir),
        cmocka_unit_test(test_paid_chat),
        cmocka_unit_test(test_stream_chat),
        cmocka_unit_test(test_anthropic_and_embeddings),
        cmocka_unit_test(test_402_invoice),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_upstream_failures),
        cmocka_unit_test(test_client_leaves_mid_stream),
        cmocka_unit_test(test_settlement),
        cmocka_unit_test(test_no_claim_for_failed_request),
        cmocka_unit_test(test_health_metrics_admin_auth),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
