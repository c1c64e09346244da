/**
 * The updating join's state across a checkpoint and restore: each key's rows of
 * both sides are saved as a four-element array (no field names in the file),
 * restore to joins that match as before, and files written when the value was
 * saved as an object restore the same.
 */
import { describe, expect, test } from "bun:test";
import { UpdatingJoin, type JoinSpec } from "../../../core/operators/join.ts";
import type { Collector } from "../../../core/operators/operator.ts";
import type { Batch, Row } from "../../../core/plugin-api/index.ts";
import { unpackSequence } from "../../../core/state/file-format.ts";
import { StateHarness } from "../../kit/operator-state.ts";

/** a JOIN b ON a[0] = b[0]: two columns a side. */
const spec = (): JoinSpec => ({ leftKeys: [(r: Row) => r[0]], rightKeys: [(r: Row) => r[0]], leftWidth: 2, rightWidth: 2, joinType: "inner" });

function collector(): Collector & { rows: Row[] } {
  const c = { rows: [] as Row[], emit: (b: Batch) => void c.rows.push(...b.rows) };
  return c;
}

const batch = (rows: Row[]): Batch => ({ rows, times: rows.map((_, i) => 100 + i) });

/** A join that stored a1 and a2 on the left and b1 on the right. */
function fed() {
  const harness = new StateHarness("join");
  const op = new UpdatingJoin(spec(), false);
  const ctx = harness.context();
  op.open(ctx);
  op.process(batch([[1, "a1"], [2, "a2"]]), collector(), 0);
  op.process(batch([[1, "b1"]]), collector(), 1);
  return { harness, ctx };
}

describe("updating join state", () => {
  test("saved as arrays, it restores to the same matches", async () => {
    const { ctx } = fed();
    const snap = ctx.state.snapshot(1);
    const records: unknown[][] = [];
    for (const t of snap.tables) for await (const c of t.chunks) records.push(...(unpackSequence(c.bytes) as unknown[][]));
    const values = records.map((r) => r[4]).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    expect(values).toEqual([
      [[[1, "a1"]], [100], [[1, "b1"]], [100]],
      [[[2, "a2"]], [101], [], []],
    ]);

    const { harness: harness2, ctx: ctx2 } = fed();
    await harness2.checkpoint([{ ctx: ctx2 }]);
    const restored = new UpdatingJoin(spec(), false);
    restored.open(await harness2.restore(0, 1));
    const out = collector();
    restored.process(batch([[2, "b2"], [1, "b3"]]), out, 1);
    expect(out.rows).toEqual([[2, "a2", 2, "b2"], [1, "a1", 1, "b3"]]);
  });

  test("a value saved as an object (files written before) loads as it was", () => {
    const { ctx } = fed();
    const codec = (ctx.state as any).tables.get("sides").codec;
    const old = { left: [[1, "a1"]], leftTimes: [100], right: [], rightTimes: [] };
    expect(codec.load(old)).toEqual(old);
    expect(codec.load(codec.save(old))).toEqual(old);
  });
});
