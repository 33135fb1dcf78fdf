#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The network benchmark, in one command: what a paid, encrypted request through OpenSeed costs
# over calling the model directly, side by side with Portkey's open-source gateway, on this
# machine. Prints a table and writes bench/results/bench-<UTC time>.json (and latest.json,
# latest.md). See bench/README.md for what each number means.
#
#   scripts/bench.sh                full run (~15 min): rates 50/200/500, 15 s phases, 5 min soak
#   scripts/bench.sh --quick        shorter phases and a 1 min soak (~6 min)
#   scripts/bench.sh --smoke        a few seconds per part, to prove the harness works (tests)
#   options: --out DIR (results folder [bench/results]), --no-registry, --no-profile,
#            --rates "50 200 500", --duration S, --soak S, --latency-ms N, --tokens-per-s N
#
# What runs, all on loopback: the fake model (bench/echo_upstream.c: the seller's built-in echo
# upstream as its own process, answering after a fixed latency and streaming at a fixed pace), and
# in front of it (1) nothing: the client calls it directly, (2) Portkey's gateway
# (@portkey-ai/gateway from npm, bench/tools), (3) the OpenSeed network of scripts/devnet.sh: anvil
# with the contracts, the registry, two sellers proxying to the fake model, and the buyer. The load
# generator is bench/path_bench.c (open loop at fixed rates, latency from the scheduled send time);
# wrk (Debian) repeats the peak-throughput runs as a cross-check.
#
# Installs what it needs: scripts/setup.sh (build tools, anvil, node packages), wrk and perf
# (apt-get, when missing and we are root), bench/tools/node_modules (npm ci). Safe to re-run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mode=full
out="$root/bench/results"
registry=1
profile=1
rates=""
duration=""
soak=""
latency_ms=20
tokens_per_s=100

die() {
    echo "bench: $*" >&2
    exit 1
}
say() { echo "bench: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
    --smoke) mode=smoke ;;
    --quick) mode=quick ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --no-registry) registry=0 ;;
    --no-profile) profile=0 ;;
    --rates) rates=${2:?--rates needs a list}; shift ;;
    --duration) duration=${2:?--duration needs seconds}; shift ;;
    --soak) soak=${2:?--soak needs seconds}; shift ;;
    --latency-ms) latency_ms=${2:?}; shift ;;
    --tokens-per-s) tokens_per_s=${2:?}; shift ;;
    -h | --help)
        sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

