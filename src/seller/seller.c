/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller core's lifecycle: options from the configuration, keys loaded or created on first run
 * (node key, gateway key, admin token, all 0600 in the data directory by default), seller.db and
 * the chain client opened in sl_seller_new; the signer, channel cache, upstreams (and the built-in
 * echo upstream), HTTP servers and announcer brought up in sl_seller_start and taken down in the
 * reverse order in sl_seller_stop. The request pipeline is in serve.c, the admin API in admin.c.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "openseed/ct.h"
#include "openseed/escrow.h"
#include "openseed/hex.h"
#include "openseed/keyfile.h"
#include "openseed/ohttp.h"
#include "openseed/secp.h"

#define ERRLEN 320

void sl_options_default(sl_options *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "0.0.0.0:8378";
    o->admin_listen = "127.0.0.1:8380";
    o->data_dir = ".";
    o->chain_id = 8453;
    o->upstream_api = SL_UPSTREAM_OPENAI;
    o->upstream_timeout_ms = 600000;
    o->upstream_connect_timeout_ms = 5000;
    o->upstream_first_byte_timeout_ms = 60000;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static os_err mkdir_private(const char *dir, const os_logger *log)
{
    struct stat sb;

    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) {
            os_log_error(log, "data_dir is not a directory");
            return OS_ERR_IO;
        }
        return OS_OK;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        os_log_error(log, "cannot create the data directory: %s", strerror(errno));
        return OS_ERR_IO;
    }
    return OS_OK;
}

/* One seller per data directory: a second would finish the first one's requests as interrupted
 * when it opens seller.db. The kernel drops the lock when the process dies, kill -9 included. */
static os_err lock_data_dir(sl_seller *s)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/seller.lock", s->data_dir);

    if (n < 0 || (size_t)n >= sizeof(path))
        return OS_ERR_TOOBIG;
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s->lock_fd < 0) {
        os_log_error(s->log, "cannot open %s: %s", path, strerror(errno));
        return OS_ERR_IO;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        os_log_error(s->log, "another openseed-seller is running on this data_dir (%s is locked)",
                     path);
        return OS_ERR_EXISTS;
    }
    return OS_OK;
}

/* path, or <data_dir>/<name> when path is NULL. */
static os_err default_path(char *out, size_t cap, const char *path, const char *data_dir,
                           const char *name)
{
    int n =
        path != NULL ? snprintf(out, cap, "%s", path) : snprintf(out, cap, "%s/%s", data_dir, name);
    return n < 0 || (size_t)n >= cap ? OS_ERR_TOOBIG : OS_OK;
}

/* Reads a secp256k1-format key file, creating it with a fresh key when it does not exist. */
static os_err load_or_create_key(uint8_t key[32], const char *path, const char *what,
                                 const os_logger *log)
{
    char err[ERRLEN];
    os_err rc = os_keyfile_read_secp(key, path, err, sizeof(err));

    if (rc == OS_ERR_NOTFOUND) {
        if ((rc = os_secp_keygen(key)) != OS_OK)
            return rc;
        if ((rc = os_keyfile_write_secp(path, key, err, sizeof(err))) != OS_OK) {
            os_wipe(key, 32);
            os_log_error(log, "cannot create the %s: %s", what, err);
            return rc;
        }
        os_log_info(log, "created a new %s", what);
        return OS_OK;
    }
    if (rc != OS_OK)
        os_log_error(log, "cannot read the %s: %s", what, err);
    return rc;
}

static os_err load_or_create_token(char token[SL_TOKEN_MAX + 2], const char *path,
                                   const os_logger *log)
{
    char err[ERRLEN];
    size_t len = 0;
    os_err rc = os_keyfile_read_text(token, SL_TOKEN_MAX + 2, &len, path, err, sizeof(err));

    if (rc == OS_ERR_NOTFOUND) {
        uint8_t raw[SL_TOKEN_LEN / 2];
        randombytes_buf(raw, sizeof(raw));
        rc = os_hex_encode(token, SL_TOKEN_LEN + 1, raw, sizeof(raw), 0);
        os_wipe(raw, sizeof(raw));
        if (rc == OS_OK)
            rc = os_keyfile_write_text(path, token, err, sizeof(err));
        if (rc != OS_OK) {
            os_wipe(token, SL_TOKEN_LEN + 1);
            os_log_error(log, "cannot create the admin token: %s", err);
            return rc;
        }
        os_log_info(log, "created a new admin token file");
        return OS_OK;
    }
    if (rc == OS_ERR_TOOBIG || (rc == OS_OK && (len < 16 || len > SL_TOKEN_MAX))) {
        os_wipe(token, SL_TOKEN_MAX + 2);
        os_log_error(log, "the admin token must be 16 to %d printable characters", SL_TOKEN_MAX);
        return OS_ERR_INVALID;
    }
    if (rc != OS_OK)
        os_log_error(log, "cannot read the admin token: %s", err);
    return rc;
}

