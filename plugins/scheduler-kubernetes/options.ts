/**
 * The `kubernetes` scheduler's options. Each is given by the job manager's
 * scheduler options or, failing that, by the environment variable
 * RUNNEL_KUBERNETES_<NAME> of the process that runs the job manager (how the
 * control plane's Deployment sets them), or else takes its default.
 */
import { opt, type OptionSpec } from "../../core/plugin-api/index.ts";
import type { KubernetesSettings } from "./pod.ts";

/** Kubernetes resource quantities: 500m, 1, 1.5, 512Mi, 2G, 1e3. */
const QUANTITY = /^\+?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function checked(base: OptionSpec<string>, test: RegExp, what: string): OptionSpec<string> {
  return {
    ...base,
    parse(raw) {
      const s = base.parse(raw).trim();
      if (!test.test(s)) throw new Error(`'${s}' is not ${what}`);
      return s;
    },
  };
}
const quantity = (description: string, def?: string) => checked(opt.string({ description, default: def }), QUANTITY, "a Kubernetes quantity (such as 500m, 2, 512Mi, 4Gi)");
const dnsLabel = (description: string) => checked(opt.string({ description }), DNS_LABEL, "a Kubernetes name (lower-case letters, digits and '-', at most 63)");
const objectName = (description: string) => checked(opt.string({ description }), DNS_SUBDOMAIN, "a Kubernetes object name (lower-case letters, digits, '-' and '.')");

export const kubernetesSchedulerOptions = {
  image: opt.string({
    required: true,
    description: "Container image of the workers: the same Runnel build as the job manager's, since pods run the job manager's worker command",
  }),
  namespace: dnsLabel("Namespace of the worker pods (default: the current kubeconfig context's; inside a cluster, the control plane's own)"),
  service_account: objectName(
    "Service account of the worker pods, for cloud identities that reach the checkpoint bucket (EKS IRSA, GKE Workload Identity); workers get no Kubernetes API token either way",
  ),
  image_pull_policy: opt.enum(["Always", "IfNotPresent", "Never"] as const, { description: "imagePullPolicy of the worker container (default: Kubernetes')" }),
  image_pull_secret: objectName("Secret holding the registry credentials to pull the image"),
  cpu_request: quantity("CPU each worker pod requests", "1"),
  cpu_limit: quantity("CPU limit of each worker pod (default: none, so a busy worker is not throttled below a free core)"),
  memory_request: quantity("Memory each worker pod requests", "512Mi"),
  memory_limit: quantity("Memory limit of each worker pod (above it the worker is OOM-killed and the job restores)", "1Gi"),
  worker_port: opt.integer({ min: 1, max: 65535, default: 6130, description: "Port each worker pod listens on for its peers' data" }),
  manager_host: opt.string({
    description:
      "Host worker pods connect to when the job manager listens on every interface (0.0.0.0): default the control plane pod's IP, RUNNEL_POD_IP (downward API status.podIP)",
  }),
  env_secret: objectName("Secret whose keys become the workers' environment: the AWS_* settings that reach the S3 checkpoint bucket"),
};

export interface KubernetesSchedulerOptions {
  image: string;
  namespace?: string;
  service_account?: string;
  image_pull_policy?: "Always" | "IfNotPresent" | "Never";
  image_pull_secret?: string;
  cpu_request?: string;
  cpu_limit?: string;
  memory_request?: string;
  memory_limit?: string;
  worker_port: number;
  manager_host?: string;
  env_secret?: string;
}

export const envName = (option: string) => `RUNNEL_KUBERNETES_${option.toUpperCase()}`;

/** The options' values from the job manager's options, then the environment, then the defaults. */
export function parseOptions(given: Record<string, unknown>, env: Record<string, string | undefined> = process.env): KubernetesSchedulerOptions {
  const valid = Object.keys(kubernetesSchedulerOptions);
  for (const key of Object.keys(given)) {
    if (!valid.includes(key)) throw new Error(`unknown option '${key}' of the kubernetes scheduler. Valid options: ${valid.sort().join(", ")}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(kubernetesSchedulerOptions) as [string, OptionSpec][]) {
    const raw = given[key] ?? (env[envName(key)] || undefined);
    if (raw !== undefined && raw !== null) {
      try {
        out[key] = spec.parse(raw);
      } catch (err) {
        throw new Error(`option '${key}' of the kubernetes scheduler${given[key] === undefined ? ` (${envName(key)})` : ""}: ${(err as Error).message}`);
      }
    } else if (spec.default !== undefined) out[key] = spec.default;
    else if (spec.required) {
      throw new Error(`the kubernetes scheduler needs option '${key}' (${spec.description}); set it in the scheduler options or ${envName(key)}`);
    }
  }
  return out as unknown as KubernetesSchedulerOptions;
}

/**
 * Worker pods are gone after a restore and their disks with them, so each
 * checkpoint must be where every pod, now and later, can read it.
 */
export function requireSharedCheckpoints(stateDir: string | undefined): void {
  if (stateDir === undefined) {
    throw new Error(
      "the job manager did not tell the kubernetes scheduler where the job's checkpoints live (SchedulerContext.stateDir), so it cannot check they are on S3; " +
        "this Runnel's job manager is older than the kubernetes scheduler: use the process or external scheduler",
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(stateDir)?.[1]?.toLowerCase();
  if (scheme !== "s3") {
    throw new Error(
      `the kubernetes scheduler needs the job's checkpoints on S3, where every worker pod can read them after a restore; '${stateDir}' is ` +
        `${scheme && scheme !== "file" ? "not on S3" : "a local directory, which each pod would have to itself and lose with it"}. ` +
        "Use an s3:// state location (runnel run --state-dir s3://bucket/prefix, or the control plane's RUNNEL_CHECKPOINT_URL)",
    );
  }
}

/** What the scheduler needs from the control plane's own pod (downward API), from the environment. */
export interface PodIdentity {
  ip?: string;
  name?: string;
  uid?: string;
  namespace?: string;
}

export function podIdentity(env: Record<string, string | undefined> = process.env): PodIdentity {
  return { ip: env.RUNNEL_POD_IP || undefined, name: env.RUNNEL_POD_NAME || undefined, uid: env.RUNNEL_POD_UID || undefined, namespace: env.RUNNEL_POD_NAMESPACE || undefined };
}

export function settingsFrom(o: KubernetesSchedulerOptions, namespace: string, self: PodIdentity): KubernetesSettings {
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  if (o.cpu_request) requests.cpu = o.cpu_request;
  if (o.memory_request) requests.memory = o.memory_request;
  if (o.cpu_limit) limits.cpu = o.cpu_limit;
  if (o.memory_limit) limits.memory = o.memory_limit;
  return {
    namespace,
    image: o.image,
    imagePullPolicy: o.image_pull_policy,
    imagePullSecret: o.image_pull_secret,
    serviceAccount: o.service_account,
    requests,
    limits,
    workerPort: o.worker_port,
    envSecret: o.env_secret,
    // Owner references cannot cross namespaces.
    owner: self.name && self.uid && self.namespace === namespace ? { name: self.name, uid: self.uid } : undefined,
  };
}


