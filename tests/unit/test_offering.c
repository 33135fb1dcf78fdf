/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Offering builder and an offering's JSON (offering.h).
 *
 * Known answers: the offering of PROTOCOL.md §3's record example, which the builder must produce
 * byte for byte (both sides serialised with sorted keys, no whitespace), and that record, with the
 * values test_record.c signs, whose signature by key 1 must equal the one ethers 6.17 computed
 * (Wallet.signingKey.sign of TypedDataEncoder.hash; see test_record.c), so an offering from the
 * builder signs exactly as an independent implementation signs the protocol's example.
 *
 * Then every setter with values it takes and values it refuses (the refusal names the field and
 * changes nothing), the sticky first error, completeness at build time (not sticky), fields
 * changed behind the builder's back, the USDC price parser's edges, and os_offering_from_json's
 * refusals, which are os_record_parse's with "offerings[i]: " in front.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

#include "openseed/ct.h"
#include "openseed/json.h"
#include "openseed/offering.h"
#include "openseed/secp.h"

/* PROTOCOL.md §3, the "offerings" entry of the record example, verbatim. */
static const char example_offering[] =
    "{\"capability\":\"inference\",\"services\":[\"llama3.1-8b\"],\"model\":\"llama3.1:8b\",\n"
    "   \"apis\":[\"openai.chat\",\"openai.embeddings\",\"anthropic.messages\"],\n"
    "   \"pricing\":{\"input\":\"100000\",\"output\":\"300000\",\"cached\":\"50000\"},"
    "\"max_output_tokens\":4096}";

/* test_record.c's record (PROTOCOL.md §3 with these values) and ethers 6.17's signature of it by
 * the scalar 1 (address 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf). */
#define PRIV1 "0000000000000000000000000000000000000000000000000000000000000001"
#define ADDR1 "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
#define ESCROW "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define ASSET "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
#define KEYCONFIG /* RFC 9458 Appendix A */                                                        \
    "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003"
#define RECORD_SIG                                                                                 \
    "37c6648f70ce65f0a4d32319de43768d944bd6c4facb0ee3368f652c2400752912b0a0737b038ec9e60c15d3a294" \
    "2cb756d97fa0ed6086a0592e5c6b097a5cea1c"

