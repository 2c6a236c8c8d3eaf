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

# Without default features: JPEG XL (jxl-oxide, ~500 KiB gzip) is left to the server.
cargo build --manifest-path "$root/Cargo.toml" -p tiler-wasm --release --target wasm32-unknown-unknown --no-default-features
rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/tiler_wasm.wasm"

# Size pass with wasm-opt from npm `binaryen` (scripts/npm): Debian's binaryen 108 writes a broken
# module. The features listed are those rustc's wasm32-unknown-unknown target uses, plus simd128
# (.cargo/config.toml); wasm-opt also reads them from the module's target_features section.
"$root/scripts/setup.sh" npm "$root/scripts/npm"
wasm="$out/tiler_wasm_bg.wasm"
raw_before=$(wc -c < "$wasm")
"$root/scripts/npm/node_modules/.bin/wasm-opt" -O3 \
  --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-multivalue --enable-reference-types --enable-call-indirect-overlong \
  --enable-simd \
  "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
raw=$(wc -c < "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "tiler_wasm_bg.wasm: $raw bytes raw ($raw_before before wasm-opt), $gz bytes gzip -9"

# The npm package @tessera/tiler-wasm; its version is the crate's, the one place versions live.
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/tiler-wasm/Cargo.toml" | head -n1)"
cp "$root/tiler-wasm/npm/README.md" "$root/LICENSE" "$out/"
cat > "$out/package.json" <<JSON
{
  "name": "@tessera/tiler-wasm",
  "version": "$version",
  "description": "Deep Zoom tiling identical to vips dzsave, as WebAssembly",
  "license": "MIT",
  "keywords": ["deep zoom", "dzi", "tiling", "webassembly", "vips"],
  "type": "module",
  "main": "./tiler_wasm.js",
  "module": "./tiler_wasm.js",
  "types": "./tiler_wasm.d.ts",
  "exports": {
    ".": {
      "types": "./tiler_wasm.d.ts",
      "default": "./tiler_wasm.js"
    },
    "./tiler_wasm_bg.wasm": "./tiler_wasm_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": ["tiler_wasm.js", "tiler_wasm.d.ts", "tiler_wasm_bg.wasm", "tiler_wasm_bg.wasm.d.ts", "README.md", "LICENSE"],
  "sideEffects": false
}
JSON
echo "built $out ($version)"
