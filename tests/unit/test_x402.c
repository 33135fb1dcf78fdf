/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The x402 v2 headers of x402.h (PROTOCOL.md §7). Encoders are pinned to exact JSON texts written
 * out below (decoded from the base64 and compared byte for byte), so key order, amounts as strings,
 * EIP-55 addresses and lower-case hex are all checked; decoders round-trip them. Refusals mutate a
 * valid text one field at a time, so each case can only fail for its own reason: bad base64, not
 * JSON, too deep, too long, unknown fields at every level, wrong types, non-canonical amounts, hex
 * of the wrong length or case, the wrong x402Version, 64-byte signatures, partial channel views.
 * Addresses are the EIP-55 specification's own test vectors; the metadata hash is keccak256("").
 */
#include "testutil.h"

#include <stdlib.h>

#include <jansson.h>

#include "openseed/base64.h"
#include "openseed/x402.h"

#define ASSET "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" /* Base USDC */
#define PAYTO "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" /* EIP-55 vectors */
#define ESCROW "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
#define CHAN "0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
#define MHASH "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
#define SIG                                                                                        \
    "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"                           \
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb1b"

#define ENTRY_HEAD                                                                                 \
    "{\"scheme\":\"openseed-channel\",\"network\":\"eip155:8453\",\"amount\":\"1290\","            \
    "\"asset\":\"" ASSET "\",\"payTo\":\"" PAYTO "\",\"maxTimeoutSeconds\":60,"

#define EXTRA_FULL                                                                                 \
    "{\"escrow\":\"" ESCROW "\",\"channelId\":\"" CHAN "\",\"consumed\":\"48210\","                \
    "\"authorized\":\"49000\",\"nonce\":42,\"metadataHash\":\"" MHASH "\","                        \
    "\"name\":\"OpenSeedChannels\",\"version\":\"1\"}"
#define EXTRA_MIN "{\"escrow\":\"" ESCROW "\",\"name\":\"OpenSeedChannels\",\"version\":\"1\"}"
#define PAYLOAD                                                                                    \
    "{\"channelId\":\"" CHAN "\",\"cumulativeAmount\":\"50790\",\"nonce\":43,"                     \
    "\"metadataHash\":\"" MHASH "\",\"signature\":\"" SIG "\"}"
#define ENTRY_FULL ENTRY_HEAD "\"extra\":" EXTRA_FULL "}"
#define ENTRY_MIN ENTRY_HEAD "\"extra\":" EXTRA_MIN "}"

/* The full requirement: channel view and metadata hash present. */
static const char REQUIRED_FULL[] =
    "{\"x402Version\":2,\"error\":\"payment_required\",\"resource\":{\"url\":\"/v1/infer\"},"
    "\"accepts\":[" ENTRY_FULL "]}";

/* A requirement without channel view or metadata hash. */
static const char REQUIRED_MIN[] =
    "{\"x402Version\":2,\"error\":\"insufficient_amount\",\"resource\":{\"url\":\"/v1/infer\"},"
    "\"accepts\":[" ENTRY_MIN "]}";

static const char PAYMENT[] =
    "{\"x402Version\":2,\"accepted\":" ENTRY_MIN ",\"payload\":" PAYLOAD "}";

static const char RESPONSE[] =
    "{\"success\":true,\"network\":\"eip155:8453\",\"amount\":\"1187\",\"payer\":\"" CHAN "\"}";

/* ---- helpers ---- */

static void fill_requirement(os_x402_requirement *r, bool channel, bool mhash)
{
    memset(r, 0, sizeof(*r));
    r->chain_id = 8453;
    r->amount = 1290;
    tu_unhex(r->asset, 20, ASSET);
    tu_unhex(r->pay_to, 20, PAYTO);
    r->max_timeout_s = 60;
    tu_unhex(r->escrow, 20, ESCROW);
    r->has_channel = channel;
    if (channel) {
        tu_unhex(r->channel_id, 32, CHAN);
        r->consumed = 48210;
        r->authorized = 49000;
        r->nonce = 42;
    }
    r->has_metadata_hash = mhash;
    if (mhash)
        tu_unhex(r->metadata_hash, 32, MHASH);
}

static void fill_voucher(os_voucher *v)
{
    memset(v, 0, sizeof(*v));
    tu_unhex(v->channel_id, 32, CHAN);
    v->cumulative_amount = 50790;
    v->nonce = 43;
    tu_unhex(v->metadata_hash, 32, MHASH);
    tu_unhex(v->sig, 65, SIG);
}

static void assert_req_equal(const os_x402_requirement *a, const os_x402_requirement *b)
{
    assert_int_equal(a->chain_id, b->chain_id);
    assert_int_equal(a->amount, b->amount);
    assert_memory_equal(a->asset, b->asset, 20);
    assert_memory_equal(a->pay_to, b->pay_to, 20);
    assert_int_equal(a->max_timeout_s, b->max_timeout_s);
    assert_memory_equal(a->escrow, b->escrow, 20);
    assert_int_equal(a->has_channel, b->has_channel);
    if (a->has_channel) {
        assert_memory_equal(a->channel_id, b->channel_id, 32);
        assert_int_equal(a->consumed, b->consumed);
        assert_int_equal(a->authorized, b->authorized);
        assert_int_equal(a->nonce, b->nonce);
    }
    assert_int_equal(a->has_reserved, b->has_reserved);
    if (a->has_reserved)
        assert_int_equal(a->reserved, b->reserved);
    assert_int_equal(a->has_metadata_hash, b->has_metadata_hash);
    if (a->has_metadata_hash)
        assert_memory_equal(a->metadata_hash, b->metadata_hash, 32);
}

