// SPDX-License-Identifier: Apache-2.0
// The pass/fail verdict of scripts/soak.sh, from the one file bench/soak-collect.mjs wrote (or a
// result file this script wrote: its "raw" part is checked again, so a doctored copy can be fed
// back to show the check failing). A soak passes when all of these hold:
//
//  1. Load: every request the load generator sent was answered (2xx, the answer in it, a stream
//     ending with its final event and no error event), none left unfinished.
//  2. Memory: for each daemon (registry, seller1, seller2, buyer), over the samples taken under
//     load after the warm-up (meta.warmup_s), the mean of the last third against the mean of the
//     first third: RSS grows by at most max(10 %, 4 MiB), open descriptors by at most 8; and every
//     daemon is alive in every sample and at the end.
//  3. Records: requests sent == the buyer's ledger rows of the run (all "ok") == the sum of the
//     sellers' request rows (all finished "ok"); per channel, the buyer's row count and cost sum ==
//     the seller's, buyer consumed (ledger file and API) == seller consumed (ledger file and API) ==
//     each side's sum of costs, to the micro-USDC; the buyer's spend and the sellers' revenue
//     agree; no 402 adjustment was needed.
//  4. Settlement (each seller settled after the load): every claim confirmed; per channel, the
//     escrow's claimed == the seller's confirmed settlements, consumed <= claimed <= consumed +
//     the slack (estimate - cost) of the last charged request, claimed <= what the buyer signed,
//     and the escrow names the same payer and seller as both ledgers.
//
// Prints each daemon's numbers and every failed condition, writes the result (--json, --md) and
// ends with one line: "soak: N requests, E errors, PASS|FAIL". Exit status 0 PASS, 1 FAIL, 2 bad
// input.
//
// Usage: node bench/soak-check.mjs RAW_OR_RESULT.json [--json OUT.json] [--md OUT.md]
import fs from 'node:fs';

const DAEMONS = ['registry', 'seller1', 'seller2', 'buyer'];
const RSS_GROWTH_FRAC = 0.10;
const RSS_GROWTH_MIN_KB = 4096;
const FDS_GROWTH_MAX = 8;
const MIN_SAMPLES = 6; // under load, after the warm-up: two per third at the least

const argv = process.argv.slice(2);
const opt = { in: null, json: null, md: null };
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--json' || argv[i] === '--md') opt[argv[i].slice(2)] = argv[++i];
  else if (!opt.in && !argv[i].startsWith('--')) opt.in = argv[i];
  else { console.error(`soak-check: unknown argument ${argv[i]}`); process.exit(2); }
}
if (!opt.in) {
  console.error('usage: node bench/soak-check.mjs RAW_OR_RESULT.json [--json OUT.json] [--md OUT.md]');
  process.exit(2);
}
let input;
try {
  input = JSON.parse(fs.readFileSync(opt.in, 'utf8'));
} catch (e) {
  console.error(`soak-check: cannot read ${opt.in}: ${e.message}`);
  process.exit(2);
}
const raw = input.raw ?? input;

const failures = [];
const fail = (what) => failures.push(what);
const want = (ok, what) => { if (!ok) fail(what); return ok; };
const big = (v) => { try { return BigInt(v ?? 'x'); } catch { return null; } };
const hex = (a) => String(a ?? '').toLowerCase().replace(/^0x/, '');
const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
const mb = (kb) => (kb / 1024).toFixed(1);
const sumBig = (rows, f) => rows.reduce((a, r) => a + (big(f(r)) ?? 0n), 0n);

for (const p of raw.problems ?? []) fail(`collection: ${p}`);

// --------------------------------------------------------------------------- 1. load

const load = raw.load ?? [];
const tot = { sent: 0, ok: 0, failed: 0, unfinished: 0 };
const byKind = {};
for (const l of load) {
  const a = l.all ?? {};
  const kind = `${l.api ?? 'openai'} ${l.mode}`;
  const k = (byKind[kind] ??= { sent: 0, ok: 0, failed: 0, unfinished: 0, p50_ms: [], p99_ms: [] });
  for (const f of ['sent', 'ok', 'failed', 'unfinished']) {
    const v = Number(a[f]);
    want(Number.isInteger(v) && v >= 0, `load ${l.file ?? ''} ${l.phase}: no "all.${f}" count`);
    tot[f] += Number.isInteger(v) ? v : 0;
    k[f] += Number.isInteger(v) ? v : 0;
  }
  if (!/warmup/.test(l.file ?? '')) { k.p50_ms.push(l.p50_ms); k.p99_ms.push(l.p99_ms); }
  if (a.statuses) fail(`load ${l.phase}: non-2xx replies: ${a.statuses}`);
  want(l.strict === true || l.mode !== 'stream', `load ${l.phase}: streams not checked strictly`);
}
const errors = tot.failed + tot.unfinished;
want(load.length > 0 && tot.sent > 0, 'load: no request was sent');
want(tot.sent === tot.ok + tot.failed + tot.unfinished,
     `load: sent ${tot.sent} != answered ${tot.ok} + failed ${tot.failed} + unfinished ${tot.unfinished}`);
