/**
 * Where one image lies in OpenSeadragon's viewport. Every layer of an image — the quick preview,
 * the worker's tiles, a stored pyramid, the damage layer — is placed at the same rectangle: the
 * upright image's left edge at x = 0 and its width 1, so viewport units are image pixels divided by
 * the image's width. Layers are placed from the image's own size, never from another layer's, since
 * a preview is a smaller picture of the same image (its pixel grid is not the image's).
 */
import type OpenSeadragon from 'openseadragon';
import { openSeadragon } from './load.js';

/** The placement passed to `addTiledImage` / `open` for every layer of the image. */
export const IMAGE_PLACEMENT = { x: 0, y: 0, width: 1 } as const;

/** The viewport rectangle of the image-pixel rectangle (x, y, w, h) of an image `imageWidth` wide. */
export function imageToViewportRect(imageWidth: number, x: number, y: number, w: number, h: number): OpenSeadragon.Rect {
  const { Rect } = openSeadragon();
  return new Rect(x / imageWidth, y / imageWidth, w / imageWidth, h / imageWidth);
}

/** Image pixels per screen pixel at the viewer's current zoom (animation included). */
export function imagePixelsPerScreenPixel(viewer: OpenSeadragon.Viewer, imageWidth: number): number {
  const screenWidth = viewer.viewport.getZoom(true) * viewer.viewport.getContainerSize().x;
  return screenWidth > 0 ? imageWidth / screenWidth : 0;
}

/** The image pixel under a point of the viewer element (e.g. a click's `position`). */
export function elementToImagePoint(viewer: OpenSeadragon.Viewer, imageWidth: number, position: OpenSeadragon.Point): [number, number] {
  const p = viewer.viewport.pointFromPixel(position, true);
  return [p.x * imageWidth, p.y * imageWidth];
}

/** A view of the image: its centre in image pixels and OpenSeadragon's zoom (1: the image's width fills the viewer's). */
export interface ImageView {
  x: number;
  y: number;
  zoom: number;
}

/** The viewer's current view (animation targets, not the frame in flight). */
export function currentView(viewer: OpenSeadragon.Viewer, imageWidth: number): ImageView {
  const centre = viewer.viewport.getCenter(false);
  return { x: centre.x * imageWidth, y: centre.y * imageWidth, zoom: viewer.viewport.getZoom(false) };
}

/** Moves the viewer to `view` (within its zoom and pan constraints). */
export function showView(viewer: OpenSeadragon.Viewer, imageWidth: number, view: ImageView, immediately: boolean): void {
  const { Point } = openSeadragon();
  viewer.viewport.zoomTo(view.zoom, undefined, immediately);
  viewer.viewport.panTo(new Point(view.x / imageWidth, view.y / imageWidth), immediately);
  viewer.viewport.applyConstraints(immediately);
}

/** The canvas OpenSeadragon draws the tiles into (the canvas drawer's), or null with another drawer. */
export function drawnCanvas(viewer: OpenSeadragon.Viewer): HTMLCanvasElement | null {
  const canvas = (viewer.drawer as unknown as { canvas?: unknown } | undefined)?.canvas;
  return canvas instanceof HTMLCanvasElement ? canvas : null;
}
