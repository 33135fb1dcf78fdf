/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sending EIP-1559 transactions from one key through an os_chain, for many threads at once. The
 * part that needs care is the nonce: taken from a mutex-protected counter so concurrent sends get
 * consecutive values, handed back when the node refuses a send and nobody took a later one, and
 * otherwise re-read from the node's pending count once in-flight sends have finished, so a failed
 * send never leaves a gap that would stall every later transaction. Work that can fail before the
 * node sees the transaction (fees, the gas estimate) is done before a nonce is taken.
 */
#include "openseed/chain.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/secp.h"
#include "openseed/tx.h"

#include "chain_internal.h"

#define SEND_ATTEMPTS 3 /* signs with a fresh nonce after "nonce too low" and kin */
#define POLL_MS 200

static os_err signer_nomem(os_chain_error *e)
{
    os_chain_err_set(e, OS_CHAIN_FAIL_NONE, "signer: out of memory");
    return OS_ERR_NOMEM;
}

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay != '\0'; hay++) {
        size_t i = 0;
        while (i < n && hay[i] != '\0' &&
               (hay[i] | 0x20) == (needle[i] | 0x20) /* needles: lower-case letters, spaces */)
            i++;
        if (i == n)
            return true;
    }
    return false;
}

struct os_chain_signer {
    os_chain *ch;
    uint8_t *priv; /* sodium_malloc'd: guard pages, mlock'd, wiped by sodium_free */
    uint8_t address[20];
    uint64_t chain_id;
    pthread_mutex_t mu; /* guards the nonce state below */
    pthread_cond_t cv;  /* signalled when a send finishes */
    bool synced;        /* next_nonce is trustworthy */
    uint64_t next_nonce;
    unsigned inflight; /* nonces taken whose send has not finished */
};

typedef enum nonce_outcome {
    NONCE_USED,    /* the node has the transaction */
    NONCE_UNUSED,  /* the node refused it: the nonce is free again */
    NONCE_UNKNOWN, /* we cannot tell (transport error, nonce conflict): ask the node */
} nonce_outcome;

os_err os_chain_signer_new(os_chain_signer **out, os_chain *ch, os_chain_error *err,
                           const uint8_t priv[32])
{
    os_chain_signer *s;
    os_err e;

    ENTRY(err);
    *out = NULL;
    if (ch == NULL || priv == NULL)
        return OS_ERR_INVALID;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return signer_nomem(err);
    s->priv = sodium_malloc(32);
    if (s->priv == NULL) {
        free(s);
        return signer_nomem(err);
    }
    memcpy(s->priv, priv, 32);
    s->ch = ch;
    e = os_secp_address(s->address, s->priv);
    if (e == OS_OK)
        e = os_chain_chain_id(ch, &s->chain_id, err);
    if (e == OS_OK && os_chain_configured_chain_id(ch) != 0 &&
        os_chain_configured_chain_id(ch) != s->chain_id) {
        os_chain_err_set(err, OS_CHAIN_FAIL_CHAIN_ID, "node is on chain %" PRIu64 ", not %" PRIu64,
                         s->chain_id, os_chain_configured_chain_id(ch));
        e = OS_ERR_INVALID;
    }
    if (e == OS_OK && pthread_mutex_init(&s->mu, NULL) != 0)
        e = OS_ERR_NOMEM;
    if (e == OS_OK && pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        e = OS_ERR_NOMEM;
    }
    if (e != OS_OK) {
        sodium_free(s->priv);
        free(s);
        return e;
    }
    *out = s;
    return OS_OK;
}