static char *b64(const char *text)
{
    char *s = os_base64_encode_alloc(text, strlen(text));
    assert_non_null(s);
    return s;
}

/* The JSON text inside a header value (caller frees). */
static char *unb64(const char *value)
{
    uint8_t *out;
    size_t len;
    assert_int_equal(os_base64_decode_alloc(&out, &len, value, strlen(value), 8192), OS_OK);
    return (char *)out;
}

/* base with the first occurrence of from replaced by to (caller frees). */
static char *subst(const char *base, const char *from, const char *to)
{
    const char *at = strstr(base, from);
    if (at == NULL)
        fail_msg("pattern not in base: %s", from);
    size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return s;
}

static os_err decode_required_text(const char *json, os_x402_requirement *r, char *err,
                                   size_t errcap)
{
    char code[OS_X402_ERROR_MAX];
    char *v = b64(json);
    os_err rc = os_x402_required_decode(r, code, sizeof(code), v, err, errcap);
    free(v);
    return rc;
}

static os_err decode_payment_text(const char *json, char *err, size_t errcap)
{
    os_voucher v;
    os_x402_requirement acc;
    char *h = b64(json);
    os_err rc = os_x402_payment_decode(&v, &acc, h, err, errcap);
    free(h);
    return rc;
}

static os_err decode_response_text(const char *json, char *err, size_t errcap)
{
    bool ok;
    uint64_t chain, amount;
    uint8_t id[32];
    char *h = b64(json);
    os_err rc = os_x402_response_decode(&ok, &chain, &amount, id, h, err, errcap);
    free(h);
    return rc;
}

typedef os_err (*decode_fn)(const char *json, char *err, size_t errcap);

static os_err decode_required_any(const char *json, char *err, size_t errcap)
{
    os_x402_requirement r;
    return decode_required_text(json, &r, err, errcap);
}

/* base with from replaced by to must be refused with want and a reason, which never carries the
 * marker "7777" (every mutated value below that could be echoed contains it where it can). */
static void refuse(decode_fn fn, const char *base, const char *from, const char *to, os_err want)
{
    char err[OS_X402_ERR_LEN] = "";
    char *json = subst(base, from, to);
    os_err rc = fn(json, err, sizeof(err));
    if (rc != want)
        fail_msg("%s -> %s: got %s, want %s (%s)", from, to, os_strerror(rc), os_strerror(want),
                 err);
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "7777"));
    free(json);
}

/* ---- encoders pinned to exact texts, decoders round-trip ---- */

static void test_required_exact_and_round_trip(void **state)
{
    os_x402_requirement r, back;
    char code[OS_X402_ERROR_MAX], err[OS_X402_ERR_LEN];
    char *v, *text;
    (void)state;

    fill_requirement(&r, true, true);
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "/v1/infer", &r), OS_OK);
    text = unb64(v);
    assert_string_equal(text, REQUIRED_FULL);
    free(text);
    memset(&back, 0x55, sizeof(back));
    assert_int_equal(os_x402_required_decode(&back, code, sizeof(code), v, err, sizeof(err)),
                     OS_OK);
    assert_string_equal(code, "payment_required");
    assert_req_equal(&back, &r);
    free(v);

    fill_requirement(&r, false, false);
    assert_int_equal(os_x402_required_encode(&v, "insufficient_amount", "/v1/infer", &r), OS_OK);
    text = unb64(v);
    assert_string_equal(text, REQUIRED_MIN);
    free(text);
    memset(&back, 0x55, sizeof(back));
    assert_int_equal(os_x402_required_decode(&back, NULL, 0, v, err, sizeof(err)), OS_OK);
    assert_false(back.has_channel);
    assert_false(back.has_metadata_hash);
    assert_req_equal(&back, &r);
    free(v);

    /* metadataHash without a channel view, and the other way round */
    for (int i = 0; i < 2; i++) {
        fill_requirement(&r, i == 0, i == 1);
        assert_int_equal(os_x402_required_encode(&v, "stale_nonce", "/v1/infer", &r), OS_OK);
        assert_int_equal(os_x402_required_decode(&back, code, sizeof(code), v, err, sizeof(err)),
                         OS_OK);
        assert_req_equal(&back, &r);
        assert_string_equal(code, "stale_nonce");
        free(v);
    }
}

/* extra.reserved: written after nonce when present, read back, absent means has_reserved false;
 * reserved above consumed, or without the channel view, is refused both ways. */
