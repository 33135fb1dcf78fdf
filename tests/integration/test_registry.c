/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry end to end over loopback HTTP, with a real SQLite file in a temp directory:
 *   - lifecycle: announce -> listed -> heartbeat with a new endpoint -> listed with it (the
 *     record and the heartbeat checked as a buyer would) -> silence -> delisted after the window
 *     (not before) -> heartbeat -> listed again at once;
 *   - refusals: forged and foreign signatures, replayed and stale messages, oversized, deep and
 *     malformed JSON, unknown fields, wrong types, bad queries: each a 4xx in the OpenAI error
 *     shape, with the database and the served record unchanged;
 *   - restart: records, heartbeats and seqs survive a stop (SIGTERM) and start on the same file;
 *   - ranking: order and scores against the documented formula, price caps, reputation from
 *     heartbeat regularity, min_reputation, and pagination that returns every peer exactly once
 *     (also while sellers announce and heartbeat during the walk);
 *   - rate limits (X-RateLimit-* and 429), two registries in one process, and feedback checked
 *     against a real escrow on anvil (vouchers, replays, foreign channels, effect on ranking).
 *
 * The registry runs as the real binary (posix_spawn, SIGTERM at the end) when it serves, which
 * it shows by listing --liveness-intervals in --help; until main.c is wired to the core, and
 * when OPENSEED_REGISTRY_TEST_INPROC=1, the core runs in this process instead: its sources are
 * linked into this test from registry_core, the library the daemon itself runs.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "registry_client.h"

#include <math.h>
#include <sqlite3.h>

#include "devchain.h"
#include "openseed/init.h"

#include "openseed/json.h"
#include "rank.h"
#include "registry.h"

#define CHAIN 31337

static bool use_binary;
static char bin_path[1024];

/* ------------------------------------------------------------------ a registry under test */

typedef struct reg_cfg {
    uint64_t interval_ms;
    unsigned liveness;
    uint64_t rescore_ms;
    uint32_t rate, burst; /* 0: off */
    uint64_t chain_id;
    const char *rpc;
    const uint8_t *escrow;
} reg_cfg;

typedef struct reg {
    reg_cfg cfg;
    char dir[128];
    char base[64];
    char db[256];
    rg_registry *rg;
    rc_proc proc;
    os_logger log;
    FILE *logf;
} reg;

static void reg_start(reg *r)
{
    char log_path[256];
    snprintf(log_path, sizeof(log_path), "%s/registry.log", r->dir);
    if (use_binary) {
        char listen[] = "127.0.0.1:0", iv[32], lv[16], rs[32], rate[16], burst[16], chain[32];
        char escrow[OS_ADDRESS_STR_LEN], why[512];
        const char *args[40];
        int n = 0;
        snprintf(iv, sizeof(iv), "%llus", (unsigned long long)((r->cfg.interval_ms + 999) / 1000));
        snprintf(lv, sizeof(lv), "%u", r->cfg.liveness);
        snprintf(rs, sizeof(rs), "%llus", (unsigned long long)((r->cfg.rescore_ms + 999) / 1000));
        snprintf(rate, sizeof(rate), "%u", r->cfg.rate);
        snprintf(burst, sizeof(burst), "%u", r->cfg.burst);
        snprintf(chain, sizeof(chain), "%llu", (unsigned long long)r->cfg.chain_id);
        args[n++] = "--listen";
        args[n++] = listen;
        args[n++] = "--data-dir";
        args[n++] = r->dir;
        args[n++] = "--chain-id";
        args[n++] = chain;
        args[n++] = "--heartbeat-interval";
        args[n++] = iv;
        args[n++] = "--liveness-intervals";
        args[n++] = lv;
        args[n++] = "--rescore-interval";
        args[n++] = rs;
        args[n++] = "--rate-limit";
        args[n++] = rate;
        args[n++] = "--rate-burst";
        args[n++] = burst;
        if (r->cfg.rpc != NULL) {
            args[n++] = "--rpc";
            args[n++] = r->cfg.rpc;
        }
        if (r->cfg.escrow != NULL) {
            os_eip55_format(escrow, r->cfg.escrow);
            args[n++] = "--escrow";
            args[n++] = escrow;
        }
        args[n] = NULL;
        if (rc_proc_start(&r->proc, bin_path, args, log_path, why, sizeof(why)) != 0)
            fail_msg("%s", why);
        snprintf(r->base, sizeof(r->base), "http://127.0.0.1:%d", r->proc.port);
        return;
    }
    rg_options o;
    rg_options_default(&o);
    o.listen = "127.0.0.1:0";
    o.db_path = r->db;
    o.chain_id = r->cfg.chain_id;
    o.heartbeat_interval_ms = r->cfg.interval_ms;
    o.liveness_intervals = r->cfg.liveness;
    o.rescore_interval_ms = r->cfg.rescore_ms;
    o.flush_interval_ms = 200;
    o.rate_per_s = r->cfg.rate;
    o.rate_burst = r->cfg.burst;
    o.drain_timeout_ms = 2000;
    o.rpc = r->cfg.rpc;
    if (r->cfg.escrow != NULL) {
        o.has_escrow = true;
        memcpy(o.escrow, r->cfg.escrow, 20);
    }
    r->logf = fopen(log_path, "a");
    assert_non_null(r->logf);
    os_logger_init(&r->log, "registry", OS_LOG_INFO);
    r->log.out = r->logf;
    assert_int_equal(rg_registry_new_opts(&r->rg, &o, &r->log), OS_OK);
    assert_int_equal(rg_registry_start(r->rg), OS_OK);
    snprintf(r->base, sizeof(r->base), "http://127.0.0.1:%u", (unsigned)rg_registry_port(r->rg));
}

/* Stops the registry: SIGTERM for the binary, which must exit 0 after closing the database. */
static void reg_stop(reg *r)
{
    if (use_binary) {
        if (r->proc.pid > 0) {
            int st = rc_proc_stop(&r->proc, SIGTERM, 15000);
            if (st != 0) {
                char cmd[300];
                snprintf(cmd, sizeof(cmd), "tail -n 30 %s/registry.log >&2", r->dir);
                if (system(cmd) != 0)
                    print_error("(no log)\n");
                fail_msg("the registry exited with %d after SIGTERM", st);
            }
        }
    } else if (r->rg != NULL) {
        rg_registry_free(r->rg);
        r->rg = NULL;
        fclose(r->logf);
        r->logf = NULL;
    }
}

/* Every registry a test opened and has not closed, so that a failed test (cmocka jumps out of
 * it) leaves no process or directory behind: the group teardown ends them. */
static reg *open_regs[8];

static void reg_track(reg *r, bool on)
{
    for (size_t i = 0; i < 8; i++) {
        if (on && open_regs[i] == NULL) {
            open_regs[i] = r;
            return;
        }
        if (!on && open_regs[i] == r) {
            open_regs[i] = NULL;
            return;
        }
    }
}

static void reg_open(reg *r, const reg_cfg *c)
{
    memset(r, 0, sizeof(*r));
    reg_track(r, true);
    r->cfg = *c;
    if (r->cfg.chain_id == 0)
        r->cfg.chain_id = CHAIN;
    snprintf(r->dir, sizeof(r->dir), "/tmp/openseed-registry-XXXXXX");
    assert_int_equal(rc_tmpdir(r->dir), 0);
    snprintf(r->db, sizeof(r->db), "%s/registry.db", r->dir);
    reg_start(r);
}

