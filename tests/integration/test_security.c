/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Security checks against the daemons as real processes on loopback (netfix.h): anvil with the
 * committed contracts, openseed-registry, two openseed-seller (A behind a recording TCP proxy
 * that A advertises as its endpoint, B direct) and openseed-buyer, all started from their
 * binaries with flags only:
 *   - the buyer's gateway: the DNS-rebinding guard (Host forms refused and accepted), no CORS
 *     header on any answer, cross-site browser requests (a foreign Origin) refused before they
 *     can spend, the bearer key of --api-key-file on the client and management APIs; the
 *     seller's admin listener and its token;
 *   - replay: the exact bytes of a paid request the buyer sent to A, sent again to A (before and
 *     after A restarts, which empties its nullifier cache) and to B; forgery with a hand-made
 *     buyer (test_buyer.h): vouchers for another chain id, another escrow, another channel (one A
 *     knows that belongs to someone else, one A does not know, one that pays B, and a voucher
 *     signed for one of our channels presented on another), and a body changed after its
 *     metadataHash was taken. Every refusal has its documented status and code
 *     (docs/protocol.md §10.11) and leaves both sellers' books unchanged;
 *   - keys: each daemon refuses to start, exiting non-zero before it listens with one log line
 *     naming the file and its mode, when a key or secret file is readable by group or others.
 * The counts of what was tried are printed at the end (for docs/reliability.md).
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h; memmem */
#include "testutil.h"

#include "netfix.h"
#include "test_buyer.h"
#include "wire_proxy.h"

#include <sys/stat.h>
#include <sys/time.h>

#define CHAIN 31337
#define OFFER                                                                                      \
    "echo model=echo-1 apis=openai.chat,openai.embeddings,anthropic.messages input=0.5 "           \
    "output=1.5"
#define API_KEY "sk-openseed-security-test-0123456789"

static netfix fx;
static wire_proxy px;       /* in front of seller A (index 0) */
static char a_endpoint[64]; /* the proxy's URL, A's advertised endpoint */
static int failed;
static nf_node kb, probe; /* a buyer with an API key; daemons started to be refused */

/* What was tried, for the report. */
static struct {
    int hosts_refused, hosts_accepted, cors_checked, origin_refused, auth_refused, auth_ok;
    int admin_refused, replays_a, replays_b, replays_restart, restart_stale, forgeries;
    int refused_starts;
} n;

static const char chat_body[] =
    "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"security\"}]}";

/* ------------------------------------------------------------------ HTTP with any header */

typedef struct resp {
    long status;
    char body[16384];
    char code[64], type[64];
    int n_cors; /* Access-Control-* headers in the answer */
} resp;

/* The error shape the OpenAI API uses ({"error":{message,type,code[,param]}} and nothing else),
 * or Anthropic's ({"type":"error","error":{type,message}}) when anthropic. */
static bool error_shape(const char *body, bool anthropic)
{
    json_t *j = json_loads(body, 0, NULL), *e;
    bool ok = json_is_object(j) && (e = json_object_get(j, "error")) != NULL && json_is_object(e) &&
              json_string_length(json_object_get(e, "message")) > 0 &&
              json_is_string(json_object_get(e, "type"));
    if (ok && anthropic)
        ok = json_object_size(j) == 2 && json_object_size(e) == 2 &&
             strcmp(json_string_value(json_object_get(j, "type")), "error") == 0;
    else if (ok) {
        json_t *c = json_object_get(e, "code");
        size_t want = 3 + (json_object_get(e, "param") != NULL);
        ok = json_object_size(j) == 1 && c != NULL && (json_is_string(c) || json_is_null(c)) &&
             json_object_size(e) == want;
    }
    json_decref(j);
    return ok;
}

/* One request to url; hdrs are name, value pairs ending with NULL. */
static void call(resp *r, const char *method, const char *url, const char *body,
                 const char *const *hdrs)
{
    os_http_header h[16];
    size_t nh = 0;
    os_http_client_req req;
    os_http_client_res res;

    memset(r, 0, sizeof(*r));
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL && nh < 16; i += 2)
        h[nh++] = (os_http_header){hdrs[i], hdrs[i + 1]};
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = h;
    req.n_headers = nh;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    os_http_client_res_init(&res);
    r->status = os_http_client_do(fx.http, &res, NULL, &req) == OS_OK ? res.status : -1;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)res.body.len, (const char *)res.body.data);
    for (size_t i = 0; i < os_http_client_res_header_count(&res); i++) {
        const char *name, *value;
        if (os_http_client_res_header_at(&res, i, &name, &value) == OS_OK &&
            strncasecmp(name, "Access-Control-", 15) == 0)
            r->n_cors++;
    }
    os_http_client_res_free(&res);
    json_t *j = json_loads(r->body, 0, NULL), *e = json_object_get(j, "error");
    snprintf(r->code, sizeof(r->code), "%s",
             json_string_value(json_object_get(e, "code")) != NULL
                 ? json_string_value(json_object_get(e, "code"))
                 : "");
    snprintf(r->type, sizeof(r->type), "%s",
             json_string_value(json_object_get(e, "type")) != NULL
                 ? json_string_value(json_object_get(e, "type"))
                 : "");
    json_decref(j);
}

/* A call to the buyer at path: no answer of the gateway ever carries a CORS header. */
static void bcall(resp *r, const char *method, const char *path, const char *body,
                  const char *const *hdrs)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", fx.buyer.url, path);
    call(r, method, url, body, hdrs);
    if (r->n_cors != 0)
        fail_msg("%s %s answered with %d Access-Control-* headers", method, path, r->n_cors);
    n.cors_checked++;
}

/* pat with its "%u" (if any) replaced by port. */
static void fill_host(char *out, size_t cap, const char *pat, unsigned port)
{
    const char *at = strstr(pat, "%u");
    if (at == NULL)
        snprintf(out, cap, "%s", pat);
    else
        snprintf(out, cap, "%.*s%u%s", (int)(at - pat), pat, port, at + 2);
}

#define expect_status(r, want)                                                                     \
    do {                                                                                           \
        if ((r).status != (want))                                                                  \
            fail_msg("status %ld, want %d: %.400s", (r).status, (int)(want), (r).body);            \
    } while (0)

/* ------------------------------------------------------------------ books */

/* The buyer's ledger: requests and vouchers it recorded. */
static void buyer_books(size_t *requests, size_t *vouchers)
{
    long st;
    json_t *j = nf_buyer_get(&fx, &st, "/openseed/v1/ledger");
    assert_int_equal(st, 200);
    *requests = json_array_size(json_object_get(j, "requests"));
    *vouchers = json_array_size(json_object_get(j, "vouchers"));
    json_decref(j);
}

/* A seller's books: vouchers and requests stored, channels known, their consumed and latest
 * nonces summed. */
typedef struct books {
    size_t vouchers, requests, channels;
    uint64_t consumed, nonces;
} books;

