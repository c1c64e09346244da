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
import type { Accumulator } from "./accumulators.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";

export type RowFn = (row: Row, time: number) => unknown;

export interface AggregateSpec {
  keys: RowFn[];
  /** One per aggregate; undefined for count(*). */
  args: (RowFn | undefined)[];
  accumulators: Accumulator[];
}

const STATE_VERSION = 1;

function saveAccs(accs: Accumulator[], values: any[]): unknown[] {
  return values.map((v, i) => (accs[i]!.save ? accs[i]!.save!(v) : v));
}
function loadAccs(accs: Accumulator[], saved: unknown[]): any[] {
  return saved.map((v, i) => (accs[i]!.load ? accs[i]!.load!(v) : v));
}

/** Evaluates the group key into a reused scratch array and hashes it. */
class KeyEvaluator {
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
    return this.spec.accumulators.map((a) => a.init());
  }

  protected results(accValues: any[]): unknown[] {
    return accValues.map((v, j) => this.spec.accumulators[j]!.result(v));
  }

  /** On restore, keep only the keys that hash to this subtask now. */
  protected ownsHash(hash: number): boolean {
    return hash % this.ctx.parallelism === this.ctx.subtaskIndex;
  }

  abstract process(batch: Batch, out: Collector): void;
  abstract onWatermark(time: number, out: Collector): void | Promise<void>;
}

export class SlidingWindowAggregate extends KeyedWindowOperator {
  readonly name: string;
  /** Pane start → groups in that pane. */
  private readonly panes = new Map<number, KeyedMap<any[]>>();
  private paneStarts: number[] = [];
  private lastFiredEnd = -Infinity;

  constructor(
    spec: AggregateSpec,
    private readonly slide: number,
    private readonly width: number,
  ) {
    super(spec);
    this.name = slide === width ? "tumble" : "hop";
  }

  open(ctx: OperatorContext, restored: unknown[] | undefined): void {
    this.ctx = ctx;
    for (const s of restored ?? []) {
      if (!s) continue;
      const st = s as { version: number; watermark: number | null; lastFiredEnd: number | null; panes: [number, [number, unknown[], unknown[]][]][] };
      if (st.version !== STATE_VERSION) throw new Error(`window state version ${st.version} is not supported`);
      if (st.watermark !== null) this.watermark = Math.max(this.watermark, st.watermark);
      if (st.lastFiredEnd !== null) this.lastFiredEnd = Math.max(this.lastFiredEnd, st.lastFiredEnd);
      for (const [start, groups] of st.panes) {
        const pane = this.pane(start);
        for (const [hash, key, accs] of groups) {
          if (!this.ownsHash(hash)) continue;
          pane.getOrCreate(hash, key, () => loadAccs(this.spec.accumulators, accs));
        }
      }
    }
  }

  private pane(start: number): KeyedMap<any[]> {
    let pane = this.panes.get(start);
    if (!pane) {
      pane = new KeyedMap();
      this.panes.set(start, pane);
      const starts = this.paneStarts;
      if (starts.length === 0 || starts[starts.length - 1]! < start) starts.push(start);
      else {
        let lo = 0;
        let hi = starts.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (starts[mid]! < start) lo = mid + 1;
          else hi = mid;
        }
        starts.splice(lo, 0, start);
      }
    }
    return pane;
  }

  process(batch: Batch): void {
    const { rows, times } = batch;
    const slide = this.slide;
    const init = () => this.initAccs();
    let currentStart = NaN;
    let current: KeyedMap<any[]> | undefined;
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      if (t < this.watermark) {
        this.ctx.metrics.lateDropped++;
        continue;
      }
      const row = rows[i]!;
      const start = Math.floor(t / slide) * slide;
      if (start !== currentStart) {
        currentStart = start;
        current = this.pane(start);
      }
      const hash = this.keyEval.eval(row, t);
      const entry = current!.getOrCreate(hash, this.keyEval.scratch, init);
      this.addTo(entry.value, row, t);
    }
  }

  onWatermark(time: number, out: Collector): void | Promise<void> {
    if (time <= this.watermark) return;
    this.watermark = time;
    const { slide, width } = this;
    const rows: Row[] = [];
    const times: number[] = [];
    while (this.paneStarts.length > 0) {
      const first = this.paneStarts[0]!;
      const end = Math.max(first + slide, this.lastFiredEnd + slide);
      if (end > time) break;
      this.fire(end - width, end, rows, times);
      this.lastFiredEnd = end;
      // Panes that no later window contains.
      while (this.paneStarts.length > 0 && this.paneStarts[0]! < end - width + slide) {
        this.panes.delete(this.paneStarts.shift()!);
      }
    }
    if (rows.length > 0) return out.emit({ rows, times });
  }

  private fire(start: number, end: number, rows: Row[], times: number[]): void {
    const window = { start, end };
    const accs = this.spec.accumulators;
    if (this.slide === this.width) {
      const pane = this.panes.get(start);
      if (!pane) return;
      for (const e of pane.entries()) {
        rows.push([...e.key, window, ...this.results(e.value)]);
        times.push(end - 1);
      }
      return;
    }
    const merged = new KeyedMap<any[]>();
    for (let p = start; p < end; p += this.slide) {
      const pane = this.panes.get(p);
      if (!pane) continue;
      for (const e of pane.entries()) {
        const m = merged.getOrCreate(e.hash, e.key, () => this.initAccs());
        for (let j = 0; j < accs.length; j++) m.value[j] = accs[j]!.merge(m.value[j], cloneAcc(e.value[j]));
      }
    }
    for (const e of merged.entries()) {
      rows.push([...e.key, window, ...this.results(e.value)]);
      times.push(end - 1);
    }
  }

  snapshot(): unknown {
    const accs = this.spec.accumulators;
    return {
      version: STATE_VERSION,
      watermark: Number.isFinite(this.watermark) ? this.watermark : null,
      lastFiredEnd: Number.isFinite(this.lastFiredEnd) ? this.lastFiredEnd : null,
      panes: this.paneStarts.map((start) => [
        start,
        [...this.panes.get(start)!.entries()].map((e) => [e.hash, e.key, saveAccs(accs, e.value)]),
      ]),
    };
  }
}

