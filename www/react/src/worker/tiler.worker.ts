/// <reference lib="webworker" />
/**
 * The tiler worker: fetches (or reads) one image, decodes it once with tiler-wasm, answers tile
 * requests first and makes the rest of the pyramid in the background. One worker per image: the
 * page terminates it to cancel, so nothing here needs to be cancellable.
 */
import init, { IdHasher, TileBand, Tiler, parseDzi, probe, pyramidIdFromSha256, serverCanTile } from '@tessera/tiler-wasm';
import type {
  EarlyResponse,
  FailureCode,
  FromHelper,
  FromWorker,
  ImageSource,
  PreviewDecoder,
  PreviewRequest,
  PyramidGeometry,
  PyramidInfo,
  RowRequest,
  StoreAnswer,
  TilerFailure,
  ToWorker,
  UploadProgress,
} from './protocol.js';
import type { Metadata, Options } from '@tessera/tiler-wasm';
import { TileStoreClient } from '../api/tileStore.js';
import { joinChunks } from './chunks.js';
import { PyramidUploader } from './upload.js';
import type { MadeTile } from './upload.js';

declare const self: DedicatedWorkerGlobalScope;

/** Progress is posted every this many background tiles, and at each level's end. */
const PROGRESS_EVERY = 16;
/** An image whose longer side is at least twice this gets a preview this big, made by the preview worker. */
const PREVIEW_SIDE = 1280;
/** A helper worker silent this long (no tile, no answer) fails the image: no wait is unbounded. */
const HELPER_SILENCE_MS = 30_000;
/**
 * How long the header and the preview wait for the store to say whether it has the pyramid: one
 * small request, while a preview decodes the whole image on the cores a stored pyramid's tiles need.
 */
const STORE_ANSWER_WAIT_MS = 500;

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
    const { code, message, serverCanTile } = e as { code: unknown; message: unknown; serverCanTile?: unknown };
    if (typeof code === 'string' && typeof message === 'string') {
      const f = failure(code as FailureCode, message);
      return typeof serverCanTile === 'boolean' ? { ...f, serverCanTile } : f;
    }
  }
  if (e instanceof Error) return failure('worker', e.message);
  return failure('worker', String(e));
}

function describeOrigin(url: URL): string {
  return url.origin === self.location.origin ? 'this site' : url.origin;
}

/**
 * The source's SHA-256, from which tiler-wasm makes the pyramid id. The browser's native digest
 * (`crypto.subtle`, in secure contexts, loopback included) hashes the whole file once it is in,
 * several times quicker than tiler-wasm's SHA-256 and off this thread; without it, tiler-wasm's
 * `IdHasher` is fed each chunk as it arrives. Feeding `IdHasher` during the download even with
 * `crypto.subtle` was tried for the reuse path and measured slower here: the worker and its module
 * start after most of a download from a near store is in, so the chunks wait for the module and
 * are then hashed in freshly compiled wasm (112 ms for 4.3 MB in a trace, against 6–9 ms native).
 */
interface SourceHash {
  update(chunk: Uint8Array): void;
  /** The pyramid id of all of `bytes` (the chunks fed), tiled with `options`. */
  finish(bytes: Uint8Array, options: Options | undefined): Promise<string>;
  free(): void;
}

async function sourceHash(wasm: Promise<void>): Promise<SourceHash> {
  const subtle = self.crypto?.subtle;
  if (subtle) {
    return {
      update: () => undefined,
      async finish(bytes, options) {
        const digest = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
        await wasm;
        return pyramidIdFromSha256(new Uint8Array(digest), options);
      },
      free: () => undefined,
    };
  }
  await wasm;
  const hasher = new IdHasher();
  return { update: (chunk) => hasher.update(chunk), finish: async (_, options) => hasher.finish(options), free: () => hasher.free() };
}

/** The source's bytes, and the chunks they arrived in when those are separate buffers (given to the preview worker). */
interface SourceBytes {
  bytes: Uint8Array;
  parts: Uint8Array[] | null;
  contentType: string | null;
}

/** A response's head and body, from the page's early request or this worker's own. */
interface Fetched {
  ok: boolean;
  status: number;
  statusText: string;
  contentType: string | null;
  contentLength: string | null;
  body: ReadableStream<Uint8Array> | null;
}

function unreachable(url: URL): TilerFailure {
  // fetch hides the reason; for another origin a missing CORS header is by far the likeliest.
  if (url.origin !== self.location.origin) {
    return failure(
      'fetch_blocked',
      `${url.origin} did not allow this page to read ${url.href}: the server sends no CORS header ` +
        `(Access-Control-Allow-Origin) or cannot be reached. Ask its owner to allow this site, ` +
        `or download the image and open the file here.`,
    );
  }
  return failure('network', `Could not reach ${describeOrigin(url)} to fetch ${url.href}. Check your connection.`);
}

