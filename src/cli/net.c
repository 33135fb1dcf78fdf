/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `openseed` subcommands that talk to running daemons over HTTP: `registry status`
 * (/healthz), `peers` (the registry's listing, every record's signature checked here before it is
 * shown), the buyer's management API (`channels`, `ledger`, `spend`) and the seller's admin API
 * (`seller status|settle`, with the bearer token read from a 0600 file). Each prints the answer for
 * a person, or with --json as JSON. While a command waits on a chain transaction (channels open,
 * topup, close, withdraw; seller settle) and stderr is a terminal, a helper thread keeps one
 * progress line there ("waiting for the transaction… 3s"), cleared before the answer.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"
#include "openseed/hex.h"
#include "openseed/keyfile.h"
#include "openseed/money.h"
#include "openseed/record.h"
#include "openseed/secp.h"

#define URL_CAP 2048
/* Pages of /v1/peers followed at most (the registry serves up to 100 per page). */
#define PEERS_MAX_PAGES 100
/* The admin token is 64 hex digits; leave room for other tokens. */
#define TOKEN_CAP 512

typedef struct net_opts {
    char *url, *service, *token_file, *channel, *since, *seller;
    char *to_seller, *amount; /* channels open / topup (not query parameters) */
    bool json;
} net_opts;

#define E_JSON                                                                                     \
    {                                                                                              \
        .name = "json", .type = OS_CFG_BOOL, .offset = offsetof(net_opts, json), .dflt = "false",  \
        .help = "print JSON for scripts"                                                           \
    }
#define E_REGISTRY                                                                                 \
    {                                                                                              \
        .name = "registry", .type = OS_CFG_URL, .offset = offsetof(net_opts, url),                 \
        .dflt = "http://127.0.0.1:8379", .meta = "URL", .help = "the registry's base URL"          \
    }
#define E_BUYER                                                                                    \
    {                                                                                              \
        .name = "buyer", .type = OS_CFG_URL, .offset = offsetof(net_opts, url),                    \
        .dflt = "http://127.0.0.1:8377", .meta = "URL", .help = "the buyer's base URL"             \
    }

static const os_cfg_entry registry_entries[] = {E_REGISTRY, E_JSON};
static const os_cfg_entry peers_entries[] = {
    E_REGISTRY,
    {.name = "service",
     .type = OS_CFG_STRING,
     .offset = offsetof(net_opts, service),
     .meta = "S",
     .help = "only sellers offering this service"},
    E_JSON,
};
static const os_cfg_entry buyer_entries[] = {E_BUYER, E_JSON};
static const os_cfg_entry open_entries[] = {
    E_BUYER,
    {.name = "seller",
     .type = OS_CFG_STRING,
     .offset = offsetof(net_opts, to_seller),
     .meta = "ADDRESS",
     .help = "the seller to open a channel to (0x + 40 hex)"},
    {.name = "amount",
     .type = OS_CFG_STRING,
     .offset = offsetof(net_opts, amount),
     .meta = "USDC",
     .help = "the deposit in USDC (\"5\", \"1.25\"); default: the buyer's configured deposit"},
    E_JSON,
};
static const os_cfg_entry topup_entries[] = {
    E_BUYER,
    {.name = "amount",
     .type = OS_CFG_STRING,
     .offset = offsetof(net_opts, amount),
     .meta = "USDC",
     .help = "how much to add, in USDC (\"5\", \"1.25\")"},
    E_JSON,
};
static const os_cfg_entry ledger_entries[] = {
    E_BUYER,
    {.name = "since",
     .type = OS_CFG_STRING,
     .offset = offsetof(net_opts, since),
     .meta = "T",
     .help = "only entries at or after T: Unix seconds or YYYY-MM-DD (UTC)"},
    {.name = "seller",
     .type = OS_CFG_STRING,
     .offset = offsetof(net_opts, seller),
     .meta = "ADDRESS",
     .help = "only this seller's entries"},
    E_JSON,
};
static const os_cfg_entry seller_entries[] = {
    {.name = "admin",
     .type = OS_CFG_URL,
     .offset = offsetof(net_opts, url),
     .dflt = "http://127.0.0.1:8380",
     .meta = "URL",
     .help = "the seller's admin base URL"},
    {.name = "token_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = offsetof(net_opts, token_file),
     .meta = "FILE",
     .help = "the admin token file (the seller's admin.token, 0600)"},
    {.name = "channel",
     .type = OS_CFG_STRING,
     .offset = offsetof(net_opts, channel),
     .meta = "ID",
     .help = "settle: only this channel (0x + 64 hex)"},
    E_JSON,
};

