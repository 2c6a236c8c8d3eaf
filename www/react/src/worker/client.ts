/** A typed client over one tiler worker. One client per image: `terminate()` cancels everything. */
import type { Metadata, Options } from '@tessera/tiler-wasm';
import { TileStoreClient } from '../api/tileStore.js';
import { joinChunks } from './chunks.js';
import type {
  EarlyResponse,
  FromPreviewWorker,
  FromWorker,
  ImageSource,
  PreviewDecoder,
  PreviewPort,
  Progress,
  PyramidGeometry,
  PyramidInfo,
  StoreAnswer,
  StoreTarget,
  TilerFailure,
  TilerMemory,
  ToWorker,
  UploadProgress,
} from './protocol.js';

/**
 * The largest download the page hashes itself to ask the store (`pageAsksStore`): it holds a copy
 * while it hashes. Larger images are asked for by the worker, by their id, as before.
 */
const PAGE_HASH_MAX_BYTES = 256 * 1024 * 1024;

export type {
  ImageSource,
  PreviewDecoder,
  Progress,
  PyramidGeometry,
  PyramidInfo,
  StoreTarget,
  TilerFailure,
  TilerMemory,
  UploadProgress,
  UploadState,
} from './protocol.js';

export interface TilerEvents {
  onProgress?: (progress: Progress) => void;
  /** Header and EXIF, before the pixels are decoded. */
  onMetadata?: (metadata: Metadata) => void;
  /** A large image's quick low-resolution picture, to show beneath until the tiles arrive, and which decoder made it. */
  onPreview?: (picture: Blob, decoder: PreviewDecoder) => void;
  /** Decoded: tiles can be requested. */
  onOpened?: (info: PyramidInfo, metadata: Metadata) => void;
  /** Every tile of the pyramid is made. */
  onPyramidDone?: (tiles: number, bytes: number) => void;
  /** How many workers make the pyramid (after `onOpened`), and how the helpers get their pixels. */
  onWorkers?: (workers: number, memory: TilerMemory) => void;
  /**
   * The store has the pyramid committed; nothing was decoded. `metadata` is null when the page found
   * it by the image's digest before the worker read the header: `onMetadata` follows.
   */
  onStored?: (info: PyramidGeometry, metadata: Metadata | null) => void;
  /** Progress of the upload to the store. */
  onUpload?: (upload: UploadProgress) => void;
  /** Fatal: the image cannot be shown. Called at most once. */
  onError?: (error: TilerFailure) => void;
}

/** Which of the two workers a factory is asked for. */
export type WorkerKind = 'tiler' | 'preview';

/**
 * Where the workers and the WebAssembly module come from. The defaults need nothing: the workers
 * start with `new Worker(new URL('./tiler.worker.js', import.meta.url), { type: 'module' })`, which
 * Vite and webpack 5 follow, and the module is found the same way by `@tessera/tiler-wasm`.
 */
export interface WorkerSettings {
  /**
   * Makes a worker instead of the default, e.g. from a URL on a CDN (through a same-origin
   * trampoline) or one allowed by a strict `worker-src` CSP. It must run this package's
   * `worker/tiler.worker.js` or `worker/preview.worker.js` as a module worker.
   */
  createWorker?: (kind: WorkerKind) => Worker;
  /** Where the workers load `tiler_wasm_bg.wasm` from (resolved against the page); default: beside `@tessera/tiler-wasm`'s JS. */
  wasmUrl?: string | URL | null;
  /**
   * Which decoder makes a large image's preview: `browser` (default) is the browser's own
   * (`createImageBitmap`), falling back to tiler-wasm's when it cannot; `wasm` uses tiler-wasm's only.
   */
  previewDecoder?: PreviewDecoder;
  /**
   * How many workers make the pyramid: the one that decodes the image, and helpers that encode
   * some of the full-resolution tiles (with the same bytes). Default: one fewer than
   * `navigator.hardwareConcurrency` (a core stays with the page, which draws the first view), from 1 to
   * 4; `1` makes every tile in one worker. Helpers get their pixels through a
   * `SharedArrayBuffer` on a cross-origin isolated page, else through transferred buffers. An image
   * opened with a known pyramid id (which the store is expected to have) starts no helpers.
   */
  tilerWorkers?: number;
}

/** At most this many tiler workers by default: past it, copying rows costs more than it saves. */
export const MAX_DEFAULT_TILER_WORKERS = 4;

