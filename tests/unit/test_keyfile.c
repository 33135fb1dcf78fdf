/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests for keyfile.c on real files in a fresh mkdtemp directory (removed afterwards): a published
 * key read back to its published address, write/read round trips, every group/other mode bit
 * refused, symbolic links, directories, FIFOs and devices refused, every kind of bad content
 * refused (short, long, bad hex, no prefix, stray bytes, zero, the group order n and above) with
 * n - 1 accepted, no overwrite of anything that already has the name, and no error reason ever
 * quoting key material.
 */
#define _GNU_SOURCE 1 /* nftw's FTW_DEPTH / FTW_PHYS */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "openseed/ct.h"
#include "openseed/keyfile.h"
#include "openseed/secp.h"

static char tmp[256];

/* web3.js documentation's privateKeyToAccount example (the go-ethereum test key), address
 * re-derived with ethers 6.17:
 *   node -e 'console.log(new (require("ethers").Wallet)("0x4c08…2318").address)' */
static const char vector_key[] =
    "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
static const char vector_addr[] = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";

/* The secp256k1 group order n, SEC 2 v2.0 section 2.4.1. */
#define ORDER_N "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"

/* tmp/name, in one of a few static slots. */
static const char *tpath(const char *name)
{
    static char paths[8][512];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 512, "%s/%s", tmp, name);
    return p;
}

/* Writes len bytes of text to tmp/name with mode; returns its path. */
static const char *put_bytes(const char *name, const char *text, size_t len, mode_t mode)
{
    const char *p = tpath(name);
    int fd;

    unlink(p);
    fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    return p;
}

static const char *put_file(const char *name, const char *text, mode_t mode)
{
    return put_bytes(name, text, strlen(text), mode);
}

/* Reads a small file whole, NUL-terminated; returns its length. */
static size_t slurp(char *out, size_t cap, const char *path)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, out, cap - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    close(fd);
    return (size_t)n;
}

/* Fails when err quotes any 8 consecutive characters of the hex digits in secret. */
static void assert_no_key_material(const char *err, const char *secret)
{
    const char *h = strncmp(secret, "0x", 2) == 0 ? secret + 2 : secret;
    size_t n = strlen(h);

    for (size_t i = 0; i + 8 <= n; i++) {
        char window[9];
        memcpy(window, h + i, 8);
        window[8] = '\0';
        if (strstr(err, window) != NULL)
            fail_msg("error quotes key material \"%s\": %s", window, err);
    }
}

/* Asserts that reading path fails with want, a reason containing has, and a zeroed output. */
static void assert_read_fails(const char *path, os_err want, const char *has, const char *secret)
{
    uint8_t priv[OS_SECP_PRIVKEY_LEN];
    char err[512];

    memset(priv, 0xa5, sizeof(priv));
    memset(err, 0, sizeof(err));
    assert_int_equal(os_keyfile_read_secp(priv, path, err, sizeof(err)), want);
    assert_true(os_ct_is_zero(priv, sizeof(priv)));
    if (strstr(err, has) == NULL)
        fail_msg("reason for %s lacks \"%s\": %s", path, has, err);
    if (secret != NULL)
        assert_no_key_material(err, secret);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    if (tu_init(state) != 0)
        return -1;
    snprintf(tmp, sizeof(tmp), "/tmp/openseed-keyfile-XXXXXX");
    return mkdtemp(tmp) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (tmp[0] != '\0')
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void test_read_vector(void **state)
{
    static const char *const forms[] = {
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\r\n",
        "0x4C0883A69102937D6231471B5DBB6204FE5129617082792AE468D01A3F362318\n",
    };
    uint8_t priv[OS_SECP_PRIVKEY_LEN], addr[OS_ADDRESS_LEN];
    char shown[OS_ADDRESS_STR_LEN], err[512];
    (void)state;

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const char *p = put_file("vector.key", forms[i], 0600);
        err[0] = 'x';
        assert_int_equal(os_keyfile_read_secp(priv, p, err, sizeof(err)), OS_OK);
        assert_string_equal(err, "");
        tu_assert_hex(priv, sizeof(priv), vector_key);
        assert_int_equal(os_secp_address(addr, priv), OS_OK);
        os_eip55_format(shown, addr);
        assert_string_equal(shown, vector_addr);
    }
    /* read-only for the owner is fine too */
    assert_int_equal(chmod(tpath("vector.key"), 0400), 0);
    assert_int_equal(os_keyfile_read_secp(priv, tpath("vector.key"), err, sizeof(err)), OS_OK);
    tu_assert_hex(priv, sizeof(priv), vector_key);
    os_wipe(priv, sizeof(priv));
}

