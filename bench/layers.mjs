#!/usr/bin/env node
// Large damage layers in figures: a grid of N short lines over a 3-megapixel image, drawn by the
// canvas renderer (VectorCanvas, what the Workspace uses past 1,000 features) against one SVG element
// a feature (VectorOverlay, the reference: what it used before).
//
// Usage: `make bench-layers` (also run by `make bench-browser`) or
// `node bench/layers.mjs [--features 10000] [--runs 3]`.
//
// One `tile-store serve` on 127.0.0.1 serves the demo app, the image and the layer. Each run, in a
// fresh Chromium profile (1280 × 800), opens the image alone, waits until it is drawn, then:
// - first draw: the page is given `?vectorSrc=` (history + popstate, as the demo's own navigation)
//   → two frames after every feature is drawn (the canvas's first draw with all N features, or N SVG
//   elements in the page); fetching and parsing the layer is included, the same for both;
// - frames: every frame's interval (requestAnimationFrame) while the view zooms in 2× (the Zoom in
//   button) and pans (an arrow key), and for the canvas its own draw time per frame (data-last-draw-ms).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, median, table } from './table.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'www/demo/dist');
const { chromium } = createRequire(join(ROOT, 'tests/e2e/package.json'))('playwright-core');
const { CHROMIUM_ARGS } = await import('../tests/e2e/harness.mjs');
const { tileStore } = await import('../tests/e2e/servers.mjs');
const { gridLayer, makeImages, QUAD } = await import('../tests/e2e/images.mjs');

const VIEWPORT = { width: 1280, height: 800 };

const percentile = (xs, p) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : null;
};

/** Waits until the viewer's `data-animations` count passes `n` and nothing animates. */
const animationsPast = (page, n) =>
  page.waitForFunction(
    (k) => {
      const v = document.querySelector('[data-testid="viewer"]');
      return Number(v?.getAttribute('data-animations')) > k && v?.getAttribute('data-animating') === 'false';
    },
    n,
    { timeout: 60_000, polling: 'raf' },
  );

async function run(browser, url, renderer, features) {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  const page = await context.newPage();
  try {
    await page.goto(`${url}/?${new URLSearchParams({ src: '/bench/image.jpg', vectorRenderer: renderer })}`);
    await page.waitForFunction(() => document.querySelector('[data-testid="viewer"]')?.getAttribute('data-fully-loaded') === 'true', null, {
      timeout: 120_000,
    });

    // First draw.
    await page.evaluate(() => {
      const q = new URLSearchParams(location.search);
      q.set('vectorSrc', '/bench/layer.json');
      history.pushState(null, '', `?${q}`);
      window.__layerAsked = performance.now();
      dispatchEvent(new PopStateEvent('popstate'));
    });
    await page.waitForFunction(
      ([r, n]) =>
        r === 'canvas'
          ? Number(document.querySelector(`[data-testid="vector-canvas"][data-features="${n}"]`)?.dataset.drawn) === n
          : document.querySelectorAll('[data-testid="vector-feature"]').length === n,
      [renderer, features],
      { timeout: 120_000, polling: 'raf' },
    );
    const firstDraw = await page.evaluate(
      () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now() - window.__layerAsked)))),
    );

    // Frames while zooming and panning.
    await page.evaluate(() => {
      const record = { times: [], draws: [], on: true };
      const tick = (t) => {
        record.times.push(t);
        const ms = Number(document.querySelector('[data-testid="vector-canvas"]')?.dataset.lastDrawMs);
        if (Number.isFinite(ms)) record.draws.push(ms);
        if (record.on) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
      window.__frames = record;
    });
    const before = Number(await page.getByTestId('viewer').getAttribute('data-animations'));
    await page.getByRole('button', { name: 'Zoom in' }).click();
    await animationsPast(page, before);
    await page.locator('.openseadragon-canvas').focus();
    await page.keyboard.press('ArrowRight');
    await animationsPast(page, before + 1);
    const { times, draws } = await page.evaluate(() => {
      window.__frames.on = false;
      return window.__frames;
    });
    const intervals = times.slice(1).map((t, i) => t - times[i]);
    return {
      firstDraw,
      frames: intervals.length,
      frameMedian: median(intervals),
      frameP95: percentile(intervals, 0.95),
      drawMedian: median(draws),
    };
  } finally {
    await context.close().catch(() => {});
  }
}

async function main() {
  const { values } = parseArgs({ options: { features: { type: 'string', default: '10000' }, runs: { type: 'string', default: '3' } } });
  const side = Math.round(Math.sqrt(Number(values.features)));
  const features = side * side;
  const runs = Number(values.runs);
  const work = mkdtempSync(join(tmpdir(), 'tessera-bench-layers-'));
  let app;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
  });
  try {
    const webDir = join(work, 'web');
    cpSync(DIST, webDir, { recursive: true });
    const dir = join(webDir, 'bench');
    mkdirSync(dir);
    const files = makeImages(dir);
    cpSync(join(dir, files.quadrants), join(dir, 'image.jpg'));
    writeFileSync(join(dir, 'layer.json'), JSON.stringify(gridLayer(side, side, QUAD.width, QUAD.height)));
    mkdirSync(join(work, 'data'));
    app = await tileStore(['--web-dir', webDir, '--data-dir', join(work, 'data')]);

    const results = { canvas: [], svg: [] };
    for (let i = 0; i < runs; i++) {
      // Alternating, so a busy spell of the machine does not land on one renderer only.
      for (const renderer of ['canvas', 'svg']) {
        const r = await run(browser, app.url, renderer, features);
        results[renderer].push(r);
        console.error(
          `${renderer} run ${i + 1}/${runs}: first draw ${fmt(r.firstDraw)} ms; ${r.frames} frames, median ${fmt(r.frameMedian, 1)} ms, p95 ${fmt(r.frameP95, 1)} ms; draw ${fmt(r.drawMedian, 2)} ms`,
        );
      }
    }
    const svgFirst = median(results.svg.map((r) => r.firstDraw));
    const svgFrame = median(results.svg.map((r) => r.frameMedian));
    const rows = Object.entries(results).map(([renderer, rs]) => {
      const first = median(rs.map((r) => r.firstDraw));
      const frame = median(rs.map((r) => r.frameMedian));
      return {
        renderer: renderer === 'canvas' ? 'canvas (VectorCanvas)' : 'svg (VectorOverlay)',
        features,
        'first draw ms': fmt(first),
        'first ÷ svg': fmt(first / svgFirst, 2),
        'frame ms median': fmt(frame, 1),
        'frame ms p95': fmt(median(rs.map((r) => r.frameP95)), 1),
        'frame ÷ svg': fmt(frame / svgFrame, 2),
        'canvas draw ms': fmt(median(rs.map((r) => r.drawMedian)), 2),
      };
    });
    console.log(
      `${new Date().toISOString()}; medians of ${runs} runs; Chromium headless ${VIEWPORT.width}×${VIEWPORT.height}, ${QUAD.width}×${QUAD.height} image`,
    );
    console.log(table(rows));
  } finally {
    await browser.close().catch(() => {});
    await app?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
