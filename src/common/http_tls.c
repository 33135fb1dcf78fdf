/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS server's certificate and key (http_internal.h), for http_server.c: the pair loaded from
 * two PEM files and checked (the chain sorted, the key owner-only like every key file of ours and
 * the certificate's own), swapped by a reload while handshakes pick it.
 *
 * References: a loaded pair is refcounted under the store's mutex. The store holds the current
 * pair; each connection takes a reference when its handshake picks it (os_http_tls_take) and
 * drops it when the connection closes (os_http_tls_release), because GnuTLS keeps pointing at the
 * certificate and key for the session's life without owning them. So a reload never frees a pair
 * a connection still uses, and the last release frees a replaced one.
 */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/keyfile.h"

#define TLS_CHAIN_MAX 16u
#define TLS_CERT_FILE_MAX ((size_t)1 << 20)
#define TLS_KEY_FILE_MAX ((size_t)64 << 10)
#define TLS_WHY_LEN 512
#define TLS_DESC_LEN 160

/* A loaded certificate chain and its key. */
struct os_http_tls_pair {
    unsigned refs; /* under the store's mu */
    gnutls_pcert_st certs[TLS_CHAIN_MAX];
    unsigned n_certs;
    gnutls_privkey_t key;
    char desc[TLS_DESC_LEN]; /* "sha256=… not_after=…", for logs */
};

struct os_http_tls {
    char *cert_path, *key_path;
    pthread_mutex_t mu;     /* guards cur and every pair's refs */
    os_http_tls_pair *cur; /* what new handshakes get; the store's reference; NULL before a load */
};

static void pair_free(os_http_tls_pair *cr)
{
    if (cr == NULL)
        return;
    for (unsigned i = 0; i < cr->n_certs; i++)
        gnutls_pcert_deinit(&cr->certs[i]);
    if (cr->key != NULL)
        gnutls_privkey_deinit(cr->key);
    free(cr);
}

/* Drops a reference under t->mu; the pair to free once the lock is released, or NULL. */
static os_http_tls_pair *pair_unref_locked(os_http_tls_pair *cr)
{
    if (cr == NULL || --cr->refs > 0)
        return NULL;
    return cr;
}

void os_http_tls_release(os_http_tls *t, os_http_tls_pair *cr)
{
    if (t == NULL || cr == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    cr = pair_unref_locked(cr);
    pthread_mutex_unlock(&t->mu);
    pair_free(cr);
}

/* The certificate file into a NUL-terminated malloc'd buffer. It is public, so any mode will do
 * and a symbolic link is followed (certbot's live/ names are links). */
static os_err read_cert_file(char **out, size_t *len, const char *path, char *why, size_t whycap)
{
    struct stat sb;
    char *buf = NULL;
    size_t n = 0;
    os_err rc = OS_OK;
    int fd, e;

    *out = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        e = errno;
        return os_errf(why, whycap, e == ENOENT ? OS_ERR_NOTFOUND : OS_ERR_IO,
                       "cannot open certificate file %s: %s", path, strerror(e));
    }
    if (fstat(fd, &sb) != 0) {
        rc = os_errf(why, whycap, OS_ERR_IO, "cannot stat certificate file %s: %s", path,
                     strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        rc =
            os_errf(why, whycap, OS_ERR_INVALID, "certificate file %s is not a regular file", path);
    } else if ((uint64_t)sb.st_size >= TLS_CERT_FILE_MAX) {
        rc = os_errf(why, whycap, OS_ERR_TOOBIG, "certificate file %s is larger than %zu bytes",
                     path, TLS_CERT_FILE_MAX - 1);
    } else if ((buf = malloc(TLS_CERT_FILE_MAX)) == NULL) {
        rc = os_errf(why, whycap, OS_ERR_NOMEM, "out of memory reading %s", path);
    }
    while (rc == OS_OK && n < TLS_CERT_FILE_MAX - 1) {
        ssize_t got = read(fd, buf + n, TLS_CERT_FILE_MAX - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = os_errf(why, whycap, OS_ERR_IO, "cannot read certificate file %s: %s", path,
                         strerror(errno));
        else if (got == 0)
            break;
        else
            n += (size_t)got;
    }
    if (rc == OS_OK && n >= TLS_CERT_FILE_MAX - 1)
        rc = os_errf(why, whycap, OS_ERR_TOOBIG, "certificate file %s is larger than %zu bytes",
                     path, TLS_CERT_FILE_MAX - 2);
    close(fd);
    if (rc != OS_OK) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return OS_OK;
}

/* GnuTLS would only notice a key that is not the certificate's when a client fails to verify the
 * handshake signature; compare their public keys now instead. */
static os_err check_pair(const os_http_tls_pair *cr, const char *cert_path, const char *key_path,
                         char *why, size_t whycap)
{
    unsigned char a[64], b[64];
    size_t alen = sizeof(a), blen = sizeof(b);
    gnutls_pubkey_t pk = NULL;
    int r;

    if (gnutls_pubkey_init(&pk) < 0)
        return os_errf(why, whycap, OS_ERR_NOMEM, "out of memory checking %s", key_path);
    r = gnutls_pubkey_import_privkey(pk, cr->key, 0, 0);
    if (r >= 0)
        r = gnutls_pubkey_get_key_id(pk, GNUTLS_KEYID_USE_SHA256, a, &alen);
    if (r >= 0)
        r = gnutls_pubkey_get_key_id(cr->certs[0].pubkey, GNUTLS_KEYID_USE_SHA256, b, &blen);
    gnutls_pubkey_deinit(pk);
    if (r < 0)
        return os_errf(why, whycap, OS_ERR_INVALID,
                       "cannot compare the key in %s with the certificate in %s: %s", key_path,
                       cert_path, gnutls_strerror(r));
    /* key identifiers are public: no need for a constant-time comparison */
    if (alen != blen || memcmp(a, b, alen) != 0)
        return os_errf(why, whycap, OS_ERR_INVALID,
                       "the key in %s does not match the certificate in %s (the file's first "
                       "certificate must be the key's)",
                       key_path, cert_path);
    return OS_OK;
}

/* The leaf's SHA-256 fingerprint and validity, for the logs. */
static void describe(os_http_tls_pair *cr, time_t *not_before, time_t *not_after)
{
    gnutls_x509_crt_t crt;
    unsigned char fp[32];
    size_t fplen = sizeof(fp);
    char hex[2 * sizeof(fp) + 1] = "?", when[32] = "?";
    struct tm tm;

    *not_before = *not_after = (time_t)-1;
    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, &cr->certs[0].cert, GNUTLS_X509_FMT_DER) >= 0) {
        if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fplen) < 0 ||
            fplen != sizeof(fp) || os_hex_encode(hex, sizeof(hex), fp, sizeof(fp), 0) != OS_OK)
            snprintf(hex, sizeof(hex), "?");
        *not_before = gnutls_x509_crt_get_activation_time(crt);
        *not_after = gnutls_x509_crt_get_expiration_time(crt);
        if (*not_after != (time_t)-1 && gmtime_r(not_after, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    gnutls_x509_crt_deinit(crt);
    snprintf(cr->desc, sizeof(cr->desc), "sha256=%s not_after=%s", hex, when);
}

/* Reads and checks a certificate chain and its key into a new pair holding one reference. */
static os_err pair_load(os_http_tls_pair **out, time_t *not_before, time_t *not_after,
                       const char *cert_path, const char *key_path, char *why, size_t whycap)
{
    os_http_tls_pair *cr = NULL;
    char *cbuf = NULL, *kbuf = NULL;
    size_t clen = 0, klen = 0;
    unsigned n = TLS_CHAIN_MAX;
    gnutls_datum_t d;
    os_err rc;
    int r;

    *out = NULL;
    if ((rc = read_cert_file(&cbuf, &clen, cert_path, why, whycap)) != OS_OK)
        return rc;
    cr = calloc(1, sizeof(*cr));
    kbuf = malloc(TLS_KEY_FILE_MAX);
    if (cr == NULL || kbuf == NULL) {
        rc = os_errf(why, whycap, OS_ERR_NOMEM, "out of memory loading %s", cert_path);
        goto done;
    }
    /* the same checks as every other key file of ours: owner-only, no symbolic link */
    if ((rc = os_keyfile_read_private(kbuf, TLS_KEY_FILE_MAX, &klen, key_path, why, whycap)) !=
        OS_OK)
        goto done;
    d.data = (unsigned char *)cbuf;
    d.size = (unsigned)clen;
    r = gnutls_pcert_list_import_x509_raw(cr->certs, &n, &d, GNUTLS_X509_FMT_PEM,
                                          GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (r == GNUTLS_E_SHORT_MEMORY_BUFFER) {
        rc = os_errf(why, whycap, OS_ERR_TOOBIG, "%s holds more than %u certificates", cert_path,
                     TLS_CHAIN_MAX);
        goto done;
    }
    if (r < 0 || n == 0) {
        rc = os_errf(why, whycap, OS_ERR_INVALID,
                     "%s does not hold PEM certificates (the server's first, then its issuers): %s",
                     cert_path, r < 0 ? gnutls_strerror(r) : "none found");
        goto done;
    }
    cr->n_certs = n;
    if (gnutls_privkey_init(&cr->key) < 0) {
        rc = os_errf(why, whycap, OS_ERR_NOMEM, "out of memory loading %s", key_path);
        goto done;
    }
    d.data = (unsigned char *)kbuf;
    d.size = (unsigned)klen;
    /* gnutls_strerror is static text: the reason never quotes the key */
    r = gnutls_privkey_import_x509_raw(cr->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (r < 0) {
        rc = os_errf(why, whycap, OS_ERR_INVALID,
                     "%s does not hold an unencrypted PEM private key: %s", key_path,
                     gnutls_strerror(r));
        goto done;
    }
    if ((rc = check_pair(cr, cert_path, key_path, why, whycap)) != OS_OK)
        goto done;
    describe(cr, not_before, not_after);
    cr->refs = 1;
done:
    if (kbuf != NULL) {
        os_wipe(kbuf, TLS_KEY_FILE_MAX);
        free(kbuf);
    }
    free(cbuf);
    if (rc != OS_OK) {
        pair_free(cr);
        return rc;
    }
    *out = cr;
    return OS_OK;
}

os_err os_http_tls_install(os_http_tls *t, const os_logger *log, const char *listen, bool reload)
{
    char why[TLS_WHY_LEN];
    time_t nb = (time_t)-1, na = (time_t)-1, now = time(NULL);
    os_http_tls_pair *cr, *old;
    bool had;
    os_err rc;

    rc = pair_load(&cr, &nb, &na, t->cert_path, t->key_path, why, sizeof(why));
    pthread_mutex_lock(&t->mu);
    had = t->cur != NULL;
    old = NULL;
    if (rc == OS_OK) {
        old = pair_unref_locked(t->cur);
        t->cur = cr;
    }
    pthread_mutex_unlock(&t->mu);
    pair_free(old);
    if (rc != OS_OK) {
        if (reload && had)
            os_log_error(log,
                         "TLS reload for %s failed; still serving the previous certificate: %s",
                         listen, why);
        else
            os_log_error(log, "cannot load the TLS certificate for %s: %s", listen, why);
        return rc;
    }
    os_log_info(log, "TLS certificate for %s %s: %s", listen, reload ? "reloaded" : "loaded",
                cr->desc);
    if (na != (time_t)-1 && na < now)
        os_log_warn(log, "the TLS certificate for %s has expired (%s)", listen, cr->desc);
    else if (nb != (time_t)-1 && nb > now)
        os_log_warn(log, "the TLS certificate for %s is not valid yet (%s)", listen,
                    cr->desc);
    return OS_OK;
}

os_err os_http_tls_take(os_http_tls *t, os_http_tls_pair **held, gnutls_pcert_st **pcert,
                        unsigned *n, gnutls_privkey_t *key)
{
    os_http_tls_pair *cr, *old;

    if (t == NULL || held == NULL)
        return OS_ERR_INVALID;
    pthread_mutex_lock(&t->mu);
    cr = t->cur;
    if (cr == NULL) {
        pthread_mutex_unlock(&t->mu);
        return OS_ERR_NOTFOUND;
    }
    cr->refs++;
    old = pair_unref_locked(*held);
    *held = cr;
    pthread_mutex_unlock(&t->mu);
    pair_free(old);
    *pcert = cr->certs;
    *n = cr->n_certs;
    *key = cr->key;
    return OS_OK;
}

os_err os_http_tls_new(os_http_tls **out, const char *cert_path, const char *key_path)
{
    os_http_tls *t;

    if (out == NULL || cert_path == NULL || key_path == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return OS_ERR_NOMEM;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return OS_ERR_NOMEM;
    }
    t->cert_path = strdup(cert_path);
    t->key_path = strdup(key_path);
    if (t->cert_path == NULL || t->key_path == NULL) {
        os_http_tls_free(t);
        return OS_ERR_NOMEM;
    }
    *out = t;
    return OS_OK;
}

void os_http_tls_free(os_http_tls *t)
{
    if (t == NULL)
        return;
    os_http_tls_release(t, t->cur);
    free(t->cert_path);
    free(t->key_path);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
