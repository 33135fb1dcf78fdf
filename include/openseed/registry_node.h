/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RegistryNode (SDK): an openseed-registry inside your program, the daemon's own core. It accepts
 * signed announcements and heartbeats, keeps them in <data_dir>/registry.db, prunes sellers that
 * stop heartbeating, scores them and serves ranked listings (PROTOCOL.md §4). Several nodes can
 * run in one process; nothing here touches process-wide state or calls exit().
 *
 * Lifecycle: os_registry_node_new (store opened and loaded) -> os_registry_node_start (listening)
 * -> os_registry_node_stop (drains, persists heartbeats) -> os_registry_node_free. Needs os_init().
 */
#ifndef OPENSEED_REGISTRY_NODE_H
#define OPENSEED_REGISTRY_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"

typedef struct os_registry_node os_registry_node;

typedef struct os_registry_node_config {
    const char *listen;   /* "HOST:PORT"; NULL = "127.0.0.1:0" (a free port) */
    const char *data_dir; /* required: registry.db lives here (created 0700) */
    uint64_t chain_id;    /* required: records must be for this chain */
    const uint8_t *escrow; /* 20 bytes: records must name this escrow; NULL: any */
    const char *rpc;      /* chain JSON-RPC, to check feedback's channels; NULL: feedback is 503 */
    uint64_t heartbeat_interval_ms; /* told to sellers; 0 = 30 s */
    uint64_t rescore_interval_ms;   /* scores recomputed this often; 0 = 5 s */
    uint32_t rate_per_s;  /* requests per second per source address; 0 = no rate limit */
    unsigned http_threads; /* 0 = 4 */
    const os_logger *log; /* borrowed, must outlive the node; NULL = stderr at info */
} os_registry_node_config;

/* Zeroes c and sets the defaults above. */
void os_registry_node_config_init(os_registry_node_config *c);

/* OS_ERR_INVALID for a bad configuration, OS_ERR_IO when the store cannot be opened. */
OS_WUR os_err os_registry_node_new(os_registry_node **out, const os_registry_node_config *c);
/* OS_ERR_IO when the address cannot be bound. OS_OK when already started; OS_ERR_INVALID once
 * stopped or after a failed start (a node is not restarted: make a new one). */
OS_WUR os_err os_registry_node_start(os_registry_node *r);
/* The bound port, after start. */
uint16_t os_registry_node_port(const os_registry_node *r);
/* "http://127.0.0.1:PORT" (the listen host, or 127.0.0.1 for 0.0.0.0) into out; after start.
 * OS_ERR_TOOBIG when cap is too small. */
OS_WUR os_err os_registry_node_url(const os_registry_node *r, char *out, size_t cap);
/* Idempotent. */
void os_registry_node_stop(os_registry_node *r);
/* Stops if needed, then frees. NULL-safe. */
void os_registry_node_free(os_registry_node *r);

#endif
