/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-buyer's entry point: os_node_main loads the configuration (defaults, --config file,
 * flags), answers --help, --version, --check-config and --print-config, and logs what was loaded.
 * The gateway itself is a later piece of work, so a normal start says so in the log and exits with
 * status 1 instead of pretending to serve.
 */
#include "openseed/money.h"
#include "openseed/node.h"

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

static int run(const void *cfg, os_logger *lg)
{
    (void)cfg;
    os_log_info(lg, "serving is not built yet (the buyer gateway is a later issue); exiting");
    return 1;
}

int main(int argc, char **argv)
{
    static const os_node_program prog = {
        .config = &by_config_program,
        .component = "buyer",
        .describe = describe,
        .run = run,
    };
    by_config cfg;

    return os_node_main(&prog, &cfg, argc, argv);
}
