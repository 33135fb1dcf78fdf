/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network (network.h): the read side of discovery for embedders, over the registries' public API
 * (PROTOCOL.md §4, docs/protocol.md §10.10 for the peer object). A registry is only a messenger
 * here: each peer it serves is checked as a buyer checks it (the record's signature by its node,
 * the chain and escrow we expect, a heartbeat's endpoint only when the seller signed it after the
 * record, and the query's own filters against the signed offerings), and whatever fails is left
 * out and counted. Listings are walked page by page (next_cursor) within fixed bounds: 100 pages
 * and 10,000 peers per registry, 8 MiB per page, and the client's timeouts. Several registries
 * are merged by node, newest seq first, through a small hash of node ids, so memory stays at one
 * os_peer per distinct seller. The object holds nothing mutable after os_network_new (the HTTP
 * client is itself thread-safe), which is what lets threads share it.
 */
#include "openseed/network.h"
#include "openseed/offering.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "openseed/http_client.h"
#include "openseed/json.h"
#include "openseed/secp.h"

#define DEFAULT_TIMEOUT_MS 5000
#define PAGE_BODY_MAX (8u << 20) /* a page of 100 peers of 64 KiB records, with room */
#define PAGE_LIMIT 100           /* the registry's own largest page */
#define MAX_PAGES 100
#define MAX_PEERS 10000 /* per registry walked, and in one answer */
#define MAX_CURSOR 256
#define URL_CAP 2048
#define HASH_BITS 15 /* 32768 slots for at most 10,000 nodes */

struct os_network {
    size_t n;
    char url[OS_NETWORK_MAX_REGISTRIES][OS_NETWORK_URL_MAX];   /* base, no trailing '/' */
    char shown[OS_NETWORK_MAX_REGISTRIES][OS_NETWORK_URL_MAX]; /* the same without user info */
    uint64_t chain_id;
    bool has_escrow;
    uint8_t escrow[20];
    os_http_client *http;
    const os_logger *log;
};

/* ------------------------------------------------------------------ URLs */

/* Where the host starts in an authority s[auth_at..path_at): after the last '@' of user info. */
static size_t host_at(const char *s, size_t auth_at, size_t path_at)
{
    size_t host = auth_at;

    for (size_t i = auth_at; i < path_at; i++)
        if (s[i] == '@')
            host = i + 1;
    return host;
}

/*
 * A registry base URL: http:// or https://, a non-empty authority, then an optional path; printable
 * ASCII without spaces, and no query or fragment since paths and queries are appended to it.
 * *auth_at is the index where the authority starts, *path_at where the path does.
 */
static bool base_url_ok(const char *s, size_t *auth_at, size_t *path_at)
{
    size_t n = strlen(s), i;

    if (n >= OS_NETWORK_URL_MAX)
        return false;
    if (strncasecmp(s, "https://", 8) == 0)
        i = 8;
    else if (strncasecmp(s, "http://", 7) == 0)
        i = 7;
    else
        return false;
    *auth_at = i;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return false;
    }
    while (i < n && s[i] != '/')
        i++;
    *path_at = i;
    /* a host must remain once user info is set aside */
    return host_at(s, *auth_at, *path_at) < *path_at;
}

/* Appends "&key=value" (the first one with '?'), value percent-encoded. False when too long. */
static bool add_query(char *url, size_t cap, const char *key, const char *value)
{
    char *esc = curl_easy_escape(NULL, value, 0);
    size_t n = strlen(url);
    int w;

    if (esc == NULL)
        return false;
    w = snprintf(url + n, cap - n, "%c%s=%s", strchr(url, '?') != NULL ? '&' : '?', key, esc);
    curl_free(esc);
    return w > 0 && (size_t)w < cap - n;
}

/* ------------------------------------------------------------------ lifecycle */