#define PROG(n, sum, use, ents)                                                                    \
    {                                                                                              \
        .name = "openseed " n, .version = OPENSEED_VERSION, .summary = sum, .usage = use,          \
        .entries = ents, .n_entries = sizeof(ents) / sizeof(ents[0]), .flags = OS_CFG_PROG_NO_FILE \
    }

static const os_cfg_program registry_prog =
    PROG("registry status", "Shows whether a registry is up and how many sellers it lists.",
         "openseed registry status [--registry URL] [--json]", registry_entries);
static const os_cfg_program peers_prog =
    PROG("peers", "Lists a registry's sellers after checking each record's signature.",
         "openseed peers [--service S] [--registry URL] [--json]", peers_entries);
static const os_cfg_program channels_list_prog =
    PROG("channels list", "Lists the buyer's payment channels.",
         "openseed channels list [--buyer URL] [--json]", buyer_entries);
static const os_cfg_program channels_cmd_prog =
    PROG("channels close|withdraw",
         "close: asks the escrow to close channel ID; withdraw: takes back its refund after the "
         "grace period.",
         "openseed channels close|withdraw ID [--buyer URL] [--json]", buyer_entries);
static const os_cfg_program channels_open_prog =
    PROG("channels open", "Opens a payment channel to a seller now (waits for the transaction).",
         "openseed channels open --seller ADDRESS [--amount USDC] [--buyer URL] [--json]",
         open_entries);
static const os_cfg_program channels_topup_prog =
    PROG("channels topup", "Adds USDC to channel ID's deposit (waits for the transaction).",
         "openseed channels topup ID --amount USDC [--buyer URL] [--json]", topup_entries);
static const os_cfg_program ledger_prog =
    PROG("ledger", "Shows the buyer's requests and vouchers.",
         "openseed ledger [--since T] [--seller ADDRESS] [--buyer URL] [--json]", ledger_entries);
static const os_cfg_program spend_prog =
    PROG("spend", "Shows the buyer's spending totals.", "openseed spend [--buyer URL] [--json]",
         buyer_entries);
static const os_cfg_program seller_prog =
    PROG("seller status|settle", "status: revenue and channels; settle: claims what is owed now.",
         "openseed seller status|settle [--channel ID] [--admin URL] [--token-file F] [--json]",
         seller_entries);

/* base + path, without doubling the '/'. */
static int join(char *out, const char *cmd, const char *base, const char *path)
{
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    if ((size_t)snprintf(out, URL_CAP, "%.*s%s", (int)bl, base, path) >= URL_CAP)
        return cl_fail(cmd, "URL too long");
    return 0;
}

/* Appends "&key=value" (or "?key=value"), the value URL-escaped. */
static int add_query(char *url, const char *cmd, const char *key, const char *value)
{
    char *esc = curl_easy_escape(NULL, value, 0);
    size_t n = strlen(url);
    int w;

    if (esc == NULL)
        return cl_fail(cmd, "out of memory");
    w = snprintf(url + n, URL_CAP - n, "%c%s=%s", strchr(url, '?') ? '&' : '?', key, esc);
    curl_free(esc);
    if (w < 0 || (size_t)w >= URL_CAP - n)
        return cl_fail(cmd, "URL too long");
    return 0;
}

/* ---------------------------------------------------------------- progress */

/* The progress line's thread and how to stop it. */
typedef struct progress {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, running;
} progress;

