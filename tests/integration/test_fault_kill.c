/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Daemons killed with SIGKILL in the middle of paid work, as real processes on loopback
 * (netfix.h: anvil, the registry, two sellers on the built-in echo, the buyer), and what the
 * money looks like afterwards (issue 9, "Faults").
 *
 * Seller killed mid-stream (three times, alternating the seller): a client streams an OpenAI chat
 * completion through the buyer and the answering seller is SIGKILLed after a few tokens. The
 * client's stream ends with the buyer's error event (never `data: [DONE]`, never a clean
 * finish_reason), a request pinned to the dead seller fails within a bound, and new requests are
 * answered by the other seller. The killed seller restarts on its data directory: every voucher it
 * held before the kill is still there byte for byte, plus the killed request's; the killed request
 * is booked once on each side, at cost 0 (the buyer was told no cost); the books agree
 * (nf_reconcile and each seller's consumed = the sum of its request costs = the buyer's spend with
 * it); the next paid requests to it succeed after at most one 402; a settlement claims at least
 * what the seller earned and at most that plus the last request's slack (never the killed request's
 * estimate), and what the chain says was claimed equals the sum of the confirmed settlements.
 *
 * Buyer killed mid-request (three rounds, each with a streamed and a whole request in flight):
 * the buyer is SIGKILLed while a seller is producing the answer, then restarted on its data
 * directory. After at most one 402 reconciliation per channel every request succeeds again, the
 * buyer has nothing in flight, its channels agree with each seller's and with the chain (deposit),
 * and its spend with each seller equals what that seller booked, so nothing the seller charged is
 * missing from the buyer's books.
 *
 * Already covered elsewhere, in-process: the buyer's error event for an upstream cut mid-stream
 * (test_gateway.c test_mid_stream_failure), the seller's vouchers on disk under kill -9 with a
 * hand-made buyer (test_seller_crash.c), the 402 reconciliation after a buyer forgets consumed
 * (test_gateway.c test_402_reconciliation), failover between seller processes (test_network.c).
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include <pthread.h>

#include "netfix.h"

#define CHAIN 31337
#define ROUNDS 3
#define SSE_CAP (1u << 20)

static netfix fx;
static int failed;

/* What the tests saw, for the summary line (docs/reliability.md's table). */
static struct {
    int seller_kills, buyer_kills_stream, buyer_kills_whole;
    int reconciliations; /* 402s answered by reconciling, over every round */
    int requests_after;  /* paid requests answered after a restart */
    int settlements;     /* confirmed claims */
    int orphans_charged; /* requests cut by a buyer kill that the seller charged (cost > 0) */
    int races; /* restarts whose first requests met the orphan still unbooked at the seller */
    char orphans[256]; /* how the seller booked each of them: "outcome/cost " */
} tally;

static const char *const offers[2] = {"echo model=echo-1 apis=openai.chat input=2 output=6",
                                      "echo model=echo-1 apis=openai.chat input=1.8 output=5.4"};

/* ---- the network ---- */

static int start_network(const char *tag, const char *const *seller_flags)
{
    char why[NF_WHY] = "";

    if (nf_market(&fx, tag, CHAIN, offers, 2, "echo", seller_flags, why, sizeof(why)) != 0 ||
        nf_buyer(&fx, NULL, why, sizeof(why)) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "setup: %s\n", why);
    failed = 1;
    return -1;
}

/* Tokens paced at 40/s, so a long answer takes seconds and can be cut after a few tokens. */
static int setup_seller_kill(void **state)
{
    static const char *const flags[] = {"--echo-tokens-per-s", "40", NULL};
    (void)state;
    return start_network("kill-seller", flags);
}

/* Also 500 ms before every answer, so a whole (non-streamed) request stays in flight long enough
 * to kill the buyer under it. */
static int setup_buyer_kill(void **state)
{
    static const char *const flags[] = {"--echo-tokens-per-s", "40", "--echo-latency-ms", "500",
                                        NULL};
    (void)state;
    return start_network("kill-buyer", flags);
}

static int teardown(void **state)
{
    (void)state;
    nf_teardown(&fx, failed);
    return 0;
}

/* ---- a streaming client ---- */

/* The body of a streamed answer as it arrives; after kill_after content deltas it kills `victim`
 * (SIGKILL) from inside the read, so the kill lands mid-stream. */
