/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-sim as a program. The plan: `--plan --seed 7` prints the same bytes twice and other
 * bytes for seed 8; its 20 sellers use each level of each factor 5 times; bad command lines exit
 * 2. The run: 20 sellers and 5 buyers for 30 s on a real anvil chain, kept in a directory; it must
 * exit 0, and then this test recomputes the money from the sources rather than trusting the sim's
 * checks: every seller.db and buyer.db opened read-only with SQLite, every channel's consumption
 * equal at both ends, each buyer's request costs equal to its channels' consumption, the claims
 * the sellers recorded equal to the results' claimed, and the results' totals equal to those sums.
 * The traffic claims are recomputed from the buyers' ledgers too (their ok requests per seller):
 * the cheapest price level gets a larger mean share than the dearest, the reliable sellers more
 * than the 30%-failing ones, and Spearman's rank correlation of share with price and with failure
 * rate is clearly negative (thresholds: docs/sdk.md, "Simulation").
 */
#define _GNU_SOURCE 1 /* nftw's FTW_DEPTH / FTW_PHYS */
#include "testutil.h"

#include "run_prog.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "openseed/hex.h"
#include "openseed/money.h"

#define SELLERS 20
#define BUYERS 5
#define RUN_TIMEOUT_S 240
/* What every run so far showed with room to spare (docs/sdk.md lists the runs): */
#define MAX_SPEARMAN_PRICE (-0.5)
#define MAX_SPEARMAN_FAIL (-0.3)

