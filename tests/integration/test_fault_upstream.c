/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Faults behind and under one seller, with the network as real processes (netfix.h: anvil, the
 * registry, one openseed-seller, the buyer) and a client posting to the buyer as an OpenAI client
 * would. One seller on purpose: with two, the buyer fails over and the client never sees the
 * fault; here it must see a clear error, and the books of both daemons must show what happened.
 *
 * Upstream faults: the seller's OpenAI upstream is a fake model server inside this process (a
 * small threaded TCP server on loopback) whose behaviour the test switches per request: it hangs
 * (reads the request, never answers), resets the connection, sends bytes that are not HTTP,
 * answers 200 with a body that is not JSON, or with an event stream holding no events, or with
 * events of junk, answers 429 with Retry-After or 500, cuts a stream after two tokens, or stalls
 * after two tokens. The seller runs with short upstream limits (first byte and stall 1 s, whole
 * call 4 s) so that every hang is bounded. Each fault runs 3 times (the slow ones 3 at once) and
 * each time: the client's error is in the OpenAI shape with the status the buyer documents (502
 * before the answer started; a 200 stream ending in an error event, never [DONE], after), within
 * a generous bound; a request that produced nothing costs 0 in the buyer's ledger and in the
 * seller's request rows, the channel's consumed does not move, and the two agree
 * (nf_reconcile); a stream cut after two tokens is charged, the same in both books, for those
 * tokens and the prompt; a normal request afterwards is answered.
 *
 * Storage faults: seller.db write-locked by another connection (this test holds BEGIN EXCLUSIVE
 * on it) and writes failing as on a full disk (RLIMIT_FSIZE lowered on the running seller with
 * prlimit: its writes fail with EFBIG, the seller ignores SIGXFSZ). A paid request is then refused
 * with 503 "storage_unavailable" and Retry-After before any upstream work (seen directly, with a
 * hand-made buyer on a second channel: test_buyer.h; and for a third channel the seller first
 * hears of while its disk is full), the fake upstream gets nothing, no voucher or request row is
 * added; the buyer, whose only seller refused, answers its client 502 in the OpenAI shape naming
 * the seller's code, and books the attempt at cost 0; once the lock is released or the limit
 * lifted, every channel is served again. Each storage fault runs 3 times. Last, a second seller
 * (builtin:echo, ten times the price) joins: with seller0's disk full, the buyer fails over on
 * its 503 and the client is served by the other seller, seller0 booking nothing.
 */
#define _GNU_SOURCE 1 /* nftw (registry_client.h), prlimit, strcasestr */
#include "testutil.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sqlite3.h>

#include "netfix.h"
#include "test_buyer.h"

#define CHAIN 31337
#define SERVICE "fake"
#define BOUND_MS 30000      /* every fault here is bounded by a 1-4 s limit; this is generous */
#define LOCK_BOUND_MS 45000 /* a locked database: 5 s busy timeout, maybe twice (refresh) */
#define REPS 3

static netfix fx;
static int failed;
static char chan_hex[80]; /* the buyer's channel to seller0 */
static tbuyer tb;         /* a hand-made buyer on a second channel, for the seller's own answers */
static bool tb_ready;
static char tb_chan_hex[80];
static tbuyer tb_new; /* a third channel, which the seller first hears of while it cannot write */
static bool tb_new_ready;

/* ---- the fake upstream ---------------------------------------------------------------------- */

enum {
    UP_OK = 0,
    UP_HANG,      /* reads the request, never answers */
    UP_RESET,     /* reads the request, closes with SO_LINGER 0 (RST) */
    UP_GARBAGE,   /* bytes that are not HTTP */
    UP_NOT_JSON,  /* 200 application/json whose body is HTML */
    UP_SSE_NOISE, /* 200 text/event-stream holding lines but no event */
    UP_SSE_JUNK,  /* 200 text/event-stream whose events are not JSON, then the end */
    UP_429,       /* 429 with Retry-After */
    UP_500,       /* 500 */
    UP_CUT,       /* a chunked stream cut after two tokens */
    UP_STALL,     /* two tokens, then silence */
};

typedef struct fake_up {
    int fd;
    uint16_t port;
    pthread_t acceptor;
    bool started;
    atomic_int mode;
    atomic_int stop;
    atomic_int requests; /* requests read, whatever the answer */
    atomic_int live;     /* connection threads still running */
} fake_up;

static fake_up up;

