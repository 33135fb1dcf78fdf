/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every key openseed-registry accepts, in one table: type, bounds, default and help. The defaults
 * are PROTOCOL.md's (listen 0.0.0.0:8379, Base mainnet chain id and USDC, 30 s heartbeats).
 */
#include "config.h"

#include <stddef.h>

static const os_cfg_entry entries[] = {
    OS_NODE_CFG_ENTRIES(rg_config, "0.0.0.0:8379", "address and port to serve the registry API on",
                        "/var/lib/openseed", "directory for registry.db", 0,
                        "a peer registry (reserved for federation; unused for now)",
                        "chain JSON-RPC URL, to check feedback vouchers (never printed: URLs "
                        "often embed an API key)"),
    {.name = "heartbeat_interval",
     .type = OS_CFG_DURATION,
     .offset = offsetof(rg_config, heartbeat_interval),
     .dflt = "30s",
     .min = 5,
     .max = 3600,
     .help = "how often sellers must heartbeat; 3 missed intervals delist a seller"},
};

const os_cfg_program rg_config_program = {
    .name = "openseed-registry",
    .version = OPENSEED_VERSION,
    .summary = "OpenSeed registry: sellers announce signed records here and buyers discover them.",
    .entries = entries,
    .n_entries = sizeof(entries) / sizeof(entries[0]),
};
