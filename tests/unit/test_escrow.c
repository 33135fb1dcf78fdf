/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Known answers for the escrow bindings (escrow.h). Every V_* vector below is the output of ethers
 * 6.17, an independent implementation, from the committed ABIs: Interface.encodeFunctionData and
 * encodeEventLog for calldata and logs, TypedDataEncoder for the voucher and
 * ReceiveWithAuthorization digests, AbiCoder + keccak256 for the channel id and the authorization
 * nonce, SigningKey.sign (RFC 6979, like ours, so our signatures must equal ethers' byte for byte).
 * Selectors, event topics and error selectors are also checked against the tables in
 * contracts/README.md. The generator (save as gen.js, run `node gen.js` from the repository root):
 *
 * const e = require(process.cwd() + '/tools/node_modules/ethers');
 * const fs = require('fs');
 * const abi = (n) => JSON.parse(fs.readFileSync(`contracts/out/${n}.json`)).abi;
 * const ch = new e.Interface(abi('OpenSeedChannels')), tu = new e.Interface(abi('TestUSDC'));
 * const k = (s) => e.keccak256(e.toUtf8Bytes(s));
 * const A = e.AbiCoder.defaultAbiCoder();
 * const chainId = 8453n;
 * const escrow = e.getAddress('0x5fc8d32690cc91d4c39d9d3abcbd16989f875707');
 * const token = '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913';
 * const payerW = new e.Wallet(
 *   '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'); // anvil 1
 * const seller = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'; // anvil 2
 * const signerW = new e.Wallet(k('openseed test channel signer'));
 * const commitment = k('commitment'), salt = k('salt'), meta = k('metadata');
 * const amount = 5000000n, max = 2n ** 64n - 1n;
 * const out = {};
 * out.signerPriv = signerW.privateKey;
 * out.signer = signerW.address;
 * out.channelId = e.keccak256(A.encode(['uint256', 'address', 'address', 'address', 'bytes32'],
 *   [chainId, escrow, payerW.address, seller, salt]));
 * out.authNonce = e.keccak256(A.encode(['bytes32', 'address', 'bytes32'],
 *   [out.channelId, signerW.address, commitment]));
 * const dom = { name: 'OpenSeedChannels', version: '1', chainId, verifyingContract: escrow };
 * const types = { SpendingAuth: [{ name: 'channelId', type: 'bytes32' },
 *   { name: 'cumulativeAmount', type: 'uint256' }, { name: 'nonce', type: 'uint64' },
 *   { name: 'metadataHash', type: 'bytes32' }] };
 * const v1 = { channelId: out.channelId, cumulativeAmount: 1234567n, nonce: 42n,
 *   metadataHash: meta };
 * const v2 = { channelId: out.channelId, cumulativeAmount: max, nonce: max,
 *   metadataHash: e.ZeroHash };
 * out.domainSep = e.TypedDataEncoder.hashDomain(dom);
 * out.v1digest = e.TypedDataEncoder.hash(dom, types, v1);
 * out.v1sig = signerW.signingKey.sign(out.v1digest).serialized;
 * out.v2digest = e.TypedDataEncoder.hash(dom, types, v2);
 * out.v2sig = signerW.signingKey.sign(out.v2digest).serialized;
 * const tdom = { name: 'USD Coin', version: '2', chainId, verifyingContract: token };
 * const rtypes = { ReceiveWithAuthorization: [{ name: 'from', type: 'address' },
 *   { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
 *   { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' },
 *   { name: 'nonce', type: 'bytes32' }] };
 * const ra = { from: payerW.address, to: escrow, value: amount, validAfter: 1700000000n,
 *   validBefore: 1700003600n, nonce: out.authNonce };
 * out.tokenDomain = e.TypedDataEncoder.hashDomain(tdom);
 * out.recvDigest = e.TypedDataEncoder.hash(tdom, rtypes, ra);
 * out.recvSig = payerW.signingKey.sign(out.recvDigest).serialized;
 * const f = (i, name, args) => i.encodeFunctionData(name, args);
 * out.open = f(ch, 'open', [seller, signerW.address, commitment, amount, salt]);
 * out.openAuth = f(ch, 'openWithAuthorization', [seller, signerW.address, commitment, amount,
 *   salt, payerW.address, ra.validAfter, ra.validBefore, out.recvSig]);
 * out.topUp = f(ch, 'topUp', [out.channelId, 250000n]);
 * out.claim = f(ch, 'claim', [out.channelId, v1.cumulativeAmount, v1.nonce, meta, out.v1sig]);
 * out.close = f(ch, 'close', [out.channelId, max, max, e.ZeroHash, out.v2sig]);
 * out.closeEmpty = f(ch, 'close', [out.channelId, 0, 0, e.ZeroHash, '0x']);
 * out.requestClose = f(ch, 'requestClose', [out.channelId]);
 * out.withdraw = f(ch, 'withdraw', [out.channelId]);
 * out.getChannel = f(ch, 'getChannel', [out.channelId]);
 * out.lastNonce = f(ch, 'lastNonce', [out.channelId]);
 * out.hashAuth = f(ch, 'hashSpendingAuth', [out.channelId, v1.cumulativeAmount, v1.nonce, meta]);
 * out.approve = f(tu, 'approve', [escrow, max]);
 * out.transfer = f(tu, 'transfer', [seller, 1n]);
 * out.balanceOf = f(tu, 'balanceOf', [payerW.address]);
 * out.mint = f(tu, 'mint', [payerW.address, 1000000000n]);
 * const ev = (name, args) => {
 *   const l = ch.encodeEventLog(name, args);
 *   return { topics: l.topics, data: l.data };
 * };
 * const id = out.channelId;
 * out.evOpened = ev('ChannelOpened', [id, payerW.address, seller, signerW.address, commitment,
 *   amount]);
 * out.evToppedUp = ev('ToppedUp', [id, 250000n, 5250000n]);
 * out.evClaimed = ev('Claimed', [id, 1234567n, 42n, meta, 1234567n, 1234567n]);
 * out.evCloseRequested = ev('CloseRequested', [id, 1700000900n]);
 * out.evClosed = ev('Closed', [id, 1234567n, 4015433n]);
 * out.evWithdrawn = ev('Withdrawn', [id, 0n, 5000000n]);
 * out.evClaimedBig = ev('Claimed', [id, 2n ** 64n, 1n, meta, 1n, 1n]);
 * out.evToppedUpBig = ev('ToppedUp', [id, 1n, 2n ** 64n]);
 * console.log(JSON.stringify(out, null, 1));
 */
#include "testutil.h"

#include "openseed/abi.h"
#include "openseed/eip712.h"
#include "openseed/escrow.h"
#include "openseed/secp.h"

#define CHAIN_ID 8453
static const char ESCROW[] = "5fc8d32690cc91d4c39d9d3abcbd16989f875707";
static const char TOKEN[] = "833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
static const char PAYER_PRIV[] = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
static const char PAYER[] = "70997970C51812dc3A010C7d01b50e0d17dc79C8";
static const char SELLER[] = "3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
/* keccak256("commitment"), keccak256("salt"), keccak256("metadata") */
static const char COMMITMENT[] = "f8096c3f3cfbadc9f3a108d2c586ccc816c0510711c8d6228aa4fa507324d30c";
static const char SALT[] = "a05e334153147e75f3f416139b5109d1179cb56fef6a4ecb4c4cbc92a7c37b70";
static const char META[] = "7a9d3a032b8ff274f09714b56ba8e5ed776ec9638ca303069bc3a3267bb22f65";

/* ---- the generator's output ---------------------------------------------------------------- */

static const char V_SIGNER_PRIV[] =
    "194f965d7770a35b4d1cb372f907ecd2620bbd4108dcc0257b593f25d73f49f5";
static const char V_SIGNER[] = "6993c5a747d63ecDEb65da1B7eF26f5Aa85a8deA";
static const char V_CHANNEL_ID[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_AUTH_NONCE[] =
    "acc93c8977ed25a50d0a26f003e51603a4381342c4a6884a638aac154ed9c785";
static const char V_DOMAIN_SEP[] =
    "ecc03c146352974c138ff2104ae5679efed8ba21e4e0883aa835703a45d89921";
static const char V_V1DIGEST[] = "281d9cc4bbc081d33926563641c4c1b339f72c400684b8a4ca8a03335fd8b08f";
static const char V_V1SIG[] =
    "ab20ad613c5742022d8e6fc745e980f65e93354cac05ce5af81e2598f76e30024eb35ebbc165d665c6e832cc"
    "9babd2d1345651670337ebaf63d6e5cfd6704ac11c";
static const char V_V2DIGEST[] = "c13bd8a2da98c10b188ce86b3c2fc02f1bb9cee871640a9f2e3977f5e4417550";
static const char V_V2SIG[] =
    "600d0b29344f2b1598ad67fa49dd88b29cc5569f26463eacf91983579f7382d970527e3897fee9307b4bb945"
    "dc44d3a44649f80397da29d2ccd53bcc2ca59e8b1c";
static const char V_TOKEN_DOMAIN[] =
    "02fa7265e7c5d81118673727957699e4d68f74cd74b7db77da710fe8a2c7834f";
static const char V_RECV_DIGEST[] =
    "ad4e5ecb8369a7f7b154ef50b4f407ecc4fd42921721059c5c2552905671a44b";
static const char V_RECV_SIG[] =
    "2af3cc2297cca4b287f5508e3f4a268407de21266c7f32acd54bf3a28507a6277cd4986777a9ca8ca89abc17"
    "9eaa7e62308df9c5ff227ec03db78a957cac05151c";
static const char V_OPEN[] =
    "04f93d790000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc0000000000000000"
    "000000006993c5a747d63ecdeb65da1b7ef26f5aa85a8deaf8096c3f3cfbadc9f3a108d2c586ccc816c05107"
    "11c8d6228aa4fa507324d30c00000000000000000000000000000000000000000000000000000000004c4b40"
    "a05e334153147e75f3f416139b5109d1179cb56fef6a4ecb4c4cbc92a7c37b70";
static const char V_OPEN_AUTH[] =
    "629dee780000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc0000000000000000"
    "000000006993c5a747d63ecdeb65da1b7ef26f5aa85a8deaf8096c3f3cfbadc9f3a108d2c586ccc816c05107"
    "11c8d6228aa4fa507324d30c00000000000000000000000000000000000000000000000000000000004c4b40"
    "a05e334153147e75f3f416139b5109d1179cb56fef6a4ecb4c4cbc92a7c37b70000000000000000000000000"
    "70997970c51812dc3a010c7d01b50e0d17dc79c8000000000000000000000000000000000000000000000000"
    "000000006553f100000000000000000000000000000000000000000000000000000000006553ff1000000000"
    "0000000000000000000000000000000000000000000000000000012000000000000000000000000000000000"
    "000000000000000000000000000000412af3cc2297cca4b287f5508e3f4a268407de21266c7f32acd54bf3a2"
    "8507a6277cd4986777a9ca8ca89abc179eaa7e62308df9c5ff227ec03db78a957cac05151c00000000000000"
    "000000000000000000000000000000000000000000000000";
static const char V_TOP_UP[] =
    "9f6f687ad7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea740000000000000000"
    "00000000000000000000000000000000000000000003d090";
static const char V_CLAIM[] =
    "2e0cede8d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea740000000000000000"
    "00000000000000000000000000000000000000000012d6870000000000000000000000000000000000000000"
    "00000000000000000000002a7a9d3a032b8ff274f09714b56ba8e5ed776ec9638ca303069bc3a3267bb22f65"
    "00000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000"
    "0000000000000000000000000000000000000041ab20ad613c5742022d8e6fc745e980f65e93354cac05ce5a"
    "f81e2598f76e30024eb35ebbc165d665c6e832cc9babd2d1345651670337ebaf63d6e5cfd6704ac11c000000"
    "00000000000000000000000000000000000000000000000000000000";
static const char V_CLOSE[] =
    "1952c6add7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea740000000000000000"
    "00000000000000000000000000000000ffffffffffffffff0000000000000000000000000000000000000000"
    "00000000ffffffffffffffff0000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000"
    "0000000000000000000000000000000000000041600d0b29344f2b1598ad67fa49dd88b29cc5569f26463eac"
    "f91983579f7382d970527e3897fee9307b4bb945dc44d3a44649f80397da29d2ccd53bcc2ca59e8b1c000000"
    "00000000000000000000000000000000000000000000000000000000";
static const char V_CLOSE_EMPTY[] =
    "1952c6add7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea740000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000"
    "0000000000000000000000000000000000000000";
static const char V_REQUEST_CLOSE[] =
    "6bf5fe6fd7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_WITHDRAW[] =
    "8e19899ed7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_GET_CHANNEL[] =
    "831c2b82d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_LAST_NONCE[] =
    "ca7db830d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_HASH_AUTH[] =
    "fc3622cad7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea740000000000000000"
    "00000000000000000000000000000000000000000012d6870000000000000000000000000000000000000000"
    "00000000000000000000002a7a9d3a032b8ff274f09714b56ba8e5ed776ec9638ca303069bc3a3267bb22f65";
static const char V_APPROVE[] =
    "095ea7b30000000000000000000000005fc8d32690cc91d4c39d9d3abcbd16989f8757070000000000000000"
    "00000000000000000000000000000000ffffffffffffffff";
static const char V_TRANSFER[] =
    "a9059cbb0000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc0000000000000000"
    "000000000000000000000000000000000000000000000001";
static const char V_BALANCE_OF[] =
    "70a0823100000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8";
static const char V_MINT[] =
    "40c10f1900000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c80000000000000000"
    "00000000000000000000000000000000000000003b9aca00";
static const char V_EV_OPENED_DATA[] =
    "0000000000000000000000006993c5a747d63ecdeb65da1b7ef26f5aa85a8deaf8096c3f3cfbadc9f3a108d2"
    "c586ccc816c0510711c8d6228aa4fa507324d30c000000000000000000000000000000000000000000000000"
    "00000000004c4b40";
static const char V_EV_OPENED_T0[] =
    "76822cb7c392d7e23b5653ad447f51e85bdb68b2a00125a7dbd4fd54554ce52e";
static const char V_EV_OPENED_T1[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_EV_OPENED_T2[] =
    "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8";
static const char V_EV_OPENED_T3[] =
    "0000000000000000000000003c44cdddb6a900fa2b585dd299e03d12fa4293bc";
static const char V_EV_TOPPED_UP_DATA[] =
    "000000000000000000000000000000000000000000000000000000000003d090000000000000000000000000"
    "0000000000000000000000000000000000501bd0";
static const char V_EV_TOPPED_UP_T0[] =
    "618ca7dc15aafc2ad86ffeb49cee3537543216259d1e509e00e9c9c0b0a57a98";
static const char V_EV_TOPPED_UP_T1[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_EV_CLAIMED_DATA[] =
    "000000000000000000000000000000000000000000000000000000000012d687000000000000000000000000"
    "000000000000000000000000000000000000002a7a9d3a032b8ff274f09714b56ba8e5ed776ec9638ca30306"
    "9bc3a3267bb22f65000000000000000000000000000000000000000000000000000000000012d68700000000"
    "0000000000000000000000000000000000000000000000000012d687";
static const char V_EV_CLAIMED_T0[] =
    "d58283ee1a7e56e7d13845e090ad19f07f96b73524c1a699b5bf42dc2cbe0725";
static const char V_EV_CLAIMED_T1[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_EV_CLOSE_REQUESTED_DATA[] =
    "000000000000000000000000000000000000000000000000000000006553f484";
static const char V_EV_CLOSE_REQUESTED_T0[] =
    "9fd5c1db29e4aeb4f968f62fc18602aad1cca0f99be64b456a6c4f4052d63b14";
static const char V_EV_CLOSE_REQUESTED_T1[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_EV_CLOSED_DATA[] =
    "000000000000000000000000000000000000000000000000000000000012d687000000000000000000000000"
    "00000000000000000000000000000000003d4549";
static const char V_EV_CLOSED_T0[] =
    "235168593e6cd0e7c04fc0a67c602a1c900c24b12bf5e9f3c62e22f0ca9c29a8";
static const char V_EV_CLOSED_T1[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_EV_WITHDRAWN_DATA[] =
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000004c4b40";
static const char V_EV_WITHDRAWN_T0[] =
    "b92806c87db4f76c6aefc5fd3517b07d661503ff060092ca478e925d8fa9cc56";
static const char V_EV_WITHDRAWN_T1[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_EV_CLAIMED_BIG_DATA[] =
    "0000000000000000000000000000000000000000000000010000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000017a9d3a032b8ff274f09714b56ba8e5ed776ec9638ca30306"
    "9bc3a3267bb22f65000000000000000000000000000000000000000000000000000000000000000100000000"
    "00000000000000000000000000000000000000000000000000000001";
static const char V_EV_CLAIMED_BIG_T0[] =
    "d58283ee1a7e56e7d13845e090ad19f07f96b73524c1a699b5bf42dc2cbe0725";
static const char V_EV_CLAIMED_BIG_T1[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";
static const char V_EV_TOPPED_UP_BIG_DATA[] =
    "0000000000000000000000000000000000000000000000000000000000000001000000000000000000000000"
    "0000000000000000000000010000000000000000";
static const char V_EV_TOPPED_UP_BIG_T0[] =
    "618ca7dc15aafc2ad86ffeb49cee3537543216259d1e509e00e9c9c0b0a57a98";
static const char V_EV_TOPPED_UP_BIG_T1[] =
    "d7c76225cf4760ec1385113b6cf619851f4fa4495ab23c5948351ed1c902ea74";

/* ---- fixtures ------------------------------------------------------------------------------ */

typedef struct fixture {
    uint8_t escrow[20], token[20], payer[20], seller[20], signer[20];
    uint8_t payer_priv[32], signer_priv[32];
    uint8_t commitment[32], salt[32], meta[32], channel_id[32];
    os_voucher v1, v2;
    os_escrow_open_args open;
} fixture;

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof(*f));
    tu_unhex(f->escrow, 20, ESCROW);
    tu_unhex(f->token, 20, TOKEN);
    tu_unhex(f->payer, 20, PAYER);
    tu_unhex(f->seller, 20, SELLER);
    tu_unhex(f->signer, 20, V_SIGNER);
    tu_unhex(f->payer_priv, 32, PAYER_PRIV);
    tu_unhex(f->signer_priv, 32, V_SIGNER_PRIV);
    tu_unhex(f->commitment, 32, COMMITMENT);
    tu_unhex(f->salt, 32, SALT);
    tu_unhex(f->meta, 32, META);
    tu_unhex(f->channel_id, 32, V_CHANNEL_ID);
    memcpy(f->v1.channel_id, f->channel_id, 32);
    f->v1.cumulative_amount = 1234567;
    f->v1.nonce = 42;
    memcpy(f->v1.metadata_hash, f->meta, 32);
    tu_unhex(f->v1.sig, 65, V_V1SIG);
    memcpy(f->v2.channel_id, f->channel_id, 32);
    f->v2.cumulative_amount = UINT64_MAX;
    f->v2.nonce = UINT64_MAX;
    tu_unhex(f->v2.sig, 65, V_V2SIG);
    memcpy(f->open.seller, f->seller, 20);
    memcpy(f->open.signer, f->signer, 20);
    memcpy(f->open.commitment, f->commitment, 32);
    f->open.amount = 5000000;
    memcpy(f->open.salt, f->salt, 32);
}

/* Checks out's bytes against want and its selector against the README's, then empties out. */
static void check_call(os_buf *out, const char *want, const char *readme_selector)
{
    tu_assert_hex(out->data, out->len, want);
    tu_assert_hex(out->data, 4, readme_selector);
    os_buf_reset(out);
}

/* ---- calldata ---------------------------------------------------------------------------- */

static void test_escrow_calldata(void **state)
{
    fixture f;
    os_escrow_open_auth auth;
    os_buf b;
    (void)state;
    fixture_init(&f);
    os_buf_init(&b, 4096);

    assert_int_equal(os_escrow_encode_open(&b, &f.open), OS_OK);
    check_call(&b, V_OPEN, "04f93d79");
    memset(&auth, 0, sizeof(auth));
    memcpy(auth.from, f.payer, 20);
    auth.valid_after = 1700000000;
    auth.valid_before = 1700003600;
    tu_unhex(auth.sig, 65, V_RECV_SIG);
    assert_int_equal(os_escrow_encode_open_with_auth(&b, &f.open, &auth), OS_OK);
    check_call(&b, V_OPEN_AUTH, "629dee78");
    assert_int_equal(os_escrow_encode_top_up(&b, f.channel_id, 250000), OS_OK);
    check_call(&b, V_TOP_UP, "9f6f687a");
    assert_int_equal(os_escrow_encode_claim(&b, &f.v1), OS_OK);
    check_call(&b, V_CLAIM, "2e0cede8");
    assert_int_equal(os_escrow_encode_close(&b, &f.v2), OS_OK); /* uint64 maxima in both words */
    check_call(&b, V_CLOSE, "1952c6ad");
    assert_int_equal(os_escrow_encode_close_empty(&b, f.channel_id), OS_OK);
    check_call(&b, V_CLOSE_EMPTY, "1952c6ad");
    assert_int_equal(os_escrow_encode_request_close(&b, f.channel_id), OS_OK);
    check_call(&b, V_REQUEST_CLOSE, "6bf5fe6f");
    assert_int_equal(os_escrow_encode_withdraw(&b, f.channel_id), OS_OK);
    check_call(&b, V_WITHDRAW, "8e19899e");
    assert_int_equal(os_escrow_encode_get_channel(&b, f.channel_id), OS_OK);
    check_call(&b, V_GET_CHANNEL, "831c2b82");
    assert_int_equal(os_escrow_encode_last_nonce(&b, f.channel_id), OS_OK);
    check_call(&b, V_LAST_NONCE, "ca7db830");
    assert_int_equal(os_escrow_encode_hash_spending_auth(&b, &f.v1), OS_OK);
    check_call(&b, V_HASH_AUTH, "fc3622ca");
    /* ERC-20 selectors: EIP-20 itself (approve 0x095ea7b3, transfer 0xa9059cbb, balanceOf
     * 0x70a08231) and TestUSDC's methodIdentifiers (mint 0x40c10f19) */
    assert_int_equal(os_erc20_encode_approve(&b, f.escrow, UINT64_MAX), OS_OK);
    check_call(&b, V_APPROVE, "095ea7b3");
    assert_int_equal(os_erc20_encode_transfer(&b, f.seller, 1), OS_OK);
    check_call(&b, V_TRANSFER, "a9059cbb");
    assert_int_equal(os_erc20_encode_balance_of(&b, f.payer), OS_OK);
    check_call(&b, V_BALANCE_OF, "70a08231");
    assert_int_equal(os_erc20_encode_mint(&b, f.payer, 1000000000), OS_OK);
    check_call(&b, V_MINT, "40c10f19");

    /* appends: two calls back to back are the two encodings */
    assert_int_equal(os_escrow_encode_request_close(&b, f.channel_id), OS_OK);
    assert_int_equal(os_escrow_encode_withdraw(&b, f.channel_id), OS_OK);
    assert_int_equal(b.len, 72);
    tu_assert_hex(b.data + 36, 36, V_WITHDRAW);
    os_buf_free(&b);
}

static void test_escrow_calldata_refusals(void **state)
{
    fixture f;
    os_buf b, small;
    (void)state;
    fixture_init(&f);
    os_buf_init(&b, 4096);
    assert_int_equal(os_escrow_encode_open(&b, NULL), OS_ERR_INVALID);
    assert_int_equal(os_escrow_encode_open(NULL, &f.open), OS_ERR_INVALID);
    assert_int_equal(os_escrow_encode_open_with_auth(&b, &f.open, NULL), OS_ERR_INVALID);
    assert_int_equal(os_escrow_encode_claim(&b, NULL), OS_ERR_INVALID);
    assert_int_equal(os_escrow_encode_close_empty(&b, NULL), OS_ERR_INVALID);
    assert_int_equal(os_escrow_encode_withdraw(&b, NULL), OS_ERR_INVALID);
    assert_int_equal(os_erc20_encode_approve(&b, NULL, 1), OS_ERR_INVALID);
    assert_int_equal(os_erc20_encode_balance_of(&b, NULL), OS_ERR_INVALID);
    assert_int_equal(b.len, 0);
    /* a cap below the claim's 292 bytes: refused whole, nothing half-written */
    os_buf_init(&small, 200);
    assert_int_equal(os_escrow_encode_claim(&small, &f.v1), OS_ERR_TOOBIG);
    assert_int_equal(small.len, 0);
    os_buf_free(&small);
    os_buf_free(&b);
}

/* ---- ids, digests, signatures ------------------------------------------------------------ */

static void test_escrow_channel_id_and_auth_nonce(void **state)
{
    fixture f;
    uint8_t out[32], other[32];
    (void)state;
    fixture_init(&f);
    os_escrow_channel_id(out, CHAIN_ID, f.escrow, f.payer, f.seller, f.salt);
    tu_assert_hex(out, 32, V_CHANNEL_ID);
    /* each input matters: payer and seller swapped, another chain */
    os_escrow_channel_id(other, CHAIN_ID, f.escrow, f.seller, f.payer, f.salt);
    assert_memory_not_equal(other, out, 32);
    os_escrow_channel_id(other, 1, f.escrow, f.payer, f.seller, f.salt);
    assert_memory_not_equal(other, out, 32);
    os_escrow_open_auth_nonce(out, f.channel_id, f.signer, f.commitment);
    tu_assert_hex(out, 32, V_AUTH_NONCE);
}

static void test_escrow_voucher_digest(void **state)
{
    fixture f;
    uint8_t ds[32], out[32];
    (void)state;
    fixture_init(&f);
    os_eip712_channels_domain(ds, CHAIN_ID, f.escrow);
    tu_assert_hex(ds, 32, V_DOMAIN_SEP);
    os_voucher_digest(out, &f.v1, CHAIN_ID, f.escrow);
    tu_assert_hex(out, 32, V_V1DIGEST);
    os_voucher_digest_ds(out, &f.v1, ds);
    tu_assert_hex(out, 32, V_V1DIGEST);
    os_voucher_digest(out, &f.v2, CHAIN_ID, f.escrow);
    tu_assert_hex(out, 32, V_V2DIGEST);
    /* the signature is not part of what is signed */
    memset(f.v1.sig, 0x5a, 65);
    os_voucher_digest(out, &f.v1, CHAIN_ID, f.escrow);
    tu_assert_hex(out, 32, V_V1DIGEST);
}

static void test_escrow_voucher_sign_matches_ethers(void **state)
{
    fixture f;
    os_voucher v;
    uint8_t ds[32];
    (void)state;
    fixture_init(&f);
    v = f.v1;
    memset(v.sig, 0, 65);
    assert_int_equal(os_voucher_sign(&v, f.signer_priv, CHAIN_ID, f.escrow), OS_OK);
    tu_assert_hex(v.sig, 65, V_V1SIG);
    v = f.v2;
    memset(v.sig, 0, 65);
    os_eip712_channels_domain(ds, CHAIN_ID, f.escrow);
    assert_int_equal(os_voucher_sign_ds(&v, f.signer_priv, ds), OS_OK);
    tu_assert_hex(v.sig, 65, V_V2SIG);
    /* an invalid key (zero) is refused and leaves no signature */
    memset(f.signer_priv, 0, 32);
    assert_int_not_equal(os_voucher_sign(&v, f.signer_priv, CHAIN_ID, f.escrow), OS_OK);
    for (int i = 0; i < 65; i++)
        assert_int_equal(v.sig[i], 0);
}

/* s' = n - s: the high-s twin of a signature, which plain ecrecover also accepts. */
static void high_s_twin(uint8_t sig[65])
{
    static const char n_hex[] = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
    uint8_t n[32];
    int borrow = 0;
    tu_unhex(n, 32, n_hex);
    for (int i = 31; i >= 0; i--) {
        int d = n[i] - sig[32 + i] - borrow;
        borrow = d < 0;
        sig[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
    sig[64] = sig[64] == 27 ? 28 : 27;
}

static void test_escrow_voucher_verify(void **state)
{
    fixture f;
    os_voucher v;
    uint8_t other_escrow[20], ds[32], digest[32], who[20];
    (void)state;
    fixture_init(&f);
    memcpy(other_escrow, f.escrow, 20);
    other_escrow[19] ^= 1;

    assert_int_equal(os_voucher_verify(&f.v1, f.signer, CHAIN_ID, f.escrow), OS_OK);
    assert_int_equal(os_voucher_verify(&f.v2, f.signer, CHAIN_ID, f.escrow), OS_OK);
    os_eip712_channels_domain(ds, CHAIN_ID, f.escrow);
    assert_int_equal(os_voucher_verify_ds(&f.v1, f.signer, ds), OS_OK);
    /* wrong signer: the payer did not sign it */
    assert_int_equal(os_voucher_verify(&f.v1, f.payer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    /* other domain: chain and contract replay */
    assert_int_equal(os_voucher_verify(&f.v1, f.signer, 1, f.escrow), OS_ERR_CRYPTO);
    assert_int_equal(os_voucher_verify(&f.v1, f.signer, CHAIN_ID, other_escrow), OS_ERR_CRYPTO);
    /* every field is covered */
    v = f.v1;
    v.channel_id[0] ^= 1;
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    v = f.v1;
    v.cumulative_amount++;
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    v = f.v1;
    v.nonce--;
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    v = f.v1;
    v.metadata_hash[31] ^= 0x80;
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    v = f.v1;
    v.sig[10] ^= 1;
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    /* the high-s twin still recovers the signer for ecrecover, but is refused (EIP-2) */
    v = f.v1;
    high_s_twin(v.sig);
    os_voucher_digest(digest, &v, CHAIN_ID, f.escrow);
    assert_int_equal(os_secp_recover(who, digest, v.sig), OS_ERR_CRYPTO);
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    high_s_twin(v.sig); /* and back: the twin's twin is the original */
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_OK);
    /* v must be 27/28, as the contract wants, though 0/1 would recover */
    v = f.v1;
    v.sig[64] -= 27;
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    v.sig[64] = 29;
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    memset(v.sig, 0, 65);
    assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    assert_int_equal(os_voucher_verify(NULL, f.signer, CHAIN_ID, f.escrow), OS_ERR_INVALID);
    assert_int_equal(os_voucher_verify(&f.v1, NULL, CHAIN_ID, f.escrow), OS_ERR_INVALID);

    /* a fresh key round trip */
    {
        uint8_t k[32], a[20];
        assert_int_equal(os_secp_keygen(k), OS_OK);
        assert_int_equal(os_secp_address(a, k), OS_OK);
        v = f.v1;
        assert_int_equal(os_voucher_sign(&v, k, CHAIN_ID, f.escrow), OS_OK);
        assert_int_equal(os_voucher_verify(&v, a, CHAIN_ID, f.escrow), OS_OK);
        assert_int_equal(os_voucher_verify(&v, f.signer, CHAIN_ID, f.escrow), OS_ERR_CRYPTO);
    }
}

static void test_escrow_open_authorization(void **state)
{
    fixture f;
    os_eip3009_auth a;
    os_escrow_open_auth auth;
    uint8_t td[32], out[32], id[32];
    os_buf b;
    (void)state;
    fixture_init(&f);
    os_token_domain(td, OS_USDC_EIP712_NAME, OS_USDC_EIP712_VERSION, CHAIN_ID, f.token);
    tu_assert_hex(td, 32, V_TOKEN_DOMAIN);
    memset(&a, 0, sizeof(a));
    memcpy(a.from, f.payer, 20);
    memcpy(a.to, f.escrow, 20);
    a.value = 5000000;
    a.valid_after = 1700000000;
    a.valid_before = 1700003600;
    tu_unhex(a.nonce, 32, V_AUTH_NONCE);
    os_eip3009_receive_digest(out, &a, td);
    tu_assert_hex(out, 32, V_RECV_DIGEST);

    /* the one-call helper derives the payer, the id and the nonce, and signs like ethers */
    assert_int_equal(os_escrow_sign_open_auth(&auth, id, &f.open, f.payer_priv, CHAIN_ID, f.escrow,
                                              td, 1700000000, 1700003600),
                     OS_OK);
    tu_assert_hex(id, 32, V_CHANNEL_ID);
    assert_memory_equal(auth.from, f.payer, 20);
    assert_int_equal(auth.valid_after, 1700000000);
    assert_int_equal(auth.valid_before, 1700003600);
    tu_assert_hex(auth.sig, 65, V_RECV_SIG);
    os_buf_init(&b, 4096);
    assert_int_equal(os_escrow_encode_open_with_auth(&b, &f.open, &auth), OS_OK);
    tu_assert_hex(b.data, b.len, V_OPEN_AUTH);
    os_buf_free(&b);

    /* an empty window and a bad key are refused, leaving nothing signed */
    assert_int_equal(os_escrow_sign_open_auth(&auth, NULL, &f.open, f.payer_priv, CHAIN_ID,
                                              f.escrow, td, 1700000000, 1700000000),
                     OS_ERR_INVALID);
    for (int i = 0; i < 65; i++)
        assert_int_equal(auth.sig[i], 0);
    memset(f.payer_priv, 0xff, 32); /* above the group order */
    assert_int_equal(
        os_escrow_sign_open_auth(&auth, NULL, &f.open, f.payer_priv, CHAIN_ID, f.escrow, td, 0, 1),
        OS_ERR_INVALID);
}

/* ---- events ------------------------------------------------------------------------------ */

typedef struct test_log {
    os_chain_log log;
    uint8_t data[512];
} test_log;

static void make_log(test_log *t, const uint8_t addr[20], const char *const *topics, size_t n,
                     const char *data_hex)
{
    size_t len;
    memset(t, 0, sizeof(*t));
    memcpy(t->log.address, addr, 20);
    for (size_t i = 0; i < n; i++)
        tu_unhex(t->log.topics[i], 32, topics[i]);
    t->log.n_topics = n;
    assert_int_equal(os_hex_decode(t->data, sizeof(t->data), &len, data_hex, strlen(data_hex)),
                     OS_OK);
    t->log.data = len ? t->data : NULL;
    t->log.data_len = len;
    t->log.block_number = 77;
    t->log.log_index = 3;
    memset(t->log.tx_hash, 0xab, 32);
}

static void test_escrow_events(void **state)
{
    fixture f;
    test_log t;
    os_escrow_event ev;
    (void)state;
    fixture_init(&f);
    {
        const char *tp[] = {V_EV_OPENED_T0, V_EV_OPENED_T1, V_EV_OPENED_T2, V_EV_OPENED_T3};
        make_log(&t, f.escrow, tp, 4, V_EV_OPENED_DATA);
        /* topic0 as in contracts/README.md */
        tu_assert_hex(t.log.topics[0], 32,
                      "76822cb7c392d7e23b5653ad447f51e85bdb68b2a00125a7dbd4fd54554ce52e");
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_OK);
        assert_int_equal(ev.kind, OS_ESCROW_EV_OPENED);
        assert_memory_equal(ev.channel_id, f.channel_id, 32);
        assert_memory_equal(ev.payer, f.payer, 20);
        assert_memory_equal(ev.seller, f.seller, 20);
        assert_memory_equal(ev.signer, f.signer, 20);
        assert_memory_equal(ev.commitment, f.commitment, 32);
        assert_int_equal(ev.deposit, 5000000);
        assert_int_equal(ev.block_number, 77);
        assert_int_equal(ev.log_index, 3);
        assert_int_equal(ev.tx_hash[31], 0xab);
        assert_false(ev.removed);
        /* an indexed topic missing */
        t.log.n_topics = 3;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_INVALID);
        assert_int_equal(ev.kind, 0);
        t.log.n_topics = 4;
        /* dirty high bits in the signer word */
        t.data[0] = 1;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_INVALID);
        t.data[0] = 0;
        /* short and long data */
        t.log.data_len -= 1;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_INVALID);
        t.log.data_len += 33;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_INVALID);
        t.log.data_len -= 32;
        /* another contract's log with the same shape */
        t.log.address[0] ^= 1;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_NOTFOUND);
        t.log.address[0] ^= 1;
        /* an unknown topic0 (ERC-20 Transfer) and no topic at all */
        tu_unhex(t.log.topics[0], 32,
                 "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_NOTFOUND);
        t.log.n_topics = 0;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_NOTFOUND);
    }
    {
        const char *tp[] = {V_EV_TOPPED_UP_T0, V_EV_TOPPED_UP_T1};
        make_log(&t, f.escrow, tp, 2, V_EV_TOPPED_UP_DATA);
        tu_assert_hex(t.log.topics[0], 32,
                      "618ca7dc15aafc2ad86ffeb49cee3537543216259d1e509e00e9c9c0b0a57a98");
        t.log.removed = true;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_OK);
        assert_int_equal(ev.kind, OS_ESCROW_EV_TOPPED_UP);
        assert_memory_equal(ev.channel_id, f.channel_id, 32);
        assert_int_equal(ev.amount, 250000);
        assert_int_equal(ev.deposit, 5250000);
        assert_true(ev.removed);
        /* a channel id topic is required */
        t.log.n_topics = 1;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_INVALID);
    }
    {
        const char *tp[] = {V_EV_CLAIMED_T0, V_EV_CLAIMED_T1};
        make_log(&t, f.escrow, tp, 2, V_EV_CLAIMED_DATA);
        tu_assert_hex(t.log.topics[0], 32,
                      "d58283ee1a7e56e7d13845e090ad19f07f96b73524c1a699b5bf42dc2cbe0725");
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_OK);
        assert_int_equal(ev.kind, OS_ESCROW_EV_CLAIMED);
        assert_int_equal(ev.cumulative_amount, 1234567);
        assert_int_equal(ev.nonce, 42);
        assert_memory_equal(ev.metadata_hash, f.meta, 32);
        assert_int_equal(ev.amount, 1234567);
        assert_int_equal(ev.claimed, 1234567);
        /* a nonce word above uint64 is malformed ABI for a uint64 */
        t.data[32 + 23] = 1;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_INVALID);
    }
    {
        const char *tp[] = {V_EV_CLOSE_REQUESTED_T0, V_EV_CLOSE_REQUESTED_T1};
        make_log(&t, f.escrow, tp, 2, V_EV_CLOSE_REQUESTED_DATA);
        tu_assert_hex(t.log.topics[0], 32,
                      "9fd5c1db29e4aeb4f968f62fc18602aad1cca0f99be64b456a6c4f4052d63b14");
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_OK);
        assert_int_equal(ev.kind, OS_ESCROW_EV_CLOSE_REQUESTED);
        assert_int_equal(ev.close_at, 1700000900);
        t.log.data_len = 0;
        t.log.data = NULL;
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_INVALID);
    }
    {
        const char *tp[] = {V_EV_CLOSED_T0, V_EV_CLOSED_T1};
        make_log(&t, f.escrow, tp, 2, V_EV_CLOSED_DATA);
        tu_assert_hex(t.log.topics[0], 32,
                      "235168593e6cd0e7c04fc0a67c602a1c900c24b12bf5e9f3c62e22f0ca9c29a8");
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_OK);
        assert_int_equal(ev.kind, OS_ESCROW_EV_CLOSED);
        assert_int_equal(ev.claimed, 1234567);
        assert_int_equal(ev.refund, 4015433);
    }
    {
        const char *tp[] = {V_EV_WITHDRAWN_T0, V_EV_WITHDRAWN_T1};
        make_log(&t, f.escrow, tp, 2, V_EV_WITHDRAWN_DATA);
        tu_assert_hex(t.log.topics[0], 32,
                      "b92806c87db4f76c6aefc5fd3517b07d661503ff060092ca478e925d8fa9cc56");
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_OK);
        assert_int_equal(ev.kind, OS_ESCROW_EV_WITHDRAWN);
        assert_int_equal(ev.claimed, 0);
        assert_int_equal(ev.refund, 5000000);
    }
    /* well-formed, but amounts of 2^64: out of our range, not truncated */
    {
        const char *tp[] = {V_EV_CLAIMED_BIG_T0, V_EV_CLAIMED_BIG_T1};
        make_log(&t, f.escrow, tp, 2, V_EV_CLAIMED_BIG_DATA);
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_RANGE);
        assert_int_equal(ev.kind, 0);
        assert_int_equal(ev.cumulative_amount, 0);
    }
    {
        const char *tp[] = {V_EV_TOPPED_UP_BIG_T0, V_EV_TOPPED_UP_BIG_T1};
        make_log(&t, f.escrow, tp, 2, V_EV_TOPPED_UP_BIG_DATA);
        assert_int_equal(os_escrow_decode_event(&ev, &t.log, f.escrow), OS_ERR_RANGE);
    }
    assert_int_equal(os_escrow_decode_event(&ev, NULL, f.escrow), OS_ERR_INVALID);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_escrow_error_table(void **state)
{
    /* the selectors in contracts/README.md's error table */
    static const struct {
        os_escrow_error e;
        const char *sel;
    } readme[] = {
        {OS_ESCROW_E_ZERO_ADDRESS, "d92e233d"},
        {OS_ESCROW_E_ZERO_AMOUNT, "1f2a2005"},
        {OS_ESCROW_E_INVALID_CLOSE_GRACE, "d88b9b8f"},
        {OS_ESCROW_E_CHANNEL_EXISTS, "a940c060"},
        {OS_ESCROW_E_CHANNEL_NOT_FOUND, "f383b13e"},
        {OS_ESCROW_E_CHANNEL_IS_CLOSED, "b58982bc"},
        {OS_ESCROW_E_NOT_PAYER, "11a4cac0"},
        {OS_ESCROW_E_NOT_SELLER, "e38d022a"},
        {OS_ESCROW_E_CLOSE_ALREADY_REQUESTED, "0d7bb172"},
        {OS_ESCROW_E_CLOSE_NOT_REQUESTED, "f15dbef3"},
        {OS_ESCROW_E_GRACE_PERIOD_NOT_OVER, "ee3a28c1"},
        {OS_ESCROW_E_GRACE_PERIOD_OVER, "a5af75ca"},
        {OS_ESCROW_E_INVALID_SIGNATURE, "8baa579f"},
        {OS_ESCROW_E_WRONG_SIGNER, "32c15fc2"},
        {OS_ESCROW_E_STALE_NONCE, "aef79e28"},
        {OS_ESCROW_E_NOTHING_TO_CLAIM, "969bf728"},
        {OS_ESCROW_E_TRANSFER_AMOUNT_MISMATCH, "b6a9b654"},
        {OS_ESCROW_E_REENTRANT_CALL, "3ee5aeb5"},
        {OS_ESCROW_E_SAFE_ERC20_FAILED, "5274afe7"},
    };
    const char *const *tab = os_escrow_errors();
    os_chain_config cfg;
    os_chain_error err;
    os_abi_revert rv;
    uint8_t sel[4], data[4 + 64];
    (void)state;

    for (size_t i = 0; i < OS_ESCROW_E__COUNT; i++) {
        assert_non_null(tab[i]);
        assert_int_equal(os_abi_selector(sel, tab[i]), OS_OK); /* canonical, hashable */
        for (size_t j = 0; j < i; j++) {
            uint8_t sel2[4];
            assert_int_equal(os_abi_selector(sel2, tab[j]), OS_OK);
            assert_memory_not_equal(sel, sel2, 4);
        }
    }
    for (size_t i = 0; i < sizeof(readme) / sizeof(readme[0]); i++) {
        assert_int_equal(os_abi_selector(sel, tab[readme[i].e]), OS_OK);
        tu_assert_hex(sel, 4, readme[i].sel);
    }

    /* what the chain client makes of WrongSigner(signer) with this table */
    memset(&cfg, 0, sizeof(cfg));
    os_escrow_chain_config(&cfg);
    assert_ptr_equal(cfg.custom_errors, tab);
    assert_int_equal(cfg.n_custom_errors, OS_ESCROW_E__COUNT);
    tu_unhex(data, 4, "32c15fc2");
    memset(data + 4, 0, 12);
    tu_unhex(data + 16, 20, V_SIGNER);
    assert_int_equal(os_abi_decode_revert(&rv, data, 36, cfg.custom_errors, cfg.n_custom_errors),
                     OS_OK);
    assert_int_equal(rv.kind, OS_ABI_REVERT_CUSTOM);
    assert_int_equal(rv.custom_index, OS_ESCROW_E_WRONG_SIGNER);
    assert_string_equal(rv.message, "WrongSigner(0x6993c5a747d63ecDEb65da1B7eF26f5Aa85a8deA)");
    /* StaleNonce(3, 7) */
    tu_unhex(data, 4, "aef79e28");
    memset(data + 4, 0, 64);
    data[35] = 3;
    data[67] = 7;
    assert_int_equal(os_abi_decode_revert(&rv, data, 68, cfg.custom_errors, cfg.n_custom_errors),
                     OS_OK);
    assert_string_equal(rv.message, "StaleNonce(3, 7)");

    /* os_escrow_is_error goes by the selector in the revert data */
    memset(&err, 0, sizeof(err));
    err.kind = OS_CHAIN_FAIL_REVERT;
    memcpy(err.revert_data, data, 68);
    err.revert_len = 68;
    assert_true(os_escrow_is_error(&err, OS_ESCROW_E_STALE_NONCE));
    assert_false(os_escrow_is_error(&err, OS_ESCROW_E_NOTHING_TO_CLAIM));
    assert_false(os_escrow_is_error(&err, OS_ESCROW_E__COUNT));
    err.kind = OS_CHAIN_FAIL_RPC;
    assert_false(os_escrow_is_error(&err, OS_ESCROW_E_STALE_NONCE));
    err.kind = OS_CHAIN_FAIL_REVERT;
    err.revert_len = 3;
    assert_false(os_escrow_is_error(&err, OS_ESCROW_E_STALE_NONCE));
    assert_false(os_escrow_is_error(NULL, OS_ESCROW_E_STALE_NONCE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escrow_calldata),
        cmocka_unit_test(test_escrow_calldata_refusals),
        cmocka_unit_test(test_escrow_channel_id_and_auth_nonce),
        cmocka_unit_test(test_escrow_voucher_digest),
        cmocka_unit_test(test_escrow_voucher_sign_matches_ethers),
        cmocka_unit_test(test_escrow_voucher_verify),
        cmocka_unit_test(test_escrow_open_authorization),
        cmocka_unit_test(test_escrow_events),
        cmocka_unit_test(test_escrow_error_table),
    };
    return cmocka_run_group_tests_name("escrow", tests, tu_init, NULL);
}
