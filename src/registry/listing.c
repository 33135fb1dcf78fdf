/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's read side (PROTOCOL.md §4): GET /v1/peers (filters, ranking, cursor pages),
 * GET /v1/peers/{node_id} and GET /v1/services, all served from the in-memory index under its
 * read lock, as text assembled from pieces rendered when the seller last wrote (its record and
 * signature, its endpoint and signed heartbeat): no SQLite and no JSON building per query.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/hex.h"
#include "openseed/money.h"
#include "openseed/secp.h"

#include "internal.h"

#define OUT_MAX (RG_LIMIT_MAX * (OS_RECORD_MAX_BYTES + RG_LIVE_MAX + 256) + 256)
#define CURSOR_BYTES (8 + 8 + 20)

typedef struct peers_query {
    char key[RG_KEY_MAX];
    size_t key_len;
    bool has_max_in, has_max_out;
    uint64_t max_in, max_out;
    double min_rep;
    size_t limit;
    bool has_cursor;
    uint64_t cur_epoch;
    double cur_score;
    uint8_t cur_node[20];
} peers_query;

static bool name_ok(const char *s)
{
    return os_record_name_ok(s, strlen(s));
}

/* A plain decimal in [0, 1]: digits with at most one '.', nothing strtod would also take (signs,
 * exponents, hex, inf, nan). */
static bool parse_unit_decimal(double *out, const char *s)
{
    size_t n = strlen(s), dots = 0, digits = 0;
    char *end;

    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.')
            dots++;
        else if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else
            return false;
    }
    if (dots > 1 || digits == 0)
        return false;
    double v = strtod(s, &end);
    if (*end != '\0' || !(v >= 0.0 && v <= 1.0))
        return false;
    *out = v;
    return true;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/*
 * The cursor is opaque to clients: hex of epoch(8) || score(8, IEEE bits) || node(20) of the last
 * peer served. A page continues strictly after that (score, node) in the listing's order, in the
 * very snapshot the previous page came from while it is still held (the current and the previous
 * pass), so a walk that takes less than one rescore interval sees every listed peer exactly once;
 * later it continues in the current listing after the same position.
 */
static void cursor_encode(char out[2 * CURSOR_BYTES + 1], uint64_t epoch, double score,
                          const uint8_t node[20])
{
    uint8_t b[CURSOR_BYTES];
    uint64_t bits;

    memcpy(&bits, &score, sizeof(bits));
    put_be64(b, epoch);
    put_be64(b + 8, bits);
    memcpy(b + 16, node, 20);
    if (os_hex_encode(out, 2 * CURSOR_BYTES + 1, b, sizeof(b), 0) != OS_OK)
        out[0] = '\0';
}

static bool cursor_decode(peers_query *q, const char *s)
{
    uint8_t b[CURSOR_BYTES];
    uint64_t bits;

    if (strlen(s) != 2 * CURSOR_BYTES || os_hex_decode_exact(b, sizeof(b), s) != OS_OK)
        return false;
    q->cur_epoch = get_be64(b);
    bits = get_be64(b + 8);
    memcpy(&q->cur_score, &bits, sizeof(bits));
    memcpy(q->cur_node, b + 16, 20);
    return isfinite(q->cur_score) && q->cur_score >= 0.0 && q->cur_score <= 1.0;
}

static bool parse_peers_query(rg_registry *rg, peers_query *q, const os_http_request *req,
                              os_http_response *res)
{
    const char *service = os_http_req_query(req, "service");
    const char *cap = os_http_req_query(req, "capability");
    const char *s;

    memset(q, 0, sizeof(*q));
    q->limit = RG_LIMIT_DEFAULT;
    if (service != NULL && service[0] != '\0' && !name_ok(service)) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_query",
               "service must be 1-63 characters of [A-Za-z0-9._:/-]");
        return false;
    }
    if (cap != NULL && cap[0] != '\0' && strcmp(cap, "inference") != 0 &&
        strcmp(cap, "agent") != 0 && strcmp(cap, "tool") != 0) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_query",
               "capability must be inference, agent or tool");
        return false;
    }
    q->key_len = rg_view_key(q->key, service, cap);
    if ((s = os_http_req_query(req, "max_input")) != NULL) {
        if (os_money_parse_units(&q->max_in, s) != OS_OK) {
            REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_query",
                   "max_input must be a decimal integer (micro-USDC per million tokens)");
            return false;
        }
        q->has_max_in = true;
    }
    if ((s = os_http_req_query(req, "max_output")) != NULL) {
        if (os_money_parse_units(&q->max_out, s) != OS_OK) {
            REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_query",
                   "max_output must be a decimal integer (micro-USDC per million tokens)");
            return false;
        }
        q->has_max_out = true;
    }
    if ((s = os_http_req_query(req, "min_reputation")) != NULL &&
        !parse_unit_decimal(&q->min_rep, s)) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_query",
               "min_reputation must be a decimal between 0 and 1");
        return false;
    }
    {
        uint64_t l;
        if (os_http_req_query_uint(req, "limit", 1, RG_LIMIT_MAX, q->limit, &l) != OS_OK) {
            REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_query",
                   "limit must be an integer from 1 to %d", RG_LIMIT_MAX);
            return false;
        }
        q->limit = (size_t)l;
    }
    if ((s = os_http_req_query(req, "cursor")) != NULL && s[0] != '\0') {
        if (!cursor_decode(q, s)) {
            REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_cursor",
                   "cursor must be a next_cursor this registry returned");
            return false;
        }
        q->has_cursor = true;
    }
    return true;
}

