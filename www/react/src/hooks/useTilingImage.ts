'use client';
/**
 * `const [tileSource, setImageSrc, status] = useTilingImage(options, { store, token })`: shows an
 * image URL or File through OpenSeadragon. With a tile-store configured, a pyramid the store has
 * committed is opened from it without tiling; otherwise the image is tiled in a worker, shown at
 * once, and uploaded to the store in the background. Setting a new source cancels the old one.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Geometry, Metadata, Options } from '@tessera/tiler-wasm';
import { TilerClient } from '../worker/client.js';
import type {
  ImageSource,
  PreviewDecoder,
  PyramidGeometry,
  StoreTarget,
  TilerFailure,
  TilerMemory,
  UploadProgress,
  WorkerSettings,
} from '../worker/client.js';
import type { StoreTileSource, WorkerTileSource } from '../osd/tileSources.js';
import { loadTileSources } from '../osd/load.js';
import { TileStoreClient, isPyramidId } from '../api/tileStore.js';
import type { StoreSettings } from '../api/tileStore.js';

export type TilingPhase = 'idle' | 'fetching' | 'decoding' | 'tiling' | 'done' | 'error';

export interface TilingStatus {
  phase: TilingPhase;
  /** What is being shown: the URL or the file's name. */
  name: string | null;
  /** Bytes downloaded / expected (null if the server did not say). */
  loaded: number;
  total: number | null;
  /** Tiles of the whole pyramid made so far. */
  tilesDone: number;
  tilesTotal: number;
  metadata: Metadata | null;
  /** The pyramid shown: its geometry and id (from the worker, the store, or the app's hint until the store confirms it). */
  info: PyramidGeometry | null;
  error: TilerFailure | null;
  /** `worker` while tiled here, `store` when opened from tile-store; null before either. */
  source: 'worker' | 'store' | null;
  /** The upload to tile-store (state `none` without a store). */
  upload: UploadProgress;
  /** An object URL of a large image's quick low-resolution picture, to show until the tiles arrive. */
  preview: string | null;
  /** Which decoder made `preview`: the browser's (`createImageBitmap`) or tiler-wasm's. */
  previewDecoder: PreviewDecoder | null;
  /**
   * The workers making the pyramid here (`WorkerSettings.tilerWorkers`), and how the helpers got
   * their pixels: a `SharedArrayBuffer` (`shared`, cross-origin isolated page) or transferred
   * buffers (`transfer`); `single` for one worker. Null until the image is decoded.
   */
  tilers: { workers: number; memory: TilerMemory } | null;
  /** `performance.now()` at `setImageSrc`, at decode end (or store open), at the last tile and at the commit; for figures. */
  startedAt: number | null;
  openedAt: number | null;
  doneAt: number | null;
  savedAt: number | null;
}

/** Where the hook finds and saves pyramids. */
export interface TilingSettings {
  /** tile-store's base URL (relative URLs are resolved against the page); none: tile in the browser only. */
  store?: string | null;
  /** Bearer token for the store, e.g. the signed-in user's JWT. */
  token?: string | null;
  /** Bytes per upload request (default about 4 MiB); less for a store with a smaller `--max-request-bytes`. */
  batchBytes?: number | null;
  /** Where the workers and the WebAssembly module come from (CDNs, strict CSPs); default: beside this package. */
  workers?: WorkerSettings;
}

/** What the caller may already know about an image, to skip fetching and hashing it. */
export interface ImageHint {
  /** The pyramid id (as tile-store computes it), e.g. recorded by the app when the image was first tiled. */
  pyramidId?: string | null;
  /**
   * That pyramid's geometry, as the app recorded it with the id (`status.info` of an earlier open).
   * With a store, its tiles are then requested at once, before any manifest request: a stored
   * pyramid is on screen in one round trip. The worker checks the store beside them; if the store
   * has no such pyramid the image is tiled here as without a hint, and if its geometry differs from
   * this one the store's replaces it.
   */
  geometry?: Geometry | null;
}

/** Whether an app's recorded geometry has the shape tiler-wasm gives it (a hint that has not is ignored). */
function isGeometry(g: Geometry | null | undefined): g is Geometry {
  if (typeof g !== 'object' || g === null) return false;
  const numbers = [g.width, g.height, g.tileSize, g.overlap, g.maxLevel, g.tileCount];
  return numbers.every((n) => Number.isInteger(n) && n >= 0) && typeof g.format === 'string' && typeof g.mime === 'string';
}

