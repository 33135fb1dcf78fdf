/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's routing policies between real processes (netfix.h): anvil, openseed-registry, three
 * openseed-seller on the echo upstream at 0.5/1.5, 2/6 and 3/9 USDC per million input/output
 * tokens, and openseed-buyer. With the default policy (`route = best`) every request goes to the
 * best-scored seller, the cheapest. With `--route weighted` (and a fixed `--route-seed`) the first
 * seller is drawn with probability score^2 / sum (docs/protocol.md §10.12): over 60 sequential
 * requests every seller is used, the cheapest most and the dearest least, and the books of the
 * buyer and every seller agree afterwards.
 *
 * The registry scores these three about 0.70, 0.46 and 0.30 (0.6 x reputation 0.5 + 0.4 x price
 * score 1, 0.4, 0), so on registry scores alone the shares would be about 62%, 27% and 11% (37,
 * 16 and 7 of 60). The buyer's observed factor (ok + 1)/(ok + 2) starts at 1/2 for a seller it
 * has not used, which tilts early draws further towards the sellers already used: over seeds
 * 1..20 the cheapest got 23..54 of 60 and the order below failed for 2 of them. So the seed is
 * fixed: with it the run repeats exactly (34, 19, 7 when written, the same under ASan); the
 * scores drift a little (heartbeats, observed latency), which could move only a draw right on a
 * boundary, far from changing the order. The middle seller's price is 2/6 rather than 1/3: at 1/3
 * the two cheaper ones would be drawn 51% and 40% of the time, too close to order over 60 requests.
 * OPENSEED_TEST_ROUTE_SEED runs it with another seed.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "netfix.h"

#define CHAIN 31337
#define N_BEST 15
#define N_WEIGHTED 60

static netfix fx;
static int failed;

static int setup(void **state)
{
    char why[NF_WHY] = "";
    static const char *const offers[3] = {
        "echo model=echo-1 apis=openai.chat input=0.5 output=1.5",
        "echo model=echo-1 apis=openai.chat input=2 output=6",
        "echo model=echo-1 apis=openai.chat input=3 output=9",
    };
    (void)state;

    if (nf_market(&fx, "route", CHAIN, offers, 3, "echo", NULL, why, sizeof(why)) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "setup: %s\n", why);
    failed = 1;
    return -1;
}

static int teardown(void **state)
{
    (void)state;
    nf_teardown(&fx, failed);
    return 0;
}

/* Sends n chat requests one after the other; counts[i] += those seller i answered. */
static void send_requests(int n, int counts[3])
{
    char body[256];
    for (int k = 0; k < n; k++) {
        nf_res r;
        int who = -1;
        snprintf(body, sizeof(body),
                 "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"route %d\"}]}",
                 k);
        nf_post(&fx, &r, "/v1/chat/completions", body);
        if (r.status != 200)
            fail_msg("request %d: status %ld: %s", k, r.status, r.body != NULL ? r.body : "");
        for (int i = 0; i < 3; i++)
            if (strcasecmp(r.peer, fx.sel_hex[i]) == 0)
                who = i;
        if (who < 0)
            fail_msg("request %d: answered by %s, not one of the sellers", k, r.peer);
        counts[who]++;
        nf_res_free(&r);
    }
}

static void test_best_sends_all_to_the_best(void **state)
{
    char why[NF_WHY] = "";
    int counts[3] = {0, 0, 0};
    (void)state;
    failed = 1;

    if (nf_buyer(&fx, NULL, why, sizeof(why)) != 0) /* route = best: the default */
        fail_msg("buyer: %s", why);
    send_requests(N_BEST, counts);
    assert_int_equal(counts[0], N_BEST);
    assert_int_equal(nf_kill(&fx.buyer, SIGTERM), 0);
    failed = 0;
}

static void test_weighted_spreads_by_score(void **state)
{
    /* OPENSEED_TEST_ROUTE_SEED tries another seed (the assertions hold for most) */
    const char *seed = getenv("OPENSEED_TEST_ROUTE_SEED");
    const char *const extra[] = {"--route", "weighted", "--route-seed",
                                 seed != NULL && seed[0] != '\0' ? seed : "20240617", NULL};
    char why[NF_WHY] = "";
    int counts[3] = {0, 0, 0}, n_channels = 0;
    (void)state;
    failed = 1;

    /* the same buyer (address, data directory, channel) restarted with the policy's flags */
    char keep[sizeof(fx.buyer.argbuf)];
    const char *base[NF_MAX_ARGS + 1];
    size_t na = 0;
    memcpy(keep, fx.buyer.argbuf, sizeof(keep));
    for (; fx.buyer.argv[na] != NULL; na++)
        base[na] = keep + (fx.buyer.argv[na] - fx.buyer.argbuf);
    base[na] = NULL;
    assert_int_equal(nf_set_args(&fx.buyer, base, extra), 0);
    if (nf_restart(&fx, &fx.buyer, why, sizeof(why)) != 0)
        fail_msg("buyer: %s", why);
    send_requests(N_WEIGHTED, counts);
    fprintf(stderr, "weighted: %d requests to 0.5/1.5, %d to 2/6, %d to 3/9\n", counts[0],
            counts[1], counts[2]);
    assert_int_equal(counts[0] + counts[1] + counts[2], N_WEIGHTED);
    for (int i = 0; i < 3; i++)
        assert_true(counts[i] >= 1);
    assert_true(counts[0] > counts[1]);
    assert_true(counts[1] > counts[2]);
    /* the cheapest is drawn about 62% of the time: far from all of them, as under best */
    assert_true(counts[0] < N_WEIGHTED - 5);

    /* the money still adds up on every channel the draws opened */
    assert_int_equal(nf_buyer_idle(&fx, 10000), 0);
    if (nf_reconcile(&fx, 0, &n_channels, why, sizeof(why)) != 0)
        fail_msg("reconcile: %s", why);
    assert_int_equal(n_channels, 3);
    assert_int_equal(nf_kill(&fx.buyer, SIGTERM), 0);
    failed = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_best_sends_all_to_the_best),
        cmocka_unit_test(test_weighted_spreads_by_score),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