/** The page's response if it made the request (see `EarlyResponse`), else this worker's own. */
async function request(url: URL, early: Promise<EarlyResponse> | null): Promise<Fetched> {
  const answer = early ? await early : null;
  if (answer?.kind === 'response') return { ...answer, ok: answer.status >= 200 && answer.status < 300 };
  if (answer?.kind === 'failed') throw unreachable(url);
  let response: Response;
  try {
    response = await fetch(url, { mode: 'cors', credentials: 'omit' });
  } catch {
    throw unreachable(url);
  }
  const { ok, status, statusText, headers, body } = response;
  return { ok, status, statusText, contentType: headers.get('content-type'), contentLength: headers.get('content-length'), body };
}

/**
 * Fetches `href` (or takes the page's response to it), feeding each chunk to the hash as it
 * arrives. The request goes out at once and the body is read at once; chunks that arrive before
 * the hash is ready (tiler-wasm's, while the module compiles) are fed to it when it is.
 */
async function fetchBytes(href: string, hashing: Promise<SourceHash>, early: Promise<EarlyResponse> | null): Promise<SourceBytes> {
  const url = new URL(href, self.location.href);
  const response = await request(url, early);
  if (!response.ok) {
    const what = response.status === 404 ? 'no such image (HTTP 404 Not Found)' : `HTTP ${response.status} ${response.statusText}`;
    throw failure('http', `${url.href}: ${what}. Check the address.`);
  }
  const { contentType } = response;
  const declared = Number(response.contentLength);
  const total = Number.isFinite(declared) && declared > 0 ? declared : null;
  // No body: nothing to read (and then not an image).
  if (!response.body) return { bytes: new Uint8Array(0), parts: null, contentType };
  const reader = response.body.getReader();

  const chunks: Uint8Array[] = [];
  let hash: SourceHash | null = null;
  let hashed = 0;
  const feed = () => {
    while (hash && hashed < chunks.length) hash.update(chunks[hashed++] as Uint8Array);
  };
  hashing.then(
    (h) => {
      hash = h;
      feed();
    },
    () => undefined,
  );
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
    feed();
    loaded += chunk.value.byteLength;
    // Progress at most every 1 MiB, not per network packet.
    if (loaded - lastReport >= 1 << 20) {
      lastReport = loaded;
      post({ type: 'progress', progress: { phase: 'fetch', loaded, total } });
    }
  }
  hash = await hashing;
  feed();
  post({ type: 'progress', progress: { phase: 'fetch', loaded, total: total ?? loaded } });
  return { bytes: joinChunks(chunks, loaded), parts: chunks, contentType };
}

async function readSource(
  source: ImageSource,
  hashing: Promise<SourceHash>,
  early: Promise<EarlyResponse> | null,
): Promise<SourceBytes & { what: string }> {
  if (source.kind === 'url') return { ...(await fetchBytes(source.url, hashing, early)), what: source.url };
  const hash = await hashing;
  try {
    const bytes = new Uint8Array(await source.blob.arrayBuffer());
    hash.update(bytes);
    post({ type: 'progress', progress: { phase: 'fetch', loaded: bytes.byteLength, total: bytes.byteLength } });
    return { bytes, parts: null, what: source.name, contentType: source.blob.type || null };
  } catch (e) {
    throw failure('read', `Could not read ${source.name}: ${toFailure(e).message}`);
  }
}

/** Adds which file was at fault to the core's messages for people, and whether tile-store could tile it instead. */
function explain(f: TilerFailure, what: string, contentType: string | null, serverCanTile: boolean): TilerFailure {
  switch (f.code) {
    case 'unknown_format':
      return failure(
        f.code,
        `${what} is ${f.message}` +
          (contentType?.startsWith('text/html')
            ? '; the server sent a web page instead, so the address is probably wrong.'
            : contentType
              ? `; the server called it ${contentType}.`
              : '.'),
      );
    case 'limits':
      if (!serverCanTile) {
        return {
          ...failure(
            f.code,
            `${what}: ${f.message}. Images this large cannot be tiled in the browser, and tile-store does not decode this format.`,
          ),
          serverCanTile,
        };
      }
      return failure(
        f.code,
        `${what}: ${f.message}. Images this large cannot be tiled in the browser; ` +
          'tile it on the server instead (`tile-store tile`, or `POST /pyramids`), which streams ' +
          'gigapixel TIFF and BigTIFF in bounded memory.',
      );
    case 'decode':
    case 'unsupported':
      return failure(f.code, `${what}: ${f.message}.`);
    default:
      return f;
  }
}