static void reg_close(reg *r)
{
    reg_stop(r);
    rc_rmtree(r->dir);
    reg_track(r, false);
}

/* Sleeps past the next rescore (the binary's interval is whole seconds). */
static void wait_rescore(const reg *r)
{
    uint64_t ms = use_binary ? (r->cfg.rescore_ms + 999) / 1000 * 1000 : r->cfg.rescore_ms;
    rc_sleep_ms((long)ms + 400);
}

/* Sleeps past the next batched flush of heartbeats (1 s in the binary, 200 ms in-process). */
static void wait_flush(void)
{
    rc_sleep_ms(use_binary ? 1400 : 600);
}

static bool log_has(const reg *r, const char *needle)
{
    char path[256], line[4096];
    bool found = false;
    snprintf(path, sizeof(path), "%s/registry.log", r->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ------------------------------------------------------------------ requests */

static long post(const reg *r, const char *path, const char *body, rc_resp *out)
{
    rc_resp tmp;
    rc_resp *res = out != NULL ? out : &tmp;
    assert_int_equal(rc_call(res, r->base, "POST", path, body), 0);
    long st = res->status;
    if (out == NULL)
        rc_resp_free(&tmp);
    return st;
}

static json_t *get_json(const reg *r, const char *path, long want)
{
    rc_resp res;
    json_error_t e;
    assert_int_equal(rc_call(&res, r->base, "GET", path, NULL), 0);
    if (res.status != want)
        fail_msg("GET %s: %ld (want %ld): %s", path, res.status, want, res.body);
    json_t *j = json_loads(res.body, 0, &e);
    if (j == NULL)
        fail_msg("GET %s: not JSON: %s", path, res.body);
    rc_resp_free(&res);
    return j;
}

static long announce(const reg *r, rc_seller *s, const char *endpoint, const rc_offer *offers,
                     size_t n, const uint8_t *escrow)
{
    uint64_t seq = rc_next_seq(s);
    json_t *rec = rc_record(s, endpoint, seq, (uint64_t)(rc_now_ms() / 1000), r->cfg.chain_id,
                            escrow, offers, n);
    assert_non_null(rec);
    char *body = rc_announce_body(rec, s);
    assert_non_null(body);
    rc_resp res;
    long st = post(r, "/v1/announce", body, &res);
    if (st == 200) {
        json_t *j = json_loads(res.body, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "node_id")), s->hex);
        assert_true(json_integer_value(json_object_get(j, "heartbeat_interval")) >= 1);
        assert_true(json_integer_value(json_object_get(j, "expires_at")) > rc_now_ms() / 1000);
        json_decref(j);
    }
    rc_resp_free(&res);
    free(body);
    json_decref(rec);
    return st;
}

static long heartbeat(const reg *r, rc_seller *s, const char *endpoint)
{
    char *body = rc_heartbeat_body(s, s, endpoint, rc_next_seq(s), (uint64_t)(rc_now_ms() / 1000),
                                   r->cfg.chain_id, 2, 8);
    assert_non_null(body);
    long st = post(r, "/v1/heartbeat", body, NULL);
    free(body);
    return st;
}

static json_t *peers_of(const reg *r, const char *query)
{
    char path[1024];
    snprintf(path, sizeof(path), "/v1/peers%s", query);
    json_t *j = get_json(r, path, 200);
    assert_true(json_is_array(json_object_get(j, "peers")));
    assert_non_null(json_object_get(j, "next_cursor"));
    return j;
}

static const char *peer_node(const json_t *peer)
{
    return json_string_value(json_object_get(json_object_get(peer, "record"), "node_id"));
}

static json_t *find_peer(const json_t *list, const char *hex)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(list, "peers"), i, p)
    {
        if (strcmp(peer_node(p), hex) == 0)
            return p;
    }
    return NULL;
}

static bool listed(const reg *r, const char *query, const char *hex)
{
    json_t *j = peers_of(r, query);
    bool found = find_peer(j, hex) != NULL;
    json_decref(j);
    return found;
}

/* A buyer's checks on a served peer: the record's signature by its node, and the heartbeat's. */
static void verify_as_buyer(const json_t *peer, uint64_t chain_id)
{
    uint8_t sig[65];
    os_record *rec = calloc(1, sizeof(*rec));
    assert_non_null(rec);
    assert_int_equal(os_json_get_hex(sig, 65, peer, "signature", NULL, 0), OS_OK);
    assert_int_equal(os_record_verify(rec, json_object_get(peer, "record"), sig, NULL, 0), OS_OK);
    const json_t *hbj = json_object_get(peer, "heartbeat");
    if (hbj != NULL && !json_is_null(hbj)) {
        os_heartbeat hb;
        assert_int_equal(os_heartbeat_parse(&hb, hbj, NULL, 0), OS_OK);
        assert_int_equal(os_heartbeat_verify(&hb, chain_id), OS_OK);
        assert_memory_equal(hb.node, rec->node, 20);
        assert_string_equal(hb.endpoint, json_string_value(json_object_get(peer, "endpoint")));
    } else {
        assert_string_equal(rec->endpoint, json_string_value(json_object_get(peer, "endpoint")));
    }
    free(rec);
}

