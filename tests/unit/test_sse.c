/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SSE parser and writer of sse.h: the examples of the WHATWG HTML standard, section 9.2.6
 * ("Interpreting an event stream") and 9.2.5 (the stock-ticker, comment and "data:" / "data"
 * examples), OpenAI-style chat-completion chunks ending in "data: [DONE]", an Anthropic-style
 * message stream with named events, CR / LF / CRLF endings, the BOM, every split position of a
 * sample stream (including between CR and LF and inside the BOM), the caps, a callback that
 * stops the parser, and writer round trips.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "openseed/sse.h"

#define MAX_EV 32

typedef struct rec {
    int n;
    char type[MAX_EV][64];
    char data[MAX_EV][512];
    size_t data_len[MAX_EV];
    char id[MAX_EV][64];
    int stop_at; /* return an error at this event (1-based); 0 never */
} rec;

static os_err on_event(void *ctx, const os_sse_event *ev)
{
    rec *r = ctx;
    assert_true(r->n < MAX_EV);
    assert_true(strlen(ev->type) < 64 && ev->data_len < 512 && strlen(ev->id) < 64);
    assert_int_equal(ev->data[ev->data_len], '\0');
    snprintf(r->type[r->n], 64, "%s", ev->type);
    memcpy(r->data[r->n], ev->data, ev->data_len + 1);
    r->data_len[r->n] = ev->data_len;
    snprintf(r->id[r->n], 64, "%s", ev->id);
    r->n++;
    return r->stop_at == r->n ? OS_ERR_INTERNAL : OS_OK;
}

/* Parses s whole into r; returns the feed's status. */
static os_err parse(rec *r, const char *s, size_t len, size_t max_line, size_t max_event)
{
    os_sse_parser *p;
    os_err err;
    memset(r, 0, sizeof(*r));
    assert_int_equal(os_sse_parser_new(&p, max_line, max_event, on_event, r), OS_OK);
    err = os_sse_feed(p, s, len);
    os_sse_parser_free(p);
    return err;
}

static void expect(const rec *r, int i, const char *type, const char *data, const char *id)
{
    assert_true(i < r->n);
    assert_string_equal(r->type[i], type);
    assert_int_equal(r->data_len[i], strlen(data));
    assert_memory_equal(r->data[i], data, strlen(data) + 1);
    assert_string_equal(r->id[i], id);
}

/* WHATWG 9.2.6: "data: YHOO\ndata: +2\ndata: 10\n\n" is one message "YHOO\n+2\n10". */
static void test_spec_stock(void **state)
{
    (void)state;
    static const char s[] = "data: YHOO\ndata: +2\ndata: 10\n\n";
    rec r;
    assert_int_equal(parse(&r, s, sizeof(s) - 1, 0, 0), OS_OK);
    assert_int_equal(r.n, 1);
    expect(&r, 0, "message", "YHOO\n+2\n10", "");
}

/* WHATWG 9.2.6: comment, then "first event" with id 1, then "second event" with id "" (the id
 * line without a value resets it), then " third event" (one leading space stripped, the second
 * kept) with no id. */
static void test_spec_ids_and_comments(void **state)
{
    (void)state;
    static const char s[] = ": test stream\n\n"
                            "data: first event\nid: 1\n\n"
                            "data:second event\nid\n\n"
                            "data:  third event\n\n";
    rec r;
    assert_int_equal(parse(&r, s, sizeof(s) - 1, 0, 0), OS_OK);
    assert_int_equal(r.n, 3);
    expect(&r, 0, "message", "first event", "1");
    expect(&r, 1, "message", "second event", "");
    expect(&r, 2, "message", " third event", "");
}

/* WHATWG 9.2.6: "data\n\ndata\ndata\n\ndata:" gives "" and "\n"; the last, unterminated block is
 * discarded. Then "data:test\n\ndata: test\n\n" gives "test" twice. */
