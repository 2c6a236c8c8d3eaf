'use client';
/** The image workspace: the tiled image with its damage layer, metadata and damage list. */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type OpenSeadragon from 'openseadragon';
import { useTilingImage } from '../hooks/useTilingImage.js';
import type { ImageInput } from '../hooks/useTilingImage.js';
import type { Geometry as TileGeometry, Options } from '@tessera/tiler-wasm';
import type { WorkerSettings } from '../worker/client.js';
import { toFeatureCollection } from '../geojson.js';
import { loadVectors } from '../loadVectors.js';
import type { DamageFeature, FeatureCollection } from '../geojson.js';
import { useEditHistory } from '../hooks/useEditHistory.js';
import { FeatureProperties, LayerEditor } from './LayerEditor.js';
import { Viewer } from './Viewer.js';
import { VectorOverlay } from './VectorOverlay.js';
import { VectorCanvas } from './VectorCanvas.js';
import { CompareView } from './CompareView.js';
import type { Alignment } from '../align.js';
import { exportView } from '../osd/exportView.js';
import { saveFile } from '../saveFile.js';
import { MetadataPanel } from './MetadataPanel.js';
import { DamageList } from './DamageList.js';
import { StorePanel } from './StorePanel.js';
import { ServerTiling, needsServer } from './ServerTiling.js';
import { MeasureTools } from './MeasureTools.js';
import { ScaleBar } from './ScaleBar.js';
import { EnhanceControls } from './EnhanceControls.js';
import type { Scale } from '../measure.js';
import { currentView, imageToViewportRect } from '../osd/imageSpace.js';
import type { WorkspaceView } from '../view.js';
import { ALL_DAMAGE, listDamage, stepThrough } from '../damageList.js';
import type { DamageFilter } from '../damageList.js';
import { useViewerKeys } from '../osd/useViewerKeys.js';

export interface WorkspaceProps {
  /** The image: a URL (fetched by the worker; needs CORS if on another site) or a File. */
  src: ImageInput;
  /** A GeoJSON FeatureCollection in the oriented image's pixel coordinates. */
  vectorSrc?: string | null;
  /**
   * tile-store's base URL: pyramids it has are opened from it without tiling, and what is tiled
   * here is uploaded to it. None: the browser tiles alone.
   */
  store?: string | null;
  /** Bearer token for the store (the signed-in user's JWT). */
  token?: string | null;
  /** Bytes per upload request (default about 4 MiB). */
  storeBatchBytes?: number | null;
  /** The image's pyramid id, when the app knows it: a stored pyramid then opens without downloading the image. */
  pyramidId?: string | null;
  /**
   * With `pyramidId` and a store, that pyramid's geometry as recorded with the id (`status.info`):
   * its tiles are requested at once, without a manifest request first (the store is still asked beside them).
   */
  pyramidGeometry?: TileGeometry | null;
  /** Tiling options (tile size, overlap, format, quality, decoding limits); default: as `vips dzsave`. Read when an image starts. */
  options?: Options;
  /** Where the workers and the WebAssembly module come from (CDNs, strict CSPs); default: beside the package. */
  workers?: WorkerSettings;
  /** Real units per image pixel (e.g. `{ value: 0.2, unit: 'mm' }`) for the scale bar and measurements; default: pixels. */
  scale?: Scale | null;
  /** Called with the scale the calibration tool sets, so the app can keep it with the image. */
  onScaleChange?: (scale: Scale) => void;
  /** Where to open the image and which feature to choose (a shared link's view); read when an image opens. */
  view?: WorkspaceView | null;
  /** Called when the view settles or the chosen feature changes, e.g. to keep it in the URL (`formatView`). */
  onViewChange?: (view: WorkspaceView) => void;
  /** Whether the damage layer can be edited (the Edit toolbar); default true. */
  editable?: boolean;
  /** Called with the whole layer as a GeoJSON FeatureCollection in image pixels after each edit, undo or redo. */
  onVectorChange?: (layer: FeatureCollection) => void;
  /** How the damage layer is drawn: one SVG element a feature, one canvas, or (default) SVG up to 1,000 listed features. */
  vectorRenderer?: 'auto' | 'svg' | 'canvas';
  /** A second inspection to compare with, beside the image: its image and damage layer. */
  compareSrc?: ImageInput | null;
  compareVectorSrc?: string | null;
  /** The first image's pixels → the second's (`alignmentFrom`); none: the same relative place until Align sets one. */
  alignment?: Alignment | null;
  /** Called with the alignment Align sets (two pairs of corresponding points), so the app can keep it. */
  onAlignmentChange?: (alignment: Alignment) => void;
}

/** Where the vector layer's loading stands (its features are in the edit history). */
interface VectorLayer {
  error: string | null;
  loading: boolean;
}

/** Listed features drawn as SVG elements; more go onto one canvas. */
const SVG_FEATURES_MAX = 1000;

