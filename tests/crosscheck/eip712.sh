# SPDX-License-Identifier: Apache-2.0
# Cross-checks libcommon's EIP-712 engine and secp256k1 signing against ethers (npm), an
# independent implementation: seeded random typed-data documents must hash, sign and recover
# identically on both sides, and malformed ones must be refused by both. Run by ctest as
#   bash eip712.sh BUILD_DIR SOURCE_DIR
# Environment: OPENSEED_CROSSCHECK_SEED (default: from the clock), OPENSEED_CROSSCHECK_N (200).
# A missing node, ethers or tool is a failure, never a skip.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: bash eip712.sh BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
tool="$build_dir/os_eip712_tool"
ethers_dir="$source_dir/tools/node_modules/ethers"

if ! command -v node >/dev/null 2>&1; then
    echo "eip712 crosscheck: FAIL: node is not installed (needed to run ethers)" >&2
    exit 1
fi
if [ ! -f "$ethers_dir/package.json" ]; then
    echo "eip712 crosscheck: FAIL: ethers not found at $ethers_dir (run npm ci in $source_dir/tools)" >&2
    exit 1
fi
if [ ! -x "$tool" ]; then
    echo "eip712 crosscheck: FAIL: $tool not built (target os_eip712_tool)" >&2
    exit 1
fi

seed="${OPENSEED_CROSSCHECK_SEED:-$(( $(date +%s) % 4294967296 ))}"
count="${OPENSEED_CROSSCHECK_N:-200}"
exec node "$source_dir/tests/crosscheck/eip712.js" "$tool" "$ethers_dir" "$count" "$seed"
