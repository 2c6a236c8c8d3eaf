/**
 * The current view as a PNG: the drawn tiles (with the enhancement filter, if any), the damage layer
 * and a scale bar, at the canvas's own resolution.
 */
import type OpenSeadragon from 'openseadragon';
import type { DamageFeature } from '../geojson.js';
import { formatNumber, roundLengthAtMost } from '../measure.js';
import type { Scale } from '../measure.js';
import { drawFeatures, featureStyle, imageToScreen } from './featureCanvas.js';
import { drawnCanvas, imagePixelsPerScreenPixel } from './imageSpace.js';

export interface ViewPicture {
  /** The oriented image's width. */
  width: number;
  /** The features drawn over the image, and the chosen one. */
  features: readonly DamageFeature[];
  selected: number | null;
  /** Real units per image pixel for the scale bar; null: image pixels. */
  scale: Scale | null;
  /** Where the layer's colours are read from (the workspace element). */
  styleFrom: Element;
}

/** The longest the scale bar may be, in CSS pixels (as the on-screen bar). */
const BAR_MAX_PX = 160;

/** Draws the scale bar for `unitsPerScreenPx` in the bottom-left corner of a `height`-tall view. */
function drawScaleBar(ctx: CanvasRenderingContext2D, height: number, unitsPerScreenPx: number, unit: string): void {
  const length = roundLengthAtMost(unitsPerScreenPx * BAR_MAX_PX);
  if (!(length > 0)) return;
  const bar = length / unitsPerScreenPx;
  const label = `${formatNumber(length)} ${unit}`;
  ctx.font = '12px system-ui, sans-serif';
  const boxWidth = Math.max(bar, ctx.measureText(label).width) + 16;
  const [x, y] = [10, height - 10 - 34];
  ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
  ctx.fillRect(x, y, boxWidth, 34);
  ctx.fillStyle = '#1d2330';
  ctx.fillRect(x + 8, y + 8, bar, 2);
  ctx.fillRect(x + 8, y + 4, 2, 6);
  ctx.fillRect(x + 8 + bar - 2, y + 4, 2, 6);
  ctx.textBaseline = 'top';
  ctx.fillText(label, x + 8, y + 16);
}

/** The view as a PNG; throws when the viewer draws no canvas to read. */
export async function exportView(viewer: OpenSeadragon.Viewer, picture: ViewPicture): Promise<Blob> {
  const source = drawnCanvas(viewer);
  const t = imageToScreen(viewer, picture.width);
  if (!source || !t || source.clientWidth === 0) throw new Error('There is no drawn view to export yet.');
  const out = document.createElement('canvas');
  out.width = source.width;
  out.height = source.height;
  const ctx = out.getContext('2d');
  if (!ctx) throw new Error('This browser cannot draw the export.');
  ctx.filter = source.style.filter || 'none';
  ctx.drawImage(source, 0, 0);
  ctx.filter = 'none';
  const dpr = source.width / source.clientWidth;
  const [w, h] = [source.clientWidth, source.clientHeight];
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawFeatures(ctx, picture.features, t, w, h, picture.selected, featureStyle(picture.styleFrom));
  const pxPerScreenPx = imagePixelsPerScreenPixel(viewer, picture.width);
  drawScaleBar(ctx, h, pxPerScreenPx * (picture.scale?.value ?? 1), picture.scale?.unit ?? 'px');
  return new Promise((resolve, reject) =>
    out.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The view could not be encoded as PNG.'))), 'image/png'),
  );
}
