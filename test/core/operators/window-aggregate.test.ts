import { describe, expect, test } from "bun:test";
import { accumulatorFor } from "../../../core/operators/accumulators.ts";
import type { Collector, OperatorContext } from "../../../core/operators/operator.ts";
import { SessionWindowAggregate, SlidingWindowAggregate, type AggregateSpec } from "../../../core/operators/window-aggregate.ts";
import type { Batch, Row } from "../../../core/plugin-api/index.ts";
import { StateHarness } from "../../kit/operator-state.ts";

const S = 1_000_000;
const int = { kind: "int", bits: 64 } as const;

function ctx(subtaskIndex = 0, parallelism = 1): OperatorContext {
  return new StateHarness("w").context(subtaskIndex, parallelism);
}

/** Groups by row[0], aggregates count(*), sum(row[1]), max(row[1]). */
function spec(): AggregateSpec {
  return {
    keys: [(r: Row) => r[0]],
    args: [undefined, (r: Row) => r[1], (r: Row) => r[1]],
    accumulators: [
      accumulatorFor({ fn: "count", args: [], distinct: false, star: true, type: int }, undefined, false),
      accumulatorFor({ fn: "sum", args: [], distinct: false, star: false, type: int }, undefined, false),
      accumulatorFor({ fn: "max", args: [], distinct: false, star: false, type: int }, undefined, false),
    ],
  };
}

function collector(): Collector & { rows: Row[]; times: number[] } {
  const c = {
    rows: [] as Row[],
    times: [] as number[],
    emit(b: Batch) {
      c.rows.push(...b.rows);
      c.times.push(...b.times);
    },
  };
  return c;
}

const batch = (records: [string, number, number][]): Batch => ({
  rows: records.map(([k, v]) => [k, v]),
  times: records.map(([, , t]) => t),
});

describe("tumbling windows", () => {
  test("emit each window once the watermark reaches its end, with event time end - 1", () => {
    const op = new SlidingWindowAggregate(spec(), 10 * S, 10 * S);
    op.open(ctx());
    const out = collector();
    op.process(batch([["a", 1, 1 * S], ["b", 5, 2 * S], ["a", 2, 9 * S], ["a", 7, 12 * S]]));
    op.onWatermark(9 * S, out);
    expect(out.rows).toEqual([]);
    op.onWatermark(10 * S, out);
    expect(out.rows).toEqual([
      ["a", { start: 0, end: 10 * S }, 2, 3, 2],
      ["b", { start: 0, end: 10 * S }, 1, 5, 5],
    ]);
    expect(out.times).toEqual([10 * S - 1, 10 * S - 1]);
    op.onWatermark(25 * S, out);
    expect(out.rows[2]).toEqual(["a", { start: 10 * S, end: 20 * S }, 1, 7, 7]);
  });

  test("records behind the watermark are dropped and counted", () => {
    const c = ctx();
    const op = new SlidingWindowAggregate(spec(), 10 * S, 10 * S);
    op.open(c);
    const out = collector();
    op.process(batch([["a", 1, 15 * S]]));
    op.onWatermark(14 * S, out);
    op.process(batch([["a", 100, 13 * S], ["a", 2, 14 * S]]));
    op.onWatermark(20 * S, out);
    expect(out.rows).toEqual([["a", { start: 10 * S, end: 20 * S }, 2, 3, 2]]);
    expect(c.metrics.lateDropped).toBe(1);
  });

  test("state survives a checkpoint and restore, also at another parallelism", async () => {
    const harness = new StateHarness("w");
    const op = new SlidingWindowAggregate(spec(), 10 * S, 10 * S);
    const c = harness.context();
    op.open(c);
    op.process(batch([["a", 1, 1 * S], ["b", 2, 2 * S], ["c", 3, 3 * S], ["d", 4, 4 * S]]));
    await harness.checkpoint([{ ctx: c, prepare: () => op.prepareCheckpoint() }]);
    const results: Row[] = [];
    for (let i = 0; i < 2; i++) {
      const restored = new SlidingWindowAggregate(spec(), 10 * S, 10 * S);
      restored.open(await harness.restore(i, 2));
      const out = collector();
      restored.onWatermark(10 * S, out);
      results.push(...out.rows);
    }
    expect(results.map((r) => r[0]).sort()).toEqual(["a", "b", "c", "d"]);
  });
});

describe("hopping windows", () => {
  test("each record counts in width/slide windows", () => {
    const op = new SlidingWindowAggregate(spec(), 2 * S, 6 * S);
    op.open(ctx());
    const out = collector();
    op.process(batch([["a", 1, 1 * S], ["a", 1, 3 * S]]));
    op.onWatermark(100 * S, out);
    const windows = out.rows.map((r) => [(r[1] as any).start / S, (r[1] as any).end / S, r[2]]);
    // Windows start at multiples of 2 s and are 6 s wide.
    expect(windows).toEqual([
      [-4, 2, 1],
      [-2, 4, 2],
      [0, 6, 2],
      [2, 8, 1],
    ]);
  });
});

describe("session windows", () => {
  test("a gap closes a session; a record bridging two sessions merges them", () => {
    const op = new SessionWindowAggregate(spec(), 5 * S);
    op.open(ctx());
    const out = collector();
    op.process(batch([["u", 1, 0], ["u", 1, 3 * S], ["u", 1, 20 * S], ["u", 1, 12 * S]]));
    op.onWatermark(19 * S, out);
    // [0, 8) and [12, 17) are separate: 12 - 3 > 5.
    expect(out.rows).toEqual([
      ["u", { start: 0, end: 8 * S }, 2, 2, 1],
      ["u", { start: 12 * S, end: 17 * S }, 1, 1, 1],
    ]);
    op.process(batch([["u", 1, 22 * S], ["u", 1, 30 * S], ["u", 1, 26 * S]]));
    op.onWatermark(100 * S, out);
    // 20, 22, 26 (bridges to 30): one session [20, 35).
    expect(out.rows[2]).toEqual(["u", { start: 20 * S, end: 35 * S }, 4, 4, 1]);
    expect(out.rows.length).toBe(3);
  });

  test("rows exactly a gap apart are two sessions whichever arrives first (DuckDB: ts - lag(ts) < gap)", () => {
    for (const order of [[0, 5 * S], [5 * S, 0]]) {
      const op = new SessionWindowAggregate(spec(), 5 * S);
      op.open(ctx());
      const out = collector();
      op.process(batch(order.map((t) => ["u", 1, t] as [string, number, number])));
      op.onWatermark(100 * S, out);
      expect(out.rows).toEqual([
        ["u", { start: 0, end: 5 * S }, 1, 1, 1],
        ["u", { start: 5 * S, end: 10 * S }, 1, 1, 1],
      ]);
    }
  });

  test("a row bridging three sessions merges them into the first, in order", () => {
    const op = new SessionWindowAggregate(spec(), 2 * S);
    op.open(ctx());
    const out = collector();
    op.process(batch([["u", 1, 0], ["u", 2, 3 * S], ["u", 3, 6 * S], ["u", 4, 20 * S]]));
    // 1.5 s reaches [0, 2); its span [1.5, 3.5) reaches [3, 5); 4.5 s then bridges [1.5.., 5) and [6, 8).
    op.process(batch([["u", 5, 1.5 * S], ["u", 6, 4.5 * S]]));
    op.onWatermark(100 * S, out);
    expect(out.rows).toEqual([
      ["u", { start: 0, end: 8 * S }, 5, 17, 6],
      ["u", { start: 20 * S, end: 22 * S }, 1, 4, 4],
    ]);
  });
});
