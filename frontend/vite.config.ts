import { existsSync } from "node:fs";
import { defineConfig } from "vitest/config";

// One script per page. Django serves dist/ as static files under /static/, so each bundle keeps a
// fixed name (<page>.js, <page>.css) that a template can include without reading a manifest.
// A page is built once its entry exists.
const PAGES: Record<string, string> = {
  studio: "src/main.ts",
  compare: "src/compare/main.ts",
  classroom: "src/classroom/main.ts",
};

const input = Object.fromEntries(Object.entries(PAGES).filter(([, entry]) => existsSync(entry)));

export default defineConfig({
  base: "/static/",
  publicDir: "public",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      input,
      output: {
        entryFileNames: "[name].js",
        chunkFileNames: "shared-[name].js",
        assetFileNames: "[name][extname]",
      },
    },
  },
  test: { include: ["src/**/*.test.ts"] },
});
