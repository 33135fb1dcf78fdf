// SPDX-License-Identifier: Apache-2.0
// The devnet's recording proxy (scripts/devnet.sh with OPENSEED_DEVNET_RECORD=1): a TCP relay on
// loopback in front of a seller or the registry that appends every byte a client sends to a file,
// so privacy tests can search exactly what left the buyer (for instance, that its wallet address
// never reaches a seller or a registry). Each chunk is written to the file with a synchronous
// write before it is forwarded, so once the server has seen (and answered) a request, its bytes
// are on disk. Server-to-client bytes are relayed, not recorded. Connections are recorded back to
// back, as they arrive. SIGTERM or SIGINT stops it (exit 0). No npm dependencies.
//
// Usage: node devnet-proxy.mjs --listen 127.0.0.1:PORT --target 127.0.0.1:PORT --record FILE
import fs from 'node:fs';
import net from 'node:net';

function usage(msg) {
  if (msg) console.error(`devnet-proxy: ${msg}`);
  console.error('usage: node devnet-proxy.mjs --listen HOST:PORT --target HOST:PORT --record FILE');
  process.exit(2);
}

function hostPort(v, name) {
  const m = /^([^:]+):(\d{1,5})$/.exec(v || '');
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) usage(`${name} must be HOST:PORT`);
  return { host: m[1], port: Number(m[2]) };
}

const opts = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i];
  if (!['--listen', '--target', '--record'].includes(k) || i + 1 >= process.argv.length)
    usage(`unexpected argument ${k}`);
  opts[k.slice(2)] = process.argv[i + 1];
}
const listen = hostPort(opts.listen, '--listen');
const target = hostPort(opts.target, '--target');
if (!opts.record) usage('--record FILE is required');

const fd = fs.openSync(opts.record, 'a', 0o600);
const sockets = new Set();

function record(chunk) {
  let off = 0;
  while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
}

const server = net.createServer({ allowHalfOpen: true }, (client) => {
  const upstream = net.connect({ port: target.port, host: target.host, allowHalfOpen: true });
  sockets.add(client);
  sockets.add(upstream);
  client.on('data', (chunk) => {
    record(chunk);
    if (!upstream.write(chunk)) client.pause();
  });
  upstream.on('drain', () => client.resume());
  upstream.on('data', (chunk) => {
    if (!client.write(chunk)) upstream.pause();
  });
  client.on('drain', () => upstream.resume());
  // Half-closes are passed on, so a client that ends its request still gets the answer.
  client.on('end', () => upstream.end());
  upstream.on('end', () => client.end());
  const close = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', close);
  upstream.on('close', close);
});

server.on('error', (e) => {
  console.error(`devnet-proxy: ${opts.listen}: ${e.message}`);
  process.exit(1);
});

server.listen(listen.port, listen.host, () => {
  console.log(`devnet-proxy: listening on ${opts.listen}, relaying to ${opts.target}, ` +
              `recording client bytes to ${opts.record}`);
});

function stop() {
  server.close();
  for (const s of sockets) s.destroy();
  fs.closeSync(fd);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
