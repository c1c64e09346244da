/**
 * Drives aligned checkpoints: asks every source subtask to inject a barrier,
 * collects each subtask's state once its barrier is aligned, writes the
 * checkpoint, and only then lets two-phase sinks commit. One checkpoint is in
 * flight at a time; a stop or end-of-input checkpoint waits its turn.
 */
import type { SubtaskSnapshot } from "../runtime/chain.ts";
import type { StateBackend, WrittenState } from "../state/backend.ts";
import { discardSnapshot } from "../state/tables.ts";
import { FencedError, type Fence } from "./fence.ts";
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, freezeState, type CheckpointData, type CheckpointStore } from "./store.ts";

export type BarrierThen = "continue" | "end" | "stop";

export interface CheckpointRequest {
  checkpointId: number;
  then: BarrierThen;
}

/** A completed checkpoint, for metrics. */
export interface CompletedCheckpoint {
  id: number;
  at: number;
  /** From the trigger until it was durable and the sinks had committed. */
  durationMs: number;
  /** From the trigger until every subtask had aligned its barrier and snapshotted (the rest is writing and committing). */
  alignmentMs: number;
  /** Bytes written to the checkpoint store: state files and the manifest. */
  bytes: number | null;
  /** Per operator state id and subtask: bytes of the files restoring it needs. */
  stateBytes: Record<string, Record<number, number>>;
  /** What the job did after it: go on, or stop (a final checkpoint). */
  then: BarrierThen;
}

export interface CheckpointEvents {
  onCompleted?(checkpoint: CompletedCheckpoint, then: BarrierThen): void;
  /** A checkpoint was abandoned (it timed out); the job goes on unless too many failed in a row. */
  onFailed?(checkpointId: number, reason: string): void;
}

export interface CheckpointLimits {
  /** A checkpoint not durable this long after its trigger is abandoned (default 10 minutes, as Flink). */
  timeoutMs: number;
  /** Consecutive abandoned checkpoints tolerated before the job fails (default 3). */
  tolerableFailures: number;
}

type CompletionHook = (checkpointId: number) => Promise<void>;

/** The coordinator as subtasks see it: in this process, or through a worker's link to the job manager. */
export interface BarrierPort {
  /** A source subtask's next barrier to inject, if one is pending. */
  takeRequest(task: string): CheckpointRequest | undefined;
  /** Waits until a barrier is pending for this source (used once its input is exhausted). */
  waitForRequest(task: string): Promise<void>;
  /** A subtask aligned barrier `id` and snapshotted its operators. */
  ack(task: string, id: number, parts: SubtaskSnapshot[]): void;
  /** A bounded source subtask has read all its input. */
  sourceFinished(task: string): void;
  /** Runs once a checkpoint is durable (sinks commit). */
  onComplete(task: string, hook: CompletionHook): void;
}

export type WrittenParts = { operatorId: string; index: number; written: WrittenState }[];

interface InFlight {
  id: number;
  then: BarrierThen;
  startedAt: number;
  alignedAt: number;
  timer: ReturnType<typeof setTimeout> | null;
  abandoned: boolean;
  /** Its manifest is written. */
  durable?: boolean;
  /** Per task: its operators' parts, being written in the background. */
  acks: Map<string, Promise<{ operatorId: string; index: number; written: WrittenState }[]>>;
}

export class CheckpointCoordinator implements BarrierPort {
  private nextId: number;
  private inFlight: InFlight | null = null;
  private queued: BarrierThen[] = [];
  private readonly sourceRequests = new Map<string, CheckpointRequest[]>();
  private readonly sourceWakers = new Map<string, () => void>();
  private readonly finishedSources = new Set<string>();
  private readonly completionHooks = new Map<string, CompletionHook>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private finalRequested = false;
  private resolveDone!: (then: BarrierThen) => void;
  private rejectDone!: (err: unknown) => void;
  /** Resolves after the final (end or stop) checkpoint is complete and committed. */
  readonly done: Promise<BarrierThen>;
  lastCompleted: CompletedCheckpoint | null = null;

