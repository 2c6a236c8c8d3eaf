// Native and wasm pyramids are byte-identical: the same sources are tiled by the native CLI
// (`tile-store tile`, on every core, level by level) and by the `@tessera/tiler-wasm` package (the
// SIMD build the browser runs) under node, and every tile and the `.dzi` are compared byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TILE_STORE } from './harness.mjs';
import { Tiler, parseTileName } from './tiler.mjs';
import { makeAlphaPng, makeImages, writePpm } from './images.mjs';

/** A photo-like picture: gradients, hard edges and seeded noise, so every resampling path runs. */
function photo(dir, name, width, height) {
  let state = 0x12345678;
  const ppm = join(dir, `${name}.ppm`);
  writePpm(ppm, width, height, (x, y) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const noise = state >>> 27;
    const q = (x * 2 >= width ? 1 : 0) + (y * 2 >= height ? 2 : 0);
    const base = [
      [200, 40, 40],
      [40, 200, 40],
      [40, 40, 200],
      [220, 220, 60],
    ][q];
    return [(base[0] + (x % 64) + noise) & 255, (base[1] + (y % 64)) & 255, base[2] ^ noise];
  });
  return ppm;
}

/** Every tile under `files` as `level/col_row.ext`. */
function tilesIn(files) {
  return readdirSync(files).flatMap((level) => readdirSync(join(files, level)).map((f) => `${level}/${f}`));
}

function assertSamePyramid(source, cliArgs, wasmOptions, what) {
  const out = mkdtempSync(join(tmpdir(), 'tessera-parity-'));
  try {
    execFileSync(TILE_STORE, ['tile', source, join(out, 'p'), ...cliArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
    const tiler = Tiler.open(readFileSync(source), wasmOptions);
    assert.equal(readFileSync(join(out, 'p.dzi'), 'utf8'), tiler.dziXml(), `${what}: .dzi`);
    const names = tilesIn(join(out, 'p_files'));
    assert.equal(names.length, tiler.geometry().tileCount, `${what}: tile count`);
    let differ = 0;
    for (const name of names) {
      const { level, col, row } = parseTileName(name);
      const wasm = tiler.tile(level, col, row);
      if (!Buffer.from(wasm).equals(readFileSync(join(out, 'p_files', name)))) differ++;
    }
    assert.equal(differ, 0, `${what}: ${differ} of ${names.length} tiles differ`);
    tiler.free();
    return names.length;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

test('tiles made in wasm are byte-identical to tiles made natively', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-parity-src-'));
  try {
    const ppm = photo(dir, 'photo', 1501, 1003);
    execFileSync('vips', ['copy', ppm, `${join(dir, 'photo.jpg')}[Q=90,strip]`]);
    // Quality 90 keeps every chroma sample (vips subsamples below 90); cameras store 4:2:0, the web progressive.
    execFileSync('vips', ['copy', ppm, `${join(dir, 'photo-420.jpg')}[Q=80,subsample-mode=on,strip]`]);
    execFileSync('vips', ['copy', ppm, `${join(dir, 'photo-progressive.jpg')}[Q=80,interlace,strip]`]);
    assert.match(execFileSync('vipsheader', ['-f', 'jpeg-chroma-subsample', join(dir, 'photo-420.jpg')], { encoding: 'utf8' }), /4:2:0/);
    execFileSync('vips', ['copy', ppm, join(dir, 'photo.png')]);
    const images = makeImages(dir);
    const alpha = makeAlphaPng(dir);
    const cases = [
      ['JPEG', join(dir, 'photo.jpg'), [], undefined],
      ['JPEG 4:2:0', join(dir, 'photo-420.jpg'), [], undefined],
      ['progressive JPEG 4:2:0', join(dir, 'photo-progressive.jpg'), [], undefined],
      ['PNG', join(dir, 'photo.png'), [], undefined],
      ['PNG with alpha', join(dir, alpha), [], undefined],
      ['JPEG with EXIF orientation 6', join(dir, images.oriented), [], undefined],
      [
        'JPEG as PNG tiles, 256/0',
        join(dir, 'photo.jpg'),
        ['--format', 'png', '--tile-size', '256', '--overlap', '0'],
        { format: 'png', tileSize: 256, overlap: 0 },
      ],
      ['JPEG at quality 90', join(dir, 'photo.jpg'), ['--quality', '90'], { quality: 90 }],
    ];
    for (const [what, source, cli, options] of cases) {
      const n = assertSamePyramid(source, cli, options, what);
      console.log(`${what}: ${n} tiles identical`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
