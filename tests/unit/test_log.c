/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for log.c: exact logfmt lines under a fixed clock (2026-11-21T05:00:00.123Z is Unix time
 * 1795237200 + 123 ms), the fixed context, fields and their quoting, escapes that keep hostile
 * input from splitting or forging a line, level filtering (and that filtered-out arguments are not
 * evaluated), errno preservation even when the write fails, the NULL logger on stderr, level names,
 * and truncation of over-long events at a character boundary.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "openseed/log.h"

#define TS "ts=2026-11-21T05:00:00.123Z "

static void fixed_clock(struct timespec *ts)
{
    ts->tv_sec = 1795237200;
    ts->tv_nsec = 123456789;
}

typedef struct sink {
    char *buf;
    size_t len;
    FILE *f;
} sink;

static void sink_open(sink *s, os_logger *lg, const char *component, os_log_level level)
{
    s->buf = NULL;
    s->len = 0;
    s->f = open_memstream(&s->buf, &s->len);
    assert_non_null(s->f);
    os_logger_init(lg, component, level);
    lg->out = s->f;
    lg->clock = fixed_clock;
}

/* Everything logged so far; the sink stays usable. */
static const char *sink_text(sink *s)
{
    fflush(s->f);
    return s->buf != NULL ? s->buf : "";
}

static void sink_close(sink *s)
{
    fclose(s->f);
    free(s->buf);
}

static void test_exact_lines(void **state)
{
    os_logger lg;
    sink s;
    (void)state;
    sink_open(&s, &lg, "registry", OS_LOG_INFO);
    os_log_info(&lg, "peer %s announced", "0xab");
    os_log_warn(&lg, "slow upstream: %d ms", 1500);
    os_log_error(&lg, "%s", "");
    assert_string_equal(sink_text(&s),
                        TS "level=info component=registry msg=\"peer 0xab announced\"\n" TS
                           "level=warn component=registry msg=\"slow upstream: 1500 ms\"\n" TS
                           "level=error component=registry msg=\"\"\n");
    sink_close(&s);
}

static void test_context_and_fields(void **state)
{
    os_logger lg;
    sink s;
    os_log_event ev;
    (void)state;
    sink_open(&s, &lg, "seller", OS_LOG_DEBUG);
    assert_int_equal(os_logger_add_context(&lg, "node", "0xAbC1"), OS_OK);
    assert_int_equal(os_logger_add_context(&lg, "region", "eu west"), OS_OK);
    assert_int_equal(os_logger_add_context(&lg, "", "x"), OS_ERR_INVALID);
    assert_true(os_log_begin(&ev, &lg, OS_LOG_DEBUG, "voucher accepted"));
    os_log_kv(&ev, "seq", "%d", 17);
    os_log_kv(&ev, "path", "%s", "/var/lib/open seed");
    os_log_kv(&ev, "empty", "%s", "");
    os_log_kv(&ev, "eq", "%s", "a=b");
    os_log_kv(&ev, "bad key=", "%s", "v");
    os_log_kv(&ev, NULL, "%s", "v");
    os_log_kv(&ev, "utf8", "%s", "\xc3\xa9t\xc3\xa9");
    os_log_end(&ev);
    assert_string_equal(sink_text(&s),
                        TS "level=debug component=seller node=0xAbC1 region=\"eu west\" "
                           "msg=\"voucher accepted\" seq=17 path=\"/var/lib/open seed\" "
                           "empty=\"\" eq=\"a=b\" bad_key_=v _=v utf8=\xc3\xa9t\xc3\xa9\n");
    sink_close(&s);
}

