#!/usr/bin/env bash
# Builds tiler-wasm for the browser into the npm package tiler-wasm/pkg (@tessera/tiler-wasm).
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli at the crate's pinned version.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$root/tiler-wasm/pkg"

pinned="$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' "$root/Cargo.toml")"
have="$(wasm-bindgen --version | awk '{print $2}')"
if [ "$pinned" != "$have" ]; then
  echo "wasm-bindgen-cli $have does not match the pinned wasm-bindgen $pinned;" \
       "run: cargo install wasm-bindgen-cli --version $pinned --locked" >&2
  exit 1
fi

cargo build --manifest-path "$root/Cargo.toml" -p tiler-wasm --release --target wasm32-unknown-unknown
rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/tiler_wasm.wasm"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/tiler-wasm/Cargo.toml" | head -n1)"
cat > "$out/package.json" <<JSON
{
  "name": "@tessera/tiler-wasm",
  "version": "$version",
  "description": "Deep Zoom tiling identical to vips dzsave, as WebAssembly",
  "license": "MIT",
  "type": "module",
  "main": "tiler_wasm.js",
  "module": "tiler_wasm.js",
  "types": "tiler_wasm.d.ts",
  "files": ["tiler_wasm.js", "tiler_wasm.d.ts", "tiler_wasm_bg.wasm", "tiler_wasm_bg.wasm.d.ts"],
  "sideEffects": false
}
JSON
echo "built $out"
