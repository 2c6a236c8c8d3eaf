// Shared set-up: the built app served by the real tile-store, test images beside it, a second
// loopback origin without CORS headers, and Debian's Chromium driven by playwright-core.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { ORIENTED, quadrantColour } from './images.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = join(ROOT, 'tests/artifacts');
/** The demo app's build (www/demo, `make web`). */
export const DEMO_DIST = join(ROOT, 'www/demo/dist');
/** The sample image and its vector layer, shipped with the demo. */
export const SAMPLES = join(ROOT, 'www/demo/public/samples');
export const TILE_STORE = process.env.TILE_STORE_BIN ?? join(ROOT, 'target/release/tile-store');

/** Debian Chromium's flags here: headless, and nothing that reaches past loopback. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Chromium 156 loads its omnibox popup (a WebUI page, chrome://omnibox-popup.top-chrome) in a renderer
  // of its own as the browser starts: a trace of a page load on a fresh browser had that renderer's main
  // thread busier than the page's (1.06 s against 0.65 s in the first second), which on two cores is
  // the page's benchmarks and tests competing with the browser's own start-up.
  '--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup',
];

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.jpg': 'image/jpeg',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/** A free loopback port (the OS picks one; it is free again when this returns). */
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** A plain static file server on 127.0.0.1; CORS headers only if `cors`. */
export async function staticServer(dir, { cors = false } = {}) {
  const server = createServer((req, res) => {
    if (cors) res.setHeader('access-control-allow-origin', '*');
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = join(dir, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

async function waitForHttp(url, child, log) {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`tile-store exited with ${child.exitCode}:\n${log()}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tile-store did not answer ${url}:\n${log()}`);
}

/** `tile-store serve` with the built app plus `files` (name → contents) under /e2e/, and `args`. */
async function tileStore(webDir, dataDir, args = []) {
  const port = await freePort();
  let output = '';
  const child = spawn(TILE_STORE, ['serve', '--listen', `127.0.0.1:${port}`, '--web-dir', webDir, '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/`, child, () => output);
  return {
    url,
    kind: 'tile-store',
    close: () =>
      new Promise((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', r);
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Everything a scenario needs. `prepare(imagesDir)` writes test files, served at `/e2e/`; `dist` is
 * the built app to serve (default: the demo); `serveArgs` go to `tile-store serve`.
 * Returns `{ app, foreign, open, shot, close }`.
 */
export async function setup(name, prepare, { dist: DIST = DEMO_DIST, serveArgs = [] } = {}) {
  if (!existsSync(join(DIST, 'index.html'))) throw new Error(`no built app at ${DIST}; run \`make web\` first`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), `tessera-e2e-${name}-`));
  const webDir = join(work, 'web');
  cpSync(DIST, webDir, { recursive: true });
  const images = join(webDir, 'e2e');
  mkdirSync(images);
  const files = await prepare(images);
  const dataDir = join(work, 'data');
  mkdirSync(dataDir);

  let app;
  if (existsSync(TILE_STORE)) app = await tileStore(webDir, dataDir, serveArgs);
  else if (process.env.TESSERA_E2E_STATIC === '1') app = { ...(await staticServer(webDir)), kind: 'static' };
  else throw new Error(`no tile-store binary at ${TILE_STORE}; run \`make server\` (or TESSERA_E2E_STATIC=1)`);

  // Other origins (other ports) serving the same files: an image host without CORS headers,
  // and one that allows any origin, as an S3 bucket with a CORS rule does.
  const foreign = await staticServer(images);
  const withCors = await staticServer(images, { cors: true });

  // A fresh profile every run; playwright takes it as userDataDir rather than a flag.
  const context = await chromium.launchPersistentContext(join(work, 'chromium'), {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
  });
  const page = await context.newPage();
  const consoleLog = [];
  page.on('console', (m) => consoleLog.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLog.push(`[pageerror] ${e.message}`));

  return {
    app,
    foreign,
    withCors,
    files,
    imagesDir: images,
    page,
    consoleLog,
    /** Opens the app with these query parameters. */
    async open(params) {
      const q = new URLSearchParams(params);
      await page.goto(`${app.url}/?${q}`);
    },
    /** Screenshot of the viewer element saved as tests/artifacts/<name>-<label>.png, decoded. */
    async shot(label) {
      const path = join(ARTIFACTS, `${name}-${label}.png`);
      const buffer = await page.getByTestId('viewer').screenshot({ path });
      return { png: PNG.sync.read(buffer), path };
    },
    async close() {
      writeFileSync(join(ARTIFACTS, `${name}-console.log`), `${consoleLog.join('\n')}\n`);
      await context.close().catch(() => {});
      await foreign.close();
      await withCors.close();
      await app.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Waits for the viewer's `data-state` to be one of `states`; returns the viewer's attributes. */
export async function waitForState(page, states, timeout = 120_000) {
  const viewer = page.getByTestId('viewer');
  await page.waitForFunction(
    (want) => want.includes(document.querySelector('[data-testid="viewer"]')?.getAttribute('data-state')),
    states,
    { timeout, polling: 100 },
  );
  return viewer.evaluate((el) => Object.fromEntries([...el.attributes].map((a) => [a.name, a.value])));
}

/** Runs `action` (a click that moves the view) and waits until that move has finished and drawn. */
export async function moveView(page, action) {
  const viewer = page.getByTestId('viewer');
  const before = Number(await viewer.getAttribute('data-animations'));
  await action();
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid="viewer"]')?.getAttribute('data-animations')) > n, before, {
    timeout: 30_000,
    polling: 50,
  });
  await waitForSettled(page);
}

/**
 * Resizes the window and waits until OpenSeadragon has taken the new size in: it looks at its
 * container once a frame and refits the view, which is itself a short animation (a start and a
 * finish); a move started before that has finished would be counted by the wrong `animation-finish`.
 */
export async function resizeWindow(page, size) {
  await page.setViewportSize(size);
  const frames = (n) =>
    page.evaluate(
      (k) =>
        new Promise((r) => {
          const next = (i) => (i === 0 ? r() : requestAnimationFrame(() => next(i - 1)));
          next(k);
        }),
      n,
    );
  await frames(3);
  await page.waitForFunction(
    () => {
      const viewer = document.querySelector('[data-testid="viewer"]');
      return !viewer || viewer.getAttribute('data-animating') === 'false';
    },
    null,
    { timeout: 30_000, polling: 'raf' },
  );
  await frames(3);
}

/** Waits until the viewer has stopped animating and every tile of the view is drawn. */
export async function waitForSettled(page, timeout = 60_000) {
  await page.waitForFunction(
    () => {
      const el = document.querySelector('[data-testid="viewer"]');
      return el?.getAttribute('data-animating') === 'false' && el?.getAttribute('data-fully-loaded') === 'true';
    },
    null,
    { timeout, polling: 100 },
  );
  // Two frames, so the last tiles are painted, not just decoded.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** The RGB of screenshot pixel (x, y). */
export function pixel(png, x, y) {
  const i = (Math.round(y) * png.width + Math.round(x)) * 4;
  return [png.data[i], png.data[i + 1], png.data[i + 2]];
}

/** Whether two colours differ by at most `tolerance` in every channel. */
export function near(a, b, tolerance = 28) {
  return a.every((v, i) => Math.abs(v - b[i]) <= tolerance);
}

/**
 * Where image pixel (x, y) appears in the viewer element at the home view (the image fitted and
 * centred), zoomed by `zoom` about the element's centre.
 */
export function toScreen(box, image, zoom, x, y) {
  const scale = Math.min(box.width / image.width, box.height / image.height) * zoom;
  return {
    x: box.width / 2 + (x - image.width / 2) * scale,
    y: box.height / 2 + (y - image.height / 2) * scale,
  };
}

/** The screen box of the image-pixel box `[x0, y0, x1, y1]`, as `toScreen` places its corners. */
export function toScreenBox(box, image, zoom, [x0, y0, x1, y1]) {
  const a = toScreen(box, image, zoom, x0, y0);
  const b = toScreen(box, image, zoom, x1, y1);
  return { x: a.x, y: a.y, width: b.x - a.x, height: b.y - a.y };
}

/**
 * The on-screen box of damage feature `index`'s geometry (without its stroke), relative to the
 * viewer element: the SVG shape's own bounding box through its screen transform.
 */
export async function screenBoxOfFeature(page, index) {
  return page.evaluate((i) => {
    const viewer = document.querySelector('[data-testid="viewer"]').getBoundingClientRect();
    const shape = document.querySelector(
      `[data-testid="vector-feature"][data-index="${i}"] path, [data-testid="vector-feature"][data-index="${i}"] circle`,
    );
    const b = shape.getBBox();
    const m = shape.getScreenCTM();
    return { x: m.a * b.x + m.e - viewer.x, y: m.d * b.y + m.f - viewer.y, width: m.a * b.width, height: m.d * b.height };
  }, index);
}

/** Asserts two screen boxes `{ x, y, width, height }` agree within `tolerance` pixels. */
export function assertBoxNear(got, want, what, tolerance = 2) {
  for (const k of ['x', 'y', 'width', 'height']) {
    assert.ok(Math.abs(got[k] - want[k]) <= tolerance, `${what} ${k}: got ${got[k].toFixed(1)}, want ${want[k].toFixed(1)}`);
  }
}

/**
 * The page's question to the store for a downloaded image's pyramid, by the image's SHA-256
 * (`GET /pyramids?source=`): made before anything is decoded, and answered before the worker
 * starts a preview (or 500 ms, whichever comes first).
 */
export const STORE_CHECK = /\/pyramids\?source=[0-9a-f]{64}/;

/**
 * Holds the first request matching `pattern` (a playwright URL glob) until `release()`, as a
 * deterministic brake: the page cannot get past that request while the test waits for an event.
 * `requested` resolves when the request arrives (and rejects if none has within `timeout`);
 * `release()` lets it through unchanged and resolves to whether the requester was still waiting for
 * it (false if it gave up meanwhile: a timeout, or its worker was terminated).
 */
export async function holdRequest(page, pattern, { method = 'GET', timeout = 60_000 } = {}) {
  let arrived;
  let timer;
  // A request that never comes fails the test (with the pattern named) instead of hanging it.
  const requested = new Promise((resolve, reject) => {
    arrived = (url) => {
      clearTimeout(timer);
      resolve(url);
    };
    timer = setTimeout(() => reject(new Error(`no ${method} ${pattern} request within ${timeout} ms`)), timeout);
    timer.unref();
  });
  requested.catch(() => {});
  let letGo;
  const released = new Promise((r) => (letGo = r));
  let held = null;
  let abandoned = false;
  const onFailed = (request) => {
    if (request === held) abandoned = true;
  };
  page.on('requestfailed', onFailed);
  let taken = false;
  const handler = async (route) => {
    if (taken || route.request().method() !== method) return route.fallback();
    taken = true;
    held = route.request();
    arrived(held.url());
    await released;
    await route.continue().catch(() => {});
  };
  await page.route(pattern, handler);
  return {
    requested,
    async release() {
      clearTimeout(timer);
      const waiting = !abandoned;
      letGo();
      page.off('requestfailed', onFailed);
      return waiting;
    },
  };
}

/** Waits until `attribute` is present on the viewer, or its state is `ready` or `error`; returns its attributes. */
export async function waitForAttribute(page, attribute, timeout = 120_000) {
  await page.waitForFunction(
    (name) => {
      const el = document.querySelector('[data-testid="viewer"]');
      return el?.hasAttribute(name) || ['ready', 'error'].includes(el?.getAttribute('data-state'));
    },
    attribute,
    { timeout, polling: 20 },
  );
  return page.getByTestId('viewer').evaluate((el) => Object.fromEntries([...el.attributes].map((a) => [a.name, a.value])));
}

/**
 * Opens the EXIF orientation 6 test image (stored 800 × 1200) in `t` and checks it is shown upright:
 * 1200 × 800, each quadrant's colour where the upright image has it.
 */
export async function assertOrientedUpright(t) {
  await t.open({ src: `/e2e/${t.files.oriented}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(Number(attrs['data-width']), ORIENTED.width);
  assert.equal(Number(attrs['data-height']), ORIENTED.height);
  await waitForSettled(t.page);
  const box = await t.page.getByTestId('viewer').boundingBox();
  const shot = await t.shot('upright');
  const { width: W, height: H } = ORIENTED;
  for (const [x, y] of [
    [W / 4, H / 4],
    [(3 * W) / 4, H / 4],
    [W / 4, (3 * H) / 4],
    [(3 * W) / 4, (3 * H) / 4],
  ]) {
    const at = toScreen(box, ORIENTED, 1, x, y);
    const want = quadrantColour(x, y, W, H);
    const got = pixel(shot.png, at.x, at.y);
    assert.ok(near(got, want), `upright (${x}, ${y}): got ${got}, want ${want}; see ${shot.path}`);
  }
}
