/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every `openseed` subcommand shares: option parsing through the daemons' config loader
 * with usage errors as exit 2, one-line error reports, password files read with the key-file
 * checks into locked memory, JSON requests over libcommon's HTTP client, and the two output
 * forms (indented JSON for scripts, key/value lines for people).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "openseed/http_client.h"
#include "openseed/keyfile.h"
#include "openseed/money.h"

/* Control characters in a message could rewrite the terminal; show them as '?'. */
static void put_line(FILE *f, const char *prefix, const char *msg)
{
    fputs(prefix, f);
    for (const char *p = msg; *p != '\0'; p++)
        fputc(((unsigned char)*p < ' ' || *p == 0x7f) ? '?' : *p, f);
    fputc('\n', f);
}

int cl_fail(const char *cmd, const char *fmt, ...)
{
    char msg[1024], prefix[128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(prefix, sizeof(prefix), "openseed %s: ", cmd);
    put_line(stderr, prefix, msg);
    return CL_EXIT_FAIL;
}

int cl_usage_error(const char *cmd, const char *usage, const char *reason)
{
    char prefix[128];

    snprintf(prefix, sizeof(prefix), "openseed %s: ", cmd);
    put_line(stderr, prefix, reason);
    fprintf(stderr, "usage: %s\n", usage);
    return CL_EXIT_USAGE;
}

int cl_parse(const os_cfg_program *prog, void *o, int argc, char **argv)
{
    os_cfg_report rep;
    os_err rc = os_cfg_load(prog, o, &rep, argc, argv);
    int status;

    if (rc == OS_OK && rep.n_errors == 0 && rep.action == OS_CFG_RUN) {
        os_cfg_report_free(&rep);
        return -1;
    }
    if (rep.nomem || rc == OS_ERR_NOMEM) {
        status = cl_fail(prog->name + strlen("openseed "), "out of memory");
    } else if (rep.n_errors > 0 || rc != OS_OK) {
        for (size_t i = 0; i < rep.n_errors; i++)
            put_line(stderr, "openseed: ", rep.errors[i]);
        fprintf(stderr, "usage: %s (see --help)\n", prog->usage);
        status = CL_EXIT_USAGE;
    } else {
        status = os_cfg_dispatch(prog, o, &rep, rc, stdout, stderr);
    }
    os_cfg_report_free(&rep);
    return status;
}

int cl_password_read(char **out, size_t *len, const char *cmd, const char *path)
{
    char err[512];
    char *pw = sodium_malloc(OS_KEYSTORE_MAX_PASSWORD + 2);

    *out = NULL;
    if (pw == NULL)
        return cl_fail(cmd, "out of memory");
    if (os_keyfile_read_text(pw, OS_KEYSTORE_MAX_PASSWORD + 2, len, path, err, sizeof(err)) !=
        OS_OK) {
        sodium_free(pw);
        return cl_fail(cmd, "password file: %s", err);
    }
    *out = pw;
    return 0;
}

void cl_password_free(char *pw)
{
    if (pw != NULL)
        sodium_free(pw); /* wipes before unmapping */
}

/* The message of an OpenAI-shaped or {"error":"…"} error body, else NULL. */
static const char *error_message(const json_t *body)
{
    const json_t *e = json_object_get(body, "error");
    const char *m;

    if (json_is_string(e))
        return json_string_value(e);
    if ((m = json_string_value(json_object_get(e, "message"))) != NULL)
        return m;
    return json_string_value(json_object_get(body, "message"));
}

int cl_http_json(json_t **out, const char *cmd, const char *method, const char *url,
                 const json_t *body, const char *bearer)
{
    os_http_client_config cfg = {.connect_timeout_ms = 5000, .timeout_ms = 120000};
    os_http_client_error herr;
    os_http_client *c = NULL;
    os_http_header h;
    char auth[600];
    json_t *ans = NULL;
    long status = 0;
    os_err rc;
    int ret = CL_EXIT_FAIL;

    *out = NULL;
    memset(&herr, 0, sizeof(herr));
    if (bearer != NULL && (size_t)snprintf(auth, sizeof(auth), "Bearer %s", bearer) >= sizeof(auth))
        return cl_fail(cmd, "token too long");
    h.name = "Authorization";
    h.value = auth;
    if (os_http_client_new(&c, &cfg) != OS_OK)
        return cl_fail(cmd, "cannot create an HTTP client");
    rc = os_http_client_json(c, &status, &ans, &herr, method, url, body, bearer ? &h : NULL,
                             bearer ? 1 : 0);
    sodium_memzero(auth, sizeof(auth));
    if (rc != OS_OK) {
        cl_fail(cmd, "%s", herr.message[0] != '\0' ? herr.message : os_strerror(rc));
    } else if (status < 200 || status > 299) {
        const char *m = ans != NULL ? error_message(ans) : NULL;
        cl_fail(cmd, "%s %s answered HTTP %ld%s%s", method, url, status, m ? ": " : "", m ? m : "");
    } else {
        *out = ans != NULL ? ans : json_object();
        ans = NULL;
        ret = *out != NULL ? CL_EXIT_OK : cl_fail(cmd, "out of memory");
    }
    json_decref(ans);
    os_http_client_free(c);
    return ret;
}

void cl_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    if (s != NULL) {
        puts(s);
        free(s);
    }
}

/* Fields that hold micro-USDC amounts in the daemons' answers. */
static bool is_money_key(const char *k)
{
    static const char *const keys[] = {"cost",     "estimate", "cumulative", "spent",     "deposit",
                                       "consumed", "claimed",  "unclaimed",  "credit",    "amount",
                                       "revenue",  "total",    "balance",    "refund",    "input",
                                       "output",   "cached",   "gas_cost",   "withdrawn", NULL};
    for (size_t i = 0; keys[i] != NULL; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static void print_scalar(FILE *f, const char *key, const json_t *v)
{
    char usdc[OS_USDC_LEN];
    uint64_t m;

    if (key != NULL && is_money_key(key) && json_is_string(v) &&
        os_money_parse_units(&m, json_string_value(v)) == OS_OK &&
        os_usdc_format(usdc, sizeof(usdc), m) == OS_OK) {
        fprintf(f, "%s USDC", usdc);
        return;
    }
    if (json_is_string(v)) {
        for (const char *p = json_string_value(v); *p != '\0'; p++)
            fputc(((unsigned char)*p < ' ' || *p == 0x7f) ? '?' : *p, f);
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (s != NULL) {
        fputs(s, f);
        free(s);
    }
}

static void print_inline(const json_t *obj)
{
    const char *k;
    json_t *x;
    bool first = true;

    json_object_foreach((json_t *)obj, k, x)
    {
        printf("%s%s=", first ? "" : "  ", k);
        print_scalar(stdout, k, x);
        first = false;
    }
    putchar('\n');
}

void cl_print_human(const json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            if (json_is_object(x)) {
                printf("  ");
                print_inline(x);
            } else {
                printf("  ");
                print_scalar(stdout, NULL, x);
                putchar('\n');
            }
        }
        if (json_array_size(v) == 0)
            printf("  (none)\n");
        return;
    }
    if (!json_is_object(v)) {
        print_scalar(stdout, NULL, v);
        putchar('\n');
        return;
    }
    json_object_foreach((json_t *)v, k, x)
    {
        if (json_is_array(x)) {
            printf("%s (%zu):\n", k, json_array_size(x));
            cl_print_human(x);
        } else if (json_is_object(x)) {
            printf("%s: ", k);
            print_inline(x);
        } else {
            printf("%s: ", k);
            print_scalar(stdout, k, x);
            putchar('\n');
        }
    }
}
