/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token-bucket arithmetic of ratelimit.c with an injected clock. The expected numbers follow from
 * the definition in ratelimit.h (burst B tokens, R tokens per second, 1/1000-token accounting,
 * header values rounded up to whole seconds) and are worked out next to each case. Also: the
 * bounded table (LRU eviction at capacity, a source evicted comes back with a full bucket), many
 * distinct keys on a striped table, and exactness under concurrent use.
 */
#include "testutil.h"

#include <pthread.h>

#include "openseed/ratelimit.h"

static os_ratelimit_result take(os_ratelimit *rl, const char *key, uint64_t now)
{
    os_ratelimit_result r;
    memset(&r, 0xaa, sizeof(r));
    assert_int_equal(os_ratelimit_take(rl, &r, key, now), OS_OK);
    return r;
}

static void test_bad_arguments(void **state)
{
    os_ratelimit *rl = (os_ratelimit *)1;
    os_ratelimit_result r;
    char key[OS_RATELIMIT_KEY_MAX + 2];
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, 0, 5, 16), OS_ERR_INVALID);
    assert_null(rl);
    assert_int_equal(os_ratelimit_new(&rl, 5, 0, 16), OS_ERR_INVALID);
    assert_int_equal(os_ratelimit_new(NULL, 5, 5, 16), OS_ERR_INVALID);
    assert_int_equal(os_ratelimit_new(&rl, 5, 5, 0), OS_OK);
    assert_int_equal(os_ratelimit_capacity(rl), 65536);

    assert_int_equal(os_ratelimit_take(rl, &r, "", 0), OS_ERR_INVALID);
    assert_int_equal(os_ratelimit_take(rl, &r, NULL, 0), OS_ERR_INVALID);
    memset(key, 'k', sizeof(key));
    key[OS_RATELIMIT_KEY_MAX + 1] = '\0'; /* 64 bytes: one too many */
    assert_int_equal(os_ratelimit_take(rl, &r, key, 0), OS_ERR_TOOBIG);
    key[OS_RATELIMIT_KEY_MAX] = '\0'; /* 63 bytes: the longest allowed */
    assert_int_equal(os_ratelimit_take(rl, &r, key, 0), OS_OK);
    assert_true(r.allowed);
    assert_int_equal(os_ratelimit_size(rl), 1);
    os_ratelimit_free(rl);
    os_ratelimit_free(NULL);
}

/* R = 10/s, B = 5: five at once, then refused; header values at each step. */
static void test_burst(void **state)
{
    os_ratelimit *rl;
    os_ratelimit_result r;
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, 10, 5, 16), OS_OK);
    for (uint32_t i = 0; i < 5; i++) {
        r = take(rl, "10.0.0.1", 1000);
        assert_true(r.allowed);
        assert_int_equal(r.limit, 5);
        assert_int_equal(r.remaining, 4 - i);
        /* (i+1) tokens missing at 10 per second: (i+1)*100 ms, rounded up to 1 s */
        assert_int_equal(r.reset_s, 1);
        assert_int_equal(r.retry_after_s, 0);
    }
    r = take(rl, "10.0.0.1", 1000);
    assert_false(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.reset_s, 1);       /* 5 tokens at 10/s = 500 ms */
    assert_int_equal(r.retry_after_s, 1); /* 1 token = 100 ms, rounded up */
    /* another key is independent */
    r = take(rl, "10.0.0.2", 1000);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 4);
    os_ratelimit_free(rl);
}

/* R = 2/s, B = 2: one token every 500 ms, exactly. */
static void test_refill_exact(void **state)
{
    os_ratelimit *rl;
    os_ratelimit_result r;
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, 2, 2, 16), OS_OK);
    assert_true(take(rl, "a", 0).allowed);
    assert_true(take(rl, "a", 0).allowed);
    r = take(rl, "a", 499); /* 998/1000 of a token */
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_s, 1);
    r = take(rl, "a", 500); /* exactly one token */
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.reset_s, 1); /* 2 tokens missing: 1000 ms */
    /* a long idle time refills to the burst, not beyond */
    r = take(rl, "a", 1000000);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 1);
    os_ratelimit_free(rl);
}

/* R = 1/s, B = 60: the reset header counts seconds until full, rounded up. */
static void test_reset_value(void **state)
{
    os_ratelimit *rl;
    os_ratelimit_result r;
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, 1, 60, 16), OS_OK);
    r = take(rl, "k", 0);
    assert_int_equal(r.remaining, 59);
    assert_int_equal(r.reset_s, 1); /* 1000 thousandths at 1 per ms */
    for (int i = 0; i < 59; i++)
        assert_true(take(rl, "k", 0).allowed);
    r = take(rl, "k", 0);
    assert_false(r.allowed);
    assert_int_equal(r.reset_s, 60);
    assert_int_equal(r.retry_after_s, 1);
    /* 30.5 s later: 30.5 tokens, one taken -> 29.5 left, 30.5 s to full -> 31 */
    r = take(rl, "k", 30500);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 29);
    assert_int_equal(r.reset_s, 31);
    /* full bucket: reset 0 before taking, 1 s after taking one */
    r = take(rl, "k", 200000);
    assert_int_equal(r.remaining, 59);
    assert_int_equal(r.reset_s, 1);
    os_ratelimit_free(rl);
}

