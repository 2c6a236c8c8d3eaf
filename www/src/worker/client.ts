/** A typed client over one tiler worker. One client per image: `terminate()` cancels everything. */
import type { Metadata, Options } from '@tessera/tiler-wasm';
import type { FromWorker, ImageSource, Progress, PyramidInfo, StoreTarget, TilerFailure, ToWorker, UploadProgress } from './protocol';

export type { ImageSource, Progress, PyramidInfo, StoreTarget, TilerFailure, UploadProgress, UploadState } from './protocol';

export interface TilerEvents {
  onProgress?: (progress: Progress) => void;
  /** Header and EXIF, before the pixels are decoded. */
  onMetadata?: (metadata: Metadata) => void;
  /** Decoded: tiles can be requested. */
  onOpened?: (info: PyramidInfo, metadata: Metadata) => void;
  /** Every tile of the pyramid is made. */
  onPyramidDone?: (tiles: number, bytes: number) => void;
  /** The store has the pyramid committed; nothing was decoded. */
  onStored?: (pyramidId: string, dziXml: string, metadata: Metadata | null) => void;
  /** Progress of the upload to the store. */
  onUpload?: (upload: UploadProgress) => void;
  /** Fatal: the image cannot be shown. Called at most once. */
  onError?: (error: TilerFailure) => void;
}

/** A pending tile; `cancel()` drops it from the worker's queue and rejects with code `aborted`. */
export interface TileRequest {
  bytes: Promise<ArrayBuffer>;
  cancel(): void;
}

interface Waiter {
  resolve: (bytes: ArrayBuffer) => void;
  reject: (error: TilerFailure) => void;
}

export class TilerClient {
  private readonly worker: Worker;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private failed: TilerFailure | null = null;
  private terminated = false;

  constructor(source: ImageSource, private readonly events: TilerEvents, options?: Options, target?: StoreTarget) {
    this.worker = new Worker(new URL('./tiler.worker.ts', import.meta.url), { type: 'module', name: 'tiler' });
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    // Script load failures and uncaught errors the worker could not report itself.
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.fail({ code: 'worker', message: `The tiler worker stopped: ${e.message || 'it could not start'}.` });
    };
    this.worker.onmessageerror = () => this.fail({ code: 'worker', message: 'A message from the tiler worker could not be read.' });
    // The worker resolves URLs against its own script's address; the page means its own.
    const resolved: ImageSource =
      source.kind === 'url' ? { kind: 'url', url: new URL(source.url, document.baseURI).href } : source;
    this.send({ type: 'open', source: resolved, options, target });
  }

  /** Asks for one tile; tiles asked for are made before the background ones. */
  tile(level: number, col: number, row: number): TileRequest {
    const id = this.nextId++;
    const bytes = new Promise<ArrayBuffer>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      if (this.terminated) return reject({ code: 'aborted', message: 'The image was replaced.' });
      this.waiters.set(id, { resolve, reject });
      this.send({ type: 'tile', id, level, col, row });
    });
    const cancel = () => {
      const waiter = this.waiters.get(id);
      if (!waiter) return;
      this.waiters.delete(id);
      if (!this.terminated) this.send({ type: 'cancelTile', id });
      waiter.reject({ code: 'aborted', message: 'Tile no longer needed.' });
    };
    return { bytes, cancel };
  }

  /** Stops the worker and all its work; pending tiles reject with code `aborted`. */
  terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.worker.terminate();
    for (const w of this.waiters.values()) w.reject({ code: 'aborted', message: 'The image was replaced.' });
    this.waiters.clear();
  }

  private send(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private fail(error: TilerFailure): void {
    if (this.failed || this.terminated) return;
    this.failed = error;
    for (const w of this.waiters.values()) w.reject(error);
    this.waiters.clear();
    this.events.onError?.(error);
  }

  private receive(msg: FromWorker): void {
    if (this.terminated) return;
    switch (msg.type) {
      case 'progress':
        this.events.onProgress?.(msg.progress);
        return;
      case 'metadata':
        this.events.onMetadata?.(msg.metadata);
        return;
      case 'opened':
        this.events.onOpened?.(msg.info, msg.metadata);
        return;
      case 'tile': {
        const w = this.waiters.get(msg.id);
        this.waiters.delete(msg.id);
        w?.resolve(msg.bytes);
        return;
      }
      case 'tileError': {
        const w = this.waiters.get(msg.id);
        this.waiters.delete(msg.id);
        w?.reject(msg.error);
        return;
      }
      case 'pyramidDone':
        this.events.onPyramidDone?.(msg.tiles, msg.bytes);
        return;
      case 'stored':
        this.events.onStored?.(msg.pyramidId, msg.dziXml, msg.metadata);
        return;
      case 'upload':
        this.events.onUpload?.(msg.upload);
        return;
      case 'error':
        this.fail(msg.error);
        return;
    }
  }
}
