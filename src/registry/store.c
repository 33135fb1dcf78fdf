/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's SQLite store (registry.db): sellers' records exactly as signed, their liveness and
 * reputation evidence, and the feedback reports received. Announces are written through before
 * they are answered (a lost record would be a seller silently delisted); heartbeats and evidence
 * are written in batches by the background pass (a lost last_seen after a crash costs nothing a
 * heartbeat does not restore). The in-memory index is rebuilt from here at start-up.
 *
 * Unsigned 64-bit values (seq, timestamps) are at most INT64_MAX by the parsers, so they fit
 * SQLite's signed integers unchanged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/json.h"

#include "internal.h"

/* Migration i brings user_version i to i + 1. Never edit one that has shipped: add another. */
static const char *const migrations[] = {
    /* 1: sellers and feedback */
    "CREATE TABLE peers ("
    "  node BLOB PRIMARY KEY,"   /* 20-byte address */
    "  record TEXT NOT NULL,"    /* canonical JSON, exactly the bytes bodyHash covers */
    "  signature BLOB NOT NULL," /* 65 bytes, as received */
    "  seq INTEGER NOT NULL,"    /* highest accepted (announce or heartbeat) */
    "  first_seen_ms INTEGER NOT NULL,"
    "  announced_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  load_active INTEGER NOT NULL DEFAULT 0,"
    "  load_capacity INTEGER NOT NULL DEFAULT 0,"
    "  hb_endpoint TEXT, hb_seq INTEGER, hb_ts INTEGER, hb_sig BLOB," /* last heartbeat, if newer */
    "  st_updated_ms INTEGER NOT NULL,"
    "  st_last_hit_ms INTEGER NOT NULL DEFAULT 0,"
    "  up_hits REAL NOT NULL DEFAULT 0, up_expected REAL NOT NULL DEFAULT 0,"
    "  fb_success REAL NOT NULL DEFAULT 0, fb_failure REAL NOT NULL DEFAULT 0,"
    "  lat_n REAL NOT NULL DEFAULT 0, lat_sum REAL NOT NULL DEFAULT 0"
    ") WITHOUT ROWID;"
    "CREATE TABLE feedback ("
    "  channel_id BLOB NOT NULL,"
    "  nonce INTEGER NOT NULL,"
    "  cumulative INTEGER NOT NULL,"
    "  node BLOB NOT NULL,"
    "  signer BLOB NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  latency_ms INTEGER NOT NULL,"
    "  ttft_ms INTEGER NOT NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (channel_id, nonce)"
    ") WITHOUT ROWID;"
    "CREATE INDEX feedback_node ON feedback (node, received_ms);",
};

const char *const *rg_store_migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}

static void db_log(rg_registry *rg, const char *what)
{
    os_log_event ev;
    if (os_log_begin(&ev, rg->log, OS_LOG_ERROR, "database error")) {
        os_log_kv(&ev, "op", "%s", what);
        os_log_kv(&ev, "sqlite", "%s", sqlite3_errmsg(os_db_handle(rg->db)));
        os_log_end(&ev);
    }
}

os_err rg_store_open(rg_registry *rg)
{
    os_db_options o = {.migrations = migrations,
                       .n_migrations = sizeof(migrations) / sizeof(migrations[0]),
                       .busy_timeout_ms = 5000,
                       .synchronous_full = 0};
    char err[OS_DB_ERR_LEN];
    os_err rc = os_db_open(&rg->db, rg->db_path, &o, err, sizeof(err));

    if (rc != OS_OK) {
        os_log_event ev;
        if (os_log_begin(&ev, rg->log, OS_LOG_ERROR, "cannot open the database")) {
            os_log_kv(&ev, "path", "%s", rg->db_path);
            os_log_kv(&ev, "reason", "%s", err);
            os_log_end(&ev);
        }
    }
    return rc;
}

void rg_store_close(rg_registry *rg)
{
    os_db_close(rg->db);
    rg->db = NULL;
}

static int64_t col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_int64(st, i);
}

