/**
 * Opens the control plane's database: embedded PGlite in the data folder when
 * DATABASE_URL is unset, a PostgreSQL server otherwise. Both speak the same
 * SQL through drizzle, apply the same migrations, and fan events out through
 * LISTEN/NOTIFY (within one process for PGlite, across processes for Postgres).
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PgDatabase } from "drizzle-orm/pg-core";
import { isSameProcess, processIdentity } from "../process-identity.ts";
import { privateDir, tightenTree } from "../security/private-files.ts";
import * as schema from "./schema.ts";

export type Db = PgDatabase<any, typeof schema>;

export interface Database {
  db: Db;
  /** The connection string, for a one-connection migration client. */
  url?: string;
  kind: "pglite" | "postgres";
  /** Where it lives, for the start-up line (password hidden). */
  describe: string;
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

const MIGRATIONS = resolve(join(import.meta.dir, "..", "..", "migrations"));

export async function openDatabase(options: { url?: string; dataDir: string }): Promise<Database> {
  const database = options.url ? await openPostgres(options.url) : await openPglite(options.dataDir);
  await migrate(database);
  return database;
}

/**
 * PGlite runs inside one process and does not lock its folder: a second
 * process opening it (a `runnel token create` while the control plane runs)
 * would corrupt it. A lock file names the process holding it; one left by a
 * process that is gone (or whose pid now belongs to another) is taken over.
 */
function lockPglite(dir: string): () => void {
  const path = `${dir}.lock`;
  const mine = JSON.stringify({ pid: process.pid, identity: processIdentity(process.pid) });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, mine);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let holder: { pid?: number; identity?: string | null } = {};
    try {
      holder = JSON.parse(readFileSync(path, "utf8"));
    } catch {
      // Half-written by a process that died: stale.
    }
    if (holder.pid && holder.pid !== process.pid && isSameProcess(holder.pid, holder.identity ?? null)) {
      throw new Error(
        `the embedded database in ${dir} is in use by process ${holder.pid} (a running control plane?); ` +
          `stop it first, or do this through its API (a token with the admin role can create tokens: createApiToken)`,
      );
    }
    rmSync(path, { force: true });
  }
  throw new Error(`cannot take the lock ${path}; remove it if no control plane runs on ${dir}`);
}

async function openPglite(dataDir: string): Promise<Database> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const dir = resolve(dataDir, "pglite");
  privateDir(dataDir);
  const unlock = lockPglite(dir);
  let client: InstanceType<typeof PGlite>;
  try {
    client = await PGlite.create(dir);
  } catch (err) {
    unlock();
    throw err;
  }
  tightenTree(dir);
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    kind: "pglite",
    describe: `embedded PGlite in ${dir}`,
    async listen(channel, onMessage) {
      const unsubscribe = await client.listen(channel, onMessage);
      return async () => unsubscribe();
    },
    async notify(channel, payload) {
      await client.query(`SELECT pg_notify($1, $2)`, [channel, payload]);
    },
    async close() {
      try {
        await client.close();
      } finally {
        tightenTree(dir);
        unlock();
      }
    },
  };
}

async function openPostgres(url: string): Promise<Database> {
  const { default: postgres } = await import("postgres");
  const { drizzle } = await import("drizzle-orm/postgres-js");
  const client = postgres(url, { max: 10, onnotice: () => {} });
  try {
    await client`SELECT 1`;
  } catch (err) {
    await client.end({ timeout: 1 }).catch(() => {});
    throw new Error(`cannot connect to DATABASE_URL (${redact(url)}): ${(err as Error).message}; check the URL and that the server is running`);
  }
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    kind: "postgres",
    url,
    describe: `PostgreSQL at ${redact(url)}`,
    async listen(channel, onMessage) {
      const sub = await client.listen(channel, onMessage);
      return async () => sub.unlisten();
    },
    async notify(channel, payload) {
      await client.notify(channel, payload);
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/** Applies pending migrations from migrations/ (drizzle-kit output); safe to run from several processes at once. */
export async function migrate(database: Database): Promise<void> {
  if (database.kind === "pglite") {
    const { migrate } = await import("drizzle-orm/pglite/migrator");
    await migrate(database.db as any, { migrationsFolder: MIGRATIONS });
  } else {
    const { migrate } = await import("drizzle-orm/postgres-js/migrator");
    const { drizzle } = await import("drizzle-orm/postgres-js");
    const { default: postgres } = await import("postgres");
    // Two control planes starting together must not both migrate: one connection
    // holds an advisory lock while it applies the migrations.
    const one = postgres(database.url!, { max: 1, onnotice: () => {} });
    try {
      await one`SELECT pg_advisory_lock(727274)`;
      await migrate(drizzle(one), { migrationsFolder: MIGRATIONS });
      await one`SELECT pg_advisory_unlock(727274)`;
    } finally {
      await one.end({ timeout: 5 });
    }
  }
}
