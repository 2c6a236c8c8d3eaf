// Tile once, reuse everywhere: the page tiles an image in its worker and uploads the pyramid to
// tile-store on S3 (a real s3s-fs); a fresh browser context then opens the same image from the store
// with no tiling at all; a store killed mid-upload and started again gets the rest, and tiles it
// lost are sent again before the commit; a store that refuses writes leaves the image viewable.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { ARTIFACTS, CHROMIUM_ARGS, holdRequest, pixel, setup, waitForSettled, waitForState } from './harness.mjs';
import { onS3, s3sFs, tileStore } from './servers.mjs';
import { pyramidId, tileNames } from './tiler.mjs';

const IMAGE = { width: 2400, height: 1700 };
/** Small upload requests, so an upload takes many of them and can be cut in the middle. */
const SMALL_BATCH = 48 * 1024;

/** A photo-like JPEG: smooth colour gradients under seeded noise (tiles of tens of KB). */
function noisyJpeg(dir, name, seed) {
  const { width, height } = IMAGE;
  const header = Buffer.from(`P6\n${width} ${height}\n255\n`);
  const pixels = Buffer.alloc(width * height * 3);
  let state = seed >>> 0;
  const noise = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state >>> 24) - 128;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const base = [(255 * x) / width, (255 * y) / height, 128 + 100 * Math.sin((x + y + seed) / 150)];
      for (let c = 0; c < 3; c++) pixels[i + c] = Math.max(0, Math.min(255, base[c] + (noise() >> 2)));
    }
  }
  const ppm = join(dir, `${name}.ppm`);
  writeFileSync(ppm, Buffer.concat([header, pixels]));
  execFileSync('vips', ['copy', ppm, `${join(dir, name)}[Q=90,strip]`], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(ppm);
  return name;
}

/** The pyramid id of a file, with the default settings. */
const fileId = (path) => pyramidId(readFileSync(path));

/** Tiles of `id` that s3s-fs holds (it keeps each object as a file under the bucket's folder). */
function bucketTiles(bucketDir, id) {
  const root = join(bucketDir, `${id}_files`);
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((level) =>
    readdirSync(join(root, level))
      .filter((f) => /^\d+_\d+\.jpeg$/.test(f))
      .map((f) => `${level}/${f}`),
  );
}

/**
 * The folder of `id`'s tiles staged (not committed yet) in s3s-fs: uploads to an uncommitted
 * pyramid are kept per writer under `staging/{writer}/{id}_files/`; each test here has one writer.
 */
function stagedDir(bucketDir, id) {
  const staging = join(bucketDir, 'staging');
  if (!existsSync(staging)) return null;
  const dirs = readdirSync(staging)
    .map((writer) => join(staging, writer, `${id}_files`))
    .filter((dir) => existsSync(dir));
  assert.ok(dirs.length <= 1, `one writer stages ${id} (${dirs.length})`);
  return dirs[0] ?? null;
}

/** Tiles of `id` staged in s3s-fs, as `level/col_row.jpeg`. */
function stagedTiles(bucketDir, id) {
  const dir = stagedDir(bucketDir, id);
  if (!dir) return [];
  return readdirSync(dir).flatMap((level) =>
    readdirSync(join(dir, level))
      .filter((f) => /^\d+_\d+\.jpeg$/.test(f))
      .map((f) => `${level}/${f}`),
  );
}

async function viewerAttrs(page) {
  return page.getByTestId('viewer').evaluate((el) => Object.fromEntries([...el.attributes].map((a) => [a.name, a.value])));
}

/** Waits until the viewer's attribute `name` is one of `values`; returns all its attributes. */
async function waitForAttr(page, name, values, timeout = 60_000) {
  await page.waitForFunction(([n, v]) => v.includes(document.querySelector('[data-testid="viewer"]')?.getAttribute(n)), [name, values], {
    timeout,
    polling: 100,
  });
  return viewerAttrs(page);
}

/** Screen points on a grid over the viewer, away from its edges. */
function grid(box) {
  const points = [];
  for (let i = 1; i <= 6; i++) for (let j = 1; j <= 4; j++) points.push([(box.width * i) / 7, (box.height * j) / 5]);
  return points;
}

let t, s3, store, storeArgs, browserB, pageB;
const images = {};

before(async () => {
  t = await setup('reuse', (dir) => {
    images.first = noisyJpeg(dir, 'first.jpg', 1);
    images.second = noisyJpeg(dir, 'second.jpg', 2);
    images.third = noisyJpeg(dir, 'third.jpg', 3);
    images.fourth = noisyJpeg(dir, 'fourth.jpg', 4);
    return images;
  });
  s3 = await s3sFs(join(t.imagesDir, '..', '..'));
  const s3Store = onS3(s3);
  // Another origin than the page's: manifest, listing, uploads and tiles all cross it through CORS.
  storeArgs = { args: [...s3Store.args, '--cors-origin', t.app.url], env: s3Store.env };
  store = await tileStore(storeArgs.args, { env: storeArgs.env });
});

