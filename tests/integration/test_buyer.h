/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: a buyer-side client built only from libcommon, for the seller's tests (the buyer
 * daemon is its own piece of work). It reads the seller's signed record from /v1/info (verifying
 * it), opens a real channel on the dev chain with a fresh channel signer and identity secret,
 * and makes paid calls as PROTOCOL.md §5-§7 say: seal the request (os_infer_call_new), estimate
 * it with the shared estimate, sign a voucher for consumed + estimate with the next nonce, prove
 * the credential over the envelope's metadataHash, send, and follow cumulative_consumed from the
 * final chunk. tb_raw sends hand-made (broken) requests for the refusal tests.
 *
 * Header-only: each integration test is a single .c file.
 */
#ifndef OPENSEED_TEST_BUYER_H
#define OPENSEED_TEST_BUYER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "devchain.h"
#include "openseed/credential.h"
#include "openseed/hex.h"
#include "openseed/http_client.h"
#include "openseed/json.h"
#include "openseed/infer.h"
#include "openseed/keccak.h"
#include "openseed/money.h"
#include "openseed/ohttp.h"
#include "openseed/record.h"
#include "openseed/secp.h"
#include "openseed/x402.h"

#define TB_EVENTS_MAX (256 * 1024)

typedef struct tbuyer {
    os_http_client *http;
    char base[128];
    char infer_url[160];
    os_record rec; /* verified */
    os_ohttp_keyconfig kc;
    uint64_t chain_id;
    uint8_t escrow[20];
    /* the channel */
    uint8_t payer[20];
    uint8_t channel_id[32];
    uint8_t signer_priv[32];
    uint8_t signer[20];
    os_cred_secret *cred;
    uint64_t deposit;
    uint64_t consumed; /* as the seller last reported it */
    uint64_t nonce;    /* the last nonce signed */
} tbuyer;

typedef struct tb_out {
    os_err rc;
    os_infer_result res;
    char events[TB_EVENTS_MAX]; /* every event's text back to back */
    size_t events_len;
    uint64_t estimate;
    uint64_t cumulative; /* the voucher sent */
    int stop_after;      /* > 0: stop the call after this many events (a client that leaves) */
    int seen;
} tb_out;

static inline int tb_init(tbuyer *b, const char *base, uint64_t chain_id, const uint8_t escrow[20],
                          char *why, size_t n)
{
    os_http_client_config hc = {.timeout_ms = 60000, .pool_size = 2};
    json_t *info = NULL, *rec;
    long status = 0;
    os_http_client_error herr;
    char url[192];
    uint8_t sig[65];
    size_t sl = 0;
    const char *sighex;

    memset(b, 0, sizeof(*b));
    snprintf(b->base, sizeof(b->base), "%s", base);
    snprintf(b->infer_url, sizeof(b->infer_url), "%s%s", base, OS_INFER_PATH);
    b->chain_id = chain_id;
    memcpy(b->escrow, escrow, 20);
    if (os_http_client_new(&b->http, &hc) != OS_OK) {
        snprintf(why, n, "http client");
        return -1;
    }
    snprintf(url, sizeof(url), "%s/v1/info", base);
    if (os_http_client_json(b->http, &status, &info, &herr, "GET", url, NULL, NULL, 0) != OS_OK ||
        status != 200 || info == NULL) {
        snprintf(why, n, "GET /v1/info: %ld %s", status, herr.message);
        json_decref(info);
        return -1;
    }
    rec = json_object_get(info, "record");
    sighex = json_string_value(json_object_get(info, "signature"));
    if (rec == NULL || sighex == NULL ||
        os_hex_decode(sig, sizeof(sig), &sl, sighex, strlen(sighex)) != OS_OK || sl != 65 ||
        os_record_verify(&b->rec, rec, sig, why, n) != OS_OK ||
        os_ohttp_keyconfig_parse(&b->kc, b->rec.ohttp_keys, b->rec.ohttp_keys_len) != OS_OK) {
        if (why[0] == '\0')
            snprintf(why, n, "/v1/info: bad record");
        json_decref(info);
        return -1;
    }
    json_decref(info);
    return 0;
}

static inline void tb_free(tbuyer *b)
{
    os_http_client_free(b->http);
    os_cred_secret_free(b->cred);
    os_wipe(b->signer_priv, sizeof(b->signer_priv));
    b->http = NULL;
    b->cred = NULL;
}

