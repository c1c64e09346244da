/**
 * A source subtask: polls its reader, derives event times and watermarks per
 * split, lets splits that stay silent for `idle_micros` stop holding the
 * watermark back, and injects checkpoint barriers between polls.
 */
import type { BarrierPort } from "../checkpoint/coordinator.ts";
import type { Batch, Row, SourceReader } from "../plugin-api/index.ts";
import type { OperatorChain } from "./chain.ts";
import { END_OF_TIME } from "./messages.ts";
import type { OperatorMetrics } from "./metrics.ts";
import type { OperatorState, SubtaskValue } from "../state/operator-state.ts";

/** What a source subtask keeps: its splits' positions (from the reader) and watermarks. */
export interface SourcePosition {
  splits: Record<string, unknown>;
  watermarks?: Record<string, number>;
}

/** Turns a reader's rows into a batch of the table's full rows with event times. */
export interface RowPreparer {
  /** `marks[i]` is the watermark row i allows (its event time − 1 s, or the WATERMARK expression). */
  (rows: Row[], nativeTimes: number[] | undefined): { batch: Batch; marks: number[] };
  /** A processing-time table's watermark by the wall clock now, which moves on without records (so windows close on time). */
  clockMark?: () => number;
}

interface SplitClock {
  watermark: number | null;
  lastActive: number;
}

export const SOURCE_BATCH_ROWS = 4096;
/** How long a source may run before letting timers and background work in. */
const YIELD_EVERY_MS = 5;

export class SourceSubtask {
  private readonly splits = new Map<string, SplitClock>();
  private idleSent = false;
  private readonly startedAt = performance.now();
  /** Splits the reader has listed at some point, and those known from the restored checkpoint. */
  private readonly known: Set<string>;

  constructor(
    readonly key: string,
    private readonly reader: SourceReader,
    private readonly prepare: RowPreparer,
    private readonly chain: OperatorChain,
    private readonly coordinator: BarrierPort,
    private readonly sourceOpId: string,
    private readonly metrics: OperatorMetrics,
    /** Idle timeout in ms, or null when idleness is disabled. */
    private readonly idleMs: number | null,
    /** The source operator's state: its split positions and watermarks, kept per subtask. */
    private readonly state: OperatorState,
    private readonly position: SubtaskValue<SourcePosition>,
  ) {
    // Split watermarks from the restored checkpoint, so lateness is judged as before the restart.
    const restoredWatermarks: Record<string, number> = Object.assign({}, ...position.restored.map((p) => p?.watermarks ?? {}));
    this.known = new Set(Object.keys(restoredWatermarks));
    for (const [split, wm] of Object.entries(restoredWatermarks)) {
      this.splits.set(split, { watermark: wm, lastActive: this.startedAt });
    }
    coordinator.onComplete(key, async (id) => {
      await reader.onCheckpointComplete?.(id);
      await chain.checkpointComplete(id);
    });
  }

  async run(): Promise<void> {
    let finished = false;
    let yielded = performance.now();
    for (;;) {
      // A source that always has data would otherwise never leave the microtask queue: timers (periodic
      // checkpoints, heartbeats, progress) and background work (state files being encoded) would starve.
      if (performance.now() - yielded > YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        yielded = performance.now();
      }
      const req = this.coordinator.takeRequest(this.key);
      if (req) {
        const snapshots = await this.chain.snapshot(req.checkpointId);
        const watermarks: Record<string, number> = {};
        for (const [split, clock] of this.splits) if (clock.watermark !== null) watermarks[split] = clock.watermark;
        this.position.value = { splits: this.reader.snapshot(), watermarks };
        const s = this.state;
        snapshots.push({ operatorId: this.sourceOpId, index: s.subtaskIndex, parallelism: s.parallelism, state: s, snapshot: s.snapshot(req.checkpointId) });
        this.coordinator.ack(this.key, req.checkpointId, snapshots);
        await this.chain.broadcast({ kind: "barrier", checkpointId: req.checkpointId, then: req.then });
        if (req.then !== "continue") {
          await this.chain.broadcast({ kind: "end", stopped: req.then === "stop" });
          await this.reader.close?.();
          return;
        }
        continue;
      }
      if (finished) {
        await this.coordinator.waitForRequest(this.key);
        continue;
      }
      // A source restored from a checkpoint taken after all its subtasks had read their input ends at once, as in
      // Flink: operators downstream that had finished kept no state, so no record may reach them again.
      const polled = this.state.restoredFinished ? { end: true as const } : await this.reader.poll(SOURCE_BATCH_ROWS);
      if ("end" in polled) {
        finished = true;
        // End of input: every window still open can now close.
        await this.chain.advanceWatermark(END_OF_TIME);
        this.state.finish();
        this.chain.finish();
        this.coordinator.sourceFinished(this.key);
        continue;
      }
      const now = performance.now();
      for (const sb of polled.batches) {
        if (sb.rows.length === 0) continue;
        const { batch, marks } = this.prepare(sb.rows, sb.times);
        let clock = this.splits.get(sb.split);
        if (!clock) this.splits.set(sb.split, (clock = { watermark: null, lastActive: now }));
        clock.lastActive = now;
        this.metrics.recordsIn += batch.rows.length;
        this.metrics.recordsOut += batch.rows.length;
        await this.pushInWatermarkOrder(batch, marks, clock, now);
      }
      const clockMark = this.prepare.clockMark?.();
      if (clockMark !== undefined) {
        for (const split of this.reader.splits()) {
          const clock = this.splits.get(split) ?? { watermark: null, lastActive: now };
          this.splits.set(split, { watermark: Math.max(clock.watermark ?? -Infinity, clockMark), lastActive: now });
        }
      }
      await this.emitWatermark(now);
    }
  }

