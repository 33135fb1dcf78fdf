/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upgrades of the three daemons' databases, through the daemons' own open functions (the registry
 * core, sl_ledger_open, by_bdb_open) on real files in a temp dir. For registry.db, seller.db and
 * buyer.db and every earlier schema version k (0..n-1): a file built from the daemon's first k
 * migrations holding rows in the tables that exist at k (seeds[k] below) is opened by the daemon,
 * and then it is at the current version, has a pre-upgrade copy (<file>.pre-v<k>.bak) when k > 0,
 * and the daemon's own views read the rows back (a pending request the seller left is finished as
 * interrupted, the series views that need the indexes of later migrations work). Also: a file from
 * a NEWER version is refused with a message that says so and left byte for byte as it was, and an
 * upgrade whose last step fails (an object already named as it creates) leaves the file byte for
 * byte as it was. Adding a migration without adding a seed for the version it upgrades from fails
 * this test: every earlier schema stays covered.
 */
#define _GNU_SOURCE 1 /* open_memstream */
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "openseed/db.h"
#include "openseed/log.h"

#include "bdb.h"
#include "ledger.h"
#include "registry.h"

#define WHY 1024

/* ------------------------------------------------------------------ blobs the seeds use */

#define H20(b) b b b b b b b b b b b b b b b b b b b b
#define H32(b) H20(b) b b b b b b b b b b b b
#define X32(b) "x'" H32(b) "'"
#define X20(b) "x'" H20(b) "'"
#define CH X32("11")
#define PAYER X20("22")
#define SELLER X20("33")
#define SIGNER X20("44")
#define COMMIT X32("55")
#define MH X32("66")
#define TXH X32("77")
#define SIG65 "x'" H32("88") H32("88") "1b'"
#define CRED64 "x'" H32("99") H32("99") "'"
#define SALT X32("aa")
#define KEY X32("bb")

/* 2023-11-14T22:13:20Z: fixed times, so the series views' buckets are known */
#define T0_S 1700000000
#define T0 "1700000000"

/* ------------------------------------------------------------------ seeds: rows per version */

/*
 * seeds[k] is SQL for a database at version k: rows in the tables that exist then (NULL: none
 * exist, as at version 0). Each is what the daemon itself would have written; the checks below
 * read them back through the daemon's views. When a migration is added, the version it upgrades
 * from needs a seed here (the test asserts there are as many seeds as migrations).
 */

/* seller.db v1 and v2 have the same tables (v2 added indexes): one channel with three vouchers,
 * two finished requests (cost 200000 + 250000 = consumed), one left pending by a crash, one
 * settlement. */
#define SELLER_ROWS                                                                                \
    "INSERT INTO channels (id, payer, seller, signer, commitment, deposit, claimed, close_at,"     \
    " closed, last_nonce, block, checked_ms, v_nonce, v_cumulative, v_metadata_hash, v_signature," \
    " consumed, requests, input_tokens, cached_tokens, output_tokens, first_seen_ms) VALUES"       \
    " (" CH ", " PAYER ", " SELLER ", " SIGNER ", " COMMIT ", 5000000, 100000, 0, 0, 2, 1234,"     \
    " " T0 "000, 3, 900000, " MH ", " SIG65 ", 450000, 2, 300, 0, 120, " T0 "000);"                \
    "INSERT INTO vouchers (channel_id, nonce, cumulative, metadata_hash, signature, estimate,"     \
    " accepted_ms) VALUES (" CH ", 1, 300000, " MH ", " SIG65 ", 300000, " T0 "000),"              \
    " (" CH ", 2, 600000, " MH ", " SIG65 ", 300000, " T0 "100),"                                  \
    " (" CH ", 3, 900000, " MH ", " SIG65 ", 300000, " T0 "200);"                                  \
    "INSERT INTO requests (channel_id, nonce, api, service, estimate, status, outcome,"            \
    " input_tokens, cached_tokens, output_tokens, cost, latency_ms, ttft_ms, upstream_status,"     \
    " started_ms, finished_ms) VALUES"                                                             \
    " (" CH ", 1, 'openai.chat', 'llama-test', 300000, 'finished', 'ok', 100, 0, 40, 200000, 800," \
    " 120, 200, " T0 "000, " T0 "800),"                                                            \
    " (" CH ", 2, 'openai.chat', 'llama-test', 300000, 'finished', 'ok', 200, 0, 80, 250000, 900," \
    " 150, 200, " T0 "100, " T0 "900),"                                                            \
    " (" CH ", 3, 'openai.chat', 'llama-test', 300000, 'pending', NULL, 0, 0, 0, 0, 0, 0, 0,"      \
    " " T0 "200, NULL);"                                                                           \
    "INSERT INTO settlements (channel_id, nonce, cumulative, amount, tx_hash, gas_used,"           \
    " gas_price_wei, status, error, at_ms) VALUES (" CH ", 1, 300000, 100000, " TXH ", 50000,"     \
    " 1000000, 'confirmed', NULL, " T0 "500);"

