// SPDX-License-Identifier: Apache-2.0
// Generates seeded random EIP-712 documents (nested structs, arrays of every shape, every atomic
// type, edge-case values in every accepted notation) and compares libcommon, driven through
// os_eip712_tool's batch mode, with ethers: the digest must equal TypedDataEncoder.hash, ethers'
// signature must recover with our tool to the wallet, our signature must verify with ethers'
// verifyTypedData and, both being RFC 6979, equal ethers' byte for byte. About one document in
// six is made invalid on purpose (out-of-range integer, wrong length, bad checksum, unknown type,
// missing field, ...) and both sides must refuse it.
// Usage: node eip712.js TOOL ETHERS_DIR COUNT SEED
'use strict';

const { execFileSync } = require('child_process');
const path = require('path');

const [, , tool, ethersDir, countArg, seedArg] = process.argv;
if (!tool || !ethersDir || !countArg || seedArg === undefined) {
  console.error('usage: node eip712.js TOOL ETHERS_DIR COUNT SEED');
  process.exit(2);
}
let ethers;
try {
  ethers = require(path.resolve(ethersDir));
} catch (e) {
  console.error(`eip712 crosscheck: FAIL: cannot load ethers from ${ethersDir}: ${e.message}`);
  process.exit(1);
}
const { TypedDataEncoder, Wallet, verifyTypedData, getAddress, hexlify } = ethers;
const COUNT = Number(countArg);
const SEED = Number(seedArg) >>> 0;

// mulberry32: small, seedable, good enough to explore shapes.
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const r = {
    u32: next,
    int: (n) => next() % n,
    chance: (p) => next() / 4294967296 < p,
    pick: (arr) => arr[next() % arr.length],
    bytes: (n) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
    big: (bits) => {
      let v = 0n;
      for (let i = 0; i < bits; i += 32) v = (v << 32n) | BigInt(next());
      return v & ((1n << BigInt(bits)) - 1n);
    },
  };
  return r;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const IDCHARS = LETTERS + '0123456789_$';

function ident(r, first) {
  let s = first + r.pick(LETTERS.split(''));
  const n = r.int(8);
  for (let i = 0; i < n; i++) s += IDCHARS[r.int(IDCHARS.length)];
  return s;
}

// Struct names start upper-case, so none can read as an atomic type ("uint8", "bytes4", ...).
function structName(r, used) {
  for (;;) {
    const s = ident(r, r.pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('')));
    if (!used.has(s) && s !== 'EIP712Domain') {
      used.add(s);
      return s;
    }
  }
}

const WIDTHS = [8, 16, 24, 32, 40, 64, 72, 96, 128, 160, 200, 248, 256];

function atomicType(r) {
  switch (r.int(8)) {
    case 0: return 'string';
    case 1: return 'bytes';
    case 2: return 'bool';
    case 3: return 'address';
    case 4: return 'bytes' + r.pick([1, 2, 4, 8, 20, 31, 32, 1 + r.int(32)]);
    case 5: case 6: return 'uint' + r.pick(WIDTHS.concat([8 * (1 + r.int(32))]));
    default: return 'int' + r.pick(WIDTHS.concat([8 * (1 + r.int(32))]));
  }
}

function withDims(r, base) {
  if (!r.chance(0.35)) return base;
  let t = base;
  const dims = 1 + (r.chance(0.3) ? 1 : 0) + (r.chance(0.1) ? 1 : 0);
  for (let i = 0; i < dims; i++) t += r.chance(0.5) ? '[]' : `[${1 + r.int(3)}]`;
  return t;
}

// Acyclic types: struct k may only use structs j > k, and every struct j > 0 is reached from
// an earlier one, so struct 0 is the single root ethers infers as the primary type.
function genTypes(r) {
  const used = new Set();
  const n = 1 + r.int(5);
  const names = [];
  for (let i = 0; i < n; i++) names.push(structName(r, used));
  const types = {};
  const reached = new Set([0]);
  for (let k = 0; k < n; k++) {
    const fields = [];
    const fnames = new Set();
    const nf = (k === 0 ? 1 : 0) + r.int(6);
    for (let f = 0; f < nf; f++) {
      let base;
      if (k + 1 < n && r.chance(0.3)) {
        const j = k + 1 + r.int(n - k - 1);
        base = names[j];
        reached.add(j);
      } else {
        base = atomicType(r);
      }
      let fname;
      do fname = ident(r, r.pick(['', '', '_', '$'])); while (fnames.has(fname));
      fnames.add(fname);
      fields.push({ name: fname, type: withDims(r, base) });
    }
    types[names[k]] = fields;
  }
  for (let j = 1; j < n; j++) {
    if (reached.has(j)) continue;
    const i = r.int(j);
    let fname;
    do fname = ident(r, 'l'); while (types[names[i]].some((f) => f.name === fname));
    types[names[i]].push({ name: fname, type: withDims(r, names[j]) });
    reached.add(j);
  }
  return { types, primary: names[0] };
}

