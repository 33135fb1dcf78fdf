/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-registry's entry point: os_node_main loads the configuration (defaults, --config file,
 * flags), answers --help, --version, --check-config and --print-config, and logs what was loaded.
 * The registry service itself is a later piece of work, so a normal start says so in the log and
 * exits with status 1 instead of pretending to serve.
 */
#include "openseed/node.h"

#include "config.h"

static int run(const void *cfg, os_logger *lg)
{
    (void)cfg;
    os_log_info(lg, "serving is not built yet (the registry service is a later issue); exiting");
    return 1;
}

int main(int argc, char **argv)
{
    static const os_node_program prog = {
        .config = &rg_config_program,
        .component = "registry",
        .run = run,
    };
    rg_config cfg;

    return os_node_main(&prog, &cfg, argc, argv);
}
