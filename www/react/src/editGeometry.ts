/**
 * Editing geometries of the vector layer: new ones from clicked points, their vertices listed with an
 * address (the path of indexes into `coordinates`), and a vertex moved. A polygon ring's closing point
 * is not a vertex of its own: it moves with the ring's first.
 */
import type { Geometry, Position } from './geojson.js';

/** What the drawing tools make. */
export type DrawKind = 'Point' | 'LineString' | 'Polygon';

/** Fewest points each kind needs. */
export const MIN_POINTS: Record<DrawKind, number> = { Point: 1, LineString: 2, Polygon: 3 };

/** A vertex: where it is in the coordinates, and its position. */
export interface Vertex {
  address: number[];
  position: Position;
}

/** The geometry of `kind` through `points` (a polygon's ring closed); null with too few points. */
export function newGeometry(kind: DrawKind, points: readonly Position[]): Geometry | null {
  if (points.length < MIN_POINTS[kind]) return null;
  const copy = points.map((p) => [p[0], p[1]] as Position);
  switch (kind) {
    case 'Point':
      return { type: 'Point', coordinates: copy[0] };
    case 'LineString':
      return { type: 'LineString', coordinates: copy };
    case 'Polygon':
      return { type: 'Polygon', coordinates: [[...copy, [copy[0][0], copy[0][1]]]] };
  }
}

const isClosed = (ring: readonly Position[]) =>
  ring.length > 1 && ring[0][0] === ring[ring.length - 1][0] && ring[0][1] === ring[ring.length - 1][1];

function ringVertices(ring: readonly Position[], prefix: number[]): Vertex[] {
  const n = isClosed(ring) ? ring.length - 1 : ring.length;
  return ring.slice(0, n).map((position, i) => ({ address: [...prefix, i], position }));
}

/** Every vertex of `g` a person can move. */
export function vertices(g: Geometry): Vertex[] {
  switch (g.type) {
    case 'Point':
      return [{ address: [], position: g.coordinates }];
    case 'MultiPoint':
    case 'LineString':
      return g.coordinates.map((position, i) => ({ address: [i], position }));
    case 'MultiLineString':
      return g.coordinates.flatMap((line, l) => line.map((position, i) => ({ address: [l, i], position })));
    case 'Polygon':
      return g.coordinates.flatMap((ring, r) => ringVertices(ring, [r]));
    case 'MultiPolygon':
      return g.coordinates.flatMap((poly, p) => poly.flatMap((ring, r) => ringVertices(ring, [p, r])));
  }
}

/** `ring` with vertex `i` at `to`; the closing point follows the first. */
function moveInRing(ring: readonly Position[], i: number, to: Position): Position[] {
  const closed = isClosed(ring);
  return ring.map((p, k) => (k === i || (closed && i === 0 && k === ring.length - 1) ? [to[0], to[1]] : p));
}

/** `g` with the vertex at `address` moved to `to`; `g` itself when the address names no vertex. */
export function moveVertex(g: Geometry, address: readonly number[], to: Position): Geometry {
  const inRange = (list: readonly unknown[], i: number | undefined): i is number => i !== undefined && i >= 0 && i < list.length;
  const [a, b, c] = address;
  switch (g.type) {
    case 'Point':
      return address.length === 0 ? { type: 'Point', coordinates: [to[0], to[1]] } : g;
    case 'MultiPoint':
    case 'LineString':
      if (address.length !== 1 || !inRange(g.coordinates, a)) return g;
      return { ...g, coordinates: g.coordinates.map((p, i): Position => (i === a ? [to[0], to[1]] : p)) } as Geometry;
    case 'MultiLineString':
      if (address.length !== 2 || !inRange(g.coordinates, a) || !inRange(g.coordinates[a], b)) return g;
      return {
        ...g,
        coordinates: g.coordinates.map((line, l) => (l === a ? line.map((p, i): Position => (i === b ? [to[0], to[1]] : p)) : line)),
      };
    case 'Polygon':
      if (address.length !== 2 || !inRange(g.coordinates, a) || !inRange(g.coordinates[a], b)) return g;
      return { ...g, coordinates: g.coordinates.map((ring, r) => (r === a ? moveInRing(ring, b, to) : ring)) };
    case 'MultiPolygon':
      if (address.length !== 3 || !inRange(g.coordinates, a) || !inRange(g.coordinates[a], b) || !inRange(g.coordinates[a][b], c)) return g;
      return {
        ...g,
        coordinates: g.coordinates.map((poly, p) => (p === a ? poly.map((ring, r) => (r === b ? moveInRing(ring, c, to) : ring)) : poly)),
      };
  }
}
