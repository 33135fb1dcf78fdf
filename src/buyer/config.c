/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every key openseed-buyer accepts, in one table, plus the check that spans keys: the gateway
 * spends the wallet's money for whoever can reach it, so it may leave loopback only behind an API
 * key. Defaults are PROTOCOL.md's (127.0.0.1:8377, Base mainnet); amounts are written in USDC
 * ("1.25") and stored in micro-USDC, prices per million tokens.
 */
#include "config.h"

#include <stddef.h>

#define OFF(f) offsetof(by_config, f)

static const os_cfg_entry entries[] = {
    OS_NODE_CFG_ENTRIES(by_config, "127.0.0.1:8377",
                        "address and port of the OpenAI/Anthropic-compatible gateway",
                        "~/.openseed", "directory for buyer.db", OS_CFG_REQUIRED,
                        "a registry to find sellers in; give several for redundancy",
                        "chain JSON-RPC URL (never printed: URLs often embed an API key)"),
    {.name = "wallet_key",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED | OS_CFG_SECRET_PATH,
     .offset = OFF(wallet_key),
     .meta = "FILE",
     .help = "the wallet that funds channels: a key file from openseed keygen or a v3 keystore "
             "(mode 0600)"},
    {.name = "deposit",
     .type = OS_CFG_USDC,
     .offset = OFF(deposit),
     .dflt = "5",
     .min = 1,
     .help = "USDC to deposit in each new channel"},
    {.name = "max_input_price",
     .type = OS_CFG_USDC,
     .offset = OFF(max_input_price),
     .dflt = "10",
     .help = "highest price accepted, in USDC per million input tokens"},
    {.name = "max_output_price",
     .type = OS_CFG_USDC,
     .offset = OFF(max_output_price),
     .dflt = "40",
     .help = "highest price accepted, in USDC per million output tokens"},
    {.name = "api_key_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = OFF(api_key_file),
     .meta = "FILE",
     .help = "file holding the bearer key clients must send (mode 0600); required off loopback"},
};

static void validate(const void *cfgp, os_cfg_report *rep)
{
    const by_config *cfg = cfgp;

    if (!os_cfg_listen_is_loopback(&cfg->node.listen) && cfg->api_key_file == NULL)
        os_cfg_error(rep,
                     "listen: %s is not a loopback address, so api_key_file is required "
                     "(anyone who can reach the gateway could spend the deposit)",
                     cfg->node.listen.host);
}

const os_cfg_program by_config_program = {
    .name = "openseed-buyer",
    .version = OPENSEED_VERSION,
    .summary = "OpenSeed buyer: a local OpenAI/Anthropic-compatible gateway that pays sellers "
               "through payment channels.",
    .entries = entries,
    .n_entries = sizeof(entries) / sizeof(entries[0]),
    .validate = validate,
};
