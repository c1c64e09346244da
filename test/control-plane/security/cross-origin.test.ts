/**
 * Issue 8, probe 3 (cross-origin requests): a page on another site can use
 * neither GraphQL (no reflected CORS), nor graphql-ws (Origin checked at the
 * upgrade), nor REST (a JSON content type or the CSRF header is required for
 * every change). Origins listed in RUNNEL_CORS_ORIGINS may. On PGlite and
 * on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { apiTokens, pipelines } from "../../../control-plane/db/schema.ts";
import { BACKENDS, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const EVIL = "https://attacker.example";
const CONSOLE = "https://console.example";
const QUERY = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '10', message_count = '1');\nSELECT counter FROM impulse;`;

/** A graphql-ws conversation as a browser page of `origin` would start it: resolves with the messages received, or how the socket ended. */
function wsFromPage(url: string, origin: string, operation: string): Promise<{ opened: boolean; messages: any[]; closeCode?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace("http", "ws") + "/graphql", { headers: { origin }, protocols: ["graphql-transport-ws"] } as any);
    const messages: any[] = [];
    let opened = false;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ type: "connection_init", payload: {} }));
    };
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      messages.push(m);
      if (m.type === "connection_ack") ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: operation } }));
      if (m.type === "complete" || m.type === "error") ws.close();
    };
    ws.onclose = (e) => resolve({ opened, messages, closeCode: e.code });
  });
}

for (const backend of BACKENDS) {
  describe(`cross-origin requests on ${backend}`, () => {
    let cp: TestControlPlane;
    beforeAll(async () => {
      cp = await testControlPlane(backend, { corsOrigins: [CONSOLE] });
    });
    afterAll(async () => cp?.stop());

    test("GraphQL does not reflect a foreign Origin and refuses its requests", async () => {
      const res = await fetch(`${cp.url}/graphql`, {
        method: "POST",
        headers: { origin: EVIL, "content-type": "application/json" },
        body: JSON.stringify({ query: `mutation { createApiToken(input: { name: "pwned", role: ADMIN }) { token } }` }),
      });
      expect(res.status).toBe(403);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(((await res.json()) as any).error).toContain("RUNNEL_CORS_ORIGINS");
      const preflight = await fetch(`${cp.url}/graphql`, { method: "OPTIONS", headers: { origin: EVIL, "access-control-request-method": "POST" } });
      expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
      expect(await cp.services.db.select().from(apiTokens)).toEqual([]);
    });

    test("an origin in RUNNEL_CORS_ORIGINS gets CORS with credentials; the server's own pages need none", async () => {
      const listed = await fetch(`${cp.url}/graphql`, { method: "POST", headers: { origin: CONSOLE, "content-type": "application/json" }, body: JSON.stringify({ query: "{ viewer { role } }" }) });
      expect(listed.status).toBe(200);
      expect(listed.headers.get("access-control-allow-origin")).toBe(CONSOLE);
      expect(listed.headers.get("access-control-allow-credentials")).toBe("true");
      const rest = await fetch(`${cp.url}/api/v1/pipelines`, { headers: { origin: CONSOLE } });
      expect(rest.headers.get("access-control-allow-origin")).toBe(CONSOLE);
      const own = await fetch(`${cp.url}/graphql`, { method: "POST", headers: { origin: cp.url, "content-type": "application/json" }, body: JSON.stringify({ query: "{ viewer { role } }" }) });
      expect(own.status).toBe(200);
      // Behind a proxy that says which host the browser asked for.
      const proxied = await fetch(`${cp.url}/graphql`, {
        method: "POST",
        headers: { origin: "https://runnel.example", "x-forwarded-host": "runnel.example", "content-type": "application/json" },
        body: JSON.stringify({ query: "{ viewer { role } }" }),
      });
      expect(proxied.status).toBe(200);
    });

    test("graphql-ws refuses a page of another site: it cannot create a token", async () => {
      const attack = await wsFromPage(cp.url, EVIL, `mutation { createApiToken(input: { name: "pwned", role: ADMIN }) { token } }`);
      expect(attack.opened).toBe(false);
      expect(attack.messages).toEqual([]);
      expect(await cp.services.db.select().from(apiTokens)).toEqual([]);
      // The same conversation from the listed console works (here, a harmless query).
      const allowed = await wsFromPage(cp.url, CONSOLE, "{ viewer { role } }");
      expect(allowed.messages.find((m) => m.type === "next")?.payload.data).toEqual({ viewer: { role: "ADMIN" } });
    });

    test("REST: a text/plain body, a foreign Origin, or a bodyless POST without the CSRF header changes nothing", async () => {
      const plain = await fetch(`${cp.url}/api/v1/pipelines`, { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ name: "csrf", query: QUERY }) });
      expect(plain.status).toBe(415);
      expect(((await plain.json()) as any).error).toContain("Content-Type: application/json");
      const foreign = await fetch(`${cp.url}/api/v1/pipelines`, { method: "POST", headers: { origin: EVIL, "content-type": "application/json" }, body: JSON.stringify({ name: "csrf", query: QUERY }) });
      expect(foreign.status).toBe(403);
      expect(await cp.services.db.select().from(pipelines)).toEqual([]);

      const made = await fetch(`${cp.url}/api/v1/pipelines`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "ok", query: QUERY }) });
      const id = ((await made.json()) as any).id;
      const bare = await fetch(`${cp.url}/api/v1/pipelines/${id}/restart`, { method: "POST" });
      expect(bare.status).toBe(415);
      const withHeader = await fetch(`${cp.url}/api/v1/pipelines/${id}/restart`, { method: "POST", headers: { "x-runnel-csrf": "1" } });
      expect(withHeader.status).toBe(200);
    });
  });
}
