/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulation's report: per-seller traffic share, revenue, settlement and latency (from the
 * buyers' ledgers), per-buyer requests, failovers, spend and deposits, totals, the mean share of
 * each level of each factor and Spearman's rank correlation of share with price, failure rate and
 * latency. Printed as tables, and built as the results JSON (with the plan, its digest, the
 * channels and the reconciliation). Shares and correlations are statistics (doubles); every
 * amount of money stays an integer of micro-USDC.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/hex.h"
#include "openseed/json.h"
#include "openseed/secp.h"

#include "sim.h"

typedef struct seller_sum {
    uint64_t ok, failed, client_ok, channels;
    double share; /* percent of every ok answer */
    uint64_t p50, p95, p99, ttft50;
} seller_sum;

typedef struct buyer_sum {
    uint64_t requests, ok, failed, rows;
    uint64_t kind_requests[SIM_KINDS], kind_ok[SIM_KINDS];
    uint64_t p50, p95; /* client latency of ok answers */
} buyer_sum;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted v[0..n); 0 when empty. */
static uint64_t pct(const uint64_t *v, size_t n, unsigned p)
{
    if (n == 0)
        return 0;
    size_t rank = ((size_t)p * n + 99) / 100;
    return v[rank > 0 ? rank - 1 : 0];
}

/* Ranks of v (1-based; ties share their mean rank). */
static void ranks(double *out, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t below = 0, equal = 0;
        for (size_t j = 0; j < n; j++) {
            below += v[j] < v[i] ? 1 : 0;
            equal += v[j] == v[i] ? 1 : 0;
        }
        out[i] = (double)below + ((double)equal + 1.0) / 2.0;
    }
}

double sim_spearman(const double *x, const double *y, size_t n)
{
    if (n < 2)
        return 0;
    double *rx = malloc(n * sizeof(double)), *ry = malloc(n * sizeof(double));
    double r = 0;
    if (rx != NULL && ry != NULL) {
        ranks(rx, x, n);
        ranks(ry, y, n);
        double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
        for (size_t i = 0; i < n; i++) {
            mx += rx[i];
            my += ry[i];
        }
        mx /= (double)n;
        my /= (double)n;
        for (size_t i = 0; i < n; i++) {
            sxy += (rx[i] - mx) * (ry[i] - my);
            sxx += (rx[i] - mx) * (rx[i] - mx);
            syy += (ry[i] - my) * (ry[i] - my);
        }
        r = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
    }
    free(rx);
    free(ry);
    return r;
}

static json_t *u64_str(uint64_t v)
{
    char b[OS_MONEY_UNITS_LEN];
    if (os_money_format_units(b, sizeof(b), v) != OS_OK)
        return NULL;
    return json_string(b);
}

static const char *usdc(char buf[OS_USDC_LEN], uint64_t v)
{
    if (os_usdc_format(buf, OS_USDC_LEN, v) != OS_OK)
        buf[0] = '\0';
    return buf;
}

static void mult_text(char out[16], unsigned x10)
{
    if (x10 % 10 == 0)
        snprintf(out, 16, "%u", x10 / 10);
    else
        snprintf(out, 16, "%u.%u", x10 / 10, x10 % 10);
}

/* A double rounded to 4 decimals (JSON reals are for statistics only). */
static json_t *real4(double v)
{
    return json_real(round(v * 10000.0) / 10000.0);
}

