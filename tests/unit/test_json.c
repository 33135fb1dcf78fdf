/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for json.c: the parser's limits (depth exactly at and one over the cap, brackets inside
 * strings and after escaped quotes, the byte cap, duplicate keys, syntax errors whose text must not
 * echo input), every getter's negative cases, the where-prefixed getters and the value builders,
 * the unknown-field check, the canonical dump that bodyHash is computed over (key order and escapes,
 * spelled out byte for byte) and the OpenAI error body.
 */
#include "testutil.h"

#include <stdlib.h>

#include "openseed/json.h"

static json_t *parse_ok(const char *text)
{
    char err[OS_JSON_ERR_LEN];
    json_t *v = NULL;
    os_err rc = os_json_parse(&v, text, strlen(text), 1 << 20, 64, err, sizeof(err));
    if (rc != OS_OK)
        fail_msg("parse of %s failed: %s", text, err);
    assert_non_null(v);
    return v;
}

static os_err parse_depth(const char *text, int max_depth, char *err, size_t errcap)
{
    json_t *v = (json_t *)1;
    os_err rc = os_json_parse(&v, text, strlen(text), 1 << 20, max_depth, err, errcap);
    if (rc == OS_OK) {
        assert_non_null(v);
        json_decref(v);
    } else {
        assert_null(v);
    }
    return rc;
}

