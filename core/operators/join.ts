/**
 * Equi-joins of two append-only inputs, hash-partitioned on the join key so
 * each subtask holds every row of its keys from both sides.
 *
 * WindowJoin: both inputs carry the same tumble/hop window, which is part of
 * the key. Rows wait until the watermark (the minimum of both inputs') passes
 * the window's end; then the window's matches are emitted and its state dropped.
 *
 * UpdatingJoin ("event-history join"): every row joins against all rows stored
 * for its key on the other side, and is stored itself, indefinitely. An inner
 * join emits inserts only. A LEFT JOIN emits a NULL-padded row for a left row
 * without a match, and deletes it when the key's first right row arrives.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import { hashValues, rowsEqual } from "../state/hash.ts";
import type { SubtaskValue } from "../state/operator-state.ts";
import type { KeyedTable, TimeKeyedTable } from "../state/tables.ts";
import { END_OF_TIME } from "../runtime/messages.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import type { RowFn } from "./window-aggregate.ts";

export interface JoinSpec {
  /** Key of a left row; must equal `rightKeys` of its right matches. */
  leftKeys: RowFn[];
  rightKeys: RowFn[];
  /** Columns of a right row, for the NULL padding of unmatched LEFT JOIN rows. */
  rightWidth: number;
  joinType: "inner" | "left";
}

const LEFT = 0;

/** Rows of both sides stored for one key, with their event times. */
interface Sides {
  left: Row[];
  leftTimes: number[];
  right: Row[];
  rightTimes: number[];
}

// A module-level factory, so looking up a key does not allocate a closure per record.
const newSides = (): Sides => ({ left: [], leftTimes: [], right: [], rightTimes: [] });

/** Builds output batches row by row. */
class Output {
  rows: Row[] = [];
  times: number[] = [];
  ops: RowOp[] = [];
  push(row: Row, time: number, op: RowOp = RowOp.Insert) {
    this.rows.push(row);
    this.times.push(time);
    this.ops.push(op);
  }
  emit(out: Collector, updating: boolean): void | Promise<void> {
    if (this.rows.length === 0) return;
    const batch: Batch = { rows: this.rows, times: this.times };
    if (updating) {
      batch.ops = this.ops;
      batch.before = this.rows.map((r, i) => (this.ops[i] === RowOp.Delete ? r : null));
    }
    return out.emit(batch);
  }
}

abstract class KeyedJoin implements Operator {
  abstract readonly name: string;
  protected readonly nulls: null[];
  private readonly scratch: unknown[];

  constructor(protected readonly spec: JoinSpec) {
    this.nulls = new Array(spec.rightWidth).fill(null);
    this.scratch = new Array(spec.leftKeys.length);
  }

  abstract open(ctx: OperatorContext): void;

  /** Puts the key of `row` from input `side` into the scratch array; false when a key part is NULL (SQL: never matches). */
  protected keyOf(row: Row, time: number, side: number): boolean {
    const fns = side === LEFT ? this.spec.leftKeys : this.spec.rightKeys;
    let matchable = true;
    for (let k = 0; k < fns.length; k++) {
      const v = fns[k]!(row, time) ?? null;
      if (v === null) matchable = false;
      this.scratch[k] = v;
    }
    return matchable;
  }

  /** The key last put in scratch by keyOf. */
  protected scratchKey(): readonly unknown[] {
    return this.scratch;
  }

  /** The hash the input edges partitioned the row by (of the key last put in scratch). */
  protected keyHash(): number {
    return hashValues(this.scratch);
  }

  abstract process(batch: Batch, out: Collector, input: number): void | Promise<void>;
}

export class WindowJoin extends KeyedJoin {
  readonly name = "window_join";
  private watermark = -Infinity;
  private ctx!: OperatorContext;
  /** (window end, key) → both sides' rows of that window. */
  private windows!: TimeKeyedTable<Sides>;
  /** LEFT JOIN rows with a NULL key, by window end: they match nothing and are emitted padded when their window closes. */
  private unmatchable!: TimeKeyedTable<Row[]>;
  private clock!: SubtaskValue<number | null>;

