/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's announcer (src/seller/announce.c) against the real registry core running in this
 * process on loopback, each registry with its own SQLite file in a temp directory and a 1 s
 * heartbeat interval. Covered: the first announcement (the served record and signature are
 * byte for byte what the seller's key signs), heartbeats that keep the seller listed past the
 * liveness window and carry the load (a seller that stops heartbeating is delisted meanwhile, as
 * a control), two registries, a registry restarted on an empty database (404 -> re-announce), a
 * registry that is down at start (backoff, then registered within the bound), a stale seq (409),
 * a configuration refusal (retried at the max backoff only), a 429 with Retry-After, a prompt
 * stop while backing off and while a request hangs, a new endpoint through set_record, and the
 * argument checks of the API.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "registry_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "openseed/hpke.h"
#include "openseed/http_client.h"
#include "openseed/init.h"
#include "openseed/json.h"

#include "announce.h"
#include "registry.h"

#define CHAIN 31337
#define ENDPOINT_A "http://seller-a.example:8378"
#define ENDPOINT_B "https://seller-b.example:9000/tunnel"

/* ------------------------------------------------------------------ a registry in process */

typedef struct treg {
    char dir[64];
    char db[128];
    char base[64];
    uint16_t port;
    rg_registry *rg;
    os_logger log;
} treg;

typedef struct treg_opts {
    uint64_t chain_id; /* 0: CHAIN */
    uint32_t rate, burst;
} treg_opts;

/* Starts a registry on 127.0.0.1:port (0: any) over a new empty database. */
static void treg_start(treg *t, uint16_t port, const treg_opts *to)
{
    rg_options o;
    char listen[32];

    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/openseed-announce-XXXXXX");
    assert_int_equal(rc_tmpdir(t->dir), 0);
    snprintf(t->db, sizeof(t->db), "%s/registry.db", t->dir);
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
    rg_options_default(&o);
    o.listen = listen;
    o.db_path = t->db;
    o.chain_id = to != NULL && to->chain_id != 0 ? to->chain_id : CHAIN;
    o.heartbeat_interval_ms = 1000;
    o.liveness_intervals = 2;
    o.rescore_interval_ms = 500;
    o.rate_per_s = to != NULL ? to->rate : 0;
    o.rate_burst = to != NULL ? to->burst : 0;
    o.drain_timeout_ms = 1000;
    os_logger_init(&t->log, "registry", OS_LOG_WARN);
    assert_int_equal(rg_registry_new_opts(&t->rg, &o, &t->log), OS_OK);
    assert_int_equal(rg_registry_start(t->rg), OS_OK);
    t->port = rg_registry_port(t->rg);
    assert_true(t->port != 0);
    if (port != 0)
        assert_int_equal(t->port, port);
    snprintf(t->base, sizeof(t->base), "http://127.0.0.1:%u", (unsigned)t->port);
}

static void treg_stop(treg *t)
{
    rg_registry_free(t->rg);
    t->rg = NULL;
    rc_rmtree(t->dir);
}

/* A socket that accepts connections into its backlog and never answers: a hung registry. */
static int silent_listener(uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ------------------------------------------------------------------ HTTP as a buyer sees it */

/* GET base+path as JSON; the parsed body (caller's) and the status. */
static json_t *get_json(const char *base, const char *path, long *status)
{
    os_http_client *c;
    os_http_client_error e;
    char url[256];
    json_t *j = NULL;

    snprintf(url, sizeof(url), "%s%s", base, path);
    assert_int_equal(os_http_client_new(&c, NULL), OS_OK);
    if (os_http_client_json(c, status, &j, &e, "GET", url, NULL, NULL, 0) != OS_OK)
        fail_msg("GET %s: %s", url, e.message);
    os_http_client_free(c);
    return j;
}

static json_t *post_json(const char *base, const char *path, const json_t *body, long *status)
{
    os_http_client *c;
    os_http_client_error e;
    char url[256];
    json_t *j = NULL;

    snprintf(url, sizeof(url), "%s%s", base, path);
    assert_int_equal(os_http_client_new(&c, NULL), OS_OK);
    if (os_http_client_json(c, status, &j, &e, "POST", url, body, NULL, 0) != OS_OK)
        fail_msg("POST %s: %s", url, e.message);
    os_http_client_free(c);
    return j;
}

/* ------------------------------------------------------------------ a seller */

typedef struct seller {
    uint8_t priv[32];
    uint8_t addr[20];
    char hex[OS_ADDRESS_STR_LEN];
    os_record rec;
    atomic_uint active, capacity;
    os_logger log;
} seller;

static void load_cb(void *ud, uint32_t *active, uint32_t *capacity)
{
    seller *s = ud;
    *active = atomic_load(&s->active);
    *capacity = atomic_load(&s->capacity);
}

/* A fresh node key and a record with two offerings and a real OHTTP key config. */
static void seller_init(seller *s, const char *endpoint)
{
    uint8_t sk[OS_HPKE_NSK], pk[OS_HPKE_NPK];
    os_record *r = &s->rec;

    memset(s, 0, sizeof(*s));
    assert_int_equal(os_secp_keygen(s->priv), OS_OK);
    assert_int_equal(os_secp_address(s->addr, s->priv), OS_OK);
    os_eip55_format(s->hex, s->addr);
    memcpy(r->node, s->addr, 20);
    snprintf(r->endpoint, sizeof(r->endpoint), "%s", endpoint);
    r->chain_id = CHAIN;
    memset(r->escrow, 0x11, 20);
    memset(r->asset, 0x22, 20);
    assert_int_equal(os_hpke_keypair(sk, pk), OS_OK);
    assert_int_equal(os_ohttp_keyconfig_encode(r->ohttp_keys, sizeof(r->ohttp_keys),
                                               &r->ohttp_keys_len, 1, pk, NULL, 0),
                     OS_OK);
    sodium_memzero(sk, sizeof(sk));

    os_offering *o = &r->offerings[0];
    snprintf(o->capability, sizeof(o->capability), "inference");
    snprintf(o->services[0], sizeof(o->services[0]), "llama3.1-8b");
    o->n_services = 1;
    snprintf(o->model, sizeof(o->model), "llama3.1:8b");
    o->apis = OS_API_OPENAI_CHAT | OS_API_OPENAI_EMBEDDINGS | OS_API_ANTHROPIC_MESSAGES;
    o->pricing = (os_pricing){.input = 100000, .output = 300000, .cached = 50000};
    o->max_output_tokens = 4096;
    o = &r->offerings[1];
    snprintf(o->capability, sizeof(o->capability), "agent");
    snprintf(o->services[0], sizeof(o->services[0]), "coder");
    snprintf(o->services[1], sizeof(o->services[1]), "reviewer");
    o->n_services = 2;
    snprintf(o->model, sizeof(o->model), "coder-large");
    o->apis = OS_API_OPENAI_CHAT;
    o->pricing = (os_pricing){.input = 2000000, .output = 6000000, .cached = 2000000};
    o->max_output_tokens = 16384;
    r->n_offerings = 2;

    atomic_init(&s->active, 2);
    atomic_init(&s->capacity, 8);
    os_logger_init(&s->log, "seller", OS_LOG_INFO);
}

static sl_announcer *announcer_new(seller *s, const char *const *urls, size_t n, uint64_t min_ms,
                                   uint64_t max_ms, long timeout_ms)
{
    sl_announcer_config c = {0};
    sl_announcer *a = NULL;

    c.registries = urls;
    c.n_registries = n;
    c.record = &s->rec;
    c.node_priv = s->priv;
    c.chain_id = CHAIN;
    c.load = load_cb;
    c.load_ud = s;
    c.log = &s->log;
    c.min_backoff_ms = min_ms;
    c.max_backoff_ms = max_ms;
    c.request_timeout_ms = timeout_ms;
    assert_int_equal(sl_announcer_new(&a, &c), OS_OK);
    assert_non_null(a);
    return a;
}

/* Polls until the counter at `off` in the stats reaches want; the stats last seen in *st. */
static bool wait_stat(sl_announcer *a, size_t off, uint64_t want, long timeout_ms,
                      sl_announcer_stats *st)
{
    int64_t end = rc_now_ms() + timeout_ms;
    for (;;) {
        uint64_t v;
        sl_announcer_get_stats(a, st);
        memcpy(&v, (const char *)st + off, sizeof(v));
        if (v >= want)
            return true;
        if (rc_now_ms() > end)
            return false;
        rc_sleep_ms(10);
    }
}

#define WAIT_STAT(a, field, want, ms, st)                                                          \
    wait_stat((a), offsetof(sl_announcer_stats, field), (want), (ms), (st))

/* The seller's entry in GET /v1/peers (caller's reference), or NULL when it is not listed. */
static json_t *listed_peer(const treg *t, const seller *s)
{
    long status = 0;
    json_t *j = get_json(t->base, "/v1/peers?limit=100", &status), *found = NULL;
    const json_t *peers, *p;
    size_t i;

    assert_int_equal(status, 200);
    peers = json_object_get(j, "peers");
    assert_true(json_is_array(peers));
    json_array_foreach(peers, i, p)
    {
        const char *id =
            json_string_value(json_object_get(json_object_get(p, "record"), "node_id"));
        if (id != NULL && strcasecmp(id, s->hex) == 0)
            found = json_incref((json_t *)p);
    }
    json_decref(j);
    return found;
}

/* GET /v1/peers/{node} (caller's reference); status in *status. */
static json_t *peer_by_id(const treg *t, const seller *s, long *status)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/peers/%s", s->hex);
    return get_json(t->base, path, status);
}

/*
 * The served record is s's record with `endpoint`, a fresh seq (>= min_seq) and timestamp, and
 * the served signature is exactly what s's key makes over the served bytes (RFC 6979 signatures
 * are deterministic). Returns the served seq.
 */
static uint64_t check_served_record(const json_t *peer, const seller *s, const char *endpoint,
                                    uint64_t min_seq)
{
    const json_t *rj = json_object_get(peer, "record");
    const char *sig_hex = json_string_value(json_object_get(peer, "signature"));
    uint8_t sig[65], mine[65];
    char err[OS_RECORD_ERR_LEN];
    char *got_c = NULL, *want_c = NULL;
    os_record got, want;
    json_t *wj;
    int64_t now_s = rc_now_ms() / 1000;

    assert_non_null(rj);
    assert_non_null(sig_hex);
    assert_int_equal(strlen(sig_hex), 2 + 130);
    assert_memory_equal(sig_hex, "0x", 2);
    assert_int_equal(os_hex_decode_exact(sig, 65, sig_hex), OS_OK);
    if (os_record_verify(&got, rj, sig, err, sizeof(err)) != OS_OK)
        fail_msg("served record does not verify: %s", err);
    assert_memory_equal(got.node, s->addr, 20);
    assert_true(got.seq >= min_seq);
    assert_true((int64_t)got.timestamp >= now_s - 10 && (int64_t)got.timestamp <= now_s + 2);
    assert_string_equal(got.endpoint, endpoint);

    assert_int_equal(os_record_sign(mine, rj, s->priv), OS_OK);
    assert_memory_equal(mine, sig, 65);

    want = s->rec;
    snprintf(want.endpoint, sizeof(want.endpoint), "%s", endpoint);
    want.seq = got.seq;
    want.timestamp = got.timestamp;
    assert_non_null(wj = os_record_to_json(&want));
    assert_int_equal(os_json_dump_canonical(wj, &want_c, NULL), OS_OK);
    assert_int_equal(os_json_dump_canonical(rj, &got_c, NULL), OS_OK);
    assert_string_equal(got_c, want_c);
    free(got_c);
    free(want_c);
    json_decref(wj);
    return got.seq;
}

/* ------------------------------------------------------------------ tests */

/* Announced at start; listed with the record exactly as signed. */
static void test_announce_listed(void **state)
{
    treg t;
    seller s;
    sl_announcer *a;
    sl_announcer_stats st;
    json_t *peer;
    uint64_t t0 = (uint64_t)rc_now_ms();
    (void)state;

    treg_start(&t, 0, NULL);
    seller_init(&s, ENDPOINT_A);
    const char *urls[] = {t.base};
    a = announcer_new(&s, urls, 1, 100, 1000, 5000);
    sl_announcer_get_stats(a, &st);
    assert_int_equal(st.registries, 1);
    assert_int_equal(st.registered, 0);
    assert_int_equal(st.announces_ok, 0);
    assert_null(listed_peer(&t, &s)); /* nothing before the start */

    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_int_equal(sl_announcer_start(a), OS_ERR_INVALID); /* once only */
    assert_true(WAIT_STAT(a, announces_ok, 1, 5000, &st));
    assert_int_equal(st.registered, 1);
    assert_int_equal(st.announces_failed, 0);
    assert_int_equal(st.reannounces, 0);

    assert_non_null(peer = listed_peer(&t, &s));
    check_served_record(peer, &s, ENDPOINT_A, t0);
    assert_string_equal(json_string_value(json_object_get(peer, "endpoint")), ENDPOINT_A);
    json_decref(peer);

    sl_announcer_free(a);
    treg_stop(&t);
}

/* Heartbeats carry the load, are signed by the node key and keep the seller listed past the
 * liveness window (2 s here), in which a seller that only announced is delisted. */
static void test_heartbeats_keep_listed_with_load(void **state)
{
    treg t;
    seller s, quiet;
    sl_announcer *a;
    sl_announcer_stats st;
    json_t *p, *body, *ans;
    const json_t *hbj;
    os_heartbeat hb;
    long status;
    uint8_t sig[65];
    char sig_hex[OS_HEX_LEN(65)];
    uint64_t rec_seq;
    bool seen = false;
    (void)state;

    treg_start(&t, 0, NULL);
    seller_init(&s, ENDPOINT_A);
    atomic_store(&s.active, 3);
    atomic_store(&s.capacity, 7);

    /* The control: announced once by hand, never heartbeating. */
    seller_init(&quiet, "http://quiet.example:8378");
    quiet.rec.seq = (uint64_t)rc_now_ms();
    quiet.rec.timestamp = quiet.rec.seq / 1000;
    json_t *qr = os_record_to_json(&quiet.rec);
    assert_non_null(qr);
    assert_int_equal(os_record_sign(sig, qr, quiet.priv), OS_OK);
    assert_int_equal(os_hex_encode(sig_hex, sizeof(sig_hex), sig, 65, 1), OS_OK);
    body = json_pack("{s:o,s:s}", "record", qr, "signature", sig_hex);
    ans = post_json(t.base, "/v1/announce", body, &status);
    assert_int_equal(status, 200);
    json_decref(ans);
    json_decref(body);

    const char *urls[] = {t.base};
    a = announcer_new(&s, urls, 1, 100, 1000, 5000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, heartbeats_ok, 1, 5000, &st));
    assert_int_equal(st.heartbeats_failed, 0);
    assert_int_equal(st.registered, 1);

    p = peer_by_id(&t, &s, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "load"), "active")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "load"), "capacity")),
                     7);
    assert_true(json_is_true(json_object_get(p, "active")));
    rec_seq = check_served_record(p, &s, ENDPOINT_A, 0);
    hbj = json_object_get(p, "heartbeat");
    assert_true(json_is_object(hbj));
    assert_int_equal(os_heartbeat_parse(&hb, hbj, NULL, 0), OS_OK);
    assert_int_equal(os_heartbeat_verify(&hb, CHAIN), OS_OK);
    assert_int_not_equal(os_heartbeat_verify(&hb, CHAIN + 1), OS_OK); /* the domain is bound */
    assert_memory_equal(hb.node, s.addr, 20);
    assert_string_equal(hb.endpoint, ENDPOINT_A);
    assert_true(hb.seq > rec_seq); /* one sequence for announce and heartbeat */
    assert_int_equal(hb.active, 3);
    assert_int_equal(hb.capacity, 7);
    json_decref(p);

    /* A new load shows at the next heartbeat. */
    atomic_store(&s.active, 5);
    atomic_store(&s.capacity, 9);
    for (int64_t end = rc_now_ms() + 4000; !seen && rc_now_ms() < end; rc_sleep_ms(50)) {
        p = peer_by_id(&t, &s, &status);
        const json_t *load = json_object_get(p, "load");
        seen = json_integer_value(json_object_get(load, "active")) == 5 &&
               json_integer_value(json_object_get(load, "capacity")) == 9;
        json_decref(p);
    }
    assert_true(seen);

    /* Past the liveness window: still listed; the quiet control is not. */
    rc_sleep_ms(2600);
    p = listed_peer(&t, &s);
    assert_non_null(p);
    json_decref(p);
    assert_null(listed_peer(&t, &quiet));
    p = peer_by_id(&t, &quiet, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_false(json_object_get(p, "active")));
    json_decref(p);
    sl_announcer_get_stats(a, &st);
    assert_true(st.heartbeats_ok >= 3);
    assert_int_equal(st.heartbeats_failed, 0);
    assert_int_equal(st.announces_ok, 1);

    sl_announcer_free(a);
    treg_stop(&t);
}

