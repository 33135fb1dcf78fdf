/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIP-712 hashing. The JSON engine first validates the whole types object into a flat table
 * (each field's type string checked and its struct base resolved once), then hashes values
 * against it, computing each struct's type hash lazily at most once per call. Recursion is
 * bounded by OS_EIP712_MAX_DEPTH and every count and length by the other OS_EIP712_MAX_* limits,
 * so a hostile document costs bounded stack and time. Integers are parsed exactly into 256 bits.
 * The fixed helpers for the protocol's messages share nothing with the engine but the encoding
 * rules; the unit tests check that both agree.
 */
#include "openseed/eip712.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/hex.h"
#include "openseed/keccak.h"
#include "openseed/secp.h"

/* Cap on all fields of all types together, so type-hash walks stay cheap. */
#define MAX_TOTAL_FIELDS 4096
/* Cap on the text of an integer value: 256 bits need at most 78 decimal digits. */
#define MAX_INT_TEXT 256

/* ---------------------------------------------------------------- encoding primitives */

static void put_u64(uint8_t out[32], uint64_t v)
{
    memset(out, 0, 24);
    for (int i = 0; i < 8; i++)
        out[31 - i] = (uint8_t)(v >> (8 * i));
}

static void hash_str(uint8_t out[32], const char *s)
{
    os_keccak256(out, s, s != NULL ? strlen(s) : 0);
}

void os_eip712_digest(uint8_t out[32], const uint8_t domain_separator[32],
                      const uint8_t struct_hash[32])
{
    static const uint8_t prefix[2] = {0x19, 0x01};
    os_keccak_ctx k;

    os_keccak256_init(&k);
    os_keccak256_update(&k, prefix, sizeof(prefix));
    os_keccak256_update(&k, domain_separator, 32);
    os_keccak256_update(&k, struct_hash, 32);
    os_keccak256_final(&k, out);
}

/* ---------------------------------------------------------------- type grammar */

enum kind { K_STRUCT, K_STRING, K_BYTES, K_BYTESN, K_ADDRESS, K_BOOL, K_UINT, K_INT };

/* Canonical decimal (no sign, no leading zero unless "0") in [0, max]; 0 if not. */
static int parse_canon(const char *s, size_t len, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (len == 0 || len > 9 || (len > 1 && s[0] == '0'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return 0;
    *out = v;
    return 1;
}

static int has_prefix(const char *s, size_t len, const char *p, size_t *plen)
{
    *plen = strlen(p);
    return len >= *plen && memcmp(s, p, *plen) == 0;
}

static int is_word(const char *s, size_t len, const char *w)
{
    return strlen(w) == len && memcmp(s, w, len) == 0;
}

/* 1 when s names an atomic type, filling kind and width (bits for integers, bytes for bytesN). */
static int atomic_type(const char *s, size_t len, enum kind *kind, unsigned *width)
{
    unsigned long n;
    size_t p;

    *width = 0;
    if (is_word(s, len, "string"))
        *kind = K_STRING;
    else if (is_word(s, len, "bytes"))
        *kind = K_BYTES;
    else if (is_word(s, len, "address"))
        *kind = K_ADDRESS;
    else if (is_word(s, len, "bool"))
        *kind = K_BOOL;
    else if (has_prefix(s, len, "bytes", &p) && parse_canon(s + p, len - p, 32, &n) && n >= 1)
        *kind = K_BYTESN, *width = (unsigned)n;
    else if (has_prefix(s, len, "uint", &p) && parse_canon(s + p, len - p, 256, &n) && n >= 8 &&
             n % 8 == 0)
        *kind = K_UINT, *width = (unsigned)n;
    else if (has_prefix(s, len, "int", &p) && parse_canon(s + p, len - p, 256, &n) && n >= 8 &&
             n % 8 == 0)
        *kind = K_INT, *width = (unsigned)n;
    else
        return 0;
    return 1;
}

/*
 * 1 for names a struct may not take: the atomic types and anything shaped like one ("uint7",
 * "bytes0", "int"), so a type string never has two readings.
 */
static int reserved_name(const char *s, size_t len)
{
    static const char *const families[] = {"uint", "int", "bytes"};
    enum kind k;
    unsigned w;
    size_t p;

    if (atomic_type(s, len, &k, &w))
        return 1;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        if (!has_prefix(s, len, families[i], &p))
            continue;
        size_t j = p;
        while (j < len && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == len)
            return 1;
    }
    return 0;
}

/* Solidity identifier: [A-Za-z_$][A-Za-z0-9_$]*, which keeps encodeType unambiguous. */
static int is_ident(const char *s, size_t len)
{
    if (len == 0 || len > OS_EIP712_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '$'))
            return 0;
    }
    return 1;
}

