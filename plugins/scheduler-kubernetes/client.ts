/**
 * The Kubernetes API as Runnel calls it, through @kubernetes/client-node, made
 * to work under Bun. The client sends through undici's fetch with a dispatcher
 * that carries the cluster's CA and the kubeconfig's client certificate; Bun's
 * built-in `undici` ignores dispatchers, so the in-cluster CA would never be
 * used and every HTTPS call would fail verification (oven-sh/bun#19754). Here
 * the generated API gets an HTTP library that hands the same TLS material to
 * Bun's fetch as `tls` options, and watches go the same way.
 *
 * Every call the scheduler makes is one method of KubeApi: the RBAC Role in
 * deploy/kubernetes is checked against the calls written in this file.
 */
import type { RequestOptions } from "node:https";
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  RequestContext,
  ResponseContext,
  ServerConfiguration,
  createConfiguration,
  wrapHttpLibrary,
  type V1Pod,
  type V1Secret,
} from "@kubernetes/client-node";

interface Tls {
  ca?: RequestOptions["ca"];
  cert?: RequestOptions["cert"];
  key?: RequestOptions["key"];
  rejectUnauthorized?: boolean;
}

/** The kubeconfig Runnel uses: $KUBECONFIG, ~/.kube/config, or the pod's service account inside a cluster. */
export function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** A watch event: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (whose object is a Status). */
export interface WatchEvent<T> {
  type: string;
  object: T;
}

/** The API server's answer to a failed call, with its Status message when it sent one. */
export class KubeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class KubeApi {
  readonly server: string;
  private readonly core: CoreV1Api;
  private tls: Promise<Tls> | null = null;

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig names no current cluster; set KUBECONFIG or run inside a cluster");
    this.server = cluster.server.replace(/\/+$/, "");
    this.core = new CoreV1Api(
      createConfiguration({
        baseServer: new ServerConfiguration(this.server, {}),
        authMethods: { default: kc },
        httpApi: wrapHttpLibrary({ send: (request) => this.send(request) }),
      }),
    );
  }

  /** The namespace of the kubeconfig's current context (inside a cluster: the pod's own). */
  get contextNamespace(): string | undefined {
    return this.kc.getContextObject(this.kc.getCurrentContext())?.namespace || undefined;
  }

  createPod(namespace: string, body: V1Pod): Promise<V1Pod> {
    return call(() => this.core.createNamespacedPod({ namespace, body }));
  }

  /** One second's grace: the kubelet confirms the container is gone before the pod's deletion is final. */
  deletePod(namespace: string, name: string): Promise<unknown> {
    return call(() => this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 1 }));
  }

  deletePods(namespace: string, labelSelector: string): Promise<unknown> {
    return call(() => this.core.deleteCollectionNamespacedPod({ namespace, labelSelector, gracePeriodSeconds: 1 }));
  }

  listPods(namespace: string, fieldSelector: string) {
    return call(() => this.core.listNamespacedPod({ namespace, fieldSelector }));
  }

  /** Streams pod events until the server ends the watch or `signal` aborts it. */
  watchPods(namespace: string, query: Record<string, string>, onEvent: (e: WatchEvent<V1Pod>) => void, signal: AbortSignal): Promise<void> {
    return this.watch(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, query, onEvent, signal);
  }

  createSecret(namespace: string, body: V1Secret): Promise<V1Secret> {
    return call(() => this.core.createNamespacedSecret({ namespace, body }));
  }

  /** With `uid`, deletes only that object: a Secret of the same name created since is left alone. */
  deleteSecret(namespace: string, name: string, uid?: string): Promise<unknown> {
    return call(() => this.core.deleteNamespacedSecret({ namespace, name, body: uid ? { preconditions: { uid } } : undefined }));
  }

  private tlsOptions(): Promise<Tls> {
    this.tls ??= (async () => {
      const opts: RequestOptions = {};
      await this.kc.applyToHTTPSOptions(opts);
      return { ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized };
    })();
    return this.tls;
  }

  private async send(request: RequestContext): Promise<ResponseContext> {
    const response = await fetch(request.getUrl(), {
      method: request.getHttpMethod(),
      headers: request.getHeaders(),
      body: request.getBody() as BodyInit | undefined,
      signal: request.getSignal() ?? null,
      tls: await this.tlsOptions(),
    } as RequestInit);
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => (headers[name] = value));
    const data = Buffer.from(await response.arrayBuffer());
    return new ResponseContext(response.status, headers, {
      text: async () => data.toString("utf8"),
      binary: async () => data,
      stream: () => null,
    });
  }

  private async watch<T>(path: string, query: Record<string, string>, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const url = new URL(this.server + path);
    url.searchParams.set("watch", "true");
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const ctx = new RequestContext(url.toString(), "GET");
    await this.kc.applySecurityAuthentication(ctx);
    const response = await fetch(url, { headers: ctx.getHeaders(), signal, tls: await this.tlsOptions() } as RequestInit);
    if (!response.ok || !response.body) throw new KubeError(response.status, statusMessage(response.status, await response.text()));
    const decoder = new TextDecoder();
    let buffered = "";
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
      }
    }
  }
}

/** Turns the generated client's ApiException into a KubeError carrying the server's own message. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiException) throw new KubeError(err.code, statusMessage(err.code, err.body));
    throw err;
  }
}

function statusMessage(code: number, body: unknown): string {
  let message: unknown = body;
  if (typeof body === "string") {
    try {
      message = (JSON.parse(body) as { message?: unknown }).message ?? body;
    } catch {
      message = body;
    }
  } else if (body && typeof body === "object" && "message" in body) {
    message = (body as { message: unknown }).message;
  }
  const text = typeof message === "string" && message.trim() ? message.trim() : "no message";
  return `the Kubernetes API answered ${code}: ${text}`;
}
