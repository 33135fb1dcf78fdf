/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helpers for talking to a registry: HTTP over libcurl (status, body, the X-RateLimit-*
 * headers), sellers with test keys that build and sign records and heartbeats (and, for negative
 * tests, sign them with the wrong key), the real openseed-registry spawned with posix_spawn (its
 * log in a file, its port read from the "registry listening" line, SIGTERM to stop), and temp
 * directories removed afterwards. Header-only: each integration test is a single .c file. Needs
 * os_init() first (curl), and _GNU_SOURCE defined before the test's first #include.
 */
#ifndef OPENSEED_TEST_REGISTRY_CLIENT_H
#define OPENSEED_TEST_REGISTRY_CLIENT_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE (nftw's FTW_DEPTH and FTW_PHYS) before the first #include"
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "openseed/eip712.h"
#include "openseed/hex.h"
#include "openseed/keccak.h"
#include "openseed/ohttp.h"
#include "openseed/record.h"
#include "openseed/secp.h"

extern char **environ;

#define RC_MAX_BODY (8u << 20)

/* ------------------------------------------------------------------ time, files */

static inline int64_t rc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void rc_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline int rc_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Makes a fresh directory from a template like "/tmp/openseed-registry-XXXXXX" (modified). */
static inline int rc_tmpdir(char *tmpl)
{
    return mkdtemp(tmpl) != NULL ? 0 : -1;
}

