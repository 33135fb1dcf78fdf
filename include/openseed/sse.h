/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Server-Sent Events (text/event-stream): an incremental parser that follows the WHATWG HTML
 * standard's "interpreting an event stream" (section 9.2.6) and a writer that formats one event.
 * The buyer reads sellers' and upstreams' streams with the parser and writes its clients' streams
 * with the writer; the seller reads its upstream with the parser.
 *
 * The parser takes input split anywhere (also between CR and LF, or inside the leading BOM) and
 * calls back once per dispatched event, exactly as the standard dispatches: a blank line ends an
 * event; an event with no data field is not dispatched; one trailing LF of the data is dropped;
 * the type defaults to "message"; the id is the last event ID, which persists across events until
 * an id field changes it (an id holding a NUL byte is ignored); "retry" with only ASCII digits sets
 * the reconnection time; comments (lines starting with ':') and unknown fields are ignored; an
 * event still open at the end of the stream is discarded. Bytes are passed through as they are:
 * the standard decodes UTF-8 with replacement characters, this parser does not rewrite invalid
 * UTF-8 (whoever parses the data, e.g. as JSON, checks it).
 */
#ifndef OPENSEED_SSE_H
#define OPENSEED_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/buf.h"
#include "openseed/err.h"

typedef struct os_sse_parser os_sse_parser;

/* One dispatched event; every pointer is valid only during the callback. data is NUL-terminated
 * one past data_len (it may hold NUL bytes itself). */
typedef struct os_sse_event {
    const char *type; /* "message" when the event had no event field */
    const char *data;
    size_t data_len;
    const char *id; /* the last event ID, "" when none */
} os_sse_event;

/* Called per event. A non-OS_OK return stops the parser: os_sse_feed returns it, now and after. */
typedef os_err (*os_sse_cb)(void *ctx, const os_sse_event *ev);

/*
 * A parser calling cb(ctx, …) per event. max_line caps one line (field name and value, without
 * the line ending); max_event caps an event's data plus its type. Past either cap os_sse_feed
 * returns OS_ERR_TOOBIG and the parser stays failed. 0 for either means 64 KiB / 1 MiB.
 * The caller frees the parser with os_sse_parser_free.
 */
OS_WUR os_err os_sse_parser_new(os_sse_parser **out, size_t max_line, size_t max_event,
                                os_sse_cb cb, void *ctx);
/* Feeds the next bytes of the stream; events complete in them are dispatched before it returns. */
OS_WUR os_err os_sse_feed(os_sse_parser *p, const void *data, size_t len);
/* The reconnection time from the last valid retry field; false when there was none. */
bool os_sse_retry(const os_sse_parser *p, uint64_t *ms);
/* True when bytes of an unfinished line or event are pending (the stream ended mid-event). */
bool os_sse_pending(const os_sse_parser *p);
/* NULL-safe. */
void os_sse_parser_free(os_sse_parser *p);

/*
 * Appends one event to out: "event: TYPE\n" (when type is not NULL), "id: ID\n" (when id is not
 * NULL), one "data: LINE\n" per line of data (split at CRLF, LF or CR, so line endings inside
 * the data come back as LF), then the blank line. type and id must not hold CR, LF (or NUL, being
 * C strings); id "" resets the reader's last event ID. OS_ERR_INVALID for bad arguments,
 * OS_ERR_TOOBIG past out's cap (out is then unchanged).
 */
OS_WUR os_err os_sse_write(os_buf *out, const char *type, const char *id, const void *data,
                           size_t data_len);

#endif
