/// <reference lib="webworker" />
/**
 * The preview worker: while the tiler worker decodes the whole image, this one decodes a large
 * JPEG at 1/2–1/8 scale (tiler-wasm's `previewJpeg`) on the other core, so that a picture is on
 * screen well before the first tiles. The page gives it a port; the tiler worker sends the bytes
 * there. The preview is shown beneath the pyramid only, never tiled.
 */
import init, { previewJpeg } from '@tessera/tiler-wasm';
import type { FromPreviewWorker, PreviewPort, PreviewRequest } from './protocol.js';

declare const self: DedicatedWorkerGlobalScope;

function reply(message: FromPreviewWorker): void {
  self.postMessage(message, message.type === 'preview' ? [message.bytes] : []);
}

/** The module loading; null until the page has sent the port (a bytes request comes only after). */
let wasmReady: Promise<unknown> | null = null;

async function makePreview(request: PreviewRequest): Promise<FromPreviewWorker> {
  if (!wasmReady) return { type: 'none' };
  try {
    await wasmReady;
    const jpeg = previewJpeg(new Uint8Array(request.bytes), request.minSide, request.limits);
    return jpeg ? { type: 'preview', bytes: jpeg.buffer as ArrayBuffer } : { type: 'none' };
  } catch {
    // The tiler worker reports whatever is wrong with the image; a preview is optional.
    return { type: 'none' };
  }
}

self.onmessage = (event: MessageEvent<PreviewPort>) => {
  const { port, wasmUrl } = event.data;
  // Compiled while the tiler worker is still fetching.
  wasmReady = init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  wasmReady.catch(() => undefined);
  port.onmessage = (e: MessageEvent<PreviewRequest>) => {
    port.close();
    makePreview(e.data).then(reply);
  };
};
