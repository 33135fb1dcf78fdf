/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Seller records, heartbeats and feedback (PROTOCOL.md §3–4).
 *
 * Known answers come from ethers 6.17 (an independent implementation), computed with
 * tools/node_modules/ethers: the canonical text below with JSON.stringify over sorted keys, its
 * keccak256, ethers.TypedDataEncoder.hash for the SellerRecord, Heartbeat, Feedback and
 * SpendingAuth digests, and Wallet.signingKey.sign (RFC 6979, as libsecp256k1) for the signatures.
 * Keys are the scalars 1 and 2, whose addresses 0x7E5F…5Bdf and 0x2B5A…D6cF are widely published.
 * The key configuration is RFC 9458 Appendix A's. Each digest is also pinned to libcommon's general
 * EIP-712 engine on the equivalent eth_signTypedData_v4 document, so the fast paths equal EIP-712.
 *
 * Then every validation rule with a case it refuses, every signed field altered after signing,
 * signatures by the wrong key, and high-s signatures.
 */
#include "testutil.h"

#include <stdlib.h>

#include "openseed/base64.h"
#include "openseed/ct.h"
#include "openseed/eip712.h"
#include "openseed/json.h"
#include "openseed/keccak.h"
#include "openseed/ohttp.h"
#include "openseed/record.h"
#include "openseed/secp.h"

#define PRIV1 "0000000000000000000000000000000000000000000000000000000000000001"
#define PRIV2 "0000000000000000000000000000000000000000000000000000000000000002"
#define ADDR1 "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
#define ADDR2 "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
#define ESCROW "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define ASSET "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
/* RFC 9458 Appendix A key configuration, and its base64 */
#define KEYCONFIG                                                                                  \
    "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003"
#define KEYCONFIG_B64 "AQAgMeHwWnQBAhFSIOmvkY9zhnSuyV9U224E63Baro55gVUACAABAAEAAQAD"

/* The record of PROTOCOL.md §3 with these values, serialised with sorted keys, no whitespace. */
static const char canon_text[] =
    "{\"asset\":\"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913\",\"chain_id\":8453,"
    "\"endpoint\":\"https://seller.example:8378\","
    "\"escrow\":\"0x5FbDB2315678afecb367f032d93F642f64180aa3\","
    "\"node_id\":\"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\","
    "\"offerings\":[{\"apis\":[\"openai.chat\",\"openai.embeddings\",\"anthropic.messages\"],"
    "\"capability\":\"inference\",\"max_output_tokens\":4096,\"model\":\"llama3.1:8b\","
    "\"pricing\":{\"cached\":\"50000\",\"input\":\"100000\",\"output\":\"300000\"},"
    "\"services\":[\"llama3.1-8b\"]}],"
    "\"ohttp_keys\":\"AQAgMeHwWnQBAhFSIOmvkY9zhnSuyV9U224E63Baro55gVUACAABAAEAAQAD\","
    "\"seq\":1763700000123,\"timestamp\":1763700000}";
#define BODY_HASH "cad3b8a7eef8bf4373890e1500896d192c2441ffe11690658b49b022b6c30730"
#define RECORD_DIGEST "2d8ecd33bf0dd8dbbe17cdcddd53a9725fe9fb27174151103ae4127a17304f18"
#define RECORD_SIG                                                                                 \
    "37c6648f70ce65f0a4d32319de43768d944bd6c4facb0ee3368f652c2400752912b0a0737b038ec9e60c15d3a294" \
    "2c"                                                                                           \
    "b756d97fa0ed6086a0592e5c6b097a5cea1c"

/* Heartbeat{node: ADDR1, endpoint "https://seller.example:8378", seq 1763700030123, timestamp
 * 1763700030} in the OpenSeed domain of chain 8453, signed by key 1. */
#define HB_DIGEST "c705afb51011109d7e6d06b813028fb7f63301c1e4cfe22763bf2dde557604d0"
#define HB_SIG                                                                                     \
    "4daa3f997452c5dd681b40d70005946c07e40b6c59eae09a5d7dc61f1721900008c1f07f7a56de6be836ea117fc6" \
    "c9"                                                                                           \
    "95bdd93db203683e01f2d2f733b4f4e8641c"

/* Feedback{node: ADDR1, outcome "success", latencyMs 1234, ttftMs 210, channelId 0x11…,
 * cumulativeAmount 49000, nonce 42, metadataHash 0x22…}, chain 8453, signed by key 2; its voucher
 * SpendingAuth in the channels domain of ESCROW, also by key 2. */
#define FEEDBACK_TYPEHASH "ea8360ce67a6fc13f0b6561ceaf993358ca48bcac685ae08d1df946ff12cbf2f"
#define FB_DIGEST "b633e1f28722cb0dac6c1249b4c994e9dc6a24aef1c061e6b2befc17086d3cf0"
#define FB_SIG                                                                                     \
    "8118eed7a3f8274af6944edf4736d43476edecc594c4754cb69bf96786b857ac0ebac5473224e1858dd9f6c59b67" \
    "86"                                                                                           \
    "01888be260d87c6599292c5b3f330d40e51c"
#define VOUCHER_DIGEST "8d753d2b8690f4b885a85fcc7a226c3fafb51412a23e0ca9d55e11f1b351e2ae"
#define VOUCHER_SIG                                                                                \
    "2bb6537e92a6ab82695f1c9c6f690a4b34ee836b7930fad119948c1629abddb955bc3c2ef1b787963fad3bf6ed06" \
    "68"                                                                                           \
    "37618017aeac04c1a6354625cfcfb88e571c"

#define ENDPOINT "https://seller.example:8378"

static uint8_t priv1[32], priv2[32], addr1[20], addr2[20], escrow[20];

