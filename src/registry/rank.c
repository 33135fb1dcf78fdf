/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How the registry ranks sellers. Pure arithmetic on the evidence in rg_rank_stats; the registry
 * calls it from its background pass (never per query) and serves the results.
 *
 *   score      = 0.6 * reputation + 0.4 * price_score                     both in [0, 1]
 *
 *   price_score: among the active sellers that match a listing's service and capability, each
 *     seller's price is the blended price (3 * input + output) / 4 of its cheapest matching
 *     offering (the usual 3:1 token mix); with lo and hi the cheapest and dearest of those,
 *     price_score = (hi - price) / (hi - lo): 1 for the cheapest, 0 for the dearest, 1 for all
 *     when they cost the same (or there is one).
 *
 *   reputation = 0.35 * U + 0.35 * S + 0.15 * L + 0.15 * A
 *     Every component is 0.5 (the neutral prior) for a seller with no evidence, so a newcomer's
 *     reputation is exactly 0.5; evidence moves it, and old evidence fades with a time constant
 *     tau (7 days): every count below is multiplied by exp(-dt / tau) as time passes.
 *     U, uptime  = (hits + 10 * 0.5) / (expected + 10), at most 1. `expected` grows by one per
 *                  heartbeat interval since the first announce (active or not); `hits` by one
 *                  per accepted heartbeat at least half an interval after the last counted one,
 *                  and never above expected + 1 (heartbeating faster than asked earns nothing).
 *     S, success = (successes + 5 * 0.5) / (successes + failures + 5), from counted feedback:
 *                  "success" is a success, "error" and "timeout" are failures, "refused" is not
 *                  counted (it may be the buyer's fault).
 *     L, latency = (sum of l_i + 5 * 0.5) / (n + 5) over successful reports, with
 *                  l_i = 2000 / (2000 + t_i), t_i the report's ttft_ms (latency_ms if no ttft):
 *                  a 2 s first token scores 0.5, an instant one 1. Averaging bounded scores
 *                  rather than times keeps one absurd report from dominating.
 *     A, age     = (age + 0.5 * 7 d) / (age + 7 d): 0.5 when new, 0.75 at a week, towards 1.
 *   The prior weights (10 intervals, 5 reports) are how much evidence it takes to move a
 *   component halfway from 0.5 to what it shows.
 */
#include "rank.h"

#include <math.h>
#include <string.h>

#define DAY_MS (24.0 * 3600.0 * 1000.0)

void rg_rank_params_default(rg_rank_params *p, double interval_ms)
{
    p->interval_ms = interval_ms > 0 ? interval_ms : 30000.0;
    p->tau_ms = 7 * DAY_MS;
    p->prior = 0.5;
    p->uptime_k = 10.0;
    p->success_k = 5.0;
    p->latency_k = 5.0;
    p->latency_ref_ms = 2000.0;
    p->age_ref_ms = 7 * DAY_MS;
}

void rg_rank_advance(rg_rank_stats *s, const rg_rank_params *p, int64_t now_ms)
{
    if (now_ms <= s->updated_ms)
        return;
    double dt = (double)(now_ms - s->updated_ms);
    double d = exp(-dt / p->tau_ms);
    /* The integral of a decayed rate of 1/interval over dt: tau/interval * (1 - d). */
    double accrued = p->tau_ms / p->interval_ms * -expm1(-dt / p->tau_ms);

    s->up_hits *= d;
    s->up_expected = s->up_expected * d + accrued;
    s->fb_success *= d;
    s->fb_failure *= d;
    s->lat_n *= d;
    s->lat_sum *= d;
    s->updated_ms = now_ms;
}

void rg_rank_heartbeat(rg_rank_stats *s, const rg_rank_params *p, int64_t now_ms)
{
    rg_rank_advance(s, p, now_ms);
    if (s->last_hit_ms != 0 && (double)(now_ms - s->last_hit_ms) < p->interval_ms / 2)
        return;
    s->up_hits += 1.0;
    /* A perfect seller stays within one of `expected`; more is a seller heartbeating faster than
     * asked, which must not buy reputation. */
    if (s->up_hits > s->up_expected + 1.0)
        s->up_hits = s->up_expected + 1.0;
    s->last_hit_ms = now_ms;
}

void rg_rank_feedback(rg_rank_stats *s, const rg_rank_params *p, int64_t now_ms, rg_outcome o,
                      uint64_t latency_ms)
{
    rg_rank_advance(s, p, now_ms);
    switch (o) {
    case RG_OUTCOME_SUCCESS:
        s->fb_success += 1.0;
        if (latency_ms > 0) {
            s->lat_n += 1.0;
            s->lat_sum += p->latency_ref_ms / (p->latency_ref_ms + (double)latency_ms);
        }
        break;
    case RG_OUTCOME_ERROR:
    case RG_OUTCOME_TIMEOUT:
        s->fb_failure += 1.0;
        break;
    case RG_OUTCOME_REFUSED:
        break;
    }
}

static double clamp01(double v)
{
    if (!(v >= 0.0)) /* also catches NaN */
        return 0.0;
    return v > 1.0 ? 1.0 : v;
}

double rg_rank_reputation(const rg_rank_stats *s, const rg_rank_params *p, int64_t now_ms,
                          rg_rank_parts *parts)
{
    rg_rank_stats t = *s;
    rg_rank_parts c;
    double age;

    rg_rank_advance(&t, p, now_ms);
    c.uptime = clamp01((t.up_hits + p->uptime_k * p->prior) / (t.up_expected + p->uptime_k));
    c.success = clamp01((t.fb_success + p->success_k * p->prior) /
                        (t.fb_success + t.fb_failure + p->success_k));
    c.latency = clamp01((t.lat_sum + p->latency_k * p->prior) / (t.lat_n + p->latency_k));
    age = now_ms > t.first_seen_ms ? (double)(now_ms - t.first_seen_ms) : 0.0;
    c.age = clamp01((age + p->prior * p->age_ref_ms) / (age + p->age_ref_ms));
    if (parts != NULL)
        *parts = c;
    return clamp01(0.35 * c.uptime + 0.35 * c.success + 0.15 * c.latency + 0.15 * c.age);
}

uint64_t rg_rank_blend(uint64_t input, uint64_t output)
{
    unsigned __int128 v = (unsigned __int128)input * 3u + output;
    return (uint64_t)(v / 4u);
}

double rg_rank_price_score(uint64_t price, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return 1.0;
    if (price <= lo)
        return 1.0;
    if (price >= hi)
        return 0.0;
    return (double)(hi - price) / (double)(hi - lo);
}

double rg_rank_score(double reputation, double price_score)
{
    return RG_SCORE_W_REPUTATION * clamp01(reputation) + RG_SCORE_W_PRICE * clamp01(price_score);
}

bool rg_outcome_parse(rg_outcome *out, const char *name)
{
    static const struct {
        const char *name;
        rg_outcome o;
    } names[] = {{"success", RG_OUTCOME_SUCCESS},
                 {"error", RG_OUTCOME_ERROR},
                 {"timeout", RG_OUTCOME_TIMEOUT},
                 {"refused", RG_OUTCOME_REFUSED}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].o;
            return true;
        }
    }
    return false;
}
