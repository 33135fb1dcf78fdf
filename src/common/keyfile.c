/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Raw secp256k1 private-key files, shared by `openseed keygen`/`address` and the daemons' node_key
 * and wallet_key. Reading opens without following a final symbolic link and without blocking on
 * a FIFO, then judges the opened file itself (fstat), not the path, so the checks cannot race a
 * rename: a regular file with no group or other mode bits, at most KEYFILE_MAX bytes, holding one
 * key; a wallet may also be a v3 keystore of up to OS_KEYSTORE_MAX bytes, which keystore.c
 * decrypts. Writing creates the file exclusively with mode 0600 from the start, so the key is
 * never readable by others even for a moment, and never replaces whatever already has the name.
 * Every buffer that held key text or bytes is wiped before returning; reasons never quote the
 * content.
 */
#include "openseed/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "openseed/ct.h"
#include "openseed/hex.h"

/* "0x", 64 hex digits, "\r\n", and slack so an over-long file is told apart from a key. */
#define KEYFILE_MAX 128
#define KEY_TEXT_LEN (2 + 2 * OS_SECP_PRIVKEY_LEN)
/* Room for a path in a reason; longer ones are cut with "...". */
#define SHOWN_PATH_LEN 320

/* The path as it may appear in a one-line reason: control characters as '?', cut when long. */
static void show_path(char out[SHOWN_PATH_LEN], const char *path)
{
    size_t n = 0, i;

    for (i = 0; path[i] != '\0' && n + 4 < SHOWN_PATH_LEN; i++) {
        unsigned char c = (unsigned char)path[i];
        out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (path[i] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Decodes the content of a key file in place; false when it is not exactly one valid key. */
static bool parse_key(uint8_t priv[OS_SECP_PRIVKEY_LEN], char *buf, size_t n)
{
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    if (n != KEY_TEXT_LEN || buf[0] != '0' || buf[1] != 'x')
        return false;
    buf[n] = '\0';
    /* An embedded NUL shortens the string, so the exact-length decode refuses it. */
    return os_hex_decode_exact(priv, OS_SECP_PRIVKEY_LEN, buf) == OS_OK &&
           os_secp_privkey_check(priv) == OS_OK;
}

/* A raw key file's content buf[0..n) (n <= KEYFILE_MAX, buf with room for a NUL after it) into
 * priv, or the reason it is not one. */
static os_err raw_key(uint8_t priv[OS_SECP_PRIVKEY_LEN], char *buf, size_t n, const char *shown,
                      char *err, size_t errcap)
{
    if (parse_key(priv, buf, n))
        return OS_OK;
    return os_errf(err, errcap, OS_ERR_INVALID,
                   "%s does not hold a secp256k1 private key (0x and 64 hex digits, non-zero and "
                   "below the group order)",
                   shown);
}

/* Reads all of fd into buf[0..cap); *n is what was read. -1 with errno on a read error. */
static int read_all(int fd, char *buf, size_t cap, size_t *n)
{
    *n = 0;
    while (*n < cap) {
        ssize_t got = read(fd, buf + *n, cap - *n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        *n += (size_t)got;
    }
    return 0;
}

/*
 * Opens path for reading as a private file: not through a final symlink, not blocking on a FIFO,
 * and judged by fstat on the opened file (a regular file with no group or other mode bits).
 */
static os_err open_private(int *fd_out, const char *path, const char *shown, char *err,
                           size_t errcap)
{
    struct stat sb;
    int fd, e;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        e = errno;
        if (e == ELOOP)
            return os_errf(
                err, errcap, OS_ERR_INVALID,
                "%s is a symbolic link; refusing to follow it (name the file itself)", shown);
        return os_errf(err, errcap, e == ENOENT ? OS_ERR_NOTFOUND : OS_ERR_IO, "cannot open %s: %s",
                       shown, strerror(e));
    }
    if (fstat(fd, &sb) != 0) {
        e = errno;
        close(fd);
        return os_errf(err, errcap, OS_ERR_IO, "cannot stat %s: %s", shown, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return os_errf(err, errcap, OS_ERR_INVALID, "%s is not a regular file", shown);
    }
    if ((sb.st_mode & 077) != 0) {
        close(fd);
        return os_errf(
            err, errcap, OS_ERR_INVALID,
            "%s is accessible by group or others (mode %04o); refusing to use it; run chmod 600 "
            "on it",
            shown, (unsigned)(sb.st_mode & 07777));
    }
    *fd_out = fd;
    return OS_OK;
}

/* Reads all of a private file into out[0..cap); OS_ERR_TOOBIG when it holds cap bytes or more.
 * out is wiped on failure. */
static os_err read_private(char *out, size_t cap, size_t *n, const char *path, const char *shown,
                           char *err, size_t errcap)
{
    os_err rc;
    int fd = -1;

    *n = 0;
    if ((rc = open_private(&fd, path, shown, err, errcap)) != OS_OK)
        return rc;
    if (read_all(fd, out, cap, n) != 0)
        rc = os_errf(err, errcap, OS_ERR_IO, "cannot read %s: %s", shown, strerror(errno));
    else if (*n >= cap)
        rc = os_errf(err, errcap, OS_ERR_TOOBIG, "%s is too long", shown);
    close(fd);
    if (rc != OS_OK)
        os_wipe(out, cap);
    return rc;
}

os_err os_keyfile_read_private(char *out, size_t cap, size_t *len, const char *path, char *err,
                               size_t errcap)
{
    char shown[SHOWN_PATH_LEN];
    size_t n = 0;
    os_err rc;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (len != NULL)
        *len = 0;
    if (out == NULL || cap < 2)
        return os_errf(err, errcap, OS_ERR_INVALID, "no buffer for the secret");
    out[0] = '\0';
    if (path == NULL || path[0] == '\0')
        return os_errf(err, errcap, OS_ERR_INVALID, "no secret file given");
    show_path(shown, path);
    if ((rc = read_private(out, cap, &n, path, shown, err, errcap)) != OS_OK)
        return rc;
    out[n] = '\0'; /* read_private leaves n < cap */
    if (len != NULL)
        *len = n;
    return OS_OK;
}

/* os_keyfile_read_private, then one line: a final newline (or CRLF) dropped, no other control
 * character, not empty. */
os_err os_keyfile_read_text(char *out, size_t cap, size_t *len, const char *path, char *err,
                            size_t errcap)
{
    char shown[SHOWN_PATH_LEN];
    size_t n = 0;
    os_err rc;

    if (len != NULL)
        *len = 0;
    if ((rc = os_keyfile_read_private(out, cap, &n, path, err, errcap)) != OS_OK)
        return rc;
    show_path(shown, path);
    if (n > 0 && out[n - 1] == '\n') {
        n--;
        if (n > 0 && out[n - 1] == '\r')
            n--;
    }
    out[n] = '\0';
    if (n == 0)
        rc = os_errf(err, errcap, OS_ERR_INVALID, "%s is empty", shown);
    for (size_t i = 0; rc == OS_OK && i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f)
            rc = os_errf(err, errcap, OS_ERR_INVALID,
                         "%s holds more than one line or control characters", shown);
    }
    if (rc != OS_OK)
        os_wipe(out, cap);
    else if (len != NULL)
        *len = n;
    return rc;
}

os_err os_keyfile_read_secp(uint8_t priv[OS_SECP_PRIVKEY_LEN], const char *path, char *err,
                            size_t errcap)
{
    char buf[KEYFILE_MAX + 1], shown[SHOWN_PATH_LEN];
    size_t n = 0;
    os_err rc;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (priv == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no buffer for the key");
    os_wipe(priv, OS_SECP_PRIVKEY_LEN);
    if (path == NULL || path[0] == '\0')
        return os_errf(err, errcap, OS_ERR_INVALID, "no key file given");
    show_path(shown, path);
    rc = read_private(buf, sizeof(buf), &n, path, shown, err, errcap);
    if (rc == OS_ERR_TOOBIG)
        return os_errf(err, errcap, OS_ERR_INVALID, "%s is too long to be a key file", shown);
    if (rc != OS_OK)
        return rc;
    if (buf[0] == '{') {
        rc = os_errf(err, errcap, OS_ERR_INVALID,
                     "%s looks like a v3 keystore; only raw key files (0x and 64 hex digits) are "
                     "supported so far",
                     shown);
    } else {
        rc = raw_key(priv, buf, n, shown, err, errcap);
    }
    os_wipe(buf, sizeof(buf));
    if (rc != OS_OK)
        os_wipe(priv, OS_SECP_PRIVKEY_LEN);
    return rc;
}

os_err os_keyfile_read_wallet(uint8_t priv[OS_SECP_PRIVKEY_LEN], const char *path,
                              const char *password, char *err, size_t errcap)
{
    char shown[SHOWN_PATH_LEN], reason[256];
    const size_t cap = OS_KEYSTORE_MAX + 1;
    size_t n = 0, i = 0;
    char *buf;
    os_err rc;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (priv == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no buffer for the key");
    os_wipe(priv, OS_SECP_PRIVKEY_LEN);
    if (path == NULL || path[0] == '\0')
        return os_errf(err, errcap, OS_ERR_INVALID, "no key file given");
    show_path(shown, path);
    if ((buf = malloc(cap)) == NULL)
        return os_errf(err, errcap, OS_ERR_NOMEM, "out of memory reading %s", shown);
    rc = read_private(buf, cap, &n, path, shown, err, errcap);
    if (rc == OS_ERR_TOOBIG) {
        free(buf);
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%s is too long to be a key file or a keystore (at most %d bytes)", shown,
                       OS_KEYSTORE_MAX);
    }
    if (rc != OS_OK) {
        free(buf);
        return rc;
    }
    while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i < n && buf[i] == '{') {
        if (password == NULL)
            rc = os_errf(err, errcap, OS_ERR_INVALID,
                         "%s is a keystore: give its password with wallet_password_file", shown);
        else if ((rc = os_keystore_decrypt(priv, buf, n, password, strlen(password), reason,
                                           sizeof(reason))) != OS_OK)
            rc = os_errf(err, errcap, rc, "keystore %s: %s", shown, reason);
    } else if (n > KEYFILE_MAX) {
        rc = os_errf(err, errcap, OS_ERR_INVALID, "%s is too long to be a key file", shown);
    } else {
        rc = raw_key(priv, buf, n, shown, err, errcap);
    }
    os_wipe(buf, cap);
    free(buf);
    if (rc != OS_OK)
        os_wipe(priv, OS_SECP_PRIVKEY_LEN);
    return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync of the file makes its bytes durable, this makes its name durable. Best effort: some file
 * systems refuse fsync on a directory, and the key itself is already on disk. */
static void sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t len;
    int fd;

    if (slash == NULL) {
        dir[0] = '.';
        len = 1;
    } else {
        len = slash == path ? 1 : (size_t)(slash - path);
        if (len >= sizeof(dir))
            return;
        memcpy(dir, path, len);
    }
    dir[len] = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)fsync(fd);
    close(fd);
}

os_err os_keyfile_write_text(const char *path, const char *text, char *err, size_t errcap)
{
    char shown[SHOWN_PATH_LEN];
    size_t len;
    os_err rc;
    int fd, e;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (path == NULL || path[0] == '\0')
        return os_errf(err, errcap, OS_ERR_INVALID, "no secret file given");
    show_path(shown, path);
    if (text == NULL || (len = strlen(text)) == 0 || strchr(text, '\n') != NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "not one line of text; %s was not created",
                       shown);

    /* O_EXCL: never replace an existing file nor write through a planted (even dangling)
     * symlink; mode 0600 from birth, so there is no window in which others can read it. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
    if (fd < 0) {
        e = errno;
        if (e == EEXIST)
            return os_errf(err, errcap, OS_ERR_EXISTS,
                           "%s already exists; refusing to overwrite it", shown);
        return os_errf(err, errcap, OS_ERR_IO, "cannot create %s: %s", shown, strerror(e));
    }
    rc = OS_OK;
    if (write_all(fd, text, len) != 0 || write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
        e = errno;
        close(fd);
        unlink(path);
        rc = os_errf(err, errcap, OS_ERR_IO, "cannot write %s: %s", shown, strerror(e));
    } else if (close(fd) != 0) {
        e = errno;
        unlink(path);
        rc = os_errf(err, errcap, OS_ERR_IO, "cannot write %s: %s", shown, strerror(e));
    } else {
        sync_parent(path);
    }
    return rc;
}

os_err os_keyfile_write_secp(const char *path, const uint8_t priv[OS_SECP_PRIVKEY_LEN], char *err,
                             size_t errcap)
{
    char text[OS_HEX_LEN(OS_SECP_PRIVKEY_LEN) + 1], shown[SHOWN_PATH_LEN];
    os_err rc;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (path == NULL || path[0] == '\0')
        return os_errf(err, errcap, OS_ERR_INVALID, "no key file given");
    show_path(shown, path);
    if (priv == NULL || os_secp_privkey_check(priv) != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "not a valid secp256k1 private key; %s was not created", shown);
    if (os_hex_encode(text, sizeof(text), priv, OS_SECP_PRIVKEY_LEN, 1) != OS_OK) {
        os_wipe(text, sizeof(text));
        return os_errf(err, errcap, OS_ERR_INTERNAL, "cannot encode the key for %s", shown);
    }
    rc = os_keyfile_write_text(path, text, err, errcap);
    os_wipe(text, sizeof(text));
    return rc;
}