static int group_setup(void **state)
{
    if (tu_init(state) != 0)
        return -1;
    if (os_hex_decode_exact(priv1, 32, PRIV1) != OS_OK ||
        os_hex_decode_exact(priv2, 32, PRIV2) != OS_OK || os_eip55_parse(addr1, ADDR1) != OS_OK ||
        os_eip55_parse(addr2, ADDR2) != OS_OK || os_eip55_parse(escrow, ESCROW) != OS_OK)
        return -1;
    return 0;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (v == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return v;
}

static void build_record(os_record *r)
{
    size_t n;
    memset(r, 0, sizeof(*r));
    assert_int_equal(os_eip55_parse(r->node, ADDR1), OS_OK);
    snprintf(r->endpoint, sizeof(r->endpoint), "%s", ENDPOINT);
    r->seq = 1763700000123ULL;
    r->timestamp = 1763700000;
    r->chain_id = 8453;
    assert_int_equal(os_eip55_parse(r->escrow, ESCROW), OS_OK);
    assert_int_equal(os_eip55_parse(r->asset, ASSET), OS_OK);
    assert_int_equal(
        os_hex_decode(r->ohttp_keys, sizeof(r->ohttp_keys), &n, KEYCONFIG, strlen(KEYCONFIG)),
        OS_OK);
    r->ohttp_keys_len = n;
    os_offering *o = &r->offerings[0];
    snprintf(o->capability, sizeof(o->capability), "inference");
    snprintf(o->services[0], sizeof(o->services[0]), "llama3.1-8b");
    o->n_services = 1;
    snprintf(o->model, sizeof(o->model), "llama3.1:8b");
    o->apis = OS_API_OPENAI_CHAT | OS_API_OPENAI_EMBEDDINGS | OS_API_ANTHROPIC_MESSAGES;
    o->pricing.input = 100000;
    o->pricing.output = 300000;
    o->pricing.cached = 50000;
    o->max_output_tokens = 4096;
    r->n_offerings = 1;
}

/* The good record as JSON; the caller owns it. */
static json_t *good(void)
{
    os_record r;
    build_record(&r);
    json_t *j = os_record_to_json(&r);
    assert_non_null(j);
    return j;
}

static json_t *offering0(json_t *rec)
{
    json_t *o = json_array_get(json_object_get(rec, "offerings"), 0);
    assert_non_null(o);
    return o;
}

static void set(json_t *obj, const char *key, json_t *v)
{
    assert_non_null(v);
    assert_int_equal(json_object_set_new(obj, key, v), 0);
}

/* s := n - s and flip v: the same signature in its high-s twin, which EIP-2 forbids. */
static void make_high_s(uint8_t sig[65])
{
    static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                  0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = n[i] - sig[32 + i] - borrow;
        borrow = d < 0;
        sig[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    sig[64] = sig[64] == 27 ? 28 : 27;
}

/* Refused with OS_ERR_INVALID, err naming `needle`, out zeroed; consumes rec. */
static void expect_bad(json_t *rec, const char *needle)
{
    os_record r;
    char err[OS_RECORD_ERR_LEN];
    memset(&r, 0xaa, sizeof(r));
    assert_int_equal(os_record_parse(&r, rec, err, sizeof(err)), OS_ERR_INVALID);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    assert_true(os_ct_is_zero(&r, sizeof(r)));
    json_decref(rec);
}

static void expect_ok(json_t *rec)
{
    os_record r;
    char err[OS_RECORD_ERR_LEN];
    if (os_record_parse(&r, rec, err, sizeof(err)) != OS_OK)
        fail_msg("refused: %s", err);
    json_decref(rec);
}

/* ------------------------------------------------------------------ APIs */

static void test_api_names(void **state)
{
    (void)state;
    assert_int_equal(os_api_from_name("openai.chat"), OS_API_OPENAI_CHAT);
    assert_int_equal(os_api_from_name("openai.embeddings"), OS_API_OPENAI_EMBEDDINGS);
    assert_int_equal(os_api_from_name("anthropic.messages"), OS_API_ANTHROPIC_MESSAGES);
    assert_int_equal(os_api_from_name("openai.completions"), 0);
    assert_int_equal(os_api_from_name("OpenAI.chat"), 0);
    assert_int_equal(os_api_from_name(""), 0);
    assert_int_equal(os_api_from_name(NULL), 0);
    assert_string_equal(os_api_name(OS_API_OPENAI_CHAT), "openai.chat");
    assert_string_equal(os_api_name(OS_API_OPENAI_EMBEDDINGS), "openai.embeddings");
    assert_string_equal(os_api_name(OS_API_ANTHROPIC_MESSAGES), "anthropic.messages");
    assert_null(os_api_name(0));
    assert_null(os_api_name(OS_API_OPENAI_CHAT | OS_API_ANTHROPIC_MESSAGES));
    assert_null(os_api_name(1u << 3));
}

/* ------------------------------------------------------------------ records */

static void test_record_round_trip(void **state)
{
    os_record built, parsed, verified;
    uint8_t sig[65];
    char err[OS_RECORD_ERR_LEN];
    (void)state;

    build_record(&built);
    json_t *j = os_record_to_json(&built);
    assert_non_null(j);
    assert_int_equal(os_record_sign(sig, j, priv1), OS_OK);
    tu_assert_hex(sig, 65, RECORD_SIG); /* ethers' signature, byte for byte */
    assert_int_equal(os_record_verify(&verified, j, sig, err, sizeof(err)), OS_OK);
    assert_memory_equal(&verified, &built, sizeof(built));

    /* over the wire: text and back, then verify and parse again */
    char *text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    json_t *j2 = load(text);
    free(text);
    memset(&verified, 0x55, sizeof(verified));
    assert_int_equal(os_record_verify(&verified, j2, sig, err, sizeof(err)), OS_OK);
    assert_int_equal(os_record_parse(&parsed, j2, err, sizeof(err)), OS_OK);
    assert_memory_equal(&parsed, &built, sizeof(built));
    assert_memory_equal(&verified, &built, sizeof(built));
    assert_int_equal(parsed.offerings[0].pricing.cached, 50000);
    json_decref(j2);
    json_decref(j);

    /* a larger record: every capability, many services and offerings, cached defaulted */
    build_record(&built);
    static const char *const caps[] = {"inference", "agent", "tool"};
    for (size_t i = 0; i < OS_RECORD_MAX_OFFERINGS; i++) {
        os_offering *o = &built.offerings[i];
        *o = built.offerings[0];
        memset(o->capability, 0, sizeof(o->capability)); /* parse leaves zeros after the NUL */
        snprintf(o->capability, sizeof(o->capability), "%s", caps[i % 3]);
        o->n_services = OS_RECORD_MAX_SERVICES;
        for (size_t k = 0; k < OS_RECORD_MAX_SERVICES; k++)
            snprintf(o->services[k], sizeof(o->services[k]), "svc-%zu.%zu:a/b_C", i, k);
        o->apis = (unsigned)(i % 7) + 1;
        o->pricing.input = i;
        o->pricing.cached = i;
        o->pricing.output = UINT64_MAX - i;
        o->max_output_tokens = i + 1;
    }
    built.n_offerings = OS_RECORD_MAX_OFFERINGS;
    built.seq = INT64_MAX;
    j = os_record_to_json(&built);
    assert_non_null(j);
    assert_int_equal(os_record_sign(sig, j, priv1), OS_OK);
    assert_int_equal(os_record_verify(&verified, j, sig, err, sizeof(err)), OS_OK);
    assert_memory_equal(&verified, &built, sizeof(built));
    /* cached omitted reads as the input price */
    json_object_del(json_object_get(offering0(j), "pricing"), "cached");
    assert_int_equal(os_record_parse(&parsed, j, err, sizeof(err)), OS_OK);
    assert_memory_equal(&parsed, &built, sizeof(built));
    json_decref(j);
}

static void test_record_body_hash(void **state)
{
    uint8_t h[32], want[32];
    char *text;
    (void)state;

    os_keccak256(want, canon_text, strlen(canon_text));
    tu_assert_hex(want, 32, BODY_HASH); /* the text is the one ethers hashed */

    json_t *j = good();
    assert_int_equal(os_json_dump_canonical(j, &text, NULL), OS_OK);
    assert_string_equal(text, canon_text);
    free(text);
    assert_int_equal(os_record_body_hash(h, j), OS_OK);
    assert_memory_equal(h, want, 32);

    /* a "signature" member is left out of the hash, and the caller's object is not touched */
    set(j, "signature", json_string("0x00"));
    assert_int_equal(os_record_body_hash(h, j), OS_OK);
    assert_memory_equal(h, want, 32);
    assert_non_null(json_object_get(j, "signature"));
    json_decref(j);

    /* key order and whitespace of the text as received do not matter */
    j = load("{ \"timestamp\": 1763700000, \"seq\": 1763700000123,\n"
             "  \"offerings\": [ { \"services\": [\"llama3.1-8b\"], \"pricing\": {\"output\": "
             "\"300000\", \"input\": \"100000\", \"cached\": \"50000\"}, \"model\": "
             "\"llama3.1:8b\", \"max_output_tokens\": 4096, \"capability\": \"inference\", "
             "\"apis\": [\"openai.chat\", \"openai.embeddings\", \"anthropic.messages\"] } ],\n"
             "  \"ohttp_keys\": \"" KEYCONFIG_B64 "\", \"node_id\": \"" ADDR1 "\",\n"
             "  \"escrow\": \"" ESCROW "\", \"endpoint\": \"" ENDPOINT "\", \"chain_id\": 8453,\n"
             "  \"asset\": \"" ASSET "\" }");
    assert_int_equal(os_record_body_hash(h, j), OS_OK);
    assert_memory_equal(h, want, 32);
    json_decref(j);

    assert_int_equal(os_record_body_hash(h, NULL), OS_ERR_INVALID);
    j = load("[1]");
    assert_int_equal(os_record_body_hash(h, j), OS_ERR_INVALID);
    json_decref(j);
}

/* The fast SellerRecord digest equals ethers' and the general engine's on the same typed data. */
static void test_record_digest_engine(void **state)
{
    uint8_t fast[32], slow[32], fast2[32];
    char doc[2048];
    os_record r;
    (void)state;

    json_t *j = good();
    build_record(&r);
    assert_int_equal(os_record_digest(fast, j, &r), OS_OK);
    tu_assert_hex(fast, 32, RECORD_DIGEST);
    assert_int_equal(os_record_digest(fast2, j, NULL), OS_OK);
    assert_memory_equal(fast, fast2, 32);
    snprintf(
        doc, sizeof(doc),
        "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"
        "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"chainId\",\"type\":\"uint256\"}],"
        "\"SellerRecord\":[{\"name\":\"node\",\"type\":\"address\"},"
        "{\"name\":\"endpoint\",\"type\":\"string\"},{\"name\":\"seq\",\"type\":\"uint64\"},"
        "{\"name\":\"timestamp\",\"type\":\"uint64\"},{\"name\":\"bodyHash\",\"type\":"
        "\"bytes32\"}]},"
        "\"primaryType\":\"SellerRecord\","
        "\"domain\":{\"name\":\"OpenSeed\",\"version\":\"1\",\"chainId\":8453},"
        "\"message\":{\"node\":\"%s\",\"endpoint\":\"%s\",\"seq\":1763700000123,"
        "\"timestamp\":1763700000,\"bodyHash\":\"0x%s\"}}",
        ADDR1, ENDPOINT, BODY_HASH);
    json_t *td = load(doc);
    assert_int_equal(os_eip712_hash_typed_data(slow, td), OS_OK);
    assert_memory_equal(fast, slow, 32);
    json_decref(td);
    /* an unparsable record has no digest */
    set(j, "seq", json_string("1"));
    assert_int_equal(os_record_digest(fast, j, NULL), OS_ERR_INVALID);
    json_decref(j);
}

static void test_record_wrong_key(void **state)
{
    uint8_t sig[65], digest[32];
    os_record r;
    char err[OS_RECORD_ERR_LEN];
    (void)state;

    json_t *j = good();
    /* the signer refuses a key that is not node_id's */
    memset(sig, 0x77, sizeof(sig));
    assert_int_equal(os_record_sign(sig, j, priv2), OS_ERR_INVALID);
    assert_true(os_ct_is_zero(sig, sizeof(sig)));
    /* a signature by another key over the right digest */
    assert_int_equal(os_record_digest(digest, j, NULL), OS_OK);
    assert_int_equal(os_secp_sign(sig, priv2, digest), OS_OK);
    memset(&r, 0x55, sizeof(r));
    assert_int_equal(os_record_verify(&r, j, sig, err, sizeof(err)), OS_ERR_CRYPTO);
    assert_non_null(strstr(err, "signature"));
    assert_true(os_ct_is_zero(&r, sizeof(r)));
    /* and a record whose node_id is key 2 verifies with key 2's signature */
    set(j, "node_id", json_string(ADDR2));
    assert_int_equal(os_record_sign(sig, j, priv2), OS_OK);
    assert_int_equal(os_record_verify(&r, j, sig, err, sizeof(err)), OS_OK);
    assert_memory_equal(r.node, addr2, 20);
    /* an invalid record is not signed */
    set(j, "chain_id", json_integer(-1));
    assert_int_equal(os_record_sign(sig, j, priv2), OS_ERR_INVALID);
    json_decref(j);
}

/* Each signed thing changed after signing, with the record still valid: the signature fails. */
static void test_record_tamper(void **state)
{
    uint8_t sig[65], kc[OS_OHTTP_KEYCONFIG_LEN], pk[32];
    char b64[OS_BASE64_LEN(sizeof(kc))];
    os_record r;
    char err[OS_RECORD_ERR_LEN];
    size_t n;
    (void)state;

    json_t *base = good();
    assert_int_equal(os_record_sign(sig, base, priv1), OS_OK);
    memset(pk, 0x42, sizeof(pk));
    assert_int_equal(os_ohttp_keyconfig_encode(kc, sizeof(kc), &n, 1, pk, NULL, 0), OS_OK);
    assert_int_equal(os_base64_encode(b64, sizeof(b64), kc, n), OS_OK);

    for (int c = 0; c < 17; c++) {
        json_t *j = json_deep_copy(base);
        json_t *o = offering0(j);
        switch (c) {
        case 0:
            set(j, "endpoint", json_string("https://seller.example:8379"));
            break;
        case 1:
            set(j, "seq", json_integer(1763700000124));
            break;
        case 2:
            set(j, "timestamp", json_integer(1763700001));
            break;
        case 3:
            set(j, "chain_id", json_integer(84532));
            break;
        case 4:
            set(j, "escrow", json_string(ADDR2));
            break;
        case 5:
            set(j, "asset", json_string(ADDR2));
            break;
        case 6:
            set(j, "ohttp_keys", json_string(b64));
            break;
        case 7:
            set(j, "node_id", json_string(ADDR2));
            break;
        case 8:
            set(o, "model", json_string("llama3.1:70b"));
            break;
        case 9:
            set(o, "capability", json_string("agent"));
            break;
        case 10:
            set(o, "max_output_tokens", json_integer(4097));
            break;
        case 11:
            set(json_object_get(o, "pricing"), "input", json_string("100001"));
            break;
        case 12:
            set(json_object_get(o, "pricing"), "output", json_string("1"));
            break;
        case 13:
            set(json_object_get(o, "pricing"), "cached", json_string("100000"));
            break;
        case 14:
            set(o, "services", load("[\"llama3.1-8c\"]"));
            break;
        /* the same set in another order is another text, so another body hash */
        case 15:
            set(o, "apis", load("[\"anthropic.messages\",\"openai.chat\",\"openai.embeddings\"]"));
            break;
        /* a second offering appended */
        default:
            assert_int_equal(
                json_array_append_new(json_object_get(j, "offerings"), json_deep_copy(o)), 0);
            break;
        }
        assert_int_equal(os_record_parse(&r, j, err, sizeof(err)), OS_OK);
        if (os_record_verify(&r, j, sig, err, sizeof(err)) != OS_ERR_CRYPTO)
            fail_msg("alteration %d still verifies", c);
        json_decref(j);
    }
    /* and the signature itself, any bit */
    for (int i = 0; i < 65; i += 8) {
        uint8_t bad[65];
        memcpy(bad, sig, 65);
        bad[i] ^= 0x01;
        assert_int_equal(os_record_verify(&r, base, bad, err, sizeof(err)), OS_ERR_CRYPTO);
    }
    assert_int_equal(os_record_verify(&r, base, sig, err, sizeof(err)), OS_OK);
    json_decref(base);
}

static void test_record_high_s(void **state)
{
    uint8_t sig[65], digest[32], who[20];
    os_record r;
    char err[OS_RECORD_ERR_LEN];
    (void)state;

    json_t *j = good();
    assert_int_equal(os_record_sign(sig, j, priv1), OS_OK);
    make_high_s(sig);
    /* the twin is a valid ECDSA signature by the same key, which is exactly why it is refused */
    assert_int_equal(os_record_digest(digest, j, NULL), OS_OK);
    assert_int_equal(os_secp_recover(who, digest, sig), OS_ERR_CRYPTO);
    assert_int_equal(os_record_verify(&r, j, sig, err, sizeof(err)), OS_ERR_CRYPTO);
    /* r = 0 and s = 0 */
    memset(sig, 0, 64);
    sig[64] = 27;
    assert_int_equal(os_record_verify(&r, j, sig, err, sizeof(err)), OS_ERR_CRYPTO);
    json_decref(j);
}

static void test_record_fields_and_types(void **state)
{
    static const char *const keys[] = {"node_id", "endpoint", "seq",        "timestamp", "chain_id",
                                       "escrow",  "asset",    "ohttp_keys", "offerings"};
    static const char *const okeys[] = {"capability", "services", "model",
                                        "apis",       "pricing",  "max_output_tokens"};
    char needle[64];
    (void)state;

    expect_ok(good());
    /* unknown fields, at each level */
    json_t *j = good();
    set(j, "extra", json_true());
    expect_bad(j, "unknown field \"extra\"");
    j = good();
    set(offering0(j), "region", json_string("eu"));
    expect_bad(j, "offerings[0]: unknown field \"region\"");
    j = good();
    set(json_object_get(offering0(j), "pricing"), "discount", json_string("1"));
    expect_bad(j, "unknown field \"discount\"");
    /* the signature belongs beside the record */
    j = good();
    set(j, "signature", json_string("0x00"));
    expect_bad(j, "signature");
    /* every field is required */
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        j = good();
        assert_int_equal(json_object_del(j, keys[i]), 0);
        snprintf(needle, sizeof(needle), "missing field \"%s\"", keys[i]);
        expect_bad(j, needle);
    }
    for (size_t i = 0; i < sizeof(okeys) / sizeof(okeys[0]); i++) {
        j = good();
        assert_int_equal(json_object_del(offering0(j), okeys[i]), 0);
        snprintf(needle, sizeof(needle), "offerings[0]: missing field \"%s\"", okeys[i]);
        expect_bad(j, needle);
    }
    j = good();
    assert_int_equal(json_object_del(json_object_get(offering0(j), "pricing"), "output"), 0);
    expect_bad(j, "pricing.output");
    /* wrong types */
    j = good();
    set(j, "seq", json_string("17"));
    expect_bad(j, "\"seq\" must be an integer");
    j = good();
    set(j, "timestamp", json_real(1763700000.0));
    expect_bad(j, "\"timestamp\" must be an integer");
    j = good();
    set(j, "chain_id", json_integer(-1));
    expect_bad(j, "chain_id");
    j = good();
    set(j, "endpoint", json_integer(1));
    expect_bad(j, "\"endpoint\" must be a string");
    j = good();
    set(j, "node_id", json_null());
    expect_bad(j, "node_id");
    j = good();
    set(j, "offerings", json_object());
    expect_bad(j, "\"offerings\" must be an array");
    j = good();
    set(j, "offerings", load("[[]]"));
    expect_bad(j, "offerings[0]: must be a JSON object");
    j = good();
    set(offering0(j), "services", json_string("llama3.1-8b"));
    expect_bad(j, "\"services\" must be an array");
    j = good();
    set(offering0(j), "pricing", json_string("100000"));
    expect_bad(j, "\"pricing\" must be an object");
    j = load("[]");
    expect_bad(j, "JSON object");
    os_record r;
    assert_int_equal(os_record_parse(&r, NULL, NULL, 0), OS_ERR_INVALID);
    assert_int_equal(os_record_parse(NULL, NULL, NULL, 0), OS_ERR_INVALID);
    /* the largest integers jansson holds are accepted */
    j = good();
    set(j, "seq", json_integer(INT64_MAX));
    expect_ok(j);
}

static void test_record_addresses(void **state)
{
    static const char *const fields[] = {"node_id", "escrow", "asset"};
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        json_t *j = good();
        char a[64];
        snprintf(a, sizeof(a), "%s", json_string_value(json_object_get(j, fields[i])));
        /* flip the case of the first letter: a wrong EIP-55 checksum */
        for (char *p = a + 2; *p != '\0'; p++) {
            if ((*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')) {
                *p ^= 0x20;
                break;
            }
        }
        set(j, fields[i], json_string(a));
        expect_bad(j, fields[i]);
        j = good();
        set(j, fields[i], json_string("0x7E5F4552091A69125d5DfCb7b8C2659029395B"));
        expect_bad(j, fields[i]);
        j = good();
        set(j, fields[i], json_string("7E5F4552091A69125d5DfCb7b8C2659029395Bdf00"));
        expect_bad(j, fields[i]);
        j = good();
        set(j, fields[i], json_string("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf0"));
        expect_bad(j, fields[i]);
    }
    /* all lower case carries no checksum and is accepted, as os_eip55_parse does */
    json_t *j = good();
    set(j, "node_id", json_string("0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"));
    os_record r;
    assert_int_equal(os_record_parse(&r, j, NULL, 0), OS_OK);
    assert_memory_equal(r.node, addr1, 20);
    json_decref(j);
}

static void test_record_endpoints(void **state)
{
    static const char *const bad[] = {
        "ftp://seller.example",
        "https://",
        "https:///path",
        "https:/seller.example",
        "HTTPS://seller.example",
        "seller.example:8378",
        "https:// seller.example",
        "https://seller.example/a b",
        "https://seller.example/\t",
        "https://seller.example/\x7f",
        "https://seller.example/caf\xc3\xa9",
        "https://user:pw@seller.example",
        "https://trusted.example@evil.example/",
        "https://seller.example/#frag",
        "https://seller.example\\@x/",
        "",
    };
    static const char *const good_urls[] = {
        "http://127.0.0.1:8378",
        "https://[::1]:8378/base?x=1&y=%20",
        "https://a",
        "https://abc.trycloudflare.com/openseed/",
        "http://seller_1.internal:80/v1?",
    };
    char url[OS_RECORD_ENDPOINT_MAX + 8];
    char err[OS_RECORD_ERR_LEN];
    os_record r;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = good();
        set(j, "endpoint", json_string(bad[i]));
        expect_bad(j, "endpoint");
    }
    for (size_t i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
        json_t *j = good();
        set(j, "endpoint", json_string(good_urls[i]));
        if (os_record_parse(&r, j, err, sizeof(err)) != OS_OK)
            fail_msg("%s refused: %s", good_urls[i], err);
        assert_string_equal(r.endpoint, good_urls[i]);
        json_decref(j);
    }
    /* 511 bytes is the longest; the reason never echoes the value */
    memset(url, 'A', sizeof(url));
    memcpy(url, "https://", 8);
    url[OS_RECORD_ENDPOINT_MAX - 1] = '\0';
    json_t *j = good();
    set(j, "endpoint", json_string(url));
    expect_ok(j);
    url[OS_RECORD_ENDPOINT_MAX - 1] = 'A';
    url[OS_RECORD_ENDPOINT_MAX] = '\0';
    j = good();
    set(j, "endpoint", json_string(url));
    assert_int_equal(os_record_parse(&r, j, err, sizeof(err)), OS_ERR_INVALID);
    assert_non_null(strstr(err, "endpoint"));
    assert_null(strstr(err, "AAAA"));
    json_decref(j);
    /* an embedded NUL (possible with json_stringn) */
    j = good();
    set(j, "endpoint", json_stringn("https://a\0b", 11));
    expect_bad(j, "endpoint");
}

