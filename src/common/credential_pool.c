/* SPDX-License-Identifier: Apache-2.0 */
/*
 * os_cred_pool (credential.h): credential proof nonces made ahead of time on a background thread,
 * so the buyer's per-request proof is a hash and scalar arithmetic. The slots are one
 * sodium_malloc'd array (guarded, never swapped out in the usual configuration); a nonce is copied
 * out and its slot wiped under the lock, so no nonce is ever handed out twice.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/credential.h"

#define POOL_CAP_MAX 4096

struct os_cred_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the filler waits here for room or for stop */
    os_cred_nonce *slots;
    size_t n, cap;
    bool stop;
    pthread_t thread;
};

static void *fill(void *arg)
{
    os_cred_pool *p = arg;
    os_cred_nonce fresh;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* refill from half: the thread wakes once per cap/2 nonces, not once per nonce */
        while (!p->stop && p->n > p->cap / 2)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        while (!p->stop && p->n < p->cap) {
            pthread_mutex_unlock(&p->mu);
            os_err e = os_cred_precompute(&fresh);
            pthread_mutex_lock(&p->mu);
            if (e != OS_OK)
                break; /* cannot happen with libsodium's RNG; takers make their own */
            if (p->n < p->cap)
                p->slots[p->n++] = fresh;
            os_cred_nonce_wipe(&fresh);
        }
        if (!p->stop && p->n < p->cap) /* precompute failed: do not spin */
            pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

os_err os_cred_pool_new(os_cred_pool **out, size_t cap)
{
    os_cred_pool *p;

    if (out == NULL || cap == 0 || cap > POOL_CAP_MAX)
        return OS_ERR_INVALID;
    *out = NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return OS_ERR_NOMEM;
    if ((p->slots = sodium_malloc(cap * sizeof(*p->slots))) == NULL) {
        free(p);
        return OS_ERR_NOMEM;
    }
    sodium_memzero(p->slots, cap * sizeof(*p->slots));
    p->cap = cap;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        sodium_free(p->slots);
        free(p);
        return OS_ERR_INTERNAL;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        sodium_free(p->slots);
        free(p);
        return OS_ERR_INTERNAL;
    }
    if (pthread_create(&p->thread, NULL, fill, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        sodium_free(p->slots);
        free(p);
        return OS_ERR_INTERNAL;
    }
    *out = p;
    return OS_OK;
}

bool os_cred_pool_take(os_cred_pool *p, os_cred_nonce *n)
{
    bool got = false;

    if (p == NULL || n == NULL)
        return false;
    pthread_mutex_lock(&p->mu);
    if (p->n > 0) {
        p->n--;
        *n = p->slots[p->n];
        os_cred_nonce_wipe(&p->slots[p->n]);
        got = n->ready != 0;
        if (p->n <= p->cap / 2)
            pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return got;
}

size_t os_cred_pool_ready(os_cred_pool *p)
{
    size_t n;

    if (p == NULL)
        return 0;
    pthread_mutex_lock(&p->mu);
    n = p->n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void os_cred_pool_free(os_cred_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    sodium_memzero(p->slots, p->cap * sizeof(*p->slots));
    sodium_free(p->slots);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
