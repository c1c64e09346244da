/**
 * The `kubernetes` scheduler against a fake Kubernetes API server run here
 * (fake-api.ts): what it creates, what it deletes, and how it tells that a
 * worker pod is gone. Objects it sends are validated against the Kubernetes
 * OpenAPI schemas (kubernetes-models).
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { Pod } from "kubernetes-models/v1/Pod";
import { Secret } from "kubernetes-models/v1/Secret";
import type { SchedulerContext, SchedulerDefinition, WorkerProcess, WorkerSpec } from "../../../core/plugin-api/index.ts";
import { createKubernetesScheduler, KUBERNETES_PERMISSIONS } from "../../../plugins/scheduler-kubernetes/index.ts";
import { jobKey } from "../../../plugins/scheduler-kubernetes/pod.ts";
import { eventually } from "../../kit/cli.ts";
import { FakeKubeApi, jobIdOf, type RecordedRequest } from "./fake-api.ts";

const api = new FakeKubeApi();
afterAll(() => api.stop());

const SECRET = "job-secret-0123456789abcdef";
const EPOCH = "1764600000000000";
/** The control plane's pod as the downward API describes it (192.0.2.0/24 is for documentation: nothing is sent there). */
const CONTROL_PLANE = { RUNNEL_POD_IP: "192.0.2.10", RUNNEL_POD_NAME: "runnel-control-plane-7d9f", RUNNEL_POD_UID: "cp-uid-1", RUNNEL_POD_NAMESPACE: "ns" };
const IMAGE = "registry.example/runnel:test";

let logs: string[] = [];
/** One scheduler per test, as one job manager process has one. */
let sch: SchedulerDefinition;
beforeEach(() => {
  logs = [];
  sch = scheduler();
});

function scheduler(env: Record<string, string> = {}) {
  return createKubernetesScheduler({ kubeConfig: () => api.kubeConfig(), env: { RUNNEL_KUBERNETES_IMAGE: IMAGE, ...CONTROL_PLANE, ...env } });
}

/** `stateDir` null: a job manager that does not pass it. */
function ctx(jobId: string, options: Record<string, unknown> = {}, stateDir: string | null = "s3://bucket/checkpoints/job"): SchedulerContext {
  const log = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m) };
  return { jobId, log, options, ...(stateDir === null ? {} : { stateDir }) } as SchedulerContext;
}

function spec(index: number, epoch = EPOCH): WorkerSpec {
  return {
    index,
    command: ["/usr/local/bin/bun", "/app/core/cluster/worker-main.ts"],
    env: {
      RUNNEL_MANAGER: "0.0.0.0:7100",
      RUNNEL_JOB_SECRET: SECRET,
      RUNNEL_EPOCH: epoch,
      RUNNEL_WORKER_INDEX: String(index),
      RUNNEL_WORKER_LISTEN: "127.0.0.1:0",
    },
  };
}

const posted = (resource: string, since = 0): RecordedRequest[] => api.requests.slice(since).filter((r) => r.method === "POST" && r.path.endsWith(`/${resource}`));

async function start(sch: SchedulerDefinition, jobId: string, index = 0, options: Record<string, unknown> = {}, epoch = EPOCH): Promise<WorkerProcess> {
  const proc = await sch.start(spec(index, epoch), ctx(jobId, options));
  expect(proc).not.toBeNull();
  return proc!;
}