/* Two registries both get the record and heartbeats; the seq is shared, so they differ. */
static void test_two_registries(void **state)
{
    treg t1, t2;
    seller s;
    sl_announcer *a;
    sl_announcer_stats st;
    json_t *p1, *p2;
    uint64_t t0 = (uint64_t)rc_now_ms(), q1, q2;
    (void)state;

    treg_start(&t1, 0, NULL);
    treg_start(&t2, 0, NULL);
    seller_init(&s, ENDPOINT_A);
    const char *urls[] = {t1.base, t2.base};
    a = announcer_new(&s, urls, 2, 100, 1000, 5000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, announces_ok, 2, 5000, &st));
    assert_int_equal(st.registries, 2);
    assert_int_equal(st.registered, 2);
    assert_non_null(p1 = listed_peer(&t1, &s));
    assert_non_null(p2 = listed_peer(&t2, &s));
    q1 = check_served_record(p1, &s, ENDPOINT_A, t0);
    q2 = check_served_record(p2, &s, ENDPOINT_A, t0);
    assert_true(q1 != q2);
    json_decref(p1);
    json_decref(p2);
    assert_true(WAIT_STAT(a, heartbeats_ok, 2, 4000, &st));
    assert_int_equal(st.announces_failed + st.heartbeats_failed, 0);

    sl_announcer_free(a);
    treg_stop(&t1);
    treg_stop(&t2);
}

