/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The table-driven configuration loader behind config.h. It reads argv first (to find --config and
 * the action flags and to reject unknown options), then applies defaults, the INI file and the
 * flags in that order, checks required keys and secret files, and runs the program's own cross-key
 * checks, collecting every problem on the way. libinih does the INI tokenising through a line
 * reader of ours, which counts lines (so errors carry them), enforces the size caps, refuses
 * sections and lines that are not `key = value`, and strips leading blanks so inih's multi-line
 * continuation never silently glues two lines together.
 */
#include "openseed/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "openseed/money.h"

#define MAX_ERRORS 100
#define MAX_VALUE_LEN 4096
#define MAX_LIST_ITEMS 64
#define MAX_NAME_LEN 64
#define MAX_FILE_BYTES (1024 * 1024)
#define REASON_LEN 256

typedef enum src_kind { SRC_NONE, SRC_DEFAULT, SRC_FILE, SRC_FLAG } src_kind;

/* Where an entry's value came from, for duplicate checks and error messages. */
typedef struct entry_state {
    src_kind src;
    int line;         /* SRC_FILE */
    const char *flag; /* SRC_FLAG: the argv token, "--name..." */
    size_t flag_len;  /* bytes of the flag name, up to any '=' */
} entry_state;

typedef struct pending_flag {
    size_t entry;
    const char *value;
    const char *token;
    size_t name_len;
} pending_flag;

typedef struct load_state {
    const os_cfg_program *prog;
    void *cfg;
    os_cfg_report *rep;
    entry_state *es;
    /* the INI file being read */
    const char *path;
    FILE *f;
    int lineno;
    char *line;
    size_t linecap;
    size_t total;
} load_state;

/* ---------------------------------------------------------------------------------------------- */
/* errors */

static void add_error_str(os_cfg_report *rep, const char *text)
{
    char **grown;
    char *copy;

    if (rep->n_errors > MAX_ERRORS)
        return;
    if (rep->n_errors == MAX_ERRORS)
        text = "too many errors; not listing more";
    copy = strdup(text);
    grown = realloc(rep->errors, (rep->n_errors + 1) * sizeof(*grown));
    if (copy == NULL || grown == NULL) {
        free(copy);
        if (grown != NULL)
            rep->errors = grown;
        rep->nomem = true;
        return;
    }
    rep->errors = grown;
    rep->errors[rep->n_errors++] = copy;
}

