// Test images generated at test time: raw pixels written here, encoded by the real `vips`,
// EXIF written byte by byte so its values are known exactly.
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The four quadrant colours: top-left, top-right, bottom-left, bottom-right. */
export const QUADRANTS = {
  topLeft: [230, 30, 30],
  topRight: [30, 200, 30],
  bottomLeft: [30, 30, 230],
  bottomRight: [240, 220, 20],
};

/** Colour of oriented pixel (x, y) in a `width`×`height` quadrant image. */
export function quadrantColour(x, y, width, height) {
  const right = x >= Math.floor(width / 2);
  const bottom = y >= Math.floor(height / 2);
  return QUADRANTS[bottom ? (right ? 'bottomRight' : 'bottomLeft') : right ? 'topRight' : 'topLeft'];
}

/** Writes a binary PPM whose pixel (x, y) is `colour(x, y)`. */
export function writePpm(path, width, height, colour) {
  const header = Buffer.from(`P6\n${width} ${height}\n255\n`);
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = colour(x, y);
      const i = (y * width + x) * 3;
      pixels[i] = r;
      pixels[i + 1] = g;
      pixels[i + 2] = b;
    }
  }
  writeFileSync(path, Buffer.concat([header, pixels]));
}

function vips(...args) {
  execFileSync('vips', args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

// ---- EXIF ---------------------------------------------------------------------------------

const ASCII = 2,
  SHORT = 3,
  LONG = 4,
  RATIONAL = 5;
const TYPE_SIZE = { [ASCII]: 1, [SHORT]: 2, [LONG]: 4, [RATIONAL]: 8 };

const ascii = (tag, s) => ({ tag, type: ASCII, values: Buffer.from(`${s}\0`, 'latin1') });
const short = (tag, ...v) => ({ tag, type: SHORT, values: v });
const long = (tag, ...v) => ({ tag, type: LONG, values: v });
const rational = (tag, ...v) => ({ tag, type: RATIONAL, values: v }); // v: [num, den] pairs

function valueBytes(e) {
  if (e.type === ASCII) return e.values;
  const size = TYPE_SIZE[e.type];
  const b = Buffer.alloc(size * e.values.length);
  e.values.forEach((v, i) => {
    if (e.type === SHORT) b.writeUInt16LE(v, i * 2);
    else if (e.type === LONG) b.writeUInt32LE(v, i * 4);
    else {
      b.writeUInt32LE(v[0], i * 8);
      b.writeUInt32LE(v[1], i * 8 + 4);
    }
  });
  return b;
}

function ifdSize(entries) {
  let data = 0;
  for (const e of entries) {
    const n = valueBytes(e).length;
    if (n > 4) data += n + (n % 2);
  }
  return 2 + entries.length * 12 + 4 + data;
}

/** One IFD at `offset` (from the TIFF header), its out-of-line values right after it. */
function writeIfd(entries, offset) {
  const sorted = [...entries].sort((a, b) => a.tag - b.tag);
  const out = Buffer.alloc(ifdSize(sorted));
  out.writeUInt16LE(sorted.length, 0);
  let data = 2 + sorted.length * 12 + 4;
  sorted.forEach((e, i) => {
    const at = 2 + i * 12;
    const bytes = valueBytes(e);
    out.writeUInt16LE(e.tag, at);
    out.writeUInt16LE(e.type, at + 2);
    out.writeUInt32LE(e.type === ASCII ? bytes.length : e.values.length, at + 4);
    if (bytes.length <= 4) bytes.copy(out, at + 8);
    else {
      out.writeUInt32LE(offset + data, at + 8);
      bytes.copy(out, data);
      data += bytes.length + (bytes.length % 2);
    }
  });
  out.writeUInt32LE(0, 2 + sorted.length * 12); // no next IFD
  return out;
}

/** The EXIF the metadata test expects to see. */
export const EXIF = {
  make: 'Tessera',
  model: 'InspectionCam 9',
  dateTimeOriginal: '2024:05:17 10:30:00',
  focalLength: 35,
  focalLengthIn35mmFilm: 52,
  gpsLatitude: 47.5, // 47° 30' 0" N
  gpsLongitude: 8.25, // 8° 15' 0" E
};

/** An APP1 EXIF segment: orientation, camera, date, focal lengths, pixel size and GPS. */
export function exifSegment(orientation, width, height) {
  const exifIfd = [
    ascii(0x9003, EXIF.dateTimeOriginal),
    rational(0x920a, [EXIF.focalLength, 1]),
    short(0xa405, EXIF.focalLengthIn35mmFilm),
    long(0xa002, width),
    long(0xa003, height),
  ];
  const gpsIfd = [
    ascii(0x0001, 'N'),
    rational(0x0002, [47, 1], [30, 1], [0, 1]),
    ascii(0x0003, 'E'),
    rational(0x0004, [8, 1], [15, 1], [0, 1]),
  ];
  const ifd0 = (exifAt, gpsAt) => [
    ascii(0x010f, EXIF.make),
    ascii(0x0110, EXIF.model),
    short(0x0112, orientation),
    long(0x8769, exifAt),
    long(0x8825, gpsAt),
  ];
  const ifd0At = 8;
  const exifAt = ifd0At + ifdSize(ifd0(0, 0));
  const gpsAt = exifAt + ifdSize(exifIfd);
  const tiff = Buffer.concat([
    Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00]),
    writeIfd(ifd0(exifAt, gpsAt), ifd0At),
    writeIfd(exifIfd, exifAt),
    writeIfd(gpsIfd, gpsAt),
  ]);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

export function withExif(jpeg, segment) {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG');
  return Buffer.concat([jpeg.subarray(0, 2), segment, jpeg.subarray(2)]);
}

// ---- the images ---------------------------------------------------------------------------

/** A white square on the quadrant image, small enough that only a right zoom puts it in place. */
export const MARKER = { x0: 820, y0: 570, x1: 880, y1: 630, colour: [255, 255, 255] };

/** A second white square, beside the overlay test's polygon, in view when that is zoomed to. */
export const SIDE_MARKER = { x0: 740, y0: 400, x1: 790, y1: 450, colour: [255, 255, 255] };

/** Colour of pixel (x, y) of the quadrant test image. */
export function quadImageColour(x, y) {
  for (const m of [MARKER, SIDE_MARKER]) {
    if (x >= m.x0 && x < m.x1 && y >= m.y0 && y < m.y1) return m.colour;
  }
  return quadrantColour(x, y, QUAD.width, QUAD.height);
}

/** A quadrant JPEG of odd size, so levels and edge tiles round. */
export const QUAD = { width: 2001, height: 1499 };
/** The oriented (displayed) size of the EXIF orientation 6 image. */
export const ORIENTED = { width: 1200, height: 800 };

/** Writes every test image into `dir`; returns their file names. */
export function makeImages(dir) {
  const ppm = join(dir, 'tmp.ppm');
  writePpm(ppm, QUAD.width, QUAD.height, quadImageColour);
  vips('copy', ppm, `${join(dir, 'quadrants.jpg')}[Q=95,strip]`);

  // Stored sideways: turning the stored pixels 90° clockwise (orientation 6) gives the quadrants.
  const { width: W, height: H } = ORIENTED;
  writePpm(ppm, H, W, (sx, sy) => quadrantColour(W - 1 - sy, sx, W, H));
  const sideways = join(dir, 'sideways.jpg');
  vips('copy', ppm, `${sideways}[Q=95,strip]`);
  writeFileSync(join(dir, 'oriented6.jpg'), withExif(readFileSync(sideways), exifSegment(6, H, W)));

  writeFileSync(join(dir, 'not-an-image.jpg'), '<!doctype html><title>Not found</title><p>This is a web page.</p>\n');
  return { quadrants: 'quadrants.jpg', oriented: 'oriented6.jpg', notImage: 'not-an-image.jpg' };
}

/** A PNG with alpha: the left half opaque red, the right half fully transparent. */
export const ALPHA = { width: 800, height: 600, colour: [230, 30, 30] };

export function makeAlphaPng(dir) {
  const { width, height, colour } = ALPHA;
  const rgb = join(dir, 'alpha-rgb.ppm');
  writePpm(rgb, width, height, () => colour);
  const alpha = join(dir, 'alpha-a.pgm');
  const a = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width / 2; x++) a[y * width + x] = 255;
  writeFileSync(alpha, Buffer.concat([Buffer.from(`P5\n${width} ${height}\n255\n`), a]));
  vips('bandjoin', `${rgb} ${alpha}`, join(dir, 'alpha.png'));
  return 'alpha.png';
}