static bool up_send(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static bool up_sends(int fd, const char *s)
{
    return up_send(fd, s, strlen(s));
}

/* One HTTP/1.1 chunk. */
static bool up_chunk(int fd, const char *data)
{
    char head[32];
    snprintf(head, sizeof(head), "%zx\r\n", strlen(data));
    return up_sends(fd, head) && up_sends(fd, data) && up_sends(fd, "\r\n");
}

/* A whole answer with Content-Length. */
static void up_whole(int fd, const char *status_line, const char *extra, const char *body)
{
    char head[512];
    snprintf(head, sizeof(head),
             "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             status_line, extra, strlen(body));
    if (up_sends(fd, head))
        (void)up_sends(fd, body);
}

/* Holds the connection open without a word until the peer gives up (or the server stops). */
static void up_hold(int fd)
{
    char b[512];
    while (!atomic_load(&up.stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r < 0 && errno != EINTR)
            return;
        if (r > 0 && recv(fd, b, sizeof(b), 0) <= 0)
            return;
    }
}

/* Reads one request: headers, then Content-Length bytes of body. *stream: it asks for a stream. */
static bool up_read(int fd, bool *stream)
{
    static const size_t cap = 64 * 1024;
    char *buf = malloc(cap + 1);
    size_t len = 0, body_at = 0;
    long want = -1;
    int64_t t0 = rc_now_ms();
    bool ok = false;

    if (buf == NULL)
        return false;
    buf[0] = '\0';
    while (rc_now_ms() - t0 < 10000 && !atomic_load(&up.stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (want >= 0 && len - body_at >= (size_t)want) {
            ok = true;
            break;
        }
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (len >= cap || (n = recv(fd, buf + len, cap - len, 0)) <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (want < 0) {
            char *end = strstr(buf, "\r\n\r\n"), *cl;
            if (end == NULL)
                continue;
            body_at = (size_t)(end + 4 - buf);
            *end = '\0';
            cl = strcasestr(buf, "\r\ncontent-length:");
            want = cl != NULL ? strtol(cl + 17, NULL, 10) : 0;
            if (strcasestr(buf, "100-continue") != NULL)
                (void)up_sends(fd, "HTTP/1.1 100 Continue\r\n\r\n");
            *end = '\r';
            if (want < 0)
                break;
        }
    }
    *stream = ok && strstr(buf + body_at, "\"stream\":true") != NULL;
    free(buf);
    return ok;
}

#define CHUNK_OF(delta, finish)                                                                    \
    "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":1700000000," \
    "\"model\":\"fake-1\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish \
    "}]}\n\n"

static const char sse_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                               "Connection: close\r\n\r\n";
/* close-delimited: the body ends when the connection does */
static const char sse_head_close[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                     "Connection: close\r\n\r\n";
static const char *const ok_events[] = {
    CHUNK_OF("{\"role\":\"assistant\",\"content\":\"all\"}", "null"),
    CHUNK_OF("{\"content\":\" good\"}", "null"),
    CHUNK_OF("{}", "\"stop\""),
    "data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"fake-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
    "\"total_tokens\":5}}\n\n",
    "data: [DONE]\n\n",
};
static const char *const cut_events[] = {
    CHUNK_OF("{\"role\":\"assistant\",\"content\":\"Hel\"}", "null"),
    CHUNK_OF("{\"content\":\"lo\"}", "null"),
};
static const char ok_whole[] =
    "{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":"
    "\"fake-1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"all good\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
    "\"completion_tokens\":2,\"total_tokens\":5}}";

/* a TLS record header, a NUL and control bytes: no HTTP status line */
static const char garbage[] = "\x16\x03\x01\x02\x00\xff garbage, not HTTP at all\r\n\r\n\x01";

static void up_answer(int *fdp, int mode, bool stream)
{
    int fd = *fdp;

    switch (mode) {
    case UP_OK:
        if (!stream) {
            up_whole(fd, "200 OK", "", ok_whole);
            break;
        }
        if (!up_sends(fd, sse_head))
            break;
        for (size_t i = 0; i < sizeof(ok_events) / sizeof(ok_events[0]); i++)
            if (!up_chunk(fd, ok_events[i]))
                return;
        (void)up_sends(fd, "0\r\n\r\n");
        break;
    case UP_HANG:
        up_hold(fd);
        break;
    case UP_RESET: {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        close(fd);
        *fdp = -1;
        break;
    }
    case UP_GARBAGE:
        (void)up_send(fd, garbage, sizeof(garbage) - 1);
        break;
    case UP_NOT_JSON:
        up_whole(fd, "200 OK", "", "<html><body><h1>It works!</h1></body></html>");
        break;
    case UP_SSE_NOISE:
        if (up_sends(fd, sse_head_close))
            (void)up_sends(fd, "<html>this is not an event stream</html>\nrandom: noise\n\n"
                               ": a comment\n\nretry: x\n\n");
        break;
    case UP_SSE_JUNK:
        if (up_sends(fd, sse_head_close))
            (void)up_sends(fd, "data: {\"choices\":[{\"delta\":\n\ndata: junk-not-json\n\n");
        break;
    case UP_429:
        up_whole(fd, "429 Too Many Requests", "Retry-After: 7\r\n",
                 "{\"error\":{\"message\":\"Rate limit reached for requests\",\"type\":"
                 "\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}");
        break;
    case UP_500:
        up_whole(fd, "500 Internal Server Error", "",
                 "{\"error\":{\"message\":\"The server had an error while processing your "
                 "request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
        break;
    case UP_CUT:
    case UP_STALL:
        if (!up_sends(fd, sse_head) || !up_chunk(fd, cut_events[0]) || !up_chunk(fd, cut_events[1]))
            break;
        if (mode == UP_STALL)
            up_hold(fd);
        else
            rc_sleep_ms(50); /* then closed without the last chunk: the transfer is cut */
        break;
    default:
        break;
    }
}

static void *up_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    bool stream = false;

    if (up_read(fd, &stream)) {
        atomic_fetch_add(&up.requests, 1);
        up_answer(&fd, atomic_load(&up.mode), stream);
    }
    if (fd >= 0)
        close(fd);
    atomic_fetch_sub(&up.live, 1);
    return NULL;
}

static void *up_accept(void *arg)
{
    (void)arg;
    while (!atomic_load(&up.stop)) {
        struct pollfd p = {.fd = up.fd, .events = POLLIN};
        pthread_t th;
        pthread_attr_t at;
        int c;
        if (poll(&p, 1, 100) <= 0)
            continue;
        if ((c = accept(up.fd, NULL, NULL)) < 0)
            continue;
        atomic_fetch_add(&up.live, 1);
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, up_conn, (void *)(intptr_t)c) != 0) {
            close(c);
            atomic_fetch_sub(&up.live, 1);
        }
        pthread_attr_destroy(&at);
    }
    return NULL;
}

