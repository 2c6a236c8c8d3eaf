/** An OpenSeadragon 6 tile source whose tiles are made in the browser by the tiler worker. */
import OpenSeadragon from 'openseadragon';
import type { TileRequest, TilerClient, PyramidInfo } from '../worker/client.js';

interface JobData {
  request?: TileRequest;
  /** Set when OpenSeadragon aborted the job; it then fails the job itself. */
  aborted?: boolean;
}

export class WorkerTileSource extends OpenSeadragon.TileSource {
  /** Tells the two tile sources apart without importing either class. */
  readonly kind = 'worker' as const;
  readonly client: TilerClient;
  readonly info: PyramidInfo;

  constructor(client: TilerClient, info: PyramidInfo) {
    // Deep Zoom geometry: level `maxLevel` is full size, each level below halves it (rounding up),
    // tiles of `tileSize` plus `overlap` on inner edges; the same as vips dzsave and OpenSeadragon's DZI.
    super({
      width: info.width,
      height: info.height,
      tileSize: info.tileSize,
      tileOverlap: info.overlap,
      minLevel: 0,
      maxLevel: info.maxLevel,
      ready: true,
    });
    this.client = client;
    this.info = info;
  }

  /** A key, not a URL: it names the pyramid so caches never mix two images. */
  override getTileUrl(level: number, x: number, y: number): string {
    return `tessera-worker:${this.info.pyramidId}/${level}/${x}_${y}.${this.info.format}`;
  }

  override getTileHashKey(level: number, x: number, y: number): string {
    return this.getTileUrl(level, x, y);
  }

  override hasTransparency(): boolean {
    return this.info.format === 'png';
  }

  override downloadTileStart(job: OpenSeadragon.ImageJob): void {
    const { level, x, y } = job.tile;
    const data = job.userData as JobData;
    const request = this.client.tile(level, x, y);
    data.request = request;
    request.bytes.then(
      (bytes) => job.finish(new Blob([bytes], { type: this.info.mime }), null, 'rasterBlob'),
      (error: { code: string; message: string }) => {
        // A job OpenSeadragon aborted is failed by OpenSeadragon; any other (a replaced image's
        // worker was terminated, a tile failed) is failed here, not left to time out.
        if (!data.aborted) job.fail(`[tiler] ${error.code}: ${error.message}`, null);
      },
    );
  }

  override downloadTileAbort(job: OpenSeadragon.ImageJob): void {
    const data = job.userData as JobData;
    data.aborted = true;
    data.request?.cancel();
  }
}
