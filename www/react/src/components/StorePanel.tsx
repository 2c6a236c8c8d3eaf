'use client';
/** The store's side of the image, for people: opened from the store, upload progress, saved, or why not. */
import type { TilingStatus } from '../hooks/useTilingImage.js';

export interface StorePanelProps {
  /** The hook's status: its upload to tile-store is shown; nothing without a store. */
  status: TilingStatus;
}

export function StorePanel({ status }: StorePanelProps) {
  const { upload } = status;
  if (upload.state === 'none') return null;
  let text: string;
  switch (upload.state) {
    case 'uploading':
      text =
        `Saving to the store: ${upload.sent} / ${upload.total} tiles stored` +
        (upload.found > 0 ? ` (${upload.found} were there already, from an earlier upload).` : '.');
      break;
    case 'saved':
      text =
        upload.resent > 0
          ? `Saved (${upload.resent} tiles the store had lost were sent again).`
          : 'Saved: the next viewer opens it without tiling.';
      break;
    case 'reused':
      text = 'Opened from the store: no tiling needed.';
      break;
    case 'failed':
      text = `Not saved: ${upload.error?.message ?? 'unknown error'}. The image stays viewable here.`;
      break;
  }
  return (
    <section className="panel" aria-label="Store" data-testid="store-panel" data-upload={upload.state}>
      <h2>Store</h2>
      <p className={upload.state === 'failed' ? 'error' : undefined} role={upload.state === 'failed' ? 'alert' : undefined}>
        {text}
      </p>
      {upload.state === 'uploading' && upload.retrying && <p className="muted">Store unavailable: {upload.retrying}.</p>}
      {upload.state === 'uploading' && <progress max={upload.total || 1} value={upload.sent} aria-label="Upload progress" />}
    </section>
  );
}
