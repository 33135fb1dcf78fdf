/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seller.db, the seller's books (ledger.h states the contract). Every write that moves money or
 * accepts a voucher is one BEGIN IMMEDIATE ... COMMIT on a connection opened with
 * synchronous=FULL, so a function that returned OS_OK has its rows on disk. The one connection is
 * guarded by the ledger's mutex, which also makes a read-check-write sequence (the nonce check in
 * accept, the overflow check in finish) atomic within the process; BEGIN IMMEDIATE makes it atomic
 * against another connection to the same file.
 *
 * Unsigned 64-bit values (amounts, nonces, token counts, durations) are stored as their two's
 * complement bit pattern in SQLite's signed INTEGER: values up to INT64_MAX read as themselves in
 * the sqlite3 shell, larger ones read negative there but round-trip exactly here. SQL therefore
 * never compares or adds them; the C code does, with money.h's checked arithmetic. The one range
 * query on nonces (settlement candidates) splits [min, UINT64_MAX] into the two signed ranges it
 * covers. Token totals per channel saturate at UINT64_MAX (statistics, not money).
 */
#include "ledger.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/db.h"
#include "openseed/hex.h"
#include "openseed/json.h"
#include "openseed/money.h"
#include "openseed/secp.h"

#define VIEW_LIMIT_MAX 1000u
#define OUTCOME_MAX 32       /* bytes of an outcome name, NUL excluded */
#define SETTLE_ERROR_MAX 512 /* bytes kept of a settlement's error text */

struct sl_ledger {
    os_db *db;
    pthread_mutex_t mu;
};

/* Migration i brings user_version i to i + 1. Never edit one that has shipped: add another. */
static const char *const migrations[] = {
    /* 1: channels, vouchers, requests, settlements */
    "CREATE TABLE channels ("
    "  id BLOB PRIMARY KEY NOT NULL,"                                    /* 32 bytes */
    "  payer BLOB NOT NULL, seller BLOB NOT NULL, signer BLOB NOT NULL," /* 20 bytes each */
    "  commitment BLOB NOT NULL,"                                        /* 32 bytes */
    "  deposit INTEGER NOT NULL, claimed INTEGER NOT NULL, close_at INTEGER NOT NULL,"
    "  closed INTEGER NOT NULL, last_nonce INTEGER NOT NULL, block INTEGER NOT NULL,"
    "  checked_ms INTEGER NOT NULL,"
    /* the latest accepted voucher; all NULL before the first */
    "  v_nonce INTEGER, v_cumulative INTEGER, v_metadata_hash BLOB, v_signature BLOB,"
    "  consumed INTEGER NOT NULL DEFAULT 0,"
    "  requests INTEGER NOT NULL DEFAULT 0," /* finished requests */
    "  input_tokens INTEGER NOT NULL DEFAULT 0, cached_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  first_seen_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE vouchers ("
    "  channel_id BLOB NOT NULL REFERENCES channels (id),"
    "  nonce INTEGER NOT NULL, cumulative INTEGER NOT NULL,"
    "  metadata_hash BLOB NOT NULL, signature BLOB NOT NULL,"
    "  estimate INTEGER NOT NULL, accepted_ms INTEGER NOT NULL,"
    "  UNIQUE (channel_id, nonce)"
    ");"
    /* (channel_id) alone ends in rowid, so one channel's rows come newest first from it */
    "CREATE INDEX vouchers_by_channel ON vouchers (channel_id);"
    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY,"
    "  channel_id BLOB NOT NULL, nonce INTEGER NOT NULL," /* the voucher that paid for it */
    "  api TEXT NOT NULL, service TEXT NOT NULL, estimate INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('pending', 'finished')),"
    "  outcome TEXT,"
    "  input_tokens INTEGER NOT NULL DEFAULT 0, cached_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0, cost INTEGER NOT NULL DEFAULT 0,"
    "  latency_ms INTEGER NOT NULL DEFAULT 0, ttft_ms INTEGER NOT NULL DEFAULT 0,"
    "  upstream_status INTEGER NOT NULL DEFAULT 0,"
    "  started_ms INTEGER NOT NULL, finished_ms INTEGER,"
    "  UNIQUE (channel_id, nonce),"
    "  FOREIGN KEY (channel_id, nonce) REFERENCES vouchers (channel_id, nonce)"
    ");"
    "CREATE INDEX requests_by_channel ON requests (channel_id);"
    "CREATE INDEX requests_pending ON requests (status) WHERE status = 'pending';"
    "CREATE TABLE settlements ("
    "  id INTEGER PRIMARY KEY,"
    "  channel_id BLOB NOT NULL, nonce INTEGER NOT NULL, cumulative INTEGER NOT NULL,"
    "  amount INTEGER NOT NULL, tx_hash BLOB," /* NULL when nothing was sent */
    "  gas_used INTEGER NOT NULL, gas_price_wei INTEGER NOT NULL,"
    "  status TEXT NOT NULL, error TEXT, at_ms INTEGER NOT NULL"
    ");",
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* uint64 to its bit pattern as int64 without implementation-defined conversions. */
static int64_t enc(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(UINT64_MAX - v) - 1;
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
    return (uint64_t)sqlite3_column_int64(st, i); /* modulo 2^64: the inverse of enc */
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The os_err of a failed SQLite call (never OS_OK: a step that should have been DONE was not). */
static os_err sql_err(int rc)
{
    os_err e = os_db_status(rc);
    return e == OS_OK ? OS_ERR_INTERNAL : e;
}

/* Steps a statement that returns no rows and resets it (a cached statement left un-reset would
 * hold its read snapshot open). */
static os_err step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? OS_OK : sql_err(rc);
}

/* Copies a BLOB column that must be exactly n bytes; 0 when it is not. */
static int col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t n)
{
    const void *p = sqlite3_column_blob(st, i);

    if (p == NULL || (size_t)sqlite3_column_bytes(st, i) != n)
        return 0;
    memcpy(out, p, n);
    return 1;
}

