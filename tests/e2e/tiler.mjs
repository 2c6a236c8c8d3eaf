// The built `@tessera/tiler-wasm` package under node: the project's own definitions of the pyramid id
// recipe (IdHasher), the batch format (BatchEncoder), the Deep Zoom layout (Layout) and tile names
// (parseTileName) and the geometry a manifest describes (parseDzi), so tests never re-type them.
// Needs only the built package (scripts/build-wasm.sh), no test dependencies, so benchmarks use it too.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PKG = process.env.TESSERA_WASM_PKG ?? join(ROOT, 'tiler-wasm/pkg');
const wasm = await import(join(PKG, 'tiler_wasm.js'));
wasm.initSync({ module: readFileSync(join(PKG, 'tiler_wasm_bg.wasm')) });

export const { Tiler, IdHasher, BatchEncoder, Layout, parseTileName, parseDzi } = wasm;

/** The `Content-Type` of a batch upload body. */
export const BATCH_CONTENT_TYPE = (() => {
  const encoder = new BatchEncoder();
  const type = encoder.contentType;
  encoder.free();
  return type;
})();

/** The pyramid id of `bytes` tiled with `options` (the defaults: vips dzsave's). */
export function pyramidId(bytes, options) {
  const hasher = new IdHasher();
  hasher.update(bytes);
  const id = hasher.finish(options);
  hasher.free();
  return id;
}

/** A batch upload body of `tiles` ({ level, col, row, ext, bytes }). */
export function batchBody(tiles) {
  const encoder = new BatchEncoder();
  for (const { level, col, row, ext, bytes } of tiles) encoder.push(level, col, row, ext, bytes);
  const body = encoder.finish();
  encoder.free();
  return body;
}

/** Every tile of a `width`×`height` pyramid as `level/col_row.ext`. */
export function tileNames(width, height, ext = 'jpeg', tileSize = 254, overlap = 1) {
  const layout = new Layout(width, height, tileSize, overlap);
  const names = layout.tileNames(ext);
  layout.free();
  return names;
}
