// SPDX-License-Identifier: Apache-2.0
// The dashboards in a real browser: Debian's Chromium, headless, driven by playwright-core. The
// buyer's page (/dashboard/ on the gateway) and seller 1's (/dashboard/ on its admin listener) are
// loaded against the running devnet and must:
// - load without a console error, a page error, a failed request or a request to another origin,
//   with the Content-Security-Policy on every file;
// - show the numbers in the ledgers: buyer.db and seller.db are read here with sqlite3, not
//   through the API the pages use, and compared to the micro-USDC each cell carries (data-micro)
//   and to the counts it shows; the CSV export must hold every ledger row with its exact cost;
// - show a request made while the page is open, without a reload;
// - on the seller, ask for the admin token before any API call, and settle on "Settle now" with
//   the transaction hash seller.db records.
// A full-page screenshot of each (and one of the first screen, which the README shows) is saved in
// OPENSEED_ARTIFACT_DIR (default build/artifacts), with the exported CSV.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { ROOT, env, importTool, openai, anthropic, pinned, buyerIdle, until } from "./lib.mjs";

const { chromium } = await importTool("playwright-core");

const T = { timeout: 240_000 };
const CHROMIUM = process.env.OPENSEED_CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.OPENSEED_ARTIFACT_DIR || path.join(ROOT, "build", "artifacts");
const BUYER_DB = path.join(process.env.OPENSEED_BUYER_DATA_DIR ?? "", "buyer.db");
const SELLER = env.sellers[0];
const SELLER_DB = path.join(process.env.OPENSEED_SELLER1_DATA_DIR ?? "", "seller.db");
const lc = (s) => String(s).toLowerCase();

// Rows of a query on a daemon's live database (WAL: a reader never blocks the writer).
function sql(db, q) {
    const out = execFileSync("sqlite3", ["-readonly", "-json", "-bail", db, q],
                             { encoding: "utf8", timeout: 20_000 });
    return out.trim() === "" ? [] : JSON.parse(out);
}
const one = (db, q) => Object.values(sql(db, q)[0] ?? { v: null })[0];

// Waits until fn() (run in the test, may read the page) returns a truthy value; fails with what
// the last try saw.
async function eventually(fn, what, ms = 15_000) {
    let last;
    const ok = await until(async () => {
        last = await fn();
        return last === true || (last && last.ok);
    }, ms, 200);
    assert.ok(ok, `${what}: ${JSON.stringify(last)}`);
}

