/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIP-712, EIP-191 and EIP-2098. Sources of the vectors:
 *  - EIP-712 "Mail" example (eips.ethereum.org/EIPS/eip-712, its Example.js / Example.sol): domain
 *    separator, hashStruct(message), digest, and the signature by keccak256("cow").
 *  - EIP-2098 "Test Vectors": private key 0x1234…1234 signing the EIP-191 messages "Hello World"
 *    and "It's a small(er) world", with r, s, v and the compact yParityAndS.
 *  - Values marked "ethers" were computed with ethers 6.17 (TypedDataEncoder, hashMessage), an
 *    independent implementation, e.g. TypedDataEncoder.from(types).hash(value).
 * The rest are refusals (types, values, ranges, depth) and checks that the fixed-struct helpers
 * equal the JSON engine on the same data.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdlib.h>

#include "openseed/ct.h"
#include "openseed/eip712.h"
#include "openseed/keccak.h"
#include "openseed/secp.h"

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        fail_msg("bad test JSON at %d: %s", err.position, err.text);
    return j;
}

static const char mail_json[] =
    "{\"types\":{"
    "\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"version\",\"type\":"
    "\"string\"},"
    "{\"name\":\"chainId\",\"type\":\"uint256\"},{\"name\":\"verifyingContract\",\"type\":"
    "\"address\"}],"
    "\"Person\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"wallet\",\"type\":\"address\"}"
    "],"
    "\"Mail\":[{\"name\":\"from\",\"type\":\"Person\"},{\"name\":\"to\",\"type\":\"Person\"},"
    "{\"name\":\"contents\",\"type\":\"string\"}]},"
    "\"primaryType\":\"Mail\","
    "\"domain\":{\"name\":\"Ether Mail\",\"version\":\"1\",\"chainId\":1,"
    "\"verifyingContract\":\"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC\"},"
    "\"message\":{\"from\":{\"name\":\"Cow\",\"wallet\":"
    "\"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826\"},"
    "\"to\":{\"name\":\"Bob\",\"wallet\":\"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB\"},"
    "\"contents\":\"Hello, Bob!\"}}";

