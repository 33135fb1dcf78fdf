/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buyer.db (bdb.h states the contract). Every write is one BEGIN IMMEDIATE ... COMMIT on a
 * connection opened with synchronous=FULL, under the handle's mutex, so a read-check-write (the
 * nonce and authorized maxima, the running totals) is atomic within the process and against other
 * connections. Unsigned 64-bit values are stored as their two's complement bit pattern in SQLite's
 * signed INTEGER, as seller.db does: SQL never compares or adds them, the C code does with
 * money.h's checked arithmetic (totals saturate: statistics, never a payment decision). The
 * read-only views are in bdb_views.c.
 */
#include "bdb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "openseed/db.h"
#include "openseed/money.h"

#define OUTCOME_MAX 32

/* Migration i brings user_version i to i + 1. Never edit one that has shipped: add another. */
static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE channels ("
    "  id BLOB PRIMARY KEY NOT NULL," /* 32 bytes */
    "  seller BLOB NOT NULL,"         /* 20 */
    "  salt BLOB NOT NULL,"           /* 32 */
    "  signer BLOB NOT NULL,"         /* 20: the channel signer's address */
    "  signer_key BLOB NOT NULL,"     /* 32: secret */
    "  cred_secret BLOB NOT NULL,"    /* 64: secret, x || r */
    "  commitment BLOB NOT NULL,"     /* 32 */
    "  state TEXT NOT NULL CHECK (state IN ('opening', 'open', 'closing', 'closed')),"
    "  deposit INTEGER NOT NULL DEFAULT 0, consumed INTEGER NOT NULL DEFAULT 0,"
    "  authorized INTEGER NOT NULL DEFAULT 0, nonce INTEGER NOT NULL DEFAULT 0,"
    "  close_at INTEGER NOT NULL DEFAULT 0,"
    "  opened_tx BLOB," /* 32, NULL when not known */
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX channels_by_seller ON channels (seller);"
    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY,"
    "  channel_id BLOB NOT NULL REFERENCES channels (id), seller BLOB NOT NULL,"
    "  service TEXT NOT NULL, api TEXT NOT NULL, estimate INTEGER NOT NULL,"
    "  cost INTEGER NOT NULL DEFAULT 0,"
    "  input_tokens INTEGER NOT NULL DEFAULT 0, cached_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  latency_ms INTEGER NOT NULL DEFAULT 0, ttft_ms INTEGER NOT NULL DEFAULT 0,"
    "  outcome TEXT NOT NULL DEFAULT 'in_flight',"
    "  at INTEGER NOT NULL, finished_at INTEGER"
    ");"
    "CREATE TABLE vouchers ("
    "  id INTEGER PRIMARY KEY,"
    "  channel_id BLOB NOT NULL REFERENCES channels (id),"
    "  nonce INTEGER NOT NULL, cumulative INTEGER NOT NULL, metadata_hash BLOB NOT NULL,"
    "  request_id INTEGER NOT NULL REFERENCES requests (id), at INTEGER NOT NULL,"
    "  UNIQUE (channel_id, nonce)"
    ");"
    "CREATE TABLE deposits ("
    "  id INTEGER PRIMARY KEY,"
    "  channel_id BLOB NOT NULL REFERENCES channels (id),"
    "  kind TEXT NOT NULL CHECK (kind IN ('open', 'topup')),"
    "  amount INTEGER NOT NULL, tx_hash BLOB, at INTEGER NOT NULL"
    ");"
    /* consumed learnt from a 402 invoice beyond what closing fields had reported */
    "CREATE TABLE adjustments ("
    "  id INTEGER PRIMARY KEY,"
    "  channel_id BLOB NOT NULL REFERENCES channels (id), seller BLOB NOT NULL,"
    "  amount INTEGER NOT NULL, consumed INTEGER NOT NULL, at INTEGER NOT NULL"
    ");"
    "CREATE TABLE spend_days (day INTEGER PRIMARY KEY, spent INTEGER NOT NULL);"
    "CREATE TABLE spend_sellers ("
    "  seller BLOB PRIMARY KEY NOT NULL, spent INTEGER NOT NULL, requests INTEGER NOT NULL"
    ");",
    /* 2: the spend series and the per-day view read requests by when they ended */
    "CREATE INDEX requests_by_end ON requests (COALESCE(finished_at, at));",
};

