/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RegistryNode (include/openseed/registry_node.h): the registry core (src/registry) behind the
 * SDK's configuration. It checks what the core would refuse without saying why, keeps
 * registry.db in data_dir (made 0700 when missing), maps the SDK's zero defaults onto the
 * core's options and forwards the lifecycle; the URL it gives out is the one others dial.
 */
#include "openseed/registry_node.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "sdk_internal.h"

#define NODE "registry node"
#define HEARTBEAT_MIN_MS 100 /* the core's bounds on heartbeat_interval_ms */
#define HEARTBEAT_MAX_MS UINT64_C(86400000)
#define RESCORE_MIN_MS 50

struct os_registry_node {
    rg_registry *rg;
    const os_logger *log;
    os_cfg_listen listen; /* as configured, for the URL */
    os_sdk_state state;
};

void os_registry_node_config_init(os_registry_node_config *c)
{
    memset(c, 0, sizeof(*c));
}

static os_err check_config(const os_registry_node_config *c, os_cfg_listen *l, const char *listen)
{
    const os_logger *log = c->log;

    if (os_sdk_check_listen(l, listen, "listen", NODE, log) != OS_OK ||
        os_sdk_required(c->data_dir, "data_dir", NODE, log) != OS_OK)
        return OS_ERR_INVALID;
    if (c->chain_id == 0) {
        os_log_error(log, NODE ": chain_id is required");
        return OS_ERR_INVALID;
    }
    if (c->rpc != NULL && os_sdk_check_url(c->rpc, "rpc", NODE, log) != OS_OK)
        return OS_ERR_INVALID;
    if (c->heartbeat_interval_ms != 0 && (c->heartbeat_interval_ms < HEARTBEAT_MIN_MS ||
                                          c->heartbeat_interval_ms > HEARTBEAT_MAX_MS)) {
        os_log_error(log, NODE ": heartbeat_interval_ms must be %d..%" PRIu64 " (or 0)",
                     HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS);
        return OS_ERR_INVALID;
    }
    if (c->rescore_interval_ms != 0 && c->rescore_interval_ms < RESCORE_MIN_MS) {
        os_log_error(log, NODE ": rescore_interval_ms must be at least %d (or 0)", RESCORE_MIN_MS);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

os_err os_registry_node_new(os_registry_node **out, const os_registry_node_config *c)
{
    os_registry_node *r;
    rg_options o;
    char db[4096];
    const char *listen;
    int n;
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (c == NULL) {
        os_log_error(NULL, NODE ": no configuration");
        return OS_ERR_INVALID;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return OS_ERR_NOMEM;
    r->log = c->log;
    listen = c->listen != NULL ? c->listen : OS_SDK_DEFAULT_LISTEN;
    if ((rc = check_config(c, &r->listen, listen)) != OS_OK)
        goto fail;
    n = snprintf(db, sizeof(db), "%s/registry.db", c->data_dir);
    if (n < 0 || (size_t)n >= sizeof(db)) {
        os_log_error(c->log, NODE ": data_dir is too long");
        rc = OS_ERR_INVALID;
        goto fail;
    }
    if ((rc = os_sdk_mkdir_private(c->data_dir, NODE, c->log)) != OS_OK)
        goto fail;

    rg_options_default(&o);
    o.listen = listen;
    o.db_path = db;
    o.chain_id = c->chain_id;
    if (c->escrow != NULL) {
        o.has_escrow = true;
        memcpy(o.escrow, c->escrow, 20);
    }
    o.rpc = c->rpc;
    if (c->heartbeat_interval_ms != 0)
        o.heartbeat_interval_ms = c->heartbeat_interval_ms;
    if (c->rescore_interval_ms != 0)
        o.rescore_interval_ms = c->rescore_interval_ms;
    o.rate_per_s = c->rate_per_s; /* 0 disables, as in the core */
    o.rate_burst = 0;             /* the core's 2 * rate_per_s */
    if (c->http_threads != 0)
        o.http_threads = c->http_threads;
    if ((rc = rg_registry_new_opts(&r->rg, &o, c->log)) != OS_OK) {
        os_log_error(c->log, NODE ": cannot create the registry: %s", os_strerror(rc));
        goto fail;
    }
    *out = r;
    return OS_OK;
fail:
    free(r);
    return rc;
}

os_err os_registry_node_start(os_registry_node *r)
{
    os_err rc;

    if (r == NULL)
        return OS_ERR_INVALID;
    if ((rc = os_sdk_start_check(r->state, NODE, r->log)) != OS_OK)
        return rc == OS_ERR_EXISTS ? OS_OK : rc;
    /* a failed start has stopped the core already */
    return os_sdk_start_done(&r->state, rg_registry_start(r->rg), NODE, r->log);
}

uint16_t os_registry_node_port(const os_registry_node *r)
{
    return r != NULL && r->state == OS_SDK_STARTED ? rg_registry_port(r->rg) : 0;
}

os_err os_registry_node_url(const os_registry_node *r, char *out, size_t cap)
{
    uint16_t port = os_registry_node_port(r);

    if (out == NULL || cap == 0)
        return OS_ERR_INVALID;
    out[0] = '\0';
    if (port == 0)
        return OS_ERR_INVALID;
    return os_cfg_listen_url(out, cap, &r->listen, port);
}

void os_registry_node_stop(os_registry_node *r)
{
    if (r == NULL || r->state == OS_SDK_STOPPED)
        return;
    rg_registry_stop(r->rg); /* also before start: closes the store */
    r->state = OS_SDK_STOPPED;
}

void os_registry_node_free(os_registry_node *r)
{
    if (r == NULL)
        return;
    os_registry_node_stop(r);
    rg_registry_free(r->rg);
    free(r);
}
