/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The buyer's seller discovery (src/buyer/peers.c) against the real registry core running in this
 * process on loopback (each registry over its own SQLite file in a temp directory), with sellers
 * announced and heartbeating through the registry client helpers, and a fake clock for TTLs and
 * cooldowns. Covered: ranking by the registry's score (and the adjusted score's formula), the API
 * filter, input and output price caps, pins (listed, not yet listed -> looked up, unknown), records
 * for another escrow or chain dropped, every page of a listing longer than one page, the endpoint
 * of a newer heartbeat, cooldowns (doubling, pinned sellers still offered, a success ending one),
 * observed time to first token reordering sellers, the cache (served stale with a warning while
 * the registry is down, OS_ERR_NETWORK with nothing cached), registries tried in order, the
 * /v1/models shape (a union over registries) and the management view; the weighted routing
 * policy's pick at its exact boundaries. The peer checker is tested
 * on its own with forged peer objects a registry could serve: tampered records, foreign
 * signatures, forged, stale and foreign heartbeats, malformed fields.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "registry_client.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "openseed/init.h"
#include "openseed/json.h"
#include "openseed/rng.h"

#include "peers.h"
#include "peers_internal.h"
#include "registry.h"
#include "treg.h"

#define CHAIN 31337
#define TTL 10000
#define T0 1000000

static const uint8_t OUR_ESCROW[20] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                       0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                       0x11, 0x11, 0x11, 0x11, 0x11, 0x11}; /* rc_record's */

/* ------------------------------------------------------------------ fixture */

typedef struct fx {
    treg reg[2];
    by_peers *bp;
    _Atomic int64_t clock; /* advanced by tests, read by any thread */
    os_logger log;
    FILE *logf;
    char *logbuf;
    size_t loglen;
} fx;

static int64_t fake_clock(void *ud)
{
    return atomic_load(&((fx *)ud)->clock);
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->clock = T0;
    f->logf = open_memstream(&f->logbuf, &f->loglen);
    if (f->logf == NULL) {
        free(f);
        return -1;
    }
    os_logger_init(&f->log, "buyer", OS_LOG_WARN);
    f->log.out = f->logf;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    by_peers_free(f->bp);
    for (size_t i = 0; i < 2; i++)
        treg_close(&f->reg[i]);
    fclose(f->logf);
    free(f->logbuf);
    free(f);
    return 0;
}

static bool log_has(fx *f, const char *needle)
{
    fflush(f->logf);
    return f->logbuf != NULL && strstr(f->logbuf, needle) != NULL;
}

/* A by_peers over the given base URLs, for chain_id, our escrow and the fake clock. */
static void bp_open(fx *f, const char *const *bases, size_t n, uint64_t chain_id)
{
    by_peers_config c;
    memset(&c, 0, sizeof(c));
    c.registries = bases;
    c.n_registries = n;
    c.chain_id = chain_id;
    memcpy(c.escrow, OUR_ESCROW, 20);
    c.ttl_ms = TTL;
    c.request_timeout_ms = 5000;
    c.log = &f->log;
    c.clock_ms = fake_clock;
    c.clock_ud = f;
    by_peers_free(f->bp);
    f->bp = NULL;
    assert_int_equal(by_peers_new(&f->bp, &c), OS_OK);
}

static void bp_open1(fx *f, const treg *t)
{
    const char *bases[1] = {t->base};
    bp_open(f, bases, 1, CHAIN);
}

/* ------------------------------------------------------------------ sellers */

/* Announces s with one offering per entry of offers, speaking apis (NULL: openai.chat), naming
 * escrow (NULL: ours). */
static void announce(const treg *t, rc_seller *s, const char *endpoint, const rc_offer *offers,
                     size_t n, const char *const *apis, const uint8_t *escrow)
{
    json_t *rec = rc_record(s, endpoint, rc_next_seq(s), (uint64_t)(rc_now_ms() / 1000), CHAIN,
                            escrow, offers, n);
    assert_non_null(rec);
    if (apis != NULL) {
        json_t *offs = json_object_get(rec, "offerings");
        for (size_t i = 0; i < json_array_size(offs); i++) {
            json_t *arr = json_array();
            for (size_t j = 0; apis[j] != NULL; j++)
                assert_int_equal(json_array_append_new(arr, json_string(apis[j])), 0);
            assert_int_equal(json_object_set_new(json_array_get(offs, i), "apis", arr), 0);
        }
    }
    char *body = rc_announce_body(rec, s);
    assert_non_null(body);
    rc_resp r;
    assert_int_equal(rc_call(&r, t->base, "POST", "/v1/announce", body), 0);
    if (r.status != 200)
        fail_msg("announce: %ld %s", r.status, r.body);
    rc_resp_free(&r);
    free(body);
    json_decref(rec);
}

static void announce1(const treg *t, rc_seller *s, uint32_t i, const char *service, uint64_t in,
                      uint64_t out)
{
    char ep[64];
    rc_offer o = {.service = service, .input = in, .output = out};
    assert_int_equal(rc_seller_init(s, i), 0);
    snprintf(ep, sizeof(ep), "http://seller-%u.example:8378", (unsigned)i);
    announce(t, s, ep, &o, 1, NULL, NULL);
}

static void heartbeat(const treg *t, rc_seller *s, const char *endpoint)
{
    char *body = rc_heartbeat_body(s, s, endpoint, rc_next_seq(s), (uint64_t)(rc_now_ms() / 1000),
                                   CHAIN, 1, 4);
    assert_non_null(body);
    rc_resp r;
    assert_int_equal(rc_call(&r, t->base, "POST", "/v1/heartbeat", body), 0);
    if (r.status != 200)
        fail_msg("heartbeat: %ld %s", r.status, r.body);
    rc_resp_free(&r);
    free(body);
}

/* Waits until the registry's listings (rebuilt every 100 ms) hold n sellers of service. */
static void wait_listed(const treg *t, const char *service, long n)
{
    for (int i = 0; i < 500; i++) {
        rc_resp r;
        long got = 0;
        if (rc_call(&r, t->base, "GET", "/v1/services", NULL) == 0 && r.status == 200) {
            json_t *j = json_loads(r.body, 0, NULL), *s;
            size_t k;
            json_array_foreach(json_object_get(j, "services"), k, s)
            {
                if (strcmp(json_string_value(json_object_get(s, "service")), service) == 0)
                    got = (long)json_integer_value(json_object_get(s, "peers"));
            }
            json_decref(j);
        }
        rc_resp_free(&r);
        if (got == n) {
            rc_sleep_ms(250); /* and one more rescore, so every score saw all of them */
            return;
        }
        rc_sleep_ms(20);
    }
    fail_msg("service %s never listed %ld sellers", service, n);
}

/* The registry's own score for node in the listing of service. */
static double registry_score(const treg *t, const char *service, const rc_seller *s)
{
    char path[256];
    rc_resp r;
    double score = -1;
    snprintf(path, sizeof(path), "/v1/peers?service=%s&limit=100", service);
    assert_int_equal(rc_call(&r, t->base, "GET", path, NULL), 0);
    json_t *j = json_loads(r.body, 0, NULL), *p;
    size_t i;
    json_array_foreach(json_object_get(j, "peers"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(json_object_get(p, "record"), "node_id")),
                   s->hex) == 0)
            score = json_number_value(json_object_get(p, "score"));
    }
    json_decref(j);
    rc_resp_free(&r);
    assert_true(score >= 0);
    return score;
}

