/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SDK's Network (network.h) against the real registry core running in this process on
 * loopback (each registry over its own SQLite file in a temp directory), with sellers announced
 * and heartbeating through the registry client helpers, and against a fake registry (an
 * os_http_server in this test) that serves whatever the test wants. Covered: a listing verified
 * and ranked, the filters (service, capability, input and output price caps, min_reputation), a
 * newer signed heartbeat's endpoint and load, two registries merged (one entry per seller, the
 * newest seq, the first registry's on a tie, one registry down), records a registry forged or
 * altered (one byte changed, signed by another key, a forged heartbeat) and records for another
 * chain or escrow left out and counted, entries that do not match the query, paging past one page
 * and the limit, the page bounds against a registry whose cursor never ends, no registry up
 * (OS_ERR_NETWORK, and os_network_registries saying why without the URL's password), single
 * peer lookups, and bad arguments.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "registry_client.h"

#include <math.h>
#include <stdatomic.h>

#include "openseed/ct.h"
#include "openseed/http.h"
#include "openseed/init.h"
#include "openseed/json.h"
#include "openseed/network.h"

#include "registry.h"
#include "treg.h"

#define CHAIN 31337

static const uint8_t OUR_ESCROW[20] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                       0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                       0x11, 0x11, 0x11, 0x11, 0x11, 0x11}; /* rc_record's */
static const uint8_t OTHER_ESCROW[20] = {0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
                                         0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
                                         0x33, 0x33, 0x33, 0x33, 0x33, 0x33};

/* ------------------------------------------------------------------ registries */

/* ------------------------------------------------------------------ a fake registry */

enum fake_mode { FAKE_LIST, FAKE_SAME_CURSOR, FAKE_ENDLESS, FAKE_GARBAGE };

#define FAKE_NODES 8

typedef struct fake {
    os_http_server *srv;
    char base[64];
    enum fake_mode mode;
    char *list;  /* the {"peers":[…],"next_cursor":null} body of FAKE_LIST */
    char *entry; /* one peer object, for the paging modes */
    struct {
        char node[OS_ADDRESS_STR_LEN];
        char *body;
    } one[FAKE_NODES]; /* GET /v1/peers/{node}; others 404 */
    atomic_int requests;
    os_logger log;
} fake;

static void fake_peers(void *ctx, const os_http_request *req, os_http_response *res)
{
    fake *f = ctx;
    int n = atomic_fetch_add(&f->requests, 1) + 1;
    char *body = NULL;
    (void)req;

    switch (f->mode) {
    case FAKE_LIST:
        body = strdup(f->list);
        break;
    case FAKE_SAME_CURSOR:
        assert_true(asprintf(&body, "{\"peers\":[%s],\"next_cursor\":\"again\"}", f->entry) > 0);
        break;
    case FAKE_ENDLESS:
        assert_true(asprintf(&body, "{\"peers\":[%s],\"next_cursor\":\"c%d\"}", f->entry, n) > 0);
        break;
    case FAKE_GARBAGE:
        body = strdup("<html>502 Bad Gateway</html>");
        break;
    }
    assert_non_null(body);
    if (os_http_res_body(res, "application/json", body, strlen(body)) == OS_OK)
        os_http_res_status(res, 200);
    free(body);
}

static void fake_peer(void *ctx, const os_http_request *req, os_http_response *res)
{
    fake *f = ctx;
    const char *node = os_http_req_path_rest(req);

    for (size_t i = 0; i < FAKE_NODES; i++) {
        if (f->one[i].body != NULL && strcmp(f->one[i].node, node) == 0) {
            if (os_http_res_body(res, "application/json", f->one[i].body, strlen(f->one[i].body)) ==
                OS_OK)
                os_http_res_status(res, 200);
            return;
        }
    }
    os_http_res_error(res, 404, "invalid_request_error", "unknown_node", "no such node");
}

static void fake_health(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    (void)req;
    if (os_http_res_json(
            res, 200, json_pack("{s:s,s:i,s:i}", "status", "ok", "peers", 9, "active", 7)) != OS_OK)
        os_http_res_status(res, 500);
}

static const os_http_route fake_routes[] = {
    {"GET", "/v1/peers", fake_peers, 1},
    {"GET", "/v1/peers/*", fake_peer, 1},
    {"GET", "/healthz", fake_health, 1},
};

static void fake_start(fake *f)
{
    os_http_config hc;

    /* the fake's own lines would be noise in the test's output */
    os_logger_init(&f->log, "fake-registry", OS_LOG_ERROR);
    memset(&hc, 0, sizeof(hc));
    hc.log = &f->log;
    hc.listen = "127.0.0.1:0";
    hc.threads = 2;
    hc.drain_timeout_ms = 1000;
    assert_int_equal(os_http_server_new(&f->srv, &hc, fake_routes, 3, f), OS_OK);
    assert_int_equal(os_http_server_start(f->srv), OS_OK);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u",
             (unsigned)os_http_server_port(f->srv));
}

