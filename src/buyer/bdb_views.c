/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The read-only views of buyer.db (bdb.h): the ledger (requests and vouchers, newest first) and
 * the spending totals, each read inside one transaction so its parts agree. Amounts are decimal
 * strings, counts JSON integers, times Unix seconds; sums saturate rather than wrap. The spend
 * breakdown (per UTC day, per service) is summed from the finished requests.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/json.h"

#include "bdb_internal.h"

#define VIEW_LIMIT_MAX 1000u

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

static json_t *requests_view(os_db *db, unsigned limit)
{
    sqlite3_stmt *st =
        os_db_stmt(db, "SELECT id, seller, channel_id, service, api, estimate, cost, input_tokens,"
                       " cached_tokens, output_tokens, latency_ms, ttft_ms, outcome, at"
                       " FROM requests ORDER BY id DESC LIMIT ?1");
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
            !os_json_put(o, "at", json_integer(sqlite3_column_int64(st, 13)))) {
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

json_t *by_bdb_ledger_json(by_bdb *b, unsigned limit)
{
    json_t *root, *req = NULL, *vou = NULL;

    if (b == NULL)
        return NULL;
    limit = limit < 1 ? 1 : limit > VIEW_LIMIT_MAX ? VIEW_LIMIT_MAX : limit;
    pthread_mutex_lock(&b->mu);
    /* one read transaction so the two lists agree */
    if (os_db_exec(b->db, "BEGIN", NULL, 0) == OS_OK) {
        req = requests_view(b->db, limit);
        vou = vouchers_view(b->db, limit);
        os_db_rollback(b->db);
    }
    pthread_mutex_unlock(&b->mu);
    root = json_object();
    if (root == NULL || req == NULL || vou == NULL) {
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
    if (!os_json_put(root, "vouchers", vou)) {
        json_decref(root);
        return NULL;
    }
    return root;
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

/* Appends {key: name, spent, requests} to arr; false when out of memory. */
static bool group_put(json_t *arr, const char *key, json_t *name, uint64_t spent, uint64_t n)
{
    json_t *o = json_object();
    if (o == NULL || json_array_append_new(arr, o) != 0) {
        json_decref(name);
        return false;
    }
    return os_json_put(o, key, name) && os_json_put(o, "spent", os_money_to_json(spent)) &&
           os_json_put(o, "requests", j_count(n));
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
        db, "SELECT COALESCE(finished_at, at) / 86400 AS d, cost FROM requests"
            " WHERE outcome != 'in_flight' AND COALESCE(finished_at, at) >= ?1 ORDER BY d DESC");
    int64_t cur = -1;
    uint64_t spent = 0, n = 0;
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
        if (d != cur && n > 0 && !group_put(arr, "day", day_name(cur), spent, n)) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (d != cur) {
            cur = d;
            spent = n = 0;
        }
        spent = bdb_sat_add(spent, bdb_col_u64(st, 1));
        n++;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE && n > 0 && !group_put(arr, "day", day_name(cur), spent, n))
        rc = SQLITE_NOMEM;
    return rc == SQLITE_DONE ? OS_OK : rc == SQLITE_NOMEM ? OS_ERR_NOMEM : bdb_sql_err(rc);
}

static os_err per_service_view(os_db *db, json_t *arr)
{
    sqlite3_stmt *st = os_db_stmt(db, "SELECT service, cost FROM requests"
                                      " WHERE outcome != 'in_flight' ORDER BY service");
    json_t *cur = NULL;
    uint64_t spent = 0, n = 0;
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
            if (cur != NULL && !group_put(arr, "service", cur, spent, n)) {
                cur = NULL;
                json_decref(name);
                rc = SQLITE_NOMEM;
                break;
            }
            cur = name;
            spent = n = 0;
        } else {
            json_decref(name);
        }
        spent = bdb_sat_add(spent, bdb_col_u64(st, 1));
        n++;
    }
    sqlite3_reset(st);
    if (cur != NULL) {
        if (rc == SQLITE_DONE) {
            if (!group_put(arr, "service", cur, spent, n))
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
