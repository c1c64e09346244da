/**
 * An update whose old and new values hash to different subtasks is split into
 * a retraction for the old key's subtask and an insert for the new one's: a
 * GROUP BY over another GROUP BY gives the same result at any parallelism.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(60_000);

/** The final table a Debezium change log describes, keyed by `n`. */
function finalTable(stdout: string): Map<number, number> {
  const table = new Map<number, number>();
  for (const line of stdout.split("\n").filter(Boolean)) {
    const c = JSON.parse(line);
    if (c.before) table.delete(c.before.n);
    if (c.after) table.set(c.after.n, c.after.keys);
  }
  return table;
}

test("a histogram of counts per key is right at parallelism 1, 2 and 3", async () => {
  const dir = tempDir("runnel-updating-shuffle-");
  const input = join(dir, "events.jsonl");
  let seed = 7;
  const keys: number[] = [];
  for (let i = 0; i < 3000; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    keys.push(seed % 97);
  }
  writeFileSync(input, keys.map((k) => JSON.stringify({ k })).join("\n") + "\n");
  const counts = new Map<number, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  const expected = new Map<number, number>();
  for (const n of counts.values()) expected.set(n, (expected.get(n) ?? 0) + 1);

  const sql = writeSql(
    dir,
    `CREATE TABLE events (k INT) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
SELECT n, count(*) AS keys FROM (SELECT k, count(*) AS n FROM events GROUP BY k) GROUP BY n;`,
  );
  for (const parallelism of [1, 2, 3]) {
    const r = await runCli(["run", sql, "--parallelism", String(parallelism), "--quiet"]);
    expect(r.code).toBe(0);
    expect([...finalTable(r.stdout)].sort((a, b) => a[0] - b[0])).toEqual([...expected].sort((a, b) => a[0] - b[0]));
  }
});

test("the hash edge splits an update whose old and new keys go to different subtasks", async () => {
  const { Channel } = await import("../../../core/runtime/channel.ts");
  const { HashEdge } = await import("../../../core/runtime/edges.ts");
  const { RowOp } = await import("../../../core/plugin-api/index.ts");
  const channels = [new Channel(8), new Channel(8)];
  // Key = the row's first value; with 2 key groups, subtask = key % 2.
  const edge = new HashEdge(channels, (row) => row[0] as number, 2);
  await edge.send({
    rows: [[3, "new"], [4, "same"]],
    times: [10, 20],
    ops: [RowOp.Update, RowOp.Update],
    before: [[2, "old"], [6, "was"]],
  });
  const got = channels.map((c) => (c.take() as any)?.batch);
  // Key 2 → 3 crosses subtasks: subtask 0 retracts the old row, subtask 1 inserts the new one.
  expect(got[0]).toEqual({ rows: [[2, "old"], [4, "same"]], times: [10, 20], ops: [RowOp.Delete, RowOp.Update], before: [[2, "old"], [6, "was"]] });
  expect(got[1]).toEqual({ rows: [[3, "new"]], times: [10], ops: [RowOp.Insert], before: [null] });
});