typedef struct sse_read {
    char *buf;
    size_t len;
    int contents;      /* content deltas seen so far */
    int kill_after;    /* 0: never */
    nf_node *victim;   /* whom to kill */
    bool stop_at_kill; /* stop reading once killed (the victim is the buyer: nothing more comes) */
    bool killed;
    int64_t kill_ms;
} sse_read;

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int on_sse(void *ud, const os_http_client_res *res, const uint8_t *data, size_t len)
{
    sse_read *r = ud;
    (void)res;
    if (r->len + len >= SSE_CAP)
        return 1;
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    r->buf[r->len] = '\0';
    r->contents = count_of(r->buf, "\"content\":\"");
    if (!r->killed && r->kill_after > 0 && r->contents >= r->kill_after) {
        r->killed = nf_kill(r->victim, SIGKILL) == -1; /* -1: it died of the signal */
        r->kill_ms = rc_now_ms();
        return r->stop_at_kill ? 1 : 0;
    }
    return 0;
}

/* POSTs a streamed request to the buyer (pinned to seller `pin` when >= 0), reading it into r.
 * *status and peer get the response's status and X-OpenSeed-Peer. The client's result. */
static os_err stream_post(sse_read *r, long *status, char *peer, size_t peercap, const char *body,
                          int pin)
{
    char url[128];
    os_http_header h[2] = {{"Content-Type", "application/json"},
                           {"X-OpenSeed-Peer", pin >= 0 ? fx.sel_hex[pin] : ""}};
    os_http_client_req req;
    os_http_client_res res;
    os_err rc;

    r->buf = malloc(SSE_CAP);
    assert_non_null(r->buf);
    r->buf[0] = '\0';
    snprintf(url, sizeof(url), "%s/v1/chat/completions", fx.buyer.url);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = h;
    req.n_headers = pin >= 0 ? 2 : 1;
    req.body = body;
    req.body_len = strlen(body);
    req.on_body = on_sse;
    req.on_body_ud = r;
    req.max_body = SIZE_MAX;
    os_http_client_res_init(&res);
    rc = os_http_client_do(fx.http, &res, NULL, &req);
    *status = res.status;
    const char *p = os_http_client_res_header(&res, "X-OpenSeed-Peer");
    snprintf(peer, peercap, "%s", p != NULL ? p : "");
    os_http_client_res_free(&res);
    return rc;
}