static inline void rc_rmtree(const char *dir)
{
    if (dir != NULL && dir[0] != '\0')
        nftw(dir, rc_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------ HTTP */

typedef struct rc_resp {
    long status;
    char *body;
    size_t len;
    char rl_limit[32], rl_remaining[32], rl_reset[32], retry_after[32];
    char content_type[128];
} rc_resp;

static inline void rc_resp_free(rc_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static inline size_t rc_write_cb(char *p, size_t size, size_t n, void *ud)
{
    rc_resp *r = ud;
    size_t k = size * n;
    if (r->len + k > RC_MAX_BODY)
        return 0;
    char *g = realloc(r->body, r->len + k + 1);
    if (g == NULL)
        return 0;
    memcpy(g + r->len, p, k);
    r->len += k;
    g[r->len] = '\0';
    r->body = g;
    return k;
}

static inline void rc_header_copy(char *dst, size_t cap, const char *v, size_t n)
{
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n > 0 && *v == ' ') {
        v++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static inline size_t rc_header_cb(char *p, size_t size, size_t n, void *ud)
{
    rc_resp *r = ud;
    size_t k = size * n;
    static const struct {
        const char *name;
        size_t off;
    } want[] = {
        {"x-ratelimit-limit:", offsetof(rc_resp, rl_limit)},
        {"x-ratelimit-remaining:", offsetof(rc_resp, rl_remaining)},
        {"x-ratelimit-reset:", offsetof(rc_resp, rl_reset)},
        {"retry-after:", offsetof(rc_resp, retry_after)},
        {"content-type:", offsetof(rc_resp, content_type)},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        size_t l = strlen(want[i].name);
        if (k > l && strncasecmp(p, want[i].name, l) == 0) {
            char *dst = (char *)r + want[i].off;
            size_t cap = want[i].off == offsetof(rc_resp, content_type) ? 128 : 32;
            rc_header_copy(dst, cap, p + l, k - l);
        }
    }
    return k;
}

/* One request; body may be NULL. 0 when an HTTP answer came (any status), -1 otherwise. */
static inline int rc_http(rc_resp *r, const char *method, const char *url, const char *body,
                          size_t len)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    CURLcode cc;

    memset(r, 0, sizeof(*r));
    if (c == NULL)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rc_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, rc_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
        h = curl_slist_append(h, "Expect:");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (r->body == NULL) {
        r->body = calloc(1, 1);
        r->len = 0;
    }
    return cc == CURLE_OK ? 0 : -1;
}

/* rc_http with a NUL-terminated body (or NULL) against base + path. */
static inline int rc_call(rc_resp *r, const char *base, const char *method, const char *path,
                          const char *body)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", base, path);
    return rc_http(r, method, url, body, body != NULL ? strlen(body) : 0);
}

/* True when body is exactly the OpenAI error shape: {"error":{"message":str,"type":str,"code":
 * str|null}} and nothing else. */
static inline int rc_is_openai_error(const char *body)
{
    json_error_t e;
    json_t *j = json_loads(body, 0, &e), *err, *code;
    int ok = j != NULL && json_is_object(j) && json_object_size(j) == 1 &&
             (err = json_object_get(j, "error")) != NULL && json_is_object(err) &&
             json_object_size(err) == 3 && json_is_string(json_object_get(err, "message")) &&
             json_string_length(json_object_get(err, "message")) > 0 &&
             json_is_string(json_object_get(err, "type")) &&
             (code = json_object_get(err, "code")) != NULL &&
             (json_is_string(code) || json_is_null(code));
    json_decref(j);
    return ok;
}

/* ------------------------------------------------------------------ sellers */

typedef struct rc_seller {
    uint8_t priv[32];
    uint8_t addr[20];
    char hex[OS_ADDRESS_STR_LEN];
    uint64_t seq; /* last seq used */
} rc_seller;

/* A deterministic test key: keccak256("openseed registry test seller" || i), re-hashed until it is
 * a valid secp256k1 scalar. */
static inline int rc_seller_init(rc_seller *s, uint32_t i)
{
    uint8_t in[64];
    int n = snprintf((char *)in, sizeof(in), "openseed registry test seller %u", i);
    memset(s, 0, sizeof(*s));
    os_keccak256(s->priv, in, (size_t)n);
    while (os_secp_privkey_check(s->priv) != OS_OK)
        os_keccak256(s->priv, s->priv, 32);
    if (os_secp_address(s->addr, s->priv) != OS_OK)
        return -1;
    os_eip55_format(s->hex, s->addr);
    return 0;
}

/* Millisecond seqs, as PROTOCOL.md suggests, forced above the last one used. */
static inline uint64_t rc_next_seq(rc_seller *s)
{
    uint64_t t = (uint64_t)rc_now_ms();
    s->seq = t > s->seq ? t : s->seq + 1;
    return s->seq;
}

typedef struct rc_offer {
    const char *capability; /* NULL: "inference" */
    const char *service;
    uint64_t input, output;
} rc_offer;

/* A valid record for s (ohttp key config with a fresh X25519 key); escrow NULL: 0x1111…11.
 * Caller owns the result. */
static inline json_t *rc_record(const rc_seller *s, const char *endpoint, uint64_t seq, uint64_t ts,
                                uint64_t chain_id, const uint8_t *escrow, const rc_offer *offers,
                                size_t n)
{
    os_record *r = calloc(1, sizeof(*r));
    uint8_t sk[32], pk[32];
    json_t *j = NULL;

    if (r == NULL || n == 0 || n > OS_RECORD_MAX_OFFERINGS)
        goto out;
    memcpy(r->node, s->addr, 20);
    snprintf(r->endpoint, sizeof(r->endpoint), "%s", endpoint);
    r->seq = seq;
    r->timestamp = ts;
    r->chain_id = chain_id;
    if (escrow != NULL)
        memcpy(r->escrow, escrow, 20);
    else
        memset(r->escrow, 0x11, 20);
    memset(r->asset, 0x22, 20);
    randombytes_buf(sk, sizeof(sk));
    crypto_scalarmult_base(pk, sk);
    if (os_ohttp_keyconfig_encode(r->ohttp_keys, sizeof(r->ohttp_keys), &r->ohttp_keys_len, 1, pk,
                                  NULL, 0) != OS_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        os_offering *o = &r->offerings[i];
        snprintf(o->capability, sizeof(o->capability), "%s",
                 offers[i].capability ? offers[i].capability : "inference");
        snprintf(o->services[0], sizeof(o->services[0]), "%s", offers[i].service);
        o->n_services = 1;
        snprintf(o->model, sizeof(o->model), "model-%s", offers[i].service);
        o->apis = OS_API_OPENAI_CHAT;
        o->pricing.input = offers[i].input;
        o->pricing.output = offers[i].output;
        o->pricing.cached = offers[i].input;
        o->max_output_tokens = 4096;
    }
    r->n_offerings = n;
    j = os_record_to_json(r);
out:
    free(r);
    return j;
}

/* {"record":…,"signature":"0x…"} signed by signer's key (normally s itself; another seller to
 * forge). Caller frees. */
static inline char *rc_announce_body(const json_t *record, const rc_seller *signer)
{
    uint8_t digest[32], sig[65];
    char sig_hex[OS_HEX_LEN(65)];
    os_record *r = calloc(1, sizeof(*r));
    char *out = NULL;

    if (r == NULL || os_record_parse(r, record, NULL, 0) != OS_OK ||
        os_record_digest(digest, record, r) != OS_OK ||
        os_secp_sign(sig, signer->priv, digest) != OS_OK ||
        os_hex_encode(sig_hex, sizeof(sig_hex), sig, 65, 1) != OS_OK)
        goto done;
    json_t *b = json_pack("{s:O,s:s}", "record", record, "signature", sig_hex);
    if (b != NULL)
        out = json_dumps(b, JSON_COMPACT);
    json_decref(b);
done:
    free(r);
    return out;
}

/* A heartbeat for node signed by signer (normally the same). Caller frees. */
static inline char *rc_heartbeat_body(const rc_seller *node, const rc_seller *signer,
                                      const char *endpoint, uint64_t seq, uint64_t ts,
                                      uint64_t chain_id, uint32_t active, uint32_t capacity)
{
    os_heartbeat hb;
    uint8_t digest[32];
    char *out = NULL;

    memset(&hb, 0, sizeof(hb));
    memcpy(hb.node, node->addr, 20);
    snprintf(hb.endpoint, sizeof(hb.endpoint), "%s", endpoint);
    hb.seq = seq;
    hb.timestamp = ts;
    hb.active = active;
    hb.capacity = capacity;
    if (os_heartbeat_digest(digest, &hb, chain_id) != OS_OK ||
        os_secp_sign(hb.sig, signer->priv, digest) != OS_OK)
        return NULL;
    json_t *j = os_heartbeat_to_json(&hb);
    if (j != NULL)
        out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return out;
}

/* ------------------------------------------------------------------ the real binary */

typedef struct rc_proc {
    pid_t pid;
    int port;
    char log_path[512];
} rc_proc;

/* Reads the port from a "… listening" log line written after byte `from`; 0 while not
 * there. */
static inline int rc_log_port(const char *log_path, long from)
{
    FILE *f = fopen(log_path, "r");
    char line[4096];
    int port = 0;

    if (f == NULL)
        return 0;
    if (fseek(f, from, SEEK_SET) != 0) {
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p;
        if (strstr(line, " listening") == NULL || (p = strstr(line, " port=")) == NULL)
            continue;
        char *end;
        long v = strtol(p + 6, &end, 10);
        if (end != p + 6 && v > 0 && v < 65536)
            port = (int)v;
    }
    fclose(f);
    return port;
}

/* Spawns bin with args (NULL-terminated, without argv[0]), output appended to log_path, and
 * waits up to wait_ms for it to listen. 0 on success; -1 with why set. */
static inline int rc_proc_start_wait(rc_proc *p, const char *bin, const char *const *args,
                                     const char *log_path, long wait_ms, char *why, size_t n)
{
    char *argv[64];
    int argc = 0, rc;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    struct stat sb;
    long from = stat(log_path, &sb) == 0 ? (long)sb.st_size : 0; /* a restart appends */

    memset(p, 0, sizeof(*p));
    snprintf(p->log_path, sizeof(p->log_path), "%s", log_path);
    argv[argc++] = (char *)bin;
    for (size_t i = 0; args[i] != NULL && argc < 63; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    /* the test's own sockets (proxies, fake servers) must not live on inside a daemon */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    rc = posix_spawn(&p->pid, bin, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        snprintf(why, n, "cannot spawn %.200s: %s", bin, strerror(rc));
        p->pid = 0;
        return -1;
    }
    for (long waited = 0; waited < wait_ms; waited += 10) {
        int st;
        if ((p->port = rc_log_port(log_path, from)) > 0)
            return 0;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            snprintf(why, n, "%.200s exited (status %d) before listening; see %.200s", bin,
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1, log_path);
            p->pid = 0;
            return -1;
        }
        rc_sleep_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    snprintf(why, n, "%.200s did not listen within %ld s; see %.200s", bin, wait_ms / 1000,
             log_path);
    return -1;
}

/* rc_proc_start_wait with 15 s to start listening. */
static inline int rc_proc_start(rc_proc *p, const char *bin, const char *const *args,
                                const char *log_path, char *why, size_t n)
{
    return rc_proc_start_wait(p, bin, args, log_path, 15000, why, n);
}

/* Sends sig and waits up to timeout_ms; SIGKILL after that. The exit status, or -1 if it did
 * not exit by itself (or died of a signal). */
static inline int rc_proc_stop(rc_proc *p, int sig, long timeout_ms)
{
    int st = 0;
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    for (long waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        rc_sleep_ms(10);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return -1;
}

#endif
