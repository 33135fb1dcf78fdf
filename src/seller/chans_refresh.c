/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keeping the channel cache (chans.c) in step with the escrow contract: one channel's getChannel
 * read, the merge of what the chain says into an entry, and the background thread that re-checks
 * the channels loaded from seller.db, re-reads every channel each refresh period, follows the
 * escrow's events from the last block it saw, and runs the automatic settlement pass
 * (chans_settle.c). Chain state is merged monotonically (deposit, claimed, lastNonce and closeAt
 * only grow, closed only turns on), so reads and events arriving in any order converge.
 */
#include "chans_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/escrow.h"

#define LOG_RANGE_MAX UINT64_C(2000) /* blocks per eth_getLogs (re-reads cover a longer gap) */

/* ---- chain state -------------------------------------------------------------------------- */

int sl_chans_merge_(sl_chan_entry *ch, const os_channel_state *st, bool read)
{
    bool was_closing = ch->st.close_at != 0, was_closed = ch->st.closed;

    /* fixed at open on chain: whatever was stored before, the chain's word wins */
    memcpy(ch->st.payer, st->payer, 20);
    memcpy(ch->st.seller, st->seller, 20);
    memcpy(ch->st.signer, st->signer, 20);
    memcpy(ch->st.commitment, st->commitment, 32);
    ch->st.deposit = u64_max(ch->st.deposit, st->deposit);
    ch->st.claimed = u64_max(ch->st.claimed, st->claimed);
    ch->st.last_nonce = u64_max(ch->st.last_nonce, st->last_nonce);
    if (ch->st.close_at == 0)
        ch->st.close_at = st->close_at;
    ch->st.closed = ch->st.closed || st->closed;
    ch->st.block = u64_max(ch->st.block, st->block);
    if (read) {
        ch->verified = true;
        ch->read_mono = mono_ms();
    }
    if (ch->st.closed && !was_closed)
        return 2;
    if (ch->st.close_at != 0 && !was_closing)
        return 1;
    return 0;
}

void sl_chans_store_(sl_chans *c, const uint8_t id[32], int t, const os_channel_state *st)
{
    if (t == 1)
        log_chan(c, OS_LOG_INFO, "channel closing: the payer asked to close", id, NULL, NULL);
    else if (t == 2)
        log_chan(c, OS_LOG_INFO, "channel closed on chain", id, NULL, NULL);
    if (sl_ledger_channel_put_chain(c->cfg.ledger, id, st, wall_ms()) != OS_OK)
        log_chan(c, OS_LOG_WARN, "cannot store the channel's chain state", id, NULL, NULL);
}

os_err sl_chans_read_(sl_chans *c, os_channel_state *st, const uint8_t id[32])
{
    os_chain_error err;
    os_err e;
    os_chain_err_reset(&err);
    e = os_escrow_get_channel(c->cfg.chain, st, &err, c->cfg.escrow, id);
    if (e != OS_OK && e != OS_ERR_NOTFOUND) {
        atomic_fetch_add(&c->chain_errors, 1);
        log_chan(c, OS_LOG_WARN, "cannot read the channel from the chain", id, "error",
                 err.message);
    }
    return e;
}

os_err sl_chans_refresh_one_(sl_chans *c, sl_chan_entry *ch)
{
    os_channel_state st, snap;
    int t;
    os_err e = sl_chans_read_(c, &st, ch->id);
    if (e != OS_OK)
        return e;
    pthread_mutex_lock(&ch->mu);
    t = sl_chans_merge_(ch, &st, true);
    snap = ch->st;
    pthread_mutex_unlock(&ch->mu);
    sl_chans_store_(c, ch->id, t, &snap);
    return OS_OK;
}

/* ---- events ------------------------------------------------------------------------------- */

/* Applies one escrow event to the channel it names, if it is ours. */
static void apply_event(sl_chans *c, const os_escrow_event *ev)
{
    os_channel_state st, snap;
    sl_chan_entry *ch;
    int t;

    if (ev->removed || ev->kind == OS_ESCROW_EV_OPENED)
        return;
    ch = sl_chans_find_(c, ev->channel_id);
    if (ch == NULL)
        return;
    pthread_mutex_lock(&ch->mu);
    st = ch->st;
    switch (ev->kind) {
    case OS_ESCROW_EV_TOPPED_UP:
        st.deposit = ev->deposit;
        break;
    case OS_ESCROW_EV_CLAIMED:
        st.claimed = ev->claimed;
        st.last_nonce = ev->nonce;
        break;
    case OS_ESCROW_EV_CLOSE_REQUESTED:
        st.close_at = ev->close_at;
        break;
    case OS_ESCROW_EV_CLOSED:
    case OS_ESCROW_EV_WITHDRAWN:
        st.claimed = ev->claimed;
        st.closed = true;
        break;
    default:
        break;
    }
    st.block = ev->block_number;
    t = sl_chans_merge_(ch, &st, false);
    snap = ch->st;
    pthread_mutex_unlock(&ch->mu);
    sl_chans_store_(c, ch->id, t, &snap);
}

