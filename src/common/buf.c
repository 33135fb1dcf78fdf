/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capped growable buffer behind every encoder and the JSON-RPC client. Growth doubles (so
 * appends are amortised O(1)) but never allocates past the owner's cap.
 */
#include "openseed/buf.h"

#include <stdlib.h>
#include <string.h>

#include "openseed/ct.h"

void os_buf_init(os_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max;
}

void os_buf_free(os_buf *b)
{
    if (b == NULL)
        return;
    if (b->data != NULL) {
        os_wipe(b->data, b->alloc);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

void os_buf_reset(os_buf *b)
{
    b->len = 0;
}

os_err os_buf_reserve(os_buf *b, size_t n)
{
    size_t need, grow;
    uint8_t *p;

    if (n > b->max || b->len > b->max - n)
        return OS_ERR_TOOBIG;
    need = b->len + n;
    if (need <= b->alloc)
        return OS_OK;
    grow = b->alloc < 64 ? 64 : b->alloc;
    while (grow < need)
        grow = grow > SIZE_MAX / 2 ? need : grow * 2;
    if (grow > b->max)
        grow = b->max;
    /* realloc would leave the old contents in freed memory; copy and wipe instead */
    p = malloc(grow);
    if (p == NULL)
        return OS_ERR_NOMEM;
    if (b->data != NULL) {
        memcpy(p, b->data, b->len);
        os_wipe(b->data, b->alloc);
        free(b->data);
    }
    b->data = p;
    b->alloc = grow;
    return OS_OK;
}

os_err os_buf_append(os_buf *b, const void *p, size_t n)
{
    os_err err;

    if (n == 0)
        return OS_OK;
    err = os_buf_reserve(b, n);
    if (err != OS_OK)
        return err;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return OS_OK;
}

os_err os_buf_append_byte(os_buf *b, uint8_t c)
{
    return os_buf_append(b, &c, 1);
}

os_err os_buf_append_zeros(os_buf *b, size_t n)
{
    os_err err;

    if (n == 0)
        return OS_OK;
    err = os_buf_reserve(b, n);
    if (err != OS_OK)
        return err;
    memset(b->data + b->len, 0, n);
    b->len += n;
    return OS_OK;
}

os_err os_buf_insert(os_buf *b, size_t at, const void *p, size_t n)
{
    os_err err;

    if (at > b->len)
        return OS_ERR_INVALID;
    if (n == 0)
        return OS_OK;
    err = os_buf_reserve(b, n);
    if (err != OS_OK)
        return err;
    memmove(b->data + at + n, b->data + at, b->len - at);
    memcpy(b->data + at, p, n);
    b->len += n;
    return OS_OK;
}
