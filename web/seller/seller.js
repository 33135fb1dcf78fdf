// SPDX-License-Identifier: Apache-2.0
// The seller's dashboard (GET /dashboard/ on the admin listener). Everything comes from the admin
// API documented in docs/seller-admin-api.md, with the admin token the operator types in (kept in
// this tab's sessionStorage, sent as a Bearer header). The live view polls every second; the rest
// every five.
import {
    $, Api, AuthError, RANGES, ago, count, h, hbar, micro, ms, poll, ranges, seriesChart, setError,
    setMoney, short, signIn, table, usdc, watchNewest, when,
} from "/dashboard/dash.js";

const api = new Api("openseed.seller.token");

let range = () => RANGES[0];
let onNewRequest = () => {};
// The newest live row changed (a new request, or the newest one finished): the totals are stale,
// so the other panels refresh at once rather than at their next turn.
const noteNewest = watchNewest(() => onNewRequest());
const polls = [];

// wei (decimal string) as ETH with six decimals, exactly.
function eth(wei) {
    const w = /^[0-9]{1,80}$/.test(String(wei)) ? BigInt(wei) : 0n;
    const u = w / 1000000000000n; // micro-ETH
    return `${usdc(u)} ETH`;
}

async function refreshRevenue() {
    const r = await api.get("/admin/v1/revenue");
    setMoney("consumed", r.consumed);
    setMoney("claimed", r.claimed);
    setMoney("unclaimed", r.unclaimed);
    $("#requests").textContent = count(r.requests);
    $("#tokens").textContent = `${count(r.input_tokens)} in / ${count(r.output_tokens)} out tokens`;
    $("#settlement-count").textContent = `${count(r.settlements)} claims sent`;
    $("#gas").textContent = eth(r.gas_wei);
}

async function refreshChart() {
    const r = range();
    seriesChart($("#chart"), await api.get(`/admin/v1/revenue/series?step=${r.step}&points=${r.points}`),
                "revenue");
}

async function refreshChannels() {
    const { channels } = await api.get("/admin/v1/channels");
    const unclaimed = (c) => (micro(c.consumed) > micro(c.claimed)
        ? micro(c.consumed) - micro(c.claimed) : 0n);
    table($("#channels"), [
        { k: "channel_id", label: "Channel", mono: true, get: (c) => short(c.channel_id, 10) },
        { k: "payer", label: "Payer", mono: true, get: (c) => short(c.payer) },
        { k: "state", label: "State", get: (c) => h("span", {
            class: `pill ${c.closed ? "" : c.close_at ? "warn" : "good"}`,
            text: c.closed ? "closed" : c.close_at ? `closing ${when(c.close_at)}` : "open" }) },
        { k: "deposit", label: "Deposit", money: (c) => c.deposit },
        { k: "consumed", label: "Earned", money: (c) => c.consumed },
        { k: "claimed", label: "Settled", money: (c) => c.claimed },
        { k: "unclaimed", label: "Unclaimed", money: unclaimed },
        { k: "split", label: "Settled / unclaimed", get: (c) => hbar(
            [{ v: micro(c.claimed), cls: "a" }, { v: unclaimed(c), cls: "c" }], micro(c.consumed)) },
        { k: "requests", label: "Requests", num: true, get: (c) => count(c.requests) },
        { k: "nonce", label: "Voucher", num: true,
          get: (c) => (c.latest_voucher ? `#${c.latest_voucher.nonce}` : "–") },
    ], channels, { key: (c) => c.channel_id, empty: "no channels yet" });
}

async function refreshSettlements() {
    const { settlements } = await api.get("/admin/v1/settlements?limit=50");
    table($("#settlements"), [
        { k: "at", label: "When", get: (s) => when(s.at) },
        { k: "channel_id", label: "Channel", mono: true, get: (s) => short(s.channel_id, 10) },
        { k: "status", label: "Status", get: (s) => h("span", {
            class: `pill ${s.status === "confirmed" ? "good" : s.status === "pending" ? "warn" : "bad"}`,
            text: s.status, title: s.error ?? null }) },
        { k: "amount", label: "Claimed", money: (s) => s.amount },
        { k: "cumulative", label: "Up to", money: (s) => s.cumulative },
        { k: "tx_hash", label: "Transaction", mono: true, get: (s) => s.tx_hash ?? "–" },
        { k: "gas_used", label: "Gas", num: true, get: (s) => count(s.gas_used) },
    ], settlements, { key: (s) => `${s.channel_id}:${s.nonce}:${s.at}:${s.tx_hash ?? ""}`,
                      empty: "no claims sent yet" });
}

async function refreshModels() {
    const { models } = await api.get("/admin/v1/models");
    const lat = (o) => (o ? `${ms(o.p50)} / ${ms(o.p95)}` : "–");
    table($("#models"), [
        { k: "service", label: "Model" },
        { k: "requests", label: "Requests", num: true, get: (m) => count(m.requests) },
        { k: "errors", label: "Errors", num: true, get: (m) => count(m.errors) },
        { k: "tokens", label: "Tokens in / out", num: true,
          get: (m) => `${count(m.input_tokens)} / ${count(m.output_tokens)}` },
        { k: "revenue", label: "USDC", money: (m) => m.revenue },
        { k: "latency", label: "Latency p50 / p95", num: true, get: (m) => lat(m.latency_ms) },
        { k: "ttft", label: "First token p50 / p95", num: true, get: (m) => lat(m.ttft_ms) },
    ], models, { key: (m) => m.service, empty: "no requests yet" });
}

