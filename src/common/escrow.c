/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OpenSeedChannels escrow bindings (escrow.h): voucher and EIP-3009 digests built from fixed
 * 32-byte words, calldata through the ABI encoder with each function's canonical signature (so
 * the selector and the encoding come from the one string the contract's ABI also hashes), channel
 * reads and event decoding through the strict ABI decoder, and amounts narrowed from
 * uint128/uint256 to uint64 only when they fit.
 */
#include "openseed/escrow.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "openseed/abi.h"
#include "openseed/ct.h"
#include "openseed/eip712.h"
#include "openseed/keccak.h"
#include "openseed/secp.h"

/* ---- small helpers ----------------------------------------------------------------------- */

static void word_u64(uint8_t w[32], uint64_t v)
{
    memset(w, 0, 24);
    for (int i = 0; i < 8; i++)
        w[31 - i] = (uint8_t)(v >> (8 * i));
}

static void word_addr(uint8_t w[32], const uint8_t a[20])
{
    memset(w, 0, 12);
    memcpy(w + 12, a, 20);
}

static void absorb_u64(os_keccak_ctx *k, uint64_t v)
{
    uint8_t w[32];
    word_u64(w, v);
    os_keccak256_update(k, w, 32);
}

static void absorb_addr(os_keccak_ctx *k, const uint8_t a[20])
{
    uint8_t w[32];
    word_addr(w, a);
    os_keccak256_update(k, w, 32);
}

/* Reports a failure of this module's own (not the node's) when the caller asked for details. */
#define err_set(e, kind, ...)                                                                      \
    do {                                                                                           \
        if ((e) != NULL) {                                                                         \
            os_chain_err_reset(e);                                                                 \
            os_chain_err_set((e), (kind), __VA_ARGS__);                                            \
        }                                                                                          \
    } while (0)

/* A uint value decoded by the ABI decoder as uint64, or OS_ERR_RANGE. */
static os_err to_u64(uint64_t *out, const os_abi_value *v)
{
    if (v->kind != OS_ABI_UINT)
        return OS_ERR_INVALID;
    return os_u256_to_u64(out, &v->u.uint);
}

/* ---- vouchers ---------------------------------------------------------------------------- */

void os_voucher_digest_ds(uint8_t out[32], const os_voucher *v, const uint8_t domain[32])
{
    uint8_t sh[32];

    os_eip712_spending_auth_hash(sh, v->channel_id, v->cumulative_amount, v->nonce,
                                 v->metadata_hash);
    os_eip712_digest(out, domain, sh);
}

void os_voucher_digest(uint8_t out[32], const os_voucher *v, uint64_t chain_id,
                       const uint8_t escrow[20])
{
    uint8_t ds[32];

    os_eip712_channels_domain(ds, chain_id, escrow);
    os_voucher_digest_ds(out, v, ds);
}

os_err os_voucher_sign_ds(os_voucher *v, const uint8_t priv[32], const uint8_t domain[32])
{
    uint8_t digest[32];
    os_err e;

    if (v == NULL || priv == NULL || domain == NULL)
        return OS_ERR_INVALID;
    os_voucher_digest_ds(digest, v, domain);
    e = os_secp_sign(v->sig, priv, digest);
    if (e != OS_OK)
        memset(v->sig, 0, sizeof(v->sig));
    return e;
}

os_err os_voucher_sign(os_voucher *v, const uint8_t priv[32], uint64_t chain_id,
                       const uint8_t escrow[20])
{
    uint8_t ds[32];

    if (escrow == NULL)
        return OS_ERR_INVALID;
    os_eip712_channels_domain(ds, chain_id, escrow);
    return os_voucher_sign_ds(v, priv, ds);
}

os_err os_voucher_verify_ds(const os_voucher *v, const uint8_t expected_signer[20],
                            const uint8_t domain[32])
{
    uint8_t digest[32];

    if (v == NULL || expected_signer == NULL || domain == NULL)
        return OS_ERR_INVALID;
    /* the contract takes only 27/28 (os_secp_* would also take 0/1) */
    if (v->sig[64] != 27 && v->sig[64] != 28)
        return OS_ERR_CRYPTO;
    os_voucher_digest_ds(digest, v, domain);
    return os_secp_verify(expected_signer, digest, v->sig) == OS_OK ? OS_OK : OS_ERR_CRYPTO;
}

