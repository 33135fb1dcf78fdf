/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The typed Ethereum calls over the JSON-RPC client in chain.c: chain id, block number, nonce,
 * balance, code, fees, gas estimates, eth_call, raw sends, receipts, logs and transaction lookups.
 * Each builds its params, makes one exchange and validates the result field by field into plain C
 * structs, so nothing that leaves this file points into JSON: a node that answers with a missing or
 * malformed field is an OS_CHAIN_FAIL_RESPONSE error, never a crash or a zero.
 */
#include "openseed/chain.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/hex.h"
#include "openseed/keccak.h"
#include "openseed/tx.h"

#include "chain_internal.h"

/* ---- quantities -------------------------------------------------------------------------- */

/* Checks "0x" + 1..max_digits hex digits without leading zeros; *digits points past "0x". */
static os_err quantity_digits(const char **digits, size_t *n, const char *s, size_t max_digits)
{
    if (s == NULL || s[0] != '0' || s[1] != 'x')
        return OS_ERR_INVALID;
    s += 2;
    *n = strnlen(s, max_digits + 1);
    if (*n == 0 || (s[0] == '0' && *n > 1))
        return OS_ERR_INVALID;
    for (size_t i = 0; i < *n; i++)
        if (os_hex_digit(s[i]) < 0)
            return OS_ERR_INVALID;
    if (*n > max_digits)
        return OS_ERR_RANGE;
    *digits = s;
    return OS_OK;
}

os_err os_chain_quantity_u64(uint64_t *v, const char *s)
{
    const char *d;
    size_t n;
    os_err err;

    *v = 0;
    err = quantity_digits(&d, &n, s, 16);
    if (err != OS_OK)
        return err;
    for (size_t i = 0; i < n; i++)
        *v = *v << 4 | (uint64_t)os_hex_digit(d[i]);
    return OS_OK;
}

os_err os_chain_quantity_u256(os_u256 *v, const char *s)
{
    const char *d;
    size_t n;
    os_err err;

    memset(v->be, 0, 32);
    err = quantity_digits(&d, &n, s, 64);
    if (err != OS_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        size_t pos = n - 1 - i; /* nibble index from the least significant end */
        int x = os_hex_digit(d[i]);
        v->be[31 - pos / 2] |= (uint8_t)(pos % 2 ? x << 4 : x);
    }
    return OS_OK;
}

void os_chain_quantity_format(char out[OS_CHAIN_QUANTITY_LEN], uint64_t v)
{
    snprintf(out, OS_CHAIN_QUANTITY_LEN, "0x%" PRIx64, v);
}

static void quantity_format_u256(char out[67], const os_u256 *v)
{
    static const char digits[] = "0123456789abcdef";
    size_t i = 0, o = 2;

    out[0] = '0';
    out[1] = 'x';
    while (i < 31 && v->be[i] == 0)
        i++;
    if (v->be[i] >> 4)
        out[o++] = digits[v->be[i] >> 4];
    out[o++] = digits[v->be[i] & 15];
    for (i++; i < 32; i++) {
        out[o++] = digits[v->be[i] >> 4];
        out[o++] = digits[v->be[i] & 15];
    }
    out[o] = '\0';
}

/* ---- field validation -------------------------------------------------------------------- */

static os_err bad_field(os_chain_error *e, const char *method, const char *field)
{
    os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: missing or malformed %s", method, field);
    return OS_ERR_NETWORK;
}

static os_err field_u64(uint64_t *v, os_chain_error *e, const char *method, const json_t *j,
                        const char *field)
{
    os_err err = os_chain_quantity_u64(v, os_chain_json_str(j));

    if (err == OS_ERR_RANGE) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: %s does not fit in 64 bits", method,
                         field);
        return err;
    }
    return err == OS_OK ? OS_OK : bad_field(e, method, field);
}

/* Exactly len bytes of "0x" hex. */
static os_err field_bytes(uint8_t *out, size_t len, os_chain_error *e, const char *method,
                          const json_t *j, const char *field)
{
    const char *s = os_chain_json_str(j);

    if (s == NULL || s[0] != '0' || s[1] != 'x' || os_hex_decode_exact(out, len, s) != OS_OK)
        return bad_field(e, method, field);
    return OS_OK;
}

