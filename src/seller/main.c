/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-seller's entry point: os_node_main loads the configuration (defaults, --config file,
 * flags), answers --help, --version, --check-config and --print-config, and logs what was loaded;
 * run() then starts the seller core and waits for SIGTERM or SIGINT, on which the core stops
 * accepting, lets the answers in flight finish (bounded), books every request and closes
 * seller.db before the process exits 0. The signals are blocked in every thread and taken with
 * sigwait, so no handler runs inside the server's threads.
 */
#include <signal.h>

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

static int run(const void *vcfg, os_logger *lg)
{
    const sl_config *cfg = vcfg;
    sl_seller *s = NULL;
    sigset_t set;

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
    os_node_signals_wait(&set, lg);
    sl_seller_stop(s);
    sl_seller_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    static const os_node_program prog = {
        .config = &sl_config_program,
        .component = "seller",
        .describe = describe,
        .run = run,
    };
    sl_config cfg;

    return os_node_main(&prog, &cfg, argc, argv);
}
