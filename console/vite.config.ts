/**
 * Builds the console into console/dist, which the control plane serves at /.
 * Asset names carry a content hash so the server can cache them forever.
 */
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // One chunk per heavy library keeps rebuilt bundles small and cached ones valid.
    rollupOptions: {
      output: {
        manualChunks: {
          codemirror: ["@codemirror/state", "@codemirror/view", "@codemirror/language", "@codemirror/autocomplete", "@codemirror/lint", "@codemirror/lang-sql", "@codemirror/lang-javascript", "@codemirror/commands", "@codemirror/search"],
          react: ["react", "react-dom", "wouter"],
        },
      },
    },
    chunkSizeWarningLimit: 1000,
  },
  server: {
    // `bun run --cwd console dev` against a control plane on :8000.
    proxy: { "/graphql": { target: "http://localhost:8000", ws: true } },
  },
});