const char *const *by_bdb_migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}

static const char *const state_names[] = {"opening", "open", "closing", "closed"};

const char *by_chan_state_name(by_chan_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

static int state_parse(by_chan_state *out, const unsigned char *t)
{
    for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
        if (t != NULL && strcmp((const char *)t, state_names[i]) == 0) {
            *out = (by_chan_state)i;
            return 0;
        }
    return -1;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* Steps a statement that returns no rows and resets it. A failed bind (bound false) is our bug
 * and still leaves the statement reset. */
static os_err step_bound(sqlite3_stmt *st, bool bound)
{
    int rc;
    if (st == NULL)
        return OS_ERR_INTERNAL;
    if (!bound) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? OS_OK : bdb_sql_err(rc);
}

static bool b_u64(sqlite3_stmt *st, int i, uint64_t v)
{
    return sqlite3_bind_int64(st, i, bdb_enc(v)) == SQLITE_OK;
}

static bool b_i64(sqlite3_stmt *st, int i, int64_t v)
{
    return sqlite3_bind_int64(st, i, v) == SQLITE_OK;
}

/* SQLITE_STATIC: every caller steps and resets the statement before p goes away. */
static bool b_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC) == SQLITE_OK;
}

static bool b_text(sqlite3_stmt *st, int i, const char *t)
{
    return sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC) == SQLITE_OK;
}

static bool b_null(sqlite3_stmt *st, int i)
{
    return sqlite3_bind_null(st, i) == SQLITE_OK;
}

static uint64_t u64_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Runs fn inside BEGIN IMMEDIATE ... COMMIT under the mutex. */
typedef os_err (*txn_fn)(os_db *db, const void *arg, void *out);

static os_err in_txn(by_bdb *b, txn_fn fn, const void *arg, void *out)
{
    os_err e;
    if (b == NULL)
        return OS_ERR_INVALID;
    pthread_mutex_lock(&b->mu);
    e = os_db_begin(b->db);
    if (e == OS_OK) {
        e = fn(b->db, arg, out);
        if (e == OS_OK)
            e = os_db_commit(b->db);
        if (e != OS_OK)
            os_db_rollback(b->db);
    }
    pthread_mutex_unlock(&b->mu);
    return e;
}

/* ---- open --------------------------------------------------------------------------------- */

/* Refuses an existing path that is not a private regular file: buyer.db holds keys. */
static os_err check_mode(const char *path, char *err, size_t errcap)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT)
            return OS_OK; /* os_db_open creates it 0600 */
        return os_errf(err, errcap, OS_ERR_IO, "cannot stat the buyer database: %s",
                       strerror(errno));
    }
    if (!S_ISREG(sb.st_mode))
        return os_errf(err, errcap, OS_ERR_INVALID, "the buyer database is not a regular file");
    if ((sb.st_mode & 077) != 0)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%s is accessible by group or others (mode %04o) and holds the buyer's "
                       "keys; refusing to use it; run chmod 600 on it",
                       path, (unsigned)(sb.st_mode & 07777));
    return OS_OK;
}

