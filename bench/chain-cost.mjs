// SPDX-License-Identifier: Apache-2.0
// Chain cost of OpenSeed (benchmark issue #8, item 6): reads every transaction a devnet chain holds
// in a block range and reports, per function of the escrow (OpenSeedChannels) and the token
// (TestUSDC), how many were sent, how many reverted, and their gas, per sender too (named by
// --label); a --window sub-range is reported the same way so scripts/bench.sh can turn the count of
// its load into transactions per 1,000 paid requests. count includes reverted transactions (they are
// on-chain transactions too); gas min/median/max/total are over the successful ones only, and the
// reverted ones are listed with their gas. Selectors are decoded with the committed ABIs in
// contracts/out; calls elsewhere show as "other".
//
// --measure-open then measures the calls the daemons never make, with anvil's development account 4
// (public key of the "test ... junk" mnemonic: only for a local chain): the buyer opens with
// openWithAuthorization, so it mints 10 test USDC, approves exactly 1 USDC, open()s a 1 USDC channel
// to the first --label seller* (approve again, topUp 1 USDC); and the sellers answer a close request
// with a claim and never call close(), so it opens a second channel with itself as seller, claims
// 0.3 USDC and closes with a 0.5 USDC voucher. Its own claim pays a seller that already holds USDC;
// a seller's first claim ever costs about 17,000 gas more (the zero balance slot). These transactions
// are sent after the scan, so they never fall in the scanned range.
//
// JSON (--json FILE): {chain_id, escrow, usdc, scan_seconds, scan: {from, to, transactions,
// by_function: {NAME: {contract, count, gas_min, gas_median, gas_max, gas_total, reverted,
// reverted_gas_total}}, by_sender: {LABEL|ADDRESS: {address, count, by_function}}, reverted_txs},
// window: same shape or null, measured: {approve, open, topUp, mint, claim, close} or null,
// measured_info}.
//
// Usage: node bench/chain-cost.mjs --rpc URL --escrow 0x.. --usdc 0x.. [--from-block N]
//          [--to-block N|latest] [--window FROM:TO] [--label NAME=0xADDR ...] [--measure-open]
//          [--json FILE]
// Exit status: 0 done, 1 an RPC or chain error, 2 bad arguments.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'tools', 'package.json'));
let ethers;
try {
  ethers = require('ethers');
} catch (e) {
  console.error(`chain-cost: cannot load ethers from tools/node_modules (run scripts/setup.sh): ${e.message}`);
  process.exit(1);
}

const MNEMONIC = 'test test test test test test test test test test test junk';
const MEASURE_ACCOUNT = 4;
const USDC = 1_000_000n; // micro-USDC per USDC
const CONCURRENCY = 16; // blocks fetched at once (ethers batches them into few HTTP requests)
const TX_TIMEOUT_MS = 60_000;
const USAGE =
  'usage: node bench/chain-cost.mjs --rpc URL --escrow 0x.. --usdc 0x.. [--from-block N] ' +
  '[--to-block N|latest] [--window FROM:TO] [--label NAME=0xADDR ...] [--measure-open] [--json FILE]';

class ArgError extends Error {}

function die(msg, code) {
  console.error(`chain-cost: ${msg}`);
  process.exit(code);
}

function blockNumber(s, what) {
  if (!/^[0-9]{1,15}$/.test(s)) throw new ArgError(`${what} must be a block number, got "${s}"`);
  return Number(s);
}

function address(s, what) {
  if (typeof s !== 'string' || !ethers.isAddress(s) || !/^0x[0-9a-fA-F]{40}$/.test(s))
    throw new ArgError(`${what} must be a 0x address of 40 hex digits, got "${s}"`);
  return ethers.getAddress(s.toLowerCase());
}