static char tmp[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    const char *b = getenv("OPENSEED_BUILD_DIR");
    if (b == NULL || strlen(b) >= sizeof(build_dir)) {
        fprintf(stderr, "OPENSEED_BUILD_DIR is not set\n");
        return -1;
    }
    snprintf(build_dir, sizeof(build_dir), "%s", b);
    snprintf(tmp, sizeof(tmp), "/tmp/openseed-test-sim-XXXXXX");
    return mkdtemp(tmp) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (tmp[0] != '\0')
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- the plan ------------------------------------------------------------------------------- */

static void test_plan_is_a_function_of_the_seed(void **state)
{
    (void)state;
    result a = run("openseed-sim", (const char *const[]){"--plan", "--seed", "7", NULL});
    result b = run("openseed-sim", (const char *const[]){"--plan", "--seed", "7", NULL});
    result c = run("openseed-sim", (const char *const[]){"--plan", "--seed", "8", NULL});
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_int_equal(c.status, 0);
    assert_true(strlen(a.out) > 100);
    assert_string_equal(a.out, b.out);
    assert_true(strcmp(a.out, c.out) != 0);

    json_t *j = json_loads(a.out, 0, NULL);
    assert_non_null(j);
    json_t *sellers = json_object_get(j, "sellers");
    assert_int_equal(json_array_size(sellers), SELLERS);
    assert_int_equal(json_array_size(json_object_get(j, "buyers")), BUYERS);
    assert_string_equal(json_string_value(json_object_get(j, "seed")), "7");
    assert_string_equal(json_string_value(json_object_get(j, "route")), "weighted");
    static const char *const factors[3] = {"price_level", "latency_level", "fail_level"};
    for (int f = 0; f < 3; f++) {
        int per_level[4] = {0, 0, 0, 0};
        json_t *s;
        size_t i;
        json_array_foreach(sellers, i, s)
        {
            json_int_t l = json_integer_value(json_object_get(s, factors[f]));
            assert_true(l >= 0 && l < 4);
            per_level[l]++;
        }
        for (int l = 0; l < 4; l++)
            assert_int_equal(per_level[l], SELLERS / 4);
    }
    /* the levels are the documented ones, and a failing seller is given its own seed */
    json_t *s;
    size_t i;
    json_array_foreach(sellers, i, s)
    {
        static const json_int_t fail_ppm[4] = {0, 20000, 100000, 300000};
        static const json_int_t latency[4] = {20, 60, 150, 300};
        json_int_t fl = json_integer_value(json_object_get(s, "fail_level"));
        json_int_t ll = json_integer_value(json_object_get(s, "latency_level"));
        assert_int_equal(json_integer_value(json_object_get(s, "fail_ppm")), fail_ppm[fl]);
        assert_int_equal(json_integer_value(json_object_get(s, "latency_ms")), latency[ll]);
        assert_non_null(json_string_value(json_object_get(s, "fail_seed")));
    }
    /* the three factors are shuffled independently: not all in one order */
    int same = 0;
    json_array_foreach(sellers, i, s)
    {
        same += json_integer_value(json_object_get(s, "price_level")) ==
                json_integer_value(json_object_get(s, "fail_level"));
    }
    assert_true(same < SELLERS);
    json_decref(j);

    /* 6 sellers: levels used 2, 2, 1, 1 times */
    result d = run("openseed-sim", (const char *const[]){"--plan", "--sellers", "6", NULL});
    assert_int_equal(d.status, 0);
    j = json_loads(d.out, 0, NULL);
    assert_non_null(j);
    int per_level[4] = {0, 0, 0, 0};
    json_array_foreach(json_object_get(j, "sellers"), i, s)
    {
        per_level[json_integer_value(json_object_get(s, "price_level")) & 3]++;
    }
    assert_int_equal(per_level[0], 2);
    assert_int_equal(per_level[1], 2);
    assert_int_equal(per_level[2], 1);
    assert_int_equal(per_level[3], 1);
    json_decref(j);
    result_free(&a);
    result_free(&b);
    result_free(&c);
    result_free(&d);
}

static void test_bad_command_lines_exit_2(void **state)
{
    (void)state;
    const char *const *const bad[] = {
        (const char *const[]){"--sellers", "0", "--plan", NULL},
        (const char *const[]){"--sellers", "201", "--plan", NULL},
        (const char *const[]){"--route", "cheapest", "--plan", NULL},
        (const char *const[]){"--seed", "-1", "--plan", NULL},
        (const char *const[]){"--no-such-flag", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        result r = run("openseed-sim", bad[i]);
        if (r.status != 2)
            fail_msg("case %zu: exit %d, wanted 2\nstderr: %s", i, r.status, r.err);
        assert_string_equal(r.out, "");
        result_free(&r);
    }
    /* a state directory holding anything is refused before a node starts */
    char dir[300], file[340];
    snprintf(dir, sizeof(dir), "%s/full", tmp);
    snprintf(file, sizeof(file), "%s/old", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    result r = run("openseed-sim", (const char *const[]){"--dir", dir, "--duration", "1", NULL});
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "not empty"));
    result_free(&r);
}

/* ---- the run -------------------------------------------------------------------------------- */

/* Whether the file at path contains needle (a small log). */
static bool file_has(const char *path, const char *needle)
{
    char buf[16384];
    size_t n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Runs openseed-sim with args, its output in files under tmp; its exit status. With
 * interrupt_s > 0, SIGINT is sent once, that many seconds after the clients started. */
static int run_long(const char *const *args, const char *out_path, const char *err_path,
                    int interrupt_s)
{
    time_t interrupt_at = 0;
    bool interrupted = false;
    char path[1200];
    char *argv[40];
    int argc = 0;
    posix_spawn_file_actions_t fa;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/openseed-sim", build_dir);
    argv[argc++] = path;
    for (size_t i = 0; args[i] != NULL && argc < 39; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot run %s: %s", path, strerror(rc));
    time_t deadline = time(NULL) + RUN_TIMEOUT_S;
    for (;;) {
        int ws;
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid)
            return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        assert_true(w == 0 || errno == EINTR);
        if (interrupt_s > 0 && !interrupted) {
            if (interrupt_at == 0 && file_has(err_path, "openseed-sim: driving "))
                interrupt_at = time(NULL) + interrupt_s;
            if (interrupt_at != 0 && time(NULL) >= interrupt_at) {
                assert_int_equal(kill(pid, SIGINT), 0);
                interrupted = true;
            }
        }
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &ws, 0);
            fail_msg("openseed-sim did not finish within %d s", RUN_TIMEOUT_S);
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000000L};
        nanosleep(&ts, NULL);
    }
}

static void show_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;
    if (f == NULL)
        return;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

