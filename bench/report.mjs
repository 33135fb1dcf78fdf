// SPDX-License-Identifier: Apache-2.0
// scripts/bench.sh's report: reads the raw results of one run (path_bench's JSON lines, wrk's
// output, memory snapshots, crypto_bench, chain-cost.mjs, registry_bench) and writes one JSON
// document, a Markdown version for bench/README.md, and a table on stdout. "Added" latency is a
// path's percentile minus the direct path's same percentile in the same run: the fake model's
// own latency is subtracted, what the proxy in between costs remains.
//
//   node bench/report.mjs --results DIR --mode full|quick|smoke --commit C --latency-ms N
//        --tokens-per-s N --soak S --out FILE.json --md FILE.md
//   node bench/report.mjs --wrk NAME FILE     one JSON line from wrk's --latency output
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function fail(msg) {
  console.error(`report: ${msg}`);
  process.exit(1);
}

const argv = process.argv.slice(2);
if (argv[0] === '--wrk') {
  if (argv.length !== 3) fail('usage: report.mjs --wrk NAME FILE');
  console.log(JSON.stringify(parseWrk(argv[1], fs.readFileSync(argv[2], 'utf8'))));
  process.exit(0);
}

const opt = {};
for (let i = 0; i < argv.length; i += 2) {
  if (!argv[i].startsWith('--') || argv[i + 1] === undefined) fail(`bad argument ${argv[i]}`);
  opt[argv[i].slice(2)] = argv[i + 1];
}
for (const k of ['results', 'mode', 'out', 'md']) if (!opt[k]) fail(`--${k} is required`);

// ---------------------------------------------------------------- inputs

function ms(v, unit) {
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : unit === 'm' ? v * 60000 : v;
}

function parseWrk(name, text) {
  const num = (re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : null;
  };
  const lat = {};
  for (const p of ['50', '90', '99']) {
    const m = text.match(new RegExp(`^\\s+${p}%\\s+([0-9.]+)(us|ms|s|m)\\s*$`, 'm'));
    lat[`p${p}_ms`] = m ? ms(Number(m[1]), m[2]) : null;
  }
  const req = text.match(/^\s+(\d+) requests in ([0-9.]+)(us|ms|s|m)/m);
  const rps = num(/^Requests\/sec:\s+([0-9.]+)/m);
  if (!req || rps === null) fail(`wrk output for ${name} has no totals:\n${text}`);
  const non2xx = num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0;
  const sock = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const sockErr = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    target: name, requests: Number(req[1]), seconds: ms(Number(req[2]), req[3]) / 1000,
    // answered requests per second, as for path_bench's rows
    rps: rps * (Number(req[1]) > 0 ? Math.max(0, Number(req[1]) - non2xx - sockErr) / Number(req[1]) : 0),
    errors: non2xx + sockErr, ...lat,
  };
}

const dir = opt.results;
const readJson = (f) => (fs.existsSync(path.join(dir, f)) ? JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) : null);
const readLines = (f) =>
  fs.existsSync(path.join(dir, f))
    ? fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
    : [];

const paths = readLines('paths.jsonl');
const soakLines = readLines('soak.jsonl');
const wrk = readLines('wrk.jsonl');
const memory = readLines('memory.jsonl');
const crypto = readJson('crypto.json');
const chain = readJson('chain.json');
const registry = readJson('registry.json');
const spend = readJson('spend.json');
const profile = fs.existsSync(path.join(dir, 'profile.txt')) ? fs.readFileSync(path.join(dir, 'profile.txt'), 'utf8') : null;
if (paths.length === 0) fail(`no path results in ${dir}`);

// ---------------------------------------------------------------- derived numbers

const r3 = (x) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);
const find = (target, mode, loop, rate) =>
  paths.find((p) => p.target === target && p.mode === mode && p.loop === loop && (loop === 'closed' || p.rate === rate));
const soakSeconds = Number(opt.soak || 0);
const rates = [...new Set(paths.filter((p) => p.loop === 'open').map((p) => p.rate))].sort((a, b) => a - b);

