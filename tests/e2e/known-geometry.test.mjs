// A pyramid the store has, opened by an id the app knows together with its geometry (as the app
// recorded `status.info` when it first opened the image): its tiles are requested at once, without
// waiting for the store's answer, so the view is on screen in one round trip; the page still asks the
// store (`{id}.json`) beside them. Proven by holding that request until the view has been drawn. A
// known id is checked by the page itself, with no worker and no WebAssembly. A hint with a wrong
// geometry is corrected by the store's, and one the store cannot confirm falls back to tiling the
// image in the browser.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { QUAD, ORIENTED, makeImages, quadImageColour, quadrantColour } from './images.mjs';
import { holdRequest, near, pixel, setup, toScreen, waitForSettled, waitForState } from './harness.mjs';
import { parseDzi } from './tiler.mjs';

let t;
before(async () => {
  t = await setup('known-geometry', (dir) => makeImages(dir));
});
after(async () => t?.close());

/** The viewer's attributes once `attribute` has `value` (or the state is `error`). */
async function waitForValue(attribute, value, timeout = 60_000) {
  await t.page.waitForFunction(
    ([name, want]) => {
      const el = document.querySelector('[data-testid="viewer"]');
      return el?.getAttribute(name) === want || el?.getAttribute('data-state') === 'error';
    },
    [attribute, value],
    { timeout, polling: 50 },
  );
  return t.page.getByTestId('viewer').evaluate((el) => Object.fromEntries([...el.attributes].map((a) => [a.name, a.value])));
}

/** Tiles `file` here and uploads it (once); its pyramid id and the geometry the store's manifest describes. */
const storedFiles = new Map();
async function stored(file) {
  if (storedFiles.has(file)) return storedFiles.get(file);
  await t.open({ src: `/e2e/${file}`, store: '/' });
  const attrs = await waitForValue('data-upload', 'saved', 120_000);
  assert.equal(attrs['data-upload'], 'saved', attrs['data-error'] ?? attrs['data-upload-error']);
  const id = attrs['data-pyramid-id'];
  const manifest = await fetch(`${t.app.url}/pyramids/${id}.dzi`);
  assert.equal(manifest.status, 200);
  storedFiles.set(file, { id, geometry: parseDzi(await manifest.text()) });
  return storedFiles.get(file);
}

/** The quadrant image's colours at its four quadrants' centres and on its marker, at the home view. */
async function checkQuadrants(label) {
  await waitForSettled(t.page);
  const box = await t.page.getByTestId('viewer').boundingBox();
  const shot = await t.shot(label);
  const { width: W, height: H } = QUAD;
  for (const [x, y] of [
    [W / 4, H / 4],
    [(3 * W) / 4, H / 4],
    [W / 4, (3 * H) / 4],
    [(3 * W) / 4, (3 * H) / 4],
    [850, 600],
  ]) {
    const at = toScreen(box, QUAD, 1, x, y);
    const got = pixel(shot.png, at.x, at.y);
    assert.ok(near(got, quadImageColour(x, y)), `${label} (${x}, ${y}): got ${got}, want ${quadImageColour(x, y)}; see ${shot.path}`);
  }
}

