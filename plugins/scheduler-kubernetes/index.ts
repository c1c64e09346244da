/**
 * `kubernetes`: a job's workers as pods, one per worker, started through the
 * Kubernetes API. The job's secret reaches the pods through a Secret they
 * reference; each pod listens on its pod IP so its peers can reach it; a pod
 * that ends, fails to start or is deleted is reported as an exited worker, and
 * killing a worker deletes its pod. A new run of a job first removes every pod
 * left from its earlier runs. Checkpoints must be on S3: pods keep no disk
 * across a restore.
 */
import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import { definePlugin, defineScheduler, type PluginLogger, type SchedulerContext, type SchedulerDefinition, type WorkerProcess, type WorkerSpec } from "../../core/plugin-api/index.ts";
import type { KubeApi } from "./client.ts";
import { kubernetesSchedulerOptions, parseOptions, podIdentity, requireSharedCheckpoints, settingsFrom } from "./options.ts";
import { CONTAINER, LABEL, isSecretEnv, jobSecret, jobSecretName, jobSelector, workerPod, workerPodName, type KubernetesSettings } from "./pod.ts";

export { kubernetesSchedulerOptions } from "./options.ts";

/** What the scheduler may ask of the Kubernetes API; deploy/kubernetes grants exactly this, and a test reads client.ts to check it. */
export const KUBERNETES_PERMISSIONS = [
  { resource: "pods", verbs: ["create", "delete", "deletecollection", "list", "watch"] },
  { resource: "secrets", verbs: ["create", "delete"] },
] as const;

/** Container states that will not get better by waiting: the worker is reported gone at once. */
const CANNOT_START = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull"]);

type Context = SchedulerContext;

interface Run {
  epoch: string;
  /** Resolves with the uid of this run's Secret once old pods are gone and it exists. */
  ready: Promise<string>;
  pods: Set<string>;
  killed: Set<string>;
}

export interface KubernetesSchedulerConfig {
  /** Where the cluster is (default: $KUBECONFIG, ~/.kube/config, or in-cluster). */
  kubeConfig?: () => KubeConfig;
  /** The environment options and the pod identity are read from (default: process.env). */
  env?: Record<string, string | undefined>;
}

/** The API server's answer to a failed call had this HTTP status. */
const answered = (err: unknown, ...codes: number[]) => codes.includes((err as { status?: unknown } | null)?.status as number);