want(tot.failed === 0, `load: ${tot.failed} requests failed`);
want(tot.unfinished === 0, `load: ${tot.unfinished} requests unanswered when the load ended`);

// --------------------------------------------------------------------------- 2. memory

const meta = raw.meta ?? {};
const warm = Number(meta.warmup_s ?? 0);
const samples = (raw.memory ?? []).filter((m) => m.phase === 'load');
const memory = {};
for (const n of DAEMONS) {
  const all = samples.map((m) => ({ t: m.t, ...(m.procs?.[n] ?? { alive: false }) }));
  const s = all.filter((x) => x.t >= warm);
  const dead = all.filter((x) => !x.alive || !(x.rss_kb > 0));
  want(dead.length === 0, `${n}: not running in ${dead.length} of ${all.length} samples`);
  want(raw.alive_at_end?.[n] === true, `${n}: not running at the end`);
  const m = { samples: all.length, judged: s.length };
  memory[n] = m;
  if (!want(s.length >= MIN_SAMPLES, `${n}: ${s.length} samples after the ${warm} s warm-up (need ${MIN_SAMPLES})`))
    continue;
  const third = Math.floor(s.length / 3);
  const first = s.slice(0, third), last = s.slice(s.length - third);
  Object.assign(m, {
    rss_start_kb: all[0].rss_kb, rss_end_kb: all[all.length - 1].rss_kb,
    fds_start: all[0].fds, fds_end: all[all.length - 1].fds,
    rss_first_kb: Math.round(mean(first.map((x) => x.rss_kb))),
    rss_last_kb: Math.round(mean(last.map((x) => x.rss_kb))),
    rss_max_kb: Math.max(...all.map((x) => x.rss_kb)),
    fds_first: Number(mean(first.map((x) => x.fds)).toFixed(2)),
    fds_last: Number(mean(last.map((x) => x.fds)).toFixed(2)),
    fds_max: Math.max(...all.map((x) => x.fds)),
  });
  m.rss_growth_kb = m.rss_last_kb - m.rss_first_kb;
  m.rss_limit_kb = Math.round(Math.max(RSS_GROWTH_FRAC * m.rss_first_kb, RSS_GROWTH_MIN_KB));
  m.fds_growth = Number((m.fds_last - m.fds_first).toFixed(2));
  m.flat = m.rss_growth_kb <= m.rss_limit_kb && m.fds_growth <= FDS_GROWTH_MAX;
  want(m.rss_growth_kb <= m.rss_limit_kb,
       `${n}: RSS grew ${mb(m.rss_growth_kb)} MiB (first third ${mb(m.rss_first_kb)}, last third ` +
       `${mb(m.rss_last_kb)}), over the ${mb(m.rss_limit_kb)} MiB allowed`);
  want(m.fds_growth <= FDS_GROWTH_MAX,
       `${n}: open descriptors grew ${m.fds_growth} (${m.fds_first} -> ${m.fds_last}), over ${FDS_GROWTH_MAX}`);
}

// --------------------------------------------------------------------------- 3. records

const bl = raw.buyer?.ledger ?? {};
const base = raw.baseline ?? { buyer_requests: 0, seller_requests: [0, 0] };
const buyerRows = Number(bl.total_requests) - Number(base.buyer_requests ?? 0);
const buyerOk = (bl.requests_by_outcome ?? []).filter((r) => r.outcome === 'ok')
  .reduce((a, r) => a + Number(r.n), 0) - Number(base.buyer_requests ?? 0);
const sellers = raw.sellers ?? [];
want(sellers.length === 2, `records: ${sellers.length} sellers collected, not 2`);
const sellerRows = sellers.map((s, i) => s.requests_by_status?.reduce((a, r) => a + Number(r.n), 0) -
                                        Number(base.seller_requests?.[i] ?? 0));
