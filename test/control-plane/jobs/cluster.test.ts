/**
 * A control-plane job at parallelism 2 runs in two worker processes (on this
 * 2-core machine), placed by the process scheduler: GraphQL and REST say where
 * each subtask runs, /metrics breaks the figures down by worker, and kill -9 of
 * one worker restores the whole job from its last checkpoint with exact results.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, fileRoot, testControlPlane, stoppedAfterAll, type TestControlPlane, CREATE_PIPELINE } from "../../kit/control-plane.ts";

setDefaultTimeout(120_000);
const started = stoppedAfterAll<TestControlPlane>();

test("two worker processes: placement in GraphQL and REST, per-worker /metrics, kill -9 of one restores with exact counts", async () => {
  const cp = await testControlPlane("pglite", { jobWorkers: 2, scheduler: "process" });
  started.push(cp);
  const out = join(fileRoot(cp), "cluster-out.jsonl");
  const r = await cp.gql(CREATE_PIPELINE, {
    input: {
      name: "spread",
      parallelism: 2,
      checkpointIntervalMicros: 300_000,
      query: `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '300', message_count = '3000');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out SELECT counter % 8 AS k, count(*) AS n, tumble(interval '1 second') AS w FROM impulse GROUP BY k, w;`,
    },
  });
  const jobId = r.createPipeline.pipeline.jobs[0].id as string;
  const placementOf = async () => (await cp.gql(`{ job(id: "${jobId}") { state placement { task worker host pid } } }`)).job;
  const running = await eventually("running in two processes", async () => {
    const j = await placementOf();
    return j.state === "Running" && j.placement && new Set(j.placement.map((p: any) => p.pid)).size === 2 ? j : false;
  });
  const workers = new Map<number, number>(running.placement.map((p: any) => [p.worker, p.pid]));
  expect([...workers.keys()].sort()).toEqual([0, 1]);
  expect(running.placement.every((p: any) => /^stage-\d+\/\d+$/.test(p.task) && p.host.length > 0)).toBe(true);

  const rest = (await (await fetch(`${cp.url}/api/v1/jobs/${jobId}`)).json()) as any;
  expect(rest.placement).toEqual(running.placement);

  const metricsText = await eventually("per-worker metrics", async () => {
    const text = await (await fetch(`${cp.url}/metrics`)).text();
    return text.includes(`worker="1"`) && text.includes("runnel_worker_subtasks") ? text : false;
  });
  expect(metricsText).toMatch(new RegExp(`runnel_worker_subtasks\\{job_id="${jobId}",[^}]*worker="1"[^}]*pid="${workers.get(1)}"`));

  // Once a checkpoint is in, kill one worker: the job's manager restores the whole job on new processes.
  await eventually("a checkpoint", async () => (await cp.gql(`{ job(id: "${jobId}") { checkpoints { checkpointId } } }`)).job.checkpoints.length > 0);
  process.kill(workers.get(1)!, "SIGKILL");
  await eventually("new worker processes", async () => {
    const j = await placementOf();
    return j.placement && !j.placement.some((p: any) => p.pid === workers.get(1)) ? true : false;
  });
  await eventually("Finished", async () => (await placementOf()).state === "Finished", 90_000);

  // Every event counted once: two counters (one per source subtask) to 3000, 750 per key, whatever the windows.
  const perKey = new Map<number, number>();
  for (const line of readFileSync(out, "utf8").split("\n").filter(Boolean)) {
    const row = JSON.parse(line);
    perKey.set(row.k, (perKey.get(row.k) ?? 0) + row.n);
  }
  expect([...perKey.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  for (const n of perKey.values()) expect(n).toBe(750);
  expect((await placementOf()).placement).toBeNull();
});
