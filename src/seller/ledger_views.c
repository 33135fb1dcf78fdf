/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin API's read-only views of seller.db (ledger.h lists their shapes): channels, vouchers,
 * requests, settlements, the revenue totals, revenue over time and per-service totals with
 * latency percentiles, each built as a new JSON value through the views' own read-only
 * connection (ledger_internal.h). Amounts are decimal strings (os_money_to_json), counts JSON
 * integers, times Unix seconds. A view reads rows and never writes; a view made of several reads
 * runs them in one read transaction so they agree with each other. Sums of money are kept in 128
 * bits so they cannot wrap; token and request counts saturate at UINT64_MAX (statistics). The
 * time series and the latency windows read through indexes named in the SQL (INDEXED BY), so a
 * dashboard polling them reads the rows it shows, not the table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/json.h"
#include "openseed/money.h"

#include "ledger_internal.h"

#define VIEW_LIMIT_MAX 1000u

/* Sets key on obj to v (stolen); clears *ok when v is NULL or the set fails. */
static void put(json_t *obj, const char *key, json_t *v, int *ok)
{
    if (v == NULL || json_object_set_new(obj, key, v) != 0)
        *ok = 0;
}

/* A u128 in decimal (totals over many rows cannot overflow it). */
static json_t *j_u128(unsigned __int128 v)
{
    char buf[48];
    size_t i = sizeof(buf) - 1;

    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    return json_string(buf + i);
}

/* Counts and durations are JSON integers; one past INT64_MAX (jansson's json_int_t) can only come
 * from a broken peer and is written as a decimal string rather than wrapped. */
static json_t *j_count(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v) : os_money_to_json(v);
}

static json_t *j_secs(int64_t ms)
{
    return json_integer(ms / 1000);
}

/* TEXT column as a JSON string, or null; text that is not UTF-8 reads as "?" rather than
 * failing the whole view. */
static json_t *j_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    json_t *v;

    if (t == NULL)
        return json_null();
    v = json_stringn(t, (size_t)sqlite3_column_bytes(st, i));
    return v != NULL ? v : json_string("?");
}

static unsigned clamp_limit(unsigned limit)
{
    return limit < 1 ? 1 : limit > VIEW_LIMIT_MAX ? VIEW_LIMIT_MAX : limit;
}

