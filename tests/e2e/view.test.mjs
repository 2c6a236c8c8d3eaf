// A shared link reopens the same view: the view's text form on fixed vectors, then in Chromium the
// address the page keeps, reloaded, shows the same image pixels at the same screen places with the
// same feature chosen.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertBoxNear, moveView, screenBoxOfFeature, waitForSettled, waitForState } from './harness.mjs';
import { openQuadrants, setupWorkspace } from './workspace.mjs';
import { formatView, parseView } from '../../www/react/dist/view.js';

test('views as text, on fixed vectors', () => {
  assert.equal(formatView({ x: 1500.004, y: 450.5, zoom: 2.3456789, feature: 1 }), '1500,450.5,2.34568,1');
  assert.equal(formatView({ x: -3, y: 0, zoom: 1, feature: null }), '-3,0,1');
  assert.deepEqual(parseView('1500,450.5,2.34568,1'), { x: 1500, y: 450.5, zoom: 2.34568, feature: 1 });
  assert.deepEqual(parseView('-3,0,1'), { x: -3, y: 0, zoom: 1, feature: null });
  for (const bad of [
    null,
    '',
    '1,2',
    '1,2,0',
    '1,2,-1',
    '1,2,3,4,5',
    'a,2,3',
    '1,2,3,-1',
    '1,2,3,1.5',
    '1,2,Infinity',
    `1,2,3,${'9'.repeat(9)}`,
    '1'.repeat(101),
  ]) {
    assert.equal(parseView(bad), null, String(bad));
  }
});

let t;
before(async () => {
  t = await setupWorkspace('view');
});
after(async () => t?.close());

test('the address reopens the same view with the same feature chosen', async () => {
  await openQuadrants(t);

  // Choose the line: the view zooms to it, and the address follows.
  const list = t.page.getByTestId('damage-list').locator('li button');
  await moveView(t.page, () => list.nth(1).click());
  await t.page.waitForFunction(() => /view=[^&]*,1$/.test(decodeURIComponent(location.hash)));
  const shared = await t.page.evaluate(() => location.href);
  const line = await screenBoxOfFeature(t.page, 1);
  const polygon = await screenBoxOfFeature(t.page, 0);

  // The home view first, so a link that restored nothing would be seen.
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Whole image' }).click());
  await t.page.goto('about:blank');
  await t.page.goto(shared);
  const reopened = await waitForState(t.page, ['ready', 'error']);
  assert.equal(reopened['data-state'], 'ready', reopened['data-error']);
  await t.page.locator('[data-testid="vector-feature"]').first().waitFor();
  await waitForSettled(t.page);
  assertBoxNear(await screenBoxOfFeature(t.page, 1), line, 'the line, reopened');
  assertBoxNear(await screenBoxOfFeature(t.page, 0), polygon, 'the polygon, reopened');
  assert.equal(await list.nth(1).getAttribute('class'), 'selected');
  assert.equal(await t.page.locator('[data-testid="vector-feature"][data-index="1"]').getAttribute('class'), 'feature selected');
});
