/**
 * A real job manager running a job on worker "pods": the `kubernetes`
 * scheduler creates them on the fake API server, and the fake kubelet runs
 * each as a worker process with exactly the environment its pod spec gives
 * (pod IP on its own loopback address, the job secret from the Secret, the S3
 * settings from env_secret), checkpoints on the S3 emulator. So the pod spec
 * is shown to make a working worker, not only a valid object. The job manager
 * is handed the job's state location (SchedulerContext.stateDir), which it
 * does not pass yet: see README, "Kubernetes".
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { JobManager } from "../../../core/cluster/manager.ts";
import type { SchedulerDefinition } from "../../../core/plugin-api/index.ts";
import { createRegistry } from "../../../core/registry/loader.ts";
import { planSql } from "../../../core/sql/index.ts";
import { createKubernetesScheduler } from "../../../plugins/scheduler-kubernetes/index.ts";
import { eventually, REPO } from "../../kit/cli.ts";
import { dropBuckets, freshBucket, S3_ENDPOINT, S3_KEY, S3_SECRET, s3Client } from "../../kit/s3.ts";
import { FakeKubeApi, jobIdOf } from "./fake-api.ts";
import { FakeKubelet } from "./fake-kubelet.ts";

const api = new FakeKubeApi();
const kubelet = new FakeKubelet(api, { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" }, REPO);
const s3 = s3Client();
const S3_ENV = { AWS_ENDPOINT_URL_S3: S3_ENDPOINT, AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET, AWS_REGION: "us-east-1" };
let bucket: string;

beforeAll(async () => {
  bucket = await freshBucket(s3, "runnel-k8s");
  // The job manager writes checkpoint manifests from this process; the pods get the same settings from a Secret.
  Object.assign(process.env, S3_ENV);
  api.putSecret("runnel-s3", S3_ENV);
});
afterAll(async () => {
  kubelet.stop();
  api.stop();
  await dropBuckets(s3);
});

/** The kubernetes scheduler, handed the job's state location as the job manager would with the suggested SchedulerContext.stateDir. */
function scheduler(stateDir: string): SchedulerDefinition {
  const k8s = createKubernetesScheduler({
    kubeConfig: () => api.kubeConfig(),
    // What the control plane's Deployment gives it; its pod IP is this machine's loopback.
    env: { RUNNEL_KUBERNETES_IMAGE: "registry.example/runnel:test", RUNNEL_KUBERNETES_ENV_SECRET: "runnel-s3", RUNNEL_POD_IP: "127.0.0.1" },
  });
  return { ...k8s, start: (spec, ctx) => k8s.start(spec, { ...ctx, stateDir } as typeof ctx) };
}

async function freePort(): Promise<number> {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function runJob(jobId: string, sql: string, during?: (manager: JobManager) => Promise<void>) {
  const registry = await createRegistry(REPO);
  const stateDir = `s3://${bucket}/checkpoints/${jobId}`;
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m) };
  const manager = new JobManager(planSql(sql, registry), registry, { parallelism: 2, stateDir, checkpointIntervalMs: 300, jobId, log }, {
    sql,
    workers: 2,
    scheduler: scheduler(stateDir),
    schedulerOptions: { worker_port: String(await freePort()) },
    // Every interface, as in a pod; the scheduler gives pods the control plane's pod IP (here 127.0.0.1).
    listen: "0.0.0.0:0",
    workerCommand: [process.execPath, join(REPO, "core", "cluster", "worker-main.ts")],
    maxRestarts: 2,
  });
  const running = manager.run();
  await during?.(manager);
  await running;
  return { manager, logs };
}

const jsonRows = (text: string) => text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
const WINDOWED = (rate: number, count: number) =>
  `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '${rate}', message_count = '${count}', event_time_interval = '1ms', start_time = '2024-01-01T00:00:00Z');
   SELECT tumble(INTERVAL '1' SECOND) AS window, subtask_index, count(*) AS n FROM impulse GROUP BY window, subtask_index;`;

test("a job runs on two worker pods that reach the job manager and each other, and its pods and Secret are removed when it finishes", async () => {
  const { manager } = await runJob("job_E2eFinish", WINDOWED(1_000_000, 2000));
  const pods = api.requests.filter((r) => r.method === "POST" && r.path.endsWith("/pods")).map((r) => r.body.metadata.name as string);
  expect(pods).toHaveLength(2);
  // Each worker listened on its own pod IP, the address its peer connected to for the shuffle.
  expect(pods.map((p) => kubelet.envs.get(p)!.RUNNEL_WORKER_LISTEN)).toEqual([expect.stringMatching(/^127\.0\.0\.\d+:\d+$/), expect.stringMatching(/^127\.0\.0\.\d+:\d+$/)]);
  expect(new Set(pods.map((p) => kubelet.envs.get(p)!.RUNNEL_WORKER_LISTEN)).size).toBe(2);
  expect(manager.placement.length).toBeGreaterThan(0);
  // 2000 events per source subtask, 1 ms apart from 00:00:00: two one-second windows of 1000 each.
  const rows = jsonRows(pods.map((p) => kubelet.logs.get(p) ?? "").join("\n"));
  expect(rows.map((r) => `${r.window.start} ${r.subtask_index} ${r.n}`).sort()).toEqual([
    "2024-01-01T00:00:00Z 0 1000",
    "2024-01-01T00:00:00Z 1 1000",
    "2024-01-01T00:00:01Z 0 1000",
    "2024-01-01T00:00:01Z 1 1000",
  ]);
  await eventually("the pods to be deleted", () => api.pods().every((p) => !pods.includes(p.metadata.name)));
  await eventually("the job's Secret to be deleted", () => !api.secrets().some((s) => jobIdOf(s) === "job_E2eFinish"));
}, 60_000);

const created = () => api.requests.filter((r) => r.method === "POST" && r.path.endsWith("/pods") && r.body.metadata.annotations["runnel.dev/job-id"] === "job_E2eRestore").map((r) => r.body);

test("a worker pod whose node dies makes the job restore from its checkpoint on new pods, and the old pods are removed", async () => {
  let killed = "";
  const { manager, logs } = await runJob("job_E2eRestore", WINDOWED(4000, 8000), async (m) => {
    await eventually("a completed checkpoint", () => m.lastCheckpoint ?? undefined, 30_000);
    killed = api.pods().find((p) => jobIdOf(p) === "job_E2eRestore" && p.status?.phase === "Running")!.metadata.name;
    kubelet.crash(killed);
  });
  expect(manager.restarts).toBe(1);
  expect(manager.restoredCheckpoint).not.toBeNull();
  // The job manager may see the dead worker's connection drop before its pod's phase: either way it restores.
  expect(logs.join("\n")).toContain("restoring the job from its last checkpoint");
  expect(created().some((p) => p.metadata.name === killed)).toBe(true);
  expect(created()).toHaveLength(4);
  expect(new Set(created().map((p) => p.metadata.labels["runnel.dev/epoch"])).size).toBe(2);
  await eventually("every pod of the job to be deleted", () => !api.pods().some((p) => jobIdOf(p) === "job_E2eRestore"));
  // 8000 events per subtask, 1 ms apart: eight full windows per subtask, each counted once whatever ran twice.
  const rows = jsonRows(created().map((p) => kubelet.logs.get(p.metadata.name) ?? "").join("\n"));
  const windows = new Map<string, number>();
  for (const r of rows) windows.set(`${r.window.start} ${r.subtask_index}`, r.n);
  expect(windows.size).toBe(16);
  expect([...windows.values()].every((n) => n === 1000)).toBe(true);
}, 90_000);
