// An AVIF is tiled in the browser through Chromium's own decoder: tiler-wasm reads its header
// (`probe`: size checked against the limits, alpha), the worker decodes it with the browser and
// hands the RGBA to `Tiler.fromPixels`. With two workers and a store, the pyramid the page uploads
// is compared with `vips dzsave` of the same file: the same .dzi and tile names, and full-resolution
// pixels within a PSNR bound. Below it the core's 2×2 shrink and vips 8.14's drift apart on any
// source (a PNG too), so every level is also compared with the core's own pyramid of vips's decode
// (`vips copy x.avif x.png`, `tile-store tile x.png`): that isolates the browser's decoder. The
// bounds allow for YUV→RGB rounding and chroma upsampling that differ between Chromium and libheif,
// and for JPEG tiles re-encoded from those pixels. The pyramid id is hashed over the .avif bytes.
// A HEIC, which Chromium does not decode either, is refused by name, and no server tiling is offered;
// nor for an AVIF over the browser's limits, since tile-store does not decode AVIF.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TILE_STORE, setup, waitForState } from './harness.mjs';
import { Tiler, parseTileName, pyramidId } from './tiler.mjs';

/** 5 × 3 full-resolution tiles: tile rows for a helper worker, and quick to encode. */
const IMAGE = { width: 1100, height: 700 };
/**
 * The lowest PSNR accepted, over a set of tiles and for its worst tile. Against vips's
 * full-resolution tiles measured 37.1 dB overall, 36.8 dB worst (Chromium, vips 8.14.1 with
 * libheif): no more than the JPEG encoders' own difference, 37.1 dB between vips's and the core's
 * top-level tiles of one PNG. Against the core's pyramid of vips's decode, 49.4 dB overall and
 * 39.3 dB worst (a 35×22 tile). The browser's pixels drawn one column off: 33.0 and 26.8 dB against vips.
 */
const MIN_PSNR = { vipsTop: { all: 35, tile: 34 }, core: { all: 45, tile: 36 } };

function vips(...args) {
  // stderr is kept for the error a failure throws: heifload warns of every nclx box it ignores.
  execFileSync('vips', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A photo-like picture: gradients and a wave under seeded noise. */
function photoPpm(path, { width, height }) {
  const pixels = Buffer.alloc(width * height * 3);
  let state = 0x2545f491;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const n = (state >>> 27) - 16;
      const i = (y * width + x) * 3;
      pixels[i] = Math.max(0, Math.min(255, (255 * x) / width + n));
      pixels[i + 1] = Math.max(0, Math.min(255, (255 * y) / height - n));
      pixels[i + 2] = Math.max(0, Math.min(255, 128 + 100 * Math.sin((x + 2 * y) / 90) + (n >> 1)));
    }
  }
  writeFileSync(path, Buffer.concat([Buffer.from(`P6\n${width} ${height}\n255\n`), pixels]));
}

let t;
let reference;
before(async () => {
  t = await setup('avif', (dir) => {
    const ppm = join(dir, 'photo.ppm');
    photoPpm(ppm, IMAGE);
    vips('heifsave', ppm, join(dir, 'photo.avif'), '--compression', 'av1', '--Q', '90', '--effort', '0');
    vips('heifsave', ppm, join(dir, 'photo.heic'), '--Q', '50');
    rmSync(ppm);
    // The same file declaring 40000×20000 (800 MP, over the default 600 MP): refused from its header.
    const huge = readFileSync(join(dir, 'photo.avif'));
    for (let at = huge.indexOf('ispe'); at >= 0; at = huge.indexOf('ispe', at + 4)) {
      huge.writeUInt32BE(40_000, at + 8);
      huge.writeUInt32BE(20_000, at + 12);
    }
    writeFileSync(join(dir, 'huge.avif'), huge);
    return { avif: 'photo.avif', heic: 'photo.heic', huge: 'huge.avif' };
  });
  reference = mkdtempSync(join(tmpdir(), 'tessera-avif-vips-'));
  vips('dzsave', join(t.imagesDir, 'photo.avif'), join(reference, 'vips'));
  vips('copy', join(t.imagesDir, 'photo.avif'), join(reference, 'decoded.png'));
  execFileSync(TILE_STORE, ['tile', join(reference, 'decoded.png'), join(reference, 'core')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
});
after(async () => {
  await t?.close();
  if (reference) rmSync(reference, { recursive: true, force: true });
});

/** A JPEG tile's pixels, decoded by tiler-wasm (the same decoder for both sides). */
function tilePixels(jpeg) {
  const tiler = Tiler.open(jpeg);
  try {
    const { width, height } = tiler.geometry();
    const out = new Uint8Array(width * height * tiler.channels);
    tiler.copyRows(tiler.maxLevel, 0, height, out);
    return { width, height, out };
  } finally {
    tiler.free();
  }
}

function psnr(squares, samples) {
  return squares === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255 * samples) / squares);
}

