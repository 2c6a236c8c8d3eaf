// Measuring: the maths on fixed vectors, then in Chromium a calibration line sets the scale, the
// ruler and the area tool measure known image distances within 1%, the scale bar follows the zoom,
// and the damage list gives the chosen feature's length and area.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { QUAD } from './images.mjs';
import { assertBoxNear, moveView, toScreen, toScreenBox, waitForSettled, waitForState } from './harness.mjs';
import { setupWorkspace } from './workspace.mjs';
import { calibrate, measureGeometry, parseScale, pathLength, ringArea, roundLengthAtMost } from '../../www/react/dist/measure.js';

const close = (got, want, fraction, what) =>
  assert.ok(Math.abs(got - want) <= Math.abs(want) * fraction, `${what}: got ${got}, want ${want} ± ${fraction * 100}%`);

test('lengths, areas, calibration and round bar lengths on fixed vectors', () => {
  assert.equal(
    pathLength([
      [0, 0],
      [3, 4],
      [3, 10],
    ]),
    11,
  );
  const rect = [
    [0, 0],
    [4, 0],
    [4, 3],
    [0, 3],
  ];
  assert.equal(ringArea(rect), 12);
  assert.equal(ringArea([...rect].reverse()), 12, 'either winding');
  assert.equal(ringArea([...rect, [0, 0]]), 12, 'closed or not');
  const square = [
    [0, 0],
    [10, 0],
    [10, 10],
    [0, 10],
    [0, 0],
  ];
  const hole = [
    [2, 2],
    [4, 2],
    [4, 5],
    [2, 5],
    [2, 2],
  ];
  assert.deepEqual(measureGeometry({ type: 'Polygon', coordinates: [square, hole] }), { length: 40, area: 94 });
  assert.deepEqual(
    measureGeometry({
      type: 'MultiLineString',
      coordinates: [
        [
          [0, 0],
          [3, 4],
        ],
        [
          [1, 1],
          [1, 3],
        ],
      ],
    }),
    { length: 7, area: null },
  );
  assert.deepEqual(
    measureGeometry({
      type: 'MultiPolygon',
      coordinates: [
        [square],
        [
          [
            [0, 0],
            [1, 0],
            [1, 1],
            [0, 1],
          ],
        ],
      ],
    }),
    { length: 44, area: 101 },
  );
  assert.deepEqual(measureGeometry({ type: 'Point', coordinates: [5, 5] }), { length: null, area: null });

  assert.deepEqual(calibrate(500, 100, ' mm '), { value: 0.2, unit: 'mm' });
  for (const [px, real, unit] of [
    [0, 100, 'mm'],
    [500, 0, 'mm'],
    [500, Number.NaN, 'mm'],
    [500, -1, 'mm'],
    [500, 100, ''],
    [500, 100, 'x'.repeat(17)],
  ]) {
    assert.throws(() => calibrate(px, real, unit), Error, `${px} px = ${real} ${unit}`);
  }
  assert.deepEqual(parseScale('0.2mm'), { value: 0.2, unit: 'mm' });
  assert.deepEqual(parseScale(' 0.2 mm '), { value: 0.2, unit: 'mm' });
  assert.deepEqual(parseScale('1.5e-3 m'), { value: 0.0015, unit: 'm' });
  for (const bad of ['mm', '0mm', '-1mm', '0.2', '', '1 m m', `1${'x'.repeat(17)}`]) assert.equal(parseScale(bad), null, bad);

  assert.equal(roundLengthAtMost(160), 100);
  assert.equal(roundLengthAtMost(200), 200);
  assert.equal(roundLengthAtMost(499), 200);
  assert.equal(roundLengthAtMost(5), 5);
  assert.equal(roundLengthAtMost(0.0731), 0.05);
  assert.equal(roundLengthAtMost(0), 0);
});

let t;
before(async () => {
  t = await setupWorkspace('measure');
});
after(async () => t?.close());

/** Clicks image pixel (x, y) at the home view. */
async function clickImage(viewerBox, x, y) {
  const s = toScreen(viewerBox, QUAD, 1, x, y);
  await t.page.mouse.click(viewerBox.x + s.x, viewerBox.y + s.y);
}

const result = () => t.page.getByTestId('measure-result');
const numberOf = async (locator, name) => Number(await locator.getAttribute(name));

/** Waits until the measurement in progress has ended with `points` points. */
const ended = (points) =>
  t.page.locator(`[data-testid="measure-result"][data-ended="true"][data-points="${points}"]`).waitFor({ timeout: 10_000 });

/** The on-screen box of the measurement's path, relative to the viewer element. */
const measuredBox = () =>
  t.page.evaluate(() => {
    const viewer = document.querySelector('[data-testid="viewer"]').getBoundingClientRect();
    const r = document.querySelector('[data-testid="measure-overlay"] path').getBoundingClientRect();
    return { x: r.x - viewer.x, y: r.y - viewer.y, width: r.width, height: r.height };
  });

/** Image pixels per screen pixel at the home view. */
const homePxPerScreenPx = (box) => 1 / Math.min(box.width / QUAD.width, box.height / QUAD.height);

