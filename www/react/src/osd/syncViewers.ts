/**
 * Two viewers of two images of the same place, kept on the same point: at every frame either one
 * draws, the other is moved (immediately) to show the corresponding part of its image, at the same
 * scale and turned by the alignment's rotation. A viewer leads only when it has moved by itself (a
 * person's drag, zoom or animation): one still where it was last put follows, so the two never chase
 * each other.
 */
import type OpenSeadragon from 'openseadragon';
import type { Alignment } from '../align.js';
import { alignPoint, invertAlignment } from '../align.js';
import { imagePixelsPerScreenPixel } from './imageSpace.js';
import { openSeadragon } from './load.js';

/** A viewer and the width of the image it shows. */
export interface SyncedViewer {
  viewer: OpenSeadragon.Viewer;
  width: number;
}

/** Closer than this (screen pixels, and relative zoom), a follower counts as in place. */
const IN_PLACE_PX = 0.25;
const IN_PLACE_ZOOM = 1e-6;

/** Where a viewport is now (animation included). */
interface ViewState {
  x: number;
  y: number;
  zoom: number;
  rotation: number;
}

function stateOf(viewer: OpenSeadragon.Viewer): ViewState {
  const c = viewer.viewport.getCenter(true);
  return { x: c.x, y: c.y, zoom: viewer.viewport.getZoom(true), rotation: viewer.viewport.getRotation(true) };
}

/** Whether `viewer` is where `state` says, to a fraction of a screen pixel. */
function isAt(viewer: OpenSeadragon.Viewer, state: ViewState): boolean {
  const now = stateOf(viewer);
  const screen = now.zoom * viewer.viewport.getContainerSize().x;
  return (
    Math.hypot(now.x - state.x, now.y - state.y) * screen < IN_PLACE_PX &&
    Math.abs(now.zoom / state.zoom - 1) < IN_PLACE_ZOOM &&
    Math.abs(now.rotation - state.rotation) < 1e-6
  );
}

/** Moves `to` to show what `from` shows, through `map` (from's image pixels → to's); returns where `to` now is. */
function follow(from: SyncedViewer, to: SyncedViewer, map: Alignment): ViewState | null {
  const { Point } = openSeadragon();
  const centre = from.viewer.viewport.getCenter(true);
  const [x, y] = alignPoint(map, [centre.x * from.width, centre.y * from.width]);
  const pixels = imagePixelsPerScreenPixel(from.viewer, from.width) * map.scale;
  const containerWidth = to.viewer.viewport.getContainerSize().x;
  if (!(pixels > 0) || !(containerWidth > 0)) return null;
  const target = {
    x: x / to.width,
    y: y / to.width,
    zoom: to.width / (pixels * containerWidth),
    rotation: from.viewer.viewport.getRotation(true) - (map.rotation * 180) / Math.PI,
  };
  if (!isAt(to.viewer, target)) {
    to.viewer.viewport.setRotation(target.rotation, true);
    to.viewer.viewport.zoomTo(target.zoom, undefined, true);
    to.viewer.viewport.panTo(new Point(target.x, target.y), true);
  }
  return stateOf(to.viewer);
}

/** Keeps `a` and `b` on the same point through `alignment` (a's image pixels → b's); returns the undo. */
export function syncViewers(a: SyncedViewer, b: SyncedViewer, alignment: Alignment): () => void {
  const back = invertAlignment(alignment);
  // Where each viewer was last put by the other: still there, it does not lead.
  const put = new Map<OpenSeadragon.Viewer, ViewState>();
  const leads = (from: SyncedViewer, to: SyncedViewer, map: Alignment) => () => {
    const placed = put.get(from.viewer);
    if (placed && isAt(from.viewer, placed)) return;
    put.delete(from.viewer);
    const now = follow(from, to, map);
    if (now) put.set(to.viewer, now);
  };
  const aLeads = leads(a, b, alignment);
  const bLeads = leads(b, a, back);
  a.viewer.addHandler('update-viewport', aLeads);
  b.viewer.addHandler('update-viewport', bLeads);
  aLeads();
  return () => {
    a.viewer.removeHandler('update-viewport', aLeads);
    b.viewer.removeHandler('update-viewport', bLeads);
  };
}
