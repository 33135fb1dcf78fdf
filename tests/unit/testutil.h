/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by the cmocka unit tests: hex vectors in, byte comparisons with readable
 * failures out. Header-only so each test binary stays one file plus this.
 */
#ifndef OPENSEED_TESTUTIL_H
#define OPENSEED_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "openseed/hex.h"
#include "openseed/init.h"

/* Removes a temporary directory that holds only plain files (a test's scratch folder). */
static inline void tu_rmdir_flat(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

/* Decodes a hex vector (no 0x needed) that must be exactly len bytes; fails the test otherwise. */
static inline void tu_unhex(uint8_t *out, size_t len, const char *hex)
{
    assert_int_equal(os_hex_decode_exact(out, len, hex), OS_OK);
}

/* Asserts that got[0..len) equals the hex vector want, printing both in hex when not. */
static inline void tu_assert_hex(const uint8_t *got, size_t len, const char *want)
{
    char buf[2 * 4096 + 3];
    assert_true(len <= 4096);
    assert_int_equal(os_hex_encode(buf, sizeof(buf), got, len, 0), OS_OK);
    const char *w = (want[0] == '0' && want[1] == 'x') ? want + 2 : want;
    if (strcmp(buf, w) != 0)
        fail_msg("bytes differ\n  got:  %s\n  want: %s", buf, w);
}

/* A loopback TCP port nobody listens on (bound, read, closed): free for a server to take soon
 * after, or refused to a client. */
static inline uint16_t tu_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* cmocka group setup that initialises libcommon. */
static inline int tu_init(void **state)
{
    (void)state;
    return os_init() == OS_OK ? 0 : -1;
}

#endif
