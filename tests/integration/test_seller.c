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
 *     which is the consumed total plus at most the last voucher's slack;
 *   - the dashboard's views: the revenue series (alignment, zero-filled buckets, every bucket equal
 *     to what /admin/v1/requests says finished in it), per-service totals and latency percentiles
 *     recomputed from the requests, both also over a ledger filled by hand (the newest-1000
 *     window, null percentiles, the schema migration that adds their indexes), and the status:
 *     registered at the fixture's registry, failing with a reason at a closed port whose URL's
 *     user info never shows, empty without a registry; every new route refused without the token.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "registry_client.h"
#include "test_buyer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <time.h>

#include "openseed/http.h"
#include "openseed/init.h"
#include "openseed/keyfile.h"

#include "announce.h"
#include "ledger.h"
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

/* ---- the dashboard's views ---- */

/* GET base+path with token (NULL: no Authorization header); the parsed JSON (caller's) or NULL. */
static json_t *admin_get_at(const char *base, const char *token, const char *path, long *status)
{
    char url[256], auth[160];
    os_http_header h = {"Authorization", auth};
    json_t *out = NULL;
    os_http_client_error herr;

    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(auth, sizeof(auth), "Bearer %s", token != NULL ? token : "");
    *status = 0;
    if (os_http_client_json(fx.b.http, status, &out, &herr, "GET", url, NULL, &h,
                            token != NULL ? 1 : 0) != OS_OK)
        fail_msg("GET %s: %s", url, herr.message);
    return out;
}

static uint64_t money_of(const json_t *v)
{
    uint64_t m = 0;
    if (os_money_parse_json(&m, v) != OS_OK)
        fail_msg("not a money string");
    return m;
}

static uint64_t count_of(const json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        fail_msg("not a count");
    return (uint64_t)json_integer_value(v);
}

/* Every request the seller booked (fewer than the view's 1000 in this test), newest first. */
static json_t *all_requests(void)
{
    long st = 0;
    json_t *j = admin("GET", "/admin/v1/requests?limit=1000", NULL, &st);
    assert_int_equal(st, 200);
    assert_true(json_array_size(json_object_get(j, "requests")) < 1000);
    return j;
}

/* A few paid calls, so that the views have something recent. */
static void paid_calls(int n)
{
    static tb_out out;
    json_t *body = chat("dashboard numbers", false);
    for (int i = 0; i < n; i++) {
        tb_call(&fx.b, &out, "openai.chat", "echo", body);
        if (out.rc != OS_OK || out.res.final.status != 200)
            fail_msg("call %d: rc %d, HTTP %ld", i, out.rc, out.res.http_status);
        os_infer_result_free(&out.res);
    }
    json_decref(body);
}

typedef struct tot {
    uint64_t revenue, requests, input, cached, output, errors;
} tot;

/*
 * GET /admin/v1/revenue/series?step=&points= and checks its shape (aligned, contiguous buckets,
 * the last one holding now) and that each bucket holds exactly the finished requests of
 * /admin/v1/requests whose finished_at falls in it. *sum gets the totals over the buckets, *zero
 * how many buckets are empty.
 */
static void check_series(uint64_t step, unsigned points, tot *sum, unsigned *zero)
{
    char path[96];
    long st = 0;
    json_t *reqs = all_requests(), *j, *arr, *r;
    int64_t before, after, from, to;
    tot *want = calloc(points, sizeof(*want));
    size_t i;

    assert_non_null(want);
    memset(sum, 0, sizeof(*sum));
    *zero = 0;
    snprintf(path, sizeof(path), "/admin/v1/revenue/series?step=%llu&points=%u",
             (unsigned long long)step, points);
    before = (int64_t)time(NULL);
    j = admin("GET", path, NULL, &st);
    after = (int64_t)time(NULL);
    assert_int_equal(st, 200);
    assert_true(count_of(json_object_get(j, "step")) == step);
    arr = json_object_get(j, "points");
    assert_int_equal(json_array_size(arr), points);
    assert_true(json_is_integer(json_object_get(j, "from")));
    from = json_integer_value(json_object_get(j, "from"));
    to = json_integer_value(json_object_get(j, "to"));
    assert_true(to == from + (int64_t)points * (int64_t)step);
    assert_true(from % (int64_t)step == 0);
    /* the last bucket holds now: it starts at or before the call's end, ends after its start */
    assert_true(to - (int64_t)step <= after);
    assert_true(to > before);

    json_array_foreach(json_object_get(reqs, "requests"), i, r)
    {
        const json_t *fa = json_object_get(r, "finished_at");
        int64_t f;
        if (json_is_null(fa))
            continue;
        f = json_integer_value(fa);
        if (f < from || f >= to)
            continue;
        tot *w = &want[(f - from) / (int64_t)step];
        w->revenue += money_of(json_object_get(r, "cost"));
        w->requests++;
        w->input += count_of(json_object_get(r, "input_tokens"));
        w->output += count_of(json_object_get(r, "output_tokens"));
    }
    json_array_foreach(arr, i, r)
    {
        tot got = {0};
        assert_int_equal(json_object_size(r), 5);
        assert_true(json_integer_value(json_object_get(r, "t")) ==
                    from + (int64_t)i * (int64_t)step);
        got.revenue = money_of(json_object_get(r, "revenue"));
        got.requests = count_of(json_object_get(r, "requests"));
        got.input = count_of(json_object_get(r, "input_tokens"));
        got.output = count_of(json_object_get(r, "output_tokens"));
        if (got.revenue != want[i].revenue || got.requests != want[i].requests ||
            got.input != want[i].input || got.output != want[i].output)
            fail_msg("step %llu bucket %zu: got %llu requests, want %llu", (unsigned long long)step,
                     i, (unsigned long long)got.requests, (unsigned long long)want[i].requests);
        if (got.requests == 0) {
            assert_string_equal(json_string_value(json_object_get(r, "revenue")), "0");
            (*zero)++;
        }
        sum->revenue += got.revenue;
        sum->requests += got.requests;
        sum->input += got.input;
        sum->output += got.output;
    }
    free(want);
    json_decref(j);
    json_decref(reqs);
}

