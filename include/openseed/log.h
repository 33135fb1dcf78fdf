/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structured logging for every OpenSeed program: one line per event in logfmt,
 *   ts=2026-11-21T05:00:00.123Z level=info component=registry node=0x… msg="peer announced" seq=17
 * written with a single fwrite so lines from several threads never interleave. There is no global
 * level: each os_logger carries its own level, component name, output and fixed context, so several
 * nodes can share one process (integration tests, simulations). A NULL logger logs at info to
 * stderr, so library code can log without a daemon around it.
 *
 * Input can never split or forge a line: msg is always quoted, other values are quoted when they
 * hold a space, '=', a quote or a control character, and quotes, backslashes, newlines and other
 * control characters are escaped (\" \\ \n \r \t \u00XX). Lines are capped at OS_LOG_LINE_MAX
 * bytes; a longer event is cut at a character boundary and ends with truncated=true. Never log
 * secrets or request content.
 *
 * The macros test the level before evaluating their arguments (like Redis's serverLog), so a debug
 * line costs one comparison when debug is off. They evaluate `lg` twice. Logging preserves errno.
 *
 * Under systemd, stderr is a stream to the journal, which takes a leading "<N>" on a line as its
 * syslog priority (sd-daemon.h's SD_ERR "<3>", SD_WARNING "<4>", SD_INFO "<6>", SD_DEBUG "<7>")
 * and strips it; a logger with `journal` set writes that prefix, so `journalctl -p warning` works.
 */
#ifndef OPENSEED_LOG_H
#define OPENSEED_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "openseed/err.h"

typedef enum os_log_level {
    OS_LOG_ERROR = 0,
    OS_LOG_WARN = 1,
    OS_LOG_INFO = 2,
    OS_LOG_DEBUG = 3,
} os_log_level;

#define OS_LOG_LINE_MAX 2048
#define OS_LOG_COMPONENT_MAX 32
#define OS_LOG_CONTEXT_MAX 256

/* A clock for the timestamp; tests install a fixed one. Writes the current UTC time to *ts. */
typedef void (*os_log_clock)(struct timespec *ts);

/*
 * A logger. Set it up with os_logger_init; the fields may then be changed directly before it is
 * shared with other threads. Afterwards only the level may change, with os_logger_set_level. The
 * logger does not own `out`.
 */
typedef struct os_logger {
    os_log_level level; /* read and written atomically once shared (os_logger_set_level) */
    bool journal;       /* prefix each line with its syslog priority "<N>" (see above) */
    FILE *out;          /* NULL means stderr */
    os_log_clock clock; /* NULL means clock_gettime(CLOCK_REALTIME) */
    char component[OS_LOG_COMPONENT_MAX];
    char
        context[OS_LOG_CONTEXT_MAX]; /* pre-escaped " key=value" pairs, see os_logger_add_context */
    size_t context_len;
} os_logger;

/*
 * Prepares lg: the given level and component (cut to OS_LOG_COMPONENT_MAX - 1 bytes; characters
 * outside [A-Za-z0-9_.-] become '_'), output stderr, real clock, no context.
 */
void os_logger_init(os_logger *lg, const char *component, os_log_level level);

/*
 * Appends key=value to the fixed context printed on every line after component= (e.g. node=0x…).
 * The value is escaped as any other. OS_ERR_TOOBIG when the context would exceed
 * OS_LOG_CONTEXT_MAX (lg is then unchanged); OS_ERR_INVALID for a NULL or empty key.
 */
OS_WUR os_err os_logger_add_context(os_logger *lg, const char *key, const char *value);

/*
 * Changes lg's level while other threads log through it (a daemon's reload): an atomic store, so
 * each event sees the old level or the new one. NULL-safe.
 */
void os_logger_set_level(os_logger *lg, os_log_level level);

/*
 * True when stderr is the journal: $JOURNAL_STREAM ("DEVICE:INODE", set by systemd for a service
 * whose stderr goes to the journal) names the file stderr is open on. A redirected stderr (a
 * file, a pipe, a terminal) keeps plain lines even under systemd.
 */
bool os_log_stderr_is_journal(void);

/* Parses "error", "warn" (or "warning"), "info", "debug", any case. OS_ERR_INVALID otherwise. */
OS_WUR os_err os_log_level_parse(os_log_level *out, const char *name);

/* "error", "warn", "info" or "debug"; "unknown" for anything else. */
const char *os_log_level_name(os_log_level level);

/* True when lg (NULL: the info-level default) would write an event of this level. */
static inline bool os_log_enabled(const os_logger *lg, os_log_level level)
{
    /* relaxed: the level is a filter, nothing else is published with it */
    return level <= (lg != NULL ? __atomic_load_n(&lg->level, __ATOMIC_RELAXED) : OS_LOG_INFO);
}

/*
 * Writes one event whose message is the printf-style fmt. Prefer the macros below, which skip the
 * call (and its arguments) when the level is off.
 */
__attribute__((format(printf, 3, 4))) void os_log_emit(const os_logger *lg, os_log_level level,
                                                       const char *fmt, ...);

#define os_log(lg, lvl, ...)                                                                       \
    do {                                                                                           \
        if (os_log_enabled((lg), (lvl)))                                                           \
            os_log_emit((lg), (lvl), __VA_ARGS__);                                                 \
    } while (0)
#define os_log_error(lg, ...) os_log((lg), OS_LOG_ERROR, __VA_ARGS__)
#define os_log_warn(lg, ...) os_log((lg), OS_LOG_WARN, __VA_ARGS__)
#define os_log_info(lg, ...) os_log((lg), OS_LOG_INFO, __VA_ARGS__)
#define os_log_debug(lg, ...) os_log((lg), OS_LOG_DEBUG, __VA_ARGS__)

/*
 * An event with fields, built on the stack:
 *
 *     os_log_event ev;
 *     if (os_log_begin(&ev, lg, OS_LOG_INFO, "peer announced")) {
 *         os_log_kv(&ev, "node", "%s", node_hex);
 *         os_log_kv(&ev, "seq", "%" PRIu64, seq);
 *         os_log_end(&ev);
 *     }
 *
 * os_log_begin returns false (and nothing needs ending) when the level is off. Each value is
 * printf-formatted, then escaped. os_log_end writes the line.
 */
typedef struct os_log_event {
    const os_logger *lg;
    int saved_errno;
    bool truncated;
    size_t len;
    char buf[OS_LOG_LINE_MAX];
} os_log_event;

/* Starts an event with a fixed message (escaped, never a format). False when level is off. */
bool os_log_begin(os_log_event *ev, const os_logger *lg, os_log_level level, const char *msg);

/* Appends key=value (key characters outside [A-Za-z0-9_.-] become '_'). */
__attribute__((format(printf, 3, 4))) void os_log_kv(os_log_event *ev, const char *key,
                                                     const char *fmt, ...);

/* Writes the event as one line and restores the errno seen at os_log_begin. */
void os_log_end(os_log_event *ev);

#endif
