/**
 * Checkpoints after operators finished (Flink's FLIP-147): once every input of
 * an operator has ended, later checkpoints carry a "finished" marker instead of
 * its tables; sources keep their positions and sinks their pending commits.
 * Restoring such a checkpoint (the final one, or one taken while only one of
 * two bounded inputs had ended) gives the output of an uninterrupted run.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalCheckpointStore, type CheckpointData } from "../../../core/checkpoint/store.ts";
import { runCli, startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { normalizeRows, sinkOutputs } from "../../kit/rows.ts";

setDefaultTimeout(120_000);

const SINKS = ["pairs", "totals", "windows"] as const;

/** `fast` ends seconds before `slow`: operators fed by `fast` alone finish first, the joins of both later. */
function pipeline(dir: string) {
  const sink = (name: string, format = "json") =>
    `CREATE TABLE ${name} WITH (connector = 'single_file', path = '${join(dir, `${name}.jsonl`)}', format = '${format}', type = 'sink');`;
  return `
CREATE TABLE fast WITH (connector = 'impulse', event_rate = '6000', message_count = '3000', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
CREATE TABLE slow WITH (connector = 'impulse', event_rate = '800', message_count = '3000', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
${sink("pairs")}
${sink("totals", "debezium_json")}
${sink("windows")}
INSERT INTO pairs SELECT f.counter AS a, s.counter AS b FROM fast f JOIN slow s ON f.counter = s.counter * 3;
INSERT INTO totals SELECT counter % 7 AS k, count(*) AS n, max(counter) AS top FROM fast GROUP BY k;
INSERT INTO windows SELECT f.k, f.n, s.m FROM
  (SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 5 AS k, count(*) AS n FROM fast GROUP BY window, k) f
  JOIN (SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 5 AS k, max(counter) AS m FROM slow GROUP BY window, k) s
  ON f.k = s.k AND f.window = s.window;
`;
}

const outputs = (dir: string) => sinkOutputs(dir, SINKS, ["totals"]);

/** The newest checkpoint, or undefined while none is readable yet (one may be mid-write). */
async function latest(stateDir: string): Promise<CheckpointData | undefined> {
  try {
    return await new LocalCheckpointStore(stateDir).latest();
  } catch {
    return undefined;
  }
}

/** Each operator's subtask parts, by the label the checkpoint gives it ("2-join: updating inner join ..."). */
function partsByLabel(cp: CheckpointData) {
  return Object.entries(cp.operators).map(([id, subtasks]) => ({ label: cp.labels[id] ?? id, parts: Object.values(subtasks) }));
}

const kindOf = (label: string) => /^\d+-([a-z_]+):/.exec(label)?.[1] ?? label;
const source = (cp: CheckpointData, name: string) => partsByLabel(cp).find((o) => kindOf(o.label) === "source" && o.label.includes(`source ${name} `));