static void test_record_offerings(void **state)
{
    char name[80];
    (void)state;

    /* count */
    json_t *j = good();
    json_t *arr = json_object_get(j, "offerings");
    for (int i = 0; i < OS_RECORD_MAX_OFFERINGS; i++)
        assert_int_equal(json_array_append_new(arr, json_deep_copy(json_array_get(arr, 0))), 0);
    expect_bad(j, "offerings"); /* 17 */
    j = good();
    set(j, "offerings", json_array());
    expect_bad(j, "\"offerings\" must not be empty");

    /* capability */
    j = good();
    set(offering0(j), "capability", json_string("training"));
    expect_bad(j, "capability");
    j = good();
    set(offering0(j), "capability", json_string("Inference"));
    expect_bad(j, "capability");

    /* services */
    j = good();
    set(offering0(j), "services", json_array());
    expect_bad(j, "\"services\" must not be empty");
    j = good();
    set(offering0(j), "services", load("[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]"));
    expect_bad(j, "services");
    j = good();
    set(offering0(j), "services", load("[\"ok\",\"bad name\"]"));
    expect_bad(j, "services[1]");
    j = good();
    set(offering0(j), "services", load("[\"\"]"));
    expect_bad(j, "services[0]");
    j = good();
    set(offering0(j), "services", load("[\"ok\",7]"));
    expect_bad(j, "services[1]");
    j = good();
    set(offering0(j), "services", load("[\"llama\",\"llama\"]"));
    expect_bad(j, "services[1] is listed twice");
    memset(name, 'x', sizeof(name));
    name[63] = '\0';
    j = good();
    set(offering0(j), "services", json_pack("[s]", name));
    expect_ok(j);
    name[63] = 'x';
    name[64] = '\0';
    j = good();
    set(offering0(j), "services", json_pack("[s]", name));
    expect_bad(j, "services[0]");

    /* model */
    j = good();
    set(offering0(j), "model", json_string(""));
    expect_bad(j, "model");
    j = good();
    set(offering0(j), "model", json_string("llama\n3"));
    expect_bad(j, "model");
    j = good();
    set(offering0(j), "model", json_string("ラマ 3.1 (8B)"));
    expect_ok(j);
    char model[OS_RECORD_MODEL_MAX + 1];
    memset(model, 'm', sizeof(model));
    model[OS_RECORD_MODEL_MAX - 1] = '\0';
    j = good();
    set(offering0(j), "model", json_string(model));
    expect_ok(j);
    model[OS_RECORD_MODEL_MAX - 1] = 'm';
    model[OS_RECORD_MODEL_MAX] = '\0';
    j = good();
    set(offering0(j), "model", json_string(model));
    expect_bad(j, "model");

    /* apis */
    j = good();
    set(offering0(j), "apis", json_array());
    expect_bad(j, "\"apis\" must not be empty");
    j = good();
    set(offering0(j), "apis", load("[\"openai.chat\",\"openai.completions\"]"));
    expect_bad(j, "apis[1]");
    j = good();
    set(offering0(j), "apis", load("[\"openai.chat\",\"openai.chat\"]"));
    expect_bad(j, "apis[1] is listed twice");
    j = good();
    set(offering0(j), "apis", load("[1]"));
    expect_bad(j, "apis[0]");
    j = good();
    set(offering0(j), "apis", json_pack("[s#]", "openai.chat\0x", 13));
    expect_bad(j, "apis[0]");

    /* max_output_tokens */
    j = good();
    set(offering0(j), "max_output_tokens", json_integer(0));
    expect_bad(j, "max_output_tokens");
    j = good();
    set(offering0(j), "max_output_tokens", json_integer(1000001));
    expect_bad(j, "max_output_tokens");
    j = good();
    set(offering0(j), "max_output_tokens", json_string("4096"));
    expect_bad(j, "max_output_tokens");
    j = good();
    set(offering0(j), "max_output_tokens", json_integer(1000000));
    expect_ok(j);
    j = good();
    set(offering0(j), "max_output_tokens", json_integer(1));
    expect_ok(j);
}

