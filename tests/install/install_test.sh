#!/usr/bin/env bash
# `meson install` into a temporary folder, then, against that install only:
#   - the headers an embedding application needs are all there, and they include only each other,
#     the C++ library and Boost (no Cap'n Proto, kj, libsodium, fmt or spdlog);
#   - every program of examples/embedding is built out of tree twice, with pkg-config and c++ and
#     with CMake's find_package(portcullis), and two_peers syncs a document over TCP loopback;
#   - the example provider of examples/custom_provider is compiled with pkg-config alone, loaded
#     by name by the installed `portcullis serve`, and it admits the peer on its list and refuses
#     another; a plugin of another ABI is refused;
#   - with clang++-16 on the machine, the headers, the example plugin and two_peers compile with
#     it too, and that two_peers syncs as well.
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
step() { echo "install_test: $*"; }

meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >/dev/null
pc=$(find "$tmp/root" -name portcullis.pc | head -1)
[[ -n $pc ]] || fail "no portcullis.pc was installed"
prefix=$(sed -n 's/^prefix=//p' "$pc")
root=$tmp/root$prefix
export PKG_CONFIG_PATH=$(dirname "$pc")
pkg() { pkg-config --define-variable=prefix="$root" "$@"; }
include=$(pkg --variable=includedir portcullis)
libdir=$(pkg --variable=libdir portcullis)
# What an application embedding a Repo links: TCP, both storage adapters, a provider.
components=(portcullis-network-tcp portcullis-storage-fs portcullis-storage-memory
            portcullis-shared-key)
headers=(portcullis/repo.h portcullis/provider_registry.h portcullis/config.h
         portcullis/abi_config.h portcullis/adapters/tcp_network.h
         portcullis/adapters/fs_storage.h portcullis/adapters/memory_storage.h
         portcullis/providers/shared_key.h portcullis/providers/document_id.h
         portcullis/providers/team.h portcullis/providers/online.h)
for header in "${headers[@]}"; do
  [[ -f $include/$header ]] || fail "$header was not installed"
done
for component in "${components[@]}" portcullis-document-id portcullis-team portcullis-online; do
  pkg --exists "$component" || fail "no $component.pc was installed"
done
[[ -x $root/bin/portcullis ]] || fail "the tool was not installed"
for provider in shared-key document-id team online; do
  [[ -f $(pkg --variable=plugindir portcullis)/libportcullis-auth-$provider.so ]] ||
    fail "the $provider plugin was not installed in plugindir"
done
cmake_config=$(find "$root" -name portcullisConfig.cmake | head -1)
[[ -n $cmake_config ]] || fail "no portcullisConfig.cmake was installed"
[[ -f $(dirname "$cmake_config")/portcullisConfigVersion.cmake ]] ||
  fail "no portcullisConfigVersion.cmake was installed"

# Public headers never include Cap'n Proto, kj, libsodium, fmt or spdlog, nor anything of the
# source tree: one file that includes them all compiles with the install's include folder alone.
if grep -rEn '#include [<"](capnp|kj|fmt|spdlog|sodium)' "$include/portcullis"; then
  fail "an installed header includes a library that is not part of the public interface"
fi
(cd "$include" && find portcullis -name '*.h' | sort | sed 's/.*/#include <&>/') >"$tmp/all_headers.cc"
# shellcheck disable=SC2046  # pkg-config output is a list of flags
c++ -fsyntax-only $(pkg --cflags portcullis) "$tmp/all_headers.cc" ||
  fail "the installed headers do not compile on their own"

# The embedding examples, out of tree: nothing from the source tree but examples/embedding.
cp -r "$src/examples/embedding" "$tmp/app"
export LD_LIBRARY_PATH=$libdir
step "building examples/embedding with pkg-config"
mkdir "$tmp/app/pkg-config"
for program in "$tmp"/app/*.cc; do
  name=$(basename "$program" .cc)
  # shellcheck disable=SC2046
  c++ "$program" $(pkg --cflags --libs "${components[@]}") -o "$tmp/app/pkg-config/$name" ||
    fail "examples/embedding/$name.cc does not build with pkg-config"
done
step "building examples/embedding with CMake"
cmake -S "$tmp/app" -B "$tmp/app/cmake" -DCMAKE_PREFIX_PATH="$root" >"$tmp/cmake.log" 2>&1 ||
  fail "cmake cannot configure examples/embedding: $(cat "$tmp/cmake.log")"
cmake --build "$tmp/app/cmake" >>"$tmp/cmake.log" 2>&1 ||
  fail "examples/embedding does not build with CMake: $(cat "$tmp/cmake.log")"

two_peers_syncs() {  # BINARY: it runs, exits 0 and says bob read what alice wrote
  local out
  out=$(timeout 60 "$1" 2>&1) || fail "$1 failed: $out"
  grep -qF 'bob read {"greeting":"hello from alice"}' <<<"$out" || fail "$1 did not sync: $out"
}
two_peers_syncs "$tmp/app/pkg-config/two_peers"
two_peers_syncs "$tmp/app/cmake/two_peers"

# The example plugin, out of tree.
mkdir "$tmp/plugins"
cp "$src/examples/custom_provider/allow_list.cc" "$tmp/"
# shellcheck disable=SC2046
g++ -shared -fPIC -fvisibility=hidden $(pkg --cflags portcullis) "$tmp/allow_list.cc" \
  $(pkg --libs portcullis) -o "$tmp/plugins/libportcullis-auth-allow-list.so"

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
  "$include/portcullis/provider_registry.h" >"$tmp/registry_other_abi.h"
sed 's|<portcullis/provider_registry.h>|"registry_other_abi.h"|' "$tmp/allow_list.cc" >"$tmp/other.cc"
mkdir "$tmp/other"
# shellcheck disable=SC2046
g++ -shared -fPIC -fvisibility=hidden $(pkg --cflags portcullis) "$tmp/other.cc" \
  $(pkg --libs portcullis) -o "$tmp/other/libportcullis-auth-allow-list.so"
if PORTCULLIS_PLUGIN_PATH=$tmp/other "$tool" serve --config "$tmp/server.toml" 2>"$tmp/err"; then
  fail "a plugin of another ABI was loaded"
fi
grep -q 'ABI mismatch: the plugin was built for "another build"' "$tmp/err" ||
  fail "the ABI mismatch was not reported: $(cat "$tmp/err")"

# Debian's clang 16 (scripts/setup installs it): the public headers, the example plugin and
# two_peers, which then syncs like the g++ build.
if command -v clang++-16 >/dev/null; then
  step "compiling with clang++-16"
  # shellcheck disable=SC2046
  clang++-16 -fsyntax-only $(pkg --cflags portcullis) "$tmp/all_headers.cc" ||
    fail "the installed headers do not compile with clang++-16"
  # shellcheck disable=SC2046
  clang++-16 -shared -fPIC -fvisibility=hidden $(pkg --cflags portcullis) "$tmp/allow_list.cc" \
    $(pkg --libs portcullis) -o "$tmp/allow_list_clang.so" ||
    fail "examples/custom_provider/allow_list.cc does not build with clang++-16"
  # shellcheck disable=SC2046
  clang++-16 "$tmp/app/two_peers.cc" $(pkg --cflags --libs "${components[@]}") \
    -o "$tmp/two_peers_clang" || fail "two_peers.cc does not build with clang++-16"
  two_peers_syncs "$tmp/two_peers_clang"
else
  step "clang++-16 not found: the clang build is skipped (scripts/setup installs it)"
fi
echo "install_test: ok"
