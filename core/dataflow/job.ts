/**
 * A running pipeline: builds subtasks and channels from the physical graph,
 * restores the latest checkpoint from the state directory, runs until the input
 * ends or a stop is requested, and reports failures with their cause.
 */
import { CheckpointCoordinator, type BarrierPort, type BarrierThen } from "../checkpoint/coordinator.ts";
import { Fence } from "../checkpoint/fence.ts";
import type { Exchange } from "../cluster/exchange.ts";
import { LocalCheckpointStore, ObjectCheckpointStore, storageScheme, type CheckpointData, type CheckpointStore } from "../checkpoint/store.ts";
import { compileExpr, compileMap } from "../expr/index.ts";
import { accumulatorFor, filtered, FILTERED_OUT, valuesPerRow } from "../operators/accumulators.ts";
import { AsyncUdfOperator } from "../operators/async-udf.ts";
import { UnnestOperator } from "../operators/unnest.ts";
import { DeduplicateOperator } from "../operators/deduplicate.ts";
import { UpdatingTopNOperator } from "../operators/updating-top-n.ts";
import { UpdatingWindowFunctionOperator, WindowFunctionOperator, type WindowFn, type WindowFunctionSpec } from "../operators/window-function.ts";
import { ChangelogNormalize } from "../operators/changelog.ts";
import { UpdatingJoin, WindowJoin, type JoinSpec } from "../operators/join.ts";
import { MapOperator } from "../operators/map.ts";
import { LookupJoinOperator } from "../operators/lookup-join.ts";
import type { Operator, OperatorContext } from "../operators/operator.ts";
import { SinkOperator } from "../operators/sink.ts";
import { UpdatingAggregate } from "../operators/updating-aggregate.ts";
import { restoredWindowWatermark, SessionWindowAggregate, SlidingWindowAggregate, type AggregateSpec, type RowFn } from "../operators/window-aggregate.ts";
import { combinable, SessionCombiner, WindowCombiner } from "../operators/window-combine.ts";
import { RankPrefilter } from "../operators/rank-prefilter.ts";
import { ROW_CHANGE, RowOp, type ChangeRow, type Deserializer, type Field, type FileAccess, type PluginLogger, type Row, type Serializer, type SinkWriter, type SourceContext, type SourceReader } from "../plugin-api/index.ts";
import type { Expr } from "../expr/expr.ts";
import type { AggregateCall, LogicalPipeline, PlanNode, TableDef } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { Channel, InputGate, type ChannelSink } from "../runtime/channel.ts";
import { OperatorChain, type ChainedOperator } from "../runtime/chain.ts";
import { EdgeEmitter, ForwardEdge, HashEdge, RoundRobinEdge, keyHasherOf, type KeyHasher, type OutputEdge } from "../runtime/edges.ts";
import { connectorMetrics, JobMetrics, OperatorMetrics } from "../runtime/metrics.ts";
import { OperatorSubtask } from "../runtime/operator-subtask.ts";
import { SourceSubtask, type RowPreparer, type SourcePosition } from "../runtime/source-subtask.ts";
import { StateBackend } from "../state/backend.ts";
import { DEFAULT_MAX_PARALLELISM } from "../state/key-groups.ts";
import { CacheBudget, scratchDir } from "../state/disk-table.ts";
import { OperatorState, type DiskStateOptions } from "../state/operator-state.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { incompatibility, stateIdentities, type OperatorIdentity } from "./fingerprint.ts";
import { buildGraph, type PhysicalGraph, type PhysicalNode, type Stage } from "./graph.ts";

/** How often a running job checks that no newer run took over (core/checkpoint/fence.ts). */
const FENCE_WATCH_MS = 1000;

export interface JobOptions {
  parallelism: number;
  stateDir: string;
  checkpointIntervalMs: number;
  /** Start from scratch: remove the checkpoints in the state directory first. */
  ignoreState?: boolean;
  jobId?: string;
  /** Where a bare SELECT's rows go (the CLI prints them, the control plane streams them). */
  preview?: (fields: Field[], updating: boolean) => SinkWriter;
  log?: PluginLogger;
  channelCapacity?: number;
  /** Key groups of keyed state, the highest parallelism the job's state can be restored at (default 128). */
  maxParallelism?: number;
  /** Where keyed tables live: in memory (default), or on local disk with a cache of `stateCacheBytes`. */
  stateBackend?: "memory" | "disk";
  /** Memory for the disk backend's cache (default 256 MiB). */
  stateCacheBytes?: number;
  /**
   * Set in a worker of a job spread over processes: run only the subtasks placed
   * here, exchange data with the other workers, and take barriers and commits
   * from the job manager.
   */
  cluster?: ClusterRole;
  /** Restore this checkpoint (a job manager decides) rather than the latest; null: none. */
  restoreCheckpointId?: number | null;
  /** A checkpoint not durable in this time is abandoned (default 10 minutes). */
  checkpointTimeoutMs?: number;
  /** Consecutive abandoned checkpoints tolerated before the job fails (default 3). */
  tolerableCheckpointFailures?: number;
  /** Local files the connectors may use; absent, any (the CLI). */
  files?: FileAccess;
  /**
   * The wall clock this run of the job started at (µs since the epoch), the same
   * for every subtask and worker process; default: when this Job is made. A job
   * manager hands its own to its workers.
   */
  startTimeMicros?: number;
  /** Pre-aggregate rows before the shuffle into window aggregates at parallelism > 1 (default true; core/operators/window-combine.ts). */
  combine?: boolean;
}

