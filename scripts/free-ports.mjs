// SPDX-License-Identifier: Apache-2.0
// Prints N distinct free TCP ports on 127.0.0.1, separated by spaces: all N are held open together
// while they are chosen, so none repeats (another process can still take one before the caller
// binds it; callers retry). Used by tests/e2e/run.sh and scripts/bench.sh.
//
// Usage: node scripts/free-ports.mjs N
import net from 'node:net';

const n = Number(process.argv[2]);
if (!Number.isInteger(n) || n < 1 || n > 100) {
  console.error('usage: node free-ports.mjs N (1..100)');
  process.exit(2);
}
const servers = [];
const take = () =>
  new Promise((ok, ko) => {
    const s = net.createServer().once('error', ko);
    s.listen(0, '127.0.0.1', () => {
      servers.push(s);
      ok(s.address().port);
    });
  });
try {
  const ports = [];
  for (let i = 0; i < n; i++) ports.push(await take());
  console.log(ports.join(' '));
} catch (e) {
  console.error(`free-ports: ${e.message}`);
  process.exitCode = 1;
} finally {
  servers.forEach((s) => s.close());
}
