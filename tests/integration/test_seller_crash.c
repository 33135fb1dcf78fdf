/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller binary under kill -9: four buyers (a channel each, on anvil) make paid calls as fast
 * as they can against the real openseed-seller process; it is killed with SIGKILL mid-load and
 * started again on the same data directory. Every voucher whose request received a response
 * must be on disk: per channel, the latest nonce the restarted seller holds is at least that of
 * every answered request (a voucher is committed before the upstream is called). After the
 * restart each channel is re-checked on chain and served again (after the 402 that tells a buyer
 * what the seller booked); the registry being unreachable throughout stops nothing. Finally
 * SIGTERM stops the seller cleanly (exit 0).
 */
#define _GNU_SOURCE 1 /* nftw, for registry_client.h */
#include "testutil.h"

#include "registry_client.h"
#include "test_buyer.h"

#include <pthread.h>
#include <stdatomic.h>

#include "openseed/init.h"
#include "openseed/keyfile.h"

#define CHAIN 31337
#define WHY 512
#define BUYERS 4

static struct {
    devchain d;
    char dir[128], data[192], log[256], bin[1024];
    rc_proc p;
    int admin_port;
    char base[64];
    uint8_t seller_a[20];
    tbuyer b[BUYERS];
    uint64_t answered_nonce[BUYERS]; /* the highest nonce whose request got its answer */
    uint64_t answered[BUYERS];
    atomic_int stop;
} fx;

/* The admin port from the last "seller listening" line. */
static int admin_port(void)
{
    FILE *f = fopen(fx.log, "r");
    char line[4096];
    int port = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, " admin_port=");
        if (strstr(line, "seller listening") != NULL && p != NULL)
            port = (int)strtol(p + 12, NULL, 10);
    }
    fclose(f);
    return port;
}

/* Prints the end of the seller's log, so a failure shows why. */
static void dump_log(void)
{
    FILE *f = fopen(fx.log, "r");
    char buf[4096];
    size_t got;
    if (f == NULL)
        return;
    if (fseek(f, -(long)sizeof(buf) + 1, SEEK_END) != 0)
        rewind(f);
    got = fread(buf, 1, sizeof(buf) - 1, f);
    buf[got] = '\0';
    fprintf(stderr, "--- seller log (end) ---\n%s\n", buf);
    fclose(f);
}

static int start_seller(char *why, size_t n)
{
    char escrow[OS_ADDRESS_STR_LEN], usdc[OS_ADDRESS_STR_LEN], chain[16];
    os_eip55_format(escrow, fx.d.escrow);
    os_eip55_format(usdc, fx.d.usdc);
    snprintf(chain, sizeof(chain), "%d", CHAIN);
    const char *args[] = {"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                          "--data-dir", fx.data, "--rpc", fx.d.anvil.url, "--chain-id", chain,
                          "--escrow", escrow, "--usdc", usdc, "--upstream", "builtin:echo",
                          "--endpoint", "http://127.0.0.1:1", "--registry",
                          "http://127.0.0.1:9", /* nobody there: the seller serves anyway */
                          "--channel-refresh", "1s", "--echo-latency-ms", "2", "--log-level",
                          "info", NULL};
    if (rc_proc_start(&fx.p, fx.bin, args, fx.log, why, n) != 0) {
        dump_log();
        return -1;
    }
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%d", fx.p.port);
    fx.admin_port = admin_port();
    return fx.admin_port > 0 ? 0 : -1;
}

static int setup(void **state)
{
    char why[WHY] = "";
    uint8_t key[32];
    const char *bd = getenv("OPENSEED_BUILD_DIR");
    (void)state;

    if (os_init() != OS_OK || bd == NULL)
        return -1;
    snprintf(fx.bin, sizeof(fx.bin), "%s/openseed-seller", bd);
    if (devchain_start(&fx.d, CHAIN, 900, why, sizeof(why)) != 0) {
        fprintf(stderr, "devchain: %s\n", why);
        return -1;
    }
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/openseed-crash-XXXXXX");
    if (rc_tmpdir(fx.dir) != 0)
        return -1;
    snprintf(fx.data, sizeof(fx.data), "%s/data", fx.dir);
    snprintf(fx.log, sizeof(fx.log), "%s/seller.log", fx.dir);
    mkdir(fx.data, 0700);
    char path[256];
    snprintf(path, sizeof(path), "%s/node.key", fx.data);
    devchain_key(key, 4);
    if (os_keyfile_write_secp(path, key, why, sizeof(why)) != OS_OK)
        return -1;
    os_wipe(key, sizeof(key));
    devchain_address(fx.seller_a, 4);
    if (start_seller(why, sizeof(why)) != 0) {
        fprintf(stderr, "seller: %s\n", why);
        return -1;
    }
    for (int i = 0; i < BUYERS; i++)
        if (tb_init(&fx.b[i], fx.base, CHAIN, fx.d.escrow, why, sizeof(why)) != 0 ||
            tb_open(&fx.b[i], &fx.d, 5 + i, fx.seller_a, 2000000, why, sizeof(why)) != 0) {
            fprintf(stderr, "buyer %d: %s\n", i, why);
            return -1;
        }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (fx.p.pid > 0)
        rc_proc_stop(&fx.p, SIGKILL, 1000);
    for (int i = 0; i < BUYERS; i++)
        tb_free(&fx.b[i]);
    devchain_stop(&fx.d);
    rc_rmtree(fx.dir);
    return 0;
}

