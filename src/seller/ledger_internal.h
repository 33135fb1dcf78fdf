/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ledger's two files share: ledger.c owns seller.db (schema, open, the writes that move
 * money, settlement candidates) and ledger_views.c reads it back as the admin API's JSON. The
 * writes go through the writer connection under the ledger's mutex; the views read through a
 * second, read-only connection under a mutex of their own, so a dashboard polling the admin API
 * never holds up a paid request (in WAL mode a reader does not block the writer). Both read
 * unsigned 64-bit values stored as their two's complement bit pattern in SQLite's signed INTEGER
 * (ledger.c's header says why).
 */
#ifndef OPENSEED_SELLER_LEDGER_INTERNAL_H
#define OPENSEED_SELLER_LEDGER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "openseed/db.h"

#include "ledger.h"

struct sl_ledger {
    os_db *db; /* the writer */
    pthread_mutex_t mu;
    os_db *rdb; /* the views' read-only connection; NULL (":memory:") when they share db */
    pthread_mutex_t rmu;
    bool rmu_ready;
};

static inline void ldg_lock(sl_ledger *l)
{
    pthread_mutex_lock(&l->mu);
}

static inline void ldg_unlock(sl_ledger *l)
{
    pthread_mutex_unlock(&l->mu);
}

/* The connection a view reads through, locked: every ldg_view_begin has its ldg_view_end. */
static inline os_db *ldg_view_begin(sl_ledger *l)
{
    if (l->rdb == NULL) {
        pthread_mutex_lock(&l->mu);
        return l->db;
    }
    pthread_mutex_lock(&l->rmu);
    return l->rdb;
}

static inline void ldg_view_end(sl_ledger *l)
{
    pthread_mutex_unlock(l->rdb == NULL ? &l->mu : &l->rmu);
}

/* uint64 to its bit pattern as int64 without implementation-defined conversions. */
static inline int64_t ldg_enc(uint64_t v)
{
    return v <= (uint64_t)INT64_MAX ? (int64_t)v : -(int64_t)(UINT64_MAX - v) - 1;
}

static inline uint64_t ldg_col_u64(sqlite3_stmt *st, int i)
{
    return (uint64_t)sqlite3_column_int64(st, i); /* modulo 2^64: the inverse of ldg_enc */
}

/* Copies a BLOB column that must be exactly n bytes; 0 when it is not. */
static inline int ldg_col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t n)
{
    const void *p = sqlite3_column_blob(st, i);

    if (p == NULL || (size_t)sqlite3_column_bytes(st, i) != n)
        return 0;
    memcpy(out, p, n);
    return 1;
}

/* Token totals are statistics, not money: they stop at UINT64_MAX rather than fail. */
static inline uint64_t ldg_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A channel's token totals, which sl_channel does not carry (the revenue view sums them). */
typedef struct sl_ledger_tokens {
    uint64_t input, cached, output;
} sl_ledger_tokens;

/*
 * Every channel, in first-seen order, read through db (the writer or the views' connection, whose
 * lock the caller holds). *out (and *tok when tok is non-NULL, the token totals index for index)
 * is malloc'd for the caller to free(); on failure nothing is allocated.
 */
OS_WUR os_err sl_ledger_list_(os_db *db, sl_channel **out, sl_ledger_tokens **tok, size_t *n);

#endif
