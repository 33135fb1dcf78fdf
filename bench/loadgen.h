/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small HTTP/1.1 load engine for the benchmarks: pre-built requests sent over persistent
 * keep-alive connections with plain non-blocking sockets and epoll, one request in flight per
 * connection, replies framed by Content-Length or chunked transfer coding. A phase runs closed-loop (each connection sends
 * its next request as soon as the reply arrives) or open-loop at a fixed total rate (requests
 * scheduled in advance; latency counts from the scheduled time, so a stalled server cannot hide
 * its queue, as in wrk2). Every request's latency comes from CLOCK_MONOTONIC; a phase reports
 * requests, errors (non-2xx or a broken connection), req/s, p50/p90/p99/max and the CPU the
 * server process and the generator used over the measured window. A phase may also time the
 * server-sent events of streamed replies: the time to the first event that carries a token (from
 * the same start as the latency) and the gaps between such events as they arrive; events that
 * arrive in one read count as arriving together. A phase may also finish what it sent: at its end
 * no new request starts, the replies in flight are awaited for a bounded time, and totals over
 * every request sent (warm-up and finish included) are kept beside the measured window's numbers,
 * so a soak can match them against ledgers. Header-only because CMake
 * builds each bench .c file into its own program; everything here is static.
 */
#ifndef OPENSEED_BENCH_LOADGEN_H
#define OPENSEED_BENCH_LOADGEN_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE (epoll_pwait2, memmem, strcasestr) before the first #include"
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define RBUF_INIT (64u * 1024)
#define RBUF_MAX (16u * 1024 * 1024) /* a reply larger than this is an error */
#define MAX_SAMPLES_PER_WORKER (32u * 1024 * 1024)
#define REQ_MAX 8192 /* bytes of one request we write (an announce is ~1.5 KiB) */
#define CHUNK_LINE_MAX 1024 /* a chunk-size or trailer line longer than this is an error */
#define NS 1000000000LL

/* How a phase is driven. */
typedef struct lg_config {
    const char *host; /* for messages; the address itself is given to run_phase */
    unsigned port;
    unsigned conns, threads; /* connections, spread over threads */
    double warmup, duration; /* seconds: unmeasured, then measured */
    long server_pid;         /* > 0: report this process's CPU time */
    long pids[8];            /* > 0: also report these processes' CPU time (result.pid_cpu) */
    unsigned timeline_ms;    /* > 0: also print count, p99 and max per interval of this length */
} lg_config;

/* ------------------------------------------------------------------ time, CPU */

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static inline int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_until(int64_t t)
{
    int64_t d = t - mono_ns();
    if (d > 0) {
        struct timespec ts = {.tv_sec = d / NS, .tv_nsec = d % NS};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}

/* CPU seconds (user + system) a process has used, from /proc/PID/stat; -1 if unreadable. */
static inline double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    FILE *f;
    size_t n;
    const char *p;
    unsigned long long ut, st;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces; fields resume after its closing parenthesis. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static inline double self_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds every CPU of the machine has spent busy (not idle or waiting on I/O) since boot,
 * from /proc/stat; -1 if unreadable. Over a window, this minus the server's and our own CPU is
 * what other processes took: the machine is shared, so the tables say how quiet it was. */
static inline double sys_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (f == NULL)
        return -1;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return -1;
    /* user nice system idle iowait irq softirq steal: all but idle and iowait are busy. */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* ------------------------------------------------------------------ requests */

typedef struct req {
    char *data; /* one whole HTTP/1.1 request */
    size_t len;
} req;

/* One request; extra is "" or more header lines, each ending in CRLF. */
static inline bool req_build_h(req *r, const char *method, const char *path, const char *host,
                        unsigned port, const char *extra, const char *body, size_t body_len)
{
    char head[2048];
    int n;

    if (body != NULL)
        n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s:%u\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, host, port, extra, body_len);
    else
        n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s:%u\r\n%s\r\n", method,
                     path, host, port, extra);
    if (n < 0 || (size_t)n >= sizeof(head) || (size_t)n + body_len > REQ_MAX)
        return false;
    if ((r->data = malloc((size_t)n + body_len)) == NULL)
        return false;
    memcpy(r->data, head, (size_t)n);
    if (body_len > 0)
        memcpy(r->data + n, body, body_len);
    r->len = (size_t)n + body_len;
    return true;
}

static inline bool req_build(req *r, const char *method, const char *path, const char *host,
                      unsigned port, const char *body, size_t body_len)
{
    return req_build_h(r, method, path, host, port, "", body, body_len);
}

static inline void reqs_free(req *r, size_t n)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(r[i].data);
    free(r);
}

/* Which requests a connection sends, in order; a cycling queue starts over when done. */
typedef struct queue {
    uint32_t *items;
    size_t n, pos;
    bool cycle;
} queue;

/* ------------------------------------------------------------------ load engine */

typedef struct sample {
    int64_t done;    /* completion time, CLOCK_MONOTONIC ns */
    int64_t lat;     /* ns from send (closed loop) or schedule (open loop) to the whole reply */
    uint32_t body;   /* reply body bytes */
    uint16_t status; /* HTTP status; 0 = connection error */
    uint16_t count;  /* occurrences of the phase's needle in a 2xx body */
    int64_t ttft;    /* ns from the same start to the first token event; -1 none (or not timed) */
    uint32_t events; /* token events seen */
} sample;

