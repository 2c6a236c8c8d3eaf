'use client';
/** What the image is: format, size, orientation, camera, lenses, date, GPS; and the pyramid's progress. */
import type { Metadata } from '@tessera/tiler-wasm';
import type { TilingStatus } from '../hooks/useTilingImage.js';

const ORIENTATION: Record<number, string> = {
  1: 'normal',
  2: 'mirrored',
  3: 'rotated 180°',
  4: 'mirrored vertically',
  5: 'mirrored, rotated 90° CCW',
  6: 'rotated 90° CW',
  7: 'mirrored, rotated 90° CW',
  8: 'rotated 90° CCW',
};

function coordinate(value: number, positive: string, negative: string): string {
  return `${Math.abs(value).toFixed(6)}° ${value >= 0 ? positive : negative}`;
}

function rows(m: Metadata): [string, string, string][] {
  const e = m.exif;
  const out: [string, string, string][] = [
    ['format', 'Format', m.format.toUpperCase() + (m.hasAlpha ? ' with alpha' : '')],
    ['size', 'Size', `${m.width} × ${m.height} px (${((m.width * m.height) / 1e6).toFixed(1)} MP)`],
    ['orientation', 'Orientation', `${m.orientation} (${ORIENTATION[m.orientation] ?? 'unknown'})`],
  ];
  const camera = [e.make, e.model].filter(Boolean).join(' ');
  if (camera) out.push(['camera', 'Camera', camera]);
  if (e.focalLength !== null) out.push(['focal-length', 'Focal length', `${e.focalLength} mm`]);
  if (e.focalLengthIn35mmFilm !== null) out.push(['focal-length-35mm', '35 mm equivalent', `${e.focalLengthIn35mmFilm} mm`]);
  if (e.dateTimeOriginal) out.push(['date', 'Taken', e.dateTimeOriginal]);
  if (e.gpsLatitude !== null && e.gpsLongitude !== null) {
    out.push(['gps', 'GPS', `${coordinate(e.gpsLatitude, 'N', 'S')}, ${coordinate(e.gpsLongitude, 'E', 'W')}`]);
  }
  return out;
}

export interface MetadataPanelProps {
  /** The hook's status: its metadata and tiling progress are shown. */
  status: TilingStatus;
}

export function MetadataPanel({ status }: MetadataPanelProps) {
  const m = status.metadata;
  const info = status.info;
  return (
    <section className="panel" data-testid="metadata">
      <h2>Image</h2>
      {!m ? (
        <p className="muted">
          {status.phase === 'idle'
            ? 'No image.'
            : status.phase === 'error'
              ? '—'
              : status.source === 'store'
                ? 'Opened by its pyramid id: the image file itself was not downloaded.'
                : 'Reading…'}
        </p>
      ) : (
        <dl>
          {rows(m).map(([key, name, value]) => (
            <div key={key} data-field={key}>
              <dt>{name}</dt>
              <dd>{value}</dd>
            </div>
          ))}
        </dl>
      )}
      {info && (
        <>
          <h2>Pyramid</h2>
          <dl>
            <div data-field="tiles">
              <dt>Tiles</dt>
              <dd>
                {status.source === 'store' ? `${status.tilesTotal} in the store` : `${status.tilesDone} / ${status.tilesTotal}`}{' '}
                {info.format.toUpperCase()}, {info.maxLevel + 1} levels
              </dd>
            </div>
            <div data-field="pyramid-id">
              <dt>Id</dt>
              <dd title={info.pyramidId}>
                <code>{info.pyramidId.slice(0, 16)}…</code>
              </dd>
            </div>
          </dl>
          {status.source !== 'store' && <progress max={status.tilesTotal || 1} value={status.tilesDone} aria-label="Pyramid progress" />}
        </>
      )}
    </section>
  );
}
