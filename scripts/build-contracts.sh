#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Compiles the deployable contracts (contracts/src) with solc-js through scripts/solc-shim, using fixed
# standard-JSON settings, and writes contracts/out/<Contract>.json = {contractName, sourceName, compiler,
# settings, abi, bytecode, deployedBytecode, methodIdentifiers}. The output is byte-identical from run
# to run and machine to machine (no paths, no timestamps; the CBOR metadata hash depends only on the
# sources, their unit names and the settings), so the artifacts can be committed and checked:
#   scripts/build-contracts.sh           rebuild contracts/out/
#   scripts/build-contracts.sh --check   rebuild into a temp dir and fail if contracts/out/ differs
# Needs node and `npm install --prefix tools` (solc 0.8.37, @openzeppelin/contracts 5.7.0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/contracts/out"
CHECK=0
case "${1:-}" in
  "") ;;
  --check) CHECK=1 ;;
  -h|--help) sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v node >/dev/null || { echo "build-contracts: node not found" >&2; exit 1; }
for dep in solc @openzeppelin/contracts; do
  if [ ! -f "$ROOT/tools/node_modules/$dep/package.json" ]; then
    echo "build-contracts: tools/node_modules/$dep missing; run: npm install --prefix tools" >&2
    exit 1
  fi
done

DEST="$OUT"
TMP=""
if [ "$CHECK" = 1 ]; then
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  DEST="$TMP"
fi
mkdir -p "$DEST"

node - "$ROOT" "$DEST" <<'JS'
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const [root, dest] = process.argv.slice(2);
const contractsDir = path.join(root, 'contracts');

// Deployable contracts, in output order. Test-only contracts live under contracts/test and are
// compiled by forge alone.
const TARGETS = [
  { name: 'OpenSeedChannels', source: 'src/OpenSeedChannels.sol' },
  { name: 'TestUSDC', source: 'src/TestUSDC.sol' },
];

// Keep in step with contracts/foundry.toml so the tests exercise this exact code
// (contracts/test/Artifacts.t.sol compares the runtime code).
const SETTINGS = {
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 200 },
  viaIR: false,
  metadata: { bytecodeHash: 'ipfs', appendCBOR: true },
};

const input = {
  language: 'Solidity',
  sources: {},
  settings: Object.assign({}, SETTINGS, {
    outputSelection: {
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.methodIdentifiers'] },
    },
  }),
};
for (const t of TARGETS) {
  input.sources[t.source] = { content: fs.readFileSync(path.join(contractsDir, t.source), 'utf8') };
}

const raw = execFileSync(
  path.join(root, 'scripts', 'solc-shim'),
  ['--standard-json', '--base-path', contractsDir, '--include-path', path.join(root, 'tools', 'node_modules')],
  { input: JSON.stringify(input), maxBuffer: 256 << 20 },
);
const output = JSON.parse(raw.toString('utf8'));

let failed = false;
for (const e of output.errors || []) {
  // Warnings in our own sources fail the build too: they are cheap to fix and easy to miss later.
  const ours = e.sourceLocation && !e.sourceLocation.file.startsWith('@');
  if (e.severity === 'error' || ours) failed = true;
  process.stderr.write((e.formattedMessage || e.message) + '\n');
}
if (failed) {
  process.stderr.write('build-contracts: compilation failed\n');
  process.exit(1);
}

const compiler = /^\d+\.\d+\.\d+\+commit\.[0-9a-f]+/.exec(
  require(path.join(root, 'tools', 'node_modules', 'solc')).version(),
)[0];

for (const t of TARGETS) {
  const c = output.contracts[t.source][t.name];
  const sorted = {};
  for (const k of Object.keys(c.evm.methodIdentifiers).sort()) sorted[k] = c.evm.methodIdentifiers[k];
  const artifact = {
    contractName: t.name,
    sourceName: t.source,
    compiler,
    settings: SETTINGS,
    abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object,
    deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    methodIdentifiers: sorted,
  };
  if (!c.evm.bytecode.object) throw new Error(`${t.name}: empty bytecode`);
  fs.writeFileSync(path.join(dest, t.name + '.json'), JSON.stringify(artifact, null, 2) + '\n');
}
JS

if [ "$CHECK" = 1 ]; then
  status=0
  for f in "$TMP"/*.json; do
    name="$(basename "$f")"
    if [ ! -f "$OUT/$name" ]; then
      echo "build-contracts --check: contracts/out/$name is missing" >&2
      status=1
    elif ! cmp -s "$f" "$OUT/$name"; then
      echo "build-contracts --check: contracts/out/$name differs from a fresh build of contracts/src" >&2
      status=1
    fi
  done
  for f in "$OUT"/*.json; do
    [ -e "$f" ] || continue
    if [ ! -f "$TMP/$(basename "$f")" ]; then
      echo "build-contracts --check: contracts/out/$(basename "$f") is not produced by the build" >&2
      status=1
    fi
  done
  if [ "$status" != 0 ]; then
    echo "build-contracts --check: FAILED; run scripts/build-contracts.sh and commit contracts/out/" >&2
    exit 1
  fi
  echo "build-contracts --check: contracts/out/ is up to date"
else
  for f in "$OUT"/*.json; do echo "wrote ${f#"$ROOT"/}"; done
fi