/* Splits the outermost dimension off "T[..]": "T[2][]" gives inner "T[2]" and count -1. */
static os_err split_dim(const char *s, size_t len, size_t *inner_len, long *count)
{
    size_t open = len - 1;
    unsigned long n;

    while (open > 0 && s[open] != '[')
        open--;
    if (open == 0 || s[open] != '[')
        return OS_ERR_INVALID;
    if (open + 2 == len) {
        *count = -1;
    } else {
        if (!parse_canon(s + open + 1, len - open - 2, OS_EIP712_MAX_ARRAY, &n))
            return OS_ERR_INVALID;
        *count = (long)n;
    }
    *inner_len = open;
    return OS_OK;
}

/* ---------------------------------------------------------------- the validated type table */

typedef struct field {
    const char *name; /* NUL-terminated, borrowed from the JSON */
    const char *type;
    size_t type_len;
    int sidx; /* index of the struct at the base of type, or -1 for an atomic base */
} field;

typedef struct tdef {
    const char *name;
    size_t name_len;
    field *fields; /* points into engine.all */
    size_t nfields;
    int hashed;
    uint8_t typehash[32];
} tdef;

typedef struct engine {
    tdef *t;
    size_t n;
    field *all;
} engine;

static int find_struct(const engine *e, const char *s, size_t len)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->t[i].name_len == len && memcmp(e->t[i].name, s, len) == 0)
            return (int)i;
    return -1;
}

/* Validates a field type string; sidx receives its base struct or -1. */
static os_err check_type(const engine *e, const char *s, size_t len, int *sidx)
{
    enum kind k;
    unsigned w;
    long count;
    int dims = 0;

    while (len > 0 && s[len - 1] == ']') {
        if (++dims > OS_EIP712_MAX_DEPTH)
            return OS_ERR_TOOBIG;
        os_err err = split_dim(s, len, &len, &count);
        if (err != OS_OK)
            return err;
    }
    if (atomic_type(s, len, &k, &w)) {
        *sidx = -1;
        return OS_OK;
    }
    if (!is_ident(s, len))
        return OS_ERR_INVALID;
    *sidx = find_struct(e, s, len);
    return *sidx >= 0 ? OS_OK : OS_ERR_INVALID;
}

static void engine_free(engine *e)
{
    free(e->t);
    free(e->all);
    e->t = NULL;
    e->all = NULL;
}

/* A JSON string without embedded NULs, with its length. */
static const char *plain_string(const json_t *v, size_t *len)
{
    const char *s;

    if (!json_is_string(v))
        return NULL;
    s = json_string_value(v);
    *len = json_string_length(v);
    return strlen(s) == *len ? s : NULL;
}

