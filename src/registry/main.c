/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-registry's entry point: os_node_main loads the configuration (defaults, --config file,
 * flags), answers --help, --version, --check-config and --print-config, and logs what was loaded;
 * run() then starts the registry core and hands over to os_node_serve, which tells systemd it is
 * ready once the core listens, feeds the watchdog while /healthz answers, reloads the log level
 * and re-reads the TLS certificate and key on SIGHUP (every other key needs a restart) and returns on SIGTERM or SIGINT, on which the core
 * drains the requests in flight, writes pending heartbeats and closes the database before the
 * process exits 0. The signals are blocked in every thread and taken with sigwait, so no handler
 * runs inside the server's threads.
 */
#include <stdio.h>

#include "openseed/node.h"

#include "config.h"
#include "registry.h"

/* SIGHUP: the certificate and key are read again (log_level is os_node_serve's). */
static os_err reload(void *core, const void *cfg)
{
    (void)cfg;
    return rg_registry_reload_tls(core);
}

static int run(os_node *node, const void *vcfg, os_logger *lg)
{
    const rg_config *cfg = vcfg;
    rg_registry *rg = NULL;
    char listen[OS_CFG_LISTEN_STR_LEN], status[OS_CFG_LISTEN_STR_LEN + 32];
    os_cfg_listen bound = cfg->node.listen;
    sigset_t set;
    os_err rc;
    int st;

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
    bound.port = rg_registry_port(rg);
    os_cfg_listen_format(listen, &bound);
    snprintf(status, sizeof(status), "serving on %s", listen);
    /* The watchdog's probe speaks plain HTTP: over TLS it would fail, so there the pings only
     * show that this loop runs (docs/operations.md). */
    os_node_service svc = {.core = rg,
                           .port = cfg->node.tls_cert != NULL ? 0 : bound.port,
                           .status = status,
                           .reload = reload};
    st = os_node_serve(node, &set, &svc);
    rg_registry_stop(rg);
    rg_registry_free(rg);
    return st;
}

int main(int argc, char **argv)
{
    static const os_node_program prog = {
        .config = &rg_config_program,
        .config_size = sizeof(rg_config),
        .component = "registry",
        .run = run,
    };
    rg_config cfg;

    return os_node_main(&prog, &cfg, argc, argv);
}
