/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Micro-USDC arithmetic, its wire and human text forms, token pricing, and the request estimate
 * both daemons compute from the same JSON body (PROTOCOL.md §7). Integers only: a 128-bit
 * intermediate carries every token-times-price product so nothing is rounded but the one ceil.
 */
#include "openseed/money.h"

#include <string.h>

__extension__ typedef unsigned __int128 u128;

/* ---- arithmetic ---- */

os_err os_money_add(uint64_t *out, uint64_t a, uint64_t b)
{
    if (b > UINT64_MAX - a)
        return OS_ERR_RANGE;
    *out = a + b;
    return OS_OK;
}

os_err os_money_sub(uint64_t *out, uint64_t a, uint64_t b)
{
    if (b > a)
        return OS_ERR_RANGE;
    *out = a - b;
    return OS_OK;
}

os_err os_money_mul(uint64_t *out, uint64_t a, uint64_t b)
{
    u128 p = (u128)a * b;

    if (p > UINT64_MAX)
        return OS_ERR_RANGE;
    *out = (uint64_t)p;
    return OS_OK;
}

os_err os_money_div_ceil(uint64_t *out, uint64_t a, uint64_t d)
{
    if (d == 0)
        return OS_ERR_INVALID;
    /* (a + d - 1) / d would overflow near UINT64_MAX; quotient plus remainder test does not */
    *out = a / d + (a % d != 0);
    return OS_OK;
}

static os_err muldiv(uint64_t *out, uint64_t a, uint64_t b, uint64_t d, int round_up)
{
    u128 p, q;

    if (d == 0)
        return OS_ERR_INVALID;
    p = (u128)a * b;
    q = p / d;
    if (round_up && p % d != 0)
        q++; /* q <= (2^64-1)^2 so this cannot wrap 128 bits */
    if (q > UINT64_MAX)
        return OS_ERR_RANGE;
    *out = (uint64_t)q;
    return OS_OK;
}

os_err os_money_muldiv(uint64_t *out, uint64_t a, uint64_t b, uint64_t d)
{
    return muldiv(out, a, b, d, 0);
}

os_err os_money_muldiv_ceil(uint64_t *out, uint64_t a, uint64_t b, uint64_t d)
{
    return muldiv(out, a, b, d, 1);
}

/* ---- text forms ---- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Accumulates the decimal digits s[0..n) into *v. Returns 0, or -1 when the value passes UINT64_MAX
 * (the caller still owns the syntax verdict, so overflow is reported apart from bad characters).
 */