// ---- the pyramid ---------------------------------------------------------------------------

/** A tile's address. */
interface TileAddr {
  level: number;
  col: number;
  row: number;
}

/** Everything this worker holds for its one image; each message handler reads and changes it. */
class WorkerState {
  /** Set by the first `open`: one image per worker. */
  opened = false;
  tiler: Tiler | null = null;
  /** Set once something failed for good: every later tile request gets it. */
  fatal: TilerFailure | null = null;
  /** Made tiles by store name (from `Tiler.tileName`); the page may ask again after OpenSeadragon drops one. */
  readonly made = new Map<string, MadeTile>();
  /** Store names of the made tiles, in the order made (what the upload sends first). */
  readonly madeOrder: string[] = [];
  madeBytes = 0;
  totalTiles = 0;
  /** Tile requests from the page not answered yet, oldest first. */
  readonly requests = new Map<number, TileAddr>();
  /** The tiles nobody asked for yet, made when no request is waiting; null once all are made. */
  background: Generator<TileAddr> | null = null;
  uploader: PyramidUploader | null = null;
  /** Whether a step is queued on `turn`. */
  scheduled = false;
  /** Store names of the tiles given to helper workers and not received yet; the background skips them. */
  readonly delegated = new Set<string>();
  /** Helper workers still encoding their rows. */
  readonly helpers = new Set<Helper>();
  /** Answers `wantPreview` with the preview worker's port (see `latePreview`). */
  answerPreview: (port: MessagePort | null) => void = () => undefined;
  /** Set once `pyramidDone` is posted. */
  done = false;
  /** Hands rows to the helpers; called once, when the background reaches the full-resolution level. */
  startHelpers: (() => void) | null = null;
  /** The page's response to the image's request, when it makes it (`open`'s `earlyResponse`). */
  early: Promise<EarlyResponse> | null = null;
  answerEarly: (response: EarlyResponse) => void = () => undefined;
  /** The page's answer from the store, when it asks it (`open`'s `pageAsksStore`). */
  storeAnswer: Promise<StoreAnswer> | null = null;
  answerStore: (answer: StoreAnswer) => void = () => undefined;
}

const state = new WorkerState();

function* backgroundOrder(t: Tiler): Generator<TileAddr> {
  // Low resolution first: that is what a person sees first and what the higher levels don't need.
  for (let level = 0; level <= t.maxLevel; level++) {
    const grid = t.grid(level);
    if (!grid) continue;
    const [cols, rows] = grid;
    for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) yield { level, col, row };
  }
}

/** Keeps a made tile (here or by a helper) for the page's requests and the upload. */
function remember(s: WorkerState, name: string, { level, col, row }: TileAddr, bytes: Uint8Array): void {
  s.made.set(name, { level, col, row, bytes });
  s.madeOrder.push(name);
  s.madeBytes += bytes.byteLength;
  s.delegated.delete(name);
  s.uploader?.notify();
}

/** The tile's bytes, made now unless already made. */
function make(s: WorkerState, t: Tiler, addr: TileAddr): Uint8Array {
  const name = t.tileName(addr.level, addr.col, addr.row);
  const cached = s.made.get(name);
  if (cached) return cached.bytes;
  const bytes: Uint8Array = t.tile(addr.level, addr.col, addr.row);
  remember(s, name, addr, bytes);
  return bytes;
}

/** Posts `pyramidDone` once this worker's tiles and every helper's are in. */
function finishIfDone(s: WorkerState, t: Tiler): void {
  if (s.done || s.fatal || s.background !== null || s.helpers.size > 0) return;
  s.done = true;
  post({ type: 'progress', progress: { phase: 'tiles', done: s.made.size, total: s.totalTiles, level: t.maxLevel } });
  post({ type: 'pyramidDone', tiles: s.made.size, bytes: s.madeBytes });
  s.uploader?.notify();
}

function fail(s: WorkerState, e: unknown): void {
  if (s.fatal) return;
  s.fatal = toFailure(e);
  for (const h of s.helpers) h.stop();
  s.helpers.clear();
  post({ type: 'error', error: s.fatal });
  for (const id of s.requests.keys()) post({ type: 'tileError', id, error: s.fatal });
  s.requests.clear();
}

