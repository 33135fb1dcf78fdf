/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulation's plan: every random choice of a run as a pure function of the seed. Sellers get
 * a balanced design of three factors with four levels each (price multiplier, echo latency, echo
 * failure rate): every level is used by n/4 sellers (the remainder spread over the first levels),
 * and each factor's levels are dealt out by its own seeded shuffle, so the factors are independent
 * of each other. Each seller gets a failure seed, each buyer a request seed and a routing seed.
 * A buyer's k-th request is a function of its request seed and k alone, so the sequence does not
 * depend on which worker takes which request. The plan's canonical JSON (sorted keys, integers
 * and strings only) and its keccak256 identify a run's inputs.
 */
#include <stdlib.h>
#include <string.h>

#include "openseed/json.h"
#include "openseed/keccak.h"
#include "openseed/rng.h"

#include "sim.h"

const unsigned sim_price_x10[SIM_LEVELS] = {10, 15, 20, 30};
const unsigned sim_latency_ms[SIM_LEVELS] = {20, 60, 150, 300};
const uint32_t sim_fail_ppm[SIM_LEVELS] = {0, 20000, 100000, 300000};

/* The base prices the multipliers scale, micro-USDC per million tokens (the echo offering's). */
#define BASE_INPUT UINT64_C(500000)
#define BASE_OUTPUT UINT64_C(1500000)
#define BASE_CACHED UINT64_C(250000)

/* The request mix in millionths, in sim_kind order, and the ranges drawn from (inclusive). */
static const uint32_t mix_ppm[SIM_KINDS] = {550000, 250000, 150000, 50000};
#define WORDS_MIN 2
#define WORDS_MAX 40
#define MAX_TOKENS_MIN 16
#define MAX_TOKENS_MAX 256

/* Sub-streams of the seed, so that adding a draw to one never shifts another. */
enum {
    D_PRICE = 1,
    D_LATENCY,
    D_FAIL,
    D_FAIL_SEED,
    D_REQUEST_SEED,
    D_ROUTE_SEED,
};

static const char *const words[] = {
    "alpha",  "bright", "cable",  "delta",  "ember",  "forest", "garden", "harbor",
    "island", "jungle", "kernel", "lemon",  "meadow", "nickel", "orbit",  "pepper",
    "quartz", "river",  "silver", "timber", "umbra",  "velvet", "willow", "xenon",
    "yellow", "zephyr", "anchor", "basalt", "cinder", "dune",   "echo",   "fable",
};
#define N_WORDS (sizeof(words) / sizeof(words[0]))

static const char *const kind_names[SIM_KINDS] = {"chat", "chat_stream", "messages", "embeddings"};

const char *sim_kind_name(sim_kind k)
{
    return (unsigned)k < SIM_KINDS ? kind_names[k] : "unknown";
}

/* Deals the levels 0..SIM_LEVELS-1, each n/4 times (the first n%4 levels once more), into
 * out[0..n) in an order shuffled by seed (Fisher-Yates). */