static void test_record_prices(void **state)
{
    static const struct {
        const char *key;
        const char *value; /* NULL: the JSON number 100000 */
    } bad[] = {
        {"input", "01"},   {"input", NULL},    {"input", "-1"},
        {"input", "1.5"},  {"input", "1e5"},   {"input", ""},
        {"input", " 1"},   {"output", "0x10"}, {"output", "18446744073709551616"},
        {"cached", "007"}, {"cached", NULL},   {"output", "+1"},
    };
    char needle[32];
    os_record r;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = good();
        json_t *p = json_object_get(offering0(j), "pricing");
        set(p, bad[i].key, bad[i].value != NULL ? json_string(bad[i].value) : json_integer(100000));
        snprintf(needle, sizeof(needle), "pricing.%s", bad[i].key);
        expect_bad(j, needle);
    }
    json_t *j = good();
    set(json_object_get(offering0(j), "pricing"), "cached", json_null());
    expect_bad(j, "pricing.cached");
    /* the extremes */
    j = good();
    set(json_object_get(offering0(j), "pricing"), "output", json_string("18446744073709551615"));
    set(json_object_get(offering0(j), "pricing"), "input", json_string("0"));
    assert_int_equal(os_record_parse(&r, j, NULL, 0), OS_OK);
    assert_true(r.offerings[0].pricing.output == UINT64_MAX);
    assert_int_equal(r.offerings[0].pricing.input, 0);
    json_decref(j);
}

