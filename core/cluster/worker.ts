/**
 * A worker process of a job spread over processes (or machines): it listens
 * for its peers' data, registers with the job manager, plans the same pipeline,
 * runs the subtasks placed on it, and does what the manager asks (barriers,
 * commits, exit). It exits when the manager goes: a worker never outlives its job.
 */
import { hostname } from "node:os";
import { createPreviewWriter } from "../cli/preview.ts";
import { checkpointStoreFor, Job, type JobOptions } from "../dataflow/job.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { planSql, type PlanContext } from "../sql/index.ts";
import { StateBackend } from "../state/backend.ts";
import { Fence } from "../checkpoint/fence.ts";
import { Exchange, splitAddress } from "./exchange.ts";
import { encodeFrame, FrameKind, FrameReader, FrameWriter } from "./frames.ts";
import type { Assignment, ManagerMessage, WorkerMessage } from "./protocol.ts";
import { clientTls, clusterTlsFromEnv, type ClusterTls } from "./tls.ts";
import { WorkerBarrierPort } from "./worker-port.ts";

export interface WorkerOptions {
  /** The job manager's control address. */
  manager: string;
  secret: string;
  /** The run of the job this worker was started for; null for a worker that registers on its own (it takes the manager's). */
  epoch: number | null;
  /** Set for workers the manager started; external workers get theirs from the manager. */
  index: number | null;
  /** Where to listen for peers' data: host:port (port 0 picks one). */
  listen: string;
  /** TLS for TCP connections to the manager and peers (default: RUNNEL_CLUSTER_TLS_* of this process's environment). */
  tls?: ClusterTls | null;
  registry: () => Promise<PluginRegistry>;
  /**
   * Registers what the pipeline needs beyond the registry's plugins (a control plane's UDFs) and
   * says how to plan and run it (connection profiles, the files it may use), as the job manager's host does.
   */
  prepare?: (registry: PluginRegistry, assignment: Assignment) => Promise<{ context?: PlanContext; job?: Partial<JobOptions> } | void>;
  /** Where a bare SELECT's rows go when its sink runs here (default: this process's stdout). */
  preview?: JobOptions["preview"];
  log?: (message: string) => void;
}

/**
 * Where a worker started by a scheduler finds its job manager: the environment
 * the manager gave it (RUNNEL_MANAGER, RUNNEL_JOB_SECRET, RUNNEL_EPOCH,
 * RUNNEL_WORKER_INDEX, RUNNEL_WORKER_LISTEN). Exits with 2, saying who starts
 * such a process (`startedBy`), when one is missing.
 */
export function workerAddressFromEnv(startedBy: string): Pick<WorkerOptions, "manager" | "secret" | "epoch" | "index" | "listen"> {
  const env = (name: string) => {
    const v = process.env[name];
    if (!v) {
      console.error(`${name} is not set: ${startedBy}`);
      process.exit(2);
    }
    return v;
  };
  return {
    manager: env("RUNNEL_MANAGER"),
    secret: env("RUNNEL_JOB_SECRET"),
    epoch: Number(env("RUNNEL_EPOCH")),
    index: process.env.RUNNEL_WORKER_INDEX ? Number(process.env.RUNNEL_WORKER_INDEX) : null,
    listen: process.env.RUNNEL_WORKER_LISTEN ?? "127.0.0.1:0",
  };
}

