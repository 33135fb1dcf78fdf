/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-seller's entry point: os_node_main loads the configuration (defaults, --config file,
 * flags), answers --help, --version, --check-config and --print-config, and logs what was loaded.
 * The seller service itself is a later piece of work, so a normal start says so in the log and
 * exits with status 1 instead of pretending to serve.
 */
#include "openseed/node.h"

#include "config.h"

static void describe(os_log_event *ev, const void *cfgp)
{
    const sl_config *cfg = cfgp;
    char admin[OS_CFG_LISTEN_STR_LEN];

    os_cfg_listen_format(admin, &cfg->admin_listen);
    os_log_kv(ev, "admin_listen", "%s", admin);
    os_log_kv(ev, "endpoint", "%s", cfg->endpoint);
    os_log_kv(ev, "registries", "%zu", cfg->node.registry.n);
}

static int run(const void *cfg, os_logger *lg)
{
    (void)cfg;
    os_log_info(lg, "serving is not built yet (the seller service is a later issue); exiting");
    return 1;
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
