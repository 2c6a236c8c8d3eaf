/**
 * The two OpenSeadragon tile sources. Importing this module imports OpenSeadragon, which needs a
 * DOM: React code gets it through `loadTileSources()`, framework-free code from `@tessera/react/core`.
 */
export { WorkerTileSource } from './WorkerTileSource.js';
export { StoreTileSource } from './StoreTileSource.js';
