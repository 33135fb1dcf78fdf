#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a whole OpenSeed network on this machine (the README's second command): a fresh anvil chain
# with TestUSDC and OpenSeedChannels, a funded buyer wallet, openseed-registry, two openseed-seller
# at different prices (each selling a chat and an embedding service, on the built-in echo model or
# on a real upstream), and openseed-buyer on 127.0.0.1:8377. It installs what is missing
# (scripts/setup.sh), builds the daemons, starts everything, waits until each answers, and writes
# devnet.env (KEY=value lines for scripts and tests). Logs, data, key files and pid files live in
# one folder, OPENSEED_DEVNET_DIR (default <repo>/.devnet). Each start is a fresh chain, so the
# daemons' data folders are reset too (a new chain makes old channels meaningless); the previous
# run's logs are kept as NAME.log.1.
#
#   scripts/devnet.sh            start, stay in the foreground; Ctrl-C or SIGTERM stops everything
#   scripts/devnet.sh up         start in the background; returns once everything is healthy
#   scripts/devnet.sh down       stop everything (keeps logs, data and devnet.env)
#   scripts/devnet.sh status     what runs, with pids and URLs (exit 0 all, 1 some, 3 none)
#
# Environment (defaults in brackets):
#   OPENSEED_DEVNET_DIR           folder for logs, data, keys, pids, devnet.env [<repo>/.devnet]
#   OPENSEED_BUILD_DIR            CMake build folder with the daemons [<repo>/build]
#   OPENSEED_RPC_PORT             anvil [8545]
#   OPENSEED_BUYER_PORT           openseed-buyer [8377]
#   OPENSEED_SELLER_PORT          seller 1 [8378], OPENSEED_SELLER_ADMIN_PORT its admin API [8380]
#   OPENSEED_REGISTRY_PORT        openseed-registry [8379]
#   OPENSEED_SELLER2_PORT         seller 2, OPENSEED_SELLER2_ADMIN_PORT its admin API [the first
#                                 free pair P, P+1 from OPENSEED_SELLER_ADMIN_PORT + 1 up: 8381/8382]
#   OPENSEED_UPSTREAM             a real model server URL instead of the built-in echo model
#   OPENSEED_UPSTREAM_API         openai | ollama | anthropic [ollama]
#   OPENSEED_UPSTREAM_MODEL       its model [ollama: the first one it lists]
#   OPENSEED_UPSTREAM_EMBED_MODEL the embedding model [OPENSEED_UPSTREAM_MODEL]
#   OPENSEED_UPSTREAM_KEY_FILE    file with the upstream's API key (0600), or
#   OPENSEED_UPSTREAM_KEY_ENV     the name of a variable holding it (e.g. OPENAI_API_KEY)
#   OPENSEED_CHAT_SERVICE         the chat service's name [devnet-chat]
#   OPENSEED_EMBED_SERVICE        the embedding service's name [devnet-embed]
#   OPENSEED_DEVNET_MINT          USDC minted to the buyer wallet [1000]
#   OPENSEED_DEVNET_DEPOSIT       USDC the buyer puts in each channel [5]
#   OPENSEED_DEVNET_RECORD=1      put a recording TCP proxy (scripts/devnet-proxy.mjs) in front of
#                                 each seller and the registry; every byte the buyer sends them is
#                                 appended to $OPENSEED_DEVNET_DIR/wire/{seller1,seller2,registry}.bin
#   OPENSEED_REGISTRY_PROXY_PORT, OPENSEED_SELLER_PROXY_PORT, OPENSEED_SELLER2_PROXY_PORT
#                                 the proxies' ports [each daemon's port + 1000]
#   OPENSEED_DEVNET_SKIP_SETUP=1  do not run scripts/setup.sh
#   OPENSEED_DEVNET_SKIP_BUILD=1  use the binaries in OPENSEED_BUILD_DIR as they are
#   OPENSEED_SELLER_ARGS          more flags for both sellers, split on spaces (e.g.
#                                 "--upstream-concurrency 256"); OPENSEED_BUYER_ARGS for the buyer
#
# Fixed choices: chain id 31337; OpenSeedChannels with a 900 s close grace; anvil's public
# development accounts: 0 deploys, 1 is the buyer wallet, 2 and 3 the sellers' node keys (key files
# 0600 in keys/). Prices in USDC per million tokens (input/output): seller 1 chat 0.10/0.30, embed
# 0.02/0; seller 2 chat 0.20/0.60, embed 0.04/0. Everything listens on 127.0.0.1.
#
# devnet.env keys: OPENSEED_RPC, OPENSEED_CHAIN_ID, OPENSEED_ESCROW, OPENSEED_ESCROW_BLOCK,
# OPENSEED_CLOSE_GRACE, OPENSEED_USDC, OPENSEED_DEPLOYER, OPENSEED_REGISTRY (the URL the buyer
# uses), OPENSEED_SELLER1/2 (the published endpoints), OPENSEED_*_DIRECT (the daemons themselves:
# equal to the above unless recording), OPENSEED_SELLER1/2_ADMIN, _TOKEN (admin token file),
# _ADDRESS, _PID, _DATA_DIR, OPENSEED_BUYER, OPENSEED_BUYER_WALLET (address), _WALLET_KEY (file),
# _PID, _DATA_DIR, OPENSEED_REGISTRY_PID, OPENSEED_ANVIL_PID, OPENSEED_CHAT_SERVICE,
# OPENSEED_EMBED_SERVICE (empty for an Anthropic upstream), OPENSEED_UPSTREAM, OPENSEED_WIRE_DIR
# (empty unless recording), OPENSEED_DEVNET_DIR, OPENSEED_BUILD_DIR.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${OPENSEED_DEVNET_DIR:-$root/.devnet}
build=${OPENSEED_BUILD_DIR:-$root/build}
anvil_bin="$root/tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
chain_id=31337
close_grace=900
host=127.0.0.1
start_timeout=60 # seconds each component may take to answer
stop_timeout=15  # seconds each process may take to stop after SIGTERM

