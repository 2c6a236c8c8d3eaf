/**
 * Aligning two inspections of the same structure: a similarity transform (scale, rotation, shift)
 * from the pixels of the first image to those of the second, set from two pairs of corresponding
 * points — what a person clicks on a crack's ends in both pictures.
 */
import type { Position } from './geojson.js';

/** `b = scale · R(rotation) · a + (tx, ty)`, from image A pixels to image B pixels; rotation in radians. */
export interface Alignment {
  scale: number;
  rotation: number;
  tx: number;
  ty: number;
}

/** Where `p` of image A is in image B. */
export function alignPoint(t: Alignment, p: Position): Position {
  const [c, s] = [Math.cos(t.rotation) * t.scale, Math.sin(t.rotation) * t.scale];
  return [c * p[0] - s * p[1] + t.tx, s * p[0] + c * p[1] + t.ty];
}

/** The alignment that takes image B back to image A. */
export function invertAlignment(t: Alignment): Alignment {
  const back = { scale: 1 / t.scale, rotation: -t.rotation, tx: 0, ty: 0 };
  const [x, y] = alignPoint(back, [t.tx, t.ty]);
  return { ...back, tx: -x, ty: -y };
}

/** Without corresponding points: the same relative place in both images (B's width over A's). */
export function defaultAlignment(widthA: number, widthB: number): Alignment {
  return { scale: widthB / widthA, rotation: 0, tx: 0, ty: 0 };
}

/**
 * The similarity taking `a1` to `b1` and `a2` to `b2`; throws with a reason when the first pair's two
 * points (or the second's) are too close together to give a direction.
 */
export function alignmentFrom(a1: Position, a2: Position, b1: Position, b2: Position): Alignment {
  const [ax, ay] = [a2[0] - a1[0], a2[1] - a1[1]];
  const [bx, by] = [b2[0] - b1[0], b2[1] - b1[1]];
  const [la, lb] = [Math.hypot(ax, ay), Math.hypot(bx, by)];
  if (!(la >= 1) || !(lb >= 1)) throw new Error('Pick two points at least a pixel apart in each image.');
  const scale = lb / la;
  const rotation = Math.atan2(by, bx) - Math.atan2(ay, ax);
  const moved = alignPoint({ scale, rotation, tx: 0, ty: 0 }, a1);
  return { scale, rotation, tx: b1[0] - moved[0], ty: b1[1] - moved[1] };
}

/** `"scale,rotation,tx,ty"` for a URL; `parseAlignment` reads it back (null for anything else). */
export const formatAlignment = (t: Alignment) => [t.scale, t.rotation, t.tx, t.ty].map((x) => String(Number(x.toPrecision(10)))).join(',');

export function parseAlignment(text: string | null | undefined): Alignment | null {
  if (!text || text.length > 120) return null;
  const parts = text.split(',').map(Number);
  if (parts.length !== 4 || !parts.every(Number.isFinite) || !(parts[0] > 0)) return null;
  const [scale, rotation, tx, ty] = parts;
  return { scale, rotation, tx, ty };
}