static void test_escaping(void **state)
{
    os_logger lg;
    sink s;
    os_log_event ev;
    (void)state;
    sink_open(&s, &lg, "buyer", OS_LOG_INFO);
    /* a message trying to start a second, forged line */
    os_log_info(&lg, "model %s",
                "x\" level=error\nts=2026-01-01T00:00:00.000Z level=error msg=\"pwned");
    assert_true(os_log_begin(&ev, &lg, OS_LOG_INFO, "a \"quoted\" msg\\"));
    os_log_kv(&ev, "v", "%s", "tab\there\rcr\x01\x7f\\end");
    os_log_kv(&ev, "q", "%s", "say\"hi\"");
    os_log_kv(&ev, "bs", "%s", "C:\\dir");
    os_log_end(&ev);
    const char *t = sink_text(&s);
    assert_string_equal(
        t, TS "level=info component=buyer msg=\"model x\\\" level=error\\nts=2026-01-01T00:00:00."
              "000Z level=error msg=\\\"pwned\"\n" TS
              "level=info component=buyer msg=\"a \\\"quoted\\\" msg\\\\\" "
              "v=\"tab\\there\\rcr\\u0001\\u007f\\\\end\" q=\"say\\\"hi\\\"\" bs=\"C:\\\\dir\"\n");
    /* exactly two lines */
    size_t lines = 0;
    for (const char *p = t; *p != '\0'; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    sink_close(&s);
}

static int bump(int *n)
{
    return ++*n;
}

static void test_level_filter(void **state)
{
    os_logger lg;
    sink s;
    os_log_event ev;
    int evaluated = 0;
    (void)state;
    sink_open(&s, &lg, "x", OS_LOG_WARN);
    os_log_debug(&lg, "debug %d", bump(&evaluated));
    os_log_info(&lg, "info %d", bump(&evaluated));
    assert_int_equal(evaluated, 0); /* arguments of a filtered event are not evaluated */
    assert_false(os_log_begin(&ev, &lg, OS_LOG_INFO, "info"));
    os_log_warn(&lg, "warn %d", bump(&evaluated));
    os_log_error(&lg, "error %d", bump(&evaluated));
    assert_int_equal(evaluated, 2);
    assert_string_equal(sink_text(&s), TS "level=warn component=x msg=\"warn 1\"\n" TS
                                          "level=error component=x msg=\"error 2\"\n");
    lg.level = OS_LOG_ERROR;
    os_log_warn(&lg, "hidden");
    lg.level = OS_LOG_DEBUG;
    os_log_debug(&lg, "shown");
    assert_non_null(strstr(sink_text(&s), "level=debug component=x msg=\"shown\"\n"));
    assert_null(strstr(sink_text(&s), "hidden"));
    assert_true(os_log_enabled(NULL, OS_LOG_INFO));
    assert_false(os_log_enabled(NULL, OS_LOG_DEBUG));
    sink_close(&s);
}

static void test_errno_preserved(void **state)
{
    os_logger lg;
    sink s;
    os_log_event ev;
    (void)state;
    sink_open(&s, &lg, "x", OS_LOG_DEBUG);
    errno = EACCES;
    os_log_info(&lg, "%s", "one");
    assert_int_equal(errno, EACCES);
    errno = ENOENT;
    assert_true(os_log_begin(&ev, &lg, OS_LOG_INFO, "two"));
    errno = 0;
    os_log_kv(&ev, "k", "%s", "v");
    os_log_end(&ev);
    assert_int_equal(errno, ENOENT);
    sink_close(&s);

    /* a failing write (ENOSPC from /dev/full) does not leak into errno either */
    FILE *full = fopen("/dev/full", "w");
    if (full != NULL) {
        lg.out = full;
        errno = EPERM;
        os_log_error(&lg, "disk full");
        assert_int_equal(errno, EPERM);
        fclose(full);
    }
}

static void test_null_logger_stderr(void **state)
{
    char path[] = "/tmp/openseed-log-XXXXXX";
    int fd = mkstemp(path);
    int saved;
    char buf[512];
    ssize_t n;
    (void)state;
    assert_true(fd >= 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    os_log_info(NULL, "library says %d", 42);
    os_log_debug(NULL, "not shown");
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    assert_true(lseek(fd, 0, SEEK_SET) == 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    buf[n] = '\0';
    /* the real clock is used: match from level= on, and the timestamp's shape */
    assert_true(strncmp(buf, "ts=", 3) == 0);
    assert_int_equal(buf[3 + 4], '-');
    assert_int_equal(buf[3 + 10], 'T');
    assert_int_equal(buf[3 + 23], 'Z');
    assert_string_equal(buf + 3 + 24, " level=info component=openseed msg=\"library says 42\"\n");
}

static void test_level_names(void **state)
{
    os_log_level lv;
    (void)state;
    static const struct {
        const char *name;
        os_log_level level;
    } ok[] = {{"error", OS_LOG_ERROR},
              {"WARN", OS_LOG_WARN},
              {"warning", OS_LOG_WARN},
              {"Info", OS_LOG_INFO},
              {"debug", OS_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        lv = OS_LOG_ERROR;
        assert_int_equal(os_log_level_parse(&lv, ok[i].name), OS_OK);
        assert_int_equal(lv, ok[i].level);
    }
    static const char *const bad[] = {"", "verbose", "inf", "info ", "trace", "3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(os_log_level_parse(&lv, bad[i]), OS_ERR_INVALID);
    assert_int_equal(os_log_level_parse(&lv, NULL), OS_ERR_INVALID);
    assert_string_equal(os_log_level_name(OS_LOG_WARN), "warn");
    assert_string_equal(os_log_level_name((os_log_level)9), "unknown");
}

/* A line is well-formed UTF-8 with exactly one newline, at its end. */
static void assert_one_clean_line(const char *t, size_t len)
{
    assert_true(len > 0 && len <= OS_LOG_LINE_MAX);
    assert_int_equal(t[len - 1], '\n');
    assert_null(memchr(t, '\n', len - 1));
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)t[i];
        size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        assert_true(c < 0x80 || c >= 0xC2);
        for (size_t j = 1; j < k; j++)
            assert_int_equal((unsigned char)t[i + j] & 0xC0, 0x80);
        i += k;
    }
}

static void test_truncation(void **state)
{
    os_logger lg;
    sink s;
    os_log_event ev;
    char big[5000];
    (void)state;

    sink_open(&s, &lg, "x", OS_LOG_INFO);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    os_log_info(&lg, "%s", big);
    const char *t = sink_text(&s);
    size_t len = strlen(t);
    assert_one_clean_line(t, len);
    assert_true(len > OS_LOG_LINE_MAX - 40);
    static const char tail_a[] = "aaa\" truncated=true\n";
    assert_string_equal(t + len - (sizeof(tail_a) - 1), tail_a);
    sink_close(&s);

    /* two-byte characters and escapes near the cut: still whole units, still one line */
    for (size_t shift = 0; shift < 4; shift++) {
        sink_open(&s, &lg, "x", OS_LOG_INFO);
        size_t k = 0;
        for (size_t i = 0; i < shift; i++)
            big[k++] = 'b';
        while (k + 2 < sizeof(big)) {
            big[k++] = '\xc3';
            big[k++] = '\xa9';
        }
        big[k] = '\0';
        assert_true(os_log_begin(&ev, &lg, OS_LOG_INFO, "m"));
        os_log_kv(&ev, "k", "%s", big);
        os_log_kv(&ev, "after", "%s", "dropped");
        os_log_end(&ev);
        t = sink_text(&s);
        len = strlen(t);
        assert_one_clean_line(t, len);
        assert_null(strstr(t, "after="));
        assert_string_equal(t + len - 16, " truncated=true\n");
        sink_close(&s);

        sink_open(&s, &lg, "x", OS_LOG_INFO);
        memset(big, '\n', sizeof(big) - 1);
        big[sizeof(big) - 1 - shift] = '\0';
        os_log_info(&lg, "%s", big);
        t = sink_text(&s);
        len = strlen(t);
        assert_one_clean_line(t, len);
        static const char tail_n[] = "\\n\\n\" truncated=true\n";
        assert_string_equal(t + len - (sizeof(tail_n) - 1), tail_n);
        sink_close(&s);
    }
}

static void test_context_limits(void **state)
{
    os_logger lg;
    char v[OS_LOG_CONTEXT_MAX];
    (void)state;
    os_logger_init(&lg, "bad comp\n", OS_LOG_INFO);
    assert_string_equal(lg.component, "bad_comp_");
    memset(v, 'v', 200);
    v[200] = '\0';
    assert_int_equal(os_logger_add_context(&lg, "a", v), OS_OK);
    size_t before = lg.context_len;
    char saved[OS_LOG_CONTEXT_MAX];
    memcpy(saved, lg.context, sizeof(saved));
    assert_int_equal(os_logger_add_context(&lg, "b", v), OS_ERR_TOOBIG);
    assert_int_equal(lg.context_len, before);
    assert_memory_equal(lg.context, saved, before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_lines),     cmocka_unit_test(test_context_and_fields),
        cmocka_unit_test(test_escaping),        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_errno_preserved), cmocka_unit_test(test_null_logger_stderr),
        cmocka_unit_test(test_level_names),     cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_context_limits),
    };
    return cmocka_run_group_tests_name("log", tests, tu_init, NULL);
}
