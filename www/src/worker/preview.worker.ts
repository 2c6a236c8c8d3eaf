/// <reference lib="webworker" />
/**
 * The preview worker: while the tiler worker decodes the whole image, this one decodes a large
 * JPEG at 1/2–1/8 scale (tiler-wasm's `previewJpeg`) on the other core, so that a picture is on
 * screen well before the first tiles. The page gives it a port; the tiler worker sends the bytes
 * there. The preview is shown beneath the pyramid only, never tiled.
 */
import init, { previewJpeg } from '@tessera/tiler-wasm';
import type { FromPreviewWorker, PreviewPort, PreviewRequest } from './protocol';

declare const self: DedicatedWorkerGlobalScope;

// Compiled while the tiler worker is still fetching.
const wasmReady: Promise<unknown> = init();
wasmReady.catch(() => undefined);

function reply(message: FromPreviewWorker): void {
  self.postMessage(message, message.type === 'preview' ? [message.bytes] : []);
}

async function makePreview(request: PreviewRequest): Promise<FromPreviewWorker> {
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
  const { port } = event.data;
  port.onmessage = (e: MessageEvent<PreviewRequest>) => {
    port.close();
    makePreview(e.data).then(reply);
  };
};