static char *canonical(const json_t *v)
{
    char *s = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(s);
    return s;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (v == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return v;
}

/* The §3 offering through the builder. */
static void example_builder(os_offering_builder *b)
{
    os_offering_builder_init(b);
    assert_int_equal(os_offering_service(b, "llama3.1-8b"), OS_OK);
    assert_int_equal(os_offering_model(b, "llama3.1:8b"), OS_OK);
    /* added out of order: the JSON lists them in the protocol's order all the same */
    assert_int_equal(os_offering_api(b, "anthropic.messages"), OS_OK);
    assert_int_equal(os_offering_api(b, "openai.chat"), OS_OK);
    assert_int_equal(os_offering_api(b, "openai.embeddings"), OS_OK);
    assert_int_equal(os_offering_price_usdc(b, "0.1", "0.30", "0.05"), OS_OK);
}

static void test_example_bytes(void **state)
{
    os_offering_builder b;
    os_offering o;
    (void)state;

    example_builder(&b);
    assert_int_equal(os_offering_build(&b, &o), OS_OK);
    assert_string_equal(b.error, "");
    assert_string_equal(o.capability, "inference");
    assert_int_equal(o.max_output_tokens, 4096); /* the default */
    assert_int_equal(o.pricing.input, 100000);
    assert_int_equal(o.pricing.output, 300000);
    assert_int_equal(o.pricing.cached, 50000);

    json_t *got = os_offering_to_json(&o), *want = load(example_offering);
    assert_non_null(got);
    char *g = canonical(got), *w = canonical(want);
    assert_string_equal(g, w);
    assert_string_equal(
        g, "{\"apis\":[\"openai.chat\",\"openai.embeddings\",\"anthropic.messages\"],"
           "\"capability\":\"inference\",\"max_output_tokens\":4096,\"model\":\"llama3.1:8b\","
           "\"pricing\":{\"cached\":\"50000\",\"input\":\"100000\",\"output\":\"300000\"},"
           "\"services\":[\"llama3.1-8b\"]}");
    free(g);
    free(w);

    /* and the example reads back to the very offering built */
    os_offering back;
    char err[OS_RECORD_ERR_LEN];
    memset(&back, 0x5a, sizeof(back));
    assert_int_equal(os_offering_from_json(&back, want, err, sizeof(err)), OS_OK);
    assert_memory_equal(&back, &o, sizeof(o));
    json_decref(got);
    json_decref(want);

    /* the same with integer prices */
    os_offering o2;
    example_builder(&b);
    assert_int_equal(os_offering_price(&b, 100000, 300000, 50000), OS_OK);
    assert_int_equal(os_offering_build(&b, &o2), OS_OK);
    assert_memory_equal(&o2, &o, sizeof(o));
}

/* The builder's offering in the §3 record; the whole record through JSON, signature and parse. */
static void test_record_round_trip(void **state)
{
    os_offering_builder b;
    os_record *r = calloc(1, sizeof(*r)), *back = calloc(1, sizeof(*back));
    uint8_t priv[32], sig[65];
    size_t n;
    char err[OS_RECORD_ERR_LEN];
    (void)state;

    assert_non_null(r);
    assert_non_null(back);
    assert_int_equal(os_eip55_parse(r->node, ADDR1), OS_OK);
    snprintf(r->endpoint, sizeof(r->endpoint), "https://seller.example:8378");
    r->seq = 1763700000123ULL;
    r->timestamp = 1763700000;
    r->chain_id = 8453;
    assert_int_equal(os_eip55_parse(r->escrow, ESCROW), OS_OK);
    assert_int_equal(os_eip55_parse(r->asset, ASSET), OS_OK);
    assert_int_equal(
        os_hex_decode(r->ohttp_keys, sizeof(r->ohttp_keys), &n, KEYCONFIG, strlen(KEYCONFIG)),
        OS_OK);
    r->ohttp_keys_len = n;
    example_builder(&b);
    assert_int_equal(os_offering_build(&b, &r->offerings[0]), OS_OK);
    r->n_offerings = 1;

    json_t *j = os_record_to_json(r);
    assert_non_null(j);
    tu_unhex(priv, 32, PRIV1);
    assert_int_equal(os_record_sign(sig, j, priv), OS_OK);
    tu_assert_hex(sig, 65, RECORD_SIG); /* ethers' signature of the §3 record */
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    j = load(text);
    free(text);
    assert_int_equal(os_record_verify(back, j, sig, err, sizeof(err)), OS_OK);
    assert_memory_equal(back, r, sizeof(*r));
    json_decref(j);

    /* a second offering: another capability, services, every field off its default */
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_capability(&b, "agent"), OS_OK);
    assert_int_equal(os_offering_service(&b, "a"), OS_OK);
    assert_int_equal(os_offering_service(&b, "B.c_d:e/f-9"), OS_OK);
    assert_int_equal(os_offering_model(&b, "mod\xc3\xa8le 7B"), OS_OK); /* UTF-8, a space */
    assert_int_equal(os_offering_api(&b, "anthropic.messages"), OS_OK);
    assert_int_equal(os_offering_price(&b, 0, UINT64_MAX, 7), OS_OK);
    assert_int_equal(os_offering_max_output(&b, 1000000), OS_OK);
    assert_int_equal(os_offering_build(&b, &r->offerings[1]), OS_OK);
    r->n_offerings = 2;
    j = os_record_to_json(r);
    assert_non_null(j);
    assert_int_equal(os_record_parse(back, j, err, sizeof(err)), OS_OK);
    assert_memory_equal(back, r, sizeof(*r));
    assert_string_equal(back->offerings[1].services[1], "B.c_d:e/f-9");
    assert_true(back->offerings[1].pricing.output == UINT64_MAX);
    json_decref(j);
    free(r);
    free(back);
}