/* A long streamed chat completion: "echo:" then 200 one-word tokens, at most 400 out. */
static void long_stream_body(char *body, size_t cap)
{
    size_t n = (size_t)snprintf(body, cap,
                                "{\"model\":\"echo\",\"stream\":true,\"max_tokens\":400,"
                                "\"messages\":[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 200 && n < cap; i++)
        n += (size_t)snprintf(body + n, cap - n, " w%d", i);
    snprintf(body + n, cap - n, "\"}]}");
}

/* ---- reading the books ---- */

static json_t *admin_get(int i, const char *path)
{
    long st = 0;
    json_t *j = nf_admin(&fx, i, &st, path, NULL);
    if (st != 200 || j == NULL)
        fail_msg("seller%d GET %s: status %ld", i, path, st);
    return j;
}

static json_t *buyer_get(const char *path)
{
    long st = 0;
    json_t *j = nf_buyer_get(&fx, &st, path);
    if (st != 200 || j == NULL)
        fail_msg("buyer GET %s: status %ld", path, st);
    return j;
}

static uint64_t money(const json_t *v)
{
    uint64_t x = 0;
    assert_true(nf_money(v, &x));
    return x;
}

static uint64_t money_of(const json_t *o, const char *key)
{
    return money(json_object_get(o, key));
}

/* The buyer's channel with seller i (channel_id into id, 0x + 64 hex); false when it has none. */
static bool buyer_channel(int i, char id[67])
{
    json_t *j = buyer_get("/openseed/v1/channels"), *c;
    size_t k;
    bool found = false;
    json_array_foreach(json_object_get(j, "channels"), k, c)
    {
        const char *s = json_string_value(json_object_get(c, "seller"));
        if (s != NULL && strcasecmp(s, fx.sel_hex[i]) == 0) {
            snprintf(id, 67, "%s", json_string_value(json_object_get(c, "channel_id")));
            found = true;
        }
    }
    json_decref(j);
    return found;
}

/* Seller i's list (vouchers, requests) on one channel, newest first. */
static json_t *seller_list(int i, const char *what, const char *chan)
{
    char path[192];
    snprintf(path, sizeof(path), "/admin/v1/%s?channel=%s&limit=1000", what, chan);
    json_t *j = admin_get(i, path);
    json_t *arr = json_incref(json_object_get(j, what));
    json_decref(j);
    assert_non_null(arr);
    return arr;
}

/* Seller i's channel row. */
static json_t *seller_channel(int i, const char *chan)
{
    json_t *j = admin_get(i, "/admin/v1/channels"), *c, *found = NULL;
    size_t k;
    json_array_foreach(json_object_get(j, "channels"), k, c)
    {
        const char *id = json_string_value(json_object_get(c, "channel_id"));
        if (id != NULL && strcasecmp(id, chan) == 0)
            found = json_incref(c);
    }
    json_decref(j);
    if (found == NULL)
        fail_msg("seller%d does not know channel %s", i, chan);
    return found;
}

/* A counter of seller i's /metrics (a full series name, labels included). */
static uint64_t seller_metric(int i, const char *series)
{
    nf_res r;
    uint64_t v = 0;
    char want[160];
    nf_http(&fx, &r, "GET", fx.sel[i].url, "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    snprintf(want, sizeof(want), "\n%s ", series);
    const char *p = strstr(r.body, want);
    if (p == NULL)
        fail_msg("seller%d has no %s", i, series);
    v = strtoull(p + strlen(want), NULL, 10);
    nf_res_free(&r);
    return v;
}

static uint64_t payment_refusals(int i)
{
    return seller_metric(i, "openseed_seller_refusals_total{reason=\"payment\"}");
}

/* The channel as the chain has it. */
static void chain_channel(const char *chan, os_channel_state *cs)
{
    uint8_t id[32];
    os_chain_error err;
    assert_int_equal(os_hex_decode_exact(id, 32, chan), OS_OK);
    assert_int_equal(os_escrow_get_channel(fx.d.ch, cs, &err, fx.d.escrow, id), OS_OK);
}

/* Every book agrees: nothing in flight at the buyer, nf_reconcile, and for each seller: its
 * consumed = the sum of its requests' costs = the buyer's spend with it; the deposits the buyer
 * and the seller hold equal the chain's. Both sellers must be running. */
static void books_agree(void)
{
    char why[NF_WHY] = "";
    int n = 0;
    json_t *led, *spend, *r;
    size_t k;

    if (nf_buyer_idle(&fx, 30000) != 0)
        fail_msg("the buyer still has requests in flight after 30 s");
    if (nf_reconcile(&fx, 0, &n, why, sizeof(why)) != 0)
        fail_msg("books disagree: %s", why);
    assert_true(n >= 1);

    /* An idle buyer has nothing in flight in its ledger: the requests its own crashes cut were
     * finished by the restart as "interrupted" at cost 0 (what the seller charged for them came
     * back through the 402 and is an adjustment), never more than it was killed. */
    led = buyer_get("/openseed/v1/ledger");
    int orphans = 0;
    json_array_foreach(json_object_get(led, "requests"), k, r)
    {
        const char *oc = json_string_value(json_object_get(r, "outcome"));
        assert_non_null(oc);
        if (strcmp(oc, "in_flight") == 0)
            fail_msg("an idle buyer's ledger has a request in flight");
        if (strcmp(oc, "interrupted") == 0) {
            orphans++;
            assert_int_equal(money_of(r, "cost"), 0);
        }
    }
    /* the view holds the newest 100 rows: exact while the ledger is shorter */
    bool whole_ledger = json_array_size(json_object_get(led, "requests")) < 100;
    json_decref(led);
    if (orphans > tally.buyer_kills_stream + tally.buyer_kills_whole ||
        (whole_ledger && orphans != tally.buyer_kills_stream + tally.buyer_kills_whole))
        fail_msg("%d interrupted requests in the ledger of a buyer killed %d times", orphans,
                 tally.buyer_kills_stream + tally.buyer_kills_whole);

    spend = buyer_get("/openseed/v1/spend");
    for (int i = 0; i < 2; i++) {
        char chan[67];
        uint64_t consumed, sum = 0, spent = 0;
        bool listed = false;
        json_t *c, *reqs, *ps;
        os_channel_state cs;
        if (!buyer_channel(i, chan))
            continue;
        c = seller_channel(i, chan);
        consumed = money_of(c, "consumed");
        chain_channel(chan, &cs);
        assert_int_equal(money_of(c, "deposit"), cs.deposit);
        json_decref(c);
        reqs = seller_list(i, "requests", chan);
        json_array_foreach(reqs, k, r) sum += money_of(r, "cost");
        json_decref(reqs);
        if (sum != consumed)
            fail_msg("seller%d: consumed %" PRIu64 " but its requests cost %" PRIu64, i, consumed,
                     sum);
        json_array_foreach(json_object_get(spend, "per_seller"), k, ps)
        {
            const char *s = json_string_value(json_object_get(ps, "seller"));
            if (s != NULL && strcasecmp(s, fx.sel_hex[i]) == 0) {
                spent = money_of(ps, "spent");
                listed = true;
            }
        }
        if (!listed || spent != consumed)
            fail_msg("seller%d booked %" PRIu64 " on the channel, the buyer %" PRIu64 " (%s)", i,
                     consumed, spent, listed ? "spend per seller" : "not listed");
    }
    json_decref(spend);

    /* the buyer's deposits are the chain's */
    json_t *bj = buyer_get("/openseed/v1/channels"), *bc;
    json_array_foreach(json_object_get(bj, "channels"), k, bc)
    {
        os_channel_state cs;
        chain_channel(json_string_value(json_object_get(bc, "channel_id")), &cs);
        assert_int_equal(money_of(bc, "deposit"), cs.deposit);
        assert_int_equal(money_of(bc, "in_flight"), 0);
    }
    json_decref(bj);
}

/* POSTs a chat completion body to the buyer, pinned to seller `pin` when >= 0 (nf_post cannot
 * pin). */
static void buyer_post(nf_res *out, const char *body, int pin)
{
    char url[128];
    os_http_header h[2] = {{"Content-Type", "application/json"},
                           {"X-OpenSeed-Peer", pin >= 0 ? fx.sel_hex[pin] : ""}};
    os_http_client_req req;
    os_http_client_res res;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s/v1/chat/completions", fx.buyer.url);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = h;
    req.n_headers = pin >= 0 ? 2 : 1;
    req.body = body;
    req.body_len = strlen(body);
    os_http_client_res_init(&res);
    out->status = os_http_client_do(fx.http, &res, NULL, &req) == OS_OK ? res.status : -1;
    const char *p = os_http_client_res_header(&res, "X-OpenSeed-Peer");
    snprintf(out->peer, sizeof(out->peer), "%s", p != NULL ? p : "");
    out->body = malloc(res.body.len + 1);
    assert_non_null(out->body);
    if (res.body.len > 0)
        memcpy(out->body, res.body.data, res.body.len);
    out->body[res.body.len] = '\0';
    out->len = res.body.len;
    os_http_client_res_free(&res);
}

/* A short paid request (pinned to seller `pin` when >= 0) that must be answered: 200, content,
 * from `want` when >= 0. A 404 while the buyer's directory does not list the pinned seller yet
 * (it costs nothing: no voucher is signed) is retried for up to 30 s. */
static void paid_ok(int pin, int want, const char *text)
{
    char body[256];
    nf_res r;
    snprintf(body, sizeof(body),
             "{\"model\":\"echo\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]}",
             text);
    for (int t = 0;; t++) {
        buyer_post(&r, body, pin);
        if (r.status != 404 || pin < 0 || t >= 300)
            break;
        nf_res_free(&r);
        rc_sleep_ms(100);
    }
    if (r.status != 200)
        fail_msg("paid request (pin %d): status %ld: %.300s", pin, r.status, r.body);
    assert_non_null(strstr(r.body, "echo: "));
    if (want >= 0 && strcasecmp(r.peer, fx.sel_hex[want]) != 0)
        fail_msg("answered by %s, not seller%d (%s)", r.peer, want, fx.sel_hex[want]);
    nf_res_free(&r);
}

/* ---- seller killed mid-stream ---- */

/* Each SSE event of an OpenAI stream is one "data: …" line; checks the stream ended with the
 * buyer's error event (relay.c stream_error: the OpenAI error object, type api_error, message
 * "the seller's answer broke off") and nothing that looks like a clean end. */
static void assert_error_end(const char *body)
{
    const char *p = body, *last = NULL;
    size_t last_len = 0;
    int events = 0;

    assert_null(strstr(body, "[DONE]"));
    assert_null(strstr(body, "\"finish_reason\":\"stop\""));
    assert_null(strstr(body, "\"finish_reason\":\"length\""));
    while (*p != '\0') {
        const char *end = strstr(p, "\n\n");
        if (end == NULL)
            fail_msg("the stream ends mid-event: %.200s", p);
        if (strncmp(p, "data: ", 6) != 0)
            fail_msg("not a data event: %.200s", p);
        last = p + 6;
        last_len = (size_t)(end - last);
        events++;
        p = end + 2;
    }
    assert_true(events >= 2);
    json_t *e = json_loadb(last, last_len, 0, NULL);
    if (e == NULL)
        fail_msg("the last event is not JSON: %.*s", (int)last_len, last);
    json_t *err = json_object_get(e, "error");
    assert_int_equal(json_object_size(e), 1);
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "type")), "api_error");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "the seller's answer broke off");
    assert_true(json_is_null(json_object_get(err, "code")));
    assert_true(json_is_null(json_object_get(err, "param")));
    json_decref(e);
}

