/**
 * A control plane that loses its database stops its job workers before its
 * leases run out, so the control plane that takes the jobs over never runs a
 * job alongside an old worker; when the database is back it does not start
 * them again (they are the other's now). Runs after the other test files, by
 * itself (@runs-alone): its cut-off control plane may linger a while.
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { eventually, testControlPlane, workersOf, type TestControlPlane, CREATE_PIPELINE } from "../../kit/control-plane.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";
import { tcpProxy, type TcpProxy } from "../../kit/tcp-proxy.ts";

setDefaultTimeout(120_000);
const started: TestControlPlane[] = [];
let proxy: TcpProxy | null = null;
// Bounded: a control plane that was cut off may take long to let go of its pool.
const within = (p: Promise<unknown>, ms: number) => Promise.race([p.catch(() => {}), Bun.sleep(ms)]);
afterAll(async () => {
  for (const cp of started) await within(cp.stop(), 15_000);
  if (proxy) await within(proxy.close(), 5_000);
}, 60_000);

test("cut off from PostgreSQL for longer than its lease, a control plane kills its workers; another takes the job over, never two at once", async () => {
  const databaseUrl = await freshPostgresDatabase();
  const direct = new URL(databaseUrl);
  proxy = await tcpProxy(direct.hostname, Number(direct.port));
  const viaProxy = new URL(databaseUrl);
  viaProxy.port = String(proxy.port);

  const first = await testControlPlane("postgres", { leaseMs: 2000, instanceId: "first" }, { databaseUrl: viaProxy.toString() });
  started.push(first);
  const r = await first.gql(CREATE_PIPELINE, {
    input: {
      name: "leased",
      query: "CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '200');\nCREATE TABLE out WITH (connector = 'blackhole', type = 'sink');\nINSERT INTO out SELECT counter FROM impulse;",
      checkpointIntervalMicros: 300_000,
    },
  });
  const jobId = r.createPipeline.pipeline.jobs[0].id as string;
  await eventually("the job running on the first control plane", async () => (await first.gql(`{ job(id: "${jobId}") { state } }`)).job.state === "Running");
  const [oldWorker] = workersOf(jobId);
  expect(oldWorker).toBeGreaterThan(0);

  // From here on, never two workers of the job at once.
  let most = 0;
  const sampler = setInterval(() => (most = Math.max(most, workersOf(jobId).length)), 20);
  try {
    proxy!.cut();
    await eventually("the first control plane to kill its worker", () => workersOf(jobId).length === 0, 30_000);

    // A second control plane on the same database (reached directly) claims the job once the lease has run out.
    const second = await testControlPlane("postgres", { leaseMs: 2000, instanceId: "second" }, { databaseUrl });
    started.push(second);
    const [newWorker] = await eventually("a worker started by the second control plane", () => (workersOf(jobId).length === 1 ? workersOf(jobId) : false), 60_000);
    await eventually("the job running on the second control plane", async () => (await second.gql(`{ job(id: "${jobId}") { state } }`)).job.state === "Running", 60_000);
    expect(newWorker).not.toBe(oldWorker);

    // The first one gets its database back: it serves again, and leaves the job to the second.
    proxy!.restore();
    await eventually("the first control plane to answer from the database again", async () => {
      try {
        return (await first.gql(`{ job(id: "${jobId}") { state } }`)).job.state === "Running";
      } catch {
        return false;
      }
    }, 60_000);
    // An observation window of several of its ticks (250 ms each): the sampler would see a second worker.
    await Bun.sleep(2000);
    expect(workersOf(jobId)).toEqual([newWorker!]);
  } finally {
    clearInterval(sampler);
    // A failed run must not leave the first control plane cut off: stopping it would wait on its database.
    proxy!.restore();
  }
  expect(most).toBe(1);
});