/* A setter that must refuse: OS_ERR_INVALID, the message, nothing changed, and it sticks. */
#define REFUSE(b, call, msg)                                                                       \
    do {                                                                                           \
        os_offering before_ = (b)->offering;                                                       \
        bool m_ = (b)->has_model, p_ = (b)->has_price;                                             \
        assert_int_equal((call), OS_ERR_INVALID);                                                  \
        assert_string_equal((b)->error, (msg));                                                    \
        assert_memory_equal(&(b)->offering, &before_, sizeof(before_));                            \
        assert_int_equal((b)->has_model, m_);                                                      \
        assert_int_equal((b)->has_price, p_);                                                      \
        assert_true((b)->failed);                                                                  \
    } while (0)

static void test_setters(void **state)
{
    os_offering_builder b;
    char name63[64], name64[65], model127[128], model128[129];
    (void)state;

    memset(name63, 'n', 63);
    name63[63] = '\0';
    memset(name64, 'n', 64);
    name64[64] = '\0';
    memset(model127, 'm', 127);
    model127[127] = '\0';
    memset(model128, 'm', 128);
    model128[128] = '\0';

    /* capability */
    os_offering_builder_init(&b);
    assert_string_equal(b.offering.capability, "inference");
    assert_int_equal(os_offering_capability(&b, "tool"), OS_OK);
    assert_string_equal(b.offering.capability, "tool");
    assert_int_equal(os_offering_capability(&b, "agent"), OS_OK);
    assert_string_equal(b.offering.capability, "agent");
    REFUSE(&b, os_offering_capability(&b, "Agent"),
           "capability \"Agent\": must be \"inference\", \"agent\" or \"tool\"");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_capability(&b, NULL), "capability: none given");
    assert_true(os_offering_capability_ok("inference") && os_offering_capability_ok("agent") &&
                os_offering_capability_ok("tool"));
    assert_false(os_offering_capability_ok("Agent") || os_offering_capability_ok("") ||
                 os_offering_capability_ok("tools") || os_offering_capability_ok(NULL));

    /* services: the name rule, duplicates, at most 8 */
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_service(&b, name63), OS_OK);
    assert_string_equal(b.offering.services[0], name63);
    for (int i = 1; i < OS_RECORD_MAX_SERVICES; i++) {
        char s[16];
        snprintf(s, sizeof(s), "s%d", i);
        assert_int_equal(os_offering_service(&b, s), OS_OK);
    }
    assert_int_equal(b.offering.n_services, OS_RECORD_MAX_SERVICES);
    REFUSE(&b, os_offering_service(&b, "ninth"),
           "service \"ninth\": an offering has at most 8 services");
    static const struct {
        const char *in, *msg;
    } bad_services[] = {
        {"a b", "service \"a b\": must be 1 to 63 of [A-Za-z0-9._:/-]"},
        {"", "service \"\": must be 1 to 63 of [A-Za-z0-9._:/-]"},
        {"caf\xc3\xa9", "service \"caf??\": must be 1 to 63 of [A-Za-z0-9._:/-]"},
        {"x\"y", "service \"x?y\": must be 1 to 63 of [A-Za-z0-9._:/-]"},
        {"tab\there", "service \"tab?here\": must be 1 to 63 of [A-Za-z0-9._:/-]"},
        {"a?b", "service \"a?b\": must be 1 to 63 of [A-Za-z0-9._:/-]"},
    };
    for (size_t i = 0; i < sizeof(bad_services) / sizeof(bad_services[0]); i++) {
        os_offering_builder_init(&b);
        REFUSE(&b, os_offering_service(&b, bad_services[i].in), bad_services[i].msg);
    }
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_service(&b, name64),
           "service \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\": must be 1 to 63 of "
           "[A-Za-z0-9._:/-]");
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_service(&b, "echo"), OS_OK);
    REFUSE(&b, os_offering_service(&b, "echo"), "service \"echo\": listed twice");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_service(&b, NULL), "service: none given");

    /* model */
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_model(&b, model127), OS_OK);
    assert_string_equal(b.offering.model, model127);
    assert_true(b.has_model);
    assert_int_equal(os_offering_model(&b, "x"), OS_OK); /* a later model replaces it */
    assert_string_equal(b.offering.model, "x");
    assert_int_equal(b.offering.model[2], '\0'); /* no tail of the longer name left behind */
    REFUSE(&b, os_offering_model(&b, model128),
           "model \"mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm...\": must be 1 to 127 bytes "
           "without control characters");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_model(&b, ""),
           "model \"\": must be 1 to 127 bytes without control characters");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_model(&b, "a\nb"),
           "model \"a?b\": must be 1 to 127 bytes without control characters");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_model(&b, "del\x7f"),
           "model \"del?\": must be 1 to 127 bytes without control characters");

    /* apis */
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_api(&b, "openai.embeddings"), OS_OK);
    assert_int_equal(b.offering.apis, OS_API_OPENAI_EMBEDDINGS);
    REFUSE(&b, os_offering_api(&b, "openai.embeddings"), "api \"openai.embeddings\": listed twice");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_api(&b, "openai.completions"),
           "api \"openai.completions\": must be \"openai.chat\", \"openai.embeddings\" or "
           "\"anthropic.messages\"");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_api(&b, "OpenAI.chat"),
           "api \"OpenAI.chat\": must be \"openai.chat\", \"openai.embeddings\" or "
           "\"anthropic.messages\"");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_api(&b, NULL), "api: none given");

    /* max_output_tokens: 1 to 1,000,000 */
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_max_output(&b, 1), OS_OK);
    assert_int_equal(b.offering.max_output_tokens, 1);
    assert_int_equal(os_offering_max_output(&b, 1000000), OS_OK);
    assert_int_equal(b.offering.max_output_tokens, 1000000);
    REFUSE(&b, os_offering_max_output(&b, 1000001),
           "max_output_tokens 1000001: must be 1 to 1000000");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_max_output(&b, 0), "max_output_tokens 0: must be 1 to 1000000");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_max_output(&b, UINT64_MAX),
           "max_output_tokens 18446744073709551615: must be 1 to 1000000");

    /* prices: every uint64 is a price the record can carry */
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_price(&b, 0, 0, 0), OS_OK);
    assert_true(b.has_price);
    assert_int_equal(os_offering_price(&b, UINT64_MAX, 1, 2), OS_OK);
    assert_true(b.offering.pricing.input == UINT64_MAX);
    assert_int_equal(b.offering.pricing.output, 1);
    assert_int_equal(b.offering.pricing.cached, 2);

    /* NULL builders are refused, not dereferenced */
    assert_int_equal(os_offering_service(NULL, "x"), OS_ERR_INVALID);
    assert_int_equal(os_offering_price(NULL, 1, 1, 1), OS_ERR_INVALID);
    assert_int_equal(os_offering_build(NULL, NULL), OS_ERR_INVALID);
    os_offering_builder_init(NULL);
}