os_err os_network_new(os_network **out, const os_network_config *cfg)
{
    os_http_client_config hc;
    os_network *net;
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (cfg == NULL || cfg->registries == NULL || cfg->n_registries == 0 ||
        cfg->n_registries > OS_NETWORK_MAX_REGISTRIES || cfg->timeout_ms < 0) {
        os_log_error(cfg != NULL ? cfg->log : NULL,
                     "network: needs 1 to %d registry URLs and a timeout of 0 or more",
                     OS_NETWORK_MAX_REGISTRIES);
        return OS_ERR_INVALID;
    }
    if ((net = calloc(1, sizeof(*net))) == NULL)
        return OS_ERR_NOMEM;
    net->log = cfg->log;
    net->n = cfg->n_registries;
    net->chain_id = cfg->chain_id;
    if (cfg->escrow != NULL) {
        net->has_escrow = true;
        memcpy(net->escrow, cfg->escrow, 20);
    }
    for (size_t i = 0; i < net->n; i++) {
        const char *u = cfg->registries[i];
        size_t auth_at, path_at, len;
        /* the URL itself is not logged: it may hold a password */
        if (u == NULL || !base_url_ok(u, &auth_at, &path_at)) {
            os_log_error(net->log,
                         "network: registry %zu is not an http:// or https:// URL with a host "
                         "(printable, no query or fragment, under %d bytes)",
                         i, OS_NETWORK_URL_MAX);
            free(net);
            return OS_ERR_INVALID;
        }
        len = strlen(u);
        while (len > path_at && u[len - 1] == '/')
            len--;
        memcpy(net->url[i], u, len);
        net->url[i][len] = '\0';
        /* never longer than the URL itself, so it fits */
        if (os_url_without_userinfo(net->shown[i], sizeof(net->shown[i]), net->url[i]) != OS_OK) {
            free(net);
            return OS_ERR_INTERNAL;
        }
    }
    memset(&hc, 0, sizeof(hc));
    hc.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    hc.connect_timeout_ms = hc.timeout_ms;
    hc.max_body = PAGE_BODY_MAX;
    hc.pool_size = 4;
    hc.ca_file = cfg->ca_file;
    if ((rc = os_http_client_new(&net->http, &hc)) != OS_OK) {
        os_log_error(net->log, "network: cannot set up the HTTP client (%s)", os_strerror(rc));
        free(net);
        return rc == OS_ERR_NOMEM ? rc : OS_ERR_INVALID;
    }
    *out = net;
    return OS_OK;
}

void os_network_free(os_network *net)
{
    if (net == NULL)
        return;
    os_http_client_free(net->http);
    free(net);
}

/* ------------------------------------------------------------------ talking to a registry */

static void log_failure(const os_network *net, size_t ri, const char *msg, const char *request,
                        long status, const char *why)
{
    os_log_event ev;

    if (os_log_begin(&ev, net->log, OS_LOG_WARN, msg)) {
        os_log_kv(&ev, "registry", "%s", net->shown[ri]);
        os_log_kv(&ev, "request", "%s", request);
        if (status > 0)
            os_log_kv(&ev, "status", "%ld", status);
        if (why != NULL && why[0] != '\0')
            os_log_kv(&ev, "error", "%s", why);
        os_log_end(&ev);
    }
}

/*
 * GET url as JSON. OS_OK with the status in *status and a JSON object in *body when the answer is
 * a 200 object or (with ok404) a 404; OS_ERR_NETWORK otherwise, the reason in why (safe to show).
 */