static void test_required_reserved(void **state)
{
    static const char with_reserved[] =
        "{\"x402Version\":2,\"error\":\"payment_required\",\"resource\":{\"url\":\"/v1/infer\"},"
        "\"accepts\":[" ENTRY_HEAD "\"extra\":{\"escrow\":\"" ESCROW "\",\"channelId\":\"" CHAN
        "\",\"consumed\":\"48210\",\"authorized\":\"49000\",\"nonce\":42,\"reserved\":\"2290\","
        "\"metadataHash\":\"" MHASH "\",\"name\":\"OpenSeedChannels\",\"version\":\"1\"}}]}";
    os_x402_requirement r, back;
    os_voucher vo, vback;
    char code[OS_X402_ERROR_MAX], err[OS_X402_ERR_LEN];
    char *v = NULL, *text, *json;
    (void)state;

    fill_requirement(&r, true, true);
    r.has_reserved = true;
    r.reserved = 2290;
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "/v1/infer", &r), OS_OK);
    text = unb64(v);
    assert_string_equal(text, with_reserved);
    free(text);
    memset(&back, 0x55, sizeof(back));
    assert_int_equal(os_x402_required_decode(&back, code, sizeof(code), v, err, sizeof(err)),
                     OS_OK);
    assert_true(back.has_reserved);
    assert_int_equal(back.reserved, 2290);
    assert_req_equal(&back, &r);
    free(v);

    /* the bounds: 0 and all of consumed */
    for (int i = 0; i < 2; i++) {
        r.reserved = i == 0 ? 0 : r.consumed;
        assert_int_equal(os_x402_required_encode(&v, "stale_nonce", "/v1/infer", &r), OS_OK);
        assert_int_equal(os_x402_required_decode(&back, code, sizeof(code), v, err, sizeof(err)),
                         OS_OK);
        assert_req_equal(&back, &r);
        free(v);
    }

    /* a buyer echoing the invoice carries it in accepted, and it comes back */
    r.reserved = 2290;
    fill_voucher(&vo);
    assert_int_equal(os_x402_payment_encode(&v, &r, &vo), OS_OK);
    memset(&back, 0x55, sizeof(back));
    assert_int_equal(os_x402_payment_decode(&vback, &back, v, err, sizeof(err)), OS_OK);
    assert_req_equal(&back, &r);
    free(v);

    /* absent: has_reserved false (an older seller's invoice) */
    v = b64(REQUIRED_FULL);
    memset(&back, 0x55, sizeof(back));
    assert_int_equal(os_x402_required_decode(&back, code, sizeof(code), v, err, sizeof(err)),
                     OS_OK);
    assert_true(back.has_channel);
    assert_false(back.has_reserved);
    free(v);

    /* the encoder refuses what the decoder would */
    fill_requirement(&r, true, true);
    r.has_reserved = true;
    r.reserved = r.consumed + 1;
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "/v1/infer", &r),
                     OS_ERR_INVALID);
    assert_null(v);
    assert_int_equal(os_x402_payment_encode(&v, &r, &vo), OS_ERR_INVALID);
    assert_null(v);
    fill_requirement(&r, false, true);
    r.has_reserved = true;
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "/v1/infer", &r),
                     OS_ERR_INVALID);
    assert_null(v);

    /* the decoder: above consumed, without the channel view, not a canonical decimal string */
    refuse(decode_required_any, with_reserved, "\"reserved\":\"2290\"", "\"reserved\":\"48211\"",
           OS_ERR_INVALID);
    refuse(decode_required_any, with_reserved, "\"reserved\":\"2290\"",
           "\"reserved\":\"18446744073709551615\"", OS_ERR_INVALID);
    refuse(decode_required_any, with_reserved, "\"reserved\":\"2290\"", "\"reserved\":2290",
           OS_ERR_INVALID);
    refuse(decode_required_any, with_reserved, "\"reserved\":\"2290\"", "\"reserved\":\"02290\"",
           OS_ERR_INVALID);
    refuse(decode_required_any, with_reserved, "\"reserved\":\"2290\"", "\"reserved\":\"-7777\"",
           OS_ERR_INVALID);
    json = subst(REQUIRED_MIN, "\"name\":", "\"reserved\":\"0\",\"name\":");
    refuse(decode_required_any, json, "\"reserved\":\"0\"", "\"reserved\":\"0\"", OS_ERR_INVALID);
    free(json);
    /* the channel view without reserved is still whole; reserved does not make a partial one */
    refuse(decode_required_any, with_reserved, "\"nonce\":42,", "", OS_ERR_INVALID);
}

/* The same checks through jansson rather than a literal: types as the x402 v2 wire wants them. */
static void test_required_field_types(void **state)
{
    os_x402_requirement r;
    json_t *root, *e, *x;
    json_error_t je;
    char *v, *text;
    (void)state;

    fill_requirement(&r, true, true);
    r.amount = UINT64_MAX; /* above 2^53: a JSON number would lose it */
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "/v1/infer", &r), OS_OK);
    text = unb64(v);
    root = json_loads(text, 0, &je);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "x402Version")), 2);
    assert_true(json_is_integer(json_object_get(root, "x402Version")));
    e = json_array_get(json_object_get(root, "accepts"), 0);
    assert_int_equal(json_array_size(json_object_get(root, "accepts")), 1);
    assert_string_equal(json_string_value(json_object_get(e, "network")), "eip155:8453");
    assert_true(json_is_string(json_object_get(e, "amount")));
    assert_string_equal(json_string_value(json_object_get(e, "amount")), "18446744073709551615");
    assert_string_equal(json_string_value(json_object_get(e, "payTo")), PAYTO);
    x = json_object_get(e, "extra");
    assert_true(json_is_string(json_object_get(x, "consumed")));
    assert_true(json_is_string(json_object_get(x, "authorized")));
    assert_true(json_is_integer(json_object_get(x, "nonce")));
    assert_string_equal(json_string_value(json_object_get(x, "channelId")), CHAN);
    json_decref(root);
    free(text);
    free(v);
}