/* Is voucher v (nonce, cumulative, signature) in arr, unchanged? */
static bool has_voucher(json_t *arr, json_t *v)
{
    json_t *w;
    size_t k;
    json_array_foreach(arr, k, w)
    {
        if (money_of(w, "nonce") == money_of(v, "nonce"))
            return money_of(w, "cumulative") == money_of(v, "cumulative") &&
                   json_equal(json_object_get(w, "signature"), json_object_get(v, "signature")) &&
                   json_equal(json_object_get(w, "metadata_hash"),
                              json_object_get(v, "metadata_hash"));
    }
    return false;
}

/* The buyer's ledger requests on chan with id above after, as a new array. */
static json_t *buyer_requests_since(const char *chan, uint64_t after)
{
    json_t *led = buyer_get("/openseed/v1/ledger"), *out = json_array(), *r;
    size_t k;
    json_array_foreach(json_object_get(led, "requests"), k, r)
    {
        const char *c = json_string_value(json_object_get(r, "channel_id"));
        if (c != NULL && strcasecmp(c, chan) == 0 && money_of(r, "id") > after)
            json_array_append(out, r);
    }
    json_decref(led);
    return out;
}

static uint64_t buyer_last_request_id(void)
{
    json_t *led = buyer_get("/openseed/v1/ledger");
    json_t *first = json_array_get(json_object_get(led, "requests"), 0);
    uint64_t id = first != NULL ? money_of(first, "id") : 0;
    json_decref(led);
    return id;
}