os_err os_voucher_verify(const os_voucher *v, const uint8_t expected_signer[20], uint64_t chain_id,
                         const uint8_t escrow[20])
{
    uint8_t ds[32];

    if (escrow == NULL)
        return OS_ERR_INVALID;
    os_eip712_channels_domain(ds, chain_id, escrow);
    return os_voucher_verify_ds(v, expected_signer, ds);
}

/* ---- channel ids and opening -------------------------------------------------------------- */

void os_escrow_channel_id(uint8_t out[32], uint64_t chain_id, const uint8_t escrow[20],
                          const uint8_t payer[20], const uint8_t seller[20], const uint8_t salt[32])
{
    os_keccak_ctx k;

    os_keccak256_init(&k);
    absorb_u64(&k, chain_id);
    absorb_addr(&k, escrow);
    absorb_addr(&k, payer);
    absorb_addr(&k, seller);
    os_keccak256_update(&k, salt, 32);
    os_keccak256_final(&k, out);
}

void os_escrow_open_auth_nonce(uint8_t out[32], const uint8_t channel_id[32],
                               const uint8_t signer[20], const uint8_t commitment[32])
{
    os_keccak_ctx k;

    os_keccak256_init(&k);
    os_keccak256_update(&k, channel_id, 32);
    absorb_addr(&k, signer);
    os_keccak256_update(&k, commitment, 32);
    os_keccak256_final(&k, out);
}

void os_token_domain(uint8_t out[32], const char *name, const char *version, uint64_t chain_id,
                     const uint8_t token[20])
{
    os_eip712_domain d;

    memset(&d, 0, sizeof(d));
    d.name = name;
    d.version = version;
    d.chain_id = chain_id;
    d.has_chain_id = 1;
    memcpy(d.verifying_contract, token, 20);
    d.has_verifying_contract = 1;
    os_eip712_domain_separator(out, &d);
}

void os_eip3009_receive_digest(uint8_t out[32], const os_eip3009_auth *a,
                               const uint8_t token_domain[32])
{
    static const char type[] = "ReceiveWithAuthorization(address from,address to,uint256 value,"
                               "uint256 validAfter,uint256 validBefore,bytes32 nonce)";
    uint8_t th[32], sh[32];
    os_keccak_ctx k;

    os_keccak256(th, type, sizeof(type) - 1);
    os_keccak256_init(&k);
    os_keccak256_update(&k, th, 32);
    absorb_addr(&k, a->from);
    absorb_addr(&k, a->to);
    absorb_u64(&k, a->value);
    absorb_u64(&k, a->valid_after);
    absorb_u64(&k, a->valid_before);
    os_keccak256_update(&k, a->nonce, 32);
    os_keccak256_final(&k, sh);
    os_eip712_digest(out, token_domain, sh);
}

os_err os_escrow_sign_open_auth(os_escrow_open_auth *out, uint8_t channel_id[32],
                                const os_escrow_open_args *o, const uint8_t payer_priv[32],
                                uint64_t chain_id, const uint8_t escrow[20],
                                const uint8_t token_domain[32], uint64_t valid_after,
                                uint64_t valid_before)
{
    os_eip3009_auth a;
    uint8_t id[32], digest[32];
    os_err e;

    if (out == NULL || o == NULL || payer_priv == NULL || escrow == NULL || token_domain == NULL)
        return OS_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (valid_after >= valid_before)
        return OS_ERR_INVALID;
    memset(&a, 0, sizeof(a));
    if (os_secp_address(a.from, payer_priv) != OS_OK)
        return OS_ERR_INVALID;
    os_escrow_channel_id(id, chain_id, escrow, a.from, o->seller, o->salt);
    os_escrow_open_auth_nonce(a.nonce, id, o->signer, o->commitment);
    memcpy(a.to, escrow, 20);
    a.value = o->amount;
    a.valid_after = valid_after;
    a.valid_before = valid_before;
    os_eip3009_receive_digest(digest, &a, token_domain);
    e = os_secp_sign(out->sig, payer_priv, digest);
    if (e != OS_OK) {
        memset(out, 0, sizeof(*out));
        return e;
    }
    memcpy(out->from, a.from, 20);
    out->valid_after = valid_after;
    out->valid_before = valid_before;
    if (channel_id != NULL)
        memcpy(channel_id, id, 32);
    return OS_OK;
}

