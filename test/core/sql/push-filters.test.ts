/**
 * WHERE conjuncts over one side of a join are planned below it where that
 * keeps every row (inner: either side; LEFT/RIGHT: the preserved side), and
 * results stay DuckDB's for every join type, with NULLs on both sides.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Expr } from "../../../core/expr/expr.ts";
import type { PlanNode } from "../../../core/plan/logical.ts";
import { inputsOf } from "../../../core/plan/rewrite.ts";
import { planSql } from "../../../core/sql/index.ts";
import { NEXMARK_QUERIES, NEXMARK_VIEWS } from "../../../bench/nexmark-queries.ts";
import { duckSql, prng, runSql, runnelTables, sameRows, testRegistry, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const MINUTE = 60_000_000;
const T0 = Math.floor(1_700_000_000_000_000 / (60 * MINUTE)) * 60 * MINUTE;
const rand = prng(31);
const maybe = <T>(v: T) => (rand() < 0.1 ? null : v);
const table = (name: string, value: string, keys: number, n: number): TableSpec => ({
  name,
  columns: [
    { name: "k", type: "BIGINT" },
    { name: value, type: "BIGINT" },
    { name: "s", type: "TEXT" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  rows: Array.from({ length: n }, (_, i) => [maybe(Math.floor(rand() * keys)), maybe(Math.floor(rand() * 100)), maybe(["ab", "ba", "ax", "zz"][i % 4]), T0 + Math.floor((i * 4 * MINUTE) / n)]),
  watermark: "ts",
});
const a = table("a", "v", 10, 160);
const b = table("b", "w", 14, 120);

/** How many conjuncts the filters right above and right below the (first) join hold. */
async function shape(sql: string): Promise<{ above: number; left: number; right: number; joins: number; top: number; leftText?: string; rightText?: string }> {
  const count = (e: Expr | undefined): number => (!e ? 0 : e.kind === "call" && e.name === "and" ? e.args.reduce((n, x) => n + count(x), 0) : 1);
  const filterOf = (n: PlanNode) => (n.kind === "map" ? count(n.filter) : 0);
  const seen = new Set<PlanNode>();
  let found: { above: number; left: number; right: number; leftText?: string; rightText?: string } | undefined;
  const text = (n: PlanNode) => (n.kind === "map" && n.filter ? JSON.stringify(n.filter) : "");
  const walk = (n: PlanNode, parent: PlanNode | undefined) => {
    if (n.kind === "join" && !seen.has(n) && !found) found = { above: parent ? filterOf(parent) : 0, left: filterOf(n.left), right: filterOf(n.right), leftText: text(n.left), rightText: text(n.right) };
    if (n.kind === "join") seen.add(n);
    inputsOf(n).forEach((c) => walk(c, n));
  };
  const root = planSql(sql, await testRegistry()).sinks[0]!.input;
  walk(root, undefined);
  return { ...found!, joins: seen.size, top: filterOf(root) };
}

const tables = () => runnelTables([a, b]);
const join = (kind: string, where: string) => `SELECT x.k AS xk, x.v AS v, x.s AS xs, y.k AS yk, y.w AS w, y.s AS ys FROM a x ${kind} JOIN b y ON x.k = y.k WHERE ${where}`;