static void lock(sl_ledger *l)
{
    pthread_mutex_lock(&l->mu);
}

static void unlock(sl_ledger *l)
{
    pthread_mutex_unlock(&l->mu);
}

/* Ends a write transaction: commits when rc is OS_OK, else (or when the commit fails) rolls
 * back. Returns the final status. */
static os_err end_tx(sl_ledger *l, os_err rc)
{
    if (rc == OS_OK && (rc = os_db_commit(l->db)) == OS_OK)
        return OS_OK;
    os_db_rollback(l->db);
    return rc;
}

/* ---- open and close ----------------------------------------------------------------------- */

static const char sql_recover_count[] =
    "UPDATE channels SET requests = requests + (SELECT count(*) FROM requests r"
    " WHERE r.channel_id = channels.id AND r.status = 'pending')"
    " WHERE id IN (SELECT channel_id FROM requests WHERE status = 'pending')";
static const char sql_recover[] =
    "UPDATE requests SET status = 'finished', outcome = 'interrupted', input_tokens = 0,"
    " cached_tokens = 0, output_tokens = 0, cost = 0, latency_ms = 0, ttft_ms = 0,"
    " upstream_status = 0, finished_ms = ?1 WHERE status = 'pending'";

/* Finishes what a crash left pending: the buyer never saw a final chunk, so it was told no cost,
 * and consumed stays as it was. */
static os_err recover_pending(sl_ledger *l)
{
    sqlite3_stmt *st;
    os_err rc;

    if ((rc = os_db_begin(l->db)) != OS_OK)
        return rc;
    if ((st = os_db_stmt(l->db, sql_recover_count)) == NULL)
        return end_tx(l, OS_ERR_IO);
    if ((rc = step_done(st)) != OS_OK)
        return end_tx(l, rc);
    if ((st = os_db_stmt(l->db, sql_recover)) == NULL)
        return end_tx(l, OS_ERR_IO);
    if (sqlite3_bind_int64(st, 1, now_ms()) != SQLITE_OK)
        return end_tx(l, OS_ERR_INTERNAL);
    return end_tx(l, step_done(st));
}

os_err sl_ledger_open(sl_ledger **out, const char *path, char *err, size_t errcap)
{
    os_db_options o = {.migrations = migrations,
                       .n_migrations = sizeof(migrations) / sizeof(migrations[0]),
                       .busy_timeout_ms = 5000,
                       .synchronous_full = 1};
    sl_ledger *l;
    os_err rc;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output handle");
    *out = NULL;
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return os_errf(err, errcap, OS_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return os_errf(err, errcap, OS_ERR_NOMEM, "cannot create the ledger's lock");
    }
    if ((rc = os_db_open(&l->db, path, &o, err, errcap)) != OS_OK) {
        sl_ledger_close(l);
        return rc;
    }
    if ((rc = recover_pending(l)) != OS_OK) {
        os_errf(err, errcap, rc, "cannot finish interrupted requests: %s", os_db_errmsg(l->db));
        sl_ledger_close(l);
        return rc;
    }
    *out = l;
    return OS_OK;
}

