// Builds the v2 useStream test page (tests/test_langgraph_v2_react.py) into
// GLASSBOX_LG_PAGE_OUT. Test-only: nothing here ships.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// @langchain/react 1.1.0 pins its own @langchain/langgraph-sdk (1.11.0, nested under it):
// the page takes the WebSocket transport from that copy, the one the hook runs.
const fromReact = createRequire(createRequire(import.meta.url).resolve('@langchain/react'));
const hookSdk = fromReact.resolve('@langchain/langgraph-sdk').replace(/\.cjs$/, '.js');

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  plugins: [react()],
  resolve: { alias: [{ find: /^@langchain\/langgraph-sdk$/, replacement: hookSdk }] },
  build: {
    outDir: process.env.GLASSBOX_LG_PAGE_OUT,
    emptyOutDir: true,
    minify: false,
    reportCompressedSize: false,
  },
});
