/**
 * Event-time window aggregates. Tumbling and hopping windows share one
 * implementation over panes (slices of `slide` width): each record updates one
 * pane, and a window's result merges its width/slide panes when it fires.
 * Session windows keep, per key, the open sessions sorted by start.
 *
 * A window [start, end) fires once the watermark reaches `end`; its rows carry
 * event time end − 1 µs. Records behind the watermark are late: dropped, counted.
 */
import type { Batch, Row } from "../plugin-api/index.ts";
import { hashValues } from "../state/hash.ts";
import { KeyedMap } from "../state/keyed-map.ts";
import type { SubtaskValue } from "../state/operator-state.ts";
import type { KeyedTable, StateCodec, TimeKeyedTable } from "../state/tables.ts";
import { initValues, type Accumulator } from "./accumulators.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";

export type RowFn = (row: Row, time: number) => unknown;

export interface AggregateSpec {
  keys: RowFn[];
  /** One per aggregate; undefined for count(*). */
  args: (RowFn | undefined)[];
  accumulators: Accumulator[];
}

function saveAccs(accs: Accumulator[], values: any[]): unknown[] {
  return values.map((v, i) => (accs[i]!.save ? accs[i]!.save!(v) : v));
}
function loadAccs(accs: Accumulator[], saved: unknown[]): any[] {
  return saved.map((v, i) => (accs[i]!.load ? accs[i]!.load!(v) : v));
}

/** How accumulator values are stored in state tables. */
export function accumulatorCodec(accs: Accumulator[]): StateCodec<any[]> {
  // Plain values (counts, sums, min/max) are written as they are: a snapshot encodes them at once, so no copy is needed.
  const plain = accs.every((a) => !a.save && !a.load);
  return { save: plain ? (values) => values : (values) => saveAccs(accs, values), load: plain ? (saved) => saved as any[] : (saved) => loadAccs(accs, saved as unknown[]) };
}

/** The watermark a window operator has passed and the last window end it fired, per subtask. */
interface WindowClock {
  watermark: number | null;
  lastFiredEnd?: number | null;
}

/** The watermark a window operator (aggregate or window functions: both keep a `clock`) restores from its old subtasks' values: the furthest any had got. */
export function restoredWindowWatermark(oldSubtaskValues: Record<string, unknown>[]): number {
  let w = -Infinity;
  for (const v of oldSubtaskValues) {
    const c = v.clock as WindowClock | undefined;
    if (c && c.watermark !== null) w = Math.max(w, c.watermark);
  }
  return w;
}

/** Evaluates a group (or partition) key into a reused scratch array and hashes it. */
export class KeyEvaluator {
  readonly scratch: unknown[];
  constructor(private readonly fns: RowFn[]) {
    this.scratch = new Array(fns.length);
  }
  eval(row: Row, time: number): number {
    for (let k = 0; k < this.fns.length; k++) this.scratch[k] = this.fns[k]!(row, time);
    return hashValues(this.scratch);
  }
}

abstract class KeyedWindowOperator implements Operator {
  abstract readonly name: string;
  protected ctx!: OperatorContext;
  protected watermark = -Infinity;
  protected readonly keyEval: KeyEvaluator;
  protected clock!: SubtaskValue<WindowClock>;

  /** Restores the clock: after a rescale, the furthest any old subtask had got. */
  protected openClock(ctx: OperatorContext): WindowClock[] {
    this.ctx = ctx;
    this.clock = ctx.state.union<WindowClock>("clock");
    for (const c of this.clock.restored) if (c.watermark !== null) this.watermark = Math.max(this.watermark, c.watermark);
    return this.clock.restored;
  }

  constructor(protected readonly spec: AggregateSpec) {
    this.keyEval = new KeyEvaluator(spec.keys);
  }

  protected addTo(accValues: any[], row: Row, time: number): void {
    const { args, accumulators } = this.spec;
    for (let j = 0; j < accumulators.length; j++) {
      const arg = args[j];
      accValues[j] = accumulators[j]!.add(accValues[j], arg ? arg(row, time) : 1);
    }
  }

  protected initAccs(): any[] {
    return initValues(this.spec.accumulators);
  }

