'use client';
/**
 * The OpenSeadragon viewer: created once, destroyed on unmount; the tile source is swapped when it
 * changes. Its element carries the state contract the end-to-end tests read.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { CSSProperties, ReactNode, RefObject } from 'react';
import type OpenSeadragon from 'openseadragon';
import { loadOpenSeadragon, loadTileSources } from '../osd/load.js';
import { IMAGE_PLACEMENT, showView } from '../osd/imageSpace.js';
import type { ImageView } from '../osd/imageSpace.js';
import { decodeCount } from '../hooks/useTilingImage.js';
import type { ImageTileSource, TilingStatus } from '../hooks/useTilingImage.js';

export type ViewerState = 'idle' | 'loading' | 'ready' | 'error';

export interface ViewerProps {
  /** What to show: the hook's tile source; null shows nothing. */
  tileSource: ImageTileSource | null;
  /** The hook's status: drives the messages and the element's data-* attributes. */
  status: TilingStatus;
  /** The viewer, once created (and null after it is destroyed), for overlays and navigation. */
  onViewer?: (viewer: OpenSeadragon.Viewer | null) => void;
  /** Drawn over the viewer (e.g. a VectorOverlay). */
  children?: ReactNode;
  /** Where to open each image instead of the whole image (a shared link's view); read when an image opens. */
  initialView?: ImageView | null;
  /** Which viewer this is where there are several (`data-viewer`, e.g. `main`, `compare`). */
  name?: string;
  /** More classes and styles for the frame around the viewer (e.g. a comparison's curtain). */
  className?: string;
  style?: CSSProperties;
}

/** Two frames: the tiles that completed the view are painted, not only decoded. */
const afterPaint = (f: () => void) => requestAnimationFrame(() => requestAnimationFrame(f));

/** Takes the preview out of the world. Refs only, so the effects calling it need not depend on it. */
function removePreview(v: OpenSeadragon.Viewer, item: RefObject<OpenSeadragon.TiledImage | null>, pending: RefObject<boolean>): void {
  if (item.current) v.world.removeItem(item.current);
  item.current = null;
  pending.current = false;
}

