import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  // The one setting Tessera needs, for the dev server.
  optimizeDeps: { exclude: ['@tessera/react', '@tessera/tiler-wasm'] },
});
