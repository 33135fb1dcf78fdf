/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private-key files as `openseed keygen` writes them and the daemons' node_key and wallet_key
 * read them: "0x", 64 hex digits (either case) and an optional newline ("\n" or "\r\n"), in a
 * regular file that only its owner may access (mode 0600 or 0400). Reading refuses anything else
 * before looking at the content; writing creates a new file and never replaces one. Neither
 * follows a symbolic link in the last path component.
 *
 * Error reasons go to the caller's err buffer as one line that names the path (control
 * characters shown as '?') and never any part of the file's content, so they can be printed or
 * logged as they are.
 */
#ifndef OPENSEED_KEYFILE_H
#define OPENSEED_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"
#include "openseed/secp.h"

/*
 * Reads the secp256k1 private key in the file at path into priv (the caller's buffer; keep
 * long-lived keys in sodium_malloc'd memory and wipe them when done). Every copy made on the way
 * is wiped; on failure priv is zeroed too. Returns OS_OK, or with a reason in err:
 *   OS_ERR_NOTFOUND when there is no such file; OS_ERR_IO when it cannot be opened or read;
 *   OS_ERR_INVALID when it is a symbolic link, not a regular file, accessible by group or others
 *   (any of the mode bits 077), or does not hold "0x" + 64 hex digits of a valid key (non-zero
 *   and below the group order).
 */
OS_WUR os_err os_keyfile_read_secp(uint8_t priv[OS_SECP_PRIVKEY_LEN], const char *path, char *err,
                                   size_t errcap);

/*
 * Creates the file at path, mode 0600 (narrowed further by the umask), holding priv as
 * "0x" + 64 lower-case hex digits and a newline, and syncs it (and, best effort, its directory)
 * to disk. Returns OS_OK, or with a reason in err: OS_ERR_EXISTS when anything (a file, a
 * directory, a symbolic link, even a dangling one) already has that name, which is left
 * untouched; OS_ERR_INVALID when priv is not a valid key (nothing is created); OS_ERR_IO when the
 * file cannot be created or written (a partly written file is removed).
 */
OS_WUR os_err os_keyfile_write_secp(const char *path, const uint8_t priv[OS_SECP_PRIVKEY_LEN],
                                    char *err, size_t errcap);

/*
 * Reads a one-line secret file (an API key, a bearer token) with the same checks as a key file:
 * a regular file, not a symlink, no group or other permission bits. One trailing newline (LF or
 * CRLF) is dropped; the text must be non-empty and printable, and the file (its newline included)
 * smaller than cap bytes. *len (may be NULL)
 * gets its length. OS_ERR_NOTFOUND when missing, OS_ERR_TOOBIG when longer, OS_ERR_INVALID for the
 * rest; out is wiped on failure. The caller wipes out when done.
 */
OS_WUR os_err os_keyfile_read_text(char *out, size_t cap, size_t *len, const char *path, char *err,
                                   size_t errcap);

/* Creates path with mode 0600 holding text and a newline; never replaces an existing file
 * (OS_ERR_EXISTS). text is one line. */
OS_WUR os_err os_keyfile_write_text(const char *path, const char *text, char *err, size_t errcap);

#endif