static void test_depth_limit(void **state)
{
    char err[OS_JSON_ERR_LEN];
    (void)state;
    assert_int_equal(parse_depth("[[[]]]", 3, err, sizeof(err)), OS_OK);
    assert_int_equal(parse_depth("[[[[]]]]", 3, err, sizeof(err)), OS_ERR_TOOBIG);
    assert_non_null(strstr(err, "deeper than 3"));
    assert_int_equal(parse_depth("{\"a\":{\"b\":[1]}}", 3, err, sizeof(err)), OS_OK);
    assert_int_equal(parse_depth("{\"a\":{\"b\":[[1]]}}", 3, err, sizeof(err)), OS_ERR_TOOBIG);
    /* siblings do not add up: depth is nesting, not a count of containers */
    assert_int_equal(parse_depth("[[1],[2],{\"x\":[3]}]", 2, err, sizeof(err)), OS_ERR_TOOBIG);
    assert_int_equal(parse_depth("[[1],[2],{\"x\":3}]", 2, err, sizeof(err)), OS_OK);
    assert_int_equal(parse_depth("{}", 1, err, sizeof(err)), OS_OK);
    assert_int_equal(parse_depth("{}", 0, err, sizeof(err)), OS_ERR_INVALID);

    /* 100000 nested arrays: refused by the pre-scan, no recursion in jansson */
    size_t n = 100000;
    char *deep = malloc(2 * n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    json_t *v = NULL;
    assert_int_equal(os_json_parse(&v, deep, 2 * n, 4 * n, 64, err, sizeof(err)), OS_ERR_TOOBIG);
    assert_null(v);
    free(deep);
}

static void test_depth_ignores_strings(void **state)
{
    char err[OS_JSON_ERR_LEN];
    (void)state;
    assert_int_equal(parse_depth("[\"[[[[{{{{\", \"]]]]}}}\"]", 1, err, sizeof(err)), OS_OK);
    assert_int_equal(parse_depth("{\"[[[\":\"{{{\"}", 1, err, sizeof(err)), OS_OK);
    /* an escaped quote does not end the string: the brackets after it are still inside */
    assert_int_equal(parse_depth("[\"\\\"[[[[\"]", 1, err, sizeof(err)), OS_OK);
    /* an escaped backslash does end before the quote: the brackets after it count */
    assert_int_equal(parse_depth("[\"\\\\\",[[1]]]", 2, err, sizeof(err)), OS_ERR_TOOBIG);
    assert_int_equal(parse_depth("[\"\\\\\",[[1]]]", 3, err, sizeof(err)), OS_OK);
}

static void test_size_cap(void **state)
{
    char err[OS_JSON_ERR_LEN];
    const char *text = "{\"a\":\"0123456789\"}"; /* 18 bytes */
    size_t len = strlen(text);
    json_t *v = NULL;
    (void)state;
    assert_int_equal(len, 18);
    assert_int_equal(os_json_parse(&v, text, len, len, 8, err, sizeof(err)), OS_OK);
    json_decref(v);
    v = NULL;
    assert_int_equal(os_json_parse(&v, text, len, len - 1, 8, err, sizeof(err)), OS_ERR_TOOBIG);
    assert_null(v);
    assert_non_null(strstr(err, "larger than 17 bytes"));
    /* the length given is what counts, not a NUL terminator */
    assert_int_equal(os_json_parse(&v, "{}garbage", 2, 2, 8, err, sizeof(err)), OS_OK);
    json_decref(v);
}

static void test_duplicates_and_syntax(void **state)
{
    char err[OS_JSON_ERR_LEN];
    json_t *v = NULL;
    static const char *const bad[] = {
        "{\"a\":1,\"a\":2}",
        "{\"x\":{\"secret-token\":1,\"secret-token\":2}}",
        "{} trailing",
        "42",              /* top level must be an object or array */
        "[\"a\\u0000b\"]", /* NUL inside a string */
        "[\"\xff\"]",      /* invalid UTF-8 */
        "{\"a\":1,}",
        "[01]",
        "",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = (json_t *)1;
        assert_int_equal(os_json_parse(&v, bad[i], strlen(bad[i]), 1024, 8, err, sizeof(err)),
                         OS_ERR_INVALID);
        assert_null(v);
        assert_non_null(strstr(err, "invalid JSON at line"));
        /* jansson's " near '<token>'" is cut: nothing from the input comes back */
        assert_null(strstr(err, "near"));
        assert_null(strstr(err, "secret-token"));
        assert_null(strstr(err, "trailing"));
    }
    assert_int_equal(os_json_parse(&v, bad[0], strlen(bad[0]), 1024, 8, err, sizeof(err)),
                     OS_ERR_INVALID);
    assert_non_null(strstr(err, "duplicate"));
}

/* OS_JSON_ALLOW_NUL admits \u0000 (anvil's revert messages carry raw bytes), and only with the flag;
 * the typed getter still refuses such a string. */
static void test_allow_nul_flag(void **state)
{
    static const char doc[] = "{\"m\":\"a\\u0000b\"}";
    char err[OS_JSON_ERR_LEN];
    const char *m = NULL;
    json_t *v = NULL;
    (void)state;
    assert_int_equal(os_json_parse_flags(&v, doc, strlen(doc), 1024, 8, 0, err, sizeof(err)),
                     OS_ERR_INVALID);
    assert_null(v);
    assert_int_equal(
        os_json_parse_flags(&v, doc, strlen(doc), 1024, 8, OS_JSON_ALLOW_NUL, err, sizeof(err)),
        OS_OK);
    assert_non_null(v);
    assert_int_equal(json_string_length(json_object_get(v, "m")), 3);
    assert_int_not_equal(os_json_get_str(&m, v, "m", 64, err, sizeof(err)), OS_OK);
    json_decref(v);
}

static void test_get_str(void **state)
{
    char err[OS_JSON_ERR_LEN];
    json_t *o = parse_ok("{\"s\":\"abcd\",\"n\":5,\"z\":null,\"u\":\"\xc3\xa9\"}");
    const char *s = "untouched";
    (void)state;

    assert_int_equal(os_json_get_str(&s, o, "s", 4, err, sizeof(err)), OS_OK);
    assert_string_equal(s, "abcd");
    s = "untouched";
    assert_int_equal(os_json_get_str(&s, o, "s", 3, err, sizeof(err)), OS_ERR_TOOBIG);
    assert_string_equal(s, "untouched");
    assert_string_equal(err, "field \"s\" is longer than 3 bytes");
    assert_int_equal(os_json_get_str(&s, o, "n", 10, err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "field \"n\" must be a string");
    assert_int_equal(os_json_get_str(&s, o, "missing", 10, err, sizeof(err)), OS_ERR_NOTFOUND);
    assert_string_equal(err, "missing field \"missing\"");
    /* null is not a string for a required field, but absent for an optional one */
    assert_int_equal(os_json_get_str(&s, o, "z", 10, err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_json_opt_str(&s, o, "z", 10, err, sizeof(err)), OS_OK);
    assert_null(s);
    assert_int_equal(os_json_opt_str(&s, o, "missing", 10, err, sizeof(err)), OS_OK);
    assert_null(s);
    assert_int_equal(os_json_opt_str(&s, o, "n", 10, err, sizeof(err)), OS_ERR_INVALID);
    /* the cap counts bytes: é is two */
    assert_int_equal(os_json_get_str(&s, o, "u", 1, err, sizeof(err)), OS_ERR_TOOBIG);
    assert_int_equal(os_json_get_str(&s, o, "u", 2, err, sizeof(err)), OS_OK);
    /* not an object */
    json_t *arr = parse_ok("[1]");
    assert_int_equal(os_json_get_str(&s, arr, "s", 10, err, sizeof(err)), OS_ERR_INVALID);
    json_decref(arr);
    /* a string with an embedded NUL (only possible when built in code) */
    json_t *nul = json_object();
    assert_int_equal(json_object_set_new(nul, "k", json_stringn("a\0b", 3)), 0);
    assert_int_equal(os_json_get_str(&s, nul, "k", 10, err, sizeof(err)), OS_ERR_INVALID);
    json_decref(nul);
    json_decref(o);
}

static void test_get_u64_str(void **state)
{
    char err[OS_JSON_ERR_LEN];
    static const struct {
        const char *text;
        os_err rc;
        uint64_t want;
    } v[] = {
        {"\"0\"", OS_OK, 0},
        {"\"1290\"", OS_OK, 1290},
        {"\"18446744073709551615\"", OS_OK, UINT64_MAX},
        {"\"18446744073709551616\"", OS_ERR_RANGE, 0},
        {"\"99999999999999999999999\"", OS_ERR_RANGE, 0},
        {"\"007\"", OS_ERR_INVALID, 0},
        {"\"00\"", OS_ERR_INVALID, 0},
        {"\"-1\"", OS_ERR_INVALID, 0},
        {"\"+1\"", OS_ERR_INVALID, 0},
        {"\" 1\"", OS_ERR_INVALID, 0},
        {"\"1 \"", OS_ERR_INVALID, 0},
        {"\"1e3\"", OS_ERR_INVALID, 0},
        {"\"1.0\"", OS_ERR_INVALID, 0},
        {"\"0x10\"", OS_ERR_INVALID, 0},
        {"\"\"", OS_ERR_INVALID, 0},
        {"5", OS_ERR_INVALID, 0}, /* a JSON number is not a wire amount */
        {"true", OS_ERR_INVALID, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char text[80];
        snprintf(text, sizeof(text), "{\"amount\":%s}", v[i].text);
        json_t *o = parse_ok(text);
        uint64_t out = 777;
        os_err rc = os_json_get_u64_str(&out, o, "amount", err, sizeof(err));
        if (rc != v[i].rc)
            fail_msg("%s: got %d want %d", text, rc, v[i].rc);
        assert_int_equal(out, rc == OS_OK ? v[i].want : 777);
        json_decref(o);
    }
    json_t *o = parse_ok("{\"z\":null}");
    uint64_t out = 0;
    assert_int_equal(os_json_get_u64_str(&out, o, "a", err, sizeof(err)), OS_ERR_NOTFOUND);
    assert_int_equal(os_json_opt_u64_str(&out, o, "a", 42, err, sizeof(err)), OS_OK);
    assert_int_equal(out, 42);
    assert_int_equal(os_json_opt_u64_str(&out, o, "z", 43, err, sizeof(err)), OS_OK);
    assert_int_equal(out, 43);
    json_decref(o);
}

static void test_get_u64_bool(void **state)
{
    char err[OS_JSON_ERR_LEN];
    json_t *o =
        parse_ok("{\"a\":5,\"neg\":-1,\"real\":1.0,\"str\":\"5\",\"max\":9223372036854775807,"
                 "\"t\":true,\"f\":false,\"one\":1,\"ts\":\"true\"}");
    uint64_t u = 9;
    bool b = false;
    (void)state;
    assert_int_equal(os_json_get_u64(&u, o, "a", err, sizeof(err)), OS_OK);
    assert_int_equal(u, 5);
    assert_int_equal(os_json_get_u64(&u, o, "max", err, sizeof(err)), OS_OK);
    assert_true(u == (uint64_t)INT64_MAX);
    u = 9;
    assert_int_equal(os_json_get_u64(&u, o, "neg", err, sizeof(err)), OS_ERR_RANGE);
    assert_string_equal(err, "field \"neg\" must not be negative");
    assert_int_equal(os_json_get_u64(&u, o, "real", err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_json_get_u64(&u, o, "str", err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_json_get_u64(&u, o, "none", err, sizeof(err)), OS_ERR_NOTFOUND);
    assert_int_equal(u, 9);
    assert_int_equal(os_json_opt_u64(&u, o, "none", 11, err, sizeof(err)), OS_OK);
    assert_int_equal(u, 11);

    assert_int_equal(os_json_get_bool(&b, o, "t", err, sizeof(err)), OS_OK);
    assert_true(b);
    assert_int_equal(os_json_get_bool(&b, o, "f", err, sizeof(err)), OS_OK);
    assert_false(b);
    assert_int_equal(os_json_get_bool(&b, o, "one", err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_json_get_bool(&b, o, "ts", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "field \"ts\" must be true or false");
    assert_int_equal(os_json_get_bool(&b, o, "none", err, sizeof(err)), OS_ERR_NOTFOUND);
    assert_int_equal(os_json_opt_bool(&b, o, "none", true, err, sizeof(err)), OS_OK);
    assert_true(b);
    json_decref(o);
}

static void test_get_hex(void **state)
{
    char err[OS_JSON_ERR_LEN];
    json_t *o =
        parse_ok("{\"h\":\"0x00ff10Ab\",\"short\":\"0x00ff10\",\"long\":\"0x00ff10ab00\","
                 "\"nopfx\":\"00ff10ab\",\"bad\":\"0x00ff10ag\",\"n\":5,\"odd\":\"0x00ff10a\","
                 "\"upx\":\"0X00ff10ab\"}");
    uint8_t out[4] = {9, 9, 9, 9};
    (void)state;
    assert_int_equal(os_json_get_hex(out, 4, o, "h", err, sizeof(err)), OS_OK);
    tu_assert_hex(out, 4, "00ff10ab");
    memset(out, 9, sizeof(out));
    static const char *const bad[] = {"short", "long", "nopfx", "bad", "n", "odd", "upx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(os_json_get_hex(out, 4, o, bad[i], err, sizeof(err)), OS_ERR_INVALID);
        assert_non_null(strstr(err, "must be 0x and 8 hex digits"));
    }
    tu_assert_hex(out, 4, "09090909");
    assert_int_equal(os_json_get_hex(out, 4, o, "none", err, sizeof(err)), OS_ERR_NOTFOUND);
    json_decref(o);
}

static void test_get_object_array(void **state)
{
    char err[OS_JSON_ERR_LEN];
    json_t *o = parse_ok("{\"o\":{\"k\":1},\"a\":[1,2,3],\"z\":null,\"n\":1}");
    const json_t *p = NULL;
    (void)state;
    assert_int_equal(os_json_get_object(&p, o, "o", err, sizeof(err)), OS_OK);
    assert_true(json_is_object(p));
    assert_int_equal(os_json_get_object(&p, o, "a", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "field \"a\" must be an object");
    assert_int_equal(os_json_get_object(&p, o, "none", err, sizeof(err)), OS_ERR_NOTFOUND);
    assert_int_equal(os_json_opt_object(&p, o, "z", err, sizeof(err)), OS_OK);
    assert_null(p);
    assert_int_equal(os_json_get_array(&p, o, "a", 3, err, sizeof(err)), OS_OK);
    assert_int_equal(json_array_size(p), 3);
    assert_int_equal(os_json_get_array(&p, o, "a", 2, err, sizeof(err)), OS_ERR_TOOBIG);
    assert_string_equal(err, "field \"a\" has more than 2 items");
    assert_int_equal(os_json_get_array(&p, o, "o", 9, err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_json_opt_array(&p, o, "none", 9, err, sizeof(err)), OS_OK);
    assert_null(p);
    assert_int_equal(os_json_opt_array(&p, o, "n", 9, err, sizeof(err)), OS_ERR_INVALID);
    json_decref(o);
}

static void test_check_keys(void **state)
{
    char err[OS_JSON_ERR_LEN];
    static const char *const allowed[] = {"record", "signature", NULL};
    (void)state;
    json_t *ok = parse_ok("{\"signature\":1,\"record\":{}}");
    assert_int_equal(os_json_check_keys(ok, allowed, err, sizeof(err)), OS_OK);
    json_decref(ok);
    json_t *empty = parse_ok("{}");
    assert_int_equal(os_json_check_keys(empty, allowed, err, sizeof(err)), OS_OK);
    json_decref(empty);
    json_t *bad = parse_ok("{\"record\":{},\"extra\":1}");
    assert_int_equal(os_json_check_keys(bad, allowed, err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "unknown field \"extra\"");
    json_decref(bad);
    /* a long unknown key is cut to 64 bytes, never inside a UTF-8 character */
    char text[256];
    char key[200];
    memset(key, 'k', 63);
    memcpy(key + 63, "\xc3\xa9\xc3\xa9", 4);
    key[67] = '\0';
    snprintf(text, sizeof(text), "{\"%s\":1}", key);
    json_t *lk = parse_ok(text);
    assert_int_equal(os_json_check_keys(lk, allowed, err, sizeof(err)), OS_ERR_INVALID);
    char want[128];
    snprintf(want, sizeof(want), "unknown field \"%.63s\"", key);
    assert_string_equal(err, want);
    json_decref(lk);
    json_t *arr = parse_ok("[]");
    assert_int_equal(os_json_check_keys(arr, allowed, err, sizeof(err)), OS_ERR_INVALID);
    json_decref(arr);
}

/* ---- where-prefixed getters ---- */

static void test_err_at(void **state)
{
    char err[OS_JSON_ERR_LEN];
    (void)state;

    snprintf(err, sizeof(err), "kept");
    assert_int_equal(os_json_err_at(OS_OK, "voucher: ", "ignored", err, sizeof(err)), OS_OK);
    assert_string_equal(err, "kept");
    /* every failure but memory becomes OS_ERR_INVALID with where in front */
    assert_int_equal(
        os_json_err_at(OS_ERR_NOTFOUND, "voucher: ", "missing field \"nonce\"", err, sizeof(err)),
        OS_ERR_INVALID);
    assert_string_equal(err, "voucher: missing field \"nonce\"");
    assert_int_equal(os_json_err_at(OS_ERR_TOOBIG, "", "too long", err, sizeof(err)),
                     OS_ERR_INVALID);
    assert_string_equal(err, "too long");
    assert_int_equal(os_json_err_at(OS_ERR_RANGE, NULL, NULL, err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "");
    assert_int_equal(os_json_err_at(OS_ERR_NOMEM, "voucher: ", "whatever", err, sizeof(err)),
                     OS_ERR_NOMEM);
    assert_string_equal(err, "out of memory");
    /* no err buffer at all */
    assert_int_equal(os_json_err_at(OS_ERR_NOTFOUND, "x: ", "y", NULL, 0), OS_ERR_INVALID);
    /* a short buffer is cut, still terminated */
    char small[6];
    assert_int_equal(os_json_err_at(OS_ERR_INVALID, "load: ", "field", small, sizeof(small)),
                     OS_ERR_INVALID);
    assert_string_equal(small, "load:");
}

static void test_check_object(void **state)
{
    char err[OS_JSON_ERR_LEN];
    static const char *const keys[] = {"a", "b", NULL};
    json_t *ok = parse_ok("{\"a\":1}");
    json_t *bad = parse_ok("{\"a\":1,\"c\":2}");
    json_t *arr = parse_ok("[1]");
    (void)state;

    assert_int_equal(os_json_check_object(ok, keys, "load: ", err, sizeof(err)), OS_OK);
    assert_int_equal(os_json_check_object(bad, keys, "load: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "load: unknown field \"c\"");
    assert_int_equal(os_json_check_object(arr, keys, "load: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "load: must be a JSON object");
    assert_int_equal(os_json_check_object(NULL, keys, "", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "must be a JSON object");
    assert_int_equal(os_json_check_object(ok, keys, NULL, err, sizeof(err)), OS_OK);
    assert_int_equal(os_json_check_object(bad, keys, NULL, err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "unknown field \"c\"");
    json_decref(ok);
    json_decref(bad);
    json_decref(arr);
}

static void test_at_getters(void **state)
{
    char err[OS_JSON_ERR_LEN];
    json_t *o = parse_ok("{\"o\":{},\"a\":[1,2],\"s\":\"abc\",\"n\":7,\"neg\":-1,\"amt\":\"1290\","
                         "\"lz\":\"01\",\"big\":\"18446744073709551616\",\"h\":\"0x00Ff\"}");
    const json_t *p = NULL;
    const char *s = "untouched";
    uint64_t u = 42;
    uint8_t h[2] = {9, 9};
    (void)state;

    assert_int_equal(os_json_at_object(&p, o, "o", "x: ", err, sizeof(err)), OS_OK);
    assert_true(json_is_object(p));
    assert_int_equal(os_json_at_object(&p, o, "a", "x: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "x: field \"a\" must be an object");
    assert_int_equal(os_json_at_object(&p, o, "none", "x: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "x: missing field \"none\"");

    assert_int_equal(os_json_at_array(&p, o, "a", 2, "x: ", err, sizeof(err)), OS_OK);
    assert_int_equal(json_array_size(p), 2);
    /* too many items is malformed too: OS_ERR_TOOBIG becomes OS_ERR_INVALID */
    assert_int_equal(os_json_at_array(&p, o, "a", 1, "x: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "x: field \"a\" has more than 1 items");

    assert_int_equal(os_json_at_str(&s, o, "s", 3, "", err, sizeof(err)), OS_OK);
    assert_string_equal(s, "abc");
    s = "untouched";
    assert_int_equal(os_json_at_str(&s, o, "s", 2, "x: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "x: field \"s\" is longer than 2 bytes");
    assert_string_equal(s, "untouched");
    assert_int_equal(os_json_at_str(&s, o, "n", 9, NULL, err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "field \"n\" must be a string");

    /* range: both ends inclusive; the output is written only on success */
    assert_int_equal(os_json_at_u64(&u, o, "n", 7, 7, "", err, sizeof(err)), OS_OK);
    assert_true(u == 7);
    u = 42;
    assert_int_equal(os_json_at_u64(&u, o, "n", 8, 10, "load: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "load: field \"n\" must be between 8 and 10");
    assert_int_equal(os_json_at_u64(&u, o, "n", 0, 6, "", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "field \"n\" must be between 0 and 6");
    assert_true(u == 42);
    assert_int_equal(os_json_at_u64(&u, o, "n", 0, UINT64_MAX, "", err, sizeof(err)), OS_OK);
    assert_true(u == 7);
    u = 42;
    assert_int_equal(os_json_at_u64(&u, o, "neg", 0, UINT64_MAX, "x: ", err, sizeof(err)),
                     OS_ERR_INVALID);
    assert_string_equal(err, "x: field \"neg\" must not be negative");
    assert_int_equal(os_json_at_u64(&u, o, "amt", 0, 9, "x: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "x: field \"amt\" must be an integer");
    assert_true(u == 42);

    assert_int_equal(os_json_at_u64_str(&u, o, "amt", "", err, sizeof(err)), OS_OK);
    assert_true(u == 1290);
    u = 42;
    assert_int_equal(os_json_at_u64_str(&u, o, "lz", "v: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err,
                        "v: field \"lz\" must be a decimal string of digits without leading zeros");
    /* above UINT64_MAX is OS_ERR_RANGE from the getter, OS_ERR_INVALID here */
    assert_int_equal(os_json_at_u64_str(&u, o, "big", "v: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "v: field \"big\" is out of range");
    assert_int_equal(os_json_at_u64_str(&u, o, "n", "v: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "v: field \"n\" must be a decimal string");
    assert_true(u == 42);

    assert_int_equal(os_json_at_hex(h, 2, o, "h", "", err, sizeof(err)), OS_OK);
    tu_assert_hex(h, 2, "00ff");
    memset(h, 9, sizeof(h));
    assert_int_equal(os_json_at_hex(h, 1, o, "h", "v: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "v: field \"h\" must be 0x and 2 hex digits");
    assert_int_equal(os_json_at_hex(h, 2, o, "none", "v: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "v: missing field \"none\"");
    tu_assert_hex(h, 2, "0909");
    json_decref(o);
}

/* EIP-55's own test vectors (https://eips.ethereum.org/EIPS/eip-55). */
static void test_at_address(void **state)
{
    char err[OS_JSON_ERR_LEN];
    json_t *o = parse_ok("{\"good\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\","
                         "\"lower\":\"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\","
                         "\"flip\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\","
                         "\"short\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA\","
                         "\"long\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00\",\"n\":1}");
    uint8_t a[20], want[20];
    (void)state;

    tu_unhex(want, 20, "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
    assert_int_equal(os_json_at_address(a, o, "good", "", err, sizeof(err)), OS_OK);
    assert_memory_equal(a, want, 20);
    /* EIP-55 leaves all-lower-case addresses unchecked */
    memset(a, 0, sizeof(a));
    assert_int_equal(os_json_at_address(a, o, "lower", "", err, sizeof(err)), OS_OK);
    assert_memory_equal(a, want, 20);
    memset(a, 0, sizeof(a));
    static const char *const bad[] = {"flip", "short"};
    for (size_t i = 0; i < 2; i++) {
        char w[OS_JSON_ERR_LEN];
        assert_int_equal(os_json_at_address(a, o, bad[i], "extra: ", err, sizeof(err)),
                         OS_ERR_INVALID);
        snprintf(w, sizeof(w),
                 "extra: field \"%s\" must be a 0x address with a valid EIP-55 checksum", bad[i]);
        assert_string_equal(err, w);
    }
    assert_int_equal(os_json_at_address(a, o, "long", "extra: ", err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "extra: field \"long\" is longer than 42 bytes");
    assert_int_equal(os_json_at_address(a, o, "n", NULL, err, sizeof(err)), OS_ERR_INVALID);
    assert_string_equal(err, "field \"n\" must be a string");
    assert_int_equal(os_json_at_address(a, o, "none", "", NULL, 0), OS_ERR_INVALID);
    static const uint8_t zero[20];
    assert_memory_equal(a, zero, 20);
    json_decref(o);
}

/* ---- builders ---- */

static void test_put_child(void **state)
{
    json_t *root = json_object(), *c, *arr = json_array();
    char *text;
    (void)state;

    assert_non_null(root);
    assert_true(os_json_put(root, "a", json_integer(1)));
    assert_false(os_json_put(root, "b", NULL));
    assert_null(json_object_get(root, "b"));
    /* v is released when the put fails: a leak here would show under the sanitizer build */
    assert_false(os_json_put(arr, "a", json_string("x")));
    assert_false(os_json_put(root, NULL, json_string("x")));
    c = os_json_child(root, "c", json_object());
    assert_non_null(c);
    assert_ptr_equal(json_object_get(root, "c"), c);
    assert_true(os_json_put(c, "d", json_true()));
    assert_null(os_json_child(root, "e", NULL));
    assert_null(os_json_child(arr, "e", json_object()));
    assert_int_equal(os_json_dump_canonical(root, &text, NULL), OS_OK);
    assert_string_equal(text, "{\"a\":1,\"c\":{\"d\":true}}");
    free(text);
    json_decref(arr);
    json_decref(root);
}

static void test_value_builders(void **state)
{
    uint8_t b[100], a[20];
    json_t *v;
    (void)state;

    v = os_json_u64(0);
    assert_true(json_is_integer(v) && json_integer_value(v) == 0);
    json_decref(v);
    v = os_json_u64(INT64_MAX);
    assert_true(json_is_integer(v) && json_integer_value(v) == INT64_MAX);
    json_decref(v);
    assert_null(os_json_u64((uint64_t)INT64_MAX + 1));
    assert_null(os_json_u64(UINT64_MAX));

    tu_unhex(b, 3, "00ff10");
    v = os_json_hex(b, 3);
    assert_string_equal(json_string_value(v), "0x00ff10");
    json_decref(v);
    v = os_json_hex(NULL, 0);
    assert_string_equal(json_string_value(v), "0x");
    json_decref(v);
    assert_null(os_json_hex(NULL, 1));
    /* longer than a signature is fine */
    memset(b, 0xab, sizeof(b));
    v = os_json_hex(b, sizeof(b));
    assert_int_equal(json_string_length(v), 2 + 2 * sizeof(b));
    assert_int_equal(strspn(json_string_value(v) + 2, "ab"), 2 * sizeof(b));
    json_decref(v);

    /* EIP-55 vector (https://eips.ethereum.org/EIPS/eip-55) */
    tu_unhex(a, 20, "fb6916095ca1df60bb79ce92ce3ea74c37c5d359");
    v = os_json_address(a);
    assert_string_equal(json_string_value(v), "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359");
    json_decref(v);
    assert_null(os_json_address(NULL));
}

static void check_canonical(const char *in, const char *want)
{
    json_t *v = parse_ok(in);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(os_json_dump_canonical(v, &out, &len), OS_OK);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    free(out);
    json_decref(v);
}

static void test_canonical(void **state)
{
    (void)state;
    /* keys sorted at every level, whitespace gone, array order kept */
    check_canonical(
        "{ \"seq\" : 17, \"node_id\":\"0xab\",\n \"offerings\":[{\"z\":1,\"a\":[3,1,2]}],"
        " \"b\": {\"y\":null, \"x\":true} }",
        "{\"b\":{\"x\":true,\"y\":null},\"node_id\":\"0xab\",\"offerings\":[{\"a\":[3,"
        "1,2],\"z\":1}],\"seq\":17}");
    /* bytewise order: 'B' (0x42) < '_' (0x5f) < 'a' (0x61) < "é" (0xc3 0xa9) */
    check_canonical("{\"\xc3\xa9\":4,\"a\":1,\"_\":3,\"B\":2}",
                    "{\"B\":2,\"_\":3,\"a\":1,\"\xc3\xa9\":4}");
    /* escapes: quote, backslash, the short forms, other controls as \u00XX with upper-case hex,
     * '/' and non-ASCII as is; \u escapes in the input are decoded then re-encoded */
    check_canonical("[\"q\\\"b\\\\ \\n\\t\\r\\b\\f \\u0001\\u001f / \\u00e9 \\ud83d\\ude00\"]",
                    "[\"q\\\"b\\\\ \\n\\t\\r\\b\\f \\u0001\\u001F / \xc3\xa9 \xf0\x9f\x98\x80\"]");
    /* a scalar at the top level (JSON_ENCODE_ANY) */
    json_t *s = json_string("x");
    char *out = NULL;
    assert_int_equal(os_json_dump_canonical(s, &out, NULL), OS_OK);
    assert_string_equal(out, "\"x\"");
    free(out);
    json_decref(s);
    assert_int_equal(os_json_dump_canonical(NULL, &out, NULL), OS_ERR_INVALID);
}

static void test_error_body(void **state)
{
    char *b;
    (void)state;
    b = os_json_error_body("bad \"x\"\n", "invalid_request_error", NULL);
    assert_non_null(b);
    assert_string_equal(
        b, "{\"error\":{\"message\":\"bad \\\"x\\\"\\n\",\"type\":\"invalid_request_error\","
           "\"code\":null}}");
    free(b);
    b = os_json_error_body("payment required", "payment_error", "insufficient_voucher");
    assert_string_equal(b,
                        "{\"error\":{\"message\":\"payment required\",\"type\":\"payment_error\","
                        "\"code\":\"insufficient_voucher\"}}");
    free(b);
    /* invalid UTF-8 (a reason cut mid-character, a stray byte) becomes '?' */
    b = os_json_error_body("cut \xc3", "t\xff", "c\xed\xa0\x80");
    assert_string_equal(b, "{\"error\":{\"message\":\"cut ?\",\"type\":\"t?\",\"code\":\"c???\"}}");
    free(b);
    b = os_json_error_body(NULL, NULL, NULL);
    assert_string_equal(b, "{\"error\":{\"message\":\"\",\"type\":\"\",\"code\":null}}");
    free(b);
    /* and it parses back */
    b = os_json_error_body("\xe2\x82\xac 5", "x", "y");
    json_t *v = parse_ok(b);
    const json_t *e;
    const char *m;
    char err[OS_JSON_ERR_LEN];
    assert_int_equal(os_json_get_object(&e, v, "error", err, sizeof(err)), OS_OK);
    assert_int_equal(os_json_get_str(&m, e, "message", 100, err, sizeof(err)), OS_OK);
    assert_string_equal(m, "\xe2\x82\xac 5");
    json_decref(v);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_limit),    cmocka_unit_test(test_depth_ignores_strings),
        cmocka_unit_test(test_size_cap),       cmocka_unit_test(test_duplicates_and_syntax),
        cmocka_unit_test(test_allow_nul_flag), cmocka_unit_test(test_get_str),
        cmocka_unit_test(test_get_u64_str),    cmocka_unit_test(test_get_u64_bool),
        cmocka_unit_test(test_get_hex),        cmocka_unit_test(test_get_object_array),
        cmocka_unit_test(test_check_keys),     cmocka_unit_test(test_err_at),
        cmocka_unit_test(test_check_object),   cmocka_unit_test(test_at_getters),
        cmocka_unit_test(test_at_address),     cmocka_unit_test(test_put_child),
        cmocka_unit_test(test_value_builders), cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_error_body),
    };
    return cmocka_run_group_tests_name("json", tests, tu_init, NULL);
}
