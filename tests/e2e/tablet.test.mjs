// In the field, on a tablet: at 768 × 1024 with touch, the image keeps the screen, the panels fold
// into a bottom sheet, every control is a 44-pixel touch target, and double-tap, pinch and one-finger
// pan move the image.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM_ARGS, moveView, screenBoxOfFeature, waitForSettled, waitForState } from './harness.mjs';
import { setupWorkspace } from './workspace.mjs';

const TABLET = { width: 768, height: 1024 };

let t;
let browser;
let page;
before(async () => {
  t = await setupWorkspace('tablet');
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  const context = await browser.newContext({ viewport: TABLET, hasTouch: true, isMobile: true, deviceScaleFactor: 1 });
  page = await context.newPage();
});
after(async () => {
  await browser?.close();
  await t?.close();
});

/** Two fingers from `d0` to `d1` pixels apart, about the point (x, y), in 12 moves. */
async function pinch(x, y, d0, d1) {
  const cdp = await page.context().newCDPSession(page);
  const fingers = (d) => [
    { x: x - d / 2, y, id: 1 },
    { x: x + d / 2, y, id: 2 },
  ];
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: fingers(d0) });
  for (let i = 1; i <= 12; i++)
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: fingers(d0 + ((d1 - d0) * i) / 12) });
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
}

/** One finger from (x, y) moved by (dx, dy), in 12 moves. */
async function swipe(x, y, dx, dy) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x, y, id: 1 }] });
  for (let i = 1; i <= 12; i++) {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x: x + (dx * i) / 12, y: y + (dy * i) / 12, id: 1 }] });
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
}

test('at 768 × 1024 with touch: a bottom sheet, 44-pixel targets, double-tap, pinch and pan', async () => {
  await page.goto(`${t.app.url}/?src=/e2e/${t.files.quadrants}&vectorSrc=/e2e/${t.files.damage}`);
  const attrs = await waitForState(page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await page.locator('[data-testid="vector-feature"]').first().waitFor();
  await waitForSettled(page);

  // The image keeps the screen; the sheet shows only its handle.
  assert.equal(await page.locator('.workspace').getAttribute('data-layout'), 'narrow');
  const viewer = await page.getByTestId('viewer').boundingBox();
  const workspace = await page.locator('.workspace').boundingBox();
  assert.equal(viewer.width, TABLET.width, 'the image has the whole width');
  assert.equal(viewer.height, workspace.height, 'and the whole height below the page header');
  const sheet = await page.getByTestId('sidebar').boundingBox();
  assert.ok(TABLET.height - sheet.y <= 60, `the closed sheet shows its handle only: top at ${sheet.y}`);

  // Every control on screen is at least 44 × 44.
  const small = await page.evaluate(() =>
    [...document.querySelectorAll('.workspace :is(button, select, input)')]
      .map((el) => ({ el, r: el.getBoundingClientRect() }))
      .filter(({ r }) => r.width > 0 && r.bottom > 0 && r.top < innerHeight)
      .filter(({ el, r }) => (el.type === 'checkbox' ? r.width < 24 : r.width < 44 || r.height < 44))
      .map(({ el, r }) => `${el.tagName} "${el.textContent || el.getAttribute('aria-label')}" ${r.width}×${r.height}`),
  );
  assert.deepEqual(small, [], 'controls under 44 px');

  // Double-tap zooms in 2× about the tap.
  const before = await screenBoxOfFeature(page, 0);
  const centre = { x: viewer.x + viewer.width / 2, y: viewer.y + viewer.height / 2 };
  await moveView(page, async () => {
    await page.touchscreen.tap(centre.x, centre.y);
    await page.touchscreen.tap(centre.x, centre.y);
  });
  const tapped = await screenBoxOfFeature(page, 0);
  assert.ok(Math.abs(tapped.width / before.width - 2) < 0.05, `double-tap: ${before.width} → ${tapped.width}`);

  // Pinch out: fingers from 100 to 300 px apart zoom in about 3×.
  await moveView(page, () => pinch(centre.x, centre.y, 100, 300));
  const pinched = await screenBoxOfFeature(page, 0);
  assert.ok(pinched.width / tapped.width > 2, `pinch: ${tapped.width} → ${pinched.width}`);

  // One finger pans: a 200 px swipe left moves the image left (at least 150 px: OpenSeadragon takes a
  // little before a touch counts as a drag, and a flick adds momentum that depends on the swipe's speed).
  await moveView(page, () => swipe(centre.x, centre.y, -200, 0));
  const panned = await screenBoxOfFeature(page, 0);
  assert.ok(pinched.x - panned.x >= 150, `pan: x ${pinched.x} → ${panned.x}`);
  assert.ok(Math.abs(panned.y - pinched.y) < 5, `pan stays level: y ${pinched.y} → ${panned.y}`);
  assert.ok(Math.abs(panned.width - pinched.width) < 1, 'pan keeps the zoom');

  // The sheet opens; choosing a feature closes it and centres the feature.
  await page.getByRole('button', { name: /^Details/ }).tap();
  await page.waitForFunction(() => document.querySelector('[data-testid="sidebar"]').getBoundingClientRect().top < innerHeight / 2);
  await page.screenshot({ path: join(ARTIFACTS, 'tablet-sheet.png') });
  const item = page.getByTestId('damage-list').locator('li button[data-index="1"]');
  await moveView(page, () => item.tap());
  await page.waitForFunction(() => innerHeight - document.querySelector('[data-testid="sidebar"]').getBoundingClientRect().top <= 60);
  const line = await screenBoxOfFeature(page, 1);
  const lineCentre = { x: line.x + line.width / 2, y: line.y + line.height / 2 };
  assert.ok(
    Math.abs(lineCentre.x - viewer.width / 2) < 3 && Math.abs(lineCentre.y - viewer.height / 2) < 3,
    `feature centred: ${JSON.stringify(lineCentre)}`,
  );
});
