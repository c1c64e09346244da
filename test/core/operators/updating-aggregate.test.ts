/**
 * The updating aggregate across a checkpoint and restore: checkpoints leave out
 * the row each group last emitted (it is the key and the accumulators' results
 * between batches), so a restored group must rebuild it exactly: the first update
 * after a restore retracts the row emitted before it, and a group emptied after a
 * restore is deleted with that row. Files written when the row was still saved
 * restore the same.
 */
import { describe, expect, test } from "bun:test";
import { accumulatorFor } from "../../../core/operators/accumulators.ts";
import type { Collector } from "../../../core/operators/operator.ts";
import { UpdatingAggregate } from "../../../core/operators/updating-aggregate.ts";
import type { AggregateSpec } from "../../../core/operators/window-aggregate.ts";
import { RowOp, type Batch, type Row } from "../../../core/plugin-api/index.ts";
import { StateHarness } from "../../kit/operator-state.ts";

const int = { kind: "int", bits: 64 } as const;
const double = { kind: "float", bits: 64 } as const;

/** GROUP BY row[0]: count(*), sum(row[1]), avg(row[2]). */
function spec(): AggregateSpec {
  return {
    keys: [(r: Row) => r[0]],
    args: [undefined, (r: Row) => r[1], (r: Row) => r[2]],
    accumulators: [
      accumulatorFor({ fn: "count", args: [], distinct: false, star: true, type: int }, undefined, true),
      accumulatorFor({ fn: "sum", args: [], distinct: false, star: false, type: int }, undefined, true),
      accumulatorFor({ fn: "avg", args: [], distinct: false, star: false, type: double }, undefined, true),
    ],
  };
}

interface Change {
  op: RowOp;
  row: Row;
  before: Row | null;
}

function collector(): Collector & { changes: Change[] } {
  const c = {
    changes: [] as Change[],
    emit(b: Batch) {
      b.rows.forEach((row, i) => c.changes.push({ op: b.ops?.[i] ?? RowOp.Insert, row, before: b.before?.[i] ?? null }));
    },
  };
  return c;
}

const batch = (rows: Row[], ops?: RowOp[], before?: (Row | null)[]): Batch => ({ rows, times: rows.map(() => 1), ops, before });

describe("updating aggregate across a restore", () => {
  test("the first change after a restore retracts the row emitted before the checkpoint; a group emptied after it is deleted with that row", async () => {
    const harness = new StateHarness("agg");
    const op = new UpdatingAggregate(spec());
    const ctx = harness.context();
    op.open(ctx);
    const out = collector();
    op.process(batch([["a", 1, 0.5], ["a", 2, 1.5], ["b", 10, 3]]), out);
    expect(out.changes.map((c) => c.row)).toEqual([["a", 2, 3, 1], ["b", 1, 10, 3]]);
    await harness.checkpoint([{ ctx }]);

    const restored = new UpdatingAggregate(spec());
    restored.open(await harness.restore(0, 1));
    const after = collector();
    // "a" changes; "b" loses its only row (a retraction from an updating input).
    restored.process(batch([["a", 4, 2], ["b", 10, 3]], [RowOp.Insert, RowOp.Delete]), after);
    expect(after.changes).toEqual([
      { op: RowOp.Update, row: ["a", 3, 7, 4 / 3], before: ["a", 2, 3, 1] },
      { op: RowOp.Delete, row: ["b", 1, 10, 3], before: ["b", 1, 10, 3] },
    ]);
  });

  test("a checkpoint leaves the emitted row out of the file", async () => {
    const harness = new StateHarness("agg");
    const op = new UpdatingAggregate(spec());
    const ctx = harness.context();
    op.open(ctx);
    op.process(batch([["a", 1, 0.5]]), collector());
    const snap = ctx.state.snapshot(1);
    const { unpackSequence } = await import("../../../core/state/file-format.ts");
    const records: unknown[][] = [];
    for (const t of snap.tables) for await (const c of t.chunks) records.push(...(unpackSequence(c.bytes) as unknown[][]));
    expect(records.length).toBe(1);
    // [PUT, time, hash, key, [accumulators, rows]]: no third element.
    expect((records[0]![4] as unknown[]).length).toBe(2);
  });

  test("a value saved with its emitted row (files written before it was left out) restores as one without it", async () => {
    const harness = new StateHarness("agg");
    const op = new UpdatingAggregate(spec());
    const ctx = harness.context();
    op.open(ctx);
    op.process(batch([["a", 1, 0.5]]), collector());
    // Stands in for an older file: the group's saved form with the row it had emitted as a third element.
    const table = (ctx.state as any).tables.get("groups");
    const codec = table.codec;
    const entry = [...table.entries()][0];
    const saved = codec.save(entry.value);
    const loaded = codec.load([...saved, ["a", 1, 1, 0.5]]);
    expect(loaded).toEqual(codec.load([...saved]));
    expect(codec.save(loaded)[1]).toBe(1);
  });

  test("a group made and emptied within one batch emits nothing, and the batch's times match its rows", () => {
    const harness = new StateHarness("agg");
    const op = new UpdatingAggregate(spec());
    const ctx = harness.context();
    op.open(ctx);
    const batches: Batch[] = [];
    const out: Collector = { emit: (b: Batch) => void batches.push(b) };
    // "a" comes and goes (a retraction from an updating input); "b" stays.
    op.process(batch([["a", 1, 0.5], ["a", 1, 0.5], ["b", 2, 1]], [RowOp.Insert, RowOp.Delete, RowOp.Insert]), out);
    expect(batches.length).toBe(1);
    const b = batches[0]!;
    expect(b.rows).toEqual([["b", 1, 2, 1]]);
    // A time without its row made the exchange between workers refuse the batch as malformed.
    expect([b.times.length, b.ops?.length, b.before?.length]).toEqual([1, 1, 1]);
    expect([...(ctx.state as any).tables.get("groups").entries()].length).toBe(1);
  });
});
