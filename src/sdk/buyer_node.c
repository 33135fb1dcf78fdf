/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BuyerNode (include/openseed/buyer_node.h): the buyer core (src/buyer) behind the SDK's
 * configuration. It checks what the core would refuse without saying why (data_dir, rpc, the
 * wallet key, registries, addresses, the listen address), logging the reason, maps the SDK's
 * zero defaults and its routing choice onto the core's options and forwards the lifecycle.
 */
#include "openseed/buyer_node.h"

#include <stdlib.h>
#include <string.h>

#include "openseed/secp.h"

#include "buyer.h"
#include "sdk_internal.h"

#define NODE "buyer node"

struct os_buyer_node {
    by_buyer *b;
    const os_logger *log;
    os_sdk_state state;
};

void os_buyer_node_config_init(os_buyer_node_config *c)
{
    memset(c, 0, sizeof(*c));
}

static os_err check_config(const os_buyer_node_config *c, const char *listen)
{
    const os_logger *log = c->log;
    os_cfg_listen l;

    if (os_sdk_check_listen(&l, listen, "listen", NODE, log) != OS_OK ||
        os_sdk_required(c->data_dir, "data_dir", NODE, log) != OS_OK ||
        os_sdk_required(c->rpc, "rpc", NODE, log) != OS_OK ||
        os_sdk_check_url(c->rpc, "rpc", NODE, log) != OS_OK ||
        os_sdk_check_urls(c->registries, c->n_registries, true, "registry", NODE, log) != OS_OK ||
        os_sdk_required_address(c->escrow, "escrow", NODE, log) != OS_OK ||
        os_sdk_required_address(c->usdc, "usdc", NODE, log) != OS_OK)
        return OS_ERR_INVALID;
    if (c->chain_id == 0) {
        os_log_error(log, NODE ": chain_id is required");
        return OS_ERR_INVALID;
    }
    if (c->wallet_priv == NULL || os_secp_privkey_check(c->wallet_priv) != OS_OK) {
        os_log_error(log, NODE ": wallet_priv is required (a valid secp256k1 key)");
        return OS_ERR_INVALID;
    }
    if (!os_cfg_listen_is_loopback(&l) && (c->api_key == NULL || c->api_key[0] == '\0')) {
        os_log_error(log, NODE ": listening off loopback needs an api_key");
        return OS_ERR_INVALID;
    }
    if (c->route != OS_ROUTE_BEST && c->route != OS_ROUTE_WEIGHTED) {
        os_log_error(log, NODE ": route must be OS_ROUTE_BEST or OS_ROUTE_WEIGHTED");
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

os_err os_buyer_node_new(os_buyer_node **out, const os_buyer_node_config *c)
{
    os_buyer_node *n;
    by_options o;
    const char *listen;
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (c == NULL) {
        os_log_error(NULL, NODE ": no configuration");
        return OS_ERR_INVALID;
    }
    listen = c->listen != NULL ? c->listen : OS_SDK_DEFAULT_LISTEN;
    if (check_config(c, listen) != OS_OK)
        return OS_ERR_INVALID;

    by_options_default(&o);
    o.listen = listen;
    o.data_dir = c->data_dir;
    o.registries = c->registries;
    o.n_registries = c->n_registries;
    o.rpc = c->rpc;
    o.ca_file = c->ca_file;
    o.chain_id = c->chain_id;
    memcpy(o.escrow, c->escrow, 20);
    memcpy(o.usdc, c->usdc, 20);
    o.wallet_priv = c->wallet_priv; /* the core copies it into locked memory */
    o.api_key = c->api_key;
    if (c->deposit != 0)
        o.deposit = c->deposit;
    /* 0 is "no cap" in both; the daemon's defaults (10 and 40 USDC) are its config file's */
    o.max_input_price = c->max_input_price;
    o.max_output_price = c->max_output_price;
    o.budget_day = c->budget_day;
    o.max_attempts = c->max_attempts;
    o.route = c->route == OS_ROUTE_WEIGHTED ? BY_ROUTE_WEIGHTED : BY_ROUTE_BEST;
    o.route_seed = c->route_seed; /* 0: the core draws one from randombytes */
    o.peers_ttl_ms = c->peers_ttl_ms;
    o.http_threads = c->http_threads;

    if ((n = calloc(1, sizeof(*n))) == NULL)
        return OS_ERR_NOMEM;
    n->log = c->log;
    if ((rc = by_buyer_new_opts(&n->b, &o, c->log)) != OS_OK) {
        os_log_error(c->log, NODE ": cannot create the buyer: %s", os_strerror(rc));
        free(n);
        return rc;
    }
    *out = n;
    return OS_OK;
}

os_err os_buyer_node_start(os_buyer_node *n)
{
    os_err rc;

    if (n == NULL)
        return OS_ERR_INVALID;
    if ((rc = os_sdk_start_check(n->state, NODE, n->log)) != OS_OK)
        return rc == OS_ERR_EXISTS ? OS_OK : rc;
    /* a failed start leaves nothing running; free releases what it made */
    return os_sdk_start_done(&n->state, by_buyer_start(n->b), NODE, n->log);
}

uint16_t os_buyer_node_port(const os_buyer_node *n)
{
    return n != NULL && n->state == OS_SDK_STARTED ? by_buyer_port(n->b) : 0;
}

void os_buyer_node_stop(os_buyer_node *n)
{
    if (n == NULL || n->state == OS_SDK_STOPPED)
        return;
    by_buyer_stop(n->b);
    n->state = OS_SDK_STOPPED;
}

void os_buyer_node_free(os_buyer_node *n)
{
    if (n == NULL)
        return;
    os_buyer_node_stop(n);
    by_buyer_free(n->b);
    free(n);
}
