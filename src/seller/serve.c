/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's public routes and its request pipeline (PROTOCOL.md §5-§7).
 *
 * POST /v1/infer, cheapest refusals first and nothing of the upstream touched until the voucher
 * is on disk:
 *   1. an upstream slot (503 when upstream_concurrency requests are in flight);
 *   2. shape: a non-empty message/ohttp-req body (the server caps it at max_request: 413);
 *   3. PAYMENT-SIGNATURE parsed; its channel made ready from the cache (or read once from the
 *      chain the first time); then the credential: commitment equal to the channel's, nullifier
 *      not seen before, proof valid for this channel and this body's metadataHash (401);
 *   4. decryption (400), the plaintext {api, service, body} (400), the offering (400), the
 *      estimate (400);
 *   5. the payment decision and the durable voucher write (sl_chans_pay: 401/402, and 503
 *      "storage_unavailable" when seller.db is locked or cannot be written: no voucher on disk,
 *      no work), or, with no usable voucher, a 402 whose PAYMENT-REQUIRED invoice carries the
 *      estimate;
 *   6. the answer: a 200 whose body is produced by a job on its own thread, calling the upstream
 *      and encrypting as it goes: one chunked-OHTTP chunk per upstream SSE event, or one whole
 *      OHTTP response; the final chunk (or the whole response) says what was charged.
 * Every answer after step 5 is a 200 with an encrypted body: upstream failures travel inside it,
 * so an observer learns nothing about the request from the status.
 *
 * The answer itself is produced by answer.c.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "openseed/credential.h"
#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/infer.h"
#include "openseed/json.h"
#include "openseed/keccak.h"
#include "openseed/money.h"
#include "openseed/ohttp.h"
#include "openseed/secp.h"
#include "openseed/x402.h"

/* ---- metrics ---- */

static const char *const outcomes[] = {"ok", "upstream_error", "broken", "cancelled", "failed",
                                       NULL};
static const char *const classes[] = {"input", "cached", "output", NULL};
static const char *const refusals[] = {"busy",     "bad_request", "credential", "payment",
                                       "envelope", "offering",    "chain",      "storage",
                                       "internal", NULL};
enum { R_BUSY, R_BAD, R_CRED, R_PAY, R_ENV, R_OFFER, R_CHAIN, R_STORAGE, R_INTERNAL };

os_err sl_serve_init(sl_seller *s)
{
    static const double lat[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300};
    os_err rc;

    if ((rc = sl_nullifiers_init(&s->nullifiers)) != OS_OK)
        return rc;
    if ((rc = os_metrics_new(&s->metrics)) != OS_OK)
        return rc;
    if ((rc = os_metrics_counter(s->metrics, &s->m_requests, "openseed_seller_requests_total",
                                 "paid requests answered, by outcome", "outcome", outcomes)) !=
            OS_OK ||
        (rc = os_metrics_counter(s->metrics, &s->m_refusals, "openseed_seller_refusals_total",
                                 "requests refused before any upstream work, by reason", "reason",
                                 refusals)) != OS_OK ||
        (rc = os_metrics_counter(s->metrics, &s->m_tokens, "openseed_seller_tokens_total",
                                 "tokens charged, by class", "class", classes)) != OS_OK ||
        (rc = os_metrics_counter(s->metrics, &s->m_revenue,
                                 "openseed_seller_revenue_micro_usdc_total",
                                 "micro-USDC charged for finished requests", NULL, NULL)) != OS_OK ||
        (rc = os_metrics_histogram(s->metrics, &s->m_upstream_s,
                                   "openseed_seller_upstream_seconds",
                                   "upstream call duration (paid requests)", NULL, NULL, lat,
                                   sizeof(lat) / sizeof(lat[0]))) != OS_OK ||
        (rc = os_metrics_histogram(s->metrics, &s->m_ttft_s, "openseed_seller_ttft_seconds",
                                   "time to the upstream's first event or answer", NULL, NULL, lat,
                                   sizeof(lat) / sizeof(lat[0]))) != OS_OK ||
        (rc = os_metrics_gauge(s->metrics, &s->m_streams, "openseed_seller_active_streams",
                               "answers being produced", NULL, NULL)) != OS_OK)
        return rc;
    return OS_OK;
}