test('a calibrated line sets the scale; ruler and area measure within 1%; the bar follows the zoom', async () => {
  await t.open({ src: `/e2e/${t.files.quadrants}`, vectorSrc: `/e2e/${t.files.damage}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await waitForSettled(t.page);
  const box = await t.page.getByTestId('viewer').boundingBox();

  // Without a scale the bar measures image pixels.
  const bar = t.page.getByTestId('scale-bar');
  assert.equal(await bar.getAttribute('data-unit'), 'px');
  close((await numberOf(bar, 'data-length')) / (await numberOf(bar, 'data-screen-px')), homePxPerScreenPx(box), 0.005, 'px bar');

  // Calibrate (key C): a 1000-pixel line is 200 mm.
  await t.page.keyboard.press('c');
  await clickImage(box, 200, 300);
  await clickImage(box, 1200, 300);
  await ended(2);
  close(await numberOf(result(), 'data-length-px'), 1000, 0.005, 'calibration line');
  await t.page.getByLabel('Real length').fill('200');
  await t.page.getByLabel('Unit').fill('mm');
  await t.page.getByRole('button', { name: 'Set scale' }).click();
  await result().waitFor({ state: 'detached' });

  // Ruler (key L): 1000 px along a 3-4-5 diagonal, then 600 px across: 1600 px = 320 mm.
  await t.page.keyboard.press('l');
  await clickImage(box, 400, 400);
  await clickImage(box, 1000, 1200);
  await clickImage(box, 1600, 1200);
  await t.page.keyboard.press('Enter');
  await ended(3);
  assert.equal(await result().getAttribute('data-unit'), 'mm');
  close(await numberOf(result(), 'data-length'), 320, 0.01, 'ruler mm');
  assert.match(await result().textContent(), /Length 3\d\d(\.\d)? mm \(1\d{3}(\.\d)? px\)/);

  // Area (key P, typed with the image focused): a 1000 × 600 px rectangle is 200 × 120 mm = 24000 mm².
  await t.page.locator('.openseadragon-canvas').focus();
  await t.page.keyboard.press('p');
  for (const [x, y] of [
    [400, 400],
    [1400, 400],
    [1400, 1000],
    [400, 1000],
  ])
    await clickImage(box, x, y);
  await t.page.keyboard.press('Enter');
  await ended(4);
  await t.shot('area');
  // Drawn where it was clicked: the view did not move under the clicks.
  assertBoxNear(await measuredBox(), toScreenBox(box, QUAD, 1, [400, 400, 1400, 1000]), 'area outline');
  close(await numberOf(result(), 'data-area'), 24000, 0.01, 'area mm²');
  const areaPx = await numberOf(result(), 'data-area-px');
  assert.match(await result().textContent(), /Area 2\d{4}(\.\d)? mm²/);

  // The scale bar is in mm now, and halves its units per screen pixel when the view zooms in 2×;
  // the measurement, kept in image pixels, does not change.
  assert.equal(await bar.getAttribute('data-unit'), 'mm');
  const mmPerScreenPx = async () => (await numberOf(bar, 'data-length')) / (await numberOf(bar, 'data-screen-px'));
  const home = await mmPerScreenPx();
  close(home, 0.2 * homePxPerScreenPx(box), 0.01, 'mm bar');
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  close(await mmPerScreenPx(), home / 2, 0.005, 'mm bar at 2×');
  assert.equal(await numberOf(result(), 'data-area-px'), areaPx);

  // Escape drops the measurement; the chosen feature's own length is listed in mm.
  await t.page.keyboard.press('Escape');
  await result().waitFor({ state: 'detached' });
  await moveView(t.page, () => t.page.getByTestId('damage-list').locator('li button').nth(1).click());
  const measures = t.page.getByTestId('feature-measures');
  close(await numberOf(measures, 'data-length-px'), Math.hypot(600, 300), 1e-9, 'line feature');
  assert.match(await measures.textContent(), /Length 13[34](\.\d)? mm \(670\.8 px\)/);
  // Width (key B) across the chosen line: a 20-pixel stroke, kept with the feature.
  await t.page.keyboard.press('b');
  const host = await t.page.getByTestId('measure-overlay').boundingBox();
  const at = (x, y) => [host.x + (x / QUAD.width) * host.width, host.y + (y / QUAD.width) * host.width];
  await t.page.mouse.click(...at(1500, 440));
  await t.page.mouse.click(...at(1500, 460));
  await ended(2);
  await t.page.locator('[data-testid="feature-measures"][data-width-px]').waitFor();
  close(await numberOf(measures, 'data-width-px'), 20, 0.05, 'width');
  assert.match(await measures.textContent(), /Width ≈ 4(\.\d+)? mm/);
  await t.page.keyboard.press('Escape');

  await t.page.getByTestId('damage-list').locator('li button').nth(0).click();
  assert.equal(await numberOf(measures, 'data-length-px'), 1600);
  assert.equal(await numberOf(measures, 'data-area-px'), 150000);
  assert.match(await measures.textContent(), /Outline 3\d\d(\.\d)? mm .*Area 6\d{3}(\.\d)? mm²/);
});

test('the app passes a scale: ?scale=0.2mm gives the bar in millimetres from the start', async () => {
  await t.open({ src: `/e2e/${t.files.quadrants}`, scale: '0.2mm' });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await waitForSettled(t.page);
  const box = await t.page.getByTestId('viewer').boundingBox();
  const bar = t.page.getByTestId('scale-bar');
  assert.equal(await bar.getAttribute('data-unit'), 'mm');
  close((await numberOf(bar, 'data-length')) / (await numberOf(bar, 'data-screen-px')), 0.2 * homePxPerScreenPx(box), 0.005, 'mm bar');
});