static os_err load_keys(sl_seller *s, const sl_options *o)
{
    char path[4096];
    os_err rc;

    s->sec = sodium_malloc(sizeof(*s->sec));
    if (s->sec == NULL)
        return OS_ERR_NOMEM;
    sodium_memzero(s->sec, sizeof(*s->sec));
    if ((rc = default_path(path, sizeof(path), o->node_key, o->data_dir, "node.key")) != OS_OK ||
        (rc = load_or_create_key(s->sec->node_priv, path, "node key", s->log)) != OS_OK ||
        (rc = os_secp_address(s->node, s->sec->node_priv)) != OS_OK)
        return rc;
    if ((rc = default_path(path, sizeof(path), o->gateway_key, o->data_dir, "gateway.key")) !=
            OS_OK ||
        (rc = load_or_create_key(s->sec->gateway_sk, path, "gateway key", s->log)) != OS_OK ||
        (rc = os_hpke_public_key(s->gateway_pk, s->sec->gateway_sk)) != OS_OK)
        return rc;
    if (o->admin_listen != NULL &&
        ((rc = default_path(path, sizeof(path), o->admin_token_file, o->data_dir, "admin.token")) !=
             OS_OK ||
         (rc = load_or_create_token(s->sec->admin_token, path, s->log)) != OS_OK))
        return rc;
    /* The key id names the key in the envelope; derived from the public key so it changes with a
     * new key and a stale buyer gets "unknown key" rather than a decryption failure. */
    s->key_id = s->gateway_pk[0];
    {
        const os_ohttp_symalg alg = {.kdf_id = 1, .aead_id = 1};
        if ((rc =
                 os_ohttp_keyconfig_encode(s->ohttp_keys, sizeof(s->ohttp_keys), &s->ohttp_keys_len,
                                           s->key_id, s->gateway_pk, &alg, 1)) != OS_OK)
            return rc;
    }
    sodium_mprotect_readonly(s->sec);
    return OS_OK;
}

static os_err copy_options(sl_seller *s, const sl_options *o)
{
    s->opt = *o;
    s->listen = dup_or_null(o->listen);
    s->admin_listen = dup_or_null(o->admin_listen);
    s->data_dir = dup_or_null(o->data_dir);
    s->endpoint = dup_or_null(o->endpoint);
    s->rpc = dup_or_null(o->rpc);
    s->upstream_url = dup_or_null(o->upstream);
    s->tls_cert = dup_or_null(o->tls_cert_file);
    s->tls_key = dup_or_null(o->tls_key_file);
    s->ca_file = dup_or_null(o->ca_file);
    if (s->listen == NULL || (o->admin_listen != NULL && s->admin_listen == NULL) ||
        s->data_dir == NULL || (o->endpoint != NULL && s->endpoint == NULL) || s->rpc == NULL ||
        s->upstream_url == NULL || (o->tls_cert_file != NULL && s->tls_cert == NULL) ||
        (o->tls_key_file != NULL && s->tls_key == NULL) ||
        (o->ca_file != NULL && s->ca_file == NULL))
        return OS_ERR_NOMEM;
    if (o->n_registries > 0) {
        s->registries = calloc(o->n_registries, sizeof(char *));
        if (s->registries == NULL)
            return OS_ERR_NOMEM;
        for (size_t i = 0; i < o->n_registries; i++) {
            if ((s->registries[i] = strdup(o->registries[i])) == NULL)
                return OS_ERR_NOMEM;
            s->n_registries++;
        }
    }
    s->opt.listen = s->listen;
    s->opt.admin_listen = s->admin_listen;
    s->opt.data_dir = s->data_dir;
    s->opt.endpoint = s->endpoint;
    s->opt.rpc = s->rpc;
    s->opt.upstream = s->upstream_url;
    s->opt.tls_cert_file = s->tls_cert;
    s->opt.tls_key_file = s->tls_key;
    s->opt.ca_file = s->ca_file;
    s->opt.registries = (const char *const *)s->registries;
    s->opt.upstream_key = NULL; /* handed to the upstream adapters, which keep their own copy */
    s->opt.echo = NULL;
    s->opt.node_key = s->opt.gateway_key = s->opt.admin_token_file = NULL;
    s->opt.offerings = NULL;
    if (s->opt.upstream_concurrency == 0)
        s->opt.upstream_concurrency = 32;
    if (s->opt.max_request == 0)
        s->opt.max_request = 1u << 20;
    if (s->opt.http_threads == 0)
        s->opt.http_threads = 4;
    if (s->opt.drain_timeout_ms == 0)
        s->opt.drain_timeout_ms = 10000;
    return OS_OK;
}

