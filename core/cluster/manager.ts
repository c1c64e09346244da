/**
 * The job manager of a job spread over worker processes (or machines): it
 * plans the job, places each subtask on a worker (subtask i of every stage on
 * worker i mod W, so forward edges stay inside a worker and only shuffles cross
 * the network), starts the workers through a scheduler, runs the checkpoint
 * coordinator and writes the manifests. When any worker dies, stops answering,
 * or reports a failure, the whole job is restored from its last completed
 * checkpoint in a new epoch, as Flink and Arroyo do.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { TCPSocketListener, Socket } from "bun";
import { CheckpointCoordinator, type BarrierThen, type CompletedCheckpoint } from "../checkpoint/coordinator.ts";
import type { CheckpointData } from "../checkpoint/store.ts";
import { Fence, FencedError } from "../checkpoint/fence.ts";
import { Job, JobError, type JobOptions } from "../dataflow/job.ts";
import type { PluginLogger, SchedulerDefinition, WorkerProcess } from "../plugin-api/index.ts";
import type { LogicalPipeline } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { JobMetrics, OperatorMetrics } from "../runtime/metrics.ts";
import { StateBackend } from "../state/backend.ts";
import { DEFAULT_MAX_PARALLELISM } from "../state/key-groups.ts";
import { encodeFrame, FrameKind, FrameReader, FrameWriter } from "./frames.ts";
import { CLUSTER_TLS_VARIABLES, clusterTlsFromEnv, serverTls, type ClusterTls } from "./tls.ts";
import type { Assignment, ManagerMessage, OperatorMetricsReport, WorkerMessage } from "./protocol.ts";

export interface ManagerOptions {
  /** The pipeline's SQL and planning context, sent to workers to plan the same graph. */
  sql: string;
  plan?: Assignment["plan"];
  workers: number;
  scheduler: SchedulerDefinition;
  schedulerOptions?: Record<string, unknown>;
  /** Control address workers connect to (default 127.0.0.1:0). */
  listen?: string;
  /** Exchange address each worker the scheduler starts listens on (default 127.0.0.1:0). */
  workerListen?: string;
  /** The command that starts a worker (the scheduler adds the environment). */
  workerCommand: string[];
  /** Restores of the whole job after failures before it fails (default 3). */
  maxRestarts?: number;
  /** A worker silent this long is failed (default 5 s). */
  heartbeatTimeoutMs?: number;
  /** The job's secret for workers that register on their own (external scheduler); else a new one per run. */
  secret?: string;
  /** TLS for the control connections and, through the workers' environment, the exchange (default: RUNNEL_CLUSTER_TLS_*). */
  tls?: ClusterTls | null;
}

interface WorkerState {
  index: number;
  socket: Socket<unknown>;
  writer: FrameWriter;
  exchange: string;
  host: string;
  pid: number;
  lastHeard: number;
  ready: boolean;
  done: boolean;
  process: WorkerProcess | null;
  cpuMicros: number;
  rssBytes: number;
}

class AttemptFailed extends Error {}

export class JobManager {
  readonly metrics = new JobMetrics();
  readonly graph: Job["graph"];
  private readonly plan: Job;
  private readonly log: PluginLogger;
  private stopRequested = false;
  private coordinator: CheckpointCoordinator | null = null;
  private restored: CheckpointData | undefined;
  private resolveStarted!: () => void;
  readonly started = new Promise<void>((resolve) => (this.resolveStarted = resolve));
  /** Where each subtask runs now: "stage/index" → worker, host, pid. */
  placement: { task: string; worker: number; host: string; pid: number }[] = [];
  workerStats: { index: number; host: string; pid: number; rssBytes: number; cpuMicros: number }[] = [];
  restarts = 0;
  constructor(
    private readonly pipeline: LogicalPipeline,
    private readonly registry: PluginRegistry,
    private readonly options: JobOptions,
    private readonly manager: ManagerOptions,
  ) {
    this.plan = new Job(pipeline, registry, options);
    this.graph = this.plan.graph;
    this.log = options.log ?? { info: (m) => console.error(m), warn: (m) => console.error(m) };
  }

  get restoredCheckpoint(): number | null {
    return this.restored?.checkpointId ?? null;
  }

  get lastCheckpoint(): CompletedCheckpoint | null {
    return this.metrics.lastCheckpoint;
  }

  stop(): void {
    this.stopRequested = true;
    // Before every worker runs its subtasks a barrier would reach nobody; the attempt asks once they do.
    if (this.running) this.coordinator?.requestStop();
  }

  checkpoint(): void {
    if (this.running) this.coordinator?.trigger("continue");
  }

  /** Every worker of the current attempt runs its subtasks. */
  private running = false;