static void test_round_trip(void **state)
{
    uint8_t priv[OS_SECP_PRIVKEY_LEN], back[OS_SECP_PRIVKEY_LEN];
    char text[256], want[OS_HEX_LEN(OS_SECP_PRIVKEY_LEN) + 1], err[512];
    struct stat sb;
    mode_t old = umask(022);
    (void)state;

    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "round%d.key", i);
        const char *p = tpath(name);
        assert_int_equal(os_secp_keygen(priv), OS_OK);
        assert_int_equal(os_keyfile_write_secp(p, priv, err, sizeof(err)), OS_OK);
        assert_int_equal(lstat(p, &sb), 0);
        assert_true(S_ISREG(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0600);
        /* exactly what the CLI has always written: 0x, 64 lower-case hex digits, a newline */
        assert_int_equal(os_hex_encode(want, sizeof(want), priv, sizeof(priv), 1), OS_OK);
        want[66] = '\n';
        want[67] = '\0';
        assert_int_equal(slurp(text, sizeof(text), p), 67);
        assert_string_equal(text, want);
        memset(back, 0, sizeof(back));
        assert_int_equal(os_keyfile_read_secp(back, p, err, sizeof(err)), OS_OK);
        assert_memory_equal(back, priv, sizeof(priv));
    }
    /* the published key too, byte for byte */
    tu_unhex(priv, sizeof(priv), vector_key);
    assert_int_equal(os_keyfile_write_secp(tpath("vec-out.key"), priv, err, sizeof(err)), OS_OK);
    assert_int_equal(slurp(text, sizeof(text), tpath("vec-out.key")), 67);
    assert_memory_equal(text, vector_key, 66);
    umask(old);
    os_wipe(priv, sizeof(priv));
    os_wipe(back, sizeof(back));
}

/* Any of the 077 bits refuses the file, whatever the content, and the reason shows the mode. */
static void test_modes_refused(void **state)
{
    static const mode_t bad[] = {0644, 0640,        0604, 0660, 0601, 0602, 0610,
                                 0620, 0700 | 0070, 0707, 0666, 0444, 0440, 0404};
    char has[32];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *p = put_file("open.key", vector_key, bad[i]);
        snprintf(has, sizeof(has), "(mode %04o)", (unsigned)bad[i]);
        assert_read_fails(p, OS_ERR_INVALID, has, vector_key);
    }
}

static void test_not_a_plain_file(void **state)
{
    const char *target = put_file("target.key", vector_key, 0600);
    const char *link = tpath("link.key");
    const char *fifo = tpath("fifo.key");
    const char *dir = tpath("dir.key");
    (void)state;

    /* a symlink to a perfectly good key file is still refused */
    assert_int_equal(symlink(target, link), 0);
    assert_read_fails(link, OS_ERR_INVALID, "symbolic link", vector_key);
    /* a dangling one too */
    assert_int_equal(symlink("/nonexistent-openseed-key", tpath("dangling.key")), 0);
    assert_read_fails(tpath("dangling.key"), OS_ERR_INVALID, "symbolic link", NULL);

    assert_int_equal(mkdir(dir, 0700), 0);
    assert_read_fails(dir, OS_ERR_INVALID, "not a regular file", NULL);
    /* a FIFO must be refused, not waited on */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_read_fails(fifo, OS_ERR_INVALID, "not a regular file", NULL);
    assert_read_fails("/dev/null", OS_ERR_INVALID, "not a regular file", NULL);

    assert_read_fails(tpath("missing.key"), OS_ERR_NOTFOUND, "cannot open", NULL);
}