/* Reads the escrow's logs since the last block seen. The first call only notes the head: what
 * happened before is covered by the state re-reads. */
static void poll_events(sl_chans *c)
{
    os_chain_error err;
    os_chain_filter f;
    os_chain_log *logs = NULL;
    size_t n = 0;
    uint64_t head;
    os_err e;

    os_chain_err_reset(&err);
    if (os_chain_block_number(c->cfg.chain, &head, &err) != OS_OK) {
        atomic_fetch_add(&c->chain_errors, 1);
        os_log_warn(c->cfg.log, "cannot read the block number: %s", err.message);
        return;
    }
    if (!c->have_block) {
        c->have_block = true;
        c->last_block = head;
        return;
    }
    if (head <= c->last_block)
        return;
    memset(&f, 0, sizeof(f));
    f.has_address = true;
    memcpy(f.address, c->cfg.escrow, 20);
    f.from_block = c->last_block + 1;
    if (head - c->last_block > LOG_RANGE_MAX)
        f.from_block = head - LOG_RANGE_MAX + 1;
    f.to_block = head;
    e = os_chain_get_logs(c->cfg.chain, &logs, &n, &err, &f);
    if (e != OS_OK) {
        atomic_fetch_add(&c->chain_errors, 1);
        os_log_warn(c->cfg.log, "cannot read the escrow's events: %s", err.message);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        os_escrow_event ev;
        if (os_escrow_decode_event(&ev, &logs[i], c->cfg.escrow) == OS_OK)
            apply_event(c, &ev);
    }
    os_chain_logs_free(logs, n);
    c->last_block = head;
}

/* ---- the background thread ---------------------------------------------------------------- */

/* Re-reads channels: only the unverified ones (all = false), or every open one not read within
 * half a refresh period. */
static void reread(sl_chans *c, bool all)
{
    sl_chan_entry **list;
    size_t n = sl_chans_snapshot_(c, &list);
    uint64_t half = c->cfg.refresh_ms / 2;
    for (size_t i = 0; i < n && !stopping(c); i++) {
        bool want;
        pthread_mutex_lock(&list[i]->mu);
        if (!all)
            want = !list[i]->verified;
        else
            want = !list[i]->st.closed &&
                   (list[i]->read_mono == 0 || mono_ms() - list[i]->read_mono >= half);
        pthread_mutex_unlock(&list[i]->mu);
        if (want)
            (void)sl_chans_refresh_one_(c, list[i]);
    }
    free(list);
}

static void *bg_main(void *arg)
{
    sl_chans *c = arg;
    uint64_t next_refresh = 0;

    while (!stopping(c)) {
        struct timespec ts;
        uint64_t now, wait_ms;

        reread(c, false);
        now = mono_ms();
        if (now >= next_refresh && !stopping(c)) {
            poll_events(c); /* the head first: what happens after it is seen next time */
            reread(c, true);
            next_refresh = now + c->cfg.refresh_ms;
        }
        if (!stopping(c))
            sl_chans_settle_pass_(c);

        now = mono_ms();
        wait_ms = next_refresh > now ? next_refresh - now : 0;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&c->bg_mu);
        while (!c->wake && !stopping(c)) {
            if (pthread_cond_timedwait(&c->bg_cv, &c->bg_mu, &ts) == ETIMEDOUT)
                break;
        }
        c->wake = false;
        pthread_mutex_unlock(&c->bg_mu);
    }
    return NULL;
}

os_err sl_chans_start(sl_chans *c)
{
    if (c == NULL)
        return OS_ERR_INVALID;
    pthread_mutex_lock(&c->bg_mu);
    if (c->running) {
        pthread_mutex_unlock(&c->bg_mu);
        return OS_OK;
    }
    atomic_store(&c->stop, false);
    c->wake = false;
    if (pthread_create(&c->thread, NULL, bg_main, c) != 0) {
        pthread_mutex_unlock(&c->bg_mu);
        return OS_ERR_NOMEM;
    }
    c->running = true;
    pthread_mutex_unlock(&c->bg_mu);
    return OS_OK;
}

void sl_chans_stop(sl_chans *c)
{
    pthread_t th;
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->bg_mu);
    if (!c->running) {
        pthread_mutex_unlock(&c->bg_mu);
        return;
    }
    atomic_store(&c->stop, true);
    pthread_cond_broadcast(&c->bg_cv);
    th = c->thread;
    c->running = false;
    pthread_mutex_unlock(&c->bg_mu);
    pthread_join(th, NULL);
}
