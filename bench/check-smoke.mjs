// SPDX-License-Identifier: Apache-2.0
// Checks the JSON of `scripts/bench.sh --smoke` (run by scripts/test.sh): every part of the
// benchmark ran and produced plausible numbers, and no measured request failed. It never judges
// speed (benchmarks do not pass or fail on time); it fails when the harness has rotted.
//
// Usage: node bench/check-smoke.mjs RESULTS.json
import fs from 'node:fs';

const doc = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const problems = [];
const want = (ok, what) => { if (!ok) problems.push(what); };
const pos = (x) => typeof x === 'number' && Number.isFinite(x) && x > 0;

for (const mode of ['whole', 'stream'])
  for (const t of ['direct', 'portkey', 'openseed']) {
    const rows = doc.latency.filter((l) => l.mode === mode && l.target === t);
    want(rows.length > 0, `no ${mode} latency rows for ${t}`);
    for (const r of rows) {
      const n = `${t} ${mode} @${r.rate}`;
      want(r.requests > 0 && r.errors === 0, `${n}: ${r.requests} requests, ${r.errors} errors`);
      want(pos(r.p50_ms) && r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms, `${n}: percentiles out of order`);
      if (mode === 'stream') want(pos(r.ttft_p50_ms) && pos(r.gap_p50_ms) && r.events_per_reply >= 5, `${n}: no token timing`);
      if (t !== 'direct') want(typeof r.added_p50_ms === 'number', `${n}: no added latency`);
    }
  }
for (const t of ['direct', 'portkey', 'openseed']) {
  const p = doc.peak.find((x) => x.target === t);
  want(p && pos(p.rps) && p.errors === 0, `peak ${t}: ${JSON.stringify(p)}`);
}
for (const t of ['direct', 'openseed']) {
  const w = doc.peak.find((x) => x.target === t)?.wrk;
  want(w && pos(w.rps) && w.errors === 0, `wrk ${t}: ${JSON.stringify(w)}`);
}
want(doc.soak && doc.soak.requests > 0 && doc.soak.errors === 0, `steady run: ${JSON.stringify(doc.soak)}`);
for (const n of ['buyer', 'seller1', 'registry']) {
  const m = doc.memory[n];
  want(pos(m.idle_rss_mb) && m.peak_rss_mb >= m.idle_rss_mb && pos(m.fds_idle) && pos(m.fds_end), `memory ${n}: ${JSON.stringify(m)}`);
}
want(doc.crypto && doc.crypto.ops.length >= 10 && doc.crypto.ops.every((o) => pos(o.ops_per_s)), 'crypto unit costs missing');
want(doc.crypto && pos(doc.crypto.per_request?.buyer_us) && pos(doc.crypto.per_request?.seller_us), 'crypto per-request sums missing');
const g = doc.chain?.gas || {};
for (const k of ['openWithAuthorization', 'open', 'claim', 'close', 'requestClose'])
  want(g[k] > 21000, `gas of ${k}: ${g[k]}`);
want(doc.chain && doc.chain.paid_requests > 0 && doc.chain.transactions_per_1000_paid !== null, 'transactions per 1,000 paid requests missing');
want(doc.registry && doc.registry.phases.length >= 3 && doc.registry.phases.every((p) => pos(p.rps) && p.errors === 0), 'registry phases missing or failed');
want(Array.isArray(doc.targets) && doc.targets.length >= 9, 'targets missing');

if (problems.length) {
  for (const p of problems) console.error(`bench smoke: ${p}`);
  process.exit(1);
}
console.log(`bench smoke: ok (${doc.latency.length} latency rows, ${doc.peak.length} peak rows, ${doc.crypto.ops.length} crypto ops, ${doc.registry.phases.length} registry phases)`);
