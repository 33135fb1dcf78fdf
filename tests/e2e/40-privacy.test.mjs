// SPDX-License-Identifier: Apache-2.0
// The buyer's wallet never reaches a seller or a registry. The devnet runs with
// OPENSEED_DEVNET_RECORD=1, which keeps in OPENSEED_WIRE_DIR/<name>.bin every byte the buyer sent
// to each seller and to the registry. After paid traffic to both sellers, the wallet address is
// searched for in every file: as hex in any case, as its 20 raw bytes, and inside every base64 run
// decoded (which covers the PAYMENT-SIGNATURE and OpenSeed-Credential header values). Controls
// show the search works and looks at the right things: the sellers' own addresses are found in
// the decoded PAYMENT-SIGNATURE values (their payTo), the search finds the wallet in synthetic
// bytes, and the chain confirms the searched address is the one that funded the channels.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { anthropic, buyerGet, buyerIdle, env, escrow, openai, pinned, until } from "./lib.mjs";

const T = { timeout: 120_000 };

// Where addr (0x + 40 hex digits) occurs in buf: "hex", "raw", or "base64:<prefix of the run>".
function occurrences(buf, addr) {
    const hex = addr.slice(2).toLowerCase();
    const raw = Buffer.from(hex, "hex");
    const found = [];
    const search = (b, where) => {
        if (b.toString("latin1").toLowerCase().includes(hex))
            found.push(`${where}hex`);
        if (b.includes(raw))
            found.push(`${where}raw`);
    };
    search(buf, "");
    // every base64 (standard or URL-safe) run long enough to hold 20 bytes, decoded from its start
    for (const m of buf.toString("latin1").matchAll(/[A-Za-z0-9+/_-]{27,}={0,2}/g))
        search(Buffer.from(m[0], "base64"), `base64:${m[0].slice(0, 16)}…:`);
    return found;
}

// The decoded values of one header in a recording of HTTP requests.
function headerValues(buf, name) {
    const re = new RegExp(`^${name}:[ \\t]*([^\\r\\n]*)`, "gim");
    return [...buf.toString("latin1").matchAll(re)].map((m) => m[1].trim());
}

function recordings() {
    assert.ok(env.wireDir,
              "OPENSEED_WIRE_DIR is set (the devnet runs with OPENSEED_DEVNET_RECORD=1)");
    const files = fs.readdirSync(env.wireDir).filter((f) => f.endsWith(".bin"));
    assert.ok(files.length > 0, `recordings in ${env.wireDir}`);
    return files.map((f) => ({ name: f, bytes: fs.readFileSync(path.join(env.wireDir, f)) }));
}

// PAYMENT-SIGNATURE values decoded, with the file each came from.
function payments(files) {
    const out = [];
    for (const f of files)
        for (const v of headerValues(f.bytes, "PAYMENT-SIGNATURE")) {
            const text = Buffer.from(v, "base64").toString("utf8");
            let json = null;
            try {
                json = JSON.parse(text);
            } catch {
                // a header cut by the end of a recording still being written: ignored
            }
            if (json)
                out.push({ file: f.name, text, json });
        }
    return out;
}

test("paid traffic to both sellers, recorded on the wire", T, async () => {
    const client = openai();
    const claude = anthropic();
    for (const s of env.sellers) {
        const opt = pinned(s);
        const r = await client.chat.completions.create({
            model: env.chat, max_tokens: 16,
            messages: [{ role: "user", content: "who pays?" }] }, opt);
        assert.equal(r.choices[0].message.content, "echo: who pays?");
        const m = await claude.messages.create({
            model: env.chat, max_tokens: 16,
            messages: [{ role: "user", content: "nobody knows" }] }, opt);
        assert.equal(m.content[0].text, "echo: nobody knows");
        await client.embeddings.create({ model: env.embed, input: "private" }, opt);
    }
    assert.ok(await buyerIdle());
    // the recorder writes as bytes pass; give it a moment to see every seller's payments
    const seen = await until(() => {
        const p = payments(recordings());
        return env.sellers.every((s) => p.some((x) => x.json?.accepted?.payTo?.toLowerCase() ===
                                                       s.address.toLowerCase()));
    });
    assert.ok(seen, "PAYMENT-SIGNATURE headers to both sellers were recorded");
});

test("control: the search finds an address as hex, raw bytes and inside base64", () => {
    const w = env.wallet;
    const raw = Buffer.from(w.slice(2), "hex");
    assert.deepEqual(occurrences(Buffer.from(`a ${w.toUpperCase()} b`), w), ["hex"]);
    assert.deepEqual(occurrences(Buffer.concat([Buffer.from([0, 1]), raw, Buffer.from([2])]), w),
                     ["raw"]);
    const b64 = Buffer.from(JSON.stringify({ payer: w })).toString("base64");
    assert.ok(occurrences(Buffer.from(`X-H: ${b64}\r\n`), w).some((x) => x.endsWith(":hex")));
    const b64raw = Buffer.concat([Buffer.alloc(7, 9), raw]).toString("base64");
    assert.ok(occurrences(Buffer.from(`X-H: ${b64raw}\r\n`), w).some((x) => x.endsWith(":raw")));
    assert.deepEqual(occurrences(Buffer.from("nothing here"), w), []);
});

test("control: each seller's own address is in the decoded payment headers it was sent", () => {
    const files = recordings();
    const p = payments(files);
    assert.ok(p.length > 0, "decoded PAYMENT-SIGNATURE headers");
    for (const s of env.sellers) {
        const to = p.filter((x) => occurrences(Buffer.from(x.text), s.address).length > 0);
        assert.ok(to.length > 0, `${s.name}'s address ${s.address} is in decoded payment headers`);
        for (const x of to)
            assert.equal(x.json.accepted.payTo.toLowerCase(), s.address.toLowerCase());
        // and the whole-file search finds it too (through the base64 decoding only)
        const inFiles = files.flatMap((f) => occurrences(f.bytes, s.address));
        assert.ok(inFiles.some((o) => o.startsWith("base64:")),
                  `the file search finds ${s.name} in base64: ${inFiles}`);
    }
});

test("control: the address searched for is the wallet that funded the buyer's channels", T,
     async () => {
    const { channels } = await buyerGet("/openseed/v1/channels");
    assert.ok(channels.length >= 2);
    const { contract } = escrow();
    for (const c of channels) {
        const ch = await contract.getChannel(c.channel_id);
        assert.equal(ch.payer.toLowerCase(), env.wallet.toLowerCase(),
                     `channel ${c.channel_id} was funded by OPENSEED_BUYER_WALLET`);
        assert.notEqual(ch.signer.toLowerCase(), env.wallet.toLowerCase(),
                        "vouchers are signed by a channel signer, not the wallet");
    }
});

test("the buyer wallet's address appears in nothing sent to a seller or the registry", () => {
    const files = recordings();
    let bytes = 0;
    for (const f of files) {
        bytes += f.bytes.length;
        assert.deepEqual(occurrences(f.bytes, env.wallet), [],
                         `${env.wallet} found in ${f.name}`);
        for (const h of ["PAYMENT-SIGNATURE", "OpenSeed-Credential"])
            for (const v of headerValues(f.bytes, h))
                assert.deepEqual(occurrences(Buffer.from(v, "base64"), env.wallet), [],
                                 `${env.wallet} in a decoded ${h} sent to ${f.name}`);
    }
    assert.ok(bytes > 0, "the recordings hold bytes");
});
