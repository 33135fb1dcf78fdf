/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON helpers over jansson 2.14 with the limits every inbound message needs. jansson has no
 * runtime depth option (only a compile-time 2048), so os_json_parse pre-scans the text once,
 * counting brackets outside strings, before handing it to json_loadb with JSON_REJECT_DUPLICATES.
 * The getters turn jansson's loose accessors into checked ones with a reason a client can act on;
 * the os_json_at_* forms and the builders live here so that every message parser words its
 * refusals, and every encoder builds its values, one way.
 */
#include "openseed/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/hex.h"
#include "openseed/money.h"
#include "openseed/secp.h"

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errcap, const char *fmt,
                                                         ...)
{
    va_list ap;

    if (err == NULL || errcap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

/*
 * Returns 0 when no container in buf nests deeper than max_depth. Brackets inside strings do not
 * count; a backslash inside a string hides the next byte (\" does not end the string). Malformed
 * text is left for jansson to reject, so only the bracket count has to be right here.
 */
static int depth_exceeded(const char *buf, size_t len, int max_depth)
{
    int depth = 0;
    int in_string = 0;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        switch (c) {
        case '"':
            in_string = 1;
            break;
        case '[':
        case '{':
            if (++depth > max_depth)
                return 1;
            break;
        case ']':
        case '}':
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return 0;
}

os_err os_json_parse(json_t **out, const char *buf, size_t len, size_t max_bytes, int max_depth,
                     char *err, size_t errcap)
{
    return os_json_parse_flags(out, buf, len, max_bytes, max_depth, 0, err, errcap);
}

os_err os_json_parse_flags(json_t **out, const char *buf, size_t len, size_t max_bytes,
                           int max_depth, unsigned flags, char *err, size_t errcap)
{
    json_error_t jerr;
    json_t *v;

    seterr(err, errcap, "%s", "");
    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (buf == NULL || max_depth < 1) {
        seterr(err, errcap, "no JSON body");
        return OS_ERR_INVALID;
    }
    if (len > max_bytes) {
        seterr(err, errcap, "JSON body larger than %zu bytes", max_bytes);
        return OS_ERR_TOOBIG;
    }
    if (depth_exceeded(buf, len, max_depth)) {
        seterr(err, errcap, "JSON nested deeper than %d levels", max_depth);
        return OS_ERR_TOOBIG;
    }
    v = json_loadb(buf, len,
                   JSON_REJECT_DUPLICATES | ((flags & OS_JSON_ALLOW_NUL) ? JSON_ALLOW_NUL : 0),
                   &jerr);
    if (v == NULL) {
        /* jansson appends " near '<token>'": cut it so no input is echoed. */
        char *near = strstr(jerr.text, " near ");
        if (near != NULL)
            *near = '\0';
        seterr(err, errcap, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
               jerr.text);
        return OS_ERR_INVALID;
    }
    *out = v;
    return OS_OK;
}

/* Looks key up in obj; OS_ERR_INVALID if obj is not an object. A null value counts as present. */
static os_err lookup(const json_t **v, const json_t *obj, const char *key, char *err, size_t errcap)
{
    if (!json_is_object(obj) || key == NULL) {
        seterr(err, errcap, "expected a JSON object");
        return OS_ERR_INVALID;
    }
    *v = json_object_get(obj, key);
    return OS_OK;
}

/* The JSON types a getter accepts, as a mask of 1 << json_type. */
#define T_STRING (1u << JSON_STRING)
#define T_INTEGER (1u << JSON_INTEGER)
#define T_BOOL ((1u << JSON_TRUE) | (1u << JSON_FALSE))
#define T_OBJECT (1u << JSON_OBJECT)
#define T_ARRAY (1u << JSON_ARRAY)

/*
 * Shared front of every getter: finds key and checks its type against the mask `types`, naming
 * what was wanted (`want`, e.g. "a string") when it does not match. *v is NULL when the field is
 * absent, which optional getters accept (missing or null alike) and required ones turn into
 * OS_ERR_NOTFOUND; a null in a required field is the wrong type.
 */
static os_err find(const json_t **v, const json_t *obj, const char *key, int required,
                   unsigned types, const char *want, char *err, size_t errcap)
{
    os_err rc = lookup(v, obj, key, err, errcap);

    if (rc != OS_OK)
        return rc;
    if (*v == NULL || (!required && json_is_null(*v))) {
        *v = NULL;
        if (!required)
            return OS_OK;
        seterr(err, errcap, "missing field \"%s\"", key);
        return OS_ERR_NOTFOUND;
    }
    if ((types & (1u << json_typeof(*v))) == 0) {
        seterr(err, errcap, "field \"%s\" must be %s", key, want);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

static os_err str_field(const char **out, const json_t *obj, const char *key, size_t max_len,
                        int required, char *err, size_t errcap)
{
    const json_t *v;
    os_err rc = find(&v, obj, key, required, T_STRING, "a string", err, errcap);

    if (rc != OS_OK)
        return rc;
    if (v == NULL) {
        *out = NULL;
        return OS_OK;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    /* An embedded NUL (possible in values built with json_stringn) would cut the C string short. */
    if (memchr(s, '\0', n) != NULL) {
        seterr(err, errcap, "field \"%s\" must not contain NUL", key);
        return OS_ERR_INVALID;
    }
    if (n > max_len) {
        seterr(err, errcap, "field \"%s\" is longer than %zu bytes", key, max_len);
        return OS_ERR_TOOBIG;
    }
    *out = s;
    return OS_OK;
}

os_err os_json_get_str(const char **out, const json_t *obj, const char *key, size_t max_len,
                       char *err, size_t errcap)
{
    return str_field(out, obj, key, max_len, 1, err, errcap);
}

os_err os_json_opt_str(const char **out, const json_t *obj, const char *key, size_t max_len,
                       char *err, size_t errcap)
{
    return str_field(out, obj, key, max_len, 0, err, errcap);
}

static os_err u64_str_field(uint64_t *out, const json_t *obj, const char *key, int required,
                            uint64_t dflt, char *err, size_t errcap)
{
    const json_t *v;
    uint64_t x;
    os_err rc = find(&v, obj, key, required, T_STRING, "a decimal string", err, errcap);

    if (rc != OS_OK)
        return rc;
    if (v == NULL) {
        *out = dflt;
        return OS_OK;
    }
    /* the wire form of amounts: digits, no leading zero but "0", at most UINT64_MAX */
    rc = os_money_parse_json(&x, v);
    if (rc == OS_ERR_RANGE) {
        seterr(err, errcap, "field \"%s\" is out of range", key);
        return rc;
    }
    if (rc != OS_OK) {
        seterr(err, errcap, "field \"%s\" must be a decimal string of digits without leading zeros",
               key);
        return OS_ERR_INVALID;
    }
    *out = x;
    return OS_OK;
}

os_err os_json_get_u64_str(uint64_t *out, const json_t *obj, const char *key, char *err,
                           size_t errcap)
{
    return u64_str_field(out, obj, key, 1, 0, err, errcap);
}

os_err os_json_opt_u64_str(uint64_t *out, const json_t *obj, const char *key, uint64_t dflt,
                           char *err, size_t errcap)
{
    return u64_str_field(out, obj, key, 0, dflt, err, errcap);
}

static os_err u64_field(uint64_t *out, const json_t *obj, const char *key, int required,
                        uint64_t dflt, char *err, size_t errcap)
{
    const json_t *v;
    os_err rc = find(&v, obj, key, required, T_INTEGER, "an integer", err, errcap);

    if (rc != OS_OK)
        return rc;
    if (v == NULL) {
        *out = dflt;
        return OS_OK;
    }
    json_int_t i = json_integer_value(v);
    if (i < 0) {
        seterr(err, errcap, "field \"%s\" must not be negative", key);
        return OS_ERR_RANGE;
    }
    *out = (uint64_t)i;
    return OS_OK;
}

os_err os_json_get_u64(uint64_t *out, const json_t *obj, const char *key, char *err, size_t errcap)
{
    return u64_field(out, obj, key, 1, 0, err, errcap);
}

os_err os_json_opt_u64(uint64_t *out, const json_t *obj, const char *key, uint64_t dflt, char *err,
                       size_t errcap)
{
    return u64_field(out, obj, key, 0, dflt, err, errcap);
}

static os_err bool_field(bool *out, const json_t *obj, const char *key, int required, bool dflt,
                         char *err, size_t errcap)
{
    const json_t *v;
    os_err rc = find(&v, obj, key, required, T_BOOL, "true or false", err, errcap);

    if (rc == OS_OK)
        *out = v == NULL ? dflt : json_is_true(v);
    return rc;
}

os_err os_json_get_bool(bool *out, const json_t *obj, const char *key, char *err, size_t errcap)
{
    return bool_field(out, obj, key, 1, false, err, errcap);
}

os_err os_json_opt_bool(bool *out, const json_t *obj, const char *key, bool dflt, char *err,
                        size_t errcap)
{
    return bool_field(out, obj, key, 0, dflt, err, errcap);
}

os_err os_json_get_hex(uint8_t *out, size_t len, const json_t *obj, const char *key, char *err,
                       size_t errcap)
{
    const char *s;
    os_err rc = str_field(&s, obj, key, 2 + 2 * len, 1, err, errcap);

    if (rc == OS_ERR_TOOBIG)
        rc = OS_ERR_INVALID;
    if (rc != OS_OK) {
        if (rc == OS_ERR_INVALID)
            seterr(err, errcap, "field \"%s\" must be 0x and %zu hex digits", key, 2 * len);
        return rc;
    }
    /* Every digit is checked before decoding so out stays untouched on failure. */
    int ok = strlen(s) == 2 + 2 * len && s[0] == '0' && s[1] == 'x';
    for (size_t i = 2; ok && s[i] != '\0'; i++)
        ok = os_hex_digit(s[i]) >= 0;
    if (!ok || os_hex_decode_exact(out, len, s) != OS_OK) {
        seterr(err, errcap, "field \"%s\" must be 0x and %zu hex digits", key, 2 * len);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

static os_err object_field(const json_t **out, const json_t *obj, const char *key, int required,
                           char *err, size_t errcap)
{
    const json_t *v;
    os_err rc = find(&v, obj, key, required, T_OBJECT, "an object", err, errcap);

    if (rc == OS_OK)
        *out = v;
    return rc;
}

os_err os_json_get_object(const json_t **out, const json_t *obj, const char *key, char *err,
                          size_t errcap)
{
    return object_field(out, obj, key, 1, err, errcap);
}

os_err os_json_opt_object(const json_t **out, const json_t *obj, const char *key, char *err,
                          size_t errcap)
{
    return object_field(out, obj, key, 0, err, errcap);
}

static os_err array_field(const json_t **out, const json_t *obj, const char *key, size_t max_items,
                          int required, char *err, size_t errcap)
{
    const json_t *v;
    os_err rc = find(&v, obj, key, required, T_ARRAY, "an array", err, errcap);

    if (rc != OS_OK)
        return rc;
    if (v != NULL && json_array_size(v) > max_items) {
        seterr(err, errcap, "field \"%s\" has more than %zu items", key, max_items);
        return OS_ERR_TOOBIG;
    }
    *out = v;
    return OS_OK;
}

os_err os_json_get_array(const json_t **out, const json_t *obj, const char *key, size_t max_items,
                         char *err, size_t errcap)
{
    return array_field(out, obj, key, max_items, 1, err, errcap);
}

os_err os_json_opt_array(const json_t **out, const json_t *obj, const char *key, size_t max_items,
                         char *err, size_t errcap)
{
    return array_field(out, obj, key, max_items, 0, err, errcap);
}

/* Length of the longest prefix of s[0..n) that ends on a UTF-8 character boundary. */
static size_t utf8_floor(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

os_err os_json_check_keys(const json_t *obj, const char *const allowed[], char *err, size_t errcap)
{
    if (!json_is_object(obj) || allowed == NULL) {
        seterr(err, errcap, "expected a JSON object");
        return OS_ERR_INVALID;
    }
    /* jansson's iterators take a non-const object but do not modify it. */
    for (void *it = json_object_iter((json_t *)obj); it != NULL;
         it = json_object_iter_next((json_t *)obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t i;
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0)
                break;
        }
        if (allowed[i] == NULL) {
            size_t n = strlen(key);
            if (n > 64)
                n = utf8_floor(key, 64);
            seterr(err, errcap, "unknown field \"%.*s\"", (int)n, key);
            return OS_ERR_INVALID;
        }
    }
    return OS_OK;
}

/* ---- where-prefixed getters ---- */

os_err os_json_err_at(os_err rc, const char *where, const char *reason, char *err, size_t errcap)
{
    if (rc == OS_OK)
        return OS_OK;
    if (rc == OS_ERR_NOMEM)
        return os_errf(err, errcap, rc, "out of memory");
    return os_errf(err, errcap, OS_ERR_INVALID, "%s%s", where != NULL ? where : "",
                   reason != NULL ? reason : "");
}

os_err os_json_check_object(const json_t *obj, const char *const allowed[], const char *where,
                            char *err, size_t errcap)
{
    char tmp[OS_JSON_ERR_LEN];

    if (!json_is_object(obj))
        return os_errf(err, errcap, OS_ERR_INVALID, "%smust be a JSON object",
                       where != NULL ? where : "");
    return os_json_err_at(os_json_check_keys(obj, allowed, tmp, sizeof(tmp)), where, tmp, err,
                          errcap);
}

os_err os_json_at_object(const json_t **out, const json_t *obj, const char *key, const char *where,
                         char *err, size_t errcap)
{
    char tmp[OS_JSON_ERR_LEN];
    return os_json_err_at(os_json_get_object(out, obj, key, tmp, sizeof(tmp)), where, tmp, err,
                          errcap);
}

os_err os_json_at_array(const json_t **out, const json_t *obj, const char *key, size_t max_items,
                        const char *where, char *err, size_t errcap)
{
    char tmp[OS_JSON_ERR_LEN];
    return os_json_err_at(os_json_get_array(out, obj, key, max_items, tmp, sizeof(tmp)), where, tmp,
                          err, errcap);
}

os_err os_json_at_str(const char **out, const json_t *obj, const char *key, size_t max_len,
                      const char *where, char *err, size_t errcap)
{
    char tmp[OS_JSON_ERR_LEN];
    return os_json_err_at(os_json_get_str(out, obj, key, max_len, tmp, sizeof(tmp)), where, tmp,
                          err, errcap);
}

os_err os_json_at_u64(uint64_t *out, const json_t *obj, const char *key, uint64_t lo, uint64_t hi,
                      const char *where, char *err, size_t errcap)
{
    char tmp[OS_JSON_ERR_LEN];
    uint64_t v;
    os_err rc = os_json_get_u64(&v, obj, key, tmp, sizeof(tmp));

    if (rc != OS_OK)
        return os_json_err_at(rc, where, tmp, err, errcap);
    if (v < lo || v > hi)
        return os_errf(err, errcap, OS_ERR_INVALID, "%sfield \"%s\" must be between %llu and %llu",
                       where != NULL ? where : "", key, (unsigned long long)lo,
                       (unsigned long long)hi);
    *out = v;
    return OS_OK;
}

os_err os_json_at_u64_str(uint64_t *out, const json_t *obj, const char *key, const char *where,
                          char *err, size_t errcap)
{
    char tmp[OS_JSON_ERR_LEN];
    return os_json_err_at(os_json_get_u64_str(out, obj, key, tmp, sizeof(tmp)), where, tmp, err,
                          errcap);
}

os_err os_json_at_hex(uint8_t *out, size_t len, const json_t *obj, const char *key,
                      const char *where, char *err, size_t errcap)
{
    char tmp[OS_JSON_ERR_LEN];
    return os_json_err_at(os_json_get_hex(out, len, obj, key, tmp, sizeof(tmp)), where, tmp, err,
                          errcap);
}

os_err os_json_at_address(uint8_t out[20], const json_t *obj, const char *key, const char *where,
                          char *err, size_t errcap)
{
    const char *s = NULL;
    os_err rc = os_json_at_str(&s, obj, key, OS_ADDRESS_STR_LEN - 1, where, err, errcap);

    if (rc != OS_OK)
        return rc;
    if (os_eip55_parse(out, s) != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%sfield \"%s\" must be a 0x address with a valid EIP-55 checksum",
                       where != NULL ? where : "", key);
    return OS_OK;
}

/* ---- builders ---- */

bool os_json_put(json_t *obj, const char *key, json_t *v)
{
    /* jansson releases v itself when the set fails */
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

json_t *os_json_child(json_t *parent, const char *key, json_t *v)
{
    return os_json_put(parent, key, v) ? v : NULL;
}

json_t *os_json_u64(uint64_t v)
{
    return v <= INT64_MAX ? json_integer((json_int_t)v) : NULL;
}

json_t *os_json_hex(const uint8_t *p, size_t n)
{
    char *s;
    json_t *v = NULL;

    if ((p == NULL && n > 0) || n > (SIZE_MAX - 3) / 2 || (s = malloc(OS_HEX_LEN(n))) == NULL)
        return NULL;
    if (os_hex_encode(s, OS_HEX_LEN(n), p, n, 1) == OS_OK)
        v = json_string(s);
    free(s);
    return v;
}

json_t *os_json_address(const uint8_t a[20])
{
    char s[OS_ADDRESS_STR_LEN];

    if (a == NULL)
        return NULL;
    os_eip55_format(s, a);
    return json_string(s);
}

os_err os_json_dump_canonical(const json_t *v, char **out, size_t *len)
{
    char *s;

    if (out == NULL || v == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s == NULL) {
        /* json_dumps gives no reason; the only failures are memory and unencodable strings. */
        return OS_ERR_INVALID;
    }
    *out = s;
    if (len != NULL)
        *len = strlen(s);
    return OS_OK;
}

/* Length of the valid UTF-8 character at s (1..4), or 0 if the bytes there are not one. */
static size_t utf8_char(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL terminator */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

char *os_utf8_sanitize(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);

    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char((const unsigned char *)s + i);
        if (k == 0) {
            d[i++] = '?';
        } else {
            memcpy(d + i, s + i, k);
            i += k;
        }
    }
    d[n] = '\0';
    return d;
}

/* Adds key: sanitised s (or null) to obj; returns 0 on success. */
static int set_text(json_t *obj, const char *key, const char *s)
{
    json_t *v;

    if (s == NULL) {
        v = json_null();
    } else {
        char *clean = os_utf8_sanitize(s);
        if (clean == NULL)
            return -1;
        v = json_string(clean);
        free(clean);
    }
    return json_object_set_new(obj, key, v);
}

char *os_json_error_body(const char *message, const char *type, const char *code)
{
    json_t *root = json_object();
    json_t *inner = json_object();
    char *out = NULL;

    if (root == NULL || inner == NULL)
        goto done;
    if (set_text(inner, "message", message != NULL ? message : "") != 0 ||
        set_text(inner, "type", type != NULL ? type : "") != 0 ||
        set_text(inner, "code", code) != 0)
        goto done;
    if (json_object_set(root, "error", inner) != 0)
        goto done;
    out = json_dumps(root, JSON_COMPACT);
done:
    json_decref(inner);
    json_decref(root);
    return out;
}