static void fake_close(fake *f)
{
    os_http_server_free(f->srv);
    f->srv = NULL;
    free(f->list);
    free(f->entry);
    f->list = f->entry = NULL;
    for (size_t i = 0; i < FAKE_NODES; i++) {
        free(f->one[i].body);
        f->one[i].body = NULL;
    }
}

/* ------------------------------------------------------------------ fixture */

typedef struct fx {
    treg reg[3];
    fake fk;
    os_network *net;
    os_logger log;
    FILE *logf;
    char *logbuf;
    size_t loglen;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->logf = open_memstream(&f->logbuf, &f->loglen);
    if (f->logf == NULL) {
        free(f);
        return -1;
    }
    os_logger_init(&f->log, "network", OS_LOG_DEBUG);
    f->log.out = f->logf;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    os_network_free(f->net);
    for (size_t i = 0; i < 3; i++)
        treg_close(&f->reg[i]);
    fake_close(&f->fk);
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

/* A Network over bases for chain_id and escrow (NULL: any), logging into f's buffer. */
static void net_open(fx *f, const char *const *bases, size_t n, uint64_t chain_id,
                     const uint8_t *escrow)
{
    os_network_config c = {.registries = bases,
                           .n_registries = n,
                           .chain_id = chain_id,
                           .escrow = escrow,
                           .timeout_ms = 5000,
                           .log = &f->log};
    os_network_free(f->net);
    f->net = NULL;
    assert_int_equal(os_network_new(&f->net, &c), OS_OK);
}

/* ------------------------------------------------------------------ sellers */

static uint64_t now_s(void)
{
    return (uint64_t)(rc_now_ms() / 1000);
}

/* Announces s's record (offers, on chain_id, naming escrow; NULL: ours) with this seq to t. */
static void announce_seq(const treg *t, rc_seller *s, const char *endpoint, uint64_t seq,
                         uint64_t chain_id, const uint8_t *escrow, const rc_offer *offers, size_t n)
{
    json_t *rec = rc_record(s, endpoint, seq, now_s(), chain_id, escrow, offers, n);
    assert_non_null(rec);
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

static void announce(const treg *t, rc_seller *s, const char *endpoint, const rc_offer *offers,
                     size_t n)
{
    announce_seq(t, s, endpoint, rc_next_seq(s), CHAIN, NULL, offers, n);
}

static void heartbeat(const treg *t, rc_seller *s, const char *endpoint, uint32_t active,
                      uint32_t capacity)
{
    char *body =
        rc_heartbeat_body(s, s, endpoint, rc_next_seq(s), now_s(), CHAIN, active, capacity);
    assert_non_null(body);
    rc_resp r;
    assert_int_equal(rc_call(&r, t->base, "POST", "/v1/heartbeat", body), 0);
    if (r.status != 200)
        fail_msg("heartbeat: %ld %s", r.status, r.body);
    rc_resp_free(&r);
    free(body);
}

/* The index in l of the peer whose node is s's; -1 when absent. Fails on a second one. */
static int find(const os_peer_list *l, const rc_seller *s)
{
    int at = -1;
    for (size_t i = 0; i < l->n; i++) {
        if (memcmp(l->peers[i].record.node, s->addr, 20) == 0) {
            if (at >= 0)
                fail_msg("seller %s listed twice", s->hex);
            at = (int)i;
        }
    }
    return at;
}

/* Best first: score descending, ties by node id; every registry number in range. */
static void assert_ranked(const os_peer_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const os_peer *p = &l->peers[i];
        assert_true(p->score >= 0.0 && p->score <= 1.0);
        assert_true(p->reputation >= 0.0 && p->reputation <= 1.0);
        if (i > 0) {
            const os_peer *q = &l->peers[i - 1];
            assert_true(q->score > p->score ||
                        (q->score == p->score && memcmp(q->record.node, p->record.node, 20) < 0));
        }
    }
}

static os_err peers(fx *f, os_peer_list *l, const char *service, uint64_t max_in, uint64_t max_out,
                    size_t limit)
{
    os_peer_query q = {
        .service = service, .max_input = max_in, .max_output = max_out, .limit = limit};
    return os_network_peers(f->net, &q, l);
}

/* ------------------------------------------------------------------ tests */

static void test_listing(void **state)
{
    fx *f = *state;
    rc_seller s[5];
    os_peer_list l;
    os_peer one;
    rc_offer chat[3] = {{.service = "chat", .input = 100, .output = 200},
                        {.service = "chat", .input = 300, .output = 400},
                        {.service = "chat", .input = 500, .output = 600}};
    rc_offer embed = {.service = "embed", .input = 900000, .output = 900000};
    rc_offer agent = {.capability = "agent", .service = "chat", .input = 1, .output = 1};

    treg_start(&f->reg[0], "netapi", CHAIN, 60000);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(rc_seller_init(&s[i], 100 + i), 0);
    announce(&f->reg[0], &s[0], "http://s0.example:8378", &chat[0], 1);
    rc_offer both[2] = {chat[1], embed};
    announce(&f->reg[0], &s[1], "http://s1.example:8378", both, 2);
    announce(&f->reg[0], &s[2], "http://s2.example:8378", &chat[2], 1);
    announce(&f->reg[0], &s[3], "http://s3.example:8378", &embed, 1);
    announce(&f->reg[0], &s[4], "http://s4.example:8378", &agent, 1);
    uint64_t seqs[5];
    for (int i = 0; i < 5; i++)
        seqs[i] = s[i].seq;
    heartbeat(&f->reg[0], &s[0], "https://moved.example/s0", 2, 8);

    const char *bases[1] = {f->reg[0].base};
    net_open(f, bases, 1, CHAIN, OUR_ESCROW);

    /* service chat: the three inference sellers and the agent, verified and ranked */
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.rejected, 0);
    assert_int_equal(l.registries_ok, 1);
    assert_ranked(&l);
    for (int i = 0; i < 3; i++) {
        int at = find(&l, &s[i]);
        assert_true(at >= 0);
        const os_peer *p = &l.peers[at];
        assert_int_equal(p->record.seq, seqs[i]);
        assert_int_equal(p->record.chain_id, CHAIN);
        assert_memory_equal(p->record.escrow, OUR_ESCROW, 20);
        assert_int_equal(p->registry, 0);
        assert_true(p->last_seen + 5 >= now_s() && p->last_seen <= now_s() + 1);
    }
    /* the heartbeat's endpoint and load; the record keeps what was signed with it */
    const os_peer *p0 = &l.peers[find(&l, &s[0])];
    assert_string_equal(p0->endpoint, "https://moved.example/s0");
    assert_string_equal(p0->record.endpoint, "http://s0.example:8378");
    assert_int_equal(p0->active, 2);
    assert_int_equal(p0->capacity, 8);
    assert_string_equal(l.peers[find(&l, &s[2])].endpoint, "http://s2.example:8378");

    /* the scores are the registry's, per node */
    {
        rc_resp r;
        json_error_t e;
        assert_int_equal(rc_call(&r, f->reg[0].base, "GET", "/v1/peers?service=chat", NULL), 0);
        json_t *j = json_loads(r.body, 0, &e);
        assert_non_null(j);
        json_t *arr = json_object_get(j, "peers");
        assert_int_equal(json_array_size(arr), 4);
        for (size_t i = 0; i < 4; i++) {
            json_t *pe = json_array_get(arr, i);
            uint8_t node[20];
            assert_int_equal(os_eip55_parse(node, json_string_value(json_object_get(
                                                      json_object_get(pe, "record"), "node_id"))),
                             OS_OK);
            bool seen = false;
            for (size_t k = 0; k < l.n; k++)
                if (memcmp(l.peers[k].record.node, node, 20) == 0) {
                    assert_true(l.peers[k].score ==
                                json_number_value(json_object_get(pe, "score")));
                    seen = true;
                }
            assert_true(seen);
        }
        json_decref(j);
        rc_resp_free(&r);
    }
    os_peer_list_free(&l);
    assert_null(l.peers);
    assert_int_equal(l.n, 0);

    /* price caps: input at most 300 drops s2; output at most 200 leaves s0 and the agent */
    assert_int_equal(peers(f, &l, "chat", 300, 0, 0), OS_OK);
    assert_int_equal(l.n, 3);
    assert_int_equal(find(&l, &s[2]), -1);
    os_peer_list_free(&l);
    assert_int_equal(peers(f, &l, "chat", 0, 200, 0), OS_OK);
    assert_int_equal(l.n, 2);
    assert_true(find(&l, &s[0]) >= 0 && find(&l, &s[4]) >= 0);
    os_peer_list_free(&l);

    /* capability */
    os_peer_query q = {.service = "chat", .capability = "agent"};
    assert_int_equal(os_network_peers(f->net, &q, &l), OS_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(find(&l, &s[4]), 0);
    os_peer_list_free(&l);
    q = (os_peer_query){.capability = "tool"};
    assert_int_equal(os_network_peers(f->net, &q, &l), OS_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.registries_ok, 1);
    os_peer_list_free(&l);

    /* another service; an unknown one is an answer with nobody in it; none means everyone */
    assert_int_equal(peers(f, &l, "embed", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 2);
    assert_true(find(&l, &s[1]) >= 0 && find(&l, &s[3]) >= 0);
    os_peer_list_free(&l);
    assert_int_equal(peers(f, &l, "nobody-sells-this", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.registries_ok, 1);
    os_peer_list_free(&l);
    assert_int_equal(peers(f, &l, NULL, 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 5);
    assert_ranked(&l);
    os_peer_list_free(&l);

    /* min_reputation: whatever comes back has at least that */
    q = (os_peer_query){.min_reputation = 0.5};
    assert_int_equal(os_network_peers(f->net, &q, &l), OS_OK);
    for (size_t i = 0; i < l.n; i++)
        assert_true(l.peers[i].reputation >= 0.5);
    os_peer_list_free(&l);

    /* the registry's health */
    os_registry_status st[2];
    size_t n = 9;
    assert_int_equal(os_network_registries(f->net, st, 2, &n), OS_OK);
    assert_int_equal(n, 1);
    assert_true(st[0].up);
    assert_int_equal(st[0].peers, 5);
    assert_int_equal(st[0].active, 5);
    assert_string_equal(st[0].error, "");
    assert_string_equal(st[0].url, f->reg[0].base);

    /* one seller by node; an unknown node */
    assert_int_equal(os_network_peer(f->net, &one, s[1].addr), OS_OK);
    assert_memory_equal(one.record.node, s[1].addr, 20);
    assert_int_equal(one.record.n_offerings, 2);
    assert_string_equal(one.endpoint, "http://s1.example:8378");
    rc_seller nobody;
    assert_int_equal(rc_seller_init(&nobody, 999), 0);
    assert_int_equal(os_network_peer(f->net, &one, nobody.addr), OS_ERR_NOTFOUND);
}

static void test_merge(void **state)
{
    fx *f = *state;
    rc_seller s[4];
    os_peer_list l;
    rc_offer o = {.service = "chat", .input = 10, .output = 20};

    treg_start(&f->reg[0], "netapi", CHAIN, 60000);
    treg_start(&f->reg[1], "netapi", CHAIN, 60000);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(rc_seller_init(&s[i], 200 + i), 0);
    uint64_t seq0 = rc_next_seq(&s[0]), seq;
    /* s0: an older record on registry 0, a newer one on registry 1 */
    announce_seq(&f->reg[0], &s[0], "http://old.example", seq0, CHAIN, NULL, &o, 1);
    announce_seq(&f->reg[1], &s[0], "http://new.example", seq0 + 5, CHAIN, NULL, &o, 1);
    announce(&f->reg[0], &s[1], "http://only-0.example", &o, 1);
    announce(&f->reg[1], &s[2], "http://only-1.example", &o, 1);
    /* s3: the same seq on both (different records: a fresh OHTTP key each) */
    seq = rc_next_seq(&s[3]);
    announce_seq(&f->reg[0], &s[3], "http://tie-0.example", seq, CHAIN, NULL, &o, 1);
    announce_seq(&f->reg[1], &s[3], "http://tie-1.example", seq, CHAIN, NULL, &o, 1);

    const char *both[2] = {f->reg[0].base, f->reg[1].base};
    net_open(f, both, 2, CHAIN, OUR_ESCROW);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.registries_ok, 2);
    assert_int_equal(l.rejected, 0);
    assert_int_equal(l.n, 4);
    assert_ranked(&l);
    const os_peer *p = &l.peers[find(&l, &s[0])];
    assert_string_equal(p->record.endpoint, "http://new.example");
    assert_int_equal(p->record.seq, seq0 + 5); /* the newer */
    assert_int_equal(p->registry, 1);
    p = &l.peers[find(&l, &s[3])];
    assert_string_equal(p->record.endpoint, "http://tie-0.example"); /* the first registry's */
    assert_int_equal(p->registry, 0);
    assert_int_equal(l.peers[find(&l, &s[1])].registry, 0);
    assert_int_equal(l.peers[find(&l, &s[2])].registry, 1);
    os_peer_list_free(&l);

    /* the other order: the newest record still wins; a tie goes to the (now) first registry */
    const char *rev[2] = {f->reg[1].base, f->reg[0].base};
    net_open(f, rev, 2, CHAIN, OUR_ESCROW);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.peers[find(&l, &s[0])].record.endpoint, "http://new.example");
    assert_int_equal(l.peers[find(&l, &s[0])].registry, 0);
    assert_string_equal(l.peers[find(&l, &s[3])].record.endpoint, "http://tie-1.example");
    os_peer_list_free(&l);

    /* limit applies to the merged answer */
    assert_int_equal(peers(f, &l, "chat", 0, 0, 2), OS_OK);
    assert_int_equal(l.n, 2);
    assert_ranked(&l);
    os_peer_list_free(&l);

    /* one registry down: the other still answers */
    net_open(f, both, 2, CHAIN, OUR_ESCROW);
    treg_stop(&f->reg[1]);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.registries_ok, 1);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.peers[find(&l, &s[0])].record.endpoint, "http://old.example");
    assert_int_equal(find(&l, &s[2]), -1);
    os_peer_list_free(&l);
    assert_true(log_has(f, "registry listing failed"));
    os_registry_status st[2];
    size_t n = 0;
    assert_int_equal(os_network_registries(f->net, st, 2, &n), OS_OK);
    assert_int_equal(n, 2);
    assert_true(st[0].up);
    assert_false(st[1].up);
    assert_true(st[1].error[0] != '\0');
}