void sl_serve_fini(sl_seller *s)
{
    sl_nullifiers_fini(&s->nullifiers);
    os_metrics_free(s->metrics);
    s->metrics = NULL;
}

/* ---- small routes ---- */

static void h_info(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    os_err rc = OS_ERR_NOTFOUND;
    (void)req;

    pthread_mutex_lock(&s->info_mu);
    if (s->info_body != NULL)
        rc = os_http_res_body(res, "application/json", s->info_body, strlen(s->info_body));
    pthread_mutex_unlock(&s->info_mu);
    if (rc == OS_OK)
        os_http_res_status(res, 200);
    else
        os_http_res_error(res, 503, "server_error", "not_ready", "the seller is starting");
}

static void h_healthz(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    sl_chans_stats cs = {0};
    sl_announcer_stats as = {0};
    sl_announcer *a;
    char addr[OS_ADDRESS_STR_LEN];
    (void)req;

    if (s->chans != NULL)
        sl_chans_get_stats(s->chans, &cs);
    pthread_mutex_lock(&s->info_mu); /* set at start-up while this listener may already run */
    a = s->announcer;
    pthread_mutex_unlock(&s->info_mu);
    if (a != NULL)
        sl_announcer_get_stats(a, &as);
    os_eip55_format(addr, s->node);
    json_t *v = json_pack("{s:s,s:s,s:{s:I,s:I},s:{s:I,s:I,s:I},s:{s:I,s:I}}", "status", "ok",
                          "node", addr, "registries", "configured", (json_int_t)s->n_registries,
                          "registered", (json_int_t)as.registered, "channels", "known",
                          (json_int_t)cs.channels, "unverified", (json_int_t)cs.unverified,
                          "in_flight", (json_int_t)cs.in_flight, "upstream", "busy",
                          (json_int_t)atomic_load(&s->busy), "capacity",
                          (json_int_t)s->opt.upstream_concurrency);
    if (v == NULL || os_http_res_json(res, 200, v) != OS_OK)
        os_http_res_error(res, 500, "server_error", NULL, "out of memory");
}

static void h_metrics(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    char *text = NULL;
    size_t len = 0;
    (void)req;

    if (os_metrics_render(s->metrics, &text, &len) != OS_OK ||
        os_http_res_body(res, OS_METRICS_CONTENT_TYPE, text, len) != OS_OK) {
        os_http_res_error(res, 500, "server_error", NULL, "cannot render metrics");
    } else {
        os_http_res_status(res, 200);
    }
    free(text);
}

/* ---- refusals ---- */

__attribute__((format(printf, 6, 7))) static void refuse(sl_seller *s, os_http_response *res,
                                                          int reason, unsigned status,
                                                          const char *code, const char *fmt, ...)
{
    const char *type = status == 401   ? "authentication_error"
                       : status == 402 ? "payment_required"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    char msg[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    os_metric_inc(s->m_refusals, (size_t)reason);
    os_http_res_error(res, status, type, code, "%s", msg);
}

static void retry_after(sl_seller *s, os_http_response *res)
{
    if (os_http_res_header(res, "Retry-After", "1") != OS_OK)
        os_log_debug(s->log, "cannot set Retry-After");
}

/* A 402 with its PAYMENT-REQUIRED invoice. */
static void refuse_402(sl_seller *s, os_http_response *res, const os_x402_requirement *req,
                       const char *code, const char *message)
{
    char *hdr = NULL;

    if (os_x402_required_encode(&hdr, code, OS_INFER_PATH, req) != OS_OK ||
        os_http_res_header(res, OS_X402_HDR_REQUIRED, hdr) != OS_OK) {
        free(hdr);
        refuse(s, res, R_INTERNAL, 500, "internal_error", "cannot write the invoice");
        return;
    }
    free(hdr);
    refuse(s, res, R_PAY, 402, code, "%s", message);
}

/* ---- POST /v1/infer ---- */

static const os_offering *find_offering(const sl_seller *s, const char *service, unsigned api,
                                        bool *service_known)
{
    /* A reload publishes a new block (sl_seller_reload): every block has room for the most
     * offerings a record holds, zeroed past its count, so a count and a pointer from two
     * different blocks still read only valid memory. */
    const os_offering *offs = __atomic_load_n(&s->offerings, __ATOMIC_ACQUIRE);
    size_t n = __atomic_load_n(&s->n_offerings, __ATOMIC_ACQUIRE);

    *service_known = false;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < offs[i].n_services; k++)
            if (strcmp(offs[i].services[k], service) == 0) {
                *service_known = true;
                if ((offs[i].apis & api) != 0)
                    return &offs[i];
            }
    return NULL;
}

