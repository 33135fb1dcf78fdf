/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulation's nodes, made only through the public SDK: a devchain (anvil with the committed
 * contracts), one registry node, the plan's sellers on the built-in echo upstream (each with its
 * latency and failure schedule, and its offering built with the Offering builder at its prices),
 * and the buyers with funded wallets. Start-up waits until the registry lists every seller,
 * verified (os_network_peers), so the first request already sees the whole market. Teardown stops
 * the buyers first (they drain their requests), then the sellers, the registry and the chain.
 */
#define _GNU_SOURCE 1 /* nftw's FTW_DEPTH and FTW_PHYS */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include "openseed/ct.h"
#include "openseed/network.h"
#include "openseed/offering.h"
#include "openseed/secp.h"

#include "sim.h"

/* The registry's pace: heartbeats every 2 s, scores recomputed every second. */
#define REG_HEARTBEAT_MS 2000
#define REG_RESCORE_MS 1000
/* No seller settles during the run: everything is claimed by os_seller_node_settle at the end. */
#define NO_SETTLE_THRESHOLD (UINT64_C(1000000) * OS_USDC_UNIT)
#define NO_SETTLE_INTERVAL_MS (UINT64_C(24) * 3600 * 1000)
/* How long start-up waits for the registry to list every seller. */
#define LISTED_TIMEOUT_MS 60000

void sim_say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "openseed-sim: %s\n", line);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* True when dir exists and holds nothing. */
static bool dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool empty = true;
    if (d == NULL)
        return false;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

static os_err logger_for(os_logger *lg, const char *component, const char *name, os_log_level level)
{
    os_logger_init(lg, component, level);
    return os_logger_add_context(lg, "sim_node", name);
}

os_err sim_init(sim *s, sim_plan *plan, const sim_options *o)
{
    memset(s, 0, sizeof(*s));
    s->plan = *plan;
    memset(plan, 0, sizeof(*plan));
    s->o = *o;
    s->sellers = calloc(s->plan.p.n_sellers, sizeof(*s->sellers));
    s->buyers = calloc(s->plan.p.n_buyers, sizeof(*s->buyers));
    if (s->sellers == NULL || s->buyers == NULL)
        return OS_ERR_NOMEM;
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
        atomic_init(&s->buyers[b].next, 0);
        if (pthread_mutex_init(&s->buyers[b].mu, NULL) != 0)
            return OS_ERR_INTERNAL;
    }
    os_http_client_config hc = {.timeout_ms = 60000, .max_body = 256u << 20, .pool_size = 4};
    return os_http_client_new(&s->http, &hc);
}

int sim_seller_index(const sim *s, const uint8_t addr[20])
{
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++)
        if (memcmp(s->sellers[i].addr, addr, 20) == 0)
            return (int)i;
    return -1;
}

static os_err make_dir(sim *s)
{
    if (s->o.dir != NULL) {
        if (strlen(s->o.dir) >= sizeof(s->dir)) {
            sim_say("--dir: path too long");
            s->bad_dir = true;
            return OS_ERR_INVALID;
        }
        snprintf(s->dir, sizeof(s->dir), "%s", s->o.dir);
        if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
            sim_say("cannot create %s: %s", s->dir, strerror(errno));
            return OS_ERR_IO;
        }
        /* old databases would carry channels of another chain into this run */
        if (!dir_empty(s->dir)) {
            sim_say("--dir %s is not empty: give a new or empty directory", s->dir);
            s->bad_dir = true;
            return OS_ERR_EXISTS;
        }
        return OS_OK;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof(s->dir), "%s/openseed-sim-XXXXXX",
             tmp != NULL && tmp[0] != '\0' && strlen(tmp) < 256 ? tmp : "/tmp");
    if (mkdtemp(s->dir) == NULL) {
        sim_say("cannot create a temporary directory: %s", strerror(errno));
        return OS_ERR_IO;
    }
    s->dir_made = true;
    return OS_OK;
}

static os_err start_registry(sim *s)
{
    os_registry_node_config c;
    char dir[SIM_PATH_MAX + 16];
    os_err rc;

    snprintf(dir, sizeof(dir), "%s/registry", s->dir);
    os_registry_node_config_init(&c);
    c.data_dir = dir;
    c.chain_id = os_devchain_chain_id(s->chain);
    c.escrow = s->escrow;
    c.rpc = s->rpc;
    c.heartbeat_interval_ms = REG_HEARTBEAT_MS;
    c.rescore_interval_ms = REG_RESCORE_MS;
    c.rate_per_s = 0;
    c.log = &s->reg_log;
    if ((rc = os_registry_node_new(&s->reg, &c)) != OS_OK ||
        (rc = os_registry_node_start(s->reg)) != OS_OK ||
        (rc = os_registry_node_url(s->reg, s->reg_url, sizeof(s->reg_url))) != OS_OK) {
        sim_say("the registry did not start: %s", os_strerror(rc));
        return rc;
    }
    return OS_OK;
}

