// An image stored sideways with EXIF orientation 6 appears upright, at its oriented size.
import { after, before, test } from 'node:test';
import { makeImages } from './images.mjs';
import { assertOrientedUpright, setup } from './harness.mjs';

let t;
before(async () => {
  t = await setup('orientation', (dir) => makeImages(dir));
});
after(async () => t?.close());

test('EXIF orientation 6 is shown upright', () => assertOrientedUpright(t));
