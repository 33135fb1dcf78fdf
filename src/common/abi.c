/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Solidity ABI encoding and decoding driven by canonical type text. A signature is parsed once
 * into a small fixed array of type nodes (no allocation), values are checked against those nodes
 * while encoding, and decoding walks the same nodes over the data with every offset and length
 * bounded by the data's size and every nested value drawn from a caller-sized pool, so hostile
 * return data can cost neither unbounded memory nor unbounded recursion.
 */
#include "openseed/abi.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "openseed/hex.h"
#include "openseed/keccak.h"
#include "openseed/secp.h"

#define NONE 0xffff
#define WORD 32

static bool zero_prefix(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

os_abi_value os_abi_string(const char *s)
{
    os_abi_value x = {.kind = OS_ABI_STRING};
    x.u.bytes.p = (const uint8_t *)s;
    x.u.bytes.len = strlen(s);
    return x;
}

/* ---- type text ---------------------------------------------------------------------------- */

typedef struct abi_type {
    os_abi_kind kind;
    uint8_t size; /* uintN: N/8; bytesN: N */
    bool indexed; /* an event parameter marked " indexed" */
    bool dynamic;
    uint16_t child;  /* tuple: first member; array: element type */
    uint16_t next;   /* next member of the enclosing tuple */
    uint16_t nchild; /* tuple members */
    uint32_t head;   /* bytes the value takes in its tuple's head */
} abi_type;

typedef struct abi_types {
    abi_type t[OS_ABI_MAX_TYPES];
    uint16_t n;
    uint16_t root; /* the tuple that is the whole type list */
} abi_types;

typedef struct parser {
    const char *s;
    size_t pos, len;
    abi_types *T;
    bool event; /* accept " indexed" after top-level parameters */
} parser;

static os_err new_node(parser *P, os_abi_kind kind, uint16_t *idx)
{
    abi_type *t;

    if (P->T->n >= OS_ABI_MAX_TYPES)
        return OS_ERR_TOOBIG;
    *idx = P->T->n++;
    t = &P->T->t[*idx];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->child = NONE;
    t->next = NONE;
    t->head = WORD;
    t->dynamic = kind == OS_ABI_BYTES || kind == OS_ABI_STRING || kind == OS_ABI_ARRAY;
    return OS_OK;
}

/* Parses a decimal size without leading zeros; -1 if absent or malformed. */
static int parse_size(const char *s, size_t n)
{
    int v = 0;

    if (n == 0 || n > 3 || s[0] == '0')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static os_err parse_list(parser *P, unsigned depth, uint16_t *idx);

static os_err parse_elementary(parser *P, uint16_t *idx)
{
    const char *w = P->s + P->pos;
    size_t n = 0;
    int size;
    os_err err;

    while (P->pos + n < P->len && ((w[n] >= 'a' && w[n] <= 'z') || (w[n] >= '0' && w[n] <= '9')))
        n++;
    P->pos += n;
    if (n == 7 && memcmp(w, "address", 7) == 0)
        return new_node(P, OS_ABI_ADDRESS, idx);
    if (n == 4 && memcmp(w, "bool", 4) == 0)
        return new_node(P, OS_ABI_BOOL, idx);
    if (n == 6 && memcmp(w, "string", 6) == 0)
        return new_node(P, OS_ABI_STRING, idx);
    if (n == 5 && memcmp(w, "bytes", 5) == 0)
        return new_node(P, OS_ABI_BYTES, idx);
    if (n > 5 && memcmp(w, "bytes", 5) == 0) {
        size = parse_size(w + 5, n - 5);
        if (size < 1 || size > 32)
            return OS_ERR_INVALID;
        err = new_node(P, OS_ABI_FIXED_BYTES, idx);
        if (err == OS_OK)
            P->T->t[*idx].size = (uint8_t)size;
        return err;
    }
    if (n > 4 && memcmp(w, "uint", 4) == 0) {
        size = parse_size(w + 4, n - 4);
        if (size < 8 || size > 256 || size % 8 != 0)
            return OS_ERR_INVALID;
        err = new_node(P, OS_ABI_UINT, idx);
        if (err == OS_OK)
            P->T->t[*idx].size = (uint8_t)(size / 8);
        return err;
    }
    if ((n > 3 && memcmp(w, "int", 3) == 0) || (n >= 5 && memcmp(w, "fixed", 5) == 0) ||
        (n >= 6 && memcmp(w, "ufixed", 6) == 0) || (n == 8 && memcmp(w, "function", 8) == 0))
        return OS_ERR_UNSUPPORTED;
    return OS_ERR_INVALID; /* includes the non-canonical aliases "uint" and "int" */
}

static os_err parse_type(parser *P, unsigned depth, uint16_t *idx)
{
    os_err err;

    if (depth > OS_ABI_MAX_DEPTH)
        return OS_ERR_TOOBIG;
    if (P->pos < P->len && P->s[P->pos] == '(')
        err = parse_list(P, depth + 1, idx);
    else
        err = parse_elementary(P, idx);
    if (err != OS_OK)
        return err;
    while (P->pos < P->len && P->s[P->pos] == '[') {
        uint16_t arr;
        if (P->pos + 1 < P->len && P->s[P->pos + 1] >= '0' && P->s[P->pos + 1] <= '9')
            return OS_ERR_UNSUPPORTED; /* fixed-size array T[k] */
        if (P->pos + 1 >= P->len || P->s[P->pos + 1] != ']')
            return OS_ERR_INVALID;
        if (++depth > OS_ABI_MAX_DEPTH)
            return OS_ERR_TOOBIG;
        err = new_node(P, OS_ABI_ARRAY, &arr);
        if (err != OS_OK)
            return err;
        P->T->t[arr].child = *idx;
        *idx = arr;
        P->pos += 2;
    }
    return OS_OK;
}

/* Parses "(T1,T2,…)" at P->pos; depth 0 is the whole type list, nested tuples count from 1. */
static os_err parse_list(parser *P, unsigned depth, uint16_t *idx)
{
    uint16_t tup, prev = NONE, member;
    abi_type *t;
    uint32_t head = 0;
    bool dynamic = false;
    os_err err;

    if (P->pos >= P->len || P->s[P->pos] != '(')
        return OS_ERR_INVALID;
    P->pos++;
    err = new_node(P, OS_ABI_TUPLE, &tup);
    if (err != OS_OK)
        return err;
    if (P->pos < P->len && P->s[P->pos] == ')') {
        P->pos++;
        if (depth > 0) /* Solidity has no empty structs; an empty member would have no head */
            return OS_ERR_INVALID;
        P->T->t[tup].head = 0;
        *idx = tup;
        return OS_OK;
    }
    for (;;) {
        err = parse_type(P, depth, &member);
        if (err != OS_OK)
            return err;
        if (P->event && depth == 0 && P->len - P->pos >= 8 &&
            memcmp(P->s + P->pos, " indexed", 8) == 0) {
            P->T->t[member].indexed = true;
            P->pos += 8;
        }
        if (prev == NONE)
            P->T->t[tup].child = member;
        else
            P->T->t[prev].next = member;
        prev = member;
        t = &P->T->t[tup];
        t->nchild++;
        dynamic = dynamic || P->T->t[member].dynamic;
        head += P->T->t[member].head;
        if (P->pos >= P->len)
            return OS_ERR_INVALID;
        if (P->s[P->pos] == ')') {
            P->pos++;
            break;
        }
        if (P->s[P->pos] != ',')
            return OS_ERR_INVALID;
        P->pos++;
    }
    t = &P->T->t[tup];
    t->dynamic = dynamic;
    t->head = dynamic ? WORD : head;
    *idx = tup;
    return OS_OK;
}

static bool ident_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
           (!first && c >= '0' && c <= '9');
}

/* Parses "name(types)" (name_len > 0) or, with want_name false, "(types)". */
static os_err parse_sig(abi_types *T, size_t *name_len, const char *sig, bool want_name, bool event)
{
    parser P = {.s = sig, .pos = 0, .T = T, .event = event};
    os_err err;

    if (sig == NULL)
        return OS_ERR_INVALID;
    P.len = strnlen(sig, OS_ABI_MAX_SIG + 1);
    if (P.len > OS_ABI_MAX_SIG)
        return OS_ERR_TOOBIG;
    T->n = 0;
    if (want_name) {
        while (P.pos < P.len && ident_char(sig[P.pos], P.pos == 0))
            P.pos++;
        if (P.pos == 0)
            return OS_ERR_INVALID;
    }
    *name_len = P.pos;
    err = parse_list(&P, 0, &T->root);
    if (err != OS_OK)
        return err;
    return P.pos == P.len ? OS_OK : OS_ERR_INVALID;
}

typedef struct sink {
    char *p;
    size_t cap, len;
    bool trunc;
} sink;

/* Appends s[0..n); past the cap it records truncation instead (keeping room for "..."). */
static void put(sink *k, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (k->len + 4 >= k->cap) {
            k->trunc = true;
            break;
        }
        k->p[k->len++] = s[i];
    }
    k->p[k->len] = '\0';
}

