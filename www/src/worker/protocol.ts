/** Messages between the page and the tiler worker. Bytes always travel as transferred ArrayBuffers. */
import type { Limits, Metadata, Options, TileFormat } from '@tessera/tiler-wasm';

/** Every failure the page can see; `code` is stable, `message` is for people. */
export interface TilerFailure {
  code: FailureCode;
  message: string;
}

export type FailureCode =
  // From the tiler core (see tiler-wasm's Error::code) and its bindings.
  | 'unknown_format'
  | 'unsupported'
  | 'decode'
  | 'limits'
  | 'invalid_option'
  | 'no_such_tile'
  | 'dzi'
  | 'encode'
  | 'invalid_argument'
  | 'panic'
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

/** The pyramid's geometry, enough to build an OpenSeadragon tile source. */
export interface PyramidInfo {
  width: number;
  height: number;
  tileSize: number;
  overlap: number;
  maxLevel: number;
  tileCount: number;
  format: TileFormat;
  mime: string;
  dziXml: string;
  /** Content address shared with tile-store (tiler-wasm's pyramid id recipe). */
  pyramidId: string;
}

export type ToWorker =
  /** `previewPort`: where to send a large JPEG's bytes for the preview worker (see PreviewRequest). */
  | { type: 'open'; source: ImageSource; options?: Options; previewPort?: MessagePort }
  | { type: 'tile'; id: number; level: number; col: number; row: number }
  | { type: 'cancelTile'; id: number };

export type Progress =
  | { phase: 'fetch'; loaded: number; total: number | null }
  | { phase: 'decode'; bytes: number }
  | { phase: 'tiles'; done: number; total: number; level: number };

export type FromWorker =
  | { type: 'progress'; progress: Progress }
  | { type: 'metadata'; metadata: Metadata }
  | { type: 'opened'; info: PyramidInfo; metadata: Metadata }
  | { type: 'tile'; id: number; bytes: ArrayBuffer }
  | { type: 'tileError'; id: number; error: TilerFailure }
  | { type: 'pyramidDone'; tiles: number; bytes: number }
  | { type: 'error'; error: TilerFailure };

/** Page → preview worker: the port on which the tiler worker will send the bytes. */
export interface PreviewPort {
  type: 'port';
  port: MessagePort;
}

/** Tiler worker → preview worker, through that port: a large JPEG to preview. */
export interface PreviewRequest {
  bytes: ArrayBuffer;
  minSide: number;
  limits?: Limits;
}

/** Preview worker → page: a small JPEG to show until the tiles arrive, or nothing to show. */
export type FromPreviewWorker = { type: 'preview'; bytes: ArrayBuffer } | { type: 'none' };