static void test_spec_empty_data(void **state)
{
    (void)state;
    static const char s1[] = "data\n\ndata\ndata\n\ndata:";
    static const char s2[] = "data:test\n\ndata: test\n\n";
    rec r;
    assert_int_equal(parse(&r, s1, sizeof(s1) - 1, 0, 0), OS_OK);
    assert_int_equal(r.n, 2);
    expect(&r, 0, "message", "", "");
    expect(&r, 1, "message", "\n", "");
    assert_int_equal(parse(&r, s2, sizeof(s2) - 1, 0, 0), OS_OK);
    assert_int_equal(r.n, 2);
    expect(&r, 0, "message", "test", "");
    expect(&r, 1, "message", "test", "");
}

/* Field rules: unknown fields and an event with no data are ignored (its type does not leak into
 * the next event), the id persists, an id with NUL is ignored, retry takes digits only. */
static void test_fields(void **state)
{
    (void)state;
    static const char s[] = "event: lost\nid: 7\n\n" /* no data: not dispatched, id kept */
                            "foo: bar\ndata: a\n\n"
                            "id: x\0y\ndata: b\nevent: add\n\n"
                            "retry: 12a\n\nretry: 3000\n\nretry\n\n";
    os_sse_parser *p;
    rec r;
    uint64_t ms = 0;
    memset(&r, 0, sizeof(r));
    assert_int_equal(os_sse_parser_new(&p, 0, 0, on_event, &r), OS_OK);
    assert_false(os_sse_retry(p, &ms));
    assert_int_equal(os_sse_feed(p, s, sizeof(s) - 1), OS_OK);
    assert_true(os_sse_retry(p, &ms));
    assert_int_equal(ms, 3000);
    assert_false(os_sse_pending(p));
    assert_int_equal(os_sse_feed(p, "data: x", 7), OS_OK);
    assert_true(os_sse_pending(p));
    os_sse_parser_free(p);
    assert_int_equal(r.n, 2);
    expect(&r, 0, "message", "a", "7");
    expect(&r, 1, "add", "b", "7");
}

static void test_line_endings_and_bom(void **state)
{
    (void)state;
    static const char crlf[] = "\xef\xbb\xbf"
                               "data: a\r\ndata: b\r\n\r\n"
                               "data: c\rdata: d\r\r"
                               "data: e\ndata: f\n\n"
                               "data: g\r\n\n"; /* CRLF then LF: one blank line */
    static const char bom_twice[] = "\xef\xbb\xbf\xef\xbb\xbf"
                                    "data: x\n\n";
    rec r;
    assert_int_equal(parse(&r, crlf, sizeof(crlf) - 1, 0, 0), OS_OK);
    assert_int_equal(r.n, 4);
    expect(&r, 0, "message", "a\nb", "");
    expect(&r, 1, "message", "c\nd", "");
    expect(&r, 2, "message", "e\nf", "");
    expect(&r, 3, "message", "g", "");
    /* only the first BOM is stripped: the second makes the field name unknown */
    assert_int_equal(parse(&r, bom_twice, sizeof(bom_twice) - 1, 0, 0), OS_OK);
    assert_int_equal(r.n, 0);
}

/* The shape of OpenAI's chat.completion.chunk stream. */
static const char OPENAI[] =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
    ": keep-alive\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
    "\"completion_tokens\":1}}\n\n"
    "data: [DONE]\n\n";

static void test_openai_stream(void **state)
{
    (void)state;
    rec r;
    assert_int_equal(parse(&r, OPENAI, sizeof(OPENAI) - 1, 0, 0), OS_OK);
    assert_int_equal(r.n, 4);
    assert_non_null(strstr(r.data[0], "\"role\":\"assistant\""));
    assert_non_null(strstr(r.data[1], "\"content\":\"Hi\""));
    assert_non_null(strstr(r.data[2], "\"usage\""));
    expect(&r, 3, "message", "[DONE]", "");
}

/* The shape of Anthropic's Messages stream (named events, CRLF as some proxies send it). */
static const char ANTHROPIC[] =
    "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
    "\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\r\n\r\n"
    "event: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":0}\r\n\r\n"
    "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n"
    "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\r\n\r\n"
    "event: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\n"
    "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}"
    "\r\n\r\n"
    "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

