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

type Registry = Awaited<ReturnType<typeof testRegistry>>;

/** The plan's nodes from each sink down, each node before its inputs (a shared node once per path to it). */
function planNodes(sql: string, registry: Registry): PlanNode[] {
  const out: PlanNode[] = [];
  const walk = (n: PlanNode) => {
    out.push(n);
    inputsOf(n).forEach(walk);
  };
  for (const s of planSql(sql, registry).sinks) walk(s.input);
  return out;
}

const names = (n: PlanNode) => n.schema.fields.map((f) => f.name);

/** Column names of every aggregate's input, in plan order. */
const aggregateInputs = (sql: string, registry: Registry): string[][] =>
  planNodes(sql, registry).flatMap((n) => (n.kind === "window_aggregate" || n.kind === "updating_aggregate" ? [names(n.input)] : []));

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

/** Column names of each join's sides, in plan order. */
const joinInputs = (sql: string, registry: Registry): [string[], string[]][] =>
  planNodes(sql, registry).flatMap((n): [string[], string[]][] => (n.kind === "join" ? [[names(n.left), names(n.right)]] : []));

const others: TableSpec = {
  name: "o",
  columns: [
    { name: "k", type: "BIGINT" },
    { name: "w", type: "BIGINT" },
    { name: "note", type: "TEXT" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  rows: Array.from({ length: 60 }, (_, i) => [i % 8, Math.floor(rand() * 100), "n".repeat(i % 7), T0 + Math.floor((i * 5 * MINUTE) / 60)]),
  watermark: "ts",
};

describe("joins read narrowed inputs", () => {
  test("each side keeps the columns read above the join, by its keys and by its ON condition", async () => {
    const registry = await testRegistry();
    const tables = runnelTables([events, others]);
    expect(joinInputs(`${tables}\n${VIEW}\nSELECT a.id, b.w FROM wide a JOIN o b ON a.k = b.k WHERE a.v > b.w;`, registry)).toEqual([
      [["id", "k", "v"], ["k", "w"]],
    ]);
    // A semi join's right side needs its key alone; a window join keeps each side's window.
    expect(joinInputs(`${tables}\n${VIEW}\nSELECT id FROM wide WHERE k IN (SELECT k FROM o);`, registry)).toEqual([[["id", "k"], ["k"]]]);
    const windowJoin = `${tables}
SELECT a.id, b.w FROM (SELECT id, k, pad, tumble(INTERVAL '1' MINUTE) AS window FROM e GROUP BY id, k, pad, window) a
JOIN (SELECT k, w, note, tumble(INTERVAL '1' MINUTE) AS window FROM o GROUP BY k, w, note, window) b ON a.k = b.k AND a.window = b.window;`;
    expect(joinInputs(windowJoin, registry)).toEqual([[["id", "k", "window"], ["k", "w", "window"]]]);
  });

  test("results agree with DuckDB: inner with a filter on a dropped column, LEFT, FULL, semi, anti, a window join, a view joined with itself", async () => {
    const cases: [string, string][] = [
      [
        "SELECT a.id, b.w FROM wide a JOIN o b ON a.k = b.k WHERE a.v > b.w AND b.note <> ''",
        "SELECT a.id, b.w FROM e a JOIN o b ON a.k = b.k WHERE a.pad <> '' AND a.v > b.w AND b.note <> ''",
      ],
      [
        "SELECT a.id, b.w FROM wide a LEFT JOIN (SELECT k, w, note FROM o WHERE w > 50) b ON a.k = b.k",
        "SELECT a.id, b.w FROM e a LEFT JOIN o b ON a.k = b.k AND b.w > 50 WHERE a.pad <> ''",
      ],
      [
        "SELECT a.s, b.note FROM (SELECT k, s FROM wide WHERE id < 40) a FULL JOIN o b ON a.k = b.k",
        "SELECT a.s, b.note FROM (SELECT k, s FROM e WHERE pad <> '' AND id < 40) a FULL JOIN o b ON a.k = b.k",
      ],
      ["SELECT id FROM wide WHERE k IN (SELECT k FROM o WHERE w > 90)", "SELECT id FROM e WHERE pad <> '' AND k IN (SELECT k FROM o WHERE w > 90)"],
      ["SELECT id FROM wide WHERE NOT EXISTS (SELECT 1 FROM o WHERE o.k = wide.k AND o.w > 30)", "SELECT id FROM e WHERE pad <> '' AND NOT EXISTS (SELECT 1 FROM o WHERE o.k = e.k AND o.w > 30)"],
      [
        `SELECT a.id, b.w FROM (SELECT id, k, pad, tumble(INTERVAL '1' MINUTE) AS window FROM e GROUP BY id, k, pad, window) a
         JOIN (SELECT k, w, note, tumble(INTERVAL '1' MINUTE) AS window FROM o GROUP BY k, w, note, window) b ON a.k = b.k AND a.window = b.window`,
        `SELECT a.id, b.w FROM (SELECT DISTINCT id, k, pad, ts // ${MINUTE} AS win FROM e) a
         JOIN (SELECT DISTINCT k, w, note, ts // ${MINUTE} AS win FROM o) b ON a.k = b.k AND a.win = b.win`,
      ],
      ["SELECT x.id, y.s FROM wide x JOIN wide y ON x.id = y.id + 1", "SELECT x.id, y.s FROM e x JOIN e y ON x.id = y.id + 1 WHERE x.pad <> '' AND y.pad <> ''"],
    ];
    for (const [ours, theirs] of cases) {
      const got = await runSql(`${runnelTables([events, others])}\n${VIEW}\n${ours};`);
      const want = await duckSql([events, others], theirs);
      expect(sameRows(got.rows, want)).toBeNull();
    }
  });
});

/** Per source table, what `pick` gives of its node, as column names (null: nothing). */
function perSource(sql: string, registry: Registry, pick: (n: Extract<PlanNode, { kind: "source" }>) => number[] | undefined) {
  const out: Record<string, string[] | null> = {};
  for (const n of planNodes(sql, registry)) if (n.kind === "source") out[n.table.name] = pick(n)?.map((i) => n.table.fields[i]!.name) ?? null;
  return out;
}
/** The physical columns each source's node says the plan reads (null: all). */
const sourceReads = (sql: string, registry: Registry) => perSource(sql, registry, (n) => n.reads);
/** The columns of which each source may leave out rows where all are null (null: none pushed). */
const sourceNotNull = (sql: string, registry: Registry) => perSource(sql, registry, (n) => n.notNull);

/** Per source table, the struct fields its node says the plan reads, by column name (null: none named). */
function perSourceFields(sql: string, registry: Registry) {
  const out: Record<string, Record<string, string[]> | null> = {};
  for (const n of planNodes(sql, registry)) {
    if (n.kind !== "source") continue;
    out[n.table.name] = n.fieldsRead ? Object.fromEntries(Object.entries(n.fieldsRead).map(([c, f]) => [n.table.fields[Number(c)]!.name, f])) : null;
  }
  return out;
}

describe("sources are told the columns the plan reads", () => {
  const NEXMARK = `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '1000');\n${NEXMARK_VIEWS}`;

  test("through a view's filter: bids only, persons and auctions only; a query reading the whole row reads all", async () => {
    const registry = await testRegistry();
    expect(sourceReads(`${NEXMARK}\nSELECT auction, price FROM bid WHERE price > 10;`, registry)).toEqual({ nexmark: ["bid"] });
    expect(sourceReads(`${NEXMARK}\nSELECT p.name, a.id FROM auction a JOIN person p ON a.seller = p.id;`, registry)).toEqual({ nexmark: ["person", "auction"] });
    // Two queries over one source: the union of what they read.
    expect(sourceReads(`${NEXMARK}\nSELECT price FROM bid;\nSELECT name FROM person;`, registry)).toEqual({ nexmark: ["person", "bid"] });
    // A join straight over the source reads what the projection above it and its keys read.
    expect(sourceReads(`${NEXMARK}\nSELECT price FROM bid;\nSELECT a.bid FROM nexmark a JOIN nexmark b ON a.bid.auction = b.auction.id;`, registry)).toEqual({ nexmark: ["auction", "bid"] });
    // A sink reading the join's whole row reads every column.
    expect(sourceReads(`${NEXMARK}\nSELECT * FROM nexmark a JOIN nexmark b ON a.bid.auction = b.auction.id;`, registry)).toEqual({ nexmark: null });
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

  test("a struct column read only through its fields names them; read whole anywhere, it names none", async () => {
    const registry = await testRegistry();
    const fields = (sql: string) => perSourceFields(sql, registry);
    expect(fields(`${NEXMARK}\nSELECT auction, price FROM bid WHERE price > 10;`)).toEqual({ nexmark: { bid: ["auction", "price"] } });
    // Two queries: the union of the fields they read; IS NOT NULL reads none.
    expect(fields(`${NEXMARK}\nSELECT price FROM bid;\nSELECT bid.url AS u FROM nexmark WHERE bid IS NOT NULL;`)).toEqual({ nexmark: { bid: ["price", "url"] } });
    expect(fields(`${NEXMARK}\nSELECT auction, count(*) AS n, tumble(INTERVAL '1' SECOND) AS w FROM bid GROUP BY auction, w;`)).toEqual({ nexmark: { bid: ["auction"] } });
    // The struct itself read, by a query or a sink: no fields are named for it.
    expect(fields(`${NEXMARK}\nSELECT price FROM bid;\nSELECT bid FROM nexmark;`)).toEqual({ nexmark: null });
    expect(fields(`${NEXMARK}\nSELECT * FROM nexmark;`)).toEqual({ nexmark: null });
    expect(fields(`${NEXMARK}\nSELECT bid.price AS p, auction FROM nexmark;`)).toEqual({ nexmark: { bid: ["price"] } });
  });

  test("the watermark's and generated columns' inputs are read whatever the query reads", async () => {
    const registry = await testRegistry();
    const sql = `CREATE TABLE g (a BIGINT, b BIGINT, c TEXT, ts TIMESTAMP, d BIGINT AS (b * 2), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
      WITH (connector = 'test_rows', dataset = 'none');\nSELECT a FROM g;`;
    expect(sourceReads(sql, registry)).toEqual({ g: ["a", "b", "ts"] });
  });
});
