#!/usr/bin/env bun
/**
 * `bun run start`: the control plane on 127.0.0.1:8000 (RUNNEL_HOST, PORT),
 * storing pipelines in embedded PGlite under ./data unless DATABASE_URL names
 * a PostgreSQL server.
 */
import { redact } from "./db/connect.ts";
import { startControlPlane } from "./server.ts";
import { settingsFromEnv } from "./settings.ts";
import { ensureConsoleBuilt } from "../console/build.ts";

async function main() {
  const settings = settingsFromEnv();
  // The web console's assets: built by `bun install`; rebuilt here when missing or older than console/'s sources.
  await ensureConsoleBuilt();
  const databaseUrl = process.env.DATABASE_URL || undefined;
  console.error(`runnel control plane: storing pipelines in ${databaseUrl ? `PostgreSQL at ${redact(databaseUrl)}` : `embedded PGlite under ${settings.dataDir}`}, checkpoints in ${settings.checkpointDir}`);
  const cp = await startControlPlane(settings, { databaseUrl });
  console.error(`listening on ${cp.host}:${cp.port} (${cp.url}): console ${cp.url}/ · GraphQL ${cp.url}/graphql · REST ${cp.url}/api/v1 · metrics ${cp.url}/metrics`);
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`${sig}: stopping; running jobs resume from their checkpoints at the next start`);
    await cp.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((err) => {
  console.error(`runnel control plane could not start: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
