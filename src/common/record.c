/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The signed messages of PROTOCOL.md §3–4: seller records, heartbeats and feedback. Parsers check
 * every field against the protocol before anything else reads it (exact key sets, types, ranges,
 * lengths, character sets) and explain a refusal by naming the field, never by quoting the input,
 * so the text can go back to a client and into a log. Every parse failure is OS_ERR_INVALID (a
 * missing field too), which the daemons answer with 400.
 *
 * Signatures are EIP-712 in the "OpenSeed" domain of a chain id, over the fixed-struct helpers of
 * eip712.h; Feedback, which only this module signs, is encoded here from its type string. A record
 * is signed over its JSON as sent (bodyHash is keccak256 of the canonical text), so the registry
 * can serve the record verbatim and a buyer can check that nothing was altered on the way.
 */
#include "openseed/record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/base64.h"
#include "openseed/ct.h"
#include "openseed/eip712.h"
#include "openseed/json.h"
#include "openseed/keccak.h"
#include "openseed/money.h"
#include "openseed/offering.h"
#include "openseed/ohttp.h"
#include "openseed/secp.h"

static const char *const api_names[] = {"openai.chat", "openai.embeddings", "anthropic.messages"};
#define N_APIS (sizeof(api_names) / sizeof(api_names[0]))

static const char *const outcomes[] = {"success", "error", "timeout", "refused", NULL};

static const char *const record_keys[] = {"node_id",   "endpoint", "seq",   "timestamp",
                                          "chain_id",  "escrow",   "asset", "ohttp_keys",
                                          "offerings", NULL};
static const char *const heartbeat_keys[] = {"node",      "load",      "endpoint", "seq",
                                             "timestamp", "signature", NULL};
static const char *const load_keys[] = {"active", "capacity", NULL};
static const char *const feedback_keys[] = {"node",    "outcome",   "latency_ms", "ttft_ms",
                                            "voucher", "signature", NULL};
static const char *const voucher_keys[] = {"channelId",    "cumulativeAmount", "nonce",
                                           "metadataHash", "signature",        NULL};

#define FEEDBACK_TYPE                                                                              \
    "Feedback(address node,string outcome,uint64 latencyMs,uint64 ttftMs,bytes32 channelId,"       \
    "uint256 cumulativeAmount,uint64 nonce,bytes32 metadataHash)"

static void clear_err(char *err, size_t errcap)
{
    if (err != NULL && errcap > 0)
        err[0] = '\0';
}

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

unsigned os_api_from_name(const char *name)
{
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < N_APIS; i++)
        if (strcmp(name, api_names[i]) == 0)
            return 1u << i;
    return 0;
}

const char *os_api_name(unsigned api_bit)
{
    for (size_t i = 0; i < N_APIS; i++)
        if (api_bit == 1u << i)
            return api_names[i];
    return NULL;
}

/* ------------------------------------------------------------------ field checks */

/*
 * An endpoint: "http://" or "https://", a non-empty authority of host characters (letters, digits,
 * '.', '-', '_', ':' and the brackets of an IPv6 literal, so no userinfo), then an optional path
 * and query of printable ASCII. No whitespace, controls, non-ASCII or fragment: the URL is used as
 * a base and shown to people, and one spelling per URL keeps signed text unambiguous.
 */
static int endpoint_ok(const char *s, size_t n)
{
    size_t i, host;

    if (n == 0 || n >= OS_RECORD_ENDPOINT_MAX)
        return 0;
    if (n > 8 && memcmp(s, "https://", 8) == 0)
        i = 8;
    else if (n > 7 && memcmp(s, "http://", 7) == 0)
        i = 7;
    else
        return 0;
    for (host = i; i < n && s[i] != '/' && s[i] != '?'; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']'))
            return 0;
    }
    if (i == host)
        return 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return 0;
    }
    return 1;
}

bool os_record_name_ok(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n >= OS_RECORD_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-'))
            return 0;
    }
    return 1;
}

static os_err get_endpoint(char out[OS_RECORD_ENDPOINT_MAX], const json_t *obj, const char *key,
                           char *err, size_t errcap)
{
    const char *s;
    size_t n = 0;
    os_err rc = os_json_at_str(&s, obj, key, OS_RECORD_ENDPOINT_MAX - 1, "", err, errcap);

    if (rc != OS_OK)
        return rc;
    n = strlen(s);
    if (!endpoint_ok(s, n))
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"%s\" must be an http:// or https:// URL with a host and no spaces, "
                       "control characters, user info or fragment",
                       key);
    memcpy(out, s, n + 1);
    return OS_OK;
}

