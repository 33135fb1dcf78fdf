/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Money for OpenSeed: amounts are uint64_t micro-USDC (USDC base units, 6 decimals), never floating
 * point. This module holds the checked arithmetic every balance and voucher goes through, the two
 * text forms (wire units "1250000" and human USDC "1.25"), per-million-token pricing, and the
 * request estimate that the buyer signs for and the seller checks (PROTOCOL.md §7). Both daemons
 * must call os_estimate_request on the same JSON body, so its exact definition lives here and
 * nowhere else.
 *
 * Every function that writes through an output pointer does so only on success, so
 * `os_money_add(&x, x, y)` leaves x as it was when the sum would overflow.
 */
#ifndef OPENSEED_MONEY_H
#define OPENSEED_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"

/* One USDC in micro-USDC, and the token count prices are quoted per. */
#define OS_USDC_UNIT UINT64_C(1000000)
#define OS_PRICE_PER_TOKENS UINT64_C(1000000)

/* Buffer sizes, NUL included: "18446744073709551615" and "18446744073709.551615". */
#define OS_MONEY_UNITS_LEN 21
#define OS_USDC_LEN 22

/* ---- checked arithmetic: OS_ERR_RANGE on overflow or underflow, *out untouched then ---- */

OS_WUR os_err os_money_add(uint64_t *out, uint64_t a, uint64_t b);
/* a - b; b > a is OS_ERR_RANGE (a balance never goes negative). */
OS_WUR os_err os_money_sub(uint64_t *out, uint64_t a, uint64_t b);
OS_WUR os_err os_money_mul(uint64_t *out, uint64_t a, uint64_t b);
/* ceil(a / d); d == 0 is OS_ERR_INVALID. Cannot overflow. */
OS_WUR os_err os_money_div_ceil(uint64_t *out, uint64_t a, uint64_t d);
/* floor(a * b / d) over a 128-bit product; d == 0 is OS_ERR_INVALID. */
OS_WUR os_err os_money_muldiv(uint64_t *out, uint64_t a, uint64_t b, uint64_t d);
/* ceil(a * b / d) with a 128-bit product; errors as os_money_muldiv. */
OS_WUR os_err os_money_muldiv_ceil(uint64_t *out, uint64_t a, uint64_t b, uint64_t d);

/* ---- wire form: base units as a decimal string (amounts, prices per million tokens) ---- */

/*
 * Parses the canonical wire form: one or more ASCII digits and nothing else, no leading zero unless
 * the whole string is "0" (so each amount has exactly one spelling, the one os_money_format_units
 * writes). OS_ERR_INVALID for any other syntax (sign, space, '.', exponent, "0x", "", "007"),
 * OS_ERR_RANGE for a well-formed number above UINT64_MAX.
 */
OS_WUR os_err os_money_parse_units(uint64_t *out, const char *s);

/*
 * Writes v in decimal into out; OS_MONEY_UNITS_LEN is always enough. OS_ERR_TOOBIG if cap is
 * short (out is then "" when cap > 0).
 */
OS_WUR os_err os_money_format_units(char *out, size_t cap, uint64_t v);

/* Parses a JSON string in the wire form; a JSON number is OS_ERR_INVALID (amounts are strings). */
OS_WUR os_err os_money_parse_json(uint64_t *out, const json_t *v);

/*
 * A new JSON string holding v in the wire form (what os_money_parse_json reads back), owned by the
 * caller; NULL when out of memory.
 */
json_t *os_money_to_json(uint64_t v);

/* ---- human form: USDC with up to 6 decimals, for the CLI, config and logs ---- */

/*
 * Parses USDC as a person writes it: DIGITS or DIGITS "." DIGITS, with 1 to 6 fractional digits.
 * Leading zeros ("007") and trailing fractional zeros ("1.500000") are accepted. Everything else is
 * OS_ERR_INVALID: "", ".", ".5", "1.", "1..2", signs, spaces, exponents, hex, "nan", "inf", and
 * more than 6 decimals even when they are zeros ("0.0000001", "1.0000000"), because an amount is
 * never rounded silently. A well-formed amount above UINT64_MAX micro-USDC is OS_ERR_RANGE.
 */
OS_WUR os_err os_usdc_parse(uint64_t *micro, const char *s);

/*
 * Writes micro as canonical human USDC: the integer part, then '.' and the fraction with trailing
 * zeros removed, and no '.' at all for whole amounts ("0", "5", "1.25", "0.000001",
 * "18446744073709.551615"). os_usdc_parse reads it back exactly. OS_USDC_LEN is always enough;
 * OS_ERR_TOOBIG if cap is short (out is then "" when cap > 0).
 */
OS_WUR os_err os_usdc_format(char *out, size_t cap, uint64_t micro);

/* ---- pricing and cost ---- */

/* Prices in micro-USDC per million tokens (PROTOCOL.md §3 "pricing"). */
typedef struct os_pricing {
    uint64_t input;
    uint64_t output;
    uint64_t cached; /* input tokens served from a prompt cache */
} os_pricing;

/*
 * Reads an offering's {"input":"…","output":"…","cached":"…"} (wire-form strings). input and output
 * are required; cached is optional and defaults to input (no discount). Other keys are ignored.
 */
OS_WUR os_err os_pricing_from_json(os_pricing *out, const json_t *obj);

/* ceil(tokens * price_per_million / 1e6) with a 128-bit product; OS_ERR_RANGE above UINT64_MAX. */
OS_WUR os_err os_cost(uint64_t *out, uint64_t tokens, uint64_t price_per_million);

