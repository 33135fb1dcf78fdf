/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The start-up every daemon's main goes through, written once: configuration in, the standard
 * answers out, then a logger, libcommon and one "configuration loaded" line before the daemon's own
 * run. Keeping it here means the three daemons cannot drift apart in exit codes, in what
 * --check-config prints or in what they log at start.
 */
#include "openseed/node.h"

#include <pthread.h>
#include <signal.h>

#include <stdio.h>

#include "openseed/init.h"

static void log_loaded(const os_node_program *prog, const os_logger *lg, const void *cfg,
                       const char *config_file)
{
    const os_node_config *node = cfg;
    char listen[OS_CFG_LISTEN_STR_LEN];
    os_log_event ev;

    if (!os_log_begin(&ev, lg, OS_LOG_INFO, "configuration loaded"))
        return;
    os_cfg_listen_format(listen, &node->listen);
    os_log_kv(&ev, "config", "%s", config_file != NULL ? config_file : "(none)");
    os_log_kv(&ev, "listen", "%s", listen);
    os_log_kv(&ev, "data_dir", "%s", node->data_dir);
    os_log_kv(&ev, "chain_id", "%llu", (unsigned long long)node->chain_id);
    if (prog->describe != NULL)
        prog->describe(&ev, cfg);
    os_log_end(&ev);
}

int os_node_main(const os_node_program *prog, void *cfg, int argc, char **argv)
{
    os_cfg_report rep;
    os_err rc = os_cfg_load(prog->config, cfg, &rep, argc, argv);
    int status = os_cfg_dispatch(prog->config, cfg, &rep, rc, stdout, stderr);

    if (status < 0) {
        const os_node_config *node = cfg;
        os_logger lg;

        os_logger_init(&lg, prog->component, node->log_level);
        if (os_init() != OS_OK) {
            os_log_error(&lg, "cannot initialise libcommon");
            status = 1;
        } else {
            log_loaded(prog, &lg, cfg, rep.config_file);
            status = prog->run(cfg, &lg);
        }
    }
    os_cfg_free(prog->config, cfg);
    os_cfg_report_free(&rep);
    return status;
}

os_err os_node_signals_block(sigset_t *set, const os_logger *lg)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0) {
        os_log_error(lg, "cannot block SIGTERM and SIGINT");
        return OS_ERR_INTERNAL;
    }
    signal(SIGPIPE, SIG_IGN);
    return OS_OK;
}

void os_node_signals_wait(const sigset_t *set, const os_logger *lg)
{
    int sig = 0;

    while (sigwait(set, &sig) != 0)
        ;
    os_log_info(lg, "stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
}
