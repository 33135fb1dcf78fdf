#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Cross-checks EIP-1559 signing, hashing and parsing against ethers 6 (tx.js explains how).
# Usage: bash tx.sh BUILD_DIR SOURCE_DIR [N] [SEED]. Fails, never skips, when a piece is missing.
set -euo pipefail

build=${1:?usage: tx.sh BUILD_DIR SOURCE_DIR [N] [SEED]}
src=${2:?usage: tx.sh BUILD_DIR SOURCE_DIR [N] [SEED]}
n=${3:-200}
seed=${4:-20250101}
tool="$build/os_tx_tool"
ethers="$src/tools/node_modules/ethers"

if ! command -v node >/dev/null 2>&1; then
    echo "tx crosscheck: FAIL: node is not installed (needed to run ethers)" >&2
    exit 1
fi
if [ ! -f "$ethers/package.json" ]; then
    echo "tx crosscheck: FAIL: ethers not found at $ethers (run npm ci in $src/tools)" >&2
    exit 1
fi
if [ ! -x "$tool" ]; then
    echo "tx crosscheck: FAIL: $tool not built (cmake --build $build --target os_tx_tool)" >&2
    exit 1
fi
exec node "$(dirname "$0")/tx.js" "$tool" "$ethers" "$n" "$seed"
