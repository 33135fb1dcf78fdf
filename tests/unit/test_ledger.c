/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's ledger (src/seller/ledger.c) on real SQLite files in a fresh temporary directory:
 * persistence across reopen, a crash between accept and finish (the request comes back
 * "interrupted" at no cost), nonce replay, consumed growing exactly once per request and never
 * past UINT64_MAX, amounts and nonces above INT64_MAX, the settlement-candidate rule (a prepaid
 * buyer's latest voucher is not claimable, pending requests' vouchers never are), the admin JSON
 * views parsed back, four threads on one ledger, and two ledgers on one file. An independent plain
 * SQLite connection reads what is really committed. Addresses are EIP-55's own examples
 * (https://eips.ethereum.org/EIPS/eip-55).
 */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ledger.h"

#define EIP55_A "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
#define EIP55_B "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
#define EIP55_C "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"
#define BIG (UINT64_C(1) << 63) /* INT64_MAX + 1 */

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/openseed-test-ledger-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/seller.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_rmdir_flat(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static sl_ledger *open_ok(const fixture *f)
{
    sl_ledger *l = NULL;
    char err[256];
    os_err rc = sl_ledger_open(&l, f->path, err, sizeof(err));
    if (rc != OS_OK)
        fail_msg("sl_ledger_open: %s: %s", os_strerror(rc), err);
    assert_non_null(l);
    return l;
}

static void chan_id(uint8_t id[32], uint8_t tag)
{
    memset(id, 0, 32);
    id[0] = 0xc0;
    id[31] = tag;
}

static void addr(uint8_t out[20], const char *eip55)
{
    tu_unhex(out, 20, eip55);
}

static os_channel_state chain_state(uint64_t deposit, uint64_t claimed)
{
    os_channel_state s;
    memset(&s, 0, sizeof(s));
    addr(s.payer, EIP55_A);
    addr(s.seller, EIP55_C);
    addr(s.signer, EIP55_B);
    memset(s.commitment, 0x77, 32);
    s.deposit = deposit;
    s.claimed = claimed;
    s.block = 1234;
    return s;
}

static void put_channel(sl_ledger *l, const uint8_t id[32], uint64_t deposit, uint64_t claimed)
{
    os_channel_state s = chain_state(deposit, claimed);
    assert_int_equal(sl_ledger_channel_put_chain(l, id, &s, INT64_C(1763700000123)), OS_OK);
}

static os_voucher voucher(const uint8_t id[32], uint64_t nonce, uint64_t cum)
{
    os_voucher v;
    memset(&v, 0, sizeof(v));
    memcpy(v.channel_id, id, 32);
    v.nonce = nonce;
    v.cumulative_amount = cum;
    for (int i = 0; i < 32; i++)
        v.metadata_hash[i] = (uint8_t)(nonce * 7 + (uint64_t)i);
    for (int i = 0; i < 65; i++)
        v.sig[i] = (uint8_t)(nonce * 13 + (uint64_t)i * 3);
    v.sig[64] = 27;
    return v;
}

static uint64_t accept_ok(sl_ledger *l, const uint8_t id[32], uint64_t nonce, uint64_t cum,
                          uint64_t estimate)
{
    os_voucher v = voucher(id, nonce, cum);
    uint64_t rid = 0;
    assert_int_equal(sl_ledger_accept(l, &rid, &v, "openai.chat", "gpt-test", estimate), OS_OK);
    assert_true(rid > 0);
    return rid;
}

static sl_request_end end_with(uint64_t cost)
{
    sl_request_end e;
    memset(&e, 0, sizeof(e));
    e.usage.input_tokens = 1000;
    e.usage.cached_tokens = 200;
    e.usage.output_tokens = 50;
    e.cost = cost;
    e.latency_ms = 1234;
    e.ttft_ms = 56;
    e.upstream_status = 200;
    e.outcome = "ok";
    return e;
}

static uint64_t finish_ok(sl_ledger *l, uint64_t rid, uint64_t cost)
{
    sl_request_end e = end_with(cost);
    uint64_t after = 0;
    assert_int_equal(sl_ledger_finish(l, &after, rid, &e), OS_OK);
    return after;
}

static sl_channel get_ok(sl_ledger *l, const uint8_t id[32])
{
    sl_channel c;
    assert_int_equal(sl_ledger_channel_get(l, &c, id), OS_OK);
    return c;
}

/* An independent connection: what is committed in the file, as text ("" for no row). */
static void raw_text(const fixture *f, const char *sql, char *out, size_t cap)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    out[0] = '\0';
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    else
        assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static long long raw_int(const fixture *f, const char *sql)
{
    char buf[64];
    raw_text(f, sql, buf, sizeof(buf));
    assert_true(buf[0] != '\0');
    return strtoll(buf, NULL, 10);
}

static void assert_voucher_eq(const os_voucher *a, const os_voucher *b)
{
    assert_memory_equal(a->channel_id, b->channel_id, 32);
    assert_true(a->nonce == b->nonce);
    assert_true(a->cumulative_amount == b->cumulative_amount);
    assert_memory_equal(a->metadata_hash, b->metadata_hash, 32);
    assert_memory_equal(a->sig, b->sig, 65);
}

/* Serialises and parses v back (releasing v), so tests read what a client would. */
static json_t *roundtrip(json_t *v)
{
    assert_non_null(v);
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    assert_non_null(text);
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    free(text);
    if (back == NULL)
        fail_msg("view does not parse: %s", jerr.text);
    return back;
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    return json_string_value(v);
}

static long long jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

/* ---- tests ---- */

static void test_open_reopen_keeps_everything(void **state)
{
    fixture *f = *state;
    uint8_t id[32];
    sl_ledger *l = open_ok(f);

    chan_id(id, 1);
    put_channel(l, id, 5000000, 0);
    uint64_t r1 = accept_ok(l, id, 1, 100, 100);
    assert_true(finish_ok(l, r1, 60) == 60);
    uint64_t r2 = accept_ok(l, id, 2, 160, 100);
    assert_true(finish_ok(l, r2, 70) == 130);
    sl_settlement s;
    memset(&s, 0, sizeof(s));
    memcpy(s.channel_id, id, 32);
    s.nonce = 2;
    s.cumulative = 160;
    s.amount = 160;
    s.status = "confirmed";
    s.at_ms = INT64_C(1763700001000);
    assert_int_equal(sl_ledger_settlement_add(l, &s), OS_OK);
    sl_channel before = get_ok(l, id);
    sl_ledger_close(l);

    l = open_ok(f);
    sl_channel after = get_ok(l, id);
    assert_memory_equal(after.id, id, 32);
    assert_memory_equal(after.chain.payer, before.chain.payer, 20);
    assert_memory_equal(after.chain.signer, before.chain.signer, 20);
    assert_true(after.chain.deposit == 5000000);
    assert_true(after.consumed == 130);
    assert_true(after.requests == 2);
    assert_true(after.has_voucher);
    assert_voucher_eq(&after.voucher, &before.voucher);
    assert_true(after.voucher.nonce == 2 && after.voucher.cumulative_amount == 160);
    assert_true(after.first_seen_ms == before.first_seen_ms);
    assert_true(after.checked_ms == INT64_C(1763700000123));
    /* the history and settlement survived too */
    json_t *v = roundtrip(sl_ledger_vouchers_json(l, NULL, 100));
    assert_int_equal(json_array_size(json_object_get(v, "vouchers")), 2);
    json_decref(v);
    v = roundtrip(sl_ledger_settlements_json(l, 100));
    assert_int_equal(json_array_size(json_object_get(v, "settlements")), 1);
    json_decref(v);
    /* both requests stay finished across the reopen (not re-finished as interrupted) */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM requests WHERE outcome = 'ok'"), 2);
    sl_ledger_close(l);
    sl_ledger_close(NULL);
}

static void test_put_chain_get_list(void **state)
{
    fixture *f = *state;
    uint8_t a[32], b[32], unknown[32];
    sl_ledger *l = open_ok(f);
    sl_channel c;

    chan_id(a, 2);
    chan_id(b, 1);
    chan_id(unknown, 9);
    assert_int_equal(sl_ledger_channel_get(l, &c, a), OS_ERR_NOTFOUND);

    os_channel_state s = chain_state(1000000, 250);
    s.close_at = 1763800000;
    s.closed = false;
    s.last_nonce = 4;
    s.block = 777;
    assert_int_equal(sl_ledger_channel_put_chain(l, a, &s, 42000), OS_OK);
    c = get_ok(l, a);
    assert_memory_equal(c.id, a, 32);
    assert_memory_equal(c.chain.payer, s.payer, 20);
    assert_memory_equal(c.chain.seller, s.seller, 20);
    assert_memory_equal(c.chain.signer, s.signer, 20);
    assert_memory_equal(c.chain.commitment, s.commitment, 32);
    assert_true(c.chain.deposit == 1000000 && c.chain.claimed == 250);
    assert_true(c.chain.close_at == 1763800000 && !c.chain.closed);
    assert_true(c.chain.last_nonce == 4 && c.chain.block == 777);
    assert_true(c.checked_ms == 42000);
    assert_false(c.has_voucher);
    assert_true(c.consumed == 0 && c.requests == 0);
    assert_true(c.first_seen_ms > 0);

    /* a refresh replaces the chain columns and leaves the voucher and consumed alone */
    uint64_t rid = accept_ok(l, a, 5, 300, 100);
    finish_ok(l, rid, 40);
    s.claimed = 300;
    s.closed = true;
    s.last_nonce = 5;
    s.block = 800;
    assert_int_equal(sl_ledger_channel_put_chain(l, a, &s, 43000), OS_OK);
    sl_channel c2 = get_ok(l, a);
    assert_true(c2.chain.claimed == 300 && c2.chain.closed && c2.chain.last_nonce == 5);
    assert_true(c2.chain.block == 800 && c2.checked_ms == 43000);
    assert_true(c2.has_voucher && c2.voucher.nonce == 5 && c2.consumed == 40);
    assert_true(c2.requests == 1 && c2.first_seen_ms == c.first_seen_ms);

    /* list is in first-seen order (b after a although its id sorts first) */
    usleep(2000);
    put_channel(l, b, 10, 0);
    sl_channel *all = NULL;
    size_t n = 0;
    assert_int_equal(sl_ledger_channel_list(l, &all, &n), OS_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(all[0].id, a, 32);
    assert_memory_equal(all[1].id, b, 32);
    assert_true(all[0].consumed == 40 && all[1].chain.deposit == 10);
    free(all);
    assert_int_equal(sl_ledger_channel_get(l, &c, unknown), OS_ERR_NOTFOUND);
    sl_ledger_close(l);
}

static void test_accept_durable_then_interrupted(void **state)
{
    fixture *f = *state;
    uint8_t id[32];
    char buf[128];
    sl_ledger *l = open_ok(f);

    chan_id(id, 3);
    put_channel(l, id, 1000000, 0);
    uint64_t r1 = accept_ok(l, id, 1, 100, 100);
    finish_ok(l, r1, 80);
    uint64_t r2 = accept_ok(l, id, 2, 180, 100);
    /* committed before accept returned: another connection sees both rows */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM vouchers WHERE nonce = 2"), 1);
    raw_text(f, "SELECT status FROM requests WHERE nonce = 2", buf, sizeof(buf));
    assert_string_equal(buf, "pending");
    sl_ledger_close(l); /* "crash": never finished */

    l = open_ok(f);
    raw_text(f, "SELECT status || ',' || outcome || ',' || cost FROM requests WHERE nonce = 2", buf,
             sizeof(buf));
    assert_string_equal(buf, "finished,interrupted,0");
    sl_channel c = get_ok(l, id);
    assert_true(c.consumed == 80); /* unchanged */
    assert_true(c.requests == 2);  /* the interrupted one is finished */
    assert_true(c.has_voucher && c.voucher.nonce == 2 && c.voucher.cumulative_amount == 180);
    os_voucher want = voucher(id, 2, 180);
    assert_voucher_eq(&c.voucher, &want);
    sl_request_end e = end_with(50);
    uint64_t after = 12345;
    assert_int_equal(sl_ledger_finish(l, &after, r2, &e), OS_ERR_EXISTS);
    assert_true(after == 12345);
    assert_true(get_ok(l, id).consumed == 80);
    /* the interrupted request cost nothing, so its voucher (180 = 80 + its whole estimate) is not
     * redeemed: the bound is consumed + the slack of the last charged request, 80 + 20 */
    os_voucher cand;
    uint64_t earned = 0;
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, id, 1, 0), OS_OK);
    assert_true(cand.nonce == 1 && cand.cumulative_amount == 100 && earned == 80);
    sl_ledger_close(l);
}

static void test_nonce_replay_refused(void **state)
{
    fixture *f = *state;
    uint8_t id[32];
    sl_ledger *l = open_ok(f);
    uint64_t rid = 99;

    chan_id(id, 4);
    put_channel(l, id, 1000000, 0);
    accept_ok(l, id, 5, 100, 100);
    os_voucher same = voucher(id, 5, 200), lower = voucher(id, 4, 300), zero = voucher(id, 0, 1);
    assert_int_equal(sl_ledger_accept(l, &rid, &same, "openai.chat", "m", 10), OS_ERR_EXISTS);
    assert_int_equal(sl_ledger_accept(l, &rid, &lower, "openai.chat", "m", 10), OS_ERR_EXISTS);
    assert_int_equal(sl_ledger_accept(l, &rid, &zero, "openai.chat", "m", 10), OS_ERR_EXISTS);
    assert_true(rid == 99); /* untouched on failure */
    sl_channel c = get_ok(l, id);
    assert_true(c.voucher.nonce == 5 && c.voucher.cumulative_amount == 100);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM vouchers"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM requests"), 1);
    /* the next nonce is fine, and bad arguments are refused before any write */
    accept_ok(l, id, 6, 200, 100);
    os_voucher next = voucher(id, 7, 300);
    assert_int_equal(sl_ledger_accept(l, &rid, &next, NULL, "m", 1), OS_ERR_INVALID);
    assert_int_equal(sl_ledger_accept(l, &rid, &next, "openai.chat", "", 1), OS_ERR_INVALID);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM vouchers"), 2);
    sl_ledger_close(l);
}