/*
 * The settled cost of a served request. input_tokens counts every prompt token including the
 * cached_tokens among them (OpenAI's prompt_tokens; for Anthropic the caller adds
 * cache_read_input_tokens and cache_creation_input_tokens to input_tokens), so cached_tokens >
 * input_tokens is OS_ERR_INVALID. The input class is rounded up once over both prices:
 *   input cost  = ceil((cached * pricing->cached + (input - cached) * pricing->input) / 1e6)
 *   output cost = ceil(output_tokens * pricing->output / 1e6)
 * and *out is their sum. Rounding the input class once (not per price) is what keeps this at or
 * below the estimate whenever the token counts are at or below the estimate's.
 */
OS_WUR os_err os_cost_actual(uint64_t *out, const os_pricing *pricing, uint64_t input_tokens,
                             uint64_t cached_tokens, uint64_t output_tokens);

/* ---- the request estimate (PROTOCOL.md §7), identical in buyer and seller ---- */

#define OS_ESTIMATE_MSG_TOKENS 16     /* per chat message / system / embeddings input item */
#define OS_ESTIMATE_BASE_TOKENS 64    /* per chat request: BOS, default preamble, reply header */
#define OS_ESTIMATE_TOOLS_TOKENS 1024 /* per chat request that declares tools or functions */
#define OS_ESTIMATE_MAX_CHOICES 128   /* largest OpenAI "n" accepted (OpenAI's own limit) */

typedef struct os_estimate {
    uint64_t input_tokens;  /* upper bound on prompt tokens */
    uint64_t output_tokens; /* max_tokens * choices; 0 for embeddings */
    uint64_t max_tokens;    /* per-choice output cap in force; 0 for embeddings */
    uint64_t choices;       /* OpenAI "n" (default 1); 1 for Anthropic; 0 for embeddings */
    uint64_t input_cost;    /* ceil(input_tokens * max(input, cached price) / 1e6) */
    uint64_t output_cost;   /* ceil(output_tokens * output price / 1e6) */
    uint64_t total;         /* input_cost + output_cost: what the voucher must add */
    /* true when the request named no output cap: the seller must send max_tokens = max_tokens
     * upstream (OpenAI: max_completion_tokens and max_tokens; the estimate assumed it). */
    bool output_cap_from_offering;
} os_estimate;

/*
 * Computes the estimate for a decrypted request body `body` of API `api` ("openai.chat",
 * "openai.embeddings" or "anthropic.messages"; any other is OS_ERR_UNSUPPORTED) at `pricing`, for
 * an offering whose max_output_tokens is `max_output_tokens` (must be > 0 for the chat APIs). Fills
 * *out on success; borrows body.
 *
 * Definitions. J(v) is the byte length of v's compact JSON text as libcommon's jansson writes it
 * (json_dump_callback with JSON_COMPACT | JSON_ENCODE_ANY: no whitespace, non-ASCII written raw as
 * UTF-8, so J(v) >= the UTF-8 bytes of every string inside v). A token covers at least one byte, so
 * J bounds the tokens of the text; the fixed allowances cover tokens a chat template adds that are
 * not in the request. A JSON null counts as absent everywhere.
 *
 * openai.chat:
 *   input  = 64 + sum over messages m of (J(m) + 16)
 *            + J(tools) + J(functions) + J(tool_choice) + J(function_call) + J(response_format)
 *            (each when present) + 1024 if tools or functions is a non-empty array.
 *   cap    = max(max_completion_tokens, max_tokens) over those present; each present one must be a
 *            JSON integer >= 1 (else OS_ERR_INVALID) and <= max_output_tokens (else OS_ERR_RANGE);
 *            neither present: cap = max_output_tokens and output_cap_from_offering = true.
 *   choices = n (JSON integer 1..128, else OS_ERR_INVALID; absent 1); output = cap * choices.
 * anthropic.messages:
 *   input  = 64 + sum over messages m of (J(m) + 16) + J(system) + J(tools) + J(tool_choice)
 *            (each when present) + 1024 if tools is a non-empty array.
 *   cap    = max_tokens, required (Anthropic's API requires it): integer >= 1, else OS_ERR_INVALID;
 *            above max_output_tokens OS_ERR_RANGE. choices = 1; output = cap.
 *   A tool with a "type" other than "custom" (server or Anthropic-defined tools such as web_search
 *   or bash, which inject prompts and results the request does not show) is OS_ERR_UNSUPPORTED.
 * openai.embeddings:
 *   input  = J(input) + 16 * items, items = 1 for a string, else the top-level array length.
 *   `input` must be a string or a non-empty array of strings, integers, or non-empty arrays of
 *   integers (token ids); else OS_ERR_INVALID. output = 0.
 * Cost: input_cost = ceil(input * max(pricing->input, pricing->cached) / 1e6) (the larger price,
 * since the seller may report any of the input as cached), output_cost = ceil(output *
 * pricing->output / 1e6), total = their sum; any overflow is OS_ERR_RANGE.
 *
 * Validation (OS_ERR_INVALID): body not an object; `messages` missing, not an array, empty, or
 * with a non-object element; a message "content" that is not a string, null or array; a content
 * array element that is not an object with a string "type". Non-text input, whose token count the
 * bytes do not bound, is OS_ERR_UNSUPPORTED: content parts other than "text" and "refusal"
 * (OpenAI) or "text", "thinking", "redacted_thinking", "tool_use" and "tool_result" whose own
 * content is text (Anthropic), i.e. images, audio, files and documents.
 */
OS_WUR os_err os_estimate_request(os_estimate *out, const char *api, const json_t *body,
                                  const os_pricing *pricing, uint64_t max_output_tokens);

#endif
