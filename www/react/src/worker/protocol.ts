/** Messages between the page and the tiler worker. Bytes always travel as transferred ArrayBuffers. */
import type { Geometry, Limits, Metadata, Options, SourceFormat, TilerErrorCode } from '@tessera/tiler-wasm';
import type { StoreFailure, StoreSettings } from '../api/tileStore.js';

/** Every failure the page can see; `code` is stable, `message` is for people. */
export interface TilerFailure {
  code: FailureCode;
  message: string;
  /** `false` for a `limits` failure tile-store cannot take over either (an AVIF: only browsers decode it). */
  serverCanTile?: boolean;
}

export type FailureCode =
  // From the tiler core and its bindings (types generated from tiler-wasm's Rust types).
  | TilerErrorCode
  // From the worker around it.
  | 'http'
  | 'fetch_blocked'
  | 'network'
  | 'read'
  | 'wasm_load'
  | 'worker'
  | 'aborted';

/** Where the image comes from: a URL the worker fetches itself, or bytes the page already has. */
export type ImageSource = { kind: 'url'; url: string } | { kind: 'blob'; blob: Blob; name: string };

/**
 * A pyramid's geometry and id: what a viewer needs to read its tiles. The geometry (levels and
 * tile count included) always comes from tiler-wasm: a tiler's, or a stored `.dzi` it parsed (an
 * app may keep it and give it back with the id, see `ImageHint`).
 */
export interface PyramidGeometry extends Geometry {
  /** Content address shared with tile-store (tiler-wasm's pyramid id recipe). */
  pyramidId: string;
}

/** A pyramid's geometry with its `.dzi` manifest, as the worker made or read it. */
export interface PyramidInfo extends PyramidGeometry {
  dziXml: string;
}

/** Where a stored pyramid is: the store may have it already, or gets what the worker tiles. */
export interface StoreTarget {
  /** tile-store, with its URL resolved against the page. */
  store: StoreSettings;
  /** Bytes per upload request; default about 4 MiB. */
  batchBytes?: number;
  /** The image's pyramid id if the app knows it: the store is asked for it before the image is fetched. */
  pyramidId?: string;
}

/** The upload of the pyramid to tile-store; `none` when no store is configured. */
export type UploadState = 'none' | 'uploading' | 'saved' | 'reused' | 'failed';

export interface UploadProgress {
  state: UploadState;
  /** Tiles the store holds / the pyramid's tiles. */
  sent: number;
  total: number;
  /** Tiles the store already had when the upload started (a resumed upload skips them). */
  found: number;
  /** Tiles sent again because the store lost them before the commit. */
  resent: number;
  /** Why the upload is waiting to retry, while it is. */
  retrying: string | null;
  error: StoreFailure | null;
}

export type ToWorker =
  /** `previewPort`: where to send a large image's bytes for the preview worker (see PreviewRequest). */
  /** `wasmUrl`: where to load tiler_wasm_bg.wasm from instead of the bundler's URL. */
  /** `previewDecoder`: which decoder the preview worker uses first (default `browser`). */
  /** `earlyResponse`: the page fetches the URL source itself and sends a `response` message next. */
  /**
   * `pageAsksStore`: the page also hashes the body it fetched (natively) and asks the store itself,
   * then sends a `storeAnswer` message: this worker does not ask the store for the image's id.
   */
  | {
      type: 'open';
      source: ImageSource;
      options?: Options;
      target?: StoreTarget;
      previewPort?: MessagePort;
      previewDecoder?: PreviewDecoder;
      wasmUrl?: string;
      earlyResponse?: boolean;
      pageAsksStore?: boolean;
      /**
       * No `previewPort` yet: the page starts the preview worker when this worker asks (`wantPreview`),
       * which it does once it is to decode the image (a known id the store did not have).
       */
      latePreview?: boolean;
      /** Ports to the helper workers (`helper` messages), which encode some of the full-resolution tiles. */
      helpers?: MessagePort[];
    }
  /**
   * Makes this worker a helper of another tiler worker (see `TilerHelpers`): it encodes the tile
   * rows that worker sends through `port`. `wasmUrl` as for `open`.
   */
  | { type: 'helper'; port: MessagePort; wasmUrl?: string }
  | { type: 'response'; response: EarlyResponse }
  | { type: 'storeAnswer'; answer: StoreAnswer }
  /** The answer to `wantPreview`: the preview worker's port, or null if it could not start. */
  | { type: 'previewPort'; port: MessagePort | null }
  | { type: 'tile'; id: number; level: number; col: number; row: number }
  | { type: 'cancelTile'; id: number };

/**
 * The page's answer to a URL source's request. The page makes the request as it starts the worker,
 * so that the download overlaps the worker's start, and hands over the response's head and its body
 * as a transferred stream; `failed` if fetch rejected (unreachable, or CORS refused); `unsent` if the
 * body could not be transferred (no transferable streams): the worker then fetches the URL itself.
 */
