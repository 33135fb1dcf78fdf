/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: a development chain for the escrow tests. Starts anvil (anvil.h), connects a chain
 * client whose revert decoding knows the escrow's, OpenZeppelin's and TestUSDC's errors, deploys
 * TestUSDC and OpenSeedChannels from the committed artifacts in contracts/out (the code that
 * ships, not a fresh build), and offers the few moves tests need around them: signers for anvil's
 * accounts, minting, approving, balances, and moving the chain's clock (evm_increaseTime +
 * evm_mine). Every helper returns 0 on success and -1 with the reason in the given buffer, so a
 * test can fail with a message rather than crash.
 *
 * Header-only: each integration test is a single .c file.
 */
#ifndef OPENSEED_TEST_DEVCHAIN_H
#define OPENSEED_TEST_DEVCHAIN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "anvil.h"
#include "openseed/abi.h"
#include "openseed/chain.h"
#include "openseed/ct.h"
#include "openseed/eip712.h"
#include "openseed/escrow.h"
#include "openseed/hex.h"
#include "openseed/tx.h"

#define DEVCHAIN_WAIT_MS 30000L

typedef struct devchain {
    anvil_node anvil;
    os_chain *ch;
    uint64_t chain_id;
    os_chain_signer *deployer; /* anvil account 0 */
    uint8_t usdc[20];
    uint8_t escrow[20];
    uint8_t usdc_domain[32];   /* TestUSDC's EIP-712 domain separator */
    uint8_t escrow_domain[32]; /* the escrow's (vouchers) */
    uint64_t deploy_block;     /* block of the escrow's deployment */
    uint64_t close_grace;
} devchain;

/* The private key of anvil account i. */
static inline void devchain_key(uint8_t priv[32], int i)
{
    size_t n = 0;
    if (os_hex_decode(priv, 32, &n, anvil_key(i), 64) != OS_OK || n != 32)
        memset(priv, 0, 32);
}

static inline void devchain_address(uint8_t addr[20], int i)
{
    size_t n = 0;
    if (os_hex_decode(addr, 20, &n, anvil_address(i), 42) != OS_OK || n != 20)
        memset(addr, 0, 20);
}

/* A signer for anvil account i; *s is the caller's (os_chain_signer_free). */
static inline int devchain_signer(devchain *d, os_chain_signer **s, int i, char *why, size_t n)
{
    uint8_t priv[32];
    os_chain_error err;
    os_err e;
    devchain_key(priv, i);
    e = os_chain_signer_new(s, d->ch, &err, priv);
    os_wipe(priv, 32);
    if (e != OS_OK) {
        snprintf(why, n, "signer %d: %s", i, err.message);
        return -1;
    }
    return 0;
}