/* What a bad request must not change: every stored record, signature, seq and heartbeat. */
static char *db_snapshot(const reg *r)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    size_t len = 0;
    char *out = calloc(1, 1);
    assert_int_equal(sqlite3_open_v2(r->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT hex(node), record, hex(signature), seq,"
                                        " coalesce(hb_endpoint, ''), coalesce(hb_seq, 0),"
                                        " coalesce(hex(hb_sig), '') FROM peers ORDER BY node",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < 7; c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            size_t l = strlen(t);
            char *g = realloc(out, len + l + 2);
            assert_non_null(g);
            out = g;
            memcpy(out + len, t, l);
            len += l;
            out[len++] = '|';
            out[len] = '\0';
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* The parts of GET /v1/peers/{id} a client must be able to rely on. */
static char *peer_fixed(const reg *r, const char *hex)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/peers/%s", hex);
    json_t *p = get_json(r, path, 200);
    json_t *keep =
        json_pack("{s:O,s:O,s:O,s:O}", "record", json_object_get(p, "record"), "signature",
                  json_object_get(p, "signature"), "endpoint", json_object_get(p, "endpoint"),
                  "heartbeat", json_object_get(p, "heartbeat"));
    char *s = json_dumps(keep, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(keep);
    json_decref(p);
    return s;
}

/* ------------------------------------------------------------------ lifecycle */

static void test_lifecycle(void **state)
{
    (void)state;
    reg_cfg c = {.interval_ms = 1000, .liveness = 3, .rescore_ms = 250, .rate = 0};
    static reg r; /* static: the group teardown may need it after a failure */
    rc_seller a;
    const rc_offer off = {.service = "life-svc", .input = 100000, .output = 300000};
    const char *q = "?service=life-svc";

    reg_open(&r, &c);
    assert_int_equal(rc_seller_init(&a, 1), 0);

    assert_int_equal(announce(&r, &a, "http://127.0.0.1:9001", &off, 1, NULL), 200);
    json_t *j = peers_of(&r, q);
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 1);
    json_t *p = find_peer(j, a.hex);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")), "http://127.0.0.1:9001");
    assert_true(json_is_null(json_object_get(p, "heartbeat")));
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    verify_as_buyer(p, CHAIN);
    json_decref(j);

    /* A heartbeat from a new tunnel URL replaces the endpoint; the buyer can check it. */
    assert_int_equal(heartbeat(&r, &a, "https://tunnel.example/abc"), 200);
    j = peers_of(&r, q);
    p = find_peer(j, a.hex);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")),
                        "https://tunnel.example/abc");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "load"), "active")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "load"), "capacity")),
                     8);
    /* the record itself is served exactly as signed, with its original endpoint */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p, "record"), "endpoint")),
        "http://127.0.0.1:9001");
    verify_as_buyer(p, CHAIN);
    json_decref(j);

    /* Silence: listed for the whole window (3 s), gone soon after. */
    int64_t last = rc_now_ms();
    int64_t gone_at = 0;
    while (rc_now_ms() - last < 10000) {
        bool in = listed(&r, q, a.hex);
        int64_t t = rc_now_ms();
        if (t - last < 2800)
            assert_true(in);
        if (!in) {
            gone_at = t;
            break;
        }
        rc_sleep_ms(100);
    }
    assert_true(gone_at != 0);
    assert_true(gone_at - last >= 2800 && gone_at - last <= 5000);
    /* History stays: the peer can still be looked up, marked inactive. */
    char path[128];
    snprintf(path, sizeof(path), "/v1/peers/%s", a.hex);
    j = get_json(&r, path, 200);
    assert_true(json_is_false(json_object_get(j, "active")));
    json_decref(j);

    /* One heartbeat and it is back at once, with the newest endpoint. */
    assert_int_equal(heartbeat(&r, &a, "https://tunnel.example/back"), 200);
    j = peers_of(&r, q);
    p = find_peer(j, a.hex);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")),
                        "https://tunnel.example/back");
    json_decref(j);
    j = get_json(&r, path, 200);
    assert_true(json_is_true(json_object_get(j, "active")));
    json_decref(j);

    /* /healthz and /metrics answer. */
    j = get_json(&r, "/healthz", 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    assert_int_equal(json_integer_value(json_object_get(j, "peers")), 1);
    json_decref(j);
    rc_resp m;
    assert_int_equal(rc_call(&m, r.base, "GET", "/metrics", NULL), 0);
    assert_int_equal(m.status, 200);
    assert_non_null(strstr(m.body, "openseed_registry_requests_total{route=\"heartbeat\"} 2"));
    assert_non_null(strstr(m.content_type, "text/plain"));
    rc_resp_free(&m);

    reg_close(&r);
}

/* ------------------------------------------------------------------ refusals */

typedef struct bad_case {
    const char *what;
    const char *method, *path;
    char *body; /* owned */
    long want;
} bad_case;

static char *deep_json(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    assert_non_null(s);
    for (int i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth * 2 - 1 - i] = ']';
    }
    s[depth * 2] = '\0';
    return s;
}

