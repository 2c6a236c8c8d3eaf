#!/usr/bin/env node
// Where the browser's pyramid time goes, stage by stage: the `@tessera/tiler-wasm` package (the
// SIMD build the worker runs, in node's V8 on one thread) decoding an image, shrinking each level
// and encoding its tiles, and copying tile rows out of the instance as a helper worker gets them
// (`Tiler.copyRows`). Usage: `node bench/wasm-phases.mjs [image …]` (default: bench/out/photo-24mp.jpg,
// made by `make bench` / `node bench/browser.mjs`); `scripts/build-wasm.sh` first.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PKG = join(ROOT, 'tiler-wasm/pkg');
const { initSync, Tiler } = await import(join(PKG, 'tiler_wasm.js'));
initSync({ module: readFileSync(join(PKG, 'tiler_wasm_bg.wasm')) });

const images = process.argv.slice(2);
for (const path of images.length ? images : [join(ROOT, 'bench/out/photo-24mp.jpg')]) {
  const bytes = readFileSync(path);
  let t0 = performance.now();
  const t = Tiler.open(bytes, undefined);
  const decode = performance.now() - t0;
  const g = t.geometry();
  let shrink = 0;
  let encodeTop = 0;
  let encodeLower = 0;
  for (let level = g.maxLevel; level >= 0; level--) {
    const [cols, rows] = t.grid(level);
    if (level < g.maxLevel) {
      // The level is built (shrunk from the one above) on first use: copying its first pixel row
      // out builds it without encoding anything.
      let width = g.width;
      for (let l = g.maxLevel; l > level; l--) width = Math.ceil(width / 2);
      t0 = performance.now();
      t.copyRows(level, 0, 1, new Uint8Array(width * t.channels));
      shrink += performance.now() - t0;
    }
    t0 = performance.now();
    for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) t.tile(level, col, row);
    if (level === g.maxLevel) encodeTop += performance.now() - t0;
    else encodeLower += performance.now() - t0;
  }
  const [, topRows] = t.grid(g.maxLevel);
  t0 = performance.now();
  let copied = 0;
  for (let row = 0; row < topRows; row++) {
    const [y0, y1] = t.bandRows(g.maxLevel, row, row + 1);
    const out = new Uint8Array((y1 - y0) * g.width * t.channels);
    t.copyRows(g.maxLevel, y0, y1, out);
    copied += out.byteLength;
  }
  const copy = performance.now() - t0;
  const total = decode + shrink + encodeTop + encodeLower;
  const pc = (ms) => `${ms.toFixed(0).padStart(5)} ms ${((100 * ms) / total).toFixed(0).padStart(3)}%`;
  console.log(`${path}: ${g.width}×${g.height}, ${g.tileCount} tiles`);
  console.log(`  decode (Tiler.open)                   ${pc(decode)}`);
  console.log(`  encode, full-resolution level         ${pc(encodeTop)}`);
  console.log(`  shrink, every lower level             ${pc(shrink)}`);
  console.log(`  encode, every lower level             ${pc(encodeLower)}`);
  console.log(`  copy every full-resolution tile row out (${(copied / 1048576).toFixed(0)} MiB): ${copy.toFixed(0)} ms, not in the total`);
  t.free();
}
