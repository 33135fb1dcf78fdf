// SPDX-License-Identifier: Apache-2.0
// No secret and no request content in any daemon's log, after the whole e2e run (this file runs
// last). The secrets are every one the devnet made: the key files in keys/ (the buyer's wallet,
// the sellers' node keys), each seller's gateway (X25519) key and admin token, and the channel
// signer keys and credential secrets the buyer keeps in buyer.db. Request content: a marker sent
// in a whole chat, a streamed chat and an embedding just before the search, which must appear in
// the answers (so it really went through) and nowhere in the logs. Each secret is looked for as
// hex in any case and as its raw text. anvil's log is left out: it is the chain's, and lists its
// well-known development keys (one of them funds the buyer) by design.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { env, openai, sleep } from "./lib.mjs";

const T = { timeout: 120_000 };
const dir = process.env.OPENSEED_DEVNET_DIR ?? "";

// [name, secret text] for every secret of the devnet; each at least 32 characters.
function secrets() {
    const out = [];
    const keys = path.join(dir, "keys");
    for (const f of fs.readdirSync(keys))
        out.push([`keys/${f}`, fs.readFileSync(path.join(keys, f), "utf8").trim()]);
    for (const s of ["seller1", "seller2"])
        for (const f of ["gateway.key", "admin.token"]) {
            const p = path.join(dir, s, f);
            if (fs.existsSync(p))
                out.push([`${s}/${f}`, fs.readFileSync(p, "utf8").trim()]);
        }
    const rows = execFileSync("sqlite3", [path.join(dir, "buyer", "buyer.db"),
        "SELECT hex(id), hex(signer_key), hex(cred_secret) FROM channels"], { encoding: "utf8" });
    for (const line of rows.trim().split("\n").filter(Boolean)) {
        const [id, key, cred] = line.split("|");
        out.push([`buyer.db signer_key of ${id.slice(0, 8)}`, key]);
        out.push([`buyer.db cred_secret of ${id.slice(0, 8)}`, cred]);
    }
    return out;
}

test("no key, token, channel secret or request content in any daemon's log", T, async () => {
    assert.ok(dir !== "" && fs.existsSync(path.join(dir, "keys")), "OPENSEED_DEVNET_DIR is not the devnet");
    const marker = `zebra${randomUUID().replaceAll("-", "")}`;
    const client = openai();
    const whole = await client.chat.completions.create({
        model: env.chat, messages: [{ role: "user", content: `${marker} whole` }] });
    assert.match(whole.choices[0].message.content, new RegExp(marker));
    const stream = await client.chat.completions.create({
        model: env.chat, stream: true, messages: [{ role: "user", content: `${marker} streamed` }] });
    let text = "";
    for await (const c of stream)
        text += c.choices[0]?.delta?.content ?? "";
    assert.match(text, new RegExp(marker));
    const emb = await client.embeddings.create({ model: env.embed, input: `${marker} embedded` });
    assert.ok(emb.data[0].embedding.length > 0);
    await sleep(500); // lines logged after the answers

    const logs = fs.readdirSync(dir)
        .filter((f) => f.endsWith(".log") && !f.startsWith("anvil") && !f.startsWith("build"))
        .map((f) => [f, fs.readFileSync(path.join(dir, f), "latin1")]);
    const names = logs.map(([f]) => f);
    for (const want of ["buyer.log", "seller1.log", "seller2.log", "registry.log"])
        assert.ok(names.includes(want), `${want} is missing (have ${names.join(", ")})`);
    const all = logs.map(([, t]) => t).join("\n");
    const lower = all.toLowerCase();
    // control: these are the daemons' logs, and they do name public things (channel ids)
    assert.match(all, /component=buyer/);
    assert.match(all, /component=seller/);
    assert.match(all, /channel=0x[0-9a-fA-F]{64}/);

    const found = [];
    const list = secrets();
    assert.ok(list.length >= 7, `only ${list.length} secrets found`);
    for (const [name, value] of list) {
        assert.ok(value.length >= 32, `${name} is too short to search for (${value.length})`);
        const hex = value.replace(/^0x/i, "").toLowerCase();
        if (lower.includes(hex) || all.includes(value))
            found.push(name);
    }
    assert.deepEqual(found, [], `secrets in the logs: ${found.join(", ")}`);
    assert.ok(!lower.includes(marker), "request content in the logs");
});
