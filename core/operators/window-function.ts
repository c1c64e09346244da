/**
 * Window functions (ROW_NUMBER, RANK, LAG, aggregates OVER ...) over windowed
 * input: every row of a partition carries the same event time (the partition
 * holds the time window, whose rows are emitted together at window end − 1 µs),
 * so a partition is complete once the watermark passes that time. Rows are kept
 * per (time, partition) until then, sorted, and emitted with the functions'
 * values appended, at their own event time.
 *
 * With a top-N limit (`WHERE rn <= N` over ROW_NUMBER/RANK/DENSE_RANK), each
 * partition keeps its rows sorted and trimmed to those that can still rank
 * within N, so state is bounded by N per partition.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import type { WindowFrame } from "../plan/logical.ts";
import { rowsEqual } from "../state/hash.ts";
import type { KeyedTable, StateCodec, StateEntry, TimeKeyedTable } from "../state/tables.ts";
import type { SubtaskValue } from "../state/operator-state.ts";
import { keyComparator, type Accumulator, type AggregateOrder } from "../expr/aggregates.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import { KeyEvaluator, type RowFn } from "./window-aggregate.ts";

type Frame = WindowFrame;
type FrameBound = WindowFrame["start"];

export type WindowFn =
  | { kind: "row_number" | "rank" | "dense_rank" | "percent_rank" | "cume_dist" }
  | { kind: "ntile"; buckets: number }
  /** `ignoreNulls`: rows whose value is NULL do not count (IGNORE NULLS). */
  | { kind: "lag" | "lead"; arg: RowFn; offset: number; fallback: RowFn | undefined; ignoreNulls: boolean }
  | { kind: "first_value" | "last_value"; arg: RowFn; frame: Frame; ignoreNulls: boolean }
  | { kind: "nth_value"; arg: RowFn; n: number; frame: Frame; ignoreNulls: boolean }
  | { kind: "aggregate"; arg: RowFn | undefined; accumulator: Accumulator; frame: Frame };

export interface WindowFunctionSpec {
  partition: RowFn[];
  /** `column`: the input column the key is, when ORDER BY names a column (so a kept row carries its keys). */
  order: { key: RowFn; desc: boolean; nullsFirst: boolean; column?: number }[];
  functions: WindowFn[];
  /** Top-N: only rows ranked within `n` by `by` are kept and emitted. */
  limit?: { n: number; by: "row_number" | "rank" | "dense_rank" };
}

/** A buffered row and its sort keys, evaluated once. */
export type Entry = [row: Row, keys: unknown[]];

interface Clock {
  watermark: number | null;
}

export class WindowFunctionOperator implements Operator {
  readonly name = "window functions";
  private ctx!: OperatorContext;
  private watermark = -Infinity;
  private clock!: SubtaskValue<Clock>;
  /** (event time, partition key) → entries (sorted when limited). */
  private partitions!: TimeKeyedTable<Entry[]>;
  private readonly compare: (a: Entry, b: Entry) => number;
  private readonly partitionKey: KeyEvaluator;

  constructor(private readonly spec: WindowFunctionSpec) {
    const byKeys = keyComparator(spec.order.map((o): AggregateOrder => ({ desc: o.desc, nullsFirst: o.nullsFirst })));
    this.compare = (a, b) => byKeys(a[1], b[1]);
    this.partitionKey = new KeyEvaluator(spec.partition);
  }

  open(ctx: OperatorContext): void {
    this.ctx = ctx;
    this.clock = ctx.state.union<Clock>("clock");
    for (const c of this.clock.restored) if (c.watermark !== null) this.watermark = Math.max(this.watermark, c.watermark);
    this.partitions = ctx.state.timeKeyed<Entry[]>("partitions");
  }

  prepareCheckpoint(): void {
    this.clock.value = { watermark: Number.isFinite(this.watermark) ? this.watermark : null };
  }

