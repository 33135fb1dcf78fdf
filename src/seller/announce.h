/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's presence in the registries (PROTOCOL.md §4): one background thread that announces
 * the signed seller record to every configured registry, then heartbeats each at the interval
 * that registry asked for, with the current load. A heartbeat answered 404 (the registry forgot
 * the seller) is followed by a new announcement at once. A registry that cannot be reached or
 * refuses (5xx, 429, transport errors) is retried with exponential backoff (1 s doubling to 60 s,
 * with jitter), independently of the others; serving never depends on it.
 *
 * Every message carries a fresh seq, strictly increasing across messages and restarts: the
 * current time in milliseconds, or the last seq + 1 when the clock has not moved on. The record's
 * timestamp and seq are refreshed on each announcement and the record re-signed.
 */
#ifndef OPENSEED_SELLER_ANNOUNCE_H
#define OPENSEED_SELLER_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"
#include "openseed/record.h"

typedef struct sl_announcer sl_announcer;

/* The current load, sampled per heartbeat. */
typedef void (*sl_load_cb)(void *ud, uint32_t *active, uint32_t *capacity);

typedef struct sl_announcer_config {
    const char *const *registries; /* base URLs, e.g. "http://127.0.0.1:8379"; copied */
    size_t n_registries;
    const os_record *record;  /* the record to announce (seq and timestamp are replaced); copied */
    const uint8_t *node_priv; /* 32 bytes; copied into locked memory, wiped on free */
    uint64_t chain_id;        /* heartbeat signing domain */
    sl_load_cb load;          /* may be NULL (0/0) */
    void *load_ud;
    const os_logger *log;     /* borrowed; NULL = default */
    uint64_t min_backoff_ms;  /* 0 = 1000 */
    uint64_t max_backoff_ms;  /* 0 = 60000 */
    long request_timeout_ms;  /* per registry request; 0 = 10000 */
    const char *ca_file;      /* PEM CAs for https registries instead of the system's; or NULL */
} sl_announcer_config;

OS_WUR os_err sl_announcer_new(sl_announcer **out, const sl_announcer_config *cfg);
/* Starts the thread; the first announcements go out at once. */
OS_WUR os_err sl_announcer_start(sl_announcer *a);
/* Stops and joins (an HTTP request in progress is aborted within about a second). Idempotent. */
void sl_announcer_stop(sl_announcer *a);
void sl_announcer_free(sl_announcer *a);

/* Replaces the record (for example a new endpoint); re-announced at the next opportunity. */
OS_WUR os_err sl_announcer_set_record(sl_announcer *a, const os_record *record);

typedef struct sl_announcer_stats {
    size_t registries;
    size_t registered;      /* registries whose last message was accepted */
    uint64_t announces_ok, announces_failed;
    uint64_t heartbeats_ok, heartbeats_failed;
    uint64_t reannounces;   /* announcements after a 404 */
} sl_announcer_stats;
void sl_announcer_get_stats(sl_announcer *a, sl_announcer_stats *out);

#define SL_REGISTRY_URL_MAX 1025  /* a registry URL as configured is at most 1024 bytes */
#define SL_REGISTRY_ERROR_MAX 201 /* bytes of last_error, NUL included */

/* One registry as the announcer last saw it (for the admin API). */
typedef struct sl_registry_status {
    char url[SL_REGISTRY_URL_MAX]; /* base URL without user info or trailing '/' */
    bool registered;               /* its last answer accepted our last message */
    int64_t last_ok_at;            /* Unix seconds of the last accepted message; 0 = never */
    int64_t last_attempt_at;       /* Unix seconds of the last message sent; 0 = none yet */
    const char *last_op;           /* "announce" or "heartbeat" (static); NULL = none yet */
    uint64_t failures;             /* failed messages since the last accepted one */
    /* Why the last message failed, one printable line cut on a UTF-8 boundary: the registry's
     * status, code and message, or the transport's reason (which never holds the URL's user
     * info, path or query); "" when the last message was accepted or none was sent. */
    char last_error[SL_REGISTRY_ERROR_MAX];
    uint64_t heartbeat_interval_s; /* as the registry last asked (30 until it says) */
    uint64_t next_in_s;            /* until the next message, rounded up; 0 = due now */
} sl_registry_status;

/*
 * A copy of every registry's status, in configuration order: *out is malloc'd for the caller to
 * free() (NULL when there are none), *n its length. OS_ERR_INVALID for NULL arguments,
 * OS_ERR_NOMEM.
 */
OS_WUR os_err sl_announcer_registries(sl_announcer *a, sl_registry_status **out, size_t *n);

#endif
