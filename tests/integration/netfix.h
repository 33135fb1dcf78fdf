/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test fixture: the OpenSeed network as real processes on loopback, for the integration tests
 * that kill, restart and starve daemons. anvil with the committed contracts (devchain.h), one
 * openseed-registry, up to NF_MAX_SELLERS openseed-seller and one openseed-buyer, each started
 * from its binary with flags only, each on a port chosen once so that a restart comes back at the
 * same address with the same data directory, and each logging to <dir>/<name>.log. Helpers post
 * to the buyer as an OpenAI client would, read the buyer's management API and the sellers' admin
 * API, and check that the buyer's and every seller's books agree (nf_reconcile).
 *
 * Usage: nf_setup → nf_registry → nf_seller (each) → nf_wait_listed → nf_buyer; nf_kill /
 * nf_restart in the test; nf_teardown. Header-only: each integration test is a single .c file;
 * define _GNU_SOURCE before the first #include (registry_client.h needs nftw).
 */
#ifndef OPENSEED_TEST_NETFIX_H
#define OPENSEED_TEST_NETFIX_H

#include "devchain.h"
#include "registry_client.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <strings.h>

#include "openseed/http_client.h"
#include "openseed/init.h"
#include "openseed/keyfile.h"
#include "openseed/money.h"

#define NF_MAX_SELLERS 4
#define NF_MAX_ARGS 60
#define NF_WHY 512

/* One daemon: its process, its arguments (kept for nf_restart) and its addresses. */
typedef struct nf_node {
    rc_proc p;
    char name[16];   /* "registry", "seller0", "buyer": also the log's name */
    char daemon[16]; /* "registry", "seller", "buyer" */
    char argbuf[8192];
    const char *argv[NF_MAX_ARGS + 1];
    uint16_t port, admin_port;
    char url[64], admin_url[64];
    char data_dir[192];
} nf_node;

typedef struct netfix {
    devchain d;
    uint64_t chain_id;
    char dir[128], bin_dir[1024];
    char escrow_hex[OS_ADDRESS_STR_LEN], usdc_hex[OS_ADDRESS_STR_LEN], chain[24];
    nf_node reg, sel[NF_MAX_SELLERS], buyer;
    int n_sellers;
    char sel_hex[NF_MAX_SELLERS][OS_ADDRESS_STR_LEN];
    uint8_t sel_addr[NF_MAX_SELLERS][20];
    os_http_client *http;
    /* Set before nf_registry / nf_seller when their extra flags make them serve HTTPS: their
     * URLs (and so the seller's endpoint and the registry others are given) say https. */
    bool reg_tls, sel_tls;
} netfix;

/* A free loopback TCP port (bound and released: the caller binds it soon after). 0 on failure. */
static inline uint16_t nf_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint16_t port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Copies a NULL-terminated argument list (base, then extra) into node so nf_restart can reuse
 * it. -1 when it does not fit. */
static inline int nf_set_args(nf_node *node, const char *const *base, const char *const *extra)
{
    size_t used = 0;
    int argc = 0;
    const char *const *lists[2] = {base, extra};
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; lists[l] != NULL && lists[l][i] != NULL; i++) {
            size_t len = strlen(lists[l][i]) + 1;
            if (argc >= NF_MAX_ARGS || used + len > sizeof(node->argbuf))
                return -1;
            memcpy(node->argbuf + used, lists[l][i], len);
            node->argv[argc++] = node->argbuf + used;
            used += len;
        }
    }
    node->argv[argc] = NULL;
    return 0;
}

/* Whether daemons run under valgrind: OPENSEED_NETFIX_VALGRIND=1 (scripts/valgrind.sh), with
 * valgrind's reports in OPENSEED_NETFIX_VALGRIND_LOGS (a folder) when that is set. */
static inline bool nf_valgrind(void)
{
    const char *v = getenv("OPENSEED_NETFIX_VALGRIND");
    return v != NULL && strcmp(v, "1") == 0;
}

