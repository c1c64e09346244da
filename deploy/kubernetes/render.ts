#!/usr/bin/env bun
/**
 * Renders the Kubernetes manifests of a Runnel deployment: the control plane
 * (a Deployment on PostgreSQL), the service accounts and the RBAC its
 * `kubernetes` scheduler needs to start worker pods, a Service for the API, and
 * network policies that keep worker pods' ports to Runnel's own pods.
 *
 *   bun deploy/kubernetes/render.ts --namespace runnel --image REGISTRY/runnel:TAG \
 *     --checkpoint-url s3://BUCKET/runnel/checkpoints > runnel.yaml
 *
 * Secrets are not rendered: their values are created by hand (see README,
 * "Kubernetes"), so no manifest ever holds one.
 */
import { KUBERNETES_PERMISSIONS } from "../../plugins/scheduler-kubernetes/index.ts";
import { envName } from "../../plugins/scheduler-kubernetes/options.ts";

export interface DeploymentParams {
  namespace: string;
  image: string;
  /** Where checkpoints live: must be s3:// (worker pods keep no disk across a restore). */
  checkpointUrl: string;
  /** The Secret holding DATABASE_URL, RUNNEL_SECRET_KEY and RUNNEL_API_TOKENS. */
  controlPlaneSecret: string;
  /** The Secret holding the AWS_* settings that reach the checkpoint bucket (control plane and workers). */
  s3Secret: string;
  /** Port of the GraphQL/REST API and console. */
  port: number;
}

export const DEFAULT_PARAMS: DeploymentParams = {
  namespace: "runnel",
  image: "registry.example.com/runnel:0.1.0",
  checkpointUrl: "s3://runnel-checkpoints/runnel",
  controlPlaneSecret: "runnel-control-plane",
  s3Secret: "runnel-s3",
  port: 8000,
};

export const NAMES = {
  controlPlane: "runnel-control-plane",
  workerAccount: "runnel-worker",
  role: "runnel-scheduler",
  service: "runnel",
} as const;

const CONTROL_PLANE_LABELS = { "app.kubernetes.io/name": "runnel", "app.kubernetes.io/component": "control-plane" };
const WORKER_LABELS = { "app.kubernetes.io/name": "runnel", "app.kubernetes.io/component": "worker" };
const PART_OF = { "app.kubernetes.io/part-of": "runnel" };

type KubeObject = Record<string, any>;

const fieldRef = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const secretRef = (name: string, secret: string) => ({ name, valueFrom: { secretKeyRef: { name: secret, key: name } } });

export function render(overrides: Partial<DeploymentParams> = {}): KubeObject[] {
  const p = { ...DEFAULT_PARAMS, ...overrides };
  if (!/^s3:\/\//i.test(p.checkpointUrl)) {
    throw new Error(`--checkpoint-url must be an s3:// location (worker pods keep no disk across a restore), got '${p.checkpointUrl}'`);
  }
  const meta = (name: string, labels: Record<string, string> = {}) => ({ name, namespace: p.namespace, labels: { ...PART_OF, ...labels } });
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: p.namespace, labels: PART_OF } },
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: meta(NAMES.controlPlane, CONTROL_PLANE_LABELS),
    },
    {
      // Worker pods' identity: no Kubernetes rights and no token; give it a cloud role for the bucket (IRSA, Workload Identity) if keys are not used.
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: meta(NAMES.workerAccount, WORKER_LABELS),
      automountServiceAccountToken: false,
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(NAMES.role, CONTROL_PLANE_LABELS),
      rules: KUBERNETES_PERMISSIONS.map((perm) => ({ apiGroups: [""], resources: [perm.resource], verbs: [...perm.verbs] })),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(NAMES.role, CONTROL_PLANE_LABELS),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: NAMES.role },
      subjects: [{ kind: "ServiceAccount", name: NAMES.controlPlane, namespace: p.namespace }],
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: meta(NAMES.service, CONTROL_PLANE_LABELS),
      spec: { type: "ClusterIP", selector: CONTROL_PLANE_LABELS, ports: [{ name: "http", port: p.port, targetPort: "http", protocol: "TCP" }] },
    },
    controlPlaneDeployment(p, meta(NAMES.controlPlane, CONTROL_PLANE_LABELS)),
    {
      // Job managers listen on a port per job: workers reach them at the control plane pod's IP, not through the Service.
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: meta(`${NAMES.controlPlane}-ingress`, CONTROL_PLANE_LABELS),
      spec: {
        podSelector: { matchLabels: CONTROL_PLANE_LABELS },
        policyTypes: ["Ingress"],
        ingress: [{ ports: [{ protocol: "TCP", port: p.port }] }, { from: [{ podSelector: { matchLabels: WORKER_LABELS } }] }],
      },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: meta("runnel-worker-ingress", WORKER_LABELS),
      spec: {
        podSelector: { matchLabels: WORKER_LABELS },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: { matchLabels: WORKER_LABELS } }] }],
      },
    },
  ];
}