static void test_mail(void **state)
{
    uint8_t ds[32], hs[32], digest[32], d2[32], priv[32], sig[65], addr[20];
    char text[OS_ADDRESS_STR_LEN];
    json_t *j = load(mail_json);
    json_t *types = json_object_get(j, "types");
    os_eip712_domain dom = {.name = "Ether Mail",
                            .version = "1",
                            .chain_id = 1,
                            .has_chain_id = 1,
                            .has_verifying_contract = 1};
    (void)state;

    assert_int_equal(os_eip712_hash_struct(ds, types, "EIP712Domain", json_object_get(j, "domain")),
                     OS_OK);
    tu_assert_hex(ds, 32, "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f");
    memset(dom.verifying_contract, 0xcc, 20);
    os_eip712_domain_separator(d2, &dom);
    tu_assert_hex(d2, 32, "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f");
    assert_int_equal(os_eip712_hash_struct(hs, types, "Mail", json_object_get(j, "message")),
                     OS_OK);
    tu_assert_hex(hs, 32, "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e");
    assert_int_equal(os_eip712_hash_typed_data(digest, j), OS_OK);
    tu_assert_hex(digest, 32, "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
    os_eip712_digest(d2, ds, hs);
    assert_memory_equal(d2, digest, 32);

    os_keccak256(priv, "cow", 3);
    assert_int_equal(os_secp_sign(sig, priv, digest), OS_OK);
    tu_assert_hex(sig, 32, "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d");
    tu_assert_hex(sig + 32, 32, "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562");
    assert_int_equal(sig[64], 28);
    assert_int_equal(os_secp_recover(addr, digest, sig), OS_OK);
    os_eip55_format(text, addr);
    assert_string_equal(text, "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
    os_wipe(priv, sizeof(priv));
    json_decref(j);
}

static void test_eip191_eip2098(void **state)
{
    static const struct {
        const char *msg, *hash, *r, *s, *vs;
        uint8_t v;
    } v[] = {
        {"Hello World", "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2",
         "68a020a209d3d56c46f38cc50a33f704f4a9a10a59377f8dd762ac66910e9b90",
         "7e865ad05c4035ab5792787d4a0297a43617ae897930a6fe4d822b8faea52064",
         "7e865ad05c4035ab5792787d4a0297a43617ae897930a6fe4d822b8faea52064", 27},
        {"It's a small(er) world",
         "ac33ec93c768b669bdb542a85baebaf7342d35fc9ad8fc0bbc1b852c6f8bf021",
         "9328da16089fcba9bececa81663203989f2df5fe1faa6291a45381c81bd17f76",
         "139c6d6b623b42da56557e5e734a43dc83345ddfadec52cbe24d0cc64f550793",
         "939c6d6b623b42da56557e5e734a43dc83345ddfadec52cbe24d0cc64f550793", 28},
    };
    uint8_t priv[32], h[32], sig[65], compact[64], back[65], addr[20];
    char text[OS_ADDRESS_STR_LEN];
    (void)state;
    tu_unhex(priv, 32, "1234567890123456789012345678901234567890123456789012345678901234");
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        os_eip191_hash(h, v[i].msg, strlen(v[i].msg));
        tu_assert_hex(h, 32, v[i].hash); /* ethers hashMessage */
        assert_int_equal(os_secp_sign(sig, priv, h), OS_OK);
        tu_assert_hex(sig, 32, v[i].r);
        tu_assert_hex(sig + 32, 32, v[i].s);
        assert_int_equal(sig[64], v[i].v);
        os_eip2098_compact(compact, sig);
        tu_assert_hex(compact, 32, v[i].r);
        tu_assert_hex(compact + 32, 32, v[i].vs);
        assert_int_equal(os_eip2098_expand(back, compact), OS_OK);
        assert_memory_equal(back, sig, 65);
        /* v as 0/1 compacts the same */
        sig[64] -= 27;
        os_eip2098_compact(back, sig);
        assert_memory_equal(back, compact, 64);
        sig[64] += 27;
        assert_int_equal(os_secp_recover(addr, h, sig), OS_OK);
        os_eip55_format(text, addr);
        assert_string_equal(text, "0x2e988A386a799F506693793c6A5AF6B54dfAaBfB"); /* ethers */
    }
    /* ethers hashMessage("") and hashMessage("a" x 1000): length prefix of 1 and 4 digits */
    os_eip191_hash(h, "", 0);
    tu_assert_hex(h, 32, "5f35dce98ba4fba25530a026ed80b2cecdaa31091ba4958b99b52ea1d068adad");
    char *a = malloc(1000);
    assert_non_null(a);
    memset(a, 'a', 1000);
    os_eip191_hash(h, a, 1000);
    free(a);
    tu_assert_hex(h, 32, "646dfe80977f3cb244f566d96cd3aabb891d47b9ba5159076d78e9999835e0d6");
}

static void test_eip2098_refusals(void **state)
{
    uint8_t c[64], sig[65];
    (void)state;
    tu_unhex(c, 32, "68a020a209d3d56c46f38cc50a33f704f4a9a10a59377f8dd762ac66910e9b90");
    /* s = n/2 is the largest low s */
    tu_unhex(c + 32, 32, "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
    assert_int_equal(os_eip2098_expand(sig, c), OS_OK);
    assert_int_equal(sig[64], 27);
    c[32] |= 0x80;
    assert_int_equal(os_eip2098_expand(sig, c), OS_OK);
    assert_int_equal(sig[64], 28);
    /* s = n/2 + 1, with either parity */
    tu_unhex(c + 32, 32, "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1");
    assert_int_equal(os_eip2098_expand(sig, c), OS_ERR_INVALID);
    c[32] |= 0x80;
    assert_int_equal(os_eip2098_expand(sig, c), OS_ERR_INVALID);
    /* s = 0 (only the parity bit set) */
    memset(c + 32, 0, 32);
    c[32] = 0x80;
    assert_int_equal(os_eip2098_expand(sig, c), OS_ERR_INVALID);
    /* r = 0, r = n */
    tu_unhex(c + 32, 32, "7e865ad05c4035ab5792787d4a0297a43617ae897930a6fe4d822b8faea52064");
    memset(c, 0, 32);
    assert_int_equal(os_eip2098_expand(sig, c), OS_ERR_INVALID);
    tu_unhex(c, 32, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
    assert_int_equal(os_eip2098_expand(sig, c), OS_ERR_INVALID);
}

/* Nested structs, arrays of structs, nested and fixed arrays, bytes, negative and extreme ints. */
static const char complex_json[] =
    "{\"types\":{"
    "\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"chainId\",\"type\":"
    "\"uint256\"},"
    "{\"name\":\"salt\",\"type\":\"bytes32\"}],"
    "\"Order\":[{\"name\":\"items\",\"type\":\"Item[]\"},{\"name\":\"buyer\",\"type\":\"Party\"},"
    "{\"name\":\"delta\",\"type\":\"int256\"},{\"name\":\"smalls\",\"type\":\"int8[2]\"},"
    "{\"name\":\"memo\",\"type\":\"bytes\"},{\"name\":\"tag\",\"type\":\"bytes4\"},"
    "{\"name\":\"ok\",\"type\":\"bool\"},{\"name\":\"big\",\"type\":\"uint256\"},"
    "{\"name\":\"groups\",\"type\":\"address[][]\"},{\"name\":\"notes\",\"type\":\"string[]\"},"
    "{\"name\":\"grid\",\"type\":\"uint16[2][]\"}],"
    "\"Item\":[{\"name\":\"qty\",\"type\":\"uint16\"},{\"name\":\"owners\",\"type\":\"Party[]\"},"
    "{\"name\":\"id\",\"type\":\"bytes32\"}],"
    "\"Party\":[{\"name\":\"who\",\"type\":\"address\"},{\"name\":\"bal\",\"type\":\"int64\"}]},"
    "\"primaryType\":\"Order\","
    "\"domain\":{\"name\":\"Complex\",\"chainId\":8453,"
    "\"salt\":\"0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\"},"
    "\"message\":{"
    "\"items\":[{\"qty\":3,\"owners\":[{\"who\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\","
    "\"bal\":-5}],"
    "\"id\":\"0x1111111111111111111111111111111111111111111111111111111111111111\"},"
    "{\"qty\":\"0xffff\",\"owners\":[],"
    "\"id\":\"0xabababababababababababababababababababababababababababababababab\"}],"
    "\"buyer\":{\"who\":\"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359\",\"bal\":\"-"
    "9223372036854775808\"},"
    "\"delta\":\"-57896044618658097711785492504343953926634992332820282019728792003956564819968\","
    "\"smalls\":[-128,127],\"memo\":\"0xdeadbeef00\",\"tag\":\"0x01020304\",\"ok\":true,"
    "\"big\":\"115792089237316195423570985008687907853269984665640564039457584007913129639935\","
    "\"groups\":[[\"0x52908400098527886E0F7030069857D2E4169EE7\"],[],"
    "[\"0xde709f2102306220921060314715629080e2fb77\","
    "\"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb\"]],"
    "\"notes\":[\"\",\"h\\u00e9llo \\u2713 \\ud83c\\udf31\",\"quote \\\" back \\\\ slash\"],"
    "\"grid\":[[1,2],[65535,0]],"
    "\"ignored\":\"extra members do not count\"}}";

static void test_complex_document(void **state)
{
    uint8_t h[32];
    json_t *j = load(complex_json);
    json_t *types = json_object_get(j, "types");
    (void)state;
    /* ethers: TypedDataEncoder.from(types).hash(message), hashDomain(domain), hash(...) */
    assert_int_equal(os_eip712_hash_struct(h, types, "Order", json_object_get(j, "message")),
                     OS_OK);
    tu_assert_hex(h, 32, "8f1f1ad872dd0952059fa70462c0421afddd30f155a8b29deaa5d89ef16cf78e");
    assert_int_equal(os_eip712_hash_struct(h, types, "EIP712Domain", json_object_get(j, "domain")),
                     OS_OK);
    tu_assert_hex(h, 32, "3dcb6a124b5a109e108db3cdf1d4c0d202434615d4d13981d9e57fa6ee64e9ba");
    assert_int_equal(os_eip712_hash_typed_data(h, j), OS_OK);
    tu_assert_hex(h, 32, "3fdfa7e61d866da67a86635be592b63dda56f15306ab96dfd41010d26dea0883");

    /* the same through the struct-domain API */
    os_eip712_domain d = {.name = "Complex", .chain_id = 8453, .has_chain_id = 1, .has_salt = 1};
    memset(d.salt, 0x5a, 32);
    os_eip712_domain_separator(h, &d);
    tu_assert_hex(h, 32, "3dcb6a124b5a109e108db3cdf1d4c0d202434615d4d13981d9e57fa6ee64e9ba");

    /* any change to a deep value changes the hash; a fixed array of the wrong length is refused */
    json_t *msg = json_object_get(j, "message");
    json_t *grid0 = json_array_get(json_object_get(msg, "grid"), 0);
    json_array_set_new(grid0, 1, json_integer(3));
    assert_int_equal(os_eip712_hash_struct(h, types, "Order", msg), OS_OK);
    assert_memory_not_equal(h, "\x8f\x1f\x1a\xd8", 4);
    json_array_append_new(grid0, json_integer(3));
    assert_int_equal(os_eip712_hash_struct(h, types, "Order", msg), OS_ERR_INVALID);
    json_decref(j);
}

/*
 * encodeType lists the referenced structs sorted by name, not in the order they are met:
 * "Top(Zebra z,Mid[] m)Apple(string s)Bee(bool x)Mid(Bee b)Zebra(Apple a,uint8 n)".
 * Values from ethers TypedDataEncoder.from(types).hash(v) and .hashStruct("Zebra", v.z).
 */
static void test_encode_type_order(void **state)
{
    uint8_t h[32];
    json_t *t =
        load("{\"Top\":[{\"name\":\"z\",\"type\":\"Zebra\"},{\"name\":\"m\",\"type\":\"Mid[]\"}],"
             "\"Zebra\":[{\"name\":\"a\",\"type\":\"Apple\"},{\"name\":\"n\",\"type\":\"uint8\"}],"
             "\"Mid\":[{\"name\":\"b\",\"type\":\"Bee\"}],"
             "\"Bee\":[{\"name\":\"x\",\"type\":\"bool\"}],"
             "\"Apple\":[{\"name\":\"s\",\"type\":\"string\"}]}");
    json_t *v = load("{\"z\":{\"a\":{\"s\":\"core\"},\"n\":7},\"m\":[{\"b\":{\"x\":true}},{\"b\":{"
                     "\"x\":false}}]}");
    (void)state;
    assert_int_equal(os_eip712_hash_struct(h, t, "Top", v), OS_OK);
    tu_assert_hex(h, 32, "5be1e39c53c603936741c465de0498d70eaf96af1b7bdb4bda4a05273ee33df1");
    assert_int_equal(os_eip712_hash_struct(h, t, "Zebra", json_object_get(v, "z")), OS_OK);
    tu_assert_hex(h, 32, "b986e742df65b6546af08b62f7ab31118d9cace5170d04500c567f07744c6ec6");
    json_decref(t);
    json_decref(v);
}

/*
 * hashStruct of T(<type> v) with v = value_json, against keccak256(keccak256("T(<type> v)") ||
 * want_word), so each case pins the 32-byte encoding of one value.
 */
static os_err one_value(uint8_t out[32], const char *type, const char *value_json)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"types\":{\"T\":[{\"name\":\"v\",\"type\":\"%s\"}]},\"data\":{\"v\":%s}}", type,
             value_json);
    json_error_t jerr;
    json_t *j = json_loads(buf, JSON_ALLOW_NUL, &jerr);
    if (j == NULL)
        fail_msg("bad test JSON %s: %s", buf, jerr.text);
    os_err err =
        os_eip712_hash_struct(out, json_object_get(j, "types"), "T", json_object_get(j, "data"));
    json_decref(j);
    return err;
}

static void check_word(const char *type, const char *value_json, const char *want_word)
{
    uint8_t got[32], pre[64], want[32];
    char tstr[300];
    int n = snprintf(tstr, sizeof(tstr), "T(%s v)", type);
    if (one_value(got, type, value_json) != OS_OK)
        fail_msg("%s %s refused", type, value_json);
    os_keccak256(pre, tstr, (size_t)n);
    tu_unhex(pre + 32, 32, want_word);
    os_keccak256(want, pre, 64);
    if (memcmp(got, want, 32) != 0)
        fail_msg("%s %s: wrong encoding", type, value_json);
}

static void check_refused(const char *type, const char *value_json, os_err want)
{
    uint8_t got[32];
    os_err err = one_value(got, type, value_json);
    if (err != want)
        fail_msg("%s %s: got %s, want %s", type, value_json, os_strerror(err), os_strerror(want));
}

#define FF32 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define Z31 "00000000000000000000000000000000000000000000000000000000000000"

static void test_integers(void **state)
{
    (void)state;
    check_word("uint256",
               "\"115792089237316195423570985008687907853269984665640564039457584007913129639935\"",
               FF32);
    check_word("uint256", "\"0x" FF32 "\"", FF32);
    check_word("uint256", "\"0xFFFFffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"",
               FF32);
    check_word("uint256",
               "\"000000000000000000000000000000000000000000000000000000000000000000000000000000000"
               "0000000007\"",
               Z31 "07");
    check_word("uint8", "255", Z31 "ff");
    check_word("uint8", "\"0xff\"", Z31 "ff");
    check_word("uint8", "\"-0\"", Z31 "00");
    check_word("uint64", "9223372036854775807",
               "0000000000000000000000000000000000000000000000007fffffffffffffff");
    check_word("uint64", "\"18446744073709551615\"",
               "000000000000000000000000000000000000000000000000ffffffffffffffff");
    check_word("int8", "-1", FF32);
    check_word("int8", "-128", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff80");
    check_word("int8", "\"127\"", Z31 "7f");
    check_word("int16", "\"-0x8000\"",
               "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff8000");
    check_word("int64", "-9223372036854775808",
               "ffffffffffffffffffffffffffffffffffffffffffffffff8000000000000000");
    check_word("int256",
               "\"-57896044618658097711785492504343953926634992332820282019728792003956564819968\"",
               "8000000000000000000000000000000000000000000000000000000000000000");
    check_word("int256", "\"0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"",
               "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
    check_word("int256", "\"-1\"", FF32);
    check_word("int72", "\"-2361183241434822606848\"", /* -2^71, the least int72 */
               "ffffffffffffffffffffffffffffffffffffffffffffff800000000000000000");

    /* out of range for the width */
    check_refused(
        "uint256",
        "\"115792089237316195423570985008687907853269984665640564039457584007913129639936\"",
        OS_ERR_RANGE);
    check_refused(
        "uint256",
        "\"999999999999999999999999999999999999999999999999999999999999999999999999999999999\"",
        OS_ERR_RANGE);
    check_refused("uint256",
                  "\"0x1"
                  "0000000000000000000000000000000000000000000000000000000000000000\"",
                  OS_ERR_RANGE);
    check_refused("uint8", "256", OS_ERR_RANGE);
    check_refused("uint8", "\"0x100\"", OS_ERR_RANGE);
    check_refused("uint8", "-1", OS_ERR_RANGE);
    check_refused("uint256", "\"-1\"", OS_ERR_RANGE);
    check_refused("uint64", "\"18446744073709551616\"", OS_ERR_RANGE);
    check_refused("int8", "128", OS_ERR_RANGE);
    check_refused("int8", "-129", OS_ERR_RANGE);
    check_refused("int16", "\"-0x8001\"", OS_ERR_RANGE);
    check_refused("int72", "\"-2361183241434822606849\"", OS_ERR_RANGE);
    check_refused("int72", "\"2361183241434822606848\"", OS_ERR_RANGE);
    check_refused(
        "int256",
        "\"57896044618658097711785492504343953926634992332820282019728792003956564819968\"",
        OS_ERR_RANGE);
    check_refused(
        "int256",
        "\"-57896044618658097711785492504343953926634992332820282019728792003956564819969\"",
        OS_ERR_RANGE);
    check_refused("int256",
                  "\"0x8000000000000000000000000000000000000000000000000000000000000000\"",
                  OS_ERR_RANGE);

    /* malformed */
    check_refused("uint256", "1.5", OS_ERR_INVALID);
    check_refused("uint256", "1.0", OS_ERR_INVALID);
    check_refused("uint256", "1e3", OS_ERR_INVALID);
    check_refused("uint256", "\"1.5\"", OS_ERR_INVALID);
    check_refused("uint256", "\"\"", OS_ERR_INVALID);
    check_refused("int256", "\"-\"", OS_ERR_INVALID);
    check_refused("uint256", "\"0x\"", OS_ERR_INVALID);
    check_refused("uint256", "\"0xg\"", OS_ERR_INVALID);
    check_refused("uint256", "\"12a\"", OS_ERR_INVALID);
    check_refused("uint256", "\" 12\"", OS_ERR_INVALID);
    check_refused("uint256", "\"+5\"", OS_ERR_INVALID);
    check_refused("uint256", "\"--5\"", OS_ERR_INVALID);
    check_refused("uint256", "\"1\\u00002\"", OS_ERR_INVALID);
    check_refused("uint256", "true", OS_ERR_INVALID);
    check_refused("uint256", "null", OS_ERR_INVALID);
    check_refused("uint256", "[1]", OS_ERR_INVALID);
    /* a value longer than any 256-bit number could need */
    char big[400];
    memset(big, '0', sizeof(big));
    big[0] = '"';
    big[300] = '"';
    big[301] = '\0';
    check_refused("uint256", big, OS_ERR_TOOBIG);
}

static void test_other_atomics(void **state)
{
    char want[65];
    uint8_t h[32];
    (void)state;
    os_keccak256(h, "", 0);
    assert_int_equal(os_hex_encode(want, sizeof(want), h, 32, 0), OS_OK);
    check_word("bytes", "\"0x\"", want);
    check_word("string", "\"\"", want);
    os_keccak256(h, "\xde\xad\x00", 3);
    assert_int_equal(os_hex_encode(want, sizeof(want), h, 32, 0), OS_OK);
    check_word("bytes", "\"0xDEad00\"", want);
    os_keccak256(h, "a\0b", 3); /* strings are hashed with their NULs */
    assert_int_equal(os_hex_encode(want, sizeof(want), h, 32, 0), OS_OK);
    check_word("string", "\"a\\u0000b\"", want);
    check_word("bytes1", "\"0x01\"", "01" Z31);
    check_word("bytes4", "\"0xdeadbeef\"",
               "deadbeef00000000000000000000000000000000000000000000000000000000");
    check_word("bytes32", "\"0x" FF32 "\"", FF32);
    check_word("bool", "true", Z31 "01");
    check_word("bool", "false", Z31 "00");
    check_word("address", "\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"",
               "0000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaed");

    check_refused("bytes", "\"0x1\"", OS_ERR_INVALID);
    check_refused("bytes", "\"dead\"", OS_ERR_INVALID);
    check_refused("bytes", "\"0Xdead\"", OS_ERR_INVALID);
    check_refused("bytes", "\"0xdeag\"", OS_ERR_INVALID);
    check_refused("bytes", "[1,2]", OS_ERR_INVALID);
    check_refused("bytes4", "\"0xdeadbe\"", OS_ERR_INVALID);
    check_refused("bytes4", "\"0xdeadbeef00\"", OS_ERR_INVALID);
    check_refused("bytes32", "\"0x\"", OS_ERR_INVALID);
    check_refused("bool", "1", OS_ERR_INVALID);
    check_refused("bool", "\"true\"", OS_ERR_INVALID);
    check_refused("string", "5", OS_ERR_INVALID);
    check_refused("string", "null", OS_ERR_INVALID);
    check_refused("address", "\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\"",
                  OS_ERR_INVALID); /* checksum */
    check_refused("address", "\"0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea\"", OS_ERR_INVALID);
    check_refused("address", "\"5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\"", OS_ERR_INVALID);
    check_refused("address", "\"0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea\\u0000d\"",
                  OS_ERR_INVALID);
    check_refused("address", "1", OS_ERR_INVALID);
}

static os_err hash_types(const char *types_json, const char *primary, const char *data_json)
{
    uint8_t h[32];
    json_t *t = load(types_json), *d = load(data_json);
    os_err err = os_eip712_hash_struct(h, t, primary, d);
    json_decref(t);
    json_decref(d);
    return err;
}

static void test_bad_types(void **state)
{
    static const char *const bad_field_types[] = {
        "Foo",    "uint7",        "uint",      "int",       "int0",      "uint264",
        "uint08", "bytes0",       "bytes33",   "bytes01",   "Uint256",   "address ",
        "",       "T[",           "T]",        "uint8[01]", "uint8[-1]", "uint8[x]",
        "[]",     "uint8[65537]", "string[][", "uint8[ ]",  "function",
    };
    char buf[512];
    (void)state;
    for (size_t i = 0; i < sizeof(bad_field_types) / sizeof(bad_field_types[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"T\":[{\"name\":\"v\",\"type\":\"%s\"}]}",
                 bad_field_types[i]);
        if (hash_types(buf, "T", "{\"v\":1}") != OS_ERR_INVALID)
            fail_msg("type \"%s\" accepted", bad_field_types[i]);
    }
    /* a bad type in a struct the primary never uses is still refused */
    assert_int_equal(hash_types("{\"T\":[{\"name\":\"v\",\"type\":\"bool\"}],\"U\":[{\"name\":"
                                "\"x\",\"type\":\"Nope\"}]}",
                                "T", "{\"v\":true}"),
                     OS_ERR_INVALID);
    /* struct names that read as atomic types, or are not identifiers */
    static const char *const bad_names[] = {"uint256", "bytes7", "int", "uint7", "bytes", "string",
                                            "address", "bool",   "1T",  "T-1",   "T[]",   ""};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"%s\":[{\"name\":\"v\",\"type\":\"bool\"}]}", bad_names[i]);
        if (hash_types(buf, bad_names[i], "{\"v\":true}") != OS_ERR_INVALID)
            fail_msg("struct name \"%s\" accepted", bad_names[i]);
    }
    /* field lists and field objects */
    assert_int_equal(
        hash_types(
            "{\"T\":[{\"name\":\"v\",\"type\":\"bool\"},{\"name\":\"v\",\"type\":\"bool\"}]}", "T",
            "{\"v\":true}"),
        OS_ERR_INVALID); /* duplicate field */
    assert_int_equal(
        hash_types("{\"T\":[{\"name\":\"a b\",\"type\":\"bool\"}]}", "T", "{\"a b\":true}"),
        OS_ERR_INVALID);
    assert_int_equal(hash_types("{\"T\":[{\"name\":\"v\"}]}", "T", "{\"v\":true}"), OS_ERR_INVALID);
    assert_int_equal(hash_types("{\"T\":[{\"type\":\"bool\"}]}", "T", "{\"v\":true}"),
                     OS_ERR_INVALID);
    assert_int_equal(hash_types("{\"T\":[{\"name\":\"v\",\"type\":5}]}", "T", "{\"v\":true}"),
                     OS_ERR_INVALID);
    assert_int_equal(hash_types("{\"T\":[\"bool v\"]}", "T", "{\"v\":true}"), OS_ERR_INVALID);
    assert_int_equal(hash_types("{\"T\":{\"name\":\"v\",\"type\":\"bool\"}}", "T", "{\"v\":true}"),
                     OS_ERR_INVALID);
    assert_int_equal(hash_types("[]", "T", "{}"), OS_ERR_INVALID);
    /* unknown primary type */
    assert_int_equal(hash_types("{\"T\":[]}", "U", "{}"), OS_ERR_INVALID);
    assert_int_equal(hash_types("{\"T\":[]}", "T", "{}"), OS_OK); /* an empty struct is fine */
}

static void test_values_shape(void **state)
{
    static const char types[] =
        "{\"P\":[{\"name\":\"a\",\"type\":\"uint8\"},{\"name\":\"q\",\"type\":\"Q[2]\"}],"
        "\"Q\":[{\"name\":\"s\",\"type\":\"string\"}]}";
    uint8_t h1[32], h2[32];
    (void)state;
    assert_int_equal(hash_types(types, "P", "{\"a\":1,\"q\":[{\"s\":\"x\"},{\"s\":\"y\"}]}"),
                     OS_OK);
    assert_int_equal(hash_types(types, "P", "{\"q\":[{\"s\":\"x\"},{\"s\":\"y\"}]}"),
                     OS_ERR_INVALID);
    assert_int_equal(hash_types(types, "P", "{\"a\":1,\"q\":[{\"s\":\"x\"},{}]}"), OS_ERR_INVALID);
    assert_int_equal(hash_types(types, "P", "{\"a\":1,\"q\":[{\"s\":\"x\"}]}"), OS_ERR_INVALID);
    assert_int_equal(hash_types(types, "P", "{\"a\":1,\"q\":{\"s\":\"x\"}}"), OS_ERR_INVALID);
    assert_int_equal(hash_types(types, "P", "{\"a\":1,\"q\":[\"x\",\"y\"]}"), OS_ERR_INVALID);
    assert_int_equal(hash_types(types, "P", "{\"a\":1,\"q\":[{\"s\":\"x\"},null]}"),
                     OS_ERR_INVALID);
    assert_int_equal(hash_types(types, "P", "[1]"), OS_ERR_INVALID);
    assert_int_equal(
        hash_types(types, "P", "{\"a\":1,\"q\":[{\"s\":\"x\"},{\"s\":\"y\"}],\"z\":0}"), OS_OK);

    /* extra members are ignored: the hash is that of the declared fields only */
    json_t *t = load(types);
    json_t *d1 = load("{\"a\":1,\"q\":[{\"s\":\"x\"},{\"s\":\"y\"}]}");
    json_t *d2 = load("{\"a\":1,\"q\":[{\"s\":\"x\",\"t\":1},{\"s\":\"y\"}],\"z\":0}");
    assert_int_equal(os_eip712_hash_struct(h1, t, "P", d1), OS_OK);
    assert_int_equal(os_eip712_hash_struct(h2, t, "P", d2), OS_OK);
    assert_memory_equal(h1, h2, 32);
    json_decref(t);
    json_decref(d1);
    json_decref(d2);

    /* hash_typed_data needs an EIP712Domain type, and the primary type must be another */
    json_t *j = load(mail_json);
    json_t *tt = json_object_get(j, "types");
    assert_int_equal(os_eip712_hash_typed_data(h1, j), OS_OK);
    json_object_set_new(j, "primaryType", json_string("EIP712Domain"));
    assert_int_equal(os_eip712_hash_typed_data(h1, j), OS_ERR_INVALID);
    json_object_set_new(j, "primaryType", json_string("Nope"));
    assert_int_equal(os_eip712_hash_typed_data(h1, j), OS_ERR_INVALID);
    json_object_set_new(j, "primaryType", json_string("Mail"));
    json_object_del(json_object_get(j, "domain"), "version");
    assert_int_equal(os_eip712_hash_typed_data(h1, j), OS_ERR_INVALID);
    json_object_del(tt, "EIP712Domain");
    assert_int_equal(os_eip712_hash_typed_data(h1, j), OS_ERR_INVALID);
    json_decref(j);
    assert_int_equal(os_eip712_hash_typed_data(h1, NULL), OS_ERR_INVALID);
}

/* Builds {"kids":[{"kids":[ ... {"kids":[]} ... ]}]} with n structs. */
static char *nest_kids(int n)
{
    size_t cap = (size_t)n * 12 + 16, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "{\"kids\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "]}");
    return s;
}

