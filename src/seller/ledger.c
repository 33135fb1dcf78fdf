/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seller.db, the seller's books (ledger.h states the contract). Every write that moves money or
 * accepts a voucher is one BEGIN IMMEDIATE ... COMMIT on a connection opened with
 * synchronous=FULL, so a function that returned OS_OK has its rows on disk. The one connection is
 * guarded by the ledger's mutex, which also makes a read-check-write sequence (the nonce check in
 * accept, the overflow check in finish) atomic within the process; BEGIN IMMEDIATE makes it atomic
 * against another connection to the same file. The admin API's JSON views of these rows are in
 * ledger_views.c; they read through a second, read-only connection with a lock of its own, so
 * they never wait for these writes nor make them wait.
 *
 * Unsigned 64-bit values (amounts, nonces, token counts, durations) are stored as their two's
 * complement bit pattern in SQLite's signed INTEGER: values up to INT64_MAX read as themselves in
 * the sqlite3 shell, larger ones read negative there but round-trip exactly here. SQL therefore
 * never compares or adds them; the C code does, with money.h's checked arithmetic. The one range
 * query on nonces (settlement candidates) splits [min, UINT64_MAX] into the two signed ranges it
 * covers. Token totals per channel saturate at UINT64_MAX (statistics, not money).
 */
#include "ledger.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/db.h"
#include "openseed/money.h"

#include "ledger_internal.h"

#define OUTCOME_MAX 32       /* bytes of an outcome name, NUL excluded */
#define SETTLE_ERROR_MAX 512 /* bytes kept of a settlement's error text */

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
    /* 2: the admin API's revenue series (a range of finish times) and per-service latency (the
     * newest successful requests of one service); finished_ms and service are never updated
     * after a request finishes, so the indexes cost one insert each per request */
    "CREATE INDEX requests_by_finished ON requests (finished_ms);"
    "CREATE INDEX requests_ok_by_service ON requests (service, finished_ms)"
    " WHERE outcome = 'ok';",
};

const char *const *sl_ledger_migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}

/* ---- small helpers ------------------------------------------------------------------------ */

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

/* Binds v as its stored bit pattern; the bind helpers return true when bound. */
static bool bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
    return sqlite3_bind_int64(st, i, ldg_enc(v)) == SQLITE_OK;
}

static bool bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
    return sqlite3_bind_int64(st, i, v) == SQLITE_OK;
}

/* SQLITE_STATIC, no copy: every caller steps and resets the statement before p goes away. */
static bool bind_blob(sqlite3_stmt *st, int i, const void *p, int n)
{
    return sqlite3_bind_blob(st, i, p, n, SQLITE_STATIC) == SQLITE_OK;
}

static bool bind_text(sqlite3_stmt *st, int i, const char *t, int n)
{
    return sqlite3_bind_text(st, i, t, n, SQLITE_STATIC) == SQLITE_OK;
}

/* step_done for a statement whose binds all succeeded (bound); a failed bind is our bug, not the
 * database's, and still leaves the statement reset. */
static os_err step_bound(sqlite3_stmt *st, bool bound)
{
    if (!bound) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    return step_done(st);
}

/* sql's cached statement with ?1 bound to the 32-byte key id, for the caller to step and reset. */
static os_err stmt_id(sl_ledger *l, sqlite3_stmt **out, const char *sql, const uint8_t id[32])
{
    sqlite3_stmt *st = os_db_stmt(l->db, sql);

    if (st == NULL)
        return OS_ERR_IO;
    if (!bind_blob(st, 1, id, 32)) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    *out = st;
    return OS_OK;
}

/* stmt_id stepped to its row: OS_OK with the row ready (the caller reads it, then resets *out);
 * otherwise the statement is already reset, and OS_ERR_NOTFOUND means there is no row. */