/* The accepted heartbeat body with one field replaced by raw JSON text (or removed if NULL). */
static char *hb_variant(const char *hb, const char *key, const char *raw)
{
    json_t *j = json_loads(hb, 0, NULL);
    assert_non_null(j);
    if (raw == NULL) {
        json_object_del(j, key);
    } else {
        json_t *v = json_loads(raw, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        json_object_set_new(j, key, v);
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* An announce body for a fresh record of s (seq, ts, chain given) signed by signer. */
static char *signed_record(rc_seller *s, const rc_seller *signer, uint64_t ts, uint64_t chain,
                           const rc_offer *off)
{
    json_t *rec = rc_record(s, "http://evil.example", rc_next_seq(s), ts, chain, NULL, off, 1);
    char *body = rec != NULL ? rc_announce_body(rec, signer) : NULL;
    json_decref(rec);
    return body;
}

static void test_refusals(void **state)
{
    (void)state;
    reg_cfg c = {.interval_ms = 30000, .liveness = 3, .rescore_ms = 500, .rate = 0};
    static reg r; /* static: the group teardown may need it after a failure */
    rc_seller a, b, u;
    const rc_offer off = {.service = "bad-svc", .input = 100000, .output = 300000};
    bad_case cs[64];
    size_t n = 0;
    uint64_t now_s = (uint64_t)(rc_now_ms() / 1000);

    reg_open(&r, &c);
    assert_int_equal(rc_seller_init(&a, 10), 0);
    assert_int_equal(rc_seller_init(&b, 11), 0);
    assert_int_equal(rc_seller_init(&u, 12), 0); /* never announced */

    /* The accepted state: one announce and one heartbeat. */
    uint64_t seq0 = rc_next_seq(&a);
    json_t *rec0 = rc_record(&a, "http://127.0.0.1:9100", seq0, now_s, CHAIN, NULL, &off, 1);
    char *ann0 = rc_announce_body(rec0, &a);
    assert_int_equal(post(&r, "/v1/announce", ann0, NULL), 200);
    char *hb0 =
        rc_heartbeat_body(&a, &a, "http://127.0.0.1:9101", rc_next_seq(&a), now_s, CHAIN, 1, 4);
    assert_int_equal(post(&r, "/v1/heartbeat", hb0, NULL), 200);
    wait_flush(); /* the batched flush has written the heartbeat */
    char *snap0 = db_snapshot(&r);
    char *fixed0 = peer_fixed(&r, a.hex);

#define ADD(w, m, p, b, s) (cs[n++] = (bad_case){(w), (m), (p), (b), (s)})
    /* signatures */
    ADD("record signed by another key", "POST", "/v1/announce",
        signed_record(&a, &b, now_s, CHAIN, &off), 401);
    {
        /* the record edited after signing: the registry must not serve an altered record */
        json_t *rec =
            rc_record(&a, "http://127.0.0.1:9100", rc_next_seq(&a), now_s, CHAIN, NULL, &off, 1);
        char *body = rc_announce_body(rec, &a);
        json_t *j = json_loads(body, 0, NULL);
        json_object_set_new(json_object_get(j, "record"), "endpoint",
                            json_string("http://evil.example"));
        free(body);
        ADD("record altered after signing", "POST", "/v1/announce", json_dumps(j, JSON_COMPACT),
            401);
        json_decref(j);
        json_decref(rec);
    }
    {
        char *body = rc_announce_body(rec0, &a);
        json_t *j = json_loads(body, 0, NULL);
        char junk[133] = "0x";
        memset(junk + 2, '1', 130);
        junk[132] = '\0';
        json_object_set_new(j, "signature", json_string(junk));
        free(body);
        ADD("garbage signature", "POST", "/v1/announce", json_dumps(j, JSON_COMPACT), 401);
        json_decref(j);
    }
    ADD("heartbeat for a signed by b", "POST", "/v1/heartbeat",
        rc_heartbeat_body(&a, &b, "http://evil.example", rc_next_seq(&a), now_s, CHAIN, 1, 4), 401);
    ADD("heartbeat signed for another chain", "POST", "/v1/heartbeat",
        rc_heartbeat_body(&a, &a, "http://evil.example", rc_next_seq(&a), now_s, 1, 1, 4), 401);
    /* replays and clocks */
    ADD("replayed heartbeat", "POST", "/v1/heartbeat", strdup(hb0), 409);
    ADD("replayed announce", "POST", "/v1/announce", strdup(ann0), 409);
    ADD("heartbeat with an old seq", "POST", "/v1/heartbeat",
        rc_heartbeat_body(&a, &a, "http://evil.example", seq0, now_s, CHAIN, 1, 4), 409);
    ADD("heartbeat 120 s old", "POST", "/v1/heartbeat",
        rc_heartbeat_body(&a, &a, "http://evil.example", rc_next_seq(&a), now_s - 120, CHAIN, 1, 4),
        400);
    ADD("announce 120 s ahead", "POST", "/v1/announce",
        signed_record(&a, &a, now_s + 120, CHAIN, &off), 400);
    ADD("announce for another chain", "POST", "/v1/announce", signed_record(&a, &a, now_s, 1, &off),
        400);
    ADD("heartbeat from an unknown node", "POST", "/v1/heartbeat",
        rc_heartbeat_body(&u, &u, "http://u.example", rc_next_seq(&u), now_s, CHAIN, 1, 4), 404);
    /* size, depth, syntax */
    {
        size_t big = 70 * 1024;
        char *s = malloc(big + 32);
        memcpy(s, "{\"record\":\"", 11);
        memset(s + 11, 'a', big);
        memcpy(s + 11 + big, "\"}", 3);
        ADD("oversized body", "POST", "/v1/announce", s, 413);
    }
    ADD("deep JSON", "POST", "/v1/announce", deep_json(200), 400);
    {
        char *deep = deep_json(20);
        char *s = malloc(strlen(deep) + 64);
        snprintf(s, strlen(deep) + 64, "{\"record\":{\"x\":%s},\"signature\":\"0x00\"}", deep);
        free(deep);
        ADD("deep JSON inside a record", "POST", "/v1/announce", s, 400);
    }
    ADD("truncated JSON", "POST", "/v1/announce", strdup("{\"record\": {"), 400);
    ADD("not JSON", "POST", "/v1/heartbeat", strdup("hello"), 400);
    ADD("empty body", "POST", "/v1/heartbeat", strdup(""), 400);
    ADD("JSON null", "POST", "/v1/announce", strdup("null"), 400);
    ADD("JSON array", "POST", "/v1/heartbeat", strdup("[1,2]"), 400);
    ADD("duplicate key", "POST", "/v1/heartbeat",
        strdup("{\"node\":\"0x0000000000000000000000000000000000000000\","
               "\"node\":\"0x0000000000000000000000000000000000000001\"}"),
        400);
    /* unknown fields and wrong types */
    {
        char *body = rc_announce_body(rec0, &a);
        json_t *j = json_loads(body, 0, NULL);
        json_object_set_new(j, "extra", json_true());
        ADD("announce with an unknown field", "POST", "/v1/announce", json_dumps(j, JSON_COMPACT),
            400);
        json_decref(j);
        j = json_loads(body, 0, NULL);
        json_object_set_new(json_object_get(j, "record"), "extra", json_integer(1));
        ADD("record with an unknown field", "POST", "/v1/announce", json_dumps(j, JSON_COMPACT),
            400);
        json_decref(j);
        j = json_loads(body, 0, NULL);
        json_object_set_new(j, "record", json_string("not an object"));
        ADD("record as a string", "POST", "/v1/announce", json_dumps(j, JSON_COMPACT), 400);
        json_decref(j);
        j = json_loads(body, 0, NULL);
        json_object_set_new(j, "signature", json_integer(5));
        ADD("signature as a number", "POST", "/v1/announce", json_dumps(j, JSON_COMPACT), 400);
        json_decref(j);
        j = json_loads(body, 0, NULL);
        json_object_set_new(j, "signature", json_string("0x1234"));
        ADD("short signature", "POST", "/v1/announce", json_dumps(j, JSON_COMPACT), 400);
        json_decref(j);
        j = json_loads(body, 0, NULL);
        json_object_del(j, "signature");
        ADD("missing signature", "POST", "/v1/announce", json_dumps(j, JSON_COMPACT), 400);
        json_decref(j);
        free(body);
    }
    {
        char *fresh =
            rc_heartbeat_body(&a, &a, "http://evil.example", rc_next_seq(&a), now_s, CHAIN, 1, 4);
        ADD("heartbeat with an unknown field", "POST", "/v1/heartbeat",
            hb_variant(fresh, "extra", "1"), 400);
        ADD("heartbeat seq as a string", "POST", "/v1/heartbeat",
            hb_variant(fresh, "seq", "\"123\""), 400);
        ADD("heartbeat seq negative", "POST", "/v1/heartbeat", hb_variant(fresh, "seq", "-1"), 400);
        ADD("heartbeat seq a float", "POST", "/v1/heartbeat", hb_variant(fresh, "seq", "1.5"), 400);
        ADD("heartbeat load as a string", "POST", "/v1/heartbeat",
            hb_variant(fresh, "load", "\"busy\""), 400);
        ADD("heartbeat load with a string capacity", "POST", "/v1/heartbeat",
            hb_variant(fresh, "load", "{\"active\":1,\"capacity\":\"4\"}"), 400);
        ADD("heartbeat without endpoint", "POST", "/v1/heartbeat",
            hb_variant(fresh, "endpoint", NULL), 400);
        ADD("heartbeat endpoint not a URL", "POST", "/v1/heartbeat",
            hb_variant(fresh, "endpoint", "\"ftp://x\""), 400);
        ADD("heartbeat node not an address", "POST", "/v1/heartbeat",
            hb_variant(fresh, "node", "\"0x12\""), 400);
        free(fresh);
    }
    /* queries */
    ADD("limit 0", "GET", "/v1/peers?limit=0", NULL, 400);
    ADD("limit 101", "GET", "/v1/peers?limit=101", NULL, 400);
    ADD("limit not a number", "GET", "/v1/peers?limit=ten", NULL, 400);
    ADD("min_reputation nan", "GET", "/v1/peers?min_reputation=nan", NULL, 400);
    ADD("min_reputation 2", "GET", "/v1/peers?min_reputation=2", NULL, 400);
    ADD("min_reputation exponent", "GET", "/v1/peers?min_reputation=1e-1", NULL, 400);
    ADD("max_input negative", "GET", "/v1/peers?max_input=-1", NULL, 400);
    ADD("max_output a float", "GET", "/v1/peers?max_output=1.5", NULL, 400);
    ADD("cursor garbage", "GET", "/v1/peers?cursor=zz", NULL, 400);
    ADD("service with a space", "GET", "/v1/peers?service=a%20b", NULL, 400);
    ADD("unknown capability", "GET", "/v1/peers?capability=robot", NULL, 400);
    ADD("peer id not hex", "GET", "/v1/peers/0xnothex", NULL, 400);
    ADD("peer id bad checksum", "GET", "/v1/peers/0x2c7536E3605D9C16a7a3D7b1898e529396a65C23", NULL,
        400);
    ADD("unknown peer", "GET", "/v1/peers/0x0000000000000000000000000000000000000001", NULL, 404);
    ADD("unknown path", "GET", "/v1/nothing", NULL, 404);
    ADD("wrong method", "GET", "/v1/announce", NULL, 405);
#undef ADD

    for (size_t i = 0; i < n; i++) {
        rc_resp res;
        if (cs[i].body == NULL && strcmp(cs[i].method, "POST") == 0)
            fail_msg("case %s: could not build its body", cs[i].what);
        char url[2048];
        snprintf(url, sizeof(url), "%s%s", r.base, cs[i].path);
        assert_int_equal(rc_http(&res, cs[i].method, url, cs[i].body,
                                 cs[i].body != NULL ? strlen(cs[i].body) : 0),
                         0);
        if (res.status != cs[i].want || !rc_is_openai_error(res.body))
            fail_msg("case \"%s\": status %ld (want %ld), body %s", cs[i].what, res.status,
                     cs[i].want, res.body);
        rc_resp_free(&res);
        free(cs[i].body);
    }

    /* Feedback without a chain to check vouchers on: 503 with a clear error. */
    rc_resp res;
    assert_int_equal(rc_call(&res, r.base, "POST", "/v1/feedback", "{}"), 0);
    assert_int_equal(res.status, 503);
    assert_true(rc_is_openai_error(res.body));
    assert_non_null(strstr(res.body, "feedback_unavailable"));
    rc_resp_free(&res);

    /* Nothing changed, in the database or in what is served. */
    wait_flush();
    char *snap1 = db_snapshot(&r);
    char *fixed1 = peer_fixed(&r, a.hex);
    assert_string_equal(snap0, snap1);
    assert_string_equal(fixed0, fixed1);
    assert_false(listed(&r, "", u.hex));
    assert_false(listed(&r, "?service=bad-svc", b.hex));

    free(snap0);
    free(snap1);
    free(fixed0);
    free(fixed1);
    free(ann0);
    free(hb0);
    json_decref(rec0);
    reg_close(&r);
}

/* ------------------------------------------------------------------ restart */

static void test_restart(void **state)
{
    (void)state;
    reg_cfg c = {.interval_ms = 5000, .liveness = 3, .rescore_ms = 500, .rate = 0};
    static reg r; /* static: the group teardown may need it after a failure */
    rc_seller s[3];
    char *fixed[3];
    const rc_offer off = {.service = "restart-svc", .input = 100000, .output = 300000};
    char ep[64];

    reg_open(&r, &c);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rc_seller_init(&s[i], 20 + (uint32_t)i), 0);
        snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 9200 + i);
        assert_int_equal(announce(&r, &s[i], ep, &off, 1, NULL), 200);
    }
    /* A heartbeat that moves seller 0, then a reply of it kept for after the restart. */
    char *hb = rc_heartbeat_body(&s[0], &s[0], "https://moved.example", rc_next_seq(&s[0]),
                                 (uint64_t)(rc_now_ms() / 1000), CHAIN, 3, 9);
    assert_int_equal(post(&r, "/v1/heartbeat", hb, NULL), 200);
    for (int i = 0; i < 3; i++)
        fixed[i] = peer_fixed(&r, s[i].hex);

    reg_stop(&r);
    assert_true(log_has(&r, "database closed"));
    reg_start(&r);

    for (int i = 0; i < 3; i++) {
        char *now = peer_fixed(&r, s[i].hex);
        assert_string_equal(fixed[i], now);
        free(now);
        free(fixed[i]);
        assert_true(listed(&r, "?service=restart-svc", s[i].hex));
    }
    json_t *j = peers_of(&r, "?service=restart-svc");
    json_t *p = find_peer(j, s[0].hex);
    assert_string_equal(json_string_value(json_object_get(p, "endpoint")), "https://moved.example");
    verify_as_buyer(p, CHAIN);
    json_decref(j);
    /* The seq survived: the old heartbeat is still a replay. */
    assert_int_equal(post(&r, "/v1/heartbeat", hb, NULL), 409);
    assert_int_equal(heartbeat(&r, &s[1], "https://s1.example"), 200);
    free(hb);
    reg_close(&r);
}