/* Totals over every finished request of /admin/v1/requests of one service. */
static tot request_totals(const json_t *reqs, const char *service)
{
    tot t = {0};
    const json_t *r;
    size_t i;

    json_array_foreach(json_object_get(reqs, "requests"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "status")), "finished") != 0 ||
            (service != NULL &&
             strcmp(json_string_value(json_object_get(r, "service")), service) != 0))
            continue;
        t.requests++;
        if (strcmp(json_string_value(json_object_get(r, "outcome")), "ok") != 0)
            t.errors++;
        t.revenue += money_of(json_object_get(r, "cost"));
        t.input += count_of(json_object_get(r, "input_tokens"));
        t.cached += count_of(json_object_get(r, "cached_tokens"));
        t.output += count_of(json_object_get(r, "output_tokens"));
    }
    return t;
}

static void test_admin_series(void **state)
{
    static const char *const bad[][2] = {
        {"step=0", "invalid_step"},
        {"step=2592001", "invalid_step"},
        {"step=-1", "invalid_step"},
        {"step=+5", "invalid_step"},
        {"step=%205", "invalid_step"},
        {"step=1e3", "invalid_step"},
        {"step=60x", "invalid_step"},
        {"step=", "invalid_step"},
        {"step=99999999999999999999999", "invalid_step"},
        {"points=0", "invalid_points"},
        {"points=1001", "invalid_points"},
        {"points=0x10", "invalid_points"},
        {"step=60&points=-5", "invalid_points"},
    };
    tot all, recent, total;
    unsigned zero;
    long st = 0;
    json_t *j, *reqs;
    char path[128];
    (void)state;

    paid_calls(3);
    reqs = all_requests();
    total = request_totals(reqs, NULL);
    json_decref(reqs);
    assert_true(total.requests >= 3 && total.revenue > 0);

    /* the defaults: 60 buckets of a minute; everything in this test finished within the hour */
    j = admin("GET", "/admin/v1/revenue/series", NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "step")), 60);
    assert_int_equal(json_array_size(json_object_get(j, "points")), 60);
    json_decref(j);
    check_series(60, 60, &recent, &zero);
    assert_true(recent.requests >= 3);
    /* 30-day buckets reach back past 1970: every finished request, so the sum of the buckets is
     * the sum of the requests' costs */
    check_series(2592000, 1000, &all, &zero);
    assert_true(all.revenue == total.revenue);
    assert_true(all.requests == total.requests);
    assert_true(all.input == total.input && all.output == total.output);
    /* an odd step: still aligned on multiples of 7 s (checked inside) */
    check_series(7, 1000, &recent, &zero);
    /* one-second buckets: the seconds without a request are there, zero */
    check_series(1, 1000, &recent, &zero);
    assert_true(zero > 0 && zero < 1000);
    check_series(1, 1, &recent, &zero);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "/admin/v1/revenue/series?%s", bad[i][0]);
        j = admin("GET", path, NULL, &st);
        if (st != 400)
            fail_msg("%s: HTTP %ld, want 400", bad[i][0], st);
        json_t *e = json_object_get(j, "error");
        assert_string_equal(json_string_value(json_object_get(e, "code")), bad[i][1]);
        assert_string_equal(json_string_value(json_object_get(e, "type")), "invalid_request_error");
        json_decref(j);
    }
}

