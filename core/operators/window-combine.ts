/**
 * Local pre-aggregation before the hash shuffle into a window aggregate
 * (Flink's local-global aggregation, Arroyo's partial aggregates). Chained on
 * the sending side, it folds the rows of each batch and sends partials; the
 * window aggregate after the shuffle merges them. For a tumble or hop: one
 * partial per (key, pane) (SlidingWindowAggregate with partial input). For a
 * session: per key, rows within the gap of each other fold into one partial
 * session [earliest time, latest time + gap), which SessionWindowAggregate
 * places as it places a row's [time, time + gap): sessions it overlaps merge,
 * so a partial bridging two sessions joins them as its rows would have. It
 * keeps nothing between batches, so watermarks and barriers pass it as they
 * pass a map, and it has no state to checkpoint.
 *
 * Lateness stays the aggregate's decision, row by row. A partial arrives at
 * the earliest time it folded, so it is only exact if the aggregate's
 * watermark cannot lie inside its rows' times. The aggregate's watermark is at
 * most the latest one this subtask sent it (it takes the minimum over inputs
 * that are not idle, and waits for one from each) or the one it restored: rows
 * at or after that bound are folded, rows behind it (rare: late at this
 * subtask already) travel alone with their own times. Once this subtask has
 * gone idle, the aggregate may have moved on without it to any watermark, so
 * from then on every row travels alone (exact, without the saving).
 *
 * Partial row: [...key, rows folded, ...accumulators as saved for checkpoints];
 * a partial session's: [...key, rows folded, end − start, ...accumulators].
 */
import { CORE_AGGREGATES } from "../expr/aggregates.ts";
import type { Batch, Row } from "../plugin-api/index.ts";
import type { AggregateCall } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { KeyedMap } from "../state/keyed-map.ts";
import { hashValues } from "../state/hash.ts";
import type { Collector, Operator } from "./operator.ts";
import { initValues, type Accumulator } from "./accumulators.ts";
import { placeSession, type AggregateSpec, type Session } from "./window-aggregate.ts";

/**
 * Whether partials of these calls can be merged after the shuffle: count, sum,
 * avg, min, max (with FILTER) and UDAFs that define merge. DISTINCT and the
 * other library aggregates are planned as before (a wide set per partial saves little).
 */
export function combinable(calls: AggregateCall[], registry: PluginRegistry | undefined): boolean {
  return calls.every((c) => {
    if (c.distinct || c.orderBy?.length) return false;
    const fn = c.fn.toLowerCase();
    if (CORE_AGGREGATES.has(fn)) return true;
    return !!registry?.udaf(fn)?.merge;
  });
}

/** A partial being folded: its row ([...key, rows folded, ...accumulators]) is filled in place. */
interface Partial {
  /** The earliest time folded: the partial's time. */
  time: number;
  row: Row;
}

/**
 * The latest watermark the operator after a shuffle can judge this subtask's
 * rows by (see the file's comment): the one it restored, then each one sent
 * since; +∞ once this subtask went idle. Rows at or after it are on time there.
 */
export class ReceiverWatermarkBound {
  constructor(public value: number) {}
  advance(time: number): void {
    if (time > this.value) this.value = time;
  }
  idle(): void {
    this.value = Infinity;
  }
}

/** A combiner before a shuffle: what both kinds share is the bound on the receiver's watermark its rows are judged by. */
abstract class Combiner implements Operator {
  readonly name = "combine";
  /** Rows at or after it are folded. */
  protected readonly bound: ReceiverWatermarkBound;

  /** `restoredWatermark`: the watermark the aggregate after the shuffle restored (−∞ for a fresh start). */
  constructor(
    protected readonly spec: AggregateSpec,
    restoredWatermark: number,
  ) {
    this.bound = new ReceiverWatermarkBound(restoredWatermark);
  }

  abstract process(batch: Batch, out: Collector): void | Promise<void>;

  onWatermark(time: number): void {
    this.bound.advance(time);
  }

  onIdle(): void {
    this.bound.idle();
  }
}

export class WindowCombiner extends Combiner {
  private readonly scratch: unknown[];

