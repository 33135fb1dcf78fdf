/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What bdb.c (schema and writes) and bdb_views.c (the read-only JSON views and totals) share:
 * the handle and the encoding of unsigned 64-bit values as SQLite's signed INTEGER (their two's
 * complement bit pattern; SQL never compares or adds them, the C code does).
 */
#ifndef OPENSEED_BUYER_BDB_INTERNAL_H
#define OPENSEED_BUYER_BDB_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "openseed/db.h"
#include "openseed/money.h"

#include "bdb.h"

struct by_bdb {
    pthread_mutex_t mu; /* the one connection, and read-check-write sequences */
    os_db *db;
};

static inline int64_t bdb_enc(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(UINT64_MAX - v) - 1;
}

static inline uint64_t bdb_col_u64(sqlite3_stmt *st, int i)
{
    return (uint64_t)sqlite3_column_int64(st, i); /* modulo 2^64: the inverse of bdb_enc */
}

/* Copies a BLOB column that must be exactly n bytes; -1 when it is not. */
static inline int bdb_col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t n)
{
    const void *p = sqlite3_column_blob(st, i);
    if (p == NULL || (size_t)sqlite3_column_bytes(st, i) != n)
        return -1;
    memcpy(out, p, n);
    return 0;
}

static inline os_err bdb_sql_err(int rc)
{
    os_err e = os_db_status(rc);
    return e == OS_OK ? OS_ERR_INTERNAL : e;
}

static inline uint64_t bdb_sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return os_money_add(&r, a, b) == OS_OK ? r : UINT64_MAX;
}

#endif