/* Settles chan on seller i now; checks what the chain says against the seller's books. */
static void settle_and_check(int i, const char *chan)
{
    char body[128];
    long st = 0;
    json_t *rep, *c, *reqs, *sets, *r;
    size_t k;
    uint64_t consumed, slack = 0, confirmed = 0;
    os_channel_state cs;
    bool have_slack = false;

    snprintf(body, sizeof(body), "{\"channel_id\":\"%s\"}", chan);
    rep = nf_admin(&fx, i, &st, "/admin/v1/settle", body);
    assert_int_equal(st, 200);
    json_array_foreach(json_object_get(rep, "settlements"), k, r)
    {
        const char *s = json_string_value(json_object_get(r, "status"));
        if (s == NULL || strcmp(s, "confirmed") != 0)
            fail_msg("a claim did not confirm: %s", s != NULL ? s : "?");
        tally.settlements++;
    }
    json_decref(rep);

    c = seller_channel(i, chan);
    consumed = money_of(c, "consumed");
    json_decref(c);
    /* the slack of the last charged request: its estimate minus its cost */
    reqs = seller_list(i, "requests", chan);
    json_array_foreach(reqs, k, r)
    {
        if (!have_slack && money_of(r, "cost") > 0) {
            slack = money_of(r, "estimate") - money_of(r, "cost");
            have_slack = true;
        }
    }
    json_decref(reqs);
    assert_true(have_slack);

    sets = admin_get(i, "/admin/v1/settlements?limit=1000");
    json_array_foreach(json_object_get(sets, "settlements"), k, r)
    {
        const char *s = json_string_value(json_object_get(r, "status"));
        const char *id = json_string_value(json_object_get(r, "channel_id"));
        if (s != NULL && strcmp(s, "confirmed") == 0 && id != NULL && strcasecmp(id, chan) == 0)
            confirmed += money_of(r, "amount");
    }
    json_decref(sets);

    chain_channel(chan, &cs);
    if (cs.claimed != confirmed)
        fail_msg("chain claimed %" PRIu64 ", confirmed settlements %" PRIu64, cs.claimed,
                 confirmed);
    if (cs.claimed < consumed || cs.claimed > consumed + slack)
        fail_msg("claimed %" PRIu64 ", earned %" PRIu64 " + slack %" PRIu64, cs.claimed, consumed,
                 slack);
}

