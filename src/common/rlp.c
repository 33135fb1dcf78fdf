/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RLP encoding into a capped buffer and strict, bounded decoding. Lists are encoded by writing
 * their elements first and inserting the header afterwards, so callers never precompute lengths;
 * the memmove this costs is negligible at transaction sizes.
 */
#include "openseed/rlp.h"

#include <string.h>

/* Deepest nesting a caller may ask the recursive validator to follow. */
#define RLP_DEPTH_LIMIT 1024

/* Writes the header for a payload of len bytes with short/long bases 0x80/0xb7 or 0xc0/0xf7. */
static size_t header(uint8_t out[9], size_t len, uint8_t short_base)
{
    uint8_t be[8];
    size_t n = 0;
    uint64_t v = len;

    if (len <= 55) {
        out[0] = (uint8_t)(short_base + len);
        return 1;
    }
    while (v != 0) {
        be[7 - n] = (uint8_t)v;
        v >>= 8;
        n++;
    }
    out[0] = (uint8_t)(short_base + 55 + n);
    memcpy(out + 1, be + 8 - n, n);
    return 1 + n;
}

os_err os_rlp_put_bytes(os_buf *b, const uint8_t *p, size_t n)
{
    uint8_t h[9];
    size_t hl;
    os_err err;

    if (n == 1 && p[0] < 0x80)
        return os_buf_append_byte(b, p[0]);
    hl = header(h, n, 0x80);
    if (n > SIZE_MAX - hl)
        return OS_ERR_TOOBIG;
    /* reserving both parts at once means the appends below cannot fail halfway */
    err = os_buf_reserve(b, hl + n);
    if (err != OS_OK)
        return err;
    err = os_buf_append(b, h, hl);
    if (err == OS_OK)
        err = os_buf_append(b, p, n);
    return err;
}

os_err os_rlp_put_uint(os_buf *b, const uint8_t *be, size_t n)
{
    while (n > 0 && be[0] == 0) {
        be++;
        n--;
    }
    return os_rlp_put_bytes(b, be, n);
}

os_err os_rlp_put_u64(os_buf *b, uint64_t v)
{
    uint8_t be[8];

    for (int i = 7; i >= 0; i--) {
        be[i] = (uint8_t)v;
        v >>= 8;
    }
    return os_rlp_put_uint(b, be, sizeof(be));
}

void os_rlp_list_begin(const os_buf *b, size_t *mark)
{
    *mark = b->len;
}

os_err os_rlp_list_end(os_buf *b, size_t mark)
{
    uint8_t h[9];
    size_t hl;

    if (mark > b->len)
        return OS_ERR_INVALID;
    hl = header(h, b->len - mark, 0xc0);
    return os_buf_insert(b, mark, h, hl);
}

/* Reads the item at in[0..in_len): its payload and the bytes its encoding spans. */
static os_err read_item(os_rlp_item *item, size_t *used, const uint8_t *in, size_t in_len)
{
    uint8_t b;
    size_t ll, len, hl;

    if (in_len == 0)
        return OS_ERR_INVALID;
    b = in[0];
    if (b < 0x80) {
        item->data = in;
        item->len = 1;
        item->is_list = false;
        *used = 1;
        return OS_OK;
    }
    item->is_list = b >= 0xc0;
    if (b <= 0xb7 || (b >= 0xc0 && b <= 0xf7)) {
        len = (size_t)(b - (item->is_list ? 0xc0 : 0x80));
        hl = 1;
    } else {
        uint64_t v = 0;

        ll = (size_t)(b - (item->is_list ? 0xf7 : 0xb7));
        if (in_len - 1 < ll)
            return OS_ERR_INVALID;
        if (in[1] == 0) /* a length with leading zeros */
            return OS_ERR_INVALID;
        for (size_t i = 0; i < ll; i++)
            v = v << 8 | in[1 + i];
        if (v <= 55) /* the long form for a payload the short form covers */
            return OS_ERR_INVALID;
        if (v > in_len)
            return OS_ERR_INVALID;
        len = (size_t)v;
        hl = 1 + ll;
    }
    if (len > in_len - hl)
        return OS_ERR_INVALID;
    /* a single byte below 0x80 must stand for itself */
    if (!item->is_list && len == 1 && in[hl] < 0x80)
        return OS_ERR_INVALID;
    item->data = in + hl;
    item->len = len;
    *used = hl + len;
    return OS_OK;
}

static os_err validate(const os_rlp_item *item, unsigned depth, unsigned max_depth)
{
    os_rlp_iter it;
    os_rlp_item child;
    os_err err;

    if (!item->is_list)
        return OS_OK;
    if (depth + 1 > max_depth)
        return OS_ERR_RANGE;
    it.p = item->data;
    it.left = item->len;
    while ((err = os_rlp_iter_next(&it, &child)) == OS_OK) {
        err = validate(&child, depth + 1, max_depth);
        if (err != OS_OK)
            return err;
    }
    return err == OS_ERR_NOTFOUND ? OS_OK : err;
}

os_err os_rlp_decode(os_rlp_item *item, const uint8_t *in, size_t in_len, unsigned max_depth)
{
    size_t used;
    os_err err;

    if (in == NULL || max_depth > RLP_DEPTH_LIMIT)
        return OS_ERR_INVALID;
    err = read_item(item, &used, in, in_len);
    if (err != OS_OK)
        return err;
    if (used != in_len)
        return OS_ERR_INVALID;
    return validate(item, 0, max_depth);
}

os_err os_rlp_iter_init(os_rlp_iter *it, const os_rlp_item *list)
{
    if (!list->is_list)
        return OS_ERR_INVALID;
    it->p = list->data;
    it->left = list->len;
    return OS_OK;
}

os_err os_rlp_iter_next(os_rlp_iter *it, os_rlp_item *item)
{
    size_t used;
    os_err err;

    if (it->left == 0)
        return OS_ERR_NOTFOUND;
    err = read_item(item, &used, it->p, it->left);
    if (err != OS_OK)
        return err;
    it->p += used;
    it->left -= used;
    return OS_OK;
}

os_err os_rlp_list_count(size_t *n, const os_rlp_item *list)
{
    os_rlp_iter it;
    os_rlp_item child;
    os_err err;

    *n = 0;
    err = os_rlp_iter_init(&it, list);
    if (err != OS_OK)
        return err;
    while ((err = os_rlp_iter_next(&it, &child)) == OS_OK)
        (*n)++;
    return err == OS_ERR_NOTFOUND ? OS_OK : err;
}

os_err os_rlp_item_u64(uint64_t *v, const os_rlp_item *item)
{
    uint8_t be[32];
    os_err err;

    *v = 0;
    if (item->is_list)
        return OS_ERR_INVALID;
    if (item->len > 8)
        return OS_ERR_RANGE;
    err = os_rlp_item_u256(be, item);
    if (err != OS_OK)
        return err;
    for (size_t i = 24; i < 32; i++)
        *v = *v << 8 | be[i];
    return OS_OK;
}

os_err os_rlp_item_u256(uint8_t be[32], const os_rlp_item *item)
{
    memset(be, 0, 32);
    if (item->is_list)
        return OS_ERR_INVALID;
    if (item->len > 32)
        return OS_ERR_RANGE;
    if (item->len > 0 && item->data[0] == 0) /* integers carry no leading zeros */
        return OS_ERR_INVALID;
    memcpy(be + 32 - item->len, item->data, item->len);
    return OS_OK;
}