os_err by_bdb_open(by_bdb **out, const char *path, char *err, size_t errcap)
{
    os_db_options opt;
    by_bdb *b;
    os_err e;

    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output handle");
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return os_errf(err, errcap, OS_ERR_INVALID, "no database path");
    if ((e = check_mode(path, err, errcap)) != OS_OK)
        return e;
    memset(&opt, 0, sizeof(opt));
    opt.migrations = migrations;
    opt.n_migrations = sizeof(migrations) / sizeof(migrations[0]);
    opt.synchronous_full = 1;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return os_errf(err, errcap, OS_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return os_errf(err, errcap, OS_ERR_NOMEM, "cannot create a mutex");
    }
    e = os_db_open(&b->db, path, &opt, err, errcap);
    /* check again: a file created between the check and the open by someone else */
    if (e == OS_OK)
        e = check_mode(path, err, errcap);
    /* dropped rows held keys: overwrite their pages rather than leave them in free space */
    if (e == OS_OK)
        e = os_db_exec(b->db, "PRAGMA secure_delete = ON", err, errcap);
    if (e != OS_OK) {
        os_db_close(b->db);
        pthread_mutex_destroy(&b->mu);
        free(b);
        return e;
    }
    *out = b;
    return OS_OK;
}

void by_bdb_close(by_bdb *b)
{
    if (b == NULL)
        return;
    os_db_close(b->db);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* ---- channels ----------------------------------------------------------------------------- */

static os_err channel_insert(os_db *db, const void *arg, void *out)
{
    const by_bdb_channel *c = arg;
    int64_t now = now_s();
    sqlite3_stmt *st = os_db_stmt(
        db, "INSERT INTO channels (id, seller, salt, signer, signer_key, cred_secret, commitment,"
            " state, deposit, consumed, authorized, nonce, close_at, opened_tx, created_at,"
            " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
            " ?15, ?15)");
    (void)out;
    if (st == NULL)
        return OS_ERR_INTERNAL;
    return step_bound(st,
                      b_blob(st, 1, c->id, 32) && b_blob(st, 2, c->seller, 20) &&
                          b_blob(st, 3, c->salt, 32) && b_blob(st, 4, c->signer, 20) &&
                          b_blob(st, 5, c->signer_key, 32) && b_blob(st, 6, c->cred_secret, 64) &&
                          b_blob(st, 7, c->commitment, 32) &&
                          b_text(st, 8, by_chan_state_name(c->state)) && b_u64(st, 9, c->deposit) &&
                          b_u64(st, 10, c->consumed) && b_u64(st, 11, c->authorized) &&
                          b_u64(st, 12, c->nonce) && b_u64(st, 13, c->close_at) &&
                          (c->has_opened_tx ? b_blob(st, 14, c->opened_tx, 32) : b_null(st, 14)) &&
                          b_i64(st, 15, c->created_at != 0 ? c->created_at : now));
}

os_err by_bdb_channel_insert(by_bdb *b, const by_bdb_channel *c)
{
    if (c == NULL)
        return OS_ERR_INVALID;
    return in_txn(b, channel_insert, c, NULL);
}

static int channel_row(by_bdb_channel *c, sqlite3_stmt *st)
{
    memset(c, 0, sizeof(*c));
    if (bdb_col_blob(st, 0, c->id, 32) != 0 || bdb_col_blob(st, 1, c->seller, 20) != 0 ||
        bdb_col_blob(st, 2, c->salt, 32) != 0 || bdb_col_blob(st, 3, c->signer, 20) != 0 ||
        bdb_col_blob(st, 4, c->signer_key, 32) != 0 ||
        bdb_col_blob(st, 5, c->cred_secret, 64) != 0 ||
        bdb_col_blob(st, 6, c->commitment, 32) != 0 ||
        state_parse(&c->state, sqlite3_column_text(st, 7)) != 0)
        return -1;
    c->deposit = bdb_col_u64(st, 8);
    c->consumed = bdb_col_u64(st, 9);
    c->authorized = bdb_col_u64(st, 10);
    c->nonce = bdb_col_u64(st, 11);
    c->close_at = bdb_col_u64(st, 12);
    if (sqlite3_column_type(st, 13) != SQLITE_NULL) {
        if (bdb_col_blob(st, 13, c->opened_tx, 32) != 0)
            return -1;
        c->has_opened_tx = true;
    }
    c->created_at = sqlite3_column_int64(st, 14);
    return 0;
}

os_err by_bdb_channel_list(by_bdb *b, by_bdb_channel **rows, size_t *n)
{
    sqlite3_stmt *st;
    by_bdb_channel *a = NULL;
    size_t cnt = 0, cap = 0;
    os_err e = OS_OK;
    int rc;

    if (b == NULL || rows == NULL || n == NULL)
        return OS_ERR_INVALID;
    *rows = NULL;
    *n = 0;
    pthread_mutex_lock(&b->mu);
    st = os_db_stmt(b->db, "SELECT id, seller, salt, signer, signer_key, cred_secret, commitment,"
                           " state, deposit, consumed, authorized, nonce, close_at, opened_tx,"
                           " created_at FROM channels ORDER BY created_at, rowid");
    if (st == NULL)
        e = OS_ERR_INTERNAL;
    while (e == OS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            /* secrets: grow by copying into fresh guarded memory, wiping the old */
            size_t ncap = cap != 0 ? cap * 2 : 16;
            by_bdb_channel *na = sodium_allocarray(ncap, sizeof(*na));
            if (na == NULL) {
                e = OS_ERR_NOMEM;
                break;
            }
            if (a != NULL) {
                memcpy(na, a, cnt * sizeof(*a));
                sodium_free(a);
            }
            a = na;
            cap = ncap;
        }
        if (channel_row(&a[cnt], st) != 0) {
            e = OS_ERR_INVALID; /* a row not as written: refuse rather than guess */
            break;
        }
        cnt++;
    }
    if (e == OS_OK && rc != SQLITE_DONE)
        e = bdb_sql_err(rc);
    if (st != NULL)
        sqlite3_reset(st);
    pthread_mutex_unlock(&b->mu);
    if (e != OS_OK) {
        if (a != NULL)
            sodium_free(a);
        return e;
    }
    *rows = a;
    *n = cnt;
    return OS_OK;
}