static books seller_books(int i)
{
    books b;
    long st;
    json_t *j, *c;
    size_t k;

    memset(&b, 0, sizeof(b));
    j = nf_admin(&fx, i, &st, "/admin/v1/vouchers?limit=1000", NULL);
    assert_int_equal(st, 200);
    b.vouchers = json_array_size(json_object_get(j, "vouchers"));
    json_decref(j);
    j = nf_admin(&fx, i, &st, "/admin/v1/requests?limit=1000", NULL);
    assert_int_equal(st, 200);
    b.requests = json_array_size(json_object_get(j, "requests"));
    json_decref(j);
    j = nf_admin(&fx, i, &st, "/admin/v1/channels", NULL);
    assert_int_equal(st, 200);
    json_array_foreach(json_object_get(j, "channels"), k, c)
    {
        uint64_t v = 0;
        assert_true(nf_money(json_object_get(c, "consumed"), &v));
        b.consumed += v;
        b.nonces += (uint64_t)json_integer_value(
            json_object_get(json_object_get(c, "latest_voucher"), "nonce"));
        b.channels++;
    }
    json_decref(j);
    return b;
}

static void assert_books_equal(books a, books b, const char *what)
{
    if (a.vouchers != b.vouchers || a.requests != b.requests || a.consumed != b.consumed ||
        a.nonces != b.nonces)
        fail_msg("%s changed the books: vouchers %zu -> %zu, requests %zu -> %zu, consumed %llu "
                 "-> %llu, nonces %llu -> %llu",
                 what, a.vouchers, b.vouchers, a.requests, b.requests,
                 (unsigned long long)a.consumed, (unsigned long long)b.consumed,
                 (unsigned long long)a.nonces, (unsigned long long)b.nonces);
}

/* ------------------------------------------------------------------ raw bytes */

/* Sends req (len bytes) as is on a new connection to 127.0.0.1:port and reads one answer: its
 * status and error code. 0 when an answer came. */
static int raw_exchange(uint16_t port, const void *req, size_t len, long *status, char *code,
                        size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 20};
    static char buf[1 << 16];
    size_t got = 0, sent = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;

    *status = 0;
    code[0] = '\0';
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    while (sent < len) {
        ssize_t w = write(fd, (const char *)req + sent, len - sent);
        if (w <= 0)
            goto out;
        sent += (size_t)w;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            goto out;
        got += (size_t)r;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        size_t hdr = (size_t)(end - buf) + 4;
        if (strncmp(buf, "HTTP/1.1 100", 12) == 0) { /* an interim answer */
            memmove(buf, buf + hdr, got - hdr + 1);
            got -= hdr;
            continue;
        }
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl == NULL || cl > end)
            goto out; /* refusals always have a length */
        unsigned long long want = strtoull(cl + 17, NULL, 10);
        if (got < hdr + want)
            continue;
        *status = strtol(buf + 9, NULL, 10);
        json_t *j = json_loadb(buf + hdr, (size_t)want, 0, NULL);
        const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        snprintf(code, cap, "%s", c != NULL ? c : "");
        json_decref(j);
        rc = 0;
        break;
    }
out:
    close(fd);
    return rc;
}

/* The last complete POST /v1/infer the proxy saw (request line, headers and body), copied. */
static uint8_t *captured_infer(size_t *len)
{
    static const char line[] = "POST /v1/infer HTTP/1.1\r\n";
    uint8_t *out = NULL;
    pthread_mutex_lock(&px.mu);
    const unsigned char *p = px.seen, *last = NULL, *end = px.seen + px.seen_len;
    while (p < end && (p = memmem(p, (size_t)(end - p), line, sizeof(line) - 1)) != NULL) {
        last = p;
        p++;
    }
    if (last != NULL) {
        const unsigned char *he = memmem(last, (size_t)(end - last), "\r\n\r\n", 4);
        char head[4096];
        size_t hl = he != NULL ? (size_t)(he - last) : 0;
        if (he != NULL && hl < sizeof(head)) {
            memcpy(head, last, hl);
            head[hl] = '\0';
            const char *cl = strcasestr(head, "\r\nContent-Length:");
            size_t body = cl != NULL ? (size_t)strtoull(cl + 17, NULL, 10) : 0;
            size_t total = hl + 4 + body;
            if (cl != NULL && strcasestr(head, "\r\nPAYMENT-SIGNATURE:") != NULL &&
                strcasestr(head, "\r\nOpenSeed-Credential:") != NULL &&
                (size_t)(end - last) >= total && (out = malloc(total)) != NULL) {
                memcpy(out, last, total);
                *len = total;
            }
        }
    }
    pthread_mutex_unlock(&px.mu);
    return out;
}

/* ------------------------------------------------------------------ processes */

/* dst gets src's arguments with the value of each flag in repl (flag, value pairs ending with
 * NULL; value NULL drops the flag) replaced, then extra. */
static void copy_args(nf_node *dst, const nf_node *src, const char *name, const char *const *repl,
                      const char *const *extra)
{
    const char *args[NF_MAX_ARGS + 1];
    int argc = 0;
    for (size_t i = 0; src->argv[i] != NULL; i++) {
        bool hit = false;
        for (size_t k = 0; repl != NULL && repl[k] != NULL; k += 2)
            if (strcmp(src->argv[i], repl[k]) == 0 && src->argv[i + 1] != NULL) {
                hit = true;
                if (repl[k + 1] != NULL) {
                    args[argc++] = repl[k];
                    args[argc++] = repl[k + 1];
                }
            }
        if (hit)
            i++;
        else
            args[argc++] = src->argv[i];
    }
    args[argc] = NULL;
    memset(&dst->p, 0, sizeof(dst->p));
    snprintf(dst->name, sizeof(dst->name), "%s", name);
    snprintf(dst->daemon, sizeof(dst->daemon), "%s", src->daemon);
    dst->port = src->port;
    dst->admin_port = src->admin_port;
    snprintf(dst->url, sizeof(dst->url), "%s", src->url);
    assert_int_equal(nf_set_args(dst, args, extra), 0);
}

static bool port_open(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool open_ = false;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0) {
        open_ = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
    }
    return open_;
}

/* Starts node expecting it to refuse: it exits non-zero without ever listening, and exactly one
 * line of its log names path and "(mode 0MMM)". */
static void expect_refused(nf_node *node, const char *path, unsigned mode)
{
    char why[NF_WHY] = "", log[256], m[32], line[4096];
    struct stat sb;
    long from;
    int naming = 0;
    FILE *f;

    snprintf(log, sizeof(log), "%s/%s.log", fx.dir, node->name);
    from = stat(log, &sb) == 0 ? (long)sb.st_size : 0;
    if (nf_restart(&fx, node, why, sizeof(why)) == 0) {
        nf_kill(node, SIGKILL);
        fail_msg("%s started with %s at mode %04o", node->name, path, mode);
    }
    const char *st = strstr(why, "exited (status ");
    if (st == NULL)
        fail_msg("%s: %s", node->name, why);
    long status = strtol(st + 15, NULL, 10);
    assert_true(status != 0);
    snprintf(m, sizeof(m), "(mode %04o)", mode);
    f = fopen(log, "r");
    assert_non_null(f);
    assert_int_equal(fseek(f, from, SEEK_SET), 0);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "listening on") != NULL || strstr(line, "seller listening") != NULL ||
            strstr(line, "buyer listening") != NULL)
            fail_msg("%s listened before refusing: %s", node->name, line);
        if (strstr(line, m) != NULL && strstr(line, path) != NULL)
            naming++;
    }
    fclose(f);
    if (naming != 1)
        fail_msg("%s: %d log lines name %s and %s (want 1); see %s", node->name, naming, path, m,
                 log);
    assert_false(port_open(node->port));
    if (node->admin_port != 0)
        assert_false(port_open(node->admin_port));
    n.refused_starts++;
}

/* A buyer like nf_buyer's (same registry, chain and contracts) named name, on its own port and
 * data directory, with the wallet key file given and extra flags. Not started. */