static void test_seller_killed_mid_stream(void **state)
{
    char body[4096], peer[64], chan[67];
    (void)state;
    failed = 1;

    long_stream_body(body, sizeof(body));
    for (int round = 0; round < ROUNDS; round++) {
        int v = round % 2, o = 1 - v;
        json_t *before, *after, *sreq, *breq;
        uint64_t last_id, refusals0;
        size_t n_sreq_before;
        sse_read rd = {.kill_after = 3, .victim = &fx.sel[v]};
        long status = 0;
        os_err rc;
        nf_res r;

        /* a paid request to the victim first, so it holds vouchers (round 0: opens the channel) */
        paid_ok(v, v, "before the kill");
        assert_true(buyer_channel(v, chan));
        assert_int_equal(nf_buyer_idle(&fx, 30000), 0);
        before = seller_list(v, "vouchers", chan);
        sreq = seller_list(v, "requests", chan);
        n_sreq_before = json_array_size(sreq);
        json_decref(sreq);
        last_id = buyer_last_request_id();
        assert_true(json_array_size(before) >= 1);

        /* the stream, and the kill after three content deltas */
        rc = stream_post(&rd, &status, peer, sizeof(peer), body, v);
        int64_t ended = rc_now_ms();
        assert_true(rd.killed);
        tally.seller_kills++;
        assert_int_equal(rc, OS_OK); /* the buyer ended the HTTP response properly */
        assert_int_equal(status, 200);
        assert_true(strcasecmp(peer, fx.sel_hex[v]) == 0);
        assert_non_null(strstr(rd.buf, "\"content\":\"echo:\""));
        assert_error_end(rd.buf);
        /* cut: the 201 tokens were not all sent; the end came within a bound */
        assert_true(count_of(rd.buf, "\"content\":\"") < 150);
        assert_true(ended - rd.kill_ms < 20000);
        free(rd.buf);

        /* pinned to the dead seller: an error within a bound, not a hang */
        {
            int64_t t0 = rc_now_ms();
            buyer_post(&r,
                       "{\"model\":\"echo\",\"max_tokens\":16,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"are you there\"}]}",
                       v);
            /* 502 while the directory still lists it (a few seconds), 404 once it does not */
            if ((r.status != 502 && r.status != 404) || rc_now_ms() - t0 > 20000)
                fail_msg("pinned to the dead seller: %ld after %lld ms: %.200s", r.status,
                         (long long)(rc_now_ms() - t0), r.body);
            json_t *j = json_loads(r.body, 0, NULL);
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                r.status == 502 ? "seller_unavailable" : "model_not_found");
            json_decref(j);
            nf_res_free(&r);
        }

        /* failover: new requests are answered by the other seller */
        paid_ok(-1, o, "after the kill");
        paid_ok(-1, o, "after the kill again");

        /* the victim comes back on the same data directory */
        {
            char why[NF_WHY] = "";
            if (nf_restart(&fx, &fx.sel[v], why, sizeof(why)) != 0)
                fail_msg("restart seller%d: %s", v, why);
        }
        /* every voucher held before the kill is intact, plus exactly the killed request's,
         * which the buyer signed */
        after = seller_list(v, "vouchers", chan);
        {
            json_t *w, *bled, *bv, *killed = NULL;
            size_t k, kb;
            bool buyer_signed = false;
            json_array_foreach(before, k, w)
            {
                if (!has_voucher(after, w))
                    fail_msg("seller%d lost voucher nonce %" PRIu64 " in the kill", v,
                             money_of(w, "nonce"));
            }
            assert_int_equal(json_array_size(after), json_array_size(before) + 1);
            json_array_foreach(after, k, w)
            {
                if (!has_voucher(before, w))
                    killed = w;
            }
            assert_non_null(killed);
            bled = buyer_get("/openseed/v1/ledger");
            json_array_foreach(json_object_get(bled, "vouchers"), kb, bv)
            {
                const char *c = json_string_value(json_object_get(bv, "channel_id"));
                if (c != NULL && strcasecmp(c, chan) == 0 &&
                    money_of(bv, "nonce") == money_of(killed, "nonce") &&
                    money_of(bv, "cumulative") == money_of(killed, "cumulative"))
                    buyer_signed = true;
            }
            json_decref(bled);
            assert_true(buyer_signed);

            /* the killed request: once in each ledger, at cost 0 on both sides */
            uint64_t est = money_of(killed, "estimate");
            sreq = seller_list(v, "requests", chan);
            assert_int_equal(json_array_size(sreq), n_sreq_before + 1);
            json_t *sk = json_array_get(sreq, 0);
            assert_string_equal(json_string_value(json_object_get(sk, "outcome")), "interrupted");
            assert_int_equal(money_of(sk, "cost"), 0);
            assert_int_equal(money_of(sk, "estimate"), est);
            json_decref(sreq);
            breq = buyer_requests_since(chan, last_id);
            int same = 0;
            json_array_foreach(breq, k, w)
            {
                if (money_of(w, "estimate") == est) {
                    same++;
                    assert_string_equal(json_string_value(json_object_get(w, "outcome")),
                                        "seller_error");
                    assert_int_equal(money_of(w, "cost"), 0);
                }
            }
            json_decref(breq);
            assert_int_equal(same, 1);
        }
        json_decref(before);
        json_decref(after);

        /* listed again; the books agree before any new request */
        assert_int_equal(nf_wait_listed(&fx, "echo", 2, 30000), 0);
        books_agree();

        /* the next paid requests to it succeed, after at most one 402 */
        refusals0 = payment_refusals(v);
        paid_ok(v, v, "after the restart");
        uint64_t recon = payment_refusals(v) - refusals0;
        assert_true(recon <= 1);
        tally.reconciliations += (int)recon;
        paid_ok(v, v, "steady again");
        assert_int_equal(payment_refusals(v) - refusals0, recon); /* no more 402 */
        tally.requests_after += 2;
        books_agree();

        settle_and_check(v, chan);
        books_agree();
    }
    failed = 0;
}

