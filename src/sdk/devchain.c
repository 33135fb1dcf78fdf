/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Devchain (include/openseed/devchain.h): a local anvil with the committed contracts, for
 * examples, tests and simulations. anvil runs with --port 0 (the kernel picks a free port, so
 * parallel runs cannot collide) in its own process group with its output in a temp file, whose
 * "Listening on" line gives the port; it gets SIGKILL if its parent dies (PR_SET_PDEATHSIG) and
 * its group is killed on free. Then TestUSDC and OpenSeedChannels(token, closeGrace) are deployed
 * from contracts/out by anvil's account 0, which also mints for os_devchain_fund. Every step says
 * what failed on the logger; the chain client (os_chain) and the deployer's signer are both safe
 * for many threads, so callers may fund accounts from theirs.
 */
#include "openseed/devchain.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "openseed/abi.h"
#include "openseed/buf.h"
#include "openseed/ct.h"
#include "openseed/escrow.h"
#include "openseed/hex.h"
#include "openseed/secp.h"
#include "openseed/tx.h"

#define ANVIL_REL "/tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
#define CONTRACTS_REL "/contracts/out"
#define DEFAULT_CHAIN_ID 31337
#define DEFAULT_CLOSE_GRACE_S 900
#define START_MS 30000L /* a healthy anvil is up well under a second; slow CI machines */
#define TX_TIMEOUT_MS 30000L
#define RECEIPT_POLL_MS 10L /* anvil mines on send: poll fast rather than the signer's 200 ms */
#define STOP_GRACE_MS 3000L
#define ARTIFACT_MAX (16L * 1024 * 1024)
#define PORT_SCAN_MAX 65536 /* bytes of anvil's output searched for its port */
#define LISTENING "Listening on 127.0.0.1:"
#define PATH_MAX_LEN 4096
#define TRIED_MAX 2048

/* anvil's account 0 (mnemonic "test test ... junk"): public knowledge, only ever a dev key. */
static const char deployer_key_hex[] =
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

struct os_devchain {
    const os_logger *log;
    pid_t pid;         /* anvil's process and process group; 0 when not running */
    char log_path[64]; /* anvil's output */
    bool keep_log;     /* a failed start keeps it for reading */
    char rpc[64];
    uint64_t chain_id;
    os_chain *ch;
    os_chain_signer *deployer;
    uint8_t usdc[20], escrow[20];
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- finding anvil and the artifacts ---- */

static bool is_executable(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

static bool has_artifacts(const char *dir)
{
    static const char *const names[] = {"TestUSDC.json", "OpenSeedChannels.json"};
    char p[PATH_MAX_LEN];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int n = snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        if (n < 0 || (size_t)n >= sizeof(p) || access(p, R_OK) != 0)
            return false;
    }
    return true;
}

/*
 * The place for what: the configured path if there is one, else $env if set (either is what the
 * caller meant, so it is the only place tried), else rel under $OPENSEED_SOURCE_DIR, then rel
 * under the source tree this library was built from. When nothing works every path tried is
 * logged and the answer is OS_ERR_NOTFOUND.
 */
static os_err find_path(char *out, size_t cap, const char *what, const char *configured,
                        const char *env, const char *rel, bool (*usable)(const char *),
                        const os_logger *log)
{
    const char *src = getenv("OPENSEED_SOURCE_DIR");
#ifdef OPENSEED_DEFAULT_SOURCE_DIR
    const char *dflt = OPENSEED_DEFAULT_SOURCE_DIR;
#else
    const char *dflt = NULL;
#endif
    const struct {
        const char *base, *suffix, *origin;
    } places[] = {
        {configured, "", "configuration"},
        {getenv(env), "", env},
        {src, rel, "OPENSEED_SOURCE_DIR"},
        {dflt, rel, "build source tree"},
    };
    char tried[TRIED_MAX] = "";
    size_t used = 0;

    for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
        int n;
        if (places[i].base == NULL || places[i].base[0] == '\0')
            continue;
        n = snprintf(out, cap, "%s%s", places[i].base, places[i].suffix);
        if (n > 0 && (size_t)n < cap && usable(out))
            return OS_OK;
        n = snprintf(tried + used, sizeof(tried) - used, "%s%s (%s)", used > 0 ? "; " : "", out,
                     places[i].origin);
        if (n > 0)
            used = (size_t)n < sizeof(tried) - used ? used + (size_t)n : sizeof(tried) - 1;
        if (i < 2)
            break;
    }
    out[0] = '\0';
    os_log_error(log, "devchain: %s not found; tried: %s%s", what, used > 0 ? tried : "nothing",
                 used > 0 ? "" : " (set it, or OPENSEED_SOURCE_DIR)");
    return OS_ERR_NOTFOUND;
}

