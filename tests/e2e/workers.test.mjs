// Several workers make one pyramid (`WorkerSettings.tilerWorkers`, `?workers=` on the demo): the
// worker that decodes hands tile rows of the full-resolution level to helper workers, through a
// SharedArrayBuffer when `tile-store serve` makes the page cross-origin isolated (its default) and
// through transferred buffers when it does not (`--cross-origin-isolation false`). Every tile the
// page uploads to the store is compared byte for byte with the native CLI's (`tile-store tile`) and
// with the one-worker pyramid; the viewer says which path ran (`data-tiler-memory`). A helper that
// fails fails the image with its reason instead of leaving it unfinished.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM_ARGS, DEMO_DIST, TILE_STORE } from './harness.mjs';
import { tileStore } from './servers.mjs';

/** 12 × 8 full-resolution tiles: enough rows for two helpers. */
const IMAGE = { width: 3001, height: 2001 };

/** A photo-like JPEG: gradients under seeded noise, so tiles are tens of KB and every one differs. */
function noisyJpeg(dir) {
  const { width, height } = IMAGE;
  const pixels = Buffer.alloc(width * height * 3);
  let state = 0x2545f491;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const n = (state >>> 25) - 64;
      const i = (y * width + x) * 3;
      pixels[i] = Math.max(0, Math.min(255, (255 * x) / width + n));
      pixels[i + 1] = Math.max(0, Math.min(255, (255 * y) / height - n));
      pixels[i + 2] = Math.max(0, Math.min(255, 128 + 100 * Math.sin((x + 2 * y) / 90) + (n >> 1)));
    }
  }
  const ppm = join(dir, 'photo.ppm');
  writeFileSync(ppm, Buffer.concat([Buffer.from(`P6\n${width} ${height}\n255\n`), pixels]));
  execFileSync('vips', ['copy', ppm, `${join(dir, 'photo.jpg')}[Q=90,strip]`], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(ppm);
  return join(dir, 'photo.jpg');
}

/** Every tile file under `files`, by `level/col_row.ext`. */
function tilesIn(files) {
  const out = new Map();
  for (const level of readdirSync(files)) {
    for (const f of readdirSync(join(files, level))) out.set(`${level}/${f}`, readFileSync(join(files, level, f)));
  }
  return out;
}

let work;
let native;
let nativeDzi;
let webDir;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'tessera-e2e-workers-'));
  webDir = join(work, 'web');
  cpSync(DEMO_DIST, webDir, { recursive: true });
  mkdirSync(join(webDir, 'e2e'));
  const source = noisyJpeg(join(webDir, 'e2e'));
  execFileSync(TILE_STORE, ['tile', source, join(work, 'native')], { stdio: ['ignore', 'ignore', 'inherit'] });
  native = tilesIn(join(work, 'native_files'));
  nativeDzi = readFileSync(join(work, 'native.dzi'), 'utf8');
});

after(() => rmSync(work, { recursive: true, force: true }));

/** `tile-store serve` on a fresh data folder with the demo and the photo; `extra` arguments. */
async function serve(extra = []) {
  const data = mkdtempSync(join(work, 'data-'));
  return tileStore(['--web-dir', webDir, '--data-dir', data, ...extra]);
}

/** A fresh browser on `url`; `run(page, log)` drives it. */
async function inBrowser(name, run) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const context = await chromium.launchPersistentContext(mkdtempSync(join(work, 'chromium-')), {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
  });
  const log = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
    return await run(page, log);
  } finally {
    writeFileSync(join(ARTIFACTS, `workers-${name}-console.log`), `${log.join('\n')}\n`);
    await context.close().catch(() => {});
  }
}

/** The viewer's attributes once `done(attrs)` holds (or it failed). */
async function viewerWhen(page, done, timeout = 120_000) {
  const handle = await page.waitForFunction(
    (src) => {
      const el = document.querySelector('[data-testid="viewer"]');
      if (!el) return null;
      const a = Object.fromEntries([...el.attributes].map((x) => [x.name, x.value]));
      return a['data-state'] === 'error' || new Function('a', `return (${src})(a)`)(a) ? a : null;
    },
    done.toString(),
    { timeout, polling: 50 },
  );
  return handle.jsonValue();
}

/**
 * Tiles the photo in the page with `workers` workers and the store on the same origin; once the
 * upload is committed, reads every tile of the pyramid back from the store.
 */
async function tileInPage(server, workers, name) {
  return inBrowser(name, async (page, log) => {
    await page.goto(`${server.url}/?${new URLSearchParams({ src: '/e2e/photo.jpg', store: '/', workers: String(workers) })}`);
    const a = await viewerWhen(page, (x) => x['data-upload'] === 'saved' && x['data-tiler-memory'] !== undefined);
    assert.notEqual(a['data-state'], 'error', `${name}: ${a['data-error']}\n${log.join('\n')}`);
    const isolated = await page.evaluate(() => self.crossOriginIsolated);
    const id = a['data-pyramid-id'];
    const dzi = await (await fetch(`${server.url}/pyramids/${id}.dzi`)).text();
    const tiles = new Map();
    for (const tile of native.keys()) {
      const r = await fetch(`${server.url}/pyramids/${id}_files/${tile}`);
      assert.equal(r.status, 200, `${name}: ${tile}`);
      tiles.set(tile, Buffer.from(await r.arrayBuffer()));
    }
    return { isolated, workers: Number(a['data-tiler-workers']), memory: a['data-tiler-memory'], dzi, tiles };
  });
}