/* An address or JSON null. */
static os_err field_addr_opt(bool *has, uint8_t out[20], os_chain_error *e, const char *method,
                             const json_t *j, const char *field)
{
    *has = false;
    if (j == NULL || json_is_null(j))
        return OS_OK;
    *has = true;
    return field_bytes(out, 20, e, method, j, field);
}

/* Simple calls whose result is one quantity. */
static os_err call_u64(os_chain *ch, uint64_t *v, os_chain_error *e, const char *method,
                       json_t *params)
{
    json_t *res;
    os_err err = os_chain_exchange(ch, &res, e, method, params);

    if (err != OS_OK)
        return err;
    err = field_u64(v, e, method, res, "result");
    json_decref(res);
    return err;
}

/* Calls whose result is "0x" data, appended to out (out is unchanged on error). */
static os_err call_data(os_chain *ch, os_buf *out, os_chain_error *e, const char *method,
                        json_t *params)
{
    json_t *res;
    os_err err = os_chain_exchange(ch, &res, e, method, params);

    if (err != OS_OK)
        return err;
    err = os_chain_hex_data(out, res);
    json_decref(res);
    if (err == OS_ERR_TOOBIG) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: result larger than the %zu-byte buffer",
                         method, out->max);
        return OS_ERR_TOOBIG;
    }
    return err == OS_OK ? OS_OK : bad_field(e, method, "result");
}

static json_t *addr_json(const uint8_t addr[20])
{
    char s[OS_HEX_LEN(20)];

    if (os_hex_encode(s, sizeof(s), addr, 20, 1) != OS_OK)
        return NULL;
    return json_string(s);
}

static json_t *bytes_json(const uint8_t *p, size_t n)
{
    size_t cap = OS_HEX_LEN(n);
    char *s = malloc(cap);
    json_t *j = NULL;

    if (s != NULL && os_hex_encode(s, cap, p, n, 1) == OS_OK)
        j = json_stringn(s, cap - 1);
    free(s);
    return j;
}

static json_t *hash_json(const uint8_t h[32])
{
    return bytes_json(h, 32);
}

/* [x, tag]; x stolen. */
static json_t *params2(json_t *x, const char *tag)
{
    json_t *a = json_array();

    if (a == NULL || json_array_append_new(a, x) != 0 ||
        (tag != NULL && json_array_append_new(a, json_string(tag)) != 0)) {
        if (a == NULL)
            json_decref(x);
        json_decref(a);
        return NULL;
    }
    return a;
}

static os_err nomem(os_chain_error *e, const char *method)
{
    os_chain_err_set(e, OS_CHAIN_FAIL_NONE, "%s: out of memory", method);
    return OS_ERR_NOMEM;
}

/* Calls whose one param is a transaction hash; *res as os_chain_exchange gives it. */
static os_err call_hash(os_chain *ch, json_t **res, os_chain_error *e, const char *method,
                        const uint8_t hash[32])
{
    json_t *p = params2(hash_json(hash), NULL);

    if (p == NULL)
        return nomem(e, method);
    return os_chain_exchange(ch, res, e, method, p);
}

/* ---- plain calls ------------------------------------------------------------------------- */

os_err os_chain_chain_id(os_chain *ch, uint64_t *id, os_chain_error *err)
{
    ENTRY(err);
    return call_u64(ch, id, err, "eth_chainId", NULL);
}

os_err os_chain_block_number(os_chain *ch, uint64_t *n, os_chain_error *err)
{
    ENTRY(err);
    return call_u64(ch, n, err, "eth_blockNumber", NULL);
}

os_err os_chain_nonce(os_chain *ch, uint64_t *nonce, os_chain_error *err, const uint8_t addr[20])
{
    json_t *p;

    ENTRY(err);
    p = params2(addr_json(addr), "pending");
    if (p == NULL)
        return nomem(err, "eth_getTransactionCount");
    return call_u64(ch, nonce, err, "eth_getTransactionCount", p);
}

