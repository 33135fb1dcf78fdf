/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The systemd units in contrib/systemd, exercised without systemd: each unit's ExecStart= line is
 * read from the file and run with every flag it has, only the binary swapped for the build's and
 * the --config path for a file this test writes, with the environment systemd would give a
 * Type=notify service with WatchdogSec= ($NOTIFY_SOCKET naming a datagram socket the test binds,
 * $WATCHDOG_USEC; $JOURNAL_STREAM for the registry). The test then plays the service manager's
 * part (sd_notify(3), systemd.service(5)):
 *   - READY=1 (with STATUS=) comes from the daemon's own pid (SCM_CREDENTIALS, as NotifyAccess=main
 *     checks) and /healthz answers the moment it does: readiness means serving;
 *   - WATCHDOG=1 pings keep coming, and none come when WATCHDOG_PID names another process;
 *   - under $JOURNAL_STREAM the lines carry syslog priorities ("<6>", "<3>"), elsewhere not;
 *   - SIGHUP (ExecReload) is bracketed by RELOADING=1 ... READY=1; a new log level applies; a
 *     seller's new price is announced, listed by the registry, served on /v1/info and charged;
 *     an invalid file or a change that needs a restart is refused and the old values stay; a
 *     price change while a stream runs leaves that stream at the price it was admitted at (the
 *     seller's own book, read from seller.db);
 *   - SIGTERM during a stream lets the stream finish within the drain timeout, and STOPPING=1
 *     comes before a clean exit.
 * Real processes: anvil with the contracts, openseed-registry, -seller (builtin:echo) and -buyer
 * (netfix.h).
 */
#define _GNU_SOURCE 1 /* nftw (registry_client.h), struct ucred */
#include "testutil.h"

#include "netfix.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <sqlite3.h>

#include "openseed/money.h"
#include "openseed/sdnotify.h"

#define CHAIN 31337
#define WATCHDOG_USEC "900000" /* pings every 300 ms */
#define WAIT_MS 15000

static netfix fx;
static int failed; /* each test adds 1 and takes it back at its end: >0 keeps the logs */

/* ------------------------------------------------------------------ the notify socket */

typedef struct notif {
    int fd;
    char path[256];
    pid_t pid;     /* the only sender accepted (0 until known) */
    int watchdogs; /* WATCHDOG=1 messages seen */
} notif;

static notif nt_reg, nt_sel, nt_buy;

static void nt_open(notif *nt, const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int one = 1;

    memset(nt, 0, sizeof(*nt));
    snprintf(nt->path, sizeof(nt->path), "%s/%s.notify", fx.dir, name);
    assert_true(strlen(nt->path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, nt->path, strlen(nt->path) + 1);
    nt->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(nt->fd >= 0);
    assert_int_equal(bind(nt->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    /* like systemd: the kernel tells us who sent each message */
    assert_int_equal(setsockopt(nt->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
}

/* The next message into buf (NUL-terminated); false when none came within ms. Fails the test
 * when the sender is not the daemon's main process. */
static bool nt_next(notif *nt, char *buf, size_t cap, long ms)
{
    struct pollfd p = {.fd = nt->fd, .events = POLLIN};
    union {
        char b[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
    struct ucred cred = {0};
    ssize_t n;

    if (poll(&p, 1, (int)ms) <= 0)
        return false;
    n = recvmsg(nt->fd, &mh, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
    if (nt->pid != 0 && cred.pid != nt->pid)
        fail_msg("notify message \"%s\" from pid %ld, not the daemon (%ld)", buf, (long)cred.pid,
                 (long)nt->pid);
    if (strcmp(buf, "WATCHDOG=1") == 0)
        nt->watchdogs++;
    return true;
}

static bool has_line(const char *msg, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = msg; p != NULL; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return true;
    }
    return false;
}

/* Reads messages until one holds `line` (a whole line); copies it into out. Only watchdog pings
 * may come before it, unless `others` allows anything. */
static void nt_expect(notif *nt, const char *line, char *out, size_t cap, bool others)
{
    char buf[OS_SD_STATE_MAX + 1];
    for (long waited = 0; waited < WAIT_MS; waited += 100) {
        while (nt_next(nt, buf, sizeof(buf), 100)) {
            if (has_line(buf, line)) {
                if (out != NULL)
                    snprintf(out, cap, "%s", buf);
                return;
            }
            if (!others && strcmp(buf, "WATCHDOG=1") != 0)
                fail_msg("expected %s, got \"%s\"", line, buf);
        }
    }
    fail_msg("no %s within %d ms", line, WAIT_MS);
}

/* Watchdog pings counted over ms (other messages fail the test). */
static int nt_pings(notif *nt, long ms)
{
    char buf[OS_SD_STATE_MAX + 1];
    int before = nt->watchdogs;
    int64_t end = rc_now_ms() + ms;
    while (rc_now_ms() < end)
        if (nt_next(nt, buf, sizeof(buf), (long)(end - rc_now_ms())) &&
            strcmp(buf, "WATCHDOG=1") != 0)
            fail_msg("unexpected notify message \"%s\"", buf);
    return nt->watchdogs - before;
}

/* ------------------------------------------------------------------ units */

#define MAX_WORDS 32

/* The words of the unit's ExecStart= (the last non-empty one, as systemd takes a reset), with
 * the exec prefixes ("-@:+!") of the first stripped. Quoting is not expected in our units. */
static int exec_start(const char *unit, char words[MAX_WORDS][512])
{
    char path[1200], line[4096];
    const char *src = getenv("OPENSEED_SOURCE_DIR");
    FILE *f;
    int n = 0;

    assert_non_null(src);
    snprintf(path, sizeof(path), "%s/contrib/systemd/%s", src, unit);
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *save = NULL, *w;
        if (strncmp(p, "ExecStart=", 10) != 0)
            continue;
        p += 10;
        p[strcspn(p, "\r\n")] = '\0';
        if (*p == '\0') {
            n = 0;
            continue;
        }
        if (strpbrk(p, "\"'\\") != NULL)
            fail_msg("%s: quoting in ExecStart= is not handled by this test", unit);
        n = 0;
        for (w = strtok_r(p, " \t", &save); w != NULL; w = strtok_r(NULL, " \t", &save)) {
            assert_true(n < MAX_WORDS && strlen(w) < 512);
            snprintf(words[n++], 512, "%s", w);
        }
    }
    fclose(f);
    assert_true(n > 0);
    size_t skip = strspn(words[0], "-@:+!");
    memmove(words[0], words[0] + skip, strlen(words[0] + skip) + 1);
    return n;
}

/*
 * Runs the unit's ExecStart for daemon with conf as its --config, as node (name, ports and
 * data_dir set by the caller), with systemd's environment: NOTIFY_SOCKET=nt's socket,
 * WATCHDOG_USEC, WATCHDOG_PID=wd_pid (NULL: unset) and JOURNAL_STREAM=journal (NULL: unset).
 */
static void start_unit(nf_node *node, const char *daemon, const char *conf, notif *nt,
                       const char *wd_pid, const char *journal)
{
    char unit[64], want_bin[64], words[MAX_WORDS][512], why[NF_WHY] = "";
    const char *args[MAX_WORDS + 1];
    int n, argc = 0, configs = 0;

    snprintf(unit, sizeof(unit), "openseed-%s.service", daemon);
    n = exec_start(unit, words);
    snprintf(want_bin, sizeof(want_bin), "/usr/local/bin/openseed-%s", daemon);
    assert_string_equal(words[0], want_bin); /* nf_restart runs BUILD_DIR/openseed-<daemon> */
    for (int i = 1; i < n; i++) {
        if (strcmp(words[i], "--config") == 0 && i + 1 < n) {
            args[argc++] = words[i];
            args[argc++] = conf;
            i++;
            configs++;
        } else {
            /* a flag with a specifier or variable would need expanding: fail so it gets noticed */
            if (strpbrk(words[i], "%$") != NULL)
                fail_msg("%s: ExecStart word %s needs expansion", unit, words[i]);
            args[argc++] = words[i];
        }
    }
    assert_int_equal(configs, 1);
    args[argc] = NULL;
    snprintf(node->daemon, sizeof(node->daemon), "%s", daemon);
    assert_int_equal(nf_set_args(node, args, NULL), 0);

    setenv("NOTIFY_SOCKET", nt->path, 1);
    setenv("WATCHDOG_USEC", WATCHDOG_USEC, 1);
    if (wd_pid != NULL)
        setenv("WATCHDOG_PID", wd_pid, 1);
    else
        unsetenv("WATCHDOG_PID");
    if (journal != NULL)
        setenv("JOURNAL_STREAM", journal, 1);
    else
        unsetenv("JOURNAL_STREAM");
    int rc = nf_restart(&fx, node, why, sizeof(why));
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    unsetenv("JOURNAL_STREAM");
    if (rc != 0)
        fail_msg("%s: %s", unit, why);
    nt->pid = node->p.pid;
}

/* ------------------------------------------------------------------ files, HTTP */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* The log of node from byte `from` on (malloc'd, NUL-terminated). */
static char *log_since(const nf_node *node, long from)
{
    FILE *f = fopen(node->p.log_path, "r");
    char *buf;
    long len;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    if (from > len)
        from = len;
    assert_int_equal(fseek(f, from, SEEK_SET), 0);
    buf = calloc(1, (size_t)(len - from) + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)(len - from), f), (size_t)(len - from));
    fclose(f);
    return buf;
}

static long log_size(const nf_node *node)
{
    struct stat sb;
    return stat(node->p.log_path, &sb) == 0 ? (long)sb.st_size : 0;
}

static long get_status(const char *base, const char *path)
{
    rc_resp r;
    long st;
    if (rc_call(&r, base, "GET", path, NULL) != 0)
        st = -1;
    else
        st = r.status;
    rc_resp_free(&r);
    return st;
}

/* offerings[0].pricing.input of a record object, micro-USDC per million tokens; 0 if absent. */
static uint64_t record_input_price(const json_t *record)
{
    uint64_t v = 0;
    const json_t *p = json_object_get(
        json_object_get(json_array_get(json_object_get(record, "offerings"), 0), "pricing"),
        "input");
    return nf_money(p, &v) ? v : 0;
}

/* The input price the registry lists for our seller; 0 when not listed. */
static uint64_t listed_price(void)
{
    rc_resp r;
    uint64_t v = 0;
    if (rc_call(&r, fx.reg.url, "GET", "/v1/peers?service=echo", NULL) == 0 && r.status == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        v = record_input_price(
            json_object_get(json_array_get(json_object_get(j, "peers"), 0), "record"));
        json_decref(j);
    }
    rc_resp_free(&r);
    return v;
}

static uint64_t info_price(void)
{
    rc_resp r;
    uint64_t v = 0;
    if (rc_call(&r, fx.sel[0].url, "GET", "/v1/info", NULL) == 0 && r.status == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        v = record_input_price(json_object_get(j, "record"));
        json_decref(j);
    }
    rc_resp_free(&r);
    return v;
}

static bool wait_listed_price(uint64_t want)
{
    for (long t = 0; t < WAIT_MS; t += 100) {
        if (listed_price() == want)
            return true;
        rc_sleep_ms(100);
    }
    return false;
}

/* The id of the seller's newest booked request; 0 when there is none. */
static json_int_t newest_request_id(void)
{
    long st;
    json_t *j = nf_admin(&fx, 0, &st, "/admin/v1/requests?limit=1", NULL);
    json_int_t id;
    assert_int_equal(st, 200);
    id = json_integer_value(
        json_object_get(json_array_get(json_object_get(j, "requests"), 0), "id"));
    json_decref(j);
    return id;
}

/* A paid chat completion through the buyer; then the seller's book of it must show the cost of
 * its tokens at input/output prices (micro-USDC per million tokens). Returns that cost. */
static uint64_t paid_request_costs(uint64_t input, uint64_t output)
{
    nf_res r;
    long st;
    uint64_t cost = 0, want = 0;
    os_pricing pr = {.input = input, .output = output, .cached = input};

    json_int_t last = newest_request_id();
    json_t *j = NULL, *row = NULL;

    nf_post(&fx, &r, "/v1/chat/completions",
            "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"price check "
            "with a few more words to make the input count\"}]}");
    if (r.status != 200)
        fail_msg("buyer answered %ld: %s", r.status, r.body != NULL ? r.body : "");
    nf_res_free(&r);
    /* the seller books the request as its job ends, which may be just after the answer */
    for (long t = 0; t < WAIT_MS; t += 50) {
        j = nf_admin(&fx, 0, &st, "/admin/v1/requests?limit=1", NULL);
        assert_int_equal(st, 200);
        row = json_array_get(json_object_get(j, "requests"), 0);
        if (row != NULL && json_integer_value(json_object_get(row, "id")) > last &&
            json_is_integer(json_object_get(row, "finished_at")))
            break;
        json_decref(j);
        j = NULL;
        row = NULL;
        rc_sleep_ms(50);
    }
    assert_non_null(row);
    assert_true(nf_money(json_object_get(row, "cost"), &cost));
    json_int_t in = json_integer_value(json_object_get(row, "input_tokens"));
    json_int_t ca = json_integer_value(json_object_get(row, "cached_tokens"));
    json_int_t out = json_integer_value(json_object_get(row, "output_tokens"));
    assert_true(in > 0 && out > 0 && ca >= 0);
    assert_int_equal(os_cost_actual(&want, &pr, (uint64_t)in, (uint64_t)ca, (uint64_t)out), OS_OK);
    json_decref(j);
    if (cost != want)
        fail_msg("charged %" PRIu64 ", want %" PRIu64 " at input %" PRIu64 " output %" PRIu64, cost,
                 want, input, output);
    return cost;
}

/* ------------------------------------------------------------------ configs */

static char reg_conf[256], sel_conf[256], buy_conf[256], key_path[256];
static uint16_t admin_port2; /* a second admin port, for a change that needs a restart */

static void write_registry_conf(const char *level, uint16_t port)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "# written by test_systemd\n"
             "listen = 127.0.0.1:%u\n"
             "data_dir = %s\n"
             "chain_id = %s\n"
             "log_level = %s\n"
             "heartbeat_interval = 1s\n"
             "rescore_interval = 1s\n"
             "rate_limit = 0\n",
             (unsigned)port, fx.reg.data_dir, fx.chain, level);
    write_file(reg_conf, text);
}

static void write_seller_conf(const char *input_price, const char *level, uint16_t admin_port)
{
    char text[4096];
    nf_node *s = &fx.sel[0];
    snprintf(text, sizeof(text),
             "listen = 127.0.0.1:%u\n"
             "admin_listen = 127.0.0.1:%u\n"
             "data_dir = %s\n"
             "node_key = %s\n"
             "log_level = %s\n"
             "rpc = %s\n"
             "chain_id = %s\n"
             "escrow = %s\n"
             "usdc = %s\n"
             "registry = %s\n"
             "endpoint = %s\n"
             "upstream = builtin:echo\n"
             "echo_tokens_per_s = 20\n"
             "channel_refresh = 1s\n"
             "offering = echo model=echo-1 apis=openai.chat,openai.embeddings,anthropic.messages "
             "input=%s output=1.5\n",
             (unsigned)s->port, (unsigned)admin_port, s->data_dir, key_path, level, fx.d.anvil.url,
             fx.chain, fx.escrow_hex, fx.usdc_hex, fx.reg.url, s->url, input_price);
    write_file(sel_conf, text);
}

/* ------------------------------------------------------------------ setup */

static int setup(void **state)
{
    char why[NF_WHY] = "";
    (void)state;
    if (nf_setup(&fx, "systemd", CHAIN, why, sizeof(why)) != 0) {
        fprintf(stderr, "setup: %s\n", why);
        failed = 1;
        return -1;
    }
    nt_open(&nt_reg, "registry");
    nt_open(&nt_sel, "seller");
    nt_open(&nt_buy, "buyer");
    snprintf(reg_conf, sizeof(reg_conf), "%s/registry.conf", fx.dir);
    snprintf(sel_conf, sizeof(sel_conf), "%s/seller.conf", fx.dir);
    snprintf(buy_conf, sizeof(buy_conf), "%s/buyer.conf", fx.dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nf_teardown(&fx, failed);
    close(nt_reg.fd);
    close(nt_sel.fd);
    close(nt_buy.fd);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_registry_unit_ready_and_watchdog(void **state)
{
    nf_node *r = &fx.reg;
    char msg[OS_SD_STATE_MAX + 1], want[96], journal[64], log_path[256];
    struct stat sb;
    int fd;
    (void)state;
    failed++;

    snprintf(r->name, sizeof(r->name), "registry");
    snprintf(r->data_dir, sizeof(r->data_dir), "%s/reg", fx.dir);
    assert_true((r->port = nf_free_port()) != 0);
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%u", (unsigned)r->port);
    write_registry_conf("info", r->port);

    /* stderr is the log file: JOURNAL_STREAM names it, as systemd names its journal stream */
    snprintf(log_path, sizeof(log_path), "%s/registry.log", fx.dir);
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    close(fd);
    snprintf(journal, sizeof(journal), "%ju:%ju", (uintmax_t)sb.st_dev, (uintmax_t)sb.st_ino);

    start_unit(r, "registry", reg_conf, &nt_reg, NULL, journal);
    nt_expect(&nt_reg, "READY=1", msg, sizeof(msg), false);
    assert_int_equal(get_status(r->url, "/healthz"), 200); /* at once: ready means serving */
    snprintf(want, sizeof(want), "STATUS=serving on 127.0.0.1:%u", (unsigned)r->port);
    assert_true(has_line(msg, want));
    /* 900 ms watchdog: a check and a ping every 300 ms */
    assert_true(nt_pings(&nt_reg, 2000) >= 3);

    char *log = log_since(r, 0);
    assert_non_null(strstr(log, "<6>ts="));
    assert_non_null(strstr(log, "msg=\"watchdog: a health check every 300 ms\""));
    assert_null(strstr(log, "\nts=")); /* every line has its priority */
    free(log);
    failed--;
}

static void test_registry_reload(void **state)
{
    nf_node *r = &fx.reg;
    char msg[OS_SD_STATE_MAX + 1];
    long from;
    char *log;
    (void)state;
    failed++;

    /* a new log level applies */
    from = log_size(r);
    write_registry_conf("debug", r->port);
    assert_int_equal(kill(r->p.pid, SIGHUP), 0);
    nt_expect(&nt_reg, "RELOADING=1", msg, sizeof(msg), false);
    assert_non_null(strstr(msg, "MONOTONIC_USEC="));
    nt_expect(&nt_reg, "READY=1", msg, sizeof(msg), false);
    assert_int_equal(get_status(r->url, "/healthz"), 200);
    log = log_since(r, from);
    assert_non_null(strstr(log, "<6>ts="));
    assert_non_null(strstr(log, "msg=\"configuration reloaded\""));
    assert_non_null(strstr(log, "log_level=debug"));
    free(log);

    /* a new listen address needs a restart: refused whole, the level is not applied either */
    from = log_size(r);
    write_registry_conf("error", nf_free_port());
    assert_int_equal(kill(r->p.pid, SIGHUP), 0);
    nt_expect(&nt_reg, "RELOADING=1", NULL, 0, false);
    nt_expect(&nt_reg, "READY=1", msg, sizeof(msg), false);
    assert_non_null(strstr(msg, "reload was refused"));
    assert_int_equal(get_status(r->url, "/healthz"), 200); /* still on the old port */
    log = log_since(r, from);
    assert_non_null(strstr(log, "<3>"));
    assert_non_null(strstr(log, "reload refused: listen changed, which needs a restart"));
    assert_null(strstr(log, "configuration reloaded"));
    free(log);

    /* an unparsable file: refused, the reasons logged */
    from = log_size(r);
    write_file(reg_conf, "listen = 127.0.0.1:1\nno_such_key = 1\n");
    assert_int_equal(kill(r->p.pid, SIGHUP), 0);
    nt_expect(&nt_reg, "RELOADING=1", NULL, 0, false);
    nt_expect(&nt_reg, "READY=1", NULL, 0, false);
    log = log_since(r, from);
    assert_non_null(strstr(log, "reload refused: the configuration is invalid"));
    assert_non_null(strstr(log, "no_such_key"));
    free(log);
    assert_int_equal(get_status(r->url, "/healthz"), 200);
    write_registry_conf("debug", r->port);
    /* the watchdog kept going through all of it */
    assert_true(nt_pings(&nt_reg, 1000) >= 2);
    failed--;
}

static void test_seller_and_buyer_units(void **state)
{
    nf_node *s = &fx.sel[0], *b = &fx.buyer;
    char msg[OS_SD_STATE_MAX + 1], wallet[256], text[4096], why[NF_WHY] = "", journal[64];
    uint8_t waddr[20];
    struct stat sb;
    (void)state;
    failed++;

    snprintf(s->name, sizeof(s->name), "seller0");
    snprintf(s->data_dir, sizeof(s->data_dir), "%s/seller0", fx.dir);
    assert_int_equal(nf_key_file(&fx, key_path, sizeof(key_path), "s0.key", 2, why, sizeof(why)),
                     0);
    devchain_address(fx.sel_addr[0], 2);
    os_eip55_format(fx.sel_hex[0], fx.sel_addr[0]);
    assert_true((s->port = nf_free_port()) != 0);
    assert_true((s->admin_port = nf_free_port()) != 0 && s->admin_port != s->port);
    assert_true((admin_port2 = nf_free_port()) != 0);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u", (unsigned)s->port);
    snprintf(s->admin_url, sizeof(s->admin_url), "http://127.0.0.1:%u", (unsigned)s->admin_port);
    fx.n_sellers = 1;
    write_seller_conf("0.5", "info", s->admin_port);

    /* JOURNAL_STREAM naming another file (the registry's log): stderr is not the journal */
    assert_int_equal(stat(fx.reg.p.log_path, &sb), 0);
    snprintf(journal, sizeof(journal), "%ju:%ju", (uintmax_t)sb.st_dev, (uintmax_t)sb.st_ino);
    start_unit(s, "seller", sel_conf, &nt_sel, NULL, journal);
    nt_expect(&nt_sel, "READY=1", msg, sizeof(msg), false);
    assert_int_equal(get_status(s->url, "/healthz"), 200);
    assert_int_equal(get_status(s->url, "/v1/info"), 200); /* the record is signed by then */
    assert_true(nt_pings(&nt_sel, 1500) >= 2);
    char *log = log_since(s, 0);
    assert_null(strstr(log, "<6>"));
    free(log);
    assert_true(wait_listed_price(500000));

    /* the buyer's user unit; WATCHDOG_PID names another process: no pings for us */
    snprintf(b->name, sizeof(b->name), "buyer");
    snprintf(b->data_dir, sizeof(b->data_dir), "%s/buyer", fx.dir);
    devchain_address(waddr, 1);
    assert_int_equal(devchain_mint(&fx.d, waddr, 50 * 1000000ull, why, sizeof(why)), 0);
    assert_int_equal(nf_key_file(&fx, wallet, sizeof(wallet), "wallet.key", 1, why, sizeof(why)),
                     0);
    assert_true((b->port = nf_free_port()) != 0);
    snprintf(b->url, sizeof(b->url), "http://127.0.0.1:%u", (unsigned)b->port);
    snprintf(text, sizeof(text),
             "listen = 127.0.0.1:%u\ndata_dir = %s\nregistry = %s\nrpc = %s\nchain_id = %s\n"
             "escrow = %s\nusdc = %s\nwallet_key = %s\ndeposit = 2\npeers_ttl = 1s\n",
             (unsigned)b->port, b->data_dir, fx.reg.url, fx.d.anvil.url, fx.chain, fx.escrow_hex,
             fx.usdc_hex, wallet);
    write_file(buy_conf, text);
    start_unit(b, "buyer", buy_conf, &nt_buy, "1", NULL);
    nt_expect(&nt_buy, "READY=1", msg, sizeof(msg), false);
    assert_int_equal(get_status(b->url, "/healthz"), 200);
    assert_int_equal(nt_pings(&nt_buy, 1500), 0);
    failed--;
}

static void test_seller_reload_price(void **state)
{
    nf_node *s = &fx.sel[0];
    char msg[OS_SD_STATE_MAX + 1];
    uint64_t before, after;
    long from;
    (void)state;
    failed++;

    before = paid_request_costs(500000, 1500000);
    from = log_size(s);
    write_seller_conf("0.7", "debug", s->admin_port);
    assert_int_equal(kill(s->p.pid, SIGHUP), 0);
    nt_expect(&nt_sel, "RELOADING=1", NULL, 0, false);
    nt_expect(&nt_sel, "READY=1", msg, sizeof(msg), false);
    assert_null(strstr(msg, "refused"));
    char *log = log_since(s, from);
    assert_non_null(strstr(log, "msg=\"offerings reloaded\""));
    assert_non_null(strstr(log, "msg=\"configuration reloaded\""));
    free(log);

    assert_int_equal(info_price(), 700000); /* re-signed at once */
    assert_true(wait_listed_price(700000)); /* announced and listed */
    rc_sleep_ms(1200);                      /* the buyer's 1 s peer cache */
    after = paid_request_costs(700000, 1500000);
    assert_true(after > before);
    failed--;
}

static void test_seller_reload_refused(void **state)
{
    nf_node *s = &fx.sel[0];
    char msg[OS_SD_STATE_MAX + 1];
    long from;
    char *log;
    (void)state;
    failed++;

    /* an offering that does not parse: refused, the running prices stay */
    from = log_size(s);
    write_seller_conf("abc", "info", s->admin_port);
    assert_int_equal(kill(s->p.pid, SIGHUP), 0);
    nt_expect(&nt_sel, "RELOADING=1", NULL, 0, false);
    nt_expect(&nt_sel, "READY=1", msg, sizeof(msg), false);
    assert_non_null(strstr(msg, "reload was refused"));
    log = log_since(s, from);
    assert_non_null(strstr(log, "reload refused: the configuration is invalid"));
    assert_null(strstr(log, "offerings reloaded"));
    free(log);

    /* a new price together with a key that needs a restart: refused whole */
    from = log_size(s);
    write_seller_conf("0.9", "info", admin_port2);
    assert_int_equal(kill(s->p.pid, SIGHUP), 0);
    nt_expect(&nt_sel, "RELOADING=1", NULL, 0, false);
    nt_expect(&nt_sel, "READY=1", msg, sizeof(msg), false);
    assert_non_null(strstr(msg, "reload was refused"));
    log = log_since(s, from);
    assert_non_null(strstr(log, "reload refused: admin_listen changed, which needs a restart"));
    assert_null(strstr(log, "offerings reloaded"));
    free(log);

    rc_sleep_ms(1500); /* give a wrongly accepted record time to reach the registry */
    assert_int_equal(info_price(), 700000);
    assert_int_equal(listed_price(), 700000);
    (void)paid_request_costs(700000, 1500000);
    write_seller_conf("0.7", "info", s->admin_port);
    failed--;
}

/* ---- SIGTERM during a stream ---- */

typedef struct stream_call {
    rc_resp r;
    int rc;
    int64_t done_ms;
    atomic_int done;
} stream_call;

static void *stream_main(void *arg)
{
    stream_call *c = arg;
    char url[128];
    static const char body[] =
        "{\"model\":\"echo\",\"stream\":true,\"max_tokens\":400,\"messages\":[{\"role\":\"user\","
        "\"content\":\"one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty twentyone twentytwo "
        "twentythree twentyfour twentyfive twentysix twentyseven twentyeight twentynine thirty "
        "thirtyone thirtytwo thirtythree thirtyfour thirtyfive thirtysix thirtyseven "
        "thirtyeight thirtynine forty last\"}]}";
    snprintf(url, sizeof(url), "%s/v1/chat/completions", fx.buyer.url);
    c->rc = rc_http(&c->r, "POST", url, body, strlen(body));
    c->done_ms = rc_now_ms();
    atomic_store(&c->done, 1);
    return NULL;
}

/* The seller's requests in flight to its upstream (/healthz upstream.busy); -1 if unknown. */
static int seller_busy(void)
{
    rc_resp r;
    int busy = -1;
    if (rc_call(&r, fx.sel[0].url, "GET", "/healthz", NULL) == 0 && r.status == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        busy = (int)json_integer_value(json_object_get(json_object_get(j, "upstream"), "busy"));
        json_decref(j);
    }
    rc_resp_free(&r);
    return busy;
}

static void test_sigterm_during_stream(void **state)
{
    nf_node *s = &fx.sel[0];
    char msg[OS_SD_STATE_MAX + 1];
    stream_call c;
    pthread_t th;
    int64_t t_term = 0;
    int st = 0;
    (void)state;
    failed++;

    memset(&c, 0, sizeof(c));
    assert_int_equal(pthread_create(&th, NULL, stream_main, &c), 0);
    for (long t = 0; t < WAIT_MS && seller_busy() < 1 && !atomic_load(&c.done); t += 20)
        rc_sleep_ms(20);
    if (atomic_load(&c.done))
        fail_msg("the stream ended before it was seen in flight: %ld %s", c.r.status,
                 c.r.body != NULL ? c.r.body : "");
    assert_true(seller_busy() >= 1);
    rc_sleep_ms(300); /* a few tokens out: the stream is under way */

    /* a new price while it runs: the stream keeps the price it was admitted at */
    write_seller_conf("0.8", "info", s->admin_port);
    assert_int_equal(kill(s->p.pid, SIGHUP), 0);
    nt_expect(&nt_sel, "RELOADING=1", NULL, 0, false);
    nt_expect(&nt_sel, "READY=1", msg, sizeof(msg), false);
    assert_null(strstr(msg, "refused"));
    assert_int_equal(info_price(), 800000);

    t_term = rc_now_ms();
    assert_int_equal(kill(s->p.pid, SIGTERM), 0);
    nt_expect(&nt_sel, "STOPPING=1", NULL, 0, false);
    assert_int_equal(pthread_join(th, NULL), 0);

    assert_int_equal(c.rc, 0);
    assert_int_equal(c.r.status, 200);
    assert_non_null(strstr(c.r.body, " last"));
    assert_non_null(strstr(c.r.body, "data: [DONE]"));
    /* at 20 tokens/s the stream had well over a second to go: it finished after the SIGTERM */
    assert_true(c.done_ms - t_term >= 500);
    rc_resp_free(&c.r);

    /* and the seller then exits cleanly, within its 10 s drain */
    for (long t = 0; t < 12000; t += 20) {
        if (waitpid(s->p.pid, &st, WNOHANG) == s->p.pid) {
            s->p.pid = 0;
            break;
        }
        rc_sleep_ms(20);
    }
    assert_int_equal(s->p.pid, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(rc_now_ms() - t_term < 12000);
    char *log = log_since(s, 0);
    assert_non_null(strstr(log, "stopping on SIGTERM"));
    free(log);

    /* the seller's own book of the stream, read from seller.db once it is closed */
    char db_path[256];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    uint64_t want = 0;
    os_pricing old_price = {.input = 700000, .output = 1500000, .cached = 700000};
    snprintf(db_path, sizeof(db_path), "%s/seller.db", s->data_dir);
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT cost, input_tokens, cached_tokens, output_tokens, "
                                        "outcome FROM requests ORDER BY id DESC LIMIT 1",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_true(sqlite3_column_int64(q, 3) > 40); /* every word streamed and counted */
    assert_int_equal(os_cost_actual(&want, &old_price, (uint64_t)sqlite3_column_int64(q, 1),
                                    (uint64_t)sqlite3_column_int64(q, 2),
                                    (uint64_t)sqlite3_column_int64(q, 3)),
                     OS_OK);
    assert_int_equal((uint64_t)sqlite3_column_int64(q, 0), want);
    sqlite3_finalize(q);
    sqlite3_close(db);
    failed--;
}

static void test_sigterm_buyer_and_registry(void **state)
{
    (void)state;
    failed++;
    assert_int_equal(kill(fx.buyer.p.pid, SIGTERM), 0);
    nt_expect(&nt_buy, "STOPPING=1", NULL, 0, false);
    assert_int_equal(nf_kill(&fx.buyer, SIGTERM), 0);
    assert_int_equal(kill(fx.reg.p.pid, SIGTERM), 0);
    nt_expect(&nt_reg, "STOPPING=1", NULL, 0, false);
    assert_int_equal(nf_kill(&fx.reg, SIGTERM), 0);
    failed--;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_unit_ready_and_watchdog),
        cmocka_unit_test(test_registry_reload),
        cmocka_unit_test(test_seller_and_buyer_units),
        cmocka_unit_test(test_seller_reload_price),
        cmocka_unit_test(test_seller_reload_refused),
        cmocka_unit_test(test_sigterm_during_stream),
        cmocka_unit_test(test_sigterm_buyer_and_registry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
