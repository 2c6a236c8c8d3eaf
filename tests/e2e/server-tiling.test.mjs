// Browser and server make the same pyramid: `POST /pyramids` on the real `tile-store serve`
// (disk store, fetching from a loopback origin named by --fetch-allow) against the app's wasm
// package `@tessera/tiler-wasm` running in headless Chromium — the package the app's worker runs —
// on the same source: the same pyramid id, the same .dzi, and every tile byte for byte.
// (The wasm runs in the page here, not through the app's worker and its tile source.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, ROOT, SAMPLES, freePort, staticServer } from './harness.mjs';

const TILE_STORE = process.env.TILE_STORE_BIN ?? join(ROOT, 'target/release/tile-store');
const PKG = join(ROOT, 'tiler-wasm/pkg');
const SOURCE = join(SAMPLES, 'bridge-deck.jpg'); // EXIF orientation 6, camera EXIF
let work,
  site,
  server,
  serverLog = '',
  browser;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'tessera-server-tiling-'));
  const www = join(work, 'www');
  mkdirSync(www);
  cpSync(PKG, join(www, 'pkg'), { recursive: true });
  copyFileSync(SOURCE, join(www, 'photo.jpg'));
  writeFileSync(join(www, 'index.html'), '<!doctype html><title>tiler-wasm</title>');
  site = await staticServer(www);

  const port = await freePort();
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' };
  for (const name of ['TILE_STORE_TOKENS', 'TILE_STORE_JWT_SECRET', 'TILE_STORE_REQUIRE_READ_TOKEN']) delete env[name];
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', join(work, 'data'), '--fetch-allow', '127.0.0.1'];
  const child = spawn(TILE_STORE, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout.on('data', (d) => (serverLog += d));
  child.stderr.on('data', (d) => (serverLog += d));
  server = { child, url: `http://127.0.0.1:${port}` };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`tile-store exited:\n${serverLog}`);
    if (
      await fetch(`${server.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 300) throw new Error(`tile-store did not start:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  if (server && server.child.exitCode === null) {
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGTERM');
    await exited;
  }
  await site?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Tiles the page's copy of the source with the wasm package; SHA-256 of every tile. */
async function tileInBrowser() {
  const page = await browser.newPage();
  try {
    await page.goto(`${site.url}/index.html`);
    return await page.evaluate(async () => {
      const wasm = await import('/pkg/tiler_wasm.js');
      await wasm.default();
      const bytes = new Uint8Array(await (await fetch('/photo.jpg')).arrayBuffer());
      const hasher = new wasm.IdHasher();
      hasher.update(bytes);
      const id = hasher.finish(undefined);
      const tiler = wasm.Tiler.open(bytes, undefined);
      const ext = tiler.format;
      const tiles = {};
      for (let level = 0; level <= tiler.maxLevel; level++) {
        const [cols, rows] = tiler.grid(level);
        for (let col = 0; col < cols; col++) {
          for (let row = 0; row < rows; row++) {
            const digest = await crypto.subtle.digest('SHA-256', tiler.tile(level, col, row));
            tiles[`${level}/${col}_${row}.${ext}`] = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
          }
        }
      }
      const { width, height } = tiler.geometry();
      return { id, dzi: tiler.dziXml(), tiles, width, height };
    });
  } finally {
    await page.close();
  }
}

async function tileOnServer(src) {
  const posted = await fetch(`${server.url}/pyramids`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ src }),
  });
  let view = await posted.json();
  assert.ok([200, 202].includes(posted.status), `POST /pyramids: ${posted.status} ${JSON.stringify(view)}`);
  for (let i = 0; !['ready', 'failed'].includes(view.status); i++) {
    assert.ok(i < 1200, `job still ${view.status} after 120 s`);
    await new Promise((r) => setTimeout(r, 100));
    view = await (await fetch(`${server.url}/jobs/${view.job}`)).json();
  }
  assert.equal(view.status, 'ready', JSON.stringify(view));
  return view;
}

test('the server writes the pyramid the browser makes: same id, same .dzi, same tile bytes', { timeout: 300_000 }, async () => {
  const [inBrowser, onServer] = await Promise.all([tileInBrowser(), tileOnServer(`${site.url}/photo.jpg`)]);
  assert.equal(onServer.id, inBrowser.id);
  assert.equal(onServer.dzi, `/pyramids/${inBrowser.id}.dzi`);

  const dzi = await fetch(`${server.url}${onServer.dzi}`);
  assert.equal(dzi.status, 200);
  assert.equal(await dzi.text(), inBrowser.dzi);
  assert.match(inBrowser.dzi, new RegExp(`Width="${inBrowser.width}"`));

  const files = join(work, 'data', `${onServer.id}_files`);
  const stored = {};
  for (const level of readdirSync(files)) {
    for (const tile of readdirSync(join(files, level))) stored[`${level}/${tile}`] = sha256(readFileSync(join(files, level, tile)));
  }
  assert.deepEqual(Object.keys(stored).sort(), Object.keys(inBrowser.tiles).sort());
  const differing = Object.keys(inBrowser.tiles).filter((name) => stored[name] !== inBrowser.tiles[name]);
  assert.deepEqual(differing, [], 'tiles whose bytes differ between browser and server');
  assert.ok(Object.keys(stored).length > 50, `a real pyramid (${Object.keys(stored).length} tiles)`);

  // And asked again, the server answers ready at once from the committed pyramid.
  const again = await fetch(`${server.url}/pyramids`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ src: `${site.url}/photo.jpg` }),
  });
  assert.equal(again.status, 200);
  assert.equal((await again.json()).status, 'ready');
});