/* Appends the creation bytecode of <dir>/<name>.json ({"bytecode":"0x…"}) to code. */
static os_err load_artifact(os_buf *code, const char *dir, const char *name, const os_logger *log)
{
    char path[PATH_MAX_LEN];
    struct stat sb;
    json_error_t jerr;
    json_t *art;
    const char *hex;
    size_t len, got = 0;
    os_err rc = OS_ERR_INVALID;

    if (snprintf(path, sizeof(path), "%s/%s.json", dir, name) >= (int)sizeof(path))
        return OS_ERR_NOTFOUND;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > ARTIFACT_MAX) {
        os_log_error(log, "devchain: %s is missing or larger than %ld bytes", path, ARTIFACT_MAX);
        return OS_ERR_NOTFOUND;
    }
    if ((art = json_load_file(path, 0, &jerr)) == NULL) {
        os_log_error(log, "devchain: cannot read %s: %s", path, jerr.text);
        return OS_ERR_INVALID;
    }
    hex = json_string_value(json_object_get(art, "bytecode"));
    if (hex == NULL || strncmp(hex, "0x", 2) != 0 || (len = strlen(hex + 2)) < 8 || len % 2 != 0)
        os_log_error(log, "devchain: %s has no bytecode", path);
    else if (os_buf_reserve(code, len / 2) != OS_OK ||
             os_hex_decode(code->data + code->len, len / 2, &got, hex + 2, len) != OS_OK ||
             got != len / 2)
        os_log_error(log, "devchain: %s: bytecode is not hex or too large", path);
    else {
        code->len += got;
        rc = OS_OK;
    }
    json_decref(art);
    return rc;
}

/* ---- anvil ---- */

static void stop_anvil(os_devchain *d)
{
    long long until;
    int status;

    if (d->pid > 0) {
        kill(-d->pid, SIGTERM);
        until = now_ms() + STOP_GRACE_MS;
        while (waitpid(d->pid, &status, WNOHANG) == 0) {
            if (now_ms() > until) {
                kill(-d->pid, SIGKILL);
                waitpid(d->pid, &status, 0);
                break;
            }
            sleep_ms(20);
        }
        d->pid = 0;
    }
    if (d->log_path[0] != '\0') {
        if (d->keep_log || getenv("OPENSEED_KEEP_LOGS") != NULL)
            os_log_info(d->log, "devchain: anvil's output kept in %s", d->log_path);
        else
            unlink(d->log_path);
        d->log_path[0] = '\0';
    }
}