static int up_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int one = 1;

    memset(&up, 0, sizeof(up));
    atomic_init(&up.mode, UP_OK);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((up.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    (void)setsockopt(up.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(up.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(up.fd, 64) != 0 ||
        getsockname(up.fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    up.port = ntohs(sa.sin_port);
    if (pthread_create(&up.acceptor, NULL, up_accept, NULL) != 0)
        return -1;
    up.started = true;
    return 0;
}

static void up_stop(void)
{
    if (!up.started)
        return;
    atomic_store(&up.stop, 1);
    pthread_join(up.acceptor, NULL);
    for (int i = 0; i < 100 && atomic_load(&up.live) > 0; i++)
        rc_sleep_ms(50); /* each connection thread looks at stop every 100 ms */
    close(up.fd);
    up.started = false;
}

/* ---- the books ------------------------------------------------------------------------------ */

/* A string field, "" when absent or not a string. */
static const char *j_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

static int64_t j_int(const json_t *o, const char *k)
{
    uint64_t v = 0;
    return nf_money(json_object_get(o, k), &v) ? (int64_t)v : -1;
}

/* The buyer's ledger rows newer than id `after` (a new array, newest first). */
static json_t *buyer_rows_after(int64_t after)
{
    long st;
    json_t *j = nf_buyer_get(&fx, &st, "/openseed/v1/ledger"), *out = json_array(), *r;
    size_t i;
    json_array_foreach(json_object_get(j, "requests"), i, r)
    {
        if (j_int(r, "id") > after)
            json_array_append(out, r);
    }
    json_decref(j);
    return out;
}

/* Seller0's request rows on channel hex newer than id `after` (a new array, newest first). */
static json_t *seller_rows_after(const char *hex, int64_t after)
{
    char path[192];
    long st;
    json_t *j, *out = json_array(), *r;
    size_t i;
    snprintf(path, sizeof(path), "/admin/v1/requests?channel=%s&limit=50", hex);
    j = nf_admin(&fx, 0, &st, path, NULL);
    json_array_foreach(json_object_get(j, "requests"), i, r)
    {
        if (j_int(r, "id") > after)
            json_array_append(out, r);
    }
    json_decref(j);
    return out;
}

/* What one channel's books say, seen from both daemons (the buyer's side only for its own). */
typedef struct books {
    int64_t b_last, s_last; /* newest request row ids */
    uint64_t b_consumed, s_consumed;
    size_t s_vouchers;    /* seller0's voucher rows for the channel */
    int64_t s_last_nonce; /* its newest voucher's nonce */
    int up_requests;      /* requests the fake upstream read */
} books;

static void take_books(books *k, const char *hex, bool buyer_side)
{
    char path[192];
    long st;
    json_t *j, *r;
    size_t i;

    memset(k, 0, sizeof(*k));
    k->b_last = -1;
    k->s_last = -1;
    k->s_last_nonce = -1;
    if (buyer_side) {
        j = nf_buyer_get(&fx, &st, "/openseed/v1/ledger");
        r = json_array_get(json_object_get(j, "requests"), 0);
        k->b_last = r != NULL ? j_int(r, "id") : 0;
        json_decref(j);
        j = nf_buyer_get(&fx, &st, "/openseed/v1/channels");
        json_array_foreach(json_object_get(j, "channels"), i, r)
        {
            const char *id = json_string_value(json_object_get(r, "channel_id"));
            if (id != NULL && strcasecmp(id, hex) == 0)
                (void)nf_money(json_object_get(r, "consumed"), &k->b_consumed);
        }
        json_decref(j);
    }
    snprintf(path, sizeof(path), "/admin/v1/requests?channel=%s&limit=1", hex);
    j = nf_admin(&fx, 0, &st, path, NULL);
    r = json_array_get(json_object_get(j, "requests"), 0);
    k->s_last = r != NULL ? j_int(r, "id") : 0;
    json_decref(j);
    snprintf(path, sizeof(path), "/admin/v1/vouchers?channel=%s&limit=1000", hex);
    j = nf_admin(&fx, 0, &st, path, NULL);
    k->s_vouchers = json_array_size(json_object_get(j, "vouchers"));
    r = json_array_get(json_object_get(j, "vouchers"), 0);
    k->s_last_nonce = r != NULL ? j_int(r, "nonce") : -1;
    json_decref(j);
    j = nf_admin(&fx, 0, &st, "/admin/v1/channels", NULL);
    json_array_foreach(json_object_get(j, "channels"), i, r)
    {
        const char *id = json_string_value(json_object_get(r, "channel_id"));
        if (id != NULL && strcasecmp(id, hex) == 0)
            (void)nf_money(json_object_get(r, "consumed"), &k->s_consumed);
    }
    json_decref(j);
    k->up_requests = atomic_load(&up.requests);
}

/* The buyer is idle and its books agree with every seller's on its `want` channels. */
static void assert_reconciled_n(int want)
{
    char why[NF_WHY] = "";
    int n = 0;
    assert_int_equal(nf_buyer_idle(&fx, 15000), 0);
    if (nf_reconcile(&fx, 0, &n, why, sizeof(why)) != 0)
        fail_msg("books disagree: %s", why);
    assert_int_equal(n, want);
}

static void assert_reconciled(void)
{
    assert_reconciled_n(1);
}

/* ---- client requests ------------------------------------------------------------------------ */

static void chat_body(char *out, size_t cap, const char *text, bool stream)
{
    snprintf(out, cap,
             "{\"model\":\"" SERVICE "\",\"max_tokens\":16,%s\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]}",
             stream ? "\"stream\":true," : "", text);
}

/* A normal request through the buyer is answered (the fault has passed). */
static void assert_served(bool stream)
{
    char body[256];
    nf_res r;
    atomic_store(&up.mode, UP_OK);
    chat_body(body, sizeof(body), "are you back", stream);
    nf_post(&fx, &r, "/v1/chat/completions", body);
    if (r.status != 200)
        fail_msg("a normal request after the fault: %ld %s", r.status, r.body);
    if (stream) {
        assert_non_null(strstr(r.body, "\"content\":\" good\""));
        assert_non_null(strstr(r.body, "data: [DONE]"));
    } else {
        assert_non_null(strstr(r.body, "\"content\":\"all good\""));
    }
    nf_res_free(&r);
}

/* The last "data: " line of an SSE body, copied out (NUL-terminated). */
static void last_data(char *out, size_t cap, const char *body)
{
    const char *p = body, *last = NULL, *end;
    while ((p = strstr(p, "data: ")) != NULL) {
        if (p == body || p[-1] == '\n')
            last = p + 6;
        p += 6;
    }
    out[0] = '\0';
    if (last == NULL)
        return;
    end = strchr(last, '\n');
    snprintf(out, cap, "%.*s", (int)(end != NULL ? end - last : (ptrdiff_t)strlen(last)), last);
}

/* The message of an error in OpenAI's shape (a new string to free), or NULL when text is not
 * exactly {"error":{"message":str,"type":str,"param":str|null,"code":str|null}} (the buyer's, with
 * param; docs/protocol.md §10.12) or {"error":{"message","type","code"}} (the seller's: §1), or
 * its code is not want_code (NULL: any). */
static char *openai_error(const char *text, const char *want_code)
{
    json_t *j = json_loads(text, 0, NULL), *e = json_object_get(j, "error");
    json_t *param = json_object_get(e, "param"), *code = json_object_get(e, "code");
    const char *m = json_string_value(json_object_get(e, "message"));
    char *msg = NULL;
    bool ok = json_is_object(j) && json_object_size(j) == 1 && json_is_object(e) && m != NULL &&
              m[0] != '\0' && json_is_string(json_object_get(e, "type")) &&
              (json_is_string(code) || json_is_null(code)) &&
              (param == NULL
                   ? json_object_size(e) == 3
                   : (json_is_string(param) || json_is_null(param)) && json_object_size(e) == 4);
    if (ok && (want_code == NULL ||
               (json_is_string(code) && strcmp(json_string_value(code), want_code) == 0)))
        msg = strdup(m);
    json_decref(j);
    return msg;
}

/* ---- upstream faults ------------------------------------------------------------------------ */

typedef struct fault {
    const char *name;
    int mode;
    bool stream;
    int parallel;          /* 1: REPS times one after the other; REPS: REPS at once */
    bool started;          /* tokens or events reached the client before the fault */
    const char *msg;       /* in the client's error message */
    const char *b_outcome; /* the buyer's ledger row */
    const char *s_outcome; /* the seller's request row */
    long up_status;        /* the seller's row: the upstream's HTTP status (0: none) */
    bool charged;          /* two tokens were delivered: charged for them and the prompt */
} fault;

static const fault faults[] = {
    {"hang, whole answer", UP_HANG, false, REPS, false, "HTTP 502", "upstream_error",
     "upstream_error", 0, false},
    {"hang, stream", UP_HANG, true, REPS, false, "HTTP 502", "upstream_error", "upstream_error", 0,
     false},
    {"connection reset", UP_RESET, false, 1, false, "HTTP 502", "upstream_error", "upstream_error",
     0, false},
    {"not HTTP", UP_GARBAGE, true, 1, false, "HTTP 502", "upstream_error", "upstream_error", 0,
     false},
    {"200, body not JSON", UP_NOT_JSON, false, 1, false, "HTTP 502", "upstream_error", "broken",
     200, false},
    {"200, event stream without events", UP_SSE_NOISE, true, 1, false, "HTTP 502", "upstream_error",
     "broken", 200, false},
    {"200, events of junk", UP_SSE_JUNK, true, 1, true, "without its end marker", "seller_error",
     "broken", 200, false},
    {"429 with Retry-After", UP_429, false, 1, false, "HTTP 429", "upstream_error",
     "upstream_error", 429, false},
    {"500", UP_500, true, 1, false, "HTTP 500", "upstream_error", "upstream_error", 500, false},
    {"stream cut after two tokens", UP_CUT, true, 1, true, "broke off after 2 events",
     "seller_error", "broken", 200, true},
    {"stream stalled after two tokens", UP_STALL, true, REPS, true, "silent for 1000 ms",
     "seller_error", "broken", 200, true},
};

typedef struct shot {
    const fault *f;
    int idx;
    nf_res r;
    int64_t ms;
} shot;

static void *shoot(void *arg)
{
    shot *s = arg;
    char body[256], text[64];
    int64_t t0 = rc_now_ms();
    snprintf(text, sizeof(text), "fault %d of mode %d", s->idx, s->f->mode);
    chat_body(body, sizeof(body), text, s->f->stream);
    nf_post(&fx, &s->r, "/v1/chat/completions", body);
    s->ms = rc_now_ms() - t0;
    return NULL;
}

/* What the client saw. */
static void check_client(const shot *s)
{
    const fault *f = s->f;
    char data[1024], *msg;

    if (s->ms > BOUND_MS)
        fail_msg("%s: answered after %" PRId64 " ms", f->name, s->ms);
    if (!f->started) {
        if (s->r.status != 502)
            fail_msg("%s: status %ld, body %s", f->name, s->r.status, s->r.body);
        msg = openai_error(s->r.body, "sellers_unavailable");
    } else {
        if (s->r.status != 200)
            fail_msg("%s: status %ld, body %s", f->name, s->r.status, s->r.body);
        assert_null(strstr(s->r.body, "[DONE]")); /* never a clean end */
        if (f->charged) {
            assert_non_null(strstr(s->r.body, "\"content\":\"Hel\""));
            assert_non_null(strstr(s->r.body, "\"content\":\"lo\""));
        } else {
            assert_non_null(strstr(s->r.body, "junk-not-json"));
        }
        last_data(data, sizeof(data), s->r.body);
        msg = openai_error(data, NULL);
    }
    if (msg == NULL)
        fail_msg("%s: not an OpenAI error: %s", f->name, s->r.body);
    /* the upstream's address is the seller operator's business: never in what a client sees */
    {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)up.port);
        if (strstr(s->r.body, addr) != NULL)
            fail_msg("%s: the client saw the upstream's address: %s", f->name, s->r.body);
    }
    if (strstr(msg, f->msg) == NULL)
        fail_msg("%s: error message \"%s\" does not say \"%s\"", f->name, msg, f->msg);
    free(msg);
}

/* The books after n requests of fault f: one row each side per request, with the outcome and
 * the charge f expects; consumed moved by exactly the charges; both daemons agree. */
static void check_books(const fault *f, const books *before, int n)
{
    json_t *brows = buyer_rows_after(before->b_last),
           *srows = seller_rows_after(chan_hex, before->s_last);
    json_t *r;
    books after;
    uint64_t b_sum = 0, s_sum = 0;
    size_t i;

    if ((int)json_array_size(brows) != n || (int)json_array_size(srows) != n)
        fail_msg("%s: %zu buyer and %zu seller rows for %d requests", f->name,
                 json_array_size(brows), json_array_size(srows), n);
    json_array_foreach(brows, i, r)
    {
        int64_t cost = j_int(r, "cost");
        if (strcmp(j_str(r, "outcome"), f->b_outcome) != 0)
            fail_msg("%s: buyer outcome \"%s\"", f->name, j_str(r, "outcome"));
        assert_true(f->charged ? cost > 0 : cost == 0);
        b_sum += (uint64_t)cost;
    }
    json_array_foreach(srows, i, r)
    {
        int64_t cost = j_int(r, "cost"), in = j_int(r, "input_tokens");
        assert_string_equal(j_str(r, "status"), "finished");
        if (strcmp(j_str(r, "outcome"), f->s_outcome) != 0)
            fail_msg("%s: seller outcome \"%s\"", f->name, j_str(r, "outcome"));
        assert_int_equal(json_integer_value(json_object_get(r, "upstream_status")), f->up_status);
        if (f->charged) {
            /* the two delivered tokens at 1.5 USDC/M, the prompt (its bound: no usage came) at
             * 0.5 USDC/M, each class rounded up once */
            assert_int_equal(j_int(r, "output_tokens"), 2);
            assert_true(in > 0);
            assert_int_equal(cost, (in + 1) / 2 + 3);
        } else {
            assert_int_equal(cost, 0);
            assert_int_equal(j_int(r, "output_tokens"), 0);
        }
        s_sum += (uint64_t)cost;
    }
    assert_true(b_sum == s_sum);
    take_books(&after, chan_hex, true);
    assert_true(after.b_consumed == before->b_consumed + b_sum);
    assert_true(after.s_consumed == before->s_consumed + s_sum);
    assert_int_equal(after.up_requests, before->up_requests + n); /* it was the upstream's */
    json_decref(brows);
    json_decref(srows);
}

static void test_upstream_faults(void **state)
{
    (void)state;
    failed = 1;
    for (size_t k = 0; k < sizeof(faults) / sizeof(faults[0]); k++) {
        const fault *f = &faults[k];
        int rounds = f->parallel > 1 ? 1 : REPS;
        int64_t t0 = rc_now_ms();
        for (int round = 0; round < rounds; round++) {
            shot shots[REPS];
            pthread_t th[REPS];
            books before;
            assert_reconciled();
            take_books(&before, chan_hex, true);
            atomic_store(&up.mode, f->mode);
            memset(shots, 0, sizeof(shots));
            for (int i = 0; i < f->parallel; i++) {
                shots[i].f = f;
                shots[i].idx = round * REPS + i;
                assert_int_equal(pthread_create(&th[i], NULL, shoot, &shots[i]), 0);
            }
            for (int i = 0; i < f->parallel; i++)
                pthread_join(th[i], NULL);
            atomic_store(&up.mode, UP_OK);
            for (int i = 0; i < f->parallel; i++) {
                check_client(&shots[i]);
                nf_res_free(&shots[i].r);
            }
            assert_reconciled();
            check_books(f, &before, f->parallel);
            assert_served(f->stream);
        }
        fprintf(stderr, "fault_upstream: %-34s x%d  %5" PRId64 " ms (with the checks)\n", f->name,
                REPS, rc_now_ms() - t0);
    }
    assert_reconciled();
    failed = 0;
}

/* ---- storage faults ------------------------------------------------------------------------- */

/* A paid request from the hand-made buyer straight to the seller, answer kept raw (status,
 * Retry-After, body). The voucher covers consumed + estimate with the next nonce. */
static void direct_raw(tbuyer *b, nf_res *out)
{
    const os_offering *o = tb_offering(b, SERVICE);
    json_t *body = json_pack("{s:s,s:i,s:[{s:s,s:s}]}", "model", SERVICE, "max_tokens", 16,
                             "messages", "role", "user", "content", "straight to the seller");
    os_infer_call *c = NULL;
    os_estimate est;
    char *payment = NULL, cred[OS_CRED_HEADER_LEN + 1];
    uint8_t mh[32];
    const uint8_t *env;
    size_t env_len = 0;
    os_http_header h[3];
    os_http_client_req req;
    os_http_client_res res;
    const char *ra;

    memset(out, 0, sizeof(*out));
    out->status = -1;
    assert_non_null(o);
    assert_int_equal(
        os_estimate_request(&est, "openai.chat", body, &o->pricing, o->max_output_tokens), OS_OK);
    assert_int_equal(os_infer_call_new(&c, &b->kc, "openai.chat", SERVICE, body), OS_OK);
    os_infer_call_metadata_hash(c, mh);
    assert_int_equal(tb_sign(b, &payment, cred, mh, b->consumed + est.total, ++b->nonce), 0);
    env = os_infer_call_envelope(c, &env_len);
    h[0] = (os_http_header){"Content-Type", OS_OHTTP_MEDIA_REQUEST};
    h[1] = (os_http_header){OS_X402_HDR_SIGNATURE, payment};
    h[2] = (os_http_header){OS_CRED_HEADER_NAME, cred};
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = b->infer_url;
    req.headers = h;
    req.n_headers = 3;
    req.body = env;
    req.body_len = env_len;
    os_http_client_res_init(&res);
    if (os_http_client_do(b->http, &res, NULL, &req) == OS_OK)
        out->status = res.status;
    ra = os_http_client_res_header(&res, "Retry-After");
    snprintf(out->retry_after, sizeof(out->retry_after), "%s", ra != NULL ? ra : "");
    out->body = calloc(1, res.body.len + 1);
    assert_non_null(out->body);
    if (res.body.len > 0)
        memcpy(out->body, res.body.data, res.body.len);
    out->len = res.body.len;
    os_http_client_res_free(&res);
    free(payment);
    os_infer_call_free(c);
    json_decref(body);
}

/* A normal paid request from the hand-made buyer is answered. */
static void assert_direct_served(tbuyer *b)
{
    static tb_out out;
    json_t *body = json_pack("{s:s,s:i,s:[{s:s,s:s}]}", "model", SERVICE, "max_tokens", 16,
                             "messages", "role", "user", "content", "direct and well");
    const char *content;
    atomic_store(&up.mode, UP_OK);
    tb_call(b, &out, "openai.chat", SERVICE, body);
    if (out.rc != OS_OK || out.res.http_status != 200 || out.res.final.status != 200)
        fail_msg("direct request: rc %d, status %ld/%ld (%s)", out.rc, out.res.http_status,
                 out.res.final.status, out.res.error_code);
    content = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(out.res.body, "choices"), 0), "message"),
        "content"));
    assert_non_null(content);
    assert_string_equal(content, "all good");
    os_infer_result_free(&out.res);
    json_decref(body);
}