/* A peer object as a registry serves it; hb (taken) may be NULL. */
static json_t *entry(const json_t *rec, const uint8_t sig[65], json_t *hb, double score)
{
    char hex[OS_HEX_LEN(65) + 2];
    assert_int_equal(os_hex_encode(hex, sizeof(hex), sig, 65, 1), OS_OK);
    json_t *e = json_pack("{s:O,s:s,s:O,s:o,s:f,s:f,s:I,s:{s:i,s:i}}", "record", rec, "signature",
                          hex, "endpoint", json_object_get(rec, "endpoint"), "heartbeat",
                          hb != NULL ? hb : json_null(), "reputation", 0.5, "score", score,
                          "last_seen", (json_int_t)now_s(), "load", "active", 1, "capacity", 4);
    assert_non_null(e);
    return e;
}

/* s's record (seq from s, our chain unless chain_id) signed by signer. */
static json_t *signed_record(rc_seller *s, const rc_seller *signer, const char *endpoint,
                             uint64_t chain_id, const uint8_t *escrow, const char *service,
                             uint8_t sig[65])
{
    rc_offer o = {.service = service, .input = 5, .output = 6};
    os_record *r = calloc(1, sizeof(*r));
    uint8_t digest[32];
    json_t *rec = rc_record(s, endpoint, rc_next_seq(s), now_s(), chain_id, escrow, &o, 1);

    assert_non_null(r);
    assert_non_null(rec);
    assert_int_equal(os_record_parse(r, rec, NULL, 0), OS_OK);
    assert_int_equal(os_record_digest(digest, rec, r), OS_OK);
    assert_int_equal(os_secp_sign(sig, signer->priv, digest), OS_OK);
    free(r);
    return rec;
}