static void test_payment_exact_and_round_trip(void **state)
{
    os_x402_requirement acc, acc_back;
    os_voucher vo, vo_back;
    char err[OS_X402_ERR_LEN];
    char *v, *text;
    (void)state;

    fill_requirement(&acc, false, false);
    fill_voucher(&vo);
    assert_int_equal(os_x402_payment_encode(&v, &acc, &vo), OS_OK);
    text = unb64(v);
    assert_string_equal(text, PAYMENT);
    free(text);
    memset(&vo_back, 0x55, sizeof(vo_back));
    assert_int_equal(os_x402_payment_decode(&vo_back, &acc_back, v, err, sizeof(err)), OS_OK);
    assert_memory_equal(vo_back.channel_id, vo.channel_id, 32);
    assert_int_equal(vo_back.cumulative_amount, 50790);
    assert_int_equal(vo_back.nonce, 43);
    assert_memory_equal(vo_back.metadata_hash, vo.metadata_hash, 32);
    assert_memory_equal(vo_back.sig, vo.sig, 65);
    assert_req_equal(&acc_back, &acc);
    /* accepted may be NULL */
    assert_int_equal(os_x402_payment_decode(&vo_back, NULL, v, err, sizeof(err)), OS_OK);
    free(v);

    /* an accepted entry echoing a full 402 comes back whole */
    fill_requirement(&acc, true, true);
    assert_int_equal(os_x402_payment_encode(&v, &acc, &vo), OS_OK);
    assert_int_equal(os_x402_payment_decode(&vo_back, &acc_back, v, err, sizeof(err)), OS_OK);
    assert_req_equal(&acc_back, &acc);
    free(v);

    /* the largest nonce JSON integers carry here */
    vo.nonce = INT64_MAX;
    assert_int_equal(os_x402_payment_encode(&v, &acc, &vo), OS_OK);
    assert_int_equal(os_x402_payment_decode(&vo_back, NULL, v, err, sizeof(err)), OS_OK);
    assert_int_equal(vo_back.nonce, INT64_MAX);
    free(v);
}

static void test_response_exact_and_round_trip(void **state)
{
    uint8_t id[32], back[32];
    uint64_t chain = 0, amount = 0;
    bool ok = false;
    char err[OS_X402_ERR_LEN];
    char *v, *text;
    (void)state;

    tu_unhex(id, 32, CHAN);
    assert_int_equal(os_x402_response_encode(&v, 8453, 1187, id), OS_OK);
    text = unb64(v);
    assert_string_equal(text, RESPONSE);
    free(text);
    assert_int_equal(os_x402_response_decode(&ok, &chain, &amount, back, v, err, sizeof(err)),
                     OS_OK);
    assert_true(ok);
    assert_int_equal(chain, 8453);
    assert_int_equal(amount, 1187);
    assert_memory_equal(back, id, 32);
    free(v);

    /* success false decodes (it is a receipt saying no) */
    char *no = subst(RESPONSE, "true", "false");
    v = b64(no);
    assert_int_equal(os_x402_response_decode(&ok, &chain, &amount, back, v, err, sizeof(err)),
                     OS_OK);
    assert_false(ok);
    free(v);
    free(no);
}

static void test_encoder_refusals(void **state)
{
    os_x402_requirement r;
    os_voucher vo;
    uint8_t id[32] = {0};
    char *v = (char *)1;
    (void)state;

    fill_requirement(&r, true, true);
    fill_voucher(&vo);
    assert_int_equal(os_x402_required_encode(&v, "Payment-Required", "/v1/infer", &r),
                     OS_ERR_INVALID);
    assert_null(v);
    assert_int_equal(os_x402_required_encode(&v, "", "/v1/infer", &r), OS_ERR_INVALID);
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "/v1/ infer", &r),
                     OS_ERR_INVALID);
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "", &r), OS_ERR_INVALID);
    assert_int_equal(os_x402_required_encode(&v, NULL, "/v1/infer", &r), OS_ERR_INVALID);
    r.nonce = (uint64_t)INT64_MAX + 1;
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "/v1/infer", &r),
                     OS_ERR_INVALID);
    fill_requirement(&r, true, true);
    r.chain_id = 0;
    assert_int_equal(os_x402_required_encode(&v, "payment_required", "/v1/infer", &r),
                     OS_ERR_INVALID);
    fill_requirement(&r, false, false);
    vo.nonce = (uint64_t)INT64_MAX + 1;
    assert_int_equal(os_x402_payment_encode(&v, &r, &vo), OS_ERR_INVALID);
    assert_int_equal(os_x402_response_encode(&v, 0, 1, id), OS_ERR_INVALID);
    assert_null(v);
}