typedef struct phase {
    const char *name;
    const req *reqs;
    queue *queues; /* one per connection */
    double rate;   /* 0 = closed loop */
    bool drain;    /* stop when every queue is done (count-bounded), not at a time */
    const char *needle;
    const char *event_needle; /* non-NULL: time SSE events whose text holds this (token events) */
    /* A 2xx reply that holds the needle still counts as without an answer when it lacks
     * tail_needle (a stream's final event) or holds bad_needle (an error event); NULL: unchecked. */
    const char *tail_needle, *bad_needle;
    int64_t finish_ns; /* > 0: after te, start nothing new and await replies for up to this long */
    int64_t t0, tw, te; /* start, end of warm-up, end (cap when draining) */
    atomic_llong exhausted_at; /* first time a non-cycling queue ran dry (timed phases) */
    atomic_int stop;
} phase;

enum { C_IDLE, C_BUSY, C_DONE };
enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_END };

typedef struct conn {
    int fd;
    int state;
    queue *q;
    const req *cur;
    size_t sent;
    int64_t t_start, next_due, interval;
    char *rbuf;
    size_t rlen, rcap, scanned, hdr_end, clen;
    int status;
    bool close_after;
    bool want_out;
    /* chunked replies are decoded in place: body bytes are moved down to rbuf + hdr_end */
    bool chunked;
    int ch_state;
    size_t ch_pos, ch_left, blen; /* raw bytes parsed, left in this chunk, body bytes decoded */
    /* event timing */
    size_t ev_pos;  /* body bytes scanned for event ends */
    size_t ev_from; /* start of the event being read */
    int64_t ttft, last_ev;
    uint32_t events;
    int64_t *gaps; /* ns between successive token events of the reply in flight */
    size_t n_gaps, cap_gaps;
} conn;

typedef struct worker {
    pthread_t tid;
    phase *ph;
    const struct sockaddr_in *addr;
    conn *conns;
    size_t n_conns;
    sample *samples;
    size_t n_samples, cap_samples;
    int64_t *gaps; /* the token gaps of every reply completed in the measured window */
    size_t n_gaps, cap_gaps;
    uint64_t reconnects;
    uint64_t started; /* requests begun, in any window */
    char err[160];
} worker;