/* A voucher that arrives after a later one is stored below the latest, once. */
static void test_accept_late(void **state)
{
    fixture *f = *state;
    uint8_t id[32], fresh[32];
    sl_ledger *l = open_ok(f);
    uint64_t rid = 0, late_rid;

    chan_id(id, 6);
    chan_id(fresh, 7);
    put_channel(l, id, 1000000, 0);
    put_channel(l, fresh, 1000000, 0);
    accept_ok(l, id, 9, 500, 200);
    os_voucher late = voucher(id, 7, 300), same = voucher(id, 9, 600), above = voucher(id, 10, 700);
    assert_int_equal(sl_ledger_accept_late(l, &rid, &late, "openai.chat", "m", 300), OS_OK);
    late_rid = rid;
    assert_true(late_rid > 0);
    /* the latest stays the latest */
    sl_channel c = get_ok(l, id);
    assert_true(c.voucher.nonce == 9 && c.voucher.cumulative_amount == 500);
    /* used once; never at or above the latest; not on a channel without a latest */
    assert_int_equal(sl_ledger_accept_late(l, &rid, &late, "openai.chat", "m", 300), OS_ERR_EXISTS);
    assert_int_equal(sl_ledger_accept_late(l, &rid, &same, "openai.chat", "m", 1), OS_ERR_EXISTS);
    assert_int_equal(sl_ledger_accept_late(l, &rid, &above, "openai.chat", "m", 1), OS_ERR_EXISTS);
    os_voucher first = voucher(fresh, 1, 10);
    assert_int_equal(sl_ledger_accept_late(l, &rid, &first, "openai.chat", "m", 1), OS_ERR_EXISTS);
    assert_true(rid == late_rid);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM vouchers"), 2);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM requests"), 2);
    /* its request is booked like any other */
    sl_request_end e = end_with(120);
    uint64_t after = 0;
    assert_int_equal(sl_ledger_finish(l, &after, late_rid, &e), OS_OK);
    assert_true(after == 120);
    sl_ledger_close(l);
}

