/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Offering builder (SDK): one entry of a seller record's "offerings" (PROTOCOL.md §3), built a
 * field at a time. Every setter checks its value at once, by the same rules os_record_parse
 * applies, and says what is wrong; os_offering_build checks that nothing required is missing and
 * that the offering, serialised, parses back to itself, so an offering the builder accepts is one
 * every registry and buyer accepts.
 *
 *     os_offering_builder b;
 *     os_offering o;
 *     os_offering_builder_init(&b);
 *     if (os_offering_service(&b, "llama3.1-8b") != OS_OK ||
 *         os_offering_model(&b, "llama3.1:8b") != OS_OK ||
 *         os_offering_api(&b, "openai.chat") != OS_OK ||
 *         os_offering_price_usdc(&b, "0.10", "0.30", NULL) != OS_OK || // USDC per million tokens
 *         os_offering_build(&b, &o) != OS_OK)
 *         fprintf(stderr, "offering: %s\n", b.error);
 *
 * The first setter error sticks: later setters return OS_ERR_INVALID without changing anything,
 * and os_offering_build reports it too, so b.error always names the first thing that was wrong.
 * The builder is a plain value (no allocation, nothing to free); it is not thread-safe.
 */
#ifndef OPENSEED_OFFERING_H
#define OPENSEED_OFFERING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/err.h"
#include "openseed/record.h"

/* Defaults of the optional fields. */
#define OS_OFFERING_DEFAULT_CAPABILITY "inference"
#define OS_OFFERING_DEFAULT_MAX_OUTPUT 4096
#define OS_OFFERING_MAX_OUTPUT_LIMIT 1000000 /* the record's bound on max_output_tokens */

typedef struct os_offering_builder {
    os_offering offering;         /* what has been set so far (read it; set it through the API) */
    bool has_model, has_price;    /* required fields given */
    bool failed;                  /* a setter failed: its error sticks */
    char error[OS_RECORD_ERR_LEN]; /* the first error, "" while there is none; after a build
                                      that found a field missing, why (that one does not stick) */
} os_offering_builder;

/* Starts an empty offering: capability "inference", max_output_tokens 4096, nothing else. */
void os_offering_builder_init(os_offering_builder *b);

/* "inference", "agent" or "tool". */
OS_WUR os_err os_offering_capability(os_offering_builder *b, const char *capability);
/* Whether s is one of those capabilities (a query's filter, for instance); false for NULL. */
bool os_offering_capability_ok(const char *s);

/* Adds a service name buyers ask for (1 to 63 of [A-Za-z0-9._:/-]); at most
 * OS_RECORD_MAX_SERVICES, each once. */
OS_WUR os_err os_offering_service(os_offering_builder *b, const char *service);

/* The upstream model name (1 to 127 bytes, no control characters). */
OS_WUR os_err os_offering_model(os_offering_builder *b, const char *model);

/* Adds an API the offering speaks: "openai.chat", "openai.embeddings" or "anthropic.messages";
 * each once. */
OS_WUR os_err os_offering_api(os_offering_builder *b, const char *api);

/* Prices in micro-USDC per million tokens (input, output, and cached: prompt-cache hits), each
 * within the record's bounds. */
OS_WUR os_err os_offering_price(os_offering_builder *b, uint64_t input, uint64_t output,
                                uint64_t cached);

/* The same in USDC per million tokens as decimal text ("0.15", at most 6 decimals, no sign or
 * exponent); cached NULL means the input price. */
OS_WUR os_err os_offering_price_usdc(os_offering_builder *b, const char *input, const char *output,
                                     const char *cached);

/* The most output tokens one request may ask for: 1 to OS_OFFERING_MAX_OUTPUT_LIMIT. */
OS_WUR os_err os_offering_max_output(os_offering_builder *b, uint64_t tokens);

/*
 * The finished offering in *out: OS_ERR_INVALID (reason in b->error) when a setter failed or a
 * required field is missing (a service, the model, an API, the prices). The builder stays usable:
 * build again after more setters, or init it for the next offering.
 */
OS_WUR os_err os_offering_build(os_offering_builder *b, os_offering *out);

/* The offering as it appears in a record's "offerings" array (§3); caller owns it, NULL when out
 * of memory. */
json_t *os_offering_to_json(const os_offering *o);

/*
 * Reads one offering object of a record (the inverse of os_offering_to_json), with every check of
 * os_record_parse. OS_ERR_INVALID with the reason in err.
 */
OS_WUR os_err os_offering_from_json(os_offering *out, const json_t *obj, char *err, size_t errcap);

#endif
