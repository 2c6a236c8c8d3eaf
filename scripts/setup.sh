#!/usr/bin/env bash
# Installs what Tessera needs on a fresh machine; each step is skipped when already done.
#   scripts/setup.sh run        what `make run` needs: the wasm target and wasm-bindgen-cli
#   scripts/setup.sh test       that, plus vips, Chromium, s3s-fs and moto
#   scripts/setup.sh npm DIR    `npm ci` in DIR when its lock file changed since the last install
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

npm_ci() {
  # `npm ci` only when the lock file changed since the last install.
  local dir=$1 stamp=$1/node_modules/.tessera-lock
  [ -f "$dir/package-lock.json" ] || return 0
  if ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
    say "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
if [ "$what" = npm ]; then
  npm_ci "$2"
  exit 0
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must be exactly the wasm-bindgen version in Cargo.lock, or the generated glue does not match.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$wb_version" ] || { echo "wasm-bindgen is not in Cargo.lock" >&2; exit 1; }
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
  say "cargo install wasm-bindgen-cli $wb_version"
  cargo install wasm-bindgen-cli --version "$wb_version"
fi

if [ "$what" = test ]; then
  apt_install libvips-tools chromium chromium-driver
  if ! s3s-fs --version 2>/dev/null | grep -q '0\.14\.1'; then
    say "cargo install s3s-fs 0.14.1"
    cargo install s3s-fs@0.14.1 --locked --features binary
  fi
  # moto: an S3 server that honours conditional writes (If-None-Match / If-Match on
  # PutObject), for the exactly-once and staging tests (tile-store/tests/staging_moto.rs).
  if ! command -v moto_server >/dev/null 2>&1; then
    say "pip install moto[server]"
    python3 -m pip install --quiet 'moto[server]' 2>/dev/null \
      || python3 -m pip install --quiet --user --break-system-packages 'moto[server]'
    # pyenv installs console scripts behind shims, refreshed by rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
    command -v moto_server >/dev/null 2>&1 || [ -x "$HOME/.local/bin/moto_server" ] \
      || { echo "moto_server is not on PATH after pip install" >&2; exit 1; }
  fi
  # The fuzz targets (fuzz/) run briefly in `make test`; cargo-fuzz drives them on stable.
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "cargo install cargo-fuzz"
    cargo install cargo-fuzz --locked
  fi
fi

exit 0