static uint64_t money_of(const json_t *v)
{
    uint64_t x = 0;
    if (os_money_parse_json(&x, v) != OS_OK)
        fail_msg("not an amount");
    return x;
}

typedef struct chan_row {
    uint8_t id[32];
    uint64_t consumed, deposit;
    int seen; /* matched with the other end */
} chan_row;

static sqlite3 *open_ro(const char *dir, const char *name)
{
    char p[700];
    sqlite3 *db = NULL;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_msg("cannot open %s: %s", p, db != NULL ? sqlite3_errmsg(db) : "no memory");
    return db;
}

/* The one integer a query returns (amounts are stored as the 64-bit pattern). */
static uint64_t one_u64(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    uint64_t v = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Appends every channel of db (id, consumed, deposit) to *rows. */
static void read_channels(sqlite3 *db, chan_row **rows, size_t *n)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT id, consumed, deposit FROM channels", -1, &st, NULL),
        SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        chan_row *g = realloc(*rows, (*n + 1) * sizeof(*g));
        assert_non_null(g);
        *rows = g;
        assert_int_equal(sqlite3_column_bytes(st, 0), 32);
        memcpy(g[*n].id, sqlite3_column_blob(st, 0), 32);
        g[*n].consumed = (uint64_t)sqlite3_column_int64(st, 1);
        g[*n].deposit = (uint64_t)sqlite3_column_int64(st, 2);
        g[*n].seen = 0;
        (*n)++;
    }
    sqlite3_finalize(st);
}

