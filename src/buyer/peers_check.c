/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checking what a registry serves, since a registry can serve anything (peers_internal.h says
 * what is checked). Verification is the expensive part (one ecrecover per record and per changed
 * heartbeat), so each node remembers its newest verified copy: a record served again with the
 * same body hash and signature, and the same heartbeat, is taken without another signature
 * check, and a listing that serves nothing new shares the earlier copy.
 */
#include "peers.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "openseed/json.h"
#include "openseed/secp.h"

#include "peers_internal.h"

/* ------------------------------------------------------------------ checking one peer */

static os_err unit_number(double *out, const json_t *obj, const char *key, char *err, size_t errcap)
{
    const json_t *v = json_object_get(obj, key);
    double d;

    if (v == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "peer: field \"%s\" is required", key);
    if (!json_is_number(v))
        return os_errf(err, errcap, OS_ERR_INVALID, "peer: field \"%s\" must be a number", key);
    d = json_number_value(v);
    if (!isfinite(d) || d < 0.0 || d > 1.0)
        return os_errf(err, errcap, OS_ERR_INVALID, "peer: field \"%s\" must be between 0 and 1",
                       key);
    *out = d;
    return OS_OK;
}

static bool hb_same(const os_heartbeat *a, const os_heartbeat *b)
{
    return memcmp(a->node, b->node, 20) == 0 && strcmp(a->endpoint, b->endpoint) == 0 &&
           a->seq == b->seq && a->timestamp == b->timestamp && memcmp(a->sig, b->sig, 65) == 0;
}

/* Takes the heartbeat's endpoint when the heartbeat is the node's, newer than the record and
 * signed; anything else leaves the record's endpoint and marks the heartbeat rejected. */
static void take_heartbeat(by_peer_parsed *out, const json_t *hbj, uint64_t chain_id,
                           const by_peer_parsed *known)
{
    os_heartbeat hb;

    if (os_heartbeat_parse(&hb, hbj, NULL, 0) != OS_OK ||
        memcmp(hb.node, out->record.node, 20) != 0 || hb.seq <= out->record.seq) {
        out->hb_rejected = true;
        return;
    }
    hb.active = hb.capacity = 0;
    if (!(known != NULL && known->hb_used && hb_same(&known->hb, &hb)) &&
        os_heartbeat_verify(&hb, chain_id) != OS_OK) {
        out->hb_rejected = true;
        return;
    }
    out->hb = hb;
    out->hb_used = true;
    memcpy(out->endpoint, hb.endpoint, sizeof(out->endpoint));
}

