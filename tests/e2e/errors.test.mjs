// Each failure ends in data-state="error" with a message a person can act on, and the next image
// (in the same page) still loads.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeImages, makeOverLimit, QUAD } from './images.mjs';
import { ARTIFACTS, setup, waitForState } from './harness.mjs';

let t;
before(async () => {
  t = await setup('errors', (dir) => ({ ...makeImages(dir), overLimit: makeOverLimit(dir) }));
});
after(async () => t?.close());

/** Opens `src`, expects the error, then loads the quadrant image through the URL box. */
async function expectErrorThenRecover(label, src, code, message) {
  await t.open({ src });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  await t.page.screenshot({ path: join(ARTIFACTS, `errors-${label}.png`) });
  assert.equal(attrs['data-state'], 'error', `${label}: expected an error`);
  assert.equal(attrs['data-error-code'], code, attrs['data-error']);
  assert.match(attrs['data-error'], message);
  // The same message is shown to the person.
  assert.match(await t.page.getByRole('alert').first().innerText(), message);

  await t.page.getByLabel('Image URL').fill(`/e2e/${t.files.quadrants}`);
  await t.page.getByRole('button', { name: 'Open', exact: true }).click();
  await waitForState(t.page, ['loading', 'ready']);
  const next = await waitForState(t.page, ['ready', 'error']);
  assert.equal(next['data-state'], 'ready', `${label}: the next image must load: ${next['data-error']}`);
  assert.equal(Number(next['data-width']), QUAD.width);
}

// From an image host that allows CORS, as an S3 bucket does: tile-store itself answers unknown
// paths outside its API with the web app (a single-page-app fallback), never a 404.
test('404', () =>
  expectErrorThenRecover(
    '404',
    `${t.withCors.url}/missing.jpg`,
    'http',
    /missing\.jpg: no such image \(HTTP 404 Not Found\)\. Check the address/,
  ));

test('a cross-origin image with CORS headers loads', async () => {
  await t.open({ src: `${t.withCors.url}/${t.files.quadrants}` });
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(Number(attrs['data-width']), QUAD.width);
});

test('not an image', () =>
  expectErrorThenRecover(
    'not-image',
    `/e2e/${t.files.notImage}`,
    'unknown_format',
    /not an image Tessera can read \(JPEG, PNG, WebP, TIFF or AVIF\)/,
  ));

test('cross-origin URL without CORS headers', () =>
  expectErrorThenRecover('cors', `${t.foreign.url}/${t.files.quadrants}`, 'fetch_blocked', /did not allow this page.*CORS/));

test('over the pixel limit', () =>
  expectErrorThenRecover(
    'over-limit',
    `/e2e/${t.files.overLimit}`,
    'limits',
    /image too large: 25000×25000 .*exceeds the limit.*cannot be tiled in the browser/,
  ));

test('a picked file loads too', async () => {
  await t.open({});
  assert.equal((await waitForState(t.page, ['idle']))['data-state'], 'idle');
  await t.page.getByTestId('file-input').setInputFiles(join(t.imagesDir, t.files.oriented));
  const attrs = await waitForState(t.page, ['ready', 'error']);
  assert.equal(attrs['data-state'], 'ready', attrs['data-error']);
  assert.equal(Number(attrs['data-width']), 1200);
});
