/* SPDX-License-Identifier: Apache-2.0 */
/*
 * After the clients stop: every node's own books, then the chain. Each buyer, once idle, gives its
 * channels (/openseed/v1/channels), its whole ledger (/openseed/v1/ledger, every page), its spend
 * totals (/openseed/v1/spend) and its failover counter (/metrics). Each seller gives
 * os_seller_node_stats and its channels (/admin/v1/channels, with the admin token from its data
 * directory); then every seller settles (os_seller_node_settle), gives its stats again and the
 * claims it recorded (/admin/v1/settlements). Last the escrow: getChannel of every channel either
 * side knows, and the TestUSDC balances of sellers, buyers' wallets and the escrow. Nothing is
 * judged here (reconcile.c does); a read that fails is said and leaves collect_ok false.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/ct.h"
#include "openseed/escrow.h"
#include "openseed/hex.h"
#include "openseed/json.h"

#include "sim.h"

#define IDLE_TIMEOUT_MS 30000
#define LEDGER_PAGE SIM_VOUCHERS_LISTED
#define TOKEN_MAX 300

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A micro-USDC amount as the APIs write it: a decimal string, or a JSON integer. */
static bool money(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    return os_money_parse_json(out, v) == OS_OK;
}

static bool count(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool hex_field(uint8_t *out, size_t len, const json_t *obj, const char *key)
{
    const char *t = json_string_value(json_object_get(obj, key));
    return t != NULL && os_hex_decode_exact(out, len, t) == OS_OK;
}

/* GET url (with a Bearer token when given); the parsed answer of a 200, else NULL (said). */
static json_t *get_json(sim *s, const char *url, const char *token)
{
    char auth[TOKEN_MAX + 32];
    os_http_header h = {"Authorization", auth};
    os_http_client_error err;
    json_t *j = NULL;
    long status = 0;

    if (token != NULL)
        snprintf(auth, sizeof(auth), "Bearer %s", token);
    os_err rc = os_http_client_json(s->http, &status, &j, &err, "GET", url, NULL,
                                    token != NULL ? &h : NULL, token != NULL ? 1 : 0);
    os_wipe(auth, sizeof(auth));
    if (rc != OS_OK || status != 200 || j == NULL) {
        sim_say("GET %s: %s (status %ld)", url, rc != OS_OK ? err.message : "bad answer", status);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The channel with this id, added (unknown ends -1) when new; NULL when the table is full. */
static sim_channel *chan_for(sim *s, const uint8_t id[32], size_t *index)
{
    for (size_t i = 0; i < s->n_chans; i++)
        if (memcmp(s->chans[i].id, id, 32) == 0) {
            if (index != NULL)
                *index = i;
            return &s->chans[i];
        }
    if (s->n_chans >= SIM_MAX_CHANNELS)
        return NULL;
    sim_channel *g = realloc(s->chans, (s->n_chans + 1) * sizeof(*g));
    if (g == NULL)
        return NULL;
    s->chans = g;
    sim_channel *c = &s->chans[s->n_chans];
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, 32);
    c->buyer = c->seller = -1;
    if (index != NULL)
        *index = s->n_chans;
    s->n_chans++;
    return c;
}

/* ---- buyers -------------------------------------------------------------------------------- */

static bool buyer_idle(sim *s, sim_buyer *by)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/openseed/v1/channels", (unsigned)by->port);
    for (long t = 0; t < IDLE_TIMEOUT_MS; t += 100) {
        json_t *j = get_json(s, url, NULL), *c;
        size_t i;
        bool busy = j == NULL;
        json_array_foreach(json_object_get(j, "channels"), i, c)
        {
            uint64_t fl = 0;
            if (!money(json_object_get(c, "in_flight"), &fl) || fl != 0)
                busy = true;
        }
        json_decref(j);
        if (!busy)
            return true;
        sleep_ms(100);
    }
    return false;
}

static bool buyer_channels(sim *s, unsigned b)
{
    sim_buyer *by = &s->buyers[b];
    char url[128];
    json_t *c;
    size_t i;
    bool ok = true;

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/openseed/v1/channels", (unsigned)by->port);
    json_t *j = get_json(s, url, NULL);
    if (j == NULL)
        return false;
    json_array_foreach(json_object_get(j, "channels"), i, c)
    {
        uint8_t id[32], seller[20];
        sim_channel *ch;
        if (!hex_field(id, 32, c, "channel_id") || !hex_field(seller, 20, c, "seller") ||
            (ch = chan_for(s, id, NULL)) == NULL ||
            !money(json_object_get(c, "deposit"), &ch->b_deposit) ||
            !money(json_object_get(c, "consumed"), &ch->b_consumed) ||
            !money(json_object_get(c, "authorized"), &ch->b_authorized)) {
            sim_say("buyer%u: channel %zu is malformed", b, i);
            ok = false;
            continue;
        }
        ch->in_buyer = true;
        ch->buyer = (int)b;
        ch->seller = sim_seller_index(s, seller);
    }
    json_decref(j);
    return ok;
}

static bool ledger_row(sim *s, sim_row *r, const json_t *o)
{
    uint8_t seller[20], id[32];
    const char *outcome = json_string_value(json_object_get(o, "outcome"));
    if (outcome == NULL || !count(json_object_get(o, "id"), &r->id) ||
        !hex_field(seller, 20, o, "seller") || !hex_field(id, 32, o, "channel_id") ||
        !money(json_object_get(o, "estimate"), &r->estimate) ||
        !money(json_object_get(o, "cost"), &r->cost) ||
        !count(json_object_get(o, "latency_ms"), &r->latency_ms) ||
        !count(json_object_get(o, "ttft_ms"), &r->ttft_ms))
        return false;
    r->seller = sim_seller_index(s, seller);
    r->ok = strcmp(outcome, "ok") == 0;
    r->chan = SIZE_MAX;
    for (size_t i = 0; i < s->n_chans; i++)
        if (memcmp(s->chans[i].id, id, 32) == 0)
            r->chan = i;
    return true;
}

/* The ledger's "vouchers": the newest it signed, whatever the page. */
static bool buyer_vouchers(sim_buyer *by, const json_t *list)
{
    const json_t *v;
    size_t i;
    if (!json_is_array(list))
        return false;
    by->vouchers = calloc(json_array_size(list) + 1, sizeof(*by->vouchers));
    if (by->vouchers == NULL)
        return false;
    by->vouchers_all = json_array_size(list) < SIM_VOUCHERS_LISTED;
    json_array_foreach(list, i, v)
    {
        sim_voucher *o = &by->vouchers[by->n_vouchers];
        if (!hex_field(o->channel, 32, v, "channel_id") ||
            !count(json_object_get(v, "nonce"), &o->nonce) ||
            !money(json_object_get(v, "cumulative"), &o->cumulative))
            return false;
        by->n_vouchers++;
    }
    return true;
}

static bool buyer_ledger(sim *s, unsigned b)
{
    sim_buyer *by = &s->buyers[b];
    uint64_t total = 0, offset = 0;
    bool ok = true;

    do {
        char url[160];
        json_t *o;
        size_t i;
        snprintf(url, sizeof(url),
                 "http://127.0.0.1:%u/openseed/v1/ledger?limit=%d&offset=%" PRIu64,
                 (unsigned)by->port, LEDGER_PAGE, offset);
        json_t *j = get_json(s, url, NULL);
        const json_t *reqs = json_object_get(j, "requests");
        if (j == NULL || !count(json_object_get(j, "total"), &total) || !json_is_array(reqs) ||
            json_array_size(reqs) == 0) {
            ok = j != NULL && offset >= total;
            json_decref(j);
            break;
        }
        if (offset == 0 && !buyer_vouchers(by, json_object_get(j, "vouchers")))
            ok = false;
        sim_row *g = realloc(by->rows, (by->n_rows + json_array_size(reqs)) * sizeof(*g));
        if (g == NULL) {
            json_decref(j);
            return false;
        }
        by->rows = g;
        json_array_foreach(reqs, i, o)
        {
            if (ledger_row(s, &by->rows[by->n_rows], o))
                by->n_rows++;
            else
                ok = false;
        }
        offset += json_array_size(reqs);
        json_decref(j);
    } while (offset < total);
    if (!ok)
        sim_say("buyer%u: ledger incomplete (%zu of %" PRIu64 " rows)", b, by->n_rows, total);
    /* per channel: the latest voucher signed (the highest nonce) */
    for (size_t i = 0; i < by->n_vouchers; i++) {
        const sim_voucher *v = &by->vouchers[i];
        for (size_t k = 0; k < s->n_chans; k++) {
            sim_channel *c = &s->chans[k];
            if (memcmp(c->id, v->channel, 32) != 0)
                continue;
            if (!c->has_latest || v->nonce > c->latest_nonce) {
                c->has_latest = true;
                c->latest_nonce = v->nonce;
                c->latest_cumulative = v->cumulative;
            }
        }
    }
    /* per channel: the sum of the charges, and the newest request (ids grow with time) */
    for (size_t i = 0; i < by->n_rows; i++) {
        const sim_row *r = &by->rows[i];
        if (r->chan == SIZE_MAX)
            continue;
        sim_channel *c = &s->chans[r->chan];
        c->ledger_rows++;
        if (os_money_add(&c->ledger_cost, c->ledger_cost, r->cost) != OS_OK)
            ok = false;
        if (r->id >= c->last_id) {
            c->last_id = r->id;
            c->last_cost = r->cost;
        }
    }
    return ok;
}

static bool buyer_spend(sim *s, unsigned b)
{
    sim_buyer *by = &s->buyers[b];
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/openseed/v1/spend", (unsigned)by->port);
    json_t *j = get_json(s, url, NULL);
    const json_t *t = json_object_get(j, "total");
    bool ok = j != NULL && money(json_object_get(t, "spent"), &by->spend_total) &&
              money(json_object_get(t, "deposited"), &by->spend_deposited);
    json_decref(j);
    return ok;
}

/* The value of a counter without labels in Prometheus text. */
static bool metric(const char *text, size_t len, const char *name, uint64_t *out)
{
    size_t nl = strlen(name);
    for (size_t at = 0; at < len;) {
        const char *line = text + at;
        const char *end = memchr(line, '\n', len - at);
        size_t ll = end != NULL ? (size_t)(end - line) : len - at;
        if (ll > nl + 1 && memcmp(line, name, nl) == 0 && line[nl] == ' ') {
            char num[32];
            size_t vl = ll - nl - 1;
            if (vl == 0 || vl >= sizeof(num))
                return false;
            memcpy(num, line + nl + 1, vl);
            num[vl] = '\0';
            return os_money_parse_units(out, num) == OS_OK;
        }
        at += ll + 1;
    }
    return false;
}

static bool buyer_failovers(sim *s, unsigned b)
{
    sim_buyer *by = &s->buyers[b];
    char url[128];
    os_http_client_res res;
    os_http_client_error err;
    bool ok = false;

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", (unsigned)by->port);
    os_http_client_res_init(&res);
    if (os_http_client_do(s->http, &res, &err, &(os_http_client_req){.url = url}) == OS_OK &&
        res.status == 200)
        ok = metric((const char *)res.body.data, res.body.len, "openseed_buyer_failovers_total",
                    &by->failovers);
    os_http_client_res_free(&res);
    if (!ok)
        sim_say("buyer%u: no openseed_buyer_failovers_total in /metrics", b);
    return ok;
}

/* ---- sellers ------------------------------------------------------------------------------- */

static bool admin_token(const sim_seller *sl, char tok[TOKEN_MAX])
{
    char path[SIM_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/admin.token", sl->dir);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return false;
    size_t len = fread(tok, 1, TOKEN_MAX - 1, fp);
    fclose(fp);
    while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r'))
        len--;
    tok[len] = '\0';
    return len > 0;
}

static json_t *admin_get(sim *s, unsigned i, const char *path)
{
    sim_seller *sl = &s->sellers[i];
    char tok[TOKEN_MAX], url[160];
    json_t *j = NULL;
    if (!admin_token(sl, tok)) {
        sim_say("seller%02u: no admin token in %s", i, sl->dir);
        return NULL;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)sl->admin_port, path);
    j = get_json(s, url, tok);
    os_wipe(tok, sizeof(tok));
    return j;
}

static bool seller_channels(sim *s, unsigned i)
{
    json_t *j = admin_get(s, i, "/admin/v1/channels"), *c;
    size_t k;
    bool ok = j != NULL;
    json_array_foreach(json_object_get(j, "channels"), k, c)
    {
        uint8_t id[32];
        sim_channel *ch;
        const json_t *lv = json_object_get(c, "latest_voucher");
        if (!hex_field(id, 32, c, "channel_id") || (ch = chan_for(s, id, NULL)) == NULL ||
            !money(json_object_get(c, "deposit"), &ch->s_deposit) ||
            !money(json_object_get(c, "consumed"), &ch->s_consumed) ||
            (json_is_object(lv) && !money(json_object_get(lv, "cumulative"), &ch->s_latest))) {
            sim_say("seller%02u: channel %zu is malformed", i, k);
            ok = false;
            continue;
        }
        if (ch->in_seller) { /* two sellers claim one channel: the reconciliation says so */
            ch->seller = -1;
            continue;
        }
        ch->in_seller = true;
        if (ch->seller < 0 && !ch->in_buyer)
            ch->seller = (int)i;
        else if (ch->seller != (int)i)
            ch->seller = -1;
    }
    json_decref(j);
    return ok;
}

static bool seller_settlements(sim *s, unsigned i)
{
    json_t *j = admin_get(s, i, "/admin/v1/settlements?limit=1000"), *o;
    size_t k;
    bool ok = j != NULL;
    json_array_foreach(json_object_get(j, "settlements"), k, o)
    {
        uint8_t id[32];
        uint64_t amount;
        uint64_t nonce, cumulative;
        sim_channel *ch;
        const char *st = json_string_value(json_object_get(o, "status"));
        if (st == NULL || !hex_field(id, 32, o, "channel_id") ||
            !money(json_object_get(o, "amount"), &amount) ||
            !count(json_object_get(o, "nonce"), &nonce) ||
            !money(json_object_get(o, "cumulative"), &cumulative) ||
            (ch = chan_for(s, id, NULL)) == NULL) {
            sim_say("seller%02u: settlement %zu is malformed", i, k);
            ok = false;
            continue;
        }
        if (strcmp(st, "confirmed") != 0)
            continue;
        if (os_money_add(&ch->s_claimed, ch->s_claimed, amount) != OS_OK)
            ok = false;
        if (cumulative >= ch->s_claim_cumulative) {
            ch->s_claim_cumulative = cumulative;
            ch->s_claim_nonce = nonce;
        }
    }
    if (json_array_size(json_object_get(j, "settlements")) >= 1000) {
        sim_say("seller%02u: 1000 settlements or more: the list is cut", i);
        ok = false;
    }
    json_decref(j);
    return ok;
}

/* ---- all ----------------------------------------------------------------------------------- */

os_err sim_collect(sim *s)
{
    bool ok = true;
    os_chain *ch = os_devchain_chain(s->chain);
    os_chain_error cerr;

    sim_say("collecting the books");
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
        if (!buyer_idle(s, &s->buyers[b])) {
            sim_say("buyer%u: still has requests in flight after %d s", b, IDLE_TIMEOUT_MS / 1000);
            ok = false;
        }
        ok = buyer_channels(s, b) && ok;
    }
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
        ok = buyer_ledger(s, b) && ok;
        ok = buyer_spend(s, b) && ok;
        ok = buyer_failovers(s, b) && ok;
    }
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++) {
        sim_seller *sl = &s->sellers[i];
        if (os_seller_node_stats(sl->node, &sl->before) != OS_OK) {
            sim_say("seller%02u: no stats", i);
            ok = false;
        }
        ok = seller_channels(s, i) && ok;
    }

    sim_say("settling every seller");
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++) {
        sim_seller *sl = &s->sellers[i];
        sl->settle_rc = os_seller_node_settle(sl->node, &sl->settle_claimed);
        if (sl->settle_rc != OS_OK) {
            sim_say("seller%02u: settle: %s", i, os_strerror(sl->settle_rc));
            ok = false;
        }
        if (os_seller_node_stats(sl->node, &sl->after) != OS_OK) {
            sim_say("seller%02u: no stats after settling", i);
            ok = false;
        }
        ok = seller_settlements(s, i) && ok;
    }

    sim_say("reading the chain");
    for (size_t k = 0; k < s->n_chans; k++) {
        sim_channel *c = &s->chans[k];
        os_channel_state st;
        os_err rc = os_escrow_get_channel(ch, &st, &cerr, s->escrow, c->id);
        if (rc != OS_OK) {
            char hex[OS_HEX_LEN(32)];
            if (os_hex_encode(hex, sizeof(hex), c->id, 32, 1) != OS_OK)
                hex[0] = '\0';
            sim_say("getChannel %s: %s", hex, os_strerror(rc));
            continue; /* on_chain stays false: a check says so */
        }
        c->on_chain = true;
        memcpy(c->c_payer, st.payer, 20);
        memcpy(c->c_seller, st.seller, 20);
        c->c_deposit = st.deposit;
        c->c_claimed = st.claimed;
        c->c_last_nonce = st.last_nonce;
    }
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++)
        if (os_devchain_usdc_balance(s->chain, &s->sellers[i].usdc, s->sellers[i].addr) != OS_OK)
            ok = false;
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++)
        if (os_devchain_usdc_balance(s->chain, &s->buyers[b].usdc_end, s->buyers[b].wallet) !=
            OS_OK)
            ok = false;
    if (os_devchain_usdc_balance(s->chain, &s->escrow_usdc, s->escrow) != OS_OK)
        ok = false;
    s->collect_ok = ok;
    return OS_OK;
}