describe("checkpoints of finished operators", () => {
  const ref = tempDir("runnel-finished-ref-");
  let expected: Record<string, string[]>;

  test("the final checkpoint of a bounded job holds no operator tables, only sources' positions and sinks' commits; resuming from it changes no output", async () => {
    const r = await runCli(["run", writeSql(ref, pipeline(ref)), "--parallelism", "2", "--quiet"]);
    expect(r.code).toBe(0);
    expected = outputs(ref);
    expect(expected.pairs!.length).toBe(4000); // fast counters 0, 3, …, 2997 (from each of 2 subtasks) meet slow ones (from each of 2)
    expect(expected.totals!.length).toBe(7);
    expect(expected.windows!.length).toBeGreaterThan(50);

    const dir = tempDir("runnel-finished-end-");
    const stateDir = join(dir, "state");
    const args = ["run", writeSql(dir, pipeline(dir)), "--parallelism", "2", "--state-dir", stateDir, "--checkpoint-interval", "300ms", "--quiet"];
    const first = await runCli(args);
    expect(first.code).toBe(0);
    expect(outputs(dir)).toEqual(expected);

    const final = (await latest(stateDir))!;
    expect(final.then).toBe("end");
    const ops = partsByLabel(final);
    const kinds = new Set(ops.map((o) => kindOf(o.label)));
    // Every stateful operator kind of the pipeline is in the checkpoint (as a marker), so the check below covers them.
    for (const k of ["source", "sink", "join", "updating_aggregate", "window_aggregate"]) expect(kinds).toContain(k);
    for (const { label, parts } of ops) {
      expect(parts.length).toBe(kindOf(label) === "sink" ? 1 : 2); // a single_file sink runs as one subtask
      for (const p of parts) {
        if (kindOf(label) === "sink") {
          expect(p.finished).toBeUndefined();
          expect(Object.keys(p.values)).toEqual(["sink"]);
        } else {
          expect({ label, finished: p.finished, tables: p.tables }).toEqual({ label, finished: true, tables: {} });
          if (kindOf(label) === "source") expect(Object.keys(p.values)).toEqual(["position"]);
        }
      }
    }

    const again = await runCli(args);
    expect(again.stderr).toContain("resumed from checkpoint");
    // Both sources had finished: they end at once (operators after them kept no state), and say so.
    expect(again.stderr).toContain("source fast had read all its input");
    expect(again.stderr).toContain("source slow had read all its input");
    expect(again.code).toBe(0);
    expect(outputs(dir)).toEqual(expected);
  });

  test("killed after a checkpoint in which only the operators fed by one input had finished: resumed, every sink as an uninterrupted run", async () => {
    const dir = tempDir("runnel-finished-half-");
    const stateDir = join(dir, "state");
    const args = ["run", writeSql(dir, pipeline(dir)), "--parallelism", "2", "--state-dir", stateDir, "--checkpoint-interval", "100ms", "--quiet"];
    const proc = startCli(args);
    const halfFinished = (cp: CheckpointData | undefined) => {
      if (!cp || cp.then !== "continue") return false;
      const fast = source(cp, "fast");
      const slow = source(cp, "slow");
      return !!fast?.parts.every((p) => p.finished) && !!slow && !slow.parts.some((p) => p.finished);
    };
    await waitUntil("a checkpoint with fast finished and slow still running", async () => halfFinished(await latest(stateDir)));
    proc.kill("SIGKILL");
    await proc.exited;
    // The checkpoint the rerun resumes from (the kill came a moment after one such: slow runs for seconds more).
    const half = (await latest(stateDir))!;
    expect(halfFinished(half)).toBe(true);

    const ops = partsByLabel(half);
    const byKind = (kind: string) => ops.filter((o) => kindOf(o.label) === kind);
    // Fed by fast alone: finished, no tables.
    const aggregate = byKind("updating_aggregate")[0]!;
    for (const p of aggregate.parts) expect({ finished: p.finished, tables: p.tables }).toEqual({ finished: true, tables: {} });
    // The joins have one input still open: they keep their tables.
    for (const join of byKind("join")) for (const p of join.parts) {
      expect(p.finished).toBeUndefined();
      expect(Object.keys(p.tables).length).toBeGreaterThan(0);
    }

    const resumed = await runCli(args);
    expect(resumed.stderr).toContain(`resumed from checkpoint ${half.checkpointId}`);
    expect(resumed.code).toBe(0);
    expect(outputs(dir)).toEqual(expected);
  });

  test("a source that had finished ends at once on restore, even where its input grew: the operators after it kept no state", async () => {
    const dir = tempDir("runnel-finished-grown-");
    mkdirSync(join(dir, "in"));
    const file = (name: string, rows: [number, number][]) => writeFileSync(join(dir, "in", name), rows.map(([k, v]) => JSON.stringify({ k, v })).join("\n") + "\n");
    file("a.json", [[1, 10], [2, 20], [1, 5]]);
    const sql = writeSql(dir, `
CREATE TABLE input (k BIGINT, v BIGINT) WITH (connector = 'filesystem', path = '${join(dir, "in")}', format = 'json', type = 'source');
CREATE TABLE totals WITH (connector = 'single_file', path = '${join(dir, "totals.jsonl")}', format = 'debezium_json', type = 'sink');
INSERT INTO totals SELECT k, count(*) AS n, sum(v) AS s FROM input GROUP BY k;`);
    const args = ["run", sql, "--state-dir", join(dir, "state"), "--quiet"];
    expect((await runCli(args)).code).toBe(0);
    const first = sinkOutputs(dir, ["totals"], ["totals"]);
    expect(first.totals).toEqual(normalizeRows([{ k: 1, n: 2, s: 15 }, { k: 2, n: 1, s: 20 }]));
    // Read now, b.json would meet an aggregate restored empty (counting k = 1 afresh): the source must not read it.
    file("b.json", [[1, 100]]);
    const again = await runCli(args);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("source input had read all its input");
    expect(sinkOutputs(dir, ["totals"], ["totals"])).toEqual(first);
  });
});