static os_err engine_init(engine *e, const json_t *types)
{
    const char *key;
    json_t *val;
    size_t i = 0, total = 0, used = 0;
    os_err err;

    memset(e, 0, sizeof(*e));
    if (!json_is_object(types))
        return OS_ERR_INVALID;
    e->n = json_object_size(types);
    if (e->n > OS_EIP712_MAX_TYPES)
        return OS_ERR_TOOBIG;
    e->t = calloc(e->n ? e->n : 1, sizeof(*e->t));
    if (e->t == NULL)
        return OS_ERR_NOMEM;
    /* jansson is not const-correct about iteration; nothing here writes to types */
    json_object_foreach((json_t *)types, key, val)
    {
        size_t klen = strlen(key);
        if (json_object_iter_key_len(json_object_key_to_iter(key)) != klen ||
            !is_ident(key, klen) || reserved_name(key, klen) || !json_is_array(val)) {
            err = OS_ERR_INVALID;
            goto fail;
        }
        if (json_array_size(val) > OS_EIP712_MAX_FIELDS) {
            err = OS_ERR_TOOBIG;
            goto fail;
        }
        e->t[i].name = key;
        e->t[i].name_len = klen;
        e->t[i].nfields = json_array_size(val);
        total += e->t[i].nfields;
        i++;
    }
    if (total > MAX_TOTAL_FIELDS) {
        err = OS_ERR_TOOBIG;
        goto fail;
    }
    e->all = calloc(total ? total : 1, sizeof(*e->all));
    if (e->all == NULL) {
        err = OS_ERR_NOMEM;
        goto fail;
    }
    /* Second pass, now that every struct name is known. */
    i = 0;
    json_object_foreach((json_t *)types, key, val)
    {
        tdef *t = &e->t[i++];
        t->fields = e->all + used;
        for (size_t j = 0; j < t->nfields; j++) {
            const json_t *f = json_array_get(val, j);
            field *fd = &t->fields[j];
            size_t nlen = 0, tlen = 0;
            const char *name = plain_string(json_object_get(f, "name"), &nlen);
            const char *type = plain_string(json_object_get(f, "type"), &tlen);

            if (!json_is_object(f) || name == NULL || type == NULL || !is_ident(name, nlen)) {
                err = OS_ERR_INVALID;
                goto fail;
            }
            if (tlen == 0 || tlen > OS_EIP712_MAX_NAME) {
                err = tlen == 0 ? OS_ERR_INVALID : OS_ERR_TOOBIG;
                goto fail;
            }
            for (size_t k = 0; k < j; k++) {
                if (strcmp(t->fields[k].name, name) == 0) {
                    err = OS_ERR_INVALID;
                    goto fail;
                }
            }
            err = check_type(e, type, tlen, &fd->sidx);
            if (err != OS_OK)
                goto fail;
            fd->name = name;
            fd->type = type;
            fd->type_len = tlen;
        }
        used += t->nfields;
    }
    return OS_OK;
fail:
    engine_free(e);
    return err;
}

static int cmp_tdef_name(const void *a, const void *b)
{
    const tdef *x = *(const tdef *const *)a;
    const tdef *y = *(const tdef *const *)b;
    return strcmp(x->name, y->name);
}

static void absorb_struct_type(os_keccak_ctx *k, const tdef *t)
{
    os_keccak256_update(k, t->name, t->name_len);
    os_keccak256_update(k, "(", 1);
    for (size_t i = 0; i < t->nfields; i++) {
        if (i > 0)
            os_keccak256_update(k, ",", 1);
        os_keccak256_update(k, t->fields[i].type, t->fields[i].type_len);
        os_keccak256_update(k, " ", 1);
        os_keccak256_update(k, t->fields[i].name, strlen(t->fields[i].name));
    }
    os_keccak256_update(k, ")", 1);
}

/* keccak256(encodeType): the struct itself, then every struct it reaches, sorted by name. */
static os_err typehash(engine *e, size_t idx, uint8_t out[32])
{
    uint8_t seen[OS_EIP712_MAX_TYPES];
    uint16_t work[OS_EIP712_MAX_TYPES];
    const tdef *deps[OS_EIP712_MAX_TYPES];
    size_t nwork = 0, ndeps = 0;
    os_keccak_ctx k;

    if (!e->t[idx].hashed) {
        memset(seen, 0, e->n);
        seen[idx] = 1;
        work[nwork++] = (uint16_t)idx;
        while (nwork > 0) {
            const tdef *t = &e->t[work[--nwork]];
            for (size_t i = 0; i < t->nfields; i++) {
                int s = t->fields[i].sidx;
                if (s < 0 || seen[s])
                    continue;
                seen[s] = 1;
                work[nwork++] = (uint16_t)s;
                deps[ndeps++] = &e->t[s];
            }
        }
        qsort(deps, ndeps, sizeof(deps[0]), cmp_tdef_name);
        os_keccak256_init(&k);
        absorb_struct_type(&k, &e->t[idx]);
        for (size_t i = 0; i < ndeps; i++)
            absorb_struct_type(&k, deps[i]);
        os_keccak256_final(&k, e->t[idx].typehash);
        e->t[idx].hashed = 1;
    }
    memcpy(out, e->t[idx].typehash, 32);
    return OS_OK;
}