/* The echo offering at this seller's prices, through the Offering builder. */
static os_err seller_offering(os_offering *out, const sim_seller_plan *sp)
{
    os_offering_builder b;
    os_offering_builder_init(&b);
    if (os_offering_service(&b, "echo") != OS_OK || os_offering_model(&b, "echo-1") != OS_OK ||
        os_offering_api(&b, "openai.chat") != OS_OK ||
        os_offering_api(&b, "openai.embeddings") != OS_OK ||
        os_offering_api(&b, "anthropic.messages") != OS_OK ||
        os_offering_price(&b, sp->price.input, sp->price.output, sp->price.cached) != OS_OK ||
        os_offering_max_output(&b, 1024) != OS_OK || os_offering_build(&b, out) != OS_OK) {
        sim_say("offering: %s", b.error);
        return OS_ERR_INVALID;
    }
    return OS_OK;
}

static os_err start_seller(sim *s, unsigned i)
{
    sim_seller *sl = &s->sellers[i];
    const sim_seller_plan *sp = &s->plan.sellers[i];
    const char *regs[1] = {s->reg_url};
    os_seller_node_config c;
    os_offering off;
    char name[32];
    os_err rc;

    snprintf(name, sizeof(name), "seller%02u", i);
    snprintf(sl->dir, sizeof(sl->dir), "%s/%s", s->dir, name);
    if ((rc = logger_for(&sl->log, "seller", name, s->o.node_level)) != OS_OK ||
        (rc = seller_offering(&off, sp)) != OS_OK)
        return rc;
    os_seller_node_config_init(&c);
    c.admin_listen = "127.0.0.1:0";
    c.data_dir = sl->dir;
    c.registries = regs;
    c.n_registries = 1;
    c.rpc = s->rpc;
    c.chain_id = os_devchain_chain_id(s->chain);
    memcpy(c.escrow, s->escrow, 20);
    memcpy(c.usdc, s->usdc, 20);
    c.upstream = NULL; /* builtin:echo */
    c.echo.latency_ms = sp->latency_ms;
    c.echo.fail = sp->fail_ppm > 0 ? "500" : NULL;
    c.echo.fail_ppm = sp->fail_ppm;
    c.echo.fail_seed = sp->fail_seed;
    c.offerings = &off;
    c.n_offerings = 1;
    c.settle_threshold = NO_SETTLE_THRESHOLD;
    c.settle_interval_ms = NO_SETTLE_INTERVAL_MS;
    c.log = &sl->log;
    if ((rc = os_seller_node_new(&sl->node, &c)) != OS_OK) {
        sim_say("%s: cannot be created: %s", name, os_strerror(rc));
        return rc;
    }
    os_seller_node_address(sl->node, sl->addr);
    os_eip55_format(sl->addr_hex, sl->addr);
    /* ether for its claims' gas; it holds no USDC until it claims */
    if ((rc = os_devchain_fund(s->chain, sl->addr, SIM_ETH_WEI, 0)) != OS_OK) {
        sim_say("%s: cannot be funded: %s", name, os_strerror(rc));
        return rc;
    }
    if ((rc = os_seller_node_start(sl->node)) != OS_OK) {
        sim_say("%s: did not start: %s", name, os_strerror(rc));
        return rc;
    }
    sl->port = os_seller_node_port(sl->node);
    sl->admin_port = os_seller_node_admin_port(sl->node);
    return OS_OK;
}

/* Waits until the registry lists every seller of the plan, verified. */
static os_err wait_listed(sim *s)
{
    const char *regs[1] = {s->reg_url};
    os_network_config nc = {.registries = regs,
                            .n_registries = 1,
                            .chain_id = os_devchain_chain_id(s->chain),
                            .escrow = s->escrow,
                            .log = &s->reg_log};
    os_network *net = NULL;
    os_err rc = os_network_new(&net, &nc);
    int64_t t0 = mono_ms();
    size_t seen = 0;

    while (rc == OS_OK) {
        os_peer_list l = {0};
        if (os_network_peers(net, &(os_peer_query){.service = "echo"}, &l) == OS_OK) {
            seen = 0;
            for (size_t i = 0; i < l.n; i++)
                if (sim_seller_index(s, l.peers[i].record.node) >= 0)
                    seen++;
            os_peer_list_free(&l);
            if (seen == s->plan.p.n_sellers)
                break;
        }
        if (mono_ms() - t0 > LISTED_TIMEOUT_MS) {
            sim_say("the registry lists %zu of %u sellers after %d s", seen, s->plan.p.n_sellers,
                    LISTED_TIMEOUT_MS / 1000);
            rc = OS_ERR_TIMEOUT;
            break;
        }
        sleep_ms(200);
    }
    os_network_free(net);
    return rc;
}

