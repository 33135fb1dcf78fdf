/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQLite 3.40 as every daemon uses it. The file is created by us with mode 0600 before SQLite sees
 * it (SQLite gives its -wal and -shm files the mode of the database, so they follow). A connection
 * is opened in serialized mode (SQLITE_OPEN_FULLMUTEX): the cost is one uncontended mutex per call,
 * and a daemon that hands the handle to a second thread by mistake gets a slow program rather than
 * a corrupt one; the caller's own lock is still what makes a transaction and the statement cache
 * atomic. Pragmas: WAL (readers never block the writer), a busy timeout, foreign keys, synchronous
 * FULL or NORMAL, trusted_schema off and the defensive flag (the schema cannot be used to run
 * side-effecting SQL or to corrupt the file from SQL).
 *
 * Migrations are forward only. All the pending ones run in one BEGIN IMMEDIATE transaction
 * together with the PRAGMA user_version that records them, and the version is read again inside
 * that transaction, so two processes opening one file at once cannot apply a migration twice, and
 * a failure in any step leaves neither tables nor version behind: the file is as it was. Before it
 * migrates a file that already had a schema, the opener copies it with SQLite's backup API to
 * <path>.pre-v<old version>.bak, so an operator can go back to the previous release (which refuses
 * the newer schema) with the data it had.
 *
 * Prepared statements are cached by the address of their SQL text in an open-addressing table,
 * each hit checked against the statement's own text so that a reused buffer cannot get a stale
 * statement.
 */
#include "openseed/db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DB_BUSY_DEFAULT_MS 5000
#define STMT_CACHE_INITIAL 32 /* slots; a power of two */

typedef struct stmt_slot {
    const char *sql; /* the caller's pointer: the key */
    sqlite3_stmt *st;
} stmt_slot;

struct os_db {
    sqlite3 *h;
    int version;
    stmt_slot *slots; /* open addressing, linear probing, never more than half full */
    size_t cap, n;
};

os_err os_db_status(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return OS_OK;
    case SQLITE_NOMEM:
        return OS_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return OS_ERR_TIMEOUT;
    case SQLITE_CONSTRAINT:
        return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                   ? OS_ERR_EXISTS
                   : OS_ERR_INVALID;
    case SQLITE_TOOBIG:
        return OS_ERR_TOOBIG;
    case SQLITE_ERROR:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
        return OS_ERR_INVALID;
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_AUTH:
        return OS_ERR_IO;
    default:
        return OS_ERR_INTERNAL;
    }
}

const char *os_db_errmsg(os_db *db)
{
    if (db == NULL || db->h == NULL)
        return "no database";
    return sqlite3_errmsg(db->h);
}

sqlite3 *os_db_handle(os_db *db)
{
    return db != NULL ? db->h : NULL;
}

int os_db_version(os_db *db)
{
    return db != NULL ? db->version : -1;
}

