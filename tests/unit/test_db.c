/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite wrapper on real files in a fresh temporary directory: migration from nothing to N, a
 * no-op reopen, a failing migration that leaves neither tables nor version behind, a newer schema
 * refused, file modes 0600 (database and WAL) whatever the umask, the pragmas in force, the
 * statement cache (hits, reset and cleared bindings, reused buffers, growth, refusals), error
 * mapping, transactions, two connections to one file, and read-only opens.
 */
#include "testutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "openseed/db.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/openseed-test-db-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/test.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_rmdir_flat(f->dir);
    free(f);
    return 0;
}

static const char *const mig3[] = {
    "CREATE TABLE a(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    /* not re-runnable: a second run would fail on the existing table */
    "CREATE TABLE b(id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL REFERENCES a(id));"
    "INSERT INTO a(name) VALUES ('seed');",
    "ALTER TABLE a ADD COLUMN extra INTEGER NOT NULL DEFAULT 7;",
};

static os_db_options opts(const char *const *m, size_t n)
{
    os_db_options o = {0};
    o.migrations = m;
    o.n_migrations = n;
    return o;
}

/* An independent connection (plain SQLite) to read what is really in the file. */
static int raw_int(const char *path, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int v = -12345;
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static int table_exists(const char *path, const char *name)
{
    char sql[128];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'", name);
    return raw_int(path, sql);
}

static int query_int(os_db *db, const char *sql)
{
    sqlite3_stmt *st = os_db_stmt(db, sql);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    return sqlite3_column_int(st, 0);
}

static void test_fresh_migrates_to_n(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_non_null(db);
    assert_int_equal(os_db_version(db), 3);
    assert_int_equal(query_int(db, "SELECT extra FROM a WHERE name = 'seed'"), 7);
    os_db_close(db);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 3);
    assert_int_equal(table_exists(f->path, "b"), 1);
}

/* Reopening an up-to-date file runs nothing: the non-idempotent migrations would fail if it did. */
static void test_reopen_is_noop(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    os_db_close(db);
    for (int i = 0; i < 2; i++) {
        db = NULL;
        assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
        assert_int_equal(os_db_version(db), 3);
        assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 1);
        os_db_close(db);
    }
    /* a program with one more migration applies just that one */
    static const char *const mig4[] = {mig3[0], mig3[1], mig3[2],
                                       "INSERT INTO a(name) VALUES ('four');"};
    o = opts(mig4, 4);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_version(db), 4);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 2);
    os_db_close(db);
}

static void test_failing_migration_rolls_back(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {
        mig3[0],
        /* two tables created, then a failure inside the same migration */
        "CREATE TABLE c(x); CREATE TABLE d(y); INSERT INTO nosuch VALUES (1);",
    };
    os_db_options o = opts(bad, 2);
    char err[OS_DB_ERR_LEN] = "";
    os_db *db = (os_db *)&o; /* must be reset to NULL on failure */

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    assert_null(db);
    assert_non_null(strstr(err, "migration 1"));
    assert_non_null(strstr(err, "nosuch"));
    /* migration 0 committed on its own; migration 1 left nothing */
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(table_exists(f->path, "a"), 1);
    assert_int_equal(table_exists(f->path, "c"), 0);
    assert_int_equal(table_exists(f->path, "d"), 0);
    /* and the good program still opens it */
    o = opts(mig3, 3);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_version(db), 3);
    os_db_close(db);
}

static void test_newer_version_refused(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    os_db_close(db);
    o = opts(mig3, 2);
    db = NULL;
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_UNSUPPORTED);
    assert_null(db);
    assert_non_null(strstr(err, "newer"));
    o = opts(NULL, 0);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_UNSUPPORTED);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 3);
}

/* 0600 from creation, even under umask 0, and SQLite's WAL and shm files follow the database. */
static void test_file_mode_0600(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 1);
    char err[OS_DB_ERR_LEN], wal[160];
    struct stat sb;
    os_db *db = NULL;
    mode_t old = umask(0);

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    umask(old);
    assert_int_equal(os_db_exec(db, "INSERT INTO a(name) VALUES ('x')", err, sizeof(err)), OS_OK);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof(wal), "%s-shm", f->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    os_db_close(db);
    /* the last close checkpoints and removes the WAL */
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_not_equal(stat(wal, &sb), 0);

    /* a directory at the path is refused */
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/dir", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(os_db_open(&db, sub, &o, err, sizeof(err)), OS_ERR_IO);
    assert_null(db);
    rmdir(sub);
    /* a missing parent directory is not found */
    snprintf(sub, sizeof(sub), "%s/nodir/x.db", f->dir);
    assert_int_equal(os_db_open(&db, sub, &o, err, sizeof(err)), OS_ERR_NOTFOUND);
}