// A MessageChannel turn yields to incoming messages without setTimeout's 4 ms clamp.
const turn = new MessageChannel();
turn.port1.onmessage = () => {
  state.scheduled = false;
  step(state);
};
function schedule(s: WorkerState): void {
  if (!s.scheduled && !s.fatal) {
    s.scheduled = true;
    turn.port2.postMessage(null);
  }
}

/** Does one tile's work: a requested tile if any, else the next background tile. */
function step(s: WorkerState): void {
  const t = s.tiler;
  if (!t || s.fatal) return;
  const next = s.requests.entries().next();
  if (!next.done) {
    const [id, addr] = next.value;
    s.requests.delete(id);
    try {
      // A copy is transferred; the cached bytes stay here.
      const buffer = make(s, t, addr).slice().buffer;
      post({ type: 'tile', id, bytes: buffer }, [buffer]);
    } catch (e) {
      const f = toFailure(e);
      if (f.code === 'panic') {
        fail(s, e);
        return;
      }
      post({ type: 'tileError', id, error: f });
    }
    schedule(s);
    return;
  }
  if (!s.background) return;
  for (;;) {
    const n = s.background.next();
    if (n.done) {
      s.background = null;
      finishIfDone(s, t);
      return;
    }
    const addr = n.value;
    // Every lower level is made (the first view's tiles among them): the helpers join now, so that
    // on few cores they do not compete with the viewer's first tiles and the page drawing them.
    if (addr.level === t.maxLevel && s.startHelpers) {
      const start = s.startHelpers;
      s.startHelpers = null;
      try {
        start();
      } catch (e) {
        fail(s, e);
        return;
      }
    }
    const name = t.tileName(addr.level, addr.col, addr.row);
    if (s.made.has(name) || s.delegated.has(name)) continue;
    try {
      make(s, t, addr);
    } catch (e) {
      fail(s, e);
      return;
    }
    const grid = t.grid(addr.level);
    const levelEnd = grid !== undefined && addr.col === grid[0] - 1 && addr.row === grid[1] - 1;
    if (levelEnd || s.made.size % PROGRESS_EVERY === 0) {
      post({ type: 'progress', progress: { phase: 'tiles', done: s.made.size, total: s.totalTiles, level: addr.level } });
    }
    schedule(s);
    return;
  }
}

// ---- helper workers: several workers make one pyramid ----------------------------------------
//
// This worker decodes the image; tiles are then independent, so the bottom tile rows of the
// full-resolution level go to helper workers (more instances of this script, see `helperRole`).
// wasm instances share no memory without wasm threads, so each helper gets a copy of the pixel
// rows of one tile row at a time, in one of two slots (one is filled while the other is read):
// on a cross-origin isolated page the slots are a SharedArrayBuffer both workers hold; otherwise
// two ArrayBuffers that are transferred (moved, never cloned) to the helper and back. Either way
// the rows are copied once out of this instance and once into the helper's. A tile's bytes
// depend only on its pixels, so they are the ones this worker would make.

/**
 * The cost of copying rows out for the helpers, in units of encoding the same rows: measured by
 * `bench/wasm-phases.mjs` on the 24 MP bench photo (copying every full-resolution row out takes about
 * an eighth of encoding them). The helpers start once the lower levels are made, so only the
 * full-resolution level is shared, evenly but for this.
 */
const COPY_SHARE = 0.13;
/** Slots per helper: one being filled here while the helper reads the other. */
const SLOTS = 2;

/** One helper worker, through its port: the rows it is sent, the tiles it owes, a deadline for the next word. */
class Helper {
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Tiles sent for and not received yet. */
  owed = 0;
  /** Slots free for the next row: their index, and (transfer) the buffer to fill. */
  readonly free: Array<{ slot: number; buffer: ArrayBuffer | SharedArrayBuffer }> = [];

  constructor(
    readonly port: MessagePort,
    readonly index: number,
    /** The next tile row to send, and the end of its rows. */
    public next: number,
    readonly end: number,
    /** The slots, when shared; null when each slot is its own transferred buffer. */
    readonly memory: SharedArrayBuffer | null,
  ) {}

  get finished(): boolean {
    return this.next >= this.end && this.owed === 0;
  }

  /** Starts (or restarts) the silence deadline. */
  heard(onSilence: () => void): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(onSilence, HELPER_SILENCE_MS);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.port.onmessage = null;
    this.port.close();
  }
}

/**
 * Tile rows of the top level for each helper, bottom first: so that this worker's share of the top
 * level plus the copies it makes is about what each helper gets. An empty list when there is
 * nothing to split.
 */