/** Merging must not alias a pane's accumulator into a window result (panes are reused). */
function cloneAcc(v: any): any {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof Map) return new Map(v);
  if (Array.isArray(v)) return v.slice();
  return structuredClone(v);
}

interface Session {
  start: number;
  /** Last event time + gap. */
  end: number;
  accs: any[];
}

export class SessionWindowAggregate extends KeyedWindowOperator {
  readonly name = "session";
  private readonly sessions = new KeyedMap<Session[]>();
  /** Candidate (end, entry) pairs to fire, a min-heap on end; stale ones are skipped. */
  private readonly heap = new MinHeap<{ end: number; hash: number; key: unknown[] }>();

  constructor(
    spec: AggregateSpec,
    private readonly gap: number,
  ) {
    super(spec);
  }

  open(ctx: OperatorContext, restored: unknown[] | undefined): void {
    this.ctx = ctx;
    for (const s of restored ?? []) {
      if (!s) continue;
      const st = s as { version: number; watermark: number | null; groups: [number, unknown[], [number, number, unknown[]][]][] };
      if (st.version !== STATE_VERSION) throw new Error(`session state version ${st.version} is not supported`);
      if (st.watermark !== null) this.watermark = Math.max(this.watermark, st.watermark);
      for (const [hash, key, list] of st.groups) {
        if (!this.ownsHash(hash)) continue;
        const entry = this.sessions.getOrCreate(hash, key, () => []);
        for (const [start, end, accs] of list) {
          entry.value.push({ start, end, accs: loadAccs(this.spec.accumulators, accs) });
          this.heap.push(end, { end, hash, key: entry.key });
        }
      }
    }
  }

  process(batch: Batch): void {
    const { rows, times } = batch;
    const gap = this.gap;
    const accs = this.spec.accumulators;
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      if (t < this.watermark) {
        this.ctx.metrics.lateDropped++;
        continue;
      }
      const row = rows[i]!;
      const hash = this.keyEval.eval(row, t);
      const entry = this.sessions.getOrCreate(hash, this.keyEval.scratch, () => []);
      const list = entry.value;
      // Sessions are disjoint and sorted; find the first one this record reaches.
      let idx = 0;
      while (idx < list.length && list[idx]!.end <= t) idx++;
      let session: Session;
      if (idx < list.length && list[idx]!.start <= t + gap) {
        session = list[idx]!;
        if (t < session.start) session.start = t;
        if (t + gap > session.end) session.end = t + gap;
        // The extended session may now reach the next ones: merge them in.
        while (idx + 1 < list.length && list[idx + 1]!.start < session.end) {
          const next = list.splice(idx + 1, 1)[0]!;
          if (next.end > session.end) session.end = next.end;
          for (let j = 0; j < accs.length; j++) session.accs[j] = accs[j]!.merge(session.accs[j], next.accs[j]);
        }
      } else {
        session = { start: t, end: t + gap, accs: this.initAccs() };
        list.splice(idx, 0, session);
        // Only new sessions go on the heap; extended ones are re-queued when popped early.
        this.heap.push(session.end, { end: session.end, hash, key: entry.key });
      }
      this.addTo(session.accs, row, t);
    }
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
      // Fire every session of this key that has ended (stale heap items find nothing).
      while (list.length > 0 && list[0]!.end <= time) {
        const s = list.shift()!;
        rows.push([...entry.key, { start: s.start, end: s.end }, ...this.results(s.accs)]);
        times.push(s.end - 1);
      }
      if (list.length === 0) this.sessions.delete(entry);
      else this.heap.push(list[0]!.end, { end: list[0]!.end, hash: item.hash, key: entry.key });
    }
    if (rows.length > 0) return out.emit({ rows, times });
  }

  snapshot(): unknown {
    const accs = this.spec.accumulators;
    return {
      version: STATE_VERSION,
      watermark: Number.isFinite(this.watermark) ? this.watermark : null,
      groups: [...this.sessions.entries()].map((e) => [
        e.hash,
        e.key,
        e.value.map((s) => [s.start, s.end, saveAccs(accs, s.accs)]),
      ]),
    };
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
