// SPDX-License-Identifier: Apache-2.0
// The buyer's dashboard (GET /dashboard/ on the gateway). Everything comes from the management
// API documented in docs/buyer-api.md: /openseed/v1/spend (+ /series), /ledger, /channels and
// /peers. The live view polls the newest ledger rows every second; the rest every five.
import {
    $, Api, AuthError, RANGES, count, csv, download, h, hbar, micro, ms, pct, poll, price, ranges,
    replace, seriesChart, setError, setMoney, short, signIn, table, usdc, watchNewest, when,
} from "/dashboard/dash.js";

const api = new Api("openseed.buyer.key");
const EXPORT_PAGE = 1000;

let range = () => RANGES[0];
let onNewRequest = () => {};
// The newest live row changed (a new request, or the newest one finished): the totals are stale,
// so the other panels refresh at once rather than at their next turn.
const noteNewest = watchNewest(() => onNewRequest());
let offset = 0;
const polls = [];

function filters() {
    const q = new URLSearchParams();
    for (const k of ["seller", "service", "outcome"]) {
        const v = $(`#f-${k}`).value;
        if (v)
            q.set(k, v);
    }
    return q;
}

// Keeps a <select>'s options in step with values, keeping the choice.
function options(sel, values, label) {
    const cur = sel.value;
    const want = ["", ...values];
    const have = [...sel.options].map((o) => o.value);
    if (want.length === have.length && want.every((v, i) => v === have[i]))
        return;
    replace(sel, want.map((v) => h("option", { value: v, text: v === "" ? "all" : label(v) })));
    sel.value = want.includes(cur) ? cur : "";
}

// ---- spend: cards, by seller, by model ------------------------------------------------------

async function refreshSpend() {
    const sp = await api.get("/openseed/v1/spend");
    setMoney("today-spent", sp.today.spent);
    setMoney("today-inflight", sp.today.in_flight);
    setMoney("total-spent", sp.total.spent);
    setMoney("total-deposited", sp.total.deposited);
    $("#today-budget").textContent = micro(sp.today.budget) > 0n
        ? `of ${usdc(sp.today.budget)} a day` : "no daily budget";
    $("#total-requests").textContent = `${count(sp.total.requests)} requests`;

    const total = micro(sp.total.spent);
    table($("#by-seller"), [
        { k: "seller", label: "Seller", mono: true, get: (r) => short(r.seller) },
        { k: "requests", label: "Requests", num: true, get: (r) => count(r.requests) },
        { k: "spent", label: "USDC", money: (r) => r.spent },
        { k: "share", label: "Share", get: (r) => hbar([{ v: micro(r.spent), cls: "a" }], total) },
    ], sp.per_seller ?? [], { key: (r) => r.seller, empty: "no spend yet" });

    const svcs = sp.per_service ?? [];
    let svcTotal = 0n;
    for (const r of svcs)
        svcTotal += micro(r.spent);
    table($("#by-model"), [
        { k: "service", label: "Model" },
        { k: "requests", label: "Requests", num: true, get: (r) => count(r.requests) },
        { k: "tokens", label: "Tokens in / out", num: true,
          get: (r) => r.input_tokens === undefined ? "–"
              : `${count(r.input_tokens)} / ${count(r.output_tokens)}` },
        { k: "spent", label: "USDC", money: (r) => r.spent },
        { k: "share", label: "Share", get: (r) => hbar([{ v: micro(r.spent), cls: "c" }], svcTotal) },
    ], svcs, { key: (r) => r.service, empty: "no spend yet" });

    options($("#f-seller"), (sp.per_seller ?? []).map((r) => r.seller), (v) => `${v.slice(0, 8)}…`);
    options($("#f-service"), svcs.map((r) => r.service), (v) => v);
}

async function refreshChart() {
    const r = range();
    seriesChart($("#chart"), await api.get(`/openseed/v1/spend/series?step=${r.step}&points=${r.points}`),
                "spent");
}

// ---- requests: live and the ledger ----------------------------------------------------------

