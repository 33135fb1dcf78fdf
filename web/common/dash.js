// SPDX-License-Identifier: Apache-2.0
// The dashboards' shared script library (an ES module, served by both daemons from memory):
// - DOM building that only ever sets text, never markup: sellers and registries choose some of
//   the strings shown (endpoints, model names), and a page must not run them;
// - money in exact integer arithmetic: amounts arrive as decimal strings of micro-USDC and stay
//   BigInt; only chart geometry is ever a float;
// - SVG charts and tables that carry the raw figures in data-* attributes (data-micro on money),
//   so what a cell shows can be checked against the ledger it came from;
// - the JSON API client, with the token or API key kept in this tab's sessionStorage;
// - polling, the error banner, CSV export.

// ---- DOM ------------------------------------------------------------------------------------

function build(el, attrs, kids) {
    for (const [k, v] of Object.entries(attrs ?? {})) {
        if (v === null || v === undefined || v === false)
            continue;
        if (k === "text")
            el.textContent = String(v);
        else if (k.startsWith("on"))
            el.addEventListener(k.slice(2), v);
        else
            el.setAttribute(k === "className" ? "class" : k, v === true ? "" : String(v));
    }
    for (const c of kids.flat(Infinity))
        if (c !== null && c !== undefined && c !== false)
            el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
}

// An HTML element: h("td", {class: "num"}, "text", childNode, ...). Strings become text nodes.
export function h(tag, attrs, ...kids) {
    return build(document.createElement(tag), attrs, kids);
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function s(tag, attrs, ...kids) {
    return build(document.createElementNS(SVG_NS, tag), attrs, kids);
}

export const $ = (sel, root = document) => root.querySelector(sel);

export function replace(el, ...kids) {
    el.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined));
    return el;
}

// ---- numbers --------------------------------------------------------------------------------

// A wire amount (decimal string of micro-USDC) as BigInt; 0n for anything else.
export function micro(v) {
    if (typeof v === "bigint")
        return v;
    if (typeof v === "number" && Number.isSafeInteger(v))
        return BigInt(v);
    if (typeof v === "string" && /^[0-9]{1,40}$/.test(v))
        return BigInt(v);
    return 0n;
}

function group3(digits) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

// micro-USDC as USDC with all six decimals: 1234567 -> "1.234567". Exact.
export function usdc(v) {
    let m = micro(v);
    const neg = m < 0n;
    if (neg)
        m = -m;
    const whole = m / 1000000n, frac = (m % 1000000n).toString().padStart(6, "0");
    return `${neg ? "-" : ""}${group3(whole.toString())}.${frac}`;
}

// A price in micro-USDC per million tokens, shown as USDC per million tokens.
export function price(v) {
    return `${usdc(v)} / M`;
}

export function count(v) {
    if (v === null || v === undefined)
        return "–";
    return group3(String(v));
}

export function pct(num, den) {
    if (!den)
        return "–";
    return `${(Number(num) * 100 / Number(den)).toFixed(1)}%`;
}

export function ms(v) {
    return v === null || v === undefined ? "–" : `${count(Math.round(Number(v)))} ms`;
}

