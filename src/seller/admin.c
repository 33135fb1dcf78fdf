/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's admin API, on its own listener (127.0.0.1:8380 by default), every route behind
 * `Authorization: Bearer <admin token>` compared in constant time:
 *   GET  /admin/v1/channels                      channels, consumed, credit, latest voucher
 *   GET  /admin/v1/vouchers?channel=0x…&limit=N  accepted vouchers, newest first
 *   GET  /admin/v1/requests?channel=0x…&limit=N  requests with tokens, cost, latency, outcome
 *   GET  /admin/v1/revenue                       totals (consumed, claimed, unclaimed, tokens, gas)
 *   GET  /admin/v1/revenue/series?step=S&points=N  revenue, requests, tokens per time bucket
 *   GET  /admin/v1/models                        per service: totals, errors, latency percentiles
 *   GET  /admin/v1/status                        identity, uptime, each registry's heartbeat state
 *   GET  /admin/v1/settlements?limit=N           claims sent, with transaction hash and gas
 *   POST /admin/v1/settle  {"channel_id":"0x…"}  claim now (one channel, or all with {} / no body)
 * and, without a token (they hold no data; the page asks for the token and sends it on each call),
 *   GET  /dashboard/                              the dashboard's files (web/seller, web/common)
 * Answers are JSON (money as decimal strings of micro-USDC, times as Unix seconds); errors have
 * the OpenAI shape. docs/seller-admin-api.md is the reference. The views are read-only and go
 * through the ledger's own read connection, so a dashboard polling them never delays a paid
 * request.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/json.h"
#include "openseed/web.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

static bool authorized(sl_seller *s, const os_http_request *req, os_http_response *res)
{
    const char *h = os_http_req_header(req, "Authorization");

    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0 && s->sec != NULL &&
        s->sec->admin_token[0] != '\0' && os_ct_streq(h + 7, s->sec->admin_token))
        return true;
    if (os_http_res_header(res, "WWW-Authenticate", "Bearer") != OS_OK)
        os_log_debug(s->log, "cannot set WWW-Authenticate");
    os_http_res_error(res, 401, "authentication_error", "invalid_token",
                      "the admin API needs Authorization: Bearer <the admin token>");
    return false;
}

/* The optional channel=0x… argument: false (and res set) when present but malformed. */
static bool channel_arg(const os_http_request *req, os_http_response *res, uint8_t id[32],
                        bool *has)
{
    const char *v = os_http_req_query(req, "channel");

    *has = false;
    if (v == NULL)
        return true;
    if (strncmp(v, "0x", 2) != 0 || os_hex_decode_exact(id, 32, v) != OS_OK) {
        os_http_res_error(res, 400, "invalid_request_error", "invalid_channel",
                          "channel must be 0x and 64 hex digits");
        return false;
    }
    *has = true;
    return true;
}

/* The optional decimal argument key in min..max (def when absent): false (and res set to a 400
 * with code) when present but not plain digits in range. */
static bool uint_arg(const os_http_request *req, os_http_response *res, const char *key,
                     unsigned long long def, unsigned long long min, unsigned long long max,
                     const char *code, unsigned long long *out)
{
    uint64_t n;

    if (os_http_req_query_uint(req, key, min, max, def, &n) != OS_OK) {
        os_http_res_error(res, 400, "invalid_request_error", code, "%s must be %llu..%llu", key,
                          min, max);
        return false;
    }
    *out = n;
    return true;
}

static bool limit_arg(const os_http_request *req, os_http_response *res, unsigned *limit)
{
    unsigned long long n;

    if (!uint_arg(req, res, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, "invalid_limit", &n))
        return false;
    *limit = (unsigned)n;
    return true;
}

static void reply(os_http_response *res, json_t *v)
{
    if (v == NULL || os_http_res_json(res, 200, v) != OS_OK)
        os_http_res_error(res, 500, "server_error", NULL, "cannot read seller.db");
}

