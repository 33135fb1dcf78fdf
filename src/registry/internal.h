/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the registry's files share and nothing outside src/registry sees: the registry struct, the
 * in-memory seller (rg_peer), the ranked listings (rg_view, rg_viewset), and the entry points of
 * peers.c (index), store.c (SQLite) and api.c (routes).
 *
 * Locking, outermost first (never take an earlier lock while holding a later one):
 *   wmu        serialises structural writers: announces, re-listing, the background rescore;
 *   lock       rwlock over the peer table and the viewsets: readers (queries, heartbeats, sweeps)
 *              share it, structural changes hold it for writing, briefly;
 *   peer->mu   the live fields of one seller (seq, last_seen, heartbeat, load, stats);
 *   db_mu      the one SQLite connection; taken alone or under wmu, never under lock or peer->mu.
 * Signatures are verified before any of them is taken.
 */
#ifndef OPENSEED_REGISTRY_INTERNAL_H
#define OPENSEED_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/buf.h"
#include "openseed/chain.h"
#include "openseed/db.h"
#include "openseed/http.h"
#include "openseed/log.h"
#include "openseed/metrics.h"
#include "openseed/record.h"

#include "rank.h"
#include "registry.h"

#define RG_ENDPOINT_MAX OS_RECORD_ENDPOINT_MAX
/* `"endpoint":"…","heartbeat":{…}` as served: two endpoints (each at most doubled by escaping,
 * as they are printable ASCII) plus fixed fields. */
#define RG_LIVE_MAX (4 * RG_ENDPOINT_MAX + 512)
#define RG_KEY_MAX (2 * OS_RECORD_NAME_MAX + 2)
#define RG_LIMIT_DEFAULT 20
#define RG_LIMIT_MAX 100
#define RG_JSON_DEPTH 8 /* a record nests 4 deep ({record:{offerings:[{pricing:{}}]}}) */

/* One offering, as much as filtering and ranking need. */
typedef struct rg_offer {
    char capability[OS_RECORD_NAME_MAX];
    char services[OS_RECORD_MAX_SERVICES][OS_RECORD_NAME_MAX];
    size_t n_services;
    uint64_t input, output; /* micro-USDC per million tokens */
} rg_offer;

/* A seller. Never freed while the registry runs (its history stays for reputation). */
typedef struct rg_peer {
    uint8_t node[20];
    char node_hex[OS_ADDRESS_STR_LEN]; /* EIP-55 */
    uint32_t idx;                      /* position in rg_registry.peers */

    /* Structural: written under wmu + lock (write), read under lock (read). */
    char *prefix; /* {"record":<canonical record>,"signature":"0x…" (no closing brace) */
    size_t prefix_len;
    rg_offer *offers;
    size_t n_offers;
    bool in_views; /* listed in the current viewset */
    double rep;    /* reputation as of the last rescore */
    double score;  /* score in the unfiltered listing as of the last rescore or insert */

    /* Live: under mu. */
    pthread_mutex_t mu;
    uint64_t seq; /* highest seq accepted (announce or heartbeat) */
    int64_t last_seen_ms;
    uint32_t load_active, load_capacity;
    bool has_hb; /* a heartbeat newer than the record */
    char hb_endpoint[RG_ENDPOINT_MAX];
    uint64_t hb_seq, hb_ts;
    uint8_t hb_sig[65];
    char live[RG_LIVE_MAX]; /* `"endpoint":…,"heartbeat":…` */
    size_t live_len;
    rg_rank_stats stats;
    bool dirty; /* live fields or stats changed since the last flush */

    atomic_int active; /* 0 once it missed liveness_intervals heartbeats */
} rg_peer;

/* A listed seller in one view: its score there and the prices it is listed at. */
typedef struct rg_entry {
    double score, rep;
    rg_peer *peer;
    uint64_t price;     /* blended price of its cheapest matching offering */
    uint32_t pairs_off; /* its matching offerings' (input, output) in view->pairs */
    uint32_t pairs_n;
} rg_entry;