case $mode in
full) : "${rates:=50 200 500}" "${duration:=15}" "${soak:=300}"; warmup=2; peak_s=15; reg_s=10 ;;
quick) : "${rates:=50 200 500}" "${duration:=6}" "${soak:=60}"; warmup=1; peak_s=6; reg_s=5 ;;
smoke) : "${rates:=50}" "${duration:=2}" "${soak:=3}"; warmup=0.5; peak_s=2; reg_s=1; profile=0 ;;
esac
for r in $rates; do [[ $r =~ ^[0-9]+$ ]] && [ "$r" -gt 0 ] || die "--rates: $r is not a rate"; done
[[ $duration =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--duration: $duration is not a number of seconds"
[[ $soak =~ ^[0-9]+$ ]] || die "--soak: $soak is not a whole number of seconds"
[[ $latency_ms =~ ^[0-9]+$ && $tokens_per_s =~ ^[0-9]+$ ]] || die "--latency-ms/--tokens-per-s: whole numbers"

# ---------------------------------------------------------------- install and build

if [ "${OPENSEED_BENCH_SKIP_SETUP:-0}" != 1 ]; then
    say "setting up (scripts/setup.sh)"
    bash "$root/scripts/setup.sh" >&2 || die "scripts/setup.sh failed"
fi
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ "$profile" = 0 ] || command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${missing[*]} (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
            { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; } ||
            die "cannot install ${missing[*]}"
    else
        die "install ${missing[*]} first (sudo apt-get install ${missing[*]})"
    fi
fi

tools="$root/bench/tools"
stamp="$tools/node_modules/.openseed-stamp"
want=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing Portkey's gateway (npm ci in bench/tools)"
    (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in bench/tools failed"
    echo "$want" >"$stamp"
fi
portkey_js="$tools/node_modules/@portkey-ai/gateway/build/start-server.js"
[ -f "$portkey_js" ] || die "$portkey_js is missing"

build=${OPENSEED_BENCH_BUILD_DIR:-$root/build-bench}
if [ "${OPENSEED_BENCH_SKIP_BUILD:-0}" != 1 ]; then
    say "building (Release) in $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DOPENSEED_TESTS=OFF >/dev/null ||
        die "cmake configure failed"
    cmake --build "$build" -j "$(nproc)" --target openseed-registry openseed-seller openseed-buyer \
        echo_upstream path_bench crypto_bench registry_bench >/dev/null || die "build failed"
fi
for b in openseed-registry openseed-seller openseed-buyer echo_upstream path_bench crypto_bench registry_bench; do
    [ -x "$build/$b" ] || die "$build/$b is missing"
done
build=$(cd "$build" && pwd) # absolute: other scripts get it

# ---------------------------------------------------------------- the processes

work=$(mktemp -d "${TMPDIR:-/tmp}/openseed-bench-XXXXXX")
res="$work/results"
mkdir -p "$res" "$out"
say "work folder $work"
echo_pid=""
portkey_pid=""
devnet_up=0

# shellcheck source=bench/net.sh
. "$root/bench/net.sh"
cleanup() {
    local rc=$?
    net_devnet_down
    stop_pid "$portkey_pid"
    stop_pid "$echo_pid"
    if [ "$rc" -eq 0 ] && [ "${OPENSEED_BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$work"
    else
        echo "bench: logs and raw results kept in $work" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_echo() { # LATENCY_MS TOKENS_PER_S: (re)starts the fake model on its port
    # the requests a phase left in flight finish first: a model killed under them would fail
    # them, and the buyer would cool the sellers down for the next phase
    [ -z "$echo_pid" ] || sleep 3
    stop_pid "$echo_pid"
    net_echo_start "$p_echo" "$1" "$2" || die "the fake model did not start on port $p_echo"
}

for attempt in 1 2; do
    read -r p_rpc p_reg p_buyer p_s1 p_s2 p_a1 p_a2 p_echo p_pk < <(node "$root/scripts/free-ports.mjs" 9) ||
        die "no free ports"
    start_echo "$latency_ms" "$tokens_per_s"
    say "starting Portkey's gateway on $p_pk"
    (cd "$tools" && exec node "$portkey_js" --port="$p_pk") >>"$work/portkey.log" 2>&1 &
    portkey_pid=$!
    say "starting the network (scripts/devnet.sh up: anvil, contracts, registry, 2 sellers, buyer)"
    if net_devnet_up "$p_rpc" "$p_reg" "$p_buyer" "$p_s1" "$p_s2" "$p_a1" "$p_a2" "$p_echo"; then
        break
    fi
    tail -n 30 "$work/up.log" >&2
    net_devnet_down
    stop_pid "$portkey_pid"
    [ "$attempt" = 1 ] || die "the network did not come up (logs in $work)"
done
set -a
# shellcheck disable=SC1091
. "$work/devnet/devnet.env"
set +a
for i in $(seq 100); do
    curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$p_pk/public/" && break
    kill -0 "$portkey_pid" 2>/dev/null || die "Portkey's gateway exited (log: $work/portkey.log)"
    sleep 0.2
done

buyer_pid=$OPENSEED_BUYER_PID
s1_pid=$OPENSEED_SELLER1_PID
s2_pid=$OPENSEED_SELLER2_PID
reg_pid=$OPENSEED_REGISTRY_PID
chat=$OPENSEED_CHAT_SERVICE

block() {
    curl -fs --max-time 5 -H 'Content-Type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "$OPENSEED_RPC" |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(parseInt(JSON.parse(s).result,16)))'
}
status_of() { # PID FIELD (VmRSS, VmHWM): kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
snapshot() { # LABEL: RSS, peak RSS and descriptors of every process, one JSON line
    local label=$1 n p first=1
    {
        printf '{"label":"%s","t":%s,"procs":{' "$label" "$(date +%s)"
        for n in buyer seller1 seller2 registry upstream portkey; do
            case $n in
            buyer) p=$buyer_pid ;; seller1) p=$s1_pid ;; seller2) p=$s2_pid ;;
            registry) p=$reg_pid ;; upstream) p=$echo_pid ;; portkey) p=$portkey_pid ;;
            esac
            [ "$first" = 1 ] || printf ','
            first=0
            printf '"%s":{"rss_kb":%s,"hwm_kb":%s,"fds":%s}' "$n" "$(status_of "$p" VmRSS)" \
                "$(status_of "$p" VmHWM)" "$(fds_of "$p")"
        done
        printf '}}\n'
    } >>"$res/memory.jsonl"
}

