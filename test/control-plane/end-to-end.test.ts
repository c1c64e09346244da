/**
 * The control plane end to end over real HTTP, on PGlite and on PostgreSQL:
 * create a pipeline through GraphQL, watch it reach Running over a graphql-sse
 * subscription, read its output over graphql-ws, kill -9 its worker and watch
 * it recover, stop it with a checkpoint, start it again, and check that every
 * output row arrived exactly once.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { BACKENDS, eventually, testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";

setDefaultTimeout(120_000);

const ROWS = 800;
const QUERY = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '${ROWS}');
SELECT counter FROM impulse;`;

const JOB_FIELDS = "id state runningDesired runId restarts failureMessage";

for (const backend of BACKENDS) {
  describe(`end to end on ${backend}`, () => {
    let cp: TestControlPlane;
    afterAll(async () => cp?.stop());

    test("create, watch, read, kill -9, recover, stop, start: every row exactly once", async () => {
      cp = await testControlPlane(backend);
      const created = await cp.gql(
        `mutation ($input: CreatePipelineInput!) {
          createPipeline(input: $input) {
            __typename
            ... on PipelinePayload { pipeline { id name stop jobs { id state } } }
            ... on UserError { message }
          }
        }`,
        { input: { name: "e2e", query: QUERY, parallelism: 1, checkpointIntervalMicros: 300_000 } },
      );
      expect(created.createPipeline.__typename).toBe("PipelinePayload");
      const pipelineId: string = created.createPipeline.pipeline.id;
      const jobId: string = created.createPipeline.pipeline.jobs[0].id;
      expect(pipelineId).toMatch(/^pl_[A-Za-z0-9]{10}$/);
      expect(jobId).toMatch(/^job_[A-Za-z0-9]{10}$/);

      // Every state the job passes through, over server-sent events.
      const states: string[] = [];
      const watcher = cp.sse().iterate({ query: `subscription { jobUpdates(pipelineId: "${pipelineId}") { job { ${JOB_FIELDS} } reason } }` });
      void (async () => {
        for await (const r of watcher) if (r.data) states.push((r.data as any).jobUpdates.job.state);
      })().catch(() => {});

      // Output rows over WebSocket.
      const lines: string[] = [];
      const output = cp.ws().iterate({ query: `subscription { pipelineOutput(pipelineId: "${pipelineId}") { lines } }` });
      const reading = (async () => {
        for await (const r of output) {
          if (r.errors) throw new Error(JSON.stringify(r.errors));
          lines.push(...(r.data as any).pipelineOutput.lines);
        }
      })();

      await eventually("the job to run", () => states.includes("Running"));
      await eventually("output rows", () => lines.length >= 100);

      // Per-operator metrics over a subscription, throttled to the interval asked for.
      const metricTimes: number[] = [];
      const metricsIt = cp.ws().iterate({ query: `subscription { jobMetrics(jobId: "${jobId}", intervalMs: 400) { at operators { operatorName subtaskIndex recordsIn recordsOut } } }` });
      for await (const r of metricsIt) {
        const m = (r.data as any).jobMetrics;
        expect(m.operators.some((o: any) => o.operatorName.includes("impulse") && o.recordsOut > 0)).toBe(true);
        metricTimes.push(Date.now());
        if (metricTimes.length === 3) break;
      }
      expect(metricTimes[2]! - metricTimes[1]!).toBeGreaterThanOrEqual(350);

      // Metrics while it runs.
      const metricsText = await eventually("metrics of the job", async () => {
        const text = await (await fetch(`${cp.url}/metrics`)).text();
        return text.includes(jobId) ? text : undefined;
      });
      expect(metricsText).toMatch(new RegExp(`runnel_operator_messages_in_total\\{job_id="${jobId}"[^}]*\\} \\d+`));

      // kill -9 the worker: the supervisor notices and restores from the last checkpoint.
      const pid = cp.supervisor.workerPid(jobId)!;
      expect(pid).toBeGreaterThan(0);
      process.kill(pid, "SIGKILL");
      await eventually("Recovering", () => states.includes("Recovering"));
      await eventually("Running again", () => states.lastIndexOf("Running") > states.indexOf("Recovering"));
      const job = await cp.gql(`{ job(id: "${jobId}") { restarts failureMessage events { toState reason } checkpoints { checkpointId } } }`);
      expect(job.job.events.map((e: any) => e.toState)).toContain("Recovering");
      expect(job.job.events.find((e: any) => e.toState === "Recovering").reason).toContain("SIGKILL");
      expect(job.job.checkpoints.length).toBeGreaterThan(0);

      // Stop with a checkpoint, then start again.
      const stopped = await cp.gql(`mutation { stopPipeline(input: { id: "${pipelineId}", mode: checkpoint }) { __typename ... on PipelinePayload { pipeline { stop } } } }`);
      expect(stopped.stopPipeline.pipeline.stop).toBe("checkpoint");
      await eventually("Stopped", () => states.at(-1) === "Stopped");
      const linesWhenStopped = lines.length;
      expect(linesWhenStopped).toBeLessThan(ROWS);
      await cp.gql(`mutation { startPipeline(input: { id: "${pipelineId}" }) { __typename } }`);
      await eventually("Finished", () => states.at(-1) === "Finished", 60_000);
      await eventually(`${ROWS} rows`, () => lines.length >= ROWS, 10_000).catch(() => {});

      const counters = lines.map((l) => JSON.parse(l).counter as number);
      const distinct = new Set(counters);
      expect(distinct.size).toBe(counters.length); // nothing duplicated
      expect(counters.length).toBe(ROWS); // nothing lost
      expect(Math.min(...counters)).toBe(0);
      expect(Math.max(...counters)).toBe(ROWS - 1);
      expect(states).toContain("CheckpointStopping");
      await output.return?.();
      await watcher.return?.();
      await reading.catch(() => {});
    });
  });
}
