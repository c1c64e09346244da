/**
 * Starts a control plane for a test, on embedded PGlite (in a temp folder) or
 * on a fresh database of the test PostgreSQL server, and talks to it over real
 * HTTP: GraphQL over fetch, subscriptions with the graphql-sse and graphql-ws
 * clients, REST with fetch.
 */
import { createClient as createSseClient } from "graphql-sse";
import { createClient as createWsClient } from "graphql-ws";
import { startControlPlane, type ControlPlane } from "../../control-plane/server.ts";
import { settingsFromEnv } from "../../control-plane/settings.ts";
import type { Settings } from "../../control-plane/services/context.ts";
import { tempDir } from "./cli.ts";
import { freshPostgresDatabase } from "./services.ts";

export type Backend = "pglite" | "postgres";
export const BACKENDS: Backend[] = ["pglite", "postgres"];

export interface TestControlPlane extends ControlPlane {
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<T>;
  sse(): ReturnType<typeof createSseClient>;
  ws(connectionParams?: Record<string, unknown>): ReturnType<typeof createWsClient>;
  dataDir: string;
  databaseUrl?: string;
}

export async function testControlPlane(
  backend: Backend,
  overrides: Partial<Settings> = {},
  reuse: { dataDir?: string; databaseUrl?: string } = {},
): Promise<TestControlPlane> {
  const dataDir = reuse.dataDir ?? tempDir("runnel-cp-");
  const databaseUrl = backend === "postgres" ? (reuse.databaseUrl ?? (await freshPostgresDatabase())) : undefined;
  const settings = settingsFromEnv({ port: 0, dataDir, checkpointDir: `${dataDir}/checkpoints`, heartbeatMs: 200, heartbeatTimeoutMs: 3000, leaseMs: 2000, ...overrides });
  const cp = await startControlPlane(settings, { databaseUrl });
  const clients: { dispose(): void }[] = [];
  return {
    ...cp,
    dataDir,
    databaseUrl,
    async gql(query, variables = {}, headers = {}) {
      const res = await fetch(`${cp.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as any;
      if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
      return body.data;
    },
    sse() {
      const c = createSseClient({ url: `${cp.url}/graphql`, retryAttempts: 0 });
      clients.push(c);
      return c;
    },
    ws(connectionParams) {
      const c = createWsClient({ url: `${cp.url.replace("http", "ws")}/graphql`, connectionParams, retryAttempts: 0, lazy: true });
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.dispose();
      await cp.stop();
    },
  };
}

export { eventually } from "./cli.ts";