os_err os_db_exec(os_db *db, const char *sql, char *err, size_t errcap)
{
    char *msg = NULL;
    int rc;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (db == NULL || db->h == NULL || sql == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no database or no SQL");
    rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        os_err e = os_db_status(rc);
        os_errf(err, errcap, e == OS_OK ? OS_ERR_INTERNAL : e, "%s",
                msg != NULL ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return e == OS_OK ? OS_ERR_INTERNAL : e;
    }
    return OS_OK;
}

os_err os_db_begin(os_db *db)
{
    return os_db_exec(db, "BEGIN IMMEDIATE", NULL, 0);
}

os_err os_db_commit(os_db *db)
{
    return os_db_exec(db, "COMMIT", NULL, 0);
}

void os_db_rollback(os_db *db)
{
    /* Without an open transaction ROLLBACK is an error; with one it cannot fail for a reason we
     * could act on (SQLite rolls back on its own after an I/O error), so the result is ignored. */
    if (db != NULL && db->h != NULL && !sqlite3_get_autocommit(db->h))
        (void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

/* Runs a statement that returns one integer row (PRAGMA user_version). */
static int query_int(sqlite3 *h, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_ERROR;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Sets the journal mode to WAL and checks that SQLite agreed (it answers with the mode in force).
 */
static os_err set_wal(sqlite3 *h, int in_memory, char *err, size_t errcap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    os_err e = OS_OK;

    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (mode == NULL ||
            (strcmp(mode, "wal") != 0 && !(in_memory && strcmp(mode, "memory") == 0)))
            e = os_errf(err, errcap, OS_ERR_UNSUPPORTED, "journal_mode=WAL refused (mode is %s)",
                        mode != NULL ? mode : "unknown");
    } else {
        e = os_errf(err, errcap, os_db_status(rc) == OS_OK ? OS_ERR_INTERNAL : os_db_status(rc),
                    "journal_mode=WAL: %s", sqlite3_errmsg(h));
    }
    sqlite3_finalize(st);
    return e;
}

/* Creates the file with mode 0600 if it does not exist, so SQLite never creates it wider. */
static os_err create_file(const char *path, char *err, size_t errcap)
{
    struct stat sb;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);

    if (fd < 0)
        return os_errf(err, errcap, errno == ENOENT ? OS_ERR_NOTFOUND : OS_ERR_IO,
                       "cannot create the database file: %s", strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return os_errf(err, errcap, OS_ERR_IO, "the database path is not a regular file");
    }
    close(fd);
    return OS_OK;
}

/* Reads PRAGMA user_version into *v; an error names what could not be read. */
static os_err read_version(os_db *db, int *v, char *err, size_t errcap)
{
    if (query_int(db->h, "PRAGMA user_version", v) != SQLITE_OK)
        return os_errf(err, errcap, OS_ERR_IO, "cannot read the schema version: %s",
                       sqlite3_errmsg(db->h));
    return OS_OK;
}

static os_err newer_error(int v, int n, char *err, size_t errcap)
{
    return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                   "database schema version %d is newer than this program's %d (a later release "
                   "wrote it): refusing to use it and leaving it as it is; run that release, or "
                   "restore the copy it made before upgrading (<database>.pre-v%d.bak)",
                   v, n, n);
}

/* fsyncs the directory holding path, so a rename into it survives a crash. */
static int sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, rc;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        return -1;
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Removes the temporary copy's journal files (SQLite names them <file>-journal, -wal, -shm). */
static void unlink_sidecars(const char *tmp)
{
    static const char *const suffix[] = {"-journal", "-wal", "-shm"};
    char p[PATH_MAX];

    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++)
        if ((size_t)snprintf(p, sizeof(p), "%s%s", tmp, suffix[i]) < sizeof(p))
            (void)unlink(p);
}

/*
 * Copies the database at path, as its last commit left it, to <path>.pre-v<v>.bak (0600): into a
 * temporary file first, synced and renamed over the final name, so that name only ever holds a
 * whole copy. The caller holds the write lock (BEGIN IMMEDIATE) and has written nothing, so the
 * copy, read through a connection of its own (the backup API refuses a source connection inside a
 * write transaction), is exactly the database the migration starts from; in WAL mode that reader
 * does not wait for the lock.
 */