/* ---- calldata ---------------------------------------------------------------------------- */

#define SIG_OPEN "open(address,address,bytes32,uint128,bytes32)"
#define SIG_OPEN_AUTH                                                                              \
    "openWithAuthorization(address,address,bytes32,uint128,bytes32,address,uint256,uint256,bytes)"
#define SIG_TOP_UP "topUp(bytes32,uint128)"
#define SIG_CLAIM "claim(bytes32,uint256,uint64,bytes32,bytes)"
#define SIG_CLOSE "close(bytes32,uint256,uint64,bytes32,bytes)"
#define SIG_REQUEST_CLOSE "requestClose(bytes32)"
#define SIG_WITHDRAW "withdraw(bytes32)"
#define SIG_GET_CHANNEL "getChannel(bytes32)"
#define SIG_LAST_NONCE "lastNonce(bytes32)"
#define SIG_HASH_AUTH "hashSpendingAuth(bytes32,uint256,uint64,bytes32)"

static os_err encode_open_args(os_abi_value a[5], const os_escrow_open_args *o)
{
    if (o == NULL)
        return OS_ERR_INVALID;
    a[0] = os_abi_address(o->seller);
    a[1] = os_abi_address(o->signer);
    a[2] = os_abi_bytes32(o->commitment);
    a[3] = os_abi_uint64(o->amount);
    a[4] = os_abi_bytes32(o->salt);
    return OS_OK;
}

os_err os_escrow_encode_open(os_buf *out, const os_escrow_open_args *o)
{
    os_abi_value a[5];

    if (out == NULL || encode_open_args(a, o) != OS_OK)
        return OS_ERR_INVALID;
    return os_abi_encode_call(out, SIG_OPEN, a, 5);
}

os_err os_escrow_encode_open_with_auth(os_buf *out, const os_escrow_open_args *o,
                                       const os_escrow_open_auth *auth)
{
    os_abi_value a[9];

    if (out == NULL || auth == NULL || encode_open_args(a, o) != OS_OK)
        return OS_ERR_INVALID;
    a[5] = os_abi_address(auth->from);
    a[6] = os_abi_uint64(auth->valid_after);
    a[7] = os_abi_uint64(auth->valid_before);
    a[8] = os_abi_bytes(auth->sig, sizeof(auth->sig));
    return os_abi_encode_call(out, SIG_OPEN_AUTH, a, 9);
}

os_err os_escrow_encode_top_up(os_buf *out, const uint8_t channel_id[32], uint64_t amount)
{
    os_abi_value a[2];

    if (out == NULL || channel_id == NULL)
        return OS_ERR_INVALID;
    a[0] = os_abi_bytes32(channel_id);
    a[1] = os_abi_uint64(amount);
    return os_abi_encode_call(out, SIG_TOP_UP, a, 2);
}

/* claim and close share their arguments; sig_len 0 is the no-voucher close. */
static os_err encode_voucher_call(os_buf *out, const char *sig, const os_voucher *v, size_t sig_len)
{
    os_abi_value a[5];

    if (out == NULL || v == NULL)
        return OS_ERR_INVALID;
    a[0] = os_abi_bytes32(v->channel_id);
    a[1] = os_abi_uint64(v->cumulative_amount);
    a[2] = os_abi_uint64(v->nonce);
    a[3] = os_abi_bytes32(v->metadata_hash);
    a[4] = os_abi_bytes(v->sig, sig_len);
    return os_abi_encode_call(out, sig, a, 5);
}

os_err os_escrow_encode_claim(os_buf *out, const os_voucher *v)
{
    return encode_voucher_call(out, SIG_CLAIM, v, sizeof(v->sig));
}

os_err os_escrow_encode_close(os_buf *out, const os_voucher *v)
{
    return encode_voucher_call(out, SIG_CLOSE, v, sizeof(v->sig));
}

os_err os_escrow_encode_close_empty(os_buf *out, const uint8_t channel_id[32])
{
    os_voucher v;

    if (channel_id == NULL)
        return OS_ERR_INVALID;
    memset(&v, 0, sizeof(v));
    memcpy(v.channel_id, channel_id, 32);
    return encode_voucher_call(out, SIG_CLOSE, &v, 0);
}