static void test_depth(void **state)
{
    static const char node[] = "{\"Node\":[{\"name\":\"kids\",\"type\":\"Node[]\"}]}";
    char types[512], data[256];
    (void)state;
    /* each level is a struct and an array: 16 levels reach depth 32, 17 go past it */
    char *ok = nest_kids(16), *deep = nest_kids(17), *hostile = nest_kids(500);
    assert_int_equal(hash_types(node, "Node", ok), OS_OK);
    assert_int_equal(hash_types(node, "Node", deep), OS_ERR_TOOBIG);
    assert_int_equal(hash_types(node, "Node", hostile), OS_ERR_TOOBIG);
    free(ok);
    free(deep);
    free(hostile);

    /* array dimensions: 31 fit under the struct, 32 are a valid type whose values are too deep */
    size_t n = (size_t)snprintf(types, sizeof(types), "{\"T\":[{\"name\":\"v\",\"type\":\"uint8");
    for (int i = 0; i < 31; i++)
        n += (size_t)snprintf(types + n, sizeof(types) - n, "[]");
    snprintf(types + n, sizeof(types) - n, "\"}]}");
    n = (size_t)snprintf(data, sizeof(data), "{\"v\":");
    for (int i = 0; i < 31; i++)
        n += (size_t)snprintf(data + n, sizeof(data) - n, "[");
    for (int i = 0; i < 31; i++)
        n += (size_t)snprintf(data + n, sizeof(data) - n, "]");
    snprintf(data + n, sizeof(data) - n, "}");
    assert_int_equal(hash_types(types, "T", data), OS_OK);

    n = (size_t)snprintf(types, sizeof(types), "{\"T\":[{\"name\":\"v\",\"type\":\"uint8");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(types + n, sizeof(types) - n, "[]");
    snprintf(types + n, sizeof(types) - n, "\"}]}");
    n = (size_t)snprintf(data, sizeof(data), "{\"v\":");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(data + n, sizeof(data) - n, "[");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(data + n, sizeof(data) - n, "]");
    snprintf(data + n, sizeof(data) - n, "}");
    assert_int_equal(hash_types(types, "T", data), OS_ERR_TOOBIG);
    /* 33 dimensions are refused in the type itself */
    n = (size_t)snprintf(types, sizeof(types), "{\"T\":[{\"name\":\"v\",\"type\":\"uint8");
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(types + n, sizeof(types) - n, "[]");
    snprintf(types + n, sizeof(types) - n, "\"}]}");
    assert_int_equal(hash_types(types, "T", "{\"v\":[]}"), OS_ERR_TOOBIG);

    /* more struct types than the cap */
    json_t *many = json_object();
    for (int i = 0; i <= OS_EIP712_MAX_TYPES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "T%d", i);
        json_object_set_new(many, name, json_array());
    }
    uint8_t h[32];
    json_t *empty = json_object();
    assert_int_equal(os_eip712_hash_struct(h, many, "T0", empty), OS_ERR_TOOBIG);
    json_decref(many);
    json_decref(empty);
}

