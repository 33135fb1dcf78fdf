/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small command-line front end to libcommon's EIP-712 engine, for the ethers cross-check
 * (tests/crosscheck/eip712.sh) and for poking at documents by hand. It reads one
 * eth_signTypedData_v4 JSON document from stdin (bounded) and:
 *   os_eip712_tool digest              prints the 0x digest
 *   os_eip712_tool sign <privhex>      prints the digest and the 65-byte signature
 *   os_eip712_tool recover <sighex>    prints the signer's EIP-55 address
 *   os_eip712_tool batch               reads JSON lines {"typed":{…},"key":"0x…","verify":"0x…"}
 *                                      ("key" and "verify" optional) and answers one JSON line
 *                                      each: {"digest","signature","recovered"} or {"error"}
 * Exit status 0 on success, 1 on a refused document or signature, 2 on usage or I/O errors.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/ct.h"
#include "openseed/eip712.h"
#include "openseed/hex.h"
#include "openseed/init.h"
#include "openseed/secp.h"

#define MAX_INPUT (16u << 20) /* all of stdin */
#define MAX_LINE (1u << 20)   /* one batch document */

/* Reads all of stdin into a NUL-terminated heap buffer; NULL past MAX_INPUT or on error. */
static char *read_stdin(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);

    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin))
                break;
            buf[n] = '\0';
            *len = n;
            return buf;
        }
        if (n == cap) {
            if (cap >= MAX_INPUT)
                break;
            char *bigger = realloc(buf, cap * 2 + 1);
            if (bigger == NULL)
                break;
            buf = bigger;
            cap *= 2;
        }
    }
    free(buf);
    return NULL;
}

static void hex_out(char *out, size_t cap, const uint8_t *p, size_t len)
{
    if (os_hex_encode(out, cap, p, len, 1) != OS_OK)
        out[0] = '\0';
}

/* Hashes one document and signs or recovers as asked; errmsg says why on failure. */
static os_err process(const json_t *doc, const char *keyhex, const char *sighex, uint8_t digest[32],
                      uint8_t sig[65], int *have_sig, uint8_t addr[20], int *have_addr,
                      const char **errmsg)
{
    os_err err;

    *have_sig = *have_addr = 0;
    err = os_eip712_hash_typed_data(digest, doc);
    if (err != OS_OK) {
        *errmsg = os_strerror(err);
        return err;
    }
    if (keyhex != NULL) {
        uint8_t priv[32];
        err = os_hex_decode_exact(priv, sizeof(priv), keyhex);
        if (err == OS_OK)
            err = os_secp_sign(sig, priv, digest);
        os_wipe(priv, sizeof(priv));
        if (err != OS_OK) {
            *errmsg = "bad private key";
            return err;
        }
        *have_sig = 1;
    }
    if (sighex != NULL) {
        uint8_t given[65];
        err = os_hex_decode_exact(given, sizeof(given), sighex);
        if (err == OS_OK)
            err = os_secp_recover(addr, digest, given);
        if (err != OS_OK) {
            *errmsg = "signature does not recover";
            return err;
        }
        *have_addr = 1;
    }
    return OS_OK;
}

static const char *member(const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* One JSON line per input line, so the caller can match answers to questions by position. */
static int batch(char *in, size_t len)
{
    char *p = in, *end = in + len;

    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *line = NULL, *out = json_object();
        uint8_t digest[32], sig[65], addr[20];
        int have_sig, have_addr;
        const char *errmsg = "bad request line";
        char hex[OS_HEX_LEN(65)];
        json_error_t jerr;

        if (n == 0) {
            json_decref(out);
            p += 1;
            continue;
        }
        if (out == NULL)
            return 2;
        if (n <= MAX_LINE)
            line = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (json_is_object(line)) {
            os_err err =
                process(json_object_get(line, "typed"), member(line, "key"), member(line, "verify"),
                        digest, sig, &have_sig, addr, &have_addr, &errmsg);
            if (err == OS_OK) {
                hex_out(hex, sizeof(hex), digest, 32);
                json_object_set_new(out, "digest", json_string(hex));
                if (have_sig) {
                    hex_out(hex, sizeof(hex), sig, 65);
                    json_object_set_new(out, "signature", json_string(hex));
                }
                if (have_addr) {
                    char a[OS_ADDRESS_STR_LEN];
                    os_eip55_format(a, addr);
                    json_object_set_new(out, "recovered", json_string(a));
                }
            } else {
                json_object_set_new(out, "error", json_string(errmsg));
            }
        } else {
            json_object_set_new(out, "error", json_string(errmsg));
        }
        json_decref(line);
        if (json_dumpf(out, stdout, JSON_COMPACT) != 0 || fputc('\n', stdout) == EOF) {
            json_decref(out);
            return 2;
        }
        json_decref(out);
        p += n + 1;
    }
    return fflush(stdout) == 0 ? 0 : 2;
}

static void usage(void)
{
    fprintf(stderr, "usage: os_eip712_tool digest|sign <privhex>|recover <sighex>|batch < input\n");
}

int main(int argc, char **argv)
{
    uint8_t digest[32], sig[65], addr[20];
    int have_sig, have_addr, rc;
    const char *errmsg = "";
    char hex[OS_HEX_LEN(65)];
    size_t len;
    char *in;

    if (os_init() != OS_OK) {
        fprintf(stderr, "os_eip712_tool: os_init failed\n");
        return 2;
    }
    if (argc < 2 ||
        (strcmp(argv[1], "sign") == 0 || strcmp(argv[1], "recover") == 0 ? argc != 3 : argc != 2)) {
        usage();
        return 2;
    }
    in = read_stdin(&len);
    if (in == NULL) {
        fprintf(stderr, "os_eip712_tool: cannot read stdin (limit %u bytes)\n", MAX_INPUT);
        return 2;
    }
    if (strcmp(argv[1], "batch") == 0) {
        rc = batch(in, len);
        free(in);
        return rc;
    }
    if (strcmp(argv[1], "digest") != 0 && strcmp(argv[1], "sign") != 0 &&
        strcmp(argv[1], "recover") != 0) {
        free(in);
        usage();
        return 2;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(in, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    free(in);
    if (doc == NULL) {
        fprintf(stderr, "os_eip712_tool: malformed JSON at line %d: %s\n", jerr.line, jerr.text);
        return 1;
    }
    os_err err = process(doc, strcmp(argv[1], "sign") == 0 ? argv[2] : NULL,
                         strcmp(argv[1], "recover") == 0 ? argv[2] : NULL, digest, sig, &have_sig,
                         addr, &have_addr, &errmsg);
    json_decref(doc);
    if (err != OS_OK) {
        fprintf(stderr, "os_eip712_tool: %s\n", errmsg);
        return 1;
    }
    if (have_addr) {
        char a[OS_ADDRESS_STR_LEN];
        os_eip55_format(a, addr);
        printf("%s\n", a);
        return 0;
    }
    hex_out(hex, sizeof(hex), digest, 32);
    printf("%s\n", hex);
    if (have_sig) {
        hex_out(hex, sizeof(hex), sig, 65);
        printf("%s\n", hex);
    }
    return 0;
}
