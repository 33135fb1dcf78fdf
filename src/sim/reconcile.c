/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reconciliation: exact integer checks of the money across every node's books and the chain,
 * each recorded as {scope, subject, name, expected, got, ok} and printed with its numbers. Per
 * channel: both ends and the escrow agree on deposit and consumption, the buyer's ledger adds up
 * to its consumption, the escrow's claimed equals what the seller recorded claiming and never
 * exceeds what the buyer signed. Per buyer: ledger, spend and wallet outflow against its
 * channels. Per seller: earned, settled and its USDC balance against the channels paying it.
 * Totals: the escrow holds exactly deposits minus claims, and every micro-USDC that left the
 * buyers' wallets is in a seller's balance or the escrow.
 *
 * What a claim takes (docs/protocol.md §10.11): the seller redeems the voucher of the highest
 * amount not above consumed plus the last charged request's slack (estimate - cost), so claimed -
 * consumed is that signed-but-unspent slack, reported per channel and in all. Checked exactly:
 * the escrow's lastNonce and claimed are the voucher the seller recorded claiming with, and that
 * voucher is one the buyer signed (same nonce, same amount, from the buyer's ledger). Counted,
 * not judged: whether it is the buyer's latest voucher on the channel; it is not when the newest
 * request cost nothing (an upstream failure, whose voucher stays unredeemed) or when the last
 * requests overlapped (a voucher covering another request's estimate in flight is above the
 * bound); the buyer's API does not say which voucher paid for which request, so the seller's
 * choice is not recomputed here.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/hex.h"
#include "openseed/json.h"

#include "sim.h"

typedef struct line {
    char text[1024];
    size_t len;
    bool ok;
} line;

static void line_start(line *l, const char *title)
{
    l->ok = true;
    int n = snprintf(l->text, sizeof(l->text), "%s", title);
    l->len = n > 0 && (size_t)n < sizeof(l->text) ? (size_t)n : 0;
}

static void line_add(line *l, const char *part)
{
    int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "  %s", part);
    if (n > 0 && (size_t)n < sizeof(l->text) - l->len)
        l->len += (size_t)n;
}

static void line_end(line *l, FILE *out)
{
    fprintf(out, "%-9s %s\n", l->ok ? "ok" : "MISMATCH", l->text);
}

static json_t *u64_str(uint64_t v)
{
    char b[OS_MONEY_UNITS_LEN];
    if (os_money_format_units(b, sizeof(b), v) != OS_OK)
        return NULL;
    return json_string(b);
}

/* Records one check in s->checks and its numbers on the line. */
static void record(sim *s, line *l, const char *scope, const char *subject, const char *name,
                   json_t *expected, json_t *got, bool ok, const char *shown)
{
    json_t *c = json_object();
    if (c == NULL || !os_json_put(c, "scope", json_string(scope)) ||
        !os_json_put(c, "subject", json_string(subject)) ||
        !os_json_put(c, "name", json_string(name)) || !os_json_put(c, "expected", expected) ||
        !os_json_put(c, "got", got) || !os_json_put(c, "ok", json_boolean(ok)) ||
        json_array_append_new(s->checks, c) != 0) {
        json_decref(c);
        ok = false; /* an unrecorded check is not a passed one */
    } else {
        expected = got = NULL;
    }
    json_decref(expected);
    json_decref(got);
    s->n_checks++;
    if (!ok) {
        s->n_failed++;
        l->ok = false;
    }
    char part[256];
    snprintf(part, sizeof(part), "%s%s", shown, ok ? "" : " <-- MISMATCH");
    line_add(l, part);
}

/* expected == got */
static void eq(sim *s, line *l, const char *scope, const char *subject, const char *name,
               const char *lhs, uint64_t expected, const char *rhs, uint64_t got)
{
    char shown[256];
    snprintf(shown, sizeof(shown), "%s: %s %" PRIu64 " %s %s %" PRIu64, name, lhs, expected,
             expected == got ? "==" : "!=", rhs, got);
    record(s, l, scope, subject, name, u64_str(expected), u64_str(got), expected == got, shown);
}

static void truth(sim *s, line *l, const char *scope, const char *subject, const char *name,
                  bool ok, const char *shown)
{
    record(s, l, scope, subject, name, json_true(), json_boolean(ok), ok, shown);
}

