// An image stored sideways with EXIF orientation 6 appears upright, at its oriented size.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeImages, ORIENTED, quadrantColour } from './images.mjs';
import { near, pixel, setup, toScreen, waitForSettled, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup('orientation', (dir) => makeImages(dir));
});
after(async () => t?.close());

test('EXIF orientation 6 is shown upright', async () => {
  await t.open({ src: `/e2e/${t.files.oriented}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  // Stored 800×1200; upright it is 1200×800.
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
});
