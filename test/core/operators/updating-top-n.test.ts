/**
 * The updating top-N (`rn <= N` by ROW_NUMBER over an append-only stream, as
 * Nexmark q19) against the general updating window function, which is its
 * specification: the same batches, change for change and in the same order,
 * for each mix of ranking functions the query may read, with ties, NULLs and
 * repeated rows; and restores from checkpoints either operator wrote.
 */
import { describe, expect, test } from "bun:test";
import { UpdatingTopNOperator } from "../../../core/operators/updating-top-n.ts";
import { UpdatingWindowFunctionOperator, type WindowFn, type WindowFunctionSpec } from "../../../core/operators/window-function.ts";
import type { Operator, OperatorContext } from "../../../core/operators/operator.ts";
import { RowOp, type Batch, type Row } from "../../../core/plugin-api/index.ts";
import { hashValues } from "../../../core/state/hash.ts";
import { subtaskOfHash } from "../../../core/state/key-groups.ts";
import { prng } from "../../kit/sql.ts";
import { batchCollector, StateHarness } from "../../kit/operator-state.ts";

const T0 = 1_700_000_000_000_000;
/** The rows' columns: partition, price, payload, bidder. */
const WIDTH = 4;

/**
 * Random batches of [partition, price, payload, bidder] rows: prices drift
 * towards the top (up for DESC), so rows keep entering full partitions while
 * most are left out, with ties and NULLs; the payload repeats, so equal rows occur.
 */
function bids(seed: number, count: number, partitions: number, rising = true): Batch[] {
  const rand = prng(seed);
  const out: Batch[] = [];
  for (let b = 0; b < count; b++) {
    const rows: Row[] = [];
    const times: number[] = [];
    const n = 1 + Math.floor(rand() * 40);
    for (let i = 0; i < n; i++) {
      const drift = Math.floor(b / 4 + rand() * 30);
      const price = rand() < 0.04 ? null : rising ? drift : 1000 - drift;
      rows.push([Math.floor(rand() * partitions), price, Math.floor(rand() * 3), Math.floor(rand() * 4)]);
      times.push(T0 + b * 1000 + i);
    }
    out.push({ rows, times });
  }
  return out;
}

function spec(n: number, desc: boolean, nullsFirst: boolean, functions: WindowFn["kind"][]): WindowFunctionSpec {
  return {
    partition: [(r: Row) => r[0]],
    // Ties on price are broken by the bidder, descending: ties remain on both.
    order: [
      { key: (r: Row) => r[1], desc, nullsFirst, column: 1 },
      { key: (r: Row) => r[3], desc: true, nullsFirst: false, column: 3 },
    ],
    functions: functions.map((kind) => ({ kind }) as WindowFn),
    limit: { n, by: "row_number" },
  };
}

/** What the operator emits, batch by batch, as plain data (rows, ops, times and before images in emitted order). */
async function feed(op: Operator, ctx: OperatorContext, input: Batch[]) {
  op.open?.(ctx);
  const out = batchCollector();
  for (const b of input) {
    await op.process(b, out, 0);
    // Between batches, as the operator chain does: a disk-backed table moves entries out of memory.
    ctx.state.maintain();
  }
  return out.batches.map((b) => ({ rows: b.rows, ops: b.ops, times: b.times, before: b.before }));
}

describe("the updating top-N emits the general updating window function's changelog", () => {
  const shapes: { functions: WindowFn["kind"][]; what: string }[] = [
    { functions: ["row_number"], what: "ROW_NUMBER (q19)" },
    { functions: ["row_number", "rank", "dense_rank"], what: "ROW_NUMBER, RANK and DENSE_RANK" },
    { functions: ["dense_rank", "row_number"], what: "DENSE_RANK before ROW_NUMBER" },
    { functions: ["rank"], what: "RANK alone (rows compared as a multiset)" },
    { functions: [], what: "no ranking read (repeated rows compared as a multiset)" },
  ];
  for (const { functions, what } of shapes) {
    for (const [n, desc, nullsFirst] of [
      [10, true, true],
      [3, false, false],
      [1, true, false],
    ] as const) {
      test(`${what}, top ${n}, price ${desc ? "DESC" : "ASC"} NULLS ${nullsFirst ? "FIRST" : "LAST"}: the same batches`, async () => {
        const input = bids(n * 7 + functions.length, 300, 25, desc);
        const s = spec(n, desc, nullsFirst, functions);
        const general = await feed(new UpdatingWindowFunctionOperator(s, false), new StateHarness().context(), input);
        const ours = await feed(new UpdatingTopNOperator(s, WIDTH), new StateHarness().context(), input);
        const changes = general.reduce((k, b) => k + b.rows.length, 0);
        expect(changes).toBeGreaterThan(500);
        // Rows fell out of full partitions on the way.
        expect(general.some((b) => b.ops!.includes(RowOp.Delete))).toBe(true);
        expect(ours).toEqual(general);
      });
    }
  }

  test("with keyed state on disk and a cache too small for it (partitions saved, evicted and loaded again): the same batches", async () => {
    const input = bids(21, 300, 400);
    const s = spec(10, true, true, ["row_number", "rank"]);
    const general = await feed(new UpdatingWindowFunctionOperator(s, false), new StateHarness().context(), input);
    const harness = new StateHarness("op", undefined, undefined, 20_000);
    const ours = await feed(new UpdatingTopNOperator(s, WIDTH), harness.context(), input);
    expect(general.reduce((k, b) => k + b.rows.length, 0)).toBeGreaterThan(2000);
    expect(ours).toEqual(general);
  });

  test("an updating input is refused (the planner gives it the general operator)", async () => {
    const op = new UpdatingTopNOperator(spec(3, true, true, ["row_number"]), WIDTH);
    op.open(new StateHarness().context());
    expect(() => op.process({ rows: [[1, 2, 3, 4]], times: [T0], ops: [RowOp.Delete], before: [[1, 2, 3, 4]] }, batchCollector())).toThrow(/retraction/);
  });

  test("only ranking functions, a ROW_NUMBER limit and ORDER BY columns are handled", () => {
    const s = spec(3, true, true, ["row_number"]);
    expect(UpdatingTopNOperator.handles(s, WIDTH)).toBe(true);
    expect(UpdatingTopNOperator.handles({ ...s, limit: { n: 3, by: "rank" } }, WIDTH)).toBe(false);
    expect(UpdatingTopNOperator.handles({ ...s, limit: undefined }, WIDTH)).toBe(false);
    expect(UpdatingTopNOperator.handles({ ...s, order: [{ key: (r: Row) => (r[1] as number) * 2, desc: true, nullsFirst: true }] }, WIDTH)).toBe(false);
    expect(UpdatingTopNOperator.handles({ ...s, functions: [{ kind: "row_number" }, { kind: "percent_rank" }] }, WIDTH)).toBe(false);
    // Rows of no columns would leave a partition's flat values empty whatever its row count.
    expect(UpdatingTopNOperator.handles(s, 0)).toBe(false);
  });
});

