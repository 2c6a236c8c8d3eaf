/// <reference lib="webworker" />
/**
 * The tiler worker: fetches (or reads) one image, decodes it once with tiler-wasm, answers tile
 * requests first and makes the rest of the pyramid in the background. One worker per image: the
 * page terminates it to cancel, so nothing here needs to be cancellable.
 */
import init, { IdHasher, Tiler, probe } from '@tessera/tiler-wasm';
import type {
  FailureCode,
  FromWorker,
  ImageSource,
  PreviewRequest,
  PyramidInfo,
  StoreTarget,
  TilerFailure,
  ToWorker,
  UploadProgress,
} from './protocol.js';
import type { Metadata, Options } from '@tessera/tiler-wasm';
import { TileStoreClient } from '../api/tileStore.js';
import { PyramidUploader } from './upload.js';

declare const self: DedicatedWorkerGlobalScope;

/** Progress is posted every this many background tiles, and at each level's end. */
const PROGRESS_EVERY = 16;
/** A JPEG whose longer side is at least twice this gets a preview this big, made by the preview worker. */
const PREVIEW_SIDE = 1280;

/** The module, compiled once: from `wasmUrl` when the page gave one, else where the bundler put it. */
let wasmReady: Promise<unknown> | null = null;
function loadWasm(wasmUrl: string | undefined): Promise<unknown> {
  wasmReady ??= init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  return wasmReady;
}

function post(message: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

function failure(code: FailureCode, message: string): TilerFailure {
  return { code, message };
}

/** The one place anything thrown becomes a `{ code, message }`. */
function toFailure(e: unknown): TilerFailure {
  if (e instanceof WebAssembly.RuntimeError) {
    return failure('panic', `The tiler crashed (${e.message}); this is a bug, please report it with the image.`);
  }
  if (typeof e === 'object' && e !== null && 'code' in e && 'message' in e) {
    const { code, message } = e as { code: unknown; message: unknown };
    if (typeof code === 'string' && typeof message === 'string') return failure(code as FailureCode, message);
  }
  if (e instanceof Error) return failure('worker', e.message);
  return failure('worker', String(e));
}

function describeOrigin(url: URL): string {
  return url.origin === self.location.origin ? 'this site' : url.origin;
}

/** Fetches `href`, feeding each chunk to `hasher` as it arrives so the pyramid id is ready at the end. */
async function fetchBytes(href: string, hasher: IdHasher): Promise<{ bytes: Uint8Array; contentType: string | null }> {
  const url = new URL(href, self.location.href);
  let response: Response;
  try {
    response = await fetch(url, { mode: 'cors', credentials: 'omit' });
  } catch {
    // fetch hides the reason; for another origin a missing CORS header is by far the likeliest.
    if (url.origin !== self.location.origin) {
      throw failure(
        'fetch_blocked',
        `${url.origin} did not allow this page to read ${url.href}: the server sends no CORS header ` +
          `(Access-Control-Allow-Origin) or cannot be reached. Ask its owner to allow this site, ` +
          `or download the image and open the file here.`,
      );
    }
    throw failure('network', `Could not reach ${describeOrigin(url)} to fetch ${url.href}. Check your connection.`);
  }
  if (!response.ok) {
    const what = response.status === 404 ? 'no such image (HTTP 404 Not Found)' : `HTTP ${response.status} ${response.statusText}`;
    throw failure('http', `${url.href}: ${what}. Check the address.`);
  }
  const contentType = response.headers.get('content-type');
  const declared = Number(response.headers.get('content-length'));
  const total = Number.isFinite(declared) && declared > 0 ? declared : null;
  const reader = response.body?.getReader();
  if (!reader) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    hasher.update(bytes);
    return { bytes, contentType };
  }

  const chunks: Uint8Array[] = [];
  let loaded = 0;
  let lastReport = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw failure('network', `The download of ${url.href} broke off after ${loaded} bytes: ${toFailure(e).message}`);
    }
    if (chunk.done) break;
    chunks.push(chunk.value);
    hasher.update(chunk.value);
    loaded += chunk.value.byteLength;
    // Progress at most every 1 MiB, not per network packet.
    if (loaded - lastReport >= 1 << 20) {
      lastReport = loaded;
      post({ type: 'progress', progress: { phase: 'fetch', loaded, total } });
    }
  }
  post({ type: 'progress', progress: { phase: 'fetch', loaded, total: total ?? loaded } });
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { bytes, contentType };
}

async function readSource(
  source: ImageSource,
  hasher: IdHasher,
): Promise<{ bytes: Uint8Array; what: string; contentType: string | null }> {
  if (source.kind === 'url') {
    const { bytes, contentType } = await fetchBytes(source.url, hasher);
    return { bytes, what: source.url, contentType };
  }
  try {
    const bytes = new Uint8Array(await source.blob.arrayBuffer());
    hasher.update(bytes);
    post({ type: 'progress', progress: { phase: 'fetch', loaded: bytes.byteLength, total: bytes.byteLength } });
    return { bytes, what: source.name, contentType: source.blob.type || null };
  } catch (e) {
    throw failure('read', `Could not read ${source.name}: ${toFailure(e).message}`);
  }
}