static const char sql_load[] =
    "SELECT node, record, signature, seq, first_seen_ms, last_seen_ms, load_active, load_capacity,"
    " hb_endpoint, hb_seq, hb_ts, hb_sig, st_updated_ms, st_last_hit_ms, up_hits, up_expected,"
    " fb_success, fb_failure, lat_n, lat_sum FROM peers";

/* Builds one peer from a row; a row that does not parse is skipped with a warning. */
static os_err load_row(rg_registry *rg, sqlite3_stmt *st, os_record *rec, int64_t now_ms)
{
    const void *node = sqlite3_column_blob(st, 0);
    const char *text = (const char *)sqlite3_column_text(st, 1);
    const void *sig = sqlite3_column_blob(st, 2);
    size_t text_len = (size_t)sqlite3_column_bytes(st, 1);
    json_t *j = NULL;
    rg_peer *p;
    os_heartbeat hb;
    os_err rc;

    if (node == NULL || sqlite3_column_bytes(st, 0) != 20 || text == NULL || sig == NULL ||
        sqlite3_column_bytes(st, 2) != 65 ||
        os_json_parse(&j, text, text_len, OS_RECORD_MAX_BYTES, RG_JSON_DEPTH, NULL, 0) != OS_OK ||
        os_record_parse(rec, j, NULL, 0) != OS_OK || memcmp(rec->node, node, 20) != 0) {
        json_decref(j);
        os_log_warn(rg->log, "skipping an unreadable seller row in the database");
        return OS_OK;
    }
    json_decref(j);
    if ((rc = rg_peer_add(rg, &p, node)) != OS_OK ||
        (rc = rg_peer_set_record(p, text, text_len, sig, rec)) != OS_OK)
        return rc;
    p->seq = (uint64_t)col_i64(st, 3);
    p->stats.first_seen_ms = col_i64(st, 4);
    p->last_seen_ms = col_i64(st, 5);
    p->load_active = (uint32_t)col_i64(st, 6);
    p->load_capacity = (uint32_t)col_i64(st, 7);
    memset(&hb, 0, sizeof(hb));
    if (sqlite3_column_type(st, 8) == SQLITE_TEXT && sqlite3_column_bytes(st, 8) > 0 &&
        (size_t)sqlite3_column_bytes(st, 8) < sizeof(p->hb_endpoint) &&
        sqlite3_column_bytes(st, 11) == 65) {
        p->has_hb = true;
        memcpy(p->hb_endpoint, sqlite3_column_text(st, 8), (size_t)sqlite3_column_bytes(st, 8));
        p->hb_seq = (uint64_t)col_i64(st, 9);
        p->hb_ts = (uint64_t)col_i64(st, 10);
        memcpy(p->hb_sig, sqlite3_column_blob(st, 11), 65);
        memcpy(hb.node, p->node, 20);
        memcpy(hb.endpoint, p->hb_endpoint, sizeof(hb.endpoint));
        hb.seq = p->hb_seq;
        hb.timestamp = p->hb_ts;
        hb.active = p->load_active;
        hb.capacity = p->load_capacity;
        memcpy(hb.sig, p->hb_sig, 65);
    }
    p->stats.updated_ms = col_i64(st, 12);
    p->stats.last_hit_ms = col_i64(st, 13);
    p->stats.up_hits = sqlite3_column_double(st, 14);
    p->stats.up_expected = sqlite3_column_double(st, 15);
    p->stats.fb_success = sqlite3_column_double(st, 16);
    p->stats.fb_failure = sqlite3_column_double(st, 17);
    p->stats.lat_n = sqlite3_column_double(st, 18);
    p->stats.lat_sum = sqlite3_column_double(st, 19);
    p->live_len =
        rg_live_render(p->live, p->has_hb ? p->hb_endpoint : rec->endpoint, p->has_hb ? &hb : NULL);
    if (p->live_len == 0)
        return OS_ERR_NOMEM;
    atomic_store(&p->active, now_ms - p->last_seen_ms <= rg->window_ms ? 1 : 0);
    return OS_OK;
}

