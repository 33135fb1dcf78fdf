/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chain client against a real anvil node (chain id 8453): reads, value transfers with exact
 * balance accounting, 20 concurrent sends from one key that must mine with consecutive nonces,
 * reverts decoded from eth_call and from a failing gas estimate that must leave no nonce gap, a
 * refused send whose nonce is reused, TestUSDC deployment and its Transfer logs, and the failure
 * modes: a dead port and a response over the cap.
 *
 * The reverting contract is hand-assembled; its runtime stores Error("nope") and reverts:
 *   PUSH4 08c379a0 PUSH1 e0 SHL PUSH1 00 MSTORE      selector at 0
 *   PUSH1 20 PUSH1 04 MSTORE                         offset 0x20
 *   PUSH1 04 PUSH1 24 MSTORE                         length 4
 *   PUSH4 "nope" PUSH1 e0 SHL PUSH1 44 MSTORE        the bytes
 *   PUSH1 64 PUSH1 00 REVERT                         100 bytes of Error(string)
 * and its init code copies those 37 (0x25) bytes out: PUSH1 25 DUP1 PUSH1 0b PUSH1 00 CODECOPY
 * PUSH1 00 RETURN. TestUSDC comes from contracts/out/TestUSDC.json.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>

#include "anvil.h"
#include "openseed/abi.h"
#include "openseed/chain.h"
#include "openseed/ct.h"
#include "openseed/secp.h"
#include "openseed/tx.h"

#define CHAIN_ID 8453
#define WAIT_MS 30000
#define N_THREADS 4
#define PER_THREAD 5

static const char reverter_init[] = "602580600b6000396000f3";
static const char reverter_runtime[] = "6308c379a060e01b6000526020600452600460245263"
                                       "6e6f706560e01b60445260646000fd";

static const char *const usdc_errors[] = {
    "ERC20InsufficientBalance(address,uint256,uint256)",
    "ERC20InvalidReceiver(address)",
};

typedef struct fixture {
    anvil_node anvil;
    os_chain *ch;
} fixture;

static fixture fx;

static int setup(void **state)
{
    char why[512];
    os_chain_config cfg;
    (void)state;
    if (os_init() != OS_OK)
        return -1;
    if (anvil_start(&fx.anvil, CHAIN_ID, why, sizeof(why)) != 0) {
        fprintf(stderr, "FAIL: cannot start anvil: %s\n", why);
        return -1;
    }
    os_chain_config_default(&cfg, fx.anvil.url);
    cfg.chain_id = CHAIN_ID;
    cfg.custom_errors = usdc_errors;
    cfg.n_custom_errors = 2;
    return os_chain_new(&fx.ch, &cfg) == OS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    os_chain_free(fx.ch);
    anvil_stop(&fx.anvil);
    return 0;
}

static void key_of(uint8_t priv[32], int i)
{
    tu_unhex(priv, 32, anvil_key(i));
}

static os_chain_signer *signer_for(int i)
{
    uint8_t priv[32];
    os_chain_signer *s;
    os_chain_error err;
    key_of(priv, i);
    if (os_chain_signer_new(&s, fx.ch, &err, priv) != OS_OK)
        fail_msg("signer %d: %s", i, err.message);
    os_wipe(priv, 32);
    return s;
}

static void unhex_buf(os_buf *b, const char *hex)
{
    size_t n = strlen(hex), got;
    char *clean = malloc(n + 1);
    size_t k = 0;
    assert_non_null(clean);
    for (size_t i = 0; i < n; i++)
        if (hex[i] != ' ')
            clean[k++] = hex[i];
    clean[k] = '\0';
    assert_int_equal(os_buf_reserve(b, k / 2), OS_OK);
    assert_int_equal(os_hex_decode(b->data + b->len, k / 2, &got, clean, k), OS_OK);
    b->len += got;
    free(clean);
}

