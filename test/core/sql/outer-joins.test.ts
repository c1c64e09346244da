/**
 * RIGHT and FULL OUTER joins, windowed and updating, and window joins with
 * conditions beyond the key, against DuckDB (a window join's DuckDB form joins
 * the per-window aggregates on window start and key).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { duckSql, planError, prng, runSql, runnelTables, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const MINUTE = 60_000_000;
const T0 = Math.floor(1_700_000_000_000_000 / (60 * MINUTE)) * 60 * MINUTE;
const rand = prng(9);
const table = (name: string, keys: number, n: number): TableSpec => ({
  name,
  columns: [
    { name: "k", type: "BIGINT" },
    { name: "v", type: "BIGINT" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  // Some NULL keys, which match nothing but stay in an outer join.
  rows: Array.from({ length: n }, (_, i) => [rand() < 0.05 ? null : Math.floor(rand() * keys), Math.floor(rand() * 100), T0 + Math.floor((i * 6 * MINUTE) / n)]),
  watermark: "ts",
});
const a = table("a", 12, 300);
const b = table("b", 16, 200);

const perWindow = (t: string) => `SELECT tumble(INTERVAL '1' MINUTE) AS window, k, count(*) AS n, sum(v) AS s FROM ${t} GROUP BY window, k`;
const duckPerWindow = (t: string) => `SELECT (ts // ${MINUTE}) * ${MINUTE} AS ws, k, count(*) AS n, sum(v) AS s FROM ${t} GROUP BY ws, k`;

describe("outer joins agree with DuckDB", () => {
  for (const kind of ["RIGHT", "FULL OUTER", "LEFT"]) {
    test(`${kind} window join`, async () => {
      const ours = await runSql(
        `${runnelTables([a, b])}\nSELECT x.k AS xk, y.k AS yk, x.n AS xn, y.n AS yn FROM (${perWindow("a")}) x ${kind} JOIN (${perWindow("b")}) y ON x.k = y.k;`,
      );
      expect(ours.updating).toBe(false);
      const theirs = await duckSql(
        [a, b],
        `SELECT x.k AS xk, y.k AS yk, x.n AS xn, y.n AS yn FROM (${duckPerWindow("a")}) x ${kind} JOIN (${duckPerWindow("b")}) y ON x.k = y.k AND x.ws = y.ws`,
      );
      expect(sameRows(ours.rows, theirs)).toBeNull();
    });

    test(`${kind} updating join (its padded rows deleted when a match arrives)`, async () => {
      const q = (x: string, y: string) => `SELECT x.k AS xk, x.v AS xv, y.v AS yv FROM ${x} x ${kind} JOIN ${y} y ON x.k = y.k AND x.v % 10 = y.v % 10`;
      const ours = await runSql(`${runnelTables([a, b])}\n${q("a", "b").replace(" AND x.v % 10 = y.v % 10", " AND x.v % 10 = y.v % 10")};`);
      expect(ours.updating).toBe(true);
      expect(sameRows(ours.rows, await duckSql([a, b], q("a", "b")))).toBeNull();
    });
  }

  test("FULL join of two updating aggregates: rows come, match, and go", async () => {
    const inner = (t: string) => `SELECT k % 5 AS g, count(*) AS c FROM ${t} GROUP BY g`;
    const q = `SELECT x.g AS xg, y.g AS yg, x.c AS xc, y.c AS yc FROM (${inner("a")}) x FULL OUTER JOIN (SELECT k % 7 AS g, count(*) AS c FROM b GROUP BY g) y ON x.g = y.g`;
    const ours = await runSql(`${runnelTables([a, b])}\n${q};`);
    expect(sameRows(ours.rows, await duckSql([a, b], q))).toBeNull();
  });

  for (const kind of ["INNER", "LEFT", "FULL OUTER"]) {
    test(`${kind} window join with a condition besides the key`, async () => {
      const ours = await runSql(
        `${runnelTables([a, b])}\nSELECT x.k AS xk, y.k AS yk, x.s AS xs, y.s AS ys FROM (${perWindow("a")}) x ${kind} JOIN (${perWindow("b")}) y ON x.k = y.k AND x.s > y.s AND x.n + y.n >= 3;`,
      );
      const theirs = await duckSql(
        [a, b],
        `SELECT x.k AS xk, y.k AS yk, x.s AS xs, y.s AS ys FROM (${duckPerWindow("a")}) x ${kind} JOIN (${duckPerWindow("b")}) y ON x.k = y.k AND x.ws = y.ws AND x.s > y.s AND x.n + y.n >= 3`,
      );
      expect(theirs.length).toBeGreaterThan(0);
      expect(sameRows(ours.rows, theirs)).toBeNull();
    });
  }
});

describe("joins Runnel refuses", () => {
  test("an outer updating join with a condition besides the equalities", async () => {
    const err = await planError(`CREATE TABLE a (k BIGINT, v BIGINT) WITH (connector = 'test_rows', dataset = 'none');
SELECT * FROM a x FULL JOIN a y ON x.k = y.k AND x.v < y.v;`);
    expect(err.message).toMatch(/updating FULL JOIN ... ON takes only equalities.*window joins take other conditions/);
    expect(err.at).toStartWith("x.v < y.v");
  });
});
