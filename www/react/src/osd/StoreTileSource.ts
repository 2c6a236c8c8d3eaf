/** A pyramid committed to tile-store, opened by OpenSeadragon as the plain Deep Zoom source it is. */
import OpenSeadragon from 'openseadragon';
import type { Geometry } from '@tessera/tiler-wasm';

/**
 * The most tiles `prefetchHome` asks for in its one request (tile-store answers up to 192): a
 * whole-image view of a usual viewer and the coarser levels beneath it need a few dozen.
 */
const MAX_PREFETCH = 128;

interface JobData {
  /** The image element OpenSeadragon's own loader would have made (its abort clears it). */
  imageRequest?: HTMLImageElement;
  aborted?: boolean;
}

export class StoreTileSource extends OpenSeadragon.DziTileSource {
  /** Tells the two tile sources apart without importing either class. */
  readonly kind = 'store' as const;
  /**
   * Headers every tile request needs (the bearer token of a store that requires one for reads);
   * empty when tiles load as plain images.
   */
  readonly readHeaders: Record<string, string>;
  /** Tiles asked for ahead of OpenSeadragon (`prefetchHome`), decoded, by URL, until OpenSeadragon takes them. */
  private readonly prefetched = new Map<string, Promise<ImageBitmap>>();
  /** Ends the request of `prefetchHome` when the source is dropped. */
  private prefetchAbort: AbortController | null = null;
  /** The URL of every tile of levels `from..=to` in one response (tile-store's `/levels`). */
  private readonly levelsUrl: (from: number, to: number) => string;
  /** How many tiles `prefetchHome` asked for, and how many of them OpenSeadragon then took. */
  readonly ahead = { asked: 0, taken: 0 };

  constructor(geometry: Geometry, tilesUrl: string, readHeaders: Record<string, string>, levelsUrl: (from: number, to: number) => string) {
    super({
      width: geometry.width,
      height: geometry.height,
      tileSize: geometry.tileSize,
      tileOverlap: geometry.overlap,
      tilesUrl,
      fileFormat: geometry.format,
    } as OpenSeadragon.IDziTileSourceOptions);
    this.readHeaders = readHeaders;
    this.levelsUrl = levelsUrl;
  }

  /**
   * The level OpenSeadragon draws the whole image at in a `width`×`height` (CSS pixels) viewer:
   * OpenSeadragon's own choice (`TiledImage._updateLevelsForViewport`: the highest level whose tiles
   * are shown at no less than `minPixelRatio` screen pixels per tile pixel), made from this source's
   * own level arithmetic; null for an empty viewer.
   */
  homeLevel(width: number, height: number, minPixelRatio = 0.5): number | null {
    const { x: w, y: h } = this.dimensions;
    if (!(width > 0 && height > 0 && w > 0 && h > 0)) return null;
    // The home view fits the whole image in the viewer.
    const shown = Math.min(width, (height * w) / h);
    for (let l = this.maxLevel; l > this.minLevel; l--) {
      // A Point, whatever the typings say: screen pixels per tile pixel are its x times the shown width.
      if (shown * (this.getPixelRatio(l) as unknown as OpenSeadragon.Point).x >= minPixelRatio) return l;
    }
    return this.minLevel;
  }

  /** The URLs of every tile of `level`, row by row. */
  private levelUrls(level: number): string[] {
    const { x: cols, y: rows } = this.getNumTiles(level);
    const urls: string[] = [];
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) urls.push(this.getTileUrl(level, x, y) as string);
    return urls;
  }

  /**
   * Asks for the tiles of the whole-image view in a `width`×`height` viewer now, before OpenSeadragon
   * has opened the source and worked out its first frame, in one request: that level and the
   * coarser ones OpenSeadragon loads while it waits for them (it walks down to its cut-off level,
   * `getClosestLevel`, the last of a single tile). One response instead of dozens of requests
   * queued six at a time (HTTP/1.1's limit per host), and each tile decoded off the main thread
   * (`createImageBitmap`) where an `<img>` would be decoded again as the canvas drawer copies it.
   * OpenSeadragon's requests for these tiles then take them (`downloadTileStart`).
   */
  prefetchHome(width: number, height: number): void {
    const home = this.homeLevel(width, height);
    if (home === null || this.prefetched.size > 0) return;
    let from = Math.min(home, Math.max(this.minLevel, this.getClosestLevel()));
    const count = (l: number) => {
      const { x, y } = this.getNumTiles(l);
      return x * y;
    };
    let total = 0;
    for (let l = from; l <= home; l++) total += count(l);
    while (total > MAX_PREFETCH && from < home) total -= count(from++);
    if (total > MAX_PREFETCH) return;
    const abort = new AbortController();
    this.prefetchAbort = abort;
    const form = fetch(this.levelsUrl(from, home), { headers: this.readHeaders, signal: abort.signal }).then((r) => {
      if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
      return r.formData();
    });
    // Handled where OpenSeadragon takes a tile; a failed request then loads each tile the usual way.
    form.catch(() => undefined);
    for (let level = from; level <= home; level++) {
      for (const url of this.levelUrls(level)) {
        // A part is named by the tile's path under the folder (`level/col_row.ext`), as its URL ends.
        const name = url.slice(this.tilesUrl.length);
        const decoded = form.then((parts) => {
          const tile = parts.get(name);
          if (!(tile instanceof Blob)) throw new Error(`no tile ${name} in the answer`);
          return createImageBitmap(tile);
        });
        decoded.catch(() => undefined);
        this.prefetched.set(url, decoded);
        this.ahead.asked++;
      }
    }
  }

  /** Drops the tiles asked for ahead that OpenSeadragon did not take (the source was replaced). */
  cancelPrefetch(): void {
    this.prefetchAbort?.abort();
    this.prefetchAbort = null;
    for (const decoded of this.prefetched.values())
      decoded.then(
        (bitmap) => bitmap.close(),
        () => undefined,
      );
    this.prefetched.clear();
  }

  override downloadTileStart(job: OpenSeadragon.ImageJob): void {
    const ahead = this.prefetched.get(job.src);
    if (!ahead) {
      super.downloadTileStart(job);
      return;
    }
    this.prefetched.delete(job.src);
    this.ahead.taken++;
    const data = job.userData as JobData;
    ahead.then(
      (bitmap) => {
        if (data.aborted) bitmap.close();
        else job.finish(bitmap, null, 'imageBitmap');
      },
      // A failed early request is made again the usual way, which retries and reports.
      () => {
        if (!data.aborted) super.downloadTileStart(job);
      },
    );
  }

  override downloadTileAbort(job: OpenSeadragon.ImageJob): void {
    (job.userData as JobData).aborted = true;
    super.downloadTileAbort(job);
  }
}