static void test_accept_unknown_channel(void **state)
{
    fixture *f = *state;
    uint8_t id[32];
    sl_ledger *l = open_ok(f);
    uint64_t rid = 0;

    chan_id(id, 5);
    os_voucher v = voucher(id, 1, 100);
    assert_int_equal(sl_ledger_accept(l, &rid, &v, "openai.chat", "m", 100), OS_ERR_NOTFOUND);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM vouchers"), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM requests"), 0);
    sl_ledger_close(l);
}

static void test_finish_once(void **state)
{
    fixture *f = *state;
    uint8_t id[32];
    sl_ledger *l = open_ok(f);

    chan_id(id, 6);
    put_channel(l, id, 1000000, 0);
    uint64_t r1 = accept_ok(l, id, 1, 100, 100);
    uint64_t r2 = accept_ok(l, id, 2, 200, 100);
    /* finished out of order: consumed is a sum, not a sequence */
    assert_true(finish_ok(l, r2, 33) == 33);
    assert_true(finish_ok(l, r1, 44) == 77);
    sl_request_end e = end_with(1000);
    assert_int_equal(sl_ledger_finish(l, NULL, r1, &e), OS_ERR_EXISTS);
    assert_int_equal(sl_ledger_finish(l, NULL, r2, &e), OS_ERR_EXISTS);
    assert_int_equal(sl_ledger_finish(l, NULL, 999, &e), OS_ERR_NOTFOUND);
    assert_int_equal(sl_ledger_finish(l, NULL, 0, &e), OS_ERR_NOTFOUND);
    assert_int_equal(sl_ledger_finish(l, NULL, UINT64_MAX, &e), OS_ERR_NOTFOUND);
    e.outcome = NULL;
    assert_int_equal(sl_ledger_finish(l, NULL, r1, &e), OS_ERR_INVALID);
    e.outcome = "Bad outcome";
    assert_int_equal(sl_ledger_finish(l, NULL, r1, &e), OS_ERR_INVALID);
    sl_channel c = get_ok(l, id);
    assert_true(c.consumed == 77 && c.requests == 2);
    assert_int_equal(raw_int(f, "SELECT sum(cost) FROM requests"), 77);
    sl_ledger_close(l);
}