/* Ranks with ties at their mean, then Pearson on the ranks. */
static double spearman(const double *x, const double *y, size_t n)
{
    double rx[SELLERS], ry[SELLERS], mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    assert_true(n <= SELLERS);
    for (size_t i = 0; i < n; i++) {
        double bx = 0, ex = 0, by = 0, ey = 0;
        for (size_t j = 0; j < n; j++) {
            bx += x[j] < x[i];
            ex += x[j] == x[i];
            by += y[j] < y[i];
            ey += y[j] == y[i];
        }
        rx[i] = bx + (ex + 1) / 2;
        ry[i] = by + (ey + 1) / 2;
        mx += rx[i] / (double)n;
        my += ry[i] / (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}

static void test_run_reconciles_and_routes_by_price_and_reliability(void **state)
{
    (void)state;
    char dir[300], out[320], err[320], res[320];
    snprintf(dir, sizeof(dir), "%s/run", tmp);
    snprintf(out, sizeof(out), "%s/stdout.txt", tmp);
    snprintf(err, sizeof(err), "%s/stderr.txt", tmp);
    snprintf(res, sizeof(res), "%s/results.json", tmp);

    time_t t0 = time(NULL);
    int st =
        run_long((const char *const[]){"--sellers", "20", "--buyers", "5", "--duration", "30",
                                       "--seed", "7", "--dir", dir, "--keep", "--out", res, NULL},
                 out, err, 0);
    fprintf(stderr, "openseed-sim ran %lld s, exit %d\n", (long long)(time(NULL) - t0), st);
    if (st != 0) {
        show_file(out);
        show_file(err);
        fail_msg("openseed-sim exited %d", st);
    }
    json_t *r = json_load_file(res, 0, NULL);
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(json_object_get(r, "reconciliation"), "ok")));
    json_t *sellers = json_object_get(r, "sellers"), *buyers = json_object_get(r, "buyers");
    json_t *totals = json_object_get(r, "totals");
    assert_int_equal(json_array_size(sellers), SELLERS);
    assert_int_equal(json_array_size(buyers), BUYERS);

    /* the sellers' books */
    chan_row *srows = NULL, *brows = NULL;
    size_t ns = 0, nb = 0;
    uint8_t node[SELLERS][20];
    uint64_t s_claimed = 0;
    json_t *e;
    size_t i;
    json_array_foreach(sellers, i, e)
    {
        const char *d = json_string_value(json_object_get(e, "data_dir"));
        assert_non_null(d);
        assert_int_equal(
            os_hex_decode_exact(node[i], 20, json_string_value(json_object_get(e, "node"))), OS_OK);
        sqlite3 *db = open_ro(d, "seller.db");
        read_channels(db, &srows, &ns);
        s_claimed += one_u64(db, "SELECT COALESCE(SUM(amount), 0) FROM settlements"
                                 " WHERE status = 'confirmed'");
        sqlite3_close(db);
    }

    /* the buyers' books, and the ok requests per seller from their ledgers */
    uint64_t ok_at[SELLERS] = {0}, total_ok = 0, b_costs = 0, b_adjust = 0, b_deposits = 0;
    json_array_foreach(buyers, i, e)
    {
        const char *d = json_string_value(json_object_get(e, "data_dir"));
        assert_non_null(d);
        sqlite3 *db = open_ro(d, "buyer.db");
        size_t before = nb;
        read_channels(db, &brows, &nb);
        uint64_t consumed = 0;
        for (size_t k = before; k < nb; k++)
            consumed += brows[k].consumed;
        uint64_t costs = one_u64(db, "SELECT COALESCE(SUM(cost), 0) FROM requests");
        uint64_t adjust = one_u64(db, "SELECT COALESCE(SUM(amount), 0) FROM adjustments");
        /* each buyer's charges (and adjustments) are its channels' consumption */
        assert_int_equal(costs + adjust, consumed);
        b_costs += costs;
        b_adjust += adjust;
        b_deposits += one_u64(db, "SELECT COALESCE(SUM(amount), 0) FROM deposits");
        sqlite3_stmt *q = NULL;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT seller, COUNT(*) FROM requests"
                                            " WHERE outcome = 'ok' GROUP BY seller",
                                            -1, &q, NULL),
                         SQLITE_OK);
        while (sqlite3_step(q) == SQLITE_ROW) {
            int who = -1;
            assert_int_equal(sqlite3_column_bytes(q, 0), 20);
            for (int k = 0; k < SELLERS; k++)
                if (memcmp(sqlite3_column_blob(q, 0), node[k], 20) == 0)
                    who = k;
            assert_true(who >= 0);
            ok_at[who] += (uint64_t)sqlite3_column_int64(q, 1);
            total_ok += (uint64_t)sqlite3_column_int64(q, 1);
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
    }

    /* per channel: the buyer's consumed is the seller's, and so is the deposit */
    assert_true(nb > 0);
    assert_int_equal(nb, ns);
    uint64_t b_consumed = 0, s_consumed = 0;
    for (size_t k = 0; k < nb; k++) {
        for (size_t m = 0; m < ns; m++) {
            if (memcmp(brows[k].id, srows[m].id, 32) != 0)
                continue;
            if (brows[k].consumed != srows[m].consumed || brows[k].deposit != srows[m].deposit)
                fail_msg("channel %zu: buyer consumed %" PRIu64 " deposit %" PRIu64
                         ", seller consumed %" PRIu64 " deposit %" PRIu64,
                         k, brows[k].consumed, brows[k].deposit, srows[m].consumed,
                         srows[m].deposit);
            brows[k].seen++;
            srows[m].seen++;
        }
        assert_int_equal(brows[k].seen, 1);
        b_consumed += brows[k].consumed;
    }
    for (size_t m = 0; m < ns; m++) {
        assert_int_equal(srows[m].seen, 1);
        s_consumed += srows[m].consumed;
    }
    assert_int_equal(b_consumed, s_consumed);
    assert_int_equal(b_costs + b_adjust, b_consumed);

    /* the results' totals are those sums */
    assert_int_equal(money_of(json_object_get(totals, "spend")), b_consumed);
    assert_int_equal(money_of(json_object_get(totals, "earned")), s_consumed);
    assert_int_equal(money_of(json_object_get(totals, "deposits")), b_deposits);
    assert_int_equal(money_of(json_object_get(totals, "claimed")), s_claimed);
    assert_int_equal(json_integer_value(json_object_get(totals, "channels")), (json_int_t)nb);
    assert_true(money_of(json_object_get(totals, "escrow_balance")) == b_deposits - s_claimed);
    fprintf(stderr,
            "%zu channels, spend %" PRIu64 ", deposits %" PRIu64 ", claimed %" PRIu64 ", %" PRIu64
            " ok requests\n",
            nb, b_consumed, b_deposits, s_claimed, total_ok);

    /* traffic, from the ledgers: mean share per level, Spearman over sellers */
    assert_true(total_ok > 200);
    double share[SELLERS], price[SELLERS], fail[SELLERS];
    double mean_price[4] = {0}, mean_fail[4] = {0};
    json_array_foreach(json_object_get(json_object_get(r, "plan"), "sellers"), i, e)
    {
        assert_true(i < SELLERS);
        json_int_t pl = json_integer_value(json_object_get(e, "price_level"));
        json_int_t fl = json_integer_value(json_object_get(e, "fail_level"));
        share[i] = 100.0 * (double)ok_at[i] / (double)total_ok;
        price[i] = (double)pl;
        fail[i] = (double)json_integer_value(json_object_get(e, "fail_ppm"));
        mean_price[pl & 3] += share[i] / (SELLERS / 4);
        mean_fail[fl & 3] += share[i] / (SELLERS / 4);
    }
    double rp = spearman(share, price, SELLERS), rf = spearman(share, fail, SELLERS);
    fprintf(stderr,
            "mean share by price level %.2f %.2f %.2f %.2f, by failure level %.2f %.2f %.2f "
            "%.2f; Spearman price %.3f, fail %.3f\n",
            mean_price[0], mean_price[1], mean_price[2], mean_price[3], mean_fail[0], mean_fail[1],
            mean_fail[2], mean_fail[3], rp, rf);
    assert_true(mean_price[0] > mean_price[3]);
    assert_true(mean_fail[0] > mean_fail[3]);
    assert_true(rp < MAX_SPEARMAN_PRICE);
    assert_true(rf < MAX_SPEARMAN_FAIL);
    /* the sim's own figures agree with the ledgers' */
    json_t *tiers = json_object_get(r, "tiers");
    assert_true(fabs(json_real_value(json_object_get(tiers, "spearman_price")) - rp) < 0.001);
    assert_true(fabs(json_real_value(json_object_get(tiers, "spearman_fail")) - rf) < 0.001);

    free(srows);
    free(brows);
    json_decref(r);
}