static void *progress_main(void *arg)
{
    progress *p = arg;
    struct timespec t0, now, until;
    long secs = 0;

    clock_gettime(CLOCK_REALTIME, &t0);
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        fprintf(stderr, "\rwaiting for the transaction\xe2\x80\xa6 %lds", secs);
        fflush(stderr);
        until = t0;
        until.tv_sec += secs + 1;
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
            ;
        clock_gettime(CLOCK_REALTIME, &now);
        secs = (long)(now.tv_sec - t0.tv_sec);
    }
    pthread_mutex_unlock(&p->mu);
    fputs("\r\033[K", stderr); /* clear the line */
    fflush(stderr);
    return NULL;
}

/* Starts the progress line when stderr is a terminal; otherwise does nothing. */
static void progress_start(progress *p)
{
    memset(p, 0, sizeof(*p));
    if (!isatty(STDERR_FILENO))
        return;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return;
    }
    if (pthread_create(&p->th, NULL, progress_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        return;
    }
    p->running = true;
}

/* Stops the progress line and clears it. */
static void progress_stop(progress *p)
{
    if (!p->running)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    p->running = false;
}

/* cl_http_json for a request that waits on a chain transaction: with the progress line. */
static int http_json_tx(json_t **out, const char *cmd, const char *method, const char *url,
                        const json_t *body, const char *bearer)
{
    progress p;
    int rc;

    progress_start(&p);
    rc = cl_http_json(out, cmd, method, url, body, bearer);
    progress_stop(&p);
    return rc;
}

static void print_answer(const net_opts *o, const json_t *v)
{
    if (o->json)
        cl_print_json(v);
    else
        cl_print_human(v);
}

/* GET or POST base+path and print the answer; tx: it waits on a chain transaction. */
static int simple(const net_opts *o, const char *cmd, const char *method, const char *path,
                  const json_t *body, const char *bearer, bool tx)
{
    char url[URL_CAP];
    json_t *ans = NULL;

    if (join(url, cmd, o->url, path) != 0)
        return CL_EXIT_FAIL;
    if ((tx ? http_json_tx : cl_http_json)(&ans, cmd, method, url, body, bearer) != 0)
        return CL_EXIT_FAIL;
    print_answer(o, ans);
    json_decref(ans);
    return CL_EXIT_OK;
}

/* Runs prog over argv, then fn. */
static int with_opts(const os_cfg_program *prog, int argc, char **argv,
                     int (*fn)(const net_opts *, void *), void *ud)
{
    net_opts o;
    int st;

    memset(&o, 0, sizeof(o));
    st = cl_parse(prog, &o, argc, argv);
    if (st < 0)
        st = fn(&o, ud);
    os_cfg_free(prog, &o);
    return st;
}

/* ---------------------------------------------------------------- registry status */

static int registry_run(const net_opts *o, void *ud)
{
    char url[URL_CAP];
    json_t *ans = NULL;
    (void)ud;

    if (join(url, "registry status", o->url, "/healthz") != 0 ||
        cl_http_json(&ans, "registry status", "GET", url, NULL, NULL) != 0)
        return CL_EXIT_FAIL;
    if (o->json) {
        cl_print_json(ans);
    } else {
        const char *s = json_string_value(json_object_get(ans, "status"));
        printf("registry %s: %s, %lld sellers known, %lld active\n", o->url, s ? s : "?",
               (long long)json_integer_value(json_object_get(ans, "peers")),
               (long long)json_integer_value(json_object_get(ans, "active")));
    }
    json_decref(ans);
    return CL_EXIT_OK;
}

int cl_registry_main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fprintf(argc < 2 ? stderr : stdout, "usage: %s\n", registry_prog.usage);
        return argc < 2 ? CL_EXIT_USAGE : CL_EXIT_OK;
    }
    if (strcmp(argv[1], "status") != 0)
        return cl_usage_error("registry", registry_prog.usage, "unknown action");
    return with_opts(&registry_prog, argc - 1, argv + 1, registry_run, NULL);
}

/* ---------------------------------------------------------------- peers */