  /**
   * Whether a combiner's partial at `time` is late here (counted, to be skipped). The combiner folds only
   * rows no watermark here can have passed, so a late partial is a row that came alone; one of several
   * rows cannot have its rows' lateness judged one by one.
   */
  protected latePartial(time: number, folded: number, what = "partial"): boolean {
    if (time >= this.watermark) return false;
    if (folded !== 1) throw new Error(`internal error: a ${what} of ${folded} rows arrived behind the watermark (${time} < ${this.watermark}); its rows' lateness cannot be judged one by one`);
    this.ctx.metrics.lateDropped++;
    return true;
  }

  /** Merges a partial's accumulators, saved as checkpoints save them from `row[from]` on, into `accValues`. */
  protected mergeSaved(accValues: any[], row: Row, from: number): void {
    const accs = this.spec.accumulators;
    for (let j = 0; j < accs.length; j++) {
      const saved = row[from + j];
      accValues[j] = accs[j]!.merge(accValues[j], accs[j]!.load ? accs[j]!.load!(saved) : saved);
    }
  }

  /** An output row: the key's values, the window, then the results (built in place: a row per group per firing). */
  protected windowRow(key: readonly unknown[], window: unknown, accValues: any[]): Row {
    const accs = this.spec.accumulators;
    const row: Row = new Array(key.length + 1 + accs.length);
    let i = 0;
    for (; i < key.length; i++) row[i] = key[i];
    row[i++] = window;
    for (let j = 0; j < accs.length; j++) row[i++] = accs[j]!.result(accValues[j]);
    return row;
  }

  abstract process(batch: Batch, out: Collector): void;
  abstract onWatermark(time: number, out: Collector): void | Promise<void>;
}

export class SlidingWindowAggregate extends KeyedWindowOperator {
  readonly name: string;
  /** (pane start, key) → accumulators. */
  private panes!: TimeKeyedTable<any[]>;
  private lastFiredEnd = -Infinity;

  /**
   * With `partialInput`, rows are a WindowCombiner's partials (core/operators/window-combine.ts):
   * [...key, rows folded, ...saved accumulators] at the earliest folded row's time, and `spec.keys`
   * read the key columns. Their panes and state are the same as for single rows.
   */
  constructor(
    spec: AggregateSpec,
    private readonly slide: number,
    private readonly width: number,
    private readonly partialInput = false,
  ) {
    super(spec);
    this.name = slide === width ? "tumble" : "hop";
  }

  open(ctx: OperatorContext): void {
    for (const c of this.openClock(ctx)) if (c.lastFiredEnd != null) this.lastFiredEnd = Math.max(this.lastFiredEnd, c.lastFiredEnd);
    this.panes = ctx.state.timeKeyed("panes", accumulatorCodec(this.spec.accumulators));
  }

  prepareCheckpoint(): void {
    this.clock.value = {
      watermark: Number.isFinite(this.watermark) ? this.watermark : null,
      lastFiredEnd: Number.isFinite(this.lastFiredEnd) ? this.lastFiredEnd : null,
    };
  }

