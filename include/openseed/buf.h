/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer with a hard cap, like curl's dynbuf: encoders (RLP, ABI, transactions) and
 * the JSON-RPC client append into one, and nothing can make it grow past the limit its owner chose
 * at init. The struct lives wherever its owner puts it (stack or another struct); os_buf_free
 * releases the heap block it points to.
 */
#ifndef OPENSEED_BUF_H
#define OPENSEED_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

typedef struct os_buf {
    uint8_t *data; /* NULL until the first append; owned by the buffer */
    size_t len;    /* bytes in use */
    size_t alloc;  /* bytes allocated */
    size_t max;    /* cap on len, fixed at init */
} os_buf;

/* Makes b an empty buffer that may hold at most max bytes. Allocates nothing. */
void os_buf_init(os_buf *b, size_t max);

/* Releases b's memory (wiping it first, as buffers may hold signed payloads) and empties it; b
 * keeps its cap and may be reused. NULL-safe. */
void os_buf_free(os_buf *b);

/* Sets len to 0, keeping the allocation. */
void os_buf_reset(os_buf *b);

/* Makes room for n more bytes. OS_ERR_TOOBIG past the cap, OS_ERR_NOMEM when allocation fails. */
OS_WUR os_err os_buf_reserve(os_buf *b, size_t n);

/* Appends p[0..n). p may be NULL when n is 0. On error b is unchanged. */
OS_WUR os_err os_buf_append(os_buf *b, const void *p, size_t n);

/* Appends one byte. */
OS_WUR os_err os_buf_append_byte(os_buf *b, uint8_t c);

/* Appends n zero bytes. */
OS_WUR os_err os_buf_append_zeros(os_buf *b, size_t n);

/* Inserts p[0..n) at offset at (<= len), moving the tail up. On error b is unchanged. */
OS_WUR os_err os_buf_insert(os_buf *b, size_t at, const void *p, size_t n);

#endif