/* (Re)starts node from its saved arguments and waits until it listens. Under valgrind the
 * daemon's leaks and memory errors make it exit 99 (seen by nf_kill with SIGTERM), valgrind's
 * report goes to <name>.valgrind.<pid>, and start-up may take a minute. */
static inline int nf_restart(netfix *f, nf_node *node, char *why, size_t n)
{
    char bin[1200], log[256], vlog[300];
    const char *argv[NF_MAX_ARGS + 16];
    int argc = 0;
    if (node->p.pid > 0) {
        snprintf(why, n, "%s is still running", node->name);
        return -1;
    }
    snprintf(bin, sizeof(bin), "%s/openseed-%s", f->bin_dir, node->daemon);
    snprintf(log, sizeof(log), "%s/%s.log", f->dir, node->name);
    if (!nf_valgrind())
        return rc_proc_start(&node->p, bin, node->argv, log, why, n);
    const char *vdir = getenv("OPENSEED_NETFIX_VALGRIND_LOGS"); /* kept after the run */
    snprintf(vlog, sizeof(vlog), "--log-file=%s/%s.valgrind.%%p",
             vdir != NULL && vdir[0] != '\0' ? vdir : f->dir, node->name);
    argv[argc++] = "--leak-check=full";
    argv[argc++] = "--show-leak-kinds=definite,indirect";
    argv[argc++] = "--errors-for-leak-kinds=definite,indirect";
    argv[argc++] = "--error-exitcode=99";
    argv[argc++] = vlog;
    argv[argc++] = bin;
    for (size_t i = 0; node->argv[i] != NULL; i++)
        argv[argc++] = node->argv[i];
    argv[argc] = NULL;
    return rc_proc_start_wait(&node->p, "/usr/bin/valgrind", argv, log, 120000, why, n);
}

/* Stops node with sig (SIGKILL: at once; SIGTERM: waits up to 15 s). Its exit status, or -1 if
 * it died of a signal or was not running. */
static inline int nf_kill(nf_node *node, int sig)
{
    if (node->p.pid <= 0)
        return -1;
    return rc_proc_stop(&node->p, sig, sig == SIGKILL ? 5000 : 15000);
}

static inline int nf_key_file(netfix *f, char *path, size_t cap, const char *name, int idx,
                              char *why, size_t n)
{
    uint8_t key[32];
    os_err rc;
    snprintf(path, cap, "%s/%s", f->dir, name);
    devchain_key(key, idx);
    rc = os_keyfile_write_secp(path, key, why, n);
    os_wipe(key, sizeof(key));
    return rc == OS_OK ? 0 : -1;
}

/* anvil with the contracts, a temporary folder, an HTTP client. tag names the folder. */
static inline int nf_setup(netfix *f, const char *tag, uint64_t chain_id, char *why, size_t n)
{
    const char *bd = getenv("OPENSEED_BUILD_DIR");
    memset(f, 0, sizeof(*f));
    f->chain_id = chain_id;
    if (os_init() != OS_OK || bd == NULL) {
        snprintf(why, n, "os_init failed or OPENSEED_BUILD_DIR is not set");
        return -1;
    }
    snprintf(f->bin_dir, sizeof(f->bin_dir), "%s", bd);
    if (os_http_client_new(&f->http, &(os_http_client_config){.timeout_ms = 60000}) != OS_OK) {
        snprintf(why, n, "no HTTP client");
        return -1;
    }
    if (devchain_start(&f->d, chain_id, 900, why, n) != 0)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/openseed-%s-XXXXXX", tag);
    if (rc_tmpdir(f->dir) != 0) {
        snprintf(why, n, "cannot create %s", f->dir);
        return -1;
    }
    os_eip55_format(f->escrow_hex, f->d.escrow);
    os_eip55_format(f->usdc_hex, f->d.usdc);
    snprintf(f->chain, sizeof(f->chain), "%" PRIu64, chain_id);
    return 0;
}

