// SPDX-License-Identifier: Apache-2.0
// Shared helpers for the end-to-end tests: the devnet's addresses (from the environment that
// tests/e2e/run.sh loads from devnet.env), the official OpenAI and Anthropic clients pointed at the
// buyer gateway exactly as a user points them, and small readers for the buyer's management API,
// the sellers' admin API and the escrow contract. The npm packages live in tools/node_modules (the
// pinned tool set scripts/setup.sh installs), not beside these files, so they are loaded from there
// through their own package.json entry points rather than by bare specifiers.

import assert from "node:assert/strict";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOOLS = path.join(ROOT, "tools");
const toolsRequire = createRequire(path.join(TOOLS, "package.json"));

// Imports the ESM build of a package installed in tools/node_modules, as `import x from "name"`
// would if the package sat beside this file.
export async function importTool(name) {
    const dir = path.join(TOOLS, "node_modules", ...name.split("/"));
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    let entry = pkg.exports?.["."] ?? pkg.exports ?? pkg.module ?? pkg.main;
    // conditional exports: prefer "import", then "default", descending through nested objects
    while (entry !== null && typeof entry === "object")
        entry = entry.import ?? entry.default ?? entry.node;
    if (typeof entry !== "string")
        entry = toolsRequire.resolve(name); // CommonJS only: Node wraps it for import()
    else
        entry = path.join(dir, entry);
    return import(pathToFileURL(entry).href);
}

export const OpenAI = (await importTool("openai")).default;
export const Anthropic = (await importTool("@anthropic-ai/sdk")).default;
export const { ethers } = await importTool("ethers");

function need(name) {
    const v = process.env[name];
    if (v === undefined || v === "")
        throw new Error(`${name} is not set: run the e2e tests through tests/e2e/run.sh ` +
                        `(it starts scripts/devnet.sh and exports devnet.env)`);
    return v;
}

// "127.0.0.1:8377" or "http://127.0.0.1:8377/" -> "http://127.0.0.1:8377"
function origin(v) {
    const s = /^[a-z]+:\/\//i.test(v) ? v : `http://${v}`;
    return s.replace(/\/+$/, "");
}

export const env = {
    rpc: origin(need("OPENSEED_RPC")),
    chainId: BigInt(need("OPENSEED_CHAIN_ID")),
    escrow: need("OPENSEED_ESCROW"),
    usdc: need("OPENSEED_USDC"),
    registry: origin(need("OPENSEED_REGISTRY")),
    buyer: origin(need("OPENSEED_BUYER")),
    wallet: need("OPENSEED_BUYER_WALLET"),
    chat: need("OPENSEED_CHAT_SERVICE"),
    embed: need("OPENSEED_EMBED_SERVICE"),
    wireDir: process.env.OPENSEED_WIRE_DIR ?? "",
    sellers: [1, 2].map((i) => ({
        name: `seller${i}`,
        url: origin(need(`OPENSEED_SELLER${i}`)),
        // the seller itself, when OPENSEED_SELLERi is a recording proxy in front of it
        direct: origin(process.env[`OPENSEED_SELLER${i}_DIRECT`] ||
                       need(`OPENSEED_SELLER${i}`)),
        admin: origin(need(`OPENSEED_SELLER${i}_ADMIN`)),
        tokenFile: need(`OPENSEED_SELLER${i}_TOKEN`),
        address: ethers.getAddress(need(`OPENSEED_SELLER${i}_ADDRESS`)),
        pid: Number.parseInt(need(`OPENSEED_SELLER${i}_PID`), 10),
    })),
};

// The SDKs' own retries are turned off: a request the gateway failed must fail the test, not be
// quietly sent again by the client.
export function openai(opts = {}) {
    return new OpenAI({ baseURL: `${env.buyer}/v1`, apiKey: "unused", maxRetries: 0,
                        timeout: 60_000, ...opts });
}

export function anthropic(opts = {}) {
    return new Anthropic({ baseURL: env.buyer, apiKey: "unused", maxRetries: 0, timeout: 60_000,
                           ...opts });
}

// Per-request options pinning one seller (the gateway's X-OpenSeed-Peer routing header).
export function pinned(seller) {
    return { headers: { "X-OpenSeed-Peer": seller.address } };
}

export function sellerByAddress(addr) {
    return env.sellers.find((s) => s.address.toLowerCase() === String(addr).toLowerCase());
}

async function json(res, what) {
    const text = await res.text();
    assert.equal(res.status, 200, `${what}: HTTP ${res.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text);
}

export async function buyerGet(p) {
    return json(await fetch(`${env.buyer}${p}`), `GET buyer ${p}`);
}

function bearer(seller) {
    return { Authorization: `Bearer ${fs.readFileSync(seller.tokenFile, "utf8").trim()}` };
}

export async function adminGet(seller, p) {
    return json(await fetch(`${seller.admin}${p}`, { headers: bearer(seller) }),
                `GET ${seller.name} ${p}`);
}

export async function adminPost(seller, p, body) {
    return json(await fetch(`${seller.admin}${p}`, {
        method: "POST",
        headers: { ...bearer(seller), "Content-Type": "application/json" },
        body: JSON.stringify(body),
    }), `POST ${seller.name} ${p}`);
}

export function escrow() {
    const provider = new ethers.JsonRpcProvider(env.rpc, Number(env.chainId),
                                                { staticNetwork: true, pollingInterval: 100 });
    const art = JSON.parse(fs.readFileSync(path.join(ROOT, "contracts", "out",
                                                     "OpenSeedChannels.json"), "utf8"));
    return { provider, contract: new ethers.Contract(env.escrow, art.abi, provider) };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value or ms pass; returns the last value.
export async function until(fn, ms = 10_000, step = 100) {
    const end = Date.now() + ms;
    let v;
    while (!(v = await fn()) && Date.now() < end)
        await sleep(step);
    return v;
}

// Waits until the buyer has no request in flight on any channel (so consumed figures are final).
export async function buyerIdle() {
    return until(async () => {
        const { channels } = await buyerGet("/openseed/v1/channels");
        return channels.every((c) => BigInt(c.in_flight) === 0n) ? channels : null;
    });
}