describe("checkpoints", () => {
  const s = spec(4, true, true, ["row_number"]);
  const input = bids(5, 240, 25);

  /** Runs the second half on `parallelism` subtasks restored from `harness`'s last checkpoint, each given its key groups' rows. */
  async function goOn(harness: StateHarness, parallelism: number) {
    const subtasks = await Promise.all(
      Array.from({ length: parallelism }, async (_, i) => ({ ctx: await harness.restore(i, parallelism), op: new UpdatingTopNOperator(s, WIDTH), out: batchCollector() })),
    );
    for (const t of subtasks) t.op.open(t.ctx);
    for (const b of input.slice(120)) {
      for (const [i, t] of subtasks.entries()) {
        const mine = b.rows.map((r, j) => [r, b.times[j]!] as const).filter(([r]) => subtaskOfHash(hashValues([r[0]]), parallelism, harness.maxParallelism) === i);
        if (mine.length) await t.op.process({ rows: mine.map(([r]) => r), times: mine.map(([, t]) => t) }, t.out);
      }
    }
    return subtasks.flatMap((t) => t.out.batches);
  }

  /** Each change as [op, row], sorted: batch times differ once a batch is split between subtasks. */
  const strip = (batches: { rows: Row[]; ops?: RowOp[] }[]) => batches.flatMap((b) => b.rows.map((r, i) => JSON.stringify([b.ops![i], r]))).sort();

  test("a checkpoint the general operator wrote ([row, keys] pairs) restores, at another parallelism, into the same answer", async () => {
    const general = await feed(new UpdatingWindowFunctionOperator(s, false), new StateHarness().context(), input);
    const harness = new StateHarness();
    const ctx = harness.context();
    const first = await feed(new UpdatingWindowFunctionOperator(s, false), ctx, input.slice(0, 120));
    await harness.checkpoint([{ ctx }]);
    const rest = await goOn(harness, 2);
    expect(rest.length).toBeGreaterThan(50);
    expect(strip([...first, ...rest])).toEqual(strip(general));
  });

  test("partitions saved under a larger N, by either operator, restore with their N best rows", async () => {
    const wide = spec(7, true, true, ["row_number"]);
    const general = await feed(new UpdatingWindowFunctionOperator(s, false), new StateHarness().context(), input);
    for (const saver of [new UpdatingWindowFunctionOperator(wide, false), new UpdatingTopNOperator(wide, WIDTH)]) {
      const harness = new StateHarness();
      const ctx = harness.context();
      await feed(saver, ctx, input.slice(0, 120));
      await harness.checkpoint([{ ctx }]);
      const rest = await feed(new UpdatingTopNOperator(s, WIDTH), await harness.restore(0, 1), input.slice(120));
      expect(rest.length).toBeGreaterThan(50);
      expect(rest).toEqual(general.slice(general.length - rest.length));
    }
  });

  test("its own checkpoint restores, at parallelism 1 batch for batch, at parallelism 3 into the same answer", async () => {
    const general = await feed(new UpdatingWindowFunctionOperator(s, false), new StateHarness().context(), input);
    const harness = new StateHarness();
    const ctx = harness.context();
    const op = new UpdatingTopNOperator(s, WIDTH);
    const first = await feed(op, ctx, input.slice(0, 60));
    // A change after the first checkpoint, then a second (a delta over the first).
    await harness.checkpoint([{ ctx }]);
    const out = batchCollector();
    for (const b of input.slice(60, 120)) await op.process(b, out);
    await harness.checkpoint([{ ctx }]);
    const upTo120 = [...first, ...out.batches];
    expect(strip([...upTo120, ...(await goOn(harness, 1))])).toEqual(strip(general));
    expect(strip([...upTo120, ...(await goOn(harness, 3))])).toEqual(strip(general));
    const one = await goOn(harness, 1);
    expect(one.map((b) => ({ rows: b.rows, ops: b.ops, times: b.times, before: b.before }))).toEqual(general.slice(general.length - one.length));
  });
});
