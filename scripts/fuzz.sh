#!/usr/bin/env bash
# Runs the libFuzzer targets in fuzz/ with cargo-fuzz, on the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets stable accept the -Z flags cargo-fuzz passes, so no nightly is needed.
#   scripts/fuzz.sh build           build the targets only (make test builds them beside its other build)
#   scripts/fuzz.sh                 every target for FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh 15              every target for 15 s each — `make test`
#   scripts/fuzz.sh 1200            every target for 1200 s each — `make fuzz`
#   scripts/fuzz.sh 600 dzi_parse   one target
# New interesting inputs go to fuzz/corpus/<target> (not committed); crashes to
# fuzz/artifacts/<target>, and the script fails. The committed seeds are fuzz/seeds/<target>.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-${FUZZ_SECONDS:-20}}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(image_tile stream_tile dzi_parse dzi_layout batch_parse)
export RUSTC_BOOTSTRAP=1
# Safe Rust throughout (unsafe_code is forbidden in our crates), so no sanitizer: ~2× the executions.
cargo fuzz build -s none
[ "$seconds" = build ] && exit 0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log=$(mktemp)
  # -rss_limit_mb and -malloc_limit_mb: an input that makes the target allocate past
  # them is a failure, so the memory limits are fuzzed too; -timeout catches hangs.
  if ! cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=10 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log" | tail -n 1)
  summary+=("$(printf '%-12s %12s executions in %s s' "$target" "$runs" "$seconds")")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