static os_err encode_id_call(os_buf *out, const char *sig, const uint8_t channel_id[32])
{
    os_abi_value a;

    if (out == NULL || channel_id == NULL)
        return OS_ERR_INVALID;
    a = os_abi_bytes32(channel_id);
    return os_abi_encode_call(out, sig, &a, 1);
}

os_err os_escrow_encode_request_close(os_buf *out, const uint8_t channel_id[32])
{
    return encode_id_call(out, SIG_REQUEST_CLOSE, channel_id);
}

os_err os_escrow_encode_withdraw(os_buf *out, const uint8_t channel_id[32])
{
    return encode_id_call(out, SIG_WITHDRAW, channel_id);
}

os_err os_escrow_encode_get_channel(os_buf *out, const uint8_t channel_id[32])
{
    return encode_id_call(out, SIG_GET_CHANNEL, channel_id);
}

os_err os_escrow_encode_last_nonce(os_buf *out, const uint8_t channel_id[32])
{
    return encode_id_call(out, SIG_LAST_NONCE, channel_id);
}

os_err os_escrow_encode_hash_spending_auth(os_buf *out, const os_voucher *v)
{
    os_abi_value a[4];

    if (out == NULL || v == NULL)
        return OS_ERR_INVALID;
    a[0] = os_abi_bytes32(v->channel_id);
    a[1] = os_abi_uint64(v->cumulative_amount);
    a[2] = os_abi_uint64(v->nonce);
    a[3] = os_abi_bytes32(v->metadata_hash);
    return os_abi_encode_call(out, SIG_HASH_AUTH, a, 4);
}

static os_err encode_addr_amount(os_buf *out, const char *sig, const uint8_t addr[20],
                                 uint64_t amount)
{
    os_abi_value a[2];

    if (out == NULL || addr == NULL)
        return OS_ERR_INVALID;
    a[0] = os_abi_address(addr);
    a[1] = os_abi_uint64(amount);
    return os_abi_encode_call(out, sig, a, 2);
}

os_err os_erc20_encode_approve(os_buf *out, const uint8_t spender[20], uint64_t amount)
{
    return encode_addr_amount(out, "approve(address,uint256)", spender, amount);
}

os_err os_erc20_encode_transfer(os_buf *out, const uint8_t to[20], uint64_t amount)
{
    return encode_addr_amount(out, "transfer(address,uint256)", to, amount);
}

os_err os_erc20_encode_mint(os_buf *out, const uint8_t to[20], uint64_t amount)
{
    return encode_addr_amount(out, "mint(address,uint256)", to, amount);
}

os_err os_erc20_encode_balance_of(os_buf *out, const uint8_t owner[20])
{
    os_abi_value a;

    if (out == NULL || owner == NULL)
        return OS_ERR_INVALID;
    a = os_abi_address(owner);
    return os_abi_encode_call(out, "balanceOf(address)", &a, 1);
}

/* ---- reads ------------------------------------------------------------------------------- */