const REQUEST_COLS = [
    { k: "id", label: "#", num: true, get: (r) => String(r.id) },
    { k: "at", label: "Started", get: (r) => when(r.at) },
    { k: "seller", label: "Seller", mono: true, get: (r) => short(r.seller) },
    { k: "service", label: "Model" },
    { k: "api", label: "API" },
    { k: "outcome", label: "Outcome", get: (r) => h("span", {
        class: `pill ${r.outcome === "ok" ? "good" : r.outcome === "in_flight" ? "warn" : "bad"}`,
        text: r.outcome }) },
    { k: "tokens", label: "Tokens in / out", num: true,
      get: (r) => `${count(r.input_tokens)} / ${count(r.output_tokens)}` },
    { k: "latency_ms", label: "Latency", num: true, get: (r) => ms(r.latency_ms) },
    { k: "ttft_ms", label: "First token", num: true, get: (r) => ms(r.ttft_ms) },
    { k: "cost", label: "USDC", money: (r) => r.cost },
];

async function refreshLive() {
    const led = await api.get("/openseed/v1/ledger?limit=15");
    table($("#live"), REQUEST_COLS, led.requests, { key: (r) => r.id, empty: "no requests yet" });
    noteNewest(led.requests);
}

async function refreshLedger() {
    const limit = Number($("#f-limit").value);
    const q = filters();
    q.set("limit", String(limit));
    q.set("offset", String(offset));
    const led = await api.get(`/openseed/v1/ledger?${q}`);
    if (offset > 0 && offset >= led.total) { // the filter shrank the list under us
        offset = Math.max(0, Math.floor((led.total - 1) / limit) * limit);
        return refreshLedger();
    }
    const table_ = $("#ledger");
    table_.dataset.total = String(led.total);
    table(table_, REQUEST_COLS, led.requests, { key: (r) => r.id, empty: "no matching requests" });
    const first = led.total ? offset + 1 : 0, last = offset + led.requests.length;
    $("#page").textContent = `${count(first)}–${count(last)} of ${count(led.total)}`;
    $("#ledger-count").textContent = `${count(led.total)} requests`;
    $("#prev").disabled = offset === 0;
    $("#next").disabled = last >= led.total;
}

// Every matching row, page by page, as one CSV file.
async function exportCsv() {
    const rows = [];
    let total = Infinity;
    for (let off = 0; off < total; off += EXPORT_PAGE) {
        const q = filters();
        q.set("limit", String(EXPORT_PAGE));
        q.set("offset", String(off));
        const led = await api.get(`/openseed/v1/ledger?${q}`);
        total = led.total;
        rows.push(...led.requests);
        if (led.requests.length === 0)
            break;
    }
    const seen = new Set(); // rows added while paging shift later pages: count each once
    const unique = rows.filter((r) => !seen.has(r.id) && seen.add(r.id));
    const text = csv(
        ["id", "started_at", "finished_at", "seller", "channel_id", "service", "api", "outcome",
         "input_tokens", "cached_tokens", "output_tokens", "latency_ms", "ttft_ms",
         "estimate_micro_usdc", "cost_micro_usdc", "cost_usdc"],
        unique.map((r) => [r.id, new Date(r.at * 1000).toISOString(),
                           r.finished_at ? new Date(r.finished_at * 1000).toISOString() : "",
                           r.seller, r.channel_id, r.service, r.api, r.outcome, r.input_tokens,
                           r.cached_tokens, r.output_tokens, r.latency_ms, r.ttft_ms,
                           micro(r.estimate).toString(), micro(r.cost).toString(), usdc(r.cost)]));
    const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
    download(`openseed-ledger-${stamp}.csv`, text);
}

// ---- channels and peers ---------------------------------------------------------------------

async function refreshChannels() {
    const { channels } = await api.get("/openseed/v1/channels");
    let open = 0, remaining = 0n;
    for (const c of channels)
        if (c.state === "open") {
            open++;
            remaining += micro(c.remaining);
        }
    $("#open-channels").textContent = String(open);
    $("#remaining").textContent = `${usdc(remaining)} USDC left in them`;
    table($("#channels"), [
        { k: "channel_id", label: "Channel", mono: true, get: (c) => short(c.channel_id, 10) },
        { k: "seller", label: "Seller", mono: true, get: (c) => short(c.seller) },
        { k: "state", label: "State", get: (c) => h("span", {
            class: `pill ${c.state === "open" ? "good" : c.state === "closed" ? "" : "warn"}`,
            text: c.state }) },
        { k: "deposit", label: "Deposit", money: (c) => c.deposit },
        { k: "consumed", label: "Spent", money: (c) => c.consumed },
        { k: "in_flight", label: "In flight", money: (c) => c.in_flight },
        { k: "remaining", label: "Remaining", money: (c) => c.remaining },
        { k: "used", label: "Used", get: (c) => hbar([{ v: micro(c.consumed), cls: "a" },
                                                      { v: micro(c.in_flight), cls: "c" }],
                                                     micro(c.deposit)) },
        { k: "nonce", label: "Vouchers", num: true, get: (c) => count(c.nonce) },
        { k: "close_at", label: "Closes", get: (c) => (c.close_at ? when(c.close_at) : "–") },
    ], channels, { key: (c) => c.channel_id, empty: "no channels yet: the first request opens one" });
}

