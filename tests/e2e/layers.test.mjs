// Large damage layers and exporting the view, in Chromium: 10,000 lines go onto one canvas that draws
// them where the image has them (the view turned too) and chooses the one clicked; "Export view" saves a PNG with the tiles,
// the damage layer and a scale bar, as the screen shows them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { gridLayer, QUAD, QUADRANTS } from './images.mjs';
import { moveView, near, pixel, toScreen, waitForSettled, waitForState } from './harness.mjs';
import { setupWorkspace } from './workspace.mjs';

const DAMAGE = [255, 45, 85];
const [ROWS, COLS] = [100, 100];

let t;
before(async () => {
  t = await setupWorkspace('layers', (dir) => {
    writeFileSync(join(dir, 'grid.json'), JSON.stringify(gridLayer(ROWS, COLS, QUAD.width, QUAD.height)));
    return { grid: 'grid.json' };
  });
});
after(async () => t?.close());

async function open(params) {
  await t.open({ src: `/e2e/${t.files.quadrants}`, ...params });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await waitForSettled(t.page);
  return t.page.getByTestId('viewer').boundingBox();
}

test('10,000 lines are drawn on one canvas, on their pixels; a click chooses the line under it', async () => {
  const box = await open({ vectorSrc: `/e2e/${t.files.grid}` });
  const canvas = t.page.getByTestId('vector-canvas');
  await t.page.locator('[data-testid="vector-canvas"][data-features="10000"]').waitFor();
  assert.equal(await t.page.locator('[data-testid="vector-feature"]').count(), 0, 'no SVG element a feature');
  assert.equal(await canvas.getAttribute('data-drawn'), '10000', 'all on screen at the home view');
  // The list shows a page of them.
  assert.equal(await t.page.getByTestId('list-page').textContent(), '1–200 of 10000');
  assert.equal(await t.page.locator('[data-testid="damage-list"] li').count(), 200);

  // Zoomed in 4× on the centre, the cell (row 50, column 50) is large: its line is drawn across its
  // middle, and the cell's ends are left as the image.
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  const shot = await t.shot('grid-zoom4');
  const [cw, ch] = [QUAD.width / COLS, QUAD.height / ROWS];
  const cell = (r, c, fx, fy) => toScreen(box, QUAD, 4, (c + fx) * cw, (r + fy) * ch);
  const onLine = cell(50, 50, 0.5, 0.5);
  const beside = cell(50, 50, 0.1, 0.5);
  assert.ok(near(pixel(shot.png, onLine.x, onLine.y), DAMAGE, 40), `on the line: ${pixel(shot.png, onLine.x, onLine.y)}; see ${shot.path}`);
  assert.ok(!near(pixel(shot.png, beside.x, beside.y), DAMAGE, 60), `beside it: ${pixel(shot.png, beside.x, beside.y)}`);
  assert.ok(Number(await canvas.getAttribute('data-drawn')) < 10000, 'features off screen are skipped');

  // OpenSeadragon's R key turns the view 90° clockwise about its centre: the lines turn with the tiles.
  // Cells away from the centre, so a layer left unturned would be drawn elsewhere. Shift+R turns it back.
  await t.page.locator('.openseadragon-canvas').first().focus();
  await moveView(t.page, () => t.page.keyboard.press('r'));
  const turned = await t.shot('grid-zoom4-turned');
  const turn = ({ x, y }) => ({ x: box.width / 2 - (y - box.height / 2), y: box.height / 2 + (x - box.width / 2) });
  for (const [r, c] of [
    [47, 53],
    [53, 46],
    [48, 48],
    [52, 52],
  ]) {
    const on = turn(cell(r, c, 0.5, 0.5));
    const off = turn(cell(r, c, 0.1, 0.5));
    assert.ok(
      near(pixel(turned.png, on.x, on.y), DAMAGE, 40),
      `turned, cell ${r},${c} on its line: ${pixel(turned.png, on.x, on.y)}; see ${turned.path}`,
    );
    const image = QUADRANTS[`${r < ROWS / 2 ? 'top' : 'bottom'}${c < COLS / 2 ? 'Left' : 'Right'}`];
    assert.ok(
      near(pixel(turned.png, off.x, off.y), image, 30),
      `turned, cell ${r},${c} beside its line: ${pixel(turned.png, off.x, off.y)}, want ${image}`,
    );
  }
  await moveView(t.page, () => t.page.keyboard.press('Shift+R'));

  // A click on that line chooses feature 50 × 100 + 50, and the list turns to its page.
  await t.page.mouse.click(box.x + onLine.x, box.y + onLine.y);
  await t.page.locator('[data-testid="damage-list"] li button.selected[data-index="5050"]').waitFor();
  assert.equal(await t.page.getByTestId('list-page').textContent(), '5001–5200 of 10000');
});

