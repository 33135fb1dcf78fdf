/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the three daemons (registry, seller, buyer) share before their own work starts: the keys
 * every one of them takes (PROTOCOL.md §1), as a struct each daemon's config embeds as its first
 * member and a macro that writes their rows of its os_cfg table, and the start-up flow of main:
 * load the configuration, answer --help, --version, --check-config and --print-config, set up the
 * logger and libcommon, log what was loaded, and hand over to the daemon.
 */
#ifndef OPENSEED_NODE_H
#define OPENSEED_NODE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/config.h"
#include "openseed/log.h"

/* The keys every daemon takes. Strings and the list are owned by the config (os_cfg_free). */
typedef struct os_node_config {
    os_cfg_listen listen; /* the daemon's public listener */
    char *data_dir;       /* where its database lives */
    os_log_level log_level;
    os_cfg_list registry;  /* registries: federation peers, or where to announce or discover */
    char *rpc;             /* chain JSON-RPC URL (secret: may embed an API key); NULL if optional */
    uint64_t chain_id;     /* EVM chain id */
    os_cfg_address escrow; /* OpenSeedChannels; unset if optional */
    os_cfg_address usdc;   /* the USDC token */
} os_node_config;

/* Put next to a daemon's config struct T: os_node_main finds the common keys at its front. */
#define OS_NODE_CONFIG_FIRST(T)                                                                    \
    _Static_assert(offsetof(T, node) == 0, #T " must start with its os_node_config, node")

/*
 * The os_cfg_entry rows of os_node_config's keys, in this order, for a daemon whose config struct T
 * holds them as member `node`. listen_dflt and data_dir_dflt are those keys' defaults, each
 * followed by its help line. chain is 0 or OS_CFG_REQUIRED and applies to registry, rpc and escrow
 * together (the registry daemon can run without a chain; sellers and buyers cannot);
 * registry_help and rpc_help say what this daemon uses them for. log_level, chain_id and usdc are
 * the same everywhere: info, 8453 (Base) and Base's USDC.
 */
/* clang-format off */
#define OS_NODE_CFG_ENTRIES(T, listen_dflt, listen_help, data_dir_dflt, data_dir_help, chain,      \
                            registry_help, rpc_help)                                               \
    {.name = "listen", .type = OS_CFG_LISTEN, .offset = offsetof(T, node.listen),                  \
     .dflt = (listen_dflt), .help = (listen_help)},                                                \
    {.name = "data_dir", .type = OS_CFG_PATH, .offset = offsetof(T, node.data_dir),                \
     .dflt = (data_dir_dflt), .meta = "DIR", .help = (data_dir_help)},                             \
    {.name = "log_level", .type = OS_CFG_LOG_LEVEL, .offset = offsetof(T, node.log_level),         \
     .dflt = "info", .meta = "error|warn|info|debug", .help = "least severe level to log"},        \
    {.name = "registry", .type = OS_CFG_URL, .flags = (chain) | OS_CFG_REPEATABLE,                 \
     .offset = offsetof(T, node.registry), .help = (registry_help)},                               \
    {.name = "rpc", .type = OS_CFG_URL, .flags = (chain) | OS_CFG_SECRET,                          \
     .offset = offsetof(T, node.rpc), .help = (rpc_help)},                                         \
    {.name = "chain_id", .type = OS_CFG_U64, .offset = offsetof(T, node.chain_id),                 \
     .dflt = "8453", .min = 1, .help = "EVM chain id (8453 is Base)"},                             \
    {.name = "escrow", .type = OS_CFG_ADDRESS, .flags = (chain),                                   \
     .offset = offsetof(T, node.escrow), .help = "OpenSeedChannels escrow contract"},              \
    {.name = "usdc", .type = OS_CFG_ADDRESS, .offset = offsetof(T, node.usdc),                     \
     .dflt = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", .help = "USDC token contract"}
/* clang-format on */

/* A daemon's start-up, for os_node_main. */
typedef struct os_node_program {
    const os_cfg_program *config; /* its table; the struct it fills starts with an os_node_config */
    const char *component;        /* log component, e.g. "registry" */
    /* Optional: adds the daemon's own key=value pairs to the "configuration loaded" line. */
    void (*describe)(os_log_event *ev, const void *cfg);
    /* The daemon itself, on the loaded cfg, once lg is set up and os_init has succeeded; returns
     * the exit status. cfg and lg stay owned by os_node_main. */
    int (*run)(const void *cfg, os_logger *lg);
} os_node_program;

/*
 * The whole of a daemon's main. Loads prog->config into cfg (the daemon's config struct, which
 * may be uninitialised) from argv and the --config file; answers --help, --version,
 * --check-config, --print-config and configuration errors on stdout/stderr as os_cfg_dispatch
 * does. Otherwise sets up a logger (component, configured level; stderr), calls os_init, logs
 * "configuration loaded" with the config file, listen, data_dir, chain_id and the daemon's own
 * pairs, and returns prog->run's status (1 if os_init fails). Frees what loading put in cfg before
 * it returns. The result is main's exit status.
 */
int os_node_main(const os_node_program *prog, void *cfg, int argc, char **argv);

/*
 * For a daemon's run(): blocks SIGTERM and SIGINT in the calling thread (call it before any thread
 * exists, so every thread inherits the mask and no handler ever runs inside a server thread) and
 * ignores SIGPIPE. OS_ERR_INTERNAL (logged) when the mask cannot be set.
 */
OS_WUR os_err os_node_signals_block(sigset_t *set, const os_logger *lg);
/* Waits (sigwait) for SIGTERM or SIGINT from a set made by os_node_signals_block; logs which. */
void os_node_signals_wait(const sigset_t *set, const os_logger *lg);

#endif