os_err os_chain_balance(os_chain *ch, os_u256 *wei, os_chain_error *err, const uint8_t addr[20])
{
    json_t *p, *res;
    os_err rc;

    ENTRY(err);
    p = params2(addr_json(addr), "latest");
    if (p == NULL)
        return nomem(err, "eth_getBalance");
    rc = os_chain_exchange(ch, &res, err, "eth_getBalance", p);
    if (rc != OS_OK)
        return rc;
    rc = os_chain_quantity_u256(wei, os_chain_json_str(res));
    json_decref(res);
    return rc == OS_OK ? OS_OK : bad_field(err, "eth_getBalance", "result");
}

os_err os_chain_code(os_chain *ch, os_buf *code, os_chain_error *err, const uint8_t addr[20])
{
    json_t *p;

    ENTRY(err);
    p = params2(addr_json(addr), "latest");
    if (p == NULL)
        return nomem(err, "eth_getCode");
    return call_data(ch, code, err, "eth_getCode", p);
}

os_err os_chain_suggest_fees(os_chain *ch, os_chain_fees *fees, os_chain_error *err)
{
    json_t *p, *res;
    const json_t *base;
    size_t n;
    os_err rc;

    ENTRY(err);
    memset(fees, 0, sizeof(*fees));
    /* one block of history: baseFeePerGas holds its base fee and the next block's */
    p = json_pack("[s,s,[]]", "0x1", "latest");
    if (p == NULL)
        return nomem(err, "eth_feeHistory");
    rc = os_chain_exchange(ch, &res, err, "eth_feeHistory", p);
    if (rc != OS_OK)
        return rc;
    base = json_object_get(res, "baseFeePerGas");
    n = json_array_size(base);
    if (n == 0 || n > 2)
        rc = bad_field(err, "eth_feeHistory", "baseFeePerGas");
    else
        rc = field_u64(&fees->base_fee, err, "eth_feeHistory", json_array_get(base, n - 1),
                       "baseFeePerGas");
    json_decref(res);
    if (rc != OS_OK)
        return rc;
    rc = call_u64(ch, &fees->tip, err, "eth_maxPriorityFeePerGas", NULL);
    if (rc != OS_OK)
        return rc;
    if (fees->base_fee > (UINT64_MAX - fees->tip) / 2) {
        os_chain_err_set(err, OS_CHAIN_FAIL_RESPONSE, "fees: base fee %" PRIu64 " too large",
                         fees->base_fee);
        return OS_ERR_RANGE;
    }
    fees->max_fee = 2 * fees->base_fee + fees->tip;
    return OS_OK;
}