# Components in start order; stopped in the reverse stages of stop_all.
all_names=(anvil proxy-registry registry proxy-seller1 proxy-seller2 seller1 seller2 buyer)

say() { printf 'devnet: %s\n' "$*"; }
warn() { printf 'devnet: %s\n' "$*" >&2; }
die() {
    warn "$*"
    exit 1
}

usage() {
    cat <<EOF
usage: scripts/devnet.sh [up|down|status|help]

  (none)   start a local OpenSeed network and stay in the foreground (Ctrl-C stops it)
  up       start it in the background; returns once everything is healthy
  down     stop it (logs, data and devnet.env are kept)
  status   show what runs, with pids and URLs

Logs, data and devnet.env are in OPENSEED_DEVNET_DIR (now $dir).
Ports and options are environment variables; they are listed at the top of scripts/devnet.sh.
EOF
}

# The functions below that the foreground loop and the signal handlers use run no subshell: bash
# can run a trap in a subshell forked just as the signal arrived (see on_signal).

# pattern_of NAME: REPLY = the command-line text that identifies NAME's process (guards against a
# pid file whose process is gone and whose pid was reused by something else).
pattern_of() {
    case $1 in
    anvil) REPLY="anvil" ;;
    registry) REPLY="openseed-registry" ;;
    seller1 | seller2) REPLY="openseed-seller" ;;
    buyer) REPLY="openseed-buyer" ;;
    proxy-*) REPLY="devnet-proxy.mjs" ;;
    supervisor) REPLY="devnet.sh" ;;
    *) REPLY="?" ;;
    esac
}

# alive PID NAME: the process exists, is not a zombie, and its command line is NAME's.
alive() {
    local pid=$1 stat
    local -a argv=()
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ] || return 1
    { mapfile -d '' argv <"/proc/$pid/cmdline"; } 2>/dev/null || return 1
    pattern_of "$2"
    [[ "${argv[*]}" == *"$REPLY"* ]]
}

# is_running NAME: true when NAME's pid file names a live process of the right kind; REPLY = pid.
is_running() {
    local f="$dir/pids/$1.pid" pid=""
    { read -r pid <"$f"; } 2>/dev/null || return 1
    alive "$pid" "$1" || return 1
    REPLY=$pid
}

# live_pid NAME: prints NAME's pid when it runs.
live_pid() {
    is_running "$1" || return 1
    echo "$REPLY"
}

running_names() {
    local n
    for n in "${all_names[@]}"; do
        if is_running "$n"; then echo "$n"; fi
    done
}

# expected_names: the components this run needs (from devnet.env when one was written).
expected_names() {
    local rec=0
    if [ -f "$dir/devnet.env" ] && grep -q '^OPENSEED_WIRE_DIR=.' "$dir/devnet.env"; then rec=1; fi
    local n
    for n in "${all_names[@]}"; do
        if [[ $n == proxy-* ]] && [ "$rec" != 1 ]; then continue; fi
        echo "$n"
    done
}

# stop_group NAME...: SIGTERM to each live one, then wait; SIGKILL what is left after the timeout.
stop_group() {
    local n i pid deadline left
    local -a pids=() names=()
    for n in "$@"; do
        if is_running "$n"; then
            pid=$REPLY
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$n")
        fi
    done
    deadline=$((SECONDS + stop_timeout))
    while :; do
        left=0
        for i in "${!pids[@]}"; do
            if alive "${pids[$i]}" "${names[$i]}"; then left=1; fi
        done
        [ "$left" = 1 ] || break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for i in "${!pids[@]}"; do
                if alive "${pids[$i]}" "${names[$i]}"; then
                    warn "${names[$i]} (pid ${pids[$i]}) did not stop within ${stop_timeout}s: SIGKILL"
                    kill -KILL "${pids[$i]}" 2>/dev/null || true
                fi
            done
            break
        fi
        sleep 0.1
    done
    for n in "$@"; do rm -f "$dir/pids/$n.pid"; done
}

# The buyer first (nothing new reaches the sellers), the sellers next (they may still talk to
# the chain), then the registry and the proxies, and the chain last.
stop_all() {
    stop_group buyer
    stop_group seller1 seller2
    stop_group registry proxy-registry proxy-seller1 proxy-seller2
    stop_group anvil
}

# ---------------------------------------------------------------------------------------------
# status

health_of() { # URL: "healthy" or "not answering"
    if curl -fs -o /dev/null --max-time 2 "$1"; then echo healthy; else echo "not answering"; fi
}

