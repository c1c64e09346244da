/**
 * A worker that never acknowledges a barrier: its subtasks go on and its
 * heartbeats keep coming (so the watchdog sees nothing wrong), but no
 * checkpoint completes. Each times out after --checkpoint-timeout; once more
 * than the tolerated number have in a row, the job manager restores the whole
 * job from its last completed checkpoint, and the job finishes with the
 * output of an uninterrupted run.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { runCli, startJob, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { AGGREGATES, results } from "./aggregates.ts";
import { manifests, workerPids } from "./kill-worker.ts";

setDefaultTimeout(120_000);

test("a worker that stops acknowledging barriers: checkpoints time out, the job is restored and finishes with exact output", async () => {
  // Event times come from the counter (event_time_interval), not the clock: the reference may run unthrottled.
  const ref = tempDir("runnel-cluster-stall-ref-");
  expect((await runCli(["run", writeSql(ref, AGGREGATES(ref, 9000, 0)), "--parallelism", "2", "--workers", "1", "--quiet"])).code).toBe(0);

  const dir = tempDir("runnel-cluster-stall-");
  const state = join(dir, "state");
  const job = startJob(
    [writeSql(dir, AGGREGATES(dir, 9000, 1000)), "--parallelism", "2", "--workers", "2", "--state-dir", state, "--checkpoint-interval", "200ms", "--checkpoint-timeout", "1s", "--quiet"],
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