test('a known id with its geometry draws the stored tiles before the store confirms it', async () => {
  const { id, geometry } = await stored(t.files.quadrants);
  // The page asks the store for the known id's geometry (`{id}.json`) beside the tiles.
  const check = await holdRequest(t.page, `**/pyramids/${id}.json`);
  const imageRequests = [];
  t.page.on('request', (r) => r.url().endsWith(`/e2e/${t.files.quadrants}`) && imageRequests.push(r.url()));
  /** Stored tiles asked for before the view was drawn: whole levels (`to` of each), and one by one (their level). */
  const wholeLevels = [];
  const single = [];
  let drawn = false;
  const onTile = (r) => {
    if (drawn) return;
    const url = new URL(r.url());
    if (url.pathname === `/pyramids/${id}/levels`) wholeLevels.push(Number(url.searchParams.get('to')));
    const m = url.pathname.match(new RegExp(`^/pyramids/${id}_files/(\\d+)/`));
    if (m) single.push(Number(m[1]));
  };
  t.page.on('request', onTile);
  await t.open({ src: `/e2e/${t.files.quadrants}`, store: '/', pyramid: id, geometry: JSON.stringify(geometry) });
  const attrs = await waitForState(t.page, ['ready', 'error'], 30_000);
  drawn = true;
  t.page.off('request', onTile);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  // The view's own level came in the one request for whole levels, not tile by tile.
  assert.equal(wholeLevels.length, 1, `requests for whole levels before the first view: ${wholeLevels.length}`);
  assert.ok(!single.includes(wholeLevels[0]), `tiles of the view's level ${wholeLevels[0]} asked for one by one: ${single.join(', ')}`);
  assert.equal(attrs['data-source'], 'store');
  assert.equal(attrs['data-decodes'], '0');
  await check.requested;
  assert.ok(await check.release(), 'the geometry request was answered before the view was drawn');
  // The store confirms the hint: the same tiles stay.
  const confirmed = await waitForValue('data-upload', 'reused');
  assert.equal(confirmed['data-upload'], 'reused');
  assert.equal(confirmed['data-pyramid-id'], id);
  assert.deepEqual(imageRequests, [], 'the image was downloaded although the store has its pyramid');
  await checkQuadrants('hinted');
});

test('a known id the store has opens its pyramid with no worker, no WebAssembly and no manifest XML', async () => {
  const { id, geometry } = await stored(t.files.quadrants);
  for (const [how, params] of [
    ['known id', { pyramid: id }],
    ['known id + geometry', { pyramid: id, geometry: JSON.stringify(geometry) }],
  ]) {
    const started = [];
    const onRequest = (r) => /worker[^/]*\.js$|\.wasm$|\.dzi$/.test(new URL(r.url()).pathname) && started.push(r.url());
    t.page.context().on('request', onRequest);
    await t.open({ src: `/e2e/${t.files.quadrants}`, store: '/', ...params });
    const attrs = await waitForValue('data-upload', 'reused');
    const ready = await waitForState(t.page, ['ready', 'error']);
    t.page.context().off('request', onRequest);
    assert.equal(attrs['data-upload'], 'reused', attrs['data-error']);
    assert.equal(ready['data-state'], 'ready', ready['data-error']);
    assert.equal(ready['data-source'], 'store');
    assert.deepEqual(started, [], `${how}: requested for a pyramid the store has`);
  }
  await checkQuadrants('page-checked');
});

test("the whole-image view's stored tiles come in one request, ahead of OpenSeadragon, which takes them", async () => {
  const { id, geometry } = await stored(t.files.quadrants);
  for (const [how, params] of [
    ['known id + geometry', { pyramid: id, geometry: JSON.stringify(geometry) }],
    ['known id', { pyramid: id }],
    ['by URL', {}],
  ]) {
    /** Stored tiles asked for one by one before the view was drawn, as `level/col_row`. */
    const single = [];
    /** Requests for whole levels (`/pyramids/{id}/levels?from=&to=`) before the view was drawn. */
    const levels = [];
    let drawn = false;
    const onRequest = (r) => {
      if (drawn) return;
      const url = new URL(r.url());
      const tile = url.pathname.match(new RegExp(`^/pyramids/${id}_files/(\\d+/\\d+_\\d+)\\.`));
      if (tile) single.push(tile[1]);
      if (url.pathname === `/pyramids/${id}/levels`) levels.push(url);
    };
    t.page.on('request', onRequest);
    await t.open({ src: `/e2e/${t.files.quadrants}`, store: '/', ...params });
    const attrs = await waitForState(t.page, ['ready', 'error'], 30_000);
    drawn = true;
    t.page.off('request', onRequest);
    assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
    assert.equal(attrs['data-source'], 'store', how);
    assert.equal(levels.length, 1, `${how}: ${levels.length} requests for whole levels`);
    const from = Number(levels[0].searchParams.get('from'));
    const to = Number(levels[0].searchParams.get('to'));
    // What that request answers, read by node's own multipart parser: a part per tile of those levels.
    const answer = await fetch(`${t.app.url}${levels[0].pathname}${levels[0].search}`);
    assert.equal(answer.status, 200);
    const parts = [...(await answer.formData()).keys()];
    assert.ok(parts.length > 0 && parts.every((p) => new RegExp(`^\\d+/\\d+_\\d+\\.${geometry.format}$`).test(p)), parts.join());
    assert.equal(new Set(parts.map((p) => Number(p.split('/')[0]))).size, to - from + 1, `${how}: levels ${from}..${to}: ${parts}`);
    assert.equal(Number(attrs['data-tiles-ahead']), parts.length, `${how}: tiles asked for ahead`);
    // The view's level is the highest asked for: OpenSeadragon took every one of its tiles from the
    // answer and asked for none of the answer's levels again.
    const viewTiles = parts.filter((p) => p.startsWith(`${to}/`)).length;
    const taken = Number(attrs['data-tiles-ahead-taken']);
    assert.ok(
      taken >= viewTiles && taken <= parts.length,
      `${how}: OpenSeadragon took ${taken} of ${parts.length} (${viewTiles} at the view's level ${to})`,
    );
    const again = single.filter((a) => Number(a.split('/')[0]) >= from);
    assert.deepEqual(again, [], `${how}: tiles of levels ${from}..${to} asked for one by one`);
  }
  await checkQuadrants('ahead');
});

