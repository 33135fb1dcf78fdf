/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry_bench: the registry's load benchmark (bench/README.md). It makes N seller keys and
 * signed records (several services, capabilities and prices, so the listings have ranking and
 * filtering to do), announces them all, then runs timed phases of signed heartbeats and
 * GET /v1/peers?service=…&limit=20 queries against a running openseed-registry on loopback,
 * with the load engine of loadgen.h. Heartbeats are signed before their phase (a strictly
 * increasing seq per node, each node's heartbeats kept on one connection so they arrive in
 * order), so the generator's CPU goes to sending. It prints numbers and never passes or fails on
 * them; every phase is bounded in time and every request pool in count, so it stops by itself.
 */
#define _GNU_SOURCE
#include <getopt.h>

#include <jansson.h>

#include "openseed/ct.h"
#include "openseed/err.h"
#include "openseed/hex.h"
#include "openseed/hpke.h"
#include "openseed/init.h"
#include "openseed/ohttp.h"
#include "openseed/record.h"
#include "openseed/secp.h"

#include "loadgen.h"

#define MAX_CONNS 1024
#define MAX_THREADS 64
#define MAX_PHASES 16

static const char *const services[] = {"llama3.1-8b",  "llama3.1-70b", "qwen2.5-7b",
                                       "qwen2.5-72b",  "mistral-7b",   "mixtral-8x7b",
                                       "deepseek-v3",  "gemma2-9b"};
#define N_SERVICES (sizeof(services) / sizeof(services[0]))
/* Skewed popularity: the first services are offered by many sellers, the last by few. */
static const unsigned service_weight[N_SERVICES] = {30, 18, 14, 10, 10, 8, 6, 4};

/* ------------------------------------------------------------------ options */

typedef enum { PH_ANNOUNCE, PH_HEARTBEAT, PH_PEERS } phase_kind;

typedef struct phase_spec {
    phase_kind kind;
    double rate; /* total offered req/s; 0 = closed loop */
} phase_spec;

typedef struct options {
    char host[64];
    unsigned port;
    unsigned sellers;
    uint64_t chain_id;
    unsigned conns, threads, sign_threads;
    double duration, warmup;
    uint64_t hb_count; /* 0: computed from the phases */
    unsigned limit;
    long server_pid;
    unsigned timeline_ms;
    const char *json_out; /* NULL, or a file for the results as JSON */
    phase_spec phases[MAX_PHASES];
    size_t n_phases;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: registry_bench --port N [options]\n"
            "  --host ADDR          registry IPv4 address [127.0.0.1]\n"
            "  --port N             registry port (required)\n"
            "  --sellers N          sellers to generate and announce [10000]\n"
            "  --chain-id N         chain id of the records and heartbeats [8453]\n"
            "  --connections K      keep-alive connections [16]\n"
            "  --threads T          generator threads sending requests [1]\n"
            "  --sign-threads N     threads for key generation and signing [online CPUs]\n"
            "  --duration S         measured seconds per timed phase [10]\n"
            "  --warmup S           unmeasured seconds before each timed phase [1]\n"
            "  --phases LIST        comma-separated: announce, heartbeat[@RATE], peers[@RATE]\n"
            "                       [announce,heartbeat,peers]; RATE = offered req/s (open loop)\n"
            "  --hb-count N         heartbeats to pre-sign [enough for the heartbeat phases]\n"
            "  --limit N            limit= of the peers queries [20]\n"
            "  --server-pid PID     report this process's CPU time per phase\n"
            "  --timeline MS        also print requests, p99 and max per MS-long interval\n"
            "  --json FILE          also write the results to FILE as JSON\n");
}

