#!/usr/bin/env bash
# `meson install` into a temporary folder, then the example provider of examples/custom_provider
# is compiled out of tree against it with pkg-config alone, loaded by name by the installed
# `portcullis serve`, and it admits the peer on its list and refuses another.
#
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "install_test: $*" >&2; exit 1; }

meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >/dev/null
pc=$(find "$tmp/root" -name portcullis.pc | head -1)
[[ -n $pc ]] || fail "no portcullis.pc was installed"
prefix=$(sed -n 's/^prefix=//p' "$pc")
root=$tmp/root$prefix
pkg() { PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$root" "$@" portcullis; }
for header in portcullis/repo.h portcullis/provider_registry.h portcullis/config.h; do
  [[ -f $(pkg --variable=includedir)/$header ]] || fail "$header was not installed"
done
[[ -x $root/bin/portcullis ]] || fail "the tool was not installed"
for provider in shared-key document-id; do
  [[ -f $(pkg --variable=plugindir)/libportcullis-auth-$provider.so ]] ||
    fail "the $provider plugin was not installed in plugindir"
done

# Out of tree: nothing from the source tree but the example's one file.
mkdir "$tmp/plugins"
cp "$src/examples/custom_provider/allow_list.cc" "$tmp/"
# shellcheck disable=SC2046  # pkg-config output is a list of flags
g++ -shared -fPIC -fvisibility=hidden $(pkg --cflags) "$tmp/allow_list.cc" $(pkg --libs) \
  -o "$tmp/plugins/libportcullis-auth-allow-list.so"

export LD_LIBRARY_PATH=$(pkg --variable=libdir)
export PORTCULLIS_PLUGIN_PATH=$tmp/plugins
tool=$root/bin/portcullis
cat >"$tmp/server.toml" <<TOML
[network]
listen = "127.0.0.1:0"
[storage]
path = "data"
[auth]
provider = "allow-list"
[auth.allow-list]
peer-id = "server"
allow = ["alice"]
TOML
client() {  # NAME -> a config that claims NAME with the open handshake
  printf '[auth]\nprovider = "open"\n[auth.open]\npeer-id = "%s"\n' "$1" >"$tmp/$1.toml"
}
client alice
client mallory

coproc SERVER { exec "$tool" serve --config "$tmp/server.toml" --json 2>"$tmp/server.log"; }
server_pid=$SERVER_PID
read -r -t 20 ready <&"${SERVER[0]}" || fail "serve did not start: $(cat "$tmp/server.log")"
[[ $ready == *'"provider":"allow-list"'* ]] || fail "serve did not load the plugin: $ready"
address=$(sed -E 's/.*"(127\.0\.0\.1:[0-9]+)".*/\1/' <<<"$ready")

url=$("$tool" doc new --config "$tmp/alice.toml" --connect "$address" --timeout 10) ||
  fail "alice was not admitted"
"$tool" doc set --config "$tmp/alice.toml" --connect "$address" "$url" /ok true
[[ $("$tool" doc get --json --config "$tmp/alice.toml" --connect "$address" "$url") == '{"ok":true}' ]] ||
  fail "alice cannot read her document"
if "$tool" doc get --config "$tmp/mallory.toml" --connect "$address" --timeout 3 "$url" 2>"$tmp/err"; then
  fail "mallory, not on the list, got the document"
fi
grep -q "handshake failed" "$tmp/err" || fail "mallory's refusal was not reported: $(cat "$tmp/err")"

# A plugin of another ABI is refused by name, with both fingerprints.
sed 's/PORTCULLIS_ABI_FINGERPRINT, NAME/"another build", NAME/' \
  "$(pkg --variable=includedir)/portcullis/provider_registry.h" >"$tmp/registry_other_abi.h"
sed 's|<portcullis/provider_registry.h>|"registry_other_abi.h"|' "$tmp/allow_list.cc" >"$tmp/other.cc"
mkdir "$tmp/other"
# shellcheck disable=SC2046
g++ -shared -fPIC -fvisibility=hidden $(pkg --cflags) "$tmp/other.cc" $(pkg --libs) \
  -o "$tmp/other/libportcullis-auth-allow-list.so"
if PORTCULLIS_PLUGIN_PATH=$tmp/other "$tool" serve --config "$tmp/server.toml" 2>"$tmp/err"; then
  fail "a plugin of another ABI was loaded"
fi
grep -q 'ABI mismatch: the plugin was built for "another build"' "$tmp/err" ||
  fail "the ABI mismatch was not reported: $(cat "$tmp/err")"
echo "install_test: ok"