test('an AVIF is decoded by the browser and tiled as vips tiles it', async () => {
  await t.open({ src: `/e2e/${t.files.avif}`, store: '/', workers: '2' });
  await t.page.waitForFunction(
    () => {
      const el = document.querySelector('[data-testid="viewer"]');
      return ['saved', 'failed'].includes(el?.getAttribute('data-upload')) || el?.getAttribute('data-state') === 'error';
    },
    null,
    { timeout: 30_000, polling: 50 },
  );
  const attrs = await t.page.getByTestId('viewer').evaluate((el) => Object.fromEntries([...el.attributes].map((a) => [a.name, a.value])));
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(attrs['data-upload'], 'saved', attrs['data-upload-error']);
  assert.equal(attrs['data-source'], 'worker');
  assert.equal(attrs['data-tiler-workers'], '2', 'a helper worker encoded tile rows');
  assert.equal(Number(attrs['data-width']), IMAGE.width);
  assert.equal(Number(attrs['data-height']), IMAGE.height);
  const id = attrs['data-pyramid-id'];
  assert.equal(id, pyramidId(readFileSync(join(t.imagesDir, t.files.avif))), 'the id is hashed over the .avif');

  const dzi = await fetch(`${t.app.url}/pyramids/${id}.dzi`);
  assert.equal(dzi.status, 200);
  assert.equal(await dzi.text(), readFileSync(join(reference, 'vips.dzi'), 'utf8'));

  const tiles = async (name) => {
    const response = await fetch(`${t.app.url}/pyramids/${id}_files/${name}`);
    assert.equal(response.status, 200, name);
    return new Uint8Array(await response.arrayBuffer());
  };
  const vipsNames = tilesIn(join(reference, 'vips_files'));
  assert.deepEqual(vipsNames, tilesIn(join(reference, 'core_files')), 'the same tiles');
  const top = String(Math.max(...vipsNames.map((n) => parseTileName(n).level)));
  const vipsTop = await compare(
    vipsNames.filter((n) => n.startsWith(`${top}/`)),
    tiles,
    (name) => readFileSync(join(reference, 'vips_files', name)),
  );
  const core = await compare(vipsNames, tiles, (name) => readFileSync(join(reference, 'core_files', name)));
  for (const [what, got] of Object.entries({ vipsTop, core })) {
    console.log(
      `AVIF in Chromium vs ${what}: ${got.count} tiles, ${got.all.toFixed(1)} dB overall, worst ${got.worst.psnr.toFixed(1)} dB (${got.worst.name})`,
    );
    const min = MIN_PSNR[what];
    assert.ok(got.all >= min.all, `${what}: ${got.all.toFixed(1)} dB over all tiles, below ${min.all}`);
    assert.ok(got.worst.psnr >= min.tile, `${what}: ${got.worst.psnr.toFixed(1)} dB at ${got.worst.name}, below ${min.tile}`);
  }
});

/** Every tile under `files` as `level/col_row.ext`, sorted (vips writes vips-properties.xml beside the levels). */
function tilesIn(files) {
  const levels = readdirSync(files).filter((f) => /^\d+$/.test(f));
  return levels.flatMap((level) => readdirSync(join(files, level)).map((f) => `${level}/${f}`)).sort();
}

/** The PSNR of tiles `names` from `got` against `want`, overall and for the worst tile. */
async function compare(names, got, want) {
  let squares = 0;
  let samples = 0;
  let worst = { psnr: Number.POSITIVE_INFINITY, name: '' };
  for (const name of names) {
    const a = tilePixels(await got(name));
    const b = tilePixels(want(name));
    assert.deepEqual([a.width, a.height], [b.width, b.height], `${name}: size`);
    let tileSquares = 0;
    for (let i = 0; i < b.out.length; i++) tileSquares += (a.out[i] - b.out[i]) ** 2;
    squares += tileSquares;
    samples += b.out.length;
    const p = psnr(tileSquares, b.out.length);
    if (p < worst.psnr) worst = { psnr: p, name };
  }
  return { count: names.length, all: psnr(squares, samples), worst };
}

test('a HEIC is refused by name, with no offer to tile it on the server', async () => {
  await t.open({ src: `/e2e/${t.files.heic}`, store: '/' });
  const attrs = await waitForState(t.page, ['ready', 'error'], 15_000);
  assert.equal(attrs['data-state'], 'error');
  assert.equal(attrs['data-error-code'], 'unsupported', attrs['data-error']);
  assert.match(attrs['data-error'], /HEIC images are not supported/);
  assert.equal(await t.page.getByTestId('tile-on-server').count(), 0);
});

test('an AVIF over the limits is refused from its header, with no offer to tile it on the server', async () => {
  await t.open({ src: `/e2e/${t.files.huge}`, store: '/' });
  const attrs = await waitForState(t.page, ['ready', 'error'], 15_000);
  assert.equal(attrs['data-state'], 'error');
  assert.equal(attrs['data-error-code'], 'limits', attrs['data-error']);
  assert.match(attrs['data-error'], /40000×20000 = 800000000 pixels exceeds the limit.*tile-store does not decode this format/);
  assert.equal(await t.page.getByTestId('tile-on-server').count(), 0);
});