/* The hand-made buyer's channel, opened once and known to the seller (one paid request). */
static void direct_ready(void)
{
    char why[NF_WHY] = "";
    if (tb_ready)
        return;
    if (tb_init(&tb, fx.sel[0].url, CHAIN, fx.d.escrow, why, sizeof(why)) != 0 ||
        tb_open(&tb, &fx.d, 6, fx.sel_addr[0], 1000000, why, sizeof(why)) != 0)
        fail_msg("hand-made buyer: %s", why);
    tb_ready = true;
    assert_int_equal(os_hex_encode(tb_chan_hex, sizeof(tb_chan_hex), tb.channel_id, 32, 1), OS_OK);
    assert_direct_served(&tb);
}

/* The seller's own refusal: 503, Retry-After, "storage_unavailable" in the OpenAI shape. */
static void assert_storage_refusal(const nf_res *r, const char *what)
{
    char *msg;
    if (r->status != 503)
        fail_msg("%s: the seller answered %ld: %s", what, r->status, r->body);
    assert_string_equal(r->retry_after, "1");
    msg = openai_error(r->body, "storage_unavailable");
    if (msg == NULL)
        fail_msg("%s: not a storage_unavailable error: %s", what, r->body);
    assert_non_null(strstr(msg, "nothing was charged"));
    free(msg);
}

