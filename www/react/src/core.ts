/**
 * `@tessera/react/core`: the framework-free part, for apps not on React. The worker client tiles an
 * image in a Web Worker; the two OpenSeadragon tile sources show it (tiled here, or stored); the
 * tile-store client reuses and saves pyramids.
 *
 * This entry imports OpenSeadragon, which needs a DOM as soon as it is imported: load it in the
 * browser only (in a server-rendering framework, with a dynamic `import()` on the client).
 */
export * from './shared.js';
export { WorkerTileSource, StoreTileSource } from './osd/tileSources.js';
export { IMAGE_PLACEMENT, imagePixelsPerScreenPixel } from './osd/imageSpace.js';
