/* SPDX-License-Identifier: Apache-2.0 */
/* Names for the os_err status codes shared by every module. */
#include "openseed/err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static const char *const messages[OS_ERR__COUNT] = {
    [OS_OK] = "success",
    [OS_ERR_INVALID] = "invalid input",
    [OS_ERR_RANGE] = "value out of range",
    [OS_ERR_TOOBIG] = "input too large",
    [OS_ERR_NOMEM] = "out of memory",
    [OS_ERR_CRYPTO] = "cryptographic verification failed",
    [OS_ERR_IO] = "input/output error",
    [OS_ERR_NOTFOUND] = "not found",
    [OS_ERR_EXISTS] = "already exists",
    [OS_ERR_TIMEOUT] = "timed out",
    [OS_ERR_NETWORK] = "network error",
    [OS_ERR_UNSUPPORTED] = "unsupported",
    [OS_ERR_INTERNAL] = "internal error",
};

const char *os_strerror(os_err err)
{
    if ((unsigned)err >= OS_ERR__COUNT || messages[err] == NULL)
        return "unknown error";
    return messages[err];
}

os_err os_errf(char *err, size_t errcap, os_err rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errcap > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return rc;
}