/** Whether two pyramids are drawn the same: same id and the same Deep Zoom geometry. */
function sameGeometry(a: PyramidGeometry, b: PyramidGeometry): boolean {
  return (
    a.pyramidId === b.pyramidId &&
    a.width === b.width &&
    a.height === b.height &&
    a.tileSize === b.tileSize &&
    a.overlap === b.overlap &&
    a.maxLevel === b.maxLevel &&
    a.format === b.format
  );
}

/** Counts decodes started by workers of this page: tests check that a stored pyramid needs none. */
let decodesStarted = 0;
export const decodeCount = () => decodesStarted;

const NO_UPLOAD: UploadProgress = { state: 'none', sent: 0, total: 0, found: 0, resent: 0, retrying: null, error: null };

const IDLE: TilingStatus = {
  phase: 'idle',
  name: null,
  loaded: 0,
  total: null,
  tilesDone: 0,
  tilesTotal: 0,
  metadata: null,
  info: null,
  error: null,
  source: null,
  upload: NO_UPLOAD,
  preview: null,
  previewDecoder: null,
  tilers: null,
  startedAt: null,
  openedAt: null,
  doneAt: null,
  savedAt: null,
};

export type ImageInput = string | File | Blob | null;

/** A tile source for the hook's image: made in the worker, or read from the store. */
export type ImageTileSource = WorkerTileSource | StoreTileSource;

function failedToLoad(e: unknown): TilerFailure {
  return { code: 'worker', message: `Could not load the viewer's tile sources: ${(e as Error).message}` };
}

function storeSettings(settings: TilingSettings | undefined): StoreSettings | null {
  if (!settings?.store) return null;
  // Workers resolve URLs against their script; the page means its own address.
  return { url: new URL(settings.store, document.baseURI).href, token: settings.token ?? null };
}