cmd_status() {
    local -A env=()
    local line n pid url extra sup exp=0 run=0
    if [ -f "$dir/devnet.env" ]; then
        while IFS= read -r line; do
            [[ $line =~ ^([A-Z0-9_]+)=(.*)$ ]] && env[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
        done <"$dir/devnet.env"
    fi
    if [ "$have_lock" = 0 ] && [ -f "$dir/.lock" ] && ! flock -n "$dir/.lock" true; then
        say "a scripts/devnet.sh is starting or stopping it right now"
    fi
    if sup=$(live_pid supervisor); then
        say "running in the foreground (scripts/devnet.sh, pid $sup)"
    fi
    printf 'devnet in %s\n' "$dir"
    for n in $(expected_names); do
        exp=$((exp + 1))
        url="" extra=""
        case $n in
        anvil) url=${env[OPENSEED_RPC]:-} extra="chain ${env[OPENSEED_CHAIN_ID]:-?}" ;;
        registry) url=${env[OPENSEED_REGISTRY_DIRECT]:-} ;;
        seller1 | seller2)
            local k=${n^^}
            url=${env[OPENSEED_${k}_DIRECT]:-}
            extra="admin ${env[OPENSEED_${k}_ADMIN]:-?}  ${env[OPENSEED_${k}_ADDRESS]:-}"
            ;;
        buyer) url=${env[OPENSEED_BUYER]:-} extra="wallet ${env[OPENSEED_BUYER_WALLET]:-?}" ;;
        proxy-registry) url=${env[OPENSEED_REGISTRY]:-} extra="records to ${env[OPENSEED_WIRE_DIR]:-?}/registry.bin" ;;
        proxy-seller1) url=${env[OPENSEED_SELLER1]:-} extra="records to ${env[OPENSEED_WIRE_DIR]:-?}/seller1.bin" ;;
        proxy-seller2) url=${env[OPENSEED_SELLER2]:-} extra="records to ${env[OPENSEED_WIRE_DIR]:-?}/seller2.bin" ;;
        esac
        if pid=$(live_pid "$n"); then
            run=$((run + 1))
            local h="running"
            case $n in
            registry | seller1 | seller2 | buyer) [ -z "$url" ] || h=$(health_of "$url/healthz") ;;
            anvil) if [ -n "$url" ] && ! rpc_ok "$url"; then h="not answering"; else h=healthy; fi ;;
            esac
            printf '  %-15s pid %-8s %-8s %-26s %s\n' "$n" "$pid" "${h%% *}" "$url" "$extra"
        else
            printf '  %-15s %-12s %-8s %-26s %s\n' "$n" "stopped" "" "$url" "$extra"
        fi
    done
    if [ "$run" -eq 0 ]; then
        say "not running (start it with scripts/devnet.sh up)"
        return 3
    elif [ "$run" -lt "$exp" ]; then
        say "partly running: $run of $exp processes (logs in $dir)"
        return 1
    fi
    [ ! -f "$dir/devnet.env" ] || printf 'environment for scripts: %s/devnet.env\n' "$dir"
    return 0
}

# ---------------------------------------------------------------------------------------------
# down

lock() {
    mkdir -p "$dir"
    exec 9>"$dir/.lock"
    flock -w 2 9 || die "another scripts/devnet.sh is starting or stopping the devnet in $dir"
    have_lock=1
}

cmd_down() {
    if [ ! -d "$dir" ]; then
        say "not running (no $dir)"
        return 0
    fi
    lock
    stop_everything
}

