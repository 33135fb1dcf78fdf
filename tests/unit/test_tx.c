/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EIP-1559 transactions against ethers 6.17. Each vector was produced by signing with anvil's
 * well-known account 0 key (RFC 6979 makes the signature deterministic), with
 *   node -e 'const {ethers}=require("./tools/node_modules/ethers");
 *     const w=new
 * ethers.Wallet("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"); const
 * tx=ethers.Transaction.from({type:2,chainId:8453,nonce:7,maxPriorityFeePerGas:1000000000n,
 *       maxFeePerGas:3000000000n,gasLimit:21000n,to:"0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
 *       value:10n**18n,data:"0x"});
 *     w.signTransaction(tx).then(r=>console.log(tx.unsignedHash, r, ethers.keccak256(r)))'
 * and likewise for the creation and the uint256-value vectors below. The contract-creation
 * addresses 0x5FbDB2… and 0xe7f172… are the ones every anvil/hardhat user sees for the first two
 * deployments of account 0.
 */
#include "testutil.h"

#include <stdlib.h>

#include "openseed/secp.h"
#include "openseed/tx.h"

static const char key0[] = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
static const char addr0[] = "f39fd6e51aad88f6f4ce6ab8827279cfffb92266";

typedef struct vec {
    os_tx tx;
    const char *to, *value, *data;
    const char *sighash, *raw, *hash;
} vec;

static vec vectors[] = {
    {.tx = {.chain_id = 8453,
            .nonce = 7,
            .max_priority_fee_per_gas = 1000000000,
            .max_fee_per_gas = 3000000000,
            .gas_limit = 21000},
     .to = "70997970c51812dc3a010c7d01b50e0d17dc79c8",
     .value = "0000000000000000000000000000000000000000000000000de0b6b3a7640000",
     .data = "",
     .sighash = "cccb493162ec32ce6eb58150042bd486851d9d0a3fcfb1cebab3ebee87f715f9",
     .raw = "02f87482210507843b9aca0084b2d05e008252089470997970c51812dc3a010c7d01b50e0d17dc79c888"
            "0de0b6b3a764000080c080a0f43c1d09952c42b6e539fd7839dbab9cf86964e6cab88014c2597daf31de"
            "a867a07154fec019213232976509991e65f78c88145eee22b39e8aaf418ac22c3d403d",
     .hash = "89bdbc2e164c92b703d32e1273aa8175ab48e46f9bf13ab51f4017a04aa004ec"},
    /* contract creation: no "to", zero fees, yParity 1 */
    {.tx = {.chain_id = 1, .nonce = 0, .gas_limit = 100000},
     .to = NULL,
     .value = "0000000000000000000000000000000000000000000000000000000000000000",
     .data = "6080604052",
     .sighash = "b458dc7c626ea620970347880af964afbf167e099001fe116e49c071728ebf60",
     .raw = "02f85401808080830186a08080856080604052c001a0288062e3f9024cfd93136cf140a1b2363d71a721"
            "30b0f29e94951153c5637336a05dcd9bb46ba61567330509a8844016b95bd0d9202dedd68056698db8eb"
            "4e947f",
     .hash = "2a7fb867aa58ebc2f956b423bd012781dd63ed5fd4a12b9f1e8eadb75ab97a8b"},
    /* a uint256 value above 2^255, a maximal uint64 fee, ERC-20 transfer calldata */
    {.tx = {.chain_id = 31337,
            .nonce = 300,
            .max_priority_fee_per_gas = 1,
            .max_fee_per_gas = UINT64_MAX,
            .gas_limit = 60000},
     .to = "3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
     .value = "8000000000000000000000000000000000000000000000000000000000000005",
     .data = "a9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8000000000000"
             "00000000000000000000000000000000000000000000000f4240",
     .sighash = "5d61cea4baf390ba37d7591214527a4eed6624bb398b4a5c022060fc9afec096",
     .raw = "02f8d3827a6982012c0188ffffffffffffffff82ea60943c44cdddb6a900fa2b585dd299e03d12fa4293bc"
            "a08000000000000000000000000000000000000000000000000000000000000005b844a9059cbb000000"
            "00000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8000000000000000000000000000"
            "00000000000000000000000000000000f4240c001a0fe28782cef4773f62c6995f0707db9a776130e1f21"
            "1612c48aa5d9dbb3306c64a04b7c8669245ad71fc0718d0dcbb7ef6938b229f493b1ffe4688c694d67072"
            "9b2",
     .hash = "04de7134002af6d276109d09c7f6bddb322b01f9f035e7b870335d234188090d"},
};

static uint8_t data_store[3][128];

