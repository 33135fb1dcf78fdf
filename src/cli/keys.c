/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `openseed keys`: new, show, import and export of secp256k1 keys, as raw key files (0x + 64 hex,
 * mode 0600, what the daemons' node_key and wallet_key read) or Web3 Secret Storage v3 keystores
 * (what the buyer's wallet_key may also be, and what geth, foundry and ethers exchange). Files are
 * only ever created, never replaced, with mode 0600; passwords come from 0600 files, never from
 * the command line; nothing secret is printed, only addresses.
 */
#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "openseed/ct.h"
#include "openseed/keyfile.h"
#include "openseed/secp.h"

/* ethers' default cost; geth's "standard" is 18. */
#define KEYS_DEFAULT_LOG2_N "17"

typedef struct keys_opts {
    char *out, *key, *from, *password_file, *new_password_file, *owner;
    bool keystore, json;
    uint64_t scrypt_log2n;
} keys_opts;

#define E_JSON                                                                                     \
    {                                                                                              \
        .name = "json", .type = OS_CFG_BOOL, .offset = offsetof(keys_opts, json), .dflt = "false", \
        .help = "print JSON for scripts"                                                           \
    }
#define E_KEYSTORE                                                                                 \
    {                                                                                              \
        .name = "keystore", .type = OS_CFG_BOOL, .offset = offsetof(keys_opts, keystore),          \
        .dflt = "false",                                                                           \
        .help = "write a v3 keystore (needs a password file) instead of a raw key"                 \
    }
#define E_LOG2N                                                                                    \
    {                                                                                              \
        .name = "scrypt_log2n", .type = OS_CFG_U64, .offset = offsetof(keys_opts, scrypt_log2n),   \
        .dflt = KEYS_DEFAULT_LOG2_N, .min = OS_KEYSTORE_MIN_LOG2_N, .max = OS_KEYSTORE_MAX_LOG2_N, \
        .meta = "N", .help = "scrypt cost 2^N of a keystore written"                               \
    }
#define E_OWNER                                                                                    \
    {                                                                                              \
        .name = "owner", .type = OS_CFG_STRING, .offset = offsetof(keys_opts, owner),              \
        .meta = "USER", .help = "give the file to this user and their group (root only), e.g. the "  \
                                "openseed service user"                                            \
    }
#define E_PASSWORD(h)                                                                              \
    {                                                                                              \
        .name = "password_file", .type = OS_CFG_PATH, .flags = OS_CFG_SECRET_PATH,                 \
        .offset = offsetof(keys_opts, password_file), .meta = "FILE", .help = h                    \
    }

static const os_cfg_entry new_entries[] = {
    {.name = "out",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED,
     .offset = offsetof(keys_opts, out),
     .meta = "FILE",
     .help = "file to create, mode 0600; an existing file is never overwritten"},
    E_KEYSTORE,
    E_PASSWORD("one-line password file (0600) for --keystore"),
    E_LOG2N,
    E_OWNER,
    E_JSON,
};
static const os_cfg_entry show_entries[] = {
    {.name = "key",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED | OS_CFG_SECRET_PATH,
     .offset = offsetof(keys_opts, key),
     .meta = "FILE",
     .help = "raw key file or v3 keystore"},
    E_PASSWORD("the keystore's password file (0600)"),
    E_JSON,
};
static const os_cfg_entry import_entries[] = {
    {.name = "from",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED | OS_CFG_SECRET_PATH,
     .offset = offsetof(keys_opts, from),
     .meta = "FILE",
     .help = "raw key file or v3 keystore (geth, cast, ethers) to read"},
    {.name = "out",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED,
     .offset = offsetof(keys_opts, out),
     .meta = "FILE",
     .help = "file to create, mode 0600 (raw key unless --keystore)"},
    E_KEYSTORE,
    E_PASSWORD("password file of the keystore read, and of the one written"),
    {.name = "new_password_file",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_SECRET_PATH,
     .offset = offsetof(keys_opts, new_password_file),
     .meta = "FILE",
     .help = "password file for the keystore written, when not --password-file's"},
    E_LOG2N,
    E_OWNER,
    E_JSON,
};
static const os_cfg_entry export_entries[] = {
    {.name = "key",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED | OS_CFG_SECRET_PATH,
     .offset = offsetof(keys_opts, key),
     .meta = "FILE",
     .help = "raw key file to export"},
    {.name = "out",
     .type = OS_CFG_PATH,
     .flags = OS_CFG_REQUIRED,
     .offset = offsetof(keys_opts, out),
     .meta = "FILE",
     .help = "keystore file to create, mode 0600"},
    {.name = "keystore",
     .type = OS_CFG_BOOL,
     .offset = offsetof(keys_opts, keystore),
     .dflt = "true",
     .help = "write a v3 keystore (the only export format)"},
    E_PASSWORD("the new keystore's password file (0600)"),
    E_LOG2N,
    E_OWNER,
    E_JSON,
};

#define PROG(n, sum, use, ents)                                                                    \
    {                                                                                              \
        .name = "openseed keys " n, .version = OPENSEED_VERSION, .summary = sum, .usage = use,     \
        .entries = ents, .n_entries = sizeof(ents) / sizeof(ents[0]), .flags = OS_CFG_PROG_NO_FILE \
    }

static const os_cfg_program new_prog =
    PROG("new", "Creates a new secp256k1 key in FILE and prints its Ethereum address.",
         "openseed keys new --out FILE [--keystore --password-file F] [--owner USER] [--json]",
         new_entries);
static const os_cfg_program show_prog =
    PROG("show", "Prints the Ethereum address of a key file or keystore.",
         "openseed keys show --key FILE [--password-file F] [--json]", show_entries);
static const os_cfg_program import_prog = PROG(
    "import", "Copies a key from a keystore or raw key file into a new raw key file or keystore.",
    "openseed keys import --from FILE --out FILE [--keystore] [--password-file F] [--json]",
    import_entries);
static const os_cfg_program export_prog =
    PROG("export", "Writes a raw key file's key into a new v3 keystore.",
         "openseed keys export --key FILE --out FILE --keystore --password-file F [--json]",
         export_entries);

static int report(const keys_opts *o, const char *file, const uint8_t priv[32], bool keystore)
{
    uint8_t addr[OS_ADDRESS_LEN];
    char shown[OS_ADDRESS_STR_LEN];

    if (os_secp_address(addr, priv) != OS_OK)
        return cl_fail("keys", "cannot derive the address");
    os_eip55_format(shown, addr);
    if (o->json) {
        json_t *j = json_pack("{s:s,s:s?,s:s?}", "address", shown, "file", file, "format",
                              file == NULL ? NULL
                              : keystore   ? "keystore"
                                           : "raw");
        if (j == NULL)
            return cl_fail("keys", "out of memory");
        cl_print_json(j);
        json_decref(j);
    } else {
        printf("%s\n", shown);
    }
    return CL_EXIT_OK;
}

/* Gives the new file path to user (and the user's group), keeping its mode 0600: a key for a
 * service made by root. On failure the file is removed, so no key is left with the wrong owner. */
static int hand_over(const char *cmd, const char *path, const char *user)
{
    struct passwd pw, *found = NULL;
    char buf[4096];
    int e = getpwnam_r(user, &pw, buf, sizeof(buf), &found);

    if (found == NULL) {
        unlink(path);
        return cl_fail(cmd, "no user %s%s%s (%s removed)", user, e != 0 ? ": " : "",
                       e != 0 ? strerror(e) : "", path);
    }
    if (chown(path, found->pw_uid, found->pw_gid) != 0) {
        e = errno;
        unlink(path);
        return cl_fail(cmd, "cannot give %s to %s: %s%s (removed)", path, user, strerror(e),
                       e == EPERM ? "; only root can" : "");
    }
    return CL_EXIT_OK;
}

/* Writes priv to path as a raw key file or, with a password, a keystore; owner (or NULL) then
 * gets it. */
static int write_key(const char *cmd, const char *path, const uint8_t priv[32], const char *pw,
                     size_t pw_len, unsigned log2n, const char *owner)
{
    char err[512], *json = NULL;
    os_err rc;

    if (pw == NULL) {
        if (os_keyfile_write_secp(path, priv, err, sizeof(err)) != OS_OK)
            return cl_fail(cmd, "%s", err);
    } else {
        if (os_keystore_encrypt(&json, priv, pw, pw_len, log2n, err, sizeof(err)) != OS_OK)
            return cl_fail(cmd, "%s", err);
        rc = os_keyfile_write_text(path, json, err, sizeof(err));
        free(json);
        if (rc != OS_OK)
            return cl_fail(cmd, "%s", err);
    }
    return owner != NULL ? hand_over(cmd, path, owner) : CL_EXIT_OK;
}

static int keys_new(const keys_opts *o)
{
    uint8_t *priv = sodium_malloc(OS_SECP_PRIVKEY_LEN);
    char *pw = NULL;
    size_t pw_len = 0;
    int st;

    if (priv == NULL)
        return cl_fail("keys new", "out of memory");
    if (o->keystore && o->password_file == NULL)
        st = cl_usage_error("keys new", new_prog.usage, "--keystore needs --password-file");
    else if (!o->keystore && o->password_file != NULL)
        st = cl_usage_error("keys new", new_prog.usage, "--password-file needs --keystore");
    else if (o->keystore && cl_password_read(&pw, &pw_len, "keys new", o->password_file) != 0)
        st = CL_EXIT_FAIL;
    else if (os_secp_keygen(priv) != OS_OK)
        st = cl_fail("keys new", "cannot generate a key");
    else if ((st = write_key("keys new", o->out, priv, pw, pw_len, (unsigned)o->scrypt_log2n,
                             o->owner)) == CL_EXIT_OK)
        st = report(o, o->out, priv, o->keystore);
    cl_password_free(pw);
    sodium_free(priv);
    return st;
}

static int keys_show(const keys_opts *o)
{
    uint8_t *priv = sodium_malloc(OS_SECP_PRIVKEY_LEN);
    char *pw = NULL, err[512];
    size_t pw_len = 0;
    int st;

    if (priv == NULL)
        return cl_fail("keys show", "out of memory");
    if (o->password_file != NULL &&
        cl_password_read(&pw, &pw_len, "keys show", o->password_file) != 0)
        st = CL_EXIT_FAIL;
    else if (os_keyfile_read_wallet(priv, o->key, pw, err, sizeof(err)) != OS_OK)
        st = pw == NULL && strstr(err, "is a keystore") != NULL
                 ? cl_fail("keys show", "%s is a keystore: give its password with --password-file",
                           o->key)
                 : cl_fail("keys show", "%s", err);
    else
        st = report(o, NULL, priv, false);
    cl_password_free(pw);
    sodium_free(priv);
    return st;
}

/* import and export: read src (keystore or raw), write out (keystore or raw). */
static int keys_copy(const char *cmd, const os_cfg_program *prog, const keys_opts *o,
                     const char *src)
{
    uint8_t *priv = sodium_malloc(OS_SECP_PRIVKEY_LEN);
    char *pw = NULL, *npw = NULL, err[512];
    size_t pw_len = 0, npw_len = 0;
    const char *wpw = NULL;
    size_t wpw_len = 0;
    int st = CL_EXIT_OK;

    if (priv == NULL)
        return cl_fail(cmd, "out of memory");
    if (o->keystore && o->password_file == NULL && o->new_password_file == NULL)
        st = cl_usage_error(cmd, prog->usage, "--keystore needs --password-file");
    else if (!o->keystore && o->new_password_file != NULL)
        st = cl_usage_error(cmd, prog->usage, "--new-password-file needs --keystore");
    if (st == CL_EXIT_OK && o->password_file != NULL &&
        cl_password_read(&pw, &pw_len, cmd, o->password_file) != 0)
        st = CL_EXIT_FAIL;
    if (st == CL_EXIT_OK && o->new_password_file != NULL &&
        cl_password_read(&npw, &npw_len, cmd, o->new_password_file) != 0)
        st = CL_EXIT_FAIL;
    if (st == CL_EXIT_OK && os_keyfile_read_wallet(priv, src, pw, err, sizeof(err)) != OS_OK)
        st = cl_fail(cmd, "%s", err);
    if (st == CL_EXIT_OK && o->keystore) {
        wpw = npw != NULL ? npw : pw;
        wpw_len = npw != NULL ? npw_len : pw_len;
    }
    if (st == CL_EXIT_OK)
        st = write_key(cmd, o->out, priv, wpw, wpw_len, (unsigned)o->scrypt_log2n, o->owner);
    if (st == CL_EXIT_OK)
        st = report(o, o->out, priv, o->keystore);
    cl_password_free(pw);
    cl_password_free(npw);
    sodium_free(priv);
    return st;
}

static void keys_usage(FILE *f)
{
    fprintf(f, "usage: openseed keys new|show|import|export [OPTIONS]\n"
               "\n"
               "  new      create a key (raw file, or --keystore with --password-file)\n"
               "  show     print the address of a key file or keystore\n"
               "  import   copy a keystore or raw key into a new raw key file (or --keystore)\n"
               "  export   write a raw key into a new v3 keystore\n"
               "\n"
               "openseed keys ACTION --help shows an action's options.\n");
}

int cl_keys_main(int argc, char **argv)
{
    const os_cfg_program *prog;
    keys_opts o;
    int st;

    if (argc < 2) {
        keys_usage(stderr);
        return CL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        keys_usage(stdout);
        return CL_EXIT_OK;
    }
    if (strcmp(argv[1], "new") == 0)
        prog = &new_prog;
    else if (strcmp(argv[1], "show") == 0)
        prog = &show_prog;
    else if (strcmp(argv[1], "import") == 0)
        prog = &import_prog;
    else if (strcmp(argv[1], "export") == 0)
        prog = &export_prog;
    else {
        keys_usage(stderr);
        return CL_EXIT_USAGE;
    }
    memset(&o, 0, sizeof(o));
    st = cl_parse(prog, &o, argc - 1, argv + 1);
    if (st < 0) {
        if (prog == &new_prog)
            st = keys_new(&o);
        else if (prog == &show_prog)
            st = keys_show(&o);
        else if (prog == &import_prog)
            st = keys_copy("keys import", prog, &o, o.from);
        else if (!o.keystore)
            st = cl_usage_error("keys export", prog->usage, "export writes a keystore only");
        else
            st = keys_copy("keys export", prog, &o, o.key);
    }
    os_cfg_free(prog, &o);
    return st;
}
