/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the seller core's files share: the seller object, and the entry points of serve.c (the
 * public routes and the admission of a request), answer.c (producing a paid answer),
 * nullifiers.c (the credential replay set) and admin.c (the admin routes).
 */
#ifndef OPENSEED_SELLER_INTERNAL_H
#define OPENSEED_SELLER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "openseed/chain.h"
#include "openseed/hpke.h"
#include "openseed/http.h"
#include "openseed/infer.h"
#include "openseed/metrics.h"
#include "openseed/money.h"
#include "openseed/ohttp.h"
#include "openseed/record.h"
#include "openseed/web.h"

#include "announce.h"
#include "chans.h"
#include "echo.h"
#include "ledger.h"
#include "seller.h"
#include "upstream.h"

#define SL_TOKEN_LEN 64  /* a generated admin token: 32 random bytes as hex */
#define SL_TOKEN_MAX 256 /* longest admin token read from a file */
#define SL_NULLIFIERS 65536 /* nullifiers remembered (a power of two) */

/* A fixed-size set of recently seen credential nullifiers; the oldest is forgotten first. */
typedef struct sl_nullifiers {
    pthread_mutex_t mu;
    uint8_t (*ring)[32]; /* SL_NULLIFIERS entries, insertion order */
    uint32_t *slots;     /* open-addressing table of ring index + 1 (0 = empty), 2x entries */
    size_t next, count;
    bool ready;
} sl_nullifiers;

/* One paid request whose answer is being produced on its own thread (serve.c). */
typedef struct sl_job sl_job;

/* The secrets, in one sodium_malloc'd, mlock'ed block. */
typedef struct sl_secrets {
    uint8_t node_priv[32];
    uint8_t gateway_sk[OS_HPKE_NSK];
    char admin_token[SL_TOKEN_MAX + 2]; /* room for the newline while reading */
    char upstream_key[1024]; /* "" when none */
} sl_secrets;

struct sl_seller {
    const os_logger *log;
    sl_options opt;   /* strings below point into owned copies */
    char *listen, *admin_listen, *data_dir, *endpoint, *rpc, *upstream_url;
    char *tls_cert, *tls_key, *ca_file; /* copies of the options' paths, or NULL */
    char **registries;
    size_t n_registries;
    os_offering *offerings;
    size_t n_offerings;

    int lock_fd; /* <data_dir>/seller.lock, flock'ed: one seller per data directory */
    sl_secrets *sec;
    uint8_t node[20];
    uint8_t gateway_pk[OS_HPKE_NPK];
    uint8_t key_id;
    uint8_t ohttp_keys[64];
    size_t ohttp_keys_len;

    os_record record;        /* as announced (endpoint filled at start when not configured) */
    pthread_mutex_t info_mu; /* also publishes endpoint and announcer, set while admin runs */
    char *info_body;         /* /v1/info's JSON {record, signature}, signed at start */
    int64_t started_at_s;    /* Unix seconds, and the monotonic clock, of sl_seller_start */
    int64_t started_mono_ms;

    sl_ledger *ledger;
    os_chain *chain;
    os_chain_signer *signer;
    sl_chans *chans;
    sl_echo *echo;
    sl_upstream *up_openai;    /* openai.chat, openai.embeddings */
    sl_upstream *up_anthropic; /* anthropic.messages */
    sl_announcer *announcer;
    os_http_server *http, *admin;
    sl_nullifiers nullifiers;

    /* jobs: producers of answers, each on its own detached thread */
    pthread_mutex_t jobs_mu;
    pthread_cond_t jobs_cv;
    sl_job *jobs; /* a list, for the watchdog */
    unsigned n_jobs;
    pthread_t watchdog;
    bool watchdog_running;
    bool stopping; /* under jobs_mu */
    atomic_uint busy; /* upstream slots in use */

    bool started;

    /* metrics */
    os_metrics *metrics;
    os_metric *m_requests;   /* by outcome */
    os_metric *m_tokens;     /* by class */
    os_metric *m_revenue;    /* micro-USDC charged */
    os_metric *m_upstream_s; /* upstream latency histogram */
    os_metric *m_ttft_s;
    os_metric *m_streams;    /* gauge: active answers */
    os_metric *m_refusals;   /* by reason */
};

static inline int64_t sl_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* nullifiers.c */
OS_WUR os_err sl_nullifiers_init(sl_nullifiers *n);
void sl_nullifiers_fini(sl_nullifiers *n); /* safe on a failed or zeroed set */
bool sl_nullifiers_seen(sl_nullifiers *n, const uint8_t nf[32]);
/* Remembers nf; false when it was already there (a replay). */
bool sl_nullifiers_insert(sl_nullifiers *n, const uint8_t nf[32]);

/* answer.c: what a paid request hands to its job. octx and root are taken in every case (octx
 * is left cleared, root NULL). */
typedef struct sl_answer_args {
    const sl_ticket *ticket;
    os_ohttp_ctx *octx;
    json_t *root; /* the parsed plaintext; inner->body points into it */
    const os_infer_inner *inner;
    const os_offering *offering;
    const os_estimate *est;
} sl_answer_args;

/*
 * Makes res a 200 (with PAYMENT-RESPONSE) whose body a job produces on its own thread. On failure
 * the request is booked as "failed" at no cost and res is left for the caller's refusal.
 */
OS_WUR os_err sl_answer_start(sl_seller *s, os_http_response *res, sl_answer_args *a);

/* serve.c */
OS_WUR os_err sl_serve_init(sl_seller *s);    /* metrics, nullifier set */
void sl_serve_fini(sl_seller *s);
extern const os_http_route sl_public_routes[];
extern const size_t sl_n_public_routes;
/* answer.c */
OS_WUR os_err sl_jobs_start(sl_seller *s); /* the watchdog */
void sl_jobs_stop(sl_seller *s);           /* waits for every job, then stops the watchdog */

/* admin.c */
extern const os_http_route sl_admin_routes[];
extern const size_t sl_n_admin_routes;

/* web/seller, compiled in by cmake/embed.cmake (include/openseed/web.h). */
extern const os_web_asset sl_web_assets[];
extern const size_t sl_web_assets_n;

#endif