static void test_consumed_overflow(void **state)
{
    fixture *f = *state;
    uint8_t id[32];
    char buf[64];
    sl_ledger *l = open_ok(f);

    chan_id(id, 7);
    put_channel(l, id, UINT64_MAX, 0);
    uint64_t r1 = accept_ok(l, id, 1, UINT64_MAX - 100, UINT64_MAX - 100);
    assert_true(finish_ok(l, r1, UINT64_MAX - 5) == UINT64_MAX - 5);
    uint64_t r2 = accept_ok(l, id, 2, UINT64_MAX, 10);
    sl_request_end e = end_with(6);
    uint64_t after = 7;
    assert_int_equal(sl_ledger_finish(l, &after, r2, &e), OS_ERR_RANGE);
    assert_true(after == 7);
    sl_channel c = get_ok(l, id);
    assert_true(c.consumed == UINT64_MAX - 5 && c.requests == 1);
    raw_text(f, "SELECT status FROM requests WHERE nonce = 2", buf, sizeof(buf));
    assert_string_equal(buf, "pending"); /* rolled back whole */
    /* exactly up to the maximum is fine */
    assert_true(finish_ok(l, r2, 5) == UINT64_MAX);
    assert_true(get_ok(l, id).consumed == UINT64_MAX);
    sl_ledger_close(l);
}