os_err rg_store_load(rg_registry *rg)
{
    sqlite3_stmt *st = os_db_stmt(rg->db, sql_load);
    os_record *rec = malloc(sizeof(*rec));
    int64_t now = rg_now_ms();
    os_err rc = OS_OK;
    int s;

    if (st == NULL || rec == NULL) {
        free(rec);
        if (st == NULL)
            db_log(rg, "load");
        return st == NULL ? OS_ERR_IO : OS_ERR_NOMEM;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = load_row(rg, st, rec, now)) != OS_OK)
            break;
    }
    if (rc == OS_OK && s != SQLITE_DONE) {
        db_log(rg, "load");
        rc = OS_ERR_IO;
    }
    sqlite3_reset(st);
    free(rec);
    return rc;
}

static const char sql_put[] =
    "INSERT INTO peers (node, record, signature, seq, first_seen_ms, announced_ms, last_seen_ms,"
    " st_updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5, ?5)"
    " ON CONFLICT (node) DO UPDATE SET record = excluded.record, signature = excluded.signature,"
    " seq = excluded.seq, announced_ms = excluded.announced_ms,"
    " last_seen_ms = excluded.last_seen_ms,"
    " hb_endpoint = NULL, hb_seq = NULL, hb_ts = NULL, hb_sig = NULL";

os_err rg_store_put_record(rg_registry *rg, const uint8_t node[20], const char *canon,
                           size_t canon_len, const uint8_t sig[65], uint64_t seq, int64_t now_ms)
{
    sqlite3_stmt *st = os_db_stmt(rg->db, sql_put);
    int s;

    if (st == NULL || canon_len > INT32_MAX) {
        db_log(rg, "put record");
        return OS_ERR_IO;
    }
    if (sqlite3_bind_blob(st, 1, node, 20, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, canon, (int)canon_len, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 3, sig, 65, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, (int64_t)seq) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, now_ms) != SQLITE_OK) {
        db_log(rg, "put record");
        sqlite3_reset(st);
        return OS_ERR_IO;
    }
    s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s != SQLITE_DONE) {
        db_log(rg, "put record");
        return OS_ERR_IO;
    }
    return OS_OK;
}

/* The guard on seq keeps a batch collected before an announce from undoing the announce. */
static const char sql_flush[] =
    "UPDATE peers SET seq = ?2, last_seen_ms = ?3, load_active = ?4, load_capacity = ?5,"
    " hb_endpoint = ?6, hb_seq = ?7, hb_ts = ?8, hb_sig = ?9, st_updated_ms = ?10,"
    " st_last_hit_ms = ?11, up_hits = ?12, up_expected = ?13, fb_success = ?14,"
    " fb_failure = ?15, lat_n = ?16, lat_sum = ?17 WHERE node = ?1 AND seq <= ?2";

