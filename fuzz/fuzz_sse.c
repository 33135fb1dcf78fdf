/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the Server-Sent Events parser (sse.h) on an upstream's text/event-stream, as
 * the seller reads its upstream (upstream.c: max_line = max_event, 256 KiB by default) and the
 * buyer relays a stream (relay.c), with the body arriving in pieces of any size. Input:
 * [flags][n] then n split sizes (cycled), then the stream. flags picks the caps (the daemons' or
 * small ones the fuzzer can exceed) and whether the callback stops the parser after two events.
 * Checked: every event is within the caps, NUL-terminated and free of line breaks in type and id;
 * it re-encodes with os_sse_write into the room the seller allows (max_event * 8 + 256) and that
 * text parses back to the same event; and the split points change nothing (the stream fed at once
 * and fed in the input's pieces give the same events, error and retry, and the same pending state
 * when no error stopped them: a failed line may hold a different part of itself).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/buf.h"
#include "openseed/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)

/* What a parser did: a digest of its events in order and how it ended. */
typedef struct run {
    size_t max_line, max_event;
    int stop_after; /* 0: never; else the callback fails on that event */
    uint64_t digest;
    size_t events, data_bytes;
    os_err err;
    bool pending, has_retry;
    uint64_t retry;
} run;

static void digest(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 0x100000001b3ULL; /* FNV-1a */
    }
    *h ^= 0x1ff; /* field boundary */
    *h *= 0x100000001b3ULL;
}

/* The one event a re-parse must give back. */
typedef struct echo {
    const os_sse_event *want;
    const char *type; /* the type the re-parse must report */
    int seen;
} echo;

static os_err echo_cb(void *ctx, const os_sse_event *ev)
{
    echo *e = ctx;

    if (e->seen++ != 0 || strcmp(ev->type, e->type) != 0 ||
        ev->data_len != e->want->data_len || memcmp(ev->data, e->want->data, ev->data_len) != 0)
        abort();
    return OS_OK;
}

static os_err on_event(void *ctx, const os_sse_event *ev)
{
    run *r = ctx;
    size_t tl, il, room;
    os_sse_parser *p;
    os_buf out;
    const char *wt;
    echo e = {ev, NULL, 0};

    if (ev->type == NULL || ev->data == NULL || ev->id == NULL || ev->data[ev->data_len] != '\0')
        abort();
    tl = strcmp(ev->type, "message") == 0 ? 0 : strlen(ev->type); /* the default is not counted */
    il = strlen(ev->id);
    if (ev->data_len > r->max_event || tl > r->max_event - ev->data_len || tl > r->max_line ||
        il > r->max_line)
        abort();
    if (strpbrk(ev->type, "\r\n") != NULL || strpbrk(ev->id, "\r\n") != NULL ||
        memchr(ev->data, '\r', ev->data_len) != NULL)
        abort();
    r->events++;
    r->data_bytes += ev->data_len;
    digest(&r->digest, ev->type, strlen(ev->type));
    digest(&r->digest, ev->data, ev->data_len);
    digest(&r->digest, ev->id, il);

    /* the seller hands each event on re-encoded, in a buffer of this size (upstream.c) */
    room = r->max_event * 8 + 256;
    os_buf_init(&out, room);
    /* a type field holding a NUL first reads as "" here; written as none, it comes back as the
     * default */
    wt = tl > 0 ? ev->type : NULL;
    e.type = wt != NULL ? wt : "message";
    if (os_sse_write(&out, wt, NULL, ev->data, ev->data_len) != OS_OK)
        abort();
    if (os_sse_parser_new(&p, room, room, echo_cb, &e) != OS_OK)
        abort();
    if (os_sse_feed(p, out.data, out.len) != OS_OK || e.seen != 1 || os_sse_pending(p))
        abort();
    os_sse_parser_free(p);
    os_buf_free(&out);

    if (r->stop_after != 0 && r->events == (size_t)r->stop_after)
        return OS_ERR_NETWORK; /* as the seller's callback does when its client is gone */
    return OS_OK;
}

/* Feeds stream in pieces of splits[0..n) (cycled; n 0: all at once). */
static void parse(run *r, const uint8_t *splits, size_t n, const uint8_t *stream, size_t len)
{
    os_sse_parser *p;
    size_t off = 0, i = 0, zeros = 0;

    r->digest = 0xcbf29ce484222325ULL;
    if (os_sse_parser_new(&p, r->max_line, r->max_event, on_event, r) != OS_OK)
        abort();
    for (;;) {
        size_t piece = n == 0 ? len - off : splits[i++ % n];
        os_err e;
        /* empty pieces are fed too, but never forever */
        zeros = piece == 0 ? zeros + 1 : 0;
        if (piece > len - off || zeros > n)
            piece = len - off;
        e = os_sse_feed(p, stream + off, piece);
        off += piece;
        if (e != OS_OK) {
            if (os_sse_feed(p, "\n\n", 2) != e) /* the error sticks */
                abort();
            r->err = e;
            break;
        }
        if (off == len)
            break;
    }
    r->pending = os_sse_pending(p);
    r->has_retry = os_sse_retry(p, &r->retry);
    os_sse_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct {
        size_t line, event;
    } caps[] = {
        {256u << 10, 256u << 10}, /* the seller's default (upstream.c) and the buyer's relay */
        {64, 64},                 /* a seller configured with a small max_event */
        {32, 200},
        {200, 32},
    };
    run whole, split;
    size_t n, c;

    if (size < 2 || size > MAX_INPUT)
        return 0;
    c = data[0] % 4;
    n = data[1] % 17;
    if (size - 2 < n)
        return 0;
    memset(&whole, 0, sizeof(whole));
    whole.max_line = caps[c].line;
    whole.max_event = caps[c].event;
    whole.stop_after = (data[0] & 4) ? 2 : 0;
    split = whole;
    parse(&whole, NULL, 0, data + 2 + n, size - 2 - n);
    parse(&split, data + 2, n, data + 2 + n, size - 2 - n);
    if (whole.digest != split.digest || whole.events != split.events ||
        whole.err != split.err || (whole.err == OS_OK && whole.pending != split.pending) ||
        whole.has_retry != split.has_retry || (whole.has_retry && whole.retry != split.retry))
        abort();
    if (whole.data_bytes > size)
        abort();
    return 0;
}