static void test_pragmas(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN];
    sqlite3_stmt *st;
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    st = os_db_stmt(db, "PRAGMA journal_mode");
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(query_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
    assert_int_equal(query_int(db, "PRAGMA busy_timeout"), 5000);
    assert_int_equal(query_int(db, "PRAGMA trusted_schema"), 0);
    assert_true(sqlite3_threadsafe() != 0);
    os_db_close(db);
    /* the journal mode is a property of the file */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM pragma_journal_mode WHERE "
                                      "journal_mode = 'wal'"),
                     1);

    o.synchronous_full = 1;
    o.busy_timeout_ms = 1234;
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(query_int(db, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(query_int(db, "PRAGMA busy_timeout"), 1234);
    os_db_close(db);
}

static void test_stmt_cache(void **state)
{
    fixture *f = *state;
    static const char q[] = "SELECT ?1, ?2";
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;
    sqlite3_stmt *st, *st2;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    st = os_db_stmt(db, q);
    assert_non_null(st);
    assert_int_equal(sqlite3_bind_int(st, 1, 41), SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 2, "x", -1, SQLITE_STATIC), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 41);
    assert_true(sqlite3_stmt_busy(st));
    /* the same pointer gives the same statement back, reset and with its bindings cleared */
    st2 = os_db_stmt(db, q);
    assert_ptr_equal(st2, st);
    assert_false(sqlite3_stmt_busy(st));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(st, 0), SQLITE_NULL);
    assert_int_equal(sqlite3_column_type(st, 1), SQLITE_NULL);

    /* equal text at another address is another cache entry */
    char copy[sizeof(q)];
    memcpy(copy, q, sizeof(q));
    st2 = os_db_stmt(db, copy);
    assert_non_null(st2);
    assert_ptr_not_equal(st2, st);
    assert_ptr_equal(os_db_stmt(db, copy), st2);
    /* a buffer reused for other SQL does not get the old statement */
    char buf[64];
    snprintf(buf, sizeof(buf), "SELECT 1");
    st = os_db_stmt(db, buf);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    snprintf(buf, sizeof(buf), "SELECT 2");
    st = os_db_stmt(db, buf);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);

    /* refused: bad SQL, several statements, nothing */
    assert_null(os_db_stmt(db, "SELEC 1"));
    assert_non_null(strstr(os_db_errmsg(db), "syntax"));
    assert_null(os_db_stmt(db, "SELECT 1; SELECT 2"));
    assert_null(os_db_stmt(db, "  -- nothing"));
    assert_null(os_db_stmt(db, NULL));
    assert_null(os_db_stmt(NULL, q));
    /* a trailing semicolon is one statement */
    assert_non_null(os_db_stmt(db, "SELECT 3;\n"));

    /* growth past the initial table: 300 distinct buffers, each still maps to its own statement */
    static char many[300][32];
    for (int i = 0; i < 300; i++) {
        snprintf(many[i], sizeof(many[i]), "SELECT %d", i * 3);
        assert_non_null(os_db_stmt(db, many[i]));
    }
    for (int i = 299; i >= 0; i--) {
        st = os_db_stmt(db, many[i]);
        assert_non_null(st);
        assert_string_equal(sqlite3_sql(st), many[i]);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), i * 3);
    }
    os_db_close(db); /* finalizes everything; ASan/valgrind see no leak */
}

/* Past the cap the cache refuses rather than grow without bound. */
static void test_stmt_cache_cap(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(NULL, 0);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;
    static char sql[OS_DB_STMT_CACHE_MAX + 1][24];

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    for (int i = 0; i < OS_DB_STMT_CACHE_MAX; i++) {
        snprintf(sql[i], sizeof(sql[i]), "SELECT %d", i);
        assert_non_null(os_db_stmt(db, sql[i]));
    }
    snprintf(sql[OS_DB_STMT_CACHE_MAX], sizeof(sql[0]), "SELECT -1");
    assert_null(os_db_stmt(db, sql[OS_DB_STMT_CACHE_MAX]));
    /* cached ones still work */
    assert_non_null(os_db_stmt(db, sql[17]));
    os_db_close(db);
}