/* What the buyer's client sees when its only seller refuses: 502 in the OpenAI shape, naming
 * the seller's status and code. */
static void assert_buyer_refusal(const nf_res *r, const char *what)
{
    char *msg;
    if (r->status != 502)
        fail_msg("%s: the buyer answered %ld: %s", what, r->status, r->body);
    msg = openai_error(r->body, "sellers_unavailable");
    if (msg == NULL || strstr(msg, "HTTP 503, storage_unavailable") == NULL)
        fail_msg("%s: the buyer's error does not name the seller's refusal: %s", what, r->body);
    free(msg);
}

/* Nothing moved: no voucher or request row on either channel, consumed unchanged, the upstream
 * untouched; the buyer booked its attempts (n_buyer rows) at cost 0 as the seller's failure. */
static void assert_nothing_booked(const books *bb, const books *tbb, int n_buyer)
{
    books a, ta;
    json_t *rows, *r;
    size_t i;

    take_books(&a, chan_hex, true);
    take_books(&ta, tb_chan_hex, false);
    assert_int_equal(a.up_requests, bb->up_requests);
    assert_int_equal(a.s_last, bb->s_last);
    assert_int_equal(a.s_vouchers, bb->s_vouchers);
    assert_int_equal(a.s_last_nonce, bb->s_last_nonce);
    assert_true(a.s_consumed == bb->s_consumed && a.b_consumed == bb->b_consumed);
    assert_int_equal(ta.s_last, tbb->s_last);
    assert_int_equal(ta.s_vouchers, tbb->s_vouchers);
    assert_int_equal(ta.s_last_nonce, tbb->s_last_nonce);
    assert_true(ta.s_consumed == tbb->s_consumed);
    rows = buyer_rows_after(bb->b_last);
    assert_int_equal(json_array_size(rows), n_buyer);
    json_array_foreach(rows, i, r)
    {
        assert_string_equal(j_str(r, "outcome"), "seller_error");
        assert_int_equal(j_int(r, "cost"), 0);
    }
    json_decref(rows);
}