static void *buyer_main(void *arg)
{
    int i = (int)(intptr_t)arg;
    tbuyer *b = &fx.b[i];
    static tb_out outs[BUYERS];
    tb_out *out = &outs[i];
    json_t *body = json_pack("{s:s,s:[{s:s,s:s}],s:i}", "model", "echo-1", "messages", "role",
                             "user", "content", "durable please", "max_tokens", 16);

    while (!atomic_load(&fx.stop)) {
        tb_call(b, out, "openai.chat", "echo", body);
        bool ok = out->rc == OS_OK && out->res.http_status == 200 && out->res.final.status == 200;
        os_infer_result_free(&out->res);
        if (!ok)
            break; /* the seller is gone */
        fx.answered_nonce[i] = b->nonce;
        fx.answered[i]++;
    }
    json_decref(body);
    return NULL;
}

/* The latest nonce the seller holds for each buyer's channel, from the admin API. */
static void stored_nonces(uint64_t out[BUYERS])
{
    char url[128], auth[160], token[128], path[256], why[WHY], hex[67];
    json_t *j = NULL;
    long st = 0;
    os_http_header h = {"Authorization", auth};

    snprintf(path, sizeof(path), "%s/admin.token", fx.data);
    assert_int_equal(os_keyfile_read_text(token, sizeof(token), NULL, path, why, sizeof(why)),
                     OS_OK);
    snprintf(auth, sizeof(auth), "Bearer %s", token);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/v1/channels", fx.admin_port);
    assert_int_equal(os_http_client_json(fx.b[0].http, &st, &j, NULL, "GET", url, NULL, &h, 1),
                     OS_OK);
    assert_int_equal(st, 200);
    for (int i = 0; i < BUYERS; i++) {
        out[i] = 0;
        assert_int_equal(os_hex_encode(hex, sizeof(hex), fx.b[i].channel_id, 32, 1), OS_OK);
        json_t *arr = json_object_get(j, "channels");
        for (size_t k = 0; k < json_array_size(arr); k++) {
            json_t *c = json_array_get(arr, k);
            if (strcmp(json_string_value(json_object_get(c, "channel_id")), hex) == 0)
                out[i] = (uint64_t)json_integer_value(
                    json_object_get(json_object_get(c, "latest_voucher"), "nonce"));
        }
    }
    json_decref(j);
}

static void test_kill9_keeps_every_answered_voucher(void **state)
{
    pthread_t th[BUYERS];
    uint64_t stored[BUYERS], total = 0;
    char why[WHY] = "";
    (void)state;

    for (int i = 0; i < BUYERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, buyer_main, (void *)(intptr_t)i), 0);
    rc_sleep_ms(2500);
    kill(fx.p.pid, SIGKILL); /* under load */
    assert_int_equal(waitpid(fx.p.pid, NULL, 0), fx.p.pid);
    fx.p.pid = 0;
    atomic_store(&fx.stop, 1);
    for (int i = 0; i < BUYERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < BUYERS; i++)
        total += fx.answered[i];
    printf("answered before the kill: %llu requests\n", (unsigned long long)total);
    assert_true(total >= BUYERS); /* there was load */

    if (start_seller(why, sizeof(why)) != 0)
        fail_msg("restart: %s", why);
    stored_nonces(stored);
    for (int i = 0; i < BUYERS; i++) {
        if (stored[i] < fx.answered_nonce[i])
            fail_msg("channel %d: stored nonce %llu < answered %llu", i,
                     (unsigned long long)stored[i], (unsigned long long)fx.answered_nonce[i]);
    }

    /* served again after the restart: a 402 first when the buyer's view is stale, then a 200 */
    for (int i = 0; i < BUYERS; i++) {
        static tb_out out;
        json_t *body = json_pack("{s:s,s:[{s:s,s:s}],s:i}", "model", "echo-1", "messages", "role",
                                 "user", "content", "after the crash", "max_tokens", 16);
        snprintf(fx.b[i].base, sizeof(fx.b[i].base), "%s", fx.base);
        snprintf(fx.b[i].infer_url, sizeof(fx.b[i].infer_url), "%s%s", fx.base, OS_INFER_PATH);
        fx.b[i].nonce = stored[i];
        for (int attempt = 0; attempt < 2; attempt++) {
            tb_call(&fx.b[i], &out, "openai.chat", "echo", body);
            if (out.res.http_status == 402 && out.res.has_requirement) {
                fx.b[i].consumed = out.res.requirement.consumed;
                os_infer_result_free(&out.res);
                continue;
            }
            break;
        }
        assert_int_equal(out.rc, OS_OK);
        assert_int_equal(out.res.http_status, 200);
        assert_int_equal(out.res.final.status, 200);
        os_infer_result_free(&out.res);
        json_decref(body);
    }

    /* SIGTERM: a clean stop */
    assert_int_equal(rc_proc_stop(&fx.p, SIGTERM, 15000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_keeps_every_answered_voucher),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
