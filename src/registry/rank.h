/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's scoring math (rank.c): per-seller evidence (heartbeat regularity, feedback,
 * latency, age), the reputation it yields, the price score of an offering among its competitors
 * and the final score. Pure functions over plain structs, no locks and no I/O, so the unit test
 * (tests/unit/test_rank.c) can include rank.c on its own. Times are milliseconds since the epoch.
 */
#ifndef OPENSEED_REGISTRY_RANK_H
#define OPENSEED_REGISTRY_RANK_H

#include <stdbool.h>
#include <stdint.h>

/* Tunables of the formula; rg_rank_params_default gives the documented values. */
typedef struct rg_rank_params {
    double interval_ms;    /* the heartbeat interval sellers are told */
    double tau_ms;         /* memory of uptime and feedback: evidence decays as exp(-t/tau) */
    double prior;          /* the neutral value of every component for a newcomer (0.5) */
    double uptime_k;       /* prior weight of uptime, in heartbeat intervals */
    double success_k;      /* prior weight of the success rate, in reports */
    double latency_k;      /* prior weight of the latency score, in reports */
    double latency_ref_ms; /* a time to first token of this much scores 0.5 */
    double age_ref_ms;     /* at this age the age term is 0.75 (halfway from 0.5 to 1) */
} rg_rank_params;

/* One seller's evidence. Zero-initialise, then set first_seen_ms and updated_ms to the announce
 * time. The decayed sums are brought up to date lazily by rg_rank_advance. */
typedef struct rg_rank_stats {
    int64_t first_seen_ms; /* first announce ever: the age */
    int64_t updated_ms;    /* time the decayed sums below were last advanced to */
    int64_t last_hit_ms;   /* last heartbeat that counted towards uptime */
    double up_hits;        /* decayed count of intervals with a heartbeat */
    double up_expected;    /* decayed count of intervals elapsed */
    double fb_success;     /* decayed count of "success" reports */
    double fb_failure;     /* decayed count of "error" and "timeout" reports */
    double lat_n;          /* decayed count of reports with a latency */
    double lat_sum;        /* decayed sum of their latency scores */
} rg_rank_stats;

/* The components of a reputation, each in [0, 1]. */
typedef struct rg_rank_parts {
    double uptime, success, latency, age;
} rg_rank_parts;

/* The outcome of one feedback report. */
typedef enum rg_outcome {
    RG_OUTCOME_SUCCESS = 0,
    RG_OUTCOME_ERROR,   /* the seller answered with an error */
    RG_OUTCOME_TIMEOUT, /* the seller did not answer in time */
    RG_OUTCOME_REFUSED, /* the seller refused the request (may be the buyer's fault): not counted */
} rg_outcome;

#define RG_SCORE_W_REPUTATION 0.6
#define RG_SCORE_W_PRICE 0.4

/* The documented defaults for a heartbeat interval of interval_ms. */
void rg_rank_params_default(rg_rank_params *p, double interval_ms);

/* Decays the sums to now_ms and accrues the intervals elapsed since the last update. A clock
 * that went backwards is treated as no time passing. */
void rg_rank_advance(rg_rank_stats *s, const rg_rank_params *p, int64_t now_ms);

/* An accepted heartbeat at now_ms: counts one interval as up, at most once per half interval and
 * never beyond the intervals elapsed + 1, so sending heartbeats faster than asked earns nothing. */
void rg_rank_heartbeat(rg_rank_stats *s, const rg_rank_params *p, int64_t now_ms);

/* A counted feedback report; latency_ms is used for successes only (0: none given). */
void rg_rank_feedback(rg_rank_stats *s, const rg_rank_params *p, int64_t now_ms, rg_outcome o,
                      uint64_t latency_ms);

/* The reputation in [0, 1] of s as of now_ms (s itself is not modified); parts may be NULL. */
double rg_rank_reputation(const rg_rank_stats *s, const rg_rank_params *p, int64_t now_ms,
                          rg_rank_parts *parts);

/* The blended price of an offering, micro-USDC per million tokens: (3 * input + output) / 4,
 * rounded down, without overflow. */
uint64_t rg_rank_blend(uint64_t input, uint64_t output);

/* The price score of a blended price among candidates whose blended prices span [lo, hi]:
 * 1 for the cheapest, 0 for the most expensive, linear in between; 1 when all cost the same.
 * A price outside [lo, hi] is clamped. */
double rg_rank_price_score(uint64_t price, uint64_t lo, uint64_t hi);

/* 0.6 * reputation + 0.4 * price_score. */
double rg_rank_score(double reputation, double price_score);

/* Parses a feedback outcome name; false for an unknown one. */
bool rg_outcome_parse(rg_outcome *out, const char *name);

#endif