const latency = [];
for (const mode of ['whole', 'stream']) {
  for (const rate of rates) {
    const d = find('direct', mode, 'open', rate);
    if (!d) continue;
    for (const target of ['direct', 'portkey', 'openseed']) {
      const p = find(target, mode, 'open', rate);
      if (!p) continue;
      const row = {
        mode, rate, target, requests: p.requests, errors: p.errors, statuses: p.statuses,
        p50_ms: r3(p.p50_ms), p90_ms: r3(p.p90_ms), p99_ms: r3(p.p99_ms), max_ms: r3(p.max_ms),
        added_p50_ms: r3(p.p50_ms - d.p50_ms), added_p90_ms: r3(p.p90_ms - d.p90_ms),
        added_p99_ms: r3(p.p99_ms - d.p99_ms), added_max_ms: r3(p.max_ms - d.max_ms), cpu: p.cpu,
      };
      if (mode === 'stream') {
        Object.assign(row, {
          ttft_p50_ms: r3(p.ttft_p50_ms), ttft_p99_ms: r3(p.ttft_p99_ms),
          added_ttft_p50_ms: r3(p.ttft_p50_ms - d.ttft_p50_ms), added_ttft_p99_ms: r3(p.ttft_p99_ms - d.ttft_p99_ms),
          gap_p50_ms: r3(p.gap_p50_ms), gap_p99_ms: r3(p.gap_p99_ms),
          added_gap_p50_ms: r3(p.gap_p50_ms - d.gap_p50_ms), added_gap_p99_ms: r3(p.gap_p99_ms - d.gap_p99_ms),
          events_per_reply: r3(p.events_per_reply),
        });
      }
      latency.push(row);
    }
  }
}

// answered requests per second: a path that fails fast must not look fast
const peak = ['direct', 'portkey', 'openseed'].map((t) => find(t, 'whole', 'closed')).filter(Boolean).map((p) => ({
  target: p.target, conns: p.conns, rps: p.seconds > 0 ? Math.round((p.requests - p.errors) / p.seconds) : 0,
  requests: p.requests, errors: p.errors,
  p50_ms: r3(p.p50_ms), p99_ms: r3(p.p99_ms), cpu: p.cpu,
  wrk: wrk.find((w) => w.target === p.target) || null,
}));

const soak = soakLines[0] || null;
const procs = ['buyer', 'seller1', 'seller2', 'registry', 'upstream', 'portkey'];
const snap = (label) => memory.find((m) => m.label === label);
const soakSnaps = memory.filter((m) => m.label.startsWith('soak'));
const mem = {};
for (const n of procs) {
  const idle = snap('idle')?.procs[n];
  const end = memory.length ? memory[memory.length - 1].procs[n] : null;
  const series = soakSnaps.map((m) => m.procs[n].rss_kb);
  mem[n] = {
    idle_rss_mb: idle ? r3(idle.rss_kb / 1024) : null,
    peak_rss_mb: end ? r3(Math.max(...memory.map((m) => m.procs[n].hwm_kb)) / 1024) : null,
    soak_start_rss_mb: series.length ? r3(series[0] / 1024) : null,
    soak_end_rss_mb: series.length ? r3(series[series.length - 1] / 1024) : null,
    soak_min_rss_mb: series.length ? r3(Math.min(...series) / 1024) : null,
    soak_max_rss_mb: series.length ? r3(Math.max(...series) / 1024) : null,
    fds_idle: idle ? idle.fds : null,
    fds_end: end ? end.fds : null,
  };
}

// Chain: transactions in the load window per 1,000 paid requests.
let chainOut = null;
if (chain) {
  const paid = Number(spend?.total?.requests ?? 0);
  const win = chain.window;
  const winTxs = win ? Object.values(win.by_function || {}).reduce((a, f) => a + f.count, 0) : null;
  const fn = chain.scan?.by_function || {};
  const gas = (name) => (fn[name] ? fn[name].gas_median : null);
  chainOut = {
    // from the daemons' own transactions where they make them, else measured by chain-cost.mjs
    gas: {
      openWithAuthorization: gas('openWithAuthorization'), open: chain.measured?.open ?? null,
      approve: chain.measured?.approve ?? null, topUp: gas('topUp') ?? chain.measured?.topUp ?? null,
      claim: gas('claim') ?? chain.measured?.claim ?? null, close: gas('close') ?? chain.measured?.close ?? null,
      requestClose: gas('requestClose'),
    },
    paid_requests: paid,
    window_transactions: winTxs,
    window_by_function: win ? Object.fromEntries(Object.entries(win.by_function || {}).map(([k, v]) => [k, v.count])) : null,
    transactions_per_1000_paid: paid > 0 && winTxs !== null ? r3((winTxs * 1000) / paid) : null,
    spent_usdc: spend?.total?.spent ?? null,
  };
}

// ---------------------------------------------------------------- targets