static by_peer *cands(fx *f, size_t *n, const char *service, unsigned apis, const by_price_cap *cap,
                      const uint8_t *pin, size_t max, os_err want)
{
    by_peer *out = (by_peer *)(uintptr_t)1;
    assert_int_equal(by_peers_candidates(f->bp, &out, n, service, apis, cap, pin, max), want);
    if (*n == 0)
        assert_null(out);
    return out;
}

static void assert_node(const by_peer *p, const rc_seller *s)
{
    assert_memory_equal(p->node, s->addr, 20);
    assert_memory_equal(p->record.node, s->addr, 20);
}

static bool has_node(const by_peer *p, size_t n, const rc_seller *s)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(p[i].node, s->addr, 20) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------ ranking, filters */

static void test_rank_by_score(void **state)
{
    fx *f = *state;
    rc_seller s[3];
    size_t n;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &s[1], 1, "svc-rank", 200, 600);
    announce1(&f->reg[0], &s[2], 2, "svc-rank", 400, 1200);
    announce1(&f->reg[0], &s[0], 0, "svc-rank", 100, 300);
    wait_listed(&f->reg[0], "svc-rank", 3);
    bp_open1(f, &f->reg[0]);

    by_peer *c = cands(f, &n, "svc-rank", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        char ep[64];
        snprintf(ep, sizeof(ep), "http://seller-%zu.example:8378", i);
        assert_node(&c[i], &s[i]); /* cheapest first: the registry's price score */
        assert_string_equal(c[i].endpoint, ep);
        assert_string_equal(c[i].record.endpoint, ep);
        assert_int_equal(c[i].offering, 0);
        assert_int_equal(c[i].kc.key_id, 1);
        assert_int_equal(c[i].record.chain_id, CHAIN);
        /* no observations: registry score x (0 + 1) / (0 + 0 + 2) */
        assert_true(fabs(c[i].score - 0.5 * registry_score(&f->reg[0], "svc-rank", &s[i])) < 1e-3);
    }
    assert_true(c[0].score > c[1].score && c[1].score > c[2].score);
    free(c);

    c = cands(f, &n, "svc-rank", OS_API_OPENAI_CHAT, NULL, NULL, 2, OS_OK);
    assert_int_equal(n, 2);
    assert_node(&c[0], &s[0]);
    assert_node(&c[1], &s[1]);
    free(c);

    /* a service nobody offers: OK and empty; a name no registry accepts: the same, unasked */
    c = cands(f, &n, "svc-nobody", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 0);
    c = cands(f, &n, "bad name!", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 0);
    c = cands(f, &n, "svc-rank", 0, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 0);
}

static void test_api_and_price_caps(void **state)
{
    fx *f = *state;
    static const char *const anth[] = {"anthropic.messages", NULL};
    static const char *const chat_emb[] = {"openai.chat", "openai.embeddings", NULL};
    rc_seller a, b, c, d;
    rc_offer oa = {.service = "svc-f", .input = 100, .output = 300};
    rc_offer ob = {.service = "svc-f", .input = 50, .output = 150};
    rc_offer oc = {.service = "svc-f", .input = 1000, .output = 100};
    rc_offer od = {.service = "svc-f", .input = 300, .output = 5000};
    by_price_cap cap;
    size_t n;
    by_peer *r;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    assert_int_equal(rc_seller_init(&a, 10), 0);
    assert_int_equal(rc_seller_init(&b, 11), 0);
    assert_int_equal(rc_seller_init(&c, 12), 0);
    assert_int_equal(rc_seller_init(&d, 13), 0);
    announce(&f->reg[0], &a, "http://a.example", &oa, 1, NULL, NULL);
    announce(&f->reg[0], &b, "http://b.example", &ob, 1, anth, NULL);
    announce(&f->reg[0], &c, "http://c.example", &oc, 1, NULL, NULL);
    announce(&f->reg[0], &d, "http://d.example", &od, 1, chat_emb, NULL);
    wait_listed(&f->reg[0], "svc-f", 4);
    bp_open1(f, &f->reg[0]);

    r = cands(f, &n, "svc-f", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 3);
    assert_true(has_node(r, n, &a) && has_node(r, n, &c) && has_node(r, n, &d));
    free(r);
    r = cands(f, &n, "svc-f", OS_API_ANTHROPIC_MESSAGES, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &b);
    free(r);
    r = cands(f, &n, "svc-f", OS_API_OPENAI_EMBEDDINGS, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &d);
    free(r);
    r = cands(f, &n, "svc-f", OS_API_OPENAI_CHAT | OS_API_ANTHROPIC_MESSAGES, NULL, NULL, 10,
              OS_OK);
    assert_int_equal(n, 4);
    free(r);

    cap = (by_price_cap){.max_input = 500}; /* c's input 1000 is over */
    r = cands(f, &n, "svc-f", OS_API_OPENAI_CHAT, &cap, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    assert_true(has_node(r, n, &a) && has_node(r, n, &d));
    free(r);
    cap = (by_price_cap){.max_output = 1000}; /* d's output 5000 is over */
    r = cands(f, &n, "svc-f", OS_API_OPENAI_CHAT, &cap, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    assert_true(has_node(r, n, &a) && has_node(r, n, &c));
    free(r);
    cap = (by_price_cap){.max_input = 500, .max_output = 1000};
    r = cands(f, &n, "svc-f", OS_API_OPENAI_CHAT, &cap, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &a);
    free(r);
    cap = (by_price_cap){.max_input = 100, .max_output = 300}; /* caps are inclusive */
    r = cands(f, &n, "svc-f", OS_API_OPENAI_CHAT, &cap, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &a);
    free(r);
    cap = (by_price_cap){.max_input = 99};
    r = cands(f, &n, "svc-f", OS_API_OPENAI_CHAT, &cap, NULL, 10, OS_OK);
    assert_int_equal(n, 0);
}

/* An offering per service and the cheapest matching offering chosen. */
static void test_offering_choice(void **state)
{
    fx *f = *state;
    rc_seller a;
    rc_offer offs[3] = {{.service = "svc-o", .input = 900, .output = 900},
                        {.service = "svc-other", .input = 1, .output = 1},
                        {.service = "svc-o", .input = 300, .output = 300}};
    size_t n;
    by_peer *r;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    assert_int_equal(rc_seller_init(&a, 20), 0);
    announce(&f->reg[0], &a, "http://a.example", offs, 3, NULL, NULL);
    wait_listed(&f->reg[0], "svc-o", 1);
    bp_open1(f, &f->reg[0]);
    r = cands(f, &n, "svc-o", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].offering, 2);
    assert_string_equal(r[0].record.offerings[r[0].offering].services[0], "svc-o");
    free(r);
    by_price_cap cap = {.max_input = 300};
    r = cands(f, &n, "svc-o", OS_API_OPENAI_CHAT, &cap, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].offering, 2);
    free(r);
}

