'use client';
/**
 * The damage layer on one canvas over the viewer, redrawn for every frame OpenSeadragon draws: for
 * layers of thousands of features, where one SVG element each would make every pan slow. A click on
 * the image chooses the feature under it. The element carries `data-draws`, `data-last-draw-ms` and
 * `data-drawn` (features in the last frame) for benchmarks.
 */
import { useEffect, useRef } from 'react';
import type OpenSeadragon from 'openseadragon';
import type { DamageFeature } from '../geojson.js';
import { drawFeatures, featureAt, featureStyle, imageToScreen } from '../osd/featureCanvas.js';
import { elementToImagePoint, imagePixelsPerScreenPixel } from '../osd/imageSpace.js';

export interface VectorCanvasProps {
  viewer: OpenSeadragon.Viewer | null;
  /** The oriented image's width. */
  width: number;
  /** The features, in image pixels (`parseDamage`). */
  features: DamageFeature[];
  /** The highlighted feature's `index`, or null. */
  selected: number | null;
  /** Called with a feature's `index` when it is clicked; none: clicks are left to other tools. */
  onSelect?: (index: number) => void;
}

/** How far from a line or point a click still chooses it, in screen pixels. */
const HIT_PX = 6;

export function VectorCanvas({ viewer, width, features, selected, onSelect }: VectorCanvasProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const live = useRef({ features, selected, onSelect });
  live.current = { features, selected, onSelect };
  const redraw = useRef<() => void>(() => {});

  useEffect(() => {
    const el = canvas.current;
    if (!viewer || !el || width <= 0) return;
    let draws = 0;
    const draw = () => {
      const started = performance.now();
      const { clientWidth: w, clientHeight: h } = el;
      const dpr = window.devicePixelRatio || 1;
      if (el.width !== Math.round(w * dpr) || el.height !== Math.round(h * dpr)) {
        el.width = Math.round(w * dpr);
        el.height = Math.round(h * dpr);
      }
      const ctx = el.getContext('2d');
      const t = imageToScreen(viewer, width);
      if (!ctx || !t) return;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      const drawn = drawFeatures(ctx, live.current.features, t, w, h, live.current.selected, featureStyle(el));
      draws++;
      el.dataset.draws = String(draws);
      el.dataset.drawn = String(drawn);
      el.dataset.lastDrawMs = (performance.now() - started).toFixed(2);
    };
    const onClick = (event: OpenSeadragon.CanvasClickEvent) => {
      const { onSelect: select, features: all } = live.current;
      if (!select || !event.quick) return;
      const p = elementToImagePoint(viewer, width, event.position);
      const hit = featureAt(all, p, HIT_PX * imagePixelsPerScreenPixel(viewer, width));
      if (hit) select(hit.index);
    };
    redraw.current = draw;
    viewer.addHandler('update-viewport', draw);
    viewer.addHandler('canvas-click', onClick);
    draw();
    return () => {
      viewer.removeHandler('update-viewport', draw);
      viewer.removeHandler('canvas-click', onClick);
      redraw.current = () => {};
    };
  }, [viewer, width]);

  // A new layer or choice is drawn at once, not at the next move.
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new layer or choice is the reason to redraw.
  useEffect(() => redraw.current(), [features, selected]);

  return <canvas ref={canvas} className="vector-canvas" data-testid="vector-canvas" data-features={features.length} />;
}
