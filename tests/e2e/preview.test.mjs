// A large JPEG shows a low-resolution preview, upright and in place, before its tiles; the tiles
// then replace it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LARGE, makeLargeSideways, quadrantColour } from './images.mjs';
import { near, pixel, setup, toScreen, waitForSettled, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup('preview', (dir) => ({ large: makeLargeSideways(dir) }));
});
after(async () => t?.close());

/** The quadrant colours at the centres of the four quadrants, at the home view. */
async function checkQuadrants(label) {
  const box = await t.page.getByTestId('viewer').boundingBox();
  const shot = await t.shot(label);
  const { width: W, height: H } = LARGE;
  for (const [x, y] of [
    [W / 4, H / 4],
    [(3 * W) / 4, H / 4],
    [W / 4, (3 * H) / 4],
    [(3 * W) / 4, (3 * H) / 4],
  ]) {
    const at = toScreen(box, LARGE, 1, x, y);
    const want = quadrantColour(x, y, W, H);
    const got = pixel(shot.png, at.x, at.y);
    assert.ok(near(got, want), `${label} (${x}, ${y}): got ${got}, want ${want}; see ${shot.path}`);
  }
}

test('a large JPEG is previewed upright before its tiles, which then replace the preview', async () => {
  await t.open({ src: `/e2e/${t.files.large}` });
  await t.page.waitForFunction(
    () => {
      const el = document.querySelector('[data-testid="viewer"]');
      return el?.hasAttribute('data-ms-preview') || ['ready', 'error'].includes(el?.getAttribute('data-state'));
    },
    null,
    { timeout: 120_000, polling: 20 },
  );
  const early = await t.page
    .getByTestId('viewer')
    .evaluate((el) => Object.fromEntries([...el.attributes].map((a) => [a.name, a.value])));
  assert.notEqual(early['data-state'], 'error', early['data-error']);
  assert.equal(early['data-state'], 'loading', 'the tiles were drawn before any preview');
  assert.ok(early['data-ms-preview'] !== undefined);
  await checkQuadrants('preview');

  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(Number(attrs['data-width']), LARGE.width);
  assert.equal(Number(attrs['data-height']), LARGE.height);
  assert.ok(Number(attrs['data-ms-preview']) < Number(attrs['data-ms-first-view']));
  await waitForSettled(t.page);
  await checkQuadrants('tiles');
});