/* A clock that steps back earns nothing (and is not held against the bucket later). */
static void test_clock_backwards(void **state)
{
    os_ratelimit *rl;
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, 1, 1, 16), OS_OK);
    assert_true(take(rl, "k", 5000).allowed);
    assert_false(take(rl, "k", 1000).allowed);
    assert_false(take(rl, "k", 5999).allowed);
    assert_true(take(rl, "k", 6000).allowed);
    os_ratelimit_free(rl);
}

/* The largest rate and burst over the longest gap: no overflow in the refill. */
static void test_extremes(void **state)
{
    os_ratelimit *rl;
    os_ratelimit_result r;
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, UINT32_MAX, UINT32_MAX, 16), OS_OK);
    r = take(rl, "k", 0);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, UINT32_MAX - 1);
    r = take(rl, "k", UINT64_MAX);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, UINT32_MAX - 1);
    assert_int_equal(r.reset_s, 1);
    os_ratelimit_free(rl);

    /* R = 1, B = UINT32_MAX: emptying the bucket takes time, refilling it ~136 years */
    assert_int_equal(os_ratelimit_new(&rl, 1, UINT32_MAX, 16), OS_OK);
    r = take(rl, "k", 0);
    assert_int_equal(r.reset_s, 1); /* one token short */
    assert_true(take(rl, "k", 0).allowed);
    r = take(rl, "k", 0);
    assert_int_equal(r.reset_s, 3); /* three tokens short at 1/s */
    os_ratelimit_free(rl);
}

/* Capacity 4 (one stripe, exact LRU): a fifth key evicts the least recently used. */
static void test_eviction(void **state)
{
    os_ratelimit *rl;
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, 1, 1, 4), OS_OK);
    assert_true(take(rl, "a", 0).allowed);
    assert_true(take(rl, "b", 0).allowed);
    assert_true(take(rl, "c", 0).allowed);
    assert_true(take(rl, "d", 0).allowed);
    assert_int_equal(os_ratelimit_size(rl), 4);
    assert_false(take(rl, "a", 1).allowed); /* a is now the most recent; b the oldest */
    assert_true(take(rl, "e", 1).allowed);  /* evicts b */
    assert_int_equal(os_ratelimit_size(rl), 4);
    /* a, d, e are still held (empty buckets); c is now the oldest */
    assert_false(take(rl, "a", 2).allowed);
    assert_false(take(rl, "d", 2).allowed);
    assert_false(take(rl, "e", 2).allowed);
    /* b was forgotten: it comes back with a full bucket, evicting c */
    assert_true(take(rl, "b", 2).allowed);
    assert_true(take(rl, "c", 2).allowed); /* c too was forgotten (evicting a) */
    assert_true(take(rl, "a", 3).allowed);
    assert_int_equal(os_ratelimit_size(rl), 4);
    os_ratelimit_free(rl);
}

/* 200k distinct sources through the default, striped 65536-entry table. */
static void test_many_keys(void **state)
{
    os_ratelimit *rl;
    char key[32];
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, 1, 1, 0), OS_OK);
    for (unsigned i = 0; i < 200000; i++) {
        snprintf(key, sizeof(key), "2001:db8:%x:%x::/64", i >> 16, i & 0xffff);
        assert_true(take(rl, key, 10).allowed);
    }
    assert_int_equal(os_ratelimit_size(rl), 65536);
    /* the most recent source is still tracked, so its second request is refused */
    assert_false(take(rl, key, 10).allowed);
    /* the first one was evicted long ago */
    assert_true(take(rl, "2001:db8:0:0::/64", 10).allowed);
    assert_int_equal(os_ratelimit_size(rl), 65536);
    os_ratelimit_free(rl);
}

typedef struct race {
    os_ratelimit *rl;
    int allowed;
} race;

static void *racer(void *arg)
{
    race *r = arg;
    os_ratelimit_result res;
    for (int i = 0; i < 20000; i++) {
        if (os_ratelimit_take(r->rl, &res, i % 2 ? "shared" : "other", 42) == OS_OK &&
            res.allowed && i % 2)
            r->allowed++;
    }
    return NULL;
}

/* Four threads on one key with the clock frozen: exactly the burst gets through. */
static void test_concurrent_exact(void **state)
{
    os_ratelimit *rl;
    pthread_t th[4];
    race rs[4];
    int total = 0;
    (void)state;

    assert_int_equal(os_ratelimit_new(&rl, 1, 1000, 0), OS_OK);
    for (int i = 0; i < 4; i++) {
        rs[i].rl = rl;
        rs[i].allowed = 0;
        assert_int_equal(pthread_create(&th[i], NULL, racer, &rs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += rs[i].allowed;
    }
    assert_int_equal(total, 1000);
    os_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),    cmocka_unit_test(test_burst),
        cmocka_unit_test(test_refill_exact),     cmocka_unit_test(test_reset_value),
        cmocka_unit_test(test_clock_backwards),  cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_eviction),         cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_concurrent_exact),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
