// Images the browser cannot tile say so, and with the store configured are tiled there: a JPEG XL
// (the browser's wasm leaves JPEG XL to tile-store) ends in data-error-code="server_only" with the
// message that it must be tiled on the server; with `store=/` the page offers "Tile on the server",
// which has tile-store fetch the image (`POST /pyramids`, --fetch-allow 127.0.0.1) and tile it, and
// the viewer then opens that pyramid from the store at the image's size with its colours. An image
// over the browser's limits (`limits`) gets the same offer; without a store there is none.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { QUAD, makeImages, makeOverLimit, quadImageColour, writePpm } from './images.mjs';
import { near, pixel, setup, toScreen, waitForSettled, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup(
    'server-only',
    (dir) => {
      const files = { ...makeImages(dir), overLimit: makeOverLimit(dir) };
      // Lossless, from the pixels quadrants.jpg is made of (libjxl, through vips).
      const ppm = join(dir, 'quadrants.ppm');
      writePpm(ppm, QUAD.width, QUAD.height, quadImageColour);
      execFileSync('vips', ['copy', ppm, `${join(dir, 'quadrants.jxl')}[lossless]`], { stdio: 'inherit' });
      return { ...files, jxl: 'quadrants.jxl' };
    },
    { serveArgs: ['--fetch-allow', '127.0.0.1'] },
  );
});
after(async () => t?.close());

test('a JPEG XL without a store: server_only, and no offer', async () => {
  await t.open({ src: `/e2e/${t.files.jxl}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'error');
  assert.equal(attrs['data-error-code'], 'server_only', attrs['data-error']);
  assert.match(attrs['data-error'], /JPEG XL images are decoded only on the server/);
  assert.equal(await t.page.getByTestId('tile-on-server').count(), 0);
});

test('over the browser limits with a store: the offer is shown', async () => {
  await t.open({ src: `/e2e/${t.files.overLimit}`, store: '/' });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-error-code'], 'limits', attrs['data-error']);
  assert.equal(await t.page.getByTestId('tile-on-server').innerText(), 'Tile on the server');
});

test('a JPEG XL with a store: tiled on the server, then opened from the store', async () => {
  await t.open({ src: `/e2e/${t.files.jxl}`, store: '/' });
  const failed = await waitForState(t.page, ['ready', 'error']);
  assert.equal(failed['data-error-code'], 'server_only', failed['data-error']);
  const posted = t.page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/pyramids');
  await t.page.getByTestId('tile-on-server').click();
  const job = await (await posted).json();
  assert.match(job.id, /^[0-9a-f]{64}$/);

  // Until the viewer shows the pyramid, or the offer says the server failed.
  await t.page.waitForFunction(
    () =>
      document.querySelector('[data-testid="viewer"]')?.getAttribute('data-state') === 'ready' ||
      document.querySelector('[data-testid="server-tiling"]')?.getAttribute('data-server-tiling') === 'failed',
    null,
    { timeout: 120_000, polling: 100 },
  );
  const offer = t.page.getByTestId('server-tiling');
  assert.equal(await offer.count(), 0, (await offer.count()) ? await offer.innerText() : '');
  const attrs = await waitForState(t.page, ['ready']);
  assert.equal(attrs['data-source'], 'store');
  assert.equal(attrs['data-pyramid-id'], job.id);
  assert.equal(Number(attrs['data-width']), QUAD.width);
  assert.equal(Number(attrs['data-height']), QUAD.height);

  // The pixels are the image's: each quadrant's colour, and the marker, where they are drawn.
  await waitForSettled(t.page);
  const box = await t.page.getByTestId('viewer').boundingBox();
  const shot = await t.shot('jxl-from-store');
  for (const [x, y] of [
    [500, 375],
    [1500, 375],
    [500, 1125],
    [1500, 1125],
    [850, 600],
  ]) {
    const at = toScreen(box, QUAD, 1, x, y);
    const got = pixel(shot.png, at.x, at.y);
    assert.ok(near(got, quadImageColour(x, y)), `image (${x}, ${y}): got ${got}, want ${quadImageColour(x, y)}; see ${shot.path}`);
  }
});
