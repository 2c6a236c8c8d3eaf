// The vector layer lands on the right pixels, stays aligned when zoomed, and the damage list
// zooms to a feature.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { damageLayer, makeImages, QUAD, SIDE_MARKER } from './images.mjs';
import {
  assertBoxNear,
  moveView,
  near,
  pixel,
  screenBoxOfFeature,
  setup,
  toScreen,
  toScreenBox,
  waitForSettled,
  waitForState,
} from './harness.mjs';

const DAMAGE = [255, 45, 85];

let t;
before(async () => {
  t = await setup('overlay', (dir) => {
    const files = makeImages(dir);
    writeFileSync(join(dir, 'damage.json'), JSON.stringify(damageLayer()));
    return { ...files, damage: 'damage.json' };
  });
});
after(async () => t?.close());

const expectedBox = (box, zoom, rect) => toScreenBox(box, QUAD, zoom, rect);

const featureBox = (index) => screenBoxOfFeature(t.page, index);

test('the damage layer is aligned at every zoom and the list zooms to a feature', async () => {
  await t.open({ src: `/e2e/${t.files.quadrants}`, vectorSrc: `/e2e/${t.files.damage}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await t.page.locator('[data-testid="vector-feature"]').first().waitFor();
  await waitForSettled(t.page);
  const viewerBox = await t.page.getByTestId('viewer').boundingBox();

  const features = t.page.locator('[data-testid="vector-feature"]');
  assert.equal(await features.count(), 4);
  const labels = await t.page.locator('.vector-overlay text').allTextContents();
  assert.deepEqual(labels, ['Crack A · crack 93%', 'spalling 61%', 'Rust stain', 'Efflorescence · efflorescence 50%']);

  // The polygon (200,200)-(700,500) at the home view: its box, and its stroke on screen.
  const crack = [200, 200, 700, 500];
  const home = await t.shot('home');
  assertBoxNear(await featureBox(0), expectedBox(viewerBox, 1, crack), 'home');
  const edge = toScreen(viewerBox, QUAD, 1, 450, 200);
  assert.ok(near(pixel(home.png, edge.x, edge.y), DAMAGE, 40), `stroke on the polygon's top edge; see ${home.path}`);
  const inside = toScreen(viewerBox, QUAD, 1, 450, 350);
  assert.ok(near(pixel(home.png, inside.x, inside.y), [230, 30, 30], 45), 'the image shows through the fill');

  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  // The line (1200,300)-(1800,600) at 2×.
  assertBoxNear(await featureBox(1), expectedBox(viewerBox, 2, [1200, 300, 1800, 600]), 'zoom 2 line');
  assertBoxNear(await featureBox(0), expectedBox(viewerBox, 2, crack), 'zoom 2 polygon');
  await t.shot('zoom2');

  // The list: four entries; choosing the polygon fits it to the view.
  const items = t.page.getByTestId('damage-list').locator('li button');
  assert.equal(await items.count(), 4);
  await moveView(t.page, () => items.nth(0).click());
  const fitted = await featureBox(0);
  const centre = { x: fitted.x + fitted.width / 2, y: fitted.y + fitted.height / 2 };
  assert.ok(
    Math.abs(centre.x - viewerBox.width / 2) < 3 && Math.abs(centre.y - viewerBox.height / 2) < 3,
    `feature centred: ${JSON.stringify(centre)}`,
  );
  assert.ok(fitted.width > viewerBox.width * 0.5 || fitted.height > viewerBox.height * 0.5, 'feature fills much of the view');
  assert.equal(await t.page.locator('[data-testid="vector-feature"][data-index="0"]').getAttribute('class'), 'feature selected');
  const zoomedShot = await t.shot('feature');
  // Still aligned with the pixels: the white square beside the polygon lies where the polygon's
  // geometry says, measured through the polygon's on-screen scale.
  const scale = fitted.width / (crack[2] - crack[0]);
  const marker = { x: fitted.x + (SIDE_MARKER.x0 - crack[0]) * scale, y: fitted.y + (SIDE_MARKER.y0 - crack[1]) * scale };
  assert.ok(near(pixel(zoomedShot.png, marker.x + 4, marker.y + 4), SIDE_MARKER.colour), `marker inside corner; see ${zoomedShot.path}`);
  assert.ok(near(pixel(zoomedShot.png, marker.x - 4, marker.y + 4), [230, 30, 30]), 'left of the marker is red');
  assert.ok(near(pixel(zoomedShot.png, marker.x + 4, marker.y - 4), [230, 30, 30]), 'above the marker is red');
  // The selected polygon's stroke is drawn on its top edge.
  assert.ok(near(pixel(zoomedShot.png, fitted.x + fitted.width / 2, fitted.y), [255, 214, 10], 40), 'selected stroke');
});