/*
 * The offerings as the request threads read them (s->offerings points at items). A reload
 * publishes a new block rather than writing the one in use, and keeps the blocks it replaced
 * chained behind it, because a request admitted before the reload holds a pointer into its block
 * until its job is booked. Every block has room for the most offerings a record holds, zeroed past
 * the count, so a reader that pairs the new pointer with the old count (or the reverse) still
 * reads inside the block and finds at worst an empty entry (no services: "unknown service").
 */
typedef struct offer_block {
    struct offer_block *older;
    os_offering items[OS_RECORD_MAX_OFFERINGS];
} offer_block;

static offer_block *block_of(os_offering *items)
{
    return items != NULL ? (offer_block *)(void *)((char *)items - offsetof(offer_block, items))
                         : NULL;
}

static void free_blocks(offer_block *b)
{
    while (b != NULL) {
        offer_block *older = b->older;
        free(b);
        b = older;
    }
}

/* A new block holding offs, or the built-in echo offering when there are none and the upstream
 * is builtin:echo. Errors are logged. */
static os_err new_block(offer_block **out, size_t *n, const sl_seller *s, const char *upstream,
                        const os_offering *offs, size_t n_offs)
{
    bool echo = strcmp(upstream, "builtin:echo") == 0;
    char err[ERRLEN];
    offer_block *b;
    os_err rc;

    *out = NULL;
    if (n_offs == 0 && !echo) {
        os_log_error(s->log, "no offering configured: nothing to sell");
        return OS_ERR_INVALID;
    }
    if (n_offs > OS_RECORD_MAX_OFFERINGS) {
        os_log_error(s->log, "at most %d offerings", OS_RECORD_MAX_OFFERINGS);
        return OS_ERR_INVALID;
    }
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return OS_ERR_NOMEM;
    if (n_offs > 0) {
        memcpy(b->items, offs, n_offs * sizeof(os_offering));
    } else if ((rc = sl_offering_parse(&b->items[0], SL_ECHO_OFFERING, err, sizeof(err))) !=
               OS_OK) {
        os_log_error(s->log, "built-in offering: %s", err);
        free(b);
        return rc;
    }
    *n = n_offs > 0 ? n_offs : 1;
    *out = b;
    return OS_OK;
}

static os_err copy_offerings(sl_seller *s, const sl_options *o)
{
    offer_block *b = NULL;
    os_err rc = new_block(&b, &s->n_offerings, s, o->upstream, o->offerings, o->n_offerings);

    if (rc == OS_OK)
        s->offerings = b->items;
    return rc;
}