static const char *const seller_seeds[] = {NULL, SELLER_ROWS};

/* buyer.db v1: one open channel, two finished requests with their vouchers, the open deposit,
 * and the running totals. */
#define BUYER_ROWS                                                                                 \
    "INSERT INTO channels (id, seller, salt, signer, signer_key, cred_secret, commitment, state,"  \
    " deposit, consumed, authorized, nonce, close_at, opened_tx, created_at, updated_at) VALUES"   \
    " (" CH ", " SELLER ", " SALT ", " SIGNER ", " KEY ", " CRED64 ", " COMMIT ","                 \
    " 'open', 5000000, 450000, 600000, 2, 0, " TXH ", " T0 ", " T0 ");"                            \
    "INSERT INTO requests (id, channel_id, seller, service, api, estimate, cost, input_tokens,"    \
    " cached_tokens, output_tokens, latency_ms, ttft_ms, outcome, at, finished_at) VALUES"         \
    " (1, " CH ", " SELLER ", 'llama-test', 'openai.chat', 300000, 200000, 100, 0, 40, 800, 120,"  \
    " 'ok', " T0 ", 1700000001),"                                                                  \
    " (2, " CH ", " SELLER ", 'llama-test', 'openai.chat', 300000, 250000, 200, 0, 80, 900, 150,"  \
    " 'ok', 1700000100, 1700000101);"                                                              \
    "INSERT INTO vouchers (channel_id, nonce, cumulative, metadata_hash, request_id, at) VALUES"   \
    " (" CH ", 1, 300000, " MH ", 1, " T0 "), (" CH ", 2, 600000, " MH ", 2, 1700000100);"         \
    "INSERT INTO deposits (channel_id, kind, amount, tx_hash, at) VALUES"                          \
    " (" CH ", 'open', 5000000, " TXH ", 1699999999);"                                             \
    "INSERT INTO spend_days (day, spent) VALUES (19675, 450000);"                                  \
    "INSERT INTO spend_sellers (seller, spent, requests) VALUES (" SELLER ", 450000, 2);"

static const char *const buyer_seeds[] = {NULL, BUYER_ROWS};

/* registry.db has one migration: only version 0 precedes it, and it has no tables. */
static const char *const registry_seeds[] = {NULL};

/* ------------------------------------------------------------------ files */

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static void fx_open(fixture *f, const char *file)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/openseed-test-migrations-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, file);
}

static void fx_close(fixture *f)
{
    tu_rmdir_flat(f->dir);
}

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

/* Files in dir whose name contains needle. */
static int count_named(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, needle) != NULL)
            n++;
    closedir(d);
    return n;
}

/* One integer from the file through a plain SQLite connection of its own. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -12345;

    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static int64_t has_object(const char *path, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master WHERE name = '%s'", name);
    return raw_int(path, sql);
}

/*
 * Builds path at version k from the first k of a daemon's migrations (os_db_open: created 0600, as
 * the daemon would have), runs seed (NULL: nothing) and, when extra is non-NULL, extra SQL.
 */