static void h_channels(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    if (authorized(s, req, res))
        reply(res, sl_ledger_channels_json(s->ledger));
}

static void h_vouchers(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    uint8_t id[32];
    unsigned limit;
    bool has;

    if (authorized(s, req, res) && channel_arg(req, res, id, &has) && limit_arg(req, res, &limit))
        reply(res, sl_ledger_vouchers_json(s->ledger, has ? id : NULL, limit));
}

static void h_requests(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    uint8_t id[32];
    unsigned limit;
    bool has;

    if (authorized(s, req, res) && channel_arg(req, res, id, &has) && limit_arg(req, res, &limit))
        reply(res, sl_ledger_requests_json(s->ledger, has ? id : NULL, limit));
}

static void h_revenue(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    if (authorized(s, req, res))
        reply(res, sl_ledger_revenue_json(s->ledger));
}

static void h_series(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    unsigned long long step, points;

    if (authorized(s, req, res) &&
        uint_arg(req, res, "step", 60, 1, SL_SERIES_STEP_MAX, "invalid_step", &step) &&
        uint_arg(req, res, "points", 60, 1, SL_SERIES_POINTS_MAX, "invalid_points", &points))
        reply(res, sl_ledger_series_json(s->ledger, (int64_t)time(NULL), step, (unsigned)points));
}

static void h_models(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    if (authorized(s, req, res))
        reply(res, sl_ledger_models_json(s->ledger));
}

/* A URL as the status shows it: without user info; NULL for NULL. */
static json_t *j_url(const char *url)
{
    char buf[SL_REGISTRY_URL_MAX];

    if (url == NULL)
        return json_null();
    if (os_url_without_userinfo(buf, sizeof(buf), url) != OS_OK)
        return json_string("?");
    return json_string(buf);
}

/* Unix seconds, or null for 0 (never). */
static json_t *j_when(int64_t t)
{
    return t != 0 ? json_integer(t) : json_null();
}

static json_t *registry_json(const sl_registry_status *r)
{
    json_t *err = r->last_error[0] != '\0' ? json_string(r->last_error) : json_null();

    return json_pack("{s:o,s:b,s:o,s:o,s:o,s:I,s:o,s:I,s:I}", "url", j_url(r->url), "registered",
                     r->registered, "last_ok_at", j_when(r->last_ok_at), "last_attempt_at",
                     j_when(r->last_attempt_at), "last_op",
                     r->last_op != NULL ? json_string(r->last_op) : json_null(), "failures",
                     (json_int_t)(r->failures > INT64_MAX ? INT64_MAX : r->failures), "last_error",
                     err != NULL ? err : json_string("?"), "heartbeat_interval_s",
                     (json_int_t)r->heartbeat_interval_s, "next_in_s", (json_int_t)r->next_in_s);
}

static json_t *status_json(sl_seller *s)
{
    char node[OS_ADDRESS_STR_LEN];
    sl_announcer *a;
    sl_announcer_stats st = {0};
    sl_registry_status *regs = NULL;
    size_t n = 0;
    json_t *o, *arr, *endpoint;
    int64_t up = (sl_mono_ms() - s->started_mono_ms) / 1000;

    pthread_mutex_lock(&s->info_mu);
    a = s->announcer;
    endpoint = j_url(s->endpoint);
    pthread_mutex_unlock(&s->info_mu);
    if (a != NULL) {
        sl_announcer_get_stats(a, &st);
        if (sl_announcer_registries(a, &regs, &n) != OS_OK) {
            json_decref(endpoint);
            return NULL;
        }
    }
    if ((arr = json_array()) != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (json_array_append_new(arr, registry_json(&regs[i])) != 0) {
                json_decref(arr);
                arr = NULL;
                break;
            }
        }
    }
    free(regs);
    os_eip55_format(node, s->node);
    /* The node key's address is both the node id and the payee (payTo) of every channel. */
    o = json_pack("{s:s,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "node", node, "seller",
                  os_json_address(s->node), "endpoint", endpoint, "started_at",
                  (json_int_t)s->started_at_s, "uptime_s", (json_int_t)(up > 0 ? up : 0),
                  "announces_ok", (json_int_t)st.announces_ok, "announces_failed",
                  (json_int_t)st.announces_failed, "heartbeats_ok", (json_int_t)st.heartbeats_ok,
                  "heartbeats_failed", (json_int_t)st.heartbeats_failed, "reannounces",
                  (json_int_t)st.reannounces, "registries", arr);
    return o;
}

