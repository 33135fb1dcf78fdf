/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The read-only views of buyer.db (bdb.h): the ledger (requests and vouchers, newest first, one
 * filtered page at a time) and the spending totals, each read inside one transaction so its parts
 * agree. Amounts are decimal strings, counts JSON integers, times Unix seconds; sums saturate
 * rather than wrap. The spend breakdown (per UTC day, per service) and the spend series (fixed
 * buckets of time) are summed from the finished requests. Filters are bound parameters of fixed
 * SQL texts: nothing a client sends becomes SQL.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/json.h"

#include "bdb_internal.h"

/* ---- views -------------------------------------------------------------------------------- */

/* Counts are JSON integers; one past INT64_MAX is written as a decimal string, never wrapped. */
static json_t *j_count(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v) : os_money_to_json(v);
}

static json_t *j_blob(sqlite3_stmt *st, int i, size_t n)
{
    uint8_t buf[32];
    if (n > sizeof(buf) || bdb_col_blob(st, i, buf, n) != 0)
        return json_null();
    return n == 20 ? os_json_address(buf) : os_json_hex(buf, n);
}

static json_t *j_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    json_t *v;
    if (t == NULL)
        return json_null();
    v = json_stringn(t, (size_t)sqlite3_column_bytes(st, i));
    return v != NULL ? v : json_string("?");
}

/* The filters of a by_ledger_query as ?1..?4 (NULL: any); one text for the page and its count. */
#define LEDGER_WHERE                                                                               \
    " WHERE (?1 IS NULL OR seller = ?1) AND (?2 IS NULL OR service = ?2)"                          \
    " AND (?3 IS NULL OR outcome = ?3) AND (?4 IS NULL OR api = ?4)"

/* SQLITE_STATIC: every caller steps and resets the statement before q goes away. */
static bool bind_text_or_null(sqlite3_stmt *st, int i, const char *t)
{
    return (t != NULL ? sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC)
                      : sqlite3_bind_null(st, i)) == SQLITE_OK;
}

static bool bind_filters(sqlite3_stmt *st, const by_ledger_query *q)
{
    return (q->has_seller ? sqlite3_bind_blob(st, 1, q->seller, 20, SQLITE_STATIC)
                          : sqlite3_bind_null(st, 1)) == SQLITE_OK &&
           bind_text_or_null(st, 2, q->service) && bind_text_or_null(st, 3, q->outcome) &&
           bind_text_or_null(st, 4, q->api);
}

