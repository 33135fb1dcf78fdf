/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SellerNode (include/openseed/seller_node.h): the seller core (src/seller) behind the SDK's
 * configuration. It checks what the daemon's configuration loader would have checked (addresses,
 * URLs, the upstream and its API, the echo settings, each offering by the record's own rules and
 * against what the upstream speaks), logging the reason, maps the SDK's zero defaults onto the
 * core's options and forwards the lifecycle. Its stats and settle-now are the core's books
 * (src/seller/books.c): the admin API's revenue view and settle call.
 */
#include "openseed/seller_node.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/money.h"
#include "openseed/offering.h"

#include "sdk_internal.h"
#include "seller.h"

#define NODE "seller node"
#define ECHO_UPSTREAM "builtin:echo"
#define PPM_MAX 1000000u

struct os_seller_node {
    sl_seller *s;
    const os_logger *log;
    os_sdk_state state;
};

void os_seller_node_config_init(os_seller_node_config *c)
{
    memset(c, 0, sizeof(*c));
}

static os_err parse_api(sl_upstream_api *out, const char *api, const os_logger *log)
{
    static const struct {
        const char *name;
        sl_upstream_api api;
    } apis[] = {
        {"openai", SL_UPSTREAM_OPENAI},
        {"anthropic", SL_UPSTREAM_ANTHROPIC},
        {"ollama", SL_UPSTREAM_OLLAMA},
    };

    if (api == NULL) {
        *out = SL_UPSTREAM_OPENAI;
        return OS_OK;
    }
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
        if (strcmp(api, apis[i].name) == 0) {
            *out = apis[i].api;
            return OS_OK;
        }
    }
    os_log_error(log, NODE ": upstream_api must be openai, anthropic or ollama");
    return OS_ERR_INVALID;
}

/* The echo settings as the core takes them; checked even when another upstream is used, so a
 * typo never waits for the day the echo is switched on. */
static os_err echo_config(sl_echo_config *out, const os_echo_settings *e, const os_logger *log)
{
    memset(out, 0, sizeof(*out));
    if (e->fail != NULL && sl_echo_fail_parse(&out->fail, e->fail) != OS_OK) {
        os_log_error(log, NODE ": echo.fail must be none, 500, 429, drop-mid-stream or "
                               "slow-first-token");
        return OS_ERR_INVALID;
    }
    if (e->fail_ppm > PPM_MAX) {
        os_log_error(log, NODE ": echo.fail_ppm must be at most %u", PPM_MAX);
        return OS_ERR_INVALID;
    }
    out->latency_ms = e->latency_ms;
    out->tokens_per_s = e->tokens_per_s;
    out->fail_ppm = e->fail_ppm;
    out->fail_seed = e->fail_seed;
    return OS_OK;
}

/* Each offering passes the record's checks (serialised and read back as a registry would) and
 * names only APIs the upstream speaks. */
static os_err check_offerings(const os_seller_node_config *c, bool echo, sl_upstream_api api)
{
    const unsigned openai = OS_API_OPENAI_CHAT | OS_API_OPENAI_EMBEDDINGS;
    const unsigned speaks = echo                           ? openai | OS_API_ANTHROPIC_MESSAGES
                            : api == SL_UPSTREAM_ANTHROPIC ? OS_API_ANTHROPIC_MESSAGES
                                                           : openai;
    const char *upstream = echo ? ECHO_UPSTREAM : c->upstream_api ? c->upstream_api : "openai";
    char err[OS_RECORD_ERR_LEN];

    if (c->n_offerings == 0) {
        if (echo)
            return OS_OK; /* the core sells its built-in echo offering */
        os_log_error(c->log, NODE ": offerings are required (what this seller sells)");
        return OS_ERR_INVALID;
    }
    if (c->offerings == NULL || c->n_offerings > OS_RECORD_MAX_OFFERINGS) {
        os_log_error(c->log, NODE ": offerings must hold 1 to %d entries", OS_RECORD_MAX_OFFERINGS);
        return OS_ERR_INVALID;
    }
    for (size_t i = 0; i < c->n_offerings; i++) {
        os_offering back;
        json_t *j = os_offering_to_json(&c->offerings[i]);
        os_err rc;

        if (j == NULL) {
            os_log_error(c->log, NODE ": offering %zu cannot be serialised", i);
            return OS_ERR_INVALID;
        }
        err[0] = '\0';
        rc = os_offering_from_json(&back, j, err, sizeof(err));
        json_decref(j);
        if (rc != OS_OK) {
            os_log_error(c->log, NODE ": offering %zu: %s", i, err);
            return OS_ERR_INVALID;
        }
        if ((c->offerings[i].apis & ~speaks) != 0) {
            os_log_error(c->log, NODE ": offering %zu names an API the %s upstream does not speak",
                         i, upstream);
            return OS_ERR_INVALID;
        }
    }
    return OS_OK;
}

