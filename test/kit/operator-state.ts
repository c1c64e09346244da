/**
 * Operator contexts backed by the real state backend on a temporary folder, so
 * operator tests checkpoint and restore (at any parallelism) through the same
 * files a job writes.
 */
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, LocalCheckpointStore, type CheckpointData } from "../../core/checkpoint/store.ts";
import type { Collector, OperatorContext } from "../../core/operators/operator.ts";
import type { Batch, Row } from "../../core/plugin-api/index.ts";
import { OperatorMetrics } from "../../core/runtime/metrics.ts";
import { StateBackend } from "../../core/state/backend.ts";
import { DEFAULT_MAX_PARALLELISM } from "../../core/state/key-groups.ts";
import { CacheBudget } from "../../core/state/disk-table.ts";
import { OperatorState, type DiskStateOptions, type RestoredOperator } from "../../core/state/operator-state.ts";

let contexts = 0;
import { tempDir } from "./cli.ts";

export class StateHarness {
  readonly store: LocalCheckpointStore;
  private nextCheckpoint = 1;

  /** With `diskCacheBytes`, keyed tables live on disk with a cache of that many bytes (shared by the harness's contexts). */
  private readonly disk?: DiskStateOptions;

  constructor(
    readonly operatorId = "op",
    readonly maxParallelism = DEFAULT_MAX_PARALLELISM,
    dir = tempDir("runnel-state-harness-"),
    diskCacheBytes?: number,
  ) {
    this.store = new LocalCheckpointStore(dir);
    if (diskCacheBytes !== undefined) this.disk = { dir: tempDir("runnel-state-disk-"), budget: new CacheBudget(diskCacheBytes) };
  }

  context(subtaskIndex = 0, parallelism = 1, restored?: RestoredOperator): OperatorContext {
    return {
      subtaskIndex,
      parallelism,
      metrics: new OperatorMetrics(this.operatorId, this.operatorId, subtaskIndex),
      jobId: "test",
      signal: new AbortController().signal,
      log: () => {},
      state: new OperatorState(this.operatorId, subtaskIndex, parallelism, this.maxParallelism, restored, this.disk && { ...this.disk, dir: `${this.disk.dir}/${++contexts}` }),
    };
  }

  /** Takes a checkpoint of these subtasks (prepare hooks run first) and returns its manifest. */
  async checkpoint(subtasks: { ctx: OperatorContext; prepare?: (id: number) => void }[]): Promise<CheckpointData & { bytes: number }> {
    const id = this.nextCheckpoint++;
    const backend = new StateBackend(this.store, this.maxParallelism, undefined);
    const parts: CheckpointData["operators"][string] = {};
    let bytes = 0;
    // Every subtask's barrier is taken before anything is awaited, as a caller changing state next would expect.
    const snaps = subtasks.map(({ ctx, prepare }) => {
      prepare?.(id);
      return ctx.state.snapshot(id);
    });
    for (const [i, { ctx }] of subtasks.entries()) {
      const written = await backend.write(this.operatorId, ctx.subtaskIndex, ctx.parallelism, snaps[i]!, ctx.state);
      parts[ctx.subtaskIndex] = written.part;
      bytes += written.bytes;
    }
    const data: CheckpointData = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      pipeline: "test",
      labels: { [this.operatorId]: this.operatorId },
      maxParallelism: this.maxParallelism,
      checkpointId: id,
      createdAt: Date.now(),
      then: "continue",
      operators: { [this.operatorId]: parts },
    };
    await this.store.write(data);
    await backend.collectGarbage();
    return { ...data, bytes };
  }

  /** A context for subtask `index` of `parallelism`, restored from the latest checkpoint. */
  async restore(index: number, parallelism: number): Promise<OperatorContext> {
    const backend = new StateBackend(this.store, this.maxParallelism, await this.store.latest());
    return this.context(index, parallelism, await backend.restoreFor(this.operatorId, index, parallelism));
  }
}

/** A collector keeping what an operator emits: the batches as they came, and their rows. */
export function batchCollector(): Collector & { batches: Batch[]; rows: Row[] } {
  const c = {
    batches: [] as Batch[],
    rows: [] as Row[],
    emit(b: Batch) {
      c.batches.push(b);
      c.rows.push(...b.rows);
    },
  };
  return c;
}
