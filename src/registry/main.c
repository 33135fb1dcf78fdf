/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-registry's entry point: os_node_main loads the configuration (defaults, --config file,
 * flags), answers --help, --version, --check-config and --print-config, and logs what was loaded;
 * run() then starts the registry core and waits for SIGTERM or SIGINT, on which the core drains
 * the requests in flight, writes pending heartbeats and closes the database before the process
 * exits 0. The signals are blocked in every thread and taken with sigwait, so no handler runs
 * inside the server's threads.
 */
#include "openseed/node.h"

#include "config.h"
#include "registry.h"

static int run(const void *vcfg, os_logger *lg)
{
    const rg_config *cfg = vcfg;
    rg_registry *rg = NULL;
    sigset_t set;
    os_err rc;

    if (os_node_signals_block(&set, lg) != OS_OK)
        return 1;
    if ((rc = rg_registry_new(&rg, cfg, lg)) != OS_OK) {
        os_log_error(lg, "cannot start the registry: %s", os_strerror(rc));
        return 1;
    }
    if ((rc = rg_registry_start(rg)) != OS_OK) {
        os_log_error(lg, "cannot listen: %s", os_strerror(rc));
        rg_registry_free(rg);
        return 1;
    }
    os_node_signals_wait(&set, lg);
    rg_registry_stop(rg);
    rg_registry_free(rg);
    return 0;
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
