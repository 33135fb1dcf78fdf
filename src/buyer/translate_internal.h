/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What translate.c (requests, whole responses, error bodies) and translate_stream.c (the
 * by_astream_* stream translator) share: the bounds on what they read, Anthropic-style ids, the
 * mapping of OpenAI finish reasons to Anthropic stop reasons, and the reading of OpenAI's usage.
 * The functions are external only because they cross those two files. Not part of the buyer's API.
 */
#ifndef OPENSEED_BUYER_TRANSLATE_INTERNAL_H
#define OPENSEED_BUYER_TRANSLATE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "translate.h"

#define BY_TR_MAX_NAME 256         /* model, tool names, tool ids */
#define BY_TR_MAX_TEXT (16u << 20) /* one text, or a tool call's arguments */
#define BY_TR_MAX_TOOL_CALLS 256   /* tool calls in one answer */
#define BY_TR_MAX_DEPTH 64         /* JSON nesting of a chunk or a tool call's arguments */
#define BY_TR_ID_MAX 32            /* "toolu_" + 24 + NUL fits */

/* An OpenAI finish_reason. */
typedef enum by_tr_finish {
    BY_TR_FIN_NONE, /* not said (yet) */
    BY_TR_FIN_STOP,
    BY_TR_FIN_LENGTH,
    BY_TR_FIN_TOOLS,
    BY_TR_FIN_FILTER
} by_tr_finish;

/* prefix + 24 random base62 characters, as Anthropic's msg_… and toolu_… ids look. */
void by_translate_new_id_(char out[BY_TR_ID_MAX], const char *prefix);
/* s (NULL: not said) as a finish reason; one it does not know is BY_TR_FIN_NONE. */
by_tr_finish by_translate_finish_parse_(const char *s);
/* The Anthropic stop_reason for f (a static string). */
const char *by_translate_stop_reason_(by_tr_finish f, bool had_tool);
/* usage.prompt_tokens / completion_tokens into *in / *outp and *has set when usage is an object
 * (a missing or null usage changes nothing); false when it is malformed. */
bool by_translate_read_usage_(const json_t *usage, bool *has, uint64_t *in, uint64_t *outp);

#endif
