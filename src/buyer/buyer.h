/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer core: the local OpenAI/Anthropic-compatible gateway (127.0.0.1:8377). It owns the HTTP
 * server (the client APIs, management JSON, /healthz, /metrics), the seller directory (peers.h),
 * the wallet and buyer.db (wallet.h) and the chain client. It never calls exit() and keeps no
 * process-wide state, so one process can run several (tests do).
 *
 * Lifecycle: by_buyer_new (buyer.db opened, chain client made; no network) -> by_buyer_start
 * (wallet signer, channels recovered from the chain, listening) -> by_buyer_stop (drains requests
 * in flight) -> by_buyer_free. Needs os_init() first.
 */
#ifndef OPENSEED_BUYER_BUYER_H
#define OPENSEED_BUYER_BUYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"

#include "config.h"

typedef struct by_buyer by_buyer;

/* How the first seller of a request is chosen among the ranked candidates (docs/protocol.md
 * §10.12); failover always goes down the ranking. */
typedef enum by_route {
    BY_ROUTE_BEST = 0, /* the best-scored candidate */
    BY_ROUTE_WEIGHTED, /* drawn with probability score^2 / sum of score^2 over the candidates */
} by_route;

/* Everything the core is configured with; strings and arrays are borrowed for the duration of
 * by_buyer_new only. Amounts in micro-USDC, prices in micro-USDC per million tokens. */
typedef struct by_options {
    const char *listen;   /* "HOST:PORT"; port 0 picks a free one */
    const char *data_dir; /* buyer.db lives here (created 0700) */
    const char *const *registries;
    size_t n_registries;
    const char *rpc;
    const char *ca_file; /* PEM CAs for https registries and sellers instead of the system's */
    uint64_t chain_id;
    uint8_t escrow[20];
    uint8_t usdc[20];
    const uint8_t *wallet_priv; /* 32 bytes; copied into locked memory */
    const char *api_key;        /* NULL: none required (loopback only) */

    uint64_t deposit;
    uint64_t topup_below;
    uint64_t budget_request, budget_day, budget_channel;
    bool open_with_authorization;
    uint64_t max_input_price, max_output_price; /* 0 = no cap */

    unsigned max_attempts;       /* 0 = 3 */
    size_t max_body;             /* 0 = 8 MiB */
    uint64_t peers_ttl_ms;       /* 0 = 10 s */
    long request_timeout_ms;     /* 0 = 10 min */
    long first_byte_timeout_ms;  /* a streaming seller silent this long is dropped; 0 = 60 s */
    unsigned http_threads;       /* 0 = 16 */
    by_route route;              /* BY_ROUTE_BEST unless set */
    uint64_t route_seed;         /* seeds BY_ROUTE_WEIGHTED's draws; 0 = from randombytes */
} by_options;

void by_options_default(by_options *o);

OS_WUR os_err by_buyer_new(by_buyer **out, const by_config *cfg, const os_logger *log);
OS_WUR os_err by_buyer_new_opts(by_buyer **out, const by_options *o, const os_logger *log);
OS_WUR os_err by_buyer_start(by_buyer *b);
uint16_t by_buyer_port(const by_buyer *b);
void by_buyer_stop(by_buyer *b);
void by_buyer_free(by_buyer *b);

#endif