static os_err seller_sums(const sim *s, seller_sum *out)
{
    unsigned ns = s->plan.p.n_sellers;
    uint64_t total_ok = 0;
    os_err rc = OS_OK;

    for (unsigned i = 0; i < ns; i++) {
        seller_sum *o = &out[i];
        size_t n = 0;
        for (unsigned b = 0; b < s->plan.p.n_buyers; b++)
            for (size_t r = 0; r < s->buyers[b].n_rows; r++)
                n += s->buyers[b].rows[r].seller == (int)i && s->buyers[b].rows[r].ok ? 1 : 0;
        uint64_t *lat = malloc((n > 0 ? n : 1) * sizeof(uint64_t));
        uint64_t *ttft = malloc((n > 0 ? n : 1) * sizeof(uint64_t));
        if (lat == NULL || ttft == NULL) {
            free(lat);
            free(ttft);
            return OS_ERR_NOMEM;
        }
        size_t at = 0;
        for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
            const sim_buyer *by = &s->buyers[b];
            for (size_t r = 0; r < by->n_rows; r++) {
                const sim_row *row = &by->rows[r];
                if (row->seller != (int)i)
                    continue;
                if (row->ok) {
                    lat[at] = row->latency_ms;
                    ttft[at] = row->ttft_ms;
                    at++;
                    o->ok++;
                } else {
                    o->failed++;
                }
            }
            for (size_t r = 0; r < by->n_calls; r++)
                o->client_ok += by->calls[r].ok && by->calls[r].seller == (int)i ? 1 : 0;
        }
        qsort(lat, at, sizeof(uint64_t), cmp_u64);
        qsort(ttft, at, sizeof(uint64_t), cmp_u64);
        o->p50 = pct(lat, at, 50);
        o->p95 = pct(lat, at, 95);
        o->p99 = pct(lat, at, 99);
        o->ttft50 = pct(ttft, at, 50);
        free(lat);
        free(ttft);
        for (size_t k = 0; k < s->n_chans; k++)
            o->channels += s->chans[k].seller == (int)i ? 1 : 0;
        total_ok += o->ok;
    }
    for (unsigned i = 0; i < ns; i++)
        out[i].share = total_ok > 0 ? 100.0 * (double)out[i].ok / (double)total_ok : 0;
    return rc;
}

static os_err buyer_sums(const sim *s, buyer_sum *out)
{
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
        const sim_buyer *by = &s->buyers[b];
        buyer_sum *o = &out[b];
        uint64_t *lat = malloc((by->n_calls > 0 ? by->n_calls : 1) * sizeof(uint64_t));
        size_t at = 0;
        if (lat == NULL)
            return OS_ERR_NOMEM;
        o->requests = by->n_calls;
        o->rows = by->n_rows;
        for (size_t i = 0; i < by->n_calls; i++) {
            const sim_call *c = &by->calls[i];
            o->kind_requests[c->kind < SIM_KINDS ? c->kind : 0]++;
            if (c->ok) {
                o->ok++;
                o->kind_ok[c->kind < SIM_KINDS ? c->kind : 0]++;
                lat[at++] = c->latency_ms;
            }
        }
        o->failed = o->requests - o->ok;
        qsort(lat, at, sizeof(uint64_t), cmp_u64);
        o->p50 = pct(lat, at, 50);
        o->p95 = pct(lat, at, 95);
        free(lat);
    }
    return OS_OK;
}

/* ---- tables -------------------------------------------------------------------------------- */

static void print_sellers(const sim *s, const seller_sum *ss, FILE *out)
{
    char b1[OS_USDC_LEN], b2[OS_USDC_LEN], m[16];
    fprintf(out, "\nsellers\n");
    fprintf(out, "%3s %-10s %5s %5s %5s %6s %6s %7s %10s %10s %5s %5s %5s %6s\n", "idx", "node",
            "price", "lat", "fail", "ok", "failed", "share%", "revenue", "settled", "p50", "p95",
            "p99", "ttft50");
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++) {
        const sim_seller_plan *p = &s->plan.sellers[i];
        const seller_sum *o = &ss[i];
        mult_text(m, p->price_x10);
        fprintf(out,
                "%3u %.10s %4sx %3ums %4.0f%% %6" PRIu64 " %6" PRIu64 " %7.2f %10s %10s %5" PRIu64
                " %5" PRIu64 " %5" PRIu64 " %6" PRIu64 "\n",
                i, s->sellers[i].addr_hex, m, p->latency_ms, (double)p->fail_ppm / 10000.0, o->ok,
                o->failed, o->share, usdc(b1, s->sellers[i].before.earned),
                usdc(b2, s->sellers[i].after.settled), o->p50, o->p95, o->p99, o->ttft50);
    }
    fprintf(out, "(latency and ttft in ms, of the ok answers, from the buyers' ledgers; revenue "
                 "and settled in USDC)\n");
}

