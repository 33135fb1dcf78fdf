/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller directory's side of the registries' API (GET /v1/peers, /v1/peers/{node},
 * /v1/services). A listing is walked page by page from the first registry, in configuration
 * order, that answers with at least one usable seller for the service (a registry that is down,
 * refuses, answers malformed JSON or lists nobody usable passes the question to the next; when
 * every one that answered listed nobody, the answer is an empty list; a listing of forged or
 * malformed records only is no answer, so the last verified copy stays). Scores from different
 * registries are not comparable, so a listing is never a merge. The model list, on the contrary,
 * is the union of every answering registry's services, so a service that only the second
 * registry knows is still offered (and its listing then comes from there).
 */
#include "peers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/http_client.h"
#include "openseed/json.h"
#include "openseed/secp.h"

#include "peers_internal.h"

#define MAX_URL_LEN 2048
#define MAX_CURSOR_LEN 256
#define PAGE_LIMIT 100      /* the registry's own maximum */
#define MAX_PAGE_ITEMS 1000 /* a page longer than this is malformed */
#define MAX_LISTING 1000    /* peers kept per service */
#define MAX_PAGES 32
#define MAX_MODELS 10000

/* ------------------------------------------------------------------ URLs */

/* Appends s to out[*len..cap) percent-encoded (everything but RFC 3986 unreserved). */
static bool pct_append(char *out, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (*len + (plain ? 1 : 3) >= cap)
            return false;
        if (plain) {
            out[(*len)++] = (char)c;
        } else {
            out[(*len)++] = '%';
            out[(*len)++] = hex[c >> 4];
            out[(*len)++] = hex[c & 15];
        }
    }
    out[*len] = '\0';
    return true;
}

static bool raw_append(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n >= cap)
        return false;
    memcpy(out + *len, s, n + 1);
    *len += n;
    return true;
}

/* ------------------------------------------------------------------ talking to registries */

static void log_registry(by_peers *p, size_t ri, const char *msg, const char *what, long status,
                         const char *why)
{
    os_log_event ev;
    if (os_log_begin(&ev, p->log, OS_LOG_WARN, msg)) {
        os_log_kv(&ev, "registry", "%zu", ri);
        os_log_kv(&ev, "request", "%s", what);
        if (status > 0)
            os_log_kv(&ev, "status", "%ld", status);
        if (why != NULL)
            os_log_kv(&ev, "error", "%s", why);
        os_log_end(&ev);
    }
}

/* GET url from registry ri: OS_OK with a 200 and a JSON object in *body, else an error (logged,
 * but for a 404 when quiet_404: an unknown node is an answer, not a fault). */
static os_err registry_get(by_peers *p, size_t ri, const char *url, const char *what,
                           bool quiet_404, long *status, json_t **body)
{
    os_http_client_error e;
    os_err rc;

    *body = NULL;
    *status = 0;
    rc = os_http_client_json(p->http, status, body, &e, "GET", url, NULL, NULL, 0);
    if (rc != OS_OK) {
        log_registry(p, ri, "registry request failed", what, e.status, e.message);
        return rc == OS_ERR_NOMEM ? rc : OS_ERR_NETWORK;
    }
    if (*status != 200 || !json_is_object(*body)) {
        if (*status != 404 || !quiet_404)
            log_registry(p, ri, "registry refused", what, *status,
                         *status == 200 ? "the answer is not a JSON object" : NULL);
        json_decref(*body);
        *body = NULL;
        return OS_ERR_NETWORK;
    }
    return OS_OK;
}

