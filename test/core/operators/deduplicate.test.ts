/**
 * Deduplication (`ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) ... WHERE rn = 1`
 * over an append-only stream): keep first (ORDER BY time ASC), keep last (DESC),
 * a non-time ORDER BY, ties (the earlier arrival stays), late rows (an older row
 * never replaces a newer one on DESC) against DuckDB; the planner picks it only
 * where nothing can retract the kept row; its changelog is, batch for batch, the
 * general updating window function's; its state checkpoints and restores, rescaled;
 * and the general operator's top-N shortcut (a row its full partition trims at once
 * changes nothing) gives the changes of the path that keeps every row.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { planSql } from "../../../core/sql/index.ts";
import type { PlanNode } from "../../../core/plan/logical.ts";
import { DeduplicateOperator } from "../../../core/operators/deduplicate.ts";
import { UpdatingWindowFunctionOperator, type WindowFunctionSpec } from "../../../core/operators/window-function.ts";
import type { Collector, Operator, OperatorContext } from "../../../core/operators/operator.ts";
import { hashValues } from "../../../core/state/hash.ts";
import { subtaskOfHash } from "../../../core/state/key-groups.ts";
import { RowOp, type Batch, type Row } from "../../../core/plugin-api/index.ts";
import { duckSql, prng, runSql, runnelTables, sameRows, testRegistry, BID_COLUMNS, type TableSpec } from "../../kit/sql.ts";
import { StateHarness } from "../../kit/operator-state.ts";

setDefaultTimeout(60_000);

const SECOND = 1_000_000;
const T0 = 1_700_000_000_000_000;
let bids: TableSpec;

beforeAll(() => {
  const rand = prng(11);
  const rows: unknown[][] = [];
  // Bids mostly in time order; every 9th is 5 minutes late (behind the 1 s watermark), and times repeat
  // (ts in whole seconds, several bids a second), so ties on ts are common.
  for (let i = 0; i < 1500; i++) {
    const late = i % 9 === 4;
    const ts = T0 + Math.floor(i / 4) * SECOND - (late ? 300 * SECOND : 0);
    const price = rand() < 0.05 ? null : Math.floor(rand() * 50);
    rows.push([i, Math.floor(rand() * 5), Math.floor(rand() * 12), price, ts]);
  }
  bids = {
    name: "bids",
    columns: BID_COLUMNS,
    rows,
    watermark: "ts AS ts - INTERVAL '1' SECOND",
    batch: 13,
  };
});

const dedup = (order: string, where = "rn = 1") =>
  `SELECT id, auction, bidder, price, ts, rn FROM (SELECT *, row_number() OVER (PARTITION BY bidder, auction ORDER BY ${order}) AS rn FROM bids) WHERE ${where}`;

function windowFunctionNodes(sql: string, registry: Awaited<ReturnType<typeof testRegistry>>): Extract<PlanNode, { kind: "window_function" }>[] {
  const out: Extract<PlanNode, { kind: "window_function" }>[] = [];
  const visit = (n: PlanNode): void => {
    if (n.kind === "window_function") out.push(n);
    if ("input" in n) visit(n.input);
  };
  visit(planSql(sql, registry).sinks[0]!.input);
  return out;
}

/** Runnel's query against DuckDB's; ties in Runnel keep the earliest arrival, which DuckDB is told by ordering on `id` last. */
async function compare(order: string, duckOrder: string, where = "rn = 1") {
  const sql = `${runnelTables([bids])}\n${dedup(order, where)};`;
  const nodes = windowFunctionNodes(sql, await testRegistry());
  expect(nodes.map((n) => n.deduplicate ?? false)).toEqual([true]);
  const ours = await runSql(sql);
  expect(ours.updating).toBe(true);
  const theirs = await duckSql([bids], dedup(duckOrder, where));
  expect(theirs.length).toBe(5 * 12);
  expect(sameRows(ours.rows, theirs)).toBeNull();
  return ours;
}

