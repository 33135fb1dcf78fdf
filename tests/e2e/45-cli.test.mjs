// SPDX-License-Identifier: Apache-2.0
// The operator CLI (`openseed`, from the devnet's build folder) against the running devnet, with
// --json so the answers can be checked: the registry's status and its verified peer list, the
// buyer's channels, ledger and spend, a channel top-up (the chain's deposit grows by exactly the
// amount), a seller's status and an on-demand settlement (whose claim
// the chain then shows), and a wrong admin token refused with exit 1 and one line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { ROOT, env, escrow, openai, pinned } from "./lib.mjs";

const BIN = path.join(process.env.OPENSEED_BUILD_DIR || path.join(ROOT, "build"), "openseed");

function cli(...args) {
    const out = execFileSync(BIN, [...args, "--json"], { encoding: "utf8", timeout: 60_000 });
    return JSON.parse(out);
}

test("the CLI binary exists", () => {
    assert.ok(fs.existsSync(BIN), `${BIN} is missing (build the tree first)`);
});

test("registry status and verified peers", () => {
    const st = cli("registry", "status", "--registry", env.registry);
    assert.equal(st.status, "ok");
    assert.equal(st.active, 2);
    const peers = cli("peers", "--registry", env.registry, "--service", env.chat).peers;
    const nodes = peers.map((p) => p.node.toLowerCase()).sort();
    assert.deepEqual(nodes, env.sellers.map((s) => s.address.toLowerCase()).sort());
    for (const p of peers)
        assert.ok(p.offerings.some((o) => o.services.includes(env.chat)));
});

test("buyer channels, ledger and spend after a paid request", async () => {
    const seller = env.sellers[0];
    const r = await openai().chat.completions.create(
        { model: env.chat, messages: [{ role: "user", content: "cli check" }] }, pinned(seller));
    assert.equal(r.choices[0].message.content, "echo: cli check");
    const ch = cli("channels", "list", "--buyer", env.buyer).channels
        .find((c) => c.seller.toLowerCase() === seller.address.toLowerCase());
    assert.ok(ch, "a channel to the seller");
    assert.equal(ch.state, "open");
    assert.ok(BigInt(ch.consumed) > 0n);
    const ledger = cli("ledger", "--buyer", env.buyer);
    assert.ok(ledger.requests.length > 0);
    // --seller keeps that seller's requests and vouchers; --since a future day keeps nothing
    const mine = cli("ledger", "--buyer", env.buyer, "--seller", seller.address);
    assert.ok(mine.requests.length > 0);
    assert.ok(mine.requests.every((q) => q.seller.toLowerCase() === seller.address.toLowerCase()));
    const theirs = new Set(cli("channels", "list", "--buyer", env.buyer).channels
        .filter((c) => c.seller.toLowerCase() === seller.address.toLowerCase())
        .map((c) => c.channel_id));
    assert.ok(mine.vouchers.length > 0);
    assert.ok(mine.vouchers.every((v) => theirs.has(v.channel_id)));
    assert.ok(mine.requests.length <= ledger.requests.length);
    const future = cli("ledger", "--buyer", env.buyer, "--since", "2099-01-01");
    assert.equal(future.requests.length, 0);
    assert.equal(future.vouchers.length, 0);
    const all = cli("ledger", "--buyer", env.buyer, "--since", "0");
    assert.equal(all.requests.length, ledger.requests.length);
    const spend = cli("spend", "--buyer", env.buyer);
    assert.ok(BigInt(spend.total.spent) > 0n);
});

test("channels topup and open: the chain deposit grows by 1 USDC", async () => {
    const seller = env.sellers[0];
    const ch = cli("channels", "list", "--buyer", env.buyer).channels
        .find((c) => c.seller.toLowerCase() === seller.address.toLowerCase() && c.state === "open");
    assert.ok(ch, "an open channel to the seller");
    const { contract } = escrow();
    const before = (await contract.getChannel(ch.channel_id)).deposit;
    // stderr is a pipe here: no progress line may appear on it
    const r = spawnSync(BIN, ["channels", "topup", ch.channel_id, "--amount", "1", "--buyer",
                              env.buyer, "--json"], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    const rep = JSON.parse(r.stdout);
    assert.equal(rep.channel_id, ch.channel_id);
    const after = (await contract.getChannel(ch.channel_id)).deposit;
    assert.equal(after - before, 1_000_000n);
    assert.equal(BigInt(rep.deposit), after);
    // on a terminal (util-linux `script` gives the command a pty) the wait shows progress
    const tty = spawnSync("script", ["-qec", [BIN, "channels", "topup", ch.channel_id, "--amount",
                                              "1", "--buyer", env.buyer].join(" "), "/dev/null"],
                          { encoding: "utf8", timeout: 60_000 });
    assert.equal(tty.status, 0, tty.stdout);
    assert.ok(tty.stdout.includes("waiting for the transaction"), tty.stdout);
    assert.equal((await contract.getChannel(ch.channel_id)).deposit - after, 1_000_000n);
    // one is open already: exit 1, one line
    const o = spawnSync(BIN, ["channels", "open", "--seller", seller.address, "--buyer", env.buyer],
                        { encoding: "utf8", timeout: 60_000 });
    assert.equal(o.status, 1);
    assert.equal(o.stderr.trim().split("\n").length, 1);
    const spend = cli("spend", "--buyer", env.buyer);
    assert.ok(spend.per_service.some((s) => s.service === env.chat && s.requests > 0));
    assert.ok(spend.per_day.length >= 1);
});

test("seller status and settle", async () => {
    const seller = env.sellers[0];
    const st = cli("seller", "status", "--admin", seller.admin, "--token-file", seller.tokenFile);
    const chans = st.channels.channels;
    assert.ok(chans.length > 0);
    const c = chans[0];
    const rep = cli("seller", "settle", "--admin", seller.admin, "--token-file", seller.tokenFile,
                    "--channel", c.channel_id);
    for (const s of rep.settlements)
        assert.notEqual(s.status, "failed");
    const { contract } = escrow();
    const onchain = await contract.getChannel(c.channel_id);
    assert.ok(onchain.claimed >= BigInt(c.consumed), "the chain shows the claim");
});

test("a wrong admin token: exit 1 and one line", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "openseed-cli-"));
    const bad = path.join(dir, "token");
    fs.writeFileSync(bad, "not-the-token\n", { mode: 0o600 });
    const r = spawnSync(BIN, ["seller", "status", "--admin", env.sellers[0].admin,
                              "--token-file", bad], { encoding: "utf8" });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trim().split("\n").length, 1);
});