static os_err check_config(const os_seller_node_config *c, const char *listen, const char *upstream)
{
    const os_logger *log = c->log;
    os_cfg_listen l, a;

    if (os_sdk_check_listen(&l, listen, "listen", NODE, log) != OS_OK ||
        os_sdk_required(c->data_dir, "data_dir", NODE, log) != OS_OK ||
        os_sdk_required(c->rpc, "rpc", NODE, log) != OS_OK ||
        os_sdk_check_url(c->rpc, "rpc", NODE, log) != OS_OK ||
        os_sdk_check_urls(c->registries, c->n_registries, false, "registry", NODE, log) != OS_OK ||
        os_sdk_required_address(c->escrow, "escrow", NODE, log) != OS_OK ||
        os_sdk_required_address(c->usdc, "usdc", NODE, log) != OS_OK)
        return OS_ERR_INVALID;
    if (c->chain_id == 0) {
        os_log_error(log, NODE ": chain_id is required");
        return OS_ERR_INVALID;
    }
    if (c->endpoint != NULL && os_sdk_check_url(c->endpoint, "endpoint", NODE, log) != OS_OK)
        return OS_ERR_INVALID;
    if (c->admin_listen != NULL) {
        if (os_sdk_check_listen(&a, c->admin_listen, "admin_listen", NODE, log) != OS_OK)
            return OS_ERR_INVALID;
        /* the admin token is generated into data_dir: fine on loopback only */
        if (!os_cfg_listen_is_loopback(&a)) {
            os_log_error(log, NODE ": admin_listen must be a loopback address");
            return OS_ERR_INVALID;
        }
        if (a.port != 0 && a.port == l.port && strcmp(a.host, l.host) == 0) {
            os_log_error(log, NODE ": admin_listen must differ from listen");
            return OS_ERR_INVALID;
        }
    }
    if (strcmp(upstream, ECHO_UPSTREAM) != 0 &&
        os_sdk_check_url(upstream, "upstream", NODE, log) != OS_OK)
        return OS_ERR_INVALID;
    return OS_OK;
}

os_err os_seller_node_new(os_seller_node **out, const os_seller_node_config *c)
{
    os_seller_node *n;
    sl_options o;
    sl_echo_config ec;
    sl_upstream_api api;
    const char *listen, *upstream;
    bool echo;
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (c == NULL) {
        os_log_error(NULL, NODE ": no configuration");
        return OS_ERR_INVALID;
    }
    listen = c->listen != NULL ? c->listen : OS_SDK_DEFAULT_LISTEN;
    upstream = c->upstream != NULL ? c->upstream : ECHO_UPSTREAM;
    echo = strcmp(upstream, ECHO_UPSTREAM) == 0;
    if (check_config(c, listen, upstream) != OS_OK ||
        parse_api(&api, c->upstream_api, c->log) != OS_OK ||
        echo_config(&ec, &c->echo, c->log) != OS_OK || check_offerings(c, echo, api) != OS_OK)
        return OS_ERR_INVALID;

    sl_options_default(&o);
    o.listen = listen;
    o.admin_listen = c->admin_listen; /* NULL: no admin API (the core's default is one) */
    o.data_dir = c->data_dir;
    o.node_key = c->node_key_file;
    o.endpoint = c->endpoint;
    o.registries = c->registries;
    o.n_registries = c->n_registries;
    o.rpc = c->rpc;
    o.ca_file = c->ca_file;
    o.chain_id = c->chain_id;
    memcpy(o.escrow, c->escrow, 20);
    memcpy(o.usdc, c->usdc, 20);
    o.upstream = upstream;
    o.upstream_api = api;
    o.upstream_key = c->upstream_key;
    o.echo = echo ? &ec : NULL;
    o.upstream_concurrency = c->upstream_concurrency;
    o.offerings = c->n_offerings > 0 ? c->offerings : NULL;
    o.n_offerings = c->n_offerings;
    o.settle_threshold = c->settle_threshold;
    o.settle_interval_ms = c->settle_interval_ms;
    o.http_threads = c->http_threads;

    if ((n = calloc(1, sizeof(*n))) == NULL)
        return OS_ERR_NOMEM;
    n->log = c->log;
    if ((rc = sl_seller_new_opts(&n->s, &o, c->log)) != OS_OK) {
        os_log_error(c->log, NODE ": cannot create the seller: %s", os_strerror(rc));
        free(n);
        return rc;
    }
    *out = n;
    return OS_OK;
}

