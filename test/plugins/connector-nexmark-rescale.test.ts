/**
 * The nexmark source across a change of parallelism: a job stopped with
 * SIGTERM and resumed with more or fewer subtasks writes exactly the events of
 * an uninterrupted run (its splits are fixed at the first start and move
 * between subtasks with their positions).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../kit/cli.ts";
import { lines, stoppedAndResumed } from "./generator-rescale.ts";

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
      const got = await stoppedAndResumed(pipeline, parallelisms, 300, EVENTS);
      expect(got.length).toBe(EVENTS);
      expect(got.sort()).toEqual(expected);
    });
  }
});