/** A 25000×25000 JPEG: 625 megapixels, over the default 600 MP limit, yet only ~ a few MB. */
export function makeOverLimit(dir) {
  vips('black', `${join(dir, 'over-limit.jpg')}[Q=50,strip]`, '25000', '25000');
  return 'over-limit.jpg';
}

/** A damage layer over the quadrant image, one feature of each geometry type, in image pixels. */
export function damageLayer() {
  return {
    type: 'FeatureCollection',
    features: [
      {
        type: 'Feature',
        id: 'crack-1',
        properties: { label: 'Crack A', class: 'crack', confidence: 0.93 },
        geometry: {
          type: 'Polygon',
          coordinates: [
            [
              [200, 200],
              [700, 200],
              [700, 500],
              [200, 500],
              [200, 200],
            ],
          ],
        },
      },
      {
        type: 'Feature',
        properties: { class: 'spalling', confidence: 0.61 },
        geometry: {
          type: 'LineString',
          coordinates: [
            [1200, 300],
            [1800, 600],
          ],
        },
      },
      {
        type: 'Feature',
        properties: { label: 'Rust stain' },
        geometry: { type: 'Point', coordinates: [1500, 1100] },
      },
      {
        type: 'Feature',
        properties: { label: 'Efflorescence', class: 'efflorescence', confidence: 0.5 },
        geometry: {
          type: 'MultiPolygon',
          coordinates: [
            [
              [
                [300, 900],
                [500, 900],
                [500, 1100],
                [300, 1100],
                [300, 900],
              ],
            ],
            [
              [
                [600, 1200],
                [700, 1200],
                [700, 1300],
                [600, 1300],
                [600, 1200],
              ],
            ],
          ],
        },
      },
    ],
  };
}