static os_err get_json(const os_network *net, const char *url, bool ok404, long *status,
                       json_t **body, char *why, size_t whycap)
{
    os_http_client_error e;
    os_err rc;

    *body = NULL;
    *status = 0;
    rc = os_http_client_json(net->http, status, body, &e, "GET", url, NULL, NULL, 0);
    if (rc == OS_ERR_NOMEM)
        return os_errf(why, whycap, rc, "out of memory");
    if (rc != OS_OK)
        return os_errf(why, whycap, OS_ERR_NETWORK, "%s", e.message);
    if (*status == 404 && ok404)
        return OS_OK;
    if (*status != 200) {
        json_decref(*body);
        *body = NULL;
        return os_errf(why, whycap, OS_ERR_NETWORK, "answered HTTP %ld", *status);
    }
    if (!json_is_object(*body)) {
        json_decref(*body);
        *body = NULL;
        return os_errf(why, whycap, OS_ERR_NETWORK, "the answer is not a JSON object");
    }
    return OS_OK;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

os_err os_network_registries(os_network *net, os_registry_status *out, size_t cap, size_t *n)
{
    char url[URL_CAP];
    bool any = false;

    if (n != NULL)
        *n = 0;
    if (net == NULL || out == NULL || cap == 0 || n == NULL)
        return OS_ERR_INVALID;
    for (size_t i = 0; i < net->n && i < cap; i++) {
        os_registry_status *st = &out[i];
        json_t *body = NULL;
        long status;
        uint64_t t0 = now_ms(), peers = 0, active = 0;
        const char *s = NULL;
        os_err rc;

        memset(st, 0, sizeof(*st));
        snprintf(st->url, sizeof(st->url), "%s", net->shown[i]);
        snprintf(url, sizeof(url), "%s/healthz", net->url[i]);
        rc = get_json(net, url, false, &status, &body, st->error, sizeof(st->error));
        st->latency_ms = now_ms() - t0;
        if (rc == OS_OK &&
            (os_json_get_str(&s, body, "status", 16, NULL, 0) != OS_OK || strcmp(s, "ok") != 0 ||
             os_json_get_u64(&peers, body, "peers", NULL, 0) != OS_OK ||
             os_json_get_u64(&active, body, "active", NULL, 0) != OS_OK))
            rc = os_errf(st->error, sizeof(st->error), OS_ERR_NETWORK,
                         "the /healthz answer is not {\"status\":\"ok\",\"peers\":n,\"active\":n}");
        json_decref(body);
        *n = i + 1;
        if (rc != OS_OK) {
            log_failure(net, i, "registry is not up", "healthz", status, st->error);
            continue;
        }
        st->up = true;
        st->peers = peers;
        st->active = active;
        any = true;
    }
    return any ? OS_OK : OS_ERR_NETWORK;
}

/* ------------------------------------------------------------------ checking one peer */

/* A registry's number in [0, 1] (reputation, score). */
static os_err unit_number(double *out, const json_t *peer, const char *key, char *why,
                          size_t whycap)
{
    const json_t *v = json_object_get(peer, key);

    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0.0 ||
        json_number_value(v) > 1.0)
        return os_errf(why, whycap, OS_ERR_INVALID,
                       "peer: field \"%s\" must be a number between 0 and 1", key);
    *out = json_number_value(v);
    return OS_OK;
}

/* The heartbeat's endpoint when the node signed it after its record; otherwise the record's. */
static void take_endpoint(const os_network *net, os_peer *p, const json_t *hbj)
{
    os_heartbeat hb;

    memcpy(p->endpoint, p->record.endpoint, sizeof(p->endpoint));
    if (!json_is_object(hbj) || os_heartbeat_parse(&hb, hbj, NULL, 0) != OS_OK ||
        memcmp(hb.node, p->record.node, 20) != 0 || hb.seq <= p->record.seq ||
        os_heartbeat_verify(&hb, net->chain_id) != OS_OK)
        return;
    memcpy(p->endpoint, hb.endpoint, sizeof(p->endpoint));
}

/*
 * One peer object of a registry's answer into out: OS_OK; OS_ERR_INVALID malformed; OS_ERR_CRYPTO
 * the record is not signed by its node; OS_ERR_UNSUPPORTED another chain or escrow. why says which.
 */
static os_err parse_peer(const os_network *net, os_peer *out, const json_t *peer, size_t ri,
                         char *why, size_t whycap)
{
    static const char W[] = "peer: ";
    const json_t *rec, *load;
    uint64_t active, capacity;
    os_err rc;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(peer))
        return os_errf(why, whycap, OS_ERR_INVALID, "peer: must be a JSON object");
    if ((rc = os_json_at_object(&rec, peer, "record", W, why, whycap)) != OS_OK ||
        (rc = os_json_at_hex(out->signature, 65, peer, "signature", W, why, whycap)) != OS_OK ||
        (rc = unit_number(&out->reputation, peer, "reputation", why, whycap)) != OS_OK ||
        (rc = unit_number(&out->score, peer, "score", why, whycap)) != OS_OK ||
        (rc = os_json_at_u64(&out->last_seen, peer, "last_seen", 0, UINT64_MAX, W, why, whycap)) !=
            OS_OK ||
        (rc = os_json_at_object(&load, peer, "load", W, why, whycap)) != OS_OK ||
        (rc = os_json_at_u64(&active, load, "active", 0, UINT32_MAX, "peer: load: ", why,
                             whycap)) != OS_OK ||
        (rc = os_json_at_u64(&capacity, load, "capacity", 0, UINT32_MAX, "peer: load: ", why,
                             whycap)) != OS_OK)
        goto fail;
    out->active = (uint32_t)active;
    out->capacity = (uint32_t)capacity;
    if ((rc = os_record_verify(&out->record, rec, out->signature, why, whycap)) != OS_OK)
        goto fail;
    if (out->record.chain_id != net->chain_id) {
        rc = os_errf(why, whycap, OS_ERR_UNSUPPORTED, "the record is for chain %" PRIu64,
                     out->record.chain_id);
        goto fail;
    }
    if (net->has_escrow && memcmp(out->record.escrow, net->escrow, 20) != 0) {
        rc = os_errf(why, whycap, OS_ERR_UNSUPPORTED, "the record names another escrow");
        goto fail;
    }
    take_endpoint(net, out, json_object_get(peer, "heartbeat"));
    out->registry = ri;
    return OS_OK;