  process(batch: Batch): void {
    if (this.partialInput) return this.mergePartials(batch);
    const { rows, times } = batch;
    const slide = this.slide;
    const panes = this.panes;
    const init = () => this.initAccs();
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      if (t < this.watermark) {
        this.ctx.metrics.lateDropped++;
        continue;
      }
      const row = rows[i]!;
      const start = Math.floor(t / slide) * slide;
      const hash = this.keyEval.eval(row, t);
      const entry = panes.update(start, hash, this.keyEval.scratch, init);
      this.addTo(entry.value, row, t);
    }
  }

  private mergePartials(batch: Batch): void {
    const { rows, times } = batch;
    const slide = this.slide;
    const at = this.spec.keys.length;
    const init = () => this.initAccs();
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      const row = rows[i]!;
      if (this.latePartial(t, row[at] as number)) continue;
      const start = Math.floor(t / slide) * slide;
      const hash = this.keyEval.eval(row, t);
      this.mergeSaved(this.panes.update(start, hash, this.keyEval.scratch, init).value, row, at + 1);
    }
  }

  onWatermark(time: number, out: Collector): void | Promise<void> {
    if (time <= this.watermark) return;
    this.watermark = time;
    const { slide, width } = this;
    const rows: Row[] = [];
    const times: number[] = [];
    const starts = this.panes.times();
    while (starts.length > 0) {
      const first = starts[0]!;
      const end = Math.max(first + slide, this.lastFiredEnd + slide);
      if (end > time) break;
      this.fire(end - width, end, rows, times);
      this.lastFiredEnd = end;
      // Panes that no later window contains.
      this.panes.dropUpTo(end - width);
    }
    if (rows.length > 0) return out.emit({ rows, times });
  }

  private fire(start: number, end: number, rows: Row[], times: number[]): void {
    const window = { start, end };
    const accs = this.spec.accumulators;
    if (this.slide === this.width) {
      for (const e of this.panes.at(start)) {
        rows.push(this.windowRow(e.key, window, e.value));
        times.push(end - 1);
      }
      return;
    }
    const merged = new KeyedMap<any[]>();
    const init = () => this.initAccs();
    for (let p = start; p < end; p += this.slide) {
      for (const e of this.panes.at(p)) {
        // A pane entry's key is never changed: the merged entry shares it.
        const m = merged.getOrCreate(e.hash, e.key, init, false);
        for (let j = 0; j < accs.length; j++) m.value[j] = accs[j]!.merge(m.value[j], cloneAcc(e.value[j]));
      }
    }
    for (const e of merged.entries()) {
      rows.push(this.windowRow(e.key, window, e.value));
      times.push(end - 1);
    }
  }
}

/** Merging must not alias a pane's accumulator into a window result (panes are reused). */
function cloneAcc(v: any): any {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof Map) return new Map(v);
  if (Array.isArray(v)) return v.slice();
  return structuredClone(v);
}

export interface Session {
  start: number;
  /** Last event time + gap. */
  end: number;
  accs: any[];
}

/**
 * Places the span [start, end) among a key's sessions (disjoint, sorted by
 * start): a row at t spans [t, t + gap), a partial session its own start and
 * end. Sessions it overlaps become one, the first absorbing the later ones in
 * order (accumulators merged), extended to cover the span; that session's
 * index is returned. Overlapping none, nothing changes and the index where a
 * new session goes is returned as ~index (negative). Overlap is strict, so two
 * rows exactly `gap` apart stay apart whichever comes first (DuckDB's
 * `ts - lag(ts) < gap`). Searched from the end: rows mostly come in time order.
 */
export function placeSession(list: Session[], start: number, end: number, accs: Accumulator[]): number {
  let hi = list.length - 1;
  while (hi >= 0 && list[hi]!.start >= end) hi--;
  if (hi < 0 || list[hi]!.end <= start) return ~(hi + 1);
  let lo = hi;
  while (lo > 0 && list[lo - 1]!.end > start) lo--;
  const s = list[lo]!;
  if (start < s.start) s.start = start;
  for (let i = lo + 1; i <= hi; i++) {
    const next = list[i]!;
    for (let j = 0; j < accs.length; j++) s.accs[j] = accs[j]!.merge(s.accs[j], next.accs[j]);
  }
  const last = list[hi]!.end;
  if (last > s.end) s.end = last;
  if (end > s.end) s.end = end;
  if (hi > lo) list.splice(lo + 1, hi - lo);
  return lo;
}

export class SessionWindowAggregate extends KeyedWindowOperator {
  readonly name = "session";
  private sessions!: KeyedTable<Session[]>;
  /** Candidate (end, entry) pairs to fire, a min-heap on end; stale ones are skipped. */
  private readonly heap = new MinHeap<{ end: number; hash: number; key: unknown[] }>();

  /**
   * With `partialInput`, rows are a SessionCombiner's partial sessions (core/operators/window-combine.ts):
   * [...key, rows folded, end − start, ...saved accumulators] at their start, and `spec.keys` read the key columns.
   * A partial is placed by its start and end as a row by its time and time + gap.
   */
  constructor(
    spec: AggregateSpec,
    private readonly gap: number,
    private readonly partialInput = false,
  ) {
    super(spec);
  }