static bool parse_u64(uint64_t *out, const char *s, uint64_t lo, uint64_t hi)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_seconds(double *out, const char *s, double lo, double hi)
{
    char *end;
    double v;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    v = strtod(s, &end);
    if (*end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool parse_phases(options *o, const char *list)
{
    char buf[512];
    char *tok, *next;

    if (strlen(list) >= sizeof(buf))
        return false;
    memcpy(buf, list, strlen(list) + 1);
    o->n_phases = 0;
    for (tok = buf; tok != NULL; tok = next) {
        phase_spec *p;
        char *at;
        if ((next = strchr(tok, ',')) != NULL)
            *next++ = '\0';
        if (o->n_phases == MAX_PHASES)
            return false;
        p = &o->phases[o->n_phases++];
        p->rate = 0;
        if ((at = strchr(tok, '@')) != NULL) {
            uint64_t r;
            *at = '\0';
            if (!parse_u64(&r, at + 1, 1, 10000000))
                return false;
            p->rate = (double)r;
        }
        if (strcmp(tok, "announce") == 0 && at == NULL)
            p->kind = PH_ANNOUNCE;
        else if (strcmp(tok, "heartbeat") == 0)
            p->kind = PH_HEARTBEAT;
        else if (strcmp(tok, "peers") == 0)
            p->kind = PH_PEERS;
        else
            return false;
    }
    return o->n_phases > 0;
}

static bool parse_options(options *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", required_argument, NULL, 'H'},        {"port", required_argument, NULL, 'p'},
        {"sellers", required_argument, NULL, 'n'},     {"chain-id", required_argument, NULL, 'c'},
        {"connections", required_argument, NULL, 'k'}, {"threads", required_argument, NULL, 't'},
        {"sign-threads", required_argument, NULL, 's'}, {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},      {"phases", required_argument, NULL, 'P'},
        {"hb-count", required_argument, NULL, 'b'},    {"limit", required_argument, NULL, 'l'},
        {"server-pid", required_argument, NULL, 'S'},  {"timeline", required_argument, NULL, 'L'},
        {"json", required_argument, NULL, 'J'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t v;
    int c;

    memset(o, 0, sizeof(*o));
    snprintf(o->host, sizeof(o->host), "127.0.0.1");
    o->sellers = 10000;
    o->chain_id = 8453;
    o->conns = 16;
    o->threads = 1;
    o->sign_threads = ncpu > 0 && ncpu <= MAX_THREADS ? (unsigned)ncpu : 2;
    o->duration = 10;
    o->warmup = 1;
    o->limit = 20;
    if (!parse_phases(o, "announce,heartbeat,peers"))
        return false;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'H': {
            struct in_addr a;
            if (strlen(optarg) >= sizeof(o->host) || inet_pton(AF_INET, optarg, &a) != 1)
                return false;
            snprintf(o->host, sizeof(o->host), "%s", optarg);
            break;
        }
        case 'p':
            if (!parse_u64(&v, optarg, 1, 65535))
                return false;
            o->port = (unsigned)v;
            break;
        case 'n':
            if (!parse_u64(&v, optarg, 1, 1000000))
                return false;
            o->sellers = (unsigned)v;
            break;
        case 'c':
            if (!parse_u64(&o->chain_id, optarg, 1, INT64_MAX))
                return false;
            break;
        case 'k':
            if (!parse_u64(&v, optarg, 1, MAX_CONNS))
                return false;
            o->conns = (unsigned)v;
            break;
        case 't':
            if (!parse_u64(&v, optarg, 1, MAX_THREADS))
                return false;
            o->threads = (unsigned)v;
            break;
        case 's':
            if (!parse_u64(&v, optarg, 1, MAX_THREADS))
                return false;
            o->sign_threads = (unsigned)v;
            break;
        case 'd':
            if (!parse_seconds(&o->duration, optarg, 0.1, 3600))
                return false;
            break;
        case 'w':
            if (!parse_seconds(&o->warmup, optarg, 0, 600))
                return false;
            break;
        case 'P':
            if (!parse_phases(o, optarg))
                return false;
            break;
        case 'b':
            if (!parse_u64(&o->hb_count, optarg, 1, 100000000))
                return false;
            break;
        case 'l':
            if (!parse_u64(&v, optarg, 1, 1000))
                return false;
            o->limit = (unsigned)v;
            break;
        case 'S':
            if (!parse_u64(&v, optarg, 1, INT32_MAX))
                return false;
            o->server_pid = (long)v;
            break;
        case 'L':
            if (!parse_u64(&v, optarg, 10, 60000))
                return false;
            o->timeline_ms = (unsigned)v;
            break;
        case 'J':
            o->json_out = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return false;
        }
    }
    if (optind != argc || o->port == 0)
        return false;
    /* Heartbeats from nodes the registry has not seen are 404s: announce them first. */
    for (size_t i = 0; i < o->n_phases && o->phases[i].kind != PH_ANNOUNCE; i++)
        if (o->phases[i].kind == PH_HEARTBEAT) {
            fprintf(stderr, "registry_bench: a heartbeat phase needs an announce phase before it\n");
            return false;
        }
    if (o->threads > o->conns)
        o->threads = o->conns;
    return true;
}

/* ------------------------------------------------------------------ sellers */

typedef struct seller {
    uint8_t priv[32];
    uint8_t addr[20];
    char endpoint[64];
    uint64_t seq; /* last seq signed */
} seller;

/* A small deterministic mixer for the sellers' offerings (not for keys). */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static size_t pick_service(uint64_t h)
{
    unsigned total = 0, r;
    for (size_t i = 0; i < N_SERVICES; i++)
        total += service_weight[i];
    r = (unsigned)(h % total);
    for (size_t i = 0; i < N_SERVICES; i++) {
        if (r < service_weight[i])
            return i;
        r -= service_weight[i];
    }
    return 0;
}

typedef struct setup {
    const options *o;
    seller *sellers;
    req *announces;     /* one per seller */
    req *heartbeats;    /* rounds * sellers, index round * n + seller */
    size_t hb_rounds;
    uint64_t hb_ts;     /* timestamp of every heartbeat (seconds) */
    atomic_int failed;
    char why[256];
} setup;

typedef struct sign_task {
    setup *su;
    size_t from, to;
    int what; /* 0: keys and announces, 1: heartbeats */
} sign_task;

static void set_failed(setup *su, const char *what, size_t i)
{
    int z = 0;
    if (atomic_compare_exchange_strong(&su->failed, &z, 1))
        snprintf(su->why, sizeof(su->why), "%s failed for seller %zu", what, i);
}

static bool make_announce(setup *su, size_t i, os_record *r)
{
    const options *o = su->o;
    seller *s = &su->sellers[i];
    uint64_t h = mix64(i);
    uint8_t sk[OS_HPKE_NSK], pk[OS_HPKE_NPK], sig[65];
    char sig_hex[OS_HEX_LEN(65)];
    json_t *rec = NULL, *body = NULL;
    char *text = NULL;
    size_t n_off, used = 0;
    bool ok = false;

    if (os_secp_keygen(s->priv) != OS_OK || os_secp_address(s->addr, s->priv) != OS_OK)
        return false;
    snprintf(s->endpoint, sizeof(s->endpoint), "https://seller-%zu.bench.example:8378", i);
    s->seq = (uint64_t)real_ms();

    memset(r, 0, sizeof(*r));
    memcpy(r->node, s->addr, 20);
    snprintf(r->endpoint, sizeof(r->endpoint), "%s", s->endpoint);
    r->seq = s->seq;
    r->timestamp = (uint64_t)(real_ms() / 1000);
    r->chain_id = o->chain_id;
    memset(r->escrow, 0x11, 20);
    if (os_hex_decode_exact(r->asset, 20, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913") != OS_OK ||
        os_hpke_keypair(sk, pk) != OS_OK ||
        os_ohttp_keyconfig_encode(r->ohttp_keys, sizeof(r->ohttp_keys), &r->ohttp_keys_len, 1, pk,
                                  NULL, 0) != OS_OK)
        goto out;
    n_off = 1 + (size_t)(h % 3);
    for (size_t k = 0; k < n_off; k++) {
        os_offering *of = &r->offerings[r->n_offerings];
        uint64_t hk = mix64(h + k + 1);
        size_t svc = pick_service(hk);
        unsigned capr = (unsigned)((hk >> 20) % 100);
        if (used & (1u << svc))
            continue; /* a seller offers a service once */
        used |= 1u << svc;
        snprintf(of->capability, sizeof(of->capability), "%s",
                 capr < 85 ? "inference" : capr < 95 ? "agent" : "tool");
        snprintf(of->services[0], sizeof(of->services[0]), "%s", services[svc]);
        of->n_services = 1;
        snprintf(of->model, sizeof(of->model), "model-%s", services[svc]);
        of->apis = OS_API_OPENAI_CHAT | ((hk >> 8) & 1 ? OS_API_ANTHROPIC_MESSAGES : 0);
        /* 0.02 to 2.0 USDC per million input tokens; output 2-5x that; cache at half. */
        of->pricing.input = 20000 + ((hk >> 32) % 199) * 10000;
        of->pricing.output = of->pricing.input * (2 + (hk >> 40) % 4);
        of->pricing.cached = of->pricing.input / 2;
        of->max_output_tokens = 4096;
        r->n_offerings++;
    }
    if ((rec = os_record_to_json(r)) == NULL || os_record_sign(sig, rec, s->priv) != OS_OK ||
        os_hex_encode(sig_hex, sizeof(sig_hex), sig, 65, 1) != OS_OK ||
        (body = json_pack("{s:O,s:s}", "record", rec, "signature", sig_hex)) == NULL ||
        (text = json_dumps(body, JSON_COMPACT)) == NULL)
        goto out;
    ok = req_build(&su->announces[i], "POST", "/v1/announce", o->host, o->port, text,
                   strlen(text));
out:
    os_wipe(sk, sizeof(sk));
    free(text);
    json_decref(body);
    json_decref(rec);
    return ok;
}

static bool make_heartbeats(setup *su, size_t i)
{
    const options *o = su->o;
    const size_t n = o->sellers;
    seller *s = &su->sellers[i];
    os_heartbeat hb;

    memset(&hb, 0, sizeof(hb));
    memcpy(hb.node, s->addr, 20);
    snprintf(hb.endpoint, sizeof(hb.endpoint), "%s", s->endpoint);
    hb.timestamp = su->hb_ts;
    for (size_t round = 0; round < su->hb_rounds; round++) {
        uint64_t h = mix64(i * 1000003u + round);
        json_t *j;
        char *text;
        bool ok;

        hb.seq = ++s->seq;
        hb.capacity = 1 + (uint32_t)(h % 64);
        hb.active = (uint32_t)((h >> 16) % (hb.capacity + 1));
        if (os_heartbeat_sign(&hb, s->priv, o->chain_id) != OS_OK ||
            (j = os_heartbeat_to_json(&hb)) == NULL)
            return false;
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (text == NULL)
            return false;
        ok = req_build(&su->heartbeats[round * n + i], "POST", "/v1/heartbeat", o->host, o->port,
                       text, strlen(text));
        free(text);
        if (!ok)
            return false;
    }
    return true;
}

static void *sign_main(void *arg)
{
    sign_task *t = arg;
    os_record *r = malloc(sizeof(*r));

    if (r == NULL) {
        set_failed(t->su, "allocation", t->from);
        return NULL;
    }
    for (size_t i = t->from; i < t->to && atomic_load(&t->su->failed) == 0; i++) {
        if (t->what == 0 && !make_announce(t->su, i, r))
            set_failed(t->su, "building and signing the record", i);
        else if (t->what == 1 && !make_heartbeats(t->su, i))
            set_failed(t->su, "signing heartbeats", i);
    }
    free(r);
    return NULL;
}

static bool run_signers(setup *su, int what)
{
    unsigned nt = su->o->sign_threads;
    size_t n = su->o->sellers;
    pthread_t tid[MAX_THREADS];
    sign_task tasks[MAX_THREADS];
    unsigned started = 0;

    for (unsigned t = 0; t < nt; t++) {
        tasks[t] = (sign_task){su, n * t / nt, n * (t + 1) / nt, what};
        if (pthread_create(&tid[t], NULL, sign_main, &tasks[t]) != 0) {
            set_failed(su, "starting a thread", 0);
            break;
        }
        started++;
    }
    for (unsigned t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    return atomic_load(&su->failed) == 0;
}

/* ------------------------------------------------------------------ main */

/* Connection c sends the items of every seller i with i % K == c, round after round, so the
 * heartbeats of one node stay in seq order on one connection. */
static bool queues_by_seller(queue *qs, unsigned K, size_t n, size_t rounds)
{
    for (unsigned c = 0; c < K; c++) {
        size_t per = (n - c + K - 1) / K, m = 0;
        if ((qs[c].items = malloc((per * rounds + 1) * sizeof(uint32_t))) == NULL)
            return false;
        for (size_t r = 0; r < rounds; r++)
            for (size_t i = c; i < n; i += K)
                qs[c].items[m++] = (uint32_t)(r * n + i);
        qs[c].n = m;
        qs[c].pos = 0;
        qs[c].cycle = false;
    }
    return true;
}

/* {"sellers": N, "connections": K, "phases": [result_json...]} to o->json_out. */
static bool write_json(const options *o, const result *results, size_t n)
{
    json_t *j = json_pack("{s:I,s:I,s:[]}", "sellers", (json_int_t)o->sellers, "connections",
                          (json_int_t)o->conns, "phases");
    json_t *arr = j != NULL ? json_object_get(j, "phases") : NULL;
    bool ok = arr != NULL;

    for (size_t i = 0; ok && i < n; i++)
        ok = json_array_append_new(arr, result_json(&results[i])) == 0;
    ok = ok && json_dump_file(j, o->json_out, JSON_INDENT(1)) == 0;
    json_decref(j);
    if (!ok)
        fprintf(stderr, "registry_bench: cannot write %s\n", o->json_out);
    return ok;
}

int main(int argc, char **argv)
{
    options o;
    lg_config lc;
    setup su;
    struct sockaddr_in addr;
    result results[MAX_PHASES];
    size_t n_results = 0;
    req *peers_reqs = NULL;
    size_t n_peers_reqs = 0;
    char model[128], gen_cpus[64], srv_cpus[64];
    int64_t t;
    int rc = 1;

    if (!parse_options(&o, argc, argv)) {
        usage(stderr);
        return 2;
    }
    if (o.conns > o.sellers)
        o.conns = o.sellers;
    if (o.threads > o.conns)
        o.threads = o.conns;
    if (os_init() != OS_OK) {
        fprintf(stderr, "registry_bench: os_init failed\n");
        return 1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o.port);
    if (inet_pton(AF_INET, o.host, &addr.sin_addr) != 1)
        return 2;
    lc = (lg_config){.host = o.host,
                     .port = o.port,
                     .conns = o.conns,
                     .threads = o.threads,
                     .warmup = o.warmup,
                     .duration = o.duration,
                     .server_pid = o.server_pid,
                     .timeline_ms = o.timeline_ms};
    memset(&su, 0, sizeof(su));
    su.o = &o;
    atomic_init(&su.failed, 0);
    su.sellers = calloc(o.sellers, sizeof(seller));
    su.announces = calloc(o.sellers, sizeof(req));
    if (su.sellers == NULL || su.announces == NULL)
        goto out;

    cpu_model(model, sizeof(model));
    cpus_allowed(gen_cpus, sizeof(gen_cpus), 0);
    printf("registry_bench: %u sellers, %u connections over %u thread%s, %.0f s per timed phase "
           "(+%.0f s warm-up), peers limit=%u\n",
           o.sellers, o.conns, o.threads, o.threads == 1 ? "" : "s", o.duration, o.warmup, o.limit);
    printf("machine: %ld online CPUs (%s); generator CPUs %s", sysconf(_SC_NPROCESSORS_ONLN),
           model, gen_cpus);
    if (o.server_pid > 0) {
        cpus_allowed(srv_cpus, sizeof(srv_cpus), o.server_pid);
        printf("; server pid %ld CPUs %s", o.server_pid, srv_cpus);
    }
    printf("\n");
    fflush(stdout);

    t = mono_ns();
    if (!run_signers(&su, 0)) {
        fprintf(stderr, "registry_bench: %s\n", su.why);
        goto out;
    }
    fprintf(stderr, "registry_bench: %u keys and signed records in %.1f s (%u threads)\n",
            o.sellers, (double)(mono_ns() - t) / 1e9, o.sign_threads);

    /* Peers queries: every service, with and without filters, rotating per connection. */
    {
        static const char *const filters[] = {"", "&capability=inference", "&max_input=500000",
                                              "&max_input=200000&max_output=800000"};
        const size_t nf = sizeof(filters) / sizeof(filters[0]);
        if ((peers_reqs = calloc(N_SERVICES * nf, sizeof(req))) == NULL)
            goto out;
        for (size_t s = 0; s < N_SERVICES; s++) {
            for (size_t f = 0; f < nf; f++) {
                char path[256];
                snprintf(path, sizeof(path), "/v1/peers?service=%s%s&limit=%u", services[s],
                         filters[f], o.limit);
                if (!req_build(&peers_reqs[n_peers_reqs], "GET", path, o.host, o.port, NULL, 0))
                    goto out;
                n_peers_reqs++;
            }
        }
    }

    for (size_t pi = 0; pi < o.n_phases; pi++) {
        const phase_spec *sp = &o.phases[pi];
        phase ph;
        result *res = &results[n_results];
        queue *qs = queues_new(o.conns);
        req *hbs = NULL;
        size_t n_hbs = 0;
        bool ran;

        memset(&ph, 0, sizeof(ph));
        memset(res, 0, sizeof(*res));
        if (qs == NULL)
            goto out;
        ph.queues = qs;
        ph.rate = sp->rate;
        if (sp->kind == PH_ANNOUNCE) {
            ph.name = "announce";
            ph.reqs = su.announces;
            ph.drain = true;
            if (!queues_by_seller(qs, o.conns, o.sellers, 1)) {
                queues_free(qs, o.conns);
                goto out;
            }
        } else if (sp->kind == PH_HEARTBEAT) {
            /* Signed now, just before the phase, so timestamps stay well inside the registry's
             * clock-skew window however many phases come before. */
            double want = o.hb_count > 0 ? (double)o.hb_count
                                         : (o.warmup + o.duration) *
                                               (sp->rate > 0 ? sp->rate * 1.05 : 20000.0);
            su.hb_rounds = (size_t)(want / o.sellers) + 1;
            su.hb_ts = (uint64_t)(real_ms() / 1000);
            n_hbs = su.hb_rounds * o.sellers;
            if ((hbs = calloc(n_hbs, sizeof(req))) == NULL) {
                queues_free(qs, o.conns);
                goto out;
            }
            su.heartbeats = hbs;
            t = mono_ns();
            if (!run_signers(&su, 1) || !queues_by_seller(qs, o.conns, o.sellers, su.hb_rounds)) {
                fprintf(stderr, "registry_bench: %s\n", su.why);
                reqs_free(hbs, n_hbs);
                queues_free(qs, o.conns);
                goto out;
            }
            fprintf(stderr, "registry_bench: %zu heartbeats signed in %.1f s (%u threads)\n",
                    n_hbs, (double)(mono_ns() - t) / 1e9, o.sign_threads);
            ph.name = "heartbeat";
            ph.reqs = hbs;
        } else {
            ph.name = "peers";
            ph.reqs = peers_reqs;
            ph.needle = "\"score\":";
            for (unsigned c = 0; c < o.conns; c++) {
                if ((qs[c].items = malloc(n_peers_reqs * sizeof(uint32_t))) == NULL) {
                    queues_free(qs, o.conns);
                    goto out;
                }
                for (size_t j = 0; j < n_peers_reqs; j++)
                    qs[c].items[j] = (uint32_t)((c + j) % n_peers_reqs);
                qs[c].n = n_peers_reqs;
                qs[c].cycle = true;
            }
        }
        if (sp->rate > 0)
            snprintf(res->name, sizeof(res->name), "%s@%.0f", ph.name, sp->rate);
        else
            snprintf(res->name, sizeof(res->name), "%s", ph.name);
        fprintf(stderr, "registry_bench: running %s\n", res->name);
        ran = run_phase(&lc, &addr, &ph, res);
        reqs_free(hbs, n_hbs);
        su.heartbeats = NULL;
        queues_free(qs, o.conns);
        if (!ran)
            goto out;
        print_result(res, n_results == 0);
        fflush(stdout);
        n_results++;
    }

    printf("\nsummary (closed loop: %u connections each with one request in flight; phase@R: open "
           "loop at R req/s, latency from the scheduled send time; CPU in %% of one CPU: srv the "
           "registry, gen this generator, other the rest of the machine)\n",
           o.conns);
    for (size_t i = 0; i < n_results; i++)
        print_result(&results[i], i == 0);
    for (size_t i = 0; i < n_results; i++)
        print_details(&results[i]);
    rc = o.json_out != NULL && !write_json(&o, results, n_results) ? 1 : 0;
out:
    if (su.sellers != NULL)
        os_wipe(su.sellers, o.sellers * sizeof(seller));
    free(su.sellers);
    reqs_free(su.announces, o.sellers);
    reqs_free(peers_reqs, n_peers_reqs);
    return rc;
}