static void test_anthropic_stream(void **state)
{
    (void)state;
    static const char *const types[] = {"message_start",       "content_block_start", "ping",
                                        "content_block_delta", "content_block_stop",
                                        "message_delta",       "message_stop"};
    rec r;
    assert_int_equal(parse(&r, ANTHROPIC, sizeof(ANTHROPIC) - 1, 0, 0), OS_OK);
    assert_int_equal(r.n, 7);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(r.type[i], types[i]);
        assert_non_null(strstr(r.data[i], types[i]));
    }
    assert_non_null(strstr(r.data[3], "\"text\":\"Hello\""));
}

/* Every split of a stream into two pieces, and byte-at-a-time, gives the same events. */
static void check_splits(const char *s, size_t len)
{
    rec whole, part;
    os_sse_parser *p;

    assert_int_equal(parse(&whole, s, len, 0, 0), OS_OK);
    assert_true(whole.n > 0);
    for (size_t cut = 0; cut <= len + 1; cut++) {
        memset(&part, 0, sizeof(part));
        assert_int_equal(os_sse_parser_new(&p, 0, 0, on_event, &part), OS_OK);
        if (cut <= len) {
            assert_int_equal(os_sse_feed(p, s, cut), OS_OK);
            assert_int_equal(os_sse_feed(p, s + cut, len - cut), OS_OK);
        } else {
            for (size_t i = 0; i < len; i++)
                assert_int_equal(os_sse_feed(p, s + i, 1), OS_OK);
        }
        os_sse_parser_free(p);
        assert_int_equal(part.n, whole.n);
        for (int i = 0; i < whole.n; i++)
            expect(&part, i, whole.type[i], whole.data[i], whole.id[i]);
    }
}

static void test_every_split(void **state)
{
    (void)state;
    static const char mixed[] = "\xef\xbb\xbf: hi\r\nevent: a\r\nid: 9\r\ndata: 1\r\ndata:2\r\r"
                                "data: 3\n\ndata\r\n\r\nretry: 5\nevent: b\ndata: x\r\n\n";
    check_splits(mixed, sizeof(mixed) - 1);
    check_splits(OPENAI, sizeof(OPENAI) - 1);
    check_splits(ANTHROPIC, sizeof(ANTHROPIC) - 1);
}

static void test_caps(void **state)
{
    (void)state;
    rec r;
    os_sse_parser *p;
    /* line cap 16: a 16-byte line passes, a 17-byte one fails, also when split */
    assert_int_equal(parse(&r, "data: 0123456789\n\n", 18, 16, 0), OS_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(parse(&r, "data: 01234567890\n\n", 19, 16, 0), OS_ERR_TOOBIG);
    memset(&r, 0, sizeof(r));
    assert_int_equal(os_sse_parser_new(&p, 16, 0, on_event, &r), OS_OK);
    assert_int_equal(os_sse_feed(p, "data: 0123456789", 16), OS_OK);
    assert_int_equal(os_sse_feed(p, "0", 1), OS_ERR_TOOBIG);
    /* sticky */
    assert_int_equal(os_sse_feed(p, "\n\n", 2), OS_ERR_TOOBIG);
    os_sse_parser_free(p);
    assert_int_equal(r.n, 0);
    /* event cap 8: data "abc\ndef" is 8 bytes with its last LF; 9 fails; the type counts too */
    assert_int_equal(parse(&r, "data: abc\ndata: def\n\n", 21, 0, 8), OS_OK);
    expect(&r, 0, "message", "abc\ndef", "");
    assert_int_equal(parse(&r, "data: abc\ndata: defg\n\n", 22, 0, 8), OS_ERR_TOOBIG);
    assert_int_equal(parse(&r, "event: xyz\ndata: abc\ndata: d\n\n", 30, 0, 8), OS_ERR_TOOBIG);
    /* many small events never add up against the event cap */
    char many[600];
    size_t n = 0;
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "data: %05d\n\n", i);
    assert_int_equal(parse(&r, many, n, 0, 8), OS_OK);
    assert_int_equal(r.n, 30);
    expect(&r, 29, "message", "00029", "");
    /* bad arguments */
    assert_int_equal(os_sse_parser_new(&p, 0, 0, NULL, NULL), OS_ERR_INVALID);
    assert_null(p);
    assert_int_equal(os_sse_parser_new(NULL, 0, 0, on_event, NULL), OS_ERR_INVALID);
    assert_int_equal(os_sse_feed(NULL, "x", 1), OS_ERR_INVALID);
    os_sse_parser_free(NULL);
}

