/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Web3 Secret Storage (version 3) keystores, as geth, ethers and most wallets write them, decrypted
 * into a secp256k1 private key. The file is untrusted until its MAC checks, so everything is
 * bounded before any work is done: the JSON by size and depth, every hex field by length, and the
 * key derivation by its cost (scrypt's memory 128 * r * n and its p, PBKDF2's iterations), so a
 * hostile or corrupted file is refused at once instead of costing gigabytes or hours. The MAC is
 * compared in constant time before anything is decrypted, the plaintext goes straight into the
 * caller's buffer, and the derived key is wiped on every path. Reasons never quote a value from
 * the file, the password or the key.
 */
#include "openseed/keyfile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "openseed/ct.h"
#include "openseed/hex.h"
#include "openseed/json.h"
#include "openseed/keccak.h"

/* Keystores are a few hundred bytes; ethers' x-ethers block nests two levels below the top. */
#define KS_MAX_DEPTH 8
#define KS_DKLEN 32
#define KS_IV_LEN 16
#define KS_CT_LEN 32
#define KS_MAC_LEN 32
#define KS_SALT_MAX 128
/* geth's "standard" scrypt is n = 2^18, r = 8, p = 1 (256 MiB), ethers' n = 2^17, r = 8, p = 1;
 * the caps admit both and stop a file from asking for gigabytes (memory is 128 * r * n bytes). */
#define KS_SCRYPT_MAX_N (1ull << 20)
#define KS_SCRYPT_MAX_R 16
#define KS_SCRYPT_MAX_P 16
#define KS_SCRYPT_MAX_MEM (256ull << 20)
/* geth's PBKDF2 keystores use c = 262144; this is ~40 times that. */
#define KS_PBKDF2_MAX_C 10000000ull

enum ks_kdf { KS_SCRYPT, KS_PBKDF2 };

/* What a keystore asks for, copied out of the JSON. None of it is secret, but it is wiped too. */
typedef struct ks_params {
    enum ks_kdf kdf;
    uint64_t n, r, p; /* scrypt */
    uint64_t c;       /* pbkdf2 */
    uint8_t salt[KS_SALT_MAX];
    size_t salt_len;
    uint8_t iv[KS_IV_LEN];
    uint8_t ct[KS_CT_LEN];
    uint8_t mac[KS_MAC_LEN];
    bool has_addr;
    uint8_t addr[OS_ADDRESS_LEN];
} ks_params;

/* Required string field of hex (an optional 0x, either case) of min..max bytes, into out. */
static os_err hex_field(uint8_t *out, size_t *len, size_t min, size_t max, const json_t *obj,
                        const char *key, const char *where, char *err, size_t errcap)
{
    const char *s;
    size_t n = 0;
    os_err rc = os_json_at_str(&s, obj, key, 2 + 2 * max, where, err, errcap);

    if (rc != OS_OK)
        return rc;
    if (os_hex_decode(out, max, &n, s, strlen(s)) != OS_OK || n < min) {
        if (min == max)
            return os_errf(err, errcap, OS_ERR_INVALID, "%sfield \"%s\" must be %zu bytes of hex",
                           where, key, max);
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "%sfield \"%s\" must be %zu to %zu bytes of hex", where, key, min, max);
    }
    if (len != NULL)
        *len = n;
    return OS_OK;
}

/* The optional top-level "address": 40 hex digits with or without 0x; mixed case must carry a
 * valid EIP-55 checksum, as anywhere else an address is read. */
static os_err address_field(ks_params *k, const json_t *root, char *err, size_t errcap)
{
    char tmp[OS_JSON_ERR_LEN], text[OS_ADDRESS_STR_LEN];
    const char *s = NULL;
    os_err rc = os_json_opt_str(&s, root, "address", 64, tmp, sizeof(tmp));

    if (rc != OS_OK)
        return os_json_err_at(rc, "", tmp, err, errcap);
    if (s == NULL)
        return OS_OK;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    if (strlen(s) != 2 * OS_ADDRESS_LEN)
        rc = OS_ERR_INVALID;
    else if (snprintf(text, sizeof(text), "0x%s", s) != OS_ADDRESS_STR_LEN - 1)
        rc = OS_ERR_INVALID;
    else
        rc = os_eip55_parse(k->addr, text);
    if (rc != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID,
                       "field \"address\" must be 40 hex digits (with a valid EIP-55 checksum "
                       "when in mixed case)");
    k->has_addr = true;
    return OS_OK;
}