function parseArgs(argv) {
  const o = { from: 0, to: 'latest', window: null, labels: [], measure: false, json: null };
  const value = (i) => {
    if (i + 1 >= argv.length) throw new ArgError(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    switch (k) {
      case '--rpc':
        o.rpc = value(i++);
        if (!/^https?:\/\/\S+$/.test(o.rpc)) throw new ArgError(`--rpc must be an http(s) URL, got "${o.rpc}"`);
        break;
      case '--escrow':
        o.escrow = address(value(i++), '--escrow');
        break;
      case '--usdc':
        o.usdc = address(value(i++), '--usdc');
        break;
      case '--from-block':
        o.from = blockNumber(value(i++), '--from-block');
        break;
      case '--to-block': {
        const v = value(i++);
        o.to = v === 'latest' ? 'latest' : blockNumber(v, '--to-block');
        break;
      }
      case '--window': {
        const v = value(i++);
        const m = /^([0-9]+):([0-9]+)$/.exec(v);
        if (!m) throw new ArgError(`--window must be FROM:TO block numbers, got "${v}"`);
        o.window = { from: blockNumber(m[1], '--window FROM'), to: blockNumber(m[2], '--window TO') };
        if (o.window.from > o.window.to) throw new ArgError(`--window ${v}: FROM is after TO`);
        break;
      }
      case '--label': {
        const v = value(i++);
        const eq = v.indexOf('=');
        if (eq <= 0) throw new ArgError(`--label must be NAME=0xADDR, got "${v}"`);
        const name = v.slice(0, eq);
        if (!/^[A-Za-z0-9_.-]{1,40}$/.test(name))
          throw new ArgError(`--label name "${name}" must be 1-40 letters, digits, _ . or -`);
        const addr = address(v.slice(eq + 1), `--label ${name}`);
        if (o.labels.some((l) => l.name === name)) throw new ArgError(`--label ${name} given twice`);
        const dup = o.labels.find((l) => l.address === addr);
        if (dup) throw new ArgError(`--label ${name} and ${dup.name} name the same address`);
        o.labels.push({ name, address: addr });
        break;
      }
      case '--measure-open':
        o.measure = true;
        break;
      case '--json':
        o.json = value(i++);
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new ArgError(`unexpected argument "${k}"`);
    }
  }
  for (const k of ['rpc', 'escrow', 'usdc']) if (!o[k]) throw new ArgError(`--${k} is required`);
  if (o.json) {
    const dir = path.dirname(path.resolve(o.json));
    if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory())
      throw new ArgError(`--json ${o.json}: there is no folder ${dir}`);
  }
  if (o.escrow === o.usdc) throw new ArgError('--escrow and --usdc are the same address');
  if (typeof o.to === 'number' && o.from > o.to)
    throw new ArgError(`--from-block ${o.from} is after --to-block ${o.to}`);
  return o;
}

function artifact(name) {
  const file = path.join(root, 'contracts', 'out', `${name}.json`);
  try {
    const a = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (!Array.isArray(a.abi)) throw new Error('no abi');
    return a;
  } catch (e) {
    throw new Error(`cannot read ${file}: ${e.message}`);
  }
}

const hexNum = (h) => Number(BigInt(h));

// ---------------------------------------------------------------------------------------------
// Reading the chain

// Fetches blocks [from, to] with their transactions and receipts, CONCURRENCY at a time, in order.
async function fetchBlocks(provider, from, to) {
  let blockReceipts = true; // eth_getBlockReceipts (anvil has it); per-transaction receipts otherwise
  const one = async (n) => {
    const tag = ethers.toQuantity(n);
    const block = await provider.send('eth_getBlockByNumber', [tag, true]);
    if (!block) throw new Error(`the chain has no block ${n}`);
    let receipts = null;
    if (block.transactions.length > 0 && blockReceipts) {
      try {
        receipts = await provider.send('eth_getBlockReceipts', [tag]);
      } catch (e) {
        if (!/method not found|not supported|does not exist|unknown method/i.test(e.message || '')) throw e;
        blockReceipts = false;
      }
    }
    const count = block.transactions.length;
    if (count > 0 && (!Array.isArray(receipts) || receipts.length !== count))
      receipts = await Promise.all(
        block.transactions.map((tx) => provider.send('eth_getTransactionReceipt', [tx.hash])));
    const byHash = new Map((receipts || []).map((r) => [r?.transactionHash?.toLowerCase(), r]));
    return block.transactions.map((tx) => {
      const r = byHash.get(tx.hash.toLowerCase());
      if (!r) throw new Error(`no receipt for transaction ${tx.hash} in block ${n}`);
      return { block: n, hash: tx.hash, from: tx.from, to: tx.to, input: tx.input ?? tx.data ?? '0x', receipt: r };
    });
  };
  const txs = [];
  for (let start = from; start <= to; start += CONCURRENCY) {
    const end = Math.min(to, start + CONCURRENCY - 1);
    const batch = [];
    for (let n = start; n <= end; n++) batch.push(one(n));
    for (const list of await Promise.all(batch)) txs.push(...list);
  }
  return txs;
}