/* Checks one listing entry; adds {node, endpoint, score, offerings[...]} to out. */
static int check_peer(json_t *out, const json_t *p, os_record *rec, char *why, size_t whycap)
{
    const json_t *record = json_object_get(p, "record");
    const char *sig_hex = json_string_value(json_object_get(p, "signature"));
    const char *endpoint = json_string_value(json_object_get(p, "endpoint"));
    uint8_t sig[65];
    size_t sig_len = 0;
    char node[OS_ADDRESS_STR_LEN], in[OS_USDC_LEN], outp[OS_USDC_LEN];
    json_t *e, *offs;

    if (!json_is_object(record) || sig_hex == NULL ||
        os_hex_decode(sig, sizeof(sig), &sig_len, sig_hex, strlen(sig_hex)) != OS_OK ||
        sig_len != sizeof(sig)) {
        snprintf(why, whycap, "an entry without a record and a 65-byte signature");
        return -1;
    }
    if (os_record_verify(rec, record, sig, why, whycap) != OS_OK)
        return -1;
    os_eip55_format(node, rec->node);
    offs = json_array();
    e = json_pack("{s:s,s:s,s:O?,s:o}", "node", node, "endpoint",
                  endpoint != NULL ? endpoint : rec->endpoint, "score", json_object_get(p, "score"),
                  "offerings", offs);
    if (e == NULL || json_array_append_new(out, e) != 0) {
        snprintf(why, whycap, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < rec->n_offerings; i++) {
        const os_offering *of = &rec->offerings[i];
        json_t *svc = json_array();
        for (size_t k = 0; svc != NULL && k < of->n_services; k++)
            json_array_append_new(svc, json_string(of->services[k]));
        if (os_usdc_format(in, sizeof(in), of->pricing.input) != OS_OK ||
            os_usdc_format(outp, sizeof(outp), of->pricing.output) != OS_OK)
            in[0] = outp[0] = '\0';
        json_array_append_new(offs,
                              json_pack("{s:s,s:o?,s:s,s:s}", "model", of->model, "services", svc,
                                        "input_usdc_per_mtok", in, "output_usdc_per_mtok", outp));
    }
    return 0;
}

static int peers_run(const net_opts *o, void *ud)
{
    char url[URL_CAP], why[256];
    const char *cursor = NULL;
    char cur[256] = "";
    json_t *ans = NULL, *out = json_array();
    os_record *rec = calloc(1, sizeof(*rec));
    size_t bad = 0;
    int st = CL_EXIT_OK;
    (void)ud;

    if (out == NULL || rec == NULL) {
        st = cl_fail("peers", "out of memory");
        goto done;
    }
    for (int page = 0; page < PEERS_MAX_PAGES; page++) {
        const json_t *list, *p;
        size_t i;
        if (join(url, "peers", o->url, "/v1/peers?limit=100") != 0 ||
            (o->service != NULL && add_query(url, "peers", "service", o->service) != 0) ||
            (cursor != NULL && add_query(url, "peers", "cursor", cursor) != 0) ||
            cl_http_json(&ans, "peers", "GET", url, NULL, NULL) != 0) {
            st = CL_EXIT_FAIL;
            goto done;
        }
        if (!json_is_array(list = json_object_get(ans, "peers"))) {
            st = cl_fail("peers", "the registry's answer has no \"peers\" list");
            goto done;
        }
        json_array_foreach(list, i, p)
        {
            if (check_peer(out, p, rec, why, sizeof(why)) != 0) {
                bad++;
                fprintf(stderr, "openseed peers: skipped an entry: %s\n", why);
            }
        }
        const char *next = json_string_value(json_object_get(ans, "next_cursor"));
        if (next == NULL || strlen(next) >= sizeof(cur))
            break;
        snprintf(cur, sizeof(cur), "%s", next);
        cursor = cur;
        json_decref(ans);
        ans = NULL;
    }
    if (o->json) {
        json_t *j = json_pack("{s:O,s:I}", "peers", out, "rejected", (json_int_t)bad);
        if (j != NULL)
            cl_print_json(j);
        json_decref(j);
    } else {
        size_t i;
        json_t *e;
        if (json_array_size(out) == 0)
            printf("no sellers%s%s\n", o->service ? " for " : "", o->service ? o->service : "");
        json_array_foreach(out, i, e)
        {
            size_t k;
            json_t *of;
            printf("%s  %s  score %.3f  (signature ok)\n",
                   json_string_value(json_object_get(e, "node")),
                   json_string_value(json_object_get(e, "endpoint")),
                   json_number_value(json_object_get(e, "score")));
            json_array_foreach(json_object_get(e, "offerings"), k, of)
            {
                printf("    %s: %s in / %s out USDC per 1M tokens\n",
                       json_string_value(json_object_get(of, "model")),
                       json_string_value(json_object_get(of, "input_usdc_per_mtok")),
                       json_string_value(json_object_get(of, "output_usdc_per_mtok")));
            }
        }
    }
    if (bad > 0)
        st = cl_fail("peers", "%zu entries failed verification and were not shown", bad);
done:
    json_decref(ans);
    json_decref(out);
    free(rec);
    return st;
}

int cl_peers_main(int argc, char **argv)
{
    return with_opts(&peers_prog, argc, argv, peers_run, NULL);
}

/* ---------------------------------------------------------------- buyer */

/* A channel id as the APIs take it: 0x + 64 hex. */
static bool channel_id_ok(const char *s)
{
    uint8_t b[32];
    size_t n = 0;
    return s != NULL && strlen(s) == 66 && s[0] == '0' && s[1] == 'x' &&
           os_hex_decode(b, sizeof(b), &n, s, strlen(s)) == OS_OK && n == 32;
}

static int get_run(const net_opts *o, void *ud)
{
    const char *const *what = ud; /* {cmd, path} */
    return simple(o, what[0], "GET", what[1], NULL, NULL, false);
}

/* The --amount of o as micro-USDC in the wire form into body; 0, or the usage error's status. */
static int amount_put(json_t *body, const net_opts *o, const os_cfg_program *prog)
{
    char wire[OS_MONEY_UNITS_LEN];
    uint64_t micro = 0;

    if (os_usdc_parse(&micro, o->amount) != OS_OK || micro == 0)
        return cl_usage_error(prog->name + strlen("openseed "), prog->usage,
                              "--amount takes USDC above zero, at most 6 decimals (\"1.25\")");
    if (os_money_format_units(wire, sizeof(wire), micro) != OS_OK ||
        json_object_set_new(body, "amount", json_string(wire)) != 0)
        return cl_fail(prog->name + strlen("openseed "), "out of memory");
    return 0;
}

static int channel_cmd_run(const net_opts *o, void *ud)
{
    const char *const *what = ud; /* {action, id} */
    char path[160], cmd[32];
    json_t *body = NULL;
    int st;

    snprintf(cmd, sizeof(cmd), "channels %s", what[0]);
    snprintf(path, sizeof(path), "/openseed/v1/channels/%s/%s", what[1], what[0]);
    if (strcmp(what[0], "topup") == 0) {
        if (o->amount == NULL)
            return cl_usage_error(cmd, channels_topup_prog.usage, "needs --amount USDC");
        if ((body = json_object()) == NULL)
            return cl_fail(cmd, "out of memory");
        if ((st = amount_put(body, o, &channels_topup_prog)) != 0) {
            json_decref(body);
            return st;
        }
    }
    st = simple(o, cmd, "POST", path, body, NULL, true);
    json_decref(body);
    return st;
}

static int channel_open_run(const net_opts *o, void *ud)
{
    uint8_t addr[20];
    json_t *body;
    int st;
    (void)ud;

    if (o->to_seller == NULL || os_eip55_parse(addr, o->to_seller) != OS_OK)
        return cl_usage_error("channels open", channels_open_prog.usage,
                              "needs --seller 0x + 40 hex digits (EIP-55 if mixed case)");
    if ((body = json_pack("{s:s}", "seller", o->to_seller)) == NULL)
        return cl_fail("channels open", "out of memory");
    if (o->amount != NULL && (st = amount_put(body, o, &channels_open_prog)) != 0) {
        json_decref(body);
        return st;
    }
    st = simple(o, "channels open", "POST", "/openseed/v1/channels", body, NULL, true);
    json_decref(body);
    return st;
}

int cl_channels_main(int argc, char **argv)
{
    static const char *const list[] = {"channels list", "/openseed/v1/channels"};
    const char *what[2];

    const os_cfg_program *prog = &channels_cmd_prog;

    if (argc < 2) {
        fprintf(stderr, "usage: openseed channels list|open|topup ID|close ID|withdraw ID "
                        "[OPTIONS]\n");
        return CL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: openseed channels list|open|topup ID|close ID|withdraw ID [--buyer URL] "
               "[--json]\n\n"
               "  list                        the buyer's channels\n"
               "  open --seller ADDRESS       open a channel to a seller now [--amount USDC]\n"
               "  topup ID --amount USDC      add USDC to channel ID's deposit\n"
               "  close ID                    the payer's requestClose on channel ID\n"
               "  withdraw ID                 the refund of a closed channel after the grace "
               "period\n");
        return CL_EXIT_OK;
    }
    if (strcmp(argv[1], "list") == 0)
        return with_opts(&channels_list_prog, argc - 1, argv + 1, get_run, (void *)list);
    if (strcmp(argv[1], "open") == 0)
        return with_opts(&channels_open_prog, argc - 1, argv + 1, channel_open_run, NULL);
    if (strcmp(argv[1], "topup") == 0)
        prog = &channels_topup_prog;
    else if (strcmp(argv[1], "close") != 0 && strcmp(argv[1], "withdraw") != 0)
        return cl_usage_error("channels", channels_cmd_prog.usage, "unknown action");
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))
        return with_opts(prog, argc - 1, argv + 1, get_run, NULL);
    if (argc < 3 || !channel_id_ok(argv[2]))
        return cl_usage_error("channels", prog->usage,
                              "needs a channel ID (0x + 64 hex digits) after the action");
    what[0] = argv[1];
    what[1] = argv[2];
    /* The ID is not an option: hand the loader the action word as argv[0] and the rest. */
    argv[2] = argv[1];
    return with_opts(prog, argc - 2, argv + 2, channel_cmd_run, what);
}

