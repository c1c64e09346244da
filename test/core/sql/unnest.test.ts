/** unnest() in the SELECT list against DuckDB: rows per element, NULL and empty arrays, over windows and over an updating input. */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { duckSql, planError, prng, runSql, runnelTables, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const rand = prng(33);
const MINUTE = 60_000_000;
const T0 = Math.floor(1_700_000_000_000_000 / (60 * MINUTE)) * 60 * MINUTE;
const t: TableSpec = {
  name: "t",
  columns: [
    { name: "k", type: "BIGINT" },
    { name: "arr", type: "BIGINT[]" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  rows: Array.from({ length: 300 }, (_, i) => [
    i % 7,
    rand() < 0.1 ? null : Array.from({ length: Math.floor(rand() * 4) }, () => (rand() < 0.1 ? null : Math.floor(rand() * 10))),
    T0 + i * 1_000_000,
  ]),
  watermark: "ts",
};

describe("unnest agrees with DuckDB", () => {
  test("one row per element; NULL and empty arrays give none; WHERE before, expressions over the element", async () => {
    const q = "SELECT k, unnest(arr) AS x, unnest(arr) * 2 AS y FROM t WHERE k <> 3";
    const ours = await runSql(`${runnelTables([t])}\n${q};`);
    expect(sameRows(ours.rows, await duckSql([t], q))).toBeNull();
  });

  test("elements aggregated per window in an outer query", async () => {
    const ours = await runSql(
      `${runnelTables([t])}\nSELECT window.start AS ws, x, n FROM (SELECT tumble(INTERVAL '1' MINUTE) AS window, x, count(*) AS n FROM (SELECT unnest(arr) AS x FROM t) GROUP BY window, x);`,
    );
    const theirs = await duckSql([t], `SELECT (ts // ${MINUTE}) * ${MINUTE} AS ws, x, count(*) AS n FROM (SELECT ts, unnest(arr) AS x FROM t) GROUP BY ws, x`);
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });

  test("over an updating input: an array that changes retracts its old elements", async () => {
    const q = "SELECT g, unnest(xs) AS x FROM (SELECT k AS g, array_agg(k * 10 + 1) AS xs FROM t GROUP BY k)";
    const ours = await runSql(`${runnelTables([t])}\n${q};`);
    expect(ours.updating).toBe(true);
    const theirs = await duckSql([t], "SELECT g, unnest(xs) AS x FROM (SELECT k AS g, list(k * 10 + 1) AS xs FROM t GROUP BY k)");
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });
});

describe("unnest Runnel refuses", () => {
  for (const [query, message] of [
    ["SELECT unnest(arr) AS x, unnest(array_reverse(arr)) AS y FROM t", /one unnest\(\) per SELECT/],
    ["SELECT k, count(unnest(arr)) FROM t GROUP BY k", /unnest in a subquery and use its column here/],
    ["SELECT * FROM t, UNNEST(t.arr) AS u(x)", /write unnest\(t.array\) AS x in the SELECT list/],
  ] as const) {
    test(query, async () => {
      const err = await planError(`CREATE TABLE t (k BIGINT, arr BIGINT[]) WITH (connector = 'test_rows', dataset = 'none');\n${query};`);
      expect(err.message).toMatch(message);
      expect(err.line).toBe(2);
    });
  }
});
