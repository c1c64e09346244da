/**
 * Drives aligned checkpoints: asks every source subtask to inject a barrier,
 * collects each subtask's state once its barrier is aligned, writes the
 * checkpoint, and only then lets two-phase sinks commit. One checkpoint is in
 * flight at a time; a stop or end-of-input checkpoint waits its turn.
 */
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, freezeState, type CheckpointData, type CheckpointStore } from "./store.ts";

export type BarrierThen = "continue" | "end" | "stop";

export interface CheckpointRequest {
  checkpointId: number;
  then: BarrierThen;
}

export interface CheckpointEvents {
  onCompleted?(checkpointId: number, durationMs: number, then: BarrierThen): void;
}

type CompletionHook = (checkpointId: number, states: Record<string, unknown>) => Promise<void>;

interface InFlight {
  id: number;
  then: BarrierThen;
  startedAt: number;
  acks: Map<string, Record<string, unknown>>;
}

export class CheckpointCoordinator {
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
  lastCompleted: { id: number; at: number; durationMs: number } | null = null;

  constructor(
    private readonly store: CheckpointStore,
    private readonly pipeline: Pick<CheckpointData, "pipeline" | "signatures">,
    /** Every subtask that acknowledges barriers, as "nodeId/subtask". */
    private readonly tasks: string[],
    /** The source subtasks, which inject barriers. */
    private readonly sources: string[],
    restoredId: number,
    private readonly events: CheckpointEvents = {},
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

  private begin(then: BarrierThen): void {
    const id = this.nextId++;
    this.inFlight = { id, then, startedAt: performance.now(), acks: new Map() };
    for (const s of this.sources) {
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

  /** A subtask has aligned barrier `id` and snapshotted its operators. */
  ack(task: string, id: number, states: Record<string, unknown>): void {
    const cp = this.inFlight;
    if (!cp || cp.id !== id) return;
    cp.acks.set(task, freezeState(states));
    if (cp.acks.size === this.tasks.length) {
      this.complete(cp).catch((err) => this.fail(err));
    }
  }

  fail(err: unknown): void {
    if (this.timer) clearInterval(this.timer);
    this.rejectDone(err);
  }

  private async complete(cp: InFlight): Promise<void> {
    const operators: CheckpointData["operators"] = {};
    for (const [task, states] of cp.acks) {
      const subtask = task.slice(task.lastIndexOf("/") + 1);
      for (const [opId, state] of Object.entries(states)) {
        (operators[opId] ??= {})[subtask] = state;
      }
    }
    await this.store.write({
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      ...this.pipeline,
      checkpointId: cp.id,
      createdAt: Date.now(),
      then: cp.then,
      operators,
    });
    // The checkpoint is durable: now sinks may publish what they staged for it.
    await Promise.all(
      [...cp.acks].map(([task, states]) => this.completionHooks.get(task)?.(cp.id, states) ?? Promise.resolve()),
    );
    const durationMs = performance.now() - cp.startedAt;
    this.lastCompleted = { id: cp.id, at: Date.now(), durationMs };
    this.events.onCompleted?.(cp.id, durationMs, cp.then);
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
  }
}
