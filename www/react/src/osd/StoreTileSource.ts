/** A pyramid committed to tile-store, opened by OpenSeadragon as the plain Deep Zoom source it is. */
import OpenSeadragon from 'openseadragon';
import type { Geometry } from '@tessera/tiler-wasm';

export class StoreTileSource extends OpenSeadragon.DziTileSource {
  /** Tells the two tile sources apart without importing either class. */
  readonly kind = 'store' as const;
  /**
   * Headers every tile request needs (the bearer token of a store that requires one for reads);
   * empty when tiles load as plain images.
   */
  readonly readHeaders: Record<string, string>;

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
}
