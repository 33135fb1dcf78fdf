/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller core: everything openseed-seller does except reading its configuration and waiting
 * for signals. A seller owns its public HTTP server (/v1/info, /v1/infer, /healthz, /metrics), its
 * admin server (loopback, bearer token), seller.db, the channel cache and settlement (chans.h),
 * the upstream adapters (upstream.h), the registry announcer (announce.h) and, for
 * `upstream = builtin:echo`, the built-in test upstream (echo.h). It never calls exit() and keeps
 * no process-wide state, so one process can run several (tests do).
 *
 * Lifecycle: sl_seller_new (keys loaded or created, seller.db opened, chain client made; no
 * network yet) -> sl_seller_start (listens, announces, starts the background work) ->
 * sl_seller_stop (stops accepting, drains requests in flight, stops the background work) ->
 * sl_seller_free, with sl_seller_reload (new offerings) while it runs. Needs os_init() first.
 */
#ifndef OPENSEED_SELLER_SELLER_H
#define OPENSEED_SELLER_SELLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"
#include "openseed/record.h"

#include "config.h"
#include "echo.h"

typedef struct sl_seller sl_seller;

/*
 * Everything the core is configured with. sl_options_default fills the defaults; strings and
 * arrays are borrowed for the duration of sl_seller_new only (the seller copies what it keeps).
 */
typedef struct sl_options {
    const char *listen;       /* "HOST:PORT"; port 0 picks a free one */
    const char *admin_listen; /* "HOST:PORT"; NULL: no admin API */
    const char *data_dir;     /* seller.db and the default key files live here (created 0700) */
    const char *node_key;     /* NULL: <data_dir>/node.key; created when missing */
    const char *gateway_key;  /* NULL: <data_dir>/gateway.key; created when missing */
    const char *admin_token_file; /* NULL: <data_dir>/admin.token; created when missing */
    const char *endpoint;     /* public URL; NULL: http://<listen> once bound */
    const char *const *registries; /* where to announce; may be empty */
    size_t n_registries;
    const char *rpc; /* chain JSON-RPC URL */
    /* both: the public listener serves HTTPS (os_http_config); re-read by sl_seller_reload_tls */
    const char *tls_cert_file, *tls_key_file;
    const char *ca_file; /* PEM CAs for HTTPS to registries instead of the system's; or NULL */
    uint64_t chain_id;
    uint8_t escrow[20];
    uint8_t usdc[20];

    const char *upstream;       /* http(s) URL, or "builtin:echo" */
    sl_upstream_api upstream_api;
    const char *upstream_key;   /* the key itself; NULL: none */
    const sl_echo_config *echo; /* builtin:echo settings; NULL: defaults */
    long upstream_timeout_ms, upstream_connect_timeout_ms, upstream_first_byte_timeout_ms;
    unsigned upstream_concurrency; /* 0 = 32 */
    const os_offering *offerings;  /* at least one (builtin:echo: NULL takes SL_ECHO_OFFERING) */
    size_t n_offerings;

    uint64_t settle_threshold;   /* micro-USDC; 0 = 1 USDC */
    uint64_t settle_interval_ms; /* 0 = 1 h */
    uint64_t channel_refresh_ms; /* 0 = 15 s */
    size_t max_request;          /* bytes of an encrypted request; 0 = 1 MiB */
    unsigned http_threads;       /* 0 = 4 */
    unsigned drain_timeout_ms;   /* 0 = 10000 */
} sl_options;

void sl_options_default(sl_options *o);

/* Creates a seller from the daemon's configuration (reads the upstream key file or variable). */
OS_WUR os_err sl_seller_new(sl_seller **out, const sl_config *cfg, const os_logger *log);
/* Creates a seller from options. log (NULL: stderr at info) must outlive the seller. Errors are
 * logged with their reason: OS_ERR_INVALID (options), OS_ERR_IO (files, database). */
OS_WUR os_err sl_seller_new_opts(sl_seller **out, const sl_options *o, const os_logger *log);
/* Binds the listeners, starts the built-in upstream, the channel work and the announcer. */
OS_WUR os_err sl_seller_start(sl_seller *s);
/*
 * Applies the part of a freshly loaded configuration that can change while the seller serves
 * (SIGHUP): its offerings (services, models, prices, limits). The record is re-signed, served on
 * /v1/info, handed to the announcer (sent to the registries at once) and its prices are charged
 * for every request admitted from then on; requests in flight finish at the price they were
 * admitted at. cfg is borrowed for the call and must otherwise match the running configuration
 * (os_node_serve checks that). Call from one thread at a time, between sl_seller_start and
 * sl_seller_stop. On error (logged: an offering that does not parse, too many, a record the
 * registries would refuse; OS_ERR_INVALID when not started) the running offerings stay.
 */
OS_WUR os_err sl_seller_reload(sl_seller *s, const sl_config *cfg);

/* Re-reads the public listener's TLS certificate and key (os_http_server_reload_tls): new
 * connections get the new pair, open ones are kept; on an error the old pair stays. OS_OK
 * without TLS. */
OS_WUR os_err sl_seller_reload_tls(sl_seller *s);
uint16_t sl_seller_port(const sl_seller *s);
uint16_t sl_seller_admin_port(const sl_seller *s);
/* The node address (payTo, node_id). */
void sl_seller_address(const sl_seller *s, uint8_t out[20]);
/* The built-in echo upstream (builtin:echo), or NULL: tests switch its failure modes. */
sl_echo *sl_seller_echo(sl_seller *s);
/* What seller.db says the seller has earned: the admin API's revenue view (GET
 * /admin/v1/revenue) as numbers, for embedders (books.c). Amounts in micro-USDC. */
typedef struct sl_seller_totals {
    uint64_t requests;  /* paid requests finished, whatever their outcome */
    uint64_t errors;    /* of those, the ones whose outcome is not "ok" */
    uint64_t consumed;  /* the sum of their charges over every channel */
    uint64_t claimed;   /* paid out on chain by confirmed claims */
    uint64_t unclaimed; /* consumed and not yet claimed, summed per channel */
    uint64_t channels;  /* channels paying this seller */
} sl_seller_totals;

/* Reads the totals (any time after sl_seller_new, from the ledger's read connection).
 * OS_ERR_IO when seller.db cannot be read, OS_ERR_RANGE when a sum exceeds uint64. */
OS_WUR os_err sl_seller_totals_get(sl_seller *s, sl_seller_totals *out);

/* Claims now on every channel with anything claimable, as POST /admin/v1/settle with {} does,
 * waiting for each receipt. *report (may be NULL; the caller's) gets {"settlements":[…]}, a row
 * per claim with its status. OS_ERR_INVALID before sl_seller_start (no channel work yet). */
OS_WUR os_err sl_seller_settle(sl_seller *s, json_t **report);

/* Stops accepting, drains requests in flight, stops background work. Idempotent. */
void sl_seller_stop(sl_seller *s);
void sl_seller_free(sl_seller *s);

#endif
