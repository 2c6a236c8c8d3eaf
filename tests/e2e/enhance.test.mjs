// Enhancement: the reference maths on fixed vectors, then in Chromium each setting changes the drawn
// image's pixels as specified (and not the damage layer's), holds when zoomed, and X resets it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { QUAD } from './images.mjs';
import { moveView, near, pixel, toScreen } from './harness.mjs';
import { openQuadrants, setupWorkspace } from './workspace.mjs';
import { enhancePixel, NO_ENHANCEMENT } from '../../www/react/dist/enhance.js';

test('the enhancement of one pixel, on fixed vectors', () => {
  const e = (patch) => ({ ...NO_ENHANCEMENT, ...patch });
  assert.deepEqual(enhancePixel([230, 30, 30], NO_ENHANCEMENT), [230, 30, 30]);
  assert.deepEqual(enhancePixel([230, 30, 30], e({ brightness: 1.2 })), [255, 36, 36]);
  assert.deepEqual(enhancePixel([230, 30, 30], e({ contrast: 1.5 })), [255, 0, 0]);
  assert.deepEqual(enhancePixel([64, 128, 255], e({ gamma: 2 })), [128, 181, 255]);
  assert.deepEqual(enhancePixel([230, 30, 30], e({ greyscale: true })), [73, 73, 73]);
  assert.deepEqual(enhancePixel([230, 30, 30], e({ invert: true })), [25, 225, 225]);
  // In order: greyscale 72.52, × 0.5 = 36.26, contrast 2 → 0, invert → 255.
  assert.deepEqual(enhancePixel([230, 30, 30], e({ greyscale: true, brightness: 0.5, contrast: 2, invert: true })), [255, 255, 255]);
});

const DAMAGE = [255, 45, 85];

let t;
before(async () => {
  t = await setupWorkspace('enhance');
});
after(async () => t?.close());

/** Two frames, so a changed filter is painted. */
const painted = () => t.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

test('brightness, contrast, gamma, greyscale and invert change the drawn pixels as specified; X resets', async () => {
  const box = await openQuadrants(t);

  // One point in each of three quadrants, away from the damage layer; one on the spalling line.
  const points = [toScreen(box, QUAD, 1, 150, 1400), toScreen(box, QUAD, 1, 1100, 100), toScreen(box, QUAD, 1, 1900, 1400)];
  const edge = toScreen(box, QUAD, 1, 1500, 450);
  const base = await t.shot('plain');
  const original = points.map((p) => pixel(base.png, p.x, p.y));
  assert.ok(near(pixel(base.png, edge.x, edge.y), DAMAGE, 40), 'the damage stroke');

  await t.page.keyboard.press('e');
  const panel = t.page.getByTestId('enhance');
  await panel.waitFor();
  const steps = [
    ['brightness', () => t.page.getByLabel('Brightness').fill('1.2'), { brightness: 1.2 }],
    ['contrast', () => t.page.getByLabel('Contrast').fill('1.5'), { brightness: 1.2, contrast: 1.5 }],
    ['gamma', () => t.page.getByLabel('Gamma').fill('2'), { brightness: 1.2, contrast: 1.5, gamma: 2 }],
    ['greyscale', () => t.page.getByLabel('Greyscale').check(), { brightness: 1.2, contrast: 1.5, gamma: 2, greyscale: true }],
    ['invert', () => t.page.getByLabel('Invert').check(), { brightness: 1.2, contrast: 1.5, gamma: 2, greyscale: true, invert: true }],
  ];
  let last;
  for (const [name, act, settings] of steps) {
    await act();
    await painted();
    last = await t.shot(name);
    const want = { ...NO_ENHANCEMENT, ...settings };
    for (const [i, p] of points.entries()) {
      const got = pixel(last.png, p.x, p.y);
      const expected = enhancePixel(original[i], want);
      assert.ok(
        near(got, expected, 4),
        `${name} at ${JSON.stringify(p)}: got ${got}, want ${expected} (from ${original[i]}); see ${last.path}`,
      );
    }
    // The damage layer is drawn above the filtered canvas, as it was.
    assert.ok(near(pixel(last.png, edge.x, edge.y), DAMAGE, 40), `${name}: the damage stroke is not filtered; see ${last.path}`);
  }

  // The settings hold when the view moves.
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  const zoomed = await t.shot('zoomed');
  const [zoomedAt, homeAt] = [toScreen(box, QUAD, 2, 600, 650), toScreen(box, QUAD, 1, 600, 650)];
  const want = enhancePixel(pixel(base.png, homeAt.x, homeAt.y), { ...NO_ENHANCEMENT, ...steps.at(-1)[2] });
  const centre = zoomedAt;
  assert.ok(near(pixel(zoomed.png, centre.x, centre.y), want, 4), `zoomed: got ${pixel(zoomed.png, centre.x, centre.y)}, want ${want}`);
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Whole image' }).click());

  // X (with the image focused) shows the image as it is again.
  await t.page.locator('.openseadragon-canvas').focus();
  await t.page.keyboard.press('x');
  await painted();
  const reset = await t.shot('reset');
  for (const [i, p] of points.entries()) assert.ok(near(pixel(reset.png, p.x, p.y), original[i], 2), `reset at ${JSON.stringify(p)}`);
  assert.equal(await panel.getAttribute('data-brightness'), '1');
  assert.equal(await panel.getAttribute('data-invert'), 'false');
});