/* Nearest-rank percentile p of the n sorted values. */
static uint64_t nearest_rank(const uint64_t *v, size_t n, unsigned p)
{
    size_t rank = (p * n + 99) / 100;
    return v[rank == 0 ? 0 : rank - 1];
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_admin_models(void **state)
{
    uint64_t lat[1000], ttft[1000];
    size_t k = 0, i;
    long st = 0;
    json_t *reqs, *j, *m, *r;
    tot want;
    (void)state;

    /* one upstream failure, so that errors are counted and kept out of the percentiles */
    {
        static tb_out out;
        json_t *body = chat("a failing one", false);
        sl_echo_set_fail(sl_seller_echo(fx.s), SL_ECHO_FAIL_500);
        tb_call(&fx.b, &out, "openai.chat", "echo", body);
        sl_echo_set_fail(sl_seller_echo(fx.s), SL_ECHO_FAIL_NONE);
        assert_int_equal(out.res.final.status, 500);
        os_infer_result_free(&out.res);
        json_decref(body);
    }
    reqs = all_requests();
    want = request_totals(reqs, "echo");
    json_array_foreach(json_object_get(reqs, "requests"), i, r)
    {
        if (json_is_null(json_object_get(r, "finished_at")) ||
            strcmp(json_string_value(json_object_get(r, "outcome")), "ok") != 0)
            continue;
        lat[k] = count_of(json_object_get(r, "latency_ms"));
        ttft[k] = count_of(json_object_get(r, "ttft_ms"));
        k++;
    }
    qsort(lat, k, sizeof(lat[0]), cmp_u64);
    qsort(ttft, k, sizeof(ttft[0]), cmp_u64);
    json_decref(reqs);
    assert_true(want.errors >= 1 && k >= 3);

    j = admin("GET", "/admin/v1/models", NULL, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "models")), 1); /* one service: echo */
    m = json_array_get(json_object_get(j, "models"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "service")), "echo");
    assert_true(count_of(json_object_get(m, "requests")) == want.requests);
    assert_true(count_of(json_object_get(m, "errors")) == want.errors);
    assert_true(count_of(json_object_get(m, "input_tokens")) == want.input);
    assert_true(count_of(json_object_get(m, "cached_tokens")) == want.cached);
    assert_true(count_of(json_object_get(m, "output_tokens")) == want.output);
    assert_true(money_of(json_object_get(m, "revenue")) == want.revenue);
    assert_true(count_of(json_object_get(m, "latency_window")) == k);
    json_t *l = json_object_get(m, "latency_ms"), *t = json_object_get(m, "ttft_ms");
    uint64_t p50 = count_of(json_object_get(l, "p50")), p95 = count_of(json_object_get(l, "p95"));
    uint64_t max = count_of(json_object_get(l, "max"));
    assert_true(p50 <= p95 && p95 <= max);
    assert_true(p50 == nearest_rank(lat, k, 50));
    assert_true(p95 == nearest_rank(lat, k, 95));
    assert_true(max == lat[k - 1]);
    assert_int_equal(json_object_size(t), 2);
    assert_true(count_of(json_object_get(t, "p50")) == nearest_rank(ttft, k, 50));
    assert_true(count_of(json_object_get(t, "p95")) == nearest_rank(ttft, k, 95));
    /* the first byte comes no later than the last */
    assert_true(count_of(json_object_get(t, "p50")) <= p50);
    json_decref(j);
}

/* ---- the views over a ledger filled by hand ---- */

typedef struct hand {
    sl_ledger *l;
    uint8_t ch[32];
    uint64_t nonce;
} hand;

/* Books one request of service that ends with outcome, latency and cost. */
static void hand_request(hand *h, const char *service, const char *outcome, uint64_t latency,
                         uint64_t ttft, uint64_t cost, bool finish)
{
    os_voucher v;
    sl_request_end e;
    uint64_t id = 0;

    memset(&v, 0, sizeof(v));
    memcpy(v.channel_id, h->ch, 32);
    v.nonce = ++h->nonce;
    v.cumulative_amount = h->nonce * 1000;
    v.metadata_hash[0] = (uint8_t)h->nonce;
    assert_int_equal(sl_ledger_accept(h->l, &id, &v, "openai.chat", service, 1000), OS_OK);
    if (!finish)
        return;
    memset(&e, 0, sizeof(e));
    e.usage.input_tokens = 10;
    e.usage.cached_tokens = 2;
    e.usage.output_tokens = cost != 0 ? 5 : 0;
    e.cost = cost;
    e.latency_ms = latency;
    e.ttft_ms = ttft;
    e.upstream_status = strcmp(outcome, "ok") == 0 ? 200 : 500;
    e.outcome = outcome;
    assert_int_equal(sl_ledger_finish(h->l, NULL, id, &e), OS_OK);
}

