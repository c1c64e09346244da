/**
 * A projection feeding an aggregate keeps only what the aggregate reads (so a
 * shuffle between workers sends no unused columns), and the results stay
 * DuckDB's, for windowed and updating aggregates, with FILTER, ORDER BY inside
 * the aggregate, a filter on a dropped column and a view read twice.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { PlanNode } from "../../../core/plan/logical.ts";
import { planSql } from "../../../core/sql/index.ts";
import { inputsOf } from "../../../core/plan/rewrite.ts";
import { NEXMARK_VIEWS } from "../../../bench/nexmark-queries.ts";
import { duckSql, prng, runSql, runnelTables, sameRows, testRegistry, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const MINUTE = 60_000_000;
const T0 = Math.floor(1_700_000_000_000_000 / (60 * MINUTE)) * 60 * MINUTE;
const rand = prng(11);
const events: TableSpec = {
  name: "e",
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "k", type: "BIGINT" },
    { name: "v", type: "DOUBLE" },
    { name: "s", type: "TEXT" },
    { name: "pad", type: "TEXT" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  rows: Array.from({ length: 500 }, (_, i) => [
    i,
    Math.floor(rand() * 6),
    Math.round(rand() * 1000) / 10,
    ["a", "b", "c"][Math.floor(rand() * 3)]!,
    "x".repeat(Math.floor(rand() * 50)),
    T0 + Math.floor((i * 5 * MINUTE) / 500),
  ]),
  watermark: "ts",
};

/** Column names of every aggregate's input, in plan order. */
function aggregateInputs(sql: string, registry: Awaited<ReturnType<typeof testRegistry>>): string[][] {
  const out: string[][] = [];
  const walk = (n: PlanNode) => {
    if (n.kind === "window_aggregate" || n.kind === "updating_aggregate") out.push(n.input.schema.fields.map((f) => f.name));
    if (n.kind === "union") n.inputs.forEach(walk);
    else if (n.kind === "join") (walk(n.left), walk(n.right));
    else if (n.kind !== "source") walk(n.input);
  };
  for (const s of planSql(sql, registry).sinks) walk(s.input);
  return out;
}

const VIEW = "CREATE VIEW wide AS SELECT id, k, v, s, pad, ts FROM e WHERE pad <> '';";

describe("aggregates read narrowed projections", () => {
  test("the plan keeps only the columns each aggregate reads", async () => {
    const registry = await testRegistry();
    const sql = `${runnelTables([events])}\n${VIEW}
SELECT k, tumble(INTERVAL '1' MINUTE) AS window, count(*) AS n FROM wide GROUP BY k, window;
SELECT s, sum(v) FILTER (WHERE id > 10) AS total, string_agg(s, ',' ORDER BY id) AS ss FROM wide GROUP BY s;`;
    expect(aggregateInputs(sql, registry)).toEqual([["k"], ["id", "v", "s"]]);
  });

  test("results agree with DuckDB: windowed, updating with FILTER and ORDER BY, a filter on a dropped column, a view read twice", async () => {
    const cases: [string, string][] = [
      [
        "SELECT k, n, mx FROM (SELECT k, tumble(INTERVAL '1' MINUTE) AS window, count(*) AS n, max(v) AS mx FROM wide GROUP BY k, window)",
        `SELECT k, count(*) AS n, max(v) AS mx FROM e WHERE pad <> '' GROUP BY k, ts // ${MINUTE}`,
      ],
      [
        "SELECT s, sum(v) FILTER (WHERE id > 10) AS total, string_agg(CAST(k AS TEXT), ',' ORDER BY id) AS ks FROM wide GROUP BY s",
        "SELECT s, sum(v) FILTER (WHERE id > 10) AS total, string_agg(CAST(k AS TEXT), ',' ORDER BY id) AS ks FROM e WHERE pad <> '' GROUP BY s",
      ],
      [
        "SELECT a.k, a.n, b.m FROM (SELECT k, count(*) AS n FROM wide GROUP BY k) a JOIN (SELECT k, min(id) AS m FROM wide GROUP BY k) b ON a.k = b.k",
        "SELECT a.k, a.n, b.m FROM (SELECT k, count(*) AS n FROM e WHERE pad <> '' GROUP BY k) a JOIN (SELECT k, min(id) AS m FROM e WHERE pad <> '' GROUP BY k) b ON a.k = b.k",
      ],
    ];
    for (const [ours, theirs] of cases) {
      const got = await runSql(`${runnelTables([events])}\n${VIEW}\n${ours};`);
      const want = await duckSql([events], theirs);
      expect(sameRows(got.rows, want)).toBeNull();
    }
  });
});

