/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Line-oriented front end to libcommon's transaction code for the ethers cross-check
 * (tests/crosscheck/tx.js). Reads commands on stdin, one per line, answers one line each:
 *   sign <priv> <chainId> <nonce> <tip> <maxFee> <gas> <to|-> <value> <data|->
 *     -> ok <raw> <hash> <from>
 *   decode <raw>
 *     -> ok <chainId> <nonce> <tip> <maxFee> <gas> <to|-> <value> <data|-> <from> <hash>
 * Integers are decimal, byte strings hex without 0x. Errors answer "err <os_strerror text>".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "openseed/abi.h"
#include "openseed/hex.h"
#include "openseed/init.h"
#include "openseed/secp.h"
#include "openseed/tx.h"

#define MAX_LINE (2 * OS_TX_MAX_RAW + 4096)
#define MAX_FIELDS 12

static int parse_u64(uint64_t *out, const char *s)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int hex_or_dash(uint8_t *out, size_t cap, size_t *len, const char *s)
{
    *len = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    return os_hex_decode(out, cap, len, s, strlen(s)) == OS_OK ? 0 : -1;
}

static void print_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (n == 0)
        fputc('-', stdout);
    for (size_t i = 0; i < n; i++) {
        fputc(digits[p[i] >> 4], stdout);
        fputc(digits[p[i] & 15], stdout);
    }
}

static os_err do_sign(char **f, size_t nf, uint8_t *scratch)
{
    uint8_t *priv, hash[32], from[20];
    size_t n;
    os_tx tx;
    os_buf raw;
    os_err err;

    if (nf != 10)
        return OS_ERR_INVALID;
    memset(&tx, 0, sizeof(tx));
    if (parse_u64(&tx.chain_id, f[2]) || parse_u64(&tx.nonce, f[3]) ||
        parse_u64(&tx.max_priority_fee_per_gas, f[4]) || parse_u64(&tx.max_fee_per_gas, f[5]) ||
        parse_u64(&tx.gas_limit, f[6]))
        return OS_ERR_INVALID;
    if (hex_or_dash(tx.to, 20, &n, f[7]) != 0 || (n != 0 && n != 20))
        return OS_ERR_INVALID;
    tx.has_to = n == 20;
    err = os_u256_parse_dec(&tx.value, f[8]);
    if (err != OS_OK)
        return err;
    if (hex_or_dash(scratch, OS_TX_MAX_DATA, &tx.data_len, f[9]) != 0)
        return OS_ERR_INVALID;
    tx.data = tx.data_len ? scratch : NULL;

    priv = sodium_malloc(32);
    if (priv == NULL)
        return OS_ERR_NOMEM;
    err = os_hex_decode_exact(priv, 32, f[1]);
    if (err == OS_OK)
        err = os_secp_address(from, priv);
    os_buf_init(&raw, OS_TX_MAX_RAW);
    if (err == OS_OK)
        err = os_tx_sign(&raw, hash, &tx, priv);
    sodium_free(priv);
    if (err == OS_OK) {
        fputs("ok ", stdout);
        print_hex(raw.data, raw.len);
        fputc(' ', stdout);
        print_hex(hash, 32);
        fputc(' ', stdout);
        print_hex(from, 20);
        fputc('\n', stdout);
    }
    os_buf_free(&raw);
    return err;
}

static os_err do_decode(char **f, size_t nf, uint8_t *scratch)
{
    uint8_t hash[32], from[20];
    char value[OS_U256_DEC_LEN];
    size_t n;
    os_tx tx;
    os_err err;

    if (nf != 2)
        return OS_ERR_INVALID;
    err = os_hex_decode(scratch, OS_TX_MAX_RAW, &n, f[1], strlen(f[1]));
    if (err != OS_OK)
        return err;
    err = os_tx_decode(&tx, NULL, from, hash, scratch, n);
    if (err != OS_OK)
        return err;
    err = os_u256_format_dec(value, sizeof(value), &tx.value);
    if (err != OS_OK)
        return err;
    printf("ok %llu %llu %llu %llu %llu ", (unsigned long long)tx.chain_id,
           (unsigned long long)tx.nonce, (unsigned long long)tx.max_priority_fee_per_gas,
           (unsigned long long)tx.max_fee_per_gas, (unsigned long long)tx.gas_limit);
    print_hex(tx.to, tx.has_to ? 20 : 0);
    printf(" %s ", value);
    print_hex(tx.data, tx.data_len);
    fputc(' ', stdout);
    print_hex(from, 20);
    fputc(' ', stdout);
    print_hex(hash, 32);
    fputc('\n', stdout);
    return OS_OK;
}

/* Splits line in place at spaces, tabs and line ends; at most MAX_FIELDS fields. */
static size_t split(char *line, char **f)
{
    size_t nf = 0;
    char *p = line;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            *p++ = '\0';
        if (*p == '\0' || nf == MAX_FIELDS)
            return nf;
        f[nf++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            p++;
    }
}

int main(void)
{
    char *line = NULL, *f[MAX_FIELDS];
    size_t cap = 0, nf;
    ssize_t got;
    uint8_t *scratch;
    os_err err;

    if (os_init() != OS_OK) {
        fputs("os_init failed\n", stderr);
        return 1;
    }
    scratch = malloc(OS_TX_MAX_RAW);
    if (scratch == NULL)
        return 1;
    while ((got = getline(&line, &cap, stdin)) != -1) {
        if (got > MAX_LINE) {
            puts("err line too long");
            continue;
        }
        nf = split(line, f);
        if (nf == 0)
            continue;
        if (strcmp(f[0], "sign") == 0)
            err = do_sign(f, nf, scratch);
        else if (strcmp(f[0], "decode") == 0)
            err = do_decode(f, nf, scratch);
        else
            err = OS_ERR_INVALID;
        if (err != OS_OK)
            printf("err %s\n", os_strerror(err));
        fflush(stdout);
    }
    free(line);
    free(scratch);
    return 0;
}