static uint64_t tx_nonce(const uint8_t hash[32])
{
    char hex[OS_HEX_LEN(32)];
    json_t *res;
    uint64_t n;
    os_chain_error err;
    assert_int_equal(os_hex_encode(hex, sizeof(hex), hash, 32, 1), OS_OK);
    if (os_chain_rpc(fx.ch, &res, &err, "eth_getTransactionByHash", json_pack("[s]", hex)) != OS_OK)
        fail_msg("eth_getTransactionByHash: %s", err.message);
    assert_int_equal(os_chain_quantity_u64(&n, json_string_value(json_object_get(res, "nonce"))),
                     OS_OK);
    json_decref(res);
    return n;
}

static uint64_t pending_nonce(const os_chain_signer *s)
{
    uint8_t a[20];
    uint64_t n;
    os_chain_error err;
    os_chain_signer_address(s, a);
    assert_int_equal(os_chain_nonce(fx.ch, &n, &err, a), OS_OK);
    return n;
}

static void deploy_reverter(os_chain_signer *s, uint8_t addr[20])
{
    os_buf code;
    os_chain_error err;
    os_buf_init(&code, 1024);
    unhex_buf(&code, reverter_init);
    unhex_buf(&code, reverter_runtime);
    if (os_chain_deploy(s, addr, NULL, &err, code.data, code.len, NULL, 0, 200000, WAIT_MS) !=
        OS_OK)
        fail_msg("deploy reverter: %s", err.message);
    os_buf_free(&code);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_chain_id_and_keys(void **state)
{
    uint64_t id;
    os_chain_error err;
    json_t *accts;
    os_chain_config cfg;
    os_chain *other;
    os_chain_signer *s;
    uint8_t priv[32];
    (void)state;
    assert_int_equal(os_chain_chain_id(fx.ch, &id, &err), OS_OK);
    assert_int_equal(id, CHAIN_ID);
    /* the helper's keys are anvil's accounts */
    assert_int_equal(os_chain_rpc(fx.ch, &accts, &err, "eth_accounts", NULL), OS_OK);
    assert_int_equal(json_array_size(accts), 10);
    for (int i = 0; i < 10; i++) {
        uint8_t a[20], want[20];
        char text[OS_ADDRESS_STR_LEN];
        key_of(priv, i);
        assert_int_equal(os_secp_address(a, priv), OS_OK);
        os_eip55_format(text, a);
        assert_string_equal(text, anvil_address(i));
        assert_int_equal(
            os_hex_decode_exact(want, 20, json_string_value(json_array_get(accts, (size_t)i))),
            OS_OK);
        assert_memory_equal(a, want, 20);
    }
    json_decref(accts);
    /* a client that expects another chain refuses to make a signer */
    os_chain_config_default(&cfg, fx.anvil.url);
    cfg.chain_id = 1;
    assert_int_equal(os_chain_new(&other, &cfg), OS_OK);
    key_of(priv, 0);
    assert_int_equal(os_chain_signer_new(&s, other, &err, priv), OS_ERR_INVALID);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_CHAIN_ID);
    os_chain_free(other);
}

static void test_balance(void **state)
{
    uint8_t a[20], nobody[20] = {0x42};
    os_u256 wei, want;
    os_chain_error err;
    uint64_t head;
    os_buf code;
    (void)state;
    /* account 9 is never used by these tests: anvil's 10000 ETH, exactly */
    assert_int_equal(os_eip55_parse(a, anvil_address(9)), OS_OK);
    assert_int_equal(os_chain_balance(fx.ch, &wei, &err, a), OS_OK);
    assert_int_equal(os_u256_parse_dec(&want, "10000000000000000000000"), OS_OK);
    assert_int_equal(os_u256_cmp(&wei, &want), 0);
    assert_int_equal(os_chain_balance(fx.ch, &wei, &err, nobody), OS_OK);
    os_u256_from_u64(&want, 0);
    assert_int_equal(os_u256_cmp(&wei, &want), 0);
    assert_int_equal(os_chain_block_number(fx.ch, &head, &err), OS_OK);
    os_buf_init(&code, 1024);
    assert_int_equal(os_chain_code(fx.ch, &code, &err, a), OS_OK);
    assert_int_equal(code.len, 0);
    os_buf_free(&code);
}

