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
 * join emits inserts only. An outer side's row without a match is emitted
 * NULL-padded (LEFT: left rows, RIGHT: right rows, FULL: both), and the padded
 * row is deleted when the key's first row of the other side arrives.
 *
 * Semi and anti joins (IN / EXISTS subqueries and their negations) emit left
 * rows only: a semi join each left row that has a match, an anti join each
 * that has none (a NULL key matches nothing, so it is kept by an anti join).
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import { hashValues, rowsEqual } from "../state/hash.ts";
import type { SubtaskValue } from "../state/operator-state.ts";
import type { KeyedTable, StateCodec, StateEntry, TimeKeyedTable } from "../state/tables.ts";
import { END_OF_TIME } from "../runtime/messages.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import type { RowFn } from "./window-aggregate.ts";

export interface JoinSpec {
  /** Key of a left row; must equal `rightKeys` of its right matches. */
  leftKeys: RowFn[];
  rightKeys: RowFn[];
  /** Columns of each side's row, for the NULL padding of unmatched rows. */
  leftWidth: number;
  rightWidth: number;
  joinType: "inner" | "left" | "right" | "full" | "semi" | "anti";
  /** ON conditions besides the key equalities, over the joined row (window joins). */
  condition?: (row: Row, time: number) => boolean;
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

/**
 * Saved as a four-element array: MessagePack then writes no field names, and a
 * checkpoint of q4's join state packs 15-25% faster. Files written before hold
 * the object itself.
 */
const savedSides: unknown[] = [null, null, null, null];
const sidesCodec: StateCodec<Sides> = {
  // One array for every save: it is encoded at once (see StateCodec).
  save: (s) => {
    savedSides[0] = s.left;
    savedSides[1] = s.leftTimes;
    savedSides[2] = s.right;
    savedSides[3] = s.rightTimes;
    return savedSides;
  },
  load: (saved) => {
    if (!Array.isArray(saved)) return saved as Sides;
    const [left, leftTimes, right, rightTimes] = saved as [Row[], number[], Row[], number[]];
    return { left, leftTimes, right, rightTimes };
  },
};

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
  /** Padding for a left row without a match (the right side's columns). */
  protected readonly nulls: null[];
  /** Padding for a right row without a match (the left side's columns). */
  protected readonly leftNulls: null[];
  /** Whether unmatched left rows / right rows are kept, NULL-padded. */
  protected readonly leftOuter: boolean;
  protected readonly rightOuter: boolean;
  private readonly scratch: unknown[];

  constructor(protected readonly spec: JoinSpec) {
    this.nulls = new Array(spec.rightWidth).fill(null);
    this.leftNulls = new Array(spec.leftWidth).fill(null);
    // An anti join keeps its unmatched left rows, as they are: `padded` gives them unchanged.
    this.leftOuter = spec.joinType === "left" || spec.joinType === "full" || spec.joinType === "anti";
    this.rightOuter = spec.joinType === "right" || spec.joinType === "full";
    this.scratch = new Array(spec.leftKeys.length);
  }

  /** The output row of a left row without a match, or of a right row without one. */
  protected padded(row: Row, input: number): Row {
    if (this.spec.joinType === "anti") return row;
    return input === LEFT ? [...row, ...this.nulls] : [...this.leftNulls, ...row];
  }