typedef struct rg_pair {
    uint64_t input, output;
} rg_pair;

/* The ranked listing for one (service, capability) filter; "" stands for any. */
typedef struct rg_view {
    char key[RG_KEY_MAX]; /* len(service) || service || capability */
    size_t key_len;
    uint64_t lo, hi; /* blended price range the scores were normalised over */
    rg_entry *e;
    size_t n, cap;
    rg_pair *pairs;
    size_t np, pcap;
} rg_view;

/* Every view of one scoring pass. `epoch` names it in cursors. */
typedef struct rg_viewset {
    uint64_t epoch;
    rg_view *views;
    size_t n, cap;
    uint32_t *slots; /* open addressing over views by key; UINT32_MAX is empty */
    size_t n_slots;
} rg_viewset;

/* A channel as read from the escrow, cached for feedback checks. */
typedef struct rg_chan {
    uint8_t id[32];
    bool used, found;
    int64_t fetched_ms;
    uint8_t seller[20], signer[20];
    uint64_t deposit;
    bool closed;
} rg_chan;
#define RG_CHAN_CACHE 1024

/* Request counters by route and outcome, for /metrics. */
enum {
    RG_R_ANNOUNCE,
    RG_R_HEARTBEAT,
    RG_R_PEERS,
    RG_R_PEER,
    RG_R_SERVICES,
    RG_R_FEEDBACK,
    RG_R__N
};

struct rg_registry {
    rg_options opt; /* strings below are the registry's own copies */
    char *listen, *db_path, *rpc;
    const os_logger *log;
    os_logger default_log;

    os_db *db;
    pthread_mutex_t db_mu;
    os_http_server *http;
    os_http_route routes[12];
    size_t n_routes;

    pthread_mutex_t wmu;
    pthread_rwlock_t lock;
    rg_peer **peers;
    size_t n_peers, cap_peers;
    uint32_t *slots; /* node -> index in peers; UINT32_MAX is empty */
    size_t n_slots;
    uint8_t hash_key[16];
    rg_viewset *cur, *prev;
    uint64_t next_epoch;
    rg_rank_params rank;
    int64_t window_ms; /* liveness_intervals * heartbeat interval */

    /* background thread */
    pthread_t bg;
    bool bg_running;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    bool bg_stop;

    /* feedback */
    os_chain *chain;
    pthread_mutex_t chan_mu;
    rg_chan chans[RG_CHAN_CACHE];
    atomic_uint chain_inflight;

    os_metrics *metrics;
    os_metric *m_requests, *m_rejects, *m_peers, *m_active, *m_flush, *m_rescore_ms;

    bool started, stopped;
};

/* ---- time ---- */
int64_t rg_now_ms(void);

/* ---- peers.c: the index ---- */

/* The peer with this node, or NULL. Caller holds lock (either mode) or wmu. */
rg_peer *rg_peer_find(rg_registry *rg, const uint8_t node[20]);
/* A new, empty peer added to the table (not listed). Caller holds wmu and lock for writing. */
OS_WUR os_err rg_peer_add(rg_registry *rg, rg_peer **out, const uint8_t node[20]);
/* Replaces p's record text, signature and offerings. Caller holds wmu and lock for writing. */
OS_WUR os_err rg_peer_set_record(rg_peer *p, const char *canon, size_t canon_len,
                                 const uint8_t sig[65], const os_record *rec);
/*
 * Renders `"endpoint":"<endpoint>","heartbeat":<hb as JSON or null>` into out (RG_LIVE_MAX bytes):
 * what a listing shows besides the record. hb may be NULL. Returns the length, 0 on failure.
 */
size_t rg_live_render(char *out, const char *endpoint, const os_heartbeat *hb);
void rg_peers_free(rg_registry *rg);

/* Lists p in the current viewset (after removing any old entries). Caller holds wmu + lock
 * (write). */
