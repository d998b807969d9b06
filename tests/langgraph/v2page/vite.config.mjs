// Builds the v2 useStream test page (tests/test_langgraph_v2_react.py) into
// GLASSBOX_LG_PAGE_OUT. Test-only: nothing here ships.
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  plugins: [react()],
  build: {
    outDir: process.env.GLASSBOX_LG_PAGE_OUT,
    emptyOutDir: true,
    minify: false,
    reportCompressedSize: false,
  },
});