static void hex_id(char out[OS_HEX_LEN(32)], const uint8_t id[32])
{
    if (os_hex_encode(out, OS_HEX_LEN(32), id, 32, 1) != OS_OK)
        out[0] = '\0';
}

/* ---- per channel --------------------------------------------------------------------------- */

const char *sim_claim_kind(const sim_channel *c)
{
    /* a voucher list that holds every voucher and none on this channel: nothing was signed */
    if (!c->has_latest)
        return c->c_claimed == 0 && c->ledger_rows == 0 ? "latest" : "unlisted";
    if (c->c_claimed == c->latest_cumulative)
        return "latest";
    if (c->ledger_rows > 0 && c->last_cost == 0)
        return "newest_uncharged";
    return "overlap";
}

typedef struct claim_tally {
    size_t exact, last_uncharged, other;
    size_t old;    /* channels whose vouchers are older than the buyer's voucher list */
    int64_t slack; /* sum of claimed - consumed */
} claim_tally;

static void channel_checks(sim *s, FILE *out, const sim_channel *c, claim_tally *t)
{
    char id[OS_HEX_LEN(32)], title[96], part[192];
    line l;

    hex_id(id, c->id);
    snprintf(title, sizeof(title), "channel %.12s buyer%d->seller%02d", id, c->buyer, c->seller);
    line_start(&l, title);
    truth(s, &l, "channel", id, "known to its buyer and its seller",
          c->in_buyer && c->in_seller && c->buyer >= 0 && c->seller >= 0,
          c->in_buyer && c->in_seller ? "both ends" : "known to one end only");
    eq(s, &l, "channel", id, "consumed", "buyer", c->b_consumed, "seller", c->s_consumed);
    eq(s, &l, "channel", id, "ledger", "buyer consumed", c->b_consumed, "sum of its ledger",
       c->ledger_cost);
    eq(s, &l, "channel", id, "deposit", "buyer", c->b_deposit, "seller", c->s_deposit);
    eq(s, &l, "channel", id, "deposit on chain", "buyer", c->b_deposit, "escrow", c->c_deposit);
    bool parties = c->on_chain && c->buyer >= 0 && c->seller >= 0 &&
                   memcmp(c->c_payer, s->buyers[c->buyer].wallet, 20) == 0 &&
                   memcmp(c->c_seller, s->sellers[c->seller].addr, 20) == 0;
    truth(s, &l, "channel", id, "escrow payer and seller", parties,
          parties ? "escrow parties match" : "escrow parties differ");
    eq(s, &l, "channel", id, "claimed", "escrow", c->c_claimed, "seller recorded", c->s_claimed);
    snprintf(part, sizeof(part), "claimed %" PRIu64 " <= signed %" PRIu64, c->c_claimed,
             c->b_authorized);
    truth(s, &l, "channel", id, "claimed <= signed", c->c_claimed <= c->b_authorized, part);

    /* the escrow redeemed a voucher the buyer signed, the one the seller says it claimed with */
    bool unlisted = false;
    if (c->c_claimed > 0) {
        eq(s, &l, "channel", id, "redeemed nonce", "escrow lastNonce", c->c_last_nonce,
           "seller's claim", c->s_claim_nonce);
        eq(s, &l, "channel", id, "redeemed amount", "escrow claimed", c->c_claimed,
           "seller's claim voucher", c->s_claim_cumulative);
        const sim_voucher *v = NULL;
        const sim_buyer *by = c->buyer >= 0 ? &s->buyers[c->buyer] : NULL;
        for (size_t i = 0; by != NULL && i < by->n_vouchers; i++)
            if (by->vouchers[i].nonce == c->c_last_nonce &&
                memcmp(by->vouchers[i].channel, c->id, 32) == 0)
                v = &by->vouchers[i];
        if (v != NULL) {
            eq(s, &l, "channel", id, "redeemed voucher signed by the buyer",
               "buyer's voucher at that nonce", v->cumulative, "escrow claimed", c->c_claimed);
        } else if (by == NULL || by->vouchers_all) {
            truth(s, &l, "channel", id, "redeemed voucher signed by the buyer", false,
                  "the buyer signed no voucher with that nonce");
        } else {
            unlisted = true;
            line_add(&l, "redeemed voucher older than the buyer's newest 1000: not compared");
        }
    }
    int64_t slack = (int64_t)c->c_claimed - (int64_t)c->b_consumed;
    t->slack += slack;
    const char *kind = sim_claim_kind(c);
    if (strcmp(kind, "latest") == 0)
        t->exact++;
    else if (strcmp(kind, "newest_uncharged") == 0)
        t->last_uncharged++;
    else if (strcmp(kind, "overlap") == 0)
        t->other++;
    if (unlisted || strcmp(kind, "unlisted") == 0)
        t->old++;
    snprintf(part, sizeof(part), "slack claimed-consumed %+" PRId64 " (claim: %s)", slack, kind);
    line_add(&l, part);
    line_end(&l, out);
}

