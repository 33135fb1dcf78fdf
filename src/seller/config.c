/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every key openseed-seller accepts, in one table, plus the checks that span keys: the admin API
 * may leave loopback only behind a token, it cannot share the public listener's address, a real
 * upstream needs at least one offering, and offerings may only name APIs the upstream speaks.
 * Defaults are PROTOCOL.md's (0.0.0.0:8378, admin 127.0.0.1:8380, Base mainnet).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/ct.h"
#include "openseed/keyfile.h"
#include "openseed/money.h"

#define OFF(f) offsetof(sl_config, f)

static os_err check_upstream(const char *value, char *err, size_t errcap)
{
    if (strncmp(value, "builtin:", 8) == 0) {
        if (strcmp(value, "builtin:echo") == 0)
            return OS_OK;
        if (err != NULL && errcap > 0)
            snprintf(err, errcap, "the only built-in upstream is builtin:echo");
        return OS_ERR_INVALID;
    }
    return os_cfg_check_url(value, err, errcap);
}

static const char *const upstream_apis[] = {"openai", "anthropic", "ollama", NULL};
/* In sl_echo_fail's order. */
static const char *const echo_fails[] = {"none", "500", "429", "drop-mid-stream",
                                         "slow-first-token", NULL};

__attribute__((format(printf, 3, 4))) static os_err fail(char *err, size_t errcap,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errcap > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return OS_ERR_INVALID;
}

static os_err parse_services(os_offering *o, const char *v, char *err, size_t errcap)
{
    while (*v != '\0') {
        size_t n = strcspn(v, ",");
        if (!os_record_name_ok(v, n))
            return fail(err, errcap, "offering: service names are 1-63 of A-Z a-z 0-9 . _ : / -");
        if (o->n_services == OS_RECORD_MAX_SERVICES)
            return fail(err, errcap, "offering: at most %s services", "8");
        memcpy(o->services[o->n_services], v, n);
        o->services[o->n_services++][n] = '\0';
        v += n;
        if (*v == ',' && *++v == '\0')
            return fail(err, errcap, "offering: empty service name");
    }
    return OS_OK;
}

static os_err parse_apis(os_offering *o, const char *v, char *err, size_t errcap)
{
    while (*v != '\0') {
        char name[32];
        size_t n = strcspn(v, ",");
        unsigned bit = 0;
        if (n < sizeof(name)) {
            memcpy(name, v, n);
            name[n] = '\0';
            bit = os_api_from_name(name);
        }
        if (bit == 0)
            return fail(err, errcap,
                        "offering: apis are openai.chat, openai.embeddings and "
                        "anthropic.messages");
        o->apis |= bit;
        v += n;
        if (*v == ',')
            v++;
    }
    return OS_OK;
}

static os_err parse_price(uint64_t *out, const char *key, const char *v, char *err, size_t errcap)
{
    if (os_usdc_parse(out, v) != OS_OK)
        return fail(err, errcap, "offering: %s must be USDC per million tokens, e.g. 0.15", key);
    return OS_OK;
}

/* The next blank-separated word of *p, NUL-terminated in place; NULL at the end. */
static char *next_word(char **p)
{
    char *s = *p, *w;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return NULL;
    w = s;
    while (*s != '\0' && *s != ' ' && *s != '\t')
        s++;
    if (*s != '\0')
        *s++ = '\0';
    *p = s;
    return w;
}

