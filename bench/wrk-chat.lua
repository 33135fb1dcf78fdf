-- SPDX-License-Identifier: Apache-2.0
-- wrk script for scripts/bench.sh's peak-throughput cross-check: every request is the chat
-- completion path_bench sends (8 words, max_tokens 32, not streamed) for the model in
-- $BENCH_MODEL; run as `BENCH_MODEL=echo-1 wrk -t1 -c16 -d10s -s bench/wrk-chat.lua URL`.
-- A reply that is not a 2xx is counted by wrk itself ("Non-2xx or 3xx responses").
local model = os.getenv("BENCH_MODEL") or "echo-1"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. model .. '","max_tokens":32,"messages":[{"role":"user","content":' ..
    '"alpha bravo charlie delta echo foxtrot golf hotel"}]}'