/* eth_call of data on `to` at block (NULL: latest), decoded as types into vals. */
static os_err view_call(os_chain *ch, os_abi_value *vals, size_t n_vals, os_buf *ret,
                        os_chain_error *err, const uint8_t to[20], const os_buf *data,
                        const char *types, const char *block, const char *what)
{
    os_chain_msg msg;
    os_err e;

    memset(&msg, 0, sizeof(msg));
    msg.has_to = true;
    memcpy(msg.to, to, 20);
    msg.data = data->data;
    msg.data_len = data->len;
    os_buf_reset(ret);
    e = os_chain_call(ch, ret, err, &msg, block);
    if (e != OS_OK)
        return e;
    e = os_abi_decode(vals, n_vals, types, ret->data, ret->len);
    if (e == OS_ERR_NOTFOUND) {
        err_set(err, OS_CHAIN_FAIL_RESPONSE, "%s: no contract at that address", what);
        return OS_ERR_INVALID;
    }
    if (e != OS_OK) {
        err_set(err, OS_CHAIN_FAIL_RESPONSE, "%s: malformed return data (%zu bytes)", what,
                ret->len);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

os_err os_escrow_get_channel(os_chain *ch, os_channel_state *out, os_chain_error *err,
                             const uint8_t escrow[20], const uint8_t channel_id[32])
{
    os_abi_value v[8];
    char block[OS_CHAIN_QUANTITY_LEN];
    os_buf data, ret;
    uint64_t head;
    os_err e;

    if (out == NULL)
        return OS_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (ch == NULL || escrow == NULL || channel_id == NULL)
        return OS_ERR_INVALID;
    /* both views at one block, so the nonce belongs to the claimed total beside it */
    e = os_chain_block_number(ch, &head, err);
    if (e != OS_OK)
        return e;
    os_chain_quantity_format(block, head);
    os_buf_init(&data, 64);
    os_buf_init(&ret, 4096);
    e = os_escrow_encode_get_channel(&data, channel_id);
    if (e == OS_OK)
        e = view_call(ch, v, 8, &ret, err, escrow, &data,
                      "(address,address,address,bytes32,uint128,uint128,uint64,bool)", block,
                      "getChannel");
    if (e == OS_OK) {
        memcpy(out->payer, v[0].u.address, 20);
        memcpy(out->seller, v[1].u.address, 20);
        memcpy(out->signer, v[2].u.address, 20);
        memcpy(out->commitment, v[3].u.fixed, 32);
        out->closed = v[7].u.boolean;
        if (to_u64(&out->deposit, &v[4]) != OS_OK || to_u64(&out->claimed, &v[5]) != OS_OK ||
            to_u64(&out->close_at, &v[6]) != OS_OK) {
            err_set(err, OS_CHAIN_FAIL_RESPONSE, "getChannel: amount above uint64");
            e = OS_ERR_RANGE;
        }
    }
    if (e == OS_OK) {
        os_buf_reset(&data);
        e = os_escrow_encode_last_nonce(&data, channel_id);
        if (e == OS_OK)
            e = view_call(ch, v, 1, &ret, err, escrow, &data, "(uint64)", block, "lastNonce");
        if (e == OS_OK)
            e = to_u64(&out->last_nonce, &v[0]);
    }
    os_buf_free(&data);
    os_buf_free(&ret);
    if (e == OS_OK && os_ct_is_zero(out->payer, 20))
        e = OS_ERR_NOTFOUND;
    if (e != OS_OK)
        memset(out, 0, sizeof(*out));
    out->block = head;
    return e;
}

os_err os_erc20_balance(os_chain *ch, uint64_t *out, os_chain_error *err, const uint8_t token[20],
                        const uint8_t owner[20])
{
    os_abi_value v;
    os_buf data, ret;
    os_err e;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = 0;
    if (ch == NULL || token == NULL || owner == NULL)
        return OS_ERR_INVALID;
    os_buf_init(&data, 64);
    os_buf_init(&ret, 4096);
    e = os_erc20_encode_balance_of(&data, owner);
    if (e == OS_OK)
        e = view_call(ch, &v, 1, &ret, err, token, &data, "(uint256)", NULL, "balanceOf");
    if (e == OS_OK && (e = to_u64(out, &v)) != OS_OK)
        err_set(err, OS_CHAIN_FAIL_RESPONSE, "balanceOf: balance above uint64");
    os_buf_free(&data);
    os_buf_free(&ret);
    return e;
}

/* ---- events ------------------------------------------------------------------------------ */

static const struct {
    os_escrow_event_kind kind;
    const char *sig;
    size_t n_data; /* non-indexed words, all static */
    size_t n_vals;
} events[] = {
    {OS_ESCROW_EV_OPENED,
     "ChannelOpened(bytes32 indexed,address indexed,address indexed,address,bytes32,uint128)", 3,
     6},
    {OS_ESCROW_EV_TOPPED_UP, "ToppedUp(bytes32 indexed,uint128,uint128)", 2, 3},
    {OS_ESCROW_EV_CLAIMED, "Claimed(bytes32 indexed,uint256,uint64,bytes32,uint128,uint128)", 5, 6},
    {OS_ESCROW_EV_CLOSE_REQUESTED, "CloseRequested(bytes32 indexed,uint64)", 1, 2},
    {OS_ESCROW_EV_CLOSED, "Closed(bytes32 indexed,uint128,uint128)", 2, 3},
    {OS_ESCROW_EV_WITHDRAWN, "Withdrawn(bytes32 indexed,uint128,uint128)", 2, 3},
};

static os_err fill_event(os_escrow_event *ev, const os_abi_value *v)
{
    memcpy(ev->channel_id, v[0].u.fixed, 32);
    switch (ev->kind) {
    case OS_ESCROW_EV_OPENED:
        memcpy(ev->payer, v[1].u.address, 20);
        memcpy(ev->seller, v[2].u.address, 20);
        memcpy(ev->signer, v[3].u.address, 20);
        memcpy(ev->commitment, v[4].u.fixed, 32);
        return to_u64(&ev->deposit, &v[5]);
    case OS_ESCROW_EV_TOPPED_UP:
        if (to_u64(&ev->amount, &v[1]) != OS_OK)
            return OS_ERR_RANGE;
        return to_u64(&ev->deposit, &v[2]);
    case OS_ESCROW_EV_CLAIMED:
        memcpy(ev->metadata_hash, v[3].u.fixed, 32);
        if (to_u64(&ev->cumulative_amount, &v[1]) != OS_OK || to_u64(&ev->nonce, &v[2]) != OS_OK ||
            to_u64(&ev->amount, &v[4]) != OS_OK)
            return OS_ERR_RANGE;
        return to_u64(&ev->claimed, &v[5]);
    case OS_ESCROW_EV_CLOSE_REQUESTED:
        return to_u64(&ev->close_at, &v[1]);
    case OS_ESCROW_EV_CLOSED:
    case OS_ESCROW_EV_WITHDRAWN:
        if (to_u64(&ev->claimed, &v[1]) != OS_OK)
            return OS_ERR_RANGE;
        return to_u64(&ev->refund, &v[2]);
    }
    return OS_ERR_INTERNAL;
}

os_err os_escrow_decode_event(os_escrow_event *ev, const os_chain_log *log,
                              const uint8_t escrow[20])
{
    os_abi_value v[6];
    uint8_t topic[32];
    size_t i, n = sizeof(events) / sizeof(events[0]);
    os_err e;

    if (ev == NULL)
        return OS_ERR_INVALID;
    memset(ev, 0, sizeof(*ev));
    if (log == NULL || escrow == NULL)
        return OS_ERR_INVALID;
    if (memcmp(log->address, escrow, 20) != 0 || log->n_topics == 0 || log->n_topics > 4)
        return OS_ERR_NOTFOUND;
    for (i = 0; i < n; i++) {
        if (os_abi_event_topic(topic, events[i].sig) != OS_OK)
            return OS_ERR_INTERNAL;
        if (memcmp(topic, log->topics[0], 32) == 0)
            break;
    }
    if (i == n)
        return OS_ERR_NOTFOUND;
    /* every field is a static word, so the data has exactly one word per non-indexed field */
    if (log->data_len != 32 * events[i].n_data)
        return OS_ERR_INVALID;
    e = os_abi_decode_log(v, 6, events[i].sig, (const uint8_t(*)[32])log->topics, log->n_topics,
                          log->data, log->data_len);
    if (e != OS_OK) {
        memset(ev, 0, sizeof(*ev));
        return OS_ERR_INVALID;
    }
    ev->kind = events[i].kind;
    e = fill_event(ev, v);
    if (e != OS_OK) {
        memset(ev, 0, sizeof(*ev));
        return e;
    }
    ev->block_number = log->block_number;
    ev->log_index = log->log_index;
    memcpy(ev->tx_hash, log->tx_hash, 32);
    ev->removed = log->removed;
    return OS_OK;
}

/* ---- revert reasons ---------------------------------------------------------------------- */

static const char *const error_table[OS_ESCROW_E__COUNT] = {
    [OS_ESCROW_E_ZERO_ADDRESS] = "ZeroAddress()",
    [OS_ESCROW_E_ZERO_AMOUNT] = "ZeroAmount()",
    [OS_ESCROW_E_INVALID_CLOSE_GRACE] = "InvalidCloseGrace(uint64)",
    [OS_ESCROW_E_CHANNEL_EXISTS] = "ChannelExists(bytes32)",
    [OS_ESCROW_E_CHANNEL_NOT_FOUND] = "ChannelNotFound(bytes32)",
    [OS_ESCROW_E_CHANNEL_IS_CLOSED] = "ChannelIsClosed(bytes32)",
    [OS_ESCROW_E_NOT_PAYER] = "NotPayer(address)",
    [OS_ESCROW_E_NOT_SELLER] = "NotSeller(address)",
    [OS_ESCROW_E_CLOSE_ALREADY_REQUESTED] = "CloseAlreadyRequested(uint64)",
    [OS_ESCROW_E_CLOSE_NOT_REQUESTED] = "CloseNotRequested()",
    [OS_ESCROW_E_GRACE_PERIOD_NOT_OVER] = "GracePeriodNotOver(uint64)",
    [OS_ESCROW_E_GRACE_PERIOD_OVER] = "GracePeriodOver(uint64)",
    [OS_ESCROW_E_INVALID_SIGNATURE] = "InvalidSignature()",
    [OS_ESCROW_E_WRONG_SIGNER] = "WrongSigner(address)",
    [OS_ESCROW_E_STALE_NONCE] = "StaleNonce(uint64,uint64)",
    [OS_ESCROW_E_NOTHING_TO_CLAIM] = "NothingToClaim()",
    [OS_ESCROW_E_TRANSFER_AMOUNT_MISMATCH] = "TransferAmountMismatch(uint256,uint256)",
    [OS_ESCROW_E_REENTRANT_CALL] = "ReentrancyGuardReentrantCall()",
    [OS_ESCROW_E_SAFE_ERC20_FAILED] = "SafeERC20FailedOperation(address)",
    [OS_ESCROW_E_ECDSA_INVALID_SIGNATURE] = "ECDSAInvalidSignature()",
    [OS_ESCROW_E_ECDSA_INVALID_LENGTH] = "ECDSAInvalidSignatureLength(uint256)",
    [OS_ESCROW_E_ECDSA_INVALID_S] = "ECDSAInvalidSignatureS(bytes32)",
    [OS_ESCROW_E_ERC20_INSUFFICIENT_BALANCE] = "ERC20InsufficientBalance(address,uint256,uint256)",
    [OS_ESCROW_E_ERC20_INVALID_SENDER] = "ERC20InvalidSender(address)",
    [OS_ESCROW_E_ERC20_INVALID_RECEIVER] = "ERC20InvalidReceiver(address)",
    [OS_ESCROW_E_ERC20_INSUFFICIENT_ALLOWANCE] =
        "ERC20InsufficientAllowance(address,uint256,uint256)",
    [OS_ESCROW_E_ERC20_INVALID_APPROVER] = "ERC20InvalidApprover(address)",
    [OS_ESCROW_E_ERC20_INVALID_SPENDER] = "ERC20InvalidSpender(address)",
    [OS_ESCROW_E_PERMIT_EXPIRED] = "PermitExpired(uint256)",
    [OS_ESCROW_E_INVALID_SIGNER] = "InvalidSigner(address,address)",
    [OS_ESCROW_E_AUTH_NOT_YET_VALID] = "AuthorizationNotYetValid(uint256)",
    [OS_ESCROW_E_AUTH_EXPIRED] = "AuthorizationExpired(uint256)",
    [OS_ESCROW_E_AUTH_USED_OR_CANCELED] = "AuthorizationUsedOrCanceled(address,bytes32)",
    [OS_ESCROW_E_CALLER_MUST_BE_PAYEE] = "CallerMustBePayee(address,address)",
};

const char *const *os_escrow_errors(void)
{
    return error_table;
}

void os_escrow_chain_config(os_chain_config *cfg)
{
    if (cfg == NULL)
        return;
    cfg->custom_errors = error_table;
    cfg->n_custom_errors = OS_ESCROW_E__COUNT;
}

int os_escrow_is_error(const os_chain_error *err, os_escrow_error e)
{
    uint8_t sel[4];

    /* by selector, so the answer does not depend on the table the client was given */
    if (err == NULL || (unsigned)e >= OS_ESCROW_E__COUNT || err->kind != OS_CHAIN_FAIL_REVERT ||
        err->revert_len < 4 || os_abi_selector(sel, error_table[e]) != OS_OK)
        return 0;
    return memcmp(sel, err->revert_data, 4) == 0;
}

/* ---- sending ----------------------------------------------------------------------------- */

os_err os_escrow_send(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                      const uint8_t to[20], const os_buf *data, uint64_t gas_limit)
{
    os_chain_receipt *r = NULL;
    os_err e;

    if (rc != NULL)
        *rc = NULL;
    if (s == NULL || to == NULL || data == NULL)
        return OS_ERR_INVALID;
    e = os_chain_send_and_wait(s, &r, err, to, NULL, data->data, data->len, gas_limit, 1,
                               OS_ESCROW_TX_TIMEOUT_MS);
    if (e != OS_OK)
        return e;
    if (!r->status) {
        err_set(err, OS_CHAIN_FAIL_RECEIPT, "transaction reverted on chain (block %llu)",
                (unsigned long long)r->block_number);
        e = OS_ERR_INVALID;
    }
    if (rc != NULL)
        *rc = r;
    else
        os_chain_receipt_free(r);
    return e;
}

/* Sends data (already encoded, or enc failed) and frees it. */
static os_err send_encoded(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                           const uint8_t to[20], os_buf *data, os_err enc)
{
    os_err e = enc;

    if (rc != NULL)
        *rc = NULL;
    if (e == OS_OK)
        e = os_escrow_send(s, rc, err, to, data, 0);
    else
        err_set(err, OS_CHAIN_FAIL_NONE, "cannot encode the call: %s", os_strerror(e));
    os_buf_free(data);
    return e;
}

#define CALLDATA_MAX 2048 /* the largest call here, openWithAuthorization, is 420 bytes */

os_err os_escrow_open(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                      const uint8_t escrow[20], const os_escrow_open_args *o)
{
    os_buf d;
    os_buf_init(&d, CALLDATA_MAX);
    return send_encoded(s, rc, err, escrow, &d, os_escrow_encode_open(&d, o));
}

os_err os_escrow_open_with_auth(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                                const uint8_t escrow[20], const os_escrow_open_args *o,
                                const os_escrow_open_auth *a)
{
    os_buf d;
    os_buf_init(&d, CALLDATA_MAX);
    return send_encoded(s, rc, err, escrow, &d, os_escrow_encode_open_with_auth(&d, o, a));
}

os_err os_escrow_top_up(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                        const uint8_t escrow[20], const uint8_t channel_id[32], uint64_t amount)
{
    os_buf d;
    os_buf_init(&d, CALLDATA_MAX);
    return send_encoded(s, rc, err, escrow, &d, os_escrow_encode_top_up(&d, channel_id, amount));
}

os_err os_escrow_claim(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                       const uint8_t escrow[20], const os_voucher *v)
{
    os_buf d;
    os_buf_init(&d, CALLDATA_MAX);
    return send_encoded(s, rc, err, escrow, &d, os_escrow_encode_claim(&d, v));
}

os_err os_escrow_close(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                       const uint8_t escrow[20], const uint8_t channel_id[32], const os_voucher *v)
{
    os_buf d;
    os_err enc;

    os_buf_init(&d, CALLDATA_MAX);
    if (channel_id == NULL)
        enc = OS_ERR_INVALID;
    else if (v == NULL)
        enc = os_escrow_encode_close_empty(&d, channel_id);
    else if (memcmp(v->channel_id, channel_id, 32) != 0)
        enc = OS_ERR_INVALID;
    else
        enc = os_escrow_encode_close(&d, v);
    return send_encoded(s, rc, err, escrow, &d, enc);
}

os_err os_escrow_request_close(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                               const uint8_t escrow[20], const uint8_t channel_id[32])
{
    os_buf d;
    os_buf_init(&d, CALLDATA_MAX);
    return send_encoded(s, rc, err, escrow, &d, os_escrow_encode_request_close(&d, channel_id));
}

os_err os_escrow_withdraw(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                          const uint8_t escrow[20], const uint8_t channel_id[32])
{
    os_buf d;
    os_buf_init(&d, CALLDATA_MAX);
    return send_encoded(s, rc, err, escrow, &d, os_escrow_encode_withdraw(&d, channel_id));
}

os_err os_erc20_approve(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                        const uint8_t token[20], const uint8_t spender[20], uint64_t amount)
{
    os_buf d;
    os_buf_init(&d, CALLDATA_MAX);
    return send_encoded(s, rc, err, token, &d, os_erc20_encode_approve(&d, spender, amount));
}