/** Adds which file was at fault to the core's messages for people. */
function explain(f: TilerFailure, what: string, contentType: string | null): TilerFailure {
  switch (f.code) {
    case 'unknown_format':
      return failure(
        f.code,
        `${what} is not an image Tessera can read (JPEG, PNG, WebP or TIFF)` +
          (contentType?.startsWith('text/html')
            ? '; the server sent a web page instead, so the address is probably wrong.'
            : contentType
              ? `; the server called it ${contentType}.`
              : '.'),
      );
    case 'limits':
      return failure(
        f.code,
        `${what}: ${f.message}. Images this large cannot be tiled in the browser; ` +
          'tile it on the server with `tile-store tile` instead.',
      );
    case 'decode':
    case 'unsupported':
      return failure(f.code, `${what}: ${f.message}.`);
    default:
      return f;
  }
}

// ---- the pyramid ---------------------------------------------------------------------------

interface Pending {
  level: number;
  col: number;
  row: number;
}

let tiler: Tiler | null = null;
let fatal: TilerFailure | null = null;
let started = false;
/** Encoded tiles by `level/col_row`; the page may ask again after OpenSeadragon drops a tile. */
const made = new Map<string, Uint8Array>();
/** Names of the made tiles as the store knows them (`level/col_row.ext`), in the order made. */
const madeOrder: string[] = [];
let uploader: PyramidUploader | null = null;
const requests = new Map<number, Pending>();
let background: Generator<Pending> | null = null;
let madeBytes = 0;
let totalTiles = 0;

const key = (l: number, c: number, r: number) => `${l}/${c}_${r}`;

function* backgroundOrder(t: Tiler): Generator<Pending> {
  // Low resolution first: that is what a person sees first and what the higher levels don't need.
  for (let level = 0; level <= t.maxLevel; level++) {
    const grid = t.grid(level);
    if (!grid) continue;
    const [cols, rows] = grid;
    for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) yield { level, col, row };
  }
}

function make(t: Tiler, p: Pending): Uint8Array {
  const k = key(p.level, p.col, p.row);
  const cached = made.get(k);
  if (cached) return cached;
  const bytes: Uint8Array = t.tile(p.level, p.col, p.row);
  made.set(k, bytes);
  madeOrder.push(`${k}.${t.format}`);
  madeBytes += bytes.byteLength;
  uploader?.notify();
  return bytes;
}

function fail(e: unknown): void {
  fatal = toFailure(e);
  post({ type: 'error', error: fatal });
  for (const id of requests.keys()) post({ type: 'tileError', id, error: fatal });
  requests.clear();
}

// A MessageChannel turn yields to incoming messages without setTimeout's 4 ms clamp.
const turn = new MessageChannel();
let scheduled = false;
turn.port1.onmessage = () => {
  scheduled = false;
  step();
};
function schedule(): void {
  if (!scheduled && !fatal) {
    scheduled = true;
    turn.port2.postMessage(null);
  }
}

/** Does one tile's work: a requested tile if any, else the next background tile. */
function step(): void {
  const t = tiler;
  if (!t || fatal) return;
  const next = requests.entries().next();
  if (!next.done) {
    const [id, p] = next.value;
    requests.delete(id);
    try {
      // A copy is transferred; the cached bytes stay here.
      const buffer = make(t, p).slice().buffer;
      post({ type: 'tile', id, bytes: buffer }, [buffer]);
    } catch (e) {
      const f = toFailure(e);
      if (f.code === 'panic') return fail(e);
      post({ type: 'tileError', id, error: f });
    }
    return schedule();
  }
  if (!background) return;
  for (;;) {
    const n = background.next();
    if (n.done) {
      background = null;
      post({ type: 'progress', progress: { phase: 'tiles', done: made.size, total: totalTiles, level: t.maxLevel } });
      post({ type: 'pyramidDone', tiles: made.size, bytes: madeBytes });
      uploader?.notify();
      return;
    }
    const p = n.value;
    if (made.has(key(p.level, p.col, p.row))) continue;
    try {
      make(t, p);
    } catch (e) {
      return fail(e);
    }
    const grid = t.grid(p.level);
    const levelEnd = grid !== undefined && p.col === grid[0] - 1 && p.row === grid[1] - 1;
    if (levelEnd || made.size % PROGRESS_EVERY === 0) {
      post({ type: 'progress', progress: { phase: 'tiles', done: made.size, total: totalTiles, level: p.level } });
    }
    return schedule();
  }
}

/**
 * The committed manifest of `pyramidId`, if the store has it. One quick try: if the store cannot
 * say, the image is tiled here (and the upload retries the store on its own).
 */
