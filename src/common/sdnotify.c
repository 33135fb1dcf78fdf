/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sd_notify(3) in a few lines, so the daemons need no libsystemd: a fresh datagram socket per
 * message (messages are rare: start, reload, stop, a watchdog ping every few seconds), sent with
 * MSG_DONTWAIT so a stalled service manager can never stall the daemon's main loop. The receiver
 * learns our pid from SO_PASSCRED, which the kernel fills in without our help.
 */
#include "openseed/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Fills sa from $NOTIFY_SOCKET's value; *len is the address length to pass to sendto. */
static os_err notify_address(struct sockaddr_un *sa, socklen_t *len, const char *name)
{
    size_t n = strlen(name);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (name[0] == '/') {
        if (n > OS_SD_SOCKET_MAX || n >= sizeof(sa->sun_path))
            return OS_ERR_INVALID;
        memcpy(sa->sun_path, name, n);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return OS_OK;
    }
    if (name[0] == '@') {
        /* abstract: a leading NUL, then the name, not NUL-terminated (the length delimits it) */
        n--;
        if (n == 0 || n > OS_SD_SOCKET_MAX || n + 1 > sizeof(sa->sun_path))
            return OS_ERR_INVALID;
        memcpy(sa->sun_path + 1, name + 1, n);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
        return OS_OK;
    }
    return OS_ERR_INVALID;
}

os_err os_sd_notify(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t sa_len = 0;
    size_t n;
    ssize_t sent;
    int fd, saved;
    os_err rc;

    if (state == NULL || (n = strlen(state)) == 0 || n > OS_SD_STATE_MAX)
        return OS_ERR_INVALID;
    if (name == NULL || name[0] == '\0')
        return OS_OK;
    if ((rc = notify_address(&sa, &sa_len, name)) != OS_OK)
        return rc;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return OS_ERR_IO;
    sent = sendto(fd, state, n, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&sa, sa_len);
    saved = errno;
    close(fd);
    errno = saved;
    return sent == (ssize_t)n ? OS_OK : OS_ERR_IO;
}

/* A plain positive decimal number (no sign, no space, no overflow) into *out. */
static os_err parse_positive(uint64_t *out, const char *s)
{
    uint64_t v = 0;

    if (s[0] == '\0')
        return OS_ERR_INVALID;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return OS_ERR_INVALID;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v == 0)
        return OS_ERR_INVALID;
    *out = v;
    return OS_OK;
}

os_err os_sd_watchdog_interval_us(uint64_t *us)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    uint64_t v = 0, p = 0;

    if (us == NULL)
        return OS_ERR_INVALID;
    *us = 0;
    if (usec == NULL)
        return OS_ERR_NOTFOUND;
    if (parse_positive(&v, usec) != OS_OK)
        return OS_ERR_INVALID;
    if (pid != NULL) {
        if (parse_positive(&p, pid) != OS_OK)
            return OS_ERR_INVALID;
        /* set for a process we started, or inherited from our own parent: not ours to feed */
        if (p != (uint64_t)getpid())
            return OS_ERR_NOTFOUND;
    }
    *us = v;
    return OS_OK;
}