describe("deduplication agrees with DuckDB", () => {
  test("keep last: ORDER BY ts DESC (ties keep the first to arrive; late rows never replace a newer one)", async () => {
    const ours = await compare("ts DESC", "ts DESC, id");
    expect(ours.changes.some((c) => c.op === RowOp.Delete)).toBe(true);
  });

  test("keep first: ORDER BY ts ASC, written as rn <= 1 (late rows, being older, do replace)", async () => {
    await compare("ts", "ts, id", "rn <= 1");
    await compare("ts ASC", "ts, id", "1 >= rn");
  });

  test("ORDER BY a non-time column with NULLs, both directions and NULL placements", async () => {
    await compare("price DESC", "price DESC NULLS FIRST, id");
    await compare("price DESC NULLS LAST, ts", "price DESC NULLS LAST, ts, id");
    await compare("price NULLS FIRST", "price NULLS FIRST, id");
  });

  test("no ORDER BY: the first row of each partition", async () => {
    const sql = `${runnelTables([bids])}\nSELECT id, bidder FROM (SELECT *, row_number() OVER (PARTITION BY bidder) AS rn FROM bids) WHERE rn = 1;`;
    expect(windowFunctionNodes(sql, await testRegistry())[0]!.deduplicate).toBe(true);
    const ours = await runSql(sql);
    const theirs = await duckSql([bids], "SELECT min(id) AS id, bidder FROM bids GROUP BY bidder");
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });
});

describe("where deduplication does not apply, the general operator still answers", () => {
  test("rn <= 2, rank() = 1 and an updating input keep the general updating window function", async () => {
    const registry = await testRegistry();
    const tables = runnelTables([bids]);
    const top2 = dedup("ts DESC", "rn <= 2");
    const rank1 = "SELECT id, bidder, auction, r FROM (SELECT *, rank() OVER (PARTITION BY bidder, auction ORDER BY ts DESC) AS r FROM bids) WHERE r = 1";
    // Totals per auction and bidder go up and down (negative prices on every 7th bid): the kept row can be retracted.
    const totals = "SELECT auction, bidder, sum(CASE WHEN id % 7 = 0 THEN -3 * price ELSE price END) AS total FROM bids GROUP BY auction, bidder";
    const updating = `SELECT auction, bidder, total FROM (SELECT *, row_number() OVER (PARTITION BY auction ORDER BY total DESC, bidder) AS rn FROM (${totals})) WHERE rn = 1`;
    for (const [q, duck] of [
      [top2, dedup("ts DESC, id", "rn <= 2")],
      [rank1, rank1],
      [updating, updating],
    ] as const) {
      const sql = `${tables}\n${q};`;
      const nodes = windowFunctionNodes(sql, registry);
      expect(nodes.length).toBe(1);
      expect(nodes[0]!.deduplicate).toBeUndefined();
      const ours = await runSql(sql);
      const theirs = await duckSql([bids], duck);
      expect(theirs.length).toBeGreaterThan(0);
      expect(sameRows(ours.rows, theirs)).toBeNull();
    }
  });
});

type Change = [op: RowOp, row: unknown[], time: number];

/**
 * Collects every emitted batch's changes. Within a batch, changes are listed by
 * partition (column 0), each partition's in the order emitted: the order between
 * partitions is not part of the changelog (the general operator lists them by the
 * first row that reached them, deduplication by the first that changed them).
 */
function recorder(): Collector & { changes: Change[] } {
  const changes: Change[] = [];
  return {
    changes,
    emit(batch: Batch) {
      const list = batch.rows.map((r, i): Change => [batch.ops![i]!, r, batch.times[i]!]);
      changes.push(...list.sort((a, b) => (a[1][0] as number) - (b[1][0] as number)));
      batch.ops!.forEach((op, i) => expect(batch.before![i]).toEqual(op === RowOp.Delete ? batch.rows[i]! : null));
    },
  } as Collector & { changes: Change[] };
}

/** Random batches of [partition, order key (ties; NULLs in the batches `nulls` picks), payload] rows at times that go back and forth. */
function batches(seed: number, count: number, nulls: (batch: number) => boolean): Batch[] {
  const rand = prng(seed);
  const out: Batch[] = [];
  let id = 0;
  for (let b = 0; b < count; b++) {
    const rows: Row[] = [];
    const times: number[] = [];
    const n = 1 + Math.floor(rand() * 40);
    for (let i = 0; i < n; i++) {
      const time = T0 + b * 1000 + Math.floor(rand() * 3000) - 1500;
      // A coarse copy of the time: ties, and rows older than the kept one.
      const key = nulls(b) && rand() < 0.05 ? null : Math.floor(time / 700);
      rows.push([Math.floor(rand() * 8), key, id++]);
      times.push(time);
    }
    out.push({ rows, times });
  }
  return out;
}

