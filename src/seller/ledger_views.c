/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The admin API's read-only views of seller.db (ledger.h lists their shapes): channels, vouchers,
 * requests, settlements and the revenue totals, each built as a new JSON value under the ledger's
 * lock. Amounts are decimal strings (os_money_to_json), counts JSON integers, times Unix seconds.
 * A view reads rows and never writes; the revenue totals come from one read transaction so they
 * agree with each other, and sums over many channels are kept in 128 bits so they cannot wrap.
 */
#include <stdint.h>
#include <stdlib.h>

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
    ldg_lock(l);
    rc = sl_ledger_list_(l, &cs, NULL, &n);
    ldg_unlock(l);
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
    ldg_lock(l);
    st = os_db_stmt(l->db, channel_id != NULL ? sql_one : sql_all);
    if (st != NULL) {
        if (sqlite3_bind_int64(st, 1, clamp_limit(limit)) == SQLITE_OK &&
            (channel_id == NULL ||
             sqlite3_bind_blob(st, 2, channel_id, 32, SQLITE_STATIC) == SQLITE_OK))
            arr = rows_json(st, row);
        else
            sqlite3_reset(st);
    }
    ldg_unlock(l);
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

/* The revenue view's reads; the caller holds the lock and a read transaction. */
static int revenue_tx(sl_ledger *l, json_t *o)
{
    unsigned __int128 consumed = 0, claimed = 0, unclaimed = 0, gas = 0;
    uint64_t requests = 0, tin = 0, tcached = 0, tout = 0, settlements = 0;
    sl_channel *cs;
    sl_ledger_tokens *tok;
    size_t n;
    json_t *by;
    sqlite3_stmt *st;
    int ok = 1, s;

    if (sl_ledger_list_(l, &cs, &tok, &n) != OS_OK)
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

    if ((st = os_db_stmt(l->db, sql_rev_gas)) == NULL)
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

    if ((st = os_db_stmt(l->db, sql_rev_outcomes)) == NULL || (by = json_object()) == NULL)
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

json_t *sl_ledger_revenue_json(sl_ledger *l)
{
    json_t *o;
    int ok = 0;

    if (l == NULL || (o = json_object()) == NULL)
        return NULL;
    ldg_lock(l);
    if (os_db_exec(l->db, "BEGIN", NULL, 0) == OS_OK) {
        ok = revenue_tx(l, o);
        os_db_rollback(l->db);
    }
    ldg_unlock(l);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
