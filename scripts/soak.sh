#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The soak test (issue #9): a steady load through the whole paid path for a long time, then proof
# that nothing leaked and every request is accounted for. On loopback: the fake model
# (bench/echo_upstream), and scripts/devnet.sh's network in front of it (anvil with the contracts,
# the registry, two sellers, the buyer). bench/path_bench sends, open-loop at a fixed total rate, a
# mix of OpenAI chat completions (whole and streamed) and Anthropic messages (whole and streamed,
# translated by the buyer), each third left to the buyer's routing, pinned to seller 1 or pinned
# to seller 2 (X-OpenSeed-Peer), and awaits every reply at the end. Meanwhile the RSS and open
# descriptors of every daemon are sampled. Then bench/soak-collect.mjs reads both ledgers (the
# SQLite files and the management APIs), settles each seller and reads the escrow, and
# bench/soak-check.mjs judges (see its header for the exact criteria): zero failed requests; RSS
# and descriptors flat (last third of the samples under load against the first third, after a
# warm-up: RSS + max(10 %, 4 MiB), descriptors + 8); requests sent == the buyer's ledger rows ==
# the sellers' rows; per channel, rows, consumed and cost sums equal on both sides to the
# micro-USDC; after settlement, the escrow's claimed == the seller's confirmed settlements and
# consumed <= claimed <= consumed + the last charged request's slack.
#
#   scripts/soak.sh              the full soak: 600 s at 60 req/s, memory sampled every 5 s
#   scripts/soak.sh --short      the CI form: 75 s at 60 req/s, sampled every 2 s
#   options: --duration S, --rate R (total req/s), --sample S (seconds between samples),
#            --warmup S (samples before S seconds of load are not judged), --out DIR
#
# Writes DIR/soak-<UTC time>.json (the verdict, the numbers and the raw data the verdict came
# from: `node bench/soak-check.mjs FILE` judges it again) and .md, copied to soak-latest.json and
# soak-latest.md; DIR defaults to bench/results. The last line printed is
# "soak: N requests, E errors, PASS|FAIL"; the exit status is 0 only on PASS.
#
# Environment: OPENSEED_BENCH_BUILD_DIR (the build folder [build-bench]; built Release unless
# OPENSEED_BENCH_SKIP_BUILD=1), OPENSEED_BENCH_SKIP_SETUP=1 (do not run scripts/setup.sh),
# OPENSEED_SOAK_KEEP=1 (keep the work folder: logs, databases, raw samples).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mode=full
duration=""
rate=60
sample=""
warmup=""
out="$root/bench/results"
latency_ms=20
tokens_per_s=100

die() {
    echo "soak: $*" >&2
    exit 1
}
say() { echo "soak: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
    --short) mode=short ;;
    --duration) duration=${2:?--duration needs seconds}; shift ;;
    --rate) rate=${2:?--rate needs requests per second}; shift ;;
    --sample) sample=${2:?--sample needs seconds}; shift ;;
    --warmup) warmup=${2:?--warmup needs seconds}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    -h | --help)
        sed -n '3,31p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) echo "soak: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case $mode in
full) : "${duration:=600}" "${sample:=5}" ;;
short) : "${duration:=75}" "${sample:=2}" ;;
esac
# The first 10 % of the load (at least 10 s, at most 60 s) is not judged: channels open, caches,
# thread stacks and SQLite's page cache fill.
if [ -z "$warmup" ]; then
    warmup=$((duration / 10))
    [ "$warmup" -ge 10 ] || warmup=10
    [ "$warmup" -le 60 ] || warmup=60
fi
[[ $duration =~ ^[0-9]+$ ]] && [ "$duration" -ge 10 ] || die "--duration: $duration is not a whole number of seconds >= 10"
[[ $rate =~ ^[0-9]+$ ]] && [ "$rate" -ge 4 ] && [ "$rate" -le 2000 ] || die "--rate: $rate is not a whole rate in 4..2000"
[[ $sample =~ ^[0-9]+$ ]] && [ "$sample" -ge 1 ] || die "--sample: $sample is not a whole number of seconds >= 1"
[[ $warmup =~ ^[0-9]+$ ]] && [ "$warmup" -lt "$duration" ] || die "--warmup: $warmup is not a whole number of seconds below --duration"
command -v sqlite3 >/dev/null 2>&1 || [ "${OPENSEED_BENCH_SKIP_SETUP:-0}" != 1 ] ||
    die "sqlite3 (the command-line shell) is missing: scripts/setup.sh installs it"

# ---------------------------------------------------------------- install and build

if [ "${OPENSEED_BENCH_SKIP_SETUP:-0}" != 1 ]; then
    say "setting up (scripts/setup.sh)"
    bash "$root/scripts/setup.sh" >&2 || die "scripts/setup.sh failed"