static void test_database_locked(void **state)
{
    char path[256], body[256];
    (void)state;
    failed = 1;
    direct_ready();
    snprintf(path, sizeof(path), "%s/seller.db", fx.sel[0].data_dir);
    chat_body(body, sizeof(body), "while the books are locked", false);
    for (int i = 0; i < REPS; i++) {
        sqlite3 *db = NULL;
        books bb, tbb;
        nf_res r;
        int64_t t0;

        assert_reconciled();
        take_books(&bb, chan_hex, true);
        take_books(&tbb, tb_chan_hex, false);
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
        t0 = rc_now_ms();
        /* the seller's own answer first (once), then what the buyer makes of it */
        if (i == 0) {
            direct_raw(&tb, &r);
            assert_storage_refusal(&r, "locked, direct");
            nf_res_free(&r);
        } else {
            nf_post(&fx, &r, "/v1/chat/completions", body);
            assert_buyer_refusal(&r, "locked, through the buyer");
            nf_res_free(&r);
        }
        if (rc_now_ms() - t0 > LOCK_BOUND_MS)
            fail_msg("locked: answered after %" PRId64 " ms", rc_now_ms() - t0);
        fprintf(stderr, "fault_upstream: database locked, %-20s %5" PRId64 " ms\n",
                i == 0 ? "direct" : "through the buyer", rc_now_ms() - t0);
        assert_int_equal(atomic_load(&up.requests), bb.up_requests); /* no work unpaid */
        assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        assert_nothing_booked(&bb, &tbb, i == 0 ? 0 : 1);
        assert_reconciled();
        assert_served(false);
        assert_direct_served(&tb);
    }
    failed = 0;
}