/* ---- decoder refusals ---- */

static void test_refuse_encoding(void **state)
{
    os_x402_requirement r;
    char err[OS_X402_ERR_LEN];
    char *good = NULL, *bad;
    size_t n = 0;
    (void)state;

    /* a valid value whose base64 ends in padding (the resource's length picks the remainder) */
    for (int i = 0; i < 3 && (good == NULL || good[n - 1] != '='); i++) {
        static const char *const urls[] = {"\"/v1/infer\"", "\"/v1/infer2\"", "\"/v1/infer23\""};
        char *json = subst(REQUIRED_FULL, "\"/v1/infer\"", urls[i]);
        free(good);
        good = b64(json);
        n = strlen(good);
        free(json);
    }

    assert_int_equal(os_x402_required_decode(&r, NULL, 0, good, err, sizeof(err)), OS_OK);
    /* missing padding, whitespace, URL-safe alphabet, a byte outside the alphabet, empty, NULL */
    bad = strdup(good);
    assert_true(n > 8 && bad[n - 1] == '=');
    bad[n - 1] = '\0';
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, bad, err, sizeof(err)), OS_ERR_INVALID);
    free(bad);
    bad = subst(good, "eyJ4", "eyJ4 ");
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, bad, err, sizeof(err)), OS_ERR_INVALID);
    free(bad);
    bad = strdup(good);
    bad[10] = '-';
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, bad, err, sizeof(err)), OS_ERR_INVALID);
    bad[10] = (char)0xc3;
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, bad, err, sizeof(err)), OS_ERR_INVALID);
    free(bad);
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, "", err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, NULL, err, sizeof(err)), OS_ERR_INVALID);
    free(good);

    /* valid base64 of something that is not JSON, or JSON that is not an object */
    bad = b64("payment please");
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, bad, err, sizeof(err)), OS_ERR_INVALID);
    free(bad);
    bad = b64("[2]");
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, bad, err, sizeof(err)), OS_ERR_INVALID);
    free(bad);
    /* trailing data and duplicate keys */
    bad = b64("{\"x402Version\":2}{}");
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, bad, err, sizeof(err)), OS_ERR_INVALID);
    free(bad);
    char *dup = subst(REQUIRED_FULL, "\"x402Version\":2,", "\"x402Version\":2,\"x402Version\":2,");
    bad = b64(dup);
    assert_int_equal(os_x402_required_decode(&r, NULL, 0, bad, err, sizeof(err)), OS_ERR_INVALID);
    free(bad);
    free(dup);
}

/* Length and depth caps, each shown to be the reason by a passing value just inside it. */
static void test_refuse_size(void **state)
{
    static const char other_fmt[] = "[{\"scheme\":\"exact\",\"pad\":\"%s\"},{";
    os_x402_requirement r;
    char err[OS_X402_ERR_LEN];
    char pad[4000], other[4200];
    char *v, *json;
    (void)state;

    /* Another scheme's entry padded so the JSON is exactly 3072 bytes (4096 base64 characters,
     * the cap), then 3 bytes more (4100). */
    size_t fixed = strlen(REQUIRED_FULL) - 2 + strlen(other_fmt) - 2;
    size_t fit = (OS_X402_HEADER_MAX / 4) * 3 - fixed;
    for (int over = 0; over < 2; over++) {
        size_t n = fit + (over ? 3 : 0);
        memset(pad, 'p', n);
        pad[n] = '\0';
        snprintf(other, sizeof(other), other_fmt, pad);
        json = subst(REQUIRED_FULL, "[{", other);
        v = b64(json);
        assert_int_equal(strlen(v), over ? OS_X402_HEADER_MAX + 4 : OS_X402_HEADER_MAX);
        assert_int_equal(os_x402_required_decode(&r, NULL, 0, v, err, sizeof(err)),
                         over ? OS_ERR_INVALID : OS_OK);
        if (over)
            assert_non_null(strstr(err, "longer"));
        free(v);
        free(json);
    }

    /* Depth: another scheme's field nested to the cap is fine, one more level is not (root,
     * accepts and the entry take three levels). */
    for (int over = 0; over < 2; over++) {
        char nest[64];
        int levels = OS_X402_JSON_DEPTH - 3 + over;
        memset(nest, '[', (size_t)levels);
        memset(nest + levels, ']', (size_t)levels);
        nest[2 * levels] = '\0';
        snprintf(other, sizeof(other), "[{\"scheme\":\"exact\",\"deep\":%s},{", nest);
        json = subst(REQUIRED_FULL, "[{", other);
        v = b64(json);
        assert_int_equal(os_x402_required_decode(&r, NULL, 0, v, err, sizeof(err)),
                         over ? OS_ERR_INVALID : OS_OK);
        free(v);
        free(json);
    }
}

