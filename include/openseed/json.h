/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON at the edges of every daemon, over jansson: a parser with a byte cap, a nesting cap and
 * duplicate keys refused; typed getters that check a field's type, range and length and write a
 * one-line reason a client can read; an unknown-field check; the canonical dump that PROTOCOL.md §3
 * hashes for a seller record's bodyHash; and the OpenAI-shaped error body every daemon answers
 * with.
 *
 * Error text goes to `err` (capacity `errcap`, always NUL-terminated when errcap > 0; may be NULL
 * with errcap 0). It names the field (or the line and column) and the problem but never echoes a
 * value from the input (only os_json_check_keys names the unknown key, shortened), so it is safe
 * to send back to a client and to log. Getters leave their output untouched on failure.
 *
 * Borrowing: getters that yield a `const char *` or `const json_t *` point into the object they
 * were given; the pointer is valid while that object lives and is not modified.
 */
#ifndef OPENSEED_JSON_H
#define OPENSEED_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"

/* A comfortable size for an err buffer. */
#define OS_JSON_ERR_LEN 192

/*
 * Parses buf[0..len) (need not be NUL-terminated) into a new object or array, *out owned by the
 * caller (json_decref). Refuses, with a reason in err:
 *   - len > max_bytes                        OS_ERR_TOOBIG
 *   - nesting deeper than max_depth          OS_ERR_TOOBIG  ({} and [] are depth 1; max_depth >= 1)
 *   - a key repeated within one object       OS_ERR_INVALID
 *   - a top-level value that is not an object or array, invalid UTF-8, \u0000 in a string, trailing
 *     data, or any other syntax error        OS_ERR_INVALID
 * The depth is checked by a linear pre-scan before jansson sees the text, so a deeply nested body
 * costs no more than its length. *out is NULL on failure.
 */
OS_WUR os_err os_json_parse(json_t **out, const char *buf, size_t len, size_t max_bytes,
                            int max_depth, char *err, size_t errcap);

/* os_json_parse_flags: accept \u0000 inside strings. Such a string's C value stops at the NUL, so
 * read it with json_string_length or refuse it (os_json_get_str does). */
#define OS_JSON_ALLOW_NUL (1u << 0)

/*
 * As os_json_parse, with flags relaxing what it refuses: OS_JSON_ALLOW_NUL, for peers that put raw
 * bytes in strings (Ethereum nodes write a custom error's arguments into its message). 0 is
 * os_json_parse.
 */
OS_WUR os_err os_json_parse_flags(json_t **out, const char *buf, size_t len, size_t max_bytes,
                                  int max_depth, unsigned flags, char *err, size_t errcap);

/*
 * Required string field `key` of object obj, at most max_len bytes (UTF-8, no NUL inside).
 * Missing: OS_ERR_NOTFOUND. Wrong type: OS_ERR_INVALID. Too long: OS_ERR_TOOBIG.
 * *out borrows from obj.
 */
OS_WUR os_err os_json_get_str(const char **out, const json_t *obj, const char *key, size_t max_len,
                              char *err, size_t errcap);

/* As os_json_get_str, but a missing or JSON-null field gives *out = NULL and OS_OK. */
OS_WUR os_err os_json_opt_str(const char **out, const json_t *obj, const char *key, size_t max_len,
                              char *err, size_t errcap);

/*
 * Required field holding a uint64 as a decimal string, as wire amounts are: ASCII digits only, no
 * sign, space, exponent or leading zero (except "0" itself), so each value has one spelling.
 * Missing: OS_ERR_NOTFOUND. Not a string or bad syntax: OS_ERR_INVALID. Above UINT64_MAX:
 * OS_ERR_RANGE.
 */
OS_WUR os_err os_json_get_u64_str(uint64_t *out, const json_t *obj, const char *key, char *err,
                                  size_t errcap);

/* As os_json_get_u64_str; a missing or null field gives *out = dflt. */
OS_WUR os_err os_json_opt_u64_str(uint64_t *out, const json_t *obj, const char *key, uint64_t dflt,
                                  char *err, size_t errcap);