export function Viewer({ tileSource, status, onViewer, children, initialView = null, name, className, style }: ViewerProps) {
  const element = useRef<HTMLDivElement>(null);
  const [viewer, setViewer] = useState<OpenSeadragon.Viewer | null>(null);
  const [drawn, setDrawn] = useState<ImageTileSource | null>(null);
  /** `performance.now()` when the current source's first full view was painted. */
  const [drawnAt, setDrawnAt] = useState<number | null>(null);
  /** A stored pyramid's tiles asked for ahead of OpenSeadragon, and those it took, at the first full view. */
  const [ahead, setAhead] = useState<{ asked: number; taken: number } | null>(null);
  const [fullyLoaded, setFullyLoaded] = useState(false);
  const [tileError, setTileError] = useState<string | null>(null);
  const [animating, setAnimating] = useState(false);
  // Counts finished view changes, so a test can wait for the one it caused.
  const [animations, setAnimations] = useState(0);
  /** `performance.now()` when the preview (a large image's quick low-resolution picture) was painted. */
  const [previewAt, setPreviewAt] = useState<number | null>(null);
  /** The preview in the world, beneath the tiles until they have drawn a full view. */
  const previewItem = useRef<OpenSeadragon.TiledImage | null>(null);
  const previewPending = useRef(false);
  const drawnRef = useRef(false);
  const preview = status.preview;
  /** OpenSeadragon could not be loaded (a chunk failed to download). */
  const [loadError, setLoadError] = useState<string | null>(null);
  // Read when the image's tiles join the viewer, not when they change.
  const opening = useRef({ view: initialView, width: status.info?.width });
  opening.current = { view: initialView, width: status.info?.width };

  // biome-ignore lint/correctness/useExhaustiveDependencies: the viewer is created once per mount; onViewer is read at creation only.
  useLayoutEffect(() => {
    const el = element.current;
    if (!el) return;
    let live = true;
    let created: OpenSeadragon.Viewer | null = null;
    // The tile sources' chunk too, beside OpenSeadragon's, so that an image set at mount (a stored
    // pyramid's tiles in one round trip) does not wait for it after; a failure is reported where it is used.
    loadTileSources().catch(() => {});
    loadOpenSeadragon().then(
      (OSD) => {
        if (live) created = createViewer(OSD, el);
      },
      (e: Error) => live && setLoadError(`Could not load the viewer (OpenSeadragon): ${e.message}`),
    );
    return () => {
      live = false;
      if (!created) return;
      onViewer?.(null);
      setViewer(null);
      created.destroy();
    };
  }, []);

  const createViewer = (OSD: typeof OpenSeadragon, el: HTMLElement): OpenSeadragon.Viewer => {
    const v = OSD({
      element: el,
      showNavigationControl: false,
      // Tiles come from the worker; decoding a big image can keep the first one waiting a while.
      timeout: 180_000,
      visibilityRatio: 0.5,
      constrainDuringPan: false,
      maxZoomPixelRatio: 4,
      // The WebGL drawer falls back to software GL without a GPU (CI, headless, many VMs), where it
      // manages a few frames a second and OpenSeadragon loads one tile per frame; canvas 2D stays fast.
      drawer: 'canvas',
      // OpenSeadragon starts one tile load per frame by default, which spreads a first view of ~30
      // tiles over half a second; stored tiles load in parallel, and the worker queues its own.
      maxTilesPerFrame: 16,
      gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
    });
    v.addHandler('animation-start', () => setAnimating(true));
    v.addHandler('animation-finish', () => {
      setAnimating(false);
      setAnimations((n) => n + 1);
    });
    setViewer(v);
    onViewer?.(v);
    return v;
  };

  useEffect(() => {
    setPreviewAt(null);
    if (!viewer || !preview) return;
    let live = true;
    previewPending.current = true;
    viewer.addTiledImage({
      // One level: the preview is already about the screen's size, so no pyramid of it is built.
      tileSource: { type: 'image', url: preview, buildPyramid: false },
      ...IMAGE_PLACEMENT,
      // Beneath the tiles, whenever they come.
      index: 0,
      success: (e) => {
        const item = (e as unknown as { item: OpenSeadragon.TiledImage }).item;
        if (!live || drawnRef.current) {
          viewer.world.removeItem(item);
          return;
        }
        previewItem.current = item;
        if (viewer.world.getItemCount() === 1) viewer.viewport.goHome(true);
        item.addHandler('fully-loaded-change', (ev) => {
          if (!(ev as unknown as { fullyLoaded: boolean }).fullyLoaded) return;
          afterPaint(() => live && previewItem.current === item && setPreviewAt((at) => at ?? performance.now()));
        });
      },
      error: () => {
        previewPending.current = false;
      },
    });
    return () => {
      live = false;
      removePreview(viewer, previewItem, previewPending);
    };
  }, [viewer, preview]);

  // A stored pyramid's whole-image view: its tiles are asked for now, all together, while the
  // viewer opens the source (and before OpenSeadragon exists at all, on a page still starting).
  useLayoutEffect(() => {
    const el = element.current;
    if (!el || tileSource?.kind !== 'store' || opening.current.view) return;
    tileSource.prefetchHome(el.clientWidth, el.clientHeight);
    return () => tileSource.cancelPrefetch();
  }, [tileSource]);

  useEffect(() => {
    if (!viewer) return;
    drawnRef.current = false;
    setDrawn(null);
    setDrawnAt(null);
    setAhead(null);
    setFullyLoaded(false);
    setTileError(null);
    if (!tileSource) {
      viewer.close();
      return;
    }
    let live = true;
    const onAddItem = (e: OpenSeadragon.WorldEvent) => {
      const item = (e as unknown as { item: OpenSeadragon.TiledImage }).item;
      if (item.source !== tileSource) return;
      // Stored tiles arrive together: the view's own level is asked for alone, not after every
      // coarser level (which would take the browser's few connections for a round first). Set on
      // the item, since OpenSeadragon takes this option from the viewer only; read at its first update.
      if (tileSource.kind === 'store') (item as unknown as { immediateRender: boolean }).immediateRender = true;
      item.addHandler('fully-loaded-change', (ev) => {
        const full = (ev as unknown as { fullyLoaded: boolean }).fullyLoaded;
        if (!full) return setFullyLoaded(false);
        afterPaint(() => {
          if (!live || !item.getFullyLoaded()) return;
          drawnRef.current = true;
          removePreview(viewer, previewItem, previewPending);
          setFullyLoaded(true);
          setDrawn((d) => {
            if (d !== tileSource) {
              setDrawnAt(performance.now());
              setAhead(tileSource.kind === 'store' ? { ...tileSource.ahead } : null);
            }
            return tileSource;
          });
        });
      });
    };
    const onTileFailed = (e: OpenSeadragon.ViewerEvent) => {
      const { message, tiledImage } = e as unknown as { message?: string; tiledImage?: OpenSeadragon.TiledImage };
      // Failures of a replaced image's tiles are expected and not this image's problem.
      if (live && message && tiledImage?.source === tileSource) setTileError(message);
    };
    viewer.world.addHandler('add-item', onAddItem);
    viewer.addHandler('tile-load-failed', onTileFailed);
    // A stored pyramid is read as plain tile URLs: anonymous CORS keeps the canvas readable across
    // origins, and a store that wants a token for reads gets it through XHR.
    const headers = tileSource.kind === 'store' ? tileSource.readHeaders : {};
    const ajax = Object.keys(headers).length > 0;
    const item =
      tileSource.kind === 'store'
        ? {
            tileSource,
            ...IMAGE_PLACEMENT,
            crossOriginPolicy: 'Anonymous' as const,
            loadTilesWithAjax: ajax,
            ajaxHeaders: ajax ? headers : undefined,
          }
        : { tileSource, ...IMAGE_PLACEMENT };
    // A shared view replaces the whole image once the tiles are in: after `open` has gone home, or
    // after `addTiledImage` has added them over the preview (which went home itself).
    const applyView = () => {
      const { view, width } = opening.current;
      if (live && view && width) showView(viewer, width, view, true);
    };
    // Over the preview if there is one; `open` would close it.
    if (previewPending.current) viewer.addTiledImage({ ...item, success: applyView });
    else {
      viewer.addOnceHandler('open', applyView);
      viewer.open(item);
    }
    return () => {
      live = false;
      viewer.removeHandler('open', applyView);
      viewer.world.removeHandler('add-item', onAddItem);
      viewer.removeHandler('tile-load-failed', onTileFailed);
    };
  }, [viewer, tileSource]);

  const state: ViewerState =
    status.phase === 'error' || loadError
      ? 'error'
      : status.phase === 'idle'
        ? 'idle'
        : drawn && drawn === tileSource
          ? 'ready'
          : 'loading';
  const size = status.info ?? status.metadata;
  // Milliseconds since setImageSrc, for benchmarks: decoded, first full view painted, pyramid made.
  const since = (at: number | null) => (at !== null && status.startedAt !== null ? Math.round(at - status.startedAt) : undefined);

  return (
    <div className={className ? `viewer-frame ${className}` : 'viewer-frame'} style={style}>
      <div
        ref={element}
        className="viewer"
        data-testid="viewer"
        data-viewer={name}
        data-state={state}
        data-source={status.source ?? undefined}
        data-pyramid-id={status.info?.pyramidId}
        data-upload={status.upload.state}
        data-upload-sent={status.upload.sent}
        data-upload-total={status.upload.total}
        data-upload-found={status.upload.found}
        data-upload-resent={status.upload.resent}
        data-upload-error={status.upload.error?.message}
        data-decodes={decodeCount()}
        data-error={state === 'error' ? (status.error?.message ?? loadError ?? undefined) : undefined}
        data-error-code={state === 'error' ? status.error?.code : undefined}
        data-width={size?.width}
        data-height={size?.height}
        data-fully-loaded={state === 'ready' ? String(fullyLoaded) : undefined}
        data-animating={String(animating)}
        data-animations={animations}
        data-tiles-done={status.tilesDone}
        data-tiles-total={status.tilesTotal}
        data-tiling={status.phase}
        data-ms-opened={since(status.openedAt)}
        data-ms-first-view={state === 'ready' ? since(drawnAt) : undefined}
        data-tiles-ahead={state === 'ready' ? ahead?.asked : undefined}
        data-tiles-ahead-taken={state === 'ready' ? ahead?.taken : undefined}
        data-ms-preview={since(previewAt)}
        data-preview-decoder={status.previewDecoder ?? undefined}
        data-ms-pyramid={since(status.doneAt)}
        data-tiler-workers={status.tilers?.workers}
        data-tiler-memory={status.tilers?.memory}
        data-ms-saved={since(status.savedAt)}
      />
      {viewer && (
        <div className="viewer-controls">
          <button type="button" title="Zoom in" aria-label="Zoom in" onClick={() => viewer.viewport.zoomBy(2)}>
            +
          </button>
          <button type="button" title="Zoom out" aria-label="Zoom out" onClick={() => viewer.viewport.zoomBy(0.5)}>
            −
          </button>
          <button type="button" title="Whole image" aria-label="Whole image" onClick={() => viewer.viewport.goHome()}>
            ⌂
          </button>
        </div>
      )}
      <ViewerMessage state={state} status={status} tileError={tileError ?? loadError} overPicture={previewAt !== null} />
      {children}
    </div>
  );
}

