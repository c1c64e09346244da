/**
 * `runnel validate` with the real plugin registry (package.json's plugins,
 * not the planner tests' stand-ins) accepts every statement of the seed as
 * written, now that each connector it names exists.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, runCli, tempDir, writeSql } from "../../kit/cli.ts";

test("runnel validate accepts the whole seed examples.sql with the real registry", async () => {
  const seed = readFileSync(join(REPO, "examples", "arroyo-0.5.sql"), "utf8");
  // The seed's own copy must not drift from the brief's (present beside the repo in development and CI).
  const brief = join(REPO, "..", "shared", "seed", "examples.sql");
  if (await Bun.file(brief).exists()) expect(seed).toBe(readFileSync(brief, "utf8"));
  // The session-window example reads `clickstream`, "any source table with user_id".
  const clickstream = `CREATE TABLE clickstream (user_id TEXT, ts TIMESTAMP, WATERMARK FOR ts)
  WITH (connector = 'kafka', topic = 'clicks', bootstrap_servers = 'localhost:9092', type = 'source', format = 'json');\n`;
  const dir = tempDir("runnel-validate-seed-");
  const r = await runCli(["validate", writeSql(dir, clickstream + seed)]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  for (const part of ["source kinesis_source (kinesis)", "sink kinesis_sink (kinesis)", "source clickstream (kafka)", "source impulse (impulse)", "session"]) {
    expect(r.stdout).toContain(part);
  }
});
