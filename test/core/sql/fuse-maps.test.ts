/**
 * A projection over a projection is planned as one map where the outer one
 * reads plain columns, struct fields or constants of the inner one; results
 * stay DuckDB's, and the outer filter still runs only on rows the inner one
 * keeps (an error it would raise on the others does not happen).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { PlanNode } from "../../../core/plan/logical.ts";
import { inputsOf } from "../../../core/plan/rewrite.ts";
import { planSql } from "../../../core/sql/index.ts";
import { NEXMARK_VIEWS } from "../../../bench/nexmark-queries.ts";
import { duckSql, runSql, runnelTables, sameRows, testRegistry, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

/** Node kinds from the first sink down, depth first. */
async function kinds(sql: string): Promise<string[]> {
  const out: string[] = [];
  const walk = (n: PlanNode) => {
    out.push(n.kind);
    inputsOf(n).forEach(walk);
  };
  walk(planSql(sql, await testRegistry()).sinks[0]!.input);
  return out;
}

const t: TableSpec = {
  name: "t",
  columns: [
    { name: "a", type: "BIGINT" },
    { name: "b", type: "TEXT" },
    { name: "c", type: "DOUBLE" },
  ],
  // Where a is NULL or not positive, b does not cast to BIGINT.
  rows: Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? [null, "abc", i / 2] : i % 3 === 1 ? [-i, "x", i / 2] : [i, String(i * 7), i / 2])),
};

describe("projections over projections", () => {
  test("a view's projection and the query's are one map over the source; a computed column read above keeps two", async () => {
    const NEXMARK = `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '10');\n${NEXMARK_VIEWS}`;
    expect(await kinds(`${NEXMARK}\nSELECT auction, price FROM bid;`)).toEqual(["map", "source"]);
    expect(await kinds(`${NEXMARK}\nSELECT auction FROM bid WHERE price > 10;`)).toEqual(["map", "source"]);
    const tables = runnelTables([t]);
    expect(await kinds(`${tables}\nSELECT x + 1 AS y FROM (SELECT a * 2 AS x FROM t);`)).toEqual(["map", "map", "source"]);
  });

  test("results agree with DuckDB, and the outer filter never sees rows the inner one drops", async () => {
    const cases: [string, string][] = [
      // Rows with a NULL (inner filter NULL) or negative a have b = 'abc' / 'x': casting them would fail.
      [
        "SELECT a, c FROM (SELECT a, b, c FROM t WHERE a > 0) WHERE CAST(b AS BIGINT) > 50",
        "SELECT a, c FROM t WHERE a > 0 AND TRY_CAST(b AS BIGINT) > 50",
      ],
      ["SELECT b, a FROM (SELECT c, b, a FROM t WHERE c > 3) WHERE a IS NULL", "SELECT b, a FROM t WHERE c > 3 AND a IS NULL"],
      ["SELECT y + 1 AS z FROM (SELECT a AS y FROM t)", "SELECT a + 1 AS z FROM t"],
    ];
    for (const [ours, theirs] of cases) {
      const got = await runSql(`${runnelTables([t])}\n${ours};`);
      expect(sameRows(got.rows, await duckSql([t], theirs))).toBeNull();
    }
  });
});