/* --since as Unix seconds: digits, or a UTC date YYYY-MM-DD. False when malformed. */
static bool parse_since(int64_t *out, const char *v)
{
    unsigned y, m, d;
    char tail;
    struct tm tm;

    if (v[0] >= '0' && v[0] <= '9' && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 12) {
        *out = (int64_t)strtoll(v, NULL, 10);
        return true;
    }
    if (sscanf(v, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || y < 1970 || m < 1 || m > 12 ||
        d < 1 || d > 31)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)y - 1900;
    tm.tm_mon = (int)m - 1;
    tm.tm_mday = (int)d;
    *out = (int64_t)timegm(&tm);
    return true;
}

/* Keeps the items of arr whose "at" is at or after since and, when channels is non-NULL, whose
 * channel_id is among them. */
static void keep_items(json_t *arr, int64_t since, const json_t *channels)
{
    for (size_t i = json_array_size(arr); i-- > 0;) {
        const json_t *it = json_array_get(arr, i);
        bool keep = json_integer_value(json_object_get(it, "at")) >= since;
        if (keep && channels != NULL) {
            const char *id = json_string_value(json_object_get(it, "channel_id"));
            keep = id != NULL && json_object_get(channels, id) != NULL;
        }
        if (!keep)
            json_array_remove(arr, i);
    }
}