/* ---------------------------------------------------------------- values */

/* Bits at and above position bits of the 256-bit w (w[0] least significant) are all zero. */
static int high_zero(const uint64_t w[4], unsigned bits)
{
    unsigned limb = bits / 64, off = bits % 64;

    if (limb >= 4)
        return 1;
    if (off != 0) {
        if (w[limb] >> off)
            return 0;
        limb++;
    }
    for (; limb < 4; limb++)
        if (w[limb])
            return 0;
    return 1;
}

static int is_pow2(const uint64_t w[4], unsigned bit)
{
    for (unsigned i = 0; i < 4; i++)
        if (w[i] != (i == bit / 64 ? (uint64_t)1 << (bit % 64) : 0))
            return 0;
    return 1;
}

/*
 * uintN/intN from a JSON integer or a "[-]digits" / "[-]0xhex" string; exact in 256 bits and
 * range-checked for the width. Negative values are written in 256-bit two's complement.
 */
static os_err encode_int(uint8_t out[32], const json_t *v, unsigned width, int is_signed)
{
    uint64_t w[4] = {0, 0, 0, 0};
    int neg = 0;

    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        neg = x < 0;
        w[0] = neg ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v), i = 0;
        if (len > MAX_INT_TEXT)
            return OS_ERR_TOOBIG;
        if (len > 0 && s[0] == '-')
            neg = 1, i = 1;
        if (len - i > 2 && s[i] == '0' && s[i + 1] == 'x') {
            for (i += 2; i < len; i++) {
                int d = os_hex_digit(s[i]);
                if (d < 0)
                    return OS_ERR_INVALID;
                if (w[3] >> 60)
                    return OS_ERR_RANGE;
                for (int l = 3; l > 0; l--)
                    w[l] = (w[l] << 4) | (w[l - 1] >> 60);
                w[0] = (w[0] << 4) | (uint64_t)d;
            }
        } else {
            if (i == len)
                return OS_ERR_INVALID;
            for (; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                    return OS_ERR_INVALID;
                unsigned __int128 carry = (unsigned)(s[i] - '0');
                for (int l = 0; l < 4; l++) {
                    unsigned __int128 t = (unsigned __int128)w[l] * 10 + carry;
                    w[l] = (uint64_t)t;
                    carry = t >> 64;
                }
                if (carry)
                    return OS_ERR_RANGE;
            }
        }
    } else {
        return OS_ERR_INVALID;
    }
    if (neg && high_zero(w, 0))
        neg = 0; /* "-0" is zero, as ethers reads it */
    if (!is_signed) {
        if (neg || !high_zero(w, width))
            return OS_ERR_RANGE;
    } else if (!high_zero(w, width - 1) && !(neg && is_pow2(w, width - 1))) {
        return OS_ERR_RANGE;
    }
    if (neg) {
        uint64_t carry = 1;
        for (int l = 0; l < 4; l++) {
            w[l] = ~w[l] + carry;
            carry = carry && w[l] == 0;
        }
    }
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < 8; b++)
            out[31 - 8 * l - b] = (uint8_t)(w[l] >> (8 * b));
    return OS_OK;
}

/* A "0x"-prefixed even-length hex JSON string: its digits and their count. */
static os_err hex_value(const json_t *v, const char **digits, size_t *ndigits)
{
    const char *s;
    size_t len;

    if (!json_is_string(v))
        return OS_ERR_INVALID;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len < 2 || s[0] != '0' || s[1] != 'x' || len % 2 != 0)
        return OS_ERR_INVALID;
    *digits = s + 2;
    *ndigits = len - 2;
    return OS_OK;
}