export async function runWorker(options: WorkerOptions): Promise<number> {
  const log = options.log ?? ((m: string) => console.error(m));
  const tls = options.tls === undefined ? clusterTlsFromEnv() : options.tls;
  const exchange = new Exchange({ secret: options.secret, epoch: options.epoch ?? -1, workerIndex: options.index ?? -1 }, tls);
  const address = exchange.listen(options.listen);
  let writer: FrameWriter | null = null;
  const send = (msg: WorkerMessage) => writer?.write(encodeFrame(FrameKind.Control, 0, msg));

  let job: Job | null = null;
  let reportMetrics = () => {};
  let port: WorkerBarrierPort | null = null;
  let exitCode: number | null = null;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const finish = (code: number) => {
    if (exitCode !== null) return;
    exitCode = code;
    resolveExit(code);
  };
  const fail = (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    send({ type: "failed", error: message });
    job?.abortNow();
    // Give the message a moment to leave before the process goes.
    setTimeout(() => finish(1), 100);
  };
  exchange.failure = (err) => fail(err);

  const onMessage = async (msg: ManagerMessage) => {
    if (process.env.RUNNEL_DEBUG_CLUSTER) log(`[worker] got ${msg.type}`);
    switch (msg.type) {
      case "assign":
        try {
          await start(msg.assignment);
        } catch (err) {
          fail(err);
        }
        break;
      case "barrier":
        port?.request(msg.task, { checkpointId: msg.checkpointId, then: msg.then });
        break;
      case "complete":
        port?.complete(msg.checkpointId).catch(fail);
        break;
      case "abort":
        job?.abortNow();
        finish(1);
        break;
      case "exit":
        // The final checkpoint is committed everywhere: now the operators may close (sinks drop their connections).
        await job?.close().catch((err) => log(`[worker] closing the operators failed: ${err instanceof Error ? err.message : String(err)}`));
        finish(0);
        break;
    }
  };

  const start = async (a: Assignment) => {
    if (process.env.RUNNEL_DEBUG_CLUSTER) log(`[worker ${a.index}] assigned`);
    exchange.identity.workerIndex = a.index;
    exchange.identity.epoch = a.epoch;
    const registry = await options.registry();
    const prepared = (await options.prepare?.(registry, a)) ?? {};
    const pipeline = planSql(a.sql, registry, { env: a.plan.env, ...prepared.context });
    // State files are written here, where the subtasks run; the manager only writes manifests.
    const store = checkpointStoreFor(a.job.stateDir, registry);
    const backend = new StateBackend(store, a.job.maxParallelism, undefined);
    port = new WorkerBarrierPort(backend, send, Fence.of(store, a.epoch));
    // Tests of the checkpoint timeout: one worker stops acknowledging barriers when told (heartbeats and data go on).
    if (process.env.RUNNEL_DEBUG_STALL_ON_SIGUSR2) process.on("SIGUSR2", () => void (port!.stalled = true));
    job = new Job(pipeline, registry, {
      ...prepared.job,
      ...a.job,
      checkpointIntervalMs: 0,
      restoreCheckpointId: a.restoredCheckpointId,
      preview: options.preview ?? ((fields, updating) => createPreviewWriter(registry, fields, updating, process.stdout)),
      log: { info: (m) => log(`[worker ${a.index}] ${m}`), warn: (m) => log(`[worker ${a.index}] ${m}`) },
      cluster: { workerIndex: a.index, placement: a.placement, peers: a.peers, exchange, port },
    });
    job.run().then(
      () => {
        // The last counts, so the manager's totals are exact (heartbeats are up to 250 ms old).
        reportMetrics();
        send({ type: "done" });
      },
      (err) => fail(err),
    );
    if (process.env.RUNNEL_DEBUG_CLUSTER) log(`[worker ${a.index}] starting`);
    await job.started;
    if (process.env.RUNNEL_DEBUG_CLUSTER) log(`[worker ${a.index}] started`);
    send({ type: "ready" });

  };

  const reader = new FrameReader((kind, _channel, body) => {
    if (kind === FrameKind.Control) void onMessage(body as ManagerMessage);
  });
  const [host, managerPort] = splitAddress(options.manager);
  const handlers = {
    data: (_s: unknown, chunk: Uint8Array) => {
      try {
        reader.push(chunk);
      } catch (err) {
        fail(err);
      }
    },
    drain: () => writer?.drain(),
    close: () => {
      // The manager is gone: so is this job.
      if (exitCode === null) {
        log(`worker: the job manager at ${options.manager} went away; stopping`);
        job?.abortNow();
        finish(1);
      }
    },
    error: () => {},
  };
  const socket =
    managerPort === null
      ? await Bun.connect({ unix: host, socket: handlers as never })
      : await Bun.connect({ hostname: host, port: managerPort, socket: handlers as never, ...(tls ? { tls: clientTls(tls) } : {}) });
  writer = new FrameWriter(socket as never);
  send({ type: "hello", secret: options.secret, epoch: options.epoch, index: options.index, exchange: address, host: hostname(), pid: process.pid });
  // Metrics every 250 ms are also the heartbeat: the manager fails a worker that goes silent.
  reportMetrics = () => {
    const ops = (job?.metrics.operators ?? []).map((m) => ({
      operatorId: m.operatorId,
      operatorName: m.operatorName,
      subtaskIndex: m.subtaskIndex,
      recordsIn: m.recordsIn,
      recordsOut: m.recordsOut,
      batchesIn: m.batchesIn,
      bytesIn: m.bytesIn,
      bytesOut: m.bytesOut,
      watermark: m.watermark,
      idle: m.idle,
      lateDropped: m.lateDropped,
      badRecords: m.badRecords,
      backpressureMs: m.backpressureMs,
      stateEntries: m.stateEntries,
      stateBytes: m.stateBytes,
      longestGapMs: m.longestGapMs,
      connector: m.connector,
    }));
    const cpu = process.cpuUsage();
    send({ type: "metrics", operators: ops, rssBytes: process.memoryUsage().rss, cpuMicros: cpu.user + cpu.system });
  };
  const heartbeat = setInterval(reportMetrics, 250);
  const code = await exited;
  clearInterval(heartbeat);
  exchange.close();
  socket.end();
  return code;
}