static void fill(vec *v, uint8_t *data)
{
    size_t n;
    if (v->to != NULL) {
        v->tx.has_to = true;
        tu_unhex(v->tx.to, 20, v->to);
    }
    tu_unhex(v->tx.value.be, 32, v->value);
    assert_int_equal(os_hex_decode(data, 128, &n, v->data, strlen(v->data)), OS_OK);
    v->tx.data = n ? data : NULL;
    v->tx.data_len = n;
}

/* Fills every vector's binary fields from its hex; idempotent, so each test can call it. */
static void fill_all(void)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        fill(&vectors[i], data_store[i]);
}

static void test_sign_matches_ethers(void **state)
{
    uint8_t priv[32], h[32];
    os_buf raw;
    (void)state;
    tu_unhex(priv, 32, key0);
    os_buf_init(&raw, OS_TX_MAX_RAW);
    fill_all();
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        assert_int_equal(os_tx_signing_hash(h, &vectors[i].tx), OS_OK);
        tu_assert_hex(h, 32, vectors[i].sighash);
        os_buf_reset(&raw);
        assert_int_equal(os_tx_sign(&raw, h, &vectors[i].tx, priv), OS_OK);
        tu_assert_hex(raw.data, raw.len, vectors[i].raw);
        tu_assert_hex(h, 32, vectors[i].hash);
    }
    os_buf_free(&raw);
}

static void test_decode_and_recover(void **state)
{
    uint8_t raw[256], from[20], want_from[20], hash[32], back_raw[256];
    size_t n;
    os_tx tx;
    os_tx_sig sig;
    os_buf again;
    (void)state;
    tu_unhex(want_from, 20, addr0);
    fill_all();
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const vec *v = &vectors[i];
        assert_int_equal(os_hex_decode(raw, sizeof(raw), &n, v->raw, strlen(v->raw)), OS_OK);
        assert_int_equal(os_tx_decode(&tx, &sig, from, hash, raw, n), OS_OK);
        assert_memory_equal(from, want_from, 20);
        tu_assert_hex(hash, 32, v->hash);
        assert_int_equal(tx.chain_id, v->tx.chain_id);
        assert_int_equal(tx.nonce, v->tx.nonce);
        assert_true(tx.max_fee_per_gas == v->tx.max_fee_per_gas);
        assert_int_equal(tx.has_to, v->to != NULL);
        assert_int_equal(tx.data_len, strlen(v->data) / 2);
        tu_assert_hex(tx.value.be, 32, v->value);
        /* re-encoding the parsed fields gives the same bytes */
        os_buf_init(&again, sizeof(back_raw));
        assert_int_equal(os_tx_encode_signed(&again, &tx, &sig), OS_OK);
        assert_int_equal(again.len, n);
        assert_memory_equal(again.data, raw, n);
        os_buf_free(&again);
    }
}

