/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One phase of load on one request path, for scripts/bench.sh: the same chat completion request,
 * whole or streamed, sent to an OpenAI-compatible endpoint (the fake upstream itself, Portkey's
 * gateway in front of it, or openseed-buyer paying a seller in front of it) by the engine in
 * loadgen.h, open-loop at a fixed rate or closed-loop at a fixed concurrency. Prints one table row
 * and appends the phase as one JSON object per line to --json, so the script can put the three
 * paths side by side and subtract the direct path from the others.
 *
 * A 2xx reply counts only when it holds the answer ("echo:"); for streams the token events
 * (those with a "delta") are timed: time to the first one and the gaps between them.
 *
 * For scripts/soak.sh: --api anthropic sends the Anthropic Messages request instead; each
 * --vary-header makes one variant of the request (e.g. pinned to one seller, or not pinned) and
 * every connection takes the variants in turn; --strict counts a stream as answered only when it
 * ends with its API's final event and carries no error event; --finish S awaits the replies in
 * flight at the end, and the JSON's "all" object counts every request sent (warm-up included):
 * the number the ledgers must hold.
 */
#define _GNU_SOURCE
#include "loadgen.h"

#include <jansson.h>

#define MAX_HEADERS 8
#define MAX_PIDS 8
#define MAX_VARIANTS 8

typedef struct opts {
    const char *name, *host, *path, *model, *json_out;
    unsigned port;
    const char *headers[MAX_HEADERS];
    unsigned n_headers;
    const char *pid_names[MAX_PIDS];
    long pids[MAX_PIDS];
    unsigned n_pids;
    const char *variants[MAX_VARIANTS]; /* one extra header line each; "" = none */
    unsigned n_variants;
    bool stream, anthropic, strict, path_set;
    double rate; /* 0 = closed loop */
    unsigned conns, words, max_tokens, timeline_ms;
    double warmup, duration, finish;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: path_bench --target NAME=HOST:PORT [options]\n"
            "  --api A           openai (chat completions) or anthropic (messages) [openai]\n"
            "  --path P          request path [/v1/chat/completions, /v1/messages]\n"
            "  --model M         the request's model [echo-1]\n"
            "  --header 'K: V'   an extra request header (repeatable, up to %d)\n"
            "  --vary-header H   one variant of the request with header H ('' = none); the\n"
            "                    connections take the variants in turn (repeatable, up to %d)\n"
            "  --stream          ask for a streamed answer and time its token events\n"
            "  --strict          a stream counts only when it ends with its final event and\n"
            "                    carries no error event\n"
            "  --rate R          open loop at R requests/s; without it, a closed loop\n"
            "  --conns K         connections (one request in flight each) [32]\n"
            "  --words N         words in the user message [8]\n"
            "  --max-tokens N    the request's max_tokens [32]\n"
            "  --warmup S        unmeasured seconds first [2]\n"
            "  --duration S      measured seconds [10]\n"
            "  --finish S        then await the replies in flight for up to S seconds [0: cut]\n"
            "  --pid NAME=PID    report this process's CPU share (repeatable, up to %d)\n"
            "  --json FILE       append the result as one JSON line\n"
            "  --timeline MS     also print requests, p99 and max per MS-long interval\n",
            MAX_HEADERS, MAX_VARIANTS, MAX_PIDS);
}

