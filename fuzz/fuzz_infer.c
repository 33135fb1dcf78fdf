/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the plaintexts of the encrypted inference exchange (infer.h) and the request
 * estimate (money.h). The seller decrypts a buyer's request and reads it as src/seller/serve.c
 * does: os_json_parse capped at OS_INFER_MAX_REQUEST and OS_INFER_JSON_DEPTH, os_infer_inner_parse,
 * then os_estimate_request on the inner body; the buyer reads the seller's closing plaintext (a
 * whole response or a stream's final chunk) as infer.c's rx_final does: the key set, then
 * os_infer_final_parse. A fourth mode runs os_estimate_request straight on a client's body, as the
 * buyer's relay does before it pays. The first byte picks the mode, the second the offering's
 * prices and output cap. Successful parses must round-trip through the builders, and an estimate
 * must be self-consistent and bound the cost of any answer within its token counts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/infer.h"
#include "openseed/json.h"
#include "openseed/money.h"
#include "openseed/record.h"

#define MAX_INPUT (1u << 20)
#define CLIENT_JSON_DEPTH 64 /* the buyer gateway's JSON_DEPTH */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Offerings as a record can hold them: prices any uint64, max_output_tokens 1..1000000. */
static const os_pricing prices[4] = {
    {100000, 300000, 50000}, {0, 0, 0}, {1, 1, 1}, {UINT64_MAX, UINT64_MAX, UINT64_MAX}};
static const uint64_t caps[4] = {4096, 1, 1000000, 128000};
static const char *const apis[3] = {"openai.chat", "openai.embeddings", "anthropic.messages"};

/* infer.c's key sets of the closing plaintexts (not exported). */
static const char *const whole_keys[] = {"status", "body",  "usage", "cost", "cumulative_consumed",
                                         "error",  NULL};
static const char *const chunk_final_keys[] = {"status", "usage", "cost", "cumulative_consumed",
                                               "error",  "body",  NULL};

static void estimate(const char *api, const json_t *body, uint8_t sel)
{
    const os_pricing *p = &prices[sel & 3];
    uint64_t cap = caps[(sel >> 2) & 3], x, in_price;
    os_estimate e;
    os_err rc = os_estimate_request(&e, api, body, p, cap);

    if (rc != OS_OK) {
        if (rc != OS_ERR_INVALID && rc != OS_ERR_UNSUPPORTED && rc != OS_ERR_RANGE &&
            rc != OS_ERR_NOMEM)
            abort();
        return;
    }
    in_price = p->input > p->cached ? p->input : p->cached;
    if (os_cost(&x, e.input_tokens, in_price) != OS_OK || x != e.input_cost ||
        os_cost(&x, e.output_tokens, p->output) != OS_OK || x != e.output_cost ||
        os_money_add(&x, e.input_cost, e.output_cost) != OS_OK || x != e.total)
        abort();
    if (strcmp(api, "openai.embeddings") == 0) {
        if (e.output_tokens != 0 || e.max_tokens != 0 || e.choices != 0 || e.input_tokens < 16)
            abort();
    } else {
        if (e.max_tokens < 1 || e.max_tokens > cap || e.choices < 1 ||
            e.choices > OS_ESTIMATE_MAX_CHOICES || e.output_tokens != e.max_tokens * e.choices ||
            e.input_tokens < OS_ESTIMATE_BASE_TOKENS + OS_ESTIMATE_MSG_TOKENS ||
            (e.output_cap_from_offering && e.max_tokens != cap))
            abort();
    }
    /* whatever the seller reports within the estimate's counts costs no more than it */
    if (os_cost_actual(&x, p, e.input_tokens, e.input_tokens / (1 + (sel >> 4) % 4),
                       e.output_tokens) != OS_OK ||
        x > e.total)
        abort();
}

