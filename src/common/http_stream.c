/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streamed responses for the HTTP server (http.h's os_http_stream): a bounded ring buffer between a
 * producer thread and libmicrohttpd's content-reader callback. When the reader finds the buffer
 * empty it suspends the connection (MHD_suspend_connection) instead of blocking a pool thread;
 * the producer's next write or close resumes it. The producer blocks when the buffer is full.
 *
 * Locking: each stream has its own mutex, taken by the reader (which MHD calls with the response's
 * own mutex held), by the producer and by the response's free callback; MHD_suspend_connection and
 * MHD_resume_connection are only called with it held, so a resume can never race the suspend it
 * answers, and `mc` (the connection) is only used while it is non-NULL under the lock: MHD frees
 * the response, which clears it, before it frees the connection, and a suspended connection is
 * never freed. The registry's mutex (the server's list of streams) is taken before a stream's.
 * A stream holds two references, the producer's and the server's (the MHD response's once sent),
 * and is freed when both are gone.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "http_internal.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* The size libmicrohttpd is asked to read at a time; it may ask for less. */
#define STREAM_BLOCK ((size_t)8 << 10)

struct os_http_stream {
    pthread_mutex_t mu;
    pthread_cond_t room; /* a writer waits here while the buffer is full */
    http_streams *owner;
    os_http_stream *prev, *next; /* in owner's list */
    struct MHD_Connection *mc;   /* while MHD holds the response */
    unsigned refs;
    bool suspended; /* mc is suspended by the reader */
    bool closed;    /* the producer closed */
    bool ok;        /* ... and the body is complete */
    bool done;      /* the reader ended the body properly */
    bool cancelled; /* client gone, stream cut or abandoned */
    char *buf;      /* ring of cap bytes, len used from head */
    size_t cap, head, len;
};

os_err os_http_streams_init(http_streams *ss, unsigned max, size_t buf_cap)
{
    ss->head = NULL;
    ss->n = 0;
    ss->max = max;
    ss->buf_cap = buf_cap;
    return pthread_mutex_init(&ss->mu, NULL) == 0 ? OS_OK : OS_ERR_NOMEM;
}

void os_http_streams_destroy(http_streams *ss)
{
    pthread_mutex_destroy(&ss->mu);
}

/* Called with st->mu held. */
static void wake_reader(os_http_stream *st)
{
    if (st->suspended && st->mc != NULL) {
        st->suspended = false;
        MHD_resume_connection(st->mc);
    }
}

/* Called with st->mu held. */
static void cancel_locked(os_http_stream *st)
{
    if (st->done)
        return;
    st->cancelled = true;
    pthread_cond_broadcast(&st->room);
    wake_reader(st);
}

void os_http_streams_cut(http_streams *ss)
{
    pthread_mutex_lock(&ss->mu);
    for (os_http_stream *st = ss->head; st != NULL; st = st->next) {
        pthread_mutex_lock(&st->mu);
        cancel_locked(st);
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&ss->mu);
}

os_err os_http_stream_new(http_streams *ss, os_http_stream **out)
{
    os_http_stream *st;

    *out = NULL;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return OS_ERR_NOMEM;
    st->cap = ss->buf_cap;
    st->buf = malloc(st->cap);
    if (st->buf == NULL) {
        free(st);
        return OS_ERR_NOMEM;
    }
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st->buf);
        free(st);
        return OS_ERR_NOMEM;
    }
    if (pthread_cond_init(&st->room, NULL) != 0) {
        pthread_mutex_destroy(&st->mu);
        free(st->buf);
        free(st);
        return OS_ERR_NOMEM;
    }
    st->refs = 2;
    st->owner = ss;
    pthread_mutex_lock(&ss->mu);
    if (ss->n >= ss->max) {
        pthread_mutex_unlock(&ss->mu);
        pthread_cond_destroy(&st->room);
        pthread_mutex_destroy(&st->mu);
        free(st->buf);
        free(st);
        return OS_ERR_TOOBIG;
    }
    st->next = ss->head;
    if (ss->head != NULL)
        ss->head->prev = st;
    ss->head = st;
    ss->n++;
    pthread_mutex_unlock(&ss->mu);
    *out = st;
    return OS_OK;
}

static void unref(os_http_stream *st)
{
    http_streams *ss = st->owner;
    unsigned left;

    pthread_mutex_lock(&st->mu);
    left = --st->refs;
    pthread_mutex_unlock(&st->mu);
    if (left > 0)
        return;
    pthread_mutex_lock(&ss->mu);
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        ss->head = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    ss->n--;
    pthread_mutex_unlock(&ss->mu);
    pthread_cond_destroy(&st->room);
    pthread_mutex_destroy(&st->mu);
    free(st->buf);
    free(st);
}