fail:
    memset(out, 0, sizeof(*out));
    /* the kinds a caller counts apart; every other refusal is a malformed entry */
    if (rc != OS_ERR_NOMEM && rc != OS_ERR_CRYPTO && rc != OS_ERR_UNSUPPORTED)
        rc = OS_ERR_INVALID;
    return rc;
}

/* Whether the signed record matches the query the registry was asked (it may not have obeyed). */
static bool peer_matches(const os_peer *p, const os_peer_query *q)
{
    if (p->reputation < q->min_reputation)
        return false;
    for (size_t i = 0; i < p->record.n_offerings; i++) {
        const os_offering *o = &p->record.offerings[i];
        bool svc = q->service == NULL || q->service[0] == '\0';
        for (size_t k = 0; !svc && k < o->n_services; k++)
            svc = strcmp(o->services[k], q->service) == 0;
        if (svc &&
            (q->capability == NULL || q->capability[0] == '\0' ||
             strcmp(o->capability, q->capability) == 0) &&
            (q->max_input == 0 || o->pricing.input <= q->max_input) &&
            (q->max_output == 0 || o->pricing.output <= q->max_output))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ merging */

typedef struct merge {
    os_peer *peers;
    size_t n, cap;
    uint32_t *slot; /* 1 << HASH_BITS entries: index + 1, 0 = empty */
} merge;

static size_t hash_node(const uint8_t node[20])
{
    /* node ids are keccak outputs: their bytes are already uniform */
    return ((size_t)node[0] << 16 | (size_t)node[1] << 8 | node[2]) & ((1u << HASH_BITS) - 1);
}

/*
 * Takes p into m: a node seen before keeps the record with the higher seq (the first one on a
 * tie); a new node is added unless m is full. OS_ERR_NOMEM, else OS_OK (taken or not).
 */
static os_err merge_add(merge *m, const os_peer *p)
{
    size_t h = hash_node(p->record.node);

    for (; m->slot[h] != 0; h = (h + 1) & ((1u << HASH_BITS) - 1)) {
        os_peer *old = &m->peers[m->slot[h] - 1];
        if (memcmp(old->record.node, p->record.node, 20) == 0) {
            if (p->record.seq > old->record.seq)
                *old = *p;
            return OS_OK;
        }
    }
    if (m->n >= MAX_PEERS)
        return OS_OK;
    if (m->n == m->cap) {
        size_t cap = m->cap == 0 ? 16 : m->cap * 2;
        os_peer *g = realloc(m->peers, cap * sizeof(*g));
        if (g == NULL)
            return OS_ERR_NOMEM;
        m->peers = g;
        m->cap = cap;
    }
    m->peers[m->n] = *p;
    m->slot[h] = (uint32_t)++m->n;
    return OS_OK;
}

static int peer_cmp(const void *a, const void *b)
{
    const os_peer *x = a, *y = b;

    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return memcmp(x->record.node, y->record.node, 20);
}

/* ------------------------------------------------------------------ listings */

typedef struct walk {
    size_t accepted, malformed, forged, foreign, unmatched;
} walk;

/* The listing URL of registry ri for q, one page of `limit`, after cursor (or NULL). */
static bool listing_url(const os_network *net, char url[URL_CAP], size_t ri, const os_peer_query *q,
                        size_t limit, const char *cursor)
{
    char num[32];
    int w = snprintf(url, URL_CAP, "%s/v1/peers?limit=%zu", net->url[ri], limit);

    if (w < 0 || w >= URL_CAP)
        return false;
    if (q->service != NULL && q->service[0] != '\0' &&
        !add_query(url, URL_CAP, "service", q->service))
        return false;
    if (q->capability != NULL && q->capability[0] != '\0' &&
        !add_query(url, URL_CAP, "capability", q->capability))
        return false;
    if (q->max_input > 0) {
        snprintf(num, sizeof(num), "%" PRIu64, q->max_input);
        if (!add_query(url, URL_CAP, "max_input", num))
            return false;
    }
    if (q->max_output > 0) {
        snprintf(num, sizeof(num), "%" PRIu64, q->max_output);
        if (!add_query(url, URL_CAP, "max_output", num))
            return false;
    }
    if (q->min_reputation > 0.0) {
        /* rounded down, so the registry never drops a peer we want; we check again ourselves */
        snprintf(num, sizeof(num), "%.6f", floor(q->min_reputation * 1e6) / 1e6);
        if (!add_query(url, URL_CAP, "min_reputation", num))
            return false;
    }
    return cursor == NULL || add_query(url, URL_CAP, "cursor", cursor);
}

/* Checks each peer of one page into m. */
static os_err take_page(const os_network *net, merge *m, walk *wk, const json_t *peers, size_t ri,
                        const os_peer_query *q, os_peer *scratch, size_t *seen)
{
    char why[OS_RECORD_ERR_LEN];
    os_err rc;

    for (size_t i = 0; i < json_array_size(peers) && *seen < MAX_PEERS; i++, (*seen)++) {
        rc = parse_peer(net, scratch, json_array_get(peers, i), ri, why, sizeof(why));
        if (rc == OS_ERR_NOMEM)
            return rc;
        if (rc == OS_OK && !peer_matches(scratch, q)) {
            wk->unmatched++;
            continue;
        }
        if (rc != OS_OK) {
            if (rc == OS_ERR_CRYPTO)
                wk->forged++;
            else if (rc == OS_ERR_UNSUPPORTED)
                wk->foreign++;
            else
                wk->malformed++;
            os_log_debug(net->log, "network: peer left out: %s", why);
            continue;
        }
        if ((rc = merge_add(m, scratch)) != OS_OK)
            return rc;
        wk->accepted++;
    }
    return OS_OK;
}

/*
 * Walks registry ri's listing for q until `want` peers were accepted from it, the listing ends, or
 * a bound is reached. OS_OK when the first page answered (later failures only end the walk early),
 * OS_ERR_NETWORK when it did not, OS_ERR_NOMEM.
 */
static os_err walk_registry(const os_network *net, merge *m, size_t ri, const os_peer_query *q,
                            size_t want, size_t *rejected)
{
    char url[URL_CAP], why[OS_JSON_ERR_LEN], cursor[MAX_CURSOR + 1] = "";
    os_peer *scratch = malloc(sizeof(*scratch));
    walk wk = {0};
    size_t seen = 0, page;
    bool done = false;
    os_err rc = OS_OK;

    if (scratch == NULL)
        return OS_ERR_NOMEM;
    for (page = 0; !done && page < MAX_PAGES && wk.accepted < want && seen < MAX_PEERS; page++) {
        size_t left = want - wk.accepted, limit = left < PAGE_LIMIT ? left : PAGE_LIMIT;
        const json_t *peers = NULL;
        const char *next = NULL;
        json_t *body = NULL;
        long status = 0;

        if (!listing_url(net, url, ri, q, limit, cursor[0] != '\0' ? cursor : NULL)) {
            rc = os_errf(why, sizeof(why), OS_ERR_NETWORK, "the listing URL is too long");
        } else if ((rc = get_json(net, url, false, &status, &body, why, sizeof(why))) == OS_OK &&
                   (os_json_get_array(&peers, body, "peers", SIZE_MAX, why, sizeof(why)) != OS_OK ||
                    os_json_opt_str(&next, body, "next_cursor", MAX_CURSOR, why, sizeof(why)) !=
                        OS_OK)) {
            rc = OS_ERR_NETWORK;
        }
        if (rc == OS_OK)
            rc = take_page(net, m, &wk, peers, ri, q, scratch, &seen);
        /* the end of the listing; a cursor served twice would loop */
        if (rc == OS_OK && (next == NULL || next[0] == '\0' || strcmp(next, cursor) == 0))
            done = true;
        else if (rc == OS_OK)
            memcpy(cursor, next, strlen(next) + 1);
        json_decref(body);
        if (rc != OS_OK) {
            if (rc != OS_ERR_NOMEM)
                log_failure(net, ri,
                            page == 0 ? "registry listing failed" : "registry listing ended early",
                            "peers", status, why);
            break;
        }
    }
    free(scratch);
    *rejected += wk.malformed + wk.forged + wk.foreign + wk.unmatched;
    if (wk.malformed + wk.forged + wk.foreign + wk.unmatched > 0) {
        os_log_event ev;
        if (os_log_begin(&ev, net->log, wk.forged + wk.unmatched > 0 ? OS_LOG_WARN : OS_LOG_INFO,
                         "registry served records left out")) {
            os_log_kv(&ev, "registry", "%s", net->shown[ri]);
            os_log_kv(&ev, "forged", "%zu", wk.forged);
            os_log_kv(&ev, "other_chain_or_escrow", "%zu", wk.foreign);
            os_log_kv(&ev, "malformed", "%zu", wk.malformed);
            os_log_kv(&ev, "not_matching_query", "%zu", wk.unmatched);
            os_log_end(&ev);
        }
    }
    if (rc == OS_ERR_NOMEM)
        return rc;
    /* a walk cut short after its first page still answered */
    return rc == OS_OK || page > 0 ? OS_OK : OS_ERR_NETWORK;
}

static bool query_ok(const os_peer_query *q)
{
    return (q->service == NULL || q->service[0] == '\0' ||
            os_record_name_ok(q->service, strlen(q->service))) &&
           (q->capability == NULL || q->capability[0] == '\0' ||
            os_offering_capability_ok(q->capability)) &&
           isfinite(q->min_reputation) && q->min_reputation >= 0.0 && q->min_reputation <= 1.0;
}

os_err os_network_peers(os_network *net, const os_peer_query *q, os_peer_list *out)
{
    merge m = {0};
    size_t want;
    os_err rc = OS_OK;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (net == NULL || q == NULL || out == NULL)
        return OS_ERR_INVALID;
    if (!query_ok(q)) {
        os_log_warn(net->log, "network: a peer query with a bad service, capability or "
                              "min_reputation");
        return OS_ERR_INVALID;
    }
    want = q->limit == 0 || q->limit > MAX_PEERS ? MAX_PEERS : q->limit;
    if ((m.slot = calloc((size_t)1 << HASH_BITS, sizeof(*m.slot))) == NULL)
        return OS_ERR_NOMEM;
    for (size_t ri = 0; ri < net->n; ri++) {
        rc = walk_registry(net, &m, ri, q, want, &out->rejected);
        if (rc == OS_ERR_NOMEM)
            break;
        if (rc == OS_OK)
            out->registries_ok++;
        rc = OS_OK;
    }
    free(m.slot);
    if (rc != OS_OK || out->registries_ok == 0) {
        free(m.peers);
        memset(out, 0, sizeof(*out));
        return rc != OS_OK ? rc : OS_ERR_NETWORK;
    }
    if (m.n > 1)
        qsort(m.peers, m.n, sizeof(*m.peers), peer_cmp);
    out->peers = m.peers;
    out->n = m.n < want ? m.n : want;
    return OS_OK;
}

os_err os_network_peer(os_network *net, os_peer *out, const uint8_t node[20])
{
    char hex[OS_ADDRESS_STR_LEN], url[URL_CAP], why[OS_RECORD_ERR_LEN];
    bool notfound = false, bad = false;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (net == NULL || out == NULL || node == NULL)
        return OS_ERR_INVALID;
    os_eip55_format(hex, node);
    for (size_t ri = 0; ri < net->n; ri++) {
        json_t *body;
        long status;
        os_err rc;

        snprintf(url, sizeof(url), "%s/v1/peers/%s", net->url[ri], hex);
        if ((rc = get_json(net, url, true, &status, &body, why, sizeof(why))) != OS_OK) {
            if (rc == OS_ERR_NOMEM)
                return rc;
            log_failure(net, ri, "registry peer lookup failed", "peer", status, why);
            continue;
        }
        if (status == 404) {
            json_decref(body);
            notfound = true;
            continue;
        }
        rc = parse_peer(net, out, body, ri, why, sizeof(why));
        json_decref(body);
        if (rc == OS_OK && memcmp(out->record.node, node, 20) != 0) {
            memset(out, 0, sizeof(*out));
            rc = os_errf(why, sizeof(why), OS_ERR_CRYPTO, "the answer is another node's record");
        }
        if (rc == OS_OK)
            return OS_OK;
        if (rc == OS_ERR_NOMEM)
            return rc;
        if (rc == OS_ERR_UNSUPPORTED)
            notfound = true; /* a seller elsewhere, not one of this network */
        else
            bad = true;
        log_failure(net, ri, "registry served an unusable peer", "peer", 200, why);
    }
    return bad ? OS_ERR_CRYPTO : notfound ? OS_ERR_NOTFOUND : OS_ERR_NETWORK;
}

void os_peer_list_free(os_peer_list *l)
{
    if (l == NULL)
        return;
    free(l->peers);
    memset(l, 0, sizeof(*l));
}
