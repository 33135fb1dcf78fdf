/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's scoring math (src/registry/rank.c), which is pure and so is compiled into this
 * test directly (unit tests link libcommon only). Expected values are worked out by hand from the
 * formula documented at the top of rank.c; each test names the arithmetic it checks.
 */
#include "testutil.h"

#include <math.h>

#include "rank.h"


#define I_MS 30000.0 /* heartbeat interval */
#define T0 INT64_C(1763700000000)
#define DAY INT64_C(86400000)
#define EPS 1e-9

static rg_rank_params params(void)
{
    rg_rank_params p;
    rg_rank_params_default(&p, I_MS);
    return p;
}

static rg_rank_stats fresh(int64_t t)
{
    rg_rank_stats s;
    memset(&s, 0, sizeof(s));
    s.first_seen_ms = t;
    s.updated_ms = t;
    return s;
}

static void test_newcomer_is_neutral(void **state)
{
    (void)state;
    rg_rank_params p = params();
    rg_rank_stats s = fresh(T0);
    rg_rank_parts c;

    assert_true(fabs(rg_rank_reputation(&s, &p, T0, &c) - 0.5) < EPS);
    assert_true(fabs(c.uptime - 0.5) < EPS);
    assert_true(fabs(c.success - 0.5) < EPS);
    assert_true(fabs(c.latency - 0.5) < EPS);
    assert_true(fabs(c.age - 0.5) < EPS);
    /* 0.6 * 0.5 + 0.4 * 1 */
    assert_true(fabs(rg_rank_score(0.5, 1.0) - 0.7) < EPS);
}

static void test_uptime_regular_vs_silent(void **state)
{
    (void)state;
    rg_rank_params p = params();
    rg_rank_stats good = fresh(T0), silent = fresh(T0);
    rg_rank_parts cg, cs;
    int64_t t = T0;

    for (int i = 1; i <= 100; i++) {
        t = T0 + (int64_t)(i * I_MS);
        rg_rank_heartbeat(&good, &p, t);
    }
    double rg = rg_rank_reputation(&good, &p, t, &cg);
    double rs = rg_rank_reputation(&silent, &p, t, &cs);
    /* 100 hits over ~100 expected intervals (decay over 50 min is ~0.3 %): (100 + 5) / (100 + 10)
     * = 0.9545; silent: 5 / 110 = 0.0455. */
    assert_true(fabs(cg.uptime - 105.0 / 110.0) < 0.005);
    assert_true(fabs(cs.uptime - 5.0 / 110.0) < 0.005);
    assert_true(rg > 0.5 && rs < 0.5);
    /* Only uptime (and age, equal for both) differ: 0.35 * (0.9545 - 0.0455). */
    assert_true(fabs((rg - rs) - 0.35 * (cg.uptime - cs.uptime)) < EPS);
}

static void test_fast_heartbeats_earn_nothing(void **state)
{
    (void)state;
    rg_rank_params p = params();
    rg_rank_stats normal = fresh(T0), spam = fresh(T0);
    rg_rank_parts cn, cs;
    int64_t end = T0 + (int64_t)(40 * I_MS);

    for (int i = 1; i <= 40; i++)
        rg_rank_heartbeat(&normal, &p, T0 + (int64_t)(i * I_MS));
    for (int i = 1; i <= 160; i++) /* four per interval */
        rg_rank_heartbeat(&spam, &p, T0 + (int64_t)(i * I_MS / 4));
    rg_rank_reputation(&normal, &p, end, &cn);
    rg_rank_reputation(&spam, &p, end, &cs);
    /* Hits never exceed the intervals elapsed + 1: the spammer ends within one hit of the regular
     * seller, so its uptime is at most (e + 1 + 5) / (e + 10) against (e + 5) / (e + 10). */
    assert_true(normal.up_hits < 40.5 && normal.up_hits > 39.5);
    assert_true(spam.up_hits <= spam.up_expected + 1.0 + EPS);
    assert_true(cs.uptime - cn.uptime <= 1.0 / (normal.up_expected + 10.0) + 1e-6);
    assert_true(cs.uptime >= cn.uptime - EPS);
}