export function createKubernetesScheduler(config: KubernetesSchedulerConfig = {}): SchedulerDefinition {
  // The client is loaded on first use: it takes a third of a second to import, which every worker process and CLI run would pay.
  let api: Promise<KubeApi> | null = null;
  const connect = () =>
    (api ??= import("./client.ts").then(({ KubeApi, defaultKubeConfig }) => new KubeApi((config.kubeConfig ?? defaultKubeConfig)())));
  const env = () => config.env ?? process.env;
  const runs = new Map<string, Run>();

  /** Options, namespace and checkpoint location checked before anything is created. */
  const settingsFor = async (ctx: Context) => {
    const options = parseOptions(ctx.options, env());
    requireSharedCheckpoints(ctx.stateDir);
    const self = podIdentity(env());
    const namespace = options.namespace ?? (await connect()).contextNamespace ?? "default";
    return { settings: settingsFrom(options, namespace, self), managerHost: options.manager_host ?? self.ip };
  };

  /** A new run of a job: pods of earlier runs go, and the Secret is made anew with this run's secret. */
  const prepare = async (ctx: Context, spec: WorkerSpec, settings: KubernetesSettings): Promise<string> => {
    const k = await connect();
    const ns = settings.namespace;
    await k.deletePods(ns, `${jobSelector(ctx.jobId)},${LABEL.epoch}!=${spec.env.RUNNEL_EPOCH ?? "0"}`).catch((err) => failed(err, `remove the pods of earlier runs of job ${ctx.jobId}`, ns));
    await k.deleteSecret(ns, jobSecretName(ctx.jobId)).catch((err) => {
      if (!answered(err, 404)) failed(err, `replace the Secret ${jobSecretName(ctx.jobId)}`, ns);
    });
    const secrets = Object.fromEntries(Object.entries(spec.env).filter(([name]) => isSecretEnv(name)));
    const created = await k.createSecret(ns, jobSecret(ctx.jobId, secrets, settings)).catch((err) => failed(err, `create the Secret ${jobSecretName(ctx.jobId)}`, ns));
    return created.metadata?.uid ?? "";
  };

  return defineScheduler({
    name: "kubernetes",
    description: "Workers as Kubernetes pods, one per worker, with checkpoints on S3",
    async start(spec, rawCtx) {
      const ctx = rawCtx as Context;
      const { settings, managerHost } = await settingsFor(ctx);
      const manager = managerAddress(spec.env.RUNNEL_MANAGER, managerHost);
      const epoch = spec.env.RUNNEL_EPOCH ?? "0";
      let run = runs.get(ctx.jobId);
      if (!run || run.epoch !== epoch) {
        run = { epoch, ready: prepare(ctx, spec, settings), pods: new Set(), killed: new Set() };
        runs.set(ctx.jobId, run);
      }
      const secretUid = await run.ready;
      const body = workerPod(ctx.jobId, spec, manager, settings);
      const k = await connect();
      const created = await k.createPod(settings.namespace, body).catch((err) => failed(err, `create the worker pod ${body.metadata!.name}`, settings.namespace));
      const name = created.metadata?.name ?? workerPodName(ctx.jobId, epoch, spec.index);
      run.pods.add(name);
      const watcher = watchPod(k, settings.namespace, name, created.metadata?.resourceVersion, ctx.log);
      const thisRun = run;
      let deleting: Promise<void> | null = null;
      const handle: WorkerProcess = {
        name: `pod ${settings.namespace}/${name}`,
        exited: watcher.exited,
        kill() {
          deleting ??= k
            .deletePod(settings.namespace, name)
            .then(
              () => {},
              (err) => {
                if (!answered(err, 404)) ctx.log.warn(`could not delete worker pod ${name}: ${(err as Error).message}`);
              },
            );
          // Once every pod of the run is being deleted, its Secret goes too (only this run's: the uid says which).
          thisRun.killed.add(name);
          if (thisRun.killed.size === thisRun.pods.size && runs.get(ctx.jobId) === thisRun) {
            runs.delete(ctx.jobId);
            k
              .deleteSecret(settings.namespace, jobSecretName(ctx.jobId), secretUid)
              .catch((err) => {
                if (!answered(err, 404, 409)) ctx.log.warn(`could not delete the Secret ${jobSecretName(ctx.jobId)}: ${(err as Error).message}`);
              });
          }
        },
      };
      return handle;
    },
  });
}

/** Says what the API refused and what to do about it. */
function failed(err: unknown, what: string, namespace: string): never {
  if (answered(err, 403)) {
    throw new Error(
      `the kubernetes scheduler may not ${what} in namespace ${namespace} (${(err as Error).message}); ` +
        "grant the job manager's service account the Role in deploy/kubernetes (bun deploy/kubernetes/render.ts), in that namespace",
    );
  }
  throw new Error(`the kubernetes scheduler could not ${what} in namespace ${namespace}: ${(err as Error).message}`);
}

/**
 * Where worker pods reach the job manager. A manager listening on loopback
 * or a Unix socket cannot be reached from a pod; one listening on every
 * interface is reached at `host` (the control plane pod's IP by default).
 */
export function managerAddress(listening: string | undefined, host: string | undefined): string {
  if (!listening) throw new Error("the job manager gave no RUNNEL_MANAGER address to start worker pods with");
  const m = /^(.*):(\d+)$/.exec(listening);
  if (!m) throw new Error(`the job manager listens on the Unix socket ${listening}, which worker pods cannot reach; make it listen on TCP, 0.0.0.0:PORT`);
  const [, listenHost, port] = m as unknown as [string, string, string];
  const bare = listenHost.replace(/^\[|\]$/g, "");
  if (bare === "localhost" || bare === "::1" || bare.startsWith("127.")) {
    throw new Error(
      `the job manager listens on ${listening}, which worker pods cannot reach; make it listen on 0.0.0.0 (runnel run --listen 0.0.0.0:PORT, ` +
        "or the control plane's job manager address) and give the pods its address (option manager_host, or RUNNEL_POD_IP from the downward API)",
    );
  }
  if (bare === "0.0.0.0" || bare === "::" || bare === "") {
    if (!host) {
      throw new Error(
        `the job manager listens on every interface (${listening}) and the kubernetes scheduler does not know which address of it pods reach; ` +
          "set option manager_host (RUNNEL_KUBERNETES_MANAGER_HOST), or RUNNEL_POD_IP from the downward API (status.podIP) as deploy/kubernetes does",
      );
    }
    return `${host}:${port}`;
  }
  return host ? `${host}:${port}` : listening;
}