/** The upright size of the large sideways JPEG: big enough for a preview (longer side ≥ 2560). */
export const LARGE = { width: 8000, height: 5000 };

/** Quadrants of LARGE stored sideways with EXIF orientation 6, so the preview must be turned too. */
export function makeLargeSideways(dir) {
  const { width: W, height: H } = LARGE;
  const ppm = join(dir, 'large.ppm');
  writePpm(ppm, H, W, (sx, sy) => quadrantColour(W - 1 - sy, sx, W, H));
  const sideways = join(dir, 'large-sideways.jpg');
  vips('copy', ppm, `${sideways}[Q=90,strip]`);
  writeFileSync(join(dir, 'large6.jpg'), withExif(readFileSync(sideways), exifSegment(6, H, W)));
  return 'large6.jpg';
}

/** An upright landscape JPEG with no EXIF, large enough for a preview at 1/4 DCT scale. */
export const LARGE_LANDSCAPE = { width: 6028, height: 3391 };

/** Quadrants of LARGE_LANDSCAPE, stored upright. */
export function makeLargeLandscape(dir) {
  const { width: W, height: H } = LARGE_LANDSCAPE;
  const ppm = join(dir, 'landscape.ppm');
  writePpm(ppm, W, H, (x, y) => quadrantColour(x, y, W, H));
  vips('copy', ppm, `${join(dir, 'landscape.jpg')}[Q=90,strip]`);
  return 'landscape.jpg';
}