static void buyer_node(nf_node *b, const char *name, const char *wallet, const char *const *extra)
{
    char listen[32], dir[192];
    memset(b, 0, sizeof(*b));
    b->port = nf_free_port();
    assert_true(b->port != 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)b->port);
    snprintf(dir, sizeof(dir), "%s/%s", fx.dir, name);
    snprintf(b->data_dir, sizeof(b->data_dir), "%s", dir);
    snprintf(b->name, sizeof(b->name), "%s", name);
    snprintf(b->daemon, sizeof(b->daemon), "buyer");
    snprintf(b->url, sizeof(b->url), "http://127.0.0.1:%u", (unsigned)b->port);
    const char *args[] = {"--listen",   listen,      "--data-dir",   dir,
                          "--registry", fx.reg.url,  "--rpc",        fx.d.anvil.url,
                          "--chain-id", fx.chain,    "--escrow",     fx.escrow_hex,
                          "--usdc",     fx.usdc_hex, "--wallet-key", wallet,
                          "--deposit",  "2",         "--peers-ttl",  "1s",
                          NULL};
    assert_int_equal(nf_set_args(b, args, extra), 0);
}

/* Writes text to dir/name with mode; the path into out. */
static void put_file(char *out, size_t cap, const char *name, const char *text, mode_t mode)
{
    snprintf(out, cap, "%s/%s", fx.dir, name);
    unlink(out);
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* ------------------------------------------------------------------ fixture */

/* Waits until the registry lists seller 0 at the proxy's URL. */
static int wait_endpoint(long ms)
{
    char url[192];
    for (long t = 0; t < ms; t += 100) {
        json_t *j = NULL, *p;
        long st = 0;
        size_t i;
        bool seen = false;
        snprintf(url, sizeof(url), "%s/v1/peers?service=echo", fx.reg.url);
        if (os_http_client_json(fx.http, &st, &j, NULL, "GET", url, NULL, NULL, 0) == OS_OK)
            json_array_foreach(json_object_get(j, "peers"), i, p)
            {
                const char *e = json_string_value(json_object_get(p, "endpoint"));
                seen = seen || (e != NULL && strcmp(e, a_endpoint) == 0);
            }
        json_decref(j);
        if (seen)
            return 0;
        rc_sleep_ms(100);
    }
    return -1;
}

static int setup(void **state)
{
    char why[NF_WHY] = "";
    (void)state;

    if (nf_setup(&fx, "security", CHAIN, why, sizeof(why)) != 0 ||
        nf_registry(&fx, NULL, why, sizeof(why)) != 0 ||
        nf_seller(&fx, 0, OFFER, NULL, NULL, why, sizeof(why)) != 0 ||
        nf_seller(&fx, 1, OFFER, NULL, NULL, why, sizeof(why)) != 0)
        goto fail;
    /* A advertises a recording proxy as its endpoint: the buyer's bytes to A pass through it */
    if (wp_start(&px, fx.sel[0].port) != 0) {
        snprintf(why, sizeof(why), "no proxy");
        goto fail;
    }
    snprintf(a_endpoint, sizeof(a_endpoint), "http://127.0.0.1:%u", (unsigned)px.port);
    if (nf_kill(&fx.sel[0], SIGTERM) != 0) {
        snprintf(why, sizeof(why), "seller0 did not stop cleanly");
        goto fail;
    }
    for (size_t i = 0; fx.sel[0].argv[i] != NULL; i++)
        if (strcmp(fx.sel[0].argv[i], "--endpoint") == 0)
            fx.sel[0].argv[i + 1] = a_endpoint;
    if (nf_restart(&fx, &fx.sel[0], why, sizeof(why)) != 0)
        goto fail;
    if (nf_wait_listed(&fx, "echo", 2, 30000) != 0 || wait_endpoint(30000) != 0) {
        snprintf(why, sizeof(why), "the registry does not list both sellers, A at its proxy");
        goto fail;
    }
    if (nf_buyer(&fx, NULL, why, sizeof(why)) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "setup: %s\n", why);
    failed = 1;
    return -1;
}

static int teardown(void **state)
{
    (void)state;
    print_message("security counts: hosts refused %d accepted %d; answers checked for CORS %d; "
                  "foreign origins refused %d; bearer refused %d accepted %d; admin refused %d; "
                  "replays to A %d, to B %d, to A after restart %d (%d first ones stale_nonce); "
                  "forgeries %d; refused starts %d\n",
                  n.hosts_refused, n.hosts_accepted, n.cors_checked, n.origin_refused,
                  n.auth_refused, n.auth_ok, n.admin_refused, n.replays_a, n.replays_b,
                  n.replays_restart, n.restart_stale, n.forgeries, n.refused_starts);
    nf_kill(&kb, SIGKILL);
    nf_kill(&probe, SIGKILL);
    nf_teardown(&fx, failed);
    wp_stop(&px);
    return 0;
}

/* ------------------------------------------------------------------ the gateway */

static void test_host_guard(void **state)
{
    static const char *const bad[] = {
        "evil.example",
        "evil.example:%u",
        "127.evil.example:%u",
        "127.0.0.1.nip.io:%u",
        "localhost.evil.example:%u",
        "[::1].evil.example:%u",
        "0.0.0.0:%u",
        "169.254.169.254",
        "127.0.0.1:%u@evil.example",
        "localhost:%u:80",
        "[::1]x:%u",
        "[::2]:%u",
    };
    static const char *const good[] = {"127.0.0.1:%u", "localhost:%u", "[::1]:%u", "LocalHost:%u",
                                       "localhost",    "127.0.0.1",    "[::1]",    "127.1.2.3:%u"};
    char host[128];
    resp r;
    size_t req0, vou0, req1, vou1;
    (void)state;
    failed = 1;

    buyer_books(&req0, &vou0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fill_host(host, sizeof(host), bad[i], (unsigned)fx.buyer.port);
        const char *h[] = {"Host", host, "Content-Type", "application/json", NULL};
        bcall(&r, "GET", "/v1/models", NULL, h);
        if (r.status != 403)
            fail_msg("Host %s: status %ld, want 403", host, r.status);
        assert_true(error_shape(r.body, false));
        assert_string_equal(r.code, "forbidden_host");
        bcall(&r, "POST", "/v1/chat/completions", chat_body, h);
        expect_status(r, 403);
        bcall(&r, "GET", "/openseed/v1/channels", NULL, h);
        expect_status(r, 403);
        bcall(&r, "GET", "/metrics", NULL, h);
        expect_status(r, 403);
        bcall(&r, "POST", "/v1/messages",
              "{\"model\":\"echo\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":"
              "\"x\"}]}",
              h);
        expect_status(r, 403);
        assert_true(error_shape(r.body, true));
        n.hosts_refused++;
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        fill_host(host, sizeof(host), good[i], (unsigned)fx.buyer.port);
        const char *h[] = {"Host", host, NULL};
        bcall(&r, "GET", "/v1/models", NULL, h);
        if (r.status != 200)
            fail_msg("Host %s: status %ld, want 200: %s", host, r.status, r.body);
        bcall(&r, "GET", "/openseed/v1/channels", NULL, h);
        expect_status(r, 200);
        n.hosts_accepted++;
    }
    /* the three forms a local client uses, on a paid request */
    static const char *const paid[] = {"127.0.0.1:%u", "localhost:%u", "[::1]:%u"};
    for (size_t i = 0; i < 3; i++) {
        fill_host(host, sizeof(host), paid[i], (unsigned)fx.buyer.port);
        const char *h[] = {"Host", host, "Content-Type", "application/json", NULL};
        bcall(&r, "POST", "/v1/chat/completions", chat_body, h);
        expect_status(r, 200);
        assert_non_null(strstr(r.body, "echo: security"));
    }
    /* HTTP/1.0 without a Host at all */
    {
        static const char req[] = "GET /v1/models HTTP/1.0\r\n\r\n";
        long st;
        char code[64];
        assert_int_equal(raw_exchange(fx.buyer.port, req, sizeof(req) - 1, &st, code, sizeof(code)),
                         0);
        assert_int_equal(st, 403);
        assert_string_equal(code, "forbidden_host");
        n.hosts_refused++;
    }
    /* refused requests reached no seller: only the three paid ones were booked */
    assert_int_equal(nf_buyer_idle(&fx, 10000), 0);
    buyer_books(&req1, &vou1);
    assert_true(req1 == req0 + 3);
    failed = 0;
}

static void test_no_cors_no_cross_site(void **state)
{
    char url[128], host[64];
    resp r;
    size_t req0, vou0, req1, vou1;
    long st;
    (void)state;
    failed = 1;

    snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned)fx.buyer.port);
    buyer_books(&req0, &vou0);
    json_t *j0 = nf_buyer_get(&fx, &st, "/openseed/v1/channels");
    size_t channels0 = json_array_size(json_object_get(j0, "channels"));
    json_decref(j0);
    /* preflights, from a foreign site and from a local one: no Access-Control-* (bcall checks),
     * so a browser never lets a page send a JSON request or read an answer */
    static const char *const paths[] = {"/v1/chat/completions", "/v1/models",
                                        "/openseed/v1/channels", "/v1/messages"};
    static const char *const origins[] = {"http://evil.example", "http://localhost:3000"};
    for (size_t o = 0; o < 2; o++)
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            const char *h[] = {"Origin",
                               origins[o],
                               "Access-Control-Request-Method",
                               "POST",
                               "Access-Control-Request-Headers",
                               "authorization, content-type",
                               NULL};
            bcall(&r, "OPTIONS", paths[i], NULL, h);
            expect_status(r, 405); /* no OPTIONS route: method not allowed */
        }
    /* a GET with an Origin: a local page is answered (without CORS headers); a foreign one not */
    {
        const char *h[] = {"Origin", "http://localhost:5173", NULL};
        bcall(&r, "GET", "/v1/models", NULL, h);
        expect_status(r, 200);
    }
    /* cross-site requests a browser sends without a preflight ("simple" requests: text/plain,
     * a form) carry the page's Origin: refused before anything is relayed or paid */
    static const char *const foreign[] = {"http://evil.example", "https://evil.example:8443",
                                          "null", "http://127.0.0.1.nip.io"};
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        const char *h[] = {"Origin", foreign[i], "Content-Type", "text/plain", "Host", host, NULL};
        bcall(&r, "POST", "/v1/chat/completions", chat_body, h);
        if (r.status != 403)
            fail_msg("Origin %s: status %ld, want 403: %s", foreign[i], r.status, r.body);
        assert_true(error_shape(r.body, false));
        assert_string_equal(r.code, "forbidden_origin");
        bcall(&r, "GET", "/v1/models", NULL, h);
        expect_status(r, 403);
        snprintf(url, sizeof(url), "{\"seller\":\"%s\"}", fx.sel_hex[1]);
        bcall(&r, "POST", "/openseed/v1/channels", url, h); /* would open a channel */
        expect_status(r, 403);
        n.origin_refused++;
    }
    /* the same request from a local page goes through */
    {
        const char *h[] = {"Origin", "http://localhost:3000", "Content-Type", "application/json",
                           NULL};
        bcall(&r, "POST", "/v1/chat/completions", chat_body, h);
        expect_status(r, 200);
    }
    assert_int_equal(nf_buyer_idle(&fx, 10000), 0);
    buyer_books(&req1, &vou1);
    assert_true(req1 == req0 + 1);
    /* the refused POSTs opened no channel */
    json_t *j = nf_buyer_get(&fx, &st, "/openseed/v1/channels");
    assert_int_equal(json_array_size(json_object_get(j, "channels")), channels0);
    json_decref(j);
    failed = 0;
}

