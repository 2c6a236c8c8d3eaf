#!/usr/bin/env bash
# The wasm tests of tiler-wasm (tests/wasm_bindings.rs: the JavaScript-facing bindings — types,
# errors, options), run under node by wasm-bindgen-test-runner. Native/wasm byte parity is one node
# test, tests/e2e/parity.test.mjs, over the built package and the native CLI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
cargo test --release -p tiler-wasm --target wasm32-unknown-unknown --no-default-features --test wasm_bindings