/* Step 3: the credential for channel view v and this body. True when it holds. */
static bool check_credential(sl_seller *s, os_http_response *res, const char *cred,
                             const sl_chan_view *view, const uint8_t mh[32])
{
    uint8_t c[OS_CRED_COMMITMENT_LEN], nf[OS_CRED_NULLIFIER_LEN], proof[OS_CRED_PROOF_LEN];

    if (cred == NULL) {
        refuse(s, res, R_CRED, 401, "credential_required",
               "a paid request needs the OpenSeed-Credential header");
        return false;
    }
    if (os_cred_header_decode(c, nf, proof, cred, strlen(cred)) != OS_OK) {
        refuse(s, res, R_CRED, 401, "invalid_credential",
               "the OpenSeed-Credential header is malformed");
        return false;
    }
    if (!os_ct_eq(c, view->commitment, sizeof(c))) {
        refuse(s, res, R_CRED, 401, "credential_mismatch",
               "the credential's commitment is not the one registered with the channel");
        return false;
    }
    if (sl_nullifiers_seen(&s->nullifiers, nf)) {
        refuse(s, res, R_CRED, 401, "nullifier_reused", "this credential was already used");
        return false;
    }
    if (os_cred_verify(c, nf, proof, view->id, mh) != OS_OK) {
        refuse(s, res, R_CRED, 401, "invalid_credential",
               "the credential does not prove the channel's identity for this request");
        return false;
    }
    if (!sl_nullifiers_insert(&s->nullifiers, nf)) { /* a concurrent twin got there first */
        refuse(s, res, R_CRED, 401, "nullifier_reused", "this credential was already used");
        return false;
    }
    return true;
}

static void estimate_refusal(sl_seller *s, os_http_response *res, os_err rc,
                             const os_offering *o)
{
    char msg[160];

    if (rc == OS_ERR_RANGE)
        snprintf(msg, sizeof(msg),
                 "max_tokens is above this offering's limit of %" PRIu64 " (or the request is "
                 "too large to price)",
                 o->max_output_tokens);
    else if (rc == OS_ERR_UNSUPPORTED)
        snprintf(msg, sizeof(msg),
                 "only text is sold: images, audio, files, documents and server tools are "
                 "refused");
    else
        snprintf(msg, sizeof(msg),
                 "the request body is not a valid request for this API (messages, max_tokens, "
                 "n, input)");
    refuse(s, res, R_OFFER, 400, "invalid_request", "%s", msg);
}

/* Everything a request carries through the handler. */
typedef struct infer_req {
    uint8_t mh[32];
    bool has_payment, channel_ok;
    os_voucher v;
    sl_chan_view view;
    char pay_code[OS_X402_ERROR_MAX];
    char pay_why[192];
    uint8_t *pt;
    os_ohttp_ctx octx;
    json_t *root;
    os_infer_inner inner;
    const os_offering *offering;
    os_estimate est;
} infer_req;

