/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite wrapper on real files in a fresh temporary directory: migration from nothing to N, a
 * no-op reopen, failing migrations that leave neither tables nor version behind (all pending steps
 * are one transaction: a database at version 1 with rows, upgraded through a broken third step,
 * keeps its version, its rows and its exact bytes), migrations that try to commit on their own, the
 * backup copy taken before an upgrade (name, mode, contents, when it is skipped, and a failed
 * backup that stops the upgrade), processes migrating one file at once, a newer schema refused and
 * left byte for byte as it was, file modes 0600 (database and WAL) whatever the umask, the pragmas
 * in force, the statement cache (hits, reset and cleared bindings, reused buffers, growth,
 * refusals), error mapping, transactions, two connections to one file, and read-only opens.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

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

/* SHA-256 of a whole file: a failed upgrade must leave the database byte for byte as it was. */
static void file_hash(uint8_t out[crypto_hash_sha256_BYTES], const char *path)
{
    crypto_hash_sha256_state h;
    uint8_t buf[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    crypto_hash_sha256_init(&h);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
    assert_int_equal(n, 0);
    close(fd);
    crypto_hash_sha256_final(&h, out);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
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
    assert_non_null(strstr(err, "unchanged at version 0"));
    /* one transaction for both steps: migration 0 did not stay behind either */
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);
    assert_int_equal(table_exists(f->path, "a"), 0);
    assert_int_equal(table_exists(f->path, "c"), 0);
    assert_int_equal(table_exists(f->path, "d"), 0);
    /* and the good program still opens it */
    o = opts(mig3, 3);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_version(db), 3);
    os_db_close(db);
}

/* Creates f->path at version 1 with three rows in a, closed (so checkpointed: no WAL left). */
static void make_v1_with_rows(const fixture *f)
{
    os_db_options o = opts(mig3, 1);
    char err[OS_DB_ERR_LEN], wal[160];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_exec(db,
                                "INSERT INTO a(name) VALUES ('r1'); INSERT INTO a(name) VALUES "
                                "('r2'); INSERT INTO a(name) VALUES ('r3');",
                                err, sizeof(err)),
                     OS_OK);
    os_db_close(db);
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_false(file_exists(wal));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
}

/*
 * The upgrade from version 1 through [m1, m2, m3-broken]: m2 applies, m3 fails, and the file is
 * exactly what it was: version 1, its rows, no table from m2, the same bytes. The backup made
 * before the attempt holds the same database.
 */
static void test_failed_upgrade_leaves_file(void **state)
{
    fixture *f = *state;
    static const char *const broken[] = {
        mig3[0],
        mig3[1],
        /* alters a table, then fails */
        "ALTER TABLE a ADD COLUMN extra INTEGER NOT NULL DEFAULT 7;"
        "UPDATE a SET extra = 8; INSERT INTO a(nosuchcolumn) VALUES (1);",
    };
    uint8_t before[crypto_hash_sha256_BYTES], after[crypto_hash_sha256_BYTES];
    os_db_options o = opts(broken, 3);
    char err[OS_DB_ERR_LEN], path[160];
    os_db *db = NULL;

    make_v1_with_rows(f);
    file_hash(before, f->path);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    assert_null(db);
    assert_non_null(strstr(err, "migration 2 to version 3 failed"));
    assert_non_null(strstr(err, "nosuchcolumn"));
    assert_non_null(strstr(err, "unchanged at version 1"));

    /* the failed open closed its connection, checkpointing: no WAL holds anything back */
    snprintf(path, sizeof(path), "%s-wal", f->path);
    assert_false(file_exists(path));
    file_hash(after, f->path);
    assert_memory_equal(before, after, sizeof(before));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM a"), 3);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM a WHERE name = 'seed'"), 0);
    assert_int_equal(table_exists(f->path, "b"), 0);

    /* the copy taken under the lock before the attempt is the same version-1 database */
    snprintf(path, sizeof(path), "%s.pre-v1.bak", f->path);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM a"), 3);

    /* a second attempt fails the same way and still changes nothing */
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    file_hash(after, f->path);
    assert_memory_equal(before, after, sizeof(before));

    /* the fixed program upgrades it: every step applied once, rows kept */
    o = opts(mig3, 3);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_version(db), 3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 4);
    assert_int_equal(query_int(db, "SELECT sum(extra) FROM a"), 28);
    os_db_close(db);
}