/* The registry comes back on an empty database at the same port: heartbeat 404, re-announce. */
static void test_registry_forgets_reannounce(void **state)
{
    treg t;
    seller s;
    sl_announcer *a;
    sl_announcer_stats st;
    json_t *p;
    uint16_t port;
    char base[64];
    (void)state;

    treg_start(&t, 0, NULL);
    port = t.port;
    snprintf(base, sizeof(base), "%s", t.base);
    seller_init(&s, ENDPOINT_A);
    const char *urls[] = {base};
    a = announcer_new(&s, urls, 1, 100, 1000, 5000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, announces_ok, 1, 5000, &st));
    assert_int_equal(st.reannounces, 0);

    treg_stop(&t);
    treg_start(&t, port, NULL); /* new directory, empty database */
    assert_null(listed_peer(&t, &s));
    uint64_t t1 = (uint64_t)rc_now_ms();
    assert_true(WAIT_STAT(a, reannounces, 1, 6000, &st));
    assert_true(st.announces_ok >= 2);
    assert_true(st.heartbeats_failed >= 1); /* the 404 at least */
    assert_true(WAIT_STAT(a, heartbeats_ok, st.heartbeats_ok + 1, 4000, &st));
    assert_int_equal(st.registered, 1);
    assert_non_null(p = listed_peer(&t, &s));
    check_served_record(p, &s, ENDPOINT_A, t1);
    json_decref(p);

    sl_announcer_free(a);
    treg_stop(&t);
}