void sl_ledger_close(sl_ledger *l)
{
    if (l == NULL)
        return;
    os_db_close(l->db);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* ---- channels ----------------------------------------------------------------------------- */

#define CH_COLS                                                                                    \
    "id, payer, seller, signer, commitment, deposit, claimed, close_at, closed, last_nonce,"       \
    " block, checked_ms, v_nonce, v_cumulative, v_metadata_hash, v_signature, consumed,"           \
    " requests, first_seen_ms, input_tokens, cached_tokens, output_tokens"

static const char sql_ch_get[] = "SELECT " CH_COLS " FROM channels WHERE id = ?1";
static const char sql_ch_list[] = "SELECT " CH_COLS " FROM channels ORDER BY first_seen_ms, rowid";

/* Token totals, for the revenue view, which sl_channel does not carry. */
typedef struct ch_tokens {
    uint64_t input, cached, output;
} ch_tokens;

/* Reads a row selected with CH_COLS; OS_ERR_IO for a row whose blobs have the wrong size. */
static os_err read_channel(sqlite3_stmt *st, sl_channel *c, ch_tokens *tok)
{
    memset(c, 0, sizeof(*c));
    if (!col_blob(st, 0, c->id, 32) || !col_blob(st, 1, c->chain.payer, 20) ||
        !col_blob(st, 2, c->chain.seller, 20) || !col_blob(st, 3, c->chain.signer, 20) ||
        !col_blob(st, 4, c->chain.commitment, 32))
        return OS_ERR_IO;
    c->chain.deposit = col_u64(st, 5);
    c->chain.claimed = col_u64(st, 6);
    c->chain.close_at = col_u64(st, 7);
    c->chain.closed = sqlite3_column_int64(st, 8) != 0;
    c->chain.last_nonce = col_u64(st, 9);
    c->chain.block = col_u64(st, 10);
    c->checked_ms = sqlite3_column_int64(st, 11);
    if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
        c->has_voucher = true;
        memcpy(c->voucher.channel_id, c->id, 32);
        c->voucher.nonce = col_u64(st, 12);
        c->voucher.cumulative_amount = col_u64(st, 13);
        if (!col_blob(st, 14, c->voucher.metadata_hash, 32) ||
            !col_blob(st, 15, c->voucher.sig, 65))
            return OS_ERR_IO;
    }
    c->consumed = col_u64(st, 16);
    c->requests = col_u64(st, 17);
    c->first_seen_ms = sqlite3_column_int64(st, 18);
    if (tok != NULL) {
        tok->input = col_u64(st, 19);
        tok->cached = col_u64(st, 20);
        tok->output = col_u64(st, 21);
    }
    return OS_OK;
}

os_err sl_ledger_channel_get(sl_ledger *l, sl_channel *out, const uint8_t id[32])
{
    sqlite3_stmt *st;
    os_err rc;
    int s;

    if (l == NULL || out == NULL || id == NULL)
        return OS_ERR_INVALID;
    lock(l);
    if ((st = os_db_stmt(l->db, sql_ch_get)) == NULL) {
        unlock(l);
        return OS_ERR_IO;
    }
    if (sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC) != SQLITE_OK)
        rc = OS_ERR_INTERNAL;
    else if ((s = sqlite3_step(st)) == SQLITE_ROW)
        rc = read_channel(st, out, NULL);
    else
        rc = s == SQLITE_DONE ? OS_ERR_NOTFOUND : sql_err(s);
    sqlite3_reset(st);
    unlock(l);
    return rc;
}

/* Every channel, in first-seen order, with their token totals when tok is non-NULL; the caller
 * holds the lock. */
static os_err list_locked(sl_ledger *l, sl_channel **out, ch_tokens **tok, size_t *n)
{
    sqlite3_stmt *st = os_db_stmt(l->db, sql_ch_list);
    sl_channel *v = NULL;
    ch_tokens *t = NULL;
    size_t len = 0, cap = 0;
    os_err rc = OS_OK;
    int s;

    *out = NULL;
    *n = 0;
    if (tok != NULL)
        *tok = NULL;
    if (st == NULL)
        return OS_ERR_IO;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap != 0 ? cap * 2 : 16;
            sl_channel *nv = realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                rc = OS_ERR_NOMEM;
                break;
            }
            v = nv;
            if (tok != NULL) {
                ch_tokens *nt = realloc(t, ncap * sizeof(*nt));
                if (nt == NULL) {
                    rc = OS_ERR_NOMEM;
                    break;
                }
                t = nt;
            }
            cap = ncap;
        }
        if ((rc = read_channel(st, &v[len], tok != NULL ? &t[len] : NULL)) != OS_OK)
            break;
        len++;
    }
    if (rc == OS_OK && s != SQLITE_DONE)
        rc = sql_err(s);
    sqlite3_reset(st);
    if (rc != OS_OK) {
        free(v);
        free(t);
        return rc;
    }
    *out = v;
    *n = len;
    if (tok != NULL)
        *tok = t;
    else
        free(t);
    return OS_OK;
}