static void test_value_transfer(void **state)
{
    os_chain_signer *s = signer_for(1);
    uint8_t to_priv[32], to[20], from[20];
    os_u256 value, before, after, got, spent, fee;
    os_chain_receipt *rc;
    os_chain_error err;
    unsigned __int128 gas_cost;
    (void)state;
    /* a fresh recipient so the balance must be exactly what was sent */
    assert_int_equal(os_secp_keygen(to_priv), OS_OK);
    assert_int_equal(os_secp_address(to, to_priv), OS_OK);
    os_chain_signer_address(s, from);
    assert_int_equal(os_u256_parse_dec(&value, "1000000000000012345"), OS_OK);
    assert_int_equal(os_chain_balance(fx.ch, &before, &err, from), OS_OK);
    if (os_chain_send_and_wait(s, &rc, &err, to, &value, NULL, 0, 0, 1, WAIT_MS) != OS_OK)
        fail_msg("send: %s", err.message);
    assert_true(rc->status);
    assert_int_equal(rc->gas_used, 21000);
    assert_true(rc->confirmations >= 1);
    assert_true(rc->has_to);
    assert_memory_equal(rc->to, to, 20);
    assert_memory_equal(rc->from, from, 20);
    assert_int_equal(os_chain_balance(fx.ch, &got, &err, to), OS_OK);
    assert_int_equal(os_u256_cmp(&got, &value), 0);
    /* the sender paid the value and gasUsed * effectiveGasPrice, to the wei */
    assert_int_equal(os_chain_balance(fx.ch, &after, &err, from), OS_OK);
    gas_cost = (unsigned __int128)rc->gas_used * rc->effective_gas_price;
    os_u256_from_u128(&fee, gas_cost);
    assert_int_equal(os_u256_sub(&spent, &before, &after), OS_OK);
    assert_int_equal(os_u256_sub(&spent, &spent, &value), OS_OK);
    assert_int_equal(os_u256_cmp(&spent, &fee), 0);
    os_chain_receipt_free(rc);
    os_chain_signer_free(s);
}

static void test_confirmations_and_wait_timeout(void **state)
{
    os_chain_signer *s = signer_for(7);
    uint8_t to[20], h[32], unknown[32];
    os_chain_receipt *rc;
    os_chain_error err;
    json_t *res;
    long long t0;
    (void)state;
    memset(to, 0x99, 20);
    assert_int_equal(os_chain_send_tx(s, h, &err, to, NULL, NULL, 0, 0), OS_OK);
    /* anvil mines one block per transaction: a third confirmation needs two more blocks */
    t0 = anvil_now_ms_();
    assert_int_equal(os_chain_wait_receipt(fx.ch, &rc, &err, h, 3, 400, 50), OS_ERR_TIMEOUT);
    assert_null(rc);
    assert_true(anvil_now_ms_() - t0 >= 400);
    assert_true(anvil_now_ms_() - t0 < 3000);
    assert_int_equal(os_chain_rpc(fx.ch, &res, &err, "anvil_mine", json_pack("[s]", "0x2")), OS_OK);
    json_decref(res);
    assert_int_equal(os_chain_wait_receipt(fx.ch, &rc, &err, h, 3, WAIT_MS, 50), OS_OK);
    assert_int_equal(rc->confirmations, 3);
    os_chain_receipt_free(rc);
    /* a hash nobody sent */
    memset(unknown, 0xee, 32);
    assert_int_equal(os_chain_receipt_get(fx.ch, &rc, &err, unknown), OS_ERR_NOTFOUND);
    assert_int_equal(os_chain_wait_receipt(fx.ch, &rc, &err, unknown, 1, 200, 50), OS_ERR_TIMEOUT);
    os_chain_signer_free(s);
}

typedef struct worker {
    os_chain_signer *s;
    uint8_t hashes[PER_THREAD][32];
    os_err err;
    char msg[OS_CHAIN_MSG_LEN];
} worker;

