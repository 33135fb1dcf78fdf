#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The registry benchmark in one command (bench/README.md): builds openseed-registry and
# registry_bench in Release mode, then for each CPU layout starts the registry on a free loopback
# port with a fresh temporary data dir, runs the load generator against it (announce 10,000
# sellers, then closed-loop heartbeats and peers queries, then both again open-loop at 10,000
# req/s), stops the registry with SIGTERM and prints the generator's table. Prints numbers; it
# fails only when something could not run.
#
#   scripts/bench-registry.sh                   both layouts: shared (no pinning), pinned
#   LAYOUTS=shared scripts/bench-registry.sh    one layout
#   scripts/bench-registry.sh --duration 5      extra options go to registry_bench
#
# Environment: BUILD_DIR (default build-bench), SKIP_BUILD=1 (use the binaries in BUILD_DIR as
# they are), LAYOUTS ("shared pinned"), PHASES, SELLERS,
# CONNECTIONS, THREADS, REGISTRY_THREADS (the registry's --threads; default: its own default).
# Layouts: "shared": registry and generator both free to use every CPU (the generator's CPU use is
# printed); "pinned": registry on CPU 0 and generator on CPU 1 (taskset), one core each.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
layouts=${LAYOUTS:-shared pinned}
phases=${PHASES:-announce,heartbeat,peers,heartbeat@10000,peers@10000}
sellers=${SELLERS:-10000}
connections=${CONNECTIONS:-16}
threads=${THREADS:-1}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "==> building (Release) in $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DOPENSEED_TESTS=OFF >/dev/null
    cmake --build "$build" -j "$(nproc)" --target openseed-registry registry_bench >/dev/null
fi
for b in openseed-registry registry_bench; do
    [ -x "$build/$b" ] || { echo "bench-registry: $build/$b is missing" >&2; exit 1; }
done

reg_pid=
tmp=
cleanup() {
    if [ -n "$reg_pid" ] && kill -0 "$reg_pid" 2>/dev/null; then
        kill -TERM "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
    fi
    reg_pid=
    if [ -n "$tmp" ]; then
        rm -rf "$tmp"
    fi
    tmp=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_layout NAME REGISTRY_CPUS GENERATOR_CPUS [registry_bench options...]
run_layout() {
    local name=$1 reg_cpus=$2 gen_cpus=$3
    shift 3
    local reg_pin=() gen_pin=() reg_extra=() port=
    if [ -n "$reg_cpus" ]; then reg_pin=(taskset -c "$reg_cpus"); fi
    if [ -n "$gen_cpus" ]; then gen_pin=(taskset -c "$gen_cpus"); fi
    if [ -n "${REGISTRY_THREADS:-}" ]; then reg_extra=(--threads "$REGISTRY_THREADS"); fi

    tmp=$(mktemp -d /tmp/openseed-bench-registry-XXXXXX)
    # The generator is one source address: the per-address rate limit is turned off, and the
    # per-address connection cap raised above the generator's connection count.
    "${reg_pin[@]}" "$build/openseed-registry" --listen 127.0.0.1:0 --data-dir "$tmp" \
        --log-level info --rate-limit 0 --max-connections-per-ip 1024 "${reg_extra[@]}" \
        >"$tmp/registry.log" 2>&1 &
    reg_pid=$!
    for _ in $(seq 1 1500); do
        port=$(sed -n 's/.*msg="registry listening".* port=\([0-9]*\).*/\1/p' "$tmp/registry.log" | tail -1)
        if [ -n "$port" ]; then break; fi
        if ! kill -0 "$reg_pid" 2>/dev/null; then
            echo "openseed-registry exited before listening:" >&2
            cat "$tmp/registry.log" >&2
            return 1
        fi
        sleep 0.01
    done
    if [ -z "$port" ]; then
        echo "openseed-registry did not listen within 15 s" >&2
        return 1
    fi

    echo
    echo "==> layout: $name (registry pid $reg_pid, port $port)"
    "${gen_pin[@]}" "$build/registry_bench" --port "$port" --server-pid "$reg_pid" \
        --sellers "$sellers" --connections "$connections" --threads "$threads" \
        --phases "$phases" "$@"

    kill -TERM "$reg_pid"
    local st=0
    wait "$reg_pid" || st=$?
    reg_pid=
    if [ "$st" -ne 0 ]; then
        echo "openseed-registry exited with status $st after SIGTERM; its log:" >&2
        tail -20 "$tmp/registry.log" >&2
    fi
    rm -rf "$tmp"
    tmp=
}

ncpu=$(nproc)
# The generator prints the CPU other processes took in each window ("other"); warn up front too.
read -r load1 _ </proc/loadavg
echo "==> load average before the run: $load1 ($ncpu CPUs)"
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    echo "    warning: the machine is busy; other processes will take CPU from the benchmark" >&2
fi
for layout in $layouts; do
    case $layout in
    shared) run_layout "shared (no pinning, $ncpu CPUs)" "" "" "$@" ;;
    pinned)
        if [ "$ncpu" -lt 2 ]; then
            echo "skipping the pinned layout: it needs 2 CPUs" >&2
            continue
        fi
        run_layout "pinned (registry on CPU 0, generator on CPU 1)" 0 1 "$@"
        ;;
    *)
        echo "unknown layout: $layout (shared, pinned)" >&2
        exit 2
        ;;
    esac
done