os_err sl_ledger_channel_list(sl_ledger *l, sl_channel **out, size_t *n)
{
    os_err rc;

    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (l == NULL || out == NULL || n == NULL)
        return OS_ERR_INVALID;
    lock(l);
    rc = list_locked(l, out, NULL, n);
    unlock(l);
    return rc;
}

static const char sql_ch_put[] =
    "INSERT INTO channels (id, payer, seller, signer, commitment, deposit, claimed, close_at,"
    " closed, last_nonce, block, checked_ms, first_seen_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT (id) DO UPDATE SET payer = excluded.payer, seller = excluded.seller,"
    " signer = excluded.signer, commitment = excluded.commitment, deposit = excluded.deposit,"
    " claimed = excluded.claimed, close_at = excluded.close_at, closed = excluded.closed,"
    " last_nonce = excluded.last_nonce, block = excluded.block, checked_ms = excluded.checked_ms";

os_err sl_ledger_channel_put_chain(sl_ledger *l, const uint8_t id[32], const os_channel_state *c,
                                   int64_t checked_ms)
{
    sqlite3_stmt *st;
    os_err rc;

    if (l == NULL || id == NULL || c == NULL)
        return OS_ERR_INVALID;
    lock(l);
    if ((st = os_db_stmt(l->db, sql_ch_put)) == NULL) {
        unlock(l);
        return OS_ERR_IO;
    }
    if (sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 2, c->payer, 20, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 3, c->seller, 20, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 4, c->signer, 20, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 5, c->commitment, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, enc(c->deposit)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 7, enc(c->claimed)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 8, enc(c->close_at)) != SQLITE_OK ||
        sqlite3_bind_int(st, 9, c->closed ? 1 : 0) != SQLITE_OK ||
        sqlite3_bind_int64(st, 10, enc(c->last_nonce)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 11, enc(c->block)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 12, checked_ms) != SQLITE_OK ||
        sqlite3_bind_int64(st, 13, now_ms()) != SQLITE_OK) {
        sqlite3_reset(st);
        rc = OS_ERR_INTERNAL;
    } else {
        rc = step_done(st); /* one statement: autocommit makes it durable on return */
    }
    unlock(l);
    return rc;
}

/* ---- accept and finish -------------------------------------------------------------------- */

static const char sql_acc_latest[] = "SELECT v_nonce FROM channels WHERE id = ?1";
static const char sql_acc_voucher[] =
    "INSERT INTO vouchers (channel_id, nonce, cumulative, metadata_hash, signature, estimate,"
    " accepted_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_acc_channel[] =
    "UPDATE channels SET v_nonce = ?2, v_cumulative = ?3, v_metadata_hash = ?4,"
    " v_signature = ?5 WHERE id = ?1";
static const char sql_acc_request[] =
    "INSERT INTO requests (channel_id, nonce, api, service, estimate, status, started_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)";

/* A bounded, non-empty string: len < cap bytes. */
static int str_ok(const char *s, size_t cap)
{
    size_t n;

    if (s == NULL)
        return 0;
    n = strnlen(s, cap);
    return n > 0 && n < cap;
}