static inline int conn_open(const struct sockaddr_in *addr)
{
    int one = 1, fl;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    /* A blocking connect is fine on loopback; the socket turns non-blocking afterwards. */
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        (fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline bool push_i64(int64_t **v, size_t *n, size_t *cap, int64_t x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        int64_t *g;
        if (nc > MAX_SAMPLES_PER_WORKER || (g = realloc(*v, nc * sizeof(*g))) == NULL)
            return false;
        *v = g;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
    return true;
}

static inline void add_sample(worker *w, int64_t done, int64_t lat, size_t body, int status,
                       unsigned count, int64_t ttft, uint32_t events)
{
    if (w->n_samples == w->cap_samples) {
        size_t nc = w->cap_samples ? w->cap_samples * 2 : 65536;
        sample *g;
        if (nc > MAX_SAMPLES_PER_WORKER)
            nc = MAX_SAMPLES_PER_WORKER;
        if (nc <= w->n_samples || (g = realloc(w->samples, nc * sizeof(*g))) == NULL)
            return; /* out of room: the sample is dropped (never with the default bounds) */
        w->samples = g;
        w->cap_samples = nc;
    }
    w->samples[w->n_samples++] = (sample){done,
                                          lat,
                                          body > UINT32_MAX ? UINT32_MAX : (uint32_t)body,
                                          (uint16_t)status,
                                          count > 65535 ? 65535 : (uint16_t)count,
                                          ttft,
                                          events};
}

static inline void conn_reopen(worker *w, conn *c, int ep)
{
    struct epoll_event ev = {.events = EPOLLIN};

    if (c->fd >= 0)
        close(c->fd);
    w->reconnects++;
    c->want_out = false;
    c->rlen = 0;
    c->state = C_IDLE;
    ev.data.ptr = c;
    if ((c->fd = conn_open(w->addr)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        snprintf(w->err, sizeof(w->err), "cannot reconnect: %s", strerror(errno));
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        c->state = C_DONE;
    }
}

/* The request in flight failed (reset, bad reply): counted as an error, then a new connection. */
static inline void conn_fail(worker *w, conn *c, int ep, int64_t now)
{
    if (c->state == C_BUSY)
        add_sample(w, now, now - c->t_start, 0, 0, 0, -1, 0);
    conn_reopen(w, c, ep);
}

static inline void want_out(conn *c, int ep, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0)};

    if (c->want_out == on)
        return;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

static inline void conn_write(worker *w, conn *c, int ep, int64_t now)
{
    while (c->sent < c->cur->len) {
        ssize_t k = send(c->fd, c->cur->data + c->sent, c->cur->len - c->sent, MSG_NOSIGNAL);
        if (k > 0) {
            c->sent += (size_t)k;
        } else if (k < 0 && errno == EINTR) {
            continue;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_out(c, ep, true);
            return;
        } else {
            conn_fail(w, c, ep, now);
            return;
        }
    }
    want_out(c, ep, false);
}

static inline void start_request(worker *w, conn *c, int ep, int64_t now)
{
    phase *ph = w->ph;
    queue *q = c->q;

    if (q->pos >= q->n) {
        if (q->cycle && q->n > 0) {
            q->pos = 0;
        } else {
            c->state = C_DONE;
            if (!ph->drain) {
                /* A timed phase that runs out of requests ends for every connection, so the
                 * concurrency never shrinks inside the measured window. */
                long long z = 0;
                atomic_compare_exchange_strong(&ph->exhausted_at, &z, (long long)now);
                atomic_store(&ph->stop, 1);
            }
            return;
        }
    }
    c->cur = &ph->reqs[q->items[q->pos++]];
    c->sent = 0;
    if (ph->rate > 0) {
        c->t_start = c->next_due;
        c->next_due += c->interval;
    } else {
        c->t_start = now;
    }
    c->rlen = c->scanned = c->hdr_end = c->clen = 0;
    c->status = 0;
    c->close_after = false;
    c->chunked = false;
    c->ch_state = CH_SIZE;
    c->ch_pos = c->ch_left = c->blen = 0;
    c->ev_pos = c->ev_from = 0;
    c->ttft = c->last_ev = -1;
    c->events = 0;
    c->n_gaps = 0;
    c->state = C_BUSY;
    w->started++;
    conn_write(w, c, ep, now);
}

/* Parses the status line and the headers we need; false for a reply we cannot frame. */
static inline bool parse_head(conn *c)
{
    const char *p = c->rbuf, *end = c->rbuf + c->hdr_end, *line;
    bool has_len = false;

    if (c->hdr_end < 16 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || p[9] < '1' ||
        p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return false;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    line = memchr(p, '\n', (size_t)(end - p));
    for (line = line != NULL ? line + 1 : end; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        size_t ll;
        if (eol == NULL)
            break;
        ll = (size_t)(eol - line);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            uint64_t v = 0;
            size_t i = 15;
            while (i < ll && line[i] == ' ')
                i++;
            if (i == ll)
                return false;
            for (; i < ll && line[i] >= '0' && line[i] <= '9'; i++) {
                v = v * 10 + (uint64_t)(line[i] - '0');
                if (v > RBUF_MAX)
                    return false;
            }
            if (i != ll)
                return false;
            c->clen = (size_t)v;
            has_len = true;
        } else if (ll > 11 && strncasecmp(line, "connection:", 11) == 0) {
            char v[64];
            size_t vl = ll - 11 < sizeof(v) - 1 ? ll - 11 : sizeof(v) - 1;
            memcpy(v, line + 11, vl);
            v[vl] = '\0';
            if (strcasestr(v, "close") != NULL)
                c->close_after = true;
        } else if (ll > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            char v[64];
            size_t vl = ll - 18 < sizeof(v) - 1 ? ll - 18 : sizeof(v) - 1;
            memcpy(v, line + 18, vl);
            v[vl] = '\0';
            if (strcasestr(v, "chunked") == NULL)
                return false;
            c->chunked = true;
        }
        line = eol + 1;
    }
    if (c->chunked) {
        if (has_len)
            return false; /* both framings: refused, as RFC 9112 §6.3 advises */
        c->ch_pos = c->hdr_end;
        return true;
    }
    if (!has_len) {
        if (c->status == 204 || c->status == 304)
            c->clen = 0;
        else
            return false;
    }
    return true;
}

static inline unsigned count_needle(const char *body, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    unsigned n = 0;
    const char *p = body, *end = body + len, *f;

    while ((f = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
        n++;
        p = f + nl;
    }
    return n;
}

/* Decodes what arrived of a chunked body in place; false on a framing error. */
static inline bool dechunk(conn *c)
{
    while (c->ch_pos < c->rlen && c->ch_state != CH_END) {
        char *p = c->rbuf + c->ch_pos;
        size_t avail = c->rlen - c->ch_pos;
        if (c->ch_state == CH_DATA) {
            size_t n = avail < c->ch_left ? avail : c->ch_left;
            memmove(c->rbuf + c->hdr_end + c->blen, p, n);
            c->blen += n;
            c->ch_pos += n;
            if ((c->ch_left -= n) == 0)
                c->ch_state = CH_DATA_END;
            continue;
        }
        if (c->ch_state == CH_DATA_END) {
            if (avail < 2)
                return true;
            if (p[0] != '\r' || p[1] != '\n')
                return false;
            c->ch_pos += 2;
            c->ch_state = CH_SIZE;
            continue;
        }
        /* CH_SIZE or CH_TRAILER: one line */
        const char *eol = memmem(p, avail, "\r\n", 2);
        if (eol == NULL)
            return avail <= CHUNK_LINE_MAX;
        size_t ll = (size_t)(eol - p);
        c->ch_pos += ll + 2;
        if (c->ch_state == CH_TRAILER) {
            if (ll == 0)
                c->ch_state = CH_END;
            continue;
        }
        uint64_t v = 0;
        size_t i = 0;
        for (; i < ll; i++) {
            int d = p[i] >= '0' && p[i] <= '9'   ? p[i] - '0'
                    : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
                    : p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 10
                                                 : -1;
            if (d < 0)
                break;
            v = v * 16 + (uint64_t)d;
            if (v > RBUF_MAX)
                return false;
        }
        if (i == 0 || (i < ll && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
            return false;
        c->ch_left = (size_t)v;
        c->ch_state = v == 0 ? CH_TRAILER : CH_DATA;
    }
    return true;
}

/* Finds the events completed in the body so far (an event ends at a blank line) and times the
 * token events among them. */
static inline void scan_events(conn *c, const char *needle, int64_t now)
{
    const char *b = c->rbuf + c->hdr_end;
    size_t nl = strlen(needle);

    while (c->ev_pos + 1 < c->blen) {
        size_t end = 0;
        for (size_t i = c->ev_pos; i + 1 < c->blen; i++) {
            if (b[i] == '\n' && b[i + 1] == '\n') {
                end = i + 2;
                break;
            }
            if (b[i] == '\n' && b[i + 1] == '\r' && i + 2 < c->blen && b[i + 2] == '\n') {
                end = i + 3;
                break;
            }
        }
        if (end == 0) {
            c->ev_pos = c->blen - 1;
            return;
        }
        if (memmem(b + c->ev_from, end - c->ev_from, needle, nl) != NULL) {
            if (c->events == 0)
                c->ttft = now - c->t_start;
            else
                (void)push_i64(&c->gaps, &c->n_gaps, &c->cap_gaps, now - c->last_ev);
            c->last_ev = now;
            c->events++;
        }
        c->ev_pos = c->ev_from = end;
    }
}

static inline void conn_read(worker *w, conn *c, int ep, int64_t now)
{
    for (;;) {
        ssize_t k;
        if (c->rlen == c->rcap) {
            size_t nc = c->rcap * 2;
            char *g;
            if (nc > RBUF_MAX || (g = realloc(c->rbuf, nc)) == NULL) {
                conn_fail(w, c, ep, now);
                return;
            }
            c->rbuf = g;
            c->rcap = nc;
        }
        k = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (k > 0) {
            c->rlen += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_fail(w, c, ep, now); /* closed by the server, or reset */
        return;
    }
    if (c->state != C_BUSY) {
        conn_fail(w, c, ep, now); /* bytes nobody asked for */
        return;
    }
    if (c->hdr_end == 0) {
        size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
        const char *e = memmem(c->rbuf + from, c->rlen - from, "\r\n\r\n", 4);
        if (e == NULL) {
            c->scanned = c->rlen;
            return;
        }
        c->hdr_end = (size_t)(e - c->rbuf) + 4;
        if (!parse_head(c)) {
            conn_fail(w, c, ep, now);
            return;
        }
    }
    if (c->chunked) {
        if (!dechunk(c)) {
            conn_fail(w, c, ep, now);
            return;
        }
    } else {
        c->blen = c->rlen - c->hdr_end < c->clen ? c->rlen - c->hdr_end : c->clen;
    }
    if (w->ph->event_needle != NULL && c->status >= 200 && c->status < 300)
        scan_events(c, w->ph->event_needle, now);
    if (c->chunked ? c->ch_state != CH_END : c->rlen < c->hdr_end + c->clen)
        return;
    if (c->rlen > (c->chunked ? c->ch_pos : c->hdr_end + c->clen)) {
        conn_fail(w, c, ep, now); /* one request in flight: nothing may follow the reply */
        return;
    }
    {
        unsigned cnt = 0;
        const char *b = c->rbuf + c->hdr_end;
        const phase *ph = w->ph;
        if (ph->needle != NULL && c->status >= 200 && c->status < 300)
            cnt = count_needle(b, c->blen, ph->needle);
        if (cnt > 0 && ((ph->tail_needle != NULL &&
                         memmem(b, c->blen, ph->tail_needle, strlen(ph->tail_needle)) == NULL) ||
                        (ph->bad_needle != NULL &&
                         memmem(b, c->blen, ph->bad_needle, strlen(ph->bad_needle)) != NULL)))
            cnt = 0;
        add_sample(w, now, now - c->t_start, c->blen, c->status, cnt, c->ttft, c->events);
        if (now >= w->ph->tw)
            for (size_t i = 0; i < c->n_gaps; i++)
                if (!push_i64(&w->gaps, &w->n_gaps, &w->cap_gaps, c->gaps[i]))
                    break;
    }
    c->state = C_IDLE;
    if (c->close_after)
        conn_reopen(w, c, ep);
}

static inline void *worker_main(void *arg)
{
    worker *w = arg;
    phase *ph = w->ph;
    struct epoll_event evs[64];
    int ep = epoll_create1(EPOLL_CLOEXEC);

    if (ep < 0) {
        snprintf(w->err, sizeof(w->err), "epoll_create1: %s", strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < w->n_conns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->conns[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, w->conns[i].fd, &ev) != 0) {
            snprintf(w->err, sizeof(w->err), "epoll_ctl: %s", strerror(errno));
            close(ep);
            return NULL;
        }
    }
    for (;;) {
        int64_t now = mono_ns(), wake = ph->te, d;
        size_t active = 0;
        struct timespec ts;
        int n;
        bool sending = now < ph->te;

        if (atomic_load(&ph->stop))
            break;
        /* After the end, a finishing phase only awaits the replies still in flight. */
        if (!sending && (ph->finish_ns <= 0 || now >= ph->te + ph->finish_ns))
            break;
        if (!sending)
            wake = ph->te + ph->finish_ns;
        for (size_t i = 0; i < w->n_conns; i++) {
            conn *c = &w->conns[i];
            if (sending && c->state == C_IDLE && (ph->rate <= 0 || c->next_due <= now))
                start_request(w, c, ep, now);
            if (sending && c->state == C_IDLE && ph->rate > 0 && c->next_due < wake)
                wake = c->next_due;
            if (sending ? c->state != C_DONE : c->state == C_BUSY)
                active++;
        }
        if (active == 0 || atomic_load(&ph->stop))
            break;
        /* In a closed loop an idle connection was just given work, so only replies wake us. */
        for (size_t i = 0; sending && ph->rate <= 0 && i < w->n_conns; i++)
            if (w->conns[i].state == C_IDLE)
                wake = now;
        d = wake - now;
        if (d < 0)
            d = 0;
        ts.tv_sec = d / NS;
        ts.tv_nsec = d % NS;
        n = epoll_pwait2(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), &ts, NULL);
        if (n < 0 && errno != EINTR) {
            snprintf(w->err, sizeof(w->err), "epoll_pwait2: %s", strerror(errno));
            break;
        }
        now = mono_ns();
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->state == C_DONE || c->fd < 0)
                continue;
            if ((evs[i].events & EPOLLOUT) && c->state == C_BUSY && c->sent < c->cur->len)
                conn_write(w, c, ep, now);
            if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->state != C_DONE)
                conn_read(w, c, ep, now);
        }
    }
    close(ep);
    return NULL;
}

/* ------------------------------------------------------------------ phases and results */

typedef struct result {
    char name[48];
    uint64_t requests, errors, conn_errors, reconnects;
    double seconds, rps;
    double p50, p90, p99, max; /* ms */
    /* token events of streamed 2xx replies (phases with an event_needle) */
    uint64_t ttft_n, gap_n;
    double ttft_p50, ttft_p90, ttft_p99, ttft_max; /* ms */
    double gap_p50, gap_p90, gap_p99, gap_max;     /* ms */
    double avg_events;
    double srv_cpu, gen_cpu;   /* fraction of one CPU over the window; -1 unknown */
    double other_cpu;          /* the rest of the machine's busy CPU over the window; -1 unknown */
    double avg_body, avg_count;
    uint64_t no_needle;  /* 2xx replies without the phase's needle (counted in errors too) */
    /* every request begun, in any window: answered (2xx with the needle), failed, and still in
     * flight when the phase ended; all_statuses as statuses, over all of them */
    uint64_t all_sent, all_ok, all_failed, all_unfinished;
    char all_statuses[160];
    double pid_cpu[8];   /* fraction of one CPU of lg_config.pids over the window; -1 unknown */
    char statuses[160];
    char note[192];
} result;

static inline int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static inline double pct_ms(const int64_t *v, size_t n, double p)
{
    size_t k;
    if (n == 0)
        return 0;
    k = (size_t)((double)n * p + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return (double)v[k - 1] / 1e6;
}

/* Prints, per interval of the measured window, completed requests, p99 and max latency: periodic
 * stalls (a background pass holding a lock, a burst of CPU elsewhere) show up here. */
static inline void print_timeline(const char *name, const worker *ws, unsigned T, int64_t from,
                           int64_t to, unsigned step_ms)
{
    const int64_t step = (int64_t)step_ms * 1000000;
    size_t nb = (size_t)((to - from + step - 1) / step), total = 0;
    size_t *cnt = calloc(nb ? nb : 1, sizeof(*cnt)), *fill;
    int64_t **lat = calloc(nb ? nb : 1, sizeof(*lat));

    fill = calloc(nb ? nb : 1, sizeof(*fill));
    if (cnt == NULL || lat == NULL || fill == NULL)
        goto out;
    for (unsigned t = 0; t < T; t++)
        for (size_t i = 0; i < ws[t].n_samples; i++)
            if (ws[t].samples[i].done >= from && ws[t].samples[i].done < to)
                cnt[(size_t)((ws[t].samples[i].done - from) / step)]++;
    for (size_t b = 0; b < nb; b++)
        if ((lat[b] = malloc((cnt[b] ? cnt[b] : 1) * sizeof(int64_t))) == NULL)
            goto out;
    for (unsigned t = 0; t < T; t++)
        for (size_t i = 0; i < ws[t].n_samples; i++) {
            const sample *sm = &ws[t].samples[i];
            if (sm->done >= from && sm->done < to && sm->status != 0) {
                size_t b = (size_t)((sm->done - from) / step);
                lat[b][fill[b]++] = sm->lat;
            }
        }
    printf("  timeline of %s (every %u ms: t, requests, p99 ms, max ms)\n", name, step_ms);
    for (size_t b = 0; b < nb; b++) {
        qsort(lat[b], fill[b], sizeof(int64_t), cmp_i64);
        total += cnt[b];
        printf("    %7.2f s %7zu %9.3f %9.3f\n", (double)b * step_ms / 1000.0, cnt[b],
               pct_ms(lat[b], fill[b], 0.99), fill[b] ? (double)lat[b][fill[b] - 1] / 1e6 : 0.0);
    }
out:
    for (size_t b = 0; lat != NULL && b < nb; b++)
        free(lat[b]);
    free(lat);
    free(cnt);
    free(fill);
}

/* "STATUS:COUNT ..." of the non-2xx statuses (0: connection errors) into out. */
static inline void status_string(char *out, size_t cap, const uint64_t by_status[600])
{
    size_t off = 0;

    out[0] = '\0';
    for (unsigned s = 0; s < 600 && off < cap; s++) {
        int m;
        if (by_status[s] == 0 || (s >= 200 && s < 300))
            continue;
        if (s == 0)
            m = snprintf(out + off, cap - off, "%sconnection:%" PRIu64, off ? " " : "",
                         by_status[s]);
        else
            m = snprintf(out + off, cap - off, "%s%u:%" PRIu64, off ? " " : "", s, by_status[s]);
        if (m < 0)
            break;
        off += (size_t)m;
    }
}

/* Runs one phase over fresh connections and fills res. false when it could not run at all. */
static inline bool run_phase(const lg_config *o, const struct sockaddr_in *addr, phase *ph, result *res)
{
    const unsigned K = o->conns, T = o->threads;
    conn *conns = calloc(K, sizeof(*conns));
    worker *ws = calloc(T, sizeof(*ws));
    int64_t *lat = NULL, *ttft = NULL, *gaps = NULL, w0, w1, wend;
    size_t n_ttft = 0, n_gaps = 0;
    double sum_events = 0;
    double srv0 = -1, srv1 = -1, gen0, gen1, sys0, sys1, pc0[8], pc1[8];
    uint64_t by_status[600] = {0}, all_by_status[600] = {0};
    size_t total = 0, nl = 0;
    unsigned started = 0;
    double sum_body = 0, sum_count = 0;
    uint64_t n_ok = 0;
    bool ok = false;

    if (conns == NULL || ws == NULL)
        goto out;
    for (unsigned i = 0; i < K; i++) {
        conns[i].fd = -1;
        conns[i].q = &ph->queues[i];
        conns[i].rcap = RBUF_INIT;
        if ((conns[i].rbuf = malloc(RBUF_INIT)) == NULL ||
            (conns[i].fd = conn_open(addr)) < 0) {
            fprintf(stderr, "loadgen: cannot connect to %s:%u: %s\n", o->host, o->port,
                    strerror(errno));
            goto out;
        }
    }
    atomic_store(&ph->stop, 0);
    atomic_store(&ph->exhausted_at, 0);
    ph->t0 = mono_ns();
    ph->tw = ph->drain ? ph->t0 : ph->t0 + (int64_t)(o->warmup * 1e9);
    ph->te = ph->drain ? ph->t0 + 600 * NS : ph->tw + (int64_t)(o->duration * 1e9);
    for (unsigned i = 0; i < K; i++) {
        if (ph->rate > 0) {
            conns[i].interval = (int64_t)((double)K * 1e9 / ph->rate);
            conns[i].next_due = ph->t0 + conns[i].interval * i / K;
        }
    }
    for (unsigned t = 0; t < T; t++) {
        size_t a = (size_t)K * t / T, b = (size_t)K * (t + 1) / T;
        ws[t].ph = ph;
        ws[t].addr = addr;
        ws[t].conns = conns + a;
        ws[t].n_conns = b - a;
    }
    for (unsigned t = 0; t < T; t++) {
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0) {
            atomic_store(&ph->stop, 1);
            break;
        }
        started++;
    }
    sleep_until(ph->tw);
    w0 = mono_ns();
    if (o->server_pid > 0)
        srv0 = proc_cpu_s(o->server_pid);
    for (unsigned i = 0; i < 8; i++)
        pc0[i] = o->pids[i] > 0 ? proc_cpu_s(o->pids[i]) : -1;
    gen0 = self_cpu_s();
    sys0 = sys_busy_s();
    for (unsigned t = 0; t < started; t++)
        pthread_join(ws[t].tid, NULL);
    w1 = mono_ns();
    if (o->server_pid > 0)
        srv1 = proc_cpu_s(o->server_pid);
    for (unsigned i = 0; i < 8; i++)
        pc1[i] = o->pids[i] > 0 ? proc_cpu_s(o->pids[i]) : -1;
    gen1 = self_cpu_s();
    sys1 = sys_busy_s();
    if (started < T) {
        fprintf(stderr, "loadgen: cannot start the sending threads\n");
        goto out;
    }
    for (unsigned t = 0; t < T; t++) {
        if (ws[t].err[0] != '\0') {
            fprintf(stderr, "loadgen: %s: %s\n", ph->name, ws[t].err);
            snprintf(res->note, sizeof(res->note), "connections lost: %s", ws[t].err);
        }
        total += ws[t].n_samples;
        n_gaps += ws[t].n_gaps;
        res->reconnects += ws[t].reconnects;
        res->all_sent += ws[t].started;
    }
    /* Totals over every request, whatever its window: what a ledger must hold. */
    for (unsigned t = 0; t < T; t++)
        for (size_t i = 0; i < ws[t].n_samples; i++) {
            const sample *s = &ws[t].samples[i];
            all_by_status[s->status < 600 ? s->status : 0]++;
            if (s->status >= 200 && s->status < 300 && (ph->needle == NULL || s->count > 0))
                res->all_ok++;
            else
                res->all_failed++;
        }
    for (unsigned i = 0; i < K; i++)
        if (conns[i].state == C_BUSY)
            res->all_unfinished++;
    status_string(res->all_statuses, sizeof(res->all_statuses), all_by_status);

    /* The measured window: warm-up end to the planned end, or to when requests ran out. */
    wend = ph->te;
    if (atomic_load(&ph->exhausted_at) != 0 && atomic_load(&ph->exhausted_at) < wend) {
        wend = atomic_load(&ph->exhausted_at);
        snprintf(res->note, sizeof(res->note), "ran out of pre-signed requests after %.1f s",
                 (double)(wend - ph->tw) / 1e9);
    }
    if (ph->drain) {
        wend = ph->tw;
        for (unsigned t = 0; t < T; t++)
            for (size_t i = 0; i < ws[t].n_samples; i++)
                if (ws[t].samples[i].done > wend)
                    wend = ws[t].samples[i].done;
    }
    if ((lat = malloc((total ? total : 1) * sizeof(*lat))) == NULL ||
        (ttft = malloc((total ? total : 1) * sizeof(*ttft))) == NULL ||
        (gaps = malloc((n_gaps ? n_gaps : 1) * sizeof(*gaps))) == NULL)
        goto out;
    n_gaps = 0;
    for (unsigned t = 0; t < T; t++) {
        memcpy(gaps + n_gaps, ws[t].gaps, ws[t].n_gaps * sizeof(*gaps));
        n_gaps += ws[t].n_gaps;
    }
    for (unsigned t = 0; t < T; t++) {
        for (size_t i = 0; i < ws[t].n_samples; i++) {
            const sample *s = &ws[t].samples[i];
            if (s->done < ph->tw || s->done > wend)
                continue;
            res->requests++;
            by_status[s->status < 600 ? s->status : 0]++;
            if (s->status == 0) {
                res->conn_errors++;
                res->errors++;
                continue;
            }
            if (s->status < 200 || s->status >= 300)
                res->errors++;
            else if (ph->needle != NULL && s->count == 0) {
                res->no_needle++;
                res->errors++;
            } else {
                n_ok++;
                sum_body += s->body;
                sum_count += s->count;
                sum_events += s->events;
                if (s->ttft >= 0)
                    ttft[n_ttft++] = s->ttft;
            }
            lat[nl++] = s->lat;
        }
    }
    qsort(lat, nl, sizeof(*lat), cmp_i64);
    res->seconds = (double)(wend - ph->tw) / 1e9;
    res->rps = res->seconds > 0 ? (double)res->requests / res->seconds : 0;
    res->p50 = pct_ms(lat, nl, 0.50);
    res->p90 = pct_ms(lat, nl, 0.90);
    res->p99 = pct_ms(lat, nl, 0.99);
    res->max = nl ? (double)lat[nl - 1] / 1e6 : 0;
    qsort(ttft, n_ttft, sizeof(*ttft), cmp_i64);
    qsort(gaps, n_gaps, sizeof(*gaps), cmp_i64);
    res->ttft_n = n_ttft;
    res->ttft_p50 = pct_ms(ttft, n_ttft, 0.50);
    res->ttft_p90 = pct_ms(ttft, n_ttft, 0.90);
    res->ttft_p99 = pct_ms(ttft, n_ttft, 0.99);
    res->ttft_max = n_ttft ? (double)ttft[n_ttft - 1] / 1e6 : 0;
    res->gap_n = n_gaps;
    res->gap_p50 = pct_ms(gaps, n_gaps, 0.50);
    res->gap_p90 = pct_ms(gaps, n_gaps, 0.90);
    res->gap_p99 = pct_ms(gaps, n_gaps, 0.99);
    res->gap_max = n_gaps ? (double)gaps[n_gaps - 1] / 1e6 : 0;
    res->avg_events = n_ok ? sum_events / (double)n_ok : 0;
    res->srv_cpu = srv0 >= 0 && srv1 >= 0 && w1 > w0 ? (srv1 - srv0) / ((double)(w1 - w0) / 1e9) : -1;
    res->gen_cpu = w1 > w0 ? (gen1 - gen0) / ((double)(w1 - w0) / 1e9) : -1;
    for (unsigned i = 0; i < 8; i++)
        res->pid_cpu[i] = pc0[i] >= 0 && pc1[i] >= 0 && w1 > w0
                              ? (pc1[i] - pc0[i]) / ((double)(w1 - w0) / 1e9)
                              : -1;
    res->other_cpu = -1;
    if (sys0 >= 0 && sys1 >= 0 && w1 > w0) {
        res->other_cpu = (sys1 - sys0) / ((double)(w1 - w0) / 1e9) - res->gen_cpu -
                         (res->srv_cpu > 0 ? res->srv_cpu : 0);
        for (unsigned i = 0; i < 8; i++)
            res->other_cpu -= res->pid_cpu[i] > 0 ? res->pid_cpu[i] : 0;
        if (res->other_cpu < 0)
            res->other_cpu = 0; /* tick accounting is coarse */
    }
    res->avg_body = n_ok ? sum_body / (double)n_ok : 0;
    res->avg_count = n_ok ? sum_count / (double)n_ok : 0;
    if (o->timeline_ms > 0)
        print_timeline(ph->name, ws, T, ph->tw, wend, o->timeline_ms);
    status_string(res->statuses, sizeof(res->statuses), by_status);
    ok = true;
out:
    free(lat);
    free(ttft);
    free(gaps);
    if (ws != NULL)
        for (unsigned t = 0; t < T; t++) {
            free(ws[t].samples);
            free(ws[t].gaps);
        }
    if (conns != NULL)
        for (unsigned i = 0; i < K; i++) {
            if (conns[i].fd >= 0)
                close(conns[i].fd);
            free(conns[i].rbuf);
            free(conns[i].gaps);
        }
    free(ws);
    free(conns);
    return ok;
}

static inline queue *queues_new(unsigned k)
{
    return calloc(k, sizeof(queue));
}

static inline void queues_free(queue *q, unsigned k)
{
    if (q == NULL)
        return;
    for (unsigned i = 0; i < k; i++)
        free(q[i].items);
    free(q);
}

static inline void cpus_allowed(char *out, size_t cap, long pid)
{
    char path[64], line[256];
    FILE *f;

    snprintf(out, cap, "?");
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    if ((f = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
            const char *v = line + 18;
            size_t l;
            while (*v == ' ' || *v == '\t')
                v++;
            l = strcspn(v, "\n");
            snprintf(out, cap, "%.*s", (int)l, v);
            break;
        }
    }
    fclose(f);
}

static inline void cpu_model(char *out, size_t cap)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(out, cap, "unknown CPU");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && c != NULL) {
            c++;
            while (*c == ' ')
                c++;
            snprintf(out, cap, "%.*s", (int)strcspn(c, "\n"), c);
            break;
        }
    }
    fclose(f);
}

