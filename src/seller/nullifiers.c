/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's memory of credential nullifiers (PROTOCOL.md §6): a fixed-size set of the
 * SL_NULLIFIERS most recent ones, an insertion-ordered ring plus an open-addressing index (linear
 * probing, backward-shift deletion, so no tombstones), the oldest forgotten first. A replayed
 * nonce is refused by the voucher rules anyway; this set refuses a replayed credential before any
 * decryption.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static size_t nf_hash(const uint8_t nf[32])
{
    uint64_t h;
    memcpy(&h, nf, sizeof(h)); /* the nullifier is a hash output: its bytes are uniform */
    return (size_t)(h & (2 * SL_NULLIFIERS - 1));
}

/* The slot holding nf, or the empty slot where it would go. */
static size_t nf_find(const sl_nullifiers *n, const uint8_t nf[32], bool *found)
{
    size_t i = nf_hash(nf);
    for (;;) {
        uint32_t v = n->slots[i];
        if (v == 0) {
            *found = false;
            return i;
        }
        if (memcmp(n->ring[v - 1], nf, 32) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & (2 * SL_NULLIFIERS - 1);
    }
}

/* Removes the slot i of an open-addressing table (backward-shift deletion, no tombstones). */
static void nf_remove_slot(sl_nullifiers *n, size_t i)
{
    const size_t mask = 2 * SL_NULLIFIERS - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (n->slots[j] == 0)
            break;
        size_t home = nf_hash(n->ring[n->slots[j] - 1]);
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            n->slots[i] = n->slots[j];
            i = j;
        }
    }
    n->slots[i] = 0;
}

/* Remembers nf; false when it was already there (a replay). */
bool sl_nullifiers_insert(sl_nullifiers *n, const uint8_t nf[32])
{
    bool found;
    size_t i;

    pthread_mutex_lock(&n->mu);
    nf_find(n, nf, &found);
    if (found) {
        pthread_mutex_unlock(&n->mu);
        return false;
    }
    if (n->count == SL_NULLIFIERS) { /* forget the oldest */
        size_t old = nf_find(n, n->ring[n->next], &found);
        if (found)
            nf_remove_slot(n, old);
        n->count--;
    }
    memcpy(n->ring[n->next], nf, 32);
    i = nf_find(n, nf, &found);
    n->slots[i] = (uint32_t)n->next + 1;
    n->next = (n->next + 1) % SL_NULLIFIERS;
    n->count++;
    pthread_mutex_unlock(&n->mu);
    return true;
}

bool sl_nullifiers_seen(sl_nullifiers *n, const uint8_t nf[32])
{
    bool found;
    pthread_mutex_lock(&n->mu);
    nf_find(n, nf, &found);
    pthread_mutex_unlock(&n->mu);
    return found;
}


os_err sl_nullifiers_init(sl_nullifiers *n)
{
    memset(n, 0, sizeof(*n));
    n->ring = calloc(SL_NULLIFIERS, 32);
    n->slots = calloc(2 * SL_NULLIFIERS, sizeof(uint32_t));
    if (n->ring == NULL || n->slots == NULL) {
        sl_nullifiers_fini(n);
        return OS_ERR_NOMEM;
    }
    pthread_mutex_init(&n->mu, NULL);
    n->ready = true;
    return OS_OK;
}

void sl_nullifiers_fini(sl_nullifiers *n)
{
    if (n->ready)
        pthread_mutex_destroy(&n->mu);
    free(n->ring);
    free(n->slots);
    memset(n, 0, sizeof(*n));
}