static void test_success_rate(void **state)
{
    (void)state;
    rg_rank_params p = params();
    rg_rank_stats ok = fresh(T0), bad = fresh(T0), ref = fresh(T0);
    rg_rank_parts co, cb, cr;

    for (int i = 0; i < 20; i++) {
        rg_rank_feedback(&ok, &p, T0, RG_OUTCOME_SUCCESS, 0);
        rg_rank_feedback(&bad, &p, T0, i % 2 ? RG_OUTCOME_ERROR : RG_OUTCOME_TIMEOUT, 0);
        rg_rank_feedback(&ref, &p, T0, RG_OUTCOME_REFUSED, 0);
    }
    rg_rank_reputation(&ok, &p, T0, &co);
    rg_rank_reputation(&bad, &p, T0, &cb);
    rg_rank_reputation(&ref, &p, T0, &cr);
    assert_true(fabs(co.success - 22.5 / 25.0) < EPS); /* (20 + 2.5) / (20 + 5) */
    assert_true(fabs(cb.success - 2.5 / 25.0) < EPS);  /* (0 + 2.5) / (20 + 5) */
    assert_true(fabs(cr.success - 0.5) < EPS);         /* refusals are not counted */
    /* Successes without a latency leave the latency term at the prior. */
    assert_true(fabs(co.latency - 0.5) < EPS);
}

static void test_latency(void **state)
{
    (void)state;
    rg_rank_params p = params();
    rg_rank_stats mid = fresh(T0), fast = fresh(T0), slow = fresh(T0);
    rg_rank_parts cm, cf, cs;

    for (int i = 0; i < 10; i++) {
        rg_rank_feedback(&mid, &p, T0, RG_OUTCOME_SUCCESS, 2000);
        rg_rank_feedback(&fast, &p, T0, RG_OUTCOME_SUCCESS, 1);
        rg_rank_feedback(&slow, &p, T0, RG_OUTCOME_SUCCESS, 18000);
        /* failures carry no latency sample */
        rg_rank_feedback(&mid, &p, T0, RG_OUTCOME_ERROR, 1);
    }
    rg_rank_reputation(&mid, &p, T0, &cm);
    rg_rank_reputation(&fast, &p, T0, &cf);
    rg_rank_reputation(&slow, &p, T0, &cs);
    /* 2000 ms scores 2000 / 4000 = 0.5: (10 * 0.5 + 2.5) / 15 = 0.5 */
    assert_true(fabs(cm.latency - 0.5) < EPS);
    /* 1 ms: 2000 / 2001 each: (10 * 2000/2001 + 2.5) / 15 */
    assert_true(fabs(cf.latency - (10.0 * 2000.0 / 2001.0 + 2.5) / 15.0) < EPS);
    /* 18000 ms: 0.1 each: (1 + 2.5) / 15 */
    assert_true(fabs(cs.latency - 3.5 / 15.0) < EPS);
}

static void test_age(void **state)
{
    (void)state;
    rg_rank_params p = params();
    rg_rank_stats s = fresh(T0);
    rg_rank_parts c;

    rg_rank_reputation(&s, &p, T0 + 7 * DAY, &c);
    assert_true(fabs(c.age - 0.75) < EPS); /* (7 + 3.5) / (7 + 7) */
    rg_rank_reputation(&s, &p, T0 + 21 * DAY, &c);
    assert_true(fabs(c.age - 24.5 / 28.0) < EPS);
    /* A clock before first_seen counts as age 0. */
    rg_rank_reputation(&s, &p, T0 - DAY, &c);
    assert_true(fabs(c.age - 0.5) < EPS);
}