void by_bdb_channels_free(by_bdb_channel *rows)
{
    if (rows != NULL)
        sodium_free(rows); /* wipes */
}

static os_err channel_drop(os_db *db, const void *arg, void *out)
{
    sqlite3_stmt *st = os_db_stmt(db, "DELETE FROM channels WHERE id = ?1 AND state = 'opening'");
    (void)out;
    if (st == NULL)
        return OS_ERR_INTERNAL;
    return step_bound(st, b_blob(st, 1, arg, 32));
}

os_err by_bdb_channel_drop(by_bdb *b, const uint8_t id[32])
{
    if (id == NULL)
        return OS_ERR_INVALID;
    return in_txn(b, channel_drop, id, NULL);
}

/* Appends a deposits row. */
static os_err deposit_add(os_db *db, const uint8_t id[32], const char *kind, uint64_t amount,
                          const uint8_t *tx)
{
    sqlite3_stmt *st = os_db_stmt(db, "INSERT INTO deposits (channel_id, kind, amount, tx_hash, at)"
                                      " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    return step_bound(st, b_blob(st, 1, id, 32) && b_text(st, 2, kind) && b_u64(st, 3, amount) &&
                              (tx != NULL ? b_blob(st, 4, tx, 32) : b_null(st, 4)) &&
                              b_i64(st, 5, now_s()));
}

/* Fails with OS_ERR_NOTFOUND when the last UPDATE touched no row. */
static os_err changed_one(os_db *db, os_err e)
{
    if (e == OS_OK && sqlite3_changes(os_db_handle(db)) != 1)
        return OS_ERR_NOTFOUND;
    return e;
}

typedef struct opened_arg {
    const uint8_t *id;
    uint64_t deposit;
    uint64_t amount;
    const uint8_t *tx;
} opened_arg;