/* Every page of registry ri's listing for service, appended to acc (at most MAX_LISTING). */
static os_err fetch_pages(by_peers *p, size_t ri, const char *service, json_t *acc)
{
    char url[MAX_URL_LEN], why[OS_JSON_ERR_LEN];
    char *cursor = NULL;
    json_t *body = NULL;
    bool truncated = false, done = false;
    long status;
    os_err rc = OS_OK;

    for (size_t page = 0; page < MAX_PAGES && !done; page++) {
        const json_t *peers;
        const char *next;
        size_t len;
        int w =
            snprintf(url, sizeof(url), "%s/v1/peers?limit=%d&service=", p->regs[ri], PAGE_LIMIT);
        if (w < 0 || (size_t)w >= sizeof(url))
            goto toolong;
        len = (size_t)w;
        if (!pct_append(url, sizeof(url), &len, service) ||
            (cursor != NULL && (!raw_append(url, sizeof(url), &len, "&cursor=") ||
                                !pct_append(url, sizeof(url), &len, cursor))))
            goto toolong;
        if ((rc = registry_get(p, ri, url, "peers", false, &status, &body)) != OS_OK)
            break;
        if (os_json_get_array(&peers, body, "peers", MAX_PAGE_ITEMS, why, sizeof(why)) != OS_OK ||
            os_json_opt_str(&next, body, "next_cursor", MAX_CURSOR_LEN, why, sizeof(why)) !=
                OS_OK) {
            log_registry(p, ri, "registry answered a malformed listing", "peers", 200, why);
            rc = OS_ERR_NETWORK;
            break;
        }
        for (size_t i = 0; i < json_array_size(peers); i++) {
            if (json_array_size(acc) >= MAX_LISTING) {
                truncated = true;
                break;
            }
            if (json_array_append(acc, json_array_get(peers, i)) != 0) {
                rc = OS_ERR_NOMEM;
                break;
            }
        }
        if (rc != OS_OK)
            break;
        if (truncated || next == NULL || next[0] == '\0' ||
            (cursor != NULL && strcmp(cursor, next) == 0)) {
            done = true;
        } else {
            free(cursor);
            if ((cursor = strdup(next)) == NULL) {
                rc = OS_ERR_NOMEM;
                break;
            }
        }
        json_decref(body);
        body = NULL;
    }
    if (rc == OS_OK && !done)
        truncated = true;
    if (rc == OS_OK && truncated) {
        os_log_event ev;
        if (os_log_begin(&ev, p->log, OS_LOG_INFO, "listing truncated")) {
            os_log_kv(&ev, "registry", "%zu", ri);
            os_log_kv(&ev, "service", "%s", service);
            os_log_kv(&ev, "kept", "%zu", json_array_size(acc));
            os_log_end(&ev);
        }
    }
    json_decref(body);
    free(cursor);
    return rc;
toolong:
    free(cursor);
    json_decref(body);
    log_registry(p, ri, "registry URL too long", "peers", 0, NULL);
    return OS_ERR_NETWORK;
}

/* The listing from the first registry that lists anyone usable (see the file comment). */
os_err by_peers_fetch_listing_(by_peers *p, const char *service, by_listing_entry **out,
                               size_t *n_out)
{
    bool answered = false;
    os_err rc = OS_ERR_NETWORK;

    *out = NULL;
    *n_out = 0;
    for (size_t ri = 0; ri < p->n_regs; ri++) {
        json_t *acc = json_array();
        by_listing_entry *e = NULL;
        size_t n = 0;

        if (acc == NULL)
            return OS_ERR_NOMEM;
        rc = fetch_pages(p, ri, service, acc);
        if (rc == OS_OK)
            rc = by_peers_build_listing_(p, ri, acc, &e, &n);
        json_decref(acc);
        if (rc == OS_ERR_NOMEM)
            return rc;
        if (rc != OS_OK)
            continue;
        answered = true;
        if (n > 0) {
            *out = e;
            *n_out = n;
            return OS_OK;
        }
        free(e);
    }
    return answered ? OS_OK : OS_ERR_NETWORK;
}

/* GET /v1/peers/{node} on each registry until one knows it. *out NULL: none does. */
os_err by_peers_pin_lookup_(by_peers *p, const uint8_t node[20], by_peer_ref **out,
                            by_listing_entry *view)
{
    char hex[OS_ADDRESS_STR_LEN], url[MAX_URL_LEN], why[OS_RECORD_ERR_LEN];
    bool answered = false;
    by_peer_ref *known = NULL, *pr = NULL;
    int64_t now;

    *out = NULL;
    pthread_mutex_lock(&p->mu);
    now = by_peers_now_ms_(p);
    by_peer_node *ne = by_peers_node_find_(p, node);
    if (ne != NULL && ne->last != NULL && now - ne->last_ms < p->ttl_ms) {
        *out = ne->last;
        ne->last->refs++;
        *view = (by_listing_entry){.score = ne->reg_score};
        pthread_mutex_unlock(&p->mu);
        return OS_OK;
    }
    if (ne != NULL && ne->notfound && now - ne->notfound_ms < p->ttl_ms) {
        pthread_mutex_unlock(&p->mu);
        return OS_OK;
    }
    if (ne != NULL && ne->last != NULL) {
        known = ne->last;
        known->refs++;
    }
    pthread_mutex_unlock(&p->mu);

    os_eip55_format(hex, node);
    for (size_t ri = 0; ri < p->n_regs && pr == NULL; ri++) {
        json_t *body;
        long status;
        int w = snprintf(url, sizeof(url), "%s/v1/peers/%s", p->regs[ri], hex);
        if (w < 0 || (size_t)w >= sizeof(url))
            continue;
        if (registry_get(p, ri, url, "peer", true, &status, &body) != OS_OK) {
            answered = answered || status == 404;
            continue;
        }
        answered = true;
        if ((pr = calloc(1, sizeof(*pr))) == NULL) {
            json_decref(body);
            by_peers_unref_(p, known);
            return OS_ERR_NOMEM;
        }
        if (by_peers_parse_peer(&pr->v, body, p->chain_id, p->escrow,
                                known != NULL ? &known->v : NULL, why, sizeof(why)) != OS_OK ||
            (memcmp(pr->v.record.node, node, 20) != 0 &&
             os_errf(why, sizeof(why), OS_ERR_INVALID, "the answer is another node's") != OS_OK)) {
            log_registry(p, ri, "registry served an unusable peer", "peer", 200, why);
            free(pr);
            pr = NULL;
        }
        json_decref(body);
    }

    pthread_mutex_lock(&p->mu);
    now = by_peers_now_ms_(p);
    ne = by_peers_node_get_(p, node, now);
    if (pr != NULL) {
        pr->refs = 1;
        *view = by_peers_entry_(&pr->v);
        if (ne != NULL) {
            by_peers_node_take_(ne, pr, now);
            by_peers_node_set_view_(ne, view);
        }
        *out = pr;
    } else if (answered && ne != NULL) {
        ne->notfound = true;
        ne->notfound_ms = now;
    } else if (!answered && known != NULL) {
        /* every registry is down: the last copy seen is better than nothing */
        *out = known;
        known->refs++;
        *view = (by_listing_entry){.score = ne != NULL ? ne->reg_score : known->v.score};
    }
    by_peers_unref_locked_(known);
    pthread_mutex_unlock(&p->mu);
    return answered || *out != NULL ? OS_OK : OS_ERR_NETWORK;
}

