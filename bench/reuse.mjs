#!/usr/bin/env node
// Tile once, reuse everywhere, in figures: for the same generated photo-like JPEG, the time from
// setImageSrc to the first full view when the browser tiles it, against opening the pyramid a
// previous viewer uploaded to tile-store (by hashing the download, and by a known pyramid id), and
// how long the upload of the whole pyramid takes.
//
// Usage: `make bench-reuse` or `node bench/reuse.mjs [--sizes 96] [--runs 3]`.
//
// One `tile-store serve` on 127.0.0.1 serves the app, the image and the store (disk, in a temporary
// folder) from one origin, as `make run` does. Each run, in a fresh Chromium profile each:
//   1. browser only: `?src=` with no store;
//   2. tile + upload: `?src=&store=/` on an empty store, until the pyramid is committed;
//   3. reused: `?src=&store=/` again, in a new profile: the page downloads the image and hashes it
//      (the browser's SHA-256), asks the store by the digest (`GET /pyramids?source=`), finds the
//      pyramid committed and OpenSeadragon reads the store's tiles (no decode);
//   4. reused, known id: `?src=&store=/&pyramid={id}`: one geometry request, no download;
//   5. reused, known id + geometry: `?src=&store=/&pyramid={id}&geometry={json}` (the geometry the
//      store's manifest describes, as an app records `status.info`): the tiles are requested at once,
//      the manifest request goes beside them;
//   6. 3, 4 and 5 again on a page that has loaded: `?store=/` first, then, once the viewer is up, the
//      address changes as an app's link would (history + popstate), so app and viewer start-up are not counted;
// then the pyramid is deleted so the next run uploads again.
// Times are the viewer's data-ms-* attributes (milliseconds on the page clock from setImageSrc).
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, median, table } from './table.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = join(ROOT, 'bench/out');
// `DIST` names another build of the demo app (to compare two builds with one bench).
const DIST = process.env.DIST ?? join(ROOT, 'www/demo/dist');
const { chromium } = createRequire(join(ROOT, 'tests/e2e/package.json'))('playwright-core');
const { CHROMIUM_ARGS } = await import('../tests/e2e/harness.mjs');
const { tileStore } = await import('../tests/e2e/servers.mjs');
const { parseDzi } = await import('../tests/e2e/tiler.mjs');

// 20 MP: a 5472×3648 camera's, the size of the reuse target.
const SIZES = { 20: [5472, 3648], 24: [6000, 4000], 96: [12000, 8000] };
const VIEWPORT = { width: 1280, height: 800 };
const TIMEOUT = 600_000;

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
  return { mp, path, name: `photo-${mp}mp.jpg`, width: w, height: h };
}

/**
 * One page load in a fresh browser profile, until `done(attrs)`; the viewer's attributes. With `warm`,
 * the page first loads `warm` (no image) and, once its viewer exists, is sent to `url` as a link in an
 * app would (history + popstate): the image is set on a page that has loaded.
 */