common_h=(--header "Authorization: Bearer bench")
portkey_h=(--header "x-portkey-provider: openai" --header "x-portkey-custom-host: http://127.0.0.1:$p_echo/v1")
run_path() { # TARGET MODE PATH_BENCH_ARGS...
    local target=$1 m=$2
    shift 2
    local -a args=()
    case $target in
    direct) args=(--target "direct=127.0.0.1:$p_echo" --model echo-1) ;;
    portkey) args=(--target "portkey=127.0.0.1:$p_pk" --model echo-1 "${portkey_h[@]}") ;;
    openseed) args=(--target "openseed=127.0.0.1:$p_buyer" --model "$chat") ;;
    esac
    [ "$m" = whole ] || args+=(--stream)
    # the fake model is restarted between parts: its pid is read at each call
    local -a pids=(--pid "buyer=$buyer_pid" --pid "seller1=$s1_pid" --pid "seller2=$s2_pid"
        --pid "registry=$reg_pid" --pid "upstream=$echo_pid" --pid "portkey=$portkey_pid")
    # a --json among the caller's arguments wins over the default (the last one counts)
    "$build/path_bench" "${args[@]}" "${common_h[@]}" "${pids[@]}" --json "$res/paths.jsonl" "$@"
}

# Every path answers before anything is measured; the buyer opens its channels here.
say "warming up (the buyer opens its payment channels)"
for t in direct portkey openseed; do
    run_path "$t" whole --rate 20 --conns 4 --warmup 0 --duration 2 --json "$work/warmup.jsonl" >/dev/null ||
        die "warm-up through $t failed"
done
sleep 1
snapshot idle
block_start=$(block)

# ---------------------------------------------------------------- 1. added latency at fixed rates

say "latency at fixed rates ($rates req/s; fake model: ${latency_ms} ms to the first byte, $tokens_per_s tokens/s)"
for r in $rates; do
    for m in whole stream; do
        conns=$((r / 4 + 16))
        [ "$m" = whole ] || conns=$((r / 2 + 16))
        for t in direct portkey openseed; do
            run_path "$t" "$m" --rate "$r" --conns "$conns" --warmup "$warmup" --duration "$duration" ||
                die "phase $t $m @$r failed"
        done
    done
done
snapshot after-latency

# ---------------------------------------------------------------- 2. peak throughput

say "peak throughput (closed loop, 16 connections, fake model answering at once)"
start_echo 0 0
for t in direct portkey openseed; do
    run_path "$t" whole --conns 16 --warmup "$warmup" --duration "$peak_s" || die "peak $t failed"
done
snapshot after-peak
wrk_run() { # NAME PORT MODEL [HEADERS...]: a wrk cross-check of the closed-loop peak
    local name=$1 port=$2 model=$3
    shift 3
    BENCH_MODEL=$model wrk -t1 -c16 -d"${peak_s}s" --latency -s "$root/bench/wrk-chat.lua" \
        "$@" -H "Authorization: Bearer bench" "http://127.0.0.1:$port/v1/chat/completions" \
        >"$work/wrk-$name.txt" 2>&1 || die "wrk against $name failed: $(tail -n 3 "$work/wrk-$name.txt")"
    node "$root/bench/report.mjs" --wrk "$name" "$work/wrk-$name.txt" >>"$res/wrk.jsonl" ||
        die "cannot read wrk's output for $name"
}
wrk_run direct "$p_echo" echo-1
wrk_run openseed "$p_buyer" "$chat"

if [ "$profile" = 1 ]; then
    # System-wide, so the threads the daemons start per request are sampled too (perf -p sees
    # only the threads that exist when it attaches); then one summary per process.
    say "profiling the whole machine at peak (perf record -a, 10 s)"
    run_path openseed whole --conns 16 --warmup 1 --duration 12 --json "$work/profile-load.jsonl" >/dev/null &
    load_pid=$!
    sleep 1.5
    if perf record -a -F 499 -g -o "$work/perf.data" -- sleep 10 >"$work/perf-record.log" 2>&1; then
        {
            echo "# perf record -a -F 499 -g, 10 s of the closed-loop peak through OpenSeed (self time)"
            perf script -i "$work/perf.data" -G -F pid,ip,sym,dso 2>/dev/null |
                node "$root/bench/profile-summary.mjs" "buyer=$buyer_pid" "seller1=$s1_pid" \
                    "upstream=$echo_pid"
        } >"$res/profile.txt"
    else
        say "perf record failed (see $work/perf-record.log); no profile this run"
        echo "perf record failed: $(tail -n 2 "$work/perf-record.log")" >"$res/profile.txt"
    fi
    wait "$load_pid" || true
fi

# ---------------------------------------------------------------- 4. memory over a steady run

start_echo "$latency_ms" "$tokens_per_s"
say "steady run: ${soak} s at 200 req/s through OpenSeed, memory sampled every 10 s"
snapshot soak-start
run_path openseed whole --rate 200 --conns 66 --warmup 0 --duration "$soak" --json "$res/soak.jsonl" &
soak_pid=$!
t0=$SECONDS
while kill -0 "$soak_pid" 2>/dev/null; do
    sleep 1
    if [ $(((SECONDS - t0) % 10)) -eq 0 ]; then snapshot "soak+$((SECONDS - t0))s"; fi
