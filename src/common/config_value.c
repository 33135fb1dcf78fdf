/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The config module's values: the standalone parsers and checks config.h exports (listen
 * addresses, URLs, durations, booleans), and the typed field layer the loader in config.c drives,
 * which checks one text value against its table entry (type, bounds, choices, the entry's own
 * check), stores it in the program's struct, and clears or frees that field again. Nothing here
 * knows where a value came from; reasons written to err never repeat the value.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openseed/money.h"

#define MAX_VALUE_LEN 4096
#define MAX_LIST_ITEMS 64

/* ---------------------------------------------------------------------------------------------- */
/* value parsers */

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* Digits only (leading zeros allowed in a config), at most UINT64_MAX. */
static os_err parse_u64(uint64_t *out, const char *s, size_t n)
{
    uint64_t v = 0;

    if (!all_digits(s, n))
        return OS_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return OS_ERR_RANGE;
        v = v * 10 + d;
    }
    *out = v;
    return OS_OK;
}

os_err os_cfg_parse_duration(uint64_t *secs, const char *s)
{
    size_t n;
    uint64_t v, mult = 1;
    os_err rc;

    if (secs == NULL || s == NULL)
        return OS_ERR_INVALID;
    n = strlen(s);
    if (n > 0) {
        switch (s[n - 1]) {
        case 's':
            mult = 1;
            n--;
            break;
        case 'm':
            mult = 60;
            n--;
            break;
        case 'h':
            mult = 3600;
            n--;
            break;
        case 'd':
            mult = 86400;
            n--;
            break;
        default:
            break;
        }
    }
    rc = parse_u64(&v, s, n);
    if (rc != OS_OK)
        return rc;
    if (v > UINT64_MAX / mult)
        return OS_ERR_RANGE;
    *secs = v * mult;
    return OS_OK;
}

os_err os_cfg_parse_bool(bool *out, const char *s)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    if (out == NULL || s == NULL)
        return OS_ERR_INVALID;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return OS_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return OS_OK;
        }
    }
    return OS_ERR_INVALID;
}

/* A DNS name (RFC 1123 labels) or, when every label is numeric, a dotted IPv4 address. */
static os_err check_host(const char *h, size_t n, char *err, size_t errcap)
{
    bool numeric = true;
    size_t start = 0;

    if (n == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "missing host");
    if (n > 253)
        return os_errf(err, errcap, OS_ERR_INVALID, "host name longer than 253 characters");
    for (size_t i = 0; i <= n; i++) {
        if (i < n && h[i] != '.') {
            char c = h[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-'))
                return os_errf(err, errcap, OS_ERR_INVALID, "invalid character in host name");
            if (c < '0' || c > '9')
                numeric = false;
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > 63)
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "invalid host name (empty or over-long label)");
        if (h[start] == '-' || h[i - 1] == '-')
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "invalid host name (label starts or ends with '-')");
        start = i + 1;
    }
    if (numeric) {
        char tmp[16];
        struct in_addr a4;
        if (n >= sizeof(tmp))
            return os_errf(err, errcap, OS_ERR_INVALID, "invalid IPv4 address");
        memcpy(tmp, h, n);
        tmp[n] = '\0';
        if (inet_pton(AF_INET, tmp, &a4) != 1)
            return os_errf(err, errcap, OS_ERR_INVALID, "invalid IPv4 address");
    }
    return OS_OK;
}

static os_err check_v6(const char *h, size_t n, char *err, size_t errcap)
{
    char tmp[64];
    struct in6_addr a6;

    if (n == 0 || n >= sizeof(tmp))
        return os_errf(err, errcap, OS_ERR_INVALID, "invalid IPv6 address");
    memcpy(tmp, h, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, &a6) != 1)
        return os_errf(err, errcap, OS_ERR_INVALID, "invalid IPv6 address");
    return OS_OK;
}

