/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQLite as every daemon uses it: WAL journal, a busy timeout, foreign keys on, and forward-only
 * schema migrations numbered by PRAGMA user_version. One os_db is one connection; it is not shared
 * between threads without the caller's own lock (SQLite's serialized mode makes that safe, the lock
 * makes transactions atomic as a unit).
 */
#ifndef OPENSEED_DB_H
#define OPENSEED_DB_H

#include <sqlite3.h>
#include <stddef.h>

#include "openseed/err.h"

#define OS_DB_ERR_LEN 512

/*
 * Migration i (0-based) brings the schema from user_version i to i+1. Every pending migration and
 * the new user_version are applied in ONE transaction (BEGIN IMMEDIATE ... COMMIT): when any step
 * fails, nothing of the upgrade is kept and the file stays at its old version with its rows. So a
 * migration must be plain transactional SQL: no BEGIN/COMMIT (refused: it would commit part of the
 * upgrade), no VACUUM or journal_mode change, and PRAGMA foreign_keys is a no-op there (a table
 * rebuild uses PRAGMA defer_foreign_keys = ON instead).
 *
 * Backup: before migrating a file whose version is above 0 (one that already held a schema and so
 * possibly data), os_db_open copies it as it is to "<path>.pre-v<old version>.bak" with SQLite's
 * backup API, mode 0600 like the database (it holds the same secrets), written to a temporary
 * name, synced and renamed, so that name only ever holds a complete copy. The copy is taken under
 * the migration's write lock, so it is exactly the database the migration starts from. If it
 * cannot be made (disk full, unwritable directory), nothing is migrated and the open fails. The
 * copy is left in place whatever the migration's outcome (after a failed one it equals the
 * untouched database); one from an earlier attempt at the same version is replaced. To go back to
 * the previous release: stop the daemon, move the .bak over the database, delete the database's
 * -wal and -shm files, start the old binary. Writes made since the upgrade are lost that way.
 * Fresh files (version 0), ":memory:" and no_backup skip the copy.
 */
typedef struct os_db_options {
    const char *const *migrations;
    size_t n_migrations;
    int busy_timeout_ms;  /* 0 = 5000 */
    int synchronous_full; /* non-zero: PRAGMA synchronous=FULL (money); else NORMAL */
    int read_only;
    int no_backup; /* non-zero: migrate without the .pre-v<N>.bak copy */
} os_db_options;

typedef struct os_db os_db;

/*
 * Opens (creating if needed, mode 0600) the database at path and migrates it (see os_db_options:
 * one transaction, a backup copy first). A database whose user_version is newer than the
 * migrations known is refused (OS_ERR_UNSUPPORTED, the message says so) and left untouched: never
 * run old code on a newer schema. A failed migration returns its error (the message names the step
 * and says the database is unchanged). Read-only opens never migrate (OS_ERR_UNSUPPORTED when
 * they would have to). Several processes may open one file at once: one migrates, the others wait
 * for its lock (busy timeout) and find it done. *out is the caller's (os_db_close); err receives a
 * message on failure.
 */
OS_WUR os_err os_db_open(os_db **out, const char *path, const os_db_options *opt, char *err,
                         size_t errcap);
/* Finalizes cached statements and closes (checkpointing the WAL). NULL-safe. */
void os_db_close(os_db *db);
/* The underlying connection, for prepared statements. */
sqlite3 *os_db_handle(os_db *db);
/* The schema version after migration. */
int os_db_version(os_db *db);

/* Runs SQL with no results (may hold several statements). */
OS_WUR os_err os_db_exec(os_db *db, const char *sql, char *err, size_t errcap);
/*
 * BEGIN IMMEDIATE / COMMIT / ROLLBACK. After a failed commit call os_db_rollback: the transaction
 * may still be open (rollback is a no-op when there is none). Text of a failure: os_db_errmsg.
 */
OS_WUR os_err os_db_begin(os_db *db);
OS_WUR os_err os_db_commit(os_db *db);
void os_db_rollback(os_db *db);

/*
 * A prepared statement cached on the connection by its SQL text (the pointer identity of sql: pass
 * string literals), reset and with bindings cleared, ready to bind. NULL on error. Do not finalize it.
 */
sqlite3_stmt *os_db_stmt(os_db *db, const char *sql);

/*
 * Distinct statements one connection caches; os_db_stmt returns NULL past it (SQL built at run time
 * belongs in sqlite3_prepare_v2 and sqlite3_finalize, not in the cache).
 */
#define OS_DB_STMT_CACHE_MAX 1024

/* SQLite's message for the last failed call on db (borrowed; valid until the next call). */
const char *os_db_errmsg(os_db *db);

/*
 * Maps a SQLite result code (primary or extended) to an os_err: OK/ROW/DONE -> OS_OK, BUSY/LOCKED
 * -> OS_ERR_TIMEOUT (the busy timeout ran out), UNIQUE or PRIMARY KEY constraint -> OS_ERR_EXISTS,
 * other constraints, SQL errors and type mismatches -> OS_ERR_INVALID, NOMEM -> OS_ERR_NOMEM,
 * TOOBIG -> OS_ERR_TOOBIG, I/O, corruption, full disk, read-only -> OS_ERR_IO, anything else
 * OS_ERR_INTERNAL. Connections from os_db_open report extended codes.
 */
os_err os_db_status(int sqlite_rc);

#endif
