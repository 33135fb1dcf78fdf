/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway's routes (PROTOCOL.md §9) and the checks every client request passes first:
 *   - the Host guard: while listening on loopback, a request whose Host is not a loopback name
 *     (localhost, an IPv4 address in 127.0.0.0/8, [::1], any port) is refused, so a web page
 *     cannot reach the gateway through DNS rebinding; no CORS headers are ever sent, so browsers
 *     do not share answers; and a request that a browser sent for a page of another site (an
 *     Origin that is not this machine) is refused before it can spend, since "simple" requests
 *     (a form, text/plain) are sent without asking first;
 *   - the optional API key (Authorization: Bearer, or x-api-key for Anthropic clients), compared
 *     in constant time;
 *   - the body: JSON, within max_body (413 otherwise, from the server), an object.
 * Errors are in the client API's own shape: OpenAI's {"error":{message,type,param,code}} on /v1/chat
 * and /v1/embeddings, Anthropic's {"type":"error","error":{type,message}} on /v1/messages.
 * The client APIs are relayed by relay.c; /v1/models lists the registries' services; the
 * management JSON (/openseed/v1/ledger, channels, peers, spend, spend/series; docs/buyer-api.md)
 * comes from the wallet and the directory; POST /openseed/v1/channels opens a channel to a seller
 * now, …/{id}/topup adds to its deposit, and …/{id}/close and …/withdraw end it. /dashboard/
 * serves the browser dashboard that reads that JSON (docs/dashboards.md).
 */
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/json.h"
#include "openseed/money.h"
#include "openseed/secp.h"
#include "openseed/web.h"

#include "translate.h"

#define JSON_DEPTH 64

static const char *const outcomes[] = {"ok", "error", "refused", NULL};
static const char *const classes[] = {"input", "output", NULL};

os_err by_gateway_init(by_buyer *b)
{
    static const double lat[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60};
    os_err rc;

    if ((rc = os_metrics_new(&b->metrics)) != OS_OK)
        return rc;
    if ((rc = os_metrics_counter(b->metrics, &b->m_requests, "openseed_buyer_requests_total",
                                 "client requests by outcome", "outcome", outcomes)) != OS_OK ||
        (rc = os_metrics_counter(b->metrics, &b->m_spent, "openseed_buyer_spent_micro_usdc_total",
                                 "micro-USDC charged by sellers (whole answers)", NULL, NULL)) !=
            OS_OK ||
        (rc = os_metrics_counter(b->metrics, &b->m_tokens, "openseed_buyer_tokens_total",
                                 "tokens bought, by class", "class", classes)) != OS_OK ||
        (rc = os_metrics_counter(b->metrics, &b->m_failovers, "openseed_buyer_failovers_total",
                                 "requests moved to another seller", NULL, NULL)) != OS_OK ||
        (rc = os_metrics_histogram(b->metrics, &b->m_ttft_s, "openseed_buyer_ttft_seconds",
                                   "time to the first byte of an answer", NULL, NULL, lat,
                                   sizeof(lat) / sizeof(lat[0]))) != OS_OK)
        return rc;
    return OS_OK;
}

void by_gateway_fini(by_buyer *b)
{
    os_metrics_free(b->metrics);
    b->metrics = NULL;
}

void by_client_error(os_http_response *res, by_client_api api, unsigned status, const char *type,
                     const char *code, const char *fmt, ...)
{
    char msg[320];
    json_t *v;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (api == BY_CLIENT_ANTHROPIC_MESSAGES)
        v = by_anthropic_error(by_anthropic_error_type(status), msg);
    else
        v = by_openai_error(type, code, msg);
    if (v == NULL || os_http_res_json(res, status, v) != OS_OK)
        os_http_res_error(res, 500, "api_error", NULL, "out of memory");
}

/* ---- the checks ---- */

/* What follows a host: nothing, or ':' and a port of 1 to 5 digits. */
static bool port_ok(const char *p)
{
    size_t n = 0;

    if (*p == '\0')
        return true;
    if (*p++ != ':')
        return false;
    while (p[n] >= '0' && p[n] <= '9')
        n++;
    return n >= 1 && n <= 5 && p[n] == '\0';
}

/* host[:port] names this machine: localhost, an IPv4 address in 127.0.0.0/8 or the IPv6
 * loopback in brackets. Whole names only: 127.evil.example or localhost.evil.example are names
 * in someone's DNS, which is what a rebinding page uses. */
