/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-seller's entry point: os_node_main loads the configuration (defaults, --config file,
 * flags), answers --help, --version, --check-config and --print-config, and logs what was loaded;
 * run() then starts the seller core and hands over to os_node_serve, which tells systemd it is
 * ready once the core listens and its announcer runs, feeds the watchdog while /healthz
 * answers, reloads on SIGHUP what can change live (the log level, the TLS certificate and key,
 * and the offerings: prices, services, models, re-announced at once) and returns on SIGTERM or SIGINT, on which the core
 * stops accepting, lets the answers in flight finish (bounded), books every request and closes
 * seller.db before the process exits 0. The signals are blocked in every thread and taken with
 * sigwait, so no handler runs inside the server's threads.
 */
#include <signal.h>
#include <stdio.h>

#include "openseed/node.h"

#include "config.h"
#include "seller.h"

static void describe(os_log_event *ev, const void *cfgp)
{
    const sl_config *cfg = cfgp;
    char admin[OS_CFG_LISTEN_STR_LEN];

    os_cfg_listen_format(admin, &cfg->admin_listen);
    os_log_kv(ev, "admin_listen", "%s", admin);
    os_log_kv(ev, "endpoint", "%s", cfg->endpoint);
    os_log_kv(ev, "upstream", "%s",
              cfg->upstream != NULL && cfg->upstream[0] == 'b' ? cfg->upstream : "(url)");
    os_log_kv(ev, "registries", "%zu", cfg->node.registry.n);
}

/* SIGHUP: the TLS certificate and key first (a pair that does not load refuses the reload before
 * anything changed), then the offerings. */
static os_err reload(void *core, const void *cfg)
{
    os_err rc = sl_seller_reload_tls(core);
    return rc != OS_OK ? rc : sl_seller_reload(core, cfg);
}

static int run(os_node *node, const void *vcfg, os_logger *lg)
{
    static const char *const live_keys[] = {"offering", NULL};
    const sl_config *cfg = vcfg;
    sl_seller *s = NULL;
    char listen[OS_CFG_LISTEN_STR_LEN], status[OS_CFG_LISTEN_STR_LEN + 32];
    os_cfg_listen bound = cfg->node.listen;
    sigset_t set;
    int st;

    if (os_node_signals_block(&set, lg) != OS_OK)
        return 1;
    /* A write past RLIMIT_FSIZE would kill the process with SIGXFSZ; ignored, it fails with
     * EFBIG like a full disk, seller.db reports an I/O error and paid requests are refused with
     * 503 until the limit is lifted (tests/integration/test_fault_upstream.c). */
    signal(SIGXFSZ, SIG_IGN);
    if (sl_seller_new(&s, cfg, lg) != OS_OK)
        return 1; /* the reason is logged */
    if (sl_seller_start(s) != OS_OK) {
        sl_seller_free(s);
        return 1;
    }
    bound.port = sl_seller_port(s);
    os_cfg_listen_format(listen, &bound);
    snprintf(status, sizeof(status), "serving on %s", listen);
    os_node_service svc = {
        .core = s,
        /* the watchdog's probe speaks plain HTTP; over TLS the pings only show this loop runs */
        .port = cfg->node.tls_cert != NULL ? 0 : bound.port,
        .status = status,
        .live_keys = live_keys,
        .reload = reload,
    };
    st = os_node_serve(node, &set, &svc);
    sl_seller_stop(s);
    sl_seller_free(s);
    return st;
}

int main(int argc, char **argv)
{
    static const os_node_program prog = {
        .config = &sl_config_program,
        .config_size = sizeof(sl_config),
        .component = "seller",
        .describe = describe,
        .run = run,
    };
    sl_config cfg;

    return os_node_main(&prog, &cfg, argc, argv);
}