static os_err parse_port(uint16_t *out, const char *s, size_t n, unsigned lo, char *err,
                         size_t errcap)
{
    uint64_t v;

    if (n == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "missing port");
    if (n > 5 || parse_u64(&v, s, n) != OS_OK || v > 65535 || v < lo)
        return os_errf(err, errcap, OS_ERR_INVALID, "port must be a number from %u to 65535", lo);
    *out = (uint16_t)v;
    return OS_OK;
}

/*
 * Splits "host[:port]" or "[v6][:port]" in s[0..n) and checks both parts. port_lo is the lowest
 * acceptable port; need_port says whether the port may be left out.
 */
static os_err parse_hostport(const char **host, size_t *host_len, uint16_t *port, const char *s,
                             size_t n, bool need_port, unsigned port_lo, char *err, size_t errcap)
{
    const char *rest;
    size_t rest_len;
    os_err rc;

    *port = 0;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return os_errf(err, errcap, OS_ERR_INVALID, "missing ']' after IPv6 address");
        *host = s + 1;
        *host_len = (size_t)(close - s) - 1;
        rc = check_v6(*host, *host_len, err, errcap);
        if (rc != OS_OK)
            return rc;
        rest = close + 1;
        rest_len = n - (size_t)(rest - s);
        if (rest_len > 0 && rest[0] != ':')
            return os_errf(err, errcap, OS_ERR_INVALID, "unexpected text after ']'");
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) != NULL)
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "an IPv6 address must be in brackets, as [::1]:8080");
        *host = s;
        *host_len = colon != NULL ? (size_t)(colon - s) : n;
        rc = check_host(*host, *host_len, err, errcap);
        if (rc != OS_OK)
            return rc;
        rest = s + *host_len;
        rest_len = n - *host_len;
    }
    if (rest_len == 0) {
        if (need_port)
            return os_errf(err, errcap, OS_ERR_INVALID, "expected HOST:PORT");
        return OS_OK;
    }
    return parse_port(port, rest + 1, rest_len - 1, port_lo, err, errcap);
}

os_err os_cfg_check_url(const char *s, char *err, size_t errcap)
{
    size_t n, auth_len;
    const char *auth, *host;
    size_t host_len;
    uint16_t port;

    if (s == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "missing URL");
    n = strlen(s);
    if (n > 2048)
        return os_errf(err, errcap, OS_ERR_INVALID, "URL longer than 2048 characters");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f)
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "URL contains a space, control or non-ASCII character");
    }
    if (strncmp(s, "http://", 7) == 0)
        auth = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        auth = s + 8;
    else
        return os_errf(err, errcap, OS_ERR_INVALID, "URL must start with http:// or https://");
    auth_len = strcspn(auth, "/?#");
    if (memchr(auth, '@', auth_len) != NULL)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "user info (user@host) is not allowed in a URL");
    return parse_hostport(&host, &host_len, &port, auth, auth_len, false, 1, err, errcap);
}

os_err os_cfg_parse_listen(os_cfg_listen *out, const char *s, char *err, size_t errcap)
{
    const char *host;
    size_t host_len;
    uint16_t port;
    os_err rc;

    if (out == NULL || s == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "missing address");
    rc = parse_hostport(&host, &host_len, &port, s, strlen(s), true, 0, err, errcap);
    if (rc != OS_OK)
        return rc;
    if (host_len >= sizeof(out->host))
        return os_errf(err, errcap, OS_ERR_INVALID, "host name too long");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = port;
    return OS_OK;
}