static void puts_(sink *k, const char *s)
{
    put(k, s, strlen(s));
}

static void finish(sink *k)
{
    if (k->trunc && k->len + 4 <= k->cap) {
        memcpy(k->p + k->len, "...", 4);
        k->len += 3;
    }
}

static void ser_type(sink *k, const abi_types *T, uint16_t ti)
{
    const abi_type *t = &T->t[ti];
    char num[8];

    switch (t->kind) {
    case OS_ABI_UINT:
        snprintf(num, sizeof(num), "%u", (unsigned)t->size * 8);
        puts_(k, "uint");
        puts_(k, num);
        break;
    case OS_ABI_ADDRESS:
        puts_(k, "address");
        break;
    case OS_ABI_BOOL:
        puts_(k, "bool");
        break;
    case OS_ABI_FIXED_BYTES:
        snprintf(num, sizeof(num), "%u", (unsigned)t->size);
        puts_(k, "bytes");
        puts_(k, num);
        break;
    case OS_ABI_BYTES:
        puts_(k, "bytes");
        break;
    case OS_ABI_STRING:
        puts_(k, "string");
        break;
    case OS_ABI_TUPLE:
        puts_(k, "(");
        for (uint16_t c = t->child; c != NONE; c = T->t[c].next) {
            ser_type(k, T, c);
            if (T->t[c].next != NONE)
                puts_(k, ",");
        }
        puts_(k, ")");
        break;
    case OS_ABI_ARRAY:
        ser_type(k, T, t->child);
        puts_(k, "[]");
        break;
    }
}