static json_t *hb_json(rc_seller *node, const rc_seller *signer, const char *endpoint)
{
    char *text = rc_heartbeat_body(node, signer, endpoint, rc_next_seq(node), now_s(), CHAIN, 1, 4);
    json_error_t e;
    assert_non_null(text);
    json_t *j = json_loads(text, 0, &e);
    free(text);
    assert_non_null(j);
    return j;
}

static char *dump(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    assert_non_null(s);
    return s;
}

static void test_fake_registry(void **state)
{
    fx *f = *state;
    rc_seller s[9];
    uint8_t sig[65];
    json_t *rec, *arr = json_array(), *e;
    os_peer_list l;
    os_peer one;

    for (uint32_t i = 0; i < 9; i++)
        assert_int_equal(rc_seller_init(&s[i], 300 + i), 0);

    /* s5: genuine, with its own newer heartbeat (served first, ranked second) */
    rec = signed_record(&s[5], &s[5], "http://s5.example", CHAIN, NULL, "chat", sig);
    json_array_append_new(arr,
                          entry(rec, sig, hb_json(&s[5], &s[5], "http://s5-moved.example"), 0.8));
    json_decref(rec);
    /* s0: genuine, with a heartbeat someone else signed (its endpoint must not be taken) */
    rec = signed_record(&s[0], &s[0], "http://s0.example", CHAIN, NULL, "chat", sig);
    e = entry(rec, sig, hb_json(&s[0], &s[1], "http://evil.example"), 0.9);
    f->fk.one[0].body = dump(e);
    os_eip55_format(f->fk.one[0].node, s[0].addr);
    json_array_append_new(arr, e);
    json_decref(rec);
    /* s1: one byte of the record changed after signing */
    rec = signed_record(&s[1], &s[1], "http://s1.example", CHAIN, NULL, "chat", sig);
    json_object_set_new(rec, "endpoint", json_string("http://s1.exampl3"));
    e = entry(rec, sig, NULL, 0.99);
    f->fk.one[1].body = dump(e);
    os_eip55_format(f->fk.one[1].node, s[1].addr);
    json_array_append_new(arr, e);
    json_decref(rec);
    /* s2: signed by another key; and served as the answer for s3's node */
    rec = signed_record(&s[2], &s[3], "http://s2.example", CHAIN, NULL, "chat", sig);
    json_array_append_new(arr, entry(rec, sig, NULL, 0.98));
    json_decref(rec);
    rec = signed_record(&s[0], &s[0], "http://s0.example", CHAIN, NULL, "chat", sig);
    f->fk.one[2].body = dump(e = entry(rec, sig, NULL, 0.5));
    os_eip55_format(f->fk.one[2].node, s[3].addr);
    json_decref(e);
    json_decref(rec);
    /* s4: a genuine record for another chain; s6: for another escrow */
    rec = signed_record(&s[4], &s[4], "http://s4.example", 1, NULL, "chat", sig);
    e = entry(rec, sig, NULL, 0.97);
    f->fk.one[3].body = dump(e);
    os_eip55_format(f->fk.one[3].node, s[4].addr);
    json_array_append_new(arr, e);
    json_decref(rec);
    rec = signed_record(&s[6], &s[6], "http://s6.example", CHAIN, OTHER_ESCROW, "chat", sig);
    json_array_append_new(arr, entry(rec, sig, NULL, 0.96));
    json_decref(rec);
    /* s7: malformed entries: a short signature, a score out of range */
    rec = signed_record(&s[7], &s[7], "http://s7.example", CHAIN, NULL, "chat", sig);
    e = entry(rec, sig, NULL, 0.95);
    json_object_set_new(e, "signature", json_string("0x1234"));
    json_array_append_new(arr, e);
    e = entry(rec, sig, NULL, 1.5);
    json_array_append_new(arr, e);
    json_decref(rec);
    /* s8: genuine but not what was asked for */
    rec = signed_record(&s[8], &s[8], "http://s8.example", CHAIN, NULL, "embed", sig);
    json_array_append_new(arr, entry(rec, sig, NULL, 0.94));
    json_decref(rec);

    json_t *body = json_pack("{s:o,s:n}", "peers", arr, "next_cursor");
    f->fk.list = dump(body);
    json_decref(body);
    fake_start(&f->fk);

    const char *bases[1] = {f->fk.base};
    net_open(f, bases, 1, CHAIN, OUR_ESCROW);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.rejected, 7);
    assert_int_equal(l.registries_ok, 1);
    assert_int_equal(find(&l, &s[0]), 0); /* 0.9 before 0.8 */
    assert_int_equal(find(&l, &s[5]), 1);
    assert_string_equal(l.peers[0].endpoint, "http://s0.example"); /* forged heartbeat ignored */
    assert_string_equal(l.peers[1].endpoint, "http://s5-moved.example");
    assert_int_equal(l.peers[0].active, 1);
    assert_int_equal(l.peers[0].capacity, 4);
    assert_true(fabs(l.peers[0].score - 0.9) < 1e-12);
    os_peer_list_free(&l);
    assert_true(log_has(f, "registry served records left out"));
    assert_true(log_has(f, "forged=2"));
    assert_true(log_has(f, "other_chain_or_escrow=2"));
    assert_true(log_has(f, "malformed=2"));
    assert_true(log_has(f, "not_matching_query=1"));

    /* without an escrow to expect, s6 is kept */
    net_open(f, bases, 1, CHAIN, NULL);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 3);
    assert_true(find(&l, &s[6]) >= 0);
    assert_int_equal(l.rejected, 6);
    os_peer_list_free(&l);

    /* single lookups: genuine, altered, another node's, another chain's, unknown */
    net_open(f, bases, 1, CHAIN, OUR_ESCROW);
    assert_int_equal(os_network_peer(f->net, &one, s[0].addr), OS_OK);
    assert_string_equal(one.record.endpoint, "http://s0.example");
    assert_int_equal(os_network_peer(f->net, &one, s[1].addr), OS_ERR_CRYPTO);
    assert_true(os_ct_is_zero((const uint8_t *)&one, sizeof(one)));
    assert_int_equal(os_network_peer(f->net, &one, s[3].addr), OS_ERR_CRYPTO);
    assert_int_equal(os_network_peer(f->net, &one, s[4].addr), OS_ERR_NOTFOUND);
    assert_int_equal(os_network_peer(f->net, &one, s[8].addr), OS_ERR_NOTFOUND);

    /* next to a real registry holding the genuine s1: the forgery cannot hide it */
    treg_start(&f->reg[0], "netapi", CHAIN, 60000);
    rc_offer o = {.service = "chat", .input = 1, .output = 2};
    announce(&f->reg[0], &s[1], "http://s1.example", &o, 1);
    const char *two[2] = {f->fk.base, f->reg[0].base};
    net_open(f, two, 2, CHAIN, OUR_ESCROW);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.rejected, 7);
    assert_int_equal(l.registries_ok, 2);
    assert_string_equal(l.peers[find(&l, &s[1])].record.endpoint, "http://s1.example");
    assert_int_equal(l.peers[find(&l, &s[1])].registry, 1);
    os_peer_list_free(&l);
    /* and the lookup of s1 gets past the fake's forgery to the genuine record */
    assert_int_equal(os_network_peer(f->net, &one, s[1].addr), OS_OK);
    assert_int_equal(one.registry, 1);

    /* the fake's health: up with its numbers */
    os_registry_status st[2];
    size_t n = 0;
    assert_int_equal(os_network_registries(f->net, st, 1, &n), OS_OK);
    assert_int_equal(n, 1); /* cap 1: only the first probed */
    assert_int_equal(st[0].peers, 9);
    assert_int_equal(st[0].active, 7);

    /* a body that is not JSON is no answer */
    f->fk.mode = FAKE_GARBAGE;
    net_open(f, bases, 1, CHAIN, OUR_ESCROW);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_ERR_NETWORK);
    assert_int_equal(l.n, 0);
    assert_null(l.peers);
}

