/// <reference lib="webworker" />
/**
 * The preview worker: while the tiler worker decodes the whole image, this one makes a small
 * picture of a large image on the other core, so that the whole view is on screen well before the
 * first tiles. The page gives it a port; the tiler worker sends the bytes there. The preview is
 * shown beneath the pyramid only, never tiled.
 *
 * With the browser's own decoder first, asked for what the pyramid does: EXIF orientation applied
 * and the embedded colour profile converted to sRGB (drawn on an sRGB canvas). WebCodecs'
 * `ImageDecoder` with a desired size decodes a JPEG at a DCT scale (1/2–1/8), several times quicker
 * than a full decode; where it is missing, `createImageBitmap` (resized, `imageOrientation:
 * 'from-image'`, `colorSpaceConversion: 'default'`). Where the browser cannot (no OffscreenCanvas,
 * a format it does not decode), tiler-wasm's DCT-scaled `previewJpeg` for a JPEG.
 */
import init, { previewJpeg } from '@tessera/tiler-wasm';
import type { FromPreviewWorker, PreviewPort, PreviewRequest } from './protocol.js';

declare const self: DedicatedWorkerGlobalScope;

/** JPEG quality of a browser-decoded preview's encoding (the wasm one uses its own, 85). */
const BROWSER_PREVIEW_QUALITY = 0.85;

function reply(message: FromPreviewWorker): void {
  self.postMessage(message, message.type === 'preview' ? [message.bytes] : []);
}

/** Where the page said the module is; it is loaded only if the browser's decoder cannot serve. */
let wasmUrl: string | undefined;

/** What the browser's decoders read: TIFF is not among them; AVIF, which tiler-wasm does not decode, is. */
const BROWSER_MIME: Partial<Record<PreviewRequest['format'], string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
};

/** The parts as one buffer (the parts themselves if there is one). */
function joined(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return bytes;
}

/** A decoded picture to draw, its upright size, and how to let it go. */
interface Decoded {
  source: CanvasImageSource;
  width: number;
  height: number;
  close(): void;
}

/**
 * The desired decode size for `ImageDecoder`: the upright size divided by the largest power of two
 * (at most 8, JPEG's smallest DCT scale) that keeps the longer side at least `minSide`. Only the
 * picture's aspect ratio matters for where it is drawn (every layer is placed from the image's own
 * width), so rounding moves nothing by more than a fraction of a preview pixel.
 */
function desiredSize({ width, height, minSide }: PreviewRequest): { width: number; height: number } {
  let divisor = 1;
  while (divisor < 8 && Math.max(width, height) / (divisor * 2) >= minSide) divisor *= 2;
  return { width: Math.max(1, Math.round(width / divisor)), height: Math.max(1, Math.round(height / divisor)) };
}

/**
 * WebCodecs' decoder, at a reduced size. Its frame carries the EXIF orientation as `rotation` and
 * `flip`, which drawing applies; a browser whose frames lack them would draw a turned image
 * unturned, so there it is used for upright images only.
 */
async function decodeWithImageDecoder(request: PreviewRequest, mime: string): Promise<Decoded | null> {
  if (typeof ImageDecoder !== 'function' || !(await ImageDecoder.isTypeSupported(mime))) return null;
  if (request.orientation !== 1 && !('rotation' in VideoFrame.prototype)) return null;
  const size = desiredSize(request);
  const decoder = new ImageDecoder({
    data: joined(request.parts),
    type: mime,
    desiredWidth: size.width,
    desiredHeight: size.height,
    colorSpaceConversion: 'default',
    preferAnimation: false,
  });
  try {
    const { image } = await decoder.decode({ frameIndex: 0 });
    return { source: image, width: image.displayWidth, height: image.displayHeight, close: () => image.close() };
  } finally {
    decoder.close();
  }
}

/** `createImageBitmap`, resized as it decodes. */
async function decodeWithBitmap(request: PreviewRequest, mime: string): Promise<Decoded> {
  const scale = Math.min(1, request.minSide / Math.max(request.width, request.height));
  const bitmap = await createImageBitmap(new Blob(request.parts as Uint8Array<ArrayBuffer>[], { type: mime }), {
    imageOrientation: 'from-image',
    colorSpaceConversion: 'default',
    resizeWidth: Math.max(1, Math.round(request.width * scale)),
    resizeHeight: Math.max(1, Math.round(request.height * scale)),
    resizeQuality: 'medium',
  });
  return { source: bitmap, width: bitmap.width, height: bitmap.height, close: () => bitmap.close() };
}

/** The browser's decode, or null if it cannot make one here. */
async function browserPreview(request: PreviewRequest): Promise<FromPreviewWorker | null> {
  const mime = BROWSER_MIME[request.format];
  if (!mime || typeof OffscreenCanvas !== 'function') return null;
  let decoded: Decoded | null = null;
  try {
    decoded = await decodeWithImageDecoder(request, mime).catch(() => null);
    decoded ??= typeof createImageBitmap === 'function' ? await decodeWithBitmap(request, mime) : null;
    if (!decoded) return null;
    // A decoder that left the picture turned: its aspect is not the upright image's.
    if (decoded.width > decoded.height !== request.width > request.height) return null;
    const canvas = new OffscreenCanvas(decoded.width, decoded.height);
    const context = canvas.getContext('2d', { colorSpace: 'srgb', alpha: request.hasAlpha });
    if (!context) return null;
    context.drawImage(decoded.source, 0, 0, decoded.width, decoded.height);
    const type = request.hasAlpha ? 'image/png' : 'image/jpeg';
    const blob = await canvas.convertToBlob({ type, quality: BROWSER_PREVIEW_QUALITY });
    return { type: 'preview', bytes: await blob.arrayBuffer(), mime: type, decoder: 'browser' };
  } catch {
    return null;
  } finally {
    decoded?.close();
  }
}

/** tiler-wasm's DCT-scaled decode of a JPEG (no colour profile applied). */
async function wasmPreview(request: PreviewRequest): Promise<FromPreviewWorker> {
  if (request.format !== 'jpeg') return { type: 'none' };
  try {
    await init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
    const jpeg = previewJpeg(joined(request.parts), request.minSide, request.limits);
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
  const { port } = event.data;
  wasmUrl = event.data.wasmUrl;
  port.onmessage = (e: MessageEvent<PreviewRequest>) => {
    port.close();
    makePreview(e.data).then(reply);
  };
};