function helperRows(rows: number, helpers: number): Array<[number, number]> {
  if (helpers === 0 || rows < 2) return [];
  // This worker copies what the helpers get: for x, the helpers' share, 1 - x + COPY_SHARE·x = x / helpers.
  const share = 1 / (1 + 1 / helpers - COPY_SHARE);
  const given = Math.min(rows - 1, Math.max(1, Math.round(rows * share)));
  const used = Math.min(helpers, given);
  const bands: Array<[number, number]> = [];
  let end = rows;
  for (let i = 0; i < used; i++) {
    const n = Math.floor(given / used) + (i < given % used ? 1 : 0);
    bands.push([end - n, end]);
    end -= n;
  }
  return bands;
}

/** Hands the bottom tile rows of the full-resolution level to the helpers; closes unused ports. */
function startHelpers(s: WorkerState, t: Tiler, info: PyramidInfo, options: Options | undefined, ports: MessagePort[]): void {
  const top = t.maxLevel;
  const grid = t.grid(top);
  const bands = grid ? helperRows(grid[1], ports.length) : [];
  for (const p of ports.slice(bands.length)) p.close();
  if (!grid || bands.length === 0) {
    post({ type: 'workers', workers: 1, memory: 'single' });
    return;
  }
  const columns = grid[0];
  const channels = t.channels;
  const stride = info.width * channels;
  // The most rows one tile row covers: the tile size and the overlap on both sides.
  const slotBytes = Math.min(info.height, info.tileSize + 2 * info.overlap) * stride;
  const shared = self.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';

  /** Copies the helper's next tile row into a free slot and sends it, while both remain. */
  const feed = (helper: Helper) => {
    while (!s.fatal && helper.next < helper.end && helper.free.length > 0) {
      const { slot, buffer } = helper.free.shift() as { slot: number; buffer: ArrayBuffer | SharedArrayBuffer };
      const row = helper.next++;
      const [y0, y1] = t.bandRows(top, row, row + 1) as [number, number];
      const pixels = new Uint8Array(buffer, shared ? slot * slotBytes : 0, (y1 - y0) * stride);
      t.copyRows(top, y0, y1, pixels);
      for (let col = 0; col < columns; col++) s.delegated.add(t.tileName(top, col, row));
      helper.owed += columns;
      const request: RowRequest = {
        type: 'row',
        width: info.width,
        height: info.height,
        options,
        level: top,
        row,
        columns,
        firstRow: y0,
        channels,
        pixels,
        slot,
      };
      helper.port.postMessage(request, shared ? [] : [buffer as ArrayBuffer]);
    }
  };

  bands.forEach(([row0, row1], i) => {
    const helper = new Helper(ports[i] as MessagePort, i + 1, row0, row1, shared ? new SharedArrayBuffer(SLOTS * slotBytes) : null);
    if (helper.memory) {
      for (let slot = 0; slot < SLOTS; slot++) helper.free.push({ slot, buffer: helper.memory });
    } else {
      for (let slot = 0; slot < SLOTS; slot++) helper.free.push({ slot, buffer: new ArrayBuffer(slotBytes) });
    }
    s.helpers.add(helper);
    const silence = () =>
      fail(
        s,
        failure(
          'worker',
          `Tiler helper worker ${helper.index} sent nothing for ${HELPER_SILENCE_MS / 1000} s (it may have run out of memory); the pyramid cannot be finished.`,
        ),
      );
    helper.port.onmessage = (e: MessageEvent<FromHelper>) => {
      if (s.fatal) return;
      const msg = e.data;
      helper.heard(silence);
      switch (msg.type) {
        case 'tile': {
          const name = t.tileName(msg.level, msg.col, msg.row);
          if (!s.made.has(name)) remember(s, name, msg, new Uint8Array(msg.bytes));
          helper.owed -= 1;
          if (s.made.size % PROGRESS_EVERY === 0) {
            post({ type: 'progress', progress: { phase: 'tiles', done: s.made.size, total: s.totalTiles, level: msg.level } });
          }
          if (helper.finished) {
            helper.stop();
            s.helpers.delete(helper);
            finishIfDone(s, t);
          }
          return;
        }
        case 'free': {
          const buffer = helper.memory ?? msg.buffer;
          if (!buffer) {
            fail(s, failure('worker', `Tiler helper worker ${helper.index} kept a transferred slot.`));
            return;
          }
          try {
            helper.free.push({ slot: msg.slot, buffer });
            feed(helper);
          } catch (err) {
            fail(s, err);
          }
          return;
        }
        case 'error':
          fail(s, failure(msg.error.code, `Tiler helper worker ${helper.index} failed: ${msg.error.message}`));
          return;
      }
    };
    helper.port.onmessageerror = () => fail(s, failure('worker', `A message from tiler helper worker ${helper.index} could not be read.`));
    helper.heard(silence);
    feed(helper);
  });
  post({ type: 'workers', workers: bands.length + 1, memory: shared ? 'shared' : 'transfer' });
}

