/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the buyer core's files share: the buyer object, and the entry points of gateway.c (routes,
 * client checks, management) and relay.c (one client request carried to a seller and back).
 */
#ifndef OPENSEED_BUYER_INTERNAL_H
#define OPENSEED_BUYER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "openseed/chain.h"
#include "openseed/http.h"
#include "openseed/http_client.h"
#include "openseed/metrics.h"
#include "openseed/rng.h"
#include "openseed/web.h"

#include "buyer.h"
#include "peers.h"
#include "wallet.h"

struct by_buyer {
    const os_logger *log;
    by_options opt; /* strings point into the owned copies below; wallet_priv is NULL */
    char *listen, *data_dir, *rpc, *api_key;
    char **registries;
    size_t n_registries;
    uint8_t *wallet_priv; /* sodium_malloc'd */
    bool loopback;        /* listening on loopback: the Host guard applies */

    os_chain *chain;
    os_chain_signer *payer;
    by_peers *peers;
    by_wallet *wallet;
    os_http_client *http;       /* to sellers, streams: a seller silent too long is dropped */
    os_http_client *http_whole; /* to sellers, whole answers: they arrive only when done */
    os_http_server *server;
    bool started;

    /* BY_ROUTE_WEIGHTED's draws: one generator per buyer, shared by the relay threads */
    pthread_mutex_t rng_mu;
    bool rng_mu_ok; /* rng_mu initialised */
    os_rng rng;

    os_metrics *metrics;
    os_metric *m_requests; /* by outcome */
    os_metric *m_spent;    /* micro-USDC */
    os_metric *m_tokens;   /* by class */
    os_metric *m_failovers;
    os_metric *m_ttft_s;
};

/* One client request, as relay.c needs it. */
typedef enum by_client_api {
    BY_CLIENT_OPENAI_CHAT = 0,
    BY_CLIENT_OPENAI_EMBEDDINGS,
    BY_CLIENT_ANTHROPIC_MESSAGES,
} by_client_api;

static inline int64_t by_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* gateway.c */
OS_WUR os_err by_gateway_init(by_buyer *b); /* metrics */
void by_gateway_fini(by_buyer *b);
extern const os_http_route by_routes[];
extern const size_t by_n_routes;

/* web/buyer, compiled in by cmake/embed.cmake (include/openseed/web.h). */
extern const os_web_asset by_web_assets[];
extern const size_t by_web_assets_n;
/* An error in the client API's own shape. */
void by_client_error(os_http_response *res, by_client_api api, unsigned status, const char *type,
                     const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The next uniform draw in [0, 1) of the buyer's routing generator (thread-safe). */
double by_route_draw(by_buyer *b);

/* relay.c: answers one parsed client request (body owned by the caller). */
void by_relay(by_buyer *b, const os_http_request *req, os_http_response *res, by_client_api api,
              json_t *body);

#endif
