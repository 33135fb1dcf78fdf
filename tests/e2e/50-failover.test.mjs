// SPDX-License-Identifier: Apache-2.0
// Failover between real processes: during a loop of requests through the OpenAI and Anthropic
// SDKs (client retries off), the seller that is answering is killed with SIGKILL (its pid from
// devnet.env) while a request is in flight; every request of the loop still succeeds, and every
// one after the kill is answered by the other seller, also once the gateway's cool-down of the
// dead one (still listed by the registry) has passed. Runs last: the devnet keeps one seller.

import assert from "node:assert/strict";
import { test } from "node:test";

import { anthropic, env, openai, sellerByAddress, sleep, until } from "./lib.mjs";

const T = { timeout: 240_000 };
const ROUNDS = 30;
const KILL_AT = 6;
// after the kill, rounds are paced so the run outlasts the gateway's first cool-down of the dead
// seller (5 s), which the registry still lists: it becomes a candidate again
const PACE_MS = 300;

async function alive(s) {
    try {
        const r = await fetch(`${s.direct}/healthz`, { signal: AbortSignal.timeout(2000) });
        return r.ok;
    } catch {
        return false;
    }
}

test("a seller killed with SIGKILL mid-run: every request keeps succeeding through the other", T,
     async () => {
    for (const s of env.sellers)
        assert.ok(await alive(s), `${s.name} is up before the run`);
    const client = openai();
    const claude = anthropic();

    // one request of the loop: answered correctly, and by whom
    async function once(i, kind = i % 3) {
        const text = `failover round ${i}`;
        switch (kind) {
        case 0: {
            const { data, response } = await client.chat.completions.create({
                model: env.chat, max_tokens: 16,
                messages: [{ role: "user", content: text }] }).withResponse();
            assert.equal(data.choices[0].message.content, `echo: ${text}`);
            return response.headers.get("x-openseed-peer");
        }
        case 1: {
            const { data: stream, response } = await client.chat.completions.create({
                model: env.chat, max_tokens: 16, stream: true,
                messages: [{ role: "user", content: text }] }).withResponse();
            let got = "";
            for await (const c of stream)
                got += c.choices[0]?.delta?.content ?? "";
            assert.equal(got, `echo: ${text}`);
            return response.headers.get("x-openseed-peer");
        }
        default: {
            const { data, response } = await claude.messages.create({
                model: env.chat, max_tokens: 16,
                messages: [{ role: "user", content: text }] }).withResponse();
            assert.equal(data.content[0].text, `echo: ${text}`);
            return response.headers.get("x-openseed-peer");
        }
        }
    }

    let victim = null;
    const peers = [];
    for (let i = 0; i < ROUNDS; i++) {
        let pending;
        if (i === KILL_AT) {
            // kill the seller that answered last while this round's request is on its way; the
            // round is a whole (non-streamed) answer, which the gateway can still fail over
            victim = sellerByAddress(peers.at(-1));
            assert.ok(victim, "the loop has been answered by a known seller");
            pending = once(i, 0); // a whole chat completion
            process.kill(victim.pid, "SIGKILL");
        } else {
            if (victim)
                await sleep(PACE_MS);
            pending = once(i);
        }
        const peer = await pending.catch((e) => {
            throw new Error(`round ${i} failed (${victim ? `after killing ${victim.name}` :
                                                           "before the kill"}): ${e}`);
        });
        assert.ok(sellerByAddress(peer), `round ${i} answered by a devnet seller (${peer})`);
        peers.push(peer);
    }

    assert.ok(victim);
    assert.ok(await until(async () => !(await alive(victim)), 5000), `${victim.name} is down`);
    const survivor = env.sellers.find((s) => s !== victim);
    assert.ok(await alive(survivor), `${survivor.name} is still up`);
    for (let i = KILL_AT + 1; i < ROUNDS; i++)
        assert.equal(peers[i].toLowerCase(), survivor.address.toLowerCase(),
                     `round ${i} after the kill was answered by ${survivor.name}`);
    assert.equal(peers.length, ROUNDS);
});