/* Nothing listens at first: failures are counted and backed off; once the registry is up the
 * seller is registered within the max backoff (800 ms) plus a request. */
static void test_registry_down_at_start(void **state)
{
    treg t;
    seller s;
    sl_announcer *a;
    sl_announcer_stats st;
    json_t *p;
    char base[64];
    uint16_t port = tu_free_port();
    (void)state;

    snprintf(base, sizeof(base), "http://127.0.0.1:%u/", (unsigned)port); /* trailing '/' is fine */
    seller_init(&s, ENDPOINT_A);
    const char *urls[] = {base};
    a = announcer_new(&s, urls, 1, 100, 800, 5000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, announces_failed, 4, 5000, &st)); /* 0.1 + 0.2 + 0.4 s at most */
    assert_int_equal(st.announces_ok, 0);
    assert_int_equal(st.registered, 0);

    treg_start(&t, port, NULL);
    int64_t up = rc_now_ms();
    assert_true(WAIT_STAT(a, announces_ok, 1, 3000, &st));
    int64_t took = rc_now_ms() - up;
    assert_true(took <= 800 + 500);
    assert_int_equal(st.registered, 1);
    assert_int_equal(st.reannounces, 0);
    assert_non_null(p = listed_peer(&t, &s));
    check_served_record(p, &s, ENDPOINT_A, 0);
    json_decref(p);

    sl_announcer_free(a);
    treg_stop(&t);
}

