# SPDX-License-Identifier: Apache-2.0
# Checks that the SDK works for someone outside this tree: `cmake --install --component sdk` into a
# staging prefix gives the public headers, the static libraries, openseed.pc and openseed-sim; the
# two examples then build from their sources with nothing but the staged headers and
# `pkg-config` (no -I into the source tree, -Werror), and the binaries so built answer as
# the in-tree ones do: usage errors exit 2, a bad price exits 1 with the Offering builder's message,
# an unreachable registry exits 1 saying so. (tests/integration/test_sdk_examples runs them against
# a real network.) Run by ctest as
#   bash sdk_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: bash sdk_install.sh BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
fail() { echo "sdk_install crosscheck: FAIL: $*" >&2; exit 1; }
ok() { echo "sdk_install crosscheck: $*: ok"; }

tmp=$(mktemp -d /tmp/openseed-sdk-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build_dir" --prefix "$prefix" --component sdk >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install --component sdk failed"; }
for h in offering network seller_node registry_node buyer_node devchain record err log; do
    [ -f "$prefix/include/openseed/$h.h" ] || fail "no include/openseed/$h.h"
done
pc=$(find "$prefix" -name openseed.pc -print -quit)
[ -n "$pc" ] || fail "no openseed.pc installed"
for lib in openseed openseed_buyer openseed_seller openseed_registry openseed_common; do
    [ -f "$(dirname "$(dirname "$pc")")/lib$lib.a" ] || fail "no lib$lib.a next to openseed.pc"
done
[ -x "$prefix/bin/openseed-sim" ] || fail "openseed-sim is not installed with the SDK"
# No bare library names in the system's lib/.
if find "$prefix" -name 'libcommon.a' -o -name '*_core.a' | grep -q .; then
    fail "an unprefixed library was installed"
fi
ok "staged install ($(find "$prefix" -type f | wc -l) files)"

export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs openseed) || fail "pkg-config cannot resolve openseed"
case $flags in *"$source_dir"*) fail "pkg-config points into the source tree: $flags" ;; esac
for ex in embedded_seller list_peers; do
    # shellcheck disable=SC2086 # flags are words
    cc -std=c11 -Wall -Wextra -Werror -o "$tmp/$ex" "$source_dir/examples/$ex.c" $flags \
        2>"$tmp/$ex.cc" || { cat "$tmp/$ex.cc" >&2; fail "examples/$ex.c does not build against the install"; }
done
ok "both examples build with pkg-config alone"

expect() { # WANT_STATUS PATTERN CMD...: runs CMD, checks its exit status and that stderr matches
    local want=$1 pattern=$2 st=0
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || st=$?
    [ "$st" = "$want" ] || { cat "$tmp/out" "$tmp/err" >&2; fail "$* exited $st, not $want"; }
    grep -qiE "$pattern" "$tmp/err" || { cat "$tmp/err" >&2; fail "$*: stderr lacks /$pattern/"; }
}
addr=0x0000000000000000000000000000000000000001
expect 2 "rpc" "$tmp/embedded_seller" --registry http://127.0.0.1:1 --chain-id 31337 \
    --escrow "$addr" --usdc "$addr" --data-dir "$tmp/seller"
expect 1 "price|USDC" "$tmp/embedded_seller" --registry http://127.0.0.1:1 --rpc http://127.0.0.1:1 \
    --chain-id 31337 --escrow "$addr" --usdc "$addr" --data-dir "$tmp/seller" --input-price abc \
    --output-price 1
expect 1 "registry|reach|answer|connect" "$tmp/list_peers" --registry http://127.0.0.1:1 --chain-id 31337
ok "the installed-SDK builds answer like the in-tree ones"