async function refreshStatus() {
    const st = await api.get("/admin/v1/status");
    $("#who").textContent = `node ${st.node} · ${st.endpoint}`;
    const regs = st.registries ?? [];
    const ok = regs.filter((r) => r.registered).length;
    const hb = $("#heartbeat");
    hb.textContent = regs.length === 0 ? "no registry"
        : `heartbeat: ${ok} of ${regs.length} registr${regs.length === 1 ? "y" : "ies"}`;
    hb.className = `pill ${regs.length === 0 ? "" : ok === regs.length ? "good" : ok ? "warn" : "bad"}`;
    table($("#registries"), [
        { k: "url", label: "Registry", get: (r) => r.url },
        { k: "registered", label: "State", get: (r) => h("span", {
            class: `pill ${r.registered ? "good" : "bad"}`,
            text: r.registered ? "listed" : "not listed" }) },
        { k: "last_ok_at", label: "Last accepted", get: (r) => h("span", {
            title: when(r.last_ok_at), text: ago(r.last_ok_at) }) },
        { k: "interval", label: "Every", num: true,
          get: (r) => (r.heartbeat_interval_s ? `${r.heartbeat_interval_s} s` : "–") },
        { k: "failures", label: "Failures", num: true, get: (r) => count(r.failures) },
        { k: "last_error", label: "Last error", get: (r) => r.last_error ?? "" },
    ], regs, { key: (r) => r.url, empty: "this seller announces to no registry" });
}

async function refreshLive() {
    const { requests } = await api.get("/admin/v1/requests?limit=15");
    table($("#live"), [
        { k: "id", label: "#", num: true, get: (r) => String(r.id) },
        { k: "started_at", label: "Started", get: (r) => when(r.started_at) },
        { k: "channel_id", label: "Channel", mono: true, get: (r) => short(r.channel_id, 10) },
        { k: "service", label: "Model" },
        { k: "api", label: "API" },
        { k: "outcome", label: "Outcome", get: (r) => h("span", {
            class: `pill ${r.status === "pending" ? "warn" : r.outcome === "ok" ? "good" : "bad"}`,
            text: r.status === "pending" ? "running" : r.outcome ?? r.status }) },
        { k: "tokens", label: "Tokens in / out", num: true,
          get: (r) => `${count(r.input_tokens)} / ${count(r.output_tokens)}` },
        { k: "latency_ms", label: "Upstream", num: true, get: (r) => ms(r.latency_ms) },
        { k: "cost", label: "USDC", money: (r) => r.cost },
    ], requests, { key: (r) => r.id, empty: "no requests yet" });
    noteNewest(requests);
}

// ---- start ----------------------------------------------------------------------------------

async function check(a) {
    await a.get("/admin/v1/status");
}

let signingIn = null;
function onAuth(message) {
    if (signingIn)
        return;
    polls.forEach((p) => p.stop());
    polls.length = 0;
    signingIn = signIn(api, check, message).then(() => {
        signingIn = null;
        $("#signout").hidden = false;
        start();
    });
}

function start() {
    const ready = new Set();
    const names = [];
    const run = (name, ms_, fn) => {
        names.push(name);
        const p = poll(name, ms_, async () => {
            await fn();
            ready.add(name);
            if (ready.size === names.length)
                document.body.dataset.ready = "1";
        }, () => onAuth("The token was not accepted."));
        polls.push(p);
        return p;
    };
    const revenue = run("revenue", 5000, refreshRevenue);
    const chart = run("chart", 5000, refreshChart);
    const channels = run("channels", 5000, refreshChannels);
    const settlements = run("settlements", 5000, refreshSettlements);
    const models = run("models", 5000, refreshModels);
    run("status", 5000, refreshStatus);
    run("live", 1000, refreshLive);
    onNewRequest = () => [revenue, chart, channels, settlements, models].forEach((p) => p.now());
    range = ranges($("#range"), RANGES, () => chart.now());
    $("#settle").onclick = async () => {
        $("#settle").disabled = true;
        try {
            await api.post("/admin/v1/settle", {});
            setError("settle", null);
        } catch (e) {
            if (e instanceof AuthError)
                onAuth("The token was not accepted.");
            else
                setError("settle", `settle: ${e.message}`);
        } finally {
            $("#settle").disabled = false;
            [revenue, settlements, channels].forEach((p) => p.now());
        }
    };
}

$("#signout").onclick = () => {
    api.token = "";
    $("#signout").hidden = true;
    onAuth("");
};
// No request goes out before there is a token: the page itself needs none.
if (api.token) {
    $("main").hidden = false;
    $("#signout").hidden = false;
    start();
} else {
    onAuth("");
}