/* The registry has a higher seq from this node (e.g. a clock that was ahead): 409, then the
 * announcer jumps past the seq the registry names and is accepted at once. */
static void test_stale_seq_catches_up(void **state)
{
    treg t;
    seller s;
    sl_announcer *a;
    sl_announcer_stats st;
    json_t *p, *body, *ans, *rj;
    long status;
    uint8_t sig[65];
    char sig_hex[OS_HEX_LEN(65)];
    uint64_t ahead = (uint64_t)rc_now_ms() + 60000;
    (void)state;

    treg_start(&t, 0, NULL);
    seller_init(&s, ENDPOINT_A);
    s.rec.seq = ahead;
    s.rec.timestamp = (uint64_t)rc_now_ms() / 1000;
    assert_non_null(rj = os_record_to_json(&s.rec));
    assert_int_equal(os_record_sign(sig, rj, s.priv), OS_OK);
    assert_int_equal(os_hex_encode(sig_hex, sizeof(sig_hex), sig, 65, 1), OS_OK);
    body = json_pack("{s:o,s:s}", "record", rj, "signature", sig_hex);
    ans = post_json(t.base, "/v1/announce", body, &status);
    assert_int_equal(status, 200);
    json_decref(ans);
    json_decref(body);

    const char *urls[] = {t.base};
    a = announcer_new(&s, urls, 1, 5000, 10000, 5000); /* a backoff would take > 2 s */
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, announces_ok, 1, 2000, &st));
    assert_true(st.announces_failed >= 1);
    assert_non_null(p = listed_peer(&t, &s));
    assert_true(check_served_record(p, &s, ENDPOINT_A, ahead + 1) > ahead);
    json_decref(p);

    sl_announcer_free(a);
    treg_stop(&t);
}

