/**
 * Runs a connector's SinkWriter inside the dataflow and drives its two-phase
 * commit: prepare at the barrier (kept in the subtask's checkpointed list
 * state), commit once the checkpoint is durable, and commit again on restore
 * (commits are idempotent).
 */
import { crashPoint, type Batch, type SinkWriter } from "../plugin-api/index.ts";
import type { SubtaskValue } from "../state/operator-state.ts";
import type { Operator, OperatorContext } from "./operator.ts";

interface SinkState {
  /** Prepared commits not yet committed, oldest first: several when a checkpoint was abandoned. */
  pending: [checkpointId: number, prepared: unknown][];
  writer: unknown;
}

export class SinkOperator implements Operator {
  private writer!: SinkWriter;
  private state!: SubtaskValue<SinkState>;
  /** Staged at barriers and not committed yet; an abandoned checkpoint's are committed with the next one. */
  private pending: [number, unknown][] = [];

  constructor(
    readonly name: string,
    /** Creates the writer, given its restored state and, after a rescale, those of every subtask it takes over. */
    private readonly createWriter: (ctx: OperatorContext, restored: unknown, restoredAll: unknown[]) => Promise<SinkWriter>,
    /** The checkpoint being restored, whose prepared commits must be (re)committed first. */
    private readonly restoredCheckpointId: number | null,
  ) {}

  async open(ctx: OperatorContext): Promise<void> {
    // After a rescale, old subtask j's pending work goes to subtask j mod parallelism.
    this.state = ctx.state.list<SinkState>("sink");
    const mine = this.state.restored;
    const writers = mine.map((st) => st.writer).filter((w) => w !== undefined && w !== null);
    this.writer = await this.createWriter(ctx, mine[0]?.writer ?? undefined, writers);
    if (this.restoredCheckpointId !== null && this.writer.commit) {
      // Commits are idempotent: the restored checkpoint's, and those of abandoned ones before it.
      for (const st of mine) for (const [id, prepared] of st.pending) await this.writer.commit(id, prepared);
    }
  }

  process(batch: Batch): void | Promise<void> {
    return this.writer.write(batch);
  }

  async prepareCheckpoint(checkpointId: number): Promise<void> {
    const prepared = this.writer.prepareCommit ? ((await this.writer.prepareCommit(checkpointId)) ?? null) : null;
    if (prepared !== null) this.pending.push([checkpointId, prepared]);
    this.state.value = { pending: this.pending.slice(), writer: (await this.writer.snapshot?.()) ?? null };
  }

  async onCheckpointComplete(checkpointId: number): Promise<void> {
    crashPoint("sink-before-commit");
    while (this.pending.length > 0 && this.pending[0]![0] <= checkpointId) {
      const [id, prepared] = this.pending[0]!;
      if (this.writer.commit) await this.writer.commit(id, prepared);
      this.pending.shift();
    }
    await this.writer.onCheckpointComplete?.(checkpointId);
  }

  async close(): Promise<void> {
    await this.writer.close?.();
  }
}
