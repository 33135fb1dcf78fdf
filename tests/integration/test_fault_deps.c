/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Faults in what the network depends on, with every daemon a real process (netfix.h): the
 * registry and the chain's JSON-RPC node.
 *
 * Registry: a real registry and two sellers, and a buyer with a 1 s peer-list TTL. The registry is
 * killed (SIGKILL): the buyer keeps routing from its last verified list and the sellers keep
 * serving. A junk server of this file then answers on the registry's port, buyer and sellers
 * alike: invalid JSON, a listing of forged and tampered records, an oversized body, a silent
 * answer, 500s. The buyer keeps routing to the genuine sellers and nothing forged reaches its
 * directory (/openseed/v1/peers). The real registry comes back with an empty data directory: the
 * sellers' heartbeats are answered 404, they announce again and are listed within a bound, and
 * the buyer takes the fresh listing.
 *
 * Chain: sellers and buyer reach anvil through a TCP proxy of this file that passes, resets or
 * refuses connections, swallows requests (blackhole), delays every request, or lets one
 * eth_sendRawTransaction through and cuts the chain right after it (before or after its answer).
 * With channels open, a chain outage leaves paid requests on those channels working; a request
 * pinned to a seller without a channel fails quickly with a 503 chain_unavailable error in the
 * OpenAI shape; a settlement during the outage claims nothing; after it, one claim settles what
 * was earned, every Claimed event on chain matches one confirmed settlement in the seller's books,
 * and the books of buyer and sellers agree. A claim mined but whose answer was lost is never sent
 * again (the seller's settlement log calls it failed, the one mismatch allowed); one whose
 * receipt comes after an outage is confirmed once. A slow chain leaves requests on open channels
 * as fast as before and opens a new channel, only slower.
 *
 * Every socket here is close-on-exec: a daemon started later would otherwise inherit it, keep a
 * connection this file resets open, and its peer would wait for its timeout.
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h; memmem */
#include "testutil.h"

#include "netfix.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "openseed/escrow.h"

#define CHAIN 31337
#define SERVICE "echo"
#define SLOW_MS 1000    /* the slow chain's delay per request */
#define BOUND_MS 30000L /* an answer, even an error, comes within this */
#define OUTAGES 3

static const char *const OFFERS[3] = {
    "echo model=echo-1 apis=openai.chat input=0.5 output=1.5",
    "echo model=echo-1 apis=openai.chat input=0.4 output=1.2",
    "echo model=echo-1 apis=openai.chat input=0.6 output=1.8",
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Resets a socket (RST, not FIN): what a crashed or firewalled peer looks like. */
static void sock_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (fd < 0)
        return;
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static bool send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static int listen_on(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------------ the chain proxy */

typedef enum cp_mode {
    CP_PASS,      /* relay both ways */
    CP_RESET,     /* every connection, open or new, reset */
    CP_REFUSE,    /* the port closed: connections refused (open ones reset) */
    CP_BLACKHOLE, /* connections accepted, requests never answered */
    CP_SLOW,      /* every request held SLOW_MS before it is relayed */
    CP_CUT,       /* relay until an eth_sendRawTransaction reached the node, then CP_RESET */
    CP_CUT_LATE,  /* the same, but the transaction's hash reaches the sender first */
} cp_mode;

#define CP_MAX_CONNS 4096

typedef struct cproxy cproxy;

typedef struct cp_conn {
    cproxy *p;
    int client, server;
    pthread_t th;
    atomic_bool done;
} cp_conn;

struct cproxy {
    int lfd;
    uint16_t port, target;
    pthread_t acceptor;
    atomic_int mode, stop;
    atomic_int active;                  /* relaying connections */
    atomic_uint requests, resets, cuts; /* counts, for the report */
    cp_conn *conns[CP_MAX_CONNS];       /* the acceptor's own */
    size_t n_conns;
};

static bool cp_dead_mode(int m)
{
    return m == CP_RESET || m == CP_REFUSE;
}

static void *cp_conn_main(void *arg)
{
    cp_conn *c = arg;
    cproxy *p = c->p;
    char buf[65536];

    atomic_fetch_add(&p->active, 1);
    while (!atomic_load(&p->stop)) {
        int m = atomic_load(&p->mode);
        struct pollfd fds[2] = {{.fd = c->client, .events = POLLIN},
                                {.fd = c->server, .events = POLLIN}};
        if (cp_dead_mode(m))
            break;
        if (m == CP_BLACKHOLE) { /* hold whatever was sent, answer nothing */
            rc_sleep_ms(20);
            continue;
        }
        if (poll(fds, 2, 50) <= 0)
            continue;
        if (fds[0].revents != 0) {
            ssize_t got = recv(c->client, buf, sizeof(buf), 0);
            if (got <= 0)
                break;
            if (memmem(buf, (size_t)got, "\"jsonrpc\"", 9) != NULL)
                atomic_fetch_add(&p->requests, 1);
            m = atomic_load(&p->mode);
            if (m == CP_SLOW)
                for (int t = 0; t < SLOW_MS && !atomic_load(&p->stop); t += 10)
                    rc_sleep_ms(10);
            if (cp_dead_mode(m = atomic_load(&p->mode)))
                break;
            if (!send_all(c->server, buf, (size_t)got))
                break;
            if ((m == CP_CUT || m == CP_CUT_LATE) &&
                memmem(buf, (size_t)got, "eth_sendRawTransaction", 22) != NULL) {
                /* the node has the transaction; its answer is dropped (CP_CUT: the sender
                 * never learns it went through) or relayed (CP_CUT_LATE), then the chain is
                 * gone */
                struct pollfd sp = {.fd = c->server, .events = POLLIN};
                ssize_t ans = poll(&sp, 1, 5000) > 0 ? recv(c->server, buf, sizeof(buf), 0) : -1;
                if (m == CP_CUT_LATE && ans > 0 && send_all(c->client, buf, (size_t)ans))
                    rc_sleep_ms(200); /* read before the reset, which would drop it */
                atomic_store(&p->mode, CP_RESET);
                atomic_fetch_add(&p->cuts, 1);
                break;
            }
        }
        if (fds[1].revents != 0) {
            ssize_t got = recv(c->server, buf, sizeof(buf), 0);
            if (got <= 0 || !send_all(c->client, buf, (size_t)got))
                break;
        }
    }
    sock_reset(c->client);
    close(c->server);
    atomic_fetch_sub(&p->active, 1);
    atomic_store(&c->done, true);
    return NULL;
}

static void cp_reap(cproxy *p, bool all)
{
    size_t w = 0;
    for (size_t i = 0; i < p->n_conns; i++) {
        if (all || atomic_load(&p->conns[i]->done)) {
            pthread_join(p->conns[i]->th, NULL);
            free(p->conns[i]);
        } else {
            p->conns[w++] = p->conns[i];
        }
    }
    p->n_conns = w;
}

static void *cp_accept_main(void *arg)
{
    cproxy *p = arg;
    while (!atomic_load(&p->stop)) {
        int m = atomic_load(&p->mode), cl, sv;
        struct pollfd pf;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->target)};
        cp_conn *c;

        cp_reap(p, false);
        if (m == CP_REFUSE) {
            if (p->lfd >= 0) {
                close(p->lfd);
                p->lfd = -1;
            }
            rc_sleep_ms(10);
            continue;
        }
        if (p->lfd < 0 && (p->lfd = listen_on(p->port)) < 0) {
            rc_sleep_ms(10);
            continue;
        }
        pf = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0 || (cl = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
            continue;
        if (cp_dead_mode(atomic_load(&p->mode))) {
            sock_reset(cl);
            atomic_fetch_add(&p->resets, 1);
            continue;
        }
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        c = calloc(1, sizeof(*c));
        if (sv < 0 || c == NULL || connect(sv, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            p->n_conns == CP_MAX_CONNS) {
            sock_reset(cl);
            if (sv >= 0)
                close(sv);
            free(c);
            continue;
        }
        c->p = p;
        c->client = cl;
        c->server = sv;
        atomic_init(&c->done, false);
        if (pthread_create(&c->th, NULL, cp_conn_main, c) != 0) {
            sock_reset(cl);
            close(sv);
            free(c);
            continue;
        }
        p->conns[p->n_conns++] = c;
    }
    if (p->lfd >= 0)
        close(p->lfd);
    p->lfd = -1;
    return NULL;
}

static int cp_start(cproxy *p, uint16_t target)
{
    memset(p, 0, sizeof(*p));
    p->target = target;
    atomic_init(&p->mode, CP_PASS);
    if ((p->port = nf_free_port()) == 0 || (p->lfd = listen_on(p->port)) < 0)
        return -1;
    if (pthread_create(&p->acceptor, NULL, cp_accept_main, p) != 0) {
        close(p->lfd);
        return -1;
    }
    return 0;
}

static void cp_stop(cproxy *p)
{
    if (p->port == 0)
        return;
    atomic_store(&p->stop, 1);
    pthread_join(p->acceptor, NULL);
    cp_reap(p, true);
    p->port = 0;
}

/* Switches mode; a dead mode returns once no connection relays any more (a pooled keep-alive
 * connection would otherwise carry on through the outage). */
static void cp_set(cproxy *p, cp_mode m)
{
    atomic_store(&p->mode, m);
    for (int t = 0; cp_dead_mode(m) && atomic_load(&p->active) > 0 && t < 5000; t += 10)
        rc_sleep_ms(10);
}

/* ------------------------------------------------------------------ the junk registry */

typedef enum jr_mode {
    JR_BADJSON, /* 200, a JSON text cut short */
    JR_FORGED,  /* 200, a listing of forged and tampered records only */
    JR_HUGE,    /* 200, a 64 MiB body */
    JR_SLOW,    /* no answer until the phase ends */
    JR_500,     /* 500 in the OpenAI error shape */
    JR_N,
} jr_mode;

static const char *const JR_NAMES[JR_N] = {"invalid JSON", "forged records", "oversized body",
                                           "silence", "HTTP 500"};

#define JR_MAX_CONNS 4096
#define JR_HUGE_BYTES (64u << 20)

typedef struct junkreg junkreg;

typedef struct jr_conn {
    junkreg *j;
    int fd;
    pthread_t th;
    atomic_bool done;
} jr_conn;

struct junkreg {
    int lfd;
    pthread_t acceptor;
    atomic_int mode, stop;
    atomic_uint phase; /* bumped at every mode change: ends a silent answer */
    atomic_uint hits_peers, hits_peer, hits_hb, hits_other, hits_phase_peers;
    char *listing;  /* JR_FORGED's answer to GET /v1/peers */
    char *one_peer; /* ... and to GET /v1/peers/{node} */
    jr_conn *conns[JR_MAX_CONNS];
    size_t n_conns;
};

static void jr_reply(int fd, int status, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status == 200 ? "OK" : "Internal Server Error", len);
    if (send_all(fd, head, (size_t)n))
        (void)send_all(fd, body, len);
}

static void *jr_conn_main(void *arg)
{
    jr_conn *c = arg;
    junkreg *j = c->j;
    char req[16384];
    size_t got = 0;
    unsigned phase = atomic_load(&j->phase);
    int mode = atomic_load(&j->mode);
    char *end = NULL;

    /* the request head (bodies of heartbeats are small and ignored) */
    while (got < sizeof(req) - 1 && end == NULL && !atomic_load(&j->stop)) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        ssize_t r;
        if (poll(&pf, 1, 100) <= 0)
            continue;
        if ((r = recv(c->fd, req + got, sizeof(req) - 1 - got, 0)) <= 0)
            break;
        got += (size_t)r;
        req[got] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    if (end == NULL)
        goto out;
    if (strncmp(req, "GET /v1/peers?", 14) == 0) {
        atomic_fetch_add(&j->hits_peers, 1);
        atomic_fetch_add(&j->hits_phase_peers, 1);
    } else if (strncmp(req, "GET /v1/peers/", 14) == 0) {
        atomic_fetch_add(&j->hits_peer, 1);
        atomic_fetch_add(&j->hits_phase_peers, 1);
    } else if (strncmp(req, "POST /v1/heartbeat", 18) == 0 ||
               strncmp(req, "POST /v1/announce", 17) == 0) {
        atomic_fetch_add(&j->hits_hb, 1);
    } else {
        atomic_fetch_add(&j->hits_other, 1);
    }
    switch (mode) {
    case JR_BADJSON: {
        static const char cut[] = "{\"peers\":[{\"record\":{\"node_id\":\"0x";
        jr_reply(c->fd, 200, cut, sizeof(cut) - 1);
        break;
    }
    case JR_FORGED: {
        const char *b = strncmp(req, "GET /v1/peers/", 14) == 0 ? j->one_peer : j->listing;
        jr_reply(c->fd, 200, b, strlen(b));
        break;
    }
    case JR_HUGE: {
        char head[256], fill[65536];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %u\r\nConnection: close\r\n\r\n{\"peers\":[",
                         JR_HUGE_BYTES);
        memset(fill, ' ', sizeof(fill));
        if (!send_all(c->fd, head, (size_t)n))
            break;
        for (size_t sent = 10; sent < JR_HUGE_BYTES && !atomic_load(&j->stop); sent += sizeof(fill))
            if (!send_all(c->fd, fill, sizeof(fill)))
                break; /* the client stopped reading at its cap */
        break;
    }
    case JR_SLOW:
        while (!atomic_load(&j->stop) && atomic_load(&j->phase) == phase)
            rc_sleep_ms(20);
        break; /* then closed without a word */
    default: {
        static const char e[] =
            "{\"error\":{\"message\":\"junk\",\"type\":\"server_error\",\"code\":null}}";
        jr_reply(c->fd, 500, e, sizeof(e) - 1);
        break;
    }
    }
out:
    close(c->fd);
    atomic_store(&c->done, true);
    return NULL;
}

static void jr_reap(junkreg *j, bool all)
{
    size_t w = 0;
    for (size_t i = 0; i < j->n_conns; i++) {
        if (all || atomic_load(&j->conns[i]->done)) {
            pthread_join(j->conns[i]->th, NULL);
            free(j->conns[i]);
        } else {
            j->conns[w++] = j->conns[i];
        }
    }
    j->n_conns = w;
}

static void *jr_accept_main(void *arg)
{
    junkreg *j = arg;
    while (!atomic_load(&j->stop)) {
        struct pollfd pf = {.fd = j->lfd, .events = POLLIN};
        jr_conn *c;
        int fd;
        jr_reap(j, false);
        if (poll(&pf, 1, 50) <= 0 || (fd = accept4(j->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
            continue;
        if (j->n_conns == JR_MAX_CONNS || (c = calloc(1, sizeof(*c))) == NULL) {
            close(fd);
            continue;
        }
        c->j = j;
        c->fd = fd;
        atomic_init(&c->done, false);
        if (pthread_create(&c->th, NULL, jr_conn_main, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        j->conns[j->n_conns++] = c;
    }
    return NULL;
}

static int jr_start(junkreg *j, uint16_t port)
{
    j->lfd = -1;
    for (int t = 0; t < 5000 && (j->lfd = listen_on(port)) < 0; t += 50)
        rc_sleep_ms(50);
    if (j->lfd < 0)
        return -1;
    return pthread_create(&j->acceptor, NULL, jr_accept_main, j) == 0 ? 0 : -1;
}

static void jr_stop(junkreg *j)
{
    if (j->lfd < 0)
        return;
    atomic_store(&j->stop, 1);
    atomic_fetch_add(&j->phase, 1);
    pthread_join(j->acceptor, NULL);
    jr_reap(j, true);
    close(j->lfd);
    j->lfd = -1;
}

static void jr_set(junkreg *j, jr_mode m)
{
    atomic_store(&j->mode, m);
    atomic_fetch_add(&j->phase, 1);
    atomic_store(&j->hits_phase_peers, 0);
}

/* ------------------------------------------------------------------ the fixture */

static netfix fx;
static cproxy cpx;
static junkreg jr = {.lfd = -1};
static int failed;
static char rpc_real[sizeof(fx.d.anvil.url)];
static json_t *genuine; /* the registry's listing of both sellers, kept before it was killed */
static int64_t restart_wall_s;
/* for the report */
static unsigned n_ok_down, n_ok_junk[JR_N], n_junk_hits[JR_N], n_chain_ok, n_new_refused,
    n_settle_down, n_claims;
static int64_t relist_ms, new_err_ms_max, slow_open_ms, slow_known_ms_max;
static int64_t lap_ms;
static char laps[512];

/* Notes how long the phase that just ended took, for the report. */
static void lap(const char *name)
{
    int64_t now = mono_ms();
    size_t n = strlen(laps);
    snprintf(laps + n, sizeof(laps) - n, " %s=%.1fs", name, (double)(now - lap_ms) / 1000.0);
    lap_ms = now;
}

/* Starts a daemon with --rpc pointing at the proxy: netfix passes anvil's own URL, and --rpc may
 * be given once, so the fixture's copy is swapped for the call. */
static void use_proxy_rpc(bool on)
{
    if (on)
        snprintf(fx.d.anvil.url, sizeof(fx.d.anvil.url), "http://127.0.0.1:%u", (unsigned)cpx.port);
    else
        snprintf(fx.d.anvil.url, sizeof(fx.d.anvil.url), "%s", rpc_real);
}

static int setup(void **state)
{
    char why[NF_WHY] = "";
    int rc = -1;
    (void)state;

    lap_ms = mono_ms();
    if (nf_setup(&fx, "faultdeps", CHAIN, why, sizeof(why)) != 0 ||
        nf_registry(&fx, NULL, why, sizeof(why)) != 0)
        goto out;
    snprintf(rpc_real, sizeof(rpc_real), "%s", fx.d.anvil.url);
    if (cp_start(&cpx, (uint16_t)fx.d.anvil.port) != 0) {
        snprintf(why, sizeof(why), "cannot start the chain proxy");
        goto out;
    }
    use_proxy_rpc(true);
    for (int i = 0; i < 2; i++)
        if (nf_seller(&fx, i, OFFERS[i], NULL, NULL, why, sizeof(why)) != 0)
            goto out;
    if (nf_wait_listed(&fx, SERVICE, 2, 30000) != 0) {
        snprintf(why, sizeof(why), "the registry does not list both sellers");
        goto out;
    }
    rc_sleep_ms(1200); /* a full rescore ranks by price */
    if (nf_buyer(&fx, NULL, why, sizeof(why)) != 0)
        goto out;
    rc = 0;
    lap("setup");
out:
    use_proxy_rpc(false);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", why);
        failed = 1;
    }
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    jr_stop(&jr);
    nf_teardown(&fx, failed);
    cp_stop(&cpx);
    json_decref(genuine);
    free(jr.listing);
    free(jr.one_peer);
    fprintf(stderr,
            "fault_deps: registry down %u ok; junk ok/registry asks: bad JSON %u/%u, forged %u/%u, "
            "huge %u/%u, silent %u/%u, 500 %u/%u; re-listed in %" PRId64 " ms\n",
            n_ok_down, n_ok_junk[JR_BADJSON], n_junk_hits[JR_BADJSON], n_ok_junk[JR_FORGED],
            n_junk_hits[JR_FORGED], n_ok_junk[JR_HUGE], n_junk_hits[JR_HUGE], n_ok_junk[JR_SLOW],
            n_junk_hits[JR_SLOW], n_ok_junk[JR_500], n_junk_hits[JR_500], relist_ms);
    fprintf(stderr,
            "fault_deps: chain outages %d: %u paid requests ok, %u new channels refused (slowest "
            "%" PRId64 " ms), %u settlements without a claim, %u claims; proxy relayed %u, "
            "reset %u, cut %u; slow chain: known channels <= %" PRId64 " ms, new channel %" PRId64
            " ms\n",
            OUTAGES, n_chain_ok, n_new_refused, new_err_ms_max, n_settle_down, n_claims,
            atomic_load(&cpx.requests), atomic_load(&cpx.resets), atomic_load(&cpx.cuts),
            slow_known_ms_max, slow_open_ms);
    fprintf(stderr, "fault_deps: times%s\n", laps);
    return 0;
}

/* ------------------------------------------------------------------ helpers */

/* POST a chat completion to the buyer, pinned to seller `pin` (-1: not pinned); *ms its time. */
static void chat(nf_res *out, int pin, const char *text, int64_t *ms)
{
    char body[512], url[128];
    os_http_header h[2] = {{"Content-Type", "application/json"}, {"X-OpenSeed-Peer", NULL}};
    os_http_client_req req;
    os_http_client_res res;
    int64_t t0 = mono_ms();

    snprintf(body, sizeof(body),
             "{\"model\":\"" SERVICE "\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]}",
             text);
    snprintf(url, sizeof(url), "%s/v1/chat/completions", fx.buyer.url);
    if (pin >= 0)
        h[1].value = fx.sel_hex[pin];
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = h;
    req.n_headers = pin >= 0 ? 2 : 1;
    req.body = body;
    req.body_len = strlen(body);
    memset(out, 0, sizeof(*out));
    os_http_client_res_init(&res);
    out->status = os_http_client_do(fx.http, &res, NULL, &req) == OS_OK ? res.status : -1;
    const char *p = os_http_client_res_header(&res, "X-OpenSeed-Peer");
    snprintf(out->peer, sizeof(out->peer), "%s", p != NULL ? p : "");
    out->body = calloc(1, res.body.len + 1);
    if (out->body != NULL && res.body.len > 0)
        memcpy(out->body, res.body.data, res.body.len);
    out->len = res.body.len;
    os_http_client_res_free(&res);
    if (ms != NULL)
        *ms = mono_ms() - t0;
}

/* A paid request that must be answered by a genuine seller (pin's, when pinned). */
static void chat_ok(int pin, const char *text)
{
    nf_res r;
    char want[160];
    int64_t ms;
    chat(&r, pin, text, &ms);
    snprintf(want, sizeof(want), "\"content\":\"echo: %s\"", text);
    if (r.status != 200 || strstr(r.body, want) == NULL)
        fail_msg("request \"%s\" (pin %d): status %ld after %" PRId64 " ms: %.300s", text, pin,
                 r.status, ms, r.body != NULL ? r.body : "");
    if (pin >= 0)
        assert_string_equal(r.peer, fx.sel_hex[pin]);
    else if (strcasecmp(r.peer, fx.sel_hex[0]) != 0 && strcasecmp(r.peer, fx.sel_hex[1]) != 0)
        fail_msg("answered by %s, not a genuine seller", r.peer);
    assert_true(ms < BOUND_MS);
    nf_res_free(&r);
}

/* Whether the file at dir/name holds needle. */
static bool log_has(const char *name, const char *needle)
{
    char path[256];
    FILE *fp;
    char *buf;
    long n;
    bool found = false;
    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    if ((fp = fopen(path, "r")) == NULL)
        return false;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        size_t got = fread(buf, 1, (size_t)n, fp);
        buf[got] = '\0';
        found = strstr(buf, needle) != NULL;
        free(buf);
    }
    fclose(fp);
    return found;
}

/* The buyer's directory (/openseed/v1/peers) holds exactly sellers 0..n-1, each at its own
 * endpoint; *last_seen_min the oldest registry last_seen among them. */
static void assert_directory(int n, int64_t *last_seen_min)
{
    long st;
    json_t *j = nf_buyer_get(&fx, &st, "/openseed/v1/peers"), *p;
    size_t i;
    int seen = 0;

    assert_int_equal(st, 200);
    if (last_seen_min != NULL)
        *last_seen_min = INT64_MAX;
    json_array_foreach(json_object_get(j, "peers"), i, p)
    {
        const char *node = json_string_value(json_object_get(p, "node"));
        const char *ep = json_string_value(json_object_get(p, "endpoint"));
        int who = -1;
        for (int k = 0; k < n && node != NULL; k++)
            if (strcasecmp(node, fx.sel_hex[k]) == 0)
                who = k;
        if (who < 0)
            fail_msg("the buyer's directory holds %s, not a genuine seller", node ? node : "?");
        assert_non_null(ep);
        assert_string_equal(ep, fx.sel[who].url);
        if (last_seen_min != NULL) {
            json_int_t ls = json_integer_value(json_object_get(p, "last_seen"));
            if (ls < *last_seen_min)
                *last_seen_min = ls;
        }
        seen++;
    }
    assert_int_equal(seen, n);
    json_decref(j);
}

/* ------------------------------------------------------------------ forged listings */

/* A copy of peer object src whose record has endpoint changed and is signed by key (a key
 * that is not the node's): an impersonation. */
static json_t *forge_endpoint(const json_t *src, const char *endpoint, const uint8_t key[32])
{
    json_t *p = json_deep_copy(src), *rec = json_object_get(p, "record");
    uint8_t sig[65], digest[32];
    char hex[OS_HEX_LEN(65)];
    os_record parsed;
    assert_non_null(rec);
    assert_int_equal(json_object_set_new(rec, "endpoint", json_string(endpoint)), 0);
    (void)json_object_del(p, "heartbeat"); /* its signed endpoint would be used instead */
    /* os_record_sign refuses a key that is not the node's: sign the digest directly */
    assert_int_equal(os_record_parse(&parsed, rec, NULL, 0), OS_OK);
    assert_int_equal(os_record_digest(digest, rec, &parsed), OS_OK);
    assert_int_equal(os_secp_sign(sig, key, digest), OS_OK);
    assert_int_equal(os_hex_encode(hex, sizeof(hex), sig, 65, 1), OS_OK);
    assert_int_equal(json_object_set_new(p, "signature", json_string(hex)), 0);
    return p;
}

/* A copy of peer object src whose first offering costs 1 micro-USDC per million tokens, its
 * signature kept: a tampered record. */
static json_t *tamper_price(const json_t *src)
{
    json_t *p = json_deep_copy(src);
    json_t *o = json_array_get(json_object_get(json_object_get(p, "record"), "offerings"), 0);
    json_t *pr = json_object_get(o, "pricing");
    assert_non_null(pr);
    assert_int_equal(json_object_set_new(pr, "input", json_string("1")), 0);
    assert_int_equal(json_object_set_new(pr, "output", json_string("1")), 0);
    return p;
}

/* The peer object of seller i in the genuine listing. */
static const json_t *genuine_peer(int i)
{
    json_t *p;
    size_t k;
    json_array_foreach(json_object_get(genuine, "peers"), k, p)
    {
        const char *node =
            json_string_value(json_object_get(json_object_get(p, "record"), "node_id"));
        if (node != NULL && strcasecmp(node, fx.sel_hex[i]) == 0)
            return p;
    }
    fail_msg("seller%d is not in the genuine listing", i);
    return NULL;
}

/* JR_FORGED's answers: a listing whose every record is forged or tampered (seller0's record
 * pointing at a dead port, signed by a stranger; seller1's record with its price cut; a
 * stranger's record claiming seller1's node with a high score), and one forged peer for the
 * per-node lookup. */
static void make_forgeries(void)
{
    uint8_t stranger[32];
    char dead[64];
    json_t *list = json_array(), *doc, *p0, *p1, *p2;

    randombytes_buf(stranger, sizeof(stranger));
    assert_int_equal(os_secp_privkey_check(stranger), OS_OK);
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%u", (unsigned)nf_free_port());
    p0 = forge_endpoint(genuine_peer(0), dead, stranger);
    p1 = tamper_price(genuine_peer(1));
    p2 = forge_endpoint(genuine_peer(1), dead, stranger);
    assert_int_equal(json_object_set_new(p2, "score", json_real(1.0)), 0);
    jr.one_peer = json_dumps(p0, JSON_COMPACT);
    assert_int_equal(json_array_append_new(list, p0), 0);
    assert_int_equal(json_array_append_new(list, p1), 0);
    assert_int_equal(json_array_append_new(list, p2), 0);
    doc = json_pack("{s:o,s:n}", "peers", list, "next_cursor");
    jr.listing = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    os_wipe(stranger, sizeof(stranger));
    assert_non_null(jr.listing);
    assert_non_null(jr.one_peer);
}

/* ------------------------------------------------------------------ (a) the registry */

/* The registry killed: the buyer routes from its last verified list, the sellers serve. */
static void test_registry_killed(void **state)
{
    rc_resp r;
    char url[192], text[64];
    (void)state;
    failed = 1;

    /* both sellers used once: the buyer's directory and channels know them */
    chat_ok(0, "hello zero");
    chat_ok(1, "hello one");
    chat_ok(-1, "hello anyone");
    assert_directory(2, NULL);
    snprintf(url, sizeof(url), "%s/v1/peers?service=" SERVICE, fx.reg.url);
    assert_int_equal(rc_http(&r, "GET", url, NULL, 0), 0);
    assert_int_equal(r.status, 200);
    genuine = json_loads(r.body, 0, NULL);
    rc_resp_free(&r);
    assert_int_equal(json_array_size(json_object_get(genuine, "peers")), 2);

    assert_int_equal(nf_kill(&fx.reg, SIGKILL), -1);
    /* 12 requests over ~3 TTLs, so the buyer tries the dead registry several times */
    for (int k = 0; k < 12; k++) {
        snprintf(text, sizeof(text), "registry down %d", k);
        chat_ok(k % 3 == 2 ? -1 : k % 3, text);
        n_ok_down++;
        rc_sleep_ms(300);
    }
    assert_directory(2, NULL);
    assert_true(log_has("buyer.log", "serving the last good copy"));
    lap("registry_killed");
    failed = 0;
}

/* Junk on the registry's port: the buyer keeps its verified list, nothing forged gets in. */
static void test_registry_junk(void **state)
{
    static const jr_mode order[] = {JR_BADJSON, JR_FORGED, JR_HUGE, JR_SLOW, JR_500};
    char text[64];
    (void)state;
    failed = 1;

    assert_non_null(genuine);
    make_forgeries();
    assert_int_equal(jr_start(&jr, fx.reg.port), 0);
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        jr_mode m = order[k];
        /* silence costs the buyer its registry timeout (5 s) per refresh: once is enough */
        unsigned want = m == JR_SLOW ? 1 : 2;
        jr_set(&jr, m);
        /* rounds until the buyer asked the junk server, each round past the TTL */
        for (int round = 0; round < 8 && atomic_load(&jr.hits_phase_peers) < want; round++) {
            rc_sleep_ms(1100);
            for (int pin = -1; pin < 2; pin++) {
                snprintf(text, sizeof(text), "junk %d round %d pin %d", (int)m, round, pin);
                chat_ok(pin, text);
                n_ok_junk[m]++;
            }
        }
        n_junk_hits[m] = atomic_load(&jr.hits_phase_peers);
        if (n_junk_hits[m] < want)
            fail_msg("the buyer asked the junk registry (%s) %u times", JR_NAMES[m],
                     n_junk_hits[m]);
        assert_directory(2, NULL);
    }
    assert_true(atomic_load(&jr.hits_hb) > 0); /* the sellers talked to it too */
    assert_true(log_has("buyer.log", "registry served unusable records"));
    lap("registry_junk");
    failed = 0;
}

/* The registry back with nothing on disk: the sellers announce again, the buyer takes it up. */
static void test_registry_restarted_empty(void **state)
{
    char why[NF_WHY] = "";
    int64_t t0, oldest = 0;
    (void)state;
    failed = 1;

    jr_stop(&jr);
    rc_rmtree(fx.reg.data_dir);
    restart_wall_s = rc_now_ms() / 1000;
    t0 = mono_ms();
    if (nf_restart(&fx, &fx.reg, why, sizeof(why)) != 0)
        fail_msg("registry restart: %s", why);
    /* a heartbeat answered 404, an announce; the sellers' backoff after the junk is the bound */
    assert_int_equal(nf_wait_listed(&fx, SERVICE, 2, 60000), 0);
    relist_ms = mono_ms() - t0;
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof(name), "seller%d.log", i);
        assert_true(log_has(name, "registry does not know the seller; announcing again"));
        assert_true(log_has(name, "re-registered"));
    }
    /* the buyer's next refresh takes the fresh listing: the registry's last_seen moves on */
    for (int t = 0; t < 100; t++) {
        chat_ok(-1, "registry is back");
        assert_directory(2, &oldest);
        if (oldest >= restart_wall_s)
            break;
        rc_sleep_ms(200);
    }
    assert_true(oldest >= restart_wall_s);
    lap("registry_restarted_empty");
    failed = 0;
}

/* ------------------------------------------------------------------ (b) the chain */

typedef struct claims {
    unsigned events, confirmed, other; /* Claimed events; settlement rows by status */
    uint64_t ev_amount, conf_amount;
} claims;

/* body is an error in the OpenAI shape: {"error":{"message":str,"type":str,"param":?,"code":
 * str|null}}, naming code. */
static void assert_openai_error(const char *body, const char *code)
{
    json_t *j = json_loads(body, 0, NULL), *e = json_object_get(j, "error");
    const char *c = json_string_value(json_object_get(e, "code"));
    if (j == NULL || json_object_size(j) != 1 || !json_is_object(e) ||
        !json_is_string(json_object_get(e, "message")) ||
        json_string_length(json_object_get(e, "message")) == 0 ||
        !json_is_string(json_object_get(e, "type")) || c == NULL || strcmp(c, code) != 0)
        fail_msg("not an OpenAI error with code %s: %s", code, body);
    json_decref(j);
}

/* The channel id (hex) the buyer holds with seller i, or "" when none is open. */
static void buyer_channel(int i, char *out, size_t cap)
{
    long st;
    json_t *j = nf_buyer_get(&fx, &st, "/openseed/v1/channels"), *c;
    size_t k;
    out[0] = '\0';
    json_array_foreach(json_object_get(j, "channels"), k, c)
    {
        const char *s = json_string_value(json_object_get(c, "seller"));
        const char *state = json_string_value(json_object_get(c, "state"));
        if (s != NULL && strcasecmp(s, fx.sel_hex[i]) == 0 && state != NULL &&
            strcmp(state, "open") == 0)
            snprintf(out, cap, "%s", json_string_value(json_object_get(c, "channel_id")));
    }
    json_decref(j);
}

/* On chain and in seller i's books, for channel `id`: Claimed events and settlement rows. */
static void count_claims(int i, const char *id, claims *out)
{
    uint8_t cid[32];
    os_chain_filter f;
    os_chain_log *logs = NULL;
    os_chain_error err;
    size_t n = 0, k;
    long st;
    json_t *j, *row;

    memset(out, 0, sizeof(*out));
    assert_int_equal(os_hex_decode_exact(cid, 32, id), OS_OK);
    memset(&f, 0, sizeof(f));
    f.has_address = true;
    memcpy(f.address, fx.d.escrow, 20);
    f.from_block = fx.d.deploy_block;
    f.to_latest = true;
    if (os_chain_get_logs(fx.d.ch, &logs, &n, &err, &f) != OS_OK)
        fail_msg("eth_getLogs: %s", err.message);
    for (k = 0; k < n; k++) {
        os_escrow_event ev;
        if (os_escrow_decode_event(&ev, &logs[k], fx.d.escrow) == OS_OK &&
            ev.kind == OS_ESCROW_EV_CLAIMED && memcmp(ev.channel_id, cid, 32) == 0) {
            out->events++;
            out->ev_amount += ev.amount;
        }
    }
    os_chain_logs_free(logs, n);
    j = nf_admin(&fx, i, &st, "/admin/v1/settlements?limit=1000", NULL);
    assert_int_equal(st, 200);
    json_array_foreach(json_object_get(j, "settlements"), k, row)
    {
        const char *rid = json_string_value(json_object_get(row, "channel_id"));
        const char *status = json_string_value(json_object_get(row, "status"));
        uint64_t amount = 0;
        if (rid == NULL || strcasecmp(rid, id) != 0)
            continue;
        assert_non_null(status);
        if (strcmp(status, "confirmed") == 0) {
            assert_true(nf_money(json_object_get(row, "amount"), &amount));
            out->confirmed++;
            out->conf_amount += amount;
        } else {
            out->other++;
        }
    }
    json_decref(j);
}

/* The chain's claimed total of channel id. */
static uint64_t chain_claimed(const char *id)
{
    uint8_t cid[32];
    os_channel_state s;
    os_chain_error err;
    assert_int_equal(os_hex_decode_exact(cid, 32, id), OS_OK);
    if (os_escrow_get_channel(fx.d.ch, &s, &err, fx.d.escrow, cid) != OS_OK)
        fail_msg("getChannel: %s", err.message);
    return s.claimed;
}

/* Claims mined whose answer the proxy cut (test_claim_answer_lost): the seller recorded them as
 * failed, so they are Claimed events without a confirmed settlement. */
static unsigned lost_claims[2];
static uint64_t lost_amount[2];

/* Every Claimed event of the channel is one confirmed settlement of seller i (but for the claims
 * whose answer was lost), the amounts add up to the chain's claimed total, and the seller's own
 * view of that total is the chain's. */
static void assert_claims_match(int i, const char *id, claims *out)
{
    uint64_t onchain = chain_claimed(id), seen = UINT64_MAX;
    long st;
    json_t *j, *c;
    size_t k;

    count_claims(i, id, out);
    if (out->events != out->confirmed + lost_claims[i] || out->ev_amount != onchain ||
        out->conf_amount + lost_amount[i] != onchain)
        fail_msg("seller%d channel %s: %u Claimed events (%" PRIu64 "), %u confirmed settlements "
                 "(%" PRIu64 ") and %u lost (%" PRIu64 "), claimed on chain %" PRIu64,
                 i, id, out->events, out->ev_amount, out->confirmed, out->conf_amount,
                 lost_claims[i], lost_amount[i], onchain);
    j = nf_admin(&fx, i, &st, "/admin/v1/channels", NULL);
    json_array_foreach(json_object_get(j, "channels"), k, c)
    {
        const char *cid = json_string_value(json_object_get(c, "channel_id"));
        if (cid != NULL && strcasecmp(cid, id) == 0)
            assert_true(nf_money(json_object_get(c, "claimed"), &seen));
    }
    json_decref(j);
    assert_true(seen == onchain);
}

typedef struct settle_job {
    int seller;
    json_t *report;
    long status;
    int64_t ms;
    pthread_t th;
} settle_job;

static void *settle_main(void *arg)
{
    settle_job *s = arg;
    char tok[128], url[128], auth[160];
    os_http_header h[2] = {{"Content-Type", "application/json"}, {"Authorization", auth}};
    os_http_client_req req;
    os_http_client_res res;
    int64_t t0 = mono_ms();

    s->status = -1;
    s->report = NULL;
    if (nf_admin_token(&fx, s->seller, tok, sizeof(tok)) != 0)
        return NULL;
    snprintf(auth, sizeof(auth), "Bearer %s", tok);
    snprintf(url, sizeof(url), "%s/admin/v1/settle", fx.sel[s->seller].admin_url);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = h;
    req.n_headers = 2;
    req.body = "{}";
    req.body_len = 2;
    os_http_client_res_init(&res);
    if (os_http_client_do(fx.http, &res, NULL, &req) == OS_OK) {
        s->status = res.status;
        s->report = json_loadb((const char *)res.body.data, res.body.len, 0, NULL);
    }
    os_http_client_res_free(&res);
    os_wipe(tok, sizeof(tok));
    os_wipe(auth, sizeof(auth));
    s->ms = mono_ms() - t0;
    return NULL;
}

/* POST /admin/v1/settle on seller i alone. */
static void settle_one(settle_job *job, int i)
{
    job->seller = i;
    (void)settle_main(job);
}

/* POST /admin/v1/settle on sellers 0 and 1 at once; jobs[i] holds seller i's answer. */
static void settle_both(settle_job jobs[2])
{
    for (int i = 0; i < 2; i++) {
        jobs[i].seller = i;
        assert_int_equal(pthread_create(&jobs[i].th, NULL, settle_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(jobs[i].th, NULL);
}

/* How many rows of a settle report have status st. */
static unsigned report_count(const json_t *report, const char *st)
{
    json_t *row;
    size_t k;
    unsigned n = 0;
    json_array_foreach(json_object_get(report, "settlements"), k, row)
    {
        const char *s = json_string_value(json_object_get(row, "status"));
        n += s != NULL && strcmp(s, st) == 0;
    }
    return n;
}

static void reconcile(unsigned skip)
{
    char why[NF_WHY] = "";
    int n = 0;
    assert_int_equal(nf_buyer_idle(&fx, 10000), 0);
    if (nf_reconcile(&fx, skip, &n, why, sizeof(why)) != 0)
        fail_msg("books disagree: %s", why);
    assert_true(n >= 2);
}

static char chan_id[2][80];

/* A third seller joins; channels to sellers 0 and 1 exist and everything earned is claimed. */
static void test_chain_baseline(void **state)
{
    char why[NF_WHY] = "";
    settle_job jobs[2];
    claims c;
    int rc;
    (void)state;
    failed = 1;

    use_proxy_rpc(true);
    rc = nf_seller(&fx, 2, OFFERS[2], NULL, NULL, why, sizeof(why));
    use_proxy_rpc(false);
    if (rc != 0)
        fail_msg("seller2: %s", why);
    assert_int_equal(nf_wait_listed(&fx, SERVICE, 3, 30000), 0);
    chat_ok(0, "baseline zero");
    chat_ok(1, "baseline one");
    for (int i = 0; i < 2; i++) {
        buyer_channel(i, chan_id[i], sizeof(chan_id[i]));
        assert_true(chan_id[i][0] != '\0');
    }
    settle_both(jobs);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(jobs[i].status, 200);
        assert_int_equal(report_count(jobs[i].report, "confirmed"), 1);
        json_decref(jobs[i].report);
        assert_claims_match(i, chan_id[i], &c);
        assert_int_equal(c.other, 0);
        n_claims += c.events;
    }
    reconcile(0);
    lap("chain_baseline");
    failed = 0;
}

/* The chain down, three times (reset, refused, reset): open channels keep paying, a new channel
 * is refused clearly and quickly, settling claims nothing; back up, one claim per seller settles
 * what was earned meanwhile. */
static void test_chain_down(void **state)
{
    char text[64];
    claims before[2], after[2];
    (void)state;
    failed = 1;

    for (int o = 0; o < OUTAGES; o++) {
        settle_job jobs[2];
        nf_res r;
        int64_t ms;
        for (int i = 0; i < 2; i++)
            count_claims(i, chan_id[i], &before[i]);
        cp_set(&cpx, o == 1 ? CP_REFUSE : CP_RESET);

        for (int k = 0; k < 6; k++) {
            snprintf(text, sizeof(text), "chain down %d.%d", o, k);
            chat_ok(k % 3 == 2 ? -1 : k % 3, text);
            n_chain_ok++;
        }
        /* settling, and meanwhile a request to seller2, which has no channel: both need the
         * chain */
        for (int i = 0; i < 2; i++) {
            jobs[i].seller = i;
            assert_int_equal(pthread_create(&jobs[i].th, NULL, settle_main, &jobs[i]), 0);
        }
        chat(&r, 2, "needs a new channel", &ms);
        for (int i = 0; i < 2; i++)
            pthread_join(jobs[i].th, NULL);
        if (r.status != 503)
            fail_msg("outage %d: a new channel: %ld after %" PRId64 " ms: %s", o, r.status, ms,
                     r.body);
        assert_openai_error(r.body, "chain_unavailable");
        assert_non_null(strstr(r.body, "the chain cannot be reached"));
        assert_true(ms < BOUND_MS);
        if (ms > new_err_ms_max)
            new_err_ms_max = ms;
        n_new_refused++;
        nf_res_free(&r);
        for (int i = 0; i < 2; i++) {
            /* the claim was tried, failed, and nothing reached the chain */
            assert_int_equal(jobs[i].status, 200);
            assert_true(jobs[i].ms < BOUND_MS);
            assert_int_equal(report_count(jobs[i].report, "confirmed"), 0);
            assert_int_equal(report_count(jobs[i].report, "failed"), 1);
            json_decref(jobs[i].report);
            count_claims(i, chan_id[i], &after[i]);
            assert_int_equal(after[i].events, before[i].events);
            assert_int_equal(after[i].confirmed, before[i].confirmed);
            n_settle_down++;
        }

        cp_set(&cpx, CP_PASS);
        settle_both(jobs);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(jobs[i].status, 200);
            assert_int_equal(report_count(jobs[i].report, "confirmed"), 1);
            json_decref(jobs[i].report);
            assert_claims_match(i, chan_id[i], &after[i]);
            assert_int_equal(after[i].events, before[i].events + 1); /* exactly one more */
            n_claims++;
        }
        reconcile(1u << 2); /* seller2's channel may be left "opening" */
    }
    lap("chain_down");
    failed = 0;
}

/* Requests swallowed by the chain: paid requests on open channels do not wait for it. */
static void test_chain_blackhole(void **state)
{
    char text[64];
    (void)state;
    failed = 1;
    cp_set(&cpx, CP_BLACKHOLE);
    rc_sleep_ms(1500); /* the sellers' refreshes are stuck in it by now */
    for (int k = 0; k < 6; k++) {
        snprintf(text, sizeof(text), "blackhole %d", k);
        chat_ok(k % 2, text);
        n_chain_ok++;
    }
    cp_set(&cpx, CP_PASS);
    lap("chain_blackhole");
    failed = 0;
}

/* The chain lost right after a claim reached it, before its answer: the claim is mined once and
 * never sent again, and the seller's view of what is claimed is the chain's. */
static void test_claim_answer_lost(void **state)
{
    claims before, after;
    settle_job job;
    (void)state;
    failed = 1;

    chat_ok(0, "earned before the cut");
    count_claims(0, chan_id[0], &before);
    cp_set(&cpx, CP_CUT);
    settle_one(&job, 0);
    assert_int_equal(job.status, 200);
    assert_int_equal(atomic_load(&cpx.cuts), 1);
    /* the seller never learnt: it records the claim as failed */
    assert_int_equal(report_count(job.report, "confirmed"), 0);
    assert_int_equal(report_count(job.report, "failed"), 1);
    json_decref(job.report);
    count_claims(0, chan_id[0], &after);
    assert_int_equal(after.events, before.events + 1); /* but it is on chain */

    cp_set(&cpx, CP_PASS);
    settle_one(&job, 0); /* the chain's claimed total says it is paid: nothing to claim */
    assert_int_equal(job.status, 200);
    assert_int_equal(json_array_size(json_object_get(job.report, "settlements")), 0);
    json_decref(job.report);
    lost_claims[0]++;
    lost_amount[0] += after.ev_amount - before.ev_amount;
    assert_claims_match(0, chan_id[0], &after);
    assert_int_equal(after.events, before.events + 1); /* mined once, never twice */
    n_claims++;
    reconcile(1u << 2);
    lap("claim_answer_lost");
    failed = 0;
}

/* The chain lost right after a claim's answer, while its receipt is awaited: the seller waits the
 * outage out and records the claim confirmed, once. */
static void test_claim_receipt_late(void **state)
{
    claims before, after;
    settle_job job;
    unsigned cuts = atomic_load(&cpx.cuts);
    (void)state;
    failed = 1;

    chat_ok(1, "earned before the late receipt");
    count_claims(1, chan_id[1], &before);
    cp_set(&cpx, CP_CUT_LATE);
    job.seller = 1;
    assert_int_equal(pthread_create(&job.th, NULL, settle_main, &job), 0);
    for (int t = 0; t < BOUND_MS && atomic_load(&cpx.cuts) == cuts; t += 10)
        rc_sleep_ms(10);
    assert_int_equal(atomic_load(&cpx.cuts), cuts + 1);
    rc_sleep_ms(2000); /* the outage, while the seller polls for the receipt */
    cp_set(&cpx, CP_PASS);
    pthread_join(job.th, NULL);
    assert_int_equal(job.status, 200);
    assert_int_equal(report_count(job.report, "confirmed"), 1);
    json_decref(job.report);
    assert_claims_match(1, chan_id[1], &after);
    assert_int_equal(after.events, before.events + 1);
    n_claims++;
    lap("claim_receipt_late");
    failed = 0;
}

/* A slow chain: paid requests on open channels as fast as ever; a new channel opens, slower. */
static void test_chain_slow(void **state)
{
    char text[64], id2[80];
    nf_res r;
    int64_t ms;
    int fast = 0;
    settle_job jobs[2];
    claims c;
    (void)state;
    failed = 1;

    cp_set(&cpx, CP_SLOW);
    for (int k = 0; k < 6; k++) {
        snprintf(text, sizeof(text), "slow chain %d", k);
        chat(&r, k % 2, text, &ms);
        assert_int_equal(r.status, 200);
        nf_res_free(&r);
        fast += ms < SLOW_MS; /* a chain call on the way would take SLOW_MS at least */
        if (ms > slow_known_ms_max)
            slow_known_ms_max = ms;
        n_chain_ok++;
    }
    assert_true(fast >= 5);
    chat(&r, 2, "a new channel, slowly", &ms);
    if (r.status != 200)
        fail_msg("a new channel on a slow chain: %ld after %" PRId64 " ms: %s", r.status, ms,
                 r.body);
    assert_string_equal(r.peer, fx.sel_hex[2]);
    nf_res_free(&r);
    slow_open_ms = ms;
    assert_true(ms >= SLOW_MS);
    assert_true(ms < 4 * BOUND_MS);
    cp_set(&cpx, CP_PASS);

    chat_ok(2, "seller two again");
    buyer_channel(2, id2, sizeof(id2));
    assert_true(id2[0] != '\0');
    reconcile(0);
    settle_both(jobs);
    for (int i = 0; i < 2; i++) {
        json_decref(jobs[i].report);
        assert_claims_match(i, chan_id[i], &c);
    }
    lap("chain_slow");
    failed = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_killed),
        cmocka_unit_test(test_registry_junk),
        cmocka_unit_test(test_registry_restarted_empty),
        cmocka_unit_test(test_chain_baseline),
        cmocka_unit_test(test_chain_down),
        cmocka_unit_test(test_chain_blackhole),
        cmocka_unit_test(test_claim_answer_lost),
        cmocka_unit_test(test_claim_receipt_late),
        cmocka_unit_test(test_chain_slow),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
