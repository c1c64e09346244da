/**
 * The combiner and the window aggregate merging its partials, as operators: the
 * same input, rows and watermarks gives the same windows and the same late
 * count as the aggregate fed the rows themselves, including when the
 * aggregate's watermark is ahead of the sending subtask's (after it went idle,
 * or after a restore).
 */
import { describe, expect, test } from "bun:test";
import { accumulatorFor } from "../../../core/operators/accumulators.ts";
import type { OperatorContext } from "../../../core/operators/operator.ts";
import { SlidingWindowAggregate, type AggregateSpec } from "../../../core/operators/window-aggregate.ts";
import { WindowCombiner } from "../../../core/operators/window-combine.ts";
import type { Batch, Row } from "../../../core/plugin-api/index.ts";
import { batchCollector, StateHarness } from "../../kit/operator-state.ts";

const S = 1_000_000;
const int = { kind: "int", bits: 64 } as const;
const dbl = { kind: "float", bits: 64 } as const;

const ctx = (): OperatorContext => new StateHarness("w").context(0, 1);

/** Groups by row[0]: count(*), sum(row[1]), min(row[1]), avg(row[1]). */
function spec(): AggregateSpec {
  const call = (fn: string, star = false) => ({ fn, args: [], distinct: false, star, type: fn === "avg" ? dbl : int });
  return {
    keys: [(r: Row) => r[0]],
    args: [undefined, (r: Row) => r[1], (r: Row) => r[1], (r: Row) => r[1]],
    accumulators: [call("count", true), call("sum"), call("min"), call("avg")].map((c) => accumulatorFor(c, undefined, false)),
  };
}

const collector = batchCollector;

type Step = { rows: [string, number, number][] } | { senderWatermark: number } | { aggregateWatermark: number } | { idle: true };

/**
 * Runs `steps` through the aggregate alone, and through combiner → aggregate
 * (`senderWatermark` reaches both, as a watermark reaches the aggregate when
 * its only input sends it; `aggregateWatermark` only the aggregate, as when
 * other inputs moved it while this one was idle). Returns both outputs and late counts.
 */
function both(slide: number, width: number, steps: Step[], restoredWatermark = -Infinity, skipIdle = false) {
  const plain = new SlidingWindowAggregate(spec(), slide, width);
  const merging = new SlidingWindowAggregate(spec(), slide, width, true) // partials carry the key in column 0 too;
  const plainCtx = ctx();
  const mergingCtx = ctx();
  plain.open(plainCtx);
  merging.open(mergingCtx);
  const combiner = new WindowCombiner(spec(), slide, restoredWatermark);
  if (restoredWatermark > -Infinity) {
    plain.onWatermark(restoredWatermark, collector());
    merging.onWatermark(restoredWatermark, collector());
  }
  const [outPlain, outMerged, partials] = [collector(), collector(), collector()];
  for (const step of steps) {
    if ("rows" in step) {
      const batch = { rows: step.rows.map(([k, v]) => [k, v]), times: step.rows.map(([, , t]) => t) };
      plain.process(batch);
      const before = partials.batches.length;
      combiner.process(batch, partials);
      for (const b of partials.batches.slice(before)) merging.process(b);
    } else if ("senderWatermark" in step) {
      combiner.onWatermark(step.senderWatermark);
      plain.onWatermark(step.senderWatermark, outPlain);
      merging.onWatermark(step.senderWatermark, outMerged);
    } else if ("aggregateWatermark" in step) {
      plain.onWatermark(step.aggregateWatermark, outPlain);
      merging.onWatermark(step.aggregateWatermark, outMerged);
    } else if (!skipIdle) combiner.onIdle();
  }
  plain.onWatermark(Number.MAX_SAFE_INTEGER, outPlain);
  merging.onWatermark(Number.MAX_SAFE_INTEGER, outMerged);
  const sorted = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();
  return {
    plain: sorted(outPlain.rows),
    merged: sorted(outMerged.rows),
    partials: partials.rows.length,
    late: [plainCtx.metrics.lateDropped, mergingCtx.metrics.lateDropped],
  };
}

describe("window combiner", () => {
  test("folds a batch into one partial per key and pane; tumble and hop results equal the aggregate's over rows", () => {
    const rows: [string, number, number][] = [];
    for (let i = 0; i < 300; i++) rows.push([i % 3 === 0 ? "hot" : `k${i % 7}`, i, Math.floor(i / 3) * 0.1 * S]);
    const steps: Step[] = [{ rows: rows.slice(0, 150) }, { senderWatermark: 4 * S }, { rows: rows.slice(150) }];
    for (const [slide, width] of [[2 * S, 2 * S], [1 * S, 3 * S]] as const) {
      const r = both(slide, width, steps);
      expect(r.merged).toEqual(r.plain);
      expect(r.plain.length).toBeGreaterThan(20);
      expect(r.partials).toBeLessThan(100);
      expect(r.late).toEqual([0, 0]);
    }
  });

  test("rows behind the sender's watermark travel alone and are dropped one by one, as without the combiner", () => {
    const r = both(10 * S, 10 * S, [
      { rows: [["a", 1, 1 * S], ["a", 2, 8 * S]] },
      { senderWatermark: 7 * S },
      // 3 s and 5 s are late; 7 s and 9 s are not; all in pane [0, 10 s).
      { rows: [["a", 3, 3 * S], ["a", 4, 9 * S], ["a", 5, 5 * S], ["a", 6, 7 * S]] },
    ]);
    expect(r.merged).toEqual(r.plain);
    expect(r.late).toEqual([2, 2]);
  });

  test("after the sender went idle the aggregate may be ahead of it: rows travel alone, lateness judged as before", () => {
    const steps: Step[] = [
      { rows: [["a", 1, 1 * S]] },
      { senderWatermark: 2 * S },
      { idle: true },
      // Other inputs moved the aggregate on while this one was idle.
      { aggregateWatermark: 6 * S },
      { senderWatermark: 3 * S },
      { rows: [["a", 2, 4 * S], ["a", 3, 5 * S], ["a", 4, 7 * S], ["a", 5, 8 * S]] },
    ];
    const r = both(10 * S, 10 * S, steps);
    expect(r.merged).toEqual(r.plain);
    expect(r.late).toEqual([2, 2]);
    // Without the idle rule the partial of 4 s..8 s would straddle the aggregate's watermark: refused, not guessed.
    expect(() => both(10 * S, 10 * S, steps, -Infinity, true)).toThrow(/partial of 4 rows arrived behind the watermark/);
  });

  test("after a restore the aggregate's restored watermark bounds what is folded", () => {
    const r = both(10 * S, 10 * S, [{ rows: [["a", 1, 4 * S], ["a", 2, 5 * S], ["a", 3, 7 * S], ["a", 4, 8 * S]] }], 6 * S);
    expect(r.merged).toEqual(r.plain);
    expect(r.late).toEqual([2, 2]);
  });
});
