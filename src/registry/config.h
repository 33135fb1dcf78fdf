/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry daemon's configuration: the struct its core is created from and the table that
 * os_cfg_load fills it with (PROTOCOL.md §1 keys plus the heartbeat interval of §4).
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
} rg_config;
OS_NODE_CONFIG_FIRST(rg_config);

/* The table; load with os_cfg_load(&rg_config_program, &cfg, …), release with os_cfg_free. */
extern const os_cfg_program rg_config_program;

#endif