/* A registry for another chain answers 400: a configuration problem, retried at the max
 * backoff (1 s) rather than from the min (10 ms), which would make seven attempts here. */
static void test_config_refusal_max_backoff(void **state)
{
    treg t;
    treg_opts to = {.chain_id = 1};
    seller s;
    sl_announcer *a;
    sl_announcer_stats st;
    (void)state;

    treg_start(&t, 0, &to);
    seller_init(&s, ENDPOINT_A);
    const char *urls[] = {t.base};
    a = announcer_new(&s, urls, 1, 10, 1000, 5000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, announces_failed, 1, 3000, &st));
    rc_sleep_ms(1600);
    sl_announcer_get_stats(a, &st);
    assert_true(st.announces_failed >= 1 && st.announces_failed <= 4);
    assert_int_equal(st.announces_ok, 0);
    assert_int_equal(st.registered, 0);
    assert_null(listed_peer(&t, &s));

    sl_announcer_free(a);
    treg_stop(&t);
}

/* Rate limited (1/s, burst 1, the bucket emptied first): the 429's Retry-After (1 s) is honoured
 * over the 10 ms min backoff, so the announce succeeds after one or two refusals, not seven. */
static void test_rate_limited_retry_after(void **state)
{
    treg t;
    treg_opts to = {.rate = 1, .burst = 1};
    seller s;
    sl_announcer *a;
    sl_announcer_stats st;
    long status;
    (void)state;

    treg_start(&t, 0, &to);
    seller_init(&s, ENDPOINT_A);
    json_decref(get_json(t.base, "/v1/services", &status));
    assert_int_equal(status, 200);
    const char *urls[] = {t.base};
    a = announcer_new(&s, urls, 1, 10, 2000, 5000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, announces_ok, 1, 4000, &st));
    assert_true(st.announces_failed >= 1 && st.announces_failed <= 2);

    sl_announcer_free(a);
    treg_stop(&t);
}