static bool host_is_loopback(const char *host)
{
    char h[256];
    const char *rest;
    struct in_addr a4;
    struct in6_addr a6;
    size_t n;

    if (host == NULL)
        return false;
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (end == NULL)
            return false;
        n = (size_t)(end - host - 1);
        rest = end + 1;
        if (n >= sizeof(h))
            return false;
        memcpy(h, host + 1, n);
        h[n] = '\0';
        return port_ok(rest) && inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    n = strcspn(host, ":");
    rest = host + n;
    if (n >= sizeof(h) || !port_ok(rest))
        return false;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0)
        return true;
    return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* No Origin (clients that are not browsers send none), or a page served from this machine.
 * "null" (sandboxed pages, file://) and every other site are not. */
static bool origin_is_local(const char *origin)
{
    if (origin == NULL)
        return true;
    if (strncasecmp(origin, "http://", 7) == 0)
        return host_is_loopback(origin + 7);
    if (strncasecmp(origin, "https://", 8) == 0)
        return host_is_loopback(origin + 8);
    return false;
}

static bool admitted(by_buyer *b, const os_http_request *req, os_http_response *res,
                     by_client_api api)
{
    if (b->loopback && !host_is_loopback(os_http_req_header(req, "Host"))) {
        by_client_error(res, api, 403, "permission_error", "forbidden_host",
                        "the gateway answers only requests addressed to localhost (Host)");
        return false;
    }
    if (!origin_is_local(os_http_req_header(req, "Origin"))) {
        by_client_error(res, api, 403, "permission_error", "forbidden_origin",
                        "the gateway does not answer web pages of other sites (Origin)");
        return false;
    }
    if (b->api_key != NULL) {
        const char *h = os_http_req_header(req, "Authorization");
        const char *k = os_http_req_header(req, "x-api-key");
        const char *given = h != NULL && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : k;
        if (given == NULL || !os_ct_streq(given, b->api_key)) {
            by_client_error(res, api, 401, "authentication_error", "invalid_api_key",
                            "a valid API key is required (Authorization: Bearer …)");
            return false;
        }
    }
    return true;
}

/* The body as a JSON object; false (with the error written) otherwise. */
static bool body_json(const os_http_request *req, os_http_response *res, by_client_api api,
                      json_t **out)
{
    size_t len = 0;
    const char *body = os_http_req_body(req, &len);
    char err[OS_JSON_ERR_LEN];

    *out = NULL;
    if (len == 0) {
        by_client_error(res, api, 400, "invalid_request_error", "invalid_body",
                        "the request needs a JSON body");
        return false;
    }
    if (os_json_parse(out, body, len, len, JSON_DEPTH, err, sizeof(err)) != OS_OK) {
        by_client_error(res, api, 400, "invalid_request_error", "invalid_json",
                        "the body is not valid JSON: %s", err);
        return false;
    }
    if (!json_is_object(*out)) {
        by_client_error(res, api, 400, "invalid_request_error", "invalid_body",
                        "the body must be a JSON object");
        json_decref(*out);
        *out = NULL;
        return false;
    }
    return true;
}

static void client_route(by_buyer *b, const os_http_request *req, os_http_response *res,
                         by_client_api api)
{
    json_t *body = NULL;

    if (!admitted(b, req, res, api) || !body_json(req, res, api, &body))
        return;
    if (api == BY_CLIENT_ANTHROPIC_MESSAGES && !json_is_integer(json_object_get(body, "max_tokens")))
        by_client_error(res, api, 400, "invalid_request_error", NULL,
                        "max_tokens: Field required");
    else if (api != BY_CLIENT_OPENAI_EMBEDDINGS &&
             !json_is_array(json_object_get(body, "messages")))
        by_client_error(res, api, 400, "invalid_request_error", "invalid_messages",
                        "messages: an array is required");
    else
        by_relay(b, req, res, api, body);
    json_decref(body);
}

static void h_chat(void *ctx, const os_http_request *req, os_http_response *res)
{
    client_route(ctx, req, res, BY_CLIENT_OPENAI_CHAT);
}

static void h_embeddings(void *ctx, const os_http_request *req, os_http_response *res)
{
    client_route(ctx, req, res, BY_CLIENT_OPENAI_EMBEDDINGS);
}

static void h_messages(void *ctx, const os_http_request *req, os_http_response *res)
{
    client_route(ctx, req, res, BY_CLIENT_ANTHROPIC_MESSAGES);
}

static void reply_json(os_http_response *res, json_t *v)
{
    if (v == NULL || os_http_res_json(res, 200, v) != OS_OK)
        os_http_res_error(res, 500, "api_error", NULL, "cannot build the answer");
}

static void h_models(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    json_t *v = NULL;

    if (!admitted(b, req, res, BY_CLIENT_OPENAI_CHAT))
        return;
    if (by_peers_models(b->peers, &v) != OS_OK) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 503, "api_error", "registry_unavailable",
                        "no registry could be reached");
        return;
    }
    reply_json(res, v);
}

