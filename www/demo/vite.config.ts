import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The demo uses @tessera/react as any app would: the one setting it needs is to keep Vite's
// dependency pre-bundling away from the two packages, whose workers and .wasm are found with
// `new URL(..., import.meta.url)` relative to their own files.
export default defineConfig({
  plugins: [react()],
  optimizeDeps: { exclude: ['@tessera/react', '@tessera/tiler-wasm'] },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
  // OpenSeadragon alone is ~400 kB; the chunk size warning is noise here.
  build: { target: 'es2022', sourcemap: true, chunkSizeWarningLimit: 1024 },
});
