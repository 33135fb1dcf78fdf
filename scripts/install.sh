#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs OpenSeed on Debian 12: builds the three daemons and the CLI (Release, into build-install),
# installs them with `cmake --install` (bin/, docs and example configs in share/doc/openseed), and
# sets the machine up for the systemd units of contrib/systemd: the system user `openseed`, the
# registry's and seller's state directories (/var/lib/openseed-<daemon>, 0700, owned by openseed),
# /etc/openseed/<daemon>.conf from the examples when absent, the registry's and seller's units in
# /etc/systemd/system and the buyer's user unit in <prefix>/lib/systemd/user. Idempotent and safe
# to re-run: an existing config is never overwritten, a unit the admin edited is kept (the new one
# is left next to the pristine copies in <prefix>/share/openseed/systemd), the user is created only
# when missing. `--destdir DIR` stages everything under DIR without users, ownership or systemctl
# (packaging, tests). See --help.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=/usr/local
destdir=""
build_dir="$root/build-install"
build=1
user=openseed
daemons=(registry seller buyer)

usage() {
    cat <<EOF
usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--build-dir DIR] [--no-build]

Builds OpenSeed (Release) and installs it on Debian 12 with a system user, state directories,
example configs in /etc/openseed and the systemd units. Run as root, or with --destdir.

  --prefix DIR     install the programs under DIR (default /usr/local: DIR/bin, DIR/share/doc)
  --destdir DIR    stage every file under DIR (DIR/usr/local/bin, DIR/etc/openseed, ...) and skip
                   what needs root: no user, no chown, no systemctl (for packaging and tests)
  --build-dir DIR  build into DIR, or with --no-build take the programs from DIR
                   (default: build-install in the source tree)
  --no-build       do not configure or build: install what DIR already holds
  -h, --help       print this help