void os_chain_signer_free(os_chain_signer *s)
{
    if (s == NULL)
        return;
    sodium_free(s->priv);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void os_chain_signer_address(const os_chain_signer *s, uint8_t addr[20])
{
    memcpy(addr, s->address, 20);
}

/* Takes the next nonce, first re-reading it from the node if it is in doubt. A re-read waits for
 * in-flight sends so that the node's pending count includes them. */
static os_err nonce_take(os_chain_signer *s, uint64_t *nonce, os_chain_error *err)
{
    os_err e = OS_OK;

    pthread_mutex_lock(&s->mu);
    while (!s->synced && s->inflight > 0)
        pthread_cond_wait(&s->cv, &s->mu);
    if (!s->synced) {
        /* holding the lock: the other senders have to wait for this answer anyway */
        e = os_chain_nonce(s->ch, &s->next_nonce, err, s->address);
        s->synced = e == OS_OK;
    }
    if (e == OS_OK) {
        *nonce = s->next_nonce++;
        s->inflight++;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

static void nonce_done(os_chain_signer *s, uint64_t nonce, nonce_outcome outcome)
{
    pthread_mutex_lock(&s->mu);
    s->inflight--;
    if (outcome == NONCE_UNUSED && s->synced && nonce + 1 == s->next_nonce)
        s->next_nonce = nonce; /* nobody took a later one: hand it back */
    else if (outcome != NONCE_USED)
        s->synced = false;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Messages nodes (geth, reth, anvil, erigon, nethermind) give when a nonce is taken or skipped. */
static bool nonce_conflict(const char *msg)
{
    static const char *const pats[] = {
        "nonce too low",
        "nonce too high",
        "already known",
        "known transaction",
        "already imported",
        "replacement transaction underpriced",
        "nonce has already been used",
        "invalid nonce",
        "nonce is too low",
    };
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
        if (contains_ci(msg, pats[i]))
            return true;
    return false;
}

os_err os_chain_send_tx(os_chain_signer *s, uint8_t hash[32], os_chain_error *err,
                        const uint8_t *to, const os_u256 *value, const uint8_t *data,
                        size_t data_len, uint64_t gas_limit)
{
    os_chain_fees fees;
    os_tx tx;
    os_buf raw;
    os_err e;

    ENTRY(err);
    memset(hash, 0, 32);
    if (data_len > OS_TX_MAX_DATA || (data_len > 0 && data == NULL))
        return OS_ERR_INVALID;
    memset(&tx, 0, sizeof(tx));
    tx.chain_id = s->chain_id;
    tx.has_to = to != NULL;
    if (to != NULL)
        memcpy(tx.to, to, 20);
    if (value != NULL)
        tx.value = *value;
    tx.data = data;
    tx.data_len = data_len;

    /* Everything that can fail without the node seeing the transaction happens before a nonce
     * is taken (an estimate that reverts must not leave a gap). */
    e = os_chain_suggest_fees(s->ch, &fees, err);
    if (e != OS_OK)
        return e;
    tx.max_priority_fee_per_gas = fees.tip;
    tx.max_fee_per_gas = fees.max_fee;
    if (gas_limit == 0) {
        os_chain_msg msg = {.has_from = true,
                            .has_to = tx.has_to,
                            .value = tx.value,
                            .data = data,
                            .data_len = data_len};
        uint64_t est;
        memcpy(msg.from, s->address, 20);
        memcpy(msg.to, tx.to, 20);
        e = os_chain_estimate_gas(s->ch, &est, err, &msg);
        if (e != OS_OK)
            return e;
        if (est > UINT64_MAX / (100 + OS_CHAIN_GAS_MARGIN_PCT))
            return OS_ERR_RANGE;
        gas_limit = est * (100 + OS_CHAIN_GAS_MARGIN_PCT) / 100;
    }
    tx.gas_limit = gas_limit;

    os_buf_init(&raw, OS_TX_MAX_RAW);
    for (unsigned attempt = 0; attempt < SEND_ATTEMPTS; attempt++) {
        uint8_t h[32];

        e = nonce_take(s, &tx.nonce, err);
        if (e != OS_OK)
            break;
        os_buf_reset(&raw);
        e = os_tx_sign(&raw, h, &tx, s->priv);
        if (e != OS_OK) {
            nonce_done(s, tx.nonce, NONCE_UNUSED);
            break;
        }
        /* from here on the node may have it: the caller gets the hash even on error */
        memcpy(hash, h, 32);
        os_chain_err_reset(err);
        e = os_chain_send_raw(s->ch, h, err, raw.data, raw.len);
        if (e == OS_OK) {
            nonce_done(s, tx.nonce, NONCE_USED);
            break;
        }
        if (err->kind == OS_CHAIN_FAIL_RPC && nonce_conflict(err->message)) {
            /* A retried POST whose first try got through ends here too ("nonce too low" for our
             * own transaction): if the node has this very transaction, it was sent. */
            bool known = false;
            os_chain_error e2;
            if (os_chain_tx_known(s->ch, &known, &e2, h) == OS_OK && known) {
                nonce_done(s, tx.nonce, NONCE_USED);
                os_chain_err_reset(err);
                e = OS_OK;
                break;
            }
            nonce_done(s, tx.nonce, NONCE_UNKNOWN);
            continue;
        }
        /* any other refusal by the node leaves the nonce free; anything else leaves it in doubt */
        nonce_done(s, tx.nonce,
                   err->kind == OS_CHAIN_FAIL_RPC || err->kind == OS_CHAIN_FAIL_REVERT
                       ? NONCE_UNUSED
                       : NONCE_UNKNOWN);
        break;
    }
    os_buf_free(&raw);
    return e;
}

os_err os_chain_send_and_wait(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                              const uint8_t *to, const os_u256 *value, const uint8_t *data,
                              size_t data_len, uint64_t gas_limit, uint64_t confirmations,
                              long timeout_ms)
{
    uint8_t hash[32];
    os_err e;

    ENTRY(err);
    *rc = NULL;
    e = os_chain_send_tx(s, hash, err, to, value, data, data_len, gas_limit);
    if (e != OS_OK)
        return e;
    return os_chain_wait_receipt(s->ch, rc, err, hash, confirmations, timeout_ms, POLL_MS);
}

os_err os_chain_deploy(os_chain_signer *s, uint8_t addr[20], os_chain_receipt **rc,
                       os_chain_error *err, const uint8_t *bytecode, size_t len,
                       const uint8_t *args, size_t args_len, uint64_t gas_limit, long timeout_ms)
{
    os_chain_receipt *r = NULL;
    os_buf code;
    os_err e;

    ENTRY(err);
    if (rc != NULL)
        *rc = NULL;
    if (bytecode == NULL || len == 0 || (args_len > 0 && args == NULL))
        return OS_ERR_INVALID;
    os_buf_init(&code, OS_TX_MAX_DATA);
    e = os_buf_append(&code, bytecode, len);
    if (e == OS_OK)
        e = os_buf_append(&code, args, args_len);
    if (e == OS_OK)
        e = os_chain_send_and_wait(s, &r, err, NULL, NULL, code.data, code.len, gas_limit, 1,
                                   timeout_ms);
    os_buf_free(&code);
    if (e != OS_OK)
        return e;
    if (!r->status || !r->has_contract) {
        os_chain_err_set(err, OS_CHAIN_FAIL_RECEIPT, "deployment reverted on chain");
        os_chain_receipt_free(r);
        return OS_ERR_INVALID;
    }
    memcpy(addr, r->contract_address, 20);
    if (rc != NULL)
        *rc = r;
    else
        os_chain_receipt_free(r);
    return OS_OK;
}
