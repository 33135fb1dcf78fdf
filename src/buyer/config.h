/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer daemon's configuration: the struct its core is created from and the table that
 * os_cfg_load fills it with (PROTOCOL.md §1: common keys plus the buyer's own).
 */
#ifndef OPENSEED_BUYER_CONFIG_H
#define OPENSEED_BUYER_CONFIG_H

#include <stdint.h>

#include "openseed/config.h"
#include "openseed/log.h"

typedef struct by_config {
    os_cfg_listen listen;
    char *data_dir;
    os_log_level log_level;
    os_cfg_list registry; /* registries to discover sellers from; at least one */
    char *rpc;            /* chain JSON-RPC (secret: may embed an API key) */
    uint64_t chain_id;
    os_cfg_address escrow;
    os_cfg_address usdc;
    char *wallet_key;          /* 0600 key file or v3 keystore */
    uint64_t deposit;          /* micro-USDC put in each new channel */
    uint64_t max_input_price;  /* micro-USDC per million input tokens */
    uint64_t max_output_price; /* micro-USDC per million output tokens */
    char *api_key_file;        /* may be NULL only while listen is loopback */
} by_config;

/* The table; load with os_cfg_load(&by_config_program, &cfg, …), release with os_cfg_free. */
extern const os_cfg_program by_config_program;

#endif
