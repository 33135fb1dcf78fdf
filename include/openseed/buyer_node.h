/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BuyerNode (SDK): an openseed-buyer gateway inside your program, the daemon's own core. Point any
 * OpenAI or Anthropic client at http://127.0.0.1:<port>/v1: it picks sellers from the registries,
 * opens USDC channels from the wallet, signs vouchers, keeps <data_dir>/buyer.db and fails over.
 * Several nodes can run in one process; nothing here touches process-wide state or calls exit().
 *
 * Lifecycle: os_buyer_node_new (buyer.db opened; no network) -> os_buyer_node_start (channels
 * recovered from the chain, listening) -> os_buyer_node_stop (drains) -> os_buyer_node_free.
 * Needs os_init().
 */
#ifndef OPENSEED_BUYER_NODE_H
#define OPENSEED_BUYER_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"

typedef struct os_buyer_node os_buyer_node;

/* How the first seller of a request is chosen among the candidates (docs/protocol.md §10.12). */
typedef enum os_route {
    OS_ROUTE_BEST = 0, /* the best-scored candidate; failover goes down the ranking */
    OS_ROUTE_WEIGHTED, /* drawn with probability proportional to score squared; failover goes
                          down the ranking from the best */
} os_route;

typedef struct os_buyer_node_config {
    const char *listen;   /* "HOST:PORT"; NULL = "127.0.0.1:0" (a free port) */
    const char *data_dir; /* required: buyer.db lives here (created 0700) */
    const char *const *registries; /* where to find sellers, at least one */
    size_t n_registries;
    const char *rpc;      /* chain JSON-RPC URL (required) */
    uint64_t chain_id;    /* required */
    uint8_t escrow[20];   /* required */
    uint8_t usdc[20];     /* required */
    const char *ca_file;  /* PEM CAs for https registries and sellers; NULL = the system's */
    const uint8_t *wallet_priv; /* 32 bytes, required: the wallet that funds channels; copied
                                   into locked memory, wiped on free */
    const char *api_key;  /* clients must send it as a Bearer token; NULL = none (loopback) */

    uint64_t deposit;     /* micro-USDC per new channel; 0 = 5 USDC */
    uint64_t max_input_price, max_output_price; /* micro-USDC per million tokens; 0 = no cap */
    uint64_t budget_day;  /* micro-USDC; 0 = no cap */
    unsigned max_attempts; /* sellers tried per request; 0 = 3 */
    os_route route;       /* OS_ROUTE_BEST by default */
    uint64_t route_seed;  /* OS_ROUTE_WEIGHTED's draws; 0 = random */
    uint64_t peers_ttl_ms; /* how long a registry listing is reused; 0 = 10 s */
    unsigned http_threads; /* 0 = 16 */
    const os_logger *log; /* borrowed, must outlive the node; NULL = stderr at info */
} os_buyer_node_config;

/* Zeroes c and sets the defaults above. */
void os_buyer_node_config_init(os_buyer_node_config *c);

/* OS_ERR_INVALID for a bad configuration, OS_ERR_IO for the database. */
OS_WUR os_err os_buyer_node_new(os_buyer_node **out, const os_buyer_node_config *c);
/* Recovers channels from the chain and listens. OS_OK when already started; OS_ERR_INVALID once
 * stopped or after a failed start (a node is not restarted: make a new one). */
OS_WUR os_err os_buyer_node_start(os_buyer_node *b);
/* The bound port, after start. */
uint16_t os_buyer_node_port(const os_buyer_node *b);
/* Idempotent. */
void os_buyer_node_stop(os_buyer_node *b);
/* Stops if needed, then frees. NULL-safe. */
void os_buyer_node_free(os_buyer_node *b);

#endif