/* ---- buyer killed mid-request ---- */

typedef struct whole_call {
    int pin;
    long status;
} whole_call;

static void *whole_thread(void *arg)
{
    whole_call *w = arg;
    char body[256], url[128];
    os_http_client *http = NULL;
    os_http_header h[2] = {{"Content-Type", "application/json"},
                           {"X-OpenSeed-Peer", fx.sel_hex[w->pin]}};
    os_http_client_req req;
    os_http_client_res res;

    w->status = -2;
    if (os_http_client_new(&http, &(os_http_client_config){.timeout_ms = 60000}) != OS_OK)
        return NULL;
    snprintf(body, sizeof(body),
             "{\"model\":\"echo\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\","
             "\"content\":\"a whole answer the buyer will not see\"}]}");
    snprintf(url, sizeof(url), "%s/v1/chat/completions", fx.buyer.url);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = h;
    req.n_headers = 2;
    req.body = body;
    req.body_len = strlen(body);
    os_http_client_res_init(&res);
    w->status = os_http_client_do(http, &res, NULL, &req) == OS_OK ? res.status : -1;
    os_http_client_res_free(&res);
    os_http_client_free(http);
    return NULL;
}

/* The id of a pending request of seller i (its voucher accepted, the answer not booked), 0 when
 * it holds none. */
static uint64_t seller_pending_id(int i)
{
    json_t *j = admin_get(i, "/admin/v1/requests?limit=20"), *r;
    size_t k;
    uint64_t id = 0;
    json_array_foreach(json_object_get(j, "requests"), k, r)
    {
        const char *s = json_string_value(json_object_get(r, "status"));
        if (s != NULL && strcmp(s, "pending") == 0)
            id = (uint64_t)json_integer_value(json_object_get(r, "id"));
    }
    json_decref(j);
    return id;
}

static bool seller_has_pending(int i)
{
    return seller_pending_id(i) != 0;
}

/* Waits up to ms for seller i to hold (want true) or not hold a pending request. */
static bool seller_wait_pending(int i, bool want, long ms)
{
    for (long t = 0; t < ms; t += 10) {
        if (seller_has_pending(i) == want)
            return true;
        rc_sleep_ms(10);
    }
    return seller_has_pending(i) == want;
}

/* Notes how seller `victim` booked the request a buyer kill cut (id 0: its newest request). */
static void note_orphan(int victim, const char *kind, uint64_t id)
{
    size_t n = strlen(tally.orphans);
    json_t *j = admin_get(victim, "/admin/v1/requests?limit=20"), *r = NULL, *x;
    size_t k;
    json_array_foreach(json_object_get(j, "requests"), k, x)
    {
        if (id == 0 || (uint64_t)json_integer_value(json_object_get(x, "id")) == id) {
            r = x;
            break;
        }
    }
    if (r == NULL)
        fail_msg("seller%d: the orphaned request is not among its newest", victim);
    uint64_t cost = money_of(r, "cost");
    tally.orphans_charged += cost > 0;
    snprintf(tally.orphans + n, sizeof(tally.orphans) - n, "%s:%s/%" PRIu64 " ", kind,
             json_string_value(json_object_get(r, "outcome")), cost);
    json_decref(j);
}

/* One paid request to seller i that needs at most one 402 (counted); returns the refusals after. */
static uint64_t paid_ok_counted(int i, const char *text)
{
    uint64_t r0 = payment_refusals(i);
    paid_ok(i, i, text);
    uint64_t recon = payment_refusals(i) - r0;
    if (recon > 1)
        fail_msg("seller%d: %" PRIu64 " payment refusals for one request", i, recon);
    tally.reconciliations += (int)recon;
    tally.requests_after++;
    return r0 + recon;
}

/*
 * After the buyer was killed with a request in flight on seller `victim`: restarts the buyer, then
 * both channels serve again after at most one 402 each, then steadily, and every book agrees.
 *
 * The seller books the orphaned request once it notices the buyer has gone (a stream: when a write
 * fails; a whole answer: when it is ready). Without `race` the test waits for that before the
 * restart. With `race` it does not, so the restarted buyer's first request may meet a 402 whose
 * consumed still counts the orphan's estimate as in flight: the invoice's extra.reserved tells the
 * buyer (which has nothing in flight) that this part is not consumed, and the orphan's real cost
 * reaches its books once booked, through the closing fields of a later request or a 402. The books
 * must then agree exactly (this used to leave the buyer above the seller for good).
 * OPENSEED_FAULT_KILL_RACE=1 races every round.
 */
