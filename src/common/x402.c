/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The x402 v2 payment headers of PROTOCOL.md §7 (scheme "openseed-channel"): PAYMENT-REQUIRED,
 * PAYMENT-SIGNATURE and PAYMENT-RESPONSE, each base64 of compact JSON. Encoders write exactly one
 * form (fixed key order, amounts as canonical decimal strings, hashes and signatures as 0x +
 * lower-case hex, addresses EIP-55) and refuse to produce a value their own decoder would refuse.
 * Decoders bound the header, the decoded bytes and the JSON depth before anything else, refuse
 * unknown fields at every level of our scheme's objects, and explain a refusal by naming the field,
 * never by quoting the input, so the text can go back to a peer and into a log. Every malformed
 * value is OS_ERR_INVALID.
 */
#include "openseed/x402.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/base64.h"
#include "openseed/hex.h"
#include "openseed/json.h"
#include "openseed/money.h"

#define TMP_ERR_LEN OS_JSON_ERR_LEN
#define NETWORK_PREFIX "eip155:"
#define NETWORK_MAX 32 /* "eip155:" and 20 digits, with room */
#define DOMAIN_NAME "OpenSeedChannels"
#define DOMAIN_VERSION "1"
#define SIG_LEN 65

static const char *const required_keys[] = {"x402Version", "error", "resource", "accepts", NULL};
static const char *const resource_keys[] = {"url", NULL};
static const char *const entry_keys[] = {"scheme", "network",           "amount", "asset",
                                         "payTo",  "maxTimeoutSeconds", "extra",  NULL};
static const char *const extra_keys[] = {"escrow",  "channelId", "consumed",     "authorized",
                                         "nonce",   "reserved",  "metadataHash", "name",
                                         "version", NULL};
static const char *const payment_keys[] = {"x402Version", "accepted", "payload", NULL};
static const char *const payload_keys[] = {"channelId",    "cumulativeAmount", "nonce",
                                           "metadataHash", "signature",        NULL};
static const char *const response_keys[] = {"success", "network", "amount", "payer", NULL};

/* ------------------------------------------------------------------ field checks */

/* "0x" + exactly 2*len lower-case hex digits: byte strings have one spelling on the wire. */
static os_err get_lower_hex(uint8_t *out, size_t len, const json_t *obj, const char *key,
                            const char *where, char *err, size_t errcap)
{
    const char *s;
    os_err rc = os_json_at_str(&s, obj, key, 2 + 2 * len, where, err, errcap);

    if (rc != OS_OK)
        return rc;
    int ok = strlen(s) == 2 + 2 * len && s[0] == '0' && s[1] == 'x';
    for (size_t i = 2; ok && s[i] != '\0'; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!ok || os_hex_decode_exact(out, len, s) != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%sfield \"%s\" must be 0x and %zu lower-case hex digits", where, key,
                       2 * len);
    return OS_OK;
}

/* network "eip155:<chain id>", the id a canonical decimal integer >= 1. */
static os_err get_network(uint64_t *chain_id, const json_t *obj, const char *key, const char *where,
                          char *err, size_t errcap)
{
    const char *s;
    uint64_t id;
    os_err rc = os_json_at_str(&s, obj, key, NETWORK_MAX, where, err, errcap);

    if (rc != OS_OK)
        return rc;
    if (strncmp(s, NETWORK_PREFIX, strlen(NETWORK_PREFIX)) != 0 ||
        os_money_parse_units(&id, s + strlen(NETWORK_PREFIX)) != OS_OK || id == 0)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%sfield \"%s\" must be \"eip155:\" and a chain id", where, key);
    *chain_id = id;
    return OS_OK;
}

/* A string field that must equal want exactly. */
static os_err get_const(const json_t *obj, const char *key, const char *want, const char *where,
                        char *err, size_t errcap)
{
    const char *s;
    os_err rc = os_json_at_str(&s, obj, key, strlen(want), where, err, errcap);

    if (rc != OS_OK && rc != OS_ERR_INVALID)
        return rc;
    if (rc != OS_OK || strcmp(s, want) != 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "%sfield \"%s\" must be \"%s\"", where, key,
                       want);
    return OS_OK;
}

/* The error code of PAYMENT-REQUIRED: snake_case, 1..OS_X402_ERROR_MAX-1 bytes. */
static int code_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n >= 1 && n < OS_X402_ERROR_MAX;
}

