# SPDX-License-Identifier: Apache-2.0
# Cross-checks the v3 keystores `openseed keys` writes (os_keystore_encrypt) and reads
# (os_keystore_decrypt) against independent implementations: ethers 6 from tools/node_modules
# and foundry's cast (both pinned in tools/). Each direction must give the same key and
# address, and a wrong password must be refused by both. Run by ctest as
#   bash keystore.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: bash keystore.sh BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
os="$build_dir/openseed"
tools="$source_dir/tools"
fail() { echo "keystore crosscheck: FAIL: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || fail "node is not installed (needed to run ethers)"
[ -f "$tools/node_modules/ethers/package.json" ] || fail "ethers not found under $tools/node_modules"
[ -x "$os" ] || fail "$os not built"

tmp=$(mktemp -d /tmp/openseed-keystore-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
umask 077
cd "$tmp"
printf 'correct horse battery staple\n' > pw
printf 'wrong password\n' > badpw

# 1. ours -> ethers: a keystore written by `openseed keys new --keystore` opens in ethers with the
#    same address, and not with a wrong password.
addr=$("$os" keys new --out ours.json --keystore --password-file pw --scrypt-log2n 12)
NODE_PATH="$tools/node_modules" node -e '
const { Wallet } = require("ethers");
const fs = require("fs");
const json = fs.readFileSync("ours.json", "utf8");
const w = Wallet.fromEncryptedJsonSync(json, "correct horse battery staple");
if (w.address !== process.argv[1]) { console.error("address", w.address, "!=", process.argv[1]); process.exit(1); }
const j = JSON.parse(json);
if (j.version !== 3 || !/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(j.id)) { console.error("bad id/version"); process.exit(1); }
try { Wallet.fromEncryptedJsonSync(json, "wrong password"); console.error("wrong password accepted"); process.exit(1); } catch (e) {}
fs.writeFileSync("ours.key", w.privateKey + "\n", { mode: 0o600 });
' "$addr" || fail "ethers could not open our keystore"
# the raw key ethers recovered imports back to the same address
[ "$("$os" keys show --key ours.key)" = "$addr" ] || fail "ethers' key differs from ours"
echo "ours -> ethers: ok ($addr)"

# 2. ethers -> ours: ethers' keystore (scrypt 2^12 and its default 2^17) opens with ours.
NODE_PATH="$tools/node_modules" node -e '
const { Wallet, encryptKeystoreJsonSync } = require("ethers");
const fs = require("fs");
const w = Wallet.createRandom();
const small = encryptKeystoreJsonSync({ address: w.address, privateKey: w.privateKey }, "correct horse battery staple", { scrypt: { N: 4096 } });
fs.writeFileSync("ethers-small.json", small, { mode: 0o600 });
fs.writeFileSync("ethers-default.json", w.encryptSync("correct horse battery staple"), { mode: 0o600 });
fs.writeFileSync("ethers.addr", w.address);
fs.writeFileSync("ethers.key", w.privateKey.slice(2));
' || fail "ethers could not write keystores"
want=$(cat ethers.addr)
for f in ethers-small.json ethers-default.json; do
    got=$("$os" keys show --key "$f" --password-file pw) || fail "ours could not open $f"
    [ "$got" = "$want" ] || fail "$f: address $got, ethers says $want"
    if "$os" keys show --key "$f" --password-file badpw 2>/dev/null; then
        fail "$f opened with a wrong password"
    fi
done
"$os" keys import --from ethers-small.json --out ethers-imported.key --password-file pw >/dev/null
[ "$(tr -d '\n' < ethers-imported.key)" = "0x$(cat ethers.key)" ] || fail "imported key differs from ethers' key"
echo "ethers -> ours: ok ($want)"

# 3. cast, pinned in tools/ next to anvil and forge ($OPENSEED_CAST overrides it).
cast=${OPENSEED_CAST:-$tools/node_modules/@foundry-rs/cast-linux-amd64/bin/cast}
"$cast" --version >/dev/null 2>&1 || fail "cast does not run ($cast): run scripts/setup.sh"
mkdir -p ks
cp ours.json ks/ours
out=$("$cast" wallet decrypt-keystore --keystore-dir ks ours --unsafe-password 'correct horse battery staple')
case "$out" in *"$(tr -d '\n' < ours.key)"*) ;; *) fail "cast decrypted another key from ours.json" ;; esac
if "$cast" wallet decrypt-keystore --keystore-dir ks ours --unsafe-password 'wrong password' >/dev/null 2>&1; then
    fail "cast opened our keystore with a wrong password"
fi
echo "ours -> cast: ok"

"$cast" wallet import imported --private-key "$(tr -d '\n' < ours.key)" --keystore-dir ks \
    --unsafe-password 'correct horse battery staple' >/dev/null
"$cast" wallet new ks fresh --unsafe-password 'correct horse battery staple' > fresh.out
chmod 600 ks/imported ks/fresh # cast writes 0644; our reader insists on 0600
[ "$("$os" keys show --key ks/imported --password-file pw)" = "$addr" ] || fail "cast import: address differs"
fresh_addr=$(sed -n 's/^Address: *//p' fresh.out | tr -d ' ')
got=$("$os" keys show --key ks/fresh --password-file pw) || fail "ours could not open cast's new keystore"
[ "$got" = "$fresh_addr" ] || fail "cast wallet new: address $got, cast says $fresh_addr"
if "$os" keys show --key ks/fresh --password-file badpw 2>/dev/null; then
    fail "cast's keystore opened with a wrong password"
fi
echo "cast -> ours: ok ($fresh_addr)"
