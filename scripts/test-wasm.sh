#!/usr/bin/env bash
# The wasm tests of tiler-wasm, run under node by wasm-bindgen-test-runner:
#  - tests/wasm_bindings.rs: the JavaScript-facing bindings (types, errors, options);
#  - tests/wasm_parity.rs: tiles made in wasm are byte-identical to tiles made natively
#    (the native half runs first and leaves its tile hashes in the shared target dir).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
cargo test --release -p tiler-wasm --test wasm_parity
cargo test --release -p tiler-wasm --target wasm32-unknown-unknown --test wasm_parity --test wasm_bindings
