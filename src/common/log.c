/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The logfmt writer behind log.h. Each event is assembled in a fixed buffer on the caller's stack,
 * escaping as it goes, and leaves in one fwrite: stdio locks the stream per call, so concurrent
 * events never interleave, and there is no allocation on the logging path. Escaping works in whole
 * units (an escape sequence or a whole UTF-8 character), so a cut line is still well-formed.
 */
#include "openseed/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room kept at the end of every line for a closing quote, " truncated=true" and the newline. */
#define LINE_RESERVE 24
#define KEY_MAX 64

typedef struct wbuf {
    char *buf;
    size_t limit; /* bytes usable for content, before the reserve */
    size_t len;
    bool truncated;
} wbuf;

static bool put(wbuf *w, const char *s, size_t n)
{
    if (w->truncated || n > w->limit - w->len) {
        w->truncated = true;
        return false;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    return true;
}

static bool put_str(wbuf *w, const char *s)
{
    return put(w, s, strlen(s));
}

static bool key_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Writes a key, mapping characters a logfmt parser would not take as part of a key to '_'. */
static void put_key(wbuf *w, const char *key)
{
    char k[KEY_MAX];
    size_t n = 0;

    if (key != NULL) {
        for (; key[n] != '\0' && n < sizeof(k); n++)
            k[n] = key_char_ok((unsigned char)key[n]) ? key[n] : '_';
    }
    if (n == 0)
        k[n++] = '_';
    put(w, k, n);
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

/* Bytes in the UTF-8 group starting at s[0] (a lead byte and the continuation bytes after it). */
static size_t group_len(const char *s, size_t n)
{
    size_t k = 1;

    if ((unsigned char)s[0] < 0x80)
        return 1;
    while (k < n && k < 4 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k++;
    return k;
}

/* Writes a value, quoted when needed; force_quotes for msg. Stops cleanly when the line is full. */
static void put_value(wbuf *w, const char *s, size_t n, bool force_quotes)
{
    bool quoted = force_quotes || needs_quotes(s, n);

    if (quoted && !put(w, "\"", 1))
        return;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *unit = esc;
        size_t ulen = 2;

        esc[0] = '\\';
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
        } else if (c == '\n') {
            esc[1] = 'n';
        } else if (c == '\r') {
            esc[1] = 'r';
        } else if (c == '\t') {
            esc[1] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            ulen = 6;
        } else {
            unit = s + i;
            ulen = group_len(s + i, n - i);
        }
        if (!put(w, unit, ulen))
            break;
        i += (unit == esc) ? 1 : ulen;
    }
    if (quoted) {
        /* The reserve always has room for the closing quote, even after truncation. */
        w->buf[w->len++] = '"';
    }
}

void os_logger_init(os_logger *lg, const char *component, os_log_level level)
{
    size_t n = 0;

    if (lg == NULL)
        return;
    memset(lg, 0, sizeof(*lg));
    lg->level = level;
    if (component != NULL) {
        for (; component[n] != '\0' && n < sizeof(lg->component) - 1; n++)
            lg->component[n] = key_char_ok((unsigned char)component[n]) ? component[n] : '_';
    }
    lg->component[n] = '\0';
}

os_err os_logger_add_context(os_logger *lg, const char *key, const char *value)
{
    char tmp[OS_LOG_CONTEXT_MAX + 8];
    wbuf w = {.buf = tmp, .limit = OS_LOG_CONTEXT_MAX - 1, .len = 0, .truncated = false};

    if (lg == NULL || key == NULL || key[0] == '\0')
        return OS_ERR_INVALID;
    if (value == NULL)
        value = "";
    if (lg->context_len > w.limit)
        return OS_ERR_TOOBIG;
    put(&w, lg->context, lg->context_len);
    put(&w, " ", 1);
    put_key(&w, key);
    put(&w, "=", 1);
    put_value(&w, value, strlen(value), false);
    if (w.truncated || w.len > OS_LOG_CONTEXT_MAX - 1)
        return OS_ERR_TOOBIG;
    memcpy(lg->context, tmp, w.len);
    lg->context[w.len] = '\0';
    lg->context_len = w.len;
    return OS_OK;
}

void os_logger_set_level(os_logger *lg, os_log_level level)
{
    if (lg != NULL)
        __atomic_store_n(&lg->level, level, __ATOMIC_RELAXED);
}

bool os_log_stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    uintmax_t dev, ino;
    struct stat sb;
    char *end;
    int saved = errno;
    bool same = false;

    if (v == NULL || v[0] < '0' || v[0] > '9')
        return false;
    errno = 0;
    dev = strtoumax(v, &end, 10);
    if (errno == 0 && *end == ':' && end[1] >= '0' && end[1] <= '9') {
        ino = strtoumax(end + 1, &end, 10);
        same = errno == 0 && *end == '\0' && fstat(STDERR_FILENO, &sb) == 0 &&
               (uintmax_t)sb.st_dev == dev && (uintmax_t)sb.st_ino == ino;
    }
    errno = saved;
    return same;
}

