/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed-sim's core (sim_core): a registry, N sellers and M buyers on a local anvil chain in one
 * process, built only from the public SDK (include/openseed), driven by seeded client request
 * mixes, then reconciled to the micro-USDC from every node's own books and the chain. The stages
 * are one file each: plan.c (everything random, from the seed), nodes.c (start and stop the
 * nodes), drive.c (the clients), collect.c (the books and the chain after the run), reconcile.c
 * (the exact checks) and report.c (tables, tiers and the results JSON). main.c parses the flags.
 *
 * Determinism: the plan, each buyer's request sequence, each seller's failure schedule and each
 * buyer's routing draws are functions of the seed; wall-clock timing (latencies, heartbeats,
 * cooldowns, thread interleaving) is not, so counts differ a little between runs of one seed.
 */
#ifndef OPENSEED_SIM_H
#define OPENSEED_SIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <pthread.h>

#include <jansson.h>

#include "openseed/buyer_node.h"
#include "openseed/devchain.h"
#include "openseed/err.h"
#include "openseed/http_client.h"
#include "openseed/log.h"
#include "openseed/money.h"
#include "openseed/registry_node.h"
#include "openseed/seller_node.h"

#define SIM_LEVELS 4 /* levels of each factor */
#define SIM_MAX_SELLERS 200
#define SIM_MAX_BUYERS 50
#define SIM_MAX_CONCURRENCY 16 /* client workers per buyer */
#define SIM_MAX_DURATION_S 3600
#define SIM_MAX_CALLS 1000000 /* client requests recorded per buyer */
#define SIM_MAX_CHANNELS 100000
#define SIM_PATH_MAX 512
#define SIM_VOUCHERS_LISTED 1000 /* the ledger's page cap, which also caps its voucher list */

/* Money the plan gives every buyer (micro-USDC): its wallet and each channel's deposit. */
#define SIM_WALLET_USDC (UINT64_C(1000) * OS_USDC_UNIT)
#define SIM_DEPOSIT (UINT64_C(2) * OS_USDC_UNIT)
/* Ether for gas: every buyer wallet and every seller (its claims). */
#define SIM_ETH_WEI UINT64_C(10000000000000000000) /* 10 ETH */

/* ---- plan.c: everything random, from the seed ------------------------------------------- */

typedef enum sim_kind {
    SIM_KIND_CHAT = 0,    /* OpenAI chat completion, whole */
    SIM_KIND_CHAT_STREAM, /* OpenAI chat completion, streamed */
    SIM_KIND_MESSAGES,    /* Anthropic message */
    SIM_KIND_EMBEDDINGS,  /* OpenAI embeddings */
    SIM_KINDS
} sim_kind;

/* What the command line fixes about a run. */
typedef struct sim_params {
    uint64_t seed;
    unsigned n_sellers, n_buyers;
    unsigned duration_s;
    unsigned concurrency; /* client workers per buyer */
    bool weighted;        /* buyers route OS_ROUTE_WEIGHTED (else OS_ROUTE_BEST) */
} sim_params;

typedef struct sim_seller_plan {
    unsigned price_level, latency_level, fail_level; /* 0..SIM_LEVELS-1 */
    unsigned price_x10;                              /* price multiplier times 10: 10, 15, 20, 30 */
    os_pricing price;                                /* micro-USDC per million tokens */
    unsigned latency_ms; /* the echo upstream's, before the first byte */
    uint32_t fail_ppm;   /* share of the echo upstream's requests answered 500; 0 = none */
    uint64_t fail_seed;  /* which of them (os_rng_mix(fail_seed, n)) */
} sim_seller_plan;

typedef struct sim_buyer_plan {
    uint64_t request_seed; /* request k is drawn from os_rng_mix(request_seed, k) */
    uint64_t route_seed;   /* the buyer's weighted routing draws; never 0 */
} sim_buyer_plan;

typedef struct sim_plan {
    sim_params p;
    sim_seller_plan *sellers; /* p.n_sellers */
    sim_buyer_plan *buyers;   /* p.n_buyers */
} sim_plan;

/* The levels of the three factors. */
extern const unsigned sim_price_x10[SIM_LEVELS];
extern const unsigned sim_latency_ms[SIM_LEVELS];
extern const uint32_t sim_fail_ppm[SIM_LEVELS];

/* Draws the plan of p (a pure function of p). OS_ERR_INVALID for counts out of bounds,
 * OS_ERR_NOMEM. pl is the caller's (sim_plan_free) on OS_OK. */
