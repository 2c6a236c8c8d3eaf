// Changing the image while one is loading terminates its worker; the new image wins. The first
// image's download is held by the test, so it is certainly still loading when the second is opened.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeImages, ORIENTED } from './images.mjs';
import { holdRequest, setup, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup('cancel', (dir) => makeImages(dir));
});
after(async () => t?.close());

test('a new src cancels the work in flight', { timeout: 60_000 }, async () => {
  const workers = [];
  t.page.on('worker', (w) => workers.push({ worker: w, closed: new Promise((r) => w.once('close', r)) }));
  const first = await holdRequest(t.page, `**/e2e/${t.files.quadrants}`);
  await t.open({ src: `/e2e/${t.files.quadrants}` });
  await first.requested;
  const loading = await waitForState(t.page, ['loading', 'ready', 'error']);
  assert.equal(loading['data-state'], 'loading');
  await t.page.getByLabel('Image URL').fill(`/e2e/${t.files.oriented}`);
  await t.page.getByRole('button', { name: 'Open', exact: true }).click();

  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(Number(attrs['data-width']), ORIENTED.width);
  assert.equal(Number(attrs['data-height']), ORIENTED.height);
  assert.equal(await t.page.locator('[data-field="orientation"] dd').innerText(), '6 (rotated 90° CW)');

  // Each image has its tiler workers (the one that decodes, and its helpers: as many in all as the
  // viewer says it started), and a preview worker that is gone once the image is decoded.
  const perImage = Number(attrs['data-tiler-workers']);
  assert.ok(perImage >= 1, `data-tiler-workers: ${attrs['data-tiler-workers']}`);
  const tilers = workers.filter((w) => w.worker.url().includes('tiler.worker'));
  const previews = workers.filter((w) => w.worker.url().includes('preview.worker'));
  assert.equal(tilers.length, 2 * perImage, `${perImage} tiler workers per image`);
  assert.equal(tilers.length + previews.length, workers.length, workers.map((w) => w.worker.url()).join(', '));
  // Closed already, or closing: a worker that is never terminated fails the test at its timeout.
  await Promise.all(tilers.slice(0, perImage).map((w) => w.closed));
  await Promise.all(previews.map((w) => w.closed));
  await first.release();
});