os_err os_log_level_parse(os_log_level *out, const char *name)
{
    static const struct {
        const char *name;
        os_log_level level;
    } names[] = {
        {"error", OS_LOG_ERROR}, {"warn", OS_LOG_WARN},   {"warning", OS_LOG_WARN},
        {"info", OS_LOG_INFO},   {"debug", OS_LOG_DEBUG},
    };

    if (out == NULL || name == NULL)
        return OS_ERR_INVALID;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return OS_OK;
        }
    }
    return OS_ERR_INVALID;
}

const char *os_log_level_name(os_log_level level)
{
    switch (level) {
    case OS_LOG_ERROR:
        return "error";
    case OS_LOG_WARN:
        return "warn";
    case OS_LOG_INFO:
        return "info";
    case OS_LOG_DEBUG:
        return "debug";
    }
    return "unknown";
}

static wbuf event_wbuf(os_log_event *ev)
{
    wbuf w = {.buf = ev->buf,
              .limit = sizeof(ev->buf) - LINE_RESERVE,
              .len = ev->len,
              .truncated = ev->truncated};
    return w;
}

bool os_log_begin(os_log_event *ev, const os_logger *lg, os_log_level level, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char stamp[96];
    int saved = errno;

    if (!os_log_enabled(lg, level))
        return false;
    ev->lg = lg;
    ev->saved_errno = saved;
    ev->len = 0;
    ev->truncated = false;

    if (lg != NULL && lg->clock != NULL) {
        lg->clock(&ts);
    } else if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
    }
    if (gmtime_r(&ts.tv_sec, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    snprintf(stamp, sizeof(stamp),
             "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000));

    wbuf w = event_wbuf(ev);
    if (lg != NULL && lg->journal) {
        static const char prio[][4] = {"<3>", "<4>", "<6>", "<7>"}; /* by os_log_level */
        put_str(&w, (unsigned)level < 4 ? prio[level] : "<6>");
    }
    put_str(&w, stamp);
    put_str(&w, os_log_level_name(level));
    put_str(&w, " component=");
    if (lg != NULL && lg->component[0] != '\0')
        put_str(&w, lg->component);
    else
        put_str(&w, "openseed");
    if (lg != NULL)
        put(&w, lg->context, lg->context_len);
    put_str(&w, " msg=");
    put_value(&w, msg != NULL ? msg : "", msg != NULL ? strlen(msg) : 0, true);
    ev->len = w.len;
    ev->truncated = w.truncated;
    return true;
}

/* Drops a UTF-8 character that vsnprintf cut in half at the end of s[0..*n). */
static void trim_partial_char(const char *s, size_t *n)
{
    size_t i = *n, need;
    unsigned char lead;

    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && *n - i < 3)
        i--;
    if (i == 0)
        return;
    lead = (unsigned char)s[i - 1];
    if (lead < 0xC0)
        return;
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (*n - (i - 1) < need)
        *n = i - 1;
}

/* vsnprintf into tmp; *cut is set when the text did not fit. */
__attribute__((format(printf, 3, 0))) static size_t
format_into(char *tmp, size_t cap, const char *fmt, va_list ap, bool *cut)
{
    int r = vsnprintf(tmp, cap, fmt, ap);
    size_t n;

    if (r < 0) {
        tmp[0] = '\0';
        *cut = true;
        return 0;
    }
    n = (size_t)r;
    *cut = n >= cap;
    if (*cut) {
        n = cap - 1;
        trim_partial_char(tmp, &n);
    }
    return n;
}

void os_log_kv(os_log_event *ev, const char *key, const char *fmt, ...)
{
    char tmp[OS_LOG_LINE_MAX];
    va_list ap;
    bool cut;
    size_t n;

    if (ev == NULL || ev->truncated)
        return;
    va_start(ap, fmt);
    n = format_into(tmp, sizeof(tmp), fmt, ap, &cut);
    va_end(ap);

    wbuf w = event_wbuf(ev);
    size_t before = w.len;
    put(&w, " ", 1);
    put_key(&w, key);
    put(&w, "=", 1);
    if (w.truncated) {
        w.len = before; /* no dangling "key=" */
    } else {
        put_value(&w, tmp, n, false);
    }
    ev->len = w.len;
    ev->truncated = w.truncated || cut;
}

void os_log_end(os_log_event *ev)
{
    FILE *out;

    if (ev == NULL)
        return;
    if (ev->truncated) {
        static const char tail[] = " truncated=true";
        memcpy(ev->buf + ev->len, tail, sizeof(tail) - 1);
        ev->len += sizeof(tail) - 1;
    }
    ev->buf[ev->len++] = '\n';
    out = (ev->lg != NULL && ev->lg->out != NULL) ? ev->lg->out : stderr;
    fwrite(ev->buf, 1, ev->len, out);
    fflush(out);
    errno = ev->saved_errno;
}

void os_log_emit(const os_logger *lg, os_log_level level, const char *fmt, ...)
{
    os_log_event ev;
    char msg[OS_LOG_LINE_MAX];
    va_list ap;
    bool cut;
    size_t n;
    int saved = errno;

    if (!os_log_enabled(lg, level))
        return;
    va_start(ap, fmt);
    n = format_into(msg, sizeof(msg), fmt, ap, &cut);
    va_end(ap);
    msg[n] = '\0';
    errno = saved;
    if (!os_log_begin(&ev, lg, level, msg))
        return;
    ev.truncated = ev.truncated || cut;
    os_log_end(&ev);
}