static void test_api_key(void **state)
{
    char wallet[256], keyfile[256], flag[300], auth[128];
    uint8_t addr[20];
    resp r;
    char why[NF_WHY] = "";
    (void)state;
    failed = 1;

    /* a second buyer with its own wallet (anvil account 7) and --api-key-file */
    devchain_address(addr, 7);
    assert_int_equal(devchain_mint(&fx.d, addr, 10 * 1000000ull, why, sizeof(why)), 0);
    assert_int_equal(nf_key_file(&fx, wallet, sizeof(wallet), "wallet7.key", 7, why, sizeof(why)),
                     0);
    put_file(keyfile, sizeof(keyfile), "api.key", API_KEY "\n", 0600);
    snprintf(flag, sizeof(flag), "%s", keyfile);
    const char *extra[] = {"--api-key-file", flag, NULL};
    buyer_node(&kb, "buyer-key", wallet, extra);
    if (nf_restart(&fx, &kb, why, sizeof(why)) != 0)
        fail_msg("%s", why);

    char url[256];
    static const char *const wrong[] = {NULL,
                                        "Bearer sk-wrong",
                                        "Bearer " API_KEY "x",
                                        "Bearer sk-openseed-security-test-012345678",
                                        "Basic " API_KEY,
                                        "Bearer",
                                        API_KEY};
    static const struct {
        const char *method, *path, *body;
    } routes[] = {
        {"POST", "/v1/chat/completions", chat_body},
        {"POST", "/v1/embeddings", "{\"model\":\"echo\",\"input\":\"x\"}"},
        {"GET", "/v1/models", NULL},
        {"GET", "/openseed/v1/ledger", NULL},
        {"GET", "/openseed/v1/channels", NULL},
        {"GET", "/openseed/v1/peers", NULL},
        {"GET", "/openseed/v1/spend", NULL},
        {"GET", "/metrics", NULL}, /* the counters tell what the wallet spends */
        {"POST", "/openseed/v1/channels",
         "{\"seller\":\"0x0000000000000000000000000000000000000001\"}"},
        {"POST",
         "/openseed/v1/channels/0x0000000000000000000000000000000000000000000000000000000000000001/"
         "close",
         "{}"},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        snprintf(url, sizeof(url), "%s%s", kb.url, routes[i].path);
        for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
            const char *h[] = {"Content-Type", "application/json",
                               wrong[w] != NULL ? "Authorization" : NULL, wrong[w], NULL};
            call(&r, routes[i].method, url, routes[i].body, h);
            if (r.status != 401)
                fail_msg("%s %s with %s: status %ld, want 401", routes[i].method, routes[i].path,
                         wrong[w] != NULL ? wrong[w] : "no key", r.status);
            assert_true(error_shape(r.body, false));
            assert_string_equal(r.code, "invalid_api_key");
            assert_string_equal(r.type, "authentication_error");
            assert_int_equal(r.n_cors, 0);
            n.auth_refused++;
        }
    }
    /* the right key: the client and management APIs answer */
    snprintf(auth, sizeof(auth), "Bearer %s", API_KEY);
    for (size_t i = 0; i < 8; i++) {
        const char *h[] = {"Content-Type", "application/json", "Authorization", auth, NULL};
        snprintf(url, sizeof(url), "%s%s", kb.url, routes[i].path);
        call(&r, routes[i].method, url, routes[i].body, h);
        if (r.status != 200)
            fail_msg("%s %s with the key: %ld %s", routes[i].method, routes[i].path, r.status,
                     r.body);
        n.auth_ok++;
    }
    snprintf(url, sizeof(url), "%s/v1/chat/completions", kb.url);
    {
        const char *h[] = {"Content-Type", "application/json", "Authorization", auth, NULL};
        call(&r, "POST", url, chat_body, h);
        assert_non_null(strstr(r.body, "echo: security"));
    }
    /* Anthropic clients send x-api-key; the refusal is in Anthropic's shape */
    snprintf(url, sizeof(url), "%s/v1/messages", kb.url);
    static const char msg[] = "{\"model\":\"echo\",\"max_tokens\":16,\"messages\":[{\"role\":"
                              "\"user\",\"content\":\"key\"}]}";
    {
        const char *h[] = {"Content-Type", "application/json", "x-api-key", "sk-wrong", NULL};
        call(&r, "POST", url, msg, h);
        expect_status(r, 401);
        assert_true(error_shape(r.body, true));
        n.auth_refused++;
        h[3] = API_KEY;
        call(&r, "POST", url, msg, h);
        expect_status(r, 200);
        n.auth_ok++;
    }
    /* the Host guard comes first: the right key from a rebinding page is still refused */
    {
        const char *h[] = {"Host", "evil.example", "Authorization", auth, NULL};
        snprintf(url, sizeof(url), "%s/openseed/v1/channels", kb.url);
        call(&r, "GET", url, NULL, h);
        expect_status(r, 403);
    }
    assert_int_equal(nf_kill(&kb, SIGTERM), 0);
    failed = 0;
}

