/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every key openseed-seller accepts, in one table, plus the checks that span keys: the admin API
 * may leave loopback only behind a token, and it cannot share the public listener's address.
 * Defaults are PROTOCOL.md's (0.0.0.0:8378, admin 127.0.0.1:8380, Base mainnet).
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define OFF(f) offsetof(sl_config, f)

static os_err check_upstream(const char *value, char *err, size_t errcap)
{
    if (strncmp(value, "builtin:", 8) == 0) {
        if (strcmp(value, "builtin:echo") == 0)
            return OS_OK;
        if (err != NULL && errcap > 0)
            snprintf(err, errcap, "the only built-in upstream is builtin:echo");
        return OS_ERR_INVALID;
    }
    return os_cfg_check_url(value, err, errcap);
}

static const char *const upstream_apis[] = {"openai", "anthropic", NULL};

static const os_cfg_entry entries[] = {
    OS_NODE_CFG_ENTRIES(sl_config, "0.0.0.0:8378", "address and port to serve paid inference on",
                        "/var/lib/openseed", "directory for seller.db", OS_CFG_REQUIRED,
                        "a registry to announce to; give several for redundancy",
                        "chain JSON-RPC URL (never printed: URLs often embed an API key)"),
    {.name = "endpoint",
     .type = OS_CFG_URL,
     .flags = OS_CFG_REQUIRED,
     .offset = OFF(endpoint),
     .help = "public URL buyers reach this seller at (published in the signed record)"},
    {.name = "upstream",
     .type = OS_CFG_STRING,
     .flags = OS_CFG_REQUIRED,
     .offset = OFF(upstream),
     .check = check_upstream,
     .meta = "URL|builtin:echo",
     .help = "the inference server to proxy to, or builtin:echo for tests"},
    {.name = "upstream_api",
     .type = OS_CFG_ENUM,
     .offset = OFF(upstream_api),
     .dflt = "openai",
     .choices = upstream_apis,
     .help = "the API the upstream speaks"},
    {.name = "upstream_key_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = OFF(upstream_key_file),
     .meta = "FILE",
     .help = "file holding the upstream's API key (mode 0600)"},
    {.name = "admin_listen",
     .type = OS_CFG_LISTEN,
     .offset = OFF(admin_listen),
     .dflt = "127.0.0.1:8380",
     .help = "address and port of the admin API"},
    {.name = "admin_token_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = OFF(admin_token_file),
     .meta = "FILE",
     .help = "file holding the admin API bearer token (mode 0600); required off loopback"},
    {.name = "node_key",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED | OS_CFG_SECRET_PATH,
     .offset = OFF(node_key),
     .meta = "FILE",
     .help = "secp256k1 node key, as written by openseed keygen (mode 0600)"},
};

static void validate(const void *cfgp, os_cfg_report *rep)
{
    const sl_config *cfg = cfgp;

    if (!os_cfg_listen_is_loopback(&cfg->admin_listen) && cfg->admin_token_file == NULL)
        os_cfg_error(rep,
                     "admin_listen: %s is not a loopback address, so admin_token_file is "
                     "required",
                     cfg->admin_listen.host);
    if (cfg->admin_listen.port != 0 && cfg->admin_listen.port == cfg->node.listen.port &&
        strcmp(cfg->admin_listen.host, cfg->node.listen.host) == 0)
        os_cfg_error(rep, "admin_listen: must differ from listen");
}

const os_cfg_program sl_config_program = {
    .name = "openseed-seller",
    .version = OPENSEED_VERSION,
    .summary = "OpenSeed seller: sells inference from an upstream model server for USDC paid "
               "through payment channels.",
    .entries = entries,
    .n_entries = sizeof(entries) / sizeof(entries[0]),
    .validate = validate,
};