/* The registry on a fixed port, 1 s heartbeats and rescoring, no rate limit; extra flags after. */
static inline int nf_registry(netfix *f, const char *const *extra, char *why, size_t n)
{
    nf_node *r = &f->reg;
    char listen[32];
    snprintf(r->name, sizeof(r->name), "registry");
    snprintf(r->daemon, sizeof(r->daemon), "registry");
    snprintf(r->data_dir, sizeof(r->data_dir), "%s/reg", f->dir);
    if ((r->port = nf_free_port()) == 0) {
        snprintf(why, n, "no free port");
        return -1;
    }
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)r->port);
    snprintf(r->url, sizeof(r->url), "%s://127.0.0.1:%u", f->reg_tls ? "https" : "http",
             (unsigned)r->port);
    const char *args[] = {"--listen",           listen,         "--data-dir", r->data_dir,
                          "--chain-id",         f->chain,       "--heartbeat-interval", "1s",
                          "--rescore-interval", "1s",           "--rate-limit", "0",
                          NULL};
    if (nf_set_args(r, args, extra) != 0) {
        snprintf(why, n, "too many registry arguments");
        return -1;
    }
    return nf_restart(f, r, why, n);
}

/* Seller i (anvil account 2 + i) on fixed public and admin ports, with offering (the --offering
 * text) and upstream (NULL = builtin:echo); extra flags after. The registry must be up. */
static inline int nf_seller(netfix *f, int i, const char *offering, const char *upstream,
                            const char *const *extra, char *why, size_t n)
{
    nf_node *s = &f->sel[i];
    char key[256], keyname[16], listen[32], admin[32];
    if (i < 0 || i >= NF_MAX_SELLERS) {
        snprintf(why, n, "seller index out of range");
        return -1;
    }
    snprintf(s->name, sizeof(s->name), "seller%d", i);
    snprintf(s->daemon, sizeof(s->daemon), "seller");
    snprintf(s->data_dir, sizeof(s->data_dir), "%s/seller%d", f->dir, i);
    snprintf(keyname, sizeof(keyname), "s%d.key", i);
    if (nf_key_file(f, key, sizeof(key), keyname, 2 + i, why, n) != 0)
        return -1;
    devchain_address(f->sel_addr[i], 2 + i);
    os_eip55_format(f->sel_hex[i], f->sel_addr[i]);
    if ((s->port = nf_free_port()) == 0 || (s->admin_port = nf_free_port()) == 0 ||
        s->admin_port == s->port) {
        snprintf(why, n, "no free port");
        return -1;
    }
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)s->port);
    snprintf(admin, sizeof(admin), "127.0.0.1:%u", (unsigned)s->admin_port);
    snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%u", f->sel_tls ? "https" : "http",
             (unsigned)s->port);
    snprintf(s->admin_url, sizeof(s->admin_url), "http://127.0.0.1:%u", (unsigned)s->admin_port);
    const char *args[] = {"--listen",   listen,       "--admin-listen", admin,
                          "--data-dir", s->data_dir,  "--node-key",     key,
                          "--rpc",      f->d.anvil.url, "--chain-id",   f->chain,
                          "--escrow",   f->escrow_hex, "--usdc",        f->usdc_hex,
                          "--upstream", upstream != NULL ? upstream : "builtin:echo",
                          "--endpoint", s->url,       "--registry",     f->reg.url,
                          "--offering", offering,     "--channel-refresh", "1s",
                          NULL};
    if (nf_set_args(s, args, extra) != 0) {
        snprintf(why, n, "too many seller arguments");
        return -1;
    }
    if (i >= f->n_sellers)
        f->n_sellers = i + 1;
    return nf_restart(f, s, why, n);
}

