/** The typed tile-store client and its types: no DOM, no React, usable in workers and on servers. */
export { TileStoreClient, isPyramidId, backoffDelay, UPLOAD_RETRY, CHECK_ONCE } from './api/tileStore.js';
export type {
  StoreSettings,
  StoreFailure,
  StoreFailureCode,
  RetryPolicy,
  RetryListener,
  EncodedBatch,
  UploadGeometry,
  CommitResult,
  TileListing,
} from './api/tileStore.js';