static void build_at(const char *path, const char *const *m, size_t k, const char *seed,
                     const char *extra)
{
    os_db_options o = {.migrations = m, .n_migrations = k};
    char err[OS_DB_ERR_LEN];
    os_db *db = NULL;

    assert_int_equal(os_db_open(&db, path, &o, err, sizeof(err)), OS_OK);
    if (seed != NULL && os_db_exec(db, seed, err, sizeof(err)) != OS_OK)
        fail_msg("seed for version %zu: %s", k, err);
    if (extra != NULL && os_db_exec(db, extra, err, sizeof(err)) != OS_OK)
        fail_msg("extra SQL at version %zu: %s", k, err);
    os_db_close(db);
    if (extra == NULL)
        assert_int_equal(raw_int(path, "PRAGMA user_version"), (int64_t)k);
}

/* ------------------------------------------------------------------ the three daemons */

typedef struct daemon_case {
    const char *file;
    const char *const *(*migrations)(size_t *n);
    const char *const *seeds;
    size_t n_seeds;
    /* Opens path with the daemon's own code; on failure why gets its error (or its log). */
    os_err (*open)(void **h, const char *path, char *why, size_t whycap);
    void (*close)(void *h);
    /* The rows seeds[k] put in (none for a NULL seed), read back through the daemon's views. */
    void (*check)(void *h, const char *path, const char *seed);
    /* SQL, at version n - 1, that makes the last migration fail (an object it creates exists). */
    const char *sabotage;
} daemon_case;

/* -- registry: the core, which opens the store, loads every row and builds its views */

typedef struct reg_handle {
    rg_registry *rg;
    os_logger lg; /* borrowed by the registry: lives as long as it */
    FILE *mem;
    char *text;
    size_t len;
} reg_handle;

static void reg_close(void *h)
{
    reg_handle *r = h;
    if (r == NULL)
        return;
    rg_registry_free(r->rg);
    if (r->mem != NULL)
        fclose(r->mem);
    free(r->text);
    free(r);
}

static os_err reg_open(void **h, const char *path, char *why, size_t whycap)
{
    reg_handle *r = calloc(1, sizeof(*r));
    rg_options o;
    os_err rc;

    assert_non_null(r);
    r->mem = open_memstream(&r->text, &r->len);
    assert_non_null(r->mem);
    os_logger_init(&r->lg, "registry", OS_LOG_ERROR);
    r->lg.out = r->mem;
    rg_options_default(&o);
    o.db_path = path;
    o.listen = "127.0.0.1:0";
    rc = rg_registry_new_opts(&r->rg, &o, &r->lg);
    fflush(r->mem);
    snprintf(why, whycap, "%s", r->text != NULL ? r->text : "");
    if (rc != OS_OK) {
        reg_close(r);
        return rc;
    }
    *h = r;
    return OS_OK;
}

static void reg_check(void *h, const char *path, const char *seed)
{
    (void)h;
    assert_null(seed); /* no registry seed has rows yet: when one does, check them here */
    assert_int_equal(has_object(path, "peers"), 1);
    assert_int_equal(has_object(path, "feedback"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM peers"), 0);
}

/* -- seller: sl_ledger_open, which also finishes what a crash left pending */

static os_err sel_open(void **h, const char *path, char *why, size_t whycap)
{
    return sl_ledger_open((sl_ledger **)h, path, why, whycap);
}

static void sel_close(void *h)
{
    sl_ledger_close(h);
}

static const json_t *only(const json_t *o, const char *key, size_t n)
{
    const json_t *a = json_object_get(o, key);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), n);
    return a;
}

static void assert_str(const json_t *o, const char *key, const char *want)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
        fail_msg("%s: want \"%s\", got %s", key, want,
                 json_is_string(v) ? json_string_value(v) : "(not a string)");
}

static void assert_int_key(const json_t *o, const char *key, json_int_t want)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), want);
}

