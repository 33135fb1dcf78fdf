/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helper: a real anvil chain on a free loopback port, for integration tests. anvil is the npm
 * package's binary under $OPENSEED_SOURCE_DIR/tools/node_modules; a test that needs it and cannot
 * find it must fail, not skip, so anvil_start says why and returns -1.
 *
 * anvil runs with --port 0 (the kernel picks a free port, so parallel tests cannot collide) in its
 * own process group, with its output in a temp file from which the "Listening on" line gives the
 * port; it dies with the test process (PR_SET_PDEATHSIG) even if the test crashes. anvil_start
 * returns only once eth_chainId answers. Needs os_init() (curl) first.
 *
 * Header-only: each integration test is a single .c file.
 */
#ifndef OPENSEED_TEST_ANVIL_H
#define OPENSEED_TEST_ANVIL_H

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ANVIL_REL_PATH "/tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
#define ANVIL_START_MS 30000 /* slow CI machines; a healthy start takes well under a second */

typedef struct anvil_node {
    pid_t pid; /* process (and process group) id; 0 when not running */
    int port;
    char url[64];
    char log_path[64];
    uint64_t chain_id;
} anvil_node;

/* anvil's well-known development keys (mnemonic "test test … junk"), accounts 0-9, and their
 * addresses as anvil prints them. Public knowledge: never use them outside a test chain. */
static inline const char *anvil_key(int i)
{
    static const char *const keys[10] = {
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
        "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
        "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
        "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
        "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
        "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    };
    return i >= 0 && i < 10 ? keys[i] : NULL;
}

static inline const char *anvil_address(int i)
{
    static const char *const addrs[10] = {
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x976EA74026E726554dB657fA54763abd0C3a0aa9", "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    };
    return i >= 0 && i < 10 ? addrs[i] : NULL;
}

static inline long long anvil_now_ms_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void anvil_sleep_ms_(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline size_t anvil_discard_(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* 0 when eth_chainId answers with HTTP 200. */
static inline int anvil_ping_(const char *url)
{
    static const char body[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\",\"params\":[]}";
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    long status = 0;
    int rc = -1;

    if (c != NULL && h != NULL) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, anvil_discard_);
        if (curl_easy_perform(c) == CURLE_OK &&
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
            rc = 0;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return rc;
}

/* Reads "Listening on 127.0.0.1:PORT" from anvil's output; 0 when found. */
static inline int anvil_read_port_(anvil_node *a)
{
    char buf[16384], *p;
    ssize_t n;
    int fd = open(a->log_path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    p = strstr(buf, "Listening on 127.0.0.1:");
    if (p == NULL)
        return -1;
    p += strlen("Listening on 127.0.0.1:");
    {
        char *end;
        unsigned long port = strtoul(p, &end, 10);
        if (end == p || port == 0 || port > 65535)
            return -1;
        a->port = (int)port;
    }
    return 0;
}

static inline void anvil_stop(anvil_node *a)
{
    long long until;
    int status;

    if (a == NULL || a->pid <= 0)
        return;
    kill(-a->pid, SIGTERM);
    until = anvil_now_ms_() + 3000;
    while (waitpid(a->pid, &status, WNOHANG) == 0) {
        if (anvil_now_ms_() > until) {
            kill(-a->pid, SIGKILL);
            waitpid(a->pid, &status, 0);
            break;
        }
        anvil_sleep_ms_(20);
    }
    a->pid = 0;
    if (a->log_path[0] != '\0' && getenv("OPENSEED_KEEP_LOGS") == NULL)
        unlink(a->log_path);
    a->log_path[0] = '\0';
}

/* Starts anvil on chain_id; 0 on success, else -1 with the reason in why. */
static inline int anvil_start(anvil_node *a, uint64_t chain_id, char *why, size_t why_len)
{
    const char *src = getenv("OPENSEED_SOURCE_DIR");
    char bin[4096], chain[24];
    long long deadline;
    int fd;

    memset(a, 0, sizeof(*a));
    a->chain_id = chain_id;
    if (src == NULL || src[0] == '\0') {
        snprintf(why, why_len, "OPENSEED_SOURCE_DIR is not set (run the test through ctest)");
        return -1;
    }
    if ((size_t)snprintf(bin, sizeof(bin), "%s%s", src, ANVIL_REL_PATH) >= sizeof(bin) ||
        access(bin, X_OK) != 0) {
        snprintf(why, why_len, "anvil not found or not executable at %.200s (npm ci in tools/)",
                 bin);
        return -1;
    }
    snprintf(a->log_path, sizeof(a->log_path), "/tmp/openseed-anvil-XXXXXX");
    fd = mkstemp(a->log_path);
    if (fd < 0) {
        snprintf(why, why_len, "mkstemp: %s", strerror(errno));
        a->log_path[0] = '\0';
        return -1;
    }
    snprintf(chain, sizeof(chain), "%llu", (unsigned long long)chain_id);
    a->pid = fork();
    if (a->pid < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        close(fd);
        anvil_stop(a);
        return -1;
    }
    if (a->pid == 0) {
        pid_t parent = getppid();
        int devnull = open("/dev/null", O_RDONLY);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the test died before prctl took effect */
            _exit(1);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execl(bin, "anvil", "--host", "127.0.0.1", "--port", "0", "--chain-id", chain,
              (char *)NULL);
        _exit(127);
    }
    setpgid(a->pid, a->pid); /* also here, so kill(-pid) works whichever runs first */
    close(fd);

    deadline = anvil_now_ms_() + ANVIL_START_MS;
    while (anvil_read_port_(a) != 0) {
        int status;
        if (waitpid(a->pid, &status, WNOHANG) == a->pid) {
            a->pid = 0;
            snprintf(why, why_len, "anvil exited during start-up (output in %s)", a->log_path);
            return -1;
        }
        if (anvil_now_ms_() > deadline) {
            snprintf(why, why_len, "anvil printed no port within %d ms", ANVIL_START_MS);
            anvil_stop(a);
            return -1;
        }
        anvil_sleep_ms_(20);
    }
    snprintf(a->url, sizeof(a->url), "http://127.0.0.1:%d", a->port);
    while (anvil_ping_(a->url) != 0) {
        if (anvil_now_ms_() > deadline) {
            snprintf(why, why_len, "anvil on %s does not answer eth_chainId", a->url);
            anvil_stop(a);
            return -1;
        }
        anvil_sleep_ms_(20);
    }
    return 0;
}

#endif