static void test_amounts_above_int64(void **state)
{
    fixture *f = *state;
    uint8_t id[32];
    sl_ledger *l = open_ok(f);
    os_voucher cand;
    uint64_t earned = 0;

    chan_id(id, 8);
    os_channel_state s = chain_state(UINT64_MAX, BIG);
    s.close_at = BIG + 5;
    s.last_nonce = UINT64_MAX - 1;
    s.block = BIG;
    assert_int_equal(sl_ledger_channel_put_chain(l, id, &s, 1), OS_OK);

    /* nonces on both sides of the sign boundary: the order is unsigned */
    uint64_t ra = accept_ok(l, id, (uint64_t)INT64_MAX, 100, 100);
    finish_ok(l, ra, 100);
    uint64_t rb = accept_ok(l, id, BIG, BIG + 200, BIG + 100);
    finish_ok(l, rb, BIG + 100); /* consumed = BIG + 200 */
    os_voucher back = voucher(id, (uint64_t)INT64_MAX + 0, 1);
    uint64_t rid;
    assert_int_equal(sl_ledger_accept(l, &rid, &back, "openai.chat", "m", 1), OS_ERR_EXISTS);
    uint64_t rc_ = accept_ok(l, id, UINT64_MAX, BIG + 300, 100);
    finish_ok(l, rc_, 10); /* consumed = BIG + 210; the last charged slack is 90 */

    sl_ledger_close(l);
    l = open_ok(f); /* round trip through the file */
    sl_channel c = get_ok(l, id);
    assert_true(c.chain.deposit == UINT64_MAX && c.chain.claimed == BIG);
    assert_true(c.chain.close_at == BIG + 5 && c.chain.last_nonce == UINT64_MAX - 1);
    assert_true(c.chain.block == BIG);
    assert_true(c.voucher.nonce == UINT64_MAX && c.voucher.cumulative_amount == BIG + 300);
    assert_true(c.consumed == BIG + 210);
    /* nothing is above UINT64_MAX */
    os_voucher over = voucher(id, UINT64_MAX, BIG + 400);
    assert_int_equal(sl_ledger_accept(l, &rid, &over, "openai.chat", "m", 1), OS_ERR_EXISTS);
    assert_int_equal(sl_ledger_finish(l, NULL, rc_, &(sl_request_end){.outcome = "ok"}),
                     OS_ERR_EXISTS);

    /* candidates across the boundary: BIG + 300 <= consumed + 90 */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, id, 0, 0), OS_OK);
    assert_true(cand.nonce == UINT64_MAX && cand.cumulative_amount == BIG + 300);
    assert_true(earned == BIG + 210);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, UINT64_MAX, BIG + 299), OS_OK);
    assert_true(cand.nonce == UINT64_MAX);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 0, BIG + 300), OS_ERR_NOTFOUND);
    /* min_nonce above INT64_MAX scans only the upper (negative when stored) range */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, BIG + 1, 0), OS_OK);
    assert_true(cand.nonce == UINT64_MAX);
    /* claimed BIG + 250 leaves only nonce UINT64_MAX (BIG + 200 and 100 are at or below) */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, BIG, BIG + 250), OS_OK);
    assert_true(cand.nonce == UINT64_MAX);
    /* claimed BIG + 150: nonce BIG (BIG + 200) qualifies too, the larger amount still wins */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, (uint64_t)INT64_MAX, 150),
                     OS_OK);
    assert_true(cand.nonce == UINT64_MAX);
    assert_true(get_ok(l, id).requests == 3);

    json_t *v = roundtrip(sl_ledger_channels_json(l));
    json_t *ch = json_array_get(json_object_get(v, "channels"), 0);
    assert_string_equal(jstr(ch, "deposit"), "18446744073709551615");
    assert_string_equal(jstr(ch, "claimed"), "9223372036854775808");
    assert_string_equal(jstr(ch, "consumed"), "9223372036854776018");
    assert_string_equal(jstr(ch, "credit"), "90");
    json_t *lv = json_object_get(ch, "latest_voucher");
    assert_string_equal(jstr(lv, "cumulative"), "9223372036854776108");
    assert_string_equal(jstr(lv, "nonce"), "18446744073709551615");
    json_decref(v);
    sl_ledger_close(l);
}

