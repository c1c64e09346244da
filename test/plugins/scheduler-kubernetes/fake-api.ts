/**
 * A fake Kubernetes API server for the scheduler's tests: Bun.serve over TLS
 * (a CA made by openssl for the run, as a cluster's is), a bearer token, and
 * the core/v1 paths the scheduler calls for pods and secrets, with resource
 * versions and watch streams as the real server has them. Every request is
 * recorded. It knows nothing of the scheduler: tests drive pod status by hand,
 * as a kubelet would.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: any;
  authorization: string | null;
}

interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: any;
}

interface Watcher {
  resource: string;
  namespace: string;
  name: string | null;
  send: (type: string, object: unknown) => void;
  close: () => void;
}

const TOKEN = "fake-token-for-tests";

/** A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl command. */
export function makeCertificates(): { dir: string; ca: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "runnel-kube-"));
  const run = (args: string[]) => {
    const r = Bun.spawnSync(["openssl", ...args], { cwd: dir, stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.toString()}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=runnel-test-ca"]);
  run(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
  Bun.spawnSync(["sh", "-c", "printf 'subjectAltName=IP:127.0.0.1\\n' > ext"], { cwd: dir });
  run(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext"]);
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return { dir, ca: read("ca.crt"), cert: read("server.crt"), key: read("server.key") };
}

export type { KubeObject };

/** The raw job id a scheduler's object carries. */
export const jobIdOf = (o: KubeObject): string | undefined => (o.metadata.annotations as Record<string, string> | undefined)?.["runnel.dev/job-id"];

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  /** resource → "namespace/name" → object */
  private readonly store = new Map<string, Map<string, KubeObject>>([
    ["pods", new Map()],
    ["secrets", new Map()],
  ]);
  private version = 100;
  /** Watches from a version older than this are answered 410 Gone, as after etcd compaction. */
  private compactedBelow = 0;
  private readonly events: { resource: string; version: number; type: string; object: KubeObject }[] = [];
  private readonly watchers = new Set<Watcher>();
  /** A kubelet's view: told of each pod created and deleted. */
  kubelet: { created(pod: KubeObject): void; deleted(pod: KubeObject): void } | null = null;
  /** Status codes to answer instead, per "METHOD resource" (tests of refusals). */
  readonly refuse = new Map<string, { code: number; message: string }>();
  private readonly server: ReturnType<typeof Bun.serve>;
  private readonly certs = makeCertificates();

  constructor() {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: this.certs.cert, key: this.certs.key },
      idleTimeout: 0,
      fetch: (req) => this.handle(req),
    });
  }

  get url(): string {
    return `https://127.0.0.1:${this.server.port}`;
  }

  /** A kubeconfig as kubectl writes one: the server, its CA and a bearer token, namespace `ns`. */
  kubeConfig(ca = this.certs.ca): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, caData: Buffer.from(ca).toString("base64"), skipTLSVerify: false }],
      users: [{ name: "runnel", token: TOKEN }],
      contexts: [{ name: "fake", cluster: "fake", user: "runnel", namespace: "ns" }],
      currentContext: "fake",
    });
    return kc;
  }

  /** Another CA's certificate, for a client that must refuse this server. */
  static otherCa(): string {
    const other = makeCertificates();
    rmSync(other.dir, { recursive: true, force: true });
    return other.ca;
  }

  pods(): KubeObject[] {
    return [...this.store.get("pods")!.values()];
  }

  secrets(): KubeObject[] {
    return [...this.store.get("secrets")!.values()];
  }

  pod(name: string, namespace = "ns"): KubeObject | undefined {
    return this.store.get("pods")!.get(`${namespace}/${name}`);
  }

  /** A Secret made by an administrator (kubectl create secret generic). */
  putSecret(name: string, values: Record<string, string>, namespace = "ns"): void {
    const data = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
    const secret: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name, namespace, uid: crypto.randomUUID() }, data };
    this.store.get("secrets")!.set(`${namespace}/${name}`, secret);
    this.changed("secrets", "ADDED", secret);
  }

  /** What a kubelet would report: merges `status` into the pod and tells watchers. */
  setPodStatus(name: string, status: Record<string, unknown>, namespace = "ns"): void {
    const pod = this.pod(name, namespace);
    if (!pod) throw new Error(`no pod ${namespace}/${name}`);
    pod.status = { ...(pod.status ?? {}), ...status };
    this.changed("pods", "MODIFIED", pod);
  }

  /** Someone else (kubectl delete) removes a pod. */
  deletePodBehindTheBack(name: string, namespace = "ns"): void {
    const pod = this.pod(name, namespace)!;
    this.store.get("pods")!.delete(`${namespace}/${name}`);
    this.changed("pods", "DELETED", pod);
  }

  /** Ends every open watch, as the server does at its timeout. */
  closeWatches(): void {
    for (const w of [...this.watchers]) w.close();
  }

  /** Forgets history up to now: a watch resuming from an older version gets 410 Gone. */
  compact(): void {
    this.compactedBelow = this.version + 1;
    this.closeWatches();
  }

  /** Open watches of one pod. */
  watching(name: string): number {
    return [...this.watchers].filter((w) => w.name === name).length;
  }

  stop(): void {
    this.closeWatches();
    this.server.stop(true);
    rmSync(this.certs.dir, { recursive: true, force: true });
  }

  private changed(resource: string, type: string, object: KubeObject): void {
    if (resource === "pods" && type === "ADDED") queueMicrotask(() => this.kubelet?.created(object));
    if (resource === "pods" && type === "DELETED") queueMicrotask(() => this.kubelet?.deleted(object));
    object.metadata.resourceVersion = String(++this.version);
    const copy = structuredClone(object);
    this.events.push({ resource, version: this.version, type, object: copy });
    for (const w of this.watchers) {
      if (w.resource === resource && w.namespace === object.metadata.namespace && (w.name === null || w.name === object.metadata.name)) w.send(type, copy);
    }
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const query = Object.fromEntries(url.searchParams);
    const text = req.method === "GET" ? "" : await req.text();
    const body = text ? JSON.parse(text) : undefined;
    this.requests.push({ method: req.method, path: url.pathname, query, body: structuredClone(body), authorization: req.headers.get("authorization") });
    if (req.headers.get("authorization") !== `Bearer ${TOKEN}`) return status(401, "Unauthorized");
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/(pods|secrets)(?:\/([^/]+))?$/.exec(url.pathname);
    if (!m) return status(404, `the fake API serves no ${url.pathname}`);
    const [, namespace, resource, name] = m as unknown as [string, string, string, string | undefined];
    const refusal = this.refuse.get(`${req.method} ${resource}`);
    if (refusal) return status(refusal.code, refusal.message);
    const objects = this.store.get(resource)!;
    const key = (n: string) => `${namespace}/${n}`;
    const kind = resource === "pods" ? "Pod" : "Secret";

    if (req.method === "POST" && !name) {
      const obj = body as KubeObject;
      if (objects.has(key(obj.metadata.name))) return status(409, `${resource} "${obj.metadata.name}" already exists`, "AlreadyExists");
      obj.metadata = { ...obj.metadata, namespace, uid: crypto.randomUUID(), creationTimestamp: new Date().toISOString() };
      if (kind === "Pod") obj.status = { phase: "Pending" };
      if (kind === "Secret" && obj.stringData) {
        obj.data = Object.fromEntries(Object.entries(obj.stringData as Record<string, string>).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
        delete obj.stringData;
      }
      objects.set(key(obj.metadata.name), obj);
      this.changed(resource, "ADDED", obj);
      return Response.json(obj, { status: 201 });
    }
    if (req.method === "DELETE" && name) {
      const obj = objects.get(key(name));
      if (!obj) return status(404, `${resource} "${name}" not found`, "NotFound");
      const uid = body?.preconditions?.uid;
      if (uid && uid !== obj.metadata.uid) return status(409, `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${obj.metadata.uid}`, "Conflict");
      objects.delete(key(name));
      this.changed(resource, "DELETED", obj);
      return kind === "Pod" ? Response.json(obj) : Response.json({ kind: "Status", apiVersion: "v1", status: "Success", details: { name, kind: resource } });
    }
    if (req.method === "DELETE" && !name) {
      const gone = [...objects.values()].filter((o) => o.metadata.namespace === namespace && matches(o, query.labelSelector));
      for (const o of gone) {
        objects.delete(key(o.metadata.name));
        this.changed(resource, "DELETED", o);
      }
      return Response.json({ kind: `${kind}List`, apiVersion: "v1", metadata: { resourceVersion: String(this.version) }, items: gone });
    }
    if (req.method === "GET" && !name) {
      const selected = (o: KubeObject) => o.metadata.namespace === namespace && matches(o, query.labelSelector) && fieldMatches(o, query.fieldSelector);
      if (query.watch === "true") return this.watch(resource, namespace, query, selected);
      return Response.json({ kind: `${kind}List`, apiVersion: "v1", metadata: { resourceVersion: String(this.version) }, items: [...objects.values()].filter(selected) });
    }
    return status(405, `the fake API does not answer ${req.method} ${url.pathname}`);
  }

  private watch(resource: string, namespace: string, query: Record<string, string>, selected: (o: KubeObject) => boolean): Response {
    const from = Number(query.resourceVersion ?? this.version);
    const encoder = new TextEncoder();
    const watchers = this.watchers;
    const name = /^metadata\.name=(.+)$/.exec(query.fieldSelector ?? "")?.[1] ?? null;
    const gone = from < this.compactedBelow;
    const backlog = this.events.filter((e) => e.resource === resource && e.version > from && selected(e.object));
    let watcher: Watcher;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (type: string, object: unknown) => controller.enqueue(encoder.encode(`${JSON.stringify({ type, object })}\n`));
        // Like the real server: an expired version is an ERROR event carrying a 410 Status, then the end of the stream.
        if (gone) {
          send("ERROR", { kind: "Status", apiVersion: "v1", status: "Failure", code: 410, reason: "Expired", message: `too old resource version: ${from}` });
          controller.close();
          return;
        }
        watcher = {
          resource,
          namespace,
          name,
          send,
          close: () => {
            watchers.delete(watcher);
            try {
              controller.close();
            } catch {}
          },
        };
        watchers.add(watcher);
        for (const e of backlog) send(e.type, e.object);
      },
      cancel() {
        watchers.delete(watcher);
      },
    });
    return new Response(stream, { headers: { "content-type": "application/json" } });
  }
}

function status(code: number, message: string, reason = "Failure"): Response {
  return Response.json({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code }, { status: code });
}

/** Equality-based label selectors: a=b, a!=b, joined by commas. */
function matches(o: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  const labels = o.metadata.labels ?? {};
  return selector.split(",").every((term) => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term);
    if (ne) return labels[ne[1]!] !== ne[2];
    const eq = /^([^!=]+)==?(.*)$/.exec(term);
    if (!eq) throw new Error(`the fake API cannot read the selector '${term}'`);
    return labels[eq[1]!] === eq[2];
  });
}

function fieldMatches(o: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  const m = /^metadata\.name=(.+)$/.exec(selector);
  if (!m) throw new Error(`the fake API cannot read the field selector '${selector}'`);
  return o.metadata.name === m[1];
}