  process(batch: Batch): void {
    const { rows, times } = batch;
    const { order, limit } = this.spec;
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      if (t < this.watermark) {
        this.ctx.metrics.lateDropped++;
        continue;
      }
      const row = rows[i]!;
      const entry = this.partitions.update(t, this.partitionKey.eval(row, t), this.partitionKey.scratch, () => []);
      const e: Entry = [row, order.map((o) => o.key(row, t))];
      if (!limit) {
        entry.value.push(e);
        continue;
      }
      insertSorted(entry.value, e, this.compare);
      trim(entry.value, limit.n, limit.by, this.compare);
    }
  }

  onWatermark(time: number, out: Collector): void | Promise<void> {
    if (time <= this.watermark) return;
    this.watermark = time;
    const times = this.partitions.times();
    let upTo = -Infinity;
    const outRows: Row[] = [];
    const outTimes: number[] = [];
    for (const t of times) {
      // A partition's rows all have time t; one arriving later than the watermark would be late.
      if (t >= time) break;
      for (const e of this.partitions.at(t)) {
        const entries = this.spec.limit ? e.value : e.value.slice().sort(this.compare);
        for (const row of this.evaluate(entries, t)) {
          outRows.push(row);
          outTimes.push(t);
        }
      }
      upTo = t;
    }
    if (upTo > -Infinity) this.partitions.dropUpTo(upTo);
    if (outRows.length > 0) return out.emit({ rows: outRows, times: outTimes });
  }

  private evaluate(entries: Entry[], time: number): Row[] {
    return evaluatePartition(this.spec, this.compare, entries, time);
  }
}

const offsetRanges = new WeakMap<WindowFunctionSpec, boolean>();

/** Whether a function's frame is a RANGE with an offset (then the ORDER BY key's values are needed); fixed per spec. */
function hasOffsetRange(spec: WindowFunctionSpec): boolean {
  let known = offsetRanges.get(spec);
  if (known === undefined) {
    known = spec.functions.some((f) => "frame" in f && f.frame.units === "range" && [f.frame.start, f.frame.end].some((b) => b.kind !== "current" && b.offset !== null));
    offsetRanges.set(spec, known);
  }
  return known;
}

/** A partition's rows, sorted, with the functions' values appended (only rows ranked within the limit, if any). */
function evaluatePartition(spec: WindowFunctionSpec, compare: (a: Entry, b: Entry) => number, entries: Entry[], time: number): Row[] {
  const n = entries.length;
  // Peer groups: rows equal on every ORDER BY key.
  const peerStart = new Int32Array(n);
  const peerEnd = new Int32Array(n);
  const dense = new Int32Array(n);
  for (let i = 0, group = 0; i < n; i++) {
    const newGroup = i === 0 || compare(entries[i - 1]!, entries[i]!) !== 0;
    if (newGroup) group++;
    peerStart[i] = newGroup ? i : peerStart[i - 1]!;
    dense[i] = group;
  }
  for (let i = n - 1; i >= 0; i--) peerEnd[i] = i === n - 1 || peerStart[i + 1] !== peerStart[i] ? i : peerEnd[i + 1]!;
  const offsetRange = hasOffsetRange(spec);
  const range = offsetRange ? rangeKeys(entries, spec.order[0]!.desc) : undefined;
  const columns = spec.functions.map((f) => column(f, entries, time, peerStart, peerEnd, dense, range));
  const limit = spec.limit;
  const out: Row[] = [];
  for (let i = 0; i < n; i++) {
    if (limit) {
      const rank = limit.by === "row_number" ? i + 1 : limit.by === "rank" ? peerStart[i]! + 1 : dense[i]!;
      if (rank > limit.n) break;
    }
    const row = entries[i]![0].slice();
    for (const c of columns) row.push(c[i]);
    out.push(row);
  }
  return out;
}

export function insertSorted(list: Entry[], e: Entry, compare: (a: Entry, b: Entry) => number): void {
  // After equal keys: arrival order breaks ties, as a stable sort would.
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compare(list[mid]!, e) <= 0) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, e);
}

/** Drops the rows of a sorted partition that can no longer rank within `n`. */
export function trim(list: Entry[], n: number, by: "row_number" | "rank" | "dense_rank", compare: (a: Entry, b: Entry) => number): void {
  if (list.length <= n) return;
  if (by === "row_number") {
    list.length = n;
    return;
  }
  if (by === "rank") {
    // Rows tied with the n-th share its rank.
    let keep = n;
    while (keep < list.length && compare(list[keep]!, list[n - 1]!) === 0) keep++;
    list.length = keep;
    return;
  }
  let groups = 1;
  for (let i = 1; i < list.length; i++) {
    if (compare(list[i - 1]!, list[i]!) !== 0 && ++groups > n) {
      list.length = i;
      return;
    }
  }
}