/* The buyer's ledger, filtered here by --since and --seller (a seller's entries are those of its
 * channels, from /openseed/v1/channels). */
static int ledger_run(const net_opts *o, void *ud)
{
    char url[URL_CAP];
    json_t *ans = NULL, *chans = NULL, *mine = NULL;
    int64_t since = 0;
    uint8_t seller[20];
    int st = CL_EXIT_FAIL;
    (void)ud;

    if (o->since != NULL && !parse_since(&since, o->since))
        return cl_usage_error("ledger", ledger_prog.usage,
                              "--since takes Unix seconds or a date YYYY-MM-DD");
    if (o->seller != NULL && os_eip55_parse(seller, o->seller) != OS_OK)
        return cl_usage_error("ledger", ledger_prog.usage,
                              "--seller takes a seller's address (0x + 40 hex digits)");
    if (join(url, "ledger", o->url, "/openseed/v1/ledger") != 0 ||
        cl_http_json(&ans, "ledger", "GET", url, NULL, NULL) != 0)
        return CL_EXIT_FAIL;
    if (o->seller != NULL) {
        if (join(url, "ledger", o->url, "/openseed/v1/channels") != 0 ||
            cl_http_json(&chans, "ledger", "GET", url, NULL, NULL) != 0 ||
            (mine = json_object()) == NULL)
            goto out;
        const json_t *arr = json_object_get(chans, "channels");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const json_t *c = json_array_get(arr, i);
            uint8_t who[20];
            const char *id = json_string_value(json_object_get(c, "channel_id"));
            const char *sv = json_string_value(json_object_get(c, "seller"));
            if (id != NULL && sv != NULL && os_eip55_parse(who, sv) == OS_OK &&
                memcmp(who, seller, 20) == 0)
                json_object_set_new(mine, id, json_true());
        }
    }
    keep_items(json_object_get(ans, "requests"), since, mine);
    keep_items(json_object_get(ans, "vouchers"), since, mine);
    print_answer(o, ans);
    st = CL_EXIT_OK;