async function refreshPeers() {
    const { peers } = await api.get("/openseed/v1/peers");
    const prices = (p, k) => (p.offerings ?? []).map((o) => price(o[k])).join(", ") || "–";
    table($("#peers"), [
        { k: "node", label: "Node", mono: true, get: (p) => short(p.node) },
        { k: "endpoint", label: "Endpoint", get: (p) => p.endpoint ?? "–" },
        { k: "services", label: "Models", get: (p) => (p.services ?? []).join(", ") },
        { k: "input_price", label: "Input USDC", num: true, get: (p) => prices(p, "input_price") },
        { k: "output_price", label: "Output USDC", num: true, get: (p) => prices(p, "output_price") },
        { k: "score", label: "Score", num: true,
          get: (p) => (p.score === null || p.score === undefined ? "–" : Number(p.score).toFixed(3)) },
        { k: "success", label: "Success", num: true,
          get: (p) => pct(p.observed.successes, p.observed.successes + p.observed.failures) },
        { k: "requests", label: "Requests", num: true,
          get: (p) => count(p.observed.successes + p.observed.failures) },
        { k: "ttft", label: "First token", num: true, get: (p) => ms(p.observed.avg_ttft_ms) },
        { k: "load", label: "Load", num: true,
          get: (p) => (p.load ? `${p.load.active} / ${p.load.capacity}` : "–") },
        { k: "state", label: "", get: (p) => (p.cooldown_ms > 0
            ? h("span", { class: "pill bad", text: "cooling down" })
            : h("span", { class: "pill good", text: "ready" })) },
    ], peers, { key: (p) => p.node, empty: "no peers seen yet" });
}

// ---- start ----------------------------------------------------------------------------------

async function check(a) {
    await a.get("/openseed/v1/channels");
}

let signingIn = null;
function onAuth() {
    if (signingIn)
        return;
    polls.forEach((p) => p.stop());
    polls.length = 0;
    signingIn = signIn(api, check, api.token ? "The key was not accepted." : "").then(() => {
        signingIn = null;
        $("#signout").hidden = !api.token;
        start();
    });
}

function start() {
    const ready = new Set();
    const mark = (name) => () => {
        ready.add(name);
        $("#health").textContent = "connected";
        $("#health").className = "pill good";
        if (ready.size === 6)
            document.body.dataset.ready = "1";
    };
    const run = (name, ms_, fn) => {
        const p = poll(name, ms_, async () => {
            try {
                await fn();
            } catch (e) {
                if (!(e instanceof AuthError)) {
                    $("#health").textContent = "unreachable";
                    $("#health").className = "pill bad";
                }
                throw e;
            }
            mark(name)();
        }, onAuth);
        polls.push(p);
        return p;
    };
    const spend = run("spend", 5000, refreshSpend);
    const chart = run("chart", 5000, refreshChart);
    run("live", 1000, refreshLive);
    const ledger = run("ledger", 5000, refreshLedger);
    const channels = run("channels", 5000, refreshChannels);
    const peers = run("peers", 5000, refreshPeers);
    onNewRequest = () => [spend, chart, ledger, channels, peers].forEach((p) => p.now());

    range = ranges($("#range"), RANGES, () => chart.now());
    for (const id of ["f-seller", "f-service", "f-outcome", "f-limit"])
        $(`#${id}`).onchange = () => {
            offset = 0;
            ledger.now();
        };
    $("#prev").onclick = () => {
        offset = Math.max(0, offset - Number($("#f-limit").value));
        ledger.now();
    };
    $("#next").onclick = () => {
        offset += Number($("#f-limit").value);
        ledger.now();
    };
    $("#export").onclick = async () => {
        $("#export").disabled = true;
        try {
            await exportCsv();
            setError("export", null);
        } catch (e) {
            if (e instanceof AuthError)
                onAuth();
            else
                setError("export", `export: ${e.message}`);
        } finally {
            $("#export").disabled = false;
        }
    };
}

$("#who").textContent = location.host;
$("#signout").hidden = !api.token;
$("#signout").onclick = () => {
    api.token = "";
    onAuth();
};
start();
