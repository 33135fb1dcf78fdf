/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Constant-time comparison and wiping of secrets (tokens, keys, MACs). Thin, named wrappers over
 * libsodium so call sites say what they mean and never reach for memcmp/strcmp on a secret.
 */
#ifndef OPENSEED_CT_H
#define OPENSEED_CT_H

#include <stddef.h>

/* 1 when a[0..len) equals b[0..len), else 0; time depends only on len. */
int os_ct_eq(const void *a, const void *b, size_t len);

/* 1 when every byte of p[0..len) is zero, else 0; time depends only on len. */
int os_ct_is_zero(const void *p, size_t len);

/*
 * 1 when the NUL-terminated strings a and b are equal, else 0 (0 when either is NULL). Both are
 * hashed first, so the time reveals neither the content nor which string is longer.
 */
int os_ct_streq(const char *a, const char *b);

/* Overwrites p[0..len) with zeros in a way the compiler cannot elide. NULL-safe. */
void os_wipe(void *p, size_t len);

#endif