export function useTilingImage(
  options?: Options,
  settings?: TilingSettings,
): [ImageTileSource | null, (src: ImageInput, hint?: ImageHint) => void, TilingStatus] {
  const [tileSource, setTileSource] = useState<ImageTileSource | null>(null);
  const [status, setStatus] = useState<TilingStatus>(IDLE);
  const client = useRef<TilerClient | null>(null);
  /** Bumped by every setImageSrc, so late answers about a replaced image are dropped. */
  const generation = useRef(0);
  const previewUrl = useRef<string | null>(null);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const settingsRef = useRef(settings);
  settingsRef.current = settings;

  const setImageSrc = useCallback((src: ImageInput, hint?: ImageHint) => {
    client.current?.terminate();
    client.current = null;
    const current = ++generation.current;
    revokePreview(previewUrl);
    setTileSource(null);
    if (src === null || src === '') {
      setStatus(IDLE);
      return;
    }
    const source: ImageSource =
      typeof src === 'string' ? { kind: 'url', url: src } : { kind: 'blob', blob: src, name: src instanceof File ? src.name : 'the image' };
    const name = source.kind === 'url' ? source.url : source.name;
    setStatus({ ...IDLE, phase: 'fetching', name, startedAt: performance.now() });
    const store = storeSettings(settingsRef.current);

    /** The store's tiles of `info` in the viewer; null if none were shown. */
    let shown: PyramidGeometry | null = null;
    const showStored = (info: PyramidGeometry) => {
      if (generation.current !== current) return;
      shown = info;
      const api = new TileStoreClient(store ?? { url: '' });
      loadTileSources().then(
        ({ StoreTileSource }) =>
          generation.current === current &&
          setTileSource(
            new StoreTileSource(info, api.tilesUrl(info.pyramidId), api.readHeaders(), (from, to) =>
              api.levelsUrl(info.pyramidId, from, to),
            ),
          ),
        (e) => generation.current === current && setStatus((s) => ({ ...s, phase: 'error', error: failedToLoad(e) })),
      );
    };
    const openStored = (info: PyramidGeometry, metadata: Metadata | null) => {
      if (generation.current !== current) return;
      // The app's hint was right: its tiles stay, the ones already drawn included.
      if (!shown || !sameGeometry(shown, info)) showStored(info);
      const now = performance.now();
      setStatus((s) => ({
        ...s,
        phase: 'done',
        source: 'store',
        info,
        metadata: metadata ?? s.metadata,
        tilesTotal: info.tileCount,
        openedAt: s.openedAt ?? now,
        doneAt: now,
        upload: { ...NO_UPLOAD, state: 'reused', sent: info.tileCount, total: info.tileCount },
      }));
    };

    // A known id lets the store be asked before anything is downloaded (and hashed).
    const known = hint?.pyramidId;
    const pyramidId = known && isPyramidId(known) ? known : undefined;
    const batchBytes = settingsRef.current?.batchBytes ?? undefined;
    // A known id with its geometry: the stored tiles are asked for now, the store confirms beside them.
    if (store && pyramidId && isGeometry(hint?.geometry)) {
      const hinted: PyramidGeometry = { ...hint.geometry, pyramidId };
      showStored(hinted);
      setStatus((s) => ({ ...s, source: 'store', info: hinted, tilesTotal: hinted.tileCount, openedAt: performance.now() }));
    }
    if (store && pyramidId) {
      // The page asks the store for the pyramid's geometry itself (JSON, no XML to parse): no worker
      // and no WebAssembly start unless the store does not have it.
      new TileStoreClient(store).geometry(pyramidId).then(
        (geometry) => {
          if (generation.current !== current) return;
          if (isGeometry(geometry)) return openStored({ ...geometry, pyramidId }, null);
          // Not committed: the hinted tiles (failing) give way, and the image is opened as without
          // a hint, its own id computed from its bytes.
          if (shown) {
            shown = null;
            setTileSource(null);
            setStatus((s) => ({ ...s, source: null, info: null, tilesTotal: 0, openedAt: null }));
          }
          startClient({ store, batchBytes });
        },
        // The store could not say (unreachable, an error): the worker asks it again, once, before
        // downloading the image.
        () => generation.current === current && startClient({ store, batchBytes, pyramidId }),
      );
      return;
    }
    startClient(store ? { store, batchBytes } : undefined);

    function startClient(target: StoreTarget | undefined): void {
      // Events of a replaced client are dropped: `mine` tells whether this one is still current.
      let me: TilerClient | null = null;
      const mine = () => me !== null && client.current === me;
      me = new TilerClient(
        source,
        {
          onProgress: (p) => {
            if (!mine()) return;
            if (p.phase === 'decode') {
              decodesStarted++;
              // The store did not have the hinted pyramid: its tiles (failing) give way to the worker's.
              if (shown) {
                shown = null;
                setTileSource(null);
              }
            }
            setStatus((s) => {
              switch (p.phase) {
                case 'fetch':
                  return { ...s, loaded: p.loaded, total: p.total };
                case 'decode':
                  return { ...s, phase: 'decoding', source: 'worker' };
                case 'tiles':
                  return { ...s, tilesDone: p.done, tilesTotal: p.total };
              }
            });
          },
          onMetadata: (metadata) => mine() && setStatus((s) => ({ ...s, metadata })),
          onPreview: (picture, previewDecoder) => {
            if (!mine()) return;
            revokePreview(previewUrl);
            const preview = URL.createObjectURL(picture);
            previewUrl.current = preview;
            setStatus((s) => ({ ...s, preview, previewDecoder }));
          },
          onOpened: (info, metadata) => {
            if (!mine() || !me) return;
            const opened = me;
            loadTileSources().then(
              ({ WorkerTileSource }) => mine() && setTileSource(new WorkerTileSource(opened, info)),
              (e) => mine() && setStatus((s) => ({ ...s, phase: 'error', error: failedToLoad(e) })),
            );
            setStatus((s) => ({ ...s, phase: 'tiling', info, metadata, tilesTotal: info.tileCount, openedAt: performance.now() }));
          },
          onWorkers: (workers, memory) => mine() && setStatus((s) => ({ ...s, tilers: { workers, memory } })),
          onPyramidDone: (tiles) => mine() && setStatus((s) => ({ ...s, phase: 'done', tilesDone: tiles, doneAt: performance.now() })),
          // The client stops the worker once it has said so (after the header's metadata, when the
          // page found the pyramid by the image's digest first).
          onStored: (info, metadata) => mine() && openStored(info, metadata),
          onUpload: (upload) =>
            mine() &&
            setStatus((s) => ({ ...s, upload, savedAt: upload.state === 'saved' && s.savedAt === null ? performance.now() : s.savedAt })),
          onError: (error) => {
            if (!mine()) return;
            setTileSource(null);
            setStatus((s) => ({ ...s, phase: 'error', error }));
          },
        },
        optionsRef.current,
        target,
        settingsRef.current?.workers,
      );
      client.current = me;
    }
  }, []);

  useEffect(
    () => () => {
      // Answers the store gives after unmount start nothing.
      generation.current++;
      client.current?.terminate();
      client.current = null;
      revokePreview(previewUrl);
    },
    [],
  );

  return [tileSource, setImageSrc, status];
}

function revokePreview(url: { current: string | null }): void {
  if (url.current) URL.revokeObjectURL(url.current);
  url.current = null;
}
