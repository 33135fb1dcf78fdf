/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller daemon's configuration: the struct its core is created from and the table that
 * os_cfg_load fills it with (PROTOCOL.md §1: common keys plus the seller's own).
 */
#ifndef OPENSEED_SELLER_CONFIG_H
#define OPENSEED_SELLER_CONFIG_H

#include <stdint.h>

#include "openseed/config.h"
#include "openseed/node.h"

/* Values of upstream_api, in the order of the table's choices. */
typedef enum sl_upstream_api {
    SL_UPSTREAM_OPENAI = 0,
    SL_UPSTREAM_ANTHROPIC = 1,
} sl_upstream_api;

typedef struct sl_config {
    os_node_config node;     /* registry: where to announce, at least one; rpc and escrow set */
    char *endpoint;          /* public URL buyers reach this seller at */
    char *upstream;          /* an http(s) URL, or "builtin:echo" */
    int upstream_api;        /* sl_upstream_api */
    char *upstream_key_file; /* may be NULL */
    os_cfg_listen admin_listen;
    char *admin_token_file; /* may be NULL only while admin_listen is loopback */
    char *node_key;
} sl_config;
OS_NODE_CONFIG_FIRST(sl_config);

/* The table; load with os_cfg_load(&sl_config_program, &cfg, …), release with os_cfg_free. */
extern const os_cfg_program sl_config_program;

#endif