static void test_pin(void **state)
{
    fx *f = *state;
    rc_seller a, b, c, unknown;
    size_t n;
    by_peer *r;
    by_price_cap cap = {.max_input = 1, .max_output = 1}; /* excludes everyone */

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &a, 30, "svc-pin", 100, 100);
    announce1(&f->reg[0], &b, 31, "svc-pin", 200, 200);
    wait_listed(&f->reg[0], "svc-pin", 2);
    assert_int_equal(rc_seller_init(&unknown, 99), 0);
    bp_open1(f, &f->reg[0]);

    r = cands(f, &n, "svc-pin", OS_API_OPENAI_CHAT, &cap, NULL, 10, OS_OK);
    assert_int_equal(n, 0);
    /* pinned in the listing: offered whatever the caps, alone */
    r = cands(f, &n, "svc-pin", OS_API_OPENAI_CHAT, &cap, b.addr, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &b);
    assert_string_equal(r[0].endpoint, "http://seller-31.example:8378");
    assert_true(fabs(r[0].score - 0.5 * registry_score(&f->reg[0], "svc-pin", &b)) < 1e-3);
    free(r);
    /* a pin whose offering lacks the API: nothing */
    r = cands(f, &n, "svc-pin", OS_API_ANTHROPIC_MESSAGES, NULL, b.addr, 10, OS_OK);
    assert_int_equal(n, 0);
    /* unknown to the registry: nothing */
    r = cands(f, &n, "svc-pin", OS_API_OPENAI_CHAT, NULL, unknown.addr, 10, OS_OK);
    assert_int_equal(n, 0);

    /* c announces after the listing was cached: not in it, but a pin looks it up */
    announce1(&f->reg[0], &c, 32, "svc-pin", 300, 300);
    r = cands(f, &n, "svc-pin", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    assert_false(has_node(r, n, &c));
    free(r);
    r = cands(f, &n, "svc-pin", OS_API_OPENAI_CHAT, NULL, c.addr, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &c);
    assert_string_equal(r[0].endpoint, "http://seller-32.example:8378");
    assert_int_equal(r[0].kc.key_id, 1);
    free(r);
    /* pinned for a service it does not offer */
    r = cands(f, &n, "svc-elsewhere", OS_API_OPENAI_CHAT, NULL, c.addr, 10, OS_OK);
    assert_int_equal(n, 0);
}

static void test_foreign_escrow_and_chain_dropped(void **state)
{
    fx *f = *state;
    rc_seller a, b;
    rc_offer o = {.service = "svc-esc", .input = 10, .output = 10};
    uint8_t other[20];
    size_t n;
    by_peer *r;

    memset(other, 0x33, sizeof(other));
    treg_start(&f->reg[0], "peers", CHAIN, 100); /* a registry without an escrow takes any */
    assert_int_equal(rc_seller_init(&a, 40), 0);
    assert_int_equal(rc_seller_init(&b, 41), 0);
    announce(&f->reg[0], &a, "http://a.example", &o, 1, NULL, NULL);
    announce(&f->reg[0], &b, "http://b.example", &o, 1, NULL, other);
    wait_listed(&f->reg[0], "svc-esc", 2);
    bp_open1(f, &f->reg[0]);

    r = cands(f, &n, "svc-esc", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &a);
    free(r);
    /* pinned, still not offered: it can never be paid through our escrow */
    r = cands(f, &n, "svc-esc", OS_API_OPENAI_CHAT, NULL, b.addr, 10, OS_OK);
    assert_int_equal(n, 0);
    json_t *j = by_peers_json(f->bp);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 1);
    json_decref(j);

    /* a buyer on another chain drops every record of this registry */
    const char *bases[1] = {f->reg[0].base};
    bp_open(f, bases, 1, CHAIN + 1);
    r = cands(f, &n, "svc-esc", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 0);
}

/* More sellers than one page (the registry serves at most 100 a page). */
static void test_every_page(void **state)
{
    fx *f = *state;
    enum { N = 130 };
    rc_seller *s = calloc(N, sizeof(*s));
    size_t n;

    assert_non_null(s);
    treg_start(&f->reg[0], "peers", CHAIN, 100);
    for (uint32_t i = 0; i < N; i++)
        announce1(&f->reg[0], &s[i], 100 + i, "svc-many", 100 + i, 100 + i);
    wait_listed(&f->reg[0], "svc-many", N);
    bp_open1(f, &f->reg[0]);
    by_peer *r = cands(f, &n, "svc-many", OS_API_OPENAI_CHAT, NULL, NULL, 1000, OS_OK);
    assert_int_equal(n, N);
    for (size_t i = 0; i < N; i++) {
        assert_true(has_node(r, n, &s[i]));
        if (i > 0)
            assert_true(r[i - 1].score >= r[i].score);
    }
    assert_node(&r[0], &s[0]); /* the cheapest */
    assert_node(&r[N - 1], &s[N - 1]);
    free(r);
    free(s);
}

static void test_heartbeat_endpoint(void **state)
{
    fx *f = *state;
    rc_seller a;
    size_t n;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &a, 50, "svc-hb", 10, 10);
    heartbeat(&f->reg[0], &a, "https://moved.example:9000/tunnel");
    wait_listed(&f->reg[0], "svc-hb", 1);
    bp_open1(f, &f->reg[0]);
    by_peer *r = cands(f, &n, "svc-hb", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].endpoint, "https://moved.example:9000/tunnel");
    assert_string_equal(r[0].record.endpoint, "http://seller-50.example:8378");
    free(r);
    json_t *j = by_peers_json(f->bp);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "peers"), 0), "endpoint")),
                        "https://moved.example:9000/tunnel");
    json_decref(j);
}

/* ------------------------------------------------------------------ observations */

static void test_cooldown(void **state)
{
    fx *f = *state;
    rc_seller a, b;
    size_t n;
    by_peer *r;
    by_observation fail = {.ok = false}, ok = {.ok = true, .ttft_ms = 0};

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &a, 60, "svc-cool", 100, 100);
    announce1(&f->reg[0], &b, 61, "svc-cool", 200, 200);
    wait_listed(&f->reg[0], "svc-cool", 2);
    bp_open1(f, &f->reg[0]);
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    double reg_a = r[0].score * 2;
    assert_node(&r[0], &a);
    free(r);

    /* first failure: 5 s */
    by_peers_observe(f->bp, a.addr, &fail);
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &b);
    free(r);
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, a.addr, 10, OS_OK); /* pinned */
    assert_int_equal(n, 1);
    assert_node(&r[0], &a);
    free(r);
    f->clock += 4999;
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    free(r);
    f->clock += 1;
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    assert_true(has_node(r, n, &a));
    for (size_t i = 0; i < n; i++)
        if (memcmp(r[i].node, a.addr, 20) == 0) /* (0 + 1) / (0 + 1 + 2) */
            assert_true(fabs(r[i].score - reg_a / 3.0) < 1e-3);
    free(r);

    /* second in a row: 10 s */
    by_peers_observe(f->bp, a.addr, &fail);
    f->clock += 9999;
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_false(has_node(r, n, &a));
    free(r);
    f->clock += 1;
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_true(has_node(r, n, &a));
    free(r);

    /* third: 20 s, ended at once by a success */
    by_peers_observe(f->bp, a.addr, &fail);
    f->clock += 10000;
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_false(has_node(r, n, &a));
    free(r);
    json_t *j = by_peers_json(f->bp);
    json_t *pa = NULL, *x;
    size_t i;
    json_array_foreach(json_object_get(j, "peers"), i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "node")), a.hex) == 0)
            pa = x;
    }
    assert_non_null(pa);
    assert_int_equal(json_integer_value(json_object_get(pa, "cooldown_ms")), 10000);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(pa, "observed"), "consecutive_failures")),
                     3);
    json_decref(j);
    by_peers_observe(f->bp, a.addr, &ok);
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_true(has_node(r, n, &a));
    free(r);
    /* the next failure starts from 5 s again */
    by_peers_observe(f->bp, a.addr, &fail);
    f->clock += 5000;
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_true(has_node(r, n, &a));
    free(r);

    /* every seller cooling down: all are still offered, the one back soonest first (b cools
     * 5 s from now, a 10 s: its 2nd failure in a row), rather than none */
    by_peers_observe(f->bp, a.addr, &fail);
    by_peers_observe(f->bp, b.addr, &fail);
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    assert_node(&r[0], &b);
    assert_node(&r[1], &a);
    free(r);
    /* and once one is back, only it */
    f->clock += 5000;
    r = cands(f, &n, "svc-cool", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &b);
    free(r);
}

