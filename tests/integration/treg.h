/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: an in-process registry core (rg_registry) on a free loopback port, its store in a
 * temporary directory, with rate limiting off and a short drain, for the tests that talk to a
 * registry over real HTTP without spawning the daemon (test_peers, test_network_api). Failures
 * are cmocka assertions. Header-only; include after cmocka.h and registry_client.h.
 */
#ifndef OPENSEED_TEST_TREG_H
#define OPENSEED_TEST_TREG_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "openseed/log.h"
#include "registry.h"

typedef struct treg {
    char dir[64];
    char db[128];
    char base[64]; /* "http://127.0.0.1:PORT" */
    rg_registry *rg;
    os_logger log;
} treg;

/* Starts a registry for chain_id that rescores every rescore_ms; tag names its directory. */
static inline void treg_start(treg *t, const char *tag, uint64_t chain_id, uint64_t rescore_ms)
{
    rg_options o;

    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/openseed-%.16s-XXXXXX", tag);
    assert_int_equal(rc_tmpdir(t->dir), 0);
    snprintf(t->db, sizeof(t->db), "%.63s/registry.db", t->dir);
    rg_options_default(&o);
    o.listen = "127.0.0.1:0";
    o.db_path = t->db;
    o.chain_id = chain_id;
    o.rescore_interval_ms = rescore_ms;
    o.rate_per_s = 0;
    o.drain_timeout_ms = 1000;
    os_logger_init(&t->log, "registry", OS_LOG_ERROR);
    assert_int_equal(rg_registry_new_opts(&t->rg, &o, &t->log), OS_OK);
    assert_int_equal(rg_registry_start(t->rg), OS_OK);
    snprintf(t->base, sizeof(t->base), "http://127.0.0.1:%u", (unsigned)rg_registry_port(t->rg));
}

/* Stops the registry (its port then refuses connections); the directory stays until close. */
static inline void treg_stop(treg *t)
{
    rg_registry_free(t->rg);
    t->rg = NULL;
}

/* Stops it and removes its directory. */
static inline void treg_close(treg *t)
{
    treg_stop(t);
    if (t->dir[0] != '\0')
        rc_rmtree(t->dir);
    t->dir[0] = '\0';
}

#endif