const sellerSum = sellerRows.reduce((a, n) => a + n, 0);
want(buyerRows === tot.sent, `records: the buyer's ledger has ${buyerRows} rows for the run, the load generator sent ${tot.sent}`);
want(buyerOk === buyerRows, `records: ${buyerRows - buyerOk} of the buyer's rows are not "ok" (${JSON.stringify(bl.requests_by_outcome)})`);
want(sellerSum === buyerRows, `records: the sellers hold ${sellerRows.join(' + ')} = ${sellerSum} request rows, the buyer ${buyerRows}`);
for (const s of sellers) {
  const notOk = (s.requests_by_status ?? []).filter((r) => !(r.status === 'finished' && r.outcome === 'ok'));
  want(notOk.length === 0, `records: ${s.name} has requests not finished "ok": ${JSON.stringify(notOk)}`);
}
want(Number(bl.adjustments ?? 0) === 0, `records: the buyer needed ${bl.adjustments} 402 adjustments`);

const channels = [];
const buyerApiCh = Object.fromEntries((raw.buyer?.api?.channels ?? []).map((c) => [hex(c.channel_id), c]));
const buyerByCh = Object.fromEntries((bl.requests_by_channel ?? []).map((r) => [hex(r.channel_id), r]));
const buyerVouchers = Object.fromEntries((bl.vouchers_by_channel ?? []).map((r) => [hex(r.channel_id), r]));
const seen = new Set();
let costBuyer = 0n, costSellers = 0n;
for (const bc of bl.channels ?? []) {
  const id = hex(bc.channel_id);
  seen.add(id);
  const s = sellers.find((x) => hex(x.address) === hex(bc.seller));
  const tag = `channel ${id.slice(0, 10)}…`;
  if (!want(s, `${tag}: its seller ${bc.seller} is neither seller`)) continue;
  const sc = (s.channels ?? []).find((c) => hex(c.channel_id) === id);
  const sApi = (s.api?.channels ?? []).find((c) => hex(c.channel_id) === id);
  const sReq = (s.requests_by_channel ?? []).find((r) => hex(r.channel_id) === id) ?? { n: 0, cost: '0' };
  const bReq = buyerByCh[id] ?? { n: 0, cost: '0' };
  const row = { channel_id: id, seller: s.name, buyer_rows: Number(bReq.n), seller_rows: Number(sReq.n),
                buyer_consumed: bc.consumed, seller_consumed: sc?.consumed ?? null,
                buyer_cost_sum: bReq.cost ?? '0', seller_cost_sum: sReq.cost ?? '0',
                deposit: bc.deposit, authorized: bc.authorized };
  channels.push(row);
  if (!want(sc, `${tag}: ${s.name} does not know the channel`)) continue;
  const c = big(bc.consumed);
  costBuyer += big(bReq.cost ?? 0) ?? 0n;
  costSellers += big(sReq.cost ?? 0) ?? 0n;
  want(row.buyer_rows === row.seller_rows, `${tag}: ${row.buyer_rows} buyer rows, ${row.seller_rows} at ${s.name}`);
  want(big(sc.consumed) === c, `${tag}: buyer consumed ${bc.consumed}, ${s.name} consumed ${sc.consumed}`);
  want(big(bReq.cost ?? 0) === c, `${tag}: the buyer's costs add up to ${bReq.cost}, its consumed is ${bc.consumed}`);
  want(big(sReq.cost ?? 0) === c, `${tag}: ${s.name}'s costs add up to ${sReq.cost}, consumed is ${bc.consumed}`);
  want(big(buyerApiCh[id]?.consumed) === c, `${tag}: the buyer's API says consumed ${buyerApiCh[id]?.consumed}, its ledger ${bc.consumed}`);
  want(big(sApi?.consumed) === c, `${tag}: ${s.name}'s admin API says consumed ${sApi?.consumed}, the ledgers ${bc.consumed}`);
  want(big(sc.deposit) === big(bc.deposit), `${tag}: deposit ${bc.deposit} (buyer) vs ${sc.deposit} (${s.name})`);
  want(hex(sc.payer) === hex(raw.wallet), `${tag}: ${s.name} records payer ${sc.payer}, the buyer's wallet is ${raw.wallet}`);
  want(Number(buyerVouchers[id]?.n ?? 0) === row.buyer_rows,
       `${tag}: the buyer signed ${buyerVouchers[id]?.n ?? 0} vouchers for ${row.buyer_rows} requests`);
}
for (const s of sellers)
  for (const sc of s.channels ?? [])
    want(seen.has(hex(sc.channel_id)), `${s.name} has channel ${hex(sc.channel_id).slice(0, 10)}… the buyer does not`);
