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

describe("correlated scalar subqueries agree with DuckDB", () => {
  const other: TableSpec = {
    name: "auction",
    columns: [
      { name: "id", type: "BIGINT" },
      { name: "reserve", type: "BIGINT" },
    ],
    rows: Array.from({ length: 30 }, (_, i) => [i, Math.floor(rand() * 1000)]),
  };

  test("WHERE price = (SELECT max(price) ... WHERE b2.auction = b.auction): each auction's leading bids", async () => {
    const q = "SELECT auction, price FROM bid b WHERE price = (SELECT max(price) FROM bid b2 WHERE b2.auction = b.auction)";
    const ours = await runSql(`${runnelTables([bid])}\n${q};`, { parallelism: 2 });
    expect(ours.updating).toBe(true);
    expect(sameRows(ours.rows, await duckSql([bid], q))).toBeNull();
  });

  test("in the SELECT list, with count() of no rows 0 (not NULL) and a condition on the subquery's own rows", async () => {
    const q = "SELECT id, reserve, (SELECT count(*) FROM bid WHERE bid.auction = a.id AND price > 500) AS n, (SELECT avg(price) FROM bid WHERE auction = a.id) AS mean FROM auction a";
    const ours = await runSql(`${runnelTables([bid, other])}\n${q};`);
    const theirs = await duckSql([bid, other], q);
    expect(theirs.some((r) => r.n === 0 && r.mean === null)).toBe(true);
    expect(sameRows(ours.rows, theirs, 1e-9)).toBeNull();
  });
});

describe("scalar subqueries Runnel refuses", () => {
  const TABLE = "CREATE TABLE bid (auction BIGINT, price BIGINT) WITH (connector = 'test_rows', dataset = 'none');";
  test("a correlated one with a condition other than an equality between the two queries", async () => {
    const err = await planError(`${TABLE}\nSELECT auction FROM bid b WHERE price = (SELECT max(price) FROM bid b2 WHERE b2.auction = b.auction AND b2.price < b.price);`);
    expect(err.message).toMatch(/correlates only by equalities/);
    expect(err.at).toStartWith("b2.price < b.price");
  });

  test("one in a SELECT with GROUP BY says to group in a subquery first", async () => {
    const err = await planError(`${TABLE}\nSELECT auction, count(*) - (SELECT count(*) FROM bid) AS d FROM bid GROUP BY auction;`);
    expect(err.message).toMatch(/a scalar subquery is supported in the SELECT list and WHERE of a query without GROUP BY.*group in a subquery in FROM/);
    expect(err.at).toStartWith("SELECT count(*) FROM bid)");
  });

  test("one that may give several rows", async () => {
    const err = await planError(`${TABLE}\nSELECT auction FROM bid WHERE price = (SELECT max(price) FROM bid GROUP BY auction);`);
    expect(err.message).toMatch(/must be an aggregate without GROUP BY.*join the tables instead/);
    expect(err.at).toStartWith("SELECT max");
  });
});
