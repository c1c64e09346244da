/**
 * How jobs are driven: rescaling keeps keyed state; a restarted control plane
 * (even one killed with kill -9) finds its jobs again without losing or
 * duplicating them; two control planes on one PostgreSQL both serve and
 * stream, and exactly one drives each job, the other taking over when it goes.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { freePort, REPO, tempDir } from "../kit/cli.ts";
import { eventually, testControlPlane, workersOf, stoppedAfterAll, type TestControlPlane, CREATE_PIPELINE } from "../kit/control-plane.ts";
import { freshPostgresDatabase } from "../kit/services.ts";

setDefaultTimeout(150_000);

const started = stoppedAfterAll<TestControlPlane>();

async function create(cp: { gql: TestControlPlane["gql"] }, query: string, extra: Record<string, unknown> = {}) {
  const r = await cp.gql(CREATE_PIPELINE, { input: { name: "supervised", query, checkpointIntervalMicros: 300_000, ...extra } });
  if (r.createPipeline.__typename !== "PipelinePayload") throw new Error(JSON.stringify(r));
  return { pipelineId: r.createPipeline.pipeline.id as string, jobId: r.createPipeline.pipeline.jobs[0].id as string };
}


async function jobOf(cp: { gql: TestControlPlane["gql"] }, jobId: string) {
  return (await cp.gql(`{ job(id: "${jobId}") { state parallelism failureMessage events { toState reason } } }`)).job;
}

function collectOutput(cp: TestControlPlane, pipelineId: string, lines: string[]) {
  const it = cp.ws().iterate({ query: `subscription { pipelineOutput(pipelineId: "${pipelineId}") { lines } }` });
  void (async () => {
    for await (const r of it) lines.push(...(r.data as any).pipelineOutput.lines);
  })().catch(() => {});
  return it;
}

describe("rescaling", () => {
  test("a new parallelism takes a checkpoint and restarts with keyed state redistributed", async () => {
    const cp = await testControlPlane("pglite");
    started.push(cp);
    // 400 events from the first run's one impulse counter (which keeps its split across the rescale);
    // counts per key must add up to exactly those events, whatever the parallelism was when.
    const { pipelineId, jobId } = await create(
      cp,
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '400');
SELECT counter % 8 AS k, count(*) AS n FROM impulse GROUP BY k;`,
    );
    const lines: string[] = [];
    collectOutput(cp, pipelineId, lines);
    await eventually("running with output", async () => (await jobOf(cp, jobId)).state === "Running" && lines.length > 0);
    const r = await cp.gql(`mutation { updatePipeline(input: { id: "${pipelineId}", parallelism: 2 }) { __typename } }`);
    expect(r.updatePipeline.__typename).toBe("PipelinePayload");
    await eventually("Finished", async () => (await jobOf(cp, jobId)).state === "Finished", 60_000);
    const job = await jobOf(cp, jobId);
    expect(job.events.map((e: any) => e.toState)).toContain("Rescaling");
    expect(job.parallelism).toBe(2);
    expect(job.events.find((e: any) => e.reason.includes("parallelism 2")).reason).toContain("from checkpoint");
    await eventually("the last output", () => lines.length > 0 && Bun.sleep(500).then(() => true));
    // The latest value per key: 400 counters, 50 per key — none lost or counted twice across the rescale.
    const latest = new Map<number, number>();
    for (const l of lines) {
      const change = JSON.parse(l);
      if (change.after) latest.set(change.after.k, change.after.n);
      else if (change.op === "d") latest.delete(change.before.k);
    }
    expect([...latest.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const n of latest.values()) expect(n).toBe(50);
  });
});

describe("restarting the control plane", () => {
  test("kill -9 of the control plane: its worker stops, the next start restores the job once, output goes on without duplicates", async () => {
    const dataDir = tempDir("runnel-cp-restart-");
    const port = await freePort();
    const env = { ...process.env, PORT: String(port), RUNNEL_DATA_DIR: dataDir, RUNNEL_HEARTBEAT_MS: "200", RUNNEL_WORKER_LOGS: "0" };
    const startServer = () => Bun.spawn(["bun", join(REPO, "control-plane", "main.ts")], { env, stdout: "ignore", stderr: "pipe" });
    const api = {
      url: `http://127.0.0.1:${port}`,
      async gql(query: string, variables: Record<string, unknown> = {}) {
        const res = await fetch(`http://127.0.0.1:${port}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) });
        const body = (await res.json()) as any;
        if (body.errors) throw new Error(JSON.stringify(body.errors));
        return body.data;
      },
    };
    // A fresh PGlite data directory is created and migrated first: on a loaded machine that takes a while.
    const up = () => eventually("the control plane to answer", () => fetch(`${api.url}/api/v1/pipelines`).then((r) => r.ok, () => false), 90_000);

    let server = startServer();
    try {
      await up();
      const { pipelineId, jobId } = await create(api as any, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '200');\nSELECT counter FROM impulse;`);
      const readOutput = async (until: number) => {
        const { createClient } = await import("graphql-ws");
        const client = createClient({ url: `ws://127.0.0.1:${port}/graphql`, retryAttempts: 0 });
        const lines: string[] = [];
        const it = client.iterate({ query: `subscription { pipelineOutput(pipelineId: "${pipelineId}") { lines } }` });
        try {
          for await (const r of it) {
            lines.push(...(r.data as any).pipelineOutput.lines);
            if (lines.length >= until) break;
          }
        } finally {
          client.dispose();
        }
        return lines.map((l) => JSON.parse(l).counter as number);
      };
      const before = await readOutput(300);
      expect(workersOf(jobId).length).toBe(1);

      server.kill("SIGKILL");
      await server.exited;
      await eventually("the orphaned worker to stop", () => workersOf(jobId).length === 0, 10_000);

      server = startServer();
      await up();
      await eventually("the job running again", async () => (await jobOf(api, jobId)).state === "Running", 30_000);
      // Every counter published before the crash was committed; the restored job goes on from its checkpoint.
      const after = await readOutput(before.length + 600);
      const all = [...new Set([...before, ...after])].sort((a, b) => a - b);
      const seenAfter = after.filter((c) => c > Math.max(...before));
      expect(new Set(after).size).toBe(after.length);
      expect(seenAfter.length).toBeGreaterThan(100);
      expect(all[0]).toBe(0);
      expect(all.at(-1)! - all[0]! + 1).toBe(all.length); // no gap
      const jobs = await api.gql(`{ pipeline(id: "${pipelineId}") { jobs { id } } }`);
      expect(jobs.pipeline.jobs.length).toBe(1);
      expect(workersOf(jobId).length).toBe(1);
      const job = await jobOf(api, jobId);
      expect(job.events.some((e: any) => e.toState === "Recovering")).toBe(true);
    } finally {
      server.kill("SIGTERM");
      await server.exited;
    }
  });
});

describe("two control planes on one PostgreSQL", () => {
  test("both serve and stream; one drives each job; the other takes over when it stops", async () => {
    const databaseUrl = await freshPostgresDatabase();
    const a = await testControlPlane("postgres", {}, { databaseUrl });
    const b = await testControlPlane("postgres", {}, { databaseUrl });
    started.push(b);
    const { pipelineId, jobId } = await create(a, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100');\nSELECT counter FROM impulse;`);

    // B streams what A drives (events fan out through LISTEN/NOTIFY), current value first.
    const states: string[] = [];
    const it = b.sse().iterate({ query: `subscription { jobUpdates(pipelineId: "${pipelineId}") { job { state } } }` });
    void (async () => {
      for await (const r of it) states.push((r.data as any).jobUpdates.job.state);
    })().catch(() => {});
    await eventually("B to see Running", () => states.includes("Running"));
    const linesOnB: string[] = [];
    collectOutput(b, pipelineId, linesOnB);
    await eventually("output on B", () => linesOnB.length > 50);

    // Exactly one worker, driven by one of them, for a while.
    for (let i = 0; i < 5; i++) {
      expect(workersOf(jobId).length).toBe(1);
      await Bun.sleep(300);
    }
    const owner = a.supervisor.workerPid(jobId) ? a : b;
    const other = owner === a ? b : a;
    expect(other.supervisor.workerPid(jobId)).toBeUndefined();

    // B answers queries about it too.
    const viaB = await b.gql(`{ job(id: "${jobId}") { state } }`);
    expect(viaB.job.state).toBe("Running");

    // The owner goes away: the other claims the job when the lease runs out and restores it.
    await owner.stop();
    await eventually("the other control plane to drive the job", () => other.supervisor.workerPid(jobId) !== undefined, 20_000);
    await eventually("Running again", async () => (await jobOf(other, jobId)).state === "Running", 20_000);
    expect(workersOf(jobId).length).toBe(1);
    await other.gql(`mutation { stopPipeline(input: { id: "${pipelineId}", mode: immediate }) { __typename } }`);
    await eventually("Stopped", async () => (await jobOf(other, jobId)).state === "Stopped", 20_000);
    await it.return?.();
  });
});

describe("a job that keeps failing", () => {
  test("is restored with backoff up to the restart limit, then Failed with the reason", async () => {
    const cp = await testControlPlane("pglite", { maxRestarts: 2 });
    started.push(cp);
    const udf = await cp.gql(`mutation ($input: CreateUdfInput!) { createUdf(input: $input) { __typename } }`, {
      input: { name: "boom", definition: `export default { args: ["BIGINT"], returns: "BIGINT", fn: (x) => { if (x >= 20) throw new Error("boom at " + x); return x; } };` },
    });
    expect(udf.createUdf.__typename).toBe("UdfPayload");
    // No checkpoint before the failure: a completed one would refill the restart budget (progress after a restore).
    const { jobId } = await create(cp, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100');\nSELECT boom(counter) AS c FROM impulse;`, {
      udfs: ["boom"],
      checkpointIntervalMicros: 120_000_000,
    });
    const job = await eventually("Failed", async () => {
      const j = await jobOf(cp, jobId);
      return j.state === "Failed" ? j : undefined;
    }, 60_000);
    const states = job.events.map((e: any) => e.toState);
    expect(states.filter((s: string) => s === "Recovering").length).toBe(2);
    expect(states.slice(-2)).toEqual(["Failing", "Failed"]);
    expect(job.failureMessage).toContain("boom at 20");
    expect(job.events.at(-1).reason).toContain("gave up after 2 restarts");
    expect(workersOf(jobId).length).toBe(0);
  });
});

describe("restart", () => {
  test("restart keeps state through a checkpoint; restart with ignoreState starts from scratch", async () => {
    const cp = await testControlPlane("pglite");
    started.push(cp);
    const { pipelineId, jobId } = await create(cp, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '200');\nSELECT counter FROM impulse;`);
    const lines: string[] = [];
    collectOutput(cp, pipelineId, lines);
    await eventually("output", () => lines.length > 100);

    const restart = async (ignoreState: boolean) => {
      const r = await cp.gql(`mutation { restartPipeline(input: { id: "${pipelineId}", ignoreState: ${ignoreState} }) { __typename } }`);
      expect(r.restartPipeline.__typename).toBe("PipelinePayload");
      const mark = lines.length;
      await eventually("Restarting, then Running", async () => {
        const j = await jobOf(cp, jobId);
        const states = j.events.map((e: any) => e.toState);
        return states.filter((s: string) => s === "Restarting").length >= (ignoreState ? 2 : 1) && j.state === "Running" && lines.length > mark + 50;
      });
      return mark;
    };

    const mark = await restart(false);
    let counters = lines.map((l) => JSON.parse(l).counter as number);
    // Kept state: the counter goes on where it stopped, nothing twice.
    expect(new Set(counters).size).toBe(counters.length);
    expect(counters[mark]).toBe(counters[mark - 1]! + 1);

    const mark2 = await restart(true);
    const countersNow = () => lines.map((l) => JSON.parse(l).counter as number);
    await eventually("50 rows of the fresh run", () => {
      const c = countersNow();
      const zero = c.indexOf(0, mark2);
      return zero >= 0 && c.length >= zero + 50;
    });
    counters = countersNow();
    // From scratch: after the old run's last committed rows, the counter begins again at 0.
    const reset = counters.indexOf(0, mark2);
    expect(reset).toBeGreaterThanOrEqual(mark2);
    for (let i = 1; i < reset; i++) expect(counters[i]).toBe(counters[i - 1]! + 1);
    expect(counters.slice(reset, reset + 50)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const job = await jobOf(cp, jobId);
    expect(job.events.some((e: any) => e.reason.includes("ignoring state"))).toBe(true);
  });
});