/* Wraps arr as {key: arr}, or NULL (arr released) on failure. */
static json_t *wrap(const char *key, json_t *arr)
{
    json_t *o;

    if (arr == NULL)
        return NULL;
    if ((o = json_object()) == NULL) {
        json_decref(arr);
        return NULL;
    }
    if (json_object_set_new(o, key, arr) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *channel_json(const sl_channel *c)
{
    json_t *o = json_object(), *lv;
    int ok = 1;

    if (o == NULL)
        return NULL;
    put(o, "channel_id", os_json_hex(c->id, 32), &ok);
    put(o, "payer", os_json_address(c->chain.payer), &ok);
    put(o, "seller", os_json_address(c->chain.seller), &ok);
    put(o, "signer", os_json_address(c->chain.signer), &ok);
    put(o, "deposit", os_money_to_json(c->chain.deposit), &ok);
    put(o, "claimed", os_money_to_json(c->chain.claimed), &ok);
    put(o, "close_at", j_count(c->chain.close_at), &ok);
    put(o, "closed", json_boolean(c->chain.closed), &ok);
    put(o, "last_nonce", j_count(c->chain.last_nonce), &ok);
    put(o, "block", j_count(c->chain.block), &ok);
    put(o, "consumed", os_money_to_json(c->consumed), &ok);
    put(o, "credit",
        os_money_to_json(c->has_voucher && c->voucher.cumulative_amount > c->consumed
                             ? c->voucher.cumulative_amount - c->consumed
                             : 0),
        &ok);
    put(o, "requests", j_count(c->requests), &ok);
    if (c->has_voucher) {
        lv = json_object();
        if (lv != NULL) {
            put(lv, "cumulative", os_money_to_json(c->voucher.cumulative_amount), &ok);
            put(lv, "nonce", j_count(c->voucher.nonce), &ok);
            put(lv, "metadata_hash", os_json_hex(c->voucher.metadata_hash, 32), &ok);
            put(lv, "signature", os_json_hex(c->voucher.sig, 65), &ok);
        }
    } else {
        lv = json_null();
    }
    put(o, "latest_voucher", lv, &ok);
    put(o, "checked_at", c->checked_ms != 0 ? j_secs(c->checked_ms) : json_null(), &ok);
    put(o, "first_seen_at", j_secs(c->first_seen_ms), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sl_ledger_channels_json(sl_ledger *l)
{
    sl_channel *cs;
    size_t n;
    json_t *arr;
    os_err rc;

    if (l == NULL)
        return NULL;
    rc = sl_ledger_list_(ldg_view_begin(l), &cs, NULL, &n);
    ldg_view_end(l);
    if (rc != OS_OK)
        return NULL;
    if ((arr = json_array()) != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (json_array_append_new(arr, channel_json(&cs[i])) != 0) {
                json_decref(arr);
                arr = NULL;
                break;
            }
        }
    }
    free(cs);
    return wrap("channels", arr);
}

/* Runs st (bound, in the lock) and appends row(st) for each row to a new array; NULL on failure. */
static json_t *rows_json(sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *))
{
    json_t *arr = json_array();
    int s;

    if (arr == NULL) {
        sqlite3_reset(st);
        return NULL;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_append_new(arr, row(st)) != 0)
            break;
    }
    sqlite3_reset(st);
    if (s != SQLITE_DONE) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

#define VOUCHER_COLS                                                                               \
    "channel_id, nonce, cumulative, metadata_hash, signature, estimate, accepted_ms"
static const char sql_v_all[] =
    "SELECT " VOUCHER_COLS " FROM vouchers ORDER BY rowid DESC LIMIT ?1";
static const char sql_v_one[] =
    "SELECT " VOUCHER_COLS " FROM vouchers WHERE channel_id = ?2 ORDER BY rowid DESC LIMIT ?1";

static json_t *voucher_row(sqlite3_stmt *st)
{
    uint8_t id[32], mh[32], sig[65];
    json_t *o;
    int ok = 1;

    if (!ldg_col_blob(st, 0, id, 32) || !ldg_col_blob(st, 3, mh, 32) ||
        !ldg_col_blob(st, 4, sig, 65) || (o = json_object()) == NULL)
        return NULL;
    put(o, "channel_id", os_json_hex(id, 32), &ok);
    put(o, "nonce", j_count(ldg_col_u64(st, 1)), &ok);
    put(o, "cumulative", os_money_to_json(ldg_col_u64(st, 2)), &ok);
    put(o, "metadata_hash", os_json_hex(mh, 32), &ok);
    put(o, "signature", os_json_hex(sig, 65), &ok);
    put(o, "estimate", os_money_to_json(ldg_col_u64(st, 5)), &ok);
    put(o, "accepted_at", j_secs(sqlite3_column_int64(st, 6)), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A view over one table, newest first, of one channel or all. */
static json_t *table_view(sl_ledger *l, const char *key, const char *sql_all, const char *sql_one,
                          json_t *(*row)(sqlite3_stmt *), const uint8_t *channel_id, unsigned limit)
{
    sqlite3_stmt *st;
    json_t *arr = NULL;

    if (l == NULL)
        return NULL;
    st = os_db_stmt(ldg_view_begin(l), channel_id != NULL ? sql_one : sql_all);
    if (st != NULL) {
        if (sqlite3_bind_int64(st, 1, clamp_limit(limit)) == SQLITE_OK &&
            (channel_id == NULL ||
             sqlite3_bind_blob(st, 2, channel_id, 32, SQLITE_STATIC) == SQLITE_OK))
            arr = rows_json(st, row);
        else
            sqlite3_reset(st);
    }
    ldg_view_end(l);
    return wrap(key, arr);
}

json_t *sl_ledger_vouchers_json(sl_ledger *l, const uint8_t *channel_id, unsigned limit)
{
    return table_view(l, "vouchers", sql_v_all, sql_v_one, voucher_row, channel_id, limit);
}

#define REQUEST_COLS                                                                               \
    "id, channel_id, api, service, status, outcome, input_tokens, cached_tokens,"                  \
    " output_tokens, cost, estimate, latency_ms, ttft_ms, upstream_status, started_ms,"            \
    " finished_ms, nonce"
static const char sql_r_all[] = "SELECT " REQUEST_COLS " FROM requests ORDER BY id DESC LIMIT ?1";
static const char sql_r_one[] =
    "SELECT " REQUEST_COLS " FROM requests WHERE channel_id = ?2 ORDER BY id DESC LIMIT ?1";

static json_t *request_row(sqlite3_stmt *st)
{
    uint8_t id[32];
    json_t *o;
    int ok = 1;

    if (!ldg_col_blob(st, 1, id, 32) || (o = json_object()) == NULL)
        return NULL;
    put(o, "id", j_count(ldg_col_u64(st, 0)), &ok);
    put(o, "channel_id", os_json_hex(id, 32), &ok);
    put(o, "nonce", j_count(ldg_col_u64(st, 16)), &ok);
    put(o, "api", j_text(st, 2), &ok);
    put(o, "service", j_text(st, 3), &ok);
    put(o, "status", j_text(st, 4), &ok);
    put(o, "outcome", j_text(st, 5), &ok);
    put(o, "input_tokens", j_count(ldg_col_u64(st, 6)), &ok);
    put(o, "cached_tokens", j_count(ldg_col_u64(st, 7)), &ok);
    put(o, "output_tokens", j_count(ldg_col_u64(st, 8)), &ok);
    put(o, "cost", os_money_to_json(ldg_col_u64(st, 9)), &ok);
    put(o, "estimate", os_money_to_json(ldg_col_u64(st, 10)), &ok);
    put(o, "latency_ms", j_count(ldg_col_u64(st, 11)), &ok);
    put(o, "ttft_ms", j_count(ldg_col_u64(st, 12)), &ok);
    put(o, "upstream_status", json_integer(sqlite3_column_int64(st, 13)), &ok);
    put(o, "started_at", j_secs(sqlite3_column_int64(st, 14)), &ok);
    put(o, "finished_at",
        sqlite3_column_type(st, 15) == SQLITE_NULL ? json_null()
                                                   : j_secs(sqlite3_column_int64(st, 15)),
        &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sl_ledger_requests_json(sl_ledger *l, const uint8_t *channel_id, unsigned limit)
{
    return table_view(l, "requests", sql_r_all, sql_r_one, request_row, channel_id, limit);
}

#define SETTLEMENT_COLS                                                                            \
    "channel_id, nonce, cumulative, amount, tx_hash, gas_used, gas_price_wei, status, error, "     \
    "at_ms"
static const char sql_s_all[] =
    "SELECT " SETTLEMENT_COLS " FROM settlements ORDER BY id DESC LIMIT ?1";

static json_t *settlement_row(sqlite3_stmt *st)
{
    uint8_t id[32], tx[32];
    json_t *o;
    int ok = 1;

    if (!ldg_col_blob(st, 0, id, 32) || (o = json_object()) == NULL)
        return NULL;
    put(o, "channel_id", os_json_hex(id, 32), &ok);
    put(o, "nonce", j_count(ldg_col_u64(st, 1)), &ok);
    put(o, "cumulative", os_money_to_json(ldg_col_u64(st, 2)), &ok);
    put(o, "amount", os_money_to_json(ldg_col_u64(st, 3)), &ok);
    put(o, "tx_hash", ldg_col_blob(st, 4, tx, 32) ? os_json_hex(tx, 32) : json_null(), &ok);
    put(o, "gas_used", j_count(ldg_col_u64(st, 5)), &ok);
    put(o, "gas_price_wei", os_money_to_json(ldg_col_u64(st, 6)), &ok);
    put(o, "status", j_text(st, 7), &ok);
    put(o, "error", j_text(st, 8), &ok);
    put(o, "at", j_secs(sqlite3_column_int64(st, 9)), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sl_ledger_settlements_json(sl_ledger *l, unsigned limit)
{
    return table_view(l, "settlements", sql_s_all, sql_s_all, settlement_row, NULL, limit);
}

static const char sql_rev_outcomes[] =
    "SELECT outcome, count(*) FROM requests WHERE status = 'finished' GROUP BY outcome"
    " ORDER BY outcome";
static const char sql_rev_gas[] = "SELECT gas_used, gas_price_wei FROM settlements";

/* The revenue view's reads; the caller holds the view lock and a read transaction. */
static int revenue_tx(os_db *db, json_t *o)
{
    unsigned __int128 consumed = 0, claimed = 0, unclaimed = 0, gas = 0;
    uint64_t requests = 0, tin = 0, tcached = 0, tout = 0, settlements = 0;
    sl_channel *cs;
    sl_ledger_tokens *tok;
    size_t n;
    json_t *by;
    sqlite3_stmt *st;
    int ok = 1, s;

    if (sl_ledger_list_(db, &cs, &tok, &n) != OS_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        consumed += cs[i].consumed;
        claimed += cs[i].chain.claimed;
        if (cs[i].consumed > cs[i].chain.claimed)
            unclaimed += cs[i].consumed - cs[i].chain.claimed;
        requests = ldg_sat_add(requests, cs[i].requests);
        tin = ldg_sat_add(tin, tok[i].input);
        tcached = ldg_sat_add(tcached, tok[i].cached);
        tout = ldg_sat_add(tout, tok[i].output);
    }
    free(cs);
    free(tok);

    if ((st = os_db_stmt(db, sql_rev_gas)) == NULL)
        return 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        unsigned __int128 g = (unsigned __int128)ldg_col_u64(st, 0) * ldg_col_u64(st, 1);
        /* each product is below 2^128 - 2^65; only a sum of two such could wrap */
        gas = gas > ~(unsigned __int128)0 - g ? ~(unsigned __int128)0 : gas + g;
        settlements++;
    }
    sqlite3_reset(st);
    if (s != SQLITE_DONE)
        return 0;

    if ((st = os_db_stmt(db, sql_rev_outcomes)) == NULL || (by = json_object()) == NULL)
        return 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        put(by, k != NULL ? k : "unknown", json_integer(sqlite3_column_int64(st, 1)), &ok);
    }
    sqlite3_reset(st);
    if (s != SQLITE_DONE)
        ok = 0;
    put(o, "by_outcome", by, &ok);

    put(o, "consumed", j_u128(consumed), &ok);
    put(o, "claimed", j_u128(claimed), &ok);
    put(o, "unclaimed", j_u128(unclaimed), &ok);
    put(o, "requests", j_count(requests), &ok);
    put(o, "input_tokens", j_count(tin), &ok);
    put(o, "cached_tokens", j_count(tcached), &ok);
    put(o, "output_tokens", j_count(tout), &ok);
    put(o, "settlements", j_count(settlements), &ok);
    put(o, "gas_wei", j_u128(gas), &ok);
    return ok;
}

/* Runs fn(db, o) in one read transaction on the views' connection, so its reads agree with each
 * other; o on success, NULL (o released) on failure. */
static json_t *in_read_tx(sl_ledger *l, int (*fn)(os_db *, json_t *, const void *), json_t *o,
                          const void *arg)
{
    os_db *db;
    int ok = 0;

    if (o == NULL)
        return NULL;
    db = ldg_view_begin(l);
    if (os_db_exec(db, "BEGIN", NULL, 0) == OS_OK) {
        ok = fn(db, o, arg);
        os_db_rollback(db);
    }
    ldg_view_end(l);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int revenue_fn(os_db *db, json_t *o, const void *arg)
{
    (void)arg;
    return revenue_tx(db, o);
}

json_t *sl_ledger_revenue_json(sl_ledger *l)
{
    if (l == NULL)
        return NULL;
    return in_read_tx(l, revenue_fn, json_object(), NULL);
}

/* ---- revenue over time ---- */

/* INDEXED BY: a schema change that made the range scan impossible fails the view (and its tests)
 * instead of silently reading the whole table on every poll. */
static const char sql_series[] =
    "SELECT finished_ms, cost, input_tokens, output_tokens FROM requests"
    " INDEXED BY requests_by_finished"
    " WHERE finished_ms >= ?1 AND finished_ms < ?2 AND status = 'finished'";

typedef struct series_args {
    int64_t first_s; /* the first bucket's start */
    uint64_t step;
    unsigned points;
} series_args;

typedef struct bucket {
    unsigned __int128 revenue;
    uint64_t requests, input, output;
} bucket;

static json_t *bucket_json(int64_t t, const bucket *b)
{
    json_t *o = json_object();
    int ok = 1;

    if (o == NULL)
        return NULL;
    put(o, "t", json_integer(t), &ok);
    put(o, "revenue", j_u128(b->revenue), &ok);
    put(o, "requests", j_count(b->requests), &ok);
    put(o, "input_tokens", j_count(b->input), &ok);
    put(o, "output_tokens", j_count(b->output), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The series view's reads; the caller holds the view lock and a read transaction. */
static int series_tx(os_db *db, json_t *o, const void *arg)
{
    const series_args *a = arg;
    const int64_t step_ms = (int64_t)a->step * 1000;
    const int64_t from_ms = a->first_s * 1000, to_ms = from_ms + (int64_t)a->points * step_ms;
    bucket *b = calloc(a->points, sizeof(*b));
    json_t *arr;
    sqlite3_stmt *st;
    int ok = 1, s = SQLITE_ERROR;

    if (b == NULL)
        return 0;
    if ((st = os_db_stmt(db, sql_series)) != NULL) {
        if (sqlite3_bind_int64(st, 1, from_ms) == SQLITE_OK &&
            sqlite3_bind_int64(st, 2, to_ms) == SQLITE_OK) {
            while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t f = sqlite3_column_int64(st, 0);
                uint64_t i;
                if (f < from_ms || f >= to_ms) /* the query's bounds, kept here too */
                    continue;
                i = (uint64_t)(f - from_ms) / (uint64_t)step_ms;
                b[i].revenue += ldg_col_u64(st, 1); /* 2^64 rows before a u128 could wrap */
                b[i].requests = ldg_sat_add(b[i].requests, 1);
                b[i].input = ldg_sat_add(b[i].input, ldg_col_u64(st, 2));
                b[i].output = ldg_sat_add(b[i].output, ldg_col_u64(st, 3));
            }
        }
        sqlite3_reset(st);
    }
    if (s != SQLITE_DONE || (arr = json_array()) == NULL) {
        free(b);
        return 0;
    }
    for (unsigned i = 0; i < a->points && ok; i++)
        if (json_array_append_new(
                arr, bucket_json(a->first_s + (int64_t)i * (int64_t)a->step, &b[i])) != 0)
            ok = 0;
    free(b);
    put(o, "step", j_count(a->step), &ok);
    put(o, "from", json_integer(a->first_s), &ok);
    put(o, "to", json_integer(a->first_s + (int64_t)a->points * (int64_t)a->step), &ok);
    put(o, "points", arr, &ok);
    return ok;
}

json_t *sl_ledger_series_json(sl_ledger *l, int64_t now_s, uint64_t step, unsigned points)
{
    series_args a;
    int64_t last;

    /* now_s is bounded so that every bound below, in milliseconds, fits an int64 */
    if (l == NULL || step < 1 || step > SL_SERIES_STEP_MAX || points < 1 ||
        points > SL_SERIES_POINTS_MAX || now_s < 0 ||
        now_s > INT64_MAX / 1000 - (int64_t)SL_SERIES_STEP_MAX)
        return NULL;
    last = now_s - now_s % (int64_t)step;
    a.first_s = last - (int64_t)(points - 1) * (int64_t)step;
    a.step = step;
    a.points = points;
    return in_read_tx(l, series_tx, json_object(), &a);
}

/* ---- per service ---- */

/* Distinct services the view will total before it gives up (the seller books only services it
 * offers, so a real seller.db has a handful). */
#define MODELS_MAX_SERVICES 4096u

static const char sql_models_totals[] =
    "SELECT service, outcome, input_tokens, cached_tokens, output_tokens, cost FROM requests"
    " WHERE status = 'finished'";
/* INDEXED BY as for the series: the newest successful requests of one service come straight off
 * the partial index, never from a scan of the service's history. */
static const char sql_models_latency[] =
    "SELECT latency_ms, ttft_ms FROM requests INDEXED BY requests_ok_by_service"
    " WHERE service = ?1 AND outcome = 'ok' ORDER BY finished_ms DESC, id DESC LIMIT ?2";

typedef struct svc {
    char *name;
    uint64_t requests, errors, input, cached, output;
    unsigned __int128 revenue;
} svc;

typedef struct svcs {
    svc *v;
    size_t n, cap;
} svcs;

static void svcs_free(svcs *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        free(ss->v[i].name);
    free(ss->v);
}

/* The entry for name, inserted in sorted place when new; NULL on failure or past the cap. */
static svc *svc_get(svcs *ss, const char *name, size_t len)
{
    size_t lo = 0, hi = ss->n;
    char *copy;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ss->v[mid].name, name);
        if (c == 0)
            return &ss->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (ss->n >= MODELS_MAX_SERVICES)
        return NULL;
    if (ss->n == ss->cap) {
        size_t ncap = ss->cap != 0 ? ss->cap * 2 : 8;
        svc *nv = realloc(ss->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return NULL;
        ss->v = nv;
        ss->cap = ncap;
    }
    if ((copy = strndup(name, len)) == NULL)
        return NULL;
    memmove(&ss->v[lo + 1], &ss->v[lo], (ss->n - lo) * sizeof(*ss->v));
    memset(&ss->v[lo], 0, sizeof(*ss->v));
    ss->v[lo].name = copy;
    ss->n++;
    return &ss->v[lo];
}

static int totals_scan(os_db *db, svcs *ss)
{
    sqlite3_stmt *st = os_db_stmt(db, sql_models_totals);
    int s;

    if (st == NULL)
        return 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *outcome = (const char *)sqlite3_column_text(st, 1);
        svc *v;
        if (name == NULL || (v = svc_get(ss, name, strlen(name))) == NULL)
            break;
        v->requests = ldg_sat_add(v->requests, 1);
        if (outcome == NULL || strcmp(outcome, "ok") != 0)
            v->errors = ldg_sat_add(v->errors, 1);
        v->input = ldg_sat_add(v->input, ldg_col_u64(st, 2));
        v->cached = ldg_sat_add(v->cached, ldg_col_u64(st, 3));
        v->output = ldg_sat_add(v->output, ldg_col_u64(st, 4));
        v->revenue += ldg_col_u64(st, 5);
    }
    sqlite3_reset(st);
    return s == SQLITE_DONE;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p% of the k sorted values at or below it. */
static uint64_t pct(const uint64_t *sorted, size_t k, unsigned p)
{
    size_t rank = (p * k + 99) / 100;
    return sorted[rank > 0 ? rank - 1 : 0];
}

/* Adds latency_ms, ttft_ms and latency_window for one service to o. */
static int latency_put(os_db *db, json_t *o, const char *service)
{
    uint64_t lat[SL_LATENCY_WINDOW], ttft[SL_LATENCY_WINDOW];
    sqlite3_stmt *st = os_db_stmt(db, sql_models_latency);
    size_t k = 0;
    int ok = 1, s = SQLITE_ERROR;

    if (st == NULL)
        return 0;
    if (sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_bind_int64(st, 2, SL_LATENCY_WINDOW) == SQLITE_OK) {
        while (k < SL_LATENCY_WINDOW && (s = sqlite3_step(st)) == SQLITE_ROW) {
            lat[k] = ldg_col_u64(st, 0);
            ttft[k] = ldg_col_u64(st, 1);
            k++;
        }
        if (k == SL_LATENCY_WINDOW)
            s = SQLITE_DONE; /* the LIMIT: nothing more would come */
    }
    sqlite3_reset(st);
    if (s != SQLITE_DONE)
        return 0;
    if (k == 0) {
        put(o, "latency_ms", json_null(), &ok);
        put(o, "ttft_ms", json_null(), &ok);
    } else {
        qsort(lat, k, sizeof(lat[0]), cmp_u64);
        qsort(ttft, k, sizeof(ttft[0]), cmp_u64);
        put(o, "latency_ms",
            json_pack("{s:o,s:o,s:o}", "p50", j_count(pct(lat, k, 50)), "p95",
                      j_count(pct(lat, k, 95)), "max", j_count(lat[k - 1])),
            &ok);
        put(o, "ttft_ms",
            json_pack("{s:o,s:o}", "p50", j_count(pct(ttft, k, 50)), "p95",
                      j_count(pct(ttft, k, 95))),
            &ok);
    }
    put(o, "latency_window", j_count(k), &ok);
    return ok;
}

static json_t *service_json(os_db *db, const svc *v)
{
    json_t *o = json_object(), *name;
    int ok = 1;

    if (o == NULL)
        return NULL;
    name = json_string(v->name);
    put(o, "service", name != NULL ? name : json_string("?"), &ok);
    put(o, "requests", j_count(v->requests), &ok);
    put(o, "errors", j_count(v->errors), &ok);
    put(o, "input_tokens", j_count(v->input), &ok);
    put(o, "cached_tokens", j_count(v->cached), &ok);
    put(o, "output_tokens", j_count(v->output), &ok);
    put(o, "revenue", j_u128(v->revenue), &ok);
    if (!ok || !latency_put(db, o, v->name)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The models view's reads; the caller holds the view lock and a read transaction. */
static int models_tx(os_db *db, json_t *o, const void *arg)
{
    svcs ss = {0};
    json_t *arr = NULL;
    int ok = 1;
    (void)arg;

    if (!totals_scan(db, &ss) || (arr = json_array()) == NULL) {
        svcs_free(&ss);
        return 0;
    }
    for (size_t i = 0; i < ss.n && ok; i++)
        if (json_array_append_new(arr, service_json(db, &ss.v[i])) != 0)
            ok = 0;
    svcs_free(&ss);
    put(o, "models", arr, &ok);
    return ok;
}

json_t *sl_ledger_models_json(sl_ledger *l)
{
    if (l == NULL)
        return NULL;
    return in_read_tx(l, models_tx, json_object(), NULL);
}