function megabytes(n: number): string {
  return `${(n / 1048576).toFixed(1)} MB`;
}

function ViewerMessage({
  state,
  status,
  tileError,
  overPicture,
}: {
  state: ViewerState;
  status: TilingStatus;
  tileError: string | null;
  /** A preview is showing: keep the message out of its way. */
  overPicture: boolean;
}) {
  if (state === 'idle') {
    return (
      <div className="viewer-message">
        Open an image: pick or drop a file, or pass <code>?src=</code> with its URL.
      </div>
    );
  }
  if (state === 'error') {
    return (
      <div className="viewer-message error" role="alert">
        <strong>Cannot show this image.</strong>
        <p>{status.error?.message ?? tileError}</p>
      </div>
    );
  }
  if (state === 'loading') {
    let text = 'Loading…';
    if (status.phase === 'fetching') {
      text = status.total
        ? `Downloading ${megabytes(status.loaded)} of ${megabytes(status.total)}`
        : `Downloading ${megabytes(status.loaded)}`;
    } else if (status.phase === 'decoding') text = 'Decoding…';
    else if (status.phase === 'tiling' || status.phase === 'done') text = 'Drawing…';
    const fraction = status.phase === 'fetching' && status.total ? status.loaded / status.total : null;
    return (
      <div className={overPicture ? 'viewer-message corner' : 'viewer-message'} role="status">
        <p>{text}</p>
        <progress max={1} value={fraction ?? undefined} />
      </div>
    );
  }
  return tileError ? (
    <div className="viewer-toast" role="alert">
      {tileError}
    </div>
  ) : null;
}
