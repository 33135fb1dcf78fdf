/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON at the edges of every daemon, over jansson: a parser with a byte cap, a nesting cap and
 * duplicate keys refused; typed getters that check a field's type, range and length and write a
 * one-line reason a client can read, and where-prefixed forms of them for nested messages; an
 * unknown-field check; value builders for encoders; the canonical dump that PROTOCOL.md §3 hashes
 * for a seller record's bodyHash; and the OpenAI-shaped error body every daemon answers with.
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

/* ---- where-prefixed getters, for parsers of nested messages ----
 *
 * A message parser names the object a field sits in ("voucher: field \"nonce\" ...") and answers
 * every malformed field with OS_ERR_INVALID, a missing or oversized one too, which the daemons turn
 * into 400. `where` is the path of the enclosing object with its ": " ("" or NULL at the top); it
 * is a constant of the parser, not input. Each os_json_at_X calls os_json_get_X and passes its
 * result through os_json_err_at, so the reasons are os_json_get_X's with where in front, and the
 * output is untouched on failure.
 */

/*
 * Turns a json.h getter's result rc and its reason into the parser's: OS_OK stays OS_OK (err
 * untouched), OS_ERR_NOMEM stays OS_ERR_NOMEM with "out of memory", every other failure becomes
 * OS_ERR_INVALID with err = where + reason. reason is the getter's err buffer (NULL reads as "").
 */
OS_WUR os_err os_json_err_at(os_err rc, const char *where, const char *reason, char *err,
                             size_t errcap);

/*
 * obj must be an object ("<where>must be a JSON object") whose every key is in `allowed`, as
 * os_json_check_keys; OS_OK or OS_ERR_INVALID.
 */
OS_WUR os_err os_json_check_object(const json_t *obj, const char *const allowed[],
                                   const char *where, char *err, size_t errcap);

/* os_json_get_object with where; *out borrows from obj. */
OS_WUR os_err os_json_at_object(const json_t **out, const json_t *obj, const char *key,
                                const char *where, char *err, size_t errcap);

/* os_json_get_array with where; *out borrows from obj. */
OS_WUR os_err os_json_at_array(const json_t **out, const json_t *obj, const char *key,
                               size_t max_items, const char *where, char *err, size_t errcap);

/* os_json_get_str with where; *out borrows from obj. */
OS_WUR os_err os_json_at_str(const char **out, const json_t *obj, const char *key, size_t max_len,
                             const char *where, char *err, size_t errcap);

/*
 * os_json_get_u64 with where, and the value must lie in [lo, hi]: outside it the reason is
 * "<where>field \"<key>\" must be between <lo> and <hi>". hi = UINT64_MAX means no upper bound
 * beyond jansson's INT64_MAX.
 */
OS_WUR os_err os_json_at_u64(uint64_t *out, const json_t *obj, const char *key, uint64_t lo,
                             uint64_t hi, const char *where, char *err, size_t errcap);

/* os_json_get_u64_str with where: an amount as a canonical decimal string. */
OS_WUR os_err os_json_at_u64_str(uint64_t *out, const json_t *obj, const char *key,
                                 const char *where, char *err, size_t errcap);

/* os_json_get_hex with where: "0x" + exactly 2*len hex digits, either case. */
OS_WUR os_err os_json_at_hex(uint8_t *out, size_t len, const json_t *obj, const char *key,
                             const char *where, char *err, size_t errcap);

/*
 * A 20-byte address spelled with its EIP-55 checksum (os_eip55_parse) into out; anything else is
 * "<where>field \"<key>\" must be a 0x address with a valid EIP-55 checksum".
 */
OS_WUR os_err os_json_at_address(uint8_t out[20], const json_t *obj, const char *key,
                                 const char *where, char *err, size_t errcap);

/* ---- builders ----
 *
 * Encoders chain these with &&: a value constructor that fails (NULL) makes the os_json_put that
 * receives it fail, and every container is attached to its parent as soon as it exists, so one
 * json_decref of the root cleans up after a failure anywhere.
 */

/*
 * json_object_set_new(obj, key, v) that also fails when v is NULL. v is taken in every case (set
 * into obj, or released on failure). True on success.
 */
OS_WUR bool os_json_put(json_t *obj, const char *key, json_t *v);

/*
 * Puts the new container v into parent at key and returns it, borrowed (parent owns it), to be
 * filled; NULL when v is NULL or the put fails (v released).
 */
json_t *os_json_child(json_t *parent, const char *key, json_t *v);

/* A new JSON integer for v; NULL above INT64_MAX (jansson's largest integer) or on no memory. */
json_t *os_json_u64(uint64_t v);

/* A new JSON string "0x" + lower-case hex of p[0..n), or NULL (no memory; p NULL with n > 0). */
json_t *os_json_hex(const uint8_t *p, size_t n);

/* A new JSON string of the address a[0..20) with its EIP-55 checksum, or NULL. */
json_t *os_json_address(const uint8_t a[20]);

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

/* A malloc'd (free()) copy of s with every byte that does not start a valid UTF-8 character
 * turned to '?', so text cut short mid-character still makes a JSON string. NULL on no memory. */
char *os_utf8_sanitize(const char *s);

#endif