static os_err scrypt_params(ks_params *k, const json_t *kp, char *err, size_t errcap)
{
    static const char where[] = "crypto.kdfparams: ";
    os_err rc;

    if ((rc = os_json_at_u64(&k->n, kp, "n", 2, UINT64_MAX, where, err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&k->r, kp, "r", 1, UINT64_MAX, where, err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&k->p, kp, "p", 1, UINT64_MAX, where, err, errcap)) != OS_OK)
        return rc;
    if ((k->n & (k->n - 1)) != 0)
        return os_errf(err, errcap, OS_ERR_INVALID, "%sfield \"n\" must be a power of 2", where);
    if (k->n > KS_SCRYPT_MAX_N || k->r > KS_SCRYPT_MAX_R || k->p > KS_SCRYPT_MAX_P ||
        128 * k->r * k->n > KS_SCRYPT_MAX_MEM)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "%sscrypt parameters beyond what is accepted (n <= 2^20, r <= %d, p <= %d "
                       "and at most %llu MiB); refusing to derive the key",
                       where, KS_SCRYPT_MAX_R, KS_SCRYPT_MAX_P, KS_SCRYPT_MAX_MEM >> 20);
    return OS_OK;
}

static os_err pbkdf2_params(ks_params *k, const json_t *kp, char *err, size_t errcap)
{
    static const char where[] = "crypto.kdfparams: ";
    const char *prf;
    os_err rc;

    if ((rc = os_json_at_str(&prf, kp, "prf", 64, where, err, errcap)) != OS_OK)
        return rc;
    if (strcmp(prf, "hmac-sha256") != 0)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "%sthis prf is not supported (only hmac-sha256)", where);
    if ((rc = os_json_at_u64(&k->c, kp, "c", 1, UINT64_MAX, where, err, errcap)) != OS_OK)
        return rc;
    if (k->c > KS_PBKDF2_MAX_C)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "%sfield \"c\" is above %llu iterations; refusing to derive the key", where,
                       KS_PBKDF2_MAX_C);
    return OS_OK;
}

/* Reads and bounds everything the decryption needs; nothing is derived yet. */
static os_err parse(ks_params *k, const json_t *root, char *err, size_t errcap)
{
    const json_t *lower = NULL, *upper = NULL, *crypto, *cp, *kp;
    const char *cipher, *kdf;
    char tmp[OS_JSON_ERR_LEN];
    uint64_t version, dklen;
    os_err rc;

    if (!json_is_object(root))
        return os_errf(err, errcap, OS_ERR_INVALID, "not a JSON object");
    if ((rc = os_json_at_u64(&version, root, "version", 0, UINT64_MAX, "", err, errcap)) != OS_OK)
        return rc;
    if (version != 3)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "keystore version %llu is not supported (only version 3)",
                       (unsigned long long)version);
    if ((rc = address_field(k, root, err, errcap)) != OS_OK)
        return rc;

    /* v3 says "crypto"; ethers and some older tools write "Crypto". Both at once is ambiguous. */
    if ((rc = os_json_opt_object(&lower, root, "crypto", tmp, sizeof(tmp))) != OS_OK ||
        (rc = os_json_opt_object(&upper, root, "Crypto", tmp, sizeof(tmp))) != OS_OK)
        return os_json_err_at(rc, "", tmp, err, errcap);
    if (lower != NULL && upper != NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "both \"crypto\" and \"Crypto\" are present");
    if ((crypto = lower != NULL ? lower : upper) == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "missing field \"crypto\"");

    if ((rc = os_json_at_str(&cipher, crypto, "cipher", 64, "crypto: ", err, errcap)) != OS_OK)
        return rc;
    if (strcmp(cipher, "aes-128-ctr") != 0)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "crypto: this cipher is not supported (only aes-128-ctr)");
    if ((rc = os_json_at_object(&cp, crypto, "cipherparams", "crypto: ", err, errcap)) != OS_OK ||
        (rc = hex_field(k->iv, NULL, KS_IV_LEN, KS_IV_LEN, cp, "iv", "crypto.cipherparams: ", err,
                        errcap)) != OS_OK ||
        (rc = hex_field(k->ct, NULL, KS_CT_LEN, KS_CT_LEN, crypto, "ciphertext", "crypto: ", err,
                        errcap)) != OS_OK ||
        (rc = hex_field(k->mac, NULL, KS_MAC_LEN, KS_MAC_LEN, crypto, "mac", "crypto: ", err,
                        errcap)) != OS_OK)
        return rc;

    if ((rc = os_json_at_str(&kdf, crypto, "kdf", 64, "crypto: ", err, errcap)) != OS_OK)
        return rc;
    if (strcmp(kdf, "scrypt") == 0)
        k->kdf = KS_SCRYPT;
    else if (strcmp(kdf, "pbkdf2") == 0)
        k->kdf = KS_PBKDF2;
    else
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "crypto: this kdf is not supported (only scrypt and pbkdf2)");
    if ((rc = os_json_at_object(&kp, crypto, "kdfparams", "crypto: ", err, errcap)) != OS_OK ||
        (rc = os_json_at_u64(&dklen, kp, "dklen", 0, UINT64_MAX, "crypto.kdfparams: ", err,
                             errcap)) != OS_OK)
        return rc;
    if (dklen != KS_DKLEN)
        return os_errf(err, errcap, OS_ERR_UNSUPPORTED,
                       "crypto.kdfparams: field \"dklen\" must be %d", KS_DKLEN);
    if ((rc = hex_field(k->salt, &k->salt_len, 1, KS_SALT_MAX, kp, "salt",
                        "crypto.kdfparams: ", err, errcap)) != OS_OK)
        return rc;
    return k->kdf == KS_SCRYPT ? scrypt_params(k, kp, err, errcap)
                               : pbkdf2_params(k, kp, err, errcap);
}

