/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulation's clients: each buyer gets `concurrency` worker threads that take the next
 * request of that buyer's sequence (an atomic index into the seeded sequence of plan.c) and send
 * it to the buyer's gateway with libcurl, as the OpenAI and Anthropic SDKs send them (their paths,
 * headers and JSON), reading streams to the end. Each answer is recorded as the client saw it:
 * status, the seller that answered (X-OpenSeed-Peer), latency and time to the first byte. A
 * request in flight when the duration ends is finished, not cut, so the books close cleanly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "openseed/hex.h"

#include "sim.h"

#define BODY_CAP (4u << 20) /* an answer larger than this is not one the echo sends */
#define REQUEST_TIMEOUT_MS 120000L

typedef struct worker {
    sim *s;
    unsigned b;
    int64_t deadline_ms;
    pthread_t th;
    bool started;
} worker;

typedef struct xfer {
    char *body;
    size_t len, cap;
    bool over;
    char peer[64];
} xfer;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_write(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    if (x->over || x->len + len + 1 > BODY_CAP) {
        x->over = true;
        return len; /* read on to the end; the answer is judged too big */
    }
    if (x->len + len + 1 > x->cap) {
        size_t cap = x->cap == 0 ? 4096 : x->cap;
        while (cap < x->len + len + 1)
            cap *= 2;
        char *g = realloc(x->body, cap);
        if (g == NULL)
            return 0; /* curl fails the transfer */
        x->body = g;
        x->cap = cap;
    }
    memcpy(x->body + x->len, p, len);
    x->len += len;
    x->body[x->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    static const char name[] = "X-OpenSeed-Peer:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        size_t at = sizeof(name) - 1, end = len;
        while (at < end && (p[at] == ' ' || p[at] == '\t'))
            at++;
        while (end > at && (p[end - 1] == '\r' || p[end - 1] == '\n' || p[end - 1] == ' '))
            end--;
        if (end - at < sizeof(x->peer)) {
            memcpy(x->peer, p + at, end - at);
            x->peer[end - at] = '\0';
        }
    }
    return len;
}

/* Did the client get a whole, good answer? */
static bool answer_ok(sim_kind kind, long status, const xfer *x)
{
    if (status != 200 || x->over || x->body == NULL)
        return false;
    if (kind == SIM_KIND_CHAT_STREAM)
        /* a failure after the start ends the stream with an error event, never [DONE] */
        return strstr(x->body, "data: [DONE]") != NULL &&
               strstr(x->body, "data: {\"error\"") == NULL;
    json_t *j = json_loadb(x->body, x->len, 0, NULL);
    bool ok = false;
    if (j != NULL) {
        switch (kind) {
        case SIM_KIND_CHAT:
            ok = json_array_size(json_object_get(j, "choices")) > 0;
            break;
        case SIM_KIND_MESSAGES:
            ok = json_array_size(json_object_get(j, "content")) > 0;
            break;
        default:
            ok = json_array_size(json_object_get(j, "data")) > 0;
            break;
        }
    }
    json_decref(j);
    return ok;
}

static void record(sim_buyer *by, const sim_call *c)
{
    pthread_mutex_lock(&by->mu);
    if (by->n_calls == by->cap_calls) {
        size_t cap = by->cap_calls == 0 ? 1024 : by->cap_calls * 2;
        sim_call *g = cap <= SIM_MAX_CALLS ? realloc(by->calls, cap * sizeof(*g)) : NULL;
        if (g == NULL) {
            by->calls_full = true;
            pthread_mutex_unlock(&by->mu);
            return;
        }
        by->calls = g;
        by->cap_calls = cap;
    }
    by->calls[by->n_calls++] = *c;
    pthread_mutex_unlock(&by->mu);
}

/* The headers each SDK sends (the buyer needs no key on loopback; the SDKs send one anyway). */
static struct curl_slist *headers_for(sim_kind kind)
{
    static const char *const openai[] = {"Content-Type: application/json",
                                         "Accept: application/json",
                                         "Authorization: Bearer sim-client", NULL};
    static const char *const anthropic[] = {
        "content-type: application/json", "accept: application/json",
        "anthropic-version: 2023-06-01", "x-api-key: sim-client", NULL};
    const char *const *h = kind == SIM_KIND_MESSAGES ? anthropic : openai;
    struct curl_slist *l = NULL;
    for (size_t i = 0; h[i] != NULL; i++) {
        struct curl_slist *n = curl_slist_append(l, h[i]);
        if (n == NULL) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = n;
    }
    /* curl would send Expect: 100-continue for a large body; clients do not wait for it */
    struct curl_slist *n = curl_slist_append(l, "Expect:");
    if (n == NULL)
        curl_slist_free_all(l);
    return n;
}