static void test_disk_full(void **state)
{
    char body[256], why[NF_WHY] = "";
    pid_t pid = fx.sel[0].p.pid;
    struct rlimit old, low;
    (void)state;
    failed = 1;
    direct_ready();
    chat_body(body, sizeof(body), "while the disk is full", true);
    if (tb_init(&tb_new, fx.sel[0].url, CHAIN, fx.d.escrow, why, sizeof(why)) != 0 ||
        tb_open(&tb_new, &fx.d, 7, fx.sel_addr[0], 1000000, why, sizeof(why)) != 0)
        fail_msg("hand-made buyer: %s", why);
    tb_new_ready = true;
    assert_int_equal(prlimit(pid, RLIMIT_FSIZE, NULL, &old), 0);
    for (int i = 0; i < REPS; i++) {
        books bb, tbb;
        nf_res r;
        int64_t t0;

        assert_reconciled();
        take_books(&bb, chan_hex, true);
        take_books(&tbb, tb_chan_hex, false);
        /* every write at offset 1 or beyond fails with EFBIG (SIGXFSZ ignored), as on a full
         * disk: SQLite reports an I/O error */
        low.rlim_cur = 1;
        low.rlim_max = old.rlim_max;
        assert_int_equal(prlimit(pid, RLIMIT_FSIZE, &low, NULL), 0);
        t0 = rc_now_ms();
        direct_raw(&tb, &r);
        assert_storage_refusal(&r, "disk full, direct");
        nf_res_free(&r);
        if (i == 0) { /* a channel seen for the first time cannot be stored either */
            direct_raw(&tb_new, &r);
            assert_storage_refusal(&r, "disk full, a new channel");
            nf_res_free(&r);
        }
        nf_post(&fx, &r, "/v1/chat/completions", body);
        assert_buyer_refusal(&r, "disk full, through the buyer");
        nf_res_free(&r);
        if (rc_now_ms() - t0 > BOUND_MS)
            fail_msg("disk full: answered after %" PRId64 " ms", rc_now_ms() - t0);
        fprintf(stderr, "fault_upstream: disk full, direct and through the buyer %5" PRId64 " ms\n",
                rc_now_ms() - t0);
        assert_int_equal(kill(pid, 0), 0); /* alive: SIGXFSZ did not kill it */
        assert_int_equal(atomic_load(&up.requests), bb.up_requests);
        assert_int_equal(prlimit(pid, RLIMIT_FSIZE, &old, NULL), 0);
        assert_nothing_booked(&bb, &tbb, 1);
        assert_reconciled();
        assert_served(true);
        assert_direct_served(&tb);
        if (i == 0)
            assert_direct_served(&tb_new);
    }
    failed = 0;
}

/* A chat request through the buyer pinned to seller i (X-OpenSeed-Peer). */
static void post_pinned(nf_res *out, int i, const char *body)
{
    char url[128];
    os_http_header h[2] = {{"Content-Type", "application/json"},
                           {"X-OpenSeed-Peer", fx.sel_hex[i]}};
    os_http_client_req req;
    os_http_client_res res;
    const char *p;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s/v1/chat/completions", fx.buyer.url);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.headers = h;
    req.n_headers = 2;
    req.body = body;
    req.body_len = strlen(body);
    os_http_client_res_init(&res);
    out->status = os_http_client_do(fx.http, &res, NULL, &req) == OS_OK ? res.status : -1;
    p = os_http_client_res_header(&res, "X-OpenSeed-Peer");
    snprintf(out->peer, sizeof(out->peer), "%s", p != NULL ? p : "");
    out->body = calloc(1, res.body.len + 1);
    assert_non_null(out->body);
    if (res.body.len > 0)
        memcpy(out->body, res.body.data, res.body.len);
    out->len = res.body.len;
    os_http_client_res_free(&res);
}

/* The buyer's score for seller i and whether it is cooling down (its peers view). */
static double buyer_score(int i, bool *cooling)
{
    long st;
    json_t *j = nf_buyer_get(&fx, &st, "/openseed/v1/peers"), *p;
    double score = -1.0;
    size_t k;
    *cooling = false;
    json_array_foreach(json_object_get(j, "peers"), k, p)
    {
        if (strcasecmp(j_str(p, "node"), fx.sel_hex[i]) != 0)
            continue;
        score = json_is_real(json_object_get(p, "score"))
                    ? json_real_value(json_object_get(p, "score"))
                    : -1.0;
        *cooling = j_int(p, "cooldown_ms") > 0;
    }
    json_decref(j);
    return score;
}

/* With a second seller up, a seller that cannot store the voucher (503) is failed over: the
 * client is served by the other one, the first books nothing, and the buyer books its attempt
 * at cost 0. Whether the buyer tries the failing seller first depends on its ranking (read from
 * its peers view before each request): when it does, the failover must show in its ledger. */