static bool entry_matches(const rg_view *v, const rg_entry *e, const peers_query *q)
{
    if (e->rep < q->min_rep)
        return false;
    if (!q->has_max_in && !q->has_max_out)
        return true;
    for (uint32_t i = 0; i < e->pairs_n; i++) {
        const rg_pair *pp = &v->pairs[e->pairs_off + i];
        if ((!q->has_max_in || pp->input <= q->max_in) &&
            (!q->has_max_out || pp->output <= q->max_out))
            return true;
    }
    return false;
}

/* Appends one peer object; caller holds lock for reading. */
static os_err render_peer(os_buf *out, rg_peer *p, double rep, double score, bool with_active)
{
    char tail[256];
    os_err rc;
    int n;

    if ((rc = os_buf_append(out, p->prefix, p->prefix_len)) != OS_OK ||
        (rc = os_buf_append_byte(out, ',')) != OS_OK)
        return rc;
    pthread_mutex_lock(&p->mu);
    rc = os_buf_append(out, p->live, p->live_len);
    n = snprintf(tail, sizeof(tail),
                 ",\"reputation\":%.6f,\"score\":%.6f,\"last_seen\":%" PRId64
                 ",\"load\":{\"active\":%" PRIu32 ",\"capacity\":%" PRIu32 "}%s}",
                 rep, score, p->last_seen_ms / 1000, p->load_active, p->load_capacity,
                 with_active ? (atomic_load(&p->active) ? ",\"active\":true" : ",\"active\":false")
                             : "");
    pthread_mutex_unlock(&p->mu);
    if (rc != OS_OK)
        return rc;
    if (n < 0 || (size_t)n >= sizeof(tail))
        return OS_ERR_INTERNAL;
    return os_buf_append(out, tail, (size_t)n);
}

void rg_h_peers(void *ctx, const os_http_request *req, os_http_response *res)
{
    static const char head[] = "{\"peers\":[";
    rg_registry *rg = ctx;
    peers_query q;
    os_buf out;
    const rg_viewset *vs;
    const rg_view *v;
    const rg_entry *last = NULL;
    uint64_t epoch = 0;
    size_t i = 0, count = 0;
    bool more = false;
    os_err rc;

    os_metric_inc(rg->m_requests, RG_R_PEERS);
    if (!parse_peers_query(rg, &q, req, res))
        return;
    os_buf_init(&out, OUT_MAX);
    rc = os_buf_append(&out, head, sizeof(head) - 1);

    pthread_rwlock_rdlock(&rg->lock);
    vs = rg->cur;
    if (q.has_cursor && rg->prev != NULL && q.cur_epoch == rg->prev->epoch)
        vs = rg->prev;
    epoch = vs != NULL ? vs->epoch : 0;
    v = q.key_len > 0 ? rg_viewset_find(vs, q.key, q.key_len) : NULL;
    if (v != NULL && q.has_cursor) {
        size_t lo = 0, hi = v->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (rg_entry_cmp(v->e[mid].score, v->e[mid].peer->node, q.cur_score, q.cur_node) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        i = lo;
    }
    for (; v != NULL && i < v->n && rc == OS_OK; i++) {
        const rg_entry *e = &v->e[i];
        if (!atomic_load(&e->peer->active) || !entry_matches(v, e, &q))
            continue;
        if (count == q.limit) {
            more = true;
            break;
        }
        if (count > 0)
            rc = os_buf_append_byte(&out, ',');
        if (rc == OS_OK)
            rc = render_peer(&out, e->peer, e->rep, e->score, false);
        count++;
        last = e;
    }
    if (rc == OS_OK && more && last != NULL) {
        char cur[2 * CURSOR_BYTES + 1];
        char tail[2 * CURSOR_BYTES + 32];
        cursor_encode(cur, epoch, last->score, last->peer->node);
        int n = snprintf(tail, sizeof(tail), "],\"next_cursor\":\"%s\"}", cur);
        rc = os_buf_append(&out, tail, (size_t)n);
    } else if (rc == OS_OK) {
        static const char tail[] = "],\"next_cursor\":null}";
        rc = os_buf_append(&out, tail, sizeof(tail) - 1);
    }
    pthread_rwlock_unlock(&rg->lock);

    if (rc == OS_OK)
        rc = os_http_res_body(res, "application/json", out.data, out.len);
    if (rc != OS_OK)
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "cannot build the listing");
    else
        os_http_res_status(res, 200);
    os_buf_free(&out);
}

