/**
 * The damage layer: one SVG whose viewBox is the image's pixel grid, placed as an OpenSeadragon
 * overlay over the whole image, so OpenSeadragon keeps it aligned at every zoom and pan.
 * Strokes and labels keep their screen size through `--px` (image pixels per screen pixel).
 */
import { useEffect, useMemo, useState } from 'react';
import { createPortal } from 'react-dom';
import OpenSeadragon from 'openseadragon';
import type { DamageFeature, Geometry, Position } from '../geojson';
import { featureTitle } from '../geojson';

interface Props {
  viewer: OpenSeadragon.Viewer | null;
  /** The oriented image's size; the overlay appears once the image is open. */
  width: number;
  height: number;
  features: DamageFeature[];
  selected: number | null;
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

export function VectorOverlay({ viewer, width, height, features, selected, onSelect }: Props) {
  // The overlay element OpenSeadragon positions; React renders the SVG into it.
  const host = useMemo(() => {
    const div = document.createElement('div');
    div.className = 'vector-overlay';
    div.dataset.testid = 'vector-overlay';
    return div;
  }, []);
  const [placed, setPlaced] = useState(false);

  useEffect(() => {
    if (!viewer || width <= 0 || height <= 0) return;
    let item: OpenSeadragon.TiledImage | null = null;
    const place = () => {
      item = viewer.world.getItemAt(0) ?? null;
      if (!item) return;
      const rect = item.imageToViewportRectangle(0, 0, width, height);
      if (viewer.getOverlayById(host)) viewer.updateOverlay(host, rect);
      else viewer.addOverlay({ element: host, location: rect });
      setPlaced(true);
      scale();
    };
    const scale = () => {
      if (!item) return;
      const zoom = item.viewportToImageZoom(viewer.viewport.getZoom(true));
      if (zoom > 0) host.style.setProperty('--px', String(1 / zoom));
    };
    // Opening a new source clears overlays, so the layer is placed again on every open.
    viewer.addHandler('open', place);
    viewer.addHandler('update-viewport', scale);
    if (viewer.world.getItemCount() > 0) place();
    return () => {
      viewer.removeHandler('open', place);
      viewer.removeHandler('update-viewport', scale);
      if (viewer.getOverlayById(host)) viewer.removeOverlay(host);
      setPlaced(false);
    };
  }, [viewer, host, width, height]);

  if (!placed || features.length === 0) return null;
  return createPortal(
    <svg
      viewBox={`0 0 ${width} ${height}`}
      preserveAspectRatio="none"
      width="100%"
      height="100%"
      xmlns="http://www.w3.org/2000/svg"
    >
      {features.map((f) => (
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