static void test_ttft_reorders(void **state)
{
    fx *f = *state;
    rc_seller a, b;
    size_t n;
    by_peer *r;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &a, 70, "svc-ttft", 100, 100);
    announce1(&f->reg[0], &b, 71, "svc-ttft", 200, 200);
    wait_listed(&f->reg[0], "svc-ttft", 2);
    bp_open1(f, &f->reg[0]);
    r = cands(f, &n, "svc-ttft", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    assert_node(&r[0], &a);
    double reg_a = r[0].score * 2, reg_b = r[1].score * 2;
    free(r);

    by_observation slow = {.ok = true, .ttft_ms = 8000, .tokens = 10, .total_ms = 9000};
    by_peers_observe(f->bp, a.addr, &slow);
    r = cands(f, &n, "svc-ttft", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    assert_node(&r[0], &b);
    assert_node(&r[1], &a);
    /* (1 + 1) / (1 + 0 + 2) x 2000 / (2000 + 8000) */
    assert_true(fabs(r[1].score - reg_a * (2.0 / 3.0) * 0.2) < 1e-9);
    assert_true(fabs(r[0].score - reg_b * 0.5) < 1e-9);
    free(r);

    /* a fast answer from a lifts its average back */
    by_observation fast = {.ok = true, .ttft_ms = 0, .tokens = 10, .total_ms = 100};
    for (int i = 0; i < 7; i++)
        by_peers_observe(f->bp, a.addr, &fast);
    r = cands(f, &n, "svc-ttft", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_node(&r[0], &a);
    assert_true(fabs(r[0].score - reg_a * (9.0 / 10.0) * (2000.0 / 3000.0)) < 1e-9);
    free(r);
}

static void test_score_formula(void **state)
{
    (void)state;
    /* peers.h: score x (ok + 1) / (ok + fail + 2) x 2000 / (2000 + avg ttft) once observed */
    assert_true(fabs(by_peers_adjust_score(0.9, 0, 0, -1) - 0.45) < 1e-12);
    assert_true(fabs(by_peers_adjust_score(0.9, 1, 0, 2000) - 0.9 * 2.0 / 3.0 * 0.5) < 1e-12);
    assert_true(fabs(by_peers_adjust_score(1.0, 0, 3, -1) - 0.2) < 1e-12);
    assert_true(fabs(by_peers_adjust_score(0.5, 8, 0, 0) - 0.45) < 1e-12);
    assert_true(by_peers_adjust_score(0.0, 100, 0, 0) == 0.0);
    assert_int_equal(by_peers_cooldown_ms(1), 5000);
    assert_int_equal(by_peers_cooldown_ms(2), 10000);
    assert_int_equal(by_peers_cooldown_ms(3), 20000);
    assert_int_equal(by_peers_cooldown_ms(6), 160000);
    assert_int_equal(by_peers_cooldown_ms(7), 300000); /* 320 s capped */
    assert_int_equal(by_peers_cooldown_ms(UINT64_MAX), 300000);
}

/* The weighted policy's pick (peers.h): weights score^2, so 0.9, 0.6, 0.3 weigh 0.81, 0.36, 0.09
 * (total 1.26) and u picks 0 below 0.81/1.26 = 0.642857..., 1 below 1.17/1.26 = 0.928571...,
 * else 2. */
static void test_pick_weighted(void **state)
{
    by_peer *c = calloc(5, sizeof(*c));
    const double b1 = 0.81 / 1.26, b2 = 1.17 / 1.26, eps = 1e-9;
    os_rng rng;
    size_t hits[3] = {0, 0, 0};
    (void)state;

    assert_non_null(c);
    c[0].score = 0.9;
    c[1].score = 0.6;
    c[2].score = 0.3;
    assert_int_equal(by_peers_pick_weighted(c, 3, 0.0), 0);
    assert_int_equal(by_peers_pick_weighted(c, 3, b1 - eps), 0);
    assert_int_equal(by_peers_pick_weighted(c, 3, b1 + eps), 1);
    assert_int_equal(by_peers_pick_weighted(c, 3, b2 - eps), 1);
    assert_int_equal(by_peers_pick_weighted(c, 3, b2 + eps), 2);
    assert_int_equal(by_peers_pick_weighted(c, 3, nextafter(1.0, 0.0)), 2);
    /* out-of-range draws are clamped, never an index past the end */
    assert_int_equal(by_peers_pick_weighted(c, 3, 1.0), 2);
    assert_int_equal(by_peers_pick_weighted(c, 3, 7.5), 2);
    assert_int_equal(by_peers_pick_weighted(c, 3, -0.5), 0);
    assert_int_equal(by_peers_pick_weighted(c, 3, NAN), 0);
    /* only the ratios matter */
    for (int i = 0; i < 3; i++)
        c[i].score *= 0.01;
    assert_int_equal(by_peers_pick_weighted(c, 3, b1 - eps), 0);
    assert_int_equal(by_peers_pick_weighted(c, 3, b1 + eps), 1);
    assert_int_equal(by_peers_pick_weighted(c, 3, b2 + eps), 2);
    /* drawn with a seeded generator, the shares approach 9/14, 4/14, 1/14 (deterministic) */
    os_rng_seed(&rng, 12);
    for (int i = 0; i < 140000; i++)
        hits[by_peers_pick_weighted(c, 3, os_rng_unit(&rng))]++;
    assert_true(fabs((double)hits[0] / 140000 - 9.0 / 14.0) < 0.005);
    assert_true(fabs((double)hits[1] / 140000 - 4.0 / 14.0) < 0.005);
    assert_true(fabs((double)hits[2] / 140000 - 1.0 / 14.0) < 0.005);

    /* zero, negative, NaN and infinite scores weigh nothing */
    c[0].score = 0.0;
    c[1].score = 0.5;
    c[2].score = NAN;
    c[3].score = -1.0;
    c[4].score = 0.5;
    assert_int_equal(by_peers_pick_weighted(c, 5, 0.0), 1);
    assert_int_equal(by_peers_pick_weighted(c, 5, 0.5 - eps), 1);
    assert_int_equal(by_peers_pick_weighted(c, 5, 0.5 + eps), 4);
    assert_int_equal(by_peers_pick_weighted(c, 5, nextafter(1.0, 0.0)), 4);
    c[4].score = INFINITY;
    assert_int_equal(by_peers_pick_weighted(c, 5, 0.9), 1);
    /* nothing weighs anything: the best-ranked one */
    c[1].score = -0.5;
    c[4].score = 0.0;
    assert_int_equal(by_peers_pick_weighted(c, 5, 0.0), 0);
    assert_int_equal(by_peers_pick_weighted(c, 5, 0.7), 0);
    /* one candidate, or none */
    c[0].score = 0.0;
    assert_int_equal(by_peers_pick_weighted(c, 1, 0.99), 0);
    assert_int_equal(by_peers_pick_weighted(c, 0, 0.5), 0);
    assert_int_equal(by_peers_pick_weighted(NULL, 3, 0.5), 0);
    free(c);
}

/* ------------------------------------------------------------------ cache, registries */

static void test_stale_cache(void **state)
{
    fx *f = *state;
    rc_seller a, b;
    size_t n;
    by_peer *r;
    json_t *m1, *m2;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &a, 80, "svc-stale", 100, 100);
    announce1(&f->reg[0], &b, 81, "svc-stale", 200, 200);
    wait_listed(&f->reg[0], "svc-stale", 2);
    bp_open1(f, &f->reg[0]);
    r = cands(f, &n, "svc-stale", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    free(r);
    assert_int_equal(by_peers_models(f->bp, &m1), OS_OK);

    treg_stop(&f->reg[0]);
    /* within the TTL: the cache, no request */
    f->clock += TTL - 1;
    r = cands(f, &n, "svc-stale", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    free(r);
    assert_false(log_has(f, "no registry answered"));
    /* past it, the registry down: the last good copy, with a warning */
    f->clock += 2;
    r = cands(f, &n, "svc-stale", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    assert_node(&r[0], &a);
    assert_node(&r[1], &b);
    free(r);
    assert_true(log_has(f, "level=warn"));
    assert_true(log_has(f, "serving the last good copy"));
    assert_true(log_has(f, "registry request failed"));
    f->clock += 3 * TTL;
    r = cands(f, &n, "svc-stale", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 2);
    free(r);
    assert_int_equal(by_peers_models(f->bp, &m2), OS_OK);
    assert_true(json_equal(m1, m2));
    json_decref(m1);
    json_decref(m2);
    /* a service never fetched: nothing to serve */
    r = cands(f, &n, "svc-never", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_ERR_NETWORK);
    assert_int_equal(n, 0);
}

static void test_nothing_cached_down(void **state)
{
    fx *f = *state;
    rc_seller a;
    size_t n;
    json_t *m = (json_t *)(uintptr_t)1;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    treg_stop(&f->reg[0]); /* a port that refuses */
    assert_int_equal(rc_seller_init(&a, 90), 0);
    bp_open1(f, &f->reg[0]);
    cands(f, &n, "svc-down", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_ERR_NETWORK);
    assert_int_equal(n, 0);
    cands(f, &n, "svc-down", OS_API_OPENAI_CHAT, NULL, a.addr, 10, OS_ERR_NETWORK);
    assert_int_equal(by_peers_models(f->bp, &m), OS_ERR_NETWORK);
    assert_null(m);
    assert_true(log_has(f, "nothing is cached"));
    /* again at once: still an error, not an empty success */
    cands(f, &n, "svc-down", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_ERR_NETWORK);
}

static void test_registries_in_order(void **state)
{
    fx *f = *state;
    rc_seller x, y;
    size_t n;
    by_peer *r;
    char dead[64];

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    snprintf(dead, sizeof(dead), "%s", f->reg[0].base);
    treg_stop(&f->reg[0]);
    treg_start(&f->reg[1], "peers", CHAIN, 100);
    announce1(&f->reg[1], &y, 95, "svc-y", 10, 10);
    wait_listed(&f->reg[1], "svc-y", 1);

    /* the first is down: the second answers */
    const char *b1[2] = {dead, f->reg[1].base};
    bp_open(f, b1, 2, CHAIN);
    r = cands(f, &n, "svc-y", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &y);
    free(r);

    /* the first answers but lists nobody for the service: the second's listing is used */
    treg_close(&f->reg[0]);
    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &x, 96, "svc-x", 10, 10);
    wait_listed(&f->reg[0], "svc-x", 1);
    const char *b2[2] = {f->reg[0].base, f->reg[1].base};
    bp_open(f, b2, 2, CHAIN);
    r = cands(f, &n, "svc-y", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &y);
    free(r);
    r = cands(f, &n, "svc-x", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK);
    assert_int_equal(n, 1);
    assert_node(&r[0], &x);
    free(r);
    /* a pin known only to the second registry */
    r = cands(f, &n, "svc-y", OS_API_OPENAI_CHAT, NULL, y.addr, 10, OS_OK);
    assert_int_equal(n, 1);
    free(r);

    /* models: the union of both */
    json_t *m, *want;
    assert_int_equal(by_peers_models(f->bp, &m), OS_OK);
    want = json_loads(
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"svc-x\",\"object\":\"model\",\"created\":0,\"owned_by\":\"openseed\"},"
        "{\"id\":\"svc-y\",\"object\":\"model\",\"created\":0,\"owned_by\":\"openseed\"}]}",
        0, NULL);
    assert_non_null(want);
    assert_true(json_equal(m, want));
    json_decref(m);
    json_decref(want);
}

static void test_models_shape(void **state)
{
    fx *f = *state;
    rc_seller a, b;
    rc_offer oa[2] = {{.service = "beta", .input = 5, .output = 5},
                      {.service = "alpha", .input = 5, .output = 5}};
    rc_offer ob = {.service = "alpha", .input = 7, .output = 7};
    json_t *m, *want;
    char *text;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    assert_int_equal(rc_seller_init(&a, 97), 0);
    assert_int_equal(rc_seller_init(&b, 98), 0);
    announce(&f->reg[0], &a, "http://a.example", oa, 2, NULL, NULL);
    announce(&f->reg[0], &b, "http://b.example", &ob, 1, NULL, NULL);
    wait_listed(&f->reg[0], "alpha", 2);
    bp_open1(f, &f->reg[0]);
    assert_int_equal(by_peers_models(f->bp, &m), OS_OK);
    want = json_loads(
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"alpha\",\"object\":\"model\",\"created\":0,\"owned_by\":\"openseed\"},"
        "{\"id\":\"beta\",\"object\":\"model\",\"created\":0,\"owned_by\":\"openseed\"}]}",
        0, NULL);
    assert_non_null(want);
    if (!json_equal(m, want)) {
        text = json_dumps(m, JSON_COMPACT);
        fail_msg("models: %s", text);
    }
    assert_true(
        json_is_integer(json_object_get(json_array_get(json_object_get(m, "data"), 0), "created")));
    /* the caller owns its copy */
    json_array_clear(json_object_get(m, "data"));
    json_decref(m);
    assert_int_equal(by_peers_models(f->bp, &m), OS_OK);
    assert_true(json_equal(m, want));
    json_decref(m);
    json_decref(want);
}

static void test_json_view(void **state)
{
    fx *f = *state;
    rc_seller a, b;
    size_t n;
    static const char *const keys[] = {"node",        "endpoint",  "services", "registry_score",
                                       "reputation",  "last_seen", "score",    "observed",
                                       "cooldown_ms", "load",      "success_rate", "offerings", NULL};
    static const char *const okeys[] = {"successes",   "failures",     "consecutive_failures",
                                        "avg_ttft_ms", "tokens_per_s", NULL};

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &a, 110, "svc-json", 100, 100);
    announce1(&f->reg[0], &b, 111, "svc-json", 200, 200);
    heartbeat(&f->reg[0], &a, "http://seller-110.example:8378");
    wait_listed(&f->reg[0], "svc-json", 2);
    bp_open1(f, &f->reg[0]);
    json_t *j = by_peers_json(f->bp);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0); /* nothing seen yet */
    json_decref(j);
    free(cands(f, &n, "svc-json", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK));
    assert_int_equal(n, 2);
    double reg_a = registry_score(&f->reg[0], "svc-json", &a);

    by_observation o1 = {.ok = true, .ttft_ms = 100, .tokens = 50, .total_ms = 500};
    by_observation o2 = {.ok = true, .ttft_ms = 300, .tokens = 150, .total_ms = 1500};
    by_observation bad = {.ok = false};
    by_peers_observe(f->bp, a.addr, &o1);
    by_peers_observe(f->bp, a.addr, &o2);
    by_peers_observe(f->bp, a.addr, &bad);
    f->clock += 1000;

    j = by_peers_json(f->bp);
    assert_non_null(j);
    json_t *peers = json_object_get(j, "peers"), *pa = NULL, *pb = NULL, *x;
    size_t i;
    assert_int_equal(json_array_size(peers), 2);
    json_array_foreach(peers, i, x)
    {
        const char *node = json_string_value(json_object_get(x, "node"));
        if (strcmp(node, a.hex) == 0)
            pa = x;
        if (strcmp(node, b.hex) == 0)
            pb = x;
        for (size_t k = 0; keys[k] != NULL; k++)
            if (json_object_get(x, keys[k]) == NULL)
                fail_msg("peer lacks %s", keys[k]);
        assert_int_equal(json_object_size(x), 12);
        for (size_t k = 0; okeys[k] != NULL; k++)
            assert_non_null(json_object_get(json_object_get(x, "observed"), okeys[k]));
    }
    assert_non_null(pa);
    assert_non_null(pb);
    assert_string_equal(json_string_value(json_object_get(pa, "endpoint")),
                        "http://seller-110.example:8378");
    assert_string_equal(json_string_value(json_array_get(json_object_get(pa, "services"), 0)),
                        "svc-json");
    assert_true(fabs(json_real_value(json_object_get(pa, "registry_score")) - reg_a) < 1e-3);
    /* (2 + 1) / (2 + 1 + 2) x 2000 / (2000 + 200) */
    assert_true(fabs(json_real_value(json_object_get(pa, "score")) -
                     json_real_value(json_object_get(pa, "registry_score")) * 0.6 * 2000.0 /
                         2200.0) < 1e-9);
    assert_true(json_is_real(json_object_get(pa, "reputation")));
    assert_true(json_integer_value(json_object_get(pa, "last_seen")) > 1700000000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(pa, "load"), "capacity")),
                     4); /* from the heartbeat */
    json_t *obs = json_object_get(pa, "observed");
    assert_int_equal(json_integer_value(json_object_get(obs, "successes")), 2);
    assert_int_equal(json_integer_value(json_object_get(obs, "failures")), 1);
    assert_int_equal(json_integer_value(json_object_get(obs, "consecutive_failures")), 1);
    assert_true(fabs(json_real_value(json_object_get(obs, "avg_ttft_ms")) - 200.0) < 1e-9);
    assert_true(fabs(json_real_value(json_object_get(obs, "tokens_per_s")) - 100.0) < 1e-9);
    assert_int_equal(json_integer_value(json_object_get(pa, "cooldown_ms")), 4000);
    /* b: seen, never observed */
    obs = json_object_get(pb, "observed");
    assert_int_equal(json_integer_value(json_object_get(obs, "successes")), 0);
    assert_true(json_is_null(json_object_get(obs, "avg_ttft_ms")));
    assert_true(json_is_null(json_object_get(obs, "tokens_per_s")));
    assert_int_equal(json_integer_value(json_object_get(pb, "cooldown_ms")), 0);
    /* the view is ranked by adjusted score */
    double sa = json_real_value(json_object_get(pa, "score"));
    double sb = json_real_value(json_object_get(pb, "score"));
    assert_true(json_array_get(peers, 0) == (sa >= sb ? pa : pb));
    json_decref(j);
}