/**
 * The helper's side: loads the module at once (while the image downloads and decodes in the
 * main tiler worker), then for each tile row it is sent copies the pixels in, frees the slot and
 * encodes the row's tiles, posting each as it is made.
 */
function helperRole(port: MessagePort, wasmUrl: string | undefined): void {
  const wasm = loadWasm(wasmUrl);
  wasm.catch(() => undefined);
  const answer = (msg: FromHelper, transfer: Transferable[] = []) => port.postMessage(msg, transfer);
  let failed = false;
  port.onmessage = (e: MessageEvent<RowRequest>) => {
    const m = e.data;
    wasm
      .then(() => {
        if (failed) return;
        const band = new TileBand(m.width, m.height, m.level, m.firstRow, m.channels, m.pixels, m.options);
        try {
          // Copied into this instance: the slot can be filled again while the tiles are encoded.
          const buffer = m.pixels.buffer;
          if (buffer instanceof ArrayBuffer) answer({ type: 'free', slot: m.slot, buffer }, [buffer]);
          else answer({ type: 'free', slot: m.slot, buffer: null });
          for (let col = 0; col < m.columns; col++) {
            const bytes: Uint8Array = band.tile(col, m.row);
            const out = bytes.buffer as ArrayBuffer;
            answer({ type: 'tile', level: m.level, col, row: m.row, bytes: out }, [out]);
          }
        } finally {
          band.free();
        }
      })
      .catch((err) => {
        failed = true;
        answer({ type: 'error', error: toFailure(err) });
      });
  };
}

/**
 * The committed pyramid `pyramidId`, if the store has it, its manifest parsed by tiler-wasm once
 * `wasm` is loaded (the request does not wait for it). One quick try: if the store cannot say, the
 * image is tiled here (and the upload retries the store).
 */
async function storedPyramid(store: TileStoreClient, pyramidId: string, wasm: Promise<void>): Promise<PyramidInfo | null> {
  let dziXml: string | null;
  try {
    dziXml = await store.manifest(pyramidId);
  } catch {
    return null;
  }
  if (dziXml === null) return null;
  await wasm;
  try {
    return { ...parseDzi(dziXml), dziXml, pyramidId };
  } catch (e) {
    const f = toFailure(e);
    throw failure(f.code, `tile-store's manifest of ${pyramidId} is not a Deep Zoom .dzi: ${f.message}`);
  }
}

/** Starts uploading what is being tiled; the store's listing decides what is sent. */
function startUpload(s: WorkerState, store: TileStoreClient, info: PyramidInfo, batchBytes: number | undefined): void {
  const tiles = {
    order: s.madeOrder,
    get: (name: string) => s.made.get(name),
    get complete() {
      return s.background === null && s.made.size >= s.totalTiles;
    },
  };
  const report = (upload: UploadProgress) => post({ type: 'upload', upload });
  s.uploader = new PyramidUploader(store, info.pyramidId, info, info.dziXml, tiles, report, batchBytes);
  void s.uploader.run();
}

/**
 * Sends a large image's bytes to the preview worker, which decodes a small picture of it (the
 * browser's decoder, or tiler-wasm's DCT-scaled one for a JPEG). Not TIFF: browsers do not decode
 * it. The download's chunks are handed over (they are copied into `bytes` already), else a copy.
 */
function requestPreview(
  port: MessagePort | undefined,
  decoder: PreviewDecoder,
  { bytes, parts }: SourceBytes,
  metadata: Metadata,
  options: Options | undefined,
): void {
  if (!port) return;
  const { format, width, height, orientation, hasAlpha } = metadata;
  if (format !== 'tiff' && Math.max(width, height) >= 2 * PREVIEW_SIDE) {
    const given = parts ?? [bytes.slice()];
    const request: PreviewRequest = {
      parts: given,
      minSide: PREVIEW_SIDE,
      limits: options?.limits,
      decoder,
      format,
      width,
      height,
      orientation,
      hasAlpha,
    };
    port.postMessage(request, [...new Set(given.map((p) => p.buffer as ArrayBuffer))]);
  }
  port.close();
}

