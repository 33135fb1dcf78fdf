/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-buyer's entry point: os_node_main loads the configuration (defaults, --config file,
 * flags), answers --help, --version, --check-config and --print-config, and logs what was loaded;
 * run() then starts the gateway core and hands over to os_node_serve, which tells systemd it is
 * ready once the gateway listens, feeds the watchdog while /healthz answers, reloads the log level
 * on SIGHUP (every other key needs a restart) and returns on SIGTERM or SIGINT, on which the
 * gateway stops accepting and lets requests in flight finish (bounded) before the process exits
 * 0. The signals are blocked in every thread and taken with sigwait, so no handler runs inside
 * the server's threads.
 *
 * The buyer runs beside its users' applications, so main also keeps glibc's allocator lean (a
 * process-wide setting, hence here and not in the core): two arenas instead of eight per core for
 * its many short-lived request threads, and the per-request 256 KiB response buffers mapped and
 * unmapped each time rather than kept on the heap once freed (the threshold would otherwise rise
 * to them). Measured with scripts/bench.sh at 500 streams/s: peak RSS 42 -> 36 MB.
 */
#include <malloc.h>
#include <stdio.h>

#include "openseed/money.h"
#include "openseed/node.h"

#include "buyer.h"
#include "config.h"

static void describe(os_log_event *ev, const void *cfgp)
{
    const by_config *cfg = cfgp;
    char deposit[OS_USDC_LEN];

    if (os_usdc_format(deposit, sizeof(deposit), cfg->deposit) != OS_OK)
        deposit[0] = '\0';
    os_log_kv(ev, "registries", "%zu", cfg->node.registry.n);
    os_log_kv(ev, "deposit_usdc", "%s", deposit);
}

static int run(os_node *node, const void *vcfg, os_logger *lg)
{
    const by_config *cfg = vcfg;
    by_buyer *b = NULL;
    char listen[OS_CFG_LISTEN_STR_LEN], status[OS_CFG_LISTEN_STR_LEN + 32];
    os_cfg_listen bound = cfg->node.listen;
    sigset_t set;
    int st;

    if (os_node_signals_block(&set, lg) != OS_OK)
        return 1;
    if (by_buyer_new(&b, cfg, lg) != OS_OK)
        return 1; /* the reason is logged */
    if (by_buyer_start(b) != OS_OK) {
        by_buyer_free(b);
        return 1;
    }
    bound.port = by_buyer_port(b);
    os_cfg_listen_format(listen, &bound);
    snprintf(status, sizeof(status), "serving on %s", listen);
    os_node_service svc = {.core = b, .port = bound.port, .status = status};
    st = os_node_serve(node, &set, &svc);
    by_buyer_stop(b);
    by_buyer_free(b);
    return st;
}

int main(int argc, char **argv)
{
    static const os_node_program prog = {
        .config = &by_config_program,
        .config_size = sizeof(by_config),
        .component = "buyer",
        .describe = describe,
        .run = run,
    };
    by_config cfg;

#if defined(M_ARENA_MAX) && defined(M_MMAP_THRESHOLD)
    (void)mallopt(M_ARENA_MAX, 2);
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    return os_node_main(&prog, &cfg, argc, argv);
}