os_err sl_seller_new_opts(sl_seller **out, const sl_options *o, const os_logger *log)
{
    sl_seller *s;
    char path[4096], err[ERRLEN];
    os_chain_config cc;
    os_err rc;

    *out = NULL;
    if (o == NULL || o->listen == NULL || o->data_dir == NULL || o->rpc == NULL ||
        o->upstream == NULL || o->chain_id == 0 || os_ct_is_zero(o->escrow, 20))
        return OS_ERR_INVALID;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return OS_ERR_NOMEM;
    s->log = log;
    s->lock_fd = -1;
    pthread_mutex_init(&s->info_mu, NULL);
    pthread_mutex_init(&s->jobs_mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->jobs_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if ((rc = copy_options(s, o)) != OS_OK || (rc = copy_offerings(s, o)) != OS_OK ||
        (rc = mkdir_private(s->data_dir, log)) != OS_OK || (rc = lock_data_dir(s)) != OS_OK ||
        (rc = load_keys(s, o)) != OS_OK)
        goto fail;
    if (o->echo != NULL || strcmp(o->upstream, "builtin:echo") == 0) {
        sl_echo_config ec = {0};
        if (o->echo != NULL)
            ec = *o->echo;
        ec.listen = "127.0.0.1:0";
        if (ec.model == NULL)
            ec.model = s->offerings[0].model;
        if ((rc = sl_echo_new(&s->echo, &ec, log)) != OS_OK) {
            os_log_error(log, "cannot create the built-in upstream: %s", os_strerror(rc));
            goto fail;
        }
    }
    if (o->upstream_key != NULL) {
        size_t n = strlen(o->upstream_key);
        if (n >= sizeof(s->sec->upstream_key)) {
            os_log_error(log, "the upstream API key is longer than %zu bytes",
                         sizeof(s->sec->upstream_key) - 1);
            rc = OS_ERR_INVALID;
            goto fail;
        }
        sodium_mprotect_readwrite(s->sec);
        memcpy(s->sec->upstream_key, o->upstream_key, n + 1);
        sodium_mprotect_readonly(s->sec);
    }
    if ((rc = default_path(path, sizeof(path), NULL, s->data_dir, "seller.db")) != OS_OK)
        goto fail;
    if ((rc = sl_ledger_open(&s->ledger, path, err, sizeof(err))) != OS_OK) {
        os_log_error(log, "cannot open seller.db: %s", err);
        goto fail;
    }
    os_chain_config_default(&cc, s->rpc);
    cc.chain_id = o->chain_id;
    os_escrow_chain_config(&cc);
    if ((rc = os_chain_new(&s->chain, &cc)) != OS_OK) {
        os_log_error(log, "cannot create the chain client: %s", os_strerror(rc));
        goto fail;
    }
    if ((rc = sl_serve_init(s)) != OS_OK)
        goto fail;
    *out = s;
    return OS_OK;
fail:
    sl_seller_free(s);
    return rc;
}

/* Fills o from the daemon's configuration; the strings point into cfg, bufs and *offerings
 * (malloc'd, the caller frees) and *key (sodium_malloc'd, the caller wipes and frees). */
static os_err options_from_config(sl_options *o, const sl_config *cfg,
                                  char listen[][OS_CFG_LISTEN_STR_LEN], sl_echo_config *echo,
                                  os_offering **offerings, char **key, const os_logger *log)
{
    char err[ERRLEN];
    os_err rc;

    sl_options_default(o);
    os_cfg_listen_format(listen[0], &cfg->node.listen);
    os_cfg_listen_format(listen[1], &cfg->admin_listen);
    o->listen = listen[0];
    o->admin_listen = listen[1];
    o->data_dir = cfg->node.data_dir;
    o->node_key = cfg->node_key;
    o->gateway_key = cfg->gateway_key;
    o->admin_token_file = cfg->admin_token_file;
    o->endpoint = cfg->endpoint;
    o->registries = (const char *const *)cfg->node.registry.items;
    o->n_registries = cfg->node.registry.n;
    o->rpc = cfg->node.rpc;
    o->tls_cert_file = cfg->node.tls_cert;
    o->tls_key_file = cfg->node.tls_key;
    o->ca_file = cfg->node.ca_file;
    o->chain_id = cfg->node.chain_id;
    memcpy(o->escrow, cfg->node.escrow.bytes, 20);
    memcpy(o->usdc, cfg->node.usdc.bytes, 20);
    o->upstream = cfg->upstream;
    o->upstream_api = (sl_upstream_api)cfg->upstream_api;
    o->upstream_timeout_ms = (long)cfg->upstream_timeout * 1000;
    o->upstream_connect_timeout_ms = (long)cfg->upstream_connect_timeout * 1000;
    o->upstream_first_byte_timeout_ms = (long)cfg->upstream_first_byte_timeout * 1000;
    o->upstream_concurrency = (unsigned)cfg->upstream_concurrency;
    o->settle_threshold = cfg->settle_threshold;
    o->settle_interval_ms = cfg->settle_interval * 1000;
    o->channel_refresh_ms = cfg->channel_refresh * 1000;
    o->max_request = (size_t)cfg->max_request;
    memset(echo, 0, sizeof(*echo));
    echo->latency_ms = (unsigned)cfg->echo_latency_ms;
    echo->tokens_per_s = (unsigned)cfg->echo_tokens_per_s;
    echo->fail = (sl_echo_fail)cfg->echo_fail;
    echo->fail_ppm = (uint32_t)cfg->echo_fail_ppm; /* the table caps it at 1000000 */
    echo->fail_seed = cfg->echo_fail_seed;
    if (strcmp(cfg->upstream, "builtin:echo") == 0)
        o->echo = echo;

    *offerings = NULL;
    if (cfg->offering.n > 0) {
        if ((*offerings = calloc(cfg->offering.n, sizeof(os_offering))) == NULL)
            return OS_ERR_NOMEM;
        for (size_t i = 0; i < cfg->offering.n; i++)
            if ((rc = sl_offering_parse(&(*offerings)[i], cfg->offering.items[i], err,
                                        sizeof(err))) != OS_OK) {
                os_log_error(log, "%s", err);
                return rc;
            }
        o->offerings = *offerings;
        o->n_offerings = cfg->offering.n;
    }

    *key = NULL;
    if (cfg->upstream_key_file != NULL || cfg->upstream_key_env != NULL) {
        const size_t cap = 1024;
        if ((*key = sodium_malloc(cap)) == NULL)
            return OS_ERR_NOMEM;
        if (cfg->upstream_key_file != NULL) {
            if ((rc = os_keyfile_read_text(*key, cap, NULL, cfg->upstream_key_file, err,
                                           sizeof(err))) != OS_OK) {
                os_log_error(log, "upstream_key_file: %s", err);
                return rc;
            }
        } else {
            const char *v = getenv(cfg->upstream_key_env);
            if (v == NULL || v[0] == '\0' || strlen(v) >= cap) {
                os_log_error(log, "upstream_key_env: the variable is unset, empty or too long");
                return OS_ERR_INVALID;
            }
            memcpy(*key, v, strlen(v) + 1);
        }
        o->upstream_key = *key;
    }
    return OS_OK;
}

os_err sl_seller_new(sl_seller **out, const sl_config *cfg, const os_logger *log)
{
    char listen[2][OS_CFG_LISTEN_STR_LEN];
    os_offering *offerings = NULL;
    sl_echo_config echo;
    char *key = NULL;
    sl_options o;
    os_err rc;

    *out = NULL;
    rc = options_from_config(&o, cfg, listen, &echo, &offerings, &key, log);
    if (rc == OS_OK)
        rc = sl_seller_new_opts(out, &o, log);
    free(offerings);
    if (key != NULL) {
        sodium_memzero(key, 1024);
        sodium_free(key);
    }
    return rc;
}

/* ---- start / stop ---- */

static void load_cb(void *ud, uint32_t *active, uint32_t *capacity)
{
    sl_seller *s = ud;
    *active = atomic_load(&s->busy);
    *capacity = s->opt.upstream_concurrency;
}

/* Builds the record of offs into r and its signed /v1/info body into *body (malloc'd). */
static os_err sign_record(sl_seller *s, os_record *r, char **body, const os_offering *offs,
                          size_t n_offs)
{
    json_t *rec = NULL, *info = NULL;
    uint8_t sig[65];
    char sighex[OS_HEX_LEN(65) + 1];
    struct timespec ts;
    os_err rc = OS_ERR_NOMEM;

    *body = NULL;
    memset(r, 0, sizeof(*r));
    memcpy(r->node, s->node, 20);
    if (strlen(s->endpoint) >= sizeof(r->endpoint))
        return OS_ERR_TOOBIG;
    snprintf(r->endpoint, sizeof(r->endpoint), "%s", s->endpoint);
    clock_gettime(CLOCK_REALTIME, &ts);
    r->seq = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    r->timestamp = (uint64_t)ts.tv_sec;
    r->chain_id = s->opt.chain_id;
    memcpy(r->escrow, s->opt.escrow, 20);
    memcpy(r->asset, s->opt.usdc, 20);
    memcpy(r->ohttp_keys, s->ohttp_keys, s->ohttp_keys_len);
    r->ohttp_keys_len = s->ohttp_keys_len;
    memcpy(r->offerings, offs, n_offs * sizeof(os_offering));
    r->n_offerings = n_offs;

    if ((rec = os_record_to_json(r)) == NULL)
        goto out;
    if ((rc = os_record_sign(sig, rec, s->sec->node_priv)) != OS_OK ||
        (rc = os_hex_encode(sighex, sizeof(sighex), sig, sizeof(sig), 1)) != OS_OK)
        goto out;
    rc = OS_ERR_NOMEM;
    if ((info = json_pack("{s:O,s:s}", "record", rec, "signature", sighex)) == NULL)
        goto out;
    *body = json_dumps(info, JSON_COMPACT);
    rc = *body != NULL ? OS_OK : OS_ERR_NOMEM;
out:
    json_decref(rec);
    json_decref(info);
    return rc;
}

/* Publishes a signed /v1/info body (taken) and its record. */
static void set_info(sl_seller *s, const os_record *r, char *body)
{
    pthread_mutex_lock(&s->info_mu);
    free(s->info_body);
    s->info_body = body;
    if (r != &s->record)
        memcpy(&s->record, r, sizeof(*r));
    pthread_mutex_unlock(&s->info_mu);
}

/* Builds the record of the current offerings and the signed /v1/info body. */
static os_err make_record(sl_seller *s)
{
    char *body = NULL;
    os_err rc = sign_record(s, &s->record, &body, s->offerings, s->n_offerings);

    if (rc == OS_OK)
        set_info(s, &s->record, body);
    return rc;
}

static os_err start_upstreams(sl_seller *s)
{
    char base[96];
    const char *url = s->upstream_url;
    bool openai = true, anthropic = false;
    sl_upstream_kind kind = SL_UPSTREAM_KIND_OPENAI;
    os_err rc;

    if (s->echo != NULL) {
        if ((rc = sl_echo_start(s->echo)) != OS_OK) {
            os_log_error(s->log, "cannot start the built-in upstream: %s", os_strerror(rc));
            return rc;
        }
        snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)sl_echo_port(s->echo));
        url = base;
        anthropic = true;
    } else if (s->opt.upstream_api == SL_UPSTREAM_ANTHROPIC) {
        openai = false;
        anthropic = true;
    } else if (s->opt.upstream_api == SL_UPSTREAM_OLLAMA) {
        kind = SL_UPSTREAM_KIND_OLLAMA;
    }
    sl_upstream_config uc = {
        .base_url = url,
        .kind = kind,
        .api_key = s->sec->upstream_key,
        .connect_timeout_ms = s->opt.upstream_connect_timeout_ms,
        .first_byte_timeout_ms = s->opt.upstream_first_byte_timeout_ms,
        /* a stream may not stall longer than it may take to start (docs/protocol.md §10.11) */
        .idle_timeout_ms = s->opt.upstream_first_byte_timeout_ms,
        .timeout_ms = s->opt.upstream_timeout_ms,
        /* more requests than this may be in flight; the rest reconnect when they are done */
        .pool_size = s->opt.upstream_concurrency < OS_HTTP_CLIENT_POOL_MAX
                         ? s->opt.upstream_concurrency
                         : OS_HTTP_CLIENT_POOL_MAX,
        .log = s->log,
    };
    if (openai && s->up_openai == NULL && (rc = sl_upstream_new(&s->up_openai, &uc)) != OS_OK)
        goto fail;
    uc.kind = SL_UPSTREAM_KIND_ANTHROPIC;
    if (anthropic && s->up_anthropic == NULL &&
        (rc = sl_upstream_new(&s->up_anthropic, &uc)) != OS_OK)
        goto fail;
    return OS_OK;
