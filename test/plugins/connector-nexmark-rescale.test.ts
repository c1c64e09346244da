/**
 * The nexmark source across a change of parallelism: a job stopped with
 * SIGTERM and resumed with more or fewer subtasks writes exactly the events of
 * an uninterrupted run (its splits are fixed at the first start and move
 * between subtasks with their positions).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, tempDir, writeSql } from "../kit/cli.ts";

setDefaultTimeout(120_000);

const EVENTS = 15_000;

// Every event is told apart by its person id, auction id or bid time (event
// times are base + n × 200 µs), so the lines form a set of generated ids.
const pipeline = (out: string) => `
CREATE TABLE nexmark WITH (
  connector = 'nexmark',
  event_rate = '5000',
  message_count = '${EVENTS}',
  base_time = '2024-01-01T00:00:00Z',
  seed = '4'
);
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO results SELECT person.id AS person, auction.id AS auction, bid.datetime AS bid FROM nexmark;
`;

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

/** Runs at each parallelism in turn, stopping all but the last with SIGTERM after `stopAfterMs`. */
async function rescaledRun(dir: string, parallelisms: number[], stopAfterMs: number) {
  const out = join(dir, "out.jsonl");
  const sql = writeSql(dir, pipeline(out), "rescaled.sql");
  const args = (p: number) => ["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "500ms", "--parallelism", String(p), "--quiet"];
  for (const p of parallelisms.slice(0, -1)) {
    const before = lines(out).length;
    const proc = startCli(args(p));
    await Bun.sleep(stopAfterMs);
    proc.kill("SIGTERM");
    const stderr = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(0);
    expect(stderr).toContain("stopped at checkpoint");
    // The stop landed mid-run: some events written by this run, not all.
    expect(lines(out).length).toBeGreaterThan(before);
    expect(lines(out).length).toBeLessThan(EVENTS);
  }
  const last = await runCli(args(parallelisms.at(-1)!));
  expect(last.stderr).not.toContain("error");
  expect(last.code).toBe(0);
  return lines(out);
}

let reference: string[] | undefined;
async function uninterrupted(): Promise<string[]> {
  if (reference) return reference;
  const dir = tempDir("runnel-nexmark-ref-");
  const out = join(dir, "out.jsonl");
  const ref = await runCli(["run", writeSql(dir, pipeline(out)), "--parallelism", "2", "--quiet"]);
  expect(ref.code).toBe(0);
  reference = lines(out).sort();
  expect(reference.length).toBe(EVENTS);
  expect(new Set(reference).size).toBe(EVENTS);
  return reference;
}

describe("nexmark source, stopped and resumed at another parallelism", () => {
  for (const parallelisms of [
    [2, 1],
    [1, 3],
    [2, 3, 1],
  ]) {
    test(`${parallelisms.join(" → ")}: exactly the events of an uninterrupted run`, async () => {
      const expected = await uninterrupted();
      const got = await rescaledRun(tempDir("runnel-nexmark-rescale-"), parallelisms, 1200);
      expect(got.length).toBe(EVENTS);
      expect(got.sort()).toEqual(expected);
    });
  }
});