static void deal_levels(unsigned *out, unsigned n, uint64_t seed)
{
    os_rng r;
    unsigned at = 0;
    for (unsigned l = 0; l < SIM_LEVELS; l++) {
        unsigned count = n / SIM_LEVELS + (l < n % SIM_LEVELS ? 1 : 0);
        for (unsigned i = 0; i < count; i++)
            out[at++] = l;
    }
    os_rng_seed(&r, seed);
    for (unsigned i = n; i > 1; i--) {
        unsigned j = (unsigned)os_rng_below(&r, i);
        unsigned t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
}

os_err sim_plan_make(sim_plan *pl, const sim_params *p)
{
    unsigned *lv[3] = {NULL, NULL, NULL};
    os_err rc = OS_ERR_NOMEM;

    memset(pl, 0, sizeof(*pl));
    if (p->n_sellers < 1 || p->n_sellers > SIM_MAX_SELLERS || p->n_buyers < 1 ||
        p->n_buyers > SIM_MAX_BUYERS || p->concurrency < 1 ||
        p->concurrency > SIM_MAX_CONCURRENCY || p->duration_s < 1 ||
        p->duration_s > SIM_MAX_DURATION_S)
        return OS_ERR_INVALID;
    pl->p = *p;
    pl->sellers = calloc(p->n_sellers, sizeof(*pl->sellers));
    pl->buyers = calloc(p->n_buyers, sizeof(*pl->buyers));
    for (int f = 0; f < 3; f++)
        lv[f] = calloc(p->n_sellers, sizeof(unsigned));
    if (pl->sellers == NULL || pl->buyers == NULL || lv[0] == NULL || lv[1] == NULL ||
        lv[2] == NULL)
        goto out;

    deal_levels(lv[0], p->n_sellers, os_rng_mix(p->seed, D_PRICE));
    deal_levels(lv[1], p->n_sellers, os_rng_mix(p->seed, D_LATENCY));
    deal_levels(lv[2], p->n_sellers, os_rng_mix(p->seed, D_FAIL));
    uint64_t fail_base = os_rng_mix(p->seed, D_FAIL_SEED);
    for (unsigned i = 0; i < p->n_sellers; i++) {
        sim_seller_plan *s = &pl->sellers[i];
        s->price_level = lv[0][i];
        s->latency_level = lv[1][i];
        s->fail_level = lv[2][i];
        s->price_x10 = sim_price_x10[s->price_level];
        /* the multipliers make whole micro-USDC of these bases: exact */
        s->price.input = BASE_INPUT * s->price_x10 / 10;
        s->price.output = BASE_OUTPUT * s->price_x10 / 10;
        s->price.cached = BASE_CACHED * s->price_x10 / 10;
        s->latency_ms = sim_latency_ms[s->latency_level];
        s->fail_ppm = sim_fail_ppm[s->fail_level];
        s->fail_seed = os_rng_mix(fail_base, i);
    }
    uint64_t req_base = os_rng_mix(p->seed, D_REQUEST_SEED);
    uint64_t route_base = os_rng_mix(p->seed, D_ROUTE_SEED);
    for (unsigned b = 0; b < p->n_buyers; b++) {
        pl->buyers[b].request_seed = os_rng_mix(req_base, b);
        /* 0 asks the buyer for a random seed: never hand it that */
        pl->buyers[b].route_seed = os_rng_mix(route_base, b) | 1u;
    }
    rc = OS_OK;
out:
    for (int f = 0; f < 3; f++)
        free(lv[f]);
    if (rc != OS_OK)
        sim_plan_free(pl);
    return rc;
}

void sim_plan_free(sim_plan *pl)
{
    if (pl == NULL)
        return;
    free(pl->sellers);
    free(pl->buyers);
    pl->sellers = NULL;
    pl->buyers = NULL;
}

/* A uint64 as a decimal string (seeds pass jansson's int64 range). */
static json_t *u64_str(uint64_t v)
{
    char b[OS_MONEY_UNITS_LEN];
    if (os_money_format_units(b, sizeof(b), v) != OS_OK)
        return NULL;
    return json_string(b);
}

static json_t *price_json(const os_pricing *p)
{
    json_t *o = json_object();
    if (o == NULL || !os_json_put(o, "input", u64_str(p->input)) ||
        !os_json_put(o, "output", u64_str(p->output)) ||
        !os_json_put(o, "cached", u64_str(p->cached))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* "1", "1.5", "2", "3" from the multiplier times ten. */
static json_t *multiplier_json(unsigned x10)
{
    char b[24];
    if (x10 % 10 == 0)
        snprintf(b, sizeof(b), "%u", x10 / 10);
    else
        snprintf(b, sizeof(b), "%u.%u", x10 / 10, x10 % 10);
    return json_string(b);
}

static json_t *levels_json(void)
{
    json_t *o = json_object(), *a;
    bool ok = o != NULL;
    if (ok && (a = os_json_child(o, "price_multiplier", json_array())) != NULL) {
        for (int l = 0; l < SIM_LEVELS && ok; l++)
            ok = json_array_append_new(a, multiplier_json(sim_price_x10[l])) == 0;
    } else {
        ok = false;
    }
    if (ok && (a = os_json_child(o, "latency_ms", json_array())) != NULL) {
        for (int l = 0; l < SIM_LEVELS && ok; l++)
            ok = json_array_append_new(a, json_integer(sim_latency_ms[l])) == 0;
    } else {
        ok = false;
    }
    if (ok && (a = os_json_child(o, "fail_ppm", json_array())) != NULL) {
        for (int l = 0; l < SIM_LEVELS && ok; l++)
            ok = json_array_append_new(a, json_integer(sim_fail_ppm[l])) == 0;
    } else {
        ok = false;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *requests_json(void)
{
    json_t *o = json_object(), *m, *a;
    bool ok = o != NULL && (m = os_json_child(o, "mix_ppm", json_object())) != NULL;
    for (int k = 0; k < SIM_KINDS && ok; k++)
        ok = os_json_put(m, kind_names[k], json_integer(mix_ppm[k]));
    ok = ok && (a = os_json_child(o, "prompt_words", json_array())) != NULL &&
         json_array_append_new(a, json_integer(WORDS_MIN)) == 0 &&
         json_array_append_new(a, json_integer(WORDS_MAX)) == 0;
    ok = ok && (a = os_json_child(o, "max_tokens", json_array())) != NULL &&
         json_array_append_new(a, json_integer(MAX_TOKENS_MIN)) == 0 &&
         json_array_append_new(a, json_integer(MAX_TOKENS_MAX)) == 0;
    ok = ok && os_json_put(o, "service", json_string("echo"));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *seller_json(const sim_seller_plan *s, unsigned i)
{
    json_t *o = json_object();
    bool ok = o != NULL && os_json_put(o, "index", json_integer(i)) &&
              os_json_put(o, "price_level", json_integer(s->price_level)) &&
              os_json_put(o, "price_multiplier", multiplier_json(s->price_x10)) &&
              os_json_put(o, "price", price_json(&s->price)) &&
              os_json_put(o, "latency_level", json_integer(s->latency_level)) &&
              os_json_put(o, "latency_ms", json_integer(s->latency_ms)) &&
              os_json_put(o, "fail_level", json_integer(s->fail_level)) &&
              os_json_put(o, "fail_ppm", json_integer(s->fail_ppm)) &&
              os_json_put(o, "fail", json_string(s->fail_ppm > 0 ? "500" : "none")) &&
              os_json_put(o, "fail_seed", u64_str(s->fail_seed));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *buyer_json(const sim_buyer_plan *b, unsigned i)
{
    json_t *o = json_object();
    bool ok = o != NULL && os_json_put(o, "index", json_integer(i)) &&
              os_json_put(o, "request_seed", u64_str(b->request_seed)) &&
              os_json_put(o, "route_seed", u64_str(b->route_seed));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sim_plan_json(const sim_plan *pl)
{
    json_t *o = json_object(), *a;
    bool ok = o != NULL && os_json_put(o, "format", json_string("openseed-sim-plan/1")) &&
              os_json_put(o, "seed", u64_str(pl->p.seed)) &&
              os_json_put(o, "duration_s", json_integer(pl->p.duration_s)) &&
              os_json_put(o, "concurrency", json_integer(pl->p.concurrency)) &&
              os_json_put(o, "route", json_string(pl->p.weighted ? "weighted" : "best")) &&
              os_json_put(o, "max_attempts", json_integer(3)) &&
              os_json_put(o, "base_price",
                          price_json(&(os_pricing){BASE_INPUT, BASE_OUTPUT, BASE_CACHED})) &&
              os_json_put(o, "levels", levels_json()) &&
              os_json_put(o, "requests", requests_json()) &&
              os_json_put(o, "buyer_wallet", u64_str(SIM_WALLET_USDC)) &&
              os_json_put(o, "buyer_deposit", u64_str(SIM_DEPOSIT));
    if (ok && (a = os_json_child(o, "sellers", json_array())) != NULL) {
        for (unsigned i = 0; i < pl->p.n_sellers && ok; i++)
            ok = json_array_append_new(a, seller_json(&pl->sellers[i], i)) == 0;
    } else {
        ok = false;
    }
    if (ok && (a = os_json_child(o, "buyers", json_array())) != NULL) {
        for (unsigned b = 0; b < pl->p.n_buyers && ok; b++)
            ok = json_array_append_new(a, buyer_json(&pl->buyers[b], b)) == 0;
    } else {
        ok = false;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

os_err sim_plan_text(char **text, size_t *len, uint8_t digest[32], const sim_plan *pl)
{
    json_t *j = sim_plan_json(pl);
    os_err rc;
    *text = NULL;
    if (j == NULL)
        return OS_ERR_NOMEM;
    rc = os_json_dump_canonical(j, text, len);
    json_decref(j);
    if (rc == OS_OK)
        os_keccak256(digest, *text, *len);
    return rc;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* uniform in [lo, hi] */
static unsigned draw_range(os_rng *r, unsigned lo, unsigned hi)
{
    return lo + (unsigned)os_rng_below(r, (uint64_t)hi - lo + 1);
}

static json_t *user_message(const char *text)
{
    json_t *m = json_object();
    if (m == NULL || !os_json_put(m, "role", json_string("user")) ||
        !os_json_put(m, "content", json_string(text))) {
        json_decref(m);
        return NULL;
    }
    return m;
}

os_err sim_request_make(sim_request *out, const sim_plan *pl, unsigned b, uint64_t k)
{
    os_rng r;
    char text[WORDS_MAX * 8 + 1];
    size_t at = 0;
    json_t *body = json_object(), *msgs;
    bool ok = body != NULL;

    memset(out, 0, sizeof(*out));
    if (b >= pl->p.n_buyers) {
        json_decref(body);
        return OS_ERR_INVALID;
    }
    os_rng_seed(&r, os_rng_mix(pl->buyers[b].request_seed, k));
    uint64_t pick = os_rng_below(&r, 1000000);
    sim_kind kind = SIM_KIND_CHAT;
    for (uint64_t acc = 0; kind < SIM_KINDS; kind++) {
        acc += mix_ppm[kind];
        if (pick < acc)
            break;
    }
    unsigned n_words = draw_range(&r, WORDS_MIN, WORDS_MAX);
    for (unsigned i = 0; i < n_words; i++) {
        const char *w = words[os_rng_below(&r, N_WORDS)];
        int n = snprintf(text + at, sizeof(text) - at, "%s%s", i > 0 ? " " : "", w);
        if (n < 0 || (size_t)n >= sizeof(text) - at)
            break;
        at += (size_t)n;
    }
    unsigned max_tokens = draw_range(&r, MAX_TOKENS_MIN, MAX_TOKENS_MAX);

    ok = ok && os_json_put(body, "model", json_string("echo"));
    switch (kind) {
    case SIM_KIND_CHAT:
    case SIM_KIND_CHAT_STREAM:
        out->path = "/v1/chat/completions";
        ok = ok && (msgs = os_json_child(body, "messages", json_array())) != NULL &&
             json_array_append_new(msgs, user_message(text)) == 0 &&
             os_json_put(body, "max_tokens", json_integer(max_tokens));
        if (kind == SIM_KIND_CHAT_STREAM)
            ok = ok && os_json_put(body, "stream", json_true());
        break;
    case SIM_KIND_MESSAGES:
        out->path = "/v1/messages";
        ok = ok && os_json_put(body, "max_tokens", json_integer(max_tokens)) &&
             (msgs = os_json_child(body, "messages", json_array())) != NULL &&
             json_array_append_new(msgs, user_message(text)) == 0;
        break;
    default:
        kind = SIM_KIND_EMBEDDINGS;
        out->path = "/v1/embeddings";
        ok = ok && os_json_put(body, "input", json_string(text));
        break;
    }
    out->kind = kind;
    if (ok) {
        out->body = json_dumps(body, JSON_COMPACT);
        ok = out->body != NULL;
        if (ok)
            out->len = strlen(out->body);
    }
    json_decref(body);
    return ok ? OS_OK : OS_ERR_NOMEM;
}

void sim_request_free(sim_request *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
