// SPDX-License-Identifier: Apache-2.0
// Gathers, after the load of scripts/soak.sh, everything its pass/fail check (bench/soak-check.mjs)
// needs into one JSON file, so the check itself reads nothing but that file (and a doctored copy
// of it must fail: that is how the check is shown able to fail). In order: the load generator's
// totals (path_bench --json lines), the memory and descriptor samples, then, once the buyer has
// nothing in flight and no seller a pending request, both ledgers straight from their SQLite files
// (read-only: every row, where the management APIs show only the latest 100 or 1,000) and the same
// figures through the management APIs, then a settlement of each seller (POST /admin/v1/settle),
// the sellers' settlement rows, and each channel as the escrow contract holds it (getChannel).
// Amounts are decimal strings of micro-USDC; SQLite sums integers exactly (or fails on overflow).
//
// Usage: node bench/soak-collect.mjs --work DIR --out FILE.json
//   DIR holds meta.json (written by soak.sh), load-*.jsonl, memory.jsonl and baseline.json; the
//   devnet's addresses come from the environment (soak.sh exports devnet.env).
// Exit status: 0 written (whatever it found), 1 it could not collect, 2 bad arguments.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SETTLE_TIMEOUT_MS = 180_000;
const IDLE_TIMEOUT_MS = 120_000;

function die(msg, code = 1) {
  console.error(`soak-collect: ${msg}`);
  process.exit(code);
}

const args = process.argv.slice(2);
const opt = {};
for (let i = 0; i < args.length; i += 2) {
  if (!['--work', '--out'].includes(args[i]) || args[i + 1] === undefined)
    die('usage: node bench/soak-collect.mjs --work DIR --out FILE.json', 2);
  opt[args[i].slice(2)] = args[i + 1];
}
if (!opt.work || !opt.out) die('usage: node bench/soak-collect.mjs --work DIR --out FILE.json', 2);

const problems = []; // what could not be collected (the check fails on any)
const need = (k) => process.env[k] || die(`${k} is not set (source devnet.env first)`);
const lc = (s) => String(s).toLowerCase();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const readLines = (f) => fs.existsSync(f)
  ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
  : [];

// --------------------------------------------------------------------------- SQLite (read-only)