static int bind_row(sqlite3_stmt *st, const rg_live_row *r)
{
    int ok = sqlite3_bind_blob(st, 1, r->node, 20, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_bind_int64(st, 2, (int64_t)r->seq) == SQLITE_OK &&
             sqlite3_bind_int64(st, 3, r->last_seen_ms) == SQLITE_OK &&
             sqlite3_bind_int64(st, 4, r->load_active) == SQLITE_OK &&
             sqlite3_bind_int64(st, 5, r->load_capacity) == SQLITE_OK &&
             sqlite3_bind_int64(st, 10, r->stats.updated_ms) == SQLITE_OK &&
             sqlite3_bind_int64(st, 11, r->stats.last_hit_ms) == SQLITE_OK &&
             sqlite3_bind_double(st, 12, r->stats.up_hits) == SQLITE_OK &&
             sqlite3_bind_double(st, 13, r->stats.up_expected) == SQLITE_OK &&
             sqlite3_bind_double(st, 14, r->stats.fb_success) == SQLITE_OK &&
             sqlite3_bind_double(st, 15, r->stats.fb_failure) == SQLITE_OK &&
             sqlite3_bind_double(st, 16, r->stats.lat_n) == SQLITE_OK &&
             sqlite3_bind_double(st, 17, r->stats.lat_sum) == SQLITE_OK;
    if (ok && r->has_hb)
        ok = sqlite3_bind_text(st, 6, r->hb_endpoint, -1, SQLITE_STATIC) == SQLITE_OK &&
             sqlite3_bind_int64(st, 7, (int64_t)r->hb_seq) == SQLITE_OK &&
             sqlite3_bind_int64(st, 8, (int64_t)r->hb_ts) == SQLITE_OK &&
             sqlite3_bind_blob(st, 9, r->hb_sig, 65, SQLITE_STATIC) == SQLITE_OK;
    /* Unbound parameters are NULL: no heartbeat newer than the record. */
    return ok;
}

os_err rg_store_flush(rg_registry *rg, const rg_live_row *rows, size_t n)
{
    sqlite3_stmt *st;
    os_err rc;

    if (n == 0)
        return OS_OK;
    if ((rc = os_db_begin(rg->db)) != OS_OK) {
        db_log(rg, "flush begin");
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if ((st = os_db_stmt(rg->db, sql_flush)) == NULL || !bind_row(st, &rows[i]) ||
            sqlite3_step(st) != SQLITE_DONE) {
            db_log(rg, "flush");
            if (st != NULL)
                sqlite3_reset(st);
            os_db_rollback(rg->db);
            return OS_ERR_IO;
        }
        sqlite3_reset(st);
    }
    if ((rc = os_db_commit(rg->db)) != OS_OK) {
        db_log(rg, "flush commit");
        os_db_rollback(rg->db);
    }
    return rc;
}

static const char sql_fb_max[] =
    "SELECT max(nonce), max(cumulative) FROM feedback WHERE channel_id = ?1";
static const char sql_fb_put[] =
    "INSERT INTO feedback (channel_id, nonce, cumulative, node, signer, outcome, latency_ms,"
    " ttft_ms, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

os_err rg_store_feedback(rg_registry *rg, const os_feedback *fb, const uint8_t signer[20],
                         int64_t now_ms)
{
    sqlite3_stmt *st;
    int s;

    if (fb->nonce > INT64_MAX || fb->cumulative_amount > INT64_MAX || fb->latency_ms > INT64_MAX ||
        fb->ttft_ms > INT64_MAX)
        return OS_ERR_RANGE;
    /* A report counts only with a voucher above every earlier report's on that channel: each one
     * stands for new spending, and a replay is refused. */
    if ((st = os_db_stmt(rg->db, sql_fb_max)) == NULL ||
        sqlite3_bind_blob(st, 1, fb->channel_id, 32, SQLITE_STATIC) != SQLITE_OK ||
        (s = sqlite3_step(st)) != SQLITE_ROW) {
        db_log(rg, "feedback max");
        if (st != NULL)
            sqlite3_reset(st);
        return OS_ERR_IO;
    }
    if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
        ((uint64_t)sqlite3_column_int64(st, 0) >= fb->nonce ||
         (uint64_t)sqlite3_column_int64(st, 1) >= fb->cumulative_amount)) {
        sqlite3_reset(st);
        return OS_ERR_EXISTS;
    }
    sqlite3_reset(st);
    if ((st = os_db_stmt(rg->db, sql_fb_put)) == NULL ||
        sqlite3_bind_blob(st, 1, fb->channel_id, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, (int64_t)fb->nonce) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, (int64_t)fb->cumulative_amount) != SQLITE_OK ||
        sqlite3_bind_blob(st, 4, fb->node, 20, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 5, signer, 20, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 6, fb->outcome, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 7, (int64_t)fb->latency_ms) != SQLITE_OK ||
        sqlite3_bind_int64(st, 8, (int64_t)fb->ttft_ms) != SQLITE_OK ||
        sqlite3_bind_int64(st, 9, now_ms) != SQLITE_OK) {
        db_log(rg, "feedback put");
        if (st != NULL)
            sqlite3_reset(st);
        return OS_ERR_IO;
    }
    s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s == SQLITE_CONSTRAINT || (s & 0xff) == SQLITE_CONSTRAINT)
        return OS_ERR_EXISTS;
    if (s != SQLITE_DONE) {
        db_log(rg, "feedback put");
        return OS_ERR_IO;
    }
    return OS_OK;
}
