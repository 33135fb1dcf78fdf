#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The systemd units in contrib/systemd, checked by systemd's own tools: `systemd-analyze verify`
# (system units as a system manager would load them, the buyer's as a user manager would) on
# copies whose ExecStart points at this build's binaries (verify checks that the binary exists),
# and `systemd-analyze security --offline` with a threshold on the system units' exposure. verify
# reports most unit errors (unknown keys, bad values) as warnings with exit status 0, so any line
# it prints about our units is a failure too; the script first proves that on a broken copy, so a
# checker that stopped catching errors fails rather than passes. Then what issue #11 asks of the
# units, read from the files: Type=notify with ExecReload sending SIGHUP, WatchdogSec=,
# Restart=on-failure, the stop timeout above the daemon's drain, and the hardening list.
#
# Usage: bash systemd_units.sh BUILD_DIR SOURCE_DIR (ctest runs it so).
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
units="$src/contrib/systemd"

# Not a skip: a green run must mean the units were verified (scripts/setup.sh installs systemd).
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "FAIL: systemd-analyze is not installed (run scripts/setup.sh: apt package systemd)" >&2
    exit 1
fi

tmp=$(mktemp -d /tmp/openseed-units-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -m 0700 "$tmp/run" "$tmp/system" "$tmp/user" "$tmp/broken"
fail=0

problem() {
    echo "FAIL: $*" >&2
    fail=1
}

for d in registry seller buyer; do
    [ -x "$build/openseed-$d" ] || { echo "FAIL: $build/openseed-$d is not built" >&2; exit 1; }
    [ -f "$units/openseed-$d.service" ] || { echo "FAIL: no $units/openseed-$d.service" >&2; exit 1; }
done

# The unit with its ExecStart= binary moved from /usr/local/bin to the build directory.
relocate() { # unit-file out-file
    sed -e "s#^ExecStart=/usr/local/bin/openseed-#ExecStart=$build/openseed-#" "$1" >"$2"
    grep -q "^ExecStart=$build/openseed-" "$2" || problem "$(basename "$1"): ExecStart= is not /usr/local/bin/openseed-..."
}

# Runs verify (mode: system or user) on the given files; prints what it said; status 1 when it
# failed or said anything about a unit of ours.
verify() {
    local mode=$1 out rc=0
    shift
    if [ "$mode" = user ]; then
        out=$(XDG_RUNTIME_DIR="$tmp/run" systemd-analyze --user verify --man=no "$@" 2>&1) || rc=$?
    else
        out=$(systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
    fi
    [ -n "$out" ] && printf '%s\n' "$out"
    if [ "$rc" -ne 0 ] || printf '%s\n' "$out" | grep -q 'openseed-'; then
        return 1
    fi
    return 0
}

# 1. The checker catches errors: a copy with an unknown key and a bad value must be refused.
relocate "$units/openseed-registry.service" "$tmp/broken/openseed-registry.service"
sed -i -e 's/^Restart=on-failure/Restart=sometimes/' -e 's/^\[Service\]/[Service]\nWatchdogSecs=30s/' \
    "$tmp/broken/openseed-registry.service"
if verify system "$tmp/broken/openseed-registry.service" >/dev/null; then
    problem "systemd-analyze verify did not notice a broken unit: this check would pass anything"
fi
relocate "$units/openseed-seller.service" "$tmp/broken/openseed-seller.service"
sed -i -e "s#^ExecStart=$build/openseed-seller#ExecStart=$build/openseed-nonexistent#" \
    "$tmp/broken/openseed-seller.service"
if verify system "$tmp/broken/openseed-seller.service" >/dev/null; then
    problem "systemd-analyze verify did not notice a missing ExecStart binary"
fi

# 2. The real units.
relocate "$units/openseed-registry.service" "$tmp/system/openseed-registry.service"
relocate "$units/openseed-seller.service" "$tmp/system/openseed-seller.service"
relocate "$units/openseed-buyer.service" "$tmp/user/openseed-buyer.service"
verify system "$tmp/system/openseed-registry.service" "$tmp/system/openseed-seller.service" ||
    problem "systemd-analyze verify: the system units"
verify user "$tmp/user/openseed-buyer.service" || problem "systemd-analyze --user verify: the buyer's unit"

# Exposure as `systemd-analyze security` scores it (0 best .. 10): the system units stay "OK".
for d in registry seller; do
    if ! out=$(systemd-analyze security --offline=true --threshold=25 --no-pager \
        "$tmp/system/openseed-$d.service" 2>&1); then
        printf '%s\n' "$out" | tail -3
        problem "openseed-$d.service: exposure above 2.5"
    else
        printf '%s\n' "$out" | grep 'Overall exposure' || true
    fi
done

# 3. What the units must say, from the files themselves.
want() { # unit line...
    local u=$1 line
    shift
    for line in "$@"; do
        grep -qxF -- "$line" "$units/$u" || problem "$u: missing \"$line\""
    done
}
# TimeoutStopSec in seconds ("30s", "45", "1min" forms).
stop_timeout() {
    local v
    v=$(sed -n 's/^TimeoutStopSec=//p' "$units/$1" | tail -1)
    case "$v" in
    *min) echo $((${v%min} * 60)) ;;
    *s) echo "${v%s}" ;;
    '') echo 0 ;;
    *) echo "$v" ;;
    esac
}
common=("Type=notify" "NotifyAccess=main" 'ExecReload=/bin/kill -HUP $MAINPID' "Restart=on-failure"
    "WatchdogSec=30s" "NoNewPrivileges=yes" "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"
    "SystemCallFilter=@system-service" "MemoryDenyWriteExecute=yes")
for d in registry seller; do
    want "openseed-$d.service" "${common[@]}" \
        "ExecStart=/usr/local/bin/openseed-$d --config /etc/openseed/$d.conf" \
        "User=openseed" "StateDirectory=openseed-$d" "ProtectSystem=strict" "PrivateTmp=yes" \
        "WantedBy=multi-user.target"
done
want openseed-buyer.service "${common[@]}" \
    "ExecStart=/usr/local/bin/openseed-buyer --config %h/.config/openseed/buyer.conf" \
    "WantedBy=default.target"
# above each daemon's drain (registry 5 s, seller 10 s, buyer 5 s) plus the cut and the books
for pair in registry:5 seller:10 buyer:5; do
    d=${pair%%:*}
    t=$(stop_timeout "openseed-$d.service")
    [ "$t" -ge $((${pair#*:} + 10)) ] || problem "openseed-$d.service: TimeoutStopSec=${t}s is not well above the ${pair#*:} s drain"
done

if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "systemd units OK"
