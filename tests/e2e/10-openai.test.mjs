// SPDX-License-Identifier: Apache-2.0
// The official `openai` npm client against the buyer gateway, used as any user would use it
// (baseURL http://127.0.0.1:<buyer>/v1, any API key): whole and streamed chat completions, a tool
// call round trip, embeddings and the model list, each answered by a seller on the devnet's
// built-in echo upstream and paid through a channel. The echo model answers "echo: " + the last
// user message, one token per streamed delta (src/seller/echo.h), so every answer is known exactly.

import assert from "node:assert/strict";
import { test } from "node:test";

import { env, openai, OpenAI, sellerByAddress } from "./lib.mjs";

const T = { timeout: 120_000 };
const client = openai();

// The gateway's response headers on a whole answer: who answered and what it cost.
function paidBy(response) {
    const peer = response.headers.get("x-openseed-peer");
    assert.ok(sellerByAddress(peer), `X-OpenSeed-Peer ${peer} is one of the devnet's sellers`);
    const cost = response.headers.get("x-openseed-cost");
    assert.match(cost ?? "", /^[1-9][0-9]*$/, "X-OpenSeed-Cost is a positive micro-USDC amount");
    return { peer, cost: BigInt(cost) };
}

test("chat.completions.create answers the echo, with usage and the gateway's cost headers", T,
     async () => {
    const { data: r, response } = await client.chat.completions.create({
        model: env.chat,
        messages: [{ role: "user", content: "Hello from the OpenAI SDK" }],
        max_tokens: 64,
    }).withResponse();
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, "assistant");
    assert.equal(r.choices[0].message.content, "echo: Hello from the OpenAI SDK");
    assert.equal(r.choices[0].finish_reason, "stop");
    // the answer's words are its tokens: "echo:", " Hello", " from", " the", " OpenAI", " SDK"
    assert.equal(r.usage.completion_tokens, 6);
    assert.ok(r.usage.prompt_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    paidBy(response);
    assert.equal(response.headers.get("x-openseed-output-tokens"), "6");
    assert.equal(response.headers.get("x-openseed-input-tokens"), String(r.usage.prompt_tokens));
});

test("chat.completions.create with stream and stream_options.include_usage", T, async () => {
    const messages = [{ role: "user", content: "stream these five words" }];
    const whole = await client.chat.completions.create({ model: env.chat, messages,
                                                         max_tokens: 64 });
    const stream = await client.chat.completions.create({
        model: env.chat, messages, max_tokens: 64, stream: true,
        stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream)
        chunks.push(chunk);
    assert.ok(chunks.length >= 3, `several chunks (got ${chunks.length})`);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, [], "the last chunk has no choices");
    assert.ok(last.usage, "the last chunk carries the usage");
    for (const c of chunks.slice(0, -1)) {
        assert.equal(c.object, "chat.completion.chunk");
        assert.equal(c.choices.length, 1, "every other chunk has one choice");
        assert.ok(c.usage == null, "only the last chunk carries usage");
    }
    const deltas = chunks.slice(0, -1).map((c) => c.choices[0].delta.content ?? "")
                         .filter((s) => s !== "");
    assert.equal(deltas.join(""), "echo: stream these five words");
    assert.equal(deltas.join(""), whole.choices[0].message.content);
    assert.equal(chunks.at(-2).choices[0].finish_reason, "stop");
    // one token per content delta; the stream's usage is the whole answer's
    assert.equal(last.usage.completion_tokens, deltas.length);
    assert.deepEqual(
        { p: last.usage.prompt_tokens, c: last.usage.completion_tokens,
          t: last.usage.total_tokens },
        { p: whole.usage.prompt_tokens, c: whole.usage.completion_tokens,
          t: whole.usage.total_tokens });
});

test("a stream without include_usage gets no usage chunk", T, async () => {
    const stream = await client.chat.completions.create({
        model: env.chat, stream: true, max_tokens: 64,
        messages: [{ role: "user", content: "no usage please" }],
    });
    let text = "", n = 0;
    for await (const chunk of stream) {
        n++;
        assert.equal(chunk.choices.length, 1, "no usage-only chunk");
        assert.ok(chunk.usage == null);
        text += chunk.choices[0].delta.content ?? "";
    }
    assert.ok(n >= 3);
    assert.equal(text, "echo: no usage please");
});