/** A failure the user can act on; the CLI prints its message without a stack. */
export class JobError extends Error {
  override name = "JobError";
}

const CHANNEL_CAPACITY = 16;

// Encoded sizes for the byte counters (string length for text, which is bytes for ASCII).
const sizeOf = (data: string | Uint8Array) => (typeof data === "string" ? data.length : data.byteLength);

function countBytesIn(d: Deserializer, metrics: OperatorMetrics): Deserializer {
  return {
    skipsEmptyRecords: d.skipsEmptyRecords,
    prepare: d.prepare?.bind(d),
    deserialize(data) {
      metrics.bytesIn += sizeOf(data);
      return d.deserialize(data);
    },
    deserializeRange: d.deserializeRange
      ? (buf, start, end) => {
          metrics.bytesIn += end - start;
          return d.deserializeRange!(buf, start, end);
        }
      : undefined,
  };
}

function countBytesOut(s: Serializer | undefined, metrics: OperatorMetrics): Serializer | undefined {
  if (!s) return undefined;
  return {
    open: s.open?.bind(s),
    fileHeader: s.fileHeader,
    encodeInto: s.encodeInto
      ? (row, out) => {
          const start = out.length;
          s.encodeInto!(row, out);
          metrics.bytesOut += out.length - start;
        }
      : undefined,
    serialize(row, op, before) {
      const out = s.serialize(row, op, before);
      metrics.bytesOut += sizeOf(out);
      return out;
    },
  };
}

/**
 * A local folder, or a URL (`s3://bucket/prefix`) whose scheme a storage plugin
 * handles. The core knows no object store; plugins bring them.
 */