let browser;
before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh (apt chromium)`);
    assert.ok(fs.existsSync(BUYER_DB), `no ${BUYER_DB}`);
    assert.ok(fs.existsSync(SELLER_DB), `no ${SELLER_DB}`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
});
after(async () => {
    await browser?.close();
});

// A page that records everything that went wrong on it, and every origin it talked to.
async function watchedPage(origin) {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 },
                                           acceptDownloads: true });
    const page = await ctx.newPage();
    const problems = [], foreign = [], files = new Map();
    page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning")
            problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on("request", (r) => {
        const u = new URL(r.url());
        if (u.protocol !== "data:" && u.protocol !== "blob:" && u.origin !== origin)
            foreign.push(r.url());
    });
    page.on("response", (r) => {
        if (r.status() >= 400)
            problems.push(`HTTP ${r.status()}: ${r.url()}`);
        const u = new URL(r.url());
        if (u.pathname.startsWith("/dashboard"))
            files.set(u.pathname, r.headers()["content-security-policy"] ?? "");
    });
    return { ctx, page, problems, foreign, files };
}

function assertClean(w, what) {
    assert.deepEqual(w.problems, [], `${what}: no console errors, page errors or failed loads`);
    assert.deepEqual(w.foreign, [], `${what}: nothing loaded from another origin`);
    assert.ok(w.files.size >= 4, `${what}: the page, its script, dash.js and dash.css were served`);
    for (const [p, csp] of w.files)
        assert.match(csp, /default-src 'none'; script-src 'self'/, `${p} carries the CSP`);
}

// [{id, micro}] of a table's rows for one money column.
const moneyRows = (page, sel, k) => page.$$eval(`${sel} tbody tr[data-id]`, (trs, key) =>
    trs.map((tr) => ({ id: tr.dataset.id,
                       micro: tr.querySelector(`td[data-k="${key}"]`)?.dataset.micro })), k);
const attr = (page, sel, a) => page.$eval(sel, (e, n) => e.getAttribute(n), a);
const barsSum = (page) => page.$$eval("#chart rect.b", (rs) =>
    rs.reduce((acc, r) => acc + BigInt(r.dataset.micro), 0n).toString());

async function traffic() {
    const client = openai();
    for (const s of env.sellers) {
        const r = await client.chat.completions.create({
            model: env.chat, max_tokens: 16,
            messages: [{ role: "user", content: `dashboard ${s.name}` }] }, pinned(s));
        assert.equal(r.choices[0].message.content, `echo: dashboard ${s.name}`);
    }
    const m = await anthropic().messages.create({
        model: env.chat, max_tokens: 16, messages: [{ role: "user", content: "dashboard" }] },
        pinned(SELLER));
    assert.equal(m.content[0].text, "echo: dashboard");
    // enough rows for more than one page of 25
    const have = Number(one(BUYER_DB, "SELECT COUNT(*) FROM requests"));
    for (let i = have; i < 60; i++)
        await client.embeddings.create({ model: env.embed, input: [`row ${i}`] },
                                       pinned(env.sellers[i % 2]));
    assert.ok(await buyerIdle(), "the buyer's requests drained");
}

test("buyer dashboard: the ledger's numbers, paging, filters, CSV export, live requests", T,
     async () => {
    await traffic();
    const w = await watchedPage(env.buyer);
    const { page } = w;
    const res = await page.goto(`${env.buyer}/dashboard/`);
    assert.equal(res.status(), 200);
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    await page.evaluate(() => { window.__sameDocument = true; });

    // the cards
    const spent = one(BUYER_DB, "SELECT COALESCE(SUM(spent), 0) FROM spend_sellers");
    const deposited = one(BUYER_DB, "SELECT COALESCE(SUM(amount), 0) FROM deposits");
    assert.ok(BigInt(spent) > 0n, "something was spent");
    await eventually(async () => ({ ok: await attr(page, "#total-spent", "data-micro") === String(spent),
                                    shown: await attr(page, "#total-spent", "data-micro"), spent }),
                     "total spent = buyer.db spend_sellers");
    assert.equal(await attr(page, "#total-deposited", "data-micro"), String(deposited));
    assert.equal((await page.textContent("#total-spent")).trim(),
                 `${BigInt(spent) / 1000000n}.${String(BigInt(spent) % 1000000n).padStart(6, "0")}`,
                 "shown as USDC with six decimals");

    // spend by seller and by model
    const bySeller = sql(BUYER_DB, "SELECT lower(hex(seller)) AS s, spent FROM spend_sellers");
    const shownSellers = await moneyRows(page, "#by-seller", "spent");
    assert.equal(shownSellers.length, bySeller.length);
    for (const r of bySeller) {
        const row = shownSellers.find((x) => lc(x.id) === `0x${r.s}`);
        assert.ok(row, `seller 0x${r.s} listed`);
        assert.equal(row.micro, String(r.spent), `spend with 0x${r.s}`);
    }
    const byModel = sql(BUYER_DB, "SELECT service, SUM(cost) AS c FROM requests" +
                                  " WHERE outcome != 'in_flight' GROUP BY service");
    const shownModels = await moneyRows(page, "#by-model", "spent");
    assert.equal(shownModels.length, byModel.length);
    for (const r of byModel)
        assert.equal(shownModels.find((x) => x.id === r.service)?.micro, String(r.c),
                     `spend on ${r.service}`);

    // channels: deposit, spent, remaining
    const chans = sql(BUYER_DB, "SELECT lower(hex(id)) AS id, deposit, consumed, state FROM channels");
    const shownDep = await moneyRows(page, "#channels", "deposit");
    const shownCons = await moneyRows(page, "#channels", "consumed");
    const shownRem = await moneyRows(page, "#channels", "remaining");
    for (const c of chans) {
        const id = `0x${c.id}`;
        assert.equal(shownDep.find((x) => lc(x.id) === id)?.micro, String(c.deposit), `${id} deposit`);
        assert.equal(shownCons.find((x) => lc(x.id) === id)?.micro, String(c.consumed), `${id} spent`);
        if (c.state === "open")
            assert.equal(shownRem.find((x) => lc(x.id) === id)?.micro,
                         String(BigInt(c.deposit) - BigInt(c.consumed)), `${id} remaining`);
    }

    // peers: both sellers, with their prices per million tokens (devnet.sh: 0.10 and 0.20 input)
    const peers = await page.$$eval("#peers tbody tr[data-id]", (trs) => trs.map((tr) => ({
        id: tr.dataset.id, input: tr.querySelector('td[data-k="input_price"]').textContent,
        success: tr.querySelector('td[data-k="success"]').textContent })));
    for (const [s, p] of [[env.sellers[0], "0.100000 / M"], [env.sellers[1], "0.200000 / M"]]) {
        const row = peers.find((x) => lc(x.id) === lc(s.address));
        assert.ok(row, `${s.name} among the peers`);
        assert.ok(row.input.includes(p), `${s.name} input price ${row.input} shows ${p}`);
        assert.match(row.success, /%$/, "a success rate");
    }

    // spend over time, last hour: the bars add up to the ledger's costs in that window
    const from = Number(await attr(page, "#chart", "data-from"));
    const inWindow = one(BUYER_DB, "SELECT COALESCE(SUM(cost), 0) FROM requests WHERE outcome !=" +
                                   ` 'in_flight' AND COALESCE(finished_at, at) >= ${from}`);
    await eventually(async () => ({ ok: await barsSum(page) === String(inWindow),
                                    bars: await barsSum(page), inWindow }),
                     "chart bars = ledger costs in the window");
    assert.equal(await page.$$eval("#chart rect.b", (r) => r.length), 60, "60 one-minute bars");

    // the ledger: total, paging through every row once, newest first
    const total = Number(one(BUYER_DB, "SELECT COUNT(*) FROM requests"));
    await page.selectOption("#f-limit", "25");
    await eventually(async () => ({ ok: Number(await attr(page, "#ledger", "data-total")) === total,
                                    total }), "ledger total = buyer.db rows");
    const ids = sql(BUYER_DB, "SELECT id FROM requests ORDER BY id DESC").map((r) => String(r.id));
    const seen = [];
    for (let p = 0; p * 25 < total; p++) {
        const want = ids.slice(p * 25, p * 25 + 25);
        await eventually(async () => {
            const got = await page.$$eval("#ledger tbody tr[data-id]", (t) => t.map((x) => x.dataset.id));
            return { ok: got.join() === want.join(), got, want };
        }, `ledger page ${p + 1}`);
        seen.push(...want);
        if ((p + 1) * 25 < total)
            await page.click("#next");
    }
    assert.equal(new Set(seen).size, total, "every row once");
    assert.ok(await page.isDisabled("#next"), "no page after the last");

    // filters: one seller, then one model
    const s2 = env.sellers[1];
    const n2 = Number(one(BUYER_DB, `SELECT COUNT(*) FROM requests WHERE lower(hex(seller)) =` +
                                    ` '${lc(s2.address).slice(2)}'`));
    await page.selectOption("#f-seller", s2.address);
    await eventually(async () => ({ ok: Number(await attr(page, "#ledger", "data-total")) === n2, n2 }),
                     "seller filter total");
    const sellersShown = await page.$$eval('#ledger tbody td[data-k="seller"] span',
                                           (t) => t.map((x) => x.title));
    assert.ok(sellersShown.length > 0 && sellersShown.every((a) => lc(a) === lc(s2.address)),
              "only that seller's rows");
    await page.selectOption("#f-seller", "");
    const nEmbed = Number(one(BUYER_DB, `SELECT COUNT(*) FROM requests WHERE service = '${env.embed}'`));
    await page.selectOption("#f-service", env.embed);
    await eventually(async () => ({ ok: Number(await attr(page, "#ledger", "data-total")) === nEmbed,
                                    nEmbed }), "model filter total");
    await page.selectOption("#f-service", "");

    // CSV export: every row, exact costs
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
    const file = path.join(ARTIFACTS, "ledger.csv");
    await download.saveAs(file);
    const lines = fs.readFileSync(file, "utf8").trim().split("\r\n");
    const header = lines[0].split(",");
    const col = (n) => header.indexOf(n);
    const rowsDb = sql(BUYER_DB, "SELECT id, cost, service, outcome FROM requests ORDER BY id DESC");
    assert.equal(lines.length - 1, rowsDb.length, "one CSV line per ledger row");
    lines.slice(1).forEach((l, i) => {
        const f = l.split(",");
        assert.equal(f[col("id")], String(rowsDb[i].id));
        assert.equal(f[col("cost_micro_usdc")], String(rowsDb[i].cost), `row ${rowsDb[i].id} cost`);
        assert.equal(f[col("service")], rowsDb[i].service);
        assert.equal(f[col("outcome")], rowsDb[i].outcome);
    });

    // live: a request made now shows up without a reload
    const before_ = Number(one(BUYER_DB, "SELECT MAX(id) FROM requests"));
    const r = await openai().chat.completions.create({
        model: env.chat, max_tokens: 16, messages: [{ role: "user", content: "live!" }] });
    assert.equal(r.choices[0].message.content, "echo: live!");
    const id = Number(one(BUYER_DB, "SELECT MAX(id) FROM requests"));
    assert.ok(id > before_, "the request was booked");
    await page.waitForSelector(`#live tr[data-id="${id}"]`, { timeout: 5_000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload happened");
    const liveCost = await attr(page, `#live tr[data-id="${id}"] td[data-k="cost"]`, "data-micro");
    await eventually(async () => ({
        ok: await attr(page, `#live tr[data-id="${id}"] td[data-k="cost"]`, "data-micro") ===
            String(one(BUYER_DB, `SELECT cost FROM requests WHERE id = ${id}`)), liveCost }),
        "the live row's cost = buyer.db");

    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-buyer.png"), fullPage: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-buyer-top.png") }); // the README's
    assertClean(w, "buyer dashboard");
    await w.ctx.close();
});