/* Every call from four threads at once while the clock jumps past the TTL (refreshes racing
 * reads) and, halfway, the registry stops (refreshes failing, stale copies served): every call
 * must still succeed. Run under the sanitizers for the memory side. */
typedef struct worker {
    fx *f;
    const rc_seller *s;
    int id;
    int errors;
    long iterations;
    atomic_int *stop;
} worker;

static void *work(void *ud)
{
    worker *w = ud;
    for (int i = 0; !atomic_load(w->stop); i++) {
        w->iterations++;
        by_peer *r = NULL;
        size_t n = 0;
        json_t *j = NULL;
        by_observation o = {
            .ok = (i / 5) % 3 != 0, .ttft_ms = (uint64_t)i, .tokens = 10, .total_ms = 100};
        switch (i % 5) {
        case 0:
            if (by_peers_candidates(w->f->bp, &r, &n, "svc-mt", OS_API_OPENAI_CHAT, NULL, NULL,
                                    10) != OS_OK ||
                n > 2)
                w->errors++;
            break;
        case 1:
            by_peers_observe(w->f->bp, w->s[(i + w->id) % 2].addr, &o);
            break;
        case 2:
            if (by_peers_candidates(w->f->bp, &r, &n, "svc-mt", OS_API_OPENAI_CHAT, NULL,
                                    w->s[w->id % 2].addr, 10) != OS_OK ||
                n != 1 || memcmp(r[0].node, w->s[w->id % 2].addr, 20) != 0)
                w->errors++;
            break;
        case 3:
            if ((j = by_peers_json(w->f->bp)) == NULL)
                w->errors++;
            break;
        default:
            if (by_peers_models(w->f->bp, &j) != OS_OK || j == NULL)
                w->errors++;
            break;
        }
        free(r);
        json_decref(j);
        if (i % 40 == 0)
            atomic_fetch_add(&w->f->clock, TTL / 2 + 1);
    }
    return NULL;
}