static void test_record_ohttp_keys(void **state)
{
    static const os_ohttp_symalg chacha = {0x0001, 0x0003};
    uint8_t kc[300], pk[32];
    char b64[OS_BASE64_LEN(300)];
    size_t n;
    (void)state;

    json_t *j = good();
    set(j, "ohttp_keys", json_string("!!!!"));
    expect_bad(j, "ohttp_keys");
    j = good();
    set(j, "ohttp_keys",
        json_string("AQAgMeHwWnQBAhFSIOmvkY9zhnSuyV9U224E63Baro55gVUACAABAAEAAQAD="));
    expect_bad(j, "ohttp_keys");
    j = good();
    /* unpadded */
    set(j, "ohttp_keys", json_string("AQAgMeHwWnQBAhFSIOmvkY9zhnSuyV9U224E63Baro55gVUABAABAAE"));
    expect_bad(j, "ohttp_keys");
    /* a truncated key configuration */
    tu_unhex(kc, 45, KEYCONFIG);
    assert_int_equal(os_base64_encode(b64, sizeof(b64), kc, 40), OS_OK);
    j = good();
    set(j, "ohttp_keys", json_string(b64));
    expect_bad(j, "ohttp_keys");
    /* a configuration that only offers ChaCha20-Poly1305 (hand-built: our encoder refuses it) */
    memset(pk, 0x42, sizeof(pk));
    kc[0] = 1;
    kc[1] = 0x00;
    kc[2] = 0x20;
    memcpy(kc + 3, pk, 32);
    kc[35] = 0;
    kc[36] = 4;
    kc[37] = 0;
    kc[38] = (uint8_t)chacha.kdf_id;
    kc[39] = 0;
    kc[40] = (uint8_t)chacha.aead_id;
    assert_int_equal(os_base64_encode(b64, sizeof(b64), kc, 41), OS_OK);
    j = good();
    set(j, "ohttp_keys", json_string(b64));
    expect_bad(j, "ohttp_keys");
    /* another KEM (P-256 = 0x0010) */
    tu_unhex(kc, 45, KEYCONFIG);
    kc[2] = 0x10;
    assert_int_equal(os_base64_encode(b64, sizeof(b64), kc, 45), OS_OK);
    j = good();
    set(j, "ohttp_keys", json_string(b64));
    expect_bad(j, "ohttp_keys");
    /* longer than the 256 bytes a record holds: a long but valid list of algorithms */
    tu_unhex(kc, 45, KEYCONFIG); /* the header and key; the list is rewritten below */
    n = (300 - 37) / 4;
    kc[35] = (uint8_t)((n * 4) >> 8);
    kc[36] = (uint8_t)(n * 4);
    for (size_t i = 0; i < n; i++) {
        kc[37 + 4 * i] = 0;
        kc[38 + 4 * i] = 1;
        kc[39 + 4 * i] = 0;
        kc[40 + 4 * i] = 1;
    }
    os_ohttp_keyconfig parsed;
    assert_int_equal(os_ohttp_keyconfig_parse(&parsed, kc, 37 + 4 * n), OS_OK);
    assert_int_equal(os_base64_encode(b64, sizeof(b64), kc, 37 + 4 * n), OS_OK);
    j = good();
    set(j, "ohttp_keys", json_string(b64));
    expect_bad(j, "ohttp_keys");
    /* but one of 253 bytes fits */
    n = (253 - 37) / 4;
    kc[35] = (uint8_t)((n * 4) >> 8);
    kc[36] = (uint8_t)(n * 4);
    assert_int_equal(os_base64_encode(b64, sizeof(b64), kc, 37 + 4 * n), OS_OK);
    j = good();
    set(j, "ohttp_keys", json_string(b64));
    expect_ok(j);
}

