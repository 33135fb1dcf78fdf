#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the libFuzzer harnesses (fuzz/fuzz_*.c: every parser of untrusted input) for a bounded time
# each, after replaying every committed regression input (fuzz/regressions/<harness>/*: inputs that
# once crashed, kept so the bug stays fixed). Builds them with clang into build-fuzz/
# (-DOPENSEED_FUZZ=ON: everything instrumented, AddressSanitizer + UndefinedBehaviorSanitizer).
#
#   scripts/fuzz.sh                 300 s per harness
#   scripts/fuzz.sh 20              20 s per harness (what scripts/test.sh runs)
#   scripts/fuzz.sh 600 fuzz_ohttp  one harness
#
# Each harness starts from its committed seeds (fuzz/corpus/<harness>, never written to) and the
# corpus earlier runs grew (build-fuzz/corpus/<harness>). A crash, leak, timeout (10 s per input)
# or sanitizer report stops that harness; its input is saved under build-fuzz/crashes/<harness>/.
# Prints `fuzz: N passed, M failed` (one per harness) and exits non-zero when any failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
seconds=${1:-300}
shift || true
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { echo "usage: scripts/fuzz.sh [SECONDS] [HARNESS...]" >&2; exit 2; }
build=${OPENSEED_FUZZ_BUILD_DIR:-$root/build-fuzz}

command -v clang >/dev/null 2>&1 || { echo "fuzz: clang is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
if [ $# -gt 0 ]; then
    names=("$@")
else
    mapfile -t names < <(find fuzz -maxdepth 1 -name 'fuzz_*.c' -printf '%f\n' | sed 's/\.c$//' | LC_ALL=C sort)
fi
[ ${#names[@]} -gt 0 ] || { echo "fuzz: no harnesses in fuzz/" >&2; exit 1; }

echo "==> building ${#names[@]} harnesses (clang, libFuzzer, ASan+UBSan) in $build"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DOPENSEED_FUZZ=ON -DOPENSEED_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/build.log" 2>&1 &&
    cmake --build "$build" -j "$(nproc)" --target "${names[@]}" >>"$build/build.log" 2>&1 ||
    { tail -n 30 "$build/build.log" >&2; echo "fuzz: build failed (log: $build/build.log)"; echo "fuzz: 0 passed, ${#names[@]} failed"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pass=0
fail=0
for n in "${names[@]}"; do
    bin="$build/$n"
    [ -x "$bin" ] || { echo "fuzz: $bin is missing" >&2; fail=$((fail + 1)); continue; }
    seeds="$root/fuzz/corpus/$n"
    grown="$build/corpus/$n"
    crashes="$build/crashes/$n"
    mkdir -p "$grown" "$crashes"
    log="$build/$n.log"
    ok=1
    # the regression inputs first: each must run clean
    if [ -d "$root/fuzz/regressions/$n" ] && [ -n "$(ls -A "$root/fuzz/regressions/$n")" ]; then
        if ! "$bin" -runs=1 "$root/fuzz/regressions/$n"/* >"$log.regressions" 2>&1; then
            echo "fuzz: $n fails on a regression input:" >&2
            grep -m 5 -E 'ERROR|SUMMARY|Running:' "$log.regressions" >&2
            ok=0
        fi
    fi
    if [ "$ok" = 1 ]; then
        args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
            -artifact_prefix="$crashes/" "$grown")
        [ -d "$seeds" ] && args+=("$seeds")
        if "$bin" "${args[@]}" >"$log" 2>&1; then
            stats=$(grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | awk '{print $2}' | paste -sd' ')
            cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
            echo "fuzz: $n ok: ${seconds}s, runs/peak MB $stats, $cov"
        else
            echo "fuzz: $n FAILED (log: $log; inputs: $crashes):" >&2
            grep -m 8 -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" >&2
            ok=0
        fi
    fi
    if [ "$ok" = 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