test('Export view: a PNG of the view with the tiles, the damage layer and a scale bar', async () => {
  const box = await open({ vectorSrc: `/e2e/${t.files.damage}`, scale: '0.2mm' });
  await t.page.locator('[data-testid="vector-feature"]').first().waitFor();
  const screen = await t.shot('before-export');
  const [saved] = await Promise.all([t.page.waitForEvent('download'), t.page.getByRole('button', { name: 'Export view' }).click()]);
  assert.equal(saved.suggestedFilename(), 'view.png');
  const png = PNG.sync.read(readFileSync(await saved.path()));
  assert.deepEqual([png.width, png.height], [Math.round(box.width), Math.round(box.height)]);

  // The tiles: image pixels away from the layer are as on screen.
  for (const [x, y] of [
    [150, 1400],
    [1100, 100],
    [1900, 1400],
  ]) {
    const s = toScreen(box, QUAD, 1, x, y);
    assert.ok(near(pixel(png, s.x, s.y), pixel(screen.png, s.x, s.y), 3), `tile pixel (${x}, ${y})`);
  }
  // The layer: the spalling line and the crack polygon's edge in the damage colour, the fill lets the image through.
  for (const [x, y] of [
    [1500, 450],
    [450, 200],
  ]) {
    const s = toScreen(box, QUAD, 1, x, y);
    assert.ok(near(pixel(png, s.x, s.y), DAMAGE, 40), `layer at (${x}, ${y}): ${pixel(png, s.x, s.y)}`);
  }
  const inside = toScreen(box, QUAD, 1, 450, 350);
  assert.ok(near(pixel(png, inside.x, inside.y), [230, 30, 30], 45), 'the image shows through the fill');
  // The scale bar: its box and bar in the bottom-left corner, where the screen has the image.
  const bar = { x: 10 + 8 + 20, y: box.height - 10 - 34 + 8 };
  assert.ok(near(pixel(png, bar.x, bar.y), [29, 35, 48], 40), `the bar: ${pixel(png, bar.x, bar.y)}`);
  const corner = { x: 10 + 3, y: box.height - 10 - 34 + 3 };
  assert.ok(near(pixel(png, corner.x, corner.y), [255, 255, 255], 60), `its box: ${pixel(png, corner.x, corner.y)}`);
});

test('Export view keeps the enhancement: inverted on screen, inverted in the PNG', async () => {
  const box = await open({ vectorSrc: `/e2e/${t.files.damage}` });
  await t.page.keyboard.press('e');
  await t.page.getByLabel('Invert').check();
  await t.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const screen = await t.shot('inverted');
  const [saved] = await Promise.all([t.page.waitForEvent('download'), t.page.getByRole('button', { name: 'Export view' }).click()]);
  const png = PNG.sync.read(readFileSync(await saved.path()));
  const s = toScreen(box, QUAD, 1, 1100, 100);
  const shown = pixel(screen.png, s.x, s.y);
  assert.ok(near(shown, [225, 55, 225], 12), `inverted green on screen: ${shown}`);
  assert.ok(near(pixel(png, s.x, s.y), shown, 3), `and in the PNG: ${pixel(png, s.x, s.y)}`);
});
