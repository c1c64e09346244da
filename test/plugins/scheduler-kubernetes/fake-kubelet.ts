/**
 * A stand-in for the kubelets of a cluster, for the fake API server: it runs
 * each pod created there as a local process, with the environment a kubelet
 * would give its container (envFrom Secrets, then env with secretKeyRef,
 * fieldRef status.podIP and $(VAR) expansion), its own loopback address as
 * pod IP, phases Running and Succeeded/Failed with the exit code, and the
 * process killed when its pod is deleted. stdout is kept as the pod's log.
 */
import type { Subprocess } from "bun";
import type { FakeKubeApi, KubeObject } from "./fake-api.ts";

export class FakeKubelet {
  /** The pods' stdout, by pod name (kubectl logs). */
  readonly logs = new Map<string, string>();
  /** Each pod's environment as its container saw it. */
  readonly envs = new Map<string, Record<string, string>>();
  private readonly procs = new Map<string, Subprocess>();
  private nextIp = 20;

  constructor(
    private readonly api: FakeKubeApi,
    /** What the node gives every container (PATH, HOME...). */
    private readonly nodeEnv: Record<string, string>,
    private readonly cwd: string,
  ) {
    api.kubelet = this;
  }

  created(pod: KubeObject): void {
    const name = pod.metadata.name;
    const ip = `127.0.0.${this.nextIp++}`;
    const container = pod.spec.containers[0];
    let env: Record<string, string>;
    try {
      env = this.containerEnv(pod, ip);
    } catch (err) {
      this.api.setPodStatus(name, { containerStatuses: [{ name: container.name, state: { waiting: { reason: "CreateContainerConfigError", message: (err as Error).message } } }] });
      return;
    }
    this.envs.set(name, env);
    const proc = Bun.spawn(container.command, { cwd: this.cwd, env: { ...this.nodeEnv, ...env }, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
    this.procs.set(name, proc);
    this.api.setPodStatus(name, { phase: "Running", podIP: ip, containerStatuses: [{ name: container.name, state: { running: {} } }] });
    void (async () => {
      const decoder = new TextDecoder();
      const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
      for (let r = await reader.read(); !r.done; r = await reader.read()) this.logs.set(name, (this.logs.get(name) ?? "") + decoder.decode(r.value, { stream: true }));
    })();
    void proc.exited.then((code) => {
      this.procs.delete(name);
      if (!this.api.pod(name)) return;
      const exitCode = proc.signalCode ? 137 : code;
      this.api.setPodStatus(name, { phase: exitCode === 0 ? "Succeeded" : "Failed", containerStatuses: [{ name: container.name, state: { terminated: { exitCode } } }] });
    });
  }

  deleted(pod: KubeObject): void {
    this.procs.get(pod.metadata.name)?.kill("SIGKILL");
  }

  /** A node lost with its pod: the process dies at once (the pod object is left to fail). */
  crash(name: string): void {
    this.procs.get(name)?.kill("SIGKILL");
  }

  stop(): void {
    for (const p of this.procs.values()) p.kill("SIGKILL");
  }

  private secretData(name: string): Record<string, string> {
    const secret = this.api.secrets().find((s) => s.metadata.name === name);
    if (!secret) throw new Error(`secret "${name}" not found`);
    return Object.fromEntries(Object.entries((secret.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]));
  }

  private containerEnv(pod: KubeObject, ip: string): Record<string, string> {
    const container = pod.spec.containers[0];
    const env: Record<string, string> = {};
    for (const from of container.envFrom ?? []) Object.assign(env, this.secretData(from.secretRef.name));
    const fields: Record<string, string | undefined> = { "status.podIP": ip, "metadata.name": pod.metadata.name, "metadata.namespace": pod.metadata.namespace };
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref: string, n: string) => env[n] ?? ref);
      else if (e.valueFrom?.fieldRef) {
        const v = fields[e.valueFrom.fieldRef.fieldPath];
        if (v === undefined) throw new Error(`the fake kubelet knows no field ${e.valueFrom.fieldRef.fieldPath}`);
        env[e.name] = v;
      } else if (e.valueFrom?.secretKeyRef) {
        const v = this.secretData(e.valueFrom.secretKeyRef.name)[e.valueFrom.secretKeyRef.key];
        if (v === undefined) throw new Error(`couldn't find key ${e.valueFrom.secretKeyRef.key} in Secret ${e.valueFrom.secretKeyRef.name}`);
        env[e.name] = v;
      } else throw new Error(`the fake kubelet cannot fill ${e.name}`);
    }
    return env;
  }
}