const STRCHARS = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\u0001', 'é', 'ß', '✓', '中',
  '🌱', '😀', '\u{10FFFF}', '\u00a0', 'x', 'y'];

function hexOf(r, bytes) {
  const h = hexlify(bytes);
  return r.chance(0.2) ? '0x' + h.slice(2).toUpperCase() : h;
}

// Integers in every notation both sides accept: JSON number (when safe), decimal, hex, signed hex.
function intRepr(r, v) {
  const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
  const k = r.int(safe ? 4 : 3);
  const neg = v < 0n;
  const mag = neg ? -v : v;
  if (k === 3) return Number(v);
  if (k === 0 || k === 2) return v.toString();
  return (neg ? '-' : '') + '0x' + mag.toString(16);
}

function intValue(r, type) {
  const signed = type.startsWith('int');
  const w = BigInt(Number(type.slice(signed ? 3 : 4)));
  const max = signed ? (1n << (w - 1n)) - 1n : (1n << w) - 1n;
  const min = signed ? -(1n << (w - 1n)) : 0n;
  let v;
  switch (r.int(6)) {
    case 0: v = max; break;
    case 1: v = min; break;
    case 2: v = BigInt(r.int(3)) - (signed ? 1n : 0n); break;
    default: {
      v = r.big(Number(w)) % (max - min + 1n) + min;
      if (r.chance(0.3)) v >>= BigInt(r.int(Number(w)));
    }
  }
  return intRepr(r, v);
}

function addressValue(r) {
  const a = hexlify(r.bytes(20));
  switch (r.int(3)) {
    case 0: return a;
    case 1: return getAddress(a);
    default: return '0x' + a.slice(2).toUpperCase();
  }
}

function genValue(r, types, type) {
  const m = type.match(/^(.*)\[(\d*)\]$/);
  if (m) {
    const n = m[2] === '' ? r.int(4) : Number(m[2]);
    const out = [];
    for (let i = 0; i < n; i++) out.push(genValue(r, types, m[1]));
    return out;
  }
  if (types[type]) {
    const o = {};
    for (const f of types[type]) o[f.name] = genValue(r, types, f.type);
    return o;
  }
  if (type === 'string') {
    let s = '';
    const n = r.int(24);
    for (let i = 0; i < n; i++) s += r.pick(STRCHARS);
    return s;
  }
  if (type === 'bytes') return hexOf(r, r.bytes(r.chance(0.2) ? 0 : r.int(80)));
  if (type === 'bool') return r.chance(0.5);
  if (type === 'address') return addressValue(r);
  if (type.startsWith('bytes')) return hexOf(r, r.bytes(Number(type.slice(5))));
  return intValue(r, type);
}

const DOMAIN_FIELDS = [
  ['name', 'string'], ['version', 'string'], ['chainId', 'uint256'],
  ['verifyingContract', 'address'], ['salt', 'bytes32'],
];

function genDomain(r) {
  const domain = {};
  const fields = [];
  for (const [name, type] of DOMAIN_FIELDS) {
    if (!r.chance(0.6)) continue;
    fields.push({ name, type });
    if (name === 'chainId') domain[name] = intRepr(r, r.pick([1n, 8453n, 31337n, r.big(64), r.big(256)]));
    else if (name === 'verifyingContract') domain[name] = addressValue(r);
    else domain[name] = genValue(r, {}, type);
  }
  return { domain, fields };
}

// Breaks a valid document in one of several ways; ethers and we must both refuse the result.
function corrupt(r, doc) {
  const fields = doc.types[doc.primary];
  const msg = doc.message;
  const add = (type, value) => {
    const name = 'zz' + r.int(1000);
    if (fields.some((f) => f.name === name)) return add(type, value);
    fields.push({ name, type });
    if (value !== undefined) msg[name] = value;
    return name;
  };
  const checksummedWithLetter = () => {
    for (;;) {
      const a = getAddress(hexlify(r.bytes(20)));
      const i = a.slice(2).search(/[a-fA-F]/);
      if (i < 0) continue;
      const c = a[2 + i];
      const flipped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
      const bad = a.slice(0, 2 + i) + flipped + a.slice(3 + i);
      // only mixed-case strings carry a checksum
      if (/[a-f]/.test(bad.slice(2)) && /[A-F]/.test(bad.slice(2))) return bad;
    }
  };
  const kinds = [
    () => { add('uint8', r.pick([256, '256', '0x100'])); return 'uint8 overflow'; },
    () => { add('uint256', (1n << 256n).toString()); return 'uint256 overflow'; },
    () => { add('uint64', r.pick(['-1', -1, '-0x1'])); return 'negative uint'; },
    () => { add('int16', r.pick([-32769, '32768', '-0x8001'])); return 'int16 out of range'; },
    () => { add('int256', (1n << 255n).toString()); return 'int256 overflow'; },
    () => { add('uint32', r.pick(['1.5', '12a', ''])); return 'malformed integer'; },
    () => { add('bytes4', hexlify(r.bytes(r.pick([3, 5])))); return 'bytes4 wrong length'; },
    () => { add('bytes', '0x123'); return 'odd-length bytes'; },
    () => { add('address', checksummedWithLetter()); return 'bad address checksum'; },
    () => { add('address', '0x' + 'ab'.repeat(19)); return 'short address'; },
    () => { add('uint8[2]', [1, 2, 3]); return 'fixed array length'; },
    () => { add(r.pick(['uint256', 'string', 'bytes32', 'address'])); return 'missing field'; },
    () => { add('Nope', {}); return 'unknown struct type'; },
    () => { add(r.pick(['uint7', 'int0', 'bytes33', 'uint264']), 1); return 'bad atomic type'; },
  ];
  return r.pick(kinds)();
}