/* How many sellers the registry lists for service; -1 when it cannot be asked. */
static inline int nf_listed(netfix *f, const char *service)
{
    char url[192];
    json_t *j = NULL;
    long st = 0;
    int n = -1;
    snprintf(url, sizeof(url), "%s/v1/peers?service=%s", f->reg.url, service);
    if (os_http_client_json(f->http, &st, &j, NULL, "GET", url, NULL, NULL, 0) == OS_OK &&
        st == 200)
        n = (int)json_array_size(json_object_get(j, "peers"));
    json_decref(j);
    return n;
}

/* Waits up to ms for the registry to list `want` sellers of service. 0 when it does. */
static inline int nf_wait_listed(netfix *f, const char *service, int want, long ms)
{
    for (long t = 0; t < ms; t += 100) {
        if (nf_listed(f, service) == want)
            return 0;
        rc_sleep_ms(100);
    }
    return nf_listed(f, service) == want ? 0 : -1;
}

/* A chain, a registry and n echo sellers (offers[i], with seller_flags: may be NULL), once the
 * registry lists all n for service and has ranked them (one full rescore). 0 on success; -1 with
 * the reason in why. */
static inline int nf_market(netfix *f, const char *tag, uint64_t chain_id,
                            const char *const *offers, int n, const char *service,
                            const char *const *seller_flags, char *why, size_t wn)
{
    if (nf_setup(f, tag, chain_id, why, wn) != 0 || nf_registry(f, NULL, why, wn) != 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (nf_seller(f, i, offers[i], NULL, seller_flags, why, wn) != 0)
            return -1;
    if (nf_wait_listed(f, service, n, 30000) != 0) {
        snprintf(why, wn, "the registry does not list the %d sellers of %s", n, service);
        return -1;
    }
    rc_sleep_ms(1200); /* a full rescore ranks them (the fixture's rescore interval is 1 s) */
    return 0;
}

/* The buyer (wallet: anvil account 1, minted 50 USDC on first call) on a fixed port with a 2 USDC
 * deposit and a 1 s peer-list TTL; extra flags after. */
static inline int nf_buyer(netfix *f, const char *const *extra, char *why, size_t n)
{
    nf_node *b = &f->buyer;
    char wallet[256], listen[32];
    uint8_t waddr[20];
    snprintf(b->name, sizeof(b->name), "buyer");
    snprintf(b->daemon, sizeof(b->daemon), "buyer");
    snprintf(b->data_dir, sizeof(b->data_dir), "%s/buyer", f->dir);
    devchain_address(waddr, 1);
    if (devchain_mint(&f->d, waddr, 50 * 1000000ull, why, n) != 0 ||
        nf_key_file(f, wallet, sizeof(wallet), "wallet.key", 1, why, n) != 0)
        return -1;
    if ((b->port = nf_free_port()) == 0) {
        snprintf(why, n, "no free port");
        return -1;
    }
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)b->port);
    snprintf(b->url, sizeof(b->url), "http://127.0.0.1:%u", (unsigned)b->port);
    const char *args[] = {"--listen",     listen,        "--data-dir",  b->data_dir,
                          "--registry",   f->reg.url,    "--rpc",       f->d.anvil.url,
                          "--chain-id",   f->chain,      "--escrow",    f->escrow_hex,
                          "--usdc",       f->usdc_hex,   "--wallet-key", wallet,
                          "--deposit",    "2",           "--peers-ttl", "1s",
                          NULL};
    if (nf_set_args(b, args, extra) != 0) {
        snprintf(why, n, "too many buyer arguments");
        return -1;
    }
    return nf_restart(f, b, why, n);
}

/* Kills whatever still runs (SIGKILL), stops anvil and removes the folder unless the test failed
 * (keep = 1 keeps it and says where). */
static inline void nf_teardown(netfix *f, int keep)
{
    nf_kill(&f->buyer, SIGKILL);
    for (int i = 0; i < f->n_sellers; i++)
        nf_kill(&f->sel[i], SIGKILL);
    nf_kill(&f->reg, SIGKILL);
    devchain_stop(&f->d);
    os_http_client_free(f->http);
    f->http = NULL;
    if (f->dir[0] != '\0') {
        if (keep)
            fprintf(stderr, "netfix: logs and data kept in %s\n", f->dir);
        else
            rc_rmtree(f->dir);
    }
}