/* The accept transaction's body; the caller holds the lock and an open transaction. */
static os_err accept_tx(sl_ledger *l, uint64_t *request_id, const os_voucher *v, const char *api,
                        const char *service, uint64_t estimate, int64_t now)
{
    sqlite3_stmt *st;
    os_err rc;
    int s;

    if ((st = os_db_stmt(l->db, sql_acc_latest)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, v->channel_id, 32, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    s = sqlite3_step(st);
    if (s != SQLITE_ROW) {
        sqlite3_reset(st);
        return s == SQLITE_DONE ? OS_ERR_NOTFOUND : sql_err(s);
    }
    rc = sqlite3_column_type(st, 0) != SQLITE_NULL && v->nonce <= col_u64(st, 0) ? OS_ERR_EXISTS
                                                                                 : OS_OK;
    sqlite3_reset(st);
    if (rc != OS_OK)
        return rc;

    if ((st = os_db_stmt(l->db, sql_acc_voucher)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, v->channel_id, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, enc(v->nonce)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, enc(v->cumulative_amount)) != SQLITE_OK ||
        sqlite3_bind_blob(st, 4, v->metadata_hash, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 5, v->sig, 65, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, enc(estimate)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 7, now) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    if ((rc = step_done(st)) != OS_OK)
        return rc;

    if ((st = os_db_stmt(l->db, sql_acc_channel)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, v->channel_id, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, enc(v->nonce)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, enc(v->cumulative_amount)) != SQLITE_OK ||
        sqlite3_bind_blob(st, 4, v->metadata_hash, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 5, v->sig, 65, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    if ((rc = step_done(st)) != OS_OK)
        return rc;

    if ((st = os_db_stmt(l->db, sql_acc_request)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, v->channel_id, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, enc(v->nonce)) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, api, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, service, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, enc(estimate)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, now) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    if ((rc = step_done(st)) != OS_OK)
        return rc;
    /* The lock keeps any other insert on this connection away until we have read it. */
    *request_id = (uint64_t)sqlite3_last_insert_rowid(os_db_handle(l->db));
    return OS_OK;
}

os_err sl_ledger_accept(sl_ledger *l, uint64_t *request_id, const os_voucher *v, const char *api,
                        const char *service, uint64_t estimate)
{
    uint64_t id = 0;
    os_err rc;

    if (l == NULL || request_id == NULL || v == NULL || !str_ok(api, OS_INFER_API_MAX) ||
        !str_ok(service, OS_INFER_SERVICE_MAX))
        return OS_ERR_INVALID;
    lock(l);
    if ((rc = os_db_begin(l->db)) == OS_OK)
        rc = end_tx(l, accept_tx(l, &id, v, api, service, estimate, now_ms()));
    unlock(l);
    if (rc == OS_OK)
        *request_id = id;
    return rc;
}

static const char sql_fin_req[] = "SELECT channel_id, status FROM requests WHERE id = ?1";
static const char sql_fin_ch[] =
    "SELECT consumed, requests, input_tokens, cached_tokens, output_tokens FROM channels"
    " WHERE id = ?1";
static const char sql_fin_req_upd[] =
    "UPDATE requests SET status = 'finished', outcome = ?2, input_tokens = ?3,"
    " cached_tokens = ?4, output_tokens = ?5, cost = ?6, latency_ms = ?7, ttft_ms = ?8,"
    " upstream_status = ?9, finished_ms = ?10 WHERE id = ?1 AND status = 'pending'";
static const char sql_fin_ch_upd[] =
    "UPDATE channels SET consumed = ?2, requests = ?3, input_tokens = ?4, cached_tokens = ?5,"
    " output_tokens = ?6 WHERE id = ?1";

/* An outcome name: [a-z_]{1,32}, so the views need no escaping beyond JSON's. */
static int outcome_ok(const char *s)
{
    size_t n;

    if (s == NULL || (n = strnlen(s, OUTCOME_MAX + 1)) == 0 || n > OUTCOME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return 0;
    return 1;
}

/* The finish transaction's body; the caller holds the lock and an open transaction. */
static os_err finish_tx(sl_ledger *l, uint64_t *consumed_after, uint64_t request_id,
                        const sl_request_end *e)
{
    uint8_t ch[32];
    uint64_t consumed, requests, tin, tcached, tout;
    sqlite3_stmt *st;
    os_err rc = OS_OK;
    int s;

    if ((st = os_db_stmt(l->db, sql_fin_req)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_int64(st, 1, (int64_t)request_id) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    if ((s = sqlite3_step(st)) != SQLITE_ROW)
        rc = s == SQLITE_DONE ? OS_ERR_NOTFOUND : sql_err(s);
    else if (!col_blob(st, 0, ch, 32))
        rc = OS_ERR_IO;
    else if (sqlite3_column_text(st, 1) == NULL ||
             strcmp((const char *)sqlite3_column_text(st, 1), "pending") != 0)
        rc = OS_ERR_EXISTS;
    sqlite3_reset(st);
    if (rc != OS_OK)
        return rc;

    if ((st = os_db_stmt(l->db, sql_fin_ch)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, ch, 32, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    if ((s = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_reset(st);
        /* a request whose channel is gone: the schema's references forbid it */
        return s == SQLITE_DONE ? OS_ERR_INTERNAL : sql_err(s);
    }
    consumed = col_u64(st, 0);
    requests = col_u64(st, 1);
    tin = col_u64(st, 2);
    tcached = col_u64(st, 3);
    tout = col_u64(st, 4);
    sqlite3_reset(st);
    if ((rc = os_money_add(&consumed, consumed, e->cost)) != OS_OK)
        return rc;

    if ((st = os_db_stmt(l->db, sql_fin_req_upd)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_int64(st, 1, (int64_t)request_id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, e->outcome, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, enc(e->usage.input_tokens)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, enc(e->usage.cached_tokens)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, enc(e->usage.output_tokens)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, enc(e->cost)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 7, enc(e->latency_ms)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 8, enc(e->ttft_ms)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 9, (int64_t)e->upstream_status) != SQLITE_OK ||
        sqlite3_bind_int64(st, 10, now_ms()) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    if ((rc = step_done(st)) != OS_OK)
        return rc;
    if (sqlite3_changes(os_db_handle(l->db)) != 1)
        return OS_ERR_INTERNAL; /* checked pending above, inside this transaction */

    if ((st = os_db_stmt(l->db, sql_fin_ch_upd)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, ch, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, enc(consumed)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, enc(sat_add(requests, 1))) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, enc(sat_add(tin, e->usage.input_tokens))) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, enc(sat_add(tcached, e->usage.cached_tokens))) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, enc(sat_add(tout, e->usage.output_tokens))) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    if ((rc = step_done(st)) != OS_OK)
        return rc;
    *consumed_after = consumed;
    return OS_OK;
}

os_err sl_ledger_finish(sl_ledger *l, uint64_t *consumed_after, uint64_t request_id,
                        const sl_request_end *e)
{
    uint64_t after = 0;
    os_err rc;

    if (l == NULL || e == NULL || !outcome_ok(e->outcome))
        return OS_ERR_INVALID;
    if (request_id == 0 || request_id > (uint64_t)INT64_MAX)
        return OS_ERR_NOTFOUND; /* rowids are 1..INT64_MAX */
    lock(l);
    if ((rc = os_db_begin(l->db)) == OS_OK)
        rc = end_tx(l, finish_tx(l, &after, request_id, e));
    unlock(l);
    if (rc == OS_OK && consumed_after != NULL)
        *consumed_after = after;
    return rc;
}

/* ---- settlement ---------------------------------------------------------------------------- */

static const char sql_cand_consumed[] = "SELECT consumed FROM channels WHERE id = ?1";
static const char sql_cand_scan[] =
    "SELECT v.nonce, v.cumulative, v.metadata_hash, v.signature, v.estimate, r.cost"
    " FROM vouchers v JOIN requests r ON r.channel_id = v.channel_id AND r.nonce = v.nonce"
    " WHERE v.channel_id = ?1 AND v.nonce BETWEEN ?2 AND ?3 AND r.status = 'finished'";

/* The last finished request's slack bounds every claim: in the honest flow its voucher is exactly
 * consumed + that slack, and an earlier, larger voucher (a buyer that over-authorised a request
 * that then cost little) must not let the seller take more. */
static const char sql_cand_last[] =
    "SELECT v.nonce, v.estimate, r.cost"
    " FROM vouchers v JOIN requests r ON r.channel_id = v.channel_id AND r.nonce = v.nonce"
    " WHERE v.channel_id = ?1 AND r.status = 'finished'";

typedef struct cand_state {
    uint64_t consumed, claimed;
    uint64_t slack; /* of the finished request with the highest nonce */
    bool found;
    os_voucher best;
} cand_state;

/* Scans the finished vouchers whose stored (signed) nonce lies in [lo, hi]. */
static os_err cand_scan(sl_ledger *l, cand_state *cs, const uint8_t id[32], int64_t lo, int64_t hi)
{
    sqlite3_stmt *st = os_db_stmt(l->db, sql_cand_scan);
    os_err rc = OS_OK;
    int s;

    if (st == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, lo) != SQLITE_OK || sqlite3_bind_int64(st, 3, hi) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t nonce = col_u64(st, 0), cum = col_u64(st, 1);
        uint64_t slack = cs->slack;

        /* cumulative <= consumed + slack; a sum past UINT64_MAX bounds nothing */
        if (cum <= cs->claimed ||
            (cs->consumed <= UINT64_MAX - slack && cum > cs->consumed + slack))
            continue;
        /* Highest amount; on a tie the lower nonce, which leaves later vouchers claimable. */
        if (cs->found && (cum < cs->best.cumulative_amount ||
                          (cum == cs->best.cumulative_amount && nonce > cs->best.nonce)))
            continue;
        if (!col_blob(st, 2, cs->best.metadata_hash, 32) || !col_blob(st, 3, cs->best.sig, 65)) {
            rc = OS_ERR_IO;
            break;
        }
        memcpy(cs->best.channel_id, id, 32);
        cs->best.nonce = nonce;
        cs->best.cumulative_amount = cum;
        cs->found = true;
    }
    if (rc == OS_OK && s != SQLITE_DONE)
        rc = sql_err(s);
    sqlite3_reset(st);
    return rc;
}

/* The candidate search; the caller holds the lock and a read transaction. */
static os_err candidate_tx(sl_ledger *l, cand_state *cs, const uint8_t id[32], uint64_t min_nonce)
{
    sqlite3_stmt *st = os_db_stmt(l->db, sql_cand_consumed);
    os_err rc;
    int s;

    if (st == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        cs->consumed = col_u64(st, 0);
    sqlite3_reset(st);
    if (s != SQLITE_ROW)
        return s == SQLITE_DONE ? OS_ERR_NOTFOUND : sql_err(s);
    if ((st = os_db_stmt(l->db, sql_cand_last)) == NULL)
        return OS_ERR_IO;
    if (sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    {
        uint64_t last = 0;
        bool any = false;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            uint64_t nonce = col_u64(st, 0), est = col_u64(st, 1), cost = col_u64(st, 2);
            if (!any || nonce > last) {
                any = true;
                last = nonce;
                cs->slack = est > cost ? est - cost : 0;
            }
        }
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
            return sql_err(s);
    }
    /* [min_nonce, UINT64_MAX] as stored: the non-negative part, then the part above INT64_MAX. */
    if (min_nonce <= (uint64_t)INT64_MAX &&
        (rc = cand_scan(l, cs, id, (int64_t)min_nonce, INT64_MAX)) != OS_OK)
        return rc;
    return cand_scan(l, cs, id, min_nonce <= (uint64_t)INT64_MAX ? INT64_MIN : enc(min_nonce), -1);
}

os_err sl_ledger_settle_candidate(sl_ledger *l, os_voucher *out, uint64_t *earned,
                                  const uint8_t id[32], uint64_t min_nonce, uint64_t claimed)
{
    cand_state cs;
    os_err rc;

    if (l == NULL || out == NULL || id == NULL)
        return OS_ERR_INVALID;
    memset(&cs, 0, sizeof(cs));
    cs.claimed = claimed;
    lock(l);
    /* A deferred transaction: one snapshot for consumed and the vouchers, no write lock. */
    if ((rc = os_db_exec(l->db, "BEGIN", NULL, 0)) == OS_OK) {
        rc = candidate_tx(l, &cs, id, min_nonce);
        os_db_rollback(l->db);
    }
    unlock(l);
    if (rc != OS_OK)
        return rc; /* OS_ERR_NOTFOUND here: no such channel */
    if (earned != NULL)
        *earned = cs.consumed;
    if (!cs.found)
        return OS_ERR_NOTFOUND;
    *out = cs.best;
    return OS_OK;
}

static const char sql_settle_add[] =
    "INSERT INTO settlements (channel_id, nonce, cumulative, amount, tx_hash, gas_used,"
    " gas_price_wei, status, error, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

os_err sl_ledger_settlement_add(sl_ledger *l, const sl_settlement *s)
{
    static const uint8_t zero[32];
    sqlite3_stmt *st;
    size_t elen = 0;
    int ok;
    os_err rc;

    if (l == NULL || s == NULL || !outcome_ok(s->status))
        return OS_ERR_INVALID;
    if (s->error != NULL) {
        /* Keep a bounded prefix, cut on a UTF-8 character boundary. */
        elen = strnlen(s->error, SETTLE_ERROR_MAX + 1);
        if (elen > SETTLE_ERROR_MAX) {
            elen = SETTLE_ERROR_MAX;
            while (elen > 0 && ((unsigned char)s->error[elen] & 0xc0) == 0x80)
                elen--;
        }
    }
    lock(l);
    if ((st = os_db_stmt(l->db, sql_settle_add)) == NULL) {
        unlock(l);
        return OS_ERR_IO;
    }
    ok = sqlite3_bind_blob(st, 1, s->channel_id, 32, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_bind_int64(st, 2, enc(s->nonce)) == SQLITE_OK &&
         sqlite3_bind_int64(st, 3, enc(s->cumulative)) == SQLITE_OK &&
         sqlite3_bind_int64(st, 4, enc(s->amount)) == SQLITE_OK &&
         sqlite3_bind_int64(st, 6, enc(s->gas_used)) == SQLITE_OK &&
         sqlite3_bind_int64(st, 7, enc(s->gas_price_wei)) == SQLITE_OK &&
         sqlite3_bind_text(st, 8, s->status, -1, SQLITE_STATIC) == SQLITE_OK &&
         sqlite3_bind_int64(st, 10, s->at_ms) == SQLITE_OK;
    /* unbound parameters are NULL: no transaction sent, no error */
    if (ok && memcmp(s->tx_hash, zero, 32) != 0)
        ok = sqlite3_bind_blob(st, 5, s->tx_hash, 32, SQLITE_STATIC) == SQLITE_OK;
    if (ok && s->error != NULL)
        ok = sqlite3_bind_text(st, 9, s->error, (int)elen, SQLITE_STATIC) == SQLITE_OK;
    if (!ok) {
        sqlite3_reset(st);
        rc = OS_ERR_INTERNAL;
    } else {
        rc = step_done(st);
    }
    unlock(l);
    return rc;
}

/* ---- JSON views ---------------------------------------------------------------------------- */

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
    lock(l);
    rc = list_locked(l, &cs, NULL, &n);
    unlock(l);
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

    if (!col_blob(st, 0, id, 32) || !col_blob(st, 3, mh, 32) || !col_blob(st, 4, sig, 65) ||
        (o = json_object()) == NULL)
        return NULL;
    put(o, "channel_id", os_json_hex(id, 32), &ok);
    put(o, "nonce", j_count(col_u64(st, 1)), &ok);
    put(o, "cumulative", os_money_to_json(col_u64(st, 2)), &ok);
    put(o, "metadata_hash", os_json_hex(mh, 32), &ok);
    put(o, "signature", os_json_hex(sig, 65), &ok);
    put(o, "estimate", os_money_to_json(col_u64(st, 5)), &ok);
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
    lock(l);
    st = os_db_stmt(l->db, channel_id != NULL ? sql_one : sql_all);
    if (st != NULL) {
        if (sqlite3_bind_int64(st, 1, clamp_limit(limit)) == SQLITE_OK &&
            (channel_id == NULL ||
             sqlite3_bind_blob(st, 2, channel_id, 32, SQLITE_STATIC) == SQLITE_OK))
            arr = rows_json(st, row);
        else
            sqlite3_reset(st);
    }
    unlock(l);
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

    if (!col_blob(st, 1, id, 32) || (o = json_object()) == NULL)
        return NULL;
    put(o, "id", j_count(col_u64(st, 0)), &ok);
    put(o, "channel_id", os_json_hex(id, 32), &ok);
    put(o, "nonce", j_count(col_u64(st, 16)), &ok);
    put(o, "api", j_text(st, 2), &ok);
    put(o, "service", j_text(st, 3), &ok);
    put(o, "status", j_text(st, 4), &ok);
    put(o, "outcome", j_text(st, 5), &ok);
    put(o, "input_tokens", j_count(col_u64(st, 6)), &ok);
    put(o, "cached_tokens", j_count(col_u64(st, 7)), &ok);
    put(o, "output_tokens", j_count(col_u64(st, 8)), &ok);
    put(o, "cost", os_money_to_json(col_u64(st, 9)), &ok);
    put(o, "estimate", os_money_to_json(col_u64(st, 10)), &ok);
    put(o, "latency_ms", j_count(col_u64(st, 11)), &ok);
    put(o, "ttft_ms", j_count(col_u64(st, 12)), &ok);
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

    if (!col_blob(st, 0, id, 32) || (o = json_object()) == NULL)
        return NULL;
    put(o, "channel_id", os_json_hex(id, 32), &ok);
    put(o, "nonce", j_count(col_u64(st, 1)), &ok);
    put(o, "cumulative", os_money_to_json(col_u64(st, 2)), &ok);
    put(o, "amount", os_money_to_json(col_u64(st, 3)), &ok);
    put(o, "tx_hash", col_blob(st, 4, tx, 32) ? os_json_hex(tx, 32) : json_null(), &ok);
    put(o, "gas_used", j_count(col_u64(st, 5)), &ok);
    put(o, "gas_price_wei", os_money_to_json(col_u64(st, 6)), &ok);
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
    ch_tokens *tok;
    size_t n;
    json_t *by;
    sqlite3_stmt *st;
    int ok = 1, s;

    if (list_locked(l, &cs, &tok, &n) != OS_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        consumed += cs[i].consumed;
        claimed += cs[i].chain.claimed;
        if (cs[i].consumed > cs[i].chain.claimed)
            unclaimed += cs[i].consumed - cs[i].chain.claimed;
        requests = sat_add(requests, cs[i].requests);
        tin = sat_add(tin, tok[i].input);
        tcached = sat_add(tcached, tok[i].cached);
        tout = sat_add(tout, tok[i].output);
    }
    free(cs);
    free(tok);

    if ((st = os_db_stmt(l->db, sql_rev_gas)) == NULL)
        return 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        unsigned __int128 g = (unsigned __int128)col_u64(st, 0) * col_u64(st, 1);
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
    lock(l);
    if (os_db_exec(l->db, "BEGIN", NULL, 0) == OS_OK) {
        ok = revenue_tx(l, o);
        os_db_rollback(l->db);
    }
    unlock(l);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
