/**
 * An element OpenSeadragon keeps over the image's rectangle (`imageSpace`) at every zoom, pan and
 * resize: the host for layers drawn in image pixels (the damage layer, measurements). It carries
 * `--px`, image pixels per screen pixel, so strokes and labels can keep their screen size.
 */
import { useEffect, useMemo, useState } from 'react';
import type OpenSeadragon from 'openseadragon';
import { imagePixelsPerScreenPixel, imageToViewportRect } from './imageSpace.js';

export interface ImageOverlay {
  /** The element to render into (a portal target). */
  host: HTMLDivElement;
  /** Whether the host is placed in the viewer now. */
  placed: boolean;
}

/** A host element with class `className` and `data-testid` `testId`, placed over the `width` × `height` image. */
export function useImageOverlay(
  viewer: OpenSeadragon.Viewer | null,
  width: number,
  height: number,
  className: string,
  testId: string,
): ImageOverlay {
  const host = useMemo(() => {
    const div = document.createElement('div');
    div.className = className;
    div.dataset.testid = testId;
    return div;
  }, [className, testId]);
  const [placed, setPlaced] = useState(false);

  useEffect(() => {
    if (!viewer || width <= 0 || height <= 0) return;
    // From the image's own size, whatever is drawn beneath (a preview, tiles, a stored pyramid).
    const location = imageToViewportRect(width, 0, 0, width, height);
    const scale = () => {
      const px = imagePixelsPerScreenPixel(viewer, width);
      if (px > 0) host.style.setProperty('--px', String(px));
    };
    const place = () => {
      if (viewer.getOverlayById(host)) viewer.updateOverlay(host, location);
      else viewer.addOverlay({ element: host, location });
      setPlaced(true);
      scale();
    };
    // Opening a source clears overlays (`open` closes first), so the host is placed again after
    // every open and whenever a layer joins the world (the preview path adds without opening).
    viewer.addHandler('open', place);
    viewer.world.addHandler('add-item', place);
    viewer.addHandler('update-viewport', scale);
    place();
    return () => {
      viewer.removeHandler('open', place);
      viewer.world.removeHandler('add-item', place);
      viewer.removeHandler('update-viewport', scale);
      if (viewer.getOverlayById(host)) viewer.removeOverlay(host);
      setPlaced(false);
    };
  }, [viewer, host, width, height]);

  return { host, placed };
}
