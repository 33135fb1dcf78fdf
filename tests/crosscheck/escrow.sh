#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Cross-checks the escrow bindings' signatures against ethers 6 (escrow.js explains what): seeded
# random SpendingAuth vouchers signed by os_voucher_sign must verify with ethers' verifyTypedData,
# and openWithAuthorization's EIP-3009 signatures from os_escrow_sign_open_auth likewise. The C
# side is a small driver compiled here against the build's libcommon.a (with the build's sanitizer
# flags), since it exists only for this check.
# Usage: bash escrow.sh BUILD_DIR SOURCE_DIR [N] [SEED]; env OPENSEED_CROSSCHECK_SEED overrides
# SEED (default: from the clock; printed either way). Fails, never skips, when a piece is missing.
set -euo pipefail

build=$(cd "${1:?usage: escrow.sh BUILD_DIR SOURCE_DIR [N] [SEED]}" && pwd)
src=$(cd "${2:?usage: escrow.sh BUILD_DIR SOURCE_DIR [N] [SEED]}" && pwd)
n=${3:-200}
seed=${OPENSEED_CROSSCHECK_SEED:-${4:-$(( $(date +%s) % 4294967296 ))}}
ethers="$src/tools/node_modules/ethers"
lib="$build/libcommon.a"

fail() {
    echo "escrow crosscheck: FAIL: $*" >&2
    exit 1
}
command -v node >/dev/null 2>&1 || fail "node is not installed (needed to run ethers)"
[ -f "$ethers/package.json" ] || fail "ethers not found at $ethers (run npm ci in $src/tools)"
[ -f "$lib" ] || fail "$lib not built (cmake --build $build --target common)"
command -v cc >/dev/null 2>&1 || fail "no C compiler (cc) for the driver"

tmp=$(mktemp -d /tmp/openseed-escrow-xcheck-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# One request per line, hex without 0x and decimal numbers, answered with one line:
#   V priv chain_id escrow channel_id cum nonce meta ethers_sig
#     -> digest our_sig verify(our_sig) verify(ethers_sig) verify(ethers_sig, wrong signer)
#   A payer_priv chain_id escrow token seller signer commitment amount salt after before
#     -> channel_id our_sig
cat >"$tmp/driver.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/escrow.h"
#include "openseed/hex.h"
#include "openseed/init.h"
#include "openseed/secp.h"

static int hex(uint8_t *out, size_t n, const char *s)
{
    return s != NULL && os_hex_decode_exact(out, n, s) == OS_OK ? 0 : -1;
}

static int num(uint64_t *v, const char *s)
{
    char *end;
    if (s == NULL || *s == '\0')
        return -1;
    *v = strtoull(s, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static void put(const uint8_t *p, size_t n)
{
    char buf[OS_HEX_LEN(65)];
    if (os_hex_encode(buf, sizeof(buf), p, n, 0) != OS_OK)
        exit(3);
    printf("%s ", buf);
}

int main(void)
{
    char line[4096];
    if (os_init() != OS_OK)
        return 2;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *f[16] = {0}, *p = line;
        int k = 0;
        line[strcspn(line, "\n")] = '\0';
        while (*p != '\0' && k < 16) {
            f[k++] = p;
            p += strcspn(p, " ");
            if (*p == ' ')
                *p++ = '\0';
        }
        if (k == 9 && strcmp(f[0], "V") == 0) {
            os_voucher v, theirs;
            uint8_t priv[32], escrow[20], addr[20], digest[32];
            uint64_t chain;
            memset(&v, 0, sizeof(v));
            if (hex(priv, 32, f[1]) || num(&chain, f[2]) || hex(escrow, 20, f[3]) ||
                hex(v.channel_id, 32, f[4]) || num(&v.cumulative_amount, f[5]) ||
                num(&v.nonce, f[6]) || hex(v.metadata_hash, 32, f[7]))
                return 4;
            theirs = v;
            if (hex(theirs.sig, 65, f[8]) || os_secp_address(addr, priv) != OS_OK ||
                os_voucher_sign(&v, priv, chain, escrow) != OS_OK)
                return 5;
            os_voucher_digest(digest, &v, chain, escrow);
            put(digest, 32);
            put(v.sig, 65);
            printf("%d ", os_voucher_verify(&v, addr, chain, escrow) == OS_OK);
            printf("%d ", os_voucher_verify(&theirs, addr, chain, escrow) == OS_OK);
            addr[7] ^= 0x10;
            printf("%d\n", os_voucher_verify(&theirs, addr, chain, escrow) == OS_OK);
        } else if (k == 12 && strcmp(f[0], "A") == 0) {
            os_escrow_open_args o;
            os_escrow_open_auth a;
            uint8_t priv[32], escrow[20], token[20], td[32], id[32];
            uint64_t chain, after, before;
            memset(&o, 0, sizeof(o));
            if (hex(priv, 32, f[1]) || num(&chain, f[2]) || hex(escrow, 20, f[3]) ||
                hex(token, 20, f[4]) || hex(o.seller, 20, f[5]) || hex(o.signer, 20, f[6]) ||
                hex(o.commitment, 32, f[7]) || num(&o.amount, f[8]) || hex(o.salt, 32, f[9]) ||
                num(&after, f[10]) || num(&before, f[11]))
                return 4;
            os_token_domain(td, OS_USDC_EIP712_NAME, OS_USDC_EIP712_VERSION, chain, token);
            if (os_escrow_sign_open_auth(&a, id, &o, priv, chain, escrow, td, after, before) !=
                OS_OK)
                return 5;
            put(id, 32);
            put(a.sig, 65);
            printf("\n");
        } else {
            return 6;
        }
        fflush(stdout);
    }
    return 0;
}
CEOF

cflags=(-std=c11 -O1 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$src/include")
if grep -q '^OPENSEED_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    cflags+=(-fsanitize=address,undefined -fno-sanitize-recover=all)
fi
# shellcheck disable=SC2046
cc "${cflags[@]}" -o "$tmp/driver" "$tmp/driver.c" "$lib" \
    $(pkg-config --libs libmicrohttpd libcurl libcrypto jansson libsecp256k1 libsodium sqlite3 inih) \
    -lpthread -lm || fail "cannot build the driver against $lib"

echo "escrow crosscheck: seed $seed, $n vouchers and $n authorizations"
node "$src/tests/crosscheck/escrow.js" "$tmp/driver" "$ethers" "$n" "$seed"
