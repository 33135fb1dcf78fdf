/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SDK example: a seller embedded in your own program. It builds one offering with the Offering
 * builder, starts an os_seller_node on it (the same core openseed-seller runs: paid /v1/infer,
 * seller.db, announcements to the registries, settlement on chain) in front of an upstream model
 * server, or the built-in echo model when none is given, serves until SIGINT/SIGTERM or --seconds,
 * then stops (answers in flight finish) and prints what it earned. Copy it as the start of an
 * embedding; docs/sdk.md walks through it. Exit status: 0 after a clean stop, 1 when the offering
 * or the node fails (the reason is printed), 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "openseed/init.h"
#include "openseed/log.h"
#include "openseed/offering.h"
#include "openseed/secp.h"
#include "openseed/seller_node.h"

#define MAX_REGISTRIES 16

typedef struct args {
    const char *registries[MAX_REGISTRIES];
    size_t n_registries;
    const char *rpc, *escrow, *usdc, *data_dir, *listen;
    const char *upstream, *upstream_api, *service, *model;
    const char *input_price, *output_price;
    uint64_t chain_id;
    uint64_t seconds; /* 0: until a signal */
} args;

static const char usage_text[] =
    "usage: embedded_seller --registry URL [--registry URL ...] --rpc URL --chain-id N\n"
    "                       --escrow 0xADDRESS --usdc 0xADDRESS --data-dir DIR\n"
    "                       [--listen HOST:PORT] [--upstream URL --upstream-api "
    "openai|anthropic|ollama]\n"
    "                       [--service NAME --model NAME] [--input-price USDC --output-price "
    "USDC]\n"
    "                       [--seconds N]\n"
    "Prices are USDC per million tokens (default 0.5 and 1.5). Without --upstream the node\n"
    "serves the built-in echo model (service \"echo\", model \"echo-1\").\n";