/* ------------------------------------------------------------------ models */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *models_json(const json_t *names)
{
    size_t n = json_object_size(names), k = 0;
    const char **keys = calloc(n > 0 ? n : 1, sizeof(*keys));
    json_t *root = json_object(), *data = NULL;
    const char *key;
    json_t *v;

    if (keys == NULL || root == NULL || !os_json_put(root, "object", json_string("list")) ||
        (data = os_json_child(root, "data", json_array())) == NULL)
        goto fail;
    json_object_foreach((json_t *)names, key, v)
    {
        (void)v;
        keys[k++] = key;
    }
    if (k > 1)
        qsort(keys, k, sizeof(*keys), str_cmp);
    for (size_t i = 0; i < k; i++) {
        json_t *m = json_object();
        if (json_array_append_new(data, m) != 0 || !os_json_put(m, "id", json_string(keys[i])) ||
            !os_json_put(m, "object", json_string("model")) ||
            !os_json_put(m, "created", json_integer(0)) ||
            !os_json_put(m, "owned_by", json_string("openseed")))
            goto fail;
    }
    free(keys);
    return root;
fail:
    free(keys);
    json_decref(root);
    return NULL;
}

/* The union of every answering registry's services. */
os_err by_peers_fetch_models_(by_peers *p, json_t **out)
{
    json_t *names = json_object();
    bool answered = false;
    char url[MAX_URL_LEN], why[OS_JSON_ERR_LEN];

    *out = NULL;
    if (names == NULL)
        return OS_ERR_NOMEM;
    for (size_t ri = 0; ri < p->n_regs; ri++) {
        const json_t *arr;
        json_t *body;
        long status;
        int w = snprintf(url, sizeof(url), "%s/v1/services", p->regs[ri]);
        if (w < 0 || (size_t)w >= sizeof(url) ||
            registry_get(p, ri, url, "services", false, &status, &body) != OS_OK)
            continue;
        if (os_json_get_array(&arr, body, "services", MAX_MODELS, why, sizeof(why)) != OS_OK) {
            log_registry(p, ri, "registry answered a malformed service list", "services", 200, why);
            json_decref(body);
            continue;
        }
        answered = true;
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const json_t *s = json_array_get(arr, i);
            const char *name;
            uint64_t peers;
            if (!json_is_object(s) || os_json_get_str(&name, s, "service", 63, NULL, 0) != OS_OK ||
                !by_peers_service_ok_(name) ||
                os_json_opt_u64(&peers, s, "peers", 1, NULL, 0) != OS_OK || peers == 0 ||
                json_object_size(names) >= MAX_MODELS)
                continue;
            if (json_object_set_new(names, name, json_true()) != 0) {
                json_decref(body);
                json_decref(names);
                return OS_ERR_NOMEM;
            }
        }
        json_decref(body);
    }
    if (!answered) {
        json_decref(names);
        return OS_ERR_NETWORK;
    }
    *out = models_json(names);
    json_decref(names);
    return *out != NULL ? OS_OK : OS_ERR_NOMEM;
}