static void test_price_usdc(void **state)
{
    os_offering_builder b;
    (void)state;

    static const struct {
        const char *in;
        uint64_t micro;
    } good[] = {
        {"0.15", 150000},
        {"0", 0},
        {"1", 1000000},
        {"0.000001", 1},
        {"2.5", 2500000},
        {"007.100000", 7100000},
        {"18446744073709.551615", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        os_offering_builder_init(&b);
        assert_int_equal(os_offering_price_usdc(&b, good[i].in, "1", "2"), OS_OK);
        assert_true(b.offering.pricing.input == good[i].micro);
        assert_int_equal(b.offering.pricing.output, 1000000);
        assert_int_equal(b.offering.pricing.cached, 2000000);
        os_offering_builder_init(&b);
        assert_int_equal(os_offering_price_usdc(&b, "3", good[i].in, NULL), OS_OK);
        assert_true(b.offering.pricing.output == good[i].micro);
        assert_int_equal(b.offering.pricing.cached, 3000000); /* NULL: the input price */
        assert_true(b.has_price);
    }

#define SYNTAX                                                                                     \
    " must be USDC per million tokens, digits with at most 6 decimals (\"0.15\"), no "             \
    "sign or exponent"
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"1e3", "price input \"1e3\":" SYNTAX},
        {"-1", "price input \"-1\":" SYNTAX},
        {"+1", "price input \"+1\":" SYNTAX},
        {"0.0000001", "price input \"0.0000001\":" SYNTAX},
        {"1.0000000", "price input \"1.0000000\":" SYNTAX},
        {"", "price input \"\":" SYNTAX},
        {" 1", "price input \" 1\":" SYNTAX},
        {"1.", "price input \"1.\":" SYNTAX},
        {".5", "price input \".5\":" SYNTAX},
        {"0x10", "price input \"0x10\":" SYNTAX},
        {"nan", "price input \"nan\":" SYNTAX},
        {"1,5", "price input \"1,5\":" SYNTAX},
        {"18446744073709.551616", "price input \"18446744073709.551616\": above "
                                  "18446744073709.551615 USDC"},
        {"99999999999999999999", "price input \"99999999999999999999\": above "
                                 "18446744073709.551615 USDC"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        os_offering_builder_init(&b);
        REFUSE(&b, os_offering_price_usdc(&b, bad[i].in, "1", NULL), bad[i].msg);
        assert_false(b.has_price);
    }
    /* the output and cached prices are named too, and a bad one leaves every price unset */
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_price_usdc(&b, "1", "1e3", NULL), "price output \"1e3\":" SYNTAX);
    assert_int_equal(b.offering.pricing.input, 0);
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_price_usdc(&b, "1", "2", "-0"), "price cached \"-0\":" SYNTAX);
    assert_int_equal(b.offering.pricing.input, 0);
    assert_int_equal(b.offering.pricing.output, 0);
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_price_usdc(&b, NULL, "2", NULL), "price input: none given");
    os_offering_builder_init(&b);
    REFUSE(&b, os_offering_price_usdc(&b, "1", NULL, NULL), "price output: none given");