test("seller dashboard: sign-in, revenue, channels, settlement with tx hash, models, heartbeat",
     T, async () => {
    const token = fs.readFileSync(SELLER.tokenFile, "utf8").trim();

    // a wrong token is refused on the form (its 401 is expected here, so this page is not watched)
    {
        const ctx = await browser.newContext();
        const page = await ctx.newPage();
        await page.goto(`${SELLER.admin}/dashboard/`);
        await page.fill("#login input", "not-the-token");
        await page.click("#login button");
        await page.waitForFunction(() => /not accepted/.test(document.querySelector("#login .err").textContent));
        assert.equal(await page.isVisible("main"), false, "nothing shown without the token");
        await ctx.close();
    }

    const w = await watchedPage(SELLER.admin);
    const { page } = w;
    const apiCalls = [];
    page.on("request", (r) => { if (new URL(r.url()).pathname.startsWith("/admin/")) apiCalls.push(r.url()); });
    await page.goto(`${SELLER.admin}/dashboard/`);
    await page.waitForSelector("#login", { state: "visible" });
    assert.deepEqual(apiCalls, [], "no API call before the token is given");
    await page.fill("#login input", token);
    await page.click("#login button");
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 20_000 });
    await page.evaluate(() => { window.__sameDocument = true; });

    // settle now: a claim appears with the transaction hash seller.db holds
    const settledBefore = Number(one(SELLER_DB, "SELECT COUNT(*) FROM settlements"));
    const claimable = Number(one(SELLER_DB, "SELECT COUNT(*) FROM channels WHERE consumed > claimed"));
    assert.ok(claimable > 0, "the traffic left something to claim");
    await page.click("#settle");
    await eventually(() => ({ ok: Number(one(SELLER_DB, "SELECT COUNT(*) FROM settlements")) > settledBefore }),
                     "a settlement was recorded");
    const tx = one(SELLER_DB, "SELECT '0x' || lower(hex(tx_hash)) FROM settlements ORDER BY id DESC LIMIT 1");
    assert.match(tx, /^0x[0-9a-f]{64}$/);
    await eventually(async () => {
        const shown = (await page.$$eval('#settlements td[data-k="tx_hash"]',
                                         (t) => t.map((x) => x.textContent))).map(lc);
        return { ok: shown.includes(tx), shown, tx };
    }, "the settlement's tx hash is shown");

    // the cards and channels = seller.db
    const chans = sql(SELLER_DB, "SELECT lower(hex(id)) AS id, consumed, claimed FROM channels");
    const consumed = chans.reduce((a, c) => a + BigInt(c.consumed), 0n);
    await eventually(async () => {
        const claimed = sql(SELLER_DB, "SELECT claimed FROM channels").reduce((a, c) => a + BigInt(c.claimed), 0n);
        const shown = { consumed: await attr(page, "#consumed", "data-micro"),
                        claimed: await attr(page, "#claimed", "data-micro") };
        return { ok: shown.consumed === String(consumed) && shown.claimed === String(claimed),
                 shown, consumed: String(consumed), claimed: String(claimed) };
    }, "earned and settled = seller.db");
    await eventually(async () => {
        const db = sql(SELLER_DB, "SELECT lower(hex(id)) AS id, consumed, claimed FROM channels");
        const cons = await moneyRows(page, "#channels", "consumed");
        const clm = await moneyRows(page, "#channels", "claimed");
        const unc = await moneyRows(page, "#channels", "unclaimed");
        const bad = db.filter((c) => {
            const id = `0x${c.id}`;
            const u = BigInt(c.consumed) > BigInt(c.claimed) ? BigInt(c.consumed) - BigInt(c.claimed) : 0n;
            return cons.find((x) => lc(x.id) === id)?.micro !== String(c.consumed) ||
                   clm.find((x) => lc(x.id) === id)?.micro !== String(c.claimed) ||
                   unc.find((x) => lc(x.id) === id)?.micro !== String(u);
        });
        return { ok: bad.length === 0 && cons.length === db.length, bad };
    }, "per channel: earned, settled, unclaimed = seller.db");

    // requests per model = seller.db
    const models = sql(SELLER_DB, "SELECT service, COUNT(*) AS n FROM requests WHERE status = 'finished'" +
                                  " GROUP BY service");
    await eventually(async () => {
        const shown = await page.$$eval("#models tbody tr[data-id]", (trs) => trs.map((tr) => ({
            id: tr.dataset.id, n: tr.querySelector('td[data-k="requests"]').textContent.replace(/,/g, "") })));
        return { ok: models.every((m) => shown.find((x) => x.id === m.service)?.n === String(m.n)),
                 shown, models };
    }, "requests per model = seller.db");

    // heartbeat: listed with the devnet's registry
    await eventually(async () => ({
        ok: /listed/.test(await page.textContent("#registries tbody")) &&
            !/not listed/.test(await page.textContent("#registries tbody")) }),
        "the registry lists this seller");
    assert.match(await page.textContent("#heartbeat"), /1 of 1/);

    // revenue over time, last hour
    await eventually(async () => {
        const from = Number(await attr(page, "#chart", "data-from"));
        const want = String(one(SELLER_DB, "SELECT COALESCE(SUM(cost), 0) FROM requests WHERE status =" +
                                           ` 'finished' AND finished_ms >= ${from * 1000}`));
        const bars = await barsSum(page);
        return { ok: bars === want, bars, want };
    }, "chart bars = seller.db revenue in the window");

    // live: a request made now shows up without a reload
    const before_ = Number(one(SELLER_DB, "SELECT COALESCE(MAX(id), 0) FROM requests"));
    const r = await openai().chat.completions.create({
        model: env.chat, max_tokens: 16, messages: [{ role: "user", content: "seller live" }] },
        pinned(SELLER));
    assert.equal(r.choices[0].message.content, "echo: seller live");
    const id = await until(() => {
        const v = Number(one(SELLER_DB, "SELECT MAX(id) FROM requests"));
        return v > before_ ? v : 0;
    });
    assert.ok(id, "the seller booked the request");
    await page.waitForSelector(`#live tr[data-id="${id}"]`, { timeout: 5_000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload happened");

    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-seller.png"), fullPage: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-seller-top.png") }); // the README's
    assertClean(w, "seller dashboard");
    await w.ctx.close();
});
