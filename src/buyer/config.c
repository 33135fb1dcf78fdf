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

/* In by_route's order. */
static const char *const routes[] = {"best", "weighted", NULL};

static const os_cfg_entry entries[] = {
    OS_NODE_CFG_ENTRIES(by_config, "127.0.0.1:8377",
                        "address and port of the OpenAI/Anthropic-compatible gateway",
                        "~/.openseed", "directory for buyer.db", OS_CFG_REQUIRED,
                        "a registry to find sellers in; give several for redundancy",
                        "chain JSON-RPC URL (never printed: URLs often embed an API key)"),
    OS_NODE_CFG_CA_ENTRY(by_config),
    {.name = "wallet_key",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED | OS_CFG_SECRET_PATH,
     .offset = OFF(wallet_key),
     .meta = "FILE",
     .help = "the wallet that funds channels: a key file from openseed keygen or a v3 keystore "
             "(mode 0600)"},
    {.name = "wallet_password_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = OFF(wallet_password_file),
     .meta = "FILE",
     .help = "file holding the keystore password (mode 0600), when wallet_key is a v3 keystore"},
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
    {.name = "topup_below",
     .type = OS_CFG_USDC,
     .offset = OFF(topup_below),
     .dflt = "0",
     .help = "top a channel up (by deposit) when less than this USDC is left; 0 = a quarter of "
             "the deposit"},
    {.name = "budget_request",
     .type = OS_CFG_USDC,
     .offset = OFF(budget_request),
     .dflt = "0",
     .help = "most USDC one request may be authorised for (0 = no cap)"},
    {.name = "budget_day",
     .type = OS_CFG_USDC,
     .offset = OFF(budget_day),
     .dflt = "0",
     .help = "most USDC spent per UTC day, requests in flight included (0 = no cap)"},
    {.name = "budget_channel",
     .type = OS_CFG_USDC,
     .offset = OFF(budget_channel),
     .dflt = "0",
     .help = "most USDC deposited into one channel, top-ups included (0 = no cap)"},
    {.name = "open_with_authorization",
     .type = OS_CFG_BOOL,
     .offset = OFF(open_with_authorization),
     .dflt = "true",
     .help = "open channels in one transaction (EIP-3009) instead of approve + open"},
    {.name = "max_attempts",
     .type = OS_CFG_U64,
     .offset = OFF(max_attempts),
     .dflt = "3",
     .min = 1,
     .max = 16,
     .help = "sellers tried for one request before giving up (failover)"},
    {.name = "max_body",
     .type = OS_CFG_U64,
     .offset = OFF(max_body),
     .dflt = "8388608",
     .min = 1024,
     .max = 67108864,
     .help = "largest client request body, in bytes (larger: 413)"},
    {.name = "peers_ttl",
     .type = OS_CFG_DURATION,
     .offset = OFF(peers_ttl),
     .dflt = "10s",
     .min = 1,
     .max = 3600,
     .help = "how long a registry listing is reused"},
    {.name = "request_timeout",
     .type = OS_CFG_DURATION,
     .offset = OFF(request_timeout),
     .dflt = "10m",
     .min = 1,
     .max = 86400,
     .help = "longest request to a seller, streams included"},
    {.name = "route",
     .type = OS_CFG_ENUM,
     .offset = OFF(route),
     .dflt = "best",
     .choices = routes,
     .help = "first seller of a request: the best-scored one, or weighted (drawn with "
             "probability proportional to score squared); failover follows the ranking"},
    {.name = "route_seed",
     .type = OS_CFG_U64,
     .offset = OFF(route_seed),
     .dflt = "0",
     .help = "seed of route = weighted's draws, to replay a run (0 = a random seed)"},
};

static void validate(const void *cfgp, os_cfg_report *rep)
{
    const by_config *cfg = cfgp;

    os_node_validate(&cfg->node, rep);
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
