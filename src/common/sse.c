/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Server-Sent Events (sse.h): the WHATWG event-stream interpretation as a byte-at-a-time state
 * machine that keeps only the current line and the event being built, so a stream may arrive in
 * pieces of any size, and the writer that formats one event. Every buffer is an os_buf with a cap.
 */
#include "openseed/sse.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_LINE ((size_t)64 << 10)
#define DEFAULT_MAX_EVENT ((size_t)1 << 20)

struct os_sse_parser {
    os_sse_cb cb;
    void *ctx;
    size_t max_line, max_event;
    os_buf line; /* the line being read, without its ending */
    os_buf data; /* the data buffer: each data field's value and a LF */
    os_buf type; /* the event type buffer, NUL-terminated past len */
    os_buf id;   /* the last event ID buffer, NUL-terminated past len */
    bool first;  /* the next line completed is the stream's first (a BOM may open it) */
    bool skip_lf; /* the last line ended with CR: a LF right after it belongs to it */
    bool have_retry;
    uint64_t retry_ms;
    os_err err; /* sticky */
};

os_err os_sse_parser_new(os_sse_parser **out, size_t max_line, size_t max_event, os_sse_cb cb,
                         void *ctx)
{
    os_sse_parser *p;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (cb == NULL)
        return OS_ERR_INVALID;
    max_line = max_line ? max_line : DEFAULT_MAX_LINE;
    max_event = max_event ? max_event : DEFAULT_MAX_EVENT;
    if (max_line > SIZE_MAX / 2 || max_event > SIZE_MAX / 2)
        return OS_ERR_RANGE;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return OS_ERR_NOMEM;
    p->cb = cb;
    p->ctx = ctx;
    p->max_line = max_line;
    p->max_event = max_event;
    /* one more byte for the terminating NUL the callback gets */
    os_buf_init(&p->line, max_line);
    os_buf_init(&p->data, max_event + 1);
    os_buf_init(&p->type, max_line + 1);
    os_buf_init(&p->id, max_line + 1);
    p->first = true;
    *out = p;
    return OS_OK;
}

void os_sse_parser_free(os_sse_parser *p)
{
    if (p == NULL)
        return;
    os_buf_free(&p->line);
    os_buf_free(&p->data);
    os_buf_free(&p->type);
    os_buf_free(&p->id);
    free(p);
}

bool os_sse_retry(const os_sse_parser *p, uint64_t *ms)
{
    if (p == NULL || !p->have_retry)
        return false;
    if (ms != NULL)
        *ms = p->retry_ms;
    return true;
}

bool os_sse_pending(const os_sse_parser *p)
{
    return p != NULL && (p->line.len > 0 || p->data.len > 0 || p->type.len > 0);
}

/* b = v[0..n) followed by a NUL that len does not count. */
static os_err set_text(os_buf *b, const char *v, size_t n)
{
    os_err err;

    os_buf_reset(b);
    err = os_buf_append(b, v, n);
    if (err == OS_OK)
        err = os_buf_append_byte(b, 0);
    if (err != OS_OK) {
        os_buf_reset(b);
        return err;
    }
    b->len--;
    return OS_OK;
}

static const char *text(const os_buf *b)
{
    return b->len > 0 ? (const char *)b->data : "";
}

static os_err dispatch(os_sse_parser *p)
{
    os_sse_event ev;
    os_err err;

    if (p->data.len == 0) {
        os_buf_reset(&p->type);
        return OS_OK;
    }
    p->data.len--; /* the LF after the last data line; its byte becomes the NUL */
    p->data.data[p->data.len] = '\0';
    ev.type = p->type.len > 0 ? text(&p->type) : "message";
    ev.data = (const char *)p->data.data;
    ev.data_len = p->data.len;
    ev.id = text(&p->id);
    err = p->cb(p->ctx, &ev);
    os_buf_reset(&p->data);
    os_buf_reset(&p->type);
    return err;
}

static bool field_is(const char *f, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(f, name, n) == 0;
}