/* ------------------------------------------------------------------ records */

/* One offering, read by offering.c's rules; its reasons get the record's "offerings[i]: " in front
 * (not "out of memory", which names no field). */
static os_err parse_offering(os_offering *o, const json_t *v, size_t idx, char *err, size_t errcap)
{
    char why[2 * OS_RECORD_ERR_LEN];
    os_err rc = os_offering_from_json(o, v, why, sizeof(why));

    if (rc == OS_OK)
        return OS_OK;
    if (rc == OS_ERR_NOMEM)
        return os_errf(err, errcap, rc, "%s", why);
    return os_errf(err, errcap, rc, "offerings[%zu]: %s", idx, why);
}

static os_err parse_record(os_record *r, const json_t *rec, char *err, size_t errcap)
{
    const json_t *arr, *item;
    const char *s;
    size_t n = 0, i;
    os_err rc;
    os_ohttp_keyconfig kc;

    if (!json_is_object(rec))
        return os_errf(err, errcap, OS_ERR_INVALID, "the record must be a JSON object");
    if (json_object_get(rec, "signature") != NULL)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "the record must not contain \"signature\" (it goes beside the record)");
    if ((rc = os_json_check_object(rec, record_keys, "", err, errcap)) != OS_OK ||
        (rc = os_json_at_address(r->node, rec, "node_id", "", err, errcap)) != OS_OK ||
        (rc = get_endpoint(r->endpoint, rec, "endpoint", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&r->seq, rec, "seq", 0, INT64_MAX, "", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&r->timestamp, rec, "timestamp", 0, INT64_MAX, "", err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_u64(&r->chain_id, rec, "chain_id", 0, INT64_MAX, "", err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_address(r->escrow, rec, "escrow", "", err, errcap)) != OS_OK ||
        (rc = os_json_at_address(r->asset, rec, "asset", "", err, errcap)) != OS_OK)
        return rc;

    if ((rc = os_json_at_str(&s, rec, "ohttp_keys", OS_BASE64_LEN(OS_RECORD_OHTTP_KEYS_MAX) - 1, "",
                             err, errcap)) != OS_OK)
        return rc;
    n = strlen(s);
    if (os_base64_decode(r->ohttp_keys, sizeof(r->ohttp_keys), &r->ohttp_keys_len, s, n) != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"ohttp_keys\" must be padded standard base64 of at most %d bytes",
                       OS_RECORD_OHTTP_KEYS_MAX);
    if (os_ohttp_keyconfig_parse(&kc, r->ohttp_keys, r->ohttp_keys_len) != OS_OK)
        return os_errf(
            err, errcap, OS_ERR_INVALID,
            "field \"ohttp_keys\" must be one RFC 9458 key configuration for X25519 with "
            "HKDF-SHA256 and AES-128-GCM");

    if ((rc = os_json_at_array(&arr, rec, "offerings", OS_RECORD_MAX_OFFERINGS, "", err, errcap)) !=
        OS_OK)
        return rc;
    if (json_array_size(arr) == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "field \"offerings\" must not be empty");
    json_array_foreach(arr, i, item)
    {
        if ((rc = parse_offering(&r->offerings[i], item, i, err, errcap)) != OS_OK)
            return rc;
    }
    r->n_offerings = json_array_size(arr);
    return OS_OK;
}

os_err os_record_parse(os_record *out, const json_t *record, char *err, size_t errcap)
{
    os_err rc;

    clear_err(err, errcap);
    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output record");
    memset(out, 0, sizeof(*out));
    if ((rc = parse_record(out, record, err, errcap)) != OS_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

json_t *os_record_to_json(const os_record *r)
{
    char b64[OS_BASE64_LEN(OS_RECORD_OHTTP_KEYS_MAX)];
    json_t *obj, *offerings = NULL;
    os_record *check;
    int ok;

    if (r == NULL || r->n_offerings > OS_RECORD_MAX_OFFERINGS ||
        r->ohttp_keys_len > OS_RECORD_OHTTP_KEYS_MAX ||
        !terminated(r->endpoint, sizeof(r->endpoint)) ||
        os_base64_encode(b64, sizeof(b64), r->ohttp_keys, r->ohttp_keys_len) != OS_OK)
        return NULL;
    obj = json_object();
    ok = obj != NULL && os_json_put(obj, "node_id", os_json_address(r->node)) &&
         os_json_put(obj, "endpoint", json_string(r->endpoint)) &&
         os_json_put(obj, "seq", os_json_u64(r->seq)) &&
         os_json_put(obj, "timestamp", os_json_u64(r->timestamp)) &&
         os_json_put(obj, "chain_id", os_json_u64(r->chain_id)) &&
         os_json_put(obj, "escrow", os_json_address(r->escrow)) &&
         os_json_put(obj, "asset", os_json_address(r->asset)) &&
         os_json_put(obj, "ohttp_keys", json_string(b64)) &&
         (offerings = os_json_child(obj, "offerings", json_array())) != NULL;
    for (size_t i = 0; ok && i < r->n_offerings; i++)
        ok = json_array_append_new(offerings, os_offering_to_json(&r->offerings[i])) == 0;
    /* Never hand out a record our own parser would refuse (the seller would only learn at the
     * registry). */
    check = ok ? malloc(sizeof(*check)) : NULL;
    ok = check != NULL && os_record_parse(check, obj, NULL, 0) == OS_OK;
    free(check);
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

os_err os_record_body_hash(uint8_t out[32], const json_t *record)
{
    json_t *copy = NULL;
    const json_t *v = record;
    char *text;
    size_t len;
    os_err rc;

    if (out == NULL || !json_is_object(record))
        return OS_ERR_INVALID;
    if (json_object_get(record, "signature") != NULL) {
        /* a shallow copy: dropping a key from it leaves the caller's object alone */
        if ((copy = json_copy((json_t *)record)) == NULL)
            return OS_ERR_NOMEM;
        json_object_del(copy, "signature");
        v = copy;
    }
    rc = os_json_dump_canonical(v, &text, &len);
    json_decref(copy);
    if (rc != OS_OK)
        return rc;
    os_keccak256(out, text, len);
    free(text);
    return OS_OK;
}

os_err os_record_digest(uint8_t out[32], const json_t *record, const os_record *parsed)
{
    uint8_t body[32], domain[32], st[32];
    os_record *tmp = NULL;
    os_err rc;

    if (out == NULL || record == NULL)
        return OS_ERR_INVALID;
    if (parsed == NULL) {
        if ((tmp = malloc(sizeof(*tmp))) == NULL)
            return OS_ERR_NOMEM;
        if ((rc = os_record_parse(tmp, record, NULL, 0)) != OS_OK)
            goto done;
        parsed = tmp;
    }
    if (!terminated(parsed->endpoint, sizeof(parsed->endpoint))) {
        rc = OS_ERR_INVALID;
        goto done;
    }
    if ((rc = os_record_body_hash(body, record)) != OS_OK)
        goto done;
    os_eip712_seller_record_hash(st, parsed->node, parsed->endpoint, parsed->seq, parsed->timestamp,
                                 body);
    os_eip712_openseed_domain(domain, parsed->chain_id);
    os_eip712_digest(out, domain, st);
done:
    free(tmp);
    return rc;
}

/* OS_OK when priv is the key of addr; OS_ERR_INVALID when it is another key. */
static os_err key_matches(const uint8_t priv[32], const uint8_t addr[20])
{
    uint8_t mine[20];
    os_err rc = os_secp_address(mine, priv);

    if (rc != OS_OK)
        return rc;
    return os_ct_eq(mine, addr, 20) ? OS_OK : OS_ERR_INVALID;
}

os_err os_record_sign(uint8_t sig[65], const json_t *record, const uint8_t priv[32])
{
    uint8_t digest[32];
    os_record *r;
    os_err rc;

    if (sig == NULL || priv == NULL)
        return OS_ERR_INVALID;
    memset(sig, 0, 65);
    if ((r = malloc(sizeof(*r))) == NULL)
        return OS_ERR_NOMEM;
    if ((rc = os_record_parse(r, record, NULL, 0)) == OS_OK &&
        (rc = key_matches(priv, r->node)) == OS_OK &&
        (rc = os_record_digest(digest, record, r)) == OS_OK)
        rc = os_secp_sign(sig, priv, digest);
    free(r);
    return rc;
}

os_err os_record_verify(os_record *out, const json_t *record, const uint8_t sig[65], char *err,
                        size_t errcap)
{
    uint8_t digest[32];
    os_err rc;

    clear_err(err, errcap);
    if (out == NULL || sig == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no record or signature");
    if ((rc = os_record_parse(out, record, err, errcap)) != OS_OK)
        return rc;
    if ((rc = os_record_digest(digest, record, out)) != OS_OK) {
        memset(out, 0, sizeof(*out));
        return os_errf(err, errcap, rc, "cannot hash the record");
    }
    if (os_secp_verify(out->node, digest, sig) != OS_OK) {
        memset(out, 0, sizeof(*out));
        return os_errf(err, errcap, OS_ERR_CRYPTO,
                       "signature is not a valid low-s signature of the record by node_id");
    }
    return OS_OK;
}

/* ------------------------------------------------------------------ heartbeats */

static os_err parse_heartbeat(os_heartbeat *hb, const json_t *body, char *err, size_t errcap)
{
    const json_t *load;
    uint64_t active, capacity;
    os_err rc;

    if ((rc = os_json_check_object(body, heartbeat_keys, "", err, errcap)) != OS_OK ||
        (rc = os_json_at_address(hb->node, body, "node", "", err, errcap)) != OS_OK ||
        (rc = get_endpoint(hb->endpoint, body, "endpoint", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&hb->seq, body, "seq", 0, INT64_MAX, "", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&hb->timestamp, body, "timestamp", 0, INT64_MAX, "", err, errcap)) !=
            OS_OK)
        return rc;
    if ((rc = os_json_at_object(&load, body, "load", "", err, errcap)) != OS_OK ||
        (rc = os_json_check_object(load, load_keys, "load: ", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&active, load, "active", 0, UINT32_MAX, "load: ", err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_u64(&capacity, load, "capacity", 1, UINT32_MAX, "load: ", err, errcap)) !=
            OS_OK)
        return rc;
    hb->active = (uint32_t)active;
    hb->capacity = (uint32_t)capacity;
    return os_json_at_hex(hb->sig, 65, body, "signature", "", err, errcap);
}

os_err os_heartbeat_parse(os_heartbeat *out, const json_t *body, char *err, size_t errcap)
{
    os_err rc;

    clear_err(err, errcap);
    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output heartbeat");
    memset(out, 0, sizeof(*out));
    if ((rc = parse_heartbeat(out, body, err, errcap)) != OS_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

os_err os_heartbeat_digest(uint8_t out[32], const os_heartbeat *hb, uint64_t chain_id)
{
    uint8_t domain[32], st[32];

    if (out == NULL || hb == NULL || !terminated(hb->endpoint, sizeof(hb->endpoint)))
        return OS_ERR_INVALID;
    os_eip712_heartbeat_hash(st, hb->node, hb->endpoint, hb->seq, hb->timestamp);
    os_eip712_openseed_domain(domain, chain_id);
    os_eip712_digest(out, domain, st);
    return OS_OK;
}

os_err os_heartbeat_sign(os_heartbeat *hb, const uint8_t priv[32], uint64_t chain_id)
{
    uint8_t digest[32];
    os_err rc;

    if (hb == NULL || priv == NULL)
        return OS_ERR_INVALID;
    memset(hb->sig, 0, sizeof(hb->sig));
    if (!terminated(hb->endpoint, sizeof(hb->endpoint)) ||
        !endpoint_ok(hb->endpoint, strlen(hb->endpoint)) || hb->seq > INT64_MAX ||
        hb->timestamp > INT64_MAX || hb->capacity == 0)
        return OS_ERR_INVALID;
    if ((rc = key_matches(priv, hb->node)) != OS_OK ||
        (rc = os_heartbeat_digest(digest, hb, chain_id)) != OS_OK)
        return rc;
    return os_secp_sign(hb->sig, priv, digest);
}

os_err os_heartbeat_verify(const os_heartbeat *hb, uint64_t chain_id)
{
    uint8_t digest[32];
    os_err rc;

    if (hb == NULL)
        return OS_ERR_INVALID;
    if ((rc = os_heartbeat_digest(digest, hb, chain_id)) != OS_OK)
        return rc;
    return os_secp_verify(hb->node, digest, hb->sig) == OS_OK ? OS_OK : OS_ERR_CRYPTO;
}

json_t *os_heartbeat_to_json(const os_heartbeat *hb)
{
    json_t *obj, *load = NULL;
    int ok;

    if (hb == NULL || !terminated(hb->endpoint, sizeof(hb->endpoint)))
        return NULL;
    obj = json_object();
    ok = obj != NULL && os_json_put(obj, "node", os_json_address(hb->node)) &&
         os_json_put(obj, "endpoint", json_string(hb->endpoint)) &&
         os_json_put(obj, "seq", os_json_u64(hb->seq)) &&
         os_json_put(obj, "timestamp", os_json_u64(hb->timestamp)) &&
         (load = os_json_child(obj, "load", json_object())) != NULL &&
         os_json_put(load, "active", os_json_u64(hb->active)) &&
         os_json_put(load, "capacity", os_json_u64(hb->capacity)) &&
         os_json_put(obj, "signature", os_json_hex(hb->sig, 65));
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* ------------------------------------------------------------------ feedback */

static os_err parse_feedback(os_feedback *fb, const json_t *body, char *err, size_t errcap)
{
    const json_t *voucher;
    const char *s;
    size_t n = 0;
    os_err rc;

    const char *w = "voucher: ";

    if ((rc = os_json_check_object(body, feedback_keys, "", err, errcap)) != OS_OK ||
        (rc = os_json_at_address(fb->node, body, "node", "", err, errcap)) != OS_OK ||
        (rc = os_json_at_str(&s, body, "outcome", OS_FEEDBACK_OUTCOME_MAX - 1, "", err, errcap)) !=
            OS_OK)
        return rc;
    n = strlen(s);
    if (!in_list(s, outcomes))
        return os_errf(
            err, errcap, OS_ERR_INVALID,
            "field \"outcome\" must be \"success\", \"error\", \"timeout\" or \"refused\"");
    memcpy(fb->outcome, s, n + 1);
    if ((rc = os_json_at_u64(&fb->latency_ms, body, "latency_ms", 0, OS_FEEDBACK_MAX_MS, "", err,
                             errcap)) != OS_OK ||
        (rc = os_json_at_u64(&fb->ttft_ms, body, "ttft_ms", 0, OS_FEEDBACK_MAX_MS, "", err,
                             errcap)) != OS_OK ||
        (rc = os_json_at_object(&voucher, body, "voucher", "", err, errcap)) != OS_OK ||
        (rc = os_json_check_object(voucher, voucher_keys, w, err, errcap)) != OS_OK ||
        (rc = os_json_at_hex(fb->channel_id, 32, voucher, "channelId", w, err, errcap)) != OS_OK ||
        (rc = os_json_at_u64_str(&fb->cumulative_amount, voucher, "cumulativeAmount", w, err,
                                 errcap)) != OS_OK ||
        (rc = os_json_at_u64(&fb->nonce, voucher, "nonce", 0, INT64_MAX, w, err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_hex(fb->metadata_hash, 32, voucher, "metadataHash", w, err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_hex(fb->voucher_sig, 65, voucher, "signature", w, err, errcap)) != OS_OK)
        return rc;
    return os_json_at_hex(fb->sig, 65, body, "signature", "", err, errcap);
}

os_err os_feedback_parse(os_feedback *out, const json_t *body, char *err, size_t errcap)
{
    os_err rc;

    clear_err(err, errcap);
    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output feedback");
    memset(out, 0, sizeof(*out));
    if ((rc = parse_feedback(out, body, err, errcap)) != OS_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

static void word_u64(uint8_t w[32], uint64_t v)
{
    memset(w, 0, 24);
    for (int i = 0; i < 8; i++)
        w[31 - i] = (uint8_t)(v >> (8 * i));
}

static int outcome_ok(const os_feedback *fb)
{
    return terminated(fb->outcome, sizeof(fb->outcome)) && in_list(fb->outcome, outcomes);
}

os_err os_feedback_digest(uint8_t out[32], const os_feedback *fb, uint64_t chain_id)
{
    uint8_t w[32], domain[32], st[32];
    os_keccak_ctx k;

    if (out == NULL || fb == NULL || !outcome_ok(fb))
        return OS_ERR_INVALID;
    os_keccak256_init(&k);
    os_keccak256(w, FEEDBACK_TYPE, sizeof(FEEDBACK_TYPE) - 1);
    os_keccak256_update(&k, w, 32);
    memset(w, 0, 12);
    memcpy(w + 12, fb->node, 20);
    os_keccak256_update(&k, w, 32);
    os_keccak256(w, fb->outcome, strlen(fb->outcome));
    os_keccak256_update(&k, w, 32);
    word_u64(w, fb->latency_ms);
    os_keccak256_update(&k, w, 32);
    word_u64(w, fb->ttft_ms);
    os_keccak256_update(&k, w, 32);
    os_keccak256_update(&k, fb->channel_id, 32);
    word_u64(w, fb->cumulative_amount);
    os_keccak256_update(&k, w, 32);
    word_u64(w, fb->nonce);
    os_keccak256_update(&k, w, 32);
    os_keccak256_update(&k, fb->metadata_hash, 32);
    os_keccak256_final(&k, st);
    os_eip712_openseed_domain(domain, chain_id);
    os_eip712_digest(out, domain, st);
    return OS_OK;
}

os_err os_feedback_voucher_digest(uint8_t out[32], const os_feedback *fb, uint64_t chain_id,
                                  const uint8_t escrow[20])
{
    uint8_t domain[32], st[32];

    if (out == NULL || fb == NULL || escrow == NULL)
        return OS_ERR_INVALID;
    os_eip712_spending_auth_hash(st, fb->channel_id, fb->cumulative_amount, fb->nonce,
                                 fb->metadata_hash);
    os_eip712_channels_domain(domain, chain_id, escrow);
    os_eip712_digest(out, domain, st);
    return OS_OK;
}

os_err os_feedback_sign(os_feedback *fb, const uint8_t priv[32], uint64_t chain_id,
                        const uint8_t escrow[20])
{
    uint8_t addr[20], vd[32], fd[32];
    os_err rc;

    if (fb == NULL || priv == NULL || escrow == NULL)
        return OS_ERR_INVALID;
    memset(fb->sig, 0, sizeof(fb->sig));
    if (!outcome_ok(fb) || fb->latency_ms > OS_FEEDBACK_MAX_MS ||
        fb->ttft_ms > OS_FEEDBACK_MAX_MS || fb->nonce > INT64_MAX)
        return OS_ERR_INVALID;
    if ((rc = os_secp_address(addr, priv)) != OS_OK ||
        (rc = os_feedback_voucher_digest(vd, fb, chain_id, escrow)) != OS_OK ||
        (rc = os_feedback_digest(fd, fb, chain_id)) != OS_OK)
        return rc;
    if (os_ct_is_zero(fb->voucher_sig, sizeof(fb->voucher_sig))) {
        if ((rc = os_secp_sign(fb->voucher_sig, priv, vd)) != OS_OK)
            return rc;
    } else if (os_secp_verify(addr, vd, fb->voucher_sig) != OS_OK) {
        /* feedback by one key over a voucher by another would never verify */
        return OS_ERR_CRYPTO;
    }
    return os_secp_sign(fb->sig, priv, fd);
}

os_err os_feedback_verify(uint8_t signer[20], const os_feedback *fb, uint64_t chain_id,
                          const uint8_t escrow[20])
{
    uint8_t vd[32], fd[32], va[20], fa[20];
    os_err rc;

    if (signer == NULL || fb == NULL || escrow == NULL)
        return OS_ERR_INVALID;
    memset(signer, 0, 20);
    if ((rc = os_feedback_voucher_digest(vd, fb, chain_id, escrow)) != OS_OK ||
        (rc = os_feedback_digest(fd, fb, chain_id)) != OS_OK)
        return rc;
    if (os_secp_recover(va, vd, fb->voucher_sig) != OS_OK ||
        os_secp_recover(fa, fd, fb->sig) != OS_OK || !os_ct_eq(va, fa, 20))
        return OS_ERR_CRYPTO;
    memcpy(signer, fa, 20);
    return OS_OK;
}

json_t *os_feedback_to_json(const os_feedback *fb)
{
    json_t *obj, *v = NULL;
    int ok;

    if (fb == NULL || !outcome_ok(fb))
        return NULL;
    obj = json_object();
    ok = obj != NULL && os_json_put(obj, "node", os_json_address(fb->node)) &&
         os_json_put(obj, "outcome", json_string(fb->outcome)) &&
         os_json_put(obj, "latency_ms", os_json_u64(fb->latency_ms)) &&
         os_json_put(obj, "ttft_ms", os_json_u64(fb->ttft_ms)) &&
         (v = os_json_child(obj, "voucher", json_object())) != NULL &&
         os_json_put(v, "channelId", os_json_hex(fb->channel_id, 32)) &&
         os_json_put(v, "cumulativeAmount", os_money_to_json(fb->cumulative_amount)) &&
         os_json_put(v, "nonce", os_json_u64(fb->nonce)) &&
         os_json_put(v, "metadataHash", os_json_hex(fb->metadata_hash, 32)) &&
         os_json_put(v, "signature", os_json_hex(fb->voucher_sig, 65)) &&
         os_json_put(obj, "signature", os_json_hex(fb->sig, 65));
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