static inline void print_result(const result *r, bool header)
{
    char srv[16], gen[16], oth[16], per[16];

    if (header)
        printf("%-16s %9s %6s %8s %8s %8s %8s %8s %7s %7s %7s %8s\n", "phase", "requests",
               "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "srv CPU", "gen CPU",
               "other", "srv us/r");
    if (r->srv_cpu >= 0) {
        snprintf(srv, sizeof(srv), "%.0f%%", r->srv_cpu * 100);
        snprintf(per, sizeof(per), "%.1f",
                 r->requests ? r->srv_cpu * r->seconds * 1e6 / (double)r->requests : 0.0);
    } else {
        snprintf(srv, sizeof(srv), "-");
        snprintf(per, sizeof(per), "-");
    }
    snprintf(gen, sizeof(gen), "%.0f%%", r->gen_cpu * 100);
    if (r->other_cpu >= 0)
        snprintf(oth, sizeof(oth), "%.0f%%", r->other_cpu * 100);
    else
        snprintf(oth, sizeof(oth), "-");
    printf("%-16s %9" PRIu64 " %6" PRIu64 " %8.0f %8.3f %8.3f %8.3f %8.3f %7s %7s %7s %8s\n",
           r->name, r->requests, r->errors, r->rps, r->p50, r->p90, r->p99, r->max, srv, gen, oth,
           per);
}