after(async () => {
  await browserB?.close().catch(() => {});
  await store?.stop();
  await s3?.stop();
  await t?.close();
});

/** A second browser with its own fresh profile: nothing cached, nothing shared with the first. */
async function freshPage() {
  await browserB?.close().catch(() => {});
  browserB = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  const context = await browserB.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('close', () => writeFileSync(join(ARTIFACTS, 'reuse-b-console.log'), `${log.join('\n')}\n`));
  return page;
}

async function screenshot(page, label) {
  const path = join(ARTIFACTS, `reuse-${label}.png`);
  return { png: PNG.sync.read(await page.getByTestId('viewer').screenshot({ path })), path };
}

describe('tile once, reuse everywhere', () => {
  let firstId, shotA;

  test('context A tiles the image, shows it, and the bucket then holds every tile and the committed .dzi', async () => {
    firstId = fileId(join(t.imagesDir, images.first));
    await t.open({ src: `/e2e/${images.first}`, store: store.url });
    const ready = await waitForState(t.page, ['ready', 'error']);
    assert.equal(ready['data-state'], 'ready', ready['data-error']);
    assert.equal(ready['data-source'], 'worker');
    assert.equal(ready['data-pyramid-id'], firstId, 'the worker computes the documented id');

    const saved = await waitForAttr(t.page, 'data-upload', ['saved', 'failed'], 90_000);
    assert.equal(saved['data-upload'], 'saved', saved['data-upload-error']);
    const expected = tileNames(IMAGE.width, IMAGE.height);
    assert.equal(Number(saved['data-upload-total']), expected.length);
    assert.equal(Number(saved['data-upload-sent']), expected.length);
    await t.page.getByText('Saved: the next viewer opens it without tiling.').waitFor();

    const stored = new Set(bucketTiles(s3.bucketDir, firstId));
    assert.deepEqual(
      expected.filter((n) => !stored.has(n)),
      [],
      'every tile is in the bucket',
    );
    const dzi = readFileSync(join(s3.bucketDir, `${firstId}.dzi`), 'utf8');
    assert.match(dzi, new RegExp(`<Size\\s+Height="${IMAGE.height}"\\s+Width="${IMAGE.width}"\\s*/>`));
    // The store serves the committed manifest, as stock OpenSeadragon reads it.
    const manifest = await fetch(`${store.url}/pyramids/${firstId}.dzi`);
    assert.equal(manifest.status, 200);
    assert.equal(await manifest.text(), dzi);

    await waitForSettled(t.page);
    shotA = await t.shot('a-home');
  });

  test('a fresh context B opens the same URL from the store, with no tiling, showing the same pixels', async () => {
    assert.ok(shotA, 'needs the first test');
    pageB = await freshPage();
    const tileRequests = [];
    const bySource = [];
    const manifests = [];
    pageB.on('request', (r) => {
      const url = r.url();
      // One by one, or the whole-image view's levels in one request.
      if (url.startsWith(`${store.url}/pyramids/${firstId}_files/`) || url.startsWith(`${store.url}/pyramids/${firstId}/levels?`))
        tileRequests.push(url);
      if (url.startsWith(`${store.url}/pyramids?source=`)) bySource.push(url);
      if (url.startsWith(`${store.url}/pyramids/${firstId}.dzi`)) manifests.push(url);
    });
    await pageB.goto(`${t.app.url}/?${new URLSearchParams({ src: `/e2e/${images.first}`, store: store.url })}`);
    const ready = await waitForState(pageB, ['ready', 'error']);
    assert.equal(ready['data-state'], 'ready', ready['data-error']);
    assert.equal(ready['data-source'], 'store');
    assert.equal(ready['data-upload'], 'reused');
    assert.equal(ready['data-pyramid-id'], firstId);
    assert.equal(ready['data-decodes'], '0', 'nothing was decoded in the browser');
    assert.equal(ready['data-tiles-done'], '0', 'the worker made no tile');
    assert.ok(tileRequests.length > 0, 'the tiles came from the store');
    // The page hashed the download and asked the store by the image's SHA-256, once; the worker did
    // not ask again by the id.
    const sha256 = createHash('sha256')
      .update(readFileSync(join(t.imagesDir, images.first)))
      .digest('hex');
    assert.deepEqual(
      bySource.map((u) => new URL(u).searchParams.get('source')),
      [sha256],
    );
    assert.deepEqual(manifests, [], 'the worker asked for the manifest too');
    // The header is still read (by the worker, which then stops): the image's own panel fills in.
    const panel = pageB.getByTestId('metadata');
    assert.equal(await panel.locator('[data-field="format"] dd').innerText(), 'JPEG');
    await pageB.getByText('Opened from the store: no tiling needed.').waitFor();

    await waitForSettled(pageB);
    const shotB = await screenshot(pageB, 'b-home');
    const box = await pageB.getByTestId('viewer').boundingBox();
    for (const [x, y] of grid(box)) {
      const a = pixel(shotA.png, x, y);
      const b = pixel(shotB.png, x, y);
      assert.ok(
        a.every((v, i) => Math.abs(v - b[i]) <= 3),
        `screen (${x.toFixed(0)}, ${y.toFixed(0)}): A ${a}, B ${b}; see ${shotA.path} and ${shotB.path}`,
      );
    }
    // Not a blank screen on both sides: the image is there.
    const [cx, cy] = [box.width / 2, box.height / 2];
    assert.notDeepEqual(pixel(shotB.png, cx, cy), pixel(shotB.png, 5, 5));
  });

  test('a known pyramid id opens the stored pyramid without downloading the image', async () => {
    assert.ok(pageB, 'needs the second test');
    // The image URL does not exist: a download would fail, so showing it proves none was made.
    await pageB.goto(`${t.app.url}/?${new URLSearchParams({ src: '/e2e/gone.jpg', pyramid: firstId, store: store.url })}`);
    const ready = await waitForState(pageB, ['ready', 'error']);
    assert.equal(ready['data-state'], 'ready', ready['data-error']);
    assert.equal(ready['data-source'], 'store');
    assert.equal(ready['data-upload'], 'reused');
    assert.equal(Number(ready['data-width']), IMAGE.width);
    assert.equal(Number(ready['data-height']), IMAGE.height);
  });

  test('a store killed mid-upload and started again gets the rest; tiles it lost are sent before the commit', async () => {
    const id = fileId(join(t.imagesDir, images.second));
    const expected = tileNames(IMAGE.width, IMAGE.height);
    await t.open({ src: `/e2e/${images.second}`, store: store.url, storeBatchBytes: String(SMALL_BATCH) });
    await t.page.waitForFunction(
      () => {
        const el = document.querySelector('[data-testid="viewer"]');
        return el?.getAttribute('data-upload') === 'uploading' && Number(el.getAttribute('data-upload-sent')) >= 10;
      },
      null,
      { timeout: 60_000, polling: 20 },
    );
    await store.stop('SIGKILL');
    const cut = await viewerAttrs(t.page);
    assert.ok(Number(cut['data-upload-sent']) < expected.length, `cut mid-upload (${cut['data-upload-sent']} of ${expected.length} sent)`);
    assert.ok(!existsSync(join(s3.bucketDir, `${id}.dzi`)), 'nothing is committed yet');

    // The store loses the three oldest tiles it had acknowledged: the commit must notice, and
    // the page send them again. (Batches go one at a time, so the oldest files were acknowledged.)
    // (The upload is staged for this page's writer until the commit.)
    const staged = stagedDir(s3.bucketDir, id);
    const files = stagedTiles(s3.bucketDir, id).map((n) => ({ n, at: statSync(join(staged, n)).mtimeMs }));
    files.sort((a, b) => a.at - b.at);
    const lost = files.slice(0, 3).map((f) => f.n);
    assert.equal(lost.length, 3);
    for (const n of lost) rmSync(join(staged, n));

    // With the store gone, the image is still shown and the upload waits to retry.
    const ready = await waitForState(t.page, ['ready', 'error']);
    assert.equal(ready['data-state'], 'ready', ready['data-error']);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await viewerAttrs(t.page))['data-upload'], 'uploading');
    await t.page.getByText(/Store unavailable: cannot reach tile-store/).waitFor({ timeout: 20_000 });

    store = await tileStore(storeArgs.args, { port: store.port, env: storeArgs.env });
    const saved = await waitForAttr(t.page, 'data-upload', ['saved', 'failed'], 120_000);
    assert.equal(saved['data-upload'], 'saved', saved['data-upload-error']);
    assert.ok(Number(saved['data-upload-resent']) >= lost.length, `the lost tiles were sent again (resent ${saved['data-upload-resent']})`);
    const stored = new Set(bucketTiles(s3.bucketDir, id));
    assert.deepEqual(
      expected.filter((n) => !stored.has(n)),
      [],
      'every tile is in the bucket',
    );
    assert.ok(existsSync(join(s3.bucketDir, `${id}.dzi`)), 'the manifest is committed');
  });

  test('a reload resumes the upload: only the tiles the store lacks are sent', async () => {
    // Staged tiles belong to their writer: a token names the same writer after a reload (an
    // anonymous page gets a new upload session, and starts again).
    const token = 'e2e-resume-token';
    const authed = await tileStore([...storeArgs.args, '--token', token], { env: storeArgs.env });
    try {
      const id = fileId(join(t.imagesDir, images.fourth));
      const expected = tileNames(IMAGE.width, IMAGE.height);
      const params = { src: `/e2e/${images.fourth}`, store: authed.url, storeBatchBytes: String(SMALL_BATCH) };
      const open = () => t.page.goto(`${t.app.url}/?${new URLSearchParams(params)}#token=${token}`);
      await open();
      await t.page.waitForFunction(
        () => Number(document.querySelector('[data-testid="viewer"]')?.getAttribute('data-upload-sent')) >= 10,
        null,
        { timeout: 60_000, polling: 20 },
      );
      // Leaving the page ends its worker and the upload with it, part-way.
      await t.page.goto('about:blank');
      const snapshot = () => {
        const dir = stagedDir(s3.bucketDir, id);
        return new Map(stagedTiles(s3.bucketDir, id).map((n) => [n, statSync(join(dir, n)).mtimeMs]));
      };
      let before = snapshot();
      for (let settled = false; !settled; ) {
        await new Promise((r) => setTimeout(r, 300));
        const now = snapshot();
        settled = now.size === before.size;
        before = now;
      }
      assert.ok(before.size >= 10 && before.size < expected.length, `part of the pyramid is staged (${before.size} of ${expected.length})`);
      assert.ok(!existsSync(join(s3.bucketDir, `${id}.dzi`)), 'nothing is committed yet');

      // The commit is held: every batch has been answered by then, so the staging holds what this
      // writer sent, and the files staged before the reload show whether they were sent again.
      const commit = await holdRequest(t.page, `${authed.url}/pyramids/${id}.dzi`, { method: 'PUT' });
      await open();
      await commit.requested;
      const staged = snapshot();
      const rewritten = [...before].filter(([n, at]) => staged.get(n) !== at).map(([n]) => n);
      assert.deepEqual(rewritten, [], 'tiles the store had were not sent again');
      assert.deepEqual(
        expected.filter((n) => !staged.has(n)),
        [],
        'the rest was sent',
      );
      assert.ok(await commit.release(), 'the commit was still waiting');
      const saved = await waitForAttr(t.page, 'data-upload', ['saved', 'failed'], 90_000);
      assert.equal(saved['data-upload'], 'saved', saved['data-upload-error']);
      assert.equal(Number(saved['data-upload-found']), before.size, 'the store listed what it had');
      // Committed: every tile is under its final key, promoted from the staged copies (hard
      // links on disk, copies on S3), and the staging of this writer is gone.
      const after = new Set(bucketTiles(s3.bucketDir, id));
      assert.deepEqual(
        expected.filter((n) => !after.has(n)),
        [],
        'every tile is in the bucket',
      );
      assert.deepEqual(stagedTiles(s3.bucketDir, id), [], 'the staged copies are removed');
      assert.ok(existsSync(join(s3.bucketDir, `${id}.dzi`)), 'the manifest is committed');
    } finally {
      await authed.stop();
    }
  });

  test('a store refusing writes (no token) fails the upload with the reason; the image stays viewable; with the token it saves', async () => {
    const token = 'e2e-write-token';
    const locked = await tileStore(['--data-dir', join(t.imagesDir, '..', '..', 'locked'), '--token', token, '--cors-origin', t.app.url]);
    try {
      await t.open({ src: `/e2e/${images.third}`, store: locked.url });
      const ready = await waitForState(t.page, ['ready', 'error']);
      assert.equal(ready['data-state'], 'ready', ready['data-error']);
      const failed = await waitForAttr(t.page, 'data-upload', ['saved', 'failed'], 30_000);
      assert.equal(failed['data-upload'], 'failed');
      assert.match(failed['data-upload-error'], /401/);
      await t.page.getByRole('alert').filter({ hasText: 'Not saved' }).waitFor();

      // The bearer token crosses origins (CORS preflight with Authorization) and the upload is saved.
      await t.page.goto('about:blank');
      await t.page.goto(`${t.app.url}/?${new URLSearchParams({ src: `/e2e/${images.third}`, store: locked.url })}#token=${token}`);
      const saved = await waitForAttr(t.page, 'data-upload', ['saved', 'failed'], 60_000);
      assert.equal(saved['data-upload'], 'saved', saved['data-upload-error']);
      const id = saved['data-pyramid-id'];
      assert.equal((await fetch(`${locked.url}/pyramids/${id}.dzi`)).status, 200, 'committed on the locked store');
    } finally {
      await locked.stop();
    }
  });
});