  constructor(
    spec: JoinSpec,
    /** The window end (µs) of a row from each side. */
    private readonly windowEnd: [RowFn, RowFn],
  ) {
    super(spec);
  }

  open(ctx: OperatorContext): void {
    this.ctx = ctx;
    this.windows = ctx.state.timeKeyed<Sides>("windows");
    this.unmatchable = ctx.state.timeKeyed<Row[]>("unmatchable");
    this.clock = ctx.state.union<number | null>("watermark");
    for (const w of this.clock.restored) if (w !== null) this.watermark = Math.max(this.watermark, w);
  }

  prepareCheckpoint(): void {
    this.clock.value = Number.isFinite(this.watermark) ? this.watermark : null;
  }

  process(batch: Batch, _out: Collector, input: number): void {
    const { rows, times } = batch;
    const windowEnd = this.windowEnd[input]!;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const t = times[i]!;
      const end = windowEnd(row, t) as number;
      // A window the watermark has passed was already emitted: its rows are late.
      if (end <= this.watermark) {
        this.ctx.metrics.lateDropped++;
        continue;
      }
      if (!this.keyOf(row, t, input)) {
        if (input === LEFT && this.spec.joinType === "left") this.unmatchable.update(end, this.keyHash(), [], () => []).value.push(row);
        continue;
      }
      const sides = this.windows.update(end, this.keyHash(), this.scratchKey(), newSides).value;
      if (input === LEFT) {
        sides.left.push(row);
        sides.leftTimes.push(t);
      } else {
        sides.right.push(row);
        sides.rightTimes.push(t);
      }
    }
  }

  onWatermark(time: number, out: Collector): void | Promise<void> {
    this.watermark = time;
    const output = new Output();
    for (const end of this.windows.times()) {
      if (end > time) break;
      for (const entry of this.windows.at(end)) {
        const { left, right } = entry.value;
        for (const l of left) {
          if (right.length === 0 && this.spec.joinType === "left") output.push([...l, ...this.nulls], end - 1);
          for (const r of right) output.push([...l, ...r], end - 1);
        }
      }
    }
    this.windows.dropUpTo(time);
    for (const end of this.unmatchable.times()) {
      if (end > time) break;
      for (const entry of this.unmatchable.at(end)) for (const row of entry.value) output.push([...row, ...this.nulls], end - 1);
    }
    this.unmatchable.dropUpTo(time);
    return output.emit(out, false);
  }
}

export class UpdatingJoin extends KeyedJoin {
  readonly name = "updating_join";
  /** Key → the rows of both sides stored for it. */
  private state!: KeyedTable<Sides>;

  constructor(
    spec: JoinSpec,
    /** Whether the output carries ops: a LEFT JOIN, or an input that updates. */
    private readonly updatingOutput: boolean,
    /** µs a stored row is kept after its event time once the watermark passes (SET updating_ttl); expired rows leave no retraction. */
    private readonly ttl?: number,
  ) {
    super(spec);
  }

  onWatermark(time: number): void {
    if (!this.ttl || time >= END_OF_TIME) return;
    const cutoff = time - this.ttl;
    // An entry's time is its oldest row's: prune the rows that expired, keep the entry while any is left.
    this.state.expire(cutoff, (e) => {
      this.state.modify(e);
      const s = e.value;
      const keep = (rows: Row[], times: number[]) => {
        for (let j = rows.length - 1; j >= 0; j--) if (times[j]! < cutoff) rows.splice(j, 1), times.splice(j, 1);
      };
      keep(s.left, s.leftTimes);
      keep(s.right, s.rightTimes);
      if (s.left.length === 0 && s.right.length === 0) return true;
      let oldest = Infinity;
      for (const t of s.leftTimes) if (t < oldest) oldest = t;
      for (const t of s.rightTimes) if (t < oldest) oldest = t;
      this.state.setTime(e, oldest);
      return false;
    });
  }

