/**
 * Points clicked on the image, in image pixels, for tools that draw (measuring, new features): while
 * `active`, a quick click adds a point (clamped to the image) instead of OpenSeadragon's own click
 * action, a click within a few screen pixels of the last point adds nothing (a double-click's second
 * click), and a double-click ends the path instead of zooming.
 */
import { useEffect, useRef } from 'react';
import type OpenSeadragon from 'openseadragon';
import type { Position } from '../geojson.js';
import { elementToImagePoint, imagePixelsPerScreenPixel } from './imageSpace.js';

/** Clicks this close (screen pixels) to the last point add nothing. */
const SAME_POINT_PX = 4;

export interface PointCollector {
  /** Whether clicks add points now. */
  active: boolean;
  /** The last point so far, if any. */
  last: Position | undefined;
  onPoint: (point: Position) => void;
  onEnd: () => void;
}

export function usePointCollector(viewer: OpenSeadragon.Viewer | null, width: number, height: number, collector: PointCollector): void {
  const current = useRef(collector);
  current.current = collector;
  const { active } = collector;

  useEffect(() => {
    if (!viewer || !active) return;
    const onClick = (event: OpenSeadragon.CanvasClickEvent) => {
      if (!event.quick) return;
      event.preventDefaultAction = true;
      const [x, y] = elementToImagePoint(viewer, width, event.position);
      const point: Position = [Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)];
      const { last, onPoint } = current.current;
      const near = SAME_POINT_PX * imagePixelsPerScreenPixel(viewer, width);
      if (last && Math.hypot(last[0] - point[0], last[1] - point[1]) <= near) return;
      onPoint(point);
    };
    const onDoubleClick = (event: OpenSeadragon.CanvasDoubleClickEvent) => {
      event.preventDefaultAction = true;
      current.current.onEnd();
    };
    viewer.addHandler('canvas-click', onClick);
    viewer.addHandler('canvas-double-click', onDoubleClick);
    return () => {
      viewer.removeHandler('canvas-click', onClick);
      viewer.removeHandler('canvas-double-click', onDoubleClick);
    };
  }, [viewer, active, width, height]);
}