/* A resource URL: 1..OS_X402_RESOURCE_MAX-1 bytes of printable ASCII without spaces. */
static int resource_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (s[n] < 0x21 || s[n] > 0x7e)
            return 0;
    return n >= 1 && n < OS_X402_RESOURCE_MAX;
}

/* ------------------------------------------------------------------ decoding */

/*
 * Header value -> JSON root object with x402Version 2: the length cap, strict base64 and the
 * depth cap come before anything reads the content.
 */
static os_err decode_value(json_t **root, const char *value, int versioned, char *err,
                           size_t errcap)
{
    char tmp[TMP_ERR_LEN];
    uint8_t *buf = NULL;
    size_t n, len = 0;
    uint64_t version;
    os_err rc;

    *root = NULL;
    if (value == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "missing header value");
    n = strnlen(value, OS_X402_HEADER_MAX + 1);
    if (n > OS_X402_HEADER_MAX)
        return os_errf(err, errcap, OS_ERR_INVALID, "header value longer than %d characters",
                       OS_X402_HEADER_MAX);
    if (n == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "empty header value");
    rc = os_base64_decode_alloc(&buf, &len, value, n, (n / 4) * 3);
    if (rc == OS_ERR_NOMEM)
        return os_errf(err, errcap, rc, "out of memory");
    if (rc != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID, "header value is not padded standard base64");
    rc = os_json_parse(root, (const char *)buf, len, len, OS_X402_JSON_DEPTH, tmp, sizeof(tmp));
    free(buf);
    if (rc != OS_OK)
        return os_json_err_at(rc, "header JSON: ", tmp, err, errcap);
    if (!json_is_object(*root)) {
        rc = os_errf(err, errcap, OS_ERR_INVALID, "header JSON must be an object");
    } else if (versioned) {
        rc = os_json_at_u64(&version, *root, "x402Version", OS_X402_VERSION, OS_X402_VERSION, "",
                            err, errcap);
    }
    if (rc != OS_OK) {
        json_decref(*root);
        *root = NULL;
    }
    return rc;
}

/* One accepts entry (or the accepted echo) of our scheme, into *r (written only on success). */
static os_err parse_requirement(os_x402_requirement *r, const json_t *v, const char *where,
                                char *err, size_t errcap)
{
    char ewhere[48];
    os_x402_requirement x;
    const json_t *extra;
    uint64_t t;
    int n_chan;
    os_err rc;

    memset(&x, 0, sizeof(x));
    if ((rc = os_json_check_object(v, entry_keys, where, err, errcap)) != OS_OK ||
        (rc = get_const(v, "scheme", OS_X402_SCHEME, where, err, errcap)) != OS_OK ||
        (rc = get_network(&x.chain_id, v, "network", where, err, errcap)) != OS_OK ||
        (rc = os_json_at_u64_str(&x.amount, v, "amount", where, err, errcap)) != OS_OK ||
        (rc = os_json_at_address(x.asset, v, "asset", where, err, errcap)) != OS_OK ||
        (rc = os_json_at_address(x.pay_to, v, "payTo", where, err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&t, v, "maxTimeoutSeconds", 0, UINT32_MAX, where, err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_object(&extra, v, "extra", where, err, errcap)) != OS_OK)
        return rc;
    x.max_timeout_s = (uint32_t)t;

    snprintf(ewhere, sizeof(ewhere), "%sextra: ", where);
    if ((rc = os_json_check_object(extra, extra_keys, ewhere, err, errcap)) != OS_OK ||
        (rc = os_json_at_address(x.escrow, extra, "escrow", ewhere, err, errcap)) != OS_OK ||
        (rc = get_const(extra, "name", DOMAIN_NAME, ewhere, err, errcap)) != OS_OK ||
        (rc = get_const(extra, "version", DOMAIN_VERSION, ewhere, err, errcap)) != OS_OK)
        return rc;

    /* The channel's view comes whole or not at all: a partial one cannot be built on. */
    n_chan = (json_object_get(extra, "channelId") != NULL) +
             (json_object_get(extra, "consumed") != NULL) +
             (json_object_get(extra, "authorized") != NULL) +
             (json_object_get(extra, "nonce") != NULL);
    if (n_chan != 0 && n_chan != 4)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%schannelId, consumed, authorized and nonce go together", ewhere);
    if (n_chan == 4) {
        x.has_channel = true;
        if ((rc = get_lower_hex(x.channel_id, 32, extra, "channelId", ewhere, err, errcap)) !=
                OS_OK ||
            (rc = os_json_at_u64_str(&x.consumed, extra, "consumed", ewhere, err, errcap)) !=
                OS_OK ||
            (rc = os_json_at_u64_str(&x.authorized, extra, "authorized", ewhere, err, errcap)) !=
                OS_OK ||
            (rc = os_json_at_u64(&x.nonce, extra, "nonce", 0, INT64_MAX, ewhere, err, errcap)) !=
                OS_OK)
            return rc;
    }
    /* reserved splits consumed (booked + in flight), so it means nothing without it */
    if (json_object_get(extra, "reserved") != NULL) {
        if (!x.has_channel)
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "%sreserved goes with channelId, consumed, authorized and nonce",
                           ewhere);
        if ((rc = os_json_at_u64_str(&x.reserved, extra, "reserved", ewhere, err, errcap)) != OS_OK)
            return rc;
        if (x.reserved > x.consumed)
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "%sfield \"reserved\" must not be above \"consumed\"", ewhere);
        x.has_reserved = true;
    }
    if (json_object_get(extra, "metadataHash") != NULL) {
        x.has_metadata_hash = true;
        if ((rc = get_lower_hex(x.metadata_hash, 32, extra, "metadataHash", ewhere, err, errcap)) !=
            OS_OK)
            return rc;
    }
    *r = x;
    return OS_OK;
}

