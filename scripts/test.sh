#!/usr/bin/env bash
# `make test`: every test, in the order docs/testing.md gives, then where the time went.
# Two builds run beside others, since neither keeps both cores busy alone: the fuzz
# targets (their own target dir and flags) build during the workspace's test build, whose
# largest crates compile on one core; the short fuzz runs go during the web build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
fuzz_seconds=${FUZZ_SECONDS:-15}
logs=$(mktemp -d)
started=$(date +%s)
spent=()

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# Runs "$@" as the stage named $1, timed.
stage() {
  local name=$1 t
  shift
  t=$(date +%s)
  say "$name"
  "$@"
  spent+=("$(printf '%5d s  %s' $(($(date +%s) - t)) "$name")")
}

# Waits for a background stage; on failure shows its log and stops.
finish() {
  local name=$1 pid=$2 log=$3 t=$4
  if ! wait "$pid"; then
    tail -n 80 "$log" >&2
    echo "$name failed (log above)" >&2
    exit 1
  fi
  spent+=("$(printf '%5d s  %s (beside the stages above)' $(($(date +%s) - t)) "$name")")
}

stage "install what the tests need" scripts/setup.sh test

t=$(date +%s)
scripts/fuzz.sh build >"$logs/fuzz-build" 2>&1 &
fuzz_build=$!
stage "build the Rust tests" "$cargo" test --release --workspace --all-targets --no-run
finish "build the fuzz targets" $fuzz_build "$logs/fuzz-build" "$t"

stage "Rust tests" "$cargo" test --release --workspace --all-targets

t=$(date +%s)
scripts/fuzz.sh "$fuzz_seconds" >"$logs/fuzz" 2>&1 &
fuzz=$!
stage "build the wasm package, the library, the demo and the npm tarballs" make --no-print-directory web packages
stage "wasm binding tests" scripts/test-wasm.sh
finish "fuzz targets, $fuzz_seconds s each" $fuzz "$logs/fuzz" "$t"
cat "$logs/fuzz"

stage "end-to-end tests (Chromium, consumers, parity)" \
  bash -c 'scripts/setup.sh npm tests/e2e && cd tests/e2e && node --test --test-concurrency=1 --test-timeout=600000'

rm -rf "$logs"
say "every test passed in $(($(date +%s) - started)) s"
printf '%s\n' "${spent[@]}" >&2
