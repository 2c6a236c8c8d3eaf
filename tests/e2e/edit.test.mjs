// Editing the damage layer in Chromium: draw a line and give it a label, class and confidence; drag a
// polygon's vertex; delete a feature, undo and redo; the app hears of each change (onVectorChange),
// and the downloaded GeoJSON has exactly what was done. The geometry rules on fixed vectors first.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { damageLayer, QUAD } from './images.mjs';
import { moveView, toScreen } from './harness.mjs';
import { openQuadrants, setupWorkspace } from './workspace.mjs';
import { moveVertex, newGeometry, vertices } from '../../www/react/dist/editGeometry.js';
import { parseDamage } from '../../www/react/dist/geojson.js';

test('new geometries, vertices and moved vertices on fixed vectors', () => {
  assert.equal(newGeometry('LineString', [[1, 1]]), null);
  assert.equal(
    newGeometry('Polygon', [
      [0, 0],
      [1, 0],
    ]),
    null,
  );
  assert.deepEqual(newGeometry('Point', [[3, 4]]), { type: 'Point', coordinates: [3, 4] });
  assert.deepEqual(
    newGeometry('Polygon', [
      [0, 0],
      [4, 0],
      [4, 3],
    ]),
    {
      type: 'Polygon',
      coordinates: [
        [
          [0, 0],
          [4, 0],
          [4, 3],
          [0, 0],
        ],
      ],
    },
  );
  const square = {
    type: 'Polygon',
    coordinates: [
      [
        [0, 0],
        [10, 0],
        [10, 10],
        [0, 10],
        [0, 0],
      ],
    ],
  };
  assert.deepEqual(
    vertices(square).map((v) => v.address),
    [
      [0, 0],
      [0, 1],
      [0, 2],
      [0, 3],
    ],
    'the closing point is no vertex',
  );
  assert.deepEqual(
    moveVertex(square, [0, 0], [-1, -2]).coordinates[0],
    [
      [-1, -2],
      [10, 0],
      [10, 10],
      [0, 10],
      [-1, -2],
    ],
    'and follows the first',
  );
  assert.deepEqual(moveVertex(square, [0, 2], [12, 12]).coordinates[0][2], [12, 12]);
  assert.equal(moveVertex(square, [0, 9], [1, 1]), square, 'no such vertex');
  assert.equal(moveVertex(square, [1, 0], [1, 1]), square, 'no such ring');
  const multi = {
    type: 'MultiPolygon',
    coordinates: [
      [
        [
          [0, 0],
          [1, 0],
          [1, 1],
          [0, 0],
        ],
      ],
      [
        [
          [5, 5],
          [6, 5],
          [6, 6],
          [5, 5],
        ],
      ],
    ],
  };
  assert.deepEqual(
    vertices(multi).map((v) => v.address.join('.')),
    ['0.0.0', '0.0.1', '0.0.2', '1.0.0', '1.0.1', '1.0.2'],
  );
  assert.deepEqual(moveVertex(multi, [1, 0, 1], [7, 4]).coordinates[1][0], [
    [5, 5],
    [7, 4],
    [6, 6],
    [5, 5],
  ]);
  assert.deepEqual(moveVertex({ type: 'Point', coordinates: [1, 1] }, [], [2, 3]), { type: 'Point', coordinates: [2, 3] });
  assert.deepEqual(
    moveVertex(
      {
        type: 'LineString',
        coordinates: [
          [0, 0],
          [1, 1],
        ],
      },
      [1],
      [5, 5],
    ).coordinates,
    [
      [0, 0],
      [5, 5],
    ],
  );
});

let t;
before(async () => {
  t = await setupWorkspace('edit');
});
after(async () => t?.close());

const near = (got, want, tolerance, what) =>
  assert.ok(Math.hypot(got[0] - want[0], got[1] - want[1]) <= tolerance, `${what}: got ${got}, want ${want} ± ${tolerance}`);

