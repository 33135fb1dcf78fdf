/* SPDX-License-Identifier: Apache-2.0 */
/*
 * POST /v1/feedback (PROTOCOL.md §4): a buyer's report on a seller counts only with proof of a
 * paid interaction. The report and its SpendingAuth voucher must be signed by one key, the
 * channel (read from the escrow on chain, cached) must pay the reported node with that key as its
 * signer, the voucher must be within the deposit, and its nonce and amount must be above every
 * report already counted for the channel, so a replay counts nothing. Without a chain RPC and
 * escrow configured the route answers 503.
 */
#include <stdlib.h>
#include <string.h>

#include "openseed/escrow.h"

#include "internal.h"

#define CHAN_TTL_MS 60000    /* a channel's seller and signer never change; deposit may grow */
#define CHAN_NEG_TTL_MS 5000 /* an unknown channel is asked about again after this */

/* The channel's state from the cache or the chain. OS_ERR_NOTFOUND: no such channel;
 * OS_ERR_TIMEOUT: too many lookups in flight; other errors: the chain could not answer. */
static os_err channel_get(rg_registry *rg, rg_chan *out, const uint8_t id[32], int64_t now)
{
    size_t slot;
    uint64_t h = 0;
    os_channel_state st;
    os_chain_error cerr;
    os_err rc;

    for (int i = 0; i < 8; i++)
        h = h << 8 | id[i];
    slot = (size_t)(h % RG_CHAN_CACHE);
    pthread_mutex_lock(&rg->chan_mu);
    rg_chan *c = &rg->chans[slot];
    if (c->used && memcmp(c->id, id, 32) == 0 &&
        now - c->fetched_ms < (c->found ? CHAN_TTL_MS : CHAN_NEG_TTL_MS)) {
        *out = *c;
        pthread_mutex_unlock(&rg->chan_mu);
        return c->found ? OS_OK : OS_ERR_NOTFOUND;
    }
    pthread_mutex_unlock(&rg->chan_mu);

    if (atomic_fetch_add(&rg->chain_inflight, 1) >= rg->opt.max_chain_lookups) {
        atomic_fetch_sub(&rg->chain_inflight, 1);
        return OS_ERR_TIMEOUT;
    }
    rc = os_escrow_get_channel(rg->chain, &st, &cerr, rg->opt.escrow, id);
    atomic_fetch_sub(&rg->chain_inflight, 1);
    if (rc != OS_OK && rc != OS_ERR_NOTFOUND) {
        os_log_event ev;
        if (os_log_begin(&ev, rg->log, OS_LOG_WARN, "channel lookup failed")) {
            os_log_kv(&ev, "error", "%s", os_strerror(rc));
            os_log_kv(&ev, "detail", "%s", cerr.message);
            os_log_end(&ev);
        }
        return rc == OS_ERR_TIMEOUT ? OS_ERR_NETWORK : rc;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->id, id, 32);
    out->used = true;
    out->found = rc == OS_OK;
    out->fetched_ms = now;
    if (out->found) {
        memcpy(out->seller, st.seller, 20);
        memcpy(out->signer, st.signer, 20);
        out->deposit = st.deposit;
        out->closed = st.closed;
    }
    pthread_mutex_lock(&rg->chan_mu);
    rg->chans[slot] = *out;
    pthread_mutex_unlock(&rg->chan_mu);
    return out->found ? OS_OK : OS_ERR_NOTFOUND;
}