// ---------------------------------------------------------------------------------------------
// Classifying and summarising

function classifier(opts) {
  const ifaces = {
    escrow: new ethers.Interface(artifact('OpenSeedChannels').abi),
    usdc: new ethers.Interface(artifact('TestUSDC').abi),
  };
  const contracts = new Map([
    [opts.escrow.toLowerCase(), 'escrow'],
    [opts.usdc.toLowerCase(), 'usdc'],
  ]);
  // Functions are keyed by their bare name (claim, approve, ...); the few names both ABIs have
  // (eip712Domain) and the names made up here carry the contract, so no two contracts share a key.
  const names = (i) => new Set(i.fragments.filter((f) => f.type === 'function').map((f) => f.name));
  const escrowNames = names(ifaces.escrow);
  const shared = new Set([...names(ifaces.usdc)].filter((n) => escrowNames.has(n)));
  return (tx) => {
    if (!tx.to) {
      const created = tx.receipt.contractAddress ? tx.receipt.contractAddress.toLowerCase() : '';
      const contract = contracts.get(created) || 'other';
      return { contract, fn: `deploy(${contract})` };
    }
    const contract = contracts.get(tx.to.toLowerCase()) || 'other';
    const input = tx.input.toLowerCase();
    if (input === '0x' || input === '') return { contract, fn: `eth_transfer(${contract})` };
    const selector = input.slice(0, 10);
    const f = contract === 'other' ? null : ifaces[contract].getFunction(selector);
    if (!f) return { contract, fn: `${contract}:${selector}` };
    return { contract, fn: shared.has(f.name) ? `${contract}.${f.name}` : f.name };
  };
}

// The median of a sorted list: the mean of the two middle values (rounded down) for an even count.
function median(sorted) {
  const n = sorted.length;
  if (n === 0) return null;
  const m = Math.floor(n / 2);
  return n % 2 ? sorted[m] : Math.floor((sorted[m - 1] + sorted[m]) / 2);
}

function newBucket() {
  return { contract: null, count: 0, reverted: 0, gas: [], revertedGas: 0 };
}

function finish(b) {
  const gas = b.gas.slice().sort((x, y) => x - y);
  return {
    contract: b.contract,
    count: b.count,
    gas_min: gas.length ? gas[0] : null,
    gas_median: median(gas),
    gas_max: gas.length ? gas[gas.length - 1] : null,
    gas_total: gas.reduce((s, g) => s + g, 0),
    reverted: b.reverted,
    reverted_gas_total: b.revertedGas,
  };
}