static os_err derive(uint8_t dk[KS_DKLEN], const ks_params *k, const char *password,
                     size_t password_len, char *err, size_t errcap)
{
    if (k->kdf == KS_SCRYPT) {
        /* Bounded above (n <= 2^20, r and p <= 16), so the casts are exact. */
        errno = 0;
        if (crypto_pwhash_scryptsalsa208sha256_ll((const uint8_t *)password, password_len, k->salt,
                                                  k->salt_len, k->n, (uint32_t)k->r, (uint32_t)k->p,
                                                  dk, KS_DKLEN) != 0)
            return os_errf(err, errcap, errno == ENOMEM ? OS_ERR_NOMEM : OS_ERR_CRYPTO,
                           "scrypt failed");
        return OS_OK;
    }
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, k->salt, (int)k->salt_len, (int)k->c,
                          EVP_sha256(), KS_DKLEN, dk) != 1)
        return os_errf(err, errcap, OS_ERR_CRYPTO, "PBKDF2 failed");
    return OS_OK;
}

/* AES-128-CTR with the first half of dk as the key and the whole IV as the initial counter. */
static os_err decrypt(uint8_t out[KS_CT_LEN], const uint8_t dk[KS_DKLEN], const ks_params *k,
                      char *err, size_t errcap)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    bool ok;

    if (c == NULL)
        return os_errf(err, errcap, OS_ERR_NOMEM, "out of memory");
    ok = EVP_DecryptInit_ex(c, EVP_aes_128_ctr(), NULL, dk, k->iv) == 1 &&
         EVP_DecryptUpdate(c, out, &n1, k->ct, KS_CT_LEN) == 1 && n1 == KS_CT_LEN &&
         EVP_DecryptFinal_ex(c, out + n1, &n2) == 1 && n2 == 0;
    EVP_CIPHER_CTX_free(c); /* cleanses the key schedule */
    return ok ? OS_OK : os_errf(err, errcap, OS_ERR_CRYPTO, "AES-128-CTR failed");
}