static void test_refuse_required_fields(void **state)
{
    decode_fn f = decode_required_any;
    const char *B = REQUIRED_FULL;
    char err[OS_X402_ERR_LEN];
    os_x402_requirement r;
    (void)state;

    assert_int_equal(decode_required_text(B, &r, err, sizeof(err)), OS_OK);
    /* unknown fields at every level */
    refuse(f, B, "{\"x402Version\"", "{\"extensions\":{},\"x402Version\"", OS_ERR_INVALID);
    refuse(f, B, "{\"url\"", "{\"description\":\"7777\",\"url\"", OS_ERR_INVALID);
    refuse(f, B, "\"maxTimeoutSeconds\"", "\"mimeType\":\"x\",\"maxTimeoutSeconds\"",
           OS_ERR_INVALID);
    refuse(f, B, "\"name\":", "\"salt\":\"7777\",\"name\":", OS_ERR_INVALID);
    /* missing fields */
    refuse(f, B, "\"error\":\"payment_required\",", "", OS_ERR_INVALID);
    refuse(f, B, "\"resource\":{\"url\":\"/v1/infer\"},", "", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1290\",", "", OS_ERR_INVALID);
    refuse(f, B, "\"name\":\"OpenSeedChannels\",", "", OS_ERR_INVALID);
    refuse(f, B, "\"escrow\":\"" ESCROW "\",", "", OS_ERR_INVALID);
    /* x402Version */
    refuse(f, B, "\"x402Version\":2", "\"x402Version\":1", OS_ERR_INVALID);
    refuse(f, B, "\"x402Version\":2", "\"x402Version\":\"2\"", OS_ERR_INVALID);
    refuse(f, B, "\"x402Version\":2", "\"x402Version\":2.0", OS_ERR_INVALID);
    refuse(f, B, "\"x402Version\":2,", "", OS_ERR_INVALID);
    /* amounts: strings in canonical form only */
    refuse(f, B, "\"amount\":\"1290\"", "\"amount\":1290", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1290\"", "\"amount\":\"01\"", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1290\"", "\"amount\":\"1e3\"", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1290\"", "\"amount\":\"-1\"", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1290\"", "\"amount\":\"+7777\"", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1290\"", "\"amount\":\"7777.5\"", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1290\"", "\"amount\":\"\"", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1290\"", "\"amount\":\"18446744073709551616\"", OS_ERR_INVALID);
    refuse(f, B, "\"consumed\":\"48210\"", "\"consumed\":48210", OS_ERR_INVALID);
    refuse(f, B, "\"authorized\":\"49000\"", "\"authorized\":\"049000\"", OS_ERR_INVALID);
    /* integers: JSON integers only */
    refuse(f, B, "\"nonce\":42", "\"nonce\":\"42\"", OS_ERR_INVALID);
    refuse(f, B, "\"nonce\":42", "\"nonce\":-1", OS_ERR_INVALID);
    refuse(f, B, "\"nonce\":42", "\"nonce\":42.0", OS_ERR_INVALID);
    refuse(f, B, "\"maxTimeoutSeconds\":60", "\"maxTimeoutSeconds\":\"60\"", OS_ERR_INVALID);
    refuse(f, B, "\"maxTimeoutSeconds\":60", "\"maxTimeoutSeconds\":4294967296", OS_ERR_INVALID);
    /* hashes: 0x + 64 lower-case hex digits */
    refuse(f, B, CHAN, "0x0102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f20",
           OS_ERR_INVALID);
    refuse(f, B, CHAN, "0X0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
           OS_ERR_INVALID);
    refuse(f, B, CHAN, "0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
           OS_ERR_INVALID);
    refuse(f, B, CHAN, "0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021",
           OS_ERR_INVALID);
    refuse(f, B, CHAN, "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2077",
           OS_ERR_INVALID);
    refuse(f, B, CHAN, "0x77770g0405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
           OS_ERR_INVALID);
    refuse(f, B, MHASH, "0xC5D2460186F7233C927E7DB2DCC703C0E500B653CA82273B7BFAD8045D85A470",
           OS_ERR_INVALID);
    /* addresses: EIP-55 checksum (one letter's case flipped), length, hex */
    refuse(f, B, PAYTO, "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", OS_ERR_INVALID);
    refuse(f, B, ESCROW, "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d3", OS_ERR_INVALID);
    refuse(f, B, ASSET, "0x7777", OS_ERR_INVALID);
    /* network */
    refuse(f, B, "eip155:8453", "eip155:0", OS_ERR_INVALID);
    refuse(f, B, "eip155:8453", "eip155:08453", OS_ERR_INVALID);
    refuse(f, B, "eip155:8453", "eip155:", OS_ERR_INVALID);
    refuse(f, B, "eip155:8453", "eip155:7777x", OS_ERR_INVALID);
    refuse(f, B, "eip155:8453", "base-7777", OS_ERR_INVALID);
    /* extra: the domain, and the channel view whole or not at all */
    refuse(f, B, "\"OpenSeedChannels\"", "\"OpenSeedChannelz\"", OS_ERR_INVALID);
    refuse(f, B, "\"version\":\"1\"", "\"version\":\"2\"", OS_ERR_INVALID);
    refuse(f, B, "\"version\":\"1\"", "\"version\":1", OS_ERR_INVALID);
    refuse(f, B, "\"nonce\":42,", "", OS_ERR_INVALID);
    refuse(f, B, "\"channelId\":\"" CHAN "\",", "", OS_ERR_INVALID);
    refuse(f, B, EXTRA_FULL, "[]", OS_ERR_INVALID);
    refuse(f, B, EXTRA_FULL, "\"7777\"", OS_ERR_INVALID);
    refuse(f, B, "{\"url\":\"/v1/infer\"}", "\"/v1/infer\"", OS_ERR_INVALID);
    /* error code and resource */
    refuse(f, B, "\"payment_required\"", "\"Payment Required 7777\"", OS_ERR_INVALID);
    refuse(f, B, "\"payment_required\"", "\"\"", OS_ERR_INVALID);
    refuse(f, B, "\"payment_required\"", "7777", OS_ERR_INVALID);
    refuse(f, B, "\"/v1/infer\"", "\"/v1/in fer\"", OS_ERR_INVALID);
    /* accepts */
    refuse(f, B, "\"accepts\":[{", "\"accepts\":[7777,{", OS_ERR_INVALID);
    refuse(f, B, "\"accepts\":[{", "\"accepts\":[{\"x\":1},{", OS_ERR_INVALID);
    refuse(f, B, "[" ENTRY_FULL "]", "{\"a\":" ENTRY_FULL "}", OS_ERR_INVALID);
    refuse(f, B, "[" ENTRY_FULL "]", ENTRY_FULL, OS_ERR_INVALID);
    /* an empty accepts has no entry of ours */
    {
        char *json = subst(B, "[" ENTRY_FULL "]", "[]");
        assert_int_equal(decode_required_any(json, err, sizeof(err)), OS_ERR_NOTFOUND);
        free(json);
    }
}

