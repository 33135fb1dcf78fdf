/* SPDX-License-Identifier: Apache-2.0 */
/* Base64 against the RFC 4648 §10 test vectors, and strict rejection of malformed input. */
#include "testutil.h"

#include <stdlib.h>

#include "openseed/base64.h"

static const struct {
    const char *plain, *b64;
} rfc4648[] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    char enc[64];
    uint8_t dec[64];
    size_t n;
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const char *p = rfc4648[i].plain, *b = rfc4648[i].b64;
        assert_int_equal(os_base64_encode(enc, sizeof(enc), p, strlen(p)), OS_OK);
        assert_string_equal(enc, b);
        assert_int_equal(os_base64_decode(dec, sizeof(dec), &n, b, strlen(b)), OS_OK);
        assert_int_equal(n, strlen(p));
        assert_memory_equal(dec, p, n);
    }
}

static void test_rejects_malformed(void **state)
{
    static const char *bad[] = {
        "Zg",       /* missing padding */
        "Zg=",      /* short padding */
        "Zm9v\n",   /* whitespace */
        "Zm9v YmFy", "Zm-v", /* url-safe alphabet is not ours */
        "Z===", "====", "Zm9vY===",
    };
    uint8_t dec[64];
    size_t n;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(os_base64_decode(dec, sizeof(dec), &n, bad[i], strlen(bad[i])),
                         OS_ERR_INVALID);
        assert_int_equal(n, 0);
    }
}

/* libsodium 1.0.18 alone decodes bytes 0x80-0xff as '/': every one of them must be refused. */
static void test_rejects_high_bytes(void **state)
{
    uint8_t dec[8];
    size_t n;
    (void)state;
    for (int b = 0x80; b <= 0xff; b++) {
        char text[5] = "Zm9/";
        text[3] = (char)b;
        assert_int_equal(os_base64_decode(dec, sizeof(dec), &n, text, 4), OS_ERR_INVALID);
    }
    for (int b = 0; b < 0x80; b++) { /* and every ASCII byte outside the alphabet */
        char text[5] = "Zm9/";
        int ok = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
                 b == '+' || b == '/';
        if (ok || b == '=')
            continue;
        text[3] = (char)b;
        assert_int_equal(os_base64_decode(dec, sizeof(dec), &n, text, 4), OS_ERR_INVALID);
    }
}

static void test_caps(void **state)
{
    char enc[8];
    uint8_t dec[2];
    size_t n;
    (void)state;
    assert_int_equal(os_base64_encode(enc, sizeof(enc), "foobar", 6), OS_ERR_TOOBIG);
    assert_int_equal(os_base64_decode(dec, sizeof(dec), &n, "Zm9v", 4), OS_ERR_TOOBIG);
}

static void test_alloc(void **state)
{
    uint8_t *dec = NULL;
    size_t n;
    char *enc;
    (void)state;
    enc = os_base64_encode_alloc("{\"a\":1}", 7);
    assert_non_null(enc);
    assert_string_equal(enc, "eyJhIjoxfQ==");
    assert_int_equal(os_base64_decode_alloc(&dec, &n, enc, strlen(enc), 64), OS_OK);
    assert_int_equal(n, 7);
    assert_string_equal((char *)dec, "{\"a\":1}"); /* NUL-terminated for in-place parsing */
    free(dec);
    assert_int_equal(os_base64_decode_alloc(&dec, &n, enc, strlen(enc), 6), OS_ERR_TOOBIG);
    assert_null(dec);
    assert_int_equal(os_base64_decode_alloc(&dec, &n, "e!==", 4, 64), OS_ERR_INVALID);
    assert_null(dec);
    free(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_rejects_high_bytes),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_alloc),
    };
    return cmocka_run_group_tests_name("base64", tests, tu_init, NULL);
}