void os_http_stream_abandon(os_http_stream *st)
{
    if (st == NULL)
        return;
    pthread_mutex_lock(&st->mu);
    cancel_locked(st);
    pthread_mutex_unlock(&st->mu);
    unref(st);
}

/*
 * Ends the connection of a failed stream now. libmicrohttpd 0.9.75 with MHD_USE_TURBO neither
 * shuts the socket down when a reader reports an error nor wakes its event loop, so the socket
 * would stay open, and the request in flight, until the loop next woke (the idle timeout). A
 * shutdown (never a close: MHD still owns the descriptor) sends the client its FIN at once and
 * wakes the loop through the socket's own events.
 */
static ssize_t fail_connection(os_http_stream *st)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(st->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL)
        (void)shutdown(ci->connect_fd, SHUT_RDWR);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* MHD's content reader: never returns 0 without suspending the connection (no busy loop). */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    os_http_stream *st = cls;
    ssize_t ret;

    (void)pos;
    pthread_mutex_lock(&st->mu);
    if (st->cancelled) {
        ret = fail_connection(st);
    } else if (st->len > 0) {
        size_t n = st->len < max ? st->len : max;
        size_t first = st->cap - st->head < n ? st->cap - st->head : n;
        memcpy(out, st->buf + st->head, first);
        memcpy(out + first, st->buf, n - first);
        st->head = (st->head + n) % st->cap;
        st->len -= n;
        pthread_cond_broadcast(&st->room);
        ret = (ssize_t)n;
    } else if (st->closed) {
        st->done = st->ok;
        ret = st->ok ? MHD_CONTENT_READER_END_OF_STREAM : fail_connection(st);
    } else {
        st->suspended = true;
        MHD_suspend_connection(st->mc);
        ret = 0;
    }
    pthread_mutex_unlock(&st->mu);
    return ret;
}

/* MHD's free callback for the response: the connection is done with the stream. */
static void stream_released(void *cls)
{
    os_http_stream *st = cls;

    pthread_mutex_lock(&st->mu);
    st->mc = NULL;
    st->suspended = false;
    cancel_locked(st); /* a no-op for a body that ended properly */
    pthread_mutex_unlock(&st->mu);
    unref(st);
}

struct MHD_Response *os_http_stream_response(os_http_stream *st, struct MHD_Connection *mc)
{
    struct MHD_Response *r;

    pthread_mutex_lock(&st->mu);
    st->mc = mc;
    pthread_mutex_unlock(&st->mu);
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st,
                                          stream_released);
    if (r == NULL) {
        pthread_mutex_lock(&st->mu);
        st->mc = NULL;
        pthread_mutex_unlock(&st->mu);
        os_http_stream_abandon(st);
    }
    return r;
}

os_err os_http_stream_write(os_http_stream *st, const void *data, size_t len)
{
    const char *p = data;
    os_err err = OS_OK;

    if (st == NULL || (data == NULL && len > 0))
        return OS_ERR_INVALID;
    pthread_mutex_lock(&st->mu);
    if (st->closed)
        err = OS_ERR_INVALID;
    while (err == OS_OK && len > 0) {
        size_t room, n, tail, first;
        if (st->cancelled) {
            err = OS_ERR_IO;
            break;
        }
        room = st->cap - st->len;
        if (room == 0) {
            /* the connection is sending (not suspended): MHD's idle timeout bounds this wait */
            pthread_cond_wait(&st->room, &st->mu);
            continue;
        }
        n = len < room ? len : room;
        tail = (st->head + st->len) % st->cap;
        first = st->cap - tail < n ? st->cap - tail : n;
        memcpy(st->buf + tail, p, first);
        memcpy(st->buf, p + first, n - first);
        st->len += n;
        p += n;
        len -= n;
        wake_reader(st);
    }
    pthread_mutex_unlock(&st->mu);
    return err;
}

bool os_http_stream_cancelled(os_http_stream *st)
{
    bool gone;

    if (st == NULL)
        return true;
    pthread_mutex_lock(&st->mu);
    /* A suspended connection is not polled by MHD and cannot be closed under us: look at its
     * socket for the client's FIN or RST ourselves. */
    if (!st->cancelled && st->suspended && st->mc != NULL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(st->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci != NULL) {
            struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLRDHUP};
            if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0)
                cancel_locked(st); /* resumes it, and MHD closes it */
        }
    }
    gone = st->cancelled;
    pthread_mutex_unlock(&st->mu);
    return gone;
}

void os_http_stream_close(os_http_stream *st, bool ok)
{
    if (st == NULL)
        return;
    pthread_mutex_lock(&st->mu);
    if (!st->closed) {
        st->closed = true;
        st->ok = ok;
        wake_reader(st);
    }
    pthread_mutex_unlock(&st->mu);
    unref(st);
}