  process(batch: Batch, out: Collector, input: number): void | Promise<void> {
    const { rows, times, ops, before } = batch;
    const output = new Output();
    for (let i = 0; i < rows.length; i++) {
      const op = ops?.[i] ?? RowOp.Insert;
      const t = times[i]!;
      if (op === RowOp.Update) {
        // An update of an input row is the retraction of its old value and the insertion of its new one.
        const old = before?.[i];
        if (old) this.retract(old, t, input, output);
        this.insert(rows[i]!, t, input, output);
      } else if (op === RowOp.Delete) this.retract(rows[i]!, t, input, output);
      else this.insert(rows[i]!, t, input, output);
    }
    return output.emit(out, this.updatingOutput);
  }

  open(ctx: OperatorContext): void {
    this.state = ctx.state.keyed<Sides>("sides", undefined, this.ttl ? { expiryGranularity: this.ttl / 16 } : {});
  }

  private insert(row: Row, t: number, input: number, output: Output): void {
    const left = this.spec.joinType === "left";
    if (!this.keyOf(row, t, input)) {
      // A NULL key matches nothing: a LEFT JOIN row stays padded for good, so it is not stored.
      if (input === LEFT && left) output.push([...row, ...this.nulls], t);
      return;
    }
    const entry = this.state.update(this.keyHash(), this.scratchKey(), newSides);
    if (this.ttl && (entry.time === null || t < entry.time)) this.state.setTime(entry, t);
    const sides = entry.value;
    if (input === LEFT) {
      for (let j = 0; j < sides.right.length; j++) output.push([...row, ...sides.right[j]!], Math.max(t, sides.rightTimes[j]!));
      if (left && sides.right.length === 0) output.push([...row, ...this.nulls], t);
      sides.left.push(row);
      sides.leftTimes.push(t);
    } else {
      // The key's first right row replaces the padded rows its left rows were emitted with.
      if (left && sides.right.length === 0) {
        for (let j = 0; j < sides.left.length; j++) output.push([...sides.left[j]!, ...this.nulls], t, RowOp.Delete);
      }
      for (let j = 0; j < sides.left.length; j++) output.push([...sides.left[j]!, ...row], Math.max(t, sides.leftTimes[j]!));
      sides.right.push(row);
      sides.rightTimes.push(t);
    }
  }

  /** Removes one stored copy of `row` and deletes the output rows it made; a row never stored changes nothing. */
  private retract(row: Row, t: number, input: number, output: Output): void {
    const left = this.spec.joinType === "left";
    if (!this.keyOf(row, t, input)) {
      if (input === LEFT && left) output.push([...row, ...this.nulls], t, RowOp.Delete);
      return;
    }
    const entry = this.state.get(this.keyHash(), this.scratchKey());
    if (!entry) return;
    const sides = entry.value;
    const mine = input === LEFT ? sides.left : sides.right;
    const at = mine.findIndex((r) => rowsEqual(r, row));
    if (at < 0) return;
    this.state.modify(entry);
    const stored = mine[at]!;
    mine.splice(at, 1);
    (input === LEFT ? sides.leftTimes : sides.rightTimes).splice(at, 1);
    if (input === LEFT) {
      for (const r of sides.right) output.push([...stored, ...r], t, RowOp.Delete);
      if (left && sides.right.length === 0) output.push([...stored, ...this.nulls], t, RowOp.Delete);
    } else {
      for (const l of sides.left) output.push([...l, ...stored], t, RowOp.Delete);
      // The key's last right row gone: its left rows are unmatched again.
      if (left && sides.right.length === 0) for (const l of sides.left) output.push([...l, ...this.nulls], t);
    }
    if (sides.left.length === 0 && sides.right.length === 0) this.state.delete(entry);
  }
}
