/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the signed messages anyone on the network can POST to the registry
 * (PROTOCOL.md §3–4, record.h): the announce body {record, signature} (h_announce), the heartbeat
 * (h_heartbeat) and the feedback (h_feedback). Each body is parsed as the registry parses a request
 * body (os_json_parse capped at OS_RECORD_MAX_BYTES and RG_JSON_DEPTH, a JSON object required),
 * then handed to os_record_verify / os_heartbeat_parse / os_feedback_parse and to the signature
 * check that follows. The first byte picks the message. A message that parses must survive the
 * round trips the daemons rely on: its _to_json form parses back to the same struct, and a
 * record's canonical text (what the registry stores and re-reads at start) parses back too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/init.h"
#include "openseed/json.h"
#include "openseed/record.h"

#include "../src/registry/internal.h" /* RG_JSON_DEPTH, the registry's body nesting cap */

#define CHAIN_ID 8453
/* Any escrow will do: the feedback signatures are checked against it, not trusted. */
static const uint8_t escrow[20] = {0x5f, 0xbd, 0xb2, 0x31, 0x56, 0x78, 0xaf, 0xec, 0xb3, 0x67,
                                   0xf0, 0x32, 0xd9, 0x3f, 0x64, 0x2f, 0x64, 0x18, 0x0a, 0xa3};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* err must come back NUL-terminated inside its buffer, whatever happened. */
static void check_err(const char *err, size_t cap)
{
    if (memchr(err, '\0', cap) == NULL)
        abort();
}