/* ---- per buyer ----------------------------------------------------------------------------- */

static void buyer_checks(sim *s, FILE *out, unsigned b)
{
    sim_buyer *by = &s->buyers[b];
    char subject[16];
    uint64_t consumed = 0, deposits = 0, ledger = 0, ledger_ok = 0, client_ok = 0;
    bool sums = true;
    line l;

    snprintf(subject, sizeof(subject), "buyer%u", b);
    for (size_t k = 0; k < s->n_chans; k++) {
        const sim_channel *c = &s->chans[k];
        if (c->in_buyer && c->buyer == (int)b)
            sums = os_money_add(&consumed, consumed, c->b_consumed) == OS_OK &&
                   os_money_add(&deposits, deposits, c->b_deposit) == OS_OK && sums;
    }
    for (size_t i = 0; i < by->n_rows; i++) {
        sums = os_money_add(&ledger, ledger, by->rows[i].cost) == OS_OK && sums;
        ledger_ok += by->rows[i].ok ? 1 : 0;
    }
    for (size_t i = 0; i < by->n_calls; i++)
        client_ok += by->calls[i].ok ? 1 : 0;
    uint64_t outflow = by->usdc_start >= by->usdc_end ? by->usdc_start - by->usdc_end : 0;

    line_start(&l, subject);
    truth(s, &l, "buyer", subject, "sums fit in 64 bits", sums, sums ? "sums fit" : "overflow");
    eq(s, &l, "buyer", subject, "ledger", "sum of charges", ledger, "sum of channels consumed",
       consumed);
    eq(s, &l, "buyer", subject, "spend", "total spent", by->spend_total, "sum of channels consumed",
       consumed);
    eq(s, &l, "buyer", subject, "deposits", "total deposited", by->spend_deposited,
       "sum of channel deposits", deposits);
    eq(s, &l, "buyer", subject, "wallet", "USDC out of the wallet", outflow,
       "sum of channel deposits", deposits);
    eq(s, &l, "buyer", subject, "answers", "clients' ok answers", client_ok, "ledger ok rows",
       ledger_ok);
    truth(s, &l, "buyer", subject, "every client request recorded", !by->calls_full,
          by->calls_full ? "client records full" : "all recorded");
    line_end(&l, out);
}

/* ---- per seller ---------------------------------------------------------------------------- */

static void seller_checks(sim *s, FILE *out, unsigned i)
{
    sim_seller *sl = &s->sellers[i];
    char subject[16];
    uint64_t consumed = 0, claimed = 0, ledger_ok = 0, client_ok = 0;
    bool sums = true;
    line l;

    snprintf(subject, sizeof(subject), "seller%02u", i);
    for (size_t k = 0; k < s->n_chans; k++) {
        const sim_channel *c = &s->chans[k];
        if (c->seller == (int)i)
            sums = os_money_add(&consumed, consumed, c->b_consumed) == OS_OK &&
                   os_money_add(&claimed, claimed, c->c_claimed) == OS_OK && sums;
    }
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
        const sim_buyer *by = &s->buyers[b];
        for (size_t r = 0; r < by->n_rows; r++)
            ledger_ok += by->rows[r].ok && by->rows[r].seller == (int)i ? 1 : 0;
        for (size_t r = 0; r < by->n_calls; r++)
            client_ok += by->calls[r].ok && by->calls[r].seller == (int)i ? 1 : 0;
    }

    line_start(&l, subject);
    truth(s, &l, "seller", subject, "sums fit in 64 bits", sums, sums ? "sums fit" : "overflow");
    eq(s, &l, "seller", subject, "earned", "stats.earned", sl->before.earned,
       "buyers' consumed on its channels", consumed);
    eq(s, &l, "seller", subject, "earned after settling", "before", sl->before.earned, "after",
       sl->after.earned);
    truth(s, &l, "seller", subject, "settle", sl->settle_rc == OS_OK,
          sl->settle_rc == OS_OK ? "settled" : os_strerror(sl->settle_rc));
    eq(s, &l, "seller", subject, "settled", "stats.settled", sl->after.settled,
       "escrow claimed on its channels", claimed);
    eq(s, &l, "seller", subject, "settle paid", "os_seller_node_settle", sl->settle_claimed,
       "escrow claimed", claimed);
    eq(s, &l, "seller", subject, "balance", "USDC balance", sl->usdc, "escrow claimed", claimed);
    eq(s, &l, "seller", subject, "served", "ledger ok rows", ledger_ok, "clients' ok answers",
       client_ok);
    line_end(&l, out);
}

