/**
 * The checkpoint coordinator as a worker's subtasks see it: barrier requests for
 * its source subtasks arrive from the job manager; acknowledgements are written
 * here (each subtask's state files) and reported to the manager; completions
 * come back from the manager and run the local commit hooks (sinks publish).
 */
import type { BarrierPort, CheckpointRequest } from "../checkpoint/coordinator.ts";
import { freezeState } from "../checkpoint/store.ts";
import type { SubtaskSnapshot } from "../runtime/chain.ts";
import type { StateBackend } from "../state/backend.ts";
import type { Fence } from "../checkpoint/fence.ts";
import type { WorkerMessage } from "./protocol.ts";

export class WorkerBarrierPort implements BarrierPort {
  private readonly requests = new Map<string, CheckpointRequest[]>();
  private readonly wakers = new Map<string, () => void>();
  private readonly hooks = new Map<string, (id: number) => Promise<void>>();

  constructor(
    private readonly backend: StateBackend,
    private readonly send: (msg: WorkerMessage) => void,
    /** The job manager's epoch: sinks commit only while it is current. */
    private readonly fence: Fence,
  ) {}

  /** A barrier for one of this worker's source subtasks. */
  request(task: string, req: CheckpointRequest): void {
    const list = this.requests.get(task) ?? [];
    list.push(req);
    this.requests.set(task, list);
    const w = this.wakers.get(task);
    if (w) {
      this.wakers.delete(task);
      w();
    }
  }

  takeRequest(task: string): CheckpointRequest | undefined {
    return this.requests.get(task)?.shift();
  }

  waitForRequest(task: string): Promise<void> {
    if ((this.requests.get(task)?.length ?? 0) > 0) return Promise.resolve();
    return new Promise((resolve) => this.wakers.set(task, resolve));
  }

  /**
   * Set (by SIGUSR2 when RUNNEL_DEBUG_STALL_ON_SIGUSR2 is set, for tests) to make this worker stop
   * acknowledging barriers while its subtasks go on, as a worker whose state storage hangs would.
   */
  stalled = false;

  ack(task: string, id: number, parts: SubtaskSnapshot[]): void {
    if (this.stalled) return;
    Promise.all(
      parts.map(async (p) => {
        const snapshot = { ...p.snapshot, values: freezeState(p.snapshot.values) };
        const written = await this.backend.write(p.operatorId, p.index, p.parallelism, snapshot, p.state);
        return { operatorId: p.operatorId, index: p.index, part: written.part, bytes: written.bytes };
      }),
    ).then(
      (written) => this.send({ type: "ack", task, checkpointId: id, parts: written }),
      (err) => this.send({ type: "ack-failed", task, checkpointId: id, error: err instanceof Error ? err.message : String(err) }),
    );
  }

  sourceFinished(task: string): void {
    this.send({ type: "source-finished", task });
  }

  onComplete(task: string, hook: (id: number) => Promise<void>): void {
    this.hooks.set(task, hook);
  }

  /** The manager wrote checkpoint `id`: every local subtask commits, then the manager hears so. */
  async complete(id: number): Promise<void> {
    // A run superseded since the manager wrote the manifest must not publish (the newer run restores without it).
    await this.fence.check(`committing checkpoint ${id}`);
    await Promise.all([...this.hooks.values()].map((h) => h(id)));
    this.send({ type: "committed", checkpointId: id });
  }
}