/* A migration cannot commit (or roll back) part of the upgrade on its own. */
static void test_migration_cannot_end_transaction(void **state)
{
    fixture *f = *state;
    static const char *const commits[] = {mig3[0], "CREATE TABLE early(x); COMMIT; BEGIN;",
                                          "CREATE TABLE late(y);"};
    static const char *const rolls[] = {mig3[0], "CREATE TABLE early(x); ROLLBACK;"};
    os_db_options o = opts(commits, 3);
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    assert_null(db);
    assert_non_null(strstr(err, "migration 1"));
    assert_non_null(strstr(err, "ends the transaction"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);
    assert_int_equal(table_exists(f->path, "a"), 0);
    assert_int_equal(table_exists(f->path, "early"), 0);
    assert_int_equal(table_exists(f->path, "late"), 0);

    o = opts(rolls, 2);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_INVALID);
    assert_non_null(strstr(err, "ends the transaction"));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);
    assert_int_equal(table_exists(f->path, "a"), 0);

    /* a good list after the refusals: the connection was left usable and the hook removed */
    o = opts(mig3, 3);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_begin(db), OS_OK);
    assert_int_equal(os_db_exec(db, "INSERT INTO a(name) VALUES ('after')", err, sizeof(err)),
                     OS_OK);
    assert_int_equal(os_db_commit(db), OS_OK);
    assert_int_equal(query_int(db, "SELECT count(*) FROM a"), 2);
    os_db_close(db);
}

/* The copy made before upgrading a database that had a schema: when, where, what, which mode. */
static void test_backup_before_upgrade(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 1);
    char err[OS_DB_ERR_LEN], bak[160], other[200];
    struct stat sb;
    os_db *db = NULL;
    mode_t old;

    /* a fresh file (version 0) has nothing to keep */
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_exec(db, "INSERT INTO a(name) VALUES ('kept')", err, sizeof(err)),
                     OS_OK);
    os_db_close(db);
    snprintf(bak, sizeof(bak), "%s.pre-v0.bak", f->path);
    assert_false(file_exists(bak));

    /* 1 -> 3: <path>.pre-v1.bak, 0600 under umask 0, at version 1 with the row */
    o = opts(mig3, 3);
    old = umask(0);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    umask(old);
    assert_int_equal(os_db_version(db), 3);
    snprintf(bak, sizeof(bak), "%s.pre-v1.bak", f->path);
    assert_int_equal(lstat(bak, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* it is read while the upgraded database is still open: a separate, complete file */
    assert_int_equal(raw_int(bak, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(bak, "SELECT count(*) FROM a WHERE name = 'kept'"), 1);
    assert_int_equal(raw_int(bak, "SELECT count(*) FROM sqlite_master WHERE name = 'b'"), 0);
    assert_int_equal(
        raw_int(bak, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"),
        1);
    snprintf(other, sizeof(other), "%s.tmp", bak);
    assert_false(file_exists(other));
    os_db_close(db);

    /* 3 -> 4 keeps the first copy and adds one of version 3 */
    static const char *const mig4[] = {mig3[0], mig3[1], mig3[2],
                                       "INSERT INTO a(name) VALUES ('four');"};
    o = opts(mig4, 4);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    os_db_close(db);
    snprintf(other, sizeof(other), "%s.pre-v3.bak", f->path);
    assert_int_equal(raw_int(other, "PRAGMA user_version"), 3);
    assert_int_equal(raw_int(other, "SELECT count(*) FROM a WHERE name = 'four'"), 0);
    assert_int_equal(raw_int(bak, "PRAGMA user_version"), 1);

    /* reopening an up-to-date file makes no copy */
    assert_int_equal(unlink(other), 0);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    os_db_close(db);
    assert_false(file_exists(other));

    /* no_backup skips it */
    static const char *const mig5[] = {mig3[0], mig3[1], mig3[2], mig4[3],
                                       "INSERT INTO a(name) VALUES ('five');"};
    o = opts(mig5, 5);
    o.no_backup = 1;
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    os_db_close(db);
    snprintf(other, sizeof(other), "%s.pre-v4.bak", f->path);
    assert_false(file_exists(other));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 5);
}

/* When the copy cannot be stored, nothing is migrated and the open says why. */
static void test_backup_failure_stops_upgrade(void **state)
{
    fixture *f = *state;
    uint8_t before[crypto_hash_sha256_BYTES], after[crypto_hash_sha256_BYTES];
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN], bak[160], inner[200];
    os_db *db = NULL;

    make_v1_with_rows(f);
    /* a non-empty directory where the copy must go: the rename over it fails, even for root */
    snprintf(bak, sizeof(bak), "%s.pre-v1.bak", f->path);
    assert_int_equal(mkdir(bak, 0700), 0);
    snprintf(inner, sizeof(inner), "%s/x", bak);
    FILE *fp = fopen(inner, "w");
    assert_non_null(fp);
    fclose(fp);
    file_hash(before, f->path);

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_IO);
    assert_null(db);
    assert_non_null(strstr(err, "backup failed"));
    assert_non_null(strstr(err, "unchanged"));
    file_hash(after, f->path);
    assert_memory_equal(before, after, sizeof(before));
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    /* no temporary copy left behind */
    snprintf(inner, sizeof(inner), "%s.tmp", bak);
    assert_false(file_exists(inner));

    /* with the obstacle gone the upgrade goes through */
    snprintf(inner, sizeof(inner), "%s/x", bak);
    assert_int_equal(unlink(inner), 0);
    assert_int_equal(rmdir(bak), 0);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    assert_int_equal(os_db_version(db), 3);
    os_db_close(db);
    assert_int_equal(raw_int(bak, "SELECT count(*) FROM a"), 3);
}