/* Paging bounds against a registry that never ends its listing. */
static void test_fake_paging(void **state)
{
    fx *f = *state;
    rc_seller s;
    uint8_t sig[65];
    os_peer_list l;

    assert_int_equal(rc_seller_init(&s, 400), 0);
    json_t *rec = signed_record(&s, &s, "http://s.example", CHAIN, NULL, "chat", sig);
    json_t *e = entry(rec, sig, NULL, 0.5);
    f->fk.entry = dump(e);
    json_decref(e);
    json_decref(rec);
    fake_start(&f->fk);
    const char *bases[1] = {f->fk.base};
    net_open(f, bases, 1, CHAIN, OUR_ESCROW);

    /* a cursor that repeats: the second page ends the walk */
    f->fk.mode = FAKE_SAME_CURSOR;
    atomic_store(&f->fk.requests, 0);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(atomic_load(&f->fk.requests), 2);
    assert_int_equal(l.n, 1); /* the same seller twice is one */
    os_peer_list_free(&l);

    /* a new cursor every time: 100 pages at most */
    f->fk.mode = FAKE_ENDLESS;
    atomic_store(&f->fk.requests, 0);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(atomic_load(&f->fk.requests), 100);
    assert_int_equal(l.n, 1);
    os_peer_list_free(&l);

    /* a limit stops the walk once that many were taken */
    atomic_store(&f->fk.requests, 0);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 3), OS_OK);
    assert_int_equal(atomic_load(&f->fk.requests), 3);
    os_peer_list_free(&l);
}