static void test_threads(void **state)
{
    fx *f = *state;
    rc_seller s[2];
    pthread_t th[4];
    worker w[4];
    size_t n;
    json_t *m;
    atomic_int stop = 0;

    treg_start(&f->reg[0], "peers", CHAIN, 100);
    announce1(&f->reg[0], &s[0], 120, "svc-mt", 100, 100);
    announce1(&f->reg[0], &s[1], 121, "svc-mt", 200, 200);
    wait_listed(&f->reg[0], "svc-mt", 2);
    bp_open1(f, &f->reg[0]);
    free(cands(f, &n, "svc-mt", OS_API_OPENAI_CHAT, NULL, NULL, 10, OS_OK));
    assert_int_equal(n, 2);
    assert_int_equal(by_peers_models(f->bp, &m), OS_OK);
    json_decref(m);
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.f = f, .s = s, .id = i, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    rc_sleep_ms(300);
    treg_stop(&f->reg[0]);
    rc_sleep_ms(300);
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w[i].errors, 0);
        assert_true(w[i].iterations > 50);
    }
    assert_true(log_has(f, "serving the last good copy"));
}

/* ------------------------------------------------------------------ the peer checker */

typedef struct forged {
    rc_seller s, other;
    json_t *record;
    char sig[OS_HEX_LEN(65)];
    uint64_t seq;
} forged;

static void sign_hex(char out[OS_HEX_LEN(65)], const json_t *record, const rc_seller *signer)
{
    uint8_t digest[32], sig[65];
    os_record *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    assert_int_equal(os_record_parse(r, record, NULL, 0), OS_OK);
    assert_int_equal(os_record_digest(digest, record, r), OS_OK);
    assert_int_equal(os_secp_sign(sig, signer->priv, digest), OS_OK);
    assert_int_equal(os_hex_encode(out, OS_HEX_LEN(65), sig, 65, 1), OS_OK);
    free(r);
}

