/**
 * The combiner and the window aggregate merging its partials, as operators: the
 * same input, rows and watermarks gives the same windows and the same late
 * count as the aggregate fed the rows themselves, including when the
 * aggregate's watermark is ahead of the sending subtask's (after it went idle,
 * or after a restore).
 */
import { describe, expect, test } from "bun:test";
import { accumulatorFor, filtered, FILTERED_OUT } from "../../../core/operators/accumulators.ts";
import type { OperatorContext } from "../../../core/operators/operator.ts";
import { SessionWindowAggregate, SlidingWindowAggregate, type AggregateSpec } from "../../../core/operators/window-aggregate.ts";
import { SessionCombiner, WindowCombiner } from "../../../core/operators/window-combine.ts";
import type { Batch, Row } from "../../../core/plugin-api/index.ts";
import type { PluginRegistry } from "../../../core/registry/registry.ts";
import { batchCollector, StateHarness } from "../../kit/operator-state.ts";
import { prng } from "../../kit/sql.ts";

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

/**
 * Session windows: the SessionCombiner's partial sessions merged by the
 * session aggregate against the aggregate fed the rows, on random inputs
 * (out of order, some far behind, rows exactly a gap apart, idle senders,
 * restored watermarks), watermark by watermark.
 */
describe("session combiner", () => {
  const GAP = 4;
  // count(*), sum(v), min(v), max(v), avg(v), count(*) FILTER (WHERE v > 50), and a UDAF with merge (object state).
  const meanOf = {
    name: "mean_of",
    init: () => ({ n: 0, total: 0 }),
    add: (s: { n: number; total: number }, v: number) => ({ n: s.n + 1, total: s.total + v }),
    merge: (a: { n: number; total: number }, b: { n: number; total: number }) => ({ n: a.n + b.n, total: a.total + b.total }),
    result: (s: { n: number; total: number }) => (s.n === 0 ? null : s.total / s.n),
  };
  const registry = { udaf: (name: string) => (name === "mean_of" ? meanOf : undefined) } as unknown as PluginRegistry;
  function sessionSpec(twoKeys: boolean): AggregateSpec {
    const call = (fn: string, star = false) => ({ fn, args: [], distinct: false, star, type: fn === "avg" ? dbl : int });
    const v = (r: Row) => r[1];
    return {
      keys: twoKeys ? [(r: Row) => r[0], (r: Row) => r[2]] : [(r: Row) => r[0]],
      args: [undefined, v, v, v, v, (r: Row) => ((r[1] as number) > 50 ? 1 : FILTERED_OUT), (r: Row) => [r[1]]],
      accumulators: [
        ...[call("count", true), call("sum"), call("min"), call("max"), call("avg")].map((c) => accumulatorFor(c, undefined, false)),
        filtered(accumulatorFor(call("count", true), undefined, false)),
        accumulatorFor({ fn: "mean_of", args: [], distinct: false, star: false, type: dbl }, registry, false),
      ],
    };
  }

  type SessionStep = { rows: [string, number, number, number][] } | { senderWatermark: number } | { aggregateWatermark: number } | { idle: true };

  /** Like `both` above, for sessions; outputs are tagged with the step that fired them. Rows: [key, v, key2, time]. */
  function bothSessions(steps: SessionStep[], twoKeys: boolean, restoredWatermark = -Infinity, breakIdle = false) {
    const plain = new SessionWindowAggregate(sessionSpec(twoKeys), GAP);
    const mergingSpec = sessionSpec(twoKeys);
    // Partials carry their key values first, as job.ts reads them (partialKeys).
    mergingSpec.keys = mergingSpec.keys.map((_, k) => (r: Row) => r[k]);
    const merging = new SessionWindowAggregate(mergingSpec, GAP, true);
    const [plainCtx, mergingCtx] = [ctx(), ctx()];
    plain.open(plainCtx);
    merging.open(mergingCtx);
    const combiner = new SessionCombiner(sessionSpec(twoKeys), GAP, restoredWatermark);
    const outPlain: string[] = [];
    const outMerged: string[] = [];
    const tagged = (into: string[], step: number) => ({ emit: (b: Batch) => void b.rows.forEach((r, i) => into.push(JSON.stringify([step, r, b.times[i]]))) });
    const watermark = (time: number, step: number) => {
      plain.onWatermark(time, tagged(outPlain, step));
      merging.onWatermark(time, tagged(outMerged, step));
    };
    if (restoredWatermark > -Infinity) watermark(restoredWatermark, -1);
    let rows = 0;
    let partials = 0;
    let folded = 0;
    steps.forEach((step, n) => {
      if ("rows" in step) {
        const batch = { rows: step.rows.map(([k, v, k2]) => [k, v, k2]), times: step.rows.map((r) => r[3]) };
        plain.process(batch);
        const out = collector();
        combiner.process(batch, out);
        for (const b of out.batches) merging.process(b);
        rows += batch.rows.length;
        partials += out.rows.length;
        folded += out.rows.reduce((s, r) => s + (r[twoKeys ? 2 : 1] as number), 0);
      } else if ("senderWatermark" in step) {
        combiner.onWatermark(step.senderWatermark);
        watermark(step.senderWatermark, n);
      } else if ("aggregateWatermark" in step) watermark(step.aggregateWatermark, n);
      else if (!breakIdle) combiner.onIdle();
    });
    watermark(Number.MAX_SAFE_INTEGER, steps.length);
    return { plain: outPlain.sort(), merged: outMerged.sort(), rows, partials, folded, late: [plainCtx.metrics.lateDropped, mergingCtx.metrics.lateDropped] };
  }

  /** Random steps: keys skewed to "a", times on a coarse grid (so rows exactly GAP apart are common), out of order, some far behind. */
  function randomSteps(seed: number, idle: boolean): SessionStep[] {
    const rand = prng(seed);
    const steps: SessionStep[] = [];
    let now = 100;
    let sent = -Infinity;
    let wentIdle = false;
    for (let b = 0; b < 30; b++) {
      const rows: [string, number, number, number][] = [];
      for (let i = 0, n = 1 + Math.floor(rand() * 14); i < n; i++) {
        now += Math.floor(rand() * 3);
        let t = now - Math.floor(rand() * 7);
        if (rand() < 0.06) t = now - 10 - Math.floor(rand() * 30);
        const key = rand() < 0.5 ? "a" : ["b", "c", "d"][Math.floor(rand() * 3)]!;
        rows.push([key, Math.floor(rand() * 100), Math.floor(rand() * 2), t]);
      }
      steps.push({ rows });
      const r = rand();
      if (r < 0.5 && now - 6 > sent) steps.push({ senderWatermark: (sent = now - 6) });
      else if (idle && !wentIdle && r < 0.6) {
        wentIdle = true;
        steps.push({ idle: true }, { aggregateWatermark: now + Math.floor(rand() * 6) });
      }
    }
    return steps;
  }

  test("partial sessions give the aggregate's sessions over rows: random inputs, one and two keys, idle senders and restores", () => {
    let rows = 0;
    let partials = 0;
    let late = 0;
    let multiRow = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const idle = seed % 4 === 0;
      const restored = seed % 5 === 0 ? 95 : -Infinity;
      const r = bothSessions(randomSteps(seed, idle), seed % 2 === 0, restored);
      expect(r.merged).toEqual(r.plain);
      expect(r.late[1]).toBe(r.late[0]);
      expect(r.folded).toBe(r.rows);
      rows += r.rows;
      partials += r.partials;
      late += r.late[0]!;
      const countAt = seed % 2 === 0 ? 3 : 2;
      multiRow += r.plain.filter((s) => JSON.parse(s)[1][countAt] > 1).length;
    }
    // The inputs exercised what they should: folding, late rows, sessions of several rows.
    expect(partials).toBeLessThan(rows * 0.8);
    expect(late).toBeGreaterThan(100);
    expect(multiRow).toBeGreaterThan(1000);
  });

  test("a partial bridging two sessions joins them; rows exactly a gap apart stay apart", () => {
    const r = bothSessions(
      [
        { rows: [["u", 1, 0, 10], ["u", 2, 0, 30]] },
        { senderWatermark: 5 },
        // 13..28 fold into one partial [13, 32), which bridges [10, 14) and [30, 34). 34 is exactly GAP after 30: apart.
        { rows: [["u", 3, 0, 13], ["u", 4, 0, 16], ["u", 5, 0, 19], ["u", 6, 0, 22], ["u", 7, 0, 25], ["u", 8, 0, 28], ["u", 9, 0, 34]] },
      ],
      false,
    );
    expect(r.merged).toEqual(r.plain);
    const sessions = r.merged.map((s) => JSON.parse(s)[1]);
    expect(sessions).toEqual([
      ["u", { start: 10, end: 34 }, 8, 36, 1, 8, 4.5, 0, 4.5],
      ["u", { start: 34, end: 38 }, 1, 9, 9, 9, 9, 0, 9],
    ]);
    // [10], [30]; then [13..28], [34].
    expect(r.partials).toBe(4);
  });

  test("after the sender went idle rows travel alone; without that rule a partial straddling the aggregate's watermark is refused", () => {
    const steps: SessionStep[] = [
      { rows: [["a", 1, 0, 1]] },
      { senderWatermark: 2 },
      { idle: true },
      { aggregateWatermark: 12 },
      { rows: [["a", 2, 0, 10], ["a", 3, 0, 11], ["a", 4, 0, 13], ["a", 5, 0, 14]] },
    ];
    const r = bothSessions(steps, false);
    expect(r.merged).toEqual(r.plain);
    expect(r.late).toEqual([2, 2]);
    expect(() => bothSessions(steps, false, -Infinity, true)).toThrow(/partial session of 4 rows arrived behind the watermark/);
  });
});
