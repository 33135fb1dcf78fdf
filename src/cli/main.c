/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openseed, the operator command. Each subcommand parses its options with the same table-driven
 * loader as the daemons (flags only); the subcommand families live in keys.c (key files and
 * keystores) and net.c (registry, buyer and seller APIs), this file only dispatches. `keygen`
 * writes a fresh secp256k1 private key to a new 0600 file and prints its EIP-55 address, and
 * `address` prints the address of a key file after checking that nobody but its owner can read it.
 * Both go through keyfile.h, so a key file is exactly what the daemons' node_key and wallet_key
 * read: "0x", 64 hex digits and a newline.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "openseed/config.h"
#include "openseed/ct.h"
#include "openseed/init.h"
#include "openseed/keyfile.h"
#include "openseed/secp.h"

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
 * os_keyfile_read_secp checks the opened file again, since the path could change in between. */
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

static int keygen_run(const keygen_opts *o)
{
    uint8_t priv[OS_SECP_PRIVKEY_LEN], addr[OS_ADDRESS_LEN];
    char shown[OS_ADDRESS_STR_LEN], err[512];
    int status = 1;

    if (os_secp_keygen(priv) != OS_OK || os_secp_address(addr, priv) != OS_OK) {
        fprintf(stderr, "openseed keygen: cannot generate a key\n");
        goto done;
    }
    if (os_keyfile_write_secp(o->out, priv, err, sizeof(err)) != OS_OK) {
        fprintf(stderr, "openseed keygen: %s\n", err);
        goto done;
    }
    os_eip55_format(shown, addr);
    printf("%s\n", shown);
    status = 0;
done:
    os_wipe(priv, sizeof(priv));
    return status;
}

static int address_run(const address_opts *o)
{
    uint8_t priv[OS_SECP_PRIVKEY_LEN], addr[OS_ADDRESS_LEN];
    char shown[OS_ADDRESS_STR_LEN], err[512];
    int status = 1;

    if (os_keyfile_read_secp(priv, o->key, err, sizeof(err)) != OS_OK) {
        fprintf(stderr, "openseed address: %s\n", err);
        goto done;
    }
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
                 "  keys new|show|import|export    key files (0600) and v3 keystores\n"
                 "  peers [--service S]            a registry's sellers, signatures checked\n"
                 "  registry status                is a registry up\n"
                 "  channels list|close|withdraw   the buyer's payment channels\n"
                 "  ledger, spend                  the buyer's requests and spending\n"
                 "  seller status|settle           the seller's revenue, channels and claims\n"
                 "  keygen --out FILE              create a raw key file (as keys new)\n"
                 "  address --key FILE             print the address of a raw key file\n"
                 "\n"
                 "Every command takes --help, and --json to print JSON for scripts.\n"
                 "Exit status: 0 done, 1 failed, 2 bad command line.\n"
                 "openseed --version prints the version.\n");
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
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"keys", cl_keys_main},         {"peers", cl_peers_main},   {"registry", cl_registry_main},
        {"channels", cl_channels_main}, {"ledger", cl_ledger_main}, {"spend", cl_spend_main},
        {"seller", cl_seller_main},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
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
    fprintf(stderr, "usage: openseed COMMAND [OPTIONS]\n");
    return 2;
}