static inline void print_details(const result *r)
{
    printf("  %-14s %.2f s measured", r->name, r->seconds);
    if (r->avg_count > 0)
        printf(", %.1f peers and %.0f bytes per reply", r->avg_count, r->avg_body);
    if (r->statuses[0] != '\0')
        printf(", non-2xx: %s", r->statuses);
    if (r->reconnects > 0)
        printf(", reconnects: %" PRIu64, r->reconnects);
    if (r->note[0] != '\0')
        printf(", %s", r->note);
    printf("\n");
}

/* The result as a JSON object (times in ms, CPU as fractions of one CPU, null when unknown);
 * the caller owns it. NULL when out of memory. */
static inline json_t *result_json(const result *r)
{
    json_t *j = json_object();
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "phase", json_string(r->name));
    json_object_set_new(j, "seconds", json_real(r->seconds));
    json_object_set_new(j, "requests", json_integer((json_int_t)r->requests));
    json_object_set_new(j, "errors", json_integer((json_int_t)r->errors));
    json_object_set_new(j, "statuses", json_string(r->statuses));
    json_object_set_new(j, "rps", json_real(r->rps));
    json_object_set_new(j, "p50_ms", json_real(r->p50));
    json_object_set_new(j, "p90_ms", json_real(r->p90));
    json_object_set_new(j, "p99_ms", json_real(r->p99));
    json_object_set_new(j, "max_ms", json_real(r->max));
    json_object_set_new(j, "server_cpu", r->srv_cpu >= 0 ? json_real(r->srv_cpu) : json_null());
    json_object_set_new(j, "loadgen_cpu", r->gen_cpu >= 0 ? json_real(r->gen_cpu) : json_null());
    json_object_set_new(j, "other_cpu", r->other_cpu >= 0 ? json_real(r->other_cpu) : json_null());
    json_object_set_new(j, "reconnects", json_integer((json_int_t)r->reconnects));
    json_object_set_new(j, "note", json_string(r->note));
    return j;
}

#endif
