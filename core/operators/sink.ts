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
  prepared: unknown;
  writer: unknown;
}

export class SinkOperator implements Operator {
  private writer!: SinkWriter;
  private state!: SubtaskValue<SinkState>;
  /** What prepareCommit gave for the checkpoint in flight. */
  private prepared: { checkpointId: number; prepared: unknown } | null = null;

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
      for (const st of mine) {
        if (st.prepared !== undefined && st.prepared !== null) await this.writer.commit(this.restoredCheckpointId, st.prepared);
      }
    }
  }

  process(batch: Batch): void | Promise<void> {
    return this.writer.write(batch);
  }

  async prepareCheckpoint(checkpointId: number): Promise<void> {
    const prepared = this.writer.prepareCommit ? ((await this.writer.prepareCommit(checkpointId)) ?? null) : null;
    this.prepared = { checkpointId, prepared };
    this.state.value = { prepared, writer: (await this.writer.snapshot?.()) ?? null };
  }

  async onCheckpointComplete(checkpointId: number): Promise<void> {
    const p = this.prepared;
    crashPoint("sink-before-commit");
    if (this.writer.commit && p && p.checkpointId === checkpointId && p.prepared !== null) await this.writer.commit(checkpointId, p.prepared);
  }

  async close(): Promise<void> {
    await this.writer.close?.();
  }
}
