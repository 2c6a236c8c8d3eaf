// A generated quadrant image loads from a ?src= URL; the right colours appear at known screen
// points at the home view and 4× zoomed in.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeImages, MARKER, QUAD, quadImageColour } from './images.mjs';
import { moveView, near, pixel, setup, toScreen, waitForSettled, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup('colours', (dir) => makeImages(dir));
});
after(async () => t?.close());

/** Checks the colour at each image point against the quadrant it lies in. */
function checkColours(shot, box, zoom, points) {
  for (const [x, y] of points) {
    const at = toScreen(box, QUAD, zoom, x, y);
    const want = quadImageColour(x, y);
    const got = pixel(shot.png, at.x, at.y);
    assert.ok(
      near(got, want),
      `image (${x}, ${y}) at screen (${at.x.toFixed(0)}, ${at.y.toFixed(0)}) zoom ${zoom}: got ${got}, want ${want}; see ${shot.path}`,
    );
  }
}

test('quadrant colours at the home view and zoomed in', async () => {
  await t.open({ src: `/e2e/${t.files.quadrants}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(attrs['data-source'], 'worker');
  assert.equal(Number(attrs['data-width']), QUAD.width);
  assert.equal(Number(attrs['data-height']), QUAD.height);
  await waitForSettled(t.page);

  const box = await t.page.getByTestId('viewer').boundingBox();
  const home = await t.shot('home');
  assert.equal(home.png.width, Math.round(box.width));
  const half = { x: Math.floor(QUAD.width / 2), y: Math.floor(QUAD.height / 2) };
  checkColours(home, box, 1, [
    [500, 375],
    [1500, 375],
    [500, 1125],
    [1500, 1125],
    // Just either side of the quadrant borders: the geometry is right to a few pixels.
    [half.x - 20, 375],
    [half.x + 20, 375],
    [500, half.y - 20],
    [500, half.y + 20],
    // Near the corners: the edge tiles are there too.
    [15, 15],
    [QUAD.width - 15, QUAD.height - 15],
    // The 60-pixel marker, and either side of it.
    [850, 600],
    [800, 600],
    [900, 600],
  ]);

  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  const zoomed = await t.shot('zoom4');
  // At 4× the screen shows the middle of the image, at more than one screen pixel per image pixel
  // (so tiles of the full-resolution level).
  checkColours(zoomed, box, 4, [
    [half.x - 60, half.y - 60],
    [half.x + 60, half.y - 60],
    [half.x - 60, half.y + 60],
    [half.x + 60, half.y + 60],
    [half.x - 6, half.y - 40],
    [half.x + 6, half.y - 40],
    [half.x - 40, half.y - 6],
    [half.x - 40, half.y + 6],
    // The marker is now four times bigger and further from the centre: its middle and just
    // inside each edge, and just outside.
    [850, 600],
    [MARKER.x0 + 3, 600],
    [MARKER.x1 - 3, 600],
    [850, MARKER.y0 + 3],
    [850, MARKER.y1 - 3],
    [MARKER.x0 - 4, 600],
    [MARKER.x1 + 4, 600],
  ]);

  const done = await t.page.getByTestId('viewer').getAttribute('data-tiles-total');
  assert.ok(Number(done) > 10, 'a whole pyramid is planned');
});
