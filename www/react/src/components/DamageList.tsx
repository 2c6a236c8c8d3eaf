'use client';
/** The vector features as a list; choosing one zooms the viewer to it. */
import type { DamageFeature } from '../geojson.js';
import { featureTitle } from '../geojson.js';
import { formatArea, formatLength, measureGeometry } from '../measure.js';
import type { Scale } from '../measure.js';

export interface DamageListProps {
  /** The features to list (`parseDamage`). */
  features: DamageFeature[];
  /** The highlighted feature's `index`, or null. */
  selected: number | null;
  /** Called with a feature's `index` when it is chosen. */
  onSelect: (index: number) => void;
  /** Why the layer could not be loaded, shown instead of the list. */
  error: string | null;
  /** The layer is still loading. */
  loading: boolean;
  /** Real units per image pixel, for the chosen feature's length and area; null: in pixels. */
  scale?: Scale | null;
}

/** The chosen feature's length and area, in real units when there is a scale. */
function FeatureMeasures({ feature, scale }: { feature: DamageFeature; scale: Scale | null }) {
  const { length, area } = measureGeometry(feature.geometry);
  if (length === null && area === null) return null;
  return (
    <p className="measures" data-testid="feature-measures" data-length-px={length ?? undefined} data-area-px={area ?? undefined}>
      {length !== null && <span>{area === null ? 'Length' : 'Outline'} {formatLength(length, scale)}</span>}
      {area !== null && <span>Area {formatArea(area, scale)}</span>}
    </p>
  );
}

export function DamageList({ features, selected, onSelect, error, loading, scale = null }: DamageListProps) {
  return (
    <section className="panel" data-testid="damage-list">
      <h2>Damage {features.length > 0 && <span className="count">{features.length}</span>}</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {loading && <p className="muted">Loading the vector layer…</p>}
      {!error && !loading && features.length === 0 && <p className="muted">No vector layer (pass <code>?vectorSrc=</code>).</p>}
      <ul>
        {features.map((f) => (
          <li key={f.index}>
            <button
              type="button"
              className={f.index === selected ? 'selected' : undefined}
              data-index={f.index}
              onClick={() => onSelect(f.index)}
            >
              <span className="title">{featureTitle(f)}</span>
              {f.class && f.class !== featureTitle(f) && <span className="class">{f.class}</span>}
              {f.confidence !== null && <span className="confidence">{Math.round(f.confidence * 100)}%</span>}
            </button>
            {f.index === selected && <FeatureMeasures feature={f} scale={scale} />}
          </li>
        ))}
      </ul>
    </section>
  );
}