static void forged_init(forged *fg, uint64_t chain_id, const uint8_t *escrow)
{
    rc_offer o = {.service = "svc-forge", .input = 100, .output = 300};
    assert_int_equal(rc_seller_init(&fg->s, 200), 0);
    assert_int_equal(rc_seller_init(&fg->other, 201), 0);
    fg->seq = 1763700000000ull;
    fg->record =
        rc_record(&fg->s, "http://record.example", fg->seq, 1763700000, chain_id, escrow, &o, 1);
    assert_non_null(fg->record);
    sign_hex(fg->sig, fg->record, &fg->s);
}

/* A peer object as the registry serves it, taking its record (copied) and heartbeat (or NULL). */
static json_t *peer_obj(const json_t *record, const char *sig, json_t *hb)
{
    json_t *p = json_pack("{s:O,s:s,s:f,s:f,s:I,s:{s:i,s:i},s:s,s:o}", "record", record,
                          "signature", sig, "reputation", 0.5, "score", 0.75, "last_seen",
                          (json_int_t)1763700000, "load", "active", 1, "capacity", 4, "endpoint",
                          "http://record.example", "heartbeat", hb != NULL ? hb : json_null());
    assert_non_null(p);
    return p;
}

static json_t *hb_obj(const rc_seller *node, const rc_seller *signer, const char *endpoint,
                      uint64_t seq, uint64_t chain_id)
{
    char *text = rc_heartbeat_body(node, signer, endpoint, seq, 1763700100, chain_id, 2, 8);
    assert_non_null(text);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

static os_err check(const json_t *peer, by_peer_parsed *out, const by_peer_parsed *known)
{
    char err[OS_RECORD_ERR_LEN];
    os_err rc = by_peers_parse_peer(out, peer, CHAIN, OUR_ESCROW, known, err, sizeof(err));
    if (rc != OS_OK)
        assert_true(strlen(err) > 0);
    return rc;
}

static void test_parse_valid(void **state)
{
    (void)state;
    forged fg;
    by_peer_parsed *out = calloc(1, sizeof(*out));
    assert_non_null(out);
    forged_init(&fg, CHAIN, NULL);
    json_t *p = peer_obj(fg.record, fg.sig, NULL);
    assert_int_equal(check(p, out, NULL), OS_OK);
    assert_memory_equal(out->record.node, fg.s.addr, 20);
    assert_string_equal(out->endpoint, "http://record.example");
    assert_false(out->hb_used);
    assert_false(out->hb_rejected);
    assert_true(out->reputation == 0.5 && out->score == 0.75);
    assert_int_equal(out->last_seen, 1763700000);
    assert_int_equal(out->load_active, 1);
    assert_int_equal(out->load_capacity, 4);
    assert_int_equal(out->kc.key_id, 1);
    assert_int_equal(out->record.offerings[0].pricing.output, 300);
    uint8_t bh[32];
    assert_int_equal(os_record_body_hash(bh, fg.record), OS_OK);
    assert_memory_equal(out->body_hash, bh, 32);
    json_decref(p);
    json_decref(fg.record);
    free(out);
}

static void test_parse_tampered_record(void **state)
{
    (void)state;
    forged fg;
    by_peer_parsed *out = calloc(1, sizeof(*out)), *known = calloc(1, sizeof(*known));
    char other_sig[OS_HEX_LEN(65)];
    assert_non_null(out);
    assert_non_null(known);
    forged_init(&fg, CHAIN, NULL);
    json_t *good = peer_obj(fg.record, fg.sig, NULL);
    assert_int_equal(check(good, known, NULL), OS_OK);

    /* a cheaper price put in after signing */
    json_t *rec = json_deep_copy(fg.record);
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(rec, "offerings"), 0), "pricing"), "input",
        json_string("1"));
    json_t *p = peer_obj(rec, fg.sig, NULL);
    assert_int_equal(check(p, out, NULL), OS_ERR_CRYPTO);
    assert_int_equal(out->record.seq, 0); /* zeroed */
    /* ... also when an earlier copy of this node was verified: the body hash differs */
    assert_int_equal(check(p, out, known), OS_ERR_CRYPTO);
    json_decref(p);
    json_decref(rec);

    /* another endpoint */
    rec = json_deep_copy(fg.record);
    json_object_set_new(rec, "endpoint", json_string("http://evil.example"));
    p = peer_obj(rec, fg.sig, NULL);
    assert_int_equal(check(p, out, known), OS_ERR_CRYPTO);
    json_decref(p);
    json_decref(rec);

    /* signed by someone else */
    sign_hex(other_sig, fg.record, &fg.other);
    p = peer_obj(fg.record, other_sig, NULL);
    assert_int_equal(check(p, out, NULL), OS_ERR_CRYPTO);
    assert_int_equal(check(p, out, known), OS_ERR_CRYPTO);
    json_decref(p);

    /* one bit of the signature flipped */
    snprintf(other_sig, sizeof(other_sig), "%s", fg.sig);
    other_sig[10] = other_sig[10] == '0' ? '1' : '0';
    p = peer_obj(fg.record, other_sig, NULL);
    assert_int_equal(check(p, out, NULL), OS_ERR_CRYPTO);
    json_decref(p);

    /* the untouched record with the known copy: taken without a second check, identical */
    assert_int_equal(check(good, out, known), OS_OK);
    assert_memory_equal(&out->record, &known->record, sizeof(out->record));
    json_decref(good);
    json_decref(fg.record);
    free(out);
    free(known);
}

static void test_parse_foreign(void **state)
{
    (void)state;
    forged fg;
    uint8_t other[20];
    by_peer_parsed *out = calloc(1, sizeof(*out));
    assert_non_null(out);

    forged_init(&fg, 1, NULL); /* validly signed, for chain 1 */
    json_t *p = peer_obj(fg.record, fg.sig, NULL);
    assert_int_equal(check(p, out, NULL), OS_ERR_UNSUPPORTED);
    json_decref(p);
    json_decref(fg.record);

    memset(other, 0x33, sizeof(other));
    forged_init(&fg, CHAIN, other);
    p = peer_obj(fg.record, fg.sig, NULL);
    assert_int_equal(check(p, out, NULL), OS_ERR_UNSUPPORTED);
    char err[OS_RECORD_ERR_LEN];
    assert_int_equal(by_peers_parse_peer(out, p, CHAIN, other, NULL, err, sizeof(err)), OS_OK);
    json_decref(p);
    json_decref(fg.record);
    free(out);
}