fail:
    os_log_error(s->log, "cannot set up the upstream: %s", os_strerror(rc));
    return rc;
}

static os_err start_chain(sl_seller *s)
{
    os_chain_error cerr;
    os_err rc;

    if (s->signer == NULL &&
        (rc = os_chain_signer_new(&s->signer, s->chain, &cerr, s->sec->node_priv)) != OS_OK) {
        os_log_error(s->log, "cannot reach the chain: %s", cerr.message);
        return rc;
    }
    if (s->chans == NULL) {
        sl_chans_config cc = {
            .chain = s->chain,
            .signer = s->signer,
            .ledger = s->ledger,
            .log = s->log,
            .chain_id = s->opt.chain_id,
            .refresh_ms = s->opt.channel_refresh_ms,
            .settle_threshold = s->opt.settle_threshold,
            .settle_interval_ms = s->opt.settle_interval_ms,
        };
        memcpy(cc.escrow, s->opt.escrow, 20);
        memcpy(cc.asset, s->opt.usdc, 20);
        memcpy(cc.seller, s->node, 20);
        if ((rc = sl_chans_new(&s->chans, &cc)) != OS_OK) {
            os_log_error(s->log, "cannot load the channels: %s", os_strerror(rc));
            return rc;
        }
    }
    return sl_chans_start(s->chans);
}

