// SPDX-License-Identifier: Apache-2.0
// Cross-checks libcommon's EIP-1559 transactions against ethers 6 (an independent implementation).
// For N seeded random transactions (random keys, chain ids, nonces, fees at the uint64 edges,
// values up to 2^256-1, calldata around the RLP 55/56-byte boundary, creations without "to"):
//   1. os_tx_tool signs; ethers' Transaction.from(raw) must parse the same fields, the same hash,
//      and recover `from` equal to the signer's address;
//   2. ethers signs the same fields; the raw bytes must be identical to ours (RFC 6979);
//   3. os_tx_tool decodes ethers' raw bytes back to the same fields and sender.
// Usage: node tx.js TOOL ETHERS_DIR [N] [SEED]
'use strict';
const { spawnSync } = require('child_process');

const [tool, ethersDir, nArg, seedArg] = process.argv.slice(2);
const { ethers } = require(ethersDir);
const N = Number(nArg || 200);
let state = BigInt(seedArg || 20250101) & ((1n << 64n) - 1n);

// splitmix64: a tiny deterministic PRNG so a failure can be replayed from its seed.
function next64() {
    state = (state + 0x9e3779b97f4a7c15n) & ((1n << 64n) - 1n);
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & ((1n << 64n) - 1n);
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & ((1n << 64n) - 1n);
    return z ^ (z >> 31n);
}
const below = (n) => Number(next64() % BigInt(n));
function bits(k) { // a random integer of at most k bits
    let v = 0n;
    for (let i = 0; i < k; i += 64) v = (v << 64n) | next64();
    return k === 0 ? 0n : v & ((1n << BigInt(k)) - 1n);
}
function bytes(n) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Number(next64() & 0xffn);
    return b;
}
const pick = (a) => a[below(a.length)];
const U64MAX = (1n << 64n) - 1n;
const hex = (b) => ethers.hexlify(b).slice(2);

function randomTx() {
    const edge64 = () => pick([0n, 1n, 127n, 128n, 255n, 256n, U64MAX, bits(64), bits(below(64) + 1)]);
    // nodes and ethers refuse a tip above the fee cap, and so does os_tx_sign
    let [tip, cap] = [edge64(), edge64()];
    if (tip > cap) [tip, cap] = [cap, tip];
    return {
        type: 2,
        chainId: pick([1n, 8453n, 84532n, 31337n, bits(32) + 1n, bits(63) + 1n]),
        nonce: Number(pick([0n, 1n, 127n, 128n, bits(32), bits(53)])),
        maxPriorityFeePerGas: tip,
        maxFeePerGas: cap,
        gasLimit: pick([21000n, 0n, 30000000n, edge64()]),
        to: below(6) === 0 ? null : ethers.getAddress(ethers.hexlify(bytes(20))),
        value: pick([0n, 1n, 10n ** 18n, (1n << 256n) - 1n, bits(below(257))]),
        data: ethers.hexlify(bytes(pick([0, 1, 4, 36, 54, 55, 56, 57, 68, 200, 1000, below(600)]))),
        accessList: [],
    };
}

function runTool(lines) {
    const r = spawnSync(tool, [], { input: lines.join('\n') + '\n', maxBuffer: 1 << 28 });
    if (r.status !== 0 || r.error) throw new Error(`os_tx_tool failed: ${r.error || r.stderr}`);
    return r.stdout.toString().trimEnd().split('\n');
}

function sameFields(a, b) {
    const diffs = [];
    for (const k of ['chainId', 'maxPriorityFeePerGas', 'maxFeePerGas', 'gasLimit', 'value'])
        if (BigInt(a[k]) !== BigInt(b[k])) diffs.push(k);
    if (Number(a.nonce) !== Number(b.nonce)) diffs.push('nonce');
    if ((a.to || '').toLowerCase() !== (b.to || '').toLowerCase()) diffs.push('to');
    if (a.data.toLowerCase() !== b.data.toLowerCase()) diffs.push('data');
    return diffs;
}

(async () => {
    const cases = [];
    for (let i = 0; i < N; i++) {
        let wallet;
        for (;;) {
            try { wallet = new ethers.Wallet(ethers.hexlify(bytes(32))); break; } catch (e) { /* out of range key */ }
        }
        cases.push({ wallet, tx: randomTx() });
    }
    const signLines = cases.map(({ wallet, tx }) => ['sign', wallet.privateKey.slice(2), tx.chainId, tx.nonce,
        tx.maxPriorityFeePerGas, tx.maxFeePerGas, tx.gasLimit, tx.to ? tx.to.slice(2) : '-', tx.value,
        tx.data === '0x' ? '-' : tx.data.slice(2)].join(' '));
    const ours = runTool(signLines);

    let passed = 0, failed = 0;
    const ethersRaw = [];
    for (let i = 0; i < N; i++) {
        const { wallet, tx } = cases[i];
        const fail = (why) => { failed++; console.error(`case ${i}: ${why}\n  tx=${JSON.stringify(tx, (k, v) => typeof v === 'bigint' ? v.toString() : v)}`); };
        const ref = await wallet.signTransaction(ethers.Transaction.from(tx));
        ethersRaw.push(ref);
        const f = (ours[i] || '').split(' ');
        if (f[0] !== 'ok') { fail(`os_tx_tool: ${ours[i]}`); continue; }
        const raw = '0x' + f[1];
        let parsed;
        try { parsed = ethers.Transaction.from(raw); } catch (e) { fail(`ethers cannot parse ours: ${e.message}`); continue; }
        const diffs = sameFields(parsed, tx);
        if (parsed.type !== 2 || parsed.accessList.length !== 0) diffs.push('type/accessList');
        if (diffs.length) { fail(`ethers parsed different ${diffs.join(',')}`); continue; }
        if (parsed.from !== wallet.address || ethers.getAddress('0x' + f[3]) !== wallet.address) { fail(`from ${parsed.from} / 0x${f[3]} != ${wallet.address}`); continue; }
        if (parsed.hash !== '0x' + f[2]) { fail(`hash ${parsed.hash} != 0x${f[2]}`); continue; }
        if (ref !== raw) { fail(`raw differs\n  ours:   ${raw}\n  ethers: ${ref}`); continue; }
        passed++;
    }
    // our decoder on ethers' bytes
    const decoded = runTool(ethersRaw.map((r) => 'decode ' + r.slice(2)));
    for (let i = 0; i < N; i++) {
        const { wallet, tx } = cases[i];
        const f = (decoded[i] || '').split(' ');
        const back = f[0] === 'ok' && {
            chainId: f[1], nonce: f[2], maxPriorityFeePerGas: f[3], maxFeePerGas: f[4], gasLimit: f[5],
            to: f[6] === '-' ? null : '0x' + f[6], value: f[7], data: f[8] === '-' ? '0x' : '0x' + f[8] };
        const bad = !back ? `os_tx_tool decode: ${decoded[i]}`
            : sameFields(back, tx).length ? `decode fields ${sameFields(back, tx).join(',')}`
            : ethers.getAddress('0x' + f[9]) !== wallet.address ? 'decode from'
            : ('0x' + f[10]) !== ethers.keccak256(ethersRaw[i]) ? 'decode hash' : null;
        if (bad) {
            console.error(`case ${i} (decode): ${bad}`);
            // count each case once: move it from passed to failed
            passed--; failed++;
        }
    }
    console.log(`tx crosscheck: ${passed} passed, ${failed} failed`);
    process.exit(failed === 0 && passed === N ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(1); });