OS_WUR os_err rg_views_insert(rg_registry *rg, rg_peer *p);
/* Recomputes reputations and builds a fresh viewset; swaps it in. Caller holds wmu only. */
OS_WUR os_err rg_views_rebuild(rg_registry *rg, int64_t now_ms);
rg_view *rg_viewset_find(const rg_viewset *vs, const char *key, size_t key_len);
void rg_viewset_free(rg_viewset *vs);
/* Builds the view key of a filter ("" or NULL = any); 0 when a part is too long. */
size_t rg_view_key(char out[RG_KEY_MAX], const char *service, const char *capability);
/* Order of listings: higher score first, then lower node id. <0 when a comes first. */
int rg_entry_cmp(double sa, const uint8_t na[20], double sb, const uint8_t nb[20]);

/* ---- store.c: SQLite ---- */

/* Everything persisted about a seller's liveness and evidence. */
typedef struct rg_live_row {
    uint8_t node[20];
    uint64_t seq;
    int64_t last_seen_ms;
    uint32_t load_active, load_capacity;
    bool has_hb;
    char hb_endpoint[RG_ENDPOINT_MAX];
    uint64_t hb_seq, hb_ts;
    uint8_t hb_sig[65];
    rg_rank_stats stats;
} rg_live_row;

OS_WUR os_err rg_store_open(rg_registry *rg);
void rg_store_close(rg_registry *rg);
/* Loads every seller into the index (at start-up, before any thread runs). */
OS_WUR os_err rg_store_load(rg_registry *rg);
/* Writes an announced record (upsert; keeps first_seen and stats). Caller holds db_mu. */
OS_WUR os_err rg_store_put_record(rg_registry *rg, const uint8_t node[20], const char *canon,
                                  size_t canon_len, const uint8_t sig[65], uint64_t seq,
                                  int64_t now_ms);
/* Writes a batch of live rows in one transaction. Caller holds db_mu. */
OS_WUR os_err rg_store_flush(rg_registry *rg, const rg_live_row *rows, size_t n);
/*
 * Records a feedback report if its (channel, nonce) and cumulative amount are above every report
 * seen for that channel; OS_ERR_EXISTS otherwise (a replay). Caller holds db_mu.
 */
OS_WUR os_err rg_store_feedback(rg_registry *rg, const os_feedback *fb, const uint8_t signer[20],
                                int64_t now_ms);

/* ---- api.c, listing.c, feedback.c: routes ---- */

/* Why a request was refused: the label of openseed_registry_rejected_total. */
enum {
    REJ_JSON,
    REJ_FIELD,
    REJ_SIGNATURE,
    REJ_STALE,
    REJ_CLOCK,
    REJ_UNKNOWN,
    REJ_CHAIN,
    REJ_FULL,
    REJ_CHANNEL,
    REJ_UNAVAILABLE,
    REJ_INTERNAL,
};

/* Counts a refusal and answers with the OpenAI error shape. */
#define REJECT(rg, res, why, status, type, code, ...)                                              \
    do {                                                                                           \
        os_metric_inc((rg)->m_rejects, (why));                                                     \
        os_http_res_error((res), (status), (type), (code), __VA_ARGS__);                           \
    } while (0)

/* OpenAI's error types. */
#define T_INVALID "invalid_request_error"
#define T_AUTH "authentication_error"
#define T_PERM "permission_error"
#define T_SERVER "server_error"

/* Parses the body as a JSON object; otherwise answers 400/413 (counted) and returns false. */
bool rg_body_json(rg_registry *rg, json_t **out, const os_http_request *req, os_http_response *res);
void rg_h_peers(void *ctx, const os_http_request *req, os_http_response *res);
void rg_h_peer(void *ctx, const os_http_request *req, os_http_response *res);
void rg_h_services(void *ctx, const os_http_request *req, os_http_response *res);
void rg_h_feedback(void *ctx, const os_http_request *req, os_http_response *res);
void rg_api_routes(rg_registry *rg);
OS_WUR os_err rg_api_metrics_init(rg_registry *rg);

#endif