const at200 = (t, m) => latency.find((l) => l.target === t && l.mode === m && l.rate === 200);
const targets = [];
const target = (name, value, want, ok) => targets.push({ name, value, want, met: value === null ? null : ok });
{
  const w = at200('openseed', 'whole');
  const s = at200('openseed', 'stream');
  const pk = at200('portkey', 'whole');
  const pkS = at200('portkey', 'stream');
  target('added p50 at 200 req/s (ms)', w?.added_p50_ms ?? null, '<= 1', (w?.added_p50_ms ?? Infinity) <= 1);
  target('added p99 at 200 req/s (ms)', w?.added_p99_ms ?? null, '<= 3', (w?.added_p99_ms ?? Infinity) <= 3);
  target('added time to first token p50 at 200 req/s (ms)', s?.added_ttft_p50_ms ?? null, '<= 1', (s?.added_ttft_p50_ms ?? Infinity) <= 1);
  const ps = peak.find((p) => p.target === 'openseed');
  target('paid requests/s, closed loop', ps?.rps ?? null, '>= 1000', (ps?.rps ?? 0) >= 1000);
  target('added p50 below Portkey at 200 req/s (ms, OpenSeed vs Portkey)',
    w && pk ? `${w.added_p50_ms} vs ${pk.added_p50_ms}` : null, 'lower', w && pk ? w.added_p50_ms < pk.added_p50_ms : false);
  target('added p99 below Portkey at 200 req/s (ms)', w && pk ? `${w.added_p99_ms} vs ${pk.added_p99_ms}` : null, 'lower',
    w && pk ? w.added_p99_ms < pk.added_p99_ms : false);
  target('added TTFT p50 below Portkey at 200 req/s (ms)', s && pkS ? `${s.added_ttft_p50_ms} vs ${pkS.added_ttft_p50_ms}` : null,
    'lower', s && pkS ? s.added_ttft_p50_ms < pkS.added_ttft_p50_ms : false);
  target('buyer peak RSS (MB)', mem.buyer.peak_rss_mb, '<= 30', (mem.buyer.peak_rss_mb ?? Infinity) <= 30);
  const drift = mem.buyer.soak_end_rss_mb !== null ? r3(mem.buyer.soak_end_rss_mb - mem.buyer.soak_start_rss_mb) : null;
  target(`buyer RSS drift over the ${soakSeconds} s steady run (MB)`, drift, 'flat (< 1 MB)', drift !== null && Math.abs(drift) < 1);
}

// ---------------------------------------------------------------- output

const cpuModel = (os.cpus()[0] || {}).model || 'unknown';
const doc = {
  generated: new Date().toISOString(), mode: opt.mode, commit: opt.commit || null,
  machine: { cpu: cpuModel, cores: os.cpus().length, memory_gb: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version },
  setup: { upstream_latency_ms: Number(opt['latency-ms']), upstream_tokens_per_s: Number(opt['tokens-per-s']), soak_seconds: soakSeconds },
  targets, latency, peak, soak: soak && { rate: soak.rate, seconds: soak.seconds, requests: soak.requests, errors: soak.errors, p50_ms: r3(soak.p50_ms), p99_ms: r3(soak.p99_ms) },
  memory: mem, memory_samples: memory, crypto, chain: chainOut, chain_raw: chain, registry, profile,
};
fs.writeFileSync(opt.out, JSON.stringify(doc, null, 1) + '\n');

const f = (x, d = 2) => (x === null || x === undefined ? '-' : typeof x === 'number' ? x.toFixed(d) : String(x));
const md = [];
const table = (head, rows) => {
  md.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  for (const r of rows) md.push(`| ${r.join(' | ')} |`);
  md.push('');
};
md.push(`Run ${doc.generated} (${opt.mode}), commit ${doc.commit}; ${cpuModel}, ${doc.machine.cores} cores, ${doc.machine.memory_gb} GB, Linux ${doc.machine.kernel}.`,
  `Fake model: ${doc.setup.upstream_latency_ms} ms to the first byte, ${doc.setup.upstream_tokens_per_s} tokens/s when streaming.`, '');
md.push('**Targets**', '');
table(['target', 'measured', 'wanted', 'met'], targets.map((t) => [t.name, f(t.value), t.want, t.met === null ? '-' : t.met ? 'yes' : '**no**']));
md.push('**Latency, whole answers** (ms; added = this path minus direct at the same percentile)', '');
table(['rate', 'path', 'requests', 'errors', 'p50', 'p90', 'p99', 'max', 'added p50', 'added p90', 'added p99'],
  latency.filter((l) => l.mode === 'whole').map((l) => [l.rate, l.target, l.requests, l.errors, f(l.p50_ms), f(l.p90_ms), f(l.p99_ms), f(l.max_ms),
    l.target === 'direct' ? '' : f(l.added_p50_ms), l.target === 'direct' ? '' : f(l.added_p90_ms), l.target === 'direct' ? '' : f(l.added_p99_ms)]));