/* A response from nf_http: status (-1 when the call failed), the body NUL-terminated, and two
 * headers the tests look at. */
typedef struct nf_res {
    long status;
    char *body;
    size_t len;
    char peer[64];        /* X-OpenSeed-Peer */
    char retry_after[32]; /* Retry-After */
} nf_res;

static inline void nf_res_free(nf_res *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* One HTTP call to base+path with an optional JSON body and bearer token. */
static inline void nf_http(netfix *f, nf_res *out, const char *method, const char *base,
                           const char *path, const char *body, const char *bearer)
{
    char url[512], auth[160];
    os_http_header h[2];
    size_t nh = 0;
    os_http_client_req req;
    os_http_client_res res;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s%s", base, path);
    if (body != NULL)
        h[nh++] = (os_http_header){"Content-Type", "application/json"};
    if (bearer != NULL) {
        snprintf(auth, sizeof(auth), "Bearer %s", bearer);
        h[nh++] = (os_http_header){"Authorization", auth};
    }
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = h;
    req.n_headers = nh;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    os_http_client_res_init(&res);
    out->status = os_http_client_do(f->http, &res, NULL, &req) == OS_OK ? res.status : -1;
    const char *p = os_http_client_res_header(&res, "X-OpenSeed-Peer");
    snprintf(out->peer, sizeof(out->peer), "%s", p != NULL ? p : "");
    p = os_http_client_res_header(&res, "Retry-After");
    snprintf(out->retry_after, sizeof(out->retry_after), "%s", p != NULL ? p : "");
    out->body = malloc(res.body.len + 1);
    if (out->body != NULL) {
        if (res.body.len > 0)
            memcpy(out->body, res.body.data, res.body.len);
        out->body[res.body.len] = '\0';
        out->len = res.body.len;
    }
    os_http_client_res_free(&res);
}

/* POST body to the buyer's path (an OpenAI or Anthropic API path). */
static inline void nf_post(netfix *f, nf_res *out, const char *path, const char *body)
{
    nf_http(f, out, "POST", f->buyer.url, path, body, NULL);
}

/* Seller i's admin token (from its data directory), NUL-terminated into tok. 0 on success. */
static inline int nf_admin_token(netfix *f, int i, char *tok, size_t cap)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/admin.token", f->sel[i].data_dir);
    FILE *fp = fopen(path, "r");
    size_t len;
    if (fp == NULL)
        return -1;
    len = fread(tok, 1, cap - 1, fp);
    fclose(fp);
    while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r'))
        len--;
    tok[len] = '\0';
    return len > 0 ? 0 : -1;
}

/* GET (body NULL) or POST to seller i's admin API with its token; the parsed JSON or NULL. */
static inline json_t *nf_admin(netfix *f, int i, long *status, const char *path, const char *body)
{
    char tok[128];
    nf_res r;
    json_t *j = NULL;
    *status = -1;
    if (nf_admin_token(f, i, tok, sizeof(tok)) != 0)
        return NULL;
    nf_http(f, &r, body != NULL ? "POST" : "GET", f->sel[i].admin_url, path, body, tok);
    os_wipe(tok, sizeof(tok));
    *status = r.status;
    if (r.body != NULL)
        j = json_loadb(r.body, r.len, 0, NULL);
    nf_res_free(&r);
    return j;
}

/* GET a path of the buyer's management API (/openseed/v1/...); the parsed JSON or NULL. */
static inline json_t *nf_buyer_get(netfix *f, long *status, const char *path)
{
    nf_res r;
    json_t *j = NULL;
    nf_http(f, &r, "GET", f->buyer.url, path, NULL, NULL);
    *status = r.status;
    if (r.body != NULL)
        j = json_loadb(r.body, r.len, 0, NULL);
    nf_res_free(&r);
    return j;
}