/* Steps 3-4. False when res holds the refusal. */
static bool admit(sl_seller *s, const os_http_request *req, os_http_response *res, infer_req *q,
                  const char *body, size_t len)
{
    const char *pay = os_http_req_header(req, OS_X402_HDR_SIGNATURE);
    char err[OS_X402_ERR_LEN];
    uint8_t key_id = 0;
    size_t pt_len = 0;
    bool known;
    os_err rc;

    os_keccak256(q->mh, body, len);
    if (pay != NULL) {
        if (os_x402_payment_decode(&q->v, NULL, pay, err, sizeof(err)) != OS_OK) {
            refuse(s, res, R_BAD, 400, "invalid_payment", "PAYMENT-SIGNATURE: %s", err);
            return false;
        }
        q->has_payment = true;
        rc = sl_chans_lookup(s->chans, &q->view, q->v.channel_id, q->pay_why,
                             sizeof(q->pay_why));
        if (rc == OS_ERR_TOOBIG || rc == OS_ERR_NETWORK || rc == OS_ERR_NOMEM) {
            retry_after(s, res);
            refuse(s, res, R_CHAIN, 503, "chain_unavailable",
                   "the channel cannot be checked on chain right now; retry");
            return false;
        }
        if (rc == OS_ERR_IO) { /* a new channel's row could not be stored (disk full, locked) */
            retry_after(s, res);
            refuse(s, res, R_STORAGE, 503, "storage_unavailable",
                   "the seller cannot write its books right now; nothing was charged; retry");
            return false;
        }
        if (rc == OS_OK) {
            q->channel_ok = true;
            if (!check_credential(s, res, os_http_req_header(req, OS_CRED_HEADER_NAME), &q->view,
                                  q->mh))
                return false;
        } else {
            snprintf(q->pay_code, sizeof(q->pay_code), "%s",
                     rc == OS_ERR_NOTFOUND ? "unknown_channel" : "channel_unusable");
        }
    }

    if (os_ohttp_request_key_id(&key_id, (const uint8_t *)body, len) != OS_OK) {
        refuse(s, res, R_ENV, 400, "invalid_envelope",
               "the body is not an OHTTP request (message/ohttp-req)");
        return false;
    }
    if (key_id != s->key_id) {
        refuse(s, res, R_ENV, 400, "unknown_key",
               "the request is sealed to a key this seller does not hold; fetch /v1/info");
        return false;
    }
    if ((q->pt = malloc(len)) == NULL) {
        refuse(s, res, R_INTERNAL, 500, "internal_error", "out of memory");
        return false;
    }
    if (os_ohttp_request_decap(&q->octx, q->pt, len, &pt_len, s->key_id, s->sec->gateway_sk,
                               s->gateway_pk, (const uint8_t *)body, len) != OS_OK) {
        refuse(s, res, R_ENV, 400, "invalid_envelope",
               "the request does not decrypt (wrong key, or altered in transit)");
        return false;
    }
    if (pt_len > OS_INFER_MAX_REQUEST) {
        refuse(s, res, R_BAD, 413, "request_too_large",
               "the decrypted request is over %u bytes", (unsigned)OS_INFER_MAX_REQUEST);
        return false;
    }
    if (os_json_parse(&q->root, (const char *)q->pt, pt_len, OS_INFER_MAX_REQUEST,
                      OS_INFER_JSON_DEPTH, err, sizeof(err)) != OS_OK) {
        refuse(s, res, R_BAD, 400, "invalid_json", "the decrypted request is not valid JSON: %s",
               err);
        return false;
    }
    if (os_infer_inner_parse(&q->inner, q->root, err, sizeof(err)) != OS_OK) {
        refuse(s, res, R_BAD, 400, "invalid_request", "%s", err);
        return false;
    }
    q->offering = find_offering(s, q->inner.service, os_api_from_name(q->inner.api), &known);
    if (q->offering == NULL) {
        if (known)
            refuse(s, res, R_OFFER, 400, "unsupported_api",
                   "this seller does not offer %s for service %s", q->inner.api,
                   q->inner.service);
        else
            refuse(s, res, R_OFFER, 400, "unknown_service",
                   "this seller does not offer service %s", q->inner.service);
        return false;
    }
    if ((rc = os_estimate_request(&q->est, q->inner.api, q->inner.body, &q->offering->pricing,
                                  q->offering->max_output_tokens)) != OS_OK) {
        estimate_refusal(s, res, rc, q->offering);
        return false;
    }
    return true;
}

