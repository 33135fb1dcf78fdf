/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SellerNode (SDK): an openseed-seller inside your program. It is the daemon's own core (the same
 * code openseed-seller runs): it serves /v1/info and paid /v1/infer on its listener, checks
 * credentials and vouchers, records them in <data_dir>/seller.db, proxies to the upstream,
 * announces its signed record to the registries and heartbeats, and settles on chain. Several
 * nodes can run in one process; nothing here touches process-wide state or calls exit().
 *
 *     os_offering o;           // from the Offering builder (offering.h)
 *     os_seller_node_config c;
 *     os_seller_node *s;
 *     os_seller_node_config_init(&c);
 *     c.data_dir = "/var/lib/me/seller"; c.registries = regs; c.n_registries = 1;
 *     c.rpc = rpc; c.chain_id = 31337; memcpy(c.escrow, escrow, 20); memcpy(c.usdc, usdc, 20);
 *     c.upstream = "http://127.0.0.1:11434"; c.upstream_api = "ollama";
 *     c.offerings = &o; c.n_offerings = 1;
 *     if (os_seller_node_new(&s, &c) == OS_OK && os_seller_node_start(s) == OS_OK) {
 *         ... serve ...
 *     }
 *     os_seller_node_free(s); // stops (drains requests in flight) first
 *
 * Lifecycle: new (keys loaded or created 0600 in data_dir, seller.db opened; no network) -> start
 * (listening, announcing) -> stop (stops accepting, drains, stops background work) -> free. Needs
 * os_init() first. Errors are logged with their reason on the node's logger.
 */
#ifndef OPENSEED_SELLER_NODE_H
#define OPENSEED_SELLER_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"
#include "openseed/record.h"

typedef struct os_seller_node os_seller_node;

/* The built-in test upstream (upstream NULL or "builtin:echo"): a model server on loopback that
 * answers "echo: <last user message>" in the exact OpenAI and Anthropic wire formats. For demos,
 * tests and simulations; there are no weights behind it. */
typedef struct os_echo_settings {
    unsigned latency_ms;   /* before the first byte of every successful answer */
    unsigned tokens_per_s; /* streaming pace; 0 = as fast as possible */
    const char *fail;      /* failure injected: "500", "429", "drop-mid-stream",
                              "slow-first-token"; NULL or "none": none */
    uint32_t fail_ppm;     /* with fail set: the share of requests that fail, in millionths;
                              0 = every request */
    uint64_t fail_seed;    /* which requests fail is a function of this seed and the request's
                              sequence number at the upstream (reproducible) */
} os_echo_settings;

typedef struct os_seller_node_config {
    const char *listen;       /* "HOST:PORT"; NULL = "127.0.0.1:0" (a free port) */
    const char *admin_listen; /* "HOST:PORT" of the admin API; NULL = none */
    const char *data_dir;     /* required: seller.db and the key files (created 0700) */
    const char *node_key_file;    /* NULL: <data_dir>/node.key, created when missing */
    const char *endpoint;     /* public URL; NULL: http://<listen address> once bound */
    const char *const *registries; /* where to announce; may be empty (not listed then) */
    size_t n_registries;
    const char *rpc;          /* chain JSON-RPC URL (required) */
    uint64_t chain_id;        /* required */
    uint8_t escrow[20];       /* required: the OpenSeedChannels contract */
    uint8_t usdc[20];         /* required: its token */
    const char *ca_file;      /* PEM CAs for https registries; NULL = the system's */

    const char *upstream;     /* http(s) URL of the model server; NULL = "builtin:echo" */
    const char *upstream_api; /* "openai" (also llama.cpp, vLLM), "anthropic", "ollama"; NULL =
                                 "openai" */
    const char *upstream_key; /* API key sent upstream; NULL = none. Copied, wiped on free */
    os_echo_settings echo;    /* with the built-in upstream */
    unsigned upstream_concurrency; /* requests in flight upstream at most; 0 = 32 */

    const os_offering *offerings; /* 1 to OS_RECORD_MAX_OFFERINGS (offering.h builds them);
                                     NULL with the built-in upstream: its "echo" offering */
    size_t n_offerings;

    uint64_t settle_threshold;   /* micro-USDC unclaimed on a channel before a claim; 0 = 1 USDC */
    uint64_t settle_interval_ms; /* claim anything unclaimed this often; 0 = 1 h */
    unsigned http_threads;       /* 0 = 4 */
    const os_logger *log;        /* borrowed, must outlive the node; NULL = stderr at info */
} os_seller_node_config;

/* Zeroes c and sets the defaults above. */
void os_seller_node_config_init(os_seller_node_config *c);

/* Creates the node from c (borrowed for the call; everything kept is copied). OS_ERR_INVALID for
 * a bad configuration, OS_ERR_IO for files and the database. *out is the caller's. */
OS_WUR os_err os_seller_node_new(os_seller_node **out, const os_seller_node_config *c);
/* Listens, starts the built-in upstream if any, the channel work and the announcer. OS_OK when
 * already started; OS_ERR_INVALID once stopped or after a failed start (make a new node). */
OS_WUR os_err os_seller_node_start(os_seller_node *s);
/* Stops accepting, drains requests in flight, stops background work. Idempotent. */
void os_seller_node_stop(os_seller_node *s);
/* Stops if needed, then frees. NULL-safe. */
void os_seller_node_free(os_seller_node *s);

/* The bound ports after start (listen with port 0). admin: 0 without an admin API. */
uint16_t os_seller_node_port(const os_seller_node *s);
uint16_t os_seller_node_admin_port(const os_seller_node *s);
/* The node address: its node_id and where its payments go. */
void os_seller_node_address(const os_seller_node *s, uint8_t out[20]);

/* What the node has earned, from seller.db (all amounts micro-USDC). */
typedef struct os_seller_stats {
    uint64_t requests;  /* paid requests finished, errors included */
    uint64_t errors;    /* requests that ended in an upstream or seller error */
    uint64_t earned;    /* sum of the charges (consumed over every channel) */
    uint64_t settled;   /* claimed on chain (confirmed claims) */
    uint64_t unclaimed; /* earned and not yet claimed (per channel, summed) */
    uint64_t channels;  /* channels paying this node */
} os_seller_stats;

OS_WUR os_err os_seller_node_stats(os_seller_node *s, os_seller_stats *out);

/*
 * Claims every channel with anything unclaimed now, and waits for the transactions (each up to
 * its confirmation timeout). *claimed (may be NULL) receives the micro-USDC paid out by them.
 * OS_ERR_NETWORK when a claim failed (the others are still made; logged). OS_ERR_INVALID before
 * os_seller_node_start (the channels are loaded then); after stop it still claims.
 */
OS_WUR os_err os_seller_node_settle(os_seller_node *s, uint64_t *claimed);

#endif