static bool parse_double(double *out, const char *s, double lo, double hi)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0')
        return false;
    v = strtod(s, &end);
    if (*end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool parse_uns(unsigned *out, const char *s, unsigned lo, unsigned hi)
{
    double v;
    if (!parse_double(&v, s, lo, hi) || v != (double)(unsigned)v)
        return false;
    *out = (unsigned)v;
    return true;
}

/* "NAME=HOST:PORT" */
static bool parse_target(opts *o, char *s)
{
    char *eq = strchr(s, '='), *colon;
    unsigned port;

    if (eq == NULL || eq == s)
        return false;
    *eq = '\0';
    colon = strrchr(eq + 1, ':');
    if (colon == NULL || colon == eq + 1 || !parse_uns(&port, colon + 1, 1, 65535))
        return false;
    *colon = '\0';
    o->name = s;
    o->host = eq + 1;
    o->port = port;
    return true;
}

static bool parse_pid(opts *o, char *s)
{
    char *eq = strchr(s, '=');
    double v;

    if (eq == NULL || eq == s || o->n_pids == MAX_PIDS)
        return false;
    *eq = '\0';
    if (!parse_double(&v, eq + 1, 1, 4194304) || v != (double)(long)v)
        return false;
    o->pid_names[o->n_pids] = s;
    o->pids[o->n_pids++] = (long)v;
    return true;
}

static int parse_args(opts *o, int argc, char **argv)
{
    *o = (opts){.path = "/v1/chat/completions",
                .model = "echo-1",
                .conns = 32,
                .words = 8,
                .max_tokens = 32,
                .warmup = 2,
                .duration = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--stream") == 0) {
            o->stream = true;
            takes = false;
        } else if (strcmp(a, "--strict") == 0) {
            o->strict = true;
            takes = false;
        } else if (v == NULL) {
            ok = false;
        } else if (strcmp(a, "--target") == 0) {
            ok = parse_target(o, v);
        } else if (strcmp(a, "--path") == 0) {
            ok = v[0] == '/';
            o->path = v;
            o->path_set = true;
        } else if (strcmp(a, "--api") == 0) {
            ok = strcmp(v, "openai") == 0 || strcmp(v, "anthropic") == 0;
            o->anthropic = strcmp(v, "anthropic") == 0;
        } else if (strcmp(a, "--vary-header") == 0) {
            ok = o->n_variants < MAX_VARIANTS && (v[0] == '\0' || strchr(v, ':') != NULL) &&
                 strpbrk(v, "\r\n") == NULL;
            if (ok)
                o->variants[o->n_variants++] = v;
        } else if (strcmp(a, "--model") == 0) {
            ok = v[0] != '\0' && strpbrk(v, "\"\\") == NULL;
            o->model = v;
        } else if (strcmp(a, "--header") == 0) {
            ok = o->n_headers < MAX_HEADERS && strchr(v, ':') != NULL && strpbrk(v, "\r\n") == NULL;
            if (ok)
                o->headers[o->n_headers++] = v;
        } else if (strcmp(a, "--rate") == 0) {
            ok = parse_double(&o->rate, v, 0.1, 1e6);
        } else if (strcmp(a, "--conns") == 0) {
            ok = parse_uns(&o->conns, v, 1, 4096);
        } else if (strcmp(a, "--words") == 0) {
            ok = parse_uns(&o->words, v, 1, 1000);
        } else if (strcmp(a, "--max-tokens") == 0) {
            ok = parse_uns(&o->max_tokens, v, 1, 100000);
        } else if (strcmp(a, "--warmup") == 0) {
            ok = parse_double(&o->warmup, v, 0, 3600);
        } else if (strcmp(a, "--duration") == 0) {
            ok = parse_double(&o->duration, v, 0.1, 86400);
        } else if (strcmp(a, "--finish") == 0) {
            ok = parse_double(&o->finish, v, 0, 3600);
        } else if (strcmp(a, "--pid") == 0) {
            ok = parse_pid(o, v);
        } else if (strcmp(a, "--timeline") == 0) {
            ok = parse_uns(&o->timeline_ms, v, 10, 60000);
        } else if (strcmp(a, "--json") == 0) {
            o->json_out = v;
        } else {
            fprintf(stderr, "path_bench: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "path_bench: %s needs a valid value\n", a);
            return 2;
        }
        if (takes)
            i++;
    }
    if (o->name == NULL) {
        fprintf(stderr, "path_bench: --target NAME=HOST:PORT is required\n");
        usage(stderr);
        return 2;
    }
    if (o->anthropic && !o->path_set)
        o->path = "/v1/messages";
    return 0;
}

/* The request body: a user message of `words` words, max_tokens, stream (with usage for OpenAI)
 * if asked. */
static bool build_body(char *out, size_t cap, const opts *o)
{
    static const char *const vocab[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
                                        "golf", "hotel", "india", "juliet", "kilo", "lima"};
    size_t n = 0;
    const char *stream = !o->stream   ? ""
                         : o->anthropic ? "\"stream\":true,"
                                        : "\"stream\":true,\"stream_options\":{\"include_usage\":true},";
    int k = snprintf(out, cap, "{\"model\":\"%s\",\"max_tokens\":%u,%s\"messages\":[{\"role\":"
                               "\"user\",\"content\":\"",
                     o->model, o->max_tokens, stream);
    if (k < 0 || (size_t)k >= cap)
        return false;
    n = (size_t)k;
    for (unsigned i = 0; i < o->words; i++) {
        k = snprintf(out + n, cap - n, "%s%s", i ? " " : "", vocab[i % 12]);
        if (k < 0 || (size_t)k >= cap - n)
            return false;
        n += (size_t)k;
    }
    k = snprintf(out + n, cap - n, "\"}]}");
    return k >= 0 && (size_t)k < cap - n;
}

static json_t *num_or_null(double v)
{
    return v >= 0 ? json_real(v) : json_null();
}

static bool write_json(const opts *o, const result *r)
{
    json_t *j = result_json(r), *cpu = json_object();
    FILE *f;
    char *line;
    bool ok = false;

    if (j == NULL || cpu == NULL)
        goto out;
    for (unsigned i = 0; i < o->n_pids; i++)
        json_object_set_new(cpu, o->pid_names[i], num_or_null(r->pid_cpu[i]));
    json_object_set_new(cpu, "loadgen", num_or_null(r->gen_cpu));
    json_object_set_new(cpu, "other", num_or_null(r->other_cpu));
    json_object_set_new(j, "target", json_string(o->name));
    json_object_set_new(j, "mode", json_string(o->stream ? "stream" : "whole"));
    json_object_set_new(j, "loop", json_string(o->rate > 0 ? "open" : "closed"));
    json_object_set_new(j, "rate", o->rate > 0 ? json_real(o->rate) : json_null());
    json_object_set_new(j, "conns", json_integer(o->conns));
    json_object_set_new(j, "no_answer", json_integer((json_int_t)r->no_needle));
    json_object_set_new(j, "api", json_string(o->anthropic ? "anthropic" : "openai"));
    json_object_set_new(j, "variants", json_integer(o->n_variants ? o->n_variants : 1));
    json_object_set_new(j, "strict", json_boolean(o->strict));
    json_object_set_new(j, "all", json_pack("{sI sI sI sI ss}", "sent", (json_int_t)r->all_sent,
                                            "ok", (json_int_t)r->all_ok, "failed",
                                            (json_int_t)r->all_failed, "unfinished",
                                            (json_int_t)r->all_unfinished, "statuses",
                                            r->all_statuses));
    if (o->stream) {
        json_object_set_new(j, "ttft_p50_ms", json_real(r->ttft_p50));
        json_object_set_new(j, "ttft_p90_ms", json_real(r->ttft_p90));
        json_object_set_new(j, "ttft_p99_ms", json_real(r->ttft_p99));
        json_object_set_new(j, "ttft_max_ms", json_real(r->ttft_max));
        json_object_set_new(j, "gap_p50_ms", json_real(r->gap_p50));
        json_object_set_new(j, "gap_p90_ms", json_real(r->gap_p90));
        json_object_set_new(j, "gap_p99_ms", json_real(r->gap_p99));
        json_object_set_new(j, "gap_max_ms", json_real(r->gap_max));
        json_object_set_new(j, "gaps", json_integer((json_int_t)r->gap_n));
        json_object_set_new(j, "events_per_reply", json_real(r->avg_events));
    }
    json_object_set_new(j, "cpu", cpu);
    cpu = NULL;
    if ((line = json_dumps(j, JSON_COMPACT)) == NULL)
        goto out;
    if ((f = fopen(o->json_out, "a")) != NULL) {
        ok = fprintf(f, "%s\n", line) > 0;
        ok = fclose(f) == 0 && ok;
    }
    free(line);
out:
    json_decref(cpu);
    json_decref(j);
    if (!ok)
        fprintf(stderr, "path_bench: cannot write %s\n", o->json_out);
    return ok;
}

int main(int argc, char **argv)
{
    opts o;
    lg_config cfg = {0};
    struct sockaddr_in addr = {.sin_family = AF_INET};
    char body[4096], extra[2048] = "", label[48], vextra[2048];
    req rq[MAX_VARIANTS] = {{0}};
    unsigned nv;
    queue *qs = NULL;
    phase ph = {0};
    result res = {0};
    size_t el = 0;
    int rc = parse_args(&o, argc, argv);

    if (rc != 0)
        return rc;
    if (inet_pton(AF_INET, o.host, &addr.sin_addr) != 1) {
        fprintf(stderr, "path_bench: %s is not an IPv4 address\n", o.host);
        return 2;
    }
    addr.sin_port = htons((uint16_t)o.port);
    for (unsigned i = 0; i < o.n_headers; i++) {
        int k = snprintf(extra + el, sizeof(extra) - el, "%s\r\n", o.headers[i]);
        if (k < 0 || (size_t)k >= sizeof(extra) - el) {
            fprintf(stderr, "path_bench: headers too long\n");
            return 2;
        }
        el += (size_t)k;
    }
    nv = o.n_variants ? o.n_variants : 1;
    if (!build_body(body, sizeof(body), &o))
        rc = 2;
    for (unsigned v = 0; rc == 0 && v < nv; v++) {
        const char *h = o.n_variants ? o.variants[v] : "";
        int k = snprintf(vextra, sizeof(vextra), "%s%s%s", extra, h, h[0] ? "\r\n" : "");
        if (k < 0 || (size_t)k >= sizeof(vextra) ||
            !req_build_h(&rq[v], "POST", o.path, o.host, o.port, vextra, body, strlen(body)))
            rc = 2;
    }
    if (rc != 0) {
        fprintf(stderr, "path_bench: the request does not fit\n");
        for (unsigned v = 0; v < nv; v++)
            free(rq[v].data);
        return rc;
    }
    if ((qs = queues_new(o.conns)) == NULL)
        return 1;
    /* Connection i takes the variants in turn from variant i mod nv, so at any rate the mix is
     * even across the connections and over time. */
    for (unsigned i = 0; i < o.conns; i++) {
        if ((qs[i].items = malloc(nv * sizeof(uint32_t))) == NULL)
            return 1;
        for (unsigned v = 0; v < nv; v++)
            qs[i].items[v] = (i + v) % nv;
        qs[i].n = nv;
        qs[i].cycle = true;
    }
    cfg.host = o.host;
    cfg.port = o.port;
    cfg.conns = o.conns;
    cfg.threads = 1;
    cfg.warmup = o.warmup;
    cfg.duration = o.duration;
    cfg.timeline_ms = o.timeline_ms;
    for (unsigned i = 0; i < o.n_pids; i++)
        cfg.pids[i] = o.pids[i];
    if (o.rate > 0)
        snprintf(label, sizeof(label), "%s %s%s @%.0f", o.name, o.anthropic ? "anthropic " : "",
                 o.stream ? "stream" : "whole", o.rate);
    else
        snprintf(label, sizeof(label), "%s %s%s max", o.name, o.anthropic ? "anthropic " : "",
                 o.stream ? "stream" : "whole");
    ph.name = label;
    ph.reqs = rq;
    ph.queues = qs;
    ph.rate = o.rate;
    ph.needle = "echo:";
    ph.event_needle = o.stream ? "\"delta\"" : NULL;
    if (o.strict && o.stream) {
        /* docs/protocol.md §10.12: a stream that fails after it started ends with an error
         * event, never with the clean end */
        ph.tail_needle = o.anthropic ? "event: message_stop" : "data: [DONE]";
        ph.bad_needle = o.anthropic ? "event: error" : "data: {\"error\"";
    }
    ph.finish_ns = (int64_t)(o.finish * 1e9);
    if (!run_phase(&cfg, &addr, &ph, &res)) {
        queues_free(qs, o.conns);
        for (unsigned v = 0; v < nv; v++)
            free(rq[v].data);
        return 1;
    }
    snprintf(res.name, sizeof(res.name), "%s", label);
    printf("%-24s %8" PRIu64 " %6" PRIu64 " %8.0f %8.3f %8.3f %8.3f %8.3f", res.name, res.requests,
           res.errors, res.rps, res.p50, res.p90, res.p99, res.max);
    if (o.stream)
        printf("  ttft %.3f/%.3f/%.3f  gap %.3f/%.3f/%.3f  events %.1f", res.ttft_p50, res.ttft_p90,
               res.ttft_p99, res.gap_p50, res.gap_p90, res.gap_p99, res.avg_events);
    printf("\n");
    if (res.statuses[0] != '\0' || res.no_needle > 0 || res.note[0] != '\0')
        printf("  non-2xx: %s  without an answer: %" PRIu64 "  %s\n",
               res.statuses[0] ? res.statuses : "none", res.no_needle, res.note);
    if (o.finish > 0)
        printf("  all requests: %" PRIu64 " sent, %" PRIu64 " answered, %" PRIu64
               " failed, %" PRIu64 " unfinished%s%s\n",
               res.all_sent, res.all_ok, res.all_failed, res.all_unfinished,
               res.all_statuses[0] ? "; non-2xx: " : "", res.all_statuses);
    fflush(stdout);
    rc = 0;
    if (o.json_out != NULL && !write_json(&o, &res))
        rc = 1;
    queues_free(qs, o.conns);
    for (unsigned v = 0; v < nv; v++)
        free(rq[v].data);
    return rc;
}