/* to_json never writes a record parse would refuse. */
static void test_record_to_json_refuses(void **state)
{
    os_record r;
    (void)state;

    build_record(&r);
    snprintf(r.endpoint, sizeof(r.endpoint), "ftp://x");
    assert_null(os_record_to_json(&r));
    build_record(&r);
    r.n_offerings = 0;
    assert_null(os_record_to_json(&r));
    build_record(&r);
    r.n_offerings = OS_RECORD_MAX_OFFERINGS + 1;
    assert_null(os_record_to_json(&r));
    build_record(&r);
    r.seq = (uint64_t)INT64_MAX + 1;
    assert_null(os_record_to_json(&r));
    build_record(&r);
    r.offerings[0].apis = 0;
    assert_null(os_record_to_json(&r));
    build_record(&r);
    r.offerings[0].apis = 1u << 5;
    assert_null(os_record_to_json(&r));
    build_record(&r);
    r.offerings[0].n_services = 0;
    assert_null(os_record_to_json(&r));
    build_record(&r);
    memset(r.offerings[0].model, 'x', sizeof(r.offerings[0].model)); /* unterminated */
    assert_null(os_record_to_json(&r));
    build_record(&r);
    r.ohttp_keys_len = 10;
    assert_null(os_record_to_json(&r));
    build_record(&r);
    r.offerings[0].max_output_tokens = 0;
    assert_null(os_record_to_json(&r));
    assert_null(os_record_to_json(NULL));
}

/* ------------------------------------------------------------------ heartbeats */

static void build_heartbeat(os_heartbeat *hb)
{
    memset(hb, 0, sizeof(*hb));
    memcpy(hb->node, addr1, 20);
    snprintf(hb->endpoint, sizeof(hb->endpoint), "%s", ENDPOINT);
    hb->seq = 1763700030123ULL;
    hb->timestamp = 1763700030;
    hb->active = 3;
    hb->capacity = 16;
}

static void expect_bad_hb(json_t *body, const char *needle)
{
    os_heartbeat hb;
    char err[OS_RECORD_ERR_LEN];
    memset(&hb, 0xaa, sizeof(hb));
    assert_int_equal(os_heartbeat_parse(&hb, body, err, sizeof(err)), OS_ERR_INVALID);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    assert_true(os_ct_is_zero(&hb, sizeof(hb)));
    json_decref(body);
}

static void test_heartbeat(void **state)
{
    os_heartbeat hb, back;
    uint8_t d[32], slow[32];
    char doc[1024], err[OS_RECORD_ERR_LEN];
    (void)state;

    build_heartbeat(&hb);
    assert_int_equal(os_heartbeat_sign(&hb, priv1, 8453), OS_OK);
    tu_assert_hex(hb.sig, 65, HB_SIG);
    assert_int_equal(os_heartbeat_digest(d, &hb, 8453), OS_OK);
    tu_assert_hex(d, 32, HB_DIGEST);
    snprintf(
        doc, sizeof(doc),
        "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"
        "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"chainId\",\"type\":\"uint256\"}],"
        "\"Heartbeat\":[{\"name\":\"node\",\"type\":\"address\"},"
        "{\"name\":\"endpoint\",\"type\":\"string\"},{\"name\":\"seq\",\"type\":\"uint64\"},"
        "{\"name\":\"timestamp\",\"type\":\"uint64\"}]},\"primaryType\":\"Heartbeat\","
        "\"domain\":{\"name\":\"OpenSeed\",\"version\":\"1\",\"chainId\":8453},"
        "\"message\":{\"node\":\"%s\",\"endpoint\":\"%s\",\"seq\":1763700030123,"
        "\"timestamp\":1763700030}}",
        ADDR1, ENDPOINT);
    json_t *td = load(doc);
    assert_int_equal(os_eip712_hash_typed_data(slow, td), OS_OK);
    assert_memory_equal(d, slow, 32);
    json_decref(td);
    assert_int_equal(os_heartbeat_verify(&hb, 8453), OS_OK);

    /* wire round trip */
    json_t *j = os_heartbeat_to_json(&hb);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "node")), ADDR1);
    assert_string_equal(json_string_value(json_object_get(j, "signature")), "0x" HB_SIG);
    assert_int_equal(os_heartbeat_parse(&back, j, err, sizeof(err)), OS_OK);
    assert_memory_equal(&back, &hb, sizeof(hb));
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_OK);

    /* tampering with what is signed */
    back = hb;
    back.seq++;
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_ERR_CRYPTO);
    back = hb;
    back.timestamp--;
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_ERR_CRYPTO);
    back = hb;
    back.endpoint[8] = 'S';
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_ERR_CRYPTO);
    back = hb;
    memcpy(back.node, addr2, 20);
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_ERR_CRYPTO);
    assert_int_equal(os_heartbeat_verify(&hb, 84532), OS_ERR_CRYPTO); /* another chain */
    back = hb;
    back.sig[10] ^= 1;
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_ERR_CRYPTO);
    back = hb;
    make_high_s(back.sig);
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_ERR_CRYPTO);
    /* load is not signed: a relay may not forge a heartbeat, but load is advisory */
    back = hb;
    back.active = 99;
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_OK);
    /* an unterminated endpoint is refused, not read past */
    back = hb;
    memset(back.endpoint, 'a', sizeof(back.endpoint));
    assert_int_equal(os_heartbeat_verify(&back, 8453), OS_ERR_INVALID);
    assert_int_equal(os_heartbeat_sign(&back, priv1, 8453), OS_ERR_INVALID);
    /* signing with a key that is not the node's */
    back = hb;
    assert_int_equal(os_heartbeat_sign(&back, priv2, 8453), OS_ERR_INVALID);
    assert_true(os_ct_is_zero(back.sig, 65));
    back = hb;
    snprintf(back.endpoint, sizeof(back.endpoint), "not a url");
    assert_int_equal(os_heartbeat_sign(&back, priv1, 8453), OS_ERR_INVALID);

    /* parse negatives */
    json_t *b = json_deep_copy(j);
    set(b, "extra", json_integer(1));
    expect_bad_hb(b, "unknown field \"extra\"");
    static const char *const keys[] = {"node", "endpoint", "seq", "timestamp", "load", "signature"};
    for (size_t i = 0; i < 6; i++) {
        char needle[48];
        b = json_deep_copy(j);
        assert_int_equal(json_object_del(b, keys[i]), 0);
        snprintf(needle, sizeof(needle), "missing field \"%s\"", keys[i]);
        expect_bad_hb(b, needle);
    }
    b = json_deep_copy(j);
    set(b, "signature", json_string("0x" HB_SIG "00"));
    expect_bad_hb(b, "signature");
    b = json_deep_copy(j);
    set(b, "signature", json_string(HB_SIG));
    expect_bad_hb(b, "signature");
    b = json_deep_copy(j);
    set(b, "signature", json_string("0x4daa"));
    expect_bad_hb(b, "signature");
    b = json_deep_copy(j);
    set(b, "seq", json_integer(-5));
    expect_bad_hb(b, "seq");
    b = json_deep_copy(j);
    set(b, "timestamp", json_string("1763700030"));
    expect_bad_hb(b, "timestamp");
    b = json_deep_copy(j);
    set(b, "endpoint", json_string("https://a b"));
    expect_bad_hb(b, "endpoint");
    b = json_deep_copy(j);
    set(b, "node", json_string("0x7e5F4552091A69125d5DfCb7b8C2659029395Bdf"));
    expect_bad_hb(b, "node");
    b = json_deep_copy(j);
    set(b, "load", load("{\"active\":1}"));
    expect_bad_hb(b, "load: missing field \"capacity\"");
    b = json_deep_copy(j);
    set(b, "load", load("{\"active\":1,\"capacity\":0}"));
    expect_bad_hb(b, "capacity");
    b = json_deep_copy(j);
    set(b, "load", load("{\"active\":4294967296,\"capacity\":1}"));
    expect_bad_hb(b, "active");
    b = json_deep_copy(j);
    set(b, "load", load("{\"active\":1,\"capacity\":2,\"queue\":3}"));
    expect_bad_hb(b, "load: unknown field \"queue\"");
    b = json_deep_copy(j);
    set(b, "load", json_integer(1));
    expect_bad_hb(b, "load");
    expect_bad_hb(load("[]"), "object");
    json_decref(j);

    hb.seq = (uint64_t)INT64_MAX + 1;
    assert_null(os_heartbeat_to_json(&hb));
}