Safe to re-run: existing files in /etc/openseed are never overwritten, nor a unit you edited in
/etc/systemd/system (prefer \`systemctl edit openseed-seller\` to editing the unit).
EOF
}

die() {
    echo "install: $*" >&2
    exit 1
}
say() { echo "install: $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
    --prefix | --destdir | --build-dir)
        [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
        case "$1" in
        --prefix) prefix=$2 ;;
        --destdir) destdir=$2 ;;
        --build-dir) build_dir=$2 ;;
        esac
        shift 2
        ;;
    --prefix=* | --destdir=* | --build-dir=*)
        v=${1#*=}
        [ -n "$v" ] || die "${1%%=*} needs a value"
        case "$1" in
        --prefix=*) prefix=$v ;;
        --destdir=*) destdir=$v ;;
        --build-dir=*) build_dir=$v ;;
        esac
        shift
        ;;
    --no-build) build=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done

case "$prefix" in /*) ;; *) die "--prefix must be an absolute path" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/
if [ -n "$destdir" ]; then
    mkdir -p "$destdir"
    destdir=$(cd "$destdir" && pwd)
    [ "$destdir" != / ] || destdir=""
fi
[ -n "$destdir" ] || [ "$(id -u)" -eq 0 ] || die "run as root (or stage with --destdir DIR)"
case "$build_dir" in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac

# ---- build ----------------------------------------------------------------------------------------

# What building needs and nothing more (no test tools): the -dev packages pull in the runtime
# libraries the programs link.
build_packages=(
    build-essential cmake pkg-config
    libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libjansson-dev libsecp256k1-dev
    libsodium-dev libsqlite3-dev libinih-dev
)

if [ "$build" -eq 1 ]; then
    missing=()
    for p in "${build_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || die "missing build dependencies: ${missing[*]} (apt-get install them)"
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
    say "building into $build_dir"
    cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DOPENSEED_TESTS=OFF >/dev/null
    cmake --build "$build_dir" -j"$(nproc)" >/dev/null
fi
for p in openseed openseed-registry openseed-seller openseed-buyer; do
    [ -x "$build_dir/$p" ] || die "$build_dir/$p is missing: build first, or drop --no-build"
done
[ -f "$build_dir/cmake_install.cmake" ] || die "$build_dir is not a CMake build directory"

# ---- programs and documentation -------------------------------------------------------------------

# The units are placed below (in /etc, with edits kept), not by cmake into lib/systemd.
for component in programs doc; do
    DESTDIR="$destdir" cmake --install "$build_dir" --prefix "$prefix" --component "$component" \
        >/dev/null
done
say "installed the programs in $destdir$prefix/bin"

# ---- user and state directories -------------------------------------------------------------------

if [ -z "$destdir" ]; then
    if ! getent passwd "$user" >/dev/null; then
        if command -v adduser >/dev/null; then
            adduser --system --group --home /var/lib/openseed --no-create-home --quiet "$user"
        else
            useradd --system --user-group --home-dir /var/lib/openseed --no-create-home \
                --shell /usr/sbin/nologin "$user"
        fi
        say "created the system user $user"
    fi
fi

# The units' StateDirectory=openseed-<daemon>: systemd would create them too; made here so that
# the paths in the configs exist before the first start and keys can be put in place.
for d in registry seller; do
    dir="$destdir/var/lib/openseed-$d"
    install -d -m 0700 "$dir"
    chmod 0700 "$dir"
    [ -n "$destdir" ] || chown "$user:$user" "$dir"
done

# ---- configuration ----------------------------------------------------------------------------------

etc="$destdir/etc/openseed"
install -d -m 0750 "$etc"
[ -n "$destdir" ] || chown "root:$user" "$etc"
for d in "${daemons[@]}"; do
    src="$root/contrib/examples/$d.conf"
    dst="$etc/$d.conf"
    [ -f "$src" ] || die "$src is missing"
    if [ -e "$dst" ] || [ -L "$dst" ]; then
        if cmp -s "$src" "$dst"; then
            :
        else
            say "kept $dst (yours); the current example is $prefix/share/doc/openseed/examples/$d.conf"
        fi
        continue
    fi
    # rpc URLs often carry an API key: readable by root and the daemons' group only
    install -m 0640 "$src" "$dst"
    [ -n "$destdir" ] || chown "root:$user" "$dst"
    say "wrote $dst: edit it before starting openseed-$d"
done

# ---- systemd units ----------------------------------------------------------------------------------

units="$root/contrib/systemd"
pristine="$destdir$prefix/share/openseed/systemd"
system_dir="$destdir/etc/systemd/system"
# Only /usr and /usr/local are in systemd's search path for user units under a prefix.
case "$prefix" in
/usr | /usr/local) user_dir="$destdir$prefix/lib/systemd/user" ;;
*) user_dir="$destdir/etc/systemd/user" ;;
esac

# A unit as this prefix runs it: the units name the programs in /usr/local/bin.
render_unit() {
    sed "s#/usr/local/bin/#$prefix/bin/#g" "$1"
}

# Writes the unit to dir/name unless the file there is not the copy we installed last time (the
# admin edited it): then it stays, and says where the new one is.
place_unit() {
    local src=$1 dir=$2 name tmp
    name=$(basename "$src")
    install -d -m 0755 "$pristine" "$dir"
    tmp=$(mktemp)
    render_unit "$src" >"$tmp"
    if [ -e "$dir/$name" ] && ! cmp -s "$dir/$name" "$tmp" &&
        ! { [ -f "$pristine/$name" ] && cmp -s "$dir/$name" "$pristine/$name"; }; then
        say "kept $dir/$name (edited); the new unit is $pristine/$name"
    else
        install -m 0644 "$tmp" "$dir/$name"
    fi
    install -m 0644 "$tmp" "$pristine/$name"
    rm -f "$tmp"
}

placed=0
if [ -d "$units" ]; then
    for f in "$units"/openseed-registry*.service "$units"/openseed-seller*.service; do
        [ -f "$f" ] || continue
        place_unit "$f" "$system_dir"
        placed=1
    done
    for f in "$units"/openseed-buyer*.service; do
        [ -f "$f" ] || continue
        place_unit "$f" "$user_dir"
        placed=1
    done
fi
[ "$placed" -eq 1 ] || say "no units in contrib/systemd: none installed"

# Only a running systemd has units to reload (not a container, a chroot or a staged tree).
if [ -z "$destdir" ] && [ "$placed" -eq 1 ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    systemctl daemon-reload
fi

if [ -z "$destdir" ]; then
    cat <<EOF
install: done. Next:
  edit /etc/openseed/seller.conf (and registry.conf), then check it:
    openseed-seller --config /etc/openseed/seller.conf --check-config
  start:  systemctl enable --now openseed-seller   (or openseed-registry)
  buyer (as each user who runs one; the user unit reads ~/.config/openseed/buyer.conf):
    install -D -m 0600 $prefix/share/doc/openseed/examples/buyer.conf ~/.config/openseed/buyer.conf
    openseed keygen --out ~/.openseed/wallet.key   # then fund it; edit buyer.conf
    systemctl --user enable --now openseed-buyer
EOF
fi