static void test_parse_heartbeats(void **state)
{
    (void)state;
    forged fg;
    by_peer_parsed *out = calloc(1, sizeof(*out)), *known = calloc(1, sizeof(*known));
    assert_non_null(out);
    assert_non_null(known);
    forged_init(&fg, CHAIN, NULL);
    json_t *p, *hb;

    /* newer and signed: its endpoint is used */
    hb = hb_obj(&fg.s, &fg.s, "https://tunnel.example/x", fg.seq + 5, CHAIN);
    p = peer_obj(fg.record, fg.sig, json_incref(hb));
    assert_int_equal(check(p, known, NULL), OS_OK);
    assert_true(known->hb_used);
    assert_false(known->hb_rejected);
    assert_string_equal(known->endpoint, "https://tunnel.example/x");
    assert_string_equal(known->record.endpoint, "http://record.example");
    json_decref(p);

    /* its endpoint changed after signing, even with the verified copy at hand */
    json_t *hb2 = json_deep_copy(hb);
    json_object_set_new(hb2, "endpoint", json_string("https://evil.example"));
    p = peer_obj(fg.record, fg.sig, hb2);
    assert_int_equal(check(p, out, known), OS_OK);
    assert_true(out->hb_rejected);
    assert_false(out->hb_used);
    assert_string_equal(out->endpoint, "http://record.example");
    assert_int_equal(check(p, out, NULL), OS_OK);
    assert_true(out->hb_rejected);
    json_decref(p);
    json_decref(hb);

    /* signed by another key */
    p = peer_obj(fg.record, fg.sig,
                 hb_obj(&fg.s, &fg.other, "https://evil.example", fg.seq + 5, CHAIN));
    assert_int_equal(check(p, out, NULL), OS_OK);
    assert_true(out->hb_rejected);
    assert_string_equal(out->endpoint, "http://record.example");
    json_decref(p);

    /* signed for another chain */
    p = peer_obj(fg.record, fg.sig, hb_obj(&fg.s, &fg.s, "https://evil.example", fg.seq + 5, 1));
    assert_int_equal(check(p, out, NULL), OS_OK);
    assert_true(out->hb_rejected);
    assert_string_equal(out->endpoint, "http://record.example");
    json_decref(p);

    /* another node's own valid heartbeat */
    p = peer_obj(fg.record, fg.sig,
                 hb_obj(&fg.other, &fg.other, "https://evil.example", fg.seq + 5, CHAIN));
    assert_int_equal(check(p, out, NULL), OS_OK);
    assert_true(out->hb_rejected);
    assert_string_equal(out->endpoint, "http://record.example");
    json_decref(p);

    /* older than the record: the record's endpoint is the newer one */
    p = peer_obj(fg.record, fg.sig, hb_obj(&fg.s, &fg.s, "https://old.example", fg.seq, CHAIN));
    assert_int_equal(check(p, out, NULL), OS_OK);
    assert_true(out->hb_rejected);
    assert_string_equal(out->endpoint, "http://record.example");
    json_decref(p);

    /* malformed heartbeat object: ignored the same way */
    p = peer_obj(fg.record, fg.sig, json_pack("{s:s}", "node", fg.s.hex));
    assert_int_equal(check(p, out, NULL), OS_OK);
    assert_true(out->hb_rejected);
    json_decref(p);

    json_decref(fg.record);
    free(out);
    free(known);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    forged fg;
    by_peer_parsed *out = calloc(1, sizeof(*out));
    assert_non_null(out);
    forged_init(&fg, CHAIN, NULL);
    static const char *const required[] = {"record",    "signature", "reputation", "score",
                                           "last_seen", "load",      NULL};
    for (size_t i = 0; required[i] != NULL; i++) {
        json_t *p = peer_obj(fg.record, fg.sig, NULL);
        json_object_del(p, required[i]);
        assert_int_equal(check(p, out, NULL), OS_ERR_INVALID);
        json_decref(p);
    }
    struct {
        const char *key;
        json_t *v;
    } bad[] = {
        {"score", json_real(1.5)},
        {"score", json_string("0.5")},
        {"reputation", json_real(-0.1)},
        {"signature", json_string("0x1234")},
        {"record", json_string("{}")},
        {"last_seen", json_integer(-1)},
        {"load", json_pack("{s:i,s:i}", "active", 1, "capacity", -4)},
        {"heartbeat", json_string("none")},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *p = peer_obj(fg.record, fg.sig, NULL);
        json_object_set_new(p, bad[i].key, bad[i].v);
        if (check(p, out, NULL) != OS_ERR_INVALID)
            fail_msg("bad %s accepted (case %zu)", bad[i].key, i);
        json_decref(p);
    }
    /* a record with a field missing */
    json_t *rec = json_deep_copy(fg.record);
    json_object_del(rec, "asset");
    json_t *p = peer_obj(rec, fg.sig, NULL);
    assert_int_equal(check(p, out, NULL), OS_ERR_INVALID);
    json_decref(p);
    json_decref(rec);
    /* not an object at all */
    json_t *arr = json_array();
    assert_int_equal(check(arr, out, NULL), OS_ERR_INVALID);
    json_decref(arr);
    assert_int_equal(by_peers_parse_peer(out, NULL, CHAIN, OUR_ESCROW, NULL, NULL, 0),
                     OS_ERR_INVALID);
    json_decref(fg.record);
    free(out);
}

/* ------------------------------------------------------------------ arguments */

static void test_args(void **state)
{
    fx *f = *state;
    by_peers_config c;
    by_peers *bp = (by_peers *)(uintptr_t)1;
    const char *good[1] = {"http://127.0.0.1:1/"};
    const char *bad[1] = {"ftp://127.0.0.1:1"};
    const char *space[1] = {"http://a b"};
    const char *nohost[1] = {"https:///"};
    size_t n = 5;
    by_peer *out;

    memset(&c, 0, sizeof(c));
    assert_int_equal(by_peers_new(&bp, NULL), OS_ERR_INVALID);
    assert_null(bp);
    assert_int_equal(by_peers_new(&bp, &c), OS_ERR_INVALID); /* no registry */
    c.registries = bad;
    c.n_registries = 1;
    assert_int_equal(by_peers_new(&bp, &c), OS_ERR_INVALID);
    c.registries = space;
    assert_int_equal(by_peers_new(&bp, &c), OS_ERR_INVALID);
    c.registries = nohost;
    assert_int_equal(by_peers_new(&bp, &c), OS_ERR_INVALID);
    c.registries = good;
    c.request_timeout_ms = -1;
    assert_int_equal(by_peers_new(&bp, &c), OS_ERR_INVALID);
    c.request_timeout_ms = 0;
    c.log = &f->log;
    assert_int_equal(by_peers_new(&bp, &c), OS_OK);
    assert_int_equal(by_peers_candidates(bp, &out, &n, NULL, OS_API_OPENAI_CHAT, NULL, NULL, 1),
                     OS_ERR_INVALID);
    assert_int_equal(n, 0);
    assert_int_equal(by_peers_candidates(bp, NULL, &n, "x", OS_API_OPENAI_CHAT, NULL, NULL, 1),
                     OS_ERR_INVALID);
    assert_int_equal(by_peers_candidates(NULL, &out, &n, "x", OS_API_OPENAI_CHAT, NULL, NULL, 1),
                     OS_ERR_INVALID);
    /* a name no seller can list: answered without asking the (unreachable) registry */
    assert_int_equal(by_peers_candidates(bp, &out, &n, "", OS_API_OPENAI_CHAT, NULL, NULL, 1),
                     OS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(by_peers_candidates(bp, &out, &n, "a b", OS_API_OPENAI_CHAT, NULL, NULL, 1),
                     OS_OK);
    assert_int_equal(by_peers_models(bp, NULL), OS_ERR_INVALID);
    assert_int_equal(by_peers_models(NULL, NULL), OS_ERR_INVALID);
    by_peers_observe(bp, NULL, NULL);
    by_peers_observe(NULL, NULL, NULL);
    json_t *j = by_peers_json(bp);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_decref(j);
    assert_null(by_peers_json(NULL));
    by_peers_free(bp);
    by_peers_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_args, fx_setup, fx_teardown),
        cmocka_unit_test(test_score_formula),
        cmocka_unit_test(test_pick_weighted),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_tampered_record),
        cmocka_unit_test(test_parse_foreign),
        cmocka_unit_test(test_parse_heartbeats),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test_setup_teardown(test_rank_by_score, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_api_and_price_caps, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_offering_choice, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pin, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_escrow_and_chain_dropped, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_every_page, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_endpoint, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cooldown, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ttft_reorders, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stale_cache, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_nothing_cached_down, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_registries_in_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_models_shape, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_json_view, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_threads, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