/* Opens a channel from anvil account payer_idx to the seller of b->rec for deposit micro-USDC. */
static inline int tb_open(tbuyer *b, devchain *d, int payer_idx, const uint8_t seller[20],
                          uint64_t deposit, char *why, size_t n)
{
    os_chain_signer *payer = NULL;
    os_escrow_open_args o;
    os_chain_error err;
    int rc = -1;

    if (devchain_signer(d, &payer, payer_idx, why, n) != 0)
        return -1;
    devchain_address(b->payer, payer_idx);
    if (os_secp_keygen(b->signer_priv) != OS_OK ||
        os_secp_address(b->signer, b->signer_priv) != OS_OK || os_cred_keygen(&b->cred) != OS_OK) {
        snprintf(why, n, "keygen");
        goto out;
    }
    memset(&o, 0, sizeof(o));
    memcpy(o.seller, seller, 20);
    memcpy(o.signer, b->signer, 20);
    os_cred_commit(o.commitment, b->cred);
    o.amount = deposit;
    randombytes_buf(o.salt, sizeof(o.salt));
    os_escrow_channel_id(b->channel_id, d->chain_id, d->escrow, b->payer, seller, o.salt);
    if (devchain_mint(d, b->payer, deposit, why, n) != 0)
        goto out;
    if (os_erc20_approve(payer, NULL, &err, d->usdc, d->escrow, deposit) != OS_OK ||
        os_escrow_open(payer, NULL, &err, d->escrow, &o) != OS_OK) {
        snprintf(why, n, "open: %s", err.message);
        goto out;
    }
    b->deposit = deposit;
    b->consumed = 0;
    b->nonce = 0;
    rc = 0;
out:
    os_chain_signer_free(payer);
    return rc;
}

/* The offering of b->rec selling service. */
static inline const os_offering *tb_offering(const tbuyer *b, const char *service)
{
    for (size_t i = 0; i < b->rec.n_offerings; i++)
        for (size_t k = 0; k < b->rec.offerings[i].n_services; k++)
            if (strcmp(b->rec.offerings[i].services[k], service) == 0)
                return &b->rec.offerings[i];
    return NULL;
}

/* Signs a voucher (cum, nonce) over mh and a credential for it; *payment is malloc'd. */
static inline int tb_sign(tbuyer *b, char **payment, char cred[OS_CRED_HEADER_LEN + 1],
                          const uint8_t mh[32], uint64_t cum, uint64_t nonce)
{
    os_voucher v;
    os_x402_requirement acc;

    memset(&v, 0, sizeof(v));
    memcpy(v.channel_id, b->channel_id, 32);
    v.cumulative_amount = cum;
    v.nonce = nonce;
    memcpy(v.metadata_hash, mh, 32);
    memset(&acc, 0, sizeof(acc));
    acc.chain_id = b->chain_id;
    acc.amount = 0;
    memcpy(acc.asset, b->rec.asset, 20);
    memcpy(acc.pay_to, b->rec.node, 20);
    acc.max_timeout_s = 300;
    memcpy(acc.escrow, b->escrow, 20);
    if (os_voucher_sign(&v, b->signer_priv, b->chain_id, b->escrow) != OS_OK ||
        os_x402_payment_encode(payment, &acc, &v) != OS_OK)
        return -1;
    if (cred != NULL && os_cred_header_make(cred, OS_CRED_HEADER_LEN + 1, NULL, b->cred,
                                            b->channel_id, nonce, mh) != OS_OK) {
        free(*payment);
        *payment = NULL;
        return -1;
    }
    return 0;
}

/* A credential for mh whose nullifier is random rather than derived from a nonce (the proof
 * binds it either way): lets a test reach the checks behind the nullifier cache. */
static inline int tb_cred_random_nf(tbuyer *b, char cred[OS_CRED_HEADER_LEN + 1],
                                    const uint8_t mh[32])
{
    uint8_t nf[OS_CRED_NULLIFIER_LEN], proof[OS_CRED_PROOF_LEN], c[OS_CRED_COMMITMENT_LEN];
    randombytes_buf(nf, sizeof(nf));
    os_cred_commit(c, b->cred);
    if (os_cred_prove(proof, b->cred, nf, b->channel_id, mh) != OS_OK ||
        os_cred_header_encode(cred, OS_CRED_HEADER_LEN + 1, c, nf, proof) != OS_OK)
        return -1;
    return 0;
}

