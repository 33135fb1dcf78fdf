/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ABI known answers. baz, sam, f and g are the worked examples of the Solidity ABI specification
 * (https://docs.soliditylang.org/en/latest/abi-spec.html#examples, "Use of Dynamic Types"); the
 * tuple, getChannel-shaped, custom-error and event vectors were produced with ethers 6.17
 * (Interface.encodeFunctionData / AbiCoder.encode / encodeErrorResult / encodeEventLog), e.g.
 *   node -e 'const {ethers}=require("./tools/node_modules/ethers");
 *     const i=new ethers.Interface(["function baz(uint32,bool)"]);
 *     console.log(i.encodeFunctionData("baz",[69,true]))'
 * The Error(string) bytes are the Solidity documentation's revert("Not enough Ether provided.")
 * example (control-structures.html, "revert"); transfer/balanceOf selectors are ERC-20's.
 */
#include "testutil.h"

#include <stdlib.h>

#include "openseed/abi.h"
#include "openseed/keccak.h"

#define W0 "0000000000000000000000000000000000000000000000000000000000000000"

static void assert_buf_hex(const os_buf *b, const char *want)
{
    tu_assert_hex(b->data, b->len, want);
}

/* Decodes a hex vector of any length into a malloc'd buffer. */
static uint8_t *unhex_alloc(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    uint8_t *p = malloc(n / 2 + 1);
    assert_non_null(p);
    assert_int_equal(os_hex_decode(p, n / 2 + 1, len, hex, n), OS_OK);
    return p;
}

static void test_selectors(void **state)
{
    uint8_t sel[4];
    (void)state;
    assert_int_equal(os_abi_selector(sel, "transfer(address,uint256)"), OS_OK);
    tu_assert_hex(sel, 4, "a9059cbb");
    assert_int_equal(os_abi_selector(sel, "balanceOf(address)"), OS_OK);
    tu_assert_hex(sel, 4, "70a08231");
    assert_int_equal(os_abi_selector(sel, "baz(uint32,bool)"), OS_OK);
    tu_assert_hex(sel, 4, "cdcd77c0");
    assert_int_equal(os_abi_selector(sel, "sam(bytes,bool,uint256[])"), OS_OK);
    tu_assert_hex(sel, 4, "a5643bf2");
    assert_int_equal(os_abi_selector(sel, "Error(string)"), OS_OK);
    tu_assert_hex(sel, 4, "08c379a0");
    assert_int_equal(os_abi_selector(sel, "Panic(uint256)"), OS_OK);
    tu_assert_hex(sel, 4, "4e487b71");
    assert_int_equal(os_abi_selector(sel, "totalSupply()"), OS_OK);
    tu_assert_hex(sel, 4, "18160ddd");
}

static void test_bad_signatures(void **state)
{
    static const struct {
        const char *sig;
        os_err want;
    } v[] = {
        {"transfer(address, uint256)", OS_ERR_INVALID}, /* not canonical: space */
        {"transfer(address,uint)", OS_ERR_INVALID},     /* alias, hashes differently */
        {"f(uint7)", OS_ERR_INVALID},
        {"f(uint264)", OS_ERR_INVALID},
        {"f(uint08)", OS_ERR_INVALID},
        {"f(bytes0)", OS_ERR_INVALID},
        {"f(bytes33)", OS_ERR_INVALID},
        {"f(address", OS_ERR_INVALID},
        {"f(address))", OS_ERR_INVALID},
        {"f(,address)", OS_ERR_INVALID},
        {"f(address,)", OS_ERR_INVALID},
        {"f(())", OS_ERR_INVALID},
        {"(address)", OS_ERR_INVALID}, /* no name */
        {"1f(address)", OS_ERR_INVALID},
        {"f(address[)", OS_ERR_INVALID},
        {"f(int256)", OS_ERR_UNSUPPORTED},
        {"f(bytes3[2])", OS_ERR_UNSUPPORTED},
        {"f(fixed128x18)", OS_ERR_UNSUPPORTED},
        {"f(uint256[][][][][][][][][])", OS_ERR_TOOBIG}, /* deeper than OS_ABI_MAX_DEPTH */
    };
    uint8_t sel[4];
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (os_abi_selector(sel, v[i].sig) != v[i].want)
            fail_msg("%s: got %d want %d", v[i].sig, os_abi_selector(sel, v[i].sig), v[i].want);
    assert_int_equal(os_abi_selector(sel, "f(uint256[][][][][][][][])"), OS_OK); /* 8 deep */
}

static void test_spec_baz_sam(void **state)
{
    os_buf b;
    uint8_t three[3] = {1, 2, 3};
    os_abi_value arr[3], args[3];
    (void)state;
    os_buf_init(&b, 4096);

    args[0] = os_abi_uint64(69);
    args[1] = os_abi_bool(true);
    assert_int_equal(os_abi_encode_call(&b, "baz(uint32,bool)", args, 2), OS_OK);
    assert_buf_hex(&b, "cdcd77c0"
                       "0000000000000000000000000000000000000000000000000000000000000045"
                       "0000000000000000000000000000000000000000000000000000000000000001");

    os_buf_reset(&b);
    for (int i = 0; i < 3; i++)
        arr[i] = os_abi_uint64(three[i]);
    args[0] = os_abi_bytes((const uint8_t *)"dave", 4);
    args[1] = os_abi_bool(true);
    args[2] = os_abi_array(arr, 3);
    assert_int_equal(os_abi_encode_call(&b, "sam(bytes,bool,uint256[])", args, 3), OS_OK);
    assert_buf_hex(&b, "a5643bf2"
                       "0000000000000000000000000000000000000000000000000000000000000060"
                       "0000000000000000000000000000000000000000000000000000000000000001"
                       "00000000000000000000000000000000000000000000000000000000000000a0"
                       "0000000000000000000000000000000000000000000000000000000000000004"
                       "6461766500000000000000000000000000000000000000000000000000000000"
                       "0000000000000000000000000000000000000000000000000000000000000003"
                       "0000000000000000000000000000000000000000000000000000000000000001"
                       "0000000000000000000000000000000000000000000000000000000000000002"
                       "0000000000000000000000000000000000000000000000000000000000000003");
    os_buf_free(&b);
}

static void test_spec_f_g(void **state)
{
    os_buf b;
    os_abi_value u32s[2], args[4], inner0[2], inner1[1], outer[2], strs[3];
    os_abi_value b10 = {.kind = OS_ABI_FIXED_BYTES};
    (void)state;
    os_buf_init(&b, 4096);

    memcpy(b10.u.fixed, "1234567890", 10);
    u32s[0] = os_abi_uint64(0x456);
    u32s[1] = os_abi_uint64(0x789);
    args[0] = os_abi_uint64(0x123);
    args[1] = os_abi_array(u32s, 2);
    args[2] = b10;
    args[3] = os_abi_bytes((const uint8_t *)"Hello, world!", 13);
    assert_int_equal(os_abi_encode_call(&b, "f(uint256,uint32[],bytes10,bytes)", args, 4), OS_OK);
    assert_buf_hex(&b, "8be65246"
                       "0000000000000000000000000000000000000000000000000000000000000123"
                       "0000000000000000000000000000000000000000000000000000000000000080"
                       "3132333435363738393000000000000000000000000000000000000000000000"
                       "00000000000000000000000000000000000000000000000000000000000000e0"
                       "0000000000000000000000000000000000000000000000000000000000000002"
                       "0000000000000000000000000000000000000000000000000000000000000456"
                       "0000000000000000000000000000000000000000000000000000000000000789"
                       "000000000000000000000000000000000000000000000000000000000000000d"
                       "48656c6c6f2c20776f726c642100000000000000000000000000000000000000");

    os_buf_reset(&b);
    inner0[0] = os_abi_uint64(1);
    inner0[1] = os_abi_uint64(2);
    inner1[0] = os_abi_uint64(3);
    outer[0] = os_abi_array(inner0, 2);
    outer[1] = os_abi_array(inner1, 1);
    strs[0] = os_abi_string("one");
    strs[1] = os_abi_string("two");
    strs[2] = os_abi_string("three");
    args[0] = os_abi_array(outer, 2);
    args[1] = os_abi_array(strs, 3);
    assert_int_equal(os_abi_encode_call(&b, "g(uint256[][],string[])", args, 2), OS_OK);
    assert_buf_hex(&b, "2289b18c"
                       "0000000000000000000000000000000000000000000000000000000000000040"
                       "0000000000000000000000000000000000000000000000000000000000000140"
                       "0000000000000000000000000000000000000000000000000000000000000002"
                       "0000000000000000000000000000000000000000000000000000000000000040"
                       "00000000000000000000000000000000000000000000000000000000000000a0"
                       "0000000000000000000000000000000000000000000000000000000000000002"
                       "0000000000000000000000000000000000000000000000000000000000000001"
                       "0000000000000000000000000000000000000000000000000000000000000002"
                       "0000000000000000000000000000000000000000000000000000000000000001"
                       "0000000000000000000000000000000000000000000000000000000000000003"
                       "0000000000000000000000000000000000000000000000000000000000000003"
                       "0000000000000000000000000000000000000000000000000000000000000060"
                       "00000000000000000000000000000000000000000000000000000000000000a0"
                       "00000000000000000000000000000000000000000000000000000000000000e0"
                       "0000000000000000000000000000000000000000000000000000000000000003"
                       "6f6e650000000000000000000000000000000000000000000000000000000000"
                       "0000000000000000000000000000000000000000000000000000000000000003"
                       "74776f0000000000000000000000000000000000000000000000000000000000"
                       "0000000000000000000000000000000000000000000000000000000000000005"
                       "7468726565000000000000000000000000000000000000000000000000000000");

    /* and back: decode the arguments after the selector */
    {
        os_abi_value out[16];
        assert_int_equal(os_abi_decode(out, 16, "(uint256[][],string[])", b.data + 4, b.len - 4),
                         OS_OK);
        assert_int_equal(out[0].kind, OS_ABI_ARRAY);
        assert_int_equal(out[0].u.list.n, 2);
        assert_int_equal(out[0].u.list.items[0].u.list.n, 2);
        assert_int_equal(out[0].u.list.items[1].u.list.n, 1);
        assert_int_equal(out[0].u.list.items[1].u.list.items[0].u.uint.be[31], 3);
        assert_int_equal(out[1].u.list.n, 3);
        assert_int_equal(out[1].u.list.items[2].u.bytes.len, 5);
        assert_memory_equal(out[1].u.list.items[2].u.bytes.p, "three", 5);
        /* 2 top + 2 outer + 3 inner + 3 strings = 10 values: a pool of 9 is too small */
        assert_int_equal(os_abi_decode(out, 9, "(uint256[][],string[])", b.data + 4, b.len - 4),
                         OS_ERR_TOOBIG);
    }
    os_buf_free(&b);
}

static const char tup_hex[] = "0d272b6d"
                              "0000000000000000000000000000000000000000000000000000000000000060" W0
                              "00000000000000000000000000000000000000000000000000000000000001000000"
                              "000000000000000000000000000"
                              "00000000000000000000000000000000700000000000000000000000000000000000"
                              "0000000000000000000000000006"
                              "000000000000000000000000000000000000000000000000000000000deadbeef000"
                              "0000000000000000000000000000"
                              "00000000000000000000000000000000268690000000000000000000000000000000"
                              "0000000000000000000000000000"
                              "00000000000000000000000000000000000000000000000000000000000000002111"
                              "1111111111111111111111111111"
                              "11111111111111111111111111111111100000000000000000000000000000000000"
                              "0000000000000000000000000000"
                              "52222222222222222222222222222222222222222222222222222222222222222000"
                              "00000000000000000000000000000"
                              "ffffffffffffffffffffffffffffffff";

static void test_tuples(void **state)
{
    static const char sig[] = "h((uint64,string,address),bool,(bytes32,uint128)[])";
    uint8_t addr[20] = {0}, h1[32], h2[32];
    os_abi_value t0[3], p0[2], p1[2], pairs[2], args[3], out[16];
    os_buf b;
    (void)state;
    addr[16] = 0xde, addr[17] = 0xad, addr[18] = 0xbe, addr[19] = 0xef;
    memset(h1, 0x11, 32);
    memset(h2, 0x22, 32);
    t0[0] = os_abi_uint64(7);
    t0[1] = os_abi_string("hi");
    t0[2] = os_abi_address(addr);
    p0[0] = os_abi_bytes32(h1);
    p0[1] = os_abi_uint64(5);
    p1[0] = os_abi_bytes32(h2);
    p1[1] = os_abi_uint128(~(unsigned __int128)0);
    pairs[0] = os_abi_tuple(p0, 2);
    pairs[1] = os_abi_tuple(p1, 2);
    args[0] = os_abi_tuple(t0, 3);
    args[1] = os_abi_bool(false);
    args[2] = os_abi_array(pairs, 2);
    os_buf_init(&b, 4096);
    assert_int_equal(os_abi_encode_call(&b, sig, args, 3), OS_OK);
    assert_buf_hex(&b, tup_hex);

    assert_int_equal(os_abi_decode(out, 16, "((uint64,string,address),bool,(bytes32,uint128)[])",
                                   b.data + 4, b.len - 4),
                     OS_OK);
    assert_int_equal(out[0].kind, OS_ABI_TUPLE);
    assert_int_equal(out[0].u.list.items[1].u.bytes.len, 2);
    assert_memory_equal(out[0].u.list.items[1].u.bytes.p, "hi", 2);
    assert_memory_equal(out[0].u.list.items[2].u.address, addr, 20);
    assert_false(out[1].u.boolean);
    assert_int_equal(out[2].u.list.n, 2);
    {
        unsigned __int128 v;
        assert_int_equal(os_u256_to_u128(&v, &out[2].u.list.items[1].u.list.items[1].u.uint),
                         OS_OK);
        assert_true(v == ~(unsigned __int128)0);
    }

    /* a member count that does not match the type is refused and leaves the buffer alone */
    os_buf_reset(&b);
    args[0] = os_abi_tuple(t0, 2);
    assert_int_equal(os_abi_encode_call(&b, sig, args, 3), OS_ERR_INVALID);
    assert_int_equal(b.len, 0);
    os_buf_free(&b);
}

static void test_encode_rejects(void **state)
{
    os_buf b;
    os_abi_value v[2];
    os_u256 big;
    (void)state;
    os_buf_init(&b, 4096);
    v[0] = os_abi_bool(true);
    assert_int_equal(os_abi_encode_call(&b, "f(address)", v, 1), OS_ERR_INVALID); /* wrong kind */
    v[0] = os_abi_uint64(256);
    assert_int_equal(os_abi_encode_call(&b, "f(uint8)", v, 1), OS_ERR_RANGE);
    v[0] = os_abi_uint64(255);
    assert_int_equal(os_abi_encode_call(&b, "f(uint8)", v, 1), OS_OK);
    os_u256_from_u64(&big, 1);
    big.be[7] = 1; /* 2^192 + 1 */
    v[0] = os_abi_uint256(&big);
    assert_int_equal(os_abi_encode(&b, "(uint128)", v, 1), OS_ERR_RANGE);
    assert_int_equal(os_abi_encode(&b, "(uint256)", v, 1), OS_OK);
    assert_int_equal(os_abi_encode(&b, "(uint256)", v, 2), OS_ERR_INVALID); /* count */
    /* bytes4 with bytes beyond the fourth set */
    v[0] = (os_abi_value){.kind = OS_ABI_FIXED_BYTES};
    v[0].u.fixed[4] = 1;
    assert_int_equal(os_abi_encode(&b, "(bytes4)", v, 1), OS_ERR_INVALID);
    os_buf_free(&b);

    /* the cap holds: selector fits, the words do not, and nothing is left behind */
    os_buf_init(&b, 40);
    v[0] = os_abi_uint64(1);
    v[1] = os_abi_uint64(2);
    assert_int_equal(os_abi_encode_call(&b, "f(uint256,uint256)", v, 2), OS_ERR_TOOBIG);
    assert_int_equal(b.len, 0);
    os_buf_free(&b);
}

static const char chan_hex[] = "000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
                               "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"
                               "0000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc"
                               "abababababababababababababababababababababababababababababababab"
                               "00000000000000000000000000000000000000000000000000000000000f4240"
                               "000000000000000000000000000000000000000000000000000000000003d090"
                               "00000000000000000000000000000000000000000000000000000000691fed20"
                               "0000000000000000000000000000000000000000000000000000000000000001";
static const char chan_types[] = "(address,address,address,bytes32,uint128,uint128,uint64,bool)";

/* getChannel(bytes32)'s eight static return values */
static void test_decode_get_channel(void **state)
{
    uint8_t data[256], want[20];
    os_abi_value out[8];
    unsigned __int128 dep, claimed;
    uint64_t close_at;
    (void)state;
    tu_unhex(data, 256, chan_hex);
    assert_int_equal(os_abi_decode(out, 8, chan_types, data, 256), OS_OK);
    tu_unhex(want, 20, "f39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    assert_memory_equal(out[0].u.address, want, 20);
    tu_unhex(want, 20, "3c44cdddb6a900fa2b585dd299e03d12fa4293bc");
    assert_memory_equal(out[2].u.address, want, 20);
    assert_int_equal(out[3].u.fixed[0], 0xab);
    assert_int_equal(os_u256_to_u128(&dep, &out[4].u.uint), OS_OK);
    assert_int_equal(os_u256_to_u128(&claimed, &out[5].u.uint), OS_OK);
    assert_int_equal(os_u256_to_u64(&close_at, &out[6].u.uint), OS_OK);
    assert_true(dep == 1000000 && claimed == 250000);
    assert_int_equal(close_at, 1763700000);
    assert_true(out[7].u.boolean);

    /* too short, empty (no code at the address), too few slots */
    assert_int_equal(os_abi_decode(out, 8, chan_types, data, 255), OS_ERR_INVALID);
    assert_int_equal(os_abi_decode(out, 8, chan_types, data, 0), OS_ERR_NOTFOUND);
    assert_int_equal(os_abi_decode(out, 7, chan_types, data, 256), OS_ERR_TOOBIG);
    /* dirty bits: address high bytes, bool 2, uint64 above 2^64 */
    data[0] = 1;
    assert_int_equal(os_abi_decode(out, 8, chan_types, data, 256), OS_ERR_INVALID);
    data[0] = 0;
    data[255] = 2;
    assert_int_equal(os_abi_decode(out, 8, chan_types, data, 256), OS_ERR_INVALID);
    data[255] = 1;
    data[6 * 32 + 23] = 1;
    assert_int_equal(os_abi_decode(out, 8, chan_types, data, 256), OS_ERR_INVALID);
}

static void test_decode_rejects_dynamic(void **state)
{
    /* ("ab") = offset 0x20, length 2, "ab" padded */
    uint8_t d[96];
    os_abi_value out[4];
    (void)state;
    memset(d, 0, sizeof(d));
    d[31] = 0x20;
    d[63] = 2;
    d[64] = 'a';
    d[65] = 'b';
    assert_int_equal(os_abi_decode(out, 4, "(string)", d, 96), OS_OK);
    assert_int_equal(out[0].u.bytes.len, 2);
    assert_int_equal(os_abi_decode(out, 4, "(string)", d, 95), OS_ERR_INVALID); /* padding cut */
    d[95] = 1; /* non-zero padding */
    assert_int_equal(os_abi_decode(out, 4, "(bytes)", d, 96), OS_ERR_INVALID);
    d[95] = 0;
    d[63] = 33; /* length past the data */
    assert_int_equal(os_abi_decode(out, 4, "(bytes)", d, 96), OS_ERR_INVALID);
    d[63] = 2;
    d[31] = 0x60; /* offset at the very end */
    assert_int_equal(os_abi_decode(out, 4, "(bytes)", d, 96), OS_ERR_INVALID);
    d[31] = 0;
    d[0] = 0xff; /* enormous offset */
    assert_int_equal(os_abi_decode(out, 4, "(bytes)", d, 96), OS_ERR_INVALID);
    /* an array claiming 2^32 elements in 96 bytes */
    memset(d, 0, sizeof(d));
    d[31] = 0x20;
    d[59] = 1;
    assert_int_equal(os_abi_decode(out, 4, "(uint256[])", d, 96), OS_ERR_INVALID);
    /* two elements fit the data but not a pool of 2 */
    d[59] = 0;
    d[63] = 2;
    assert_int_equal(os_abi_decode(out, 2, "(uint8[])", d, 128 - 32), OS_ERR_INVALID);
    {
        uint8_t e[128] = {0};
        e[31] = 0x20;
        e[63] = 2;
        e[95] = 7;
        e[127] = 8;
        assert_int_equal(os_abi_decode(out, 2, "(uint8[])", e, 128), OS_ERR_TOOBIG);
        assert_int_equal(os_abi_decode(out, 3, "(uint8[])", e, 128), OS_OK);
        assert_int_equal(out[0].u.list.items[1].u.uint.be[31], 8);
        e[126] = 1; /* 0x108 does not fit a uint8 */
        assert_int_equal(os_abi_decode(out, 3, "(uint8[])", e, 128), OS_ERR_INVALID);
    }
}

static void test_revert_error_string(void **state)
{
    /* Solidity docs: revert("Not enough Ether provided.") */
    uint8_t d[100];
    os_abi_revert r;
    (void)state;
    tu_unhex(d, 100,
             "08c379a0"
             "0000000000000000000000000000000000000000000000000000000000000020"
             "000000000000000000000000000000000000000000000000000000000000001a"
             "4e6f7420656e6f7567682045746865722070726f76696465642e000000000000");
    assert_int_equal(os_abi_decode_revert(&r, d, 100, NULL, 0), OS_OK);
    assert_int_equal(r.kind, OS_ABI_REVERT_ERROR);
    assert_string_equal(r.message, "Not enough Ether provided.");
    /* control characters are not passed through */
    d[68] = '\n';
    assert_int_equal(os_abi_decode_revert(&r, d, 100, NULL, 0), OS_OK);
    assert_string_equal(r.message, "?ot enough Ether provided.");
    /* truncated */
    assert_int_equal(os_abi_decode_revert(&r, d, 90, NULL, 0), OS_ERR_INVALID);
    assert_int_equal(r.kind, OS_ABI_REVERT_ERROR);
    assert_string_equal(r.message, "malformed Error(string) revert data");
    /* no data at all */
    assert_int_equal(os_abi_decode_revert(&r, d, 0, NULL, 0), OS_OK);
    assert_int_equal(r.kind, OS_ABI_REVERT_EMPTY);
}

static void test_revert_long_reason_truncated(void **state)
{
    char reason[600];
    os_buf b;
    os_abi_value v;
    os_abi_revert r;
    (void)state;
    memset(reason, 'x', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    v = os_abi_string(reason);
    os_buf_init(&b, 4096);
    assert_int_equal(os_abi_encode_call(&b, "Error(string)", &v, 1), OS_OK);
    assert_int_equal(os_abi_decode_revert(&r, b.data, b.len, NULL, 0), OS_OK);
    assert_int_equal(strlen(r.message), OS_ABI_REVERT_MSG_LEN - 1);
    assert_string_equal(r.message + OS_ABI_REVERT_MSG_LEN - 4, "...");
    os_buf_free(&b);
}

static void test_revert_panic(void **state)
{
    uint8_t d[36];
    os_abi_revert r;
    (void)state;
    tu_unhex(d, 36,
             "4e487b71"
             "0000000000000000000000000000000000000000000000000000000000000011");
    assert_int_equal(os_abi_decode_revert(&r, d, 36, NULL, 0), OS_OK);
    assert_int_equal(r.kind, OS_ABI_REVERT_PANIC);
    assert_int_equal(r.panic_code, 0x11);
    assert_string_equal(r.message, "panic 0x11: arithmetic overflow or underflow");
    d[35] = 0x12;
    assert_int_equal(os_abi_decode_revert(&r, d, 36, NULL, 0), OS_OK);
    assert_string_equal(r.message, "panic 0x12: division or modulo by zero");
    assert_int_equal(os_abi_decode_revert(&r, d, 20, NULL, 0), OS_ERR_INVALID);
}

static void test_revert_custom(void **state)
{
    static const char *const table[] = {
        "NotThisOne(uint256)",
        "ChannelClosed(bytes32,uint64)",
        "Unauthorized(address,string)",
    };
    uint8_t d1[68], d2[132];
    os_abi_revert r;
    (void)state;
    tu_unhex(d1, 68,
             "d2b1fb58"
             "0101010101010101010101010101010101010101010101010101010101010101"
             "0000000000000000000000000000000000000000000000000000000000000063");
    tu_unhex(d2, 132,
             "a35b150b"
             "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"
             "0000000000000000000000000000000000000000000000000000000000000040"
             "000000000000000000000000000000000000000000000000000000000000000d"
             "6e6f742074686520706179657200000000000000000000000000000000000000");
    assert_int_equal(os_abi_decode_revert(&r, d1, 68, table, 3), OS_OK);
    assert_int_equal(r.kind, OS_ABI_REVERT_CUSTOM);
    assert_int_equal(r.custom_index, 1);
    assert_string_equal(
        r.message,
        "ChannelClosed(0x0101010101010101010101010101010101010101010101010101010101010101, 99)");
    assert_int_equal(os_abi_decode_revert(&r, d2, 132, table, 3), OS_OK);
    assert_int_equal(r.custom_index, 2);
    assert_string_equal(
        r.message, "Unauthorized(0x70997970C51812dc3A010C7d01b50e0d17dc79C8, \"not the payer\")");
    /* without the table it is unknown, and says which selector */
    assert_int_equal(os_abi_decode_revert(&r, d1, 68, NULL, 0), OS_OK);
    assert_int_equal(r.kind, OS_ABI_REVERT_UNKNOWN);
    assert_string_equal(r.message, "unknown error 0xd2b1fb58 (68 bytes)");
    /* known selector, wrong shape */
    assert_int_equal(os_abi_decode_revert(&r, d1, 40, table, 3), OS_ERR_INVALID);
    assert_int_equal(r.kind, OS_ABI_REVERT_CUSTOM);
}

static void test_event_log(void **state)
{
    static const char ev[] = "Note(address indexed,string indexed,uint256,string)";
    uint8_t topics[3][32], topic0[32], addr[20], tag[32];
    uint8_t *data;
    size_t len;
    os_abi_value out[4];
    uint64_t amount;
    (void)state;
    tu_unhex(topics[0], 32, "9925e912ff6f0256c91b70f46e4b625c4539cbe09f1317db5c179802778ae782");
    tu_unhex(topics[1], 32, "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8");
    tu_unhex(topics[2], 32, "1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8");
    data = unhex_alloc("0000000000000000000000000000000000000000000000000000000000003039"
                       "0000000000000000000000000000000000000000000000000000000000000040"
                       "0000000000000000000000000000000000000000000000000000000000000009"
                       "736f6d6520746578740000000000000000000000000000000000000000000000",
                       &len);
    assert_int_equal(os_abi_event_topic(topic0, ev), OS_OK);
    assert_memory_equal(topic0, topics[0], 32);
    assert_int_equal(
        os_abi_event_topic(topic0, "Transfer(address indexed,address indexed,uint256)"), OS_OK);
    tu_assert_hex(topic0, 32, "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

    assert_int_equal(os_abi_decode_log(out, 4, ev, (const uint8_t(*)[32])topics, 3, data, len),
                     OS_OK);
    tu_unhex(addr, 20, "70997970c51812dc3a010c7d01b50e0d17dc79c8");
    assert_int_equal(out[0].kind, OS_ABI_ADDRESS);
    assert_memory_equal(out[0].u.address, addr, 20);
    /* indexed string: only its hash, keccak256("hello") */
    os_keccak256(tag, "hello", 5);
    assert_int_equal(out[1].kind, OS_ABI_FIXED_BYTES);
    assert_memory_equal(out[1].u.fixed, tag, 32);
    assert_int_equal(os_u256_to_u64(&amount, &out[2].u.uint), OS_OK);
    assert_int_equal(amount, 12345);
    assert_int_equal(out[3].u.bytes.len, 9);
    assert_memory_equal(out[3].u.bytes.p, "some text", 9);

    /* wrong topic count, wrong topic0, dirty indexed address */
    assert_int_equal(os_abi_decode_log(out, 4, ev, (const uint8_t(*)[32])topics, 2, data, len),
                     OS_ERR_INVALID);
    topics[0][0] ^= 1;
    assert_int_equal(os_abi_decode_log(out, 4, ev, (const uint8_t(*)[32])topics, 3, data, len),
                     OS_ERR_INVALID);
    topics[0][0] ^= 1;
    topics[1][0] = 1;
    assert_int_equal(os_abi_decode_log(out, 4, ev, (const uint8_t(*)[32])topics, 3, data, len),
                     OS_ERR_INVALID);
    free(data);
}

/* Every pointer a decode returns lies inside the data it was given. */
static void check_inside(const os_abi_value *v, const uint8_t *d, size_t len)
{
    if (v->kind == OS_ABI_BYTES || v->kind == OS_ABI_STRING) {
        assert_true(v->u.bytes.p >= d && v->u.bytes.len <= len &&
                    (size_t)(v->u.bytes.p - d) <= len - v->u.bytes.len);
    } else if (v->kind == OS_ABI_TUPLE || v->kind == OS_ABI_ARRAY) {
        for (size_t i = 0; i < v->u.list.n; i++)
            check_inside(&v->u.list.items[i], d, len);
    }
}

/* Mutated encodings of the spec's g() and the tuple vector: decoding never reads out of bounds
 * (the sanitizer build checks) and what it accepts stays inside the data. */
static void test_decode_mutations(void **state)
{
    static const struct {
        const char *types, *hex;
    } seeds[] = {
        {"(uint256[][],string[])",
         "0000000000000000000000000000000000000000000000000000000000000040"
         "0000000000000000000000000000000000000000000000000000000000000140"
         "0000000000000000000000000000000000000000000000000000000000000002"
         "0000000000000000000000000000000000000000000000000000000000000040"
         "00000000000000000000000000000000000000000000000000000000000000a0"
         "0000000000000000000000000000000000000000000000000000000000000002"
         "0000000000000000000000000000000000000000000000000000000000000001"
         "0000000000000000000000000000000000000000000000000000000000000002"
         "0000000000000000000000000000000000000000000000000000000000000001"
         "0000000000000000000000000000000000000000000000000000000000000003"
         "0000000000000000000000000000000000000000000000000000000000000003"
         "0000000000000000000000000000000000000000000000000000000000000060"
         "00000000000000000000000000000000000000000000000000000000000000a0"
         "00000000000000000000000000000000000000000000000000000000000000e0"
         "0000000000000000000000000000000000000000000000000000000000000003"
         "6f6e650000000000000000000000000000000000000000000000000000000000"
         "0000000000000000000000000000000000000000000000000000000000000003"
         "74776f0000000000000000000000000000000000000000000000000000000000"
         "0000000000000000000000000000000000000000000000000000000000000005"
         "7468726565000000000000000000000000000000000000000000000000000000"},
        {"((uint64,string,address),bool,(bytes32,uint128)[])", tup_hex + 8},
    };
    uint64_t x = 0x2545f4914f6cdd1du;
    size_t accepted = 0, rejected = 0;
    (void)state;
    for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
        size_t n;
        uint8_t *base = unhex_alloc(seeds[k].hex, &n);
        uint8_t *in = malloc(n);
        os_abi_value out[32];
        assert_non_null(in);
        for (int round = 0; round < 5000; round++) {
            size_t len = n;
            memcpy(in, base, n);
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* mostly hit the words that are offsets and lengths: their low bytes */
            in[((x >> 8) % (n / 32)) * 32 + 24 + (x >> 40) % 8] = (uint8_t)(x >> 48);
            if (x % 5 == 0)
                len -= (x >> 16) % 64;
            if (os_abi_decode(out, 32, seeds[k].types, in, len) == OS_OK) {
                accepted++;
                for (int i = 0; i < 3 && (k == 1 || i < 2); i++)
                    check_inside(&out[i], in, len);
            } else {
                rejected++;
            }
        }
        free(in);
        free(base);
    }
    assert_true(accepted > 0 && rejected > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_bad_signatures),
        cmocka_unit_test(test_spec_baz_sam),
        cmocka_unit_test(test_spec_f_g),
        cmocka_unit_test(test_tuples),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_decode_get_channel),
        cmocka_unit_test(test_decode_rejects_dynamic),
        cmocka_unit_test(test_revert_error_string),
        cmocka_unit_test(test_revert_long_reason_truncated),
        cmocka_unit_test(test_revert_panic),
        cmocka_unit_test(test_revert_custom),
        cmocka_unit_test(test_event_log),
        cmocka_unit_test(test_decode_mutations),
    };
    return cmocka_run_group_tests_name("abi", tests, tu_init, NULL);
}