os_err sl_offering_parse(os_offering *out, const char *spec, char *err, size_t errcap)
{
    os_offering o;
    char buf[1024];
    char *cur = buf, *tok;
    bool has_input = false, has_output = false, has_cached = false;
    os_err rc = OS_OK;

    memset(&o, 0, sizeof(o));
    snprintf(o.capability, sizeof(o.capability), "inference");
    o.max_output_tokens = 4096;
    if (strlen(spec) >= sizeof(buf))
        return fail(err, errcap, "offering: longer than %s bytes", "1023");
    memcpy(buf, spec, strlen(spec) + 1);

    tok = next_word(&cur);
    if (tok == NULL || strchr(tok, '=') != NULL)
        return fail(err, errcap, "offering: must start with the service name(s)");
    if ((rc = parse_services(&o, tok, err, errcap)) != OS_OK)
        return rc;
    while (rc == OS_OK && (tok = next_word(&cur)) != NULL) {
        char *eq = strchr(tok, '=');
        const char *v;
        if (eq == NULL || eq == tok || eq[1] == '\0')
            return fail(err, errcap, "offering: expected key=value, e.g. model=llama3.1:8b");
        *eq = '\0';
        v = eq + 1;
        if (strcmp(tok, "model") == 0) {
            if (strlen(v) >= sizeof(o.model))
                return fail(err, errcap, "offering: model longer than %s bytes", "127");
            snprintf(o.model, sizeof(o.model), "%s", v);
        } else if (strcmp(tok, "apis") == 0) {
            rc = parse_apis(&o, v, err, errcap);
        } else if (strcmp(tok, "input") == 0) {
            rc = parse_price(&o.pricing.input, "input", v, err, errcap);
            has_input = true;
        } else if (strcmp(tok, "output") == 0) {
            rc = parse_price(&o.pricing.output, "output", v, err, errcap);
            has_output = true;
        } else if (strcmp(tok, "cached") == 0) {
            rc = parse_price(&o.pricing.cached, "cached", v, err, errcap);
            has_cached = true;
        } else if (strcmp(tok, "max_output") == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long long m = strtoull(v, &end, 10);
            if (errno != 0 || end == v || *end != '\0' || v[0] < '0' || v[0] > '9' || m < 1 ||
                m > 1000000)
                return fail(err, errcap, "offering: max_output must be 1..%s tokens", "1000000");
            o.max_output_tokens = m;
        } else if (strcmp(tok, "capability") == 0) {
            if (strcmp(v, "inference") != 0 && strcmp(v, "agent") != 0 && strcmp(v, "tool") != 0)
                return fail(err, errcap, "offering: capability is inference, agent or tool");
            snprintf(o.capability, sizeof(o.capability), "%s", v);
        } else {
            return fail(err, errcap,
                        "offering: unknown key %s (model, apis, input, output, cached, max_output, "
                        "capability)",
                        os_record_name_ok(tok, strlen(tok)) ? tok : "?");
        }
    }
    if (rc != OS_OK)
        return rc;
    if (o.model[0] == '\0')
        return fail(err, errcap, "offering: model= is required");
    if (o.apis == 0)
        return fail(err, errcap, "offering: apis= is required");
    if (!has_input || !has_output)
        return fail(err, errcap, "offering: input= and output= prices are required");
    if (!has_cached)
        o.pricing.cached = o.pricing.input;
    *out = o;
    return OS_OK;
}

/* A key file that exists must be a private, valid key; a missing one is created on first run. */
static os_err check_key_file(const char *value, char *err, size_t errcap)
{
    uint8_t key[32];
    os_err rc = os_keyfile_read_secp(key, value, err, errcap);

    os_wipe(key, sizeof(key));
    return rc == OS_ERR_NOTFOUND ? OS_OK : rc;
}

static os_err check_offering(const char *value, char *err, size_t errcap)
{
    os_offering o;
    return sl_offering_parse(&o, value, err, errcap);
}

