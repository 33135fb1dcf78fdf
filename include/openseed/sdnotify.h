/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service manager's side channel, without libsystemd: systemd's sd_notify(3) protocol
 * (one AF_UNIX datagram of newline-separated KEY=VALUE lines to the socket named by
 * $NOTIFY_SOCKET, a path or "@name" for the abstract namespace) and its watchdog settings
 * ($WATCHDOG_USEC, $WATCHDOG_PID), as sd_watchdog_enabled(3) reads them. Both only read the
 * environment; a process not started by systemd has neither variable and every call is a no-op.
 */
#ifndef OPENSEED_SDNOTIFY_H
#define OPENSEED_SDNOTIFY_H

#include <stdint.h>

#include "openseed/err.h"

/* Longest state a caller may send, and longest $NOTIFY_SOCKET path or abstract name (after the
 * '@'): what sockaddr_un's sun_path holds. */
#define OS_SD_STATE_MAX 4096
#define OS_SD_SOCKET_MAX 107

/*
 * Sends state (e.g. "READY=1\nSTATUS=serving") as one datagram to $NOTIFY_SOCKET. Never blocks:
 * a full socket buffer is OS_ERR_IO, as is a socket nobody listens on. OS_OK without sending when
 * $NOTIFY_SOCKET is unset or empty. OS_ERR_INVALID for a NULL or empty state, a state longer than
 * OS_SD_STATE_MAX, or a $NOTIFY_SOCKET that is neither an absolute path nor "@name" (path or name
 * at most OS_SD_SOCKET_MAX bytes; the vsock addresses of newer systemd are not supported).
 */
OS_WUR os_err os_sd_notify(const char *state);

/*
 * The watchdog interval systemd expects WATCHDOG=1 within, in microseconds, into *us: OS_OK when
 * $WATCHDOG_USEC is a positive decimal number and $WATCHDOG_PID is unset or this process's pid.
 * OS_ERR_NOTFOUND (*us = 0) when $WATCHDOG_USEC is unset or the watchdog is another process's;
 * OS_ERR_INVALID (*us = 0) when either variable is not a plain positive decimal number.
 */
OS_WUR os_err os_sd_watchdog_interval_us(uint64_t *us);

#endif