static inline int tb_event_cb(void *ud, const char *event, size_t len)
{
    tb_out *o = ud;
    if (o->events_len + len < sizeof(o->events)) {
        memcpy(o->events + o->events_len, event, len);
        o->events_len += len;
        o->events[o->events_len] = '\0';
    }
    o->seen++;
    return o->stop_after > 0 && o->seen >= o->stop_after;
}

/*
 * One paid call: estimate, voucher for consumed + estimate + extra (extra may be negative to
 * underpay), next nonce, credential, send. Updates b->consumed from the answer. out->rc is
 * os_infer_call_send's result; out->res the answer (free with os_infer_result_free).
 */
static inline void tb_call_x(tbuyer *b, tb_out *out, const char *api, const char *service,
                             const json_t *body, int64_t extra)
{
    const os_offering *o = tb_offering(b, service);
    os_infer_call *c = NULL;
    os_estimate est;
    char *payment = NULL, cred[OS_CRED_HEADER_LEN + 1];
    uint8_t mh[32];

    out->rc = OS_ERR_INVALID;
    out->events_len = 0;
    out->seen = 0;
    memset(&out->res, 0, sizeof(out->res));
    if (o == NULL ||
        os_estimate_request(&est, api, body, &o->pricing, o->max_output_tokens) != OS_OK ||
        os_infer_call_new(&c, &b->kc, api, service, body) != OS_OK)
        return;
    os_infer_call_metadata_hash(c, mh);
    out->estimate = est.total;
    out->cumulative = (uint64_t)((int64_t)(b->consumed + est.total) + extra);
    if (tb_sign(b, &payment, cred, mh, out->cumulative, ++b->nonce) != 0) {
        os_infer_call_free(c);
        return;
    }
    out->rc = os_infer_call_send(c, &out->res, b->http, NULL, b->infer_url, payment, cred,
                                 tb_event_cb, out, NULL);
    if (out->rc == OS_OK && out->res.http_status == 200)
        b->consumed = out->res.final.cumulative_consumed;
    free(payment);
    os_infer_call_free(c);
}

static inline void tb_call(tbuyer *b, tb_out *out, const char *api, const char *service,
                           const json_t *body)
{
    tb_call_x(b, out, api, service, body, 0);
}

/* A raw POST to /v1/infer. *status gets the HTTP status; required (may be NULL) the
 * PAYMENT-REQUIRED header; code the error code of the body. */
static inline int tb_raw(tbuyer *b, long *status, char *code, size_t code_cap,
                         os_x402_requirement *required, const void *body, size_t len,
                         const char *payment, const char *cred, const char *content_type)
{
    os_http_header h[3];
    size_t nh = 0;
    os_http_client_res res;
    os_http_client_req req;
    os_err e;

    h[nh++] = (os_http_header){"Content-Type",
                               content_type != NULL ? content_type : OS_OHTTP_MEDIA_REQUEST};
    if (payment != NULL)
        h[nh++] = (os_http_header){OS_X402_HDR_SIGNATURE, payment};
    if (cred != NULL)
        h[nh++] = (os_http_header){OS_CRED_HEADER_NAME, cred};
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = b->infer_url;
    req.headers = h;
    req.n_headers = nh;
    req.body = body;
    req.body_len = len;
    os_http_client_res_init(&res);
    e = os_http_client_do(b->http, &res, NULL, &req);
    *status = res.status;
    if (code != NULL && code_cap > 0) {
        json_t *j = NULL;
        code[0] = '\0';
        if (res.body.len > 0 &&
            os_json_parse(&j, (const char *)res.body.data, res.body.len, 1 << 16, 8, NULL, 0) ==
                OS_OK) {
            const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
            snprintf(code, code_cap, "%s", c != NULL ? c : "");
        }
        json_decref(j);
    }
    if (required != NULL) {
        const char *v = os_http_client_res_header(&res, OS_X402_HDR_REQUIRED);
        memset(required, 0, sizeof(*required));
        if (v == NULL || os_x402_required_decode(required, NULL, 0, v, NULL, 0) != OS_OK)
            required->chain_id = 0;
    }
    os_http_client_res_free(&res);
    return e == OS_OK ? 0 : -1;
}

#endif