/* An exact-match filter of the ledger: absent or empty is none (*out NULL); longer than
 * BY_LEDGER_FILTER_MAX bytes is false. */
static bool query_filter(const os_http_request *req, const char *key, const char **out)
{
    const char *v = os_http_req_query(req, key);

    *out = NULL;
    if (v == NULL || v[0] == '\0')
        return true;
    if (strnlen(v, BY_LEDGER_FILTER_MAX + 1) > BY_LEDGER_FILTER_MAX)
        return false;
    *out = v;
    return true;
}

/* GET /openseed/v1/ledger?limit=&offset=&seller=&service=&outcome=&api= */
static void h_ledger(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    by_ledger_query q;
    const char *seller;
    uint64_t limit, offset;

    if (!admitted(b, req, res, BY_CLIENT_OPENAI_CHAT))
        return;
    memset(&q, 0, sizeof(q));
    if (os_http_req_query_uint(req, "limit", 1, BY_LEDGER_LIMIT_MAX, 100, &limit) != OS_OK) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error", "invalid_limit",
                        "limit must be an integer from 1 to %u", BY_LEDGER_LIMIT_MAX);
        return;
    }
    if (os_http_req_query_uint(req, "offset", 0, BY_LEDGER_OFFSET_MAX, 0, &offset) != OS_OK) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error", "invalid_offset",
                        "offset must be an integer from 0 to %u", BY_LEDGER_OFFSET_MAX);
        return;
    }
    seller = os_http_req_query(req, "seller");
    if (seller != NULL && seller[0] != '\0') {
        if (os_eip55_parse(q.seller, seller) != OS_OK) {
            by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error",
                            "invalid_seller", "seller must be a 0x address (EIP-55 if mixed case)");
            return;
        }
        q.has_seller = true;
    }
    if (!query_filter(req, "service", &q.service) || !query_filter(req, "outcome", &q.outcome) ||
        !query_filter(req, "api", &q.api)) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error", "invalid_filter",
                        "service, outcome and api are at most %d bytes", BY_LEDGER_FILTER_MAX);
        return;
    }
    q.limit = (unsigned)limit;
    q.offset = offset;
    reply_json(res, by_wallet_ledger_query_json(b->wallet, &q));
}

static void h_channels(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    if (admitted(b, req, res, BY_CLIENT_OPENAI_CHAT))
        reply_json(res, by_wallet_channels_json(b->wallet));
}

static void h_peers(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    if (admitted(b, req, res, BY_CLIENT_OPENAI_CHAT))
        reply_json(res, by_peers_json(b->peers));
}

static void h_spend(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    if (admitted(b, req, res, BY_CLIENT_OPENAI_CHAT))
        reply_json(res, by_wallet_spend_json(b->wallet));
}

/* GET /openseed/v1/spend/series?step=&points= */
static void h_spend_series(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    uint64_t step, points;

    if (!admitted(b, req, res, BY_CLIENT_OPENAI_CHAT))
        return;
    if (os_http_req_query_uint(req, "step", 1, BY_SERIES_STEP_MAX, 60, &step) != OS_OK) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error", "invalid_step",
                        "step must be an integer number of seconds from 1 to %u",
                        BY_SERIES_STEP_MAX);
        return;
    }
    if (os_http_req_query_uint(req, "points", 1, BY_SERIES_POINTS_MAX, 60, &points) != OS_OK) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error", "invalid_points",
                        "points must be an integer from 1 to %u", BY_SERIES_POINTS_MAX);
        return;
    }
    reply_json(res, by_wallet_spend_series_json(b->wallet, step, (unsigned)points));
}

/* The optional (required when need) "amount" of body: micro-USDC in the wire form; false with a
 * 400 written otherwise. */
static bool body_amount(os_http_response *res, const json_t *body, bool need, uint64_t *amount)
{
    const json_t *a = json_object_get(body, "amount");

    *amount = 0;
    if (a == NULL && !need)
        return true;
    if (a == NULL || os_money_parse_json(amount, a) != OS_OK || *amount == 0) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error", "invalid_amount",
                        "\"amount\" must be micro-USDC above zero as a decimal string");
        return false;
    }
    return true;
}