static os_err start_http(sl_seller *s)
{
    /* One buyer gateway is one address with as many requests in flight as its users make: allow
     * one address what the upstream can serve (at least the default 64), never more than 1024. */
    unsigned per_ip = s->opt.upstream_concurrency + 16;
    per_ip = per_ip < 64 ? 64 : per_ip > 1024 ? 1024 : per_ip;
    os_http_config hc = {
        .listen = s->listen,
        .threads = s->opt.http_threads,
        .max_body = s->opt.max_request,
        .drain_timeout_ms = s->opt.drain_timeout_ms,
        .log = s->log,
        .metrics = s->metrics,
        .metrics_prefix = "openseed_seller_http",
        .max_streams = s->opt.upstream_concurrency + 16,
        .stream_buffer = 256 * 1024 + 64,
        .max_connections = 1024,
        .per_ip_connections = per_ip,
        .tls_cert_file = s->tls_cert,
        .tls_key_file = s->tls_key,
    };
    os_err rc;

    if (s->http == NULL &&
        (rc = os_http_server_new(&s->http, &hc, sl_public_routes, sl_n_public_routes, s)) != OS_OK)
        goto fail;
    if ((rc = os_http_server_start(s->http)) != OS_OK)
        goto fail;
    if (s->admin_listen != NULL) {
        os_http_config ac = {
            .listen = s->admin_listen,
            .threads = 2,
            .max_body = 4096,
            .log = s->log,
        };
        if (s->admin == NULL && (rc = os_http_server_new(&s->admin, &ac, sl_admin_routes,
                                                         sl_n_admin_routes, s)) != OS_OK)
            goto fail;
        if ((rc = os_http_server_start(s->admin)) != OS_OK)
            goto fail;
    }
    return OS_OK;
fail:
    os_log_error(s->log, "cannot listen: %s", os_strerror(rc));
    return rc;
}

