'use client';
/**
 * The damage layer: one SVG whose viewBox is the image's pixel grid, in an overlay OpenSeadragon
 * keeps over the image (`useImageOverlay`). Strokes and labels keep their screen size through `--px`.
 */
import { createPortal } from 'react-dom';
import type OpenSeadragon from 'openseadragon';
import type { DamageFeature, Geometry, Position } from '../geojson.js';
import { featureTitle } from '../geojson.js';
import { useImageOverlay } from '../osd/useImageOverlay.js';

export interface VectorOverlayProps {
  /** The viewer to draw on (Viewer's `onViewer`); nothing is drawn without one. */
  viewer: OpenSeadragon.Viewer | null;
  /** The oriented image's size; the overlay appears once the image is open. */
  width: number;
  height: number;
  /** The features, in the oriented image's pixel coordinates (`parseDamage`). */
  features: DamageFeature[];
  /** The highlighted feature's `index`, or null. */
  selected: number | null;
  /** Called with a feature's `index` when it is clicked. */
  onSelect?: (index: number) => void;
}

const path = (ring: Position[], close: boolean) =>
  ring.map((p, i) => `${i === 0 ? 'M' : 'L'}${p[0]} ${p[1]}`).join('') + (close ? 'Z' : '');

function Shape({ geometry }: { geometry: Geometry }) {
  switch (geometry.type) {
    case 'Point':
      return <circle className="point" cx={geometry.coordinates[0]} cy={geometry.coordinates[1]} />;
    case 'MultiPoint':
      return (
        <>
          {geometry.coordinates.map((p, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: a feature's points never change order; they have no other identity.
            <circle key={i} className="point" cx={p[0]} cy={p[1]} />
          ))}
        </>
      );
    case 'LineString':
      return <path className="line" d={path(geometry.coordinates, false)} />;
    case 'MultiLineString':
      return <path className="line" d={geometry.coordinates.map((l) => path(l, false)).join('')} />;
    case 'Polygon':
      return <path className="area" fillRule="evenodd" d={geometry.coordinates.map((r) => path(r, true)).join('')} />;
    case 'MultiPolygon':
      return (
        <path className="area" fillRule="evenodd" d={geometry.coordinates.flatMap((poly) => poly.map((r) => path(r, true))).join('')} />
      );
  }
}

function labelText(f: DamageFeature): string {
  const title = featureTitle(f);
  const cls = f.class && f.class !== title ? ` · ${f.class}` : '';
  const conf = f.confidence !== null ? ` ${Math.round(f.confidence * 100)}%` : '';
  return `${title}${cls}${conf}`;
}

export function VectorOverlay({ viewer, width, height, features, selected, onSelect }: VectorOverlayProps) {
  const { host, placed } = useImageOverlay(viewer, width, height, 'vector-overlay', 'vector-overlay');

  if (!placed || features.length === 0) return null;
  return createPortal(
    <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" width="100%" height="100%" xmlns="http://www.w3.org/2000/svg">
      <title>Damage layer</title>
      {features.map((f) => (
        // biome-ignore lint/a11y/noStaticElementInteractions: a pointer shortcut; the damage list's buttons do the same by keyboard.
        <g
          key={f.index}
          className={`feature${f.index === selected ? ' selected' : ''}`}
          data-testid="vector-feature"
          data-index={f.index}
          onClick={onSelect ? () => onSelect(f.index) : undefined}
        >
          <title>{labelText(f)}</title>
          <Shape geometry={f.geometry} />
        </g>
      ))}
      {features.map((f) => (
        <text key={`label-${f.index}`} className="label" x={f.bbox[0]} y={f.bbox[1]}>
          {labelText(f)}
        </text>
      ))}
    </svg>,
    host,
  );
}