static void test_settle_candidate(void **state)
{
    fixture *f = *state;
    uint8_t id[32], other[32];
    sl_ledger *l = open_ok(f);
    os_voucher cand;
    uint64_t earned = 0;

    chan_id(id, 10);
    chan_id(other, 11);
    put_channel(l, id, 5000, 0);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, id, 1, 0), OS_ERR_NOTFOUND);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, other, 1, 0), OS_ERR_NOTFOUND);
    /* An honest buyer signs consumed + estimate, so cumulative = consumed after + slack. */
    finish_ok(l, accept_ok(l, id, 1, 100, 100), 60); /* consumed 60 */
    finish_ok(l, accept_ok(l, id, 2, 160, 100), 50); /* consumed 110 */
    finish_ok(l, accept_ok(l, id, 3, 210, 100), 40); /* consumed 150: 210 <= 150 + 60 */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, id, 1, 0), OS_OK);
    assert_true(cand.nonce == 3 && cand.cumulative_amount == 210 && earned == 150);
    os_voucher want = voucher(id, 3, 210);
    assert_voucher_eq(&cand, &want);

    /* A buyer who prepaid: 1000 > 180 + 70, so nonce 3 is still the one to claim. */
    finish_ok(l, accept_ok(l, id, 4, 1000, 100), 30); /* consumed 180 */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, id, 1, 0), OS_OK);
    assert_true(cand.nonce == 3 && cand.cumulative_amount == 210 && earned == 180);

    /* A pending request's voucher is never a candidate, even one that would fit. */
    uint64_t r5 = accept_ok(l, id, 5, 260, 80);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, id, 1, 0), OS_OK);
    assert_true(cand.nonce == 3);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, id, 4, 0), OS_ERR_NOTFOUND);
    assert_true(earned == 180); /* set even when there is no candidate */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 3, 0), OS_OK);
    assert_true(cand.nonce == 3);
    /* min_nonce past 3 and claimed at or above 210 both exclude it */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 1, 210), OS_ERR_NOTFOUND);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 1, 209), OS_OK);
    assert_true(cand.nonce == 3);
    /* claimed 150 leaves only 160 and 210 above it; the larger wins */
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 1, 150), OS_OK);
    assert_true(cand.nonce == 3);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 1, 2), OS_OK);
    assert_true(cand.cumulative_amount == 210);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 2, 0), OS_OK);
    assert_true(cand.nonce == 3);

    /* Once nonce 5 finishes at its full estimate it is exactly earned: 260 <= 260 + 0. */
    assert_true(finish_ok(l, r5, 80) == 260);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, &earned, id, 1, 0), OS_OK);
    assert_true(cand.nonce == 5 && cand.cumulative_amount == 260 && earned == 260);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 4, 0), OS_OK);
    assert_true(cand.nonce == 5);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 6, 0), OS_ERR_NOTFOUND);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 1, 260), OS_ERR_NOTFOUND);

    /* Equal amounts: the lower nonce, which leaves the later one claimable. */
    finish_ok(l, accept_ok(l, id, 6, 260, 0), 0);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 1, 0), OS_OK);
    assert_true(cand.nonce == 5);
    assert_int_equal(sl_ledger_settle_candidate(l, &cand, NULL, id, 6, 0), OS_OK);
    assert_true(cand.nonce == 6);
    sl_ledger_close(l);
}

