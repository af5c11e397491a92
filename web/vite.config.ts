import { defineConfig } from "vitest/config";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

// The relay the dev server forwards the API and the WebSocket to (`npm run dev`).
const relay = process.env.SECURECHAT_RELAY ?? "http://127.0.0.1:8080";

// The wasm-client package is linked from the cargo target folder: allow the dev server to
// read it where it really is.
function packageDir(): string[] {
  try {
    return [realpathSync(fileURLToPath(new URL("./node_modules/securechat-client", import.meta.url)))];
  } catch {
    return [];
  }
}

export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Nothing inline: the relay's CSP allows only files from its own origin.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    // Read by scripts/size.mjs (the size budget), then removed.
    manifest: true,
  },
  server: {
    fs: { allow: [".", ...packageDir()] },
    proxy: {
      "/api": { target: relay, ws: true, changeOrigin: false },
      "/healthz": relay,
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
