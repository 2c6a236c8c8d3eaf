/**
 * Uploads a pyramid the worker is making to tile-store, beside the tiling and never in its way:
 * tiles are sent in the order they were made (so the ones the viewer asked for go first), in
 * batches of about 4 MiB, and the manifest is committed last, once every tile is stored.
 *
 * Resuming is the same path: the store's listing says what this writer has staged, and only the
 * rest is sent.
 * A commit answered 409 with missing tiles sends those and commits again; the store itself
 * refuses to commit an incomplete pyramid, so no half pyramid is ever served.
 */
import { TileStoreClient } from '../api/tileStore.js';
import { BatchEncoder } from '@tessera/tiler-wasm';
import type { TileFormat } from '@tessera/tiler-wasm';
import type { EncodedBatch, StoreFailure, UploadGeometry } from '../api/tileStore.js';
import type { UploadProgress } from './protocol.js';

/** Bytes per batch request by default (tile-store's README asks for about 4 MiB). */
export const BATCH_BYTES = 4 << 20;
/** Commits answered "missing tiles" before giving up (each one re-sends what was missing). */
const COMMIT_ROUNDS = 3;

/** One made tile: its address and its bytes. */
export interface MadeTile {
  level: number;
  col: number;
  row: number;
  bytes: Uint8Array;
}

/** What the uploader reads from the worker: tiles by store name, in the order they were made. */
interface MadeTiles {
  /**
   * Names of the tiles made so far as the store lists them (`level/col_row.ext`, from tiler-wasm's
   * `Tiler.tileName`), oldest first; only ever appended to.
   */
  readonly order: readonly string[];
  get(name: string): MadeTile | undefined;
  /** Whether every tile of the pyramid is made. */
  readonly complete: boolean;
}

export class PyramidUploader {
  private readonly present = new Set<string>();
  private cursor = 0;
  private batchBytes: number;
  private sent = 0;
  private found = 0;
  private resent = 0;
  private retrying: string | null = null;
  private wake: (() => void) | null = null;
  private readonly store: TileStoreClient;

  constructor(
    store: TileStoreClient,
    private readonly id: string,
    private readonly geometry: UploadGeometry & { format: TileFormat; tileCount: number },
    private readonly dziXml: string,
    private readonly tiles: MadeTiles,
    private readonly report: (progress: UploadProgress) => void,
    batchBytes: number = BATCH_BYTES,
  ) {
    this.batchBytes = batchBytes;
    // Retries are reported, so a person sees why the count stopped moving. A client of its own
    // also keeps this upload's session (anonymous writes): the listing, every batch and the commit
    // carry the session the store handed out on the first of them.
    this.store = new TileStoreClient(store.settings, (reason, delayMs) => {
      this.retrying = `${reason.message}; retrying in ${(delayMs / 1000).toFixed(1)} s`;
      this.progress('uploading');
    });
  }

  /** Called by the worker whenever it made tiles or finished the pyramid. */
  notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Runs to the end: `saved`, or `failed` with the reason. Never throws. */
  async run(): Promise<void> {
    try {
      await this.upload();
      this.progress('saved');
    } catch (e) {
      this.progress('failed', asFailure(e));
    }
  }

  private progress(state: UploadProgress['state'], error?: StoreFailure): void {
    this.report({
      state,
      sent: this.sent,
      total: this.geometry.tileCount,
      found: this.found,
      resent: this.resent,
      retrying: state === 'uploading' ? this.retrying : null,
      error: error ?? null,
    });
  }

  private async upload(): Promise<void> {
    this.progress('uploading');
    const listing = await this.store.listTiles(this.id);
    this.retrying = null;
    if (listing.committed) return;
    for (const name of listing.tiles) this.present.add(name);
    this.found = this.present.size;
    this.sent = this.present.size;
    this.progress('uploading');

    for (;;) {
      const batch = this.nextBatch();
      if (batch.length === 0) {
        if (this.tiles.complete && this.cursor >= this.tiles.order.length) break;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      await this.send(batch);
    }

    for (let round = 1; ; round++) {
      const result = await this.store.commit(this.id, this.dziXml);
      this.retrying = null;
      if (result.kind === 'committed') return;
      // The store lost tiles it had acknowledged (or another client deleted them): send them again.
      if (round >= COMMIT_ROUNDS) {
        throw {
          code: 'store_conflict',
          message: `tile-store still misses ${result.count} tiles after ${round} commits`,
        } satisfies StoreFailure;
      }
      const listing = await this.store.listTiles(this.id);
      const stored = new Set(listing.tiles);
      const missing = this.tiles.order.filter((name) => !stored.has(name));
      for (const name of missing) this.present.delete(name);
      this.sent = this.present.size;
      this.resent += missing.length;
      for (let at = 0; at < missing.length; ) {
        const batch: string[] = [];
        let bytes = 0;
        while (at < missing.length && (batch.length === 0 || bytes + this.size(missing[at]) <= this.batchBytes)) {
          bytes += this.size(missing[at]);
          batch.push(missing[at++]);
        }
        await this.send(batch);
      }
    }
  }

  private size(name: string): number {
    return this.tiles.get(name)?.bytes.byteLength ?? 0;
  }

  /** Up to `batchBytes` of made tiles the store does not have, oldest first. */
  private nextBatch(): string[] {
    const batch: string[] = [];
    let bytes = 0;
    const order = this.tiles.order;
    while (this.cursor < order.length) {
      const name = order[this.cursor];
      if (this.present.has(name)) {
        this.cursor++;
        continue;
      }
      const size = this.size(name);
      if (batch.length > 0 && bytes + size > this.batchBytes) break;
      batch.push(name);
      bytes += size;
      this.cursor++;
    }
    return batch;
  }

  /** The named tiles framed in the batch format, by the wasm module this worker tiles with. */
  private encode(names: string[]): EncodedBatch {
    const encoder = new BatchEncoder();
    try {
      for (const name of names) {
        const tile = this.tiles.get(name);
        if (!tile) throw { code: 'store_protocol', message: `tile ${name} was never made` } satisfies StoreFailure;
        encoder.push(tile.level, tile.col, tile.row, this.geometry.format, tile.bytes);
      }
      return { body: encoder.finish(), contentType: encoder.contentType, count: names.length };
    } finally {
      encoder.free();
    }
  }

  /** Sends one batch; a store with a smaller request limit (413) gets it in halves. */
  private async send(names: string[]): Promise<void> {
    const batch = this.encode(names);
    try {
      await this.store.uploadBatch(this.id, batch, this.geometry);
    } catch (e) {
      const f = asFailure(e);
      if (f.code !== 'store_too_large' || names.length < 2) throw f;
      const bytes = batch.body.byteLength;
      this.batchBytes = Math.max(1, Math.floor(bytes / 2));
      const half = Math.ceil(names.length / 2);
      await this.send(names.slice(0, half));
      await this.send(names.slice(half));
      return;
    }
    this.retrying = null;
    for (const name of names) this.present.add(name);
    this.sent = this.present.size;
    this.progress('uploading');
  }
}

function asFailure(e: unknown): StoreFailure {
  if (typeof e === 'object' && e !== null && 'code' in e && 'message' in e) return e as StoreFailure;
  return { code: 'store_protocol', message: e instanceof Error ? e.message : String(e) };
}
