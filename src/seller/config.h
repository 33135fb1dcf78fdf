/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller daemon's configuration: the struct its core is created from and the table that
 * os_cfg_load fills it with (PROTOCOL.md §1: common keys plus the seller's own), and the parser of
 * the `offering` value, which the table's check and the core share.
 */
#ifndef OPENSEED_SELLER_CONFIG_H
#define OPENSEED_SELLER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/config.h"
#include "openseed/node.h"
#include "openseed/record.h"

/* Values of upstream_api, in the order of the table's choices. */
typedef enum sl_upstream_api {
    SL_UPSTREAM_OPENAI = 0,
    SL_UPSTREAM_ANTHROPIC = 1,
    SL_UPSTREAM_OLLAMA = 2,
} sl_upstream_api;

typedef struct sl_config {
    os_node_config node;     /* registry: where to announce, at least one; rpc and escrow set */
    char *endpoint;          /* public URL buyers reach this seller at */
    char *upstream;          /* an http(s) URL, or "builtin:echo" */
    int upstream_api;        /* sl_upstream_api */
    char *upstream_key_file; /* may be NULL */
    char *upstream_key_env;  /* name of an environment variable holding the key; may be NULL */
    uint64_t upstream_timeout;             /* s, a whole upstream call */
    uint64_t upstream_connect_timeout;     /* s */
    uint64_t upstream_first_byte_timeout;  /* s, until the upstream's response headers */
    uint64_t upstream_concurrency;         /* requests in flight to the upstream at most */
    os_cfg_list offering;    /* each parsed by sl_offering_parse */
    os_cfg_listen admin_listen;
    char *admin_token_file; /* NULL: <data_dir>/admin.token, created on first run */
    char *node_key;         /* NULL: <data_dir>/node.key; created on first run when missing */
    char *gateway_key;      /* NULL: <data_dir>/gateway.key; created on first run when missing */
    uint64_t settle_threshold; /* micro-USDC claimable before an automatic claim */
    uint64_t settle_interval;  /* s */
    uint64_t channel_refresh;  /* s */
    uint64_t max_request;      /* bytes of an encrypted request */
    /* builtin:echo only (demos and tests) */
    uint64_t echo_latency_ms;  /* before every answer's first byte */
    uint64_t echo_tokens_per_s; /* streaming pace; 0 = as fast as possible */
    int echo_fail;             /* sl_echo_fail: a failure injected into every request */
    uint64_t echo_fail_ppm;    /* 1..999999: only that share of requests, in millionths */
    uint64_t echo_fail_seed;   /* which ones (echo.h, "Failure rate") */
} sl_config;
OS_NODE_CONFIG_FIRST(sl_config);

/* The table; load with os_cfg_load(&sl_config_program, &cfg, …), release with os_cfg_free. */
extern const os_cfg_program sl_config_program;

/*
 * Parses one `offering` value:
 *   SERVICE[,SERVICE…] model=MODEL apis=API[,API…] input=PRICE output=PRICE [cached=PRICE]
 *   [max_output=TOKENS] [capability=inference|agent|tool]
 * PRICE is USDC per million tokens ("0.15"); API is openai.chat, openai.embeddings or
 * anthropic.messages; cached defaults to input, max_output to 4096, capability to inference.
 * OS_ERR_INVALID with a reason in err.
 */
OS_WUR os_err sl_offering_parse(os_offering *out, const char *spec, char *err, size_t errcap);

/* The offering a builtin:echo seller sells when none is configured. */
#define SL_ECHO_OFFERING                                                                           \
    "echo model=echo-1 apis=openai.chat,openai.embeddings,anthropic.messages input=0.5 "          \
    "output=1.5 cached=0.25 max_output=1024"

#endif
