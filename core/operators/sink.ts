/**
 * Runs a connector's SinkWriter inside the dataflow and drives its two-phase
 * commit: prepare at the barrier (stored in the checkpoint), commit once the
 * checkpoint is durable, and commit again on restore (commits are idempotent).
 */
import { crashPoint, type Batch, type SinkWriter } from "../plugin-api/index.ts";
import type { Operator, OperatorContext } from "./operator.ts";

interface SinkState {
  version: 1;
  prepared: unknown;
  writer: unknown;
}

export class SinkOperator implements Operator {
  private writer!: SinkWriter;

  constructor(
    readonly name: string,
    /** Creates the writer, given its restored state and, after a rescale, those of every subtask it takes over. */
    private readonly createWriter: (ctx: OperatorContext, restored: unknown, restoredAll: unknown[]) => Promise<SinkWriter>,
    /** The checkpoint being restored, whose prepared commits must be (re)committed first. */
    private readonly restoredCheckpointId: number | null,
  ) {}

  async open(ctx: OperatorContext, restored: unknown[] | undefined): Promise<void> {
    const mine = (restored ?? []).filter((_, j) => j % ctx.parallelism === ctx.subtaskIndex) as (SinkState | undefined)[];
    const states = mine.map((st) => st?.writer).filter((w) => w !== undefined && w !== null);
    this.writer = await this.createWriter(ctx, mine[0]?.writer, states);
    if (this.restoredCheckpointId !== null && this.writer.commit) {
      for (const st of mine) {
        if (st && st.prepared !== undefined && st.prepared !== null) {
          await this.writer.commit(this.restoredCheckpointId, st.prepared);
        }
      }
    }
  }

  process(batch: Batch): void | Promise<void> {
    return this.writer.write(batch);
  }

  async snapshot(checkpointId: number): Promise<SinkState> {
    const prepared = this.writer.prepareCommit ? await this.writer.prepareCommit(checkpointId) : null;
    return { version: 1, prepared: prepared ?? null, writer: (await this.writer.snapshot?.()) ?? null };
  }

  async onCheckpointComplete(checkpointId: number, state: unknown): Promise<void> {
    const prepared = (state as SinkState | undefined)?.prepared;
    crashPoint("sink-before-commit");
    if (this.writer.commit && prepared !== undefined && prepared !== null) await this.writer.commit(checkpointId, prepared);
  }

  async close(): Promise<void> {
    await this.writer.close?.();
  }
}
