/**
 * Issue 8, probes 4 and 6 (the supervisor): a pid recorded for a worker is
 * signalled only while it is still that worker, never a process that reused
 * it; job admission is bounded (RUNNEL_MAX_WORKERS), further jobs wait in
 * Scheduling; a worker that misses heartbeats while it visibly computes (a
 * busy machine, a slow UDF) is not killed, while a stopped one still is. On
 * PGlite and on PostgreSQL.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { BACKENDS, eventually, olderDatabase, testControlPlane, workersOf, stoppedAfterAll, type TestControlPlane, CREATE_PIPELINE } from "../../kit/control-plane.ts";

setDefaultTimeout(90_000);

const started = stoppedAfterAll<TestControlPlane>();

async function create(cp: TestControlPlane, query: string, udfs: string[] = []) {
  const r = await cp.gql(CREATE_PIPELINE, { input: { name: "sup", query, udfs, checkpointIntervalMicros: 500_000 } });
  if (r.createPipeline.__typename !== "PipelinePayload") throw new Error(r.createPipeline.message);
  return r.createPipeline.pipeline.jobs[0].id as string;
}

const jobOf = async (cp: TestControlPlane, id: string) =>
  (await cp.gql(`{ job(id: "${id}") { state restarts failureMessage events { toState reason } } }`)).job;

for (const backend of BACKENDS) {
  describe(`supervision on ${backend}`, () => {
    // One worker at a time, and a short heartbeat timeout.
    let shared: TestControlPlane | null = null;
    const bounded = async () => {
      if (!shared) started.push((shared = await testControlPlane(backend, { maxWorkers: 1, heartbeatTimeoutMs: 1500 })));
      return shared;
    };

    test("a recorded worker pid that now belongs to another process is left alone", async () => {
      // Not a worker: a process that got the pid after the worker it was recorded for.
      const bystander = Bun.spawn(["sleep", "120"]);
      const jobId = `job_reused_${backend}`;
      try {
        const older = await olderDatabase(backend, 99, async (sql) => {
          await sql(`INSERT INTO pipelines (id, name, query) VALUES ('pl_reused', 'reused', $1)`, [
            `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '50');\nSELECT counter FROM impulse;`,
          ]);
          await sql(`INSERT INTO jobs (id, pipeline_id, state, running_desired, parallelism, run_id, worker_pid) VALUES ($1, 'pl_reused', 'Running', true, 1, 1, $2)`, [
            jobId,
            bystander.pid,
          ]);
        });
        const cp = await testControlPlane(backend, {}, older);
        started.push(cp);
        await eventually("the job running again", async () => (await jobOf(cp, jobId)).state === "Running");
        expect(workersOf(jobId).length).toBe(1);
        expect(existsSync(`/proc/${bystander.pid}`)).toBe(true);
        expect(bystander.exitCode).toBeNull();
      } finally {
        bystander.kill();
      }
    });

    test("with RUNNEL_MAX_WORKERS=1 a second job waits in Scheduling until the first is done", async () => {
      const cp = await bounded();
      const query = (n: number) => `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '200', message_count = '${n}');\nSELECT counter FROM impulse;`;
      // The first runs 15 s, so the second is created (validated and stored, seconds on a loaded machine) while it runs.
      const first = await create(cp, query(3000));
      const second = await create(cp, query(1000));
      let most = 0;
      await eventually(
        "both jobs to finish",
        async () => {
          most = Math.max(most, workersOf(first).length + workersOf(second).length);
          const states = [(await jobOf(cp, first)).state, (await jobOf(cp, second)).state];
          return states.every((s) => s === "Finished");
        },
        60_000,
        50,
      );
      expect(most).toBe(1);
      // Whichever the supervisor started first, the other waited for its slot.
      const events = [...(await jobOf(cp, first)).events, ...(await jobOf(cp, second)).events];
      const waited = events.find((e: any) => e.toState === "Scheduling" && e.reason.startsWith("waiting for a worker slot"));
      expect(waited?.reason).toContain("(RUNNEL_MAX_WORKERS=1)");
    });

    test("a worker silent while it computes is given time; a stopped one is still replaced", async () => {
      const cp = await bounded();
      // One row keeps the worker's event loop (and so its heartbeats) busy for longer than the timeout.
      const busy = `export default { args: ["BIGINT"], returns: "BIGINT", fn: (x) => { if (x === 3) { const t = Date.now() + 2500; while (Date.now() < t) {} } return x; } };`;
      expect((await cp.gql(`mutation ($d: String!) { createUdf(input: { name: "slowly", definition: $d }) { __typename } }`, { d: busy })).createUdf.__typename).toBe("UdfPayload");
      const slow = await create(cp, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '50', message_count = '10');\nSELECT slowly(counter) AS c FROM impulse;`, ["slowly"]);
      await eventually("the busy job to finish", async () => (await jobOf(cp, slow)).state === "Finished", 60_000);
      const done = await jobOf(cp, slow);
      expect(done.restarts).toBe(0);
      expect(JSON.stringify(done.events)).not.toContain("no heartbeat");

      const hung = await create(cp, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '20');\nSELECT counter FROM impulse;`);
      await eventually("it runs", async () => (await jobOf(cp, hung)).state === "Running");
      const [pid] = workersOf(hung);
      process.kill(pid!, "SIGSTOP");
      await eventually("a new worker", () => workersOf(hung).some((p) => p !== pid), 30_000);
      expect(JSON.stringify((await jobOf(cp, hung)).events)).toContain("no heartbeat");
    });
  });
}
