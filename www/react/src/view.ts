/**
 * A shareable view of the workspace — where the image is looked at and which feature is chosen — and
 * its text form for a URL (`x,y,zoom` or `x,y,zoom,feature`), so a link reopens the same view.
 */
import type { ImageView } from './osd/imageSpace.js';

/** What a shared link restores. */
export interface WorkspaceView extends ImageView {
  /** The chosen feature's index in the vector layer, or null. */
  feature: number | null;
}

/** The most features a view may name (a bound on what a link can ask for). */
const MAX_FEATURE = 10_000_000;

/** Numbers with at most 2 decimals for pixels and 4 significant-enough decimals for the zoom. */
export function formatView(view: WorkspaceView): string {
  const parts = [view.x.toFixed(2), view.y.toFixed(2), view.zoom.toPrecision(6)].map((p) => String(Number(p)));
  if (view.feature !== null) parts.push(String(view.feature));
  return parts.join(',');
}

/** `formatView`'s text as a view; null for anything else (never throws on what a link holds). */
export function parseView(text: string | null | undefined): WorkspaceView | null {
  if (!text || text.length > 100) return null;
  const parts = text.split(',');
  if (parts.length < 3 || parts.length > 4) return null;
  const [x, y, zoom] = parts.slice(0, 3).map(Number);
  if (![x, y, zoom].every(Number.isFinite) || !(zoom > 0)) return null;
  let feature: number | null = null;
  if (parts.length === 4) {
    if (!/^\d+$/.test(parts[3])) return null;
    feature = Number(parts[3]);
    if (feature > MAX_FEATURE) return null;
  }
  return { x, y, zoom, feature };
}