static void test_seller_admin_token(void **state)
{
    char tok[128], bad[128];
    resp r;
    (void)state;
    failed = 1;

    for (int i = 0; i < 2; i++) {
        char url[192];
        assert_int_equal(nf_admin_token(&fx, i, tok, sizeof(tok)), 0);
        snprintf(bad, sizeof(bad), "%s", tok);
        bad[0] = bad[0] == 'a' ? 'b' : 'a'; /* one character off */
        char b1[160], b2[160], b3[160];
        snprintf(b1, sizeof(b1), "Bearer %s", bad);
        snprintf(b2, sizeof(b2), "Bearer %.*s", (int)strlen(tok) - 1, tok); /* a prefix */
        snprintf(b3, sizeof(b3), "Basic %s", tok);
        const char *const wrong[] = {NULL, b1, b2, b3, "Bearer "};
        static const char *const paths[] = {"/admin/v1/revenue", "/admin/v1/channels",
                                            "/admin/v1/vouchers", "/admin/v1/requests",
                                            "/admin/v1/settlements"};
        for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
            snprintf(url, sizeof(url), "%s%s", fx.sel[i].admin_url, paths[p]);
            for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
                const char *h[] = {wrong[w] != NULL ? "Authorization" : NULL, wrong[w], NULL};
                call(&r, "GET", url, NULL, h);
                if (r.status != 401)
                    fail_msg("seller%d %s: %ld, want 401", i, paths[p], r.status);
                assert_true(error_shape(r.body, false));
                n.admin_refused++;
            }
        }
        snprintf(url, sizeof(url), "%s/admin/v1/settle", fx.sel[i].admin_url);
        const char *h[] = {"Content-Type", "application/json", NULL};
        call(&r, "POST", url, "{}", h); /* settling needs the token too */
        expect_status(r, 401);
        n.admin_refused++;
        /* the right token */
        long st;
        for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
            json_t *j = nf_admin(&fx, i, &st, paths[p], NULL);
            assert_int_equal(st, 200);
            assert_true(json_object_size(j) > 0);
            json_decref(j);
        }
        json_t *j = nf_admin(&fx, i, &st, "/admin/v1/revenue", NULL);
        assert_non_null(json_object_get(j, "consumed"));
        json_decref(j);
        /* the admin API is not served on the public listener */
        snprintf(url, sizeof(url), "%s/admin/v1/revenue", fx.sel[i].url);
        snprintf(b1, sizeof(b1), "Bearer %s", tok);
        const char *h2[] = {"Authorization", b1, NULL};
        call(&r, "GET", url, NULL, h2);
        expect_status(r, 404);
    }
    os_wipe(tok, sizeof(tok));
    failed = 0;
}

/* ------------------------------------------------------------------ replay and forgery */

#define N_CAPTURED 3
#define N_REPLAYS 5
#define N_RESTARTS 3

/* Replays req to seller i; expects status and one of the codes (|-separated); the code seen
 * into code. */
static void replay_expect(int i, const uint8_t *req, size_t len, long want, const char *codes,
                          char code[64])
{
    long st;
    char pat[80];
    assert_int_equal(raw_exchange(fx.sel[i].port, req, len, &st, code, 64), 0);
    snprintf(pat, sizeof(pat), "|%s|", code);
    if (st != want || code[0] == '\0' || strstr(codes, pat) == NULL)
        fail_msg("replay to seller%d: %ld %s, want %ld %s", i, st, code, want, codes);
}