OS_WUR os_err sim_plan_make(sim_plan *pl, const sim_params *p);
/* NULL-safe. */
void sim_plan_free(sim_plan *pl);
/* The plan as JSON (integers and strings only, so its canonical text is canonical); caller owns
 * it, NULL when out of memory. */
json_t *sim_plan_json(const sim_plan *pl);
/* The canonical text of sim_plan_json (malloc'd, *text the caller's) and its keccak256. */
OS_WUR os_err sim_plan_text(char **text, size_t *len, uint8_t digest[32], const sim_plan *pl);

/* The k-th request of buyer b: its kind, API path and JSON body (malloc'd, the caller's). */
typedef struct sim_request {
    sim_kind kind;
    const char *path; /* "/v1/chat/completions", "/v1/messages" or "/v1/embeddings" */
    char *body;
    size_t len;
} sim_request;

OS_WUR os_err sim_request_make(sim_request *out, const sim_plan *pl, unsigned b, uint64_t k);
void sim_request_free(sim_request *r);
const char *sim_kind_name(sim_kind k);

/* ---- the run's state ---------------------------------------------------------------------- */

/* One client request as the client saw it. */
typedef struct sim_call {
    uint64_t k;  /* its index in the buyer's sequence */
    long status; /* HTTP status, 0 when no answer */
    int seller;  /* the seller that answered (X-OpenSeed-Peer), -1 when none or unknown */
    uint32_t latency_ms, ttfb_ms;
    uint8_t kind; /* sim_kind */
    bool ok;      /* 200 and, for a stream, its end marker */
} sim_call;

/* One row of a buyer's ledger (GET /openseed/v1/ledger). */
typedef struct sim_row {
    uint64_t id;
    int seller;  /* index, -1 when the address is none of ours */
    size_t chan; /* index in sim.chans, SIZE_MAX when the channel is unknown */
    uint64_t estimate, cost, latency_ms, ttft_ms;
    bool ok; /* outcome "ok" */
} sim_row;

/* A voucher a buyer signed (the ledger's newest vouchers). */
typedef struct sim_voucher {
    uint8_t channel[32];
    uint64_t nonce, cumulative;
} sim_voucher;

/* One payment channel, seen from both ends and from the chain. */
typedef struct sim_channel {
    uint8_t id[32];
    int buyer, seller; /* indexes; -1 when unknown */
    /* the buyer's /openseed/v1/channels */
    bool in_buyer;
    uint64_t b_deposit, b_consumed, b_authorized;
    /* the seller's /admin/v1/channels (before settling) */
    bool in_seller;
    uint64_t s_deposit, s_consumed, s_latest;
    /* the seller's confirmed claims (/admin/v1/settlements, after settling): their sum, and the
     * voucher of the highest one */
    uint64_t s_claimed, s_claim_nonce, s_claim_cumulative;
    /* the buyer's ledger rows on the channel */
    uint64_t ledger_cost, ledger_rows, last_id, last_cost;
    /* the buyer's latest voucher on the channel, when its voucher list reaches it */
    bool has_latest;
    uint64_t latest_nonce, latest_cumulative;
    /* the escrow after settling */
    bool on_chain;
    uint8_t c_payer[20], c_seller[20];
    uint64_t c_deposit, c_claimed, c_last_nonce;
} sim_channel;

typedef struct sim_seller {
    os_logger log;
    char dir[SIM_PATH_MAX];
    os_seller_node *node;
    uint8_t addr[20];
    char addr_hex[43]; /* EIP-55 */
    uint16_t port, admin_port;
    /* collected */
    os_seller_stats before, after; /* os_seller_node_stats before and after settling */
    os_err settle_rc;
    uint64_t settle_claimed; /* os_seller_node_settle's *claimed */
    uint64_t usdc;           /* its TestUSDC balance at the end */
} sim_seller;

