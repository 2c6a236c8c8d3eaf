// Stock OpenSeadragon opens a pyramid that was tiled by `tile-store tile`, uploaded to a running
// `tile-store serve` in batches and committed, by its URL `/pyramids/{id}.dzi`: on the disk store
// and on the S3 store (a real s3s-fs). The page is served from another loopback origin, so the
// manifest and the tiles cross origins through tile-store's CORS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { ARTIFACTS, CHROMIUM_ARGS, ROOT, TILE_STORE, near, pixel, staticServer, toScreen } from './harness.mjs';
import { onS3, s3sFs, tileStore } from './servers.mjs';
import { quadrantColour } from './images.mjs';
import { BATCH_CONTENT_TYPE, batchBody, parseTileName, pyramidId } from './tiler.mjs';

const OSD = join(ROOT, 'www/node_modules/openseadragon/build/openseadragon/openseadragon.min.js');
const IMAGE = { width: 2000, height: 1400 };
const VIEWER = { width: 800, height: 600 };
const PAGE_BACKGROUND = [90, 90, 90];
const TILES_PER_BATCH = 16;
let work, page, context, site, pyramid;
const running = [];

/** A quadrant PNG (no alpha, so JPEG tiles), tiled by `tile-store tile`; its id by the documented recipe. */
function makePyramid() {
  const png = new PNG({ width: IMAGE.width, height: IMAGE.height });
  png.data = Buffer.alloc(IMAGE.width * IMAGE.height * 3);
  for (let y = 0; y < IMAGE.height; y++) {
    for (let x = 0; x < IMAGE.width; x++) {
      const [r, g, b] = quadrantColour(x, y, IMAGE.width, IMAGE.height);
      png.data.set([r, g, b], (y * IMAGE.width + x) * 3);
    }
  }
  const source = PNG.sync.write(png, { colorType: 2, inputColorType: 2 });
  const imagePath = join(work, 'quadrants.png');
  writeFileSync(imagePath, source);
  const prefix = join(work, 'pyramid');
  execFileSync(TILE_STORE, ['tile', imagePath, prefix], { stdio: ['ignore', 'ignore', 'inherit'] });

  const id = pyramidId(source);
  const tiles = [];
  for (const level of readdirSync(`${prefix}_files`)) {
    for (const name of readdirSync(join(`${prefix}_files`, level))) {
      const tile = parseTileName(`${level}/${name}`);
      tiles.push({
        level: tile.level,
        col: tile.col,
        row: tile.row,
        ext: tile.format,
        bytes: readFileSync(join(`${prefix}_files`, level, name)),
      });
    }
  }
  return { id, dzi: readFileSync(`${prefix}.dzi`), tiles };
}

/** Uploads the pyramid in several batches and commits it, checking what the API says on the way. */
async function uploadAndCommit(store) {
  const { id, dzi, tiles } = pyramid;
  const notYet = await fetch(`${store.url}/pyramids/${id}.dzi`);
  assert.equal(notYet.status, 404, 'nothing is served before the upload');

  const batches = [];
  for (let i = 0; i < tiles.length; i += TILES_PER_BATCH) batches.push(tiles.slice(i, i + TILES_PER_BATCH));
  assert.ok(batches.length >= 3, `the pyramid goes up in several batches (${batches.length})`);
  // An anonymous writer: the first write hands out its upload session, sent back from then on.
  let session = null;
  const withSession = (headers = {}) => (session ? { ...headers, 'tessera-upload-session': session } : headers);
  for (const [i, batch] of batches.entries()) {
    const r = await fetch(`${store.url}/pyramids/${id}/tiles`, {
      method: 'POST',
      headers: withSession({ 'content-type': BATCH_CONTENT_TYPE }),
      body: batchBody(batch),
    });
    assert.equal(r.status, 200, `batch ${i}: ${await r.clone().text()}`);
    session ??= r.headers.get('tessera-upload-session');
    assert.match(session ?? '', /^[0-9a-f]{32}$/);
    assert.deepEqual(await r.json(), { stored: batch.length, session });
    if (i === 0) {
      // A partly uploaded pyramid is not complete: the manifest is not served and a commit is refused.
      assert.equal((await fetch(`${store.url}/pyramids/${id}.dzi`)).status, 404);
      const early = await fetch(`${store.url}/pyramids/${id}.dzi`, { method: 'PUT', body: dzi, headers: withSession() });
      assert.equal(early.status, 409);
      assert.equal((await early.json()).error.code, 'missing_tiles');
    }
  }
  const listing = await (await fetch(`${store.url}/pyramids/${id}/tiles`, { headers: withSession() })).json();
  assert.equal(listing.committed, false);
  assert.equal(listing.tiles.length, tiles.length);
  // Another writer (no session: a new one) sees none of them.
  const other = await (await fetch(`${store.url}/pyramids/${id}/tiles`)).json();
  assert.deepEqual(other.tiles, []);

  const commit = await fetch(`${store.url}/pyramids/${id}.dzi`, { method: 'PUT', body: dzi, headers: withSession() });
  assert.equal(commit.status, 201, await commit.clone().text());
  assert.deepEqual(await commit.json(), { id, tileCount: tiles.length, created: true, session });
}