static void test_decay(void **state)
{
    (void)state;
    rg_rank_params p = params();
    rg_rank_stats s = fresh(T0);
    int64_t tau = (int64_t)p.tau_ms;

    for (int i = 0; i < 10; i++)
        rg_rank_feedback(&s, &p, T0, RG_OUTCOME_ERROR, 0);
    rg_rank_advance(&s, &p, T0 + tau);
    assert_true(fabs(s.fb_failure - 10.0 * exp(-1.0)) < 1e-9);
    /* expected intervals accrue as tau/I * (1 - e^-1) over one tau */
    assert_true(fabs(s.up_expected - p.tau_ms / I_MS * (1.0 - exp(-1.0))) < 1e-6);
    /* A clock that goes backwards changes nothing. */
    rg_rank_stats before = s;
    rg_rank_advance(&s, &p, T0);
    assert_memory_equal(&before, &s, sizeof(s));
}

static void test_blend_and_price_score(void **state)
{
    (void)state;
    /* (3 * 100000 + 300000) / 4 */
    assert_int_equal(rg_rank_blend(100000, 300000), 150000);
    assert_int_equal(rg_rank_blend(1, 2), 1); /* 5 / 4 rounds down */
    assert_true(rg_rank_blend(UINT64_MAX, UINT64_MAX) == UINT64_MAX);

    assert_true(rg_rank_price_score(100, 100, 100) == 1.0); /* all equal */
    assert_true(rg_rank_price_score(100, 100, 300) == 1.0); /* cheapest */
    assert_true(rg_rank_price_score(300, 100, 300) == 0.0); /* dearest */
    assert_true(fabs(rg_rank_price_score(200, 100, 300) - 0.5) < EPS);
    assert_true(fabs(rg_rank_price_score(150, 100, 300) - 0.75) < EPS);
    assert_true(rg_rank_price_score(50, 100, 300) == 1.0);  /* clamped */
    assert_true(rg_rank_price_score(900, 100, 300) == 0.0); /* clamped */
    assert_true(fabs(rg_rank_price_score(1, 0, UINT64_MAX) - 1.0) < EPS);
}

static void test_score_weights(void **state)
{
    (void)state;
    assert_true(fabs(rg_rank_score(1.0, 0.0) - 0.6) < EPS);
    assert_true(fabs(rg_rank_score(0.0, 1.0) - 0.4) < EPS);
    assert_true(fabs(rg_rank_score(0.25, 0.5) - 0.35) < EPS);
    /* Out-of-range inputs are clamped, NaN counts as 0. */
    assert_true(fabs(rg_rank_score(2.0, -1.0) - 0.6) < EPS);
    assert_true(fabs(rg_rank_score(NAN, 1.0) - 0.4) < EPS);
    /* A reputable but dearer seller beats a cheap failing one: 0.6 * 0.9 + 0 > 0.6 * 0.1 + 0.4 */
    assert_true(rg_rank_score(0.9, 0.0) > rg_rank_score(0.1, 1.0));
}

static void test_outcome_names(void **state)
{
    (void)state;
    rg_outcome o;
    assert_true(rg_outcome_parse(&o, "success") && o == RG_OUTCOME_SUCCESS);
    assert_true(rg_outcome_parse(&o, "error") && o == RG_OUTCOME_ERROR);
    assert_true(rg_outcome_parse(&o, "timeout") && o == RG_OUTCOME_TIMEOUT);
    assert_true(rg_outcome_parse(&o, "refused") && o == RG_OUTCOME_REFUSED);
    assert_false(rg_outcome_parse(&o, "Success"));
    assert_false(rg_outcome_parse(&o, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newcomer_is_neutral),
        cmocka_unit_test(test_uptime_regular_vs_silent),
        cmocka_unit_test(test_fast_heartbeats_earn_nothing),
        cmocka_unit_test(test_success_rate),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_blend_and_price_score),
        cmocka_unit_test(test_score_weights),
        cmocka_unit_test(test_outcome_names),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