static const os_cfg_entry entries[] = {
    OS_NODE_CFG_ENTRIES(sl_config, "0.0.0.0:8378", "address and port to serve paid inference on",
                        "/var/lib/openseed", "directory for seller.db", OS_CFG_REQUIRED,
                        "a registry to announce to; give several for redundancy",
                        "chain JSON-RPC URL (never printed: URLs often embed an API key)"),
    OS_NODE_CFG_TLS_ENTRIES(sl_config),
    OS_NODE_CFG_CA_ENTRY(sl_config),
    {.name = "endpoint",
     .type = OS_CFG_URL,
     .flags = OS_CFG_REQUIRED,
     .offset = OFF(endpoint),
     .help = "public URL buyers reach this seller at (published in the signed record)"},
    {.name = "upstream",
     .type = OS_CFG_STRING,
     .flags = OS_CFG_REQUIRED,
     .offset = OFF(upstream),
     .check = check_upstream,
     .meta = "URL|builtin:echo",
     .help = "the inference server to proxy to, or builtin:echo for tests"},
    {.name = "upstream_api",
     .type = OS_CFG_ENUM,
     .offset = OFF(upstream_api),
     .dflt = "openai",
     .choices = upstream_apis,
     .help = "the API the upstream speaks"},
    {.name = "upstream_key_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = OFF(upstream_key_file),
     .meta = "FILE",
     .help = "file holding the upstream's API key (mode 0600)"},
    {.name = "upstream_key_env",
     .type = OS_CFG_STRING,
     .offset = OFF(upstream_key_env),
     .meta = "VAR",
     .help = "environment variable holding the upstream's API key (instead of a file)"},
    {.name = "upstream_timeout",
     .type = OS_CFG_DURATION,
     .offset = OFF(upstream_timeout),
     .dflt = "10m",
     .min = 1,
     .max = 86400,
     .help = "longest upstream call, streams included"},
    {.name = "upstream_connect_timeout",
     .type = OS_CFG_DURATION,
     .offset = OFF(upstream_connect_timeout),
     .dflt = "5s",
     .min = 1,
     .max = 600,
     .help = "how long connecting to the upstream may take"},
    {.name = "upstream_first_byte_timeout",
     .type = OS_CFG_DURATION,
     .offset = OFF(upstream_first_byte_timeout),
     .dflt = "60s",
     .min = 1,
     .max = 3600,
     .help = "how long the upstream may take to start a streamed answer (no charge when it "
             "does not), or stay silent in one; whole answers are bounded by upstream_timeout"},
    {.name = "upstream_concurrency",
     .type = OS_CFG_U64,
     .offset = OFF(upstream_concurrency),
     .dflt = "32",
     .min = 1,
     .max = 4096,
     .help = "requests in flight to the upstream at most; more are refused with 503"},
    {.name = "offering",
     .type = OS_CFG_STRING,
     .flags = OS_CFG_REPEATABLE,
     .offset = OFF(offering),
     .check = check_offering,
     .meta = "SPEC",
     .help = "what is sold: SERVICE[,SERVICE] model=M apis=API[,API] input=USDC output=USDC "
             "[cached=USDC] [max_output=N] (prices per million tokens)"},
    {.name = "admin_listen",
     .type = OS_CFG_LISTEN,
     .offset = OFF(admin_listen),
     .dflt = "127.0.0.1:8380",
     .help = "address and port of the admin API"},
    {.name = "admin_token_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = OFF(admin_token_file),
     .meta = "FILE",
     .help = "file holding the admin API bearer token (mode 0600); required off loopback "
             "(default <data_dir>/admin.token, created on first run)"},
    {.name = "node_key",
     .type = OS_CFG_PATH,
     .offset = OFF(node_key),
     .check = check_key_file,
     .meta = "FILE",
     .help = "secp256k1 node key (mode 0600; default <data_dir>/node.key, created when missing)"},
    {.name = "gateway_key",
     .type = OS_CFG_PATH,
     .offset = OFF(gateway_key),
     .check = check_key_file,
     .meta = "FILE",
     .help = "X25519 key for the encrypted envelope (mode 0600; default <data_dir>/gateway.key, "
             "created when missing)"},
    {.name = "settle_threshold",
     .type = OS_CFG_USDC,
     .offset = OFF(settle_threshold),
     .dflt = "1",
     .min = 1,
     .help = "USDC claimable on a channel before it is claimed automatically"},
    {.name = "settle_interval",
     .type = OS_CFG_DURATION,
     .offset = OFF(settle_interval),
     .dflt = "1h",
     .min = 1,
     .max = 30 * 86400,
     .help = "claim whatever is claimable at least this often"},
    {.name = "channel_refresh",
     .type = OS_CFG_DURATION,
     .offset = OFF(channel_refresh),
     .dflt = "15s",
     .min = 1,
     .max = 3600,
     .help = "how often channel states and escrow events are read from the chain"},
    {.name = "max_request",
     .type = OS_CFG_U64,
     .offset = OFF(max_request),
     .dflt = "1048576",
     .min = 1024,
     .max = 16777216,
     .help = "largest encrypted request accepted, in bytes (larger: 413)"},
    {.name = "echo_latency_ms",
     .type = OS_CFG_U64,
     .offset = OFF(echo_latency_ms),
     .dflt = "0",
     .max = 600000,
     .help = "builtin:echo: delay before every answer, in milliseconds"},
    {.name = "echo_tokens_per_s",
     .type = OS_CFG_U64,
     .offset = OFF(echo_tokens_per_s),
     .dflt = "0",
     .max = 100000,
     .help = "builtin:echo: streaming pace (0 = as fast as possible)"},
    {.name = "echo_fail",
     .type = OS_CFG_ENUM,
     .offset = OFF(echo_fail),
     .dflt = "none",
     .choices = echo_fails,
     .help = "builtin:echo: inject this failure into every request (or a share: echo_fail_ppm)"},
    {.name = "echo_fail_ppm",
     .type = OS_CFG_U64,
     .offset = OFF(echo_fail_ppm),
     .dflt = "0",
     .max = 1000000,
     .help = "builtin:echo: with echo_fail, the share of requests that fail in millionths "
             "(0 or 1000000 = every request)"},
    {.name = "echo_fail_seed",
     .type = OS_CFG_U64,
     .offset = OFF(echo_fail_seed),
     .dflt = "0",
     .help = "builtin:echo: which requests fail under echo_fail_ppm: a function of this seed and "
             "the request's number (reproducible)"},
};