os_err os_x402_required_decode(os_x402_requirement *r, char *error, size_t error_cap,
                               const char *value, char *err, size_t errcap)
{
    char where[32];
    json_t *root;
    const json_t *resource, *accepts, *item = NULL, *scheme = NULL;
    const char *code, *url;
    size_t i;
    os_err rc;

    if (r == NULL || (error == NULL && error_cap != 0))
        return os_errf(err, errcap, OS_ERR_INVALID, "bad arguments");
    if ((rc = decode_value(&root, value, 1, err, errcap)) != OS_OK)
        return rc;
    if ((rc = os_json_check_object(root, required_keys, "", err, errcap)) != OS_OK ||
        (rc = os_json_at_str(&code, root, "error", OS_X402_ERROR_MAX - 1, "", err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_object(&resource, root, "resource", "", err, errcap)) != OS_OK ||
        (rc = os_json_check_object(resource, resource_keys, "resource: ", err, errcap)) != OS_OK ||
        (rc = os_json_at_str(&url, resource, "url", OS_X402_RESOURCE_MAX - 1, "resource: ", err,
                             errcap)) != OS_OK)
        goto out;
    if (!code_ok(code)) {
        rc = os_errf(err, errcap, OS_ERR_INVALID,
                     "field \"error\" must be a code of lower-case letters, digits and '_'");
        goto out;
    }
    if (!resource_ok(url)) {
        rc = os_errf(err, errcap, OS_ERR_INVALID,
                     "resource: field \"url\" must be printable ASCII without spaces");
        goto out;
    }
    if ((rc = os_json_at_array(&accepts, root, "accepts", OS_X402_MAX_ACCEPTS, "", err, errcap)) !=
        OS_OK)
        goto out;
    /* Entries of other schemes are another protocol's business: only their scheme is read. */
    json_array_foreach(accepts, i, item)
    {
        scheme = json_is_object(item) ? json_object_get(item, "scheme") : NULL;
        if (!json_is_string(scheme)) {
            rc = os_errf(err, errcap, OS_ERR_INVALID,
                         "accepts[%zu] must be an object with a string \"scheme\"", i);
            goto out;
        }
        if (strcmp(json_string_value(scheme), OS_X402_SCHEME) == 0 &&
            json_string_length(scheme) == strlen(OS_X402_SCHEME))
            break;
    }
    if (i == json_array_size(accepts)) {
        rc = os_errf(err, errcap, OS_ERR_NOTFOUND, "no \"%s\" entry in accepts", OS_X402_SCHEME);
        goto out;
    }
    snprintf(where, sizeof(where), "accepts[%zu]: ", i);
    if (error != NULL && strlen(code) >= error_cap) {
        rc = os_errf(err, errcap, OS_ERR_INVALID, "field \"error\" is too long for the buffer");
        goto out;
    }
    rc = parse_requirement(r, item, where, err, errcap);
    if (rc == OS_OK && error != NULL)
        memcpy(error, code, strlen(code) + 1);
out:
    json_decref(root);
    return rc;
}

os_err os_x402_payment_decode(os_voucher *v, os_x402_requirement *accepted, const char *value,
                              char *err, size_t errcap)
{
    const char *w = "payload: ";
    os_x402_requirement acc;
    os_voucher x;
    json_t *root;
    const json_t *a, *p;
    os_err rc;

    if (v == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "bad arguments");
    if ((rc = decode_value(&root, value, 1, err, errcap)) != OS_OK)
        return rc;
    memset(&x, 0, sizeof(x));
    if ((rc = os_json_check_object(root, payment_keys, "", err, errcap)) == OS_OK &&
        (rc = os_json_at_object(&a, root, "accepted", "", err, errcap)) == OS_OK &&
        (rc = parse_requirement(&acc, a, "accepted: ", err, errcap)) == OS_OK &&
        (rc = os_json_at_object(&p, root, "payload", "", err, errcap)) == OS_OK &&
        (rc = os_json_check_object(p, payload_keys, w, err, errcap)) == OS_OK &&
        (rc = get_lower_hex(x.channel_id, 32, p, "channelId", w, err, errcap)) == OS_OK &&
        (rc = os_json_at_u64_str(&x.cumulative_amount, p, "cumulativeAmount", w, err, errcap)) ==
            OS_OK &&
        (rc = os_json_at_u64(&x.nonce, p, "nonce", 0, INT64_MAX, w, err, errcap)) == OS_OK &&
        (rc = get_lower_hex(x.metadata_hash, 32, p, "metadataHash", w, err, errcap)) == OS_OK &&
        (rc = get_lower_hex(x.sig, SIG_LEN, p, "signature", w, err, errcap)) == OS_OK) {
        *v = x;
        if (accepted != NULL)
            *accepted = acc;
    }
    json_decref(root);
    return rc;
}

os_err os_x402_response_decode(bool *success, uint64_t *chain_id, uint64_t *amount,
                               uint8_t channel_id[32], const char *value, char *err, size_t errcap)
{
    char tmp[TMP_ERR_LEN];
    uint8_t id[32];
    uint64_t chain, amt;
    bool ok;
    json_t *root;
    os_err rc;

    if (success == NULL || chain_id == NULL || amount == NULL || channel_id == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "bad arguments");
    if ((rc = decode_value(&root, value, 0, err, errcap)) != OS_OK)
        return rc;
    if ((rc = os_json_check_object(root, response_keys, "", err, errcap)) == OS_OK &&
        (rc = os_json_err_at(os_json_get_bool(&ok, root, "success", tmp, sizeof(tmp)), "", tmp, err,
                             errcap)) == OS_OK &&
        (rc = get_network(&chain, root, "network", "", err, errcap)) == OS_OK &&
        (rc = os_json_at_u64_str(&amt, root, "amount", "", err, errcap)) == OS_OK &&
        (rc = get_lower_hex(id, 32, root, "payer", "", err, errcap)) == OS_OK) {
        *success = ok;
        *chain_id = chain;
        *amount = amt;
        memcpy(channel_id, id, 32);
    }
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------ encoding */

static json_t *json_network(uint64_t chain_id)
{
    char s[NETWORK_MAX + 1];
    snprintf(s, sizeof(s), NETWORK_PREFIX "%" PRIu64, chain_id);
    return json_string(s);
}

/* Whether r's channel fields are ones the decoder takes back. */
static int channel_ok(const os_x402_requirement *r)
{
    if (!r->has_channel)
        return !r->has_reserved;
    return r->nonce <= INT64_MAX && (!r->has_reserved || r->reserved <= r->consumed);
}

/* The accepts entry for r; NULL when r holds a value the wire cannot carry or memory runs out. */
static json_t *requirement_to_json(const os_x402_requirement *r)
{
    json_t *e, *extra = NULL;
    int ok;

    if (r->chain_id == 0 || !channel_ok(r))
        return NULL;
    e = json_object();
    ok = e != NULL && os_json_put(e, "scheme", json_string(OS_X402_SCHEME)) &&
         os_json_put(e, "network", json_network(r->chain_id)) &&
         os_json_put(e, "amount", os_money_to_json(r->amount)) &&
         os_json_put(e, "asset", os_json_address(r->asset)) &&
         os_json_put(e, "payTo", os_json_address(r->pay_to)) &&
         os_json_put(e, "maxTimeoutSeconds", os_json_u64(r->max_timeout_s)) &&
         (extra = os_json_child(e, "extra", json_object())) != NULL &&
         os_json_put(extra, "escrow", os_json_address(r->escrow));
    if (ok && r->has_channel)
        ok = os_json_put(extra, "channelId", os_json_hex(r->channel_id, 32)) &&
             os_json_put(extra, "consumed", os_money_to_json(r->consumed)) &&
             os_json_put(extra, "authorized", os_money_to_json(r->authorized)) &&
             os_json_put(extra, "nonce", os_json_u64(r->nonce));
    if (ok && r->has_channel && r->has_reserved)
        ok = os_json_put(extra, "reserved", os_money_to_json(r->reserved));
    if (ok && r->has_metadata_hash)
        ok = os_json_put(extra, "metadataHash", os_json_hex(r->metadata_hash, 32));
    ok = ok && os_json_put(extra, "name", json_string(DOMAIN_NAME)) &&
         os_json_put(extra, "version", json_string(DOMAIN_VERSION));
    if (!ok) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* Compact JSON of root, then base64; takes root. OS_ERR_TOOBIG past what decoders accept. */
static os_err finish(char **out, json_t *root)
{
    char *text, *b64;

    if (root == NULL)
        return OS_ERR_NOMEM;
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (text == NULL)
        return OS_ERR_NOMEM;
    b64 = os_base64_encode_alloc(text, strlen(text));
    free(text);
    if (b64 == NULL)
        return OS_ERR_NOMEM;
    if (strlen(b64) > OS_X402_HEADER_MAX) {
        free(b64);
        return OS_ERR_TOOBIG;
    }
    *out = b64;
    return OS_OK;
}

os_err os_x402_required_encode(char **out, const char *error, const char *resource,
                               const os_x402_requirement *r)
{
    json_t *root, *res = NULL, *accepts = NULL;
    int ok;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (error == NULL || resource == NULL || r == NULL || !code_ok(error) ||
        !resource_ok(resource) || r->chain_id == 0 || !channel_ok(r))
        return OS_ERR_INVALID;
    root = json_object();
    ok = root != NULL && os_json_put(root, "x402Version", json_integer(OS_X402_VERSION)) &&
         os_json_put(root, "error", json_string(error)) &&
         (res = os_json_child(root, "resource", json_object())) != NULL &&
         os_json_put(res, "url", json_string(resource)) &&
         (accepts = os_json_child(root, "accepts", json_array())) != NULL &&
         json_array_append_new(accepts, requirement_to_json(r)) == 0;
    if (!ok) {
        json_decref(root);
        return OS_ERR_NOMEM;
    }
    return finish(out, root);
}

os_err os_x402_payment_encode(char **out, const os_x402_requirement *accepted, const os_voucher *v)
{
    json_t *root, *payload = NULL;
    int ok;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (accepted == NULL || v == NULL || accepted->chain_id == 0 || !channel_ok(accepted) ||
        v->nonce > INT64_MAX)
        return OS_ERR_INVALID;
    root = json_object();
    ok = root != NULL && os_json_put(root, "x402Version", json_integer(OS_X402_VERSION)) &&
         os_json_put(root, "accepted", requirement_to_json(accepted)) &&
         (payload = os_json_child(root, "payload", json_object())) != NULL &&
         os_json_put(payload, "channelId", os_json_hex(v->channel_id, 32)) &&
         os_json_put(payload, "cumulativeAmount", os_money_to_json(v->cumulative_amount)) &&
         os_json_put(payload, "nonce", os_json_u64(v->nonce)) &&
         os_json_put(payload, "metadataHash", os_json_hex(v->metadata_hash, 32)) &&
         os_json_put(payload, "signature", os_json_hex(v->sig, SIG_LEN));
    if (!ok) {
        json_decref(root);
        return OS_ERR_NOMEM;
    }
    return finish(out, root);
}

os_err os_x402_response_encode(char **out, uint64_t chain_id, uint64_t amount,
                               const uint8_t channel_id[32])
{
    json_t *root;
    int ok;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (chain_id == 0 || channel_id == NULL)
        return OS_ERR_INVALID;
    root = json_object();
    ok = root != NULL && os_json_put(root, "success", json_true()) &&
         os_json_put(root, "network", json_network(chain_id)) &&
         os_json_put(root, "amount", os_money_to_json(amount)) &&
         os_json_put(root, "payer", os_json_hex(channel_id, 32));
    if (!ok) {
        json_decref(root);
        return OS_ERR_NOMEM;
    }
    return finish(out, root);
}