os_err os_abi_selector(uint8_t sel[4], const char *signature)
{
    abi_types T;
    size_t name_len;
    uint8_t h[32];
    os_err err = parse_sig(&T, &name_len, signature, true, false);

    if (err != OS_OK)
        return err;
    os_keccak256(h, signature, strlen(signature));
    memcpy(sel, h, 4);
    return OS_OK;
}

/* ---- encoding ---------------------------------------------------------------------------- */

static void word_u64(uint8_t *dst, uint64_t v)
{
    memset(dst, 0, 24);
    for (int i = 31; i >= 24; i--) {
        dst[i] = (uint8_t)v;
        v >>= 8;
    }
}

static os_err enc_static(const abi_types *T, uint16_t ti, const os_abi_value *v, uint8_t *dst)
{
    const abi_type *t = &T->t[ti];
    uint32_t off = 0;
    os_err err;

    if (v->kind != t->kind)
        return OS_ERR_INVALID;
    switch (t->kind) {
    case OS_ABI_UINT:
        if (!zero_prefix(v->u.uint.be, 32u - t->size))
            return OS_ERR_RANGE;
        memcpy(dst, v->u.uint.be, 32);
        return OS_OK;
    case OS_ABI_ADDRESS:
        memset(dst, 0, 12);
        memcpy(dst + 12, v->u.address, 20);
        return OS_OK;
    case OS_ABI_BOOL:
        memset(dst, 0, 32);
        dst[31] = v->u.boolean ? 1 : 0;
        return OS_OK;
    case OS_ABI_FIXED_BYTES:
        if (!zero_prefix(v->u.fixed + t->size, 32u - t->size))
            return OS_ERR_INVALID;
        memcpy(dst, v->u.fixed, 32);
        return OS_OK;
    case OS_ABI_TUPLE:
        if (v->u.list.n != t->nchild)
            return OS_ERR_INVALID;
        for (uint16_t c = t->child, i = 0; c != NONE; c = T->t[c].next, i++) {
            err = enc_static(T, c, &v->u.list.items[i], dst + off);
            if (err != OS_OK)
                return err;
            off += T->t[c].head;
        }
        return OS_OK;
    default:
        return OS_ERR_INTERNAL;
    }
}