  /** Runs to the end of bounded input or a stop, restoring the whole job after a failure. */
  async run(): Promise<BarrierThen> {
    if (this.options.ignoreState) await this.plan.store.clear();
    await this.plan.preflight();
    const maxRestarts = this.manager.maxRestarts ?? 3;
    for (;;) {
      try {
        return await this.attempt();
      } catch (err) {
        if (!(err instanceof AttemptFailed) || this.stopRequested || this.restarts >= maxRestarts) {
          throw err instanceof AttemptFailed ? new JobError(`${err.message}; the job failed after ${this.restarts} restore(s)`) : err;
        }
        this.restarts++;
        const delay = Math.min(5000, 250 * 2 ** (this.restarts - 1));
        this.log.warn(`${err.message}; restoring the job from its last checkpoint (restore ${this.restarts} of at most ${maxRestarts}) in ${delay} ms`);
        await Bun.sleep(delay);
      }
    }
  }

  private async attempt(): Promise<BarrierThen> {
    // Claim the run's epoch before choosing what to restore: a run this one replaces is fenced out from here on.
    const fence = await Fence.claim(this.plan.store);
    const epoch = fence.epoch;
    this.restored = await this.plan.restorable();
    await fence.restoring(this.restored?.checkpointId ?? null);
    const secret = this.manager.secret ?? randomBytes(24).toString("base64url");
    const W = Math.max(1, this.manager.workers);
    const workers = new Map<number, WorkerState>();
    let failWith: ((err: Error) => void) | null = null;
    const failed = new Promise<never>((_, reject) => (failWith = (err) => reject(err)));
    failed.catch(() => {});
    const fail = (reason: string) => failWith?.(new AttemptFailed(reason));
    let readyAll!: () => void;
    const allReady = new Promise<void>((resolve) => (readyAll = resolve));
    let doneAll!: () => void;
    const allDone = new Promise<void>((resolve) => (doneAll = resolve));
    const committed = new Map<string, () => void>();
    let nextIndex = 0;

    const send = (w: WorkerState, msg: ManagerMessage) => {
      if (!w.writer.closed) w.writer.write(encodeFrame(FrameKind.Control, 0, msg));
    };

    const onMessage = (s: Socket<unknown>, msg: WorkerMessage, state: { worker: WorkerState | null }) => {
      if (!state.worker) {
        // A worker this run started knows its epoch; one registering on its own (null) takes it from the assignment.
        if (msg.type !== "hello" || !sameSecret(msg.secret, secret) || (msg.epoch !== null && msg.epoch !== epoch)) {
          s.end();
          return;
        }
        const index = msg.index ?? nextIndex;
        if (workers.has(index) || index >= W) {
          s.end();
          return;
        }
        nextIndex = Math.max(nextIndex, index + 1);
        const w: WorkerState = {
          index, socket: s, writer: (s as any).__writer, exchange: msg.exchange, host: msg.host, pid: msg.pid, lastHeard: performance.now(),
          ready: false, done: false, process: null, cpuMicros: 0, rssBytes: 0,
        };
        w.process = processes.get(index) ?? null;
        state.worker = w;
        workers.set(index, w);
        if (workers.size === W) assign();
        return;
      }
      const w = state.worker;
      w.lastHeard = performance.now();
      switch (msg.type) {
        case "ready":
          w.ready = true;
          if ([...workers.values()].every((x) => x.ready)) readyAll();
          break;
        case "ack":
          this.coordinator?.ackWritten(msg.task, msg.checkpointId, Promise.resolve(msg.parts.map((p) => ({ operatorId: p.operatorId, index: p.index, written: { part: p.part, bytes: p.bytes } }))));
          break;
        case "ack-failed":
          this.coordinator?.ackWritten(msg.task, msg.checkpointId, Promise.reject(new Error(`worker ${w.index}: ${msg.error}`)));
          break;
        case "committed":
          committed.get(`${w.index}/${msg.checkpointId}`)?.();
          break;
        case "source-finished":
          this.coordinator?.sourceFinished(msg.task);
          break;
        case "metrics":
          this.report(w.index, msg.operators);
          w.cpuMicros = msg.cpuMicros;
          w.rssBytes = msg.rssBytes;
          break;
        case "failed":
          fail(`worker ${w.index} (pid ${w.pid} on ${w.host}) failed: ${msg.error}`);
          break;
        case "done":
          w.done = true;
          if ([...workers.values()].every((x) => x.done)) doneAll();
          break;
      }
    };

    const tls = this.manager.tls === undefined ? clusterTlsFromEnv() : this.manager.tls;
    const listener: TCPSocketListener<{ reader: FrameReader; worker: WorkerState | null }> = Bun.listen({
      hostname: splitHost(this.manager.listen ?? "127.0.0.1:0")[0],
      port: splitHost(this.manager.listen ?? "127.0.0.1:0")[1],
      ...(tls ? { tls: serverTls(tls) } : {}),
      socket: {
        open: (s) => {
          const state = { worker: null as WorkerState | null };
          (s as any).__writer = new FrameWriter(s as never);
          s.data = {
            worker: null,
            reader: new FrameReader((kind, _c, body) => {
              if (kind === FrameKind.Control) onMessage(s as never, body as WorkerMessage, state);
              s.data.worker = state.worker;
            }, 64 * 1024 * 1024),
          };
        },
        data: (s, chunk) => {
          try {
            s.data.reader.push(chunk);
          } catch {
            s.end();
          }
        },
        drain: (s) => (s as any).__writer.drain(),
        close: (s) => {
          const w = s.data?.worker;
          if (w && !w.done) fail(`worker ${w.index} (pid ${w.pid} on ${w.host}) disconnected`);
        },
      },
    });
    const controlAddress = `${listener.hostname}:${listener.port}`;

    const stages = this.graph.stages;
    const placement: Record<string, number[]> = {};
    for (const s of stages) placement[s.id] = Array.from({ length: s.parallelism }, (_, i) => (s.parallelism === 1 ? 0 : i % W));
    const taskOwner = new Map<string, number>();
    for (const s of stages) for (let i = 0; i < s.parallelism; i++) taskOwner.set(`${s.id}/${i}`, placement[s.id]![i]!);

    // The coordinator exists before any worker runs: a source may finish (or a barrier be acknowledged) at once.
    const tasks = [...taskOwner.keys()];
    const sources = stages.filter((s) => s.nodes[0]!.kind === "source").flatMap((s) => Array.from({ length: s.parallelism }, (_, i) => `${s.id}/${i}`));
    const maxParallelism = this.restored?.maxParallelism ?? this.options.maxParallelism ?? DEFAULT_MAX_PARALLELISM;
    const backend = new StateBackend(this.plan.store, maxParallelism, this.restored);
    const coordinator = new CheckpointCoordinator(
      this.plan.store,
      backend,
      { pipeline: this.graph.fingerprint, labels: this.plan.stateLabels() },
      tasks,
      sources,
      this.restored?.checkpointId ?? 0,
      {
        onCompleted: (cp) => {
          this.metrics.lastCheckpoint = cp;
          this.metrics.checkpointsCompleted++;
        },
        onFailed: (id, reason) => {
          this.metrics.checkpointsFailed++;
          this.metrics.lastCheckpointFailure = { id, at: Date.now(), reason };
          this.log.warn(`${reason}; the job goes on and the next checkpoint writes what this one would have`);
        },
      },
      { timeoutMs: this.options.checkpointTimeoutMs ?? 600_000, tolerableFailures: this.options.tolerableCheckpointFailures ?? 3 },
      (task, req) => send(workers.get(taskOwner.get(task)!)!, { type: "barrier", task, checkpointId: req.checkpointId, then: req.then }),
      fence,
    );
    this.coordinator = coordinator;
    // One completion message per worker and checkpoint; each of its tasks waits for the same answer.
    const pending = new Map<string, Promise<void>>();
    for (const task of tasks) {
      const owner = taskOwner.get(task)!;
      coordinator.onComplete(task, (id) => {
        const key = `${owner}/${id}`;
        let p = pending.get(key);
        if (!p) {
          p = new Promise<void>((resolve) => committed.set(key, resolve));
          pending.set(key, p);
          send(workers.get(owner)!, { type: "complete", checkpointId: id });
        }
        return Promise.race([p, failed]);
      });
    }

    const assign = () => {
      const peers = Array.from({ length: W }, (_, i) => workers.get(i)!.exchange);
      this.placement = [...taskOwner].map(([task, worker]) => ({ task, worker, host: workers.get(worker)!.host, pid: workers.get(worker)!.pid }));
      for (const w of workers.values()) {
        send(w, {
          type: "assign",
          assignment: {
            epoch,
            index: w.index,
            sql: this.manager.sql,
            plan: this.manager.plan ?? {},
            job: {
              jobId: this.options.jobId ?? "local",
              parallelism: this.options.parallelism,
              stateDir: this.options.stateDir,
              maxParallelism: this.restored?.maxParallelism ?? this.options.maxParallelism ?? DEFAULT_MAX_PARALLELISM,
              stateBackend: this.options.stateBackend,
              stateCacheBytes: this.options.stateCacheBytes,
              channelCapacity: this.options.channelCapacity,
              combine: this.options.combine,
              // The plan's start, the same in every worker of every epoch: their sources agree on "now".
              startTimeMicros: this.plan.startTimeMicros,
            },
            restoredCheckpointId: this.restored?.checkpointId ?? null,
            placement,
            peers,
          },
        });
      }
    };

    // Start the workers (an external scheduler starts nothing: workers register on their own).
    const processes = new Map<number, WorkerProcess>();
    const startWorkers = async () => {
      for (let i = 0; i < W; i++) {
        const proc = await this.manager.scheduler.start(
          {
            index: i,
            command: this.manager.workerCommand,
            env: {
              RUNNEL_MANAGER: controlAddress,
              RUNNEL_JOB_SECRET: secret,
              RUNNEL_EPOCH: String(epoch),
              RUNNEL_WORKER_INDEX: String(i),
              RUNNEL_WORKER_LISTEN: this.manager.workerListen ?? "127.0.0.1:0",
              // The same certificate files, where the scheduler runs workers (a pod mounts them at the same paths).
              ...Object.fromEntries(CLUSTER_TLS_VARIABLES.filter((v) => process.env[v]).map((v) => [v, process.env[v]!])),
            },
          },
          { jobId: this.options.jobId ?? "local", log: this.log, options: this.manager.schedulerOptions ?? {}, stateDir: this.options.stateDir },
        );
        if (proc) {
          processes.set(i, proc);
          proc.exited.then((code) => {
            const w = workers.get(i);
            if (!w?.done) fail(`worker ${i} (${proc.name}) exited with ${code === null ? "a signal" : `code ${code}`}`);
          });
        }
      }
      if (processes.size === 0) this.log.info(`waiting for ${W} worker(s) to register at ${controlAddress} with the job secret (runnel worker --manager ${controlAddress})`);
    };

    // Silent workers (a stopped process, a lost machine) fail the attempt.
    const heartbeatTimeout = this.manager.heartbeatTimeoutMs ?? 5000;
    const watchdog = setInterval(() => {
      const now = performance.now();
      for (const w of workers.values()) {
        if (!w.done && now - w.lastHeard > heartbeatTimeout) fail(`worker ${w.index} (pid ${w.pid} on ${w.host}) stopped answering for ${Math.round((now - w.lastHeard) / 1000)} s`);
      }
    }, 250);

    // Superseded by a newer run (this manager was paused or partitioned): stop the workers, restore nothing.
    const unwatch = fence.watch(1000, (err) => failWith?.(err));

    const teardown = async (killAll: boolean) => {
      clearInterval(watchdog);
      unwatch();
      this.coordinator?.stopTimer();
      for (const w of workers.values()) send(w, killAll ? { type: "abort", reason: "the job is being restored" } : { type: "exit" });
      if (killAll) for (const p of processes.values()) p.kill();
      await Promise.race([Promise.all([...processes.values()].map((p) => p.exited)), Bun.sleep(killAll ? 2000 : 10_000)]);
      for (const p of processes.values()) p.kill();
      listener.stop(true);
    };

    try {
      // Inside the try: a scheduler that fails half way still has its started workers torn down.
      await startWorkers();
      const readyTimer = setTimeout(() => fail(`the workers did not all become ready within 60 s (${workers.size} of ${W} registered)`), 60_000);
      await Promise.race([allReady, failed]).finally(() => clearTimeout(readyTimer));
      this.running = true;
      this.resolveStarted();
      if (this.stopRequested) coordinator.requestStop();
      coordinator.startPeriodic(this.options.checkpointIntervalMs);
      // Too many failed checkpoints in a row (a worker that never acknowledges a barrier) or a failed commit:
      // restore the whole job, as after a worker failure; a run fenced out by a newer one only stops.
      const checkpointed = coordinator.done.catch((err) => {
        throw err instanceof FencedError ? err : new AttemptFailed(err instanceof Error ? err.message : String(err));
      });
      const then = await Promise.race([checkpointed, failed]);
      await Promise.race([allDone, failed]);
      await teardown(false);
      return then;
    } catch (err) {
      await teardown(true);
      if (err instanceof AttemptFailed) throw err;
      throw err;
    } finally {
      this.running = false;
      this.coordinator = null;
    }
  }

  /** Keeps each worker's latest operator metrics, for progress and the control plane. */
  private readonly reports = new Map<number, OperatorMetricsReport[]>();

  private report(worker: number, ops: OperatorMetricsReport[]): void {
    this.reports.set(worker, ops);
    this.metrics.operators.length = 0;
    for (const list of this.reports.values()) {
      for (const r of list) {
        const m = new OperatorMetrics(r.operatorId, r.operatorName, r.subtaskIndex);
        Object.assign(m, r);
        m.worker = worker;
        this.metrics.operators.push(m);
      }
    }
  }
}

function sameSecret(a: unknown, b: string): boolean {
  if (typeof a !== "string") return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function splitHost(address: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) throw new Error(`'${address}' is not host:port`);
  return [m[1]!, Number(m[2])];
}