  /** Whether `input`'s side keeps its unmatched rows. */
  protected outer(input: number): boolean {
    return input === LEFT ? this.leftOuter : this.rightOuter;
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
  /** Outer rows with a NULL key, padded, by window end: they match nothing and are emitted when their window closes. */
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
    this.windows = ctx.state.timeKeyed<Sides>("windows", sidesCodec);
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
        if (this.outer(input)) this.unmatchable.update(end, this.keyHash(), [], () => []).value.push(this.padded(row, input));
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
        const cond = this.spec.condition;
        if (this.spec.joinType === "semi" || this.spec.joinType === "anti") {
          const keep = this.spec.joinType === "semi";
          for (const l of left) {
            const matched = cond ? right.some((r) => cond([...l, ...r], end - 1)) : right.length > 0;
            if (matched === keep) output.push(l, end - 1);
          }
          continue;
        }
        const rightMatched = this.rightOuter ? new Uint8Array(right.length) : null;
        for (const l of left) {
          let matched = false;
          for (let j = 0; j < right.length; j++) {
            const row = [...l, ...right[j]!];
            if (cond && !cond(row, end - 1)) continue;
            matched = true;
            if (rightMatched) rightMatched[j] = 1;
            output.push(row, end - 1);
          }
          if (!matched && this.leftOuter) output.push([...l, ...this.nulls], end - 1);
        }
        if (rightMatched) for (let j = 0; j < right.length; j++) if (!rightMatched[j]) output.push([...this.leftNulls, ...right[j]!], end - 1);
      }
    }
    this.windows.dropUpTo(time);
    for (const end of this.unmatchable.times()) {
      if (end > time) break;
      for (const entry of this.unmatchable.at(end)) for (const row of entry.value) output.push(row, end - 1);
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
    this.state = ctx.state.keyed<Sides>("sides", sidesCodec, this.ttl ? { expiryGranularity: this.ttl / 16 } : {});
  }

  private insert(row: Row, t: number, input: number, output: Output): void {
    if (this.spec.joinType === "semi" || this.spec.joinType === "anti") return this.insertSemi(row, t, input, output);
    if (!this.keyOf(row, t, input)) {
      // A NULL key matches nothing: an outer row stays padded for good, so it is not stored.
      if (this.outer(input)) output.push(this.padded(row, input), t);
      return;
    }
    const entry = this.state.update(this.keyHash(), this.scratchKey(), newSides);
    if (this.ttl && (entry.time === null || t < entry.time)) this.state.setTime(entry, t);
    const sides = entry.value;
    // Plain branches rather than destructured pairs and a closure: this runs once per input row.
    const left = input === LEFT;
    const mine = left ? sides.left : sides.right;
    const other = left ? sides.right : sides.left;
    const otherTimes = left ? sides.rightTimes : sides.leftTimes;
    // The key's first row on this side replaces the padded rows the other side's rows were emitted with.
    if (mine.length === 0 && this.outer(1 - input)) for (const o of other) output.push(this.padded(o, 1 - input), t, RowOp.Delete);
    for (let j = 0; j < other.length; j++) {
      const o = other[j]!;
      const ot = otherTimes[j]!;
      output.push(left ? [...row, ...o] : [...o, ...row], ot > t ? ot : t);
    }
    if (other.length === 0 && this.outer(input)) output.push(this.padded(row, input), t);
    mine.push(row);
    (left ? sides.leftTimes : sides.rightTimes).push(t);
  }

  /** Removes one stored copy of `row` and deletes the output rows it made; a row never stored changes nothing. */
  private retract(row: Row, t: number, input: number, output: Output): void {
    if (this.spec.joinType === "semi" || this.spec.joinType === "anti") return this.retractSemi(row, t, input, output);
    if (!this.keyOf(row, t, input)) {
      if (this.outer(input)) output.push(this.padded(row, input), t, RowOp.Delete);
      return;
    }
    const taken = this.take(row, input);
    if (!taken) return;
    const { entry, stored } = taken;
    const sides = entry.value;
    const [mine, other] = input === LEFT ? [sides.left, sides.right] : [sides.right, sides.left];
    const joined = (o: Row) => (input === LEFT ? [...stored, ...o] : [...o, ...stored]);
    for (const o of other) output.push(joined(o), t, RowOp.Delete);
    if (other.length === 0 && this.outer(input)) output.push(this.padded(stored, input), t, RowOp.Delete);
    // The key's last row on this side gone: the other side's rows are unmatched again.
    if (mine.length === 0 && this.outer(1 - input)) for (const o of other) output.push(this.padded(o, 1 - input), t);
    if (sides.left.length === 0 && sides.right.length === 0) this.state.delete(entry);
  }

  /** Removes one stored copy of `row` (of the key last put in scratch) from its side; undefined when none is stored. */
  private take(row: Row, input: number): { entry: StateEntry<Sides>; stored: Row } | undefined {
    const entry = this.state.get(this.keyHash(), this.scratchKey());
    if (!entry) return undefined;
    const sides = entry.value;
    const [mine, mineTimes] = input === LEFT ? [sides.left, sides.leftTimes] : [sides.right, sides.rightTimes];
    const at = mine.findIndex((r) => rowsEqual(r, row));
    if (at < 0) return undefined;
    this.state.modify(entry);
    const stored = mine[at]!;
    mine.splice(at, 1);
    mineTimes.splice(at, 1);
    return { entry, stored };
  }

  /**
   * Semi/anti join: a left row is in the output while its key has (semi) or
   * lacks (anti) right rows; the key's first right row and its last one's
   * retraction flip every left row of the key.
   */
  private insertSemi(row: Row, t: number, input: number, output: Output): void {
    const semi = this.spec.joinType === "semi";
    if (!this.keyOf(row, t, input)) {
      if (input === LEFT && !semi) output.push(row, t);
      return;
    }
    const entry = this.state.update(this.keyHash(), this.scratchKey(), newSides);
    if (this.ttl && (entry.time === null || t < entry.time)) this.state.setTime(entry, t);
    const s = entry.value;
    if (input === LEFT) {
      if (s.right.length > 0 === semi) output.push(row, t);
      s.left.push(row);
      s.leftTimes.push(t);
      return;
    }
    if (s.right.length === 0) {
      for (let j = 0; j < s.left.length; j++) {
        if (semi) output.push(s.left[j]!, Math.max(t, s.leftTimes[j]!));
        else output.push(s.left[j]!, t, RowOp.Delete);
      }
    }
    s.right.push(row);
    s.rightTimes.push(t);
  }

  private retractSemi(row: Row, t: number, input: number, output: Output): void {
    const semi = this.spec.joinType === "semi";
    if (!this.keyOf(row, t, input)) {
      if (input === LEFT && !semi) output.push(row, t, RowOp.Delete);
      return;
    }
    const taken = this.take(row, input);
    if (!taken) return;
    const { entry, stored } = taken;
    const s = entry.value;
    if (input === LEFT) {
      if (s.right.length > 0 === semi) output.push(stored, t, RowOp.Delete);
    } else if (s.right.length === 0) {
      for (const l of s.left) output.push(l, t, semi ? RowOp.Delete : RowOp.Insert);
    }
    if (s.left.length === 0 && s.right.length === 0) this.state.delete(entry);
  }
}