/* ------------------------------------------------------------------ ranking */

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_ranking_and_caps(void **state)
{
    (void)state;
    reg_cfg c = {.interval_ms = 1000, .liveness = 10, .rescore_ms = 300, .rate = 0};
    static reg r; /* static: the group teardown may need it after a failure */
    rc_seller s[5];
    /* Deliberately not in price order. Blended = (3 * in + out) / 4. */
    const uint64_t in[5] = {300000, 100000, 500000, 200000, 400000};
    const uint64_t out[5] = {900000, 300000, 1500000, 600000, 1200000};
    char ep[64];

    reg_open(&r, &c);
    for (int i = 0; i < 5; i++) {
        rc_offer off = {.service = "rank-svc", .input = in[i], .output = out[i]};
        rc_offer other = {.capability = "agent", .service = "other-svc", .input = 1, .output = 1};
        rc_offer both[2] = {off, other};
        assert_int_equal(rc_seller_init(&s[i], 30 + (uint32_t)i), 0);
        snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 9300 + i);
        assert_int_equal(announce(&r, &s[i], ep, both, i == 0 ? 2 : 1, NULL), 200);
    }
    wait_rescore(&r);

    json_t *j = peers_of(&r, "?service=rank-svc&limit=100");
    json_t *peers = json_object_get(j, "peers");
    assert_int_equal(json_array_size(peers), 5);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 5; i++) {
        uint64_t b = rg_rank_blend(in[i], out[i]);
        lo = b < lo ? b : lo;
        hi = b > hi ? b : hi;
    }
    /* cheapest first: sellers 1, 3, 0, 4, 2 */
    const int order[5] = {1, 3, 0, 4, 2};
    double prev = 2.0;
    for (size_t k = 0; k < 5; k++) {
        json_t *p = json_array_get(peers, k);
        int i = order[k];
        assert_string_equal(peer_node(p), s[i].hex);
        double rep = num(p, "reputation"), score = num(p, "score");
        double ps = rg_rank_price_score(rg_rank_blend(in[i], out[i]), lo, hi);
        assert_true(rep > 0.4 && rep <= 0.5 + 1e-6); /* newcomers near the neutral prior */
        assert_true(fabs(score - (0.6 * rep + 0.4 * ps)) < 2e-6);
        assert_true(score <= prev);
        prev = score;
        verify_as_buyer(p, CHAIN);
    }
    json_decref(j);

    /* Price caps: every returned peer fits, every fitting peer is returned. */
    const struct {
        const char *q;
        uint64_t max_in, max_out;
    } caps[] = {{"&max_input=250000", 250000, UINT64_MAX},
                {"&max_output=900000", UINT64_MAX, 900000},
                {"&max_input=400000&max_output=600000", 400000, 600000},
                {"&max_input=1", 1, UINT64_MAX},
                {"&max_input=0&max_output=0", 0, 0}};
    for (size_t t = 0; t < sizeof(caps) / sizeof(caps[0]); t++) {
        char q[256];
        snprintf(q, sizeof(q), "?service=rank-svc%s", caps[t].q);
        j = peers_of(&r, q);
        size_t want = 0;
        for (int i = 0; i < 5; i++) {
            bool fits = in[i] <= caps[t].max_in && out[i] <= caps[t].max_out;
            want += fits;
            assert_true((find_peer(j, s[i].hex) != NULL) == fits);
        }
        assert_int_equal(json_array_size(json_object_get(j, "peers")), want);
        json_decref(j);
    }
    /* Capability and service filters. */
    j = peers_of(&r, "?capability=agent");
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 1);
    assert_non_null(find_peer(j, s[0].hex));
    json_decref(j);
    j = peers_of(&r, "?service=rank-svc&capability=agent");
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_decref(j);
    j = peers_of(&r, "?service=no-such-svc");
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_decref(j);
    j = peers_of(&r, "");
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 5);
    json_decref(j);
    /* Services: peer counts and lowest prices. */
    j = get_json(&r, "/v1/services", 200);
    json_t *sv = json_object_get(j, "services");
    assert_int_equal(json_array_size(sv), 2);
    json_t *s0 = json_array_get(sv, 0), *s1 = json_array_get(sv, 1);
    assert_string_equal(json_string_value(json_object_get(s0, "service")), "other-svc");
    assert_int_equal(json_integer_value(json_object_get(s0, "peers")), 1);
    assert_string_equal(json_string_value(json_object_get(s1, "service")), "rank-svc");
    assert_int_equal(json_integer_value(json_object_get(s1, "peers")), 5);
    assert_string_equal(json_string_value(json_object_get(s1, "lowest_input")), "100000");
    assert_string_equal(json_string_value(json_object_get(s1, "lowest_output")), "300000");
    json_decref(j);
    reg_close(&r);
}

