// For bench/store.py: a pyramid's id and its tiles framed into batch upload bodies, both by the
// project's own definitions (the wasm IdHasher and BatchEncoder, through tests/e2e/tiler.mjs), so the
// benchmark re-types neither the id recipe nor the batch format.
// Usage: node bench/batches.mjs IMAGE FILES_DIR OUT_DIR BATCH_BYTES
//   writes OUT_DIR/batch-N.bin and OUT_DIR/batches.json: { id, contentType, batches: [{ file, count }] }
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BATCH_CONTENT_TYPE, BatchEncoder, parseTileName, pyramidId } from '../tests/e2e/tiler.mjs';

const [image, files, out, limitText] = process.argv.slice(2);
const limit = Number(limitText);
if (!image || !files || !out || !(limit > 0)) throw new Error('usage: node bench/batches.mjs IMAGE FILES_DIR OUT_DIR BATCH_BYTES');
mkdirSync(out, { recursive: true });

const encoder = new BatchEncoder();
const batches = [];
const flush = () => {
  if (encoder.count === 0) return;
  const file = `batch-${batches.length}.bin`;
  const count = encoder.count;
  writeFileSync(join(out, file), encoder.finish());
  batches.push({ file, count });
};
// The order store.py lists the tiles in: levels by number, then names.
for (const level of readdirSync(files).sort((a, b) => Number(a) - Number(b))) {
  for (const name of readdirSync(join(files, level)).sort()) {
    const { level: l, col, row, format } = parseTileName(`${level}/${name}`);
    const bytes = readFileSync(join(files, level, name));
    // About `limit` bytes a request: a frame header is well under 100 bytes.
    if (encoder.count > 0 && encoder.byteLength + bytes.length + 100 > limit) flush();
    encoder.push(l, col, row, format, bytes);
  }
}
flush();
encoder.free();
writeFileSync(join(out, 'batches.json'), JSON.stringify({ id: pyramidId(readFileSync(image)), contentType: BATCH_CONTENT_TYPE, batches }));
