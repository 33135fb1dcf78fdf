/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the SDK's node wrappers (registry_node.c, seller_node.c, buyer_node.c) share: the checks a
 * public configuration gets before it reaches a core, each failing with its reason on the node's
 * logger (the cores refuse several of these with a bare OS_ERR_INVALID), and the one lifecycle
 * every node follows: new -> started -> stopped, never started again. Header-only and static, so
 * libopenseed exports nothing but the public API.
 */
#ifndef OPENSEED_SDK_INTERNAL_H
#define OPENSEED_SDK_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "openseed/config.h"
#include "openseed/ct.h"
#include "openseed/err.h"
#include "openseed/log.h"

/* Where a node is in its life. The cores cannot all be restarted once stopped, so no node can. */
typedef enum os_sdk_state {
    OS_SDK_NEW = 0,
    OS_SDK_STARTED,
    OS_SDK_STOPPED,
} os_sdk_state;

/* Whether a node in state st may be started: OS_OK (start the core), OS_ERR_EXISTS (running
 * already: nothing to do), OS_ERR_INVALID (stopped, or a start failed; logged). */
static inline os_err os_sdk_start_check(os_sdk_state st, const char *node, const os_logger *log)
{
    if (st == OS_SDK_STARTED)
        return OS_ERR_EXISTS;
    if (st == OS_SDK_STOPPED) {
        os_log_error(log, "%s: a stopped node cannot be started again", node);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

/* Records how the core's start ended (rc): started, or stopped for good (a failed start has
 * torn down what it began), the reason logged. Returns rc. */
static inline os_err os_sdk_start_done(os_sdk_state *st, os_err rc, const char *node,
                                       const os_logger *log)
{
    *st = rc == OS_OK ? OS_SDK_STARTED : OS_SDK_STOPPED;
    if (rc != OS_OK)
        os_log_error(log, "%s: cannot start: %s", node, os_strerror(rc));
    return rc;
}

/* The listen address of a node whose configuration gives none: a free loopback port. */
#define OS_SDK_DEFAULT_LISTEN "127.0.0.1:0"
#define OS_SDK_ERR_LEN 192

/* Parses listen ("HOST:PORT") into out and checks that it names an address the HTTP server can
 * bind without DNS. OS_ERR_INVALID, logged with what (the key) and node, otherwise. */
static inline os_err os_sdk_check_listen(os_cfg_listen *out, const char *listen, const char *what,
                                         const char *node, const os_logger *log)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char err[OS_SDK_ERR_LEN] = "";

    if (os_cfg_parse_listen(out, listen, err, sizeof(err)) != OS_OK ||
        os_cfg_listen_sockaddr(&ss, &sl, out, err, sizeof(err)) != OS_OK) {
        os_log_error(log, "%s: %s: %s", node, what, err);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

/* OS_OK when url is an http(s) URL (os_cfg_check_url); OS_ERR_INVALID (logged) otherwise. */
static inline os_err os_sdk_check_url(const char *url, const char *what, const char *node,
                                      const os_logger *log)
{
    char err[OS_SDK_ERR_LEN] = "";

    if (os_cfg_check_url(url, err, sizeof(err)) != OS_OK) {
        os_log_error(log, "%s: %s: %s", node, what, err);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

/* OS_OK when s is a non-empty string; OS_ERR_INVALID with "<what> is required" logged. */
static inline os_err os_sdk_required(const char *s, const char *what, const char *node,
                                     const os_logger *log)
{
    if (s == NULL || s[0] == '\0') {
        os_log_error(log, "%s: %s is required", node, what);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

/* OS_OK when the 20 bytes are not all zero; OS_ERR_INVALID with "<what> is required" logged. */
static inline os_err os_sdk_required_address(const uint8_t addr[20], const char *what,
                                             const char *node, const os_logger *log)
{
    if (os_ct_is_zero(addr, 20)) {
        os_log_error(log, "%s: %s is required (it is all zeros)", node, what);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

/* OS_OK when list holds n http(s) URLs (list may be NULL only when n is 0) and, when need_one,
 * n >= 1; OS_ERR_INVALID (logged) otherwise. */
static inline os_err os_sdk_check_urls(const char *const *list, size_t n, bool need_one,
                                       const char *what, const char *node, const os_logger *log)
{
    if (need_one && n == 0) {
        os_log_error(log, "%s: at least one %s is required", node, what);
        return OS_ERR_INVALID;
    }
    if (n > 0 && list == NULL) {
        os_log_error(log, "%s: %zu %s given but the list is NULL", node, n, what);
        return OS_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++)
        if (os_sdk_check_url(list[i], what, node, log) != OS_OK)
            return OS_ERR_INVALID;
    return OS_OK;
}

/* Creates dir with mode 0700 when it does not exist (its parent must). OS_ERR_IO (logged) when
 * it cannot be made or is not a directory. */
static inline os_err os_sdk_mkdir_private(const char *dir, const char *node, const os_logger *log)
{
    struct stat sb;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        os_log_error(log, "%s: cannot create data_dir: %s", node, strerror(errno));
        return OS_ERR_IO;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        os_log_error(log, "%s: data_dir is not a directory", node);
        return OS_ERR_IO;
    }
    return OS_OK;
}

#endif
