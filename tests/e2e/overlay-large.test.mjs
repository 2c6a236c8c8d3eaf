// The damage layer is placed from the image's own size, whatever is drawn beneath it: on the shipped
// sample (EXIF orientation 6, shown first as a preview) and on large JPEGs tiled in the browser (with
// their preview) and reopened from the store. Every feature is checked against where the image pixels
// it names appear on screen, at the home view, zoomed in and after a resize; the damage list's zoom
// lands on the feature.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LARGE, LARGE_LANDSCAPE, makeLargeLandscape, makeLargeSideways, quadrantColour, wholeImageLayer } from './images.mjs';
import {
  assertBoxNear,
  holdRequest,
  STORE_CHECK,
  moveView,
  near,
  pixel,
  resizeWindow,
  SAMPLES,
  screenBoxOfFeature,
  setup,
  toScreen,
  toScreenBox,
  waitForAttribute,
  waitForSettled,
  waitForState,
} from './harness.mjs';

const SAMPLE = { width: 4000, height: 3000 };
/** The sample's rust stains are discs of this colour, 45 px in radius, centred on their points. */
const RUST = [140, 82, 40];

let t;
before(async () => {
  t = await setup('overlay-large', (dir) => {
    const large = makeLargeSideways(dir);
    const landscape = makeLargeLandscape(dir);
    writeFileSync(join(dir, 'large.json'), JSON.stringify(wholeImageLayer(LARGE)));
    writeFileSync(join(dir, 'landscape.json'), JSON.stringify(wholeImageLayer(LARGE_LANDSCAPE)));
    return { large, landscape, largeLayer: 'large.json', landscapeLayer: 'landscape.json' };
  });
});
after(async () => t?.close());

