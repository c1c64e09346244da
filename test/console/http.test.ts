/**
 * How the control plane serves the console and GraphiQL: the pages with a
 * Content-Security-Policy that runs only same-origin scripts, hashed assets
 * cached for good with their content types, client-side routes answered with
 * the page, paths outside the build refused, GraphiQL from installed files with
 * its title and no CDN, GraphQL requests still reaching the API, and a clear
 * page when the console is not built.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Hono } from "hono";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ensureConsoleBuilt, DIST_DIR } from "../../console/build.ts";
import { CONTENT_SECURITY_POLICY, mountConsole } from "../../control-plane/http/console.ts";
import { testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";
import { tempDir } from "../kit/cli.ts";

setDefaultTimeout(120_000);

let cp: TestControlPlane;
beforeAll(async () => {
  await ensureConsoleBuilt();
  cp = await testControlPlane("pglite");
});
afterAll(async () => cp?.stop());

const html = { accept: "text/html,application/xhtml+xml" };

describe("serving the console", () => {
  test("pages: the console's HTML, revalidated, under a CSP allowing only same-origin scripts", async () => {
    for (const path of ["/", "/new", "/pipelines/pl_0123456789", "/catalog", "/tokens"]) {
      const res = await fetch(`${cp.url}${path}`, { headers: html });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
      const body = await res.text();
      expect(body).toContain('<div id="root"></div>');
      // No inline script: every <script> has a same-origin src.
      for (const tag of body.match(/<script[^>]*>/g) ?? []) expect(tag).toMatch(/src="\/assets\/[^"]+\.js"/);
    }
    const csp = CONTENT_SECURITY_POLICY.split("; ");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'self'");
  });

  test("hashed assets: right content type, cached immutably; unknown or escaping paths are 404", async () => {
    const assets = readdirSync(join(DIST_DIR, "assets"));
    const js = assets.find((a) => a.endsWith(".js"))!;
    const css = assets.find((a) => a.endsWith(".css"))!;
    for (const [file, type] of [
      [js, "text/javascript; charset=utf-8"],
      [css, "text/css; charset=utf-8"],
    ] as const) {
      const res = await fetch(`${cp.url}/assets/${file}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(type);
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
    expect((await fetch(`${cp.url}/assets/nope-123.js`)).status).toBe(404);
    expect((await fetch(`${cp.url}/assets/..%2F..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${cp.url}/assets/%2e%2e/index.html`)).status).toBe(404);
  });

  test("GraphiQL: from installed files, titled, no CDN, under the same CSP; GraphQL over GET and POST still answers", async () => {
    const res = await fetch(`${cp.url}/graphql`, { headers: html });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    const page = await res.text();
    expect(page).toContain("<title>Runnel GraphiQL</title>");
    expect(page).not.toContain("__TITLE__");
    expect(page).not.toMatch(/(src|href)="https?:/);
    const scripts = [...page.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBe(2);
    for (const src of scripts) {
      const r = await fetch(`${cp.url}${src}`);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect(r.headers.get("cache-control")).toContain("immutable");
      expect(await r.text()).not.toMatch(/https?:\/\/(unpkg|cdn\.jsdelivr|esm\.sh)/);
    }
    for (const worker of ["editorWorkerService", "json", "graphql"]) {
      const base = scripts[0]!.slice(0, scripts[0]!.lastIndexOf("/"));
      expect((await fetch(`${cp.url}${base}/${worker}.worker.js`)).status).toBe(200);
    }
    // GraphQL itself is untouched: a POST and a GET that names a query reach the API.
    expect(await cp.gql("{ viewer { role } }")).toEqual({ viewer: { role: "ADMIN" } });
    const get = await fetch(`${cp.url}/graphql?query=${encodeURIComponent("{ connectors { name } }")}`, { headers: { accept: "application/json", "x-graphql-yoga-csrf": "1" } });
    expect(get.status).toBe(200);
    expect(((await get.json()) as any).data.connectors.length).toBeGreaterThan(0);
  });

  test("without a build the pages say how to build it", async () => {
    const app = new Hono();
    mountConsole(app, { distDir: tempDir("runnel-no-console-") });
    const res = await app.request("/", { headers: html });
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("bun run console:build");
  });
});