static void test_paging(void **state)
{
    fx *f = *state;
    enum { N = 230 };
    rc_seller *s = calloc(N, sizeof(*s));
    os_peer_list all, some;

    assert_non_null(s);
    treg_start(&f->reg[0], "netapi", CHAIN, 600000);
    for (uint32_t i = 0; i < N; i++) {
        char ep[64];
        rc_offer o = {.service = "bulk", .input = 1000 + 7 * i, .output = 5000 - 3 * i};
        assert_int_equal(rc_seller_init(&s[i], 1000 + i), 0);
        snprintf(ep, sizeof(ep), "http://bulk-%u.example", (unsigned)i);
        announce(&f->reg[0], &s[i], ep, &o, 1);
    }
    const char *bases[1] = {f->reg[0].base};
    net_open(f, bases, 1, CHAIN, OUR_ESCROW);

    /* every page (the registry serves at most 100 per page) */
    assert_int_equal(peers(f, &all, "bulk", 0, 0, 0), OS_OK);
    assert_int_equal(all.n, N);
    assert_int_equal(all.rejected, 0);
    assert_ranked(&all);
    for (uint32_t i = 0; i < N; i++)
        assert_true(find(&all, &s[i]) >= 0);

    /* a limit takes the best that many, across pages too */
    static const size_t limits[] = {1, 30, 100, 101, 150, N, N + 50};
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
        assert_int_equal(peers(f, &some, "bulk", 0, 0, limits[k]), OS_OK);
        size_t want = limits[k] < N ? limits[k] : N;
        assert_int_equal(some.n, want);
        for (size_t i = 0; i < want; i++)
            assert_memory_equal(some.peers[i].record.node, all.peers[i].record.node, 20);
        os_peer_list_free(&some);
    }

    /* a price cap across pages: input at most 1000 + 7 * 149 leaves 150 */
    assert_int_equal(peers(f, &some, "bulk", 1000 + 7 * 149, 0, 0), OS_OK);
    assert_int_equal(some.n, 150);
    assert_int_equal(find(&some, &s[150]), -1);
    assert_true(find(&some, &s[149]) >= 0);
    os_peer_list_free(&some);
    os_peer_list_free(&all);
    free(s);
}

