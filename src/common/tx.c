/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIP-1559 transaction encoding, signing and strict parsing. The unsigned and signed forms share
 * one field writer so the fields a sender signs are byte-for-byte the fields it broadcasts.
 */
#include "openseed/tx.h"

#include <string.h>

#include "openseed/keccak.h"
#include "openseed/rlp.h"
#include "openseed/secp.h"

/* Writes the nine fields both forms share. */
static os_err put_fields(os_buf *b, const os_tx *tx)
{
    size_t access_list;
    os_err err;

    if (tx->data_len > OS_TX_MAX_DATA || (tx->data_len > 0 && tx->data == NULL))
        return tx->data_len > OS_TX_MAX_DATA ? OS_ERR_TOOBIG : OS_ERR_INVALID;
    if ((err = os_rlp_put_u64(b, tx->chain_id)) != OS_OK ||
        (err = os_rlp_put_u64(b, tx->nonce)) != OS_OK ||
        (err = os_rlp_put_u64(b, tx->max_priority_fee_per_gas)) != OS_OK ||
        (err = os_rlp_put_u64(b, tx->max_fee_per_gas)) != OS_OK ||
        (err = os_rlp_put_u64(b, tx->gas_limit)) != OS_OK ||
        (err = os_rlp_put_bytes(b, tx->to, tx->has_to ? 20 : 0)) != OS_OK ||
        (err = os_rlp_put_uint(b, tx->value.be, 32)) != OS_OK ||
        (err = os_rlp_put_bytes(b, tx->data, tx->data_len)) != OS_OK)
        return err;
    os_rlp_list_begin(b, &access_list);
    return os_rlp_list_end(b, access_list);
}

static os_err encode(os_buf *b, const os_tx *tx, const os_tx_sig *sig)
{
    size_t list;
    os_err err;

    err = os_buf_append_byte(b, OS_TX_TYPE_EIP1559);
    if (err != OS_OK)
        return err;
    os_rlp_list_begin(b, &list);
    err = put_fields(b, tx);
    if (err == OS_OK && sig != NULL) {
        if (sig->y_parity > 1)
            return OS_ERR_INVALID;
        if ((err = os_rlp_put_u64(b, sig->y_parity)) == OS_OK &&
            (err = os_rlp_put_uint(b, sig->r, 32)) == OS_OK)
            err = os_rlp_put_uint(b, sig->s, 32);
    }
    if (err != OS_OK)
        return err;
    return os_rlp_list_end(b, list);
}

os_err os_tx_signing_hash(uint8_t hash[32], const os_tx *tx)
{
    os_buf b;
    os_err err;

    os_buf_init(&b, OS_TX_MAX_RAW);
    err = encode(&b, tx, NULL);
    if (err == OS_OK)
        os_keccak256(hash, b.data, b.len);
    os_buf_free(&b);
    return err;
}

os_err os_tx_encode_signed(os_buf *raw, const os_tx *tx, const os_tx_sig *sig)
{
    size_t mark = raw->len;
    os_err err = encode(raw, tx, sig);

    if (err != OS_OK)
        raw->len = mark;
    return err;
}

os_err os_tx_sign(os_buf *raw, uint8_t hash[32], const os_tx *tx, const uint8_t priv[32])
{
    uint8_t digest[32], sig65[OS_SECP_SIG_LEN];
    os_tx_sig sig;
    size_t mark = raw->len;
    os_err err;

    /* every node refuses such a transaction; better not to sign it at all */
    if (tx->max_priority_fee_per_gas > tx->max_fee_per_gas)
        return OS_ERR_INVALID;
    err = os_tx_signing_hash(digest, tx);
    if (err != OS_OK)
        return err;
    err = os_secp_sign(sig65, priv, digest);
    if (err != OS_OK)
        return err;
    if (sig65[64] != 27 && sig65[64] != 28)
        return OS_ERR_INTERNAL;
    memcpy(sig.r, sig65, 32);
    memcpy(sig.s, sig65 + 32, 32);
    sig.y_parity = (uint8_t)(sig65[64] - 27);
    err = os_tx_encode_signed(raw, tx, &sig);
    if (err != OS_OK)
        return err;
    os_keccak256(hash, raw->data + mark, raw->len - mark);
    return OS_OK;
}

static os_err next(os_rlp_iter *it, os_rlp_item *item, bool want_list)
{
    os_err err = os_rlp_iter_next(it, item);

    if (err == OS_ERR_NOTFOUND)
        return OS_ERR_INVALID;
    if (err == OS_OK && item->is_list != want_list)
        return OS_ERR_INVALID;
    return err;
}

