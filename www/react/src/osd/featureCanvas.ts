/**
 * The damage layer drawn with Canvas 2D: for layers too large for one SVG element per feature, and
 * for exporting the view as a picture. Features outside the visible image rectangle are skipped, and
 * all unchosen features go into one path, so a frame is a handful of draw calls however many there are.
 */
import type OpenSeadragon from 'openseadragon';
import type { DamageFeature, Geometry, Position } from '../geojson.js';
import { imagePixelsPerScreenPixel } from './imageSpace.js';
import { openSeadragon } from './load.js';

/**
 * Image pixels to CSS pixels of the viewer element, an affine map (the view may be rotated or
 * flipped): `screen = origin + x · xAxis + y · yAxis`.
 */
export interface ImageToScreen {
  originX: number;
  originY: number;
  /** Where one image pixel along x moves on screen. */
  xAxis: [number, number];
  /** Where one image pixel along y moves on screen. */
  yAxis: [number, number];
}

/** The viewer's current mapping (animation included), or null before the image has a size on screen. */
export function imageToScreen(viewer: OpenSeadragon.Viewer, imageWidth: number): ImageToScreen | null {
  if (!(imageWidth > 0) || !(imagePixelsPerScreenPixel(viewer, imageWidth) > 0)) return null;
  const { Point } = openSeadragon();
  // Viewport coordinates are image pixels ÷ width (imageSpace); pixelFromPoint applies rotation and flip.
  const at = (x: number, y: number) => viewer.viewport.pixelFromPoint(new Point(x / imageWidth, y / imageWidth), true);
  const [o, x, y] = [at(0, 0), at(1, 0), at(0, 1)];
  return { originX: o.x, originY: o.y, xAxis: [x.x - o.x, x.y - o.y], yAxis: [y.x - o.x, y.y - o.y] };
}

/** Screen pixels per image pixel (the same along both axes). */
function scaleOf(t: ImageToScreen): number {
  return Math.hypot(t.xAxis[0], t.xAxis[1]);
}