test('draw, label, move a vertex, delete, undo and redo; the download has it all', async () => {
  const box = await openQuadrants(t);
  const toolbar = t.page.getByRole('toolbar', { name: 'Edit the damage layer' });
  const status = t.page.getByTestId('layer-status');
  const list = t.page.getByTestId('damage-list');
  const listed = () => list.locator('li button').evaluateAll((bs) => bs.map((b) => Number(b.dataset.index)));

  // A new line through three points, ended with Enter; it is chosen, and the app hears of it.
  await toolbar.getByRole('button', { name: 'Edit' }).click();
  await toolbar.getByRole('button', { name: 'Line' }).click();
  const clicked = [
    [300, 1300],
    [800, 1380],
    [900, 1250],
  ];
  for (const [x, y] of clicked) {
    const s = toScreen(box, QUAD, 1, x, y);
    await t.page.mouse.click(box.x + s.x, box.y + s.y);
  }
  await t.page.keyboard.press('Enter');
  await t.page.locator('[data-testid="layer-status"][data-features="5"]').waitFor();
  assert.deepEqual(await listed(), [0, 1, 2, 3, 4]);
  const props = t.page.getByTestId('feature-properties');
  await props.getByLabel('Label').fill('New crack');
  await props.getByLabel('Class').fill('crack');
  await props.getByLabel('Confidence').fill('0.8');
  await props.getByLabel('Confidence').press('Enter');
  await t.page.waitForFunction(
    () => document.querySelector('[data-testid="damage-list"] li button.selected .title')?.textContent === 'New crack',
  );
  // A confidence out of range is refused with a reason, and changes nothing.
  await props.getByLabel('Confidence').fill('3');
  await props.getByLabel('Confidence').press('Enter');
  assert.match(await props.getByRole('alert').textContent(), /0 to 1/);
  await props.getByLabel('Confidence').fill('0.8');
  await props.getByLabel('Confidence').press('Enter');

  // The crack polygon's second vertex, (700, 200), dragged to (800, 250).
  await moveView(t.page, () => list.locator('li button[data-index="0"]').click());
  const handle = t.page.locator('[data-testid="vertex-handle"][data-address="0.1"]');
  const from = await handle.boundingBox();
  const overlay = await t.page.getByTestId('edit-overlay').boundingBox();
  const to = { x: overlay.x + (800 / QUAD.width) * overlay.width, y: overlay.y + (250 / QUAD.width) * overlay.width };
  await t.page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await t.page.mouse.down();
  await t.page.mouse.move(to.x, to.y, { steps: 8 });
  await t.page.mouse.up();
  const animations = await t.page.getByTestId('viewer').getAttribute('data-animations');
  await t.page.waitForFunction(() => {
    const h = document.querySelector('[data-testid="vertex-handle"][data-address="0.1"]');
    return h && Number(h.getAttribute('cx')) > 790;
  });
  assert.equal(await t.page.getByTestId('viewer').getAttribute('data-animations'), animations, 'the drag did not pan the image');
  await t.shot('dragged');

  // Delete the rust stain (Delete key), undo (Ctrl+Z), redo (Ctrl+Shift+Z).
  await moveView(t.page, () => list.locator('li button[data-index="2"]').click());
  await t.page.keyboard.press('Delete');
  await t.page.waitForFunction(() => !document.querySelector('[data-testid="damage-list"] li button[data-index="2"]'));
  assert.equal(await status.getAttribute('data-features'), '4');
  await t.page.keyboard.press('Control+z');
  await t.page.locator('[data-testid="layer-status"][data-features="5"]').waitFor();
  assert.deepEqual(await listed(), [0, 1, 2, 3, 4]);
  await t.page.keyboard.press('Control+Shift+z');
  await t.page.locator('[data-testid="layer-status"][data-features="4"]').waitFor();
  assert.deepEqual(await listed(), [0, 1, 3, 4]);

  // The download: valid GeoJSON (parseDamage reads it back) with exactly those changes.
  const [saved] = await Promise.all([t.page.waitForEvent('download'), toolbar.getByRole('button', { name: 'Download' }).click()]);
  assert.equal(saved.suggestedFilename(), 'damage.geojson');
  const collection = JSON.parse(readFileSync(await saved.path(), 'utf8'));
  assert.equal(parseDamage(collection).length, 4);
  const [crack, spalling, efflorescence, line] = collection.features;
  const original = damageLayer().features;
  assert.equal(crack.id, 'crack-1');
  assert.deepEqual(crack.properties, original[0].properties);
  const ring = crack.geometry.coordinates[0];
  assert.equal(ring.length, 5);
  near(ring[1], [800, 250], 2, 'the dragged vertex');
  for (const i of [0, 2, 3]) assert.deepEqual(ring[i], original[0].geometry.coordinates[0][i], `vertex ${i} untouched`);
  assert.deepEqual(ring[4], ring[0], 'the ring stays closed');
  assert.deepEqual(spalling, original[1]);
  assert.deepEqual(efflorescence, original[3]);
  assert.equal(line.geometry.type, 'LineString');
  assert.deepEqual(line.properties, { label: 'New crack', class: 'crack', confidence: 0.8 });
  assert.equal(line.geometry.coordinates.length, 3);
  for (const [i, p] of line.geometry.coordinates.entries()) near(p, clicked[i], 3, `line point ${i}`);
});
