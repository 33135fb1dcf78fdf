/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: a TCP proxy on loopback that records every byte a client sends through it, so a
 * test can inspect exactly what left a daemon (for example, that a buyer's wallet address never
 * reaches a seller or a registry). One thread accepts; each connection is relayed both ways with
 * poll() until either side closes. wp_seen() searches the recorded client-to-server bytes.
 *
 * Header-only: each integration test is a single .c file.
 */
#ifndef OPENSEED_TEST_WIRE_PROXY_H
#define OPENSEED_TEST_WIRE_PROXY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WP_MAX_CONNS 64

typedef struct wire_proxy {
    int listen_fd;
    uint16_t port, target_port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    unsigned char *seen; /* client -> server bytes, all connections back to back */
    size_t seen_len, seen_cap;
    volatile int stop;
    pthread_t conns[WP_MAX_CONNS];
    size_t n_conns;
} wire_proxy;

typedef struct wp_conn {
    wire_proxy *p;
    int client, server;
} wp_conn;

static inline void wp_record(wire_proxy *p, const unsigned char *b, size_t n)
{
    pthread_mutex_lock(&p->mu);
    if (p->seen_len + n > p->seen_cap) {
        size_t cap = (p->seen_len + n) * 2;
        unsigned char *m = realloc(p->seen, cap);
        if (m == NULL) {
            pthread_mutex_unlock(&p->mu);
            return;
        }
        p->seen = m;
        p->seen_cap = cap;
    }
    memcpy(p->seen + p->seen_len, b, n);
    p->seen_len += n;
    pthread_mutex_unlock(&p->mu);
}

static inline void *wp_conn_main(void *arg)
{
    wp_conn *c = arg;
    unsigned char buf[16384];
    struct pollfd fds[2] = {{.fd = c->client, .events = POLLIN}, {.fd = c->server, .events = POLLIN}};

    while (!c->p->stop) {
        int n = poll(fds, 2, 200);
        if (n < 0)
            break;
        if (n == 0)
            continue;
        if (fds[0].revents != 0) {
            ssize_t got = read(c->client, buf, sizeof(buf));
            if (got <= 0 || write(c->server, buf, (size_t)got) != got)
                break;
            wp_record(c->p, buf, (size_t)got);
        }
        if (fds[1].revents != 0) {
            ssize_t got = read(c->server, buf, sizeof(buf));
            if (got <= 0 || write(c->client, buf, (size_t)got) != got)
                break;
        }
    }
    close(c->client);
    close(c->server);
    free(c);
    return NULL;
}

static inline void *wp_accept_main(void *arg)
{
    wire_proxy *p = arg;
    while (!p->stop) {
        struct pollfd pf = {.fd = p->listen_fd, .events = POLLIN};
        if (poll(&pf, 1, 200) <= 0)
            continue;
        int cl = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (cl < 0)
            continue;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->target_port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int sv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        wp_conn *c = malloc(sizeof(*c));
        if (sv < 0 || c == NULL || connect(sv, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            p->n_conns == WP_MAX_CONNS) {
            close(cl);
            if (sv >= 0)
                close(sv);
            free(c);
            continue;
        }
        c->p = p;
        c->client = cl;
        c->server = sv;
        if (pthread_create(&p->conns[p->n_conns], NULL, wp_conn_main, c) == 0)
            p->n_conns++;
        else {
            close(cl);
            close(sv);
            free(c);
        }
    }
    return NULL;
}

/* Starts a proxy on 127.0.0.1:<free port> to 127.0.0.1:target_port. 0 on success. */
static inline int wp_start(wire_proxy *p, uint16_t target_port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);

    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    p->target_port = target_port;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(p->listen_fd, 64) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    p->port = ntohs(sa.sin_port);
    return pthread_create(&p->acceptor, NULL, wp_accept_main, p) == 0 ? 0 : -1;
}

static inline void wp_stop(wire_proxy *p)
{
    p->stop = 1;
    pthread_join(p->acceptor, NULL);
    for (size_t i = 0; i < p->n_conns; i++)
        pthread_join(p->conns[i], NULL);
    close(p->listen_fd);
    free(p->seen);
    pthread_mutex_destroy(&p->mu);
}

/* True when needle (n bytes) occurs in the recorded client-to-server bytes; case-insensitive
 * when ci (for hex text). */
static inline bool wp_seen(wire_proxy *p, const void *needle, size_t n, bool ci)
{
    const unsigned char *nd = needle;
    bool found = false;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; !found && n > 0 && i + n <= p->seen_len; i++) {
        size_t k = 0;
        for (; k < n; k++) {
            unsigned char a = p->seen[i + k], b = nd[k];
            if (ci) {
                if (a >= 'A' && a <= 'Z')
                    a = (unsigned char)(a - 'A' + 'a');
                if (b >= 'A' && b <= 'Z')
                    b = (unsigned char)(b - 'A' + 'a');
            }
            if (a != b)
                break;
        }
        found = k == n;
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

static inline size_t wp_bytes(wire_proxy *p)
{
    size_t n;
    pthread_mutex_lock(&p->mu);
    n = p->seen_len;
    pthread_mutex_unlock(&p->mu);
    return n;
}

#endif