os_err os_cfg_listen_sockaddr(struct sockaddr_storage *out, socklen_t *out_len,
                              const os_cfg_listen *l, char *err, size_t errcap)
{
    struct in_addr v4 = {.s_addr = htonl(INADDR_LOOPBACK)};
    struct in6_addr v6;

    if (out == NULL || out_len == NULL || l == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "missing address");
    memset(out, 0, sizeof(*out));
    if (strcasecmp(l->host, "localhost") == 0 || inet_pton(AF_INET, l->host, &v4) == 1) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)out;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(l->port);
        a4->sin_addr = v4;
        *out_len = sizeof(*a4);
        return OS_OK;
    }
    if (inet_pton(AF_INET6, l->host, &v6) == 1) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(l->port);
        a6->sin6_addr = v6;
        *out_len = sizeof(*a6);
        return OS_OK;
    }
    /* a name would need a DNS lookup at start-up, and could then bind somewhere unexpected */
    return os_errf(err, errcap, OS_ERR_INVALID,
                   "host must be an IP address or localhost, not a name to look up");
}

bool os_cfg_listen_is_loopback(const os_cfg_listen *l)
{
    struct sockaddr_storage sa;
    socklen_t len;

    if (os_cfg_listen_sockaddr(&sa, &len, l, NULL, 0) != OS_OK)
        return false;
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&sa;
        return ntohl(a4->sin_addr.s_addr) >> 24 == 127; /* 127.0.0.0/8 */
    }
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&sa;
    return IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
}

void os_cfg_listen_format(char out[OS_CFG_LISTEN_STR_LEN], const os_cfg_listen *l)
{
    if (out == NULL)
        return;
    if (l == NULL)
        out[0] = '\0';
    else if (strchr(l->host, ':') != NULL)
        snprintf(out, OS_CFG_LISTEN_STR_LEN, "[%.*s]:%u", OS_CFG_HOST_MAX - 1, l->host,
                 (unsigned)l->port);
    else
        snprintf(out, OS_CFG_LISTEN_STR_LEN, "%.*s:%u", OS_CFG_HOST_MAX - 1, l->host,
                 (unsigned)l->port);
}

os_err os_cfg_listen_url(char *out, size_t cap, const os_cfg_listen *l, uint16_t port)
{
    char hp[OS_CFG_LISTEN_STR_LEN];
    os_cfg_listen a;
    int n;

    if (out == NULL || cap == 0 || l == NULL)
        return OS_ERR_INVALID;
    a = *l;
    if (strcmp(a.host, "0.0.0.0") == 0 || a.host[0] == '\0' || strcmp(a.host, "*") == 0)
        snprintf(a.host, sizeof(a.host), "127.0.0.1");
    else if (strcmp(a.host, "::") == 0)
        snprintf(a.host, sizeof(a.host), "::1");
    if (port != 0)
        a.port = port;
    os_cfg_listen_format(hp, &a);
    n = snprintf(out, cap, "http://%s", hp);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return OS_ERR_TOOBIG;
    }
    return OS_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* fields */

static size_t field_size(const os_cfg_entry *e)
{
    if (cfg_is_list(e))
        return sizeof(os_cfg_list);
    switch (e->type) {
    case OS_CFG_STRING:
    case OS_CFG_PATH:
    case OS_CFG_URL:
        return sizeof(char *);
    case OS_CFG_BOOL:
        return sizeof(bool);
    case OS_CFG_U64:
    case OS_CFG_USDC:
    case OS_CFG_DURATION:
        return sizeof(uint64_t);
    case OS_CFG_LOG_LEVEL:
        return sizeof(os_log_level);
    case OS_CFG_LISTEN:
        return sizeof(os_cfg_listen);
    case OS_CFG_ENUM:
        return sizeof(int);
    case OS_CFG_ADDRESS:
        return sizeof(os_cfg_address);
    }
    return 0;
}

void os_cfg_field_clear(const os_cfg_entry *e, void *cfg, bool release)
{
    if (release && cfg_is_list(e)) {
        os_cfg_list *l = CFG_FIELD(cfg, e, os_cfg_list);
        for (size_t i = 0; i < l->n; i++)
            free(l->items[i]);
        free(l->items);
    } else if (release && cfg_is_text(e)) {
        free(*CFG_FIELD(cfg, e, char *));
    }
    memset((char *)cfg + e->offset, 0, field_size(e));
}

