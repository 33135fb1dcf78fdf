/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HKDF-SHA256 (RFC 5869) on libsodium's HMAC-SHA256, which 1.0.18 has while HKDF itself is absent.
 * HPKE and Oblivious HTTP derive every key through it. Besides the usual one-buffer calls there are
 * vectored ("v") variants that take the input as a list of parts, so labelled derivations such as
 * HPKE's "HPKE-v1" || suite_id || label || ikm need no scratch buffer and no allocation.
 */
#ifndef OPENSEED_HKDF_H
#define OPENSEED_HKDF_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

#define OS_HKDF_SHA256_LEN 32                             /* HashLen: PRK and HMAC output size */
#define OS_HKDF_SHA256_MAX_OKM (255 * OS_HKDF_SHA256_LEN) /* RFC 5869 §2.3: L <= 255 * HashLen */

/* One piece of a message fed to HMAC; data may be NULL only when len is 0. */
typedef struct os_hkdf_part {
    const void *data;
    size_t len;
} os_hkdf_part;

/*
 * HKDF-Extract: prk = HMAC-SHA256(salt, ikm). An empty salt (salt_len 0, salt may be NULL) means
 * HashLen zero bytes, as the RFC says. The caller owns prk and should wipe it when done.
 * OS_ERR_INVALID for a NULL prk or a NULL buffer with a non-zero length.
 */
OS_WUR os_err os_hkdf_sha256_extract(uint8_t prk[OS_HKDF_SHA256_LEN], const uint8_t *salt,
                                     size_t salt_len, const uint8_t *ikm, size_t ikm_len);

/* HKDF-Extract with ikm given as the concatenation of n_parts parts. */
OS_WUR os_err os_hkdf_sha256_extractv(uint8_t prk[OS_HKDF_SHA256_LEN], const uint8_t *salt,
                                      size_t salt_len, const os_hkdf_part *ikm, size_t n_parts);

/*
 * HKDF-Expand: writes okm_len bytes of output keying material derived from prk and info. okm may
 * alias prk. OS_ERR_RANGE when okm_len exceeds OS_HKDF_SHA256_MAX_OKM; okm_len 0 writes nothing.
 */
OS_WUR os_err os_hkdf_sha256_expand(uint8_t *okm, size_t okm_len,
                                    const uint8_t prk[OS_HKDF_SHA256_LEN], const uint8_t *info,
                                    size_t info_len);

/* HKDF-Expand with info given as the concatenation of n_parts parts. */
OS_WUR os_err os_hkdf_sha256_expandv(uint8_t *okm, size_t okm_len,
                                     const uint8_t prk[OS_HKDF_SHA256_LEN],
                                     const os_hkdf_part *info, size_t n_parts);

#endif