#undef SYNTAX
}

static void test_sticky(void **state)
{
    os_offering_builder b;
    os_offering o;
    const char *first = "service \"a b\": must be 1 to 63 of [A-Za-z0-9._:/-]";
    (void)state;

    os_offering_builder_init(&b);
    assert_int_equal(os_offering_service(&b, "ok"), OS_OK);
    REFUSE(&b, os_offering_service(&b, "a b"), first);
    os_offering before = b.offering;

    /* every later call, good or bad, is refused and changes nothing; the first error stays */
    assert_int_equal(os_offering_service(&b, "fine"), OS_ERR_INVALID);
    assert_int_equal(os_offering_model(&b, "m"), OS_ERR_INVALID);
    assert_int_equal(os_offering_api(&b, "openai.chat"), OS_ERR_INVALID);
    assert_int_equal(os_offering_price(&b, 1, 2, 3), OS_ERR_INVALID);
    assert_int_equal(os_offering_price_usdc(&b, "1", "2", NULL), OS_ERR_INVALID);
    assert_int_equal(os_offering_capability(&b, "tool"), OS_ERR_INVALID);
    assert_int_equal(os_offering_max_output(&b, 5), OS_ERR_INVALID);
    assert_int_equal(os_offering_capability(&b, "bogus"), OS_ERR_INVALID);
    assert_string_equal(b.error, first);
    assert_memory_equal(&b.offering, &before, sizeof(before));
    assert_false(b.has_model);
    assert_false(b.has_price);
    memset(&o, 0x5a, sizeof(o));
    os_offering o_before = o;
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error, first);
    assert_memory_equal(&o, &o_before, sizeof(o)); /* *out untouched on failure */

    /* init starts over */
    os_offering_builder_init(&b);
    assert_false(b.failed);
    assert_string_equal(b.error, "");
    assert_int_equal(os_offering_service(&b, "fine"), OS_OK);
}

