/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's view of the sellers: listings fetched from the registries (GET /v1/peers?service=…,
 * every page), cached per service for a short TTL and served from the last good copy while every
 * registry is down; each record's seller signature verified (and the current endpoint's signed
 * heartbeat when the endpoint changed since the record), records for another chain or escrow
 * dropped; candidates filtered by API, price caps and cooldown, and ranked by the registry's score
 * adjusted by what this buyer observed since it started.
 *
 * Adjusted score: registry score × observed success rate (Laplace-smoothed: (ok + 1) / (ok + fail
 * + 2)) × a latency factor 2000 / (2000 + average ttft_ms) once there are observations (1 before).
 * A seller that fails enters a cooldown (5 s, doubling per consecutive failure up to 5 min) during
 * which it is not offered unless pinned; a success ends it.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef OPENSEED_BUYER_PEERS_H
#define OPENSEED_BUYER_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/log.h"
#include "openseed/ohttp.h"
#include "openseed/record.h"

typedef struct by_peers by_peers;

typedef struct by_peers_config {
    const char *const *registries; /* base URLs; copied */
    size_t n_registries;
    uint64_t chain_id;
    uint8_t escrow[20];
    uint64_t ttl_ms;            /* listing cache TTL; 0 = 10000 */
    long request_timeout_ms;    /* per registry request; 0 = 5000 */
    const os_logger *log;       /* borrowed; NULL = default */
    const char *ca_file;        /* PEM CAs for https registries instead of the system's; or NULL */
    /* Tests: now in ms for cooldowns (NULL = CLOCK_MONOTONIC). */
    int64_t (*clock_ms)(void *ud);
    void *clock_ud;
} by_peers_config;

OS_WUR os_err by_peers_new(by_peers **out, const by_peers_config *cfg);
void by_peers_free(by_peers *p);

/* Price caps in micro-USDC per million tokens; 0 = no cap. */
typedef struct by_price_cap {
    uint64_t max_input;
    uint64_t max_output;
} by_price_cap;

/* One candidate: a verified seller and its offering for the service. */
typedef struct by_peer {
    uint8_t node[20];
    char endpoint[OS_RECORD_ENDPOINT_MAX]; /* current (heartbeat's if newer) */
    os_record record;                      /* verified */
    size_t offering;                       /* index into record.offerings */
    os_ohttp_keyconfig kc;
    double score; /* adjusted */
} by_peer;

/*
 * The candidates for service and one of api_bits (OS_API_* of record.h; the offering must list
 * at least one), best first, at most max. Sellers cooling down are left out while another can be
 * offered; when all are cooling down they are all offered, soonest back first. pin (20 bytes or NULL) restricts the answer to that
 * seller whatever its cooldown or caps (then *n is 0 or 1; it is looked up with GET
 * /v1/peers/{node} when not in the listing). *out is malloc'd (free()). OS_ERR_NETWORK when no
 * registry answered and nothing is cached; OS_OK with *n = 0 when none matches.
 */
OS_WUR os_err by_peers_candidates(by_peers *p, by_peer **out, size_t *n, const char *service,
                                  unsigned api_bits, const by_price_cap *cap, const uint8_t *pin,
                                  size_t max);

/*
 * The weighted policy's pick among n ranked candidates (docs/protocol.md §10.12): candidate i has
 * weight score^2 (0 when its score is not a positive finite number), and the answer is the i
 * whose share of the cumulative weight holds u * total, i.e. the first i with u * total <
 * w_0 + ... + w_i. u is a uniform draw in [0, 1) (values outside are clamped). 0 when n <= 1 or
 * every weight is 0. Pure: the caller supplies the draw, so tests can hit exact boundaries.
 */
size_t by_peers_pick_weighted(const by_peer *c, size_t n, double u);

/* What happened with a seller, for ranking and cooldown. */
typedef struct by_observation {
    bool ok;           /* answered (any upstream status counts as the seller working) */
    uint64_t ttft_ms;  /* when ok */
    uint64_t tokens;   /* output tokens, when ok */
    uint64_t total_ms; /* when ok */
} by_observation;
void by_peers_observe(by_peers *p, const uint8_t node[20], const by_observation *o);

/* The services the registries list ({"object":"list","data":[{"id":service,"object":"model",
 * "created":0,"owned_by":"openseed"}…]}, OpenAI's /v1/models shape), cached for the TTL. */
OS_WUR os_err by_peers_models(by_peers *p, json_t **out);

/* Management view: every seller seen, with registry score, observed stats and cooldown. */
json_t *by_peers_json(by_peers *p);

#endif