static void print_buyers(const sim *s, const buyer_sum *bs, FILE *out)
{
    char b1[OS_USDC_LEN], b2[OS_USDC_LEN];
    fprintf(out, "\nbuyers\n");
    fprintf(out, "%3s %-10s %8s %8s %6s %9s %10s %10s %5s %5s\n", "idx", "wallet", "requests", "ok",
            "failed", "failovers", "spend", "deposits", "p50", "p95");
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
        const buyer_sum *o = &bs[b];
        char w[OS_HEX_LEN(20)];
        if (os_hex_encode(w, sizeof(w), s->buyers[b].wallet, 20, 1) != OS_OK)
            w[0] = '\0';
        fprintf(out,
                "%3u %.10s %8" PRIu64 " %8" PRIu64 " %6" PRIu64 " %9" PRIu64 " %10s %10s %5" PRIu64
                " %5" PRIu64 "\n",
                b, w, o->requests, o->ok, o->failed, s->buyers[b].failovers,
                usdc(b1, s->buyers[b].spend_total), usdc(b2, s->buyers[b].spend_deposited), o->p50,
                o->p95);
    }
    fprintf(out, "(p50 and p95: the clients' latency of ok answers, ms; spend and deposits in "
                 "USDC)\n");
}

/* ---- tiers --------------------------------------------------------------------------------- */

/* Mean share of the sellers at each level of a factor (0: price, 1: latency, 2: failure). */
static void tier_means(const sim *s, const seller_sum *ss, int factor, double mean[SIM_LEVELS],
                       unsigned n[SIM_LEVELS])
{
    for (int l = 0; l < SIM_LEVELS; l++) {
        mean[l] = 0;
        n[l] = 0;
    }
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++) {
        const sim_seller_plan *p = &s->plan.sellers[i];
        unsigned l = factor == 0 ? p->price_level : factor == 1 ? p->latency_level : p->fail_level;
        mean[l] += ss[i].share;
        n[l]++;
    }
    for (int l = 0; l < SIM_LEVELS; l++)
        mean[l] = n[l] > 0 ? mean[l] / n[l] : 0;
}