void rg_h_peer(void *ctx, const os_http_request *req, os_http_response *res)
{
    rg_registry *rg = ctx;
    uint8_t node[20];
    rg_peer *p;
    os_buf out;
    os_err rc;

    os_metric_inc(rg->m_requests, RG_R_PEER);
    if (os_eip55_parse(node, os_http_req_path_rest(req)) != OS_OK) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_node",
               "the path must end in a node id (0x + 40 hex digits, EIP-55 if mixed case)");
        return;
    }
    os_buf_init(&out, OS_RECORD_MAX_BYTES + RG_LIVE_MAX + 512);
    pthread_rwlock_rdlock(&rg->lock);
    if ((p = rg_peer_find(rg, node)) == NULL) {
        pthread_rwlock_unlock(&rg->lock);
        REJECT(rg, res, REJ_UNKNOWN, 404, T_INVALID, "unknown_node", "no such node");
        return;
    }
    rc = render_peer(&out, p, p->rep, p->score, true);
    pthread_rwlock_unlock(&rg->lock);
    if (rc == OS_OK)
        rc = os_http_res_body(res, "application/json", out.data, out.len);
    if (rc != OS_OK)
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "cannot render the peer");
    else
        os_http_res_status(res, 200);
    os_buf_free(&out);
}

typedef struct svc_row {
    char name[OS_RECORD_NAME_MAX];
    size_t peers;
    uint64_t lo_in, lo_out;
} svc_row;

static int svc_cmp(const void *a, const void *b)
{
    return strcmp(((const svc_row *)a)->name, ((const svc_row *)b)->name);
}

void rg_h_services(void *ctx, const os_http_request *req, os_http_response *res)
{
    rg_registry *rg = ctx;
    svc_row *rows = NULL;
    size_t n = 0;
    json_t *arr = json_array(), *reply;
    (void)req;

    os_metric_inc(rg->m_requests, RG_R_SERVICES);
    pthread_rwlock_rdlock(&rg->lock);
    const rg_viewset *vs = rg->cur;
    if (vs != NULL && vs->n > 0)
        rows = calloc(vs->n, sizeof(*rows));
    for (size_t i = 0; rows != NULL && i < vs->n; i++) {
        const rg_view *v = &vs->views[i];
        size_t ls = (unsigned char)v->key[0];
        /* (service, any) views only. */
        if (ls == 0 || v->key_len != 1 + ls)
            continue;
        svc_row *r = &rows[n];
        memcpy(r->name, v->key + 1, ls);
        r->name[ls] = '\0';
        r->lo_in = r->lo_out = UINT64_MAX;
        for (size_t j = 0; j < v->n; j++) {
            const rg_entry *e = &v->e[j];
            if (!atomic_load(&e->peer->active))
                continue;
            r->peers++;
            for (uint32_t k = 0; k < e->pairs_n; k++) {
                const rg_pair *pp = &v->pairs[e->pairs_off + k];
                if (pp->input < r->lo_in)
                    r->lo_in = pp->input;
                if (pp->output < r->lo_out)
                    r->lo_out = pp->output;
            }
        }
        if (r->peers > 0)
            n++;
    }
    pthread_rwlock_unlock(&rg->lock);

    if (n > 0)
        qsort(rows, n, sizeof(*rows), svc_cmp);
    for (size_t i = 0; arr != NULL && i < n; i++) {
        char in[OS_MONEY_UNITS_LEN], outp[OS_MONEY_UNITS_LEN];
        if (os_money_format_units(in, sizeof(in), rows[i].lo_in) != OS_OK ||
            os_money_format_units(outp, sizeof(outp), rows[i].lo_out) != OS_OK ||
            json_array_append_new(arr, json_pack("{s:s,s:I,s:s,s:s}", "service", rows[i].name,
                                                 "peers", (json_int_t)rows[i].peers, "lowest_input",
                                                 in, "lowest_output", outp)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    free(rows);
    reply = arr != NULL ? json_pack("{s:o}", "services", arr) : NULL;
    if (reply == NULL || os_http_res_json(res, 200, reply) != OS_OK)
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "out of memory");
}