static void test_exec_errors_and_transactions(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_exec(db, "SELEC 1", err, sizeof(err)), OS_ERR_INVALID);
    assert_non_null(strstr(err, "syntax"));
    /* UNIQUE */
    assert_int_equal(os_db_exec(db, "INSERT INTO a(name) VALUES ('seed')", err, sizeof(err)),
                     OS_ERR_EXISTS);
    assert_non_null(strstr(err, "UNIQUE"));
    /* foreign keys are enforced */
    assert_int_equal(os_db_exec(db, "INSERT INTO b(a_id) VALUES (999)", err, sizeof(err)),
                     OS_ERR_INVALID);
    assert_non_null(strstr(err, "FOREIGN KEY"));
    /* NOT NULL */
    assert_int_equal(os_db_exec(db, "INSERT INTO a(name) VALUES (NULL)", err, sizeof(err)),
                     OS_ERR_INVALID);
    /* several statements in one exec */
    assert_int_equal(
        os_db_exec(db, "INSERT INTO a(name) VALUES ('p'); INSERT INTO a(name) VALUES ('q');", err,
                   sizeof(err)),
        OS_OK);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 3);

    /* rollback undoes, commit keeps */
    assert_int_equal(os_db_begin(db), OS_OK);
    assert_int_equal(os_db_exec(db, "DELETE FROM a", err, sizeof(err)), OS_OK);
    os_db_rollback(db);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 3);
    assert_int_equal(os_db_begin(db), OS_OK);
    assert_int_equal(os_db_begin(db), OS_ERR_INVALID); /* no nesting */
    assert_int_equal(os_db_exec(db, "DELETE FROM a WHERE name = 'q'", err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_commit(db), OS_OK);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 2);
    assert_int_equal(os_db_commit(db), OS_ERR_INVALID); /* nothing to commit */
    os_db_rollback(db);                                 /* harmless without a transaction */

    assert_int_equal(os_db_status(SQLITE_BUSY), OS_ERR_TIMEOUT);
    assert_int_equal(os_db_status(SQLITE_CONSTRAINT_PRIMARYKEY), OS_ERR_EXISTS);
    assert_int_equal(os_db_status(SQLITE_CONSTRAINT_CHECK), OS_ERR_INVALID);
    assert_int_equal(os_db_status(SQLITE_IOERR_FSYNC), OS_ERR_IO);
    assert_int_equal(os_db_status(SQLITE_FULL), OS_ERR_IO);
    assert_int_equal(os_db_status(SQLITE_NOMEM), OS_ERR_NOMEM);
    assert_int_equal(os_db_status(SQLITE_DONE), OS_OK);
    assert_int_equal(os_db_status(SQLITE_MISUSE), OS_ERR_INTERNAL);
    assert_int_equal(os_db_exec(NULL, "SELECT 1", err, sizeof(err)), OS_ERR_INVALID);
    os_db_close(db);
}

/* Two connections to one file: committed data is visible, uncommitted is not, writers exclude. */
static void test_second_connection(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN];
    os_db *w = NULL, *r = NULL;

    o.busy_timeout_ms = 50;
    assert_int_equal(os_db_open(&w, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_open(&r, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_version(r), 3);

    assert_int_equal(os_db_begin(w), OS_OK);
    assert_int_equal(os_db_exec(w, "INSERT INTO a(name) VALUES ('new')", err, sizeof(err)), OS_OK);
    assert_int_equal(query_int(r, "SELECT count(*) FROM a WHERE name = 'new'"), 0);
    /* a second writer waits out its busy timeout and gives up */
    assert_int_equal(os_db_begin(r), OS_ERR_TIMEOUT);
    assert_non_null(strstr(os_db_errmsg(r), "locked"));
    assert_int_equal(os_db_commit(w), OS_OK);
    assert_int_equal(query_int(r, "SELECT count(*) FROM a WHERE name = 'new'"), 1);
    assert_int_equal(os_db_begin(r), OS_OK);
    assert_int_equal(os_db_exec(r, "DELETE FROM a WHERE name = 'new'", err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_commit(r), OS_OK);
    assert_int_equal(query_int(w, "SELECT count(*) FROM a WHERE name = 'new'"), 0);
    os_db_close(r);
    os_db_close(w);
}

static void test_read_only(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL, *ro = NULL;
    struct stat sb;

    /* read-only never creates */
    o.read_only = 1;
    assert_int_not_equal(os_db_open(&ro, f->path, &o, err, sizeof(err)), OS_OK);
    assert_null(ro);
    assert_int_not_equal(stat(f->path, &sb), 0);

    o = opts(mig3, 2);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    os_db_close(db);
    /* a schema that needs migrating cannot be migrated read-only */
    o = opts(mig3, 3);
    o.read_only = 1;
    assert_int_equal(os_db_open(&ro, f->path, &o, err, sizeof(err)), OS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "read-only"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 2);

    o.n_migrations = 2;
    assert_int_equal(os_db_open(&ro, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(query_int(ro, "SELECT count(*) FROM a"), 1);
    assert_int_equal(os_db_exec(ro, "INSERT INTO a(name) VALUES ('z')", err, sizeof(err)),
                     OS_ERR_IO);
    os_db_close(ro);
}

static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    static const char *const holey[] = {"CREATE TABLE x(y)", NULL};
    os_db_options o = opts(holey, 2);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    o = opts(NULL, 1);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    o = opts(mig3, 1);
    o.busy_timeout_ms = -1;
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_db_open(&db, NULL, &o, err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_db_open(&db, "", &o, err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_db_open(NULL, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    assert_null(db);
    /* a file that is not a database */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("this is not a SQLite database, just some text long enough to be read as a header", fp);
    fclose(fp);
    o = opts(mig3, 1);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_IO);
    assert_null(db);
    os_db_close(NULL);
    assert_null(os_db_handle(NULL));
    assert_int_equal(os_db_version(NULL), -1);
    /* in memory, for tests of other modules */
    o = opts(mig3, 3);
    assert_int_equal(os_db_open(&db, ":memory:", &o, err, sizeof(err)), OS_OK);
    assert_non_null(os_db_handle(db));
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 1);
    os_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_migrates_to_n, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_migration_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stmt_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stmt_cache_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_errors_and_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
