/**
 * Every stateful operator through kill -9, on both state backends: one pipeline
 * with tumbling, hopping and session windows, an updating aggregate, an updating
 * join, a window join, a top-N per window, an updating top-N and a
 * deduplication, killed at several moments (some during a checkpoint's
 * background writing) and rerun, then restored at another parallelism. Each
 * sink's output (folded, for updating results) equals an uninterrupted run's.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { sinkOutputs } from "../../kit/rows.ts";

setDefaultTimeout(240_000);

const SINKS = ["tumble", "hop", "session", "totals", "pairs", "joined", "top_per_window", "top_per_key", "first_per_key"] as const;
const UPDATING = ["totals", "top_per_key", "first_per_key"];

/** `rate`: events per second of wall time; event times are fixed by event_time_interval, so the output does not depend on it. */
function pipeline(dir: string, rate = 3000) {
  const sink = (name: string, format = "json") =>
    `CREATE TABLE ${name} WITH (connector = 'single_file', path = '${join(dir, `${name}.jsonl`)}', format = '${format}', type = 'sink');`;
  return `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '${rate}', message_count = '6000', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
${sink("tumble")}
${sink("hop")}
${sink("session")}
${sink("totals", "debezium_json")}
${sink("pairs")}
${sink("joined")}
${sink("top_per_window")}
${sink("top_per_key", "debezium_json")}
${sink("first_per_key", "debezium_json")}
INSERT INTO tumble SELECT window.start AS ws, k, n, total FROM (
  SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 7 AS k, count(*) AS n, sum(counter) AS total FROM impulse GROUP BY window, k);
INSERT INTO hop SELECT window.start AS ws, n FROM (
  SELECT hop(INTERVAL '500' MILLISECOND, INTERVAL '2' SECOND) AS window, count(*) AS n FROM impulse GROUP BY window);
INSERT INTO session SELECT window.start AS ws, window.end AS we, k, n FROM (
  SELECT session(INTERVAL '300' MILLISECOND) AS window, counter % 20 AS k, count(*) AS n FROM impulse WHERE counter % 200 < 150 GROUP BY window, k);
INSERT INTO totals SELECT counter % 97 AS k, count(*) AS n, max(counter) AS top FROM impulse GROUP BY k;
INSERT INTO pairs SELECT a.counter AS a, b.counter AS b FROM impulse a JOIN (SELECT counter FROM impulse WHERE counter % 3 = 0) b ON a.counter = b.counter + 3;
INSERT INTO joined SELECT x.k, x.n, y.m FROM
  (SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 5 AS k, count(*) AS n FROM impulse GROUP BY window, k) x
  JOIN (SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 5 AS k, max(counter) AS m FROM impulse GROUP BY window, k) y
  ON x.k = y.k AND x.window = y.window;
INSERT INTO top_per_window SELECT ws, k, n FROM (
  SELECT window.start AS ws, k, n, ROW_NUMBER() OVER (PARTITION BY window ORDER BY n DESC, k) AS rn FROM (
    SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 7 AS k, count(*) AS n FROM impulse WHERE counter % 5 <> 0 OR counter % 7 = 2 GROUP BY window, k))
WHERE rn <= 2;
-- Scores are distinct (a permutation of 0..6006 over the first 6,000 counters), so the top 3 does not depend on arrival order.
INSERT INTO top_per_key SELECT k, counter, score, rn FROM (
  SELECT k, counter, score, ROW_NUMBER() OVER (PARTITION BY k ORDER BY score DESC) AS rn FROM (
    SELECT counter % 11 AS k, counter, (counter * 7919) % 6007 AS score FROM impulse))
WHERE rn <= 3;
INSERT INTO first_per_key SELECT k, counter FROM (
  SELECT k, counter, ROW_NUMBER() OVER (PARTITION BY k ORDER BY counter) AS rn FROM (SELECT counter % 13 AS k, counter FROM impulse))
WHERE rn = 1;
`;
}