// Counts every transaction (reverted ones included: they are on-chain transactions too) and takes
// the gas statistics over the successful ones only, since a revert's gas says nothing of the call.
function summarise(txs, from, to, labelOf, classify) {
  const byFn = new Map();
  const bySender = new Map();
  const reverted = [];
  const add = (map, key, contract, gas, ok) => {
    if (!map.has(key)) map.set(key, newBucket());
    const b = map.get(key);
    b.contract = contract;
    b.count++;
    if (ok) b.gas.push(gas);
    else {
      b.reverted++;
      b.revertedGas += gas;
    }
  };
  for (const tx of txs) {
    if (tx.block < from || tx.block > to) continue;
    const { contract, fn } = classify(tx);
    const gas = hexNum(tx.receipt.gasUsed);
    const ok = hexNum(tx.receipt.status ?? '0x1') === 1;
    const sender = labelOf(tx.from);
    add(byFn, fn, contract, gas, ok);
    if (!bySender.has(sender))
      bySender.set(sender, { address: ethers.getAddress(tx.from), count: 0, fns: new Map() });
    const s = bySender.get(sender);
    s.count++;
    add(s.fns, fn, contract, gas, ok);
    if (!ok) reverted.push({ block: tx.block, hash: tx.hash, function: fn, from: sender, gas_used: gas });
  }
  const fnObj = (map) => Object.fromEntries([...map.entries()].sort(fnOrder).map(([k, b]) => [k, finish(b)]));
  return {
    from,
    to,
    transactions: txs.filter((t) => t.block >= from && t.block <= to).length,
    by_function: fnObj(byFn),
    by_sender: Object.fromEntries(
      [...bySender.entries()].sort((a, b) => b[1].count - a[1].count || a[0].localeCompare(b[0]))
        .map(([k, s]) => [k, { address: s.address, count: s.count, by_function: fnObj(s.fns) }])),
    reverted_txs: reverted,
  };
}

const CONTRACT_ORDER = { escrow: 0, usdc: 1, other: 2 };
function fnOrder([ka, a], [kb, b]) {
  return (CONTRACT_ORDER[a.contract] - CONTRACT_ORDER[b.contract]) || b.count - a.count || ka.localeCompare(kb);
}

// ---------------------------------------------------------------------------------------------
// Measuring approve + open + topUp (and a seller's claim + close) with anvil's account 4

