/**
 * The aggregate library against DuckDB: every aggregate per group in an
 * updating GROUP BY, per tumbling window, and over an updating input (whose
 * retractions the accumulators must take back exactly); approximate ones
 * within their error; the ones that cannot retract refused over updating input.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { duckSql, planError, prng, runSql, runnelTables, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const HOUR = 3_600_000_000;
let table: TableSpec;

beforeAll(() => {
  const rand = prng(7);
  const rows: unknown[][] = [];
  for (let i = 0; i < 400; i++) {
    const k = Math.floor(rand() * 5);
    const x = rand() < 0.05 ? null : Math.round(rand() * 1000) / 10;
    const y = Math.round(rand() * 200) - 100;
    const b = rand() < 0.1 ? null : rand() < 0.6;
    const s = ["a", "b", "c", "d", "e", "f"][Math.floor(rand() * 6)]!;
    // Two hours of event time, in order: two tumbling windows of one hour.
    rows.push([i, k, x, y, b, s, Math.floor(1_700_000_000_000_000 / HOUR) * HOUR + Math.floor((i * 2 * HOUR) / 400)]);
  }
  table = {
    name: "t",
    columns: [
      { name: "id", type: "BIGINT" },
      { name: "k", type: "BIGINT" },
      { name: "x", type: "DOUBLE" },
      { name: "y", type: "BIGINT" },
      { name: "b", type: "BOOLEAN" },
      { name: "s", type: "TEXT" },
      { name: "ts", type: "TIMESTAMP" },
    ],
    rows,
    watermark: "ts",
  };
});

/** [Runnel call, DuckDB call] pairs, computed per group. */
const EXACT: [string, string][] = [
  ["stddev(x)", "stddev_samp(x)"],
  ["stddev_pop(x)", "stddev_pop(x)"],
  ["var(x)", "var_samp(x)"],
  ["var_pop(x)", "var_pop(x)"],
  ["median(x)", "median(x)"],
  ["percentile_cont(0.9) WITHIN GROUP (ORDER BY x)", "quantile_cont(x, 0.9)"],
  ["corr(x, y)", "corr(x, y)"],
  ["covar_samp(x, y)", "covar_samp(x, y)"],
  ["covar_pop(x, y)", "covar_pop(x, y)"],
  ["regr_slope(x, y)", "regr_slope(x, y)"],
  ["regr_intercept(x, y)", "regr_intercept(x, y)"],
  ["regr_r2(x, y)", "regr_r2(x, y)"],
  ["regr_count(x, y)", "regr_count(x, y)"],
  ["regr_sxx(x, y)", "regr_sxx(x, y)"],
  ["regr_syy(x, y)", "regr_syy(x, y)"],
  ["regr_sxy(x, y)", "regr_sxy(x, y)"],
  ["regr_avgx(x, y)", "regr_avgx(x, y)"],
  ["regr_avgy(x, y)", "regr_avgy(x, y)"],
  ["bool_and(b)", "bool_and(b)"],
  ["bool_or(b)", "bool_or(b)"],
  ["bit_and(y + 200)", "bit_and(y + 200)"],
  ["bit_or(y + 200)", "bit_or(y + 200)"],
  ["bit_xor(y + 200)", "bit_xor(y + 200)"],
  ["array_agg(x ORDER BY id)", "list(x ORDER BY id)"],
  ["string_agg(s, '-' ORDER BY id DESC)", "string_agg(s, '-' ORDER BY id DESC)"],
  ["first_value(y ORDER BY id)", "first(y ORDER BY id)"],
  ["last_value(y ORDER BY id)", "last(y ORDER BY id)"],
  ["count(DISTINCT s)", "count(DISTINCT s)"],
  ["sum(DISTINCT y)", "sum(DISTINCT y)"],
  ["avg(DISTINCT y) FILTER (WHERE b)", "avg(DISTINCT y) FILTER (WHERE b)"],
  ["stddev(x) FILTER (WHERE y > 0)", "stddev_samp(x) FILTER (WHERE y > 0)"],
  ["approx_distinct(s)", "count(DISTINCT s)"],
];

const select = (calls: string[]) => calls.map((c, i) => `${c} AS a${i}`).join(", ");