/* ------------------------------------------------------------------ feedback */

static void build_feedback(os_feedback *fb)
{
    memset(fb, 0, sizeof(*fb));
    memcpy(fb->node, addr1, 20);
    snprintf(fb->outcome, sizeof(fb->outcome), "success");
    fb->latency_ms = 1234;
    fb->ttft_ms = 210;
    memset(fb->channel_id, 0x11, 32);
    fb->cumulative_amount = 49000;
    fb->nonce = 42;
    memset(fb->metadata_hash, 0x22, 32);
}

static void expect_bad_fb(json_t *body, const char *needle)
{
    os_feedback fb;
    char err[OS_RECORD_ERR_LEN];
    memset(&fb, 0xaa, sizeof(fb));
    assert_int_equal(os_feedback_parse(&fb, body, err, sizeof(err)), OS_ERR_INVALID);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    assert_true(os_ct_is_zero(&fb, sizeof(fb)));
    json_decref(body);
}

static void test_feedback_digests(void **state)
{
    static const char type[] = "Feedback(address node,string outcome,uint64 latencyMs,uint64 "
                               "ttftMs,bytes32 channelId,uint256 cumulativeAmount,uint64 nonce,"
                               "bytes32 metadataHash)";
    os_feedback fb;
    uint8_t h[32], slow[32];
    char doc[2048];
    (void)state;

    os_keccak256(h, type, strlen(type));
    tu_assert_hex(h, 32, FEEDBACK_TYPEHASH);

    build_feedback(&fb);
    assert_int_equal(os_feedback_digest(h, &fb, 8453), OS_OK);
    tu_assert_hex(h, 32, FB_DIGEST);
    snprintf(
        doc, sizeof(doc),
        "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"
        "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"chainId\",\"type\":\"uint256\"}],"
        "\"Feedback\":[{\"name\":\"node\",\"type\":\"address\"},"
        "{\"name\":\"outcome\",\"type\":\"string\"},{\"name\":\"latencyMs\",\"type\":\"uint64\"},"
        "{\"name\":\"ttftMs\",\"type\":\"uint64\"},{\"name\":\"channelId\",\"type\":\"bytes32\"},"
        "{\"name\":\"cumulativeAmount\",\"type\":\"uint256\"},"
        "{\"name\":\"nonce\",\"type\":\"uint64\"},"
        "{\"name\":\"metadataHash\",\"type\":\"bytes32\"}]},\"primaryType\":\"Feedback\","
        "\"domain\":{\"name\":\"OpenSeed\",\"version\":\"1\",\"chainId\":8453},"
        "\"message\":{\"node\":\"%s\",\"outcome\":\"success\",\"latencyMs\":1234,"
        "\"ttftMs\":210,\"channelId\":\"0x%s\",\"cumulativeAmount\":\"49000\",\"nonce\":42,"
        "\"metadataHash\":\"0x%s\"}}",
        ADDR1, "1111111111111111111111111111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222222222222222222222222222");
    json_t *td = load(doc);
    assert_int_equal(os_eip712_hash_typed_data(slow, td), OS_OK);
    assert_memory_equal(h, slow, 32);
    json_decref(td);

    /* the same against the engine for other values: long outcome text, big numbers */
    fb.latency_ms = OS_FEEDBACK_MAX_MS;
    fb.ttft_ms = 0;
    fb.cumulative_amount = UINT64_MAX;
    fb.nonce = INT64_MAX;
    snprintf(fb.outcome, sizeof(fb.outcome), "timeout");
    assert_int_equal(os_feedback_digest(h, &fb, 84532), OS_OK);
    snprintf(
        doc, sizeof(doc),
        "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"
        "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"chainId\",\"type\":\"uint256\"}],"
        "\"Feedback\":[{\"name\":\"node\",\"type\":\"address\"},"
        "{\"name\":\"outcome\",\"type\":\"string\"},{\"name\":\"latencyMs\",\"type\":\"uint64\"},"
        "{\"name\":\"ttftMs\",\"type\":\"uint64\"},{\"name\":\"channelId\",\"type\":\"bytes32\"},"
        "{\"name\":\"cumulativeAmount\",\"type\":\"uint256\"},"
        "{\"name\":\"nonce\",\"type\":\"uint64\"},"
        "{\"name\":\"metadataHash\",\"type\":\"bytes32\"}]},\"primaryType\":\"Feedback\","
        "\"domain\":{\"name\":\"OpenSeed\",\"version\":\"1\",\"chainId\":84532},"
        "\"message\":{\"node\":\"%s\",\"outcome\":\"timeout\",\"latencyMs\":86400000,"
        "\"ttftMs\":0,\"channelId\":\"0x%s\",\"cumulativeAmount\":\"18446744073709551615\","
        "\"nonce\":\"9223372036854775807\",\"metadataHash\":\"0x%s\"}}",
        ADDR1, "1111111111111111111111111111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222222222222222222222222222");
    td = load(doc);
    assert_int_equal(os_eip712_hash_typed_data(slow, td), OS_OK);
    assert_memory_equal(h, slow, 32);
    json_decref(td);

    /* the voucher digest: ethers' value and the engine's SpendingAuth in the channels domain */
    build_feedback(&fb);
    assert_int_equal(os_feedback_voucher_digest(h, &fb, 8453, escrow), OS_OK);
    tu_assert_hex(h, 32, VOUCHER_DIGEST);
    snprintf(
        doc, sizeof(doc),
        "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"
        "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"chainId\",\"type\":\"uint256\"},"
        "{\"name\":\"verifyingContract\",\"type\":\"address\"}],"
        "\"SpendingAuth\":[{\"name\":\"channelId\",\"type\":\"bytes32\"},"
        "{\"name\":\"cumulativeAmount\",\"type\":\"uint256\"},"
        "{\"name\":\"nonce\",\"type\":\"uint64\"},"
        "{\"name\":\"metadataHash\",\"type\":\"bytes32\"}]},\"primaryType\":\"SpendingAuth\","
        "\"domain\":{\"name\":\"OpenSeedChannels\",\"version\":\"1\",\"chainId\":8453,"
        "\"verifyingContract\":\"%s\"},"
        "\"message\":{\"channelId\":\"0x%s\",\"cumulativeAmount\":\"49000\",\"nonce\":42,"
        "\"metadataHash\":\"0x%s\"}}",
        ESCROW, "1111111111111111111111111111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222222222222222222222222222");
    td = load(doc);
    assert_int_equal(os_eip712_hash_typed_data(slow, td), OS_OK);
    assert_memory_equal(h, slow, 32);
    json_decref(td);

    /* an outcome outside the list has no digest */
    snprintf(fb.outcome, sizeof(fb.outcome), "great");
    assert_int_equal(os_feedback_digest(h, &fb, 8453), OS_ERR_INVALID);
    memset(fb.outcome, 'x', sizeof(fb.outcome));
    assert_int_equal(os_feedback_digest(h, &fb, 8453), OS_ERR_INVALID);
}

