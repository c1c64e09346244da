/** Scalar subqueries in SELECT and WHERE, planned as joins with a one-row aggregate, against DuckDB; and the shapes refused. */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { duckSql, planError, prng, runSql, runnelTables, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const rand = prng(44);
const bid: TableSpec = {
  name: "bid",
  columns: [
    { name: "auction", type: "BIGINT" },
    { name: "price", type: "BIGINT" },
  ],
  rows: Array.from({ length: 500 }, () => [Math.floor(rand() * 20), Math.floor(rand() * 1000)]),
};

describe("scalar subqueries agree with DuckDB", () => {
  test("WHERE price = (SELECT max(price) ...): earlier leaders are retracted as the maximum rises", async () => {
    const q = "SELECT auction, price FROM bid WHERE price = (SELECT max(price) FROM bid)";
    const ours = await runSql(`${runnelTables([bid])}\n${q};`);
    expect(ours.updating).toBe(true);
    expect(ours.changes.some((c) => c.op !== 0)).toBe(true);
    expect(sameRows(ours.rows, await duckSql([bid], q))).toBeNull();
  });

  test("in the SELECT list and WHERE together, two subqueries", async () => {
    const q = "SELECT auction, price - (SELECT avg(price) FROM bid) AS above, (SELECT count(*) FROM bid WHERE price > 900) AS high FROM bid WHERE auction = 3";
    const ours = await runSql(`${runnelTables([bid])}\n${q};`);
    expect(sameRows(ours.rows, await duckSql([bid], q), 1e-9)).toBeNull();
  });

  test("an empty subquery is NULL", async () => {
    const q = "SELECT auction, (SELECT max(price) FROM bid WHERE price < 0) AS m FROM bid WHERE auction = 1";
    const ours = await runSql(`${runnelTables([bid])}\n${q};`);
    expect(ours.rows.length).toBeGreaterThan(0);
    expect(sameRows(ours.rows, await duckSql([bid], q))).toBeNull();
  });
});

describe("scalar subqueries Runnel refuses", () => {
  const TABLE = "CREATE TABLE bid (auction BIGINT, price BIGINT) WITH (connector = 'test_rows', dataset = 'none');";
  test("one that may give several rows", async () => {
    const err = await planError(`${TABLE}\nSELECT auction FROM bid WHERE price = (SELECT max(price) FROM bid GROUP BY auction);`);
    expect(err.message).toMatch(/must be an aggregate without GROUP BY.*join the tables instead/);
    expect(err.at).toStartWith("SELECT max");
  });
});
