/**
 * Measurement in the oriented image's pixel grid (the vector layer's coordinates): path lengths and
 * polygon areas in pixels, turned into real units by a scale, and the round lengths of a scale bar.
 * Nothing here touches the DOM.
 */
import type { Geometry, Position } from './geojson.js';

/** The real size of one image pixel, e.g. `{ value: 0.2, unit: 'mm' }`. */
export interface Scale {
  /** Real units per image pixel; finite and positive. */
  value: number;
  /** The unit's name as shown (`mm`, `cm`, `m`, `in`…). */
  unit: string;
}

/** What a geometry measures, in image pixels: the length of its lines (or polygon outlines) and its area. */
export interface Measures {
  /** Total length of the lines, or the perimeter of the polygons (outer rings); null for points. */
  length: number | null;
  /** Area of the polygons (holes subtracted); null for points and lines. */
  area: number | null;
}

/** The longest unit name a scale may have (units are shown, never parsed further). */
const MAX_UNIT_LENGTH = 16;

const isScaleValue = (v: number) => Number.isFinite(v) && v > 0;

/** Length of the path through `points`, in pixels. */
export function pathLength(points: readonly Position[]): number {
  let total = 0;
  for (let i = 1; i < points.length; i++) total += Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
  return total;
}

/** Area enclosed by `ring` (closed or not, either winding), in square pixels: the shoelace formula. */
export function ringArea(ring: readonly Position[]): number {
  let twice = 0;
  for (let i = 0; i < ring.length; i++) {
    const [x0, y0] = ring[i];
    const [x1, y1] = ring[(i + 1) % ring.length];
    twice += x0 * y1 - x1 * y0;
  }
  return Math.abs(twice) / 2;
}

/** The ring's outline length, closing it if its last point is not its first. */
export function ringPerimeter(ring: readonly Position[]): number {
  if (ring.length < 2) return 0;
  const [first, last] = [ring[0], ring[ring.length - 1]];
  return pathLength(ring) + Math.hypot(first[0] - last[0], first[1] - last[1]);
}

/** A polygon's area: its outer ring less its holes. */
const polygonArea = (rings: readonly Position[][]) =>
  rings.length === 0 ? 0 : Math.max(0, ringArea(rings[0]) - rings.slice(1).reduce((sum, hole) => sum + ringArea(hole), 0));

/** The length and area of a vector-layer geometry, in image pixels. */
export function measureGeometry(g: Geometry): Measures {
  switch (g.type) {
    case 'Point':
    case 'MultiPoint':
      return { length: null, area: null };
    case 'LineString':
      return { length: pathLength(g.coordinates), area: null };
    case 'MultiLineString':
      return { length: g.coordinates.reduce((sum, line) => sum + pathLength(line), 0), area: null };
    case 'Polygon':
      return { length: ringPerimeter(g.coordinates[0] ?? []), area: polygonArea(g.coordinates) };
    case 'MultiPolygon':
      return {
        length: g.coordinates.reduce((sum, poly) => sum + ringPerimeter(poly[0] ?? []), 0),
        area: g.coordinates.reduce((sum, poly) => sum + polygonArea(poly), 0),
      };
  }
}

/**
 * The scale that makes a line `pixels` long measure `realLength` `unit`s (the calibration tool).
 * Throws with a reason for a length that is not positive, or a missing or over-long unit.
 */
export function calibrate(pixels: number, realLength: number, unit: string): Scale {
  const name = unit.trim();
  if (!isScaleValue(pixels)) throw new Error('Draw a line of some length first.');
  if (!isScaleValue(realLength)) throw new Error('The real length must be a number above 0.');
  if (!name || name.length > MAX_UNIT_LENGTH) throw new Error(`Give a unit of 1 to ${MAX_UNIT_LENGTH} characters (e.g. mm).`);
  const value = realLength / pixels;
  if (!isScaleValue(value)) throw new Error('That length gives no usable scale.');
  return { value, unit: name };
}

/** `"0.2mm"`, `"0.2 mm"` or `"1.5e-3 m"` as a scale; null for anything else. */
export function parseScale(text: string): Scale | null {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([^\s0-9][^\s]*)\s*$/i.exec(text);
  if (!m) return null;
  const value = Number(m[1]);
  return isScaleValue(value) && m[2].length <= MAX_UNIT_LENGTH ? { value, unit: m[2] } : null;
}

/**
 * A number for people: at most four significant digits, no exponent for everyday sizes. Not
 * `toLocaleString`, which took 18 ms on a page's first call (the scale bar's, as an image opens) and
 * 20 µs on every later one.
 */
export function formatNumber(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x) || Math.abs(x) >= 1e21) return String(x);
  const digits = Math.min(6, Math.max(0, 3 - Math.floor(Math.log10(Math.abs(x)))));
  // Through Number: trailing zeros go, and String never uses an exponent from 1e-6 to 1e21.
  return String(Number(x.toFixed(digits)));
}

/** A length of `pixels` image pixels: in the scale's unit and in pixels, or in pixels alone. */
export function formatLength(pixels: number, scale: Scale | null): string {
  const px = `${formatNumber(pixels)} px`;
  return scale ? `${formatNumber(pixels * scale.value)} ${scale.unit} (${px})` : px;
}

/** An area of `pixels` square image pixels: in the scale's unit squared and in pixels, or in pixels alone. */
export function formatArea(pixels: number, scale: Scale | null): string {
  const px = `${formatNumber(pixels)} px²`;
  return scale ? `${formatNumber(pixels * scale.value * scale.value)} ${scale.unit}² (${px})` : px;
}

/** The longest round length (1, 2 or 5 × 10ⁿ) not above `max`; 0 when `max` is not positive. */
export function roundLengthAtMost(max: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 0;
  const decade = 10 ** Math.floor(Math.log10(max));
  // A tolerance for `max` itself being round, which floating-point division may put just below.
  const step = [5, 2, 1].find((s) => s * decade <= max * (1 + 1e-12)) ?? 1;
  return step * decade;
}