const podName = (proc: WorkerProcess) => proc.name.replace(/^pod ns\//, "");

describe("the worker pod", () => {
  test("carries the worker's environment, its pod IP as listen address, and the job secret only by reference to a Secret", async () => {
    const since = api.requests.length;
    const proc = await start(sch, "job_PodSpec1", 0, { service_account: "runnel-worker", cpu_request: "500m", memory_limit: "2Gi", env_secret: "runnel-s3" });
    const [podPost] = posted("pods", since);
    const pod = podPost!.body;
    new Pod(pod).validate();
    expect(podPost!.path).toBe("/api/v1/namespaces/ns/pods");
    const container = pod.spec.containers[0];
    expect(container.image).toBe(IMAGE);
    expect(container.command).toEqual(["/usr/local/bin/bun", "/app/core/cluster/worker-main.ts"]);
    const env = Object.fromEntries(container.env.map((e: any) => [e.name, e]));
    expect(container.env[0]).toEqual({ name: "RUNNEL_POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
    expect(env.RUNNEL_WORKER_LISTEN.value).toBe("$(RUNNEL_POD_IP):6130");
    expect(env.RUNNEL_MANAGER.value).toBe("192.0.2.10:7100");
    expect(env.RUNNEL_EPOCH.value).toBe(EPOCH);
    expect(env.RUNNEL_WORKER_INDEX.value).toBe("0");
    const secretName = `runnel-${jobKey("job_PodSpec1")}`;
    expect(env.RUNNEL_JOB_SECRET).toEqual({ name: "RUNNEL_JOB_SECRET", valueFrom: { secretKeyRef: { name: secretName, key: "RUNNEL_JOB_SECRET" } } });
    expect(JSON.stringify(pod)).not.toContain(SECRET);
    expect(container.envFrom).toEqual([{ secretRef: { name: "runnel-s3" } }]);
    expect(container.ports).toEqual([{ name: "exchange", containerPort: 6130, protocol: "TCP" }]);
    expect(container.resources).toEqual({ requests: { cpu: "500m", memory: "512Mi" }, limits: { memory: "2Gi" } });
    expect(pod.spec.serviceAccountName).toBe("runnel-worker");
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(pod.spec.restartPolicy).toBe("Never");
    expect(pod.metadata.labels).toMatchObject({
      "app.kubernetes.io/name": "runnel",
      "app.kubernetes.io/component": "worker",
      "runnel.dev/job": jobKey("job_PodSpec1"),
      "runnel.dev/epoch": EPOCH,
      "runnel.dev/worker": "0",
    });
    expect(pod.metadata.annotations["runnel.dev/job-id"]).toBe("job_PodSpec1");
    expect(pod.metadata.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Pod", name: CONTROL_PLANE.RUNNEL_POD_NAME, uid: CONTROL_PLANE.RUNNEL_POD_UID }]);
    expect(proc.name).toBe(`pod ns/${pod.metadata.name}`);

    // The Secret it references exists before the pod and holds the job secret.
    const [secretPost] = posted("secrets", since);
    new Secret(secretPost!.body).validate();
    expect(api.requests.indexOf(secretPost!)).toBeLessThan(api.requests.indexOf(podPost!));
    expect(secretPost!.body.metadata.name).toBe(secretName);
    expect(secretPost!.body.stringData).toEqual({ RUNNEL_JOB_SECRET: SECRET });
    expect(secretPost!.body.metadata.labels["runnel.dev/job"]).toBe(jobKey("job_PodSpec1"));
    expect(Buffer.from(api.secrets().find((s) => s.metadata.name === secretName)!.data.RUNNEL_JOB_SECRET, "base64").toString()).toBe(SECRET);
    proc.kill();
  });

  test("the worker pods of one run share the run's Secret and differ by worker index", async () => {
    const since = api.requests.length;
    const a = await start(sch, "job_Shared", 0);
    const b = await start(sch, "job_Shared", 1);
    expect(posted("secrets", since)).toHaveLength(1);
    const pods = posted("pods", since).map((r) => r.body);
    expect(pods.map((p) => p.metadata.labels["runnel.dev/worker"])).toEqual(["0", "1"]);
    expect(new Set(pods.map((p) => p.metadata.name)).size).toBe(2);
    a.kill();
    b.kill();
  });

  test("options come from the job manager first, then RUNNEL_KUBERNETES_* variables, then defaults", async () => {
    const since = api.requests.length;
    const proc = await start(scheduler({ RUNNEL_KUBERNETES_MEMORY_REQUEST: "1Gi", RUNNEL_KUBERNETES_WORKER_PORT: "9" }), "job_Options", 0, { namespace: "ns", worker_port: "7000" });
    const pod = posted("pods", since)[0]!.body;
    new Pod(pod).validate();
    expect(pod.spec.containers[0].ports[0].containerPort).toBe(7000);
    expect(pod.spec.containers[0].resources).toEqual({ requests: { cpu: "1", memory: "1Gi" }, limits: { memory: "1Gi" } });
    proc.kill();
  });
});

describe("refusals", () => {
  test("a local state directory is refused, saying to use s3://", async () => {
    for (const dir of ["/var/lib/runnel/checkpoints", "file:///tmp/x"]) {
      const err = await Promise.resolve(scheduler().start(spec(0), ctx("job_Local", {}, dir))).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain("s3://");
      expect((err as Error).message).toContain(dir);
    }
    expect(api.pods().some((p) => jobIdOf(p) === "job_Local")).toBe(false);
  });

  test("a job manager that does not say where checkpoints live is refused", async () => {
    const err = await Promise.resolve(scheduler().start(spec(0), ctx("job_NoDir", {}, null))).catch((e: Error) => e);
    expect((err as Error).message).toContain("SchedulerContext.stateDir");
  });

  test("no image, an unknown option and a bad quantity are refused naming the option", async () => {
    const noImage = createKubernetesScheduler({ kubeConfig: () => api.kubeConfig(), env: CONTROL_PLANE });
    expect(((await Promise.resolve(noImage.start(spec(0), ctx("j"))).catch((e) => e)) as Error).message).toContain("RUNNEL_KUBERNETES_IMAGE");
    expect(((await Promise.resolve(scheduler().start(spec(0), ctx("j", { imagee: "x" }))).catch((e) => e)) as Error).message).toContain("unknown option 'imagee'");
    const quantity = (await Promise.resolve(scheduler().start(spec(0), ctx("j", { memory_limit: "lots" }))).catch((e) => e)) as Error;
    expect(quantity.message).toContain("memory_limit");
    expect(quantity.message).toContain("quantity");
  });

  test("a job manager on loopback is refused: pods could not reach it", async () => {
    const s = spec(0);
    s.env.RUNNEL_MANAGER = "127.0.0.1:7100";
    const err = (await Promise.resolve(scheduler().start(s, ctx("job_Loop"))).catch((e) => e)) as Error;
    expect(err.message).toContain("0.0.0.0");
  });

  test("a job manager on every interface with no known address of its own is refused", async () => {
    const noIp = createKubernetesScheduler({ kubeConfig: () => api.kubeConfig(), env: { RUNNEL_KUBERNETES_IMAGE: IMAGE } });
    const err = (await Promise.resolve(noIp.start(spec(0), ctx("job_NoIp"))).catch((e) => e)) as Error;
    expect(err.message).toContain("manager_host");
  });

  test("an API that forbids creating pods fails the start, naming the RBAC to apply", async () => {
    api.refuse.set("POST pods", { code: 403, message: 'pods is forbidden: User "system:serviceaccount:ns:runnel" cannot create resource "pods"' });
    try {
      const err = (await Promise.resolve(scheduler().start(spec(0), ctx("job_Forbidden"))).catch((e) => e)) as Error;
      expect(err.message).toContain("cannot create resource");
      expect(err.message).toContain("deploy/kubernetes");
    } finally {
      api.refuse.delete("POST pods");
    }
  });

  test("a server whose certificate the kubeconfig's CA did not sign is refused", async () => {
    const other = FakeKubeApi.otherCa();
    const s = createKubernetesScheduler({ kubeConfig: () => api.kubeConfig(other), env: { RUNNEL_KUBERNETES_IMAGE: IMAGE, ...CONTROL_PLANE } });
    const since = api.requests.length;
    const err = (await Promise.resolve(s.start(spec(0), ctx("job_WrongCa"))).catch((e) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(api.requests.length).toBe(since);
  });
});

describe("exit detection", () => {
  test("a pod that succeeds exits with 0, one that fails with its container's exit code", async () => {
    const ok = await start(sch, "job_Exit", 0);
    const bad = await start(sch, "job_Exit", 1);
    api.setPodStatus(podName(ok), { phase: "Running" });
    api.setPodStatus(podName(ok), { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 0 } } }] });
    api.setPodStatus(podName(bad), { phase: "Failed", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 3, reason: "Error" } } }] });
    expect(await ok.exited).toBe(0);
    expect(await bad.exited).toBe(3);
    expect(logs.join("\n")).toContain("failed (Error)");
    ok.kill();
    bad.kill();
  });

  test("an OOM-killed worker is reported with the option to raise", async () => {
    const proc = await start(sch, "job_Oom", 0);
    api.setPodStatus(podName(proc), { phase: "Failed", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 137, reason: "OOMKilled" } } }] });
    expect(await proc.exited).toBe(137);
    expect(logs.join("\n")).toContain("memory_limit");
    proc.kill();
  });

  test("a pod deleted by someone else exits with null", async () => {
    const proc = await start(sch, "job_Deleted", 0);
    api.deletePodBehindTheBack(podName(proc));
    expect(await proc.exited).toBeNull();
    proc.kill();
  });

  test("a pod whose image cannot be pulled exits at once, saying why", async () => {
    const proc = await start(sch, "job_Pull", 0);
    api.setPodStatus(podName(proc), { containerStatuses: [{ name: "worker", state: { waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "registry.example/runnel:test"' } } }] });
    expect(await proc.exited).toBeNull();
    expect(logs.join("\n")).toContain("ImagePullBackOff");
    proc.kill();
  });

  test("a pod that waits for a node is not failed, only reported", async () => {
    const proc = await start(sch, "job_Unschedulable", 0);
    api.setPodStatus(podName(proc), { conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available: 3 Insufficient cpu." }] });
    await eventually("the unschedulable warning", () => logs.some((l) => l.includes("Insufficient cpu")));
    api.setPodStatus(podName(proc), { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 0 } } }] });
    expect(await proc.exited).toBe(0);
    proc.kill();
  });

  test("a watch the server ends is resumed from the last version seen", async () => {
    const proc = await start(sch, "job_Resume", 0);
    await eventually("the watch to be open", () => api.watching(podName(proc)) > 0);
    api.setPodStatus(podName(proc), { phase: "Running" });
    const watches = () => api.requests.filter((r) => r.query.watch === "true" && r.query.fieldSelector === `metadata.name=${podName(proc)}`);
    const watchesBefore = watches().length;
    api.closeWatches();
    await eventually("a new watch", () => watches().length > watchesBefore);
    const resumed = watches().at(-1)!;
    expect(Number(resumed.query.resourceVersion)).toBe(Number(api.pod(podName(proc))!.metadata.resourceVersion));
    api.setPodStatus(podName(proc), { phase: "Failed", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 9 } } }] });
    expect(await proc.exited).toBe(9);
    proc.kill();
  });

  test("when the server has forgotten the version watched from, the pod is read afresh", async () => {
    const proc = await start(sch, "job_Expired", 0);
    await eventually("the watch to be open", () => api.watching(podName(proc)) > 0);
    // The pod ends while no watch is open and the history is compacted: only a fresh read can see it.
    api.compact();
    api.setPodStatus(podName(proc), { phase: "Succeeded", containerStatuses: [{ name: "worker", state: { terminated: { exitCode: 0 } } }] });
    expect(await proc.exited).toBe(0);
    expect(api.requests.some((r) => r.method === "GET" && r.query.fieldSelector === `metadata.name=${podName(proc)}` && r.query.watch === undefined)).toBe(true);
    proc.kill();
  });
});

