/**
 * IN / NOT IN / EXISTS / NOT EXISTS subqueries in WHERE, planned as semi and
 * anti joins (updating and windowed), against DuckDB; NOT IN's NULL semantics;
 * and the shapes refused.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { duckSql, planError, prng, runSql, runnelTables, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const MINUTE = 60_000_000;
const T0 = Math.floor(1_700_000_000_000_000 / (60 * MINUTE)) * 60 * MINUTE;
const rand = prng(12);
const table = (name: string, keys: number, n: number, nulls: number): TableSpec => ({
  name,
  columns: [
    { name: "k", type: "BIGINT" },
    { name: "v", type: "BIGINT" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  rows: Array.from({ length: n }, (_, i) => [rand() < nulls ? null : Math.floor(rand() * keys), Math.floor(rand() * 50), T0 + Math.floor((i * 5 * MINUTE) / n)]),
  watermark: "ts",
});
const a = table("a", 30, 300, 0.05);
const b = table("b", 40, 120, 0);
const bNull = { ...table("bn", 40, 120, 0.02), name: "bn" };

async function agree(tables: TableSpec[], q: string, updating?: boolean, parallelism = 1) {
  const ours = await runSql(`${runnelTables(tables)}\n${q};`, { parallelism });
  if (updating !== undefined) expect(ours.updating).toBe(updating);
  const theirs = await duckSql(tables, q);
  expect(theirs.length).toBeGreaterThan(0);
  expect(sameRows(ours.rows, theirs)).toBeNull();
  return ours;
}

describe("predicate subqueries agree with DuckDB (updating)", () => {
  test("IN (SELECT ...) is a semi join; over append-only inputs its result is append-only", async () => {
    await agree([a, b], "SELECT k, v FROM a WHERE k IN (SELECT k FROM b WHERE v > 20)", false);
  });

  test("NOT IN without NULLs in the subquery: an anti join whose rows are retracted as matches arrive", async () => {
    const ours = await agree([a, b], "SELECT k, v FROM a WHERE k NOT IN (SELECT k FROM b WHERE v > 20) AND v < 40", true);
    expect(ours.changes.some((c) => c.op !== 0)).toBe(true);
  });

  test("NOT IN with a NULL in the subquery keeps no row; an outer NULL is dropped unless the subquery is empty", async () => {
    expect(bNull.rows.some((r) => r[0] === null)).toBe(true);
    const q = "SELECT k, v FROM a WHERE k NOT IN (SELECT k FROM bn)";
    expect((await runSql(`${runnelTables([a, bNull])}\n${q};`)).rows).toEqual([]);
    expect(await duckSql([a, bNull], q)).toEqual([]);
    await agree([a, bNull], "SELECT k, v FROM a WHERE k NOT IN (SELECT k FROM bn WHERE k IS NOT NULL)");
    const empty = await agree([a, bNull], "SELECT k, v FROM a WHERE k NOT IN (SELECT k FROM bn WHERE v > 1000)");
    expect(empty.rows.some((r) => r.k === null)).toBe(true);
  });

  test("correlated NOT IN: the NULLs that matter are those of the row's own correlation group", async () => {
    await agree([a, bNull], "SELECT k, v FROM a WHERE v NOT IN (SELECT bn.v FROM bn WHERE bn.k = a.k) AND v < 10");
    // Across two subtasks, which split the keys between them.
    await agree([a, bNull], "SELECT k, v FROM a WHERE v NOT IN (SELECT bn.v FROM bn WHERE bn.k = a.k) AND v < 10", true, 2);
  });

  test("EXISTS and NOT EXISTS correlated on an equality, with other conditions on the subquery's own columns", async () => {
    await agree([a, b], "SELECT k, v FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.k = a.k AND b.v > 25)");
    await agree([a, b], "SELECT k, v FROM a WHERE NOT EXISTS (SELECT * FROM b WHERE a.k = b.k AND b.v > 25)");
  });

  test("NOT (x IN ...) is NOT IN; IN of an expression, of a subquery with GROUP BY", async () => {
    await agree([a, b], "SELECT k, v FROM a WHERE NOT (k * 2 IN (SELECT k FROM b)) AND k IS NOT NULL");
    await agree([a, b], "SELECT k, v FROM a WHERE v IN (SELECT count(*) FROM b GROUP BY k)");
  });

  test("uncorrelated EXISTS: all rows or none", async () => {
    await agree([a, b], "SELECT k, v FROM a WHERE EXISTS (SELECT 1 FROM b WHERE v = 7) AND v = 3");
  });

  test("over an updating input: a semi join of a GROUP BY follows its changes", async () => {
    await agree([a, b], "SELECT k, n FROM (SELECT k, count(*) AS n FROM a GROUP BY k) x WHERE n IN (SELECT v FROM b)", true);
  });
});

describe("predicate subqueries over windowed inputs", () => {
  const win = (t: string) => `SELECT tumble(INTERVAL '1' MINUTE) AS window, k, count(*) AS n FROM ${t} GROUP BY window, k`;
  const duckWin = (t: string) => `SELECT (ts // ${MINUTE}) * ${MINUTE} AS ws, k, count(*) AS n FROM ${t} GROUP BY ws, k`;
  for (const not of ["", "NOT "]) {
    test(`${not}EXISTS of the same window: a window semi/anti join, append-only`, async () => {
      const ours = await runSql(`${runnelTables([a, b])}\nSELECT x.k, x.n FROM (${win("a")}) x WHERE ${not}EXISTS (SELECT 1 FROM (${win("b")}) y WHERE y.k = x.k AND y.n >= x.n);`);
      expect(ours.updating).toBe(false);
      const theirs = await duckSql([a, b], `SELECT x.k, x.n FROM (${duckWin("a")}) x WHERE ${not}EXISTS (SELECT 1 FROM (${duckWin("b")}) y WHERE y.k = x.k AND y.ws = x.ws AND y.n >= x.n)`);
      expect(theirs.length).toBeGreaterThan(0);
      expect(sameRows(ours.rows, theirs)).toBeNull();
    });
  }

  test("NOT EXISTS of hop windows across two subtasks (each row in every window it falls in)", async () => {
    const hop = (t: string) => `SELECT hop(INTERVAL '1' MINUTE, INTERVAL '2' MINUTE) AS window, k, count(*) AS n FROM ${t} GROUP BY window, k`;
    const duckHop = (t: string) =>
      `SELECT ws, k, count(*) AS n FROM (SELECT *, ((ts // ${MINUTE}) - o) * ${MINUTE} AS ws FROM ${t}, (VALUES (0), (1)) v(o)) GROUP BY ws, k`;
    const ours = await runSql(`${runnelTables([a, b])}\nSELECT x.window.start AS ws, x.k, x.n FROM (${hop("a")}) x WHERE NOT EXISTS (SELECT 1 FROM (${hop("b")}) y WHERE y.k = x.k);`, { parallelism: 2 });
    const theirs = await duckSql([a, b], `SELECT x.ws, x.k, x.n FROM (${duckHop("a")}) x WHERE NOT EXISTS (SELECT 1 FROM (${duckHop("b")}) y WHERE y.k = x.k AND y.ws = x.ws)`);
    expect(theirs.length).toBeGreaterThan(0);
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });

  test("NOT IN of the same window, NULLs filtered out on both sides: a plain window anti join", async () => {
    const ours = await runSql(
      `${runnelTables([a, bNull])}\nSELECT x.k, x.n FROM (${win("a")}) x WHERE x.k IS NOT NULL AND x.k NOT IN (SELECT k FROM (${win("bn")}) y WHERE y.k IS NOT NULL);`,
    );
    expect(ours.updating).toBe(false);
    const theirs = await duckSql(
      [a, bNull],
      `SELECT x.k, x.n FROM (${duckWin("a")}) x WHERE x.k IS NOT NULL AND NOT EXISTS (SELECT 1 FROM (${duckWin("bn")}) y WHERE y.k IS NOT NULL AND y.k = x.k AND y.ws = x.ws)`,
    );
    expect(theirs.length).toBeGreaterThan(0);
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });

  test("IN of the same window", async () => {
    const ours = await runSql(`${runnelTables([a, b])}\nSELECT x.k, x.n FROM (${win("a")}) x WHERE x.k IN (SELECT k FROM (${win("b")}) y);`);
    const theirs = await duckSql([a, b], `SELECT x.k, x.n FROM (${duckWin("a")}) x WHERE EXISTS (SELECT 1 FROM (${duckWin("b")}) y WHERE y.k = x.k AND y.ws = x.ws)`);
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });
});

describe("predicate subqueries Runnel refuses", () => {
  const T = "CREATE TABLE a (k BIGINT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'test_rows', dataset = 'none');";
  const W = "SELECT tumble(INTERVAL '1' MINUTE) AS window, k, count(*) AS n FROM a GROUP BY window, k";
  test("IN (SELECT ...) under OR, at the IN", async () => {
    const err = await planError(`${T}\nSELECT k FROM a WHERE v = 1 OR k IN (SELECT k FROM a);`);
    expect(err.message).toMatch(/condition of WHERE.*UNION ALL/);
    expect(err.at).toStartWith("k IN (SELECT");
  });
  test("EXISTS in the SELECT list", async () => {
    const err = await planError(`${T}\nSELECT EXISTS (SELECT 1 FROM a) AS e FROM a;`);
    expect(err.message).toMatch(/condition of WHERE/);
  });
  test("NOT IN over windows where a side may be NULL names NOT EXISTS", async () => {
    const err = await planError(`${T}\nSELECT x.k FROM (${W}) x WHERE x.k NOT IN (SELECT k FROM (${W}) y);`);
    expect(err.message).toMatch(/filter the NULLs out on both sides \(x IS NOT NULL AND x NOT IN \(SELECT y \.\.\. WHERE y IS NOT NULL\)\), or write NOT EXISTS/);
    expect(err.at).toStartWith("x.k NOT IN");
  });
  test("a non-equality correlation over unwindowed input", async () => {
    const err = await planError(`${T}\nSELECT k FROM a WHERE EXISTS (SELECT 1 FROM a b WHERE b.k = a.k AND b.v > a.v);`);
    expect(err.message).toMatch(/correlates only by equalities/);
    expect(err.at).toStartWith("b.v > a.v");
  });
  test("a correlated subquery with GROUP BY names the join to write", async () => {
    const err = await planError(`${T}\nSELECT k FROM a WHERE v IN (SELECT max(b.v) FROM a b WHERE b.k = a.k GROUP BY b.k);`);
    expect(err.message).toMatch(/cannot refer to the outer query; join the outer table with it grouped by that key instead/);
    expect(err.at).toStartWith("a.k GROUP BY");
  });

  test("a windowed query with an unwindowed subquery", async () => {
    const err = await planError(`${T}\nSELECT x.k FROM (${W}) x WHERE x.k IN (SELECT k FROM a);`);
    expect(err.message).toMatch(/one side of this join is windowed/);
  });
});