/**
 * A partition's one ORDER BY key, for RANGE frames with an offset: the values
 * in sort order, negated when descending (so they ascend), and the rows
 * [lo, hi] that are not NULL (NULLs sort to one end).
 */
interface RangeKeys {
  values: (number | null)[];
  lo: number;
  hi: number;
}

function rangeKeys(entries: Entry[], desc: boolean): RangeKeys {
  const sign = desc ? -1 : 1;
  const values = entries.map((e) => (e[1][0] == null ? null : sign * (e[1][0] as number)));
  let lo = 0;
  while (lo < values.length && values[lo] === null) lo++;
  let hi = values.length - 1;
  while (hi >= 0 && values[hi] === null) hi--;
  return { values, lo, hi };
}

/** The first row of [r.lo, r.hi] whose value is ≥ `v` (r.hi + 1 when none). */
function firstAtLeast(r: RangeKeys, v: number): number {
  let lo = r.lo;
  let hi = r.hi + 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((r.values[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The last row of [r.lo, r.hi] whose value is ≤ `v` (r.lo − 1 when none). */
function lastAtMost(r: RangeKeys, v: number): number {
  let lo = r.lo;
  let hi = r.hi + 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((r.values[mid] as number) <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Row indices [lo, hi] of row i's frame (lo > hi when empty). */
function frameOf(frame: Frame, i: number, n: number, peerStart: Int32Array, peerEnd: Int32Array, range?: RangeKeys): [number, number] {
  const bound = (b: FrameBound, isStart: boolean): number => {
    if (b.kind === "current") return frame.units === "range" ? (isStart ? peerStart[i]! : peerEnd[i]!) : i;
    if (b.offset === null) return b.kind === "preceding" ? 0 : n - 1;
    if (frame.units === "range") {
      // RANGE: rows whose key is within the offset of this row's (in the sort's direction); a NULL key's frame is its NULL peers.
      const v = range!.values[i];
      if (v === null) return isStart ? peerStart[i]! : peerEnd[i]!;
      const target = b.kind === "preceding" ? v - b.offset : v + b.offset;
      return isStart ? firstAtLeast(range!, target) : lastAtMost(range!, target);
    }
    return b.kind === "preceding" ? i - b.offset : i + b.offset;
  };
  return [Math.max(0, bound(frame.start, true)), Math.min(n - 1, bound(frame.end, false))];
}

function column(f: WindowFn, entries: Entry[], time: number, peerStart: Int32Array, peerEnd: Int32Array, dense: Int32Array, range?: RangeKeys): unknown[] {
  const n = entries.length;
  const out = new Array<unknown>(n);
  const valueAt = (fn: RowFn, j: number) => fn(entries[j]![0], time) ?? null;
  switch (f.kind) {
    case "row_number":
      for (let i = 0; i < n; i++) out[i] = i + 1;
      return out;
    case "rank":
      for (let i = 0; i < n; i++) out[i] = peerStart[i]! + 1;
      return out;
    case "dense_rank":
      for (let i = 0; i < n; i++) out[i] = dense[i];
      return out;
    case "percent_rank":
      for (let i = 0; i < n; i++) out[i] = n <= 1 ? 0 : peerStart[i]! / (n - 1);
      return out;
    case "cume_dist":
      for (let i = 0; i < n; i++) out[i] = (peerEnd[i]! + 1) / n;
      return out;
    case "ntile": {
      // The first n % buckets buckets hold one row more, as PostgreSQL and DuckDB split them.
      const q = Math.floor(n / f.buckets);
      const r = n % f.buckets;
      for (let i = 0; i < n; i++) out[i] = i < r * (q + 1) ? Math.floor(i / (q + 1)) + 1 : Math.floor((i - r * (q + 1)) / q) + r + 1;
      return out;
    }
    case "lag":
    case "lead": {
      if (!f.ignoreNulls || f.offset === 0) {
        for (let i = 0; i < n; i++) {
          const j = f.kind === "lag" ? i - f.offset : i + f.offset;
          out[i] = j >= 0 && j < n ? valueAt(f.arg, j) : f.fallback ? (f.fallback(entries[i]![0], time) ?? null) : null;
        }
        return out;
      }
      // IGNORE NULLS: the offset-th non-NULL value before (after) the row, counted over the non-NULL rows' positions.
      const values = entries.map((_, j) => valueAt(f.arg, j));
      const present: number[] = [];
      for (let j = 0; j < n; j++) if (values[j] !== null) present.push(j);
      let next = 0; // present[next] is the first non-NULL row at or after i
      for (let i = 0; i < n; i++) {
        while (next < present.length && present[next]! < i) next++;
        const at = f.kind === "lag" ? next - f.offset : (next < present.length && present[next] === i ? next + 1 : next) + f.offset - 1;
        out[i] = at >= 0 && at < present.length ? values[present[at]!] : f.fallback ? (f.fallback(entries[i]![0], time) ?? null) : null;
      }
      return out;
    }
    case "first_value":
    case "last_value":
    case "nth_value": {
      if (!f.ignoreNulls) {
        for (let i = 0; i < n; i++) {
          const [lo, hi] = frameOf(f.frame, i, n, peerStart, peerEnd, range);
          const j = f.kind === "first_value" ? lo : f.kind === "last_value" ? hi : lo + (f as { n: number }).n - 1;
          out[i] = lo <= hi && j <= hi ? valueAt(f.arg, j) : null;
        }
        return out;
      }
      // IGNORE NULLS: the first / last / n-th non-NULL value of the frame, found by the prefix count of non-NULL rows.
      const values = entries.map((_, j) => valueAt(f.arg, j));
      const present: number[] = [];
      const before = new Int32Array(n + 1); // non-NULL rows among the first j
      for (let j = 0; j < n; j++) {
        if (values[j] !== null) present.push(j);
        before[j + 1] = present.length;
      }
      for (let i = 0; i < n; i++) {
        const [lo, hi] = frameOf(f.frame, i, n, peerStart, peerEnd, range);
        const first = before[lo]!;
        const count = lo <= hi ? before[hi + 1]! - first : 0;
        const k = f.kind === "first_value" ? 0 : f.kind === "last_value" ? count - 1 : (f as { n: number }).n - 1;
        out[i] = k >= 0 && k < count ? values[present[first + k]!] : null;
      }
      return out;
    }
    case "aggregate": {
      const acc = f.accumulator;
      const value = (j: number) => (f.arg ? f.arg(entries[j]![0], time) : 1);
      const add = (state: any, j: number) => acc.add(state, value(j));
      // Frames that start at the partition's first row and only grow: one running state.
      let running = acc.init();
      let through = -1;
      for (let i = 0; i < n; i++) {
        const [lo, hi] = frameOf(f.frame, i, n, peerStart, peerEnd, range);
        if (lo === 0 && hi >= through) {
          while (through < hi) running = add(running, ++through);
          out[i] = acc.result(running);
          continue;
        }
        let state = acc.init();
        for (let j = lo; j <= hi; j++) state = add(state, j);
        out[i] = acc.result(state);
      }
      return out;
    }
  }
}

interface Partition {
  /** Every live row, sorted (only the best-ranked when the input cannot retract and there is a limit). */
  entries: Entry[];
}

/** Saved as the entries' array (no field name per partition); files written before hold the object. */
const partitionCodec: StateCodec<Partition> = {
  save: (p) => p.entries,
  load: (saved) => (Array.isArray(saved) ? { entries: saved as Entry[] } : (saved as Partition)),
};

/**
 * Window functions whose partitions never end: over an updating input, or over
 * an append-only one without a time window in PARTITION BY. The result is
 * updating: every partition a batch changes is evaluated before its first
 * change and after the batch (what it emitted, and what it now gives; the rows
 * emitted are not kept), and the difference goes out as deletes and inserts.
 * An updating top-N (`rn <= N`) thus retracts a row that falls out of the top N.
 * Over append-only input a top-N keeps N rows per partition; over updating input
 * it keeps every row, as a retracted row's place is taken by the next one.
 */
export class UpdatingWindowFunctionOperator implements Operator {
  readonly name = "updating window functions";
  private partitions!: KeyedTable<Partition>;
  private readonly compare: (a: Entry, b: Entry) => number;
  private readonly partitionKey: KeyEvaluator;

  constructor(
    private readonly spec: WindowFunctionSpec,
    /** Whether the input has deletes and updates (then partitions are not trimmed to the limit). */
    private readonly retracting: boolean,
  ) {
    const byKeys = keyComparator(spec.order.map((o): AggregateOrder => ({ desc: o.desc, nullsFirst: o.nullsFirst })));
    this.compare = (a, b) => byKeys(a[1], b[1]);
    this.partitionKey = new KeyEvaluator(spec.partition);
  }

  open(ctx: OperatorContext): void {
    this.partitions = ctx.state.keyed<Partition>("partitions", partitionCodec);
  }

  private partition(row: Row, time: number): StateEntry<Partition> {
    return this.partitions.update(this.partitionKey.eval(row, time), this.partitionKey.scratch, () => ({ entries: [] }));
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times, ops, before } = batch;
    /** Each changed partition, with its output before the batch changed it. */
    const touched = new Map<StateEntry<Partition>, Row[]>();
    const limit = this.spec.limit;
    const trimsByRowNumber = limit?.by === "row_number" && !this.retracting;
    let lastTime = 0;
    const touch = (p: StateEntry<Partition>, t: number) => {
      if (!touched.has(p)) touched.set(p, evaluatePartition(this.spec, this.compare, p.value.entries, t));
    };
    const remove = (row: Row, t: number) => {
      const p = this.partition(row, t);
      touch(p, t);
      const list = p.value.entries;
      const i = list.findIndex((e) => rowsEqual(e[0], row));
      if (i >= 0) list.splice(i, 1);
    };
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      lastTime = t;
      const op = ops ? ops[i]! : RowOp.Insert;
      const row = rows[i]!;
      if (op === RowOp.Delete) {
        remove(before?.[i] ?? row, t);
        continue;
      }
      if (op === RowOp.Update && before?.[i]) remove(before[i]!, t);
      const e: Entry = [row, this.spec.order.map((o) => o.key(row, t))];
      if (trimsByRowNumber && op === RowOp.Insert) {
        // A row that sorts after the N-th of a full partition is trimmed at once: nothing changes, nothing to evaluate.
        const full = this.partitions.get(this.partitionKey.eval(row, t), this.partitionKey.scratch)?.value.entries;
        if (full && full.length >= limit.n && this.compare(full[limit.n - 1]!, e) <= 0) continue;
      }
      const p = this.partition(row, t);
      touch(p, t);
      insertSorted(p.value.entries, e, this.compare);
      if (limit && !this.retracting) trim(p.value.entries, limit.n, limit.by, this.compare);
    }
    const outRows: Row[] = [];
    const outOps: RowOp[] = [];
    for (const [p, prev] of touched) {
      pushDifference(prev, evaluatePartition(this.spec, this.compare, p.value.entries, lastTime), outRows, outOps);
      if (p.value.entries.length === 0) this.partitions.delete(p);
    }
    if (outRows.length > 0) {
      return out.emit({ rows: outRows, times: outRows.map(() => lastTime), ops: outOps, before: outRows.map((r, i) => (outOps[i] === RowOp.Delete ? r : null)) });
    }
  }
}

/** A partition's change from the rows it gave (`prev`) to those it gives (`next`): rows in both stay; the others are deleted, then inserted. */
export function pushDifference(prev: Row[], next: Row[], outRows: Row[], outOps: RowOp[]): void {
  const kept = new Array<boolean>(next.length).fill(false);
  for (const old of prev) {
    const j = next.findIndex((r, k) => !kept[k] && rowsEqual(r, old));
    if (j >= 0) kept[j] = true;
    else {
      outRows.push(old);
      outOps.push(RowOp.Delete);
    }
  }
  next.forEach((r, k) => {
    if (kept[k]) return;
    outRows.push(r);
    outOps.push(RowOp.Insert);
  });
}
