/**
 * `const [tileSource, setImageSrc, status] = useTilingImage()`: tiles an image URL or File in a
 * worker and gives OpenSeadragon a tile source for it. Setting a new source cancels the old one.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Metadata, Options } from '@tessera/tiler-wasm';
import { TilerClient } from '../worker/client';
import type { ImageSource, PyramidInfo, TilerFailure } from '../worker/client';
import { WorkerTileSource } from '../osd/WorkerTileSource';

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
  info: PyramidInfo | null;
  error: TilerFailure | null;
  /** An object URL of a large JPEG's quick low-resolution picture, to show until the tiles arrive. */
  preview: string | null;
  /** `performance.now()` at `setImageSrc`, at decode end and at the last tile; for figures. */
  startedAt: number | null;
  openedAt: number | null;
  doneAt: number | null;
}

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
  preview: null,
  startedAt: null,
  openedAt: null,
  doneAt: null,
};

export type ImageInput = string | File | Blob | null;

export function useTilingImage(
  options?: Options,
): [WorkerTileSource | null, (src: ImageInput) => void, TilingStatus] {
  const [tileSource, setTileSource] = useState<WorkerTileSource | null>(null);
  const [status, setStatus] = useState<TilingStatus>(IDLE);
  const client = useRef<TilerClient | null>(null);
  const previewUrl = useRef<string | null>(null);
  const optionsRef = useRef(options);
  optionsRef.current = options;

  const setImageSrc = useCallback((src: ImageInput) => {
    client.current?.terminate();
    client.current = null;
    revokePreview(previewUrl);
    setTileSource(null);
    if (src === null || src === '') {
      setStatus(IDLE);
      return;
    }
    const source: ImageSource =
      typeof src === 'string'
        ? { kind: 'url', url: src }
        : { kind: 'blob', blob: src, name: src instanceof File ? src.name : 'the image' };
    const name = source.kind === 'url' ? source.url : source.name;
    setStatus({ ...IDLE, phase: 'fetching', name, startedAt: performance.now() });

    // Events of a replaced client are dropped: `mine` tells whether this one is still current.
    let me: TilerClient | null = null;
    const mine = () => me !== null && client.current === me;
    me = new TilerClient(
      source,
      {
        onProgress: (p) => {
          if (!mine()) return;
          setStatus((s) => {
            switch (p.phase) {
              case 'fetch':
                return { ...s, loaded: p.loaded, total: p.total };
              case 'decode':
                return { ...s, phase: 'decoding' };
              case 'tiles':
                return { ...s, tilesDone: p.done, tilesTotal: p.total };
            }
          });
        },
        onMetadata: (metadata) => mine() && setStatus((s) => ({ ...s, metadata })),
        onPreview: (jpeg) => {
          if (!mine()) return;
          revokePreview(previewUrl);
          const preview = URL.createObjectURL(jpeg);
          previewUrl.current = preview;
          setStatus((s) => ({ ...s, preview }));
        },
        onOpened: (info, metadata) => {
          if (!mine() || !me) return;
          setTileSource(new WorkerTileSource(me, info));
          setStatus((s) => ({ ...s, phase: 'tiling', info, metadata, tilesTotal: info.tileCount, openedAt: performance.now() }));
        },
        onPyramidDone: (tiles) =>
          mine() && setStatus((s) => ({ ...s, phase: 'done', tilesDone: tiles, doneAt: performance.now() })),
        onError: (error) => {
          if (!mine()) return;
          setTileSource(null);
          setStatus((s) => ({ ...s, phase: 'error', error }));
        },
      },
      optionsRef.current,
    );
    client.current = me;
  }, []);

  useEffect(
    () => () => {
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
