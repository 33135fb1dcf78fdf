/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Network (SDK): the read side of discovery, for embedders, tools and simulations. It talks to one
 * or more registries (PROTOCOL.md §4) and never trusts them: every record in an answer is checked
 * against its seller's signature (os_record_verify) and against the chain and escrow the caller
 * expects, and one that fails is left out and counted, so a registry can hide sellers but cannot
 * forge or alter one.
 *
 *     os_network *net;
 *     os_network_config c = {.registries = urls, .n_registries = 1, .chain_id = 31337};
 *     os_peer_list l;
 *     if (os_network_new(&net, &c) == OS_OK &&
 *         os_network_peers(net, &(os_peer_query){.service = "echo"}, &l) == OS_OK) {
 *         for (size_t i = 0; i < l.n; i++) ... l.peers[i].record.endpoint ...
 *         os_peer_list_free(&l);
 *     }
 *     os_network_free(net);
 *
 * Several registries are merged: a seller listed by more than one appears once, with the record
 * of the highest seq (ties: the first registry's), and the list is ranked by the registries'
 * score. Thread safety: one os_network may be used from several threads at once. Needs os_init().
 */
#ifndef OPENSEED_NETWORK_H
#define OPENSEED_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/log.h"
#include "openseed/record.h"

#define OS_NETWORK_MAX_REGISTRIES 16
#define OS_NETWORK_URL_MAX 512
#define OS_NETWORK_ERR_MAX 192

typedef struct os_network os_network;

typedef struct os_network_config {
    const char *const *registries; /* base URLs (http:// or https://), 1 to 16; copied */
    size_t n_registries;
    uint64_t chain_id;      /* records for another chain are dropped */
    const uint8_t *escrow;  /* 20 bytes, or NULL: records naming any escrow are kept */
    const char *ca_file;    /* PEM CAs for https registries instead of the system's; or NULL */
    long timeout_ms;        /* per registry request; 0 = 5000 */
    const os_logger *log;   /* borrowed, must outlive the network; NULL = stderr at info */
} os_network_config;

/* OS_ERR_INVALID for a bad URL or count (logged). *out is the caller's (os_network_free). */
OS_WUR os_err os_network_new(os_network **out, const os_network_config *cfg);
void os_network_free(os_network *net);

/* One registry as probed by os_network_registries. */
typedef struct os_registry_status {
    char url[OS_NETWORK_URL_MAX]; /* as configured, user info removed */
    bool up;                      /* /healthz answered 200 */
    uint64_t peers, active;       /* sellers it knows and those active (its /healthz) */
    uint64_t latency_ms;          /* of the /healthz round trip */
    char error[OS_NETWORK_ERR_MAX]; /* why it is not up; "" when up */
} os_registry_status;

/*
 * Probes every configured registry's /healthz (in order, out[i] for registry i; n is at most
 * cap). OS_OK when at least one is up, OS_ERR_NETWORK when none is (out still says why).
 */
OS_WUR os_err os_network_registries(os_network *net, os_registry_status *out, size_t cap,
                                    size_t *n);

/* What to ask for (GET /v1/peers filters). Zero fields mean no filter. */
typedef struct os_peer_query {
    const char *service;    /* NULL: every service */
    const char *capability; /* "inference", "agent", "tool", or NULL */
    uint64_t max_input;     /* micro-USDC per million input tokens */
    uint64_t max_output;    /* micro-USDC per million output tokens */
    double min_reputation;  /* in [0, 1] */
    size_t limit;           /* peers wanted at most; 0 = every page (up to 10,000) */
} os_peer_query;

/* One verified seller. */
typedef struct os_peer {
    os_record record;        /* verified: parsed, signed by record.node, for the expected chain */
    uint8_t signature[65];   /* the record's signature as served */
    char endpoint[OS_RECORD_ENDPOINT_MAX]; /* where it answers now: the endpoint of a heartbeat
                                              the seller signed after the record (a tunnel URL
                                              changes), else record.endpoint */
    double reputation;       /* the registry's, in [0, 1] */
    double score;            /* the registry's ranking score, in [0, 1] */
    uint64_t last_seen;      /* Unix seconds of the last heartbeat the registry accepted */
    uint32_t active, capacity; /* load from the last heartbeat */
    size_t registry;         /* index of the registry this record came from */
} os_peer;

typedef struct os_peer_list {
    os_peer *peers; /* best first; malloc'd, os_peer_list_free */
    size_t n;
    size_t rejected;  /* records left out: bad signature, other chain or escrow, malformed */
    size_t registries_ok; /* registries that answered */
} os_peer_list;

/*
 * The verified sellers matching q from every registry that answers. OS_ERR_NETWORK when none
 * answered (out empty), OS_ERR_INVALID for a bad query; OS_OK with out->n = 0 when none matches.
 */
OS_WUR os_err os_network_peers(os_network *net, const os_peer_query *q, os_peer_list *out);

/* One seller by node id (GET /v1/peers/{node}, first registry that knows it). OS_ERR_NOTFOUND
 * when none does (a record for another chain or escrow counts as none), OS_ERR_CRYPTO when the
 * record served fails verification (and no registry served a good one), OS_ERR_NETWORK when no
 * registry answered. */
OS_WUR os_err os_network_peer(os_network *net, os_peer *out, const uint8_t node[20]);

void os_peer_list_free(os_peer_list *l);

#endif