static json_t *tiers(const sim *s, const seller_sum *ss, FILE *out)
{
    static const char *const names[3] = {"price", "latency", "fail"};
    unsigned ns = s->plan.p.n_sellers;
    double *share = calloc(ns, sizeof(double)), *x = calloc(ns, sizeof(double));
    json_t *o = json_object();
    bool ok = share != NULL && x != NULL && o != NULL;

    fprintf(out, "\ntiers (mean traffic share %% of the sellers at each level)\n");
    for (int f = 0; f < 3 && ok; f++) {
        double mean[SIM_LEVELS];
        unsigned n[SIM_LEVELS];
        json_t *a = os_json_child(o, names[f], json_array());
        tier_means(s, ss, f, mean, n);
        fprintf(out, "%-8s", names[f]);
        for (int l = 0; l < SIM_LEVELS && a != NULL; l++) {
            char label[24];
            if (f == 0) {
                char m[16];
                mult_text(m, sim_price_x10[l]);
                snprintf(label, sizeof(label), "%sx", m);
            } else if (f == 1) {
                snprintf(label, sizeof(label), "%ums", sim_latency_ms[l]);
            } else {
                snprintf(label, sizeof(label), "%g%%", sim_fail_ppm[l] / 10000.0);
            }
            fprintf(out, "  %6s: %6.2f (n=%u)", label, mean[l], n[l]);
            json_t *t = json_object();
            ok = ok && t != NULL && os_json_put(t, "level", json_integer(l)) &&
                 os_json_put(t, "label", json_string(label)) &&
                 os_json_put(t, "sellers", json_integer(n[l])) &&
                 os_json_put(t, "mean_share", real4(mean[l])) && json_array_append_new(a, t) == 0;
        }
        ok = ok && a != NULL;
        fprintf(out, "\n");
    }
    for (unsigned i = 0; ok && i < ns; i++)
        share[i] = ss[i].share;
    for (int f = 0; f < 3 && ok; f++) {
        for (unsigned i = 0; i < ns; i++) {
            const sim_seller_plan *p = &s->plan.sellers[i];
            x[i] = f == 0 ? p->price_x10 : f == 1 ? p->latency_ms : p->fail_ppm;
        }
        double r = sim_spearman(x, share, ns);
        char key[32];
        snprintf(key, sizeof(key), "spearman_%s", names[f]);
        ok = os_json_put(o, key, real4(r));
        fprintf(out, "Spearman(share, %s) = %+.3f\n", names[f], r);
    }
    free(share);
    free(x);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static json_t *sellers_json(const sim *s, const seller_sum *ss)
{
    json_t *a = json_array();
    for (unsigned i = 0; a != NULL && i < s->plan.p.n_sellers; i++) {
        const sim_seller *sl = &s->sellers[i];
        const sim_seller_plan *p = &s->plan.sellers[i];
        const seller_sum *o = &ss[i];
        char m[16];
        json_t *e = json_object(), *lat;
        mult_text(m, p->price_x10);
        bool ok = e != NULL && os_json_put(e, "index", json_integer(i)) &&
                  os_json_put(e, "node", json_string(sl->addr_hex)) &&
                  os_json_put(e, "data_dir", json_string(sl->dir)) &&
                  os_json_put(e, "price_level", json_integer(p->price_level)) &&
                  os_json_put(e, "price_multiplier", json_string(m)) &&
                  os_json_put(e, "latency_level", json_integer(p->latency_level)) &&
                  os_json_put(e, "latency_ms", json_integer(p->latency_ms)) &&
                  os_json_put(e, "fail_level", json_integer(p->fail_level)) &&
                  os_json_put(e, "fail_ppm", json_integer(p->fail_ppm)) &&
                  os_json_put(e, "served_ok", os_json_u64(o->ok)) &&
                  os_json_put(e, "failed_attempts", os_json_u64(o->failed)) &&
                  os_json_put(e, "client_ok", os_json_u64(o->client_ok)) &&
                  os_json_put(e, "share", real4(o->share)) &&
                  os_json_put(e, "channels", os_json_u64(o->channels)) &&
                  os_json_put(e, "revenue", u64_str(sl->before.earned)) &&
                  os_json_put(e, "settled", u64_str(sl->after.settled)) &&
                  os_json_put(e, "usdc_balance", u64_str(sl->usdc)) &&
                  os_json_put(e, "requests", os_json_u64(sl->before.requests)) &&
                  os_json_put(e, "errors", os_json_u64(sl->before.errors)) &&
                  (lat = os_json_child(e, "latency_ms_of_ok", json_object())) != NULL &&
                  os_json_put(lat, "p50", os_json_u64(o->p50)) &&
                  os_json_put(lat, "p95", os_json_u64(o->p95)) &&
                  os_json_put(lat, "p99", os_json_u64(o->p99)) &&
                  os_json_put(e, "ttft_ms_p50", os_json_u64(o->ttft50));
        if (!ok || json_array_append_new(a, e) != 0) {
            if (ok)
                e = NULL; /* append took it */
            json_decref(e);
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *buyers_json(const sim *s, const buyer_sum *bs)
{
    json_t *a = json_array();
    for (unsigned b = 0; a != NULL && b < s->plan.p.n_buyers; b++) {
        const sim_buyer *by = &s->buyers[b];
        const buyer_sum *o = &bs[b];
        char w[OS_ADDRESS_STR_LEN];
        json_t *e = json_object(), *k;
        os_eip55_format(w, by->wallet);
        bool ok = e != NULL && os_json_put(e, "index", json_integer(b)) &&
                  os_json_put(e, "wallet", json_string(w)) &&
                  os_json_put(e, "data_dir", json_string(by->dir)) &&
                  os_json_put(e, "requests", os_json_u64(o->requests)) &&
                  os_json_put(e, "ok", os_json_u64(o->ok)) &&
                  os_json_put(e, "failed", os_json_u64(o->failed)) &&
                  os_json_put(e, "failovers", os_json_u64(by->failovers)) &&
                  os_json_put(e, "ledger_rows", os_json_u64(o->rows)) &&
                  os_json_put(e, "spend", u64_str(by->spend_total)) &&
                  os_json_put(e, "deposits", u64_str(by->spend_deposited)) &&
                  os_json_put(e, "wallet_start", u64_str(by->usdc_start)) &&
                  os_json_put(e, "wallet_end", u64_str(by->usdc_end)) &&
                  os_json_put(e, "latency_ms_p50", os_json_u64(o->p50)) &&
                  os_json_put(e, "latency_ms_p95", os_json_u64(o->p95)) &&
                  (k = os_json_child(e, "by_kind", json_object())) != NULL;
        for (int kind = 0; ok && kind < SIM_KINDS; kind++) {
            json_t *kk = os_json_child(k, sim_kind_name((sim_kind)kind), json_object());
            ok = kk != NULL && os_json_put(kk, "requests", os_json_u64(o->kind_requests[kind])) &&
                 os_json_put(kk, "ok", os_json_u64(o->kind_ok[kind]));
        }
        if (!ok || json_array_append_new(a, e) != 0) {
            if (ok)
                e = NULL;
            json_decref(e);
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *channels_json(const sim *s)
{
    json_t *a = json_array();
    for (size_t k = 0; a != NULL && k < s->n_chans; k++) {
        const sim_channel *c = &s->chans[k];
        json_t *e = json_object();
        bool ok = e != NULL && os_json_put(e, "channel_id", os_json_hex(c->id, 32)) &&
                  os_json_put(e, "buyer", json_integer(c->buyer)) &&
                  os_json_put(e, "seller", json_integer(c->seller)) &&
                  os_json_put(e, "deposit", u64_str(c->c_deposit)) &&
                  os_json_put(e, "consumed", u64_str(c->b_consumed)) &&
                  os_json_put(e, "seller_consumed", u64_str(c->s_consumed)) &&
                  os_json_put(e, "signed", u64_str(c->b_authorized)) &&
                  os_json_put(e, "claimed", u64_str(c->c_claimed)) &&
                  os_json_put(e, "slack",
                              json_integer((json_int_t)c->c_claimed - (json_int_t)c->b_consumed)) &&
                  os_json_put(e, "claim", json_string(sim_claim_kind(c))) &&
                  os_json_put(e, "requests", os_json_u64(c->ledger_rows));
        if (!ok || json_array_append_new(a, e) != 0) {
            if (ok)
                e = NULL;
            json_decref(e);
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

os_err sim_report(sim *s, FILE *out, json_t **results)
{
    unsigned ns = s->plan.p.n_sellers, nb = s->plan.p.n_buyers;
    seller_sum *ss = calloc(ns, sizeof(*ss));
    buyer_sum *bs = calloc(nb, sizeof(*bs));
    json_t *r = json_object(), *tot;
    char *plan_text = NULL;
    size_t plan_len = 0;
    uint8_t digest[32];
    os_err rc = OS_ERR_NOMEM;

    *results = NULL;
    if (ss == NULL || bs == NULL || r == NULL || (rc = seller_sums(s, ss)) != OS_OK ||
        (rc = buyer_sums(s, bs)) != OS_OK ||
        (rc = sim_plan_text(&plan_text, &plan_len, digest, &s->plan)) != OS_OK)
        goto out;

    print_sellers(s, ss, out);
    print_buyers(s, bs, out);

    uint64_t requests = 0, ok = 0, failovers = 0, spend = 0, deposits = 0, earned = 0, claimed = 0;
    int64_t slack = 0;
    bool sums = true;
    for (unsigned b = 0; b < nb; b++) {
        requests += bs[b].requests;
        ok += bs[b].ok;
        failovers += s->buyers[b].failovers;
        sums = os_money_add(&spend, spend, s->buyers[b].spend_total) == OS_OK &&
               os_money_add(&deposits, deposits, s->buyers[b].spend_deposited) == OS_OK && sums;
    }
    for (unsigned i = 0; i < ns; i++)
        sums = os_money_add(&earned, earned, s->sellers[i].before.earned) == OS_OK && sums;
    for (size_t k = 0; k < s->n_chans; k++) {
        sums = os_money_add(&claimed, claimed, s->chans[k].c_claimed) == OS_OK && sums;
        slack += (int64_t)s->chans[k].c_claimed - (int64_t)s->chans[k].b_consumed;
    }
    char b1[OS_USDC_LEN], b2[OS_USDC_LEN], b3[OS_USDC_LEN], b4[OS_USDC_LEN], b5[OS_USDC_LEN];
    fprintf(out,
            "\ntotals: %.1f s, %" PRIu64 " requests, %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64
            " failovers, %zu channels\n"
            "        spend %s USDC, earned %s, deposits %s, claimed %s, escrow holds %s, slack "
            "claimed-consumed %+" PRId64 " micro-USDC%s\n",
            s->drive_s, requests, ok, requests - ok, failovers, s->n_chans, usdc(b1, spend),
            usdc(b2, earned), usdc(b3, deposits), usdc(b4, claimed), usdc(b5, s->escrow_usdc),
            slack, sums ? "" : " (a sum overflowed)");

    /* each value is made inside its put, so a failure part-way leaks nothing */
    json_t *rec;
    bool good = os_json_put(r, "plan", sim_plan_json(&s->plan)) &&
                os_json_put(r, "plan_digest", os_json_hex(digest, 32)) &&
                os_json_put(r, "duration_s", real4(s->drive_s)) &&
                os_json_put(r, "dir", json_string(s->dir)) &&
                os_json_put(r, "sellers", sellers_json(s, ss)) &&
                os_json_put(r, "buyers", buyers_json(s, bs)) &&
                os_json_put(r, "channels", channels_json(s)) &&
                (tot = os_json_child(r, "totals", json_object())) != NULL &&
                os_json_put(tot, "requests", os_json_u64(requests)) &&
                os_json_put(tot, "ok", os_json_u64(ok)) &&
                os_json_put(tot, "failed", os_json_u64(requests - ok)) &&
                os_json_put(tot, "failovers", os_json_u64(failovers)) &&
                os_json_put(tot, "channels", os_json_u64(s->n_chans)) &&
                os_json_put(tot, "spend", u64_str(spend)) &&
                os_json_put(tot, "earned", u64_str(earned)) &&
                os_json_put(tot, "deposits", u64_str(deposits)) &&
                os_json_put(tot, "claimed", u64_str(claimed)) &&
                os_json_put(tot, "escrow_balance", u64_str(s->escrow_usdc)) &&
                os_json_put(tot, "slack", json_integer(slack));
    /* the tiers print even when the JSON could not be built */
    good = os_json_put(r, "tiers", tiers(s, ss, out)) && good;
    good = good && (rec = os_json_child(r, "reconciliation", json_object())) != NULL &&
           os_json_put(rec, "checks", json_incref(s->checks)) &&
           os_json_put(rec, "failed", os_json_u64(s->n_failed)) &&
           os_json_put(rec, "ok", json_boolean(s->n_failed == 0 && s->checks != NULL));
    rc = good ? OS_OK : OS_ERR_NOMEM;
    if (good) {
        *results = r;
        r = NULL;
    }
out:
    json_decref(r);
    free(plan_text);
    free(ss);
    free(bs);
    return rc;
}