static int accumulate(uint64_t *v, const char *s, size_t n)
{
    uint64_t x = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

static size_t span_digits(const char *s)
{
    size_t n = 0;

    while (is_digit(s[n]))
        n++;
    return n;
}

os_err os_money_parse_units(uint64_t *out, const char *s)
{
    size_t n;
    uint64_t v;

    if (out == NULL || s == NULL)
        return OS_ERR_INVALID;
    n = span_digits(s);
    if (n == 0 || s[n] != '\0' || (s[0] == '0' && n > 1))
        return OS_ERR_INVALID;
    if (accumulate(&v, s, n) != 0)
        return OS_ERR_RANGE;
    *out = v;
    return OS_OK;
}

/* Writes the digits of v backwards from end; returns where they start. */
static char *digits_back(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

static os_err put(char *out, size_t cap, const char *s, size_t n)
{
    if (cap == 0 || out == NULL)
        return OS_ERR_TOOBIG;
    if (n + 1 > cap) {
        out[0] = '\0';
        return OS_ERR_TOOBIG;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return OS_OK;
}

os_err os_money_format_units(char *out, size_t cap, uint64_t v)
{
    char buf[OS_MONEY_UNITS_LEN];
    char *end = buf + sizeof(buf), *p = digits_back(end, v);

    return put(out, cap, p, (size_t)(end - p));
}

os_err os_money_parse_json(uint64_t *out, const json_t *v)
{
    if (!json_is_string(v))
        return OS_ERR_INVALID;
    /* a string with an embedded NUL must not parse as its prefix */
    if (strlen(json_string_value(v)) != json_string_length(v))
        return OS_ERR_INVALID;
    return os_money_parse_units(out, json_string_value(v));
}

json_t *os_money_to_json(uint64_t v)
{
    char s[OS_MONEY_UNITS_LEN];

    if (os_money_format_units(s, sizeof(s), v) != OS_OK)
        return NULL;
    return json_string(s);
}

os_err os_usdc_parse(uint64_t *micro, const char *s)
{
    static const uint64_t scale[7] = {1000000, 100000, 10000, 1000, 100, 10, 1};
    size_t nint, nfrac = 0;
    const char *frac = NULL;
    uint64_t whole, part = 0, v;

    if (micro == NULL || s == NULL)
        return OS_ERR_INVALID;
    nint = span_digits(s);
    if (nint == 0)
        return OS_ERR_INVALID;
    if (s[nint] == '.') {
        frac = s + nint + 1;
        nfrac = span_digits(frac);
        if (nfrac == 0 || nfrac > 6 || frac[nfrac] != '\0')
            return OS_ERR_INVALID;
    } else if (s[nint] != '\0') {
        return OS_ERR_INVALID;
    }
    if (accumulate(&whole, s, nint) != 0)
        return OS_ERR_RANGE;
    if (frac != NULL && accumulate(&part, frac, nfrac) != 0)
        return OS_ERR_INTERNAL; /* six digits always fit */
    if (os_money_mul(&v, whole, OS_USDC_UNIT) != OS_OK ||
        os_money_add(&v, v, part * scale[nfrac]) != OS_OK)
        return OS_ERR_RANGE;
    *micro = v;
    return OS_OK;
}

os_err os_usdc_format(char *out, size_t cap, uint64_t micro)
{
    char buf[OS_USDC_LEN];
    char *end = buf + sizeof(buf), *p;
    uint64_t frac = micro % OS_USDC_UNIT;

    p = end;
    if (frac != 0) {
        int width = 6;
        while (frac % 10 == 0) {
            frac /= 10;
            width--;
        }
        for (int i = 0; i < width; i++) {
            *--p = (char)('0' + frac % 10);
            frac /= 10;
        }
        *--p = '.';
    }
    p = digits_back(p, micro / OS_USDC_UNIT);
    return put(out, cap, p, (size_t)(end - p));
}

/* ---- pricing and cost ---- */

os_err os_pricing_from_json(os_pricing *out, const json_t *obj)
{
    os_pricing p;
    const json_t *cached;
    os_err err;

    if (out == NULL || !json_is_object(obj))
        return OS_ERR_INVALID;
    if ((err = os_money_parse_json(&p.input, json_object_get(obj, "input"))) != OS_OK ||
        (err = os_money_parse_json(&p.output, json_object_get(obj, "output"))) != OS_OK)
        return err;
    cached = json_object_get(obj, "cached");
    if (cached == NULL || json_is_null(cached))
        p.cached = p.input;
    else if ((err = os_money_parse_json(&p.cached, cached)) != OS_OK)
        return err;
    *out = p;
    return OS_OK;
}

os_err os_cost(uint64_t *out, uint64_t tokens, uint64_t price_per_million)
{
    if (out == NULL)
        return OS_ERR_INVALID;
    return os_money_muldiv_ceil(out, tokens, price_per_million, OS_PRICE_PER_TOKENS);
}

os_err os_cost_actual(uint64_t *out, const os_pricing *pricing, uint64_t input_tokens,
                      uint64_t cached_tokens, uint64_t output_tokens)
{
    u128 num;
    uint64_t in_cost, out_cost, total;
    os_err err;

    if (out == NULL || pricing == NULL || cached_tokens > input_tokens)
        return OS_ERR_INVALID;
    /* each product < 2^128 / 2, so the sum of two cannot wrap */
    num = (u128)cached_tokens * pricing->cached +
          (u128)(input_tokens - cached_tokens) * pricing->input;
    num = num / OS_PRICE_PER_TOKENS + (num % OS_PRICE_PER_TOKENS != 0);
    if (num > UINT64_MAX)
        return OS_ERR_RANGE;
    in_cost = (uint64_t)num;
    if ((err = os_cost(&out_cost, output_tokens, pricing->output)) != OS_OK ||
        (err = os_money_add(&total, in_cost, out_cost)) != OS_OK)
        return err;
    *out = total;
    return OS_OK;
}

/* ---- the request estimate ---- */

static int count_bytes(const char *buf, size_t size, void *data)
{
    size_t *n = data;

    (void)buf;
    if (size > SIZE_MAX - *n)
        return -1;
    *n += size;
    return 0;
}

/* *acc += J(v): the compact JSON length, counted without building the text. */
static os_err add_json_len(uint64_t *acc, const json_t *v)
{
    size_t n = 0;

    if (json_dump_callback(v, count_bytes, &n, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        return OS_ERR_INVALID;
    return os_money_add(acc, *acc, (uint64_t)n);
}

/* A field that counts only when present and not null. */
static const json_t *field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_null(v) ? NULL : v;
}

static int type_is(const char *type, const char *const *allowed)
{
    for (; *allowed != NULL; allowed++)
        if (strcmp(type, *allowed) == 0)
            return 1;
    return 0;
}

static const char *const openai_parts[] = {"text", "refusal", NULL};
static const char *const anthropic_parts[] = {"text",     "thinking",    "redacted_thinking",
                                              "tool_use", "tool_result", NULL};
static const char *const text_only[] = {"text", NULL};

/*
 * Checks a content value (string, null or array of typed parts) for input the byte count bounds.
 * An Anthropic tool_result carries content of its own, which may only be text.
 */
static os_err check_content(const json_t *content, const char *const *allowed, int depth)
{
    size_t i;
    const json_t *part;

    if (content == NULL || json_is_null(content) || json_is_string(content))
        return OS_OK;
    if (!json_is_array(content))
        return OS_ERR_INVALID;
    json_array_foreach(content, i, part)
    {
        const char *type;
        os_err err;

        if (!json_is_object(part))
            return OS_ERR_INVALID;
        if ((type = json_string_value(json_object_get(part, "type"))) == NULL)
            return OS_ERR_INVALID;
        if (!type_is(type, allowed))
            return OS_ERR_UNSUPPORTED;
        if (depth == 0 && allowed == anthropic_parts && strcmp(type, "tool_result") == 0 &&
            (err = check_content(json_object_get(part, "content"), text_only, 1)) != OS_OK)
            return err;
    }
    return OS_OK;
}

/* input += 64 + sum (J(m) + 16) over body.messages, after checking each message. */
static os_err count_messages(uint64_t *input, const json_t *body, const char *const *parts)
{
    const json_t *msgs = json_object_get(body, "messages"), *m;
    size_t i;
    os_err err;

    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return OS_ERR_INVALID;
    if ((err = os_money_add(input, *input, OS_ESTIMATE_BASE_TOKENS)) != OS_OK)
        return err;
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m))
            return OS_ERR_INVALID;
        if ((err = check_content(json_object_get(m, "content"), parts, 0)) != OS_OK ||
            (err = add_json_len(input, m)) != OS_OK ||
            (err = os_money_add(input, *input, OS_ESTIMATE_MSG_TOKENS)) != OS_OK)
            return err;
    }
    return OS_OK;
}

/* input += J(body[key]) for each key present and not null. */
static os_err count_fields(uint64_t *input, const json_t *body, const char *const *keys)
{
    os_err err;

    for (; *keys != NULL; keys++) {
        const json_t *v = field(body, *keys);
        if (v != NULL && (err = add_json_len(input, v)) != OS_OK)
            return err;
    }
    return OS_OK;
}

static int nonempty_array(const json_t *v)
{
    return json_is_array(v) && json_array_size(v) > 0;
}

/*
 * Reads an optional positive integer field into *v (left alone when absent or null).
 * Returns OS_ERR_INVALID for any other type or a value below 1.
 */
static os_err positive_int(uint64_t *v, int *present, const json_t *body, const char *key)
{
    const json_t *x = field(body, key);

    *present = 0;
    if (x == NULL)
        return OS_OK;
    if (!json_is_integer(x) || json_integer_value(x) < 1)
        return OS_ERR_INVALID;
    *v = (uint64_t)json_integer_value(x);
    *present = 1;
    return OS_OK;
}

static os_err estimate_openai_chat(os_estimate *e, const json_t *body, uint64_t cap_max)
{
    static const char *const prompt_fields[] = {"tools",         "functions",       "tool_choice",
                                                "function_call", "response_format", NULL};
    uint64_t a = 0, b = 0, n = 1;
    int has_a, has_b, has_n;
    os_err err;

    if ((err = count_messages(&e->input_tokens, body, openai_parts)) != OS_OK ||
        (err = count_fields(&e->input_tokens, body, prompt_fields)) != OS_OK)
        return err;
    if ((nonempty_array(field(body, "tools")) || nonempty_array(field(body, "functions"))) &&
        (err = os_money_add(&e->input_tokens, e->input_tokens, OS_ESTIMATE_TOOLS_TOKENS)) != OS_OK)
        return err;

    if ((err = positive_int(&a, &has_a, body, "max_completion_tokens")) != OS_OK ||
        (err = positive_int(&b, &has_b, body, "max_tokens")) != OS_OK ||
        (err = positive_int(&n, &has_n, body, "n")) != OS_OK)
        return err;
    if (n > OS_ESTIMATE_MAX_CHOICES)
        return OS_ERR_INVALID;
    if (a > cap_max || b > cap_max)
        return OS_ERR_RANGE;
    if (!has_a && !has_b) {
        e->max_tokens = cap_max;
        e->output_cap_from_offering = true;
    } else {
        e->max_tokens = a > b ? a : b;
    }
    e->choices = n;
    return os_money_mul(&e->output_tokens, e->max_tokens, n);
}

static os_err estimate_anthropic(os_estimate *e, const json_t *body, uint64_t cap_max)
{
    static const char *const prompt_fields[] = {"system", "tools", "tool_choice", NULL};
    const json_t *tools = field(body, "tools"), *system = field(body, "system"), *t;
    uint64_t m = 0;
    int has_m;
    size_t i;
    os_err err;

    if ((err = count_messages(&e->input_tokens, body, anthropic_parts)) != OS_OK)
        return err;
    if (system != NULL && !json_is_string(system) &&
        (err = check_content(system, text_only, 1)) != OS_OK)
        return err;
    if (tools != NULL && !json_is_array(tools))
        return OS_ERR_INVALID;
    json_array_foreach(tools, i, t)
    {
        const json_t *type = json_object_get(t, "type");
        if (!json_is_object(t))
            return OS_ERR_INVALID;
        if (type != NULL && !json_is_null(type) &&
            (!json_is_string(type) || strcmp(json_string_value(type), "custom") != 0))
            return OS_ERR_UNSUPPORTED;
    }
    if ((err = count_fields(&e->input_tokens, body, prompt_fields)) != OS_OK)
        return err;
    if (nonempty_array(tools) &&
        (err = os_money_add(&e->input_tokens, e->input_tokens, OS_ESTIMATE_TOOLS_TOKENS)) != OS_OK)
        return err;

    if ((err = positive_int(&m, &has_m, body, "max_tokens")) != OS_OK)
        return err;
    if (!has_m)
        return OS_ERR_INVALID;
    if (m > cap_max)
        return OS_ERR_RANGE;
    e->max_tokens = m;
    e->choices = 1;
    e->output_tokens = m;
    return OS_OK;
}

static os_err estimate_embeddings(os_estimate *e, const json_t *body)
{
    const json_t *in = field(body, "input"), *item, *tok;
    uint64_t items = 1;
    size_t i, j;
    os_err err;

    if (in == NULL)
        return OS_ERR_INVALID;
    if (json_is_array(in)) {
        if (json_array_size(in) == 0)
            return OS_ERR_INVALID;
        json_array_foreach(in, i, item)
        {
            if (json_is_array(item)) {
                if (json_array_size(item) == 0)
                    return OS_ERR_INVALID;
                json_array_foreach(item, j, tok)
                {
                    if (!json_is_integer(tok))
                        return OS_ERR_INVALID;
                }
            } else if (!json_is_string(item) && !json_is_integer(item)) {
                return OS_ERR_INVALID;
            }
        }
        items = json_array_size(in);
    } else if (!json_is_string(in)) {
        return OS_ERR_INVALID;
    }
    if ((err = add_json_len(&e->input_tokens, in)) != OS_OK ||
        (err = os_money_mul(&items, items, OS_ESTIMATE_MSG_TOKENS)) != OS_OK ||
        (err = os_money_add(&e->input_tokens, e->input_tokens, items)) != OS_OK)
        return err;
    return OS_OK;
}

os_err os_estimate_request(os_estimate *out, const char *api, const json_t *body,
                           const os_pricing *pricing, uint64_t max_output_tokens)
{
    os_estimate e;
    uint64_t in_price;
    os_err err;

    if (out == NULL || api == NULL || pricing == NULL)
        return OS_ERR_INVALID;
    memset(&e, 0, sizeof(e));
    if (strcmp(api, "openai.chat") == 0 || strcmp(api, "anthropic.messages") == 0) {
        if (max_output_tokens == 0 || !json_is_object(body))
            return OS_ERR_INVALID;
        err = api[0] == 'o' ? estimate_openai_chat(&e, body, max_output_tokens)
                            : estimate_anthropic(&e, body, max_output_tokens);
    } else if (strcmp(api, "openai.embeddings") == 0) {
        if (!json_is_object(body))
            return OS_ERR_INVALID;
        err = estimate_embeddings(&e, body);
    } else {
        return OS_ERR_UNSUPPORTED;
    }
    if (err != OS_OK)
        return err;
    in_price = pricing->input > pricing->cached ? pricing->input : pricing->cached;
    if ((err = os_cost(&e.input_cost, e.input_tokens, in_price)) != OS_OK ||
        (err = os_cost(&e.output_cost, e.output_tokens, pricing->output)) != OS_OK ||
        (err = os_money_add(&e.total, e.input_cost, e.output_cost)) != OS_OK)
        return err;
    *out = e;
    return OS_OK;
}