/* The stop is prompt while backing off (30 s) and while a request hangs (20 s timeout). */
static void test_stop_prompt(void **state)
{
    seller s;
    sl_announcer *a;
    sl_announcer_stats st;
    char base[64];
    int64_t t0, took;
    uint16_t port;
    int fd;
    (void)state;

    seller_init(&s, ENDPOINT_A);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)tu_free_port());
    const char *urls[] = {base};
    a = announcer_new(&s, urls, 1, 30000, 30000, 20000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, announces_failed, 1, 3000, &st));
    t0 = rc_now_ms();
    sl_announcer_stop(a);
    took = rc_now_ms() - t0;
    assert_true(took < 2000);
    sl_announcer_stop(a);                                    /* idempotent */
    assert_int_equal(sl_announcer_start(a), OS_ERR_INVALID); /* no restart after a stop */
    sl_announcer_free(a);

    fd = silent_listener(&port);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)port);
    a = announcer_new(&s, urls, 1, 30000, 30000, 20000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    rc_sleep_ms(400);
    sl_announcer_get_stats(a, &st);
    assert_int_equal(st.announces_ok + st.announces_failed, 0); /* still waiting for an answer */
    t0 = rc_now_ms();
    sl_announcer_stop(a);
    took = rc_now_ms() - t0;
    assert_true(took < 2000);
    sl_announcer_get_stats(a, &st);
    assert_int_equal(st.announces_failed, 0); /* a stop is not a failure */
    sl_announcer_free(a);
    close(fd);
}

/* set_record with a new endpoint reaches the registry as a newly signed record. */
static void test_set_record_endpoint(void **state)
{
    treg t;
    seller s, other;
    sl_announcer *a;
    sl_announcer_stats st;
    os_record r;
    json_t *p;
    long status;
    uint64_t t1;
    (void)state;

    treg_start(&t, 0, NULL);
    seller_init(&s, ENDPOINT_A);
    const char *urls[] = {t.base};
    a = announcer_new(&s, urls, 1, 100, 1000, 5000);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    assert_true(WAIT_STAT(a, announces_ok, 1, 5000, &st));

    /* Refused: another node's record, another chain, a bad endpoint. Nothing changes. */
    seller_init(&other, ENDPOINT_B);
    assert_int_equal(sl_announcer_set_record(a, &other.rec), OS_ERR_INVALID);
    r = s.rec;
    r.chain_id = CHAIN + 1;
    assert_int_equal(sl_announcer_set_record(a, &r), OS_ERR_INVALID);
    r = s.rec;
    snprintf(r.endpoint, sizeof(r.endpoint), "ftp://seller.example");
    assert_int_equal(sl_announcer_set_record(a, &r), OS_ERR_INVALID);
    assert_int_equal(sl_announcer_set_record(a, NULL), OS_ERR_INVALID);

    t1 = (uint64_t)rc_now_ms();
    r = s.rec;
    snprintf(r.endpoint, sizeof(r.endpoint), "%s", ENDPOINT_B);
    assert_int_equal(sl_announcer_set_record(a, &r), OS_OK);
    assert_true(WAIT_STAT(a, announces_ok, 2, 3000, &st));
    assert_int_equal(st.reannounces, 0);
    p = peer_by_id(&t, &s, &status);
    assert_int_equal(status, 200);
    check_served_record(p, &s, ENDPOINT_B, t1);
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")), ENDPOINT_B);
    json_decref(p);

    /* Heartbeats carry the new endpoint too. */
    assert_true(WAIT_STAT(a, heartbeats_ok, st.heartbeats_ok + 1, 4000, &st));
    p = peer_by_id(&t, &s, &status);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p, "heartbeat"), "endpoint")),
        ENDPOINT_B);
    json_decref(p);

    sl_announcer_free(a);
    treg_stop(&t);
}