static os_err process_line(os_sse_parser *p)
{
    const char *line = (const char *)p->line.data;
    size_t n = p->line.len, fn, vn;
    const char *colon, *v;

    if (p->first) {
        p->first = false;
        if (n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
            line += 3;
            n -= 3;
        }
    }
    if (n == 0)
        return dispatch(p);
    if (line[0] == ':')
        return OS_OK;
    colon = memchr(line, ':', n);
    if (colon != NULL) {
        fn = (size_t)(colon - line);
        v = colon + 1;
        vn = n - fn - 1;
        if (vn > 0 && v[0] == ' ') {
            v++;
            vn--;
        }
    } else {
        fn = n;
        v = line + n;
        vn = 0;
    }
    if (field_is(line, fn, "event")) {
        if (vn + p->data.len > p->max_event)
            return OS_ERR_TOOBIG;
        return set_text(&p->type, v, vn);
    }
    if (field_is(line, fn, "data")) {
        if (p->type.len + p->data.len > p->max_event ||
            vn + 1 > p->max_event - p->type.len - p->data.len)
            return OS_ERR_TOOBIG;
        os_err err = os_buf_append(&p->data, v, vn);
        return err == OS_OK ? os_buf_append_byte(&p->data, '\n') : err;
    }
    if (field_is(line, fn, "id")) {
        if (memchr(v, '\0', vn) != NULL)
            return OS_OK;
        return set_text(&p->id, v, vn);
    }
    if (field_is(line, fn, "retry")) {
        uint64_t ms = 0;
        if (vn == 0)
            return OS_OK;
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9' || ms > (UINT64_MAX - 9) / 10)
                return OS_OK; /* not only digits (or absurdly long): ignored */
            ms = ms * 10 + (uint64_t)(v[i] - '0');
        }
        p->retry_ms = ms;
        p->have_retry = true;
    }
    return OS_OK;
}

os_err os_sse_feed(os_sse_parser *p, const void *data, size_t len)
{
    const char *b = data;
    size_t i = 0;

    if (p == NULL || (data == NULL && len > 0))
        return OS_ERR_INVALID;
    if (p->err != OS_OK)
        return p->err;
    while (i < len) {
        size_t j = i;
        os_err err;

        if (p->skip_lf) {
            p->skip_lf = false;
            if (b[i] == '\n') {
                i++;
                continue;
            }
        }
        while (j < len && b[j] != '\r' && b[j] != '\n')
            j++;
        err = os_buf_append(&p->line, b + i, j - i);
        if (err == OS_OK && j < len) {
            p->skip_lf = b[j] == '\r';
            err = process_line(p);
            os_buf_reset(&p->line);
            j++;
        }
        if (err != OS_OK) {
            p->err = err;
            return err;
        }
        i = j;
    }
    return OS_OK;
}

static bool has_line_break(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") != NULL;
}

static os_err put_field(os_buf *out, const char *name, const char *v, size_t n)
{
    os_err err = os_buf_append(out, name, strlen(name));
    if (err == OS_OK)
        err = os_buf_append(out, ": ", 2);
    if (err == OS_OK)
        err = os_buf_append(out, v, n);
    return err == OS_OK ? os_buf_append_byte(out, '\n') : err;
}

os_err os_sse_write(os_buf *out, const char *type, const char *id, const void *data,
                    size_t data_len)
{
    const char *d = data;
    size_t start, i = 0;
    os_err err = OS_OK;

    if (out == NULL || (data == NULL && data_len > 0) || has_line_break(type) ||
        has_line_break(id))
        return OS_ERR_INVALID;
    start = out->len;
    if (type != NULL)
        err = put_field(out, "event", type, strlen(type));
    if (err == OS_OK && id != NULL)
        err = put_field(out, "id", id, strlen(id));
    /* one data line per line of data; at least one, so that empty data is still an event */
    while (err == OS_OK) {
        size_t j = i;
        while (j < data_len && d[j] != '\r' && d[j] != '\n')
            j++;
        err = put_field(out, "data", d != NULL ? d + i : "", j - i);
        if (j == data_len)
            break;
        i = j + (d[j] == '\r' && j + 1 < data_len && d[j + 1] == '\n' ? 2 : 1);
    }
    if (err == OS_OK)
        err = os_buf_append_byte(out, '\n');
    if (err != OS_OK)
        out->len = start;
    return err;
}
