// The dashboard's build: web/ → dist/web, which the server serves at `/` (src/server/dashboard.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  build: { outDir: fileURLToPath(new URL('../dist/web', import.meta.url)), emptyOutDir: true, sourcemap: true },
  // no remote fonts, no inline scripts: the server's Content-Security-Policy allows only its own files
  server: { proxy: { '^/(docker|dongle|logbook|provisioning-keys|auth|supervisor|openapi.json)': 'http://127.0.0.1:8000' } },
});
