/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the seller directory's files share, and the parts of it that tests reach directly. peers.c
 * owns the object, its caches and the public API; peers_fetch.c talks to the registries;
 * peers_check.c checks one peer object of a registry's answer ({record, signature, reputation,
 * score, last_seen, load, endpoint, heartbeat}, docs/protocol.md §10.10) the way a buyer must,
 * since a registry can serve anything (the record's seller signature, its chain and escrow, its
 * OHTTP key config, and the signed heartbeat that carries an endpoint newer than the record's);
 * peers_rank.c keeps what this buyer observed of each seller and ranks by it. Functions named
 * by_peers_*_ are external only because they cross those files. Not part of the buyer's API.
 */
#ifndef OPENSEED_BUYER_PEERS_INTERNAL_H
#define OPENSEED_BUYER_PEERS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sodium.h>

#include "openseed/err.h"
#include "openseed/http_client.h"
#include "openseed/ohttp.h"
#include "openseed/record.h"

#include "peers.h"

/* One peer as served, checked. The first group is what the signatures vouch for. */
typedef struct by_peer_parsed {
    os_record record;                      /* signature verified */
    uint8_t sig[65];                       /* the record's signature */
    uint8_t body_hash[32];                 /* keccak256 of the record's canonical text */
    os_ohttp_keyconfig kc;                 /* record.ohttp_keys, parsed */
    char endpoint[OS_RECORD_ENDPOINT_MAX]; /* the heartbeat's when hb_used, else the record's */
    bool hb_used;                          /* a verified heartbeat newer than the record */
    os_heartbeat hb;                       /* that heartbeat, when hb_used (load zeroed) */
    bool hb_rejected; /* a heartbeat was served but is not usable: forged, another node's, older */

    /* The registry's own view: unsigned, taken as served (range-checked). */
    double reputation, score; /* in [0, 1] */
    uint64_t last_seen;       /* Unix seconds */
    uint32_t load_active, load_capacity;
} by_peer_parsed;

/*
 * Checks one peer object into out. known, when non-NULL, is an earlier result for the same node:
 * a record whose body hash and signature equal known's is taken without a second signature check,
 * and likewise an identical heartbeat (the body hash covers every byte the signature signs, so
 * nothing altered can pass this way). Returns:
 *   OS_OK               out filled; a heartbeat that fails its checks only sets hb_rejected
 *   OS_ERR_INVALID      a malformed peer object or record, or an unusable OHTTP key config
 *   OS_ERR_CRYPTO       the record's signature is not its node's over its digest (tampered)
 *   OS_ERR_UNSUPPORTED  a valid record for another chain_id or escrow than ours
 * err says why (safe to log). out is zeroed on failure.
 */
OS_WUR os_err by_peers_parse_peer(by_peer_parsed *out, const json_t *peer, uint64_t chain_id,
                                  const uint8_t escrow[20], const by_peer_parsed *known, char *err,
                                  size_t errcap);

/* The adjusted score of peers.h for a registry score and observed counts (avg_ttft_ms < 0: no
 * observation of latency yet). */
double by_peers_adjust_score(double registry_score, uint64_t ok, uint64_t fail, double avg_ttft_ms);

/* The cooldown after `consecutive` failures in a row (>= 1): 5 s doubling, at most 5 min. */
uint64_t by_peers_cooldown_ms(uint64_t consecutive);

/* ---- between the peers*.c files only ---- */

#define BY_PEERS_MAX_SERVICES 256 /* listings cached */

/* A verified peer; immutable once published, freed with its last reference (under mu). */
typedef struct by_peer_ref {
    unsigned refs;
    by_peer_parsed v;
} by_peer_ref;

/* One seller of a cached listing, with the registry's score for that listing. */
typedef struct by_listing_entry {
    by_peer_ref *pr;
    double score, reputation;
    uint64_t last_seen;
    uint32_t active, capacity;
} by_listing_entry;

/* Freshness of one cached answer; every field under mu. */
typedef struct by_cache_slot {
    bool valid, refreshing;
    int64_t fetched_ms, retry_ms, used_ms;
    unsigned waiters;
} by_cache_slot;

typedef struct by_svc_listing {
    by_cache_slot s;
    char name[OS_RECORD_NAME_MAX];
    by_listing_entry *e;
    size_t n;
} by_svc_listing;

/* What is known of one seller: its newest verified copy, the registry's view, what we observed. */
typedef struct by_peer_node {
    struct by_peer_node *next;
    uint8_t node[20];
    by_peer_ref *last; /* newest verified copy (listing or lookup), or NULL */
    int64_t last_ms;
    bool notfound; /* a lookup found no registry that knows it, at notfound_ms */
    int64_t notfound_ms;
    bool has_reg; /* the registry's view, as last served */
    double reg_score, reputation;
    uint64_t last_seen;
    uint32_t active, capacity;
    uint64_t ok, fail, consec;
    uint64_t ttft_sum, ttft_n, tokens, total_ms;
    bool cooling;
    int64_t cooldown_until;
    int64_t touched;
} by_peer_node;

struct by_peers {
    char **regs; /* base URLs without a trailing '/' */
    size_t n_regs;
    uint64_t chain_id;
    uint8_t escrow[20];
    int64_t ttl_ms;
    const os_logger *log;
    int64_t (*clock_ms)(void *ud);
    void *clock_ud;
    os_http_client *http;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Under mu. */
    by_peer_node **buckets;
    size_t n_buckets, n_nodes;
    by_svc_listing *svcs[BY_PEERS_MAX_SERVICES];
    size_t n_svcs;
    by_cache_slot models_slot;
    json_t *models;
};

static inline int64_t by_peers_now_ms_(const by_peers *p)
{
    return p->clock_ms(p->clock_ud);
}

/* A listing entry for a checked peer: the registry's view as served, no reference taken yet. */
static inline by_listing_entry by_peers_entry_(const by_peer_parsed *v)
{
    return (by_listing_entry){.score = v->score,
                              .reputation = v->reputation,
                              .last_seen = v->last_seen,
                              .active = v->load_active,
                              .capacity = v->load_capacity};
}

/* peers.c */

/* A service name as the registry takes it: [A-Za-z0-9._:/-]{1,63}. */
bool by_peers_service_ok_(const char *s);
/* Drops a reference to pr (NULL is fine); the _locked form with mu held. */
void by_peers_unref_locked_(by_peer_ref *pr);
void by_peers_unref_(by_peers *p, by_peer_ref *pr);

/* peers_rank.c: the node table, under mu */

/* The empty table (OS_ERR_NOMEM), and every node freed with its reference. */
OS_WUR os_err by_peers_nodes_init_(by_peers *p);
void by_peers_nodes_free_(by_peers *p);
/* node's entry or NULL; _get makes one (NULL only when out of memory) and marks it touched. */
by_peer_node *by_peers_node_find_(const by_peers *p, const uint8_t node[20]);
by_peer_node *by_peers_node_get_(by_peers *p, const uint8_t node[20], int64_t now);
/* Makes pr (a new reference taken) e's newest verified copy, seen at now. */
void by_peers_node_take_(by_peer_node *e, by_peer_ref *pr, int64_t now);
/* Records the registry's view of e as le carries it. */
void by_peers_node_set_view_(by_peer_node *e, const by_listing_entry *le);
/* registry_score adjusted by what was observed of e (NULL: nothing yet). */
double by_peers_node_score_(const by_peer_node *e, double registry_score);

/* peers_check.c */

/*
 * Checks each served peer of registry ri's answer (reusing earlier verifications, mu not held)
 * into a listing sorted by node, one entry per node, each holding a reference; unusable peers are
 * dropped and counted in the log. *out is malloc'd. OS_ERR_CRYPTO when peers were served, none is
 * usable and some are forged or malformed (a registry to disbelieve, not an empty listing);
 * otherwise OS_ERR_NOMEM is the only failure.
 */
OS_WUR os_err by_peers_build_listing_(by_peers *p, size_t ri, const json_t *peers,
                                      by_listing_entry **out, size_t *n_out);

/* peers_fetch.c: each called without mu */

/* The listing for service from the first registry that lists anyone usable; *n_out 0 when every
 * registry that answered listed nobody usable; OS_ERR_NETWORK when none answered. */
OS_WUR os_err by_peers_fetch_listing_(by_peers *p, const char *service, by_listing_entry **out,
                                      size_t *n_out);
/* node's peer (a reference in *out, the registry's view in *view), looked up with GET
 * /v1/peers/{node} unless a copy younger than the TTL is known; *out NULL when no registry knows
 * it. OS_ERR_NETWORK when none answered and no copy is known. */
OS_WUR os_err by_peers_pin_lookup_(by_peers *p, const uint8_t node[20], by_peer_ref **out,
                                   by_listing_entry *view);
/* The models list of peers.h (new reference in *out) from every answering registry's services;
 * OS_ERR_NETWORK when none answered. */
OS_WUR os_err by_peers_fetch_models_(by_peers *p, json_t **out);

#endif
