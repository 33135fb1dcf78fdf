#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# valgrind (memcheck) on one integration run: tests/integration/test_network.c (anvil, the
# registry, two sellers and the buyer as processes; paid whole, streamed and Anthropic calls; a
# seller killed with SIGKILL and the buyer failing over; SIGTERM to the rest) with every daemon
# under memcheck (netfix.h's OPENSEED_NETFIX_VALGRIND=1; the test process itself, a client, is
# covered by the sanitizer build instead). It fails when the test
# fails, or when any process that exited (the SIGKILLed seller cannot) reports a memory error or a
# definite or indirect leak. Reports are kept in BUILD_DIR/valgrind/.
#
#   scripts/valgrind.sh [BUILD_DIR]    default build/ (configured if needed; the test and the
#                                      daemons are brought up to date there)
#
# Prints `valgrind: N processes checked, M with errors` and exits non-zero when anything failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
build=$(realpath -m "${1:-$root/build}")

command -v valgrind >/dev/null 2>&1 || { echo "valgrind: not installed (scripts/setup.sh installs it)" >&2; echo "valgrind: 0 processes checked, 1 with errors"; exit 1; }
{ [ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DOPENSEED_TESTS=ON >/dev/null; } &&
    cmake --build "$build" -j "$(nproc)" --target it_test_network openseed-registry \
        openseed-seller openseed-buyer >/dev/null ||
    { echo "valgrind: build failed"; echo "valgrind: 0 processes checked, 1 with errors"; exit 1; }

logs="$build/valgrind"
rm -rf "$logs" && mkdir -p "$logs"
echo "==> test_network with every process under memcheck (reports in $logs)"
OPENSEED_NETFIX_VALGRIND=1 OPENSEED_NETFIX_VALGRIND_LOGS="$logs" \
    OPENSEED_BUILD_DIR="$build" OPENSEED_SOURCE_DIR="$root" \
    timeout 900 "$build/it_test_network"
rc=$?

checked=0
bad=0
for f in "$logs"/*.valgrind.*; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    summary=$(sed -nE 's/^==[0-9]+== ERROR SUMMARY: ([0-9]+) errors.*/\1/p' "$f" | tail -1)
    if [ -z "$summary" ]; then
        echo "  $name: no summary (killed by the test with SIGKILL)"
        continue
    fi
    checked=$((checked + 1))
    lost=$(grep -E '(definitely|indirectly) lost: [1-9]' "$f" | tr -s ' ' | sed 's/^==[0-9]*== *//' | paste -sd ';' -)
    if [ "$summary" -ne 0 ] || [ -n "$lost" ]; then
        bad=$((bad + 1))
        echo "  $name: $summary errors ${lost:+($lost)}: see $f"
    else
        echo "  $name: 0 errors, no definite or indirect leaks"
    fi
done
# the registry, one seller and the buyer exit by themselves
if [ "$checked" -lt 3 ]; then
    echo "valgrind: expected at least 3 reports with a summary, found $checked" >&2
    bad=$((bad + 1))
fi
if [ "$rc" -ne 0 ]; then
    echo "valgrind: test_network exited with status $rc" >&2
    [ "$bad" -eq 0 ] && bad=1
fi
echo "valgrind: $checked processes checked, $bad with errors"
[ "$bad" -eq 0 ]