/* Appends contracts/out/<name>.json's creation bytecode to b. */
static inline int devchain_artifact(os_buf *b, const char *name, char *why, size_t n)
{
    char path[4096];
    const char *src = getenv("OPENSEED_SOURCE_DIR");
    json_error_t jerr;
    json_t *art;
    const char *hex;
    size_t len, got = 0;
    int rc = -1;

    if (src == NULL) {
        snprintf(why, n, "OPENSEED_SOURCE_DIR is not set (run through ctest)");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/contracts/out/%s.json", src, name);
    art = json_load_file(path, 0, &jerr);
    if (art == NULL) {
        snprintf(why, n, "cannot load %.300s: %.150s", path, jerr.text);
        return -1;
    }
    hex = json_string_value(json_object_get(art, "bytecode"));
    if (hex == NULL || strncmp(hex, "0x", 2) != 0 || (len = strlen(hex + 2)) < 8 || len % 2 != 0)
        snprintf(why, n, "%.300s has no bytecode", path);
    else if (os_buf_reserve(b, len / 2) != OS_OK ||
             os_hex_decode(b->data + b->len, len / 2, &got, hex + 2, len) != OS_OK)
        snprintf(why, n, "%.300s: bad bytecode hex", path);
    else {
        b->len += got;
        rc = 0;
    }
    json_decref(art);
    return rc;
}

/* Deploys an OpenSeedChannels for token with close_grace seconds; block (may be NULL) receives
 * the deployment's block. */
static inline int devchain_deploy_escrow(devchain *d, uint8_t out[20], uint64_t *block,
                                         const uint8_t token[20], uint64_t close_grace, char *why,
                                         size_t n)
{
    os_buf code, args;
    os_abi_value v[2];
    os_chain_receipt *rc = NULL;
    os_chain_error err;
    int r = -1;

    os_buf_init(&code, OS_TX_MAX_DATA);
    os_buf_init(&args, 256);
    v[0] = os_abi_address(token);
    v[1] = os_abi_uint64(close_grace);
    if (devchain_artifact(&code, "OpenSeedChannels", why, n) != 0)
        goto out;
    if (os_abi_encode(&args, "(address,uint64)", v, 2) != OS_OK) {
        snprintf(why, n, "cannot encode constructor arguments");
        goto out;
    }
    if (os_chain_deploy(d->deployer, out, &rc, &err, code.data, code.len, args.data, args.len, 0,
                        DEVCHAIN_WAIT_MS) != OS_OK) {
        snprintf(why, n, "deploy OpenSeedChannels: %s", err.message);
        goto out;
    }
    if (block != NULL)
        *block = rc->block_number;
    r = 0;
out:
    os_chain_receipt_free(rc);
    os_buf_free(&code);
    os_buf_free(&args);
    return r;
}

/* Starts anvil on chain_id and deploys TestUSDC and an escrow with close_grace. */
static inline int devchain_start(devchain *d, uint64_t chain_id, uint64_t close_grace, char *why,
                                 size_t n)
{
    os_chain_config cfg;
    os_chain_error err;
    os_buf code;

    memset(d, 0, sizeof(*d));
    d->chain_id = chain_id;
    d->close_grace = close_grace;
    if (anvil_start(&d->anvil, chain_id, why, n) != 0)
        return -1;
    os_chain_config_default(&cfg, d->anvil.url);
    cfg.chain_id = chain_id;
    os_escrow_chain_config(&cfg);
    if (os_chain_new(&d->ch, &cfg) != OS_OK) {
        snprintf(why, n, "os_chain_new failed");
        return -1;
    }
    if (devchain_signer(d, &d->deployer, 0, why, n) != 0)
        return -1;
    os_buf_init(&code, OS_TX_MAX_DATA);
    if (devchain_artifact(&code, "TestUSDC", why, n) != 0) {
        os_buf_free(&code);
        return -1;
    }
    if (os_chain_deploy(d->deployer, d->usdc, NULL, &err, code.data, code.len, NULL, 0, 0,
                        DEVCHAIN_WAIT_MS) != OS_OK) {
        snprintf(why, n, "deploy TestUSDC: %s", err.message);
        os_buf_free(&code);
        return -1;
    }
    os_buf_free(&code);
    if (devchain_deploy_escrow(d, d->escrow, &d->deploy_block, d->usdc, close_grace, why, n) != 0)
        return -1;
    os_token_domain(d->usdc_domain, OS_USDC_EIP712_NAME, OS_USDC_EIP712_VERSION, chain_id, d->usdc);
    os_eip712_channels_domain(d->escrow_domain, chain_id, d->escrow);
    return 0;
}

static inline void devchain_stop(devchain *d)
{
    os_chain_signer_free(d->deployer);
    d->deployer = NULL;
    os_chain_free(d->ch);
    d->ch = NULL;
    anvil_stop(&d->anvil);
}

/* TestUSDC.mint(to, amount), sent by the deployer. */
static inline int devchain_mint(devchain *d, const uint8_t to[20], uint64_t amount, char *why,
                                size_t n)
{
    os_buf data;
    os_chain_error err;
    os_err e;
    os_buf_init(&data, 256);
    e = os_erc20_encode_mint(&data, to, amount);
    if (e == OS_OK)
        e = os_escrow_send(d->deployer, NULL, &err, d->usdc, &data, 0);
    os_buf_free(&data);
    if (e != OS_OK) {
        snprintf(why, n, "mint: %s", err.message);
        return -1;
    }
    return 0;
}

/*
 * os_escrow_send with a 10 ms receipt poll instead of the signer's 200 ms: anvil mines on send but
 * often answers the first receipt query just before the block is in, and a test sending hundreds
 * of transactions should not sleep 200 ms for each. Same results and errors as os_escrow_send.
 */
static inline os_err devchain_send(devchain *d, os_chain_signer *s, os_chain_receipt **rc,
                                   os_chain_error *err, const uint8_t to[20], const os_buf *data,
                                   uint64_t gas_limit)
{
    os_chain_receipt *r = NULL;
    uint8_t hash[32];
    os_err e;

    if (rc != NULL)
        *rc = NULL;
    e = os_chain_send_tx(s, hash, err, to, NULL, data->data, data->len, gas_limit);
    if (e == OS_OK)
        e = os_chain_wait_receipt(d->ch, &r, err, hash, 1, DEVCHAIN_WAIT_MS, 10);
    if (e != OS_OK)
        return e;
    if (!r->status) {
        memset(err, 0, sizeof(*err));
        err->kind = OS_CHAIN_FAIL_RECEIPT;
        snprintf(err->message, sizeof(err->message), "transaction reverted on chain");
        e = OS_ERR_INVALID;
    }
    if (rc != NULL)
        *rc = r;
    else
        os_chain_receipt_free(r);
    return e;
}

/* USDC balance of addr, or UINT64_MAX (which no test balance reaches) when it cannot be read. */
static inline uint64_t devchain_balance(devchain *d, const uint8_t addr[20])
{
    uint64_t v;
    os_chain_error err;
    if (os_erc20_balance(d->ch, &v, &err, d->usdc, addr) != OS_OK) {
        fprintf(stderr, "balanceOf: %s\n", err.message);
        return UINT64_MAX;
    }
    return v;
}

/* The latest block's timestamp. */
static inline int devchain_time(devchain *d, uint64_t *ts, char *why, size_t n)
{
    os_chain_error err;
    json_t *blk;
    int r = -1;
    if (os_chain_rpc(d->ch, &blk, &err, "eth_getBlockByNumber", json_pack("[sb]", "latest", 0)) !=
        OS_OK) {
        snprintf(why, n, "eth_getBlockByNumber: %s", err.message);
        return -1;
    }
    if (os_chain_quantity_u64(ts, json_string_value(json_object_get(blk, "timestamp"))) == OS_OK)
        r = 0;
    else
        snprintf(why, n, "block without a timestamp");
    json_decref(blk);
    return r;
}

/* The timestamp of block number `block`. */
static inline int devchain_block_time(devchain *d, uint64_t *ts, uint64_t block, char *why,
                                      size_t n)
{
    char q[OS_CHAIN_QUANTITY_LEN];
    os_chain_error err;
    json_t *blk;
    int r = -1;
    os_chain_quantity_format(q, block);
    if (os_chain_rpc(d->ch, &blk, &err, "eth_getBlockByNumber", json_pack("[sb]", q, 0)) != OS_OK) {
        snprintf(why, n, "eth_getBlockByNumber: %s", err.message);
        return -1;
    }
    if (os_chain_quantity_u64(ts, json_string_value(json_object_get(blk, "timestamp"))) == OS_OK)
        r = 0;
    else
        snprintf(why, n, "block without a timestamp");
    json_decref(blk);
    return r;
}

/* Moves the chain's clock forward by seconds and mines a block at the new time. */
static inline int devchain_advance(devchain *d, uint64_t seconds, char *why, size_t n)
{
    os_chain_error err;
    json_t *res;
    if (os_chain_rpc(d->ch, &res, &err, "evm_increaseTime",
                     json_pack("[I]", (json_int_t)seconds)) != OS_OK) {
        snprintf(why, n, "evm_increaseTime: %s", err.message);
        return -1;
    }
    json_decref(res);
    if (os_chain_rpc(d->ch, &res, &err, "evm_mine", NULL) != OS_OK) {
        snprintf(why, n, "evm_mine: %s", err.message);
        return -1;
    }
    json_decref(res);
    return 0;
}

/* The escrow's own view hashSpendingAuth(v): the full EIP-712 digest as the contract computes it.
 */
static inline int devchain_hash_spending_auth(devchain *d, uint8_t out[32],
                                              const uint8_t escrow[20], const os_voucher *v,
                                              char *why, size_t n)
{
    os_buf data, ret;
    os_chain_msg msg;
    os_chain_error err;
    int r = -1;
    os_buf_init(&data, 512);
    os_buf_init(&ret, 512);
    memset(&msg, 0, sizeof(msg));
    msg.has_to = true;
    memcpy(msg.to, escrow, 20);
    if (os_escrow_encode_hash_spending_auth(&data, v) != OS_OK) {
        snprintf(why, n, "encode hashSpendingAuth");
        goto out;
    }
    msg.data = data.data;
    msg.data_len = data.len;
    if (os_chain_call(d->ch, &ret, &err, &msg, NULL) != OS_OK) {
        snprintf(why, n, "hashSpendingAuth: %s", err.message);
        goto out;
    }
    if (ret.len != 32) {
        snprintf(why, n, "hashSpendingAuth returned %zu bytes", ret.len);
        goto out;
    }
    memcpy(out, ret.data, 32);
    r = 0;
out:
    os_buf_free(&data);
    os_buf_free(&ret);
    return r;
}

#endif