static void sel_check(void *h, const char *path, const char *seed)
{
    static const char ch_hex[] =
        "0x1111111111111111111111111111111111111111111111111111111111111111";
    sl_ledger *l = h;
    json_t *v;
    const json_t *a, *c;

    v = sl_ledger_channels_json(l);
    assert_non_null(v);
    if (seed == NULL) {
        only(v, "channels", 0);
        json_decref(v);
        v = sl_ledger_revenue_json(l);
        assert_non_null(v);
        assert_str(v, "consumed", "0");
        json_decref(v);
        return;
    }
    c = json_array_get(only(v, "channels", 1), 0);
    assert_str(c, "channel_id", ch_hex);
    assert_str(c, "deposit", "5000000");
    assert_str(c, "claimed", "100000");
    assert_str(c, "consumed", "450000");
    assert_str(c, "credit", "450000"); /* latest voucher 900000 - consumed */
    assert_int_key(c, "requests", 3);  /* two finished + the one recovered as interrupted */
    assert_str(json_object_get(c, "latest_voucher"), "cumulative", "900000");
    json_decref(v);

    v = sl_ledger_vouchers_json(l, NULL, 10);
    assert_non_null(v);
    a = only(v, "vouchers", 3);
    assert_int_key(json_array_get(a, 0), "nonce", 3); /* newest first */
    assert_str(json_array_get(a, 2), "cumulative", "300000");
    json_decref(v);

    v = sl_ledger_requests_json(l, NULL, 10);
    assert_non_null(v);
    a = only(v, "requests", 3);
    assert_str(json_array_get(a, 0), "outcome", "interrupted");
    assert_str(json_array_get(a, 0), "status", "finished");
    assert_str(json_array_get(a, 0), "cost", "0");
    assert_str(json_array_get(a, 1), "cost", "250000");
    assert_str(json_array_get(a, 2), "service", "llama-test");
    json_decref(v);

    v = sl_ledger_settlements_json(l, 10);
    assert_non_null(v);
    a = only(v, "settlements", 1);
    assert_str(json_array_get(a, 0), "amount", "100000");
    assert_str(json_array_get(a, 0), "status", "confirmed");
    json_decref(v);

    v = sl_ledger_revenue_json(l);
    assert_non_null(v);
    assert_str(v, "consumed", "450000");
    assert_str(v, "unclaimed", "350000");
    assert_int_key(v, "requests", 3);
    assert_int_key(v, "settlements", 1);
    assert_str(v, "gas_wei", "50000000000");
    assert_int_key(json_object_get(v, "by_outcome"), "ok", 2);
    assert_int_key(json_object_get(v, "by_outcome"), "interrupted", 1);
    json_decref(v);

    /* the series and per-model views read through migration 2's indexes (INDEXED BY) */
    v = sl_ledger_series_json(l, T0_S + 100, 86400, 1);
    assert_non_null(v);
    a = only(v, "points", 1);
    assert_str(json_array_get(a, 0), "revenue", "450000");
    assert_int_key(json_array_get(a, 0), "requests", 2);
    json_decref(v);
    v = sl_ledger_models_json(l);
    assert_non_null(v);
    a = only(v, "models", 1);
    assert_str(json_array_get(a, 0), "service", "llama-test");
    assert_int_key(json_array_get(a, 0), "latency_window", 2);
    json_decref(v);
    assert_int_equal(has_object(path, "requests_by_finished"), 1);
}

/* -- buyer: by_bdb_open, which also refuses a file others could read */

static os_err buy_open(void **h, const char *path, char *why, size_t whycap)
{
    return by_bdb_open((by_bdb **)h, path, why, whycap);
}

static void buy_close(void *h)
{
    by_bdb_close(h);
}

