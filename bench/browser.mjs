#!/usr/bin/env node
// Tessera in headless Chromium against OpenSeadragon's own `type: 'image'` tile source, on the
// same generated photo-like JPEGs, with `vips dzsave` natively for reference.
//
// Usage: `make bench-browser` or `node bench/browser.mjs [--sizes 24,96] [--runs 3]`; `bench/bench.py`
// (`make bench`) runs it as `--image PATH … --json` and puts its figures into its one table.
//
// Both pages are served by the real `tile-store serve` from a temporary copy of www/demo/dist on
// 127.0.0.1, with the images beside them (same origin). Every run gets a fresh Chromium profile.
// Times are milliseconds on the page's clock:
// - Tessera, with one tiler worker (`?workers=1`) and with one per core (`?workers=` the cores, at most 4;
//   the page is cross-origin isolated by tile-store, so helpers share memory): the viewer's data-ms-preview (setImageSrc → two frames after a large image's
//   low-resolution preview is fully loaded; decoded by the browser's own decoder, and in a second
//   page load with `?previewDecoder=wasm`, by tiler-wasm's, the fallback), data-ms-first-view (→ two frames after the first
//   fully-loaded-change=true of the pyramid's tiles) and data-ms-pyramid (→ the worker's last
//   tile of the whole pyramid);
// - OpenSeadragon: performance.now() just before `viewer.open({type: 'image', url})` → two frames
//   after the first fully-loaded-change=true, on a viewer made with the app's options.
// Peak memory is the high-water RSS (VmHWM) of the page's renderer process, which holds the
// workers and their wasm memory; the same measure for both tools.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, median, table } from './table.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = join(ROOT, 'bench/out');
const DIST = join(ROOT, 'www/demo/dist');
const TILE_STORE = process.env.TILE_STORE_BIN ?? join(ROOT, 'target/release/tile-store');
const OSD = join(ROOT, 'www/node_modules/openseadragon/build/openseadragon/openseadragon.min.js');
// playwright-core comes with the end-to-end tests' packages.
const { chromium } = createRequire(join(ROOT, 'tests/e2e/package.json'))('playwright-core');
const { CHROMIUM_ARGS, freePort } = await import('../tests/e2e/harness.mjs');

