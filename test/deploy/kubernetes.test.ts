/**
 * The Kubernetes manifests in deploy/kubernetes: rendered, every object valid
 * against the Kubernetes OpenAPI schemas (kubernetes-models, offline) with no
 * field the API would not know, the RBAC Role granting exactly what the
 * scheduler's code calls, and the committed YAML what the renderer makes.
 */
import { describe, expect, test } from "bun:test";
import * as k8s from "@kubernetes/client-node";
import * as models from "kubernetes-models";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_PARAMS, NAMES, parseArgs, render, renderYaml } from "../../deploy/kubernetes/render.ts";
import { KUBERNETES_PERMISSIONS } from "../../plugins/scheduler-kubernetes/index.ts";
import { envName, parseOptions, settingsFrom } from "../../plugins/scheduler-kubernetes/options.ts";
import { workerPod } from "../../plugins/scheduler-kubernetes/pod.ts";
import { REPO } from "../kit/cli.ts";

type KubeObject = Record<string, any>;
const objects = render({ namespace: "streaming", image: "registry.example.com/runnel:1.2.3", checkpointUrl: "s3://bucket/runnel" });
const find = (kind: string, name?: string) => objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name))!;

/** Every model class of kubernetes-models, by apiVersion and kind. */
function modelClasses(): Map<string, new (data: unknown) => { validate(): void }> {
  const out = new Map<string, any>();
  const visit = (ns: unknown, depth: number) => {
    if (!ns || typeof ns !== "object" || depth > 2) return;
    for (const v of Object.values(ns)) {
      if (typeof v === "function" && (v as any).apiVersion && (v as any).kind) out.set(`${(v as any).apiVersion}/${(v as any).kind}`, v);
      else visit(v, depth + 1);
    }
  };
  visit(models, 0);
  return out;
}
const MODELS = modelClasses();