/* Forks and execs anvil with its output in d->log_path. */
static os_err spawn_anvil(os_devchain *d, const char *bin)
{
    char chain[24];
    int out_fd, null_fd;
    pid_t parent = getpid();

    snprintf(chain, sizeof(chain), "%" PRIu64, d->chain_id);
    snprintf(d->log_path, sizeof(d->log_path), "/tmp/openseed-anvil-XXXXXX");
    if ((out_fd = mkstemp(d->log_path)) < 0) {
        os_log_error(d->log, "devchain: cannot make anvil's log file: %s", strerror(errno));
        d->log_path[0] = '\0';
        return OS_ERR_IO;
    }
    /* neither descriptor may leak into programs this process starts later */
    (void)fcntl(out_fd, F_SETFD, FD_CLOEXEC);
    if ((null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        os_log_error(d->log, "devchain: cannot open /dev/null: %s", strerror(errno));
        close(out_fd);
        return OS_ERR_IO;
    }
    d->pid = fork();
    if (d->pid < 0) {
        os_log_error(d->log, "devchain: fork: %s", strerror(errno));
        d->pid = 0;
        close(out_fd);
        close(null_fd);
        return OS_ERR_IO;
    }
    if (d->pid == 0) {
        /* the child of a threaded process: async-signal-safe calls only until exec */
        sigset_t none;
        setpgid(0, 0);
        /* PR_SET_PDEATHSIG fires when the forking *thread* exits: start the chain from a thread
         * that lives as long as it is needed (main, in the examples and tests) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1); /* the parent died before prctl took effect */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        dup2(null_fd, STDIN_FILENO);
        dup2(out_fd, STDOUT_FILENO);
        dup2(out_fd, STDERR_FILENO);
        execl(bin, "anvil", "--host", "127.0.0.1", "--port", "0", "--chain-id", chain,
              (char *)NULL);
        _exit(127);
    }
    setpgid(d->pid, d->pid); /* here too, so kill(-pid) works whichever runs first */
    close(out_fd);
    close(null_fd);
    return OS_OK;
}

/* The port from anvil's "Listening on 127.0.0.1:PORT" line; 0 while it is not there. */
static unsigned read_port(const os_devchain *d)
{
    char *buf, *p, *end;
    unsigned long port = 0;
    ssize_t n;
    int fd = open(d->log_path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    if ((buf = malloc(PORT_SCAN_MAX + 1)) != NULL) {
        n = read(fd, buf, PORT_SCAN_MAX);
        if (n > 0) {
            buf[n] = '\0';
            if ((p = strstr(buf, LISTENING)) != NULL) {
                p += strlen(LISTENING);
                errno = 0;
                port = strtoul(p, &end, 10);
                if (end == p || errno != 0 || port > 65535)
                    port = 0;
            }
        }
        free(buf);
    }
    close(fd);
    return (unsigned)port;
}

/* Waits for the port, then for eth_chainId to answer on it (with the right id). */
static os_err wait_anvil(os_devchain *d)
{
    long long deadline = now_ms() + START_MS;
    os_chain_config cfg;
    os_chain_error err;
    unsigned port;
    uint64_t id = 0;
    int status;
    os_err rc;

    while ((port = read_port(d)) == 0) {
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            d->keep_log = true;
            os_log_error(d->log, "devchain: anvil exited during start-up (its output: %s)",
                         d->log_path);
            return OS_ERR_IO;
        }
        if (now_ms() > deadline) {
            d->keep_log = true;
            os_log_error(d->log, "devchain: anvil printed no port within %ld ms (its output: %s)",
                         START_MS, d->log_path);
            return OS_ERR_IO;
        }
        sleep_ms(20);
    }
    snprintf(d->rpc, sizeof(d->rpc), "http://127.0.0.1:%u", port);
    os_chain_config_default(&cfg, d->rpc);
    cfg.chain_id = d->chain_id;
    os_escrow_chain_config(&cfg); /* reverts decode to the escrow's and TestUSDC's errors */
    if ((rc = os_chain_new(&d->ch, &cfg)) != OS_OK) {
        os_log_error(d->log, "devchain: cannot make a chain client: %s", os_strerror(rc));
        return rc;
    }
    while ((rc = os_chain_chain_id(d->ch, &id, &err)) != OS_OK) {
        if (now_ms() > deadline) {
            d->keep_log = true;
            os_log_error(d->log, "devchain: anvil on %s does not answer eth_chainId: %s", d->rpc,
                         err.message);
            return OS_ERR_NETWORK;
        }
        sleep_ms(50);
    }
    if (id != d->chain_id) {
        os_log_error(d->log, "devchain: anvil says chain %" PRIu64 ", not %" PRIu64, id,
                     d->chain_id);
        return OS_ERR_NETWORK;
    }
    return OS_OK;
}

/* ---- deployment ---- */

static os_err deploy(os_devchain *d, uint8_t addr[20], const char *name, const os_buf *code,
                     const os_buf *args)
{
    os_chain_error err;
    os_err rc;

    os_chain_err_reset(&err);
    rc = os_chain_deploy(d->deployer, addr, NULL, &err, code->data, code->len,
                         args != NULL ? args->data : NULL, args != NULL ? args->len : 0, 0,
                         TX_TIMEOUT_MS);
    if (rc != OS_OK)
        os_log_error(d->log, "devchain: deploying %s failed: %s", name,
                     err.message[0] != '\0' ? err.message : os_strerror(rc));
    return rc;
}

static os_err deploy_all(os_devchain *d, const char *contracts, uint64_t close_grace)
{
    os_buf usdc_code, escrow_code, args;
    os_abi_value v[2];
    os_chain_error err;
    uint8_t priv[32];
    size_t n = 0;
    os_err rc;

    os_buf_init(&usdc_code, OS_TX_MAX_DATA);
    os_buf_init(&escrow_code, OS_TX_MAX_DATA);
    os_buf_init(&args, 256);
    if ((rc = load_artifact(&usdc_code, contracts, "TestUSDC", d->log)) != OS_OK ||
        (rc = load_artifact(&escrow_code, contracts, "OpenSeedChannels", d->log)) != OS_OK)
        goto out;
    if ((rc = os_hex_decode(priv, sizeof(priv), &n, deployer_key_hex,
                            sizeof(deployer_key_hex) - 1)) != OS_OK ||
        n != sizeof(priv)) {
        rc = OS_ERR_INTERNAL;
        goto out;
    }
    os_chain_err_reset(&err);
    rc = os_chain_signer_new(&d->deployer, d->ch, &err, priv);
    os_wipe(priv, sizeof(priv));
    if (rc != OS_OK) {
        os_log_error(d->log, "devchain: no deployer: %s", err.message);
        goto out;
    }
    if ((rc = deploy(d, d->usdc, "TestUSDC", &usdc_code, NULL)) != OS_OK)
        goto out;
    v[0] = os_abi_address(d->usdc);
    v[1] = os_abi_uint64(close_grace);
    if ((rc = os_abi_encode(&args, "(address,uint64)", v, 2)) != OS_OK)
        goto out;
    rc = deploy(d, d->escrow, "OpenSeedChannels", &escrow_code, &args);
out:
    os_buf_free(&usdc_code);
    os_buf_free(&escrow_code);
    os_buf_free(&args);
    return rc;
}

os_err os_devchain_start(os_devchain **out, const os_devchain_config *c)
{
    os_devchain_config dflt;
    char anvil[PATH_MAX_LEN], contracts[PATH_MAX_LEN];
    char escrow[OS_ADDRESS_STR_LEN], usdc[OS_ADDRESS_STR_LEN];
    uint64_t close_grace;
    os_devchain *d;
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (c == NULL) {
        memset(&dflt, 0, sizeof(dflt));
        c = &dflt;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return OS_ERR_NOMEM;
    d->log = c->log;
    d->chain_id = c->chain_id != 0 ? c->chain_id : DEFAULT_CHAIN_ID;
    close_grace = c->close_grace_s != 0 ? c->close_grace_s : DEFAULT_CLOSE_GRACE_S;
    if ((rc = find_path(anvil, sizeof(anvil), "anvil", c->anvil, "OPENSEED_ANVIL", ANVIL_REL,
                        is_executable, d->log)) != OS_OK ||
        (rc = find_path(contracts, sizeof(contracts), "the contract artifacts", c->contracts,
                        "OPENSEED_CONTRACTS", CONTRACTS_REL, has_artifacts, d->log)) != OS_OK ||
        (rc = spawn_anvil(d, anvil)) != OS_OK || (rc = wait_anvil(d)) != OS_OK ||
        (rc = deploy_all(d, contracts, close_grace)) != OS_OK) {
        os_devchain_free(d);
        return rc;
    }
    os_eip55_format(escrow, d->escrow);
    os_eip55_format(usdc, d->usdc);
    {
        os_log_event ev;
        if (os_log_begin(&ev, d->log, OS_LOG_INFO, "devchain up")) {
            os_log_kv(&ev, "rpc", "%s", d->rpc);
            os_log_kv(&ev, "chain_id", "%" PRIu64, d->chain_id);
            os_log_kv(&ev, "escrow", "%s", escrow);
            os_log_kv(&ev, "usdc", "%s", usdc);
            os_log_end(&ev);
        }
    }
    *out = d;
    return OS_OK;
}

void os_devchain_free(os_devchain *d)
{
    if (d == NULL)
        return;
    os_chain_signer_free(d->deployer);
    os_chain_free(d->ch);
    stop_anvil(d);
    free(d);
}

const char *os_devchain_rpc(const os_devchain *d)
{
    return d->rpc;
}

uint64_t os_devchain_chain_id(const os_devchain *d)
{
    return d->chain_id;
}

void os_devchain_escrow(const os_devchain *d, uint8_t out[20])
{
    memcpy(out, d->escrow, 20);
}

void os_devchain_usdc(const os_devchain *d, uint8_t out[20])
{
    memcpy(out, d->usdc, 20);
}

os_chain *os_devchain_chain(os_devchain *d)
{
    return d->ch;
}

/* ---- accounts ---- */

static os_err set_balance(os_devchain *d, const uint8_t addr[20], uint64_t wei)
{
    char a[OS_HEX_LEN(20)], q[OS_CHAIN_QUANTITY_LEN];
    os_chain_error err;
    json_t *params, *res = NULL;
    os_err rc;

    if (os_hex_encode(a, sizeof(a), addr, 20, 1) != OS_OK)
        return OS_ERR_INTERNAL;
    os_chain_quantity_format(q, wei);
    if ((params = json_pack("[ss]", a, q)) == NULL)
        return OS_ERR_NOMEM;
    os_chain_err_reset(&err);
    rc = os_chain_rpc(d->ch, &res, &err, "anvil_setBalance", params);
    json_decref(res);
    if (rc != OS_OK)
        os_log_error(d->log, "devchain: anvil_setBalance: %s", err.message);
    return rc;
}

/* TestUSDC.mint(to, amount) from the deployer, waiting for its receipt. */
static os_err mint(os_devchain *d, const uint8_t to[20], uint64_t amount)
{
    os_chain_receipt *r = NULL;
    os_chain_error err;
    uint8_t hash[32];
    os_buf data;
    os_err rc;

    os_chain_err_reset(&err);
    os_buf_init(&data, 256);
    rc = os_erc20_encode_mint(&data, to, amount);
    if (rc == OS_OK)
        rc = os_chain_send_tx(d->deployer, hash, &err, d->usdc, NULL, data.data, data.len, 0);
    if (rc == OS_OK)
        rc = os_chain_wait_receipt(d->ch, &r, &err, hash, 1, TX_TIMEOUT_MS, RECEIPT_POLL_MS);
    if (rc == OS_OK && !r->status) {
        rc = OS_ERR_INVALID;
        snprintf(err.message, sizeof(err.message), "the mint reverted on chain");
    }
    if (rc != OS_OK)
        os_log_error(d->log, "devchain: mint: %s",
                     err.message[0] != '\0' ? err.message : os_strerror(rc));
    os_chain_receipt_free(r);
    os_buf_free(&data);
    return rc;
}

os_err os_devchain_fund(os_devchain *d, const uint8_t addr[20], uint64_t eth_wei, uint64_t usdc)
{
    os_err rc;

    if (d == NULL || addr == NULL)
        return OS_ERR_INVALID;
    if (eth_wei > 0 && (rc = set_balance(d, addr, eth_wei)) != OS_OK)
        return rc;
    if (usdc > 0 && (rc = mint(d, addr, usdc)) != OS_OK)
        return rc;
    return OS_OK;
}

os_err os_devchain_account(os_devchain *d, uint8_t priv[32], uint8_t addr[20], uint64_t eth_wei,
                           uint64_t usdc)
{
    os_err rc;

    if (d == NULL || priv == NULL || addr == NULL)
        return OS_ERR_INVALID;
    if ((rc = os_secp_keygen(priv)) != OS_OK || (rc = os_secp_address(addr, priv)) != OS_OK ||
        (rc = os_devchain_fund(d, addr, eth_wei, usdc)) != OS_OK) {
        os_wipe(priv, 32);
        memset(addr, 0, 20);
        return rc;
    }
    return OS_OK;
}

os_err os_devchain_usdc_balance(os_devchain *d, uint64_t *out, const uint8_t addr[20])
{
    os_chain_error err;
    os_err rc;

    if (d == NULL || out == NULL || addr == NULL)
        return OS_ERR_INVALID;
    os_chain_err_reset(&err);
    if ((rc = os_erc20_balance(d->ch, out, &err, d->usdc, addr)) != OS_OK)
        os_log_error(d->log, "devchain: balanceOf: %s", err.message);
    return rc;
}