static void test_other_chain(void **state)
{
    fx *f = *state;
    rc_seller s[2];
    os_peer_list l;
    rc_offer o = {.service = "chat", .input = 1, .output = 2};

    /* a registry of chain 1, whose sellers sign for chain 1 */
    treg_start(&f->reg[0], "netapi", 1, 60000);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(rc_seller_init(&s[i], 500 + i), 0);
        announce_seq(&f->reg[0], &s[i], "http://c1.example", rc_next_seq(&s[i]), 1, NULL, &o, 1);
    }
    const char *bases[1] = {f->reg[0].base};
    net_open(f, bases, 1, CHAIN, OUR_ESCROW);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.rejected, 2);
    assert_int_equal(l.registries_ok, 1);
    os_peer_list_free(&l);
    os_peer one;
    assert_int_equal(os_network_peer(f->net, &one, s[0].addr), OS_ERR_NOTFOUND);

    /* a network of chain 1 takes them */
    net_open(f, bases, 1, 1, NULL);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.rejected, 0);
    os_peer_list_free(&l);
}

static void test_no_registry(void **state)
{
    fx *f = *state;
    char url[128], up_url[128];
    os_registry_status st[3];
    os_peer_list l;
    os_peer one;
    size_t n = 0;
    uint8_t node[20] = {1};
    uint16_t port = tu_free_port();

    snprintf(url, sizeof(url), "http://opensesame:hunter2@127.0.0.1:%u//", (unsigned)port);
    const char *bases[1] = {url};
    net_open(f, bases, 1, CHAIN, OUR_ESCROW);
    memset(&l, 0x5a, sizeof(l));
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_ERR_NETWORK);
    assert_null(l.peers);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.registries_ok, 0);
    os_peer_list_free(&l);
    assert_int_equal(os_network_peer(f->net, &one, node), OS_ERR_NETWORK);
    assert_int_equal(os_network_registries(f->net, st, 3, &n), OS_ERR_NETWORK);
    assert_int_equal(n, 1);
    assert_false(st[0].up);
    snprintf(up_url, sizeof(up_url), "http://127.0.0.1:%u", (unsigned)port);
    assert_string_equal(st[0].url, up_url); /* no user info, no trailing slashes */
    assert_true(st[0].error[0] != '\0');
    assert_null(strstr(st[0].error, "hunter2"));
    print_message("no registry: %s\n", st[0].error);
    assert_true(log_has(f, "registry listing failed"));
    assert_true(log_has(f, up_url));
    assert_false(log_has(f, "hunter2"));
    assert_false(log_has(f, "opensesame"));

    /* a registry that is down next to one that is up */
    treg_start(&f->reg[0], "netapi", CHAIN, 60000);
    const char *two[2] = {url, f->reg[0].base};
    net_open(f, two, 2, CHAIN, OUR_ESCROW);
    assert_int_equal(peers(f, &l, "chat", 0, 0, 0), OS_OK);
    assert_int_equal(l.registries_ok, 1);
    assert_int_equal(l.n, 0);
    os_peer_list_free(&l);
    assert_int_equal(os_network_registries(f->net, st, 3, &n), OS_OK);
    assert_int_equal(n, 2);
    assert_false(st[0].up);
    assert_true(st[1].up);
}

