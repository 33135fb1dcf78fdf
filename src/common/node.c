/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The start-up every daemon's main goes through, written once: configuration in, the standard
 * answers out, then a logger, libcommon and one "configuration loaded" line before the daemon's own
 * run. Keeping it here means the three daemons cannot drift apart in exit codes, in what
 * --check-config prints or in what they log at start. The main loop after start-up lives here too,
 * for the same reason: readiness, the watchdog, SIGHUP's reload (a second configuration loaded
 * from the same command line and compared key by key through the config table, so no daemon can
 * forget to refuse a change it cannot apply) and the stop are the same for all three.
 */
#include "openseed/node.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openseed/http_client.h"
#include "openseed/init.h"
#include "openseed/sdnotify.h"

/* Longest STATUS= text sent, and the longest probe a watchdog check waits for. */
#define STATUS_MAX 256
#define PROBE_MAX_MS 5000

struct os_node {
    const os_node_program *prog;
    int argc;
    char **argv;
    const void *cfg; /* as loaded at start; live keys are applied by the daemon, not written here */
    os_logger *lg;
};

static void log_loaded(const os_node_program *prog, const os_logger *lg, const void *cfg,
                       const char *config_file)
{
    const os_node_config *node = cfg;
    char listen[OS_CFG_LISTEN_STR_LEN];
    os_log_event ev;

    if (!os_log_begin(&ev, lg, OS_LOG_INFO, "configuration loaded"))
        return;
    os_cfg_listen_format(listen, &node->listen);
    os_log_kv(&ev, "config", "%s", config_file != NULL ? config_file : "(none)");
    os_log_kv(&ev, "listen", "%s", listen);
    os_log_kv(&ev, "data_dir", "%s", node->data_dir);
    os_log_kv(&ev, "chain_id", "%llu", (unsigned long long)node->chain_id);
    if (prog->describe != NULL)
        prog->describe(&ev, cfg);
    os_log_end(&ev);
}

void os_node_validate(const os_node_config *node, os_cfg_report *rep)
{
    if ((node->tls_cert == NULL) != (node->tls_key == NULL))
        os_cfg_error(rep, "%s: HTTPS needs both tls_cert and tls_key",
                     node->tls_cert != NULL ? "tls_key" : "tls_cert");
}

int os_node_main(const os_node_program *prog, void *cfg, int argc, char **argv)
{
    os_cfg_report rep;
    os_err rc;
    int status;

    /* os_cfg_load sets the fields of its table; common keys a daemon's table leaves out (tls_*,
     * ca_file) must read as unset */
    memset(cfg, 0,
           prog->config_size > sizeof(os_node_config) ? prog->config_size : sizeof(os_node_config));
    rc = os_cfg_load(prog->config, cfg, &rep, argc, argv);
    status = os_cfg_dispatch(prog->config, cfg, &rep, rc, stdout, stderr);

    if (status < 0) {
        const os_node_config *node = cfg;
        os_logger lg;

        os_logger_init(&lg, prog->component, node->log_level);
        lg.journal = os_log_stderr_is_journal();
        if (os_init() != OS_OK) {
            os_log_error(&lg, "cannot initialise libcommon");
            status = 1;
        } else {
            os_node n = {.prog = prog, .argc = argc, .argv = argv, .cfg = cfg, .lg = &lg};
            log_loaded(prog, &lg, cfg, rep.config_file);
            status = prog->run(&n, cfg, &lg);
        }
    }
    os_cfg_free(prog->config, cfg);
    os_cfg_report_free(&rep);
    return status;
}

/* ---- signals ---- */

os_err os_node_signals_block(sigset_t *set, const os_logger *lg)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0) {
        os_log_error(lg, "cannot block SIGTERM, SIGINT and SIGHUP");
        return OS_ERR_INTERNAL;
    }
    signal(SIGPIPE, SIG_IGN);
    return OS_OK;
}