static os_err start_buyer(sim *s, unsigned b)
{
    sim_buyer *by = &s->buyers[b];
    const char *regs[1] = {s->reg_url};
    os_buyer_node_config c;
    uint8_t priv[32];
    char name[32];
    os_err rc;

    snprintf(name, sizeof(name), "buyer%u", b);
    snprintf(by->dir, sizeof(by->dir), "%s/%s", s->dir, name);
    if ((rc = logger_for(&by->log, "buyer", name, s->o.node_level)) != OS_OK)
        return rc;
    if ((rc = os_devchain_account(s->chain, priv, by->wallet, SIM_ETH_WEI, SIM_WALLET_USDC)) !=
        OS_OK) {
        os_wipe(priv, sizeof(priv));
        sim_say("%s: no funded wallet: %s", name, os_strerror(rc));
        return rc;
    }
    os_buyer_node_config_init(&c);
    c.data_dir = by->dir;
    c.registries = regs;
    c.n_registries = 1;
    c.rpc = s->rpc;
    c.chain_id = os_devchain_chain_id(s->chain);
    memcpy(c.escrow, s->escrow, 20);
    memcpy(c.usdc, s->usdc, 20);
    c.wallet_priv = priv;
    c.deposit = SIM_DEPOSIT;
    c.max_attempts = 3;
    c.route = s->plan.p.weighted ? OS_ROUTE_WEIGHTED : OS_ROUTE_BEST;
    c.route_seed = s->plan.buyers[b].route_seed;
    c.log = &by->log;
    rc = os_buyer_node_new(&by->node, &c);
    os_wipe(priv, sizeof(priv)); /* the node keeps its own copy */
    if (rc != OS_OK) {
        sim_say("%s: cannot be created: %s", name, os_strerror(rc));
        return rc;
    }
    if ((rc = os_devchain_usdc_balance(s->chain, &by->usdc_start, by->wallet)) != OS_OK ||
        (rc = os_buyer_node_start(by->node)) != OS_OK) {
        sim_say("%s: did not start: %s", name, os_strerror(rc));
        return rc;
    }
    by->port = os_buyer_node_port(by->node);
    return OS_OK;
}

os_err sim_start(sim *s)
{
    os_err rc;
    if ((rc = make_dir(s)) != OS_OK)
        return rc;
    if ((rc = logger_for(&s->chain_log, "devchain", "chain", s->o.node_level)) != OS_OK ||
        (rc = logger_for(&s->reg_log, "registry", "registry", s->o.node_level)) != OS_OK)
        return rc;
    sim_say("state in %s", s->dir);

    os_devchain_config dc = {
        .anvil = s->o.anvil, .contracts = s->o.contracts, .log = &s->chain_log};
    if ((rc = os_devchain_start(&s->chain, &dc)) != OS_OK) {
        sim_say("the devchain did not start: %s", os_strerror(rc));
        return rc;
    }
    os_devchain_escrow(s->chain, s->escrow);
    os_devchain_usdc(s->chain, s->usdc);
    snprintf(s->rpc, sizeof(s->rpc), "%s", os_devchain_rpc(s->chain));
    sim_say("chain %s (id %llu)", s->rpc, (unsigned long long)os_devchain_chain_id(s->chain));

    if ((rc = start_registry(s)) != OS_OK)
        return rc;
    sim_say("registry %s", s->reg_url);
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++)
        if ((rc = start_seller(s, i)) != OS_OK)
            return rc;
    sim_say("%u sellers started; waiting for the registry to list them", s->plan.p.n_sellers);
    if ((rc = wait_listed(s)) != OS_OK)
        return rc;
    /* one full rescore after the last announce, so the first listing ranks by price */
    sleep_ms(REG_RESCORE_MS + 200);
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++)
        if ((rc = start_buyer(s, b)) != OS_OK)
            return rc;
    sim_say("%u buyers started", s->plan.p.n_buyers);
    return OS_OK;
}

void sim_free(sim *s)
{
    if (s == NULL)
        return;
    for (unsigned b = 0; s->buyers != NULL && b < s->plan.p.n_buyers; b++)
        os_buyer_node_stop(s->buyers[b].node);
    for (unsigned i = 0; s->sellers != NULL && i < s->plan.p.n_sellers; i++)
        os_seller_node_stop(s->sellers[i].node);
    os_registry_node_stop(s->reg);
    for (unsigned b = 0; s->buyers != NULL && b < s->plan.p.n_buyers; b++) {
        sim_buyer *by = &s->buyers[b];
        os_buyer_node_free(by->node);
        free(by->calls);
        free(by->rows);
        free(by->vouchers);
        pthread_mutex_destroy(&by->mu);
    }
    for (unsigned i = 0; s->sellers != NULL && i < s->plan.p.n_sellers; i++)
        os_seller_node_free(s->sellers[i].node);
    os_registry_node_free(s->reg);
    os_devchain_free(s->chain);
    os_http_client_free(s->http);
    free(s->buyers);
    free(s->sellers);
    free(s->chans);
    json_decref(s->checks);
    sim_plan_free(&s->plan);
    if (s->dir_made && !s->o.keep)
        nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (s->dir_made)
        sim_say("state kept in %s", s->dir);
    memset(s, 0, sizeof(*s));
}
