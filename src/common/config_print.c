/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the config module writes for a person: --help generated from the table, --version, the
 * collected errors, the effective configuration as an INI file (secrets as "(hidden)"), and
 * os_cfg_dispatch, which picks among them for main after os_cfg_load. Reads a loaded config
 * through the table's offsets and never changes it.
 */
#include "config_int.h"

#include <string.h>

#include "openseed/money.h"

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
        char flag[CFG_MAX_NAME_LEN], meta[128], left[200];
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

        if (cfg_is_list(e)) {
            const os_cfg_list *l = CFG_FIELD(cfg, e, const os_cfg_list);
            if (l->n == 0)
                fprintf(out, "# %s is not set\n", name);
            for (size_t j = 0; j < l->n; j++)
                fprintf(out, "%s = %s\n", name,
                        (e->flags & OS_CFG_SECRET) ? "(hidden)" : l->items[j]);
            continue;
        }
        if (cfg_is_text(e)) {
            const char *s = *CFG_FIELD(cfg, e, char *const);
            if (s == NULL)
                fprintf(out, "# %s is not set\n", name);
            else
                fprintf(out, "%s = %s\n", name, (e->flags & OS_CFG_SECRET) ? "(hidden)" : s);
            continue;
        }
        if (e->type == OS_CFG_ADDRESS && !CFG_FIELD(cfg, e, const os_cfg_address)->set) {
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
            fputs(*CFG_FIELD(cfg, e, const bool) ? "true" : "false", out);
            break;
        case OS_CFG_U64:
            fprintf(out, "%llu", (unsigned long long)*CFG_FIELD(cfg, e, const uint64_t));
            break;
        case OS_CFG_USDC: {
            char buf[OS_USDC_LEN];
            if (os_usdc_format(buf, sizeof(buf), *CFG_FIELD(cfg, e, const uint64_t)) != OS_OK)
                buf[0] = '\0';
            fputs(buf, out);
            break;
        }
        case OS_CFG_DURATION:
            fprintf(out, "%llus", (unsigned long long)*CFG_FIELD(cfg, e, const uint64_t));
            break;
        case OS_CFG_LOG_LEVEL:
            fputs(os_log_level_name(*CFG_FIELD(cfg, e, const os_log_level)), out);
            break;
        case OS_CFG_LISTEN:
            print_listen(out, CFG_FIELD(cfg, e, const os_cfg_listen));
            break;
        case OS_CFG_ENUM: {
            int k = *CFG_FIELD(cfg, e, const int);
            fputs(e->choices != NULL && k >= 0 ? e->choices[k] : "?", out);
            break;
        }
        case OS_CFG_ADDRESS: {
            char text[OS_ADDRESS_STR_LEN];
            os_eip55_format(text, CFG_FIELD(cfg, e, const os_cfg_address)->bytes);
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