static void test_completeness(void **state)
{
    os_offering_builder b;
    os_offering o;
    (void)state;

    os_offering_builder_init(&b);
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error, "service: an offering needs at least one (os_offering_service)");
    assert_false(b.failed); /* a missing field does not stick: add it and build again */
    assert_int_equal(os_offering_service(&b, "echo"), OS_OK);
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error, "model: required (os_offering_model)");
    assert_int_equal(os_offering_model(&b, "echo-1"), OS_OK);
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error, "api: an offering needs at least one (os_offering_api)");
    assert_int_equal(os_offering_api(&b, "openai.chat"), OS_OK);
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error, "price: required (os_offering_price or os_offering_price_usdc)");
    assert_int_equal(os_offering_price_usdc(&b, "0", "0.000001", NULL), OS_OK);
    assert_int_equal(os_offering_build(&b, &o), OS_OK);
    assert_string_equal(b.error, "");
    assert_string_equal(o.services[0], "echo");
    assert_int_equal(o.pricing.output, 1);

    /* the builder stays usable after a build: one more service, build again */
    assert_int_equal(os_offering_service(&b, "echo-2"), OS_OK);
    assert_int_equal(os_offering_build(&b, &o), OS_OK);
    assert_int_equal(o.n_services, 2);

    /* a free offering with a price of 0 everywhere is complete too */
    os_offering_builder_init(&b);
    assert_int_equal(os_offering_service(&b, "free"), OS_OK);
    assert_int_equal(os_offering_model(&b, "f"), OS_OK);
    assert_int_equal(os_offering_api(&b, "openai.embeddings"), OS_OK);
    assert_int_equal(os_offering_price(&b, 0, 0, 0), OS_OK);
    assert_int_equal(os_offering_build(&b, &o), OS_OK);
}

/* Fields written behind the builder's back: build re-reads the JSON and refuses what differs. */
static void test_build_rereads(void **state)
{
    os_offering_builder b;
    os_offering o;
    (void)state;

    example_builder(&b);
    b.offering.apis |= 1u << 5; /* no such API: the JSON drops it, so it cannot read back */
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error, "the offering does not read back as built (fields changed "
                                 "behind the builder?)");

    example_builder(&b);
    memcpy(b.offering.services[0], "a b", 4);
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error, "offering refused: services[0] must be a name of 1 to 63 "
                                 "characters [A-Za-z0-9._:/-]");

    example_builder(&b);
    b.offering.max_output_tokens = 0;
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error,
                        "offering refused: field \"max_output_tokens\" must be between 1 and "
                        "1000000");

    example_builder(&b);
    memset(b.offering.model, 'x', sizeof(b.offering.model)); /* unterminated */
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_string_equal(b.error, "the offering cannot be serialised (fields changed behind the "
                                 "builder?)");

    example_builder(&b);
    b.offering.n_services = OS_RECORD_MAX_SERVICES + 1;
    assert_int_equal(os_offering_build(&b, &o), OS_ERR_INVALID);
    assert_null(os_offering_to_json(NULL));
}

