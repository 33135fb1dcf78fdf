// SPDX-License-Identifier: Apache-2.0
// Compares the escrow bindings with ethers, an independent implementation, on seeded random
// input, through the C driver escrow.sh builds:
//  - SpendingAuth vouchers (random key, chain id, escrow, channel id, amounts and nonces across
//    the whole uint64 range, metadata): our digest must equal TypedDataEncoder.hash, our signature
//    must verify with verifyTypedData to the key's address and, both being RFC 6979, equal ethers'
//    byte for byte; os_voucher_verify must accept ethers' signature and refuse it for another
//    address.
//  - openWithAuthorization: os_escrow_sign_open_auth's channel id must equal keccak256(abi.encode(
//    chainId, escrow, payer, seller, salt)) and its signature must verify with verifyTypedData as
//    ReceiveWithAuthorization(from = payer, to = escrow, value, validAfter, validBefore,
//    nonce = keccak256(abi.encode(channelId, signer, commitment))) in the token's domain
//    {"USD Coin", "2", chainId, token}.
// Usage: node escrow.js DRIVER ETHERS_DIR COUNT SEED
'use strict';

const { execFileSync } = require('child_process');
const path = require('path');

const [, , driver, ethersDir, countArg, seedArg] = process.argv;
if (!driver || !ethersDir || !countArg || seedArg === undefined) {
  console.error('usage: node escrow.js DRIVER ETHERS_DIR COUNT SEED');
  process.exit(2);
}
const ethers = require(path.resolve(ethersDir));
const { TypedDataEncoder, Wallet, verifyTypedData, getAddress, hexlify, keccak256, AbiCoder } =
  ethers;
const COUNT = Number(countArg);
const SEED = Number(seedArg) >>> 0;

// mulberry32: small and seedable.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    int: (n) => next() % n,
    bytes: (n) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
    u64: () => (BigInt(next()) << 32n) | BigInt(next()),
  };
}

const r = rng(SEED);
const MAX64 = (1n << 64n) - 1n;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function key() {
  for (;;) {
    const k = BigInt(hexlify(r.bytes(32)));
    if (k > 0n && k < N) return new Wallet('0x' + k.toString(16).padStart(64, '0'));
  }
}
const addr = () => getAddress(hexlify(r.bytes(20)));
const b32 = () => hexlify(r.bytes(32));
const hex = (s) => s.replace(/^0x/, '');
// amounts and nonces at the edges and everywhere between
function u64() {
  switch (r.int(5)) {
    case 0: return BigInt(r.int(3));
    case 1: return MAX64 - BigInt(r.int(3));
    case 2: return BigInt(r.int(1e9));
    default: return r.u64();
  }
}
const chainId = () => [1n, 8453n, 84532n, 31337n, u64() || 1n][r.int(5)];

const SPENDING = {
  SpendingAuth: [
    { name: 'channelId', type: 'bytes32' },
    { name: 'cumulativeAmount', type: 'uint256' },
    { name: 'nonce', type: 'uint64' },
    { name: 'metadataHash', type: 'bytes32' },
  ],
};
const RECEIVE = {
  ReceiveWithAuthorization: [
    { name: 'from', type: 'address' },
    { name: 'to', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'validAfter', type: 'uint256' },
    { name: 'validBefore', type: 'uint256' },
    { name: 'nonce', type: 'bytes32' },
  ],
};

const cases = [];
const lines = [];
for (let i = 0; i < COUNT; i++) {
  const w = key();
  const domain = { name: 'OpenSeedChannels', version: '1', chainId: chainId(),
    verifyingContract: addr() };
  const msg = { channelId: b32(), cumulativeAmount: u64(), nonce: u64(), metadataHash: b32() };
  const theirs = w.signingKey.sign(TypedDataEncoder.hash(domain, SPENDING, msg)).serialized;
  cases.push({ kind: 'V', w, domain, msg, theirs });
  lines.push(['V', hex(w.privateKey), domain.chainId, hex(domain.verifyingContract),
    hex(msg.channelId), msg.cumulativeAmount, msg.nonce, hex(msg.metadataHash), hex(theirs)]
    .join(' '));
}
for (let i = 0; i < COUNT; i++) {
  const w = key();
  const c = { kind: 'A', w, chainId: chainId(), escrow: addr(), token: addr(), seller: addr(),
    signer: addr(), commitment: b32(), amount: u64(), salt: b32() };
  c.after = BigInt(r.int(2000000000));
  c.before = c.after + 1n + u64() / 2n;
  cases.push(c);
  lines.push(['A', hex(w.privateKey), c.chainId, hex(c.escrow), hex(c.token), hex(c.seller),
    hex(c.signer), hex(c.commitment), c.amount, hex(c.salt), c.after, c.before].join(' '));
}

let out;
try {
  out = execFileSync(driver, [], { input: lines.join('\n') + '\n', maxBuffer: 1 << 26 })
    .toString().trim().split('\n');
} catch (e) {
  console.error(`escrow crosscheck: FAIL: driver exited with ${e.status} (seed ${SEED})`);
  process.exit(1);
}
if (out.length !== cases.length) {
  console.error(`escrow crosscheck: FAIL: ${out.length} answers for ${cases.length} (seed ${SEED})`);
  process.exit(1);
}

const A = AbiCoder.defaultAbiCoder();
let failures = 0;
function check(ok, i, what) {
  if (!ok) {
    failures++;
    if (failures <= 10) console.error(`case ${i}: ${what} (seed ${SEED})`);
  }
}
cases.forEach((c, i) => {
  const f = out[i].trim().split(' ');
  if (c.kind === 'V') {
    const [digest, sig, oursOk, theirsOk, wrongOk] = f;
    check('0x' + digest === TypedDataEncoder.hash(c.domain, SPENDING, c.msg), i, 'voucher digest');
    check(verifyTypedData(c.domain, SPENDING, c.msg, '0x' + sig) === c.w.address, i,
      'our voucher signature does not verify with ethers');
    check('0x' + sig === c.theirs, i, 'our voucher signature differs from ethers (RFC 6979)');
    check(oursOk === '1', i, 'os_voucher_verify refuses our own signature');
    check(theirsOk === '1', i, "os_voucher_verify refuses ethers' signature");
    check(wrongOk === '0', i, 'os_voucher_verify accepts another address');
  } else {
    const [id, sig] = f;
    const wantId = keccak256(A.encode(['uint256', 'address', 'address', 'address', 'bytes32'],
      [c.chainId, c.escrow, c.w.address, c.seller, c.salt]));
    check('0x' + id === wantId, i, 'channel id');
    const nonce = keccak256(A.encode(['bytes32', 'address', 'bytes32'],
      [wantId, c.signer, c.commitment]));
    const domain = { name: 'USD Coin', version: '2', chainId: c.chainId,
      verifyingContract: c.token };
    const msg = { from: c.w.address, to: c.escrow, value: c.amount, validAfter: c.after,
      validBefore: c.before, nonce };
    check(verifyTypedData(domain, RECEIVE, msg, '0x' + sig) === c.w.address, i,
      'authorization signature does not verify with ethers');
  }
});
if (failures > 0) {
  console.error(`escrow crosscheck: FAIL: ${failures} mismatches (seed ${SEED})`);
  process.exit(1);
}
console.log(`escrow crosscheck: ${cases.length} cases agree with ethers (seed ${SEED})`);