static void test_reputation_order(void **state)
{
    (void)state;
    /* Three sellers at one price: steady (heartbeat every interval), patchy (every other),
     * silent (announce only; the 10-interval window keeps it listed). */
    reg_cfg c = {.interval_ms = 1000, .liveness = 10, .rescore_ms = 300, .rate = 0};
    static reg r; /* static: the group teardown may need it after a failure */
    rc_seller steady, patchy, silent;
    const rc_offer off = {.service = "rep-svc", .input = 100000, .output = 300000};

    reg_open(&r, &c);
    assert_int_equal(rc_seller_init(&steady, 40), 0);
    assert_int_equal(rc_seller_init(&patchy, 41), 0);
    assert_int_equal(rc_seller_init(&silent, 42), 0);
    assert_int_equal(announce(&r, &steady, "http://127.0.0.1:9401", &off, 1, NULL), 200);
    assert_int_equal(announce(&r, &patchy, "http://127.0.0.1:9402", &off, 1, NULL), 200);
    assert_int_equal(announce(&r, &silent, "http://127.0.0.1:9403", &off, 1, NULL), 200);
    for (int t = 1; t <= 8; t++) {
        rc_sleep_ms(1000);
        assert_int_equal(heartbeat(&r, &steady, "http://127.0.0.1:9401"), 200);
        if (t % 2 == 0)
            assert_int_equal(heartbeat(&r, &patchy, "http://127.0.0.1:9402"), 200);
    }
    wait_rescore(&r); /* a rescore after the last heartbeat */

    json_t *j = peers_of(&r, "?service=rep-svc");
    json_t *peers = json_object_get(j, "peers");
    assert_int_equal(json_array_size(peers), 3);
    assert_string_equal(peer_node(json_array_get(peers, 0)), steady.hex);
    assert_string_equal(peer_node(json_array_get(peers, 1)), patchy.hex);
    assert_string_equal(peer_node(json_array_get(peers, 2)), silent.hex);
    double r0 = num(json_array_get(peers, 0), "reputation");
    double r1 = num(json_array_get(peers, 1), "reputation");
    double r2 = num(json_array_get(peers, 2), "reputation");
    /* Uptime after ~9 intervals: steady (8 + 5) / (9 + 10) = 0.68, patchy (4 + 5) / 19 = 0.47,
     * silent 5 / 19 = 0.26; reputation moves by 0.35 of that. */
    assert_true(r0 > r1 + 0.03 && r1 > r2 + 0.03);
    assert_true(r0 > 0.5 && r2 < 0.5);
    for (size_t k = 0; k < 3; k++) { /* one price: every price score is 1 */
        json_t *p = json_array_get(peers, k);
        assert_true(fabs(num(p, "score") - (0.6 * num(p, "reputation") + 0.4)) < 2e-6);
    }
    json_decref(j);

    /* min_reputation between patchy and silent drops silent only. */
    char q[128];
    snprintf(q, sizeof(q), "?service=rep-svc&min_reputation=%.4f", (r1 + r2) / 2);
    j = peers_of(&r, q);
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 2);
    assert_null(find_peer(j, silent.hex));
    json_decref(j);
    reg_close(&r);
}

/* ------------------------------------------------------------------ pagination */

typedef struct seen_set {
    char hex[64][OS_ADDRESS_STR_LEN];
    int count[64];
    size_t n;
} seen_set;

static void seen_add(seen_set *ss, const char *hex)
{
    for (size_t i = 0; i < ss->n; i++)
        if (strcmp(ss->hex[i], hex) == 0) {
            ss->count[i]++;
            return;
        }
    assert_true(ss->n < 64);
    snprintf(ss->hex[ss->n], OS_ADDRESS_STR_LEN, "%s", hex);
    ss->count[ss->n++] = 1;
}

static int seen_count(const seen_set *ss, const char *hex)
{
    for (size_t i = 0; i < ss->n; i++)
        if (strcmp(ss->hex[i], hex) == 0)
            return ss->count[i];
    return 0;
}

/* Walks every page of query with limit; calls between(page) after each page. */
static void walk(const reg *r, const char *query, int limit, seen_set *ss,
                 void (*between)(const reg *, int), size_t *pages)
{
    char cursor[256] = "";
    double last_score = 2.0;
    *pages = 0;
    for (int page = 0; page < 100; page++) {
        char q[512];
        snprintf(q, sizeof(q), "%s&limit=%d%s%s", query, limit, cursor[0] ? "&cursor=" : "",
                 cursor);
        json_t *j = peers_of(r, q);
        json_t *peers = json_object_get(j, "peers");
        size_t i;
        json_t *p;
        assert_true(json_array_size(peers) <= (size_t)limit);
        json_array_foreach(peers, i, p)
        {
            seen_add(ss, peer_node(p));
            if (between == NULL) /* a quiet walk is one ordered listing */
                assert_true(num(p, "score") <= last_score + 1e-9);
            last_score = num(p, "score");
        }
        (*pages)++;
        json_t *nc = json_object_get(j, "next_cursor");
        if (json_is_null(nc)) {
            json_decref(j);
            return;
        }
        assert_int_equal(json_array_size(peers), (size_t)limit);
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(nc));
        json_decref(j);
        if (between != NULL)
            between(r, page);
    }
    fail_msg("pagination did not end");
}

static rc_seller churn_sellers[8];

static void churn(const reg *r, int page)
{
    /* Between pages: a new seller announces and existing ones heartbeat (rescoring them). */
    const rc_offer off = {.service = "page-svc", .input = 150000, .output = 450000};
    if (page < 8) {
        assert_int_equal(rc_seller_init(&churn_sellers[page], 200 + (uint32_t)page), 0);
        assert_int_equal(announce(r, &churn_sellers[page], "http://127.0.0.1:9599", &off, 1, NULL),
                         200);
    }
}

