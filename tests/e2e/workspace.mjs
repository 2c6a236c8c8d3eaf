// Set-up shared by the inspection workspace's tests: the standard test images with the damage layer,
// and opening the quadrants image with it until both are drawn.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { damageLayer, makeImages } from './images.mjs';
import { setup, waitForSettled, waitForState } from './harness.mjs';

/**
 * `setup(name)` with the test images and `damage.json` (the damage layer) served under `/e2e/`;
 * `more(dir)` writes further files and returns their names, merged into `files`.
 */
export function setupWorkspace(name, more = () => ({})) {
  return setup(name, (dir) => {
    const files = makeImages(dir);
    writeFileSync(join(dir, 'damage.json'), JSON.stringify(damageLayer()));
    return { ...files, damage: 'damage.json', ...more(dir) };
  });
}

/**
 * Opens the quadrants image with the damage layer (and `params`), waits until it is ready, its
 * features drawn and the view still; returns the viewer's box.
 */
export async function openQuadrants(t, params = {}) {
  await t.open({ src: `/e2e/${t.files.quadrants}`, vectorSrc: `/e2e/${t.files.damage}`, ...params });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await t.page.locator('[data-testid="vector-feature"]').first().waitFor();
  await waitForSettled(t.page);
  return t.page.getByTestId('viewer').boundingBox();
}
