'use client';
/**
 * A scale bar in the viewer's corner: a round length (1, 2 or 5 × 10ⁿ) of the scale's unit, or of
 * image pixels without a scale, drawn at its on-screen size for the current zoom.
 */
import { useEffect, useState } from 'react';
import type OpenSeadragon from 'openseadragon';
import { formatNumber, roundLengthAtMost } from '../measure.js';
import type { Scale } from '../measure.js';
import { imagePixelsPerScreenPixel } from '../osd/imageSpace.js';

export interface ScaleBarProps {
  /** The viewer whose zoom the bar follows. */
  viewer: OpenSeadragon.Viewer | null;
  /** The oriented image's width in pixels. */
  width: number;
  /** Real units per image pixel; null: the bar measures image pixels. */
  scale: Scale | null;
  /** The longest the bar may be on screen, in CSS pixels (default 160). */
  maxScreenPx?: number;
}

export function ScaleBar({ viewer, width, scale, maxScreenPx = 160 }: ScaleBarProps) {
  /** Image pixels per screen pixel now. */
  const [pxPerScreenPx, setPxPerScreenPx] = useState(0);

  useEffect(() => {
    if (!viewer || width <= 0) return;
    const update = () => setPxPerScreenPx(imagePixelsPerScreenPixel(viewer, width));
    viewer.addHandler('update-viewport', update);
    viewer.addHandler('open', update);
    update();
    return () => {
      viewer.removeHandler('update-viewport', update);
      viewer.removeHandler('open', update);
    };
  }, [viewer, width]);

  const unitsPerScreenPx = pxPerScreenPx * (scale?.value ?? 1);
  const length = roundLengthAtMost(unitsPerScreenPx * maxScreenPx);
  if (!(length > 0)) return null;
  const screenPx = length / unitsPerScreenPx;
  const unit = scale?.unit ?? 'px';
  return (
    <div className="scale-bar" data-testid="scale-bar" data-length={length} data-unit={unit} data-screen-px={screenPx}>
      <div className="bar" style={{ width: `${screenPx}px` }} />
      <span>
        {formatNumber(length)} {unit}
      </span>
    </div>
  );
}
