/**
 * The impulse source across a change of parallelism: its counters are fixed
 * at the first start (one per subtask, `message_count` each), so a job stopped
 * with SIGTERM and resumed with more or fewer subtasks writes exactly the rows
 * of an uninterrupted run at the first parallelism.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, tempDir, writeSql } from "../kit/cli.ts";

setDefaultTimeout(120_000);

const PER_COUNTER = 5000;

const pipeline = (out: string) => `
CREATE TABLE impulse WITH (
  connector = 'impulse',
  event_rate = '2500',
  message_count = '${PER_COUNTER}',
  event_time_interval = '1ms',
  start_time = '2024-01-01T00:00:00Z'
);
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO results SELECT subtask_index, counter, timestamp FROM impulse;
`;

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

async function run(dir: string, parallelisms: number[], stopAfterMs: number) {
  const out = join(dir, "out.jsonl");
  const sql = writeSql(dir, pipeline(out));
  const args = (p: number) => ["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "500ms", "--parallelism", String(p), "--quiet"];
  for (const p of parallelisms.slice(0, -1)) {
    const before = lines(out).length;
    const proc = startCli(args(p));
    await Bun.sleep(stopAfterMs);
    proc.kill("SIGTERM");
    const stderr = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(0);
    expect(stderr).toContain("stopped at checkpoint");
    expect(lines(out).length).toBeGreaterThan(before);
  }
  const last = await runCli(args(parallelisms.at(-1)!));
  expect(last.stderr).not.toContain("error");
  expect(last.code).toBe(0);
  return lines(out);
}

describe("impulse source, stopped and resumed at another parallelism", () => {
  for (const parallelisms of [
    [2, 1],
    [1, 3],
  ]) {
    test(`${parallelisms.join(" → ")}: exactly the rows of an uninterrupted run at ${parallelisms[0]}`, async () => {
      const first = parallelisms[0]!;
      const expected = (await run(tempDir("runnel-impulse-ref-"), [first], 0)).sort();
      expect(expected.length).toBe(first * PER_COUNTER);
      const got = await run(tempDir("runnel-impulse-rescale-"), parallelisms, 1200);
      expect(got.length).toBe(first * PER_COUNTER);
      expect(got.sort()).toEqual(expected);
      // subtask_index names the counter, as in the first run.
      expect(new Set(got.map((l) => JSON.parse(l).subtask_index))).toEqual(new Set(Array.from({ length: first }, (_, i) => i)));
    });
  }
});