static void test_bad_content(void **state)
{
    static const char *const bad[] = {
        "",
        "\n",
        "0x1234\n",
        /* short: 62 digits */
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f3623\n",
        /* long: 66 digits */
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f36231800\n",
        /* odd: 63 and 65 digits */
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f36231\n",
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f3623180\n",
        /* not hex */
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f36231g\n",
        "0x4c0883a69102937d6231471b5dbb6204 e5129617082792ae468d01a3f362318\n",
        /* no or wrong prefix */
        "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
        "0X4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
        "004c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
        /* stray bytes around a good key */
        " 0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318 \n",
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n\n",
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\r",
        /* not a valid scalar: zero, n, n + 1, 2^256 - 1 */
        "0x0000000000000000000000000000000000000000000000000000000000000000\n",
        "0x" ORDER_N "\n",
        "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142\n",
        "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n",
    };
    char big[300];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_read_fails(put_file("bad.key", bad[i], 0600), OS_ERR_INVALID,
                          "does not hold a secp256k1 private key", bad[i]);

    /* an embedded NUL in place of the last digit */
    {
        char nul[] = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n";
        nul[65] = '\0';
        assert_read_fails(put_bytes("nul.key", nul, sizeof(nul) - 1, 0600), OS_ERR_INVALID,
                          "does not hold", vector_key);
    }
    /* too long to be a key file at all: the key followed by junk */
    memset(big, 'a', sizeof(big));
    memcpy(big, vector_key, strlen(vector_key));
    assert_read_fails(put_bytes("big.key", big, sizeof(big), 0600), OS_ERR_INVALID, "too long",
                      vector_key);
    assert_read_fails(
        put_file("two.key",
                 "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n"
                 "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
                 0600),
        OS_ERR_INVALID, "too long", vector_key);
    assert_read_fails(put_file("store.key", "{\"address\":\"2c7536e3\",\"crypto\":{}}\n", 0600),
                      OS_ERR_INVALID, "v3 keystore", NULL);

    /* the largest valid key, n - 1, is accepted */
    {
        uint8_t priv[OS_SECP_PRIVKEY_LEN];
        char err[512];
        const char *p =
            put_file("max.key",
                     "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140\n", 0600);
        assert_int_equal(os_keyfile_read_secp(priv, p, err, sizeof(err)), OS_OK);
        tu_assert_hex(priv, sizeof(priv),
                      "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140");
        os_wipe(priv, sizeof(priv));
    }
}