async function measureOpen(provider, opts) {
  const key = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${MEASURE_ACCOUNT}`)
    .connect(provider);
  const me = key.address;
  // Counts nonces itself: the provider answers a repeated eth_getTransactionCount from a 250 ms
  // cache, which would hand the second transaction the first one's nonce.
  const wallet = new ethers.NonceManager(key);
  if ((await provider.getBalance(me)) === 0n)
    throw new Error(`anvil development account ${MEASURE_ACCOUNT} (${me}) holds no ETH: is this an anvil devnet?`);
  const escrowAbi = artifact('OpenSeedChannels').abi;
  const iface = new ethers.Interface(escrowAbi);
  const usdc = new ethers.Contract(opts.usdc, artifact('TestUSDC').abi, wallet);
  const escrow = new ethers.Contract(opts.escrow, escrowAbi, wallet);

  const sellerLabel = opts.labels.find((l) => l.name.startsWith('seller'));
  // Without a seller label, a fixed address nobody holds the key of (the channel is never used).
  const seller = sellerLabel
    ? sellerLabel.address
    : ethers.getAddress(ethers.dataSlice(ethers.id('openseed chain-cost seller'), 12));

  const gas = {};
  const blocks = [];
  const send = async (what, p) => {
    let tx;
    try {
      tx = await p;
    } catch (e) {
      throw new Error(`${what} was refused: ${e.shortMessage || e.message}`);
    }
    const r = await tx.wait(1, TX_TIMEOUT_MS);
    if (!r || r.status !== 1) throw new Error(`${what} reverted (transaction ${tx.hash})`);
    gas[what] = Number(r.gasUsed);
    blocks.push(r.blockNumber);
    return r;
  };
  const opened = (r) => {
    for (const l of r.logs) {
      if (l.address.toLowerCase() !== opts.escrow.toLowerCase()) continue;
      const ev = iface.parseLog(l);
      if (ev && ev.name === 'ChannelOpened') return ev.args.channelId;
    }
    throw new Error(`open (transaction ${r.hash}) emitted no ChannelOpened`);
  };
  const rand32 = () => ethers.hexlify(ethers.randomBytes(32));

  await send('mint', usdc.mint(me, 10n * USDC));
  // Each transfer gets an allowance of exactly its amount, as a buyer approving each deposit would
  // give (the transfer then clears the allowance, which refunds some gas).
  await send('approve', usdc.approve(opts.escrow, USDC));
  // The contract stores the commitment as it is (any 32 bytes); only seller and signer must be
  // non-zero, and the salt must give a channel id not used before.
  const channelId = opened(await send('open', escrow.open(seller, me, rand32(), USDC, rand32())));
  await send('approve (top-up)', usdc.approve(opts.escrow, USDC));
  await send('topUp', escrow.topUp(channelId, USDC));

  // The seller daemons never call close() (a close request is answered with a claim), so the
  // measurement makes one: a second channel whose seller is account 4 itself, a claim of 0.3 USDC
  // (nonce 1), then a close with a voucher of 0.5 USDC (nonce 2) that pays 0.2 USDC and refunds 0.5.
  await send('approve (own channel)', usdc.approve(opts.escrow, USDC));
  const own = opened(await send('open (own channel)', escrow.open(me, me, rand32(), USDC, rand32())));
  const voucher = async (cumulative, nonce) => {
    const meta = rand32();
    const digest = await escrow.hashSpendingAuth(own, cumulative, nonce, meta);
    return [own, cumulative, nonce, meta, key.signingKey.sign(digest).serialized];
  };
  await send('claim', escrow.claim(...(await voucher(300_000n, 1n))));
  await send('close', escrow.close(...(await voucher(500_000n, 2n))));
  return {
    measured: {
      approve: gas.approve, open: gas.open, topUp: gas.topUp, mint: gas.mint, claim: gas.claim, close: gas.close,
    },
    info: {
      account: me,
      seller,
      seller_label: sellerLabel ? sellerLabel.name : null,
      channel_id: channelId,
      own_channel_id: own,
      from: Math.min(...blocks),
      to: Math.max(...blocks),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Output

const fmt = (v) => (v === null || v === undefined ? '-' : String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ','));

// right: the indexes of the columns aligned to the right (the numbers).
function table(rows, headers, right) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c)));
  const w = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const pad = (c, i) => (right.includes(i) ? c.padStart(w[i]) : c.padEnd(w[i]));
  return cells.map((r) => r.map(pad).join('  ').trimEnd()).join('\n');
}

function printSection(title, s) {
  const lines = [`${title}: blocks ${s.from}..${s.to}, ${s.transactions} transactions`];
  const fnRows = Object.entries(s.by_function).map(([k, b]) => [
    b.contract, k, fmt(b.count), fmt(b.reverted), fmt(b.gas_min), fmt(b.gas_median), fmt(b.gas_max)]);
  if (fnRows.length)
    lines.push(table(fnRows, ['contract', 'function', 'count', 'reverted', 'gas min', 'gas median', 'gas max'],
      [2, 3, 4, 5, 6]));
  const senderRows = Object.entries(s.by_sender).map(([k, snd]) => [
    k, fmt(snd.count),
    Object.entries(snd.by_function)
      .map(([f, b]) => `${f} ${b.count}${b.reverted ? ` (${b.reverted} reverted)` : ''}`).join(', ')]);
  if (senderRows.length) lines.push('', table(senderRows, ['sender', 'count', 'functions'], [1]));
  for (const r of s.reverted_txs)
    lines.push(`  reverted: block ${r.block} ${r.function} from ${r.from} gas ${fmt(r.gas_used)} ${r.hash}`);
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------------------------------------

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof ArgError) die(`${e.message} (see --help)`, 2);
    throw e;
  }
  const req = new ethers.FetchRequest(opts.rpc);
  req.timeout = 30_000;
  const provider = new ethers.JsonRpcProvider(req, undefined, { staticNetwork: true, pollingInterval: 50 });
  const t0 = performance.now();
  try {
    let chainId;
    try {
      chainId = BigInt(await provider.send('eth_chainId', []));
    } catch (e) {
      throw new Error(`no answer from the RPC at ${opts.rpc}: ${e.shortMessage || e.message}`);
    }
    const head = hexNum(await provider.send('eth_blockNumber', []));
    const to = opts.to === 'latest' ? head : opts.to;
    if (to > head) throw new ArgError(`--to-block ${to} is past the chain's head, block ${head}`);
    if (opts.from > to) throw new ArgError(`--from-block ${opts.from} is after the last block, ${to}`);
    if (opts.window && (opts.window.from < opts.from || opts.window.to > to))
      throw new ArgError(
        `--window ${opts.window.from}:${opts.window.to} is not inside the scan ${opts.from}..${to}`);
    for (const [k, a] of [['--escrow', opts.escrow], ['--usdc', opts.usdc]])
      if ((await provider.getCode(a)) === '0x') throw new Error(`no contract at ${k} ${a} on chain ${chainId}`);
    let token;
    try {
      token = await new ethers.Contract(opts.escrow, artifact('OpenSeedChannels').abi, provider).token();
    } catch (e) {
      throw new Error(`--escrow ${opts.escrow} does not answer token(): is it OpenSeedChannels?`);
    }
    if (token.toLowerCase() !== opts.usdc.toLowerCase())
      throw new Error(`the escrow's token() is ${token}, not --usdc ${opts.usdc}`);

    const names = new Map(opts.labels.map((l) => [l.address.toLowerCase(), l.name]));
    const labelOf = (a) => names.get(a.toLowerCase()) || ethers.getAddress(a);
    const classify = classifier(opts);

    const txs = await fetchBlocks(provider, opts.from, to);
    const scanSeconds = (performance.now() - t0) / 1000;
    const scan = summarise(txs, opts.from, to, labelOf, classify);
    const window = opts.window ? summarise(txs, opts.window.from, opts.window.to, labelOf, classify) : null;

    let measured = null;
    let measuredInfo = null;
    if (opts.measure) ({ measured, info: measuredInfo } = await measureOpen(provider, opts));

    console.log(`chain ${chainId}: scanned ${to - opts.from + 1} blocks, ${txs.length} transactions, ` +
      `in ${scanSeconds.toFixed(2)} s (gas figures are of the transactions that did not revert)\n`);
    printSection('scan', scan);
    if (window) {
      console.log('');
      printSection('window', window);
    }
    if (measured) {
      const m = measuredInfo;
      console.log(`\nmeasured: blocks ${m.from}..${m.to} (after the scan), ` +
        `anvil account ${MEASURE_ACCOUNT} ${m.account}`);
      const why = {
        mint: '10 test USDC to itself',
        approve: 'the escrow, 1 USDC (again before topUp and the second open)',
        open: `1 USDC channel to ${m.seller_label || 'a fixed unused address'} ${m.seller}`,
        topUp: '1 USDC on that channel',
        claim: 'as seller of its own channel: 0.3 USDC, voucher nonce 1',
        close: 'as seller: voucher 0.5 USDC, nonce 2 (pays 0.2, refunds 0.5)',
      };
      const rows = Object.entries(measured).map(([k, g]) => [k, fmt(g), why[k] || '']);
      console.log(table(rows, ['call', 'gas', 'what'], [1]));
    }
    if (opts.json) {
      const out = {
        chain_id: Number(chainId),
        escrow: opts.escrow,
        usdc: opts.usdc,
        scan_seconds: Number(scanSeconds.toFixed(3)),
        scan,
        window,
        measured,
        measured_info: measuredInfo,
      };
      const tmp = `${opts.json}.tmp${process.pid}`;
      try {
        fs.writeFileSync(tmp, `${JSON.stringify(out, null, 2)}\n`);
        fs.renameSync(tmp, opts.json);
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw new Error(`cannot write --json ${opts.json}: ${e.message}`);
      }
    }
  } finally {
    provider.destroy();
  }
}

main().catch((e) => {
  if (e instanceof ArgError) die(`${e.message} (see --help)`, 2);
  // A whole error object can carry request data; print its short message on one line only.
  const msg = (e.shortMessage || e.message || String(e)).split('\n')[0];
  die(msg, 1);
});