  /**
   * Pushes a split's batch. Where a record is behind the watermark its
   * predecessors allow, the batch is cut and that watermark emitted first, so
   * lateness depends on record order only, never on how reads were batched.
   */
  private async pushInWatermarkOrder(batch: Batch, marks: number[], clock: SplitClock, now: number): Promise<void> {
    const { times } = batch;
    let running = clock.watermark ?? -Infinity;
    let from = 0;
    for (let i = 0; i < times.length; i++) {
      if (times[i]! < running && running > (this.chain.watermark ?? -Infinity)) {
        await this.chain.push(slice(batch, from, i));
        from = i;
        clock.watermark = running;
        await this.emitWatermark(now);
      }
      if (marks[i]! > running) running = marks[i]!;
    }
    await this.chain.push(from === 0 ? batch : slice(batch, from, times.length));
    if (running > (clock.watermark ?? -Infinity)) clock.watermark = running;
  }

  /** The minimum over splits that are not idle; idle when every split is. */
  private async emitWatermark(now: number): Promise<void> {
    const current = this.reader.splits();
    for (const split of current) {
      if (!this.splits.has(split)) this.splits.set(split, { watermark: null, lastActive: this.startedAt });
    }
    // A split the reader no longer lists (finished, like a closed Kinesis shard)
    // or never listed (restored watermarks of splits other subtasks read now)
    // must not hold the watermark back until it counts as idle.
    if (this.splits.size > current.length) {
      const listed = new Set(current);
      for (const split of this.splits.keys()) {
        if (!listed.has(split) && this.known.has(split)) this.splits.delete(split);
      }
    }
    for (const split of current) this.known.add(split);
    let min = Infinity;
    let active = 0;
    for (const clock of this.splits.values()) {
      if (this.idleMs !== null && now - clock.lastActive >= this.idleMs) continue;
      active++;
      if (clock.watermark === null) return; // a live split that has not produced yet holds the watermark
      if (clock.watermark < min) min = clock.watermark;
    }
    if (active === 0) {
      // Every split it read has finished: the reader ends next, and that end flushes the open windows at
      // END_OF_TIME. Going idle first would let a join or union downstream close those windows without them.
      if (this.splits.size === 0 && this.known.size > 0) return;
      // No split, or all silent: stop holding back downstream watermarks.
      if (!this.idleSent && (this.idleMs !== null || this.splits.size === 0)) {
        this.idleSent = true;
        this.metrics.idle = true;
        await this.chain.markIdle();
      }
      return;
    }
    this.idleSent = false;
    this.metrics.idle = false;
    if (this.chain.watermark === null || min > this.chain.watermark) {
      this.metrics.watermark = min;
      await this.chain.advanceWatermark(min);
    }
  }
}

function slice(batch: Batch, from: number, to: number): Batch {
  const out: Batch = { rows: batch.rows.slice(from, to), times: batch.times.slice(from, to) };
  if (batch.ops) {
    out.ops = batch.ops.slice(from, to);
    out.before = batch.before?.slice(from, to);
  }
  return out;
}