export type EarlyResponse =
  | {
      kind: 'response';
      status: number;
      statusText: string;
      contentType: string | null;
      contentLength: string | null;
      body: ReadableStream<Uint8Array> | null;
    }
  | { kind: 'failed' }
  | { kind: 'unsent' };

/**
 * What the page learnt from the store about a URL source it hashed (`pageAsksStore`): the store has
 * its pyramid (`found`: the page opens it; this worker only reads the header for the metadata), has
 * not (`missing`), or the page could not ask (`unknown`: too large to hash there, no body, the store
 * did not answer) and this worker asks by the id as usual.
 */
export type StoreAnswer = { kind: 'found'; info: PyramidGeometry } | { kind: 'missing' } | { kind: 'unknown' };

export type Progress =
  | { phase: 'fetch'; loaded: number; total: number | null }
  | { phase: 'decode'; bytes: number }
  | { phase: 'tiles'; done: number; total: number; level: number };

/**
 * How the pyramid is made: by this one worker (`single`), or with helper workers that got their
 * rows of the full-resolution image in one `SharedArrayBuffer` (`shared`, on a cross-origin
 * isolated page) or each in its own transferred `ArrayBuffer` (`transfer`).
 */
export type TilerMemory = 'single' | 'shared' | 'transfer';

/**
 * Tiler worker → helper worker: encode every tile of tile row `row` of `level`. The pixels are the
 * rows those tiles cover, in one of the helper's two slots: a view of a `SharedArrayBuffer` both
 * workers hold (`shared`), or a transferred `ArrayBuffer` the helper sends back (`transfer`).
 */
export interface RowRequest {
  type: 'row';
  /** The upright full-resolution image's size, and the tiling options: the pyramid's layout. */
  width: number;
  height: number;
  options?: Options;
  level: number;
  row: number;
  columns: number;
  /** Pixel rows `firstRow..` of `level`, `channels` bytes a pixel. */
  firstRow: number;
  channels: number;
  pixels: Uint8Array;
  slot: number;
}

/** Helper worker → tiler worker: a tile made, a slot read (its buffer back, when transferred), or why it failed. */
export type FromHelper =
  | { type: 'tile'; level: number; col: number; row: number; bytes: ArrayBuffer }
  | { type: 'free'; slot: number; buffer: ArrayBuffer | null }
  | { type: 'error'; error: TilerFailure };

export type FromWorker =
  | { type: 'progress'; progress: Progress }
  /** Start the preview worker now and send its port (`previewPort`); see `latePreview`. */
  | { type: 'wantPreview' }
  /** How many workers make the pyramid, and how the helpers got their pixels. */
  | { type: 'workers'; workers: number; memory: TilerMemory }
  | { type: 'metadata'; metadata: Metadata }
  | { type: 'opened'; info: PyramidInfo; metadata: Metadata }
  | { type: 'tile'; id: number; bytes: ArrayBuffer }
  | { type: 'tileError'; id: number; error: TilerFailure }
  | { type: 'pyramidDone'; tiles: number; bytes: number }
  /** The store has this pyramid committed: nothing is decoded; open it from the store. */
  | { type: 'stored'; info: PyramidGeometry; metadata: Metadata | null }
  | { type: 'upload'; upload: UploadProgress }
  | { type: 'error'; error: TilerFailure };

/** Page → preview worker: the port on which the tiler worker will send the bytes. */
export interface PreviewPort {
  type: 'port';
  port: MessagePort;
  wasmUrl?: string;
}

/**
 * Which decoder makes the preview: `browser` is the browser's own (`createImageBitmap`, resized,
 * EXIF-oriented and converted to sRGB as the pyramid is), falling back to `wasm` (tiler-wasm's
 * DCT-scaled `previewJpeg`, JPEG only) when the browser cannot; `wasm` skips the browser's.
 */
export type PreviewDecoder = 'browser' | 'wasm';

/** Tiler worker → preview worker, through that port: a large image to preview. */
export interface PreviewRequest {
  /** The image's bytes, in the chunks they were downloaded in. */
  parts: Uint8Array[];
  /** The longer side of the preview, at least (and at most the image's). */
  minSide: number;
  limits?: Limits;
  decoder: PreviewDecoder;
  /** The image as `probe` read it: container, upright size, EXIF orientation, alpha. */
  format: SourceFormat;
  width: number;
  height: number;
  orientation: number;
  hasAlpha: boolean;
}

/** Preview worker → page: a small picture (JPEG, or PNG with alpha) to show until the tiles arrive, or nothing. */
export type FromPreviewWorker = { type: 'preview'; bytes: ArrayBuffer; mime: string; decoder: PreviewDecoder } | { type: 'none' };