// Unix seconds as local "YYYY-MM-DD HH:MM:SS".
export function when(t) {
    if (!t)
        return "–";
    const d = new Date(Number(t) * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
           `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function ago(t) {
    if (!t)
        return "never";
    const d = Math.max(0, Math.round(Date.now() / 1000 - Number(t)));
    if (d < 90)
        return `${d} s ago`;
    if (d < 5400)
        return `${Math.round(d / 60)} min ago`;
    if (d < 129600)
        return `${Math.round(d / 3600)} h ago`;
    return `${Math.round(d / 86400)} d ago`;
}

// 0x1234…abcd, with the whole value as the tooltip.
export function short(hex, keep = 6) {
    if (typeof hex !== "string" || hex.length <= 2 * keep + 3)
        return h("span", { text: hex ?? "–" });
    return h("span", { title: hex, text: `${hex.slice(0, keep)}…${hex.slice(-4)}` });
}

// Shows amount v (micro-USDC) in the element with this id, and keeps it in its data-micro.
export function setMoney(id, v) {
    const el = $(`#${id}`);
    el.dataset.micro = micro(v).toString();
    el.textContent = usdc(v);
}

// Returns note(rows): it calls onChange when rows' first (newest) row is another request than
// last time, or the same one in another state; not on the first call.
export function watchNewest(onChange) {
    let last = null;
    return (rows) => {
        const r = rows[0];
        const top = r ? `${r.id}:${r.outcome ?? ""}:${r.status ?? ""}` : "";
        if (last !== null && top !== last)
            onChange();
        last = top;
    };
}

// ---- the API --------------------------------------------------------------------------------

export class AuthError extends Error {}

// A JSON client for the daemon that served the page. storageKey names the token in
// sessionStorage (this tab only, gone when it closes); the token goes out as a Bearer header.
export class Api {
    constructor(storageKey) {
        this.key = storageKey;
    }
    get token() {
        return sessionStorage.getItem(this.key) ?? "";
    }
    set token(v) {
        if (v)
            sessionStorage.setItem(this.key, v);
        else
            sessionStorage.removeItem(this.key);
    }
    async request(method, path, body) {
        const headers = { Accept: "application/json" };
        if (this.token)
            headers.Authorization = `Bearer ${this.token}`;
        if (body !== undefined)
            headers["Content-Type"] = "application/json";
        const res = await fetch(path, { method, headers, cache: "no-store",
                                        body: body === undefined ? undefined : JSON.stringify(body) });
        const text = await res.text();
        let json = null;
        try {
            json = JSON.parse(text);
        } catch {
            json = null;
        }
        if (res.status === 401)
            throw new AuthError(json?.error?.message ?? "not authorized");
        if (!res.ok)
            throw new Error(`${path}: ${json?.error?.message ?? `HTTP ${res.status}`}`);
        if (json === null)
            throw new Error(`${path}: the answer is not JSON`);
        return json;
    }
    get(path) {
        return this.request("GET", path);
    }
    post(path, body) {
        return this.request("POST", path, body ?? {});
    }
}

// ---- errors and polling ---------------------------------------------------------------------

const errors = new Map();

function showErrors() {
    const box = $("#error");
    if (!box)
        return;
    replace(box, [...errors.values()].map((m) => h("div", { text: m })));
    box.classList.toggle("show", errors.size > 0);
}

// Shows (or with null clears) the error of one source in the banner.
export function setError(source, message) {
    if (message)
        errors.set(source, message);
    else
        errors.delete(source);
    showErrors();
}

// Runs fn now and then ms after each run ends (never two at once). A failure is shown in the
// banner under name until a later run succeeds; an AuthError goes to onAuth. Returns
// {now(), stop()}: now() runs it at once (after a change the user made).
export function poll(name, ms, fn, onAuth) {
    let timer = null, running = false, again = false, stopped = false;
    async function tick() {
        clearTimeout(timer);
        if (stopped)
            return;
        if (running) {
            again = true;
            return;
        }
        running = true;
        try {
            await fn();
            setError(name, null);
        } catch (e) {
            if (e instanceof AuthError && onAuth)
                onAuth(e);
            else
                setError(name, `${name}: ${e.message}`);
        } finally {
            running = false;
            if (!stopped)
                timer = setTimeout(tick, again ? 0 : ms);
            again = false;
        }
    }
    tick();
    return { now: tick, stop() { stopped = true; clearTimeout(timer); } };
}

// ---- tables ---------------------------------------------------------------------------------

// Fills table with rows. cols: [{k, label, num, mono, get(row) -> string|Node, money(row) ->
// micro-USDC}], a money column shows usdc() and keeps the raw amount in data-micro. opts.key(row)
// names a row (data-id); rows whose key was not in the previous fill get class "new".
export function table(el, cols, rows, opts = {}) {
    if (!el.tHead)
        el.append(h("thead", {}, h("tr", {}, cols.map((c) =>
            h("th", { class: c.num || c.money ? "num" : null, text: c.label })))));
    const seen = el._seen ?? null, now = new Set();
    const body = h("tbody");
    for (const r of rows) {
        const key = opts.key ? String(opts.key(r)) : null;
        const tr = h("tr", { "data-id": key });
        if (key !== null) {
            now.add(key);
            if (seen !== null && !seen.has(key))
                tr.classList.add("new");
        }
        for (const c of cols) {
            const td = h("td", { "data-k": c.k });
            if (c.num || c.money)
                td.classList.add("num");
            if (c.mono)
                td.classList.add("mono");
            if (c.money) {
                const m = micro(c.money(r));
                td.dataset.micro = m.toString();
                td.textContent = usdc(m);
            } else {
                const v = c.get ? c.get(r) : r[c.k];
                td.append(v instanceof Node ? v : document.createTextNode(v ?? "–"));
            }
            tr.append(td);
        }
        body.append(tr);
    }
    if (rows.length === 0)
        body.append(h("tr", {}, h("td", { class: "empty", colspan: cols.length,
                                          text: opts.empty ?? "nothing yet" })));
    for (const old of el.tBodies)
        old.remove();
    el.append(body);
    el._seen = now;
}

// ---- charts ---------------------------------------------------------------------------------

// A bar chart of points [{t, v (micro-USDC), n}] into el (an <svg class="chart">): one bar per
// bucket, labelled by time, each bar with data-t and data-micro and a tooltip.
export function barChart(el, points, opts = {}) {
    const W = Math.max(320, Math.round(el.clientWidth || 800)), H = 220;
    const L = 92, R = 10, T = 12, B = 26, pw = W - L - R, ph = H - T - B;
    let max = 0n;
    for (const p of points)
        if (p.v > max)
            max = p.v;
    el.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const kids = [];
    for (const f of [0n, 1n, 2n]) {
        const y = T + ph - (ph * Number(f)) / 2;
        kids.push(s("line", { class: "axis", x1: L, x2: W - R, y1: y, y2: y }));
        kids.push(s("text", { x: L - 6, y: y + 4, "text-anchor": "end",
                              text: usdc((max * f) / 2n) }));
    }
    const bw = points.length ? pw / points.length : pw;
    points.forEach((p, i) => {
        const hgt = max > 0n ? (ph * Number((p.v * 10000n) / max)) / 10000 : 0;
        const label = opts.label ? opts.label(p) : String(p.t);
        kids.push(s("rect", { class: "b", x: (L + i * bw + bw * 0.12).toFixed(2),
                              y: (T + ph - hgt).toFixed(2), width: Math.max(1, bw * 0.76).toFixed(2),
                              height: Math.max(hgt, p.v > 0n ? 1 : 0).toFixed(2),
                              "data-t": p.t, "data-micro": p.v.toString(), "data-n": p.n ?? 0 },
                           s("title", { text: `${label}: ${usdc(p.v)} USDC, ${count(p.n ?? 0)} requests` })));
    });
    const ticks = points.length > 1 ? [0, Math.floor((points.length - 1) / 2), points.length - 1] : [0];
    for (const i of ticks)
        if (points[i])
            kids.push(s("text", { x: L + i * bw + bw / 2, y: H - 8, "text-anchor": "middle",
                                  text: opts.label ? opts.label(points[i]) : String(points[i].t) }));
    replace(el, kids);
}

// A time series as the management APIs give it ({step, from, points: [{t, <field>, requests}]}),
// charted into el with one bar per bucket; el keeps the window in data-step and data-from.
export function seriesChart(el, se, field) {
    el.dataset.step = String(se.step);
    el.dataset.from = String(se.from);
    barChart(el, se.points.map((p) => ({ t: p.t, v: micro(p[field]), n: p.requests })),
             { label: (p) => bucketLabel(p.t, se.step) });
}

// A small horizontal bar: parts [{v: BigInt, cls}] of total, as an <svg class="hbar">.
export function hbar(parts, total) {
    const kids = [s("rect", { class: "t", x: 0, y: 0, width: 120, height: 10, rx: 2 })];
    let x = 0;
    for (const p of parts) {
        const w = total > 0n ? (120 * Number((p.v * 10000n) / total)) / 10000 : 0;
        kids.push(s("rect", { class: p.cls, x: x.toFixed(2), y: 0, width: w.toFixed(2), height: 10 }));
        x += w;
    }
    return s("svg", { class: "hbar", viewBox: "0 0 120 10" }, kids);
}

// The time ranges a chart offers: one bar per minute, hour or day.
export const RANGES = [
    { label: "1 h", step: 60, points: 60 },
    { label: "24 h", step: 3600, points: 24 },
    { label: "30 d", step: 86400, points: 30 },
];

// Range buttons ([{label, step, points}]) into el; onPick(range) when one is chosen.
export function ranges(el, list, onPick) {
    let cur = list[0];
    const buttons = list.map((r) => h("button", { type: "button", "data-range": r.label,
                                                  text: r.label, onclick: () => {
        cur = r;
        buttons.forEach((b) => b.classList.toggle("on", b.dataset.range === r.label));
        onPick(r);
    } }));
    buttons[0].classList.add("on");
    replace(el, buttons);
    return () => cur;
}

// A bucket's start as a label fitting its step: "14:05" within a day, "11-21 14:00", "2026-11-21".
export function bucketLabel(t, step) {
    const full = when(t);
    if (step >= 86400)
        return full.slice(0, 10);
    if (step >= 3600)
        return full.slice(5, 16);
    return full.slice(11, 16);
}

// ---- CSV ------------------------------------------------------------------------------------

// RFC 4180 text; a cell a spreadsheet would take for a formula (=, +, -, @ first) gets a leading
// apostrophe, since some cells (model names) are chosen by sellers.
export function csv(header, rows) {
    const cell = (v) => {
        let t = v === null || v === undefined ? "" : String(v);
        if (/^[=+\-@\t\r]/.test(t))
            t = `'${t}`;
        return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
    };
    return [header, ...rows].map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

export function download(name, text, type = "text/csv") {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- sign-in --------------------------------------------------------------------------------

// Shows the #login form (hiding main) until a token the API accepts is entered: check(api) must
// resolve with it and throw AuthError without. Resolves once signed in.
export function signIn(api, check, message) {
    const form = $("#login"), main = $("main"), input = $("#login input"), err = $("#login .err");
    form.hidden = false;
    main.hidden = true;
    if (message)
        err.textContent = message;
    input.focus();
    return new Promise((resolve) => {
        form.onsubmit = async (ev) => {
            ev.preventDefault();
            api.token = input.value.trim();
            try {
                await check(api);
            } catch (e) {
                api.token = "";
                err.textContent = e instanceof AuthError ? "That token was not accepted." : e.message;
                return;
            }
            input.value = "";
            err.textContent = "";
            form.hidden = true;
            main.hidden = false;
            resolve();
        };
    });
}