static os_err enc_dynamic(const abi_types *T, uint16_t ti, const os_abi_value *v, os_buf *out);

/* Appends the tuple-style encoding of n values whose types are the member chain starting at first,
 * or (repeat) n times the type first. */
static os_err enc_seq(const abi_types *T, uint16_t first, bool repeat, const os_abi_value *vals,
                      size_t n, os_buf *out)
{
    size_t start = out->len, headsz = 0, off = 0;
    uint16_t ti = first;
    os_err err;

    for (size_t i = 0; i < n; i++) {
        if (ti == NONE)
            return OS_ERR_INVALID;
        headsz += T->t[ti].head;
        if (headsz > out->max)
            return OS_ERR_TOOBIG;
        if (!repeat)
            ti = T->t[ti].next;
    }
    err = os_buf_append_zeros(out, headsz);
    if (err != OS_OK)
        return err;
    ti = first;
    for (size_t i = 0; i < n; i++) {
        const abi_type *t = &T->t[ti];
        if (t->dynamic) {
            /* out->data may move while the tail grows: address the head by offset every time */
            word_u64(out->data + start + off, out->len - start);
            err = enc_dynamic(T, ti, &vals[i], out);
        } else {
            err = enc_static(T, ti, &vals[i], out->data + start + off);
        }
        if (err != OS_OK)
            return err;
        off += t->head;
        if (!repeat)
            ti = t->next;
    }
    return OS_OK;
}

static os_err enc_dynamic(const abi_types *T, uint16_t ti, const os_abi_value *v, os_buf *out)
{
    const abi_type *t = &T->t[ti];
    uint8_t w[32];
    os_err err;

    if (v->kind != t->kind)
        return OS_ERR_INVALID;
    switch (t->kind) {
    case OS_ABI_BYTES:
    case OS_ABI_STRING:
        if (v->u.bytes.len > 0 && v->u.bytes.p == NULL)
            return OS_ERR_INVALID;
        word_u64(w, v->u.bytes.len);
        err = os_buf_append(out, w, 32);
        if (err == OS_OK)
            err = os_buf_append(out, v->u.bytes.p, v->u.bytes.len);
        if (err == OS_OK)
            err = os_buf_append_zeros(out, (32 - v->u.bytes.len % 32) % 32);
        return err;
    case OS_ABI_ARRAY:
        if (v->u.list.n > 0 && v->u.list.items == NULL)
            return OS_ERR_INVALID;
        word_u64(w, v->u.list.n);
        err = os_buf_append(out, w, 32);
        if (err != OS_OK)
            return err;
        return enc_seq(T, t->child, true, v->u.list.items, v->u.list.n, out);
    case OS_ABI_TUPLE:
        if (v->u.list.n != t->nchild)
            return OS_ERR_INVALID;
        return enc_seq(T, t->child, false, v->u.list.items, v->u.list.n, out);
    default:
        return OS_ERR_INTERNAL;
    }
}

static os_err encode_parsed(os_buf *out, const abi_types *T, const os_abi_value *vals, size_t n)
{
    size_t mark = out->len;
    os_err err;

    if (n != T->t[T->root].nchild || (n > 0 && vals == NULL))
        return OS_ERR_INVALID;
    err = enc_seq(T, T->t[T->root].child, false, vals, n, out);
    if (err != OS_OK)
        out->len = mark;
    return err;
}

