# SPDX-License-Identifier: Apache-2.0
# Checks scripts/install.sh and the CMake install rules against the programs they install: a
# staged install (--destdir, --no-build, the build dir's programs) has the four programs, the docs,
# the example configs in /etc/openseed (0640, in a 0750 directory), the state directories (0700)
# and the units; the units' ExecStart programs, --config files and state directories are the
# installed ones; each installed daemon passes --check-config on its installed config; every key
# the daemon has is in its example, and the defaults the example shows are the daemon's; a re-run
# keeps an edited config and an edited unit, restores a deleted config and updates an unedited
# unit; another --prefix rewrites the units' paths; and `cmake --install` with DESTDIR puts the
# four programs in bin/. Run by ctest as
#   bash install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: bash install.sh BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
install_sh="$source_dir/scripts/install.sh"
fail() { echo "install crosscheck: FAIL: $*" >&2; exit 1; }
ok() { echo "install crosscheck: $*: ok"; }

programs=(openseed openseed-registry openseed-seller openseed-buyer)
daemons=(registry seller buyer)
for p in "${programs[@]}"; do [ -x "$build_dir/$p" ] || fail "$build_dir/$p not built"; done

tmp=$(mktemp -d /tmp/openseed-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

mode_of() { stat -c %a "$1"; }

# ---- the script's command line -------------------------------------------------------------------

bash "$install_sh" --help | grep -q -- '--destdir DIR' || fail "--help does not list --destdir"
if bash "$install_sh" --bogus >/dev/null 2>&1; then fail "an unknown option was accepted"; fi
if bash "$install_sh" --prefix >/dev/null 2>&1; then fail "--prefix without a value accepted"; fi
if bash "$install_sh" --prefix relative --destdir "$tmp/x" --no-build --build-dir "$build_dir" \
    >/dev/null 2>&1; then fail "a relative --prefix was accepted"; fi
if bash "$install_sh" --destdir "$tmp/x" --no-build --build-dir "$tmp/nothing" >/dev/null 2>&1; then
    fail "--no-build with an empty build dir was accepted"
fi
ok "command line"

# ---- a staged install ------------------------------------------------------------------------------

stage="$tmp/stage"
run_install() {
    bash "$install_sh" --destdir "$stage" --no-build --build-dir "$build_dir" >"$tmp/out" 2>&1 ||
        { cat "$tmp/out" >&2; fail "install.sh --destdir $stage failed"; }
}
run_install
bin="$stage/usr/local/bin"
for p in "${programs[@]}"; do
    [ -x "$bin/$p" ] && [ -f "$bin/$p" ] || fail "$bin/$p missing or not executable"
    cmp -s "$bin/$p" "$build_dir/$p" || fail "$bin/$p is not the build dir's program"
done
doc="$stage/usr/local/share/doc/openseed"
for f in README.md LICENSE protocol.md examples/registry.conf examples/seller.conf examples/buyer.conf; do
    [ -f "$doc/$f" ] || fail "$doc/$f missing"
done
etc="$stage/etc/openseed"
[ "$(mode_of "$etc")" = 750 ] || fail "$etc has mode $(mode_of "$etc"), want 750"
for d in "${daemons[@]}"; do
    [ -f "$etc/$d.conf" ] || fail "$etc/$d.conf missing"
    [ "$(mode_of "$etc/$d.conf")" = 640 ] || fail "$etc/$d.conf has mode $(mode_of "$etc/$d.conf")"
    cmp -s "$etc/$d.conf" "$source_dir/contrib/examples/$d.conf" || fail "$etc/$d.conf differs"
done
for d in registry seller; do
    s="$stage/var/lib/openseed-$d"
    [ -d "$s" ] && [ "$(mode_of "$s")" = 700 ] || fail "$s missing or not 0700"
    grep -Eq "^data_dir = /var/lib/openseed-$d\$" "$etc/$d.conf" ||
        fail "$d.conf does not set data_dir = /var/lib/openseed-$d"
done
ok "staged tree"

# ---- units: present, and naming what was installed ----------------------------------------------------

unit_dir_of() {
    case "$(basename "$1")" in
    openseed-buyer*) echo "$2/usr/local/lib/systemd/user" ;;
    *) echo "$2/etc/systemd/system" ;;
    esac
}
# Checks a placed unit against the staged tree under $2 with programs in $3 (a path in the tree).
check_unit() {
    local u=$1 root=$2 bindir=$3 exe cfg sd
    [ -f "$u" ] || fail "$u missing"
    exe=$(sed -n 's/^ExecStart=[-@!+:]*\([^ ]*\).*/\1/p' "$u" | head -n 1)
    [ -n "$exe" ] || fail "$u has no ExecStart"
    case "$exe" in "$bindir"/*) ;; *) fail "$u runs $exe, not a program in $bindir" ;; esac
    [ -x "$root$exe" ] || fail "$u runs $exe, which the install does not have"
    cfg=$(sed -n 's/^ExecStart=.*--config[ =]\([^ ]*\).*/\1/p' "$u" | head -n 1)
    case "$cfg" in
    "" | *%h* | *'$'*) ;; # none, or in the user's home
    *) [ -f "$root$cfg" ] || fail "$u reads $cfg, which the install does not have" ;;
    esac
    sd=$(sed -n 's/^StateDirectory=\([^ ]*\).*/\1/p' "$u" | head -n 1)
    if [ -n "$sd" ]; then
        [ -d "$root/var/lib/$sd" ] || fail "$u has StateDirectory=$sd, not created"
        [ -z "$cfg" ] || [ ! -f "$root$cfg" ] || grep -Eq "^data_dir = /var/lib/$sd\$" "$root$cfg" ||
            fail "$cfg's data_dir is not the unit's StateDirectory /var/lib/$sd"
        grep -Eq '^User=openseed$' "$u" || fail "$u does not run as User=openseed"
    fi
}
units=()
if [ -d "$source_dir/contrib/systemd" ]; then
    for f in "$source_dir"/contrib/systemd/openseed-{registry,seller,buyer}*.service; do
        [ -f "$f" ] && units+=("$f")
    done