static void h_infer(void *ctx, const os_http_request *req, os_http_response *res)
{
    sl_seller *s = ctx;
    size_t len = 0;
    const char *body = os_http_req_body(req, &len);
    const char *ct = os_http_req_header(req, "Content-Type");
    infer_req q;
    sl_ticket t;
    sl_refusal ref;
    os_err rc;

    memset(&q, 0, sizeof(q));
    if (atomic_fetch_add(&s->busy, 1) >= s->opt.upstream_concurrency) {
        atomic_fetch_sub(&s->busy, 1);
        retry_after(s, res);
        refuse(s, res, R_BUSY, 503, "seller_busy",
               "the seller is serving as many requests as it can; retry shortly");
        return;
    }
    if (len == 0 || ct == NULL || strncasecmp(ct, OS_OHTTP_MEDIA_REQUEST,
                                              strlen(OS_OHTTP_MEDIA_REQUEST)) != 0) {
        refuse(s, res, R_BAD, 400, "invalid_envelope",
               "POST an OHTTP request with Content-Type message/ohttp-req");
        goto out;
    }
    if (!admit(s, req, res, &q, body, len))
        goto out;

    if (!q.channel_ok) { /* step 5 without a usable voucher: the invoice */
        os_x402_requirement inv;
        sl_chans_invoice(s->chans, &inv, q.has_payment ? q.v.channel_id : NULL, q.est.total,
                         q.mh);
        refuse_402(s, res, &inv, q.pay_code[0] != '\0' ? q.pay_code : "payment_required",
                   q.pay_code[0] != '\0' ? q.pay_why
                                         : "this request needs a PAYMENT-SIGNATURE voucher");
        goto out;
    }
    rc = sl_chans_pay(s->chans, &t, &ref, &q.v, q.mh, q.est.total, q.inner.api,
                      q.inner.service);
    if (rc != OS_OK) {
        if (ref.status == 402) {
            refuse_402(s, res, &ref.req, ref.code, ref.message);
        } else if (ref.status == 401 || ref.status == 400) {
            refuse(s, res, R_PAY, ref.status, ref.code, "%s", ref.message);
        } else if (ref.status == 503) { /* locked or full: no durable voucher, so no work */
            retry_after(s, res);
            refuse(s, res, R_STORAGE, 503, ref.code, "%s", ref.message);
        } else {
            refuse(s, res, R_INTERNAL, 500, "internal_error",
                   "the payment could not be recorded; nothing was charged");
        }
        goto out;
    }

    /* Step 6: paid and on disk. From here the request is booked whatever happens. */
    {
        sl_answer_args a = {.ticket = &t,
                            .octx = &q.octx,
                            .root = q.root,
                            .inner = &q.inner,
                            .offering = q.offering,
                            .est = &q.est};
        q.root = NULL;
        if (sl_answer_start(s, res, &a) != OS_OK) {
            refuse(s, res, R_INTERNAL, 503, "internal_error",
                   "the seller cannot answer right now; nothing was charged");
            goto out;
        }
    }
    os_wipe(q.pt, len);
    free(q.pt);
    return; /* the slot is the job's now */

out:
    if (q.pt != NULL) {
        os_wipe(q.pt, len);
        free(q.pt);
    }
    os_ohttp_ctx_clear(&q.octx);
    json_decref(q.root);
    atomic_fetch_sub(&s->busy, 1);
}

const os_http_route sl_public_routes[] = {
    {"POST", OS_INFER_PATH, h_infer, 0},
    {"GET", "/v1/info", h_info, 0},
    {"GET", "/healthz", h_healthz, 1},
    {"GET", "/metrics", h_metrics, 1},
};
const size_t sl_n_public_routes = sizeof(sl_public_routes) / sizeof(sl_public_routes[0]);
