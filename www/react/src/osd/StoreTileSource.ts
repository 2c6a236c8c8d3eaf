/** A pyramid committed to tile-store, opened by OpenSeadragon as the plain Deep Zoom source it is. */
import OpenSeadragon from 'openseadragon';
import type { Geometry } from '@tessera/tiler-wasm';

/** The most tiles `prefetchHome` asks for: a whole-image view of a usual viewer needs a few dozen. */
const MAX_PREFETCH = 64;

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
  /** Tiles asked for ahead of OpenSeadragon (`prefetchHome`), by URL, until OpenSeadragon takes them. */
  private readonly prefetched = new Map<string, { image: HTMLImageElement; decoded: Promise<HTMLImageElement> }>();
  /** How many tiles `prefetchHome` asked for, and how many of them OpenSeadragon then took. */
  readonly ahead = { asked: 0, taken: 0 };

  constructor(geometry: Geometry, tilesUrl: string, readHeaders: Record<string, string>) {
    super({
      width: geometry.width,
      height: geometry.height,
      tileSize: geometry.tileSize,
      tileOverlap: geometry.overlap,
      tilesUrl,
      fileFormat: geometry.format,
    } as OpenSeadragon.IDziTileSourceOptions);
    this.readHeaders = readHeaders;
  }

  /**
   * The level OpenSeadragon draws the whole image at in a `width`×`height` (CSS pixels) viewer, and
   * the URLs of that level's tiles: OpenSeadragon's own choice (`TiledImage._updateLevelsForViewport`:
   * the highest level whose tiles are shown at no less than `minPixelRatio` screen pixels per tile
   * pixel), made from this source's own level arithmetic and URLs.
   */
  homeTiles(width: number, height: number, minPixelRatio = 0.5): { level: number; urls: string[] } | null {
    const { x: w, y: h } = this.dimensions;
    if (!(width > 0 && height > 0 && w > 0 && h > 0)) return null;
    // The home view fits the whole image in the viewer.
    const shown = Math.min(width, (height * w) / h);
    let level = this.minLevel;
    for (let l = this.maxLevel; l > this.minLevel; l--) {
      // A Point, whatever the typings say: screen pixels per tile pixel are its x times the shown width.
      if (shown * (this.getPixelRatio(l) as unknown as OpenSeadragon.Point).x >= minPixelRatio) {
        level = l;
        break;
      }
    }
    const { x: cols, y: rows } = this.getNumTiles(level);
    if (cols * rows > MAX_PREFETCH) return null;
    const urls: string[] = [];
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) urls.push(this.getTileUrl(level, x, y) as string);
    return { level, urls };
  }

  /**
   * Asks for the tiles of the whole-image view in a `width`×`height` viewer now, all at once, before
   * OpenSeadragon has opened the source and worked out its first frame; its requests for them then
   * take these (`downloadTileStart`), decoded ahead of drawing (`HTMLImageElement.decode`).
   * Only for plain image loads (no read headers): the URLs a store that wants a token would refuse.
   */
  prefetchHome(width: number, height: number): string[] {
    if (Object.keys(this.readHeaders).length > 0) return [];
    const home = this.homeTiles(width, height);
    if (!home) return [];
    for (const url of home.urls) {
      if (this.prefetched.has(url)) continue;
      const image = new Image();
      // As OpenSeadragon loads stored tiles (`crossOriginPolicy: 'Anonymous'`), so the canvas stays readable.
      image.crossOrigin = 'anonymous';
      image.src = url;
      const decoded = image.decode().then(() => image);
      // Handled where OpenSeadragon takes the tile; one never taken is no error.
      decoded.catch(() => undefined);
      this.prefetched.set(url, { image, decoded });
      this.ahead.asked++;
    }
    return home.urls;
  }

  /** Drops the tiles asked for ahead that OpenSeadragon did not take (the source was replaced). */
  cancelPrefetch(): void {
    for (const { image } of this.prefetched.values()) image.src = '';
    this.prefetched.clear();
  }

  override downloadTileStart(job: OpenSeadragon.ImageJob): void {
    const ahead = job.loadWithAjax ? undefined : this.prefetched.get(job.src);
    if (!ahead) {
      super.downloadTileStart(job);
      return;
    }
    this.prefetched.delete(job.src);
    this.ahead.taken++;
    const data = job.userData as JobData;
    ahead.decoded.then(
      (image) => {
        if (!data.aborted) job.finish(image, null, 'image');
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