/*
 * Decodes exactly n/2 bytes from the n hex digits d into out. A count check, since os_hex_decode
 * would skip a "0x" that stands at the front of the digits (as in the value "0x0x12").
 */
static os_err unhex(uint8_t *out, const char *d, size_t n)
{
    size_t got;

    if (os_hex_decode(out, n / 2, &got, d, n) != OS_OK || got != n / 2)
        return OS_ERR_INVALID;
    return OS_OK;
}

static os_err encode_bytes(uint8_t out[32], const json_t *v)
{
    uint8_t buf[256];
    const char *d;
    size_t nd;
    os_keccak_ctx k;
    os_err err = hex_value(v, &d, &nd);

    if (err != OS_OK)
        return err;
    /* hashed a chunk at a time, so a long value needs no allocation */
    os_keccak256_init(&k);
    for (size_t i = 0; i < nd; i += 2 * sizeof(buf)) {
        size_t take = nd - i < 2 * sizeof(buf) ? nd - i : 2 * sizeof(buf);
        if (unhex(buf, d + i, take) != OS_OK) {
            os_keccak256_final(&k, out);
            return OS_ERR_INVALID;
        }
        os_keccak256_update(&k, buf, take / 2);
    }
    os_keccak256_final(&k, out);
    return OS_OK;
}

static os_err encode_bytesn(uint8_t out[32], const json_t *v, unsigned width)
{
    const char *d;
    size_t nd;
    os_err err = hex_value(v, &d, &nd);

    if (err != OS_OK)
        return err;
    if (nd != 2 * (size_t)width)
        return OS_ERR_INVALID;
    memset(out, 0, 32);
    return unhex(out, d, nd);
}

static os_err encode_atomic(uint8_t out[32], enum kind kind, unsigned width, const json_t *v)
{
    switch (kind) {
    case K_STRING:
        if (!json_is_string(v))
            return OS_ERR_INVALID;
        os_keccak256(out, json_string_value(v), json_string_length(v));
        return OS_OK;
    case K_BYTES:
        return encode_bytes(out, v);
    case K_BYTESN:
        return encode_bytesn(out, v, width);
    case K_ADDRESS:
        /* os_eip55_parse stops at an embedded NUL, so the JSON length need not be checked */
        if (!json_is_string(v))
            return OS_ERR_INVALID;
        memset(out, 0, 12);
        return os_eip55_parse(out + 12, json_string_value(v)) == OS_OK ? OS_OK : OS_ERR_INVALID;
    case K_BOOL:
        if (!json_is_boolean(v))
            return OS_ERR_INVALID;
        put_u64(out, json_is_true(v) ? 1 : 0);
        return OS_OK;
    case K_UINT:
    case K_INT:
        return encode_int(out, v, width, kind == K_INT);
    case K_STRUCT:
        break;
    }
    return OS_ERR_INTERNAL;
}

static os_err hash_struct(engine *e, uint8_t out[32], size_t idx, const json_t *v, int depth);

/*
 * encodeData's 32-byte word for one value of type s[0..len) whose base struct is sidx (or -1).
 * depth is that of the struct or array holding the value.
 */
static os_err encode_value(engine *e, uint8_t out[32], const char *s, size_t len, int sidx,
                           const json_t *v, int depth)
{
    enum kind kind;
    unsigned width;
    size_t inner;
    long count;
    os_keccak_ctx k;
    uint8_t word[32];
    os_err err;

    if (len > 0 && s[len - 1] == ']') {
        if (depth + 1 > OS_EIP712_MAX_DEPTH)
            return OS_ERR_TOOBIG;
        err = split_dim(s, len, &inner, &count);
        if (err != OS_OK)
            return err;
        if (!json_is_array(v) || (count >= 0 && json_array_size(v) != (size_t)count))
            return OS_ERR_INVALID;
        os_keccak256_init(&k);
        for (size_t i = 0; i < json_array_size(v); i++) {
            err = encode_value(e, word, s, inner, sidx, json_array_get(v, i), depth + 1);
            if (err != OS_OK) {
                os_keccak256_final(&k, word);
                return err;
            }
            os_keccak256_update(&k, word, sizeof(word));
        }
        os_keccak256_final(&k, out);
        return OS_OK;
    }
    if (sidx >= 0)
        return hash_struct(e, out, (size_t)sidx, v, depth + 1);
    if (!atomic_type(s, len, &kind, &width))
        return OS_ERR_INTERNAL; /* check_type accepted it */
    return encode_atomic(out, kind, width, v);
}

