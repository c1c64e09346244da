/**
 * Local top-N before the hash shuffle into a windowed top-N (`WHERE r <= N`
 * over RANK or DENSE_RANK, as Nexmark q5's hottest auction per window): of the
 * rows of one batch in the same (event time, partition), only those ranked
 * within N among themselves are sent. A row's rank among a subset of its
 * partition is never above its rank among all of it, so every row the window
 * function would keep is sent, and the window function, which trims to N as
 * it goes, ends with the same rows. (ROW_NUMBER breaks ties by arrival, which
 * a subset would change: not filtered.) Stateless across batches, like the
 * window combiner (core/operators/window-combine.ts), and bound the same way:
 * rows the window function could judge late pass untouched, so its late count
 * stays what it was.
 */
import { keyComparator, type AggregateOrder } from "../expr/aggregates.ts";
import type { Batch, Row } from "../plugin-api/index.ts";
import { hashValues } from "../state/hash.ts";
import { KeyedMap } from "../state/keyed-map.ts";
import type { Collector, Operator } from "./operator.ts";
import { ReceiverWatermarkBound } from "./window-combine.ts";
import { insertSorted, trim, type Entry, type WindowFunctionSpec } from "./window-function.ts";

export class RankPrefilter implements Operator {
  readonly name = "top-N prefilter";
  private readonly bound: ReceiverWatermarkBound;
  private readonly compare: (a: Entry, b: Entry) => number;
  private readonly scratch: unknown[];
  private readonly limit: { n: number; by: "rank" | "dense_rank" };

  /** `restoredWatermark`: the watermark the window function after the shuffle restored (−∞ for a fresh start). */
  constructor(
    private readonly spec: WindowFunctionSpec,
    restoredWatermark: number,
  ) {
    const limit = spec.limit;
    if (!limit || limit.by === "row_number") throw new Error("a top-N prefilter needs a RANK or DENSE_RANK limit");
    this.limit = { n: limit.n, by: limit.by };
    this.bound = new ReceiverWatermarkBound(restoredWatermark);
    const byKeys = keyComparator(spec.order.map((o): AggregateOrder => ({ desc: o.desc, nullsFirst: o.nullsFirst })));
    this.compare = (a, b) => byKeys(a[1], b[1]);
    this.scratch = new Array(spec.partition.length + 1);
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times } = batch;
    const { partition, order } = this.spec;
    const { n, by } = this.limit;
    const bound = this.bound.value;
    const scratch = this.scratch;
    const np = partition.length;
    const groups = new KeyedMap<Entry[]>();
    const make = (): Entry[] => [];
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      if (t < bound) continue;
      const row = rows[i]!;
      for (let k = 0; k < np; k++) scratch[k] = partition[k]!(row, t);
      scratch[np] = t;
      const list = groups.getOrCreate(hashValues(scratch), scratch, make).value;
      insertSorted(list, [row, order.map((o) => o.key(row, t))], this.compare);
      trim(list, n, by, this.compare);
    }
    const kept = new Set<Row>();
    for (const e of groups.entries()) for (const [row] of e.value) kept.add(row);
    // Kept rows in their batch order (ties keep their arrival order at the window function).
    const outRows: Row[] = [];
    const outTimes: number[] = [];
    for (let i = 0; i < rows.length; i++) {
      if (times[i]! >= bound && !kept.has(rows[i]!)) continue;
      outRows.push(rows[i]!);
      outTimes.push(times[i]!);
    }
    return out.emit({ rows: outRows, times: outTimes });
  }

  onWatermark(time: number): void {
    this.bound.advance(time);
  }

  onIdle(): void {
    this.bound.idle();
  }
}