static os_err next_u64(os_rlp_iter *it, uint64_t *v)
{
    os_rlp_item item;
    os_err err = next(it, &item, false);

    if (err == OS_OK)
        err = os_rlp_item_u64(v, &item);
    return err == OS_ERR_RANGE ? OS_ERR_UNSUPPORTED : err;
}

static os_err next_u256(os_rlp_iter *it, uint8_t be[32])
{
    os_rlp_item item;
    os_err err = next(it, &item, false);

    if (err == OS_OK)
        err = os_rlp_item_u256(be, &item);
    return err == OS_ERR_RANGE ? OS_ERR_INVALID : err;
}

os_err os_tx_decode(os_tx *tx, os_tx_sig *sig_out, uint8_t from[20], uint8_t hash[32],
                    const uint8_t *raw, size_t raw_len)
{
    os_rlp_item top, item;
    os_rlp_iter it;
    os_tx_sig sig;
    uint64_t y;
    uint8_t digest[32], sig65[OS_SECP_SIG_LEN];
    size_t n;
    os_err err;

    memset(tx, 0, sizeof(*tx));
    if (raw == NULL || raw_len < 1 || raw_len > OS_TX_MAX_RAW)
        return raw_len > OS_TX_MAX_RAW ? OS_ERR_TOOBIG : OS_ERR_INVALID;
    if (raw[0] != OS_TX_TYPE_EIP1559)
        return OS_ERR_UNSUPPORTED;
    /* a type-2 transaction nests two deep: the fields, then access-list entries */
    err = os_rlp_decode(&top, raw + 1, raw_len - 1, 4);
    if (err != OS_OK)
        return OS_ERR_INVALID;
    if (os_rlp_iter_init(&it, &top) != OS_OK)
        return OS_ERR_INVALID;
    if ((err = next_u64(&it, &tx->chain_id)) != OS_OK ||
        (err = next_u64(&it, &tx->nonce)) != OS_OK ||
        (err = next_u64(&it, &tx->max_priority_fee_per_gas)) != OS_OK ||
        (err = next_u64(&it, &tx->max_fee_per_gas)) != OS_OK ||
        (err = next_u64(&it, &tx->gas_limit)) != OS_OK)
        return err;
    if ((err = next(&it, &item, false)) != OS_OK)
        return err;
    if (item.len != 0 && item.len != 20)
        return OS_ERR_INVALID;
    tx->has_to = item.len == 20;
    if (tx->has_to)
        memcpy(tx->to, item.data, 20);
    if ((err = next_u256(&it, tx->value.be)) != OS_OK)
        return err;
    if ((err = next(&it, &item, false)) != OS_OK)
        return err;
    if (item.len > OS_TX_MAX_DATA)
        return OS_ERR_TOOBIG;
    tx->data = item.len ? item.data : NULL;
    tx->data_len = item.len;
    if ((err = next(&it, &item, true)) != OS_OK)
        return err;
    if (os_rlp_list_count(&n, &item) != OS_OK)
        return OS_ERR_INVALID;
    if (n != 0)
        return OS_ERR_UNSUPPORTED;
    if ((err = next_u64(&it, &y)) != OS_OK)
        return err;
    if (y > 1)
        return OS_ERR_INVALID;
    sig.y_parity = (uint8_t)y;
    if ((err = next_u256(&it, sig.r)) != OS_OK || (err = next_u256(&it, sig.s)) != OS_OK)
        return err;
    if (os_rlp_iter_next(&it, &item) != OS_ERR_NOTFOUND)
        return OS_ERR_INVALID;

    err = os_tx_signing_hash(digest, tx);
    if (err != OS_OK)
        return err;
    memcpy(sig65, sig.r, 32);
    memcpy(sig65 + 32, sig.s, 32);
    sig65[64] = (uint8_t)(27 + sig.y_parity);
    if (from != NULL) {
        err = os_secp_recover(from, digest, sig65);
        if (err != OS_OK)
            return OS_ERR_CRYPTO;
    }
    if (sig_out != NULL)
        *sig_out = sig;
    if (hash != NULL)
        os_keccak256(hash, raw, raw_len);
    return OS_OK;
}

os_err os_tx_create_address(uint8_t addr[20], const uint8_t sender[20], uint64_t nonce)
{
    uint8_t h[32];
    os_buf b;
    size_t list;
    os_err err;

    /* the list is at most 1 + 21 + 9 bytes */
    os_buf_init(&b, 64);
    os_rlp_list_begin(&b, &list);
    if ((err = os_rlp_put_bytes(&b, sender, 20)) == OS_OK &&
        (err = os_rlp_put_u64(&b, nonce)) == OS_OK)
        err = os_rlp_list_end(&b, list);
    if (err == OS_OK) {
        os_keccak256(h, b.data, b.len);
        memcpy(addr, h + 12, 20);
    }
    os_buf_free(&b);
    return err;
}
