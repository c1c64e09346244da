/**
 * The objects the `kubernetes` scheduler creates: one Pod per worker and one
 * Secret per job holding the job's secret, so the secret is never a literal in
 * a pod spec (anyone who may read pods would read it there). Pure functions of
 * the worker spec and the scheduler's settings, so tests can read them.
 */
import { createHash } from "node:crypto";
import type { V1EnvVar, V1OwnerReference, V1Pod, V1Secret } from "@kubernetes/client-node";
import type { WorkerSpec } from "../../core/plugin-api/index.ts";

export interface KubernetesSettings {
  namespace: string;
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  imagePullSecret?: string;
  serviceAccount?: string;
  requests: Record<string, string>;
  limits: Record<string, string>;
  /** The port each worker pod listens on for its peers' data. */
  workerPort: number;
  /** A Secret whose keys become the workers' environment (the AWS_* settings that reach the checkpoint bucket). */
  envSecret?: string;
  /** The control plane's own pod: worker pods and secrets go with it when it is deleted. */
  owner?: { name: string; uid: string };
}

/** Label keys; values are `jobKey`s, epochs and worker indexes. */
export const LABEL = {
  job: "runnel.dev/job",
  epoch: "runnel.dev/epoch",
  worker: "runnel.dev/worker",
} as const;
const COMMON_LABELS = { "app.kubernetes.io/name": "runnel", "app.kubernetes.io/component": "worker", "app.kubernetes.io/managed-by": "runnel" };
/** Where the raw job id is kept (label values cannot hold every id). */
export const JOB_ID_ANNOTATION = "runnel.dev/job-id";
export const CONTAINER = "worker";

/** Environment variables whose values are secrets: they go into the job's Secret, never into the pod spec. */
export const isSecretEnv = (name: string) => /SECRET|TOKEN|PASSWORD|CREDENTIAL/i.test(name);

/**
 * A job id as a label value and name part: lower-case letters, digits and
 * dashes (Kubernetes names allow no capitals or underscores), with a hash of
 * the raw id so that ids differing only in case or punctuation stay apart.
 */
export function jobKey(jobId: string): string {
  const slug = jobId.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 30).replace(/-+$/, "");
  const hash = createHash("sha256").update(jobId).digest("hex").slice(0, 6);
  return slug ? `${slug}-${hash}` : hash;
}

/** Names carry the epoch: a pod of the run being torn down may still exist when the next run's starts. */
export function workerPodName(jobId: string, epoch: string, index: number): string {
  return `runnel-${jobKey(jobId)}-${Number(epoch).toString(36)}-w${index}`;
}

export function jobSecretName(jobId: string): string {
  return `runnel-${jobKey(jobId)}`;
}

export function jobSelector(jobId: string): string {
  return `${LABEL.job}=${jobKey(jobId)}`;
}

function ownerReferences(settings: KubernetesSettings): V1OwnerReference[] | undefined {
  // No blockOwnerDeletion: that would need the right to update the owner's finalizers.
  return settings.owner ? [{ apiVersion: "v1", kind: "Pod", name: settings.owner.name, uid: settings.owner.uid }] : undefined;
}

export function jobSecret(jobId: string, values: Record<string, string>, settings: KubernetesSettings): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name: jobSecretName(jobId),
      namespace: settings.namespace,
      labels: { ...COMMON_LABELS, [LABEL.job]: jobKey(jobId) },
      annotations: { [JOB_ID_ANNOTATION]: jobId },
      ownerReferences: ownerReferences(settings),
    },
    stringData: values,
  };
}

/**
 * The pod of one worker. `managerAddress` is where the pod reaches the job
 * manager; the worker listens on its pod IP (the downward API's status.podIP)
 * so that the address it reports to its peers is one they can reach.
 */
export function workerPod(jobId: string, spec: WorkerSpec, managerAddress: string, settings: KubernetesSettings): V1Pod {
  const epoch = spec.env.RUNNEL_EPOCH ?? "0";
  const env: V1EnvVar[] = [{ name: "RUNNEL_POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } }];
  for (const [name, value] of Object.entries(spec.env)) {
    if (name === "RUNNEL_MANAGER") env.push({ name, value: managerAddress });
    // $(RUNNEL_POD_IP) is expanded by the kubelet from the variable above.
    else if (name === "RUNNEL_WORKER_LISTEN") env.push({ name, value: `$(RUNNEL_POD_IP):${settings.workerPort}` });
    else if (isSecretEnv(name)) env.push({ name, valueFrom: { secretKeyRef: { name: jobSecretName(jobId), key: name } } });
    else env.push({ name, value });
  }
  if (!("RUNNEL_WORKER_LISTEN" in spec.env)) env.push({ name: "RUNNEL_WORKER_LISTEN", value: `$(RUNNEL_POD_IP):${settings.workerPort}` });
  const resources: { requests?: Record<string, string>; limits?: Record<string, string> } = {};
  if (Object.keys(settings.requests).length) resources.requests = settings.requests;
  if (Object.keys(settings.limits).length) resources.limits = settings.limits;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: workerPodName(jobId, epoch, spec.index),
      namespace: settings.namespace,
      labels: { ...COMMON_LABELS, [LABEL.job]: jobKey(jobId), [LABEL.epoch]: epoch, [LABEL.worker]: String(spec.index) },
      annotations: { [JOB_ID_ANNOTATION]: jobId },
      ownerReferences: ownerReferences(settings),
    },
    spec: {
      // The job manager restores the whole job when a worker dies; a worker restarted alone would rejoin nothing.
      restartPolicy: "Never",
      // Workers never call the Kubernetes API: they get no token for it.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      serviceAccountName: settings.serviceAccount,
      imagePullSecrets: settings.imagePullSecret ? [{ name: settings.imagePullSecret }] : undefined,
      terminationGracePeriodSeconds: 5,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: CONTAINER,
          image: settings.image,
          imagePullPolicy: settings.imagePullPolicy,
          command: spec.command,
          env,
          envFrom: settings.envSecret ? [{ secretRef: { name: settings.envSecret } }] : undefined,
          ports: [{ name: "exchange", containerPort: settings.workerPort, protocol: "TCP" }],
          resources,
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  };
}
