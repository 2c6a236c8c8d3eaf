// The damage list: counts per class, filters, sorts and J/K stepping — the rules on fixed vectors,
// then in Chromium what is listed and drawn, and where J and K go.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { damageLayer } from './images.mjs';
import { moveView } from './harness.mjs';
import { openQuadrants, setupWorkspace } from './workspace.mjs';
import { parseDamage } from '../../www/react/dist/geojson.js';
import { ALL_DAMAGE, classCounts, listDamage, stepThrough } from '../../www/react/dist/damageList.js';

// The layer: 0 a crack polygon (0.93, 500 × 300), 1 a spalling line (0.61, 670.8 px), 2 a rust stain
// point (no class, no confidence), 3 efflorescence, two squares (0.5, 40000 + 10000 px²).
const indexes = (list) => list.map((f) => f.index);

test('counts, filters, sorts and steps on fixed vectors', () => {
  const features = parseDamage(damageLayer());
  assert.deepEqual(classCounts(features), [
    { name: 'crack', count: 1 },
    { name: 'efflorescence', count: 1 },
    { name: 'spalling', count: 1 },
    { name: null, count: 1 },
  ]);
  assert.deepEqual(
    classCounts([...features, features[1]]).map((c) => c.name),
    ['spalling', 'crack', 'efflorescence', null],
  );
  const list = (patch) => indexes(listDamage(features, { ...ALL_DAMAGE, ...patch }));
  assert.deepEqual(list({}), [0, 1, 2, 3]);
  assert.deepEqual(list({ minConfidence: 0.6 }), [0, 1, 2], 'no confidence: kept');
  assert.deepEqual(list({ minConfidence: 0.95 }), [2]);
  assert.deepEqual(list({ sort: 'confidence' }), [0, 1, 3, 2]);
  assert.deepEqual(list({ sort: 'class' }), [0, 3, 1, 2]);
  assert.deepEqual(list({ sort: 'size' }), [0, 3, 1, 2]);
  assert.deepEqual(list({ classes: ['spalling', null] }), [1, 2]);
  const sorted = listDamage(features, { ...ALL_DAMAGE, sort: 'confidence' });
  assert.equal(stepThrough(sorted, null, 1), 0);
  assert.equal(stepThrough(sorted, null, -1), 2);
  assert.equal(stepThrough(sorted, 0, 1), 1);
  assert.equal(stepThrough(sorted, 3, 1), 2);
  assert.equal(stepThrough(sorted, 2, 1), 0, 'wraps');
  assert.equal(stepThrough(sorted, 0, -1), 2, 'wraps back');
  assert.equal(stepThrough([], null, 1), null);
});

let t;
before(async () => {
  t = await setupWorkspace('damage-list');
});
after(async () => t?.close());

test('the list and the layer follow the filter; J and K step through the list', async () => {
  await openQuadrants(t);
  const list = t.page.getByTestId('damage-list');
  const listed = () => list.locator('li button').evaluateAll((bs) => bs.map((b) => Number(b.dataset.index)));
  const drawn = () => t.page.locator('[data-testid="vector-feature"]').evaluateAll((gs) => gs.map((g) => Number(g.dataset.index)));

  const counts = await list
    .getByTestId('class-counts')
    .locator('button')
    .evaluateAll((bs) => bs.map((b) => [b.dataset.class, b.dataset.count]));
  assert.deepEqual(counts, [
    ['crack', '1'],
    ['efflorescence', '1'],
    ['spalling', '1'],
    ['', '1'],
  ]);

  await list.getByLabel('Confidence at least').fill('60');
  await list.getByLabel('Sort').selectOption('confidence');
  await t.page.waitForFunction(() => document.querySelectorAll('[data-testid="damage-list"] li').length === 3);
  assert.deepEqual(await listed(), [0, 1, 2]);
  assert.deepEqual((await drawn()).sort(), [0, 1, 2], 'the layer draws what is listed');
  assert.match(await list.locator('h2 .count').textContent(), /^3 of 4$/);

  await list.getByTestId('class-counts').locator('button[data-class="spalling"]').click();
  await t.page.waitForFunction(() => document.querySelectorAll('[data-testid="damage-list"] li').length === 1);
  assert.deepEqual(await drawn(), [1]);
  await list.getByTestId('class-counts').locator('button[data-class="spalling"]').click();
  await t.page.waitForFunction(() => document.querySelectorAll('[data-testid="damage-list"] li').length === 3);

  // J and K with the image focused: through the listed order (by confidence), wrapping.
  await t.page.locator('.openseadragon-canvas').focus();
  const chosen = () => list.locator('li button.selected').getAttribute('data-index').then(Number);
  for (const [key, want] of [
    ['j', 0],
    ['j', 1],
    ['k', 0],
    ['k', 2],
  ]) {
    await moveView(t.page, () => t.page.keyboard.press(key));
    assert.equal(await chosen(), want, `${key} → feature ${want}`);
  }
});
