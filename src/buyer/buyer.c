/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer core's lifecycle: options from the configuration (the wallet key read from its 0600
 * file into locked memory, the optional client API key from its file), the data directory (0700),
 * the chain client, the directory of sellers and the wallet in by_buyer_new; the wallet's signer
 * (which asks the node for the chain id), the recovery of stored channels and the HTTP server in
 * by_buyer_start; the reverse in by_buyer_stop. Routes are in gateway.c, the relay in relay.c.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "openseed/config.h"
#include "openseed/ct.h"
#include "openseed/escrow.h"
#include "openseed/keyfile.h"

#define ERRLEN 320

void by_options_default(by_options *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:8377";
    o->data_dir = ".";
    o->chain_id = 8453;
    o->deposit = 5 * 1000000;
    o->open_with_authorization = true;
    o->max_input_price = 10 * 1000000;
    o->max_output_price = 40 * 1000000;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static os_err copy_options(by_buyer *b, const by_options *o)
{
    b->opt = *o;
    b->listen = dup_or_null(o->listen);
    b->data_dir = dup_or_null(o->data_dir);
    b->rpc = dup_or_null(o->rpc);
    if (b->listen == NULL || b->data_dir == NULL || b->rpc == NULL)
        return OS_ERR_NOMEM;
    if (o->api_key != NULL) {
        size_t n = strlen(o->api_key) + 1;
        if ((b->api_key = sodium_malloc(n)) == NULL)
            return OS_ERR_NOMEM;
        memcpy(b->api_key, o->api_key, n);
    }
    if ((b->wallet_priv = sodium_malloc(32)) == NULL)
        return OS_ERR_NOMEM;
    memcpy(b->wallet_priv, o->wallet_priv, 32);
    if (o->n_registries > 0) {
        if ((b->registries = calloc(o->n_registries, sizeof(char *))) == NULL)
            return OS_ERR_NOMEM;
        for (size_t i = 0; i < o->n_registries; i++) {
            if ((b->registries[i] = strdup(o->registries[i])) == NULL)
                return OS_ERR_NOMEM;
            b->n_registries++;
        }
    }
    b->opt.listen = b->listen;
    b->opt.data_dir = b->data_dir;
    b->opt.rpc = b->rpc;
    b->opt.api_key = NULL;
    b->opt.wallet_priv = NULL;
    b->opt.registries = (const char *const *)b->registries;
    if (b->opt.max_attempts == 0)
        b->opt.max_attempts = 3;
    if (b->opt.max_body == 0)
        b->opt.max_body = 8u << 20;
    if (b->opt.peers_ttl_ms == 0)
        b->opt.peers_ttl_ms = 10000;
    if (b->opt.request_timeout_ms == 0)
        b->opt.request_timeout_ms = 600000;
    if (b->opt.first_byte_timeout_ms == 0)
        b->opt.first_byte_timeout_ms = 60000;
    if (b->opt.http_threads == 0)
        b->opt.http_threads = 16;
    return OS_OK;
}

os_err by_buyer_new_opts(by_buyer **out, const by_options *o, const os_logger *log)
{
    by_buyer *b;
    os_chain_config cc;
    os_cfg_listen l;
    struct stat sb;
    os_err rc;

    *out = NULL;
    if (o == NULL || o->listen == NULL || o->data_dir == NULL || o->rpc == NULL ||
        o->wallet_priv == NULL || o->chain_id == 0 || os_ct_is_zero(o->escrow, 20) ||
        o->deposit == 0)
        return OS_ERR_INVALID;
    if (os_cfg_parse_listen(&l, o->listen, NULL, 0) != OS_OK)
        return OS_ERR_INVALID;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return OS_ERR_NOMEM;
    b->log = log;
    b->loopback = os_cfg_listen_is_loopback(&l);
    if ((rc = copy_options(b, o)) != OS_OK)
        goto fail;
    if (o->route != BY_ROUTE_BEST && o->route != BY_ROUTE_WEIGHTED) {
        rc = OS_ERR_INVALID;
        goto fail;
    }
    if (pthread_mutex_init(&b->rng_mu, NULL) != 0) {
        rc = OS_ERR_NOMEM;
        goto fail;
    }
    b->rng_mu_ok = true;
    {
        /* a fixed seed replays a simulation's routing; without one, buyers draw differently */
        uint64_t seed = o->route_seed;
        if (seed == 0)
            randombytes_buf(&seed, sizeof(seed));
        os_rng_seed(&b->rng, seed);
    }
    if (!b->loopback && b->api_key == NULL) {
        os_log_error(log, "listening off loopback needs an API key");
        rc = OS_ERR_INVALID;
        goto fail;
    }
    if (stat(b->data_dir, &sb) != 0 && mkdir(b->data_dir, 0700) != 0 && errno != EEXIST) {
        os_log_error(log, "cannot create the data directory: %s", strerror(errno));
        rc = OS_ERR_IO;
        goto fail;
    }
    os_chain_config_default(&cc, b->rpc);
    cc.chain_id = o->chain_id;
    os_escrow_chain_config(&cc);
    if ((rc = os_chain_new(&b->chain, &cc)) != OS_OK) {
        os_log_error(log, "cannot set up the chain client: %s", os_strerror(rc));
        goto fail;
    }
    {
        by_peers_config pc = {
            .registries = (const char *const *)b->registries,
            .n_registries = b->n_registries,
            .chain_id = o->chain_id,
            .ttl_ms = b->opt.peers_ttl_ms,
            .log = log,
            .ca_file = o->ca_file,
        };
        memcpy(pc.escrow, o->escrow, 20);
        if ((rc = by_peers_new(&b->peers, &pc)) != OS_OK) {
            os_log_error(log, "cannot set up the registry client%s%s: %s",
                         o->ca_file != NULL ? " with ca_file " : "",
                         o->ca_file != NULL ? o->ca_file : "", os_strerror(rc));
            goto fail;
        }
    }
    {
        os_http_client_config hc = {
            .connect_timeout_ms = 5000,
            .timeout_ms = b->opt.request_timeout_ms,
            /* a seller silent this long (before its first byte or between events) is dropped */
            .low_speed_bytes = 1,
            .low_speed_time_s = (b->opt.first_byte_timeout_ms + 999) / 1000,
            .max_body = 64u << 20,
            .pool_size = 16,
            .ca_file = o->ca_file,
        };
        rc = os_http_client_new(&b->http, &hc);
        hc.low_speed_bytes = 0; /* whole answers: no stall cut-off */
        hc.low_speed_time_s = 0;
        if (rc == OS_OK)
            rc = os_http_client_new(&b->http_whole, &hc);
        if (rc != OS_OK) {
            os_log_error(log, "cannot set up the seller client%s%s: %s",
                         o->ca_file != NULL ? " with ca_file " : "",
                         o->ca_file != NULL ? o->ca_file : "", os_strerror(rc));
            goto fail;
        }
    }
    if ((rc = by_gateway_init(b)) != OS_OK)
        goto fail;
    *out = b;
    return OS_OK;
fail:
    by_buyer_free(b);
    return rc;
}

os_err by_buyer_start(by_buyer *b)
{
    os_chain_error cerr;
    char path[4096];
    os_err rc;

    if (b->started)
        return OS_OK;
    if (b->payer == NULL &&
        (rc = os_chain_signer_new(&b->payer, b->chain, &cerr, b->wallet_priv)) != OS_OK) {
        os_log_error(b->log, "cannot reach the chain: %s", cerr.message);
        return rc;
    }
    if (b->wallet == NULL) {
        by_wallet_config wc = {
            .chain = b->chain,
            .payer = b->payer,
            .db_path = path,
            .chain_id = b->opt.chain_id,
            .deposit = b->opt.deposit,
            .topup_below = b->opt.topup_below,
            .budget_request = b->opt.budget_request,
            .budget_day = b->opt.budget_day,
            .budget_channel = b->opt.budget_channel,
            .open_with_authorization = b->opt.open_with_authorization,
            .log = b->log,
        };
        snprintf(path, sizeof(path), "%s/buyer.db", b->data_dir);
        memcpy(wc.escrow, b->opt.escrow, 20);
        memcpy(wc.usdc, b->opt.usdc, 20);
        if ((rc = by_wallet_new(&b->wallet, &wc)) != OS_OK) {
            os_log_error(b->log, "cannot open buyer.db: %s", os_strerror(rc));
            return rc;
        }
        /* openWithAuthorization needs the payer's signature over the EIP-3009 authorization */
        if (b->opt.open_with_authorization &&
            (rc = by_wallet_set_payer_key(b->wallet, b->wallet_priv)) != OS_OK) {
            os_log_error(b->log, "cannot hand the wallet key to the channel opener: %s",
                         os_strerror(rc));
            return rc;
        }
        if ((rc = by_wallet_recover(b->wallet)) != OS_OK)
            os_log_warn(b->log, "channels could not all be re-read from the chain: %s",
                        os_strerror(rc));
    }
    if (b->server == NULL) {
        os_http_config hc = {
            .listen = b->listen,
            .threads = b->opt.http_threads,
            .max_body = b->opt.max_body,
            .log = b->log,
            .metrics = b->metrics,
            .metrics_prefix = "openseed_buyer_http",
            .max_streams = 256,
            .timeout_s = 600,
            /* every client of a local gateway has the same address: only the total is a limit */
            .max_connections = 1024,
            .per_ip_connections = 1024,
        };
        if ((rc = os_http_server_new(&b->server, &hc, by_routes, by_n_routes, b)) != OS_OK)
            return rc;
    }
    if ((rc = os_http_server_start(b->server)) != OS_OK) {
        os_log_error(b->log, "cannot listen on %s", b->listen);
        return rc;
    }
    b->started = true;
    {
        os_log_event ev;
        if (os_log_begin(&ev, b->log, OS_LOG_INFO, "buyer listening")) {
            os_log_kv(&ev, "port", "%u", (unsigned)os_http_server_port(b->server));
            os_log_kv(&ev, "registries", "%zu", b->n_registries);
            os_log_kv(&ev, "route", "%s", b->opt.route == BY_ROUTE_WEIGHTED ? "weighted" : "best");
            os_log_end(&ev);
        }
    }
    return OS_OK;
}

double by_route_draw(by_buyer *b)
{
    double u;

    pthread_mutex_lock(&b->rng_mu);
    u = os_rng_unit(&b->rng);
    pthread_mutex_unlock(&b->rng_mu);
    return u;
}

uint16_t by_buyer_port(const by_buyer *b)
{
    return b->server != NULL ? os_http_server_port(b->server) : 0;
}

void by_buyer_stop(by_buyer *b)
{
    if (b == NULL || !b->started)
        return;
    b->started = false;
    os_http_server_stop(b->server);
    os_log_info(b->log, "buyer stopped");
}

void by_buyer_free(by_buyer *b)
{
    if (b == NULL)
        return;
    by_buyer_stop(b);
    os_http_server_free(b->server);
    by_wallet_free(b->wallet);
    by_peers_free(b->peers);
    os_http_client_free(b->http);
    os_http_client_free(b->http_whole);
    os_chain_signer_free(b->payer);
    os_chain_free(b->chain);
    by_gateway_fini(b);
    if (b->rng_mu_ok)
        pthread_mutex_destroy(&b->rng_mu);
    if (b->wallet_priv != NULL)
        sodium_free(b->wallet_priv);
    if (b->api_key != NULL)
        sodium_free(b->api_key);
    for (size_t i = 0; i < b->n_registries; i++)
        free(b->registries[i]);
    free(b->registries);
    free(b->listen);
    free(b->data_dir);
    free(b->rpc);
    free(b);
}

os_err by_buyer_new(by_buyer **out, const by_config *cfg, const os_logger *log)
{
    char listen[OS_CFG_LISTEN_STR_LEN], err[ERRLEN];
    uint8_t *priv = sodium_malloc(32);
    char *key = NULL, *pass = NULL;
    by_options o;
    os_err rc;

    *out = NULL;
    if (priv == NULL)
        return OS_ERR_NOMEM;
    if (cfg->wallet_password_file != NULL) {
        if ((pass = sodium_malloc(1024)) == NULL) {
            rc = OS_ERR_NOMEM;
            goto out;
        }
        if ((rc = os_keyfile_read_text(pass, 1024, NULL, cfg->wallet_password_file, err,
                                       sizeof(err))) != OS_OK) {
            os_log_error(log, "wallet_password_file: %s", err);
            goto out;
        }
    }
    rc = os_keyfile_read_wallet(priv, cfg->wallet_key, pass, err, sizeof(err));
    if (pass != NULL) {
        os_wipe(pass, 1024);
        sodium_free(pass);
        pass = NULL;
    }
    if (rc != OS_OK) {
        os_log_error(log, "wallet_key: %s", err);
        goto out;
    }
    if (cfg->api_key_file != NULL) {
        if ((key = sodium_malloc(1024)) == NULL) {
            rc = OS_ERR_NOMEM;
            goto out;
        }
        if ((rc = os_keyfile_read_text(key, 1024, NULL, cfg->api_key_file, err, sizeof(err))) !=
            OS_OK) {
            os_log_error(log, "api_key_file: %s", err);
            goto out;
        }
    }
    by_options_default(&o);
    os_cfg_listen_format(listen, &cfg->node.listen);
    o.listen = listen;
    o.data_dir = cfg->node.data_dir;
    o.registries = (const char *const *)cfg->node.registry.items;
    o.n_registries = cfg->node.registry.n;
    o.rpc = cfg->node.rpc;
    o.ca_file = cfg->node.ca_file;
    o.chain_id = cfg->node.chain_id;
    memcpy(o.escrow, cfg->node.escrow.bytes, 20);
    memcpy(o.usdc, cfg->node.usdc.bytes, 20);
    o.wallet_priv = priv;
    o.api_key = key;
    o.deposit = cfg->deposit;
    o.topup_below = cfg->topup_below;
    o.budget_request = cfg->budget_request;
    o.budget_day = cfg->budget_day;
    o.budget_channel = cfg->budget_channel;
    o.open_with_authorization = cfg->open_with_authorization;
    o.max_input_price = cfg->max_input_price;
    o.max_output_price = cfg->max_output_price;
    o.max_attempts = (unsigned)cfg->max_attempts;
    o.max_body = (size_t)cfg->max_body;
    o.peers_ttl_ms = cfg->peers_ttl * 1000;
    o.request_timeout_ms = (long)cfg->request_timeout * 1000;
    o.route = (by_route)cfg->route; /* the table's choices are in by_route's order */
    o.route_seed = cfg->route_seed;
    rc = by_buyer_new_opts(out, &o, log);
out:
    sodium_free(priv);
    if (pass != NULL) {
        os_wipe(pass, 1024);
        sodium_free(pass);
    }
    if (key != NULL)
        sodium_free(key);
    return rc;
}
