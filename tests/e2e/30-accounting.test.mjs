// SPDX-License-Identifier: Apache-2.0
// Money agrees everywhere, to the micro-USDC. After paid traffic to both sellers (pinned with
// X-OpenSeed-Peer, so each has a channel), each seller is settled through its admin API and, per
// channel: what the buyer says was consumed (/openseed/v1/channels, and the sum of its ledger's
// costs) equals the seller's consumed (/admin/v1/channels, and the sum of its requests' costs);
// the escrow's claimed amount (getChannel, read with ethers) equals the sum of the seller's
// confirmed settlements; and claimed lies between consumed and consumed plus the slack (estimate
// minus cost) of the last charged request, the most a seller may take (docs/protocol.md §10.11).
// Runs before the failover test, which kills a seller.

import assert from "node:assert/strict";
import { test } from "node:test";

import { adminGet, adminPost, anthropic, buyerGet, buyerIdle, env, escrow, openai, pinned }
    from "./lib.mjs";

const T = { timeout: 180_000 };
const lc = (s) => String(s).toLowerCase();
const sum = (rows, f) => rows.reduce((a, r) => a + BigInt(f(r)), 0n);

test("paid traffic reaches both sellers (OpenAI and Anthropic SDKs, pinned per request)", T,
     async () => {
    const client = openai();
    const claude = anthropic();
    for (const s of env.sellers) {
        const opt = pinned(s);
        const { data: r, response } = await client.chat.completions.create({
            model: env.chat, max_tokens: 32,
            messages: [{ role: "user", content: `paying ${s.name}` }] }, opt).withResponse();
        assert.equal(r.choices[0].message.content, `echo: paying ${s.name}`);
        assert.equal(lc(response.headers.get("x-openseed-peer")), lc(s.address));

        const stream = await client.chat.completions.create({
            model: env.chat, max_tokens: 32, stream: true, stream_options: { include_usage: true },
            messages: [{ role: "user", content: `streaming to ${s.name}` }] }, opt);
        let text = "";
        for await (const c of stream)
            text += c.choices[0]?.delta?.content ?? "";
        assert.equal(text, `echo: streaming to ${s.name}`);

        const e = await client.embeddings.create({ model: env.embed, input: ["ledger", "check"] },
                                                 opt);
        assert.equal(e.data.length, 2);

        const m = await claude.messages.create({
            model: env.chat, max_tokens: 32,
            messages: [{ role: "user", content: `anthropic to ${s.name}` }] }, opt);
        assert.equal(m.content[0].text, `echo: anthropic to ${s.name}`);
    }
});

test("buyer, sellers and chain agree to the micro-USDC after settlement", T, async () => {
    const channels = await buyerIdle();
    assert.ok(channels, "the buyer's requests in flight drained");
    const ledger = await buyerGet("/openseed/v1/ledger");
    const { contract } = escrow();

    for (const s of env.sellers) {
        const mine = channels.filter((c) => lc(c.seller) === lc(s.address));
        assert.ok(mine.length >= 1, `the buyer has a channel with ${s.name}`);
        const sellerChannels = (await adminGet(s, "/admin/v1/channels")).channels;

        // before settling: consumed agrees, and each side's itemised costs add up to it
        const plan = [];
        for (const bc of mine) {
            const id = lc(bc.channel_id);
            const consumed = BigInt(bc.consumed);
            assert.ok(consumed > 0n, `${s.name} ${id}: something was consumed`);
            const sc = sellerChannels.find((c) => lc(c.channel_id) === id);
            assert.ok(sc, `${s.name} knows channel ${id}`);
            assert.equal(BigInt(sc.consumed), consumed,
                         `${s.name} ${id}: seller consumed = buyer consumed`);
            assert.equal(lc(sc.seller), lc(s.address));
            assert.equal(BigInt(sc.deposit), BigInt(bc.deposit), "deposit agrees");

            const { requests } = await adminGet(s, `/admin/v1/requests?channel=${id}&limit=1000`);
            assert.ok(requests.length < 1000, "the seller's request list is complete");
            assert.equal(sum(requests, (r) => r.cost), consumed,
                         `${s.name} ${id}: the seller's request costs add up to consumed`);
            if (ledger.requests.length < 100) { // the buyer's view holds the latest 100
                const bl = ledger.requests.filter((r) => lc(r.channel_id) === id);
                assert.equal(sum(bl, (r) => r.cost), consumed,
                             `${s.name} ${id}: the buyer's ledger costs add up to consumed`);
            }
            // the last charged request (newest first): its slack bounds what may be claimed
            const last = requests.find((r) => r.status === "finished" && BigInt(r.cost) > 0n);
            assert.ok(last, "a charged request");
            const slack = BigInt(last.estimate) - BigInt(last.cost);
            assert.ok(slack >= 0n, "cost never exceeds the estimate");
            plan.push({ id, consumed, slack, authorized: BigInt(bc.authorized) });
        }

        const report = await adminPost(s, "/admin/v1/settle", {});
        assert.ok(Array.isArray(report.settlements), "the settle report lists its claims");
        for (const row of report.settlements)
            assert.equal(row.status, "confirmed", `${s.name} claim ${JSON.stringify(row)}`);

        const { settlements } = await adminGet(s, "/admin/v1/settlements?limit=1000");
        for (const p of plan) {
            const ch = await contract.getChannel(p.id);
            const claimed = ch.claimed;
            assert.equal(lc(ch.seller), lc(s.address), "the channel pays this seller");
            assert.equal(lc(ch.payer), lc(env.wallet), "the buyer's wallet paid the deposit");
            const paid = sum(settlements.filter((r) => lc(r.channel_id) === p.id &&
                                                       r.status === "confirmed"),
                             (r) => r.amount);
            assert.equal(claimed, paid,
                         `${s.name} ${p.id}: chain claimed = the seller's confirmed settlements`);
            assert.ok(claimed >= p.consumed,
                      `${s.name} ${p.id}: claimed ${claimed} >= consumed ${p.consumed}`);
            assert.ok(claimed <= p.consumed + p.slack,
                      `${s.name} ${p.id}: claimed ${claimed} <= consumed ${p.consumed} + ` +
                      `slack ${p.slack}`);
            assert.ok(claimed <= p.authorized, "never more than the buyer signed");
        }
    }
});
