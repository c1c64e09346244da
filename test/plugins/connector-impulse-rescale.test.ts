/**
 * The impulse source across a change of parallelism: its counters are fixed
 * at the first start (one per subtask, `message_count` each), so a job stopped
 * with SIGTERM and resumed with more or fewer subtasks writes exactly the rows
 * of an uninterrupted run at the first parallelism.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../kit/cli.ts";
import { lines, stoppedAndResumed } from "./generator-rescale.ts";

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

describe("impulse source, stopped and resumed at another parallelism", () => {
  for (const parallelisms of [
    [2, 1],
    [1, 3],
  ]) {
    test(`${parallelisms.join(" → ")}: exactly the rows of an uninterrupted run at ${parallelisms[0]}`, async () => {
      const first = parallelisms[0]!;
      const refDir = tempDir("runnel-impulse-ref-");
      const refOut = join(refDir, "out.jsonl");
      const ref = await runCli(["run", writeSql(refDir, pipeline(refOut)), "--parallelism", String(first), "--quiet"]);
      expect(ref.code).toBe(0);
      const expected = lines(refOut).sort();
      expect(expected.length).toBe(first * PER_COUNTER);
      const got = await stoppedAndResumed(pipeline, parallelisms, 300, first * PER_COUNTER);
      expect(got.length).toBe(first * PER_COUNTER);
      expect(got.sort()).toEqual(expected);
      // subtask_index names the counter, as in the first run.
      expect(new Set(got.map((l) => JSON.parse(l).subtask_index))).toEqual(new Set(Array.from({ length: first }, (_, i) => i)));
    });
  }
});