os_err os_seller_node_start(os_seller_node *n)
{
    os_err rc;

    if (n == NULL)
        return OS_ERR_INVALID;
    if ((rc = os_sdk_start_check(n->state, NODE, n->log)) != OS_OK)
        return rc == OS_ERR_EXISTS ? OS_OK : rc;
    /* a failed start has torn down what it started */
    return os_sdk_start_done(&n->state, sl_seller_start(n->s), NODE, n->log);
}

void os_seller_node_stop(os_seller_node *n)
{
    if (n == NULL || n->state == OS_SDK_STOPPED)
        return;
    sl_seller_stop(n->s);
    n->state = OS_SDK_STOPPED;
}

void os_seller_node_free(os_seller_node *n)
{
    if (n == NULL)
        return;
    os_seller_node_stop(n);
    sl_seller_free(n->s);
    free(n);
}

uint16_t os_seller_node_port(const os_seller_node *n)
{
    return n != NULL && n->state == OS_SDK_STARTED ? sl_seller_port(n->s) : 0;
}

uint16_t os_seller_node_admin_port(const os_seller_node *n)
{
    return n != NULL && n->state == OS_SDK_STARTED ? sl_seller_admin_port(n->s) : 0;
}

void os_seller_node_address(const os_seller_node *n, uint8_t out[20])
{
    if (n == NULL) {
        memset(out, 0, 20);
        return;
    }
    sl_seller_address(n->s, out);
}

os_err os_seller_node_stats(os_seller_node *n, os_seller_stats *out)
{
    sl_seller_totals t;
    os_err rc;

    if (n == NULL || out == NULL)
        return OS_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if ((rc = sl_seller_totals_get(n->s, &t)) != OS_OK) {
        os_log_error(n->log, NODE ": cannot read seller.db: %s", os_strerror(rc));
        return rc;
    }
    out->requests = t.requests;
    out->errors = t.errors;
    out->earned = t.consumed;
    out->settled = t.claimed;
    out->unclaimed = t.unclaimed;
    out->channels = t.channels;
    return OS_OK;
}

/* The report's rows: what confirmed claims paid, and how many claims did not go through. */
static os_err sum_claims(uint64_t *paid, size_t *failed, const json_t *report)
{
    const json_t *row;
    size_t i;

    *paid = 0;
    *failed = 0;
    json_array_foreach(json_object_get(report, "settlements"), i, row)
    {
        const char *status = json_string_value(json_object_get(row, "status"));
        uint64_t amount;
        if (status == NULL || strcmp(status, "confirmed") != 0) {
            (*failed)++;
            continue;
        }
        if (os_money_parse_json(&amount, json_object_get(row, "amount")) != OS_OK ||
            *paid > UINT64_MAX - amount)
            return OS_ERR_RANGE;
        *paid += amount;
    }
    return OS_OK;
}

os_err os_seller_node_settle(os_seller_node *n, uint64_t *claimed)
{
    json_t *report = NULL;
    uint64_t paid = 0;
    size_t failed = 0;
    os_err rc;

    if (claimed != NULL)
        *claimed = 0;
    if (n == NULL)
        return OS_ERR_INVALID;
    if (n->state == OS_SDK_NEW) {
        os_log_error(n->log, NODE ": settle needs a started node (its channels are loaded then)");
        return OS_ERR_INVALID;
    }
    if ((rc = sl_seller_settle(n->s, &report)) != OS_OK) {
        os_log_error(n->log, NODE ": settle failed: %s", os_strerror(rc));
        return rc;
    }
    rc = sum_claims(&paid, &failed, report);
    json_decref(report);
    if (rc != OS_OK) {
        os_log_error(n->log, NODE ": settle: unreadable report");
        return rc;
    }
    if (claimed != NULL)
        *claimed = paid;
    if (failed > 0) {
        /* each failure is logged by the core with its reason */
        os_log_warn(n->log, NODE ": %zu claims failed; %" PRIu64 " micro-USDC claimed", failed,
                    paid);
        return OS_ERR_NETWORK;
    }
    return OS_OK;
}
