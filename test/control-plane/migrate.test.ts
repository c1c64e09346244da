/** `runnel migrate` applies the migrations alone, on PGlite and PostgreSQL, and is a no-op the second time. */
import { expect, setDefaultTimeout, test } from "bun:test";
import { tempDir } from "../kit/cli.ts";
import { freshPostgresDatabase } from "../kit/services.ts";

setDefaultTimeout(60_000);

async function migrate(env: Record<string, string>) {
  const proc = Bun.spawn(["bun", "core/cli/main.ts", "migrate"], { env: { ...process.env, ...env }, stderr: "pipe", stdout: "pipe" });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { stderr, code };
}

test("runnel migrate on PostgreSQL creates the tables, twice without harm", async () => {
  const url = await freshPostgresDatabase();
  for (let i = 0; i < 2; i++) {
    const r = await migrate({ DATABASE_URL: url });
    expect(r.stderr).toContain("the database is up to date");
    expect(r.code).toBe(0);
  }
  const { SQL } = await import("bun");
  const db = new SQL(url);
  const tables = (await db`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`).map((r: any) => r.table_name);
  await db.close();
  expect(tables).toEqual(["api_tokens", "checkpoints", "connection_profiles", "job_events", "job_metrics", "jobs", "pipeline_versions", "pipelines", "udfs"]);
});

test("runnel migrate on embedded PGlite, and a clear error for an unreachable DATABASE_URL", async () => {
  const r = await migrate({ RUNNEL_DATA_DIR: tempDir("runnel-migrate-") });
  expect(r.code).toBe(0);
  const bad = await migrate({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere" });
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain("cannot connect to DATABASE_URL");
});
