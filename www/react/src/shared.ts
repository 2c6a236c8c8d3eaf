/**
 * What both entries export: the worker client, the tile-store client, the vector layer parser, the
 * measurement maths and the tiler's types. Nothing here imports OpenSeadragon or touches the DOM.
 */
export { TilerClient, tilerWorkerCount, MAX_DEFAULT_TILER_WORKERS } from './worker/client.js';
export type {
  TilerEvents,
  TileRequest,
  WorkerKind,
  WorkerSettings,
  ImageSource,
  PreviewDecoder,
  Progress,
  PyramidGeometry,
  PyramidInfo,
  StoreTarget,
  TilerFailure,
  TilerMemory,
  UploadProgress,
  UploadState,
} from './worker/client.js';
export type { FailureCode } from './worker/protocol.js';
export * from './store.js';
export { parseDamage, featureTitle, toFeatureCollection, withGeometry } from './geojson.js';
export type { DamageFeature, FeatureCollection, Geometry, Position } from './geojson.js';
export { moveVertex, newGeometry, vertices } from './editGeometry.js';
export type { DrawKind, Vertex } from './editGeometry.js';
export { calibrate, formatArea, formatLength, measureGeometry, parseScale, pathLength, ringArea } from './measure.js';
export type { Measures, Scale } from './measure.js';
export { enhancePixel, NO_ENHANCEMENT } from './enhance.js';
export { formatView, parseView } from './view.js';
export { alignmentFrom, alignPoint, formatAlignment, invertAlignment, parseAlignment } from './align.js';
export type { Alignment } from './align.js';
export { ALL_DAMAGE, classCounts, listDamage, stepThrough } from './damageList.js';
export type { DamageFilter, DamageSort } from './damageList.js';
export type { WorkspaceView } from './view.js';
export type { Enhancement } from './enhance.js';
export type { Metadata, Options, Limits, Exif, TileFormat, SourceFormat, ErrorCode, TilerErrorCode, TilerError } from '@tessera/tiler-wasm';
/** tiler-wasm's Deep Zoom geometry (named so beside the vector layer's GeoJSON `Geometry`). */
export type { Geometry as TileGeometry } from '@tessera/tiler-wasm';