static void test_pagination(void **state)
{
    (void)state;
    /* A long rescore interval: the walk below is well within one. */
    reg_cfg c = {.interval_ms = 5000, .liveness = 3, .rescore_ms = 30000, .rate = 0};
    static reg r; /* static: the group teardown may need it after a failure */
    rc_seller s[25];
    seen_set ss;
    size_t pages;

    reg_open(&r, &c);
    for (int i = 0; i < 25; i++) {
        /* Prices repeat, so scores tie and the node id must break the ties. */
        rc_offer off = {.service = "page-svc",
                        .input = 100000 + (uint64_t)(i % 4) * 10000,
                        .output = 300000 + (uint64_t)(i % 4) * 30000};
        assert_int_equal(rc_seller_init(&s[i], 100 + (uint32_t)i), 0);
        assert_int_equal(announce(&r, &s[i], "http://127.0.0.1:9500", &off, 1, NULL), 200);
    }
    for (int limit = 1; limit <= 26; limit += 6) {
        memset(&ss, 0, sizeof(ss));
        walk(&r, "?service=page-svc", limit, &ss, NULL, &pages);
        assert_int_equal(ss.n, 25);
        for (int i = 0; i < 25; i++)
            assert_int_equal(seen_count(&ss, s[i].hex), 1);
        /* next_cursor is null exactly on the last page: no empty page at the end */
        assert_int_equal(pages, (25 + (size_t)limit - 1) / (size_t)limit);
    }
    /* While sellers announce between pages: the original ones exactly once, nobody twice. */
    memset(&ss, 0, sizeof(ss));
    walk(&r, "?service=page-svc", 4, &ss, churn, &pages);
    for (int i = 0; i < 25; i++)
        assert_int_equal(seen_count(&ss, s[i].hex), 1);
    for (size_t i = 0; i < ss.n; i++)
        assert_int_equal(ss.count[i], 1);
    reg_close(&r);
}

/* ------------------------------------------------------------------ abuse */

static void test_rate_limit(void **state)
{
    (void)state;
    reg_cfg c = {.interval_ms = 5000, .liveness = 3, .rescore_ms = 1000, .rate = 5, .burst = 5};
    static reg r; /* static: the group teardown may need it after a failure */
    int ok = 0, limited = 0;

    reg_open(&r, &c);
    for (int i = 0; i < 12; i++) {
        rc_resp res;
        assert_int_equal(rc_call(&res, r.base, "GET", "/v1/peers", NULL), 0);
        if (res.status == 200) {
            ok++;
            assert_string_equal(res.rl_limit, "5");
            assert_true(res.rl_remaining[0] != '\0' && res.rl_reset[0] != '\0');
        } else {
            assert_int_equal(res.status, 429);
            assert_true(rc_is_openai_error(res.body));
            assert_string_equal(res.rl_remaining, "0");
            limited++;
        }
        rc_resp_free(&res);
    }
    assert_true(ok >= 5 && ok <= 7);
    assert_true(limited >= 5);
    /* /healthz is exempt. */
    json_t *j = get_json(&r, "/healthz", 200);
    json_decref(j);
    reg_close(&r);
}

/* Two registries in one process, each with its own store: the core keeps no global state. */
static void test_two_in_process(void **state)
{
    (void)state;
    bool saved = use_binary;
    reg_cfg c = {.interval_ms = 5000, .liveness = 3, .rescore_ms = 1000, .rate = 0};
    static reg r1, r2;
    rc_seller a;
    const rc_offer off = {.service = "twin-svc", .input = 1, .output = 1};

    use_binary = false;
    reg_open(&r1, &c);
    reg_open(&r2, &c);
    assert_int_equal(rc_seller_init(&a, 50), 0);
    assert_int_equal(announce(&r1, &a, "http://127.0.0.1:9600", &off, 1, NULL), 200);
    assert_true(listed(&r1, "?service=twin-svc", a.hex));
    assert_false(listed(&r2, "?service=twin-svc", a.hex));
    assert_int_equal(heartbeat(&r2, &a, "http://127.0.0.1:9600"), 404);
    reg_close(&r1);
    reg_close(&r2);
    use_binary = saved;
}

/* ------------------------------------------------------------------ feedback on chain */