static os_err start_announcer(sl_seller *s)
{
    if (s->n_registries == 0) {
        os_log_warn(s->log, "no registry configured: buyers can reach this seller only directly");
        return OS_OK;
    }
    if (s->announcer == NULL) {
        sl_announcer *a = NULL;
        sl_announcer_config ac = {
            .registries = (const char *const *)s->registries,
            .n_registries = s->n_registries,
            .record = &s->record,
            .node_priv = s->sec->node_priv,
            .chain_id = s->opt.chain_id,
            .load = load_cb,
            .load_ud = s,
            .log = s->log,
            .ca_file = s->ca_file,
        };
        os_err rc = sl_announcer_new(&a, &ac);
        if (rc != OS_OK)
            return rc;
        pthread_mutex_lock(&s->info_mu); /* /healthz and the admin API's status read it */
        s->announcer = a;
        pthread_mutex_unlock(&s->info_mu);
    }
    return sl_announcer_start(s->announcer);
}

os_err sl_seller_start(sl_seller *s)
{
    os_err rc;

    if (s->started)
        return OS_OK;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->started_at_s = (int64_t)ts.tv_sec;
        s->started_mono_ms = sl_mono_ms();
    }
    if ((rc = start_upstreams(s)) != OS_OK || (rc = start_chain(s)) != OS_OK ||
        (rc = sl_jobs_start(s)) != OS_OK || (rc = start_http(s)) != OS_OK)
        goto fail;
    if (s->endpoint == NULL) {
        char ep[OS_CFG_LISTEN_STR_LEN + 16];
        os_cfg_listen l;
        if (os_cfg_parse_listen(&l, s->listen, NULL, 0) != OS_OK ||
            os_cfg_listen_url(ep, sizeof(ep), &l, os_http_server_port(s->http)) != OS_OK) {
            rc = OS_ERR_INVALID;
            goto fail;
        }
        pthread_mutex_lock(&s->info_mu); /* the admin API's status reads it */
        s->endpoint = strdup(ep);
        pthread_mutex_unlock(&s->info_mu);
        if (s->endpoint == NULL) {
            rc = OS_ERR_NOMEM;
            goto fail;
        }
        s->opt.endpoint = s->endpoint;
    }
    if ((rc = make_record(s)) != OS_OK || (rc = start_announcer(s)) != OS_OK) {
        os_log_error(s->log, "cannot sign or announce the record: %s", os_strerror(rc));
        goto fail;
    }
    s->started = true;
    {
        char addr[OS_ADDRESS_STR_LEN];
        os_log_event ev;
        os_eip55_format(addr, s->node);
        if (os_log_begin(&ev, s->log, OS_LOG_INFO, "seller listening")) {
            os_log_kv(&ev, "node", "%s", addr);
            os_log_kv(&ev, "port", "%u", (unsigned)os_http_server_port(s->http));
            if (s->admin != NULL)
                os_log_kv(&ev, "admin_port", "%u", (unsigned)os_http_server_port(s->admin));
            os_log_kv(&ev, "endpoint", "%s", s->endpoint);
            os_log_kv(&ev, "offerings", "%zu", s->n_offerings);
            os_log_end(&ev);
        }
    }
    return OS_OK;
fail:
    s->started = true; /* so stop tears down what did start */
    sl_seller_stop(s);
    return rc;
}