static void h_status(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    json_t *v;

    if (!authorized(s, req, res))
        return;
    v = status_json(s);
    if (v == NULL || os_http_res_json(res, 200, v) != OS_OK)
        os_http_res_error(res, 500, "server_error", NULL, "cannot build the status");
}

static void h_settlements(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    unsigned limit;

    if (authorized(s, req, res) && limit_arg(req, res, &limit))
        reply(res, sl_ledger_settlements_json(s->ledger, limit));
}

static void h_settle(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    json_t *body = NULL, *report = NULL;
    uint8_t id[32];
    bool one = false;
    size_t len = 0;
    os_err rc;

    if (!authorized(s, req, res))
        return;
    (void)os_http_req_body(req, &len);
    if (len > 0) {
        static const char *const keys[] = {"channel_id", NULL};
        const char *v;
        if (os_http_req_json(&body, req, res, 4) != OS_OK)
            return;
        if (!json_is_object(body) || os_json_check_keys(body, keys, NULL, 0) != OS_OK) {
            os_http_res_error(res, 400, "invalid_request_error", "invalid_body",
                              "the body is {} or {\"channel_id\":\"0x…\"}");
            goto out;
        }
        if ((v = json_string_value(json_object_get(body, "channel_id"))) != NULL) {
            if (strncmp(v, "0x", 2) != 0 || os_hex_decode_exact(id, 32, v) != OS_OK) {
                os_http_res_error(res, 400, "invalid_request_error", "invalid_channel",
                                  "channel_id must be 0x and 64 hex digits");
                goto out;
            }
            one = true;
        } else if (json_object_get(body, "channel_id") != NULL) {
            os_http_res_error(res, 400, "invalid_request_error", "invalid_channel",
                              "channel_id must be a string");
            goto out;
        }
    }
    rc = sl_chans_settle(s->chans, &report, one ? id : NULL);
    if (rc == OS_ERR_NOTFOUND)
        os_http_res_error(res, 404, "invalid_request_error", "unknown_channel",
                          "no such channel pays this seller");
    else if (rc != OS_OK)
        os_http_res_error(res, 500, "server_error", NULL, "settlement failed: %s",
                          os_strerror(rc));
    else
        reply(res, json_incref(report));
out:
    json_decref(report);
    json_decref(body);
}

static void h_dashboard(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    os_web_serve(req, res, sl_web_assets, sl_web_assets_n);
}

/* Exact paths except /dashboard/ * (a trailing '*' makes a prefix route); one line per route. */
const os_http_route sl_admin_routes[] = {
    {"GET", "/admin/v1/channels", h_channels, 1},
    {"GET", "/admin/v1/vouchers", h_vouchers, 1},
    {"GET", "/admin/v1/requests", h_requests, 1},
    {"GET", "/admin/v1/revenue", h_revenue, 1},
    {"GET", "/admin/v1/revenue/series", h_series, 1},
    {"GET", "/admin/v1/models", h_models, 1},
    {"GET", "/admin/v1/status", h_status, 1},
    {"GET", "/admin/v1/settlements", h_settlements, 1},
    {"POST", "/admin/v1/settle", h_settle, 1},
    {"GET", "/dashboard", h_dashboard, 1},
    {"GET", "/dashboard/*", h_dashboard, 1},
};
const size_t sl_n_admin_routes = sizeof(sl_admin_routes) / sizeof(sl_admin_routes[0]);