typedef struct sim_buyer {
    os_logger log;
    char dir[SIM_PATH_MAX];
    os_buyer_node *node;
    uint8_t wallet[20];
    uint16_t port;
    uint64_t usdc_start, usdc_end; /* wallet TestUSDC balance */
    /* driving */
    atomic_uint_fast64_t next; /* the next index of its request sequence */
    pthread_mutex_t mu;        /* guards calls */
    sim_call *calls;
    size_t n_calls, cap_calls;
    bool calls_full; /* SIM_MAX_CALLS reached: later calls were not recorded */
    /* collected */
    sim_row *rows;
    size_t n_rows;
    sim_voucher *vouchers; /* the newest SIM_VOUCHERS_LISTED it signed (the ledger's) */
    size_t n_vouchers;
    bool vouchers_all; /* fewer than that: the list holds every voucher it signed */
    uint64_t spend_total, spend_deposited; /* /openseed/v1/spend total.spent, total.deposited */
    uint64_t failovers;                    /* openseed_buyer_failovers_total */
} sim_buyer;

typedef struct sim_options {
    const char *dir;       /* state directory; NULL: a temporary one */
    bool keep;             /* keep the temporary directory */
    const char *anvil;     /* os_devchain_config.anvil */
    const char *contracts; /* os_devchain_config.contracts */
    os_log_level node_level;
    /* When set (main.c's signal thread, on SIGINT or SIGTERM), the clients take no new request:
     * the run ends early and is still collected, reconciled and reported. NULL: never. */
    const atomic_bool *stop;
} sim_options;

typedef struct sim {
    sim_plan plan;
    sim_options o;
    char dir[SIM_PATH_MAX - 64]; /* room for the nodes' folders under it */
    bool dir_made;               /* a temporary directory this run made */
    bool bad_dir;                /* --dir was not new or empty: a usage error */
    os_logger chain_log, reg_log;
    os_devchain *chain;
    uint8_t escrow[20], usdc[20];
    char rpc[128];
    os_registry_node *reg;
    char reg_url[128];
    sim_seller *sellers;
    sim_buyer *buyers;
    os_http_client *http; /* the sim's own requests to the nodes' APIs */
    double drive_s;       /* how long the clients ran */
    /* collected */
    sim_channel *chans;
    size_t n_chans;
    uint64_t escrow_usdc;
    bool collect_ok; /* every read succeeded */
    /* reconciled */
    json_t *checks; /* array of {scope, name, expected, got, ok} */
    size_t n_checks, n_failed;
} sim;

/* Progress lines on stderr ("openseed-sim: ..."). */
__attribute__((format(printf, 1, 2))) void sim_say(const char *fmt, ...);

/* ---- nodes.c ------------------------------------------------------------------------------ */

/* Prepares s from the plan (taken over by s) and options: nothing runs yet. */
OS_WUR os_err sim_init(sim *s, sim_plan *plan, const sim_options *o);
/* The state directory, the chain, the registry, the sellers (waits until the registry lists
 * every one) and the buyers. */
OS_WUR os_err sim_start(sim *s);
/* Stops and frees every node and the chain, frees everything, removes a temporary directory
 * unless kept. NULL-safe, idempotent. */
void sim_free(sim *s);
/* The seller whose address is addr, or -1. */
int sim_seller_index(const sim *s, const uint8_t addr[20]);

/* ---- drive.c ------------------------------------------------------------------------------ */

/* Runs every buyer's client workers for the plan's duration and waits for them. */
OS_WUR os_err sim_drive(sim *s);

/* ---- collect.c ---------------------------------------------------------------------------- */

/* Reads every buyer's and seller's books, settles every seller, reads the chain. Fills
 * s->chans and the per-node fields; s->collect_ok says whether every read worked. */
OS_WUR os_err sim_collect(sim *s);

/* ---- reconcile.c -------------------------------------------------------------------------- */

/* Runs every check, prints each on out, fills s->checks. OS_OK when they ran (whatever they
 * found); s->n_failed counts the failures. */
OS_WUR os_err sim_reconcile(sim *s, FILE *out);

/* How the escrow's claimed compares with the buyer's latest voucher on the channel: "latest"
 * (equal), "newest_uncharged" (the newest request cost nothing, so its voucher is not redeemed),
 * "overlap" (the last requests overlapped, so the latest voucher is above the seller's bound), or
 * "unlisted" (the latest voucher is older than the buyer's voucher list). */
const char *sim_claim_kind(const sim_channel *c);

/* ---- report.c ----------------------------------------------------------------------------- */

/* Prints the tables on out and builds the results JSON (*results the caller's). */
OS_WUR os_err sim_report(sim *s, FILE *out, json_t **results);
/* Spearman's rank correlation of x and y (n values each; ties get their mean rank); 0 when
 * either is constant or n < 2. */
double sim_spearman(const double *x, const double *y, size_t n);

#endif