out:
    json_decref(ans);
    json_decref(chans);
    json_decref(mine);
    return st;
}

int cl_ledger_main(int argc, char **argv)
{
    return with_opts(&ledger_prog, argc, argv, ledger_run, NULL);
}

int cl_spend_main(int argc, char **argv)
{
    static const char *const w[] = {"spend", "/openseed/v1/spend"};
    return with_opts(&spend_prog, argc, argv, get_run, (void *)w);
}

/* ---------------------------------------------------------------- seller */

static int seller_run(const net_opts *o, void *ud)
{
    const char *action = ud;
    char *token = NULL, url[URL_CAP];
    size_t len = 0;
    json_t *a = NULL, *b = NULL, *body = NULL;
    int st = CL_EXIT_FAIL;

    if (o->token_file == NULL)
        return cl_usage_error("seller", seller_prog.usage,
                              "needs --token-file (the seller's admin.token)");
    if (o->channel != NULL && (strcmp(action, "settle") != 0 || !channel_id_ok(o->channel)))
        return cl_usage_error("seller", seller_prog.usage,
                              "--channel takes 0x + 64 hex digits, with settle only");
    if (cl_password_read(&token, &len, "seller", o->token_file) != 0)
        return CL_EXIT_FAIL;
    if (strcmp(action, "status") == 0) {
        if (join(url, "seller status", o->url, "/admin/v1/revenue") == 0 &&
            cl_http_json(&a, "seller status", "GET", url, NULL, token) == 0 &&
            join(url, "seller status", o->url, "/admin/v1/channels") == 0 &&
            cl_http_json(&b, "seller status", "GET", url, NULL, token) == 0) {
            json_t *j = json_pack("{s:O,s:O}", "revenue", a, "channels", b);
            if (j == NULL) {
                st = cl_fail("seller status", "out of memory");
            } else {
                print_answer(o, j);
                st = CL_EXIT_OK;
            }
            json_decref(j);
        }
    } else {
        body = o->channel != NULL ? json_pack("{s:s}", "channel_id", o->channel) : json_object();
        if (body != NULL && join(url, "seller settle", o->url, "/admin/v1/settle") == 0 &&
            http_json_tx(&a, "seller settle", "POST", url, body, token) == 0) {
            print_answer(o, a);
            st = CL_EXIT_OK;
        } else if (body == NULL) {
            st = cl_fail("seller settle", "out of memory");
        }
    }
    json_decref(a);
    json_decref(b);
    json_decref(body);
    cl_password_free(token);
    return st;
}

int cl_seller_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s\n", seller_prog.usage);
        return CL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n", seller_prog.usage);
        return CL_EXIT_OK;
    }
    if (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "settle") != 0)
        return cl_usage_error("seller", seller_prog.usage, "unknown action");
    return with_opts(&seller_prog, argc - 1, argv + 1, seller_run, argv[1]);
}
