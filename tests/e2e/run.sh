#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The end-to-end suite: brings up a devnet (scripts/devnet.sh: anvil with the contracts, a
# registry, two sellers on the built-in echo upstream, the buyer) on free loopback ports in a
# temporary folder, with the wire recorder on, then runs the official OpenAI and Anthropic SDK
# tests in tests/e2e/*.test.mjs against it with node's test runner, one file after another in name
# order (the failover test kills a seller, so it runs last), and always stops the devnet. Prints
# `e2e: N passed, M failed` and exits non-zero when anything failed.
#
#   tests/e2e/run.sh                       everything
#   tests/e2e/run.sh tests/e2e/10-*.mjs    only these files (same devnet set-up)
#   OPENSEED_E2E_KEEP=1 tests/e2e/run.sh   keep the devnet folder (logs, data, wire) afterwards;
#                                          it is kept anyway when something failed
#   OPENSEED_E2E_DEVNET=FILE               another script with devnet.sh's up/down interface
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
devnet=${OPENSEED_E2E_DEVNET:-"$root/scripts/devnet.sh"}

fail_early() {
    echo "e2e: $*" >&2
    echo "e2e: 0 passed, 1 failed"
    exit 1
}

command -v node >/dev/null 2>&1 || fail_early "node is not installed (run scripts/setup.sh)"
[ -f "$devnet" ] || fail_early "$devnet is missing"
for pkg in openai @anthropic-ai/sdk ethers; do
    [ -f "tools/node_modules/$pkg/package.json" ] ||
        fail_early "tools/node_modules/$pkg is missing (run scripts/setup.sh)"
done

if [ $# -gt 0 ]; then
    files=("$@")
else
    mapfile -t files < <(find tests/e2e -maxdepth 1 -name '*.test.mjs' | LC_ALL=C sort)
fi
[ ${#files[@]} -gt 0 ] || fail_early "no test files"

dir=$(mktemp -d "${TMPDIR:-/tmp}/openseed-e2e-XXXXXX") || fail_early "cannot create a folder"
export OPENSEED_DEVNET_DIR="$dir"
export OPENSEED_DEVNET_RECORD=1
# the tests know the built-in echo model's answers exactly: never a real upstream from the caller
unset OPENSEED_UPSTREAM OPENSEED_UPSTREAM_API OPENSEED_UPSTREAM_MODEL \
    OPENSEED_UPSTREAM_EMBED_MODEL OPENSEED_UPSTREAM_KEY_FILE OPENSEED_UPSTREAM_KEY_ENV

# Ten distinct free ports, held together while they are chosen so none repeats.
free_ports() { node "$root/scripts/free-ports.mjs" 10; }

down() {
    OPENSEED_DEVNET_DIR="$dir" timeout 120 bash "$devnet" down >>"$dir/down.log" 2>&1 ||
        { echo "e2e: scripts/devnet.sh down failed:" >&2; tail -n 20 "$dir/down.log" >&2; }
}
running=0
on_exit() { [ "$running" -eq 1 ] && { running=0; down; }; }
trap on_exit EXIT
trap 'on_exit; exit 130' INT
trap 'on_exit; exit 143' TERM

show_logs() {
    local f
    for f in "$dir"/*.log "$dir"/*/*.log; do
        [ -f "$f" ] || continue
        echo "---- last lines of $f" >&2
        tail -n 25 "$f" >&2
    done
}

# Up to two attempts: a port picked here can be taken by someone else before the devnet binds it.
for attempt in 1 2; do
    read -r p_rpc p_reg p_buyer p_s1 p_s2 p_a1 p_a2 x_reg x_s1 x_s2 < <(free_ports) ||
        fail_early "no free ports"
    [ -n "$x_s2" ] || fail_early "no free ports"
    export OPENSEED_RPC_PORT=$p_rpc OPENSEED_REGISTRY_PORT=$p_reg OPENSEED_BUYER_PORT=$p_buyer \
        OPENSEED_SELLER_PORT=$p_s1 OPENSEED_SELLER2_PORT=$p_s2 \
        OPENSEED_SELLER_ADMIN_PORT=$p_a1 OPENSEED_SELLER2_ADMIN_PORT=$p_a2 \
        OPENSEED_REGISTRY_PROXY_PORT=$x_reg OPENSEED_SELLER_PROXY_PORT=$x_s1 \
        OPENSEED_SELLER2_PROXY_PORT=$x_s2
    echo "e2e: devnet in $dir (rpc $p_rpc, registry $p_reg, buyer $p_buyer, sellers $p_s1 $p_s2," \
        "admin $p_a1 $p_a2, recording proxies $x_reg $x_s1 $x_s2), attempt $attempt"
    running=1
    if timeout 900 bash "$devnet" up >>"$dir/up.log" 2>&1; then
        break
    fi
    echo "e2e: scripts/devnet.sh up failed (attempt $attempt):" >&2
    tail -n 40 "$dir/up.log" >&2
    running=0
    down
    if [ "$attempt" -eq 2 ]; then
        show_logs
        echo "e2e: devnet folder kept: $dir" >&2
        fail_early "the devnet did not come up"
    fi
done
[ -f "$dir/devnet.env" ] || fail_early "scripts/devnet.sh up wrote no $dir/devnet.env"

total_pass=0
total_fail=0
for f in "${files[@]}"; do
    echo
    echo "==> e2e: $f"
    tap="$dir/$(basename "$f").tap"
    # the devnet's addresses come from devnet.env, in a subshell: nothing leaks between files
    (
        set -a
        # shellcheck disable=SC1091
        . "$dir/devnet.env"
        set +a
        exec timeout 600 node --test --test-reporter=spec --test-reporter-destination=stdout \
            --test-reporter=tap --test-reporter-destination="$tap" "$f"
    )
    rc=$?
    pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$tap" 2>/dev/null | tail -1)
    fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$tap" 2>/dev/null | tail -1)
    cancelled=$(sed -nE 's/^# cancelled ([0-9]+)$/\1/p' "$tap" 2>/dev/null | tail -1)
    pass=${pass:-0}
    fail=$(( ${fail:-0} + ${cancelled:-0} ))
    # a file that died without a summary, or exited non-zero with none counted, is one failure
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        echo "e2e: $f exited with status $rc" >&2
        fail=1
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
done

running=0
down
if [ "$total_pass" -eq 0 ] && [ "$total_fail" -eq 0 ]; then
    echo "e2e: no test ran" >&2
    total_fail=1
fi
if [ "$total_fail" -ne 0 ]; then
    show_logs
    echo "e2e: devnet folder kept: $dir" >&2
elif [ "${OPENSEED_E2E_KEEP:-0}" = 1 ]; then
    echo "e2e: devnet folder kept: $dir"
else
    rm -rf "$dir"
fi
echo "e2e: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