static void test_write_never_overwrites(void **state)
{
    static const char other[] = "not a key, but somebody's file\n";
    uint8_t priv[OS_SECP_PRIVKEY_LEN];
    char err[512], text[256];
    struct stat sb;
    (void)state;

    tu_unhex(priv, sizeof(priv), vector_key);

    /* an existing file keeps its content and mode */
    const char *p = put_file("taken.key", other, 0644);
    assert_int_equal(os_keyfile_write_secp(p, priv, err, sizeof(err)), OS_ERR_EXISTS);
    assert_non_null(strstr(err, "already exists; refusing to overwrite it"));
    assert_no_key_material(err, vector_key);
    slurp(text, sizeof(text), p);
    assert_string_equal(text, other);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);

    /* an existing key file is not replaced by another key either */
    uint8_t fresh[OS_SECP_PRIVKEY_LEN], back[OS_SECP_PRIVKEY_LEN];
    const char *k = tpath("first.key");
    assert_int_equal(os_keyfile_write_secp(k, priv, err, sizeof(err)), OS_OK);
    assert_int_equal(os_secp_keygen(fresh), OS_OK);
    assert_int_equal(os_keyfile_write_secp(k, fresh, err, sizeof(err)), OS_ERR_EXISTS);
    assert_int_equal(os_keyfile_read_secp(back, k, err, sizeof(err)), OS_OK);
    assert_memory_equal(back, priv, sizeof(priv));

    /* nor is anything written through a planted symlink, dangling or not */
    const char *target = tpath("planted-target.key");
    const char *link = tpath("planted.key");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(os_keyfile_write_secp(link, priv, err, sizeof(err)), OS_ERR_EXISTS);
    assert_int_equal(lstat(target, &sb), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(lstat(link, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    const char *victim = put_file("victim.key", other, 0600);
    assert_int_equal(symlink(victim, tpath("to-victim.key")), 0);
    assert_int_equal(os_keyfile_write_secp(tpath("to-victim.key"), priv, err, sizeof(err)),
                     OS_ERR_EXISTS);
    slurp(text, sizeof(text), victim);
    assert_string_equal(text, other);

    /* a directory of that name */
    assert_int_equal(mkdir(tpath("adir"), 0700), 0);
    assert_int_equal(os_keyfile_write_secp(tpath("adir"), priv, err, sizeof(err)), OS_ERR_EXISTS);

    os_wipe(priv, sizeof(priv));
    os_wipe(fresh, sizeof(fresh));
    os_wipe(back, sizeof(back));
}

static void test_write_refusals(void **state)
{
    uint8_t priv[OS_SECP_PRIVKEY_LEN];
    char err[512];
    struct stat sb;
    (void)state;

    /* invalid keys are not written at all */
    memset(priv, 0, sizeof(priv));
    assert_int_equal(os_keyfile_write_secp(tpath("zero.key"), priv, err, sizeof(err)),
                     OS_ERR_INVALID);
    assert_int_equal(lstat(tpath("zero.key"), &sb), -1);
    tu_unhex(priv, sizeof(priv), ORDER_N);
    assert_int_equal(os_keyfile_write_secp(tpath("n.key"), priv, err, sizeof(err)), OS_ERR_INVALID);
    assert_no_key_material(err, ORDER_N);
    assert_int_equal(lstat(tpath("n.key"), &sb), -1);

    /* a directory that does not exist: an I/O error that does not quote the key */
    tu_unhex(priv, sizeof(priv), vector_key);
    assert_int_equal(os_keyfile_write_secp(tpath("no/such/dir.key"), priv, err, sizeof(err)),
                     OS_ERR_IO);
    assert_non_null(strstr(err, "cannot create"));
    assert_no_key_material(err, vector_key);

    /* bad arguments, with and without an err buffer */
    assert_int_equal(os_keyfile_write_secp(NULL, priv, err, sizeof(err)), OS_ERR_INVALID);
    assert_int_equal(os_keyfile_write_secp("", priv, NULL, 0), OS_ERR_INVALID);
    assert_int_equal(os_keyfile_write_secp(tpath("null.key"), NULL, err, sizeof(err)),
                     OS_ERR_INVALID);
    assert_int_equal(lstat(tpath("null.key"), &sb), -1);
    assert_int_equal(os_keyfile_read_secp(priv, NULL, err, sizeof(err)), OS_ERR_INVALID);
    assert_true(os_ct_is_zero(priv, sizeof(priv)));
    assert_int_equal(os_keyfile_read_secp(priv, "", NULL, 0), OS_ERR_INVALID);
    assert_int_equal(os_keyfile_read_secp(NULL, tpath("vector.key"), err, sizeof(err)),
                     OS_ERR_INVALID);
    /* a tiny err buffer is still NUL-terminated */
    char small[8];
    assert_int_equal(os_keyfile_read_secp(priv, tpath("missing.key"), small, sizeof(small)),
                     OS_ERR_NOTFOUND);
    assert_true(strlen(small) < sizeof(small));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_vector),    cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_modes_refused),  cmocka_unit_test(test_not_a_plain_file),
        cmocka_unit_test(test_bad_content),    cmocka_unit_test(test_write_never_overwrites),
        cmocka_unit_test(test_write_refusals),
    };
    return cmocka_run_group_tests_name("keyfile", tests, setup, teardown);
}
