/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry core: everything openseed-registry does except reading its configuration and
 * waiting for signals. A registry owns its HTTP server, its SQLite store, the in-memory index of
 * sellers and one background thread (liveness, scoring, heartbeat persistence). It never calls
 * exit() and keeps no process-wide state, so one process can run several (tests do).
 *
 * Lifecycle: rg_registry_new (opens and loads the store) -> rg_registry_start (listens) ->
 * rg_registry_stop (drains requests in flight, persists pending heartbeats, closes the store)
 * -> rg_registry_free. Needs os_init() first.
 */
#ifndef OPENSEED_REGISTRY_REGISTRY_H
#define OPENSEED_REGISTRY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"

#include "config.h"

typedef struct rg_registry rg_registry;

/*
 * Everything the core is configured with. rg_options_default fills PROTOCOL.md's defaults;
 * rg_options_from_config copies the daemon's configuration over them. Strings are borrowed for
 * the duration of rg_registry_new only (the registry copies what it keeps).
 */
typedef struct rg_options {
    const char *listen;  /* "HOST:PORT"; port 0 picks a free one */
    const char *db_path; /* the SQLite file */
    uint64_t chain_id;   /* records must be for this chain; heartbeats are signed in its domain */
    bool has_escrow;
    uint8_t escrow[20]; /* when set, records must name it; feedback vouchers are for it */
    const char *rpc;    /* chain JSON-RPC for feedback; NULL: /v1/feedback answers 503 */
    const char *tls_cert_file, *tls_key_file; /* both: serve HTTPS (os_http_config); or NULL */

    uint64_t heartbeat_interval_ms; /* told to sellers (default 30 s) */
    unsigned liveness_intervals;    /* missed intervals before delisting (default 3) */
    uint64_t max_clock_skew_ms;     /* |timestamp - now| allowed in signed messages (60 s) */
    uint64_t rescore_interval_ms;   /* scores and rankings are recomputed this often (5 s) */
    uint64_t flush_interval_ms;     /* heartbeats are persisted in batches this often (10 s) */
    size_t max_peers;               /* sellers known at most (announces beyond: 503) */

    unsigned http_threads;       /* 0: 4 */
    unsigned max_connections;    /* 0: the HTTP layer's default */
    unsigned per_ip_connections; /* 0: the HTTP layer's default */
    unsigned timeout_s;          /* idle connection timeout; 0: the HTTP layer's default */
    uint32_t rate_per_s;         /* per source address; 0 disables rate limiting */
    uint32_t rate_burst;         /* 0: 2 * rate_per_s */
    unsigned drain_timeout_ms;   /* graceful stop waits this long for requests in flight */
    unsigned chain_timeout_ms;   /* per feedback channel lookup on chain */
    unsigned max_chain_lookups;  /* concurrent channel lookups (others: 503); 0: 2 */
} rg_options;

/* PROTOCOL.md's defaults: listen 0.0.0.0:8379, db_path "registry.db", chain 8453, 30 s
 * heartbeats, 3 missed intervals, 60 s skew, 50 requests/s per address (burst 100). */
void rg_options_default(rg_options *o);

/*
 * Overlays the daemon's configuration on o. db_path points into db_buf (data_dir + "/registry.db")
 * and listen into listen_buf, so both must outlive the use of o. OS_ERR_TOOBIG if a path is too
 * long.
 */
OS_WUR os_err rg_options_from_config(rg_options *o, const rg_config *cfg, char *db_buf,
                                     size_t db_cap, char *listen_buf, size_t listen_cap);

/*
 * Opens (creating, migrating) the store and loads every known seller into memory. *out is the
 * caller's (rg_registry_free). log is borrowed and must outlive the registry (NULL: stderr at
 * info). OS_ERR_INVALID for bad options, OS_ERR_IO when the store cannot be opened.
 */
OS_WUR os_err rg_registry_new_opts(rg_registry **out, const rg_options *opt, const os_logger *log);

/* Re-reads the TLS certificate and key (os_http_server_reload_tls): new connections get the new
 * pair, open ones are kept; on an error the old pair stays. OS_OK without TLS. */
OS_WUR os_err rg_registry_reload_tls(rg_registry *rg);

/* rg_registry_new_opts with rg_options_from_config(cfg) over the defaults. */
OS_WUR os_err rg_registry_new(rg_registry **out, const rg_config *cfg, const os_logger *log);

/*
 * registry.db's schema migrations (migration i brings user_version i to i + 1), *n of them: static
 * and never freed. For the upgrade tests, which build every earlier schema from them.
 */
const char *const *rg_store_migrations(size_t *n);

/* Starts the background thread and the HTTP server. OS_ERR_IO if the address cannot be bound. */
OS_WUR os_err rg_registry_start(rg_registry *rg);

/* The bound port (after start), for listen addresses with port 0. */
uint16_t rg_registry_port(const rg_registry *rg);

/*
 * Stops accepting, drains requests in flight (bounded by drain_timeout_ms), stops the background
 * thread, persists pending heartbeats and closes the store. Idempotent; safe before start.
 */
void rg_registry_stop(rg_registry *rg);

/* Stops if needed and frees everything. NULL-safe. */
void rg_registry_free(rg_registry *rg);

#endif