os_err by_peers_parse_peer(by_peer_parsed *out, const json_t *peer, uint64_t chain_id,
                           const uint8_t escrow[20], const by_peer_parsed *known, char *err,
                           size_t errcap)
{
    static const char W[] = "peer: ";
    const json_t *rec, *load, *hbj;
    uint64_t active, capacity;
    os_err rc;

    if (out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no output");
    memset(out, 0, sizeof(*out));
    if (peer == NULL || escrow == NULL || !json_is_object(peer))
        return os_errf(err, errcap, OS_ERR_INVALID, "peer: must be a JSON object");
    if ((rc = os_json_at_object(&rec, peer, "record", W, err, errcap)) != OS_OK ||
        (rc = os_json_at_hex(out->sig, 65, peer, "signature", W, err, errcap)) != OS_OK ||
        (rc = unit_number(&out->reputation, peer, "reputation", err, errcap)) != OS_OK ||
        (rc = unit_number(&out->score, peer, "score", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&out->last_seen, peer, "last_seen", 0, UINT64_MAX, W, err, errcap)) !=
            OS_OK ||
        (rc = os_json_at_object(&load, peer, "load", W, err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&active, load, "active", 0, UINT32_MAX, "peer: load: ", err,
                             errcap)) != OS_OK ||
        (rc = os_json_at_u64(&capacity, load, "capacity", 0, UINT32_MAX, "peer: load: ", err,
                             errcap)) != OS_OK)
        goto fail;
    out->load_active = (uint32_t)active;
    out->load_capacity = (uint32_t)capacity;
    hbj = json_object_get(peer, "heartbeat");
    if (hbj != NULL && !json_is_null(hbj) && !json_is_object(hbj)) {
        rc = os_errf(err, errcap, OS_ERR_INVALID, "peer: field \"heartbeat\" must be an object");
        goto fail;
    }

    if ((rc = os_record_body_hash(out->body_hash, rec)) != OS_OK) {
        rc = os_errf(err, errcap, rc == OS_ERR_NOMEM ? rc : OS_ERR_INVALID,
                     "peer: the record cannot be hashed");
        goto fail;
    }
    if (known != NULL && memcmp(known->body_hash, out->body_hash, 32) == 0 &&
        memcmp(known->sig, out->sig, 65) == 0) {
        out->record = known->record; /* the very bytes already verified */
    } else if ((rc = os_record_verify(&out->record, rec, out->sig, err, errcap)) != OS_OK) {
        goto fail;
    }
    if (out->record.chain_id != chain_id) {
        rc = os_errf(err, errcap, OS_ERR_UNSUPPORTED, "the record is for chain %" PRIu64,
                     out->record.chain_id);
        goto fail;
    }
    if (memcmp(out->record.escrow, escrow, 20) != 0) {
        rc = os_errf(err, errcap, OS_ERR_UNSUPPORTED, "the record names another escrow");
        goto fail;
    }
    if (os_ohttp_keyconfig_parse(&out->kc, out->record.ohttp_keys, out->record.ohttp_keys_len) !=
        OS_OK) {
        rc = os_errf(err, errcap, OS_ERR_INVALID, "the record's ohttp_keys are not usable");
        goto fail;
    }
    memcpy(out->endpoint, out->record.endpoint, sizeof(out->endpoint));
    if (json_is_object(hbj))
        take_heartbeat(out, hbj, chain_id, known);
    return OS_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

/* Same signed content: a listing may then share the earlier copy. */
static bool verified_same(const by_peer_parsed *a, const by_peer_parsed *b)
{
    return memcmp(a->body_hash, b->body_hash, 32) == 0 && memcmp(a->sig, b->sig, 65) == 0 &&
           a->hb_used == b->hb_used && a->hb_rejected == b->hb_rejected &&
           (!a->hb_used || hb_same(&a->hb, &b->hb));
}

/* ------------------------------------------------------------------ listings */

/* A reference to node's newest verified copy, or NULL. */
static by_peer_ref *known_get(by_peers *p, const uint8_t node[20])
{
    by_peer_ref *pr = NULL;
    pthread_mutex_lock(&p->mu);
    by_peer_node *e = by_peers_node_find_(p, node);
    if (e != NULL && e->last != NULL) {
        pr = e->last;
        pr->refs++;
    }
    pthread_mutex_unlock(&p->mu);
    return pr;
}

static int lentry_node_cmp(const void *a, const void *b)
{
    return memcmp(((const by_listing_entry *)a)->pr->v.record.node,
                  ((const by_listing_entry *)b)->pr->v.record.node, 20);
}

/* Checks each served peer (reusing earlier verifications) into a listing; unusable ones dropped. */
os_err by_peers_build_listing_(by_peers *p, size_t ri, const json_t *peers, by_listing_entry **out,
                               size_t *n_out)
{
    size_t n = json_array_size(peers), k = 0, malformed = 0, forged = 0, foreign = 0, hb_bad = 0;
    by_listing_entry *e = calloc(n > 0 ? n : 1, sizeof(*e));
    by_peer_ref *scratch = NULL;
    char why[OS_RECORD_ERR_LEN];
    os_err rc = OS_OK;

    *out = NULL;
    *n_out = 0;
    if (e == NULL)
        return OS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *peer = json_array_get(peers, i);
        const json_t *rec = json_object_get(peer, "record");
        uint8_t node[20];
        by_peer_ref *known;

        if (!json_is_object(rec) ||
            os_json_at_address(node, rec, "node_id", "", NULL, 0) != OS_OK) {
            malformed++;
            continue;
        }
        if (scratch == NULL && (scratch = calloc(1, sizeof(*scratch))) == NULL) {
            rc = OS_ERR_NOMEM;
            break;
        }
        known = known_get(p, node);
        os_err prc = by_peers_parse_peer(&scratch->v, peer, p->chain_id, p->escrow,
                                         known != NULL ? &known->v : NULL, why, sizeof(why));
        if (prc != OS_OK) {
            by_peers_unref_(p, known);
            if (prc == OS_ERR_NOMEM) {
                rc = prc;
                break;
            }
            if (prc == OS_ERR_CRYPTO)
                forged++;
            else if (prc == OS_ERR_UNSUPPORTED)
                foreign++;
            else
                malformed++;
            os_log_event ev;
            if (os_log_begin(&ev, p->log, OS_LOG_DEBUG, "peer dropped")) {
                char hex[OS_ADDRESS_STR_LEN];
                os_eip55_format(hex, node);
                os_log_kv(&ev, "node", "%s", hex);
                os_log_kv(&ev, "reason", "%s", why);
                os_log_end(&ev);
            }
            continue;
        }
        if (scratch->v.hb_rejected)
            hb_bad++;
        e[k] = by_peers_entry_(&scratch->v);
        if (known != NULL && verified_same(&known->v, &scratch->v)) {
            e[k].pr = known;
        } else {
            by_peers_unref_(p, known);
            scratch->refs = 1;
            e[k].pr = scratch;
            scratch = NULL;
        }
        k++;
    }
    if (scratch != NULL) {
        sodium_memzero(scratch, sizeof(*scratch));
        free(scratch);
    }
    if (k > 1) { /* a registry that lists a node twice: keep one */
        size_t w = 1;
        qsort(e, k, sizeof(*e), lentry_node_cmp);
        for (size_t i = 1; i < k; i++) {
            if (lentry_node_cmp(&e[w - 1], &e[i]) == 0)
                by_peers_unref_(p, e[i].pr);
            else
                e[w++] = e[i];
        }
        k = w;
    }
    if (malformed + forged + foreign + hb_bad > 0) {
        os_log_event ev;
        if (os_log_begin(&ev, p->log, forged + hb_bad > 0 ? OS_LOG_WARN : OS_LOG_INFO,
                         "registry served unusable records")) {
            os_log_kv(&ev, "registry", "%zu", ri);
            os_log_kv(&ev, "forged", "%zu", forged);
            os_log_kv(&ev, "other_chain_or_escrow", "%zu", foreign);
            os_log_kv(&ev, "malformed", "%zu", malformed);
            os_log_kv(&ev, "bad_heartbeats", "%zu", hb_bad);
            os_log_end(&ev);
        }
    }
    /* Peers served but none usable, some forged or malformed: the registry misbehaves (or
     * something between us and it does). That is no answer: an empty listing would make the
     * buyer forget every seller it verified, on the word of whoever can reach its port. */
    if (rc == OS_OK && k == 0 && forged + malformed > 0)
        rc = OS_ERR_CRYPTO;
    if (rc != OS_OK) {
        for (size_t i = 0; i < k; i++)
            by_peers_unref_(p, e[i].pr);
        free(e);
        return rc;
    }
    *out = e;
    *n_out = k;
    return OS_OK;
}
