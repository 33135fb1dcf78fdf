#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The one test command (README, .ci/run): installs what is missing, builds OpenSeed twice (a normal
# build and an ASan+UBSan build), checks and tests the contracts, runs every test suite in both
# builds and the end-to-end suite (the official SDKs against scripts/devnet.sh), then the short
# forms of valgrind (scripts/valgrind.sh), the benchmark, the soak (scripts/soak.sh --short) and
# fuzzing (scripts/fuzz.sh 8), and prints a summary. Exits non-zero if anything failed.
#
#   scripts/test.sh            everything
#   JOBS=N scripts/test.sh     parallelism for builds and ctest (default: nproc)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}
start=$(date +%s)
total_pass=0
total_fail=0
failed_steps=()

step() { printf '\n==> %s\n' "$*"; }

# run_ctest DIR LABEL_REGEX: runs ctest and adds its counts to the totals.
run_ctest() {
    local dir=$1 labels=$2 log
    log=$(mktemp)
    (cd "$dir" && ctest --output-on-failure -j "$jobs" -L "$labels") 2>&1 | tee "$log"
    local line pass fail
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    if [ -z "$line" ]; then
        failed_steps+=("ctest in $dir ran no tests")
        total_fail=$((total_fail + 1))
    else
        fail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
        pass=$(( $(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line") - fail ))
        total_pass=$((total_pass + pass))
        total_fail=$((total_fail + fail))
        [ "$fail" -eq 0 ] || failed_steps+=("ctest $labels in $dir: $fail failed")
    fi
    rm -f "$log"
}

# check NAME CMD...: a step that counts as one test.
check() {
    local name=$1
    shift
    if "$@"; then
        total_pass=$((total_pass + 1))
    else
        total_fail=$((total_fail + 1))
        failed_steps+=("$name")
    fi
}

step "setup"
bash scripts/setup.sh || { echo "setup failed" >&2; exit 1; }

step "build (release with debug info)"
cmake -S . -B build -DOPENSEED_TESTS=ON -DOPENSEED_SANITIZE=OFF >/dev/null &&
    cmake --build build -j "$jobs" || { echo "build failed" >&2; exit 1; }

step "build (ASan+UBSan)"
cmake -S . -B build-asan -DOPENSEED_TESTS=ON -DOPENSEED_SANITIZE=ON >/dev/null &&
    cmake --build build-asan -j "$jobs" || { echo "sanitizer build failed" >&2; exit 1; }

step "libcommon exports only os_ symbols"
check "nm: bare symbols in libcommon.a" bash -c '
    bare=$(nm -g --defined-only build/libcommon.a | awk "NF==3 {print \$3}" | grep -v "^os_" || true)
    if [ -n "$bare" ]; then echo "not os_-prefixed:"; echo "$bare"; exit 1; fi
    echo "ok: $(nm -g --defined-only build/libcommon.a | awk "NF==3" | wc -l) external symbols, all os_"'

step "cores and SDK: only os_ exports, no exit()"
# The embedding promise (docs/sdk.md): a node never ends the process that hosts it. libopenseed's
# one _exit is devchain.c's forked child when exec of anvil fails, which is not the host.
check "nm: a core can end its host process, or the SDK exports a bare symbol" bash -c '
    for lib in build/libcommon.a build/libregistry_core.a build/libseller_core.a \
               build/libbuyer_core.a build/libopenseed.a; do
        calls=$(nm -u "$lib" | awk "{print \$2}" | grep -xE "exit|abort|quick_exit|_Exit" | sort -u || true)
        if [ -n "$calls" ]; then echo "$lib calls: $calls"; exit 1; fi
    done
    bare=$(nm -g --defined-only build/libopenseed.a | awk "NF==3 {print \$3}" | grep -v "^os_" || true)
    if [ -n "$bare" ]; then echo "libopenseed.a, not os_-prefixed:"; echo "$bare"; exit 1; fi
    echo "ok: no exit or abort in libcommon, the three cores or libopenseed; the SDK exports only os_"'

if [ -x scripts/build-contracts.sh ]; then
    step "contracts: committed artifacts match a fresh compile"
    check "contract artifacts differ from sources" bash scripts/build-contracts.sh --check
fi
# run_e2e: the official OpenAI and Anthropic SDKs against a devnet (tests/e2e/run.sh); its counts
# join the totals.
run_e2e() {
    local log line pass fail rc
    log=$(mktemp)
    OPENSEED_DEVNET_SKIP_SETUP=1 bash tests/e2e/run.sh 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -z "$line" ]; then
        total_fail=$((total_fail + 1))
        failed_steps+=("e2e printed no summary (tests/e2e/run.sh exit $rc)")
    else
        pass=$(sed -E 's/^e2e: ([0-9]+) passed.*/\1/' <<<"$line")
        fail=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
        total_pass=$((total_pass + pass))
        total_fail=$((total_fail + fail))
        [ "$fail" -eq 0 ] || failed_steps+=("e2e: $fail failed")
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            total_fail=$((total_fail + 1))
            failed_steps+=("e2e (tests/e2e/run.sh exit $rc)")
        fi
    fi
    rm -f "$log"
}

# run_fuzz: every libFuzzer harness for a short time after its regression inputs
# (scripts/fuzz.sh); one test per harness.
run_fuzz() {
    local log line pass fail rc
    log=$(mktemp)
    bash scripts/fuzz.sh 8 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -z "$line" ]; then
        total_fail=$((total_fail + 1))
        failed_steps+=("fuzz printed no summary (scripts/fuzz.sh exit $rc)")
    else
        pass=$(sed -E 's/^fuzz: ([0-9]+) passed.*/\1/' <<<"$line")
        fail=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
        total_pass=$((total_pass + pass))
        total_fail=$((total_fail + fail))
        [ "$fail" -eq 0 ] || failed_steps+=("fuzz: $fail harnesses failed")
    fi
    rm -f "$log"
}

# run_forge: the contract tests; forge's own counts join the totals.
run_forge() {
    local log line pass fail
    log=$(mktemp)
    bash scripts/test-contracts.sh 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    line=$(grep -E 'tests passed, [0-9]+ failed' "$log" | tail -1)
    if [ -z "$line" ]; then
        total_fail=$((total_fail + 1))
        failed_steps+=("forge ran no tests")
    else
        pass=$(sed -E 's/.*: ([0-9]+) tests passed.*/\1/' <<<"$line")
        fail=$(sed -E 's/.*tests passed, ([0-9]+) failed.*/\1/' <<<"$line")
        total_pass=$((total_pass + pass))
        total_fail=$((total_fail + fail))
    fi
    if [ "$rc" -ne 0 ]; then
        total_fail=$((total_fail + 1))
        failed_steps+=("contract tests (scripts/test-contracts.sh exit $rc)")
    fi
    rm -f "$log"
}

if [ -x scripts/test-contracts.sh ]; then
    step "contracts: forge tests (offline) and the anvil smoke test"
    run_forge
fi

step "tests: normal build (unit, crosscheck, integration)"
run_ctest build 'unit|crosscheck|integration'

step "tests: end to end (official OpenAI and Anthropic SDKs against scripts/devnet.sh)"
run_e2e

step "valgrind: one integration run with every daemon under memcheck (scripts/valgrind.sh)"
check "valgrind (scripts/valgrind.sh build)" bash scripts/valgrind.sh build

step "benchmarks: a short run of scripts/bench.sh, so the harness cannot rot"
check "bench smoke (scripts/bench.sh --smoke)" bash -c '
    out=$(mktemp -d) && trap "rm -rf \"$out\"" EXIT &&
    OPENSEED_BENCH_BUILD_DIR=build OPENSEED_BENCH_SKIP_BUILD=1 OPENSEED_BENCH_SKIP_SETUP=1 \
        bash scripts/bench.sh --smoke --out "$out" &&
    node bench/check-smoke.mjs "$out/latest.json"'

step "soak: 75 s of steady paid load (scripts/soak.sh --short; scripts/soak.sh runs 10 minutes)"
check "soak (scripts/soak.sh --short)" bash -c '
    out=$(mktemp -d) && trap "rm -rf \"$out\"" EXIT &&
    OPENSEED_BENCH_BUILD_DIR=build OPENSEED_BENCH_SKIP_BUILD=1 OPENSEED_BENCH_SKIP_SETUP=1 \
        bash scripts/soak.sh --short --out "$out"'

step "fuzzing: every harness 8 s (scripts/fuzz.sh 8; scripts/fuzz.sh for the long run)"
run_fuzz

step "tests: ASan+UBSan build (unit, integration)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_ctest build-asan 'unit|integration'

elapsed=$(( $(date +%s) - start ))
printf '\n==> summary (%ss)\n' "$elapsed"
for f in "${failed_steps[@]}"; do echo "FAILED: $f"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
