/**
 * The page: `?src=` and `?vectorSrc=` URLs, or a picked / dropped file, shown in the Workspace;
 * `?store=` names the tile-store to reuse and save pyramids (`?store=/` is this site; `?storeBatchBytes=`
 * sizes its upload requests; `#token=` is its bearer token), `?pyramid=` a known pyramid id, `?scale=`
 * the real size of a pixel (`0.2mm`), `?vectorRenderer=svg|canvas` how the damage layer is drawn, `?compareSrc=`,
 * `?compareVectorSrc=` and `?alignment=` a second inspection beside the first; `#view=` the view
 * to open at (kept up to date as the view changes); `?geometry=` the known pyramid's geometry (the JSON
 * of tiler-wasm's `Geometry`, as `status.info` has it), so its tiles are asked for at once; `?previewDecoder=wasm` makes a large image's
 * first picture with tiler-wasm's decoder instead of the browser's; `?workers=N` how many workers make the pyramid.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { DragEvent, FormEvent } from 'react';
import { Workspace, formatAlignment, formatView, parseAlignment, parseScale, parseView } from '@tessera/react';
import type { Alignment, FeatureCollection, ImageInput, Scale, TileGeometry, WorkspaceView } from '@tessera/react';

interface Sources {
  src: ImageInput;
  vectorSrc: string | null;
  store: string | null;
  storeBatchBytes: number | null;
  storeToken: string | null;
  pyramidId: string | null;
  pyramidGeometry: TileGeometry | null;
  scale: Scale | null;
  view: WorkspaceView | null;
  vectorRenderer: 'auto' | 'svg' | 'canvas';
  compareSrc: string | null;
  compareVectorSrc: string | null;
  alignment: Alignment | null;
  previewDecoder: 'browser' | 'wasm';
  /** `?workers=N`: how many workers make the pyramid (default: the cores, at most 4). */
  tilerWorkers: number | undefined;
}

function fromLocation(): Sources {
  const q = new URLSearchParams(location.search);
  // The token rides in the fragment, which browsers never send to a server or put in a Referer.
  const fragment = new URLSearchParams(location.hash.slice(1));
  return {
    src: q.get('src') || null,
    vectorSrc: q.get('vectorSrc') || null,
    store: q.get('store') || null,
    storeBatchBytes: Number(q.get('storeBatchBytes')) || null,
    storeToken: fragment.get('token') || null,
    pyramidId: q.get('pyramid') || null,
    pyramidGeometry: parseGeometry(q.get('geometry')),
    scale: parseScale(q.get('scale') ?? ''),
    view: parseView(fragment.get('view')),
    vectorRenderer: (['svg', 'canvas'] as const).find((r) => r === q.get('vectorRenderer')) ?? 'auto',
    compareSrc: q.get('compareSrc') || null,
    compareVectorSrc: q.get('compareVectorSrc') || null,
    alignment: parseAlignment(q.get('alignment')),
    previewDecoder: q.get('previewDecoder') === 'wasm' ? 'wasm' : 'browser',
    tilerWorkers: Number(q.get('workers')) || undefined,
  };
}

/** `?geometry=`: a JSON object, else none (the worker then reads the store's manifest as usual). */
function parseGeometry(text: string | null): TileGeometry | null {
  if (!text) return null;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as TileGeometry) : null;
  } catch {
    return null;
  }
}

/** Keeps the alignment of a comparison in the address, so it reopens aligned. */
function rememberAlignment(alignment: Alignment) {
  const q = new URLSearchParams(location.search);
  q.set('alignment', formatAlignment(alignment));
  history.replaceState(history.state, '', `${location.pathname}?${q}${location.hash}`);
}

/** Keeps the view in the fragment (beside the token), so the address reopens it. */
function rememberView(view: WorkspaceView) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  fragment.set('view', formatView(view));
  history.replaceState(history.state, '', `${location.pathname}${location.search}#${fragment}`);
}