/* The answer to a failed by_wallet_open or by_wallet_topup. */
static void fund_error(os_http_response *res, os_err rc, const char *why)
{
    if (rc == OS_ERR_NOTFOUND)
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 404, "invalid_request_error",
                        "unknown_channel", "no such channel in buyer.db");
    else if (rc == OS_ERR_INVALID)
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 409, "invalid_request_error",
                        "channel_state", "%s", why[0] ? why : "not possible in this state");
    else if (rc == OS_ERR_RANGE)
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error", "budget",
                        "%s", why[0] ? why : "above the per-channel budget");
    else
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 502, "api_error", "chain_error", "%s",
                        why[0] ? why : "the transaction failed");
}

/* The deposit of channel id as channels_json shows it; the answer's fallback is `dflt`. */
static json_t *channel_deposit(by_buyer *b, const char *hex, uint64_t dflt)
{
    json_t *all = by_wallet_channels_json(b->wallet), *c, *dep = NULL;
    size_t i;

    json_array_foreach(json_object_get(all, "channels"), i, c)
    {
        const char *id = json_string_value(json_object_get(c, "channel_id"));
        if (id != NULL && strcasecmp(id, hex) == 0) {
            dep = json_incref(json_object_get(c, "deposit"));
            break;
        }
    }
    json_decref(all);
    return dep != NULL ? dep : os_money_to_json(dflt);
}

/* POST /openseed/v1/channels {"seller":"0x…","amount":"…"?}: opens a channel to seller now (409
 * with the id when one is open). Waits for the transaction. */
static void h_channel_open(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    const char *seller_s;
    char why[256] = "", hex[OS_HEX_LEN(32)], sel[OS_ADDRESS_STR_LEN];
    uint8_t seller[20], id[32];
    uint64_t amount;
    json_t *body = NULL;
    os_err rc;

    if (!admitted(b, req, res, BY_CLIENT_OPENAI_CHAT) ||
        !body_json(req, res, BY_CLIENT_OPENAI_CHAT, &body))
        return;
    seller_s = json_string_value(json_object_get(body, "seller"));
    if (seller_s == NULL || os_eip55_parse(seller, seller_s) != OS_OK) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error",
                        "invalid_seller", "\"seller\" must be a 0x address (EIP-55 if mixed case)");
        json_decref(body);
        return;
    }
    if (!body_amount(res, body, false, &amount)) {
        json_decref(body);
        return;
    }
    json_decref(body);
    rc = by_wallet_open(b->wallet, id, seller, amount, why, sizeof(why));
    if ((rc == OS_OK || rc == OS_ERR_EXISTS) && os_hex_encode(hex, sizeof(hex), id, 32, 1) != OS_OK)
        rc = OS_ERR_INTERNAL;
    os_eip55_format(sel, seller);
    if (rc == OS_OK) {
        reply_json(res, json_pack("{s:s,s:s,s:o}", "channel_id", hex, "seller", sel, "deposit",
                                  channel_deposit(b, hex, amount)));
    } else if (rc == OS_ERR_EXISTS) {
        json_t *v = json_pack("{s:{s:s,s:s,s:s,s:s},s:s}", "error", "message",
                              "a channel to this seller is already open", "type",
                              "invalid_request_error", "code", "channel_exists", "param", "seller",
                              "channel_id", hex);
        if (v == NULL || os_http_res_json(res, 409, v) != OS_OK)
            os_http_res_error(res, 500, "api_error", NULL, "out of memory");
    } else {
        fund_error(res, rc, why);
    }
}

/* POST /openseed/v1/channels/{channel_id}/close or …/withdraw: the payer's requestClose, and the
 * refund once the grace period is over; …/topup {"amount":"…"} adds to the deposit. They wait
 * for the transaction. */