os_err os_abi_encode(os_buf *out, const char *types, const os_abi_value *vals, size_t n)
{
    abi_types T;
    size_t name_len;
    os_err err = parse_sig(&T, &name_len, types, false, false);

    if (err != OS_OK)
        return err;
    return encode_parsed(out, &T, vals, n);
}

os_err os_abi_encode_call(os_buf *out, const char *signature, const os_abi_value *args, size_t n)
{
    abi_types T;
    size_t name_len, mark = out->len;
    uint8_t h[32];
    os_err err = parse_sig(&T, &name_len, signature, true, false);

    if (err != OS_OK)
        return err;
    os_keccak256(h, signature, strlen(signature));
    err = os_buf_append(out, h, 4);
    if (err != OS_OK)
        return err;
    err = encode_parsed(out, &T, args, n);
    if (err != OS_OK)
        out->len = mark;
    return err;
}

/* ---- decoding ---------------------------------------------------------------------------- */

typedef struct dec {
    const abi_types *T;
    const uint8_t *data;
    size_t len;
    os_abi_value *pool;
    size_t cap, used;
} dec;

/* Reads the word at pos as an offset or length, which can be no larger than the data. */
static os_err read_size(const dec *d, size_t pos, size_t *v)
{
    uint64_t x = 0;

    if (pos > d->len || d->len - pos < WORD)
        return OS_ERR_INVALID;
    if (!zero_prefix(d->data + pos, 24))
        return OS_ERR_INVALID;
    for (int i = 24; i < 32; i++)
        x = x << 8 | d->data[pos + i];
    if (x > d->len)
        return OS_ERR_INVALID;
    *v = (size_t)x;
    return OS_OK;
}

static os_err take(dec *d, size_t n, os_abi_value **slots)
{
    if (n > d->cap - d->used)
        return OS_ERR_TOOBIG;
    *slots = d->pool + d->used;
    d->used += n;
    return OS_OK;
}

static os_err dec_seq(dec *d, uint16_t first, bool repeat, size_t n, size_t base,
                      os_abi_value *vals, bool skip_indexed);

/* Makes v a list of n values decoded from base: a tuple's children (first, then each next) or,
 * with repeat, n elements of type first. */
static os_err dec_list(dec *d, os_abi_value *v, uint16_t first, bool repeat, size_t n, size_t base)
{
    os_abi_value *slots;
    os_err err = take(d, n, &slots);

    if (err != OS_OK)
        return err;
    v->u.list.items = slots;
    v->u.list.n = n;
    return dec_seq(d, first, repeat, n, base, slots, false);
}

static os_err dec_static(dec *d, uint16_t ti, size_t pos, os_abi_value *v)
{
    const abi_type *t = &d->T->t[ti];
    const uint8_t *w = d->data + pos;

    memset(v, 0, sizeof(*v));
    v->kind = t->kind;
    switch (t->kind) {
    case OS_ABI_UINT:
        if (!zero_prefix(w, 32u - t->size))
            return OS_ERR_INVALID;
        memcpy(v->u.uint.be, w, 32);
        return OS_OK;
    case OS_ABI_ADDRESS:
        if (!zero_prefix(w, 12))
            return OS_ERR_INVALID;
        memcpy(v->u.address, w + 12, 20);
        return OS_OK;
    case OS_ABI_BOOL:
        if (!zero_prefix(w, 31) || w[31] > 1)
            return OS_ERR_INVALID;
        v->u.boolean = w[31] == 1;
        return OS_OK;
    case OS_ABI_FIXED_BYTES:
        if (!zero_prefix(w + t->size, 32u - t->size))
            return OS_ERR_INVALID;
        memcpy(v->u.fixed, w, 32);
        return OS_OK;
    case OS_ABI_TUPLE:
        return dec_list(d, v, t->child, false, t->nchild, pos);
    default:
        return OS_ERR_INTERNAL;
    }
}