static json_t *msg_json(const os_chain_msg *m)
{
    char q[67];
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    quantity_format_u256(q, &m->value);
    if ((m->has_from && json_object_set_new(o, "from", addr_json(m->from)) != 0) ||
        (m->has_to && json_object_set_new(o, "to", addr_json(m->to)) != 0) ||
        json_object_set_new(o, "value", json_string(q)) != 0 ||
        json_object_set_new(o, "data", bytes_json(m->data, m->data_len)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

os_err os_chain_estimate_gas(os_chain *ch, uint64_t *gas, os_chain_error *err,
                             const os_chain_msg *msg)
{
    json_t *p;

    ENTRY(err);
    if (msg->data_len > OS_TX_MAX_DATA || (msg->data_len > 0 && msg->data == NULL))
        return OS_ERR_INVALID;
    p = params2(msg_json(msg), NULL);
    if (p == NULL)
        return nomem(err, "eth_estimateGas");
    return call_u64(ch, gas, err, "eth_estimateGas", p);
}

static bool block_tag_ok(const char *b)
{
    uint64_t n;
    static const char *const tags[] = {"latest", "pending", "safe", "finalized", "earliest"};

    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        if (strcmp(b, tags[i]) == 0)
            return true;
    return os_chain_quantity_u64(&n, b) == OS_OK;
}

os_err os_chain_call(os_chain *ch, os_buf *out, os_chain_error *err, const os_chain_msg *msg,
                     const char *block)
{
    json_t *p;

    ENTRY(err);
    if (block == NULL)
        block = "latest";
    if (!block_tag_ok(block) || msg->data_len > OS_TX_MAX_DATA ||
        (msg->data_len > 0 && msg->data == NULL))
        return OS_ERR_INVALID;
    p = params2(msg_json(msg), block);
    if (p == NULL)
        return nomem(err, "eth_call");
    return call_data(ch, out, err, "eth_call", p);
}

os_err os_chain_send_raw(os_chain *ch, uint8_t hash[32], os_chain_error *err, const uint8_t *raw,
                         size_t raw_len)
{
    json_t *p, *res;
    uint8_t want[32];
    os_err rc;

    ENTRY(err);
    if (raw == NULL || raw_len == 0 || raw_len > OS_TX_MAX_RAW)
        return OS_ERR_INVALID;
    p = params2(bytes_json(raw, raw_len), NULL);
    if (p == NULL)
        return nomem(err, "eth_sendRawTransaction");
    rc = os_chain_exchange(ch, &res, err, "eth_sendRawTransaction", p);
    if (rc != OS_OK)
        return rc;
    rc = field_bytes(hash, 32, err, "eth_sendRawTransaction", res, "result");
    json_decref(res);
    if (rc != OS_OK)
        return rc;
    os_keccak256(want, raw, raw_len);
    if (memcmp(want, hash, 32) != 0) {
        os_chain_err_set(err, OS_CHAIN_FAIL_RESPONSE,
                         "eth_sendRawTransaction: node reports another hash");
        return OS_ERR_NETWORK;
    }
    return OS_OK;
}

/* ---- receipts and logs ------------------------------------------------------------------- */

void os_chain_logs_free(os_chain_log *logs, size_t n)
{
    if (logs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(logs[i].data);
    free(logs);
}

void os_chain_receipt_free(os_chain_receipt *rc)
{
    if (rc == NULL)
        return;
    os_chain_logs_free(rc->logs, rc->n_logs);
    free(rc);
}

static os_err parse_log(os_chain_log *l, os_chain_error *e, const char *method, const json_t *o)
{
    const json_t *topics = json_object_get(o, "topics"), *data = json_object_get(o, "data");
    const json_t *removed = json_object_get(o, "removed");
    const char *s;
    size_t n;
    os_err err;

    if (!json_is_object(o))
        return bad_field(e, method, "log");
    if ((err = field_bytes(l->address, 20, e, method, json_object_get(o, "address"),
                           "log address")) != OS_OK ||
        (err = field_u64(&l->block_number, e, method, json_object_get(o, "blockNumber"),
                         "log blockNumber")) != OS_OK ||
        (err = field_bytes(l->tx_hash, 32, e, method, json_object_get(o, "transactionHash"),
                           "log transactionHash")) != OS_OK ||
        (err = field_u64(&l->log_index, e, method, json_object_get(o, "logIndex"),
                         "log logIndex")) != OS_OK)
        return err;
    if (!json_is_array(topics) || json_array_size(topics) > 4)
        return bad_field(e, method, "log topics");
    l->n_topics = json_array_size(topics);
    for (size_t i = 0; i < l->n_topics; i++)
        if ((err = field_bytes(l->topics[i], 32, e, method, json_array_get(topics, i),
                               "log topic")) != OS_OK)
            return err;
    if (removed != NULL && !json_is_boolean(removed))
        return bad_field(e, method, "log removed");
    l->removed = json_is_true(removed);
    s = os_chain_json_str(data);
    if (s == NULL || s[0] != '0' || s[1] != 'x')
        return bad_field(e, method, "log data");
    n = json_string_length(data) - 2;
    if (n % 2 != 0)
        return bad_field(e, method, "log data");
    l->data_len = n / 2;
    if (l->data_len > 0) {
        l->data = malloc(l->data_len);
        if (l->data == NULL)
            return nomem(e, method);
        if (os_hex_decode(l->data, l->data_len, &n, s + 2, 2 * l->data_len) != OS_OK ||
            n != l->data_len) /* "0x0x…": os_hex_decode would skip the inner prefix */
            return bad_field(e, method, "log data");
    }
    return OS_OK;
}

static os_err parse_logs(os_chain_log **out, size_t *n_out, os_chain_error *e, const char *method,
                         const json_t *arr)
{
    os_chain_log *logs;
    size_t n = json_array_size(arr);
    os_err err;

    *out = NULL;
    *n_out = 0;
    if (!json_is_array(arr))
        return bad_field(e, method, "logs");
    if (n > OS_CHAIN_MAX_LOGS) {
        os_chain_err_set(e, OS_CHAIN_FAIL_RESPONSE, "%s: more than %d logs", method,
                         OS_CHAIN_MAX_LOGS);
        return OS_ERR_TOOBIG;
    }
    if (n == 0)
        return OS_OK;
    logs = calloc(n, sizeof(*logs));
    if (logs == NULL)
        return nomem(e, method);
    for (size_t i = 0; i < n; i++) {
        err = parse_log(&logs[i], e, method, json_array_get(arr, i));
        if (err != OS_OK) {
            os_chain_logs_free(logs, i + 1);
            return err;
        }
    }
    *out = logs;
    *n_out = n;
    return OS_OK;
}

static os_err parse_receipt(os_chain_receipt *r, os_chain_error *e, const json_t *o)
{
    static const char m[] = "eth_getTransactionReceipt";
    const json_t *price = json_object_get(o, "effectiveGasPrice");
    uint64_t status;
    os_err err;

    if ((err = field_bytes(r->tx_hash, 32, e, m, json_object_get(o, "transactionHash"),
                           "transactionHash")) != OS_OK ||
        (err = field_bytes(r->block_hash, 32, e, m, json_object_get(o, "blockHash"),
                           "blockHash")) != OS_OK ||
        (err = field_u64(&r->block_number, e, m, json_object_get(o, "blockNumber"),
                         "blockNumber")) != OS_OK ||
        (err = field_u64(&r->gas_used, e, m, json_object_get(o, "gasUsed"), "gasUsed")) != OS_OK ||
        (err = field_u64(&status, e, m, json_object_get(o, "status"), "status")) != OS_OK ||
        (err = field_bytes(r->from, 20, e, m, json_object_get(o, "from"), "from")) != OS_OK ||
        (err = field_addr_opt(&r->has_to, r->to, e, m, json_object_get(o, "to"), "to")) != OS_OK ||
        (err = field_addr_opt(&r->has_contract, r->contract_address, e, m,
                              json_object_get(o, "contractAddress"), "contractAddress")) != OS_OK)
        return err;
    if (status > 1)
        return bad_field(e, m, "status");
    r->status = status == 1;
    if (price != NULL &&
        (err = field_u64(&r->effective_gas_price, e, m, price, "effectiveGasPrice")) != OS_OK)
        return err;
    return parse_logs(&r->logs, &r->n_logs, e, m, json_object_get(o, "logs"));
}

os_err os_chain_receipt_get(os_chain *ch, os_chain_receipt **rc, os_chain_error *err,
                            const uint8_t hash[32])
{
    static const char m[] = "eth_getTransactionReceipt";
    os_chain_receipt *r;
    json_t *res;
    uint64_t head;
    os_err e;

    ENTRY(err);
    *rc = NULL;
    e = call_hash(ch, &res, err, m, hash);
    if (e != OS_OK)
        return e;
    if (json_is_null(res)) {
        json_decref(res);
        os_chain_err_set(err, OS_CHAIN_FAIL_NONE, "%s: not mined yet", m);
        return OS_ERR_NOTFOUND;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        json_decref(res);
        return nomem(err, m);
    }
    e = json_is_object(res) ? parse_receipt(r, err, res) : bad_field(err, m, "result");
    json_decref(res);
    if (e == OS_OK && memcmp(r->tx_hash, hash, 32) != 0)
        e = bad_field(err, m, "transactionHash (another transaction)");
    if (e == OS_OK)
        e = call_u64(ch, &head, err, "eth_blockNumber", NULL);
    if (e != OS_OK) {
        os_chain_receipt_free(r);
        return e;
    }
    /* a node behind the one that served the receipt (load balancers) can report an older head */
    r->confirmations = head >= r->block_number ? head - r->block_number + 1 : 0;
    *rc = r;
    return OS_OK;
}

os_err os_chain_wait_receipt(os_chain *ch, os_chain_receipt **rc, os_chain_error *err,
                             const uint8_t hash[32], uint64_t confirmations, long timeout_ms,
                             long poll_ms)
{
    long long deadline;
    long interval = 10; /* a fast chain (a devnet) mines in milliseconds: ask soon, then back off */
    os_err e;

    ENTRY(err);
    *rc = NULL;
    if (timeout_ms <= 0 || poll_ms <= 0)
        return OS_ERR_INVALID;
    if (confirmations == 0)
        confirmations = 1;
    deadline = os_chain_now_ms() + timeout_ms;
    for (;;) {
        long long left;
        e = os_chain_receipt_get(ch, rc, err, hash);
        if (e == OS_OK) {
            if ((*rc)->confirmations >= confirmations)
                return OS_OK;
            os_chain_receipt_free(*rc);
            *rc = NULL;
        } else if (e != OS_ERR_NOTFOUND && e != OS_ERR_NETWORK && e != OS_ERR_TIMEOUT) {
            return e;
        } else if (e == OS_ERR_NETWORK && err->kind == OS_CHAIN_FAIL_RESPONSE) {
            return e; /* a misbehaving node will not get better by asking again */
        }
        left = deadline - os_chain_now_ms();
        if (left <= 0)
            break;
        if (interval > poll_ms)
            interval = poll_ms;
        os_chain_sleep_ms(left < interval ? (long)left : interval);
        interval *= 2;
    }
    os_chain_err_set(err, OS_CHAIN_FAIL_NONE,
                     "no receipt with %" PRIu64 " confirmation(s) within %ld ms", confirmations,
                     timeout_ms);
    return OS_ERR_TIMEOUT;
}

os_err os_chain_get_logs(os_chain *ch, os_chain_log **logs, size_t *n, os_chain_error *err,
                         const os_chain_filter *f)
{
    static const char m[] = "eth_getLogs";
    char q[OS_CHAIN_QUANTITY_LEN];
    json_t *o, *topics, *res;
    os_err e;

    ENTRY(err);
    *logs = NULL;
    *n = 0;
    if (f->n_topics > 4 || (!f->to_latest && f->to_block < f->from_block))
        return OS_ERR_INVALID;
    o = json_object();
    topics = json_array();
    if (o == NULL || topics == NULL) {
        json_decref(o);
        json_decref(topics);
        return nomem(err, m);
    }
    for (size_t i = 0; i < f->n_topics; i++)
        if (json_array_append_new(topics, f->topics[i].any ? json_null()
                                                           : hash_json(f->topics[i].value)) != 0)
            goto oom;
    if (json_object_set_new(o, "topics", topics) != 0) {
        topics = NULL;
        goto oom;
    }
    topics = NULL;
    os_chain_quantity_format(q, f->from_block);
    if (json_object_set_new(o, "fromBlock", json_string(q)) != 0)
        goto oom;
    os_chain_quantity_format(q, f->to_block);
    if (json_object_set_new(o, "toBlock", json_string(f->to_latest ? "latest" : q)) != 0)
        goto oom;
    if (f->has_address && json_object_set_new(o, "address", addr_json(f->address)) != 0)
        goto oom;
    o = params2(o, NULL);
    if (o == NULL)
        return nomem(err, m);
    e = os_chain_exchange(ch, &res, err, m, o);
    if (e != OS_OK)
        return e;
    e = parse_logs(logs, n, err, m, res);
    json_decref(res);
    return e;
oom:
    json_decref(topics);
    json_decref(o);
    return nomem(err, m);
}

os_err os_chain_tx_known(os_chain *ch, bool *known, os_chain_error *err, const uint8_t hash[32])
{
    static const char m[] = "eth_getTransactionByHash";
    json_t *res;
    os_err e;

    ENTRY(err);
    *known = false;
    e = call_hash(ch, &res, err, m, hash);
    if (e != OS_OK)
        return e;
    if (json_is_object(res))
        *known = true;
    else if (!json_is_null(res))
        e = bad_field(err, m, "result");
    json_decref(res);
    return e;
}