/**
 * The tiler workers to start: `asked` if given (at least 1), else one fewer than the cores, bounded.
 * On two cores that is one worker: measured there, a helper competed with the page drawing the first
 * view and the decode, and the pyramid was no sooner (docs/benchmarks.md).
 */
export function tilerWorkerCount(asked: number | undefined): number {
  if (asked !== undefined && Number.isFinite(asked)) return Math.max(1, Math.floor(asked));
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency : undefined;
  const spare = Number.isInteger(cores) ? (cores as number) - 1 : 1;
  return Math.max(1, Math.min(MAX_DEFAULT_TILER_WORKERS, spare));
}

/** The default workers: module workers bundlers find by their `new URL(…, import.meta.url)`. */
function defaultWorker(kind: WorkerKind): Worker {
  // Two literal expressions, not one with a variable: bundlers only follow literals.
  return kind === 'tiler'
    ? new Worker(new URL('./tiler.worker.js', import.meta.url), { type: 'module', name: 'tiler' })
    : new Worker(new URL('./preview.worker.js', import.meta.url), { type: 'module', name: 'preview' });
}

/** A worker, or why it could not be made (a bad URL, a CSP refusing it). */
function startWorker(create: (kind: WorkerKind) => Worker, kind: WorkerKind): Worker | TilerFailure {
  try {
    return create(kind);
  } catch (e) {
    return { code: 'worker', message: `The ${kind} worker could not be started: ${(e as Error).message ?? String(e)}.` };
  }
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
  /** Null when it could not be created (the failure is reported through `onError`). */
  private readonly worker: Worker | null;
  /** Decodes a preview on the other core while `worker` decodes the image; gone once not needed. */
  private preview: Worker | null = null;
  /** Starts the preview worker when the tiler worker asks (see the constructor); null once done or not wanted. */
  private startLatePreview: (() => void) | null = null;
  /** Tiler workers helping `worker` make the pyramid (see `WorkerSettings.tilerWorkers`); gone once done. */
  private helpers: Worker[] = [];
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private failed: TilerFailure | null = null;
  private terminated = false;
  /** Aborts the page's request for a URL source (see `fetchEarly`). */
  private readonly download = new AbortController();
  /** Set when the page found the pyramid in the store itself (see `askStore`). */
  private storedByPage = false;

  constructor(
    source: ImageSource,
    private readonly events: TilerEvents,
    options?: Options,
    target?: StoreTarget,
    workers?: WorkerSettings,
  ) {
    const createWorker = workers?.createWorker ?? defaultWorker;
    const wasmUrl = workers?.wasmUrl ? new URL(workers.wasmUrl, document.baseURI).href : undefined;
    const worker = startWorker(createWorker, 'tiler');
    if (worker instanceof Worker) {
      this.worker = worker;
    } else {
      // Reported once the caller holds this client, as every other failure is.
      this.worker = null;
      this.preview = null;
      queueMicrotask(() => this.fail(worker));
      return;
    }
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    // Script load failures and uncaught errors the worker could not report itself.
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.fail({ code: 'worker', message: `The tiler worker stopped: ${e.message || 'it could not start'}.` });
    };
    this.worker.onmessageerror = () => this.fail({ code: 'worker', message: 'A message from the tiler worker could not be read.' });
    // The worker resolves URLs against its own script's address; the page means its own.
    const resolved: ImageSource = source.kind === 'url' ? { kind: 'url', url: new URL(source.url, document.baseURI).href } : source;
    // The page makes the request now, so the download overlaps the worker's start; not with a known
    // id, which the store is asked for first so that the image need not be downloaded at all.
    const earlyResponse = resolved.kind === 'url' && !target?.pyramidId;
    // The page then also hashes the body (the browser's native SHA-256) and asks the store for the
    // image's pyramid itself, while the worker and its module are still starting.
    const pageAsksStore = earlyResponse && target !== undefined && globalThis.crypto?.subtle !== undefined;
    const previewDecoder = workers?.previewDecoder ?? 'browser';
    // Helpers start now, so that their module loads while the image downloads; not with a known id,
    // which the store most likely has (nothing is tiled then: the stored pyramid's first view should
    // not share the cores with workers that would go unused), so a missed hint tiles in one worker.
    const helperCount = target?.pyramidId ? 0 : tilerWorkerCount(workers?.tilerWorkers) - 1;
    const helpers = this.startHelpers(createWorker, helperCount, wasmUrl);
    // The same holds for the preview worker with a known id: the tiler worker asks for it
    // (`wantPreview`) once it is to download and decode the image, and it starts while that downloads.
    const latePreview = Boolean(target?.pyramidId);
    const port = latePreview ? null : this.startPreview(createWorker, wasmUrl);
    if (latePreview) {
      this.startLatePreview = () => {
        const late = this.startPreview(createWorker, wasmUrl);
        this.send({ type: 'previewPort', port: late }, late ? [late] : []);
      };
    }
    this.send(
      {
        type: 'open',
        source: resolved,
        options,
        target,
        previewPort: port ?? undefined,
        previewDecoder,
        wasmUrl,
        earlyResponse,
        pageAsksStore,
        latePreview,
        helpers,
      },
      port ? [port, ...helpers] : helpers,
    );
    if (earlyResponse && resolved.kind === 'url') this.fetchEarly(resolved.url, pageAsksStore && target ? { target, options } : null);
  }

  /**
   * Starts the preview worker; the port to hand the tiler worker, which sends it a large image's
   * bytes (the preview worker answers here). Null without one: a preview is optional.
   */
  private startPreview(create: (kind: WorkerKind) => Worker, wasmUrl: string | undefined): MessagePort | null {
    const preview = startWorker(create, 'preview');
    if (!(preview instanceof Worker)) return null;
    this.preview = preview;
    preview.onmessage = (e: MessageEvent<FromPreviewWorker>) => this.receivePreview(e.data);
    // If it fails, the tiles still come.
    preview.onerror = (e) => {
      e.preventDefault();
      this.stopPreview();
    };
    const channel = new MessageChannel();
    const port: PreviewPort = { type: 'port', port: channel.port2, wasmUrl };
    preview.postMessage(port, [channel.port2]);
    return channel.port1;
  }

  /**
   * Starts `count` helper tiler workers, each told to serve the port whose other end is returned
   * (for the main tiler worker). A helper that cannot start is left out; one that stops fails the
   * image, as the main worker's would.
   */
  private startHelpers(create: (kind: WorkerKind) => Worker, count: number, wasmUrl: string | undefined): MessagePort[] {
    const ports: MessagePort[] = [];
    for (let i = 0; i < count; i++) {
      const helper = startWorker(create, 'tiler');
      if (!(helper instanceof Worker)) break;
      const index = i + 1;
      helper.onerror = (e) => {
        e.preventDefault();
        this.fail({ code: 'worker', message: `Tiler helper worker ${index} stopped: ${e.message || 'it could not start'}.` });
      };
      helper.onmessage = (e: MessageEvent<FromWorker>) => {
        if (e.data.type === 'error') this.fail({ ...e.data.error, message: `Tiler helper worker ${index}: ${e.data.error.message}` });
      };
      helper.onmessageerror = () =>
        this.fail({ code: 'worker', message: `A message from tiler helper worker ${index} could not be read.` });
      const channel = new MessageChannel();
      helper.postMessage({ type: 'helper', port: channel.port2, wasmUrl } satisfies ToWorker, [channel.port2]);
      ports.push(channel.port1);
      this.helpers.push(helper);
    }
    return ports;
  }

  private stopHelpers(): void {
    for (const h of this.helpers) h.terminate();
    this.helpers = [];
  }

  /**
   * Requests a URL source from the page and hands the answer to the worker (see `EarlyResponse`).
   * With `asking`, a copy of the body is hashed here and the store asked (`askStore`).
   */
  private fetchEarly(url: string, asking: { target: StoreTarget; options: Options | undefined } | null): void {
    const answer = (response: EarlyResponse, transfer: Transferable[] = []) => {
      if (!this.terminated) this.send({ type: 'response', response }, transfer);
    };
    const unknown = () => asking && this.answerStore({ kind: 'unknown' });
    fetch(url, { mode: 'cors', credentials: 'omit', signal: this.download.signal }).then(
      (r) => {
        const head = {
          status: r.status,
          statusText: r.statusText,
          contentType: r.headers.get('content-type'),
          contentLength: r.headers.get('content-length'),
        };
        if (!r.body) {
          unknown();
          return answer({ kind: 'response', ...head, body: null });
        }
        const hashing = asking && r.ok && Number(head.contentLength ?? 0) <= PAGE_HASH_MAX_BYTES;
        const [body, copy] = hashing ? r.body.tee() : [r.body, null];
        try {
          answer({ kind: 'response', ...head, body }, [body]);
        } catch {
          // A browser without transferable streams: the worker fetches it itself.
          void r.body.cancel();
          unknown();
          return answer({ kind: 'unsent' });
        }
        if (copy && asking) this.askStore(copy, asking.target, asking.options);
        else unknown();
      },
      () => {
        unknown();
        answer({ kind: 'failed' });
      },
    );
  }

  /**
   * Reads `body` (the page's copy of the download), hashes it with the browser's SHA-256 and asks
   * the store for its pyramid (`GET /pyramids?source=`, the id made by the store): found, the
   * image opens from the store now, the helpers and the preview stop, and the worker only reads the
   * header; otherwise the worker goes on.
   */
  private async askStore(body: ReadableStream<Uint8Array>, target: StoreTarget, options: Options | undefined): Promise<void> {
    let answer: StoreAnswer = { kind: 'unknown' };
    try {
      const reader = body.getReader();
      const chunks: Uint8Array[] = [];
      let length = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        length += value.byteLength;
        if (length > PAGE_HASH_MAX_BYTES) {
          void reader.cancel();
          return;
        }
        chunks.push(value);
      }
      const bytes = joinChunks(chunks, length);
      chunks.length = 0;
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
      const found = await new TileStoreClient(target.store).findBySource(hex, options);
      if (this.terminated) return;
      if (found) {
        answer = { kind: 'found', info: { ...found.geometry, pyramidId: found.id } };
        this.storedByPage = true;
        this.stopPreview();
        this.stopHelpers();
        this.events.onStored?.(answer.info, null);
      } else answer = { kind: 'missing' };
    } catch {
      // Aborted, the store unreachable or refusing: the worker asks it by the id.
    } finally {
      this.answerStore(answer);
    }
  }

  private answerStore(answer: StoreAnswer): void {
    if (!this.terminated) this.send({ type: 'storeAnswer', answer });
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
    this.download.abort();
    this.worker?.terminate();
    this.stopPreview();
    this.stopHelpers();
    for (const w of this.waiters.values()) w.reject({ code: 'aborted', message: 'The image was replaced.' });
    this.waiters.clear();
  }

  private send(message: ToWorker, transfer: Transferable[] = []): void {
    this.worker?.postMessage(message, transfer);
  }

  private stopPreview(): void {
    this.preview?.terminate();
    this.preview = null;
  }

  private receivePreview(msg: FromPreviewWorker): void {
    this.stopPreview();
    if (this.terminated || this.failed || msg.type !== 'preview') return;
    this.events.onPreview?.(new Blob([msg.bytes], { type: msg.mime }), msg.decoder);
  }

  private fail(error: TilerFailure): void {
    if (this.failed || this.terminated) return;
    this.failed = error;
    this.stopPreview();
    this.stopHelpers();
    for (const w of this.waiters.values()) w.reject(error);
    this.waiters.clear();
    this.events.onError?.(error);
  }

  private receive(msg: FromWorker): void {
    if (this.terminated) return;
    switch (msg.type) {
      case 'wantPreview':
        this.startLatePreview?.();
        this.startLatePreview = null;
        return;
      case 'progress':
        this.events.onProgress?.(msg.progress);
        return;
      case 'metadata':
        this.events.onMetadata?.(msg.metadata);
        return;
      case 'opened':
        // Decoded: the tiles come soon, a preview still being made is not worth waiting for.
        this.stopPreview();
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
      case 'workers':
        // Helpers that got no rows have nothing to do.
        if (msg.memory === 'single') this.stopHelpers();
        this.events.onWorkers?.(msg.workers, msg.memory);
        return;
      case 'pyramidDone':
        // The helpers' tiles are all in; their memory goes with them.
        this.stopHelpers();
        this.events.onPyramidDone?.(msg.tiles, msg.bytes);
        return;
      case 'stored':
        // Nothing is decoded: the store's own tiles come at once. The worker has nothing more to
        // do, and it holds the whole source image.
        this.stopPreview();
        this.stopHelpers();
        if (!this.storedByPage) this.events.onStored?.(msg.info, msg.metadata);
        this.terminate();
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
