/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the text parsers every daemon runs on bytes from the network before anything
 * else sees them. os_json_parse / os_json_parse_flags read every request and answer body (limits
 * as the registry's 64 KiB / depth 8, the seller's and buyer's 64-deep bodies, and the chain
 * client's 32-deep JSON-RPC answers with \u0000 allowed); os_money_parse_json and
 * os_money_parse_units read wire amounts, os_usdc_parse human amounts (config, CLI), os_u256_parse_dec
 * uint256 values, os_eip55_parse addresses, os_hex_decode and os_base64_decode_alloc the binary
 * fields and headers. The first byte picks the parser. A parse that succeeds must round-trip
 * through the matching formatter: every canonical form has exactly one spelling.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openseed/base64.h"
#include "openseed/hex.h"
#include "openseed/json.h"
#include "openseed/money.h"
#include "openseed/record.h"
#include "openseed/secp.h"
#include "openseed/u256.h"

#define MAX_INPUT (256u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The canonical text of a parsed value parses back (same limits) to the same canonical text. */
static void json_case(const char *s, size_t n, size_t max_bytes, int depth, unsigned flags)
{
    char err[OS_JSON_ERR_LEN], *c1 = NULL, *c2 = NULL;
    size_t l1 = 0, l2 = 0;
    json_t *v = NULL, *w = NULL;
    os_err rc;

    err[0] = '\0';
    rc = os_json_parse_flags(&v, s, n, max_bytes, depth, flags, err, sizeof(err));

    if (memchr(err, '\0', sizeof(err)) == NULL)
        abort();
    if (rc != OS_OK) {
        if (v != NULL)
            abort();
        return;
    }
    if (!json_is_object(v) && !json_is_array(v))
        abort();
    if (os_json_dump_canonical(v, &c1, &l1) != OS_OK)
        abort();
    if (os_json_parse_flags(&w, c1, l1, l1, depth, flags, NULL, 0) != OS_OK ||
        os_json_dump_canonical(w, &c2, &l2) != OS_OK || l1 != l2 || memcmp(c1, c2, l1) != 0)
        abort();
    free(c1);
    free(c2);
    json_decref(w);
    json_decref(v);
}

/* A wire amount inside a JSON array, as it arrives in a body; any JSON value gets tried. */
static void money_json_case(const char *s, size_t n)
{
    char *text = malloc(n + 2);
    json_t *arr = NULL, *back;
    uint64_t v;

    if (text == NULL)
        return;
    text[0] = '[';
    memcpy(text + 1, s, n);
    text[n + 1] = ']';
    if (os_json_parse(&arr, text, n + 2, n + 2, 8, NULL, 0) == OS_OK && json_array_size(arr) == 1 &&
        os_money_parse_json(&v, json_array_get(arr, 0)) == OS_OK) {
        const json_t *in = json_array_get(arr, 0);
        if ((back = os_money_to_json(v)) == NULL || !json_equal(back, (json_t *)in))
            abort();
        json_decref(back);
    }
    json_decref(arr);
    free(text);
}

static void units_case(const char *s)
{
    char out[OS_MONEY_UNITS_LEN];
    uint64_t v;

    if (os_money_parse_units(&v, s) != OS_OK)
        return;
    if (os_money_format_units(out, sizeof(out), v) != OS_OK || strcmp(out, s) != 0)
        abort();
}

static void usdc_case(const char *s)
{
    char out[OS_USDC_LEN];
    uint64_t v, w;

    if (os_usdc_parse(&v, s) != OS_OK)
        return;
    if (os_usdc_format(out, sizeof(out), v) != OS_OK || os_usdc_parse(&w, out) != OS_OK || v != w)
        abort();
}

static void u256_case(const char *s)
{
    char out[OS_U256_DEC_LEN];
    os_u256 v;

    if (os_u256_parse_dec(&v, s) != OS_OK)
        return;
    if (os_u256_format_dec(out, sizeof(out), &v) != OS_OK || strcmp(out, s) != 0)
        abort();
}

static void eip55_case(const char *s)
{
    char out[OS_ADDRESS_STR_LEN];
    uint8_t a[OS_ADDRESS_LEN];
    int lower = 0, upper = 0;

    if (os_eip55_parse(a, s) != OS_OK)
        return;
    os_eip55_format(out, a);
    if (strcasecmp(out, s) != 0)
        abort();
    for (const char *p = s + 2; *p; p++) {
        lower |= *p >= 'a' && *p <= 'f';
        upper |= *p >= 'A' && *p <= 'F';
    }
    /* mixed case is accepted only as the checksum spells it */
    if (lower && upper && strcmp(out, s) != 0)
        abort();
}

static void hex_case(const char *s, size_t n, uint8_t cap_sel)
{
    size_t cap = cap_sel % 2 ? n : (size_t)cap_sel, len = 0, skip;
    uint8_t *out = malloc(cap ? cap : 1);
    char *back;

    if (out == NULL)
        return;
    if (os_hex_decode(out, cap, &len, s, n) == OS_OK) {
        skip = n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 2 : 0;
        if (len > cap || len * 2 + skip != n || (back = malloc(OS_HEX_LEN(len))) == NULL)
            abort();
        if (os_hex_encode(back, OS_HEX_LEN(len), out, len, 0) != OS_OK ||
            strncasecmp(back, s + skip, 2 * len) != 0)
            abort();
        free(back);
    }
    free(out);
}

static void base64_case(const char *s, size_t n, uint8_t cap_sel)
{
    size_t max_out = cap_sel % 2 ? n : (size_t)cap_sel, len = 0;
    uint8_t *out = NULL;
    char *back;

    if (os_base64_decode_alloc(&out, &len, s, n, max_out) == OS_OK) {
        if (out == NULL || len > max_out || out[len] != 0 ||
            (back = os_base64_encode_alloc(out, len)) == NULL)
            abort();
        /* strict decoding: one text per byte string */
        if (strlen(back) != n || memcmp(back, s, n) != 0)
            abort();
        free(back);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in;
    char *s;
    size_t n;

    if (size < 2 || size > MAX_INPUT)
        return 0;
    in = (const char *)data + 2;
    n = size - 2;
    /* a NUL-terminated copy of exactly n bytes, so ASan sees any read past the input */
    if ((s = malloc(n + 1)) == NULL)
        return 0;
    memcpy(s, in, n);
    s[n] = '\0';
    switch (data[0] % 11) {
    case 0: /* registry request bodies */
        json_case(s, n, OS_RECORD_MAX_BYTES, 8, 0);
        break;
    case 1: /* buyer client bodies, seller plaintexts: capped at their own length, 64 deep */
        json_case(s, n, n, 64, 0);
        break;
    case 2: /* chain JSON-RPC answers */
        json_case(s, n, n, 32, OS_JSON_ALLOW_NUL);
        break;
    case 3: /* the second byte as the depth cap, down to 1 */
        json_case(s, n, n, 1 + data[1] % 16, data[1] & 0x80 ? OS_JSON_ALLOW_NUL : 0);
        break;
    case 4:
        money_json_case(s, n);
        break;
    case 5:
        units_case(s);
        break;
    case 6:
        usdc_case(s);
        break;
    case 7:
        u256_case(s);
        break;
    case 8:
        eip55_case(s);
        break;
    case 9:
        hex_case(s, n, data[1]);
        break;
    default:
        base64_case(s, n, data[1]);
        break;
    }
    free(s);
    return 0;
}
