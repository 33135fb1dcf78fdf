/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-sim: a whole OpenSeed market in one process, from the public SDK: a local anvil chain,
 * one registry, N sellers on the built-in echo upstream with varied prices, latencies and failure
 * rates, and M buyers replaying seeded request mixes through their gateways for a while. Then it
 * collects every node's books and the chain, reconciles the money exactly, and reports traffic
 * share, revenue, spend, failovers and latency, as tables on stdout and (--out) as JSON.
 * --plan prints the seeded plan and starts nothing. Exit status: 0 when every check holds, 1 when
 * one fails or the run could not be made (the results are still written when there are any), 2
 * for a bad command line.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/config.h"
#include "openseed/hex.h"
#include "openseed/init.h"

#include "sim.h"

typedef struct sim_flags {
    uint64_t sellers, buyers, duration, seed, concurrency;
    int route;
    bool plan, keep;
    char *out, *dir, *anvil, *contracts;
    os_log_level log_level;
} sim_flags;

static const char *const routes[] = {"best", "weighted", NULL};

static const os_cfg_entry entries[] = {
    {.name = "sellers",
     .type = OS_CFG_U64,
     .offset = offsetof(sim_flags, sellers),
     .dflt = "20",
     .min = 1,
     .max = SIM_MAX_SELLERS,
     .meta = "N",
     .help = "sellers on the echo upstream"},
    {.name = "buyers",
     .type = OS_CFG_U64,
     .offset = offsetof(sim_flags, buyers),
     .dflt = "5",
     .min = 1,
     .max = SIM_MAX_BUYERS,
     .meta = "M",
     .help = "buyers replaying request mixes"},
    {.name = "duration",
     .type = OS_CFG_DURATION,
     .offset = offsetof(sim_flags, duration),
     .dflt = "30",
     .min = 1,
     .max = SIM_MAX_DURATION_S,
     .help = "how long the clients send requests (seconds, or 2m)"},
    {.name = "seed",
     .type = OS_CFG_U64,
     .offset = offsetof(sim_flags, seed),
     .dflt = "1",
     .help = "the seed every random choice of the plan is drawn from"},
    {.name = "concurrency",
     .type = OS_CFG_U64,
     .offset = offsetof(sim_flags, concurrency),
     .dflt = "2",
     .min = 1,
     .max = SIM_MAX_CONCURRENCY,
     .meta = "C",
     .help = "client workers per buyer"},
    {.name = "route",
     .type = OS_CFG_ENUM,
     .offset = offsetof(sim_flags, route),
     .dflt = "weighted",
     .choices = routes,
     .help = "the buyers' routing policy"},
    {.name = "plan",
     .type = OS_CFG_BOOL,
     .offset = offsetof(sim_flags, plan),
     .dflt = "false",
     .help = "print the plan as canonical JSON and exit without starting anything"},
    {.name = "out",
     .type = OS_CFG_PATH,
     .offset = offsetof(sim_flags, out),
     .meta = "FILE",
     .help = "write the results as JSON to FILE"},
    {.name = "dir",
     .type = OS_CFG_PATH,
     .offset = offsetof(sim_flags, dir),
     .meta = "DIR",
     .help = "keep the nodes' state in DIR (new or empty); default a temporary directory"},
    {.name = "keep",
     .type = OS_CFG_BOOL,
     .offset = offsetof(sim_flags, keep),
     .dflt = "false",
     .help = "keep the temporary directory at the end"},
    {.name = "anvil",
     .type = OS_CFG_PATH,
     .offset = offsetof(sim_flags, anvil),
     .meta = "PATH",
     .help = "the anvil binary (default: $OPENSEED_ANVIL, then the npm package's)"},
    {.name = "contracts",
     .type = OS_CFG_PATH,
     .offset = offsetof(sim_flags, contracts),
     .meta = "DIR",
     .help = "the compiled contracts (default: $OPENSEED_CONTRACTS, contracts/out)"},
    {.name = "log_level",
     .type = OS_CFG_LOG_LEVEL,
     .offset = offsetof(sim_flags, log_level),
     .dflt = "warn",
     .help = "the nodes' log level (the sim's own progress always shows)"},
};

static const os_cfg_program program = {
    .name = "openseed-sim",
    .version = OPENSEED_VERSION,
    .summary = "Simulates a registry, sellers and buyers on a local chain, and reconciles the "
               "money exactly.",
    .entries = entries,
    .n_entries = sizeof(entries) / sizeof(entries[0]),
    .flags = OS_CFG_PROG_NO_FILE,
};