static void test_callback_stops(void **state)
{
    (void)state;
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    os_sse_parser *p;
    rec r;
    memset(&r, 0, sizeof(r));
    r.stop_at = 2;
    assert_int_equal(os_sse_parser_new(&p, 0, 0, on_event, &r), OS_OK);
    assert_int_equal(os_sse_feed(p, s, sizeof(s) - 1), OS_ERR_INTERNAL);
    assert_int_equal(os_sse_feed(p, s, sizeof(s) - 1), OS_ERR_INTERNAL);
    os_sse_parser_free(p);
    assert_int_equal(r.n, 2);
}

static void roundtrip(const char *type, const char *id, const char *data, size_t len,
                      const char *want_wire, const char *want_data)
{
    os_buf b;
    rec r;
    os_buf_init(&b, 4096);
    assert_int_equal(os_sse_write(&b, type, id, data, len), OS_OK);
    assert_int_equal(b.len, strlen(want_wire));
    assert_memory_equal(b.data, want_wire, b.len);
    assert_int_equal(parse(&r, (const char *)b.data, b.len, 0, 0), OS_OK);
    assert_int_equal(r.n, 1);
    expect(&r, 0, type != NULL ? type : "message", want_data, id != NULL ? id : "");
    os_buf_free(&b);
}

static void test_writer(void **state)
{
    (void)state;
    os_buf b;
    roundtrip("message_start", NULL, "{\"a\":1}", 7, "event: message_start\ndata: {\"a\":1}\n\n",
              "{\"a\":1}");
    roundtrip(NULL, NULL, "[DONE]", 6, "data: [DONE]\n\n", "[DONE]");
    roundtrip(NULL, "42", "a\nb\r\nc\rd", 8, "id: 42\ndata: a\ndata: b\ndata: c\ndata: d\n\n",
              "a\nb\nc\nd");
    roundtrip(NULL, NULL, "", 0, "data: \n\n", "");
    roundtrip(NULL, NULL, "x\n", 2, "data: x\ndata: \n\n", "x\n");
    roundtrip(NULL, NULL, " lead", 5, "data:  lead\n\n", " lead");
    /* injection refused; cap leaves the buffer unchanged */
    os_buf_init(&b, 20);
    assert_int_equal(os_sse_write(&b, "a\nb", NULL, "x", 1), OS_ERR_INVALID);
    assert_int_equal(os_sse_write(&b, NULL, "1\r", "x", 1), OS_ERR_INVALID);
    assert_int_equal(os_sse_write(&b, NULL, NULL, NULL, 1), OS_ERR_INVALID);
    assert_int_equal(os_sse_write(&b, NULL, NULL, "0123", 4), OS_OK); /* 12 bytes */
    assert_int_equal(os_sse_write(&b, NULL, NULL, "0123", 4), OS_ERR_TOOBIG);
    assert_int_equal(b.len, 12);
    assert_memory_equal(b.data, "data: 0123\n\n", 12);
    os_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_stock),       cmocka_unit_test(test_spec_ids_and_comments),
        cmocka_unit_test(test_spec_empty_data),  cmocka_unit_test(test_fields),
        cmocka_unit_test(test_line_endings_and_bom), cmocka_unit_test(test_openai_stream),
        cmocka_unit_test(test_anthropic_stream), cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_caps),             cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