static void buy_check(void *h, const char *path, const char *seed)
{
    by_bdb *b = h;
    by_bdb_channel *rows = NULL;
    uint64_t spent = 0, deposited = 0, requests = 0;
    json_t *v, *per = NULL;
    const json_t *a;
    size_t n = 99;

    assert_int_equal(by_bdb_channel_list(b, &rows, &n), OS_OK);
    assert_int_equal(by_bdb_totals(b, &spent, &deposited, &requests, &per), OS_OK);
    v = by_bdb_ledger_json(b, 10);
    assert_non_null(v);
    if (seed == NULL) {
        assert_int_equal(n, 0);
        assert_int_equal(spent, 0);
        assert_int_equal(deposited, 0);
        only(v, "requests", 0);
        by_bdb_channels_free(rows);
        json_decref(per);
        json_decref(v);
        return;
    }
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].state, BY_CHAN_OPEN);
    assert_int_equal(rows[0].deposit, 5000000);
    assert_int_equal(rows[0].authorized, 600000);
    assert_int_equal(rows[0].nonce, 2);
    assert_int_equal(rows[0].signer_key[0], 0xbb);
    assert_int_equal(rows[0].cred_secret[63], 0x99);
    assert_true(rows[0].has_opened_tx);
    by_bdb_channels_free(rows);

    assert_int_equal(spent, 450000);
    assert_int_equal(deposited, 5000000);
    assert_int_equal(requests, 2);
    assert_int_equal(json_array_size(per), 1);
    json_decref(per);

    a = only(v, "requests", 2);
    assert_str(json_array_get(a, 0), "cost", "250000");
    assert_str(json_array_get(a, 1), "service", "llama-test");
    a = only(v, "vouchers", 2);
    assert_str(json_array_get(a, 0), "cumulative", "600000");
    assert_int_key(v, "total", 2);
    json_decref(v);

    assert_int_equal(by_bdb_day_spent(b, &spent, 19675), OS_OK);
    assert_int_equal(spent, 450000);
    assert_int_equal(by_bdb_series(b, &v, T0_S + 200, 86400, 1), OS_OK);
    a = only(v, "points", 1);
    assert_str(json_array_get(a, 0), "spent", "450000");
    assert_int_key(json_array_get(a, 0), "requests", 2);
    json_decref(v);
    assert_int_equal(has_object(path, "requests_by_end"), 1); /* migration 2 */
}

static const daemon_case cases[] = {
    {"registry.db", rg_store_migrations, registry_seeds,
     sizeof(registry_seeds) / sizeof(registry_seeds[0]), reg_open, reg_close, reg_check,
     "CREATE TABLE peers (x);"},
    {"seller.db", sl_ledger_migrations, seller_seeds,
     sizeof(seller_seeds) / sizeof(seller_seeds[0]), sel_open, sel_close, sel_check,
     "CREATE TABLE requests_by_finished (x);"},
    {"buyer.db", by_bdb_migrations, buyer_seeds, sizeof(buyer_seeds) / sizeof(buyer_seeds[0]),
     buy_open, buy_close, buy_check, "CREATE TABLE requests_by_end (x);"},
};

/* ------------------------------------------------------------------ the tests */

/* Every earlier version k of one daemon's file, seeded, opened by the daemon. */
static void upgrade_all(const daemon_case *dc)
{
    size_t n = 0;
    const char *const *m = dc->migrations(&n);
    char why[WHY], bak[192];

    assert_true(n >= 1);
    if (dc->n_seeds != n)
        fail_msg("%s has %zu migrations but %zu seeds: add the rows a database at version %zu "
                 "holds to this test",
                 dc->file, n, dc->n_seeds, dc->n_seeds);
    for (size_t k = 0; k < n; k++) {
        fixture f;
        void *h = NULL;
        os_err rc;

        fx_open(&f, dc->file);
        build_at(f.path, m, k, dc->seeds[k], NULL);
        rc = dc->open(&h, f.path, why, sizeof(why));
        if (rc != OS_OK)
            fail_msg("%s from version %zu: %s (%s)", dc->file, k, os_strerror(rc), why);
        dc->check(h, f.path, dc->seeds[k]);
        dc->close(h);
        assert_int_equal(raw_int(f.path, "PRAGMA user_version"), (int64_t)n);

        /* the copy of version k the upgrade made first (none for an empty version 0) */
        snprintf(bak, sizeof(bak), "%s.pre-v%zu.bak", f.path, k);
        if (k == 0) {
            assert_int_equal(count_named(f.dir, ".bak"), 0);
        } else {
            struct stat sb;
            assert_int_equal(count_named(f.dir, ".bak"), 1);
            assert_int_equal(lstat(bak, &sb), 0);
            assert_int_equal(sb.st_mode & 0777, 0600);
            assert_int_equal(raw_int(bak, "PRAGMA user_version"), (int64_t)k);
        }

        /* opened again: nothing to do, the rows still there */
        h = NULL;
        assert_int_equal(dc->open(&h, f.path, why, sizeof(why)), OS_OK);
        dc->check(h, f.path, dc->seeds[k]);
        dc->close(h);
        assert_int_equal(count_named(f.dir, ".bak"), k == 0 ? 0 : 1);
        fx_close(&f);
    }
}