# Stops the network, whoever started it (the caller holds the lock).
stop_everything() {
    local sup any
    # A foreground devnet.sh stops its own network: ask it, then wait for it.
    if sup=$(live_pid supervisor); then
        say "asking the foreground scripts/devnet.sh (pid $sup) to stop"
        kill -TERM "$sup" 2>/dev/null || true
        local deadline=$((SECONDS + 4 * stop_timeout + 10))
        while alive "$sup" supervisor && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    fi
    any=$(running_names)
    if [ -z "$any" ]; then
        rm -f "$dir"/pids/*.pid
        say "not running"
        return 0
    fi
    say "stopping $(echo "$any" | paste -sd ' ')"
    stop_all
    rm -f "$dir/pids/supervisor.pid"
    say "stopped (logs and data kept in $dir)"
}

# ---------------------------------------------------------------------------------------------
# start

port_var_ok() { # NAME VALUE
    if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then
        die "$1=$2 is not a port number (1-65535)"
    fi
}

port_busy() { # PORT: true when something accepts connections on 127.0.0.1:PORT
    timeout 2 bash -c "exec 3<>/dev/tcp/$host/$1" 2>/dev/null
}

# Picks the ports: defaults, the environment's overrides, and the second seller's free pair.
choose_ports() {
    rpc_port=${OPENSEED_RPC_PORT:-8545}
    buyer_port=${OPENSEED_BUYER_PORT:-8377}
    seller1_port=${OPENSEED_SELLER_PORT:-8378}
    registry_port=${OPENSEED_REGISTRY_PORT:-8379}
    seller1_admin_port=${OPENSEED_SELLER_ADMIN_PORT:-8380}
    local v var
    for v in OPENSEED_RPC_PORT:rpc_port OPENSEED_BUYER_PORT:buyer_port \
        OPENSEED_SELLER_PORT:seller1_port OPENSEED_REGISTRY_PORT:registry_port \
        OPENSEED_SELLER_ADMIN_PORT:seller1_admin_port; do
        var=${v##*:}
        port_var_ok "${v%%:*}" "${!var}"
    done
    local -a fixed=("$rpc_port" "$buyer_port" "$seller1_port" "$registry_port" "$seller1_admin_port")
    taken() { [[ " ${fixed[*]} " == *" $1 "* ]]; }

    if [ -n "${OPENSEED_SELLER2_PORT:-}" ] || [ -n "${OPENSEED_SELLER2_ADMIN_PORT:-}" ]; then
        [ -z "${OPENSEED_SELLER2_PORT:-}" ] || port_var_ok OPENSEED_SELLER2_PORT "$OPENSEED_SELLER2_PORT"
        [ -z "${OPENSEED_SELLER2_ADMIN_PORT:-}" ] ||
            port_var_ok OPENSEED_SELLER2_ADMIN_PORT "$OPENSEED_SELLER2_ADMIN_PORT"
        seller2_port=${OPENSEED_SELLER2_PORT:-$((OPENSEED_SELLER2_ADMIN_PORT - 1))}
        seller2_admin_port=${OPENSEED_SELLER2_ADMIN_PORT:-$((seller2_port + 1))}
    else
        local p first=$((seller1_admin_port + 1))
        seller2_port=""
        for ((p = first; p < first + 100 && p < 65535; p += 2)); do
            if ! taken "$p" && ! taken $((p + 1)) && ! port_busy "$p" && ! port_busy $((p + 1)); then
                seller2_port=$p
                seller2_admin_port=$((p + 1))
                break
            fi
        done
        [ -n "$seller2_port" ] || die "no free port pair for seller 2 from $first up: set OPENSEED_SELLER2_PORT"
    fi
    port_var_ok OPENSEED_SELLER2_PORT "$seller2_port"
    port_var_ok OPENSEED_SELLER2_ADMIN_PORT "$seller2_admin_port"
    fixed+=("$seller2_port" "$seller2_admin_port")

    if [ "$record" = 1 ]; then
        registry_proxy_port=${OPENSEED_REGISTRY_PROXY_PORT:-$((registry_port + 1000))}
        seller1_proxy_port=${OPENSEED_SELLER_PROXY_PORT:-$((seller1_port + 1000))}
        seller2_proxy_port=${OPENSEED_SELLER2_PROXY_PORT:-$((seller2_port + 1000))}
        port_var_ok OPENSEED_REGISTRY_PROXY_PORT "$registry_proxy_port"
        port_var_ok OPENSEED_SELLER_PROXY_PORT "$seller1_proxy_port"
        port_var_ok OPENSEED_SELLER2_PROXY_PORT "$seller2_proxy_port"
        fixed+=("$registry_proxy_port" "$seller1_proxy_port" "$seller2_proxy_port")
    fi
    local dup
    dup=$(printf '%s\n' "${fixed[@]}" | sort | uniq -d | tr '\n' ' ')
    [ -z "$dup" ] || die "the same port is configured twice: $dup(check the OPENSEED_*_PORT variables)"
}

# Every port we are about to listen on must be free; all the busy ones are reported at once.
check_ports() {
    local -a busy=()
    local e
    local -a checks=(
        "OPENSEED_RPC_PORT:$rpc_port:anvil"
        "OPENSEED_REGISTRY_PORT:$registry_port:openseed-registry"
        "OPENSEED_SELLER_PORT:$seller1_port:seller 1"
        "OPENSEED_SELLER_ADMIN_PORT:$seller1_admin_port:seller 1 admin API"
        "OPENSEED_SELLER2_PORT:$seller2_port:seller 2"
        "OPENSEED_SELLER2_ADMIN_PORT:$seller2_admin_port:seller 2 admin API"
        "OPENSEED_BUYER_PORT:$buyer_port:openseed-buyer"
    )
    if [ "$record" = 1 ]; then
        checks+=(
            "OPENSEED_REGISTRY_PROXY_PORT:$registry_proxy_port:registry recording proxy"
            "OPENSEED_SELLER_PROXY_PORT:$seller1_proxy_port:seller 1 recording proxy"
            "OPENSEED_SELLER2_PROXY_PORT:$seller2_proxy_port:seller 2 recording proxy"
        )
    fi
    for e in "${checks[@]}"; do
        IFS=: read -r var port what <<<"$e"
        if port_busy "$port"; then busy+=("port $port ($what, $var) is already in use on $host"); fi
    done
    if [ ${#busy[@]} -gt 0 ]; then
        printf 'devnet: %s\n' "${busy[@]}" >&2
        die "free those ports or choose others with the variables named above (another devnet? scripts/devnet.sh status)"
    fi
}

setup_and_build() {
    if [ "${OPENSEED_DEVNET_SKIP_SETUP:-0}" != 1 ]; then
        bash "$root/scripts/setup.sh" || die "scripts/setup.sh failed"
    fi
    local tool
    for tool in node curl setsid flock timeout; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (run scripts/setup.sh)"
    done
    [ -x "$anvil_bin" ] || die "anvil is missing at $anvil_bin (run scripts/setup.sh)"
    if [ "${OPENSEED_DEVNET_SKIP_BUILD:-0}" != 1 ]; then
        mkdir -p "$dir"
        : >"$dir/build.log"
        if [ ! -f "$build/CMakeCache.txt" ]; then
            say "configuring a build in $build"
            cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPENSEED_TESTS=OFF \
                >>"$dir/build.log" 2>&1 || {
                tail -n 30 "$dir/build.log" >&2
                die "cmake configure failed (full output in $dir/build.log)"
            }
        fi
        say "building the daemons in $build"
        cmake --build "$build" -j "$(nproc)" --target openseed-registry openseed-seller openseed-buyer \
            >>"$dir/build.log" 2>&1 || {
            tail -n 30 "$dir/build.log" >&2
            die "build failed (full output in $dir/build.log)"
        }
    fi
    local b
    for b in openseed-registry openseed-seller openseed-buyer; do
        [ -x "$build/$b" ] || die "$build/$b is missing (build it, or unset OPENSEED_DEVNET_SKIP_BUILD)"
    done
}

# The upstream and the two offerings of each seller (prices in USDC per million tokens).
choose_upstream() {
    chat_service=${OPENSEED_CHAT_SERVICE:-devnet-chat}
    embed_service=${OPENSEED_EMBED_SERVICE:-devnet-embed}
    upstream_args=()
    if [ -z "${OPENSEED_UPSTREAM:-}" ]; then
        upstream=builtin:echo
        upstream_desc="the built-in echo model"
        chat_model=echo-1
        embed_model=echo-1
        chat_apis=openai.chat,anthropic.messages
    else
        upstream=$OPENSEED_UPSTREAM
        local api=${OPENSEED_UPSTREAM_API:-ollama}
        case $api in
        openai | ollama) chat_apis=openai.chat ;;
        anthropic) chat_apis=anthropic.messages ;;
        *) die "OPENSEED_UPSTREAM_API=$api: use openai, ollama or anthropic" ;;
        esac
        upstream_args+=(--upstream-api "$api")
        [ -z "${OPENSEED_UPSTREAM_KEY_FILE:-}" ] || upstream_args+=(--upstream-key-file "$OPENSEED_UPSTREAM_KEY_FILE")
        [ -z "${OPENSEED_UPSTREAM_KEY_ENV:-}" ] || upstream_args+=(--upstream-key-env "$OPENSEED_UPSTREAM_KEY_ENV")
        chat_model=${OPENSEED_UPSTREAM_MODEL:-}
        if [ -z "$chat_model" ] && [ "$api" = ollama ]; then
            local base=${upstream%/}
            base=${base%/v1}
            chat_model=$(curl -fs --max-time 5 "$base/v1/models" |
                node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const m=JSON.parse(s).data;if(m&&m[0]&&m[0].id)console.log(m[0].id)}catch{}})') || true
            [ -n "$chat_model" ] ||
                die "cannot list the models of the Ollama at $upstream: set OPENSEED_UPSTREAM_MODEL"
        fi
        [ -n "$chat_model" ] || die "OPENSEED_UPSTREAM_MODEL must name the model of $upstream"
        embed_model=${OPENSEED_UPSTREAM_EMBED_MODEL:-$chat_model}
        upstream_desc="$upstream, $api API, model $chat_model"
        # Anthropic has no embeddings API: that upstream sells chat only.
        [ "$api" != anthropic ] || embed_service=""
    fi
    seller1_offers=("$chat_service model=$chat_model apis=$chat_apis input=0.10 output=0.30")
    seller2_offers=("$chat_service model=$chat_model apis=$chat_apis input=0.20 output=0.60")
    if [ -n "$embed_service" ]; then
        seller1_offers+=("$embed_service model=$embed_model apis=openai.embeddings input=0.02 output=0")
        seller2_offers+=("$embed_service model=$embed_model apis=openai.embeddings input=0.04 output=0")
    fi
}

# launch NAME CMD...: starts CMD in its own session (a terminal's Ctrl-C reaches only this script,
# which then stops everything in order), output to NAME.log, pid to pids/NAME.pid.
launch() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$dir/$name.log" 2>&1 9>&- &
    echo "$!" >"$dir/pids/$name.pid"
}

log_tail() { # NAME: the end of its log, to stderr (anvil's is skipped: it lists keys)
    if [ "$1" != anvil ] && [ -f "$dir/$1.log" ]; then
        warn "last lines of $dir/$1.log:"
        tail -n 15 "$dir/$1.log" | sed 's/^/    /' >&2
    fi
}

# wait_until NAME WHAT CMD...: polls CMD until it succeeds; fails if NAME died or time ran out.
wait_until() {
    local name=$1 what=$2 deadline=$((SECONDS + start_timeout))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ! is_running "$name"; then
            log_tail "$name"
            die "$name exited during start-up (log: $dir/$name.log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log_tail "$name"
            die "$name: $what within ${start_timeout}s (log: $dir/$name.log)"
        fi
        sleep 0.2
    done
}

http_ok() { curl -fs -o /dev/null --max-time 2 "$1"; }
tcp_ok() { timeout 2 bash -c "exec 3<>/dev/tcp/$host/$1"; }
rpc_ok() {
    curl -fs -o /dev/null --max-time 2 -H 'Content-Type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$1"
}

# lists_all URL ADDRESS...: the JSON at URL mentions every address (case-insensitive).
lists_all() {
    local body a
    body=$(curl -fs --max-time 2 "$1") || return 1
    shift
    for a in "$@"; do grep -qi "${a#0x}" <<<"$body" || return 1; done
}

env_line() { # KEY VALUE: a shell-sourceable line, quoted only when needed
    if [[ $2 =~ ^[A-Za-z0-9_./:@,+=-]*$ ]]; then
        printf '%s=%s\n' "$1" "$2"
    else
        printf '%s=%q\n' "$1" "$2"
    fi
}

write_env() {
    local f="$dir/devnet.env"
    {
        echo "# OpenSeed devnet, written by scripts/devnet.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); source it"
        env_line OPENSEED_DEVNET_DIR "$dir"
        env_line OPENSEED_RPC "$rpc"
        env_line OPENSEED_CHAIN_ID "$chain_id"
        env_line OPENSEED_ESCROW "$escrow"
        env_line OPENSEED_ESCROW_BLOCK "$escrow_block"
        env_line OPENSEED_CLOSE_GRACE "$close_grace"
        env_line OPENSEED_USDC "$usdc"
        env_line OPENSEED_DEPLOYER "$deployer"
        env_line OPENSEED_REGISTRY "$registry_url"
        env_line OPENSEED_REGISTRY_DIRECT "$registry_direct"
        env_line OPENSEED_REGISTRY_PID "$(live_pid registry)"
        env_line OPENSEED_SELLER1 "$seller1_url"
        env_line OPENSEED_SELLER1_DIRECT "$seller1_direct"
        env_line OPENSEED_SELLER1_ADMIN "http://$host:$seller1_admin_port"
        env_line OPENSEED_SELLER1_TOKEN "$dir/seller1/admin.token"
        env_line OPENSEED_SELLER1_ADDRESS "$seller1_address"
        env_line OPENSEED_SELLER1_PID "$(live_pid seller1)"
        env_line OPENSEED_SELLER1_DATA_DIR "$dir/seller1"
        env_line OPENSEED_SELLER2 "$seller2_url"
        env_line OPENSEED_SELLER2_DIRECT "$seller2_direct"
        env_line OPENSEED_SELLER2_ADMIN "http://$host:$seller2_admin_port"
        env_line OPENSEED_SELLER2_TOKEN "$dir/seller2/admin.token"
        env_line OPENSEED_SELLER2_ADDRESS "$seller2_address"
        env_line OPENSEED_SELLER2_PID "$(live_pid seller2)"
        env_line OPENSEED_SELLER2_DATA_DIR "$dir/seller2"
        env_line OPENSEED_BUYER "http://$host:$buyer_port"
        env_line OPENSEED_BUYER_WALLET "$buyer_wallet"
        env_line OPENSEED_BUYER_WALLET_KEY "$dir/keys/buyer-wallet.key"
        env_line OPENSEED_BUYER_PID "$(live_pid buyer)"
        env_line OPENSEED_BUYER_DATA_DIR "$dir/buyer"
        env_line OPENSEED_ANVIL_PID "$(live_pid anvil)"
        env_line OPENSEED_CHAT_SERVICE "$chat_service"
        env_line OPENSEED_EMBED_SERVICE "$embed_service"
        env_line OPENSEED_UPSTREAM "$upstream"
        env_line OPENSEED_WIRE_DIR "$wire_dir"
        env_line OPENSEED_BUILD_DIR "$build"
    } >"$f.tmp"
    mv -f "$f.tmp" "$f"
}

# Fresh state for a fresh chain: data folders, pid files and recordings go; logs move to .log.1.
reset_dir() {
    mkdir -p "$dir"
    rm -rf "$dir/registry" "$dir/seller1" "$dir/seller2" "$dir/buyer" "$dir/wire" "$dir/pids"
    rm -f "$dir/devnet.env"
    mkdir -p "$dir/registry" "$dir/seller1" "$dir/seller2" "$dir/buyer" "$dir/keys" "$dir/pids"
    chmod 700 "$dir/registry" "$dir/seller1" "$dir/seller2" "$dir/buyer" "$dir/keys"
    local n
    for n in "${all_names[@]}"; do
        if [ -f "$dir/$n.log" ]; then mv -f "$dir/$n.log" "$dir/$n.log.1"; fi
    done
    if [ "$record" = 1 ]; then
        mkdir -p "$dir/wire" # the proxies create their files (0600) before they listen
        chmod 700 "$dir/wire"
    fi
}

start_seller() { # N PORT ADMIN_PORT ENDPOINT OFFER...
    local n=$1 port=$2 admin=$3 endpoint=$4
    shift 4
    local -a offers=()
    local o
    for o in "$@"; do offers+=(--offering "$o"); done
    launch "seller$n" "$build/openseed-seller" \
        --listen "$host:$port" --admin-listen "$host:$admin" \
        --data-dir "$dir/seller$n" --node-key "$dir/keys/seller$n.key" \
        --rpc "$rpc" --chain-id "$chain_id" --escrow "$escrow" --usdc "$usdc" \
        --endpoint "$endpoint" --registry "$registry_direct" \
        --upstream "$upstream" "${upstream_args[@]}" "${offers[@]}" \
        --channel-refresh 5s ${OPENSEED_SELLER_ARGS:-} # split on purpose: several flags
}

start_proxy() { # NAME LISTEN_PORT TARGET_PORT
    launch "proxy-$1" node "$root/scripts/devnet-proxy.mjs" --listen "$host:$2" \
        --target "$host:$3" --record "$wire_dir/$1.bin"
}

start_network() {
    rpc="http://$host:$rpc_port"
    registry_direct="http://$host:$registry_port"
    seller1_direct="http://$host:$seller1_port"
    seller2_direct="http://$host:$seller2_port"
    if [ "$record" = 1 ]; then
        wire_dir="$dir/wire"
        registry_url="http://$host:$registry_proxy_port"
        seller1_url="http://$host:$seller1_proxy_port"
        seller2_url="http://$host:$seller2_proxy_port"
    else
        wire_dir=""
        registry_url=$registry_direct
        seller1_url=$seller1_direct
        seller2_url=$seller2_direct
    fi

    say "starting anvil (chain $chain_id) on $rpc"
    launch anvil "$anvil_bin" --host "$host" --port "$rpc_port" --chain-id "$chain_id"
    wait_until anvil "no answer to eth_chainId on $rpc" rpc_ok "$rpc"

    say "deploying TestUSDC and OpenSeedChannels, minting ${mint} USDC to the buyer wallet"
    local out line
    out=$(node "$root/scripts/devnet-deploy.mjs" --rpc "$rpc" --chain-id "$chain_id" \
        --grace "$close_grace" --mint "$mint" --keys "$dir/keys" 9>&-) || die "deployment failed"
    while IFS= read -r line; do
        case $line in
        OPENSEED_USDC=*) usdc=${line#*=} ;;
        OPENSEED_ESCROW=*) escrow=${line#*=} ;;
        OPENSEED_ESCROW_BLOCK=*) escrow_block=${line#*=} ;;
        OPENSEED_DEPLOYER=*) deployer=${line#*=} ;;
        OPENSEED_BUYER_WALLET=*) buyer_wallet=${line#*=} ;;
        OPENSEED_SELLER1_ADDRESS=*) seller1_address=${line#*=} ;;
        OPENSEED_SELLER2_ADDRESS=*) seller2_address=${line#*=} ;;
        esac
    done <<<"$out"
    if [ -z "${escrow:-}" ] || [ -z "${usdc:-}" ] || [ -z "${seller2_address:-}" ]; then
        die "the deployment script printed no addresses"
    fi

    if [ "$record" = 1 ]; then
        say "starting the recording proxies (client bytes to $wire_dir)"
        start_proxy registry "$registry_proxy_port" "$registry_port"
        start_proxy seller1 "$seller1_proxy_port" "$seller1_port"
        start_proxy seller2 "$seller2_proxy_port" "$seller2_port"
    fi

    say "starting openseed-registry on $registry_direct"
    launch registry "$build/openseed-registry" --listen "$host:$registry_port" \
        --data-dir "$dir/registry" --chain-id "$chain_id" --rpc "$rpc" --escrow "$escrow" \
        --usdc "$usdc" --heartbeat-interval 5s --rescore-interval 2s --rate-limit 0
    wait_until registry "no answer on $registry_direct/healthz" http_ok "$registry_direct/healthz"

    say "starting two openseed-seller on $seller1_direct and $seller2_direct ($upstream_desc)"
    start_seller 1 "$seller1_port" "$seller1_admin_port" "$seller1_url" "${seller1_offers[@]}"
    start_seller 2 "$seller2_port" "$seller2_admin_port" "$seller2_url" "${seller2_offers[@]}"
    wait_until seller1 "no answer on $seller1_direct/healthz" http_ok "$seller1_direct/healthz"
    wait_until seller2 "no answer on $seller2_direct/healthz" http_ok "$seller2_direct/healthz"
    if [ "$record" = 1 ]; then
        wait_until proxy-registry "not listening on $registry_proxy_port" tcp_ok "$registry_proxy_port"
        wait_until proxy-seller1 "not listening on $seller1_proxy_port" tcp_ok "$seller1_proxy_port"
        wait_until proxy-seller2 "not listening on $seller2_proxy_port" tcp_ok "$seller2_proxy_port"
    fi
    local svc
    local -a services=("$chat_service")
    [ -z "$embed_service" ] || services+=("$embed_service")
    for svc in "${services[@]}"; do
        wait_until registry "does not list both sellers for $svc" \
            lists_all "$registry_direct/v1/peers?service=$svc" "$seller1_address" "$seller2_address"
    done

    say "starting openseed-buyer on http://$host:$buyer_port (wallet $buyer_wallet, deposit $deposit USDC per channel)"
    launch buyer "$build/openseed-buyer" --listen "$host:$buyer_port" --data-dir "$dir/buyer" \
        --registry "$registry_url" --rpc "$rpc" --chain-id "$chain_id" --escrow "$escrow" \
        --usdc "$usdc" --wallet-key "$dir/keys/buyer-wallet.key" --deposit "$deposit" \
        ${OPENSEED_BUYER_ARGS:-}
    wait_until buyer "no answer on http://$host:$buyer_port/healthz" http_ok "http://$host:$buyer_port/healthz"
    wait_until buyer "does not list $chat_service in /v1/models" \
        curl_has "http://$host:$buyer_port/v1/models" "\"$chat_service\""
    wait_until seller1 "wrote no admin token" test -s "$dir/seller1/admin.token"
    wait_until seller2 "wrote no admin token" test -s "$dir/seller2/admin.token"
    write_env
}

curl_has() { # URL TEXT
    local body
    body=$(curl -fs --max-time 2 "$1") || return 1
    [[ $body == *"$2"* ]]
}

print_summary() { # MODE
    local b="http://$host:$buyer_port" down_cmd="scripts/devnet.sh down"
    [ "$dir" = "$root/.devnet" ] || down_cmd="OPENSEED_DEVNET_DIR=$dir scripts/devnet.sh down"
    cat <<EOF

OpenSeed devnet is up. Logs, data and devnet.env are in $dir
  anvil      $rpc  chain $chain_id  TestUSDC $usdc
             OpenSeedChannels $escrow (close grace ${close_grace}s)
  registry   $registry_url
  seller 1   $seller1_url  admin http://$host:$seller1_admin_port  node $seller1_address
             $chat_service 0.10/0.30${embed_service:+, $embed_service 0.02/0} USDC per million tokens (in/out)
  seller 2   $seller2_url  admin http://$host:$seller2_admin_port  node $seller2_address
             $chat_service 0.20/0.60${embed_service:+, $embed_service 0.04/0} USDC per million tokens (in/out)
  upstream   $upstream_desc
  buyer      $b  wallet $buyer_wallet ($mint USDC, $deposit per channel)
EOF
    [ -z "$wire_dir" ] || echo "  recording  every byte the buyer sends the sellers and the registry, in $wire_dir"
    cat <<EOF

Try it (any OpenAI or Anthropic client works against $b):
  curl -s $b/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model":"$chat_service","messages":[{"role":"user","content":"Hello"}]}'
EOF
    [ -z "$embed_service" ] || cat <<EOF
  curl -s $b/v1/embeddings -H 'Content-Type: application/json' \\
      -d '{"model":"$embed_service","input":"Hello"}'
EOF
    cat <<EOF
  curl -s $b/openseed/v1/spend        # what it paid; also /openseed/v1/ledger and /channels

Dashboards (in a browser on this machine):
  buyer      $b/dashboard/
  seller 1   http://$host:$seller1_admin_port/dashboard/  (token: cat $dir/seller1/admin.token)
  seller 2   http://$host:$seller2_admin_port/dashboard/  (token: cat $dir/seller2/admin.token)

EOF
    if [ "$1" = foreground ]; then
        echo "Stop it with Ctrl-C (or $down_cmd from another terminal)."
    else
        echo "Status: scripts/devnet.sh status   Stop it: $down_cmd"
    fi
}

# Bash may run a trap in a subshell it forked just as the signal arrived (the handler flag is
# copied by fork); such a subshell hands the signal back to the script and gets out of the way.
on_signal() {
    if [ "$BASHPID" != "$$" ]; then
        kill -s "$1" "$$"
        exit 0
    fi
    trap '' INT TERM HUP
    # After a hang-up the terminal is gone: a failed write must not stop us before stop_all.
    if [ "$1" = HUP ]; then exec >/dev/null 2>&1; fi
    echo
    say "stopping"
    stop_all
    rm -f "$dir/pids/supervisor.pid"
    if [ "$phase" = serving ]; then
        say "stopped (logs and data kept in $dir)"
        exit 0
    fi
    phase=finished
    die "interrupted during start-up; stopped what had started"
}

on_exit() {
    local rc=$?
    if [ "$phase" = starting ]; then
        trap '' INT TERM HUP
        warn "start-up failed; stopping what had started"
        stop_all
        rm -f "$dir/pids/supervisor.pid"
    fi
    exit "$rc"
}

cmd_start() { # MODE: foreground | background
    local mode=$1 running sup
    record=${OPENSEED_DEVNET_RECORD:-0}
    [ "$record" = 0 ] || [ "$record" = 1 ] || die "OPENSEED_DEVNET_RECORD must be 0 or 1"
    mint=${OPENSEED_DEVNET_MINT:-1000}
    deposit=${OPENSEED_DEVNET_DEPOSIT:-5}
    [[ $mint =~ ^[0-9]+(\.[0-9]{1,6})?$ ]] || die "OPENSEED_DEVNET_MINT=$mint is not a USDC amount"
    [[ $deposit =~ ^[0-9]+(\.[0-9]{1,6})?$ ]] || die "OPENSEED_DEVNET_DEPOSIT=$deposit is not a USDC amount"
    lock
    running=$(running_names)
    if [ -n "$running" ]; then
        local exp
        exp=$(expected_names)
        if [ "$running" = "$exp" ]; then
            if sup=$(live_pid supervisor); then
                say "already running (in the foreground, scripts/devnet.sh pid $sup)"
            else
                say "already running"
            fi
            cmd_status || true
            if [ "$record" = 1 ] && ! grep -q '^OPENSEED_WIRE_DIR=.' "$dir/devnet.env" 2>/dev/null; then
                warn "it runs without recording: scripts/devnet.sh down first to record"
            elif [ "$record" = 0 ] && grep -q '^OPENSEED_WIRE_DIR=.' "$dir/devnet.env" 2>/dev/null; then
                warn "note: it runs with recording (OPENSEED_DEVNET_RECORD=1)"
            fi
            exit 0
        fi
        cmd_status || true
        say "partly running: stopping the rest, then starting afresh"
        stop_everything
    fi
    choose_ports
    check_ports
    choose_upstream
    setup_and_build
    check_ports # the build can take minutes; something may have started meanwhile

    phase=starting
    trap 'on_signal INT' INT
    trap 'on_signal TERM' TERM
    trap 'on_signal HUP' HUP
    trap on_exit EXIT
    reset_dir
    start_network
    phase=serving
    print_summary "$mode"
    if [ "$mode" = background ]; then
        phase=finished
        exit 0
    fi

    echo $$ >"$dir/pids/supervisor.pid"
    exec 9>&- # the lock: `down` and `status` may run while we serve
    have_lock=0
    local -A gone=()
    local -a expected
    local n any
    mapfile -t expected < <(expected_names)
    while :; do
        any=0
        for n in "${expected[@]}"; do
            if is_running "$n"; then
                any=1
            elif [ -z "${gone[$n]:-}" ]; then
                gone[$n]=1
                warn "$n has stopped (log: $dir/$n.log)"
            fi
        done
        if [ "$any" = 0 ]; then
            rm -f "$dir/pids/supervisor.pid"
            phase=finished
            die "every process has stopped"
        fi
        sleep 1 &
        wait $! || true
    done
}

phase=idle
have_lock=0
case ${1:-} in
"") cmd_start foreground ;;
up) cmd_start background ;;
down) cmd_down ;;
status) cmd_status ;;
help | -h | --help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
