/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the channel cache's files share (chans.h is the outside's view of it): the cache object,
 * its entries and the helpers more than one file needs. chans.c owns the map, the unknown-id
 * cache, lookup, paying and the lifecycle; chans_refresh.c keeps the entries in step with the
 * chain (reads, the monotonic merge, the escrow's events, the background thread); chans_settle.c
 * chooses, sends and records claims. Lock order, in all three: map lock, then an entry's lock,
 * then the ledger's; the settle lock is taken before any entry lock and no entry lock is held
 * across a chain call.
 */
#ifndef OPENSEED_SELLER_CHANS_INTERNAL_H
#define OPENSEED_SELLER_CHANS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <sodium.h>

#include "openseed/hex.h"
#include "openseed/log.h"

#include "chans.h"

#define SL_CHANS_ID_HEX OS_HEX_LEN(32)

/* One channel. Entries are never freed before sl_chans_free, so a pointer from the map or a
 * snapshot stays valid without the map lock. */
typedef struct sl_chan_entry {
    uint8_t id[32];
    pthread_mutex_t mu;
    /* under mu */
    os_channel_state st; /* merged chain state */
    bool verified;       /* read from the chain since this process started */
    bool dead;           /* a claim can no longer succeed (grace over, closed) */
    bool has_voucher;
    uint64_t nonce, cumulative; /* the latest accepted voucher */
    uint64_t consumed;          /* as the ledger has it */
    uint64_t reserved;          /* sum of the estimates of requests in flight */
    uint64_t in_flight;
    uint64_t read_mono;         /* when the chain was last read (monotonic ms); 0 never */
    uint64_t settle_mono;       /* last claim attempt, or when the entry was made */
    uint64_t retry_mono;        /* no automatic claim before this */
    struct sl_chan_entry *next; /* bucket chain, under the map lock */
} sl_chan_entry;

struct sl_chans {
    sl_chans_config cfg; /* defaults filled in */
    uint8_t domain[32];  /* the vouchers' EIP-712 domain separator */
    unsigned char hkey[crypto_shorthash_KEYBYTES];

    pthread_rwlock_t map_mu;
    sl_chan_entry **buckets;
    size_t nbuckets;
    sl_chan_entry **all; /* every entry, in insertion order; entries live until sl_chans_free */
    size_t n, cap;

    pthread_mutex_t neg_mu;
    struct sl_chans_neg_slot *neg; /* the unknown-id cache, chans.c's own */
    atomic_uint lookups;

    pthread_mutex_t settle_mu; /* one claim at a time: a voucher is never claimed twice at once */

    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    bool running, wake;
    atomic_bool stop;
    pthread_t thread;
    bool have_block; /* background thread only */
    uint64_t last_block;

    atomic_uint_fast64_t settlements_ok, settlements_failed, chain_errors;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static inline uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline uint64_t u64_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static inline void id_hex(char out[SL_CHANS_ID_HEX], const uint8_t id[32])
{
    if (os_hex_encode(out, SL_CHANS_ID_HEX, id, 32, 1) != OS_OK)
        out[0] = '\0';
}

static inline bool stopping(sl_chans *c)
{
    return atomic_load(&c->stop);
}

/* os_log_begin with the channel's id as the first key; false (nothing to end) when the level is
 * off. */
static inline bool log_begin_chan(os_log_event *ev, const sl_chans *c, os_log_level lvl,
                                  const char *msg, const uint8_t id[32])
{
    char hex[SL_CHANS_ID_HEX];
    if (!os_log_begin(ev, c->cfg.log, lvl, msg))
        return false;
    id_hex(hex, id);
    os_log_kv(ev, "channel", "%s", hex);
    return true;
}

/* A one-line event about a channel, with at most one more key (k NULL: none). */
static inline void log_chan(const sl_chans *c, os_log_level lvl, const char *msg,
                            const uint8_t id[32], const char *k, const char *v)
{
    os_log_event ev;
    if (!log_begin_chan(&ev, c, lvl, msg, id))
        return;
    if (k != NULL)
        os_log_kv(&ev, k, "%s", v != NULL ? v : "");
    os_log_end(&ev);
}

/* ---- chans.c: the map --------------------------------------------------------------------- */

/* The entry for id, or NULL. The entry outlives the map lock (see sl_chan_entry). */
sl_chan_entry *sl_chans_find_(sl_chans *c, const uint8_t id[32]);
/* A copy of the entry list, in insertion order; *out is malloc'd (the caller frees it), NULL when
 * the list is empty or cannot be copied (then 0). */
size_t sl_chans_snapshot_(sl_chans *c, sl_chan_entry ***out);

/* ---- chans_refresh.c: chain state --------------------------------------------------------- */

/* Reads id from the escrow into *st. Counts and logs failures other than OS_ERR_NOTFOUND. */
OS_WUR os_err sl_chans_read_(sl_chans *c, os_channel_state *st, const uint8_t id[32]);
/* Merges a read (read = true: also marks the entry verified and stamps read_mono) or an event into
 * the locked entry. Returns 1 when the channel just became closing, 2 when it just closed, else
 * 0. */
int sl_chans_merge_(sl_chan_entry *ch, const os_channel_state *st, bool read);
/* Logs transition t (sl_chans_merge_'s result; 0 logs nothing) and stores st in the ledger. No
 * entry lock held. */
void sl_chans_store_(sl_chans *c, const uint8_t id[32], int t, const os_channel_state *st);
/* Re-reads an entry's channel, merges and stores it. No entry lock held. */
os_err sl_chans_refresh_one_(sl_chans *c, sl_chan_entry *ch);

/* ---- chans_settle.c ----------------------------------------------------------------------- */

/* The background thread's automatic settlement over every channel (takes the settle lock). */
void sl_chans_settle_pass_(sl_chans *c);

#endif
