/* SPDX-License-Identifier: Apache-2.0 */
/* Constant-time helpers: they must still give the right answers. */
#include "testutil.h"

#include "openseed/ct.h"

static void test_eq(void **state)
{
    uint8_t a[32] = {0}, b[32] = {0};
    (void)state;
    assert_true(os_ct_eq(a, b, sizeof(a)));
    b[31] = 1;
    assert_false(os_ct_eq(a, b, sizeof(a)));
    b[31] = 0;
    b[0] = 0x80;
    assert_false(os_ct_eq(a, b, sizeof(a)));
    assert_true(os_ct_eq(a, b, 0));
}

static void test_is_zero(void **state)
{
    uint8_t a[16] = {0};
    (void)state;
    assert_true(os_ct_is_zero(a, sizeof(a)));
    a[7] = 1;
    assert_false(os_ct_is_zero(a, sizeof(a)));
}

static void test_streq(void **state)
{
    (void)state;
    assert_true(os_ct_streq("s3cret-token", "s3cret-token"));
    assert_false(os_ct_streq("s3cret-token", "s3cret-tokem"));
    assert_false(os_ct_streq("s3cret-token", "s3cret-token2"));
    assert_false(os_ct_streq("", "x"));
    assert_true(os_ct_streq("", ""));
    assert_false(os_ct_streq(NULL, ""));
    assert_false(os_ct_streq("", NULL));
}

static void test_wipe(void **state)
{
    uint8_t key[32];
    (void)state;
    memset(key, 0xa5, sizeof(key));
    os_wipe(key, sizeof(key));
    assert_true(os_ct_is_zero(key, sizeof(key)));
    os_wipe(NULL, 10); /* NULL-safe */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eq),
        cmocka_unit_test(test_is_zero),
        cmocka_unit_test(test_streq),
        cmocka_unit_test(test_wipe),
    };
    return cmocka_run_group_tests_name("ct", tests, tu_init, NULL);
}
