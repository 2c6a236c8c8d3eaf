/**
 * The offer shown when an image cannot be tiled in the browser — over the browser's limits
 * (`limits`, unless tile-store cannot decode it either: `serverCanTile: false`) or in a format only tile-store decodes (`server_only`, e.g. JPEG XL) — and a store is
 * configured: "Tile on the server" asks tile-store to fetch and tile the image (`POST /pyramids`),
 * waits for the job, then hands back the pyramid's id, which the page opens from the store.
 */
import { useEffect, useRef, useState } from 'react';
import { TileStoreClient } from '../api/tileStore.js';
import type { TilerFailure } from '../worker/protocol.js';

/** Whether `error` means the image must be tiled on the server. */
export function needsServer(error: TilerFailure | null): boolean {
  return (error?.code === 'limits' && error.serverCanTile !== false) || error?.code === 'server_only';
}

export interface ServerTilingProps {
  /** The image's URL as the page names it (resolved against the page here). */
  src: string;
  /** tile-store's base URL. */
  store: string;
  token?: string | null;
  /** Called with the pyramid's id once tile-store has committed it. */
  onReady: (pyramidId: string) => void;
}

type Progress = { state: 'offer' } | { state: 'working'; status: string } | { state: 'failed'; message: string };

export function ServerTiling({ src, store, token, onReady }: ServerTilingProps) {
  const [progress, setProgress] = useState<Progress>({ state: 'offer' });
  const abort = useRef<AbortController | null>(null);
  useEffect(() => () => abort.current?.abort(), []);

  const start = async () => {
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setProgress({ state: 'working', status: 'asking tile-store' });
    try {
      const client = new TileStoreClient({ url: new URL(store, location.href).href, token });
      const job = await client.tileOnServer(new URL(src, location.href).href);
      setProgress({ state: 'working', status: job.status });
      const done = await client.finishedJob(job, controller.signal);
      if (controller.signal.aborted) return;
      if (done.status === 'ready' && done.id) onReady(done.id);
      else setProgress({ state: 'failed', message: done.error?.message ?? `the job ended ${done.status}` });
    } catch (e) {
      if (controller.signal.aborted) return;
      const message = typeof e === 'object' && e !== null && 'message' in e ? String(e.message) : String(e);
      setProgress({ state: 'failed', message });
    }
  };

  return (
    <div className="server-tiling" data-testid="server-tiling" data-server-tiling={progress.state}>
      <span>This image must be tiled on the server.</span>
      <button type="button" data-testid="tile-on-server" disabled={progress.state === 'working'} onClick={start}>
        {progress.state === 'working' ? `Tiling on the server… (${progress.status})` : 'Tile on the server'}
      </button>
      {progress.state === 'failed' && (
        <span className="error" role="alert">
          {progress.message}
        </span>
      )}
    </div>
  );
}