const outputs = (dir: string) => sinkOutputs(dir, SINKS, UPDATING);

for (const backend of ["memory", "disk"] as const) {
  describe(`kill -9 of every stateful operator, ${backend} backend`, () => {
    test("killed five times, then restored at another parallelism: every sink as an uninterrupted run", async () => {
      const ref = tempDir("runnel-state-crash-ref-");
      const r = await runCli(["run", writeSql(ref, pipeline(ref)), "--parallelism", "2", "--quiet"], { timeoutMs: 60_000 });
      expect(r.stderr).not.toContain("error");
      expect(r.code).toBe(0);
      const expected = outputs(ref);
      expect(expected.totals!.length).toBe(97);
      expect(expected.pairs!.length).toBeGreaterThan(1000);
      expect(expected.top_per_key!.length).toBe(33);
      expect(expected.first_per_key!.length).toBe(13);
      expect(expected.top_per_window!.length).toBeGreaterThan(0);

      const dir = tempDir("runnel-state-crash-");
      const sql = writeSql(dir, pipeline(dir));
      const args = (parallelism: number) => [
        "run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "150ms", "--parallelism", String(parallelism), "--quiet",
        "--state-backend", backend, "--state-cache", "64KB",
      ];
      // The first run is killed once it has a checkpoint (so the job's splits are fixed at parallelism 2); the
      // others at deterministic moments, some while a checkpoint's files are still being written.
      const first = startCli(args(2));
      await waitUntil("a first checkpoint", () => existsSync(join(dir, "state", "checkpoints")) && readdirSync(join(dir, "state", "checkpoints")).some((f) => f.endsWith(".json")), 30_000, 20);
      first.kill("SIGKILL");
      await first.exited;
      for (const delay of [450, 700, 520, 610]) {
        const proc = startCli(args(2));
        await Bun.sleep(delay);
        proc.kill("SIGKILL");
        await proc.exited;
      }
      const final = await runCli(args(3), { timeoutMs: 60_000 });
      expect(final.stderr).not.toContain("error");
      expect(final.code).toBe(0);
      const got = outputs(dir);
      for (const name of SINKS) expect([name, got[name]]).toEqual([name, expected[name]!]);
    });

    test("killed midway through writing a rebase (a full file replacing a chain of deltas), then restored: every sink as an uninterrupted run", async () => {
      const ref = tempDir("runnel-state-rebase-ref-");
      const r = await runCli(["run", writeSql(ref, pipeline(ref)), "--parallelism", "2", "--quiet"], { timeoutMs: 60_000 });
      expect(r.code).toBe(0);
      const expected = outputs(ref);

      const dir = tempDir("runnel-state-rebase-");
      // A third of the rate: on a loaded machine, checkpoints (taken one at a time) stretch, and at full rate the
      // input could end before a second rebase had started.
      const sql = writeSql(dir, pipeline(dir, 1000));
      const args = ["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "100ms", "--parallelism", "2", "--quiet", "--state-backend", backend, "--state-cache", "64KB"];
      // The updating aggregates rewrite their keys in every interval, so their stale records soon outnumber the
      // live ones and a table rebases; the process kills itself at the second chunk of the second rebase it writes.
      const crashed = await runCli(args, { timeoutMs: 60_000, env: { RUNNEL_CRASH_AT: "state-rebase-midway:2" } });
      expect(crashed.code).toBe(137);
      // Checkpoints completed before it (a rebase follows deltas): the rerun restores from the files the rebase was replacing.
      expect(readdirSync(join(dir, "state", "checkpoints")).filter((f) => f.endsWith(".json")).length).toBeGreaterThan(0);
      const final = await runCli(args, { timeoutMs: 60_000 });
      expect(final.stderr).not.toContain("error");
      expect(final.code).toBe(0);
      const got = outputs(dir);
      for (const name of SINKS) expect([name, got[name]]).toEqual([name, expected[name]!]);
    });
  });
}