/* A micro-USDC amount as the APIs write it (a JSON integer, or the wire form's decimal string:
 * os_money_parse_json); false when v is neither. */
static inline bool nf_money(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    return os_money_parse_json(out, v) == OS_OK;
}

/* Waits up to ms for the buyer to have nothing in flight on any channel. 0 when idle. */
static inline int nf_buyer_idle(netfix *f, long ms)
{
    for (long t = 0; t < ms; t += 100) {
        long st;
        json_t *j = nf_buyer_get(f, &st, "/openseed/v1/channels");
        json_t *c;
        size_t i;
        bool busy = j == NULL || st != 200;
        json_array_foreach(json_object_get(j, "channels"), i, c)
        {
            uint64_t fl = 0;
            if (!nf_money(json_object_get(c, "in_flight"), &fl) || fl != 0)
                busy = true;
        }
        json_decref(j);
        if (!busy)
            return 0;
        rc_sleep_ms(100);
    }
    return -1;
}

/* The books agree: for every channel the buyer holds with a running seller, the seller knows it
 * with the same deposit and consumed. Sellers in `skip` (a bit per index) are not asked. 0 when
 * everything agrees; -1 with why. *n_channels counts the channels compared. */
static inline int nf_reconcile(netfix *f, unsigned skip, int *n_channels, char *why, size_t n)
{
    long st;
    json_t *bj = nf_buyer_get(f, &st, "/openseed/v1/channels");
    json_t *bc;
    size_t bi;
    int rc = 0, count = 0;

    if (bj == NULL || st != 200) {
        snprintf(why, n, "buyer channels: status %ld", st);
        json_decref(bj);
        return -1;
    }
    json_array_foreach(json_object_get(bj, "channels"), bi, bc)
    {
        const char *id = json_string_value(json_object_get(bc, "channel_id"));
        const char *seller = json_string_value(json_object_get(bc, "seller"));
        uint64_t b_cons = 0, b_dep = 0, s_cons = 0, s_dep = 0;
        int who = -1;
        for (int i = 0; i < f->n_sellers && seller != NULL; i++)
            if (strcasecmp(seller, f->sel_hex[i]) == 0)
                who = i;
        if (id == NULL || who < 0 || !nf_money(json_object_get(bc, "consumed"), &b_cons) ||
            !nf_money(json_object_get(bc, "deposit"), &b_dep)) {
            snprintf(why, n, "buyer channel %zu is malformed or names an unknown seller", bi);
            rc = -1;
            break;
        }
        if ((skip >> who) & 1u)
            continue;
        json_t *sj = nf_admin(f, who, &st, "/admin/v1/channels", NULL);
        json_t *sc, *found = NULL;
        size_t si;
        json_array_foreach(json_object_get(sj, "channels"), si, sc)
        {
            const char *sid = json_string_value(json_object_get(sc, "channel_id"));
            if (sid != NULL && strcasecmp(sid, id) == 0)
                found = sc;
        }
        if (found == NULL || !nf_money(json_object_get(found, "consumed"), &s_cons) ||
            !nf_money(json_object_get(found, "deposit"), &s_dep)) {
            snprintf(why, n, "seller%d (status %ld) does not know channel %s", who, st, id);
            rc = -1;
        } else if (s_cons != b_cons || s_dep != b_dep) {
            snprintf(why, n,
                     "channel %s: buyer consumed %" PRIu64 " deposit %" PRIu64
                     ", seller%d consumed %" PRIu64 " deposit %" PRIu64,
                     id, b_cons, b_dep, who, s_cons, s_dep);
            rc = -1;
        }
        json_decref(sj);
        if (rc != 0)
            break;
        count++;
    }
    json_decref(bj);
    if (n_channels != NULL)
        *n_channels = count;
    return rc;
}

#endif