test("a hint with a wrong geometry is replaced by the store's", async () => {
  const { id, geometry } = await stored(t.files.quadrants);
  // As if recorded with other tiling settings: OpenSeadragon would ask for tiles that do not exist.
  const wrong = { ...geometry, tileSize: 510 };
  await t.open({ src: `/e2e/${t.files.quadrants}`, store: '/', pyramid: id, geometry: JSON.stringify(wrong) });
  const attrs = await waitForValue('data-upload', 'reused');
  assert.equal(attrs['data-upload'], 'reused', attrs['data-error']);
  const ready = await waitForState(t.page, ['ready', 'error']);
  assert.equal(ready['data-state'], 'ready', ready['data-error']);
  assert.equal(ready['data-source'], 'store');
  await checkQuadrants('corrected');
});

test("a geometry without the shape tiler-wasm gives it is ignored: the store's decides", async () => {
  const { id } = await stored(t.files.quadrants);
  const check = await holdRequest(t.page, `**/pyramids/${id}.json`);
  await t.open({ src: `/e2e/${t.files.quadrants}`, store: '/', pyramid: id, geometry: JSON.stringify({ width: 'wide' }) });
  await check.requested;
  // Nothing is taken from the hint while the manifest is held.
  const viewer = t.page.getByTestId('viewer');
  assert.equal(await viewer.getAttribute('data-state'), 'loading');
  assert.equal(await viewer.getAttribute('data-source'), null, 'the malformed geometry was used');
  assert.ok(await check.release());
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(attrs['data-source'], 'store');
  await checkQuadrants('malformed');
});

test('a hint the store cannot confirm falls back to tiling the image here', async () => {
  // A well-formed id of no stored pyramid, with a plausible geometry.
  const { geometry } = await stored(t.files.quadrants);
  const unknown = 'f'.repeat(64);
  await t.open({ src: `/e2e/${t.files.oriented}`, store: '/', pyramid: unknown, geometry: JSON.stringify(geometry) });
  // The hinted tiles are asked for first (and fail); then the worker's replace them.
  await waitForValue('data-source', 'worker');
  await waitForValue('data-width', String(ORIENTED.width));
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(attrs['data-source'], 'worker');
  assert.equal(Number(attrs['data-width']), ORIENTED.width);
  await waitForSettled(t.page);
  const box = await t.page.getByTestId('viewer').boundingBox();
  const shot = await t.shot('fallback');
  const { width: W, height: H } = ORIENTED;
  for (const [x, y] of [
    [W / 4, H / 4],
    [(3 * W) / 4, (3 * H) / 4],
  ]) {
    const at = toScreen(box, ORIENTED, 1, x, y);
    const got = pixel(shot.png, at.x, at.y);
    assert.ok(near(got, quadrantColour(x, y, W, H)), `(${x}, ${y}): got ${got}; see ${shot.path}`);
  }
});