static void validate(const void *cfgp, os_cfg_report *rep)
{
    const sl_config *cfg = cfgp;

    os_node_validate(&cfg->node, rep);
    if (!os_cfg_listen_is_loopback(&cfg->admin_listen) && cfg->admin_token_file == NULL)
        os_cfg_error(rep,
                     "admin_listen: %s is not a loopback address, so admin_token_file is "
                     "required",
                     cfg->admin_listen.host);
    if (cfg->admin_listen.port != 0 && cfg->admin_listen.port == cfg->node.listen.port &&
        strcmp(cfg->admin_listen.host, cfg->node.listen.host) == 0)
        os_cfg_error(rep, "admin_listen: must differ from listen");
    if (cfg->upstream_key_file != NULL && cfg->upstream_key_env != NULL)
        os_cfg_error(rep, "upstream_key_env: give upstream_key_file or upstream_key_env, not both");
    if (cfg->upstream == NULL)
        return;
    bool echo = strcmp(cfg->upstream, "builtin:echo") == 0;
    if (cfg->offering.n == 0 && !echo)
        os_cfg_error(rep, "offering: at least one is required (what this seller sells)");
    for (size_t i = 0; i < cfg->offering.n; i++) {
        os_offering o;
        unsigned speaks;
        if (sl_offering_parse(&o, cfg->offering.items[i], NULL, 0) != OS_OK)
            continue; /* reported by the entry's check */
        speaks = echo ? (OS_API_OPENAI_CHAT | OS_API_OPENAI_EMBEDDINGS | OS_API_ANTHROPIC_MESSAGES)
                 : cfg->upstream_api == SL_UPSTREAM_ANTHROPIC
                     ? OS_API_ANTHROPIC_MESSAGES
                     : (OS_API_OPENAI_CHAT | OS_API_OPENAI_EMBEDDINGS);
        if ((o.apis & ~speaks) != 0)
            os_cfg_error(rep,
                         "offering: %s names an API the upstream (upstream_api) does not speak",
                         o.services[0]);
    }
}

const os_cfg_program sl_config_program = {
    .name = "openseed-seller",
    .version = OPENSEED_VERSION,
    .summary = "OpenSeed seller: sells inference from an upstream model server for USDC paid "
               "through payment channels.",
    .entries = entries,
    .n_entries = sizeof(entries) / sizeof(entries[0]),
    .validate = validate,
};
