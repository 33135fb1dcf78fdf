/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: runs one of the build's programs (BUILD_DIR/prog, build_dir set by the test) with
 * posix_spawn, stdin from /dev/null, and collects its exit status, stdout and stderr (at most
 * 1 MiB each, 60 s at most), for the tests that drive the real binaries' command lines.
 *
 * Header-only: each integration test is a single .c file.
 */
#ifndef OPENSEED_TEST_RUN_PROG_H
#define OPENSEED_TEST_RUN_PROG_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char build_dir[1024];

typedef struct result {
    int status; /* exit status, or -1 if killed by a signal */
    char *out;
    char *err;
} result;

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Appends what fd has to *buf; returns 0 at EOF, 1 if more may come. */
static int drain(int fd, char **buf, size_t *len)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
        return 1;
    if (n <= 0)
        return 0;
    assert_true(*len + (size_t)n < (1u << 20));
    char *grown = realloc(*buf, *len + (size_t)n + 1);
    assert_non_null(grown);
    memcpy(grown + *len, chunk, (size_t)n);
    *len += (size_t)n;
    grown[*len] = '\0';
    *buf = grown;
    return 1;
}

/* Runs BUILD_DIR/prog with args (NULL-terminated) and collects its output and exit status. */
static result run(const char *prog, const char *const *args)
{
    char path[1200];
    char *argv[40];
    int po[2], pe[2], argc = 0;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    result r = {.status = -1, .out = NULL, .err = NULL};
    size_t ol = 0, el = 0;

    snprintf(path, sizeof(path), "%s/%s", build_dir, prog);
    argv[argc++] = path;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(argc < 39);
        argv[argc++] = (char *)args[i];
    }
    argv[argc] = NULL;
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, po[1], 1), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, pe[1], 2), 0);
    assert_int_equal(posix_spawn_file_actions_addclose(&fa, po[0]), 0);
    assert_int_equal(posix_spawn_file_actions_addclose(&fa, pe[0]), 0);
    assert_int_equal(posix_spawn_file_actions_addclose(&fa, po[1]), 0);
    assert_int_equal(posix_spawn_file_actions_addclose(&fa, pe[1]), 0);
    int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    if (rc != 0)
        fail_msg("cannot run %s: %s", path, strerror(rc));

    r.out = calloc(1, 1);
    r.err = calloc(1, 1);
    assert_non_null(r.out);
    assert_non_null(r.err);
    struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int open_fds = 2;
    time_t deadline = time(NULL) + 60;
    while (open_fds > 0) {
        int n = poll(pf, 2, 1000);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            fail_msg("%s did not finish within 60 s", prog);
        }
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                if (!drain(pf[i].fd, i == 0 ? &r.out : &r.err, i == 0 ? &ol : &el)) {
                    close(pf[i].fd);
                    pf[i].fd = -1;
                    open_fds--;
                }
            }
        }
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        assert_int_equal(errno, EINTR);
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    return r;
}

#endif