static os_err hash_struct(engine *e, uint8_t out[32], size_t idx, const json_t *v, int depth)
{
    const tdef *t = &e->t[idx];
    uint8_t word[32];
    os_keccak_ctx k;
    os_err err;

    if (depth > OS_EIP712_MAX_DEPTH)
        return OS_ERR_TOOBIG;
    if (!json_is_object(v))
        return OS_ERR_INVALID;
    err = typehash(e, idx, word);
    if (err != OS_OK)
        return err;
    os_keccak256_init(&k);
    os_keccak256_update(&k, word, sizeof(word));
    for (size_t i = 0; i < t->nfields; i++) {
        const field *f = &t->fields[i];
        const json_t *fv = json_object_get(v, f->name);
        err = fv == NULL ? OS_ERR_INVALID
                         : encode_value(e, word, f->type, f->type_len, f->sidx, fv, depth);
        if (err != OS_OK) {
            os_keccak256_final(&k, word);
            return err;
        }
        os_keccak256_update(&k, word, sizeof(word));
    }
    os_keccak256_final(&k, out);
    return OS_OK;
}

os_err os_eip712_hash_struct(uint8_t out[32], const json_t *types, const char *primary_type,
                             const json_t *data)
{
    engine e;
    int idx;
    os_err err;

    if (primary_type == NULL)
        return OS_ERR_INVALID;
    err = engine_init(&e, types);
    if (err != OS_OK)
        return err;
    idx = find_struct(&e, primary_type, strlen(primary_type));
    err = idx < 0 ? OS_ERR_INVALID : hash_struct(&e, out, (size_t)idx, data, 1);
    engine_free(&e);
    return err;
}

os_err os_eip712_hash_typed_data(uint8_t digest[32], const json_t *typed_data)
{
    uint8_t ds[32], sh[32];
    const char *primary;
    size_t plen;
    int didx, pidx;
    engine e;
    os_err err;

    if (!json_is_object(typed_data))
        return OS_ERR_INVALID;
    primary = plain_string(json_object_get(typed_data, "primaryType"), &plen);
    if (primary == NULL)
        return OS_ERR_INVALID;
    err = engine_init(&e, json_object_get(typed_data, "types"));
    if (err != OS_OK)
        return err;
    didx = find_struct(&e, "EIP712Domain", strlen("EIP712Domain"));
    pidx = find_struct(&e, primary, plen);
    /* primaryType EIP712Domain has a special digest in some wallets; refuse rather than guess */
    if (didx < 0 || pidx < 0 || pidx == didx) {
        engine_free(&e);
        return OS_ERR_INVALID;
    }
    err = hash_struct(&e, ds, (size_t)didx, json_object_get(typed_data, "domain"), 1);
    if (err == OS_OK)
        err = hash_struct(&e, sh, (size_t)pidx, json_object_get(typed_data, "message"), 1);
    engine_free(&e);
    if (err != OS_OK)
        return err;
    os_eip712_digest(digest, ds, sh);
    return OS_OK;
}

/* ---------------------------------------------------------------- fixed structs */

