import { defineConfig } from 'vite';
import type { Plugin } from 'vite';
import react from '@vitejs/plugin-react';

/**
 * `<link rel="modulepreload">` for the chunks @tessera/react imports when its viewer mounts
 * (OpenSeadragon and the tile sources): a page opened on an image (a shared link) then fetches and
 * compiles them beside its own script instead of after that script has run.
 */
function preloadViewer(): Plugin {
  let base = '/';
  return {
    name: 'tessera-preload-viewer',
    apply: 'build',
    configResolved(config) {
      base = config.base;
    },
    transformIndexHtml: {
      order: 'post',
      handler(_html, { bundle }) {
        return Object.values(bundle ?? {})
          .filter((c) => c.type === 'chunk' && (c.name === 'openseadragon' || c.name === 'tileSources'))
          .map((c) => ({ tag: 'link', attrs: { rel: 'modulepreload', crossorigin: '', href: `${base}${c.fileName}` }, injectTo: 'head' }));
      },
    },
  };
}

// The demo uses @tessera/react as any app would: the one setting it needs is to keep Vite's
// dependency pre-bundling away from the two packages, whose workers and .wasm are found with
// `new URL(..., import.meta.url)` relative to their own files.
export default defineConfig({
  plugins: [react(), preloadViewer()],
  optimizeDeps: { exclude: ['@tessera/react', '@tessera/tiler-wasm'] },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
  // OpenSeadragon alone is ~400 kB; the chunk size warning is noise here.
  build: { target: 'es2022', sourcemap: true, chunkSizeWarningLimit: 1024 },
});
