#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything OpenSeed needs to build and test on Debian 12: the C libraries and build tools
# from apt, and the pinned npm tools (anvil, forge, solc-js, ethers, OpenZeppelin, SDK clients) into
# tools/node_modules. Idempotent and quiet when everything is already present; safe to re-run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

apt_packages=(
    build-essential cmake pkg-config git
    libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libjansson-dev libsecp256k1-dev
    libsodium-dev libsqlite3-dev libcmocka-dev libinih-dev sqlite3 curl ca-certificates
    clang libclang-rt-14-dev valgrind chromium fonts-dejavu-core systemd
)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)

missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm tools: reinstall only when the lock file changed since the last install.
stamp="$root/tools/node_modules/.openseed-stamp"
want=$(sha256sum "$root/tools/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing npm tools into tools/node_modules"
    (cd "$root/tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
fi
for bin in "@foundry-rs/anvil-linux-amd64/bin/anvil" "@foundry-rs/forge-linux-amd64/bin/forge" \
    "@foundry-rs/cast-linux-amd64/bin/cast"; do
    [ -x "$root/tools/node_modules/$bin" ] || { echo "setup: $bin missing after npm install" >&2; exit 1; }
done