/** Every tile equal to the native CLI's (and the same set of names). */
function assertNative(made, what) {
  assert.equal(made.dzi, nativeDzi, `${what}: .dzi`);
  const differ = [...native].filter(([tile, bytes]) => !made.tiles.get(tile)?.equals(bytes)).map(([tile]) => tile);
  assert.deepEqual(differ, [], `${what}: ${differ.length} of ${native.size} tiles differ from tile-store tile's`);
}

describe('several tiler workers', () => {
  let one;

  test('one worker keeps the single path, and its tiles are the native ones', async () => {
    const server = await serve();
    try {
      one = await tileInPage(server, 1, 'one');
      assert.equal(one.isolated, true);
      assert.deepEqual([one.workers, one.memory], [1, 'single']);
      assertNative(one, 'one worker');
    } finally {
      await server.stop();
    }
  });

  test('cross-origin isolated: helpers read a SharedArrayBuffer, and every tile is the native one', async () => {
    const server = await serve();
    try {
      const page = await fetch(`${server.url}/`);
      assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
      assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
      const made = await tileInPage(server, 2, 'shared');
      assert.equal(made.isolated, true, 'the page is cross-origin isolated');
      assert.deepEqual([made.workers, made.memory], [2, 'shared']);
      assertNative(made, 'two workers, shared memory');
      assert.ok(one, 'the one-worker pyramid was made');
      for (const [tile, bytes] of one.tiles) assert.ok(made.tiles.get(tile).equals(bytes), `${tile}: one worker against two`);
      // Under COEP require-corp, OpenSeadragon still draws the store's own tiles (same origin).
      await inBrowser('shared-reopen', async (page, log) => {
        const tiles = [];
        // One by one, or the whole-image view's levels in one response.
        page.on('response', (r) => /_files\/|\/pyramids\/[0-9a-f]{64}\/levels\?/.test(r.url()) && tiles.push(r.status()));
        await page.goto(`${server.url}/?${new URLSearchParams({ src: '/e2e/photo.jpg', store: '/' })}`);
        const a = await viewerWhen(page, (x) => x['data-state'] === 'ready');
        assert.equal(a['data-state'], 'ready', `${a['data-error']}\n${log.join('\n')}`);
        assert.equal(a['data-source'], 'store');
        assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
        assert.ok(tiles.length > 0 && tiles.every((status) => status === 200), `store tiles: ${tiles}`);
      });
    } finally {
      await server.stop();
    }
  });

  test('not isolated: helpers get transferred buffers, and every tile is the native one', async () => {
    const server = await serve(['--cross-origin-isolation', 'false']);
    try {
      const page = await fetch(`${server.url}/`);
      assert.equal(page.headers.get('cross-origin-embedder-policy'), null);
      const made = await tileInPage(server, 3, 'transfer');
      assert.equal(made.isolated, false, 'the page is not cross-origin isolated');
      assert.deepEqual([made.workers, made.memory], [3, 'transfer']);
      assertNative(made, 'three workers, transferred buffers');
    } finally {
      await server.stop();
    }
  });

  /**
   * Opens the photo with two workers after `breakHelper` (page source, run before the app) has
   * wrapped `Worker.prototype.postMessage` to change what the helper is told; returns the viewer's
   * attributes once the image has failed (or after 30 s).
   */
  async function withBrokenHelper(name, breakHelper) {
    const server = await serve();
    try {
      return await inBrowser(name, async (page) => {
        await page.addInitScript(`(() => {
          const post = Worker.prototype.postMessage;
          Worker.prototype.postMessage = function (message, transfer) {
            if (message && message.type === 'helper') return (${breakHelper})(post.bind(this), message, transfer);
            return post.call(this, message, transfer);
          };
        })()`);
        await page.goto(`${server.url}/?${new URLSearchParams({ src: '/e2e/photo.jpg', workers: '2' })}`);
        return viewerWhen(page, () => false, 30_000);
      });
    } finally {
      await server.stop();
    }
  }

  test('a helper that throws fails the image with its reason', async () => {
    // A message it has no handler for: an uncaught error in the helper.
    const a = await withBrokenHelper('helper-throws', (post, message, transfer) => {
      post(message, transfer);
      post({ type: 'no-such-message' });
    });
    assert.equal(a['data-state'], 'error');
    assert.equal(a['data-error-code'], 'worker');
    // Reported by the helper itself, or (should it die first) by its worker's error event.
    assert.match(a['data-error'], /^Tiler helper worker 1(:| stopped:) /);
  });

  test('a helper that cannot load the module fails the image, which never hangs', async () => {
    const a = await withBrokenHelper('helper-no-wasm', (post, message, transfer) =>
      post({ ...message, wasmUrl: new URL('/no-such-tiler.wasm', location.href).href }, transfer),
    );
    assert.equal(a['data-state'], 'error');
    assert.equal(a['data-error-code'], 'wasm_load');
    assert.match(a['data-error'], /^Tiler helper worker 1 failed: Could not load the tiler/);
  });
});
