/**
 * A worker that never acknowledges a barrier: its subtasks go on and its
 * heartbeats keep coming (so the watchdog sees nothing wrong), but no
 * checkpoint completes. Each times out after --checkpoint-timeout; once more
 * than the tolerated number have in a row, the job manager restores the whole
 * job from its last completed checkpoint, and the job finishes with the
 * output of an uninterrupted run.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startJob, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { foldChanges, normalizeRows } from "../../kit/rows.ts";
import { manifests, workerPids } from "./kill-worker.ts";

setDefaultTimeout(120_000);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);

const PIPELINE = (dir: string, rate: number) => `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '${rate}', message_count = '9000', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
CREATE TABLE totals WITH (connector = 'single_file', path = '${join(dir, "totals.jsonl")}', format = 'debezium_json', type = 'sink', overwrite = 'true');
CREATE TABLE windows WITH (connector = 'single_file', path = '${join(dir, "windows.jsonl")}', format = 'json', type = 'sink', overwrite = 'true');
INSERT INTO totals SELECT counter % 13 AS k, count(*) AS n, sum(counter) AS total FROM impulse GROUP BY k;
INSERT INTO windows SELECT window.start AS ws, k, n FROM (
  SELECT tumble(INTERVAL '1' SECOND) AS window, counter % 5 AS k, count(*) AS n FROM impulse GROUP BY window, k);
`;

const results = (dir: string) => ({ totals: normalizeRows(foldChanges(lines(join(dir, "totals.jsonl")))), windows: normalizeRows(lines(join(dir, "windows.jsonl"))) });

test("a worker that stops acknowledging barriers: checkpoints time out, the job is restored and finishes with exact output", async () => {
  // Event times come from the counter (event_time_interval), not the clock: the reference may run unthrottled.
  const ref = tempDir("runnel-cluster-stall-ref-");
  expect((await runCli(["run", writeSql(ref, PIPELINE(ref, 0)), "--parallelism", "2", "--workers", "1", "--quiet"])).code).toBe(0);

  const dir = tempDir("runnel-cluster-stall-");
  const state = join(dir, "state");
  const job = startJob(
    [writeSql(dir, PIPELINE(dir, 1000)), "--parallelism", "2", "--workers", "2", "--state-dir", state, "--checkpoint-interval", "200ms", "--checkpoint-timeout", "1s", "--quiet"],
    { RUNNEL_DEBUG_STALL_ON_SIGUSR2: "1" },
  );
  await waitUntil("a first checkpoint", () => manifests(state).size > 0, 60_000, 50);
  const stalled = workerPids(job.proc.pid)[1]!;
  process.kill(stalled, "SIGUSR2");
  const code = await job.proc.exited;
  const stderr = job.stderr();
  expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
  expect(stderr).toMatch(/checkpoint \d+ timed out after 1000 ms waiting for the barrier at/);
  expect(stderr).toContain("restoring the job from its last checkpoint (restore 1 of");
  expect(results(dir)).toEqual(results(ref));
  expect(results(ref).totals.length).toBe(13);
});