function genCase(r, index) {
  const { types, primary } = genTypes(r);
  const message = genValue(r, types, primary);
  const { domain, fields } = genDomain(r);
  const doc = { types, primary, message, domain, domainFields: fields, index };
  doc.bad = r.chance(1 / 6) ? corrupt(r, doc) : null;
  doc.key = hexlify(r.bytes(32));
  doc.typed = {
    types: Object.assign({ EIP712Domain: fields }, types),
    primaryType: primary,
    domain,
    message,
  };
  return doc;
}

function ethersSide(doc) {
  try {
    const digest = TypedDataEncoder.hash(doc.domain, doc.types, doc.message);
    return { digest };
  } catch (e) {
    return { error: e.shortMessage || e.message };
  }
}

async function main() {
  const r = rng(SEED);
  const cases = [];
  for (let i = 0; i < COUNT; i++) {
    const doc = genCase(r, i);
    const e = ethersSide(doc);
    let wallet = null;
    let ethersSig = null;
    try {
      wallet = new Wallet(doc.key);
    } catch (err) {
      // a random 32-byte string is a valid key but for ~2^-128 of them
      doc.key = '0x' + '11'.repeat(32);
      wallet = new Wallet(doc.key);
    }
    if (e.digest) ethersSig = await wallet.signTypedData(doc.domain, doc.types, doc.message);
    cases.push({ doc, e, wallet, ethersSig });
  }

  const input = cases.map(({ doc, ethersSig }) => JSON.stringify(
    ethersSig ? { typed: doc.typed, key: doc.key, verify: ethersSig } : { typed: doc.typed })).join('\n') + '\n';
  let out;
  try {
    out = execFileSync(tool, ['batch'], { input, maxBuffer: 1 << 28, encoding: 'utf8' });
  } catch (e) {
    console.error(`eip712 crosscheck: FAIL: ${tool} batch failed: ${e.message}`);
    process.exit(1);
  }
  const answers = out.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
  if (answers.length !== cases.length) {
    console.error(`eip712 crosscheck: FAIL: ${answers.length} answers for ${cases.length} documents (seed ${SEED})`);
    process.exit(1);
  }

  let passed = 0;
  let failed = 0;
  let refusedBoth = 0;
  for (let i = 0; i < cases.length; i++) {
    const { doc, e, wallet, ethersSig } = cases[i];
    const ours = answers[i];
    const problems = [];
    if (doc.bad) {
      if (!e.error) problems.push(`ethers accepted a document broken by "${doc.bad}"`);
      if (!ours.error) problems.push(`we accepted a document broken by "${doc.bad}"`);
    } else if (e.error) {
      problems.push(`ethers refused a valid document: ${e.error}`);
    } else if (ours.error) {
      problems.push(`we refused a valid document: ${ours.error}`);
    } else {
      if (ours.digest !== e.digest) problems.push(`digest: ours ${ours.digest}, ethers ${e.digest}`);
      if (ours.recovered !== wallet.address)
        problems.push(`ethers' signature recovers with us to ${ours.recovered}, want ${wallet.address}`);
      let theirs;
      try {
        theirs = verifyTypedData(doc.domain, doc.types, doc.message, ours.signature);
      } catch (err) {
        theirs = `error: ${err.shortMessage || err.message}`;
      }
      if (theirs !== wallet.address)
        problems.push(`our signature verifies with ethers to ${theirs}, want ${wallet.address}`);
      if (ours.signature !== ethersSig)
        problems.push(`RFC 6979 signatures differ: ours ${ours.signature}, ethers ${ethersSig}`);
    }
    if (problems.length === 0) {
      passed++;
      if (doc.bad) refusedBoth++;
      continue;
    }
    failed++;
    if (failed <= 5) {
      console.error(`--- case ${i} (seed ${SEED}) FAILED:\n  ${problems.join('\n  ')}`);
      console.error(`  document: ${JSON.stringify(doc.typed)}`);
      console.error(`  ethers: ${JSON.stringify(e)}  ours: ${JSON.stringify(ours)}`);
    }
  }
  console.log(`eip712 crosscheck: ${passed} passed, ${failed} failed ` +
    `(seed ${SEED}; ${refusedBoth} of them malformed documents both refused)`);
  process.exit(failed === 0 && passed === COUNT ? 0 : 1);
}

main().catch((e) => {
  console.error(`eip712 crosscheck: FAIL: ${e.stack || e}`);
  process.exit(1);
});