os_err os_keystore_decrypt(uint8_t priv[OS_SECP_PRIVKEY_LEN], const char *json, size_t json_len,
                           const char *password, size_t password_len, char *err, size_t errcap)
{
    uint8_t dk[KS_DKLEN], mac[OS_KECCAK256_LEN], addr[OS_ADDRESS_LEN];
    char tmp[OS_JSON_ERR_LEN];
    json_t *root = NULL;
    os_keccak_ctx kc;
    ks_params k;
    os_err rc;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (priv == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no buffer for the key");
    os_wipe(priv, OS_SECP_PRIVKEY_LEN);
    if (json == NULL || (password == NULL && password_len > 0))
        return os_errf(err, errcap, OS_ERR_INVALID, "no keystore or password given");
    if (password == NULL)
        password = ""; /* an empty password is allowed; the KDFs want a pointer */
    if (password_len > OS_KEYSTORE_MAX_PASSWORD)
        return os_errf(err, errcap, OS_ERR_TOOBIG, "password longer than %d bytes",
                       OS_KEYSTORE_MAX_PASSWORD);

    rc = os_json_parse(&root, json, json_len, OS_KEYSTORE_MAX, KS_MAX_DEPTH, tmp, sizeof(tmp));
    if (rc != OS_OK)
        return os_errf(err, errcap, rc, "not a keystore: %s", tmp);
    memset(&k, 0, sizeof(k));
    rc = parse(&k, root, err, errcap);
    json_decref(root);
    if (rc == OS_OK)
        rc = derive(dk, &k, password, password_len, err, errcap);
    if (rc == OS_OK) {
        /* MAC = keccak256(dk[16..32) || ciphertext), checked before anything is decrypted. */
        os_keccak256_init(&kc);
        os_keccak256_update(&kc, dk + 16, 16);
        os_keccak256_update(&kc, k.ct, KS_CT_LEN);
        os_keccak256_final(&kc, mac);
        if (!os_ct_eq(mac, k.mac, KS_MAC_LEN))
            rc = os_errf(err, errcap, OS_ERR_CRYPTO, "wrong password or corrupted keystore");
    }
    if (rc == OS_OK)
        rc = decrypt(priv, dk, &k, err, errcap);
    if (rc == OS_OK && os_secp_privkey_check(priv) != OS_OK)
        rc = os_errf(err, errcap, OS_ERR_INVALID,
                     "the keystore does not hold a valid secp256k1 private key");
    if (rc == OS_OK && k.has_addr) {
        if ((rc = os_secp_address(addr, priv)) != OS_OK)
            rc = os_errf(err, errcap, rc, "cannot derive the key's address");
        else if (!os_ct_eq(addr, k.addr, OS_ADDRESS_LEN))
            rc = os_errf(err, errcap, OS_ERR_INVALID,
                         "field \"address\" does not match the decrypted key's address");
    }
    os_wipe(dk, sizeof(dk));
    os_wipe(mac, sizeof(mac));
    os_wipe(&k, sizeof(k));
    if (rc != OS_OK)
        os_wipe(priv, OS_SECP_PRIVKEY_LEN);
    return rc;
}

/* AES-128-CTR encryption of one key, the inverse of decrypt() above. */
static os_err encrypt_ctr(uint8_t out[KS_CT_LEN], const uint8_t key[16], const uint8_t iv[KS_IV_LEN],
                          const uint8_t in[KS_CT_LEN], char *err, size_t errcap)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    bool ok;

    if (c == NULL)
        return os_errf(err, errcap, OS_ERR_NOMEM, "out of memory");
    ok = EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, key, iv) == 1 &&
         EVP_EncryptUpdate(c, out, &n1, in, KS_CT_LEN) == 1 && n1 == KS_CT_LEN &&
         EVP_EncryptFinal_ex(c, out + n1, &n2) == 1 && n2 == 0;
    EVP_CIPHER_CTX_free(c);
    return ok ? OS_OK : os_errf(err, errcap, OS_ERR_CRYPTO, "AES-128-CTR failed");
}

/* geth's salt length; the IV is AES's block. */
#define KS_SALT_LEN 32
#define KS_JSON_CAP 1024