static const json_t *model_of(const json_t *j, const char *service)
{
    const json_t *m;
    size_t i;
    json_array_foreach(json_object_get(j, "models"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "service")), service) == 0)
            return m;
    }
    return NULL;
}

static void hand_open(hand *h, const char *path)
{
    char err[256];
    if (sl_ledger_open(&h->l, path, err, sizeof(err)) != OS_OK)
        fail_msg("sl_ledger_open: %s", err);
}

static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == 0 &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_ledger_views_by_hand(void **state)
{
    hand h;
    os_channel_state cs;
    char path[256];
    json_t *j, *again, *series;
    const json_t *m;
    uint64_t revenue = 0, requests = 0;
    int64_t now_s = (int64_t)time(NULL);
    (void)state;

    memset(&h, 0, sizeof(h));
    memset(&cs, 0, sizeof(cs));
    memset(h.ch, 0xab, 32);
    cs.deposit = 1000000000;
    snprintf(path, sizeof(path), "%s/views.db", fx.dir);
    hand_open(&h, path);
    assert_int_equal(sl_ledger_channel_put_chain(h.l, h.ch, &cs, 1), OS_OK);

    /* alpha: latencies 1..100 ms, ttft half of each, and three failures far slower */
    for (uint64_t i = 1; i <= 100; i++) {
        hand_request(&h, "alpha", "ok", i, i / 2, i, true);
        revenue += i;
    }
    for (int i = 0; i < 3; i++)
        hand_request(&h, "alpha", "upstream_error", 900000, 0, 0, true);
    /* beta: only failures; gamma: 1005 successes whose 5 oldest are slow; delta: pending */
    for (int i = 0; i < 4; i++)
        hand_request(&h, "beta", "upstream_error", 50, 0, 0, true);
    hand_request(&h, "beta", "cancelled", 60, 10, 7, true);
    revenue += 7;
    for (int i = 0; i < 1005; i++) {
        hand_request(&h, "gamma", "ok", i < 5 ? 1000000 : 7, 3, 1, true);
        revenue += 1;
    }
    hand_request(&h, "delta", "ok", 0, 0, 0, false);
    /* epsilon: seven values, where the nearest rank differs from a rounded-down index */
    for (uint64_t i = 7; i >= 1; i--)
        hand_request(&h, "epsilon", "ok", 10 * i, i, 0, true);
    requests = 100 + 3 + 5 + 1005 + 7;

    assert_non_null(j = sl_ledger_models_json(h.l));
    assert_int_equal(json_array_size(json_object_get(j, "models")), 4); /* delta is not finished */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "models"), 0), "service")),
                        "alpha"); /* sorted */
    assert_non_null(m = model_of(j, "alpha"));
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 103);
    assert_int_equal(json_integer_value(json_object_get(m, "errors")), 3);
    assert_int_equal(json_integer_value(json_object_get(m, "input_tokens")), 1030);
    assert_int_equal(json_integer_value(json_object_get(m, "cached_tokens")), 206);
    assert_int_equal(json_integer_value(json_object_get(m, "output_tokens")), 500);
    assert_string_equal(json_string_value(json_object_get(m, "revenue")), "5050");
    assert_int_equal(json_integer_value(json_object_get(m, "latency_window")), 100);
    /* nearest rank over 1..100: p50 is the 50th value, p95 the 95th; ttft (i/2) 25 and 47 */
    const json_t *l = json_object_get(m, "latency_ms"), *t = json_object_get(m, "ttft_ms");
    assert_int_equal(json_integer_value(json_object_get(l, "p50")), 50);
    assert_int_equal(json_integer_value(json_object_get(l, "p95")), 95);
    assert_int_equal(json_integer_value(json_object_get(l, "max")), 100);
    assert_int_equal(json_integer_value(json_object_get(t, "p50")), 25);
    assert_int_equal(json_integer_value(json_object_get(t, "p95")), 47);
    assert_non_null(m = model_of(j, "beta"));
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 5);
    assert_int_equal(json_integer_value(json_object_get(m, "errors")), 5);
    assert_string_equal(json_string_value(json_object_get(m, "revenue")), "7");
    assert_true(json_is_null(json_object_get(m, "latency_ms")));
    assert_true(json_is_null(json_object_get(m, "ttft_ms")));
    assert_int_equal(json_integer_value(json_object_get(m, "latency_window")), 0);
    /* the window: the newest 1000 successes, so none of the five slow first ones */
    assert_non_null(m = model_of(j, "gamma"));
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 1005);
    assert_int_equal(json_integer_value(json_object_get(m, "latency_window")), 1000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "latency_ms"), "max")),
                     7);

    /* ranks ceil(3.5) = 4 and ceil(6.65) = 7 of 10, 20, ..., 70 */
    assert_non_null(m = model_of(j, "epsilon"));
    l = json_object_get(m, "latency_ms");
    t = json_object_get(m, "ttft_ms");
    assert_int_equal(json_integer_value(json_object_get(l, "p50")), 40);
    assert_int_equal(json_integer_value(json_object_get(l, "p95")), 70);
    assert_int_equal(json_integer_value(json_object_get(l, "max")), 70);
    assert_int_equal(json_integer_value(json_object_get(t, "p50")), 4);
    assert_int_equal(json_integer_value(json_object_get(t, "p95")), 7);
    assert_int_equal(json_integer_value(json_object_get(m, "errors")), 0);

    /* one bucket of 30 days holding now: every finished request; delta is not */
    assert_non_null(series = sl_ledger_series_json(h.l, now_s + 1, 2592000, 1));
    json_t *b = json_array_get(json_object_get(series, "points"), 0);
    assert_true(count_of(json_object_get(b, "requests")) == requests);
    assert_true(money_of(json_object_get(b, "revenue")) == revenue);
    assert_true(count_of(json_object_get(b, "input_tokens")) == requests * 10);
    json_decref(series);
    /* now far in the past: nothing finished in the window, every bucket zero */
    assert_non_null(series = sl_ledger_series_json(h.l, 86400 * 365, 3600, 24));
    json_t *p;
    size_t i;
    json_array_foreach(json_object_get(series, "points"), i, p)
    {
        assert_int_equal(json_integer_value(json_object_get(p, "requests")), 0);
        assert_string_equal(json_string_value(json_object_get(p, "revenue")), "0");
    }
    assert_int_equal(json_integer_value(json_object_get(series, "to")), 86400 * 365 + 3600);
    json_decref(series);
    /* arguments out of range */
    assert_null(sl_ledger_series_json(h.l, now_s, 0, 10));
    assert_null(sl_ledger_series_json(h.l, now_s, SL_SERIES_STEP_MAX + 1, 10));
    assert_null(sl_ledger_series_json(h.l, now_s, 60, 0));
    assert_null(sl_ledger_series_json(h.l, now_s, 60, SL_SERIES_POINTS_MAX + 1));
    assert_null(sl_ledger_series_json(h.l, -1, 60, 10));
    assert_null(sl_ledger_series_json(NULL, now_s, 60, 10));
    assert_null(sl_ledger_models_json(NULL));

    /* A seller.db from before the indexes (schema version 1): the views need them (INDEXED BY),
     * so they fail on it as it is, and reopening migrates it to version 2 with both back. */
    sl_ledger_close(h.l);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 2);
    assert_int_equal(raw_exec(path, "DROP INDEX requests_by_finished;"
                                    "DROP INDEX requests_ok_by_service;"
                                    "PRAGMA user_version = 1;"),
                     SQLITE_OK);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                   " ('requests_by_finished', 'requests_ok_by_service')"),
                     0);
    hand_open(&h, path);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 2);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                   " ('requests_by_finished', 'requests_ok_by_service')"),
                     2);
    assert_non_null(again = sl_ledger_models_json(h.l));
    /* the reopening finished delta's pending request as interrupted: an error, no latency */
    assert_int_equal(json_array_size(json_object_get(again, "models")), 5);
    assert_non_null(m = model_of(again, "delta"));
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 1);
    assert_int_equal(json_integer_value(json_object_get(m, "errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(m, "latency_window")), 0);
    assert_true(json_array_get(json_object_get(again, "models"), 2) == m); /* sorted */
    assert_int_equal(json_array_remove(json_object_get(again, "models"), 2), 0);
    assert_true(json_equal(j, again)); /* and the rest as it was */
    json_decref(again);
    json_decref(j);
    sl_ledger_close(h.l);

    /* An in-memory ledger: the views share the writer's connection. */
    assert_int_equal(sl_ledger_open(&h.l, ":memory:", NULL, 0), OS_OK);
    assert_non_null(j = sl_ledger_models_json(h.l));
    assert_int_equal(json_array_size(json_object_get(j, "models")), 0);
    json_decref(j);
    assert_non_null(j = sl_ledger_series_json(h.l, now_s, 60, 5));
    assert_int_equal(json_array_size(json_object_get(j, "points")), 5);
    json_decref(j);
    sl_ledger_close(h.l);
}

static void test_url_without_userinfo(void **state)
{
    static const char *const cases[][2] = {
        {"http://127.0.0.1:8379", "http://127.0.0.1:8379"},
        {"http://user:pw@127.0.0.1:8379", "http://127.0.0.1:8379"},
        {"https://a:b@c@reg.example/x/y", "https://reg.example/x/y"}, /* the last '@' counts */
        {"http://reg.example/path@not-userinfo", "http://reg.example/path@not-userinfo"},
        {"http://reg.example?q=a@b", "http://reg.example?q=a@b"},
        {"user@host:1", "host:1"},
        {"", ""},
    };
    char out[64];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(os_url_without_userinfo(out, sizeof(out), cases[i][0]), OS_OK);
        assert_string_equal(out, cases[i][1]);
    }
    assert_int_equal(os_url_without_userinfo(out, 8, "http://u:p@longer.example"), OS_ERR_TOOBIG);
    assert_true(strlen(out) == 7 && strchr(out, '@') == NULL);
    assert_int_equal(os_url_without_userinfo(out, sizeof(out), NULL), OS_ERR_INVALID);
    assert_int_equal(os_url_without_userinfo(NULL, 0, "http://x"), OS_ERR_INVALID);
}

/* The status's fields every seller has; its registries array is returned (borrowed from j). */
static json_t *check_status_common(const json_t *j, const uint8_t node[20], const char *endpoint,
                                   int64_t not_before)
{
    char addr[OS_ADDRESS_STR_LEN];
    int64_t now = (int64_t)time(NULL), started;

    os_eip55_format(addr, node);
    assert_string_equal(json_string_value(json_object_get(j, "node")), addr);
    assert_string_equal(json_string_value(json_object_get(j, "seller")), addr);
    assert_string_equal(json_string_value(json_object_get(j, "endpoint")), endpoint);
    started = json_integer_value(json_object_get(j, "started_at"));
    assert_true(started >= not_before && started <= now);
    assert_true(json_is_integer(json_object_get(j, "uptime_s")));
    assert_true(json_integer_value(json_object_get(j, "uptime_s")) <= now - started + 1);
    static const char *const counts[] = {"announces_ok", "announces_failed", "heartbeats_ok",
                                         "heartbeats_failed", "reannounces"};
    for (size_t i = 0; i < 5; i++)
        assert_true(json_is_integer(json_object_get(j, counts[i])));
    assert_true(json_is_array(json_object_get(j, "registries")));
    return json_object_get(j, "registries");
}

static void test_admin_status_registered(void **state)
{
    long st = 0;
    json_t *j = NULL, *regs, *r;
    int64_t now;
    (void)state;

    /* a heartbeat a second (the fixture's registry asks for 1 s): wait for one to be accepted */
    for (int i = 0; i < 50; i++) {
        json_decref(j);
        j = admin("GET", "/admin/v1/status", NULL, &st);
        assert_int_equal(st, 200);
        if (json_integer_value(json_object_get(j, "heartbeats_ok")) >= 1)
            break;
        rc_sleep_ms(100);
    }
    now = (int64_t)time(NULL);
    regs = check_status_common(j, fx.seller_a, fx.base, now - 3600);
    assert_true(json_integer_value(json_object_get(j, "uptime_s")) >= 1);
    assert_true(json_integer_value(json_object_get(j, "announces_ok")) >= 1);
    assert_true(json_integer_value(json_object_get(j, "heartbeats_ok")) >= 1);
    assert_int_equal(json_array_size(regs), 1);
    r = json_array_get(regs, 0);
    assert_int_equal(json_object_size(r), 9);
    assert_string_equal(json_string_value(json_object_get(r, "url")), fx.reg_url);
    assert_true(json_is_true(json_object_get(r, "registered")));
    assert_true(json_is_integer(json_object_get(r, "last_ok_at")));
    assert_true(json_integer_value(json_object_get(r, "last_ok_at")) <= now);
    assert_true(json_integer_value(json_object_get(r, "last_ok_at")) >=
                json_integer_value(json_object_get(j, "started_at")));
    assert_true(json_integer_value(json_object_get(r, "last_attempt_at")) >=
                json_integer_value(json_object_get(r, "last_ok_at")));
    const char *op = json_string_value(json_object_get(r, "last_op"));
    assert_non_null(op);
    assert_true(strcmp(op, "announce") == 0 || strcmp(op, "heartbeat") == 0);
    assert_int_equal(json_integer_value(json_object_get(r, "failures")), 0);
    assert_true(json_is_null(json_object_get(r, "last_error")));
    assert_int_equal(json_integer_value(json_object_get(r, "heartbeat_interval_s")), 1);
    assert_true(json_integer_value(json_object_get(r, "next_in_s")) <= 1);
    json_decref(j);
}

/* Another seller on its own data directory; its admin base URL and token. */
static sl_seller *extra_seller(const char *sub, const char *const *regs, size_t n,
                               const char *endpoint, char admin_base[64], char token[128])
{
    char path[256], why[WHY];
    sl_options so;
    sl_seller *s = NULL;

    sl_options_default(&so);
    snprintf(path, sizeof(path), "%s/%s", fx.dir, sub);
    so.listen = "127.0.0.1:0";
    so.admin_listen = "127.0.0.1:0";
    so.data_dir = path;
    so.registries = regs;
    so.n_registries = n;
    so.endpoint = endpoint;
    so.rpc = fx.d.anvil.url;
    so.chain_id = CHAIN;
    memcpy(so.escrow, fx.d.escrow, 20);
    memcpy(so.usdc, fx.d.usdc, 20);
    so.upstream = "builtin:echo";
    so.settle_threshold = 1000 * OS_USDC_UNIT;
    assert_int_equal(sl_seller_new_opts(&s, &so, &fx.log), OS_OK);
    assert_int_equal(sl_seller_start(s), OS_OK);
    snprintf(admin_base, 64, "http://127.0.0.1:%u", (unsigned)sl_seller_admin_port(s));
    snprintf(path, sizeof(path), "%s/%s/admin.token", fx.dir, sub);
    if (os_keyfile_read_text(token, 128, NULL, path, why, sizeof(why)) != OS_OK)
        fail_msg("admin token: %s", why);
    return s;
}

/* A registry that refuses every announcement with a long message: "é" (2 bytes) 150 times after
 * a line break, so the status has to cut it, and cut it between characters. */
static void h_refuse(void *ctx, const os_http_request *req, os_http_response *res)
{
    char msg[512] = "no\nway! "; /* 29 bytes before the first "é" in the status */
    size_t n = strlen(msg);
    (void)ctx;
    (void)req;
    for (int i = 0; i < 150; i++, n += 2)
        memcpy(msg + n, "\xc3\xa9", 3);
    os_http_res_error(res, 400, "invalid_request_error", "bad_record", "%s", msg);
}

static void test_admin_status_failing_and_absent(void **state)
{
    static const os_http_route refuse[] = {{"POST", "/v1/announce", h_refuse, 1}};
    os_http_config hc = {.listen = "127.0.0.1:0", .log = &fx.log};
    os_http_server *refuser = NULL;
    char reg[96], shown[64], reg2[64], base[64], token[128], *text;
    uint8_t node[20];
    long st = 0;
    json_t *j = NULL, *r;
    sl_seller *s;
    int64_t t0 = (int64_t)time(NULL);
    uint16_t port = tu_free_port();
    (void)state;

    assert_int_equal(os_http_server_new(&refuser, &hc, refuse, 1, NULL), OS_OK);
    assert_int_equal(os_http_server_start(refuser), OS_OK);
    snprintf(reg2, sizeof(reg2), "http://127.0.0.1:%u", (unsigned)os_http_server_port(refuser));
    /* a registry URL with credentials in it, at a port where nothing listens */
    snprintf(reg, sizeof(reg), "http://opuser:hunter2secret@127.0.0.1:%u", (unsigned)port);
    snprintf(shown, sizeof(shown), "http://127.0.0.1:%u", (unsigned)port);
    const char *regs[2] = {reg, reg2};
    s = extra_seller("seller-dead-registry", regs, 2, NULL, base, token);
    sl_seller_address(s, node);
    for (int i = 0; i < 100; i++) { /* attempts at 0, then 0.5..1 s, 1..2 s later */
        json_decref(j);
        j = admin_get_at(base, token, "/admin/v1/status", &st);
        assert_int_equal(st, 200);
        r = json_array_get(json_object_get(j, "registries"), 0);
        if (json_integer_value(json_object_get(r, "failures")) >= 2 &&
            json_integer_value(json_object_get(json_array_get(json_object_get(j, "registries"), 1),
                                               "failures")) >= 1)
            break;
        rc_sleep_ms(100);
    }
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", (unsigned)sl_seller_port(s));
    check_status_common(j, node, ep, t0);
    assert_int_equal(json_array_size(json_object_get(j, "registries")), 2);
    r = json_array_get(json_object_get(j, "registries"), 0);
    assert_string_equal(json_string_value(json_object_get(r, "url")), shown);
    assert_true(json_is_false(json_object_get(r, "registered")));
    assert_true(json_is_null(json_object_get(r, "last_ok_at")));
    assert_true(json_integer_value(json_object_get(r, "last_attempt_at")) >= t0);
    assert_string_equal(json_string_value(json_object_get(r, "last_op")), "announce");
    assert_true(json_integer_value(json_object_get(r, "failures")) >= 2);
    const char *err = json_string_value(json_object_get(r, "last_error"));
    assert_non_null(err);
    assert_true(strlen(err) > 0 && strlen(err) <= 200);
    assert_non_null(strstr(err, "Couldn't connect"));
    assert_true(json_integer_value(json_object_get(j, "announces_failed")) >= 3);
    assert_int_equal(json_integer_value(json_object_get(j, "announces_ok")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "heartbeats_ok")), 0);
    /* backing off: the next attempt is in the future, within the 60 s cap */
    assert_true(json_integer_value(json_object_get(r, "next_in_s")) <= 60);
    /* the refusing registry: its status, code and message, the line break made a space, cut
     * to at most 200 bytes on a character boundary (else jansson would not take the string) */
    r = json_array_get(json_object_get(j, "registries"), 1);
    assert_string_equal(json_string_value(json_object_get(r, "url")), reg2);
    assert_true(json_is_false(json_object_get(r, "registered")));
    assert_true(json_integer_value(json_object_get(r, "failures")) >= 1);
    /* a refusal is a configuration problem: retried only at the max backoff */
    assert_true(json_integer_value(json_object_get(r, "next_in_s")) >= 25);
    err = json_string_value(json_object_get(r, "last_error"));
    assert_non_null(err);
    assert_memory_equal(err, "HTTP 400 bad_record: no way! \xc3\xa9", 31);
    assert_int_equal(strlen(err), 199); /* 29 + 85 * 2: the 86th "é" would end at 201 */
    assert_true(((unsigned char)err[strlen(err) - 1]) == 0xa9);
    /* the user info shows nowhere in the answer */
    text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "opuser"));
    free(text);
    json_decref(j);
    sl_seller_free(s);
    os_http_server_free(refuser);

    /* no registry at all: no announcer, so nothing to show and nothing counted */
    s = extra_seller("seller-no-registry", NULL, 0, "http://seller.example:8378/x", base, token);
    sl_seller_address(s, node);
    j = admin_get_at(base, token, "/admin/v1/status", &st);
    assert_int_equal(st, 200);
    check_status_common(j, node, "http://seller.example:8378/x", t0);
    assert_int_equal(json_array_size(json_object_get(j, "registries")), 0);
    static const char *const counts[] = {"announces_ok", "announces_failed", "heartbeats_ok",
                                         "heartbeats_failed", "reannounces"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(json_integer_value(json_object_get(j, counts[i])), 0);
    json_decref(j);
    /* its views over an empty seller.db */
    j = admin_get_at(base, token, "/admin/v1/models", &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "models")), 0);
    json_decref(j);
    j = admin_get_at(base, token, "/admin/v1/revenue/series?step=3600&points=24", &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "points")), 24);
    json_decref(j);
    sl_seller_free(s);
}