/** Ascending orders by the key negated, so that both directions keep changing the kept row as time goes on. */
const spec = (desc: boolean, nullsFirst: boolean, functions: WindowFunctionSpec["functions"]): WindowFunctionSpec => ({
  partition: [(r: Row) => r[0]],
  order: [{ key: (r: Row) => (desc || r[1] === null ? r[1] : -(r[1] as number)), desc, nullsFirst }],
  functions,
  limit: { n: 1, by: "row_number" },
});

async function feed(op: Operator, ctx: OperatorContext, input: Batch[]) {
  op.open?.(ctx);
  const out = recorder();
  for (const b of input) await op.process(b, out, 0);
  return out.changes;
}

describe("the changelog is the general updating window function's", () => {
  for (const [desc, nullsFirst] of [
    [true, true],
    [false, false],
    [true, false],
  ] as const) {
    test(`ORDER BY key ${desc ? "DESC" : "ASC"} NULLS ${nullsFirst ? "FIRST" : "LAST"}, with row_number and rank columns: same changes, batch for batch`, async () => {
      // A NULL sorting first is kept for good: NULLs only at the end then.
      const input = batches(desc ? 5 : 6, 200, (b) => (nullsFirst ? b > 180 : true));
      const s = spec(desc, nullsFirst, [{ kind: "row_number" }, { kind: "rank" }]);
      const general = await feed(new UpdatingWindowFunctionOperator(s, false), new StateHarness().context(), input);
      const ours = await feed(new DeduplicateOperator(s), new StateHarness().context(), input);
      expect(ours.length).toBeGreaterThan(200);
      expect(ours).toEqual(general);
    });
  }

  test("after a checkpoint restored at another parallelism, each subtask goes on from its kept rows", async () => {
    const input = batches(9, 160, () => true);
    const s = spec(true, true, [{ kind: "row_number" }]);
    const general = await feed(new UpdatingWindowFunctionOperator(s, false), new StateHarness().context(), input);
    const harness = new StateHarness();
    const ctx = harness.context();
    const first = await feed(new DeduplicateOperator(s), ctx, input.slice(0, 80));
    await harness.checkpoint([{ ctx }]);
    // Two subtasks, each given the rows of its key groups (as the keyed exchange would).
    const changes = [...first];
    const subtasks = await Promise.all([0, 1].map(async (i) => ({ ctx: await harness.restore(i, 2), op: new DeduplicateOperator(s), out: recorder() })));
    for (const t of subtasks) t.op.open(t.ctx);
    for (const b of input.slice(80)) {
      const outs = subtasks.map(() => recorder());
      for (const [i, t] of subtasks.entries()) {
        const mine = b.rows.map((r, j) => [r, b.times[j]!] as const).filter(([r]) => subtaskOfHash(hashValues([r[0]]), 2, harness.maxParallelism) === i);
        if (mine.length) await t.op.process({ rows: mine.map(([r]) => r), times: mine.map(([, t]) => t) }, outs[i]!);
      }
      for (const o of outs) changes.push(...o.changes);
    }
    // Batch times differ once a batch is split (each half ends at its own last row): compare the rows and ops.
    const strip = (c: Change[]) => c.map(([op, r]) => JSON.stringify([op, r])).sort();
    expect(strip(changes)).toEqual(strip(general));
  });
});

describe("an updating top-N over an append-only stream skips rows its full partitions trim at once", () => {
  for (const n of [1, 3]) {
    test(`top ${n} by row_number: the same changes as the operator keeping every row (the path for retracting input)`, async () => {
      const input = batches(n + 20, 200, () => true);
      const s: WindowFunctionSpec = { ...spec(true, false, [{ kind: "row_number" }, { kind: "rank" }]), limit: { n, by: "row_number" } };
      const everyRow = await feed(new UpdatingWindowFunctionOperator(s, true), new StateHarness().context(), input);
      const trimmed = await feed(new UpdatingWindowFunctionOperator(s, false), new StateHarness().context(), input);
      expect(trimmed.length).toBeGreaterThan(300);
      expect(trimmed).toEqual(everyRow);
    });
  }
});