static char *feedback_body(const rc_seller *node, const uint8_t channel[32], const uint8_t key[32],
                           const char *outcome, uint64_t cum, uint64_t nonce, uint64_t chain_id,
                           const uint8_t escrow[20])
{
    os_feedback fb;
    memset(&fb, 0, sizeof(fb));
    memcpy(fb.node, node->addr, 20);
    snprintf(fb.outcome, sizeof(fb.outcome), "%s", outcome);
    fb.latency_ms = 900;
    fb.ttft_ms = 100;
    memcpy(fb.channel_id, channel, 32);
    fb.cumulative_amount = cum;
    fb.nonce = nonce;
    memset(fb.metadata_hash, 0x5a, 32);
    if (os_feedback_sign(&fb, key, chain_id, escrow) != OS_OK)
        return NULL;
    json_t *j = os_feedback_to_json(&fb);
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

static void open_channel(devchain *d, os_chain_signer *payer, const uint8_t payer_addr[20],
                         const rc_seller *seller, const uint8_t signer_key[32], uint8_t id[32])
{
    os_escrow_open_args o;
    os_chain_error err;
    memset(&o, 0, sizeof(o));
    memcpy(o.seller, seller->addr, 20);
    assert_int_equal(os_secp_address(o.signer, signer_key), OS_OK);
    memset(o.commitment, 0x33, 32);
    o.amount = 1000000;
    randombytes_buf(o.salt, 32);
    if (os_erc20_approve(payer, NULL, &err, d->usdc, d->escrow, o.amount) != OS_OK ||
        os_escrow_open(payer, NULL, &err, d->escrow, &o) != OS_OK)
        fail_msg("open channel: %s", err.message);
    os_escrow_channel_id(id, d->chain_id, d->escrow, payer_addr, seller->addr, o.salt);
}

static void test_feedback_on_chain(void **state)
{
    (void)state;
    devchain d;
    char why[512];
    os_chain_signer *payer = NULL;
    uint8_t payer_addr[20], k_x[32], k_y[32], k_other[32], ch_x[32], ch_y[32], nobody[32];
    rc_seller x, y, z;
    static reg r; /* static: the group teardown may need it after a failure */

    if (devchain_start(&d, 31337, 900, why, sizeof(why)) != 0)
        fail_msg("devchain: %s", why);
    assert_int_equal(devchain_signer(&d, &payer, 1, why, sizeof(why)), 0);
    devchain_address(payer_addr, 1);
    assert_int_equal(devchain_mint(&d, payer_addr, 10000000, why, sizeof(why)), 0);

    reg_cfg c = {.interval_ms = 5000,
                 .liveness = 3,
                 .rescore_ms = 300,
                 .rate = 0,
                 .chain_id = d.chain_id,
                 .rpc = d.anvil.url,
                 .escrow = d.escrow};
    reg_open(&r, &c);
    assert_int_equal(rc_seller_init(&x, 60), 0);
    assert_int_equal(rc_seller_init(&y, 61), 0);
    assert_int_equal(rc_seller_init(&z, 62), 0);
    /* x a little dearer than y; z much dearer, to spread the price scores. */
    rc_offer ox = {.service = "fb-svc", .input = 110000, .output = 330000};
    rc_offer oy = {.service = "fb-svc", .input = 100000, .output = 300000};
    rc_offer oz = {.service = "fb-svc", .input = 200000, .output = 600000};
    assert_int_equal(announce(&r, &x, "http://127.0.0.1:9701", &ox, 1, d.escrow), 200);
    assert_int_equal(announce(&r, &y, "http://127.0.0.1:9702", &oy, 1, d.escrow), 200);
    assert_int_equal(announce(&r, &z, "http://127.0.0.1:9703", &oz, 1, d.escrow), 200);
    /* A record naming another escrow is refused here. */
    assert_int_equal(announce(&r, &z, "http://127.0.0.1:9703", &oz, 1, NULL), 400);

    randombytes_buf(k_x, 32);
    randombytes_buf(k_y, 32);
    randombytes_buf(k_other, 32);
    randombytes_buf(nobody, 32);
    open_channel(&d, payer, payer_addr, &x, k_x, ch_x);
    open_channel(&d, payer, payer_addr, &y, k_y, ch_y);

    wait_rescore(&r); /* prices normalised over all three: y, the cheapest, leads */
    json_t *j = peers_of(&r, "?service=fb-svc");
    assert_string_equal(peer_node(json_array_get(json_object_get(j, "peers"), 0)), y.hex);
    json_decref(j);

    char *first = NULL;
    for (uint64_t i = 1; i <= 20; i++) {
        char *bx = feedback_body(&x, ch_x, k_x, "success", 1000 * i, i, d.chain_id, d.escrow);
        char *by = feedback_body(&y, ch_y, k_y, "error", 1000 * i, i, d.chain_id, d.escrow);
        assert_non_null(bx);
        assert_non_null(by);
        rc_resp res;
        assert_int_equal(post(&r, "/v1/feedback", bx, &res), 200);
        assert_non_null(strstr(res.body, "\"counted\":true"));
        rc_resp_free(&res);
        assert_int_equal(post(&r, "/v1/feedback", by, NULL), 200);
        if (i == 1)
            first = bx;
        else
            free(bx);
        free(by);
    }
    struct {
        const char *what;
        char *body;
        long want;
    } bad[] = {
        {"replayed report", strdup(first), 409},
        {"lower voucher on the channel",
         feedback_body(&x, ch_x, k_x, "error", 500, 30, d.chain_id, d.escrow), 409},
        {"channel of another seller",
         feedback_body(&y, ch_x, k_x, "error", 90000, 31, d.chain_id, d.escrow), 403},
        {"not the channel's signer",
         feedback_body(&x, ch_x, k_other, "error", 90000, 32, d.chain_id, d.escrow), 403},
        {"above the deposit",
         feedback_body(&x, ch_x, k_x, "error", 2000000, 33, d.chain_id, d.escrow), 403},
        {"unknown channel",
         feedback_body(&x, nobody, k_x, "error", 90000, 34, d.chain_id, d.escrow), 403},
        {"voucher for another escrow",
         feedback_body(&x, ch_x, k_x, "error", 90000, 35, d.chain_id, x.addr), 401},
        {"channel paying another node",
         feedback_body(&z, ch_x, k_x, "error", 90000, 36, d.chain_id, d.escrow), 403},
    };
    {
        /* a report altered after signing */
        json_t *t = json_loads(first, 0, NULL);
        json_object_set_new(t, "outcome", json_string("error"));
        char *altered = json_dumps(t, JSON_COMPACT);
        json_decref(t);
        rc_resp res;
        assert_int_equal(post(&r, "/v1/feedback", altered, &res), 401);
        assert_true(rc_is_openai_error(res.body));
        rc_resp_free(&res);
        free(altered);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc_resp res;
        assert_non_null(bad[i].body);
        (void)post(&r, "/v1/feedback", bad[i].body, &res);
        if (res.status != bad[i].want || !rc_is_openai_error(res.body))
            fail_msg("feedback case \"%s\": %ld (want %ld) %s", bad[i].what, res.status,
                     bad[i].want, res.body);
        rc_resp_free(&res);
        free(bad[i].body);
    }
    free(first);

    /* After a rescore, x's record of successes outweighs y's lower price. */
    wait_rescore(&r);
    j = peers_of(&r, "?service=fb-svc");
    json_t *peers = json_object_get(j, "peers");
    assert_int_equal(json_array_size(peers), 3);
    assert_string_equal(peer_node(json_array_get(peers, 0)), x.hex);
    assert_string_equal(peer_node(json_array_get(peers, 1)), y.hex);
    double rx = num(find_peer(j, x.hex), "reputation"), ry = num(find_peer(j, y.hex), "reputation");
    /* success (20 + 2.5) / 25 against 2.5 / 25; x's 100 ms first tokens score 2000 / 2100 */
    assert_true(rx - ry > 0.35 * 0.8 - 0.01);
    json_decref(j);

    reg_close(&r);
    os_chain_signer_free(payer);
    devchain_stop(&d);
}

/* ------------------------------------------------------------------ main */

/* The binary serves once main.c runs the core; its --help then lists the core's own keys. */
static bool binary_serves(void)
{
    char dir[] = "/tmp/openseed-registry-help-XXXXXX", log[128], why[256];
    const char *args[] = {"--help", NULL};
    rc_proc p;
    bool yes = false;

    if (rc_tmpdir(dir) != 0)
        return false;
    snprintf(log, sizeof(log), "%s/help.txt", dir);
    /* rc_proc_start waits for a port that --help never prints: it reports the early exit. */
    if (rc_proc_start(&p, bin_path, args, log, why, sizeof(why)) != 0) {
        FILE *f = fopen(log, "r");
        char line[1024];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            yes = yes || strstr(line, "--liveness-intervals") != NULL;
        if (f != NULL)
            fclose(f);
    } else {
        rc_proc_stop(&p, SIGKILL, 1000);
    }
    rc_rmtree(dir);
    return yes;
}

static int group_setup(void **state)
{
    const char *b = getenv("OPENSEED_BUILD_DIR");
    const char *inproc = getenv("OPENSEED_REGISTRY_TEST_INPROC");
    if (tu_init(state) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    if (b == NULL || b[0] == '\0') {
        fprintf(stderr, "OPENSEED_BUILD_DIR is not set (run through ctest)\n");
        return -1;
    }
    snprintf(bin_path, sizeof(bin_path), "%s/openseed-registry", b);
    use_binary = (inproc == NULL || strcmp(inproc, "1") != 0) && binary_serves();
    print_message("registry under test: %s\n", use_binary ? bin_path : "the core, in-process");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < 8; i++) {
        reg *r = open_regs[i];
        if (r == NULL)
            continue;
        if (r->proc.pid > 0)
            rc_proc_stop(&r->proc, SIGKILL, 5000);
        if (r->rg != NULL) /* in-process: its threads may be wedged by the failure; leave them */
            r->rg = NULL;
        rc_rmtree(r->dir);
        open_regs[i] = NULL;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),         cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_restart),           cmocka_unit_test(test_ranking_and_caps),
        cmocka_unit_test(test_reputation_order),  cmocka_unit_test(test_pagination),
        cmocka_unit_test(test_rate_limit),        cmocka_unit_test(test_two_in_process),
        cmocka_unit_test(test_feedback_on_chain),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
