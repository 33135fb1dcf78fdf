#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs the contracts' forge tests offline (unit, fuzz and invariant tests under contracts/test), with the
# fuzz seed printed first so any failure can be replayed: the seed is contracts/foundry.toml's [fuzz] seed
# unless OPENSEED_FUZZ_SEED is set. Extra arguments go to `forge test` (e.g. --match-test NAME -vvv).
# Then, unless arguments were given, contracts/test/anvil-smoke.js deploys the committed artifacts on
# anvil and checks a channel's life with ethers. Exits non-zero if anything fails.
# Needs `npm install --prefix tools` (forge, anvil, solc-js, OpenZeppelin, ethers).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FORGE="$ROOT/tools/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
for f in "$FORGE" "$ROOT/tools/node_modules/solc/package.json" \
         "$ROOT/tools/node_modules/@openzeppelin/contracts/package.json"; do
  if [ ! -e "$f" ]; then
    echo "test-contracts: ${f#"$ROOT"/} missing; run: npm install --prefix tools" >&2
    exit 1
  fi
done

SEED="${OPENSEED_FUZZ_SEED:-$(sed -n 's/^seed = "\(0x[0-9a-fA-F]*\)".*/\1/p' "$ROOT/contracts/foundry.toml")}"
if [ -z "$SEED" ]; then
  echo "test-contracts: no [fuzz] seed in contracts/foundry.toml and OPENSEED_FUZZ_SEED unset" >&2
  exit 1
fi
echo "test-contracts: fuzz seed $SEED (replay with OPENSEED_FUZZ_SEED=$SEED $0)"

cd "$ROOT/contracts"
start=$(date +%s)
status=0
"$FORGE" test --offline --fuzz-seed "$SEED" "$@" || status=$?
echo "test-contracts: forge exited $status after $(( $(date +%s) - start ))s (seed $SEED)"

if [ "$#" -eq 0 ]; then
  node "$ROOT/contracts/test/anvil-smoke.js" || status=1
fi
echo "test-contracts: total $(( $(date +%s) - start ))s, $([ "$status" = 0 ] && echo PASSED || echo FAILED)"
exit "$status"