static void test_bad_args(void **state)
{
    fx *f = *state;
    os_network *net = NULL;
    os_network_config c = {.chain_id = CHAIN, .log = &f->log};
    char longurl[600];
    const char *many[OS_NETWORK_MAX_REGISTRIES + 1];
    os_peer_list l;

    memset(longurl, 'a', sizeof(longurl));
    memcpy(longurl, "http://", 7);
    longurl[sizeof(longurl) - 1] = '\0';
    static const char *const bad[] = {
        "ftp://h",     "http://",      "http:/h", "http://h?x=1",   "http://h/#frag",
        "http://u@/x", "http://h/a b", "",        "127.0.0.1:8379", "http://h\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.registries = &bad[i];
        c.n_registries = 1;
        assert_int_equal(os_network_new(&net, &c), OS_ERR_INVALID);
        assert_null(net);
    }
    const char *lu = longurl;
    c.registries = &lu;
    assert_int_equal(os_network_new(&net, &c), OS_ERR_INVALID);
    for (size_t i = 0; i <= OS_NETWORK_MAX_REGISTRIES; i++)
        many[i] = "http://127.0.0.1:1";
    c.registries = many;
    c.n_registries = OS_NETWORK_MAX_REGISTRIES + 1;
    assert_int_equal(os_network_new(&net, &c), OS_ERR_INVALID);
    c.n_registries = 0;
    assert_int_equal(os_network_new(&net, &c), OS_ERR_INVALID);
    c.n_registries = OS_NETWORK_MAX_REGISTRIES;
    c.timeout_ms = -1;
    assert_int_equal(os_network_new(&net, &c), OS_ERR_INVALID);
    c.timeout_ms = 0;
    c.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(os_network_new(&net, &c), OS_ERR_INVALID);
    c.ca_file = NULL;
    assert_int_equal(os_network_new(&net, NULL), OS_ERR_INVALID);
    assert_int_equal(os_network_new(NULL, &c), OS_ERR_INVALID);
    assert_int_equal(os_network_new(&net, &c), OS_OK); /* 16, https or http, is fine */
    os_network_free(net);
    os_network_free(NULL);

    /* bad queries never reach a registry */
    const char *one[1] = {"http://127.0.0.1:1"};
    net_open(f, one, 1, CHAIN, NULL);
    static const os_peer_query badq[] = {
        {.service = "a b"},           {.service = "caf\xc3\xa9"}, {.capability = "robot"},
        {.min_reputation = -0.1},     {.min_reputation = 1.5},    {.min_reputation = NAN},
        {.min_reputation = INFINITY},
    };
    for (size_t i = 0; i < sizeof(badq) / sizeof(badq[0]); i++) {
        assert_int_equal(os_network_peers(f->net, &badq[i], &l), OS_ERR_INVALID);
        assert_int_equal(l.n, 0);
    }
    assert_int_equal(os_network_peers(f->net, NULL, &l), OS_ERR_INVALID);
    assert_int_equal(os_network_peers(NULL, &badq[0], &l), OS_ERR_INVALID);
    size_t n = 7;
    os_registry_status st;
    assert_int_equal(os_network_registries(f->net, NULL, 0, &n), OS_ERR_INVALID);
    assert_int_equal(os_network_registries(f->net, &st, 0, &n), OS_ERR_INVALID);
    assert_int_equal(n, 0);
    os_peer_list_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_merge, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_registry, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fake_paging, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_paging, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_other_chain, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_no_registry, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