static os_err backup_copy(const char *path, int v, int busy_ms, char *err, size_t errcap)
{
    char bak[PATH_MAX], tmp[PATH_MAX];
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *b;
    os_err e = OS_OK;
    int fd, rc;

    /* room for the longest sidecar suffix too */
    if ((size_t)snprintf(bak, sizeof(bak), "%s.pre-v%d.bak", path, v) >= sizeof(bak) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", bak) >= sizeof(tmp) - 8)
        return os_errf(err, errcap, OS_ERR_TOOBIG, "the backup's path is too long");
    /* A crash in an earlier attempt may have left a partial copy and its journal: discard both
     * (the journal would otherwise be rolled back into the new file). */
    unlink_sidecars(tmp);
    if (unlink(tmp) != 0 && errno != ENOENT)
        return os_errf(err, errcap, OS_ERR_IO, "cannot remove %s: %s", tmp, strerror(errno));
    /* Created here, 0600 and not through a symlink, before SQLite opens it (as create_file). */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return os_errf(err, errcap, OS_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    close(fd);

    rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        e = os_errf(err, errcap, OS_ERR_IO, "cannot open the backup's files: %s",
                    dst != NULL   ? sqlite3_errmsg(dst)
                    : src != NULL ? sqlite3_errmsg(src)
                                  : sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_busy_timeout(src, busy_ms);
    if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
        e = os_errf(err, errcap, OS_ERR_IO, "cannot start the backup: %s", sqlite3_errmsg(dst));
        goto out;
    }
    rc = sqlite3_backup_step(b, -1);
    if (rc == SQLITE_DONE)
        rc = sqlite3_backup_finish(b);
    else
        (void)sqlite3_backup_finish(b);
    /* The copy took the source's WAL flag; a rollback journal makes it one self-contained file
     * that opens without -wal and -shm companions. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        e = os_errf(err, errcap, OS_ERR_IO, "the backup failed: %s", sqlite3_errstr(rc));
        goto out;
    }
    rc = sqlite3_close(dst);
    dst = NULL;
    if (rc != SQLITE_OK) {
        e = os_errf(err, errcap, OS_ERR_IO, "cannot close the backup: %s", sqlite3_errstr(rc));
        goto out;
    }
    /* SQLite synced its commit; this sync and the directory's make the rename durable too. */
    if ((fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 || fsync(fd) != 0 ||
        rename(tmp, bak) != 0 || sync_parent(bak) != 0)
        e = os_errf(err, errcap, OS_ERR_IO, "cannot store %s: %s", bak, strerror(errno));
    if (fd >= 0)
        close(fd);
out:
    sqlite3_close(dst);
    sqlite3_close(src);
    if (e != OS_OK) {
        unlink_sidecars(tmp);
        (void)unlink(tmp);
    }
    return e;
}

/* Turns a COMMIT that a migration's own SQL issues into a rollback, and notes it. */
static int refuse_commit(void *arg)
{
    *(int *)arg = 1;
    return 1;
}

/*
 * Runs migrations v..n-1 inside the caller's transaction. A step that ends the transaction (its
 * COMMIT is refused by the hook, a ROLLBACK is seen afterwards) fails: it would have committed or
 * lost part of the upgrade.
 */
static os_err apply_steps(os_db *db, const os_db_options *opt, int v, int n, char *err,
                          size_t errcap)
{
    char msg[OS_DB_ERR_LEN];
    int committed = 0;
    os_err e = OS_OK;

    sqlite3_commit_hook(db->h, refuse_commit, &committed);
    for (int i = v; i < n && e == OS_OK; i++) {
        e = os_db_exec(db, opt->migrations[i], msg, sizeof(msg));
        /* (after a failed statement autocommit may be SQLite's own rollback: keep its error) */
        if (committed || (e == OS_OK && sqlite3_get_autocommit(db->h))) {
            e = OS_ERR_INVALID;
            snprintf(msg, sizeof(msg), "it ends the transaction the migration runs in");
        }
        if (e != OS_OK)
            os_errf(err, errcap, e,
                    "migration %d to version %d failed: %s; the database is unchanged at version "
                    "%d",
                    i, i + 1, msg, v);
    }
    sqlite3_commit_hook(db->h, NULL, NULL);
    return e;
}

/*
 * Brings the schema from its version to n: every pending migration and the new user_version in one
 * BEGIN IMMEDIATE transaction, so a failure anywhere leaves the file as it was (the version is
 * read again under the lock: another process may have migrated meanwhile). A file at a version
 * above 0 is first copied by backup_copy unless opt->no_backup.
 */
static os_err migrate(os_db *db, const char *path, int in_memory, const os_db_options *opt,
                      char *err, size_t errcap)
{
    const int n = (int)opt->n_migrations;
    char sql[64], msg[OS_DB_ERR_LEN];
    int v = 0; /* set by read_version; initialised for -O3's flow analysis */
    os_err e;

    if ((e = read_version(db, &v, err, errcap)) != OS_OK)
        return e;
    if (v > n)
        return newer_error(v, n, err, errcap);
    if (v < n && opt->read_only)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "database schema version %d needs migration to %d but is opened read-only",
                       v, n);
    if (v < n) {
        if ((e = os_db_begin(db)) != OS_OK)
            return os_errf(err, errcap, e, "cannot begin the migration: %s", sqlite3_errmsg(db->h));
        if ((e = read_version(db, &v, err, errcap)) != OS_OK) {
            os_db_rollback(db);
            return e;
        }
        if (v >= n) {
            os_db_rollback(db);
            if (v > n)
                return newer_error(v, n, err, errcap);
            db->version = v;
            return OS_OK;
        }
        if (v > 0 && !in_memory && !opt->no_backup &&
            (e = backup_copy(path, v,
                             opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : DB_BUSY_DEFAULT_MS,
                             msg, sizeof(msg))) != OS_OK) {
            os_db_rollback(db);
            return os_errf(err, errcap, e,
                           "not migrating version %d to %d: the backup failed (%s); the "
                           "database is unchanged",
                           v, n, msg);
        }
        if ((e = apply_steps(db, opt, v, n, err, errcap)) != OS_OK) {
            os_db_rollback(db);
            return e;
        }
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", n);
        if ((e = os_db_exec(db, sql, msg, sizeof(msg))) != OS_OK ||
            (e = os_db_exec(db, "COMMIT", msg, sizeof(msg))) != OS_OK) {
            os_db_rollback(db);
            return os_errf(err, errcap, e,
                           "migration to version %d failed at commit: %s; the database is "
                           "unchanged at version %d",
                           n, msg, v);
        }
        v = n;
    }
    db->version = v;
    return OS_OK;
}

os_err os_db_open(os_db **out, const char *path, const os_db_options *opt, char *err, size_t errcap)
{
    static const os_db_options none = {0};
    os_db *db;
    int in_memory, flags, rc;
    char sql[64];
    os_err e;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output handle");
    *out = NULL;
    if (opt == NULL)
        opt = &none;
    if (path == NULL || path[0] == '\0')
        return os_errf(err, errcap, OS_ERR_INVALID, "no database path");
    if (opt->n_migrations > INT_MAX - 1 || (opt->n_migrations > 0 && opt->migrations == NULL))
        return os_errf(err, errcap, OS_ERR_INVALID, "bad migration list");
    for (size_t i = 0; i < opt->n_migrations; i++)
        if (opt->migrations[i] == NULL)
            return os_errf(err, errcap, OS_ERR_INVALID, "migration %zu is NULL", i);
    if (opt->busy_timeout_ms < 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "negative busy timeout");

    in_memory = strcmp(path, ":memory:") == 0;
    if (!in_memory && !opt->read_only && (e = create_file(path, err, errcap)) != OS_OK)
        return e;

    if ((db = calloc(1, sizeof(*db))) == NULL)
        return os_errf(err, errcap, OS_ERR_NOMEM, "out of memory");
    flags = (opt->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
            SQLITE_OPEN_FULLMUTEX;
    rc = sqlite3_open_v2(path, &db->h, flags, NULL);
    if (rc != SQLITE_OK) {
        e = os_errf(err, errcap, db->h == NULL ? OS_ERR_NOMEM : OS_ERR_IO,
                    "cannot open the database: %s",
                    db->h != NULL ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        goto bad;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h,
                         opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : DB_BUSY_DEFAULT_MS);
    if (sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL) != SQLITE_OK ||
        sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL) != SQLITE_OK) {
        e = os_errf(err, errcap, OS_ERR_INTERNAL, "cannot configure the connection");
        goto bad;
    }
    /* A read-only connection cannot switch the journal; it reads a WAL database as it is. */
    if (!opt->read_only && (e = set_wal(db->h, in_memory, err, errcap)) != OS_OK)
        goto bad;
    snprintf(sql, sizeof(sql), "PRAGMA foreign_keys=ON; PRAGMA synchronous=%s",
             opt->synchronous_full ? "FULL" : "NORMAL");
    if ((e = os_db_exec(db, sql, err, errcap)) != OS_OK)
        goto bad;
    if ((e = migrate(db, path, in_memory, opt, err, errcap)) != OS_OK)
        goto bad;
    *out = db;
    return OS_OK;
bad:
    os_db_close(db);
    return e;
}

void os_db_close(os_db *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->cap; i++)
        sqlite3_finalize(db->slots[i].st);
    free(db->slots);
    /* _v2 so a statement the caller prepared on the handle and forgot cannot leak the connection;
     * the last connection to close checkpoints the WAL into the database. */
    sqlite3_close_v2(db->h);
    free(db);
}

static size_t slot_of(const char *sql, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)sql * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (cap - 1);
}