function validate(o: KubeObject): void {
  const Model = MODELS.get(`${o.apiVersion}/${o.kind}`);
  if (!Model) throw new Error(`kubernetes-models has no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
  expect(unknownFields(o, `V1${o.kind}`, o.kind)).toEqual([]);
}

/**
 * Fields the API would not know, found through the client's model maps (its
 * types come from the same OpenAPI document). kubectl apply refuses these
 * (strict field validation); the JSON schemas allow them.
 */
function unknownFields(value: unknown, type: string, path: string): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return (value as unknown[]).flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`));
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return Object.entries(value as object).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`));
  const Model = (k8s as any)[type];
  if (typeof Model?.getAttributeTypeMap !== "function") return [];
  const attributes: { baseName: string; type: string }[] = Model.getAttributeTypeMap();
  return Object.entries(value as object).flatMap(([k, v]) => {
    const a = attributes.find((x) => x.baseName === k);
    return a ? unknownFields(v, a.type, `${path}.${k}`) : [`${path}.${k}`];
  });
}

describe("the rendered manifests", () => {
  test("every object is valid against the Kubernetes OpenAPI schemas, with no unknown field", () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(["Deployment", "Namespace", "NetworkPolicy", "NetworkPolicy", "Role", "RoleBinding", "Service", "ServiceAccount", "ServiceAccount"]);
    for (const o of objects) validate(o);
  });

  test("the schema check catches what it should: a typo, a bad quantity, a wrong type", () => {
    const deployment = structuredClone(find("Deployment"));
    deployment.spec.template.spec.containers[0].resouces = {};
    expect(unknownFields(deployment, "V1Deployment", "Deployment")).toEqual(["Deployment.spec.template.spec.containers[0].resouces"]);
    const quantity = structuredClone(find("Deployment"));
    quantity.spec.template.spec.containers[0].resources.limits.memory = "lots";
    expect(() => new (MODELS.get("apps/v1/Deployment")!)(quantity).validate()).toThrow("quantity");
    const replicas = structuredClone(find("Deployment"));
    replicas.spec.replicas = "one";
    expect(() => new (MODELS.get("apps/v1/Deployment")!)(replicas).validate()).toThrow("integer");
  });

  test("every namespaced object is in the namespace given", () => {
    for (const o of objects.filter((o) => o.kind !== "Namespace")) expect(o.metadata.namespace).toBe("streaming");
    expect(find("Namespace").metadata.name).toBe("streaming");
  });

  test("the committed runnel.yaml is what the renderer makes with its defaults, and parses back to the same objects", () => {
    const committed = readFileSync(join(REPO, "deploy", "kubernetes", "runnel.yaml"), "utf8");
    expect(committed).toBe(renderYaml());
    const docs = committed.split(/^---$/m).slice(1).map((d) => Bun.YAML.parse(d));
    expect(docs).toEqual(render());
    for (const d of docs) validate(d as KubeObject);
  });

  test("the renderer's command line sets namespace, image and checkpoint URL, and refuses a local checkpoint location", () => {
    expect(parseArgs(["--namespace", "a", "--image=img:1", "--checkpoint-url", "s3://b/c", "--port", "9000"])).toEqual({ namespace: "a", image: "img:1", checkpointUrl: "s3://b/c", port: 9000 });
    expect(() => parseArgs(["--nmespace", "a"])).toThrow("unknown flag --nmespace");
    expect(() => render({ checkpointUrl: "/var/lib/runnel" })).toThrow("s3://");
  });
});

describe("the control plane Deployment", () => {
  const pod = find("Deployment").spec.template.spec;
  const container = pod.containers[0];
  const env = (name: string) => container.env.find((e: KubeObject) => e.name === name);

  test("runs on PostgreSQL with DATABASE_URL, RUNNEL_SECRET_KEY and RUNNEL_API_TOKENS from a Secret, never as literals", () => {
    for (const name of ["DATABASE_URL", "RUNNEL_SECRET_KEY", "RUNNEL_API_TOKENS"]) {
      expect(env(name)).toEqual({ name, valueFrom: { secretKeyRef: { name: DEFAULT_PARAMS.controlPlaneSecret, key: name } } });
    }
  });

  test("listens beyond loopback only with API tokens: RUNNEL_HOST=0.0.0.0 comes with a required RUNNEL_API_TOKENS", () => {
    expect(env("RUNNEL_HOST").value).toBe("0.0.0.0");
    expect(env("RUNNEL_API_TOKENS").valueFrom.secretKeyRef.optional).not.toBe(true);
    expect(env("RUNNEL_ALLOW_UNAUTHENTICATED")).toBeUndefined();
  });

  test("keeps checkpoints on S3", () => {
    expect(env("RUNNEL_CHECKPOINT_URL").value).toBe("s3://bucket/runnel");
    expect(container.envFrom).toEqual([{ secretRef: { name: DEFAULT_PARAMS.s3Secret } }]);
  });

  test("runs as the service account the RoleBinding grants the Role to, in the namespace the scheduler starts pods in", () => {
    const binding = find("RoleBinding");
    expect(pod.serviceAccountName).toBe(NAMES.controlPlane);
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: NAMES.controlPlane, namespace: "streaming" }]);
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: find("Role").metadata.name });
    // A Role reaches only its own namespace: the scheduler's is the pod's own (downward API).
    expect(env(envName("namespace")).valueFrom.fieldRef.fieldPath).toBe("metadata.namespace");
    expect(find("Role").metadata.namespace).toBe("streaming");
  });

  test("the Service reaches the control plane's API port", () => {
    const service = find("Service");
    expect(service.spec.selector).toEqual(find("Deployment").spec.selector.matchLabels);
    expect(service.spec.ports[0].targetPort).toBe(container.ports[0].name);
    expect(Object.entries(service.spec.selector).every(([k, v]) => find("Deployment").spec.template.metadata.labels[k] === v)).toBe(true);
  });

  test("the scheduler settings it gives are valid options, and the worker pod they make is valid and fits the network policies", () => {
    // The environment of the control plane container as the kubelet would give it (downward API values filled in).
    const downward: Record<string, string> = { "metadata.namespace": "streaming", "status.podIP": "192.0.2.10", "metadata.name": "runnel-control-plane-abc", "metadata.uid": "uid-1" };
    const processEnv: Record<string, string> = {};
    for (const e of container.env) processEnv[e.name] = e.value ?? downward[e.valueFrom?.fieldRef?.fieldPath] ?? "from-a-secret";
    const options = parseOptions({}, processEnv);
    const settings = settingsFrom(options, options.namespace!, { ip: processEnv.RUNNEL_POD_IP, name: processEnv.RUNNEL_POD_NAME, uid: processEnv.RUNNEL_POD_UID, namespace: processEnv.RUNNEL_POD_NAMESPACE });
    const worker = workerPod("job_X", { index: 0, command: ["/usr/local/bin/bun", "/app/core/cluster/worker-main.ts"], env: { RUNNEL_MANAGER: "192.0.2.10:7000", RUNNEL_JOB_SECRET: "s", RUNNEL_EPOCH: "1" } }, "192.0.2.10:7000", settings);
    validate(worker);
    expect(worker.spec!.serviceAccountName).toBe(NAMES.workerAccount);
    expect(objects.some((o) => o.kind === "ServiceAccount" && o.metadata.name === NAMES.workerAccount)).toBe(true);
    expect(worker.metadata!.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Pod", name: "runnel-control-plane-abc", uid: "uid-1" }]);
    const labels = worker.metadata!.labels!;
    const policies = objects.filter((o) => o.kind === "NetworkPolicy");
    const selects = (policy: KubeObject, l: Record<string, string>) => Object.entries(policy.spec.podSelector.matchLabels).every(([k, v]) => l[k] === v);
    const workerPolicy = policies.find((p) => selects(p, labels))!;
    expect(workerPolicy.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: expect.any(Object) } }] }]);
    expect(Object.entries(workerPolicy.spec.ingress[0].from[0].podSelector.matchLabels).every(([k, v]) => labels[k] === v)).toBe(true);
    // Workers may reach the control plane (their job manager) on any port.
    const cpPolicy = policies.find((p) => selects(p, find("Deployment").spec.template.metadata.labels))!;
    expect(cpPolicy.spec.ingress.some((r: KubeObject) => r.ports === undefined && Object.entries(r.from[0].podSelector.matchLabels).every(([k, v]) => labels[k] === v))).toBe(true);
  });
});

describe("RBAC", () => {
  /**
   * What the scheduler's code calls, read from its source: each call of the
   * generated client (createNamespacedPod...) and each watch path in client.ts,
   * turned into the verb and resource the API server authorizes.
   */
  function callsInCode(): Set<string> {
    const dir = join(REPO, "plugins", "scheduler-kubernetes");
    const source = readFileSync(join(dir, "client.ts"), "utf8");
    const VERBS: Record<string, string> = { create: "create", delete: "delete", deleteCollection: "deletecollection", list: "list", read: "get", patch: "patch", replace: "update", connectGet: "get" };
    const out = new Set<string>();
    for (const m of source.matchAll(/this\.core\.(create|deleteCollection|delete|list|read|patch|replace)Namespaced(\w+?)\(/g)) {
      out.add(`${m[2]!.toLowerCase()}s:${VERBS[m[1]!]}`);
    }
    for (const m of source.matchAll(/this\.watch\(`\/api\/v1\/namespaces\/\$\{[^}]+\}\/(\w+)`/g)) out.add(`${m[1]}:watch`);
    // Any other way to the API would escape this reading.
    expect(source.match(/this\.core\.\w+\(/g)!.length).toBe([...source.matchAll(/this\.core\.(create|deleteCollection|delete|list|read|patch|replace)Namespaced\w+?\(/g)].length);
    for (const file of ["index.ts", "pod.ts", "options.ts"]) expect(readFileSync(join(dir, file), "utf8")).not.toMatch(/CoreV1Api|fetch\(|makeApiClient/);
    return out;
  }

  test("the Role grants exactly the verbs the scheduler's code calls, on exactly those resources", () => {
    const role = find("Role");
    const granted = new Set<string>();
    for (const rule of role.rules) {
      expect(rule.apiGroups).toEqual([""]);
      expect(rule.resourceNames).toBeUndefined();
      for (const r of rule.resources) for (const v of rule.verbs) granted.add(`${r}:${v}`);
    }
    const called = callsInCode();
    expect([...granted].sort()).toEqual([...called].sort());
    expect(new Set(KUBERNETES_PERMISSIONS.flatMap((p) => p.verbs.map((v) => `${p.resource}:${v}`)))).toEqual(called);
  });

  test("the Role never lets the control plane read secrets", () => {
    const secrets = find("Role").rules.filter((r: KubeObject) => r.resources.includes("secrets"));
    for (const r of secrets) for (const v of ["get", "list", "watch", "deletecollection", "*"]) expect(r.verbs).not.toContain(v);
  });
});