/**
 * Follows one pod until it ends: exited resolves with its container's exit
 * code when it succeeds or fails, and with null when it is deleted or cannot
 * start. Watches are resumed from the last version seen; when the server has
 * forgotten that version (410) the pod is read afresh.
 */
function watchPod(api: KubeApi, namespace: string, name: string, resourceVersion: string | undefined, log: PluginLogger): { exited: Promise<number | null> } {
  const abort = new AbortController();
  let resolveExit!: (code: number | null) => void;
  const exited = new Promise<number | null>((resolve) => (resolveExit = resolve));
  let done = false;
  const finish = (code: number | null, why?: string) => {
    if (done) return;
    done = true;
    if (why) log.warn(`worker pod ${namespace}/${name} ${why}`);
    abort.abort();
    resolveExit(code);
  };
  const told = new Set<string>();
  const inspect = (pod: V1Pod) => {
    const status = pod.status;
    const container = status?.containerStatuses?.find((c) => c.name === CONTAINER);
    const terminated = container?.state?.terminated;
    if (status?.phase === "Succeeded") return finish(terminated?.exitCode ?? 0);
    if (status?.phase === "Failed") {
      const why = [terminated?.reason, status.reason, terminated?.message ?? status.message].filter(Boolean).join(": ");
      return finish(terminated?.exitCode ?? null, why ? `failed (${why})${terminated?.reason === "OOMKilled" ? "; raise the scheduler's memory_limit" : ""}` : undefined);
    }
    const waiting = container?.state?.waiting;
    if (waiting?.reason && CANNOT_START.has(waiting.reason)) return finish(null, `cannot start: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`);
    const unschedulable = status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable");
    if (unschedulable && !told.has("unschedulable")) {
      told.add("unschedulable");
      log.warn(`worker pod ${namespace}/${name} cannot be scheduled yet: ${unschedulable.message ?? "no node fits"}`);
    }
  };

  void (async () => {
    let version = resourceVersion;
    let failures = 0;
    while (!done) {
      let expired = !version;
      try {
        if (!expired) {
          const query: Record<string, string> = { fieldSelector: `metadata.name=${name}`, allowWatchBookmarks: "true", timeoutSeconds: "240", resourceVersion: version! };
          await api.watchPods(
            namespace,
            query,
            (event) => {
              if (event.type === "ERROR") {
                expired = true;
                return;
              }
              version = event.object.metadata?.resourceVersion ?? version;
              if (event.type === "DELETED") finish(null);
              else if (event.type !== "BOOKMARK") inspect(event.object);
            },
            abort.signal,
          );
          failures = 0;
        }
        if (expired && !done) {
          const list = await api.listPods(namespace, `metadata.name=${name}`);
          const pod = list.items[0];
          if (!pod) finish(null);
          else inspect(pod);
          version = list.metadata?.resourceVersion;
        }
      } catch (err) {
        if (done) return;
        failures++;
        if (failures === 1 || failures % 10 === 0) log.warn(`watching worker pod ${namespace}/${name}: ${(err as Error).message}; retrying`);
        await Bun.sleep(Math.min(30_000, 500 * 2 ** Math.min(failures, 6)));
      }
    }
  })();
  return { exited };
}

export const kubernetesScheduler = createKubernetesScheduler();

export default definePlugin({ name: "scheduler-kubernetes", version: "0.1.0", schedulers: [kubernetesScheduler] });