export function App() {
  const [sources, setSources] = useState<Sources>(fromLocation);
  const [dragging, setDragging] = useState(false);
  /** The damage layer as last edited here, and which layer it was (edits are not saved anywhere: Download keeps them). */
  const [edits, setEdits] = useState<{ vectorSrc: string | null; layer: FeatureCollection } | null>(null);
  const edited = edits && edits.vectorSrc === sources.vectorSrc ? edits.layer : null;
  const workers = useMemo(
    () => ({ previewDecoder: sources.previewDecoder, tilerWorkers: sources.tilerWorkers }),
    [sources.previewDecoder, sources.tilerWorkers],
  );
  const [urlInput, setUrlInput] = useState(() => (typeof sources.src === 'string' ? sources.src : ''));

  useEffect(() => {
    const onPop = () => setSources(fromLocation());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  const openUrl = (e: FormEvent) => {
    e.preventDefault();
    const src = urlInput.trim();
    const q = new URLSearchParams(location.search);
    if (src) q.set('src', src);
    else q.delete('src');
    // A known id (and its geometry) belongs to the image it came with.
    q.delete('pyramid');
    q.delete('geometry');
    // So does a view.
    const fragment = new URLSearchParams(location.hash.slice(1));
    fragment.delete('view');
    history.pushState(null, '', `?${q}${fragment.size ? `#${fragment}` : ''}`);
    setSources(fromLocation());
  };

  const openFile = useCallback((file: File | undefined) => {
    if (file) setSources((s) => ({ ...s, src: file, pyramidId: null, pyramidGeometry: null, view: null }));
  }, []);

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    openFile(e.dataTransfer.files[0]);
  };

  return (
    // biome-ignore lint/a11y/noStaticElementInteractions: dropping a file anywhere is a shortcut; the file input does the same by keyboard.
    <div
      className={`app${dragging ? ' dragging' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={(e) => e.currentTarget === e.target && setDragging(false)}
      onDrop={onDrop}
    >
      <header>
        <h1>Tessera</h1>
        <form onSubmit={openUrl} className="open-url">
          <input
            // Not type="url": relative addresses such as /samples/x.jpg are fine.
            type="text"
            inputMode="url"
            placeholder="Image URL (JPEG, PNG, WebP, TIFF)"
            value={urlInput}
            onChange={(e) => setUrlInput(e.target.value)}
            aria-label="Image URL"
          />
          <button type="submit">Open</button>
        </form>
        <label className="file-button">
          Open file…
          <input
            type="file"
            accept="image/jpeg,image/png,image/webp,image/tiff"
            data-testid="file-input"
            onChange={(e) => openFile(e.target.files?.[0])}
          />
        </label>
        <span className="hint">or drop an image anywhere</span>
        {edited && (
          <span className="hint" data-testid="layer-status" data-features={edited.features.length}>
            Damage layer edited: {edited.features.length} features, not saved (Edit → Download keeps them)
          </span>
        )}
      </header>
      <main>
        <Workspace
          src={sources.src}
          vectorSrc={sources.vectorSrc}
          store={sources.store}
          token={sources.storeToken}
          storeBatchBytes={sources.storeBatchBytes}
          pyramidId={sources.pyramidId}
          pyramidGeometry={sources.pyramidGeometry}
          workers={workers}
          scale={sources.scale}
          view={sources.view}
          onViewChange={rememberView}
          onVectorChange={(layer) => setEdits({ vectorSrc: sources.vectorSrc, layer })}
          vectorRenderer={sources.vectorRenderer}
          compareSrc={sources.compareSrc}
          compareVectorSrc={sources.compareVectorSrc}
          alignment={sources.alignment}
          onAlignmentChange={rememberAlignment}
        />
      </main>
      {dragging && <div className="drop-hint">Drop the image to tile it here</div>}
    </div>
  );
}