const weatherTool = {
    type: "function",
    function: {
        name: "get_weather",
        description: "Current weather for a place",
        parameters: {
            type: "object",
            properties: { input: { type: "string", description: "the place" } },
            required: ["input"],
        },
    },
};

test("tool call round trip: tools offered, a tool call, the tool's result, a final answer", T,
     async () => {
    const question = "What is the weather in Paris?";
    const messages = [{ role: "user", content: question }];
    const first = await client.chat.completions.create({
        model: env.chat, messages, tools: [weatherTool], max_tokens: 128,
    });
    const choice = first.choices[0];
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.role, "assistant");
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, "function");
    assert.equal(call.function.name, "get_weather");
    assert.match(call.id, /\S/);
    assert.deepEqual(JSON.parse(call.function.arguments), { input: question });

    // the user's side runs the tool and sends its result back with the conversation so far
    messages.push(choice.message);
    messages.push({ role: "tool", tool_call_id: call.id, content: "Sunny, 21 °C" });
    const final = await client.chat.completions.create({
        model: env.chat, messages, tools: [weatherTool], tool_choice: "none", max_tokens: 128,
    });
    assert.equal(final.choices[0].finish_reason, "stop");
    assert.equal(final.choices[0].message.tool_calls ?? undefined, undefined);
    // the echo model repeats the last user message
    assert.equal(final.choices[0].message.content, `echo: ${question}`);
    assert.ok(final.usage.prompt_tokens > first.usage.prompt_tokens,
              "the second prompt carries the tool exchange");
});

test("a streamed tool call assembles to the same arguments", T, async () => {
    const stream = await client.chat.completions.create({
        model: env.chat, tools: [weatherTool], max_tokens: 128, stream: true,
        messages: [{ role: "user", content: "Weather in Lyon" }],
    });
    let name = "", args = "", id = "", finish = null;
    for await (const chunk of stream) {
        const c = chunk.choices[0];
        if (!c)
            continue;
        for (const tc of c.delta.tool_calls ?? []) {
            assert.equal(tc.index, 0);
            id += tc.id ?? "";
            name += tc.function?.name ?? "";
            args += tc.function?.arguments ?? "";
        }
        finish = c.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    assert.equal(name, "get_weather");
    assert.match(id, /\S/);
    assert.deepEqual(JSON.parse(args), { input: "Weather in Lyon" });
});

test("embeddings.create: vectors for each input, float and base64 encodings agree", T,
     async () => {
    const input = ["the quick brown fox", "jumps over the lazy dog"];
    // the SDK asks for base64 by default and decodes it: that path goes through the gateway too
    const { data: r, response } = await client.embeddings.create({ model: env.embed, input })
        .withResponse();
    assert.equal(r.object, "list");
    assert.equal(r.data.length, 2);
    r.data.forEach((d, i) => {
        assert.equal(d.object, "embedding");
        assert.equal(d.index, i);
        assert.ok(d.embedding.length > 0);
        assert.ok(d.embedding.every((x) => Number.isFinite(x) && x >= -1 && x <= 1));
    });
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
    assert.equal(r.usage.prompt_tokens, 4 + 5);
    assert.ok(sellerByAddress(response.headers.get("x-openseed-peer")));

    const f = await client.embeddings.create({ model: env.embed, input,
                                               encoding_format: "float" });
    // float32 (base64) against the JSON numbers: equal to float32 precision
    f.data.forEach((d, i) => d.embedding.forEach((x, k) =>
        assert.ok(Math.abs(x - r.data[i].embedding[k]) < 1e-6, `component ${i}.${k}`)));

    const small = await client.embeddings.create({ model: env.embed, input: "one",
                                                   dimensions: 4, encoding_format: "float" });
    assert.equal(small.data.length, 1);
    assert.equal(small.data[0].embedding.length, 4);
});

test("models.list names the chat and embedding services", T, async () => {
    const ids = [];
    for await (const m of client.models.list()) {
        assert.equal(m.object, "model");
        ids.push(m.id);
    }
    assert.ok(ids.includes(env.chat), `${env.chat} in ${ids}`);
    assert.ok(ids.includes(env.embed), `${env.embed} in ${ids}`);
});

test("an unknown model is the SDK's NotFoundError (404)", T,
     async () => {
    await assert.rejects(
        client.chat.completions.create({ model: "no-such-service",
                                         messages: [{ role: "user", content: "hi" }] }),
        (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});
