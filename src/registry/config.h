/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry daemon's configuration: the struct its core is created from and the table that
 * os_cfg_load fills it with (PROTOCOL.md §1 keys, the heartbeat interval and liveness window of
 * §4, and the registry's limits).
 */
#ifndef OPENSEED_REGISTRY_CONFIG_H
#define OPENSEED_REGISTRY_CONFIG_H

#include <stdint.h>

#include "openseed/config.h"
#include "openseed/node.h"

typedef struct rg_config {
    /* registry: peers (reserved for federation); rpc, to check feedback vouchers, and escrow are
     * optional */
    os_node_config node;
    uint64_t heartbeat_interval; /* seconds; told to sellers in the announce reply */
    uint64_t liveness_intervals; /* missed intervals before a seller leaves the listings */
    uint64_t clock_skew;         /* seconds a signed timestamp may be off */
    uint64_t rescore_interval;   /* seconds between reputation and ranking passes */
    uint64_t rate_limit;         /* requests per second per source address; 0 = off */
    uint64_t rate_burst;         /* bucket size; 0 = twice rate_limit */
    uint64_t max_peers;          /* sellers known at most */
    uint64_t threads;            /* HTTP worker threads */
    uint64_t max_connections;    /* open connections at most */
    uint64_t max_connections_per_ip;
    uint64_t idle_timeout; /* seconds an idle connection is kept */
} rg_config;
OS_NODE_CONFIG_FIRST(rg_config);

/* The table; load with os_cfg_load(&rg_config_program, &cfg, …), release with os_cfg_free. */
extern const os_cfg_program rg_config_program;

#endif
