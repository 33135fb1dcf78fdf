# SPDX-License-Identifier: Apache-2.0
# Sourced by scripts/bench.sh and scripts/soak.sh: the processes both run a network on. The fake
# model (bench/echo_upstream) and scripts/devnet.sh with it as both sellers' upstream, on ports the
# caller chose (scripts/free-ports.mjs). Needs $root, $build (absolute) and $work set; the devnet
# lives in $work/devnet, logs in $work/{echo,up,down}.log.

stop_pid() { # PID: SIGTERM, then SIGKILL after 5 s
    local p=$1 _
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
}

# PORT LATENCY_MS TOKENS_PER_S: starts the fake model (its pid in $echo_pid) and waits until it
# answers; false (its log's tail shown) when it does not within 10 s.
net_echo_start() {
    "$build/echo_upstream" --listen "127.0.0.1:$1" --latency-ms "$2" --tokens-per-s "$3" \
        --threads 4 >>"$work/echo.log" 2>&1 &
    echo_pid=$!
    local _
    for _ in $(seq 100); do
        curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$1/v1/models" && return 0
        kill -0 "$echo_pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 5 "$work/echo.log" >&2
    return 1
}

# RPC REGISTRY BUYER SELLER1 SELLER2 ADMIN1 ADMIN2 ECHO: scripts/devnet.sh up with the fake model
# on port ECHO as both sellers' upstream (1,024 upstream requests in flight each, a wallet minted
# 100,000 USDC). Sets devnet_up=1 first so a failed start is still taken down.
net_devnet_up() {
    devnet_up=1
    env OPENSEED_DEVNET_DIR="$work/devnet" OPENSEED_BUILD_DIR="$build" \
        OPENSEED_DEVNET_SKIP_BUILD=1 OPENSEED_DEVNET_SKIP_SETUP=1 OPENSEED_RPC_PORT="$1" \
        OPENSEED_REGISTRY_PORT="$2" OPENSEED_BUYER_PORT="$3" \
        OPENSEED_SELLER_PORT="$4" OPENSEED_SELLER2_PORT="$5" \
        OPENSEED_SELLER_ADMIN_PORT="$6" OPENSEED_SELLER2_ADMIN_PORT="$7" \
        OPENSEED_UPSTREAM="http://127.0.0.1:$8/v1" OPENSEED_UPSTREAM_API=openai \
        OPENSEED_UPSTREAM_MODEL=echo-1 OPENSEED_SELLER_ARGS="--upstream-concurrency 1024" \
        OPENSEED_DEVNET_MINT=100000 \
        timeout 600 bash "$root/scripts/devnet.sh" up >>"$work/up.log" 2>&1
}

net_devnet_down() { # when up: scripts/devnet.sh down
    [ "${devnet_up:-0}" = 1 ] || return 0
    OPENSEED_DEVNET_DIR="$work/devnet" timeout 120 bash "$root/scripts/devnet.sh" down >>"$work/down.log" 2>&1 || true
    devnet_up=0
}