void rg_h_feedback(void *ctx, const os_http_request *req, os_http_response *res)
{
    rg_registry *rg = ctx;
    json_t *body = NULL;
    os_feedback fb;
    uint8_t signer[20];
    char err[OS_RECORD_ERR_LEN];
    rg_outcome outcome;
    rg_chan ch;
    rg_peer *p;
    int64_t now;
    os_err rc;

    os_metric_inc(rg->m_requests, RG_R_FEEDBACK);
    if (rg->chain == NULL || !rg->opt.has_escrow) {
        REJECT(rg, res, REJ_UNAVAILABLE, 503, T_SERVER, "feedback_unavailable",
               "feedback is off: this registry has no chain RPC and escrow configured to check "
               "vouchers against");
        return;
    }
    if (!rg_body_json(rg, &body, req, res))
        return;
    if (os_feedback_parse(&fb, body, err, sizeof(err)) != OS_OK ||
        !rg_outcome_parse(&outcome, fb.outcome)) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_feedback", "%s", err);
        goto out;
    }
    if (os_feedback_verify(signer, &fb, rg->opt.chain_id, rg->opt.escrow) != OS_OK) {
        REJECT(rg, res, REJ_SIGNATURE, 401, T_AUTH, "invalid_signature",
               "the feedback and its voucher must both be signed by the channel signer");
        goto out;
    }
    pthread_rwlock_rdlock(&rg->lock);
    p = rg_peer_find(rg, fb.node);
    pthread_rwlock_unlock(&rg->lock);
    if (p == NULL) {
        REJECT(rg, res, REJ_UNKNOWN, 404, T_INVALID, "unknown_node", "no such node");
        goto out;
    }
    now = rg_now_ms();
    rc = channel_get(rg, &ch, fb.channel_id, now);
    if (rc == OS_ERR_NOTFOUND) {
        REJECT(rg, res, REJ_CHANNEL, 403, T_PERM, "unknown_channel",
               "the voucher's channel does not exist on chain");
        goto out;
    }
    if (rc == OS_ERR_TIMEOUT) {
        REJECT(rg, res, REJ_UNAVAILABLE, 503, T_SERVER, "busy",
               "too many channel lookups in flight; retry shortly");
        goto out;
    }
    if (rc != OS_OK) {
        REJECT(rg, res, REJ_UNAVAILABLE, 502, T_SERVER, "chain_unavailable",
               "the chain could not be asked about the voucher's channel");
        goto out;
    }
    if (memcmp(ch.seller, fb.node, 20) != 0 || memcmp(ch.signer, signer, 20) != 0) {
        REJECT(rg, res, REJ_CHANNEL, 403, T_PERM, "channel_mismatch",
               "the voucher's channel does not pay this node with this signer");
        goto out;
    }
    if (fb.cumulative_amount == 0 || fb.cumulative_amount > ch.deposit) {
        REJECT(rg, res, REJ_CHANNEL, 403, T_PERM, "voucher_not_funded",
               "the voucher's amount must be above 0 and within the channel's deposit");
        goto out;
    }
    pthread_mutex_lock(&rg->db_mu);
    rc = rg_store_feedback(rg, &fb, signer, now);
    pthread_mutex_unlock(&rg->db_mu);
    if (rc == OS_ERR_EXISTS) {
        REJECT(rg, res, REJ_STALE, 409, T_INVALID, "stale_voucher",
               "a report with this voucher's nonce or amount was already counted for the channel");
        goto out;
    }
    if (rc == OS_ERR_RANGE) {
        REJECT(rg, res, REJ_FIELD, 400, T_INVALID, "invalid_feedback", "a value is out of range");
        goto out;
    }
    if (rc != OS_OK) {
        REJECT(rg, res, REJ_INTERNAL, 500, T_SERVER, NULL, "the report could not be stored");
        goto out;
    }
    pthread_mutex_lock(&p->mu);
    rg_rank_feedback(&p->stats, &rg->rank, now, outcome,
                     fb.ttft_ms > 0 ? fb.ttft_ms : fb.latency_ms);
    p->dirty = true;
    pthread_mutex_unlock(&p->mu);
    json_t *reply = json_pack("{s:b}", "counted", 1);
    if (reply == NULL || os_http_res_json(res, 200, reply) != OS_OK)
        os_http_res_error(res, 500, T_SERVER, NULL, "out of memory");
out:
    json_decref(body);
}