static int64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

os_node_signal os_node_signals_next(const sigset_t *set, int64_t timeout_ms, const os_logger *lg)
{
    int64_t deadline = timeout_ms >= 0 ? mono_us() + timeout_ms * 1000 : 0;
    int sig;

    for (;;) {
        if (timeout_ms < 0) {
            sig = sigwaitinfo(set, NULL);
        } else {
            int64_t left = deadline - mono_us();
            struct timespec ts;
            if (left < 0)
                left = 0;
            ts.tv_sec = (time_t)(left / 1000000);
            ts.tv_nsec = (long)(left % 1000000) * 1000;
            sig = sigtimedwait(set, NULL, &ts);
        }
        if (sig >= 0)
            break;
        if (errno == EAGAIN)
            return OS_NODE_SIG_TIMEOUT;
        /* EINTR: a signal outside the set (SIGSTOP/SIGCONT) woke us; wait on */
    }
    if (sig == SIGHUP)
        return OS_NODE_SIG_RELOAD;
    os_log_info(lg, "stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    return OS_NODE_SIG_STOP;
}

void os_node_signals_wait(const sigset_t *set, const os_logger *lg)
{
    while (os_node_signals_next(set, -1, lg) != OS_NODE_SIG_STOP)
        os_log_warn(lg, "SIGHUP ignored: this program cannot reload");
}

/* ---- the service manager ---- */

/* Tells systemd; a failure is worth a warning (systemd would time out or kill us) but no more. */
__attribute__((format(printf, 2, 3))) static void notify(const os_logger *lg, const char *fmt, ...)
{
    char state[OS_SD_STATE_MAX];
    va_list ap;
    os_err rc;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(state, sizeof(state), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(state))
        return;
    if ((rc = os_sd_notify(state)) != OS_OK)
        os_log_warn(lg, "cannot notify the service manager (NOTIFY_SOCKET): %s", os_strerror(rc));
}

/* ---- reload ---- */

#define FIELD(cfg, e, T) ((const T *)(const void *)((const char *)(cfg) + (e)->offset))

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* Whether entry e holds the same value in configurations a and b. */
static bool same_value(const os_cfg_entry *e, const void *a, const void *b)
{
    bool text = e->type == OS_CFG_STRING || e->type == OS_CFG_PATH || e->type == OS_CFG_URL;

    if (text && (e->flags & OS_CFG_REPEATABLE) != 0) {
        const os_cfg_list *la = FIELD(a, e, os_cfg_list), *lb = FIELD(b, e, os_cfg_list);
        if (la->n != lb->n)
            return false;
        for (size_t i = 0; i < la->n; i++)
            if (!str_eq(la->items[i], lb->items[i]))
                return false;
        return true;
    }
    if (text)
        return str_eq(*FIELD(a, e, char *), *FIELD(b, e, char *));
    switch (e->type) {
    case OS_CFG_BOOL:
        return *FIELD(a, e, bool) == *FIELD(b, e, bool);
    case OS_CFG_U64:
    case OS_CFG_USDC:
    case OS_CFG_DURATION:
        return *FIELD(a, e, uint64_t) == *FIELD(b, e, uint64_t);
    case OS_CFG_LOG_LEVEL:
        return *FIELD(a, e, os_log_level) == *FIELD(b, e, os_log_level);
    case OS_CFG_ENUM:
        return *FIELD(a, e, int) == *FIELD(b, e, int);
    case OS_CFG_LISTEN: {
        const os_cfg_listen *la = FIELD(a, e, os_cfg_listen), *lb = FIELD(b, e, os_cfg_listen);
        return la->port == lb->port && strcmp(la->host, lb->host) == 0;
    }
    case OS_CFG_ADDRESS: {
        const os_cfg_address *la = FIELD(a, e, os_cfg_address), *lb = FIELD(b, e, os_cfg_address);
        return la->set == lb->set && memcmp(la->bytes, lb->bytes, sizeof(la->bytes)) == 0;
    }
    default:
        return false; /* a type this comparison does not know: treat as changed, never as live */
    }
}

static bool is_live(const os_cfg_entry *e, const char *const *live_keys)
{
    if (strcmp(e->name, "log_level") == 0)
        return true;
    for (size_t i = 0; live_keys != NULL && live_keys[i] != NULL; i++)
        if (strcmp(e->name, live_keys[i]) == 0)
            return true;
    return false;
}

/* Logs every key that differs between the running and the fresh configuration but cannot change
 * live; true when there is none. Only key names are logged: values may be secrets. */
static bool only_live_changes(const os_node *node, const void *fresh, const char *const *live)
{
    const os_cfg_program *p = node->prog->config;
    bool ok = true;

    for (size_t i = 0; i < p->n_entries; i++) {
        const os_cfg_entry *e = &p->entries[i];
        if (is_live(e, live) || same_value(e, node->cfg, fresh))
            continue;
        os_log_error(node->lg, "reload refused: %s changed, which needs a restart", e->name);
        ok = false;
    }
    return ok;
}

/* Loads the configuration again and applies it, or logs why not. True when applied. */
static bool reload_config(os_node *node, const os_node_service *svc)
{
    const os_node_program *prog = node->prog;
    void *fresh = NULL;
    os_cfg_report rep;
    bool applied = false;
    os_err rc;

    memset(&rep, 0, sizeof(rep));
    if (prog->config_size < sizeof(os_node_config) ||
        (fresh = calloc(1, prog->config_size)) == NULL) {
        os_log_error(node->lg, "reload refused: %s",
                     prog->config_size == 0 ? "this program cannot reload" : "out of memory");
        return false;
    }
    rc = os_cfg_load(prog->config, fresh, &rep, node->argc, node->argv);
    if (rc != OS_OK || rep.action != OS_CFG_RUN) {
        os_log_error(node->lg, "reload refused: the configuration is invalid; keeping the running "
                               "one");
        for (size_t i = 0; i < rep.n_errors; i++)
            os_log_error(node->lg, "%s", rep.errors[i]);
    } else if (only_live_changes(node, fresh, svc->live_keys) &&
               (svc->reload == NULL || svc->reload(svc->core, fresh) == OS_OK)) {
        const os_node_config *nc = fresh;
        os_log_event ev;
        os_logger_set_level(node->lg, nc->log_level);
        if (os_log_begin(&ev, node->lg, OS_LOG_INFO, "configuration reloaded")) {
            os_log_kv(&ev, "config", "%s", rep.config_file != NULL ? rep.config_file : "(none)");
            os_log_kv(&ev, "log_level", "%s", os_log_level_name(nc->log_level));
            os_log_end(&ev);
        }
        applied = true;
    }
    os_cfg_free(prog->config, fresh);
    os_cfg_report_free(&rep);
    free(fresh);
    return applied;
}

/* ---- the watchdog ---- */

/* The URL of the daemon's own /healthz: its listen host, loopback for a wildcard. */
static os_err probe_url(char *out, size_t cap, const os_node_config *nc, uint16_t port)
{
    size_t n;
    os_err rc = os_cfg_listen_url(out, cap, &nc->listen, port);

    if (rc != OS_OK)
        return rc;
    n = strlen(out);
    return snprintf(out + n, cap - n, "/healthz") < (int)(cap - n) ? OS_OK : OS_ERR_TOOBIG;
}

/* One health check: the daemon's HTTP server accepts, a worker thread runs the handler and the
 * answer is 200. A deadlocked core or a dead listener fails it. */
static bool probe(os_http_client *c, const char *url, const os_logger *lg)
{
    os_http_client_req req = {.method = "GET", .url = url};
    os_http_client_res res;
    os_http_client_error err;
    bool ok;
    os_err rc;

    memset(&err, 0, sizeof(err));
    os_http_client_res_init(&res);
    rc = os_http_client_do(c, &res, &err, &req);
    ok = rc == OS_OK && res.status == 200;
    if (!ok)
        os_log_warn(lg, "health check failed, not feeding the watchdog: %s",
                    rc != OS_OK ? err.message : "status is not 200");
    os_http_client_res_free(&res);
    return ok;
}

int os_node_serve(os_node *node, const sigset_t *set, const os_node_service *svc)
{
    char status[STATUS_MAX], url[OS_CFG_LISTEN_STR_LEN + 32];
    os_http_client *client = NULL;
    uint64_t wd_us = 0;
    int64_t tick_us = 0, next_us = 0;
    os_err rc;

    snprintf(status, sizeof(status), "%s", svc->status != NULL ? svc->status : "serving");
    for (char *p = status; *p != '\0'; p++)
        if (*p == '\n') /* one STATUS= line, never a second key */
            *p = ' ';
    rc = os_sd_watchdog_interval_us(&wd_us);
    if (rc == OS_ERR_INVALID)
        os_log_warn(node->lg, "WATCHDOG_USEC or WATCHDOG_PID is malformed: no watchdog pings");
    if (wd_us > 0) {
        /* a third, so that one failed check (or a slow one) still leaves a ping in time */
        tick_us = (int64_t)(wd_us / 3 > 0 ? wd_us / 3 : 1);
        long probe_ms = (long)(tick_us / 1000);
        os_http_client_config hc = {
            .connect_timeout_ms = probe_ms < 1              ? 1
                                  : probe_ms > PROBE_MAX_MS ? PROBE_MAX_MS
                                                            : probe_ms,
            .max_body = 64 * 1024,
        };
        hc.timeout_ms = hc.connect_timeout_ms;
        if (svc->port != 0 && ((rc = probe_url(url, sizeof(url), node->cfg, svc->port)) != OS_OK ||
                               (rc = os_http_client_new(&client, &hc)) != OS_OK)) {
            os_log_error(node->lg, "cannot set up the watchdog's health check: %s",
                         os_strerror(rc));
            return 1;
        }
        if (svc->port != 0)
            os_log_info(node->lg, "watchdog: a health check every %lld ms",
                        (long long)(tick_us / 1000));
        else
            os_log_info(node->lg,
                        "watchdog: a ping every %lld ms (no health check: the daemon "
                        "gave no plain-HTTP port to probe)",
                        (long long)(tick_us / 1000));
        next_us = mono_us() + tick_us;
    }

    notify(node->lg, "READY=1\nSTATUS=%s", status);
    for (;;) {
        int64_t wait_ms = -1;
        os_node_signal sig;

        if (tick_us > 0) {
            int64_t left = next_us - mono_us();
            wait_ms = left > 0 ? (left + 999) / 1000 : 0;
        }
        sig = os_node_signals_next(set, wait_ms, node->lg);
        if (sig == OS_NODE_SIG_STOP)
            break;
        if (sig == OS_NODE_SIG_RELOAD) {
            bool ok;
            notify(node->lg, "RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading",
                   (long long)mono_us());
            os_log_info(node->lg, "reloading the configuration on SIGHUP");
            ok = reload_config(node, svc);
            notify(node->lg, "READY=1\nSTATUS=%s%s", status,
                   ok ? "" : " (the last reload was refused: see the log)");
        }
        if (tick_us > 0 && mono_us() >= next_us) {
            if (client == NULL || probe(client, url, node->lg))
                notify(node->lg, "WATCHDOG=1");
            next_us += tick_us;
            if (next_us <= mono_us()) /* a slow probe: never a burst of catch-up checks */
                next_us = mono_us() + tick_us;
        }
    }
    notify(node->lg, "STOPPING=1\nSTATUS=draining requests in flight");
    os_http_client_free(client);
    return 0;
}