/* serve.c: the decrypted request, then the estimate for the offering it names. */
static void request(const char *s, size_t n, uint8_t sel)
{
    char err[OS_JSON_ERR_LEN];
    json_t *root = NULL, *again;
    os_infer_inner in, back;

    if (os_json_parse(&root, s, n, OS_INFER_MAX_REQUEST, OS_INFER_JSON_DEPTH, err, sizeof(err)) !=
        OS_OK)
        return;
    if (os_infer_inner_parse(&in, root, err, sizeof(err)) != OS_OK) {
        if (memchr(err, '\0', sizeof(err)) == NULL)
            abort();
        json_decref(root);
        return;
    }
    if (os_api_from_name(in.api) == 0 || in.service[0] == '\0' ||
        memchr(in.service, '\0', sizeof(in.service)) == NULL || !json_is_object(in.body))
        abort();
    /* the buyer's builder makes what the seller parses */
    if ((again = os_infer_inner_build(in.api, in.service, in.body)) == NULL ||
        os_infer_inner_parse(&back, again, NULL, 0) != OS_OK || strcmp(back.api, in.api) != 0 ||
        strcmp(back.service, in.service) != 0 || back.body != in.body)
        abort();
    json_decref(again);
    estimate(in.api, in.body, sel);
    json_decref(root);
}

static int same_final(const os_infer_final *a, const os_infer_final *b)
{
    return a->status == b->status && a->usage.input_tokens == b->usage.input_tokens &&
           a->usage.cached_tokens == b->usage.cached_tokens &&
           a->usage.output_tokens == b->usage.output_tokens && a->cost == b->cost &&
           a->cumulative_consumed == b->cumulative_consumed && a->has_error == b->has_error &&
           (!a->has_error || (strcmp(a->error_type, b->error_type) == 0 &&
                              strcmp(a->error_message, b->error_message) == 0));
}

/* infer.c's rx_final: the closing plaintext of a whole response or of a stream. */
static void closing(const char *s, size_t n, const char *const keys[])
{
    char err[OS_JSON_ERR_LEN];
    json_t *root = NULL, *again;
    os_infer_final f, back;

    if (os_json_parse(&root, s, n, n, OS_INFER_JSON_DEPTH, err, sizeof(err)) != OS_OK)
        return;
    if (os_json_check_object(root, keys, "", NULL, 0) != OS_OK ||
        os_infer_final_parse(&f, root, err, sizeof(err)) != OS_OK) {
        json_decref(root);
        return;
    }
    if (f.status < 100 || f.status > 599 || f.usage.cached_tokens > f.usage.input_tokens ||
        (f.has_error && (memchr(f.error_type, '\0', sizeof(f.error_type)) == NULL ||
                         memchr(f.error_message, '\0', sizeof(f.error_message)) == NULL)))
        abort();
    /* the seller's writer makes what the buyer reads */
    if ((again = os_infer_final_to_json(&f)) == NULL ||
        os_infer_final_parse(&back, again, NULL, 0) != OS_OK || !same_final(&f, &back))
        abort();
    json_decref(again);
    json_decref(root);
}

/* The buyer's relay: a client's body (gateway parse: its own length, 64 deep, an object). */
static void client_body(const char *s, size_t n, uint8_t sel)
{
    json_t *body = NULL;

    if (os_json_parse(&body, s, n, n, CLIENT_JSON_DEPTH, NULL, 0) != OS_OK)
        return;
    if (json_is_object(body))
        estimate(apis[(sel >> 6) % 3], body, sel);
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s;
    size_t n;

    if (size < 2 || size > MAX_INPUT)
        return 0;
    s = (const char *)data + 2;
    n = size - 2;
    switch (data[0] % 4) {
    case 0:
        request(s, n, data[1]);
        break;
    case 1:
        closing(s, n, whole_keys);
        break;
    case 2:
        closing(s, n, chunk_final_keys);
        break;
    default:
        client_body(s, n, data[1]);
        break;
    }
    return 0;
}
