/**
 * Which vector features are listed and drawn, in what order: a class filter, a minimum confidence and
 * a sort, applied to the parsed layer. Features without a confidence always pass the minimum (they are
 * often added by a person); features without a class form their own class, `null`.
 */
import type { DamageFeature } from './geojson.js';
import { measureGeometry } from './measure.js';

export type DamageSort = 'layer' | 'confidence' | 'class' | 'size';

export interface DamageFilter {
  /** The classes shown; empty: every class. `null` stands for features without a class. */
  classes: (string | null)[];
  /** The least confidence shown, 0–1. */
  minConfidence: number;
  /** The list's order: as in the layer, by confidence (highest first), by class name, or by size (largest first). */
  sort: DamageSort;
}

/** Every feature, in the layer's order. */
export const ALL_DAMAGE: DamageFilter = { classes: [], minConfidence: 0, sort: 'layer' };

/** How many features each class has, most first (then by name; unclassified last). */
export function classCounts(features: readonly DamageFeature[]): { name: string | null; count: number }[] {
  const counts = new Map<string | null, number>();
  for (const f of features) counts.set(f.class, (counts.get(f.class) ?? 0) + 1);
  return [...counts.entries()]
    .map(([name, count]) => ({ name, count }))
    .sort((a, b) => b.count - a.count || (a.name === null ? 1 : b.name === null ? -1 : a.name.localeCompare(b.name)));
}

/** A feature's size for sorting: its area, else its length, else 0. */
function size(f: DamageFeature): number {
  const m = measureGeometry(f.geometry);
  return m.area ?? m.length ?? 0;
}

/** The features `filter` keeps, in its order (ties in the layer's order). */
export function listDamage(features: readonly DamageFeature[], filter: DamageFilter): DamageFeature[] {
  const kept = features.filter(
    (f) =>
      (filter.classes.length === 0 || filter.classes.includes(f.class)) && (f.confidence === null || f.confidence >= filter.minConfidence),
  );
  const byLayer = (a: DamageFeature, b: DamageFeature) => a.index - b.index;
  const nullsLast = <T>(a: T | null, b: T | null, cmp: (x: T, y: T) => number) =>
    a === null ? (b === null ? 0 : 1) : b === null ? -1 : cmp(a, b);
  switch (filter.sort) {
    case 'layer':
      return kept.sort(byLayer);
    case 'confidence':
      return kept.sort((a, b) => nullsLast(a.confidence, b.confidence, (x, y) => y - x) || byLayer(a, b));
    case 'class':
      return kept.sort((a, b) => nullsLast(a.class, b.class, (x, y) => x.localeCompare(y)) || byLayer(a, b));
    case 'size': {
      const sizes = new Map(kept.map((f) => [f.index, size(f)]));
      return kept.sort((a, b) => (sizes.get(b.index) ?? 0) - (sizes.get(a.index) ?? 0) || byLayer(a, b));
    }
  }
}

/** The feature after (`step` 1) or before (−1) `current` in `list`, wrapping; the first or last when none is chosen. */
export function stepThrough(list: readonly DamageFeature[], current: number | null, step: 1 | -1): number | null {
  if (list.length === 0) return null;
  const at = list.findIndex((f) => f.index === current);
  if (at < 0) return list[step === 1 ? 0 : list.length - 1].index;
  return list[(at + step + list.length) % list.length].index;
}
