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

/** The ranks a sorted list's rows take: its length for RANK, its distinct sort keys for DENSE_RANK. */
function ranksFilled(list: Entry[], by: "rank" | "dense_rank", byKeys: (a: unknown[], b: unknown[]) => number): number {
  if (by === "rank") return list.length;
  let groups = 1;
  for (let i = 1; i < list.length; i++) if (byKeys(list[i - 1]![1], list[i]![1]) !== 0) groups++;
  return groups;
}

export class RankPrefilter implements Operator {
  readonly name = "top-N prefilter";
  private readonly bound: ReceiverWatermarkBound;
  private readonly compare: (a: Entry, b: Entry) => number;
  private readonly byKeys: (a: unknown[], b: unknown[]) => number;
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
    this.byKeys = byKeys;
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
    // A fired window's rows come together and share their window value: the last group is looked up once.
    const lastKey = new Array<unknown>(np);
    let lastTime = NaN;
    let list: Entry[] | null = null;
    const keys = new Array<unknown>(order.length);
    const byKeys = this.byKeys;
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      if (t < bound) continue;
      const row = rows[i]!;
      let same = list !== null && t === lastTime;
      for (let k = 0; k < np; k++) {
        const v = partition[k]!(row, t);
        if (v !== lastKey[k]) same = false;
        scratch[k] = v;
      }
      if (!same) {
        scratch[np] = t;
        list = groups.getOrCreate(hashValues(scratch), scratch, make).value;
        for (let k = 0; k < np; k++) lastKey[k] = scratch[k];
        lastTime = t;
      }
      for (let j = 0; j < keys.length; j++) keys[j] = order[j]!.key(row, t);
      // Behind the last of a full list: ranked beyond N, dropped without an entry.
      if (list!.length > 0 && byKeys(keys, list![list!.length - 1]![1]) > 0 && ranksFilled(list!, by, byKeys) >= n) continue;
      insertSorted(list!, [row, keys.slice()], this.compare);
      trim(list!, n, by, this.compare);
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