/**
 * A `metadata.format` image (AVIF: tiler-wasm has no AV1 decoder) decoded by the browser's own
 * decoder and opened from its pixels. `probe` has read the size from the header and checked it
 * against the limits before this allocates anything; the decoder applies `irot` (upright, as
 * vips's heifload) and the sRGB canvas converts the colour, as the core does for other formats.
 * A browser without a decoder for it gets the core's own refusal, which names the format.
 */
async function openDecoded(bytes: Uint8Array, metadata: Metadata, options: Options | undefined): Promise<Tiler> {
  const type = `image/${metadata.format}`;
  const viaDecoder = typeof ImageDecoder === 'function' && (await ImageDecoder.isTypeSupported(type));
  if (!viaDecoder && typeof createImageBitmap !== 'function') return Tiler.open(bytes, options);
  if (typeof OffscreenCanvas !== 'function') return Tiler.open(bytes, options);
  let picture: { source: CanvasImageSource; width: number; height: number; close(): void };
  try {
    if (viaDecoder) {
      const decoder = new ImageDecoder({ data: bytes, type, colorSpaceConversion: 'default', preferAnimation: false });
      try {
        const { image } = await decoder.decode({ frameIndex: 0 });
        picture = { source: image, width: image.displayWidth, height: image.displayHeight, close: () => image.close() };
      } finally {
        decoder.close();
      }
    } else {
      const bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }), {
        imageOrientation: 'from-image',
        colorSpaceConversion: 'default',
        premultiplyAlpha: 'none',
      });
      picture = { source: bitmap, width: bitmap.width, height: bitmap.height, close: () => bitmap.close() };
    }
  } catch (e) {
    // The header read, so the browser's decoder refused the data: damaged, or a variant it lacks.
    throw failure('decode', `the browser cannot decode this ${type} image (${toFailure(e).message})`);
  }
  let pixels: Uint8Array;
  try {
    const { width, height } = metadata;
    if (picture.width !== width || picture.height !== height) {
      throw failure('decode', `the browser decoded a ${picture.width}×${picture.height} image where the header says ${width}×${height}`);
    }
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { colorSpace: 'srgb', alpha: metadata.hasAlpha, willReadFrequently: true });
    if (!context) throw failure('worker', 'This browser gives workers no 2D canvas to read decoded pixels from.');
    context.drawImage(picture.source, 0, 0, width, height);
    // Let the decoded frame go before getImageData makes a third copy of the image (closing twice is harmless).
    picture.close();
    const data = context.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data;
    pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } finally {
    picture.close();
  }
  return Tiler.fromPixels(metadata, pixels, options);
}

/** The module, compiled once: from `wasmUrl` when the page gave one, else where the bundler put it. */
async function loadWasm(wasmUrl: string | undefined): Promise<void> {
  try {
    await init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  } catch (e) {
    throw failure('wasm_load', `Could not load the tiler (WebAssembly): ${toFailure(e).message}`);
  }
}

type OpenMessage = Extract<ToWorker, { type: 'open' }>;

