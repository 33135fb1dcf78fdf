/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration for every OpenSeed program from one declarative table, like Redis's
 * static_configs[]: each entry names a key, its type, where it lives in the program's config
 * struct, its bounds, default and help. os_cfg_load applies, in order, the defaults, an INI file
 * given with --config (top-level `key = value` lines, read with libinih) and the command-line flags
 * (`--key value` or `--key=value`; '-' and '_' are interchangeable in names, so --data-dir sets
 * data_dir). Flags win over the file. Every problem is collected with where it came from
 * (file:line or the flag) and a bad configuration is rejected whole. Nothing here calls exit():
 * os_cfg_dispatch tells main what to do for --help, --version, --check-config and --print-config.
 *
 * Values of entries flagged OS_CFG_SECRET are never printed or echoed in errors.
 *
 * One header, three files: loading in config.c, output in config_print.c, the value parsers in
 * config_value.c.
 */
#ifndef OPENSEED_CONFIG_H
#define OPENSEED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "openseed/err.h"
#include "openseed/log.h"
#include "openseed/secp.h"

/* The C type each entry's field must have is given after the name. */
typedef enum os_cfg_type {
    OS_CFG_STRING,    /* char *: any text without control characters */
    OS_CFG_PATH,      /* char *: a path; a leading "~/" is replaced by $HOME */
    OS_CFG_BOOL,      /* bool: true/false, yes/no, on/off, 1/0 */
    OS_CFG_U64,       /* uint64_t: decimal digits, within [min, max] */
    OS_CFG_USDC,      /* uint64_t micro-USDC from human USDC ("5", "1.25"), within [min, max] */
    OS_CFG_DURATION,  /* uint64_t seconds: "90", "90s", "15m", "2h", "1d", within [min, max] */
    OS_CFG_LOG_LEVEL, /* os_log_level: error, warn, info, debug */
    OS_CFG_LISTEN,    /* os_cfg_listen: "HOST:PORT", "[IPv6]:PORT"; port 0 lets the kernel choose;
                       * HOST an IP address or localhost (os_cfg_listen_sockaddr) */
    OS_CFG_URL,       /* char *: an http:// or https:// URL without user info */
    OS_CFG_ENUM,      /* int: index of the value in choices */
    OS_CFG_ADDRESS,   /* os_cfg_address: "0x" + 40 hex, EIP-55 checksum when mixed case */
} os_cfg_type;

/* Entry flags. */
#define OS_CFG_REQUIRED (1u << 0)   /* no default; loading fails unless a file or flag sets it */
#define OS_CFG_REPEATABLE (1u << 1) /* STRING, PATH or URL given several times: an os_cfg_list */
#define OS_CFG_SECRET (1u << 2)     /* the value is a secret: print "(hidden)", never echo it */
/* A file holding a secret: it must exist as a regular file with no group or other permission
 * bits (0600 or 0400). */
#define OS_CFG_SECRET_PATH (1u << 3)

/* A repeatable key's values, in the order given; items owned by the config (os_cfg_free). */
typedef struct os_cfg_list {
    char **items;
    size_t n;
} os_cfg_list;

/* A validated listen address; host has no brackets ("::1"), port 0..65535. */
#define OS_CFG_HOST_MAX 254
typedef struct os_cfg_listen {
    char host[OS_CFG_HOST_MAX];
    uint16_t port;
} os_cfg_listen;

typedef struct os_cfg_address {
    bool set;
    uint8_t bytes[OS_ADDRESS_LEN];
} os_cfg_address;

/*
 * Extra validation of a STRING, PATH or URL value, run after the type's own (e.g. "a URL or
 * builtin:echo"): OS_OK, or an error with a reason in err that does not repeat the value.
 */
typedef os_err (*os_cfg_check)(const char *value, char *err, size_t errcap);

typedef struct os_cfg_entry {
    const char *name; /* file key; the flag is --name with '_' written as '-' */
    os_cfg_type type;
    unsigned flags;    /* OS_CFG_REQUIRED, OS_CFG_REPEATABLE, OS_CFG_SECRET, OS_CFG_SECRET_PATH */
    size_t offset;     /* offsetof(the program's struct, field) */
    const char *dflt;  /* default, written as in a file; NULL for none */
    uint64_t min, max; /* U64, USDC (micro), DURATION (s); max 0 means no upper bound */
    const char *const *choices; /* ENUM: NULL-terminated */
    os_cfg_check check;         /* optional */
    const char *meta;           /* placeholder in --help ("FILE"); NULL for the type's own */
    const char *help;           /* one line */
} os_cfg_entry;

typedef struct os_cfg_report os_cfg_report;

/* Program flags. OS_CFG_PROG_NO_FILE: flags only, no --config, --check-config or --print-config. */
#define OS_CFG_PROG_NO_FILE (1u << 0)

typedef struct os_cfg_program {
    const char *name;    /* "openseed-registry", as --version prints it */
    const char *version; /* OPENSEED_VERSION */
    const char *summary; /* one line for --help */
    const char *usage;   /* optional usage line replacing the generated one */
    const os_cfg_entry *entries;
    size_t n_entries;
    unsigned flags;
    /* Optional checks across keys on a fully loaded config; report problems with os_cfg_error. */
    void (*validate)(const void *cfg, os_cfg_report *rep);
} os_cfg_program;

