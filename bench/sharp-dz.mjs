#!/usr/bin/env node
// sharp's Deep Zoom tiler, as the benchmark runs it: `node bench/sharp-dz.mjs IMAGE OUT_PREFIX [jpeg|pngN]`.
// Writes OUT_PREFIX.dzi and OUT_PREFIX_files/ with vips dzsave's geometry (254, overlap 1), JPEG Q75
// like vips and Tessera, or PNG (zlib level N, default 6) for images with alpha as Tessera picks.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const sharp = require('sharp');

const [image, out, format = 'jpeg'] = process.argv.slice(2);
if (!image || !out) {
  console.error('usage: sharp-dz.mjs IMAGE OUT_PREFIX [jpeg|pngN]');
  process.exit(2);
}
// The tile format first: a format set after `.tile()` replaces the Deep Zoom output.
const input = sharp(image, { limitInputPixels: false });
const png = /^png(\d)?$/.exec(format);
const formatted = png ? input.png({ compressionLevel: png[1] === undefined ? 6 : Number(png[1]) }) : input.jpeg({ quality: 75 });
await formatted.tile({ size: 254, overlap: 1, layout: 'dz' }).toFile(`${out}.dz`);