/* Bad configurations are refused; the lifecycle calls are NULL-safe. */
static void test_new_refusals(void **state)
{
    seller s, other;
    sl_announcer_config c;
    sl_announcer *a = (sl_announcer *)&c; /* must be reset to NULL on failure */
    sl_announcer_stats st;
    const char *good[] = {"http://127.0.0.1:9"};
    (void)state;

    seller_init(&s, ENDPOINT_A);
    seller_init(&other, ENDPOINT_A);
#define BASE()                                                                                     \
    do {                                                                                           \
        memset(&c, 0, sizeof(c));                                                                  \
        c.registries = good;                                                                       \
        c.n_registries = 1;                                                                        \
        c.record = &s.rec;                                                                         \
        c.node_priv = s.priv;                                                                      \
        c.chain_id = CHAIN;                                                                        \
    } while (0)
#define REFUSED(stmt)                                                                              \
    do {                                                                                           \
        BASE();                                                                                    \
        stmt;                                                                                      \
        a = (sl_announcer *)&c;                                                                    \
        assert_int_not_equal(sl_announcer_new(&a, &c), OS_OK);                                     \
        assert_null(a);                                                                            \
    } while (0)

    BASE();
    assert_int_equal(sl_announcer_new(NULL, &c), OS_ERR_INVALID);
    assert_int_equal(sl_announcer_new(&a, NULL), OS_ERR_INVALID);
    assert_null(a);
    REFUSED(c.node_priv = other.priv); /* not the record's node key */
    REFUSED(c.chain_id = CHAIN + 1);   /* heartbeats would be signed for another chain */
    REFUSED(c.chain_id = 0);
    REFUSED(c.record = NULL);
    REFUSED(c.node_priv = NULL);
    REFUSED(c.registries = NULL);
    REFUSED(c.min_backoff_ms = 5000; c.max_backoff_ms = 1000);
    REFUSED(c.request_timeout_ms = -1);
    static const char *const bad_urls[] = {"ftp://127.0.0.1:9", "http://",    "http:///",
                                           "127.0.0.1:9",       "http://a b", "http://a/?x=1",
                                           "http://a\n"};
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++)
        REFUSED(c.registries = &bad_urls[i]);
    static uint8_t zero[32];
    REFUSED(c.node_priv = zero); /* not a valid key */
    os_record r = s.rec;
    snprintf(r.endpoint, sizeof(r.endpoint), "not a url");
    REFUSED(c.record = &r);
#undef REFUSED

    /* No registries at all is allowed: the thread just waits for the stop. */
    BASE();
    c.n_registries = 0;
    c.registries = NULL;
    assert_int_equal(sl_announcer_new(&a, &c), OS_OK);
    assert_int_equal(sl_announcer_start(a), OS_OK);
    sl_announcer_get_stats(a, &st);
    assert_int_equal(st.registries, 0);
    sl_announcer_free(a);
#undef BASE

    /* Stop before start, free of NULL, stats of NULL. */
    a = announcer_new(&s, good, 1, 0, 0, 0);
    sl_announcer_stop(a);
    sl_announcer_free(a);
    sl_announcer_stop(NULL);
    sl_announcer_free(NULL);
    memset(&st, 0xff, sizeof(st));
    sl_announcer_get_stats(NULL, &st);
    assert_int_equal(st.registries, 0);
    assert_int_equal(st.announces_ok, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_refusals),
        cmocka_unit_test(test_announce_listed),
        cmocka_unit_test(test_heartbeats_keep_listed_with_load),
        cmocka_unit_test(test_two_registries),
        cmocka_unit_test(test_registry_forgets_reannounce),
        cmocka_unit_test(test_registry_down_at_start),
        cmocka_unit_test(test_stale_seq_catches_up),
        cmocka_unit_test(test_config_refusal_max_backoff),
        cmocka_unit_test(test_rate_limited_retry_after),
        cmocka_unit_test(test_stop_prompt),
        cmocka_unit_test(test_set_record_endpoint),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