void os_cfg_error(os_cfg_report *rep, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (rep == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    add_error_str(rep, buf);
}

/* A short printable rendering of a value for an error message. */
static void show_value(char *out, size_t cap, const char *v)
{
    size_t n = 0, i;

    for (i = 0; v[i] != '\0' && n + 4 < cap && i < 64; i++) {
        unsigned char c = (unsigned char)v[i];
        out[n++] = (c < 0x20 || c == 0x7f || c == '"') ? '?' : (char)c;
    }
    if (v[i] != '\0' && n + 4 < cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* "where" for an entry's current source, into buf. */
static const char *where_of(const load_state *st, size_t idx, char *buf, size_t cap)
{
    const entry_state *es = &st->es[idx];

    switch (es->src) {
    case SRC_FILE:
        snprintf(buf, cap, "%s:%d", st->path, es->line);
        break;
    case SRC_FLAG:
        snprintf(buf, cap, "%.*s", (int)es->flag_len, es->flag);
        break;
    case SRC_DEFAULT:
        snprintf(buf, cap, "default");
        break;
    case SRC_NONE:
        snprintf(buf, cap, "configuration");
        break;
    }
    return buf;
}

/* "file:line: key" or "--flag" (the flag already names the key): how an entry's errors start. */
static const char *prefix_of(const load_state *st, size_t idx, char *buf, size_t cap)
{
    char where[512];

    where_of(st, idx, where, sizeof(where));
    if (st->es[idx].src == SRC_FLAG)
        snprintf(buf, cap, "%s", where);
    else
        snprintf(buf, cap, "%s: %s", where, st->prog->entries[idx].name);
    return buf;
}

static void value_error(load_state *st, size_t idx, const char *reason, const char *value)
{
    const os_cfg_entry *e = &st->prog->entries[idx];
    char prefix[600], shown[80];

    prefix_of(st, idx, prefix, sizeof(prefix));
    if (value == NULL || (e->flags & OS_CFG_SECRET)) {
        os_cfg_error(st->rep, "%s: %s", prefix, reason);
    } else {
        show_value(shown, sizeof(shown), value);
        os_cfg_error(st->rep, "%s: %s (got \"%s\")", prefix, reason, shown);
    }
}

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

__attribute__((format(printf, 3, 4))) static os_err fail(char *err, size_t errcap, const char *fmt,
                                                         ...)
{
    va_list ap;

    if (err != NULL && errcap > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return OS_ERR_INVALID;
}

/* A DNS name (RFC 1123 labels) or, when every label is numeric, a dotted IPv4 address. */
static os_err check_host(const char *h, size_t n, char *err, size_t errcap)
{
    bool numeric = true;
    size_t start = 0;

    if (n == 0)
        return fail(err, errcap, "missing host");
    if (n > 253)
        return fail(err, errcap, "host name longer than 253 characters");
    for (size_t i = 0; i <= n; i++) {
        if (i < n && h[i] != '.') {
            char c = h[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-'))
                return fail(err, errcap, "invalid character in host name");
            if (c < '0' || c > '9')
                numeric = false;
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > 63)
            return fail(err, errcap, "invalid host name (empty or over-long label)");
        if (h[start] == '-' || h[i - 1] == '-')
            return fail(err, errcap, "invalid host name (label starts or ends with '-')");
        start = i + 1;
    }
    if (numeric) {
        char tmp[16];
        struct in_addr a4;
        if (n >= sizeof(tmp))
            return fail(err, errcap, "invalid IPv4 address");
        memcpy(tmp, h, n);
        tmp[n] = '\0';
        if (inet_pton(AF_INET, tmp, &a4) != 1)
            return fail(err, errcap, "invalid IPv4 address");
    }
    return OS_OK;
}

static os_err check_v6(const char *h, size_t n, char *err, size_t errcap)
{
    char tmp[64];
    struct in6_addr a6;

    if (n == 0 || n >= sizeof(tmp))
        return fail(err, errcap, "invalid IPv6 address");
    memcpy(tmp, h, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, &a6) != 1)
        return fail(err, errcap, "invalid IPv6 address");
    return OS_OK;
}

static os_err parse_port(uint16_t *out, const char *s, size_t n, unsigned lo, char *err,
                         size_t errcap)
{
    uint64_t v;

    if (n == 0)
        return fail(err, errcap, "missing port");
    if (n > 5 || parse_u64(&v, s, n) != OS_OK || v > 65535 || v < lo)
        return fail(err, errcap, "port must be a number from %u to 65535", lo);
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
            return fail(err, errcap, "missing ']' after IPv6 address");
        *host = s + 1;
        *host_len = (size_t)(close - s) - 1;
        rc = check_v6(*host, *host_len, err, errcap);
        if (rc != OS_OK)
            return rc;
        rest = close + 1;
        rest_len = n - (size_t)(rest - s);
        if (rest_len > 0 && rest[0] != ':')
            return fail(err, errcap, "unexpected text after ']'");
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) != NULL)
            return fail(err, errcap, "an IPv6 address must be in brackets, as [::1]:8080");
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
            return fail(err, errcap, "expected HOST:PORT");
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
        return fail(err, errcap, "missing URL");
    n = strlen(s);
    if (n > 2048)
        return fail(err, errcap, "URL longer than 2048 characters");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f)
            return fail(err, errcap, "URL contains a space, control or non-ASCII character");
    }
    if (strncmp(s, "http://", 7) == 0)
        auth = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        auth = s + 8;
    else
        return fail(err, errcap, "URL must start with http:// or https://");
    auth_len = strcspn(auth, "/?#");
    if (memchr(auth, '@', auth_len) != NULL)
        return fail(err, errcap, "user info (user@host) is not allowed in a URL");
    return parse_hostport(&host, &host_len, &port, auth, auth_len, false, 1, err, errcap);
}

os_err os_cfg_parse_listen(os_cfg_listen *out, const char *s, char *err, size_t errcap)
{
    const char *host;
    size_t host_len;
    uint16_t port;
    os_err rc;

    if (out == NULL || s == NULL)
        return fail(err, errcap, "missing address");
    rc = parse_hostport(&host, &host_len, &port, s, strlen(s), true, 0, err, errcap);
    if (rc != OS_OK)
        return rc;
    if (host_len >= sizeof(out->host))
        return fail(err, errcap, "host name too long");
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = port;
    return OS_OK;
}