want(costBuyer === costSellers, `records: the buyer's costs add up to ${costBuyer}, the sellers' to ${costSellers}`);
const spend = raw.buyer?.api?.spend;
want(big(spend?.total?.spent) === costBuyer, `records: the buyer's /spend total ${spend?.total?.spent} != its ledger's ${costBuyer}`);
for (const s of sellers) {
  const per = (spend?.per_seller ?? []).find((p) => hex(p.seller) === hex(s.address));
  const rev = s.api?.revenue ?? {};
  want(per && big(per.spent) === big(rev.consumed),
       `records: the buyer paid ${s.name} ${per?.spent}, its revenue says ${rev.consumed}`);
  want(per && Number(per.requests) === Number(rev.requests),
       `records: the buyer counts ${per?.requests} requests to ${s.name}, its revenue ${rev.requests}`);
}

// --------------------------------------------------------------------------- 4. settlement

let claimedTotal = 0n;
for (const s of sellers) {
  const rep = s.settle_report;
  want(rep && Array.isArray(rep.settlements), `${s.name}: no settle report`);
  for (const r of rep?.settlements ?? [])
    want(r.status === 'confirmed', `${s.name}: a claim was not confirmed: ${JSON.stringify(r)}`);
  for (const sc of s.channels ?? []) {
    const id = hex(sc.channel_id);
    const tag = `channel ${id.slice(0, 10)}… (${s.name})`;
    const ch = raw.chain?.[id];
    const row = channels.find((c) => c.channel_id === id);
    if (!want(ch, `${tag}: not read from the chain`)) continue;
    const claimed = big(ch.claimed), consumed = big(sc.consumed);
    const paid = sumBig((s.settlements ?? []).filter((r) => hex(r.channel_id) === id && r.status === 'confirmed'),
                        (r) => r.amount);
    const last = sc.last_charged;
    const slack = last ? big(last.estimate) - big(last.cost) : 0n;
    const auth = big(row?.authorized);
    claimedTotal += claimed ?? 0n;
    if (row) Object.assign(row, { claimed: ch.claimed, settled: paid.toString(), slack: slack.toString() });
    want(claimed === paid, `${tag}: the escrow says claimed ${ch.claimed}, the seller's confirmed settlements ${paid}`);
    want(slack >= 0n, `${tag}: the last charged request cost more than its estimate (${JSON.stringify(last)})`);
    want(claimed !== null && consumed !== null && claimed >= consumed, `${tag}: claimed ${ch.claimed} < consumed ${sc.consumed}`);
    want(claimed !== null && consumed !== null && claimed <= consumed + slack,
         `${tag}: claimed ${ch.claimed} > consumed ${sc.consumed} + slack ${slack}`);
    want(auth !== null && claimed !== null && claimed <= auth, `${tag}: claimed ${ch.claimed} > authorized ${row?.authorized}`);
    want(hex(ch.seller) === hex(s.address) && hex(ch.payer) === hex(raw.wallet),
         `${tag}: the escrow names seller ${ch.seller} and payer ${ch.payer}`);
  }
}

// --------------------------------------------------------------------------- report

const pass = failures.length === 0;
const result = {
  verdict: pass ? 'PASS' : 'FAIL',
  requests: tot.sent,
  errors,
  failures,
  setup: meta,
  load: { ...tot, by_kind: Object.fromEntries(Object.entries(byKind).map(([k, v]) =>
    [k, { sent: v.sent, ok: v.ok, failed: v.failed, unfinished: v.unfinished,
          p50_ms: v.p50_ms.length ? Number(Math.max(...v.p50_ms).toFixed(1)) : null,
          p99_ms: v.p99_ms.length ? Number(Math.max(...v.p99_ms).toFixed(1)) : null }])) },
  memory,
  limits: { rss_growth: `max(${RSS_GROWTH_FRAC * 100} %, ${RSS_GROWTH_MIN_KB / 1024} MiB)`,
            fds_growth: FDS_GROWTH_MAX, warmup_s: warm, min_samples: MIN_SAMPLES },
  records: { sent: tot.sent, buyer_rows: buyerRows, seller_rows: sellerRows,
             cost_buyer: costBuyer.toString(), cost_sellers: costSellers.toString(),
             claimed: claimedTotal.toString(), channels },
  raw,
};

