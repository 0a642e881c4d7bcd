import { defineConfig } from "vitest/config";

// Django serves dist/ as static files under /static/, so the bundle keeps fixed names
// (studio.js, studio.css) that a template can include without reading a manifest.
export default defineConfig({
  base: "/static/",
  publicDir: "public",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    lib: undefined,
    rollupOptions: {
      input: "src/main.ts",
      output: {
        entryFileNames: "studio.js",
        chunkFileNames: "studio-[name].js",
        assetFileNames: "studio[extname]",
      },
    },
  },
  test: { include: ["src/**/*.test.ts"] },
});
