/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer daemon's configuration: the struct its core is created from and the table that
 * os_cfg_load fills it with (PROTOCOL.md §1: common keys plus the buyer's own).
 */
#ifndef OPENSEED_BUYER_CONFIG_H
#define OPENSEED_BUYER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "openseed/config.h"
#include "openseed/node.h"

typedef struct by_config {
    os_node_config node;        /* registry: where to find sellers, at least one; rpc, escrow set */
    char *wallet_key;           /* 0600 key file or v3 keystore */
    char *wallet_password_file; /* the keystore's password; NULL for a raw key file */
    uint64_t deposit;           /* micro-USDC put in each new channel */
    uint64_t max_input_price;   /* micro-USDC per million input tokens */
    uint64_t max_output_price;  /* micro-USDC per million output tokens */
    char *api_key_file;         /* may be NULL only while listen is loopback */
    uint64_t topup_below;       /* micro-USDC; 0 = deposit / 4 */
    uint64_t budget_request;    /* micro-USDC; 0 = no cap */
    uint64_t budget_day;
    uint64_t budget_channel;
    bool open_with_authorization;
    uint64_t max_attempts;    /* sellers tried per request (failover) */
    uint64_t max_body;        /* bytes of a client request */
    uint64_t peers_ttl;       /* s, registry listing cache */
    uint64_t request_timeout; /* s, a whole request to a seller */
    int route;                /* by_route, in the order of the table's choices */
    uint64_t route_seed;      /* 0 = random */
} by_config;
OS_NODE_CONFIG_FIRST(by_config);

/* The table; load with os_cfg_load(&by_config_program, &cfg, …), release with os_cfg_free. */
extern const os_cfg_program by_config_program;

#endif
