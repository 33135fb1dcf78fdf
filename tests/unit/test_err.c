/* SPDX-License-Identifier: Apache-2.0 */
/* Status names and os_errf, the shared "say why and fail" helper. */
#include "testutil.h"

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(os_strerror(OS_OK), "success");
    assert_string_equal(os_strerror(OS_ERR_CRYPTO), "cryptographic verification failed");
    for (int e = 0; e < OS_ERR__COUNT; e++)
        assert_string_not_equal(os_strerror((os_err)e), "unknown error");
    assert_string_equal(os_strerror(OS_ERR__COUNT), "unknown error");
    assert_string_equal(os_strerror((os_err)-1), "unknown error");
}

static void test_errf(void **state)
{
    char err[16];
    (void)state;
    assert_int_equal(os_errf(err, sizeof(err), OS_ERR_RANGE, "field %s: %d", "n", 42), OS_ERR_RANGE);
    assert_string_equal(err, "field n: 42");
    /* truncated, always terminated */
    assert_int_equal(os_errf(err, sizeof(err), OS_ERR_INVALID, "%s", "0123456789abcdefghij"),
                     OS_ERR_INVALID);
    assert_string_equal(err, "0123456789abcde");
    /* no buffer: only the status */
    assert_int_equal(os_errf(NULL, 0, OS_ERR_IO, "x"), OS_ERR_IO);
    err[0] = 'z';
    assert_int_equal(os_errf(err, 0, OS_ERR_IO, "x"), OS_ERR_IO);
    assert_int_equal(err[0], 'z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_errf),
    };
    return cmocka_run_group_tests_name("err", tests, tu_init, NULL);
}
