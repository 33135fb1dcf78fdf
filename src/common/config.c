/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The table-driven configuration loader behind config.h. It reads argv first (to find --config and
 * the action flags and to reject unknown options), then applies defaults, the INI file and the
 * flags in that order, checks required keys and secret files, and runs the program's own cross-key
 * checks, collecting every problem on the way. libinih does the INI tokenising through a line
 * reader of ours, which counts lines (so errors carry them), enforces the size caps, refuses
 * sections and lines that are not `key = value`, and strips leading blanks so inih's multi-line
 * continuation never silently glues two lines together. Turning one text value into a typed field
 * is config_value.c's job, and everything printed for a person is config_print.c's.
 */
#include "config_int.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ERRORS 100
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
        if (e->name == NULL || e->name[0] == '\0' || strlen(e->name) >= CFG_MAX_NAME_LEN ||
            strchr(e->name, '-') != NULL) {
            os_cfg_error(rep, "internal: config table entry %zu has a bad name", i);
            continue;
        }
        if (cfg_is_list(e) && !cfg_is_text(e))
            os_cfg_error(rep, "internal: %s: only text keys can repeat", e->name);
        if (e->type == OS_CFG_ENUM && (e->choices == NULL || e->choices[0] == NULL))
            os_cfg_error(rep, "internal: %s: enum without choices", e->name);
        if (e->check != NULL && !cfg_is_text(e))
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

    if (src == SRC_FILE && es->src == SRC_FILE && !cfg_is_list(e)) {
        os_cfg_error(st->rep, "%s:%d: %s: set more than once (first on line %d)", st->path, line,
                     e->name, es->line);
        return;
    }
    if (src == SRC_FLAG && es->src == SRC_FLAG && !cfg_is_list(e)) {
        os_cfg_error(st->rep, "%.*s: given more than once", (int)flag_len, flag);
        return;
    }
    /* A list set by a later source replaces the earlier source's values instead of adding to them.
     */
    if (cfg_is_list(e) && es->src != src)
        os_cfg_field_clear(e, st->cfg, true);
    es->src = src;
    es->line = line;
    es->flag = flag;
    es->flag_len = flag_len;
    reason[0] = '\0';
    rc = os_cfg_field_set(e, st->cfg, value, reason, sizeof(reason));
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
    char key[CFG_MAX_NAME_LEN];
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
        char key[CFG_MAX_NAME_LEN];
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
            char flag[CFG_MAX_NAME_LEN + 3];
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
            char flag[CFG_MAX_NAME_LEN];
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
        if (cfg_is_list(e)) {
            const os_cfg_list *l = CFG_FIELD(st->cfg, e, os_cfg_list);
            for (size_t j = 0; j < l->n; j++)
                check_secret_file(st, i, l->items[j]);
        } else {
            const char *p = *CFG_FIELD(st->cfg, e, char *);
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
        os_cfg_field_clear(&prog->entries[i], cfg, false);

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
        os_cfg_field_clear(&prog->entries[i], cfg, true);
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
