/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Solidity contract ABI (https://docs.soliditylang.org/en/latest/abi-spec.html) for the types
 * OpenSeed talks to its contracts in: uintN (N = 8..256), address, bool, bytesN (N = 1..32), bytes,
 * string, tuples "(…)" and dynamic arrays "T[]" of any of them. Signed integers and fixed-size
 * arrays are refused with OS_ERR_UNSUPPORTED.
 *
 * Types are given as canonical text, exactly as the selector hashes it
 * ("transfer(address,uint256)", no spaces, no "uint" alias), so the one string both names the
 * function and says how to encode and decode: a value whose kind does not match its type, or a uint
 * that does not fit in N bits, is refused before anything is written. Decoding is zero-copy (bytes
 * and strings point into the caller's data) and strict: dirty high bits, a bool other than 0/1,
 * non-zero padding, and offsets or lengths that leave the data are all errors. As in Solidity's
 * abi.decode, bytes after the last value are ignored.
 *
 * Also: event-log decoding, and revert data decoding (Error(string), Panic(uint256), and custom
 * errors from a table the caller supplies). uint256 values are os_u256 (u256.h).
 */
#ifndef OPENSEED_ABI_H
#define OPENSEED_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/buf.h"
#include "openseed/err.h"
#include "openseed/u256.h"

/* ---- values ------------------------------------------------------------------------------ */

#define OS_ABI_MAX_TYPES 64 /* type nodes in one signature */
#define OS_ABI_MAX_DEPTH 8  /* nesting of tuples and arrays */
#define OS_ABI_MAX_SIG 1024 /* bytes in a signature or type list */

typedef enum os_abi_kind {
    OS_ABI_UINT = 1,    /* uintN */
    OS_ABI_ADDRESS,     /* address */
    OS_ABI_BOOL,        /* bool */
    OS_ABI_FIXED_BYTES, /* bytesN (and, in decoded logs, the hash topic of an indexed dynamic value)
                         */
    OS_ABI_BYTES,       /* bytes */
    OS_ABI_STRING,      /* string */
    OS_ABI_TUPLE,       /* (T1,T2,…) */
    OS_ABI_ARRAY,       /* T[] */
} os_abi_kind;

/* One ABI value. Encoding borrows the caller's bytes and items; decoding points into the data. */
typedef struct os_abi_value {
    os_abi_kind kind;
    union {
        os_u256 uint;
        uint8_t address[20];
        bool boolean;
        uint8_t fixed[32]; /* bytesN left-aligned, the rest zero */
        struct {
            const uint8_t *p; /* bytes, or string (UTF-8, not NUL-terminated) */
            size_t len;
        } bytes;
        struct {
            const struct os_abi_value *items; /* tuple members or array elements */
            size_t n;
        } list;
    } u;
} os_abi_value;

static inline os_abi_value os_abi_uint64(uint64_t v)
{
    os_abi_value x = {.kind = OS_ABI_UINT};
    os_u256_from_u64(&x.u.uint, v);
    return x;
}

static inline os_abi_value os_abi_uint128(unsigned __int128 v)
{
    os_abi_value x = {.kind = OS_ABI_UINT};
    os_u256_from_u128(&x.u.uint, v);
    return x;
}

static inline os_abi_value os_abi_uint256(const os_u256 *v)
{
    os_abi_value x = {.kind = OS_ABI_UINT};
    x.u.uint = *v;
    return x;
}

static inline os_abi_value os_abi_address(const uint8_t addr[20])
{
    os_abi_value x = {.kind = OS_ABI_ADDRESS};
    for (int i = 0; i < 20; i++)
        x.u.address[i] = addr[i];
    return x;
}

static inline os_abi_value os_abi_bool(bool b)
{
    os_abi_value x = {.kind = OS_ABI_BOOL};
    x.u.boolean = b;
    return x;
}

static inline os_abi_value os_abi_bytes32(const uint8_t b[32])
{
    os_abi_value x = {.kind = OS_ABI_FIXED_BYTES};
    for (int i = 0; i < 32; i++)
        x.u.fixed[i] = b[i];
    return x;
}

static inline os_abi_value os_abi_bytes(const uint8_t *p, size_t len)
{
    os_abi_value x = {.kind = OS_ABI_BYTES};
    x.u.bytes.p = p;
    x.u.bytes.len = len;
    return x;
}

/* s must be NUL-terminated; the value borrows it. */
os_abi_value os_abi_string(const char *s);

static inline os_abi_value os_abi_tuple(const os_abi_value *items, size_t n)
{
    os_abi_value x = {.kind = OS_ABI_TUPLE};
    x.u.list.items = items;
    x.u.list.n = n;
    return x;
}

static inline os_abi_value os_abi_array(const os_abi_value *items, size_t n)
{
    os_abi_value x = {.kind = OS_ABI_ARRAY};
    x.u.list.items = items;
    x.u.list.n = n;
    return x;
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* The 4-byte selector keccak256(signature)[0..4) of a canonical "name(types)". OS_ERR_INVALID
 * when the signature is not canonical. */
OS_WUR os_err os_abi_selector(uint8_t sel[4], const char *signature);

/*
 * Appends the encoding of vals[0..n) as the tuple type list types, e.g. "(address,uint64)"
 * (constructor arguments, or abi.encode). OS_ERR_INVALID when a value does not match its type,
 * OS_ERR_UNSUPPORTED for types outside the list above, OS_ERR_TOOBIG past out's cap.
 * On error out is left as it was.
 */
OS_WUR os_err os_abi_encode(os_buf *out, const char *types, const os_abi_value *vals, size_t n);

/* Appends selector || encoding of args for the canonical signature "name(types)". */
OS_WUR os_err os_abi_encode_call(os_buf *out, const char *signature, const os_abi_value *args,
                                 size_t n);

/* ---- decoding ---------------------------------------------------------------------------- */

/*
 * Decodes data[0..len) as the tuple type list types, e.g. "(address,bool,uint128)". The k
 * top-level values land in out[0..k); members of tuples and arrays are placed after them, so
 * out_cap bounds the whole tree (OS_ERR_TOOBIG when it is too small). Bytes and strings point into
 * data, which must outlive out. OS_ERR_INVALID for malformed or non-canonical data;
 * OS_ERR_NOTFOUND when data is empty but types is not (what a call to an address without code
 * returns).
 */
OS_WUR os_err os_abi_decode(os_abi_value *out, size_t out_cap, const char *types,
                            const uint8_t *data, size_t len);

/*
 * topic0 of an event: keccak256 of its canonical signature. event may mark parameters
 * " indexed", e.g. "Transfer(address indexed,address indexed,uint256)"; the marks are not hashed.
 */
OS_WUR os_err os_abi_event_topic(uint8_t topic[32], const char *event);

/*
 * Decodes one log of event (with " indexed" marks as above) from its topics and data. Checks that
 * topics[0] is the event's topic and that there is one more topic for each indexed parameter.
 * Parameters come back in declaration order in out[0..k); an indexed bytes, string, tuple or
 * array comes back as OS_ABI_FIXED_BYTES holding its keccak256 topic, since that is all a log has.
 */
OS_WUR os_err os_abi_decode_log(os_abi_value *out, size_t out_cap, const char *event,
                                const uint8_t (*topics)[32], size_t n_topics, const uint8_t *data,
                                size_t len);

/* ---- revert data ------------------------------------------------------------------------- */

#define OS_ABI_REVERT_MSG_LEN 256

typedef enum os_abi_revert_kind {
    OS_ABI_REVERT_EMPTY = 0, /* no data: revert() or require(cond) without a reason */
    OS_ABI_REVERT_ERROR,     /* Error(string), selector 0x08c379a0 */
    OS_ABI_REVERT_PANIC,     /* Panic(uint256), selector 0x4e487b71 */
    OS_ABI_REVERT_CUSTOM,    /* one of the caller's custom errors */
    OS_ABI_REVERT_UNKNOWN,   /* anything else */
} os_abi_revert_kind;

typedef struct os_abi_revert {
    os_abi_revert_kind kind;
    uint64_t panic_code; /* OS_ABI_REVERT_PANIC (UINT64_MAX if the code does not fit) */
    size_t custom_index; /* OS_ABI_REVERT_CUSTOM: index into the caller's table */
    char message[OS_ABI_REVERT_MSG_LEN]; /* printable ASCII, NUL-terminated, truncated with "..." */
} os_abi_revert;

/*
 * Decodes revert data into a kind and a readable message: the reason string for Error(string),
 * "panic 0x11: arithmetic overflow or underflow" for Panic, "Name(arg, …)" for a custom error whose
 * canonical signature is in custom[0..n_custom), "unknown error 0x<selector>" otherwise. Bytes
 * outside printable ASCII in a reason are shown as '?'. OS_ERR_INVALID when data carries a known
 * selector but is malformed (out->message says so); out is always filled.
 */
OS_WUR os_err os_abi_decode_revert(os_abi_revert *out, const uint8_t *data, size_t len,
                                   const char *const *custom, size_t n_custom);

#endif
