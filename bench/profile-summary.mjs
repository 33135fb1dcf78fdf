// SPDX-License-Identifier: Apache-2.0
// Summarises a system-wide `perf record -a` for scripts/bench.sh: reads `perf script -G -F
// pid,ip,sym,dso` on stdin and prints, for each NAME=PID given, the share of that process's
// samples per library and the top functions (self time). perf report's own --pid filter does not
// split a process's threads reliably when they come and go, hence this.
//
// Usage: perf script -i perf.data -G -F pid,ip,sym,dso | node bench/profile-summary.mjs buyer=123 seller=456
import readline from 'node:readline';

const want = new Map();
for (const a of process.argv.slice(2)) {
  const [name, pid] = a.split('=');
  if (!name || !/^\d+$/.test(pid || '')) {
    console.error(`profile-summary: bad argument ${a} (want NAME=PID)`);
    process.exit(2);
  }
  want.set(Number(pid), name);
}
const total = new Map(), libs = new Map(), fns = new Map();
let all = 0;
const bump = (m, k) => m.set(k, (m.get(k) || 0) + 1);
for await (const line of readline.createInterface({ input: process.stdin })) {
  const m = line.match(/^\s*(\d+)\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/);
  if (!m) continue;
  all++;
  const name = want.get(Number(m[1]));
  if (name === undefined) continue;
  const lib = m[3].split('/').pop();
  const sym = m[2].replace(/\+0x[0-9a-f]+$/, '');
  bump(total, name);
  bump(libs, `${name}\t${lib}`);
  bump(fns, `${name}\t${lib}\t${sym}`);
}
const top = (m, name, n) =>
  [...m.entries()].filter(([k]) => k.startsWith(`${name}\t`)).sort((a, b) => b[1] - a[1]).slice(0, n);
console.log(`${all} samples on the machine`);
for (const name of want.values()) {
  const t = total.get(name) || 0;
  console.log(`\n## ${name}: ${t} samples (${((100 * t) / Math.max(all, 1)).toFixed(1)}% of the machine's)`);
  console.log('by library:');
  for (const [k, v] of top(libs, name, 12)) console.log(`  ${((100 * v) / t).toFixed(1).padStart(5)}%  ${k.split('\t')[1]}`);
  console.log('top functions ([unknown]: a library without symbols, all its functions together):');
  for (const [k, v] of top(fns, name, 20)) {
    const [, lib, sym] = k.split('\t');
    console.log(`  ${((100 * v) / t).toFixed(1).padStart(5)}%  ${sym}  (${lib})`);
  }
}
