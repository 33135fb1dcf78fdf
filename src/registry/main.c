/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-registry's entry point: loads the configuration (defaults, --config file, flags) and
 * answers --help, --version, --check-config and --print-config. The registry service itself is a
 * later piece of work, so a normal start says so in the log and exits with status 1 instead of
 * pretending to serve.
 */
#include <stdio.h>

#include "openseed/config.h"
#include "openseed/init.h"
#include "openseed/log.h"

#include "config.h"

static int run(const rg_config *cfg, const char *config_file)
{
    os_logger lg;
    os_log_event ev;
    char listen[OS_CFG_LISTEN_STR_LEN];

    os_logger_init(&lg, "registry", cfg->log_level);
    if (os_init() != OS_OK) {
        os_log_error(&lg, "cannot initialise libcommon");
        return 1;
    }
    os_cfg_listen_format(listen, &cfg->listen);
    if (os_log_begin(&ev, &lg, OS_LOG_INFO, "configuration loaded")) {
        os_log_kv(&ev, "config", "%s", config_file != NULL ? config_file : "(none)");
        os_log_kv(&ev, "listen", "%s", listen);
        os_log_kv(&ev, "data_dir", "%s", cfg->data_dir);
        os_log_kv(&ev, "chain_id", "%llu", (unsigned long long)cfg->chain_id);
        os_log_end(&ev);
    }
    os_log_info(&lg, "serving is not built yet (the registry service is a later issue); exiting");
    return 1;
}

int main(int argc, char **argv)
{
    rg_config cfg;
    os_cfg_report rep;
    os_err rc = os_cfg_load(&rg_config_program, &cfg, &rep, argc, argv);
    int status = os_cfg_dispatch(&rg_config_program, &cfg, &rep, rc, stdout, stderr);

    if (status < 0)
        status = run(&cfg, rep.config_file);
    os_cfg_free(&rg_config_program, &cfg);
    os_cfg_report_free(&rep);
    return status;
}
