/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: configuration files and values (config.h). An operator's --config file is
 * read with the seller's and the buyer's tables exactly as os_node_main loads them (argv
 * "--config FILE"); the file may come from anywhere (a package, a copied example, an editor
 * crash), so the loader must report and refuse, never crash or leak. The value parsers
 * os_cfg_parse_duration, os_cfg_parse_listen, os_cfg_parse_bool and os_cfg_check_url also get the
 * raw string. The input goes into a memfd named by /proc/self/fd/N, made once; the buyer's required
 * wallet_key may be given as a flag naming a second, private (0600) memfd, so that whole
 * configurations load. A loaded configuration is printed (--print-config) and freed; a parsed
 * listen address formats and parses back to itself. The first byte picks the target.
 */
#define _GNU_SOURCE /* memfd_create */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "openseed/config.h"

#include "../src/buyer/config.h"
#include "../src/seller/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)

/* The two files, made once: the config text (rewritten per input) and a private key file. */
typedef struct files {
    int fd;
    char path[64], key_flag[96];
} files;

static const files *setup(void)
{
    static files f;
    static int done;
    int kfd;

    if (done)
        return &f;
    f.fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    kfd = memfd_create("fuzz-wallet-key", MFD_CLOEXEC);
    if (f.fd < 0 || kfd < 0 || fchmod(kfd, 0600) != 0 ||
        write(kfd, "0x1111111111111111111111111111111111111111111111111111111111111111\n", 67) !=
            67)
        abort();
    snprintf(f.path, sizeof(f.path), "/proc/self/fd/%d", f.fd);
    snprintf(f.key_flag, sizeof(f.key_flag), "--wallet-key=/proc/self/fd/%d", kfd);
    done = 1;
    return &f;
}

static void load(const files *f, const os_cfg_program *prog, void *cfg, bool key_flag)
{
    char *argv[] = {(char *)prog->name, "--config", (char *)f->path, (char *)f->key_flag, NULL};
    os_cfg_report rep;
    os_err e;

    memset(&rep, 0, sizeof(rep));
    e = os_cfg_load(prog, cfg, &rep, key_flag ? 4 : 3, argv);
    if (e == OS_OK) {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (rep.n_errors != 0)
            abort(); /* a configuration with problems is rejected whole */
        if (out != NULL) {
            os_cfg_print(prog, cfg, out);
            fclose(out);
        }
        free(text);
    } else if (e != OS_ERR_INVALID && e != OS_ERR_NOMEM) {
        abort();
    } else if (rep.n_errors == 0 && !rep.nomem) {
        abort(); /* a refusal says why */
    }
    os_cfg_free(prog, cfg);
    os_cfg_report_free(&rep);
}

static void fuzz_listen(const char *s)
{
    os_cfg_listen l, l2;
    char err[256], text[OS_CFG_LISTEN_STR_LEN];

    if (os_cfg_parse_listen(&l, s, err, sizeof(err)) != OS_OK)
        return;
    if (strnlen(l.host, sizeof(l.host)) == sizeof(l.host))
        abort();
    /* written as it would be configured, it reads back the same */
    os_cfg_listen_format(text, &l);
    if (os_cfg_parse_listen(&l2, text, err, sizeof(err)) != OS_OK || l2.port != l.port ||
        strcmp(l2.host, l.host) != 0)
        abort();
    (void)os_cfg_listen_is_loopback(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const files *f;
    char *s;

    if (size < 1 || size > MAX_INPUT)
        return 0;
    f = setup();
    switch (data[0] % 6) {
    case 0:
    case 1: {
        /* the file's bytes exactly as given */
        if (ftruncate(f->fd, 0) != 0 || pwrite(f->fd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
            abort();
        if (data[0] % 6 == 0) {
            sl_config cfg;
            load(f, &sl_config_program, &cfg, false);
        } else {
            by_config cfg;
            load(f, &by_config_program, &cfg, (data[0] & 0x80) != 0);
        }
        return 0;
    }
    default:
        break;
    }
    if ((s = malloc(size)) == NULL)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 6) {
    case 2: {
        uint64_t secs;
        (void)os_cfg_parse_duration(&secs, s);
        break;
    }
    case 3:
        fuzz_listen(s);
        break;
    case 4: {
        bool b;
        (void)os_cfg_parse_bool(&b, s);
        break;
    }
    default: {
        char err[256];
        (void)os_cfg_check_url(s, err, sizeof(err));
        break;
    }
    }
    free(s);
    return 0;
}