fi
build=${OPENSEED_BENCH_BUILD_DIR:-$root/build-bench}
if [ "${OPENSEED_BENCH_SKIP_BUILD:-0}" != 1 ]; then
    say "building (Release) in $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DOPENSEED_TESTS=OFF >/dev/null ||
        die "cmake configure failed"
    cmake --build "$build" -j "$(nproc)" --target openseed-registry openseed-seller openseed-buyer \
        echo_upstream path_bench >/dev/null || die "build failed"
fi
for b in openseed-registry openseed-seller openseed-buyer echo_upstream path_bench; do
    [ -x "$build/$b" ] || die "$build/$b is missing"
done
build=$(cd "$build" && pwd)
"$build/path_bench" --help | grep -q -- --finish || die "$build/path_bench predates --finish: rebuild it"

# ---------------------------------------------------------------- the processes

work=$(mktemp -d "${TMPDIR:-/tmp}/openseed-soak-XXXXXX")
mkdir -p "$out"
say "work folder $work"
echo_pid=""
devnet_up=0
load_pids=()

# shellcheck source=bench/net.sh
. "$root/bench/net.sh"
teardown() {
    local p
    for p in "${load_pids[@]}"; do stop_pid "$p"; done
    load_pids=()
    net_devnet_down
    stop_pid "$echo_pid"
    echo_pid=""
}
cleanup() {
    local rc=$?
    teardown
    if [ "$rc" -eq 0 ] && [ "${OPENSEED_SOAK_KEEP:-0}" != 1 ]; then
        rm -rf "$work"
    else
        echo "soak: logs, databases and raw samples kept in $work" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for attempt in 1 2; do
    read -r p_rpc p_reg p_buyer p_s1 p_s2 p_a1 p_a2 p_echo < <(node "$root/scripts/free-ports.mjs" 8) ||
        die "no free ports"
    say "starting the fake model on $p_echo and the network (scripts/devnet.sh up)"
    if net_echo_start "$p_echo" "$latency_ms" "$tokens_per_s" &&
        net_devnet_up "$p_rpc" "$p_reg" "$p_buyer" "$p_s1" "$p_s2" "$p_a1" "$p_a2" "$p_echo"; then
        break
    fi
    tail -n 30 "$work/up.log" >&2
    teardown
    [ "$attempt" = 1 ] || die "the network did not come up (logs in $work)"
done
set -a
# shellcheck disable=SC1091
. "$work/devnet/devnet.env"
set +a

# ---------------------------------------------------------------- memory and descriptors

declare -A pid_of=([registry]=$OPENSEED_REGISTRY_PID [seller1]=$OPENSEED_SELLER1_PID
    [seller2]=$OPENSEED_SELLER2_PID [buyer]=$OPENSEED_BUYER_PID [anvil]=$OPENSEED_ANVIL_PID
    [upstream]=$echo_pid)
proc_json() { # PID: {"alive":..,"rss_kb":..,"hwm_kb":..,"fds":..}
    local p=$1 rss=0 hwm=0 state="" fds=0 k v rest
    if [ -r "/proc/$p/status" ]; then
        while read -r k v rest; do
            case $k in
            State:) state=$v ;;
            VmRSS:) rss=$v ;;
            VmHWM:) hwm=$v ;;
            esac
        done <"/proc/$p/status" 2>/dev/null || true
        fds=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    fi
    local alive=false
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] && alive=true
    printf '{"alive":%s,"rss_kb":%s,"hwm_kb":%s,"fds":%s}' "$alive" "${rss:-0}" "${hwm:-0}" "$fds"
}
snapshot() { # PHASE SECONDS: one JSON line of every process's numbers
    local n first=1
    {
        printf '{"phase":"%s","t":%s,"procs":{' "$1" "$2"
        for n in registry seller1 seller2 buyer anvil upstream; do
            [ "$first" = 1 ] || printf ','
            first=0
            printf '"%s":%s' "$n" "$(proc_json "${pid_of[$n]}")"
        done
        printf '}}\n'
    } >>"$work/memory.jsonl"
}
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# ---------------------------------------------------------------- load

count_rows() { sqlite3 -readonly "$1" "SELECT count(*) FROM requests" 2>/dev/null || echo 0; }
printf '{"buyer_requests":%s,"seller_requests":[%s,%s]}\n' \
    "$(count_rows "$OPENSEED_BUYER_DATA_DIR/buyer.db")" "$(count_rows "$OPENSEED_SELLER1_DATA_DIR/seller.db")" \
    "$(count_rows "$OPENSEED_SELLER2_DATA_DIR/seller.db")" >"$work/baseline.json"

# KIND = api:mode:share of the total rate, in percent
kinds=(openai:whole:30 openai:stream:30 anthropic:whole:20 anthropic:stream:20)
variants=(--vary-header "" --vary-header "X-OpenSeed-Peer: $OPENSEED_SELLER1_ADDRESS"
    --vary-header "X-OpenSeed-Peer: $OPENSEED_SELLER2_ADDRESS")