done
wait "$soak_pid" || die "the steady run failed"
snapshot soak-end
block_end=$(block)

# ---------------------------------------------------------------- 6. chain cost

say "settling both sellers and closing the buyer's channels (claim and close gas)"
for s in 1 2; do
    admin_var="OPENSEED_SELLER${s}_ADMIN"
    token_var="OPENSEED_SELLER${s}_TOKEN"
    curl -fs --max-time 120 -X POST -H "Authorization: Bearer $(cat "${!token_var}")" \
        -H 'Content-Type: application/json' -d '{}' "${!admin_var}/admin/v1/settle" \
        >"$work/settle$s.json" || die "settling seller $s failed"
done
curl -fs --max-time 10 "$OPENSEED_BUYER/openseed/v1/channels" >"$work/channels.json" ||
    die "cannot list the buyer's channels"
for id in $(node -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1]));
    for (const x of (c.channels||c)) if ((x.state||"")==="open") console.log(x.id||x.channel_id)' "$work/channels.json"); do
    curl -fs --max-time 120 -X POST "$OPENSEED_BUYER/openseed/v1/channels/$id/close" >>"$work/close.json" ||
        die "closing channel $id failed"
done
curl -fs --max-time 10 "$OPENSEED_BUYER/openseed/v1/spend" >"$res/spend.json" || die "cannot read the buyer's spend"
node "$root/bench/chain-cost.mjs" --rpc "$OPENSEED_RPC" --escrow "$OPENSEED_ESCROW" --usdc "$OPENSEED_USDC" \
    --from-block 0 --to-block latest --window "$block_start:$block_end" \
    --label "buyer=$OPENSEED_BUYER_WALLET" --label "seller1=$OPENSEED_SELLER1_ADDRESS" \
    --label "seller2=$OPENSEED_SELLER2_ADDRESS" --label "deployer=$OPENSEED_DEPLOYER" \
    --measure-open --json "$res/chain.json" >"$work/chain.txt" || die "chain-cost.mjs failed"
for s in 1 2; do
    admin_var="OPENSEED_SELLER${s}_ADMIN"
    token_var="OPENSEED_SELLER${s}_TOKEN"
    curl -fs --max-time 10 -H "Authorization: Bearer $(cat "${!token_var}")" \
        "${!admin_var}/admin/v1/revenue" >"$res/revenue$s.json" || die "cannot read seller $s revenue"
done

# ---------------------------------------------------------------- 5. crypto unit costs

crypto_s=1
[ "$mode" != smoke ] || crypto_s=0.05
say "crypto unit costs"
"$build/crypto_bench" --seconds "$crypto_s" --json "$res/crypto.json" >"$work/crypto.txt" ||
    die "crypto_bench failed"

net_devnet_down
stop_pid "$portkey_pid"
stop_pid "$echo_pid"

# ---------------------------------------------------------------- 7. registry

if [ "$registry" = 1 ]; then
    say "registry: heartbeats and queries with 10,000 sellers (scripts/bench-registry.sh)"
    reg_args=(--duration "$reg_s" --json "$res/registry.json")
    reg_sellers=10000
    [ "$mode" != smoke ] || { reg_sellers=300; reg_args+=(--warmup 0.2); }
    SELLERS=$reg_sellers BUILD_DIR="$build" SKIP_BUILD=1 LAYOUTS=shared \
        bash "$root/scripts/bench-registry.sh" "${reg_args[@]}" \
        >"$work/registry.txt" 2>&1 || { tail -n 20 "$work/registry.txt" >&2; die "the registry benchmark failed"; }
fi

# ---------------------------------------------------------------- report

stamp_utc=$(date -u +%Y%m%dT%H%M%SZ)
report_rc=0
node "$root/bench/report.mjs" --results "$res" --mode "$mode" \
    --commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --latency-ms "$latency_ms" --tokens-per-s "$tokens_per_s" --soak "$soak" \
    --out "$out/bench-$stamp_utc.json" --md "$work/report.md" || report_rc=$?
[ -f "$out/bench-$stamp_utc.json" ] || die "the report failed"
cp "$out/bench-$stamp_utc.json" "$out/latest.json"
cp "$work/report.md" "$out/latest.md"
say "results: $out/bench-$stamp_utc.json (also latest.json, latest.md)"
# a run in which requests failed is reported in full, and fails
[ "$report_rc" -eq 0 ] || die "requests failed during the measurements (report status $report_rc)"