static void h_channel_cmd(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    const char *rest = os_http_req_path_rest(req);
    const char *slash = strchr(rest, '/');
    char hex[67], why[256] = "";
    uint8_t id[32];
    bool close;
    os_err rc;

    if (!admitted(b, req, res, BY_CLIENT_OPENAI_CHAT))
        return;
    if (slash == NULL || (size_t)(slash - rest) != 66 ||
        (strcmp(slash, "/close") != 0 && strcmp(slash, "/withdraw") != 0 &&
         strcmp(slash, "/topup") != 0)) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 404, "invalid_request_error", "not_found",
                        "use POST /openseed/v1/channels/0x…/close, …/withdraw or …/topup");
        return;
    }
    memcpy(hex, rest, 66);
    hex[66] = '\0';
    if (strncmp(hex, "0x", 2) != 0 || os_hex_decode_exact(id, 32, hex) != OS_OK) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 400, "invalid_request_error",
                        "invalid_channel", "the channel id must be 0x and 64 hex digits");
        return;
    }
    if (strcmp(slash, "/topup") == 0) {
        json_t *body = NULL;
        uint64_t amount;
        bool ok = body_json(req, res, BY_CLIENT_OPENAI_CHAT, &body) &&
                  body_amount(res, body, true, &amount);
        json_decref(body);
        if (!ok)
            return;
        rc = by_wallet_topup(b->wallet, id, amount, why, sizeof(why));
        if (rc == OS_OK)
            reply_json(res, json_pack("{s:s,s:o}", "channel_id", hex, "deposit",
                                      channel_deposit(b, hex, 0)));
        else
            fund_error(res, rc, why);
        return;
    }
    close = strcmp(slash, "/close") == 0;
    rc = close ? by_wallet_close(b->wallet, id, why, sizeof(why))
               : by_wallet_withdraw(b->wallet, id, why, sizeof(why));
    if (rc == OS_OK)
        reply_json(res, json_pack("{s:s,s:s}", "channel_id", hex, "status",
                                  close ? "closing" : "withdrawn"));
    else if (rc == OS_ERR_NOTFOUND)
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 404, "invalid_request_error",
                        "unknown_channel", "no such channel in buyer.db");
    else if (rc == OS_ERR_INVALID)
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 409, "invalid_request_error",
                        "channel_state", "%s", why[0] ? why : "not possible in this state");
    else
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 502, "api_error", "chain_error", "%s",
                        why[0] ? why : "the transaction failed");
}

/* GET /dashboard[/…]: the dashboard's files (web/buyer, web/common). They hold no data, so the
 * API key is not asked for here, only by the API calls the page makes; the Host guard still
 * applies, so a rebinding page cannot even read them. */
static void h_dashboard(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;

    if (b->loopback && !host_is_loopback(os_http_req_header(req, "Host"))) {
        by_client_error(res, BY_CLIENT_OPENAI_CHAT, 403, "permission_error", "forbidden_host",
                        "the gateway answers only requests addressed to localhost (Host)");
        return;
    }
    os_web_serve(req, res, by_web_assets, by_web_assets_n);
}

static void h_healthz(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    (void)req;
    reply_json(res, json_pack("{s:s}", "status", "ok"));
}

static void h_metrics(void *ctx, const os_http_request *req, os_http_response *res)
{
    by_buyer *b = ctx;
    char *text = NULL;
    size_t len = 0;

    /* the counters tell what this wallet spends: the same guards as the management API */
    if (!admitted(b, req, res, BY_CLIENT_OPENAI_CHAT))
        return;
    if (os_metrics_render(b->metrics, &text, &len) != OS_OK ||
        os_http_res_body(res, OS_METRICS_CONTENT_TYPE, text, len) != OS_OK)
        os_http_res_error(res, 500, "api_error", NULL, "cannot render metrics");
    else
        os_http_res_status(res, 200);
    free(text);
}

const os_http_route by_routes[] = {
    {"POST", "/v1/chat/completions", h_chat, 1},
    {"POST", "/v1/embeddings", h_embeddings, 1},
    {"POST", "/v1/messages", h_messages, 1},
    {"GET", "/v1/models", h_models, 1},
    {"GET", "/openseed/v1/ledger", h_ledger, 1},
    {"GET", "/openseed/v1/channels", h_channels, 1},
    {"POST", "/openseed/v1/channels", h_channel_open, 1},
    {"POST", "/openseed/v1/channels/*", h_channel_cmd, 1},
    {"GET", "/openseed/v1/peers", h_peers, 1},
    {"GET", "/openseed/v1/spend/series", h_spend_series, 1},
    {"GET", "/openseed/v1/spend", h_spend, 1},
    {"GET", "/dashboard", h_dashboard, 1},
    {"GET", "/dashboard/*", h_dashboard, 1},
    {"GET", "/healthz", h_healthz, 1},
    {"GET", "/metrics", h_metrics, 1},
};
const size_t by_n_routes = sizeof(by_routes) / sizeof(by_routes[0]);