static os_err channel_opened(os_db *db, const void *arg, void *out)
{
    const opened_arg *a = arg;
    sqlite3_stmt *st = os_db_stmt(db, "UPDATE channels SET state = 'open', deposit = ?2,"
                                      " opened_tx = ?3, updated_at = ?4"
                                      " WHERE id = ?1 AND state = 'opening'");
    os_err e;
    (void)out;
    if (st == NULL)
        return OS_ERR_INTERNAL;
    e = step_bound(st, b_blob(st, 1, a->id, 32) && b_u64(st, 2, a->deposit) &&
                           (a->tx != NULL ? b_blob(st, 3, a->tx, 32) : b_null(st, 3)) &&
                           b_i64(st, 4, now_s()));
    e = changed_one(db, e);
    if (e == OS_OK)
        e = deposit_add(db, a->id, "open", a->deposit, a->tx);
    return e;
}

os_err by_bdb_channel_opened(by_bdb *b, const uint8_t id[32], uint64_t deposit, const uint8_t *tx)
{
    opened_arg a = {.id = id, .deposit = deposit, .tx = tx};
    if (id == NULL)
        return OS_ERR_INVALID;
    return in_txn(b, channel_opened, &a, NULL);
}

/* The stored nonce of a channel (for raising it). */
static os_err channel_nonce_auth(os_db *db, const uint8_t id[32], uint64_t *nonce,
                                 uint64_t *authorized, uint64_t *consumed)
{
    sqlite3_stmt *st =
        os_db_stmt(db, "SELECT nonce, authorized, consumed FROM channels WHERE id = ?1");
    int rc;
    if (st == NULL)
        return OS_ERR_INTERNAL;
    if (!b_blob(st, 1, id, 32)) {
        sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *nonce = bdb_col_u64(st, 0);
        *authorized = bdb_col_u64(st, 1);
        *consumed = bdb_col_u64(st, 2);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? OS_OK : rc == SQLITE_DONE ? OS_ERR_NOTFOUND : bdb_sql_err(rc);
}

typedef struct set_arg {
    const uint8_t *id;
    by_chan_state st;
    uint64_t deposit, close_at, nonce_floor;
} set_arg;

static os_err channel_set(os_db *db, const void *arg, void *out)
{
    const set_arg *a = arg;
    uint64_t nonce, auth, cons;
    sqlite3_stmt *st;
    os_err e;
    (void)out;

    if ((e = channel_nonce_auth(db, a->id, &nonce, &auth, &cons)) != OS_OK)
        return e;
    st = os_db_stmt(db, "UPDATE channels SET state = ?2, deposit = ?3, close_at = ?4, nonce = ?5,"
                        " updated_at = ?6 WHERE id = ?1");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    return step_bound(st, b_blob(st, 1, a->id, 32) && b_text(st, 2, by_chan_state_name(a->st)) &&
                              b_u64(st, 3, a->deposit) && b_u64(st, 4, a->close_at) &&
                              b_u64(st, 5, u64_max(nonce, a->nonce_floor)) &&
                              b_i64(st, 6, now_s()));
}

os_err by_bdb_channel_set(by_bdb *b, const uint8_t id[32], by_chan_state st, uint64_t deposit,
                          uint64_t close_at, uint64_t nonce_floor)
{
    set_arg a = {
        .id = id, .st = st, .deposit = deposit, .close_at = close_at, .nonce_floor = nonce_floor};
    if (id == NULL || (unsigned)st > BY_CHAN_CLOSED)
        return OS_ERR_INVALID;
    return in_txn(b, channel_set, &a, NULL);
}

static os_err topup(os_db *db, const void *arg, void *out)
{
    const opened_arg *a = arg;
    sqlite3_stmt *st =
        os_db_stmt(db, "UPDATE channels SET deposit = ?2, updated_at = ?3 WHERE id = ?1");
    os_err e;
    (void)out;
    if (st == NULL)
        return OS_ERR_INTERNAL;
    e = step_bound(st,
                   b_blob(st, 1, a->id, 32) && b_u64(st, 2, a->deposit) && b_i64(st, 3, now_s()));
    e = changed_one(db, e);
    if (e == OS_OK)
        e = deposit_add(db, a->id, "topup", a->amount, a->tx);
    return e;
}

os_err by_bdb_topup(by_bdb *b, const uint8_t id[32], uint64_t amount, uint64_t deposit,
                    const uint8_t *tx)
{
    opened_arg a = {.id = id, .deposit = deposit, .amount = amount, .tx = tx};
    if (id == NULL)
        return OS_ERR_INVALID;
    return in_txn(b, topup, &a, NULL);
}

/* ---- spending ----------------------------------------------------------------------------- */

/* Adds amount to the day's and the seller's totals (requests: finished requests to count). */
static os_err spend_add(os_db *db, uint64_t day, const uint8_t seller[20], uint64_t amount,
                        uint64_t requests)
{
    sqlite3_stmt *st;
    uint64_t spent = 0, reqs = 0;
    int rc;
    os_err e;

    st = os_db_stmt(db, "SELECT spent FROM spend_days WHERE day = ?1");
    if (st == NULL || !b_u64(st, 1, day)) {
        if (st != NULL)
            sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        spent = bdb_col_u64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bdb_sql_err(rc);
    st = os_db_stmt(db, "INSERT OR REPLACE INTO spend_days (day, spent) VALUES (?1, ?2)");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    if ((e = step_bound(st, b_u64(st, 1, day) && b_u64(st, 2, bdb_sat_add(spent, amount)))) !=
        OS_OK)
        return e;

    spent = 0;
    st = os_db_stmt(db, "SELECT spent, requests FROM spend_sellers WHERE seller = ?1");
    if (st == NULL || !b_blob(st, 1, seller, 20)) {
        if (st != NULL)
            sqlite3_reset(st);
        return OS_ERR_INTERNAL;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        spent = bdb_col_u64(st, 0);
        reqs = bdb_col_u64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bdb_sql_err(rc);
    st = os_db_stmt(db, "INSERT OR REPLACE INTO spend_sellers (seller, spent, requests)"
                        " VALUES (?1, ?2, ?3)");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    return step_bound(st, b_blob(st, 1, seller, 20) && b_u64(st, 2, bdb_sat_add(spent, amount)) &&
                              b_u64(st, 3, bdb_sat_add(reqs, requests)));
}

/* Raises the channel's consumed to at least `consumed`. */
static os_err consumed_raise(os_db *db, const uint8_t id[32], uint64_t consumed)
{
    uint64_t nonce, auth, cur;
    sqlite3_stmt *st;
    os_err e;

    if ((e = channel_nonce_auth(db, id, &nonce, &auth, &cur)) != OS_OK)
        return e;
    if (consumed <= cur)
        return OS_OK;
    st = os_db_stmt(db, "UPDATE channels SET consumed = ?2, updated_at = ?3 WHERE id = ?1");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    return step_bound(st, b_blob(st, 1, id, 32) && b_u64(st, 2, consumed) && b_i64(st, 3, now_s()));
}

static os_err voucher_add(os_db *db, const void *arg, void *out)
{
    const by_bdb_voucher *v = arg;
    uint64_t *rid = out, nonce, auth, cons;
    int64_t now = now_s();
    sqlite3_stmt *st;
    os_err e;

    if (v->request_id == 0) {
        st = os_db_stmt(db, "INSERT INTO requests (channel_id, seller, service, api, estimate, at)"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
        if (st == NULL)
            return OS_ERR_INTERNAL;
        e = step_bound(st, b_blob(st, 1, v->channel_id, 32) && b_blob(st, 2, v->seller, 20) &&
                               b_text(st, 3, v->service) && b_text(st, 4, v->api) &&
                               b_u64(st, 5, v->estimate) && b_i64(st, 6, now));
        if (e != OS_OK)
            return e;
        *rid = (uint64_t)sqlite3_last_insert_rowid(os_db_handle(db));
    } else {
        *rid = v->request_id;
    }
    st = os_db_stmt(db, "INSERT INTO vouchers (channel_id, nonce, cumulative, metadata_hash,"
                        " request_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    e = step_bound(st, b_blob(st, 1, v->channel_id, 32) && b_u64(st, 2, v->nonce) &&
                           b_u64(st, 3, v->cumulative) && b_blob(st, 4, v->metadata_hash, 32) &&
                           b_u64(st, 5, *rid) && b_i64(st, 6, now));
    if (e != OS_OK)
        return e;
    if ((e = channel_nonce_auth(db, v->channel_id, &nonce, &auth, &cons)) != OS_OK)
        return e;
    st = os_db_stmt(db, "UPDATE channels SET nonce = ?2, authorized = ?3, updated_at = ?4"
                        " WHERE id = ?1");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    return step_bound(st, b_blob(st, 1, v->channel_id, 32) &&
                              b_u64(st, 2, u64_max(nonce, v->nonce)) &&
                              b_u64(st, 3, u64_max(auth, v->cumulative)) && b_i64(st, 4, now));
}

os_err by_bdb_voucher_add(by_bdb *b, uint64_t *request_id, const by_bdb_voucher *v)
{
    uint64_t rid = 0;
    os_err e;
    if (request_id == NULL || v == NULL ||
        (v->request_id == 0 && (v->service == NULL || v->api == NULL)))
        return OS_ERR_INVALID;
    e = in_txn(b, voucher_add, v, &rid);
    if (e == OS_OK)
        *request_id = rid;
    return e;
}

typedef struct adjust_arg {
    const uint8_t *id, *seller;
    uint64_t amount, consumed, day;
} adjust_arg;

static os_err adjust(os_db *db, const void *arg, void *out)
{
    const adjust_arg *a = arg;
    sqlite3_stmt *st;
    os_err e;
    (void)out;

    if ((e = consumed_raise(db, a->id, a->consumed)) != OS_OK || a->amount == 0)
        return e;
    st = os_db_stmt(db, "INSERT INTO adjustments (channel_id, seller, amount, consumed, at)"
                        " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    e = step_bound(st, b_blob(st, 1, a->id, 32) && b_blob(st, 2, a->seller, 20) &&
                           b_u64(st, 3, a->amount) && b_u64(st, 4, a->consumed) &&
                           b_i64(st, 5, now_s()));
    if (e == OS_OK)
        e = spend_add(db, a->day, a->seller, a->amount, 0);
    return e;
}

os_err by_bdb_adjust(by_bdb *b, const uint8_t channel_id[32], const uint8_t seller[20],
                     uint64_t amount, uint64_t consumed, uint64_t day)
{
    adjust_arg a = {
        .id = channel_id, .seller = seller, .amount = amount, .consumed = consumed, .day = day};
    if (channel_id == NULL || seller == NULL)
        return OS_ERR_INVALID;
    return in_txn(b, adjust, &a, NULL);
}

static os_err request_end(os_db *db, const void *arg, void *out)
{
    const by_bdb_request_end *r = arg;
    char outcome[OUTCOME_MAX + 1];
    sqlite3_stmt *st;
    os_err e;
    (void)out;

    snprintf(outcome, sizeof(outcome), "%s", r->outcome != NULL ? r->outcome : "failed");
    st = os_db_stmt(db, "UPDATE requests SET cost = ?2, input_tokens = ?3, cached_tokens = ?4,"
                        " output_tokens = ?5, latency_ms = ?6, ttft_ms = ?7, outcome = ?8,"
                        " finished_at = ?9 WHERE id = ?1 AND finished_at IS NULL");
    if (st == NULL)
        return OS_ERR_INTERNAL;
    e = step_bound(
        st, b_u64(st, 1, r->request_id) && b_u64(st, 2, r->cost) &&
                b_u64(st, 3, r->usage.input_tokens) && b_u64(st, 4, r->usage.cached_tokens) &&
                b_u64(st, 5, r->usage.output_tokens) && b_u64(st, 6, r->latency_ms) &&
                b_u64(st, 7, r->ttft_ms) && b_text(st, 8, outcome) && b_i64(st, 9, now_s()));
    if ((e = changed_one(db, e)) != OS_OK)
        return e; /* unknown or already finished: book nothing twice */
    if (r->has_consumed) {
        adjust_arg a = {.id = r->channel_id,
                        .seller = r->seller,
                        .amount = r->unseen,
                        .consumed = r->consumed,
                        .day = r->day};
        if ((e = adjust(db, &a, NULL)) != OS_OK)
            return e;
    }
    return spend_add(db, r->day, r->seller, r->cost, 1);
}

os_err by_bdb_request_finish(by_bdb *b, const by_bdb_request_end *e)
{
    if (e == NULL || e->request_id == 0)
        return OS_ERR_INVALID;
    return in_txn(b, request_end, e, NULL);
}

/* One seller at a time (the spend counts requests per seller) until none is left unfinished. */
static os_err requests_interrupt(os_db *db, const void *arg, void *out)
{
    const uint64_t *day = arg;
    uint64_t *n = out;

    for (;;) {
        uint8_t seller[20];
        uint64_t count;
        sqlite3_stmt *st = os_db_stmt(db, "SELECT seller, COUNT(*) FROM requests"
                                          " WHERE finished_at IS NULL GROUP BY seller LIMIT 1");
        int rc;
        os_err e;
        if (st == NULL)
            return OS_ERR_INTERNAL;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            return rc == SQLITE_DONE ? OS_OK : bdb_sql_err(rc);
        }
        if (sqlite3_column_bytes(st, 0) != 20) {
            sqlite3_reset(st);
            return OS_ERR_INVALID; /* the schema's seller is 20 bytes */
        }
        memcpy(seller, sqlite3_column_blob(st, 0), 20);
        count = bdb_col_u64(st, 1);
        sqlite3_reset(st);
        if ((e = spend_add(db, *day, seller, 0, count)) != OS_OK)
            return e;
        st = os_db_stmt(db, "UPDATE requests SET outcome = 'interrupted', finished_at = ?2"
                            " WHERE finished_at IS NULL AND seller = ?1");
        if (st == NULL)
            return OS_ERR_INTERNAL;
        if ((e = step_bound(st, b_blob(st, 1, seller, 20) && b_i64(st, 2, now_s()))) != OS_OK)
            return e;
        *n += count;
    }
}

os_err by_bdb_requests_interrupt(by_bdb *b, uint64_t *n, uint64_t day)
{
    if (n == NULL)
        return OS_ERR_INVALID;
    *n = 0;
    return in_txn(b, requests_interrupt, &day, n);
}

os_err by_bdb_day_spent(by_bdb *b, uint64_t *spent, uint64_t day)
{
    sqlite3_stmt *st;
    os_err e = OS_OK;
    int rc;

    if (b == NULL || spent == NULL)
        return OS_ERR_INVALID;
    *spent = 0;
    pthread_mutex_lock(&b->mu);
    st = os_db_stmt(b->db, "SELECT spent FROM spend_days WHERE day = ?1");
    if (st == NULL || !b_u64(st, 1, day)) {
        e = OS_ERR_INTERNAL;
    } else {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *spent = bdb_col_u64(st, 0);
        else if (rc != SQLITE_DONE)
            e = bdb_sql_err(rc);
    }
    if (st != NULL)
        sqlite3_reset(st);
    pthread_mutex_unlock(&b->mu);
    return e;
}
