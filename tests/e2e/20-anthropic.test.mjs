// SPDX-License-Identifier: Apache-2.0
// The official `@anthropic-ai/sdk` npm client against the buyer gateway (baseURL
// http://127.0.0.1:<buyer>, any API key): messages.create, and messages.stream with its event
// helpers, answered by a seller's built-in echo upstream ("echo: " + the last user message, one
// token per text delta) and paid through a channel.

import assert from "node:assert/strict";
import { test } from "node:test";

import { anthropic, Anthropic, env, sellerByAddress } from "./lib.mjs";

const T = { timeout: 120_000 };
const claude = anthropic();

test("messages.create answers the echo as an Anthropic message", T, async () => {
    const { data: m, response } = await claude.messages.create({
        model: env.chat, max_tokens: 256,
        messages: [{ role: "user", content: "Bonjour from the Anthropic SDK" }],
    }).withResponse();
    assert.equal(m.type, "message");
    assert.equal(m.role, "assistant");
    assert.match(m.id, /\S/);
    assert.equal(m.content.length, 1);
    assert.equal(m.content[0].type, "text");
    assert.equal(m.content[0].text, "echo: Bonjour from the Anthropic SDK");
    assert.equal(m.stop_reason, "end_turn");
    assert.equal(m.usage.output_tokens, 6);
    assert.ok(m.usage.input_tokens > 0);
    assert.ok(sellerByAddress(response.headers.get("x-openseed-peer")));
    assert.match(response.headers.get("x-openseed-cost") ?? "", /^[1-9][0-9]*$/);
});

test("messages.create with a system prompt and a multi-turn conversation", T, async () => {
    const m = await claude.messages.create({
        model: env.chat, max_tokens: 256, system: "You are terse.",
        messages: [
            { role: "user", content: "first question" },
            { role: "assistant", content: "first answer" },
            { role: "user", content: [{ type: "text", text: "second" },
                                      { type: "text", text: " question" }] },
        ],
    });
    assert.equal(m.content[0].text, "echo: second question");
});

test("messages.stream: on('text') deltas, the event sequence and finalMessage()", T,
     async () => {
    const stream = claude.messages.stream({
        model: env.chat, max_tokens: 256,
        messages: [{ role: "user", content: "please stream this sentence back" }],
    });
    const texts = [];
    const events = [];
    let connected = false;
    stream.on("connect", () => { connected = true; });
    stream.on("text", (delta, snapshot) => {
        texts.push(delta);
        assert.equal(snapshot, texts.join(""), "the snapshot is the text so far");
    });
    stream.on("streamEvent", (ev) => events.push(ev.type));
    const final = await stream.finalMessage();
    const finalText = await stream.finalText();

    assert.ok(connected);
    assert.ok(texts.length >= 3, `several text deltas (got ${texts.length})`);
    assert.equal(texts.join(""), "echo: please stream this sentence back");
    assert.equal(final.content.length, 1);
    assert.equal(final.content[0].type, "text");
    assert.equal(final.content[0].text, texts.join(""));
    assert.equal(finalText, texts.join(""));
    assert.equal(final.role, "assistant");
    assert.equal(final.stop_reason, "end_turn");
    assert.equal(final.usage.output_tokens, texts.length, "one token per text delta");
    assert.ok(final.usage.input_tokens > 0);

    // Anthropic's real event sequence, in order
    assert.equal(events[0], "message_start");
    assert.equal(events.at(-1), "message_stop");
    assert.equal(events.at(-2), "message_delta");
    const s = events.indexOf("content_block_start");
    const e = events.lastIndexOf("content_block_stop");
    assert.ok(s > 0 && e > s);
    assert.equal(events.slice(s + 1, e).filter((t) => t === "content_block_delta").length,
                 texts.length);
});

test("messages.stream cut by max_tokens ends with stop_reason max_tokens", T, async () => {
    const stream = claude.messages.stream({
        model: env.chat, max_tokens: 3,
        messages: [{ role: "user", content: "one two three four five six" }],
    });
    const texts = [];
    stream.on("text", (t) => texts.push(t));
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, "max_tokens");
    assert.equal(final.usage.output_tokens, 3);
    assert.equal(texts.join(""), "echo: one two");
    assert.equal(final.content[0].text, "echo: one two");
});

test("an unknown model is the SDK's NotFoundError (404) in Anthropic's error shape", T,
     async () => {
    await assert.rejects(
        claude.messages.create({ model: "no-such-service", max_tokens: 16,
                                 messages: [{ role: "user", content: "hi" }] }),
        (e) => e instanceof Anthropic.NotFoundError && e.status === 404 &&
               e.error?.type === "error");
});