static void test_decode_rejects(void **state)
{
    const vec *v = &vectors[0];
    uint8_t raw[256], bad[256], from[20];
    size_t n;
    os_tx tx;
    (void)state;
    assert_int_equal(os_hex_decode(raw, sizeof(raw), &n, v->raw, strlen(v->raw)), OS_OK);

    assert_int_equal(os_tx_decode(&tx, NULL, from, NULL, raw, n - 1), OS_ERR_INVALID); /* cut */
    memcpy(bad, raw, n);
    bad[n] = 0;
    assert_int_equal(os_tx_decode(&tx, NULL, from, NULL, bad, n + 1),
                     OS_ERR_INVALID); /* trailing */
    bad[0] = 0x01;                    /* EIP-2930 */
    assert_int_equal(os_tx_decode(&tx, NULL, from, NULL, bad, n), OS_ERR_UNSUPPORTED);
    bad[0] = 0xf8; /* legacy */
    assert_int_equal(os_tx_decode(&tx, NULL, from, NULL, bad, n), OS_ERR_UNSUPPORTED);
    /* yParity 2: the byte before the r header (a0) is the 0x80 of yParity 0 */
    memcpy(bad, raw, n);
    for (size_t i = 0; i + 1 < n; i++)
        if (bad[i] == 0xc0 && bad[i + 1] == 0x80) {
            bad[i + 1] = 0x02;
            break;
        }
    assert_int_equal(os_tx_decode(&tx, NULL, from, NULL, bad, n), OS_ERR_INVALID);
    /* a flipped bit in the signed fields recovers to some other address (or none) */
    memcpy(bad, raw, n);
    bad[5] ^= 1; /* nonce 7 -> 6 */
    {
        os_err err = os_tx_decode(&tx, NULL, from, NULL, bad, n);
        uint8_t want[20];
        tu_unhex(want, 20, addr0);
        assert_true(err == OS_ERR_CRYPTO || (err == OS_OK && memcmp(from, want, 20) != 0));
    }
    /* high-s: s' = n - s is the same signature's malleable twin, refused as EIP-2 says */
    {
        static const uint8_t order[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
                                          0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b,
                                          0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
        os_tx_sig sig;
        os_buf b;
        int borrow = 0;
        assert_int_equal(os_tx_decode(&tx, &sig, from, NULL, raw, n), OS_OK);
        for (int i = 31; i >= 0; i--) {
            int d = order[i] - sig.s[i] - borrow;
            borrow = d < 0;
            sig.s[i] = (uint8_t)(d + (borrow ? 256 : 0));
        }
        sig.y_parity ^= 1;
        os_buf_init(&b, 256);
        assert_int_equal(os_tx_encode_signed(&b, &tx, &sig), OS_OK);
        assert_int_equal(os_tx_decode(&tx, NULL, from, NULL, b.data, b.len), OS_ERR_CRYPTO);
        os_buf_free(&b);
    }
}

static void test_create_address(void **state)
{
    uint8_t sender[20], a[20];
    (void)state;
    tu_unhex(sender, 20, addr0);
    assert_int_equal(os_tx_create_address(a, sender, 0), OS_OK);
    tu_assert_hex(a, 20, "5fbdb2315678afecb367f032d93f642f64180aa3");
    assert_int_equal(os_tx_create_address(a, sender, 1), OS_OK);
    tu_assert_hex(a, 20, "e7f1725e7734ce288f8367e1bb143e90bb3f0512");
}

static void test_data_cap(void **state)
{
    os_tx tx = {.chain_id = 1, .gas_limit = 21000};
    uint8_t h[32];
    uint8_t *big = calloc(1, OS_TX_MAX_DATA + 1);
    (void)state;
    assert_non_null(big);
    tx.data = big;
    tx.data_len = OS_TX_MAX_DATA + 1;
    assert_int_equal(os_tx_signing_hash(h, &tx), OS_ERR_TOOBIG);
    tx.data_len = OS_TX_MAX_DATA;
    assert_int_equal(os_tx_signing_hash(h, &tx), OS_OK);
    tx.data = NULL;
    tx.data_len = 1;
    assert_int_equal(os_tx_signing_hash(h, &tx), OS_ERR_INVALID);
    free(big);
}

static void test_tip_above_cap_refused(void **state)
{
    os_tx tx = {
        .chain_id = 1, .gas_limit = 21000, .max_priority_fee_per_gas = 2, .max_fee_per_gas = 1};
    uint8_t priv[32], h[32];
    os_buf raw;
    (void)state;
    tu_unhex(priv, 32, key0);
    os_buf_init(&raw, OS_TX_MAX_RAW);
    assert_int_equal(os_tx_sign(&raw, h, &tx, priv), OS_ERR_INVALID);
    assert_int_equal(raw.len, 0);
    tx.max_fee_per_gas = 2;
    assert_int_equal(os_tx_sign(&raw, h, &tx, priv), OS_OK);
    os_buf_free(&raw);
}

/* Mutated raw transactions: parsing never reads out of bounds (the sanitizer build checks) and
 * anything accepted re-encodes to the same bytes. */
static void test_decode_mutations(void **state)
{
    const vec *v = &vectors[2];
    uint8_t raw[256], in[256];
    uint64_t x = 0xd1b54a32d192ed03u;
    size_t n, accepted = 0;
    os_buf again;
    (void)state;
    assert_int_equal(os_hex_decode(raw, sizeof(raw), &n, v->raw, strlen(v->raw)), OS_OK);
    os_buf_init(&again, sizeof(raw));
    for (int round = 0; round < 20000; round++) {
        os_tx tx;
        os_tx_sig sig;
        size_t len = n;
        memcpy(in, raw, n);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        in[(x >> 8) % n] = (uint8_t)(x >> 32);
        if (x % 7 == 0)
            len -= (x >> 16) % 16;
        /* recovery is the slow part and not what is under test here */
        if (os_tx_decode(&tx, &sig, NULL, NULL, in, len) != OS_OK)
            continue;
        accepted++;
        os_buf_reset(&again);
        assert_int_equal(os_tx_encode_signed(&again, &tx, &sig), OS_OK);
        assert_int_equal(again.len, len);
        assert_memory_equal(again.data, in, len);
    }
    assert_true(accepted > 100);
    os_buf_free(&again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_matches_ethers),
        cmocka_unit_test(test_decode_and_recover),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_create_address),
        cmocka_unit_test(test_data_cap),
        cmocka_unit_test(test_tip_above_cap_refused),
        cmocka_unit_test(test_decode_mutations),
    };
    return cmocka_run_group_tests_name("tx", tests, tu_init, NULL);
}