/* The fixed helpers against the engine on the same values. */
static void test_fixed_helpers_match_engine(void **state)
{
    static const char *const endpoints[] = {"https://seller.example:8378", "",
                                            "http://\xc3\xa9t\xc3\xa9.example/\xf0\x9f\x8c\xb1"};
    static const uint64_t nums[] = {0, 1, 42, UINT64_MAX};
    uint8_t node[20], body[32], chan[32], meta[32], fast[32], slow[32];
    char nodehex[41], bodyhex[65], chanhex[65], metahex[65], buf[2048];
    (void)state;
    for (int i = 0; i < 20; i++)
        node[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 32; i++) {
        body[i] = (uint8_t)(3 * i);
        chan[i] = (uint8_t)(0xff - i);
        meta[i] = (uint8_t)(i * i);
    }
    assert_int_equal(os_hex_encode(nodehex, sizeof(nodehex), node, 20, 0), OS_OK);
    assert_int_equal(os_hex_encode(bodyhex, sizeof(bodyhex), body, 32, 0), OS_OK);
    assert_int_equal(os_hex_encode(chanhex, sizeof(chanhex), chan, 32, 0), OS_OK);
    assert_int_equal(os_hex_encode(metahex, sizeof(metahex), meta, 32, 0), OS_OK);

    for (size_t e = 0; e < sizeof(endpoints) / sizeof(endpoints[0]); e++) {
        for (size_t a = 0; a < sizeof(nums) / sizeof(nums[0]); a++) {
            uint64_t seq = nums[a], ts = nums[(a + 1) % 4];
            json_t *t, *d;

            snprintf(buf, sizeof(buf),
                     "{\"SellerRecord\":[{\"name\":\"node\",\"type\":\"address\"},"
                     "{\"name\":\"endpoint\",\"type\":\"string\"},{\"name\":\"seq\",\"type\":"
                     "\"uint64\"},"
                     "{\"name\":\"timestamp\",\"type\":\"uint64\"},{\"name\":\"bodyHash\",\"type\":"
                     "\"bytes32\"}],"
                     "\"Heartbeat\":[{\"name\":\"node\",\"type\":\"address\"},"
                     "{\"name\":\"endpoint\",\"type\":\"string\"},{\"name\":\"seq\",\"type\":"
                     "\"uint64\"},"
                     "{\"name\":\"timestamp\",\"type\":\"uint64\"}],"
                     "\"SpendingAuth\":[{\"name\":\"channelId\",\"type\":\"bytes32\"},"
                     "{\"name\":\"cumulativeAmount\",\"type\":\"uint256\"},{\"name\":\"nonce\","
                     "\"type\":\"uint64\"},"
                     "{\"name\":\"metadataHash\",\"type\":\"bytes32\"}]}");
            t = load(buf);
            snprintf(
                buf, sizeof(buf),
                "{\"node\":\"0x%s\",\"endpoint\":\"%s\",\"seq\":\"%llu\",\"timestamp\":\"%llu\","
                "\"bodyHash\":\"0x%s\",\"channelId\":\"0x%s\",\"cumulativeAmount\":\"%llu\","
                "\"nonce\":\"0x%llx\",\"metadataHash\":\"0x%s\"}",
                nodehex, endpoints[e], (unsigned long long)seq, (unsigned long long)ts, bodyhex,
                chanhex, (unsigned long long)ts, (unsigned long long)seq, metahex);
            d = load(buf);

            os_eip712_seller_record_hash(fast, node, endpoints[e], seq, ts, body);
            assert_int_equal(os_eip712_hash_struct(slow, t, "SellerRecord", d), OS_OK);
            assert_memory_equal(fast, slow, 32);
            os_eip712_heartbeat_hash(fast, node, endpoints[e], seq, ts);
            assert_int_equal(os_eip712_hash_struct(slow, t, "Heartbeat", d), OS_OK);
            assert_memory_equal(fast, slow, 32);
            os_eip712_spending_auth_hash(fast, chan, ts, seq, meta);
            assert_int_equal(os_eip712_hash_struct(slow, t, "SpendingAuth", d), OS_OK);
            assert_memory_equal(fast, slow, 32);
            json_decref(t);
            json_decref(d);
        }
    }

    /* domains: OpenSeed (ethers hashDomain for chain 8453 anchors it) and OpenSeedChannels */
    static const char t3_json[] = "{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{"
                                  "\"name\":\"version\",\"type\":\"string\"},"
                                  "{\"name\":\"chainId\",\"type\":\"uint256\"}]}";
    static const char t4_json[] = "{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{"
                                  "\"name\":\"version\",\"type\":\"string\"},"
                                  "{\"name\":\"chainId\",\"type\":\"uint256\"},{\"name\":"
                                  "\"verifyingContract\",\"type\":\"address\"}]}";
    json_t *t3 = load(t3_json), *t4 = load(t4_json);
    os_eip712_openseed_domain(fast, 8453);
    tu_assert_hex(fast, 32, "26455b1a3771092c2684b8d5598159f747f1adf5e8bd7860b274a304c9b8d457");
    for (size_t a = 0; a < sizeof(nums) / sizeof(nums[0]); a++) {
        snprintf(buf, sizeof(buf), "{\"name\":\"OpenSeed\",\"version\":\"1\",\"chainId\":\"%llu\"}",
                 (unsigned long long)nums[a]);
        json_t *d = load(buf);
        os_eip712_openseed_domain(fast, nums[a]);
        assert_int_equal(os_eip712_hash_struct(slow, t3, "EIP712Domain", d), OS_OK);
        assert_memory_equal(fast, slow, 32);
        json_decref(d);

        snprintf(buf, sizeof(buf),
                 "{\"name\":\"OpenSeedChannels\",\"version\":\"1\",\"chainId\":%llu,"
                 "\"verifyingContract\":\"0x%s\"}",
                 (unsigned long long)(nums[a] >> 1), nodehex);
        d = load(buf);
        os_eip712_channels_domain(fast, nums[a] >> 1, node);
        assert_int_equal(os_eip712_hash_struct(slow, t4, "EIP712Domain", d), OS_OK);
        assert_memory_equal(fast, slow, 32);
        json_decref(d);
    }
    json_decref(t3);
    json_decref(t4);

    /* a whole Heartbeat document through hash_typed_data equals domain + fixed struct hash */
    snprintf(
        buf, sizeof(buf),
        "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"
        "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"chainId\",\"type\":\"uint256\"}],"
        "\"Heartbeat\":[{\"name\":\"node\",\"type\":\"address\"},{\"name\":\"endpoint\",\"type\":"
        "\"string\"},"
        "{\"name\":\"seq\",\"type\":\"uint64\"},{\"name\":\"timestamp\",\"type\":\"uint64\"}]},"
        "\"primaryType\":\"Heartbeat\",\"domain\":{\"name\":\"OpenSeed\",\"version\":\"1\","
        "\"chainId\":8453},"
        "\"message\":{\"node\":\"0x%s\",\"endpoint\":\"https://seller.example:8378\","
        "\"seq\":1763700000123,\"timestamp\":1763700000}}",
        nodehex);
    json_t *doc = load(buf);
    uint8_t ds[32], hs[32], want[32];
    assert_int_equal(os_eip712_hash_typed_data(slow, doc), OS_OK);
    os_eip712_openseed_domain(ds, 8453);
    os_eip712_heartbeat_hash(hs, node, "https://seller.example:8378", 1763700000123ULL, 1763700000);
    os_eip712_digest(want, ds, hs);
    assert_memory_equal(slow, want, 32);
    json_decref(doc);
}