void os_eip712_domain_separator(uint8_t out[32], const os_eip712_domain *d)
{
    const char *parts[5];
    size_t np = 0;
    uint8_t word[32];
    os_keccak_ctx k;

    if (d->name != NULL)
        parts[np++] = "string name";
    if (d->version != NULL)
        parts[np++] = "string version";
    if (d->has_chain_id)
        parts[np++] = "uint256 chainId";
    if (d->has_verifying_contract)
        parts[np++] = "address verifyingContract";
    if (d->has_salt)
        parts[np++] = "bytes32 salt";
    os_keccak256_init(&k);
    os_keccak256_update(&k, "EIP712Domain(", 13);
    for (size_t i = 0; i < np; i++) {
        if (i > 0)
            os_keccak256_update(&k, ",", 1);
        os_keccak256_update(&k, parts[i], strlen(parts[i]));
    }
    os_keccak256_update(&k, ")", 1);
    os_keccak256_final(&k, word);

    os_keccak256_init(&k);
    os_keccak256_update(&k, word, 32);
    if (d->name != NULL) {
        hash_str(word, d->name);
        os_keccak256_update(&k, word, 32);
    }
    if (d->version != NULL) {
        hash_str(word, d->version);
        os_keccak256_update(&k, word, 32);
    }
    if (d->has_chain_id) {
        put_u64(word, d->chain_id);
        os_keccak256_update(&k, word, 32);
    }
    if (d->has_verifying_contract) {
        memset(word, 0, 12);
        memcpy(word + 12, d->verifying_contract, 20);
        os_keccak256_update(&k, word, 32);
    }
    if (d->has_salt)
        os_keccak256_update(&k, d->salt, 32);
    os_keccak256_final(&k, out);
}

/* Type hashes and constant string hashes of the protocol's messages; written once, then read. */
static struct {
    uint8_t domain_os[32]; /* EIP712Domain(string name,string version,uint256 chainId) */
    uint8_t domain_ch[32]; /* ... plus address verifyingContract */
    uint8_t name_os[32];
    uint8_t name_ch[32];
    uint8_t version[32];
    uint8_t spending[32];
    uint8_t seller[32];
    uint8_t heartbeat[32];
} fixed;
static pthread_once_t fixed_once = PTHREAD_ONCE_INIT;

static void fixed_init(void)
{
    hash_str(fixed.domain_os, "EIP712Domain(string name,string version,uint256 chainId)");
    hash_str(fixed.domain_ch, "EIP712Domain(string name,string version,uint256 chainId,"
                              "address verifyingContract)");
    hash_str(fixed.name_os, "OpenSeed");
    hash_str(fixed.name_ch, "OpenSeedChannels");
    hash_str(fixed.version, "1");
    hash_str(fixed.spending, "SpendingAuth(bytes32 channelId,uint256 cumulativeAmount,"
                             "uint64 nonce,bytes32 metadataHash)");
    hash_str(fixed.seller, "SellerRecord(address node,string endpoint,uint64 seq,"
                           "uint64 timestamp,bytes32 bodyHash)");
    hash_str(fixed.heartbeat, "Heartbeat(address node,string endpoint,uint64 seq,"
                              "uint64 timestamp)");
}

static void fixed_get(void)
{
    /* pthread_once fails only for invalid arguments, which these are not */
    (void)pthread_once(&fixed_once, fixed_init);
}

static void absorb_u64(os_keccak_ctx *k, uint64_t v)
{
    uint8_t word[32];
    put_u64(word, v);
    os_keccak256_update(k, word, 32);
}

static void absorb_address(os_keccak_ctx *k, const uint8_t a[20])
{
    uint8_t word[32];
    memset(word, 0, 12);
    memcpy(word + 12, a, 20);
    os_keccak256_update(k, word, 32);
}

static void absorb_string(os_keccak_ctx *k, const char *s)
{
    uint8_t word[32];
    hash_str(word, s);
    os_keccak256_update(k, word, 32);
}

void os_eip712_openseed_domain(uint8_t out[32], uint64_t chain_id)
{
    os_keccak_ctx k;

    fixed_get();
    os_keccak256_init(&k);
    os_keccak256_update(&k, fixed.domain_os, 32);
    os_keccak256_update(&k, fixed.name_os, 32);
    os_keccak256_update(&k, fixed.version, 32);
    absorb_u64(&k, chain_id);
    os_keccak256_final(&k, out);
}