async function measure(work, url, done, warm = null) {
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
    if (warm) {
      await page.goto(warm);
      await page.waitForSelector('.viewer-controls', { timeout: TIMEOUT });
      await page.evaluate((to) => {
        history.pushState(null, '', to);
        dispatchEvent(new PopStateEvent('popstate'));
      }, url);
    } else await page.goto(url);
    const handle = await page.waitForFunction(
      (doneSrc) => {
        const el = document.querySelector('[data-testid="viewer"]');
        if (!el) return null;
        const attrs = Object.fromEntries([...el.attributes].map((a) => [a.name, a.value]));
        return new Function('a', `return (${doneSrc})(a)`)(attrs) ? attrs : null;
      },
      done.toString(),
      { timeout: TIMEOUT, polling: 20 },
    );
    const attrs = await handle.jsonValue();
    if (attrs['data-state'] === 'error') throw new Error(`${url}: ${attrs['data-error']}`);
    return attrs;
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

const num = (a, name) => (a[name] === undefined ? null : Number(a[name]));

async function main() {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '20,96' }, runs: { type: 'string', default: '3' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  if (!existsSync(join(DIST, 'index.html'))) throw new Error('no built app: run `make web`');
  const images = values.sizes.split(',').map((s) => image(s.trim()));

  const work = mkdtempSync(join(tmpdir(), 'tessera-bench-reuse-'));
  let app;
  try {
    const webDir = join(work, 'web');
    cpSync(DIST, webDir, { recursive: true });
    mkdirSync(join(webDir, 'bench'));
    for (const img of images) cpSync(img.path, join(webDir, 'bench', img.name));
    mkdirSync(join(work, 'data'));
    app = await tileStore(['--web-dir', webDir, '--data-dir', join(work, 'data')]);

    const rows = [];
    for (const img of images) {
      const src = `/bench/${img.name}`;
      const page = (params) => `${app.url}/?${new URLSearchParams({ src, ...params })}`;
      const r = { browser: [], upload: [], reused: [], known: [], geometry: [], warmUrl: [], warmKnown: [], warmGeometry: [] };
      for (let i = 0; i < runs; i++) {
        const b = await measure(work, page({}), (a) => a['data-state'] === 'error' || (a['data-ms-first-view'] && a['data-ms-pyramid']));
        r.browser.push({ first: num(b, 'data-ms-first-view'), pyramid: num(b, 'data-ms-pyramid') });

        const u = await measure(
          work,
          page({ store: '/' }),
          (a) =>
            a['data-state'] === 'error' ||
            a['data-upload'] === 'failed' ||
            (a['data-ms-first-view'] && a['data-ms-pyramid'] && a['data-ms-saved']),
        );
        if (u['data-upload'] === 'failed') throw new Error(`upload failed: ${u['data-upload-error']}`);
        const id = u['data-pyramid-id'];
        r.upload.push({
          first: num(u, 'data-ms-first-view'),
          opened: num(u, 'data-ms-opened'),
          pyramid: num(u, 'data-ms-pyramid'),
          saved: num(u, 'data-ms-saved'),
          tiles: num(u, 'data-upload-total'),
        });

        const s = await measure(work, page({ store: '/' }), (a) => a['data-state'] === 'error' || a['data-ms-first-view']);
        if (s['data-source'] !== 'store' || s['data-decodes'] !== '0')
          throw new Error(`not reused: source ${s['data-source']}, decodes ${s['data-decodes']}`);
        r.reused.push({ first: num(s, 'data-ms-first-view') });

        const k = await measure(work, page({ store: '/', pyramid: id }), (a) => a['data-state'] === 'error' || a['data-ms-first-view']);
        if (k['data-source'] !== 'store') throw new Error('the known id did not open the stored pyramid');
        r.known.push({ first: num(k, 'data-ms-first-view') });

        const dzi = await fetch(`${app.url}/pyramids/${id}.dzi`);
        if (!dzi.ok) throw new Error(`GET /pyramids/${id}.dzi: ${dzi.status}`);
        const geometry = JSON.stringify(parseDzi(await dzi.text()));
        const g = await measure(
          work,
          page({ store: '/', pyramid: id, geometry }),
          (a) => a['data-state'] === 'error' || a['data-ms-first-view'],
        );
        if (g['data-source'] !== 'store' || g['data-decodes'] !== '0')
          throw new Error('the known id and geometry did not open the stored pyramid');
        r.geometry.push({ first: num(g, 'data-ms-first-view') });

        // The same two, on a page that has loaded (an app whose viewer is up opens a survey's image).
        for (const [key, params] of [
          ['warmUrl', { store: '/' }],
          ['warmKnown', { store: '/', pyramid: id }],
          ['warmGeometry', { store: '/', pyramid: id, geometry }],
        ]) {
          const w = await measure(work, page(params), (a) => a['data-state'] === 'error' || a['data-ms-first-view'], `${app.url}/?store=/`);
          if (w['data-source'] !== 'store' || w['data-decodes'] !== '0') throw new Error(`${key}: did not open the stored pyramid`);
          r[key].push({ first: num(w, 'data-ms-first-view') });
        }

        const del = await fetch(`${app.url}/pyramids/${id}`, { method: 'DELETE' });
        if (!del.ok) throw new Error(`DELETE /pyramids/${id}: ${del.status}`);
        console.error(
          `${img.name} run ${i + 1}/${runs}: browser first view ${r.browser.at(-1).first} ms (pyramid ${r.browser.at(-1).pyramid}); ` +
            `tile+upload first view ${r.upload.at(-1).first} ms, pyramid ${r.upload.at(-1).pyramid}, committed ${r.upload.at(-1).saved} ms; ` +
            `reused ${r.reused.at(-1).first} ms; known id ${r.known.at(-1).first} ms; known id + geometry ${r.geometry.at(-1).first} ms; ` +
            `on a loaded page: by URL ${r.warmUrl.at(-1).first} ms, known id ${r.warmKnown.at(-1).first} ms, known id + geometry ${r.warmGeometry.at(-1).first} ms`,
        );
      }
      const label = `${img.mp} MP ${img.width}×${img.height}`;
      const browserFirst = median(r.browser.map((x) => x.first));
      const row = (how, first, pyramid, saved, upload, tiles) => ({
        image: label,
        how,
        'first view ms': fmt(first),
        'first view ÷ browser': fmt(first / browserFirst, 2),
        'whole pyramid ms': fmt(pyramid),
        'committed ms': fmt(saved),
        'upload ms': fmt(upload),
        'upload tail ms': saved !== null && pyramid !== null ? fmt(saved - pyramid) : '—',
        tiles: tiles ?? '—',
      });
      rows.push(row('browser tiling, no store', browserFirst, median(r.browser.map((x) => x.pyramid)), null, null));
      rows.push(
        row(
          'browser tiling + upload',
          median(r.upload.map((x) => x.first)),
          median(r.upload.map((x) => x.pyramid)),
          median(r.upload.map((x) => x.saved)),
          median(r.upload.map((x) => x.saved - x.opened)),
          r.upload[0].tiles,
        ),
      );
      rows.push(row('reused (download + hash)', median(r.reused.map((x) => x.first)), null, null, null));
      rows.push(row('reused (known id)', median(r.known.map((x) => x.first)), null, null, null));
      rows.push(row('reused (known id + geometry)', median(r.geometry.map((x) => x.first)), null, null, null));
      rows.push(row('reused (download + hash), page loaded', median(r.warmUrl.map((x) => x.first)), null, null, null));
      rows.push(row('reused (known id), page loaded', median(r.warmKnown.map((x) => x.first)), null, null, null));
      rows.push(row('reused (known id + geometry), page loaded', median(r.warmGeometry.map((x) => x.first)), null, null, null));
    }
    console.log(table(rows));
    console.log(
      `\nMedians of ${runs} runs; Chromium ${VIEWPORT.width}×${VIEWPORT.height}, fresh profile per load; tile-store on the disk store, ` +
        `same origin, loopback. Times from setImageSrc on the page clock (with the page's load unless "page loaded": then the image is set once the viewer is up): first view = two frames after the first fully-loaded image; ` +
        `committed = the commit's answer; upload = committed − decoded (the upload starts with the tiling and runs beside it); ` +
        `upload tail = committed − whole pyramid.`,
    );
  } finally {
    await app?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