static void test_settlements_and_json_views(void **state)
{
    fixture *f = *state;
    uint8_t id[32], other[32];
    char idhex[OS_HEX_LEN(32)];
    sl_ledger *l = open_ok(f);

    chan_id(id, 12);
    chan_id(other, 13);
    assert_int_equal(os_hex_encode(idhex, sizeof(idhex), id, 32, 1), OS_OK);
    put_channel(l, id, 5000000, 10);
    put_channel(l, other, 1, 0);
    uint64_t r1 = accept_ok(l, id, 1, 100, 100);
    finish_ok(l, r1, 60);
    accept_ok(l, id, 2, 160, 100); /* pending */

    sl_settlement s;
    memset(&s, 0, sizeof(s));
    memcpy(s.channel_id, id, 32);
    s.nonce = 1;
    s.cumulative = 100;
    s.amount = 90;
    memset(s.tx_hash, 0xab, 32);
    s.gas_used = UINT64_C(10000000000);
    s.gas_price_wei = UINT64_C(10000000000); /* product 1e20 > UINT64_MAX */
    s.status = "confirmed";
    s.at_ms = INT64_C(1763700005999);
    assert_int_equal(sl_ledger_settlement_add(l, &s), OS_OK);
    memset(s.tx_hash, 0, 32);
    s.amount = 0;
    s.gas_used = 0;
    s.status = "failed";
    s.error = "StaleNonce(1)";
    s.at_ms = INT64_C(1763700006000);
    assert_int_equal(sl_ledger_settlement_add(l, &s), OS_OK);
    s.status = NULL;
    assert_int_equal(sl_ledger_settlement_add(l, &s), OS_ERR_INVALID);

    /* channels */
    json_t *v = roundtrip(sl_ledger_channels_json(l));
    json_t *arr = json_object_get(v, "channels");
    assert_int_equal(json_array_size(arr), 2);
    json_t *c = json_array_get(arr, 0);
    assert_string_equal(jstr(c, "channel_id"), idhex);
    assert_string_equal(jstr(c, "payer"), EIP55_A);
    assert_string_equal(jstr(c, "signer"), EIP55_B);
    assert_string_equal(jstr(c, "deposit"), "5000000");
    assert_string_equal(jstr(c, "claimed"), "10");
    assert_int_equal(jint(c, "close_at"), 0);
    assert_true(json_is_false(json_object_get(c, "closed")));
    assert_string_equal(jstr(c, "consumed"), "60");
    assert_string_equal(jstr(c, "credit"), "100"); /* 160 - 60 */
    assert_int_equal(jint(c, "requests"), 1);
    assert_int_equal(jint(c, "checked_at"), 1763700000);
    json_t *lv = json_object_get(c, "latest_voucher");
    assert_int_equal(jint(lv, "nonce"), 2);
    assert_string_equal(jstr(lv, "cumulative"), "160");
    os_voucher v2 = voucher(id, 2, 160);
    char hex[OS_HEX_LEN(65)];
    assert_int_equal(os_hex_encode(hex, sizeof(hex), v2.metadata_hash, 32, 1), OS_OK);
    assert_string_equal(jstr(lv, "metadata_hash"), hex);
    assert_int_equal(os_hex_encode(hex, sizeof(hex), v2.sig, 65, 1), OS_OK);
    assert_string_equal(jstr(lv, "signature"), hex);
    c = json_array_get(arr, 1);
    assert_true(json_is_null(json_object_get(c, "latest_voucher")));
    assert_string_equal(jstr(c, "credit"), "0");
    json_decref(v);

    /* vouchers, newest first, limited, filtered */
    v = roundtrip(sl_ledger_vouchers_json(l, NULL, 10));
    arr = json_object_get(v, "vouchers");
    assert_int_equal(json_array_size(arr), 2);
    assert_int_equal(jint(json_array_get(arr, 0), "nonce"), 2);
    assert_int_equal(jint(json_array_get(arr, 1), "nonce"), 1);
    assert_string_equal(jstr(json_array_get(arr, 1), "cumulative"), "100");
    assert_string_equal(jstr(json_array_get(arr, 1), "estimate"), "100");
    assert_string_equal(jstr(json_array_get(arr, 1), "channel_id"), idhex);
    assert_true(jint(json_array_get(arr, 1), "accepted_at") > 1700000000);
    json_decref(v);
    v = roundtrip(sl_ledger_vouchers_json(l, id, 1));
    assert_int_equal(json_array_size(json_object_get(v, "vouchers")), 1);
    json_decref(v);
    v = roundtrip(sl_ledger_vouchers_json(l, other, 10));
    assert_int_equal(json_array_size(json_object_get(v, "vouchers")), 0);
    json_decref(v);

    /* requests */
    v = roundtrip(sl_ledger_requests_json(l, id, 10));
    arr = json_object_get(v, "requests");
    assert_int_equal(json_array_size(arr), 2);
    c = json_array_get(arr, 0);
    assert_string_equal(jstr(c, "status"), "pending");
    assert_true(json_is_null(json_object_get(c, "outcome")));
    c = json_array_get(arr, 1);
    assert_int_equal(jint(c, "id"), (long long)r1);
    assert_string_equal(jstr(c, "channel_id"), idhex);
    assert_string_equal(jstr(c, "api"), "openai.chat");
    assert_string_equal(jstr(c, "service"), "gpt-test");
    assert_string_equal(jstr(c, "outcome"), "ok");
    assert_int_equal(jint(c, "input_tokens"), 1000);
    assert_int_equal(jint(c, "cached_tokens"), 200);
    assert_int_equal(jint(c, "output_tokens"), 50);
    assert_string_equal(jstr(c, "cost"), "60");
    assert_string_equal(jstr(c, "estimate"), "100");
    assert_int_equal(jint(c, "latency_ms"), 1234);
    assert_int_equal(jint(c, "ttft_ms"), 56);
    assert_int_equal(jint(c, "upstream_status"), 200);
    assert_true(jint(c, "started_at") > 1700000000);
    json_decref(v);
    v = roundtrip(sl_ledger_requests_json(l, NULL, 1));
    assert_int_equal(json_array_size(json_object_get(v, "requests")), 1);
    json_decref(v);

    /* revenue */
    v = roundtrip(sl_ledger_revenue_json(l));
    assert_string_equal(jstr(v, "consumed"), "60");
    assert_string_equal(jstr(v, "claimed"), "10");
    assert_string_equal(jstr(v, "unclaimed"), "50");
    assert_int_equal(jint(v, "requests"), 1);
    assert_int_equal(jint(v, "input_tokens"), 1000);
    assert_int_equal(jint(v, "cached_tokens"), 200);
    assert_int_equal(jint(v, "output_tokens"), 50);
    assert_int_equal(jint(v, "settlements"), 2);
    assert_string_equal(jstr(v, "gas_wei"), "100000000000000000000");
    json_t *by = json_object_get(v, "by_outcome");
    assert_int_equal(json_object_size(by), 1);
    assert_int_equal(jint(by, "ok"), 1);
    json_decref(v);

    /* settlements, newest first */
    v = roundtrip(sl_ledger_settlements_json(l, 10));
    arr = json_object_get(v, "settlements");
    assert_int_equal(json_array_size(arr), 2);
    c = json_array_get(arr, 0);
    assert_string_equal(jstr(c, "status"), "failed");
    assert_string_equal(jstr(c, "error"), "StaleNonce(1)");
    assert_true(json_is_null(json_object_get(c, "tx_hash")));
    assert_string_equal(jstr(c, "amount"), "0");
    assert_int_equal(jint(c, "at"), 1763700006);
    c = json_array_get(arr, 1);
    assert_string_equal(jstr(c, "status"), "confirmed");
    assert_true(json_is_null(json_object_get(c, "error")));
    assert_string_equal(jstr(c, "tx_hash"),
                        "0xabababababababababababababababababababababababababababababababab");
    assert_string_equal(jstr(c, "channel_id"), idhex);
    assert_int_equal(jint(c, "nonce"), 1);
    assert_string_equal(jstr(c, "cumulative"), "100");
    assert_string_equal(jstr(c, "amount"), "90");
    assert_int_equal(jint(c, "gas_used"), 10000000000LL);
    assert_string_equal(jstr(c, "gas_price_wei"), "10000000000");
    assert_int_equal(jint(c, "at"), 1763700005);
    json_decref(v);
    assert_null(sl_ledger_settlements_json(NULL, 10));
    sl_ledger_close(l);
}