static os_err dec_dynamic(dec *d, uint16_t ti, size_t at, os_abi_value *v)
{
    const abi_type *t = &d->T->t[ti];
    size_t n, padded;
    os_err err;

    memset(v, 0, sizeof(*v));
    v->kind = t->kind;
    switch (t->kind) {
    case OS_ABI_BYTES:
    case OS_ABI_STRING:
        err = read_size(d, at, &n);
        if (err != OS_OK)
            return err;
        at += WORD; /* read_size checked at + 32 <= len */
        padded = n + (32 - n % 32) % 32;
        if (padded > d->len - at)
            return OS_ERR_INVALID;
        for (size_t i = n; i < padded; i++)
            if (d->data[at + i] != 0)
                return OS_ERR_INVALID;
        v->u.bytes.p = d->data + at;
        v->u.bytes.len = n;
        return OS_OK;
    case OS_ABI_ARRAY:
        err = read_size(d, at, &n);
        if (err != OS_OK)
            return err;
        at += WORD;
        /* every element has a head of at least one word, so the count is bounded by the data */
        if (n > (d->len - at) / d->T->t[t->child].head)
            return OS_ERR_INVALID;
        return dec_list(d, v, t->child, true, n, at);
    case OS_ABI_TUPLE:
        return dec_list(d, v, t->child, false, t->nchild, at);
    default:
        return OS_ERR_INTERNAL;
    }
}

static os_err dec_seq(dec *d, uint16_t first, bool repeat, size_t n, size_t base,
                      os_abi_value *vals, bool skip_indexed)
{
    size_t pos = base, off;
    uint16_t ti = first;
    os_err err;

    for (size_t i = 0; i < n; i++) {
        const abi_type *t = &d->T->t[ti];
        if (!(skip_indexed && t->indexed)) {
            if (pos > d->len || d->len - pos < t->head)
                return OS_ERR_INVALID;
            if (t->dynamic) {
                err = read_size(d, pos, &off);
                if (err == OS_OK && off > d->len - base)
                    err = OS_ERR_INVALID;
                if (err == OS_OK)
                    err = dec_dynamic(d, ti, base + off, &vals[i]);
            } else {
                err = dec_static(d, ti, pos, &vals[i]);
            }
            if (err != OS_OK)
                return err;
            pos += t->head;
        }
        if (!repeat)
            ti = t->next;
    }
    return OS_OK;
}

os_err os_abi_decode(os_abi_value *out, size_t out_cap, const char *types, const uint8_t *data,
                     size_t len)
{
    abi_types T;
    size_t name_len, k;
    dec d;
    os_err err = parse_sig(&T, &name_len, types, false, false);

    if (err != OS_OK)
        return err;
    k = T.t[T.root].nchild;
    if (k > out_cap)
        return OS_ERR_TOOBIG;
    if (k > 0 && len == 0)
        return OS_ERR_NOTFOUND;
    if (len > 0 && data == NULL)
        return OS_ERR_INVALID;
    d = (dec){.T = &T, .data = data, .len = len, .pool = out, .cap = out_cap, .used = k};
    return dec_seq(&d, T.t[T.root].child, false, k, 0, out, false);
}

/* ---- events ------------------------------------------------------------------------------ */

static os_err event_parse(abi_types *T, uint8_t topic[32], const char *event)
{
    char canon[OS_ABI_MAX_SIG + 1];
    sink k = {.p = canon, .cap = sizeof(canon)};
    size_t name_len;
    os_err err = parse_sig(T, &name_len, event, true, true);

    if (err != OS_OK)
        return err;
    put(&k, event, name_len);
    ser_type(&k, T, T->root);
    if (k.trunc)
        return OS_ERR_TOOBIG;
    os_keccak256(topic, canon, k.len);
    return OS_OK;
}

os_err os_abi_event_topic(uint8_t topic[32], const char *event)
{
    abi_types T;
    return event_parse(&T, topic, event);
}