// The same sizes and file names as bench/bench.py: 3:2 photos.
const SIZES = { 24: [6000, 4000], 96: [12000, 8000], 400: [24496, 16330] };
const VIEWPORT = { width: 1280, height: 800 };
const TIMEOUT = 600_000;
/** How long a worker's debugger may take to answer one message. */
const WORKER_REPLY_MS = 5_000;
const OSD_TIMEOUT = 180_000;
// The app's viewer options (www/react/src/components/Viewer.tsx), so both draw the same way.
const OSD_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>OpenSeadragon type: image</title>
<style>html,body{margin:0;height:100%}#viewer{width:100%;height:100%}</style>
<script src="openseadragon.min.js"></script></head>
<body><div id="viewer"></div>
<script>
const url = new URLSearchParams(location.search).get('src');
const viewer = OpenSeadragon({
  element: document.getElementById('viewer'),
  showNavigationControl: false,
  timeout: 180000,
  visibilityRatio: 0.5,
  constrainDuringPan: false,
  maxZoomPixelRatio: 4,
  drawer: 'canvas',
  gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
});
const el = document.getElementById('viewer');
viewer.world.addHandler('add-item', (e) => {
  e.item.addHandler('fully-loaded-change', (ev) => {
    if (!ev.fullyLoaded || el.dataset.msFirstView) return;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (e.item.getFullyLoaded() && !el.dataset.msFirstView) el.dataset.msFirstView = String(Math.round(performance.now() - start));
    }));
  });
});
viewer.addHandler('open-failed', (e) => (el.dataset.error = String(e.message)));
viewer.addHandler('tile-load-failed', (e) => (el.dataset.error = String(e.message)));
const start = performance.now();
viewer.open({ type: 'image', url });
</script></body></html>
`;

function image(mp) {
  const [w, h] = SIZES[mp] ?? [];
  if (!w) throw new Error(`unknown size ${mp}; one of ${Object.keys(SIZES).join(', ')}`);
  const path = join(CACHE, `photo-${mp}mp.jpg`);
  if (!existsSync(path)) {
    mkdirSync(CACHE, { recursive: true });
    console.error(`generating ${path} (${w}×${h})`);
    const r = spawnSync('python3', [join(ROOT, 'bench/photo.py'), String(w), String(h), path], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`bench/photo.py failed for ${mp} MP`);
  }
  return { mp, path, name: `photo-${mp}mp.jpg`, label: `${mp} MP ${w}×${h}` };
}

/** An image given by path (the benchmark driver makes them). */
function imageAt(path) {
  if (!existsSync(path)) throw new Error(`no image at ${path}`);
  const name = basename(path);
  return { path, name, label: name };
}

/** `tile-store serve` on 127.0.0.1 with `webDir` as the web app. */
async function tileStore(webDir, dataDir) {
  const port = await freePort();
  let output = '';
  const child = spawn(TILE_STORE, ['serve', '--listen', `127.0.0.1:${port}`, '--web-dir', webDir, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`tile-store exited with ${child.exitCode}:\n${output}`);
    if (i > 200) throw new Error(`tile-store did not answer on ${url}:\n${output}`);
    if (
      await fetch(`${url}/`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    close: () =>
      new Promise((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once('exit', r);
        child.kill('SIGTERM');
      }),
  };
}

/** Pids of this process's descendants whose command line says they are Chromium renderers. */
function rendererPids() {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const mine = (pid) => {
    for (let p = pid; p > 1; p = parent.get(p) ?? 0) if (p === process.pid) return true;
    return false;
  };
  return [...parent.keys()].filter((pid) => {
    if (pid === process.pid || !mine(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer');
    } catch {
      return false;
    }
  });
}

/** The largest high-water RSS (MiB) among Chromium's renderer processes. */
function peakRendererMiB() {
  let peak = 0;
  for (const pid of rendererPids()) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      // gone meanwhile
    }
  }
  return peak || null;
}

/**
 * Watches the page's dedicated workers over CDP (auto-attach, non-flat sessions, so Playwright's
 * own sessions are untouched); `wasmBytes()` sums the sizes of every WebAssembly.Memory alive in
 * them. A wasm memory only grows, so its size at the end is its peak.
 */
async function workerMemory(context, page) {
  const cdp = await context.newCDPSession(page);
  const workers = new Set();
  const pending = new Map();
  let nextId = 1;
  cdp.on('Target.attachedToTarget', (e) => e.targetInfo.type === 'worker' && workers.add(e.sessionId));
  cdp.on('Target.detachedFromTarget', (e) => workers.delete(e.sessionId));
  cdp.on('Target.receivedMessageFromTarget', (e) => {
    const m = JSON.parse(e.message);
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  // A worker that has ended (the preview worker closes once its picture is made) may never answer:
  // each message gets WORKER_REPLY_MS, and such a worker is left out of the sum.
  const send = (sessionId, method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: no answer in ${WORKER_REPLY_MS} ms`));
      }, WORKER_REPLY_MS);
      pending.set(id, (m) => {
        clearTimeout(timer);
        m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result);
      });
      cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) }).catch((e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  return {
    async wasmBytes() {
      let total = 0;
      let answered = 0;
      for (const sid of workers) {
        try {
          const proto = await send(sid, 'Runtime.evaluate', { expression: 'WebAssembly.Memory.prototype' });
          const found = await send(sid, 'Runtime.queryObjects', { prototypeObjectId: proto.result.objectId });
          const sizes = await send(sid, 'Runtime.callFunctionOn', {
            objectId: found.objects.objectId,
            functionDeclaration: 'function () { return this.map((m) => m.buffer.byteLength); }',
            returnByValue: true,
          });
          total += sizes.result.value.reduce((a, b) => a + b, 0);
          answered += 1;
        } catch {
          // an ended worker: its memory is gone
        }
      }
      return answered ? total : null;
    },
  };
}

/** One page load in a fresh browser: waits until `done(attrs)` and returns the viewer's attributes. */
async function measure(work, url, done, timeout = TIMEOUT) {
  const profile = mkdtempSync(join(work, 'chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: VIEWPORT,
    deviceScaleFactor: 1,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const memory = await workerMemory(context, page);
    await page.goto(url);
    const handle = await page.waitForFunction(
      (doneSrc) => {
        const el = document.querySelector('[data-testid="viewer"]') ?? document.getElementById('viewer');
        if (!el) return null;
        const attrs = Object.fromEntries([...el.attributes].map((a) => [a.name, a.value]));
        // The condition crosses into the page as source text (functions cannot be passed).
        return new Function('a', `return (${doneSrc})(a)`)(attrs) ? attrs : null;
      },
      done.toString(),
      { timeout, polling: 50 },
    );
    const attrs = await handle.jsonValue();
    if (errors.length) attrs['page-errors'] = errors.join('; ');
    attrs.peakMiB = peakRendererMiB();
    const wasm = await memory.wasmBytes();
    attrs.wasmMiB = wasm === null ? null : wasm / 1048576;
    return attrs;
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

/** One tiler worker per core, as many as the app takes by default at most (the app's default keeps a core for the page). */
const ALL_CORES = Math.min(4, availableParallelism());

/** Tessera's page with `workers` tiler workers (`?workers=`; default: the app's). */
async function tessera(work, app, img, workers) {
  const params = { src: `/bench/${img.name}`, ...(workers ? { workers: String(workers) } : {}) };
  const a = await measure(
    work,
    `${app.url}/?${new URLSearchParams(params)}`,
    (x) => x['data-state'] === 'error' || (x['data-ms-first-view'] !== undefined && x['data-ms-pyramid'] !== undefined),
  );
  if (a['data-state'] === 'error') throw new Error(`Tessera failed on ${img.name}: ${a['data-error']}`);
  return {
    opened: Number(a['data-ms-opened']),
    // A large image's low-resolution preview, painted before the tiles (absent for other images).
    preview: a['data-ms-preview'] === undefined ? null : Number(a['data-ms-preview']),
    previewDecoder: a['data-preview-decoder'] ?? null,
    firstView: Number(a['data-ms-first-view']),
    pyramid: Number(a['data-ms-pyramid']),
    workers: Number(a['data-tiler-workers']),
    memory: a['data-tiler-memory'] ?? null,
    peakMiB: a.peakMiB,
    wasmMiB: a.wasmMiB,
  };
}

/** The preview by tiler-wasm's decoder (the browser's turned off), until the tiles' first view. */
async function tesseraWasmPreview(work, app, img) {
  const a = await measure(
    work,
    `${app.url}/?${new URLSearchParams({ src: `/bench/${img.name}`, previewDecoder: 'wasm' })}`,
    (x) => x['data-state'] === 'error' || x['data-ms-first-view'] !== undefined,
  );
  if (a['data-state'] === 'error') throw new Error(`Tessera failed on ${img.name}: ${a['data-error']}`);
  return {
    preview: a['data-ms-preview'] === undefined ? null : Number(a['data-ms-preview']),
    previewDecoder: a['data-preview-decoder'] ?? null,
    firstView: Number(a['data-ms-first-view']),
  };
}

/** OpenSeadragon's own tile source; past the canvas limits (~268 MP) it fails or never draws. */
async function osdImage(work, app, img) {
  let a;
  try {
    a = await measure(
      work,
      `${app.url}/bench/osd-image.html?${new URLSearchParams({ src: `/bench/${img.name}` })}`,
      (x) => x['data-error'] !== undefined || x['data-ms-first-view'] !== undefined,
      OSD_TIMEOUT,
    );
  } catch (e) {
    if (e?.name !== 'TimeoutError') throw e;
    return { firstView: null, peakMiB: null, error: `nothing drawn in ${OSD_TIMEOUT / 1000} s` };
  }
  if (a['data-error'] !== undefined) return { firstView: null, peakMiB: a.peakMiB, error: a['data-error'] };
  return { firstView: Number(a['data-ms-first-view']), peakMiB: a.peakMiB };
}

/** `vips dzsave` wall milliseconds into a memory-backed folder. */
function vips(img) {
  const out = mkdtempSync('/dev/shm/tessera-bench-browser-');
  try {
    const start = process.hrtime.bigint();
    const r = spawnSync('vips', ['dzsave', img.path, join(out, 'x')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`vips dzsave failed: ${r.stderr}`);
    return ms;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '24,96' },
      image: { type: 'string', multiple: true },
      runs: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  for (const [what, path, hint] of [
    ['tile-store', TILE_STORE, 'make server'],
    ['the built app', join(DIST, 'index.html'), 'make web'],
    ['OpenSeadragon', OSD, 'scripts/setup.sh npm www'],
  ]) {
    if (!existsSync(path)) throw new Error(`${what} is missing at ${path}: run \`${hint}\``);
  }
  const images = values.image?.length ? values.image.map(imageAt) : values.sizes.split(',').map((s) => image(s.trim()));

  const work = mkdtempSync(join(tmpdir(), 'tessera-bench-browser-'));
  let app;
  const cleanup = async () => {
    await app?.close();
    rmSync(work, { recursive: true, force: true });
  };
  process.once('SIGINT', () => cleanup().then(() => process.exit(130)));
  try {
    const webDir = join(work, 'web');
    cpSync(DIST, webDir, { recursive: true });
    mkdirSync(join(webDir, 'bench'));
    for (const img of images) cpSync(img.path, join(webDir, 'bench', img.name));
    cpSync(OSD, join(webDir, 'bench/openseadragon.min.js'));
    writeFileSync(join(webDir, 'bench/osd-image.html'), OSD_PAGE);
    mkdirSync(join(work, 'data'));
    app = await tileStore(webDir, join(work, 'data'));

    if (values.json) {
      // Every run's figures for the driver, which measures vips itself.
      const out = {};
      for (const img of images) {
        out[img.path] = { tessera: [], tesseraOneWorker: [], tesseraWasmPreview: [], osdImage: [] };
        for (let i = 0; i < runs; i++) {
          out[img.path].tessera.push(await tessera(work, app, img, ALL_CORES));
          out[img.path].tesseraOneWorker.push(await tessera(work, app, img, 1));
          out[img.path].tesseraWasmPreview.push(await tesseraWasmPreview(work, app, img));
          out[img.path].osdImage.push(await osdImage(work, app, img));
          const t = out[img.path].tessera.at(-1);
          console.error(
            `  ${img.name} run ${i + 1}/${runs}: chromium preview ${t.preview} ms (${t.previewDecoder}; wasm's ${out[img.path].tesseraWasmPreview.at(-1).preview} ms), first view ${t.firstView} ms, pyramid ${t.pyramid} ms, ` +
              `wasm ${fmt(t.wasmMiB)} MiB; osd-image first view ${out[img.path].osdImage.at(-1).firstView} ms`,
          );
        }
      }
      console.log(JSON.stringify(out));
      return;
    }
    const rows = [];
    for (const img of images) {
      const t = [];
      const t1 = [];
      const w = [];
      const o = [];
      const v = [];
      for (let i = 0; i < runs; i++) {
        // Alternating, so a busy spell of the machine does not land on one tool only.
        t.push(await tessera(work, app, img, ALL_CORES));
        t1.push(await tessera(work, app, img, 1));
        w.push(await tesseraWasmPreview(work, app, img));
        o.push(await osdImage(work, app, img));
        v.push(vips(img));
        const last = t.at(-1);
        console.error(
          `${img.name} run ${i + 1}/${runs}: tessera preview ${last.preview} (${last.previewDecoder}; wasm's ${w.at(-1).preview}) opened ${last.opened} first view ${last.firstView} pyramid ${last.pyramid} ms` +
            ` with ${last.workers} workers (${last.memory}), ${t1.at(-1).pyramid} ms with 1 (opened ${t1.at(-1).opened})` +
            ` (renderer ${fmt(last.peakMiB)} MiB, wasm ${fmt(last.wasmMiB)} MiB); osd-image first view ${o.at(-1).firstView} ms (${fmt(o.at(-1).peakMiB)} MiB); vips ${fmt(v.at(-1))} ms`,
        );
      }
      const tFirst = median(t.map((r) => r.firstView));
      const oFirst = median(o.map((r) => r.firstView));
      const tPyramid = median(t.map((r) => r.pyramid));
      const vipsMs = median(v);
      const label = img.label;
      const workers = t.at(-1).workers;
      const memory = t.at(-1).memory;
      const tPyramid1 = median(t1.map((r) => r.pyramid));
      rows.push({
        image: label,
        tool: 'tessera, 1 worker',
        'decoded ms': fmt(median(t1.map((r) => r.opened))),
        'preview ms': fmt(median(t1.map((r) => r.preview))),
        'first view ms': fmt(median(t1.map((r) => r.firstView))),
        'whole pyramid ms': fmt(tPyramid1),
        'first view ÷ osd-image': oFirst ? fmt(median(t1.map((r) => r.firstView)) / oFirst, 2) : '—',
        'pyramid ÷ vips': fmt(tPyramid1 / vipsMs, 2),
        'peak wasm MiB': fmt(median(t1.map((r) => r.wasmMiB))),
        'peak renderer RSS MiB': fmt(median(t1.map((r) => r.peakMiB))),
      });
      rows.push({
        image: label,
        tool: `tessera, ${workers} workers (${memory})`,
        'decoded ms': fmt(median(t.map((r) => r.opened))),
        'preview ms': fmt(median(t.map((r) => r.preview))),
        'first view ms': fmt(tFirst),
        'whole pyramid ms': fmt(tPyramid),
        'first view ÷ osd-image': oFirst ? fmt(tFirst / oFirst, 2) : '—',
        'pyramid ÷ vips': fmt(tPyramid / vipsMs, 2),
        'peak wasm MiB': fmt(median(t.map((r) => r.wasmMiB))),
        'peak renderer RSS MiB': fmt(median(t.map((r) => r.peakMiB))),
      });
      rows.push({
        image: label,
        tool: 'tessera, wasm preview (fallback)',
        'decoded ms': '—',
        'preview ms': fmt(median(w.map((r) => r.preview))),
        'first view ms': fmt(median(w.map((r) => r.firstView))),
        'whole pyramid ms': '—',
        'first view ÷ osd-image': '—',
        'pyramid ÷ vips': '—',
        'peak wasm MiB': '—',
        'peak renderer RSS MiB': '—',
      });
      rows.push({
        image: label,
        tool: "openseadragon type:'image'",
        'decoded ms': '—',
        'preview ms': '—',
        'first view ms': fmt(oFirst),
        'whole pyramid ms': '—',
        'first view ÷ osd-image': '1.00',
        'pyramid ÷ vips': '—',
        'peak wasm MiB': '—',
        'peak renderer RSS MiB': fmt(median(o.map((r) => r.peakMiB))),
      });
      rows.push({
        image: label,
        tool: 'vips dzsave (native, /dev/shm)',
        'decoded ms': '—',
        'preview ms': '—',
        'first view ms': '—',
        'whole pyramid ms': fmt(vipsMs),
        'first view ÷ osd-image': '—',
        'pyramid ÷ vips': '1.00',
        'peak wasm MiB': '—',
        'peak renderer RSS MiB': '—',
      });
    }
    console.log(table(rows));
    console.log(
      `\nMedians of ${runs} runs; Chromium ${VIEWPORT.width}×${VIEWPORT.height}, fresh profile per run; times from setImageSrc ` +
        `(Tessera) or viewer.open (OpenSeadragon) on the page clock, first view = two frames after the first fully-loaded image.`,
    );
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