static void test_disk_full_failover(void **state)
{
    char why[NF_WHY] = "", body[256];
    pid_t pid = fx.sel[0].p.pid;
    struct rlimit old, low;
    int failovers = 0;
    (void)state;
    failed = 1;

    /* ten times seller0's prices: seller0 ranks first while it is healthy */
    if (nf_seller(&fx, 1, SERVICE " model=echo-1 apis=openai.chat input=5 output=15", NULL, NULL,
                  why, sizeof(why)) != 0)
        fail_msg("seller1: %s", why);
    assert_int_equal(nf_wait_listed(&fx, SERVICE, 2, 30000), 0);
    rc_sleep_ms(1500); /* a registry rescore and the buyer's peer list TTL */
    chat_body(body, sizeof(body), "one of two sellers", false);
    assert_int_equal(prlimit(pid, RLIMIT_FSIZE, NULL, &old), 0);
    for (int i = 0; i < REPS; i++) {
        books bb;
        nf_res r;
        json_t *rows, *row;
        size_t k;
        int on0 = 0, on1 = 0;
        bool cooling0, cooling1, first0;
        double s0, s1;

        /* a success on seller0 ends any cool-down its last refusal started */
        post_pinned(&r, 0, body);
        if (r.status != 200)
            fail_msg("pinned to seller0: %ld %s", r.status, r.body);
        nf_res_free(&r);
        assert_reconciled_n(i == 0 ? 1 : 2);
        take_books(&bb, chan_hex, true);
        s0 = buyer_score(0, &cooling0);
        s1 = buyer_score(1, &cooling1);
        first0 = !cooling0 && (s1 < 0.0 || s0 > s1);
        low.rlim_cur = 1;
        low.rlim_max = old.rlim_max;
        assert_int_equal(prlimit(pid, RLIMIT_FSIZE, &low, NULL), 0);
        nf_post(&fx, &r, "/v1/chat/completions", body);
        assert_int_equal(prlimit(pid, RLIMIT_FSIZE, &old, NULL), 0);
        if (r.status != 200 || strcasecmp(r.peer, fx.sel_hex[1]) != 0)
            fail_msg("failover: %ld from %s: %s", r.status, r.peer, r.body);
        assert_non_null(strstr(r.body, "echo: one of two sellers"));
        nf_res_free(&r);
        assert_int_equal(nf_buyer_idle(&fx, 15000), 0);
        rows = buyer_rows_after(bb.b_last);
        json_array_foreach(rows, k, row)
        {
            if (strcasecmp(j_str(row, "seller"), fx.sel_hex[0]) == 0) {
                assert_string_equal(j_str(row, "outcome"), "seller_error");
                assert_int_equal(j_int(row, "cost"), 0);
                on0++;
            } else {
                assert_string_equal(j_str(row, "seller"), fx.sel_hex[1]);
                assert_string_equal(j_str(row, "outcome"), "ok");
                on1++;
            }
        }
        json_decref(rows);
        assert_int_equal(on1, 1);
        assert_true(on0 <= 1);
        if (first0 && on0 != 1)
            fail_msg("seller0 ranked first (%.3f > %.3f) but was not tried", s0, s1);
        failovers += on0;
        {
            books a;
            take_books(&a, chan_hex, true);
            assert_int_equal(a.s_last, bb.s_last); /* seller0 booked nothing */
            assert_int_equal(a.s_vouchers, bb.s_vouchers);
            assert_true(a.s_consumed == bb.s_consumed && a.b_consumed == bb.b_consumed);
        }
        assert_reconciled_n(2);
    }
    fprintf(stderr, "fault_upstream: disk full with two sellers: %d of %d requests failed over\n",
            failovers, REPS);
    failed = 0;
}

/* ---- the network ---------------------------------------------------------------------------- */

static int setup(void **state)
{
    char why[NF_WHY] = "", upstream[64];
    const char *offering = SERVICE " model=fake-1 apis=openai.chat input=0.5 output=1.5";
    const char *const seller_flags[] = {"--upstream-timeout", "4s", "--upstream-first-byte-timeout",
                                        "1s", NULL};
    const char *id;
    long st;
    json_t *j;
    (void)state;

    if (up_start() != 0) {
        snprintf(why, sizeof(why), "cannot start the fake upstream");
        goto fail;
    }
    snprintf(upstream, sizeof(upstream), "http://127.0.0.1:%u", (unsigned)up.port);
    if (nf_setup(&fx, "faultup", CHAIN, why, sizeof(why)) != 0 ||
        nf_registry(&fx, NULL, why, sizeof(why)) != 0 ||
        nf_seller(&fx, 0, offering, upstream, seller_flags, why, sizeof(why)) != 0)
        goto fail;
    if (nf_wait_listed(&fx, SERVICE, 1, 30000) != 0) {
        snprintf(why, sizeof(why), "the registry does not list the seller");
        goto fail;
    }
    if (nf_buyer(&fx, NULL, why, sizeof(why)) != 0)
        goto fail;
    /* the first request opens the channel */
    {
        char body[256];
        nf_res r;
        chat_body(body, sizeof(body), "hello", false);
        nf_post(&fx, &r, "/v1/chat/completions", body);
        if (r.status != 200) {
            snprintf(why, sizeof(why), "first request: %ld %.300s", r.status, r.body);
            nf_res_free(&r);
            goto fail;
        }
        nf_res_free(&r);
    }
    j = nf_buyer_get(&fx, &st, "/openseed/v1/channels");
    id = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "channels"), 0), "channel_id"));
    snprintf(chan_hex, sizeof(chan_hex), "%s", id != NULL ? id : "");
    json_decref(j);
    if (chan_hex[0] == '\0') {
        snprintf(why, sizeof(why), "the buyer has no channel");
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "setup: %s\n", why);
    failed = 1;
    return -1;
}

static int teardown(void **state)
{
    (void)state;
    if (tb_ready)
        tb_free(&tb);
    if (tb_new_ready)
        tb_free(&tb_new);
    nf_teardown(&fx, failed);
    up_stop();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_faults),
        cmocka_unit_test(test_database_locked),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_disk_full_failover),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
