# Sourced by the interop runners: installs package.json / package-lock.json of SOURCE_DIR into
# NPM_DIR (in the build directory) with `npm ci` when NPM_DIR's copy of the lockfile differs or
# MARKER (a file of an installed package) is missing, and exits 77 (meson: skipped) when node or
# npm is missing. Each runner has its own NPM_DIR, since meson runs tests in parallel.
#   npm_install NAME SOURCE_DIR NPM_DIR MARKER
npm_install() {
  local name=$1 src=$2 npmdir=$3 marker=$4
  for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
      echo "$name: $tool is not installed; skipping"
      exit 77
    fi
  done
  mkdir -p "$npmdir"
  if ! cmp -s "$src/package-lock.json" "$npmdir/package-lock.json" ||
     [[ ! -e $npmdir/node_modules/$marker ]]; then
    cp "$src/package.json" "$src/package-lock.json" "$npmdir/"
    (cd "$npmdir" && npm ci --no-audit --no-fund) || {
      rm -f "$npmdir/package-lock.json"
      echo "$name: npm ci failed" >&2
      exit 1
    }
  fi
}
