/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One offering of a seller record (PROTOCOL.md §3): its JSON form in both directions, shared with
 * record.c so that a record and a lone offering are read by the same rules, and the SDK's
 * Offering builder, which applies those rules one field at a time so a program learns which value
 * is wrong when it sets it, not when a registry refuses the record. The reader names the field
 * and never quotes the input (its text may go back to a client); the builder's messages quote the
 * caller's own value, made printable and cut short, because that is what a programmer needs.
 */
#include "openseed/offering.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "openseed/json.h"
#include "openseed/money.h"

#define MAX_APIS_LISTED 8 /* bound on an apis array before its names are checked */
#define QUOTE_MAX 40      /* bytes of a caller's value shown in a builder message */

static const char *const capabilities[] = {"inference", "agent", "tool", NULL};
static const char *const offering_keys[] = {"capability", "services",          "model", "apis",
                                            "pricing",    "max_output_tokens", NULL};
static const char *const pricing_keys[] = {"input", "output", "cached", NULL};

static int in_list(const char *s, const char *const list[])
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* A C string held in a fixed buffer: terminated inside it (a struct from the caller may not be). */
static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* A model name: 1..127 bytes of UTF-8 without control characters. */
static int model_ok(const char *s, size_t n)
{
    if (n == 0 || n >= OS_RECORD_MODEL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

bool os_offering_capability_ok(const char *s)
{
    return s != NULL && in_list(s, capabilities);
}

/* ------------------------------------------------------------------ JSON */

/* A wire price: a canonical decimal string (a JSON number is refused, as for every amount). */
static os_err get_price(uint64_t *out, const json_t *v, const char *key, char *err, size_t errcap)
{
    if (!json_is_string(v))
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"pricing.%s\" must be a decimal string of micro-USDC", key);
    if (os_money_parse_json(out, v) != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"pricing.%s\" must be a canonical decimal integer (no sign, point "
                       "or leading zero) at most 18446744073709551615",
                       key);
    return OS_OK;
}

static os_err parse_offering(os_offering *o, const json_t *v, char *err, size_t errcap)
{
    const json_t *arr, *pricing, *item;
    const char *s;
    size_t i;
    os_err rc;

    if ((rc = os_json_check_object(v, offering_keys, "", err, errcap)) != OS_OK)
        return rc;

    if ((rc = os_json_at_str(&s, v, "capability", OS_RECORD_NAME_MAX - 1, "", err, errcap)) !=
        OS_OK)
        return rc;
    if (!in_list(s, capabilities))
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"capability\" must be \"inference\", \"agent\" or \"tool\"");
    memcpy(o->capability, s, strlen(s) + 1);

    if ((rc = os_json_at_array(&arr, v, "services", OS_RECORD_MAX_SERVICES, "", err, errcap)) !=
        OS_OK)
        return rc;
    if (json_array_size(arr) == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "field \"services\" must not be empty");
    json_array_foreach(arr, i, item)
    {
        /* os_record_name_ok reads json_string_length bytes, so an embedded NUL is refused too */
        if (!json_is_string(item) ||
            !os_record_name_ok(json_string_value(item), json_string_length(item)))
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "services[%zu] must be a name of 1 to 63 characters [A-Za-z0-9._:/-]",
                           i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(o->services[j], json_string_value(item)) == 0)
                return os_errf(err, errcap, OS_ERR_INVALID, "services[%zu] is listed twice", i);
        memcpy(o->services[i], json_string_value(item), json_string_length(item) + 1);
    }
    o->n_services = json_array_size(arr);

    if ((rc = os_json_at_str(&s, v, "model", OS_RECORD_MODEL_MAX - 1, "", err, errcap)) != OS_OK)
        return rc;
    if (!model_ok(s, strlen(s)))
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"model\" must be 1 to 127 bytes without control characters");
    memcpy(o->model, s, strlen(s) + 1);

    if ((rc = os_json_at_array(&arr, v, "apis", MAX_APIS_LISTED, "", err, errcap)) != OS_OK)
        return rc;
    if (json_array_size(arr) == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "field \"apis\" must not be empty");
    o->apis = 0;
    json_array_foreach(arr, i, item)
    {
        unsigned bit = json_is_string(item) ? os_api_from_name(json_string_value(item)) : 0;
        if (bit == 0 || strlen(json_string_value(item)) != json_string_length(item))
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "apis[%zu] must be \"openai.chat\", \"openai.embeddings\" or "
                           "\"anthropic.messages\"",
                           i);
        if (o->apis & bit)
            return os_errf(err, errcap, OS_ERR_INVALID, "apis[%zu] is listed twice", i);
        o->apis |= bit;
    }

    if ((rc = os_json_at_object(&pricing, v, "pricing", "", err, errcap)) != OS_OK ||
        (rc = os_json_check_object(pricing, pricing_keys, "pricing: ", err, errcap)) != OS_OK)
        return rc;
    for (i = 0; i < 2; i++) {
        const char *key = i == 0 ? "input" : "output";
        item = json_object_get(pricing, key);
        if (item == NULL)
            return os_errf(err, errcap, OS_ERR_INVALID, "missing field \"pricing.%s\"", key);
        if ((rc = get_price(i == 0 ? &o->pricing.input : &o->pricing.output, item, key, err,
                            errcap)) != OS_OK)
            return rc;
    }
    item = json_object_get(pricing, "cached");
    if (item == NULL)
        o->pricing.cached = o->pricing.input;
    else if ((rc = get_price(&o->pricing.cached, item, "cached", err, errcap)) != OS_OK)
        return rc;
    /* os_pricing_from_json is what the buyer reads prices with; it must agree with this parse. */
    {
        os_pricing p;
        if (os_pricing_from_json(&p, pricing) != OS_OK || p.input != o->pricing.input ||
            p.output != o->pricing.output || p.cached != o->pricing.cached)
            return os_errf(err, errcap, OS_ERR_INTERNAL, "pricing read inconsistently");
    }

    return os_json_at_u64(&o->max_output_tokens, v, "max_output_tokens", 1,
                          OS_OFFERING_MAX_OUTPUT_LIMIT, "", err, errcap);
}

