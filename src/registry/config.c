/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every key openseed-registry accepts, in one table: type, bounds, default and help. The defaults
 * are PROTOCOL.md's (listen 0.0.0.0:8379, Base mainnet chain id and USDC, 30 s heartbeats).
 */
#include "config.h"

#include <stddef.h>

#define OFF(f) offsetof(rg_config, f)

static const os_cfg_entry entries[] = {
    {.name = "listen",
     .type = OS_CFG_LISTEN,
     .offset = OFF(listen),
     .dflt = "0.0.0.0:8379",
     .help = "address and port to serve the registry API on"},
    {.name = "data_dir",
     .type = OS_CFG_PATH,
     .offset = OFF(data_dir),
     .dflt = "/var/lib/openseed",
     .meta = "DIR",
     .help = "directory for registry.db"},
    {.name = "log_level",
     .type = OS_CFG_LOG_LEVEL,
     .offset = OFF(log_level),
     .dflt = "info",
     .meta = "error|warn|info|debug",
     .help = "least severe level to log"},
    {.name = "registry",
     .type = OS_CFG_URL,
     .flags = OS_CFG_REPEATABLE,
     .offset = OFF(registry),
     .help = "a peer registry (reserved for federation; unused for now)"},
    {.name = "rpc",
     .type = OS_CFG_URL,
     .flags = OS_CFG_SECRET,
     .offset = OFF(rpc),
     .help = "chain JSON-RPC URL, to check feedback vouchers (never printed: URLs often embed "
             "an API key)"},
    {.name = "chain_id",
     .type = OS_CFG_U64,
     .offset = OFF(chain_id),
     .dflt = "8453",
     .min = 1,
     .help = "EVM chain id (8453 is Base)"},
    {.name = "escrow",
     .type = OS_CFG_ADDRESS,
     .offset = OFF(escrow),
     .help = "OpenSeedChannels escrow contract"},
    {.name = "usdc",
     .type = OS_CFG_ADDRESS,
     .offset = OFF(usdc),
     .dflt = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
     .help = "USDC token contract"},
    {.name = "heartbeat_interval",
     .type = OS_CFG_DURATION,
     .offset = OFF(heartbeat_interval),
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