fi
for f in ${units[@]+"${units[@]}"}; do
    check_unit "$(unit_dir_of "$f" "$stage")/$(basename "$f")" "$stage" /usr/local/bin
done
ok "units (${#units[@]})"

# ---- the installed daemons on the installed configs ------------------------------------------------

home="$tmp/home"
mkdir -p "$home/.openseed"
chmod 700 "$home/.openseed"
# the buyer's example names ~/.openseed/wallet.key, which must exist (0600)
HOME="$home" "$bin/openseed" keygen --out "$home/.openseed/wallet.key" >/dev/null ||
    fail "openseed keygen failed"
for d in "${daemons[@]}"; do
    out=$(cd "$tmp" && HOME="$home" "$bin/openseed-$d" --check-config --config "$etc/$d.conf" 2>&1) ||
        fail "openseed-$d --check-config on the installed $d.conf: $out"
    [ "$out" = "configuration OK" ] || fail "openseed-$d --check-config said: $out"

    # every key --print-config lists appears in the example, set or as "# key = default", and
    # every default the example shows is what the daemon prints
    HOME="$home" "$bin/openseed-$d" --print-config --config "$etc/$d.conf" >"$tmp/eff" 2>&1 ||
        fail "openseed-$d --print-config failed: $(cat "$tmp/eff")"
    keys=$(sed -n -e 's/^# \([a-z_0-9]*\) is not set$/\1/p' -e 's/^\([a-z_0-9]*\) = .*/\1/p' "$tmp/eff" | sort -u)
    [ -n "$keys" ] || fail "openseed-$d --print-config printed no keys"
    for k in $keys; do
        grep -Eq "^#? ?$k = " "$etc/$d.conf" || fail "$d.conf does not mention the key $k"
    done
    while IFS= read -r line; do
        k=${line%% = *}
        v=${line#* = }
        # a key the daemon leaves unset has no default: the line is an example
        grep -Fxq "# $k is not set" "$tmp/eff" && continue
        grep -Fxq "$k = $v" "$tmp/eff" ||
            fail "$d.conf shows \"$k = $v\" as the default, openseed-$d has \"$(grep "^$k = " "$tmp/eff" || true)\""
    done < <(sed -n 's/^# \([a-z_0-9]* = .*\)$/\1/p' "$etc/$d.conf")
    # and no key the daemon does not know
    while IFS= read -r k; do
        echo "$keys" | grep -qx "$k" || fail "$d.conf has a key openseed-$d does not know: $k"
    done < <(sed -n 's/^#\{0,1\} \{0,1\}\([a-z_0-9]*\) = .*/\1/p' "$etc/$d.conf" | sort -u)
done
ok "--check-config and keys on the installed configs"

# ---- a re-run: edits kept, deletions restored, unedited units updated --------------------------------

echo "log_level = debug" >>"$etc/registry.conf"
cp "$etc/registry.conf" "$tmp/registry.edited"
rm "$etc/seller.conf"
edited_unit=""
stale_unit=""
if [ ${#units[@]} -ge 1 ]; then
    edited_unit="$(unit_dir_of "${units[0]}" "$stage")/$(basename "${units[0]}")"
    echo "# edited by the admin" >>"$edited_unit"
    cp "$edited_unit" "$tmp/unit.edited"
fi
if [ ${#units[@]} -ge 2 ]; then
    # an older unit that was installed and never edited: the pristine copy matches it
    name=$(basename "${units[1]}")
    stale_unit="$(unit_dir_of "${units[1]}" "$stage")/$name"
    echo "# from an older release" >>"$stale_unit"
    cp "$stale_unit" "$stage/usr/local/share/openseed/systemd/$name"
fi
run_install
cmp -s "$etc/registry.conf" "$tmp/registry.edited" || fail "the edited registry.conf was overwritten"
grep -q "kept $etc/registry.conf" "$tmp/out" || fail "the re-run did not say it kept registry.conf"
cmp -s "$etc/seller.conf" "$source_dir/contrib/examples/seller.conf" || fail "seller.conf not restored"
if [ -n "$edited_unit" ]; then
    cmp -s "$edited_unit" "$tmp/unit.edited" || fail "the edited unit $edited_unit was overwritten"
fi
if [ -n "$stale_unit" ]; then
    cmp -s "$stale_unit" "${units[1]}" || fail "the unedited unit $stale_unit was not updated"
fi
out=$(cd "$tmp" && "$bin/openseed-registry" --check-config --config "$etc/registry.conf" 2>&1) ||
    fail "the edited registry.conf does not check: $out"
ok "re-run"

# ---- another prefix --------------------------------------------------------------------------------

opt="$tmp/opt"
bash "$install_sh" --destdir "$opt" --prefix /opt/openseed --no-build --build-dir "$build_dir" \
    >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; fail "install.sh --prefix /opt/openseed failed"; }
for p in "${programs[@]}"; do [ -x "$opt/opt/openseed/bin/$p" ] || fail "$p not in /opt/openseed/bin"; done
for f in ${units[@]+"${units[@]}"}; do
    case "$(basename "$f")" in
    openseed-buyer*) u="$opt/etc/systemd/user/$(basename "$f")" ;;
    *) u="$opt/etc/systemd/system/$(basename "$f")" ;;
    esac
    check_unit "$u" "$opt" /opt/openseed/bin
done
ok "--prefix /opt/openseed"

# ---- cmake --install with DESTDIR ------------------------------------------------------------------

plain="$tmp/plain"
DESTDIR="$plain" cmake --install "$build_dir" --prefix /usr >"$tmp/out" 2>&1 ||
    { cat "$tmp/out" >&2; fail "cmake --install failed"; }
for p in "${programs[@]}"; do
    [ -x "$plain/usr/bin/$p" ] || fail "cmake --install did not put $p in bin/"
done
[ -f "$plain/usr/share/doc/openseed/examples/seller.conf" ] || fail "cmake --install: no examples"
[ -f "$plain/usr/share/doc/openseed/README.md" ] || fail "cmake --install: no README"
for f in ${units[@]+"${units[@]}"}; do
    case "$(basename "$f")" in
    openseed-buyer*) u="$plain/usr/lib/systemd/user/$(basename "$f")" ;;
    *) u="$plain/usr/lib/systemd/system/$(basename "$f")" ;;
    esac
    cmp -s "$u" "$f" || fail "cmake --install: $u is not contrib/systemd/$(basename "$f")"
done
ok "cmake --install DESTDIR"