#define RACERS 4

/*
 * RACERS processes released at once upgrade one version-1 file: every one opens it at version 3,
 * and each step ran exactly once (a second run of migration 1 would fail on its CREATE TABLE and
 * add a second 'seed' row).
 */
static void test_concurrent_migrators(void **state)
{
    fixture *f = *state;
    os_db_options o = opts(mig3, 3);
    pid_t pids[RACERS];
    int gate[2];

    make_v1_with_rows(f);
    assert_int_equal(pipe(gate), 0);
    for (int i = 0; i < RACERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char err[OS_DB_ERR_LEN], c;
            os_db *db = NULL;
            int ok;
            close(gate[1]);
            /* returns 0 (EOF) when the parent closes its end: all start together */
            while (read(gate[0], &c, 1) < 0 && errno == EINTR)
                ;
            o.busy_timeout_ms = 20000;
            ok = os_db_open(&db, f->path, &o, err, sizeof(err)) == OS_OK && os_db_version(db) == 3;
            if (!ok)
                fprintf(stderr, "racer %d: %s\n", i, err);
            os_db_close(db);
            _exit(ok ? 0 : 1);
        }
    }
    close(gate[0]);
    close(gate[1]);
    for (int i = 0; i < RACERS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 3);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM a WHERE name = 'seed'"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM a"), 4);
    assert_int_equal(raw_int(f->path, "SELECT sum(extra) FROM a"), 28);
    assert_int_equal(table_exists(f->path, "b"), 1);
}

static void test_newer_version_refused(void **state)
{
    fixture *f = *state;
    uint8_t before[crypto_hash_sha256_BYTES], after[crypto_hash_sha256_BYTES];
    os_db_options o = opts(mig3, 3);
    char err[OS_DB_ERR_LEN], bak[160];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_OK);
    os_db_close(db);
    file_hash(before, f->path);
    o = opts(mig3, 2);
    db = NULL;
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_UNSUPPORTED);
    assert_null(db);
    assert_non_null(strstr(err, "version 3 is newer than this program's 2"));
    o = opts(NULL, 0);
    assert_int_equal(os_db_open(&db, f->path, &o, err, sizeof(err)), OS_ERR_UNSUPPORTED);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 3);
    /* refused, not touched: no migration, no copy, the same bytes */
    file_hash(after, f->path);
    assert_memory_equal(before, after, sizeof(before));
    snprintf(bak, sizeof(bak), "%s.pre-v3.bak", f->path);
    assert_false(file_exists(bak));
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
        cmocka_unit_test_setup_teardown(test_failed_upgrade_leaves_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_cannot_end_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_before_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_failure_stops_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_migrators, setup, teardown),
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