static void one_call(worker *w, CURL *h, struct curl_slist *const hdrs[2], uint64_t k)
{
    sim *s = w->s;
    sim_buyer *by = &s->buyers[w->b];
    sim_request rq;
    sim_call c = {.k = k, .seller = -1};
    xfer x = {0};
    char url[128];

    if (sim_request_make(&rq, &s->plan, w->b, k) != OS_OK) {
        record(by, &c);
        return;
    }
    c.kind = (uint8_t)rq.kind;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)by->port, rq.path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq.body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq.len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs[rq.kind == SIM_KIND_MESSAGES ? 1 : 0]);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        long status = 0;
        curl_off_t total = 0, first = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total);
        curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &first);
        c.status = status;
        c.latency_ms = (uint32_t)(total / 1000);
        c.ttfb_ms = (uint32_t)(first / 1000);
        c.ok = answer_ok(rq.kind, status, &x);
        uint8_t addr[20];
        if (x.peer[0] != '\0' && os_hex_decode_exact(addr, sizeof(addr), x.peer) == OS_OK)
            c.seller = sim_seller_index(s, addr);
    }
    record(by, &c);
    free(x.body);
    sim_request_free(&rq);
}

/* Whether the run was asked to end early (sim_options.stop). */
static bool stopped(const sim *s)
{
    return s->o.stop != NULL && atomic_load(s->o.stop);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    sim_buyer *by = &w->s->buyers[w->b];
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs[2] = {headers_for(SIM_KIND_CHAT), headers_for(SIM_KIND_MESSAGES)};

    if (h != NULL && hdrs[0] != NULL && hdrs[1] != NULL) {
        while (mono_ms() < w->deadline_ms && !stopped(w->s)) {
            uint64_t k = atomic_fetch_add(&by->next, 1);
            one_call(w, h, hdrs, k);
        }
    }
    curl_slist_free_all(hdrs[0]);
    curl_slist_free_all(hdrs[1]);
    curl_easy_cleanup(h);
    return NULL;
}

static void counts(sim *s, size_t *calls, size_t *ok)
{
    *calls = *ok = 0;
    for (unsigned b = 0; b < s->plan.p.n_buyers; b++) {
        sim_buyer *by = &s->buyers[b];
        pthread_mutex_lock(&by->mu);
        *calls += by->n_calls;
        for (size_t i = 0; i < by->n_calls; i++)
            *ok += by->calls[i].ok ? 1 : 0;
        pthread_mutex_unlock(&by->mu);
    }
}

os_err sim_drive(sim *s)
{
    size_t n = (size_t)s->plan.p.n_buyers * s->plan.p.concurrency;
    worker *ws = calloc(n, sizeof(*ws));
    os_err rc = OS_OK;
    if (ws == NULL)
        return OS_ERR_NOMEM;

    int64_t t0 = mono_ms();
    int64_t deadline = t0 + (int64_t)s->plan.p.duration_s * 1000;
    sim_say("driving %u buyers x %u clients for %u s", s->plan.p.n_buyers, s->plan.p.concurrency,
            s->plan.p.duration_s);
    for (size_t i = 0; i < n; i++) {
        ws[i] =
            (worker){.s = s, .b = (unsigned)(i / s->plan.p.concurrency), .deadline_ms = deadline};
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            rc = OS_ERR_INTERNAL;
            break;
        }
        ws[i].started = true;
    }
    /* progress every 5 s while the clients run; a stop is noticed within 100 ms */
    for (int64_t next = t0 + 5000; rc == OS_OK && next < deadline && !stopped(s); next += 5000) {
        for (int64_t now = mono_ms(); next > now && !stopped(s); now = mono_ms()) {
            int64_t ms = next - now < 100 ? next - now : 100;
            struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
        if (stopped(s)) {
            sim_say("interrupted: finishing the requests in flight, then collecting");
            break;
        }
        size_t calls, ok;
        counts(s, &calls, &ok);
        sim_say("t=%llds requests=%zu ok=%zu", (long long)((next - t0) / 1000), calls, ok);
    }
    for (size_t i = 0; i < n; i++)
        if (ws[i].started)
            pthread_join(ws[i].th, NULL);
    s->drive_s = (double)(mono_ms() - t0) / 1000.0;
    free(ws);
    size_t calls, ok;
    counts(s, &calls, &ok);
    sim_say("clients done after %.1f s: requests=%zu ok=%zu", s->drive_s, calls, ok);
    return rc;
}