static void test_replay_captured(void **state)
{
    static const char *const bodies[N_CAPTURED][2] = {
        {"/v1/chat/completions",
         "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"capture me\"}]}"},
        {"/v1/chat/completions", "{\"model\":\"echo\",\"stream\":true,\"messages\":[{\"role\":"
                                 "\"user\",\"content\":\"capture a stream\"}]}"},
        {"/v1/messages", "{\"model\":\"echo\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
                         "\"content\":\"capture a message\"}]}"},
    };
    char pin[64], why[NF_WHY] = "", code[64];
    resp r;
    uint8_t *req[N_CAPTURED];
    size_t len[N_CAPTURED];
    books a0, b0;
    (void)state;
    failed = 1;

    /* real paid requests from the buyer to A, through A's proxy: whole, streamed, Anthropic */
    snprintf(pin, sizeof(pin), "%s", fx.sel_hex[0]);
    const char *h[] = {"Content-Type", "application/json", "X-OpenSeed-Peer", pin, NULL};
    for (int k = 0; k < N_CAPTURED; k++) {
        bcall(&r, "POST", bodies[k][0], bodies[k][1], h);
        expect_status(r, 200);
        assert_non_null(strstr(r.body, "capture"));
        assert_int_equal(nf_buyer_idle(&fx, 10000), 0);
        req[k] = captured_infer(&len[k]);
        assert_non_null(req[k]);
        assert_true(k == 0 || len[k] != len[k - 1] || memcmp(req[k], req[k - 1], len[k]) != 0);
    }
    a0 = seller_books(0);
    b0 = seller_books(1);

    for (int k = 0; k < N_CAPTURED; k++) {
        /* the same bytes again to A: the credential's nullifier was spent */
        for (int i = 0; i < N_REPLAYS; i++, n.replays_a++)
            replay_expect(0, req[k], len[k], 401, "|nullifier_reused|", code);
        /* and to B: sealed to A's key (the channel pays A, so B never gets as far as the
         * voucher). The key id is one byte of A's public key: B's differs but for a 1 in 256
         * chance, when the envelope then fails to decrypt */
        for (int i = 0; i < N_REPLAYS; i++, n.replays_b++)
            replay_expect(1, req[k], len[k], 400, "|unknown_key|invalid_envelope|", code);
        /* the body altered in flight: still the spent credential */
        req[k][len[k] - 3] ^= 0x01;
        replay_expect(0, req[k], len[k], 401, "|nullifier_reused|", code);
        req[k][len[k] - 3] ^= 0x01;
        n.replays_a++;
    }
    assert_books_equal(a0, seller_books(0), "replays to A");
    assert_books_equal(b0, seller_books(1), "replays to B");

    /* A restarts (SIGTERM, SIGKILL, SIGTERM): its nullifier cache (memory) is empty, seller.db
     * is not. The first replay of each passes the credential (the proof is good) and is refused
     * by the voucher's nonce: the latest nonce as stale; an older one is a "late" voucher
     * (§10.11), refused as insufficient_amount when the latest voucher's slack does not cover
     * its estimate, else as stale by seller.db's unique (channel, nonce). The next replay meets
     * the nullifier, remembered again. */
    for (int c = 0; c < N_RESTARTS; c++) {
        assert_int_equal(nf_kill(&fx.sel[0], c == 1 ? SIGKILL : SIGTERM), c == 1 ? -1 : 0);
        if (nf_restart(&fx, &fx.sel[0], why, sizeof(why)) != 0)
            fail_msg("%s", why);
        for (int k = 0; k < N_CAPTURED; k++) {
            replay_expect(
                0, req[k], len[k], 402,
                k == N_CAPTURED - 1 ? "|stale_nonce|" : "|stale_nonce|insufficient_amount|", code);
            if (strcmp(code, "stale_nonce") == 0)
                n.restart_stale++;
            replay_expect(0, req[k], len[k], 401, "|nullifier_reused|", code);
            n.replays_restart += 2;
        }
        assert_books_equal(a0, seller_books(0), "replays to A after its restart");
    }
    for (int k = 0; k < N_CAPTURED; k++)
        free(req[k]);

    /* the buyer's channel with A still works, and the books agree */
    bcall(&r, "POST", "/v1/chat/completions", chat_body, h);
    expect_status(r, 200);
    assert_int_equal(nf_buyer_idle(&fx, 10000), 0);
    books a1 = seller_books(0);
    assert_true(a1.vouchers == a0.vouchers + 1 && a1.requests == a0.requests + 1);
    int nch = 0;
    if (nf_reconcile(&fx, 0, &nch, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    assert_true(nch >= 1);
    failed = 0;
}

/* A sealed request to b's seller: envelope, metadataHash, estimate. */
typedef struct sealed {
    os_infer_call *c;
    const uint8_t *env;
    size_t len;
    uint8_t mh[32];
    uint64_t estimate;
} sealed;

static void seal(tbuyer *b, sealed *q, const char *text)
{
    os_estimate est;
    const os_offering *o = tb_offering(b, "echo");
    json_t *body = json_pack("{s:s,s:[{s:s,s:s}],s:i}", "model", "echo", "messages", "role", "user",
                             "content", text, "max_tokens", 32);
    assert_non_null(o);
    assert_int_equal(os_infer_call_new(&q->c, &b->kc, "openai.chat", "echo", body), OS_OK);
    q->env = os_infer_call_envelope(q->c, &q->len);
    os_infer_call_metadata_hash(q->c, q->mh);
    assert_int_equal(
        os_estimate_request(&est, "openai.chat", body, &o->pricing, o->max_output_tokens), OS_OK);
    q->estimate = est.total;
    json_decref(body);
}

/* Sends env with payment and credential as they are; expects status and code. */
static void send_expect(tbuyer *via, const void *env, size_t len, const char *pay, const char *cred,
                        long want, const char *want_code)
{
    long st = 0;
    char code[64];
    assert_int_equal(tb_raw(via, &st, code, sizeof(code), NULL, env, len, pay, cred, NULL), 0);
    if (st != want || strcmp(code, want_code) != 0)
        fail_msg("got %ld %s, want %ld %s", st, code, want, want_code);
}

/* A voucher (channel, cum, nonce, mh) signed by priv in the domain (chain, escrow), encoded as
 * b's payment header; *pay is malloc'd. */
static void forge(char **pay, const tbuyer *b, const uint8_t channel[32], const uint8_t priv[32],
                  uint64_t chain, const uint8_t escrow[20], uint64_t cum, uint64_t nonce,
                  const uint8_t mh[32])
{
    os_voucher v;
    os_x402_requirement acc;
    memset(&v, 0, sizeof(v));
    memcpy(v.channel_id, channel, 32);
    v.cumulative_amount = cum;
    v.nonce = nonce;
    memcpy(v.metadata_hash, mh, 32);
    assert_int_equal(os_voucher_sign(&v, priv, chain, escrow), OS_OK);
    memset(&acc, 0, sizeof(acc));
    acc.chain_id = chain;
    memcpy(acc.asset, b->rec.asset, 20);
    memcpy(acc.pay_to, b->rec.node, 20);
    acc.max_timeout_s = 300;
    memcpy(acc.escrow, escrow, 20);
    assert_int_equal(os_x402_payment_encode(pay, &acc, &v), OS_OK);
}

static void cred_for(char cred[OS_CRED_HEADER_LEN + 1], const tbuyer *b, const uint8_t channel[32],
                     uint64_t nonce, const uint8_t mh[32])
{
    assert_int_equal(
        os_cred_header_make(cred, OS_CRED_HEADER_LEN + 1, NULL, b->cred, channel, nonce, mh),
        OS_OK);
}

static void test_forgery(void **state)
{
    tbuyer t1, t2, t3; /* channels: t1 and t2 to A (two payers), t3 to B */
    char why[NF_WHY] = "", *pay = NULL, cred[OS_CRED_HEADER_LEN + 1];
    sealed q, q2;
    books a0, b0;
    uint64_t cum, nonce;
    long st;
    (void)state;
    failed = 1;

    if (tb_init(&t1, fx.sel[0].url, CHAIN, fx.d.escrow, why, sizeof(why)) != 0 ||
        tb_open(&t1, &fx.d, 6, fx.sel_addr[0], 1000000, why, sizeof(why)) != 0 ||
        tb_init(&t2, fx.sel[0].url, CHAIN, fx.d.escrow, why, sizeof(why)) != 0 ||
        tb_open(&t2, &fx.d, 8, fx.sel_addr[0], 1000000, why, sizeof(why)) != 0 ||
        tb_init(&t3, fx.sel[1].url, CHAIN, fx.d.escrow, why, sizeof(why)) != 0 ||
        tb_open(&t3, &fx.d, 6, fx.sel_addr[1], 1000000, why, sizeof(why)) != 0)
        fail_msg("%s", why);

    /* the honest request on each of A's channels works: what follows is refused for what it
     * forges, not for a setup mistake */
    tbuyer *mine[2] = {&t1, &t2};
    for (int i = 0; i < 2; i++) {
        seal(mine[i], &q, "honest");
        nonce = ++mine[i]->nonce;
        assert_int_equal(tb_sign(mine[i], &pay, cred, q.mh, q.estimate, nonce), 0);
        assert_int_equal(tb_raw(mine[i], &st, NULL, 0, NULL, q.env, q.len, pay, cred, NULL), 0);
        assert_int_equal(st, 200);
        free(pay);
        os_infer_call_free(q.c);
    }
    a0 = seller_books(0);
    b0 = seller_books(1);

    /* each forgery three times, on a fresh request each round */
    nonce = t1.nonce + 10;
    for (int round = 0; round < 3; round++) {
        if (round > 0) {
            os_infer_call_free(q.c);
            os_infer_call_free(q2.c);
        }
        seal(&t1, &q, "forged");
        cum = q.estimate * 4;

        /* signed for another chain: the EIP-712 domain differs, so the signer recovered is not the
         * channel's */
        static const uint64_t chains[] = {1, 8453, CHAIN + 1};
        for (size_t i = 0; i < 3; i++, nonce++) {
            forge(&pay, &t1, t1.channel_id, t1.signer_priv, chains[i], fx.d.escrow, cum, nonce,
                  q.mh);
            cred_for(cred, &t1, t1.channel_id, nonce, q.mh);
            send_expect(&t1, q.env, q.len, pay, cred, 401, "invalid_signature");
            free(pay);
            n.forgeries++;
        }
        /* for another escrow contract (TestUSDC's address, the escrow's with one bit flipped, zero)
         */
        {
            uint8_t escrows[3][20];
            memcpy(escrows[0], fx.d.usdc, 20);
            memcpy(escrows[1], fx.d.escrow, 20);
            escrows[1][19] ^= 1;
            memset(escrows[2], 0, 20);
            for (size_t i = 0; i < 3; i++, nonce++) {
                forge(&pay, &t1, t1.channel_id, t1.signer_priv, CHAIN, escrows[i], cum, nonce,
                      q.mh);
                cred_for(cred, &t1, t1.channel_id, nonce, q.mh);
                send_expect(&t1, q.env, q.len, pay, cred, 401, "invalid_signature");
                free(pay);
                n.forgeries++;
            }
        }
        /* for another channel: the buyer daemon's channel with A (A knows it; its commitment is
         * not ours) */
        {
            json_t *j = nf_buyer_get(&fx, &st, "/openseed/v1/channels"), *c;
            size_t i;
            uint8_t theirs[32];
            bool found = false;
            json_array_foreach(json_object_get(j, "channels"), i, c)
            {
                const char *id = json_string_value(json_object_get(c, "channel_id"));
                if (strcasecmp(json_string_value(json_object_get(c, "seller")), fx.sel_hex[0]) ==
                        0 &&
                    id != NULL && os_hex_decode_exact(theirs, 32, id) == OS_OK)
                    found = true;
            }
            json_decref(j);
            assert_true(found);
            forge(&pay, &t1, theirs, t1.signer_priv, CHAIN, fx.d.escrow, cum, nonce, q.mh);
            cred_for(cred, &t1, theirs, nonce, q.mh);
            send_expect(&t1, q.env, q.len, pay, cred, 401, "credential_mismatch");
            free(pay);
            nonce++;
            n.forgeries++;
        }
        /* a channel nobody opened */
        {
            uint8_t unknown[32];
            randombytes_buf(unknown, sizeof(unknown));
            forge(&pay, &t1, unknown, t1.signer_priv, CHAIN, fx.d.escrow, cum, nonce, q.mh);
            cred_for(cred, &t1, unknown, nonce, q.mh);
            send_expect(&t1, q.env, q.len, pay, cred, 402, "unknown_channel");
            free(pay);
            nonce++;
            n.forgeries++;
        }
        /* our own channel that pays B, spent at A */
        {
            forge(&pay, &t1, t3.channel_id, t3.signer_priv, CHAIN, fx.d.escrow, cum, nonce, q.mh);
            cred_for(cred, &t3, t3.channel_id, nonce, q.mh);
            send_expect(&t1, q.env, q.len, pay, cred, 402, "channel_unusable");
            free(pay);
            nonce++;
            n.forgeries++;
        }
        /* a voucher signed by t1's channel signer, naming t2's channel (with t2's own credential):
         * the signature recovers t1's signer, not t2's */
        {
            forge(&pay, &t1, t2.channel_id, t1.signer_priv, CHAIN, fx.d.escrow, cum, nonce, q.mh);
            cred_for(cred, &t2, t2.channel_id, nonce, q.mh);
            send_expect(&t1, q.env, q.len, pay, cred, 401, "invalid_signature");
            free(pay);
            nonce++;
            n.forgeries++;
        }
        /* the body changed after the metadataHash was taken: another sealed body, and the same
         * envelope with one ciphertext byte flipped, under a voucher and credential for the first
         */
        seal(&t1, &q2, "changed after signing");
        {
            forge(&pay, &t1, t1.channel_id, t1.signer_priv, CHAIN, fx.d.escrow, cum, nonce, q.mh);
            cred_for(cred, &t1, t1.channel_id, nonce, q.mh);
            send_expect(&t1, q2.env, q2.len, pay, cred, 401, "invalid_credential");
            uint8_t *t = malloc(q.len);
            assert_non_null(t);
            memcpy(t, q.env, q.len);
            t[q.len - 5] ^= 1;
            send_expect(&t1, t, q.len, pay, cred, 401, "invalid_credential");
            free(t);
            free(pay);
            nonce++;
            /* the credential proved for the new body, the voucher still naming the old hash */
            forge(&pay, &t1, t1.channel_id, t1.signer_priv, CHAIN, fx.d.escrow, cum, nonce, q.mh);
            cred_for(cred, &t1, t1.channel_id, nonce, q2.mh);
            send_expect(&t1, q2.env, q2.len, pay, cred, 401, "metadata_mismatch");
            free(pay);
            nonce++;
            n.forgeries += 3;
        }
    }
    assert_books_equal(a0, seller_books(0), "forgeries at A");
    assert_books_equal(b0, seller_books(1), "forgeries at A (B's books)");

    /* an honest request after all that is taken (nothing above moved the channel), and its exact
     * bytes replayed: to A (the nullifier; with a fresh nullifier, the nonce), and to B */
    {
        char *good = NULL, gcred[OS_CRED_HEADER_LEN + 1];
        t1.nonce = nonce;
        assert_int_equal(tb_sign(&t1, &good, gcred, q.mh, cum, t1.nonce), 0);
        assert_int_equal(tb_raw(&t1, &st, NULL, 0, NULL, q.env, q.len, good, gcred, NULL), 0);
        assert_int_equal(st, 200);
        books a1 = seller_books(0);
        assert_true(a1.vouchers == a0.vouchers + 1 && a1.requests == a0.requests + 1);
        for (int i = 0; i < 3; i++) {
            send_expect(&t1, q.env, q.len, good, gcred, 401, "nullifier_reused");
            n.replays_a++;
        }
        assert_int_equal(tb_cred_random_nf(&t1, gcred, q.mh), 0);
        send_expect(&t1, q.env, q.len, good, gcred, 402, "stale_nonce");
        n.replays_a++;
        long bst = 0;
        char bcode[64];
        assert_int_equal(
            tb_raw(&t3, &bst, bcode, sizeof(bcode), NULL, q.env, q.len, good, gcred, NULL), 0);
        assert_int_equal(bst, 400);
        assert_true(strcmp(bcode, "unknown_key") == 0 || strcmp(bcode, "invalid_envelope") == 0);
        n.replays_b++;
        free(good);
        assert_books_equal(a1, seller_books(0), "replays of the hand-made request to A");
        assert_books_equal(b0, seller_books(1), "the replay to B");
    }
    os_infer_call_free(q.c);
    os_infer_call_free(q2.c);
    tb_free(&t1);
    tb_free(&t2);
    tb_free(&t3);
    failed = 0;
}

/* ------------------------------------------------------------------ keys */

/* The ethers 6.17 v3 keystore of tests/unit/test_keyfile.c (scrypt n = 1024) and its password. */
static const char ks_text[] =
    "{\"address\":\"2c7536e3605d9c16a7a3d7b1898e529396a65c23\","
    "\"id\":\"62c80498-8516-4e72-984d-95b4f286fc15\",\"version\":3,\"Crypto\":{"
    "\"cipher\":\"aes-128-ctr\",\"cipherparams\":{\"iv\":\"3908cd1d339b631d8a162d28da1713ca\"},"
    "\"ciphertext\":\"4afcbd7d05590df42c9f9c6e4f3b769feed062f6125e28ca0c7c05ad6457292b\","
    "\"kdf\":\"scrypt\",\"kdfparams\":{\"salt\":"
    "\"5d04f71fcdc13b1b68ba1eb3f652b4aeb07b76dbc9fc1b4f8b410505a7cc1560\",\"n\":1024,"
    "\"dklen\":32,\"p\":1,\"r\":8},\"mac\":"
    "\"19518ac60d5b55c9671963a16b3efaab0e8520a888d19299b726ae002b3d3940\"}}\n";

static void test_keys_refuse_start(void **state)
{
    nf_node *b = &fx.sel[1], *buyer = &fx.buyer;
    char path[256], path2[512], why[NF_WHY] = "";
    static const mode_t modes[] = {0644, 0640, 0604, 0660};
    (void)state;
    failed = 1;

    /* seller B: its --node-key, then the gateway key and admin token it created in its data
     * directory on its first run */
    assert_int_equal(nf_kill(b, SIGTERM), 0);
    snprintf(path, sizeof(path), "%s/s1.key", fx.dir);
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        assert_int_equal(chmod(path, modes[i]), 0);
        expect_refused(b, path, modes[i]);
    }
    assert_int_equal(chmod(path, 0600), 0);
    static const char *const created[] = {"gateway.key", "admin.token"};
    for (size_t k = 0; k < 2; k++) {
        struct stat sb;
        snprintf(path2, sizeof(path2), "%s/%s", b->data_dir, created[k]);
        assert_int_equal(stat(path2, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0600); /* as the seller made it */
        for (size_t i = 0; i < 2; i++) {
            assert_int_equal(chmod(path2, modes[i + 2 * k]), 0);
            expect_refused(b, path2, modes[i + 2 * k]);
        }
        assert_int_equal(chmod(path2, 0600), 0);
    }
    /* the node key's default place, in a data directory of its own */
    {
        char dir[256];
        uint8_t key[32];
        snprintf(dir, sizeof(dir), "%s/seller-default", fx.dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(path2, sizeof(path2), "%s/node.key", dir);
        devchain_key(key, 9);
        assert_int_equal(os_keyfile_write_secp(path2, key, why, sizeof(why)), OS_OK);
        os_wipe(key, sizeof(key));
        assert_int_equal(chmod(path2, 0644), 0);
        const char *repl[] = {"--node-key", NULL, "--data-dir", dir, NULL};
        copy_args(&probe, b, "seller-default", repl, NULL);
        expect_refused(&probe, path2, 0644);
    }
    /* secret files named by flags: the upstream's API key and an admin token file */
    static const char *const secret_flags[] = {"--upstream-key-file", "--admin-token-file"};
    for (size_t k = 0; k < 2; k++) {
        put_file(path2, sizeof(path2), k == 0 ? "upstream.key" : "admin2.token",
                 "sk-a-secret-of-at-least-16-bytes\n", 0640);
        const char *extra[] = {secret_flags[k], path2, NULL};
        copy_args(&probe, b, k == 0 ? "seller-upkey" : "seller-tok", NULL, extra);
        expect_refused(&probe, path2, 0640);
    }
    /* with every file private again, B starts as before */
    if (nf_restart(&fx, b, why, sizeof(why)) != 0)
        fail_msg("seller1 after the key checks: %s", why);

    /* the buyer: its wallet key, then buyer.db (it holds the channel secrets) */
    assert_int_equal(nf_kill(buyer, SIGTERM), 0);
    snprintf(path, sizeof(path), "%s/wallet.key", fx.dir);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(chmod(path, modes[i]), 0);
        expect_refused(buyer, path, modes[i]);
    }
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(path2, sizeof(path2), "%s/buyer.db", buyer->data_dir);
    assert_int_equal(chmod(path2, 0644), 0);
    expect_refused(buyer, path2, 0644);
    assert_int_equal(chmod(path2, 0600), 0);
    /* a keystore wallet's password file, and the API key file */
    {
        char ks[256], pw[256], key[256];
        put_file(ks, sizeof(ks), "wallet.json", ks_text, 0600);
        put_file(pw, sizeof(pw), "wallet.pass", "openseed-ethers-6\n", 0604);
        const char *extra[] = {"--wallet-password-file", pw, NULL};
        buyer_node(&probe, "buyer-ks", ks, extra);
        expect_refused(&probe, pw, 0604);
        assert_int_equal(chmod(pw, 0600), 0); /* the same buyer starts once it is private */
        if (nf_restart(&fx, &probe, why, sizeof(why)) != 0)
            fail_msg("keystore buyer: %s", why);
        assert_int_equal(nf_kill(&probe, SIGTERM), 0);
        assert_int_equal(chmod(ks, 0640), 0); /* and the keystore itself */
        expect_refused(&probe, ks, 0640);

        put_file(key, sizeof(key), "api2.key", API_KEY "\n", 0644);
        const char *extra2[] = {"--api-key-file", key, NULL};
        buyer_node(&probe, "buyer-apikey", path, extra2);
        expect_refused(&probe, key, 0644);
    }
    if (nf_restart(&fx, buyer, why, sizeof(why)) != 0)
        fail_msg("buyer after the key checks: %s", why);

    /* the registry's only secret file is its TLS key (an open one is refused: test_tls.c): no
     * other option of its takes a file */
    {
        char bin[1200], line[512];
        snprintf(bin, sizeof(bin), "%s/openseed-registry --help", fx.bin_dir);
        FILE *p = popen(bin, "r");
        int lines = 0;
        assert_non_null(p);
        while (fgets(line, sizeof(line), p) != NULL) {
            lines++;
            if (strstr(line, "FILE") != NULL && strstr(line, "--config") == NULL &&
                strstr(line, "--tls-cert") == NULL && strstr(line, "--tls-key") == NULL)
                fail_msg("the registry takes a file option: %s", line);
        }
        assert_int_equal(pclose(p), 0);
        assert_true(lines > 5);
    }

    /* everything back: a paid request, and the books agree */
    assert_int_equal(nf_wait_listed(&fx, "echo", 2, 30000), 0);
    nf_res r;
    nf_post(&fx, &r, "/v1/chat/completions", chat_body);
    assert_int_equal(r.status, 200);
    nf_res_free(&r);
    assert_int_equal(nf_buyer_idle(&fx, 10000), 0);
    int nch = 0;
    if (nf_reconcile(&fx, 0, &nch, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    failed = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_guard),        cmocka_unit_test(test_no_cors_no_cross_site),
        cmocka_unit_test(test_api_key),           cmocka_unit_test(test_seller_admin_token),
        cmocka_unit_test(test_replay_captured),   cmocka_unit_test(test_forgery),
        cmocka_unit_test(test_keys_refuse_start),
    };
    return cmocka_run_group_tests_name("security", tests, setup, teardown);
}
