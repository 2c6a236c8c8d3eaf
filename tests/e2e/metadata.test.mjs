// The metadata panel shows the image's format, size, orientation and EXIF values.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EXIF, makeImages, ORIENTED } from './images.mjs';
import { join } from 'node:path';
import { ARTIFACTS, setup, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup('metadata', (dir) => makeImages(dir));
});
after(async () => t?.close());

test('metadata values are shown', async () => {
  await t.open({ src: `/e2e/${t.files.oriented}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  const panel = t.page.getByTestId('metadata');
  const field = (name) => panel.locator(`[data-field="${name}"] dd`).innerText();

  assert.equal(await field('format'), 'JPEG');
  assert.equal(await field('size'), `${ORIENTED.width} × ${ORIENTED.height} px (1.0 MP)`);
  assert.equal(await field('orientation'), '6 (rotated 90° CW)');
  assert.equal(await field('camera'), `${EXIF.make} ${EXIF.model}`);
  assert.equal(await field('focal-length'), `${EXIF.focalLength} mm`);
  assert.equal(await field('focal-length-35mm'), `${EXIF.focalLengthIn35mmFilm} mm`);
  assert.equal(await field('date'), EXIF.dateTimeOriginal);
  assert.equal(await field('gps'), '47.500000° N, 8.250000° E');
  assert.match(await field('tiles'), /^\d+ \/ \d+ JPEG, 12 levels$/);
  await t.page.screenshot({ path: join(ARTIFACTS, 'metadata-page.png') });
});
