/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pieces of the `openseed` operator command shared by its subcommand files: argument
 * parsing with the daemons' table-driven loader (exit 2 with the usage line on a bad argument),
 * one-line error reports (exit 1), password files, JSON requests to the daemons and the
 * registry, and the human rendering of their JSON answers. Each subcommand family is one file:
 * keys.c (key files and keystores), net.c (registry, buyer and seller APIs).
 */
#ifndef OPENSEED_CLI_CLI_H
#define OPENSEED_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "openseed/config.h"

/* Exit statuses: success, a failure at run time, a bad command line. */
#define CL_EXIT_OK 0
#define CL_EXIT_FAIL 1
#define CL_EXIT_USAGE 2

/*
 * Loads prog's options from argv[1..argc) (argv[0] names the command) into o. Returns -1 when the
 * command should run; otherwise the exit status after printing --help (0), or the errors and the
 * usage line on stderr (2). o is released by the caller with os_cfg_free either way.
 */
int cl_parse(const os_cfg_program *prog, void *o, int argc, char **argv);

/* Prints "openseed CMD: reason" (one line, control characters replaced) on stderr; returns 1. */
int cl_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints usage to stderr after a one-line reason; returns 2. */
int cl_usage_error(const char *cmd, const char *usage, const char *reason);

/*
 * Reads a one-line password file (0600) into a fresh sodium_malloc'd buffer *out (free with
 * cl_password_free). 0, or a message on stderr and 1.
 */
int cl_password_read(char **out, size_t *len, const char *cmd, const char *path);
void cl_password_free(char *pw);

/*
 * One JSON request: method to url with body (NULL for none) and, when bearer is not NULL, an
 * Authorization header. *out (the caller's, json_decref) is the answer of a 2xx. Anything else
 * (transport failure, non-2xx, no JSON) prints a one-line reason (the server's error message when
 * it sent one) and returns 1.
 */
int cl_http_json(json_t **out, const char *cmd, const char *method, const char *url,
                 const json_t *body, const char *bearer);

/* Prints v as indented JSON and a newline on stdout. */
void cl_print_json(const json_t *v);

/* Prints v for a person: objects as "key: value" lines, arrays of objects as one line per item,
 * micro-USDC amounts (fields such as cost, spent, deposit) in USDC. */
void cl_print_human(const json_t *v);

/* Subcommands; argv[0] is the subcommand's own name ("keys", "peers", ...). */
int cl_keys_main(int argc, char **argv);
int cl_peers_main(int argc, char **argv);
int cl_registry_main(int argc, char **argv);
int cl_channels_main(int argc, char **argv);
int cl_ledger_main(int argc, char **argv);
int cl_spend_main(int argc, char **argv);
int cl_seller_main(int argc, char **argv);

#endif
