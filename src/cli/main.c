/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed, the operator command. Each subcommand parses its options with the same table-driven
 * loader as the daemons (flags only). For now: `keygen` writes a fresh secp256k1 private key to a
 * new 0600 file and prints its EIP-55 address, and `address` prints the address of a key file after
 * checking that nobody but its owner can read it. A key file holds "0x" and 64 hex digits and a
 * newline, the form the daemons' node_key and wallet_key read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "openseed/config.h"
#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/init.h"
#include "openseed/secp.h"

/* A key file is at most this long (64 hex digits, "0x", a CRLF and a little slack). */
#define KEY_FILE_MAX 128

typedef struct keygen_opts {
    char *out;
} keygen_opts;

typedef struct address_opts {
    char *key;
} address_opts;

static const os_cfg_entry keygen_entries[] = {
    {.name = "out",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED,
     .offset = offsetof(keygen_opts, out),
     .meta = "FILE",
     .help = "file to create, mode 0600; an existing file is never overwritten"},
};

static const os_cfg_program keygen_program = {
    .name = "openseed keygen",
    .version = OPENSEED_VERSION,
    .summary = "Creates a new secp256k1 private key in FILE and prints its Ethereum address.",
    .usage = "openseed keygen --out FILE",
    .entries = keygen_entries,
    .n_entries = 1,
    .flags = OS_CFG_PROG_NO_FILE,
};

/* OS_CFG_SECRET_PATH makes the loader refuse a key file others can read before it is opened;
 * address_run checks the opened file again, since the path could change in between. */
static const os_cfg_entry address_entries[] = {
    {.name = "key",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED | OS_CFG_SECRET_PATH,
     .offset = offsetof(address_opts, key),
     .meta = "FILE",
     .help = "key file written by openseed keygen (mode 0600 or 0400)"},
};

static const os_cfg_program address_program = {
    .name = "openseed address",
    .version = OPENSEED_VERSION,
    .summary = "Prints the EIP-55 Ethereum address of the private key in FILE.",
    .usage = "openseed address --key FILE",
    .entries = address_entries,
    .n_entries = 1,
    .flags = OS_CFG_PROG_NO_FILE,
};

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int keygen_run(const keygen_opts *o)
{
    uint8_t priv[OS_SECP_PRIVKEY_LEN], addr[OS_ADDRESS_LEN];
    char text[OS_HEX_LEN(OS_SECP_PRIVKEY_LEN) + 1];
    char shown[OS_ADDRESS_STR_LEN];
    size_t len;
    int fd, status = 1;

    if (os_secp_keygen(priv) != OS_OK || os_secp_address(addr, priv) != OS_OK ||
        os_hex_encode(text, sizeof(text), priv, sizeof(priv), 1) != OS_OK) {
        fprintf(stderr, "openseed keygen: cannot generate a key\n");
        goto done;
    }
    len = strlen(text);
    text[len++] = '\n';
    /* O_EXCL: never replace an existing file (or follow a planted symlink); 0600 from birth. */
    fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "openseed keygen: %s already exists; refusing to overwrite it\n",
                    o->out);
        else
            fprintf(stderr, "openseed keygen: cannot create %s: %s\n", o->out, strerror(errno));
        goto done;
    }
    if (write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        fprintf(stderr, "openseed keygen: cannot write %s: %s\n", o->out, strerror(errno));
        close(fd);
        unlink(o->out);
        goto done;
    }
    if (close(fd) != 0) {
        fprintf(stderr, "openseed keygen: cannot write %s: %s\n", o->out, strerror(errno));
        unlink(o->out);
        goto done;
    }
    os_eip55_format(shown, addr);
    printf("%s\n", shown);
    status = 0;
done:
    os_wipe(priv, sizeof(priv));
    os_wipe(text, sizeof(text));
    return status;
}