/** Opens the committed pyramid in the page; returns what OpenSeadragon reported. */
async function openInOsd(store) {
  const dziUrl = `${store.url}/pyramids/${pyramid.id}.dzi`;
  const responses = [];
  const onResponse = (r) => r.url().startsWith(store.url) && responses.push({ url: r.url(), status: r.status() });
  page.on('response', onResponse);
  try {
    await page.goto(`${site.url}/?dzi=${encodeURIComponent(dziUrl)}`);
    await page.waitForFunction(() => window.osdEvents.fullyLoaded || window.osdEvents.openFailed, null, {
      timeout: 60_000,
      polling: 100,
    });
    // Two frames, so the last tiles are painted, not just loaded.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    return { events: await page.evaluate(() => window.osdEvents), responses };
  } finally {
    page.off('response', onResponse);
  }
}

async function checkStore(name, store) {
  await uploadAndCommit(store);
  const { events, responses } = await openInOsd(store);
  assert.equal(events.openFailed, null, `open-failed: ${events.openFailed}`);
  assert.equal(events.opened, 1, 'the open event fired once');
  assert.ok(events.tileLoaded > 0, 'tiles were loaded');
  assert.deepEqual(events.tileLoadFailed, []);
  assert.deepEqual(events.size, IMAGE, 'OSD read the image size from the manifest');
  assert.ok(
    responses.some((r) => r.url.endsWith(`/pyramids/${pyramid.id}.dzi`) && r.status === 200),
    'the manifest came from tile-store',
  );
  const tileResponses = responses.filter((r) => r.url.includes(`/pyramids/${pyramid.id}_files/`));
  assert.ok(tileResponses.length >= events.tileLoaded, 'every loaded tile came from tile-store');
  assert.deepEqual(
    tileResponses.filter((r) => r.status !== 200),
    [],
  );

  // A tile as a browser gets it: cacheable forever, CORS for the page, a strong ETag honoured.
  const [level, file] = tileResponses[0].url.split('/').slice(-2);
  const tileUrl = `${store.url}/pyramids/${pyramid.id}_files/${level}/${file}`;
  const tile = await fetch(tileUrl, { headers: { origin: site.url } });
  assert.equal(tile.status, 200);
  assert.equal(tile.headers.get('content-type'), 'image/jpeg');
  assert.equal(tile.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(tile.headers.get('access-control-allow-origin'), site.url);
  const [col, row] = file.replace('.jpeg', '').split('_').map(Number);
  const local = pyramid.tiles.find((t) => t.level === Number(level) && t.col === col && t.row === row);
  assert.ok(Buffer.from(await tile.arrayBuffer()).equals(local.bytes), 'the served tile is the uploaded one');
  const etag = tile.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  assert.equal((await fetch(tileUrl, { headers: { 'if-none-match': etag } })).status, 304);

  const path = join(ARTIFACTS, `stock-osd-${name}.png`);
  const png = PNG.sync.read(await page.locator('#viewer').screenshot({ path }));
  assert.equal(png.width, VIEWER.width);
  const box = { width: VIEWER.width, height: VIEWER.height };
  const half = { x: IMAGE.width / 2, y: IMAGE.height / 2 };
  const points = [
    [500, 350],
    [1500, 350],
    [500, 1050],
    [1500, 1050],
    // Either side of the quadrant borders, and near the corners (edge tiles).
    [half.x - 30, 350],
    [half.x + 30, 350],
    [500, half.y - 30],
    [500, half.y + 30],
    [20, 20],
    [IMAGE.width - 20, IMAGE.height - 20],
  ];
  for (const [x, y] of points) {
    const at = toScreen(box, IMAGE, 1, x, y);
    const want = quadrantColour(x, y, IMAGE.width, IMAGE.height);
    const got = pixel(png, at.x, at.y);
    assert.ok(
      near(got, want),
      `image (${x}, ${y}) at screen (${at.x.toFixed(0)}, ${at.y.toFixed(0)}): got ${got}, want ${want}; see ${path}`,
    );
  }
  // The image is fitted to the width, so a strip above it shows the page.
  const above = toScreen(box, IMAGE, 1, half.x, 0);
  assert.ok(above.y > 10, 'the test geometry leaves a strip above the image');
  assert.ok(near(pixel(png, above.x, above.y / 2), PAGE_BACKGROUND, 4), `page background above the image; see ${path}`);
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>stock OpenSeadragon</title>
<style>html, body { margin: 0; background: rgb(${PAGE_BACKGROUND}); }
#viewer { width: ${VIEWER.width}px; height: ${VIEWER.height}px; }</style>
<script src="/openseadragon.min.js"></script></head>
<body><div id="viewer"></div>
<script>
  const events = (window.osdEvents = { opened: 0, openFailed: null, tileLoaded: 0, tileLoadFailed: [], fullyLoaded: false, size: null });
  const viewer = OpenSeadragon({
    id: 'viewer',
    tileSources: new URLSearchParams(location.search).get('dzi'),
    showNavigationControl: false,
    crossOriginPolicy: 'Anonymous',
    animationTime: 0,
  });
  viewer.addHandler('open', () => {
    events.opened += 1;
    const image = viewer.world.getItemAt(0);
    const size = image.getContentSize();
    events.size = { width: size.x, height: size.y };
    const settle = () => { events.fullyLoaded = image.getFullyLoaded(); };
    image.addHandler('fully-loaded-change', settle);
    settle();
  });
  viewer.addHandler('open-failed', (e) => { events.openFailed = String(e.message); });
  viewer.addHandler('tile-loaded', () => { events.tileLoaded += 1; });
  viewer.addHandler('tile-load-failed', (e) => { events.tileLoadFailed.push(String(e.message)); });
</script></body></html>`;

describe('stock OpenSeadragon opens a batch-uploaded, committed pyramid by URL', () => {
  before(async () => {
    if (!existsSync(TILE_STORE)) throw new Error(`no tile-store at ${TILE_STORE}; run \`make server\``);
    mkdirSync(ARTIFACTS, { recursive: true });
    work = mkdtempSync(join(tmpdir(), 'tessera-e2e-stock-osd-'));
    pyramid = makePyramid();
    const siteDir = join(work, 'site');
    mkdirSync(siteDir);
    writeFileSync(join(siteDir, 'index.html'), PAGE);
    copyFileSync(OSD, join(siteDir, 'openseadragon.min.js'));
    site = await staticServer(siteDir);
    context = await chromium.launchPersistentContext(join(work, 'chromium'), {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1000, height: 700 },
      deviceScaleFactor: 1,
    });
    page = await context.newPage();
  });

  after(async () => {
    await context?.close().catch(() => {});
    await Promise.all(running.map((p) => p.stop()));
    await site?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('on the disk store', async () => {
    const dataDir = join(work, 'disk-store');
    const store = await tileStore(['--cors-origin', site.url, '--store', 'disk', '--data-dir', dataDir]);
    running.push(store);
    try {
      await checkStore('disk', store);
      assert.ok(existsSync(join(dataDir, `${pyramid.id}.dzi`)), 'the manifest is a file in the data dir');
    } finally {
      await store.stop();
    }
  });

  test('on the S3 store (s3s-fs)', async () => {
    const s3 = await s3sFs(work);
    running.push(s3);
    const { args, env } = onS3(s3);
    const store = await tileStore(['--cors-origin', site.url, ...args], { env });
    running.push(store);
    try {
      await checkStore('s3', store);
      // s3s-fs keeps each object as a file under the bucket's folder.
      assert.ok(existsSync(join(s3.bucketDir, `${pyramid.id}.dzi`)), 'the manifest is in the bucket');
      const level = Math.max(...pyramid.tiles.map((t) => t.level));
      assert.equal(
        readdirSync(join(s3.bucketDir, `${pyramid.id}_files`, String(level))).filter((f) => f.endsWith('.jpeg')).length,
        pyramid.tiles.filter((t) => t.level === level).length,
        'every tile of the top level is in the bucket',
      );
    } finally {
      await store.stop();
      await s3.stop();
    }
  });
});