/* The registry's rg_body_json: the capped parse and an object at the top. */
static json_t *body_json(const char *s, size_t n)
{
    char err[OS_JSON_ERR_LEN];
    json_t *body = NULL;

    if (os_json_parse(&body, s, n, OS_RECORD_MAX_BYTES, RG_JSON_DEPTH, err, sizeof(err)) !=
        OS_OK) {
        check_err(err, sizeof(err));
        if (body != NULL)
            abort();
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static void check_record(const os_record *r)
{
    if (r->n_offerings < 1 || r->n_offerings > OS_RECORD_MAX_OFFERINGS ||
        r->ohttp_keys_len > OS_RECORD_OHTTP_KEYS_MAX ||
        memchr(r->endpoint, '\0', sizeof(r->endpoint)) == NULL)
        abort();
    for (size_t i = 0; i < r->n_offerings; i++) {
        const os_offering *o = &r->offerings[i];
        if (o->n_services < 1 || o->n_services > OS_RECORD_MAX_SERVICES || o->apis == 0 ||
            (o->apis & ~7u) != 0 || o->max_output_tokens < 1 ||
            memchr(o->capability, '\0', sizeof(o->capability)) == NULL ||
            memchr(o->model, '\0', sizeof(o->model)) == NULL)
            abort();
        for (size_t j = 0; j < o->n_services; j++)
            if (!os_record_name_ok(o->services[j], strnlen(o->services[j], OS_RECORD_NAME_MAX)))
                abort();
    }
}

/* h_announce up to the signature check, then what a parsed record must survive. */
static void announce(json_t *body)
{
    static const char *const keys[] = {"record", "signature", NULL};
    const json_t *record;
    uint8_t sig[65], hash[32];
    char err[OS_RECORD_ERR_LEN];
    os_record *rec = malloc(sizeof(*rec)), *back = malloc(sizeof(*back));
    json_t *again = NULL, *reread = NULL;
    char *canon = NULL;
    size_t canon_len = 0;
    os_err rc;

    if (rec == NULL || back == NULL)
        goto out;
    if (os_json_check_keys(body, keys, err, sizeof(err)) != OS_OK ||
        os_json_get_object(&record, body, "record", err, sizeof(err)) != OS_OK ||
        os_json_get_hex(sig, sizeof(sig), body, "signature", err, sizeof(err)) != OS_OK) {
        check_err(err, sizeof(err));
        goto out;
    }
    rc = os_record_verify(rec, record, sig, err, sizeof(err));
    check_err(err, sizeof(err));
    if (rc != OS_OK && rc != OS_ERR_INVALID && rc != OS_ERR_CRYPTO && rc != OS_ERR_NOMEM)
        abort();
    /* Most mutants fail the signature; parse alone so the record checks still run on them. */
    if (os_record_parse(rec, record, err, sizeof(err)) != OS_OK) {
        check_err(err, sizeof(err));
        if (rc == OS_OK)
            abort(); /* verified but does not parse */
        goto out;
    }
    check_record(rec);
    if (os_record_body_hash(hash, record) != OS_OK || os_record_digest(hash, record, rec) != OS_OK)
        abort();

    /* The seller's builder writes what the registry reads back, unchanged. */
    if ((again = os_record_to_json(rec)) == NULL)
        abort();
    if (os_record_parse(back, again, NULL, 0) != OS_OK || memcmp(back, rec, sizeof(*rec)) != 0)
        abort();

    /* The registry stores the canonical text and re-reads it at start (store.c). */
    if (os_json_dump_canonical(record, &canon, &canon_len) != OS_OK)
        abort();
    if (os_json_parse(&reread, canon, canon_len, OS_RECORD_MAX_BYTES, RG_JSON_DEPTH, NULL, 0) !=
            OS_OK ||
        os_record_parse(back, reread, NULL, 0) != OS_OK || memcmp(back, rec, sizeof(*rec)) != 0)
        abort();
out:
    json_decref(reread);
    json_decref(again);
    free(canon);
    free(back);
    free(rec);
}

static void heartbeat(const json_t *body)
{
    os_heartbeat hb, back;
    char err[OS_RECORD_ERR_LEN];
    json_t *again;

    if (os_heartbeat_parse(&hb, body, err, sizeof(err)) != OS_OK) {
        check_err(err, sizeof(err));
        return;
    }
    if (hb.capacity < 1 || hb.seq > INT64_MAX || hb.timestamp > INT64_MAX ||
        memchr(hb.endpoint, '\0', sizeof(hb.endpoint)) == NULL)
        abort();
    (void)os_heartbeat_verify(&hb, CHAIN_ID);
    if ((again = os_heartbeat_to_json(&hb)) == NULL)
        abort();
    if (os_heartbeat_parse(&back, again, NULL, 0) != OS_OK || memcmp(&back, &hb, sizeof(hb)) != 0)
        abort();
    json_decref(again);
}

static void feedback(const json_t *body)
{
    os_feedback fb, back;
    uint8_t signer[20];
    char err[OS_RECORD_ERR_LEN];
    json_t *again;

    if (os_feedback_parse(&fb, body, err, sizeof(err)) != OS_OK) {
        check_err(err, sizeof(err));
        return;
    }
    if (fb.latency_ms > OS_FEEDBACK_MAX_MS || fb.ttft_ms > OS_FEEDBACK_MAX_MS ||
        fb.nonce > INT64_MAX || memchr(fb.outcome, '\0', sizeof(fb.outcome)) == NULL)
        abort();
    (void)os_feedback_verify(signer, &fb, CHAIN_ID, escrow);
    if ((again = os_feedback_to_json(&fb)) == NULL)
        abort();
    if (os_feedback_parse(&back, again, NULL, 0) != OS_OK || memcmp(&back, &fb, sizeof(fb)) != 0)
        abort();
    json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body;

    /* a little over the registry's body cap, so the cap itself is exercised */
    if (size < 1 || size > OS_RECORD_MAX_BYTES + 16)
        return 0;
    if (os_init() != OS_OK)
        abort();
    if ((body = body_json((const char *)data + 1, size - 1)) == NULL)
        return 0;
    switch (data[0] % 3) {
    case 0:
        announce(body);
        break;
    case 1:
        heartbeat(body);
        break;
    default:
        feedback(body);
        break;
    }
    json_decref(body);
    return 0;
}
