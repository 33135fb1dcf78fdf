/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The three daemons as real processes on loopback, started from their binaries with flags only
 * (netfix.h): anvil with the committed contracts, openseed-registry, two openseed-seller on the
 * built-in echo upstream, and openseed-buyer on a funded wallet. A client talks to the buyer as an
 * OpenAI or Anthropic client would: a whole and a streamed chat completion and an Anthropic
 * message are answered and paid; the seller that answered is then killed with SIGKILL and the next
 * request is answered by the other one (failover between processes); finally SIGTERM stops every
 * daemon cleanly (exit 0).
 *
 * scripts/valgrind.sh runs this test with every daemon under valgrind (OPENSEED_NETFIX_VALGRIND=1):
 * the SIGTERM at the end then also fails on any leak or memory error valgrind saw.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "netfix.h"

#define CHAIN 31337

static netfix fx;
static int failed;

static int setup(void **state)
{
    char why[NF_WHY] = "";
    static const char *const offers[2] = {
        "echo model=echo-1 apis=openai.chat,openai.embeddings,anthropic.messages input=0.5 "
        "output=1.5",
        "echo model=echo-1 apis=openai.chat,openai.embeddings,anthropic.messages input=0.4 "
        "output=1.2"};
    (void)state;

    if (nf_market(&fx, "network", CHAIN, offers, 2, "echo", NULL, why, sizeof(why)) != 0 ||
        nf_buyer(&fx, NULL, why, sizeof(why)) != 0)
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

static void test_paid_calls_between_processes(void **state)
{
    nf_res r;
    (void)state;
    failed = 1;

    nf_post(&fx, &r, "/v1/chat/completions",
            "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"over the wire\"}]}");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"content\":\"echo: over the wire\""));
    assert_string_equal(r.peer, fx.sel_hex[1]); /* the cheaper one */
    nf_res_free(&r);

    nf_post(&fx, &r, "/v1/chat/completions",
            "{\"model\":\"echo\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
            "\"streamed\"}]}");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"content\":\" streamed\""));
    assert_non_null(strstr(r.body, "data: [DONE]"));
    nf_res_free(&r);

    nf_post(&fx, &r, "/v1/messages",
            "{\"model\":\"echo\",\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":"
            "\"bonjour\"}]}");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"text\":\"echo: bonjour\""));
    nf_res_free(&r);
    failed = 0;
}

static void test_failover_after_kill9(void **state)
{
    nf_res r;
    (void)state;
    failed = 1;

    assert_int_equal(nf_kill(&fx.sel[1], SIGKILL), -1); /* died of the signal */
    nf_post(&fx, &r, "/v1/chat/completions",
            "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"still here\"}]}");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "echo: still here"));
    assert_string_equal(r.peer, fx.sel_hex[0]);
    nf_res_free(&r);
    failed = 0;
}

static void test_sigterm_stops_cleanly(void **state)
{
    (void)state;
    failed = 1;
    assert_int_equal(nf_kill(&fx.buyer, SIGTERM), 0);
    assert_int_equal(nf_kill(&fx.sel[0], SIGTERM), 0);
    assert_int_equal(nf_kill(&fx.reg, SIGTERM), 0);
    failed = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paid_calls_between_processes),
        cmocka_unit_test(test_failover_after_kill9),
        cmocka_unit_test(test_sigterm_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
