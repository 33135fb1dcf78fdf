/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the three daemons (registry, seller, buyer) share before their own work starts: the keys
 * every one of them takes (PROTOCOL.md §1), as a struct each daemon's config embeds as its first
 * member and a macro that writes their rows of its os_cfg table, and the start-up flow of main:
 * load the configuration, answer --help, --version, --check-config and --print-config, set up the
 * logger and libcommon, log what was loaded, and hand over to the daemon. Then the daemon's life
 * under a service manager (os_node_serve): readiness, watchdog pings while it answers, a reload
 * on SIGHUP of what can change without a restart, and a stop on SIGTERM or SIGINT, told to
 * systemd through sdnotify.h (a no-op when systemd did not start us).
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
    /* Only in the daemons whose table has OS_NODE_CFG_TLS_ENTRIES / OS_NODE_CFG_CA_ENTRY (NULL
     * elsewhere): */
    char *tls_cert; /* PEM chain: listen serves HTTPS (with tls_key); NULL = plain HTTP */
    char *tls_key;  /* its PEM key (0600/0400) */
    char *ca_file;  /* PEM CAs trusted for HTTPS to registries and sellers; or NULL */
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

/* The rows of tls_cert and tls_key, for a daemon whose public listener may serve HTTPS. */
#define OS_NODE_CFG_TLS_ENTRIES(T)                                                                 \
    {.name = "tls_cert", .type = OS_CFG_PATH, .offset = offsetof(T, node.tls_cert),                \
     .meta = "FILE", .help = "PEM certificate chain, leaf first: listen serves HTTPS (TLS 1.2 and " \
     "1.3) with tls_key; both are read again on SIGHUP"},                                          \
    {.name = "tls_key", .type = OS_CFG_PATH, .flags = OS_CFG_SECRET_PATH,                          \
     .offset = offsetof(T, node.tls_key), .meta = "FILE",                                          \
     .help = "PEM private key of tls_cert (mode 0600 or 0400)"}

/* The row of ca_file, for a daemon that calls registries or sellers. */
#define OS_NODE_CFG_CA_ENTRY(T)                                                                    \
    {.name = "ca_file", .type = OS_CFG_PATH, .offset = offsetof(T, node.ca_file), .meta = "FILE",  \
     .help = "PEM CA certificates to trust instead of the system's for HTTPS to registries and " \
     "sellers (a private CA); certificates are always verified"}
/* clang-format on */

/* The checks across the common keys, for a daemon's os_cfg_program validate hook: tls_cert and
 * tls_key come together. */
void os_node_validate(const os_node_config *node, os_cfg_report *rep);

/* What os_node_main hands to run(): the program, its command line and the running
 * configuration, for os_node_serve's reloads. Owned by os_node_main; valid during run(). */
typedef struct os_node os_node;

/* A daemon's start-up, for os_node_main. */
typedef struct os_node_program {
    const os_cfg_program *config; /* its table; the struct it fills starts with an os_node_config */
    size_t config_size;           /* sizeof that struct: zeroed before loading; a reload loads a
                                   * second one beside it (0: every reload is refused) */
    const char *component;        /* log component, e.g. "registry" */
    /* Optional: adds the daemon's own key=value pairs to the "configuration loaded" line. */
    void (*describe)(os_log_event *ev, const void *cfg);
    /* The daemon itself, on the loaded cfg, once lg is set up and os_init has succeeded; returns
     * the exit status. node, cfg and lg stay owned by os_node_main. */
    int (*run)(os_node *node, const void *cfg, os_logger *lg);
} os_node_program;

/*
 * The whole of a daemon's main. Loads prog->config into cfg (the daemon's config struct, which
 * may be uninitialised) from argv and the --config file; answers --help, --version,
 * --check-config, --print-config and configuration errors on stdout/stderr as os_cfg_dispatch
 * does. Otherwise sets up a logger (component, configured level; stderr, with syslog priority
 * prefixes when stderr is the journal: os_log_stderr_is_journal), calls os_init, logs
 * "configuration loaded" with the config file, listen, data_dir, chain_id and the daemon's own
 * pairs, and returns prog->run's status (1 if os_init fails). Frees what loading put in cfg before
 * it returns. The result is main's exit status.
 */
int os_node_main(const os_node_program *prog, void *cfg, int argc, char **argv);

/*
 * For a daemon's run(): blocks SIGTERM, SIGINT and SIGHUP in the calling thread (call it before
 * any thread exists, so every thread inherits the mask and no handler ever runs inside a server
 * thread) and ignores SIGPIPE. OS_ERR_INTERNAL (logged) when the mask cannot be set.
 */
OS_WUR os_err os_node_signals_block(sigset_t *set, const os_logger *lg);

/* What os_node_signals_next took. */
typedef enum os_node_signal {
    OS_NODE_SIG_TIMEOUT = 0, /* none within the timeout */
    OS_NODE_SIG_RELOAD,      /* SIGHUP */
    OS_NODE_SIG_STOP,        /* SIGTERM or SIGINT (logged: "stopping on SIGTERM") */
} os_node_signal;

/*
 * Waits for a signal of a set made by os_node_signals_block, at most timeout_ms (negative: no
 * limit). Signals that arrived meanwhile stay pending for the next call.
 */
os_node_signal os_node_signals_next(const sigset_t *set, int64_t timeout_ms, const os_logger *lg);

/* Waits until SIGTERM or SIGINT (a SIGHUP is logged and ignored). For daemons without a reload. */
void os_node_signals_wait(const sigset_t *set, const os_logger *lg);

/* A started daemon, as os_node_serve drives it. Borrowed for the call. */
typedef struct os_node_service {
    void *core;         /* the daemon's core, handed to reload */
    uint16_t port;      /* its public listener as bound: the watchdog probes GET /healthz there */
    const char *status; /* one line for systemd's STATUS= (e.g. "serving on 0.0.0.0:8379") */
    /* Keys a reload may change besides log_level, which always may; NULL-terminated, or NULL. */
    const char *const *live_keys;
    /*
     * Optional: applies the live keys of cfg, a freshly loaded configuration of the same program
     * (borrowed for the call; copy what is kept). OS_OK when applied; otherwise nothing may have
     * changed, the reason is logged by the hook, and the reload is refused.
     */
    os_err (*reload)(void *core, const void *cfg);
} os_node_service;

/*
 * A started daemon's main loop, until SIGTERM or SIGINT. Sends READY=1 with STATUS=svc->status
 * at once (call it once the core serves), then:
 *   - with a watchdog ($WATCHDOG_USEC), every third of the interval checks that the daemon still
 *     answers GET /healthz on svc->port (on loopback when it listens on every address, within a
 *     third of the interval and at most 5 s) and only then sends WATCHDOG=1, so a wedged server
 *     is restarted by systemd after two failed checks in a row (svc->port 0: pings unchecked);
 *   - on SIGHUP, sends RELOADING=1, loads the configuration again from the same command line and
 *     --config file, and refuses it whole (logged, the running one kept) when it is invalid or
 *     changes a key that is not live (each such key is logged); otherwise calls svc->reload and
 *     then sets the log level. READY=1 follows in every case;
 *   - on SIGTERM or SIGINT, sends STOPPING=1 and returns, for the caller's graceful stop.
 * Returns 0, or 1 when the watchdog probe cannot be set up.
 */
int os_node_serve(os_node *node, const sigset_t *set, const os_node_service *svc);

#endif
