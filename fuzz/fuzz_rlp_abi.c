/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the RLP and ABI decoders that read what a chain JSON-RPC node answers
 * (chain.c, escrow.c, tx.c): raw RLP (os_rlp_decode), eth_call return data in the type lists the
 * escrow and token views use (os_abi_decode), event logs (os_abi_decode_log and
 * os_escrow_decode_event, from eth_getLogs and receipts), revert data from an error reply
 * (os_abi_decode_revert with the escrow's custom-error table) and signed type-2 transactions
 * (os_tx_decode). A node is not trusted: each decoder must refuse or accept without a crash or a
 * leak. Where the headers promise it the harness checks more: RLP and transactions are strict
 * (canonical), so what decodes re-encodes to the same bytes; decoded ABI bytes point inside the
 * input and re-encode to a form that decodes and encodes again identically; a revert message is
 * printable ASCII. The first byte picks the decoder, the second a type list, event or depth.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/abi.h"
#include "openseed/buf.h"
#include "openseed/chain.h"
#include "openseed/escrow.h"
#include "openseed/init.h"
#include "openseed/keccak.h"
#include "openseed/rlp.h"
#include "openseed/tx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)
#define ABI_CAP 64 /* value slots for one decode: the escrow's calls use at most 8 */

/* The escrow's fixed address for event decoding (any constant will do: logs name it or not). */
static const uint8_t escrow_addr[20] = {0xe5, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x00, 0x01};

/* Type lists of os_abi_decode calls: the views escrow.c reads, plus dynamic shapes the decoder
 * supports (tests/unit/test_abi.c), so offsets and lengths are exercised too. */
static const struct {
    const char *types;
    size_t k; /* top-level values */
} abi_types[] = {
    {"(address,address,address,bytes32,uint128,uint128,uint64,bool)", 8}, /* getChannel */
    {"(uint64)", 1},                                                      /* lastNonce */
    {"(uint256)", 1},                                                     /* balanceOf */
    {"(string)", 1},
    {"(bytes,string,uint8[])", 3},
    {"(uint256[][],string[])", 2},
    {"((uint64,string,address),bool,(bytes32,uint128)[])", 3},
};

/* Events for os_abi_decode_log: the escrow's six (escrow.c) and two with indexed dynamic values. */
static const struct {
    const char *sig;
    size_t k; /* parameters */
} log_events[] = {
    {"ChannelOpened(bytes32 indexed,address indexed,address indexed,address,bytes32,uint128)", 6},
    {"ToppedUp(bytes32 indexed,uint128,uint128)", 3},
    {"Claimed(bytes32 indexed,uint256,uint64,bytes32,uint128,uint128)", 6},
    {"CloseRequested(bytes32 indexed,uint64)", 2},
    {"Closed(bytes32 indexed,uint128,uint128)", 3},
    {"Withdrawn(bytes32 indexed,uint128,uint128)", 3},
    {"Transfer(address indexed,address indexed,uint256)", 3},
    {"Note(string indexed,bytes,(uint64,string)[])", 3},
};
#define N_EVENTS (sizeof(log_events) / sizeof(log_events[0]))
#define N_ESCROW_EVENTS 6

/* ---- RLP: decode, walk, re-encode ---------------------------------------------------------- */

static void rlp_reencode(os_buf *b, const os_rlp_item *it, unsigned depth)
{
    if (depth > OS_RLP_MAX_DEPTH + 1)
        abort(); /* the decoder promised to bound nesting */
    if (!it->is_list) {
        uint64_t v;
        uint8_t be[32];
        if (os_rlp_put_bytes(b, it->data, it->len) != OS_OK)
            abort();
        /* a string that reads as a u64 reads as the same u256 */
        if (os_rlp_item_u64(&v, it) == OS_OK) {
            if (os_rlp_item_u256(be, it) != OS_OK)
                abort();
            for (int i = 0; i < 8; i++)
                if (be[31 - i] != (uint8_t)(v >> (8 * i)))
                    abort();
        }
        return;
    }
    size_t mark, n = 0, count;
    os_rlp_iter iter;
    os_rlp_item el;
    os_err e;

    os_rlp_list_begin(b, &mark);
    if (os_rlp_iter_init(&iter, it) != OS_OK)
        abort();
    while ((e = os_rlp_iter_next(&iter, &el)) == OS_OK) {
        rlp_reencode(b, &el, depth + 1);
        n++;
    }
    if (e != OS_ERR_NOTFOUND) /* the whole tree was validated by os_rlp_decode */
        abort();
    if (os_rlp_list_count(&count, it) != OS_OK || count != n)
        abort();
    if (os_rlp_list_end(b, mark) != OS_OK)
        abort();
}

static void fuzz_rlp(const uint8_t *in, size_t len, uint8_t sel)
{
    os_rlp_item top;
    os_buf b;
    unsigned depth = sel % (OS_RLP_MAX_DEPTH + 1);

    if (os_rlp_decode(&top, in, len, depth) != OS_OK)
        return;
    if (top.data < in || top.len > len || top.data + top.len > in + len)
        abort();
    /* canonical decoding: the only encoding of the decoded tree is the input itself */
    os_buf_init(&b, len + 64);
    rlp_reencode(&b, &top, 0);
    if (b.len != len || (len > 0 && memcmp(b.data, in, len) != 0))
        abort();
    os_buf_free(&b);
}

/* ---- ABI ----------------------------------------------------------------------------------- */

/* Decoded values are zero-copy: every byte string lies in data, every member in out[0..cap). */
static void abi_check_tree(const os_abi_value *v, const os_abi_value *out, size_t cap,
                           const uint8_t *data, size_t len, unsigned depth)
{
    if (depth > OS_ABI_MAX_DEPTH + 2)
        abort();
    switch (v->kind) {
    case OS_ABI_UINT:
    case OS_ABI_ADDRESS:
    case OS_ABI_BOOL:
    case OS_ABI_FIXED_BYTES:
        break;
    case OS_ABI_BYTES:
    case OS_ABI_STRING:
        if (v->u.bytes.len > len)
            abort();
        if (v->u.bytes.len > 0 &&
            (v->u.bytes.p < data || v->u.bytes.p + v->u.bytes.len > data + len))
            abort();
        break;
    case OS_ABI_TUPLE:
    case OS_ABI_ARRAY:
        if (v->u.list.n > cap)
            abort();
        if (v->u.list.n > 0 &&
            (v->u.list.items < out || v->u.list.items + v->u.list.n > out + cap))
            abort();
        for (size_t i = 0; i < v->u.list.n; i++)
            abi_check_tree(&v->u.list.items[i], out, cap, data, len, depth + 1);
        break;
    default:
        abort();
    }
}

static void fuzz_abi(const uint8_t *in, size_t len, uint8_t sel)
{
    size_t t = sel % (sizeof(abi_types) / sizeof(abi_types[0]));
    const char *types = abi_types[t].types;
    size_t k = abi_types[t].k;
    os_abi_value *out, *out2;
    os_buf b1, b2;

    out = calloc(ABI_CAP, sizeof(*out));
    out2 = calloc(ABI_CAP, sizeof(*out2));
    if (out == NULL || out2 == NULL)
        goto done;
    if (os_abi_decode(out, ABI_CAP, types, in, len) != OS_OK)
        goto done;
    for (size_t i = 0; i < k; i++)
        abi_check_tree(&out[i], out, ABI_CAP, in, len, 0);
    /* what decoded fits its types: it encodes, and that encoding is a fixed point */
    /* values may share data through offsets: room for every slot to hold all of it */
    os_buf_init(&b1, ABI_CAP * (len + 96) + 4096);
    os_buf_init(&b2, ABI_CAP * (len + 96) + 4096);
    if (os_abi_encode(&b1, types, out, k) != OS_OK)
        abort();
    if (os_abi_decode(out2, ABI_CAP, types, b1.data, b1.len) != OS_OK)
        abort();
    if (os_abi_encode(&b2, types, out2, k) != OS_OK)
        abort();
    if (b1.len != b2.len || (b1.len > 0 && memcmp(b1.data, b2.data, b1.len) != 0))
        abort();
    os_buf_free(&b1);
    os_buf_free(&b2);
done:
    free(out);
    free(out2);
}

/* Input: [sel][n_topics][flags] then n_topics (or n_topics - 1 when topic0 is supplied) topics of
 * 32 bytes, then the data. flags bit 0 set: topic0 is the event's own topic. */
static void fuzz_abi_log(const uint8_t *in, size_t len, uint8_t sel)
{
    const char *ev = log_events[sel % N_EVENTS].sig;
    size_t k = log_events[sel % N_EVENTS].k;
    uint8_t topics[5][32];
    os_abi_value out[ABI_CAP];
    size_t n_topics, first = 0;

    if (len < 2)
        return;
    n_topics = in[0] % 6;
    if ((in[1] & 1) && n_topics > 0) {
        if (os_abi_event_topic(topics[0], ev) != OS_OK)
            abort();
        first = 1;
    }
    in += 2;
    len -= 2;
    for (size_t i = first; i < n_topics; i++) {
        if (len < 32)
            return;
        memcpy(topics[i], in, 32);
        in += 32;
        len -= 32;
    }
    if (os_abi_decode_log(out, ABI_CAP, ev, (const uint8_t(*)[32])topics, n_topics, in, len) !=
        OS_OK)
        return;
    for (size_t i = 0; i < k; i++)
        abi_check_tree(&out[i], out, ABI_CAP, in, len, 0);
}

static void fuzz_revert(const uint8_t *in, size_t len, uint8_t sel)
{
    os_abi_revert r;
    const char *const *custom = os_escrow_errors();
    size_t n_custom = (sel & 1) ? OS_ESCROW_E__COUNT : 0;
    size_t n;

    if (len > OS_CHAIN_REVERT_MAX) /* chain.c keeps at most this much */
        return;
    (void)os_abi_decode_revert(&r, in, len, custom, n_custom);
    /* out is always filled: a bounded, printable, NUL-terminated message */
    n = strnlen(r.message, sizeof(r.message));
    if (n == sizeof(r.message))
        abort();
    for (size_t i = 0; i < n; i++)
        if (r.message[i] < 0x20 || r.message[i] > 0x7e)
            abort();
    if (r.kind > OS_ABI_REVERT_UNKNOWN)
        abort();
    if (r.kind == OS_ABI_REVERT_CUSTOM && r.custom_index >= n_custom)
        abort();
}

static void fuzz_tx(const uint8_t *in, size_t len)
{
    os_tx tx;
    os_tx_sig sig;
    uint8_t from[20], hash[32], h2[32];
    os_buf b;

    if (os_tx_decode(&tx, &sig, from, hash, in, len) != OS_OK)
        return;
    if (sig.y_parity > 1 || tx.data_len > len || (tx.data_len > 0 && tx.data == NULL))
        abort();
    /* strict parsing: re-encoding the parsed transaction gives back the raw bytes and hash */
    os_buf_init(&b, OS_TX_MAX_RAW);
    if (os_tx_encode_signed(&b, &tx, &sig) != OS_OK)
        abort();
    if (b.len != len || memcmp(b.data, in, len) != 0)
        abort();
    os_keccak256(h2, in, len);
    if (memcmp(h2, hash, 32) != 0)
        abort();
    os_buf_free(&b);
}

/* Input: [sel][n_topics][flags] topics… data. flags bit 0: topic0 is the sel-th escrow event's;
 * bit 1: the log comes from another address. */
static void fuzz_escrow_event(const uint8_t *in, size_t len, uint8_t sel)
{
    os_chain_log log;
    os_escrow_event ev;
    size_t first = 0;
    uint8_t flags;
    os_err e;

    if (len < 2)
        return;
    flags = in[1];
    memset(&log, 0, sizeof(log));
    memcpy(log.address, escrow_addr, 20);
    if (flags & 2)
        log.address[19] ^= 0xff;
    log.n_topics = in[0] % 5; /* chain.c keeps at most four topics */
    if ((flags & 1) && log.n_topics > 0) {
        if (os_abi_event_topic(log.topics[0], log_events[sel % N_ESCROW_EVENTS].sig) != OS_OK)
            abort();
        first = 1;
    }
    in += 2;
    len -= 2;
    for (size_t i = first; i < log.n_topics; i++) {
        if (len < 32)
            return;
        memcpy(log.topics[i], in, 32);
        in += 32;
        len -= 32;
    }
    /* the log owns a copy of its data, as chain.c's logs do */
    if (len > 0) {
        if ((log.data = malloc(len)) == NULL)
            return;
        memcpy(log.data, in, len);
    }
    log.data_len = len;
    log.block_number = 7;
    log.log_index = 3;
    e = os_escrow_decode_event(&ev, &log, escrow_addr);
    if (e == OS_OK) {
        if (ev.kind < OS_ESCROW_EV_OPENED || ev.kind > OS_ESCROW_EV_WITHDRAWN ||
            ev.block_number != 7 || ev.log_index != 3 || (flags & 2))
            abort();
    } else if (ev.kind != 0) { /* ev is zeroed on error */
        abort();
    }
    free(log.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;

    if (size < 2 || size > MAX_INPUT)
        return 0;
    if (!inited) {
        if (os_init() != OS_OK)
            abort();
        inited = 1;
    }
    switch (data[0] % 6) {
    case 0:
        fuzz_rlp(data + 2, size - 2, data[1]);
        break;
    case 1:
        fuzz_abi(data + 2, size - 2, data[1]);
        break;
    case 2:
        fuzz_abi_log(data + 2, size - 2, data[1]);
        break;
    case 3:
        fuzz_revert(data + 2, size - 2, data[1]);
        break;
    case 4:
        fuzz_tx(data + 2, size - 2);
        break;
    default:
        fuzz_escrow_event(data + 2, size - 2, data[1]);
        break;
    }
    return 0;
}
