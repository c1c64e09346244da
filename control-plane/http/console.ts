/**
 * Serves the web console (console/dist, built by console/build.ts) and
 * GraphiQL, both from this server: nothing from a CDN, so they work offline.
 * Hashed assets are cached for good, pages are revalidated, and every page
 * carries a Content-Security-Policy that runs only same-origin scripts.
 * GraphiQL's bundle comes from @graphql-yoga/render-graphiql, served as
 * files (not inlined), so its page obeys the same policy.
 */
import type { Hono } from "hono";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize, sep } from "node:path";
import { DIST_DIR } from "../../console/build.ts";

/** Only same-origin scripts; inline styles are allowed (CodeMirror and React set them), inline scripts are not. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const PAGE_HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};
const IMMUTABLE = "public, max-age=31536000, immutable";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".woff2": "font/woff2",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

/** The console's client-side routes: each serves index.html. */
const PAGES = ["/", "/new", "/pipelines/*", "/catalog", "/udfs", "/profiles", "/tokens"];

const GRAPHIQL_VERSION = JSON.parse(readFileSync(Bun.resolveSync("@graphql-yoga/render-graphiql/package.json", import.meta.dir), "utf8")).version as string;
const GRAPHIQL_BASE = `/graphiql/${GRAPHIQL_VERSION}`;

/** GraphiQL's page reads the session's token (as the console stores it) so queries work on a server that needs one. */
const GRAPHIQL_INIT = `(function () {
  var options = JSON.parse(document.getElementById("graphiql-options").textContent);
  var token = sessionStorage.getItem("runnel.token");
  if (token) options.additionalHeaders = { authorization: "Bearer " + token };
  self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: function (_id, label) { return "${GRAPHIQL_BASE}/" + label + ".worker.js"; } };
  YogaGraphiQL.renderYogaGraphiQL(document.getElementById("root"), options);
})();
`;

/** GraphiQL's files, loaded on first use (the bundle is 9 MB of source). */
let graphiqlFiles: Promise<Record<string, { body: string; type: string }>> | null = null;
function loadGraphiqlFiles() {
  graphiqlFiles ??= import("@graphql-yoga/render-graphiql/graphiql").then((g) => ({
    "graphiql.js": { body: g.js, type: TYPES[".js"]! },
    "graphiql.css": { body: g.css, type: TYPES[".css"]! },
    "init.js": { body: GRAPHIQL_INIT, type: TYPES[".js"]! },
    "editorWorkerService.worker.js": { body: g.editorWorkerService, type: TYPES[".js"]! },
    "json.worker.js": { body: g.jsonWorker, type: TYPES[".js"]! },
    "graphql.worker.js": { body: g.graphqlWorker, type: TYPES[".js"]! },
  }));
  return graphiqlFiles;
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

export function graphiqlPage(title = "Runnel GraphiQL"): string {
  const options = JSON.stringify({ title, endpoint: "/graphql", subscriptionsProtocol: "WS" }).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${escapeHtml(title)}</title>
    <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
    <link rel="stylesheet" href="${GRAPHIQL_BASE}/graphiql.css" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root"></div>
    <script type="application/json" id="graphiql-options">${options}</script>
    <script src="${GRAPHIQL_BASE}/graphiql.js"></script>
    <script src="${GRAPHIQL_BASE}/init.js"></script>
  </body>
</html>
`;
}

/** A browser asking for a page (not a GraphQL request over GET, which names a query). */
const wantsHtml = (req: Request) => req.method === "GET" && (req.headers.get("accept") ?? "").includes("text/html") && !new URL(req.url).searchParams.has("query");

function notBuilt(): Response {
  return new Response(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Runnel console not built</title></head><body>
<h1>The console is not built</h1><p>Run <code>bun run console:build</code> (or <code>bun install</code>), or restart with <code>bun run start</code>, which builds it. The API is at <a href="/graphql">/graphql</a>.</p></body></html>`,
    { status: 503, headers: { ...PAGE_HEADERS, "content-type": TYPES[".html"]! } },
  );
}

/** Mounts the console and GraphiQL on the app; API routes registered later still win for their paths. */
export function mountConsole(app: Hono, options: { distDir?: string } = {}): void {
  const dist = options.distDir ?? DIST_DIR;
  const indexFile = join(dist, "index.html");

  const page = () => {
    if (!existsSync(indexFile)) return notBuilt();
    return new Response(Bun.file(indexFile), { headers: { ...PAGE_HEADERS, "content-type": TYPES[".html"]! } });
  };
  for (const path of PAGES) app.get(path, () => page());

  // Hashed by vite: a changed file gets a new name, so a cached one never goes stale.
  app.get("/assets/*", async (c) => {
    const file = fileUnder(dist, c.req.path);
    if (!file) return c.notFound();
    return new Response(Bun.file(file), { headers: { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": IMMUTABLE, "x-content-type-options": "nosniff" } });
  });
  app.get("/favicon.svg", (c) => {
    const file = fileUnder(dist, "/favicon.svg");
    if (!file) return c.notFound();
    return new Response(Bun.file(file), { headers: { "content-type": TYPES[".svg"]!, "cache-control": "public, max-age=86400" } });
  });

  app.get("/graphql", async (c, next) => {
    if (!wantsHtml(c.req.raw)) return next();
    return new Response(graphiqlPage(), { headers: { ...PAGE_HEADERS, "content-type": TYPES[".html"]! } });
  });
  app.get(`${GRAPHIQL_BASE}/:file`, async (c) => {
    const f = (await loadGraphiqlFiles())[c.req.param("file")];
    if (!f) return c.notFound();
    return new Response(f.body, { headers: { "content-type": f.type, "cache-control": IMMUTABLE, "x-content-type-options": "nosniff" } });
  });
}

/** The file a URL path names inside `root`, or null (missing, or outside it). */
function fileUnder(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const file = normalize(join(root, decoded));
  if (!file.startsWith(root + sep)) return null;
  return existsSync(file) ? file : null;
}