  open(ctx: OperatorContext): void {
    this.openClock(ctx);
    const accs = this.spec.accumulators;
    this.sessions = ctx.state.keyed<Session[]>("sessions", {
      save: (list) => list.map((s) => [s.start, s.end, saveAccs(accs, s.accs)]),
      load: (saved) => (saved as [number, number, unknown[]][]).map(([start, end, a]) => ({ start, end, accs: loadAccs(accs, a) })),
    });
    // The fire queue is derived: each key's first session end.
    for (const e of this.sessions.entries()) if (e.value.length > 0) this.heap.push(e.value[0]!.end, { end: e.value[0]!.end, hash: e.hash, key: e.key });
  }

  prepareCheckpoint(): void {
    this.clock.value = { watermark: Number.isFinite(this.watermark) ? this.watermark : null };
  }

  process(batch: Batch): void {
    if (this.partialInput) return this.mergePartials(batch);
    const { rows, times } = batch;
    const gap = this.gap;
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      if (t < this.watermark) {
        this.ctx.metrics.lateDropped++;
        continue;
      }
      const row = rows[i]!;
      this.addTo(this.sessionFor(row, t, t + gap), row, t);
    }
  }

  private mergePartials(batch: Batch): void {
    const { rows, times } = batch;
    const at = this.spec.keys.length;
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      const row = rows[i]!;
      if (this.latePartial(t, row[at] as number, "partial session")) continue;
      this.mergeSaved(this.sessionFor(row, t, t + (row[at + 1] as number)), row, at + 2);
    }
  }

  /** The accumulators of the session [start, end) joins, merging the sessions it bridges, or of a new one. */
  private sessionFor(row: Row, start: number, end: number): any[] {
    const hash = this.keyEval.eval(row, start);
    const entry = this.sessions.update(hash, this.keyEval.scratch, () => []);
    const list = entry.value;
    const idx = placeSession(list, start, end, this.spec.accumulators);
    if (idx >= 0) return list[idx]!.accs;
    const session = { start, end, accs: this.initAccs() };
    list.splice(~idx, 0, session);
    // Only new sessions go on the heap; extended ones are re-queued when popped early.
    this.heap.push(end, { end, hash, key: entry.key });
    return session.accs;
  }

  onWatermark(time: number, out: Collector): void | Promise<void> {
    if (time <= this.watermark) return;
    this.watermark = time;
    const rows: Row[] = [];
    const times: number[] = [];
    while (this.heap.size > 0 && this.heap.peekPriority()! <= time) {
      const item = this.heap.pop()!;
      const entry = this.sessions.get(item.hash, item.key);
      if (!entry) continue;
      const list = entry.value;
      if (list.length > 0 && list[0]!.end <= time) this.sessions.modify(entry);
      // Fire every session of this key that has ended (stale heap items find nothing).
      while (list.length > 0 && list[0]!.end <= time) {
        const s = list.shift()!;
        rows.push(this.windowRow(entry.key, { start: s.start, end: s.end }, s.accs));
        times.push(s.end - 1);
      }
      if (list.length === 0) this.sessions.delete(entry);
      else this.heap.push(list[0]!.end, { end: list[0]!.end, hash: item.hash, key: entry.key });
    }
    if (rows.length > 0) return out.emit({ rows, times });
  }
}

class MinHeap<T> {
  private readonly pri: number[] = [];
  private readonly items: T[] = [];
  get size(): number {
    return this.pri.length;
  }
  peekPriority(): number | undefined {
    return this.pri[0];
  }
  push(priority: number, item: T): void {
    let i = this.pri.length;
    this.pri.push(priority);
    this.items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.pri[parent]! <= priority) break;
      this.pri[i] = this.pri[parent]!;
      this.items[i] = this.items[parent]!;
      i = parent;
    }
    this.pri[i] = priority;
    this.items[i] = item;
  }
  pop(): T | undefined {
    const n = this.pri.length;
    if (n === 0) return undefined;
    const top = this.items[0];
    const lastP = this.pri.pop()!;
    const lastI = this.items.pop()!;
    if (n > 1) {
      let i = 0;
      const size = n - 1;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && this.pri[c + 1]! < this.pri[c]!) c++;
        if (this.pri[c]! >= lastP) break;
        this.pri[i] = this.pri[c]!;
        this.items[i] = this.items[c]!;
        i = c;
      }
      this.pri[i] = lastP;
      this.items[i] = lastI;
    }
    return top;
  }
}
