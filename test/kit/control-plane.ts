/**
 * Starts a control plane for a test, on embedded PGlite (in a temp folder) or
 * on a fresh database of the test PostgreSQL server, and talks to it over real
 * HTTP: GraphQL over fetch, subscriptions with the graphql-sse and graphql-ws
 * clients, REST with fetch. `spawnControlPlane` runs `bun run start` as its
 * own process instead, for what an in-process server cannot show (its start
 * message, exit code, and an event loop apart from the test's).
 */
import { afterAll } from "bun:test";
import { createClient as createSseClient } from "graphql-sse";
import { createClient as createWsClient } from "graphql-ws";
import { cpSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../../control-plane/db/connect.ts";
import { startControlPlane, type ControlPlane } from "../../control-plane/server.ts";
import { settingsFromEnv } from "../../control-plane/settings.ts";
import type { Settings } from "../../control-plane/services/context.ts";
import { collectText, eventually, REPO, tempDir } from "./cli.ts";
import { freshPostgresDatabase } from "./services.ts";

export type Backend = "pglite" | "postgres";
export const BACKENDS: Backend[] = ["pglite", "postgres"];

export interface GqlReply {
  status: number;
  body: any;
}

export interface TestControlPlane extends ControlPlane {
  /** Data of a GraphQL operation; throws on errors. */
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<T>;
  /** The whole reply, errors included. */
  gqlReply(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GqlReply>;
  sse(headers?: Record<string, string>): ReturnType<typeof createSseClient>;
  ws(connectionParams?: Record<string, unknown>): ReturnType<typeof createWsClient>;
  dataDir: string;
  databaseUrl?: string;
  /** What the control plane logged at start (its exposure notices, warnings). */
  logs: string[];
}

let pgliteTemplate: Promise<string> | null = null;

/**
 * A new embedded database, migrated: a copy of one made once per test
 * process (a fresh PGlite runs initdb, seconds of CPU each time).
 */
async function freshPglite(dataDir: string): Promise<void> {
  pgliteTemplate ??= (async () => {
    const dir = tempDir("runnel-pglite-template-");
    await (await openDatabase({ dataDir: dir })).close();
    return join(dir, "pglite");
  })();
  cpSync(await pgliteTemplate, join(dataDir, "pglite"), { recursive: true });
}

export async function testControlPlane(
  backend: Backend,
  overrides: Partial<Settings> = {},
  reuse: { dataDir?: string; databaseUrl?: string } = {},
): Promise<TestControlPlane> {
  const dataDir = reuse.dataDir ?? tempDir("runnel-cp-");
  if (backend === "pglite" && !reuse.dataDir) await freshPglite(dataDir);
  const databaseUrl = backend === "postgres" ? (reuse.databaseUrl ?? (await freshPostgresDatabase())) : undefined;
  const settings = settingsFromEnv({ port: 0, dataDir, checkpointDir: `${dataDir}/checkpoints`, heartbeatMs: 200, heartbeatTimeoutMs: 10_000, leaseMs: 2000, ...overrides });
  const logs: string[] = [];
  const cp = await startControlPlane(settings, { databaseUrl, log: (line) => logs.push(line) });
  const clients: { dispose(): void }[] = [];
  let stopped: Promise<void> | null = null;
  const gqlReply = async (query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
    const res = await fetch(`${cp.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  return {
    ...cp,
    dataDir,
    databaseUrl,
    logs,
    gqlReply,
    async gql(query, variables = {}, headers = {}) {
      const { body } = await gqlReply(query, variables, headers);
      if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
      return body.data;
    },
    sse(headers = {}) {
      const c = createSseClient({ url: `${cp.url}/graphql`, retryAttempts: 0, headers });
      clients.push(c);
      return c;
    },
    ws(connectionParams) {
      const c = createWsClient({ url: `${cp.url.replace("http", "ws")}/graphql`, connectionParams, retryAttempts: 0, lazy: true });
      clients.push(c);
      return c;
    },
    /** Stops it; a second call does nothing (a test may stop it before afterAll does). */
    async stop() {
      if (stopped) return stopped;
      for (const c of clients) c.dispose();
      return (stopped = cp.stop());
    },
  };
}

export interface SpawnedControlPlane {
  url: string;
  proc: ReturnType<typeof Bun.spawn>;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Its exit code, once it has exited (e.g. when it refused to start). */
  exited: Promise<number>;
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<T>;
  stop(): Promise<void>;
}

/** `bun run start` in its own process, on PGlite in `dataDir` or a fresh PostgreSQL database; resolves once it answers (or has exited). */
export async function spawnControlPlane(backend: Backend, env: Record<string, string> = {}, dataDir = tempDir("runnel-cp-")): Promise<SpawnedControlPlane> {
  const databaseUrl = backend === "postgres" ? (env.DATABASE_URL ?? (await freshPostgresDatabase())) : "";
  // PORT=0: the kernel picks a free port, and the control plane says which one it listens on.
  const proc = Bun.spawn(["bun", join(REPO, "control-plane", "main.ts")], {
    env: { ...process.env, PORT: "0", RUNNEL_DATA_DIR: dataDir, DATABASE_URL: databaseUrl, RUNNEL_HEARTBEAT_MS: "200", RUNNEL_WORKER_LOGS: "0", ...env },
    stdout: "ignore",
    stderr: "pipe",
  });
  const stderr = collectText(proc.stderr as ReadableStream<Uint8Array>);
  let exitedCode: number | null = null;
  const exited = proc.exited.then((c) => (exitedCode = c));
  await eventually("the control plane to answer or exit", async () => exitedCode !== null || /listening on .*GraphQL/.test(stderr()), 30_000);
  const listening = /listening on (\S+):(\d+) /.exec(stderr());
  const url = listening ? `http://${listening[1].includes(":") ? `[${listening[1]}]` : listening[1]}:${listening[2]}` : "http://127.0.0.1:0";
  return {
    url,
    proc,
    stderr,
    exited,
    async gql(query, variables = {}, headers = {}) {
      const res = await fetch(`${url}/graphql`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ query, variables }) }).catch((e) => {
        // Say what the control plane itself printed: a failed request alone does not tell a crash from a network fault.
        throw new Error(`${e} (${url}; the control plane ${exitedCode === null ? "is running" : `exited with code ${exitedCode}`}; its stderr ends:\n${stderr().slice(-3000)})`);
      });
      const body = (await res.json()) as any;
      if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
      return body.data;
    },
    async stop() {
      if (exitedCode === null) proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** A directory pipelines of this control plane may read and write files in (its first RUNNEL_FILE_ROOTS entry). */
export function fileRoot(cp: TestControlPlane): string {
  const root = (cp.services.settings.fileRoots as string[] | undefined)?.[0] ?? join(cp.dataDir, "files");
  mkdirSync(root, { recursive: true });
  return root;
}

/** Worker processes of a job, found by the job id on their command line (read from /proc: no procps needed). */
export function workersOf(jobId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(`jobs/worker.ts ${jobId}`)) pids.push(Number(entry));
  }
  return pids;
}

/** Control planes (or anything with stop()) a test file started, stopped once its tests are done: push them on the list returned. */
export function stoppedAfterAll<T extends { stop(): Promise<void> }>(): T[] {
  const started: T[] = [];
  afterAll(async () => {
    for (const cp of started) await cp.stop().catch(() => {});
  });
  return started;
}

/** createPipeline with the result most tests want: the pipeline and its job, or the user error's message. */
export const CREATE_PIPELINE = `mutation ($input: CreatePipelineInput!) {
  createPipeline(input: $input) { __typename ... on PipelinePayload { pipeline { id jobs { id } } } ... on UserError { message } }
}`;

export { eventually } from "./cli.ts";

/**
 * A database as an older Runnel left it: migrated up to (not including)
 * migration `before`, then filled by `fill` with rows in the old shape. The
 * control plane started on it must migrate those rows, not drop them.
 */
export async function olderDatabase(
  backend: Backend,
  before: number,
  fill: (sql: (text: string, params?: unknown[]) => Promise<unknown>) => Promise<void>,
): Promise<{ dataDir: string; databaseUrl?: string }> {
  const { writeFileSync } = await import("node:fs");
  const migrations = tempDir("runnel-migrations-");
  cpSync(join(REPO, "migrations"), migrations, { recursive: true });
  const journalPath = join(migrations, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8"));
  journal.entries = journal.entries.filter((e: { idx: number }) => e.idx < before);
  writeFileSync(journalPath, JSON.stringify(journal));
  const dataDir = tempDir("runnel-cp-");
  if (backend === "pglite") {
    const { PGlite } = await import("@electric-sql/pglite");
    const { drizzle } = await import("drizzle-orm/pglite");
    const { migrate } = await import("drizzle-orm/pglite/migrator");
    const client = await PGlite.create(join(dataDir, "pglite"));
    await migrate(drizzle(client), { migrationsFolder: migrations });
    await fill(async (text, params) => client.query(text, params as any[]));
    await client.close();
    return { dataDir };
  }
  const databaseUrl = await freshPostgresDatabase();
  const { default: postgres } = await import("postgres");
  const { drizzle } = await import("drizzle-orm/postgres-js");
  const { migrate } = await import("drizzle-orm/postgres-js/migrator");
  const client = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  await migrate(drizzle(client), { migrationsFolder: migrations });
  await fill(async (text, params) => client.unsafe(text, params as any[]));
  await client.end();
  return { dataDir, databaseUrl };
}