/* Appends or replaces a text value; takes ownership of v. */
static os_err store_text(const os_cfg_entry *e, void *cfg, char *v, char *err, size_t errcap)
{
    if (cfg_is_list(e)) {
        os_cfg_list *l = CFG_FIELD(cfg, e, os_cfg_list);
        char **grown;
        if (l->n >= MAX_LIST_ITEMS) {
            free(v);
            return os_errf(err, errcap, OS_ERR_INVALID, "more than %d values", MAX_LIST_ITEMS);
        }
        grown = realloc(l->items, (l->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            free(v);
            return OS_ERR_NOMEM;
        }
        l->items = grown;
        l->items[l->n++] = v;
    } else {
        char **slot = CFG_FIELD(cfg, e, char *);
        free(*slot);
        *slot = v;
    }
    return OS_OK;
}

static char *expand_home(const char *v, char *err, size_t errcap)
{
    const char *home;
    size_t hl, vl;
    char *out;

    if (v[0] != '~' || (v[1] != '/' && v[1] != '\0'))
        return strdup(v);
    home = getenv("HOME");
    if (home == NULL || home[0] != '/') {
        os_errf(err, errcap, OS_ERR_INVALID,
                "the path starts with ~ but HOME is not set to an absolute path");
        return NULL;
    }
    hl = strlen(home);
    vl = strlen(v + 1);
    if (hl + vl > MAX_VALUE_LEN) {
        os_errf(err, errcap, OS_ERR_INVALID, "path too long");
        return NULL;
    }
    out = malloc(hl + vl + 1);
    if (out != NULL) {
        memcpy(out, home, hl);
        memcpy(out + hl, v + 1, vl + 1);
    }
    return out;
}

static os_err check_bounds(const os_cfg_entry *e, uint64_t v, char *err, size_t errcap)
{
    uint64_t max = e->max != 0 ? e->max : UINT64_MAX;
    char lo[OS_USDC_LEN], hi[OS_USDC_LEN];

    if (v >= e->min && v <= max)
        return OS_OK;
    switch (e->type) {
    case OS_CFG_USDC:
        if (os_usdc_format(lo, sizeof(lo), e->min) != OS_OK ||
            os_usdc_format(hi, sizeof(hi), max) != OS_OK)
            return os_errf(err, errcap, OS_ERR_INVALID, "out of range");
        return os_errf(err, errcap, OS_ERR_INVALID, "must be from %s to %s USDC", lo, hi);
    case OS_CFG_DURATION:
        return os_errf(err, errcap, OS_ERR_INVALID, "must be from %llus to %llus",
                       (unsigned long long)e->min, (unsigned long long)max);
    default:
        return os_errf(err, errcap, OS_ERR_INVALID, "must be from %llu to %llu",
                       (unsigned long long)e->min, (unsigned long long)max);
    }
}

/* The uint64 types: each has its own parser and wording, then the same bounds check. */
static os_err set_number(const os_cfg_entry *e, void *cfg, const char *value, char *err,
                         size_t errcap)
{
    const char *too_large, *syntax;
    uint64_t u = 0;
    os_err rc;

    switch (e->type) {
    case OS_CFG_USDC:
        rc = os_usdc_parse(&u, value);
        too_large = "amount too large";
        syntax = "expected a USDC amount with at most 6 decimals, like 5 or 1.25";
        break;
    case OS_CFG_DURATION:
        rc = os_cfg_parse_duration(&u, value);
        too_large = "duration too large";
        syntax = "expected a duration like 30, 30s, 15m, 2h or 1d";
        break;
    default:
        rc = parse_u64(&u, value, strlen(value));
        too_large = "number too large";
        syntax = "expected a whole number";
        break;
    }
    if (rc == OS_ERR_RANGE)
        return os_errf(err, errcap, OS_ERR_INVALID, "%s", too_large);
    if (rc != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID, "%s", syntax);
    if (check_bounds(e, u, err, errcap) != OS_OK)
        return OS_ERR_INVALID;
    *CFG_FIELD(cfg, e, uint64_t) = u;
    return OS_OK;
}

os_err os_cfg_field_set(const os_cfg_entry *e, void *cfg, const char *value, char *err,
                        size_t errcap)
{
    size_t n = strlen(value);
    os_err rc;

    if (n == 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "empty value");
    if (n > MAX_VALUE_LEN)
        return os_errf(err, errcap, OS_ERR_INVALID, "value longer than %d bytes", MAX_VALUE_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f)
            return os_errf(err, errcap, OS_ERR_INVALID, "value contains a control character");
    }
    switch (e->type) {
    case OS_CFG_STRING:
    case OS_CFG_PATH:
    case OS_CFG_URL: {
        char *copy;
        if (e->type == OS_CFG_URL) {
            rc = os_cfg_check_url(value, err, errcap);
            if (rc != OS_OK)
                return rc;
        }
        if (e->check != NULL) {
            rc = e->check(value, err, errcap);
            if (rc != OS_OK)
                return rc;
        }
        copy = e->type == OS_CFG_PATH ? expand_home(value, err, errcap) : strdup(value);
        if (copy == NULL)
            return e->type == OS_CFG_PATH && err != NULL && err[0] != '\0' ? OS_ERR_INVALID
                                                                           : OS_ERR_NOMEM;
        return store_text(e, cfg, copy, err, errcap);
    }
    case OS_CFG_BOOL: {
        bool b;
        if (os_cfg_parse_bool(&b, value) != OS_OK)
            return os_errf(err, errcap, OS_ERR_INVALID,
                           "expected true or false (also yes/no, on/off, 1/0)");
        *CFG_FIELD(cfg, e, bool) = b;
        break;
    }
    case OS_CFG_U64:
    case OS_CFG_USDC:
    case OS_CFG_DURATION:
        return set_number(e, cfg, value, err, errcap);
    case OS_CFG_LOG_LEVEL: {
        os_log_level lv;
        if (os_log_level_parse(&lv, value) != OS_OK)
            return os_errf(err, errcap, OS_ERR_INVALID, "expected error, warn, info or debug");
        *CFG_FIELD(cfg, e, os_log_level) = lv;
        break;
    }
    case OS_CFG_LISTEN: {
        os_cfg_listen l;
        struct sockaddr_storage sa;
        socklen_t sa_len;
        rc = os_cfg_parse_listen(&l, value, err, errcap);
        if (rc == OS_OK)
            rc = os_cfg_listen_sockaddr(&sa, &sa_len, &l, err, errcap);
        if (rc != OS_OK)
            return rc;
        *CFG_FIELD(cfg, e, os_cfg_listen) = l;
        break;
    }
    case OS_CFG_ENUM: {
        char list[256];
        size_t used = 0;
        for (int i = 0; e->choices != NULL && e->choices[i] != NULL; i++) {
            if (strcmp(value, e->choices[i]) == 0) {
                *CFG_FIELD(cfg, e, int) = i;
                return OS_OK;
            }
            int w =
                snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", e->choices[i]);
            if (w > 0 && (size_t)w < sizeof(list) - used)
                used += (size_t)w;
        }
        list[used] = '\0';
        return os_errf(err, errcap, OS_ERR_INVALID, "expected one of: %s", list);
    }
    case OS_CFG_ADDRESS: {
        os_cfg_address a;
        if (os_eip55_parse(a.bytes, value) != OS_OK)
            return os_errf(
                err, errcap, OS_ERR_INVALID,
                "expected an address: 0x and 40 hex digits, with a valid EIP-55 checksum "
                "when in mixed case");
        a.set = true;
        *CFG_FIELD(cfg, e, os_cfg_address) = a;
        break;
    }
    default:
        return os_errf(err, errcap, OS_ERR_INVALID, "unsupported type in the config table");
    }
    return OS_OK;
}