  constructor(
    spec: AggregateSpec,
    private readonly slide: number,
    restoredWatermark: number,
  ) {
    super(spec, restoredWatermark);
    this.scratch = new Array(spec.keys.length + 1);
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times } = batch;
    const { keys, args, accumulators } = this.spec;
    const nk = keys.length;
    const na = accumulators.length;
    const at = nk + 1;
    const slide = this.slide;
    const bound = this.bound.value;
    // A new partial's row: the key values already in `row`, then its count and fresh accumulators.
    const start = (row: Row, time: number): Partial => {
      row.push(0);
      for (let j = 0; j < na; j++) row.push(accumulators[j]!.init());
      return { time, row };
    };
    // One key: a Map on its value per pane (Map-equal values are equal group keys, so no partial
    // mixes groups; equal structs that are not the same object only make two partials). Several: hashed.
    const single = nk === 1 ? new Map<number, Map<unknown, Partial>>() : null;
    const key0 = keys[0]!;
    const groups = single ? null : new KeyedMap<Partial>();
    let lastPane = NaN;
    let paneMap: Map<unknown, Partial> | undefined;
    const scratch = this.scratch;
    const alone: Partial[] = [];
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const t = times[i]!;
      let p: Partial | undefined;
      if (t < bound) {
        p = start(keys.map((k) => k(row, t)), t);
        alone.push(p);
      } else if (single) {
        const pane = Math.floor(t / slide) * slide;
        if (pane !== lastPane) {
          paneMap = single.get(pane);
          if (!paneMap) single.set(pane, (paneMap = new Map()));
          lastPane = pane;
        }
        const k = key0(row, t);
        p = paneMap!.get(k);
        if (p === undefined) paneMap!.set(k, (p = start([k], t)));
        else if (t < p.time) p.time = t;
      } else {
        for (let k = 0; k < nk; k++) scratch[k] = keys[k]!(row, t);
        scratch[nk] = Math.floor(t / slide) * slide;
        p = groups!.getOrCreate(hashValues(scratch), scratch, () => start(scratch.slice(0, nk), t)).value;
        if (t < p.time) p.time = t;
      }
      const r = p.row;
      (r[nk] as number)++;
      for (let j = 0; j < na; j++) {
        const arg = args[j];
        r[at + j] = accumulators[j]!.add(r[at + j], arg ? arg(row, t) : 1);
      }
    }
    const outRows: Row[] = [];
    const outTimes: number[] = [];
    const saves = accumulators.some((a) => a.save);
    const emit = (p: Partial) => {
      // Accumulators travel as checkpoints save them.
      if (saves) for (let j = 0; j < na; j++) if (accumulators[j]!.save) p.row[at + j] = accumulators[j]!.save!(p.row[at + j]);
      outRows.push(p.row);
      outTimes.push(p.time);
    };
    if (single) for (const m of single.values()) for (const p of m.values()) emit(p);
    else for (const e of groups!.entries()) emit(e.value);
    for (const p of alone) emit(p);
    return out.emit({ rows: outRows, times: outTimes });
  }
}

/** Counts the rows a partial session folded; merged as the other accumulators are when partials join. */
const ROWS_FOLDED: Accumulator = { init: () => 0, add: (n: number) => n + 1, merge: (a: number, b: number) => a + b, result: (n: number) => n };

export class SessionCombiner extends Combiner {
  /** The rows-folded count, then the aggregate's accumulators: a partial session's `accs`. */
  private readonly accs: Accumulator[];
  private readonly scratch: unknown[];

  constructor(
    spec: AggregateSpec,
    private readonly gap: number,
    restoredWatermark: number,
  ) {
    super(spec, restoredWatermark);
    this.accs = [ROWS_FOLDED, ...spec.accumulators];
    this.scratch = new Array(spec.keys.length);
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times } = batch;
    const { keys, args, accumulators } = this.spec;
    const accs = this.accs;
    const nk = keys.length;
    const na = accumulators.length;
    const gap = this.gap;
    const bound = this.bound.value;
    // One key: a Map on its value (as WindowCombiner). Several: hashed.
    const single = nk === 1 ? new Map<unknown, Session[]>() : null;
    const key0 = keys[0]!;
    const groups = single ? null : new KeyedMap<Session[]>();
    const scratch = this.scratch;
    const outRows: Row[] = [];
    const outTimes: number[] = [];
    const saves = accumulators.some((a) => a.save);
    // The key's values, then the partial's: one key's value alone saves an array per partial.
    const emit = (key: unknown, keyValues: unknown[] | null, s: Session) => {
      const row: Row = keyValues === null ? [key] : keyValues.slice();
      // The end as its distance from the start (the partial's time): a small integer crosses the exchange as an int32.
      row.push(s.accs[0], s.end - s.start);
      // Accumulators travel as checkpoints save them.
      for (let j = 0; j < na; j++) row.push(saves && accumulators[j]!.save ? accumulators[j]!.save!(s.accs[j + 1]) : s.accs[j + 1]);
      outRows.push(row);
      outTimes.push(s.start);
    };
    const fresh = (t: number): Session => ({ start: t, end: t + gap, accs: initValues(accs) });
    const alone: [unknown[], Session][] = [];
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const t = times[i]!;
      let s: Session;
      if (t < bound) {
        s = fresh(t);
        alone.push([keys.map((k) => k(row, t)), s]);
      } else {
        let list: Session[];
        if (single) {
          const k = key0(row, t);
          list = single.get(k)!;
          if (list === undefined) single.set(k, (list = []));
        } else {
          for (let k = 0; k < nk; k++) scratch[k] = keys[k]!(row, t);
          list = groups!.getOrCreate(hashValues(scratch), scratch, () => []).value;
        }
        // Most often the key's only partial so far takes the row (placeSession's rule for one session).
        const only = list.length === 1 ? list[0]! : undefined;
        if (only !== undefined && t < only.end && only.start < t + gap) {
          s = only;
          if (t < s.start) s.start = t;
          if (t + gap > s.end) s.end = t + gap;
        } else {
          const idx = placeSession(list, t, t + gap, accs);
          if (idx >= 0) s = list[idx]!;
          else list.splice(~idx, 0, (s = fresh(t)));
        }
      }
      const a = s.accs;
      a[0]++;
      for (let j = 0; j < na; j++) {
        const arg = args[j];
        a[j + 1] = accumulators[j]!.add(a[j + 1], arg ? arg(row, t) : 1);
      }
    }
    if (single) for (const [k, list] of single) for (const s of list) emit(k, null, s);
    else for (const e of groups!.entries()) for (const s of e.value) emit(null, e.key, s);
    for (const [key, s] of alone) emit(null, key, s);
    return out.emit({ rows: outRows, times: outTimes });
  }
}