/* os_offering_from_json's refusals, and the same offering inside a record. */
static void test_from_json(void **state)
{
    os_offering o;
    char err[OS_RECORD_ERR_LEN];
    (void)state;

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"[]", "must be a JSON object"},
        {"{\"capability\":\"inference\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":\"1\",\"output\":\"2\"},\"max_output_tokens\":1,"
         "\"region\":\"eu\"}",
         "unknown field \"region\""},
        {"{\"capability\":\"robot\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":\"1\",\"output\":\"2\"},\"max_output_tokens\":1}",
         "field \"capability\" must be \"inference\", \"agent\" or \"tool\""},
        {"{\"capability\":\"tool\",\"services\":[\"s\",\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":\"1\",\"output\":\"2\"},\"max_output_tokens\":1}",
         "services[1] is listed twice"},
        {"{\"capability\":\"tool\",\"services\":[],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":\"1\",\"output\":\"2\"},\"max_output_tokens\":1}",
         "field \"services\" must not be empty"},
        {"{\"capability\":\"tool\",\"services\":[\"s\"],\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":\"1\",\"output\":\"2\"},\"max_output_tokens\":1}",
         "missing field \"model\""},
        {"{\"capability\":\"tool\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\",\"openai.chat\"],\"pricing\":{\"input\":\"1\",\"output\":\"2\"},"
         "\"max_output_tokens\":1}",
         "apis[1] is listed twice"},
        {"{\"capability\":\"tool\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":1,\"output\":\"2\"},\"max_output_tokens\":1}",
         "field \"pricing.input\" must be a decimal string of micro-USDC"},
        {"{\"capability\":\"tool\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":\"01\",\"output\":\"2\"},\"max_output_tokens\":1}",
         "field \"pricing.input\" must be a canonical decimal integer (no sign, point or leading "
         "zero) at most 18446744073709551615"},
        {"{\"capability\":\"tool\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"output\":\"2\"},\"max_output_tokens\":1}",
         "missing field \"pricing.input\""},
        {"{\"capability\":\"tool\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":\"1\",\"output\":\"2\",\"x\":\"3\"},"
         "\"max_output_tokens\":1}",
         "pricing: unknown field \"x\""},
        {"{\"capability\":\"tool\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":[\"openai."
         "chat\"],\"pricing\":{\"input\":\"1\",\"output\":\"2\"},\"max_output_tokens\":1000001}",
         "field \"max_output_tokens\" must be between 1 and 1000000"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = load(bad[i].json);
        memset(&o, 0x5a, sizeof(o));
        assert_int_equal(os_offering_from_json(&o, j, err, sizeof(err)), OS_ERR_INVALID);
        assert_string_equal(err, bad[i].msg);
        assert_true(os_ct_is_zero((const uint8_t *)&o, sizeof(o))); /* zeroed on failure */

        /* the record reads its offerings with the same code: same words, the index in front */
        os_record *r = calloc(1, sizeof(*r));
        char want[2 * OS_RECORD_ERR_LEN];
        json_t *rec = load("{\"node_id\":\"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\","
                           "\"endpoint\":\"https://s.example\",\"seq\":1,\"timestamp\":1,"
                           "\"chain_id\":1,\"escrow\":\"" ESCROW "\",\"asset\":\"" ASSET "\","
                           "\"ohttp_keys\":\"AQAgMeHwWnQBAhFSIOmvkY9zhnSuyV9U224E63Baro55gVUACAAB"
                           "AAEAAQAD\",\"offerings\":[]}");
        json_t *good = load(example_offering);
        assert_non_null(r);
        json_array_append_new(json_object_get(rec, "offerings"), good);
        json_array_append(json_object_get(rec, "offerings"), j);
        snprintf(want, sizeof(want), "offerings[1]: %s", bad[i].msg);
        assert_int_equal(os_record_parse(r, rec, err, sizeof(err)), OS_ERR_INVALID);
        assert_string_equal(err, want);
        json_decref(rec);
        free(r);
        json_decref(j);
    }
    assert_int_equal(os_offering_from_json(NULL, NULL, err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_offering_from_json(&o, NULL, NULL, 0), OS_ERR_INVALID);

    /* cached omitted reads as the input price */
    json_t *j = load("{\"capability\":\"tool\",\"services\":[\"s\"],\"model\":\"m\",\"apis\":["
                     "\"openai.chat\"],\"pricing\":{\"input\":\"17\",\"output\":\"2\"},"
                     "\"max_output_tokens\":1}");
    assert_int_equal(os_offering_from_json(&o, j, err, sizeof(err)), OS_OK);
    assert_int_equal(o.pricing.cached, 17);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_bytes), cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_setters),       cmocka_unit_test(test_price_usdc),
        cmocka_unit_test(test_sticky),        cmocka_unit_test(test_completeness),
        cmocka_unit_test(test_build_rereads), cmocka_unit_test(test_from_json),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