  constructor(
    private readonly store: CheckpointStore,
    private readonly backend: StateBackend,
    private readonly pipeline: Pick<CheckpointData, "pipeline" | "labels">,
    /** Every subtask that acknowledges barriers, as "nodeId/subtask". */
    private readonly tasks: string[],
    /** The source subtasks, which inject barriers. */
    private readonly sources: string[],
    restoredId: number,
    private readonly events: CheckpointEvents = {},
    private readonly limits: CheckpointLimits = { timeoutMs: 600_000, tolerableFailures: 3 },
    /** Where barrier requests go when the sources run in other processes (else they are queued here). */
    private readonly deliver?: (task: string, req: CheckpointRequest) => void,
    /** This run's epoch: manifests, commits and deletions happen only while it is current. */
    private readonly fence?: Fence,
  ) {
    this.nextId = restoredId + 1;
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    for (const s of sources) this.sourceRequests.set(s, []);
  }

  startPeriodic(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => this.trigger("continue"), intervalMs);
  }

  onComplete(task: string, hook: CompletionHook): void {
    this.completionHooks.set(task, hook);
  }

  /** Starts a checkpoint now, or queues it behind the one in flight. */
  trigger(then: BarrierThen): void {
    if (this.finalRequested) return;
    if (then !== "continue") {
      this.finalRequested = true;
      if (this.timer) clearInterval(this.timer);
    }
    if (this.inFlight) {
      // Periodic checkpoints don't pile up; a final one waits its turn.
      if (then !== "continue") this.queued.push(then);
      return;
    }
    this.begin(then);
  }

  /** Consecutive checkpoints abandoned. */
  private failures = 0;

  private begin(then: BarrierThen): void {
    const id = this.nextId++;
    const cp: InFlight = { id, then, startedAt: performance.now(), alignedAt: 0, acks: new Map(), timer: null, abandoned: false };
    cp.timer = setTimeout(() => this.abandon(cp), this.limits.timeoutMs);
    this.inFlight = cp;
    for (const s of this.sources) {
      if (this.deliver) {
        this.deliver(s, { checkpointId: id, then });
        continue;
      }
      this.sourceRequests.get(s)!.push({ checkpointId: id, then });
      this.sourceWakers.get(s)?.();
    }
  }

  /** A source subtask's next barrier to inject, if one is pending. */
  takeRequest(source: string): CheckpointRequest | undefined {
    return this.sourceRequests.get(source)?.shift();
  }

  /** Waits until a barrier is pending for this source (used once its input is exhausted). */
  waitForRequest(source: string): Promise<void> {
    if ((this.sourceRequests.get(source)?.length ?? 0) > 0) return Promise.resolve();
    return new Promise((resolve) =>
      this.sourceWakers.set(source, () => {
        this.sourceWakers.delete(source);
        resolve();
      }),
    );
  }

  /** A bounded source subtask has read all its input; when all have, the final checkpoint starts. */
  sourceFinished(source: string): void {
    this.finishedSources.add(source);
    if (this.finishedSources.size === this.sources.length) this.trigger("end");
  }

  requestStop(): void {
    this.trigger("stop");
  }

  /** A subtask has aligned barrier `id`; its operators' tables are being encoded and written while it goes on. */
  ack(task: string, id: number, parts: SubtaskSnapshot[]): void {
    if (!this.inFlight || this.inFlight.id !== id) {
      // Abandoned meanwhile: the snapshots are still run to their end, which releases what they hold (a disk table's read of its database).
      for (const p of parts) for (const t of p.snapshot.tables) void discardSnapshot(t);
      return;
    }
    this.ackWritten(
      task,
      id,
      Promise.all(
        parts.map(async (p) => {
          // Inline values are copied now: operators go on changing theirs.
          const snapshot = { ...p.snapshot, values: freezeState(p.snapshot.values) };
          return { operatorId: p.operatorId, index: p.index, written: await this.backend.write(p.operatorId, p.index, p.parallelism, snapshot, p.state) };
        }),
      ),
    );
  }

  /** A subtask's parts of checkpoint `id`, written (or being written) by whoever runs it. */
  ackWritten(task: string, id: number, written: Promise<WrittenParts>): void {
    const cp = this.inFlight;
    if (!cp || cp.id !== id) {
      written.catch(() => {});
      return;
    }
    written.catch(() => {}); // awaited in complete(); an early rejection must not go unhandled
    cp.acks.set(task, written);
    if (cp.acks.size === this.tasks.length) {
      cp.alignedAt = performance.now();
      this.complete(cp).catch((err) => {
        // Once durable, a failure (a sink's commit) fails the job; before, it fails only this checkpoint.
        // A newer run took over: this one must stop, not retry.
        if (cp.durable || err instanceof FencedError) this.fail(err);
        else this.abandon(cp, `checkpoint ${cp.id} failed: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
  }

  /** A checkpoint not durable in time: abandon it (its late parts are ignored) and go on, within limits. */
  private abandon(cp: InFlight, failure?: string): void {
    if (this.inFlight !== cp || cp.abandoned) return;
    cp.abandoned = true;
    clearTimeout(cp.timer!);
    this.inFlight = null;
    const waiting = this.tasks.filter((t) => !cp.acks.has(t));
    const reason =
      failure ??
      `checkpoint ${cp.id} timed out after ${this.limits.timeoutMs < 10_000 ? `${this.limits.timeoutMs} ms` : `${Math.round(this.limits.timeoutMs / 1000)} s`} ` +
        (waiting.length ? `waiting for the barrier at ${waiting.slice(0, 5).join(", ")}${waiting.length > 5 ? ` and ${waiting.length - 5} more` : ""}` : "while writing its state");
    this.failures++;
    this.events.onFailed?.(cp.id, reason);
    if (this.failures > this.limits.tolerableFailures) {
      this.fail(new Error(`${reason}; ${this.failures} checkpoints in a row failed (more than ${this.limits.tolerableFailures} tolerated). Look at what holds the barrier (a stuck sink or source), or raise the checkpoint timeout`));
      return;
    }
    // A final checkpoint is needed to finish: try it again; periodic ones come on their own.
    if (cp.then !== "continue") this.begin(cp.then);
    else {
      const next = this.queued.shift();
      if (next) this.begin(next);
    }
  }

  fail(err: unknown): void {
    if (this.timer) clearInterval(this.timer);
    this.rejectDone(err);
  }

  private async complete(cp: InFlight): Promise<void> {
    const operators: CheckpointData["operators"] = {};
    let bytes = 0;
    const stateBytes: CompletedCheckpoint["stateBytes"] = {};
    for (const parts of await Promise.all(cp.acks.values())) {
      for (const p of parts) {
        const { values, tables, finished } = p.written.part;
        if (Object.keys(values).length === 0 && Object.keys(tables).length === 0 && !finished) continue; // stateless
        (operators[p.operatorId] ??= {})[p.index] = p.written.part;
        bytes += p.written.bytes;
        let size = 0;
        for (const t of Object.values(tables)) for (const f of t.files) size += f.bytes;
        (stateBytes[p.operatorId] ??= {})[p.index] = size;
      }
    }
    if (cp.abandoned) return;
    clearTimeout(cp.timer!);
    const labels = Object.fromEntries(Object.keys(operators).map((id) => [id, this.pipeline.labels[id] ?? id]));
    await this.fence?.check(`writing checkpoint ${cp.id}`);
    const manifestBytes = await this.store.write({
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      pipeline: this.pipeline.pipeline,
      labels,
      maxParallelism: this.backend.maxParallelism,
      checkpointId: cp.id,
      epoch: this.fence?.epoch ?? 0,
      createdAt: Date.now(),
      then: cp.then,
      operators,
    });
    cp.durable = true;
    // The checkpoint is durable: now sinks may publish what they staged for it (unless a newer run restored without it).
    await this.fence?.check(`committing checkpoint ${cp.id}`);
    await Promise.all([...cp.acks.keys()].map((task) => this.completionHooks.get(task)?.(cp.id) ?? Promise.resolve()));
    this.lastCompleted = {
      id: cp.id,
      at: Date.now(),
      durationMs: performance.now() - cp.startedAt,
      alignmentMs: cp.alignedAt - cp.startedAt,
      bytes: bytes + (typeof manifestBytes === "number" ? manifestBytes : 0),
      stateBytes,
      then: cp.then,
    };
    this.failures = 0;
    this.events.onCompleted?.(this.lastCompleted, cp.then);
    // A superseded run must not delete files the newer run's checkpoints name.
    await this.fence?.check(`deleting state files after checkpoint ${cp.id}`);
    await this.backend.collectGarbage();
    this.inFlight = null;
    if (cp.then !== "continue") {
      this.resolveDone(cp.then);
      return;
    }
    const next = this.queued.shift();
    if (next) this.begin(next);
  }

  stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.inFlight?.timer) clearTimeout(this.inFlight.timer);
  }
}