md.push('**Latency, streamed answers** (ms; TTFT = time to the first token event; gap = between token events)', '');
table(['rate', 'path', 'errors', 'TTFT p50', 'TTFT p99', 'added TTFT p50', 'added TTFT p99', 'gap p50', 'gap p99', 'added gap p50', 'added gap p99'],
  latency.filter((l) => l.mode === 'stream').map((l) => [l.rate, l.target, l.errors, f(l.ttft_p50_ms), f(l.ttft_p99_ms),
    l.target === 'direct' ? '' : f(l.added_ttft_p50_ms), l.target === 'direct' ? '' : f(l.added_ttft_p99_ms), f(l.gap_p50_ms), f(l.gap_p99_ms),
    l.target === 'direct' ? '' : f(l.added_gap_p50_ms), l.target === 'direct' ? '' : f(l.added_gap_p99_ms)]));
const cpuStr = (c) => (c ? Object.entries(c).filter(([, v]) => v !== null && v >= 0.01).map(([k, v]) => `${k} ${Math.round(v * 100)}%`).join(', ') : '');
md.push('**Peak throughput** (closed loop, 16 connections, the fake model answering at once; req/s counts answered requests; CPU in % of one core)', '');
table(['path', 'req/s', 'errors', 'p50', 'p99', 'wrk req/s', 'wrk errors', 'CPU'],
  peak.map((p) => [p.target, p.rps, p.errors, f(p.p50_ms), f(p.p99_ms), p.wrk ? Math.round(p.wrk.rps) : '-', p.wrk ? p.wrk.errors : '-', cpuStr(p.cpu)]));
md.push('**Memory and descriptors** (RSS in MB; peak = the kernel\'s high-water mark over the whole run)', '');
table(['process', 'idle RSS', 'peak RSS', 'steady start', 'steady end', 'steady min..max', 'fds idle', 'fds end'],
  procs.map((n) => [n, f(mem[n].idle_rss_mb, 1), f(mem[n].peak_rss_mb, 1), f(mem[n].soak_start_rss_mb, 1), f(mem[n].soak_end_rss_mb, 1),
    `${f(mem[n].soak_min_rss_mb, 1)}..${f(mem[n].soak_max_rss_mb, 1)}`, f(mem[n].fds_idle, 0), f(mem[n].fds_end, 0)]));
if (soak) md.push(`Steady run: ${soak.requests} requests at ${soak.rate} req/s for ${f(soak.seconds, 0)} s, ${soak.errors} errors, p50 ${f(soak.p50_ms)} ms, p99 ${f(soak.p99_ms)} ms.`, '');
if (crypto) {
  md.push('**Crypto unit costs** (one core)', '');
  table(['operation', 'ops/s', 'µs/op', 'note'], (crypto.ops || []).map((o) => [o.name, Math.round(o.ops_per_s), f(o.us_per_op), o.note || '']));
  if (crypto.per_request) md.push(`Per paid request: buyer ${f(crypto.per_request.buyer_us, 1)} µs, seller ${f(crypto.per_request.seller_us, 1)} µs of crypto.`, '');
}
if (chainOut) {
  md.push('**Chain cost** (gas from the receipts on anvil)', '');
  table(['call', 'gas'], Object.entries(chainOut.gas).map(([k, v]) => [k, v === null ? '-' : v]));
  const usdc = (micro) => (micro === null ? '-' : (Number(micro) / 1e6).toFixed(6));
  md.push(`During the load: ${chainOut.window_transactions} transactions for ${chainOut.paid_requests} paid requests = ${f(chainOut.transactions_per_1000_paid, 3)} per 1,000 (${JSON.stringify(chainOut.window_by_function)}); the buyer spent ${usdc(chainOut.spent_usdc)} USDC.`, '');
}
if (registry) {
  md.push(`**Registry** (${registry.sellers} sellers, ${registry.connections} connections)`, '');
  table(['phase', 'req/s', 'errors', 'p50', 'p99', 'max'], registry.phases.map((p) => [p.phase, Math.round(p.rps), p.errors, f(p.p50_ms), f(p.p99_ms), f(p.max_ms)]));
}
if (profile) md.push('**Where the CPU goes at peak** (`perf record -a`, closed loop through OpenSeed)', '', '```', profile.trim(), '```', '');
fs.writeFileSync(opt.md, md.join('\n') + '\n');
console.log(md.join('\n'));

// A run whose measurements saw errors is reported, and fails: nothing is hidden in a green run.
const errs = [...paths, ...soakLines, ...wrk].reduce((a, p) => a + p.errors, 0);
if (errs > 0) {
  console.error(`report: ${errs} requests failed during the measurements (see the errors columns)`);
  process.exit(3);
}
