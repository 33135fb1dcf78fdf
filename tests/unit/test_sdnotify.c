/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for sdnotify.c against sockets this test owns, as systemd's side would hold them: the exact
 * datagram on a path socket and on an abstract "@name" socket (sd_notify(3): "If the first
 * character of $NOTIFY_SOCKET is '@', the string is understood as Linux abstract namespace
 * socket"), the no-op without $NOTIFY_SOCKET, refusals of malformed addresses and states, a send
 * that fails rather than blocks when the receiver's queue is full, and $WATCHDOG_USEC /
 * $WATCHDOG_PID parsing as sd_watchdog_enabled(3) describes it (a positive number of µs, ignored
 * when WATCHDOG_PID names another process). Also the journal side of log.c that the daemons turn
 * on under systemd: $JOURNAL_STREAM ("DEVICE:INODE" of stderr, systemd.exec(5)) detection, the
 * "<N>" syslog priority prefixes of sd-daemon.h (SD_ERR "<3>", SD_WARNING "<4>", SD_INFO "<6>",
 * SD_DEBUG "<7>"), and the atomic level change a reload makes.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "openseed/log.h"
#include "openseed/sdnotify.h"

/* A datagram socket bound to a path or abstract name ("@..."), non-blocking. */
static int bind_dgram(const char *name)
{
    struct sockaddr_un sa;
    socklen_t len;
    size_t n = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    assert_true(n < sizeof(sa.sun_path) + (name[0] == '@' ? 1 : 0));
    if (name[0] == '@') {
        memcpy(sa.sun_path + 1, name + 1, n - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        memcpy(sa.sun_path, name, n);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    return fd;
}

/* The next datagram, NUL-terminated into buf; its length, or -1 when none is waiting. */
static ssize_t recv_one(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap - 1, 0);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static void test_unset_is_noop(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(os_sd_notify("READY=1"), OS_OK);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(os_sd_notify("READY=1"), OS_OK);
    /* the state is checked even when nothing would be sent */
    assert_int_equal(os_sd_notify(""), OS_ERR_INVALID);
    assert_int_equal(os_sd_notify(NULL), OS_ERR_INVALID);
    unsetenv("NOTIFY_SOCKET");
}

static void test_path_socket(void **state)
{
    char dir[] = "/tmp/openseed-sdnotify-XXXXXX", path[128], buf[8192];
    int fd;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    fd = bind_dgram(path);
    setenv("NOTIFY_SOCKET", path, 1);

    assert_int_equal(os_sd_notify("READY=1\nSTATUS=serving on 127.0.0.1:8379"), OS_OK);
    assert_int_equal(recv_one(fd, buf, sizeof(buf)), 40);
    assert_string_equal(buf, "READY=1\nSTATUS=serving on 127.0.0.1:8379");
    assert_int_equal(os_sd_notify("WATCHDOG=1"), OS_OK);
    assert_int_equal(recv_one(fd, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "WATCHDOG=1");
    assert_int_equal(recv_one(fd, buf, sizeof(buf)), -1); /* one datagram per call */

    /* the longest state goes out whole; one byte more is refused before sending */
    char *big = malloc(OS_SD_STATE_MAX + 2);
    assert_non_null(big);
    memset(big, 'x', OS_SD_STATE_MAX + 1);
    memcpy(big, "STATUS=", 7);
    big[OS_SD_STATE_MAX] = '\0';
    assert_int_equal(os_sd_notify(big), OS_OK);
    assert_int_equal(recv_one(fd, buf, sizeof(buf)), OS_SD_STATE_MAX);
    assert_memory_equal(buf, big, OS_SD_STATE_MAX);
    big[OS_SD_STATE_MAX] = 'x';
    big[OS_SD_STATE_MAX + 1] = '\0';
    assert_int_equal(os_sd_notify(big), OS_ERR_INVALID);
    assert_int_equal(recv_one(fd, buf, sizeof(buf)), -1);
    free(big);

    close(fd);
    unlink(path);
    /* nobody listens any more: an error, not a hang */
    assert_int_equal(os_sd_notify("READY=1"), OS_ERR_IO);
    rmdir(dir);
    unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
    char name[OS_SD_SOCKET_MAX + 3], buf[256];
    int fd;
    (void)state;
    snprintf(name, sizeof(name), "@openseed-test-%ld", (long)getpid());
    fd = bind_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(os_sd_notify("STOPPING=1"), OS_OK);
    assert_int_equal(recv_one(fd, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "STOPPING=1");
    close(fd);

    /* the longest abstract name sun_path holds after its leading NUL */
    memset(name, 'a', sizeof(name));
    name[0] = '@';
    snprintf(name + 1, 20, "os%ld-", (long)getpid());
    name[strlen(name)] = 'a';
    name[1 + OS_SD_SOCKET_MAX] = '\0';
    fd = bind_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(os_sd_notify("READY=1"), OS_OK);
    assert_int_equal(recv_one(fd, buf, sizeof(buf)), 7);
    close(fd);
    name[1 + OS_SD_SOCKET_MAX] = 'a';
    name[2 + OS_SD_SOCKET_MAX] = '\0';
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(os_sd_notify("READY=1"), OS_ERR_INVALID);
    unsetenv("NOTIFY_SOCKET");
}

static void test_bad_addresses(void **state)
{
    char longpath[OS_SD_SOCKET_MAX + 3];
    (void)state;
    static const char *const bad[] = {
        "run/notify",          /* relative */
        "@",                   /* an empty abstract name */
        "vsock:2:1234",        /* newer systemd's vsock form: not supported */
        " /run/systemd/notify" /* no trimming */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("NOTIFY_SOCKET", bad[i], 1);
        assert_int_equal(os_sd_notify("READY=1"), OS_ERR_INVALID);
    }
    memset(longpath, 'p', sizeof(longpath));
    longpath[0] = '/';
    longpath[OS_SD_SOCKET_MAX + 1] = '\0'; /* 108 bytes: no room for the NUL in sun_path */
    setenv("NOTIFY_SOCKET", longpath, 1);
    assert_int_equal(os_sd_notify("READY=1"), OS_ERR_INVALID);
    longpath[OS_SD_SOCKET_MAX] = '\0'; /* 107 bytes: a valid address nobody listens on */
    setenv("NOTIFY_SOCKET", longpath, 1);
    assert_int_equal(os_sd_notify("READY=1"), OS_ERR_IO);
    unsetenv("NOTIFY_SOCKET");
}

/* The receiver never reads: the sender must fail fast (MSG_DONTWAIT), never block. */
static void test_full_queue_does_not_block(void **state)
{
    char name[64];
    struct timespec t0, t1;
    os_err rc = OS_OK;
    int fd, sent = 0;
    (void)state;
    snprintf(name, sizeof(name), "@openseed-full-%ld", (long)getpid());
    fd = bind_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (sent < 100000 && (rc = os_sd_notify("WATCHDOG=1")) == OS_OK)
        sent++;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(rc, OS_ERR_IO);
    assert_true(sent > 0);
    assert_true(t1.tv_sec - t0.tv_sec < 10);
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_env(void **state)
{
    char pid[32];
    uint64_t us = 77;
    (void)state;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(os_sd_watchdog_interval_us(&us), OS_ERR_NOTFOUND);
    assert_int_equal(us, 0);
    assert_int_equal(os_sd_watchdog_interval_us(NULL), OS_ERR_INVALID);

    setenv("WATCHDOG_USEC", "30000000", 1); /* WatchdogSec=30s */
    assert_int_equal(os_sd_watchdog_interval_us(&us), OS_OK);
    assert_int_equal(us, 30000000);
    setenv("WATCHDOG_USEC", "18446744073709551615", 1);
    assert_int_equal(os_sd_watchdog_interval_us(&us), OS_OK);
    assert_true(us == UINT64_MAX);

    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_USEC", "500000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(os_sd_watchdog_interval_us(&us), OS_OK);
    assert_int_equal(us, 500000);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1); /* meant for another process */
    us = 77;
    assert_int_equal(os_sd_watchdog_interval_us(&us), OS_ERR_NOTFOUND);
    assert_int_equal(us, 0);
    setenv("WATCHDOG_PID", "12x", 1);
    assert_int_equal(os_sd_watchdog_interval_us(&us), OS_ERR_INVALID);
    unsetenv("WATCHDOG_PID");

    static const char *const bad[] = {"",
                                      "0",
                                      "-5",
                                      "+5",
                                      " 5",
                                      "5 ",
                                      "5x",
                                      "0x10",
                                      "18446744073709551616",
                                      "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("WATCHDOG_USEC", bad[i], 1);
        us = 77;
        assert_int_equal(os_sd_watchdog_interval_us(&us), OS_ERR_INVALID);
        assert_int_equal(us, 0);
    }
    unsetenv("WATCHDOG_USEC");
}

/* ---- log.c under the journal ---- */

static void fixed_clock(struct timespec *ts)
{
    ts->tv_sec = 1795237200; /* 2026-11-21T05:00:00Z */
    ts->tv_nsec = 123000000;
}

static void test_journal_detection(void **state)
{
    struct stat sb;
    char v[96];
    (void)state;
    assert_int_equal(fstat(STDERR_FILENO, &sb), 0);
    unsetenv("JOURNAL_STREAM");
    assert_false(os_log_stderr_is_journal());
    snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)sb.st_dev, (uintmax_t)sb.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    assert_true(os_log_stderr_is_journal());
    /* set for another stream (stderr redirected after systemd started us): plain lines */
    snprintf(v, sizeof(v), "%ju:%ju", (uintmax_t)sb.st_dev, (uintmax_t)sb.st_ino + 1);
    setenv("JOURNAL_STREAM", v, 1);
    assert_false(os_log_stderr_is_journal());
    static const char *const bad[] = {"", ":", "1", "1:", ":2", "a:b", "1:2x", "-1:2", "1:+2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("JOURNAL_STREAM", bad[i], 1);
        assert_false(os_log_stderr_is_journal());
    }
    unsetenv("JOURNAL_STREAM");
}

static void test_journal_prefixes(void **state)
{
    os_logger lg;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    (void)state;
    assert_non_null(f);
    os_logger_init(&lg, "seller", OS_LOG_DEBUG);
    lg.out = f;
    lg.clock = fixed_clock;
    lg.journal = true;
    os_log_error(&lg, "e");
    os_log_warn(&lg, "w");
    os_log_info(&lg, "i");
    os_log_debug(&lg, "d");
    lg.journal = false;
    os_log_info(&lg, "plain");
    fflush(f);
    assert_string_equal(buf,
                        "<3>ts=2026-11-21T05:00:00.123Z level=error component=seller msg=\"e\"\n"
                        "<4>ts=2026-11-21T05:00:00.123Z level=warn component=seller msg=\"w\"\n"
                        "<6>ts=2026-11-21T05:00:00.123Z level=info component=seller msg=\"i\"\n"
                        "<7>ts=2026-11-21T05:00:00.123Z level=debug component=seller msg=\"d\"\n"
                        "ts=2026-11-21T05:00:00.123Z level=info component=seller msg=\"plain\"\n");
    fclose(f);
    free(buf);
}

static void test_set_level(void **state)
{
    os_logger lg;
    (void)state;
    os_logger_init(&lg, "registry", OS_LOG_INFO);
    assert_false(os_log_enabled(&lg, OS_LOG_DEBUG));
    os_logger_set_level(&lg, OS_LOG_DEBUG);
    assert_true(os_log_enabled(&lg, OS_LOG_DEBUG));
    os_logger_set_level(&lg, OS_LOG_ERROR);
    assert_false(os_log_enabled(&lg, OS_LOG_WARN));
    assert_true(os_log_enabled(&lg, OS_LOG_ERROR));
    os_logger_set_level(NULL, OS_LOG_DEBUG); /* NULL-safe */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_is_noop),
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_full_queue_does_not_block),
        cmocka_unit_test(test_watchdog_env),
        cmocka_unit_test(test_journal_detection),
        cmocka_unit_test(test_journal_prefixes),
        cmocka_unit_test(test_set_level),
    };
    return cmocka_run_group_tests_name("sdnotify", tests, tu_init, NULL);
}
