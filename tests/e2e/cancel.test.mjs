// Changing the image while one is loading terminates its worker; the new image wins.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeImages, ORIENTED } from './images.mjs';
import { setup, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup('cancel', (dir) => makeImages(dir));
});
after(async () => t?.close());

test('a new src cancels the work in flight', async () => {
  const workers = [];
  t.page.on('worker', (w) => workers.push({ worker: w, closed: new Promise((r) => w.once('close', r)) }));
  await t.open({ src: `/e2e/${t.files.quadrants}` });
  await waitForState(t.page, ['loading']);
  await t.page.getByLabel('Image URL').fill(`/e2e/${t.files.oriented}`);
  await t.page.getByRole('button', { name: 'Open', exact: true }).click();

  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(Number(attrs['data-width']), ORIENTED.width);
  assert.equal(Number(attrs['data-height']), ORIENTED.height);
  assert.equal(await t.page.locator('[data-field="orientation"] dd').innerText(), '6 (rotated 90° CW)');

  assert.equal(workers.length, 2, 'one worker per image');
  const closed = await Promise.race([workers[0].closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
  assert.ok(closed, 'the first image’s worker was terminated');
});
