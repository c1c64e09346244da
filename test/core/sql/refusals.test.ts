/**
 * What the planner refuses, it refuses at the place it is written (line and
 * column) and says what to write instead.
 */
import { describe, expect, test } from "bun:test";
import { planSql, SqlError } from "../../../core/sql/index.ts";
import { fixtureRegistry } from "../../kit/fixture-registry.ts";

const registry = fixtureRegistry();
const TABLES = `CREATE TABLE t (i BIGINT, k BIGINT, s TEXT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'single_file', path = '/x', format = 'json', type = 'source');
CREATE TABLE u (k BIGINT, v TEXT) WITH (connector = 'single_file', path = '/y', format = 'json', type = 'source');
`;

/** Plans `query` after the tables (on line 3) and returns the error's message and where it points. */
function refusal(query: string): { message: string; line: number; column: number; at: string } {
  const sql = `${TABLES}${query};`;
  try {
    planSql(sql, registry);
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    const pos = err.position(sql);
    if (!pos) throw new Error(`no position for: ${err.message}`);
    const line = sql.split("\n")[pos.line - 1]!;
    return { message: err.message, line: pos.line, column: pos.column, at: line.slice(pos.column - 1) };
  }
  throw new Error(`expected a refusal of: ${query}`);
}

describe("refusals name their place and the rewrite", () => {
  const cases: [string, string, RegExp][] = [
    // [query, where the error points (the text starting there), message]
    ["SELECT k, lag(i IGNORE NULLS) OVER (PARTITION BY k ORDER BY i) AS rn FROM t", "IGNORE NULLS", /write IGNORE NULLS after the call's parentheses/],
    ["SELECT k, kurtosis(i) FROM t GROUP BY k", "kurtosis(i)", /unknown function kurtosis\(\)/],
    ["SELECT k, stddev(i ORDER BY k) FROM t GROUP BY k", "stddev(i", /stddev\(\) takes no ORDER BY; array_agg, string_agg/],
    ["SELECT k FROM t WHERE k = 1 OR i IN (SELECT k FROM u)", "i IN", /IN \(subquery\) is supported as a condition of WHERE.*UNION ALL/],
    ["SELECT k, EXISTS (SELECT 1 FROM u) AS e FROM t", "EXISTS", /EXISTS \(subquery\) is supported as a condition of WHERE.*LEFT JOIN/],
    ["SELECT k FROM t INTERSECT SELECT k FROM u", "INTERSECT", /INTERSECT is not supported.*UNION ALL/],
    ["SELECT count(*) FROM t GROUP BY ROLLUP (k)", "ROLLUP", /ROLLUP.*not supported; write one query per grouping.*UNION ALL/],
    ["SELECT * FROM t GROUP BY k", "*", /SELECT \* cannot be used with GROUP BY; list the grouped columns/],
    ["WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r", "RECURSIVE", /recursive CTEs/],
    ["SELECT CAST(ts AS DATE) FROM t", "CAST", /no DATE type.*date_trunc\('day', ts\)/],
    ["SELECT ts AT TIME ZONE 'UTC' FROM t", "ts AT", /AT TIME ZONE is not supported/],
    ["SELECT s SIMILAR TO 'a' FROM t", "SIMILAR", /SIMILAR TO is not supported; write regexp_like/],
    ["SELECT tumble(INTERVAL '1' MONTH) AS w, count(*) FROM t GROUP BY w", "'1' MONTH", /months and years are not fixed lengths of time: write days/],
    ["SELECT to_date(s) FROM t", "to_date", /no DATE type/],
    ["SELECT k, sum(unnest(ARRAY[1, 2])) FROM t GROUP BY k", "unnest(", /unnest in a subquery and use its column here/],
    ["SELECT k FROM t WHERE i = ANY(ARRAY[1, 2])", "ANY", /write x IN \(a, b, \.\.\.\)/],
    ["SELECT k FROM t ORDER BY k", "ORDER", /ORDER BY is not supported.*remove it/],
    ["SELECT k FROM t LIMIT 10", "LIMIT", /LIMIT is not supported.*remove it/],
  ];
  for (const [query, at, message] of cases) {
    test(query, () => {
      const err = refusal(query);
      expect(err.message).toMatch(message);
      expect(err.line).toBe(3);
      expect(err.at.startsWith(at)).toBe(true);
    });
  }

  test("CREATE TABLE ... AS SELECT says to write a view", () => {
    const sql = `${TABLES}CREATE TABLE c AS (SELECT count(*) FROM t);\nSELECT * FROM c;`;
    try {
      planSql(sql, registry);
      throw new Error("expected a refusal");
    } catch (err) {
      expect((err as SqlError).message).toContain("write CREATE VIEW name AS SELECT");
      expect((err as SqlError).position(sql)?.line).toBe(3);
    }
  });

  test("Arroyo's WITH option values: interval '...' and [a, b] lists", () => {
    const p = planSql(
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10', event_time_interval = interval '10 seconds');
       CREATE TABLE out (c BIGINT) WITH (connector = 'kafka', topic = [a, b], bootstrap_servers = 'x:1', format = 'json', type = 'sink');
       INSERT INTO out SELECT CAST(counter AS BIGINT) FROM imp;`,
      registry,
    );
    expect(p.tables.get("imp")!.options.event_time_interval).toBe(10_000_000);
    expect(p.tables.get("out")!.options.topic).toBe("a,b");
  });
});