describe("aggregates agree with DuckDB", () => {
  test("per group of an updating GROUP BY", async () => {
    const ours = await runSql(`${runnelTables([table])}\nSELECT k, ${select(EXACT.map((e) => e[0]))} FROM t GROUP BY k;`);
    expect(ours.updating).toBe(true);
    const theirs = await duckSql([table], `SELECT k, ${select(EXACT.map((e) => e[1]))} FROM t GROUP BY k`);
    expect(sameRows(ours.rows, theirs, 1e-9)).toBeNull();
  });

  test("per key and tumbling window", async () => {
    const ours = await runSql(
      `${runnelTables([table])}\nSELECT k, window.start AS ws, ${EXACT.map((_, i) => `a${i}`).join(", ")} FROM (
         SELECT tumble(INTERVAL '1' HOUR) AS window, k, ${select(EXACT.map((e) => e[0]))} FROM t GROUP BY window, k);`,
    );
    expect(ours.updating).toBe(false);
    const theirs = await duckSql([table], `SELECT k, (ts // ${HOUR}) * ${HOUR} AS ws, ${select(EXACT.map((e) => e[1]))} FROM t GROUP BY k, ws`);
    expect(ours.rows.length).toBe(10);
    expect(sameRows(ours.rows, theirs, 1e-9)).toBeNull();
  });

  test("per hop window (panes merged)", async () => {
    const calls = EXACT.filter(([r]) => !r.startsWith("approx"));
    const ours = await runSql(
      `${runnelTables([table])}\nSELECT window.start AS ws, ${calls.map((_, i) => `a${i}`).join(", ")} FROM (
         SELECT hop(INTERVAL '30' MINUTE, INTERVAL '1' HOUR) AS window, ${select(calls.map((e) => e[0]))} FROM t GROUP BY window);`,
    );
    const half = HOUR / 2;
    const theirs = await duckSql(
      [table],
      `WITH w AS (SELECT *, unnest([(ts // ${half}) * ${half} - ${half}, (ts // ${half}) * ${half}]) AS ws FROM t)
       SELECT ws, ${select(calls.map((e) => e[1]))} FROM w GROUP BY ws`,
    );
    expect(sameRows(ours.rows, theirs, 1e-9)).toBeNull();
  });

  test("over an updating input: every retraction is taken back", async () => {
    // The inner GROUP BY id % 40 updates its rows as input arrives; the outer aggregates see each update as a retraction and an insertion.
    const calls: [string, string][] = [
      ["stddev(c)", "stddev_samp(c)"],
      ["var_pop(total)", "var_pop(total)"],
      ["median(total)", "median(total)"],
      ["corr(c, total)", "corr(c, total)"],
      ["regr_slope(total, c)", "regr_slope(total, c)"],
      ["bool_and(c > 8)", "bool_and(c > 8)"],
      ["bit_or(c)", "bit_or(c)"],
      ["array_agg(g ORDER BY g)", "list(g ORDER BY g)"],
      ["string_agg(CAST(c AS TEXT), ',' ORDER BY g)", "string_agg(CAST(c AS TEXT), ',' ORDER BY g)"],
      ["last_value(total ORDER BY g)", "last(total ORDER BY g)"],
    ];
    const inner = "SELECT id % 40 AS g, count(*) AS c, sum(y) AS total FROM t GROUP BY g";
    const ours = await runSql(`${runnelTables([table])}\nSELECT g % 3 AS m, ${select(calls.map((c) => c[0]))} FROM (${inner}) GROUP BY m;`);
    const theirs = await duckSql([table], `SELECT g % 3 AS m, ${select(calls.map((c) => c[1]))} FROM (${inner}) GROUP BY m`);
    expect(sameRows(ours.rows, theirs, 1e-9)).toBeNull();
  });

  test("approximate percentiles fall within the t-digest's error of the exact ones", async () => {
    const rand = prng(11);
    const big: TableSpec = {
      name: "v",
      columns: [{ name: "k", type: "BIGINT" }, { name: "x", type: "DOUBLE" }],
      rows: Array.from({ length: 5000 }, (_, i) => [i % 2, rand() * rand() * 1000]),
      batch: 500,
    };
    const ours = await runSql(
      `${runnelTables([big])}\nSELECT k, approx_percentile_cont(x, 0.5) AS p50, approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY x) AS p99, approx_median(x) AS m, approx_distinct(x) AS d FROM v GROUP BY k;`,
    );
    const exact = await duckSql([big], "SELECT k, quantile_cont(x, 0.5) AS p50, quantile_cont(x, 0.99) AS p99, count(DISTINCT x) AS d FROM v GROUP BY k");
    for (const row of exact) {
      const mine = ours.rows.find((r) => r.k === row.k)!;
      expect(Math.abs((mine.p50 as number) - (row.p50 as number))).toBeLessThan(0.02 * (row.p50 as number));
      expect(Math.abs((mine.m as number) - (row.p50 as number))).toBeLessThan(0.02 * (row.p50 as number));
      // A t-digest bounds the error in rank, not in value (the tail here is sparse): the estimate's rank must be within 0.5 % of 0.99.
      const [rank] = await duckSql([big], `SELECT avg(CASE WHEN x <= ${mine.p99} THEN 1.0 ELSE 0.0 END) AS q FROM v WHERE k = ${row.k}`);
      expect(Math.abs((rank!.q as number) - 0.99)).toBeLessThan(0.005);
      // HyperLogLog with 2^14 registers: about 0.8 % standard error.
      expect(Math.abs((mine.d as number) - (row.d as number))).toBeLessThan(0.04 * (row.d as number));
    }
  });
});

describe("aggregates that cannot retract are refused over updating input", () => {
  const sql = (call: string) =>
    `CREATE TABLE t (k BIGINT, x DOUBLE) WITH (connector = 'test_rows', dataset = 'none');
SELECT ${call} FROM (SELECT k, sum(x) AS x FROM t GROUP BY k);`;
  for (const [call, rewrite] of [
    ["approx_distinct(x)", "count(DISTINCT"],
    ["approx_percentile_cont(x, 0.5)", "percentile_cont"],
    ["approx_median(x)", "median()"],
  ] as const) {
    test(call, async () => {
      const err = await planError(sql(call));
      expect(err.message).toContain("cannot read an updating input");
      expect(err.message).toContain(rewrite);
      expect({ line: err.line, column: err.column }).toEqual({ line: 2, column: 8 });
    });
  }
});
