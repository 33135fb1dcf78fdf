/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The benchmarks' fake model: the seller's built-in echo upstream (src/seller/echo.h) as a
 * process of its own, so the same server at the same fixed latency sits behind every path
 * scripts/bench.sh compares (called directly, through Portkey's gateway, and through the buyer and
 * a seller). It answers OpenAI chat completions and embeddings, whole or streamed, until SIGTERM.
 *
 *   echo_upstream --listen 127.0.0.1:PORT [--latency-ms N] [--tokens-per-s N] [--threads N]
 *
 * Prints "listening on 127.0.0.1:PORT" on stdout once it serves.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo.h"
#include "openseed/init.h"
#include "openseed/node.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: echo_upstream --listen HOST:PORT [--latency-ms N] [--tokens-per-s N] "
               "[--threads N] [--log-level LEVEL]\n"
               "  --latency-ms N    delay before the first byte of every answer [0]\n"
               "  --tokens-per-s N  streaming pace of content deltas (0 = as fast as possible) [0]\n"
               "  --threads N       HTTP server threads [4]\n");
}

static bool parse_uint(unsigned *out, const char *s, unsigned max)
{
    char *end;
    unsigned long v;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

int main(int argc, char **argv)
{
    sl_echo_config cfg = {.model = "echo-1", .threads = 4};
    os_logger lg;
    os_log_level level = OS_LOG_WARN;
    sl_echo *e = NULL;
    sigset_t set;
    os_err rc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = v != NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--listen") == 0) {
            cfg.listen = v;
        } else if (strcmp(a, "--latency-ms") == 0) {
            ok = parse_uint(&cfg.latency_ms, v, 600000);
        } else if (strcmp(a, "--tokens-per-s") == 0) {
            ok = parse_uint(&cfg.tokens_per_s, v, 1000000);
        } else if (strcmp(a, "--threads") == 0) {
            ok = parse_uint(&cfg.threads, v, 256) && cfg.threads > 0;
        } else if (strcmp(a, "--log-level") == 0) {
            ok = v != NULL && os_log_level_parse(&level, v) == OS_OK;
        } else {
            fprintf(stderr, "echo_upstream: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "echo_upstream: %s needs a valid value\n", a);
            return 2;
        }
        i++;
    }
    if (cfg.listen == NULL) {
        usage(stderr);
        return 2;
    }
    os_logger_init(&lg, "echo", level);
    if (os_init() != OS_OK || os_node_signals_block(&set, &lg) != OS_OK)
        return 1;
    if ((rc = sl_echo_new(&e, &cfg, &lg)) != OS_OK || (rc = sl_echo_start(e)) != OS_OK) {
        fprintf(stderr, "echo_upstream: cannot serve on %s: %s\n", cfg.listen, os_strerror(rc));
        sl_echo_free(e);
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", (unsigned)sl_echo_port(e));
    fflush(stdout);
    os_node_signals_wait(&set, &lg);
    sl_echo_free(e);
    return 0;
}