os_err os_abi_decode_log(os_abi_value *out, size_t out_cap, const char *event,
                         const uint8_t (*topics)[32], size_t n_topics, const uint8_t *data,
                         size_t len)
{
    abi_types T;
    uint8_t topic0[32];
    size_t k, nindexed = 0, j = 1;
    uint16_t ti;
    dec d;
    os_err err = event_parse(&T, topic0, event);

    if (err != OS_OK)
        return err;
    k = T.t[T.root].nchild;
    for (ti = T.t[T.root].child; ti != NONE; ti = T.t[ti].next)
        nindexed += T.t[ti].indexed;
    if (n_topics != 1 + nindexed || topics == NULL || memcmp(topics[0], topic0, 32) != 0)
        return OS_ERR_INVALID;
    if (k > out_cap)
        return OS_ERR_TOOBIG;
    if (len > 0 && data == NULL)
        return OS_ERR_INVALID;
    d = (dec){.T = &T, .pool = out, .cap = out_cap, .used = k};
    ti = T.t[T.root].child;
    for (size_t i = 0; i < k; i++, ti = T.t[ti].next) {
        const abi_type *t = &T.t[ti];
        if (!t->indexed)
            continue;
        if (t->kind == OS_ABI_UINT || t->kind == OS_ABI_ADDRESS || t->kind == OS_ABI_BOOL ||
            t->kind == OS_ABI_FIXED_BYTES) {
            d.data = topics[j];
            d.len = 32;
            err = dec_static(&d, ti, 0, &out[i]);
            if (err != OS_OK)
                return err;
        } else {
            memset(&out[i], 0, sizeof(out[i]));
            out[i].kind = OS_ABI_FIXED_BYTES;
            memcpy(out[i].u.fixed, topics[j], 32);
        }
        j++;
    }
    d.data = data;
    d.len = len;
    return dec_seq(&d, T.t[T.root].child, false, k, 0, out, true);
}

/* ---- revert data ------------------------------------------------------------------------- */

static void put_sanitised(sink *k, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && !k->trunc; i++) {
        char c = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
        put(k, &c, 1);
    }
}