/* Writes j to path through a temporary file, so a reader never sees half of it. */
static int write_json(const char *path, const json_t *j)
{
    char tmp[SIM_PATH_MAX + 8];
    if (strlen(path) >= SIM_PATH_MAX) {
        sim_say("--out: path too long");
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (json_dump_file(j, tmp, JSON_INDENT(1)) != 0 || rename(tmp, path) != 0) {
        sim_say("cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

static int print_plan(const sim_plan *pl)
{
    char *text = NULL;
    size_t len = 0;
    uint8_t digest[32];
    char hex[OS_HEX_LEN(32)];
    if (sim_plan_text(&text, &len, digest, pl) != OS_OK ||
        os_hex_encode(hex, sizeof(hex), digest, 32, 1) != OS_OK) {
        free(text);
        sim_say("out of memory");
        return 1;
    }
    fwrite(text, 1, len, stdout);
    fputc('\n', stdout);
    fprintf(stderr, "plan_digest %s\n", hex);
    free(text);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* SIGINT and SIGTERM end the run early (sim_options.stop) rather than the process, so the books
 * are still read, reconciled and reported and the state directory removed; SIGUSR1 is how main
 * ends this thread. The signals are blocked in every thread (the mask is set before any starts),
 * so only this one takes them. */
typedef struct sig_watch {
    sigset_t set;
    atomic_bool stop;
    pthread_t th;
    bool running;
} sig_watch;

static void *sig_main(void *arg)
{
    sig_watch *w = arg;
    int sig = 0;

    while (sigwait(&w->set, &sig) == 0 && sig != SIGUSR1) {
        if (!atomic_exchange(&w->stop, true))
            sim_say("signal %d: ending the run early; the books are still read and reconciled",
                    sig);
    }
    return NULL;
}

static void sig_watch_start(sig_watch *w)
{
    sigemptyset(&w->set);
    sigaddset(&w->set, SIGINT);
    sigaddset(&w->set, SIGTERM);
    sigaddset(&w->set, SIGUSR1);
    atomic_init(&w->stop, false);
    w->running = false;
    if (pthread_sigmask(SIG_BLOCK, &w->set, NULL) != 0)
        return; /* the default actions stay: a signal ends the process, as in any program */
    w->running = pthread_create(&w->th, NULL, sig_main, w) == 0;
    if (!w->running)
        (void)pthread_sigmask(SIG_UNBLOCK, &w->set, NULL);
}

static void sig_watch_stop(sig_watch *w)
{
    if (w->running && pthread_kill(w->th, SIGUSR1) == 0)
        pthread_join(w->th, NULL);
    w->running = false;
}

/* Collects, reconciles and reports a run whose clients have finished. */
static int finish(sim *s, const char *out_path)
{
    char *rec_text = NULL;
    size_t rec_len = 0;
    json_t *results = NULL;
    int st = 1;

    FILE *rec = open_memstream(&rec_text, &rec_len);
    if (rec == NULL)
        return 1;
    os_err rc = sim_collect(s);
    if (rc == OS_OK)
        rc = sim_reconcile(s, rec);
    fclose(rec);
    if (rc == OS_OK)
        rc = sim_report(s, stdout, &results);
    if (rec_text != NULL)
        fputs(rec_text, stdout);
    fflush(stdout);
    if (rc == OS_OK && out_path != NULL && write_json(out_path, results) != 0)
        rc = OS_ERR_IO;
    if (rc == OS_OK)
        st = s->n_failed == 0 ? 0 : 1;
    else
        sim_say("the report could not be made: %s", os_strerror(rc));
    json_decref(results);
    free(rec_text);
    return st;
}

int main(int argc, char **argv)
{
    sim_flags f;
    os_cfg_report rep = {0};
    sim_plan plan;
    sim s;
    int st;

    os_err rc = os_cfg_load(&program, &f, &rep, argc, argv);
    st = os_cfg_dispatch(&program, &f, &rep, rc, stdout, stderr);
    os_cfg_report_free(&rep);
    if (st >= 0) {
        os_cfg_free(&program, &f);
        return st == 0 ? 0 : 2;
    }
    sim_params p = {.seed = f.seed,
                    .n_sellers = (unsigned)f.sellers,
                    .n_buyers = (unsigned)f.buyers,
                    .duration_s = (unsigned)f.duration,
                    .concurrency = (unsigned)f.concurrency,
                    .weighted = f.route == 1};
    if (sim_plan_make(&plan, &p) != OS_OK) {
        sim_say("cannot make the plan");
        os_cfg_free(&program, &f);
        return 2;
    }
    if (f.plan) {
        st = print_plan(&plan);
        sim_plan_free(&plan);
        os_cfg_free(&program, &f);
        return st;
    }
    if (os_init() != OS_OK) {
        sim_say("cannot initialise libsodium and curl");
        sim_plan_free(&plan);
        os_cfg_free(&program, &f);
        return 1;
    }
    /* a node writing to a peer that hung up must get EPIPE, not die */
    signal(SIGPIPE, SIG_IGN);
    sig_watch sw;
    sig_watch_start(&sw);

    sim_options o = {.dir = f.dir,
                     .keep = f.keep,
                     .anvil = f.anvil,
                     .contracts = f.contracts,
                     .node_level = f.log_level,
                     .stop = &sw.stop};
    rc = sim_init(&s, &plan, &o);
    if (rc == OS_OK)
        rc = sim_start(&s);
    if (rc != OS_OK && s.bad_dir)
        st = 2;
    else if (rc != OS_OK)
        st = 1;
    else if ((rc = sim_drive(&s)) != OS_OK)
        st = 1;
    else
        st = finish(&s, f.out);
    if (rc != OS_OK)
        sim_say("the simulation stopped: %s", os_strerror(rc));
    sim_free(&s);
    sig_watch_stop(&sw);
    os_cfg_free(&program, &f);
    return st;
}
