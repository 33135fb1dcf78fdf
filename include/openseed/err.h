/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One status convention for all of OpenSeed, like curl's CURLcode: every public function that can
 * fail returns an os_err, OS_OK (0) on success, and os_strerror() names the others. Functions that
 * return a status are marked OS_WUR so a caller cannot drop it on the floor.
 */
#ifndef OPENSEED_ERR_H
#define OPENSEED_ERR_H

#include <stddef.h>

#define OS_WUR __attribute__((warn_unused_result))

typedef enum os_err {
    OS_OK = 0,
    OS_ERR_INVALID,     /* malformed input or bad argument */
    OS_ERR_RANGE,       /* a value out of range, or arithmetic that would overflow */
    OS_ERR_TOOBIG,      /* input or output larger than its cap */
    OS_ERR_NOMEM,       /* allocation failed */
    OS_ERR_CRYPTO,      /* a signature, proof or ciphertext did not verify */
    OS_ERR_IO,          /* file or socket error; errno may say more */
    OS_ERR_NOTFOUND,    /* no such key, row or object */
    OS_ERR_EXISTS,      /* already present (replay, duplicate) */
    OS_ERR_TIMEOUT,     /* a deadline passed */
    OS_ERR_NETWORK,     /* a peer could not be reached or answered badly */
    OS_ERR_UNSUPPORTED, /* a valid request we do not implement */
    OS_ERR_INTERNAL,    /* a broken invariant: a bug */
    OS_ERR__COUNT
} os_err;

/* A short static English description of err; never NULL. */
const char *os_strerror(os_err err);

/*
 * Formats a message into err[0..errcap) (when err is non-NULL and errcap > 0) and returns rc: the
 * one-line "say why and fail" that parsers and loaders end their error paths with.
 */
os_err os_errf(char *err, size_t errcap, os_err rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
