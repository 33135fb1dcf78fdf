/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recursive Length Prefix, Ethereum's serialisation for transactions (Yellow Paper appendix B).
 * The encoder appends to a capped os_buf: byte strings, unsigned integers in minimal big-endian
 * form (zero is the empty string) and nested lists bracketed by os_rlp_list_begin/_end. The decoder
 * is strict, as go-ethereum's is: it refuses every non-canonical form (a single byte below 0x80
 * wrapped in a header, a long form for a short payload, length fields with leading zeros, integers
 * with leading zeros), truncated input, trailing bytes, and nesting deeper than the caller allows.
 * Decoded items point into the caller's input; nothing is copied or allocated.
 */
#ifndef OPENSEED_RLP_H
#define OPENSEED_RLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/buf.h"
#include "openseed/err.h"

/* Nesting the decoder accepts when the caller has no tighter bound (a transaction needs 3). */
#define OS_RLP_MAX_DEPTH 16

/* Appends the encoding of the byte string p[0..n). */
OS_WUR os_err os_rlp_put_bytes(os_buf *b, const uint8_t *p, size_t n);

/* Appends v as an integer: minimal big-endian bytes, 0 as the empty string. */
OS_WUR os_err os_rlp_put_u64(os_buf *b, uint64_t v);

/* Appends the big-endian unsigned integer be[0..n) (any width, e.g. 32 for a uint256) with its
 * leading zero bytes stripped. */
OS_WUR os_err os_rlp_put_uint(os_buf *b, const uint8_t *be, size_t n);

/* Starts a list: *mark records where it begins. Every item appended until the matching
 * os_rlp_list_end becomes an element; lists nest. */
void os_rlp_list_begin(const os_buf *b, size_t *mark);

/* Closes the list opened at mark by inserting its header in front of its payload. */
OS_WUR os_err os_rlp_list_end(os_buf *b, size_t mark);

/* A decoded item: its payload (string bytes, or a list's concatenated encoded elements). */
typedef struct os_rlp_item {
    const uint8_t *data; /* points into the decoded input */
    size_t len;
    bool is_list;
} os_rlp_item;

/*
 * Decodes the one item that must fill in[0..in_len) exactly, validating the whole tree (canonical
 * forms, bounds) with lists nested at most max_depth deep (the outermost list is depth 1).
 * OS_ERR_INVALID for any malformed or non-canonical input, OS_ERR_RANGE past max_depth.
 */
OS_WUR os_err os_rlp_decode(os_rlp_item *item, const uint8_t *in, size_t in_len,
                            unsigned max_depth);

/* Walks a list item's elements; items point into the same input. */
typedef struct os_rlp_iter {
    const uint8_t *p;
    size_t left;
} os_rlp_iter;

/* Starts iterating list; OS_ERR_INVALID when list is a string. */
OS_WUR os_err os_rlp_iter_init(os_rlp_iter *it, const os_rlp_item *list);

/* The next element in *item; OS_ERR_NOTFOUND after the last one, OS_ERR_INVALID if malformed. */
OS_WUR os_err os_rlp_iter_next(os_rlp_iter *it, os_rlp_item *item);

/* Number of elements of list. */
OS_WUR os_err os_rlp_list_count(size_t *n, const os_rlp_item *list);

/* Reads a string item as a canonical integer (no leading zeros) that fits in a uint64. */
OS_WUR os_err os_rlp_item_u64(uint64_t *v, const os_rlp_item *item);

/* Reads a string item as a canonical integer of at most 32 bytes, big-endian into be[32]. */
OS_WUR os_err os_rlp_item_u256(uint8_t be[32], const os_rlp_item *item);

#endif