static void test_required_schemes(void **state)
{
    os_x402_requirement r, want;
    char code[OS_X402_ERROR_MAX] = "untouched", err[OS_X402_ERR_LEN];
    char *json, *v;
    (void)state;

    /* only another scheme: not found, outputs untouched */
    json = subst(REQUIRED_FULL, "\"scheme\":\"openseed-channel\"", "\"scheme\":\"exact\"");
    v = b64(json);
    memset(&r, 0x55, sizeof(r));
    assert_int_equal(os_x402_required_decode(&r, code, sizeof(code), v, err, sizeof(err)),
                     OS_ERR_NOTFOUND);
    assert_string_equal(code, "untouched");
    assert_int_equal(r.chain_id, 0x5555555555555555ull);
    free(v);
    free(json);

    /* another scheme first (with fields of its own, which are not our business), then ours */
    json = subst(REQUIRED_FULL, "[{",
                 "[{\"scheme\":\"exact\",\"network\":\"eip155:1\",\"amount\":7,\"asset\":\"x\","
                 "\"extra\":{\"name\":\"USD Coin\",\"version\":\"2\"},\"unknown\":true},{");
    v = b64(json);
    assert_int_equal(os_x402_required_decode(&r, code, sizeof(code), v, err, sizeof(err)), OS_OK);
    fill_requirement(&want, true, true);
    assert_req_equal(&r, &want);
    assert_string_equal(code, "payment_required");
    free(v);
    free(json);

    /* two of ours: the first wins */
    json = subst(REQUIRED_FULL, "[{", "[" ENTRY_MIN ",{");
    v = b64(json);
    assert_int_equal(os_x402_required_decode(&r, code, sizeof(code), v, err, sizeof(err)), OS_OK);
    assert_false(r.has_channel);
    free(v);
    free(json);

    /* a malformed entry of ours is not skipped in favour of a later one */
    json =
        subst(REQUIRED_FULL, "[{",
              "[" ENTRY_HEAD "\"extra\":{\"escrow\":\"" ESCROW "\",\"name\":\"OpenSeedChannels\","
              "\"version\":\"9\"}},{");
    v = b64(json);
    assert_int_equal(os_x402_required_decode(&r, code, sizeof(code), v, err, sizeof(err)),
                     OS_ERR_INVALID);
    free(v);
    free(json);

    /* an error code longer than the caller's buffer */
    v = b64(REQUIRED_FULL);
    assert_int_equal(os_x402_required_decode(&r, code, 4, v, err, sizeof(err)), OS_ERR_INVALID);
    free(v);
}

