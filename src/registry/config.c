/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every key openseed-registry accepts, in one table: type, bounds, default and help. The defaults
 * are PROTOCOL.md's (listen 0.0.0.0:8379, Base mainnet chain id and USDC, 30 s heartbeats, 3
 * missed ones delist, 60 s clock skew) and limits sized for a small VPS.
 */
#include "config.h"

#include <stddef.h>

static const os_cfg_entry entries[] = {
    OS_NODE_CFG_ENTRIES(rg_config, "0.0.0.0:8379", "address and port to serve the registry API on",
                        "/var/lib/openseed", "directory for registry.db", 0,
                        "a peer registry (reserved for federation; unused for now)",
                        "chain JSON-RPC URL, to check feedback vouchers (never printed: URLs "
                        "often embed an API key)"),
    OS_NODE_CFG_TLS_ENTRIES(rg_config),
    {.name = "heartbeat_interval",
     .type = OS_CFG_DURATION,
     .offset = offsetof(rg_config, heartbeat_interval),
     .dflt = "30s",
     .min = 1,
     .max = 3600,
     .help = "how often sellers must heartbeat (told to them in the announce reply)"},
    {.name = "liveness_intervals",
     .type = OS_CFG_U64,
     .offset = offsetof(rg_config, liveness_intervals),
     .dflt = "3",
     .min = 1,
     .max = 1000,
     .help = "heartbeat intervals a seller may miss before it leaves the listings"},
    {.name = "clock_skew",
     .type = OS_CFG_DURATION,
     .offset = offsetof(rg_config, clock_skew),
     .dflt = "60s",
     .min = 1,
     .max = 3600,
     .help = "how far a signed announce or heartbeat timestamp may be from the registry's clock"},
    {.name = "rescore_interval",
     .type = OS_CFG_DURATION,
     .offset = offsetof(rg_config, rescore_interval),
     .dflt = "5s",
     .min = 1,
     .max = 3600,
     .help = "how often reputations, scores and rankings are recomputed"},
    {.name = "rate_limit",
     .type = OS_CFG_U64,
     .offset = offsetof(rg_config, rate_limit),
     .dflt = "50",
     .max = 10000000,
     .meta = "N",
     .help = "requests per second allowed per source address (0: no limit)"},
    {.name = "rate_burst",
     .type = OS_CFG_U64,
     .offset = offsetof(rg_config, rate_burst),
     .dflt = "100",
     .max = 10000000,
     .meta = "N",
     .help = "requests a source address may send at once before rate_limit applies (0: twice "
             "rate_limit)"},
    {.name = "max_peers",
     .type = OS_CFG_U64,
     .offset = offsetof(rg_config, max_peers),
     .dflt = "50000",
     .min = 1,
     .max = 2000000,
     .meta = "N",
     .help = "sellers the registry keeps at most; announces from new ones beyond it get 503"},
    {.name = "threads",
     .type = OS_CFG_U64,
     .offset = offsetof(rg_config, threads),
     .dflt = "4",
     .min = 1,
     .max = 256,
     .meta = "N",
     .help = "HTTP worker threads"},
    {.name = "max_connections",
     .type = OS_CFG_U64,
     .offset = offsetof(rg_config, max_connections),
     .dflt = "1024",
     .min = 1,
     .max = 1000000,
     .meta = "N",
     .help = "open client connections at most"},
    {.name = "max_connections_per_ip",
     .type = OS_CFG_U64,
     .offset = offsetof(rg_config, max_connections_per_ip),
     .dflt = "64",
     .min = 1,
     .max = 1000000,
     .meta = "N",
     .help = "open connections at most from one source address"},
    {.name = "idle_timeout",
     .type = OS_CFG_DURATION,
     .offset = offsetof(rg_config, idle_timeout),
     .dflt = "30s",
     .min = 1,
     .max = 3600,
     .help = "how long an idle client connection is kept open"},
};

static void validate(const void *cfgp, os_cfg_report *rep)
{
    os_node_validate(&((const rg_config *)cfgp)->node, rep);
}

const os_cfg_program rg_config_program = {
    .name = "openseed-registry",
    .version = OPENSEED_VERSION,
    .summary = "OpenSeed registry: sellers announce signed records here and buyers discover them.",
    .entries = entries,
    .n_entries = sizeof(entries) / sizeof(entries[0]),
    .validate = validate,
};