/** The image-pixel box covering the screen box `[0, w] × [0, h]` seen through `t`. */
function visibleImageBox(t: ImageToScreen, w: number, h: number): [number, number, number, number] {
  const [[a, b], [c, d]] = [t.xAxis, t.yAxis];
  const det = a * d - b * c;
  const toImage = (sx: number, sy: number): [number, number] => {
    const [dx, dy] = [sx - t.originX, sy - t.originY];
    return [(d * dx - c * dy) / det, (a * dy - b * dx) / det];
  };
  const corners = [toImage(0, 0), toImage(w, 0), toImage(0, h), toImage(w, h)];
  const xs = corners.map((p) => p[0]);
  const ys = corners.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** Colours and sizes, in CSS pixels. */
export interface FeatureStyle {
  stroke: string;
  fill: string;
  chosen: string;
  lineWidth: number;
  pointRadius: number;
}

/** The layer's colours as the stylesheet sets them on `element` (`--damage`). */
export function featureStyle(element: Element): FeatureStyle {
  const damage = getComputedStyle(element).getPropertyValue('--damage').trim() || '#ff2d55';
  return { stroke: damage, fill: 'rgba(255, 45, 85, 0.12)', chosen: '#ffd60a', lineWidth: 2.5, pointRadius: 5 };
}

function addGeometry(path: Path2D, g: Geometry, t: ImageToScreen, radius: number): void {
  const at = (p: Position): [number, number] => [
    t.originX + p[0] * t.xAxis[0] + p[1] * t.yAxis[0],
    t.originY + p[0] * t.xAxis[1] + p[1] * t.yAxis[1],
  ];
  const line = (points: Position[], close: boolean) => {
    points.forEach((p, i) => {
      const [x, y] = at(p);
      if (i === 0) path.moveTo(x, y);
      else path.lineTo(x, y);
    });
    if (close) path.closePath();
  };
  const point = (p: Position) => {
    const [x, y] = at(p);
    path.moveTo(x + radius, y);
    path.arc(x, y, radius, 0, 2 * Math.PI);
  };
  switch (g.type) {
    case 'Point':
      point(g.coordinates);
      break;
    case 'MultiPoint':
      for (const p of g.coordinates) point(p);
      break;
    case 'LineString':
      line(g.coordinates, false);
      break;
    case 'MultiLineString':
      for (const l of g.coordinates) line(l, false);
      break;
    case 'Polygon':
      for (const r of g.coordinates) line(r, true);
      break;
    case 'MultiPolygon':
      for (const r of g.coordinates.flat()) line(r, true);
      break;
  }
}

const isArea = (g: Geometry) => g.type === 'Polygon' || g.type === 'MultiPolygon';
const isPoint = (g: Geometry) => g.type === 'Point' || g.type === 'MultiPoint';

/**
 * Draws `features` into `ctx` (in CSS pixels) through `t`, skipping those outside the `viewWidth` ×
 * `viewHeight` box; the chosen one last, in its own colour. Returns how many were drawn.
 */
export function drawFeatures(
  ctx: CanvasRenderingContext2D,
  features: readonly DamageFeature[],
  t: ImageToScreen,
  viewWidth: number,
  viewHeight: number,
  chosen: number | null,
  style: FeatureStyle,
): number {
  // The visible rectangle in image pixels, with a margin for strokes and points.
  const margin = (style.pointRadius + style.lineWidth) / scaleOf(t);
  const box = visibleImageBox(t, viewWidth, viewHeight);
  const [x0, y0, x1, y1] = [box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin];
  const areas = new Path2D();
  const lines = new Path2D();
  const points = new Path2D();
  let drawn = 0;
  let highlight: DamageFeature | null = null;
  for (const f of features) {
    const [fx0, fy0, fx1, fy1] = f.bbox;
    if (fx1 < x0 || fy1 < y0 || fx0 > x1 || fy0 > y1) continue;
    drawn++;
    if (f.index === chosen) {
      highlight = f;
      continue;
    }
    addGeometry(isArea(f.geometry) ? areas : isPoint(f.geometry) ? points : lines, f.geometry, t, style.pointRadius);
  }
  ctx.lineJoin = 'round';
  ctx.lineCap = 'round';
  ctx.lineWidth = style.lineWidth;
  ctx.strokeStyle = style.stroke;
  ctx.fillStyle = style.fill;
  ctx.fill(areas, 'evenodd');
  ctx.stroke(areas);
  ctx.stroke(lines);
  ctx.fillStyle = style.stroke;
  ctx.fill(points);
  if (highlight) {
    const path = new Path2D();
    addGeometry(path, highlight.geometry, t, style.pointRadius);
    ctx.lineWidth = style.lineWidth + 1;
    ctx.strokeStyle = style.chosen;
    ctx.fillStyle = style.chosen;
    if (isPoint(highlight.geometry)) ctx.fill(path);
    else ctx.stroke(path);
  }
  return drawn;
}

/** Squared distance from `p` to the segment a–b. */
function segmentDistance2(p: Position, a: Position, b: Position): number {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  const length2 = dx * dx + dy * dy;
  const k = length2 === 0 ? 0 : Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2));
  const [x, y] = [a[0] + k * dx - p[0], a[1] + k * dy - p[1]];
  return x * x + y * y;
}

function ringContains(ring: Position[], p: Position): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [a, b] = [ring[i], ring[j]];
    if (a[1] > p[1] !== b[1] > p[1] && p[0] < ((b[0] - a[0]) * (p[1] - a[1])) / (b[1] - a[1]) + a[0]) inside = !inside;
  }
  return inside;
}

/** Whether image point `p` is on `g` (within `tolerance` image pixels of a line or point, or inside an area). */
function hits(g: Geometry, p: Position, tolerance: number): boolean {
  const t2 = tolerance * tolerance;
  const near = (q: Position) => (q[0] - p[0]) ** 2 + (q[1] - p[1]) ** 2 <= t2;
  const onLine = (l: Position[]) => l.some((q, i) => (i === 0 ? near(q) : segmentDistance2(p, l[i - 1], q) <= t2));
  const inPolygon = (rings: Position[][]) =>
    rings.some(onLine) || (rings.length > 0 && ringContains(rings[0], p) && !rings.slice(1).some((h) => ringContains(h, p)));
  switch (g.type) {
    case 'Point':
      return near(g.coordinates);
    case 'MultiPoint':
      return g.coordinates.some(near);
    case 'LineString':
      return onLine(g.coordinates);
    case 'MultiLineString':
      return g.coordinates.some(onLine);
    case 'Polygon':
      return inPolygon(g.coordinates);
    case 'MultiPolygon':
      return g.coordinates.some(inPolygon);
  }
}

/** The topmost feature (last drawn) at image point `p`, or null. */
export function featureAt(features: readonly DamageFeature[], p: Position, tolerance: number): DamageFeature | null {
  for (let i = features.length - 1; i >= 0; i--) {
    const f = features[i];
    const [x0, y0, x1, y1] = f.bbox;
    if (p[0] < x0 - tolerance || p[0] > x1 + tolerance || p[1] < y0 - tolerance || p[1] > y1 + tolerance) continue;
    if (hits(f.geometry, p, tolerance)) return f;
  }
  return null;
}