async function open(
  s: WorkerState,
  { source, options, target, previewPort, previewDecoder = 'browser', wasmUrl, latePreview, helpers = [] }: OpenMessage,
): Promise<void> {
  // The module compiles while the first request (the manifest, or the image) is on its way.
  const wasm = loadWasm(wasmUrl);
  wasm.catch(() => undefined);
  const store = target ? new TileStoreClient(target.store) : null;
  // An id the app knows: if the store has it, the image is not even downloaded.
  if (store && target?.pyramidId) {
    const stored = await storedPyramid(store, target.pyramidId, wasm);
    if (stored) {
      previewPort?.close();
      for (const p of helpers) p.close();
      post({ type: 'stored', info: stored, metadata: null });
      return;
    }
  }
  // The image is to be decoded here after all: the page starts the preview worker while it downloads.
  const previewReady: Promise<MessagePort | null | undefined> = latePreview
    ? new Promise((resolve) => {
        s.answerPreview = resolve;
        post({ type: 'wantPreview' });
      })
    : Promise.resolve(previewPort);
  const hashing = sourceHash(wasm);
  hashing.catch(() => undefined);
  let read: SourceBytes & { what: string };
  let identify: Promise<string>;
  try {
    read = await readSource(source, hashing, s.early);
    identify = (await hashing).finish(read.bytes, options);
  } finally {
    hashing.then(
      (h) => h.free(),
      () => undefined,
    );
  }
  identify.catch(() => undefined);
  const { bytes, what, contentType } = read;
  // The store is asked as soon as the id is known, before the header is read and the preview
  // started; a known id it did not have is not asked for twice. When the page asks it (it hashed
  // the body natively as it came), its answer stands, unless it could not ask.
  const byId = (): Promise<PyramidGeometry | null> =>
    store ? identify.then((id) => (id !== target?.pyramidId ? storedPyramid(store, id, wasm) : null)) : Promise.resolve(null);
  const fromPage = s.storeAnswer;
  const asking: Promise<PyramidGeometry | null> = fromPage
    ? fromPage.then((a) => (a.kind === 'found' ? a.info : a.kind === 'missing' ? null : byId()))
    : byId();
  // `undefined` until the store has answered.
  let answer: PyramidGeometry | null | undefined;
  const answered = asking.then(
    (info) => {
      answer = info;
    },
    () => {
      answer = null;
    },
  );
  // The header (the EXIF panel) and a large image's preview wait a moment for the store's answer:
  // a pyramid it has needs no preview, and this thread's probe would hold back the request.
  if (store) {
    let waited: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      answered,
      new Promise<void>((resolve) => {
        waited = setTimeout(resolve, STORE_ANSWER_WAIT_MS);
      }),
    ]);
    clearTimeout(waited);
  }
  await wasm;
  let metadata: Metadata | null = null;
  let probeFailure: unknown = null;
  try {
    metadata = probe(bytes, options?.limits);
    post({ type: 'metadata', metadata });
    // Unless the store has it: then the preview would only take a core from the stored tiles.
    if (answer) previewReady.then((port) => port?.close());
    else requestPreview((await previewReady) ?? undefined, previewDecoder, read, metadata, options);
  } catch (e) {
    // Over the limits, say: the store may still have the pyramid, so this is reported only if not.
    probeFailure = e;
    previewReady.then((port) => port?.close());
  }
  const pyramidId = await identify;
  const stored = await asking;
  if (stored) {
    for (const p of helpers) p.close();
    post({ type: 'stored', info: stored, metadata });
    return;
  }
  try {
    if (probeFailure !== null) throw probeFailure;
    post({ type: 'progress', progress: { phase: 'decode', bytes: bytes.byteLength } });
    // The format is sniffed once, by `probe`: an AVIF is decoded by the browser.
    const t = metadata?.format === 'avif' ? await openDecoded(bytes, metadata, options) : Tiler.open(bytes, options);
    const info: PyramidInfo = { ...t.geometry(), dziXml: t.dziXml(), pyramidId };
    s.tiler = t;
    s.totalTiles = info.tileCount;
    s.background = backgroundOrder(t);
    post({ type: 'opened', info, metadata: t.metadata() });
    post({ type: 'progress', progress: { phase: 'tiles', done: 0, total: s.totalTiles, level: 0 } });
    s.startHelpers = () => startHelpers(s, t, info, options, helpers);
    schedule(s);
    if (store) startUpload(s, store, info, target?.batchBytes);
  } catch (e) {
    throw explain(toFailure(e), what, contentType, serverCanTile(bytes));
  }
}

/** One handler per message type. */
const handlers: { [K in ToWorker['type']]: (s: WorkerState, msg: Extract<ToWorker, { type: K }>) => void } = {
  open(s, msg) {
    if (s.opened) {
      post({ type: 'error', error: failure('worker', 'This worker already holds an image; start a new one.') });
      return;
    }
    s.opened = true;
    if (msg.earlyResponse) s.early = new Promise((resolve) => (s.answerEarly = resolve));
    if (msg.pageAsksStore) s.storeAnswer = new Promise((resolve) => (s.answerStore = resolve));
    open(s, msg).catch((e) => fail(s, e));
  },
  helper(s, { port, wasmUrl }) {
    if (s.opened) {
      post({ type: 'error', error: failure('worker', 'This worker already holds an image; start a new one.') });
      return;
    }
    s.opened = true;
    helperRole(port, wasmUrl);
  },
  tile(s, { id, level, col, row }) {
    if (s.fatal) {
      post({ type: 'tileError', id, error: s.fatal });
      return;
    }
    s.requests.set(id, { level, col, row });
    schedule(s);
  },
  cancelTile(s, { id }) {
    s.requests.delete(id);
  },
  response(s, { response }) {
    s.answerEarly(response);
  },
  storeAnswer(s, { answer }) {
    s.answerStore(answer);
  },
  previewPort(s, { port }) {
    s.answerPreview(port);
  },
};

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  (handlers[msg.type] as (s: WorkerState, m: ToWorker) => void)(state, msg);
};

// Nothing may end the worker silently.
self.addEventListener('error', (e) => {
  e.preventDefault();
  fail(state, e.error ?? e.message);
});
self.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  fail(state, e.reason);
});
