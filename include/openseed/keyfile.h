/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private-key files as `openseed keygen` writes them and the daemons' node_key and wallet_key
 * read them: "0x", 64 hex digits (either case) and an optional newline ("\n" or "\r\n"), in a
 * regular file that only its owner may access (mode 0600 or 0400). Reading refuses anything else
 * before looking at the content; writing creates a new file and never replaces one. Neither
 * follows a symbolic link in the last path component.
 *
 * A wallet key may instead be a Web3 Secret Storage (v3) keystore, read by
 * os_keyfile_read_wallet with its password (os_keystore_decrypt decrypts one held in memory).
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

/*
 * Reads a whole private file whose content is not one of the formats above (a TLS private key in
 * PEM, say) with the same checks: a regular file, not a symlink, no group or other permission
 * bits. out[0..*len) gets the bytes as they are, NUL-terminated; the file must be smaller than cap
 * bytes (OS_ERR_TOOBIG otherwise). OS_ERR_NOTFOUND when missing, OS_ERR_IO when it cannot be
 * opened or read, OS_ERR_INVALID for the rest; out is wiped on failure. The caller parses the
 * content and wipes out when done.
 */
OS_WUR os_err os_keyfile_read_private(char *out, size_t cap, size_t *len, const char *path,
                                      char *err, size_t errcap);

/* Creates path with mode 0600 holding text and a newline; never replaces an existing file
 * (OS_ERR_EXISTS). text is one line. */
OS_WUR os_err os_keyfile_write_text(const char *path, const char *text, char *err, size_t errcap);

/* ---- Web3 Secret Storage (v3) keystores (keystore.c) ---- */

/* The largest keystore read, in bytes; real ones are under 1 KiB. */
#define OS_KEYSTORE_MAX (64 * 1024)
/* The longest password accepted, in bytes. */
#define OS_KEYSTORE_MAX_PASSWORD 4096

/*
 * Decrypts the Web3 Secret Storage v3 keystore json[0..json_len) with password[0..password_len)
 * (password may be NULL when password_len is 0) into priv, the caller's buffer. Accepted: version
 * 3; "crypto" or "Crypto"; cipher aes-128-ctr; kdf scrypt (n a power of 2 up to 2^20, r and p up to
 * 16, 128 * r * n at most 256 MiB) or pbkdf2 (prf hmac-sha256, c up to 10,000,000); dklen 32;
 * a 32-byte ciphertext. The MAC is checked in constant time before decryption, and an "address"
 * field, when present, must be the key's. Unknown fields are ignored. Every intermediate is wiped;
 * on failure priv is zeroed. Returns OS_OK, or with a reason in err that quotes neither the file,
 * the password nor the key:
 *   OS_ERR_CRYPTO when the MAC does not match (wrong password, or a damaged file);
 *   OS_ERR_UNSUPPORTED for another version, cipher, kdf or prf, or KDF parameters beyond the caps
 *   (refused before any work); OS_ERR_TOOBIG when json is longer than OS_KEYSTORE_MAX or nests
 *   deeper than 8, or the password is longer than OS_KEYSTORE_MAX_PASSWORD; OS_ERR_NOMEM;
 *   OS_ERR_INVALID for anything malformed or missing, a plaintext that is not a valid key, or an
 *   address that does not match.
 */
OS_WUR os_err os_keystore_decrypt(uint8_t priv[OS_SECP_PRIVKEY_LEN], const char *json,
                                  size_t json_len, const char *password, size_t password_len,
                                  char *err, size_t errcap);

/* The scrypt cost exponents os_keystore_encrypt accepts: 2^18 (geth's standard, 256 MiB with
 * r = 8) is the most os_keystore_decrypt takes; below 2^10 is only for tests. */
#define OS_KEYSTORE_MIN_LOG2_N 1
#define OS_KEYSTORE_MAX_LOG2_N 18

/*
 * Encrypts priv into a new Web3 Secret Storage v3 keystore with password[0..password_len)
 * (password may be NULL when password_len is 0): scrypt with n = 2^scrypt_log2_n, r = 8, p = 1,
 * dklen 32 and a random 32-byte salt; aes-128-ctr with a random IV; mac = keccak256(dk[16..32) ||
 * ciphertext); lower-case hex without 0x, an "address" field, a random (v4) UUID "id" and
 * version 3, as geth writes it. *json_out gets the NUL-terminated JSON (one line, no newline),
 * owned by the caller (free()); NULL on failure. The derived key and every copy are wiped.
 * Returns OS_OK, or with a reason in err: OS_ERR_INVALID for an invalid key, a NULL argument or
 * scrypt_log2_n outside OS_KEYSTORE_MIN_LOG2_N..OS_KEYSTORE_MAX_LOG2_N; OS_ERR_TOOBIG for a
 * password longer than OS_KEYSTORE_MAX_PASSWORD; OS_ERR_NOMEM; OS_ERR_CRYPTO when scrypt or AES
 * fails.
 */
OS_WUR os_err os_keystore_encrypt(char **json_out, const uint8_t priv[OS_SECP_PRIVKEY_LEN],
                                  const char *password, size_t password_len,
                                  unsigned scrypt_log2_n, char *err, size_t errcap);

/*
 * Reads a wallet key from the file at path, with the same file checks as os_keyfile_read_secp
 * (a regular file, not a symlink, no group or other mode bits, at most OS_KEYSTORE_MAX bytes):
 * a v3 keystore when its first non-blank byte is '{', decrypted with password (NUL-terminated),
 * else a raw key file exactly as os_keyfile_read_secp reads it. A keystore with password NULL is
 * OS_ERR_INVALID; a password given for a raw key file is not used. priv is the caller's buffer,
 * zeroed on failure; the file's bytes are wiped before returning. Errors are
 * os_keyfile_read_secp's and os_keystore_decrypt's, the latter prefixed with the path.
 */
OS_WUR os_err os_keyfile_read_wallet(uint8_t priv[OS_SECP_PRIVKEY_LEN], const char *path,
                                     const char *password, char *err, size_t errcap);

#endif