os_err os_keystore_encrypt(char **json_out, const uint8_t priv[OS_SECP_PRIVKEY_LEN],
                           const char *password, size_t password_len, unsigned scrypt_log2_n,
                           char *err, size_t errcap)
{
    uint8_t dk[KS_DKLEN], salt[KS_SALT_LEN], iv[KS_IV_LEN], ct[KS_CT_LEN], mac[KS_MAC_LEN];
    uint8_t addr[OS_ADDRESS_LEN], uuid[16];
    char salt_hex[OS_HEX_LEN(KS_SALT_LEN)], iv_hex[OS_HEX_LEN(KS_IV_LEN)];
    char ct_hex[OS_HEX_LEN(KS_CT_LEN)], mac_hex[OS_HEX_LEN(KS_MAC_LEN)];
    char addr_hex[OS_HEX_LEN(OS_ADDRESS_LEN)], u[OS_HEX_LEN(16)];
    char *buf = NULL;
    os_keccak_ctx kc;
    os_err rc = OS_OK;
    int n;

    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (json_out == NULL)
        return os_errf(err, errcap, OS_ERR_INVALID, "no place for the keystore");
    *json_out = NULL;
    if (priv == NULL || (password == NULL && password_len > 0))
        return os_errf(err, errcap, OS_ERR_INVALID, "no key or password given");
    if (password == NULL)
        password = "";
    if (password_len > OS_KEYSTORE_MAX_PASSWORD)
        return os_errf(err, errcap, OS_ERR_TOOBIG, "password longer than %d bytes",
                       OS_KEYSTORE_MAX_PASSWORD);
    if (scrypt_log2_n < OS_KEYSTORE_MIN_LOG2_N || scrypt_log2_n > OS_KEYSTORE_MAX_LOG2_N)
        return os_errf(err, errcap, OS_ERR_INVALID, "scrypt cost must be 2^%d to 2^%d",
                       OS_KEYSTORE_MIN_LOG2_N, OS_KEYSTORE_MAX_LOG2_N);
    if (os_secp_privkey_check(priv) != OS_OK || os_secp_address(addr, priv) != OS_OK)
        return os_errf(err, errcap, OS_ERR_INVALID, "not a valid secp256k1 private key");

    randombytes_buf(salt, sizeof(salt));
    randombytes_buf(iv, sizeof(iv));
    randombytes_buf(uuid, sizeof(uuid));
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */

    errno = 0;
    if (crypto_pwhash_scryptsalsa208sha256_ll((const uint8_t *)password, password_len, salt,
                                              sizeof(salt), 1ull << scrypt_log2_n, 8, 1, dk,
                                              KS_DKLEN) != 0)
        rc = os_errf(err, errcap, errno == ENOMEM ? OS_ERR_NOMEM : OS_ERR_CRYPTO, "scrypt failed");
    if (rc == OS_OK)
        rc = encrypt_ctr(ct, dk, iv, priv, err, errcap);
    if (rc == OS_OK) {
        os_keccak256_init(&kc);
        os_keccak256_update(&kc, dk + 16, 16);
        os_keccak256_update(&kc, ct, KS_CT_LEN);
        os_keccak256_final(&kc, mac);
        if (os_hex_encode(salt_hex, sizeof(salt_hex), salt, sizeof(salt), 0) != OS_OK ||
            os_hex_encode(iv_hex, sizeof(iv_hex), iv, sizeof(iv), 0) != OS_OK ||
            os_hex_encode(ct_hex, sizeof(ct_hex), ct, sizeof(ct), 0) != OS_OK ||
            os_hex_encode(mac_hex, sizeof(mac_hex), mac, sizeof(mac), 0) != OS_OK ||
            os_hex_encode(addr_hex, sizeof(addr_hex), addr, sizeof(addr), 0) != OS_OK ||
            os_hex_encode(u, sizeof(u), uuid, sizeof(uuid), 0) != OS_OK)
            rc = os_errf(err, errcap, OS_ERR_INTERNAL, "hex encoding failed");
        else if ((buf = malloc(KS_JSON_CAP)) == NULL)
            rc = os_errf(err, errcap, OS_ERR_NOMEM, "out of memory");
    }
    if (rc == OS_OK) {
        n = snprintf(buf, KS_JSON_CAP,
                     "{\"address\":\"%s\",\"crypto\":{\"cipher\":\"aes-128-ctr\","
                     "\"cipherparams\":{\"iv\":\"%s\"},\"ciphertext\":\"%s\",\"kdf\":\"scrypt\","
                     "\"kdfparams\":{\"dklen\":%d,\"n\":%llu,\"p\":1,\"r\":8,\"salt\":\"%s\"},"
                     "\"mac\":\"%s\"},\"id\":\"%.8s-%.4s-%.4s-%.4s-%.12s\",\"version\":3}",
                     addr_hex, iv_hex, ct_hex, KS_DKLEN, 1ull << scrypt_log2_n, salt_hex,
                     mac_hex, u, u + 8, u + 12, u + 16, u + 20);
        if (n < 0 || n >= KS_JSON_CAP) {
            free(buf);
            buf = NULL;
            rc = os_errf(err, errcap, OS_ERR_INTERNAL, "keystore does not fit");
        }
    }
    os_wipe(dk, sizeof(dk));
    os_wipe(&kc, sizeof(kc));
    os_wipe(ct_hex, sizeof(ct_hex));
    os_wipe(ct, sizeof(ct));
    *json_out = buf;
    return rc;
}
