/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test certificates made at test time with OpenSSL 3's C API, so no key or certificate is ever
 * committed and none expires in the tree: a CA, certificates it signs for given names (IP and DNS
 * subject alternative names), self-signed ones, and PEM files of them (keys written with an
 * explicit mode, 0600 unless a test wants otherwise). Header-only like testutil.h; every function
 * fails the test on error, so callers need not check.
 */
#ifndef OPENSEED_TLSUTIL_H
#define OPENSEED_TLSUTIL_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testutil.h"

typedef struct tlsu_cert {
    EVP_PKEY *key;
    X509 *crt;
} tlsu_cert;

/* An ECDSA P-256 key (fast to make) or, with rsa, an RSA-2048 one. */
static inline EVP_PKEY *tlsu_key(bool rsa)
{
    EVP_PKEY *k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static inline void tlsu_ext(X509 *crt, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, crt, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(crt, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/*
 * A certificate for cn with the given serial, valid from a day ago for `days` days (negative:
 * expired that many days ago), signed by issuer (NULL: self-signed). san is an OpenSSL
 * subjectAltName value ("IP:127.0.0.1,DNS:localhost") or NULL; ca makes it a CA.
 */
static inline tlsu_cert tlsu_make(const char *cn, long serial, const char *san, bool ca, bool rsa,
                                  const tlsu_cert *issuer, long days)
{
    tlsu_cert c = {tlsu_key(rsa), X509_new()};
    X509_NAME *name;

    assert_non_null(c.crt);
    assert_int_equal(X509_set_version(c.crt, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(c.crt), serial), 1);
    if (days >= 0) {
        assert_non_null(X509_gmtime_adj(X509_getm_notBefore(c.crt), -86400L));
        assert_non_null(X509_gmtime_adj(X509_getm_notAfter(c.crt), 86400L * days));
    } else {
        assert_non_null(X509_gmtime_adj(X509_getm_notBefore(c.crt), 86400L * (days - 30)));
        assert_non_null(X509_gmtime_adj(X509_getm_notAfter(c.crt), 86400L * days));
    }
    assert_int_equal(X509_set_pubkey(c.crt, c.key), 1);
    name = X509_get_subject_name(c.crt);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                                (const unsigned char *)"OpenSeed tests", -1, -1, 0),
                     1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(
        X509_set_issuer_name(c.crt, issuer != NULL ? X509_get_subject_name(issuer->crt) : name), 1);
    X509 *iss = issuer != NULL ? issuer->crt : c.crt;
    tlsu_ext(c.crt, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    tlsu_ext(c.crt, iss, NID_key_usage,
             ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
    tlsu_ext(c.crt, iss, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        tlsu_ext(c.crt, iss, NID_authority_key_identifier, "keyid:always");
    if (!ca)
        tlsu_ext(c.crt, iss, NID_ext_key_usage, "serverAuth");
    if (san != NULL)
        tlsu_ext(c.crt, iss, NID_subject_alt_name, san);
    assert_true(X509_sign(c.crt, issuer != NULL ? issuer->key : c.key, EVP_sha256()) > 0);
    return c;
}

static inline void tlsu_free(tlsu_cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->crt);
    c->key = NULL;
    c->crt = NULL;
}

/* The certificate as PEM text; the caller frees it. */
static inline char *tlsu_pem(X509 *crt)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, crt), 1);
    n = BIO_get_mem_data(b, &data);
    assert_true(n > 0);
    out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

/* Opens path for writing with exactly this mode (the umask is undone with fchmod). */
static inline FILE *tlsu_create(const char *path, mode_t mode)
{
    int fd;
    FILE *f;

    (void)unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    return f;
}

/* Writes the certificates crts[0..n) (leaf first) as one PEM file, mode 0644. */
static inline void tlsu_write_certs(const char *path, X509 *const *crts, size_t n)
{
    FILE *f = tlsu_create(path, 0644);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(PEM_write_X509(f, crts[i]), 1);
    assert_int_equal(fclose(f), 0);
}

/* Writes key as an unencrypted PKCS#8 PEM file with the given mode; with pass, encrypted. */
static inline void tlsu_write_key(const char *path, EVP_PKEY *key, mode_t mode, const char *pass)
{
    FILE *f = tlsu_create(path, mode);
    if (pass != NULL)
        assert_int_equal(
            PEM_write_PrivateKey(f, key, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)pass), 1);
    else
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
}

/* Writes text to path with the given mode. */
static inline void tlsu_write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = tlsu_create(path, mode);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

#endif