/** Narrower than this, the panels fold into a bottom sheet. */
const NARROW_PX = 900;

export function Workspace({
  src,
  vectorSrc,
  store,
  token,
  storeBatchBytes,
  pyramidId,
  pyramidGeometry,
  options,
  workers,
  scale: scaleProp = null,
  onScaleChange,
  view = null,
  onViewChange,
  editable = true,
  onVectorChange,
  vectorRenderer = 'auto',
  compareSrc = null,
  compareVectorSrc = null,
  alignment = null,
  onAlignmentChange,
}: WorkspaceProps) {
  const [tileSource, setImageSrc, status] = useTilingImage(options, { store, token, batchBytes: storeBatchBytes, workers });
  const [viewer, setViewer] = useState<OpenSeadragon.Viewer | null>(null);
  const [layer, setLayer] = useState<VectorLayer>({ error: null, loading: false });
  const history = useEditHistory<DamageFeature[]>([]);
  const features = history.value;
  const [selected, setSelected] = useState<number | null>(null);
  const [filter, setFilter] = useState<DamageFilter>(ALL_DAMAGE);
  const listed = useMemo(() => listDamage(features, filter), [features, filter]);
  const [measuring, setMeasuring] = useState(false);
  const [editing, setEditing] = useState(false);
  const [drawing, setDrawing] = useState(false);
  const [exportError, setExportError] = useState<string | null>(null);
  const [scale, setScale] = useState<Scale | null>(scaleProp);

  // The app's scale wins whenever it changes; a calibration replaces it until then.
  const [scaleFrom, setScaleFrom] = useState<Scale | null>(scaleProp);
  if (scaleProp?.value !== scaleFrom?.value || scaleProp?.unit !== scaleFrom?.unit) {
    setScaleFrom(scaleProp);
    setScale(scaleProp);
  }
  const calibrated = useCallback(
    (next: Scale) => {
      setScale(next);
      onScaleChange?.(next);
    },
    [onScaleChange],
  );

  // The feature a shared view chooses, once the vector layer is in.
  const viewFeature = useRef<number | null>(view?.feature ?? null);

  // A new store or token applies from the next image; a new id hint is a new image.
  useEffect(() => setImageSrc(src, { pyramidId, geometry: pyramidGeometry }), [src, pyramidId, pyramidGeometry, setImageSrc]);

  useEffect(() => {
    setSelected(viewFeature.current);
    viewFeature.current = null;
    history.reset([]);
    if (!vectorSrc) {
      setLayer({ error: null, loading: false });
      return;
    }
    const abort = new AbortController();
    setLayer({ error: null, loading: true });
    loadVectors(vectorSrc, abort.signal).then(
      (loaded) => {
        history.reset(loaded);
        setLayer({ error: null, loading: false });
      },
      (e: Error) => !abort.signal.aborted && setLayer({ error: e.message, loading: false }),
    );
    return () => abort.abort();
  }, [vectorSrc, history.reset]);

  // Edits: each one undoable, and told to the app as GeoJSON.
  const edit = (next: DamageFeature[], select: number | null) => {
    history.set(next);
    setSelected(select);
    onVectorChange?.(toFeatureCollection(next));
  };
  const stepHistory = (go: () => DamageFeature[] | undefined) => () => {
    const now = go();
    if (now) onVectorChange?.(toFeatureCollection(now));
  };

  const zoomTo = useCallback(
    (index: number) => {
      setSelected(index);
      const f = features.find((x) => x.index === index);
      const width = status.info?.width;
      if (!f || !viewer || !width) return;
      const [x0, y0, x1, y1] = f.bbox;
      // Some context around the feature, and points get a box of their own.
      const pad = Math.max(64, 0.25 * Math.max(x1 - x0, y1 - y0));
      const rect = imageToViewportRect(width, x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad);
      viewer.viewport.fitBoundsWithConstraints(rect);
    },
    [viewer, features, status.info?.width],
  );

  // J / K: the next / previous listed feature.
  const step = (by: 1 | -1) => {
    const next = stepThrough(listed, selected, by);
    if (next !== null) zoomTo(next);
  };
  useViewerKeys(viewer, { j: () => step(1), k: () => step(-1) });

  // The view, reported when a move ends and when the chosen feature changes.
  const width = status.info?.width;
  const report = useRef<() => void>(() => {});
  report.current = () => {
    if (viewer && width && onViewChange) onViewChange({ ...currentView(viewer, width), feature: selected });
  };
  useEffect(() => {
    if (!viewer) return;
    const onFinish = () => report.current();
    viewer.addHandler('animation-finish', onFinish);
    return () => viewer.removeHandler('animation-finish', onFinish);
  }, [viewer]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a newly chosen feature is the reason to report.
  useEffect(() => report.current(), [selected]);

  // Below NARROW_PX wide (a tablet held upright, a phone) the panels fold into a bottom sheet and
  // the image keeps the screen.
  const root = useRef<HTMLDivElement>(null);
  const [narrow, setNarrow] = useState(false);
  const [sheetOpen, setSheetOpen] = useState(false);
  useEffect(() => {
    const el = root.current;
    if (!el) return;
    const observer = new ResizeObserver(([entry]) => setNarrow(entry.contentRect.width < NARROW_PX));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const choose = (index: number) => {
    if (narrow) setSheetOpen(false);
    zoomTo(index);
  };

  const size = status.info;
  const chosen = features.find((f) => f.index === selected) ?? null;
  // Clicks on a feature choose it, unless a tool is taking the clicks as points.
  const onFeatureClick = measuring || drawing ? undefined : choose;
  const onCanvas = vectorRenderer === 'canvas' || (vectorRenderer === 'auto' && listed.length > SVG_FEATURES_MAX);
  const saveView = async () => {
    if (!viewer || !size || !root.current) return;
    try {
      saveFile(await exportView(viewer, { width: size.width, features: listed, selected, scale, styleFrom: root.current }), 'view.png');
      setExportError(null);
    } catch (e) {
      setExportError((e as Error).message);
    }
  };
  return (
    <div ref={root} className={narrow ? 'workspace narrow' : 'workspace'} data-layout={narrow ? 'narrow' : 'wide'}>
      <div className={compareSrc ? 'viewers compare' : 'viewers'}>
        <Viewer tileSource={tileSource} status={status} onViewer={setViewer} initialView={view} name="main">
          {store && typeof src === 'string' && needsServer(status.error) && (
            <ServerTiling key={src} src={src} store={store} token={token} onReady={(id) => setImageSrc(src, { pyramidId: id })} />
          )}
          {size && !onCanvas && (
            <VectorOverlay
              viewer={viewer}
              width={size.width}
              height={size.height}
              features={listed}
              selected={selected}
              onSelect={onFeatureClick}
            />
          )}
          {size && onCanvas && (
            <VectorCanvas viewer={viewer} width={size.width} features={listed} selected={selected} onSelect={onFeatureClick} />
          )}
          {size && (
            <MeasureTools
              viewer={viewer}
              width={size.width}
              height={size.height}
              scale={scale}
              onScaleChange={calibrated}
              disabled={editing}
              onActiveChange={setMeasuring}
              widthTarget={chosen?.index ?? null}
              onWidth={(px) =>
                chosen &&
                edit(
                  features.map((f) => (f === chosen ? { ...f, properties: { ...f.properties, width_px: Math.round(px * 100) / 100 } } : f)),
                  chosen.index,
                )
              }
            />
          )}
          {size && editable && (
            <LayerEditor
              viewer={viewer}
              width={size.width}
              height={size.height}
              features={features}
              selected={selected}
              onEdit={edit}
              onUndo={stepHistory(history.undo)}
              onRedo={stepHistory(history.redo)}
              canUndo={history.canUndo}
              canRedo={history.canRedo}
              disabled={measuring}
              onEditingChange={setEditing}
              onDrawingChange={setDrawing}
            />
          )}
          <div className="view-toolbar">
            <EnhanceControls viewer={viewer} />
            {size && viewer && (
              <button type="button" title="Save the view, with the damage layer and a scale bar, as a PNG" onClick={saveView}>
                Export view
              </button>
            )}
            {exportError && (
              <span className="error" role="alert">
                {exportError}
              </span>
            )}
          </div>
          {size && <ScaleBar viewer={viewer} width={size.width} scale={scale} />}
        </Viewer>
        {compareSrc && size && (
          <CompareView
            viewer={viewer}
            width={size.width}
            height={size.height}
            src={compareSrc}
            vectorSrc={compareVectorSrc}
            options={options}
            settings={{ store, token, batchBytes: storeBatchBytes, workers }}
            alignment={alignment}
            onAlignmentChange={onAlignmentChange}
          />
        )}
      </div>
      <aside className={sheetOpen ? 'sidebar open' : 'sidebar'} data-testid="sidebar">
        {narrow && (
          <button type="button" className="sheet-toggle" aria-expanded={sheetOpen} onClick={() => setSheetOpen((o) => !o)}>
            {sheetOpen ? 'Hide details' : `Details${features.length ? ` · ${listed.length} damage` : ''}`}
          </button>
        )}
        <StorePanel status={status} />
        <MetadataPanel status={status} />
        {editing && chosen && (
          <FeatureProperties
            feature={chosen}
            onChange={(f) =>
              edit(
                features.map((x) => (x.index === f.index ? f : x)),
                f.index,
              )
            }
          />
        )}
        <DamageList
          features={listed}
          all={features}
          filter={filter}
          onFilterChange={setFilter}
          selected={selected}
          onSelect={choose}
          error={layer.error}
          loading={layer.loading}
          scale={scale}
        />
      </aside>
    </div>
  );
}
