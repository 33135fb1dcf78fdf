/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry daemon's configuration: the struct its core is created from and the table that
 * os_cfg_load fills it with (PROTOCOL.md §1 keys plus the heartbeat interval of §4).
 */
#ifndef OPENSEED_REGISTRY_CONFIG_H
#define OPENSEED_REGISTRY_CONFIG_H

#include <stdint.h>

#include "openseed/config.h"
#include "openseed/log.h"

typedef struct rg_config {
    os_cfg_listen listen;
    char *data_dir;
    os_log_level log_level;
    os_cfg_list registry; /* peer registries (reserved for federation) */
    char *rpc;            /* chain JSON-RPC, to check feedback vouchers; may be NULL */
    uint64_t chain_id;
    os_cfg_address escrow; /* may be unset */
    os_cfg_address usdc;
    uint64_t heartbeat_interval; /* seconds; told to sellers in the announce reply */
} rg_config;

/* The table; load with os_cfg_load(&rg_config_program, &cfg, …), release with os_cfg_free. */
extern const os_cfg_program rg_config_program;

#endif