static json_t *requests_view(os_db *db, const by_ledger_query *q)
{
    sqlite3_stmt *st = os_db_stmt(
        db, "SELECT id, seller, channel_id, service, api, estimate, cost, input_tokens,"
            " cached_tokens, output_tokens, latency_ms, ttft_ms, outcome, at,"
            " finished_at FROM requests" LEDGER_WHERE " ORDER BY id DESC LIMIT ?5 OFFSET ?6");
    json_t *arr = json_array();
    int rc;

    if (st == NULL || arr == NULL || !bind_filters(st, q) ||
        sqlite3_bind_int64(st, 5, (sqlite3_int64)q->limit) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, (sqlite3_int64)q->offset) != SQLITE_OK) {
        if (st != NULL)
            sqlite3_reset(st);
        json_decref(arr);
        return NULL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        if (o == NULL || json_array_append_new(arr, o) != 0 ||
            !os_json_put(o, "id", j_count(bdb_col_u64(st, 0))) ||
            !os_json_put(o, "seller", j_blob(st, 1, 20)) ||
            !os_json_put(o, "channel_id", j_blob(st, 2, 32)) ||
            !os_json_put(o, "service", j_text(st, 3)) || !os_json_put(o, "api", j_text(st, 4)) ||
            !os_json_put(o, "estimate", os_money_to_json(bdb_col_u64(st, 5))) ||
            !os_json_put(o, "cost", os_money_to_json(bdb_col_u64(st, 6))) ||
            !os_json_put(o, "input_tokens", j_count(bdb_col_u64(st, 7))) ||
            !os_json_put(o, "cached_tokens", j_count(bdb_col_u64(st, 8))) ||
            !os_json_put(o, "output_tokens", j_count(bdb_col_u64(st, 9))) ||
            !os_json_put(o, "latency_ms", j_count(bdb_col_u64(st, 10))) ||
            !os_json_put(o, "ttft_ms", j_count(bdb_col_u64(st, 11))) ||
            !os_json_put(o, "outcome", j_text(st, 12)) ||
            !os_json_put(o, "at", json_integer(sqlite3_column_int64(st, 13))) ||
            !os_json_put(o, "finished_at",
                         sqlite3_column_type(st, 14) == SQLITE_NULL
                             ? json_null()
                             : json_integer(sqlite3_column_int64(st, 14)))) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* How many requests match q's filters; -1 on failure. */
static int64_t requests_count(os_db *db, const by_ledger_query *q)
{
    sqlite3_stmt *st = os_db_stmt(db, "SELECT COUNT(*) FROM requests" LEDGER_WHERE);
    int64_t n = -1;

    if (st == NULL)
        return -1;
    if (bind_filters(st, q) && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

static json_t *vouchers_view(os_db *db, unsigned limit)
{
    sqlite3_stmt *st = os_db_stmt(db, "SELECT channel_id, nonce, cumulative, at FROM vouchers"
                                      " ORDER BY id DESC LIMIT ?1");
    json_t *arr = json_array();
    int rc;

    if (st == NULL || arr == NULL || sqlite3_bind_int64(st, 1, (sqlite3_int64)limit) != SQLITE_OK) {
        if (st != NULL)
            sqlite3_reset(st);
        json_decref(arr);
        return NULL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        if (o == NULL || json_array_append_new(arr, o) != 0 ||
            !os_json_put(o, "channel_id", j_blob(st, 0, 32)) ||
            !os_json_put(o, "nonce", j_count(bdb_col_u64(st, 1))) ||
            !os_json_put(o, "cumulative", os_money_to_json(bdb_col_u64(st, 2))) ||
            !os_json_put(o, "at", json_integer(sqlite3_column_int64(st, 3)))) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *by_bdb_ledger_query_json(by_bdb *b, const by_ledger_query *q_in)
{
    by_ledger_query q;
    json_t *root, *req = NULL, *vou = NULL;
    int64_t total = -1;

    if (b == NULL || q_in == NULL)
        return NULL;
    q = *q_in;
    q.limit = q.limit < 1 ? 1 : q.limit > BY_LEDGER_LIMIT_MAX ? BY_LEDGER_LIMIT_MAX : q.limit;
    q.offset = q.offset > BY_LEDGER_OFFSET_MAX ? BY_LEDGER_OFFSET_MAX : q.offset;
    pthread_mutex_lock(&b->mu);
    /* one read transaction so the page, its total and the vouchers agree */
    if (os_db_exec(b->db, "BEGIN", NULL, 0) == OS_OK) {
        req = requests_view(b->db, &q);
        if (req != NULL)
            total = requests_count(b->db, &q);
        vou = vouchers_view(b->db, q.limit);
        os_db_rollback(b->db);
    }
    pthread_mutex_unlock(&b->mu);
    root = json_object();
    if (root == NULL || req == NULL || vou == NULL || total < 0) {
        json_decref(root);
        json_decref(req);
        json_decref(vou);
        return NULL;
    }
    /* os_json_put takes its value whether or not it succeeds */
    if (!os_json_put(root, "requests", req)) {
        json_decref(vou);
        json_decref(root);
        return NULL;
    }
    if (!os_json_put(root, "vouchers", vou) ||
        !os_json_put(root, "total", j_count((uint64_t)total)) ||
        !os_json_put(root, "limit", json_integer((json_int_t)q.limit)) ||
        !os_json_put(root, "offset", j_count(q.offset))) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *by_bdb_ledger_json(by_bdb *b, unsigned limit)
{
    by_ledger_query q = {.limit = limit};
    return by_bdb_ledger_query_json(b, &q);
}

static os_err totals(os_db *db, uint64_t *spent, uint64_t *deposited, uint64_t *requests,
                     json_t *per)
{
    sqlite3_stmt *st;
    int rc;

    st = os_db_stmt(db, "SELECT seller, spent, requests FROM spend_sellers ORDER BY seller");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        uint64_t s = bdb_col_u64(st, 1), r = bdb_col_u64(st, 2);
        *spent = bdb_sat_add(*spent, s);
        *requests = bdb_sat_add(*requests, r);
        if (o == NULL || json_array_append_new(per, o) != 0 ||
            !os_json_put(o, "seller", j_blob(st, 0, 20)) ||
            !os_json_put(o, "spent", os_money_to_json(s)) ||
            !os_json_put(o, "requests", j_count(r))) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return bdb_sql_err(rc);
    st = os_db_stmt(db, "SELECT amount FROM deposits");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *deposited = bdb_sat_add(*deposited, bdb_col_u64(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? OS_OK : bdb_sql_err(rc);
}

os_err by_bdb_totals(by_bdb *b, uint64_t *spent, uint64_t *deposited, uint64_t *requests,
                     json_t **per_seller)
{
    json_t *per;
    os_err e;

    if (b == NULL || spent == NULL || deposited == NULL || requests == NULL || per_seller == NULL)
        return OS_ERR_INVALID;
    *spent = *deposited = *requests = 0;
    *per_seller = NULL;
    if ((per = json_array()) == NULL)
        return OS_ERR_NOMEM;
    pthread_mutex_lock(&b->mu);
    e = os_db_exec(b->db, "BEGIN", NULL, 0);
    if (e == OS_OK) {
        e = totals(b->db, spent, deposited, requests, per);
        os_db_rollback(b->db);
    }
    pthread_mutex_unlock(&b->mu);
    if (e != OS_OK) {
        json_decref(per);
        return e;
    }
    *per_seller = per;
    return OS_OK;
}

/* What a group of finished requests adds up to. */
typedef struct sums {
    uint64_t spent, n, in, out;
} sums;

static void sums_add(sums *g, sqlite3_stmt *st, int cost_col)
{
    g->spent = bdb_sat_add(g->spent, bdb_col_u64(st, cost_col));
    g->n = bdb_sat_add(g->n, 1);
    g->in = bdb_sat_add(g->in, bdb_col_u64(st, cost_col + 1));
    g->out = bdb_sat_add(g->out, bdb_col_u64(st, cost_col + 2));
}

/* Puts spent, requests, input_tokens and output_tokens of g into o; false when out of memory. */
static bool sums_put(json_t *o, const sums *g)
{
    return os_json_put(o, "spent", os_money_to_json(g->spent)) &&
           os_json_put(o, "requests", j_count(g->n)) &&
           os_json_put(o, "input_tokens", j_count(g->in)) &&
           os_json_put(o, "output_tokens", j_count(g->out));
}

/* Appends {key: name, spent, requests, input_tokens, output_tokens} to arr; false when out of
 * memory. */
static bool group_put(json_t *arr, const char *key, json_t *name, const sums *g)
{
    json_t *o = json_object();
    if (o == NULL || json_array_append_new(arr, o) != 0) {
        json_decref(name);
        return false;
    }
    return os_json_put(o, key, name) && sums_put(o, g);
}

static json_t *day_name(int64_t day)
{
    char buf[16];
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%d", &tm) == 0)
        return json_string("?");
    return json_string(buf);
}

/* Sums are made here, not in SQL: the columns hold unsigned values (bdb_internal.h). Rows come
 * sorted by the group, so each group is one run of rows. */
static os_err per_day_view(os_db *db, json_t *arr, uint64_t since_day)
{
    sqlite3_stmt *st = os_db_stmt(
        db, "SELECT COALESCE(finished_at, at) / 86400 AS d, cost, input_tokens, output_tokens"
            " FROM requests WHERE outcome != 'in_flight' AND COALESCE(finished_at, at) >= ?1"
            " ORDER BY d DESC");
    int64_t cur = -1;
    sums g = {0};
    int rc;

    if (st == NULL)
        return OS_ERR_INTERNAL;
    if (since_day > (uint64_t)INT64_MAX / 86400 ||
        sqlite3_bind_int64(st, 1, (sqlite3_int64)(since_day * 86400)) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INVALID;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t d = sqlite3_column_int64(st, 0);
        if (d != cur && g.n > 0 && !group_put(arr, "day", day_name(cur), &g)) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (d != cur) {
            cur = d;
            memset(&g, 0, sizeof(g));
        }
        sums_add(&g, st, 1);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE && g.n > 0 && !group_put(arr, "day", day_name(cur), &g))
        rc = SQLITE_NOMEM;
    return rc == SQLITE_DONE ? OS_OK : rc == SQLITE_NOMEM ? OS_ERR_NOMEM : bdb_sql_err(rc);
}

static os_err per_service_view(os_db *db, json_t *arr)
{
    sqlite3_stmt *st =
        os_db_stmt(db, "SELECT service, cost, input_tokens, output_tokens FROM requests"
                       " WHERE outcome != 'in_flight' ORDER BY service");
    json_t *cur = NULL;
    sums g = {0};
    int rc;

    if (st == NULL)
        return OS_ERR_INTERNAL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *name = j_text(st, 0);
        if (name == NULL) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (cur == NULL || !json_equal(cur, name)) {
            if (cur != NULL && !group_put(arr, "service", cur, &g)) {
                cur = NULL;
                json_decref(name);
                rc = SQLITE_NOMEM;
                break;
            }
            cur = name;
            memset(&g, 0, sizeof(g));
        } else {
            json_decref(name);
        }
        sums_add(&g, st, 1);
    }
    sqlite3_reset(st);
    if (cur != NULL) {
        if (rc == SQLITE_DONE) {
            if (!group_put(arr, "service", cur, &g))
                rc = SQLITE_NOMEM;
        } else {
            json_decref(cur);
        }
    }
    return rc == SQLITE_DONE ? OS_OK : rc == SQLITE_NOMEM ? OS_ERR_NOMEM : bdb_sql_err(rc);
}

os_err by_bdb_breakdown(by_bdb *b, json_t **per_day, json_t **per_service, uint64_t since_day)
{
    json_t *days, *svcs;
    os_err e;

    if (b == NULL || per_day == NULL || per_service == NULL)
        return OS_ERR_INVALID;
    *per_day = *per_service = NULL;
    days = json_array();
    svcs = json_array();
    if (days == NULL || svcs == NULL) {
        json_decref(days);
        json_decref(svcs);
        return OS_ERR_NOMEM;
    }
    pthread_mutex_lock(&b->mu);
    e = os_db_exec(b->db, "BEGIN", NULL, 0);
    if (e == OS_OK) {
        e = per_day_view(b->db, days, since_day);
        if (e == OS_OK)
            e = per_service_view(b->db, svcs);
        os_db_rollback(b->db);
    }
    pthread_mutex_unlock(&b->mu);
    if (e != OS_OK) {
        json_decref(days);
        json_decref(svcs);
        return e;
    }
    *per_day = days;
    *per_service = svcs;
    return OS_OK;
}

/* ---- the spend series --------------------------------------------------------------------- */

/* Sums the finished requests of [first, first + points * step) into g[points]. */
static os_err series_sum(os_db *db, sums *g, int64_t first, uint64_t step, unsigned points)
{
    /* the same expression as the index requests_by_end (bdb.c), so the range is a seek */
    sqlite3_stmt *st = os_db_stmt(
        db, "SELECT COALESCE(finished_at, at), cost, input_tokens, output_tokens FROM requests"
            " WHERE outcome != 'in_flight' AND COALESCE(finished_at, at) >= ?1"
            " AND COALESCE(finished_at, at) < ?2");
    int64_t end = first + (int64_t)(step * points);
    int rc;

    if (st == NULL)
        return OS_ERR_INTERNAL;
    if (sqlite3_bind_int64(st, 1, first) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, end) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(st, 0);
        if (t < first || t >= end)
            continue; /* the WHERE says not; an index on a changed expression would not */
        sums_add(&g[(uint64_t)(t - first) / step], st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? OS_OK : bdb_sql_err(rc);
}

os_err by_bdb_series(by_bdb *b, json_t **out, int64_t now, uint64_t step, unsigned points)
{
    int64_t last, first;
    json_t *root = NULL, *arr;
    sums *g;
    os_err e;

    if (out != NULL)
        *out = NULL;
    /* now + step and (points - 1) * step stay far inside int64 with these bounds */
    if (b == NULL || out == NULL || step < 1 || step > BY_SERIES_STEP_MAX || points < 1 ||
        points > BY_SERIES_POINTS_MAX || now < 0 || now > INT64_MAX / 2)
        return OS_ERR_INVALID;
    last = now - (int64_t)((uint64_t)now % step);
    first = last - (int64_t)((uint64_t)(points - 1) * step);
    if ((g = calloc(points, sizeof(*g))) == NULL)
        return OS_ERR_NOMEM;
    pthread_mutex_lock(&b->mu);
    e = series_sum(b->db, g, first, step, points);
    pthread_mutex_unlock(&b->mu);
    if (e == OS_OK) {
        e = OS_ERR_NOMEM;
        if ((root = json_object()) != NULL &&
            os_json_put(root, "step", json_integer((json_int_t)step)) &&
            os_json_put(root, "from", json_integer(first)) &&
            os_json_put(root, "to", json_integer(last + (int64_t)step)) &&
            (arr = os_json_child(root, "points", json_array())) != NULL) {
            unsigned i;
            for (i = 0; i < points; i++) {
                json_t *o = json_object();
                if (o == NULL || json_array_append_new(arr, o) != 0 ||
                    !os_json_put(o, "t", json_integer(first + (int64_t)(i * step))) ||
                    !sums_put(o, &g[i]))
                    break;
            }
            if (i == points)
                e = OS_OK;
        }
    }
    free(g);
    if (e != OS_OK) {
        json_decref(root);
        return e;
    }
    *out = root;
    return OS_OK;
}