os_err sl_seller_reload(sl_seller *s, const sl_config *cfg)
{
    char err[ERRLEN];
    os_offering *parsed = NULL;
    offer_block *b = NULL, *old;
    os_record *r = NULL;
    char *body = NULL;
    size_t n = 0;
    os_err rc = OS_ERR_NOMEM;

    if (s == NULL || cfg == NULL || !s->started)
        return OS_ERR_INVALID;
    if (cfg->offering.n > 0 && (parsed = calloc(cfg->offering.n, sizeof(*parsed))) == NULL)
        goto fail;
    for (size_t i = 0; i < cfg->offering.n; i++)
        if ((rc = sl_offering_parse(&parsed[i], cfg->offering.items[i], err, sizeof(err))) !=
            OS_OK) {
            os_log_error(s->log, "offering: %s", err);
            goto fail;
        }
    if ((rc = new_block(&b, &n, s, s->upstream_url, parsed, cfg->offering.n)) != OS_OK)
        goto fail;
    if (n == s->n_offerings && memcmp(b->items, s->offerings, n * sizeof(os_offering)) == 0) {
        os_log_info(s->log, "offerings unchanged");
        rc = OS_OK; /* no new record: the registries keep the one they have */
        goto fail;
    }
    rc = OS_ERR_NOMEM;
    if ((r = malloc(sizeof(*r))) == NULL)
        goto fail;
    if ((rc = sign_record(s, r, &body, b->items, n)) != OS_OK) {
        os_log_error(s->log, "cannot sign the new record: %s", os_strerror(rc));
        goto fail;
    }
    /* The announcer checks the record as a registry would: the last step that may refuse. */
    if (s->announcer != NULL && (rc = sl_announcer_set_record(s->announcer, r)) != OS_OK) {
        os_log_error(s->log, "the new record cannot be announced: %s", os_strerror(rc));
        goto fail;
    }
    set_info(s, r, body);
    body = NULL;

    /* From here new requests are priced by the new block; see offer_block for the old ones. */
    old = block_of(s->offerings);
    b->older = old;
    __atomic_store_n(&s->offerings, b->items, __ATOMIC_RELEASE);
    __atomic_store_n(&s->n_offerings, n, __ATOMIC_RELEASE);
    /* A request takes a slot in busy before it looks its offering up and gives it back only once
     * its job is booked, so with no slot taken after the new block is out, nothing can still hold
     * an older one. Otherwise they wait for an idle moment at a later reload, or for the free. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (atomic_load(&s->busy) == 0) {
        free_blocks(b->older);
        b->older = NULL;
    }
    {
        os_log_event ev;
        if (os_log_begin(&ev, s->log, OS_LOG_INFO, "offerings reloaded")) {
            os_log_kv(&ev, "offerings", "%zu", n);
            os_log_kv(&ev, "announced", "%s", s->announcer != NULL ? "true" : "false");
            os_log_end(&ev);
        }
    }
    free(parsed);
    free(r);
    return OS_OK;
fail: /* or unchanged */
    free(parsed);
    free(b);
    free(r);
    free(body);
    return rc;
}

os_err sl_seller_reload_tls(sl_seller *s)
{
    if (s == NULL || s->http == NULL || !os_http_server_is_tls(s->http))
        return OS_OK;
    return os_http_server_reload_tls(s->http);
}

uint16_t sl_seller_port(const sl_seller *s)
{
    return s->http != NULL ? os_http_server_port(s->http) : 0;
}

uint16_t sl_seller_admin_port(const sl_seller *s)
{
    return s->admin != NULL ? os_http_server_port(s->admin) : 0;
}

void sl_seller_address(const sl_seller *s, uint8_t out[20])
{
    memcpy(out, s->node, 20);
}

sl_echo *sl_seller_echo(sl_seller *s)
{
    return s->echo;
}

void sl_seller_stop(sl_seller *s)
{
    if (s == NULL || !s->started)
        return;
    s->started = false;
    if (s->announcer != NULL)
        sl_announcer_stop(s->announcer);
    if (s->admin != NULL)
        os_http_server_stop(s->admin);
    if (s->http != NULL)
        os_http_server_stop(s->http); /* drains answers in flight, then cuts what is left */
    sl_jobs_stop(s);                  /* every paid request is booked before the chans stop */
    if (s->chans != NULL)
        sl_chans_stop(s->chans);
    if (s->echo != NULL)
        sl_echo_stop(s->echo);
    os_log_info(s->log, "seller stopped");
}

void sl_seller_free(sl_seller *s)
{
    if (s == NULL)
        return;
    sl_seller_stop(s);
    sl_announcer_free(s->announcer);
    os_http_server_free(s->admin);
    os_http_server_free(s->http);
    sl_chans_free(s->chans);
    os_chain_signer_free(s->signer);
    os_chain_free(s->chain);
    sl_upstream_free(s->up_openai);
    sl_upstream_free(s->up_anthropic);
    sl_echo_free(s->echo);
    sl_ledger_close(s->ledger);
    sl_serve_fini(s);
    if (s->sec != NULL)
        sodium_free(s->sec); /* wipes */
    for (size_t i = 0; i < s->n_registries; i++)
        free(s->registries[i]);
    free(s->registries);
    free_blocks(block_of(s->offerings));
    free(s->listen);
    free(s->admin_listen);
    free(s->data_dir);
    free(s->endpoint);
    free(s->rpc);
    free(s->upstream_url);
    free(s->tls_cert);
    free(s->tls_key);
    free(s->ca_file);
    free(s->info_body);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_mutex_destroy(&s->info_mu);
    pthread_mutex_destroy(&s->jobs_mu);
    pthread_cond_destroy(&s->jobs_cv);
    free(s);
}
