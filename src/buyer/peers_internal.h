/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inside of peers.c that tests reach directly: checking one peer object of a registry's
 * answer ({record, signature, reputation, score, last_seen, load, endpoint, heartbeat}, docs/
 * protocol.md §10.10) the way a buyer must, since a registry can serve anything: the record's
 * seller signature, its chain and escrow, its OHTTP key config, and the signed heartbeat that
 * carries an endpoint newer than the record's. Not part of the buyer's API.
 */
#ifndef OPENSEED_BUYER_PEERS_INTERNAL_H
#define OPENSEED_BUYER_PEERS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/ohttp.h"
#include "openseed/record.h"

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

#endif