typedef enum os_cfg_action {
    OS_CFG_RUN = 0, /* no action flag: start the program */
    OS_CFG_HELP,    /* -h/--help: nothing else was parsed */
    OS_CFG_VERSION, /* --version: nothing else was parsed */
    OS_CFG_CHECK,   /* --check-config */
    OS_CFG_PRINT,   /* --print-config */
} os_cfg_action;

/* What os_cfg_load found besides the values. Release with os_cfg_report_free. */
struct os_cfg_report {
    os_cfg_action action;
    const char *config_file; /* the --config argument (borrowed from argv) or NULL */
    char **errors;           /* each "where: key: reason", owned */
    size_t n_errors;
    bool nomem;
};

/* ---- loading (config.c) ---- */

/*
 * Loads prog's configuration into cfg from argv[1..argc) (argv[0] is the program name) and the file
 * named by --config. Every field the table names is overwritten (not freed) first, so cfg may be
 * uninitialised. On OS_OK the config is complete; release it with os_cfg_free. On any problem
 * returns OS_ERR_INVALID (OS_ERR_NOMEM when memory ran out) with every problem in rep->errors, and
 * leaves the table's fields empty (still safe to os_cfg_free). With -h/--help or --version anywhere
 * in argv, only rep->action is set and OS_OK returned.
 */
OS_WUR os_err os_cfg_load(const os_cfg_program *prog, void *cfg, os_cfg_report *rep, int argc,
                          char *const argv[]);

/* Frees the strings and lists os_cfg_load put in cfg and empties them. NULL-safe; idempotent. */
void os_cfg_free(const os_cfg_program *prog, void *cfg);

/* Frees rep's errors. NULL-safe. */
void os_cfg_report_free(os_cfg_report *rep);

/* Adds a problem to rep, for a program's validate hook (say which keys, e.g. "listen: …"). */
__attribute__((format(printf, 2, 3))) void os_cfg_error(os_cfg_report *rep, const char *fmt, ...);

/* ---- output (config_print.c) ---- */

/*
 * The standard actions, for main after os_cfg_load returned load_rc:
 *   help → usage on out, 0;  version → "NAME VERSION" on out, 0;
 *   errors → every error on err, 1 (whatever the action);
 *   check → "configuration OK" on out, 0;  print → the effective configuration on out, 0;
 *   run → -1: the caller goes on to start the program.
 */
int os_cfg_dispatch(const os_cfg_program *prog, const void *cfg, const os_cfg_report *rep,
                    os_err load_rc, FILE *out, FILE *err);

/* Usage generated from the table. */
void os_cfg_print_help(const os_cfg_program *prog, FILE *out);

/* "openseed-registry 0.1.0\n". */
void os_cfg_print_version(const os_cfg_program *prog, FILE *out);

/* One error per line. */
void os_cfg_print_errors(const os_cfg_report *rep, FILE *out);

/* The effective configuration as an INI file; secrets as "(hidden)", unset keys as comments. */
void os_cfg_print(const os_cfg_program *prog, const void *cfg, FILE *out);

/* ---- the table's value parsers, for programs with their own checks (config_value.c) ---- */

/* OS_OK when s is an http:// or https:// URL with a valid host, optional port, no user info,
 * and no spaces, control or non-ASCII characters; else OS_ERR_INVALID with a reason. */
OS_WUR os_err os_cfg_check_url(const char *s, char *err, size_t errcap);

/* Parses "HOST:PORT" (HOST an IPv4 address, a host name, or a bracketed IPv6 address). Syntax
 * only: whether the address can be bound is os_cfg_listen_sockaddr's question. */
OS_WUR os_err os_cfg_parse_listen(os_cfg_listen *out, const char *s, char *err, size_t errcap);

/*
 * The socket address l binds, found without DNS: l->host must be an IPv4 address, an IPv6 address
 * or "localhost" (127.0.0.1); another host name is OS_ERR_INVALID with a reason in err. The loader
 * checks every OS_CFG_LISTEN value with it and the HTTP server (http.h) binds what it returns, so
 * a configuration that loads names an address the server accepts.
 */
OS_WUR os_err os_cfg_listen_sockaddr(struct sockaddr_storage *out, socklen_t *out_len,
                                     const os_cfg_listen *l, char *err, size_t errcap);

/* Room for os_cfg_listen_format's output: "[" host "]:" port NUL. */
#define OS_CFG_LISTEN_STR_LEN (OS_CFG_HOST_MAX + 9)

/* Writes l as it would be configured: "host:port", or "[v6]:port" for an IPv6 host. */
void os_cfg_listen_format(char out[OS_CFG_LISTEN_STR_LEN], const os_cfg_listen *l);

/*
 * "http://HOST:PORT" of a server listening on l whose bound port is port (l's own port when 0),
 * into out: the URL a local client dials. A wildcard host ("0.0.0.0", "*", none) becomes
 * 127.0.0.1 and "::" becomes [::1], since nothing can connect to a wildcard. OS_ERR_TOOBIG when
 * cap is too small (out is then "").
 */
OS_WUR os_err os_cfg_listen_url(char *out, size_t cap, const os_cfg_listen *l, uint16_t port);

/* True when a listen host is a loopback address or "localhost". */
bool os_cfg_listen_is_loopback(const os_cfg_listen *l);

/* Parses a duration in seconds: digits with an optional unit s, m, h or d. */
OS_WUR os_err os_cfg_parse_duration(uint64_t *secs, const char *s);

/* Parses true/false, yes/no, on/off, 1/0 (any case). */
OS_WUR os_err os_cfg_parse_bool(bool *out, const char *s);

#endif
