// An image with alpha gets PNG tiles that OpenSeadragon draws as transparent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALPHA, makeAlphaPng } from './images.mjs';
import { near, pixel, setup, toScreen, waitForSettled, waitForState } from './harness.mjs';

/** The viewer's background (styles.css `.viewer-frame`). */
const BACKGROUND = [32, 36, 44];

let t;
before(async () => {
  t = await setup('alpha', (dir) => ({ alpha: makeAlphaPng(dir) }));
});
after(async () => t?.close());

test('transparent pixels show the background through PNG tiles', async () => {
  await t.open({ src: `/e2e/${t.files.alpha}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await waitForSettled(t.page);
  assert.match(await t.page.locator('[data-field="format"] dd').innerText(), /^PNG with alpha$/);
  assert.match(await t.page.locator('[data-field="tiles"] dd').innerText(), / PNG, /);

  const box = await t.page.getByTestId('viewer').boundingBox();
  const shot = await t.shot('home');
  for (const [x, y, want] of [
    [ALPHA.width / 4, ALPHA.height / 2, ALPHA.colour],
    [(3 * ALPHA.width) / 4, ALPHA.height / 2, BACKGROUND],
    [ALPHA.width / 2 - 10, ALPHA.height / 4, ALPHA.colour],
    [ALPHA.width / 2 + 10, ALPHA.height / 4, BACKGROUND],
  ]) {
    const at = toScreen(box, ALPHA, 1, x, y);
    const got = pixel(shot.png, at.x, at.y);
    assert.ok(near(got, want, 12), `(${x}, ${y}): got ${got}, want ${want}; see ${shot.path}`);
  }
});