/* The general domain separator against the engine, for every subset of the five fields. */
static void test_domain_subsets(void **state)
{
    static const char *const fdecl[5] = {"{\"name\":\"name\",\"type\":\"string\"}",
                                         "{\"name\":\"version\",\"type\":\"string\"}",
                                         "{\"name\":\"chainId\",\"type\":\"uint256\"}",
                                         "{\"name\":\"verifyingContract\",\"type\":\"address\"}",
                                         "{\"name\":\"salt\",\"type\":\"bytes32\"}"};
    static const char *const fval[5] = {
        "\"name\":\"Dom\"", "\"version\":\"7\"", "\"chainId\":31337",
        "\"verifyingContract\":\"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"",
        "\"salt\":\"0x0102030405060708091011121314151617181920212223242526272829303132\""};
    (void)state;
    for (unsigned mask = 0; mask < 32; mask++) {
        char types[1024], data[1024];
        size_t nt = (size_t)snprintf(types, sizeof(types), "{\"EIP712Domain\":[");
        size_t nd = (size_t)snprintf(data, sizeof(data), "{");
        int first = 1;
        os_eip712_domain d = {0};
        for (int f = 0; f < 5; f++) {
            if (!(mask & (1u << f)))
                continue;
            nt += (size_t)snprintf(types + nt, sizeof(types) - nt, "%s%s", first ? "" : ",",
                                   fdecl[f]);
            nd += (size_t)snprintf(data + nd, sizeof(data) - nd, "%s%s", first ? "" : ",", fval[f]);
            first = 0;
        }
        snprintf(types + nt, sizeof(types) - nt, "]}");
        snprintf(data + nd, sizeof(data) - nd, "}");
        if (mask & 1)
            d.name = "Dom";
        if (mask & 2)
            d.version = "7";
        if (mask & 4)
            d.chain_id = 31337, d.has_chain_id = 1;
        if (mask & 8) {
            tu_unhex(d.verifying_contract, 20, "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
            d.has_verifying_contract = 1;
        }
        if (mask & 16) {
            tu_unhex(d.salt, 32,
                     "0102030405060708091011121314151617181920212223242526272829303132");
            d.has_salt = 1;
        }
        uint8_t fast[32], slow[32];
        json_t *t = load(types), *v = load(data);
        os_eip712_domain_separator(fast, &d);
        assert_int_equal(os_eip712_hash_struct(slow, t, "EIP712Domain", v), OS_OK);
        assert_memory_equal(fast, slow, 32);
        json_decref(t);
        json_decref(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mail),
        cmocka_unit_test(test_eip191_eip2098),
        cmocka_unit_test(test_eip2098_refusals),
        cmocka_unit_test(test_complex_document),
        cmocka_unit_test(test_encode_type_order),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_other_atomics),
        cmocka_unit_test(test_bad_types),
        cmocka_unit_test(test_values_shape),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_fixed_helpers_match_engine),
        cmocka_unit_test(test_domain_subsets),
    };
    return cmocka_run_group_tests_name("eip712", tests, tu_init, NULL);
}