/* SIGINT while the clients run ends the run early, not the process: the requests in flight
 * finish, the books are read, settled and reconciled, the results written, the temporary state
 * directory removed, and the exit status is 0. */
static void test_sigint_ends_the_run_early_and_reconciles(void **state)
{
    char out[320], err[320], res[320];
    (void)state;

    snprintf(out, sizeof(out), "%s/int.out", tmp);
    snprintf(err, sizeof(err), "%s/int.err", tmp);
    snprintf(res, sizeof(res), "%s/int.json", tmp);
    int st = run_long((const char *const[]){"--sellers", "4", "--buyers", "1", "--duration", "600",
                                            "--seed", "5", "--out", res, NULL},
                      out, err, 3);
    if (st != 0) {
        show_file(out);
        show_file(err);
    }
    assert_int_equal(st, 0);
    assert_true(file_has(err, "ending the run early"));
    json_error_t je;
    json_t *r = json_load_file(res, 0, &je);
    assert_non_null(r);
    double ran = json_number_value(json_object_get(r, "duration_s"));
    fprintf(stderr, "interrupted run: clients ran %.1f s\n", ran);
    assert_true(ran >= 1.5 && ran < 60.0); /* 3 s, counted in whole seconds from a poll */
    json_t *rec = json_object_get(r, "reconciliation");
    assert_true(json_is_true(json_object_get(rec, "ok")));
    assert_int_equal(json_integer_value(json_object_get(rec, "failed")), 0);
    assert_true(json_array_size(json_object_get(rec, "checks")) > 10);
    assert_true(json_integer_value(json_object_get(json_object_get(r, "totals"), "ok")) > 0);
    const char *dir = json_string_value(json_object_get(r, "dir"));
    assert_non_null(dir);
    struct stat sb;
    assert_int_not_equal(stat(dir, &sb), 0); /* the temporary directory is gone */
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_is_a_function_of_the_seed),
        cmocka_unit_test(test_bad_command_lines_exit_2),
        cmocka_unit_test(test_run_reconciles_and_routes_by_price_and_reliability),
        cmocka_unit_test(test_sigint_ends_the_run_early_and_reconciles),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