describe("filters below joins: plan shape", () => {
  test("Nexmark q3 and q20: each side's filter runs below the join, none above", async () => {
    const NEXMARK = `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '10');\n${NEXMARK_VIEWS}`;
    // The sides' filters are fused with the views' own (event type) filters, into one CASE each.
    const q3 = await shape(`${NEXMARK}\n${NEXMARK_QUERIES.q3!.runnel};`);
    expect([q3.above, q3.joins]).toEqual([0, 1]);
    expect(q3.leftText).toContain('"value":10');
    expect(q3.rightText).toContain('"value":"OR"');
    const q20 = await shape(`${NEXMARK}\n${NEXMARK_QUERIES.q20!.runnel};`);
    expect([q20.above, q20.joins]).toEqual([0, 1]);
    expect(q20.rightText).toContain('"value":10');
    expect(q20.leftText).not.toContain('"value":10');
  });

  test("inner join: one-sided conjuncts move to their side, two-sided ones stay", async () => {
    expect(await shape(`${tables()}\n${join("INNER", "x.v > 50 AND (y.w < 30 OR y.s IN ('ab', 'zz')) AND x.v > y.w AND x.s LIKE 'a%'")};`)).toMatchObject({ above: 1, left: 2, right: 1, joins: 1 });
  });

  test("outer joins: only the preserved side's conjuncts move; nothing through FULL", async () => {
    const where = "x.v > 50 AND y.w IS NULL";
    expect(await shape(`${tables()}\n${join("LEFT", where)};`)).toMatchObject({ above: 1, left: 1, right: 0, joins: 1 });
    expect(await shape(`${tables()}\n${join("RIGHT", where)};`)).toMatchObject({ above: 1, left: 0, right: 1, joins: 1 });
    expect(await shape(`${tables()}\n${join("RIGHT", "y.w > 5 AND x.v IS NULL")};`)).toMatchObject({ above: 1, left: 0, right: 1, joins: 1 });
    expect(await shape(`${tables()}\n${join("FULL OUTER", where)};`)).toMatchObject({ above: 2, left: 0, right: 0, joins: 1 });
  });

  test("volatile, failing or row-time conjuncts stay above", async () => {
    expect(await shape(`${tables()}\n${join("INNER", "x.v > random() AND CAST(x.s AS BIGINT) > 3 AND x.v + 1 > 3")};`)).toMatchObject({ above: 3, left: 0, right: 0, joins: 1 });
  });

  test("through a subquery's projection: columns it passes move, ones it computes with a possible error stay", async () => {
    const sub = (kind: string, where: string) =>
      `${tables()}\nSELECT * FROM (SELECT x.k AS xk, x.v AS v, x.v * 2 AS v2, y.w AS w FROM a x ${kind} JOIN b y ON x.k = y.k) WHERE ${where};`;
    expect(await shape(sub("INNER", "v > 50 AND w < 30 AND v > w AND v2 > 10"))).toMatchObject({ top: 2, left: 1, right: 1 });
    expect(await shape(sub("LEFT", "v > 50 AND w < 30"))).toMatchObject({ top: 1, left: 1, right: 0 });
  });

  test("a join read by two queries is not split into two joins", async () => {
    const sql = `${tables()}\nWITH j AS (SELECT * FROM a x JOIN b y ON x.k = y.k)\nSELECT * FROM j WHERE v > 50 UNION ALL SELECT * FROM j WHERE w < 30;`;
    expect((await shape(sql)).joins).toBe(1);
  });
});

const perWindow = (t: string, v: string) => `SELECT tumble(INTERVAL '1' MINUTE) AS window, k, count(*) AS n, sum(${v}) AS s FROM ${t} GROUP BY window, k`;
const duckPerWindow = (t: string, v: string) => `SELECT (ts // ${MINUTE}) * ${MINUTE} AS ws, k, count(*) AS n, sum(${v}) AS s FROM ${t} GROUP BY ws, k`;

describe("filters below joins agree with DuckDB", () => {
  const wheres = [
    // One side each.
    "x.v > 50",
    "y.w IS NULL OR y.s IN ('ab', 'zz')",
    // Two-sided, and mixed (NULL conjuncts drop a row above or below alike).
    "x.v > y.w",
    "x.v > 20 AND coalesce(y.w, 0) < 60 AND x.s <> y.s AND x.s LIKE 'a%'",
    "x.v IS NULL AND y.w IS NULL",
    "y.w NOT IN (1, 2, NULL) OR x.v BETWEEN 10 AND 70",
  ];
  for (const kind of ["INNER", "LEFT", "RIGHT", "FULL OUTER"]) {
    test(`${kind} updating join`, async () => {
      for (const where of wheres) {
        const q = join(kind, where);
        const ours = await runSql(`${tables()}\n${q};`);
        expect([where, sameRows(ours.rows, await duckSql([a, b], q))]).toEqual([where, null]);
      }
    });

    test(`${kind} join read through a subquery`, async () => {
      const q = `SELECT * FROM (SELECT x.k AS xk, x.v AS v, x.s AS xs, y.w AS w, y.s AS ys FROM a x ${kind} JOIN b y ON x.k = y.k) WHERE v > 30 AND (w < 60 OR w IS NULL) AND coalesce(xs, ys) <> 'ab'`;
      const ours = await runSql(`${tables()}\n${q};`);
      expect(sameRows(ours.rows, await duckSql([a, b], q))).toBeNull();
    });

    test(`${kind} window join`, async () => {
      for (const where of ["x.n > 1 AND y.s > 100", "x.s IS NULL OR x.n >= 2", "y.n = 1 AND x.s > y.s"]) {
        const ours = await runSql(
          `${tables()}\nSELECT x.k AS xk, y.k AS yk, x.n AS xn, y.n AS yn, x.s AS xs, y.s AS ys FROM (${perWindow("a", "v")}) x ${kind} JOIN (${perWindow("b", "w")}) y ON x.k = y.k WHERE ${where};`,
        );
        const theirs = await duckSql(
          [a, b],
          `SELECT x.k AS xk, y.k AS yk, x.n AS xn, y.n AS yn, x.s AS xs, y.s AS ys FROM (${duckPerWindow("a", "v")}) x ${kind} JOIN (${duckPerWindow("b", "w")}) y ON x.k = y.k AND x.ws = y.ws WHERE ${where}`,
        );
        expect([where, sameRows(ours.rows, theirs)]).toEqual([where, null]);
      }
    });
  }
});
