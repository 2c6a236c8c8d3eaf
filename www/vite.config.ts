import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  // The wasm package resolves its .wasm file with `new URL(..., import.meta.url)`;
  // pre-bundling would move the JS away from the file and break that.
  optimizeDeps: { exclude: ['@tessera/tiler-wasm'] },
  worker: { format: 'es' },
  server: { host: '127.0.0.1', fs: { allow: ['..'] } },
  preview: { host: '127.0.0.1' },
  // OpenSeadragon alone is ~400 kB; one chunk is fine for this app.
  build: { target: 'es2022', sourcemap: true, chunkSizeWarningLimit: 1024 },
});