static int cache_grow(os_db *db)
{
    size_t ncap = db->cap != 0 ? db->cap * 2 : STMT_CACHE_INITIAL;
    stmt_slot *ns;

    if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
        return -1;
    for (size_t i = 0; i < db->cap; i++) {
        if (db->slots[i].sql == NULL)
            continue;
        size_t j = slot_of(db->slots[i].sql, ncap);
        while (ns[j].sql != NULL)
            j = (j + 1) & (ncap - 1);
        ns[j] = db->slots[i];
    }
    free(db->slots);
    db->slots = ns;
    db->cap = ncap;
    return 0;
}

/* Prepares exactly one statement from sql; NULL when it is empty, several, or wrong. */
static sqlite3_stmt *prepare_one(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;

    if (sqlite3_prepare_v3(h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail) != SQLITE_OK ||
        st == NULL)
        return NULL;
    while (tail != NULL &&
           (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r' || *tail == ';'))
        tail++;
    if (tail != NULL && *tail != '\0') {
        /* a second statement would be silently dropped */
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

sqlite3_stmt *os_db_stmt(os_db *db, const char *sql)
{
    size_t i;

    if (db == NULL || db->h == NULL || sql == NULL)
        return NULL;
    if (db->cap != 0) {
        for (i = slot_of(sql, db->cap); db->slots[i].sql != NULL; i = (i + 1) & (db->cap - 1)) {
            if (db->slots[i].sql != sql)
                continue;
            sqlite3_stmt *st = db->slots[i].st;
            if (strcmp(sqlite3_sql(st), sql) == 0) {
                /* reset returns the last step's error, which the caller has already seen */
                (void)sqlite3_reset(st);
                (void)sqlite3_clear_bindings(st);
                return st;
            }
            /* The buffer now holds other SQL: replace the statement in place. */
            sqlite3_stmt *fresh = prepare_one(db->h, sql);
            if (fresh == NULL)
                return NULL;
            sqlite3_finalize(st);
            db->slots[i].st = fresh;
            return fresh;
        }
    }
    if (db->n >= OS_DB_STMT_CACHE_MAX || ((db->n + 1) * 2 > db->cap && cache_grow(db) != 0))
        return NULL;
    sqlite3_stmt *st = prepare_one(db->h, sql);
    if (st == NULL)
        return NULL;
    for (i = slot_of(sql, db->cap); db->slots[i].sql != NULL; i = (i + 1) & (db->cap - 1))
        ;
    db->slots[i].sql = sql;
    db->slots[i].st = st;
    db->n++;
    return st;
}