static void test_admin_new_routes_need_token(void **state)
{
    static const char *const paths[] = {"/admin/v1/revenue/series", "/admin/v1/models",
                                        "/admin/v1/status", "/admin/v1/revenue/series?step=0"};
    long st = 0;
    json_t *j;
    (void)state;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        j = admin_get_at(fx.admin, NULL, paths[i], &st);
        if (st != 401)
            fail_msg("%s without a token: HTTP %ld", paths[i], st);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                            "invalid_token");
        json_decref(j);
        j = admin_get_at(fx.admin, "not-the-admin-token", paths[i], &st);
        assert_int_equal(st, 401);
        json_decref(j);
        /* a wrong token of the right length */
        char wrong[128];
        snprintf(wrong, sizeof(wrong), "%s", fx.token);
        wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
        j = admin_get_at(fx.admin, wrong, paths[i], &st);
        assert_int_equal(st, 401);
        json_decref(j);
        j = admin_get_at(fx.admin, fx.token, paths[i], &st);
        assert_int_equal(st, i == 3 ? 400 : 200);
        json_decref(j);
    }
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
        cmocka_unit_test(test_admin_series),
        cmocka_unit_test(test_admin_models),
        cmocka_unit_test(test_ledger_views_by_hand),
        cmocka_unit_test(test_url_without_userinfo),
        cmocka_unit_test(test_admin_status_registered),
        cmocka_unit_test(test_admin_status_failing_and_absent),
        cmocka_unit_test(test_admin_new_routes_need_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