os_err os_offering_from_json(os_offering *out, const json_t *obj, char *err, size_t errcap)
{
    os_err rc;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output offering");
    memset(out, 0, sizeof(*out));
    if ((rc = parse_offering(out, obj, err, errcap)) != OS_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

json_t *os_offering_to_json(const os_offering *o)
{
    json_t *obj, *services = NULL, *apis = NULL, *pricing = NULL;
    int ok;

    if (o == NULL)
        return NULL;
    obj = json_object();
    ok = obj != NULL && o->n_services <= OS_RECORD_MAX_SERVICES &&
         terminated(o->capability, sizeof(o->capability)) &&
         terminated(o->model, sizeof(o->model)) &&
         os_json_put(obj, "capability", json_string(o->capability)) &&
         (services = os_json_child(obj, "services", json_array())) != NULL &&
         os_json_put(obj, "model", json_string(o->model)) &&
         (apis = os_json_child(obj, "apis", json_array())) != NULL &&
         (pricing = os_json_child(obj, "pricing", json_object())) != NULL &&
         os_json_put(pricing, "input", os_money_to_json(o->pricing.input)) &&
         os_json_put(pricing, "output", os_money_to_json(o->pricing.output)) &&
         os_json_put(pricing, "cached", os_money_to_json(o->pricing.cached)) &&
         os_json_put(obj, "max_output_tokens", os_json_u64(o->max_output_tokens));

    for (size_t i = 0; ok && i < o->n_services; i++)
        ok = terminated(o->services[i], sizeof(o->services[i])) &&
             json_array_append_new(services, json_string(o->services[i])) == 0;
    /* in the bits' order, which is the protocol's order of the names */
    for (unsigned i = 0; ok && os_api_name(1u << i) != NULL; i++)
        if (o->apis & (1u << i))
            ok = json_array_append_new(apis, json_string(os_api_name(1u << i))) == 0;
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* ------------------------------------------------------------------ the builder */

/* s as a builder message shows it: printable ASCII, cut at QUOTE_MAX bytes ("..." then). */
static void quote(char out[QUOTE_MAX + 4], const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0' && n < QUOTE_MAX; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (s[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Records a setter's failure: the message, and that it sticks. */
__attribute__((format(printf, 2, 3))) static os_err fail(os_offering_builder *b, const char *fmt,
                                                         ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b->error, sizeof(b->error), fmt, ap);
    va_end(ap);
    b->failed = true;
    return OS_ERR_INVALID;
}

/* Whether a setter may run: b exists and no earlier setter failed. */
static bool usable(const os_offering_builder *b)
{
    return b != NULL && !b->failed;
}

void os_offering_builder_init(os_offering_builder *b)
{
    if (b == NULL)
        return;
    memset(b, 0, sizeof(*b));
    memcpy(b->offering.capability, OS_OFFERING_DEFAULT_CAPABILITY,
           sizeof(OS_OFFERING_DEFAULT_CAPABILITY));
    b->offering.max_output_tokens = OS_OFFERING_DEFAULT_MAX_OUTPUT;
}

os_err os_offering_capability(os_offering_builder *b, const char *capability)
{
    char q[QUOTE_MAX + 4];

    if (!usable(b))
        return OS_ERR_INVALID;
    if (capability == NULL)
        return fail(b, "capability: none given");
    if (!in_list(capability, capabilities)) {
        quote(q, capability);
        return fail(b, "capability \"%s\": must be \"inference\", \"agent\" or \"tool\"", q);
    }
    memset(b->offering.capability, 0, sizeof(b->offering.capability));
    memcpy(b->offering.capability, capability, strlen(capability) + 1);
    return OS_OK;
}

os_err os_offering_service(os_offering_builder *b, const char *service)
{
    os_offering *o;
    char q[QUOTE_MAX + 4];
    size_t n;

    if (!usable(b))
        return OS_ERR_INVALID;
    if (service == NULL)
        return fail(b, "service: none given");
    o = &b->offering;
    quote(q, service);
    n = strlen(service);
    if (!os_record_name_ok(service, n))
        return fail(b, "service \"%s\": must be 1 to 63 of [A-Za-z0-9._:/-]", q);
    for (size_t i = 0; i < o->n_services; i++)
        if (strcmp(o->services[i], service) == 0)
            return fail(b, "service \"%s\": listed twice", q);
    if (o->n_services >= OS_RECORD_MAX_SERVICES)
        return fail(b, "service \"%s\": an offering has at most %d services", q,
                    OS_RECORD_MAX_SERVICES);
    memset(o->services[o->n_services], 0, sizeof(o->services[o->n_services]));
    memcpy(o->services[o->n_services], service, n + 1);
    o->n_services++;
    return OS_OK;
}

os_err os_offering_model(os_offering_builder *b, const char *model)
{
    char q[QUOTE_MAX + 4];

    if (!usable(b))
        return OS_ERR_INVALID;
    if (model == NULL)
        return fail(b, "model: none given");
    if (!model_ok(model, strlen(model))) {
        quote(q, model);
        return fail(b, "model \"%s\": must be 1 to 127 bytes without control characters", q);
    }
    memset(b->offering.model, 0, sizeof(b->offering.model));
    memcpy(b->offering.model, model, strlen(model) + 1);
    b->has_model = true;
    return OS_OK;
}

os_err os_offering_api(os_offering_builder *b, const char *api)
{
    char q[QUOTE_MAX + 4];
    unsigned bit;

    if (!usable(b))
        return OS_ERR_INVALID;
    if (api == NULL)
        return fail(b, "api: none given");
    quote(q, api);
    if ((bit = os_api_from_name(api)) == 0)
        return fail(b,
                    "api \"%s\": must be \"openai.chat\", \"openai.embeddings\" or "
                    "\"anthropic.messages\"",
                    q);
    if (b->offering.apis & bit)
        return fail(b, "api \"%s\": listed twice", q);
    b->offering.apis |= bit;
    return OS_OK;
}

os_err os_offering_price(os_offering_builder *b, uint64_t input, uint64_t output, uint64_t cached)
{
    if (!usable(b))
        return OS_ERR_INVALID;
    /* The record's prices are any uint64 micro-USDC per million tokens (os_cost works in 128
     * bits), so every value is in bounds. */
    b->offering.pricing.input = input;
    b->offering.pricing.output = output;
    b->offering.pricing.cached = cached;
    b->has_price = true;
    return OS_OK;
}

/* One USDC price of os_offering_price_usdc, or a failure naming it. */
static os_err usdc_price(os_offering_builder *b, uint64_t *out, const char *which, const char *s)
{
    char q[QUOTE_MAX + 4];
    os_err rc;

    if (s == NULL)
        return fail(b, "price %s: none given", which);
    quote(q, s);
    if ((rc = os_usdc_parse(out, s)) == OS_ERR_RANGE)
        return fail(b, "price %s \"%s\": above 18446744073709.551615 USDC", which, q);
    if (rc != OS_OK)
        return fail(b,
                    "price %s \"%s\": must be USDC per million tokens, digits with at most 6 "
                    "decimals (\"0.15\"), no sign or exponent",
                    which, q);
    return OS_OK;
}

os_err os_offering_price_usdc(os_offering_builder *b, const char *input, const char *output,
                              const char *cached)
{
    uint64_t in, out, ca;
    os_err rc;

    if (!usable(b))
        return OS_ERR_INVALID;
    if ((rc = usdc_price(b, &in, "input", input)) != OS_OK ||
        (rc = usdc_price(b, &out, "output", output)) != OS_OK)
        return rc;
    if (cached == NULL)
        ca = in;
    else if ((rc = usdc_price(b, &ca, "cached", cached)) != OS_OK)
        return rc;
    return os_offering_price(b, in, out, ca);
}

os_err os_offering_max_output(os_offering_builder *b, uint64_t tokens)
{
    if (!usable(b))
        return OS_ERR_INVALID;
    if (tokens < 1 || tokens > OS_OFFERING_MAX_OUTPUT_LIMIT)
        return fail(b, "max_output_tokens %llu: must be 1 to %d", (unsigned long long)tokens,
                    OS_OFFERING_MAX_OUTPUT_LIMIT);
    b->offering.max_output_tokens = tokens;
    return OS_OK;
}

static bool offering_equal(const os_offering *a, const os_offering *b)
{
    if (strcmp(a->capability, b->capability) != 0 || a->n_services != b->n_services ||
        strcmp(a->model, b->model) != 0 || a->apis != b->apis ||
        a->pricing.input != b->pricing.input || a->pricing.output != b->pricing.output ||
        a->pricing.cached != b->pricing.cached || a->max_output_tokens != b->max_output_tokens)
        return false;
    for (size_t i = 0; i < a->n_services; i++)
        if (strcmp(a->services[i], b->services[i]) != 0)
            return false;
    return true;
}

os_err os_offering_build(os_offering_builder *b, os_offering *out)
{
    char why[OS_RECORD_ERR_LEN];
    os_offering back;
    json_t *j;
    os_err rc;

    if (b == NULL || out == NULL)
        return OS_ERR_INVALID;
    if (b->failed)
        return OS_ERR_INVALID;
    if (b->offering.n_services == 0)
        return os_errf(b->error, sizeof(b->error), OS_ERR_INVALID,
                       "service: an offering needs at least one (os_offering_service)");
    if (!b->has_model)
        return os_errf(b->error, sizeof(b->error), OS_ERR_INVALID,
                       "model: required (os_offering_model)");
    if (b->offering.apis == 0)
        return os_errf(b->error, sizeof(b->error), OS_ERR_INVALID,
                       "api: an offering needs at least one (os_offering_api)");
    if (!b->has_price)
        return os_errf(b->error, sizeof(b->error), OS_ERR_INVALID,
                       "price: required (os_offering_price or os_offering_price_usdc)");
    /* What a registry will read is the JSON: build only what reads back as itself. */
    if ((j = os_offering_to_json(&b->offering)) == NULL)
        return os_errf(b->error, sizeof(b->error), OS_ERR_INVALID,
                       "the offering cannot be serialised (fields changed behind the builder?)");
    rc = os_offering_from_json(&back, j, why, sizeof(why));
    json_decref(j);
    if (rc == OS_ERR_NOMEM)
        return os_errf(b->error, sizeof(b->error), rc, "out of memory");
    if (rc != OS_OK)
        return os_errf(b->error, sizeof(b->error), OS_ERR_INVALID, "offering refused: %s", why);
    if (!offering_equal(&back, &b->offering))
        return os_errf(b->error, sizeof(b->error), OS_ERR_INVALID,
                       "the offering does not read back as built (fields changed behind the "
                       "builder?)");
    b->error[0] = '\0';
    *out = back;
    return OS_OK;
}
