/// <reference lib="webworker" />
/**
 * The preview worker: while the tiler worker decodes the whole image, this one makes a small
 * picture of a large image on the other core, so that the whole view is on screen well before the
 * first tiles. The page gives it a port; the tiler worker sends the bytes there. The preview is
 * shown beneath the pyramid only, never tiled.
 *
 * First with the browser's own decoder (`createImageBitmap`, native and SIMD, resized while
 * decoding), asked for what the pyramid does: EXIF orientation applied (`imageOrientation:
 * 'from-image'`) and the embedded colour profile converted to sRGB (`colorSpaceConversion:
 * 'default'`, drawn on an sRGB canvas). Where the browser cannot (no OffscreenCanvas, a format it
 * does not decode such as TIFF), tiler-wasm's DCT-scaled `previewJpeg` for a JPEG.
 */
import init, { previewJpeg } from '@tessera/tiler-wasm';
import type { FromPreviewWorker, PreviewPort, PreviewRequest } from './protocol.js';

declare const self: DedicatedWorkerGlobalScope;

/** JPEG quality of a browser-decoded preview's encoding (the wasm one uses its own, 85). */
const BROWSER_PREVIEW_QUALITY = 0.85;

function reply(message: FromPreviewWorker): void {
  self.postMessage(message, message.type === 'preview' ? [message.bytes] : []);
}

/** The module loading; null until the page has sent the port (a bytes request comes only after). */
let wasmReady: Promise<unknown> | null = null;

/** What the browser's decoders read: TIFF is not among them. */
const BROWSER_MIME: Partial<Record<PreviewRequest['format'], string>> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

/**
 * The preview's size: the upright image scaled so its longer side is `minSide` (never enlarged).
 * Only its aspect ratio matters for where it is drawn (every layer is placed from the image's own
 * width), so rounding moves nothing by more than a fraction of a preview pixel.
 */
function previewSize({ width, height, minSide }: PreviewRequest): { width: number; height: number } {
  const scale = Math.min(1, minSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** The browser's decode, or null if it cannot make one here. */
async function browserPreview(request: PreviewRequest): Promise<FromPreviewWorker | null> {
  const mime = BROWSER_MIME[request.format];
  if (!mime || typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') return null;
  const size = previewSize(request);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([request.bytes], { type: mime }), {
      imageOrientation: 'from-image',
      colorSpaceConversion: 'default',
      premultiplyAlpha: 'default',
      resizeWidth: size.width,
      resizeHeight: size.height,
      resizeQuality: 'medium',
    });
  } catch {
    return null;
  }
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext('2d', { colorSpace: 'srgb', alpha: request.hasAlpha });
    if (!context) return null;
    context.drawImage(bitmap, 0, 0);
    const type = request.hasAlpha ? 'image/png' : 'image/jpeg';
    const blob = await canvas.convertToBlob({ type, quality: BROWSER_PREVIEW_QUALITY });
    return { type: 'preview', bytes: await blob.arrayBuffer(), mime: type, decoder: 'browser' };
  } catch {
    return null;
  } finally {
    bitmap.close();
  }
}

/** tiler-wasm's DCT-scaled decode of a JPEG (no colour profile applied). */
async function wasmPreview(request: PreviewRequest): Promise<FromPreviewWorker> {
  if (!wasmReady || request.format !== 'jpeg') return { type: 'none' };
  try {
    await wasmReady;
    const jpeg = previewJpeg(new Uint8Array(request.bytes), request.minSide, request.limits);
    return jpeg ? { type: 'preview', bytes: jpeg.buffer as ArrayBuffer, mime: 'image/jpeg', decoder: 'wasm' } : { type: 'none' };
  } catch {
    // The tiler worker reports whatever is wrong with the image; a preview is optional.
    return { type: 'none' };
  }
}

async function makePreview(request: PreviewRequest): Promise<FromPreviewWorker> {
  if (request.decoder === 'browser') {
    const made = await browserPreview(request);
    if (made) return made;
  }
  return wasmPreview(request);
}

self.onmessage = (event: MessageEvent<PreviewPort>) => {
  const { port, wasmUrl } = event.data;
  // Compiled while the tiler worker is still fetching, in case the browser's decoder cannot serve.
  wasmReady = init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  wasmReady.catch(() => undefined);
  port.onmessage = (e: MessageEvent<PreviewRequest>) => {
    port.close();
    makePreview(e.data).then(reply);
  };
};