/** A damage layer for a `width`×`height` image: a rectangle over the whole image and a point at each quadrant's centre. */
export function wholeImageLayer({ width, height }) {
  const quarter = (x, y) => ({
    type: 'Feature',
    properties: { label: `Quadrant ${x},${y}` },
    geometry: { type: 'Point', coordinates: [(x * width) / 4, (y * height) / 4] },
  });
  return {
    type: 'FeatureCollection',
    features: [
      {
        type: 'Feature',
        properties: { label: 'Image outline' },
        geometry: {
          type: 'Polygon',
          coordinates: [
            [
              [0, 0],
              [width, 0],
              [width, height],
              [0, height],
              [0, 0],
            ],
          ],
        },
      },
      quarter(1, 1),
      quarter(3, 1),
      quarter(1, 3),
      quarter(3, 3),
    ],
  };
}

/**
 * A layer of `rows` × `cols` short horizontal lines over a `width` × `height` image, one per cell
 * (a crack survey's worth of detections): line (r, c) runs across the middle of its cell, leaving a
 * quarter of the cell free at each end. Classes alternate between `crack` and `joint`.
 */
export function gridLayer(rows, cols, width, height) {
  const [cw, ch] = [width / cols, height / rows];
  const features = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const y = (r + 0.5) * ch;
      features.push({
        type: 'Feature',
        properties: { class: (r + c) % 2 ? 'joint' : 'crack', confidence: 0.5 + ((r * cols + c) % 50) / 100 },
        geometry: {
          type: 'LineString',
          coordinates: [
            [(c + 0.25) * cw, y],
            [(c + 0.75) * cw, y],
          ],
        },
      });
    }
  }
  return { type: 'FeatureCollection', features };
}

/** The upright size of the photo-like sideways JPEG of the first-view tests (longer side ≥ 2560: previewed). */
export const WAVES = { width: 4000, height: 2600 };

/**
 * Colour of upright pixel (x, y) of a `width`×`height` waves image: red grows left to right, green
 * top to bottom (so a turned or mirrored picture differs everywhere), and blue is a diagonal wave
 * 140 pixels long (about 40 screen pixels at the home view), so a picture off by a few screen
 * pixels differs too.
 */
export function wavesColour(x, y, width, height) {
  return [
    Math.round(40 + (180 * x) / width),
    Math.round(40 + (180 * y) / height),
    Math.round(128 + 90 * Math.sin((2 * Math.PI * (x + y)) / 140)),
  ];
}

/** WAVES stored sideways with EXIF orientation 6 (turned 90° clockwise to be upright); another `quality` makes other bytes (another pyramid). */
export function makeWavesSideways(dir, name = 'waves6.jpg', quality = 92) {
  const { width: W, height: H } = WAVES;
  const ppm = join(dir, 'waves.ppm');
  writePpm(ppm, H, W, (sx, sy) => wavesColour(W - 1 - sy, sx, W, H));
  const sideways = join(dir, 'waves-sideways.jpg');
  vips('copy', ppm, `${sideways}[Q=${quality},strip]`);
  writeFileSync(join(dir, name), withExif(readFileSync(sideways), exifSegment(6, H, W)));
  return name;
}

/** WAVES upright as a PNG: tiler-wasm makes no preview of it, the browser's decoder does. */
export function makeWavesPng(dir) {
  const { width: W, height: H } = WAVES;
  const ppm = join(dir, 'waves-png.ppm');
  writePpm(ppm, W, H, (x, y) => wavesColour(x, y, W, H));
  vips('copy', ppm, join(dir, 'waves.png'));
  return 'waves.png';
}

/** WAVES upright as a CMYK JPEG carrying libvips' CMYK profile: only a colour-managed decode gets its colours right. */
export function makeWavesCmyk(dir) {
  const { width: W, height: H } = WAVES;
  const ppm = join(dir, 'waves-rgb.ppm');
  writePpm(ppm, W, H, (x, y) => wavesColour(x, y, W, H));
  vips('icc_transform', ppm, `${join(dir, 'waves-cmyk.jpg')}[Q=92]`, 'cmyk', '--input-profile', 'srgb');
  return 'waves-cmyk.jpg';
}