bool os_cfg_listen_is_loopback(const os_cfg_listen *l)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (l == NULL)
        return false;
    if (strcasecmp(l->host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, l->host, &a4) == 1)
        return ((const uint8_t *)&a4.s_addr)[0] == 127;
    if (inet_pton(AF_INET6, l->host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* ---------------------------------------------------------------------------------------------- */
/* fields */

#define FIELD(cfg, e, T) ((T *)(void *)((char *)(cfg) + (e)->offset))

static bool is_list(const os_cfg_entry *e)
{
    return (e->flags & OS_CFG_REPEATABLE) != 0;
}

static bool is_text(const os_cfg_entry *e)
{
    return e->type == OS_CFG_STRING || e->type == OS_CFG_PATH || e->type == OS_CFG_URL;
}

static size_t field_size(const os_cfg_entry *e)
{
    if (is_list(e))
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

static void clear_field(const os_cfg_entry *e, void *cfg, bool release)
{
    if (release && is_list(e)) {
        os_cfg_list *l = FIELD(cfg, e, os_cfg_list);
        for (size_t i = 0; i < l->n; i++)
            free(l->items[i]);
        free(l->items);
    } else if (release && is_text(e)) {
        free(*FIELD(cfg, e, char *));
    }
    memset((char *)cfg + e->offset, 0, field_size(e));
}

/* Appends or replaces a text value; takes ownership of v. */
static os_err store_text(const os_cfg_entry *e, void *cfg, char *v, char *err, size_t errcap)
{
    if (is_list(e)) {
        os_cfg_list *l = FIELD(cfg, e, os_cfg_list);
        char **grown;
        if (l->n >= MAX_LIST_ITEMS) {
            free(v);
            return fail(err, errcap, "more than %d values", MAX_LIST_ITEMS);
        }
        grown = realloc(l->items, (l->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            free(v);
            return OS_ERR_NOMEM;
        }
        l->items = grown;
        l->items[l->n++] = v;
    } else {
        char **slot = FIELD(cfg, e, char *);
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
        fail(err, errcap, "the path starts with ~ but HOME is not set to an absolute path");
        return NULL;
    }
    hl = strlen(home);
    vl = strlen(v + 1);
    if (hl + vl > MAX_VALUE_LEN) {
        fail(err, errcap, "path too long");
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
            return fail(err, errcap, "out of range");
        return fail(err, errcap, "must be from %s to %s USDC", lo, hi);
    case OS_CFG_DURATION:
        return fail(err, errcap, "must be from %llus to %llus", (unsigned long long)e->min,
                    (unsigned long long)max);
    default:
        return fail(err, errcap, "must be from %llu to %llu", (unsigned long long)e->min,
                    (unsigned long long)max);
    }
}

/* Parses value for entry e and stores it in cfg. On failure err holds the reason. */
static os_err set_value(const os_cfg_entry *e, void *cfg, const char *value, char *err,
                        size_t errcap)
{
    size_t n = strlen(value);
    uint64_t u;
    os_err rc;

    if (n == 0)
        return fail(err, errcap, "empty value");
    if (n > MAX_VALUE_LEN)
        return fail(err, errcap, "value longer than %d bytes", MAX_VALUE_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f)
            return fail(err, errcap, "value contains a control character");
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
            return fail(err, errcap, "expected true or false (also yes/no, on/off, 1/0)");
        *FIELD(cfg, e, bool) = b;
        break;
    }
    case OS_CFG_U64:
        rc = parse_u64(&u, value, n);
        if (rc == OS_ERR_RANGE)
            return fail(err, errcap, "number too large");
        if (rc != OS_OK)
            return fail(err, errcap, "expected a whole number");
        if (check_bounds(e, u, err, errcap) != OS_OK)
            return OS_ERR_INVALID;
        *FIELD(cfg, e, uint64_t) = u;
        break;
    case OS_CFG_USDC:
        rc = os_usdc_parse(&u, value);
        if (rc == OS_ERR_RANGE)
            return fail(err, errcap, "amount too large");
        if (rc != OS_OK)
            return fail(err, errcap,
                        "expected a USDC amount with at most 6 decimals, like 5 or 1.25");
        if (check_bounds(e, u, err, errcap) != OS_OK)
            return OS_ERR_INVALID;
        *FIELD(cfg, e, uint64_t) = u;
        break;
    case OS_CFG_DURATION:
        rc = os_cfg_parse_duration(&u, value);
        if (rc == OS_ERR_RANGE)
            return fail(err, errcap, "duration too large");
        if (rc != OS_OK)
            return fail(err, errcap, "expected a duration like 30, 30s, 15m, 2h or 1d");
        if (check_bounds(e, u, err, errcap) != OS_OK)
            return OS_ERR_INVALID;
        *FIELD(cfg, e, uint64_t) = u;
        break;
    case OS_CFG_LOG_LEVEL: {
        os_log_level lv;
        if (os_log_level_parse(&lv, value) != OS_OK)
            return fail(err, errcap, "expected error, warn, info or debug");
        *FIELD(cfg, e, os_log_level) = lv;
        break;
    }
    case OS_CFG_LISTEN: {
        os_cfg_listen l;
        rc = os_cfg_parse_listen(&l, value, err, errcap);
        if (rc != OS_OK)
            return rc;
        *FIELD(cfg, e, os_cfg_listen) = l;
        break;
    }
    case OS_CFG_ENUM: {
        char list[256];
        size_t used = 0;
        for (int i = 0; e->choices != NULL && e->choices[i] != NULL; i++) {
            if (strcmp(value, e->choices[i]) == 0) {
                *FIELD(cfg, e, int) = i;
                return OS_OK;
            }
            int w =
                snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", e->choices[i]);
            if (w > 0 && (size_t)w < sizeof(list) - used)
                used += (size_t)w;
        }
        list[used] = '\0';
        return fail(err, errcap, "expected one of: %s", list);
    }
    case OS_CFG_ADDRESS: {
        os_cfg_address a;
        if (os_eip55_parse(a.bytes, value) != OS_OK)
            return fail(err, errcap,
                        "expected an address: 0x and 40 hex digits, with a valid EIP-55 checksum "
                        "when in mixed case");
        a.set = true;
        *FIELD(cfg, e, os_cfg_address) = a;
        break;
    }
    default:
        return fail(err, errcap, "unsupported type in the config table");
    }
    return OS_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* names */

/* Copies name[0..n) with '-' as '_' into out; false when too long or empty. */
static bool normalise(char *out, size_t cap, const char *name, size_t n)
{
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = name[i] == '-' ? '_' : name[i];
    out[n] = '\0';
    return true;
}

static const os_cfg_entry *find_entry(const os_cfg_program *prog, const char *name, size_t *idx)
{
    for (size_t i = 0; i < prog->n_entries; i++) {
        if (strcmp(prog->entries[i].name, name) == 0) {
            *idx = i;
            return &prog->entries[i];
        }
    }
    return NULL;
}

/* Catches table mistakes (a programming error) before they turn into wrong behaviour. */
static void check_table(const os_cfg_program *prog, os_cfg_report *rep)
{
    for (size_t i = 0; i < prog->n_entries; i++) {
        const os_cfg_entry *e = &prog->entries[i];
        size_t j;
        if (e->name == NULL || e->name[0] == '\0' || strlen(e->name) >= MAX_NAME_LEN ||
            strchr(e->name, '-') != NULL) {
            os_cfg_error(rep, "internal: config table entry %zu has a bad name", i);
            continue;
        }
        if (is_list(e) && !is_text(e))
            os_cfg_error(rep, "internal: %s: only text keys can repeat", e->name);
        if (e->type == OS_CFG_ENUM && (e->choices == NULL || e->choices[0] == NULL))
            os_cfg_error(rep, "internal: %s: enum without choices", e->name);
        if (e->check != NULL && !is_text(e))
            os_cfg_error(rep, "internal: %s: a check applies to text keys only", e->name);
        if ((e->flags & OS_CFG_SECRET_PATH) && e->type != OS_CFG_PATH)
            os_cfg_error(rep, "internal: %s: a secret file must be a path", e->name);
        if (strcmp(e->name, "config") == 0 || strcmp(e->name, "help") == 0 ||
            strcmp(e->name, "version") == 0 || strcmp(e->name, "check_config") == 0 ||
            strcmp(e->name, "print_config") == 0)
            os_cfg_error(rep, "internal: %s: reserved name", e->name);
        for (j = 0; j < i; j++) {
            if (prog->entries[j].name != NULL && strcmp(prog->entries[j].name, e->name) == 0)
                os_cfg_error(rep, "internal: %s: duplicate entry", e->name);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* sources */

/* Applies value from a source to entry idx, with duplicate rules, reporting any problem. */
static void apply(load_state *st, size_t idx, const char *value, src_kind src, int line,
                  const char *flag, size_t flag_len)
{
    const os_cfg_entry *e = &st->prog->entries[idx];
    entry_state *es = &st->es[idx];
    char reason[REASON_LEN];
    os_err rc;

    if (src == SRC_FILE && es->src == SRC_FILE && !is_list(e)) {
        os_cfg_error(st->rep, "%s:%d: %s: set more than once (first on line %d)", st->path, line,
                     e->name, es->line);
        return;
    }
    if (src == SRC_FLAG && es->src == SRC_FLAG && !is_list(e)) {
        os_cfg_error(st->rep, "%.*s: given more than once", (int)flag_len, flag);
        return;
    }
    /* A list set by a later source replaces the earlier source's values instead of adding to them.
     */
    if (is_list(e) && es->src != src)
        clear_field(e, st->cfg, true);
    es->src = src;
    es->line = line;
    es->flag = flag;
    es->flag_len = flag_len;
    reason[0] = '\0';
    rc = set_value(e, st->cfg, value, reason, sizeof(reason));
    if (rc == OS_ERR_NOMEM)
        st->rep->nomem = true;
    else if (rc != OS_OK)
        value_error(st, idx, reason, value);
}

static char *blank_line(char *str)
{
    str[0] = '\n';
    str[1] = '\0';
    return str;
}

static char *line_reader(char *str, int num, void *stream)
{
    load_state *st = stream;
    ssize_t got;
    char *s;
    size_t n;

    if (num < 3)
        return NULL;
    got = getline(&st->line, &st->linecap, st->f);
    if (got < 0) {
        if (ferror(st->f))
            os_cfg_error(st->rep, "%s: read error: %s", st->path, strerror(errno));
        return NULL;
    }
    st->lineno++;
    st->total += (size_t)got;
    if (st->total > MAX_FILE_BYTES) {
        os_cfg_error(st->rep, "%s:%d: file larger than %d bytes", st->path, st->lineno,
                     MAX_FILE_BYTES);
        return NULL;
    }
    s = st->line;
    n = (size_t)got;
    if (memchr(s, '\0', n) != NULL) {
        os_cfg_error(st->rep, "%s:%d: NUL byte in line", st->path, st->lineno);
        return blank_line(str);
    }
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    if (st->lineno == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
    }
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    if (n == 0 || *s == ';' || *s == '#')
        return blank_line(str);
    if (*s == '[') {
        os_cfg_error(st->rep, "%s:%d: sections are not used; write key = value lines only",
                     st->path, st->lineno);
        return blank_line(str);
    }
    const char *sep = strpbrk(s, "=:");
    if (sep == NULL || *sep != '=') {
        os_cfg_error(st->rep, "%s:%d: expected key = value", st->path, st->lineno);
        return blank_line(str);
    }
    if (n + 2 > (size_t)num) {
        os_cfg_error(st->rep, "%s:%d: line longer than %d characters", st->path, st->lineno,
                     num - 2);
        return blank_line(str);
    }
    memcpy(str, s, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;
}

static int key_handler(void *user, const char *section, const char *name, const char *value)
{
    load_state *st = user;
    char key[MAX_NAME_LEN];
    size_t idx;

    (void)section; /* always "": ini_reader refuses section lines */
    if (!normalise(key, sizeof(key), name, strlen(name)) ||
        find_entry(st->prog, key, &idx) == NULL) {
        char shown[80];
        show_value(shown, sizeof(shown), name);
        if (strcmp(name, "config") == 0)
            os_cfg_error(st->rep, "%s:%d: config can only be given on the command line", st->path,
                         st->lineno);
        else
            os_cfg_error(st->rep, "%s:%d: unknown key \"%s\"", st->path, st->lineno, shown);
        return 1;
    }
    apply(st, idx, value, SRC_FILE, st->lineno, NULL, 0);
    return 1;
}

static void load_file(load_state *st)
{
    int rc;

    st->f = fopen(st->path, "r");
    if (st->f == NULL) {
        os_cfg_error(st->rep, "%s: cannot open: %s", st->path, strerror(errno));
        return;
    }
    rc = ini_parse_stream(line_reader, st, key_handler, st);
    if (rc == -2)
        st->rep->nomem = true;
    else if (rc != 0)
        os_cfg_error(st->rep, "%s:%d: syntax error", st->path, rc);
    fclose(st->f);
    st->f = NULL;
    free(st->line);
    st->line = NULL;
    st->linecap = 0;
}

static bool is_bool_word(const char *s)
{
    bool b;
    return os_cfg_parse_bool(&b, s) == OS_OK;
}

/* Reads argv: action flags, --config, and the settings to apply after the file. */
static size_t scan_argv(load_state *st, pending_flag *pend, int argc, char *const argv[])
{
    const os_cfg_program *prog = st->prog;
    bool file_ok = (prog->flags & OS_CFG_PROG_NO_FILE) == 0;
    size_t np = 0;
    char shown[80];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name, *eq, *value;
        char key[MAX_NAME_LEN];
        size_t name_len, idx;
        const os_cfg_entry *e;

        if (a == NULL)
            break;
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            show_value(shown, sizeof(shown), a);
            os_cfg_error(st->rep, "unexpected argument \"%s\"", shown);
            continue;
        }
        name = a + 2;
        eq = strchr(name, '=');
        name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        value = eq != NULL ? eq + 1 : NULL;
        /* Errors name the flag as typed, never the value after '=' (it may be a secret). */
        {
            char flag[MAX_NAME_LEN + 3];
            size_t k = name_len + 2 < sizeof(flag) ? name_len + 2 : sizeof(flag) - 1;
            memcpy(flag, a, k);
            flag[k] = '\0';
            show_value(shown, sizeof(shown), flag);
        }
        if (!normalise(key, sizeof(key), name, name_len)) {
            os_cfg_error(st->rep, "%s: unknown option (see --help)", shown);
            continue;
        }
        if (file_ok && (strcmp(key, "check_config") == 0 || strcmp(key, "print_config") == 0)) {
            os_cfg_action act = key[0] == 'c' ? OS_CFG_CHECK : OS_CFG_PRINT;
            if (value != NULL)
                os_cfg_error(st->rep, "%s takes no value", shown);
            else if (st->rep->action != OS_CFG_RUN && st->rep->action != act)
                os_cfg_error(st->rep, "--check-config and --print-config exclude each other");
            else
                st->rep->action = act;
            continue;
        }
        e = find_entry(prog, key, &idx);
        bool is_config = file_ok && strcmp(key, "config") == 0;
        if (e == NULL && !is_config) {
            os_cfg_error(st->rep, "%s: unknown option (see --help)", shown);
            continue;
        }
        if (value == NULL) {
            const char *next = i + 1 < argc ? argv[i + 1] : NULL;
            if (e != NULL && e->type == OS_CFG_BOOL) {
                if (next != NULL && is_bool_word(next)) {
                    value = next;
                    i++;
                } else {
                    value = "true";
                }
            } else if (next != NULL && strncmp(next, "--", 2) != 0) {
                value = next;
                i++;
            } else {
                os_cfg_error(st->rep, "%s: needs a value", shown);
                continue;
            }
        }
        if (is_config) {
            if (st->rep->config_file != NULL)
                os_cfg_error(st->rep, "--config: given more than once");
            else if (value[0] == '\0')
                os_cfg_error(st->rep, "--config: empty file name");
            else
                st->rep->config_file = value;
            continue;
        }
        pend[np].entry = idx;
        pend[np].value = value;
        pend[np].token = a;
        pend[np].name_len = name_len + 2;
        np++;
    }
    return np;
}

/* Secret files must exist and be private; checked last so the message names the final value. */
static void check_secret_file(load_state *st, size_t idx, const char *path)
{
    char prefix[600];
    struct stat sb;

    prefix_of(st, idx, prefix, sizeof(prefix));
    if (stat(path, &sb) != 0) {
        os_cfg_error(st->rep, "%s: cannot use \"%s\": %s", prefix, path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        os_cfg_error(st->rep, "%s: \"%s\" is not a regular file", prefix, path);
    } else if ((sb.st_mode & 077) != 0) {
        os_cfg_error(st->rep,
                     "%s: \"%s\" holds a secret but is accessible by group or others "
                     "(mode %04o); run chmod 600 on it",
                     prefix, path, (unsigned)(sb.st_mode & 07777));
    }
}

static void final_checks(load_state *st)
{
    for (size_t i = 0; i < st->prog->n_entries; i++) {
        const os_cfg_entry *e = &st->prog->entries[i];
        if ((e->flags & OS_CFG_REQUIRED) && st->es[i].src == SRC_NONE) {
            char flag[MAX_NAME_LEN];
            size_t k;
            for (k = 0; e->name[k] != '\0' && k + 1 < sizeof(flag); k++)
                flag[k] = e->name[k] == '_' ? '-' : e->name[k];
            flag[k] = '\0';
            if (st->prog->flags & OS_CFG_PROG_NO_FILE)
                os_cfg_error(st->rep, "--%s: required", flag);
            else
                os_cfg_error(st->rep, "%s: required; set it in the --config file or with --%s",
                             e->name, flag);
            continue;
        }
        if (!(e->flags & OS_CFG_SECRET_PATH))
            continue;
        if (is_list(e)) {
            const os_cfg_list *l = FIELD(st->cfg, e, os_cfg_list);
            for (size_t j = 0; j < l->n; j++)
                check_secret_file(st, i, l->items[j]);
        } else {
            const char *p = *FIELD(st->cfg, e, char *);
            if (p != NULL)
                check_secret_file(st, i, p);
        }
    }
}

os_err os_cfg_load(const os_cfg_program *prog, void *cfg, os_cfg_report *rep, int argc,
                   char *const argv[])
{
    load_state st;
    pending_flag *pend = NULL;
    size_t np;

    if (rep == NULL)
        return OS_ERR_INVALID;
    memset(rep, 0, sizeof(*rep));
    if (prog == NULL || cfg == NULL || argc < 0 || (argc > 0 && argv == NULL)) {
        os_cfg_error(rep, "internal: bad arguments to the config loader");
        return OS_ERR_INVALID;
    }
    for (size_t i = 0; i < prog->n_entries; i++)
        clear_field(&prog->entries[i], cfg, false);

    /* --help and --version answer without reading anything else. */
    for (int i = 1; i < argc && argv[i] != NULL; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            rep->action = OS_CFG_HELP;
            return OS_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            rep->action = OS_CFG_VERSION;
            return OS_OK;
        }
    }

    memset(&st, 0, sizeof(st));
    st.prog = prog;
    st.cfg = cfg;
    st.rep = rep;
    st.es = calloc(prog->n_entries + 1, sizeof(*st.es));
    pend = calloc((size_t)argc + 1, sizeof(*pend));
    if (st.es == NULL || pend == NULL) {
        free(st.es);
        free(pend);
        rep->nomem = true;
        return OS_ERR_NOMEM;
    }

    check_table(prog, rep);
    np = scan_argv(&st, pend, argc, argv);

    for (size_t i = 0; i < prog->n_entries; i++) {
        if (prog->entries[i].dflt != NULL)
            apply(&st, i, prog->entries[i].dflt, SRC_DEFAULT, 0, NULL, 0);
    }
    if (rep->config_file != NULL) {
        st.path = rep->config_file;
        load_file(&st);
    }
    for (size_t k = 0; k < np; k++)
        apply(&st, pend[k].entry, pend[k].value, SRC_FLAG, 0, pend[k].token, pend[k].name_len);
    final_checks(&st);
    if (rep->n_errors == 0 && !rep->nomem && prog->validate != NULL)
        prog->validate(cfg, rep);

    free(st.es);
    free(pend);
    if (rep->n_errors > 0 || rep->nomem) {
        os_cfg_free(prog, cfg);
        return rep->nomem ? OS_ERR_NOMEM : OS_ERR_INVALID;
    }
    return OS_OK;
}

void os_cfg_free(const os_cfg_program *prog, void *cfg)
{
    if (prog == NULL || cfg == NULL)
        return;
    for (size_t i = 0; i < prog->n_entries; i++)
        clear_field(&prog->entries[i], cfg, true);
}

void os_cfg_report_free(os_cfg_report *rep)
{
    if (rep == NULL)
        return;
    for (size_t i = 0; i < rep->n_errors; i++)
        free(rep->errors[i]);
    free(rep->errors);
    rep->errors = NULL;
    rep->n_errors = 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* output */

static void flag_name(char *out, size_t cap, const char *name)
{
    size_t k;

    for (k = 0; name[k] != '\0' && k + 1 < cap; k++)
        out[k] = name[k] == '_' ? '-' : name[k];
    out[k] = '\0';
}

static void meta_of(char *out, size_t cap, const os_cfg_entry *e)
{
    static const char *const metas[] = {
        [OS_CFG_STRING] = "TEXT",       [OS_CFG_PATH] = "PATH",
        [OS_CFG_BOOL] = "[true|false]", [OS_CFG_U64] = "N",
        [OS_CFG_USDC] = "USDC",         [OS_CFG_DURATION] = "DURATION",
        [OS_CFG_LOG_LEVEL] = "LEVEL",   [OS_CFG_LISTEN] = "HOST:PORT",
        [OS_CFG_URL] = "URL",           [OS_CFG_ENUM] = NULL,
        [OS_CFG_ADDRESS] = "0xADDRESS",
    };

    if (e->meta != NULL) {
        snprintf(out, cap, "%s", e->meta);
    } else if (e->type == OS_CFG_ENUM) {
        size_t used = 0;
        out[0] = '\0';
        for (int i = 0; e->choices != NULL && e->choices[i] != NULL; i++) {
            int w = snprintf(out + used, cap - used, "%s%s", i ? "|" : "", e->choices[i]);
            if (w < 0 || (size_t)w >= cap - used)
                break;
            used += (size_t)w;
        }
    } else if ((size_t)e->type < sizeof(metas) / sizeof(metas[0]) && metas[e->type] != NULL) {
        snprintf(out, cap, "%s", metas[e->type]);
    } else {
        snprintf(out, cap, "VALUE");
    }
}

#define HELP_LEFT 30
#define HELP_WIDTH 100

/* Prints text from column HELP_LEFT + 4, breaking between words before HELP_WIDTH. */
static void print_wrapped(FILE *out, const char *text)
{
    size_t col = HELP_LEFT + 4;
    const char *p = text;

    while (*p != '\0') {
        size_t word = strcspn(p, " ");
        if (col > HELP_LEFT + 4 && col + 1 + word > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_LEFT + 4, "");
            col = HELP_LEFT + 4;
        } else if (col > HELP_LEFT + 4) {
            fputc(' ', out);
            col++;
        }
        /* \x01 is a space that does not break a line ("[default: X]" stays together) */
        for (size_t i = 0; i < word; i++)
            fputc(p[i] == '\x01' ? ' ' : p[i], out);
        col += word;
        p += word;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

void os_cfg_print_help(const os_cfg_program *prog, FILE *out)
{
    bool file_ok;

    if (prog == NULL || out == NULL)
        return;
    file_ok = (prog->flags & OS_CFG_PROG_NO_FILE) == 0;
    if (prog->usage != NULL) {
        fprintf(out, "usage: %s\n", prog->usage);
    } else if (file_ok) {
        fprintf(out,
                "usage: %s [--config FILE] [--KEY VALUE ...]\n"
                "       %s --check-config | --print-config [--config FILE] [--KEY VALUE ...]\n"
                "       %s --help | --version\n",
                prog->name, prog->name, prog->name);
    } else {
        fprintf(out, "usage: %s [--KEY VALUE ...]\n", prog->name);
    }
    if (prog->summary != NULL)
        fprintf(out, "\n%s\n", prog->summary);
    if (prog->n_entries > 0) {
        if (file_ok)
            fprintf(out, "\nSettings, as --key value or --key=value; in the --config file (INI) "
                         "write key_name = value.\nFlags win over the file.\n");
        else
            fprintf(out, "\nOptions, as --key value or --key=value:\n");
    }
    for (size_t i = 0; i < prog->n_entries; i++) {
        const os_cfg_entry *e = &prog->entries[i];
        char flag[MAX_NAME_LEN], meta[128], left[200];
        flag_name(flag, sizeof(flag), e->name);
        meta_of(meta, sizeof(meta), e);
        char text[1024];
        snprintf(left, sizeof(left), "--%s %s", flag, meta);
        snprintf(text, sizeof(text), "%s%s%s%s%s%s", e->help != NULL ? e->help : "",
                 (e->flags & OS_CFG_REQUIRED) ? " (required)" : "",
                 (e->flags & OS_CFG_REPEATABLE) ? " (repeatable)" : "",
                 e->dflt != NULL && !(e->flags & OS_CFG_SECRET) ? " [default:\x01" : "",
                 e->dflt != NULL && !(e->flags & OS_CFG_SECRET) ? e->dflt : "",
                 e->dflt != NULL && !(e->flags & OS_CFG_SECRET) ? "]" : "");
        if (strlen(left) > HELP_LEFT)
            fprintf(out, "  %s\n  %-*s  ", left, HELP_LEFT, "");
        else
            fprintf(out, "  %-*s  ", HELP_LEFT, left);
        print_wrapped(out, text);
    }
    fprintf(out, "\nActions:\n");
    if (file_ok) {
        fprintf(out, "  %-30s  %s\n", "--config FILE",
                "read settings from FILE (key = value lines)");
        fprintf(out, "  %-30s  %s\n", "--check-config",
                "check the configuration: print \"configuration OK\" or every error");
        fprintf(out, "  %-30s  %s\n", "--print-config",
                "print the effective configuration (secrets hidden)");
        fprintf(out, "  %-30s  %s\n", "--version", "print the version");
    }
    fprintf(out, "  %-30s  %s\n", "-h, --help", "print this help");
}

void os_cfg_print_version(const os_cfg_program *prog, FILE *out)
{
    if (prog == NULL || out == NULL)
        return;
    fprintf(out, "%s %s\n", prog->name, prog->version != NULL ? prog->version : "unknown");
}

void os_cfg_print_errors(const os_cfg_report *rep, FILE *out)
{
    if (rep == NULL || out == NULL)
        return;
    for (size_t i = 0; i < rep->n_errors; i++)
        fprintf(out, "%s\n", rep->errors[i]);
    if (rep->nomem)
        fprintf(out, "out of memory while reading the configuration\n");
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

static void print_listen(FILE *out, const os_cfg_listen *l)
{
    char buf[OS_CFG_LISTEN_STR_LEN];

    os_cfg_listen_format(buf, l);
    fputs(buf, out);
}

void os_cfg_print(const os_cfg_program *prog, const void *cfg, FILE *out)
{
    if (prog == NULL || cfg == NULL || out == NULL)
        return;
    fprintf(out, "# %s %s: effective configuration\n", prog->name,
            prog->version != NULL ? prog->version : "");
    for (size_t i = 0; i < prog->n_entries; i++) {
        const os_cfg_entry *e = &prog->entries[i];
        const char *name = e->name;

        if (is_list(e)) {
            const os_cfg_list *l = FIELD(cfg, e, const os_cfg_list);
            if (l->n == 0)
                fprintf(out, "# %s is not set\n", name);
            for (size_t j = 0; j < l->n; j++)
                fprintf(out, "%s = %s\n", name,
                        (e->flags & OS_CFG_SECRET) ? "(hidden)" : l->items[j]);
            continue;
        }
        if (is_text(e)) {
            const char *s = *FIELD(cfg, e, char *const);
            if (s == NULL)
                fprintf(out, "# %s is not set\n", name);
            else
                fprintf(out, "%s = %s\n", name, (e->flags & OS_CFG_SECRET) ? "(hidden)" : s);
            continue;
        }
        if (e->type == OS_CFG_ADDRESS && !FIELD(cfg, e, const os_cfg_address)->set) {
            fprintf(out, "# %s is not set\n", name);
            continue;
        }
        if (e->flags & OS_CFG_SECRET) {
            fprintf(out, "%s = (hidden)\n", name);
            continue;
        }
        fprintf(out, "%s = ", name);
        switch (e->type) {
        case OS_CFG_BOOL:
            fputs(*FIELD(cfg, e, const bool) ? "true" : "false", out);
            break;
        case OS_CFG_U64:
            fprintf(out, "%llu", (unsigned long long)*FIELD(cfg, e, const uint64_t));
            break;
        case OS_CFG_USDC: {
            char buf[OS_USDC_LEN];
            if (os_usdc_format(buf, sizeof(buf), *FIELD(cfg, e, const uint64_t)) != OS_OK)
                buf[0] = '\0';
            fputs(buf, out);
            break;
        }
        case OS_CFG_DURATION:
            fprintf(out, "%llus", (unsigned long long)*FIELD(cfg, e, const uint64_t));
            break;
        case OS_CFG_LOG_LEVEL:
            fputs(os_log_level_name(*FIELD(cfg, e, const os_log_level)), out);
            break;
        case OS_CFG_LISTEN:
            print_listen(out, FIELD(cfg, e, const os_cfg_listen));
            break;
        case OS_CFG_ENUM: {
            int k = *FIELD(cfg, e, const int);
            fputs(e->choices != NULL && k >= 0 ? e->choices[k] : "?", out);
            break;
        }
        case OS_CFG_ADDRESS: {
            char text[OS_ADDRESS_STR_LEN];
            os_eip55_format(text, FIELD(cfg, e, const os_cfg_address)->bytes);
            fputs(text, out);
            break;
        }
        default:
            break;
        }
        fputc('\n', out);
    }
}

int os_cfg_dispatch(const os_cfg_program *prog, const void *cfg, const os_cfg_report *rep,
                    os_err load_rc, FILE *out, FILE *err)
{
    if (prog == NULL || rep == NULL)
        return 1;
    if (rep->action == OS_CFG_HELP) {
        os_cfg_print_help(prog, out);
        return 0;
    }
    if (rep->action == OS_CFG_VERSION) {
        os_cfg_print_version(prog, out);
        return 0;
    }
    if (load_rc != OS_OK || rep->n_errors > 0 || rep->nomem) {
        os_cfg_print_errors(rep, err);
        if (rep->n_errors == 0 && !rep->nomem)
            fprintf(err, "%s: configuration failed: %s\n", prog->name, os_strerror(load_rc));
        return 1;
    }
    if (rep->action == OS_CFG_CHECK) {
        fputs("configuration OK\n", out);
        return 0;
    }
    if (rep->action == OS_CFG_PRINT) {
        os_cfg_print(prog, cfg, out);
        return 0;
    }
    return -1;
}