function controlPlaneDeployment(p: DeploymentParams, metadata: KubeObject): KubeObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata,
    spec: {
      replicas: 1,
      // One control plane at a time: the old one stops its jobs (they resume from checkpoints) before the new one takes them.
      strategy: { type: "Recreate" },
      selector: { matchLabels: CONTROL_PLANE_LABELS },
      template: {
        metadata: { labels: { ...PART_OF, ...CONTROL_PLANE_LABELS } },
        spec: {
          serviceAccountName: NAMES.controlPlane,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "control-plane",
              image: p.image,
              command: ["bun", "control-plane/main.ts"],
              ports: [{ name: "http", containerPort: p.port, protocol: "TCP" }],
              env: [
                { name: "PORT", value: String(p.port) },
                // Beyond loopback only with API tokens: RUNNEL_API_TOKENS below is required (the pod does not start without it).
                { name: "RUNNEL_HOST", value: "0.0.0.0" },
                secretRef("RUNNEL_API_TOKENS", p.controlPlaneSecret),
                secretRef("DATABASE_URL", p.controlPlaneSecret),
                secretRef("RUNNEL_SECRET_KEY", p.controlPlaneSecret),
                { name: "RUNNEL_CHECKPOINT_URL", value: p.checkpointUrl },
                { name: "RUNNEL_DATA_DIR", value: "/var/lib/runnel" },
                // Workers as pods (read by the control plane once its jobs run through the job manager; see README).
                { name: "RUNNEL_SCHEDULER", value: "kubernetes" },
                { name: envName("image"), value: p.image },
                fieldRef(envName("namespace"), "metadata.namespace"),
                { name: envName("service_account"), value: NAMES.workerAccount },
                { name: envName("env_secret"), value: p.s3Secret },
                // What the scheduler knows of its own pod: the job managers' address, and the owner of worker pods.
                fieldRef("RUNNEL_POD_IP", "status.podIP"),
                fieldRef("RUNNEL_POD_NAME", "metadata.name"),
                fieldRef("RUNNEL_POD_UID", "metadata.uid"),
                fieldRef("RUNNEL_POD_NAMESPACE", "metadata.namespace"),
              ],
              // The control plane writes checkpoint manifests to the same bucket as the workers.
              envFrom: [{ secretRef: { name: p.s3Secret } }],
              // Every HTTP path needs a token once tokens exist, so the probes only open the port.
              readinessProbe: { tcpSocket: { port: "http" }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: "http" }, initialDelaySeconds: 30, periodSeconds: 10, failureThreshold: 6 },
              resources: { requests: { cpu: "500m", memory: "512Mi" }, limits: { memory: "2Gi" } },
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
              volumeMounts: [{ name: "data", mountPath: "/var/lib/runnel" }],
            },
          ],
          // Scratch only: pipelines live in PostgreSQL and checkpoints on S3.
          volumes: [{ name: "data", emptyDir: {} }],
        },
      },
    },
  };
}

/** The manifests as one YAML stream, for kubectl apply -f. */
export function renderYaml(overrides: Partial<DeploymentParams> = {}): string {
  const header = "# Rendered by deploy/kubernetes/render.ts; create the Secrets it references first (README, \"Kubernetes\").\n";
  // Through JSON first: an object used twice would otherwise become a YAML anchor and alias.
  return header + render(overrides).map((o) => `---\n${Bun.YAML.stringify(JSON.parse(JSON.stringify(o)), null, 2)}\n`).join("");
}

const FLAGS: Record<string, keyof DeploymentParams> = {
  "--namespace": "namespace",
  "--image": "image",
  "--checkpoint-url": "checkpointUrl",
  "--control-plane-secret": "controlPlaneSecret",
  "--s3-secret": "s3Secret",
  "--port": "port",
};

export function parseArgs(argv: string[]): Partial<DeploymentParams> {
  const out: Record<string, string | number> = {};
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.includes("=") ? [argv[i]!.slice(0, argv[i]!.indexOf("=")), argv[i]!.slice(argv[i]!.indexOf("=") + 1)] : [argv[i]!, undefined];
    const key = FLAGS[flag];
    if (!key) throw new Error(`unknown flag ${flag}; the flags are ${Object.keys(FLAGS).join(", ")}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    out[key] = key === "port" ? Number(value) : value;
  }
  return out as Partial<DeploymentParams>;
}

if (import.meta.main) {
  try {
    process.stdout.write(renderYaml(parseArgs(process.argv.slice(2))));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
}