static void *send_worker(void *arg)
{
    worker *w = arg;
    uint8_t to[20];
    os_u256 one;
    os_chain_error err;
    memset(to, 0x77, 20);
    os_u256_from_u64(&one, 1);
    for (int i = 0; i < PER_THREAD; i++) {
        w->err = os_chain_send_tx(w->s, w->hashes[i], &err, to, &one, NULL, 0, 0);
        if (w->err != OS_OK) {
            snprintf(w->msg, sizeof(w->msg), "%s", err.message);
            break;
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_concurrent_sends(void **state)
{
    os_chain_signer *s = signer_for(2);
    pthread_t t[N_THREADS];
    worker w[N_THREADS];
    uint64_t start = pending_nonce(s), nonces[N_THREADS * PER_THREAD];
    size_t k = 0;
    (void)state;
    for (int i = 0; i < N_THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].s = s;
        assert_int_equal(pthread_create(&t[i], NULL, send_worker, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N_THREADS; i++) {
        if (w[i].err != OS_OK)
            fail_msg("thread %d: %s", i, w[i].msg);
        for (int j = 0; j < PER_THREAD; j++) {
            os_chain_receipt *rc;
            os_chain_error err;
            if (os_chain_wait_receipt(fx.ch, &rc, &err, w[i].hashes[j], 1, WAIT_MS, 50) != OS_OK)
                fail_msg("receipt %d/%d: %s", i, j, err.message);
            assert_true(rc->status);
            os_chain_receipt_free(rc);
            nonces[k++] = tx_nonce(w[i].hashes[j]);
        }
    }
    /* all mined, nonces start..start+19 each exactly once: no gaps, no duplicates */
    qsort(nonces, k, sizeof(nonces[0]), cmp_u64);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(nonces[i], start + i);
    assert_int_equal(pending_nonce(s), start + k);
    os_chain_signer_free(s);
}

static void test_failed_estimate_leaves_no_gap(void **state)
{
    os_chain_signer *s = signer_for(3);
    uint8_t reverter[20], h[32], to[20];
    os_chain_error err;
    os_chain_receipt *rc;
    os_u256 value;
    uint64_t n;
    (void)state;
    deploy_reverter(s, reverter);
    n = pending_nonce(s);

    /* the estimate reverts: a decoded reason, and no nonce was used */
    assert_int_equal(os_chain_send_tx(s, h, &err, reverter, NULL, NULL, 0, 0), OS_ERR_INVALID);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_REVERT);
    assert_int_equal(err.revert.kind, OS_ABI_REVERT_ERROR);
    assert_string_equal(err.revert.message, "nope");
    assert_int_equal(pending_nonce(s), n);

    /* a send the node refuses (value beyond the balance, gas given so no estimate runs): the
     * nonce goes back, and the next send uses it */
    assert_int_equal(os_u256_parse_dec(&value, "1000000000000000000000000"), OS_OK);
    memset(to, 0x55, 20);
    assert_int_equal(os_chain_send_tx(s, h, &err, to, &value, NULL, 0, 21000), OS_ERR_INVALID);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RPC);
    assert_int_equal(pending_nonce(s), n);

    os_u256_from_u64(&value, 5);
    if (os_chain_send_and_wait(s, &rc, &err, to, &value, NULL, 0, 0, 1, WAIT_MS) != OS_OK)
        fail_msg("send after failures: %s", err.message);
    assert_true(rc->status);
    assert_int_equal(tx_nonce(rc->tx_hash), n);
    assert_int_equal(pending_nonce(s), n + 1);
    os_chain_receipt_free(rc);

    /* sent anyway (explicit gas): mined with status 0, reported as such */
    if (os_chain_send_and_wait(s, &rc, &err, reverter, NULL, NULL, 0, 50000, 1, WAIT_MS) != OS_OK)
        fail_msg("send to reverter: %s", err.message);
    assert_false(rc->status);
    os_chain_receipt_free(rc);
    assert_int_equal(pending_nonce(s), n + 2);
    os_chain_signer_free(s);
}

static void test_external_nonce_use_resyncs(void **state)
{
    /* another sender with the same key takes nonces behind the signer's back */
    os_chain_signer *a = signer_for(4), *b = signer_for(4);
    uint8_t to[20], h[32];
    os_chain_receipt *rc;
    os_chain_error err;
    os_u256 one, two;
    uint64_t n;
    (void)state;
    memset(to, 0x66, 20);
    /* distinct values: an identical transaction would have the same hash and count as sent */
    os_u256_from_u64(&one, 1);
    os_u256_from_u64(&two, 2);
    n = pending_nonce(a);
    assert_int_equal(os_chain_send_tx(a, h, &err, to, &one, NULL, 0, 21000), OS_OK); /* a: n */
    assert_int_equal(os_chain_send_tx(b, h, &err, to, &two, NULL, 0, 21000), OS_OK); /* b: n+1 */
    /* a believes n+1 is next: "nonce too low", re-read, sent as n+2 */
    if (os_chain_send_and_wait(a, &rc, &err, to, &one, NULL, 0, 21000, 1, WAIT_MS) != OS_OK)
        fail_msg("resync send: %s", err.message);
    assert_int_equal(tx_nonce(rc->tx_hash), n + 2);
    os_chain_receipt_free(rc);
    os_chain_signer_free(a);
    os_chain_signer_free(b);
}

static void test_call_revert_decoding(void **state)
{
    os_chain_signer *s = signer_for(5);
    uint8_t reverter[20];
    os_chain_msg msg = {.has_to = true};
    os_chain_error err;
    os_buf out;
    (void)state;
    deploy_reverter(s, reverter);
    memcpy(msg.to, reverter, 20);
    os_buf_init(&out, 1024);
    assert_int_equal(os_chain_call(fx.ch, &out, &err, &msg, NULL), OS_ERR_INVALID);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_REVERT);
    assert_string_equal(err.message, "eth_call: execution reverted: nope");
    assert_int_equal(err.revert_len, 100);
    assert_int_equal(out.len, 0);
    /* the code is the hand-assembled runtime, byte for byte */
    {
        os_buf want;
        os_buf_init(&want, 256);
        unhex_buf(&want, reverter_runtime);
        assert_int_equal(os_chain_code(fx.ch, &out, &err, reverter), OS_OK);
        assert_int_equal(out.len, want.len);
        assert_memory_equal(out.data, want.data, want.len);
        os_buf_free(&want);
    }
    os_buf_free(&out);
    os_chain_signer_free(s);
}

/* Loads contracts/out/<name>.json's creation bytecode into b. */
static void load_artifact(os_buf *b, const char *name)
{
    char path[4096];
    const char *src = getenv("OPENSEED_SOURCE_DIR");
    json_error_t jerr;
    json_t *art;
    const char *hex;
    if (src == NULL)
        fail_msg("OPENSEED_SOURCE_DIR is not set");
    snprintf(path, sizeof(path), "%s/contracts/out/%s.json", src, name);
    art = json_load_file(path, 0, &jerr);
    if (art == NULL)
        fail_msg("cannot load %s: %s (build the contracts first)", path, jerr.text);
    hex = json_string_value(json_object_get(art, "bytecode"));
    if (hex == NULL || strncmp(hex, "0x", 2) != 0 || strlen(hex) < 10)
        fail_msg("%s has no bytecode", path);
    unhex_buf(b, hex + 2);
    json_decref(art);
}

static void test_usdc_logs(void **state)
{
    static const char transfer_ev[] = "Transfer(address indexed,address indexed,uint256)";
    os_chain_signer *s = signer_for(6);
    uint8_t usdc[20], me[20], bob[20], want_addr[20], h[32], topic[32];
    os_chain_receipt *rc, *deploy_rc;
    os_chain_error err;
    os_abi_value args[2], out[3];
    os_chain_filter f;
    os_chain_log *logs;
    os_chain_msg call = {.has_to = true};
    os_buf code, data, ret;
    size_t n;
    uint64_t v, nonce;
    (void)state;
    os_chain_signer_address(s, me);
    memset(bob, 0xb0, 20);
    nonce = pending_nonce(s);

    os_buf_init(&code, OS_TX_MAX_DATA);
    load_artifact(&code, "TestUSDC");
    if (os_chain_deploy(s, usdc, &deploy_rc, &err, code.data, code.len, NULL, 0, 0, WAIT_MS) !=
        OS_OK)
        fail_msg("deploy TestUSDC: %s", err.message);
    os_buf_free(&code);
    assert_int_equal(os_tx_create_address(want_addr, me, nonce), OS_OK);
    assert_memory_equal(usdc, want_addr, 20);

    /* mint 1 USDC to me, send 0.25 to bob */
    os_buf_init(&data, 4096);
    args[0] = os_abi_address(me);
    args[1] = os_abi_uint64(1000000);
    assert_int_equal(os_abi_encode_call(&data, "mint(address,uint256)", args, 2), OS_OK);
    if (os_chain_send_and_wait(s, &rc, &err, usdc, NULL, data.data, data.len, 0, 1, WAIT_MS) !=
        OS_OK)
        fail_msg("mint: %s", err.message);
    assert_true(rc->status);
    os_chain_receipt_free(rc);
    os_buf_reset(&data);
    args[0] = os_abi_address(bob);
    args[1] = os_abi_uint64(250000);
    assert_int_equal(os_abi_encode_call(&data, "transfer(address,uint256)", args, 2), OS_OK);
    if (os_chain_send_and_wait(s, &rc, &err, usdc, NULL, data.data, data.len, 0, 1, WAIT_MS) !=
        OS_OK)
        fail_msg("transfer: %s", err.message);
    assert_true(rc->status);
    /* the receipt's own log */
    assert_int_equal(rc->n_logs, 1);
    assert_int_equal(
        os_abi_decode_log(out, 3, transfer_ev, (const uint8_t(*)[32])rc->logs[0].topics,
                          rc->logs[0].n_topics, rc->logs[0].data, rc->logs[0].data_len),
        OS_OK);
    assert_memory_equal(out[0].u.address, me, 20);
    assert_memory_equal(out[1].u.address, bob, 20);
    assert_int_equal(os_u256_to_u64(&v, &out[2].u.uint), OS_OK);
    assert_int_equal(v, 250000);
    os_chain_receipt_free(rc);

    /* balanceOf(bob) through eth_call */
    os_buf_reset(&data);
    args[0] = os_abi_address(bob);
    assert_int_equal(os_abi_encode_call(&data, "balanceOf(address)", args, 1), OS_OK);
    memcpy(call.to, usdc, 20);
    call.data = data.data;
    call.data_len = data.len;
    os_buf_init(&ret, 1024);
    assert_int_equal(os_chain_call(fx.ch, &ret, &err, &call, NULL), OS_OK);
    assert_int_equal(os_abi_decode(out, 1, "(uint256)", ret.data, ret.len), OS_OK);
    assert_int_equal(os_u256_to_u64(&v, &out[0].u.uint), OS_OK);
    assert_int_equal(v, 250000);

    /* a transfer beyond bob's balance: the custom error, decoded from the client's table
     * (the checksummed address from ethers.getAddress("0x" + "b0".repeat(20))) */
    os_buf_reset(&data);
    args[0] = os_abi_address(me);
    args[1] = os_abi_uint64(300000);
    assert_int_equal(os_abi_encode_call(&data, "transfer(address,uint256)", args, 2), OS_OK);
    call.has_from = true;
    memcpy(call.from, bob, 20);
    call.data = data.data;
    call.data_len = data.len;
    assert_int_equal(os_chain_call(fx.ch, &ret, &err, &call, NULL), OS_ERR_INVALID);
    assert_int_equal(err.revert.kind, OS_ABI_REVERT_CUSTOM);
    assert_string_equal(err.message, "eth_call: execution reverted: ERC20InsufficientBalance("
                                     "0xB0B0b0B0B0B0B0b0B0B0B0b0b0b0b0B0b0b0B0B0, 250000, 300000)");

    /* every Transfer since the deployment: the mint (from 0) and the transfer */
    memset(&f, 0, sizeof(f));
    f.has_address = true;
    memcpy(f.address, usdc, 20);
    assert_int_equal(os_abi_event_topic(topic, transfer_ev), OS_OK);
    f.n_topics = 1;
    memcpy(f.topics[0].value, topic, 32);
    f.from_block = deploy_rc->block_number;
    f.to_latest = true;
    if (os_chain_get_logs(fx.ch, &logs, &n, &err, &f) != OS_OK)
        fail_msg("getLogs: %s", err.message);
    assert_int_equal(n, 2);
    assert_int_equal(os_abi_decode_log(out, 3, transfer_ev, (const uint8_t(*)[32])logs[0].topics,
                                       logs[0].n_topics, logs[0].data, logs[0].data_len),
                     OS_OK);
    assert_true(os_ct_is_zero(out[0].u.address, 20));
    assert_memory_equal(out[1].u.address, me, 20);
    assert_int_equal(os_u256_to_u64(&v, &out[2].u.uint), OS_OK);
    assert_int_equal(v, 1000000);
    assert_memory_equal(logs[0].address, usdc, 20);
    assert_true(logs[1].block_number > logs[0].block_number);
    os_chain_logs_free(logs, n);

    /* only transfers to bob: topic 2, with a wildcard at topic 1 */
    f.n_topics = 3;
    f.topics[1].any = true;
    memset(f.topics[2].value, 0, 12);
    memcpy(f.topics[2].value + 12, bob, 20);
    assert_int_equal(os_chain_get_logs(fx.ch, &logs, &n, &err, &f), OS_OK);
    assert_int_equal(n, 1);
    os_chain_logs_free(logs, n);
    /* a range that ends before the deployment holds nothing */
    f.to_latest = false;
    f.from_block = 0;
    f.to_block = deploy_rc->block_number - 1;
    assert_int_equal(os_chain_get_logs(fx.ch, &logs, &n, &err, &f), OS_OK);
    assert_int_equal(n, 0);
    assert_null(logs);

    (void)h;
    os_chain_receipt_free(deploy_rc);
    os_buf_free(&ret);
    os_buf_free(&data);
    os_chain_signer_free(s);
}

static void test_dead_port(void **state)
{
    char url[64];
    os_chain_config cfg;
    os_chain *dead;
    os_chain_error err;
    uint64_t n;
    long long t0, dt;
    (void)state;
    /* anvil's port after it is gone would do, but a fresh closed port is simpler: port 1 on
     * loopback has no listener without root */
    snprintf(url, sizeof(url), "http://127.0.0.1:1");
    os_chain_config_default(&cfg, url);
    cfg.max_retries = 2;
    cfg.retry_base_ms = 100;
    cfg.connect_timeout_ms = 1000;
    cfg.request_timeout_ms = 2000;
    assert_int_equal(os_chain_new(&dead, &cfg), OS_OK);
    t0 = anvil_now_ms_();
    assert_int_equal(os_chain_block_number(dead, &n, &err), OS_ERR_NETWORK);
    dt = anvil_now_ms_() - t0;
    assert_int_equal(err.kind, OS_CHAIN_FAIL_TRANSPORT);
    assert_int_equal(err.attempts, 3);
    assert_true(dt >= 50 + 100);                  /* backoffs of at least half of 100 and 200 ms */
    assert_true(dt < 3 * 2000 + 100 + 200 + 500); /* bounded by the timeouts and backoffs */
    os_chain_free(dead);
}

static void test_response_cap(void **state)
{
    os_chain_config cfg;
    os_chain *small;
    os_chain_error err;
    json_t *res;
    uint64_t id;
    (void)state;
    os_chain_config_default(&cfg, fx.anvil.url);
    cfg.max_response = 512;
    assert_int_equal(os_chain_new(&small, &cfg), OS_OK);
    assert_int_equal(os_chain_chain_id(small, &id, &err), OS_OK); /* a small answer is fine */
    assert_int_equal(
        os_chain_rpc(small, &res, &err, "eth_getBlockByNumber", json_pack("[sb]", "latest", 1)),
        OS_ERR_TOOBIG);
    assert_int_equal(err.kind, OS_CHAIN_FAIL_RESPONSE);
    assert_int_equal(err.attempts, 1);
    assert_null(res);
    os_chain_free(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_id_and_keys),
        cmocka_unit_test(test_balance),
        cmocka_unit_test(test_value_transfer),
        cmocka_unit_test(test_confirmations_and_wait_timeout),
        cmocka_unit_test(test_concurrent_sends),
        cmocka_unit_test(test_failed_estimate_leaves_no_gap),
        cmocka_unit_test(test_external_nonce_use_resyncs),
        cmocka_unit_test(test_call_revert_decoding),
        cmocka_unit_test(test_usdc_logs),
        cmocka_unit_test(test_dead_port),
        cmocka_unit_test(test_response_cap),
    };
    return cmocka_run_group_tests_name("chain (anvil)", tests, setup, teardown);
}