static void after_buyer_kill(int victim, const char *kind, bool race)
{
    char why[NF_WHY] = "";
    uint64_t orphan = 0;
    const char *env = getenv("OPENSEED_FAULT_KILL_RACE");

    race = race || (env != NULL && strcmp(env, "1") == 0);
    if (!race) {
        if (!seller_wait_pending(victim, false, 30000))
            fail_msg("seller%d did not book the orphaned request within 30 s", victim);
        note_orphan(victim, kind, 0);
    } else {
        orphan = seller_pending_id(victim);
    }
    if (nf_restart(&fx, &fx.buyer, why, sizeof(why)) != 0)
        fail_msg("restart the buyer: %s", why);
    if (race && orphan != 0 && seller_has_pending(victim))
        tally.races++; /* the restarted buyer's first request meets the orphan in flight */
    for (int i = 0; i < 2; i++) {
        uint64_t r1 = paid_ok_counted(i, "after the buyer came back");
        paid_ok(i, i, "and again");
        assert_int_equal(payment_refusals(i), r1); /* reconciled: no more 402s */
        tally.requests_after++;
    }
    if (race && orphan != 0) {
        /* the orphan booked (if it was not yet), one more request brings its cost over */
        if (!seller_wait_pending(victim, false, 30000))
            fail_msg("seller%d did not book the orphaned request within 30 s", victim);
        note_orphan(victim, kind, orphan);
        paid_ok_counted(victim, "after the orphan was booked");
    }
    books_agree();
}

static void test_buyer_killed_mid_request(void **state)
{
    char body[4096], peer[64];
    (void)state;
    failed = 1;

    /* both channels open, both books agree */
    paid_ok(0, 0, "hello seller0");
    paid_ok(1, 1, "hello seller1");
    books_agree();

    long_stream_body(body, sizeof(body));
    for (int round = 0; round < ROUNDS; round++) {
        int s = round % 2, w = 1 - s;

        /* a streamed request in flight on seller s */
        {
            sse_read rd = {.kill_after = 3, .victim = &fx.buyer, .stop_at_kill = true};
            long status = 0;
            (void)stream_post(&rd, &status, peer, sizeof(peer), body, s);
            assert_true(rd.killed);
            assert_int_equal(status, 200);
            assert_null(strstr(rd.buf, "[DONE]"));
            free(rd.buf);
            tally.buyer_kills_stream++;
        }
        after_buyer_kill(s, "stream", round == ROUNDS - 1);

        /* a whole request in flight on seller w */
        {
            whole_call wc = {.pin = w};
            pthread_t th;
            assert_int_equal(pthread_create(&th, NULL, whole_thread, &wc), 0);
            bool pending = seller_wait_pending(w, true, 20000);
            int killed = nf_kill(&fx.buyer, SIGKILL);
            pthread_join(th, NULL);
            assert_true(pending);
            assert_int_equal(killed, -1);
            assert_true(wc.status != 200); /* the client never got the answer */
            tally.buyer_kills_whole++;
        }
        after_buyer_kill(w, "whole", round == ROUNDS - 1);
    }
    /* the last round's stream keeps the seller busy for seconds after the kill: if no restart met
     * an orphan in flight, the race this test is for was not run */
    if (tally.races < 1)
        fail_msg("no restart raced the seller's booking of an orphaned request");
    failed = 0;
}

int main(void)
{
    const struct CMUnitTest seller_kill[] = {
        cmocka_unit_test(test_seller_killed_mid_stream),
    };
    const struct CMUnitTest buyer_kill[] = {
        cmocka_unit_test(test_buyer_killed_mid_request),
    };
    int rc = cmocka_run_group_tests_name("seller_kill", seller_kill, setup_seller_kill, teardown);
    failed = 0;
    rc += cmocka_run_group_tests_name("buyer_kill", buyer_kill, setup_buyer_kill, teardown);
    fprintf(stderr,
            "fault_kill: seller kills mid-stream %d, buyer kills mid-stream %d, buyer kills "
            "mid-whole-request %d, 402 reconciliations %d, paid requests after restarts %d, "
            "confirmed settlements %d; restarts racing the seller's booking of the orphan %d; "
            "requests cut by a buyer kill, as the seller booked them (%d charged): %s\n",
            tally.seller_kills, tally.buyer_kills_stream, tally.buyer_kills_whole,
            tally.reconciliations, tally.requests_after, tally.settlements, tally.races,
            tally.orphans_charged, tally.orphans);
    return rc;
}