for (const n of DAEMONS) {
  const m = memory[n];
  if (m.rss_first_kb === undefined) { console.log(`  ${n.padEnd(9)} ${m.judged} samples: not judged`); continue; }
  console.log(`  ${n.padEnd(9)} RSS ${mb(m.rss_start_kb)} -> ${mb(m.rss_end_kb)} MiB (thirds ${mb(m.rss_first_kb)} -> ` +
              `${mb(m.rss_last_kb)}, +${mb(m.rss_growth_kb)} of ${mb(m.rss_limit_kb)} allowed), fds ` +
              `${m.fds_start} -> ${m.fds_end} (thirds ${m.fds_first} -> ${m.fds_last}), ${m.judged} samples`);
}
console.log(`  records: ${tot.sent} sent, buyer ${buyerRows} rows, sellers ${sellerRows.join(' + ')}; ` +
            `costs ${costBuyer} (buyer) = ${costSellers} (sellers) micro-USDC; claimed ${claimedTotal} ` +
            `over ${channels.length} channels`);
for (const f of failures) console.log(`  FAIL: ${f}`);

if (opt.json) fs.writeFileSync(opt.json, `${JSON.stringify(result, null, 1)}\n`);
if (opt.md) {
  const md = [];
  md.push(`# Soak ${result.verdict}`, '',
          `${meta.mode ?? '?'} run of ${meta.duration_s ?? '?'} s at ${meta.rate ?? '?'} req/s through the ` +
          `buyer, both sellers and the chain (commit ${meta.commit ?? '?'}, ${meta.started ?? '?'}, ` +
          `${meta.cores ?? '?'} cores): ${tot.sent} requests, ${errors} errors.`, '',
          '| load | sent | answered | failed | unfinished | p50 ms | p99 ms |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const [k, v] of Object.entries(result.load.by_kind))
    md.push(`| ${k} | ${v.sent} | ${v.ok} | ${v.failed} | ${v.unfinished} | ${v.p50_ms ?? '-'} | ${v.p99_ms ?? '-'} |`);
  md.push('', `Memory (first third vs last third of the samples under load after ${warm} s; allowed: RSS ` +
          `+${result.limits.rss_growth}, descriptors +${FDS_GROWTH_MAX}):`, '',
          '| daemon | RSS start → end MiB | RSS thirds MiB | growth MiB | fds start → end | fds thirds | flat |',
          '|---|---|---|---:|---|---|---|');
  for (const n of DAEMONS) {
    const m = memory[n];
    if (m.rss_first_kb === undefined) { md.push(`| ${n} | - | - | - | - | - | not judged |`); continue; }
    md.push(`| ${n} | ${mb(m.rss_start_kb)} → ${mb(m.rss_end_kb)} | ${mb(m.rss_first_kb)} → ${mb(m.rss_last_kb)} | ` +
            `${mb(m.rss_growth_kb)} | ${m.fds_start} → ${m.fds_end} | ${m.fds_first} → ${m.fds_last} | ${m.flat ? 'yes' : 'NO'} |`);
  }
  md.push('', `Records: ${tot.sent} sent = ${buyerRows} buyer ledger rows = ${sellerRows.join(' + ')} seller rows; ` +
          `costs ${costBuyer} (buyer) = ${costSellers} (sellers) micro-USDC; claimed on chain ${claimedTotal}.`, '',
          '| channel | seller | rows (buyer/seller) | consumed (buyer/seller) | cost sums (buyer/seller) | claimed | slack |',
          '|---|---|---|---|---|---:|---:|');
  for (const c of channels)
    md.push(`| ${c.channel_id.slice(0, 10)}… | ${c.seller} | ${c.buyer_rows}/${c.seller_rows} | ${c.buyer_consumed}/` +
            `${c.seller_consumed} | ${c.buyer_cost_sum}/${c.seller_cost_sum} | ${c.claimed ?? '-'} | ${c.slack ?? '-'} |`);
  if (failures.length) md.push('', 'Failures:', '', ...failures.map((f) => `- ${f}`));
  fs.writeFileSync(opt.md, `${md.join('\n')}\n`);
}
console.log(`soak: ${tot.sent} requests, ${errors} errors, ${result.verdict}`);
process.exit(pass ? 0 : 1);