/* ---- totals -------------------------------------------------------------------------------- */

static void total_checks(sim *s, FILE *out, const claim_tally *t)
{
    uint64_t deposits = 0, claimed = 0, spend = 0, earned = 0, outflow = 0, balances = 0;
    bool sums = true;
    line l;

    for (size_t k = 0; k < s->n_chans; k++)
        sums = os_money_add(&deposits, deposits, s->chans[k].c_deposit) == OS_OK &&
               os_money_add(&claimed, claimed, s->chans[k].c_claimed) == OS_OK && sums;
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
        const sim_buyer *by = &s->buyers[b];
        uint64_t o = by->usdc_start >= by->usdc_end ? by->usdc_start - by->usdc_end : 0;
        sums = os_money_add(&spend, spend, by->spend_total) == OS_OK &&
               os_money_add(&outflow, outflow, o) == OS_OK && sums;
    }
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++)
        sums = os_money_add(&earned, earned, s->sellers[i].before.earned) == OS_OK &&
               os_money_add(&balances, balances, s->sellers[i].usdc) == OS_OK && sums;
    uint64_t held = deposits >= claimed ? deposits - claimed : 0;
    uint64_t where = 0;
    sums = os_money_add(&where, balances, s->escrow_usdc) == OS_OK && sums;

    line_start(&l, "totals");
    truth(s, &l, "total", "all", "every read succeeded", s->collect_ok,
          s->collect_ok ? "every book read" : "some reads failed (see stderr)");
    truth(s, &l, "total", "all", "sums fit in 64 bits", sums && deposits >= claimed,
          sums ? "sums fit" : "overflow");
    eq(s, &l, "total", "all", "escrow", "escrow USDC", s->escrow_usdc, "deposits - claimed", held);
    eq(s, &l, "total", "all", "spend", "buyers' spend", spend, "sellers' earned", earned);
    eq(s, &l, "total", "all", "conservation", "USDC out of the wallets", outflow,
       "sellers' USDC + escrow USDC", where);
    line_end(&l, out);
    fprintf(
        out,
        "info      claims: %zu channels redeemed the buyer's latest voucher, %zu an earlier one "
        "as the newest request cost nothing, %zu an earlier one after overlapping last "
        "requests, %zu not compared (vouchers older than the buyers' lists); slack "
        "claimed-consumed %+" PRId64 " micro-USDC in all\n",
        t->exact, t->last_uncharged, t->other, t->old, t->slack);
}

os_err sim_reconcile(sim *s, FILE *out)
{
    claim_tally t = {0};
    json_decref(s->checks);
    s->checks = json_array();
    s->n_checks = s->n_failed = 0;
    if (s->checks == NULL)
        return OS_ERR_NOMEM;
    fprintf(out, "\nreconciliation\n");
    for (size_t k = 0; k < s->n_chans; k++)
        channel_checks(s, out, &s->chans[k], &t);
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++)
        buyer_checks(s, out, b);
    for (unsigned i = 0; i < s->plan.p.n_sellers; i++)
        seller_checks(s, out, i);
    total_checks(s, out, &t);
    fprintf(out, "%s: %zu checks, %zu failed\n", s->n_failed == 0 ? "RECONCILED" : "MISMATCH",
            s->n_checks, s->n_failed);
    return OS_OK;
}