/** The image-pixel box of a GeoJSON geometry, `[x0, y0, x1, y1]`. */
function geometryBox(geometry) {
  const points = [];
  const walk = (c) => (typeof c[0] === 'number' ? points.push(c) : c.forEach(walk));
  walk(geometry.coordinates);
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

const centre = (b) => ({ x: b.x + b.width / 2, y: b.y + b.height / 2 });

/**
 * Every feature of `layer` is drawn where `toScreen` puts its image pixels in the `image`-sized
 * picture at `zoom` about the centre of the home view: points by their centre, other shapes by their
 * box, within 2 screen pixels.
 */
async function assertFeaturesPlaced(layer, image, zoom, what) {
  const box = await t.page.getByTestId('viewer').boundingBox();
  for (const [index, feature] of layer.features.entries()) {
    const want = toScreenBox(box, image, zoom, geometryBox(feature.geometry));
    const got = await screenBoxOfFeature(t.page, index);
    const name = `${what}: feature ${index} (${feature.properties.label})`;
    if (feature.geometry.type === 'Point') {
      const c = centre(got);
      assert.ok(
        Math.abs(c.x - want.x) <= 2 && Math.abs(c.y - want.y) <= 2,
        `${name}: at (${c.x.toFixed(1)}, ${c.y.toFixed(1)}), want (${want.x.toFixed(1)}, ${want.y.toFixed(1)})`,
      );
    } else {
      assertBoxNear(got, want, name);
    }
  }
}

/** A screenshot of the viewer with the damage layer hidden: the image's own pixels. */
async function imageShot(label) {
  await t.page
    .addStyleTag({ content: '.vector-overlay { visibility: hidden; }' })
    .then((h) => h.evaluate((el) => el.setAttribute('id', 'hide-overlay')));
  try {
    return await t.shot(label);
  } finally {
    await t.page.evaluate(() => document.getElementById('hide-overlay')?.remove());
  }
}

/**
 * Opens `params`, waits for the first full view, and returns the viewer's attributes. With
 * `previewFirst` (and a store in `params`), the store check (the page's, by the image's digest), made before anything is decoded,
 * is held until the preview is on screen, so the layer is first placed over the preview for certain.
 */
async function openReady(params, { previewFirst = null } = {}) {
  const check = previewFirst ? await holdRequest(t.page, STORE_CHECK) : null;
  await t.open(params);
  if (check) {
    await check.requested;
    const early = await waitForAttribute(t.page, 'data-ms-preview');
    assert.equal(early['data-state'], 'loading', `the tiles were drawn before any preview: ${early['data-error'] ?? ''}`);
    await t.page.locator('[data-testid="vector-feature"]').first().waitFor();
    await t.page.waitForFunction(() => document.querySelector('[data-testid="viewer"]')?.getAttribute('data-animating') === 'false');
    await previewFirst();
    await check.release();
  }
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  await t.page.locator('[data-testid="vector-feature"]').first().waitFor();
  await waitForSettled(t.page);
  return attrs;
}

test('the shipped sample: its detections lie on the cracks, the spalling and the rust stains', async () => {
  await resizeWindow(t.page, { width: 1280, height: 800 });
  const layer = JSON.parse(readFileSync(join(SAMPLES, 'bridge-deck.json'), 'utf8'));
  const attrs = await openReady({ src: '/samples/bridge-deck.jpg', vectorSrc: '/samples/bridge-deck.json' });
  assert.equal(Number(attrs['data-width']), SAMPLE.width);
  assert.equal(Number(attrs['data-height']), SAMPLE.height);
  // Usually the preview comes first and the layer is placed over it; on a busy machine the tiles may
  // win. Either way the layer must lie on the image (the large images below always preview first).
  console.log(`sample: ${attrs['data-ms-preview'] !== undefined ? 'previewed first' : 'tiles came first'}`);

  await assertFeaturesPlaced(layer, SAMPLE, 1, 'home');
  // The rust stains' points are on rust-coloured pixels of the image itself.
  const rust = layer.features.filter((f) => f.properties.class === 'corrosion');
  assert.equal(rust.length, 2);
  const box = await t.page.getByTestId('viewer').boundingBox();
  const home = await imageShot('sample-home');
  for (const f of rust) {
    const at = toScreen(box, SAMPLE, 1, ...f.geometry.coordinates);
    assert.ok(near(pixel(home.png, at.x, at.y), RUST, 30), `${f.properties.label} on rust; see ${home.path}`);
  }

  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  await assertFeaturesPlaced(layer, SAMPLE, 2, 'zoom 2');

  // A smaller window, then the whole image again: still on the same pixels.
  await resizeWindow(t.page, { width: 1000, height: 720 });
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Whole image' }).click());
  await assertFeaturesPlaced(layer, SAMPLE, 1, 'resized');

  // The damage list's zoom centres the rust stain, over its pixels.
  const index = layer.features.indexOf(rust[0]);
  await moveView(t.page, () => t.page.getByTestId('damage-list').locator(`button[data-index="${index}"]`).click());
  const viewerBox = await t.page.getByTestId('viewer').boundingBox();
  const c = centre(await screenBoxOfFeature(t.page, index));
  assert.ok(
    Math.abs(c.x - viewerBox.width / 2) < 3 && Math.abs(c.y - viewerBox.height / 2) < 3,
    `rust stain centred: ${JSON.stringify(c)}`,
  );
  const zoomed = await imageShot('sample-feature');
  assert.ok(near(pixel(zoomed.png, c.x, c.y), RUST, 30), `the list zoomed onto the rust stain; see ${zoomed.path}`);
  await resizeWindow(t.page, { width: 1280, height: 800 });
});

/** A whole-image rectangle covers exactly the image, and the quadrant points sit on their quadrants. */
async function assertWholeImage(image, layerFile, what) {
  const layer = JSON.parse(readFileSync(join(t.imagesDir, layerFile), 'utf8'));
  await assertFeaturesPlaced(layer, image, 1, `${what} home`);
  const box = await t.page.getByTestId('viewer').boundingBox();
  const shot = await imageShot(`${what}-home`);
  for (const f of layer.features.filter((g) => g.geometry.type === 'Point')) {
    const [x, y] = f.geometry.coordinates;
    const at = toScreen(box, image, 1, x, y);
    assert.ok(
      near(pixel(shot.png, at.x, at.y), quadrantColour(x, y, image.width, image.height)),
      `${what}: ${f.properties.label}; see ${shot.path}`,
    );
  }
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Zoom in' }).click());
  await assertFeaturesPlaced(layer, image, 2, `${what} zoom 2`);
  await resizeWindow(t.page, { width: 960, height: 700 });
  await moveView(t.page, () => t.page.getByRole('button', { name: 'Whole image' }).click());
  await t.shot(`${what}-resized`);
  await assertFeaturesPlaced(layer, image, 1, `${what} resized`);
  await resizeWindow(t.page, { width: 1280, height: 800 });
}

test('a large landscape JPEG: the whole-image rectangle covers the image exactly', async () => {
  const attrs = await openReady({ src: `/e2e/${t.files.landscape}`, vectorSrc: `/e2e/${t.files.landscapeLayer}` });
  console.log(`landscape: ${attrs['data-ms-preview'] !== undefined ? 'previewed first' : 'tiles came first'}`);
  await assertWholeImage(LARGE_LANDSCAPE, t.files.landscapeLayer, 'landscape');
});

test('a large JPEG with EXIF orientation 6, tiled in the browser and then reopened from the store', async () => {
  const params = { src: `/e2e/${t.files.large}`, vectorSrc: `/e2e/${t.files.largeLayer}`, store: '/' };
  const layer = JSON.parse(readFileSync(join(t.imagesDir, t.files.largeLayer), 'utf8'));
  const tiled = await openReady(params, { previewFirst: () => assertFeaturesPlaced(layer, LARGE, 1, 'over the preview') });
  assert.equal(tiled['data-source'], 'worker');
  assert.ok(tiled['data-ms-preview'] !== undefined, 'the image was previewed first');
  await assertWholeImage(LARGE, t.files.largeLayer, 'rotated-browser');
  await t.page.waitForFunction(() => document.querySelector('[data-testid="viewer"]')?.getAttribute('data-upload') === 'saved', null, {
    timeout: 180_000,
  });

  const reused = await openReady(params);
  assert.equal(reused['data-source'], 'store');
  assert.equal(reused['data-upload'], 'reused');
  await assertWholeImage(LARGE, t.files.largeLayer, 'rotated-store');
});