static void test_registry_upgrades(void **state)
{
    (void)state;
    upgrade_all(&cases[0]);
}

static void test_seller_upgrades(void **state)
{
    (void)state;
    upgrade_all(&cases[1]);
}

static void test_buyer_upgrades(void **state)
{
    (void)state;
    upgrade_all(&cases[2]);
}

/* A file a later release wrote (its version above ours, a table we do not know) is refused by
 * every daemon with a message naming both versions, and not changed at all. */
static void test_newer_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const daemon_case *dc = &cases[i];
        uint8_t before[crypto_hash_sha256_BYTES], after[crypto_hash_sha256_BYTES];
        char why[WHY], want[96], extra[128];
        size_t n = 0;
        const char *const *m = dc->migrations(&n);
        void *h = NULL;
        fixture f;

        fx_open(&f, dc->file);
        snprintf(extra, sizeof(extra),
                 "CREATE TABLE from_the_future (x); INSERT INTO from_the_future VALUES (1);"
                 "PRAGMA user_version = %zu;",
                 n + 1);
        build_at(f.path, m, n, NULL, extra);
        file_hash(before, f.path);
        assert_int_not_equal(dc->open(&h, f.path, why, sizeof(why)), OS_OK);
        assert_null(h);
        /* (before raw_int: a read-only connection leaves -wal and -shm files behind) */
        assert_int_equal(count_named(f.dir, "-wal"), 0);
        snprintf(want, sizeof(want), "version %zu is newer than this program's %zu", n + 1, n);
        if (strstr(why, want) == NULL)
            fail_msg("%s: the refusal does not say \"%s\": %s", dc->file, want, why);
        file_hash(after, f.path);
        assert_memory_equal(before, after, sizeof(before));
        assert_int_equal(raw_int(f.path, "PRAGMA user_version"), (int64_t)(n + 1));
        assert_int_equal(raw_int(f.path, "SELECT count(*) FROM from_the_future"), 1);
        assert_int_equal(count_named(f.dir, ".bak"), 0);
        fx_close(&f);
    }
}

/* The last migration fails (an object with the name it creates is already there): the daemon does
 * not start on the file, and the file keeps its version, its rows and its exact bytes. */
static void test_failed_upgrade_untouched(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const daemon_case *dc = &cases[i];
        uint8_t before[crypto_hash_sha256_BYTES], after[crypto_hash_sha256_BYTES];
        char why[WHY];
        size_t n = 0;
        const char *const *m = dc->migrations(&n);
        void *h = NULL;
        fixture f;

        fx_open(&f, dc->file);
        build_at(f.path, m, n - 1, dc->seeds[n - 1], dc->sabotage);
        file_hash(before, f.path);
        assert_int_not_equal(dc->open(&h, f.path, why, sizeof(why)), OS_OK);
        assert_null(h);
        if (strstr(why, "failed") == NULL || strstr(why, "unchanged") == NULL)
            fail_msg("%s: the error does not say the migration failed and nothing changed: %s",
                     dc->file, why);
        assert_int_equal(count_named(f.dir, "-wal"), 0);
        file_hash(after, f.path);
        assert_memory_equal(before, after, sizeof(before));
        assert_int_equal(raw_int(f.path, "PRAGMA user_version"), (int64_t)(n - 1));
        fx_close(&f);
    }
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_upgrades),
        cmocka_unit_test(test_seller_upgrades),
        cmocka_unit_test(test_buyer_upgrades),
        cmocka_unit_test(test_newer_refused),
        cmocka_unit_test(test_failed_upgrade_untouched),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