run_kind() { # API MODE RATE DURATION JSON [MORE ARGS]: one path_bench in the background
    local api=$1 m=$2 r=$3 d=$4 json=$5
    shift 5
    local -a a=(--target "openseed=127.0.0.1:$p_buyer" --model "$OPENSEED_CHAT_SERVICE" --api "$api"
        --strict "${variants[@]}" --rate "$r" --warmup 0 --duration "$d" --finish 120 --json "$json"
        --conns "$(awk -v r="$r" 'BEGIN { c = int(r / 2 + 0.5) + 8; print (c < 3 ? 3 : c) }')")
    [ "$m" = whole ] || a+=(--stream)
    "$build/path_bench" "${a[@]}" "$@" >>"$work/load.txt" 2>&1 &
    load_pids+=($!)
}
wait_load() { # waits for every path_bench; false when one failed to run
    local p ok=0
    for p in "${load_pids[@]}"; do wait "$p" || ok=1; done
    load_pids=()
    return $ok
}

say "warm-up: every kind of request to both sellers at a low rate (the buyer opens its channels)"
for k in "${kinds[@]}"; do
    IFS=: read -r api m _ <<<"$k"
    run_kind "$api" "$m" 6 2 "$work/load-warmup.jsonl"
    wait_load || die "the warm-up ($api $m) could not run: $(tail -n 5 "$work/load.txt")"
done
snapshot before 0

cat >"$work/meta.json" <<EOF
{"mode":"$mode","duration_s":$duration,"rate":$rate,"sample_s":$sample,"warmup_s":$warmup,
 "mix":"$(printf '%s ' "${kinds[@]}")each unpinned, pinned to seller1, pinned to seller2",
 "upstream_latency_ms":$latency_ms,"upstream_tokens_per_s":$tokens_per_s,
 "commit":"$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "started":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","cores":$(nproc),"build":"$build"}
EOF

say "load: $duration s at $rate req/s (${kinds[*]}), memory sampled every $sample s"
t0=$(now_ms)
for k in "${kinds[@]}"; do
    IFS=: read -r api m share <<<"$k"
    kr=$(awk -v r="$rate" -v s="$share" 'BEGIN { printf "%.3f", r * s / 100 }')
    run_kind "$api" "$m" "$kr" "$duration" "$work/load-$api-$m.jsonl"
done
next=0
any_alive() { local p; for p in "${load_pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while any_alive; do
    el=$(($(now_ms) - t0))
    if [ "$el" -ge "$next" ] && [ "$el" -le $((duration * 1000)) ]; then
        snapshot load "$(awk -v e="$el" 'BEGIN { printf "%.1f", e / 1000 }')"
        next=$((next + sample * 1000))
    fi
    sleep 0.2
done
wait_load || say "a load generator failed to run (see $work/load.txt)"
sleep 2
snapshot idle "$(awk -v e="$(($(now_ms) - t0))" 'BEGIN { printf "%.1f", e / 1000 }')"
cat "$work/load.txt" >&2

# ---------------------------------------------------------------- ledgers, settlement, verdict

stamp=$(date -u +%Y%m%dT%H%M%SZ)
say "reading both ledgers, settling both sellers, reading the escrow"
rc=0
if node "$root/bench/soak-collect.mjs" --work "$work" --out "$work/raw.json"; then
    node "$root/bench/soak-check.mjs" "$work/raw.json" --json "$out/soak-$stamp.json" \
        --md "$out/soak-$stamp.md" >"$work/verdict.txt" || rc=$?
else
    # nothing to judge but the load's own counts: a failure
    rc=1
    node -e '
        const fs = require("fs"), d = process.argv[1];
        let s = 0, e = 0;
        for (const f of fs.readdirSync(d).filter((f) => /^load-.*\.jsonl$/.test(f)))
            for (const l of fs.readFileSync(`${d}/${f}`, "utf8").split("\n").filter(Boolean)) {
                const a = JSON.parse(l).all || {};
                s += a.sent || 0; e += (a.failed || 0) + (a.unfinished || 0);
            }
        console.log(`soak: the ledgers could not be read (bench/soak-collect.mjs failed)`);
        console.log(`soak: ${s} requests, ${e} errors, FAIL`);' "$work" >"$work/verdict.txt"
fi
teardown
if [ -f "$out/soak-$stamp.json" ]; then
    cp "$out/soak-$stamp.json" "$out/soak-latest.json"
    cp "$out/soak-$stamp.md" "$out/soak-latest.md"
    say "results: $out/soak-$stamp.json (also soak-latest.json, soak-latest.md)"
fi
# the verdict's last line is the last line printed: the work folder goes (or is named) first
trap - EXIT
verdict=$(cat "$work/verdict.txt")
if [ "$rc" -eq 0 ] && [ "${OPENSEED_SOAK_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
else
    say "logs, databases and raw samples kept in $work"
fi
echo "$verdict"
exit "$rc"