function sql(db, q) {
  let out;
  try {
    out = execFileSync('sqlite3', ['-readonly', '-json', '-bail', db, q],
                       { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    die(`sqlite3 ${db}: ${(e.stderr || e.message).trim()}`);
  }
  return out.trim() ? JSON.parse(out) : [];
}
// Integers leave SQLite as text, so none passes through a JavaScript number.
const txt = (col) => `CAST(${col} AS TEXT)`;

// --------------------------------------------------------------------------- HTTP

async function getJson(url, headers = {}, init = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(init.timeout ?? 30_000), ...init });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${init.method || 'GET'} ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

// The same, or null with the failure among the problems (a dead daemon fails the soak, with the
// rest of the figures still collected).
async function tryJson(what, url, headers = {}, init = {}) {
  try {
    return await getJson(url, headers, init);
  } catch (e) {
    problems.push(`${what}: ${e.cause?.code ?? ''} ${e.message}`.trim());
    return null;
  }
}

const buyer = need('OPENSEED_BUYER');
const sellers = [1, 2].map((i) => ({
  name: `seller${i}`,
  address: lc(need(`OPENSEED_SELLER${i}_ADDRESS`)),
  admin: need(`OPENSEED_SELLER${i}_ADMIN`),
  token: fs.readFileSync(need(`OPENSEED_SELLER${i}_TOKEN`), 'utf8').trim(),
  db: path.join(need(`OPENSEED_SELLER${i}_DATA_DIR`), 'seller.db'),
  pid: Number(need(`OPENSEED_SELLER${i}_PID`)),
}));
const buyerDb = path.join(need('OPENSEED_BUYER_DATA_DIR'), 'buyer.db');
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const bearer = (s) => ({ Authorization: `Bearer ${s.token}` });

const work = opt.work;
const meta = JSON.parse(fs.readFileSync(path.join(work, 'meta.json'), 'utf8'));
const baseline = fs.existsSync(path.join(work, 'baseline.json'))
  ? JSON.parse(fs.readFileSync(path.join(work, 'baseline.json'), 'utf8')) : null;
const load = fs.readdirSync(work).filter((f) => /^load-.*\.jsonl$/.test(f)).sort()
  .flatMap((f) => readLines(path.join(work, f)).map((l) => ({ file: f, ...l })));
const memory = readLines(path.join(work, 'memory.jsonl'));

// --------------------------------------------------------------------------- quiesce

// The buyer has nothing in flight and no seller a pending request: the figures are final.
const t0 = Date.now();
let idle = false;
let lastErr = '';
while (Date.now() - t0 < IDLE_TIMEOUT_MS) {
  const dead = [['buyer', Number(need('OPENSEED_BUYER_PID'))], ...sellers.map((s) => [s.name, s.pid])]
    .filter(([, p]) => !alive(p)).map(([n]) => n);
  if (dead.length) {
    lastErr = `${dead.join(' and ')} not running`;
    break;
  }
  try {
    const { channels } = await getJson(`${buyer}/openseed/v1/channels`);
    const pending = sellers.map((s) => Number(sql(s.db,
      "SELECT count(*) AS n FROM requests WHERE status = 'pending'")[0].n));
    if (channels.every((c) => BigInt(c.in_flight) === 0n) && pending.every((n) => n === 0)) {
      idle = true;
      break;
    }
    lastErr = `in flight: ${channels.map((c) => c.in_flight).join(', ')}; pending: ${pending.join(', ')}`;
  } catch (e) {
    lastErr = `the buyer: ${e.message}`;
  }
  await sleep(250);
}
if (!idle) problems.push(`not idle after ${IDLE_TIMEOUT_MS / 1000} s (${lastErr})`);
const alive_before = Object.fromEntries([['buyer', Number(need('OPENSEED_BUYER_PID'))],
  ['registry', Number(need('OPENSEED_REGISTRY_PID'))], ...sellers.map((s) => [s.name, s.pid])]
  .map(([n, p]) => [n, alive(p)]));

// --------------------------------------------------------------------------- the buyer's ledger

const buyerLedger = {
  requests_by_outcome: sql(buyerDb, `SELECT outcome, count(*) AS n, ${txt('sum(cost)')} AS cost
      FROM requests GROUP BY outcome ORDER BY outcome`),
  requests_by_api: sql(buyerDb, 'SELECT api, count(*) AS n FROM requests GROUP BY api ORDER BY api'),
  requests_by_channel: sql(buyerDb, `SELECT lower(hex(channel_id)) AS channel_id,
      lower(hex(seller)) AS seller, count(*) AS n, ${txt('sum(cost)')} AS cost,
      ${txt('sum(estimate)')} AS estimate, ${txt('max(id)')} AS max_id
      FROM requests GROUP BY channel_id ORDER BY channel_id`),
  channels: sql(buyerDb, `SELECT lower(hex(id)) AS channel_id, lower(hex(seller)) AS seller, state,
      ${txt('deposit')} AS deposit, ${txt('consumed')} AS consumed,
      ${txt('authorized')} AS authorized, ${txt('nonce')} AS nonce FROM channels ORDER BY id`),
  vouchers_by_channel: sql(buyerDb, `SELECT lower(hex(channel_id)) AS channel_id, count(*) AS n,
      ${txt('max(cumulative)')} AS max_cumulative FROM vouchers GROUP BY channel_id`),
  adjustments: Number(sql(buyerDb, 'SELECT count(*) AS n FROM adjustments')[0].n),
  total_requests: Number(sql(buyerDb, 'SELECT count(*) AS n FROM requests')[0].n),
};
const buyerApi = {
  channels: (await tryJson('the buyer\'s channels', `${buyer}/openseed/v1/channels`))?.channels ?? null,
  spend: await tryJson('the buyer\'s spend', `${buyer}/openseed/v1/spend`),
};

// --------------------------------------------------------------------------- the sellers' ledgers

const sellerOut = [];
for (const s of sellers) {
  const channels = sql(s.db, `SELECT lower(hex(id)) AS channel_id, lower(hex(payer)) AS payer,
      ${txt('deposit')} AS deposit, ${txt('consumed')} AS consumed, ${txt('claimed')} AS claimed,
      ${txt('requests')} AS requests, ${txt('v_cumulative')} AS v_cumulative FROM channels ORDER BY id`);
  for (const c of channels) {
    // the seller's own bound on a claim (src/seller/ledger.c, sql_cand_last_*): the slack of the
    // finished, charged request with the highest nonce
    const last = sql(s.db, `SELECT ${txt('v.estimate')} AS estimate, ${txt('r.cost')} AS cost,
        ${txt('v.nonce')} AS nonce FROM vouchers v JOIN requests r
        ON r.channel_id = v.channel_id AND r.nonce = v.nonce
        WHERE v.channel_id = x'${c.channel_id}' AND r.status = 'finished' AND r.cost != 0
        ORDER BY v.nonce DESC LIMIT 1`)[0];
    c.last_charged = last || null;
  }
  sellerOut.push({
    name: s.name,
    address: s.address,
    requests_by_status: sql(s.db, `SELECT status, coalesce(outcome, '') AS outcome, count(*) AS n,
        ${txt('sum(cost)')} AS cost FROM requests GROUP BY status, outcome ORDER BY status, outcome`),
    requests_by_channel: sql(s.db, `SELECT lower(hex(channel_id)) AS channel_id, count(*) AS n,
        ${txt('sum(cost)')} AS cost, sum(status = 'finished') AS finished
        FROM requests GROUP BY channel_id ORDER BY channel_id`),
    vouchers: Number(sql(s.db, 'SELECT count(*) AS n FROM vouchers')[0].n),
    channels,
    api: {
      channels: (await tryJson(`${s.name}'s channels`, `${s.admin}/admin/v1/channels`, bearer(s)))?.channels ?? null,
      revenue: await tryJson(`${s.name}'s revenue`, `${s.admin}/admin/v1/revenue`, bearer(s)),
    },
  });
}

// --------------------------------------------------------------------------- settle, then the chain

for (const [i, s] of sellers.entries()) {
  const so = sellerOut[i];
  so.settle_report = await tryJson(`settling ${s.name}`, `${s.admin}/admin/v1/settle`,
    { ...bearer(s), 'Content-Type': 'application/json' },
    { method: 'POST', body: '{}', timeout: SETTLE_TIMEOUT_MS });
  so.settlements = sql(s.db, `SELECT lower(hex(channel_id)) AS channel_id, ${txt('nonce')} AS nonce,
      ${txt('cumulative')} AS cumulative, ${txt('amount')} AS amount, status, error
      FROM settlements ORDER BY id`);
}

const require = createRequire(path.join(root, 'tools', 'package.json'));
let ethers;
try {
  ({ ethers } = require('ethers'));
} catch (e) {
  die(`cannot load ethers from tools/node_modules (run scripts/setup.sh): ${e.message}`);
}
const abi = JSON.parse(fs.readFileSync(path.join(root, 'contracts', 'out', 'OpenSeedChannels.json'), 'utf8')).abi;
const provider = new ethers.JsonRpcProvider(need('OPENSEED_RPC'), Number(need('OPENSEED_CHAIN_ID')),
                                            { staticNetwork: true });
const escrow = new ethers.Contract(need('OPENSEED_ESCROW'), abi, provider);
const ids = new Set([...buyerLedger.channels.map((c) => c.channel_id),
                     ...sellerOut.flatMap((s) => s.channels.map((c) => c.channel_id))]);
const chain = {};
for (const id of [...ids].sort()) {
  const c = await escrow.getChannel(`0x${id}`);
  chain[id] = { payer: lc(c.payer).slice(2), seller: lc(c.seller).slice(2),
                deposit: c.deposit.toString(), claimed: c.claimed.toString(), closed: c.closed };
}
provider.destroy();

const doc = {
  collected: new Date().toISOString(),
  meta,
  wallet: lc(need('OPENSEED_BUYER_WALLET')).slice(2),
  baseline,
  load,
  memory,
  alive_at_end: alive_before,
  buyer: { ledger: buyerLedger, api: buyerApi },
  sellers: sellerOut,
  chain,
  problems,
};
fs.writeFileSync(opt.out, `${JSON.stringify(doc, null, 1)}\n`);
console.error(`soak-collect: wrote ${opt.out}`);
