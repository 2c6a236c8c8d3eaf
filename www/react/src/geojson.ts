/**
 * The vector layer format: a GeoJSON FeatureCollection whose coordinates are pixels of the
 * oriented image (x right, y down, origin top-left). Point, LineString, Polygon and their Multi
 * forms; `properties.label`, `class` and `confidence` are shown.
 */

export type Position = [number, number];

export type Geometry =
  | { type: 'Point'; coordinates: Position }
  | { type: 'MultiPoint'; coordinates: Position[] }
  | { type: 'LineString'; coordinates: Position[] }
  | { type: 'MultiLineString'; coordinates: Position[][] }
  | { type: 'Polygon'; coordinates: Position[][] }
  | { type: 'MultiPolygon'; coordinates: Position[][][] };

export interface DamageFeature {
  /** A stable key: the position in the collection as loaded; a feature drawn later takes the next free number. */
  index: number;
  id: string | number | null;
  geometry: Geometry;
  label: string | null;
  class: string | null;
  confidence: number | null;
  /** Bounding box in image pixels: [minX, minY, maxX, maxY]. */
  bbox: [number, number, number, number];
  /** The feature's properties as loaded (others than label, class and confidence are kept for export). */
  properties: Record<string, unknown>;
}

/** A FeatureCollection as `toFeatureCollection` writes it. */
export interface FeatureCollection {
  type: 'FeatureCollection';
  features: { type: 'Feature'; id?: string | number; properties: Record<string, unknown>; geometry: Geometry }[];
}

const isPosition = (p: unknown): p is Position =>
  Array.isArray(p) &&
  p.length >= 2 &&
  typeof p[0] === 'number' &&
  typeof p[1] === 'number' &&
  Number.isFinite(p[0]) &&
  Number.isFinite(p[1]);

/** Checks nesting depth: 0 = position, 1 = list of positions, ... */
function isNested(value: unknown, depth: number): boolean {
  if (depth === 0) return isPosition(value);
  return Array.isArray(value) && value.every((v) => isNested(v, depth - 1));
}

const DEPTH: Record<Geometry['type'], number> = {
  Point: 0,
  MultiPoint: 1,
  LineString: 1,
  MultiLineString: 2,
  Polygon: 2,
  MultiPolygon: 3,
};

function positions(g: Geometry): Position[] {
  switch (g.type) {
    case 'Point':
      return [g.coordinates];
    case 'MultiPoint':
    case 'LineString':
      return g.coordinates;
    case 'MultiLineString':
    case 'Polygon':
      return g.coordinates.flat();
    case 'MultiPolygon':
      return g.coordinates.flat(2);
  }
}

/** Parses and checks a FeatureCollection; throws an Error a person can read. */
export function parseDamage(json: unknown): DamageFeature[] {
  if (typeof json !== 'object' || json === null || (json as { type?: unknown }).type !== 'FeatureCollection') {
    throw new Error('the vector layer is not a GeoJSON FeatureCollection');
  }
  const features = (json as { features?: unknown }).features;
  if (!Array.isArray(features)) throw new Error('the FeatureCollection has no "features" array');
  const out: DamageFeature[] = [];
  features.forEach((f: unknown, index) => {
    const feature = f as { geometry?: { type?: unknown; coordinates?: unknown }; properties?: Record<string, unknown>; id?: unknown };
    const g = feature?.geometry;
    const type = g?.type as Geometry['type'] | undefined;
    if (!g || typeof type !== 'string' || !(type in DEPTH)) {
      throw new Error(`feature ${index}: geometry must be Point, LineString, Polygon or a Multi form`);
    }
    if (!isNested(g.coordinates, DEPTH[type])) throw new Error(`feature ${index}: malformed ${type} coordinates`);
    const geometry = g as Geometry;
    const pts = positions(geometry);
    if (pts.length === 0) throw new Error(`feature ${index}: empty ${type}`);
    const props = feature.properties ?? {};
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null);
    out.push({
      index,
      id: typeof feature.id === 'string' || typeof feature.id === 'number' ? feature.id : null,
      geometry,
      label: str(props.label),
      class: str(props.class),
      confidence: typeof props.confidence === 'number' ? props.confidence : null,
      bbox: boundsOf(pts),
      properties: { ...props },
    });
  });
  return out;
}

/** The box around `points` (not empty): [minX, minY, maxX, maxY]. */
function boundsOf(points: Position[]): [number, number, number, number] {
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of points) {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

/** `f` with another geometry (its box follows). */
export function withGeometry(f: DamageFeature, geometry: Geometry): DamageFeature {
  return { ...f, geometry, bbox: boundsOf(positions(geometry)) };
}

/** The features as a GeoJSON FeatureCollection in image pixels, as `vectorSrc` takes it (and `parseDamage` reads back). */
export function toFeatureCollection(features: readonly DamageFeature[]): FeatureCollection {
  return {
    type: 'FeatureCollection',
    features: features.map((f) => {
      const properties: Record<string, unknown> = { ...f.properties };
      for (const key of ['label', 'class', 'confidence'] as const) {
        if (f[key] === null) delete properties[key];
        else properties[key] = f[key];
      }
      return { type: 'Feature', ...(f.id !== null ? { id: f.id } : {}), properties, geometry: f.geometry };
    }),
  };
}

/** A short name for lists and labels. */
export function featureTitle(f: DamageFeature): string {
  return f.label ?? f.class ?? (f.id !== null ? `#${f.id}` : `feature ${f.index + 1}`);
}