export function checkpointStoreFor(stateDir: string, registry: PluginRegistry): CheckpointStore {
  const scheme = storageScheme(stateDir);
  if (!scheme) return new LocalCheckpointStore(stateDir.replace(/^file:\/\//i, ""));
  const storage = registry.storage(scheme);
  if (!storage) {
    const known = [...registry.storages.keys()];
    throw new JobError(
      `no storage plugin handles '${scheme}://' (state directory ${stateDir}); ` +
        (known.length ? `available: ${known.map((k) => `${k}://`).join(", ")}, or a local folder` : "use a local folder"),
    );
  }
  return new ObjectCheckpointStore(stateDir, storage.create(stateDir));
}

export interface ClusterRole {
  workerIndex: number;
  /** Stage id → the worker each subtask runs on. */
  placement: Record<string, number[]>;
  /** Worker index → its exchange address. */
  peers: string[];
  exchange: Exchange;
  port: BarrierPort;
}

export class Job {
  readonly graph: PhysicalGraph;
  readonly metrics = new JobMetrics();
  readonly jobId: string;
  /** Node id → the identity its state is stored under. */
  private readonly identities: Record<string, OperatorIdentity>;
  private maxParallelism = DEFAULT_MAX_PARALLELISM;
  private readonly abort = new AbortController();
  readonly store: CheckpointStore;
  /** This run's epoch, when the job runs in one process (core/checkpoint/fence.ts). */
  private fence: Fence | null = null;
  private coordinator!: BarrierPort;
  private local: CheckpointCoordinator | null = null;
  private abortRun: ((err: Error) => void) | null = null;
  private restored: CheckpointData | undefined;
  private chains: OperatorChain[] = [];
  private stopRequested = false;
  private resolveStarted!: () => void;
  /** Resolves once the checkpoint is restored and every subtask is running. */
  readonly started = new Promise<void>((resolve) => (this.resolveStarted = resolve));
  private readonly log: PluginLogger;
  /** JobOptions.startTimeMicros, or when this Job was made: every subtask's sources start their default event times here. */
  readonly startTimeMicros: number;

  constructor(
    private readonly pipeline: LogicalPipeline,
    private readonly registry: PluginRegistry,
    private readonly options: JobOptions,
  ) {
    this.jobId = options.jobId ?? "local";
    this.startTimeMicros = options.startTimeMicros ?? Date.now() * 1000;
    this.log = options.log ?? { info: (m) => console.error(m), warn: (m) => console.error(m) };
    this.graph = buildGraph(pipeline, {
      parallelism: options.parallelism,
      sinkMaxParallelism: (table) => (table?.connector ? registry.connector(table.connector)?.sink?.maxParallelism : undefined),
      combinable: options.combine === false ? undefined : (plan) => combinable(plan.aggregates, registry),
    });
    this.store = checkpointStoreFor(options.stateDir, registry);
    this.identities = stateIdentities(this.graph, registry);
  }

  get restoredCheckpoint(): number | null {
    return this.restored?.checkpointId ?? null;
  }

  get lastCheckpoint() {
    return this.local?.lastCompleted ?? null;
  }

  /** Starts a checkpoint now (when something outside, like the control plane, paces them). */
  checkpoint(): void {
    this.local?.trigger("continue");
  }

  /** Requests a final checkpoint and a stop; `run()` resolves once it is committed. */
  stop(): void {
    this.stopRequested = true;
    this.local?.requestStop();
  }

  /** Fails the run at once (a worker whose job is being restored elsewhere). */
  abortNow(): void {
    this.abortRun?.(new JobError("the job was aborted"));
    this.abort.abort();
  }

  /** Operator state id → label, for checkpoints to name the operators holding state. */
  stateLabels(): Record<string, string> {
    return Object.fromEntries(Object.values(this.identities).map((i) => [i.stateId, i.label]));
  }

  /** The checkpoint to restore (the latest, or the one asked for), refused when the query changed incompatibly. */
  async restorable(): Promise<CheckpointData | undefined> {
    const wanted = this.options.restoreCheckpointId;
    const restored =
      wanted === undefined ? await this.store.latest() : wanted === null ? undefined : (await this.store.retained()).find((c) => c.checkpointId === wanted);
    if (wanted !== undefined && wanted !== null && !restored) throw new JobError(`checkpoint ${wanted} is not in ${this.options.stateDir} any more`);
    if (restored) {
      const mismatch = incompatibility(restored.labels, this.identities);
      if (mismatch) {
        throw new JobError(
          `cannot resume from checkpoint ${restored.checkpointId} in ${this.options.stateDir}: since it was taken, ${mismatch}, ` +
            `so the saved state would be read with another meaning. Start from scratch (runnel run --ignore-state, or restart the ` +
            `pipeline with ignoreState), or use another state directory; run the query as it was to keep its state`,
        );
      }
    }
    return restored;
  }

  /** Runs to the end of bounded input or until stopped: "end" or "stop". */
  async run(): Promise<BarrierThen> {
    const cluster = this.options.cluster;
    if (this.options.ignoreState && !cluster) await this.store.clear();
    // In one process the job is its own manager: it claims this run's epoch (a job manager does in a cluster).
    if (!cluster) this.fence = await Fence.claim(this.store);
    this.restored = await this.restorable();
    await this.fence?.restoring(this.restored?.checkpointId ?? null);
    if (!cluster) await this.preflight();
    const runners = await this.instantiate();
    this.resolveStarted();
    const local = this.local;
    if (local) {
      if (this.stopRequested) local.requestStop();
      local.startPeriodic(this.options.checkpointIntervalMs);
    }
    const failedRef = { failure: null as unknown };
    const failed = new Promise<never>((_, reject) => {
      this.abortRun = reject;
      for (const r of runners) {
        r.catch((err) => {
          failedRef.failure ??= err;
          reject(err);
        });
      }
    });
    failed.catch(() => {});
    const unwatch = this.fence?.watch(FENCE_WATCH_MS, (err) => this.abortRun?.(err));
    let closeLater = false;
    try {
      // In a worker the job manager decides when the job is done; here, when its subtasks are.
      const then = local ? await Promise.race([local.done, failed]) : "end";
      await Promise.race([Promise.all(runners), failed]);
      // In a worker the subtasks end before the job manager has the final checkpoint committed: operators
      // (sinks, with their connections) stay open for that commit, until the manager says exit (close()).
      if (cluster) closeLater = true;
      return then;
    } catch (err) {
      this.abort.abort();
      throw err;
    } finally {
      unwatch?.();
      local?.stopTimer();
      if (!closeLater) await this.closeOperators(failedRef.failure);
    }
  }

  /** In a worker: closes the operators once the final checkpoint is committed (the job manager's exit). */
  async close(): Promise<void> {
    await this.closeOperators(null);
  }

  private async closeOperators(failure: unknown): Promise<void> {
    for (const chain of this.chains.splice(0)) {
      try {
        await chain.close();
      } catch (err) {
        if (!failure) this.log.warn(`closing an operator failed: ${(err as Error).message}`);
      }
    }
  }

  /** Runs the connectors' preflight checks (reachability, timeouts against the checkpoint interval). */
  async preflight(): Promise<void> {
    const roles = new Map<TableDef, Set<"source" | "sink" | "lookup">>();
    for (const node of this.graph.stages.flatMap((s) => s.nodes)) {
      const plan = node.plan;
      const table = plan?.kind === "source" || plan?.kind === "lookup_join" ? plan.table : node.kind === "sink" ? node.sink?.table : null;
      if (!table?.connector) continue;
      const set = roles.get(table) ?? new Set();
      set.add(node.kind === "source" ? "source" : node.kind === "lookup_join" ? "lookup" : "sink");
      roles.set(table, set);
    }
    const settings = { checkpointIntervalMs: this.options.checkpointIntervalMs, parallelism: this.options.parallelism };
    for (const [table, set] of roles) {
      if (table.metadata && set.has("sink")) {
        throw new JobError(`table ${table.name}: its METADATA FROM columns are read-only, so it cannot be written to; insert into a table without them`);
      }
      const connector = this.registry.connector(table.connector!);
      if (!connector?.preflight) continue;
      for (const role of set) {
        try {
          await connector.preflight({ name: table.name, options: table.options, fields: table.fields, role, files: this.options.files, format: table.format, primaryKey: table.primaryKey?.map((i) => table.fields[i]!.name), metadata: table.metadata }, settings);
        } catch (err) {
          throw new JobError(`table ${table.name}: ${(err as Error).message}`);
        }
      }
    }
  }

  private async instantiate(): Promise<Promise<void>[]> {
    const { stages } = this.graph;
    const taskKeys: string[] = [];
    const sourceKeys: string[] = [];
    for (const stage of stages) {
      for (let i = 0; i < stage.parallelism; i++) {
        const key = `${stage.id}/${i}`;
        taskKeys.push(key);
        if (stage.nodes[0]!.kind === "source") sourceKeys.push(key);
      }
    }
    const maxParallelism = this.restored?.maxParallelism ?? this.options.maxParallelism ?? DEFAULT_MAX_PARALLELISM;
    const tooWide = stages.find((s) => s.parallelism > maxParallelism);
    if (tooWide) {
      throw new JobError(
        `parallelism ${tooWide.parallelism} exceeds the job's ${maxParallelism} key groups (its max parallelism${this.restored ? ", fixed when its state was first written" : ""}); ` +
          `run with --parallelism ${maxParallelism} or less${this.restored ? ", or start from scratch with a higher --max-parallelism" : ", or raise --max-parallelism"}`,
      );
    }
    this.maxParallelism = maxParallelism;
    const backend = new StateBackend(this.store, maxParallelism, this.restored);
    const disk: DiskStateOptions | undefined =
      this.options.stateBackend === "disk"
        ? { dir: scratchDir(tmpdir(), this.jobId), budget: new CacheBudget(this.options.stateCacheBytes ?? 256 * 1024 * 1024) }
        : undefined;
    const cluster = this.options.cluster;
    const local = cluster ? null : new CheckpointCoordinator(
      this.store,
      backend,
      { pipeline: this.graph.fingerprint, labels: this.stateLabels() },
      taskKeys,
      sourceKeys,
      this.restored?.checkpointId ?? 0,
      {
        onCompleted: (checkpoint) => {
          this.metrics.lastCheckpoint = checkpoint;
          this.metrics.checkpointsCompleted++;
          for (const m of this.metrics.operators) {
            const bytes = checkpoint.stateBytes[this.identities[m.operatorId]?.stateId ?? ""]?.[m.subtaskIndex];
            if (bytes !== undefined) m.stateBytes = bytes;
          }
        },
        onFailed: (id, reason) => {
          this.metrics.checkpointsFailed++;
          this.metrics.lastCheckpointFailure = { id, at: Date.now(), reason };
          this.log.warn(`${reason}; the job goes on and the next checkpoint writes what this one would have`);
        },
      },
      { timeoutMs: this.options.checkpointTimeoutMs ?? 600_000, tolerableFailures: this.options.tolerableCheckpointFailures ?? 3 },
      undefined,
      this.fence ?? undefined,
    );
    this.local = local;
    this.coordinator = local ?? cluster!.port;
    // In a worker, only the subtasks placed here run; edges to and from other workers go over the network.
    const here = (stage: Stage, i: number) => !cluster || cluster.placement[stage.id]![i] === cluster.workerIndex;
    const ownerOf = (stage: Stage, i: number) => cluster!.placement[stage.id]![i]!;
    let nextChannelId = 0;

    // Channels: for every stage, a matrix [upstream subtask][downstream subtask] per input stage.
    const capacity = this.options.channelCapacity ?? CHANNEL_CAPACITY;
    const inbound = new Map<Stage, Channel[][]>(); // per downstream subtask: its input channels
    const inboundInput = new Map<Stage, number[][]>(); // per downstream subtask: which input each channel feeds
    const outbound = new Map<Stage, OutputEdge[][]>(); // per upstream subtask: its output edges
    for (const stage of stages) {
      inbound.set(stage, Array.from({ length: stage.parallelism }, () => []));
      inboundInput.set(stage, Array.from({ length: stage.parallelism }, () => []));
      outbound.set(stage, Array.from({ length: stage.parallelism }, () => []));
    }
    for (const stage of stages) {
      const head = stage.nodes[0]!;
      // A join reading one stage on both sides (a self-join) gets two edges from it, one per side.
      stage.inputs.forEach((up, input) => {
        const forward = !head.keyed && up.parallelism === stage.parallelism;
        for (let u = 0; u < up.parallelism; u++) {
          const targets = forward ? [u] : Array.from({ length: stage.parallelism }, (_, d) => d);
          // Channel ids follow this walk of the graph, the same in every worker.
          const channels = targets.map((d): ChannelSink | null => {
            const id = nextChannelId++;
            const upHere = here(up, u);
            const downHere = here(stage, d);
            if (downHere) {
              const ch = new Channel(capacity);
              inbound.get(stage)![d]!.push(ch);
              inboundInput.get(stage)![d]!.push(input);
              if (!upHere) cluster!.exchange.registerInbound(id, ownerOf(up, u), ch);
              return upHere ? ch : null;
            }
            if (!upHere) return null;
            const peer = ownerOf(stage, d);
            return cluster!.exchange.outbound(peer, cluster!.peers[peer]!, id, capacity);
          });
          if (!here(up, u)) continue;
          const sinks = channels as ChannelSink[];
          let edge: OutputEdge;
          if (forward) edge = new ForwardEdge(sinks);
          else if (head.keyed) edge = new HashEdge(sinks, this.keyHasher(head, input), maxParallelism);
          else edge = new RoundRobinEdge(sinks);
          outbound.get(up)![u]!.push(edge);
        }
      });
    }

    const runners: Promise<void>[] = [];
    for (const stage of stages) {
      for (let i = 0; i < stage.parallelism; i++) {
        if (!here(stage, i)) continue;
        const key = `${stage.id}/${i}`;
        const head = stage.nodes[0]!;
        const chained = head.kind === "source" ? stage.nodes.slice(1) : stage.nodes;
        const ops: ChainedOperator[] = chained.map((node) => ({
          id: node.id,
          stateId: this.identities[node.id]!.stateId,
          operator: this.operatorFor(node),
          metrics: this.metrics.register(new OperatorMetrics(node.id, node.label, i)),
          keepsStateWhenFinished: node.kind === "sink",
        }));
        const edges = outbound.get(stage)![i]!;
        const chain = new OperatorChain(ops, new EdgeEmitter(edges));
        this.chains.push(chain);
        // Backpressure: time this subtask waited for space downstream, shown on each of its operators.
        const blocked = ops.map((o) => o.metrics);
        const onBlocked = (ms: number) => {
          for (const m of blocked) m.backpressureMs += ms;
        };
        for (const edge of edges) for (const ch of edge.channels) ch.onBlocked = onBlocked;
        const stateOf = async (opId: string) =>
          new OperatorState(opId, i, stage.parallelism, maxParallelism, await backend.restoreFor(opId, i, stage.parallelism), disk);
        await chain.open(async (op) => this.operatorContext(i, stage.parallelism, op.metrics, await stateOf(op.stateId)));
        if (head.kind === "source") {
          const metrics = this.metrics.register(new OperatorMetrics(head.id, head.label, i));
          blocked.push(metrics);
          const { table, reads, notNull, fieldsRead } = head.plan as Extract<PlanNode, { kind: "source" }>;
          const sourceState = await stateOf(this.identities[head.id]!.stateId);
          if (i === 0 && sourceState.restoredFinished) {
            this.log.info(
              `source ${table.name} had read all its input by checkpoint ${this.restored?.checkpointId}: it ends at once, since the operators after it kept no state; ` +
                `to read its input again, run with --ignore-state`,
            );
          }
          const position = sourceState.union<SourcePosition>("position");
          const reader = await this.createReader(table, i, stage.parallelism, metrics, position.restored, { columnsRead: reads, notNull, fieldsRead });
          const task = new SourceSubtask(
            key,
            reader,
            this.rowPreparer(table),
            chain,
            this.coordinator,
            this.identities[head.id]!.stateId,
            metrics,
            table.idleMicros === null ? null : table.idleMicros / 1000,
            sourceState,
            position,
          );
          runners.push(task.run());
        } else {
          const gate = new InputGate(inbound.get(stage)![i]!);
          runners.push(new OperatorSubtask(key, gate, chain, this.coordinator, inboundInput.get(stage)![i]!).run());
        }
      }
    }
    return runners;
  }

  private operatorContext(subtaskIndex: number, parallelism: number, metrics: OperatorMetrics, state: OperatorState): OperatorContext {
    return {
      subtaskIndex,
      parallelism,
      metrics,
      jobId: this.jobId,
      signal: this.abort.signal,
      log: (m) => this.log.info(m),
      state,
    };
  }

  /** Partitions rows for input `input` of `plan`; a join's two inputs hash their keys alike, so matches meet. */
  private keyHasher(node: PhysicalNode, input: number): KeyHasher {
    const plan = node.plan!;
    // Partials carry their key values first: hashed alike, they reach the subtask the rows would have.
    if (node.inputs[input]?.kind === "window_combine") return keyHasherOf(partialKeys(plan));
    let keyExprs: Expr[];
    if (plan.kind === "join") keyExprs = input === 0 ? plan.leftKeys : plan.rightKeys;
    else if (plan.kind === "window_aggregate" || plan.kind === "updating_aggregate" || plan.kind === "changelog") keyExprs = plan.keys;
    else if (plan.kind === "window_function") keyExprs = plan.partition;
    else return () => 0;
    return keyHasherOf(keyExprs.map((k) => compileExpr(k)));
  }

  private aggregateSpec(keys: Expr[], calls: AggregateCall[], updatingInput: boolean): AggregateSpec {
    return {
      keys: keys.map((k) => compileExpr(k) as RowFn),
      args: calls.map((c): RowFn | undefined => {
        let arg: RowFn | undefined;
        if (!c.star) {
          const shape = valuesPerRow(c, this.registry);
          const fns = [...c.args.slice(0, shape.args), ...(c.orderBy ?? []).map((o) => o.expr)].map((a) => compileExpr(a));
          arg = shape.packed ? (row, time) => fns.map((f) => f(row, time)) : (fns[0] as RowFn);
        }
        if (!c.filter) return arg;
        const keep = compileExpr(c.filter);
        const value = arg ?? (() => 1);
        return (row, time) => (keep(row, time) === true ? value(row, time) : FILTERED_OUT);
      }),
      accumulators: calls.map((c) => {
        const acc = accumulatorFor(c, this.registry, updatingInput);
        return c.filter ? filtered(acc) : acc;
      }),
    };
  }

  private windowFunctionSpec(plan: Extract<PlanNode, { kind: "window_function" }>): WindowFunctionSpec {
    const fn = (e: Expr) => compileExpr(e) as RowFn;
    return {
      partition: plan.partition.map(fn),
      order: plan.order.map((o) => ({ key: fn(o.expr), desc: o.desc, nullsFirst: o.nullsFirst, ...(o.expr.kind === "column" ? { column: o.expr.index } : {}) })),
      functions: plan.functions.map((f): WindowFn => {
        switch (f.fn) {
          case "ntile":
            return { kind: "ntile", buckets: f.buckets };
          case "lag":
          case "lead":
            return { kind: f.fn, arg: fn(f.arg), offset: f.offset, fallback: f.fallback && fn(f.fallback), ignoreNulls: !!f.ignoreNulls };
          case "first_value":
          case "last_value":
            return { kind: f.fn, arg: fn(f.arg), frame: f.frame, ignoreNulls: !!f.ignoreNulls };
          case "nth_value":
            return { kind: "nth_value", arg: fn(f.arg), n: f.n, frame: f.frame, ignoreNulls: !!f.ignoreNulls };
          case "aggregate": {
            const spec = this.aggregateSpec([], [f.call], false);
            return { kind: "aggregate", arg: spec.args[0], accumulator: spec.accumulators[0]!, frame: f.frame };
          }
          default:
            return { kind: f.fn };
        }
      }),
      limit: plan.limit,
    };
  }

  private operatorFor(node: PhysicalNode): Operator {
    if (node.kind === "sink") return this.sinkOperator(node);
    if (node.kind === "window_combine") return this.combinerFor(node);
    if (node.kind === "rank_prefilter") return new RankPrefilter(this.windowFunctionSpec(node.plan as Extract<PlanNode, { kind: "window_function" }>), this.restoredWatermarkOf(node.consumers[0]!));
    const plan = node.plan!;
    switch (plan.kind) {
      case "map":
        return new MapOperator(node.label, compileMap(plan.exprs, plan.filter, plan.input.schema.fields.length), plan.input.schema.fields);
      case "window_aggregate": {
        const spec = this.aggregateSpec(plan.keys, plan.aggregates, false);
        const w = plan.window;
        const partials = node.inputs[0]?.kind === "window_combine";
        if (partials) spec.keys = partialKeys(plan);
        if (w.kind === "session") return new SessionWindowAggregate(spec, w.gap, partials);
        return new SlidingWindowAggregate(spec, w.kind === "hop" ? w.slide : w.width, w.width, partials);
      }
      case "updating_aggregate":
        return new UpdatingAggregate(this.aggregateSpec(plan.keys, plan.aggregates, plan.input.updating), plan.ttl, plan.ttlRetract);
      case "window_function": {
        const spec = this.windowFunctionSpec(plan);
        if (plan.deduplicate) return new DeduplicateOperator(spec);
        if (!plan.updating) return new WindowFunctionOperator(spec);
        const width = plan.input.schema.fields.length;
        if (!plan.input.updating && UpdatingTopNOperator.handles(spec, width)) return new UpdatingTopNOperator(spec, width);
        return new UpdatingWindowFunctionOperator(spec, plan.input.updating);
      }
      case "changelog":
        return new ChangelogNormalize(plan.keys.map((k) => compileExpr(k) as RowFn), plan.ttl);
      case "async_udf":
        return new AsyncUdfOperator(
          plan.calls.map((c) => ({ name: c.name, fn: c.fn, args: c.args.map((a) => compileExpr(a) as RowFn), strict: c.strict, options: c.async! })),
          plan.badData,
          plan.input.schema.fields,
        );
      case "union":
        return { name: "union", process: (batch, out) => out.emit(batch) };
      case "unnest":
        return new UnnestOperator(compileExpr(plan.array) as RowFn);
      case "join": {
        const spec: JoinSpec = {
          leftKeys: plan.leftKeys.map((k) => compileExpr(k) as RowFn),
          rightKeys: plan.rightKeys.map((k) => compileExpr(k) as RowFn),
          leftWidth: plan.left.schema.fields.length,
          rightWidth: plan.right.schema.fields.length,
          joinType: plan.joinType,
        };
        if (plan.condition) {
          const cond = compileExpr(plan.condition);
          spec.condition = (row, time) => cond(row, time) === true;
        }
        const w = plan.window;
        if (!w) return new UpdatingJoin(spec, plan.updating, plan.ttl);
        const endOf = (column: number): RowFn => (row) => (row[column] as { end: number }).end;
        return new WindowJoin(spec, [endOf(w.leftColumn), endOf(w.rightColumn)]);
      }
      case "lookup_join":
        return this.lookupJoinOperator(plan);
      case "source":
        throw new Error("a source is not a chained operator");
    }
  }

  /** A window aggregate's combiner, folding rows no watermark of the aggregate (restored or sent since) can have passed. */
  private combinerFor(node: PhysicalNode): Operator {
    const plan = node.plan as Extract<PlanNode, { kind: "window_aggregate" }>;
    const w = plan.window;
    const spec = this.aggregateSpec(plan.keys, plan.aggregates, false);
    const restored = this.restoredWatermarkOf(node.consumers[0]!);
    if (w.kind === "session") return new SessionCombiner(spec, w.gap, restored);
    return new WindowCombiner(spec, w.kind === "hop" ? w.slide : w.width, restored);
  }

  /** The watermark a window operator restores (its old subtasks' furthest), for what sends to it; −∞ when starting afresh. */
  private restoredWatermarkOf(node: PhysicalNode): number {
    const stateId = this.identities[node.id]!.stateId;
    return restoredWindowWatermark(Object.values(this.restored?.operators[stateId] ?? {}).map((sub) => sub.values));
  }

  private lookupJoinOperator(plan: Extract<PlanNode, { kind: "lookup_join" }>): Operator {
    const table = plan.table;
    const connector = this.registry.connector(table.connector!);
    if (!connector?.lookup) throw new JobError(`connector '${table.connector}' cannot be a lookup table (table ${table.name})`);
    return new LookupJoinOperator({
      tableName: table.name,
      joinType: plan.joinType,
      keys: plan.keys.map((k) => compileExpr(k) as RowFn),
      width: table.fields.length,
      cache: table.lookup!,
      open: async (ctx) => {
        return connector.lookup!.create({
          ...this.connectorContext(table, ctx.subtaskIndex, ctx.parallelism, ctx.metrics),
          fields: table.fields,
          keyColumns: table.primaryKey ?? [],
          format: this.deserializerFor(table, ctx.metrics),
          metadata: table.metadata,
        });
      },
    });
  }

  /** What every connector's context holds, for a subtask of an operator reading or writing `table`. */
  private connectorContext(table: TableDef, subtaskIndex: number, parallelism: number, metrics: OperatorMetrics) {
    return {
      options: table.options,
      tableName: table.name,
      jobId: this.jobId,
      subtaskIndex,
      parallelism,
      startTimeMicros: this.startTimeMicros,
      signal: this.abort.signal,
      log: this.log,
      files: this.options.files,
      metrics: connectorMetrics(metrics),
    };
  }

  /** The table's format reading the columns before its METADATA FROM ones (the connector appends those). */
  private deserializerFor(table: TableDef, metrics: OperatorMetrics): Deserializer | undefined {
    if (!table.format) return undefined;
    const format = this.registry.format(table.format.name);
    if (!format?.deserializer) throw new JobError(`format '${table.format.name}' cannot read (table ${table.name})`);
    const formatFields = table.metadata ? table.fields.slice(0, table.fields.length - table.metadata.length) : table.fields;
    // Formats know readers as sources (a lookup reads records as a source does).
    const formatTable = { name: table.name, role: "source" as const, connector: table.connector, connectorOptions: table.options };
    return countBytesIn(format.deserializer({ options: table.format.options, fields: formatFields, table: formatTable }), metrics);
  }

  private sinkOperator(node: PhysicalNode): Operator {
    const target = node.sink!;
    const fields = target.input.schema.fields;
    const updating = target.input.updating;
    const table = target.table;
    if (table === null) {
      const preview = this.options.preview;
      if (!preview) throw new JobError("this pipeline has a bare SELECT but nothing to show its rows in");
      return new SinkOperator(node.label, async () => preview(fields, updating), this.restoredCheckpoint);
    }
    const connector = this.registry.connector(table.connector!);
    if (!connector?.sink) throw new JobError(`connector '${table.connector}' cannot be written to (table ${table.name})`);
    return new SinkOperator(
      node.label,
      async (ctx, restored, restoredAll) => {
        const format = countBytesOut(this.serializerFor(table, fields), ctx.metrics);
        await format?.open?.();
        return connector.sink!.create({
          ...this.connectorContext(table, ctx.subtaskIndex, ctx.parallelism, ctx.metrics),
          fields: table.inferColumns || table.fields.length === 0 ? fields : table.fields,
          format,
          formatName: table.format?.name,
          formatOptions: table.format?.options,
          updating,
          restored: restored ?? undefined,
          restoredAll,
        });
      },
      this.restoredCheckpoint,
    );
  }

  private serializerFor(table: TableDef, fields: Field[]) {
    if (!table.format) return undefined;
    const format = this.registry.format(table.format.name);
    if (!format?.serializer) throw new JobError(`format '${table.format.name}' cannot write (table ${table.name})`);
    const formatTable = { name: table.name, role: "sink" as const, connector: table.connector, connectorOptions: table.options };
    return format.serializer({ options: table.format.options, fields: table.inferColumns ? fields : table.fields, table: formatTable });
  }

  private async createReader(
    table: TableDef,
    subtaskIndex: number,
    parallelism: number,
    metrics: OperatorMetrics,
    restored: SourcePosition[],
    pushed: Pick<SourceContext<unknown>, "columnsRead" | "notNull" | "fieldsRead"> = {},
  ): Promise<SourceReader> {
    const connector = this.registry.connector(table.connector!);
    if (!connector?.source) throw new JobError(`connector '${table.connector}' cannot be read from (table ${table.name})`);
    const positions: Record<string, unknown> = {};
    for (const s of restored) if (s) Object.assign(positions, s.splits);
    return connector.source.create({
      ...this.connectorContext(table, subtaskIndex, parallelism, metrics),
      fields: table.fields,
      format: this.deserializerFor(table, metrics),
      formatName: table.format?.name,
      formatOptions: table.format?.options,
      restored: positions,
      ...pushed,
      metadata: table.metadata,
      badRecord: (position, error) => {
        const message = error instanceof Error ? error.message : String(error);
        if (table.badData === "drop") {
          metrics.badRecords++;
          if (metrics.badRecords <= 3) this.log.warn(`dropped bad record in ${table.name} at ${position}: ${message}`);
          return;
        }
        throw new JobError(
          `bad record in source '${table.name}' at ${position}: ${message}. ` +
            `Fix the input, or set bad_data = 'drop' on the table to skip and count such records.`,
        );
      },
    });
  }

  private rowPreparer(table: TableDef): RowPreparer {
    const virtual = table.virtual.map((v) => compileExpr(v.expr));
    const eventTime = table.eventTime ? compileExpr(table.eventTime) : null;
    const watermark = table.watermark ? compileExpr(table.watermark) : null;
    const DEFAULT_DELAY = 1_000_000;
    const addVirtual = (row: Row) => {
      const len = row.length;
      for (let v = 0; v < virtual.length; v++) row[len + v] = virtual[v]!(row, 0);
    };
    const changes = table.changelog ? this.changeReader(table, addVirtual) : null;
    const prepare: RowPreparer = (rows, nativeTimes) => {
      const n = rows.length;
      const changed = changes?.(rows);
      if (virtual.length > 0) for (let i = 0; i < n; i++) addVirtual(rows[i]!);
      let times: number[];
      if (eventTime) {
        times = new Array(n);
        for (let i = 0; i < n; i++) {
          const t = eventTime(rows[i]!, 0);
          times[i] = typeof t === "number" ? t : Date.now() * 1000;
        }
      } else if (nativeTimes) {
        times = nativeTimes;
      } else {
        const now = Date.now() * 1000;
        times = new Array(n).fill(now);
      }
      const marks = new Array<number>(n);
      if (watermark) {
        for (let i = 0; i < n; i++) {
          const w = watermark(rows[i]!, times[i]!);
          marks[i] = typeof w === "number" ? w : times[i]! - DEFAULT_DELAY;
        }
      } else {
        for (let i = 0; i < n; i++) marks[i] = times[i]! - DEFAULT_DELAY;
      }
      return { batch: changed ? { rows, times, ops: changed.ops, before: changed.before } : { rows, times }, marks };
    };
    const proc = processingTimeColumn(table);
    if (proc === null) return prepare;
    // Processing time: the watermark follows the wall clock (through the WATERMARK expression, on a row read now).
    const width = table.fields.length + table.virtual.length;
    prepare.clockMark = () => {
      const now = Date.now() * 1000;
      if (!watermark) return now - DEFAULT_DELAY;
      const row: Row = new Array(width).fill(null);
      row[proc] = now;
      const w = watermark(row, now);
      return typeof w === "number" ? w : now - DEFAULT_DELAY;
    };
    return prepare;
  }

  /**
   * The ops of a change stream's rows, from the marks its format put on them.
   * A previous row gets the record's METADATA FROM values and generated columns
   * too. Without a PRIMARY KEY the record's `before` is all there is to retract,
   * so an update that lacks it stops the job rather than leave a stale row.
   */
  private changeReader(table: TableDef, addVirtual: (row: Row) => void) {
    const metadata = table.metadata?.length ?? 0;
    const physical = table.fields.length;
    const keyed = !!table.primaryKey;
    return (rows: Row[]) => {
      const ops = new Array<RowOp>(rows.length);
      const before = new Array<Row | null>(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i] as ChangeRow;
        const change = row[ROW_CHANGE];
        before[i] = null;
        if (!change) {
          ops[i] = RowOp.Insert;
          continue;
        }
        ops[i] = change.op;
        if (change.op !== RowOp.Update) continue;
        const old = change.before;
        if (!old) {
          if (keyed) continue;
          throw new JobError(
            `source '${table.name}' read an update without its previous row ("before" is null), so Runnel cannot retract what the row was. ` +
              `Declare the table's PRIMARY KEY (a, ...) so Runnel keeps each key's last row, or have the database send full previous rows (PostgreSQL: ALTER TABLE ... REPLICA IDENTITY FULL)`,
          );
        }
        for (let m = physical - metadata; m < physical; m++) old[m] = row[m];
        addVirtual(old);
        before[i] = old;
      }
      return { ops, before };
    };
  }
}


/** An aggregate's key columns as its combiner's partials carry them, first. */
function partialKeys(plan: PlanNode): RowFn[] {
  if (plan.kind !== "window_aggregate") throw new Error(`a ${plan.kind} takes no partials`);
  return plan.keys.map((_, k) => (row: Row) => row[k]);
}

/**
 * The column of a processing-time table: its event time is a generated column
 * `pt AS proctime()` (the wall clock when the source read the row). Null for
 * tables on event time.
 */
export function processingTimeColumn(table: TableDef): number | null {
  const e = table.eventTime;
  if (!e || e.kind !== "column") return null;
  const v = table.virtual[e.index - table.fields.length];
  return v && v.expr.kind === "call" && v.expr.name === "proctime" ? e.index : null;
}