async function storedManifest(store: TileStoreClient, pyramidId: string): Promise<string | null> {
  try {
    return await store.manifest(pyramidId);
  } catch {
    return null;
  }
}

/** The header's metadata, for the panel; a stored pyramid is shown even if the browser could not tile its source. */
function probeQuietly(bytes: Uint8Array, options: Options | undefined): Metadata | null {
  try {
    return probe(bytes, options?.limits);
  } catch {
    return null;
  }
}

/** Starts uploading what is being tiled; the store's listing decides what is sent. */
function startUpload(store: TileStoreClient, t: Tiler, info: PyramidInfo, batchBytes: number | undefined): void {
  const tiles = {
    order: madeOrder,
    get: (name: string) => made.get(name.slice(0, name.lastIndexOf('.'))),
    get complete() {
      return background === null && made.size >= totalTiles;
    },
  };
  const geometry = { width: t.width, height: t.height, tileSize: t.tileSize, overlap: t.overlap, format: t.format, tileCount: t.tileCount };
  const report = (upload: UploadProgress) => post({ type: 'upload', upload });
  uploader = new PyramidUploader(store, info.pyramidId, geometry, info.dziXml, tiles, report, batchBytes);
  void uploader.run();
}

/** Sends a copy of a large JPEG's bytes to the preview worker, which decodes it at 1/2–1/8 scale. */
function requestPreview(port: MessagePort | undefined, bytes: Uint8Array, metadata: Metadata, options: Options | undefined): void {
  if (!port) return;
  if (metadata.format === 'jpeg' && Math.max(metadata.width, metadata.height) >= 2 * PREVIEW_SIDE) {
    const copy = bytes.slice();
    const request: PreviewRequest = { bytes: copy.buffer, minSide: PREVIEW_SIDE, limits: options?.limits };
    port.postMessage(request, [copy.buffer]);
  }
  port.close();
}

async function open(
  source: ImageSource,
  options: Options | undefined,
  target: StoreTarget | undefined,
  previewPort: MessagePort | undefined,
  wasmUrl: string | undefined,
): Promise<void> {
  try {
    await loadWasm(wasmUrl);
  } catch (e) {
    throw failure('wasm_load', `Could not load the tiler (WebAssembly): ${toFailure(e).message}`);
  }
  const hasher = new IdHasher();
  let pyramidId: string;
  let bytes: Uint8Array, what: string, contentType: string | null;
  try {
    ({ bytes, what, contentType } = await readSource(source, hasher));
    pyramidId = hasher.finish(options);
  } finally {
    hasher.free();
  }
  const store = target ? new TileStoreClient(target.store) : null;
  if (store) {
    const dziXml = await storedManifest(store, pyramidId);
    if (dziXml !== null) {
      previewPort?.close();
      post({ type: 'stored', pyramidId, dziXml, metadata: probeQuietly(bytes, options) });
      return;
    }
  }
  try {
    // Header and EXIF first: the panel fills in and limits are checked before any pixel is decoded.
    const metadata: Metadata = probe(bytes, options?.limits);
    post({ type: 'metadata', metadata });
    requestPreview(previewPort, bytes, metadata, options);
    post({ type: 'progress', progress: { phase: 'decode', bytes: bytes.byteLength } });
    const t = Tiler.open(bytes, options);
    const info: PyramidInfo = {
      width: t.width,
      height: t.height,
      tileSize: t.tileSize,
      overlap: t.overlap,
      maxLevel: t.maxLevel,
      tileCount: t.tileCount,
      format: t.format,
      mime: t.mime,
      dziXml: t.dziXml(),
      pyramidId,
    };
    tiler = t;
    totalTiles = t.tileCount;
    background = backgroundOrder(t);
    post({ type: 'opened', info, metadata: t.metadata() });
    post({ type: 'progress', progress: { phase: 'tiles', done: 0, total: totalTiles, level: 0 } });
    schedule();
    if (store) startUpload(store, t, info, target?.batchBytes);
  } catch (e) {
    throw explain(toFailure(e), what, contentType);
  }
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  switch (msg.type) {
    case 'open':
      if (started) {
        post({ type: 'error', error: failure('worker', 'This worker already holds an image; start a new one.') });
        return;
      }
      started = true;
      open(msg.source, msg.options, msg.target, msg.previewPort, msg.wasmUrl).catch(fail);
      return;
    case 'tile':
      if (fatal) {
        post({ type: 'tileError', id: msg.id, error: fatal });
        return;
      }
      requests.set(msg.id, { level: msg.level, col: msg.col, row: msg.row });
      schedule();
      return;
    case 'cancelTile':
      requests.delete(msg.id);
      return;
  }
};

// Nothing may end the worker silently.
self.addEventListener('error', (e) => {
  e.preventDefault();
  fail(e.error ?? e.message);
});
self.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  fail(e.reason);
});