/*
 * Required field holding a non-negative JSON integer (1.0 and "1" are not integers).
 * Missing: OS_ERR_NOTFOUND. Wrong type: OS_ERR_INVALID. Negative: OS_ERR_RANGE.
 * jansson's integers are signed 64-bit, so the largest value is INT64_MAX.
 */
OS_WUR os_err os_json_get_u64(uint64_t *out, const json_t *obj, const char *key, char *err,
                              size_t errcap);

/* As os_json_get_u64; a missing or null field gives *out = dflt. */
OS_WUR os_err os_json_opt_u64(uint64_t *out, const json_t *obj, const char *key, uint64_t dflt,
                              char *err, size_t errcap);

/* Required JSON true/false field. Missing: OS_ERR_NOTFOUND. Wrong type: OS_ERR_INVALID. */
OS_WUR os_err os_json_get_bool(bool *out, const json_t *obj, const char *key, char *err,
                               size_t errcap);

/* As os_json_get_bool; a missing or null field gives *out = dflt. */
OS_WUR os_err os_json_opt_bool(bool *out, const json_t *obj, const char *key, bool dflt, char *err,
                               size_t errcap);

/*
 * Required string field "0x" + exactly 2*len hex digits (either case), decoded into out[0..len).
 * Missing: OS_ERR_NOTFOUND. Anything else wrong (no 0x, wrong length, bad digit): OS_ERR_INVALID.
 */
OS_WUR os_err os_json_get_hex(uint8_t *out, size_t len, const json_t *obj, const char *key,
                              char *err, size_t errcap);

/* Required object field; *out borrows from obj. Missing: OS_ERR_NOTFOUND; wrong type:
 * OS_ERR_INVALID. */
OS_WUR os_err os_json_get_object(const json_t **out, const json_t *obj, const char *key, char *err,
                                 size_t errcap);

/* Optional object field: missing or null gives *out = NULL and OS_OK. */
OS_WUR os_err os_json_opt_object(const json_t **out, const json_t *obj, const char *key, char *err,
                                 size_t errcap);

/*
 * Required array field with at most max_items elements; *out borrows from obj.
 * Missing: OS_ERR_NOTFOUND; wrong type: OS_ERR_INVALID; too many: OS_ERR_TOOBIG.
 */
OS_WUR os_err os_json_get_array(const json_t **out, const json_t *obj, const char *key,
                                size_t max_items, char *err, size_t errcap);

/* Optional array field: missing or null gives *out = NULL and OS_OK. */
OS_WUR os_err os_json_opt_array(const json_t **out, const json_t *obj, const char *key,
                                size_t max_items, char *err, size_t errcap);

/*
 * Unknown-field policy: OS_OK when every key of object obj is in `allowed` (a NULL-terminated
 * list), else OS_ERR_INVALID naming the first unknown key (shortened to 64 bytes). OS_ERR_INVALID
 * too when obj is not an object.
 */
OS_WUR os_err os_json_check_keys(const json_t *obj, const char *const allowed[], char *err,
                                 size_t errcap);

/*
 * The canonical text of v: object keys sorted bytewise, no whitespace, jansson's string escapes
 * (\" \\ \b \f \n \r \t, other controls as \u00XX with upper-case hex, '/' and non-ASCII written
 * as is). This is what PROTOCOL.md §3 hashes for bodyHash. *out is NUL-terminated and owned by the
 * caller (free()); *len excludes the NUL (len may be NULL). Records should not hold reals: their
 * text is not canonical across implementations. OS_ERR_NOMEM, or OS_ERR_INVALID when v cannot be
 * encoded (invalid UTF-8 in a string built with the _nocheck API).
 */
OS_WUR os_err os_json_dump_canonical(const json_t *v, char **out, size_t *len);

/*
 * The error body every daemon answers with (OpenAI's shape, keys in OpenAI's order):
 *   {"error":{"message":"…","type":"…","code":"…"}}
 * code NULL gives "code":null. Bytes of message/type/code that are not valid UTF-8 (say, a reason
 * cut short mid-character) become '?'. Returns a NUL-terminated string owned by the caller
 * (free()), or NULL when out of memory.
 */
char *os_json_error_body(const char *message, const char *type, const char *code);

#endif
