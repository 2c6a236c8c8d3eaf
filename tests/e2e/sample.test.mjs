// The sample a newcomer sees first (`make run`): the bridge-deck photo with its detections.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARTIFACTS, SAMPLES, setup, waitForSettled, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup('sample', () => ({}));
});
after(async () => t?.close());

test('the shipped sample opens with its damage layer', async () => {
  const layer = JSON.parse(readFileSync(join(SAMPLES, 'bridge-deck.json'), 'utf8'));
  await t.open({ src: '/samples/bridge-deck.jpg', vectorSrc: '/samples/bridge-deck.json' });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await waitForSettled(t.page);
  await t.page.screenshot({ path: join(ARTIFACTS, 'sample-page.png') });
  const items = t.page.getByTestId('damage-list').locator('li');
  assert.equal(await items.count(), layer.features.length);
  assert.equal(await t.page.locator('[data-testid="vector-feature"]').count(), layer.features.length);
  // The whole pyramid follows in the background.
  await t.page.waitForFunction(() => document.querySelector('[data-testid="viewer"]')?.getAttribute('data-tiling') === 'done', null, {
    timeout: 120_000,
  });
  const viewer = t.page.getByTestId('viewer');
  assert.equal(await viewer.getAttribute('data-tiles-done'), await viewer.getAttribute('data-tiles-total'));
  // The milestones benchmarks read, in the order they happen.
  const [opened, firstView, pyramid] = await Promise.all(
    ['data-ms-opened', 'data-ms-first-view', 'data-ms-pyramid'].map(async (a) => Number(await viewer.getAttribute(a))),
  );
  assert.ok(opened > 0 && firstView >= opened && pyramid >= opened, JSON.stringify({ opened, firstView, pyramid }));
});