describe("kill and cleanup", () => {
  test("kill deletes the pod, which then exits with null", async () => {
    const proc = await start(sch, "job_Kill", 0);
    const since = api.requests.length;
    proc.kill();
    proc.kill();
    expect(await proc.exited).toBeNull();
    const deletes = api.requests.slice(since).filter((r) => r.method === "DELETE" && r.path === `/api/v1/namespaces/ns/pods/${podName(proc)}`);
    expect(deletes).toHaveLength(1);
    expect(deletes[0]!.query.gracePeriodSeconds).toBe("1");
    expect(api.pod(podName(proc))).toBeUndefined();
  });

  test("once every pod of a run is killed, the run's Secret is deleted too, by its uid", async () => {
    const a = await start(sch, "job_Done", 0);
    const b = await start(sch, "job_Done", 1);
    const secretName = `runnel-${jobKey("job_Done")}`;
    const uid = api.secrets().find((s) => s.metadata.name === secretName)!.metadata.uid;
    a.kill();
    expect(api.secrets().some((s) => s.metadata.name === secretName)).toBe(true);
    b.kill();
    await eventually("the Secret to be deleted", () => !api.secrets().some((s) => s.metadata.name === secretName));
    const del = api.requests.find((r) => r.method === "DELETE" && r.path.endsWith(`/secrets/${secretName}`) && r.body?.preconditions);
    expect(del!.body.preconditions).toEqual({ uid });
  });

  test("a new run of a job removes the pods of earlier runs and replaces the Secret with the new job secret", async () => {
    const sch = scheduler();
    const first = await sch.start(spec(0, "1000"), ctx("job_Restore"));
    const leftover = podName(first!);
    // The earlier run's pods are never killed (a control plane that died): the next run must still remove them.
    const since = api.requests.length;
    const next = spec(0, "2000");
    next.env.RUNNEL_JOB_SECRET = "the-new-secret-of-run-2000";
    const second = await sch.start(next, ctx("job_Restore"));
    const sweep = api.requests.slice(since).find((r) => r.method === "DELETE" && r.path === "/api/v1/namespaces/ns/pods");
    expect(sweep!.query.labelSelector).toBe(`runnel.dev/job=${jobKey("job_Restore")},runnel.dev/epoch!=2000`);
    expect(api.pod(leftover)).toBeUndefined();
    expect(await first!.exited).toBeNull();
    expect(podName(second!)).not.toBe(leftover);
    const secret = api.secrets().find((s) => s.metadata.name === `runnel-${jobKey("job_Restore")}`)!;
    expect(Buffer.from(secret.data.RUNNEL_JOB_SECRET, "base64").toString()).toBe("the-new-secret-of-run-2000");
    // A late kill of the old run must not take the new run's Secret.
    first!.kill();
    second!.kill();
    await eventually("the new run's Secret to go with its last pod", () => !api.secrets().some((s) => s.metadata.name === `runnel-${jobKey("job_Restore")}`));
  });

  test("the old run's Secret deletion does not remove a newer run's Secret", async () => {
    const sch = scheduler();
    const old = await sch.start(spec(0, "3000"), ctx("job_Race"));
    const secretName = `runnel-${jobKey("job_Race")}`;
    const fresh = await sch.start(spec(0, "4000"), ctx("job_Race"));
    const newUid = api.secrets().find((s) => s.metadata.name === secretName)!.metadata.uid;
    old!.kill();
    await old!.exited;
    expect(api.secrets().find((s) => s.metadata.name === secretName)?.metadata.uid).toBe(newUid);
    fresh!.kill();
  });
});

test("every request the scheduler made here is one the Role in deploy/kubernetes allows", () => {
  const allowed = new Set(KUBERNETES_PERMISSIONS.flatMap((p) => p.verbs.map((v) => `${p.resource}:${v}`)));
  const used = new Set<string>();
  for (const r of api.requests) {
    const m = /^\/api\/v1\/namespaces\/[^/]+\/(\w+)(\/[^/]+)?$/.exec(r.path)!;
    const item = m[2] !== undefined;
    const verb =
      r.method === "POST" ? "create" : r.method === "DELETE" ? (item ? "delete" : "deletecollection") : r.method === "GET" ? (item ? "get" : r.query.watch === "true" ? "watch" : "list") : r.method.toLowerCase();
    used.add(`${m[1]}:${verb}`);
    expect(r.authorization).toBe("Bearer fake-token-for-tests");
  }
  for (const u of used) expect(allowed).toContain(u);
});