#define THREADS 4
#define PER_THREAD 25

typedef struct shared {
    sl_ledger *l;
    uint8_t ch[2][32];
    atomic_uint_fast64_t next_nonce[2];
    atomic_uint_fast64_t cost_sum[2];
    atomic_uint_fast64_t finished[2];
    atomic_int failures;
} shared;

typedef struct worker {
    shared *sh;
    int t;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;

    for (int i = 0; i < PER_THREAD; i++) {
        int c = (i + w->t) % 2;
        uint64_t rid = 0, cost = (uint64_t)(w->t * 31 + i * 7) % 97 + 1;
        os_err rc;
        do {
            /* another thread may commit a higher nonce first: ours is then stale, take another */
            uint64_t nonce = atomic_fetch_add(&sh->next_nonce[c], 1) + 1;
            os_voucher v = voucher(sh->ch[c], nonce, 1000 * nonce);
            rc = sl_ledger_accept(sh->l, &rid, &v, "openai.chat", "m", 100);
        } while (rc == OS_ERR_EXISTS);
        sl_request_end e = end_with(cost);
        if (rc != OS_OK || sl_ledger_finish(sh->l, NULL, rid, &e) != OS_OK) {
            atomic_fetch_add(&sh->failures, 1);
            continue;
        }
        atomic_fetch_add(&sh->cost_sum[c], cost);
        atomic_fetch_add(&sh->finished[c], 1);
    }
    return NULL;
}

static void test_threads(void **state)
{
    fixture *f = *state;
    shared sh;
    pthread_t th[THREADS];
    worker w[THREADS];

    memset(&sh, 0, sizeof(sh));
    sh.l = open_ok(f);
    for (int c = 0; c < 2; c++) {
        chan_id(sh.ch[c], (uint8_t)(20 + c));
        put_channel(sh.l, sh.ch[c], UINT64_C(1) << 40, 0);
        atomic_init(&sh.next_nonce[c], 0);
        atomic_init(&sh.cost_sum[c], 0);
        atomic_init(&sh.finished[c], 0);
    }
    atomic_init(&sh.failures, 0);
    for (int t = 0; t < THREADS; t++) {
        w[t].sh = &sh;
        w[t].t = t;
        assert_int_equal(pthread_create(&th[t], NULL, work, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    assert_int_equal(atomic_load(&sh.failures), 0);
    uint64_t total = 0;
    for (int c = 0; c < 2; c++) {
        sl_channel ch = get_ok(sh.l, sh.ch[c]);
        assert_true(ch.consumed == atomic_load(&sh.cost_sum[c]));
        assert_true(ch.requests == atomic_load(&sh.finished[c]));
        total += ch.requests;
    }
    assert_true(total == THREADS * PER_THREAD);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM requests WHERE status = 'pending'"), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM requests"), THREADS * PER_THREAD);
    sl_ledger_close(sh.l);
}

static void test_two_ledgers_one_file(void **state)
{
    fixture *f = *state;
    uint8_t id[32];
    sl_ledger *a = open_ok(f);
    sl_ledger *b = open_ok(f);
    uint64_t rid;

    chan_id(id, 30);
    put_channel(a, id, 1000, 0);
    finish_ok(a, accept_ok(a, id, 1, 100, 100), 25);
    sl_channel c = get_ok(b, id);
    assert_true(c.consumed == 25 && c.voucher.nonce == 1);
    /* b's commit is what a checks its nonce against */
    accept_ok(b, id, 2, 200, 100);
    os_voucher v = voucher(id, 2, 300);
    assert_int_equal(sl_ledger_accept(a, &rid, &v, "openai.chat", "m", 1), OS_ERR_EXISTS);
    assert_true(get_ok(a, id).voucher.nonce == 2);
    os_channel_state s = chain_state(2000, 25);
    assert_int_equal(sl_ledger_channel_put_chain(b, id, &s, 99000), OS_OK);
    c = get_ok(a, id);
    assert_true(c.chain.deposit == 2000 && c.chain.claimed == 25 && c.checked_ms == 99000);
    sl_ledger_close(b);
    sl_ledger_close(a);
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    sl_ledger *l = (sl_ledger *)state; /* any non-NULL value: must be reset */
    char err[256], path[256];

    snprintf(path, sizeof(path), "%s/missing/seller.db", f->dir);
    assert_int_not_equal(sl_ledger_open(&l, path, err, sizeof(err)), OS_OK);
    assert_null(l);
    assert_true(err[0] != '\0');
    assert_int_equal(sl_ledger_open(NULL, f->path, err, sizeof(err)), OS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_chain_get_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_durable_then_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_replay_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_late, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_unknown_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumed_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_amounts_above_int64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_candidate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settlements_and_json_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_ledgers_one_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