/* Says what is wrong with the command line, then how to use it; returns the exit status 2. */
__attribute__((format(printf, 1, 2))) static int usage(const char *fmt, ...)
{
    va_list ap;

    fputs("embedded_seller: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    return 2;
}

/* A whole decimal number, nothing else (strtoull alone accepts "-1", " 7" and "7x"). */
static int parse_u64(uint64_t *out, const char *s)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* 0 with *a filled, or the exit status of a usage error (already reported). */
static int parse_args(args *a, int argc, char **argv)
{
    enum {
        O_REGISTRY = 256,
        O_RPC,
        O_CHAIN,
        O_ESCROW,
        O_USDC,
        O_DATA,
        O_LISTEN,
        O_UPSTREAM,
        O_API,
        O_SERVICE,
        O_MODEL,
        O_IN,
        O_OUT,
        O_SECONDS,
        O_HELP
    };
    static const struct option opts[] = {
        {"registry", required_argument, NULL, O_REGISTRY},
        {"rpc", required_argument, NULL, O_RPC},
        {"chain-id", required_argument, NULL, O_CHAIN},
        {"escrow", required_argument, NULL, O_ESCROW},
        {"usdc", required_argument, NULL, O_USDC},
        {"data-dir", required_argument, NULL, O_DATA},
        {"listen", required_argument, NULL, O_LISTEN},
        {"upstream", required_argument, NULL, O_UPSTREAM},
        {"upstream-api", required_argument, NULL, O_API},
        {"service", required_argument, NULL, O_SERVICE},
        {"model", required_argument, NULL, O_MODEL},
        {"input-price", required_argument, NULL, O_IN},
        {"output-price", required_argument, NULL, O_OUT},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(a, 0, sizeof(*a));
    opterr = 0; /* we say what is wrong ourselves, in one format */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_REGISTRY:
            if (a->n_registries == MAX_REGISTRIES)
                return usage("at most %d registries", MAX_REGISTRIES);
            a->registries[a->n_registries++] = optarg;
            break;
        case O_RPC:
            a->rpc = optarg;
            break;
        case O_CHAIN:
            if (parse_u64(&a->chain_id, optarg) != 0 || a->chain_id == 0)
                return usage("--chain-id: not a chain id: %s", optarg);
            break;
        case O_ESCROW:
            a->escrow = optarg;
            break;
        case O_USDC:
            a->usdc = optarg;
            break;
        case O_DATA:
            a->data_dir = optarg;
            break;
        case O_LISTEN:
            a->listen = optarg;
            break;
        case O_UPSTREAM:
            a->upstream = optarg;
            break;
        case O_API:
            a->upstream_api = optarg;
            break;
        case O_SERVICE:
            a->service = optarg;
            break;
        case O_MODEL:
            a->model = optarg;
            break;
        case O_IN:
            a->input_price = optarg;
            break;
        case O_OUT:
            a->output_price = optarg;
            break;
        case O_SECONDS:
            if (parse_u64(&a->seconds, optarg) != 0 || a->seconds == 0 || a->seconds > 86400 * 365)
                return usage("--seconds: not a number of seconds: %s", optarg);
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
    if (a->rpc == NULL)
        return usage("--rpc is required");
    if (a->chain_id == 0)
        return usage("--chain-id is required");
    if (a->escrow == NULL)
        return usage("--escrow is required");
    if (a->usdc == NULL)
        return usage("--usdc is required");
    if (a->data_dir == NULL)
        return usage("--data-dir is required");
    if ((a->upstream == NULL) != (a->upstream_api == NULL))
        return usage("--upstream and --upstream-api: give both or neither");
    if (a->upstream_api != NULL && strcmp(a->upstream_api, "openai") != 0 &&
        strcmp(a->upstream_api, "anthropic") != 0 && strcmp(a->upstream_api, "ollama") != 0)
        return usage("--upstream-api: openai, anthropic or ollama, not %s", a->upstream_api);
    if (a->upstream != NULL && (a->service == NULL || a->model == NULL))
        return usage("--service and --model: name what the upstream serves");
    if ((a->input_price == NULL) != (a->output_price == NULL))
        return usage("--input-price and --output-price: give both or neither");
    if (a->service == NULL)
        a->service = "echo";
    if (a->model == NULL)
        a->model = "echo-1";
    if (a->input_price == NULL) {
        a->input_price = "0.5";
        a->output_price = "1.5";
    }
    return 0;
}

/* The APIs an offering may name: those its upstream speaks. */
static os_err offering_apis(os_offering_builder *b, const char *upstream_api)
{
    os_err rc;

    if (upstream_api == NULL) { /* the built-in echo model speaks all three */
        if ((rc = os_offering_api(b, "openai.chat")) != OS_OK ||
            (rc = os_offering_api(b, "openai.embeddings")) != OS_OK)
            return rc;
        return os_offering_api(b, "anthropic.messages");
    }
    if (strcmp(upstream_api, "anthropic") == 0)
        return os_offering_api(b, "anthropic.messages");
    return os_offering_api(b, "openai.chat"); /* openai and ollama */
}

/*
 * One offering from the flags. Each setter checks its value at once; the first failure stops the
 * chain and its message, in b.error, names the value and says what is wrong with it.
 */
static int build_offering(os_offering *o, const args *a)
{
    os_offering_builder b;

    os_offering_builder_init(&b);
    if (os_offering_service(&b, a->service) != OS_OK || os_offering_model(&b, a->model) != OS_OK ||
        offering_apis(&b, a->upstream_api) != OS_OK ||
        os_offering_price_usdc(&b, a->input_price, a->output_price, NULL) != OS_OK ||
        os_offering_build(&b, o) != OS_OK) {
        fprintf(stderr, "embedded_seller: offering: %s\n", b.error);
        return -1;
    }
    return 0;
}

static void print_offering(const os_offering *o)
{
    json_t *j = os_offering_to_json(o);
    char *s = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

    if (s != NULL)
        printf("offering:\n%s\n", s);
    free(s);
    json_decref(j);
}

/* The host to show for --listen HOST:PORT ("127.0.0.1" by default): a wildcard address is
 * reached through loopback on this machine. */
static void listen_host(char *out, size_t cap, const char *listen)
{
    const char *colon = listen != NULL ? strrchr(listen, ':') : NULL;
    int n = colon != NULL ? (int)(colon - listen) : 0;

    if (n == 0 || (n == 7 && strncmp(listen, "0.0.0.0", 7) == 0))
        snprintf(out, cap, "127.0.0.1");
    else if (n == 4 && strncmp(listen, "[::]", 4) == 0)
        snprintf(out, cap, "[::1]");
    else
        snprintf(out, cap, "%.*s", n, listen);
}

/*
 * Waits for SIGINT or SIGTERM (blocked in every thread, so they queue for us) or for `seconds`
 * to pass (0: no limit). The signal number, or 0 on the time limit.
 */
static int wait_for_stop(const sigset_t *set, uint64_t seconds)
{
    struct timespec deadline, now, left;
    int sig;

    if (seconds == 0) {
        while (sigwait(set, &sig) != 0)
            ;
        return sig;
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)seconds;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            return 0;
        left.tv_sec = deadline.tv_sec - now.tv_sec;
        left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        sig = sigtimedwait(set, NULL, &left);
        if (sig > 0)
            return sig;
        if (errno == EAGAIN)
            return 0;
        /* EINTR: woken by a signal outside the set (SIGCONT, say); wait on */
    }
}

int main(int argc, char **argv)
{
    args a;
    os_offering offering;
    os_seller_node_config c;
    os_logger lg; /* the node's; it must outlive the node, so it lives here in main */
    os_seller_node *node = NULL;
    os_seller_stats st;
    uint8_t addr[20];
    char shown[OS_ADDRESS_STR_LEN], host[256];
    sigset_t set;
    int status, sig;

    if ((status = parse_args(&a, argc, argv)) != 0)
        return status;

    os_seller_node_config_init(&c);
    /* mixed case must carry a correct EIP-55 checksum: a mistyped address is caught here */
    if (os_eip55_parse(c.escrow, a.escrow) != OS_OK)
        return usage("--escrow: not an address (0x and 40 hex digits): %s", a.escrow);
    if (os_eip55_parse(c.usdc, a.usdc) != OS_OK)
        return usage("--usdc: not an address (0x and 40 hex digits): %s", a.usdc);

    /*
     * Before any thread starts: the nodes' threads inherit this mask, so SIGINT and SIGTERM wait
     * for sigwait here instead of interrupting a server thread; a peer that closes its socket
     * mid-answer must fail that write, not kill the process with SIGPIPE.
     */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        fprintf(stderr, "embedded_seller: cannot block SIGINT and SIGTERM\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    if (os_init() != OS_OK) {
        fprintf(stderr, "embedded_seller: cannot initialise libsodium and libcurl\n");
        return 1;
    }
    if (build_offering(&offering, &a) != 0)
        return 1;
    print_offering(&offering);

    /* The config borrows the strings and the offering for os_seller_node_new only. */
    c.listen = a.listen;
    c.data_dir = a.data_dir;
    c.registries = a.registries;
    c.n_registries = a.n_registries;
    c.rpc = a.rpc;
    c.chain_id = a.chain_id;
    c.upstream = a.upstream; /* NULL: the built-in echo model */
    c.upstream_api = a.upstream_api;
    c.offerings = &offering;
    c.n_offerings = 1;
    /* logfmt lines on stderr; the node logs why it cannot be made or started there too */
    os_logger_init(&lg, "seller", OS_LOG_INFO);
    c.log = &lg;
    if (os_seller_node_new(&node, &c) != OS_OK) {
        fprintf(stderr, "embedded_seller: the seller node cannot be made (see the log above)\n");
        return 1;
    }
    if (os_seller_node_start(node) != OS_OK) {
        fprintf(stderr, "embedded_seller: the seller node cannot start (see the log above)\n");
        os_seller_node_free(node);
        return 1;
    }
    os_seller_node_address(node, addr);
    os_eip55_format(shown, addr);
    listen_host(host, sizeof(host), a.listen);
    printf("serving on http://%s:%u as %s\n", host, (unsigned)os_seller_node_port(node), shown);
    fflush(stdout); /* a supervisor or test waits for that line */

    sig = wait_for_stop(&set, a.seconds);
    printf("stopping (%s)\n", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "time is up");
    fflush(stdout);
    os_seller_node_stop(node); /* answers in flight finish and are booked first */

    status = 0;
    if (os_seller_node_stats(node, &st) == OS_OK) {
        printf("stats: requests=%" PRIu64 " errors=%" PRIu64 " earned=%" PRIu64 " settled=%" PRIu64
               " unclaimed=%" PRIu64 " channels=%" PRIu64 " (micro-USDC)\n",
               st.requests, st.errors, st.earned, st.settled, st.unclaimed, st.channels);
    } else {
        fprintf(stderr, "embedded_seller: cannot read the node's stats\n");
        status = 1;
    }
    os_seller_node_free(node);
    return status;
}
