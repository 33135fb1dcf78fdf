/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SDK example: discovery with os_network. It asks one or more registries for the sellers of a
 * chain and prints only what it could verify: each registry's health, then every seller whose
 * record is signed by its own node key and names the expected chain (and escrow, when given),
 * one row per offering, best ranked first, and how many records were left out. A registry can
 * hide sellers from this list but cannot put a forged or altered one in it. --json prints the
 * same as one JSON document (offerings in the record's form, PROTOCOL.md §3). Exit status: 0,
 * 1 when no registry answers, 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "openseed/init.h"
#include "openseed/log.h"
#include "openseed/money.h"
#include "openseed/network.h"
#include "openseed/offering.h"
#include "openseed/record.h"
#include "openseed/secp.h"

typedef struct args {
    const char *registries[OS_NETWORK_MAX_REGISTRIES];
    size_t n_registries;
    uint64_t chain_id;
    uint8_t escrow[20];
    bool has_escrow;
    const char *service;
    uint64_t max_input; /* micro-USDC per million input tokens; 0: any */
    bool json;
} args;

static const char usage_text[] =
    "usage: list_peers --registry URL [--registry URL ...] --chain-id N [--escrow 0xADDRESS]\n"
    "                  [--service NAME] [--max-input USDC] [--json]\n"
    "Lists the verified sellers the registries know; prices are USDC per million tokens.\n";

/* Says what is wrong with the command line, then how to use it; returns the exit status 2. */
__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...)
{
    va_list ap;

    fputs("list_peers: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    return 2;
}

/* 0 with *a filled, or the exit status of a usage error (already reported). */
static int parse_args(args *a, int argc, char **argv)
{
    enum { O_REGISTRY = 256, O_CHAIN, O_ESCROW, O_SERVICE, O_MAX_INPUT, O_JSON, O_HELP };
    static const struct option opts[] = {
        {"registry", required_argument, NULL, O_REGISTRY},
        {"chain-id", required_argument, NULL, O_CHAIN},
        {"escrow", required_argument, NULL, O_ESCROW},
        {"service", required_argument, NULL, O_SERVICE},
        {"max-input", required_argument, NULL, O_MAX_INPUT},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int c;

    memset(a, 0, sizeof(*a));
    opterr = 0; /* we say what is wrong ourselves, in one format */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_REGISTRY:
            if (a->n_registries == OS_NETWORK_MAX_REGISTRIES)
                return usage("at most %d registries", OS_NETWORK_MAX_REGISTRIES);
            a->registries[a->n_registries++] = optarg;
            break;
        case O_CHAIN:
            errno = 0;
            a->chain_id = strtoull(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || errno != 0 || *end != '\0' ||
                a->chain_id == 0)
                return usage("--chain-id: not a chain id: %s", optarg);
            break;
        case O_ESCROW:
            if (os_eip55_parse(a->escrow, optarg) != OS_OK)
                return usage("--escrow: not an address (0x and 40 hex digits): %s", optarg);
            a->has_escrow = true;
            break;
        case O_SERVICE:
            if (!os_record_name_ok(optarg, strlen(optarg)))
                return usage("--service: not a service name (1 to 63 of [A-Za-z0-9._:/-]): %s",
                             optarg);
            a->service = optarg;
            break;
        case O_MAX_INPUT:
            if (os_usdc_parse(&a->max_input, optarg) != OS_OK || a->max_input == 0)
                return usage("--max-input: not a USDC price such as 0.15: %s", optarg);
            break;
        case O_JSON:
            a->json = true;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            exit(0);
        default:
            return usage("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage("unexpected argument: %s", argv[optind]);
    if (a->n_registries == 0)
        return usage("--registry is required");
    if (a->chain_id == 0)
        return usage("--chain-id is required");
    return 0;
}

/* The registry filters whole sellers; a row is shown for each offering that matches too. */
static bool offering_matches(const os_offering *o, const args *a)
{
    bool service = a->service == NULL;

    for (size_t i = 0; i < o->n_services && !service; i++)
        service = strcmp(o->services[i], a->service) == 0;
    return service && (a->max_input == 0 || o->pricing.input <= a->max_input);
}

static void usdc(char out[OS_USDC_LEN], uint64_t micro)
{
    if (os_usdc_format(out, OS_USDC_LEN, micro) != OS_OK)
        out[0] = '\0';
}

static void print_registries(const os_registry_status *st, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (st[i].up)
            printf("registry %s: up, %" PRIu64 " sellers (%" PRIu64 " active), %" PRIu64 " ms\n",
                   st[i].url, st[i].peers, st[i].active, st[i].latency_ms);
        else
            printf("registry %s: down: %s\n", st[i].url, st[i].error);
    }
}

static void print_table(const os_peer_list *l, const args *a)
{
    size_t rows = 0;

    printf("\n%-42s  %-28s  %-16s  %-20s  %10s  %10s  %5s  %7s\n", "NODE", "ENDPOINT", "MODEL",
           "SERVICES", "IN $/M", "OUT $/M", "SCORE", "LOAD");
    for (size_t i = 0; i < l->n; i++) {
        const os_peer *p = &l->peers[i];
        char node[OS_ADDRESS_STR_LEN], in[OS_USDC_LEN], out[OS_USDC_LEN], load[24];

        os_eip55_format(node, p->record.node);
        snprintf(load, sizeof(load), "%" PRIu32 "/%" PRIu32, p->active, p->capacity);
        for (size_t k = 0; k < p->record.n_offerings; k++) {
            const os_offering *o = &p->record.offerings[k];
            char services[OS_RECORD_MAX_SERVICES * OS_RECORD_NAME_MAX] = "";
            size_t used = 0;

            if (!offering_matches(o, a))
                continue;
            for (size_t s = 0; s < o->n_services; s++) {
                int w = snprintf(services + used, sizeof(services) - used, "%s%s", s > 0 ? "," : "",
                                 o->services[s]);
                if (w < 0 || (size_t)w >= sizeof(services) - used)
                    break;
                used += (size_t)w;
            }
            usdc(in, o->pricing.input);
            usdc(out, o->pricing.output);
            printf("%-42s  %-28s  %-16s  %-20s  %10s  %10s  %5.3f  %7s\n", node, p->endpoint,
                   o->model, services, in, out, p->score, load);
            rows++;
        }
    }
    if (rows == 0)
        printf("(no verified seller matches)\n");
    printf("\n%zu verified sellers, %zu records rejected\n", l->n, l->rejected);
}

/* The whole answer as one JSON document; NULL when out of memory. */
static json_t *to_json(const os_registry_status *st, size_t n_st, const os_peer_list *l,
                       const args *a)
{
    json_t *doc = json_object(), *regs = json_array(), *peers = json_array();

    if (doc == NULL || regs == NULL || peers == NULL)
        goto fail;
    for (size_t i = 0; i < n_st; i++) {
        if (json_array_append_new(
                regs,
                json_pack("{s:s, s:b, s:I, s:I, s:I, s:s}", "url", st[i].url, "up", (int)st[i].up,
                          "peers", (json_int_t)st[i].peers, "active", (json_int_t)st[i].active,
                          "latency_ms", (json_int_t)st[i].latency_ms, "error", st[i].error)) != 0)
            goto fail;
    }
    for (size_t i = 0; i < l->n; i++) {
        const os_peer *p = &l->peers[i];
        char node[OS_ADDRESS_STR_LEN];
        json_t *offerings = json_array(), *peer;

        os_eip55_format(node, p->record.node);
        for (size_t k = 0; offerings != NULL && k < p->record.n_offerings; k++) {
            if (offering_matches(&p->record.offerings[k], a) &&
                json_array_append_new(offerings, os_offering_to_json(&p->record.offerings[k])) !=
                    0) {
                json_decref(offerings);
                offerings = NULL;
            }
        }
        /* "o" takes offerings' reference, and a NULL one makes json_pack fail */
        peer = json_pack("{s:s, s:s, s:I, s:f, s:f, s:I, s:{s:I, s:I}, s:s, s:o}", "node", node,
                         "endpoint", p->endpoint, "seq", (json_int_t)p->record.seq, "score",
                         p->score, "reputation", p->reputation, "last_seen",
                         (json_int_t)p->last_seen, "load", "active", (json_int_t)p->active,
                         "capacity", (json_int_t)p->capacity, "registry",
                         p->registry < n_st ? st[p->registry].url : "", "offerings", offerings);
        if (json_array_append_new(peers, peer) != 0)
            goto fail;
    }
    /* json_object_set_new takes the value's reference even when it fails */
    if (json_object_set_new(doc, "registries", regs) != 0) {
        json_decref(peers);
        json_decref(doc);
        return NULL;
    }
    if (json_object_set_new(doc, "peers", peers) != 0 ||
        json_object_set_new(doc, "rejected", json_integer((json_int_t)l->rejected)) != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
fail:
    json_decref(regs);
    json_decref(peers);
    json_decref(doc);
    return NULL;
}

int main(int argc, char **argv)
{
    args a;
    os_logger lg;
    os_network *net = NULL;
    os_network_config c;
    os_registry_status st[OS_NETWORK_MAX_REGISTRIES];
    os_peer_query q;
    os_peer_list l = {0};
    size_t n_st = 0;
    os_err rc;
    int status;

    if ((status = parse_args(&a, argc, argv)) != 0)
        return status;
    status = 1;
    if (os_init() != OS_OK) {
        fprintf(stderr, "list_peers: cannot initialise libsodium and libcurl\n");
        return 1;
    }
    /* errors only: what the network would warn about (a registry down, records left out) is
     * this program's output already */
    os_logger_init(&lg, "list_peers", OS_LOG_ERROR);
    c = (os_network_config){
        .registries = a.registries,
        .n_registries = a.n_registries,
        .chain_id = a.chain_id,
        .escrow = a.has_escrow ? a.escrow : NULL,
        .log = &lg,
    };
    if (os_network_new(&net, &c) != OS_OK) {
        fprintf(stderr, "list_peers: bad --registry URL (see above)\n");
        return 2;
    }

    rc = os_network_registries(net, st, OS_NETWORK_MAX_REGISTRIES, &n_st);
    if (rc != OS_OK) {
        fprintf(stderr, "list_peers: no registry answers\n");
        for (size_t i = 0; i < n_st; i++)
            fprintf(stderr, "  %s: %s\n", st[i].url, st[i].error);
        goto out;
    }
    q = (os_peer_query){.service = a.service, .max_input = a.max_input};
    if ((rc = os_network_peers(net, &q, &l)) != OS_OK) {
        fprintf(stderr, "list_peers: cannot list the sellers: %s\n",
                rc == OS_ERR_NETWORK ? "no registry answers" : os_strerror(rc));
        goto out;
    }

    if (a.json) {
        json_t *doc = to_json(st, n_st, &l, &a);
        if (doc == NULL ||
            json_dumpf(doc, stdout,
                       JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) != 0) {
            fprintf(stderr, "list_peers: out of memory\n");
            json_decref(doc);
            goto out;
        }
        putchar('\n');
        json_decref(doc);
    } else {
        print_registries(st, n_st);
        print_table(&l, &a);
    }
    status = 0;
out:
    os_peer_list_free(&l);
    os_network_free(net);
    return status;
}