static void test_refuse_payment_fields(void **state)
{
    decode_fn f = decode_payment_text;
    const char *B = PAYMENT;
    char err[OS_X402_ERR_LEN];
    (void)state;

    assert_int_equal(f(B, err, sizeof(err)), OS_OK);
    refuse(f, B, "{\"x402Version\"", "{\"resource\":{},\"x402Version\"", OS_ERR_INVALID);
    refuse(f, B, "\"maxTimeoutSeconds\"", "\"x\":7777,\"maxTimeoutSeconds\"", OS_ERR_INVALID);
    refuse(f, B, "\"name\":", "\"chainId\":7777,\"name\":", OS_ERR_INVALID);
    refuse(f, B, "{\"channelId\"", "{\"payer\":\"7777\",\"channelId\"", OS_ERR_INVALID);
    refuse(f, B, "\"x402Version\":2", "\"x402Version\":1", OS_ERR_INVALID);
    refuse(f, B, "\"scheme\":\"openseed-channel\"", "\"scheme\":\"exact\"", OS_ERR_INVALID);
    refuse(f, B, "\"cumulativeAmount\":\"50790\"", "\"cumulativeAmount\":50790", OS_ERR_INVALID);
    refuse(f, B, "\"cumulativeAmount\":\"50790\"", "\"cumulativeAmount\":\"050790\"",
           OS_ERR_INVALID);
    refuse(f, B, "\"cumulativeAmount\":\"50790\"", "\"cumulativeAmount\":\"5.07e4\"",
           OS_ERR_INVALID);
    refuse(f, B, "\"nonce\":43", "\"nonce\":\"43\"", OS_ERR_INVALID);
    refuse(f, B, "\"nonce\":43", "\"nonce\":9223372036854775808", OS_ERR_INVALID);
    refuse(f, B, PAYLOAD, "[]", OS_ERR_INVALID);
    refuse(f, B, ENTRY_MIN, "\"7777\"", OS_ERR_INVALID);
    refuse(f, B, "\"metadataHash\":\"" MHASH "\"", "\"metadataHash\":null", OS_ERR_INVALID);
    refuse(f, B, ",\"signature\":\"" SIG "\"", "", OS_ERR_INVALID);
    refuse(f, B, "\"signature\":\"" SIG "\"", "\"signature\":\"" SIG "\",\"signature\":\"0x\"",
           OS_ERR_INVALID);
    /* hex: a 64-byte signature (EIP-2098 compact form is not ours), 66 bytes, upper case */
    {
        char sig64[2 + 128 + 1], sig66[2 + 132 + 1], up[sizeof(SIG)];
        memcpy(sig64, SIG, 130);
        sig64[130] = '\0';
        snprintf(sig66, sizeof(sig66), "%s%s", SIG, "00");
        memcpy(up, SIG, sizeof(SIG));
        up[5] = 'A';
        refuse(f, B, SIG, sig64, OS_ERR_INVALID);
        refuse(f, B, SIG, sig66, OS_ERR_INVALID);
        refuse(f, B, SIG, up, OS_ERR_INVALID);
    }
    refuse(f, B, "\"channelId\":\"" CHAN "\"",
           "\"channelId\":\"0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1F20\"",
           OS_ERR_INVALID);
    refuse(f, B, "\"metadataHash\":\"" MHASH "\"", "\"metadataHash\":\"0x7777\"", OS_ERR_INVALID);

    /* outputs untouched on failure */
    {
        os_voucher v;
        os_x402_requirement acc;
        char *json = subst(B, "\"nonce\":43", "\"nonce\":\"43\"");
        char *h = b64(json);
        memset(&v, 0x55, sizeof(v));
        memset(&acc, 0x55, sizeof(acc));
        assert_int_equal(os_x402_payment_decode(&v, &acc, h, err, sizeof(err)), OS_ERR_INVALID);
        assert_int_equal(v.cumulative_amount, 0x5555555555555555ull);
        assert_int_equal(acc.chain_id, 0x5555555555555555ull);
        free(h);
        free(json);
    }
}

static void test_refuse_response_fields(void **state)
{
    decode_fn f = decode_response_text;
    const char *B = RESPONSE;
    char err[OS_X402_ERR_LEN];
    (void)state;

    assert_int_equal(f(B, err, sizeof(err)), OS_OK);
    refuse(f, B, "{\"success\"", "{\"transaction\":\"0x7777\",\"success\"", OS_ERR_INVALID);
    refuse(f, B, "\"success\":true", "\"success\":1", OS_ERR_INVALID);
    refuse(f, B, "\"success\":true", "\"success\":\"true\"", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1187\"", "\"amount\":1187", OS_ERR_INVALID);
    refuse(f, B, "\"amount\":\"1187\"", "\"amount\":\"01187\"", OS_ERR_INVALID);
    refuse(f, B, "\"network\":\"eip155:8453\"", "\"network\":\"eip155:-7777\"", OS_ERR_INVALID);
    refuse(f, B, CHAN, "0x7777", OS_ERR_INVALID);
    refuse(f, B, CHAN, PAYTO, OS_ERR_INVALID); /* an address is not a channel id */
    refuse(f, B, ",\"payer\":\"" CHAN "\"", "", OS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_required_exact_and_round_trip),
        cmocka_unit_test(test_required_field_types),
        cmocka_unit_test(test_required_reserved),
        cmocka_unit_test(test_payment_exact_and_round_trip),
        cmocka_unit_test(test_response_exact_and_round_trip),
        cmocka_unit_test(test_encoder_refusals),
        cmocka_unit_test(test_refuse_encoding),
        cmocka_unit_test(test_refuse_size),
        cmocka_unit_test(test_refuse_required_fields),
        cmocka_unit_test(test_required_schemes),
        cmocka_unit_test(test_refuse_payment_fields),
        cmocka_unit_test(test_refuse_response_fields),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