/** Per source table, what `pick` gives of its node, as column names (null: nothing). */
function perSource(sql: string, registry: Awaited<ReturnType<typeof testRegistry>>, pick: (n: Extract<PlanNode, { kind: "source" }>) => number[] | undefined) {
  const out: Record<string, string[] | null> = {};
  const walk = (n: PlanNode) => {
    if (n.kind === "source") out[n.table.name] = pick(n)?.map((i) => n.table.fields[i]!.name) ?? null;
    inputsOf(n).forEach(walk);
  };
  for (const s of planSql(sql, registry).sinks) walk(s.input);
  return out;
}
/** The physical columns each source's node says the plan reads (null: all). */
const sourceReads = (sql: string, registry: Awaited<ReturnType<typeof testRegistry>>) => perSource(sql, registry, (n) => n.reads);
/** The columns of which each source may leave out rows where all are null (null: none pushed). */
const sourceNotNull = (sql: string, registry: Awaited<ReturnType<typeof testRegistry>>) => perSource(sql, registry, (n) => n.notNull);

describe("sources are told the columns the plan reads", () => {
  const NEXMARK = `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '1000');\n${NEXMARK_VIEWS}`;

  test("through a view's filter: bids only, persons and auctions only; a query reading the whole row reads all", async () => {
    const registry = await testRegistry();
    expect(sourceReads(`${NEXMARK}\nSELECT auction, price FROM bid WHERE price > 10;`, registry)).toEqual({ nexmark: ["bid"] });
    expect(sourceReads(`${NEXMARK}\nSELECT p.name, a.id FROM auction a JOIN person p ON a.seller = p.id;`, registry)).toEqual({ nexmark: ["person", "auction"] });
    // Two queries over one source: the union of what they read.
    expect(sourceReads(`${NEXMARK}\nSELECT price FROM bid;\nSELECT name FROM person;`, registry)).toEqual({ nexmark: ["person", "bid"] });
    // A join straight over the source (no projection above it) reads every column.
    expect(sourceReads(`${NEXMARK}\nSELECT price FROM bid;\nSELECT a.bid FROM nexmark a JOIN nexmark b ON a.bid.auction = b.auction.id;`, registry)).toEqual({ nexmark: null });
    expect(sourceReads(`${NEXMARK}\nSELECT * FROM nexmark;`, registry)).toEqual({ nexmark: null });
  });

  test("IS NOT NULL filters go down where every consumer has one and the connector takes them", async () => {
    const registry = await testRegistry();
    expect(sourceNotNull(`${NEXMARK}\nSELECT auction, price FROM bid WHERE price > 10;`, registry)).toEqual({ nexmark: ["bid"] });
    expect(sourceNotNull(`${NEXMARK}\nSELECT p.name, a.id FROM auction a JOIN person p ON a.seller = p.id;`, registry)).toEqual({ nexmark: ["person", "auction"] });
    // One consumer keeps every row: nothing can be left out (though only bid is read).
    const mixed = `${NEXMARK}\nSELECT price FROM bid;\nSELECT bid.price AS p FROM nexmark;`;
    expect(sourceNotNull(mixed, registry)).toEqual({ nexmark: null });
    expect(sourceReads(mixed, registry)).toEqual({ nexmark: ["bid"] });
    // A connector that does not declare the filter gets none.
    const rows = `CREATE TABLE r (a BIGINT, b BIGINT, c TEXT) WITH (connector = 'test_rows', dataset = 'none');\nSELECT a FROM r WHERE b IS NOT NULL;`;
    expect(sourceNotNull(rows, registry)).toEqual({ r: null });
    expect(sourceReads(rows, registry)).toEqual({ r: ["a", "b"] });
  });

  test("the watermark's and generated columns' inputs are read whatever the query reads", async () => {
    const registry = await testRegistry();
    const sql = `CREATE TABLE g (a BIGINT, b BIGINT, c TEXT, ts TIMESTAMP, d BIGINT AS (b * 2), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
      WITH (connector = 'test_rows', dataset = 'none');\nSELECT a FROM g;`;
    expect(sourceReads(sql, registry)).toEqual({ g: ["a", "b", "ts"] });
  });
});