static os_err row_id(sl_ledger *l, sqlite3_stmt **out, const char *sql, const uint8_t id[32])
{
    sqlite3_stmt *st;
    os_err rc;
    int s;

    if ((rc = stmt_id(l, &st, sql, id)) != OS_OK)
        return rc;
    if ((s = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_reset(st);
        return s == SQLITE_DONE ? OS_ERR_NOTFOUND : sql_err(s);
    }
    *out = st;
    return OS_OK;
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
    return end_tx(l, step_bound(st, bind_i64(st, 1, now_ms())));
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
    /* The views' own connection, opened after the writer has migrated the schema (a read-only
     * connection refuses a schema it would have to migrate). An in-memory database is private to
     * its connection, so there the views share the writer. */
    if (strcmp(path, ":memory:") != 0) {
        if (pthread_mutex_init(&l->rmu, NULL) != 0) {
            sl_ledger_close(l);
            return os_errf(err, errcap, OS_ERR_NOMEM, "cannot create the views' lock");
        }
        l->rmu_ready = true;
        o.read_only = 1;
        o.synchronous_full = 0;
        if ((rc = os_db_open(&l->rdb, path, &o, err, errcap)) != OS_OK) {
            sl_ledger_close(l);
            return rc;
        }
    }
    *out = l;
    return OS_OK;
}

void sl_ledger_close(sl_ledger *l)
{
    if (l == NULL)
        return;
    os_db_close(l->rdb); /* first: the last connection to close checkpoints the WAL */
    os_db_close(l->db);
    if (l->rmu_ready)
        pthread_mutex_destroy(&l->rmu);
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

/* Reads a row selected with CH_COLS; OS_ERR_IO for a row whose blobs have the wrong size. */
static os_err read_channel(sqlite3_stmt *st, sl_channel *c, sl_ledger_tokens *tok)
{
    memset(c, 0, sizeof(*c));
    if (!ldg_col_blob(st, 0, c->id, 32) || !ldg_col_blob(st, 1, c->chain.payer, 20) ||
        !ldg_col_blob(st, 2, c->chain.seller, 20) || !ldg_col_blob(st, 3, c->chain.signer, 20) ||
        !ldg_col_blob(st, 4, c->chain.commitment, 32))
        return OS_ERR_IO;
    c->chain.deposit = ldg_col_u64(st, 5);
    c->chain.claimed = ldg_col_u64(st, 6);
    c->chain.close_at = ldg_col_u64(st, 7);
    c->chain.closed = sqlite3_column_int64(st, 8) != 0;
    c->chain.last_nonce = ldg_col_u64(st, 9);
    c->chain.block = ldg_col_u64(st, 10);
    c->checked_ms = sqlite3_column_int64(st, 11);
    if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
        c->has_voucher = true;
        memcpy(c->voucher.channel_id, c->id, 32);
        c->voucher.nonce = ldg_col_u64(st, 12);
        c->voucher.cumulative_amount = ldg_col_u64(st, 13);
        if (!ldg_col_blob(st, 14, c->voucher.metadata_hash, 32) ||
            !ldg_col_blob(st, 15, c->voucher.sig, 65))
            return OS_ERR_IO;
    }
    c->consumed = ldg_col_u64(st, 16);
    c->requests = ldg_col_u64(st, 17);
    c->first_seen_ms = sqlite3_column_int64(st, 18);
    if (tok != NULL) {
        tok->input = ldg_col_u64(st, 19);
        tok->cached = ldg_col_u64(st, 20);
        tok->output = ldg_col_u64(st, 21);
    }
    return OS_OK;
}

os_err sl_ledger_channel_get(sl_ledger *l, sl_channel *out, const uint8_t id[32])
{
    sqlite3_stmt *st;
    os_err rc;

    if (l == NULL || out == NULL || id == NULL)
        return OS_ERR_INVALID;
    ldg_lock(l);
    if ((rc = row_id(l, &st, sql_ch_get, id)) == OS_OK) {
        rc = read_channel(st, out, NULL);
        sqlite3_reset(st);
    }
    ldg_unlock(l);
    return rc;
}

/* ledger_internal.h documents it; both arrays grow together, so index i is one channel in each. */
os_err sl_ledger_list_(os_db *db, sl_channel **out, sl_ledger_tokens **tok, size_t *n)
{
    sqlite3_stmt *st = os_db_stmt(db, sql_ch_list);
    sl_channel *v = NULL;
    sl_ledger_tokens *t = NULL;
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
                sl_ledger_tokens *nt = realloc(t, ncap * sizeof(*nt));
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
    ldg_lock(l);
    rc = sl_ledger_list_(l->db, out, NULL, n);
    ldg_unlock(l);
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
    bool ok;

    if (l == NULL || id == NULL || c == NULL)
        return OS_ERR_INVALID;
    ldg_lock(l);
    if ((st = os_db_stmt(l->db, sql_ch_put)) == NULL) {
        ldg_unlock(l);
        return OS_ERR_IO;
    }
    ok = bind_blob(st, 1, id, 32) && bind_blob(st, 2, c->payer, 20) &&
         bind_blob(st, 3, c->seller, 20) && bind_blob(st, 4, c->signer, 20) &&
         bind_blob(st, 5, c->commitment, 32) && bind_u64(st, 6, c->deposit) &&
         bind_u64(st, 7, c->claimed) && bind_u64(st, 8, c->close_at) &&
         bind_i64(st, 9, c->closed ? 1 : 0) && bind_u64(st, 10, c->last_nonce) &&
         bind_u64(st, 11, c->block) && bind_i64(st, 12, checked_ms) && bind_i64(st, 13, now_ms());
    rc = step_bound(st, ok); /* one statement: autocommit makes it durable on return */
    ldg_unlock(l);
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

/* Binds ?1..?5 to v's channel, nonce, cumulative amount, metadata hash and signature. */
static bool bind_voucher(sqlite3_stmt *st, const os_voucher *v)
{
    return bind_blob(st, 1, v->channel_id, 32) && bind_u64(st, 2, v->nonce) &&
           bind_u64(st, 3, v->cumulative_amount) && bind_blob(st, 4, v->metadata_hash, 32) &&
           bind_blob(st, 5, v->sig, 65);
}

/* The accept transaction's body; the caller holds the lock and an open transaction. */
/* late: the voucher goes below the channel's latest instead of becoming it. */
static os_err accept_tx(sl_ledger *l, uint64_t *request_id, const os_voucher *v, const char *api,
                        const char *service, uint64_t estimate, int64_t now, bool late)
{
    sqlite3_stmt *st;
    os_err rc;
    bool ok, has_latest;

    if ((rc = row_id(l, &st, sql_acc_latest, v->channel_id)) != OS_OK)
        return rc;
    has_latest = sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (late ? !has_latest || v->nonce >= ldg_col_u64(st, 0)
             : has_latest && v->nonce <= ldg_col_u64(st, 0))
        rc = OS_ERR_EXISTS; /* a channel's latest nonce only grows */
    sqlite3_reset(st);
    if (rc != OS_OK)
        return rc;

    /* UNIQUE (channel_id, nonce): a nonce is used once, whatever order vouchers come in */
    if ((st = os_db_stmt(l->db, sql_acc_voucher)) == NULL)
        return OS_ERR_IO;
    ok = bind_voucher(st, v) && bind_u64(st, 6, estimate) && bind_i64(st, 7, now);
    if ((rc = step_bound(st, ok)) != OS_OK)
        return rc;

    if (!late) {
        if ((st = os_db_stmt(l->db, sql_acc_channel)) == NULL)
            return OS_ERR_IO;
        if ((rc = step_bound(st, bind_voucher(st, v))) != OS_OK)
            return rc;
    }

    if ((st = os_db_stmt(l->db, sql_acc_request)) == NULL)
        return OS_ERR_IO;
    ok = bind_blob(st, 1, v->channel_id, 32) && bind_u64(st, 2, v->nonce) &&
         bind_text(st, 3, api, -1) && bind_text(st, 4, service, -1) && bind_u64(st, 5, estimate) &&
         bind_i64(st, 6, now);
    if ((rc = step_bound(st, ok)) != OS_OK)
        return rc;
    /* The lock keeps any other insert on this connection away until we have read it. */
    *request_id = (uint64_t)sqlite3_last_insert_rowid(os_db_handle(l->db));
    return OS_OK;
}

static os_err accept(sl_ledger *l, uint64_t *request_id, const os_voucher *v, const char *api,
                     const char *service, uint64_t estimate, bool late)
{
    uint64_t id = 0;
    os_err rc;

    if (l == NULL || request_id == NULL || v == NULL || !str_ok(api, OS_INFER_API_MAX) ||
        !str_ok(service, OS_INFER_SERVICE_MAX))
        return OS_ERR_INVALID;
    ldg_lock(l);
    if ((rc = os_db_begin(l->db)) == OS_OK)
        rc = end_tx(l, accept_tx(l, &id, v, api, service, estimate, now_ms(), late));
    ldg_unlock(l);
    if (rc == OS_OK)
        *request_id = id;
    return rc;
}

os_err sl_ledger_accept(sl_ledger *l, uint64_t *request_id, const os_voucher *v, const char *api,
                        const char *service, uint64_t estimate)
{
    return accept(l, request_id, v, api, service, estimate, false);
}

os_err sl_ledger_accept_late(sl_ledger *l, uint64_t *request_id, const os_voucher *v,
                             const char *api, const char *service, uint64_t estimate)
{
    return accept(l, request_id, v, api, service, estimate, true);
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
    bool ok;
    int s;

    if ((st = os_db_stmt(l->db, sql_fin_req)) == NULL)
        return OS_ERR_IO;
    if (!bind_i64(st, 1, (int64_t)request_id)) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    if ((s = sqlite3_step(st)) != SQLITE_ROW)
        rc = s == SQLITE_DONE ? OS_ERR_NOTFOUND : sql_err(s);
    else if (!ldg_col_blob(st, 0, ch, 32))
        rc = OS_ERR_IO;
    else if (sqlite3_column_text(st, 1) == NULL ||
             strcmp((const char *)sqlite3_column_text(st, 1), "pending") != 0)
        rc = OS_ERR_EXISTS;
    sqlite3_reset(st);
    if (rc != OS_OK)
        return rc;

    /* a request whose channel is gone: the schema's references forbid it */
    if ((rc = row_id(l, &st, sql_fin_ch, ch)) != OS_OK)
        return rc == OS_ERR_NOTFOUND ? OS_ERR_INTERNAL : rc;
    consumed = ldg_col_u64(st, 0);
    requests = ldg_col_u64(st, 1);
    tin = ldg_col_u64(st, 2);
    tcached = ldg_col_u64(st, 3);
    tout = ldg_col_u64(st, 4);
    sqlite3_reset(st);
    if ((rc = os_money_add(&consumed, consumed, e->cost)) != OS_OK)
        return rc;

    if ((st = os_db_stmt(l->db, sql_fin_req_upd)) == NULL)
        return OS_ERR_IO;
    ok = bind_i64(st, 1, (int64_t)request_id) && bind_text(st, 2, e->outcome, -1) &&
         bind_u64(st, 3, e->usage.input_tokens) && bind_u64(st, 4, e->usage.cached_tokens) &&
         bind_u64(st, 5, e->usage.output_tokens) && bind_u64(st, 6, e->cost) &&
         bind_u64(st, 7, e->latency_ms) && bind_u64(st, 8, e->ttft_ms) &&
         bind_i64(st, 9, (int64_t)e->upstream_status) && bind_i64(st, 10, now_ms());
    if ((rc = step_bound(st, ok)) != OS_OK)
        return rc;
    if (sqlite3_changes(os_db_handle(l->db)) != 1)
        return OS_ERR_INTERNAL; /* checked pending above, inside this transaction */

    if ((st = os_db_stmt(l->db, sql_fin_ch_upd)) == NULL)
        return OS_ERR_IO;
    ok = bind_blob(st, 1, ch, 32) && bind_u64(st, 2, consumed) &&
         bind_u64(st, 3, ldg_sat_add(requests, 1)) &&
         bind_u64(st, 4, ldg_sat_add(tin, e->usage.input_tokens)) &&
         bind_u64(st, 5, ldg_sat_add(tcached, e->usage.cached_tokens)) &&
         bind_u64(st, 6, ldg_sat_add(tout, e->usage.output_tokens));
    if ((rc = step_bound(st, ok)) != OS_OK)
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
    ldg_lock(l);
    if ((rc = os_db_begin(l->db)) == OS_OK)
        rc = end_tx(l, finish_tx(l, &after, request_id, e));
    ldg_unlock(l);
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

/* The last charged request's slack bounds every claim: in the honest flow its voucher is exactly
 * consumed + that slack; an earlier, larger voucher (a buyer that over-authorised a request that
 * then cost little) must not let the seller take more, nor may the voucher of a request that cost
 * nothing (an upstream failure, a crash) let it take that request's estimate. */
/* Walked down the (channel_id, nonce) index from the top, it stops at the first charged request
 * instead of reading every request the channel ever had. Stored nonces above INT64_MAX are
 * negative (ldg_enc) and rank above the others, so the negative range is tried first. */
static const char sql_cand_last_high[] =
    "SELECT v.estimate, r.cost"
    " FROM vouchers v JOIN requests r ON r.channel_id = v.channel_id AND r.nonce = v.nonce"
    " WHERE v.channel_id = ?1 AND v.nonce < 0 AND r.status = 'finished' AND r.cost != 0"
    " ORDER BY v.nonce DESC LIMIT 1";
static const char sql_cand_last_low[] =
    "SELECT v.estimate, r.cost"
    " FROM vouchers v JOIN requests r ON r.channel_id = v.channel_id AND r.nonce = v.nonce"
    " WHERE v.channel_id = ?1 AND v.nonce >= 0 AND r.status = 'finished' AND r.cost != 0"
    " ORDER BY v.nonce DESC LIMIT 1";

typedef struct cand_state {
    uint64_t consumed, claimed;
    uint64_t slack; /* of the finished request with the highest nonce */
    bool found;
    os_voucher best;
} cand_state;

/* Scans the finished vouchers whose stored (signed) nonce lies in [lo, hi]. */
static os_err cand_scan(sl_ledger *l, cand_state *cs, const uint8_t id[32], int64_t lo, int64_t hi)
{
    sqlite3_stmt *st;
    os_err rc;
    int s;

    if ((rc = stmt_id(l, &st, sql_cand_scan, id)) != OS_OK)
        return rc;
    if (!bind_i64(st, 2, lo) || !bind_i64(st, 3, hi)) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t nonce = ldg_col_u64(st, 0), cum = ldg_col_u64(st, 1);
        uint64_t slack = cs->slack;

        /* cumulative <= consumed + slack; a sum past UINT64_MAX bounds nothing */
        if (cum <= cs->claimed ||
            (cs->consumed <= UINT64_MAX - slack && cum > cs->consumed + slack))
            continue;
        /* Highest amount; on a tie the lower nonce, which leaves later vouchers claimable. */
        if (cs->found && (cum < cs->best.cumulative_amount ||
                          (cum == cs->best.cumulative_amount && nonce > cs->best.nonce)))
            continue;
        if (!ldg_col_blob(st, 2, cs->best.metadata_hash, 32) ||
            !ldg_col_blob(st, 3, cs->best.sig, 65)) {
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
    sqlite3_stmt *st;
    bool any = false;
    os_err rc;
    int s = SQLITE_DONE;

    if ((rc = row_id(l, &st, sql_cand_consumed, id)) != OS_OK)
        return rc;
    cs->consumed = ldg_col_u64(st, 0);
    sqlite3_reset(st);
    for (int half = 0; half < 2 && !any; half++) {
        if ((rc = stmt_id(l, &st, half == 0 ? sql_cand_last_high : sql_cand_last_low, id)) !=
            OS_OK)
            return rc;
        if ((s = sqlite3_step(st)) == SQLITE_ROW) {
            uint64_t est = ldg_col_u64(st, 0), cost = ldg_col_u64(st, 1);
            any = true;
            cs->slack = est > cost ? est - cost : 0;
            s = SQLITE_DONE;
        }
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
            return sql_err(s);
    }
    /* [min_nonce, UINT64_MAX] as stored: the non-negative part, then the part above INT64_MAX. */
    if (min_nonce > (uint64_t)INT64_MAX)
        return cand_scan(l, cs, id, ldg_enc(min_nonce), -1);
    if ((rc = cand_scan(l, cs, id, (int64_t)min_nonce, INT64_MAX)) != OS_OK)
        return rc;
    return cand_scan(l, cs, id, INT64_MIN, -1);
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
    ldg_lock(l);
    /* A deferred transaction: one snapshot for consumed and the vouchers, no write lock. */
    if ((rc = os_db_exec(l->db, "BEGIN", NULL, 0)) == OS_OK) {
        rc = candidate_tx(l, &cs, id, min_nonce);
        os_db_rollback(l->db);
    }
    ldg_unlock(l);
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
    bool ok;
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
    ldg_lock(l);
    if ((st = os_db_stmt(l->db, sql_settle_add)) == NULL) {
        ldg_unlock(l);
        return OS_ERR_IO;
    }
    ok = bind_blob(st, 1, s->channel_id, 32) && bind_u64(st, 2, s->nonce) &&
         bind_u64(st, 3, s->cumulative) && bind_u64(st, 4, s->amount) &&
         bind_u64(st, 6, s->gas_used) && bind_u64(st, 7, s->gas_price_wei) &&
         bind_text(st, 8, s->status, -1) && bind_i64(st, 10, s->at_ms);
    /* unbound parameters are NULL: no transaction sent, no error */
    if (ok && memcmp(s->tx_hash, zero, 32) != 0)
        ok = bind_blob(st, 5, s->tx_hash, 32);
    if (ok && s->error != NULL)
        ok = bind_text(st, 9, s->error, (int)elen);
    rc = step_bound(st, ok);
    ldg_unlock(l);
    return rc;
}