static void test_feedback_sign_verify(void **state)
{
    os_feedback fb, back;
    uint8_t signer[20], vd[32], fd[32], other[20];
    char err[OS_RECORD_ERR_LEN];
    (void)state;

    memset(other, 0x99, sizeof(other));
    build_feedback(&fb);
    assert_int_equal(os_feedback_sign(&fb, priv2, 8453, escrow), OS_OK);
    tu_assert_hex(fb.voucher_sig, 65, VOUCHER_SIG);
    tu_assert_hex(fb.sig, 65, FB_SIG);
    assert_int_equal(os_feedback_verify(signer, &fb, 8453, escrow), OS_OK);
    assert_memory_equal(signer, addr2, 20);

    /* wire round trip */
    json_t *j = os_feedback_to_json(&fb);
    assert_non_null(j);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "voucher"), "cumulativeAmount")),
        "49000");
    assert_int_equal(os_feedback_parse(&back, j, err, sizeof(err)), OS_OK);
    assert_memory_equal(&back, &fb, sizeof(fb));

    /* an already-signed voucher is kept, not re-signed */
    back = fb;
    memset(back.sig, 0, 65);
    assert_int_equal(os_feedback_sign(&back, priv2, 8453, escrow), OS_OK);
    assert_memory_equal(&back, &fb, sizeof(fb));

    /* voucher by key 1, feedback by key 2 */
    back = fb;
    assert_int_equal(os_feedback_voucher_digest(vd, &back, 8453, escrow), OS_OK);
    assert_int_equal(os_secp_sign(back.voucher_sig, priv1, vd), OS_OK);
    assert_int_equal(os_feedback_verify(signer, &back, 8453, escrow), OS_ERR_CRYPTO);
    assert_true(os_ct_is_zero(signer, 20));
    /* and the signer refuses to pair its feedback with someone else's voucher */
    assert_int_equal(os_feedback_sign(&back, priv2, 8453, escrow), OS_ERR_CRYPTO);
    /* both by key 1 is fine (who may review is the registry's on-chain check) */
    assert_int_equal(os_feedback_digest(fd, &back, 8453), OS_OK);
    assert_int_equal(os_secp_sign(back.sig, priv1, fd), OS_OK);
    assert_int_equal(os_feedback_verify(signer, &back, 8453, escrow), OS_OK);
    assert_memory_equal(signer, addr1, 20);

    /* every signed field, and the domains */
    for (int c = 0; c < 11; c++) {
        back = fb;
        uint64_t chain = 8453;
        const uint8_t *esc = escrow;
        switch (c) {
        case 0:
            snprintf(back.outcome, sizeof(back.outcome), "error");
            break;
        case 1:
            back.latency_ms++;
            break;
        case 2:
            back.ttft_ms++;
            break;
        case 3:
            back.channel_id[31] ^= 1;
            break;
        case 4:
            back.cumulative_amount++;
            break;
        case 5:
            back.nonce++;
            break;
        case 6:
            back.metadata_hash[0] ^= 1;
            break;
        case 7:
            memcpy(back.node, addr2, 20);
            break;
        case 8:
            chain = 1;
            break;
        case 9:
            esc = other;
            break;
        default:
            make_high_s(back.sig);
            break;
        }
        if (os_feedback_verify(signer, &back, chain, esc) != OS_ERR_CRYPTO)
            fail_msg("alteration %d still verifies", c);
    }
    back = fb;
    make_high_s(back.voucher_sig);
    assert_int_equal(os_feedback_verify(signer, &back, 8453, escrow), OS_ERR_CRYPTO);
    back = fb;
    memset(back.voucher_sig, 0, 65);
    assert_int_equal(os_feedback_verify(signer, &back, 8453, escrow), OS_ERR_CRYPTO);

    /* sign refuses what parse would refuse */
    back = fb;
    snprintf(back.outcome, sizeof(back.outcome), "great");
    assert_int_equal(os_feedback_sign(&back, priv2, 8453, escrow), OS_ERR_INVALID);
    back = fb;
    back.latency_ms = OS_FEEDBACK_MAX_MS + 1;
    assert_int_equal(os_feedback_sign(&back, priv2, 8453, escrow), OS_ERR_INVALID);
    back = fb;
    back.nonce = (uint64_t)INT64_MAX + 1;
    assert_null(os_feedback_to_json(&back));

    /* parse negatives */
    json_t *b = json_deep_copy(j);
    set(b, "outcome", json_string("great"));
    expect_bad_fb(b, "outcome");
    b = json_deep_copy(j);
    set(b, "outcome", json_string("a very long outcome text"));
    expect_bad_fb(b, "outcome");
    b = json_deep_copy(j);
    set(b, "latency_ms", json_integer(OS_FEEDBACK_MAX_MS + 1));
    expect_bad_fb(b, "latency_ms");
    b = json_deep_copy(j);
    set(b, "ttft_ms", json_integer(-1));
    expect_bad_fb(b, "ttft_ms");
    b = json_deep_copy(j);
    set(b, "rating", json_integer(5));
    expect_bad_fb(b, "unknown field \"rating\"");
    b = json_deep_copy(j);
    set(b, "node", json_string("0x7E5F4552091A69125d5DfCb7b8C2659029395BDF"));
    expect_bad_fb(b, "node");
    json_t *v;
    b = json_deep_copy(j);
    v = json_object_get(b, "voucher");
    set(v, "cumulativeAmount", json_integer(49000));
    expect_bad_fb(b, "voucher: field \"cumulativeAmount\"");
    b = json_deep_copy(j);
    v = json_object_get(b, "voucher");
    set(v, "cumulativeAmount", json_string("049000"));
    expect_bad_fb(b, "cumulativeAmount");
    b = json_deep_copy(j);
    v = json_object_get(b, "voucher");
    set(v, "nonce", json_string("42"));
    expect_bad_fb(b, "voucher: field \"nonce\"");
    b = json_deep_copy(j);
    v = json_object_get(b, "voucher");
    set(v, "channelId", json_string("0x1111"));
    expect_bad_fb(b, "channelId");
    b = json_deep_copy(j);
    v = json_object_get(b, "voucher");
    json_object_del(v, "metadataHash");
    expect_bad_fb(b, "voucher: missing field \"metadataHash\"");
    b = json_deep_copy(j);
    v = json_object_get(b, "voucher");
    set(v, "payer", json_string("x"));
    expect_bad_fb(b, "voucher: unknown field \"payer\"");
    b = json_deep_copy(j);
    v = json_object_get(b, "voucher");
    set(v, "signature", json_string("0xzz"));
    expect_bad_fb(b, "voucher: field \"signature\"");
    b = json_deep_copy(j);
    json_object_del(b, "signature");
    expect_bad_fb(b, "missing field \"signature\"");
    b = json_deep_copy(j);
    set(b, "voucher", json_string("x"));
    expect_bad_fb(b, "voucher");
    expect_bad_fb(load("[]"), "object");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_names),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_body_hash),
        cmocka_unit_test(test_record_digest_engine),
        cmocka_unit_test(test_record_wrong_key),
        cmocka_unit_test(test_record_tamper),
        cmocka_unit_test(test_record_high_s),
        cmocka_unit_test(test_record_fields_and_types),
        cmocka_unit_test(test_record_addresses),
        cmocka_unit_test(test_record_endpoints),
        cmocka_unit_test(test_record_offerings),
        cmocka_unit_test(test_record_prices),
        cmocka_unit_test(test_record_ohttp_keys),
        cmocka_unit_test(test_record_to_json_refuses),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_feedback_digests),
        cmocka_unit_test(test_feedback_sign_verify),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
