// A large JPEG shows a low-resolution preview, upright and in place, before its tiles; the tiles
// then replace it. The order is made certain, not left to a race between the two workers: with a
// store, the tiler worker asks it for the pyramid before decoding (and after starting the preview),
// and the test holds that request until the preview is on screen.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LARGE, makeLargeSideways, quadrantColour } from './images.mjs';
import { holdRequest, STORE_CHECK, near, pixel, setup, toScreen, waitForAttribute, waitForSettled, waitForState } from './harness.mjs';

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

/** The pyramid id the first test's page made (and saved to the store). */
let largeId = null;

test('a large JPEG is previewed upright before its tiles, which then replace the preview', async () => {
  const check = await holdRequest(t.page, STORE_CHECK);
  await t.open({ src: `/e2e/${t.files.large}`, store: '/' });
  await check.requested;
  const early = await waitForAttribute(t.page, 'data-ms-preview');
  assert.notEqual(early['data-state'], 'error', early['data-error']);
  assert.equal(early['data-state'], 'loading', 'the tiles were drawn before any preview');
  await checkQuadrants('preview');
  assert.ok(await check.release(), 'the store check was still waiting when the preview was drawn');

  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(Number(attrs['data-width']), LARGE.width);
  assert.equal(Number(attrs['data-height']), LARGE.height);
  assert.ok(Number(attrs['data-ms-preview']) < Number(attrs['data-ms-first-view']));
  largeId = attrs['data-pyramid-id'];
  await waitForSettled(t.page);
  await checkQuadrants('tiles');
});

test('the same JPEG by its URL, once the store has it, is not previewed: no decode takes a core from its tiles', async () => {
  assert.ok(largeId, 'needs the first test');
  const deadline = Date.now() + 60_000;
  while ((await fetch(`${t.app.url}/pyramids/${largeId}.dzi`)).status !== 200) {
    assert.ok(Date.now() < deadline, "the first test's page did not save the pyramid within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The store's answer is held a moment (well inside the worker's wait for it): a preview started
  // alongside the store check, as before, would be drawn meanwhile.
  const check = await holdRequest(t.page, STORE_CHECK);
  await t.open({ src: `/e2e/${t.files.large}`, store: '/' });
  await check.requested;
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.ok(await check.release(), 'the store check was abandoned');
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(attrs['data-source'], 'store');
  assert.equal(attrs['data-decodes'], '0', 'nothing was decoded in the browser');
  assert.equal(attrs['data-ms-preview'], undefined, 'a preview was drawn for a pyramid the store has');
  await waitForSettled(t.page);
  await checkQuadrants('stored');
});

test('with a known id the store does not have, the image still previews first', async () => {
  // The page asks the store for the known id first (404), then opens the image as without it: it
  // downloads and hashes it and asks by its digest, a request held until the preview is on screen.
  const unknown = 'f'.repeat(64);
  const check = await holdRequest(t.page, STORE_CHECK);
  await t.open({ src: `/e2e/${t.files.large}`, store: '/', pyramid: unknown });
  await check.requested;
  const early = await waitForAttribute(t.page, 'data-ms-preview');
  assert.notEqual(early['data-state'], 'error', early['data-error']);
  assert.equal(early['data-state'], 'loading', 'the tiles were drawn before any preview');
  assert.equal(early['data-preview-decoder'], 'browser');
  await checkQuadrants('late preview');
  assert.ok(await check.release(), 'the store check was still waiting when the preview was drawn');
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
});
