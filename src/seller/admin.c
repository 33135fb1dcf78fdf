/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's admin API, on its own listener (127.0.0.1:8380 by default), every route behind
 * `Authorization: Bearer <admin token>` compared in constant time:
 *   GET  /admin/v1/channels                      channels, consumed, credit, latest voucher
 *   GET  /admin/v1/vouchers?channel=0x…&limit=N  accepted vouchers, newest first
 *   GET  /admin/v1/requests?channel=0x…&limit=N  requests with tokens, cost, latency, outcome
 *   GET  /admin/v1/revenue                       totals (consumed, claimed, unclaimed, tokens, gas)
 *   GET  /admin/v1/settlements?limit=N           claims sent, with transaction hash and gas
 *   POST /admin/v1/settle  {"channel_id":"0x…"}  claim now (one channel, or all with {} / no body)
 * Answers are JSON; errors have the OpenAI shape.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/json.h"

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

static bool limit_arg(const os_http_request *req, os_http_response *res, unsigned *limit)
{
    const char *v = os_http_req_query(req, "limit");
    char *end = NULL;
    unsigned long long n;

    *limit = DEFAULT_LIMIT;
    if (v == NULL)
        return true;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0' || n < 1 || n > MAX_LIMIT) {
        os_http_res_error(res, 400, "invalid_request_error", "invalid_limit",
                          "limit must be 1..%d", MAX_LIMIT);
        return false;
    }
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

const os_http_route sl_admin_routes[] = {
    {"GET", "/admin/v1/channels", h_channels, 1},
    {"GET", "/admin/v1/vouchers", h_vouchers, 1},
    {"GET", "/admin/v1/requests", h_requests, 1},
    {"GET", "/admin/v1/revenue", h_revenue, 1},
    {"GET", "/admin/v1/settlements", h_settlements, 1},
    {"POST", "/admin/v1/settle", h_settle, 1},
};
const size_t sl_n_admin_routes = sizeof(sl_admin_routes) / sizeof(sl_admin_routes[0]);