void os_eip712_channels_domain(uint8_t out[32], uint64_t chain_id, const uint8_t escrow[20])
{
    os_keccak_ctx k;

    fixed_get();
    os_keccak256_init(&k);
    os_keccak256_update(&k, fixed.domain_ch, 32);
    os_keccak256_update(&k, fixed.name_ch, 32);
    os_keccak256_update(&k, fixed.version, 32);
    absorb_u64(&k, chain_id);
    absorb_address(&k, escrow);
    os_keccak256_final(&k, out);
}

void os_eip712_spending_auth_hash(uint8_t out[32], const uint8_t channel_id[32],
                                  uint64_t cumulative_amount, uint64_t nonce,
                                  const uint8_t metadata_hash[32])
{
    os_keccak_ctx k;

    fixed_get();
    os_keccak256_init(&k);
    os_keccak256_update(&k, fixed.spending, 32);
    os_keccak256_update(&k, channel_id, 32);
    absorb_u64(&k, cumulative_amount);
    absorb_u64(&k, nonce);
    os_keccak256_update(&k, metadata_hash, 32);
    os_keccak256_final(&k, out);
}

void os_eip712_seller_record_hash(uint8_t out[32], const uint8_t node[20], const char *endpoint,
                                  uint64_t seq, uint64_t timestamp, const uint8_t body_hash[32])
{
    os_keccak_ctx k;

    fixed_get();
    os_keccak256_init(&k);
    os_keccak256_update(&k, fixed.seller, 32);
    absorb_address(&k, node);
    absorb_string(&k, endpoint);
    absorb_u64(&k, seq);
    absorb_u64(&k, timestamp);
    os_keccak256_update(&k, body_hash, 32);
    os_keccak256_final(&k, out);
}

void os_eip712_heartbeat_hash(uint8_t out[32], const uint8_t node[20], const char *endpoint,
                              uint64_t seq, uint64_t timestamp)
{
    os_keccak_ctx k;

    fixed_get();
    os_keccak256_init(&k);
    os_keccak256_update(&k, fixed.heartbeat, 32);
    absorb_address(&k, node);
    absorb_string(&k, endpoint);
    absorb_u64(&k, seq);
    absorb_u64(&k, timestamp);
    os_keccak256_final(&k, out);
}

/* ---------------------------------------------------------------- EIP-191, EIP-2098 */

void os_eip191_hash(uint8_t out[32], const void *msg, size_t len)
{
    static const char prefix[] = "\031Ethereum Signed Message:\n"; /* \031 is 0x19 */
    char num[24];
    int n = snprintf(num, sizeof(num), "%zu", len);
    os_keccak_ctx k;

    os_keccak256_init(&k);
    os_keccak256_update(&k, prefix, sizeof(prefix) - 1);
    os_keccak256_update(&k, num, n > 0 ? (size_t)n : 0);
    os_keccak256_update(&k, msg, len);
    os_keccak256_final(&k, out);
}

/* secp256k1 group order n and n/2, big-endian. */
static const uint8_t order_n[32] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
static const uint8_t half_n[32] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4,
                                   0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0};
static const uint8_t zero32[32];

void os_eip2098_compact(uint8_t out[64], const uint8_t sig[65])
{
    int parity = sig[64] == 28 || sig[64] == 1;

    memmove(out, sig, 64);
    out[32] = (uint8_t)((out[32] & 0x7f) | (parity ? 0x80 : 0));
}

os_err os_eip2098_expand(uint8_t sig[65], const uint8_t compact[64])
{
    uint8_t s[32];
    int parity = compact[32] >> 7;

    memcpy(s, compact + 32, 32);
    s[0] &= 0x7f;
    /* signatures are public: ordinary comparisons are fine here */
    if (memcmp(compact, zero32, 32) == 0 || memcmp(compact, order_n, 32) >= 0 ||
        memcmp(s, zero32, 32) == 0 || memcmp(s, half_n, 32) > 0)
        return OS_ERR_INVALID;
    memmove(sig, compact, 32);
    memcpy(sig + 32, s, 32);
    sig[64] = (uint8_t)(27 + parity);
    return OS_OK;
}