static void put_hex(sink *k, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    puts_(k, "0x");
    for (size_t i = 0; i < n && !k->trunc; i++) {
        char two[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
        put(k, two, 2);
    }
}

static void render(sink *k, const abi_types *T, uint16_t ti, const os_abi_value *v)
{
    const abi_type *t = &T->t[ti];
    char num[OS_U256_DEC_LEN > OS_ADDRESS_STR_LEN ? OS_U256_DEC_LEN : OS_ADDRESS_STR_LEN];

    switch (v->kind) {
    case OS_ABI_UINT:
        if (os_u256_format_dec(num, sizeof(num), &v->u.uint) == OS_OK)
            puts_(k, num);
        break;
    case OS_ABI_ADDRESS:
        os_eip55_format(num, v->u.address);
        puts_(k, num);
        break;
    case OS_ABI_BOOL:
        puts_(k, v->u.boolean ? "true" : "false");
        break;
    case OS_ABI_FIXED_BYTES:
        put_hex(k, v->u.fixed, t->kind == OS_ABI_FIXED_BYTES ? t->size : 32);
        break;
    case OS_ABI_BYTES:
        put_hex(k, v->u.bytes.p, v->u.bytes.len);
        break;
    case OS_ABI_STRING:
        puts_(k, "\"");
        put_sanitised(k, v->u.bytes.p, v->u.bytes.len);
        puts_(k, "\"");
        break;
    case OS_ABI_TUPLE:
    case OS_ABI_ARRAY:
        puts_(k, v->kind == OS_ABI_TUPLE ? "(" : "[");
        for (size_t i = 0; i < v->u.list.n && !k->trunc; i++) {
            uint16_t ci = t->child;
            if (v->kind == OS_ABI_TUPLE)
                for (size_t s = 0; s < i; s++)
                    ci = T->t[ci].next;
            if (i > 0)
                puts_(k, ", ");
            render(k, T, ci, &v->u.list.items[i]);
        }
        puts_(k, v->kind == OS_ABI_TUPLE ? ")" : "]");
        break;
    }
}

static const char *panic_reason(uint64_t code)
{
    /* https://docs.soliditylang.org/en/latest/control-structures.html#panic-via-assert-and-error-via-require
     */
    switch (code) {
    case 0x00:
        return "generic compiler panic";
    case 0x01:
        return "assertion failed";
    case 0x11:
        return "arithmetic overflow or underflow";
    case 0x12:
        return "division or modulo by zero";
    case 0x21:
        return "invalid enum value";
    case 0x22:
        return "corrupt storage byte array";
    case 0x31:
        return "pop on an empty array";
    case 0x32:
        return "array index out of bounds";
    case 0x41:
        return "out of memory";
    case 0x51:
        return "call to a zero function pointer";
    default:
        return "unknown panic code";
    }
}

static os_err revert_custom(os_abi_revert *out, sink *k, const char *sig, const uint8_t *args,
                            size_t len)
{
    os_abi_value vals[OS_ABI_MAX_TYPES];
    abi_types T;
    size_t name_len;
    dec d;
    os_err err = parse_sig(&T, &name_len, sig, true, false);

    if (err != OS_OK)
        return err;
    out->kind = OS_ABI_REVERT_CUSTOM;
    put(k, sig, name_len);
    d = (dec){.T = &T,
              .data = args,
              .len = len,
              .pool = vals,
              .cap = OS_ABI_MAX_TYPES,
              .used = T.t[T.root].nchild};
    err = dec_seq(&d, T.t[T.root].child, false, T.t[T.root].nchild, 0, vals, false);
    if (err != OS_OK) {
        puts_(k, ": malformed arguments");
        return OS_ERR_INVALID;
    }
    render(
        k, &T, T.root,
        &(os_abi_value){.kind = OS_ABI_TUPLE, .u.list = {.items = vals, .n = T.t[T.root].nchild}});
    return OS_OK;
}

os_err os_abi_decode_revert(os_abi_revert *out, const uint8_t *data, size_t len,
                            const char *const *custom, size_t n_custom)
{
    static const uint8_t error_sel[4] = {0x08, 0xc3, 0x79, 0xa0};
    static const uint8_t panic_sel[4] = {0x4e, 0x48, 0x7b, 0x71};
    sink k = {.p = out->message, .cap = sizeof(out->message)};
    os_abi_value v[1];
    char line[64];
    os_err err = OS_OK;

    memset(out, 0, sizeof(*out));
    if (len == 0) {
        out->kind = OS_ABI_REVERT_EMPTY;
        puts_(&k, "reverted without a reason");
    } else if (len >= 4 && memcmp(data, error_sel, 4) == 0) {
        out->kind = OS_ABI_REVERT_ERROR;
        err = os_abi_decode(v, 1, "(string)", data + 4, len - 4);
        if (err == OS_OK)
            put_sanitised(&k, v[0].u.bytes.p, v[0].u.bytes.len);
        else
            puts_(&k, "malformed Error(string) revert data");
    } else if (len >= 4 && memcmp(data, panic_sel, 4) == 0) {
        out->kind = OS_ABI_REVERT_PANIC;
        err = os_abi_decode(v, 1, "(uint256)", data + 4, len - 4);
        if (err == OS_OK) {
            if (os_u256_to_u64(&out->panic_code, &v[0].u.uint) != OS_OK)
                out->panic_code = UINT64_MAX;
            snprintf(line, sizeof(line), "panic 0x%02" PRIx64 ": ", out->panic_code);
            puts_(&k, line);
            puts_(&k, panic_reason(out->panic_code));
        } else {
            puts_(&k, "malformed Panic(uint256) revert data");
        }
    } else {
        out->kind = OS_ABI_REVERT_UNKNOWN;
        for (size_t i = 0; len >= 4 && i < n_custom; i++) {
            uint8_t sel[4];
            if (custom[i] == NULL || os_abi_selector(sel, custom[i]) != OS_OK ||
                memcmp(sel, data, 4) != 0)
                continue;
            out->custom_index = i;
            err = revert_custom(out, &k, custom[i], data + 4, len - 4);
            finish(&k);
            return err;
        }
        puts_(&k, "unknown error ");
        put_hex(&k, data, len < 4 ? len : 4);
        if (len != 4) {
            snprintf(line, sizeof(line), " (%zu bytes)", len);
            puts_(&k, line);
        }
    }
    if (err != OS_OK)
        err = OS_ERR_INVALID;
    finish(&k);
    return err;
}