/* Reads a private key from path into priv; prints the reason and returns -1 on failure. */
static int read_key_file(uint8_t priv[OS_SECP_PRIVKEY_LEN], const char *path)
{
    char buf[KEY_FILE_MAX + 1];
    struct stat sb;
    ssize_t got;
    size_t n = 0;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "openseed address: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "openseed address: %s is not a regular file\n", path);
        goto done;
    }
    if ((sb.st_mode & 077) != 0) {
        fprintf(stderr,
                "openseed address: %s is accessible by group or others (mode %04o); refusing to "
                "use it; run chmod 600 on it\n",
                path, (unsigned)(sb.st_mode & 07777));
        goto done;
    }
    while (n < sizeof(buf)) {
        got = read(fd, buf + n, sizeof(buf) - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fprintf(stderr, "openseed address: cannot read %s: %s\n", path, strerror(errno));
            goto done;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > KEY_FILE_MAX) {
        fprintf(stderr, "openseed address: %s is too long to be a key file\n", path);
        goto done;
    }
    if (n > 0 && buf[0] == '{') {
        fprintf(stderr,
                "openseed address: %s looks like a v3 keystore; only raw key files are "
                "supported so far\n",
                path);
        goto done;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (n != 2 + 2 * OS_SECP_PRIVKEY_LEN || buf[0] != '0' || buf[1] != 'x' ||
        os_hex_decode_exact(priv, OS_SECP_PRIVKEY_LEN, buf) != OS_OK ||
        os_secp_privkey_check(priv) != OS_OK) {
        fprintf(stderr,
                "openseed address: %s does not hold a secp256k1 private key (0x and 64 "
                "hex digits)\n",
                path);
        goto done;
    }
    rc = 0;
done:
    os_wipe(buf, sizeof(buf));
    close(fd);
    return rc;
}

static int address_run(const address_opts *o)
{
    uint8_t priv[OS_SECP_PRIVKEY_LEN], addr[OS_ADDRESS_LEN];
    char shown[OS_ADDRESS_STR_LEN];
    int status = 1;

    if (read_key_file(priv, o->key) != 0)
        goto done;
    if (os_secp_address(addr, priv) != OS_OK) {
        fprintf(stderr, "openseed address: cannot derive the address\n");
        goto done;
    }
    os_eip55_format(shown, addr);
    printf("%s\n", shown);
    status = 0;
done:
    os_wipe(priv, sizeof(priv));
    return status;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: openseed COMMAND [OPTIONS]\n"
                 "\n"
                 "The OpenSeed operator command.\n"
                 "\n"
                 "Commands:\n"
                 "  keygen --out FILE     create a secp256k1 private key in FILE (mode 0600) and\n"
                 "                        print its address\n"
                 "  address --key FILE    print the Ethereum address of the key in FILE\n"
                 "\n"
                 "openseed COMMAND --help shows a command's options; openseed --version the "
                 "version.\n");
}

int main(int argc, char **argv)
{
    const char *cmd;
    os_cfg_report rep;
    os_err rc;
    int status;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("openseed %s\n", OPENSEED_VERSION);
        return 0;
    }
    if (os_init() != OS_OK) {
        fprintf(stderr, "openseed: cannot initialise libcommon\n");
        return 1;
    }
    if (strcmp(cmd, "keygen") == 0) {
        keygen_opts o;
        rc = os_cfg_load(&keygen_program, &o, &rep, argc - 1, argv + 1);
        status = os_cfg_dispatch(&keygen_program, &o, &rep, rc, stdout, stderr);
        if (status < 0)
            status = keygen_run(&o);
        os_cfg_free(&keygen_program, &o);
        os_cfg_report_free(&rep);
        return status;
    }
    if (strcmp(cmd, "address") == 0) {
        address_opts o;
        rc = os_cfg_load(&address_program, &o, &rep, argc - 1, argv + 1);
        status = os_cfg_dispatch(&address_program, &o, &rep, rc, stdout, stderr);
        if (status < 0)
            status = address_run(&o);
        os_cfg_free(&address_program, &o);
        os_cfg_report_free(&rep);
        return status;
    }
    char shown[65];
    size_t k;
    for (k = 0; cmd[k] != '\0' && k + 1 < sizeof(shown); k++)
        shown[k] = (cmd[k] > ' ' && cmd[k] < 0x7f) ? cmd[k] : '?';
    shown[k] = '\0';
    fprintf(stderr, "openseed: unknown command \"%s\"; see openseed --help\n", shown);
    return 2;
}
