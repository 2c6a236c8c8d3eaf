'use client';
/**
 * The vector features as a list; choosing one zooms the viewer to it. Counts per class (each a
 * filter), a minimum confidence and a sort decide what is listed (and drawn); J and K step through.
 */
import { useState } from 'react';
import type { DamageFeature } from '../geojson.js';
import { ALL_DAMAGE, classCounts } from '../damageList.js';
import type { DamageFilter, DamageSort } from '../damageList.js';
import { featureTitle } from '../geojson.js';
import { formatArea, formatLength, measureGeometry } from '../measure.js';
import type { Scale } from '../measure.js';

export interface DamageListProps {
  /** The features to list, filtered and sorted (`listDamage`). */
  features: DamageFeature[];
  /** Every feature of the layer, for the counts per class; default: `features`. */
  all?: DamageFeature[];
  /** What is listed; with `onFilterChange`, the filter controls are shown. */
  filter?: DamageFilter;
  onFilterChange?: (filter: DamageFilter) => void;
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
  // Drawn across the feature with the Width tool, and kept in its properties (`width_px`).
  const width = typeof feature.properties.width_px === 'number' ? feature.properties.width_px : null;
  if (length === null && area === null && width === null) return null;
  return (
    <p
      className="measures"
      data-testid="feature-measures"
      data-length-px={length ?? undefined}
      data-area-px={area ?? undefined}
      data-width-px={width ?? undefined}
    >
      {length !== null && (
        <span>
          {area === null ? 'Length' : 'Outline'} {formatLength(length, scale)}
        </span>
      )}
      {width !== null && <span>Width ≈ {formatLength(width, scale)}</span>}
      {area !== null && <span>Area {formatArea(area, scale)}</span>}
    </p>
  );
}

const SORTS: { sort: DamageSort; label: string }[] = [
  { sort: 'layer', label: 'As in the layer' },
  { sort: 'confidence', label: 'Confidence' },
  { sort: 'class', label: 'Class' },
  { sort: 'size', label: 'Size' },
];

/** Counts per class (each toggles a class filter), the minimum confidence and the sort. */
function FilterControls({ all, filter, onChange }: { all: DamageFeature[]; filter: DamageFilter; onChange: (f: DamageFilter) => void }) {
  const toggle = (name: string | null) =>
    onChange({ ...filter, classes: filter.classes.includes(name) ? filter.classes.filter((c) => c !== name) : [...filter.classes, name] });
  return (
    <div className="damage-filter">
      <fieldset className="classes" data-testid="class-counts">
        <legend>Classes</legend>
        {classCounts(all).map(({ name, count }) => (
          <button
            key={name ?? ''}
            type="button"
            aria-pressed={filter.classes.includes(name)}
            data-class={name ?? ''}
            data-count={count}
            onClick={() => toggle(name)}
          >
            {name ?? 'unclassified'} <span className="n">{count}</span>
          </button>
        ))}
      </fieldset>
      <label>
        Confidence at least
        <input
          type="number"
          min={0}
          max={100}
          step={5}
          value={Math.round(filter.minConfidence * 100)}
          onChange={(e) => {
            const v = e.target.valueAsNumber;
            onChange({ ...filter, minConfidence: Number.isFinite(v) ? Math.min(Math.max(v, 0), 100) / 100 : 0 });
          }}
        />
        %
      </label>
      <label>
        Sort
        <select value={filter.sort} onChange={(e) => onChange({ ...filter, sort: e.target.value as DamageSort })}>
          {SORTS.map((s) => (
            <option key={s.sort} value={s.sort}>
              {s.label}
            </option>
          ))}
        </select>
      </label>
    </div>
  );
}

/** Features listed at once: a page of the list (the rest a page away), so a layer of thousands stays quick. */
export const LIST_PAGE = 200;

export function DamageList({
  features,
  all = features,
  filter = ALL_DAMAGE,
  onFilterChange,
  selected,
  onSelect,
  error,
  loading,
  scale = null,
}: DamageListProps) {
  // The page holding the chosen feature, whenever the choice changes; otherwise the reader's.
  const at = features.findIndex((f) => f.index === selected);
  const [page, setPage] = useState(0);
  const [followed, setFollowed] = useState<number | null>(null);
  if (selected !== followed) {
    setFollowed(selected);
    if (at >= 0) setPage(Math.floor(at / LIST_PAGE));
  }
  const pages = Math.max(1, Math.ceil(features.length / LIST_PAGE));
  const first = Math.min(page, pages - 1) * LIST_PAGE;
  const shown = features.slice(first, first + LIST_PAGE);
  return (
    <section className="panel" data-testid="damage-list">
      <h2>
        Damage{' '}
        {all.length > 0 && (
          <span className="count">{features.length === all.length ? all.length : `${features.length} of ${all.length}`}</span>
        )}
      </h2>
      {onFilterChange && all.length > 0 && <FilterControls all={all} filter={filter} onChange={onFilterChange} />}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {loading && <p className="muted">Loading the vector layer…</p>}
      {!error && !loading && all.length === 0 && (
        <p className="muted">
          No vector layer (pass <code>?vectorSrc=</code>).
        </p>
      )}
      {all.length > 0 && features.length === 0 && <p className="muted">No feature passes the filter.</p>}
      {pages > 1 && (
        <nav className="list-pages" aria-label="Pages of the list">
          <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <span data-testid="list-page">
            {first + 1}–{first + shown.length} of {features.length}
          </span>
          <button type="button" disabled={page >= pages - 1} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </nav>
      )}
      <ul>
        {shown.map((f) => (
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
